"""Schemathesis over Custom Trades with its handlers on (strict mode): positive and negative cases,
no server errors, every answer in its documented status and schema; then the stateful phase,
which follows the spec's links (create -> get / update / delete) so the 200 paths are fuzzed too."""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from mock_server.spec import load_document
from mock_server.testing import MockServer
from tests.integration.auth_headers import auth_headers

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    # beyond the common three: valid input is accepted, and the usage headers and content type are
    # the documented ones on every answer
    positive_data_acceptance,
    response_headers_conformance,
    content_type_conformance,
]

schema = schemathesis.openapi.from_dict(load_document("customtrades"))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=25)


@schema.parametrize()
def test_customtrades_operations(case: schemathesis.Case, mock_server: MockServer) -> None:
    session: requests.Session = mock_server.session
    headers = auth_headers("customtrades", mock_server.credentials_cache())
    case.call_and_validate(base_url=mock_server.api_url("customtrades"), session=session, headers=headers,
                           checks=CHECKS)


def test_customtrades_stateful_links(mock: MockServer) -> None:
    headers = auth_headers("customtrades", mock.credentials_cache())
    linked = schemathesis.openapi.from_dict(load_document("customtrades"))
    linked.config.update(base_url=mock.api_url("customtrades"), headers=headers)
    # `ignored_auth` sends a made-up X-API-Key next to our valid bearer key; the two schemes are
    # alternatives (either one authenticates), so a 200 there is right, not a bypass.
    # `negative_data_rejection` counts an unknown query parameter as invalid; like the vendor's
    # (and the conventions'), the mock ignores unknown parameters.
    linked.config.checks.update(excluded_check_names=["ignored_auth", "negative_data_rejection"])

    flow = linked.as_state_machine()
    flow.run(
        settings=settings(max_examples=15, stateful_step_count=8, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
    )
    # the default checks ran (server errors, status codes, schemas, headers, use after free ...) on
    # real traffic: created customers were read, updated and deleted through the links
    operations = {entry["operation_id"] for entry in mock.journal(api="customtrades") if entry["status"] == 200}
    assert operations == {"listCustomers", "createCustomer", "getCustomer", "updateCustomer", "deleteCustomer"}
