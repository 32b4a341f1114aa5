"""The console's event stream without HTTP (`mock_server.events`, issue 19): SSE framing, the
feed's entry summary, backlog batches, the cursor's view of new entries and of a cleared or reset
journal (`Journal.after`), and the per-world stream cap."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from mock_server import events
from mock_server.journal import Journal, JournalEntry

MOMENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _record(journal: Journal, *, status: int = 200, violations: int = 0, size: int = 100) -> JournalEntry:
    return journal.append(
        JournalEntry(
            0, MOMENT, "customtrades", "listCustomers", "GET", "/v1/customers", status,
            {"headers": {}, "query": "", "raw": b""}, {"headers": {}, "raw": b"{}"},
            [{"kind": "response_schema", "message": "x"}] * violations, "handler", 0.5, size,
        )
    )


def _parse(frame: bytes) -> dict[str, Any]:
    text = frame.decode()
    assert text.endswith("\n\n") and "\n\n" not in text[:-2], "one event, ended by a blank line"
    fields = dict(line.split(": ", 1) for line in text[:-2].split("\n"))
    fields["data"] = json.loads(fields["data"])
    return fields


def test_a_frame_is_one_sse_event_with_json_data_on_one_line() -> None:
    parsed = _parse(events.frame("clock", {"now": "2026-03-02T09:00:00.000Z", "note": "two\nlines"}, 7))
    assert parsed == {"event": "clock", "id": "7", "data": {"now": "2026-03-02T09:00:00.000Z", "note": "two\nlines"}}
    assert "id" not in _parse(events.frame("reset", {}))
    assert events.RESET == b"event: reset\ndata: {}\n\n"
    assert events.KEEPALIVE.startswith(b":") and events.KEEPALIVE.endswith(b"\n\n")


def test_the_summary_has_the_contract_fields_and_counts_violations() -> None:
    journal = Journal(100, 10**6)
    entry = _record(journal, status=500, violations=2)
    assert events.summary(entry) == {
        "id": 1, "time": "2026-03-02T09:00:00.000Z", "api": "customtrades", "operation_id": "listCustomers",
        "method": "GET", "path": "/v1/customers", "status": 500, "duration_ms": 0.5, "violations": 2,
    }


def test_the_backlog_comes_in_batches_oldest_first_each_with_its_last_id() -> None:
    journal = Journal(5000, 10**9)
    entries = [_record(journal) for _ in range(2500)]
    frames = [_parse(f) for f in events.request_frames(entries)]
    assert [len(f["data"]["entries"]) for f in frames] == [1000, 1000, 500]
    assert [f["id"] for f in frames] == ["1000", "2000", "2500"]
    ids = [e["id"] for f in frames for e in f["data"]["entries"]]
    assert ids == list(range(1, 2501))
    assert events.request_frames([]) == []


def test_journal_after_returns_only_newer_entries_and_the_newest_id() -> None:
    journal = Journal(3, 10**6)
    assert journal.after(0) == ([], 0)
    for _ in range(5):
        _record(journal)  # 1 and 2 dropped by the bound of 3
    newer, newest = journal.after(3)
    assert [e.id for e in newer] == [4, 5] and newest == 5
    assert [e.id for e in journal.after(0)[0]] == [3, 4, 5]
    assert journal.after(5) == ([], 5)


def test_a_cursor_without_since_sends_only_what_comes_next() -> None:
    journal = Journal(100, 10**6)
    _record(journal)
    _record(journal)
    cursor = events.Cursor(journal, None)
    assert cursor.poll() == (False, [])
    third = _record(journal)
    assert cursor.poll() == (False, [third])
    assert cursor.poll() == (False, [])


def test_since_zero_sends_the_backlog_then_live() -> None:
    journal = Journal(100, 10**6)
    first, second = _record(journal), _record(journal)
    cursor = events.Cursor(journal, 0)
    assert cursor.poll() == (False, [first, second])
    assert cursor.last_id == 2


def test_a_clear_is_a_reset_even_when_new_entries_came_after_it() -> None:
    journal = Journal(100, 10**6)
    cursor = events.Cursor(journal, None)
    _record(journal)
    _record(journal)
    assert len(cursor.poll()[1]) == 2
    journal.clear()
    fresh = _record(journal)  # id 3: ids keep counting across a clear
    reset, newer = cursor.poll()
    assert reset and newer == [fresh]
    assert cursor.poll() == (False, [])
    frames = events.Cursor(journal, 0).frames()
    assert frames[0] != events.RESET  # a new stream has nothing to reset


def test_a_clear_seen_on_an_empty_journal_is_one_reset() -> None:
    journal = Journal(100, 10**6)
    cursor = events.Cursor(journal, None)
    _record(journal)
    cursor.poll()
    journal.clear()
    assert cursor.poll() == (True, [])
    assert cursor.poll() == (False, [])
    later = _record(journal)
    assert cursor.poll() == (False, [later])


def test_a_journal_reset_sends_reset_then_the_entries_after_it() -> None:
    journal = Journal(100, 10**6)
    cursor = events.Cursor(journal, None)
    for _ in range(3):
        _record(journal)
    cursor.poll()
    journal.reset()
    again = _record(journal)  # id 1 again
    frames = cursor.frames()
    assert frames[0] == events.RESET
    assert [e["id"] for e in _parse(frames[1])["data"]["entries"]] == [again.id] == [1]


def test_entries_dropped_by_the_bounds_are_not_a_reset() -> None:
    journal = Journal(2, 10**6)
    cursor = events.Cursor(journal, 0)
    for _ in range(5):
        _record(journal)
    reset, newer = cursor.poll()
    assert not reset and [e.id for e in newer] == [4, 5]
    _record(journal)
    assert cursor.poll()[0] is False


def test_a_since_above_the_newest_id_is_a_reset_first() -> None:
    journal = Journal(100, 10**6)
    _record(journal)
    reset, newer = events.Cursor(journal, 50).poll()  # e.g. the page reconnects after a restart
    assert reset and [e.id for e in newer] == [1]


def test_streams_are_capped_per_world_and_all_closed_at_once() -> None:
    async def scenario() -> None:
        streams = events.Streams(limit=2)
        world_a, world_b = object(), object()
        first, second = streams.open(world_a), streams.open(world_a)
        with pytest.raises(events.StreamLimit, match="at most 2"):
            streams.open(world_a)
        other = streams.open(world_b)  # another tenant has its own allowance
        streams.release(world_a, first)
        third = streams.open(world_a)
        assert streams.count(world_a) == 2 and streams.count(world_b) == 1
        streams.close_all()
        assert all(stop.is_set() for stop in (second, third, other)) and not first.is_set()
        assert streams.open(world_b).is_set()  # a stream opened while shutting down ends at once

    asyncio.run(scenario())


def test_a_path_with_a_lone_surrogate_is_escaped_not_fatal() -> None:
    parsed = _parse(events.frame("requests", {"entries": [{"path": "/v1/\udc80x"}]}, 1))
    assert parsed["data"] == {"entries": [{"path": "/v1/\udc80x"}]}
