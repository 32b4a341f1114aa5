"""All state of the Let'sTrade POS API, behind synchronous methods (no awaits, so a read-check-write
in one method is atomic on the event loop): per-customer accounts (wallet, loan and card limits,
points, vouchers), codes, deals, subscriptions, and orders — an order is the QR bill while it is
OPEN, keyed by `store_id + terminal_id + basket.uuid`. Customers themselves live in the shared
Let'sTrade customer store. Pure: no HTTP, time from the caller."""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mock_server.apis.letstrade.customers import Customer, CustomerStore
from mock_server.apis.letstrade.identity import Identity
from mock_server.apis.letstrade_pos import codes as codes_mod
from mock_server.apis.letstrade_pos.codes import Code
from mock_server.apis.letstrade_pos.pricing import (
    PRODUCT,
    ZERO,
    DealRule,
    ExternalVoucher,
    Funds,
    Line,
    SubscriptionRule,
    VoucherRule,
    fmt,
)
from mock_server.clock import isoformat
from mock_server.spec import Spec, build_spec, load_document

AVAILABLE = "AVAILABLE"
REDEEMED = "REDEEMED"

OPEN = "OPEN"
FINALISED = "FINALISED"
PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
REFUNDED = "REFUNDED"
VOIDED = "VOIDED"
ORDER_STATUSES = (OPEN, FINALISED, PARTIALLY_REFUNDED, REFUNDED, VOIDED)

BillKey = tuple[str, str, str]  # store_id, terminal_id, basket.uuid (the QR flow's transaction_id)


@dataclass
class HeldVoucher:
    """A Let'sTrade voucher a customer holds."""

    id: str
    title: str
    apply_to: str
    discount_type: str
    value: Decimal
    sku: str | None = None
    quantity: Decimal | None = None
    status: str = AVAILABLE
    order_id: str | None = None  # the order that redeemed it

    def rule(self) -> VoucherRule:
        return VoucherRule(self.id, self.title, self.apply_to, self.discount_type, self.value, self.sku, self.quantity)

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "apply_to": self.apply_to,
            "discount_type": self.discount_type,
            "value": f"{self.value:f}",
            "status": self.status,
            "order_id": self.order_id,
        }
        if self.sku is not None:
            out["sku"] = self.sku
        if self.quantity is not None:
            out["quantity"] = f"{self.quantity:f}"
        return out


@dataclass
class Deal:
    rule: DealRule

    def view(self) -> dict[str, Any]:
        r = self.rule
        out: dict[str, Any] = {
            "id": r.id, "title": r.title, "apply_to": r.apply_to, "discount_type": r.discount_type,
            "value": f"{r.value:f}", "min_quantity": f"{r.min_quantity:f}", "min_spend": fmt(r.min_spend),
        }
        if r.sku is not None:
            out["sku"] = r.sku
        return out


@dataclass
class Subscription:
    id: str
    user_id: str
    title: str
    pids: frozenset[str]
    discount_type: str
    value: Decimal
    units: int = 1  # units discounted per basket
    remaining: int | None = None  # units left; None = unlimited

    def rule(self) -> SubscriptionRule | None:
        units = self.units if self.remaining is None else min(self.units, self.remaining)
        if units <= 0:
            return None
        return SubscriptionRule(self.id, self.title, self.pids, self.discount_type, self.value, units)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "pids": sorted(self.pids), "discount_type": self.discount_type,
            "value": f"{self.value:f}", "units": self.units, "remaining": self.remaining,
        }


@dataclass
class Account:
    """A customer's Let'sTrade money and rewards. Limits are credit lines; `*_used` is drawn."""

    user_id: str
    wallet_balance: Decimal = ZERO
    loan_limit: Decimal = ZERO
    loan_used: Decimal = ZERO
    card_limit: Decimal = ZERO
    card_used: Decimal = ZERO
    points: int = 0
    vouchers: dict[str, HeldVoucher] = field(default_factory=dict)

    @property
    def loan_available(self) -> Decimal:
        return max(ZERO, self.loan_limit - self.loan_used)

    @property
    def card_available(self) -> Decimal:
        return max(ZERO, self.card_limit - self.card_used)

    def funds(self) -> Funds:
        return Funds(self.wallet_balance, self.loan_available, self.card_available)

    def has_card(self) -> bool:
        return self.card_limit > 0

    def has_loan(self) -> bool:
        return self.loan_limit > 0


@dataclass
class CodeEffect:
    """What finalising one code did, so that a refund can reverse exactly that."""

    code: str
    type: str
    user_id: str
    wallet: Decimal = ZERO
    loan: Decimal = ZERO
    card: Decimal = ZERO
    vouchers: list[str] = field(default_factory=list)
    points: int = 0
    refunded: bool = False

    def view(self) -> dict[str, Any]:
        return {
            "code": self.code, "type": self.type, "user_id": self.user_id, "wallet": fmt(self.wallet),
            "loan": fmt(self.loan), "card": fmt(self.card), "vouchers": list(self.vouchers),
            "points": self.points, "refunded": self.refunded,
        }


@dataclass
class Order:
    """An order in Let'sTrade. OPEN while it is a bill (get/offerings seen, no finalise yet)."""

    order_id: str
    order_code: str
    client_id: str
    store_id: str
    terminal_id: str
    transaction_id: str
    created_at: datetime
    updated_at: datetime
    status: str = OPEN
    user_id: str | None = None
    codes: list[str] = field(default_factory=list)
    # the basket as last priced
    lines: tuple[Line, ...] = ()
    total: Decimal = ZERO
    pos_due: Decimal | None = None  # the POS's `outstanding` on the last get/offerings
    due: Decimal = ZERO
    discount: Decimal = ZERO
    outstanding: Decimal = ZERO
    payments: dict[str, Decimal] = field(default_factory=dict)
    external: tuple[ExternalVoucher, ...] = ()  # processed on get/offerings, applied again at finalise
    app_vouchers: list[tuple[str, str]] = field(default_factory=list)  # (user_id, voucher id) from the QR flow
    offerings_calls: int = 0
    finalised_at: datetime | None = None
    # what finalise did
    effects: dict[str, CodeEffect] = field(default_factory=dict)
    burned_app_vouchers: list[tuple[str, str]] = field(default_factory=list)
    subscription_units: dict[str, int] = field(default_factory=dict)
    points_awarded: int = 0
    refunds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> BillKey:
        return (self.store_id, self.terminal_id, self.transaction_id)

    def redemption_id(self, subscription_id: str) -> str:
        digest = hashlib.sha256(f"{self.order_id}:{subscription_id}".encode()).hexdigest()[:10].upper()
        return f"SUBRED-{digest}"

    def view(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "order_code": self.order_code,
            "client_id": self.client_id,
            "status": self.status,
            "store_id": self.store_id,
            "terminal_id": self.terminal_id,
            "transaction_id": self.transaction_id,
            "user_id": self.user_id,
            "codes": list(self.codes),
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
            "finalised_at": isoformat(self.finalised_at) if self.finalised_at else None,
            "offerings_calls": self.offerings_calls,
            "total": fmt(self.total),
            "due": fmt(self.due),
            "discount": fmt(self.discount),
            "outstanding_amount": fmt(self.outstanding),
            "payments": {source: fmt(amount) for source, amount in self.payments.items()},
            "products": len(self.lines),
            "external_vouchers": [v.id for v in self.external],
            "app_vouchers": [voucher_id for _, voucher_id in self.app_vouchers],
            "points_awarded": self.points_awarded,
            "effects": [effect.view() for effect in self.effects.values()],
            "refunds": list(self.refunds),
        }


class PosStore:
    """The state. Every method is synchronous; the flows (`flows.py`) compose them."""

    def __init__(
        self,
        identity: Identity,
        customers: CustomerStore,
        default_customer_id: str,
        seed: int,
        specs_dir: Path | None = None,
    ) -> None:
        self.identity = identity  # the shared Let'sTrade sign-in and tokens
        self.customers = customers
        self.client_id = identity.client_id
        self.default_customer_id = default_customer_id
        self._specs_dir = specs_dir
        self._provider: Spec | None = None
        self._code_rng = random.Random(f"{seed}:letstrade-pos:codes")
        self._order_rng = random.Random(f"{seed}:letstrade-pos:orders")
        self._order_numbers = itertools.count(48201)
        self.accounts: dict[str, Account] = {}
        self.codes: dict[str, Code] = {}
        self.orders: dict[str, Order] = {}
        self.bills: dict[BillKey, str] = {}
        self.deals: dict[str, Deal] = {}
        self.subscriptions: dict[str, Subscription] = {}

    def provider(self) -> Spec:
        """The POS's append-vouchers spec (`letstrade-pos-provider.yaml`), compiled once per store,
        on first use: the QR flow checks the POS's answers against it."""
        if self._provider is None:
            document = load_document("letstrade-pos-provider", self._specs_dir)
            self._provider = build_spec("letstrade-pos-provider", document)
        return self._provider

    # -- customers and accounts ---------------------------------------------------------------
    def customer(self, user_id: str) -> Customer | None:
        return self.customers.get(user_id)

    def account(self, user_id: str) -> Account:
        found = self.accounts.get(user_id)
        if found is None:
            found = self.accounts[user_id] = Account(user_id)
        return found

    def user_subscriptions(self, user_id: str) -> list[Subscription]:
        return sorted((s for s in self.subscriptions.values() if s.user_id == user_id), key=lambda s: s.id)

    # -- codes ------------------------------------------------------------------------------------
    def mint(self, code_type: str, user_id: str, now: datetime, voucher_ids: tuple[str, ...], rate: Decimal) -> Code:
        code = codes_mod.mint(
            self._code_rng, self.codes, code_type, user_id, now, voucher_ids=voucher_ids, points_rate=rate
        )
        self.codes[code.code] = code
        return code

    # -- orders -----------------------------------------------------------------------------------
    def bill(self, key: BillKey) -> Order | None:
        order_id = self.bills.get(key)
        return self.orders.get(order_id) if order_id else None

    def new_order(self, key: BillKey, now: datetime) -> Order:
        order_id = "".join(self._order_rng.choice("0123456789abcdef") for _ in range(24))
        while order_id in self.orders:
            order_id = "".join(self._order_rng.choice("0123456789abcdef") for _ in range(24))
        order = Order(
            order_id=order_id,
            order_code=f"LT-{next(self._order_numbers)}",
            client_id=self.client_id,
            store_id=key[0],
            terminal_id=key[1],
            transaction_id=key[2],
            created_at=now,
            updated_at=now,
        )
        self.orders[order_id] = order
        self.bills[key] = order_id
        return order

    # -- views --------------------------------------------------------------------------------------
    def code_view(self, code: Code, now: datetime) -> dict[str, Any]:
        return {
            "code": code.code,
            "type": code.type,
            "user_id": code.user_id,
            "status": code.status(now),
            "minted_at": isoformat(code.minted_at),
            "expires_at": isoformat(code.expires_at),
            "order_id": code.order_id,
            "voucher_ids": list(code.voucher_ids),
            "points_per_currency_unit": f"{code.points_rate:f}",
        }

    def user_view(self, customer: Customer, now: datetime) -> dict[str, Any]:
        account = self.accounts.get(customer.id) or Account(customer.id)  # a read creates nothing
        return {
            "user_id": customer.id,
            "name": customer.name,
            "surname": customer.surname,
            "email": customer.email,
            "cell_number": customer.cell_number,
            "cell_country_code": customer.cell_country_code,
            "wallet_balance": fmt(account.wallet_balance),
            "loan_limit": fmt(account.loan_limit),
            "loan_used": fmt(account.loan_used),
            "loan_available": fmt(account.loan_available),
            "card_limit": fmt(account.card_limit),
            "card_used": fmt(account.card_used),
            "card_available": fmt(account.card_available),
            "points": account.points,
            "vouchers": [v.view() for v in account.vouchers.values()],
            "subscriptions": [s.view() for s in self.user_subscriptions(customer.id)],
            "codes": [self.code_view(c, now) for c in self.codes.values() if c.user_id == customer.id],
        }


def voucher_from(raw: dict[str, Any]) -> HeldVoucher:
    """A voucher definition (minting body, fixtures, QR selection) already checked by `check_voucher`."""
    quantity = raw.get("quantity")
    return HeldVoucher(
        id=str(raw["id"]),
        title=str(raw.get("title") or raw["id"]),
        apply_to=str(raw["apply_to"]),
        discount_type=str(raw["discount_type"]),
        value=Decimal(str(raw["value"])),
        sku=None if raw.get("sku") is None else str(raw["sku"]),
        quantity=None if quantity is None else Decimal(str(quantity)),
    )


def check_voucher(raw: dict[str, Any], path: str) -> list[tuple[str, str]]:
    """Semantic checks of a voucher definition the schema cannot express."""
    problems: list[tuple[str, str]] = []
    if raw.get("apply_to") == PRODUCT and not raw.get("sku"):
        problems.append((f"{path}.sku", "is required for a PRODUCT voucher (the SKU it discounts)"))
    if raw.get("discount_type") == "PERCENT":
        try:
            if Decimal(str(raw.get("value"))) > 100:
                problems.append((f"{path}.value", "a PERCENT voucher's value is a percentage: at most 100"))
        except ArithmeticError:
            pass
    return problems
