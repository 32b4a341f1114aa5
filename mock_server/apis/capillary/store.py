"""All state of the Capillary mock behind synchronous methods: credentials and OAuth tokens, the
organisation's configuration, the customers with their source accounts and loyalty balances, and
the rate limiter. Handlers never touch the dictionaries directly, so a persistent store could
replace this one.

Indexes: customer ID -> customer; (identifier type, normalised value) -> customer ID. An
identifier belongs to exactly one customer: registering it in another source adds a source account
to that customer, never a second customer.
"""

from __future__ import annotations

import base64
import copy
import hmac
import json
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from mock_server import secrets
from mock_server.apis.capillary import registration as reg
from mock_server.apis.capillary.org import OrgConfig, WelcomeCoupon
from mock_server.apis.capillary.ratelimit import SlidingWindowLimiter
from mock_server.clock import isoformat
from mock_server.errors import Conflict, FieldError, NotFound, ValidationFailed

USER_CONTEXT_HEADERS = {
    "USER-CONTEXT-ENTITY-TYPE": "entityType",
    "USER-CONTEXT-ENTITY-ID": "entityId",
    "USER-CONTEXT-ENTITY-SOURCE": "entitySource",
    "USER-CONTEXT-ENTITY-SOURCE-ID": "entitySourceId",
}
_COUPON_ALPHABET = string.ascii_uppercase + string.digits


@dataclass
class SourceAccount:
    source: str
    account_id: str
    identifiers: list[reg.Identifier]
    first_name: str | None
    last_name: str | None
    comm_channels: list[dict[str, Any]]
    fields: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def as_profile(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.first_name is not None:
            out["firstName"] = self.first_name
        if self.last_name is not None:
            out["lastName"] = self.last_name
        out["identifiers"] = [i.as_json() for i in self.identifiers]
        out["commChannels"] = copy.deepcopy(self.comm_channels)
        out["fields"] = dict(self.fields)
        out["source"] = self.source
        out["accountId"] = self.account_id
        return out


@dataclass
class ProgramEnrolment:
    program_id: int
    tier_number: int | None
    tier_expiry: str | None
    points_expiry: str | None
    awarded_points: int
    enrolled_at: datetime


@dataclass
class Coupon:
    id: int
    code: str
    coupon_type: str
    description: str
    discount_code: str
    valid_till: datetime

    def side_effect(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entityType": "USER",
            "couponType": self.coupon_type,
            "couponCode": self.code,
            "validTill": self.valid_till.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "description": self.description,
            "discountCode": self.discount_code,
            "trimmedCouponCode": self.code,
            "type": "coupon",
        }


@dataclass
class AuditEntry:
    """Who did what: the credential, the action and the USER-CONTEXT-* headers sent (seed 003:
    "add entity information of the user who is adding or updating this info")."""

    time: datetime
    action: str  # register | add_source_accounts | update
    actor: str
    sources: list[str]
    user_context: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "time": isoformat(self.time),
            "action": self.action,
            "actor": self.actor,
            "sources": list(self.sources),
            "userContext": dict(self.user_context),
        }


@dataclass
class Customer:
    id: int
    created_at: datetime
    updated_at: datetime
    accounts: dict[reg.AccountKey, SourceAccount] = field(default_factory=dict)
    extended_fields: dict[str, str] = field(default_factory=dict)
    status_label: str | None = None
    associated_with: str | None = None
    loyalty_type: str | None = None
    referral_code: str | None = None
    points: Decimal = Decimal(0)
    enrolments: dict[int, ProgramEnrolment] = field(default_factory=dict)
    currencies: dict[str, Decimal] = field(default_factory=dict)
    coupons: list[Coupon] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)

    def details(self, source: str | None) -> dict[str, Any]:
        """The lookup answer; `source` None means every source account."""
        profiles = [a.as_profile() for a in self.accounts.values() if source is None or a.source == source]
        out: dict[str, Any] = {
            "id": self.id,
            "profiles": profiles,
            "extendedFields": dict(self.extended_fields),
            "loyaltyInfo": {"loyaltyType": self.loyalty_type or "loyalty"},
            "loyaltyPoints": reg.json_number(self.points),
            "createdDate": isoformat(self.created_at),
            "warnings": [],
        }
        if self.associated_with is not None:
            out["associatedWith"] = self.associated_with
        if self.status_label is not None:
            out["statusLabel"] = self.status_label
        return out

    def record(self) -> dict[str, Any]:
        """Everything the mock keeps about the customer (the admin view)."""
        return {
            "id": self.id,
            "createdDate": isoformat(self.created_at),
            "updatedDate": isoformat(self.updated_at),
            "statusLabel": self.status_label,
            "associatedWith": self.associated_with,
            "loyaltyType": self.loyalty_type,
            "referralCode": self.referral_code,
            "extendedFields": dict(self.extended_fields),
            "sourceAccounts": [a.as_profile() for a in self.accounts.values()],
            "loyalty": {
                "points": str(self.points),
                "enrolments": [
                    {
                        "programId": e.program_id,
                        "tierNumber": e.tier_number,
                        "tierExpiryDate": e.tier_expiry,
                        "pointsExpiryDate": e.points_expiry,
                        "awardedPoints": e.awarded_points,
                        "enrolledAt": isoformat(e.enrolled_at),
                    }
                    for e in self.enrolments.values()
                ],
                "alternateCurrencies": {k: str(v) for k, v in self.currencies.items()},
                "coupons": [c.side_effect() for c in self.coupons],
            },
            "audit": [a.as_json() for a in self.audit],
        }


@dataclass
class Outcome:
    customer_id: int
    created: bool
    warnings: list[dict[str, Any]]
    side_effects: list[dict[str, Any]]


class CustomerBook:
    """The customers and their identifier index. Every method is a complete read-check-write."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self.customers: dict[int, Customer] = {}
        self.index: dict[reg.IdentifierKey, int] = {}
        self._next_coupon_id = 1_239_575_031 + rng.randrange(1_000_000)
        self._coupon_codes: set[str] = set()

    def __len__(self) -> int:
        return len(self.customers)

    def get(self, customer_id: int) -> Customer | None:
        return self.customers.get(customer_id)

    def clone(self) -> CustomerBook:
        """An independent copy (a dry run of fixtures works on one, then replaces the original)."""
        return copy.deepcopy(self)

    def _new_id(self) -> int:
        while True:
            candidate = self._rng.randrange(10_000_000, 1_000_000_000)
            if candidate not in self.customers:
                return candidate

    def _coupon(self, template: WelcomeCoupon, now: datetime) -> Coupon:
        code = ""
        while not code or code in self._coupon_codes:
            code = "".join(self._rng.choice(_COUPON_ALPHABET) for _ in range(8))
        self._coupon_codes.add(code)
        if template.valid_till is not None:
            valid_till = template.valid_till
        else:
            last_day = (now + timedelta(days=template.valid_days or 30)).astimezone(UTC).date()
            valid_till = datetime.combine(last_day, time(23, 59, 59), tzinfo=UTC)
        self._next_coupon_id += 1
        return Coupon(self._next_coupon_id, code, template.coupon_type, template.description,
                      template.discount_code, valid_till)

    def register(
        self,
        registration: reg.Registration,
        config: OrgConfig,
        now: datetime,
        actor: str,
        user_context: dict[str, str],
        customer_id: int | None = None,
    ) -> Outcome:
        """Create a customer, or add source accounts to the one its identifiers belong to.
        Raises (8006, 8014) before changing anything."""
        existing_id = reg.resolve(
            registration,
            self.index.get,
            lambda owner: self.customers[owner].accounts.keys(),
        )
        if existing_id is not None:
            if customer_id is not None and customer_id != existing_id:
                raise ValidationFailed(
                    "Error in registration",
                    [FieldError("id", f"the identifiers belong to customer {existing_id}, not {customer_id}",
                                reg.CODE_REGISTRATION_ERROR)],
                )
            customer = self.customers[existing_id]
            self._add_accounts(customer, registration, now)
            customer.updated_at = now
            customer.audit.append(AuditEntry(now, "add_source_accounts", actor,
                                             [p.source for p in registration.profiles], user_context))
            return Outcome(customer.id, False, [], [])
        if customer_id is not None and customer_id in self.customers:
            raise Conflict(f"customer ID {customer_id} is already taken", code=reg.CODE_REGISTRATION_ERROR)
        customer = Customer(
            id=customer_id if customer_id is not None else self._new_id(),
            created_at=now,
            updated_at=now,
            extended_fields=dict(registration.extended_fields),
            status_label=registration.status_label or config.default_status_label,
            associated_with=registration.associated_with,
            loyalty_type=registration.loyalty_type,
            referral_code=registration.referral_code,
        )
        warnings: list[dict[str, Any]] = []
        label_warning = reg.status_label_warning(registration, config)
        if label_warning is not None:
            warnings.append(label_warning)
        memberships = [
            e.tier_expiry for e in registration.enrolments
            if e.program_id not in config.supplementary_program_ids and e.tier_expiry is not None
        ]
        warnings.extend(reg.supplementary_warnings(registration.enrolments, memberships, config))
        side_effects = self._reward(customer, registration, config, now)
        self.customers[customer.id] = customer
        self._add_accounts(customer, registration, now)
        customer.audit.append(AuditEntry(now, "register", actor, [p.source for p in registration.profiles],
                                         user_context))
        return Outcome(customer.id, True, warnings, side_effects)

    def _add_accounts(self, customer: Customer, registration: reg.Registration, now: datetime) -> None:
        for profile in registration.profiles:
            customer.accounts[profile.account] = SourceAccount(
                source=profile.source,
                account_id=profile.account_id,
                identifiers=list(profile.identifiers),
                first_name=profile.first_name,
                last_name=profile.last_name,
                comm_channels=[dict(c) for c in profile.comm_channels],
                fields=dict(profile.fields),
                created_at=now,
                updated_at=now,
            )
            for ident in profile.identifiers:
                self.index[ident.key] = customer.id

    def _reward(
        self, customer: Customer, registration: reg.Registration, config: OrgConfig, now: datetime
    ) -> list[dict[str, Any]]:
        """Enrolment points, then the organisation's welcome points, alternate currencies and
        coupons, credited to the new customer; the side effects in that order."""
        effects: list[dict[str, Any]] = []
        for enrolment in registration.enrolments:
            raw, awarded = reg.award(enrolment.points)
            customer.enrolments[enrolment.program_id] = ProgramEnrolment(
                enrolment.program_id, enrolment.tier_number, enrolment.tier_expiry_text,
                enrolment.points_expiry_text, awarded, now,
            )
            if raw > 0:
                customer.points += awarded
                effects.append(reg.points_effect(raw, awarded))
        if config.welcome_points > 0:
            raw, awarded = reg.award(config.welcome_points)
            customer.points += awarded
            effects.append(reg.points_effect(raw, awarded))
        for currency in config.welcome_alternate_currencies:
            raw, awarded = reg.award(currency.value)
            if raw > 0:
                held = customer.currencies.get(currency.identifier, Decimal(0))
                customer.currencies[currency.identifier] = held + raw
                effects.append(reg.currency_effect(currency.identifier, currency.name, raw, awarded))
        for template in config.welcome_coupons:
            coupon = self._coupon(template, now)
            customer.coupons.append(coupon)
            effects.append(coupon.side_effect())
        return effects

    def lookup(self, source: str | None, kind: str, value: str) -> Customer:
        """The customer holding identifier (kind, value) in `source` (None: in any source)."""
        key = (kind, reg.normalise_value(kind, value))
        customer = self.customers.get(self.index.get(key, -1))
        if customer is not None and any(
            (source is None or account.source == source) and any(i.key == key for i in account.identifiers)
            for account in customer.accounts.values()
        ):
            return customer
        where = "any source" if source is None else f"source {source}"
        raise NotFound(
            f"Customer not found for the given identifiers: no customer has {kind} {value!r} in {where}",
            code=reg.CODE_NOT_FOUND,
        )

    def update(
        self, customer_id: int, source: str, update: reg.Update, now: datetime, actor: str,
        user_context: dict[str, str],
    ) -> Customer:
        """Apply an update to the customer's `source` account(s); identifiers and source stay."""
        customer = self.customers.get(customer_id)
        if customer is None:
            raise NotFound(f"Customer not found for the given identifiers: no customer {customer_id}",
                           code=reg.CODE_NOT_FOUND)
        accounts = [a for a in customer.accounts.values() if a.source == source]
        profile = update.profile
        if profile is not None and profile.account_id is not None:
            accounts = [a for a in accounts if a.account_id == profile.account_id]
        if not accounts:
            which = source
            if profile is not None and profile.account_id is not None:
                which = f"{source} account {profile.account_id}"
            raise NotFound(
                f"Customer not found for the given identifiers: customer {customer_id} has no {which} source account",
                code=reg.CODE_NOT_FOUND,
            )
        if profile is not None:
            errors: list[FieldError] = []
            if profile.source is not None and profile.source != source:
                errors.append(FieldError(
                    "profiles[0].source",
                    f"the source cannot be changed with this API (updating {source}, body says {profile.source})",
                    reg.CODE_SOURCE_INVALID,
                ))
            if profile.identifiers is not None:
                sent = {i.key for i in profile.identifiers}
                for account in accounts:
                    if sent != {i.key for i in account.identifiers}:
                        errors.append(FieldError(
                            "profiles[0].identifiers",
                            "identifiers cannot be changed with this API (use the Update Identifier API); send "
                            "the stored identifiers or none",
                            reg.CODE_INVALID_IDENTIFIER,
                        ))
                        break
            if errors:
                raise ValidationFailed("The customer update is invalid", errors)
            for account in accounts:
                if profile.first_name is not None:
                    account.first_name = profile.first_name
                if profile.last_name is not None:
                    account.last_name = profile.last_name
                if profile.fields is not None:
                    account.fields.update(profile.fields)
                if profile.comm_channels is not None:
                    account.comm_channels = [dict(c) for c in profile.comm_channels]
                account.updated_at = now
        customer.extended_fields.update(update.extended_fields)
        customer.updated_at = now
        customer.audit.append(AuditEntry(now, "update", actor, [source], user_context))
        return customer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class CapillaryStore:
    def __init__(
        self,
        till_username: str,
        till_password: str,
        oauth_key: str,
        oauth_secret: str,
        rng_seed: str,
        rpm: int,
        rng: random.Random,
    ) -> None:
        self.till_username = till_username
        self.till_password = till_password
        self.oauth_key = oauth_key
        self.oauth_secret = oauth_secret
        self.rng_seed = rng_seed
        self.config = OrgConfig()
        self.book = CustomerBook(rng)
        self.limiter = SlidingWindowLimiter(rpm, 60.0)
        self._tokens: dict[str, datetime] = {}  # sha256(token) -> expiry
        self._issued = 0

    # OAuth tokens ------------------------------------------------------------------------------
    def issue_token(self, now: datetime) -> tuple[str, int]:
        """A signed JWT for the OAuth client, valid `config.token_ttl_seconds` of the virtual clock."""
        self._tokens = {k: v for k, v in self._tokens.items() if v > now}
        self._issued += 1
        ttl = self.config.token_ttl_seconds
        expires = now + timedelta(seconds=ttl)
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        claims = {"sub": self.oauth_key, "iat": int(now.timestamp()), "exp": int(expires.timestamp()),
                  "jti": f"{self.rng_seed}-{self._issued}"}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = hmac.new(self.rng_seed.encode(), f"{header}.{payload}".encode(), "sha256").digest()
        token = f"{header}.{payload}.{_b64(signature)}"
        self._tokens[secrets.sha256_hex(token)] = expires
        return token, ttl

    def token_expiry(self, token: str) -> datetime | None:
        return self._tokens.get(secrets.sha256_hex(token))

    # customers -----------------------------------------------------------------------------------
    def register(
        self, registration: reg.Registration, now: datetime, actor: str, user_context: dict[str, str]
    ) -> Outcome:
        return self.book.register(registration, self.config, now, actor, user_context)

    def lookup(self, source: str | None, kind: str, value: str) -> Customer:
        return self.book.lookup(source, kind, value)

    def update(
        self, customer_id: int, source: str, update: reg.Update, now: datetime, actor: str,
        user_context: dict[str, str],
    ) -> Customer:
        return self.book.update(customer_id, source, update, now, actor, user_context)

    def customer(self, customer_id: int) -> Customer | None:
        return self.book.get(customer_id)
