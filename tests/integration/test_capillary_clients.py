"""Capillary as the vendor's current samples and public integrations call it (issue 16): the OAuth
token in `X-CAP-API-OAUTH-TOKEN`, "fetch customer id" at `GET /v2/customers/lookup`, `source`
and `accountId` as query parameters of a registration, empty identifier values, and the admin
view of a customer's source accounts."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import requests

from mock_server.spec import load_document
from mock_server.testing import MockServer
from tests.integration.auth_headers import capillary_basic


def _basic(mock: MockServer) -> dict[str, str]:
    return {"Authorization": capillary_basic(mock.credentials_cache())}


def _token(mock: MockServer) -> str:
    cap = mock.credentials_cache()["capillary"]
    answer = requests.post(mock.url("capillary", "/v3/oauth/token/generate"),
                           json={"key": cap["oauth_key"], "secret": cap["oauth_secret"]}, timeout=30)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["data"]["accessToken"]
    return token


def _register(mock: MockServer, body: dict[str, Any], headers: dict[str, str] | None = None,
              params: dict[str, str] | None = None) -> requests.Response:
    return requests.post(mock.url("capillary", "/v2/customers"), json=body, params=params,
                         headers=headers if headers is not None else _basic(mock), timeout=30)


def _fetch_id(mock: MockServer, source: str, name: str, value: str,
              headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(mock.url("capillary", "/v2/customers/lookup"),
                        params={"source": source, "identifierName": name, "identifierValue": value},
                        headers=headers if headers is not None else _basic(mock), timeout=30)


def _error(response: requests.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert errors and all(item["status"] is False for item in errors)
    assert code in [item["code"] for item in errors], errors
    return " ".join(item["message"] for item in errors)


def _profile(mobile: str, **extra: Any) -> dict[str, Any]:
    return {"firstName": "Thandi", "lastName": "Mokoena", "identifiers": [{"type": "mobile", "value": mobile}],
            **extra}


# -- the OAuth token in X-CAP-API-OAUTH-TOKEN ----------------------------------------------------------
def test_the_oauth_token_is_accepted_in_x_cap_api_oauth_token_too(mock: MockServer) -> None:
    token = _token(mock)
    for header in ("X-CAP-API-OAUTH-TOKEN", "CAP-API-ACCESS-TOKEN"):
        mobile = "27821000001" if header.startswith("X-") else "27821000002"
        created = _register(mock, {"profiles": [_profile(mobile, source="INSTORE")]}, headers={header: token})
        assert created.status_code == 200, (header, created.text)
        found = _fetch_id(mock, "INSTORE", "mobile", mobile, headers={header: token})
        assert found.json() == {"entity": created.json()["createdId"], "warnings": []}
        looked_up = requests.get(mock.url("capillary", "/v2/customers/lookup/customerDetails"),
                                 params={"source": "ALL", "identifierName": "mobile", "identifierValue": mobile},
                                 headers={header: token}, timeout=30)
        assert looked_up.status_code == 200
    _error(_fetch_id(mock, "ALL", "mobile", "27821000001", headers={"X-CAP-API-OAUTH-TOKEN": "not-a-token"}),
           401, 1401)
    # the token is a secret in either header: the journal never shows it
    journal = requests.get(mock.admin_url("/requests"), params={"api": "capillary"}, timeout=30).text
    assert token not in journal and "not-a-token" not in journal
    mock.advance(3601)  # tokens live at most 60 minutes, whichever header carries them
    message = _error(_fetch_id(mock, "ALL", "mobile", "27821000001", headers={"X-CAP-API-OAUTH-TOKEN": token}),
                     401, 1401)
    assert "expired" in message


# -- fetch customer id ---------------------------------------------------------------------------------
def test_fetch_customer_id_answers_the_entity_and_the_lookups_errors(mock: MockServer) -> None:
    created = _register(mock, {"profiles": [_profile("27821000003", source="INSTORE",
                                                     identifiers=[{"type": "mobile", "value": "27821000003"},
                                                                  {"type": "email", "value": "thandi@example.com"}])]})
    assert created.status_code == 200, created.text
    customer_id = created.json()["createdId"]
    for source, name, value in (("INSTORE", "mobile", "27821000003"), ("ALL", "email", "thandi@example.com"),
                                ("INSTORE", "mobile", "+27821000003")):
        found = _fetch_id(mock, source, name, value)
        assert found.status_code == 200, found.text
        assert found.json() == {"entity": customer_id, "warnings": []}
    assert "not found" in _error(_fetch_id(mock, "ECOMMERCE", "mobile", "27821000003"), 404, 8015).lower()
    _error(_fetch_id(mock, "INSTORE", "mobile", "27829999999"), 404, 8015)
    assert "source" in _error(_fetch_id(mock, "NOWHERE", "mobile", "27821000003"), 400, 8003)
    missing = requests.get(mock.url("capillary", "/v2/customers/lookup"), params={"source": "ALL"},
                           headers=_basic(mock), timeout=30)
    text = _error(missing, 400, 1400)
    assert "identifierName" in text and "identifierValue" in text
    unauthenticated = requests.get(mock.url("capillary", "/v2/customers/lookup"),
                                   params={"source": "ALL", "identifierName": "mobile", "identifierValue": "1"},
                                   timeout=30)
    _error(unauthenticated, 401, 1401)


def test_the_literal_lookup_path_wins_over_the_user_id_template(mock: MockServer) -> None:
    """`/v2/customers/lookup` is not `/v2/customers/{userId}` with userId "lookup": a PUT there is
    405 (the lookup only answers GET), and `PUT /v2/customers/{id}` still updates."""
    put = requests.put(mock.url("capillary", "/v2/customers/lookup"), params={"source": "INSTORE"}, json={},
                       headers=_basic(mock), timeout=30)
    assert put.status_code == 405, put.text
    created = _register(mock, {"profiles": [_profile("27821000004", source="INSTORE")]})
    updated = requests.put(mock.url("capillary", f"/v2/customers/{created.json()['createdId']}"),
                           params={"source": "INSTORE"}, json={"profiles": [{"firstName": "Thandeka"}]},
                           headers=_basic(mock), timeout=30)
    assert updated.status_code == 200, updated.text


# -- source and accountId in the query of a registration ------------------------------------------------
def _accounts(mock: MockServer, customer_id: int) -> list[tuple[str, str]]:
    record = mock.admin("GET", f"/capillary/customers/{customer_id}")
    assert record.status_code == 200, record.text
    return [(a["source"], a["accountId"]) for a in record.json()["sourceAccounts"]]


def test_source_and_account_id_may_come_as_query_parameters(mock: MockServer) -> None:
    created = _register(mock, {"profiles": [_profile("27821000005")]},
                        params={"source": "WECHAT", "accountId": "wx-store-1"})
    assert created.status_code == 200, created.text
    assert _accounts(mock, created.json()["createdId"]) == [("WECHAT", "wx-store-1")]
    assert _fetch_id(mock, "WECHAT", "mobile", "27821000005").json()["entity"] == created.json()["createdId"]


def test_a_profiles_own_source_and_account_id_win_over_the_query(mock: MockServer) -> None:
    body = {"profiles": [_profile("27821000006", source="INSTORE"),
                         _profile("27821000006"),
                         _profile("27821000006", accountId="own-account")]}
    created = _register(mock, body, params={"source": "LINE", "accountId": "line-1"})
    assert created.status_code == 200, created.text
    assert _accounts(mock, created.json()["createdId"]) == [("INSTORE", ""), ("LINE", "line-1"),
                                                            ("LINE", "own-account")]


def test_a_profile_without_source_anywhere_is_8004_and_a_bad_query_source_3217(mock: MockServer) -> None:
    message = _error(_register(mock, {"profiles": [_profile("27821000007")]}), 400, 8004)
    assert "profiles[0].source" in message
    _error(_register(mock, {"profiles": [_profile("27821000007")]}, params={"source": "FAXMACHINE"}), 400, 3217)
    _error(_fetch_id(mock, "ALL", "mobile", "27821000007"), 404, 8015)  # nothing was registered


# -- identifiers ---------------------------------------------------------------------------------------
def test_an_empty_identifier_value_is_8013_and_the_spec_says_so() -> None:
    identifier = load_document("capillary")["components"]["schemas"]["Identifier"]["properties"]["value"]
    assert identifier["minLength"] == 1 and identifier["x-error-code"] == 8013


@pytest.mark.parametrize("value", ["", "   "])
def test_empty_identifier_values_are_refused_with_8013(mock: MockServer, value: str) -> None:
    body = {"profiles": [{"source": "INSTORE", "identifiers": [{"type": "email", "value": value}]}]}
    message = _error(_register(mock, body), 400, 8013)
    assert "profiles[0].identifiers[0].value" in message


# -- the admin view of a customer ------------------------------------------------------------------------
def test_admin_customer_source_accounts_match_their_declared_properties(mock: MockServer) -> None:
    schema = load_document("admin")["paths"]["/capillary/customers/{customerId}"]["get"]["responses"]["200"][
        "content"]["application/json"]["schema"]
    items = schema["properties"]["sourceAccounts"]["items"]
    assert set(items["required"]) <= set(items["properties"])
    created = _register(mock, {"profiles": [_profile("27821000008", source="INSTORE",
                                                     commChannels=[{"type": "mobile", "value": "27821000008"}])]})
    record = mock.admin("GET", f"/capillary/customers/{created.json()['createdId']}").json()
    jsonschema.validate(record, schema)
    account = record["sourceAccounts"][0]
    assert set(account) <= set(items["properties"])
    assert account["identifiers"] == [{"type": "mobile", "value": "27821000008"}]
