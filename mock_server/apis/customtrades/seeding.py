"""`--seed-customers N`: realistic customers for the first company, deterministic under `--seed`.

Faker costs about 0.3 ms per full customer, so a million would take minutes. Instead Faker fills
small pools once (names, companies, streets, cities, ...), and each customer is a cheap random
combination of pooled values, column by column (`random.choices` over a pool runs in C-speed
loops). Pooled strings are shared between customers; only what must be unique per customer is
built per row (uuid, e-mail, phone number).
"""

from __future__ import annotations

import re
from array import array
from datetime import UTC, datetime
from random import Random
from typing import Any

from mock_server.apis.base import seeded_rng
from mock_server.apis.customtrades.search import COMMERCIAL, DELETED, VIP
from mock_server.apis.customtrades.store import NO_PHONE, Address, SeedBatch, to_ms, uuid_from_bits

# Seeded customers were created between these instants (fixed, so --seed alone decides the data).
CREATED_FROM = datetime(2019, 1, 1, tzinfo=UTC)
CREATED_UNTIL = datetime(2025, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000

# Shares of customers (assumed: a plausible trades company's book).
COMMERCIAL_SHARE = 0.25
VIP_SHARE = 0.08
DELETED_SHARE = 0.02
EMAIL_SHARE = 0.90
PHONE_SHARE = 0.85
LOCATION_SHARE = 0.15
NOTES_SHARE = 0.05
FLAGS_SHARE = 0.05
NOTIFY_WEIGHTS = (40, 25, 25, 10)  # none, email, sms, both

_NOT_ALNUM = re.compile(r"[^a-z0-9]")


class Pools:
    """Faker values drawn once per seed; duplicates kept, so common names stay common."""

    def __init__(self, seed: int, size: int = 1000) -> None:
        from faker import Faker  # only when seeding: keeps the mock's start-up light

        fake = Faker("en_US")
        fake.seed_instance(seed)
        rng = seeded_rng(seed, "customtrades", "pools")
        self.first_names = [fake.first_name() for _ in range(size)]
        self.last_names = [fake.last_name() for _ in range(size)]
        self.companies = [fake.company() for _ in range(size)]
        streets = [fake.street_address() for _ in range(2 * size)]
        secondaries = [fake.secondary_address() for _ in range(size // 5)]
        cities = [fake.city() for _ in range(size // 2)]
        states = [fake.state_abbr(include_territories=False) for _ in range(size // 5)]
        zips = [fake.zipcode() for _ in range(size)]
        self.addresses: list[Address] = [
            (
                rng.choice(streets),
                rng.choice(secondaries) if rng.random() < 0.1 else None,
                rng.choice(cities),
                rng.choice(states),
                rng.choice(zips),
            )
            for _ in range(20 * size)
        ]
        self.domains = [fake.free_email_domain() for _ in range(size // 10)] * 3 + [
            fake.domain_name() for _ in range(size // 10)
        ]
        self.notes = [fake.sentence(nb_words=8) for _ in range(size // 5)]
        self.internal_flags: list[dict[str, Any]] = [
            rng.choice(
                [
                    {"source": rng.choice(["import", "web_form", "phone", "referral"])},
                    {"preferred_technician": fake.first_name()},
                    {"gate_code": fake.numerify("####")},
                    {"tax_exempt": True},
                    {"legacy_id": fake.bothify("CUST-#####")},
                ]
            )
            for _ in range(size // 20)
        ]


def generate(seed: int, count: int, pools: Pools | None = None) -> SeedBatch:
    """`count` customers, oldest first; the same seed gives the same customers."""
    pools = pools or Pools(seed)
    rng = seeded_rng(seed, "customtrades", "customers")
    random = rng.random
    uuid_bits = seeded_rng(seed, "customtrades", "seed-uuids").getrandbits

    first = rng.choices(pools.first_names, k=count)
    last = rng.choices(pools.last_names, k=count)
    flags = bytearray(
        (COMMERCIAL if random() < COMMERCIAL_SHARE else 0)
        | (VIP if random() < VIP_SHARE else 0)
        | (DELETED if random() < DELETED_SHARE else 0)
        for _ in range(count)
    )
    companies = rng.choices(pools.companies, k=count)
    company_name = [companies[row] if flags[row] & COMMERCIAL else None for row in range(count)]

    slugs = {name: _NOT_ALNUM.sub("", name.lower()) for name in {*pools.first_names, *pools.last_names}}
    domains = rng.choices(pools.domains, k=count)
    email = [
        f"{slugs[first[row]]}.{slugs[last[row]]}{row + 1}@{domains[row]}" if random() < EMAIL_SHARE else None
        for row in range(count)
    ]
    phone = array("q", _phones(rng, count))

    addresses = rng.choices(pools.addresses, k=count)
    others = rng.choices(pools.addresses, k=count)
    physical: list[Address | None] = [a if random() < 0.95 else None for a in addresses]
    billing: list[Address | None] = []
    for row in range(count):
        draw = random()
        billing.append(physical[row] if draw < 0.80 else others[row] if draw < 0.95 else None)

    location = [uuid_from_bits(rng.getrandbits(128)) if random() < LOCATION_SHARE else None for _ in range(count)]
    notes = [rng.choice(pools.notes) if random() < NOTES_SHARE else None for _ in range(count)]
    internal = [rng.choice(pools.internal_flags) if random() < FLAGS_SHARE else None for _ in range(count)]
    notify = bytearray(rng.choices(range(4), weights=NOTIFY_WEIGHTS, k=count))

    start, span = to_ms(CREATED_FROM), to_ms(CREATED_UNTIL) - to_ms(CREATED_FROM)
    created = array("q", [start + row * span // max(count, 1) for row in range(count)])
    updated = array("q", [at + int(random() * 90 * DAY_MS) for at in created])
    deleted = array("q", [updated[row] if flags[row] & DELETED else 0 for row in range(count)])

    return SeedBatch(
        uuid=[uuid_from_bits(uuid_bits(128)) for _ in range(count)],
        first_name=first,
        last_name=last,
        company_name=company_name,
        email=email,
        phone=phone,
        flags=flags,
        notify=notify,
        physical=physical,
        billing=billing,
        location=location,
        notes=notes,
        internal_flags=internal,
        created=created,
        updated=updated,
        deleted=deleted,
    )


def _phones(rng: Random, count: int) -> list[int]:
    """North American numbers: area code and exchange 200-989, any line number; 15% have none."""
    areas = rng.choices(range(201, 990), k=count)
    exchanges = rng.choices(range(200, 990), k=count)
    lines = rng.choices(range(10_000), k=count)
    random = rng.random
    return [
        areas[row] * 10_000_000 + exchanges[row] * 10_000 + lines[row] if random() < PHONE_SHARE else NO_PHONE
        for row in range(count)
    ]
