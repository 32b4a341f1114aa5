"""Schemathesis over every Capillary operation with the domain handlers on (strict mode, so an
answer that breaks its schema is a 500): positive and negative modes; no server error, every
answer documented and matching its schema."""

from __future__ import annotations

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from mock_server.spec import load_document
from mock_server.testing import MockServer
from tests.integration.auth_headers import auth_headers

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]

schema = schemathesis.openapi.from_dict(load_document("capillary"))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=25)


@pytest.fixture(scope="module")
def seeded(mock_server: MockServer) -> MockServer:
    """The session mock (rpm 0), reset once, with one customer so lookups and updates can hit one."""
    mock = mock_server
    mock.reset()
    response = mock.session.post(
        mock.url("capillary", "/v2/customers"),
        json={"profiles": [{"identifiers": [{"type": "mobile", "value": "8795779625"}], "source": "INSTORE"}]},
        headers=auth_headers("capillary", mock.credentials_cache()),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return mock


@schema.parametrize()
def test_capillary_operations(case: schemathesis.Case, seeded: MockServer) -> None:
    headers = auth_headers("capillary", seeded.credentials_cache())
    case.call_and_validate(base_url=seeded.api_url("capillary"), session=seeded.session, headers=headers, checks=CHECKS)
