"""Schemathesis over the Let'sTrade POS operations with the domain handlers on (normal mode, strict):
positive and negative cases, no server error, every answer documented and matching its schema. The
POS's admin calls (minting and the reads) get the same treatment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from mock_server.settings import Settings
from mock_server.spec import load_document
from mock_server.testing import MockServer
from tests.integration.auth_headers import auth_headers

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
ADMIN_OPERATIONS = ["mintCode", "getPosCode", "getPosUser", "listPosOrders", "getPosOrder"]


@pytest.fixture(scope="module")
def pos_server() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, strict=True, apis=("letstrade-pos",))) as server:
        yield server


def _schema(name: str, examples: int) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(load_document(name))
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=examples)
    return schema


pos_schema = _schema("letstrade-pos", 25)
admin_schema = _schema("admin", 15).include(operation_id=ADMIN_OPERATIONS)


FINALISED: list[tuple[str, str]] = []  # (store_id, order_id) of orders the fuzzer finalised
VOUCHER = {"title": "fuzz", "apply_to": "BASKET", "discount_type": "PERCENT", "value": "10"}


def _realistic(case: schemathesis.Case, server: MockServer) -> None:
    """Positive cases only (negative ones must stay invalid): random codes would all be unknown (404),
    so each is replaced by a freshly minted code of the same type, and each basket gets a new uuid
    (generated ones repeat, and a finalised basket answers 409); refunds get a real order."""
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE or not isinstance(case.body, dict):
        return
    if case.operation.definition.raw.get("operationId") in ("getOfferings", "finaliseOfferings"):
        codes = case.body.get("code")
        if isinstance(codes, list) and codes:
            fresh = []
            for kind in dict.fromkeys(str(c)[:1] for c in codes):
                voucher = {"id": f"FUZZ-{uuid.uuid4().hex[:8]}", **VOUCHER}
                options = {"wallet_balance": "40.00", "card_limit": "25.00", "vouchers": [voucher]}
                minted = server.admin("POST", "/letstrade-pos/codes", json={"type": kind, **options})
                assert minted.status_code == 201, minted.text
                fresh.append(minted.json()["code"])
            case.body["code"] = fresh
        if isinstance(case.body.get("basket"), dict):  # generated baskets repeat uuids: already finalised
            case.body["basket"]["uuid"] = str(uuid.uuid4())
    elif case.operation.definition.raw.get("operationId") == "refund" and FINALISED:
        store_id, order_id = FINALISED.pop()
        case.body.update(store_id=store_id, order_id=order_id)
        case.body.pop("code", None)


@pos_schema.parametrize()
def test_letstrade_pos_operations(case: schemathesis.Case, pos_server: MockServer) -> None:
    headers = auth_headers("letstrade-pos", pos_server.credentials_cache())
    _realistic(case, pos_server)
    response = case.call_and_validate(
        base_url=pos_server.api_url("letstrade-pos"), session=pos_server.session, headers=headers, checks=CHECKS
    )
    if case.operation.definition.raw.get("operationId") == "finaliseOfferings" and response.status_code == 200:
        FINALISED.append((case.body["store_id"], response.json()["content"]["order_id"]))


@admin_schema.parametrize()
def test_letstrade_pos_admin_operations(case: schemathesis.Case, pos_server: MockServer) -> None:
    session: requests.Session = pos_server.session
    case.call_and_validate(base_url=f"{pos_server.base_url}/__admin", session=session, checks=CHECKS)
