"""Basket pricing for the Let'sTrade POS integration (seed 004). Pure: `Decimal` money, no I/O.

`price()` turns a basket and the rules that apply to it (Let'sTrade vouchers, external vouchers,
deals, subscriptions, the P-code owner's funds) into the discounts per line and per basket, the
payment split and the outstanding amount.

Order of application (each discount is capped by what is left of its line and of the amount due,
so no line and no basket can go below zero):

1. product deals (the best one per line), 2. subscriptions (cheapest qualifying units first),
3. Let'sTrade PRODUCT vouchers, 4. external vouchers with a `sku`, 5. basket deals,
6. Let'sTrade BASKET vouchers, 7. external vouchers without a `sku`, then the P-code payment:
wallet first, then loan, then card (the order is an assumption; the document names all three).

Lines are processed in a canonical order (by their content, not their position), so the result
does not depend on the order of `product_list`.

Invariants (tests/unit/test_letstrade_pos_pricing.py): outstanding >= 0; every discount >= 0; no
line discounted below zero; discounts + payments + outstanding == amount due.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, localcontext

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
# the largest amount a DecimalString of the spec can carry with two decimals
MAX_AMOUNT = Decimal("999999999999999.99")
# wide enough that quantity x price of two 21-digit decimals is exact before rounding to cents
CONTEXT = Context(prec=80, rounding=ROUND_HALF_UP)

PRODUCT = "PRODUCT"
BASKET = "BASKET"
FIXED = "FIXED"
PERCENT = "PERCENT"


def money(value: Decimal) -> Decimal:
    """Two places, half-up; never `-0.00`."""
    rounded = value.quantize(CENT, rounding=ROUND_HALF_UP, context=CONTEXT)
    return ZERO if rounded.is_zero() else rounded


def fmt(value: Decimal) -> str:
    """A money amount as the API sends it: a string with two decimals, e.g. "100.00"."""
    return f"{money(value):f}"


def as_number(value: Decimal) -> int | float:
    """A money amount for the few fields the document types as `number`."""
    rounded = money(value)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def points_for(paid: Decimal, rate: Decimal) -> int:
    """Points for an amount paid at `rate` points per currency unit, rounded down (assumed)."""
    if paid <= 0 or rate <= 0:
        return 0
    return int((paid * rate).quantize(Decimal(1), rounding=ROUND_DOWN, context=CONTEXT))


# -- inputs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Condiment:
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True)
class Item:
    """A product or an add-on as the POS sent it (amounts already parsed)."""

    sku: str
    pid: str
    quantity: Decimal
    price: Decimal
    title: str = ""
    on_promotion: bool = False
    promotion_price: Decimal | None = None
    condiments: tuple[Condiment, ...] = ()

    @property
    def promoted(self) -> bool:
        return self.on_promotion and self.promotion_price is not None

    @property
    def condiments_per_unit(self) -> Decimal:
        """Condiments are priced into their product, per unit of it (assumed)."""
        with localcontext(CONTEXT):
            return sum((c.price * c.quantity for c in self.condiments), Decimal(0))

    @property
    def regular_unit(self) -> Decimal:
        with localcontext(CONTEXT):
            return self.price + self.condiments_per_unit

    @property
    def unit(self) -> Decimal:
        """What one unit costs: the promotion price when on promotion, plus its condiments."""
        base = self.promotion_price if self.promoted and self.promotion_price is not None else self.price
        with localcontext(CONTEXT):
            return base + self.condiments_per_unit

    @property
    def amount(self) -> Decimal:
        with localcontext(CONTEXT):
            return money(self.quantity * self.unit)


@dataclass(frozen=True)
class Line:
    """One entry of `product_list`: the product (discountable) and its add-ons (charged, not
    discounted by rules aimed at the product)."""

    position: int
    item: Item
    add_ons: tuple[Item, ...] = ()

    @property
    def amount(self) -> Decimal:
        return self.item.amount

    @property
    def add_ons_amount(self) -> Decimal:
        with localcontext(CONTEXT):
            return money(sum((a.amount for a in self.add_ons), Decimal(0)))

    def content_key(self) -> str:
        """Sorts lines by what they are, never by where they are."""
        return repr((self.item, self.add_ons))


@dataclass(frozen=True)
class VoucherRule:
    """A Let'sTrade voucher: carried by an R code or selected by the customer in the app."""

    id: str
    title: str
    apply_to: str  # BASKET | PRODUCT
    discount_type: str  # FIXED | PERCENT
    value: Decimal
    sku: str | None = None
    quantity: Decimal | None = None  # PRODUCT: at most this many units are discounted


@dataclass(frozen=True)
class ExternalVoucher:
    id: str
    value: Decimal
    title: str | None = None
    sku: str | None = None
    quantity: Decimal | None = None
    apply_to_promotion: bool = False


@dataclass(frozen=True)
class DealRule:
    id: str
    title: str
    apply_to: str  # BASKET | PRODUCT
    discount_type: str
    value: Decimal
    sku: str | None = None
    min_quantity: Decimal = Decimal(1)  # PRODUCT: the line must hold at least this many units
    min_spend: Decimal = Decimal(0)  # BASKET: the amount due after product discounts must reach it


@dataclass(frozen=True)
class SubscriptionRule:
    id: str
    title: str
    pids: frozenset[str]
    discount_type: str
    value: Decimal
    units: int = 1  # units discounted per basket (already capped by what the subscription has left)


@dataclass(frozen=True)
class Funds:
    """What the P-code owner can pay with right now."""

    wallet: Decimal = ZERO
    loan: Decimal = ZERO
    card: Decimal = ZERO


# -- outputs ---------------------------------------------------------------------------------------
@dataclass
class Applied:
    """One discount: on a line (`position` set) or on the basket."""

    kind: str  # deal | subscription | voucher | external
    rule_id: str
    discount: Decimal
    position: int | None = None
    units: Decimal | None = None
    after: Decimal | None = None  # the line's amount after this discount (`discounted_price`)


@dataclass
class LinePricing:
    line: Line
    applied: list[Applied] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        return self.line.amount

    @property
    def discount(self) -> Decimal:
        return sum((a.discount for a in self.applied), ZERO)

    @property
    def net(self) -> Decimal:
        return self.amount - self.discount

    def of_kind(self, kind: str) -> list[Applied]:
        return [a for a in self.applied if a.kind == kind]


@dataclass
class Pricing:
    due: Decimal
    lines: list[LinePricing]  # in request order
    basket: list[Applied]
    payments: dict[str, Decimal]  # wallet / loan / card (empty without a P code)
    outstanding: Decimal

    @property
    def product_discount(self) -> Decimal:
        return sum((lp.discount for lp in self.lines), ZERO)

    @property
    def basket_discount(self) -> Decimal:
        return sum((a.discount for a in self.basket), ZERO)

    @property
    def discount(self) -> Decimal:
        return self.product_discount + self.basket_discount

    @property
    def paid_by_letstrade(self) -> Decimal:
        return sum(self.payments.values(), ZERO)

    @property
    def to_pay(self) -> Decimal:
        """What the customer pays by any means (Let'sTrade funds or at the till)."""
        return self.due - self.discount

    def applied(self, kind: str | None = None) -> list[Applied]:
        found = [a for lp in self.lines for a in lp.applied] + self.basket
        return [a for a in found if kind is None or a.kind == kind]


class _Budget:
    """What is left of the amount due and of each line; every discount goes through `take`."""

    def __init__(self, due: Decimal, lines: Iterable[LinePricing]) -> None:
        self.remaining = due
        self.line_left = {lp.line.position: lp.amount for lp in lines}

    def take(self, wanted: Decimal, position: int | None = None) -> Decimal:
        cap = self.remaining if position is None else min(self.remaining, self.line_left[position])
        granted = max(ZERO, min(money(wanted), cap))
        self.remaining -= granted
        if position is not None:
            self.line_left[position] -= granted
        return granted


def _percent(amount: Decimal, rate: Decimal) -> Decimal:
    return money(amount * rate / HUNDRED)


def _per_unit(discount_type: str, value: Decimal, unit: Decimal) -> Decimal:
    if discount_type == PERCENT:
        return unit * min(value, HUNDRED) / HUNDRED
    return min(value, unit)


def price(
    lines: Sequence[Line],
    due: Decimal,
    *,
    vouchers: Sequence[VoucherRule] = (),
    external: Sequence[ExternalVoucher] = (),
    deals: Sequence[DealRule] = (),
    subscriptions: Sequence[SubscriptionRule] = (),
    funds: Funds | None = None,
) -> Pricing:
    with localcontext(CONTEXT):
        return _price(lines, money(due), vouchers, external, deals, subscriptions, funds)


def _price(
    lines: Sequence[Line],
    due: Decimal,
    vouchers: Sequence[VoucherRule],
    external: Sequence[ExternalVoucher],
    deals: Sequence[DealRule],
    subscriptions: Sequence[SubscriptionRule],
    funds: Funds | None,
) -> Pricing:
    results = [LinePricing(line) for line in lines]
    canonical = sorted(results, key=lambda lp: lp.line.content_key())
    budget = _Budget(due, results)
    basket: list[Applied] = []

    def apply(lp: LinePricing, kind: str, rule_id: str, wanted: Decimal, units: Decimal | None = None) -> None:
        granted = budget.take(wanted, lp.line.position)
        lp.applied.append(
            Applied(kind, rule_id, granted, lp.line.position, units, money(budget.line_left[lp.line.position]))
        )

    # 1. product deals: the best deal per line
    product_deals = sorted((d for d in deals if d.apply_to == PRODUCT), key=lambda d: d.id)
    for lp in canonical:
        item = lp.line.item
        best: tuple[Decimal, DealRule] | None = None
        for deal in product_deals:
            if deal.sku != item.sku or item.quantity < deal.min_quantity:
                continue
            wanted = _percent(lp.amount, deal.value) if deal.discount_type == PERCENT else money(deal.value)
            if best is None or wanted > best[0]:
                best = (wanted, deal)
        if best is not None:
            apply(lp, "deal", best[1].id, best[0])

    # 2. subscriptions: the cheapest qualifying units, one subscription per line
    for sub in sorted(subscriptions, key=lambda s: s.id):
        left = Decimal(sub.units)
        candidates = [lp for lp in canonical if lp.line.item.pid in sub.pids and not lp.of_kind("subscription")]
        candidates.sort(key=lambda lp: (lp.line.item.unit, lp.line.content_key()))
        for lp in candidates:
            if left <= 0:
                break
            units = min(left, lp.line.item.quantity.to_integral_value(rounding=ROUND_DOWN))
            if units <= 0:
                continue
            left -= units
            per_unit = _per_unit(sub.discount_type, sub.value, lp.line.item.unit)
            apply(lp, "subscription", sub.id, units * per_unit, units)

    # 3. Let'sTrade PRODUCT vouchers
    for voucher in sorted((v for v in vouchers if v.apply_to == PRODUCT), key=lambda v: v.id):
        cap = voucher.quantity
        for lp in canonical:
            if lp.line.item.sku != voucher.sku:
                continue
            units = lp.line.item.quantity if cap is None else min(cap, lp.line.item.quantity)
            if units <= 0:
                continue
            if cap is not None:
                cap -= units
            per_unit = _per_unit(voucher.discount_type, voucher.value, lp.line.item.unit)
            apply(lp, "voucher", voucher.id, units * per_unit, units)

    # 4. external vouchers with a sku: `value` off each unit, `quantity` units at most
    for ext in external:
        if ext.sku is None:
            continue
        cap = ext.quantity
        for lp in canonical:
            item = lp.line.item
            if item.sku != ext.sku:
                continue
            units = item.quantity if cap is None else min(cap, item.quantity)
            if units <= 0:
                continue
            if cap is not None:
                cap -= units
            if item.promoted and not ext.apply_to_promotion:
                # calculated against the regular price: the promotion's saving counts towards it
                per_unit = max(ZERO, item.unit - max(ZERO, item.regular_unit - ext.value))
            else:
                per_unit = min(ext.value, item.unit)
            apply(lp, "external", ext.id, units * per_unit, units)

    # 5. basket deals
    for deal in sorted((d for d in deals if d.apply_to == BASKET), key=lambda d: d.id):
        if budget.remaining < deal.min_spend or budget.remaining <= 0:
            continue
        wanted = _percent(budget.remaining, deal.value) if deal.discount_type == PERCENT else deal.value
        basket.append(Applied("deal", deal.id, budget.take(wanted)))

    # 6. Let'sTrade BASKET vouchers
    for voucher in sorted((v for v in vouchers if v.apply_to == BASKET), key=lambda v: v.id):
        wanted = _percent(budget.remaining, voucher.value) if voucher.discount_type == PERCENT else voucher.value
        basket.append(Applied("voucher", voucher.id, budget.take(wanted)))

    # 7. external vouchers without a sku: `value` off the basket
    for ext in external:
        if ext.sku is None:
            basket.append(Applied("external", ext.id, budget.take(ext.value)))

    # the P code: wallet, then loan, then card
    payments: dict[str, Decimal] = {}
    if funds is not None:
        for source, available in (("wallet", funds.wallet), ("loan", funds.loan), ("card", funds.card)):
            payments[source] = budget.take(max(ZERO, available))
    return Pricing(due, results, basket, payments, money(budget.remaining))
