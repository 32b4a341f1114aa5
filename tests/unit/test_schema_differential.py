"""`jsonschema-rs` (the mock's validator) gives the same verdicts as the reference `jsonschema`
on documents generated from, and mutated away from, every request schema in the specs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator, FormatChecker

from mock_server.schema import FORMATS, CompiledSchema
from mock_server.settings import SLUGS
from mock_server.spec import build_spec, load_document

# keywords hypothesis-jsonschema cannot generate from; their schemas are checked on mutations only
_VENDOR_KEYS = ("x-", "example", "examples", "description", "discriminator", "xml", "externalDocs")


def _clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _clean(v) for k, v in node.items() if not any(k.startswith(p) for p in _VENDOR_KEYS)}
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _schemas() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for slug in SLUGS:
        for op in build_spec(slug, load_document(slug)).operations:
            for media_type, compiled in op.body_media.items():
                if media_type == "application/json" and compiled.schema:
                    found.append((f"{slug}:{op.operation_id}", compiled.schema))
    return found


SCHEMAS = _schemas()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, check in FORMATS.items():
        # formats constrain strings only (JSON Schema); jsonschema-rs never calls them for others
        checker.checks(name)(lambda value, check=check: not isinstance(value, str) or check(value))
    return checker


FORMAT_CHECKER = _format_checker()


def _agree(schema: dict[str, Any], document: Any) -> None:
    reference = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    ours = CompiledSchema(schema)
    assert ours.is_valid(document) == reference.is_valid(document), document
    assert (ours.errors(document) == []) == reference.is_valid(document)


@pytest.mark.parametrize("name,schema", SCHEMAS, ids=[n for n, _ in SCHEMAS])
@settings(max_examples=12, suppress_health_check=list(HealthCheck), deadline=None)
@given(data=st.data())
def test_same_verdicts_on_generated_and_mutated_documents(
    name: str, schema: dict[str, Any], data: st.DataObject
) -> None:
    try:
        document = data.draw(from_schema(_clean(schema)), label="valid")
    except InvalidArgument:  # a schema hypothesis-jsonschema cannot generate from: mutations only
        document = {}
    _agree(schema, document)
    if isinstance(document, dict):
        mutated = dict(document)
        if mutated:
            key = data.draw(st.sampled_from(sorted(mutated)), label="key")
            if data.draw(st.booleans(), label="drop"):
                del mutated[key]
            else:
                mutated[key] = data.draw(json_values, label="value")
        _agree(schema, mutated)
