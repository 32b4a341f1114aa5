"""The engine alone (every operation answered from its spec's examples) under schemathesis:
positive and negative modes, no server errors, every answer matching its documented schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from mock_server.settings import SLUGS, Settings
from mock_server.spec import load_document
from mock_server.testing import MockServer
from tests.integration.auth_headers import auth_headers

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def engine() -> Iterator[MockServer]:
    settings = Settings(port=0, strict=True, examples_only=True, customtrades_quota=0, capillary_rpm=0)
    with MockServer(settings) as server:
        yield server


def _schema(slug: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(load_document(slug))
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=15)
    return schema


def _make_test(slug: str):  # type: ignore[no-untyped-def]
    schema = _schema(slug)

    @schema.parametrize()
    def test(case: schemathesis.Case, engine: MockServer) -> None:
        session: requests.Session = engine.session
        headers = auth_headers(slug, engine.credentials_cache())
        case.call_and_validate(base_url=engine.api_url(slug), session=session, headers=headers, checks=CHECKS)

    return test


for _slug in SLUGS:
    globals()[f"test_engine_{_slug.replace('-', '_')}"] = _make_test(_slug)
