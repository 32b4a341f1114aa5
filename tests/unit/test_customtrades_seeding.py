"""`--seed-customers`: realistic, valid, deterministic under the seed, and cheap per customer."""

from __future__ import annotations

from collections import Counter

import pytest

from mock_server.apis.customtrades import search, seeding
from mock_server.apis.customtrades.store import CustomerTable
from mock_server.schema import CompiledSchema, dereference
from mock_server.spec import load_document

COUNT = 3000


@pytest.fixture(scope="module")
def pools() -> seeding.Pools:
    return seeding.Pools(5)


@pytest.fixture(scope="module")
def table(pools: seeding.Pools) -> CustomerTable:
    table = CustomerTable()
    table.load(seeding.generate(5, COUNT, pools))
    return table


def _records(table: CustomerTable) -> list[dict[str, object]]:
    return [table.record(row) for row in range(len(table))]


def test_the_same_seed_gives_the_same_customers(table: CustomerTable) -> None:
    again = CustomerTable()
    again.load(seeding.generate(5, COUNT))  # fresh pools: Faker is seeded too
    assert _records(again) == _records(table)


def test_another_seed_gives_other_customers(table: CustomerTable) -> None:
    other = CustomerTable()
    other.load(seeding.generate(6, 50))
    assert [r["uuid"] for r in _records(other)] != [r["uuid"] for r in _records(table)[:50]]
    assert [r["email"] for r in _records(other)] != [r["email"] for r in _records(table)[:50]]


def test_every_seeded_customer_is_a_valid_customer_object(table: CustomerTable) -> None:
    document = load_document("customtrades")
    schema = CompiledSchema(dereference(document["components"]["schemas"]["Customer"], document))
    for record in _records(table):
        assert schema.errors(record) == [], record


def test_seeded_customers_look_like_a_trades_company_book(table: CustomerTable) -> None:
    records = _records(table)
    types = Counter(r["customer_type"] for r in records)
    assert 0.20 < types["Commercial"] / COUNT < 0.30
    assert all((r["company_name"] is not None) == (r["customer_type"] == "Commercial") for r in records)
    assert 0.05 < sum(bool(r["is_vip"]) for r in records) / COUNT < 0.11
    deleted = [r for r in records if r["deleted_at"] is not None]
    assert 0.01 < len(deleted) / COUNT < 0.03
    assert all(r["deleted_at"] == r["updated_at"] for r in deleted)
    emails = [r["email"] for r in records if r["email"] is not None]
    assert len(set(emails)) == len(emails), "seeded e-mails are unique, so a search by e-mail finds one customer"
    assert 0.85 < len(emails) / COUNT < 0.95
    assert len({r["first_name"] for r in records}) > 100
    created = [str(r["created_at"]) for r in records]
    assert created == sorted(created), "stored oldest first, so newest first is reverse creation order"
    assert all(str(r["updated_at"]) >= str(r["created_at"]) for r in records)


def test_pooled_values_are_shared_not_copied(table: CustomerTable) -> None:
    # the point of pools: a million customers hold references to a few thousand strings
    assert len({id(name) for name in table.first_name}) <= 1000
    assert len({id(address) for address in table.physical if address is not None}) <= 20_000


def test_the_indexes_of_a_loaded_table_find_seeded_customers(table: CustomerTable) -> None:
    records = _records(table)
    target = next(r for r in records[1000:] if r["email"] and r["phone"] and not r["deleted_at"])
    for term in (str(target["email"]).upper(), str(target["uuid"]), f"{target['first_name']} {target['last_name']}"):
        rows, _ = table.page("all", False, search.parse_search(term), 1, 100)
        assert records.index(target) in rows, term
    rows, total = table.page("all", True, search.parse_search(str(target["phone"])), 1, 100)
    assert records.index(target) in rows
    assert total == sum(r["phone"] == target["phone"] for r in records)


def test_zero_customers() -> None:
    table = CustomerTable()
    table.load(seeding.generate(1, 0))
    assert len(table) == 0
    assert table.page("all", True, None, 1, 50) == ([], 0)
