"""Injected faults: latency or an error answer for matching requests (the admin API's `/faults`)."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """RFC 6901 JSON pointer lookup; `_MISSING` when it does not resolve."""
    if pointer in ("", "/"):
        return document
    if not pointer.startswith("/"):
        pointer = "/" + pointer
    node = document
    for token in pointer[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _value_matches(expected: Any, actual: Any) -> bool:
    if actual is _MISSING:
        return False
    if isinstance(expected, dict) and set(expected) == {"pattern"}:
        return isinstance(actual, str) and re.search(str(expected["pattern"]), actual) is not None
    return bool(expected == actual)


@dataclass
class Fault:
    id: str
    api: str
    operation_id: str | None = None
    match: dict[str, Any] = field(default_factory=dict)
    latency_ms: int = 0
    status: int | None = None
    body: Any = None
    probability: float = 1.0
    times: int | None = None
    hits: int = 0

    def matches(self, api: str, operation_id: str | None, body: Any, query: dict[str, Any]) -> bool:
        if self.api != api:
            return False
        if self.operation_id is not None and self.operation_id != operation_id:
            return False
        for pointer, expected in self.match.items():
            found = resolve_pointer(body, pointer)
            if found is _MISSING:
                found = resolve_pointer(query, pointer)
            if not _value_matches(expected, found):
                return False
        return True

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "api": self.api,
            "operation_id": self.operation_id,
            "match": self.match,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "body": self.body,
            "probability": self.probability,
            "times": self.times,
            "hits": self.hits,
        }


class FaultRegistry:
    def __init__(self, seed: int = 0) -> None:
        self._faults: dict[str, Fault] = {}
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)
        self._seed = seed

    def add(self, **spec: Any) -> Fault:
        fault = Fault(id=f"fault-{next(self._ids)}", **spec)
        self._faults[fault.id] = fault
        return fault

    @property
    def active(self) -> bool:
        return bool(self._faults)

    def list(self) -> list[Fault]:
        return list(self._faults.values())

    def clear(self) -> None:
        self._faults.clear()

    def reset(self) -> None:
        self._faults.clear()
        self._ids = itertools.count(1)
        self._rng = random.Random(self._seed)

    def pick(self, api: str, operation_id: str | None, body: Any, query: dict[str, Any]) -> Fault | None:
        """The first fault that matches and fires (after its probability); uses up one of its times."""
        if not self._faults:
            return None
        for fault in list(self._faults.values()):
            if not fault.matches(api, operation_id, body, query):
                continue
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            fault.hits += 1
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[fault.id]
            return fault
        return None
