"""Rules the specs state in prose, in the machine-readable form of our `x-` keywords
(openapi/CONVENTIONS.md, "Rules JSON Schema cannot state"):

- `x-unique-by: [<JSON pointer>, ...]` on an array of objects (or `[""]`, the item itself): no two
  items share the values at those pointers (a missing member counts as absent, still a value);
  `x-unique-by-exempt: [value, ...]` (with a single pointer): items whose key is one of these may repeat.
- `x-unique-by-prefix: N` on an array of strings: no two items share their first N characters.
- `x-one-of-required: [[a, b, ...], ...]` on an object: at least one member of each group is present.
- `x-forbidden-values: [v, ...]` on a scalar: none of these values.

`violations` lists what an instance breaks (used by tests and to tell a case that breaks a rule on
purpose); `honour` brings a positive case's body within the rules with the smallest change (drop the
later duplicate, add the first member of a group, move off a forbidden value), in every phase of
the suite (`data.documented_rules`, called for every positive case just before it is sent).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache
from typing import Any

from contracts.specs import dereference, load_spec

KEYWORDS = ("x-unique-by", "x-unique-by-exempt", "x-unique-by-prefix", "x-one-of-required", "x-forbidden-values")
_ABSENT = object()

Filler = Callable[[str, dict[str, Any], random.Random], Any]


def _member(item: Any, pointer: str) -> Any:
    if pointer == "":
        return item
    node = item
    for token in pointer.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _ABSENT
    return node


def _hashable(value: Any) -> Any:
    if value is _ABSENT:
        return ("<absent>",)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, bool):  # True == 1 in Python, not in JSON
        return ("<bool>", value)
    return value


def unique_key(schema: dict[str, Any], item: Any) -> Any:
    """The key an array item must not share with another item, or None when it is exempt."""
    prefix = schema.get("x-unique-by-prefix")
    if isinstance(prefix, int):
        return item[:prefix] if isinstance(item, str) else _hashable(item)
    pointers = schema.get("x-unique-by")
    if not isinstance(pointers, list):
        return None
    values = tuple(_hashable(_member(item, str(p))) for p in pointers)
    exempt = schema.get("x-unique-by-exempt") or []
    if len(values) == 1 and any(values[0] == _hashable(e) for e in exempt):
        return None
    return values


def _is_unique_rule(schema: dict[str, Any]) -> bool:
    return "x-unique-by" in schema or "x-unique-by-prefix" in schema


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for part in [schema, *(s for s in schema.get("allOf") or [] if isinstance(s, dict))]:
        found.update(part.get("properties") or {})
    return found


def violations(schema: Any, value: Any, path: str = "") -> list[str]:
    """Every rule of our `x-` keywords that `value` breaks, as '<json path>: <what>'."""
    if not isinstance(schema, dict):
        return []
    found: list[str] = []
    where = path or "$"
    forbidden = schema.get("x-forbidden-values")
    if isinstance(forbidden, list) and any(_hashable(value) == _hashable(f) for f in forbidden):
        found.append(f"{where}: {value!r} is not allowed (x-forbidden-values)")
    if isinstance(value, dict):
        for group in schema.get("x-one-of-required") or []:
            if isinstance(group, list) and not any(name in value for name in group):
                found.append(f"{where}: needs at least one of {', '.join(map(str, group))} (x-one-of-required)")
        for name, sub in _properties(schema).items():
            if name in value:
                found.extend(violations(sub, value[name], f"{path}.{name}" if path else name))
    elif isinstance(value, list):
        items = schema.get("items")
        for index, item in enumerate(value):
            found.extend(violations(items, item, f"{where}[{index}]"))
        if _is_unique_rule(schema):
            seen: dict[Any, int] = {}
            for index, item in enumerate(value):
                key = unique_key(schema, item)
                if key is None:
                    continue
                if key in seen:
                    found.append(f"{where}[{index}]: repeats {where}[{seen[key]}] (x-unique-by)")
                else:
                    seen[key] = index
    return found


def _replacement(schema: dict[str, Any], forbidden: list[Any], value: Any) -> Any:
    banned = {_hashable(f) for f in forbidden}
    for example in schema.get("examples") or []:
        if _hashable(example) not in banned:
            return example
    if isinstance(value, int) and not isinstance(value, bool):
        candidate = value
        while _hashable(candidate) in banned:
            candidate += 1
        return candidate
    return value


def honour(schema: Any, value: Any, rnd: random.Random, fill: Filler | None = None) -> Any:
    """`value` brought within the rules of our `x-` keywords (objects and arrays changed in
    place; the possibly new value returned). `fill(name, property_schema, rnd)` gives a value
    for a member an `x-one-of-required` group needs (None: leave it missing)."""
    if not isinstance(schema, dict):
        return value
    forbidden = schema.get("x-forbidden-values")
    if isinstance(forbidden, list) and any(_hashable(value) == _hashable(f) for f in forbidden):
        value = _replacement(schema, forbidden, value)
    if isinstance(value, dict):
        properties = _properties(schema)
        for name, sub in properties.items():
            if name in value:
                value[name] = honour(sub, value[name], rnd, fill)
        for group in schema.get("x-one-of-required") or []:
            if isinstance(group, list) and group and not any(name in value for name in group):
                name = str(group[0])
                made = fill(name, properties.get(name) or {}, rnd) if fill else None
                if made is not None:
                    value[name] = made
    elif isinstance(value, list):
        items = schema.get("items")
        value[:] = [honour(items, item, rnd, fill) for item in value]
        if _is_unique_rule(schema):
            seen: set[Any] = set()
            kept = []
            for item in value:
                key = unique_key(schema, item)
                if key is not None and key in seen:
                    continue
                if key is not None:
                    seen.add(key)
                kept.append(item)
            value[:] = kept
    return value


@cache
def _dereferenced(slug: str) -> dict[str, Any]:
    document = load_spec(slug)
    found: dict[str, Any] = dereference(document, document)
    return found


def request_body_schema(slug: str, method: str, path: str) -> dict[str, Any] | None:
    """The JSON request body schema of an operation of `<slug>.yaml`, dereferenced."""
    operation = ((_dereferenced(slug).get("paths") or {}).get(path) or {}).get(method.lower())
    if not isinstance(operation, dict):
        return None
    content = (operation.get("requestBody") or {}).get("content") or {}
    for media_type, body in content.items():
        if "json" in media_type and isinstance(body, dict) and isinstance(body.get("schema"), dict):
            found: dict[str, Any] = body["schema"]
            return found
    return None


def keyword_locations(slug: str) -> list[str]:
    """Every schema location of `<slug>.yaml` that carries one of our prose keywords."""
    found: list[str] = []

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            if any(k in node for k in KEYWORDS):
                found.append(pointer)
            for key, child in node.items():
                walk(child, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{pointer}/{index}")

    walk(load_spec(slug), "")
    return found
