"""The Let'sTrade POS use cases over the store: mint a code, get offerings (opens or refreshes the
QR bill), finalise (exactly once per code and per basket), refund or void, and the customer's app
selecting vouchers on an open bill. Pure and synchronous: every function checks everything first
and only then writes, so a refusal changes nothing and no two calls interleave."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from mock_server.apis.letstrade.customers import split_cell
from mock_server.apis.letstrade_pos import baskets
from mock_server.apis.letstrade_pos.baskets import Names, Reader
from mock_server.apis.letstrade_pos.codes import ACTIVE, FINALISED, TYPE_NAMES, Code
from mock_server.apis.letstrade_pos.pricing import (
    PRODUCT,
    ZERO,
    DealRule,
    ExternalVoucher,
    Funds,
    Line,
    Pricing,
    SubscriptionRule,
    VoucherRule,
    fmt,
    money,
    points_for,
    price,
)
from mock_server.apis.letstrade_pos.store import (
    AVAILABLE,
    OPEN,
    PARTIALLY_REFUNDED,
    REDEEMED,
    REFUNDED,
    VOIDED,
    CodeEffect,
    HeldVoucher,
    Order,
    PosStore,
    check_voucher,
    voucher_from,
)
from mock_server.clock import isoformat
from mock_server.errors import Conflict, FieldError, Gone, NotFound, ValidationFailed


# -- codes in a request ---------------------------------------------------------------------------
def check_request_codes(store: PosStore, now: datetime, raw: Sequence[str] | None) -> list[Code]:
    """The request's codes, or the refusal: 400 (duplicates, two codes of one type), 404 unknown,
    409 already finalised, 410 expired — the most telling first, every failing code listed."""
    values = [str(v) for v in raw or []]
    problems: list[FieldError] = []
    seen: dict[str, int] = {}
    types: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in seen:
            problems.append(FieldError(f"code[{index}]", f"duplicate of code[{seen[value]}]; send each code once"))
            continue
        seen[value] = index
        kind = value[:1]
        if kind in types:
            problems.append(
                FieldError(
                    f"code[{index}]",
                    f"only one {TYPE_NAMES.get(kind, kind)} ({kind}) code per transaction; code[{types[kind]}] is one",
                )
            )
        types.setdefault(kind, index)
    if problems:
        raise ValidationFailed("The code list is invalid", problems)
    unknown: list[FieldError] = []
    used: list[FieldError] = []
    expired: list[FieldError] = []
    found: list[Code] = []
    for index, value in enumerate(values):
        code = store.codes.get(value)
        where = f"code[{index}]"
        if code is None:
            unknown.append(FieldError(where, "unknown code; ask the customer for the code shown in the app"))
        elif code.state != ACTIVE:
            how = "finalised" if code.state == FINALISED else "finalised and refunded"
            used.append(FieldError(where, f"already {how} (order {code.order_id}); a code is used once"))
        elif code.expired(now):
            expired.append(
                FieldError(where, f"expired at {isoformat(code.expires_at)}, 10 minutes after it was generated")
            )
        else:
            found.append(code)
    every = unknown + used + expired
    if unknown:
        raise NotFound(f"Code {_code_of(unknown[0], values)} was not found", every)
    if used:
        raise Conflict(f"Code {_code_of(used[0], values)} was already finalised and cannot be used again", every)
    if expired:
        raise Gone(f"Code {_code_of(expired[0], values)} has expired; a new code must be generated and passed", every)
    return found


def _code_of(error: FieldError, values: list[str]) -> str:
    return values[int(error.field[5:-1])]


# -- the customer ---------------------------------------------------------------------------------
@dataclass
class UserPlan:
    """Who the basket belongs to: an existing customer, one to create, or nobody."""

    user_id: str | None = None
    create: dict[str, Any] | None = None

    def commit(self, store: PosStore, now: datetime) -> str | None:
        if self.create is not None:
            return store.customers.create(now, **self.create).id
        return self.user_id


def plan_user(store: PosStore, user: Mapping[str, Any] | None, codes: Sequence[Code], root: str) -> UserPlan:
    """`user._id`, else the codes' owner, else find-or-create by `cell_number` (seed 004), else
    find by e-mail."""
    user = user or {}
    if user.get("_id") is not None:
        user_id = str(user["_id"])
        if store.customer(user_id) is None:
            raise NotFound(
                f"No Let'sTrade customer has _id {user_id}",
                [FieldError(f"{root}._id", "unknown customer id; omit it to find the customer by cell_number")],
            )
        return UserPlan(user_id)
    if codes:
        return UserPlan(codes[0].user_id)
    return find_or_create(store, user, root, create=True)


def find_or_create(store: PosStore, user: Mapping[str, Any], root: str, *, create: bool) -> UserPlan:
    cell = user.get("cell_number")
    country = user.get("cell_country_code")
    email = user.get("email")
    if cell is not None:
        digits, _ = split_cell(str(cell), str(country) if country else None)
        if not digits:
            raise ValidationFailed(
                f"{root}.cell_number has no digits",
                [FieldError(f"{root}.cell_number", f"expected a phone number such as 27721234565; got {cell!r}")],
            )
        found = store.customers.find_by_cell(str(cell), str(country) if country else None)
        if found is not None:
            return UserPlan(found.id)
    if email is not None:
        by_email = store.customers.find_by_email(str(email))
        if by_email is not None:
            if cell is None:
                return UserPlan(by_email.id)
            raise Conflict(  # stored state decides, not the request: 409 (found by the thorough fuzz run)
                f"{root}.email belongs to another Let'sTrade customer",
                [
                    FieldError(
                        f"{root}.email",
                        f"{email} belongs to customer {by_email.id}, whose cell number is not {cell}; "
                        "send that customer's _id or cell_number",
                    )
                ],
            )
    if cell is None or not create:
        return UserPlan(None)
    fields: dict[str, Any] = {"cell_number": str(cell)}
    for key in ("cell_country_code", "email", "name", "surname"):
        if user.get(key) is not None:
            fields[key] = str(user[key])
    return UserPlan(create=fields)


# -- what applies to a basket ---------------------------------------------------------------------
@dataclass
class Rules:
    vouchers: list[VoucherRule] = field(default_factory=list)
    owner: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # voucher id -> (user, code|None)
    deals: list[DealRule] = field(default_factory=list)
    subscriptions: list[SubscriptionRule] = field(default_factory=list)
    funds: Funds | None = None
    payer: str | None = None
    shown_payments: list[str] = field(default_factory=list)

    def add_voucher(self, held: HeldVoucher, user_id: str, code: str | None) -> None:
        if held.status == AVAILABLE and held.id not in self.owner:
            self.owner[held.id] = (user_id, code)
            self.vouchers.append(held.rule())


def rules_for(store: PosStore, order: Order, codes: Sequence[Code], *, with_funds: bool) -> Rules:
    rules = Rules()
    for code in codes:
        if code.type != "R":
            continue
        account = store.account(code.user_id)
        wanted = code.voucher_ids or tuple(account.vouchers)
        for voucher_id in wanted:
            held = account.vouchers.get(voucher_id)
            if held is not None:
                rules.add_voucher(held, code.user_id, code.code)
    for user_id, voucher_id in order.app_vouchers:
        held = store.account(user_id).vouchers.get(voucher_id)
        if held is not None:
            rules.add_voucher(held, user_id, None)
    if order.user_id is not None or codes:
        rules.deals = [deal.rule for deal in sorted(store.deals.values(), key=lambda d: d.rule.id)]
    if order.user_id is not None:
        rules.subscriptions = [r for s in store.user_subscriptions(order.user_id) if (r := s.rule()) is not None]
    payer = next((c for c in codes if c.type == "P"), None)
    if payer is not None and with_funds:
        account = store.account(payer.user_id)
        rules.funds = account.funds()
        rules.payer = payer.user_id
        rules.shown_payments = ["wallet"]
        if account.has_loan():
            rules.shown_payments.append("loan")
        if account.has_card():
            rules.shown_payments.append("card")
    return rules


def run_pricing(lines: Sequence[Line], due: Decimal, rules: Rules, external: Sequence[ExternalVoucher]) -> Pricing:
    return price(
        lines,
        due,
        vouchers=rules.vouchers,
        external=external,
        deals=rules.deals,
        subscriptions=rules.subscriptions,
        funds=rules.funds,
    )


def _names(store: PosStore, order: Order, rules: Rules) -> Names:
    titles = {v.id: v.title for v in rules.vouchers}
    return Names(
        voucher_title=lambda vid: titles.get(vid, vid),
        deal_title=lambda did: store.deals[did].rule.title if did in store.deals else did,
        redemption_id=order.redemption_id,
    )


def _record(order: Order, pricing: Pricing) -> None:
    order.due = pricing.due
    order.discount = pricing.discount
    order.outstanding = pricing.outstanding
    order.payments = dict(pricing.payments)


def _parse(body: Mapping[str, Any], due_field: str) -> baskets.ParsedBasket:
    reader = Reader()
    parsed = baskets.parse_basket(reader, body["basket"], due_field=due_field)
    if reader.errors:
        raise ValidationFailed("The basket is invalid", reader.errors)
    return parsed


def _already_finalised(order: Order) -> Conflict:
    return Conflict(
        f"Basket {order.transaction_id} at store {order.store_id}, terminal {order.terminal_id} was already "
        f"finalised (order {order.order_id}, status {order.status}); a basket is finalised once",
        [FieldError("basket.uuid", "already finalised; a new transaction needs a new basket uuid")],
    )


# -- get/offerings --------------------------------------------------------------------------------
def get_offerings(store: PosStore, now: datetime, body: Mapping[str, Any]) -> dict[str, Any]:
    """Read-only for balances, vouchers and points; opens or refreshes the bill."""
    parsed = _parse(body, "outstanding")
    codes = check_request_codes(store, now, body.get("code"))
    key = (str(body["store_id"]), str(body["terminal_id"]), parsed.uuid)
    order = store.bill(key)
    if order is not None and order.status != OPEN:
        raise _already_finalised(order)
    plan = plan_user(store, body["basket"].get("user"), codes, "basket.user")
    # -- nothing below refuses ------------------------------------------------------------------
    user_id = plan.commit(store, now)
    if order is None:
        order = store.new_order(key, now)
    if user_id is not None:
        order.user_id = user_id
    order.codes = [c.code for c in codes]
    order.lines, order.total, order.pos_due, order.external = parsed.lines, parsed.total, parsed.due, parsed.external
    order.offerings_calls += 1
    order.updated_at = now
    rules = rules_for(store, order, codes, with_funds=True)
    pricing = run_pricing(parsed.lines, parsed.due, rules, parsed.external)
    _record(order, pricing)
    return {
        "order_id": order.order_id,
        "order_code": order.order_code,
        "basket": baskets.offered_basket(
            body["basket"], parsed, pricing, _names(store, order, rules), rules.shown_payments
        ),
    }


# -- finalise -------------------------------------------------------------------------------------
def finalise(store: PosStore, now: datetime, body: Mapping[str, Any]) -> dict[str, Any]:
    """Executes the codes' rules exactly once: charges the P code's owner, burns vouchers, awards
    points for the E code, creates (or closes) the order."""
    basket = body["basket"]
    if "external_vouchers" in basket:  # the spec says so too; kept here so the rule holds without it
        raise ValidationFailed(
            "basket.external_vouchers is not accepted on finalise: external vouchers are only processed during "
            "get/offerings",
            [
                FieldError(
                    "basket.external_vouchers", "not accepted on /v1/finalise/offerings; send them to /v1/get/offerings"
                )
            ],
        )
    parsed = _parse(body, "outstanding_amount")
    codes = check_request_codes(store, now, body.get("code"))
    key = (str(body["store_id"]), str(body["terminal_id"]), parsed.uuid)
    order = store.bill(key)
    if order is not None and order.status != OPEN:
        raise _already_finalised(order)
    plan = plan_user(store, basket.get("user"), codes, "basket.user")
    if order is not None and order.pos_due is not None and order.total == parsed.total:
        due = order.pos_due  # the bill's amount due before Let'sTrade, as the POS reported it
    else:
        due = parsed.due
    # -- nothing below refuses ------------------------------------------------------------------
    user_id = plan.commit(store, now)
    if order is None:
        order = store.new_order(key, now)
    if user_id is not None:
        order.user_id = user_id
    rules = rules_for(store, order, codes, with_funds=True)
    pricing = run_pricing(parsed.lines, due, rules, order.external)
    effects = {code.code: CodeEffect(code.code, code.type, code.user_id) for code in codes}

    payer = next((c for c in codes if c.type == "P"), None)
    if payer is not None:
        account = store.account(payer.user_id)
        effect = effects[payer.code]
        effect.wallet = pricing.payments.get("wallet", ZERO)
        effect.loan = pricing.payments.get("loan", ZERO)
        effect.card = pricing.payments.get("card", ZERO)
        account.wallet_balance -= effect.wallet
        account.loan_used += effect.loan
        account.card_used += effect.card

    burned: set[str] = set()
    for applied in pricing.applied("voucher"):
        if applied.discount <= 0 or applied.rule_id in burned:
            continue
        burned.add(applied.rule_id)
        owner, code_value = rules.owner[applied.rule_id]
        held = store.account(owner).vouchers[applied.rule_id]
        held.status, held.order_id = REDEEMED, order.order_id
        if code_value is not None:
            effects[code_value].vouchers.append(held.id)
        else:
            order.burned_app_vouchers.append((owner, held.id))

    for code in codes:
        if code.type == "E":
            points = points_for(pricing.to_pay, code.points_rate)
            store.account(code.user_id).points += points
            effects[code.code].points = points
            order.points_awarded += points

    for applied in pricing.applied("subscription"):
        if applied.discount <= 0 or applied.units is None:
            continue
        units = int(applied.units)
        sub = store.subscriptions[applied.rule_id]
        if sub.remaining is not None:
            sub.remaining = max(0, sub.remaining - units)
        order.subscription_units[sub.id] = order.subscription_units.get(sub.id, 0) + units

    for code in codes:
        code.state, code.order_id, code.finalised_at = FINALISED, order.order_id, now
    order.codes = [c.code for c in codes]
    order.lines, order.total = parsed.lines, parsed.total
    order.effects = effects
    order.status, order.finalised_at, order.updated_at = FINALISED, now, now
    _record(order, pricing)
    return {
        "client_id": order.client_id,
        "order_id": order.order_id,
        "order_code": order.order_code,
        "basket": baskets.finalised_basket(basket, parsed, pricing, rules.shown_payments),
    }


# -- refund ---------------------------------------------------------------------------------------
def _reverse(store: PosStore, effect: CodeEffect) -> None:
    account = store.account(effect.user_id)
    account.wallet_balance += effect.wallet
    account.loan_used = max(ZERO, account.loan_used - effect.loan)
    account.card_used = max(ZERO, account.card_used - effect.card)
    account.points = max(0, account.points - effect.points)
    for voucher_id in effect.vouchers:
        held = account.vouchers.get(voucher_id)
        if held is not None:
            held.status, held.order_id = AVAILABLE, None
    effect.refunded = True


def refund(store: PosStore, now: datetime, body: Mapping[str, Any]) -> dict[str, Any]:
    order_id = str(body["order_id"])
    order = store.orders.get(order_id)
    if order is None or order.store_id != str(body["store_id"]) or order.status == OPEN:
        raise NotFound(
            f"Order {order_id} was not found for store {body['store_id']}",
            [FieldError("order_id", "No finalised order with this id exists for this store")],
        )
    if order.status == VOIDED:
        raise Conflict(
            f"Order {order_id} was already voided; nothing is left to refund",
            [FieldError("order_id", "already voided")],
        )
    requested = body.get("code")
    if requested is None:  # void the whole basket
        reversed_codes = [effect.code for effect in order.effects.values() if not effect.refunded]
        for effect in order.effects.values():
            if not effect.refunded:
                _reverse(store, effect)
        for user_id, voucher_id in order.burned_app_vouchers:
            held = store.account(user_id).vouchers.get(voucher_id)
            if held is not None:
                held.status, held.order_id = AVAILABLE, None
        for sub_id, units in order.subscription_units.items():
            sub = store.subscriptions.get(sub_id)
            if sub is not None and sub.remaining is not None:
                sub.remaining += units
        for code_value in reversed_codes:
            store.codes[code_value].state, store.codes[code_value].refunded_at = REFUNDED, now
        order.status, order.updated_at = VOIDED, now
        order.refunds.append(
            {"time": isoformat(now), "codes": reversed_codes, "voided": True, "reason": body.get("reason")}
        )
        return {"order_id": order_id, "refunded_codes": reversed_codes, "voided": True, "status": VOIDED}

    # each code at most once: letstrade-pos.yaml RefundRequest.code `x-unique-by`, refused (400, naming
    # the repeat) by the validation stage (`mock_server.rules`) before this runs
    values = list(dict.fromkeys(str(v) for v in requested))
    missing: list[FieldError] = []
    done: list[FieldError] = []
    for index, value in enumerate(values):
        if value not in order.effects:
            missing.append(FieldError(f"code[{index}]", f"Code {value} is not part of order {order_id}"))
        elif order.effects[value].refunded:
            done.append(FieldError(f"code[{index}]", "Already refunded"))
    if missing:
        raise NotFound(f"Code {values[int(missing[0].field[5:-1])]} is not part of order {order_id}", missing + done)
    if done:
        raise Conflict(f"Code {values[int(done[0].field[5:-1])]} was already refunded for order {order_id}", done)
    for value in values:
        _reverse(store, order.effects[value])
        store.codes[value].state, store.codes[value].refunded_at = REFUNDED, now
    all_refunded = all(effect.refunded for effect in order.effects.values())
    order.status = REFUNDED if all_refunded else PARTIALLY_REFUNDED
    order.updated_at = now
    order.refunds.append({"time": isoformat(now), "codes": values, "voided": False, "reason": body.get("reason")})
    return {"order_id": order_id, "refunded_codes": values, "voided": False, "status": REFUNDED}


# -- minting (admin) ------------------------------------------------------------------------------
def mint_code(store: PosStore, now: datetime, body: Mapping[str, Any]) -> Code:
    """`POST /__admin/letstrade-pos/codes` (a fixed interface, see README). Amounts set the owner's account."""
    user = body.get("user")
    if user is None:
        plan = UserPlan(store.default_customer_id)
    elif user.get("_id") is not None:
        plan = plan_user(store, user, (), "user")
    else:
        plan = find_or_create(store, user, "user", create=False)
        if plan.user_id is None:
            keys = ("cell_number", "cell_country_code", "email", "name", "surname")
            fields = {k: str(user[k]) for k in keys if user.get(k) is not None}
            plan = UserPlan(create=fields)
    problems: list[FieldError] = []
    vouchers = list(body.get("vouchers") or [])
    seen: set[str] = set()
    for index, raw in enumerate(vouchers):
        path = f"vouchers[{index}]"
        problems.extend(FieldError(f, m) for f, m in check_voucher(raw, path))
        if raw["id"] in seen:
            problems.append(FieldError(f"{path}.id", f"duplicate voucher id {raw['id']}"))
        seen.add(raw["id"])
    if problems:
        raise ValidationFailed("The code cannot be minted", problems)
    if plan.user_id is not None:
        account = store.accounts.get(plan.user_id)
        redeemed = [
            FieldError(f"vouchers[{i}].id", f"the customer's voucher {raw['id']} was redeemed (order {held.order_id})")
            for i, raw in enumerate(vouchers)
            if account is not None and (held := account.vouchers.get(raw["id"])) is not None and held.status == REDEEMED
        ]
        if redeemed:
            raise Conflict("The customer already redeemed a voucher with this id; use a new voucher id", redeemed)
    # -- nothing below refuses ------------------------------------------------------------------
    user_id = plan.commit(store, now)
    assert user_id is not None
    account = store.account(user_id)
    if body.get("wallet_balance") is not None:
        account.wallet_balance = money(Decimal(str(body["wallet_balance"])))
    if body.get("loan_limit") is not None:
        account.loan_limit = money(Decimal(str(body["loan_limit"])))
    if body.get("card_limit") is not None:
        account.card_limit = money(Decimal(str(body["card_limit"])))
    for raw in vouchers:
        held = voucher_from(raw)
        account.vouchers[held.id] = held
    rate = Decimal(str(body.get("points_per_currency_unit", "1")))
    voucher_ids = tuple(str(raw["id"]) for raw in vouchers) if body["type"] == "R" else ()
    return store.mint(str(body["type"]), user_id, now, voucher_ids, rate)


# -- the QR slip flow (admin: the customer's app) -----------------------------------------------------
@dataclass
class AppSelection:
    """Vouchers the customer picked in the app, and the append-vouchers request for the POS."""

    order_id: str
    user_id: str
    voucher_ids: list[str]
    grants: list[HeldVoucher]
    request: dict[str, Any]


def prepare_app_vouchers(
    store: PosStore, now: datetime, store_id: str, terminal_id: str, transaction_id: str, body: Mapping[str, Any]
) -> AppSelection:
    order = store.bill((store_id, terminal_id, transaction_id))
    if order is None:
        raise NotFound(
            f"No open bill {transaction_id} at store {store_id}, terminal {terminal_id}: the POS prints the QR "
            "after calling get/offerings for that basket",
            [FieldError("transaction_id", "no get/offerings was seen for this store_id + terminal_id + basket.uuid")],
        )
    if order.status != OPEN:
        raise Conflict(
            f"Bill {transaction_id} is already closed (order {order.order_id}, {order.status}); vouchers can only be "
            "appended before finalise",
            [FieldError("transaction_id", "bill already finalised")],
        )
    user_id = str(body.get("user_id") or order.user_id or store.default_customer_id)
    if store.customer(user_id) is None:
        raise NotFound(f"No Let'sTrade customer has id {user_id}", [FieldError("user_id", "unknown customer id")])
    account = store.account(user_id)
    skus = {line.item.sku for line in order.lines}
    problems: list[FieldError] = []
    conflicts: list[FieldError] = []
    missing: list[FieldError] = []
    chosen: list[HeldVoucher] = []
    grants: list[HeldVoucher] = []
    on_bill = {voucher_id for _, voucher_id in order.app_vouchers}
    for index, raw in enumerate(body["vouchers"]):
        path = f"vouchers[{index}]"
        voucher_id = str(raw["id"])
        if voucher_id in (v.id for v in chosen):
            problems.append(FieldError(f"{path}.id", f"duplicate voucher id {voucher_id}"))
            continue
        held = account.vouchers.get(voucher_id)
        defined = all(raw.get(k) is not None for k in ("apply_to", "discount_type", "value"))
        if held is None and defined:
            found = [FieldError(f, m) for f, m in check_voucher(dict(raw), path)]
            if found:
                problems.extend(found)
                continue
            held = voucher_from(dict(raw))
            grants.append(held)
        if held is None:
            message = f"customer {user_id} holds no voucher {voucher_id}"
            message += "; send apply_to, discount_type and value to grant it"
            missing.append(FieldError(f"{path}.id", message))
            continue
        if held.status == REDEEMED:
            conflicts.append(FieldError(f"{path}.id", f"already redeemed (order {held.order_id})"))
            continue
        if voucher_id in on_bill:
            conflicts.append(FieldError(f"{path}.id", "already appended to this bill"))
            continue
        if held.apply_to == PRODUCT and held.sku not in skus:
            problems.append(FieldError(f"{path}.id", f"a PRODUCT voucher for sku {held.sku}, which is not on the bill"))
            continue
        chosen.append(held)
    if problems:
        raise ValidationFailed("The selected vouchers cannot be applied to this bill", problems)
    if missing:
        raise NotFound("A selected voucher is not held by the customer", missing)
    if conflicts:
        raise Conflict("A selected voucher cannot be used again", conflicts)

    codes = [
        c for v in order.codes if (c := store.codes.get(v)) is not None and c.state == ACTIVE and not c.expired(now)
    ]
    pos_due = order.pos_due if order.pos_due is not None else order.total
    rules = rules_for(store, order, codes, with_funds=False)
    before = run_pricing(order.lines, pos_due, rules, order.external)
    for held in chosen:
        rules.add_voucher(held, user_id, None)
    after = run_pricing(order.lines, pos_due, rules, order.external)
    discounts: dict[str, Decimal] = {}
    for applied in after.applied("voucher"):
        discounts[applied.rule_id] = discounts.get(applied.rule_id, ZERO) + applied.discount
    sent: list[dict[str, Any]] = []
    for held in chosen:
        item: dict[str, Any] = {
            "id": held.id,
            "title": held.title,
            "apply_to": held.apply_to,
            "discount_type": held.discount_type,
            "value": f"{held.value:f}",
            "discount": fmt(discounts.get(held.id, ZERO)),
        }
        if held.sku is not None:
            item["sku"] = held.sku
        if held.quantity is not None:
            item["quantity"] = f"{held.quantity:f}"
        sent.append(item)
    reference = body.get("reference") or f"{order.order_code} " + ", ".join(h.title for h in chosen)
    request = {
        "uid": order.order_id,
        "reference": str(reference),
        "store_id": store_id,
        "terminal_id": terminal_id,
        "transaction_id": transaction_id,
        "original_amount": fmt(before.to_pay),
        "discount_amount": fmt(before.to_pay - after.to_pay),
        "remaining_amount": fmt(after.to_pay),
        "vouchers": sent,
    }
    return AppSelection(order.order_id, user_id, [h.id for h in chosen], grants, request)


def commit_app_vouchers(store: PosStore, now: datetime, selection: AppSelection) -> tuple[bool, str]:
    """After the POS accepted: attach the vouchers to the bill, unless it changed meanwhile."""
    order = store.orders.get(selection.order_id)
    if order is None or order.status != OPEN:
        return False, "the bill was finalised while the POS was answering; nothing was attached"
    account = store.account(selection.user_id)
    granted = {h.id: h for h in selection.grants}
    for voucher_id in selection.voucher_ids:
        held = account.vouchers.get(voucher_id) or granted.get(voucher_id)
        if held is None or held.status != AVAILABLE:
            return False, f"voucher {voucher_id} was redeemed while the POS was answering; nothing was attached"
    for voucher_id in selection.voucher_ids:
        if voucher_id not in account.vouchers:
            account.vouchers[voucher_id] = granted[voucher_id]
        order.app_vouchers.append((selection.user_id, voucher_id))
    if order.user_id is None:
        order.user_id = selection.user_id
    order.updated_at = now
    return True, "the vouchers were attached to the bill"
