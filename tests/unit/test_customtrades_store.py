"""The Custom Trades store: indexes and views must always answer exactly what a plain scan of the
records answers (`search.matches` + `search.in_view`, newest first), whatever the history."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mock_server.apis.base import seeded_rng
from mock_server.apis.customtrades import search, seeding
from mock_server.apis.customtrades.store import (
    Company,
    CustomerTable,
    CustomTradesStore,
    SortedPairs,
    UsageMeter,
    Views,
    iso_ms,
    to_ms,
    uuid_from_bits,
)
from mock_server.clock import isoformat

NAMES = ["Ann", "anna", "Bob", "Bo", "Ölaf", "O'Brien", "Mary Jane", "Straße", "Jo-Ann", "ann"]
EMAILS = ["ann@x.io", "Ann.B@x.io", "bob@y.com", "bo@y.com", "ANNA@z.org", "ann@x.io"]
PHONES = ["206-555-1234", "206-555-9999", "425-000-0000", "000-000-0001", "206-555-1234"]
TERMS = [
    "a", "an", "ann", "ANN", "anna", "bo", "bob", "o", "o'brien", "brien", "mary j", "jane mary", "strass",
    "jo-ann", "ann@", "ann@x.io", "ANNA@Z", "206", "206-555", "2065551234", "(425) 000", "000", "4", "zz",
]
DEFAULTS: dict[str, Any] = {
    "company_name": None, "email": None, "phone": None, "customer_type": "Residential", "is_vip": False,
    **{f"{kind}_{part}": None for kind in ("physical", "billing") for part in ("address1", "address2", "city",
                                                                                "state", "zip")},
    "primary_service_location_uuid": None, "notes": None, "internal_flags": None, "on_my_way_notify_via": None,
}

optional_text = st.none() | st.sampled_from(["x", "Main St", "WA", "98101"])
attributes = st.fixed_dictionaries(
    {},
    optional={
        "email": st.none() | st.sampled_from(EMAILS),
        "phone": st.none() | st.sampled_from(PHONES),
        "customer_type": st.sampled_from(["Residential", "Commercial"]),
        "is_vip": st.booleans(),
        "company_name": st.none() | st.sampled_from(["Acme", "Zed Co"]),
        "notes": optional_text,
        "internal_flags": st.none() | st.just({"k": 1}),
        "on_my_way_notify_via": st.sampled_from([None, "email", "sms", "both"]),
        "physical_city": optional_text,
        "billing_address1": optional_text,
        "billing_zip": optional_text,
        "primary_service_location_uuid": st.none() | st.just("123e4567-e89b-12d3-a456-426614174000"),
    },
)
names = st.sampled_from(NAMES)


class TableMachine(RuleBasedStateMachine):
    """Small blocks (3 rows) so that counts, k-th member and pages cross block boundaries."""

    def __init__(self) -> None:
        super().__init__()
        self.table = CustomerTable(block=3)
        self.model: list[dict[str, Any]] = []
        self.now = to_ms(datetime(2024, 1, 1, tzinfo=UTC))
        self.bits = seeded_rng(0, "test-uuids").getrandbits
        self.history: set[str] = set()  # every searchable value ever stored: stale index entries show

    def _remember(self, values: dict[str, Any]) -> None:
        for name in ("first_name", "last_name", "email", "phone", "uuid"):
            if values.get(name) is not None:
                self.history.add(values[name])

    @initialize(count=st.integers(0, 25), seed=st.integers(0, 3))
    def seed(self, count: int, seed: int) -> None:
        self.table.load(seeding.generate(seed, count, POOLS))
        self.model = [self.table.record(row) for row in range(count)]
        for record in self.model[:5]:
            self._remember(record)

    def _tick(self) -> int:
        self.now += 1000
        return self.now

    @rule(first=names, last=names, values=attributes)
    def create(self, first: str, last: str, values: dict[str, Any]) -> None:
        uuid = uuid_from_bits(self.bits(128))
        now = self._tick()
        row = self.table.create(uuid, {"first_name": first, "last_name": last, **values}, now)
        self._remember({"first_name": first, "last_name": last, "uuid": uuid, **values})
        assert row == len(self.model)
        self.model.append(
            {"uuid": uuid, "first_name": first, "last_name": last, **DEFAULTS, **values,
             "created_at": iso_ms(now), "updated_at": iso_ms(now), "deleted_at": None}
        )

    @precondition(lambda self: self.model)
    @rule(data=st.data(), changes=attributes, first=st.none() | names, last=st.none() | names)
    def update(self, data: st.DataObject, changes: dict[str, Any], first: str | None, last: str | None) -> None:
        row = data.draw(st.integers(0, len(self.model) - 1))
        if first is not None:
            changes["first_name"] = first
        if last is not None:
            changes["last_name"] = last
        now = self._tick()
        self.table.update(row, changes, now)
        self._remember(changes)
        self.model[row].update(changes, updated_at=iso_ms(now))

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        row = data.draw(st.integers(0, len(self.model) - 1))
        record = self.model[row]
        found = self.table.find(record["uuid"].upper())
        assert (found is None) == (record["deleted_at"] is not None)
        if found is not None:
            now = self._tick()
            self.table.soft_delete(found, now)
            record.update(deleted_at=iso_ms(now), updated_at=iso_ms(now))

    @rule(
        filter_name=st.sampled_from(search.FILTERS),
        include_deleted=st.booleans(),
        term=st.none() | st.sampled_from([*TERMS, "<a uuid>"]) | st.text(max_size=3),
        page=st.integers(1, 6),
        limit=st.integers(1, 7),
        data=st.data(),
    )
    def list_page(
        self, filter_name: str, include_deleted: bool, term: str | None, page: int, limit: int, data: st.DataObject
    ) -> None:
        if term == "<a uuid>" and self.model:
            term = data.draw(st.sampled_from([r["uuid"] for r in self.model])).upper()
        query = search.parse_search(term)
        expected = [
            row
            for row in reversed(range(len(self.model)))
            if search.in_view(self._flags(self.model[row]), filter_name, include_deleted)
            and (query is None or search.matches(query, **self._searchable(self.model[row])))
        ]
        rows, total = self.table.page(filter_name, include_deleted, query, page, limit)
        start = (page - 1) * limit
        assert total == len(expected)
        assert rows == expected[start : start + limit]

    @invariant()
    def records_and_counts_agree(self) -> None:
        assert len(self.table) == len(self.model)
        for row, record in enumerate(self.model):
            assert self.table.record(row) == record
        for filter_name, deleted in search.views():
            view = self.table.views.view(filter_name, deleted)
            assert self.table.views.total(view) == sum(
                search.in_view(self._flags(r), filter_name, deleted) for r in self.model
            )

    @invariant()
    def every_value_ever_stored_finds_exactly_its_customers(self) -> None:
        for term in sorted(self.history):
            query = search.parse_search(term)
            expected = [
                row for row in reversed(range(len(self.model)))
                if query is None or search.matches(query, **self._searchable(self.model[row]))
            ]
            assert self.table.page("all", True, query, 1, 1000) == (expected, len(expected)), term

    @staticmethod
    def _flags(record: dict[str, Any]) -> int:
        return (
            (search.COMMERCIAL if record["customer_type"] == "Commercial" else 0)
            | (search.VIP if record["is_vip"] else 0)
            | (search.DELETED if record["deleted_at"] else 0)
        )

    @staticmethod
    def _searchable(record: dict[str, Any]) -> dict[str, Any]:
        return {k: record[k] for k in ("first_name", "last_name", "email", "phone", "uuid")}


POOLS = seeding.Pools(0, size=40)
TableMachine.TestCase.settings = settings(
    TableMachine.TestCase.settings,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestTableMachine = TableMachine.TestCase


# -- the building blocks ------------------------------------------------------------------------
def test_views_extend_finishes_a_partly_filled_block() -> None:
    views = Views(block=4)
    for flags in (0, search.VIP):
        views.append(flags)
    views.extend(bytes([search.VIP, 0, search.DELETED, search.VIP, 0]))
    vip = views.view("vip", False)
    everyone = views.view("all", True)
    assert views.total(vip) == 3
    assert views.total(views.view("all", False)) == 6
    assert [views.select(vip, k) for k in range(3)] == [1, 2, 5]
    assert views.newest_first(everyone, 0, 7) == [6, 5, 4, 3, 2, 1, 0]
    assert views.newest_first(vip, 1, 3) == [2, 1]


def test_sorted_pairs_remove_the_right_row_among_equal_keys() -> None:
    pairs: SortedPairs[str] = SortedPairs([], array("i"))
    for row, key in enumerate(["b", "a", "b", "c", "b"]):
        pairs.add(key, row)
    pairs.remove("b", 2)
    assert list(pairs.keys) == ["a", "b", "b", "c"]
    assert sorted(pairs.between("b", "c")) == [0, 4]
    assert list(pairs.between("a", None)) == [1, 0, 4, 3]


def test_a_renamed_customer_leaves_no_stale_words() -> None:
    table = CustomerTable()
    table.create("00000000-0000-4000-8000-000000000001", {"first_name": "Zelda", "last_name": "Quux"}, 0)
    table.update(0, {"first_name": "Ann"}, 1)
    assert "zelda" not in table.names.postings
    assert "zelda" not in table.names.sorted_words
    assert table.page("all", False, search.parse_search("zel"), 1, 10) == ([], 0)
    assert table.page("all", False, search.parse_search("ann quux"), 1, 10) == ([0], 1)


def test_bulk_loading_is_for_an_empty_table() -> None:
    table = CustomerTable()
    table.create("00000000-0000-4000-8000-000000000001", {"first_name": "A", "last_name": "B"}, 0)
    with pytest.raises(ValueError, match="empty table"):
        table.load(seeding.generate(0, 3, POOLS))


def test_timestamps_round_trip_at_millisecond_precision() -> None:
    moment = datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    assert iso_ms(to_ms(moment)) == "2024-01-15T10:30:00.123Z"
    assert iso_ms(to_ms(datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC))) == "1969-12-31T23:59:59.000Z"


def test_generated_uuids_are_version_4() -> None:
    import uuid

    for bits in (0, (1 << 128) - 1, 0x123456789ABCDEF0123456789ABCDEF):
        text = uuid_from_bits(bits)
        assert uuid.UUID(text).version == 4
        assert str(uuid.UUID(int=bits, version=4)) == text


# -- usage and keys -----------------------------------------------------------------------------
def test_usage_counts_per_company_and_month_and_stops_at_the_quota() -> None:
    meter = UsageMeter()
    january = datetime(2024, 1, 31, 23, 59, tzinfo=UTC)
    assert [meter.admit("c1", january, 2) for _ in range(3)] == [True, True, False]
    assert meter.headers("c1", january, 2) == {
        "X-Usage-Count": "2", "X-Usage-Limit": "2", "X-Usage-Resets": "2024-02-01T00:00:00.000Z"
    }
    assert meter.admit("c2", january, 2)
    february = datetime(2024, 2, 1, tzinfo=UTC)
    assert meter.headers("c1", february, 2)["X-Usage-Count"] == "0"
    assert meter.admit("c1", february, 2)


def test_usage_resets_on_the_first_of_next_year_in_december_and_zero_is_unlimited() -> None:
    meter = UsageMeter()
    december = datetime(2024, 12, 15, tzinfo=UTC)
    assert all(meter.admit("c", december, 0) for _ in range(100))
    assert meter.headers("c", december, 0) == {
        "X-Usage-Count": "100", "X-Usage-Limit": "0", "X-Usage-Resets": "2025-01-01T00:00:00.000Z"
    }


def test_keys_find_their_company_only() -> None:
    store = CustomTradesStore(uuid_rng=seeded_rng(0, "t"))
    store.add_company(Company("c1", "One"), "ctc_live_one")
    store.add_company(Company("c2", "Two"), "ctc_live_two")
    assert store.company_for_key("ctc_live_one") == Company("c1", "One")
    assert store.company_for_key("ctc_live_two") == Company("c2", "Two")
    assert store.company_for_key("ctc_live_three") is None
    assert store.company_for_key("") is None


def test_new_uuids_are_deterministic_and_unique() -> None:
    def uuids(seed: int) -> list[str]:
        store = CustomTradesStore(uuid_rng=seeded_rng(seed, "uuids"))
        store.add_company(Company("c1", "One"), "k")
        return [store.new_uuid() for _ in range(50)]

    assert uuids(1) == uuids(1)
    assert uuids(1) != uuids(2)
    assert len(set(uuids(1))) == 50


@given(st.integers(min_value=-62135596800000, max_value=253402300799999))
def test_iso_ms_is_the_clock_s_format_of_that_moment(ms: int) -> None:
    # iso_ms formats each second once (cached); the text must be the clock's, to the millisecond
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    assert iso_ms(ms) == isoformat(moment)
    assert iso_ms(ms) == isoformat(moment)  # the second time from the cache, the same
