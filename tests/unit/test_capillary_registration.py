"""The pure Capillary registration rules and the customer book: truncation, identifier checks,
resolution across sources, side effects, warnings, and the book's invariants under any sequence
of registrations (hypothesis)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.apis.capillary import registration as reg
from mock_server.apis.capillary.org import OrgConfig, parse_config
from mock_server.apis.capillary.store import CustomerBook
from mock_server.errors import Conflict, MockError, NotFound, ValidationFailed
from mock_server.schema import dereference
from mock_server.spec import load_document

CONFIG = OrgConfig()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def body(*profiles: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"profiles": list(profiles), **extra}


def profile(source: str = "INSTORE", *identifiers: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"identifiers": [{"type": t, "value": v} for t, v in identifiers], "source": source, **extra}


def failure(raw: dict[str, Any], config: OrgConfig = CONFIG) -> list[tuple[str, int | None]]:
    with pytest.raises(ValidationFailed) as caught:
        reg.parse_registration(raw, config)
    return [(f.field, f.code) for f in caught.value.fields]


# -- the spec and the module agree ----------------------------------------------------------------
def test_limits_and_sources_are_the_specs() -> None:
    document = load_document("capillary")
    schemas = dereference(document, document)["components"]["schemas"]
    profile_schema = schemas["RegisterProfile"]["properties"]
    assert profile_schema["firstName"]["x-truncate-at"] == reg.NAME_LIMIT
    assert profile_schema["lastName"]["x-truncate-at"] == reg.NAME_LIMIT
    assert schemas["Identifier"]["properties"]["value"]["x-truncate-at"] == reg.EMAIL_LIMIT
    assert tuple(schemas["Source"]["enum"]) == reg.SOURCES


# -- truncation ------------------------------------------------------------------------------------
@given(
    first=st.text(max_size=300),
    last=st.text(max_size=300),
    local=st.text(
        alphabet=st.characters(blacklist_characters="@", blacklist_categories=("Zs", "Cc", "Zl", "Zp", "Cs")),
        min_size=1,
        max_size=400,
    ),
)
def test_names_and_emails_are_cut_never_refused(first: str, last: str, local: str) -> None:
    email = f"{local}@example.com"
    if any(c.isspace() for c in email):
        return
    parsed = reg.parse_registration(
        body(profile("INSTORE", ("email", email), firstName=first, lastName=last)), CONFIG
    ).profiles[0]
    assert parsed.first_name == first[:100] and parsed.last_name == last[:100]
    assert parsed.identifiers[0].value == email[:255]
    assert len(parsed.identifiers[0].value) == min(len(email), 255)


def test_only_emails_are_cut_and_mobiles_lose_the_plus() -> None:
    long_id = "E" * 400
    parsed = reg.parse_registration(
        body(profile("INSTORE", ("externalId", long_id), ("mobile", "+919800000001"))), CONFIG
    ).profiles[0]
    assert [i.value for i in parsed.identifiers] == [long_id, "919800000001"]
    assert reg.normalise_value("mobile", " +27721234565 ") == "27721234565"


# -- identifier and body checks ----------------------------------------------------------------------
def test_identifier_problems_are_all_collected_with_their_codes() -> None:
    found = failure(
        body(
            profile("INSTORE", ("email", "no-at-sign"), ("mobile", "12-34"), ("externalId", "  ")),
            profile("LINE", ("mobile", "919800000001"), ("mobile", "919800000002"), accountId="a"),
            profile("LINE", ("line", "U1"), accountId="a"),
        )
    )
    assert found == [
        ("profiles[0].identifiers[0].value", 8013),
        ("profiles[0].identifiers[1].value", 8014),
        ("profiles[0].identifiers[2].value", 8013),
        ("profiles[1].identifiers[1].value", 8013),
        ("profiles[2].source", 8014),
    ]


def test_several_cards_and_repeated_identifiers_are_fine() -> None:
    parsed = reg.parse_registration(
        body(
            profile(
                "INSTORE",
                ("cardnumber", "1"),
                ("cardnumber", "2"),
                ("mobile", "919800000001"),
                ("mobile", "+919800000001"),
            )
        ),
        CONFIG,
    ).profiles[0]
    assert [i.key for i in parsed.identifiers] == [("cardnumber", "1"), ("cardnumber", "2"), ("mobile", "919800000001")]


def test_extended_fields_and_enrolments_are_checked() -> None:
    found = failure(
        body(
            profile("INSTORE", ("mobile", "919800000001"))
            | {
                "identifiers": [
                    {
                        "type": "cardnumber",
                        "value": "1",
                        "seriesId": 73,
                        "extendedFields": {"custom_card_name": "M", "gender": "Male"},
                    },
                ]
            },
            extendedFields={"gender": "Robot", "shoe_size": "44", "city": 5, "custom_card_name": "x"},
            loyaltyProgramEnrollments=[{"programId": 1}, {"programId": 1}, {"programId": 2, "tierExpiryDate": "soon"}],
        )
    )
    assert found == [
        ("profiles[0].identifiers[0].extendedFields.gender", 8014),
        ("extendedFields.gender", 8014),
        ("extendedFields.shoe_size", 8014),
        ("extendedFields.city", 8014),
        ("extendedFields.custom_card_name", 8014),
        ("loyaltyProgramEnrollments[1].programId", 8014),
        ("loyaltyProgramEnrollments[2].tierExpiryDate", 8014),
    ]


def test_a_full_sample_is_read_into_a_registration() -> None:
    parsed = reg.parse_registration(
        {
            "loyaltyInfo": {"loyaltyType": "loyalty"},
            "associatedWith": "bukl.till",
            "profiles": [
                profile(
                    "MOBILE_APP",
                    ("mobile", "919804542631"),
                    accountId="testmobilepush1",
                    fields={"employee": "true"},
                    commChannels=[{"type": "mobile", "value": "919804542631"}],
                )
            ],
            "extendedFields": {"gender": "Male", "city": "Bangalore"},
            "loyaltyProgramEnrollments": [
                {"programId": 469, "tierNumber": 1, "loyaltyPoints": 75, "tierExpiryDate": "2025-02-11T16:36:17+05:30"}
            ],
            "statusLabel": "  ",
            "referralCode": "",
        },
        CONFIG,
    )
    assert parsed.profiles[0].account == ("MOBILE_APP", "testmobilepush1")
    assert parsed.enrolments[0].points == Decimal(75) and parsed.enrolments[0].tier_expiry is not None
    assert parsed.status_label is None and parsed.referral_code is None  # blank means not given
    assert (parsed.associated_with, parsed.loyalty_type) == ("bukl.till", "loyalty")


# -- resolution -----------------------------------------------------------------------------------------
def _resolve(
    raw: dict[str, Any], owners: dict[reg.IdentifierKey, int], accounts: dict[int, set[reg.AccountKey]]
) -> int | None:
    return reg.resolve(reg.parse_registration(raw, CONFIG), owners.get, lambda owner: accounts[owner])


def test_resolution_rules() -> None:
    owners = {("mobile", "1000001"): 1, ("email", "b@x.io"): 2}
    accounts = {1: {("INSTORE", "")}, 2: {("LINE", "a")}}
    assert _resolve(body(profile("INSTORE", ("mobile", "1000009"))), owners, accounts) is None
    assert _resolve(body(profile("LINE", ("mobile", "1000001"), accountId="a")), owners, accounts) == 1
    assert _resolve(body(profile("LINE", ("email", "b@x.io"), accountId="b")), owners, accounts) == 2
    with pytest.raises(Conflict) as same_source:
        _resolve(body(profile("INSTORE", ("mobile", "1000001"), ("email", "new@x.io"))), owners, accounts)
    assert same_source.value.code == 8006 and same_source.value.status == 409
    # customer 1 already has INSTORE: matched through another profile's identifier, still 8006
    with pytest.raises(Conflict):
        _resolve(
            body(profile("WEBSITE", ("mobile", "1000001")), profile("INSTORE", ("email", "c@x.io"))), owners, accounts
        )
    with pytest.raises(ValidationFailed) as two:
        _resolve(body(profile("WEBSITE", ("mobile", "1000001"), ("email", "b@x.io"))), owners, accounts)
    assert two.value.fields[0].code == 8014


# -- the customer book under any sequence of registrations -----------------------------------------------
POOL = [
    ("mobile", "9100000001"),
    ("mobile", "9100000002"),
    ("email", "a@x.io"),
    ("email", "b@x.io"),
    ("externalId", "e1"),
    ("cardnumber", "c1"),
    ("cardnumber", "c2"),
]
registrations = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from(["INSTORE", "LINE", "WEBSITE"]),
            st.sampled_from(["", "a1"]),
            st.lists(st.sampled_from(POOL), min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=2,
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150)
@given(sequence=registrations, seed=st.integers(0, 1000))
def test_book_invariants(sequence: list[list[tuple[str, str, list[tuple[str, str]]]]], seed: int) -> None:
    book = CustomerBook(random.Random(seed))
    for profiles in sequence:
        raw = body(*[profile(s, *ids, **({"accountId": a} if a else {})) for s, a, ids in profiles])
        before = {cid: c.record() for cid, c in book.customers.items()}
        index_before = dict(book.index)
        try:
            registration = reg.parse_registration(raw, CONFIG)
            outcome = book.register(registration, CONFIG, NOW, "till:t", {})
        except MockError as error:
            assert error.status in (400, 409)
            assert {cid: c.record() for cid, c in book.customers.items()} == before  # nothing changed
            assert book.index == index_before
            continue
        customer = book.customers[outcome.customer_id]
        assert outcome.created == (outcome.customer_id not in before)
        for p in registration.profiles:
            assert p.account in customer.accounts
        # every identifier belongs to exactly one customer, and the index says which
        held: dict[reg.IdentifierKey, int] = {}
        for cid, c in book.customers.items():
            for account in c.accounts.values():
                for ident in account.identifiers:
                    assert held.setdefault(ident.key, cid) == cid
        assert held == book.index
        for key, cid in book.index.items():
            assert book.lookup(None, *key).id == cid


def test_lookup_by_source_and_update_rules() -> None:
    book = CustomerBook(random.Random(1))
    registration = reg.parse_registration(
        body(
            profile("INSTORE", ("mobile", "9100000001"), firstName="A"), profile("LINE", ("line", "U1"), accountId="x")
        ),
        CONFIG,
    )
    created = book.register(registration, CONFIG, NOW, "till:t", {"entityId": "7"})
    assert book.lookup("LINE", "line", "U1").id == created.customer_id
    with pytest.raises(NotFound) as missing:
        book.lookup("INSTORE", "line", "U1")
    assert missing.value.code == 8015
    update = reg.parse_update({"profiles": [{"firstName": "B" * 120, "fields": {"k": "v"}}]}, CONFIG)
    book.update(created.customer_id, "INSTORE", update, NOW, "oauth:k", {})
    account = book.customers[created.customer_id].accounts[("INSTORE", "")]
    assert account.first_name == "B" * 100 and account.fields == {"k": "v"}
    with pytest.raises(NotFound):
        book.update(created.customer_id, "WEBSITE", update, NOW, "oauth:k", {})
    with pytest.raises(ValidationFailed) as changed:
        book.update(
            created.customer_id,
            "INSTORE",
            reg.parse_update({"profiles": [{"identifiers": [{"type": "mobile", "value": "1"}]}]}, CONFIG),
            NOW,
            "oauth:k",
            {},
        )
    assert changed.value.fields[0].code == 8013
    audit = [(a.action, a.actor, a.user_context) for a in book.customers[created.customer_id].audit]
    assert audit == [("register", "till:t", {"entityId": "7"}), ("update", "oauth:k", {})]


# -- side effects and warnings ------------------------------------------------------------------------------
@given(points=st.decimals(min_value=0, max_value=1_000_000_000, places=4))
def test_awards_are_raw_to_three_places_and_whole_points(points: Decimal) -> None:
    raw, awarded = reg.award(points)
    assert raw == points.quantize(Decimal("0.001"), rounding="ROUND_HALF_UP")
    assert awarded <= raw < awarded + 1 and isinstance(awarded, int)


def test_json_numbers() -> None:
    assert reg.json_number(Decimal("75.000")) == 75 and isinstance(reg.json_number(Decimal("75.000")), int)
    assert reg.json_number(Decimal("12.5")) == 12.5


def test_rewards_of_a_new_customer_in_order() -> None:
    config, errors = parse_config(
        {
            "welcome_points": "100.5",
            "welcome_alternate_currencies": [{"identifier": "rgpws7", "name": "ac1", "value": 110}],
            "welcome_coupons": [{"description": "Welcome", "valid_days": 1}],
        },
        CONFIG,
    )
    assert errors == []
    book = CustomerBook(random.Random(3))
    registration = reg.parse_registration(
        body(
            profile("INSTORE", ("mobile", "9100000001")),
            loyaltyProgramEnrollments=[{"programId": 469, "loyaltyPoints": 75.25}],
        ),
        config,
    )
    outcome = book.register(registration, config, NOW, "till:t", {})
    assert [e["type"] for e in outcome.side_effects] == ["points", "points", "alternate_currency", "coupon"]
    assert outcome.side_effects[0] == {
        "entityType": "USER",
        "rawAwardedPoints": 75.25,
        "awardedPoints": 75,
        "type": "points",
    }
    assert outcome.side_effects[1]["awardedPoints"] == 100
    assert outcome.side_effects[3]["validTill"] == "2026-01-02T23:59:59Z"
    customer = book.customers[outcome.customer_id]
    assert customer.points == 175 and customer.currencies == {"rgpws7": Decimal("110.000")}


def test_status_label_and_supplementary_warnings() -> None:
    plain = reg.parse_registration(body(profile("INSTORE", ("mobile", "9100000001"))), CONFIG)
    assert reg.status_label_warning(plain, CONFIG) == {
        "status": False,
        "code": 8107,
        "message": "Default customer status label not set",
    }
    labelled = reg.parse_registration(body(profile("INSTORE", ("mobile", "9100000001")), statusLabel="x"), CONFIG)
    assert reg.status_label_warning(labelled, CONFIG) is None
    assert reg.status_label_warning(plain, parse_config({"default_status_label": "Active"}, CONFIG)[0]) is None
    config = parse_config({"supplementary_program_ids": [7]}, CONFIG)[0]
    enrolments = reg.parse_registration(
        body(
            profile("INSTORE", ("mobile", "9100000001")),
            loyaltyProgramEnrollments=[
                {"programId": 1, "tierExpiryDate": "2026-06-01T00:00:00Z"},
                {"programId": 7, "tierExpiryDate": "2026-05-31T23:59:60Z"},
                {"programId": 8, "tierExpiryDate": "2026-01-01T00:00:00Z"},
            ],
        ),
        config,
    ).enrolments
    memberships = [e.tier_expiry for e in enrolments if e.program_id != 7 and e.tier_expiry]
    assert [w["code"] for w in reg.supplementary_warnings(enrolments, memberships, config)] == [1302]
    assert reg.supplementary_warnings(enrolments, [], config) == []
    assert reg.supplementary_warnings(enrolments, memberships, CONFIG) == []


# -- organisation settings ------------------------------------------------------------------------------------
def test_settings_merge_and_every_problem_is_named() -> None:
    config, errors = parse_config({"default_status_label": "Active"}, CONFIG)
    assert errors == [] and config.default_status_label == "Active" and config.extended_fields == CONFIG.extended_fields
    _, errors = parse_config(
        {
            "default_status_label": "",
            "welcome_points": "lots",
            "welcome_coupons": [{"valid_days": 0}, 3],
            "welcome_alternate_currencies": [{"identifier": "a", "name": "n", "value": "-1"}],
            "supplementary_program_ids": ["x"],
            "extended_fields": [{"name": "9bad", "scope": "ORDER"}],
            "token_ttl_seconds": 7200,
            "colour": "blue",
        },
        CONFIG,
    )
    assert sorted(e.field for e in errors) == sorted(
        [
            "settings.colour",
            "settings.default_status_label",
            "settings.welcome_points",
            "settings.welcome_coupons[0].description",
            "settings.welcome_coupons[0].valid_days",
            "settings.welcome_coupons[1]",
            "settings.welcome_alternate_currencies[0].value",
            "settings.supplementary_program_ids",
            "settings.extended_fields[0].name",
            "settings.extended_fields[0].scope",
            "settings.token_ttl_seconds",
        ]
    )
    assert parse_config([], CONFIG)[1][0].field == "settings"
