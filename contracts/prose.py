"""Rules the specs state in prose, in the machine-readable form of our `x-` keywords
(openapi/CONVENTIONS.md, "Rules JSON Schema cannot state"):

- `x-unique-by: [<JSON pointer>, ...]` on an array of objects (or `[""]`, the item itself): no two
  items share the values at those pointers (a missing member counts as absent, still a value);
  `x-unique-by-exempt: [value, ...]` (with a single pointer): items whose key is one of these may repeat.
- `x-unique-by-prefix: N` on an array of strings: no two items share their first N characters.
- `x-one-of-required: [[a, b, ...], ...]` on an object: at least one member of each group is present.
- `x-forbidden-values: [v, ...]` on a scalar: none of these values.

Beside them, `x-rule-refusal: {status, code?, message?, mock-domain?}` says what refusal breaking
the rule gets (the vendor's error code: Capillary `errors[].code`, LOKE `type`).

`violations` lists what an instance breaks (used by tests and to tell a case that breaks a rule on
purpose); `honour` brings a positive case's body within the rules with the smallest change (drop the
later duplicate, add the first member of a group, move off a forbidden value), in every phase of
the suite (`data.documented_rules`, called for every positive case just before it is sent).
`rule_sites` lists every rule every operation meets, `break_rule` changes a valid body to break
exactly one, and `refusal_problems` tells how an answer differs from the documented refusal
(the negative cases of `contracts/test_prose_rules.py`; an `x-one-of-required` refusal must name
the group's members, so a refusal for another reason, e.g. a channel's field schema, does not pass).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema

from contracts.specs import dereference, load_spec, pointer_token, resolve_ref

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
    if isinstance(value, dict):  # tagged: an empty object is no empty array ({} != [] in JSON)
        return ("<object>", tuple(sorted((str(k), _hashable(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("<array>", tuple(_hashable(v) for v in value))
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


# -- negative cases: a valid request changed to break exactly one rule --------------------------------
REFUSAL = "x-rule-refusal"
_COMBINATORS = ("allOf", "anyOf", "oneOf")
# Where a vendor's envelope carries its error code (openapi/CONVENTIONS.md, `x-rule-refusal.code`).
_CODES_AT: dict[str, Callable[[Any], list[Any]]] = {
    "capillary": lambda body: [e.get("code") for e in (body.get("errors") or []) if isinstance(e, dict)],
    "loke": lambda body: [body.get("type")],
}


@dataclass(frozen=True)
class RuleSite:
    """One rule of one keyword location, as one operation's request body reaches it."""

    slug: str
    method: str
    path: str
    operation_id: str
    pointer: str  # the raw spec's JSON pointer of the node carrying the keyword
    instance: tuple[str | None, ...]  # where in the body: property names, None for "every item"
    keyword: str  # x-unique-by (with -exempt / -prefix), x-one-of-required, x-forbidden-values
    group: int  # which x-one-of-required group (0 otherwise)
    node: dict[str, Any] = field(compare=False, repr=False)

    @property
    def refusal(self) -> dict[str, Any]:
        found = self.node.get(REFUSAL)
        return found if isinstance(found, dict) else {}

    @property
    def where(self) -> str:
        return "".join("[*]" if p is None else f".{p}" for p in self.instance).lstrip(".") or "$"

    @property
    def label(self) -> str:
        what = self.keyword if self.keyword != "x-one-of-required" else f"{self.keyword}[{self.group}]"
        return f"{self.method} {self.path} {self.where} {what}"


def _json_body(operation: dict[str, Any], document: dict[str, Any]) -> tuple[Any, str] | None:
    body, pointer = operation.get("requestBody"), ""
    while isinstance(body, dict) and "$ref" in body:
        pointer = str(body["$ref"])[1:]
        body = resolve_ref(document, str(body["$ref"]))
    for media_type, media in ((body or {}).get("content") or {}).items():
        if "json" in media_type and isinstance(media, dict) and isinstance(media.get("schema"), dict):
            return media["schema"], f"{pointer}/content/{pointer_token(media_type)}/schema"
    return None


def _sites_in(
    document: dict[str, Any], node: Any, pointer: str, instance: tuple[str | None, ...], found: list[Any]
) -> None:
    hops = 0
    while isinstance(node, dict) and hops < 32:
        _sites_here(node, pointer, instance, found)
        if "$ref" not in node:
            break
        pointer = str(node["$ref"])[1:]
        node, hops = resolve_ref(document, str(node["$ref"])), hops + 1
    if not isinstance(node, dict):
        return
    for key in _COMBINATORS:
        for index, part in enumerate(node.get(key) or []):
            _sites_in(document, part, f"{pointer}/{key}/{index}", instance, found)
    for name, sub in (node.get("properties") or {}).items():
        _sites_in(document, sub, f"{pointer}/properties/{pointer_token(str(name))}", (*instance, str(name)), found)
    if isinstance(node.get("items"), dict):
        _sites_in(document, node["items"], f"{pointer}/items", (*instance, None), found)


def _sites_here(node: dict[str, Any], pointer: str, instance: tuple[str | None, ...], found: list[Any]) -> None:
    if _is_unique_rule(node):
        found.append((pointer, instance, "x-unique-by", 0, node))
    for index, group in enumerate(node.get("x-one-of-required") or []):
        if isinstance(group, list) and group:
            found.append((pointer, instance, "x-one-of-required", index, node))
    if isinstance(node.get("x-forbidden-values"), list):
        found.append((pointer, instance, "x-forbidden-values", 0, node))


def rule_sites(slug: str) -> list[RuleSite]:
    """Every rule every operation of `<slug>.yaml` meets in its JSON request body, in spec order."""
    document = load_spec(slug)
    sites: list[RuleSite] = []
    for path, item in (document.get("paths") or {}).items():
        for method, operation in (item or {}).items():
            if method not in ("get", "put", "post", "patch", "delete") or not isinstance(operation, dict):
                continue
            body = _json_body(operation, document)
            if body is None:
                continue
            found: list[Any] = []
            _sites_in(document, body[0], body[1], (), found)
            for pointer, instance, keyword, group, node in found:
                site = RuleSite(
                    slug,
                    method.upper(),
                    str(path),
                    str(operation.get("operationId", "")),
                    pointer,
                    instance,
                    keyword,
                    group,
                    node,
                )
                if site not in sites:
                    sites.append(site)
    return sites


def _locate(value: Any, instance: tuple[str | None, ...], trail: tuple[str | int, ...] = ()) -> Any:
    """The first place in `value` that `instance` describes: (its parent, key, path), or None."""
    if not instance:
        return trail
    head, rest = instance[0], instance[1:]
    if head is None:
        for index, item in enumerate(value if isinstance(value, list) else []):
            found = _locate(item, rest, (*trail, index))
            if found is not None:
                return found
        return None
    if isinstance(value, dict) and head in value:
        return _locate(value[head], rest, (*trail, head))
    return None


def _at(value: Any, trail: tuple[str | int, ...]) -> Any:
    for step in trail:
        value = value[step]
    return value


def _path(trail: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in trail).lstrip(".") or "$"


Maker = Callable[["RuleSite", Any], Any]


def break_rule(site: RuleSite, body: Any, make: Maker | None = None) -> tuple[Any, str]:
    """A copy of the valid `body` changed to break exactly `site`'s rule, and the JSON path of the
    change: a repeated item (`make(site, item)` gives it; by default a copy of the first item whose
    key is not exempt, or for a prefix rule the item with its last character changed), every member
    of a group left out, or the first forbidden value. Raises LookupError when `body` does not reach
    the rule's location (the valid request must include it)."""
    broken = copy.deepcopy(body)
    trail = _locate(broken, site.instance)
    if trail is None:
        raise LookupError(f"the valid request has no {site.where}: build it with one to break {site.label}")
    node = site.node
    if site.keyword == "x-forbidden-values":
        forbidden = node["x-forbidden-values"][0]
        if not trail:
            return forbidden, "$"
        _at(broken, trail[:-1])[trail[-1]] = forbidden
        return broken, _path(trail)
    target = _at(broken, trail)
    if site.keyword == "x-one-of-required":
        if not isinstance(target, dict):
            raise LookupError(f"{_path(trail)} is not an object")
        for name in node["x-one-of-required"][site.group]:
            target.pop(str(name), None)
        return broken, _path(trail)
    if not isinstance(target, list):
        raise LookupError(f"{_path(trail)} is not an array")
    item = next((i for i in target if unique_key(node, i) is not None), None)
    if item is None:
        raise LookupError(f"{_path(trail)} has no item whose key may not repeat")
    if make is not None:
        repeat = make(site, copy.deepcopy(item))
    elif isinstance(node.get("x-unique-by-prefix"), int) and isinstance(item, str):
        repeat = item[:-1] + ("0" if item[-1:] != "0" else "1")
    else:
        repeat = copy.deepcopy(item)
    target.append(repeat)
    if unique_key(node, repeat) != unique_key(node, item):
        raise LookupError(f"the repeat made for {site.label} does not share the key of {item!r}")
    return broken, _path((*trail, len(target) - 1))


def vendor_codes(slug: str, body: Any) -> list[Any]:
    """The error codes a vendor's error envelope carries (Capillary `errors[].code`, LOKE `type`)."""
    pick = _CODES_AT.get(slug)
    return pick(body) if pick is not None and isinstance(body, dict) else []


def documented_response(slug: str, method: str, path: str, status: int) -> dict[str, Any] | None:
    """The JSON schema of the documented response for `status` (exact, then `4XX`, then default)."""
    operation = ((_dereferenced(slug).get("paths") or {}).get(path) or {}).get(method.lower()) or {}
    responses = operation.get("responses") or {}
    response = next((responses[k] for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
    for media_type, media in ((response or {}).get("content") or {}).items():
        if "json" in media_type and isinstance(media, dict) and isinstance(media.get("schema"), dict):
            found: dict[str, Any] = media["schema"]
            return found
    return None


def refusal_problems(site: RuleSite, status: int, body: Any) -> list[tuple[str, str]]:
    """How an answer to `site`'s rule-breaking request differs from the documented refusal, as
    (what, message): `accepted` (a 2xx), `status`, `envelope` (the body is not the documented
    response's), `code` (the vendor's error code is missing). Empty when it is the refusal."""
    wanted = site.refusal
    expected = int(wanted.get("status", 400))
    if 200 <= status < 300:
        return [("accepted", f"the request breaking {site.keyword} at {site.where} was accepted ({status})")]
    problems: list[tuple[str, str]] = []
    if status != expected:
        problems.append(("status", f"refused with {status}, not the documented {expected}"))
        return problems
    schema = documented_response(site.slug, site.method, site.path, expected)
    if schema is not None:
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path)
            problems.append(
                (
                    "envelope",
                    f"the {status} body is not the documented error envelope: /{where}: {errors[0].message[:200]}",
                )
            )
    code = wanted.get("code")
    if code is not None and code not in vendor_codes(site.slug, body):
        problems.append(("code", f"the refusal does not carry the vendor's error code {code!r}"))
    if site.keyword == "x-one-of-required":  # refused for the rule, not for something else of the body
        groups = site.node.get(site.keyword) or []
        members = [str(m) for m in groups[site.group]] if site.group < len(groups) else []
        said = json.dumps(body) if body is not None else ""
        unnamed = [m for m in members if m not in said]
        if unnamed:
            problems.append(
                (
                    "fields",
                    f"the {status} does not name {', '.join(unnamed)}: it refuses something else than "
                    f"the rule (one of {', '.join(members)} is required)",
                )
            )
    return problems
