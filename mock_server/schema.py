"""JSON Schema compiled once, checked fast, explained per field.

`jsonschema-rs` does the validation (a compiled validator; `tests/unit/test_schema_differential.py`
keeps it honest against the reference `jsonschema`). Schemas arrive dereferenced, so an error's
schema path can be walked to find the property's `x-error-code`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import jsonschema_rs

from mock_server.errors import FieldError

_MAX_ERRORS = 25

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+\Z")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+\Z")


def json_type(value: Any) -> str:
    """The JSON type name of a parsed JSON value (an integer is a "number")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def _is_date_time(value: str) -> bool:
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# The formats the specs use, defined once: the mock validates with these, and the differential
# test gives the reference validator the same definitions, so both judge structure alike.
FORMATS: dict[str, Callable[[str], bool]] = {
    "email": _is_email,
    "date-time": _is_date_time,
    "date": _is_date,
    "uuid": lambda value: bool(_UUID.match(value)),
    "uri": lambda value: bool(_URI.match(value)),
}


def json_path(parts: Sequence[str | int], root: str = "") -> str:
    """`["basket", "product_list", 0, "price"]` -> `basket.product_list[0].price`."""
    out = root
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out or (root or "$")


def dereference(node: Any, components: Mapping[str, Any], _stack: tuple[str, ...] = ()) -> Any:
    """Inline every `#/...` reference of an OpenAPI document. Recursive schemas are refused."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                raise ValueError(f"only same-file references are allowed, found {ref!r}")
            if ref in _stack:
                raise ValueError(f"recursive reference {ref!r} (via {' -> '.join(_stack)})")
            target: Any = components
            for token in ref[2:].split("/"):
                token = token.replace("~1", "/").replace("~0", "~")
                target = target[token]
            resolved = dereference(target, components, (*_stack, ref))
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if siblings and isinstance(resolved, dict):
                return {**resolved, **dereference(siblings, components, _stack)}
            return resolved
        return {key: dereference(value, components, _stack) for key, value in node.items()}
    if isinstance(node, list):
        return [dereference(item, components, _stack) for item in node]
    return node


class CompiledSchema:
    """A schema compiled once. `errors()` is empty for a valid instance."""

    __slots__ = ("_validator", "schema")

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = dict(schema)
        self._validator = jsonschema_rs.Draft202012Validator(self.schema, validate_formats=True, formats=FORMATS)

    def __reduce__(self) -> tuple[type[CompiledSchema], tuple[dict[str, Any]]]:
        """Pickled as its schema and compiled again on load (`--state-file` snapshots stores)."""
        return (CompiledSchema, (self.schema,))

    def is_valid(self, instance: Any) -> bool:
        try:
            return bool(self._validator.is_valid(instance))
        except (ValueError, OverflowError):
            return False

    def errors(self, instance: Any, root: str = "") -> list[FieldError]:
        """Each failing field with its JSON path, a message saying what was expected, and the
        `x-error-code` of the nearest schema node that carries one."""
        try:
            if self._validator.is_valid(instance):
                return []
            found: list[FieldError] = []
            for error in self._validator.iter_errors(instance):
                found.append(self._explain(error, root))
                if len(found) >= _MAX_ERRORS:
                    break
            return found
        except (ValueError, OverflowError) as exc:
            return [FieldError(root or "$", f"cannot be checked: {exc}")]

    def _explain(self, error: Any, root: str) -> FieldError:
        instance_path = list(error.instance_path)
        schema_path = list(error.schema_path)
        kind = error.kind
        if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
            instance_path.append(str(kind.property))
            missing = True
        else:
            missing = False
        code = self._error_code(schema_path, missing_property=str(kind.property) if missing else None)
        return FieldError(json_path(instance_path, root), _message(error, missing), code)

    def _error_code(self, schema_path: list[Any], missing_property: str | None) -> int | None:
        node: Any = self.schema
        code: int | None = node.get("x-error-code") if isinstance(node, dict) else None
        for step in schema_path:
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                break
            if isinstance(node, dict) and isinstance(node.get("x-error-code"), int):
                code = node["x-error-code"]
        if missing_property is not None and isinstance(node, list):
            # `required` failed: the missing property's own code, where it documents one
            parent: Any = self.schema
            for step in schema_path[:-1]:
                parent = parent[step]
            prop = parent.get("properties", {}).get(missing_property, {})
            if isinstance(prop, dict):
                missing_code = prop.get("x-error-code-missing", prop.get("x-error-code"))
                if isinstance(missing_code, int):
                    code = missing_code
        return code


def _message(error: Any, missing: bool) -> str:
    if missing:
        return "is required but missing"
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Not) and error.kind.schema in ({}, True):
        return "is not accepted here; expected this field to be absent"  # `not: {}`: a forbidden field
    text = str(error.message)
    expected = _expectation(error)
    return f"{text}; expected {expected}" if expected else text


def _expectation(error: Any) -> str:
    kind = error.kind
    kinds = jsonschema_rs.ValidationErrorKind
    if isinstance(kind, kinds.Type):
        return " or ".join(str(t) for t in kind.types)
    if isinstance(kind, kinds.Enum):
        return "one of " + ", ".join(repr(o) for o in kind.options)
    if isinstance(kind, kinds.Pattern):
        return f"a string matching {kind.pattern}"
    if isinstance(kind, kinds.Format):
        return f"a valid {kind.format}"
    if isinstance(kind, kinds.Maximum):
        return f"at most {kind.limit}"
    if isinstance(kind, kinds.Minimum):
        return f"at least {kind.limit}"
    if isinstance(kind, kinds.MaxLength):
        return f"at most {kind.limit} characters"
    if isinstance(kind, kinds.MinLength):
        return f"at least {kind.limit} characters"
    if isinstance(kind, kinds.MinItems):
        return f"at least {kind.limit} items"
    if isinstance(kind, kinds.MaxItems):
        return f"at most {kind.limit} items"
    if isinstance(kind, kinds.AdditionalProperties):
        return "only the documented properties"
    if isinstance(kind, kinds.FalseSchema):
        return "this field to be absent"
    return ""
