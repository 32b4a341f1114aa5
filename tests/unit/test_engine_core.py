"""Pure engine pieces: clock, journal bounds and redaction, faults, routing, envelopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server import envelopes
from mock_server.clock import Clock, isoformat
from mock_server.errors import FieldError, NotFound, ValidationFailed
from mock_server.faults import FaultRegistry
from mock_server.journal import Journal, redact
from mock_server.spec import Router, build_spec, load_document

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fixed_clock() -> Clock:
    return Clock(source=lambda: T0)


def test_clock_advance_set_freeze_and_timers() -> None:
    clock = fixed_clock()
    fired: list[str] = []
    clock.call_later(10, lambda: fired.append("10s"))
    clock.call_later(5, lambda: fired.append("5s"))
    clock.advance(9)
    assert fired == ["5s"]
    clock.advance(1)
    assert fired == ["5s", "10s"] and clock.pending() == 0
    clock.set(T0 + timedelta(days=1))
    assert clock.now() == T0 + timedelta(days=1)
    clock.freeze(True)
    assert clock.frozen and clock.now() == T0 + timedelta(days=1)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 1, 1))  # naive
    clock.reset()
    assert clock.now() == T0 and not clock.frozen


def test_cancelled_timer_never_runs() -> None:
    clock = fixed_clock()
    fired: list[int] = []
    timer = clock.call_later(1, lambda: fired.append(1))
    timer.cancel()
    clock.advance(2)
    assert fired == []


def test_isoformat_is_utc_with_z() -> None:
    assert isoformat(T0) == "2026-01-01T00:00:00.000Z"


@given(st.lists(st.integers(min_value=1, max_value=500), max_size=60), st.integers(1, 10), st.integers(100, 3000))
def test_journal_never_exceeds_its_bounds(sizes: list[int], max_entries: int, max_bytes: int) -> None:
    journal = Journal(max_entries, max_bytes)
    for size in sizes:
        journal.record(
            size=size,
            time="t",
            api="a",
            operation_id=None,
            method="GET",
            path="/",
            status=200,
            request={},
            response={},
            violations=[],
            source="handler",
            duration_ms=0.0,
        )
        assert len(journal) <= max_entries
        assert journal.bytes <= max_bytes or len(journal) == 0
    assert journal.dropped + len(journal) == len(sizes)


def test_redact_hides_secret_fields_at_any_depth() -> None:
    body = {"email": "a@b.c", "password": "p", "nested": [{"client_secret": "s", "api_key": "k", "x": 1}]}
    assert redact(body) == {
        "email": "a@b.c",
        "password": "***",
        "nested": [{"client_secret": "***", "api_key": "***", "x": 1}],
    }


def test_fault_matching_probability_and_times() -> None:
    faults = FaultRegistry(seed=1)
    faults.add(api="loke", operation_id="getCustomer", match={"/a/0": 1}, status=500, times=2)
    assert faults.pick("loke", "getCustomer", {"a": [2]}, {}) is None
    assert faults.pick("loke", "listCustomers", {"a": [1]}, {}) is None
    assert faults.pick("loke", "getCustomer", {"a": [1]}, {}) is not None
    assert faults.pick("loke", "getCustomer", None, {"a": "1"}) is None  # the query's "1" has no element 0
    assert faults.pick("loke", "getCustomer", {"a": [1]}, {}) is not None
    assert faults.list() == []  # used up
    faults.add(api="loke", probability=0.5, status=503)
    hits = sum(faults.pick("loke", None, None, {}) is not None for _ in range(400))
    assert 140 < hits < 260


def test_router_prefers_literal_segments() -> None:
    spec = build_spec("capillary", load_document("capillary"))
    router = Router(spec.operations)
    lookup = router.match("/v2/customers/lookup/customerDetails")
    assert lookup is not None and lookup[0]["GET"].operation_id == "lookupCustomer"
    update = router.match("/v2/customers/123")
    assert update is not None and update[1] == {"userId": "123"}
    assert router.match("/v2/customers/123/extra") is None


@pytest.mark.parametrize("name", ["letstrade", "customtrades", "capillary", "loke", "problem", "rfc6749"])
def test_every_envelope_names_the_field(name: str) -> None:
    error = ValidationFailed("The request body is invalid", [FieldError("basket.total", "expected a decimal", 3217)])
    rendered = str(envelopes.ENVELOPES[name](error))
    assert "basket.total" in rendered and "expected a decimal" in rendered


def test_capillary_envelope_carries_the_field_code() -> None:
    error = ValidationFailed("bad", [FieldError("profiles[0].source", "not one of", 3217)])
    assert envelopes.capillary(error) == {
        "errors": [{"status": False, "code": 3217, "message": "profiles[0].source: not one of"}]
    }
    assert envelopes.loke(NotFound("Customer not found")) == {"message": "Customer not found", "type": "not_found"}
