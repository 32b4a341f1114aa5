"""Compare two JSON answers the Diffy way: status, shape (every JSON pointer with its JSON type,
array indices folded to `*`) and values, with noise (pointers where two runs of the mock itself
disagree) and `--ignore` pointers taken out afterwards."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from mock_server.journal import REDACTED
from mock_server.schema import json_type

_INDEX = re.compile(r"/\d+(?=/|$)")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def fold(pointer: str) -> str:
    return _INDEX.sub("/*", pointer)


_TYPES = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


class Flat:
    """A JSON value flattened once: exact pointer -> value (containers included, the root as
    `""`), and its shape (folded pointer, indices as `*` -> the JSON types seen there)."""

    __slots__ = ("shape", "values")

    def __init__(self, value: Any) -> None:
        values: dict[str, Any] = {}
        shape: dict[str, set[str]] = {}
        types = _TYPES
        stack: list[tuple[str, str, Any]] = [("", "", value)]
        pop, push = stack.pop, stack.append
        while stack:
            pointer, folded, node = pop()
            values[pointer] = node
            kind = types.get(type(node)) or json_type(node)
            found = shape.get(folded)
            if found is None:
                shape[folded] = {kind}
            elif kind not in found:
                found.add(kind)
            if kind == "object":
                for key, child in node.items():
                    if "~" in key or "/" in key:
                        key = key.replace("~", "~0").replace("/", "~1")
                    push((pointer + "/" + key, folded + "/" + key, child))
            elif kind == "array":
                item = folded + "/*"
                for index, child in enumerate(node):
                    push((pointer + "/" + str(index), item, child))
        self.values = values
        self.shape = shape


def flatten(value: Any) -> dict[str, Any]:
    """Exact pointer -> the value there (containers included), root as ``""``."""
    return Flat(value).values


def shape(flat: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for pointer, value in flat.items():
        found.setdefault(fold(pointer), set()).add(json_type(value))
    return found


def _moment(value: str) -> datetime | None:
    if not _DATE_TIME.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


Difference = tuple[str, str, str, Any, Any]  # (kind, folded pointer, exact pointer, vendor, mock)


def differences(
    vendor: Any,
    mock: Any,
    same_id: Callable[[Any, Any], bool] = lambda a, b: False,
    tolerance_s: float = 2.0,
) -> list[Difference]:
    """Where `mock` differs from `vendor`: `missing` (the vendor sends it, the mock does not),
    `extra`, `type`, `length` (arrays), `value` (scalars; a redacted vendor value, a mapped id
    or two times within `tolerance_s` count as equal). Either may be given as a `Flat`."""
    vendor_flat = vendor if isinstance(vendor, Flat) else Flat(vendor)
    mock_flat = mock if isinstance(mock, Flat) else Flat(mock)
    vendor_shape, mock_shape = vendor_flat.shape, mock_flat.shape
    found: list[Difference] = []
    for folded, types in vendor_shape.items():
        other = mock_shape.get(folded)
        if other is None:
            parent = folded.rsplit("/", 1)[0] if folded else None
            if (parent is not None and parent in mock_shape) or folded == "":
                found.append(("missing", folded, folded, "/".join(sorted(types)), None))
            continue
        if types == other:
            continue
        valued, other_valued = types - {"null"}, other - {"null"}
        if valued and other_valued and valued != other_valued:  # null against a value is data, not shape
            found.append(("type", folded, folded, "/".join(sorted(types)), "/".join(sorted(other))))
    for folded, types in mock_shape.items():
        if folded not in vendor_shape:
            parent = folded.rsplit("/", 1)[0]
            if parent in vendor_shape:
                found.append(("extra", folded, folded, None, "/".join(sorted(types))))
    mock_values = mock_flat.values
    for pointer, value in vendor_flat.values.items():
        if pointer not in mock_values:
            continue
        other = mock_values[pointer]
        if value in (other, REDACTED) and (type(value) is type(other) or not isinstance(value, (bool, int, float))):
            continue  # equal (1 == True aside)
        if isinstance(value, list) and isinstance(other, list):
            if len(value) != len(other):
                found.append(("length", fold(pointer), pointer, len(value), len(other)))
            continue
        if isinstance(value, (dict, list)) or isinstance(other, (dict, list)):
            continue
        if json_type(value) != json_type(other) or value == other:
            continue
        if same_id(value, other):
            continue
        if isinstance(value, str) and isinstance(other, str):
            first, second = _moment(value), _moment(other)
            if first is not None and second is not None and abs((first - second).total_seconds()) <= tolerance_s:
                continue
        found.append(("value", fold(pointer), pointer, value, other))
    return found


def ignored(folded: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        pattern = fold(pattern.rstrip("/"))
        if folded == pattern or folded.startswith(pattern + "/") or pattern in ("", "/"):
            return True
    return False
