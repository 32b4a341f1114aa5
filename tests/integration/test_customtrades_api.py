"""Custom Trades CRM over HTTP: every list parameter, isolation between companies, soft delete,
partial update, usage headers, and every 4xx in the `{success: false, error}` envelope."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from mock_server.testing import MockServer

API = "customtrades"
USAGE = ("X-Usage-Count", "X-Usage-Limit", "X-Usage-Resets")


class Client:
    """One company's view of the API."""

    def __init__(self, mock: MockServer, credentials: str = "customtrades", scheme: str = "bearer") -> None:
        self.mock = mock
        key = mock.credentials_cache()[credentials]["api_key"]
        self.headers = {"Authorization": f"Bearer {key}"} if scheme == "bearer" else {"X-API-Key": key}

    def call(self, method: str, path: str = "", **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.mock.session.request(
            method, self.mock.url(API, f"/v1/customers{path}"), headers=headers, timeout=30, **kwargs
        )

    def create(self, **body: Any) -> dict[str, Any]:
        response = self.call("POST", json={"first_name": "Ann", "last_name": "Lee", **body})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def listing(self, **params: Any) -> dict[str, Any]:
        response = self.call("GET", params=params)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def uuids(self, **params: Any) -> list[str]:
        return [c["uuid"] for c in self.listing(**params)["customers"]]


def assert_error(response: requests.Response, status: int, *mentions: str) -> dict[str, Any]:
    """A refusal in the vendor's envelope, naming what was wrong."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"]
    text = body["error"] + " ".join(f"{d['field']} {d['message']}" for d in body.get("details", []))
    for mention in mentions:
        assert mention in text, (mention, body)
    return body


@pytest.fixture
def acme(mock: MockServer) -> Client:
    return Client(mock)


@pytest.fixture
def beta(mock: MockServer) -> Client:
    return Client(mock, "customtrades_second_company", scheme="apikey")


# -- create ------------------------------------------------------------------------------------
def test_create_returns_every_attribute_with_defaults(acme: Client, mock: MockServer) -> None:
    now = mock.admin("GET", "/clock").json()["now"]
    customer = acme.create(email="ann@example.com", phone="206-555-1234", internal_flags={"gate": "1234"})
    assert customer["uuid"] and customer["first_name"] == "Ann" and customer["last_name"] == "Lee"
    assert customer["customer_type"] == "Residential" and customer["is_vip"] is False
    assert customer["internal_flags"] == {"gate": "1234"}
    assert customer["created_at"] == customer["updated_at"] >= now[:19]
    assert customer["deleted_at"] is None
    nulls = [k for k, v in customer.items() if v is None]
    assert set(nulls) == {
        "company_name", "physical_address1", "physical_address2", "physical_city", "physical_state",
        "physical_zip", "billing_address1", "billing_address2", "billing_city", "billing_state", "billing_zip",
        "primary_service_location_uuid", "notes", "on_my_way_notify_via", "deleted_at",
    }
    assert acme.call("GET", f"/{customer['uuid']}").json()["data"] == customer


def test_create_ignores_read_only_and_unknown_fields(acme: Client) -> None:
    sent = {"uuid": "123e4567-e89b-12d3-a456-426614174000", "created_at": "2000-01-01T00:00:00Z", "colour": "red"}
    customer = acme.create(**sent)
    assert customer["uuid"] != sent["uuid"]
    assert customer["created_at"] != "2000-01-01T00:00:00.000Z"
    assert "colour" not in customer


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"last_name": "Lee"}, "first_name"),
        ({"first_name": "Ann"}, "last_name"),
        ({"first_name": "", "last_name": "Lee"}, "first_name"),
        ({"first_name": "Ann", "last_name": "Lee", "phone": "2065551234"}, "phone"),
        ({"first_name": "Ann", "last_name": "Lee", "email": "not-an-email"}, "email"),
        ({"first_name": "Ann", "last_name": "Lee", "customer_type": "residential"}, "customer_type"),
        ({"first_name": "Ann", "last_name": "Lee", "on_my_way_notify_via": "pigeon"}, "on_my_way_notify_via"),
        ({"first_name": "Ann", "last_name": "Lee", "internal_flags": "{\"a\": 1}"}, "internal_flags"),
        ({"first_name": "Ann", "last_name": "Lee", "is_vip": "true"}, "is_vip"),
        ({"first_name": "Ann", "last_name": "Lee", "primary_service_location_uuid": "x"}, "primary_service_location"),
    ],
)
def test_create_refuses_bad_fields_and_stores_nothing(acme: Client, body: dict[str, Any], field: str) -> None:
    assert_error(acme.call("POST", json=body), 400, field)
    assert acme.listing()["pagination"]["total"] == 0


def test_create_refuses_a_body_that_is_not_json(acme: Client) -> None:
    assert_error(acme.call("POST", data=b"{not json", headers={"Content-Type": "application/json"}), 400, "JSON")
    assert_error(acme.call("POST", data=b"first_name=Ann", headers={"Content-Type": "text/plain"}), 415,
                 "application/json")
    assert_error(acme.call("POST", data=b"[]", headers={"Content-Type": "application/json"}), 400)
    assert acme.listing()["pagination"]["total"] == 0


# -- get / update ------------------------------------------------------------------------------
def test_get_answers_404_for_an_unknown_uuid_and_400_for_a_malformed_one(acme: Client) -> None:
    assert_error(acme.call("GET", "/123e4567-e89b-12d3-a456-426614174000"), 404, "Customer not found")
    assert_error(acme.call("GET", "/not-a-uuid"), 400, "uuid")


def test_a_uuid_in_capitals_finds_the_customer(acme: Client) -> None:
    customer = acme.create()
    assert acme.call("GET", f"/{customer['uuid'].upper()}").json()["data"]["uuid"] == customer["uuid"]


def test_update_is_partial_and_moves_updated_at_by_the_virtual_clock(acme: Client, mock: MockServer) -> None:
    customer = acme.create(email="ann@example.com", phone="206-555-1234", notes="gate code 1234",
                           physical_city="Seattle", physical_zip="98101")
    mock.advance(3600)
    response = acme.call("PUT", f"/{customer['uuid']}", json={"is_vip": True, "physical_city": "Tacoma",
                                                              "uuid": "ignored", "deleted_at": "2020-01-01T00:00:00Z"})
    assert response.status_code == 200, response.text
    updated = response.json()["data"]
    changed = {k for k in customer if customer[k] != updated[k]}
    assert changed == {"is_vip", "physical_city", "updated_at"}
    assert updated["physical_zip"] == "98101" and updated["notes"] == "gate code 1234"
    assert updated["updated_at"] > customer["updated_at"]
    assert updated["created_at"] == customer["created_at"]
    hours = int(updated["updated_at"][11:13]) - int(customer["updated_at"][11:13])
    assert hours % 24 == 1
    assert acme.call("GET", f"/{customer['uuid']}").json()["data"] == updated


def test_update_with_null_clears_a_nullable_attribute(acme: Client) -> None:
    customer = acme.create(email="ann@example.com", phone="206-555-1234", on_my_way_notify_via="sms")
    updated = acme.call("PUT", f"/{customer['uuid']}",
                        json={"email": None, "phone": None, "on_my_way_notify_via": None}).json()["data"]
    assert (updated["email"], updated["phone"], updated["on_my_way_notify_via"]) == (None, None, None)
    assert acme.listing(search="ann@example.com")["pagination"]["total"] == 0
    assert acme.listing(search="206-555")["pagination"]["total"] == 0


def test_update_refuses_bad_fields_and_changes_nothing(acme: Client) -> None:
    customer = acme.create()
    for body, field in (({"first_name": ""}, "first_name"), ({"phone": "555-1234"}, "phone"),
                        ({"customer_type": None}, "customer_type"), ({"is_vip": None}, "is_vip")):
        assert_error(acme.call("PUT", f"/{customer['uuid']}", json=body), 400, field)
    assert_error(acme.call("PUT", f"/{customer['uuid']}", data=b"x", headers={"Content-Type": "text/plain"}), 415)
    assert acme.call("GET", f"/{customer['uuid']}").json()["data"] == customer


def test_update_of_an_unknown_customer_is_404(acme: Client) -> None:
    assert_error(acme.call("PUT", "/123e4567-e89b-12d3-a456-426614174000", json={"notes": "x"}), 404)


def test_renaming_moves_the_customer_in_search(acme: Client) -> None:
    customer = acme.create(first_name="Zelda", last_name="Quinn")
    acme.call("PUT", f"/{customer['uuid']}", json={"first_name": "Yara", "customer_type": "Commercial"})
    assert acme.uuids(search="zel") == []
    assert acme.uuids(search="yara q") == [customer["uuid"]]
    assert acme.uuids(filter="commercial") == [customer["uuid"]]
    assert acme.uuids(filter="residential") == []


# -- soft delete -------------------------------------------------------------------------------
def test_soft_delete(acme: Client, mock: MockServer) -> None:
    kept, gone = acme.create(first_name="Kept"), acme.create(first_name="Gone", email="gone@example.com")
    mock.advance(60)
    response = acme.call("DELETE", f"/{gone['uuid']}")
    assert response.status_code == 200
    assert response.json() == {"success": True, "data": {"message": "Customer deleted successfully"}}

    assert acme.uuids() == [kept["uuid"]]
    assert acme.listing()["pagination"]["total"] == 1
    listed = acme.listing(include_deleted="true")
    assert [c["uuid"] for c in listed["customers"]] == [gone["uuid"], kept["uuid"]]
    deleted = listed["customers"][0]
    assert deleted["deleted_at"] is not None and deleted["deleted_at"] > gone["created_at"]
    assert deleted["updated_at"] == deleted["deleted_at"]
    assert acme.uuids(search="gone@example.com") == []
    assert acme.uuids(search="gone@example.com", include_deleted="true") == [gone["uuid"]]

    assert_error(acme.call("GET", f"/{gone['uuid']}"), 404, "Customer not found")
    assert_error(acme.call("PUT", f"/{gone['uuid']}", json={"notes": "x"}), 404)
    assert_error(acme.call("DELETE", f"/{gone['uuid']}"), 404)
    assert acme.listing(include_deleted="true")["customers"][0] == deleted  # nothing changed by the refusals


# -- isolation ---------------------------------------------------------------------------------
def test_a_key_never_sees_another_companys_customers(acme: Client, beta: Client) -> None:
    ours = acme.create(first_name="Acme", email="acme@example.com", phone="206-555-0001")
    theirs = beta.create(first_name="Beta", email="beta@example.com", phone="206-555-0002")
    assert acme.uuids() == [ours["uuid"]] and beta.uuids() == [theirs["uuid"]]
    for term in ("beta", "beta@example.com", "206-555-0002", theirs["uuid"]):
        assert acme.uuids(search=term, include_deleted="true") == []
    for method, body in (("GET", None), ("PUT", {"notes": "hijack"}), ("DELETE", None)):
        assert_error(acme.call(method, f"/{theirs['uuid']}", json=body), 404, "Customer not found")
    assert beta.call("GET", f"/{theirs['uuid']}").json()["data"] == theirs  # untouched


# -- list parameters ---------------------------------------------------------------------------
@pytest.fixture
def book(acme: Client, mock: MockServer) -> list[dict[str, Any]]:
    """Twelve customers, oldest first: residential/commercial, some VIP, one deleted."""
    created = []
    for index in range(12):
        created.append(acme.create(
            first_name=f"N{index:02d}", last_name="Book",
            customer_type="Commercial" if index % 3 == 0 else "Residential", is_vip=index % 4 == 0,
        ))
    acme.call("DELETE", f"/{created[5]['uuid']}")
    return created


def test_defaults_newest_first_and_pagination(acme: Client, book: list[dict[str, Any]]) -> None:
    data = acme.listing()
    live = [c["uuid"] for c in reversed(book) if c is not book[5]]
    assert [c["uuid"] for c in data["customers"]] == live
    assert data["pagination"] == {"page": 1, "limit": 50, "total": 11, "total_pages": 1}


@pytest.mark.parametrize(
    ("params", "indexes"),
    [
        ({"filter": "all"}, [11, 10, 9, 8, 7, 6, 4, 3, 2, 1, 0]),
        ({"filter": "residential"}, [11, 10, 8, 7, 4, 2, 1]),
        ({"filter": "commercial"}, [9, 6, 3, 0]),
        ({"filter": "vip"}, [8, 4, 0]),
        ({"filter": "residential", "include_deleted": "true"}, [11, 10, 8, 7, 5, 4, 2, 1]),
        ({"include_deleted": "false"}, [11, 10, 9, 8, 7, 6, 4, 3, 2, 1, 0]),
        ({"search": "n0"}, [9, 8, 7, 6, 4, 3, 2, 1, 0]),
        ({"search": "N1 book"}, [11, 10]),
        ({"search": "book", "filter": "vip"}, [8, 4, 0]),
        ({"search": "   "}, [11, 10, 9, 8, 7, 6, 4, 3, 2, 1, 0]),
        ({"search": "nobody"}, []),
    ],
)
def test_filters_and_search(acme: Client, book: list[dict[str, Any]], params: dict[str, str],
                            indexes: list[int]) -> None:
    data = acme.listing(**params)
    assert [c["uuid"] for c in data["customers"]] == [book[i]["uuid"] for i in indexes]
    assert data["pagination"]["total"] == len(indexes)


def test_pages_walk_the_whole_list_once_in_a_stable_order(acme: Client, book: list[dict[str, Any]]) -> None:
    seen: list[str] = []
    for page in range(1, 5):
        data = acme.listing(page=page, limit=3, include_deleted="true")
        assert data["pagination"] == {"page": page, "limit": 3, "total": 12, "total_pages": 4}
        seen += [c["uuid"] for c in data["customers"]]
    assert seen == [c["uuid"] for c in reversed(book)]
    past = acme.listing(page=5, limit=3, include_deleted="true")
    assert past["customers"] == [] and past["pagination"]["total"] == 12
    assert acme.uuids(page=2, limit=3, include_deleted="true") == seen[3:6]  # same answer twice


def test_search_fields(acme: Client) -> None:
    john = acme.create(first_name="John", last_name="O'Brien", email="John.OBrien@Example.com", phone="206-555-1234")
    acme.create(first_name="Jane", last_name="Doe", email="jane@example.com", phone="425-555-1234")
    for term in ("jo", "JOHN", "o'brien", "brien john", "john.obrien@example.COM", "john.ob", "206-555",
                 "(206) 555-1234", "2065551234", john["uuid"].upper()):
        assert acme.uuids(search=term) == [john["uuid"]], term
    assert len(acme.uuids(search="j")) == 2
    assert acme.uuids(search="555-1234") == []  # phone matches from its first digit
    assert acme.uuids(search=john["uuid"][:8]) == []  # an id matches whole


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filter": "gold"}, "query.filter"),
        ({"filter": "VIP"}, "query.filter"),
        ({"page": "0"}, "query.page"),
        ({"page": "-1"}, "query.page"),
        ({"page": "two"}, "query.page"),
        ({"page": "1.5"}, "query.page"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "101"}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"include_deleted": "yes"}, "query.include_deleted"),
    ],
)
def test_bad_list_parameters_are_400(acme: Client, params: dict[str, str], field: str) -> None:
    body = assert_error(acme.call("GET", params=params), 400, field)
    assert [d["field"] for d in body["details"]] == [field]


def test_limit_100_is_allowed(acme: Client) -> None:
    assert acme.listing(limit=100)["pagination"]["limit"] == 100


# -- authentication and usage headers ----------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer ctc_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        {"X-API-Key": "ctc_live_sk_test_1234567890abcdefghijklmnopqrstuvwxyz"},
        {"Authorization": "Basic Y3RjOmxpdmU="},
    ],
)
def test_missing_or_invalid_keys_are_401(mock: MockServer, headers: dict[str, str]) -> None:
    response = mock.session.get(mock.url(API, "/v1/customers"), headers=headers, timeout=30)
    assert_error(response, 401, "credentials")
    assert not any(name in response.headers for name in USAGE)  # no company, no usage to report


def test_both_key_headers_work(mock: MockServer) -> None:
    assert Client(mock, scheme="bearer").call("GET").status_code == 200
    assert Client(mock, scheme="apikey").call("GET").status_code == 200


def test_usage_headers_on_every_answer(acme: Client) -> None:
    answers = [
        acme.call("GET"),
        acme.call("POST", json={"first_name": "A", "last_name": "B"}),
        acme.call("GET", "/123e4567-e89b-12d3-a456-426614174000"),
        acme.call("GET", params={"limit": "0"}),
        acme.call("GET"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 404, 400, 200]
    for answer in answers:
        assert all(name in answer.headers for name in USAGE), answer.headers
        assert answer.headers["X-Usage-Limit"] == "0"  # the test server runs unlimited
        assert answer.headers["X-Usage-Resets"].endswith("-01T00:00:00.000Z")
    # a request refused by validation is not counted
    assert [int(a.headers["X-Usage-Count"]) for a in answers] == [1, 2, 3, 3, 4]


def test_reset_forgets_customers_and_usage(acme: Client, mock: MockServer) -> None:
    acme.create()
    mock.reset()
    response = acme.call("GET")
    assert response.json()["data"]["pagination"]["total"] == 0
    assert response.headers["X-Usage-Count"] == "1"


# -- fixtures ----------------------------------------------------------------------------------
def test_fixtures_load_customers_into_either_company(acme: Client, beta: Client, mock: MockServer) -> None:
    fixtures = {"customtrades": {"customers": [
        {"first_name": "Old", "last_name": "Timer", "uuid": "123E4567-E89B-42D3-A456-426614174000",
         "created_at": "2020-01-01T00:00:00Z", "deleted_at": "2021-06-01T12:00:00Z"},
        {"first_name": "New", "last_name": "Comer", "email": "new@example.com", "created_at": "2023-01-01T00:00:00Z"},
        {"first_name": "Other", "last_name": "Co", "company_id": "company-2"},
    ]}}
    response = mock.admin("POST", "/fixtures", json=fixtures)
    assert response.status_code == 200 and response.json() == {"loaded": {"customtrades": 3}}
    data = acme.listing(include_deleted="true")
    assert [c["first_name"] for c in data["customers"]] == ["New", "Old"]
    old = data["customers"][1]
    assert old["uuid"] == "123e4567-e89b-42d3-a456-426614174000"
    assert (old["created_at"], old["deleted_at"]) == ("2020-01-01T00:00:00.000Z", "2021-06-01T12:00:00.000Z")
    assert [c["first_name"] for c in beta.listing()["customers"]] == ["Other"]


def test_bad_fixtures_name_every_problem_and_load_nothing(acme: Client, mock: MockServer) -> None:
    fixtures = {"customtrades": {"customers": [
        {"first_name": "Fine", "last_name": "One"},
        {"first_name": "Bad", "last_name": "Phone", "phone": "12"},
        {"last_name": "Nameless", "company_id": "company-9"},
        {"first_name": "Twin", "last_name": "A", "uuid": "123e4567-e89b-42d3-a456-426614174000"},
        {"first_name": "Twin", "last_name": "B", "uuid": "123e4567-e89b-42d3-a456-426614174000"},
    ], "orders": []}}
    response = mock.admin("POST", "/fixtures", json=fixtures)
    assert response.status_code == 400
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"customtrades.customers[1].phone", "customtrades.customers[2].first_name",
            "customtrades.customers[2].company_id", "customtrades.customers[4].uuid",
            "customtrades.orders"} <= fields
    assert acme.listing()["pagination"]["total"] == 0
