"""letstrade-channels over HTTP: sign-in and sign-up on the shared Let'sTrade identity; the tokens
work on both Let'sTrade APIs."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from mock_server.testing import MockServer

SLUG = "letstrade-channels"
CHANNEL = {
    "type": "customer_webhook",
    "channel_type": "customer",
    "status": "ACTIVE",
    "permissions": {
        "products": {"read": False, "write": False},
        "orders": {"read": False, "write": False},
        "customers": {"read": True, "write": True},
    },
    "custom_field_schema": [{"name": "email", "type": "email", "required": True}],
}
SIGN_UP = {
    "name": "John",
    "surname": "Doe",
    "cell_number": "+27721234565",
    "email": "john.doe@example.com",
    "password": "S3cret-passw0rd",
    "birthday": "1990-04-12",
    "device_id": "web-3f2a9c",
    "firebase_token": "fcm-token-0001",
    "get_communication": True,
    "agrees_terms_and_conditions": True,
    "loyalty_sign_up": False,
}


def post(mock: MockServer, path: str, body: Any, token: str | None = None, slug: str = SLUG) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return mock.session.post(mock.url(slug, path), json=body, headers=headers, timeout=10)


def customers(mock: MockServer, **filters: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = mock.admin("GET", "/letstrade-channels/customers", params=filters).json()["customers"]
    return found


def works_on_both_apis(mock: MockServer, token: str) -> None:
    assert post(mock, "/v2/create/channel", CHANNEL, token).status_code == 200
    # letstrade-pos checks the token before the body: an empty body is 400, not 401
    pos = post(mock, "/v1/get/offerings", {}, token, slug="letstrade-pos")
    assert pos.status_code == 400, pos.text
    assert post(mock, "/v1/get/offerings", {}, "lt_not-a-token", slug="letstrade-pos").status_code == 401


def test_the_seeded_user_signs_in_and_the_token_works_on_both_apis(mock: MockServer) -> None:
    creds = mock.credentials_cache()["letstrade"]
    response = post(mock, "/user/sign_in", {"email": creds["email"], "password": creds["password"]})
    assert response.status_code == 200, response.text
    content = response.json()["content"]
    assert content["user"]["email"] == creds["email"] and content["token"] != creds["token"]
    works_on_both_apis(mock, content["token"])


@pytest.mark.parametrize(
    "body",
    [
        {"email": "pos.operator@example.com", "password": "wrong"},
        {"email": "nobody@example.com", "password": "wrong"},
    ],
)
def test_wrong_credentials_are_401_without_saying_which(mock: MockServer, body: dict[str, str]) -> None:
    response = post(mock, "/user/sign_in", body)
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid email or password"


def test_sign_up_registers_a_customer_who_can_sign_in(mock: MockServer) -> None:
    seeded = len(customers(mock))
    response = post(mock, "/user/sign_up", SIGN_UP)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    user = body["content"]["user"]
    assert (user["email"], user["name"], user["surname"]) == ("john.doe@example.com", "John", "Doe")
    assert "password" not in str(user) and SIGN_UP["password"] not in response.text
    works_on_both_apis(mock, body["content"]["token"])
    signed_in = post(mock, "/user/sign_in", {"email": "JOHN.DOE@example.com", "password": SIGN_UP["password"]})
    assert signed_in.status_code == 200 and signed_in.json()["content"]["user"]["_id"] == user["_id"]
    [customer] = customers(mock, cell_number="27721234565")
    assert customer["_id"] == user["_id"] and len(customers(mock)) == seeded + 1
    assert (customer["cell_country_code"], customer["imported"], customer["needs_password_change"]) == (
        "+27",
        False,
        False,
    )
    assert (customer["get_communication"], customer["agrees_terms_and_conditions"]) == (True, True)


def test_sign_up_claims_a_customer_a_channel_imported(mock: MockServer) -> None:
    creds = mock.credentials_cache()["letstrade_channel"]
    imported = mock.session.post(
        mock.url(SLUG, f"/v1/webhooks/channels/{creds['webhook_uuid']}/customers"),
        json={"cell_number": "+27 72 123 4565", "first_name": "Johnny"},
        headers={"X-API-Key": creds["api_key"]},
        timeout=10,
    ).json()["content"]
    assert imported["needs_password_change"] is True
    seeded = len(customers(mock))
    response = post(mock, "/user/sign_up", SIGN_UP)
    assert response.status_code == 200, response.text
    assert response.json()["content"]["user"]["_id"] == imported["_id"]
    [customer] = customers(mock, email="john.doe@example.com")
    assert (customer["_id"], customer["name"], customer["needs_password_change"]) == (imported["_id"], "John", False)
    assert customer["channels"] == imported["channels"] and len(customers(mock)) == seeded


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"email": "JOHN.DOE@example.com", "cell_number": "+27830000000"}, 409, "email"),
        ({"email": "jane@example.com"}, 409, "cell_number"),  # John's number, John signed up
        ({"email": "jane@example.com", "cell_number": "+27 (0) abc"}, 400, "cell_number"),
        ({"email": "jane.example.com", "cell_number": "+27830000000"}, 400, "email"),
        ({"email": "jane..doe@example.com", "cell_number": "+27830000000"}, 400, "email"),
        ({"email": "jane@example.com", "password": "", "cell_number": "+27830000000"}, 400, "password"),
        (
            {"email": "jane@example.com", "get_communication": "yes", "cell_number": "+27830000000"},
            400,
            "get_communication",
        ),
    ],
)
def test_sign_up_refusals_register_nothing(mock: MockServer, change: dict[str, Any], status: int, field: str) -> None:
    assert post(mock, "/user/sign_up", SIGN_UP).status_code == 200
    before = customers(mock)
    response = post(mock, "/user/sign_up", {**SIGN_UP, **change})
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and field in [e["field"] for e in body["errors"]]
    assert customers(mock) == before
    if "password" in change:
        return
    attempt = post(
        mock, "/user/sign_in", {"email": change["email"], "password": change.get("password", SIGN_UP["password"])}
    )
    assert (attempt.status_code == 200) is (change["email"].lower() == "john.doe@example.com")  # only John exists


def test_sign_up_requires_email_password_and_name(mock: MockServer) -> None:
    response = post(mock, "/user/sign_up", {"surname": "Doe"})
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} >= {"email", "password", "name"}
