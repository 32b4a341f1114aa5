"""The pure rules of Custom Trades' customer list: search terms, prefixes, phones, views, pages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.apis.customtrades import search
from mock_server.apis.customtrades.search import COMMERCIAL, DELETED, VIP


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_an_empty_term_is_no_search(raw: str | None) -> None:
    assert search.parse_search(raw) is None


def test_a_term_is_trimmed_case_folded_and_split_into_words() -> None:
    query = search.parse_search("  John O'Brien-SMITH  ")
    assert query is not None
    assert query.text == "john o'brien-smith"
    assert query.words == ("john", "o", "brien", "smith")
    assert query.phone_prefix is None


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("206-555", "206555"),
        ("(206) 555-12", "20655512"),
        ("206.555.1234", "2065551234"),
        ("2", "2"),
        ("20655512345", None),  # eleven digits: no ten-digit phone starts with it
        ("--", None),
        ("206x", None),
        ("+1 206", None),
    ],
)
def test_phone_terms(raw: str, digits: str | None) -> None:
    query = search.parse_search(raw)
    assert query is not None
    assert query.phone_prefix == digits


@pytest.mark.parametrize(
    "term",
    ["jo", "JOHN", "john d", "doe john", "o'brien", "brien", "john.doe", "JOHN.DOE7@EXAMPLE.COM", "206-555",
     "2065551", "(206) 555-1234", "123E4567-E89B-12D3-A456-426614174000"],
)
def test_the_rule_finds_john(term: str) -> None:
    query = search.parse_search(term)
    assert query is not None
    assert search.matches(
        query, first_name="John", last_name="O'Brien Doe", email="john.doe7@example.com", phone="206-555-1234",
        uuid="123e4567-e89b-12d3-a456-426614174000",
    )


@pytest.mark.parametrize(
    "term", ["ohn", "john x", "doe7", "example.com", "555-1234", "123e4567", "john@x", "20655512345"]
)
def test_the_rule_does_not_find_john(term: str) -> None:
    query = search.parse_search(term)
    assert query is not None
    assert not search.matches(
        query, first_name="John", last_name="O'Brien Doe", email="john.doe7@example.com", phone="206-555-1234",
        uuid="123e4567-e89b-12d3-a456-426614174000",
    )


def test_missing_email_and_phone_never_match() -> None:
    query = search.parse_search("206")
    assert query is not None
    assert not search.matches(query, first_name="A", last_name="B", email=None, phone=None, uuid="x")


def test_case_folding_is_unicode() -> None:
    query = search.parse_search("STRASS")
    assert query is not None
    assert search.matches(query, first_name="Straße", last_name="X", email=None, phone=None, uuid="u")


@given(st.text(max_size=6), st.text(min_size=1, max_size=4))
def test_prefix_end_bounds_exactly_the_strings_with_the_prefix(text: str, prefix: str) -> None:
    end = search.prefix_end(prefix)
    inside = prefix <= text and (end is None or text < end)
    assert inside == text.startswith(prefix)


def test_prefix_end_of_the_largest_characters_is_unbounded() -> None:
    assert search.prefix_end(chr(0x10FFFF) * 2) is None
    assert search.prefix_end("a" + chr(0x10FFFF)) == "b"


@given(st.integers(0, 9_999_999_999), st.text("0123456789", min_size=1, max_size=10))
def test_phone_range_is_the_numbers_with_those_leading_digits(number: int, prefix: str) -> None:
    low, high = search.phone_range(prefix)
    assert (low <= number < high) == f"{number:010d}".startswith(prefix)


@given(st.integers(0, 9_999_999_999))
def test_phone_digits_and_format_round_trip(number: int) -> None:
    assert search.phone_digits(search.format_phone(number)) == number


def test_a_phone_must_have_ten_digits() -> None:
    with pytest.raises(ValueError, match="10 digits"):
        search.phone_digits("206-555-123")


@given(st.integers(0, 500), st.integers(1, 100))
def test_pages_partition_the_list(total: int, limit: int) -> None:
    pages = search.total_pages(total, limit)
    covered: list[int] = []
    for page in range(1, pages + 1):
        start, stop = search.page_bounds(total, page, limit)
        assert 0 < stop - start <= limit
        covered.extend(range(start, stop))
    assert covered == list(range(total))
    assert search.page_bounds(total, pages + 1, limit) == (total, total)


@pytest.mark.parametrize(
    ("flags", "view", "listed"),
    [
        (0, ("all", False), True),
        (DELETED, ("all", False), False),
        (DELETED, ("all", True), True),
        (COMMERCIAL, ("residential", False), False),
        (COMMERCIAL, ("commercial", False), True),
        (COMMERCIAL | DELETED, ("commercial", False), False),
        (COMMERCIAL | DELETED, ("commercial", True), True),
        (VIP, ("vip", False), True),
        (COMMERCIAL, ("vip", True), False),
        (VIP | COMMERCIAL, ("residential", False), False),
    ],
)
def test_views(flags: int, view: tuple[str, bool], listed: bool) -> None:
    assert search.in_view(flags, *view) is listed
    assert search.view_mask(*view)[flags] == int(listed)


def test_an_unknown_filter_is_refused() -> None:
    with pytest.raises(ValueError, match="expected one of all, residential, commercial, vip"):
        search.in_view(0, "gold", False)


def test_every_view_is_listed_once() -> None:
    assert sorted(search.views()) == sorted({(f, d) for f in search.FILTERS for d in (False, True)})
