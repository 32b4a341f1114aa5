"""`--journal-max-total-bytes`: every world's journal under one bound (`JournalBudget`), the oldest
entries of the whole process going first, whichever journal holds them; each journal's own bounds,
clears and resets give their bytes back; the budget's bookkeeping stays in proportion to what is kept."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.journal import Journal, JournalBudget

MOMENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _record(journal: Journal, order: int, size: int = 100) -> None:
    journal.record(size=size, time=MOMENT, api="customtrades", operation_id=None, method="GET", path=f"/{order}",
                   status=200, request={}, response={}, violations=[], source="handler", duration_ms=0.0)


def _kept(journal: Journal) -> list[int]:
    return [int(entry.path[1:]) for entry in journal.entries()]


def test_the_oldest_entries_of_any_journal_go_first() -> None:
    budget = JournalBudget(500)
    quiet, busy = Journal(100, 10**6, budget), Journal(100, 10**6, budget)
    _record(quiet, 1)
    _record(quiet, 2)
    for order in range(3, 9):
        _record(busy, order)
    assert _kept(quiet) == [] and _kept(busy) == [4, 5, 6, 7, 8]  # 1, 2 then 3 made room
    assert budget.used == 500 == quiet.bytes + busy.bytes and budget.dropped == 3
    quiet.clear()
    busy.reset()
    assert budget.used == 0 and budget.entries == 0


def test_a_journals_own_bound_gives_its_bytes_back() -> None:
    budget = JournalBudget(10**6)
    journal = Journal(3, 10**6, budget)
    for order in range(50):
        _record(journal, order)
    assert _kept(journal) == [47, 48, 49] and budget.used == 300 and budget.entries == 3


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "clear", "reset"]), st.integers(1, 400)), max_size=300),
       st.integers(0, 2000))
def test_kept_entries_are_the_newest_and_the_books_balance(steps: list[tuple[str, int]], limit: int) -> None:
    budget = JournalBudget(limit)
    journals = {name: Journal(7, 1500, budget) for name in "abc"}
    order = 0
    dropped_by_budget: set[int] = set()
    for action, size in steps:
        if action == "clear":
            journals["a"].clear()
            continue
        if action == "reset":
            journals["b"].reset()
            continue
        order += 1
        before = budget.dropped
        kept_before = {n for j in journals.values() for n in _kept(j)}
        _record(journals[action], order, size)
        kept_after = {n for j in journals.values() for n in _kept(j)}
        if budget.dropped > before:
            dropped_by_budget |= (kept_before | {order}) - kept_after
        kept = sorted(kept_after)
        assert budget.used == sum(j.bytes for j in journals.values()) <= limit
        assert budget.entries == len(kept)
        assert all(old < min(kept) for old in dropped_by_budget if kept) or not dropped_by_budget
        assert len(budget._order) <= 2 * budget.entries + JournalBudget.COMPACT_SLACK


def test_the_marks_are_compacted_when_journals_drop_entries_themselves() -> None:
    budget = JournalBudget(10**9)
    journal = Journal(10, 10**9, budget)
    for order in range(3 * JournalBudget.COMPACT_SLACK):
        _record(journal, order)
    assert len(budget._order) <= 2 * 10 + JournalBudget.COMPACT_SLACK


def test_a_closed_journal_leaves_the_budget() -> None:
    budget = JournalBudget(1000)
    gone, other = Journal(100, 10**6, budget), Journal(100, 10**6, budget)
    for order in range(5):
        _record(gone, order)
    gone.close()  # its tenant deleted
    assert budget.used == 0 and budget.entries == 0
    for order in range(5, 20):
        _record(other, order)
    assert _kept(other) == list(range(10, 20)) and budget.used == 1000  # stale marks skipped
