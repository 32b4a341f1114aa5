"""Pricing of Let'sTrade POS baskets (`mock_server.apis.letstrade_pos.pricing`): worked examples from
seed 004's fields, and the invariants under hypothesis (at least 500 examples each)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.apis.letstrade_pos.pricing import (
    BASKET,
    FIXED,
    PERCENT,
    PRODUCT,
    Condiment,
    DealRule,
    ExternalVoucher,
    Funds,
    Item,
    Line,
    Pricing,
    SubscriptionRule,
    VoucherRule,
    as_number,
    fmt,
    money,
    points_for,
    price,
)

D = Decimal
INVARIANT_SETTINGS = settings(
    max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def line(position: int, sku: str, price_: str, quantity: str = "1", **kw: object) -> Line:
    add_ons = kw.pop("add_ons", ())
    item = Item(sku=sku, pid=f"pid-{sku}", quantity=D(quantity), price=D(price_), title=sku, **kw)  # type: ignore[arg-type]
    return Line(position, item, add_ons)  # type: ignore[arg-type]


# -- worked examples -------------------------------------------------------------------------------
def test_seed_example_basket_prices_as_documented() -> None:
    """The spec's example: product and basket vouchers, an external voucher on the promoted muffin,
    condiments priced into the coffee, and the P-code split wallet -> loan -> card."""
    lines = [
        line(0, "FW-REG", "38.00", condiments=(Condiment(D("6.00"), D(1)),)),
        line(1, "MUF-BLU", "32.50", "2", on_promotion=True, promotion_price=D("28.00")),
        line(2, "SAN-TOAST-HC", "75.00", add_ons=(Item("ADD-CHS", "p", D(1), D("12.00")),)),
    ]
    result = price(
        lines,
        D("225.05"),
        vouchers=[
            VoucherRule("VCH-SAN-15", "R15 off", PRODUCT, FIXED, D(15), sku="SAN-TOAST-HC"),
            VoucherRule("VCH-BSK-20", "R20 off", BASKET, FIXED, D(20)),
        ],
        external=[ExternalVoucher("EXT-MUF-5", D(5), sku="MUF-BLU", quantity=D(1), apply_to_promotion=True)],
        funds=Funds(wallet=D(100), loan=D(50), card=D(500)),
    )
    assert [lp.amount for lp in result.lines] == [D("44.00"), D("56.00"), D("75.00")]
    assert lines[2].add_ons_amount == D("12.00")
    sandwich = result.lines[2].of_kind("voucher")[0]
    assert (sandwich.discount, sandwich.after) == (D("15.00"), D("60.00"))
    assert result.discount == D("40.00")
    assert result.payments == {"wallet": D("100.00"), "loan": D("50.00"), "card": D("35.05")}
    assert result.outstanding == D("0.00")


def test_payment_order_is_wallet_then_loan_then_card_and_leaves_the_rest_outstanding() -> None:
    result = price([line(0, "A", "100")], D("100.00"), funds=Funds(wallet=D("30"), loan=D("20"), card=D("10")))
    assert result.payments == {"wallet": D("30.00"), "loan": D("20.00"), "card": D("10.00")}
    assert result.outstanding == D("40.00")
    rich = price([line(0, "A", "100")], D("100.00"), funds=Funds(wallet=D("500"), loan=D("20"), card=D("10")))
    assert rich.payments == {"wallet": D("100.00"), "loan": D("0.00"), "card": D("0.00")}


def test_external_voucher_quantity_caps_units_and_apply_to_promotion_changes_the_basis() -> None:
    muffins = [line(0, "MUF", "32.50", "3", on_promotion=True, promotion_price=D("28.00"))]
    # against the promotion price: 5.00 off each of 2 units
    on_promo = price(
        muffins, D("84.00"), external=[ExternalVoucher("X", D(5), sku="MUF", quantity=D(2), apply_to_promotion=True)]
    )
    assert on_promo.discount == D("10.00")
    # against the regular price: the 4.50 promotion saving counts towards the 5.00, so 0.50 off each unit
    regular = price(muffins, D("84.00"), external=[ExternalVoucher("X", D(5), sku="MUF", quantity=D(2))])
    assert regular.discount == D("1.00")
    # no quantity: every unit; a quantity above the line's is capped at it
    everything = price(muffins, D("84.00"), external=[ExternalVoucher("X", D(5), sku="MUF", apply_to_promotion=True)])
    capped = price(
        muffins, D("84.00"), external=[ExternalVoucher("X", D(5), sku="MUF", quantity=D(9), apply_to_promotion=True)]
    )
    assert everything.discount == capped.discount == D("15.00")
    # not on promotion: apply_to_promotion makes no difference
    plain = [line(0, "MUF", "32.50", "3")]
    assert price(plain, D("97.50"), external=[ExternalVoucher("X", D(5), sku="MUF")]).discount == D("15.00")


def test_voucher_never_discounts_a_line_below_zero_nor_the_basket_below_zero() -> None:
    result = price(
        [line(0, "A", "10.00")],
        D("10.00"),
        vouchers=[VoucherRule("V", "t", PRODUCT, FIXED, D(50), sku="A"), VoucherRule("B", "t", BASKET, FIXED, D(50))],
        external=[ExternalVoucher("E", D(99))],
    )
    assert result.lines[0].discount == D("10.00")
    assert result.discount == D("10.00")
    assert result.outstanding == D("0.00")


def test_percent_vouchers_round_half_up_to_cents() -> None:
    result = price(
        [line(0, "A", "0.25")], D("0.25"), vouchers=[VoucherRule("V", "t", PRODUCT, PERCENT, D(10), sku="A")]
    )
    assert result.discount == D("0.03")  # 0.025 -> 0.03, half-up
    assert fmt(D("2.005")) == "2.01" and fmt(D("-0.001")) == "0.00"
    assert as_number(D("100.00")) == 100 and as_number(D("27.05")) == 27.05


def test_subscription_discounts_the_cheapest_qualifying_units() -> None:
    sub = SubscriptionRule("S1", "Coffee club", frozenset({"pid-LATTE", "pid-FW"}), PERCENT, D(100), units=1)
    result = price(
        [line(0, "LATTE", "45.00"), line(1, "FW", "38.00"), line(2, "CAKE", "20.00")], D("103.00"), subscriptions=[sub]
    )
    assert [lp.discount for lp in result.lines] == [D("0.00"), D("38.00"), D("0.00")]


def test_best_product_deal_wins_and_basket_deal_needs_its_minimum_spend() -> None:
    deals = [
        DealRule("D1", "2 for 50", PRODUCT, FIXED, D(6), sku="MUF", min_quantity=D(2)),
        DealRule("D2", "10% off", PRODUCT, PERCENT, D(10), sku="MUF"),
        DealRule("D3", "R10 off R100", BASKET, FIXED, D(10), min_spend=D(100)),
    ]
    two = price([line(0, "MUF", "28.00", "2")], D("56.00"), deals=deals)
    assert [(a.rule_id, a.discount) for a in two.applied("deal")] == [("D1", D("6.00"))]
    one = price([line(0, "MUF", "28.00", "1")], D("28.00"), deals=deals)
    assert [(a.rule_id, a.discount) for a in one.applied("deal")] == [("D2", D("2.80"))]
    big = price([line(0, "MUF", "28.00", "5")], D("140.00"), deals=deals)
    assert ("D3", D("10.00")) in [(a.rule_id, a.discount) for a in big.basket]


def test_points_are_rounded_down_per_currency_unit_paid() -> None:
    assert points_for(D("99.99"), D(1)) == 99
    assert points_for(D("10.00"), D("2.5")) == 25
    assert points_for(D("0.00"), D(5)) == 0


def test_huge_amounts_stay_exact() -> None:
    big = line(0, "A", "999999999999999.999999", "999999999999999.999999")
    assert big.amount > D("1e29")  # quantity x price is not rounded away before cents
    assert money(D("999999999999999.995")) == D("1000000000000000.00")


# -- invariants under hypothesis ---------------------------------------------------------------------
SKUS = ["A", "B", "C"]


def cents(low: int, high: int) -> st.SearchStrategy[Decimal]:
    """Money with two places (integers are far cheaper for hypothesis to generate than decimals)."""
    return st.integers(low * 100, high * 100).map(lambda c: D(c).scaleb(-2))


amounts = cents(0, 500)
percents = cents(0, 100)
skus = st.sampled_from(SKUS)
maybe_quantity = st.one_of(st.none(), st.integers(0, 3).map(D))
kinds = st.sampled_from([FIXED, PERCENT])
targets = st.sampled_from([BASKET, PRODUCT])


def _item(
    sku: str, tenths: int, price_: Decimal, promotion: Decimal | None, condiments: list[tuple[Decimal, int]]
) -> Item:
    return Item(
        sku=sku,
        pid=f"pid-{sku}",
        quantity=D(tenths).scaleb(-1) if tenths % 3 else D(tenths // 3),  # whole and fractional quantities
        price=price_,
        on_promotion=promotion is not None,
        promotion_price=promotion if promotion is not None and promotion >= 0 else None,  # -1: flag without price
        condiments=tuple(Condiment(p, D(n)) for p, n in condiments),
    )


# st.builds over integers: about 4x faster to generate than composites of st.decimals
items = st.builds(
    _item,
    skus,
    st.integers(0, 40),
    amounts,
    st.one_of(st.none(), st.just(D(-1)), amounts),
    st.lists(st.tuples(cents(0, 20), st.integers(0, 2)), max_size=2),
)


def _value(kind: str, fixed: Decimal, percent: Decimal) -> Decimal:
    return percent if kind == PERCENT else fixed


voucher_rules = st.builds(
    lambda n, target, kind, fixed, percent, sku, quantity: VoucherRule(
        f"V{n}", "v", target, kind, _value(kind, fixed, percent), sku if target == PRODUCT else None, quantity
    ),
    st.integers(0, 5),
    targets,
    kinds,
    amounts,
    percents,
    skus,
    maybe_quantity,
)
deal_rules = st.builds(
    lambda n, target, kind, fixed, percent, sku, min_quantity, min_spend: DealRule(
        f"D{n}",
        "d",
        target,
        kind,
        _value(kind, fixed, percent),
        sku if target == PRODUCT else None,
        D(min_quantity),
        min_spend,
    ),
    st.integers(0, 3),
    targets,
    kinds,
    amounts,
    percents,
    skus,
    st.integers(0, 3),
    amounts,
)
subscription_rules = st.builds(
    lambda n, pids, kind, fixed, percent, units: SubscriptionRule(
        f"S{n}", "s", frozenset(f"pid-{p}" for p in pids), kind, _value(kind, fixed, percent), units
    ),
    st.integers(0, 3),
    st.sets(skus, min_size=1),
    kinds,
    amounts,
    percents,
    st.integers(1, 3),
)
externals = st.builds(
    ExternalVoucher,
    id=st.sampled_from(["E1", "E2", "E3"]),
    value=amounts,
    sku=st.one_of(st.none(), skus),
    quantity=maybe_quantity,
    apply_to_promotion=st.booleans(),
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    products = draw(st.lists(items, max_size=6))
    add_ons = draw(st.dictionaries(st.integers(0, 5), items, max_size=2))
    lines = [Line(i, item, (add_ons[i],) if i in add_ons else ()) for i, item in enumerate(products)]
    gross = sum((ln.amount + ln.add_ons_amount for ln in lines), D(0))
    # the amount due is the POS's figure: usually the lines' total, sometimes less or more
    due = draw(st.one_of(st.just(gross), cents(0, 3000)))
    return {
        "lines": lines,
        "due": due,
        "vouchers": draw(st.lists(voucher_rules, max_size=4, unique_by=lambda v: v.id)),
        "external": draw(st.lists(externals, max_size=3)),
        "deals": draw(st.lists(deal_rules, max_size=3, unique_by=lambda d: d.id)),
        "subscriptions": draw(st.lists(subscription_rules, max_size=2, unique_by=lambda s: s.id)),
        "funds": draw(st.one_of(st.none(), st.builds(Funds, amounts, amounts, amounts))),
    }


def run(scenario: dict[str, object], lines: list[Line] | None = None) -> Pricing:
    return price(
        lines if lines is not None else scenario["lines"],  # type: ignore[arg-type]
        scenario["due"],  # type: ignore[arg-type]
        vouchers=scenario["vouchers"],  # type: ignore[arg-type]
        external=scenario["external"],  # type: ignore[arg-type]
        deals=scenario["deals"],  # type: ignore[arg-type]
        subscriptions=scenario["subscriptions"],  # type: ignore[arg-type]
        funds=scenario["funds"],  # type: ignore[arg-type]
    )


@INVARIANT_SETTINGS
@given(scenarios())
def test_outstanding_is_never_negative(scenario: dict[str, object]) -> None:
    result = run(scenario)
    assert result.outstanding >= 0
    assert all(amount >= 0 for amount in result.payments.values())
    funds = scenario["funds"]
    if isinstance(funds, Funds):
        assert result.payments["wallet"] <= money(funds.wallet)
        assert result.payments["loan"] <= money(funds.loan)
        assert result.payments["card"] <= money(funds.card)


@INVARIANT_SETTINGS
@given(scenarios())
def test_no_line_is_discounted_below_zero(scenario: dict[str, object]) -> None:
    result = run(scenario)
    for lp in result.lines:
        assert all(a.discount >= 0 for a in lp.applied)
        assert lp.discount <= lp.amount
        assert all(a.after is not None and a.after >= 0 for a in lp.applied)
    assert all(a.discount >= 0 for a in result.basket)


@INVARIANT_SETTINGS
@given(scenarios())
def test_discounts_plus_payments_plus_outstanding_equal_the_total(scenario: dict[str, object]) -> None:
    result = run(scenario)
    assert result.discount + result.paid_by_letstrade + result.outstanding == money(scenario["due"])  # type: ignore[arg-type]
    every = [result.outstanding, *result.payments.values(), *(a.discount for a in result.applied())]
    assert all(value.as_tuple().exponent == -2 for value in every), "money leaves with exactly two places"


def _by_content(result: Pricing) -> Counter[tuple[str, tuple[tuple[str, str, Decimal], ...]]]:
    return Counter(
        (lp.line.content_key(), tuple(sorted((a.kind, a.rule_id, a.discount) for a in lp.applied)))
        for lp in result.lines
    )


@INVARIANT_SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_result_is_independent_of_product_order(scenario: dict[str, object], rnd: object) -> None:
    lines: list[Line] = list(scenario["lines"])  # type: ignore[call-overload]
    shuffled = [ln.item for ln in lines]
    extras = [ln.add_ons for ln in lines]
    order = list(range(len(lines)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    permuted = [Line(i, shuffled[j], extras[j]) for i, j in enumerate(order)]
    first, second = run(scenario), run(scenario, permuted)
    assert (first.discount, first.payments, first.outstanding) == (second.discount, second.payments, second.outstanding)
    assert sorted((a.kind, a.rule_id, a.discount) for a in first.basket) == sorted(
        (a.kind, a.rule_id, a.discount) for a in second.basket
    )
    assert _by_content(first) == _by_content(second)
