"""letstrade-channels with its handlers on (strict mode), under schemathesis: positive and negative
modes, no server errors, every answer of a documented status and matching its schema.

Positive cases are pointed at real channels (loaded as fixtures) so they reach the domain checks
instead of stopping at "unknown channel": customer upserts at an ACTIVE customer channel, product
upserts at a product channel, channel reads and updates at a channel of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from mock_server.spec import load_document
from mock_server.testing import MockServer

SLUG = "letstrade-channels"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
PERMISSIONS = {"products": {"read": True, "write": True}, "orders": {"read": False, "write": False}}
CUSTOMERS = {
    "_id": "690db9ed6fea8b111a53d001",
    "webhook_uuid": "db06990c-d70e-4c93-8cce-ef2737d2c001",
    "api_key": "c" * 32,
    "type": "customer_webhook",
    "channel_type": "customer",
    "status": "ACTIVE",
    "permissions": {**PERMISSIONS, "customers": {"read": True, "write": True}},
    "custom_field_schema": [
        {"name": "email", "type": "email", "required": False},
        {"name": "cell_number", "type": "phone", "required": False},
        {"name": "first_name", "type": "string", "required": False},
        {"name": "last_name", "type": "string", "required": False},
    ],
}
PRODUCTS = {
    **CUSTOMERS,
    "_id": "690db9ed6fea8b111a53d002",
    "webhook_uuid": "db06990c-d70e-4c93-8cce-ef2737d2c002",
    "api_key": "d" * 32,
    "type": "product_webhook",
    "channel_type": "product",
    "custom_field_schema": [
        {"name": "sku", "type": "string", "required": True},
        {"name": "title", "type": "string", "required": False},
    ],
}
MANAGED = {
    **CUSTOMERS,
    "_id": "690db9ed6fea8b111a53d003",
    "webhook_uuid": "db06990c-d70e-4c93-8cce-ef2737d2c003",
    "api_key": "e" * 32,
}


@pytest.fixture(scope="module")
def channels(mock_server: MockServer) -> Iterator[MockServer]:
    mock_server.reset()
    loaded = mock_server.admin("POST", "/fixtures", json={SLUG: {"channels": [CUSTOMERS, PRODUCTS, MANAGED]}})
    assert loaded.status_code == 200, loaded.text
    yield mock_server
    mock_server.reset()


schema = schemathesis.openapi.from_dict(load_document(SLUG))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=25)


def _aim(case: schemathesis.Case) -> dict[str, str]:
    """Point a positive case at a real channel; the headers that authenticate it."""
    operation_id = case.operation.definition.raw.get("operationId")
    target: dict[str, Any] = CUSTOMERS
    if operation_id == "upsertChannelProduct":
        target = PRODUCTS
    if case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE:
        if case.path_parameters and "webhook_uuid" in case.path_parameters:
            case.path_parameters["webhook_uuid"] = target["webhook_uuid"]
        if case.path_parameters and "channel_id" in case.path_parameters:
            case.path_parameters["channel_id"] = MANAGED["_id"]
    return {"X-API-Key": str(target["api_key"])}


@schema.parametrize()
def test_letstrade_channels_fuzz(case: schemathesis.Case, channels: MockServer) -> None:
    session: requests.Session = channels.session
    headers = {"Authorization": f"Bearer {channels.credentials_cache()['letstrade']['token']}", **_aim(case)}
    case.call_and_validate(base_url=channels.api_url(SLUG), session=session, headers=headers, checks=CHECKS)
