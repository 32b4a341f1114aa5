"""LOKE events: what each one does to the state, the payload LOKE posts for it, and the deliveries
it fans out to. Pure: no I/O; time comes from the caller (the virtual clock).

The admin call `POST /__admin/loke/events` (a fixed interface, see README) makes an event happen:
`{"event": "<name>", "organization_id"?: "...", ...event data in LOKE's own field names}`.

- `customer.created`, data `customer {firstName, lastName, ...}`: a new customer (ULID id);
  posts customer.created.
- `customer.updated`, `customer {id, changed fields}`: profile fields replaced; customer.updated.
- `customer.updated-statistics`, `customer {id}`, `statistics {fields}`: statistics set;
  customer.updated-statistics.
- `payment.completed`, `payment {customer {id}, items?, ...}`: payment stored, totalSpend and
  lastSpentAt updated; payment.completed, then customer.updated-statistics.
- `payment.refunded`, `payment {id}`: payment refunded, totalSpend reduced; payment.refunded,
  then customer.updated-statistics.
- `order.created|accepted|rejected`, `order {id?, items?, total?}`, `customer {id}?`: an order
  stored, or an existing one moved to that status; order.<status>.
- `order.completed`: as above; with a customer, also a payment: order.completed, then
  payment.completed and customer.updated-statistics.

The seed: "When a customer spends by placing an order both a order.completed and a
payment.completed event are fired."
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mock_server.apis.loke import views
from mock_server.apis.loke.delivery import Delivery
from mock_server.apis.loke.signing import encode_body, sign
from mock_server.apis.loke.store import (
    PROFILE_FIELDS,
    STATISTICS_FIELDS,
    Customer,
    LokeStore,
    Order,
    OrgState,
    Payment,
)
from mock_server.errors import Conflict, FieldError, ValidationFailed

EVENT_NAMES = (
    "customer.created",
    "customer.updated",
    "customer.updated-statistics",
    "payment.completed",
    "payment.refunded",
    "order.created",
    "order.accepted",
    "order.rejected",
    "order.completed",
)
DEFAULT_BILLING_TYPE = "order/pickup"
DEFAULT_CURRENCY = "AUD"
# status an order must be in before the event (None: the order is new)
ORDER_TRANSITIONS: dict[str, tuple[str | None, ...]] = {
    "order.created": (None,),
    "order.accepted": (None, "created"),
    "order.rejected": (None, "created", "accepted"),
    "order.completed": (None, "created", "accepted"),
}
_AMOUNT_FIELDS = ("chargedAmount", "creditAmount", "discountAmount", "externalAmount", "feeAmount")


@dataclass(frozen=True)
class Emitted:
    event: str
    payload: dict[str, Any]


@dataclass
class Outcome:
    """What an event did: the payloads to post, and the records it touched (for the admin answer)."""

    emitted: list[Emitted] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


# -- payloads (public docs: every payload has `event` and `organization: {id, name}`) --------------
def customer_payload(event: str, state: OrgState, customer: Customer) -> Emitted:
    payload = {"event": event, "organization": views.organization(state), "customer": views.customer(customer)}
    return Emitted(event, payload)


def statistics_payload(state: OrgState, customer: Customer) -> Emitted:
    event = "customer.updated-statistics"
    return Emitted(
        event,
        {
            "event": event,
            "organization": views.organization(state),
            "statistics": views.statistics(customer.statistics),
            "customer": views.customer_tiny(customer),
        },
    )


def payment_payload(event: str, state: OrgState, payment: Payment) -> Emitted:
    payload: dict[str, Any] = {
        "event": event,
        "organization": views.organization(state),
        "payment": views.payment(payment, state),
    }
    if payment.location_id is not None and payment.location_id in state.locations:
        payload["location"] = views.location(state.locations[payment.location_id])
    return Emitted(event, payload)


def order_payload(event: str, state: OrgState, order: Order) -> Emitted:
    return Emitted(
        event,
        {
            "event": event,
            "organization": views.organization(state),
            "order": views.order(order),
            "location": views.location(state.locations[order.location_id]),
        },
    )


# -- amounts ---------------------------------------------------------------------------------------
def line_amount(item: Mapping[str, Any]) -> int:
    """An item line in cents: (unit amount + chosen options) x quantity. Discount lines carry
    negative amounts, as LOKE prints them."""
    choices = sum(int(c.get("amount", 0)) for o in item.get("options", []) for c in o.get("choices", []))
    return (int(item["amount"]) + choices) * int(item.get("quantity", 1))


def payment_amounts(items: Sequence[Mapping[str, Any]], given: Mapping[str, Any]) -> dict[str, int]:
    """The payment's amounts: those given, the rest derived from the items (chargedAmount = the
    sum of the lines; discountAmount = the discount lines, as a positive number; others 0)."""
    amounts = {name: int(given[name]) for name in _AMOUNT_FIELDS if given.get(name) is not None}
    if "chargedAmount" not in amounts:
        if not items:
            raise ValidationFailed(
                "The payment has no amount",
                [FieldError("payment.items", "is required when payment.chargedAmount is absent")],
            )
        charged = sum(line_amount(i) for i in items)
        if charged < 0:
            raise ValidationFailed(
                "The payment's amount is negative",
                [FieldError("payment.items", f"the lines add up to {charged} cents; expected 0 or more")],
            )
        amounts["chargedAmount"] = charged
    if "discountAmount" not in amounts:
        amounts["discountAmount"] = -sum(line_amount(i) for i in items if i.get("type") == "discount")
    for name in _AMOUNT_FIELDS:
        amounts.setdefault(name, 0)
    return amounts


def payment_items(state: OrgState, items: Sequence[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """PaymentItems with every default filled (ids are new ULIDs)."""
    ulid = state.counters.ulid
    return [
        {
            "id": str(item.get("id") or ulid(now)),
            "name": str(item["name"]),
            "amount": int(item["amount"]),
            "quantity": int(item.get("quantity", 1)),
            "type": str(item.get("type", "item")),
            "options": [
                {
                    "id": str(option.get("id") or ulid(now)),
                    "name": str(option["name"]),
                    "choices": [
                        {"id": str(c.get("id") or ulid(now)), "name": str(c["name"]), "amount": int(c["amount"])}
                        for c in option.get("choices", [])
                    ],
                }
                for option in item.get("options", [])
            ],
        }
        for item in items
    ]


def parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def parse_statistics(raw: Mapping[str, Any]) -> dict[str, Any]:
    """LOKE statistics fields with timestamps as datetimes (schema-checked before)."""
    return {
        name: (parse_time(value) if name.endswith("At") else int(value))
        for name, value in raw.items()
        if name in STATISTICS_FIELDS
    }


# -- applying events -------------------------------------------------------------------------------
def _require(body: Mapping[str, Any], path: str) -> Any:
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) is None:
            raise ValidationFailed(
                f"The {body.get('event')} event is missing data",
                [FieldError(path, f"is required for {body.get('event')}")],
            )
        node = node[part]
    return node


def apply(state: OrgState, body: Mapping[str, Any], now: datetime) -> Outcome:
    """Make the event in `body` happen in `state` (the admin body; schema-checked)."""
    event = str(body["event"])
    if event == "customer.created":
        return _customer_created(state, body, now)
    if event == "customer.updated":
        return _customer_updated(state, body, now)
    if event == "customer.updated-statistics":
        return _statistics_updated(state, body, now)
    if event == "payment.completed":
        return _payment_completed(state, body, now)
    if event == "payment.refunded":
        return _payment_refunded(state, body, now)
    if event in ORDER_TRANSITIONS:
        return _order_event(state, event, body, now)
    raise ValidationFailed("Unknown event", [FieldError("event", f"expected one of {', '.join(EVENT_NAMES)}")])


def _customer_created(state: OrgState, body: Mapping[str, Any], now: datetime) -> Outcome:
    data = _require(body, "customer")
    if data.get("id") is not None:
        raise ValidationFailed(
            "LOKE assigns the id of a new customer",
            [FieldError("customer.id", "must be absent for customer.created")],
        )
    missing = [name for name in ("firstName", "lastName") if data.get(name) is None]
    if missing:
        raise ValidationFailed(
            "customer.created needs the customer's name",
            [FieldError(f"customer.{name}", "is required for customer.created") for name in missing],
        )
    customer = state.create_customer(now, data)
    return Outcome([customer_payload("customer.created", state, customer)], {"customer": views.customer(customer)})


def _customer_updated(state: OrgState, body: Mapping[str, Any], now: datetime) -> Outcome:
    customer = state.customer(str(_require(body, "customer.id")))
    changes = {k: v for k, v in body["customer"].items() if k in PROFILE_FIELDS}
    if not changes:
        raise ValidationFailed(
            "customer.updated needs at least one changed profile field",
            [FieldError("customer", f"expected at least one of {', '.join(PROFILE_FIELDS)}")],
        )
    for name in ("firstName", "lastName", "hasAgreedToMarketing"):
        if name in changes and changes[name] is None:
            raise ValidationFailed(
                "A profile field cannot be cleared", [FieldError(f"customer.{name}", "must not be null")]
            )
    state.update_customer(customer, now, changes)
    return Outcome([customer_payload("customer.updated", state, customer)], {"customer": views.customer(customer)})


def _statistics_updated(state: OrgState, body: Mapping[str, Any], now: datetime) -> Outcome:
    customer = state.customer(str(_require(body, "customer.id")))
    changes = parse_statistics(_require(body, "statistics"))
    if not changes:
        raise ValidationFailed(
            "customer.updated-statistics needs at least one statistic",
            [FieldError("statistics", f"expected at least one of {', '.join(STATISTICS_FIELDS)}")],
        )
    state.set_statistics(customer, now, changes)
    return Outcome([statistics_payload(state, customer)], {"customer": views.customer(customer)})


def _location_id(state: OrgState, body: Mapping[str, Any]) -> str:
    location = body.get("location")
    if isinstance(location, Mapping) and location.get("id") is not None:
        return state.location(str(location["id"])).id
    if not state.locations:  # an organization loaded from fixtures without a venue
        raise ValidationFailed(
            f"Organization {state.id} has no location",
            [FieldError("location.id", "expected the id of one of its locations; add one with fixtures")],
        )
    return next(iter(state.locations))


def _payment_completed(state: OrgState, body: Mapping[str, Any], now: datetime) -> Outcome:
    data = _require(body, "payment")
    customer = state.customer(str(_require(body, "payment.customer.id")))
    if data.get("id") is not None and str(data["id"]) in state.payments:
        raise Conflict(f"Payment {data['id']} already exists", [FieldError("payment.id", "is already taken")])
    items = payment_items(state, list(data.get("items") or []), now)
    amounts = payment_amounts(items, data)
    payment = Payment(
        id=str(data.get("id") or state.counters.uuid()),
        customer_id=customer.id,
        billing_type=str(data.get("billingType") or DEFAULT_BILLING_TYPE),
        charged_amount=amounts["chargedAmount"],
        credit_amount=amounts["creditAmount"],
        discount_amount=amounts["discountAmount"],
        external_amount=amounts["externalAmount"],
        fee_amount=amounts["feeAmount"],
        currency=str(data.get("currency") or DEFAULT_CURRENCY),
        created_at=parse_time(data.get("createdAt")) or now,
        completed_at=now,
        items=items,
        location_id=_location_id(state, body),
    )
    state.add_payment(payment, count_spend=True)
    return _spent(state, "payment.completed", payment, customer)


def _spent(state: OrgState, event: str, payment: Payment, customer: Customer) -> Outcome:
    posted = payment_payload(event, state, payment)
    data: dict[str, Any] = {"payment": posted.payload["payment"], "customer": views.customer(customer)}
    if "location" in posted.payload:
        data["location"] = posted.payload["location"]
    return Outcome([posted, statistics_payload(state, customer)], data)


def _payment_refunded(state: OrgState, body: Mapping[str, Any], now: datetime) -> Outcome:
    payment, customer = state.refund_payment(str(_require(body, "payment.id")), now)
    return _spent(state, "payment.refunded", payment, customer)


def _order_event(state: OrgState, event: str, body: Mapping[str, Any], now: datetime) -> Outcome:
    data: Mapping[str, Any] = body.get("order") or {}
    status = event.split(".", 1)[1]
    customer_data = body.get("customer")
    customer = (
        state.customer(str(customer_data["id"]))
        if isinstance(customer_data, Mapping) and customer_data.get("id") is not None
        else None
    )
    order = state.orders.get(str(data["id"])) if data.get("id") is not None else None
    allowed = ORDER_TRANSITIONS[event]
    if order is not None:
        if order.status not in allowed:
            raise Conflict(
                f"Order {order.id} is {order.status}; {event} needs it to be "
                + " or ".join(s for s in allowed if s) + " (or a new order)",
                [FieldError("order.id", f"is {order.status}")],
            )
        order.status, order.updated_at = status, now
        if customer is not None:
            order.customer_id = customer.id
    else:
        items: list[dict[str, Any]] = [
            {
                "id": str(i.get("id") or state.counters.ulid(now)),
                "name": str(i["name"]),
                "quantity": int(i.get("quantity", 1)),
                "amount": int(i["amount"]),
            }
            for i in data.get("items") or []
        ]
        total = data.get("total")
        order = Order(
            id=str(data.get("id") or state.counters.ulid(now)),
            status=status,
            total=int(total) if total is not None else sum(int(i["amount"]) * int(i["quantity"]) for i in items),
            created_at=parse_time(data.get("createdAt")) or now,
            items=items,
            location_id=_location_id(state, body),
            customer_id=customer.id if customer is not None else None,
            updated_at=now,
        )
        state.orders[order.id] = order
    outcome = Outcome([order_payload(event, state, order)], {"order": views.order(order)})
    outcome.data["location"] = views.location(state.locations[order.location_id])
    if event == "order.completed" and order.customer_id is not None:
        spender = state.customer(order.customer_id)
        payment = _payment_for_order(state, order, now)
        state.add_payment(payment, count_spend=True)
        spent = _spent(state, "payment.completed", payment, spender)
        outcome.emitted.extend(spent.emitted)
        outcome.data.update(spent.data)
    return outcome


def _payment_for_order(state: OrgState, order: Order, now: datetime) -> Payment:
    """The normalized payment of a completed order: its lines, and a discount line for any
    difference between the lines and the order total."""
    items: list[dict[str, Any]] = [
        {"id": i["id"], "name": i["name"], "amount": i["amount"], "quantity": i["quantity"], "type": "item",
         "options": []}
        for i in order.items
    ]
    lines = sum(i["amount"] * i["quantity"] for i in items)
    discount = max(0, lines - order.total)
    if discount:
        items.append(
            {"id": state.counters.ulid(now), "name": "Discount", "amount": -discount, "quantity": 1,
             "type": "discount", "options": []}
        )
    return Payment(
        id=state.counters.uuid(),
        customer_id=str(order.customer_id),
        billing_type=DEFAULT_BILLING_TYPE,
        charged_amount=max(order.total, 0),
        credit_amount=0,
        discount_amount=discount,
        external_amount=0,
        fee_amount=0,
        currency=DEFAULT_CURRENCY,
        created_at=order.created_at,
        completed_at=now,
        items=items,
        location_id=order.location_id,
    )


# -- fan-out ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventSummary:
    id: str
    event: str
    subscriptions: int

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "event": self.event, "subscriptions": self.subscriptions}


def fan_out(store: LokeStore, state: OrgState, emitted: list[Emitted]) -> tuple[list[EventSummary], list[Delivery]]:
    """One delivery per (event, subscribed webhook), in event order; each body is encoded once
    and signed with its subscription's secret."""
    summaries: list[EventSummary] = []
    deliveries: list[Delivery] = []
    for item in emitted:
        event_id = store.next_event_id()
        body = encode_body(item.payload)
        subscribers = state.subscribers(item.event)
        for sub in subscribers:
            deliveries.append(
                Delivery(
                    id=store.next_delivery_id(),
                    event_id=event_id,
                    event=item.event,
                    organization_id=state.id,
                    webhook_id=sub.id,
                    webhook_ref=sub.ref,
                    url=sub.url,
                    body=body,
                    signature=sign(sub.secret, body),
                )
            )
        summaries.append(EventSummary(event_id, item.event, len(subscribers)))
    return summaries, deliveries
