"""The limit markers (`x-valid-for`, `x-page-size`, `x-rate-limit`, `x-quota`, and `x-truncate-at`)
are well formed in every spec (openapi/CONVENTIONS.md, "Limits the suite probes at their
boundary"), and a malformed one is reported, so the contract suite never silently skips a limit."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contracts.boundaries import marker_errors, markers, parse_duration
from tests.specs.conftest import VENDOR_SPECS, load


@pytest.mark.parametrize("name", VENDOR_SPECS)
def test_limit_markers_are_well_formed(name: str) -> None:
    assert marker_errors(load(name)) == []


def test_the_documented_limits_are_marked() -> None:
    """The limits the vendor documents state in words carry a marker (the suite finds them there)."""
    found = {
        (m.api, m.keyword) for slug in ("letstrade-pos", "customtrades", "capillary", "loke") for m in markers(slug)
    }
    assert {
        ("letstrade-pos", "x-valid-for"),  # codes: a 10-minute expiry
        ("customtrades", "x-page-size"),  # limit: max 100
        ("customtrades", "x-quota"),  # 50,000 requests per month
        ("capillary", "x-rate-limit"),  # 100 requests per minute (EMEA)
        ("capillary", "x-valid-for"),  # ttlSeconds
        ("loke", "x-page-size"),  # customer pages hold up to 1000 items
        ("loke", "x-valid-for"),  # expires_in
    } <= found


def _doc(**info_or_op: Any) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/things": {
                "get": {
                    "operationId": "listThings",
                    "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {"description": "ok"},
                        "400": {"description": "bad"},
                        "429": {"description": "slow"},
                    },
                }
            }
        },
        "components": {"schemas": {"Code": {"type": "string"}, "Ttl": {"type": "integer"}}},
    }


GOOD_PAGE = {
    "parameter": "limit",
    "max": 100,
    "items": "/data",
    "above": "refused",
    "refused": "400",
    "x-provenance": "seed",
    "x-source": "max: 100",
}


def _with(where: str, keyword: str, value: Any) -> dict[str, Any]:
    document = _doc()
    node = {
        "op": document["paths"]["/things"]["get"],
        "info": document["info"],
        "code": document["components"]["schemas"]["Code"],
        "ttl": document["components"]["schemas"]["Ttl"],
    }[where]
    node[keyword] = copy.deepcopy(value)
    return document


def test_well_formed_markers_pass() -> None:
    assert marker_errors(_with("op", "x-page-size", GOOD_PAGE)) == []
    valid = {"duration": "PT10M", "refused": "400", "x-provenance": "assumed", "x-assumption": "a guess"}
    assert marker_errors(_with("code", "x-valid-for", valid)) == []
    per_second = {**valid, "duration": "value-in-seconds"}
    assert marker_errors(_with("ttl", "x-valid-for", per_second)) == []
    rate = {"requests": 100, "per": "PT1M", "refused": "429", "x-provenance": "seed", "x-source": "100"}
    assert marker_errors(_with("info", "x-rate-limit", rate)) == []


@pytest.mark.parametrize(
    ("where", "keyword", "value", "complaint"),
    [
        (
            "code",
            "x-valid-for",
            {"duration": "10 minutes", "refused": "400", "x-provenance": "seed", "x-source": "q"},
            "ISO 8601",
        ),
        (
            "code",
            "x-valid-for",
            {"duration": "P1M", "refused": "400", "x-provenance": "seed", "x-source": "q"},
            "fixed length",
        ),
        (
            "code",
            "x-valid-for",
            {"duration": "PT10M", "refused": 410, "x-provenance": "seed", "x-source": "q"},
            "quoted 4xx",
        ),
        (
            "code",
            "x-valid-for",
            {"duration": "PT10M", "refused": "410", "x-provenance": "seed", "x-source": "q"},
            "documented by no",
        ),
        (
            "code",
            "x-valid-for",
            {"duration": "value-in-seconds", "refused": "400", "x-provenance": "seed", "x-source": "q"},
            "integer",
        ),
        ("code", "x-valid-for", {"duration": "PT10M", "refused": "400", "x-provenance": "assumed"}, "x-assumption"),
        ("code", "x-valid-for", {"duration": "PT10M", "refused": "400", "x-provenance": "seed"}, "x-source"),
        (
            "code",
            "x-valid-for",
            {"duration": "PT10M", "refused": "400", "x-provenance": "seed", "x-source": "q", "refuse": "400"},
            "unknown key",
        ),
        ("code", "x-valid-for", "PT10M", "mapping"),
        ("op", "x-page-size", {**GOOD_PAGE, "above": "capped"}, "above must be"),
        ("op", "x-page-size", {**GOOD_PAGE, "parameter": "size"}, "not a query parameter"),
        ("op", "x-page-size", {**GOOD_PAGE, "max": 0}, "at least 1"),
        ("op", "x-page-size", {**GOOD_PAGE, "items": "data"}, "JSON pointer"),
        ("op", "x-page-size", {k: v for k, v in GOOD_PAGE.items() if k != "refused"}, "goes with above: refused"),
        ("code", "x-page-size", GOOD_PAGE, "on an operation"),
        (
            "op",
            "x-rate-limit",
            {"requests": 100, "per": "PT1M", "refused": "429", "x-provenance": "seed", "x-source": "q"},
            "on info",
        ),
        (
            "info",
            "x-quota",
            {"requests": 100, "per": "monthly", "refused": "429", "x-provenance": "seed", "x-source": "q"},
            "ISO 8601",
        ),
        ("code", "x-truncate-at", 0, "at least 1"),
    ],
)
def test_malformed_markers_are_reported(where: str, keyword: str, value: Any, complaint: str) -> None:
    errors = marker_errors(_with(where, keyword, value))
    assert any(complaint in e for e in errors), errors


def test_truncate_at_never_with_max_length() -> None:
    document = _with("code", "x-truncate-at", 100)
    document["components"]["schemas"]["Code"]["maxLength"] = 100
    assert any("never maxLength" in e for e in marker_errors(document))


def test_durations() -> None:
    assert parse_duration("PT10M").seconds == 600
    assert parse_duration("PT1H30S").seconds == 3630
    assert parse_duration("P1M").months == 1 and not parse_duration("P1M").fixed
    for bad in ("P", "PT", "10M", "PT10", "P1MT"):
        with pytest.raises(ValueError):
            parse_duration(bad)
