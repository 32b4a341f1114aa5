"""Realistic call sequences per API, made through any base URL (the proxy, a vendor double).

Each takes a `Client` and returns nothing: what matters is what the proxy records."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.integration.auth_headers import auth_headers, capillary_basic

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "seed_samples"


def sample(api: str, name: str) -> Any:
    return json.loads((SAMPLES / api / f"{name}.json").read_text(encoding="utf-8"))["body"]


class Client:
    def __init__(self, url: Callable[[str, str], str], creds: dict[str, Any], admin: Callable[..., requests.Response]):
        self.url = url  # (slug, path) -> URL
        self.creds = creds
        self.admin = admin  # the double's own admin API (set-up only the mock can do)
        self.session = requests.Session()
        self.answers: list[requests.Response] = []

    def call(self, slug: str, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        headers = {**(auth_headers(slug, self.creds) if auth else {}), **kwargs.pop("headers", {})}
        if slug == "letstrade-channels" and auth:
            headers.pop("X-API-Key", None)
        answer = self.session.request(method, self.url(slug, path), headers=headers, timeout=30, **kwargs)
        self.answers.append(answer)
        return answer


def customtrades(client: Client) -> None:
    made = client.call(
        "customtrades",
        "POST",
        "/v1/customers",
        json={"first_name": "Dana", "last_name": "Drift", "email": "dana.drift@example.com"},
    ).json()
    uid = made["data"]["uuid"]
    client.call("customtrades", "POST", "/v1/customers", json={"first_name": "Eli", "last_name": "Drift"})
    client.call("customtrades", "GET", f"/v1/customers/{uid}")
    client.call("customtrades", "PUT", f"/v1/customers/{uid}", json={"first_name": "Dana", "phone": "555-123-4567"})
    client.call("customtrades", "GET", "/v1/customers", params={"limit": 1})
    client.call("customtrades", "GET", "/v1/customers", params={"search": "Drift"})
    client.call("customtrades", "DELETE", f"/v1/customers/{uid}")
    client.call("customtrades", "GET", f"/v1/customers/{uid}")
    client.call("customtrades", "GET", "/v1/customers", auth=False)


def capillary(client: Client) -> None:
    cap = client.creds["capillary"]
    client.call(
        "capillary",
        "POST",
        "/v3/oauth/token/generate",
        auth=False,
        json={"key": cap["oauth_key"], "secret": cap["oauth_secret"]},
    )
    body = sample("capillary", "register_request_3_line")
    made = client.call("capillary", "POST", "/v2/customers", json=body).json()
    first = body["profiles"][0]
    identifier = first["identifiers"][0]
    client.call(
        "capillary",
        "GET",
        "/v2/customers/lookup/customerDetails",
        params={
            "source": first["source"],
            "identifierName": identifier["type"],
            "identifierValue": identifier["value"],
        },
    )
    client.call(
        "capillary",
        "PUT",
        f"/v2/customers/{made['createdId']}",
        params={"source": first["source"]},
        json={"profiles": [{"firstName": "Drift", "source": first["source"]}]},
    )
    client.call(
        "capillary",
        "GET",
        "/v2/customers/lookup/customerDetails",
        params={"source": "INSTORE", "identifierName": "mobile", "identifierValue": "919999999999"},
    )
    client.call("capillary", "GET", "/v2/extendedFields")
    client.call("capillary", "POST", "/v2/customers", json=body)  # the same identifier again


def loke(client: Client) -> None:
    lk = client.creds["loke"]
    org = lk["organization_id"]
    client.call(
        "loke",
        "POST",
        "/auth/token",
        auth=False,
        data={"grant_type": "client_credentials", "client_id": lk["client_id"], "client_secret": lk["client_secret"]},
    )
    client.call("loke", "GET", "/organizations")
    client.call("loke", "GET", f"/organizations/{org}")
    client.call("loke", "GET", f"/organizations/{org}/locations")
    customers = client.call("loke", "GET", f"/organizations/{org}/customers", params={"limit": 2}).json()
    customer = customers[0]["id"]
    client.call("loke", "GET", f"/organizations/{org}/customers/{customer}")
    client.call(
        "loke",
        "PUT",
        f"/organizations/{org}/customers/{customer}/points/drift-1",
        json={"amount": 10, "notes": "drift test"},
    )
    client.call("loke", "DELETE", f"/organizations/{org}/customers/{customer}/points/drift-1")
    client.call(
        "loke",
        "PUT",
        f"/organizations/{org}/webhooks/drift-hook",
        json={"url": "https://example.com/hook", "events": ["customer.created"], "secret": "hook-secret-1"},
    )
    client.call("loke", "GET", f"/organizations/{org}/webhooks")
    client.call("loke", "DELETE", f"/organizations/{org}/webhooks/drift-hook")
    made = client.call("loke", "POST", f"/organizations/{org}/customer-lists", json={"name": "Drift list"}).json()
    if isinstance(made, dict) and "id" in made:
        client.call("loke", "PUT", f"/organizations/{org}/customer-lists/{made['id']}/members/{customer}")
        client.call("loke", "GET", f"/organizations/{org}/customer-lists/{made['id']}/members")
    client.call("loke", "GET", f"/organizations/{org}/customers/01HZZZZZZZZZZZZZZZZZZZZZZZ")


def letstrade_channels(client: Client) -> None:
    lt = client.creds["letstrade"]
    client.call(
        "letstrade-channels",
        "POST",
        "/user/sign_in",
        auth=False,
        json={"email": lt["email"], "password": lt["password"]},
    )
    made = client.call(
        "letstrade-channels", "POST", "/v2/create/channel", json=sample("letstrade-channels", "create_channel_request")
    ).json()["content"]
    channel = made["channel"]
    client.call("letstrade-channels", "GET", "/v2/channels")
    client.call("letstrade-channels", "GET", f"/v2/channels/{channel['_id']}")
    client.call(
        "letstrade-channels",
        "POST",
        f"/v1/webhooks/channels/{channel['webhook_uuid']}/customers",
        auth=False,
        headers={"X-API-Key": made["api_key"]},
        json=sample("letstrade-channels", "upsert_customer_request"),
    )


def letstrade_pos(client: Client) -> None:
    """POS codes are minted through the mock's admin API (only the mock can): the caller records
    that set-up call in the HAR too, so the replay mints the same code."""
    lt = client.creds["letstrade"]
    client.call(
        "letstrade-pos", "POST", "/user/sign_in", auth=False, json={"email": lt["email"], "password": lt["password"]}
    )
    code = client.admin("POST", "/letstrade-pos/codes", json={"type": "P", "wallet_balance": "50.00"}).json()["code"]
    basket = {
        "uuid": str(uuid.uuid4()),
        "total": "12.00",
        "outstanding": "12.00",
        "product_list": [{"sku": "A", "pid": "pid-A", "quantity": "1", "price": "12.00", "title": "A"}],
    }
    body = {"store_id": "STORE-1", "terminal_id": "TILL-1", "basket": basket, "code": [code]}
    client.call("letstrade-pos", "POST", "/v1/get/offerings", json=body)
    final = {
        **body,
        "basket": {k: v for k, v in basket.items() if k != "outstanding"} | {"outstanding_amount": "12.00"},
    }
    client.call("letstrade-pos", "POST", "/v1/finalise/offerings", json=final)
    client.call("letstrade-pos", "POST", "/v1/finalise/offerings", json=final)  # again: 409
    client.call("letstrade-pos", "POST", "/v1/get/offerings", json={**body, "code": ["000000"]})


SCENARIOS: dict[str, Callable[[Client], None]] = {
    "customtrades": customtrades,
    "capillary": capillary,
    "loke": loke,
    "letstrade-channels": letstrade_channels,
    "letstrade-pos": letstrade_pos,
}

__all__ = ["SCENARIOS", "Client", "capillary_basic"]
