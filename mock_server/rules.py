"""Rules the specs state in prose, read from our `x-` keywords (openapi/CONVENTIONS.md, "Rules JSON
Schema cannot state") and checked on a request body that passed its schema.

- `x-unique-by: [<JSON pointer>, ...]` on an array: no two items have equal values at all these
  pointers (`""` is the item itself; a missing member is a value too); `x-unique-by-exempt` lists
  keys (one pointer only) that may repeat;
- `x-unique-by-prefix: N` on an array of strings: no two items share their first N characters;
- `x-one-of-required: [[a, b, ...], ...]` on an object: at least one member of each group;
- `x-forbidden-values: [v, ...]` on a scalar: none of these values;
- `x-rule-refusal: {status, code?, message?, mock-domain?}` beside them: the documented refusal
  (the vendor's error code goes to `FieldError.code` when it is a number, to the error's `kind`,
  LOKE's `type`, when it is a string). A location with `mock-domain` is left to the API's domain
  code, which answers it more precisely (the reason is its value).

Pure: compiled once per operation at start-up (`compile_spec`) from the dereferenced request body
schema; a request costs one walk of the rules' locations, never of the whole body.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mock_server.errors import Conflict, FieldError, Forbidden, MockError, NotFound, ValidationFailed
from mock_server.schema import json_path
from mock_server.spec import Operation, Spec

REFUSAL = "x-rule-refusal"
_ERRORS: dict[int, type[MockError]] = {400: ValidationFailed, 403: Forbidden, 404: NotFound, 409: Conflict}
_ABSENT = object()


@dataclass(frozen=True)
class Refusal:
    status: int = 400
    code: int | str | None = None
    message: str | None = None

    @staticmethod
    def of(node: Mapping[str, Any]) -> Refusal:
        raw = node.get(REFUSAL)
        if not isinstance(raw, Mapping):
            return Refusal()
        code = raw.get("code")
        message = raw.get("message")
        return Refusal(
            status=int(raw.get("status", 400)),
            code=code if isinstance(code, (int, str)) and not isinstance(code, bool) else None,
            message=str(message) if message is not None else None,
        )


@dataclass(frozen=True)
class Rule:
    """One rule at one location: `where` is the path into the body (property names; None for every
    item of an array)."""

    where: tuple[str | None, ...]
    kind: str  # unique | one_of | forbidden
    refusal: Refusal
    pointers: tuple[tuple[str, ...], ...] = ()  # unique: each pointer as its tokens
    exempt: tuple[Any, ...] = ()  # unique: keys that may repeat (hashable forms)
    prefix: int | None = None  # unique by the first N characters
    members: tuple[str, ...] = ()  # one_of: the group
    forbidden: tuple[Any, ...] = ()  # forbidden values (hashable forms)


@dataclass(frozen=True)
class Violation:
    field: str
    message: str
    refusal: Refusal


def _hashable(value: Any) -> Any:
    if value is _ABSENT:
        return ("<absent>",)
    if isinstance(value, Mapping):
        return ("<object>", tuple(sorted((str(k), _hashable(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("<array>", tuple(_hashable(v) for v in value))
    if isinstance(value, bool):  # True == 1 in Python, not in JSON
        return ("<bool>", value)
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 1.0 == 1 in JSON
    return value


def _tokens(pointer: str) -> tuple[str, ...]:
    if pointer == "":
        return ()
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer.lstrip("/").split("/"))


def _member(item: Any, tokens: tuple[str, ...]) -> Any:
    node = item
    for token in tokens:
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _ABSENT
    return node


# -- compiling -----------------------------------------------------------------------------------
def _rules_here(node: Mapping[str, Any], where: tuple[str | None, ...]) -> Iterator[Rule]:
    refusal_node = node.get(REFUSAL)
    if isinstance(refusal_node, Mapping) and refusal_node.get("mock-domain"):
        return  # the API's domain code enforces this location (see the reason in the spec)
    refusal = Refusal.of(node)
    prefix = node.get("x-unique-by-prefix")
    pointers = node.get("x-unique-by")
    if isinstance(prefix, int) and not isinstance(prefix, bool) and prefix > 0:
        yield Rule(where, "unique", refusal, prefix=prefix)
    elif isinstance(pointers, list) and pointers:
        exempt = node.get("x-unique-by-exempt") or []
        yield Rule(
            where,
            "unique",
            refusal,
            pointers=tuple(_tokens(str(p)) for p in pointers),
            exempt=tuple(_hashable(e) for e in exempt) if len(pointers) == 1 else (),
        )
    for group in node.get("x-one-of-required") or []:
        if isinstance(group, list) and group:
            yield Rule(where, "one_of", refusal, members=tuple(str(m) for m in group))
    forbidden = node.get("x-forbidden-values")
    if isinstance(forbidden, list) and forbidden:
        yield Rule(where, "forbidden", refusal, forbidden=tuple(_hashable(v) for v in forbidden))


def compile_schema(schema: Mapping[str, Any], where: tuple[str | None, ...] = ()) -> tuple[Rule, ...]:
    """Every rule of a dereferenced schema, with where it applies."""
    found: list[Rule] = list(_rules_here(schema, where))
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key) or []:
            if isinstance(part, Mapping):
                found.extend(compile_schema(part, where))
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            found.extend(compile_schema(sub, (*where, str(name))))
    items = schema.get("items")
    if isinstance(items, Mapping):
        found.extend(compile_schema(items, (*where, None)))
    unique: list[Rule] = []
    for rule in found:  # a rule reached twice (allOf parts sharing a node) is checked once
        if rule not in unique:
            unique.append(rule)
    return tuple(unique)


def compile_operation(op: Operation) -> tuple[Rule, ...]:
    """The rules of an operation's JSON request body (empty when it has none)."""
    for media_type, validator in op.body_media.items():
        if media_type.endswith("json"):
            return compile_schema(validator.schema)
    return ()


def compile_spec(spec: Spec) -> dict[str, tuple[Rule, ...]]:
    """operationId -> its rules, for the operations that have any (built once at start-up)."""
    found = {op.operation_id: compile_operation(op) for op in spec.operations}
    return {op_id: rules for op_id, rules in found.items() if rules}


# -- checking ------------------------------------------------------------------------------------
def _places(
    value: Any, where: Sequence[str | None], trail: tuple[str | int, ...]
) -> Iterator[tuple[Any, tuple[str | int, ...]]]:
    if not where:
        yield value, trail
        return
    head, rest = where[0], where[1:]
    if head is None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _places(item, rest, (*trail, index))
    elif isinstance(value, Mapping) and head in value:
        yield from _places(value[head], rest, (*trail, head))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _with(refusal: Refusal, message: str) -> str:
    return f"{message}; {refusal.message}" if refusal.message else message


def _unique(rule: Rule, items: list[Any], trail: tuple[str | int, ...]) -> Iterator[Violation]:
    seen: dict[Any, int] = {}
    for index, item in enumerate(items):
        if rule.prefix is not None:
            key: Any = item[: rule.prefix] if isinstance(item, str) else _hashable(item)
        else:
            key = tuple(_hashable(_member(item, tokens)) for tokens in rule.pointers)
            if rule.exempt and key[0] in rule.exempt:
                continue
        if key not in seen:
            seen[key] = index
            continue
        first = json_path([*trail, seen[key]])
        if rule.prefix is not None:
            what = f"starts with the same {rule.prefix} character(s) ({_shown(key)}) as {first}"
            at = [*trail, index]
        elif rule.pointers == ((),):
            what = f"repeats {first}"
            at = [*trail, index]
        else:
            names = " and ".join("/".join(tokens) for tokens in rule.pointers)
            values = ", ".join(_shown(_member(item, t)) for t in rule.pointers if _member(item, t) is not _ABSENT)
            what = f"has the same {names} as {first}" + (f" ({values})" if values else "")
            at = [*trail, index, *rule.pointers[0]] if len(rule.pointers) == 1 else [*trail, index]
        yield Violation(json_path(at), _with(rule.refusal, what), rule.refusal)


def check(rules: Sequence[Rule], document: Any) -> list[Violation]:
    """Every rule `document` (schema-valid) breaks, in rule order."""
    found: list[Violation] = []
    for rule in rules:
        for value, trail in _places(document, rule.where, ()):
            if rule.kind == "unique" and isinstance(value, list):
                found.extend(_unique(rule, value, trail))
            elif rule.kind == "one_of" and isinstance(value, Mapping):
                if not any(name in value for name in rule.members):
                    group = ", ".join(rule.members)
                    for name in rule.members:
                        others = " nor ".join(m for m in rule.members if m != name)
                        what = f"is missing, and so is {others}: send at least one of {group}"
                        found.append(Violation(json_path([*trail, name]), _with(rule.refusal, what), rule.refusal))
            elif rule.kind == "forbidden" and _hashable(value) in rule.forbidden:
                what = f"{_shown(value)} is not allowed here"
                found.append(Violation(json_path(list(trail)), _with(rule.refusal, what), rule.refusal))
    return found


def refusal_error(violations: Sequence[Violation]) -> MockError:
    """The refusal for `violations` (non-empty): the first one's status and code, with every
    violation of that same refusal named."""
    first = violations[0].refusal
    same = [v for v in violations if v.refusal.status == first.status and v.refusal.code == first.code]
    fields = [FieldError(v.field, v.message, v.refusal.code if isinstance(v.refusal.code, int) else None) for v in same]
    error_class = _ERRORS.get(first.status, ValidationFailed)
    kind = first.code if isinstance(first.code, str) else None
    error = error_class("The request breaks a documented rule", fields, kind=kind)
    if error_class is ValidationFailed and first.status != 400:  # a status the table has no class for
        error.status = first.status
    return error
