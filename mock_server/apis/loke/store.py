"""All LOKE state, per organization, behind synchronous methods (no I/O, time from the caller).

Each method checks and changes state in one synchronous step, so two concurrent requests can
never both pass a check. Money is an integer in the lowest denomination of the currency (cents),
as LOKE sends it: integer arithmetic is exact, so no Decimal is needed.

Indexes: customers by id, by creation (ULID) order, by update order, by e-mail (case-insensitive)
and by phone number; payments by creation and by update order; lists by creation order; list
members by the order they were added; webhook subscriptions by ref.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from mock_server import secrets
from mock_server.apis.loke.delivery import Attempt, FaultModes
from mock_server.apis.loke.ids import UlidGenerator, seeded_uuid
from mock_server.apis.loke.paging import SortedIndex
from mock_server.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed

MAX_ATTEMPTS_KEPT = 10_000


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    installed: bool


@dataclass(frozen=True)
class Location:
    id: str
    name: str


@dataclass
class Statistics:
    points_balance: int = 0
    total_points_earned: int = 0
    total_points_redeemed: int = 0
    total_spend: int = 0
    last_points_earned_at: datetime | None = None
    last_points_redeemed_at: datetime | None = None
    last_spent_at: datetime | None = None


# LOKE's field name -> the attribute of Statistics
STATISTICS_FIELDS: dict[str, str] = {
    "pointsBalance": "points_balance",
    "totalPointsEarned": "total_points_earned",
    "totalPointsRedeemed": "total_points_redeemed",
    "totalSpend": "total_spend",
    "lastPointsEarnedAt": "last_points_earned_at",
    "lastPointsRedeemedAt": "last_points_redeemed_at",
    "lastSpentAt": "last_spent_at",
}

# LOKE's profile field name -> the attribute of Customer
PROFILE_FIELDS: dict[str, str] = {
    "firstName": "first_name",
    "lastName": "last_name",
    "email": "email",
    "phoneNumber": "phone_number",
    "dob": "dob",
    "gender": "gender",
    "hasAgreedToMarketing": "has_agreed_to_marketing",
}


@dataclass
class Customer:
    id: str
    first_name: str
    last_name: str
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    phone_number: str | None = None
    dob: str | None = None
    gender: str | None = None
    has_agreed_to_marketing: bool = False
    statistics: Statistics = field(default_factory=Statistics)
    update_seq: int = 0


@dataclass(frozen=True)
class PointRecord:
    customer_id: str
    reference: str
    amount: int
    notes: str | None
    created_at: datetime


@dataclass
class Payment:
    id: str
    customer_id: str
    billing_type: str
    charged_amount: int
    credit_amount: int
    discount_amount: int
    external_amount: int
    fee_amount: int
    currency: str
    created_at: datetime
    completed_at: datetime | None
    items: list[dict[str, Any]]
    location_id: str | None
    refunded_at: datetime | None = None
    seq: int = 0
    update_seq: int = 0


@dataclass
class Order:
    id: str
    status: str
    total: int
    created_at: datetime
    items: list[dict[str, Any]]
    location_id: str
    customer_id: str | None
    updated_at: datetime


@dataclass
class Member:
    customer_id: str
    added_at: datetime
    seq: int


@dataclass
class CustomerList:
    id: str
    name: str
    created_at: datetime
    members: dict[str, Member] = field(default_factory=dict)
    index: SortedIndex[int] = field(default_factory=SortedIndex)


@dataclass
class Subscription:
    id: str
    ref: str
    url: str
    events: tuple[str, ...]
    secret: str = field(repr=False)  # never returned, never logged
    created_at: datetime
    updated_at: datetime
    faults: FaultModes = field(default_factory=FaultModes)


class Counters:
    """Ids and sequence numbers shared by every organization of one store."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.ulids = UlidGenerator(rng)
        self._seq = 0

    def seq(self) -> int:
        self._seq += 1
        return self._seq

    def ulid(self, now: datetime) -> str:
        return self.ulids.new(now)

    def uuid(self) -> str:
        return seeded_uuid(self.rng)


def _email_key(email: str) -> str:
    return email.strip().lower()


class OrgState:
    """One organization's customers, points, payments, orders, lists and subscriptions."""

    def __init__(self, org: Organization, counters: Counters) -> None:
        self.org = org
        self.counters = counters
        self.locations: dict[str, Location] = {}
        self.locations_index: SortedIndex[str] = SortedIndex()  # by id (ULIDs: creation order)
        self.customers: dict[str, Customer] = {}
        self.by_created: SortedIndex[str] = SortedIndex()
        self.by_updated: SortedIndex[int] = SortedIndex()
        self._by_email: dict[str, str] = {}
        self._by_phone: dict[str, str] = {}
        self.points: dict[tuple[str, str], PointRecord] = {}
        self.payments: dict[str, Payment] = {}
        self.payments_by_created: SortedIndex[int] = SortedIndex()
        self.payments_by_updated: SortedIndex[int] = SortedIndex()
        self.orders: dict[str, Order] = {}
        self.lists: dict[str, CustomerList] = {}
        self.lists_index: SortedIndex[str] = SortedIndex()
        self.subscriptions: dict[str, Subscription] = {}  # ref -> subscription

    @property
    def id(self) -> str:
        return self.org.id

    # -- customers -----------------------------------------------------------------------------
    def customer(self, customer_id: str) -> Customer:
        found = self.customers.get(customer_id)
        if found is None:
            raise NotFound(f"Customer {customer_id} not found in organization {self.id}")
        return found

    def find_by_email(self, email: str) -> Customer | None:
        found = self._by_email.get(_email_key(email))
        return self.customers[found] if found else None

    def find_by_phone(self, phone: str) -> Customer | None:
        found = self._by_phone.get(phone)
        return self.customers[found] if found else None

    def contact_conflicts(self, fields: Mapping[str, Any], customer_id: str | None, where: str) -> list[FieldError]:
        """E-mail and phone number are unique within an organization (assumed)."""
        problems = []
        email = fields.get("email")
        if isinstance(email, str):
            owner = self._by_email.get(_email_key(email))
            if owner is not None and owner != customer_id:
                problems.append(FieldError(f"{where}.email", f"{email} already belongs to customer {owner}"))
        phone = fields.get("phoneNumber")
        if isinstance(phone, str):
            owner = self._by_phone.get(phone)
            if owner is not None and owner != customer_id:
                problems.append(FieldError(f"{where}.phoneNumber", f"{phone} already belongs to customer {owner}"))
        return problems

    def create_customer(
        self,
        now: datetime,
        fields: Mapping[str, Any],
        *,
        customer_id: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        statistics: Mapping[str, Any] | None = None,
    ) -> Customer:
        problems = self.contact_conflicts(fields, None, "customer")
        if problems:
            raise Conflict("The customer's contact details belong to another customer", problems)
        if customer_id is None:
            customer_id = self.counters.ulid(now)
        else:
            self.counters.ulids.observe(customer_id)
        customer = Customer(
            id=customer_id,
            first_name=str(fields.get("firstName", "")),
            last_name=str(fields.get("lastName", "")),
            created_at=created_at or now,
            updated_at=updated_at or created_at or now,
        )
        self._apply_profile(customer, fields)
        if statistics:
            apply_statistics(customer.statistics, statistics)
        customer.update_seq = self.counters.seq()
        self.customers[customer.id] = customer
        self.by_created.add(customer.id, customer.id)
        self.by_updated.add(customer.update_seq, customer.id)
        self._index_contacts(customer)
        return customer

    def update_customer(self, customer: Customer, now: datetime, fields: Mapping[str, Any]) -> Customer:
        problems = self.contact_conflicts(fields, customer.id, "customer")
        if problems:
            raise Conflict("The customer's new contact details belong to another customer", problems)
        self._unindex_contacts(customer)
        self._apply_profile(customer, fields)
        self._index_contacts(customer)
        self.touch(customer, now)
        return customer

    def set_statistics(self, customer: Customer, now: datetime, changes: Mapping[str, Any]) -> Customer:
        apply_statistics(customer.statistics, changes)
        self.touch(customer, now)
        return customer

    def touch(self, customer: Customer, now: datetime) -> None:
        """The customer changed: new `updatedAt`, and it moves to the end of the update order."""
        self.by_updated.remove(customer.update_seq)
        customer.update_seq = self.counters.seq()
        customer.updated_at = now
        self.by_updated.add(customer.update_seq, customer.id)

    @staticmethod
    def _apply_profile(customer: Customer, fields: Mapping[str, Any]) -> None:
        for name, attribute in PROFILE_FIELDS.items():
            if name in fields:
                value = fields[name]
                if name in ("firstName", "lastName"):
                    value = str(value)
                elif name == "hasAgreedToMarketing":
                    value = bool(value)
                setattr(customer, attribute, value)

    def _index_contacts(self, customer: Customer) -> None:
        if customer.email:
            self._by_email[_email_key(customer.email)] = customer.id
        if customer.phone_number:
            self._by_phone[customer.phone_number] = customer.id

    def _unindex_contacts(self, customer: Customer) -> None:
        if customer.email:
            self._by_email.pop(_email_key(customer.email), None)
        if customer.phone_number:
            self._by_phone.pop(customer.phone_number, None)

    # -- points --------------------------------------------------------------------------------
    def adjust_points(
        self, customer_id: str, reference: str, amount: int, notes: str | None, now: datetime
    ) -> Customer:
        customer = self.customer(customer_id)
        if (customer_id, reference) in self.points:
            raise Conflict(
                f"A point record with reference {reference} already exists for customer {customer_id}",
                [FieldError("path.reference", "is already used by a point record of this customer")],
                kind="duplicate_point_record",
            )
        if amount == 0:
            raise ValidationFailed(
                "The points amount is invalid",
                [FieldError("amount", "0 changes nothing; expected a positive (award) or negative (deduct) integer")],
            )
        stats = customer.statistics
        if amount < 0 and stats.points_balance + amount < 0:
            raise ValidationFailed(
                "Not enough points",
                [FieldError("amount", f"deducting {-amount} points would take the balance of {stats.points_balance} "
                            f"below zero; expected at least {-stats.points_balance}")],
                kind="insufficient_points",
            )
        self.points[(customer_id, reference)] = PointRecord(customer_id, reference, amount, notes, now)
        stats.points_balance += amount
        if amount > 0:
            stats.total_points_earned += amount
            stats.last_points_earned_at = now
        else:
            stats.total_points_redeemed += -amount
            stats.last_points_redeemed_at = now
        self.touch(customer, now)
        return customer

    def reverse_points(self, customer_id: str, reference: str, now: datetime) -> Customer:
        """Undo a point record as if it had never been made (the reference becomes free again).
        A reversal may take the balance below zero when the points were spent meanwhile."""
        customer = self.customer(customer_id)
        record = self.points.pop((customer_id, reference), None)
        if record is None:
            raise NotFound(f"No point record with reference {reference} for customer {customer_id}")
        stats = customer.statistics
        stats.points_balance -= record.amount
        if record.amount > 0:
            stats.total_points_earned = max(0, stats.total_points_earned - record.amount)
        else:
            stats.total_points_redeemed = max(0, stats.total_points_redeemed + record.amount)
        self.touch(customer, now)
        return customer

    # -- locations -----------------------------------------------------------------------------
    def add_location(self, name: str, now: datetime, *, location_id: str | None = None) -> Location:
        if location_id is None:
            location_id = self.counters.ulid(now)
        else:
            self.counters.ulids.observe(location_id)
        if location_id in self.locations:
            raise Conflict(f"Location {location_id} already exists", [FieldError("location.id", "is already taken")])
        created = Location(location_id, name)
        self.locations[location_id] = created
        self.locations_index.add(location_id, location_id)
        return created

    # -- payments ------------------------------------------------------------------------------
    def location(self, location_id: str) -> Location:
        found = self.locations.get(location_id)
        if found is None:
            known = ", ".join(self.locations) or "none"
            raise NotFound(f"Location {location_id} not found in organization {self.id}; known: {known}")
        return found

    def payment(self, payment_id: str) -> Payment:
        found = self.payments.get(payment_id)
        if found is None:
            raise NotFound(f"Payment {payment_id} not found in organization {self.id}")
        return found

    def add_payment(self, payment: Payment, *, count_spend: bool) -> Payment:
        """Store a payment; a completed one counts towards its customer's spend when asked."""
        if payment.id in self.payments:
            raise Conflict(f"Payment {payment.id} already exists", [FieldError("payment.id", "is already taken")])
        customer = self.customer(payment.customer_id)
        payment.seq = self.counters.seq()
        payment.update_seq = payment.seq
        self.payments[payment.id] = payment
        self.payments_by_created.add(payment.seq, payment.id)
        self.payments_by_updated.add(payment.update_seq, payment.id)
        if count_spend and payment.completed_at is not None:
            customer.statistics.total_spend += payment.charged_amount
            customer.statistics.last_spent_at = payment.completed_at
            self.touch(customer, payment.completed_at)
        return payment

    def refund_payment(self, payment_id: str, now: datetime) -> tuple[Payment, Customer]:
        payment = self.payment(payment_id)
        if payment.refunded_at is not None:
            raise Conflict(
                f"Payment {payment_id} was already refunded",
                [FieldError("payment.id", "is already refunded")],
            )
        if payment.completed_at is None:
            raise Conflict(
                f"Payment {payment_id} has not completed, so it cannot be refunded",
                [FieldError("payment.id", "has not completed")],
            )
        customer = self.customer(payment.customer_id)
        payment.refunded_at = now
        self.payments_by_updated.remove(payment.update_seq)
        payment.update_seq = self.counters.seq()
        self.payments_by_updated.add(payment.update_seq, payment.id)
        customer.statistics.total_spend = max(0, customer.statistics.total_spend - payment.charged_amount)
        self.touch(customer, now)
        return payment, customer

    # -- customer lists ------------------------------------------------------------------------
    def customer_list(self, list_id: str) -> CustomerList:
        found = self.lists.get(list_id)
        if found is None:
            raise NotFound(f"Customer list {list_id} not found in organization {self.id}")
        return found

    def create_list(self, name: str, now: datetime, *, list_id: str | None = None) -> CustomerList:
        if list_id is None:
            list_id = self.counters.ulid(now)
        else:
            self.counters.ulids.observe(list_id)
        created = CustomerList(list_id, name, now)
        self.lists[list_id] = created
        self.lists_index.add(list_id, list_id)
        return created

    def add_member(self, list_id: str, customer_id: str, now: datetime) -> tuple[Member, bool]:
        """(the membership, whether it is new). Adding a member again changes nothing."""
        target = self.customer_list(list_id)
        self.customer(customer_id)
        existing = target.members.get(customer_id)
        if existing is not None:
            return existing, False
        member = Member(customer_id, now, self.counters.seq())
        target.members[customer_id] = member
        target.index.add(member.seq, customer_id)
        return member, True

    def remove_member(self, list_id: str, customer_id: str) -> None:
        target = self.customer_list(list_id)
        self.customer(customer_id)
        member = target.members.pop(customer_id, None)
        if member is None:
            raise NotFound(f"Customer {customer_id} is not a member of list {list_id}")
        target.index.remove(member.seq)

    # -- webhook subscriptions -----------------------------------------------------------------
    def subscription(self, ref: str) -> Subscription:
        found = self.subscriptions.get(ref)
        if found is None:
            raise NotFound(f"No webhook subscription with ref {ref} in organization {self.id}")
        return found

    def upsert_subscription(self, ref: str, url: str, events: list[str], secret: str, now: datetime) -> Subscription:
        unique = tuple(dict.fromkeys(events))
        existing = self.subscriptions.get(ref)
        if existing is not None:
            existing.url, existing.events, existing.secret, existing.updated_at = url, unique, secret, now
            return existing
        created = Subscription(self.counters.ulid(now), ref, url, unique, secret, now, now)
        self.subscriptions[ref] = created
        return created

    def delete_subscription(self, ref: str) -> Subscription:
        found = self.subscription(ref)
        del self.subscriptions[ref]
        return found

    def subscribers(self, event: str) -> list[Subscription]:
        return [s for s in self.subscriptions.values() if event in s.events]

    def subscription_alive(self, webhook_id: str) -> bool:
        return any(s.id == webhook_id for s in self.subscriptions.values())

    def set_faults(self, ref: str, faults: FaultModes) -> Subscription:
        found = self.subscription(ref)
        found.faults = faults
        return found


def apply_statistics(stats: Statistics, changes: Mapping[str, Any]) -> None:
    """Set the given statistics (LOKE names; timestamps as datetimes or None)."""
    for name, value in changes.items():
        attribute = STATISTICS_FIELDS.get(name)
        if attribute is not None:
            setattr(stats, attribute, value)


@dataclass
class LokeStore:
    client_id: str
    client_secret: str
    orgs: dict[str, OrgState]
    token_seed: str
    counters: Counters
    tokens: dict[str, datetime] = field(default_factory=dict)  # sha256(token) -> expiry
    org_index: SortedIndex[str] = field(default_factory=SortedIndex)  # every organization, by id
    seeded_token: str = ""
    issued: int = 0
    attempts: deque[Attempt] = field(default_factory=lambda: deque(maxlen=MAX_ATTEMPTS_KEPT))
    # outbound.Outbound, which sends the deliveries: runtime machinery (tasks, timers), attached
    # by handlers.outbound_for and never part of the saved state (see __getstate__)
    outbound: Any = None
    events_made: int = 0
    deliveries_made: int = 0
    attempts_made: int = 0

    def __getstate__(self) -> dict[str, Any]:
        """The state as `--state-file` pickles it: everything but the outbound machinery.
        Deliveries waiting for a retry or a fault-mode hold are not resumed after a restart."""
        state = dict(self.__dict__)
        state["outbound"] = None
        return state

    # -- auth ----------------------------------------------------------------------------------
    def issue_token(self, expires: datetime) -> str:
        self.issued += 1
        token = "loke_" + secrets.sha256_hex(f"{self.token_seed}:{self.issued}")
        self.tokens[secrets.sha256_hex(token)] = expires
        return token

    def token_valid(self, token: str, now: datetime) -> bool:
        expiry = self.tokens.get(secrets.sha256_hex(token))
        return expiry is not None and now < expiry

    def client_matches(self, client_id: str, client_secret: str) -> bool:
        id_ok = secrets.same(client_id, self.client_id)
        secret_ok = secrets.same(client_secret, self.client_secret)
        return id_ok and secret_ok

    # -- organizations -------------------------------------------------------------------------
    def add_org(self, org: Organization) -> OrgState:
        """A new organization (the seed's, or a fixture's); ids are ULIDs, so the listing is in
        creation order."""
        if org.id in self.orgs:
            raise Conflict(f"Organization {org.id} already exists", [FieldError("organization.id", "is already taken")])
        state = OrgState(org, self.counters)
        self.orgs[org.id] = state
        self.org_index.add(org.id, org.id)
        return state

    @property
    def installed(self) -> list[Organization]:
        return [state.org for state in self.orgs.values() if state.org.installed]

    @property
    def not_installed(self) -> list[Organization]:
        return [state.org for state in self.orgs.values() if not state.org.installed]

    def org(self, organization_id: str) -> OrgState:
        found = self.orgs.get(organization_id)
        if found is None:
            raise NotFound(f"Organization {organization_id} not found")
        return found

    def reachable_org(self, organization_id: str) -> OrgState:
        """The organization a client token may act on: it exists (else 404) and installed the
        add-on (else 403)."""
        found = self.org(organization_id)
        if not found.org.installed:
            raise Forbidden(
                f"Organization {organization_id} has not installed this add-on, so the client token does not reach it"
            )
        return found

    def webhook_alive(self, organization_id: str, webhook_id: str) -> bool:
        state = self.orgs.get(organization_id)
        return state is not None and state.subscription_alive(webhook_id)

    # -- events and deliveries -----------------------------------------------------------------
    def next_event_id(self) -> str:
        self.events_made += 1
        return f"evt_{self.events_made}"

    def next_delivery_id(self) -> str:
        self.deliveries_made += 1
        return f"dlv_{self.deliveries_made}"

    def record_attempt(self, attempt: Attempt) -> Attempt:
        self.attempts_made += 1
        attempt = replace(attempt, id=self.attempts_made)
        self.attempts.append(attempt)
        return attempt

    def clear_attempts(self) -> int:
        count = len(self.attempts)
        self.attempts.clear()
        return count
