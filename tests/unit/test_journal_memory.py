"""What the journal keeps costs little to hold (issue 18): an exchange the hot path records is read
back exactly as recorded, leaves nothing for the cyclic collector to walk (a full journal made its
pauses 100-300 ms), and a JSON answer it keeps is held in a buffer of its own size (orjson hands
back one 10-25 times larger)."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from mock_server.dispatcher import dump_json
from mock_server.journal import Journal, JournalBudget

MOMENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REQUEST_HEADERS = CIMultiDictProxy(
    CIMultiDict([("Host", "127.0.0.1:8080"), ("Authorization", "Bearer ctc_live_secret"), ("Accept", "*/*"),
                 ("Accept", "application/json"), ("Content-Type", "application/json")])
)


def _exchange(journal: Journal, *, request_headers: CIMultiDictProxy[str] = REQUEST_HEADERS,
              response_headers: dict[str, str] | None = None, violations: list[dict[str, str]] | None = None) -> int:
    return journal.exchange(
        MOMENT, "customtrades", "createCustomer", "POST", "/v1/customers", 201, request_headers,
        "page=2&q=ada", b'{"first_name": "Ada", "api_key": "k"}',
        response_headers if response_headers is not None else {"Content-Type": "application/json", "X-Trace": "7"},
        b'{"success": true}', violations or [], "handler", 1.25, 640,
    )


def test_an_exchange_reads_back_as_recorded_with_secrets_redacted() -> None:
    journal = Journal(10, 10**6)
    number = _exchange(journal)
    [entry] = journal.entries()
    assert entry.id == number == 1
    shown = entry.as_dict()
    assert shown == {
        "id": 1, "time": "2026-03-02T09:00:00.000Z", "api": "customtrades", "operation_id": "createCustomer",
        "method": "POST", "path": "/v1/customers", "status": 201,
        "request": {
            # duplicate names keep the last value, as reading the request's own headers did
            "headers": {"Host": "127.0.0.1:8080", "Authorization": "***", "Accept": "application/json",
                        "Content-Type": "application/json"},
            "query": {"page": "2", "q": "ada"},
            "body": {"first_name": "Ada", "api_key": "***"},
        },
        "response": {"headers": {"Content-Type": "application/json", "X-Trace": "7"}, "body": {"success": True}},
        "violations": [], "source": "handler", "duration_ms": 1.25,
    }
    assert list(entry.request["headers"].getall("Accept")) == ["*/*", "application/json"]


@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=12)), max_size=6))
def test_any_header_text_reads_back_unchanged(pairs: list[tuple[str, str]]) -> None:
    """Headers are kept as name and value lines; a newline in either (never from aiohttp's parser)
    keeps them as pairs instead, and nothing is lost either way."""
    journal = Journal(10, 10**6)
    _exchange(journal, request_headers=CIMultiDictProxy(CIMultiDict(pairs)), response_headers=dict(pairs))
    [entry] = journal.entries()
    assert list(entry.request["headers"].items()) == pairs
    assert entry.response["headers"] == dict(pairs)


def test_violations_are_kept() -> None:
    journal = Journal(10, 10**6)
    _exchange(journal, violations=[{"kind": "response_schema", "message": "x"}])
    [entry] = journal.entries()
    assert entry.as_dict()["violations"] == [{"kind": "response_schema", "message": "x"}]


def test_recorded_exchanges_leave_nothing_for_the_collector_to_walk() -> None:
    journal = Journal(5000, 10**9, JournalBudget(10**9))  # the budget's marks are numbers only
    gc.collect()
    before = len(gc.get_objects())
    for _ in range(2000):
        _exchange(journal)
    gc.collect(0)  # one pass of the youngest generation: what the server does all the time
    assert len(journal) == 2000
    assert len(gc.get_objects()) - before < 50  # was 6 tracked objects per entry, held for its life


def test_a_json_answer_is_held_in_a_buffer_of_its_own_size() -> None:
    document = {"success": True, "data": {f"field_{i}": "value" * 3 for i in range(12)}}
    tracemalloc.start()
    try:
        kept = [dump_json(document) for _ in range(200)]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept[0] == b'{"success":true,"data":{' + b",".join(
        f'"field_{i}":"valuevaluevalue"'.encode() for i in range(12)
    ) + b"}}"
    assert held < 200 * (len(kept[0]) + 200)  # orjson's own buffer: 4 KiB for this one
