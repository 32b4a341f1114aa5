"""A hand-written hypothesis state machine over the Let'sTrade POS API (HTTP, strict mode): mint codes,
get offerings, finalise, refund or void, and move the virtual clock, against an independent model of
every customer's balances and every code's state. After each step the mock's accounts and code states
must equal the model's, and no balance may be negative."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule, run_state_machine_as_test

from mock_server.testing import MockServer
from tests.integration.test_letstrade_pos_flow import Pos, finalise_body, offerings_body, product

D = Decimal
CENT = D("0.01")
ZERO = D("0.00")
ONE = D(1)
SECOND_USER = "sm-customer-2"
VALIDITY = 600  # seconds


def money(cents: int) -> Decimal:
    return D(cents).scaleb(-2)


@dataclass
class Account:
    wallet: Decimal = ZERO
    loan_limit: Decimal = ZERO
    loan_used: Decimal = ZERO
    card_limit: Decimal = ZERO
    card_used: Decimal = ZERO
    points: int = 0
    vouchers: dict[str, str] = field(default_factory=dict)  # id -> AVAILABLE | REDEEMED


@dataclass
class CodeModel:
    type: str
    user: str
    minted: int
    state: str = "ACTIVE"
    voucher: str | None = None
    value: Decimal = ZERO
    rate: Decimal = ONE


@dataclass
class Effect:
    code: str
    wallet: Decimal = ZERO
    loan: Decimal = ZERO
    card: Decimal = ZERO
    points: int = 0
    voucher: str | None = None
    refunded: bool = False


@dataclass
class OrderModel:
    effects: list[Effect]
    voided: bool = False


class PosMachine(RuleBasedStateMachine):
    server: ClassVar[MockServer]
    codes = Bundle("codes")
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.server.reset()
        self.pos = Pos(self.server)
        self.pos.freeze()
        loaded = self.server.admin(
            "POST",
            "/fixtures",
            json={"letstrade": {"customers": [{"_id": SECOND_USER, "name": "Second", "cell_number": "27739990000"}]}},
        )
        assert loaded.status_code == 200, loaded.text
        self.users = [self.pos.default_user, SECOND_USER]
        self.accounts = {user: Account() for user in self.users}
        self.code_models: dict[str, CodeModel] = {}
        self.order_models: dict[str, OrderModel] = {}
        self.now = 0
        self.vouchers = 0

    # -- the model's rules ------------------------------------------------------------------------
    def status_of(self, code: str) -> str:
        model = self.code_models[code]
        if model.state == "ACTIVE" and self.now - model.minted >= VALIDITY:
            return "EXPIRED"
        return model.state

    def expected_status(self, codes: list[str]) -> int:
        if len(set(codes)) != len(codes) or len({self.code_models[c].type for c in codes}) != len(codes):
            return 400
        states = [self.status_of(c) for c in codes]
        if any(s in ("FINALISED", "REFUNDED") for s in states):
            return 409
        if "EXPIRED" in states:
            return 410
        return 200

    def settle(self, codes: list[str], amount: Decimal) -> tuple[Decimal, list[Effect], Decimal]:
        """Discount, effects per code and outstanding amount, computed by hand for a one-line basket."""
        effects = {c: Effect(c) for c in codes}
        discount = D("0.00")
        for code in codes:
            model = self.code_models[code]
            voucher = model.voucher
            if model.type == "R" and voucher is not None and self.accounts[model.user].vouchers[voucher] == "AVAILABLE":
                discount = min(model.value, amount)
                if discount > 0:
                    effects[code].voucher = voucher
        to_pay = amount - discount
        left = to_pay
        for code in codes:
            model = self.code_models[code]
            if model.type == "P":
                account = self.accounts[model.user]
                effect = effects[code]
                effect.wallet = min(account.wallet, left)
                left -= effect.wallet
                effect.loan = min(max(D(0), account.loan_limit - account.loan_used), left)
                left -= effect.loan
                effect.card = min(max(D(0), account.card_limit - account.card_used), left)
                left -= effect.card
            if model.type == "E":
                effects[code].points = int((to_pay * model.rate).to_integral_value(rounding=ROUND_DOWN))
        return discount, [effects[c] for c in codes], left

    # -- rules ----------------------------------------------------------------------------------------
    @rule(
        target=codes,
        kind=st.sampled_from("PRE"),
        owner=st.sampled_from([0, 1]),
        wallet=st.none() | st.integers(0, 10_000),
        loan=st.none() | st.integers(0, 5_000),
        card=st.none() | st.integers(0, 10_000),
        value=st.integers(0, 5_000),
        rate=st.sampled_from(["1", "2", "0.5"]),
    )
    def mint(
        self, kind: str, owner: int, wallet: int | None, loan: int | None, card: int | None, value: int, rate: str
    ) -> str:
        user = self.users[owner]
        body: dict[str, Any] = {"user": {"_id": user}}
        account = self.accounts[user]
        model = CodeModel(kind, user, self.now)
        if kind == "P":
            for key, cents, attr in (
                ("wallet_balance", wallet, "wallet"),
                ("loan_limit", loan, "loan_limit"),
                ("card_limit", card, "card_limit"),
            ):
                if cents is not None:
                    body[key] = f"{money(cents):f}"
                    setattr(account, attr, money(cents))
        elif kind == "R":
            self.vouchers += 1
            voucher = f"SMV{self.vouchers}"
            body["vouchers"] = [
                {
                    "id": voucher,
                    "title": "machine voucher",
                    "apply_to": "BASKET",
                    "discount_type": "FIXED",
                    "value": f"{money(value):f}",
                }
            ]
            account.vouchers[voucher] = "AVAILABLE"
            model.voucher, model.value = voucher, money(value)
        else:
            body["points_per_currency_unit"] = rate
            model.rate = D(rate)
        code = self.pos.mint(kind, **body)
        self.code_models[code] = model
        return code

    @rule(chosen=st.lists(codes, max_size=3), cents=st.integers(1, 20_000))
    def offerings(self, chosen: list[str], cents: int) -> None:
        amount = money(cents)
        response = self.pos.offerings(offerings_body([product("A", f"{amount:f}")], f"{amount:f}", chosen))
        expected = self.expected_status(chosen)
        assert response.status_code == expected, response.text
        if expected != 200:
            return
        discount, effects, outstanding = self.settle(chosen, amount)
        basket = response.json()["content"]["basket"]
        assert D(basket["outstanding_amount"]) == outstanding
        assert D(basket["discount"]) == discount
        for effect in effects:
            if self.code_models[effect.code].type == "P":
                assert D(str(basket["wallet"]["amount"])).quantize(CENT) == effect.wallet

    @rule(
        target=orders,
        kind=st.sampled_from("PRE"),
        owner=st.sampled_from([0, 1]),
        funds=st.integers(1, 10_000),
        cents=st.integers(1, 20_000),
    )
    def buy_with_a_fresh_code(self, kind: str, owner: int, funds: int, cents: int) -> Any:
        """Mint and finalise at once, so that paid, redeemed and earning orders are common."""
        code = self.mint(kind=kind, owner=owner, wallet=funds, loan=None, card=funds // 2, value=funds, rate="1")
        return self.finalise(chosen=[code], cents=cents)

    @rule(target=orders, code=codes, cents=st.integers(1, 20_000))
    def finalise_one_code(self, code: str, cents: int) -> Any:
        """One code: often one that is already used or expired by now."""
        return self.finalise(chosen=[code], cents=cents)

    @rule(target=orders, chosen=st.lists(codes, max_size=3), cents=st.integers(1, 20_000))
    def finalise(self, chosen: list[str], cents: int) -> Any:
        amount = money(cents)
        body = finalise_body(offerings_body([product("A", f"{amount:f}")], f"{amount:f}", chosen))
        expected = self.expected_status(chosen)
        if expected == 200:
            _, effects, outstanding = self.settle(chosen, amount)
        response = self.pos.finalise(body)
        assert response.status_code == expected, response.text
        if expected != 200:
            return multiple()
        assert D(response.json()["content"]["basket"]["outstanding_amount"]) == outstanding
        for effect in effects:
            model = self.code_models[effect.code]
            account = self.accounts[model.user]
            account.wallet -= effect.wallet
            account.loan_used += effect.loan
            account.card_used += effect.card
            account.points += effect.points
            if effect.voucher is not None:
                account.vouchers[effect.voucher] = "REDEEMED"
            model.state = "FINALISED"
        order_id: str = response.json()["content"]["order_id"]
        self.order_models[order_id] = OrderModel(effects)
        return order_id

    def reverse(self, effect: Effect) -> None:
        model = self.code_models[effect.code]
        account = self.accounts[model.user]
        account.wallet += effect.wallet
        account.loan_used -= effect.loan
        account.card_used -= effect.card
        account.points -= effect.points
        if effect.voucher is not None:
            account.vouchers[effect.voucher] = "AVAILABLE"
        effect.refunded = True
        model.state = "REFUNDED"

    @rule(order_id=orders, how=st.sampled_from(["void", "first", "all"]))
    def refund(self, order_id: str, how: str) -> None:
        order = self.order_models[order_id]
        body: dict[str, Any] = {"store_id": "STORE-1", "terminal_id": "TILL-1", "order_id": order_id}
        targets = order.effects if how == "all" else order.effects[:1]
        if how != "void" and targets:
            body["code"] = [e.code for e in targets]
        response = self.pos.refund(body)
        if order.voided or ("code" in body and any(e.refunded for e in targets)):
            assert response.status_code == 409, response.text
            return
        assert response.status_code == 200, response.text
        if "code" in body:
            for effect in targets:
                self.reverse(effect)
        else:
            for effect in order.effects:
                if not effect.refunded:
                    self.reverse(effect)
            order.voided = True
        assert response.json()["content"]["voided"] is ("code" not in body)

    @rule(seconds=st.sampled_from([1, 59, 300, 599, 601]))
    def advance_clock(self, seconds: int) -> None:
        self.server.advance(seconds)
        self.now += seconds

    # -- invariants -----------------------------------------------------------------------------------
    @invariant()
    def accounts_and_codes_match_the_model(self) -> None:
        for user in self.users:
            view = self.pos.user(user)
            model = self.accounts[user]
            assert D(view["wallet_balance"]) == model.wallet >= 0
            assert D(view["loan_used"]) == model.loan_used >= 0
            assert D(view["card_used"]) == model.card_used >= 0
            assert D(view["loan_limit"]) == model.loan_limit and D(view["card_limit"]) == model.card_limit
            assert view["points"] == model.points >= 0
            assert {v["id"]: v["status"] for v in view["vouchers"]} == model.vouchers
            for code in view["codes"]:
                assert code["status"] == self.status_of(code["code"]), code
            assert {c["code"] for c in view["codes"]} == {c for c, m in self.code_models.items() if m.user == user}


def test_pos_state_machine(mock_server: MockServer) -> None:
    PosMachine.server = mock_server
    run_state_machine_as_test(
        PosMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=15,
            deadline=None,
            database=None,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
