"""One Let'sTrade customer store for both APIs: a customer upserted through a channel is the
customer `letstrade-pos` get/offerings finds by `cell_number`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mock_server.spec import load_document
from mock_server.testing import MockServer


def offerings_body(cell_number: str, basket_uuid: str) -> dict[str, Any]:
    """The POS spec's own get/offerings example, without codes or external vouchers, for this user."""
    operation = load_document("letstrade-pos")["paths"]["/v1/get/offerings"]["post"]
    body: dict[str, Any] = copy.deepcopy(operation["requestBody"]["content"]["application/json"]["example"])
    body["code"] = []
    body["basket"].pop("external_vouchers", None)
    body["basket"]["uuid"] = basket_uuid
    body["basket"]["user"] = {"cell_number": cell_number}
    return body


def customers(mock: MockServer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = mock.admin("GET", "/letstrade-channels/customers").json()["customers"]
    return found


def order_user(mock: MockServer, cell_number: str, basket_uuid: str) -> str:
    token = mock.credentials_cache()["letstrade"]["token"]
    response = mock.session.post(
        mock.url("letstrade-pos", "/v1/get/offerings"),
        json=offerings_body(cell_number, basket_uuid),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    order = mock.admin("GET", f"/letstrade-pos/orders/{response.json()['content']['order_id']}")
    assert order.status_code == 200, order.text
    user_id: str = order.json()["user_id"]
    return user_id


@pytest.mark.parametrize("pos_form", ["27721234565", "+27721234565", "+27 72 123 4565"])
def test_get_offerings_finds_the_customer_a_channel_upserted(mock: MockServer, pos_form: str) -> None:
    creds = mock.credentials_cache()["letstrade_channel"]
    upserted = mock.session.post(
        mock.url("letstrade-channels", f"/v1/webhooks/channels/{creds['webhook_uuid']}/customers"),
        json={"email": "john.doe@example.com", "first_name": "John", "cell_number": "+27721234565"},
        headers={"X-API-Key": creds["api_key"]},
        timeout=10,
    )
    assert upserted.status_code == 200, upserted.text
    before = customers(mock)
    assert order_user(mock, pos_form, "3f1c9a52-7d4e-4b8a-9c21-5e6f7a8b9c01") == upserted.json()["content"]["_id"]
    assert customers(mock) == before  # found, not created
    # the control: an unknown number is created by the POS, and then seen by the channel API too
    created = order_user(mock, "+27830000009", "3f1c9a52-7d4e-4b8a-9c21-5e6f7a8b9c02")
    assert created != upserted.json()["content"]["_id"]
    assert [c["_id"] for c in customers(mock)] == [c["_id"] for c in before] + [created]
    again = mock.session.post(
        mock.url("letstrade-channels", f"/v1/webhooks/channels/{creds['webhook_uuid']}/customers"),
        json={"cell_number": "27830000009", "first_name": "Walk-in"},
        headers={"X-API-Key": creds["api_key"]},
        timeout=10,
    )
    assert again.status_code == 200 and again.json()["content"]["_id"] == created
