"""letstrade-channels over HTTP: the customer (and product) webhook of a channel. Every refusal is
checked for its status, the Let'sTrade envelope and that no customer was created or changed."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from mock_server.testing import MockServer

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "seed_samples" / "letstrade-channels"
SLUG = "letstrade-channels"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))["body"]


def bearer(mock: MockServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {mock.credentials_cache()['letstrade']['token']}"}


def create_channel(mock: MockServer, **changes: Any) -> dict[str, Any]:
    body = {**copy.deepcopy(sample("create_channel_request")), **changes}
    response = mock.session.post(mock.url(SLUG, "/v2/create/channel"), json=body, headers=bearer(mock), timeout=10)
    assert response.status_code == 200, response.text
    content: dict[str, Any] = response.json()["content"]
    return content


def upsert(mock: MockServer, channel: dict[str, Any], payload: Any, key: str | None = None) -> requests.Response:
    uuid = channel["channel"]["webhook_uuid"]
    headers = {"X-API-Key": key if key is not None else channel["api_key"]}
    return mock.session.post(
        mock.url(SLUG, f"/v1/webhooks/channels/{uuid}/customers"), json=payload, headers=headers, timeout=10
    )


def customers(mock: MockServer, **filters: str) -> list[dict[str, Any]]:
    response = mock.admin("GET", "/letstrade-channels/customers", params=filters)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["customers"]
    return found


def assert_refused(response: requests.Response, status: int, *fields: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False and isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list)
    named = [e["field"] for e in body["errors"]]
    for field in fields:
        assert field in named, f"{field} not named in {body}"
    return body


# -- the seed's samples ---------------------------------------------------------------------------
def test_the_seed_sample_upsert_answers_the_documented_customer(mock: MockServer) -> None:
    channel = create_channel(mock)
    response = upsert(mock, channel, sample("upsert_customer_request"))
    assert response.status_code == 200, response.text
    body = response.json()
    documented = sample("upsert_customer_response")
    assert set(body) == set(documented) and body["success"] is True
    assert body["message"] == "Customer successfully created/updated"
    content = body["content"]
    assert set(content) == set(documented["content"])
    assert (content["cell_number"], content["cell_country_code"]) == ("27721234565", "+27")
    assert (content["email"], content["name"], content["surname"]) == (
        "john.doe@example.com",
        "JohnChrisUser1Giordi6",
        "DoeChrisUser1Giordi6",
    )
    assert content["channels"] == [
        {"channel_id": channel["channel"]["_id"], "channel": "CUSTOMER_WEBHOOK", "name": "customer_webhook"}
    ]
    assert re.fullmatch(r"[0-9a-f]{24}", content["_id"])
    assert content["client_id"] == channel["channel"]["client_id"]
    assert (content["imported"], content["needs_password_change"], content["role"], content["status"]) == (
        True,
        True,
        "USER",
        "ACTIVE",
    )
    # the placeholder is in the documented PHC shape, the same for everybody, and not a hash of anything
    assert (
        content["password"].startswith("$argon2id$v=19$") and content["password"] != documented["content"]["password"]
    )
    clock = mock.admin("GET", "/clock").json()["now"]
    assert content["createdAt"] == content["updatedAt"] and content["createdAt"][:16] == clock[:16]


def test_a_second_upsert_updates_rather_than_duplicates(mock: MockServer) -> None:
    channel = create_channel(mock)
    seeded = customers(mock)  # letstrade-pos may seed customers into the shared store
    first = upsert(mock, channel, sample("upsert_customer_request")).json()["content"]
    mock.advance(90)
    second = upsert(
        mock, channel, {"email": "John.Doe@Example.com", "first_name": "John", "cell_number": "+27 72 123 4565"}
    ).json()["content"]
    assert second["_id"] == first["_id"]
    assert second["name"] == "John" and second["surname"] == first["surname"]  # only what was sent changed
    assert second["createdAt"] == first["createdAt"] and second["updatedAt"] > first["updatedAt"]
    assert len(second["channels"]) == 1
    assert [c["_id"] for c in customers(mock)] == [c["_id"] for c in seeded] + [first["_id"]]


def test_a_customer_known_by_cell_number_is_matched_and_gets_the_email(mock: MockServer) -> None:
    creds = mock.credentials_cache()["letstrade_channel"]  # the seeded demo channel: nothing required
    demo = {"channel": {"webhook_uuid": creds["webhook_uuid"]}, "api_key": creds["api_key"]}
    seeded = len(customers(mock))
    by_cell = upsert(mock, demo, {"cell_number": "+27721234565"}).json()["content"]
    assert "email" not in by_cell and "name" not in by_cell
    both = upsert(mock, demo, {"cell_number": "27721234565", "email": "ann@example.com", "first_name": "Ann"})
    assert both.json()["content"]["_id"] == by_cell["_id"]
    assert customers(mock, email="ANN@example.com")[0]["cell_number"] == "27721234565"
    assert customers(mock, email="ann@example.com", cell_number="+27721234565")[0]["_id"] == by_cell["_id"]
    assert len(customers(mock)) == seeded + 1


def test_custom_fields_are_kept_as_extra_data(mock: MockServer) -> None:
    schema = [
        *sample("create_channel_request")["custom_field_schema"],
        {"name": "tier", "type": "string", "required": False},
        {"name": "points", "type": "number", "required": False},
        {"name": "vip", "type": "boolean", "required": False},
        {"name": "joined", "type": "date", "required": False},
    ]
    channel = create_channel(mock, custom_field_schema=schema)
    base = {"email": "ann@example.com", "first_name": "Ann"}
    upsert(mock, channel, {**base, "tier": "gold", "points": 12.5, "vip": True})
    content = upsert(mock, channel, {**base, "tier": "platinum", "joined": "2024-02-29"}).json()["content"]
    assert content["extra_data"] == [
        {"name": "tier", "value": "platinum"},
        {"name": "points", "value": 12.5},
        {"name": "vip", "value": True},
        {"name": "joined", "value": "2024-02-29"},
    ]


# -- refusals: nothing is created or changed -------------------------------------------------------
@pytest.fixture
def world(mock: MockServer) -> dict[str, Any]:
    """A channel of the seed's sample, a second channel, and one customer already written."""
    channel = create_channel(mock)
    other = create_channel(mock)
    assert upsert(mock, channel, sample("upsert_customer_request")).status_code == 200
    assert upsert(mock, other, {"email": "ann@example.com", "first_name": "Ann", "cell_number": "+27830000001"}).ok
    return {"channel": channel, "other": other, "before": customers(mock)}


def _update(mock: MockServer, channel: dict[str, Any], body: dict[str, Any]) -> None:
    response = mock.session.patch(
        mock.url(SLUG, f"/v2/channels/{channel['channel']['_id']}"), json=body, headers=bearer(mock), timeout=10
    )
    assert response.status_code == 200, response.text


NEW_PERSON = {"email": "new.person@example.com", "first_name": "New", "cell_number": "+27839999999"}


@pytest.mark.parametrize(
    ("case", "status", "fields"),
    [
        ("another channel's key", 401, ["header.X-API-Key"]),
        ("a malformed key", 401, ["header.X-API-Key"]),
        ("no key", 401, []),
        ("an unknown channel", 404, []),
        ("an INACTIVE channel", 403, []),
        ("no customers.write", 403, []),
        ("a product channel", 403, []),
        ("no identifier", 400, ["email", "cell_number"]),
        ("a required field missing", 400, ["first_name"]),
        ("a malformed email", 400, ["email"]),
        ("an email the engine's format lets through", 400, ["email"]),
        ("a bad phone", 400, ["cell_number"]),
        ("fields not in the schema", 400, ["loyalty_id", "nickname"]),
        ("a value of the wrong type", 400, ["first_name"]),
        ("identifiers of two customers", 409, ["cell_number"]),
        ("a body that is not JSON", 400, []),
    ],
)
def test_refusals_change_nothing(
    mock: MockServer, world: dict[str, Any], case: str, status: int, fields: list[str]
) -> None:
    channel, other = world["channel"], world["other"]
    payload: Any = dict(NEW_PERSON)
    key: str | None = None
    target = channel
    if case == "another channel's key":
        key = other["api_key"]
    elif case == "a malformed key":
        key = "not-a-key"
    elif case == "an unknown channel":
        target = {"channel": {"webhook_uuid": "db06990c-d70e-4c93-8cce-ef2737d2cacd"}, "api_key": channel["api_key"]}
    elif case == "an INACTIVE channel":
        _update(mock, channel, {"status": "INACTIVE"})
    elif case == "no customers.write":
        perms = sample("create_channel_request")["permissions"]
        _update(mock, channel, {"permissions": {**perms, "customers": {"read": True, "write": False}}})
    elif case == "a product channel":
        target = create_channel(
            mock,
            type="product_webhook",
            channel_type="product",
            permissions={**sample("create_channel_request")["permissions"], "customers": {"read": True, "write": True}},
            custom_field_schema=[{"name": "sku", "type": "string", "required": True}],
        )
    elif case == "no identifier":
        payload = {"first_name": "Nobody", "last_name": "Known"}
    elif case == "a required field missing":
        payload = {"email": "new.person@example.com", "last_name": "Person"}
    elif case == "a malformed email":
        payload["email"] = "new.person.example.com"
    elif case == "an email the engine's format lets through":
        payload["email"] = "new..person@example.com"
    elif case == "a bad phone":
        payload["cell_number"] = "call me"
    elif case == "fields not in the schema":
        payload = {**payload, "loyalty_id": "L-1", "nickname": "Newt"}
    elif case == "a value of the wrong type":
        payload["first_name"] = 42
    elif case == "identifiers of two customers":
        payload = {"email": "john.doe@example.com", "first_name": "John", "cell_number": "+27830000001"}
    if case == "no key":
        uuid = channel["channel"]["webhook_uuid"]
        response = mock.session.post(
            mock.url(SLUG, f"/v1/webhooks/channels/{uuid}/customers"), json=payload, timeout=10
        )
    elif case == "a body that is not JSON":
        uuid = channel["channel"]["webhook_uuid"]
        response = mock.session.post(
            mock.url(SLUG, f"/v1/webhooks/channels/{uuid}/customers"),
            data=b'{"email": "x@example.com",',
            headers={"X-API-Key": channel["api_key"], "Content-Type": "application/json"},
            timeout=10,
        )
    else:
        response = upsert(mock, target, payload, key)
    body = assert_refused(response, status, *fields)
    assert channel["api_key"] not in json.dumps(body) and other["api_key"] not in json.dumps(body)
    assert customers(mock) == world["before"], f"{case} changed the customer store"


def test_unknown_fields_are_all_listed_in_the_message(mock: MockServer, world: dict[str, Any]) -> None:
    payload = {**NEW_PERSON, "zeta": 1, "alpha": 2}
    body = assert_refused(upsert(mock, world["channel"], payload), 400, "zeta", "alpha")
    assert "zeta" in body["message"] and "alpha" in body["message"] and "custom_field_schema" in body["message"]


def test_the_identifier_refusal_says_what_is_needed(mock: MockServer, world: dict[str, Any]) -> None:
    body = assert_refused(upsert(mock, world["channel"], {"first_name": "Nobody"}), 400)
    assert "email or cell_number" in body["message"]


def test_a_rotated_key_stops_working_and_the_new_one_works(mock: MockServer, world: dict[str, Any]) -> None:
    channel = world["channel"]
    rotated = mock.session.post(
        mock.url(SLUG, f"/v2/channels/{channel['channel']['_id']}/rotate-key"), headers=bearer(mock), timeout=10
    )
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["content"]["api_key"]
    assert_refused(upsert(mock, channel, NEW_PERSON), 401)
    assert customers(mock) == world["before"]
    assert upsert(mock, channel, NEW_PERSON, new_key).status_code == 200


def test_a_reactivated_channel_accepts_data_again(mock: MockServer, world: dict[str, Any]) -> None:
    channel = world["channel"]
    _update(mock, channel, {"status": "INACTIVE"})
    assert_refused(upsert(mock, channel, NEW_PERSON), 403)
    _update(mock, channel, {"status": "ACTIVE"})
    assert upsert(mock, channel, NEW_PERSON).status_code == 200


# -- products (assumed endpoint) ------------------------------------------------------------------
def test_product_channel_upserts_by_sku(mock: MockServer) -> None:
    seeded = customers(mock)
    perms = {**sample("create_channel_request")["permissions"], "products": {"read": True, "write": True}}
    channel = create_channel(
        mock,
        type="product_webhook",
        channel_type="product",
        permissions=perms,
        custom_field_schema=[
            {"name": "sku", "type": "string", "required": True},
            {"name": "title", "type": "string", "required": False},
            {"name": "price", "type": "number", "required": False},
        ],
    )
    assert channel["webhook_url"].endswith("/products")
    url = mock.url(SLUG, f"/v1/webhooks/channels/{channel['channel']['webhook_uuid']}/products")
    headers = {"X-API-Key": channel["api_key"]}
    first = mock.session.post(url, json={"sku": "SKU-1", "title": "Mug"}, headers=headers, timeout=10)
    assert first.status_code == 200, first.text
    second = mock.session.post(url, json={"sku": "SKU-1", "price": 89.99}, headers=headers, timeout=10).json()
    assert second["content"]["_id"] == first.json()["content"]["_id"]
    assert second["content"]["title"] == "Mug" and second["content"]["extra_data"] == [
        {"name": "price", "value": 89.99}
    ]
    assert second["content"]["channels"][0] == {
        "channel_id": channel["channel"]["_id"],
        "channel": "PRODUCT_WEBHOOK",
        "name": "product_webhook",
    }
    products = mock.admin("GET", "/letstrade-channels/products").json()
    assert products["count"] == 1
    refused = mock.session.post(url, json={"sku": "SKU-2", "colour": "red"}, headers=headers, timeout=10)
    assert_refused(refused, 400, "colour")
    # a customer channel's key, or a customer channel on the product endpoint, is refused
    customer_channel = create_channel(mock)
    wrong_key = mock.session.post(
        url, json={"sku": "SKU-3"}, headers={"X-API-Key": customer_channel["api_key"]}, timeout=10
    )
    assert_refused(wrong_key, 401)
    wrong_type = mock.session.post(
        mock.url(SLUG, f"/v1/webhooks/channels/{customer_channel['channel']['webhook_uuid']}/products"),
        json={"sku": "SKU-3"},
        headers={"X-API-Key": customer_channel["api_key"]},
        timeout=10,
    )
    assert_refused(wrong_type, 403)
    assert mock.admin("GET", "/letstrade-channels/products").json()["count"] == 1
    assert customers(mock) == seeded


# -- concurrency ----------------------------------------------------------------------------------
def test_200_concurrent_upserts_of_50_customers_make_50_customers(mock: MockServer) -> None:
    channel = create_channel(mock)
    seeded = {c["_id"] for c in customers(mock)}
    url = mock.url(SLUG, f"/v1/webhooks/channels/{channel['channel']['webhook_uuid']}/customers")
    headers = {"X-API-Key": channel["api_key"]}
    people = [
        {"email": f"person{i}@example.com", "first_name": f"P{i}", "cell_number": f"+2772{i:07d}"} for i in range(50)
    ]
    payloads = [
        {
            **people[i % 50],
            "last_name": f"round{i // 50}",
            **({"email": people[i % 50]["email"].upper()} if i % 3 else {}),
        }
        for i in range(200)
    ]

    async def run() -> list[tuple[int, str]]:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(payload: dict[str, Any]) -> tuple[int, str]:
                async with session.post(url, json=payload, headers=headers) as response:
                    body = await response.json()
                    return response.status, body["content"]["_id"] if response.status == 200 else json.dumps(body)

            return await asyncio.gather(*(one(p) for p in payloads))

    results = asyncio.run(run())
    assert all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:3]
    assert len({customer_id for _, customer_id in results}) == 50
    stored = [c for c in customers(mock) if c["_id"] not in seeded]
    assert len(stored) == 50 and len(customers(mock)) == len(seeded) + 50
    assert {c["email"].lower() for c in stored} == {p["email"] for p in people}
    assert {c["cell_number"] for c in stored} == {p["cell_number"][1:] for p in people}
    assert all(len(c["channels"]) == 1 for c in stored)
