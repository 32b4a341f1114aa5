"""The boundary cases derived from the specs (`contracts/boundaries.py`), and the boundary checks
(`contracts/test_boundaries.py`) catching a mock that is one step off at a documented limit: the
suite runs in a subprocess (`-k boundaries`) against a mock patched here, and must report it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts import boundaries
from contracts.provenance import ProvenanceIndex
from contracts.specs import dereference
from mock_server.apis.base import ApiRequest, Services
from mock_server.settings import Settings
from mock_server.testing import MockServer
from tests.contracts.suite_runner import run_suite


def _document(field: dict[str, Any], parameter: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": "createThing",
        "x-provenance": "seed",
        "x-source": "q",
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "name": field,
                            "tags": {"type": "array", "items": {"$ref": "#/components/schemas/Tag"}},
                        },
                    }
                }
            }
        },
        "responses": {"200": {"description": "ok"}, "400": {"description": "bad"}},
    }
    if parameter:
        op["parameters"] = [parameter]
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {"/things": {"post": op}},
        "components": {
            "schemas": {"Tag": {"type": "string", "maxLength": 5, "x-provenance": "assumed", "x-assumption": "a"}}
        },
    }


def _limits(document: dict[str, Any]) -> list[boundaries.FieldLimit]:
    return boundaries.limits_in("things", dereference(document, document), ProvenanceIndex("things", document))


def _plan(limit: boundaries.FieldLimit) -> list[tuple[str, float, str]]:
    return [(c.position, c.size, c.expect) for c in boundaries.cases(limit)]


def test_max_length_10_yields_9_10_11() -> None:
    (name, tag) = _limits(_document({"type": "string", "maxLength": 10, "x-error-code": 77}))
    assert (name.field, name.keyword, name.limit, name.error_code) == (("name",), "maxLength", 10, 77)
    assert _plan(name) == [("below", 9, "whole"), ("at", 10, "whole"), ("above", 11, "refused")]
    assert name.provenance.value == "seed"
    # a limit inside an array item of a referenced schema, with that schema's provenance
    assert tag.field == ("tags", 0) and tag.limit == 5
    assert tag.provenance.value == "assumed" and tag.provenance.location == "things.yaml#/components/schemas/Tag"


def test_truncation_minimum_and_exclusive_limits() -> None:
    (cut, _) = _limits(_document({"type": "string", "x-truncate-at": 100}))
    assert _plan(cut) == [("below", 99, "whole"), ("at", 100, "whole"), ("above", 101, "cut")]
    (empty, _) = _limits(_document({"type": "string", "minLength": 1}))
    assert _plan(empty) == [("below", 0, "refused"), ("at", 1, "whole"), ("above", 2, "whole")]
    (zero, _) = _limits(_document({"type": "string", "minLength": 0}))
    assert _plan(zero) == [("at", 0, "whole"), ("above", 1, "whole")]  # no length below zero
    (low, high, _) = _limits(_document({"type": "integer", "minimum": 0, "exclusiveMaximum": 50}))
    assert _plan(low) == [("below", -1, "refused"), ("at", 0, "accepted"), ("above", 1, "accepted")]
    assert _plan(high) == [("below", 49, "accepted"), ("at", 50, "refused"), ("above", 51, "refused")]


def test_parameters_and_allof_parts_are_walked() -> None:
    parameter = {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}}
    found = _limits(_document({"type": "array", "allOf": [{"minItems": 1, "x-error-code": 8005}]}, parameter))
    assert [(f.location, f.field, f.keyword, f.limit, f.error_code) for f in found] == [
        ("query", ("limit",), "maximum", 100, None),
        ("body", ("name",), "minItems", 1, 8005),
        ("body", ("tags", 0), "maxLength", 5, None),
    ]


def test_the_specs_limits_are_found() -> None:
    capillary = {f.describe() for f in boundaries.field_limits("capillary")}
    assert "POST /v2/customers body profiles[].firstName x-truncate-at 100" in capillary
    assert "POST /v2/customers body profiles[].identifiers[].value x-truncate-at 255" in capillary
    customtrades = {f.describe() for f in boundaries.field_limits("customtrades")}
    assert "GET /v1/customers query limit maximum 100" in customtrades
    (code,) = boundaries.markers("letstrade-pos", "x-valid-for")
    assert code.duration() == boundaries.Duration(0, 600) and code.refused == "410"
    assert code.provenance.location == "letstrade-pos.yaml#/components/schemas/Code/x-valid-for"


def test_every_marked_validity_period_has_a_probe() -> None:
    from contracts.specs import SLUGS
    from contracts.test_boundaries import VALIDITY

    marked = {(m.api, m.pointer) for slug in SLUGS for m in boundaries.markers(slug, "x-valid-for")}
    assert marked == set(VALIDITY)


# -- the checks catch a mock one step off -----------------------------------------------------------
def _patch(mock: MockServer, slug: str, operation_id: str, make: Callable[[Any], Any]) -> None:
    definition = mock.services.runtimes[slug].definition
    definition.handlers = {**definition.handlers, operation_id: make(definition.handlers[operation_id])}


def names_cut_at_99(mock: MockServer) -> None:
    """Capillary registration keeps 99 characters of a first name instead of 100."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            body = request.body
            if isinstance(body, dict):
                for profile in body.get("profiles") or []:
                    if isinstance(profile, dict) and isinstance(profile.get("firstName"), str):
                        profile["firstName"] = profile["firstName"][:99]
            return original(services, store, request)

        return handler

    _patch(mock, "capillary", "registerCustomer", make)


def test_a_name_cut_one_character_early_is_reported(tmp_path: Path) -> None:
    """One run against a mock at a URL whose registration keeps 99 characters of a first name, and
    which enforces Capillary's documented 100 requests per minute and a Custom Trades quota of 150:
    the first name's cases at and above 100 are reported, at the operation's own provenance; the
    last name, cut correctly by the same mock, is the control inside the same run (no finding
    there); the rate limit and the quota are probed (N accepted, N+1 refused) and hold."""
    settings = Settings(port=0, strict=False, customtrades_quota=150, capillary_rpm=100)
    with MockServer(settings) as mock:
        names_cut_at_99(mock)
        run = run_suite(
            tmp_path,
            "--target",
            mock.base_url,
            "--allow-irreversible",
            "--api",
            "capillary",
            "--api",
            "customtrades",
            "-k",
            "capillary-registerCustomer or test_rate_limits",
        )
    assert run.returncode != 0, run.output[-3000:]
    findings = run.findings()
    assert {f["check"] for f in findings} == {"boundary_stored_whole", "boundary_truncated"}, findings
    assert {f["operation"] for f in findings} == {"POST /v2/customers"}, findings
    assert all(f["location"].startswith("capillary.yaml#/paths/~1v2~1customers/post") for f in findings), findings
    assert "firstName x-truncate-at 100: at (100 characters) must be whole" in run.output, run.output[-3000:]
    assert "firstName x-truncate-at 100: above (101 characters) must be cut" in run.output, run.output[-3000:]
    assert "lastName x-truncate-at" not in run.output, run.output[-3000:]
    outcomes = {name: t.outcome for name, t in run.tests.items()}
    assert outcomes == {
        "test_field_limits[capillary-registerCustomer]": "failed",
        "test_rate_limits_and_quotas[capillary]": "passed",
        "test_rate_limits_and_quotas[customtrades]": "passed",
    }, run.output[-3000:]
    assert run.tests["test_rate_limits_and_quotas[capillary]"].cases == 101
    assert run.tests["test_rate_limits_and_quotas[customtrades]"].cases == 152  # 1 reads the quota
