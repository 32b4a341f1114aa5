"""The console's event stream (`GET /__admin/events`, issue 19), without HTTP: Server-Sent Events
framing, the journal entry summary the feed shows, the cursor that tells a poll what is new (or
that the journal was cleared), and the registry that caps and closes streams.

A stream polls its world's journal (`Journal.after`) every `POLL_SECONDS`: nothing is added to
the request hot path. The aiohttp side (the response, the loop) is `mock_server.admin`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from mock_server.clock import isoformat
from mock_server.journal import Journal, JournalEntry

POLL_SECONDS = 0.25  # a new journal entry reaches the page within this
CLOCK_SECONDS = 1.0  # the virtual clock is sent this often
KEEPALIVE_SECONDS = 15.0  # a comment line keeps proxies from closing an idle stream
BATCH = 1000  # entries per `requests` event at most (the backlog of `since=0` comes in such batches)
STEP = 250  # entries per event a stream builds in one step of the event loop: a busy journal (thousands
# of entries per poll) is sent in several steps, so the mock's own requests wait at most one step
MAX_STREAMS = 32  # open streams per world (the default tenant, each tenant)


def frame(event: str, data: Any, event_id: int | None = None) -> bytes:
    """One SSE event: `event:`, optional `id:`, `data:` (compact JSON, one line), a blank line.
    A string orjson refuses (a path holding a lone surrogate) is written as its JSON escape."""
    head = f"event: {event}\n" if event_id is None else f"event: {event}\nid: {event_id}\n"
    try:
        body = orjson.dumps(data, default=str)  # a tenth of json's cost: a poll may carry 1000 entries
    except (TypeError, orjson.JSONEncodeError):
        body = json.dumps(data, separators=(",", ":"), default=str).encode("ascii")
    return head.encode() + b"data: " + body + b"\n\n"


KEEPALIVE = b": keepalive\n\n"
RESET = frame("reset", {})


def summary(entry: JournalEntry) -> dict[str, Any]:
    """What the feed shows of an entry (`GET /__admin/requests/{id}` has the whole of it)."""
    moment = entry.time
    return {
        "id": entry.id,
        "time": isoformat(moment) if isinstance(moment, datetime) else moment,
        "api": entry.api,
        "operation_id": entry.operation_id,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "duration_ms": entry.duration_ms,
        "violations": len(entry.violations),
    }


def iter_request_frames(entries: Sequence[JournalEntry], size: int = BATCH) -> Iterator[bytes]:
    """`requests` events of at most `size` entries each, oldest first, each with the id of its last;
    built one at a time, so a sender can let other work run between them."""
    for start in range(0, len(entries), size):
        batch = entries[start : start + size]
        yield frame("requests", {"entries": [summary(e) for e in batch]}, batch[-1].id)


def request_frames(entries: Sequence[JournalEntry], size: int = BATCH) -> list[bytes]:
    return list(iter_request_frames(entries, size))


class Cursor:
    """Where a stream is in its journal: the last id sent, and how many entries had been cleared
    away when it last looked. Ids keep counting across `DELETE /requests` (`Journal.clear`) and
    start again at 1 after a reset, and every id handed out is either retained or counted in
    `Journal.dropped` (the bounds): so `newest - len - dropped` grows exactly when a clear took
    entries away. A poll reports a reset when that number changed or the newest id is below the
    last sent (the journal is empty, or ids went back); the entries after it are then all new."""

    def __init__(self, journal: Journal, since: int | None) -> None:
        self.journal = journal
        _, newest = journal.after(2**63)
        self.last_id = newest if since is None else since
        self._cleared = self._cleared_now(newest)

    def _cleared_now(self, newest: int) -> int | None:
        return newest - len(self.journal) - self.journal.dropped if newest else None

    def poll(self) -> tuple[bool, list[JournalEntry]]:
        """(whether the journal was cleared or reset since the last poll, the entries to send)."""
        newer, newest = self.journal.after(self.last_id)
        cleared = self._cleared_now(newest)
        reset = (self.last_id > 0 and newest < self.last_id) or (
            cleared is not None and self._cleared is not None and cleared != self._cleared
        )
        if reset:
            self.last_id = 0
            newer, newest = self.journal.after(0)
        self._cleared = cleared  # None on an empty journal: the next entries set it afresh
        if newer:
            self.last_id = newer[-1].id
        return reset, newer

    def frames(self, size: int = BATCH) -> list[bytes]:
        """The events a poll gives: `reset` first when there was one, then the new entries."""
        return list(self.iter_frames(size))

    def iter_frames(self, size: int = BATCH) -> Iterator[bytes]:
        """`frames`, built lazily: the poll happens now, each `requests` event when it is asked for."""
        reset, newer = self.poll()
        if reset:
            yield RESET
        yield from iter_request_frames(newer, size)


class StreamLimit(Exception):
    """A world already has `MAX_STREAMS` open streams."""


class Streams:
    """The open streams of one server, counted per world (a key: the world object), so each world
    has at most `limit`; `close_all` (on shutdown) tells every stream to end."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self.limit = limit
        self._open: dict[int, set[asyncio.Event]] = {}
        self.closed = False

    def open(self, world: object) -> asyncio.Event:
        """A stream of `world` starts: the event set when it must end. `StreamLimit` when full."""
        streams = self._open.setdefault(id(world), set())
        if len(streams) >= self.limit:
            raise StreamLimit(f"{len(streams)} event streams are open; at most {self.limit} at once")
        stop = asyncio.Event()
        if self.closed:
            stop.set()
        streams.add(stop)
        return stop

    def release(self, world: object, stop: asyncio.Event) -> None:
        streams = self._open.get(id(world))
        if streams is not None:
            streams.discard(stop)
            if not streams:
                del self._open[id(world)]

    def close_world(self, world: object) -> None:
        """End the streams of one world (a deleted tenant's)."""
        for stop in self._open.get(id(world), ()):
            stop.set()

    def count(self, world: object) -> int:
        return len(self._open.get(id(world), ()))

    def close_all(self) -> None:
        self.closed = True
        for stop in self._every():
            stop.set()

    def _every(self) -> Iterable[asyncio.Event]:
        for streams in self._open.values():
            yield from streams
