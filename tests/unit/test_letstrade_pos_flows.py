"""The Let'sTrade POS use cases on the store, without HTTP: codes and their expiry, refusals that
change nothing, exactly-once finalise, refunds, user resolution and the `letstrade` fixtures."""

from __future__ import annotations

import copy
import random
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from mock_server.apis.letstrade.customers import CustomerStore
from mock_server.apis.letstrade.identity import Identity
from mock_server.apis.letstrade_pos import codes, fixtures, flows
from mock_server.apis.letstrade_pos.store import PosStore
from mock_server.errors import Conflict, Gone, MockError, NotFound, ValidationFailed

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CODE_PATTERN = re.compile(r"^[PRE][A-Z0-9]{4,32}$")  # openapi/letstrade-pos.yaml, Code


def make_store(seed: int = 0) -> PosStore:
    identity = Identity(seed)
    customers = CustomerStore(identity.new_object_id, client_id=identity.client_id)
    default = customers.create(T0, name="Lerato", cell_number="27710000001", cell_country_code="+27")
    return PosStore(identity, customers, default.id, seed)


def basket(uuid: str = "b-1", price: str = "100.00", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "store_id": "S1",
        "terminal_id": "T1",
        "basket": {
            "uuid": uuid,
            "total": price,
            "outstanding": price,
            "product_list": [{"sku": "A", "pid": "pid-A", "quantity": "1", "price": price}],
        },
    }
    body.update(extra)
    return body


def finalise_body(uuid: str = "b-1", price: str = "100.00", **extra: Any) -> dict[str, Any]:
    body = basket(uuid, price, **extra)
    body["basket"]["outstanding_amount"] = body["basket"].pop("outstanding")
    return body


def snapshot(store: PosStore) -> Any:
    return copy.deepcopy((store.accounts, {k: vars(v) for k, v in store.codes.items()}, list(store.orders)))


# -- codes --------------------------------------------------------------------------------------------
def test_codes_match_the_spec_pattern_are_unique_and_deterministic() -> None:
    first = [codes.new_code(random.Random("s"), t, set()) for t in "PRE"]
    again = [codes.new_code(random.Random("s"), t, set()) for t in "PRE"]
    assert first == again
    assert all(CODE_PATTERN.match(c) for c in first)
    taken: set[str] = set()
    rng = random.Random(1)
    for _ in range(2000):
        taken.add(codes.new_code(rng, "P", taken))
    assert len(taken) == 2000
    with pytest.raises(ValueError, match="code type"):
        codes.new_code(rng, "X", set())


def test_code_is_valid_for_exactly_ten_minutes() -> None:
    store = make_store()
    code = flows.mint_code(store, T0, {"type": "E"})
    assert code.expires_at - code.minted_at == timedelta(minutes=10)
    assert flows.check_request_codes(store, T0 + timedelta(minutes=9, seconds=59), [code.code])
    with pytest.raises(Gone) as expired:
        flows.check_request_codes(store, T0 + timedelta(minutes=10), [code.code])
    assert "a new code must be generated" in expired.value.message
    assert code.status(T0 + timedelta(minutes=10)) == codes.EXPIRED


def test_code_refusals_come_most_telling_first_and_list_every_code() -> None:
    store = make_store()
    old = flows.mint_code(store, T0 - timedelta(minutes=11), {"type": "E"})
    used = flows.mint_code(store, T0, {"type": "P"})
    flows.finalise(store, T0, finalise_body("u1", code=[used.code]))
    with pytest.raises(NotFound) as unknown:
        flows.check_request_codes(store, T0, [old.code, "RNOSUCHCODE"])
    assert [f.field for f in unknown.value.fields] == ["code[1]", "code[0]"]
    with pytest.raises(Conflict):
        flows.check_request_codes(store, T0, [old.code, used.code])
    with pytest.raises(ValidationFailed, match="code list"):
        flows.check_request_codes(store, T0, [used.code, used.code])
    other = flows.mint_code(store, T0, {"type": "P"})
    with pytest.raises(ValidationFailed) as two:
        flows.check_request_codes(store, T0, [used.code, other.code])
    assert "one payment (P) code" in two.value.fields[0].message


# -- offerings and finalise -------------------------------------------------------------------------------
def test_offerings_never_change_balances_vouchers_or_points() -> None:
    store = make_store()
    p = flows.mint_code(store, T0, {"type": "P", "wallet_balance": "50.00"})
    r = flows.mint_code(
        store,
        T0,
        {
            "type": "R",
            "vouchers": [{"id": "V1", "title": "R10", "apply_to": "BASKET", "discount_type": "FIXED", "value": "10"}],
        },
    )
    e = flows.mint_code(store, T0, {"type": "E"})
    before = copy.deepcopy(store.accounts)
    content = flows.get_offerings(store, T0, basket(code=[p.code, r.code, e.code]))
    assert content["basket"]["outstanding_amount"] == "40.00"
    assert content["basket"]["wallet"] == {"amount": 50}
    assert store.accounts == before
    assert all(c.state == codes.ACTIVE for c in store.codes.values())


def test_finalise_executes_once_and_a_refused_finalise_changes_nothing() -> None:
    store = make_store()
    p = flows.mint_code(store, T0, {"type": "P", "wallet_balance": "150.00"})
    stale = flows.mint_code(store, T0 - timedelta(minutes=20), {"type": "E"})
    before = snapshot(store)
    with pytest.raises(Gone):
        flows.finalise(store, T0, finalise_body(code=[p.code, stale.code]))
    assert snapshot(store) == before
    flows.finalise(store, T0, finalise_body(code=[p.code]))
    account = store.account(p.user_id)
    assert account.wallet_balance == Decimal("50.00")
    with pytest.raises(Conflict):  # the same code on another basket
        flows.finalise(store, T0, finalise_body("b-2", code=[p.code]))
    with pytest.raises(Conflict):  # the same basket without a code
        flows.finalise(store, T0, finalise_body())
    with pytest.raises(Conflict):  # and the basket cannot be offered again either
        flows.get_offerings(store, T0, basket())
    assert account.wallet_balance == Decimal("50.00")


def test_finalise_without_a_code_still_creates_the_order() -> None:
    store = make_store()
    content = flows.finalise(store, T0, finalise_body())
    order = store.orders[content["order_id"]]
    assert order.status == "FINALISED" and order.codes == [] and order.outstanding == Decimal("100.00")


def test_finalise_rejects_external_vouchers_even_without_the_spec() -> None:
    store = make_store()
    body = finalise_body()
    body["basket"]["external_vouchers"] = [{"id": "X", "value": "1"}]
    with pytest.raises(ValidationFailed) as refused:
        flows.finalise(store, T0, body)
    assert refused.value.fields[0].field == "basket.external_vouchers"
    assert store.orders == {}


def test_finalise_uses_the_bill_the_offerings_opened() -> None:
    """Same order id, and external vouchers processed on get/offerings count at finalise."""
    store = make_store()
    body = basket()
    body["basket"]["external_vouchers"] = [{"id": "X", "value": "7.50", "sku": "A"}]
    offered = flows.get_offerings(store, T0, body)
    assert offered["basket"]["outstanding_amount"] == "92.50"
    final = flows.finalise(store, T0, finalise_body())
    assert final["order_id"] == offered["order_id"]
    assert final["basket"]["outstanding_amount"] == "92.50"


def test_e_code_points_are_per_currency_unit_paid_after_discounts() -> None:
    store = make_store()
    r = flows.mint_code(
        store,
        T0,
        {
            "type": "R",
            "vouchers": [{"id": "V", "title": "t", "apply_to": "BASKET", "discount_type": "PERCENT", "value": "10"}],
        },
    )
    e = flows.mint_code(store, T0, {"type": "E", "points_per_currency_unit": "2"})
    flows.finalise(store, T0, finalise_body(price="99.99", code=[r.code, e.code]))
    assert store.account(e.user_id).points == 179  # (99.99 - 10.00) x 2 = 179.98, rounded down


# -- refunds ----------------------------------------------------------------------------------------
def test_refund_restores_balances_vouchers_and_points_and_runs_once() -> None:
    store = make_store()
    p = flows.mint_code(store, T0, {"type": "P", "wallet_balance": "30.00", "loan_limit": "20", "card_limit": "100"})
    r = flows.mint_code(
        store,
        T0,
        {
            "type": "R",
            "vouchers": [
                {"id": "V", "title": "t", "apply_to": "PRODUCT", "sku": "A", "discount_type": "FIXED", "value": "5"}
            ],
        },
    )
    e = flows.mint_code(store, T0, {"type": "E"})
    before = copy.deepcopy(store.account(p.user_id))
    done = flows.finalise(store, T0, finalise_body(code=[p.code, r.code, e.code]))
    account = store.account(p.user_id)
    assert (account.wallet_balance, account.loan_used, account.card_used) == (
        Decimal("0"),
        Decimal("20"),
        Decimal("45"),
    )
    assert account.points == 95 and account.vouchers["V"].status == "REDEEMED"
    order_id = done["order_id"]

    part = flows.refund(store, T0, {"store_id": "S1", "terminal_id": "T1", "order_id": order_id, "code": [p.code]})
    assert part["status"] == "REFUNDED" and store.orders[order_id].status == "PARTIALLY_REFUNDED"
    assert account.wallet_balance == Decimal("30.00") and account.points == 95
    with pytest.raises(Conflict):
        flows.refund(store, T0, {"store_id": "S1", "terminal_id": "T1", "order_id": order_id, "code": [p.code]})
    void = flows.refund(store, T0, {"store_id": "S1", "terminal_id": "T1", "order_id": order_id})
    assert void == {"order_id": order_id, "refunded_codes": [r.code, e.code], "voided": True, "status": "VOIDED"}
    assert account == before
    assert {store.codes[c].state for c in (p.code, r.code, e.code)} == {codes.REFUNDED}
    with pytest.raises(Conflict):
        flows.refund(store, T0, {"store_id": "S1", "terminal_id": "T1", "order_id": order_id})


def test_refund_refuses_unknown_orders_codes_and_open_bills() -> None:
    store = make_store()
    offered = flows.get_offerings(store, T0, basket())
    with pytest.raises(NotFound):  # an open bill is not a finalised order
        flows.refund(store, T0, {"store_id": "S1", "terminal_id": "T1", "order_id": offered["order_id"]})
    done = flows.finalise(store, T0, finalise_body("b-9"))
    with pytest.raises(NotFound):  # another store's order
        flows.refund(store, T0, {"store_id": "S2", "terminal_id": "T1", "order_id": done["order_id"]})
    with pytest.raises(NotFound):  # a code that is not part of the order
        flows.refund(
            store, T0, {"store_id": "S1", "terminal_id": "T1", "order_id": done["order_id"], "code": ["PAAAAAAAA"]}
        )


# -- customers ------------------------------------------------------------------------------------------
def test_user_resolution_id_then_code_owner_then_cell_number() -> None:
    store = make_store()
    unknown = basket()
    unknown["basket"]["user"] = {"_id": "nope"}
    with pytest.raises(NotFound):
        flows.get_offerings(store, T0, unknown)
    body = basket()
    body["basket"]["user"] = {"cell_number": "+27 72 123 4565", "name": "Thandi", "email": "t@example.com"}
    first = flows.get_offerings(store, T0, body)
    created = store.customers.find_by_cell("27721234565")
    assert created is not None and created.name == "Thandi" and created.cell_country_code == "+27"
    assert store.orders[first["order_id"]].user_id == created.id
    flows.get_offerings(store, T0, body)
    assert len(store.customers) == 2  # found again, not created twice
    clash = basket("b-2")
    clash["basket"]["user"] = {"cell_number": "27820000000", "email": "t@example.com"}
    with pytest.raises(Conflict) as refused:  # stored state decides: 409, not a 400
        flows.get_offerings(store, T0, clash)
    assert refused.value.fields[0].field == "basket.user.email"
    code = flows.mint_code(store, T0, {"type": "E"})  # the default customer's
    owned = basket("b-3", code=[code.code])
    owned["basket"]["user"] = {"cell_number": "27721234565"}
    content = flows.get_offerings(store, T0, owned)
    assert store.orders[content["order_id"]].user_id == store.default_customer_id


def test_minting_for_a_new_customer_and_replacing_vouchers() -> None:
    store = make_store()
    code = flows.mint_code(
        store,
        T0,
        {
            "type": "R",
            "user": {"email": "new@example.com", "name": "N"},
            "vouchers": [{"id": "V", "title": "a", "apply_to": "BASKET", "discount_type": "FIXED", "value": "1"}],
        },
    )
    customer = store.customer(code.user_id)
    assert customer is not None and customer.email == "new@example.com"
    with pytest.raises(ValidationFailed) as bad:
        flows.mint_code(
            store,
            T0,
            {
                "type": "R",
                "vouchers": [
                    {"id": "W", "title": "w", "apply_to": "PRODUCT", "discount_type": "PERCENT", "value": "150"}
                ],
            },
        )
    assert {f.field for f in bad.value.fields} == {"vouchers[0].sku", "vouchers[0].value"}
    flows.finalise(store, T0, finalise_body(code=[code.code]))
    with pytest.raises(Conflict):  # the redeemed voucher id cannot be granted again
        flows.mint_code(
            store,
            T0,
            {
                "type": "R",
                "user": {"_id": code.user_id},
                "vouchers": [{"id": "V", "title": "a", "apply_to": "BASKET", "discount_type": "FIXED", "value": "1"}],
            },
        )


# -- fixtures -------------------------------------------------------------------------------------------
def test_fixtures_report_every_problem_and_load_nothing_then() -> None:
    store = make_store()
    section = {
        "customers": [{"_id": "c1", "email": "a@example.com"}, {"_id": "c1", "email": "a@example.com"}],
        "wallets": [{"user_id": "ghost", "wallet_balance": "5"}],
        "vouchers": [{"user_id": "c1", "id": "V", "apply_to": "PRODUCT", "discount_type": "FIXED", "value": "1"}],
        "deals": [{"id": "D", "apply_to": "BASKET", "discount_type": "PERCENT", "value": "101"}],
    }
    problems = {p.field for p in fixtures.check(store, section)}
    assert problems == {
        "letstrade.customers[1]._id",
        "letstrade.customers[1].email",
        "letstrade.wallets[0].user_id",
        "letstrade.vouchers[0].sku",
        "letstrade.deals[0].value",
    }
    schema_problems = fixtures.check(store, {"wallets": [{"wallet_balance": "-1"}], "nope": []})
    assert {p.field for p in schema_problems} >= {"letstrade.wallets[0].user_id", "letstrade.wallets[0].wallet_balance"}
    assert len(store.customers) == 1


def test_fixtures_load_customers_accounts_deals_and_subscriptions_that_price() -> None:
    store = make_store()
    section = {
        "customers": [{"_id": "c1", "name": "Sam", "cell_number": "27730000000"}],
        "wallets": [{"user_id": "c1", "wallet_balance": "12.345", "points": 7}],
        "vouchers": [{"user_id": "c1", "id": "V", "apply_to": "BASKET", "discount_type": "FIXED", "value": "3"}],
        "deals": [
            {
                "id": "D",
                "title": "10% off A",
                "apply_to": "PRODUCT",
                "sku": "A",
                "discount_type": "PERCENT",
                "value": "10",
            }
        ],
        "subscriptions": [
            {"id": "S", "user_id": "c1", "pids": ["pid-A"], "discount_type": "FIXED", "value": "5", "remaining": 1}
        ],
    }
    assert fixtures.check(store, section) == []
    assert fixtures.load(store, T0, section) == 5
    assert store.account("c1").wallet_balance == Decimal("12.35")
    body = basket()
    body["basket"]["user"] = {"_id": "c1"}
    offered = flows.get_offerings(store, T0, body)
    product = offered["basket"]["product_list"][0]
    assert product["deal"]["discount"] == "10.00" and product["subscription"]["discount"] == "5.00"
    assert offered["basket"]["subscriptions"][0]["product_pid"] == "pid-A"
    assert offered["basket"]["outstanding_amount"] == "85.00"
    final = finalise_body()
    final["basket"]["user"] = {"_id": "c1"}
    flows.finalise(store, T0, final)
    assert store.subscriptions["S"].remaining == 0


def test_every_refusal_is_a_mock_error_naming_a_field() -> None:
    store = make_store()
    body = basket()
    body["basket"]["product_list"][0]["price"] = "-1"
    body["basket"]["total"] = "999999999999999.999"
    with pytest.raises(MockError) as refused:
        flows.get_offerings(store, T0, body)
    assert {f.field for f in refused.value.fields} == {"basket.product_list[0].price", "basket.total"}
    assert store.orders == {}
