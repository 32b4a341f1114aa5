"""Every sample body printed in the vendor documents validates against its operation's schema,
and breaking a sample (removing a field the schema requires) makes it fail."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mock_server.schema import dereference
from tests.specs.conftest import SAMPLES, load, operations

FILES = sorted(SAMPLES.glob("*/*.json"))


def _schema_for(sample: dict[str, Any], slug: str) -> dict[str, Any]:
    document = load(slug)
    resolved = dereference(document, document)
    if sample["kind"] == "schema":
        node: Any = resolved
        for token in sample["schema_ref"][2:].split("/"):
            node = node[token]
        return dict(node)
    for _path, _method, op in operations(resolved):
        if op.get("operationId") != sample["operation_id"]:
            continue
        if sample["kind"] == "request":
            return dict(op["requestBody"]["content"]["application/json"]["schema"])
        content = op["responses"][sample["status"]]["content"]
        return dict(next(iter(content.values()))["schema"])
    raise AssertionError(f"{slug} has no operation {sample['operation_id']}")


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _errors(schema: dict[str, Any], body: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator(schema).iter_errors(body)]


def test_samples_exist_for_every_document_with_printed_bodies() -> None:
    slugs = {path.parent.name for path in FILES}
    assert {"letstrade-channels", "customtrades", "capillary"} <= slugs


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_seed_sample_matches_its_schema(path: Path) -> None:
    sample = json.loads(path.read_text(encoding="utf-8"))
    assert "[email protected]" not in path.read_text(encoding="utf-8"), "hidden-email defect not substituted"
    errors = _errors(_schema_for(sample, path.parent.name), sample["body"])
    assert errors == [], f"{path.name} ({sample['source']}): {errors}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_broken_seed_sample_is_rejected(path: Path) -> None:
    """The schema is not vacuous: dropping each required top-level field, or giving the body the
    wrong type, fails validation."""
    sample = json.loads(path.read_text(encoding="utf-8"))
    schema = _schema_for(sample, path.parent.name)
    body = sample["body"]
    assert _errors(schema, ["not", "the", "documented", "shape"]) or _errors(schema, "x"), "wrong type accepted"
    for field in schema.get("required", []):
        broken = copy.deepcopy(body)
        broken.pop(field, None)
        assert _errors(schema, broken), f"{path.name}: removing required {field!r} still validates"
