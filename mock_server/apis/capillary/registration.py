"""Capillary registration rules as pure functions: reading a registration body (truncation,
identifier and extended-field checks), deciding whether it creates a customer, adds source
accounts to one, or is refused, and the loyalty side effects and warnings it produces.

No HTTP and no clock: the store passes the time and its indexes in. Errors are `MockError`s with
Capillary's codes (HTTP statuses assumed, see the spec):

| code | HTTP | when |
|---|---|---|
| 3217 | 400 | source is not one of the documented values (schema `x-error-code`) |
| 8004 | 400 | a profile with no source, and none in the query |
| 8005 | 400 | no identifiers (schema `x-error-code-missing`) |
| 8006 | 409 | a profile's source account already exists on the customer its identifiers belong to |
| 8013 | 400 | an invalid identifier: empty value, malformed e-mail, two values for one type in a profile |
| 8014 | 400 | any other registration error: malformed mobile, identifiers of two different customers,
|      |     | a source account or program given twice, an unknown extended field or value |
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from mock_server.apis.capillary.org import MAX_AMOUNT, OrgConfig, parse_amount, parse_datetime
from mock_server.errors import Conflict, FieldError, ValidationFailed

NAME_LIMIT = 100  # seed: "The character limit for first names is 100. Characters exceeding this limit is ignored"
EMAIL_LIMIT = 255  # seed: "The character limit for an email can go up to 255 characters"
SOURCES = (
    "FACEBOOK", "WEB_ENGAGE", "WECHAT", "INSTORE", "MARTJACK", "TMALL", "TAOBAO", "JD", "ECOMMERCE",
    "WEBSITE", "LINE", "MOBILE_APP",
)
REPEATABLE_TYPES = frozenset({"cardnumber"})  # a customer may hold several cards in one source (assumed)

CODE_SOURCE_INVALID = 3217
CODE_NO_SOURCE = 8004
CODE_ALREADY_EXISTS = 8006
CODE_INVALID_IDENTIFIER = 8013
CODE_REGISTRATION_ERROR = 8014
CODE_NOT_FOUND = 8015
WARNING_NO_STATUS_LABEL = 8107
WARNING_SUPPLEMENTARY_EXPIRY = 1302

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_MOBILE = re.compile(r"^\+?[0-9]{6,15}$")
_POINTS_PLACES = Decimal("0.001")

AccountKey = tuple[str, str]  # (source, accountId or "")
IdentifierKey = tuple[str, str]  # (type, normalised value)


def truncate(value: str, limit: int) -> str:
    """Characters beyond `limit` are ignored (seed 003), counted as Unicode code points."""
    return value[:limit]


def normalise_value(kind: str, value: str) -> str:
    """The identifier value as stored and matched: e-mails truncated to 255 characters, mobiles
    without a leading `+` (the number always carries its country code), everything else as sent."""
    if kind == "email":
        return truncate(value, EMAIL_LIMIT)
    if kind == "mobile":
        return value.strip().removeprefix("+")
    return value


@dataclass(frozen=True)
class Identifier:
    type: str
    value: str
    series_id: int | None = None
    status_label: str | None = None
    extended_fields: Mapping[str, Any] | None = None

    @property
    def key(self) -> IdentifierKey:
        return (self.type, self.value)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "value": self.value}
        if self.series_id is not None:
            out["seriesId"] = self.series_id
        if self.status_label is not None:
            out["statusLabel"] = self.status_label
        if self.extended_fields is not None:
            out["extendedFields"] = dict(self.extended_fields)
        return out


@dataclass(frozen=True)
class Profile:
    source: str
    account_id: str
    identifiers: tuple[Identifier, ...]
    first_name: str | None = None
    last_name: str | None = None
    comm_channels: tuple[Mapping[str, Any], ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def account(self) -> AccountKey:
        return (self.source, self.account_id)


@dataclass(frozen=True)
class Enrolment:
    program_id: int
    tier_number: int | None
    points: Decimal
    tier_expiry: datetime | None
    tier_expiry_text: str | None
    points_expiry_text: str | None


@dataclass(frozen=True)
class Registration:
    profiles: tuple[Profile, ...]
    extended_fields: Mapping[str, str] = field(default_factory=dict)
    enrolments: tuple[Enrolment, ...] = ()
    status_label: str | None = None
    referral_code: str | None = None
    associated_with: str | None = None
    loyalty_type: str | None = None

    def identifier_keys(self) -> list[tuple[int, IdentifierKey]]:
        return [(index, ident.key) for index, profile in enumerate(self.profiles) for ident in profile.identifiers]


@dataclass(frozen=True)
class ProfileUpdate:
    first_name: str | None
    last_name: str | None
    fields: Mapping[str, Any] | None
    comm_channels: tuple[Mapping[str, Any], ...] | None
    account_id: str | None
    identifiers: tuple[Identifier, ...] | None  # as sent: they must equal the stored ones
    source: str | None  # as sent: it must equal the source being updated


@dataclass(frozen=True)
class Update:
    profile: ProfileUpdate | None
    extended_fields: Mapping[str, str]


# -- reading a body ------------------------------------------------------------------------------
def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _check_extended(
    values: Any, scope: str, where: str, config: OrgConfig, errors: list[FieldError]
) -> dict[str, str]:
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        errors.append(FieldError(where, "expected an object of extended fields", CODE_REGISTRATION_ERROR))
        return {}
    accepted: dict[str, str] = {}
    for name, value in values.items():
        definition = config.extended_field(scope, str(name))
        at = f"{where}.{name}"
        if definition is None:
            known = ", ".join(config.extended_names(scope)) or "none"
            errors.append(FieldError(
                at,
                f"unknown {scope.lower()}-level extended field; GET /v2/extendedFields lists the enabled "
                f"ones: {known}",
                CODE_REGISTRATION_ERROR,
            ))
            continue
        if not isinstance(value, str):
            errors.append(FieldError(at, "expected a string value", CODE_REGISTRATION_ERROR))
            continue
        if definition.possible_values and value not in definition.possible_values:
            allowed = ", ".join(repr(v) for v in definition.possible_values)
            errors.append(
                FieldError(at, f"{value!r} is not allowed; expected one of {allowed}", CODE_REGISTRATION_ERROR)
            )
            continue
        accepted[str(name)] = value
    return accepted


def _identifier(raw: Mapping[str, Any], where: str, config: OrgConfig, errors: list[FieldError]) -> Identifier | None:
    kind = str(raw.get("type", ""))
    value = raw.get("value")
    if not isinstance(value, str) or not value.strip():
        errors.append(FieldError(f"{where}.value", f"the {kind} identifier is empty", CODE_INVALID_IDENTIFIER))
        return None
    if kind == "email" and not _EMAIL.match(value):
        errors.append(FieldError(
            f"{where}.value", "is not a valid e-mail address; expected name@domain", CODE_INVALID_IDENTIFIER
        ))
        return None
    if kind == "mobile" and not _MOBILE.match(value.strip()):
        errors.append(FieldError(
            f"{where}.value",
            "is not a valid mobile number; expected 6 to 15 digits with the country code, optionally after +",
            CODE_REGISTRATION_ERROR,
        ))
        return None
    card_fields = raw.get("extendedFields")
    checked = _check_extended(card_fields, "CARD", f"{where}.extendedFields", config, errors)
    series = raw.get("seriesId")
    return Identifier(
        type=kind,
        value=normalise_value(kind, value),
        series_id=series if isinstance(series, int) and not isinstance(series, bool) else None,
        status_label=_str(raw.get("statusLabel")),
        extended_fields=checked if isinstance(card_fields, Mapping) else None,
    )


def _identifiers(raw: Any, where: str, config: OrgConfig, errors: list[FieldError]) -> tuple[Identifier, ...]:
    found: list[Identifier] = []
    by_type: dict[str, str] = {}
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(item, Mapping):
            continue  # the schema has refused it already
        at = f"{where}[{index}]"
        ident = _identifier(item, at, config, errors)
        if ident is None:
            continue
        if any(ident.key == seen.key for seen in found):
            continue  # the same identifier twice: harmless, kept once
        if ident.type not in REPEATABLE_TYPES and ident.type in by_type:
            errors.append(FieldError(
                f"{at}.value",
                f"a second {ident.type} ({ident.value!r}) in one profile; a profile has one {ident.type} "
                f"(already {by_type[ident.type]!r})",
                CODE_INVALID_IDENTIFIER,
            ))
            continue
        by_type[ident.type] = ident.value
        found.append(ident)
    return tuple(found)


def _name(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return truncate(value, NAME_LIMIT) if isinstance(value, str) else None


def _channels(raw: Any) -> tuple[Mapping[str, Any], ...]:
    return tuple(dict(c) for c in raw if isinstance(c, Mapping)) if isinstance(raw, list) else ()


def _enrolments(raw: Any, errors: list[FieldError]) -> tuple[Enrolment, ...]:
    found: list[Enrolment] = []
    seen: set[int] = set()
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(item, Mapping):
            continue
        at = f"loyaltyProgramEnrollments[{index}]"
        program = item.get("programId")
        if not isinstance(program, int) or isinstance(program, bool):
            errors.append(FieldError(f"{at}.programId", "is required to enrol: expected an integer program ID",
                                     CODE_REGISTRATION_ERROR))
            continue
        if program in seen:
            errors.append(FieldError(f"{at}.programId", f"program {program} is enrolled twice",
                                     CODE_REGISTRATION_ERROR))
            continue
        seen.add(program)
        points = Decimal(0)
        if item.get("loyaltyPoints") is not None:
            parsed = parse_amount(item["loyaltyPoints"])
            if parsed is None:
                errors.append(FieldError(f"{at}.loyaltyPoints", f"expected a number from 0 to {MAX_AMOUNT}",
                                         CODE_REGISTRATION_ERROR))
                continue
            points = parsed
        tier_text = _str(item.get("tierExpiryDate"))
        tier_expiry = parse_datetime(tier_text) if tier_text is not None else None
        if tier_text is not None and tier_expiry is None:
            errors.append(FieldError(f"{at}.tierExpiryDate", "expected YYYY-MM-DDTHH:MM:SS+/-HH:MM",
                                     CODE_REGISTRATION_ERROR))
            continue
        tier = item.get("tierNumber")
        found.append(Enrolment(
            program_id=program,
            tier_number=tier if isinstance(tier, int) and not isinstance(tier, bool) else None,
            points=points,
            tier_expiry=tier_expiry,
            tier_expiry_text=tier_text,
            points_expiry_text=_str(item.get("pointsExpiryDate")),
        ))
    return tuple(found)


def parse_registration(
    body: Mapping[str, Any], config: OrgConfig, *, source: str | None = None, account_id: str | None = None
) -> Registration:
    """A schema-valid registration body read into a `Registration`: names and e-mails truncated,
    identifiers checked and normalised, extended fields checked against the organisation's.
    `source` and `account_id` come from the query (the vendor's ecommerce samples send them
    there): a profile without its own `source` takes the query's, a profile of the query's source
    without its own `accountId` takes the query's; a profile's own values win (assumed).
    Every problem is collected into one `ValidationFailed`."""
    errors: list[FieldError] = []
    profiles: list[Profile] = []
    accounts: dict[AccountKey, int] = {}
    for index, raw in enumerate(body.get("profiles") or []):
        if not isinstance(raw, Mapping):
            continue
        where = f"profiles[{index}]"
        own_source = raw.get("source")
        if own_source is None and source is None:
            errors.append(FieldError(
                f"{where}.source",
                "is required: give the profile a source, or send source as a query parameter",
                CODE_NO_SOURCE,
            ))
        profile_source = str(own_source if own_source is not None else source or "")
        own_account = raw.get("accountId")
        if isinstance(own_account, str):
            profile_account = own_account
        elif account_id is not None and profile_source == source:
            profile_account = account_id
        else:
            profile_account = ""
        profile = Profile(
            source=profile_source,
            account_id=profile_account,
            identifiers=_identifiers(raw.get("identifiers"), f"{where}.identifiers", config, errors),
            first_name=_name(raw, "firstName"),
            last_name=_name(raw, "lastName"),
            comm_channels=_channels(raw.get("commChannels")),
            fields=dict(raw["fields"]) if isinstance(raw.get("fields"), Mapping) else {},
        )
        if profile.account in accounts:
            first = accounts[profile.account]
            errors.append(FieldError(
                f"{where}.source",
                f"source account {_describe(profile.account)} is already given by profiles[{first}]; "
                "send one profile per source account",
                CODE_REGISTRATION_ERROR,
            ))
        accounts.setdefault(profile.account, index)
        profiles.append(profile)
    extended = _check_extended(body.get("extendedFields"), "CUSTOMER", "extendedFields", config, errors)
    enrolments = _enrolments(body.get("loyaltyProgramEnrollments"), errors)
    if errors:
        raise ValidationFailed("Error in registration", errors)
    loyalty_info = body.get("loyaltyInfo")
    status_label = _str(body.get("statusLabel"))
    return Registration(
        profiles=tuple(profiles),
        extended_fields=extended,
        enrolments=enrolments,
        status_label=status_label if status_label and status_label.strip() else None,
        referral_code=_str(body.get("referralCode")) or None,
        associated_with=_str(body.get("associatedWith")),
        loyalty_type=_str(loyalty_info.get("loyaltyType")) if isinstance(loyalty_info, Mapping) else None,
    )


def parse_update(body: Mapping[str, Any] | None, config: OrgConfig) -> Update:
    """A schema-valid update body (at most one profile) read into an `Update`."""
    body = body or {}
    errors: list[FieldError] = []
    profile: ProfileUpdate | None = None
    raw_profiles = body.get("profiles") or []
    if raw_profiles and isinstance(raw_profiles[0], Mapping):
        raw = raw_profiles[0]
        identifiers = None
        if isinstance(raw.get("identifiers"), list):
            # only compared with the stored ones (which are truncated, so no format check here)
            identifiers = tuple(
                Identifier(str(i.get("type", "")), normalise_value(str(i.get("type", "")), i["value"]))
                for i in raw["identifiers"] if isinstance(i, Mapping) and isinstance(i.get("value"), str)
            )
        account_id = raw.get("accountId")
        profile = ProfileUpdate(
            first_name=_name(raw, "firstName"),
            last_name=_name(raw, "lastName"),
            fields=dict(raw["fields"]) if isinstance(raw.get("fields"), Mapping) else None,
            comm_channels=_channels(raw["commChannels"]) if isinstance(raw.get("commChannels"), list) else None,
            account_id=account_id if isinstance(account_id, str) else None,
            identifiers=identifiers,
            source=_str(raw.get("source")),
        )
    extended = _check_extended(body.get("extendedFields"), "CUSTOMER", "extendedFields", config, errors)
    if errors:
        raise ValidationFailed("The customer update is invalid", errors)
    return Update(profile, extended)


# -- deciding what a registration does -----------------------------------------------------------
def _describe(account: AccountKey) -> str:
    source, account_id = account
    return f"{source} (account {account_id})" if account_id else source


def resolve(
    registration: Registration,
    owner_of: Callable[[IdentifierKey], int | None],
    accounts_of: Callable[[int], Collection[AccountKey]],
) -> int | None:
    """The existing customer the registration adds source accounts to, or None for a new customer.

    - 8006 (nothing changes) when a customer that any of the identifiers belongs to already has one
      of the registration's source accounts: "customer already exists for same source".
    - 8014 when the identifiers belong to two or more different customers (they cannot be merged).
    - otherwise the identifiers' one customer (seed: "an identifier that exists in a different
      source" adds a new source account to the existing account), or a new customer.
    """
    owners: dict[int, list[tuple[int, IdentifierKey]]] = {}
    for index, key in registration.identifier_keys():
        owner = owner_of(key)
        if owner is not None:
            owners.setdefault(owner, []).append((index, key))
    for owner, matches in owners.items():
        existing = set(accounts_of(owner))
        for profile in registration.profiles:
            if profile.account in existing:
                index, (kind, value) = matches[0]
                raise Conflict(
                    f"Customer already exists for same source: {kind} {value!r} belongs to customer {owner}, "
                    f"which already has a source account in {_describe(profile.account)}; use the customer "
                    "update API to change it",
                    code=CODE_ALREADY_EXISTS,
                )
    if len(owners) > 1:
        described = "; ".join(
            f"{kind} {value!r} belongs to customer {owner}" for owner, matches in owners.items()
            for _, (kind, value) in matches[:1]
        )
        raise ValidationFailed(
            "Error in registration",
            [FieldError("profiles", f"the identifiers belong to different customers ({described})",
                        CODE_REGISTRATION_ERROR)],
        )
    return next(iter(owners), None)


# -- loyalty side effects and warnings -------------------------------------------------------------
def award(amount: Decimal) -> tuple[Decimal, int]:
    """(raw, awarded): the raw amount to three places, and the whole points awarded (fractions are
    dropped: assumed; the seed shows `rawAwardedPoints: 75.000`, `awardedPoints: 75`)."""
    raw = amount.quantize(_POINTS_PLACES, rounding=ROUND_HALF_UP)
    return raw, int(raw.to_integral_value(rounding=ROUND_DOWN))


def json_number(amount: Decimal) -> int | float:
    """A Decimal as a JSON number (Capillary sends numbers, e.g. 75.000)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def points_effect(raw: Decimal, awarded: int) -> dict[str, Any]:
    return {"entityType": "USER", "rawAwardedPoints": float(raw), "awardedPoints": awarded, "type": "points"}


def currency_effect(identifier: str, name: str, raw: Decimal, awarded: int) -> dict[str, Any]:
    return {
        "entityType": "USER",
        "rawAwardedValue": float(raw),
        "alternateCurrencyIdentifier": identifier,
        "alternateCurrencyName": name,
        "awardedValue": awarded,
        "type": "alternate_currency",
    }


def warning(code: int, message: str) -> dict[str, Any]:
    return {"status": False, "code": code, "message": message}


def status_label_warning(registration: Registration, config: OrgConfig) -> dict[str, Any] | None:
    """8107 when the organisation has no default status label and the registration names none
    (assumed: a `statusLabel` in the body gives the customer a label, so no default is needed)."""
    if registration.status_label is None and config.default_status_label is None:
        return warning(WARNING_NO_STATUS_LABEL, "Default customer status label not set")
    return None


def supplementary_warnings(
    enrolments: Iterable[Enrolment], membership_expiries: Iterable[datetime], config: OrgConfig
) -> list[dict[str, Any]]:
    """1302 for each enrolment in a supplementary program (the organisation's
    `supplementary_program_ids`) whose `tierExpiryDate` is before the customer's membership expiry:
    the latest `tierExpiryDate` of the customer's other (non-supplementary) enrolments. Assumed: the
    seed prints the warning but not its trigger."""
    latest = max(membership_expiries, default=None)
    if latest is None:
        return []
    return [
        warning(WARNING_SUPPLEMENTARY_EXPIRY, "supplementary program expiry is before membership expiry")
        for e in enrolments
        if e.program_id in config.supplementary_program_ids and e.tier_expiry is not None and e.tier_expiry < latest
    ]
