"""letstrade-channels over HTTP: creating, reading, changing channels and rotating their keys with a
bearer token; channel fixtures."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server.testing import MockServer

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "seed_samples" / "letstrade-channels"
SLUG = "letstrade-channels"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def sample(name: str) -> Any:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))["body"]


def bearer(mock: MockServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {mock.credentials_cache()['letstrade']['token']}"}


def call(mock: MockServer, method: str, path: str, body: Any = None, token: bool = True) -> requests.Response:
    headers = bearer(mock) if token else {}
    return mock.session.request(method, mock.url(SLUG, path), json=body, headers=headers, timeout=10)


def channel_list(mock: MockServer) -> list[dict[str, Any]]:
    response = call(mock, "GET", "/v2/channels")
    assert response.status_code == 200, response.text
    channels: list[dict[str, Any]] = response.json()["content"]["channels"]
    return channels


def refused(response: requests.Response, status: int, *fields: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False and body["message"] and isinstance(body["errors"], list)
    named = [e["field"] for e in body["errors"]]
    for field in fields:
        assert field in named, f"{field} not named in {body}"
    return body


def test_the_seed_sample_request_gives_the_seed_response_shape(mock: MockServer) -> None:
    response = call(mock, "POST", "/v2/create/channel", sample("create_channel_request"))
    assert response.status_code == 200, response.text
    body, documented = response.json(), sample("create_channel_response")
    assert body["success"] is True and body["message"] == documented["message"] == "Channel successfully created!"
    assert set(body) == set(documented)
    content = body["content"]
    assert set(content) == set(documented["content"]) == {"channel", "webhook_url", "api_key"}
    assert set(content["channel"]) == set(documented["content"]["channel"])  # exactly: no schema, no key
    channel = content["channel"]
    assert re.fullmatch(r"[0-9a-f]{24}", channel["_id"]) and re.fullmatch(r"[0-9a-f]{24}", channel["client_id"])
    assert UUID.fullmatch(channel["webhook_uuid"])
    assert re.fullmatch(r"[0-9a-f]{32}", content["api_key"])
    assert content["webhook_url"] == channel["webhook_url"] == f"/webhooks/channels/{channel['webhook_uuid']}/customers"
    expected = {
        k: v
        for k, v in documented["content"]["channel"].items()
        if k not in ("_id", "client_id", "webhook_uuid", "webhook_url")
    }
    assert {k: channel[k] for k in expected} == expected
    # the key is shown only here: reads never carry it
    listed = channel_list(mock)
    assert content["api_key"] not in json.dumps(listed)
    got = call(mock, "GET", f"/v2/channels/{channel['_id']}").json()["content"]["channel"]
    assert got["custom_field_schema"] == sample("create_channel_request")["custom_field_schema"]
    assert "api_key" not in got


def test_each_created_channel_gets_its_own_ids_and_key(mock: MockServer) -> None:
    made = [
        call(mock, "POST", "/v2/create/channel", sample("create_channel_request")).json()["content"] for _ in range(3)
    ]
    for key in ("_id", "webhook_uuid"):
        assert len({m["channel"][key] for m in made}) == 3
    assert len({m["api_key"] for m in made}) == 3
    assert len(channel_list(mock)) == 4  # with the seeded demo channel


def _broken(change: str) -> tuple[dict[str, Any], list[str]]:
    body = copy.deepcopy(sample("create_channel_request"))
    schema = body["custom_field_schema"]
    if change == "no identifier":
        body["custom_field_schema"] = [f for f in schema if f["name"] not in ("email", "cell_number")]
        return body, ["custom_field_schema"]
    if change == "only a field named custom":
        body["custom_field_schema"] = [{"name": "custom", "type": "string", "required": False}]
        return body, ["custom_field_schema"]
    if change == "bad channel_type":
        body["channel_type"] = "orders"
        return body, ["channel_type"]
    if change == "bad status":
        body["status"] = "PAUSED"
        return body, ["status"]
    if change == "missing permission object":
        del body["permissions"]["orders"]
        return body, ["permissions.orders"]
    if change == "permission not boolean":
        body["permissions"]["customers"]["write"] = "yes"
        return body, ["permissions.customers.write"]
    if change == "field type not in the set":
        schema[2]["type"] = "colour"
        return body, ["custom_field_schema[2].type"]
    if change == "field without required":
        del schema[1]["required"]
        return body, ["custom_field_schema[1].required"]
    if change == "field without name":
        del schema[1]["name"]
        return body, ["custom_field_schema[1].name"]
    if change == "duplicate field":
        schema.append(dict(schema[1]))
        return body, ["custom_field_schema[4].name"]
    if change == "core field of another type":
        schema[3]["type"] = "string"  # cell_number
        return body, ["custom_field_schema[3].type"]
    if change == "no schema":
        del body["custom_field_schema"]
        return body, ["custom_field_schema"]
    raise AssertionError(change)


@pytest.mark.parametrize(
    "change",
    [
        "no identifier",
        "only a field named custom",
        "bad channel_type",
        "bad status",
        "missing permission object",
        "permission not boolean",
        "field type not in the set",
        "field without required",
        "field without name",
        "duplicate field",
        "core field of another type",
        "no schema",
    ],
)
def test_a_bad_definition_is_400_naming_the_field_and_creates_nothing(mock: MockServer, change: str) -> None:
    body, fields = _broken(change)
    refused(call(mock, "POST", "/v2/create/channel", body), 400, *fields)
    assert len(channel_list(mock)) == 1  # only the seeded demo channel


def test_every_problem_of_a_definition_is_listed_at_once(mock: MockServer) -> None:
    body = copy.deepcopy(sample("create_channel_request"))
    body["custom_field_schema"] = [
        {"name": "email", "type": "phone", "required": True},
        {"name": "email", "type": "email", "required": True},
    ]
    result = refused(call(mock, "POST", "/v2/create/channel", body), 400)
    assert {e["field"] for e in result["errors"]} == {"custom_field_schema[0].type", "custom_field_schema[1].name"}


def test_a_customer_channel_keyed_by_cell_number_only_is_valid(mock: MockServer) -> None:
    body = copy.deepcopy(sample("create_channel_request"))
    body["custom_field_schema"] = [{"name": "cell_number", "type": "phone", "required": True}]
    assert call(mock, "POST", "/v2/create/channel", body).status_code == 200


@pytest.mark.parametrize("token", [None, "lt_not-a-token"])
def test_channel_management_needs_a_valid_token(mock: MockServer, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    demo_id = mock.credentials_cache()["letstrade_channel"]["channel_id"]
    for method, path, body in [
        ("POST", "/v2/create/channel", sample("create_channel_request")),
        ("GET", "/v2/channels", None),
        ("GET", f"/v2/channels/{demo_id}", None),
        ("PATCH", f"/v2/channels/{demo_id}", {"status": "INACTIVE"}),
        ("POST", f"/v2/channels/{demo_id}/rotate-key", None),
    ]:
        response = mock.session.request(method, mock.url(SLUG, path), json=body, headers=headers, timeout=10)
        refused(response, 401)
    assert len(channel_list(mock)) == 1
    assert channel_list(mock)[0]["status"] == "ACTIVE"


def test_a_channel_key_is_not_a_bearer_token(mock: MockServer) -> None:
    key = mock.credentials_cache()["letstrade_channel"]["api_key"]
    response = mock.session.get(mock.url(SLUG, "/v2/channels"), headers={"Authorization": f"Bearer {key}"}, timeout=10)
    refused(response, 401)


def test_update_changes_what_is_sent_and_refuses_the_rest(mock: MockServer) -> None:
    made = call(mock, "POST", "/v2/create/channel", sample("create_channel_request")).json()["content"]
    path = f"/v2/channels/{made['channel']['_id']}"
    schema = [{"name": "cell_number", "type": "phone", "required": True}]
    updated = call(
        mock, "PATCH", path, {"status": "INACTIVE", "custom_field_schema": schema, "channel_type": "customer"}
    )
    assert updated.status_code == 200, updated.text
    channel = updated.json()["content"]["channel"]
    assert (channel["status"], channel["custom_field_schema"]) == ("INACTIVE", schema)
    assert channel["permissions"] == sample("create_channel_request")["permissions"]
    before = call(mock, "GET", path).json()
    refused(call(mock, "PATCH", path, {"channel_type": "product", "status": "ACTIVE"}), 400, "channel_type")
    refused(call(mock, "PATCH", path, {"type": "other_webhook"}), 400, "type")
    refused(
        call(mock, "PATCH", path, {"custom_field_schema": [{"name": "x", "type": "string", "required": True}]}), 400
    )
    refused(call(mock, "PATCH", path, {"status": "DELETED"}), 400, "status")
    assert call(mock, "GET", path).json() == before


def test_unknown_channels_are_404(mock: MockServer) -> None:
    for method, path in [
        ("GET", "/v2/channels/690db9ed6fea8b111a53d070"),
        ("POST", "/v2/channels/690db9ed6fea8b111a53d070/rotate-key"),
    ]:
        refused(call(mock, method, path), 404)
    refused(call(mock, "PATCH", "/v2/channels/690db9ed6fea8b111a53d070", {"status": "ACTIVE"}), 404)
    refused(call(mock, "GET", "/v2/channels/not-an-id"), 400, "path.channel_id")


def test_rotate_returns_a_new_key_without_changing_the_channel(mock: MockServer) -> None:
    creds = mock.credentials_cache()["letstrade_channel"]
    rotated = call(mock, "POST", f"/v2/channels/{creds['channel_id']}/rotate-key")
    assert rotated.status_code == 200, rotated.text
    content = rotated.json()["content"]
    assert content["api_key"] != creds["api_key"] and re.fullmatch(r"[0-9a-f]{32}", content["api_key"])
    assert content["channel"]["webhook_uuid"] == creds["webhook_uuid"]
    # /__admin/credentials follows the demo channel's key; a reset brings the seeded key back
    assert mock.credentials()["letstrade_channel"]["api_key"] == content["api_key"]
    mock.reset()
    assert mock.credentials()["letstrade_channel"] == creds


# -- fixtures -------------------------------------------------------------------------------------
def _fixture_channel(**changes: Any) -> dict[str, Any]:
    return {
        **sample("create_channel_request"),
        "_id": "690db9ed6fea8b111a53d070",
        "webhook_uuid": "db06990c-d70e-4c93-8cce-ef2737d2cacd",
        "api_key": "97022b6605e2ab13eff7b75b37f068d2",
        **changes,
    }


def test_fixture_channels_work_with_their_keys(mock: MockServer) -> None:
    second = _fixture_channel(_id="690db9ed6fea8b111a53d071", webhook_uuid=None, api_key="0" * 32)
    del second["webhook_uuid"]
    loaded = mock.admin("POST", "/fixtures", json={"letstrade-channels": {"channels": [_fixture_channel(), second]}})
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["loaded"] == {"letstrade-channels": 2}
    got = call(mock, "GET", "/v2/channels/690db9ed6fea8b111a53d070").json()["content"]["channel"]
    assert got["webhook_uuid"] == "db06990c-d70e-4c93-8cce-ef2737d2cacd"
    upserted = mock.session.post(
        mock.url(SLUG, "/v1/webhooks/channels/db06990c-d70e-4c93-8cce-ef2737d2cacd/customers"),
        json=sample("upsert_customer_request"),
        headers={"X-API-Key": "97022b6605e2ab13eff7b75b37f068d2"},
        timeout=10,
    )
    assert upserted.status_code == 200, upserted.text
    assert upserted.json()["content"]["channels"][0]["channel_id"] == "690db9ed6fea8b111a53d070"


def test_bad_fixtures_name_every_problem_and_load_nothing(mock: MockServer) -> None:
    good = _fixture_channel()
    bad = _fixture_channel(
        _id="690db9ed6fea8b111a53d070",  # the same _id again
        api_key="short",
        channel_type="product",  # the seed schema has no sku
        colour="red",
    )
    response = mock.admin("POST", "/fixtures", json={"letstrade-channels": {"channels": [good, bad], "extra": []}})
    assert response.status_code == 400, response.text
    fields = {e["field"] for e in response.json()["errors"]}
    prefix = "letstrade-channels.channels[1]"
    assert {
        f"{prefix}._id",
        f"{prefix}.api_key",
        f"{prefix}.custom_field_schema",
        f"{prefix}.colour",
        f"{prefix}.webhook_uuid",
        "letstrade-channels.extra",
    } <= fields
    assert len(channel_list(mock)) == 1
