"""LOKE state without HTTP: points, payments and events change the statistics as documented;
refusals change nothing; fixtures are checked completely before anything loads."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.apis.loke import events, fixtures, seed, views
from mock_server.apis.loke.store import LokeStore, OrgState
from mock_server.errors import Conflict, Forbidden, MockError, NotFound, ValidationFailed

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store() -> LokeStore:
    return seed.build(0)


def _org(store: LokeStore) -> OrgState:
    return store.orgs[store.installed[0].id]


def _new_customer(state: OrgState, **fields: Any) -> str:
    body = {"event": "customer.created", "customer": {"firstName": "Ada", "lastName": "Lovelace", **fields}}
    return str(events.apply(state, body, NOW).data["customer"]["id"])


def test_seed_is_deterministic_and_has_the_documented_organizations() -> None:
    a, b = seed.build(7), seed.build(7)
    assert [o.id for o in a.installed] == [o.id for o in b.installed]
    assert a.client_secret == b.client_secret and a.client_secret != seed.build(8).client_secret
    assert (len(a.installed), len(a.not_installed)) == (2, 1)
    first = a.orgs[a.installed[0].id]
    assert [views.customer(c) for c in first.customers.values()] == [
        views.customer(c) for c in b.orgs[b.installed[0].id].customers.values()
    ]


def test_organization_reach(store: LokeStore) -> None:
    assert store.reachable_org(store.installed[1].id).org.installed
    with pytest.raises(Forbidden):
        store.reachable_org(store.not_installed[0].id)
    with pytest.raises(NotFound):
        store.reachable_org("01ARZ3NDEKTSV4RRFFQ69G5FAV")


def test_points_award_deduct_reverse(store: LokeStore) -> None:
    state = _org(store)
    cid = _new_customer(state)
    state.adjust_points(cid, "r1", 300, "welcome", NOW)
    state.adjust_points(cid, "r2", -120, None, NOW + timedelta(minutes=1))
    stats = state.customer(cid).statistics
    assert (stats.points_balance, stats.total_points_earned, stats.total_points_redeemed) == (180, 300, 120)
    assert stats.last_points_redeemed_at == NOW + timedelta(minutes=1)
    with pytest.raises(Conflict) as duplicate:
        state.adjust_points(cid, "r1", 5, None, NOW)
    assert duplicate.value.kind == "duplicate_point_record"
    with pytest.raises(ValidationFailed) as too_much:
        state.adjust_points(cid, "r3", -181, None, NOW)
    assert too_much.value.kind == "insufficient_points"
    with pytest.raises(ValidationFailed):
        state.adjust_points(cid, "r4", 0, None, NOW)
    assert stats.points_balance == 180  # refusals changed nothing
    state.reverse_points(cid, "r1", NOW)  # the 300 were partly spent: the balance may go negative
    assert (stats.points_balance, stats.total_points_earned) == (-120, 0)
    with pytest.raises(NotFound):
        state.reverse_points(cid, "r1", NOW)
    state.adjust_points(cid, "r1", 10, None, NOW)  # the reference is free again


@settings(max_examples=60)
@given(st.lists(st.integers(-500, 500).filter(bool), max_size=25))
def test_points_balance_is_the_sum_of_accepted_adjustments(amounts: list[int]) -> None:
    store = seed.build(0)
    state = _org(store)
    cid = _new_customer(state)
    accepted = []
    for n, amount in enumerate(amounts):
        try:
            state.adjust_points(cid, f"ref-{n}", amount, None, NOW)
            accepted.append(amount)
        except ValidationFailed:
            assert sum(accepted) + amount < 0
    stats = state.customer(cid).statistics
    assert stats.points_balance == sum(accepted) >= 0
    assert stats.total_points_earned - stats.total_points_redeemed == stats.points_balance


def test_payment_amounts_are_derived_from_the_items() -> None:
    items = [
        {"name": "Flat White", "amount": 550, "quantity": 2,
         "options": [{"name": "Milk", "choices": [{"name": "Oat", "amount": 50}]}]},
        {"name": "Banana Bread", "amount": 450},
        {"name": "Loyalty reward", "amount": -100, "type": "discount"},
    ]
    amounts = events.payment_amounts(items, {})
    assert amounts == {
        "chargedAmount": 1550, "discountAmount": 100, "creditAmount": 0, "externalAmount": 0, "feeAmount": 0,
    }  # the public example: 1550 charged, 100 discount
    assert events.payment_amounts(items, {"chargedAmount": 99})["chargedAmount"] == 99
    with pytest.raises(ValidationFailed):
        events.payment_amounts([], {})


def test_payment_completed_then_refunded_moves_total_spend(store: LokeStore) -> None:
    state = _org(store)
    cid = _new_customer(state)
    items = [{"name": "Cake", "amount": 700, "quantity": 2}]
    body = {"event": "payment.completed", "payment": {"customer": {"id": cid}, "items": items}}
    outcome = events.apply(state, body, NOW)
    assert [e.event for e in outcome.emitted] == ["payment.completed", "customer.updated-statistics"]
    payment = outcome.data["payment"]
    assert payment["chargedAmount"] == 1400 and payment["completedAt"] == "2026-02-01T12:00:00.000Z"
    assert state.customer(cid).statistics.total_spend == 1400
    refunded = events.apply(state, {"event": "payment.refunded", "payment": {"id": payment["id"]}}, NOW)
    assert [e.event for e in refunded.emitted] == ["payment.refunded", "customer.updated-statistics"]
    assert refunded.emitted[1].payload["statistics"]["totalSpend"] == 0
    with pytest.raises(Conflict):
        events.apply(state, {"event": "payment.refunded", "payment": {"id": payment["id"]}}, NOW)


def test_order_lifecycle_and_completed_order_is_also_a_payment(store: LokeStore) -> None:
    state = _org(store)
    cid = _new_customer(state)
    created = events.apply(state, {"event": "order.created", "order": {"items": [{"name": "Pie", "amount": 800}]}}, NOW)
    order_id = created.data["order"]["id"]
    assert created.data["order"]["total"] == 800
    events.apply(state, {"event": "order.accepted", "order": {"id": order_id}}, NOW)
    done = events.apply(state, {"event": "order.completed", "order": {"id": order_id}, "customer": {"id": cid}}, NOW)
    assert [e.event for e in done.emitted] == ["order.completed", "payment.completed", "customer.updated-statistics"]
    assert done.emitted[0].payload["location"]["id"] in state.locations
    assert state.customer(cid).statistics.total_spend == 800
    with pytest.raises(Conflict):
        events.apply(state, {"event": "order.accepted", "order": {"id": order_id}}, NOW)


def test_customer_events_and_contact_uniqueness(store: LokeStore) -> None:
    state = _org(store)
    cid = _new_customer(state, email="ada@example.com", phoneNumber="+61400000001")
    with pytest.raises(Conflict):
        _new_customer(state, email="ADA@example.com")
    count = len(state.customers)
    change = {"id": cid, "email": None, "lastName": "King"}
    updated = events.apply(state, {"event": "customer.updated", "customer": change}, NOW)
    assert updated.data["customer"]["email"] is None and updated.data["customer"]["lastName"] == "King"
    _new_customer(state, email="ada@example.com")  # the address is free again
    assert len(state.customers) == count + 1
    with pytest.raises(NotFound):
        unknown = {"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "lastName": "X"}
        events.apply(state, {"event": "customer.updated", "customer": unknown}, NOW)
    body = {"event": "customer.updated-statistics", "customer": {"id": cid}, "statistics": {"pointsBalance": 42}}
    stats = events.apply(state, body, NOW)
    payload = stats.emitted[0].payload
    assert payload["statistics"]["pointsBalance"] == 42 and set(payload["customer"]) <= {
        "id", "email", "firstName", "lastName", "phoneNumber"}


def test_any_change_moves_a_customer_to_the_end_of_the_update_order(store: LokeStore) -> None:
    state = _org(store)
    first = state.by_updated.ids()[0]
    state.adjust_points(first, "x", 5, None, NOW)
    assert state.by_updated.ids()[-1] == first
    assert state.by_created.ids() == sorted(state.customers)  # creation order does not move


def test_fan_out_signs_each_subscription_with_its_own_secret(store: LokeStore) -> None:
    state = _org(store)
    state.upsert_subscription("a", "http://a.test/h", ["customer.created"], "secret-a", NOW)
    state.upsert_subscription("b", "http://b.test/h", ["customer.created", "payment.completed"], "secret-b", NOW)
    state.upsert_subscription("c", "http://c.test/h", ["payment.completed"], "secret-c", NOW)
    outcome = events.apply(state, {"event": "customer.created", "customer": {"firstName": "A", "lastName": "B"}}, NOW)
    summaries, deliveries = events.fan_out(store, state, outcome.emitted)
    assert [s.subscriptions for s in summaries] == [2]
    assert {d.webhook_ref for d in deliveries} == {"a", "b"}
    from mock_server.apis.loke.signing import verify

    for d in deliveries:
        assert verify(f"secret-{d.webhook_ref}", d.body, d.signature)
        assert b"secret" not in d.body


def test_upsert_by_ref_keeps_one_subscription(store: LokeStore) -> None:
    state = _org(store)
    one = state.upsert_subscription("crm", "http://a.test/h", ["customer.created"], "s1", NOW)
    two = state.upsert_subscription("crm", "http://b.test/h", ["customer.updated", "customer.updated"], "s2", NOW)
    assert one is two and len(state.subscriptions) == 1
    assert views.webhook(two) == {"events": ["customer.updated"], "id": one.id, "ref": "crm", "url": "http://b.test/h"}


# -- fixtures --------------------------------------------------------------------------------------
GOOD: dict[str, Any] = {
    "customers": [
        {"id": "01HZZZZZZZZZZZZZZZZZZZZZZ1", "firstName": "Fix", "lastName": "Ture", "email": "fix@example.com",
         "statistics": {"pointsBalance": 10, "lastSpentAt": "2025-01-01T00:00:00Z"}},
        {"firstName": "No", "lastName": "Id", "createdAt": "2025-02-01T00:00:00Z"},
    ],
    "lists": [{"name": "Fixture list", "members": ["01HZZZZZZZZZZZZZZZZZZZZZZ1"]}],
    "payments": [{"customer": {"id": "01HZZZZZZZZZZZZZZZZZZZZZZ1"}, "items": [{"name": "Tea", "amount": 400}]}],
}


def test_fixtures_load_with_cross_references(store: LokeStore) -> None:
    assert fixtures.check(store, GOOD) == []
    assert fixtures.load(store, GOOD, NOW) == 4
    state = _org(store)
    customer = state.customer("01HZZZZZZZZZZZZZZZZZZZZZZ1")
    assert customer.statistics.points_balance == 10
    assert customer.statistics.total_spend == 0  # fixtures are state as given
    fixture_list = next(cl for cl in state.lists.values() if cl.name == "Fixture list")
    assert list(fixture_list.members) == [customer.id]


def test_fixtures_report_every_problem_and_load_nothing(store: LokeStore) -> None:
    bad = copy.deepcopy(GOOD)
    bad["customers"].append({"firstName": "Dup", "lastName": "Mail", "email": "FIX@example.com"})
    bad["customers"].append({"lastName": "NoFirst", "phoneNumber": "0411"})
    bad["lists"][0]["members"].append("01HZZZZZZZZZZZZZZZZZZZZZZ9")
    bad["payments"].append({"customer": {"id": "01HZZZZZZZZZZZZZZZZZZZZZZ1"}, "locationId": "nowhere"})
    bad["payments"].append({"organization_id": "nope", "customer": {"id": "01HZZZZZZZZZZZZZZZZZZZZZZ1"}})
    problems = {p.field for p in fixtures.check(store, bad)}
    assert {
        "loke.customers[2].email",
        "loke.customers[3].firstName",
        "loke.customers[3].phoneNumber",
        "loke.lists[0].members[1]",
        "loke.payments[1].locationId",
        "loke.payments[1].items",
        "loke.payments[2].organization_id",
    } <= problems
    assert fixtures.check(store, {"shoppers": []})[0].field.startswith("loke")
    assert fixtures.check(store, "nope")


def test_events_need_their_data(store: LokeStore) -> None:
    state = _org(store)
    for body in (
        {"event": "customer.created", "customer": {"firstName": "A"}},
        {"event": "customer.created",
         "customer": {"id": "01HZZZZZZZZZZZZZZZZZZZZZZ1", "firstName": "A", "lastName": "B"}},
        {"event": "customer.updated", "customer": {"id": next(iter(state.customers))}},
        {"event": "customer.updated-statistics", "customer": {"id": next(iter(state.customers))}, "statistics": {}},
        {"event": "payment.completed", "payment": {"items": []}},
    ):
        before = len(state.customers), len(state.payments)
        with pytest.raises(MockError) as refused:
            events.apply(state, body, NOW)
        assert refused.value.status == 400 and refused.value.fields
        assert (len(state.customers), len(state.payments)) == before


def test_store_pickles_for_the_state_file_without_its_delivery_machinery(store: LokeStore) -> None:
    import pickle
    import threading

    state = _org(store)
    cid = _new_customer(state)
    state.upsert_subscription("crm", "http://a.test/h", ["customer.created"], "s", NOW)
    store.outbound = threading.Lock()  # stands for the Outbound: tasks and locks do not pickle
    copy_ = pickle.loads(pickle.dumps(store))
    assert copy_.outbound is None and store.outbound is not None
    again = copy_.orgs[state.id]
    assert views.customer(again.customer(cid)) == views.customer(state.customer(cid))
    assert again.subscription("crm").secret == "s"
    assert copy_.next_event_id() == store.next_event_id()
    assert again.counters.ulid(NOW) == state.counters.ulid(NOW)  # ids continue where they were
