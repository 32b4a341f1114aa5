"""The request journal: every vendor-API request, newest last, bounded by count and by bytes."""

from __future__ import annotations

import builtins
import itertools
import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from multidict import CIMultiDict, MultiDict

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
    violations: Sequence[dict[str, Any]]  # a tuple when read back from an exchange
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
            "violations": list(self.violations),
            "source": self.source,
            "duration_ms": self.duration_ms,
        }


# A kept entry is one flat tuple. For an exchange (`Journal.exchange`: what the hot path records)
# every field is an immutable atom, headers included (one string of name and value lines), and
# CPython's collector stops tracking such a tuple at its first pass: a full journal (10,000
# entries per tenant) then adds nothing to a collection of the oldest generation, whose pauses,
# 100-300 ms with full journals, were the mock's p99 (issue 18). A nested tuple would not do: the
# collector untracks one level per pass, so the outer ones reach the oldest generation tracked.
# Any other entry (`append`: outbound calls, the proxy) keeps its request and response dicts.
_ID, _TIME, _API, _OPERATION, _METHOD, _PATH, _STATUS = range(7)
_REQUEST_HEADERS, _QUERY, _RAW, _RESPONSE_HEADERS, _PAYLOAD = range(7, 12)  # an exchange's
_REQUEST, _RESPONSE = _REQUEST_HEADERS, _RESPONSE_HEADERS  # any other entry's dicts, in the same places
_VIOLATIONS, _SOURCE, _DURATION, _SIZE = range(12, 16)
Stored = tuple[Any, ...]


def _lines(headers: Mapping[str, str]) -> str | None:
    """Header pairs as `name\nvalue\n...` (None when a name or value holds a newline, which
    aiohttp's parser refuses and the mock never writes: then the entry keeps dicts)."""
    text = "\n".join(map("\n".join, headers.items()))
    return text if text.count("\n") == max(2 * len(headers) - 1, 0) else None


def _pairs(text: str) -> list[tuple[str, str]]:
    if not text:
        return []
    parts = text.split("\n")
    return list(zip(parts[::2], parts[1::2], strict=True))


def _unpack(stored: Stored) -> JournalEntry:
    if type(stored[_REQUEST_HEADERS]) is str:
        request: dict[str, Any] = {
            "headers": CIMultiDict(_pairs(stored[_REQUEST_HEADERS])), "query": stored[_QUERY], "raw": stored[_RAW]
        }
        response: dict[str, Any] = {"headers": dict(_pairs(stored[_RESPONSE_HEADERS])), "raw": stored[_PAYLOAD]}
    else:
        request, response = stored[_REQUEST], stored[_RESPONSE]
    return JournalEntry(
        stored[_ID], stored[_TIME], stored[_API], stored[_OPERATION], stored[_METHOD], stored[_PATH],
        stored[_STATUS], request, response, stored[_VIOLATIONS], stored[_SOURCE],
        stored[_DURATION], stored[_SIZE],
    )


class Journal:
    """Bounded: the oldest entries go first when either limit is passed (0 = no entries kept).
    Entries are kept as flat tuples (see `_ID` above) and read as new `JournalEntry` objects."""

    def __init__(self, max_entries: int, max_bytes: int, budget: JournalBudget | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: deque[Stored] = deque()
        self._bytes = 0
        self._ids = itertools.count(1)
        self.dropped = 0
        self.budget = budget  # the process's bound across every world's journal
        self.generation = 0  # changes when ids restart or the entries go (the budget's stale marks)
        self.key = budget.register(self) if budget is not None else 0

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
        self._keep(
            (entry.id, entry.time, entry.api, entry.operation_id, entry.method, entry.path, entry.status,
             entry.request, None, None, entry.response, None, entry.violations, entry.source,
             entry.duration_ms, entry.size)
        )
        return entry

    def exchange(
        self,
        time: datetime,
        api: str,
        operation_id: str | None,
        method: str,
        path: str,
        status: int,
        request_headers: Mapping[str, str],
        query: str,
        raw: builtins.bytes,
        response_headers: Mapping[str, str],
        payload: builtins.bytes,
        violations: Sequence[dict[str, Any]],
        source: str,
        duration_ms: float,
        size: int,
    ) -> int:
        """Keep one request the mock answered (what the hot path records), as atoms only; its id."""
        request_lines = _lines(request_headers)
        response_lines = _lines(response_headers)
        if request_lines is None or response_lines is None:  # a newline in a header: kept as dicts
            return self.append(JournalEntry(
                0, time, api, operation_id, method, path, status,
                {"headers": CIMultiDict(request_headers), "query": query, "raw": raw},
                {"headers": dict(response_headers), "raw": payload}, list(violations), source, duration_ms, size,
            )).id
        number = next(self._ids)
        self._keep(
            (number, time, api, operation_id, method, path, status, request_lines, query, raw,
             response_lines, payload, tuple(violations), source, duration_ms, size)
        )
        return number

    def _keep(self, stored: Stored) -> None:
        if self.max_entries == 0 or self.max_bytes == 0:
            self.dropped += 1
            return
        self._entries.append(stored)
        self._bytes += stored[_SIZE]
        if self.budget is not None:  # may let this journal's oldest go too
            self.budget.added(self, stored[_ID], stored[_SIZE])
        while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
            self.drop_oldest()

    def drop_oldest(self) -> None:
        """Let the oldest entry go (this journal's bounds, or the process's budget)."""
        old = self._entries.popleft()
        self._bytes -= old[_SIZE]
        self.dropped += 1
        if self.budget is not None:
            self.budget.removed(old[_SIZE])

    def oldest_id(self) -> int | None:
        return self._entries[0][_ID] if self._entries else None

    def clear(self) -> None:
        if self.budget is not None:
            self.budget.removed(self._bytes, len(self._entries))
        self._entries.clear()
        self._bytes = 0
        self.generation += 1

    def reset(self) -> None:
        self.clear()
        self._ids = itertools.count(1)
        self.dropped = 0

    def close(self) -> None:
        """Its world is gone (a tenant deleted): its entries and its place in the budget."""
        self.clear()
        if self.budget is not None:
            self.budget.unregister(self)

    def entries(
        self,
        *,
        api: str | None = None,
        operation_id: str | None = None,
        since: int | datetime | None = None,
    ) -> Iterable[JournalEntry]:
        for stored in self._entries:
            if api is not None and stored[_API] != api:
                continue
            if operation_id is not None and stored[_OPERATION] != operation_id:
                continue
            if isinstance(since, int) and stored[_ID] <= since:
                continue
            if isinstance(since, datetime):
                time = stored[_TIME]
                moment = time if isinstance(time, datetime) else datetime.fromisoformat(time)
                if moment <= since:
                    continue
            yield _unpack(stored)

    def after(self, entry_id: int) -> tuple[list[JournalEntry], int]:
        """The retained entries with an id above `entry_id`, oldest first, and the newest retained
        id (0 when none is kept). Read from the newest end, so a poll costs the entries it returns
        (the console's event stream, `mock_server.events`)."""
        newer: list[JournalEntry] = []
        for stored in reversed(self._entries):
            if stored[_ID] <= entry_id:
                break
            newer.append(_unpack(stored))
        newer.reverse()
        return newer, self._entries[-1][_ID] if self._entries else 0


class JournalBudget:
    """A bound on the bytes every journal of one process keeps together (`--journal-max-total-bytes`,
    counted as each journal counts them), on top of each journal's own bounds: past it, the oldest
    entries of the whole process go first, whichever tenant they belong to. So a shared sandbox's
    journals cannot grow with its number of busy tenants (a tenant's own bound is 10,000 entries).

    It keeps the order of arrival as (journal key, generation, id) marks, numbers only, which the
    cyclic collector stops tracking as it does the entries; a mark whose entry its journal already
    let go (its own bounds, a reset, the tenant deleted) is stale and skipped, and the marks are
    compacted when the stale ones outnumber the kept entries, so their cost stays in proportion."""

    COMPACT_SLACK = 4096

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0
        self.entries = 0
        self.dropped = 0
        self._journals: dict[int, Journal] = {}
        self._keys = itertools.count(1)
        self._order: deque[tuple[int, int, int]] = deque()

    def register(self, journal: Journal) -> int:
        key = next(self._keys)
        self._journals[key] = journal
        return key

    def unregister(self, journal: Journal) -> None:
        self._journals.pop(journal.key, None)

    def added(self, journal: Journal, entry_id: int, size: int) -> None:
        self.used += size
        self.entries += 1
        self._order.append((journal.key, journal.generation, entry_id))
        while self.used > self.max_bytes and self._order:
            key, generation, oldest = self._order.popleft()
            owner = self._journals.get(key)
            if owner is not None and owner.generation == generation and owner.oldest_id() == oldest:
                owner.drop_oldest()  # tells removed()
                self.dropped += 1
        if len(self._order) > 2 * self.entries + self.COMPACT_SLACK:
            self._compact()

    def removed(self, size: int, count: int = 1) -> None:
        self.used -= size
        self.entries -= count

    def _compact(self) -> None:
        """Only the marks of entries still kept (an entry's id is at least its journal's oldest)."""
        kept: deque[tuple[int, int, int]] = deque()
        for mark in self._order:
            key, generation, entry_id = mark
            owner = self._journals.get(key)
            oldest = owner.oldest_id() if owner is not None and owner.generation == generation else None
            if oldest is not None and entry_id >= oldest:
                kept.append(mark)
        self._order = kept
