"""POS baskets in and out: the JSON of get/offerings and finalise (already checked against the spec)
parsed into pricing inputs with every bad field named, and the priced basket rendered back as the
document describes it. Pure: no HTTP."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from mock_server.apis.letstrade_pos.pricing import (
    BASKET,
    MAX_AMOUNT,
    PRODUCT,
    ZERO,
    Condiment,
    ExternalVoucher,
    Item,
    Line,
    Pricing,
    as_number,
    fmt,
    money,
)
from mock_server.errors import FieldError

# the amount fields of a basket that are carried through (echoed, two places)
CARRIED = ("vat", "sub_total", "delivery_fee", "service_fee", "product_handling_fees")


class Reader:
    """Collects every problem of a document instead of stopping at the first one."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def decimal(self, raw: Any, path: str, *, money_amount: bool = True) -> Decimal:
        """A non-negative decimal string; money is rounded to two places and must fit the spec's
        DecimalString (at most 15 digits before the point)."""
        try:
            value = Decimal(str(raw))
        except (InvalidOperation, ValueError):
            self.fail(path, f'expected a decimal number sent as a string, e.g. "100.00"; got {raw!r}')
            return ZERO
        if not value.is_finite():
            self.fail(path, f"expected a finite decimal number; got {raw!r}")
            return ZERO
        if value < 0:
            self.fail(path, f"must be 0 or more; got {raw}")
            return ZERO
        if money_amount:
            value = money(value)
            self.limit(value, path)
        return value

    def limit(self, amount: Decimal, path: str, what: str = "the amount") -> None:
        if amount > MAX_AMOUNT:
            self.fail(path, f"{what} is {fmt(amount)}; at most {MAX_AMOUNT} is supported")

    def optional(self, source: Mapping[str, Any], key: str, path: str) -> Decimal | None:
        raw = source.get(key)
        return None if raw is None else self.decimal(raw, f"{path}.{key}")


def _item(reader: Reader, raw: Mapping[str, Any], path: str) -> Item:
    condiments = tuple(
        Condiment(
            price=reader.decimal(c.get("price", "0"), f"{path}.condiments[{i}].price"),
            quantity=reader.decimal(c.get("quantity", "1"), f"{path}.condiments[{i}].quantity", money_amount=False),
        )
        for i, c in enumerate(raw.get("condiments") or [])
        if isinstance(c, Mapping)
    )
    promotion = raw.get("promotion_price")
    item = Item(
        sku=str(raw.get("sku", "")),
        pid=str(raw.get("pid", "")),
        title=str(raw.get("title", "")),
        quantity=reader.decimal(raw.get("quantity", "0"), f"{path}.quantity", money_amount=False),
        price=reader.decimal(raw.get("price", "0"), f"{path}.price"),
        on_promotion=raw.get("on_promotion") is True,
        promotion_price=None if promotion is None else reader.decimal(promotion, f"{path}.promotion_price"),
        condiments=condiments,
    )
    reader.limit(item.amount, path, "quantity x (price + condiments)")
    return item


def parse_lines(reader: Reader, products: Sequence[Any], root: str) -> tuple[Line, ...]:
    lines: list[Line] = []
    for index, raw in enumerate(products):
        path = f"{root}[{index}]"
        if not isinstance(raw, Mapping):
            reader.fail(path, "expected a product object")
            continue
        add_ons = tuple(
            _item(reader, a, f"{path}.add_ons[{j}]")
            for j, a in enumerate(raw.get("add_ons") or [])
            if isinstance(a, Mapping)
        )
        lines.append(Line(index, _item(reader, raw, path), add_ons))
    return tuple(lines)


def parse_external(reader: Reader, vouchers: Sequence[Any], root: str) -> tuple[ExternalVoucher, ...]:
    found: list[ExternalVoucher] = []
    for index, raw in enumerate(vouchers):
        path = f"{root}[{index}]"
        if not isinstance(raw, Mapping):
            reader.fail(path, "expected a voucher object")
            continue
        quantity = raw.get("quantity")
        found.append(
            ExternalVoucher(
                id=str(raw.get("id", "")),
                title=None if raw.get("title") is None else str(raw["title"]),
                value=reader.decimal(raw.get("value", "0"), f"{path}.value"),
                sku=None if raw.get("sku") is None else str(raw["sku"]),
                quantity=None if quantity is None else reader.decimal(quantity, f"{path}.quantity", money_amount=False),
                apply_to_promotion=raw.get("apply_to_promotion") is True,
            )
        )
    return tuple(found)


@dataclass(frozen=True)
class ParsedBasket:
    uuid: str
    total: Decimal
    due: Decimal  # what the POS says is still to pay before Let'sTrade acts
    discount: Decimal | None  # the POS's own `discount` field
    carried: dict[str, Decimal]
    lines: tuple[Line, ...]
    external: tuple[ExternalVoucher, ...]


def parse_basket(reader: Reader, basket: Mapping[str, Any], *, due_field: str, root: str = "basket") -> ParsedBasket:
    """`due_field`: `outstanding` on get/offerings, `outstanding_amount` on finalise (optional
    there: the total stands in for it)."""
    total = reader.decimal(basket.get("total", "0"), f"{root}.total")
    raw_due = basket.get(due_field)
    due = total if raw_due is None else reader.decimal(raw_due, f"{root}.{due_field}")
    carried = {key: value for key in CARRIED if (value := reader.optional(basket, key, root)) is not None}
    return ParsedBasket(
        uuid=str(basket.get("uuid", "")),
        total=total,
        due=due,
        discount=reader.optional(basket, "discount", root),
        carried=carried,
        lines=parse_lines(reader, basket.get("product_list") or [], f"{root}.product_list"),
        external=parse_external(reader, basket.get("external_vouchers") or [], f"{root}.external_vouchers"),
    )


# -- rendering -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Names:
    """What the rendering needs to know about the rules the pricing applied."""

    voucher_title: Callable[[str], str]
    deal_title: Callable[[str], str]
    redemption_id: Callable[[str], str]  # subscription id -> this basket's redemption id


def _amounts(parsed: ParsedBasket, pricing: Pricing, discount: Decimal) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uuid": parsed.uuid,
        "total": fmt(parsed.total),
        "outstanding_amount": fmt(pricing.outstanding),
        "service_fee": fmt(parsed.carried.get("service_fee", ZERO)),
        "product_handling_fees": fmt(parsed.carried.get("product_handling_fees", ZERO)),
    }
    for key in ("vat", "sub_total", "delivery_fee"):
        if key in parsed.carried:
            out[key] = fmt(parsed.carried[key])
    out["discount"] = fmt(discount)
    return out


def _payments(pricing: Pricing, shown: Sequence[str]) -> dict[str, Any]:
    return {source: {"amount": as_number(pricing.payments.get(source, ZERO))} for source in shown}


def offered_basket(
    basket: Mapping[str, Any],
    parsed: ParsedBasket,
    pricing: Pricing,
    names: Names,
    shown_payments: Sequence[str],
) -> dict[str, Any]:
    """The `basket` of a get/offerings answer."""
    out = _amounts(parsed, pricing, (parsed.discount or ZERO) + pricing.discount)
    products: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []
    raw_products = basket.get("product_list") or []
    for lp in pricing.lines:
        product = dict(raw_products[lp.line.position])
        product["vouchers"] = [
            {
                "id": a.rule_id,
                "title": names.voucher_title(a.rule_id),
                "apply_to": PRODUCT,
                "sku": lp.line.item.sku,
                "discount": fmt(a.discount),
                "discounted_price": fmt(a.after if a.after is not None else lp.net),
            }
            for a in lp.of_kind("voucher")
            if a.discount > 0
        ]
        deal = next((a for a in lp.of_kind("deal") if a.discount > 0), None)
        product["deal"] = (
            None
            if deal is None
            else {"id": deal.rule_id, "title": names.deal_title(deal.rule_id), "discount": fmt(deal.discount)}
        )
        sub = next((a for a in lp.of_kind("subscription") if a.discount > 0), None)
        product["subscription"] = (
            None if sub is None else {"redemption_id": names.redemption_id(sub.rule_id), "discount": fmt(sub.discount)}
        )
        if sub is not None:
            subscriptions.append(
                {
                    "redemption_id": names.redemption_id(sub.rule_id),
                    "product_pid": lp.line.item.pid,
                    "product_title": lp.line.item.title,
                    "discount": fmt(sub.discount),
                }
            )
        product["condiments"] = list(product.get("condiments") or [])
        products.append(product)
    out["product_list"] = products
    out.update(_payments(pricing, shown_payments))
    out["vouchers"] = [
        {
            "id": a.rule_id,
            "title": names.voucher_title(a.rule_id),
            "apply_to": BASKET,
            "discount": as_number(a.discount),
        }
        for a in pricing.basket
        if a.kind == "voucher" and a.discount > 0
    ]
    out["deals"] = [
        {"id": a.rule_id, "title": names.deal_title(a.rule_id), "discount": fmt(a.discount)}
        for a in pricing.basket
        if a.kind == "deal" and a.discount > 0
    ]
    out["subscriptions"] = subscriptions
    external_discount: dict[str, Decimal] = {}
    for a in pricing.applied("external"):
        external_discount[a.rule_id] = external_discount.get(a.rule_id, ZERO) + a.discount
    out["external_vouchers"] = [
        {**raw, "discount": fmt(external_discount.get(str(raw.get("id", "")), ZERO))}
        for raw in basket.get("external_vouchers") or []
    ]
    return out


def finalised_basket(
    basket: Mapping[str, Any],
    parsed: ParsedBasket,
    pricing: Pricing,
    shown_payments: Sequence[str],
) -> dict[str, Any]:
    """The `basket` of a finalise answer: the POS's vouchers and deals echoed (basket vouchers
    filtered to BASKET), the outstanding amount as Let'sTrade executed it."""
    discount = parsed.discount if parsed.discount is not None else pricing.discount
    out = _amounts(parsed, pricing, discount)
    products: list[dict[str, Any]] = []
    for raw in basket.get("product_list") or []:
        product = dict(raw)
        product["vouchers"] = list(product.get("vouchers") or [])
        product["deal"] = product.get("deal")
        product["condiments"] = list(product.get("condiments") or [])
        products.append(product)
    out["product_list"] = products
    out["vouchers"] = [
        v for v in basket.get("vouchers") or [] if isinstance(v, Mapping) and v.get("apply_to", BASKET) == BASKET
    ]
    out["deals"] = list(basket.get("deals") or [])
    out.update(_payments(pricing, shown_payments))
    return out
