"""Every spec is valid OpenAPI 3.1, self-contained, and follows openapi/CONVENTIONS.md."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from mock_server.schema import dereference
from tests.specs.conftest import ALL_SPECS, VENDOR_SPECS, load, operations

PROVENANCE = {"seed", "public-docs", "assumed"}


@pytest.mark.parametrize("name", ALL_SPECS)
def test_spec_is_valid_openapi(name: str) -> None:
    document = load(name)
    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.mark.parametrize("name", ALL_SPECS)
def test_spec_is_self_contained_and_not_recursive(name: str) -> None:
    document = load(name)
    refs = [ref for ref in _walk_refs(document) if not ref.startswith("#/")]
    assert refs == [], f"references to other files: {refs}"
    dereference(document, document)  # raises on a recursive schema


@pytest.mark.parametrize("name", ALL_SPECS)
def test_status_codes_are_quoted(name: str) -> None:
    for path, method, op in operations(load(name)):
        for status in op.get("responses", {}):
            assert isinstance(status, str), f"{method.upper()} {path}: status {status!r} is not a string"


@pytest.mark.parametrize("name", ALL_SPECS)
def test_every_operation_is_documented(name: str) -> None:
    document = load(name)
    seen: set[str] = set()
    for path, method, op in operations(document):
        where = f"{name}: {method.upper()} {path}"
        assert op.get("operationId"), f"{where} has no operationId"
        assert op["operationId"] not in seen, f"{where}: duplicate operationId"
        seen.add(op["operationId"])
        assert op.get("summary"), f"{where} has no summary"
        assert op.get("x-provenance") in PROVENANCE, f"{where}: x-provenance is {op.get('x-provenance')!r}"
        assert any(str(s).startswith("4") for s in op.get("responses", {})), f"{where} has no 4xx response"
        security = op.get("security", document.get("security", []))
        if any(req for req in security):
            assert "401" in op["responses"], f"{where} declares security but no 401"


@pytest.mark.parametrize("name", VENDOR_SPECS)
def test_provenance_values_and_assumptions_explained(name: str) -> None:
    for pointer, node in _walk_nodes(load(name)):
        if "x-provenance" in node:
            assert node["x-provenance"] in PROVENANCE, f"{pointer}: {node['x-provenance']!r}"
            if node["x-provenance"] == "assumed":
                assert node.get("x-assumption") or node.get("description"), f"{pointer}: assumed without a reason"


@pytest.mark.parametrize("name", VENDOR_SPECS)
def test_vendor_specs_name_the_real_server_and_the_mock(name: str) -> None:
    servers = [s["url"] for s in load(name)["servers"]]
    if name != "letstrade-pos-provider":
        assert servers[-1] == f"http://127.0.0.1:8080/{name}"
        assert servers[0].startswith("https://")


def _examples(name: str) -> list[tuple[str, dict[str, Any], Any]]:
    document = load(name)
    resolved = dereference(document, document)
    found: list[tuple[str, dict[str, Any], Any]] = []
    for pointer, node in _walk_nodes(resolved):
        schema = node.get("schema")
        if not isinstance(schema, dict):
            continue
        if "example" in node:
            found.append((f"{pointer}/example", schema, node["example"]))
        for key, example in (node.get("examples") or {}).items() if isinstance(node.get("examples"), dict) else []:
            if isinstance(example, dict) and "value" in example:
                found.append((f"{pointer}/examples/{key}", schema, example["value"]))
    return found


@pytest.mark.parametrize("name", ALL_SPECS)
def test_every_example_matches_its_schema(name: str) -> None:
    examples = _examples(name)
    assert examples, f"{name} has no examples"
    failures = []
    for pointer, schema, example in examples:
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(example)]
        if errors:
            failures.append(f"{pointer}: {errors[:3]}")
    assert failures == [], json.dumps(failures, indent=1)


@pytest.mark.parametrize("name", [n for n in ALL_SPECS if n != "letstrade-pos-provider"])
def test_every_success_response_has_an_example(name: str) -> None:
    """The engine answers from the example when no domain handler exists."""
    document = load(name)
    resolved = dereference(document, document)
    for path, method, op in operations(resolved):
        for status, response in op["responses"].items():
            if not str(status).startswith("2"):
                continue
            for media_type, media in (response.get("content") or {}).items():
                has = "example" in media or media.get("examples") or "examples" in media.get("schema", {})
                assert has, f"{method.upper()} {path} {status} {media_type} has no example"


def _walk_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _walk_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _walk_refs(item)]
    return []


def _walk_nodes(node: Any, pointer: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((pointer or "/", node))
        for key, value in node.items():
            found.extend(_walk_nodes(value, f"{pointer}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_walk_nodes(value, f"{pointer}/{index}"))
    return found


@pytest.mark.parametrize("name", ALL_SPECS)
def test_no_sentence_fragments_parsed_as_keywords(name: str) -> None:
    """An unquoted `description: a, b: c` inside a YAML flow mapping silently becomes extra keys."""
    suspicious = []
    for pointer, node in _walk_nodes(load(name)):
        if pointer.rsplit("/", 1)[-1] in ("properties", "examples", "example", "paths", "responses", "headers"):
            continue
        if "/example" in pointer or not any(k in node for k in ("description", "type", "summary")):
            continue
        suspicious += [f"{pointer}: {key!r}" for key in node if isinstance(key, str) and " " in key]
    assert suspicious == []
