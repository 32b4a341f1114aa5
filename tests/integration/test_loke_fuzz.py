"""LOKE's operations with the domain handlers on (strict mode: every answer is checked against its
spec), and the LOKE admin calls, under schemathesis: positive and negative modes, no server
error, every answer documented and matching its schema.

Positive cases are aimed at real records part of the time (the seeded organization, customers and
lists, a subscription), so the handlers' domain paths run, not only their 404s. The mock is reset
before each operation's test, so subscriptions a fuzz case creates never receive events from
another operation's cases; the one subscription made here points at a closed local port."""

from __future__ import annotations

import itertools
import socket
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from mock_server.spec import load_document
from mock_server.testing import MockServer

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
EXAMPLES = 25
# the mock is reset once per operation (not per case) on purpose: state builds up across cases
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _schema(name: str) -> Any:
    schema = schemathesis.openapi.from_dict(load_document(name))
    schema.config.generation.update(modes=MODES, max_examples=EXAMPLES)
    return schema


VENDOR = _schema("loke")
ADMIN = _schema("admin").include(tag="loke")


def _targets(mock: MockServer) -> dict[str, list[str]]:
    creds = mock.credentials_cache()["loke"]
    headers = {"Authorization": f"Bearer {creds['access_token']}"}
    base = mock.url("loke", f"/organizations/{creds['organization_id']}")
    customers = requests.get(f"{base}/customers", headers=headers, timeout=10).json()
    lists = requests.get(f"{base}/customer-lists", headers=headers, timeout=10).json()
    with socket.socket() as closed:  # a receiver that never answers: deliveries fail fast
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
    requests.put(f"{base}/webhooks/crm", headers=headers, timeout=10, json={
        "events": ["customer.created", "customer.updated", "customer.updated-statistics", "payment.completed",
                   "payment.refunded", "order.created", "order.accepted", "order.rejected", "order.completed"],
        "secret": "fuzz-secret", "url": f"http://127.0.0.1:{dead}/hooks"}).raise_for_status()
    return {
        "organizationId": [creds["organization_id"], creds["second_organization_id"]],
        "customerId": [c["id"] for c in customers],
        "listId": [cl["id"] for cl in lists],
        "webhookRef": ["crm"],
    }


_ROLLS = itertools.count()


def _aim(case: schemathesis.Case, targets: dict[str, list[str]]) -> None:
    """Point seven positive cases in eight at existing records (negative cases stay as generated):
    the seeded organization with its customers and lists, or the second organization when the
    path names nothing inside it."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE or not case.path_parameters:
        return
    roll = next(_ROLLS)
    if roll % 8 == 7:
        return
    params = case.path_parameters
    inside = any(name in params for name in ("customerId", "listId", "webhookRef"))
    for name in list(params):
        choices = targets.get(name)
        if not choices:
            continue
        if name == "organizationId":
            params[name] = choices[0] if inside or roll % 3 else choices[1]
        else:
            params[name] = choices[roll % len(choices)]


@pytest.fixture
def targets(mock: MockServer) -> dict[str, list[str]]:
    return _targets(mock)


@VENDOR.parametrize()
@FUZZ
def test_loke_operations_under_schemathesis(
    case: schemathesis.Case, mock: MockServer, targets: dict[str, list[str]]
) -> None:
    _aim(case, targets)
    token = mock.credentials_cache()["loke"]["access_token"]
    case.call_and_validate(
        base_url=mock.api_url("loke"),
        session=mock.session,
        headers={"Authorization": f"Bearer {token}"},
        checks=CHECKS,
    )


@ADMIN.parametrize()
@FUZZ
def test_loke_admin_calls_under_schemathesis(
    case: schemathesis.Case, mock: MockServer, targets: dict[str, list[str]]
) -> None:
    _aim(case, targets)
    case.call_and_validate(base_url=f"{mock.base_url}/__admin", session=mock.session, checks=CHECKS)
