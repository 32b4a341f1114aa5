"""Request validation in a fixed order — route, security, parameters, body — with every failing
field collected. Pure functions of the compiled `Operation`; the dispatcher supplies the inputs."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import orjson

from mock_server import rules as prose_rules
from mock_server.apis.base import Credential
from mock_server.errors import (
    FieldError,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from mock_server.schema import json_path
from mock_server.spec import Operation, Parameter, Router

# headers OpenAPI says are described elsewhere, never as parameters
_IGNORED_HEADERS = frozenset({"authorization", "content-type", "accept"})


# 0. text: every string the mock keeps must be encodable as UTF-8 --------------------------------
# JSON may escape a lone surrogate (`"\ud800"`) and a header byte that is not UTF-8 arrives as one
# (aiohttp decodes headers with `surrogateescape`): stored, such a string breaks every later read.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NOT_TEXT = "expected text of Unicode characters that can be encoded as UTF-8 (no lone surrogate U+D800-U+DFFF)"


def is_text(value: str) -> bool:
    """Whether `value` can be encoded as UTF-8 (False for a lone surrogate)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(value: str) -> str:
    """`value` with every unencodable character shown as its escape (`\\ud800`), for messages."""
    return value if is_text(value) else value.encode("utf-8", "backslashreplace").decode("utf-8")


def _not_text_message(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        return f"holds {bad.encode('unicode_escape').decode('ascii')} at character {exc.start}; {_NOT_TEXT}"
    return _NOT_TEXT  # pragma: no cover - only called for a string that is not text


def text_errors(document: Any, root: str = "") -> list[FieldError]:
    """One error per string (value or key) of a JSON value that is not encodable text, with its
    path (iterative: a deep document cannot exhaust the stack)."""
    errors: list[FieldError] = []
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack and len(errors) < 50:
        node, where = stack.pop()
        if isinstance(node, str):
            if not is_text(node):
                errors.append(FieldError(json_path(where, root), _not_text_message(node)))
        elif isinstance(node, dict):
            for key, value in node.items():
                name = str(key)
                path = [*where, printable(name)]
                if not is_text(name):
                    errors.append(FieldError(json_path(path, root), "(this key) " + _not_text_message(name)))
                stack.append((value, path))
        elif isinstance(node, list):
            stack.extend((item, [*where, index]) for index, item in enumerate(node))
    errors.reverse()
    return errors


# 1. route -------------------------------------------------------------------------------------
def route(router: Router, method: str, path: str) -> tuple[Operation, dict[str, str]]:
    found = router.match(path)
    if found is None:
        raise NotFound(f"No operation at {method} {path}: check the path against the API's documented paths")
    methods, path_params = found
    op = methods.get(method) or (methods.get("GET") if method == "HEAD" else None)
    if op is None:
        allowed = ", ".join(sorted(methods))
        raise MethodNotAllowed(
            f"{method} is not allowed on {path}; allowed: {allowed}",
            headers={"Allow": allowed},
        )
    return op, path_params


# 2. security ----------------------------------------------------------------------------------
class Scheme(NamedTuple):
    """A securitySchemes entry reduced to what finding its credential needs (built once per spec)."""

    name: str
    header: str  # the header carrying it ("" when it is carried elsewhere: never found)
    kind: str  # "apikey" | "bearer" | "basic"
    described: str  # how a 401 names it


def compile_schemes(schemes: Mapping[str, Mapping[str, Any]]) -> dict[str, Scheme]:
    return {name: compile_scheme(name, scheme) for name, scheme in schemes.items()}


def compile_scheme(name: str, scheme: Mapping[str, Any]) -> Scheme:
    kind = scheme.get("type")
    if kind == "apiKey":
        header = str(scheme.get("name", "")) if scheme.get("in") == "header" else ""
        return Scheme(name, header, "apikey", f"the {scheme.get('name')} header")
    wanted = str(scheme.get("scheme", "bearer")).lower() if kind == "http" else "bearer"
    described = "Authorization: Basic <credentials>" if wanted == "basic" else "Authorization: Bearer <token>"
    return Scheme(name, "Authorization", wanted, described)


def extract_credential(scheme: Scheme, headers: Mapping[str, str]) -> Credential | None:
    if not scheme.header:
        return None
    value = headers.get(scheme.header)
    if not value:
        return None
    if not is_text(value):
        raise Unauthorized(f"Invalid credentials: the {scheme.header} header is not UTF-8 text")
    if scheme.kind == "apikey":
        return Credential(scheme.name, "apikey", value)
    auth_scheme, _, value = value.partition(" ")
    value = value.strip()
    if auth_scheme.lower() != scheme.kind or not value:
        return None
    if scheme.kind == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 once decoded
            return None
        user, sep, password = decoded.partition(":")
        return Credential(scheme.name, "basic", user, password) if sep else None
    return Credential(scheme.name, "bearer", value)


def authenticate(
    op: Operation,
    schemes: Mapping[str, Scheme],
    headers: Mapping[str, str],
    check: Callable[[Credential], Any | None],
) -> Any:
    """The principal for the first security requirement the request satisfies, else 401."""
    if not op.security:
        return None
    presented = False
    for requirement in op.security:
        if not requirement:
            return None
        principal: Any = None
        satisfied = True
        for scheme_name in requirement:
            scheme = schemes.get(scheme_name)
            credential = extract_credential(scheme, headers) if scheme is not None else None
            if credential is None:
                satisfied = False
                break
            presented = True
            found = check(credential)
            if found is None:
                satisfied = False
                break
            principal = principal if principal is not None else found
        if satisfied:
            return principal
    expected = " or ".join(
        dict.fromkeys(schemes[name].described if name in schemes else name for req in op.security for name in req)
    )
    if presented:
        raise Unauthorized(f"Invalid credentials: the credential sent is not valid here (expected {expected})")
    raise Unauthorized(f"Missing credentials: send {expected}")


# 3. parameters --------------------------------------------------------------------------------
def _coerce_scalar(kind: str | None, raw: str) -> Any:
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if kind == "number":
        try:
            value = float(raw)
        except ValueError:
            return raw
        return value if math.isfinite(value) else raw
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    return raw


def coerce(param: Parameter, values: list[str]) -> Any:
    """Query/header/path strings -> the JSON value the parameter's schema describes."""
    kind = param.json_type
    if kind == "array":
        items = param.schema.get("items") or {}
        item_kind = items.get("type") if isinstance(items.get("type"), str) else None
        if not param.explode_array and len(values) == 1:
            values = values[0].split(",")
        return [_coerce_scalar(item_kind, v) for v in values]
    return _coerce_scalar(kind, values[-1])


def parameters(
    op: Operation,
    path_params: Mapping[str, str],
    query: Callable[[str], list[str]],
    headers: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Validated (path, query, header) values, defaults filled in; every failing one collected."""
    path_out: dict[str, Any] = {}
    query_out: dict[str, Any] = {}
    header_out: dict[str, Any] = {}
    errors: list[FieldError] = []
    for param in op.parameters:
        location, name = param.location, param.name
        if location == "path":
            out = path_out
            found = path_params.get(name)
            raw = [found] if found is not None else []
        elif location == "query":
            out = query_out
            raw = query(name)
        elif location == "header":
            if name.lower() in _IGNORED_HEADERS:
                continue
            out = header_out
            value = headers.get(name)
            raw = [value] if value is not None else []
        else:
            continue
        if not raw:
            if param.required:  # the vendor's code for a missing value, as bodies get (x-error-code-missing)
                code = param.schema.get("x-error-code-missing", param.schema.get("x-error-code"))
                errors.append(FieldError(param.where, "is required but missing", code))
            elif "default" in param.schema:
                out[name] = param.schema["default"]
            continue
        untext = None if len(raw) == 1 and raw[0].isascii() else next((v for v in raw if not is_text(v)), None)
        if untext is not None:
            errors.append(FieldError(param.where, _not_text_message(untext)))
            continue
        kind = param.json_type
        # a plain string parameter (most path ids) is its own value: no coercion to try
        value = raw[-1] if kind == "string" else coerce(param, raw)
        if not param.validator.is_valid(value):
            errors.extend(param.validator.errors(value, root=param.where))
        out[name] = value
    if errors:
        raise ValidationFailed("Request parameters are invalid", errors)
    return path_out, query_out, header_out


# 4. body --------------------------------------------------------------------------------------
def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_LONG_DIGITS = re.compile(rb"[0-9]{19}")  # a number orjson may read as a float (beyond 64 bits), or a long string
_KEY_END = re.compile(rb'"[ \t\n\r]*:')  # every key's end matches (so do some strings' contents)
_CONTAINERS = (dict, list)


def _key_count(document: Any) -> int:
    """How many keys the objects of a parsed JSON value hold, all together (iteratively)."""
    count = 0
    stack = [document]
    while stack:
        node = stack.pop()
        values = node.values() if type(node) is dict else node
        if type(node) is dict:
            count += len(node)
        stack.extend(value for value in values if type(value) in _CONTAINERS)
    return count


def _fast_json(raw: bytes) -> Any:
    """`raw` parsed by orjson when that gives exactly what `parse_json`'s standard-library path
    gives, else `_SLOW` (issue 20: a third of the cost). orjson refuses everything the standard
    path refuses (bad UTF-8, NaN, infinities, lone surrogates, depth), so only its silent
    differences are ruled out before and after: numbers of 19+ digits (it reads some as floats)
    and duplicate keys (it keeps the last): a duplicate leaves fewer keys than key ends (`"` then
    `:`), and strings can only add key ends, so equal counts mean no duplicate."""
    if _LONG_DIGITS.search(raw) is not None or _SURROGATE_ESCAPE.search(raw) is not None:
        return _SLOW
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _SLOW  # refused: the standard path says why, in its words
    if type(document) in _CONTAINERS and len(_KEY_END.findall(raw)) != _key_count(document):
        return _SLOW
    return document


_SLOW = object()


def parse_json(raw: bytes) -> Any:
    document = _fast_json(raw)
    if document is not _SLOW:
        return document
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"The request body is not valid UTF-8 (byte {exc.start})") from None
    try:
        document = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_float=_finite, parse_constant=_reject_constant
        )
    except RecursionError:
        raise MalformedBody("The request body is nested too deeply to be valid JSON") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            [FieldError("body", f"malformed JSON: {exc.msg}")],
        ) from None
    except ValueError as exc:
        message = printable(str(exc))
        raise MalformedBody(f"The request body is not valid JSON: {message}", [FieldError("body", message)]) from None
    if _SURROGATE_ESCAPE.search(raw):  # only an escape can make a lone surrogate (the bytes are UTF-8)
        errors = text_errors(document)
        if errors:
            raise ValidationFailed("The request body holds text that is not valid Unicode", errors)
    return document


def parse_form(raw: bytes) -> dict[str, str]:
    """A form body as a dict; a field whose (percent-decoded) name or value is not UTF-8 text is
    refused by name rather than silently replaced."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"The request body is not valid UTF-8 (byte {exc.start})") from None
    pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="surrogateescape")
    errors = [
        FieldError(printable(key), "is not percent-encoded UTF-8 text; " + _NOT_TEXT)
        for key, value in pairs
        if not (is_text(key) and is_text(value))
    ]
    if errors:
        raise ValidationFailed("The request body holds text that is not valid Unicode", errors)
    return dict(pairs)


def body(op: Operation, content_type: str, raw: bytes) -> Any:
    """The parsed, schema-checked body (None when the operation takes none)."""
    if not op.body_media:
        return None
    if not raw.strip():
        if op.body_required:
            raise ValidationFailed("A request body is required", [FieldError("body", "is required but missing")])
        return None
    media_type = content_type.split(";", 1)[0].strip().lower()
    validator = op.body_media.get(media_type)
    if validator is None:
        accepted = ", ".join(op.body_media)
        raise UnsupportedMediaType(
            f"Content-Type {media_type or '(none)'} is not accepted here; send {accepted}",
            [FieldError("header.Content-Type", f"expected {accepted}")],
        )
    if media_type == "application/x-www-form-urlencoded":
        document: Any = parse_form(raw)
    elif media_type.endswith("json"):
        document = parse_json(raw)
    else:
        document = raw
    errors = validator.errors(document)
    if errors:
        raise ValidationFailed("The request body is invalid", errors)
    return document


# 5. rules the specs state in prose (our `x-` keywords), on a schema-valid body ----------------
def rules(compiled: Sequence[prose_rules.Rule], document: Any) -> list[FieldError]:
    """The body's breaches of its operation's prose rules (`mock_server.rules`) as field errors,
    reported with the parameters' (a plain 400); a refusal documented otherwise is raised."""
    if not compiled or document is None:
        return []
    violations = prose_rules.check(compiled, document)
    if not violations:
        return []
    error = prose_rules.refusal_error(violations)
    if type(error) is ValidationFailed and error.status == 400 and error.kind == ValidationFailed.kind:
        return error.fields
    raise error
