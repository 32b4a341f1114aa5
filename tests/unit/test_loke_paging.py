"""LOKE keyset paging and ULIDs: pages never skip or repeat an item that existed when the export
started, whatever is inserted between pages; cursors are bound to their listing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.apis.loke import ids
from mock_server.apis.loke.paging import (
    CursorError,
    SortedIndex,
    decode_cursor,
    encode_cursor,
    next_page_url,
)

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _export(index: SortedIndex[int], limit: int, between: list[list[int]]) -> list[str]:
    """Page through `index`, inserting `between[n]` keys after page n."""
    seen: list[str] = []
    after: int | None = None
    page_no = 0
    while True:
        page, after = index.page(after, limit)
        seen.extend(page)
        for key in between[page_no] if page_no < len(between) else []:
            if key not in index:
                index.add(key, f"new-{key}")
        page_no += 1
        if after is None:
            return seen


@settings(max_examples=200)
@given(
    st.sets(st.integers(0, 10_000), max_size=300),
    st.integers(1, 50),
    st.lists(st.lists(st.integers(0, 10_000), max_size=20), max_size=30),
)
def test_inserting_between_pages_never_skips_or_repeats_an_original_item(
    original: set[int], limit: int, between: list[list[int]]
) -> None:
    index: SortedIndex[int] = SortedIndex()
    for key in original:
        index.add(key, f"old-{key}")
    seen = _export(index, limit, between)
    old = [item for item in seen if item.startswith("old-")]
    assert old == [f"old-{k}" for k in sorted(original)]  # all, once each, in order
    assert len(seen) == len(set(seen))


def test_last_page_has_no_next_key_even_when_it_is_full() -> None:
    index: SortedIndex[int] = SortedIndex()
    for key in range(2000):
        index.add(key, str(key))
    first, after = index.page(None, 1000)
    second, end = index.page(after, 1000)
    assert (len(first), len(second), end) == (1000, 1000, None)


def test_2500_items_are_three_pages() -> None:
    index: SortedIndex[int] = SortedIndex()
    for key in range(2500):
        index.add(key, str(key))
    sizes = []
    after: int | None = None
    while True:
        page, after = index.page(after, 1000)
        sizes.append(len(page))
        if after is None:
            break
    assert sizes == [1000, 1000, 500]


@given(st.sets(st.integers(0, 500), max_size=120), st.integers(1, 20), st.integers(2, 7))
def test_filtered_pages_return_exactly_the_matching_items(keys: set[int], limit: int, modulus: int) -> None:
    index: SortedIndex[int] = SortedIndex()
    for key in keys:
        index.add(key, str(key))
    seen: list[str] = []
    after: int | None = None
    while True:
        page, after = index.page_where(after, limit, lambda item: int(item) % modulus == 0)
        assert len(page) <= limit
        seen.extend(page)
        if after is None:
            break
    assert seen == [str(k) for k in sorted(keys) if k % modulus == 0]


def test_remove_and_readd_moves_an_item_to_its_new_key() -> None:
    index: SortedIndex[int] = SortedIndex()
    for key in (1, 2, 3):
        index.add(key, f"c{key}")
    index.remove(1)
    index.add(4, "c1")
    assert index.ids() == ["c2", "c3", "c1"]
    with pytest.raises(KeyError):
        index.add(4, "other")


@given(st.text(min_size=1, max_size=40), st.one_of(st.integers(0, 10**15), st.just("01HKVSREF0D859FXYN3Q0Z35KB")))
def test_cursor_round_trip(scope: str, key: int | str) -> None:
    token = encode_cursor(scope, key)
    assert token.isascii() and "=" not in token
    assert decode_cursor(token, scope, type(key)) == key


def test_cursor_of_another_listing_or_garbage_is_refused() -> None:
    token = encode_cursor("customers:org-a:created", "01HKVSREF0D859FXYN3Q0Z35KB")
    with pytest.raises(CursorError, match="another listing"):
        decode_cursor(token, "customers:org-b:created", str)
    with pytest.raises(CursorError, match="another listing"):
        decode_cursor(token, "customers:org-a:updated", str)
    for garbage in ("zzz", "%%%", encode_cursor("customers:org-a:created", 12)):
        with pytest.raises(CursorError):
            decode_cursor(garbage, "customers:org-a:created", str)


def test_next_page_url_keeps_filters_and_replaces_after() -> None:
    url = next_page_url(
        "http://127.0.0.1:8080/loke", ["organizations", "o 1", "customers"], {"sort": "updated", "after": "old"}, "CUR"
    )
    assert url == "http://127.0.0.1:8080/loke/organizations/o%201/customers?sort=updated&after=CUR"


@given(st.integers(0, (1 << 128) - 1))
def test_ulid_encoding_round_trips_and_keeps_order(value: int) -> None:
    text = ids.encode(value)
    assert len(text) == 26 and ids.decode(text) == value
    assert ids.encode(max(value - 1, 0)) <= text


@settings(max_examples=100)
@given(st.lists(st.integers(-10_000, 10_000), min_size=1, max_size=60))
def test_ulid_generator_is_monotonic_even_when_the_clock_goes_back(offsets_ms: list[int]) -> None:
    generator = ids.UlidGenerator(random.Random(1))
    made = [generator.new(T0 + timedelta(milliseconds=ms)) for ms in offsets_ms]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(ids.is_ulid(u) for u in made)


def test_ulid_carries_its_time_and_observed_ids_push_the_generator() -> None:
    generator = ids.UlidGenerator(random.Random(2))
    first = generator.new(T0)
    assert ids.timestamp_of(first) == T0
    future = ids.encode(((int(T0.timestamp() * 1000) + 10**6) << 80) | 5)
    generator.observe(future)
    assert generator.new(T0) > future
