"""LOKE's API over HTTP: the client-credentials token and its reach over organizations, customers,
points, webhook subscriptions, payments and customer lists, with errors in LOKE's envelope."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from mock_server.testing import MockServer

ULID_UNKNOWN = "01HZZZZZZZZZZZZZZZZZZZZZZ9"


class Client:
    def __init__(self, mock: MockServer, token: str | None = None) -> None:
        self.mock = mock
        self.creds = mock.credentials_cache()["loke"]
        self.org = self.creds["organization_id"]
        self.headers = {"Authorization": f"Bearer {token or self.creds['access_token']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.mock.url("loke", path), headers=self.headers, timeout=30, **kwargs)

    def org_path(self, path: str, org: str | None = None) -> str:
        return f"/organizations/{org or self.org}{path}"

    def token(self, **form: str) -> requests.Response:
        return requests.post(self.mock.url("loke", "/auth/token"), data=form, timeout=10)


@pytest.fixture
def api(mock: MockServer) -> Client:
    return Client(mock)


def _error(response: requests.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "type"} and body["type"] == kind, body
    message: str = body["message"]
    return message


# -- token and reach -------------------------------------------------------------------------------
def test_client_credentials_token_reaches_every_installed_organization_and_no_other(api: Client) -> None:
    response = api.token(grant_type="client_credentials", client_id=api.creds["client_id"],
                         client_secret=api.creds["client_secret"])
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    client = Client(api.mock, body["access_token"])
    for org in (api.creds["organization_id"], api.creds["second_organization_id"]):
        assert client.call("GET", client.org_path("/customers", org)).status_code == 200
    message = _error(client.call("GET", client.org_path("/customers", api.creds["not_installed_organization_id"])),
                     403, "forbidden")
    assert "not installed" in message
    _error(client.call("GET", client.org_path("/customers", ULID_UNKNOWN)), 404, "not_found")


def test_not_installed_organization_is_refused_on_every_operation(api: Client) -> None:
    org = api.creds["not_installed_organization_id"]
    for method, path, body in [
        ("GET", "/webhooks", None),
        ("PUT", "/webhooks/crm", {"events": ["customer.created"], "secret": "s", "url": "https://crm.example.com/h"}),
        ("GET", "/payments", None),
        ("GET", "/customer-lists", None),
        ("POST", "/customer-lists", {"name": "Sneaky"}),
    ]:
        _error(api.call(method, api.org_path(path, org), json=body), 403, "forbidden")


def test_basic_client_authentication_and_token_errors(api: Client) -> None:
    basic = base64.b64encode(f"{api.creds['client_id']}:{api.creds['client_secret']}".encode()).decode()
    ok = requests.post(api.mock.url("loke", "/auth/token"), data={"grant_type": "client_credentials"},
                       headers={"Authorization": f"Basic {basic}"}, timeout=10)
    assert ok.status_code == 200
    wrong = base64.b64encode(f"{api.creds['client_id']}:nope".encode()).decode()
    refused = requests.post(api.mock.url("loke", "/auth/token"), data={"grant_type": "client_credentials"},
                            headers={"Authorization": f"Basic {wrong}"}, timeout=10)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    creds = {"client_id": api.creds["client_id"], "client_secret": api.creds["client_secret"]}
    grant = api.token(grant_type="password", **creds)
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    missing = api.token(**creds)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    anonymous = api.token(grant_type="client_credentials")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    assert api.creds["client_secret"] not in refused.text + grant.text


def test_issued_token_expires_on_the_virtual_clock(api: Client) -> None:
    token = api.token(grant_type="client_credentials", client_id=api.creds["client_id"],
                      client_secret=api.creds["client_secret"]).json()["access_token"]
    client = Client(api.mock, token)
    api.mock.advance(3599)
    assert client.call("GET", client.org_path("/webhooks")).status_code == 200
    api.mock.advance(1)
    _error(client.call("GET", client.org_path("/webhooks")), 401, "unauthorized")
    assert api.call("GET", api.org_path("/webhooks")).status_code == 200  # the seeded token still works
    _error(Client(api.mock, "loke_forged").call("GET", api.org_path("/webhooks")), 401, "unauthorized")


# -- customers -------------------------------------------------------------------------------------
def test_customers_get_and_filters(api: Client) -> None:
    everyone = api.call("GET", api.org_path("/customers")).json()
    assert len(everyone) == 12 and "X-Next-Page" not in api.call("GET", api.org_path("/customers")).headers
    with_email = next(c for c in everyone if c["email"] and c["phoneNumber"])
    assert api.call("GET", api.org_path(f"/customers/{with_email['id']}")).json() == with_email
    by_email = api.call("GET", api.org_path("/customers"), params={"email": with_email["email"].upper()}).json()
    assert [c["id"] for c in by_email] == [with_email["id"]]
    by_phone = api.call("GET", api.org_path("/customers"), params={"phoneNumber": with_email["phoneNumber"]}).json()
    assert [c["id"] for c in by_phone] == [with_email["id"]]
    other = next(c for c in everyone if c["phoneNumber"] and c["id"] != with_email["id"])
    both = api.call("GET", api.org_path("/customers"),
                    params={"email": with_email["email"], "phoneNumber": other["phoneNumber"]})
    assert both.json() == []
    assert api.call("GET", api.org_path("/customers"), params={"email": "nobody@example.com"}).json() == []
    message = _error(api.call("GET", api.org_path(f"/customers/{ULID_UNKNOWN}")), 404, "not_found")
    assert ULID_UNKNOWN in message
    _error(api.call("GET", api.org_path("/customers/not-a-ulid")), 400, "validation_error")
    # organizations are isolated: a customer of one is not found in the other
    second = api.creds["second_organization_id"]
    _error(api.call("GET", api.org_path(f"/customers/{with_email['id']}", second)), 404, "not_found")


def test_statistics_follow_points_and_payments(api: Client, mock: MockServer) -> None:
    cid = mock.admin("POST", "/loke/events", json={"event": "customer.created", "customer": {
        "firstName": "Pat", "lastName": "Points"}}).json()["customer"]["id"]
    path = api.org_path(f"/customers/{cid}/points/order-1")
    assert api.call("PUT", path, json={"amount": 200, "notes": "order 1"}).status_code == 204
    _error(api.call("PUT", path, json={"amount": 5}), 409, "duplicate_point_record")
    assert api.call("PUT", api.org_path(f"/customers/{cid}/points/redeem-1"), json={"amount": -50}).status_code == 204
    unused = api.org_path(f"/customers/{cid}/points/x")
    _error(api.call("PUT", unused, json={"amount": -151}), 400, "insufficient_points")
    _error(api.call("PUT", unused, json={"amount": "ten"}), 400, "validation_error")
    _error(api.call("PUT", unused, json={"amount": 0}), 400, "validation_error")
    mock.admin("POST", "/loke/events", json={"event": "payment.completed", "payment": {
        "customer": {"id": cid}, "chargedAmount": 1250}}).raise_for_status()
    stats = api.call("GET", api.org_path(f"/customers/{cid}")).json()["statistics"]
    assert (stats["pointsBalance"], stats["totalPointsEarned"], stats["totalPointsRedeemed"], stats["totalSpend"]) == (
        150, 200, 50, 1250)
    assert api.call("DELETE", path).status_code == 204
    _error(api.call("DELETE", path), 404, "not_found")
    stats = api.call("GET", api.org_path(f"/customers/{cid}")).json()["statistics"]
    assert (stats["pointsBalance"], stats["totalPointsEarned"]) == (-50, 0)
    _error(api.call("PUT", api.org_path(f"/customers/{ULID_UNKNOWN}/points/a"), json={"amount": 1}), 404, "not_found")


# -- webhook subscriptions -------------------------------------------------------------------------
def test_webhook_upsert_by_ref_list_delete_and_the_secret_is_never_returned(api: Client, mock: MockServer) -> None:
    first = api.call("PUT", api.org_path("/webhooks/acme-crm"), json={
        "events": ["customer.created"], "secret": "first-secret", "url": "https://crm.example.com/a"})
    second = api.call("PUT", api.org_path("/webhooks/acme-crm"), json={
        "events": ["customer.created", "payment.completed"], "secret": "second-secret", "url": "https://crm.example.com/b"})
    assert first.status_code == second.status_code == 200
    assert second.json() == {"events": ["customer.created", "payment.completed"], "id": first.json()["id"],
                             "ref": "acme-crm", "url": "https://crm.example.com/b"}
    listed = api.call("GET", api.org_path("/webhooks"))
    assert listed.json() == [second.json()]
    assert "secret" not in listed.text and "secret" not in first.text
    journal = mock.journal(api="loke", operation_id="upsertWebhook")
    assert journal and all(entry["request"]["body"]["secret"] == "***" for entry in journal)
    second_org = api.creds["second_organization_id"]
    assert api.call("GET", api.org_path("/webhooks", second_org)).json() == []
    assert api.call("DELETE", api.org_path("/webhooks/acme-crm")).status_code == 204
    _error(api.call("DELETE", api.org_path("/webhooks/acme-crm")), 404, "not_found")
    assert api.call("GET", api.org_path("/webhooks")).json() == []
    bad = api.call("PUT", api.org_path("/webhooks/x"), json={"events": [], "secret": "s", "url": "ftp://x"})
    message = _error(bad, 400, "validation_error")
    assert "events" in message and "url" in message


# -- payments --------------------------------------------------------------------------------------
def test_payments_list_by_location_and_after_refund(api: Client, mock: MockServer) -> None:
    seeded = api.call("GET", api.org_path("/payments")).json()
    assert len(seeded) == 4 and all(p["currency"] == "AUD" for p in seeded)
    customer = seeded[0]["customer"]["id"]
    made = mock.admin("POST", "/loke/events", json={"event": "payment.completed", "payment": {
        "customer": {"id": customer}, "items": [{"name": "Scone", "amount": 500, "quantity": 3}]}}).json()
    location = made["location"]["id"]
    listed = api.call("GET", api.org_path("/payments")).json()
    assert listed[-1] == made["payment"] and listed[-1]["chargedAmount"] == 1500
    at_location = api.call("GET", api.org_path("/payments"), params={"locationId": location}).json()
    assert made["payment"] in at_location
    assert api.call("GET", api.org_path("/payments"), params={"locationId": "elsewhere"}).json() == []
    first = seeded[0]["id"]
    mock.admin("POST", "/loke/events", json={"event": "payment.refunded", "payment": {"id": first}}).raise_for_status()
    by_update = api.call("GET", api.org_path("/payments"), params={"sort": "updated"}).json()
    assert by_update[-1]["id"] == first


# -- customer lists --------------------------------------------------------------------------------
def test_customer_lists_and_members(api: Client) -> None:
    seeded = api.call("GET", api.org_path("/customer-lists")).json()
    assert [(cl["name"], cl["memberCount"]) for cl in seeded] == [("VIP Members", 3), ("Winter Promo 2024", 2)]
    created = api.call("POST", api.org_path("/customer-lists"), json={"name": "Coffee Club"})
    assert created.status_code == 201
    new = created.json()
    assert new["memberCount"] == 0 and api.call("GET", api.org_path(f"/customer-lists/{new['id']}")).json() == new
    customers = api.call("GET", api.org_path("/customers")).json()[:3]
    for c in (customers[2], customers[0], customers[2]):  # adding twice changes nothing
        assert api.call("PUT", api.org_path(f"/customer-lists/{new['id']}/members/{c['id']}")).status_code == 204
    members = api.call("GET", api.org_path(f"/customer-lists/{new['id']}/members")).json()
    assert [m["id"] for m in members] == [customers[2]["id"], customers[0]["id"]]
    assert members[0]["email"] == customers[2]["email"] and members[0]["addedAt"]
    assert api.call("GET", api.org_path(f"/customer-lists/{new['id']}")).json()["memberCount"] == 2
    membership = api.org_path(f"/customer-lists/{new['id']}/members/{customers[2]['id']}")
    assert api.call("DELETE", membership).status_code == 204
    _error(api.call("DELETE", membership), 404, "not_found")
    _error(api.call("PUT", api.org_path(f"/customer-lists/{new['id']}/members/{ULID_UNKNOWN}")), 404, "not_found")
    _error(api.call("GET", api.org_path("/customer-lists/nope")), 404, "not_found")
    _error(api.call("POST", api.org_path("/customer-lists"), json={"name": ""}), 400, "validation_error")
    second = api.creds["second_organization_id"]
    _error(api.call("GET", api.org_path(f"/customer-lists/{new['id']}", second)), 404, "not_found")


def test_loke_fixtures_load_all_or_nothing(api: Client, mock: MockServer) -> None:
    good = {"loke": {
        "customers": [
            {"id": "01JAAAAAAAAAAAAAAAAAAAAAAA", "firstName": "Fix", "lastName": "Ture", "email": "f@example.com"}
        ],
        "lists": [{"name": "From fixtures", "members": ["01JAAAAAAAAAAAAAAAAAAAAAAA"]}],
        "payments": [{"customer": {"id": "01JAAAAAAAAAAAAAAAAAAAAAAA"}, "chargedAmount": 990}],
    }}
    bad = {"loke": {**good["loke"], "payments": [{"customer": {"id": ULID_UNKNOWN}, "chargedAmount": 1}]}}
    refused = mock.admin("POST", "/fixtures", json=bad)
    assert refused.status_code == 400 and "loke.payments[0].customer.id" in refused.text
    _error(api.call("GET", api.org_path("/customers/01JAAAAAAAAAAAAAAAAAAAAAAA")), 404, "not_found")
    loaded = mock.admin("POST", "/fixtures", json=good)
    assert loaded.status_code == 200 and loaded.json()["loaded"] == {"loke": 3}
    assert api.call("GET", api.org_path("/customers/01JAAAAAAAAAAAAAAAAAAAAAAA")).json()["email"] == "f@example.com"
