"""The seeded LOKE world: one add-on client, two organizations that installed it and one that did
not, each with locations, customers, a few payments, point records and customer lists.

Deterministic: the same `--seed` gives the same ids, names and timestamps (seeded records are
dated in 2024, independent of the clock). Cheap (a reset rebuilds it), so names come from small
built-in lists rather than Faker. Pure: no I/O.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from mock_server import secrets
from mock_server.apis.loke.ids import UlidGenerator
from mock_server.apis.loke.store import Counters, LokeStore, Organization, Payment

# the seeded token (in /__admin/credentials) never expires, whatever the virtual clock does;
# tokens from the token endpoint live TOKEN_TTL_SECONDS
SEEDED_TOKEN_EXPIRY = datetime.max.replace(tzinfo=UTC)
EPOCH = datetime(2024, 1, 8, 1, 0, tzinfo=UTC)

FIRST_NAMES = (
    "Olivia", "Noah", "Charlotte", "Jack", "Amelia", "William", "Isla", "Oliver", "Mia", "Leo",
    "Ava", "Henry", "Grace", "Lucas", "Chloe", "Thomas", "Zoe", "James", "Ruby", "Harrison",
)
LAST_NAMES = (
    "Smith", "Nguyen", "Williams", "Brown", "Jones", "Wilson", "Taylor", "Chen", "Martin", "Kelly",
    "Patel", "Walker", "Singh", "Harris", "Lee",
)
# (name, installed, locations, customers, lists with member positions, payments as
#  (customer position, [(item, unit cents, quantity)]), point awards as (customer position, points))
ORGANIZATIONS: tuple[tuple[str, bool, tuple[str, ...], int, tuple[tuple[str, tuple[int, ...]], ...],
                       tuple[tuple[int, tuple[tuple[str, int, int], ...]], ...], tuple[tuple[int, int], ...]], ...] = (
    (
        "Bean Counter Cafe", True, ("Surry Hills", "Bondi Junction"), 12,
        (("VIP Members", (0, 2, 4)), ("Winter Promo 2024", (1, 3))),
        ((0, (("Flat White", 550, 2), ("Banana Bread", 450, 1))), (2, (("Chicken Caesar Wrap", 890, 1),)),
         (0, (("Long Black", 480, 1),)), (4, (("Eggs Benedict", 1900, 2), ("Orange Juice", 600, 2)))),
        ((0, 150), (2, 90), (4, 500)),
    ),
    (
        "Second Cup Roasters", True, ("Fitzroy",), 5,
        (("Regulars", (0, 1)),),
        ((1, (("Cold Brew", 650, 1),)),),
        ((1, 65),),
    ),
    ("Not Installed Diner", False, ("CBD",), 3, (), (), ()),
)


def build(seed: int) -> LokeStore:
    keys = random.Random(f"{seed}:loke:keys")
    counters = Counters(random.Random(f"{seed}:loke:ids"))
    data = random.Random(f"{seed}:loke:data")
    org_ids = UlidGenerator(random.Random(f"{seed}:loke:orgs"))
    store = LokeStore(
        client_id="client_" + secrets.token_hex(keys, 8),
        client_secret="secret_" + secrets.token_urlsafe(keys, 24),
        orgs={},
        token_seed=secrets.token_hex(keys, 8),
        counters=counters,
    )
    moment = EPOCH
    for position, (name, installed, locations, customers, lists, payments, points) in enumerate(ORGANIZATIONS):
        org = Organization(org_ids.new(EPOCH - timedelta(days=400 - position)), name, installed)
        state = store.add_org(org)
        for place in locations:
            state.add_location(f"{name} - {place}", EPOCH - timedelta(days=300))
        venues = list(state.locations)
        people = []
        for index in range(customers):
            moment += timedelta(days=3, hours=7, minutes=data.randrange(60))
            people.append(state.create_customer(moment, _person(data, index, position)))
        for list_name, members in lists:
            moment += timedelta(hours=5)
            created = state.create_list(list_name, moment)
            for member in members:
                moment += timedelta(minutes=41)
                state.add_member(created.id, people[member].id, moment)
        for number, (who, lines) in enumerate(payments):
            moment += timedelta(days=1, hours=2)
            items = [
                {"id": counters.ulid(moment), "name": item, "amount": cents, "quantity": quantity,
                 "type": "item", "options": []}
                for item, cents, quantity in lines
            ]
            total = sum(cents * quantity for _, cents, quantity in lines)
            payment = Payment(
                id=counters.uuid(), customer_id=people[who].id, billing_type="order/pickup",
                charged_amount=total, credit_amount=0, discount_amount=0, external_amount=0, fee_amount=0,
                currency="AUD", created_at=moment - timedelta(minutes=3), completed_at=moment,
                items=items, location_id=venues[number % len(venues)],  # spread over the venues
            )
            state.add_payment(payment, count_spend=True)
        for who, amount in points:
            moment += timedelta(hours=9)
            state.adjust_points(people[who].id, f"seed-{who}-{amount}", amount, "Seeded points", moment)
    store.seeded_token = store.issue_token(SEEDED_TOKEN_EXPIRY)
    return store


def _person(rng: random.Random, index: int, org_position: int) -> dict[str, object]:
    first = FIRST_NAMES[(index * 7 + org_position * 3) % len(FIRST_NAMES)]
    last = LAST_NAMES[(index * 5 + org_position) % len(LAST_NAMES)]
    person: dict[str, object] = {
        "firstName": first,
        "lastName": last,
        "email": f"{first}.{last}.{org_position}{index}@example.com".lower() if index % 5 != 3 else None,
        "phoneNumber": f"+6141{org_position}{index:02d}{rng.randrange(1000, 10_000)}" if index % 4 != 2 else None,
        "dob": (f"{1960 + rng.randrange(45)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
                if index % 3 else None),
        "gender": ("FEMALE", "MALE", None)[index % 3],
        "hasAgreedToMarketing": index % 2 == 0,
    }
    return person
