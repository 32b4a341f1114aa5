"""Capillary over HTTP: the seed's sample registrations, the documented error codes, source
accounts, truncation, warnings, side effects, lookup/update round trips, OAuth expiry on the
virtual clock, the audit of USER-CONTEXT-* headers, and fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server.spec import build_spec, load_document
from mock_server.testing import MockServer
from tests.integration.auth_headers import capillary_basic

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "seed_samples" / "capillary"
REQUESTS = sorted(SAMPLES.glob("register_request_*.json"))
RESPONSES = {
    p.stem: json.loads(p.read_text(encoding="utf-8"))["body"] for p in SAMPLES.glob("register_response_*.json")
}
REGISTER_200 = build_spec("capillary", load_document("capillary")).by_id()["registerCustomer"].responses["200"].schema


def _auth(mock: MockServer) -> dict[str, str]:
    return {"Authorization": capillary_basic(mock.credentials_cache())}


def register(mock: MockServer, body: dict[str, Any], headers: dict[str, str] | None = None) -> requests.Response:
    return mock.session.post(
        mock.url("capillary", "/v2/customers"), json=body, headers={**_auth(mock), **(headers or {})}, timeout=30
    )


def lookup(mock: MockServer, source: str, name: str, value: str) -> requests.Response:
    return mock.session.get(
        mock.url("capillary", "/v2/customers/lookup/customerDetails"),
        params={"source": source, "identifierName": name, "identifierValue": value},
        headers=_auth(mock),
        timeout=30,
    )


def update(
    mock: MockServer, user_id: int, source: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> requests.Response:
    return mock.session.put(
        mock.url("capillary", f"/v2/customers/{user_id}"),
        params={"source": source},
        json=body,
        headers={**_auth(mock), **(headers or {})},
        timeout=30,
    )


def record(mock: MockServer, customer_id: int) -> dict[str, Any]:
    response = mock.admin("GET", f"/capillary/customers/{customer_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def load_fixtures(mock: MockServer, section: dict[str, Any]) -> requests.Response:
    return mock.admin("POST", "/fixtures", json={"capillary": section})


def profile(source: str = "INSTORE", *identifiers: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"identifiers": [{"type": t, "value": v} for t, v in identifiers], "source": source, **extra}


def codes(response: requests.Response) -> list[int]:
    return [item["code"] for item in response.json()["errors"]]


# -- the seed's samples --------------------------------------------------------------------------
@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_every_seed_sample_request_is_accepted_with_the_documented_shape(mock: MockServer, path: Path) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))["body"]
    response = register(mock, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert REGISTER_200 is not None and REGISTER_200.errors(answer) == []
    assert isinstance(answer["createdId"], int) and answer["createdId"] > 0
    first = body["profiles"][0]["identifiers"][0]
    if first["type"] in ("mobile", "email", "externalId", "cardnumber"):
        found = lookup(mock, body["profiles"][0]["source"], first["type"], first["value"])
        assert found.status_code == 200 and found.json()["id"] == answer["createdId"]


def test_the_75_point_enrolment_is_a_points_side_effect_credited_to_the_customer(mock: MockServer) -> None:
    body = json.loads((SAMPLES / "register_request_2_mobile_app.json").read_text(encoding="utf-8"))["body"]
    answer = register(mock, body).json()
    assert answer["sideEffects"] == [
        {"entityType": "USER", "rawAwardedPoints": 75.0, "awardedPoints": 75, "type": "points"}
    ]
    assert answer["sideEffects"] == RESPONSES["register_response_2_points"]["sideEffects"]
    assert answer["warnings"] == RESPONSES["register_response_2_points"]["warnings"]
    found = lookup(mock, "MOBILE_APP", "mobile", "919804542631").json()
    assert found["loyaltyPoints"] == 75
    assert record(mock, answer["createdId"])["loyalty"]["enrolments"][0]["awardedPoints"] == 75


def test_the_zero_point_enrolment_gives_the_first_sample_response(mock: MockServer) -> None:
    body = json.loads((SAMPLES / "register_request_1_instore.json").read_text(encoding="utf-8"))["body"]
    answer = register(mock, body).json()
    expected = RESPONSES["register_response_1_warning_8107"]
    assert answer["warnings"] == expected["warnings"] and answer["sideEffects"] == expected["sideEffects"] == []


def test_org_settings_reproduce_the_other_sample_responses(mock: MockServer) -> None:
    """Welcome points, alternate currency and coupons, configured as fixtures, give the seed's
    responses 3 to 6 (apart from the generated IDs and coupon codes)."""
    settings = {
        "default_status_label": "Active",
        "welcome_points": 200,
        "welcome_alternate_currencies": [{"identifier": "rgpws7", "name": "ac1", "value": "110"}],
        "welcome_coupons": [
            {"description": "Welcome Offer - 10% flat discount", "valid_till": "2025-07-29T23:59:59Z"},
            {"description": "DSG - $5 Coupon", "valid_days": 30},
        ],
    }
    assert load_fixtures(mock, {"settings": settings}).json() == {"loaded": {"capillary": 1}}
    mock.admin("POST", "/clock", json={"set": "2024-08-28T10:00:00Z"}).raise_for_status()
    body = json.loads((SAMPLES / "register_request_5_externalid.json").read_text(encoding="utf-8"))["body"]
    answer = register(mock, body).json()
    assert answer["warnings"] == []
    points, currency, coupon_1, coupon_2 = answer["sideEffects"]
    assert points == RESPONSES["register_response_6_coupons"]["sideEffects"][0]
    assert currency == {
        **RESPONSES["register_response_4_alternate_currency"]["sideEffects"][0],
        "rawAwardedValue": 110.0,
    }
    sample_coupon = RESPONSES["register_response_6_coupons"]["sideEffects"][1]
    assert {k: v for k, v in coupon_1.items() if k not in ("id", "couponCode", "trimmedCouponCode")} == {
        k: v for k, v in sample_coupon.items() if k not in ("id", "couponCode", "trimmedCouponCode")
    }
    assert coupon_2["validTill"] == "2024-09-27T23:59:59Z"  # 30 days from the clock, end of day
    assert coupon_1["couponCode"] == coupon_1["trimmedCouponCode"] and len(coupon_1["couponCode"]) == 8
    assert coupon_1["id"] != coupon_2["id"] and coupon_1["couponCode"] != coupon_2["couponCode"]
    stored = record(mock, answer["createdId"])["loyalty"]
    assert stored["points"] == "200" and stored["alternateCurrencies"] == {"rgpws7": "110.000"}
    assert [c["couponCode"] for c in stored["coupons"]] == [coupon_1["couponCode"], coupon_2["couponCode"]]


# -- documented error codes ----------------------------------------------------------------------
def test_an_invalid_source_is_3217_and_a_missing_one_8004(mock: MockServer) -> None:
    bad = register(mock, {"profiles": [profile("MYSPACE", ("mobile", "919800000001"))]})
    assert bad.status_code == 400 and codes(bad) == [3217]
    assert "profiles[0].source" in bad.json()["errors"][0]["message"]
    missing = register(mock, {"profiles": [{"identifiers": [{"type": "mobile", "value": "919800000001"}]}]})
    assert missing.status_code == 400 and codes(missing) == [8004]
    assert lookup(mock, "ALL", "mobile", "919800000001").status_code == 404


def test_no_identifiers_is_8005(mock: MockServer) -> None:
    for body in (
        {"profiles": []},
        {"profiles": [{"source": "INSTORE"}]},
        {"profiles": [{"source": "INSTORE", "identifiers": []}]},
        {"extendedFields": {}},
    ):
        response = register(mock, body)
        assert response.status_code == 400 and codes(response) == [8005], (body, response.text)


def test_lookup_with_an_invalid_source_is_8003_and_an_unknown_customer_8015(mock: MockServer) -> None:
    bad = lookup(mock, "EVERYWHERE", "mobile", "919800000001")
    assert bad.status_code == 400 and codes(bad) == [8003]
    missing = mock.session.get(  # no source at all: the same code as a bad one, not the generic 1400
        mock.url("capillary", "/v2/customers/lookup/customerDetails"),
        params={"identifierName": "mobile", "identifierValue": "919800000001"},
        headers=_auth(mock),
        timeout=30,
    )
    assert missing.status_code == 400 and codes(missing) == [8003], missing.text
    assert "query.source" in missing.text
    unknown = lookup(mock, "ALL", "mobile", "919800000001")
    assert unknown.status_code == 404 and codes(unknown) == [8015]
    assert unknown.json()["errors"][0]["message"].startswith("Customer not found for the given identifiers")


def test_invalid_identifiers_are_8013_and_a_bad_mobile_8014(mock: MockServer) -> None:
    bad_email = register(mock, {"profiles": [profile("INSTORE", ("email", "not-an-email"))]})
    assert bad_email.status_code == 400 and codes(bad_email) == [8013]
    two_mobiles = register(
        mock, {"profiles": [profile("INSTORE", ("mobile", "919800000001"), ("mobile", "919800000002"))]}
    )
    assert two_mobiles.status_code == 400 and codes(two_mobiles) == [8013]
    bad_mobile = register(mock, {"profiles": [profile("INSTORE", ("mobile", "98-00"))]})
    assert bad_mobile.status_code == 400 and codes(bad_mobile) == [8014]
    assert "profiles[0].identifiers[0].value" in bad_mobile.json()["errors"][0]["message"]
    assert lookup(mock, "ALL", "mobile", "919800000001").status_code == 404  # nothing registered


def test_the_same_identifier_for_the_same_source_is_8006_and_changes_nothing(mock: MockServer) -> None:
    first = register(mock, {"profiles": [profile("INSTORE", ("mobile", "919800000001"), firstName="Ada")]})
    assert first.status_code == 200
    customer_id = first.json()["createdId"]
    before = record(mock, customer_id)
    again = register(
        mock,
        {
            "profiles": [profile("INSTORE", ("mobile", "919800000001"), ("email", "new@example.com"), firstName="Eve")],
            "loyaltyProgramEnrollments": [{"programId": 469, "loyaltyPoints": 50}],
            "extendedFields": {"city": "Dublin"},
        },
    )
    assert again.status_code == 409 and codes(again) == [8006]
    assert again.json()["errors"][0]["message"].startswith("Customer already exists for same source")
    assert record(mock, customer_id) == before
    assert lookup(mock, "ALL", "email", "new@example.com").status_code == 404


def test_an_identifier_known_in_another_source_adds_a_source_account_to_the_same_customer(mock: MockServer) -> None:
    first = register(mock, {"profiles": [profile("INSTORE", ("mobile", "919800000001"), firstName="Ada")]}).json()
    line = register(
        mock,
        {
            "profiles": [
                profile(
                    "LINE",
                    ("mobile", "919800000001"),
                    ("line", "Ud7b7ec422d"),
                    accountId="2001914141242",
                    firstName="Ada L",
                )
            ],
            "loyaltyProgramEnrollments": [{"programId": 469, "loyaltyPoints": 75}],
        },
    )
    assert line.status_code == 200, line.text
    assert line.json() == {"createdId": first["createdId"], "warnings": [], "sideEffects": []}
    everything = lookup(mock, "ALL", "mobile", "919800000001").json()
    assert {(p["source"], p["accountId"], p["firstName"]) for p in everything["profiles"]} == {
        ("INSTORE", "", "Ada"),
        ("LINE", "2001914141242", "Ada L"),
    }
    assert everything["loyaltyPoints"] == 0  # existing customers are not updated by registration
    assert [p["source"] for p in lookup(mock, "LINE", "mobile", "919800000001").json()["profiles"]] == ["LINE"]
    # the LINE-only identifier is not in the INSTORE account
    assert lookup(mock, "INSTORE", "mobile", "919800000001").status_code == 200
    other_account = register(mock, {"profiles": [profile("LINE", ("mobile", "919800000001"), accountId="other")]})
    assert other_account.status_code == 200 and other_account.json()["createdId"] == first["createdId"]
    same_account = register(mock, {"profiles": [profile("LINE", ("mobile", "919800000001"), accountId="other")]})
    assert same_account.status_code == 409 and codes(same_account) == [8006]
    assert len(record(mock, first["createdId"])["sourceAccounts"]) == 3


def test_identifiers_of_two_different_customers_are_8014(mock: MockServer) -> None:
    a = register(mock, {"profiles": [profile("INSTORE", ("mobile", "919800000001"))]}).json()["createdId"]
    b = register(mock, {"profiles": [profile("INSTORE", ("email", "b@example.com"))]}).json()["createdId"]
    both = register(mock, {"profiles": [profile("WEBSITE", ("mobile", "919800000001"), ("email", "b@example.com"))]})
    assert both.status_code == 400 and codes(both) == [8014]
    assert str(a) in both.text and str(b) in both.text
    assert lookup(mock, "WEBSITE", "mobile", "919800000001").status_code == 404


def test_names_and_emails_are_truncated_not_rejected(mock: MockServer) -> None:
    long_first, long_last = "F" * 150, "é" * 101
    email = "a" * 250 + "@example.com"  # 262 characters
    response = register(
        mock, {"profiles": [profile("INSTORE", ("email", email), firstName=long_first, lastName=long_last)]}
    )
    assert response.status_code == 200, response.text
    stored = lookup(mock, "INSTORE", "email", email).json()["profiles"][0]
    assert stored["firstName"] == "F" * 100 and stored["lastName"] == "é" * 100
    assert stored["identifiers"] == [{"type": "email", "value": email[:255]}]
    assert lookup(mock, "INSTORE", "email", email[:255]).json()["id"] == response.json()["createdId"]
    # the same first 255 characters are the same identifier
    again = register(mock, {"profiles": [profile("INSTORE", ("email", email[:255] + "zzz"))]})
    assert again.status_code == 409 and codes(again) == [8006]


def test_mobiles_match_with_or_without_the_plus(mock: MockServer) -> None:
    created = register(mock, {"profiles": [profile("INSTORE", ("mobile", "+919800000001"))]}).json()["createdId"]
    assert lookup(mock, "ALL", "mobile", "919800000001").json()["id"] == created
    assert lookup(mock, "ALL", "mobile", "+919800000001").json()["id"] == created


# -- warnings ---------------------------------------------------------------------------------------
def test_8107_unless_a_status_label_is_given_or_configured(mock: MockServer) -> None:
    plain = register(mock, {"profiles": [profile("INSTORE", ("mobile", "919800000001"))]}).json()
    assert plain["warnings"] == [{"status": False, "code": 8107, "message": "Default customer status label not set"}]
    labelled = register(mock, {"profiles": [profile("INSTORE", ("mobile", "919800000002"))], "statusLabel": "active-1"})
    assert labelled.json()["warnings"] == []
    assert lookup(mock, "ALL", "mobile", "919800000002").json()["statusLabel"] == "active-1"
    assert "statusLabel" not in lookup(mock, "ALL", "mobile", "919800000001").json()
    load_fixtures(mock, {"settings": {"default_status_label": "Active"}}).raise_for_status()
    configured = register(mock, {"profiles": [profile("INSTORE", ("mobile", "919800000003"))]}).json()
    assert configured["warnings"] == []
    assert lookup(mock, "ALL", "mobile", "919800000003").json()["statusLabel"] == "Active"


def test_1302_when_a_supplementary_program_expires_before_the_membership(mock: MockServer) -> None:
    load_fixtures(mock, {"settings": {"supplementary_program_ids": [501]}}).raise_for_status()
    enrolments = [
        {"programId": 469, "tierNumber": 1, "loyaltyPoints": 200, "tierExpiryDate": "2026-02-11T16:36:17+05:30"},
        {"programId": 501, "tierNumber": 1, "tierExpiryDate": "2025-07-29T23:59:59Z"},
    ]
    body = {
        "profiles": [profile("INSTORE", ("mobile", "919800000001"))],
        "loyaltyProgramEnrollments": enrolments,
        "statusLabel": "Active",
    }
    answer = register(mock, body).json()
    assert answer["warnings"] == RESPONSES["register_response_6_coupons"]["warnings"]
    assert answer["sideEffects"] == [RESPONSES["register_response_6_coupons"]["sideEffects"][0]]
    later = [{**enrolments[0]}, {**enrolments[1], "tierExpiryDate": "2027-01-01T00:00:00Z"}]
    fine = register(
        mock, {**body, "profiles": [profile("INSTORE", ("mobile", "919800000002"))], "loyaltyProgramEnrollments": later}
    )
    assert fine.json()["warnings"] == []


# -- lookup, update, extended fields ---------------------------------------------------------------
def test_lookup_update_round_trip(mock: MockServer) -> None:
    created = register(
        mock,
        {
            "profiles": [
                profile(
                    "INSTORE",
                    ("mobile", "919800000001"),
                    ("email", "ada@example.com"),
                    firstName="Ada",
                    lastName="Byron",
                    fields={"employee": "true"},
                )
            ],
            "extendedFields": {"city": "London"},
        },
    ).json()["createdId"]
    changed = update(
        mock,
        created,
        "INSTORE",
        {
            "profiles": [
                {
                    "firstName": "Ada",
                    "lastName": "L" * 130,
                    "fields": {"dateofbirth": "10-12-1815"},
                    "commChannels": [{"type": "email", "value": "ada@example.com", "primary": True}],
                }
            ],
            "extendedFields": {"gender": "Female"},
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"createdId": created, "warnings": [], "sideEffects": []}
    found = lookup(mock, "INSTORE", "email", "ada@example.com").json()
    account = found["profiles"][0]
    assert account["lastName"] == "L" * 100
    assert account["fields"] == {"employee": "true", "dateofbirth": "10-12-1815"}
    assert account["commChannels"] == [{"type": "email", "value": "ada@example.com", "primary": True}]
    assert account["identifiers"] == [
        {"type": "mobile", "value": "919800000001"},
        {"type": "email", "value": "ada@example.com"},
    ]
    assert found["extendedFields"] == {"city": "London", "gender": "Female"}


def test_update_cannot_change_identifiers_or_source(mock: MockServer) -> None:
    created = register(mock, {"profiles": [profile("INSTORE", ("mobile", "919800000001"), firstName="Ada")]}).json()
    user = created["createdId"]
    swap = update(
        mock,
        user,
        "INSTORE",
        {"profiles": [{"identifiers": [{"type": "mobile", "value": "919800000009"}], "firstName": "Eve"}]},
    )
    assert swap.status_code == 400 and codes(swap) == [8013]
    moved = update(mock, user, "INSTORE", {"profiles": [{"source": "LINE", "firstName": "Eve"}]})
    assert moved.status_code == 400 and codes(moved) == [3217]
    bad_source = update(mock, user, "MYSPACE", {})
    assert bad_source.status_code == 400 and codes(bad_source) == [3217]
    same = update(
        mock,
        user,
        "INSTORE",
        {
            "profiles": [
                {
                    "identifiers": [{"type": "mobile", "value": "+919800000001"}],
                    "source": "INSTORE",
                    "firstName": "Ada B",
                }
            ]
        },
    )
    assert same.status_code == 200, same.text
    account = lookup(mock, "INSTORE", "mobile", "919800000001").json()["profiles"][0]
    assert account["firstName"] == "Ada B"
    assert lookup(mock, "ALL", "mobile", "919800000009").status_code == 404


def test_update_of_an_unknown_customer_or_source_account_is_8015(mock: MockServer) -> None:
    user = register(mock, {"profiles": [profile("INSTORE", ("mobile", "919800000001"))]}).json()["createdId"]
    missing = update(mock, user + 1 if user < 999_999_999 else 1, "INSTORE", {"profiles": [{"firstName": "X"}]})
    assert missing.status_code == 404 and codes(missing) == [8015]
    no_account = update(mock, user, "LINE", {"profiles": [{"firstName": "X"}]})
    assert no_account.status_code == 404 and codes(no_account) == [8015]


def test_extended_fields_listed_are_the_ones_accepted(mock: MockServer) -> None:
    listed = mock.session.get(mock.url("capillary", "/v2/extendedFields"), headers=_auth(mock), timeout=30).json()
    customer_level = {f["name"]: f for f in listed["data"] if f["scope"] == "CUSTOMER"}
    assert {"gender", "city", "state", "area", "zip", "dob", "acquisition_channel"} <= set(customer_level)
    accepted = register(
        mock,
        {
            "profiles": [profile("INSTORE", ("mobile", "919800000001"))],
            "extendedFields": {name: (f.get("possibleValues") or ["x"])[0] for name, f in customer_level.items()},
        },
    )
    assert accepted.status_code == 200, accepted.text
    unknown = register(
        mock, {"profiles": [profile("INSTORE", ("mobile", "919800000002"))], "extendedFields": {"shoe_size": "44"}}
    )
    assert unknown.status_code == 400 and codes(unknown) == [8014]
    assert "extendedFields.shoe_size" in unknown.json()["errors"][0]["message"]
    assert "GET /v2/extendedFields" in unknown.json()["errors"][0]["message"]
    bad_value = register(
        mock, {"profiles": [profile("INSTORE", ("mobile", "919800000002"))], "extendedFields": {"gender": "Robot"}}
    )
    assert bad_value.status_code == 400 and codes(bad_value) == [8014]
    card_field_on_customer = register(
        mock,
        {
            "profiles": [profile("INSTORE", ("mobile", "919800000002"))],
            "extendedFields": {"custom_card_name": "Mystays"},
        },
    )
    assert card_field_on_customer.status_code == 400
    update_unknown = update(mock, accepted.json()["createdId"], "INSTORE", {"extendedFields": {"shoe_size": "44"}})
    assert update_unknown.status_code == 400 and codes(update_unknown) == [8014]
    load_fixtures(mock, {"settings": {"extended_fields": [{"name": "shoe_size", "data_type": "STRING"}]}})
    relisted = mock.session.get(mock.url("capillary", "/v2/extendedFields"), headers=_auth(mock), timeout=30).json()
    assert [f["name"] for f in relisted["data"]] == ["shoe_size"]
    assert (
        register(
            mock, {"profiles": [profile("INSTORE", ("mobile", "919800000002"))], "extendedFields": {"shoe_size": "44"}}
        ).status_code
        == 200
    )


# -- authentication and audit ----------------------------------------------------------------------
def _token(mock: MockServer) -> requests.Response:
    cap = mock.credentials_cache()["capillary"]
    return mock.session.post(
        mock.url("capillary", "/v3/oauth/token/generate"),
        json={"key": cap["oauth_key"], "secret": cap["oauth_secret"]},
        timeout=30,
    )


def test_oauth_token_expires_by_the_virtual_clock(mock: MockServer) -> None:
    mock.admin("POST", "/clock", json={"frozen": True}).raise_for_status()
    issued = _token(mock)
    assert issued.status_code == 200
    data = issued.json()["data"]
    assert data["ttlSeconds"] == 3600 and data["accessToken"].count(".") == 2  # a JWT
    headers = {"CAP-API-ACCESS-TOKEN": data["accessToken"]}
    url = mock.url("capillary", "/v2/extendedFields")
    assert mock.session.get(url, headers=headers, timeout=30).status_code == 200
    mock.advance(3599)
    assert mock.session.get(url, headers=headers, timeout=30).status_code == 200
    mock.advance(1)
    expired = mock.session.get(url, headers=headers, timeout=30)
    assert expired.status_code == 401 and "expired" in expired.json()["errors"][0]["message"]
    fresh = _token(mock).json()["data"]["accessToken"]
    assert mock.session.get(url, headers={"CAP-API-ACCESS-TOKEN": fresh}, timeout=30).status_code == 200
    assert mock.session.get(url, headers={"CAP-API-ACCESS-TOKEN": fresh + "x"}, timeout=30).status_code == 401


def test_token_life_is_configurable_and_bad_secrets_are_refused(mock: MockServer) -> None:
    load_fixtures(mock, {"settings": {"token_ttl_seconds": 300}}).raise_for_status()
    mock.admin("POST", "/clock", json={"frozen": True}).raise_for_status()
    data = _token(mock).json()["data"]
    assert data["ttlSeconds"] == 300
    mock.advance(300)
    url = mock.url("capillary", "/v2/extendedFields")
    assert mock.session.get(url, headers={"CAP-API-ACCESS-TOKEN": data["accessToken"]}, timeout=30).status_code == 401
    cap = mock.credentials_cache()["capillary"]
    wrong = mock.session.post(
        mock.url("capillary", "/v3/oauth/token/generate"),
        json={"key": cap["oauth_key"], "secret": cap["oauth_secret"] + "x"},
        timeout=30,
    )
    assert wrong.status_code == 401 and wrong.json()["data"] is None
    assert cap["oauth_secret"] not in wrong.text


def test_basic_auth_needs_the_md5_of_the_password(mock: MockServer) -> None:
    import base64

    cap = mock.credentials_cache()["capillary"]
    plain = "Basic " + base64.b64encode(f"{cap['till_username']}:{cap['till_password']}".encode()).decode()
    url = mock.url("capillary", "/v2/extendedFields")
    assert mock.session.get(url, headers={"Authorization": plain}, timeout=30).status_code == 401
    assert mock.session.get(url, headers=_auth(mock), timeout=30).status_code == 200


def test_user_context_headers_are_recorded_with_the_customer(mock: MockServer) -> None:
    context = {
        "USER-CONTEXT-ENTITY-TYPE": "TILL",
        "USER-CONTEXT-ENTITY-ID": "75012",
        "USER-CONTEXT-ENTITY-SOURCE": "INSTORE",
        "USER-CONTEXT-ENTITY-SOURCE-ID": "store-9",
    }
    user = register(mock, {"profiles": [profile("INSTORE", ("mobile", "919800000001"))]}, headers=context)
    customer_id = user.json()["createdId"]
    token = _token(mock).json()["data"]["accessToken"]
    mock.session.put(
        mock.url("capillary", f"/v2/customers/{customer_id}"),
        params={"source": "INSTORE"},
        json={"profiles": [{"firstName": "Ada"}]},
        headers={"CAP-API-ACCESS-TOKEN": token, "USER-CONTEXT-ENTITY-ID": "agent-7"},
        timeout=30,
    ).raise_for_status()
    audit = record(mock, customer_id)["audit"]
    assert [(a["action"], a["actor"], a["sources"], a["userContext"]) for a in audit] == [
        (
            "register",
            "till:mock.till",
            ["INSTORE"],
            {"entityType": "TILL", "entityId": "75012", "entitySource": "INSTORE", "entitySourceId": "store-9"},
        ),
        ("update", f"oauth:{mock.credentials_cache()['capillary']['oauth_key']}", ["INSTORE"], {"entityId": "agent-7"}),
    ]


# -- fixtures --------------------------------------------------------------------------------------
def test_fixture_customers_load_and_a_bad_section_loads_nothing(mock: MockServer) -> None:
    good = {
        "customers": [
            {
                "id": 123456789,
                "profiles": [profile("INSTORE", ("mobile", "919800000001"))],
                "loyaltyProgramEnrollments": [{"programId": 469, "loyaltyPoints": 40}],
            },
            {"profiles": [profile("LINE", ("mobile", "919800000001"), accountId="a1")]},
        ]
    }
    assert load_fixtures(mock, good).json() == {"loaded": {"capillary": 2}}
    found = lookup(mock, "ALL", "mobile", "919800000001").json()
    assert found["id"] == 123456789 and found["loyaltyPoints"] == 40 and len(found["profiles"]) == 2
    bad = {
        "settings": {"welcome_points": -5, "colour": "blue"},
        "customers": [
            {"profiles": [profile("INSTORE", ("mobile", "919800000002"))]},
            {"profiles": [profile("MYSPACE", ("mobile", "919800000003"))]},
            {"profiles": [profile("INSTORE", ("mobile", "919800000001"))]},
        ],
    }
    refused = load_fixtures(mock, bad)
    assert refused.status_code == 400
    fields = [e["field"] for e in refused.json()["errors"]]
    assert "capillary.settings.welcome_points" in fields and "capillary.settings.colour" in fields
    assert "capillary.customers[1].profiles[0].source" in fields
    assert lookup(mock, "ALL", "mobile", "919800000002").status_code == 404  # nothing loaded
    conflict = load_fixtures(
        mock,
        {
            "customers": [
                {"profiles": [profile("INSTORE", ("mobile", "919800000002"))]},
                {"profiles": [profile("INSTORE", ("mobile", "919800000001"))]},
            ]
        },
    )
    assert conflict.status_code == 400 and "capillary.customers[1]" in conflict.text
    assert lookup(mock, "ALL", "mobile", "919800000002").status_code == 404


def test_admin_customer_view_is_404_for_an_unknown_customer(mock: MockServer) -> None:
    assert mock.admin("GET", "/capillary/customers/42").status_code == 404
