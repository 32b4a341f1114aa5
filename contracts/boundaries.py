"""Limits the specs state, and the boundary cases the suite sends for each (openapi/CONVENTIONS.md,
"Limits the suite probes at their boundary").

Two sources, both read from the specs, so a limit added to a spec is probed without a hand-kept list:

- JSON Schema limits of request bodies and parameters (`maxLength`, `minLength`, `maximum`,
  `minimum`, `exclusiveMaximum`, `exclusiveMinimum`, `maxItems`, `minItems`) and our
  `x-truncate-at`: `field_limits(slug)` lists them, `cases(limit)` gives the value at the limit,
  one below and one above, each with what the document says must happen (stored whole, cut exactly
  at the limit, refused);
- our markers for what JSON Schema cannot say: `x-valid-for` (a validity period), `x-page-size`,
  `x-rate-limit`, `x-quota`: `markers(slug)` lists them (with the provenance the marker carries),
  `marker_errors(document)` says what is malformed about them (the spec tests run it).

Pure: no HTTP. `contracts/test_boundaries.py` sends the cases.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from contracts.provenance import Provenance, ProvenanceIndex, index_for
from contracts.specs import dereference, load_spec, pointer_token, spec_file

METHODS = ("get", "put", "post", "patch", "delete")
# keyword -> (what it bounds, which side)
LIMIT_KEYWORDS: dict[str, tuple[str, str]] = {
    "maxLength": ("length", "max"),
    "minLength": ("length", "min"),
    "x-truncate-at": ("length", "truncate"),
    "maxItems": ("items", "max"),
    "minItems": ("items", "min"),
    "maximum": ("value", "max"),
    "minimum": ("value", "min"),
    "exclusiveMaximum": ("value", "xmax"),
    "exclusiveMinimum": ("value", "xmin"),
}
MARKERS = ("x-valid-for", "x-page-size", "x-rate-limit", "x-quota")
PROVENANCE_KEYS = ("x-provenance", "x-source", "x-assumption")
_MARKER_KEYS: dict[str, tuple[set[str], set[str]]] = {  # marker -> (required keys, optional keys)
    "x-valid-for": ({"duration", "refused"}, set()),
    "x-page-size": ({"max", "items", "above"}, {"parameter", "refused"}),
    "x-rate-limit": ({"requests", "per", "refused"}, {"scope"}),
    "x-quota": ({"requests", "per", "refused"}, {"count-header", "limit-header"}),
}
VALUE_IN_SECONDS = "value-in-seconds"  # x-valid-for on an integer: the value is the lifetime in seconds
PAGE_SIZE_ABOVE = ("refused", "clamped", "next-page")
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_STATUS = re.compile(r"^4[0-9][0-9]$")


# -- ISO 8601 durations -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Duration:
    """An ISO 8601 duration: calendar months (a month or a year has no fixed length) and seconds."""

    months: int
    seconds: int

    @property
    def fixed(self) -> bool:
        return self.months == 0


def parse_duration(text: str) -> Duration:
    """`PT10M` -> Duration(0, 600); `P1M` -> Duration(1, 0). Raises ValueError when malformed."""
    found = _DURATION.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT10M or P1M")
    part = {k: int(v) if v else 0 for k, v in found.groupdict().items()}
    seconds = ((part["weeks"] * 7 + part["days"]) * 24 + part["hours"]) * 3600 + part["minutes"] * 60 + part["seconds"]
    return Duration(part["years"] * 12 + part["months"], seconds)


# -- field limits --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldLimit:
    """One limit on one request field: `field` is the path of instance keys (an int for an array
    item) in the body, or the parameter's name for a parameter."""

    api: str
    method: str
    path: str
    operation_id: str
    location: str  # body | query | path | header
    field: tuple[str | int, ...]
    keyword: str
    limit: int | float
    schema: dict[str, Any] = dataclasses.field(compare=False, repr=False)
    provenance: Provenance = dataclasses.field(compare=False)
    error_code: int | None = None

    @property
    def measures(self) -> str:
        return LIMIT_KEYWORDS[self.keyword][0]

    @property
    def side(self) -> str:
        return LIMIT_KEYWORDS[self.keyword][1]

    @property
    def operation(self) -> str:
        return f"{self.method.upper()} {self.path}"

    def where(self) -> str:
        shown = ".".join("[]" if isinstance(k, int) else str(k) for k in self.field).replace(".[]", "[]")
        return f"{self.location} {shown}"

    def describe(self) -> str:
        return f"{self.operation} {self.where()} {self.keyword} {self.limit:g}"


@dataclass(frozen=True)
class Case:
    """One boundary case: send `size` (a length, an item count or the value itself) and expect
    `expect`: "whole" (accepted and stored as sent), "cut" (accepted and stored as its first
    `limit` characters), "refused" (a documented 4xx), or "accepted" (a value with no read-back)."""

    limit: FieldLimit
    position: str  # below | at | above
    size: int | float
    expect: str

    def describe(self) -> str:
        unit = {"length": " characters", "items": " items", "value": ""}[self.limit.measures]
        return f"{self.limit.describe()}: {self.position} ({self.size:g}{unit}) must be {self.expect}"


def cases(limit: FieldLimit) -> list[Case]:
    """The value one below the limit, at it and one above, with the documented outcome."""
    n = limit.limit
    kept = "accepted" if limit.measures == "value" else "whole"
    outcome = {
        # side: (below, at, above)
        "max": (kept, kept, "refused"),
        "min": ("refused", kept, kept),
        "truncate": ("whole", "whole", "cut"),
        "xmax": (kept, "refused", "refused"),
        "xmin": ("refused", "refused", kept),
    }[limit.side]
    found = []
    for position, size, expect in zip(("below", "at", "above"), (n - 1, n, n + 1), outcome, strict=True):
        if limit.measures != "value" and size < 0:
            continue  # no length below zero
        found.append(Case(limit, position, size, expect))
    return found


def _limit_keywords(schema: dict[str, Any]) -> list[tuple[str, int | float]]:
    found: list[tuple[str, int | float]] = []
    for keyword in LIMIT_KEYWORDS:
        value = schema.get(keyword)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append((keyword, value))
    return found


def _walk_schema(schema: Any, keys: tuple[str | int, ...], code: int | None, out: list[tuple[Any, ...]]) -> None:
    if not isinstance(schema, dict):
        return
    code = schema.get("x-error-code", code) if isinstance(schema.get("x-error-code"), int) else code
    for keyword, value in _limit_keywords(schema):
        out.append((keys, keyword, value, schema, code))
    for combinator in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(combinator) or []:
            if isinstance(part, dict):
                merged = {k: v for k, v in schema.items() if k not in ("allOf", "anyOf", "oneOf", *LIMIT_KEYWORDS)}
                _walk_schema({**merged, **part}, keys, code, out)
    for name, sub in (schema.get("properties") or {}).items():
        _walk_schema(sub, (*keys, str(name)), None, out)
    if isinstance(schema.get("items"), dict):
        _walk_schema(schema["items"], (*keys, 0), None, out)


@cache
def _dereferenced(slug: str) -> dict[str, Any]:
    document = load_spec(slug)
    found: dict[str, Any] = dereference(document, document)
    return found


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    found = []
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                found.append((method, str(path), op, item))
    return found


def field_limits(slug: str) -> list[FieldLimit]:
    """Every limit on a request body field or parameter of `<slug>.yaml`, in spec order (a limit
    on a shared schema is listed once per operation that sends it)."""
    return limits_in(slug, _dereferenced(slug), index_for(slug))


def limits_in(slug: str, dereferenced: dict[str, Any], index: ProvenanceIndex) -> list[FieldLimit]:
    """`field_limits` of any (dereferenced) document; `index` gives the provenance of each field."""
    found: list[FieldLimit] = []
    seen: set[tuple[Any, ...]] = set()
    for method, path, op, item in _operations(dereferenced):
        op_id = str(op.get("operationId", f"{method} {path}"))
        for param in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
            if not isinstance(param, dict) or not isinstance(param.get("schema"), dict):
                continue
            where, name = str(param.get("in")), str(param.get("name"))
            for keyword, value in _limit_keywords(param["schema"]):
                key = (method, path, where, (name,), keyword)
                if key not in seen:
                    seen.add(key)
                    found.append(
                        FieldLimit(
                            slug,
                            method,
                            path,
                            op_id,
                            where,
                            (name,),
                            keyword,
                            value,
                            param["schema"],
                            index.parameter(method, path, where, name),
                            _int(param["schema"].get("x-error-code")),
                        )
                    )
        content = (op.get("requestBody") or {}).get("content") or {}
        for media_type, media in content.items():
            if "json" not in media_type or not isinstance(media, dict):
                continue
            walked: list[tuple[Any, ...]] = []
            _walk_schema(media.get("schema"), (), None, walked)
            for keys, keyword, value, schema, code in walked:
                key = (method, path, "body", keys, keyword)
                if key in seen:
                    continue
                seen.add(key)
                found.append(
                    FieldLimit(
                        slug,
                        method,
                        path,
                        op_id,
                        "body",
                        keys,
                        keyword,
                        value,
                        schema,
                        index.request_body_field(method, path, list(keys)),
                        code,
                    )
                )
    return found


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- markers ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Marker:
    """One of our limit markers where it sits: `pointer` is the node carrying it (an operation, a
    schema or `info`), `operation` the operation it sits in (if any), `value` the marker itself."""

    api: str
    keyword: str
    pointer: str
    value: dict[str, Any] = dataclasses.field(compare=False, repr=False)
    node: dict[str, Any] = dataclasses.field(compare=False, repr=False)
    operation: tuple[str, str] | None = None  # (method, path)

    @property
    def provenance(self) -> Provenance:
        return Provenance(
            str(self.value.get("x-provenance", "")),
            f"{spec_file(self.api)}#{self.pointer}/{self.keyword}",
            " ".join(str(self.value.get("x-assumption", "")).split()),
        )

    @property
    def refused(self) -> str:
        return str(self.value.get("refused", ""))

    def duration(self) -> Duration | None:
        """The validity period or window (None for `value-in-seconds`: read from the response)."""
        text = self.value.get("duration", self.value.get("per"))
        return None if text == VALUE_IN_SECONDS else parse_duration(str(text))


def _marked(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], tuple[str, str] | None]]:
    """(keyword, pointer of the node carrying it, the node, its operation) for every marker."""
    found: list[tuple[str, str, dict[str, Any], tuple[str, str] | None]] = []

    def walk(node: Any, pointer: str, operation: tuple[str, str] | None) -> None:
        if isinstance(node, dict):
            for keyword in MARKERS:
                if keyword in node:
                    found.append((keyword, pointer, node, operation))
            for key, child in node.items():
                if key in ("example", "examples", *MARKERS):
                    continue
                here = operation
                parts = pointer.split("/")
                if len(parts) == 3 and parts[1] == "paths" and key in METHODS:
                    path = parts[2].replace("~1", "/").replace("~0", "~")
                    here = (str(key), path)
                walk(child, f"{pointer}/{pointer_token(str(key))}", here)
        elif isinstance(node, list):
            for position, child in enumerate(node):
                walk(child, f"{pointer}/{position}", operation)

    walk(document, "", None)
    return found


def markers(slug: str, keyword: str | None = None) -> list[Marker]:
    found = []
    for name, pointer, node, operation in _marked(load_spec(slug)):
        if keyword is None or name == keyword:
            value = node[name]
            found.append(Marker(slug, name, pointer, value if isinstance(value, dict) else {}, node, operation))
    return found


def _documented_statuses(document: dict[str, Any]) -> set[str]:
    return {str(status) for _, _, op, _ in _operations(document) for status in (op.get("responses") or {})}


def marker_errors(document: dict[str, Any]) -> list[str]:
    """What is malformed about the limit markers of one spec document (empty when all are well formed)."""
    errors: list[str] = []
    statuses = _documented_statuses(document)
    for keyword, pointer, node, operation in _marked(document):
        where = f"{pointer or '/'}/{keyword}"
        value = node[keyword]
        if not isinstance(value, dict):
            errors.append(f"{where}: must be a mapping")
            continue
        required, optional = _MARKER_KEYS[keyword]
        missing = sorted(required - set(value))
        unknown = sorted(set(value) - required - optional - set(PROVENANCE_KEYS))
        if missing:
            errors.append(f"{where}: missing {', '.join(missing)}")
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown)}")
        errors.extend(f"{where}: {e}" for e in _provenance_errors(value))
        refused = value.get("refused")
        if "refused" in value and (not isinstance(refused, str) or not _STATUS.match(refused)):
            errors.append(f"{where}: refused must be a quoted 4xx status, got {refused!r}")
        elif isinstance(refused, str) and refused not in statuses:
            errors.append(f"{where}: refused status {refused} is documented by no operation")
        for key in ("duration", "per"):
            if key not in value:
                continue
            text = value[key]
            if key == "duration" and text == VALUE_IN_SECONDS:
                if node.get("type") != "integer":
                    errors.append(f"{where}: duration {VALUE_IN_SECONDS} needs an integer property")
                continue
            try:
                parsed = parse_duration(str(text)) if isinstance(text, str) else None
            except ValueError as error:
                errors.append(f"{where}: {key}: {error}")
                continue
            if parsed is None:
                errors.append(f"{where}: {key} must be an ISO 8601 duration string")
            elif key == "duration" and not parsed.fixed:
                errors.append(f"{where}: a validity period must be a fixed length (no months or years)")
        for key in ("max", "requests"):
            if key in value and (_int(value[key]) is None or value[key] < 1):
                errors.append(f"{where}: {key} must be a whole number of at least 1")
        if keyword == "x-page-size":
            errors.extend(f"{where}: {e}" for e in _page_size_errors(value, node, operation))
        if keyword in ("x-rate-limit", "x-quota") and pointer != "/info":
            errors.append(f"{where}: belongs on info (a limit of the whole API)")
    errors.extend(_truncate_errors(document))
    return errors


def _provenance_errors(value: dict[str, Any]) -> list[str]:
    label = value.get("x-provenance")
    if label not in ("seed", "public-docs", "assumed"):
        return [f"x-provenance must be seed, public-docs or assumed, got {label!r}"]
    if label == "assumed" and not str(value.get("x-assumption", "")).strip():
        return ["an assumed marker needs an x-assumption"]
    if label != "assumed" and not value.get("x-source"):
        return [f"a {label} marker needs an x-source quote"]
    return []


def _page_size_errors(value: dict[str, Any], node: dict[str, Any], operation: tuple[str, str] | None) -> list[str]:
    errors = []
    if operation is None or node.get("operationId") is None:
        errors.append("belongs on an operation (a listing)")
    items = value.get("items")
    if not isinstance(items, str) or not (items == "" or items.startswith("/")):
        errors.append(f"items must be a JSON pointer into the 200 body, got {items!r}")
    above = value.get("above")
    if above not in PAGE_SIZE_ABOVE:
        errors.append(f"above must be one of {', '.join(PAGE_SIZE_ABOVE)}, got {above!r}")
    parameter = value.get("parameter")
    if parameter is not None:
        names = {p.get("name") for p in node.get("parameters") or [] if isinstance(p, dict) and p.get("in") == "query"}
        if parameter not in names:
            errors.append(f"parameter {parameter!r} is not a query parameter of the operation")
        if above == "next-page":
            errors.append("a page size the client asks for is refused or clamped above max, not next-page")
    elif above in ("refused", "clamped"):
        errors.append(f"above: {above} needs the parameter the client asks with")
    if (above == "refused") != ("refused" in value):
        errors.append("refused (the status) goes with above: refused, and only with it")
    return errors


def _truncate_errors(document: dict[str, Any]) -> list[str]:
    errors: list[str] = []

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            if "x-truncate-at" in node:
                value = node["x-truncate-at"]
                if _int(value) is None or value < 1:
                    errors.append(f"{pointer}/x-truncate-at: must be a whole number of at least 1, got {value!r}")
                if "maxLength" in node:
                    errors.append(f"{pointer}: x-truncate-at and maxLength together (a cut limit is never maxLength)")
            for key, child in node.items():
                if key not in ("example", "examples"):
                    walk(child, f"{pointer}/{pointer_token(str(key))}")
        elif isinstance(node, list):
            for position, child in enumerate(node):
                walk(child, f"{pointer}/{position}")

    walk(document, "")
    return errors
