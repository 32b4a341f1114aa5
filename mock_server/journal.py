"""The request journal: every vendor-API request, newest last, bounded by count and by bytes."""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from multidict import MultiDict

from mock_server.clock import isoformat

REDACTED = "***"
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "cap-api-access-token", "x-cap-api-oauth-token", "cookie", "proxy-authorization",
     "x-admin-token"}
)
_SECRET_KEY_PARTS = ("password", "secret", "api_key", "apikey", "token", "authorization")


def _is_secret_key(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret-looking field replaced by `***`."""
    if isinstance(value, dict):
        return {k: (REDACTED if _is_secret_key(str(k)) and v is not None else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


MAX_SHOWN_DEPTH = 64  # a recorded body nested deeper is shown as text (it is redacted and encoded recursively)
_SHOWN_TEXT_BYTES = 2048


def _as_text(raw: bytes) -> str:
    return raw[:_SHOWN_TEXT_BYTES].decode("utf-8", errors="replace")


def nesting_depth(value: Any, limit: int) -> int:
    """How deeply `value` nests arrays and objects, counted up to `limit + 1` (iteratively)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            depth += 1
            if depth > limit:
                return depth
            deepest = max(deepest, depth)
            stack.extend((item, depth) for item in node if isinstance(item, (dict, list)))
    return deepest


def decode_body(raw: bytes, content_type: str = "") -> Any:
    """A recorded body as JSON (or a form as a dict) when it is one, else (a prefix of) its text:
    also when it is JSON nested deeper than `MAX_SHOWN_DEPTH`, so any body kept can be shown."""
    if not raw:
        return None
    if "x-www-form-urlencoded" in content_type.lower():
        return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or deeper than the decoder's stack
        return _as_text(raw)
    if nesting_depth(document, MAX_SHOWN_DEPTH) > MAX_SHOWN_DEPTH:
        return _as_text(raw)
    return document


def _shown(part: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    headers = part.get("headers") or {}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    for key, value in part.items():
        if key == "raw":
            shown["body"] = redact(decode_body(value, content_type))
        elif key == "headers":
            shown["headers"] = redact_headers(value)
        elif key == "query":
            if isinstance(value, str):  # the raw query string, as the hot path keeps it
                value = MultiDict(parse_qsl(value, keep_blank_values=True))
            shown["query"] = redact(dict(value))
        else:
            shown[key] = redact(value)
    return shown


@dataclass(slots=True)
class JournalEntry:
    id: int
    time: datetime | str
    api: str
    operation_id: str | None
    method: str
    path: str
    status: int
    request: dict[str, Any]
    response: dict[str, Any]
    violations: list[dict[str, Any]]
    source: str
    duration_ms: float
    size: int

    def as_dict(self) -> dict[str, Any]:
        """The entry as the admin API shows it: bodies decoded, secrets redacted (done here, at
        read time, so recording stays cheap on the hot path)."""
        return {
            "id": self.id,
            "time": isoformat(self.time) if isinstance(self.time, datetime) else self.time,
            "api": self.api,
            "operation_id": self.operation_id,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "request": _shown(self.request),
            "response": _shown(self.response),
            "violations": self.violations,
            "source": self.source,
            "duration_ms": self.duration_ms,
        }


class Journal:
    """Bounded: the oldest entries go first when either limit is passed (0 = no entries kept)."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: deque[JournalEntry] = deque()
        self._bytes = 0
        self._ids = itertools.count(1)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def record(self, *, size: int, **fields: Any) -> JournalEntry:
        return self.append(JournalEntry(id=0, size=size, **fields))

    def append(self, entry: JournalEntry) -> JournalEntry:
        """Keep `entry` (numbered here), dropping the oldest past either bound."""
        entry.id = next(self._ids)
        if self.max_entries == 0 or self.max_bytes == 0:
            self.dropped += 1
            return entry
        self._entries.append(entry)
        self._bytes += entry.size
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            old = self._entries.popleft()
            self._bytes -= old.size
            self.dropped += 1
        return entry

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def reset(self) -> None:
        self.clear()
        self._ids = itertools.count(1)
        self.dropped = 0

    def entries(
        self,
        *,
        api: str | None = None,
        operation_id: str | None = None,
        since: int | datetime | None = None,
    ) -> Iterable[JournalEntry]:
        for entry in self._entries:
            if api is not None and entry.api != api:
                continue
            if operation_id is not None and entry.operation_id != operation_id:
                continue
            if isinstance(since, int) and entry.id <= since:
                continue
            if isinstance(since, datetime):
                moment = entry.time if isinstance(entry.time, datetime) else datetime.fromisoformat(entry.time)
                if moment <= since:
                    continue
            yield entry

    def after(self, entry_id: int) -> tuple[list[JournalEntry], int]:
        """The retained entries with an id above `entry_id`, oldest first, and the newest retained
        id (0 when none is kept). Read from the newest end, so a poll costs the entries it returns
        (the console's event stream, `mock_server.events`)."""
        newer: list[JournalEntry] = []
        for entry in reversed(self._entries):
            if entry.id <= entry_id:
                break
            newer.append(entry)
        newer.reverse()
        return newer, self._entries[-1].id if self._entries else 0
