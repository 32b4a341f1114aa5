"""The organisation's configuration as the mock models it (the `settings` of the `capillary`
fixtures section). Pure: parsing and checking only.

Everything here is an assumption about configuration the seed only hints at: the seed's samples
show welcome points, coupons and alternate currency awarded on registration, warning 8107 when the
organisation has no default customer status label, and warning 1302 about a supplementary
program; the organisation decides which of them happen. Defaults: no default status label (so the
seed's 8107 appears), no welcome rewards, no supplementary programs, the extended fields of the
seed's samples and field table.

Fixture keys (all optional; a section replaces only the keys it gives):

    default_status_label: "Active"            # null = not configured -> warning 8107
    welcome_points: "100"                       # decimal string or number, awarded to new customers
    welcome_coupons:                            # issued to new customers
      - {description: "Welcome Offer - 10% flat discount", coupon_type: PE, discount_code: NO_VALUE,
         valid_days: 30}                        # or valid_till: "2025-07-29T23:59:59Z"
    welcome_alternate_currencies:
      - {identifier: rgpws7, name: ac1, value: "110"}
    supplementary_program_ids: [501]            # enrolments in these programs are supplementary
    extended_fields:                            # what GET /v2/extendedFields lists and registration accepts
      - {name: gender, label: Gender, data_type: STANDARD_ENUM, scope: CUSTOMER, possible_values: [Male, Female]}
    token_ttl_seconds: 3600                     # OAuth token life, 1..3600
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mock_server.errors import FieldError

MAX_AMOUNT = Decimal("1000000000")  # the largest points / currency amount the mock accepts
MAX_TOKEN_TTL = 3600  # "token life at most 60 minutes" (Capillary's public docs)
SCOPES = ("CUSTOMER", "CARD")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class ExtendedFieldDef:
    name: str
    label: str
    data_type: str
    scope: str  # CUSTOMER (customer-level extendedFields) or CARD (a cardnumber identifier's extendedFields)
    possible_values: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "label": self.label, "dataType": self.data_type, "scope": self.scope}
        if self.possible_values:
            out["possibleValues"] = list(self.possible_values)
        return out


@dataclass(frozen=True)
class WelcomeCoupon:
    description: str
    coupon_type: str = "PE"
    discount_code: str = "NO_VALUE"
    valid_days: int | None = 30
    valid_till: datetime | None = None  # a fixed end; wins over valid_days


@dataclass(frozen=True)
class AlternateCurrency:
    identifier: str
    name: str
    value: Decimal


def _ext(name: str, label: str, data_type: str = "STRING", scope: str = "CUSTOMER", *values: str) -> ExtendedFieldDef:
    return ExtendedFieldDef(name, label, data_type, scope, tuple(values))


# The seed's field table (gender, city, state, area, zip), its samples (country_of_residence, dob,
# acquisition_channel, preferred_language, custom_card_name on a card) and its prose (age_group,
# preferred_store, nationality).
DEFAULT_EXTENDED_FIELDS: tuple[ExtendedFieldDef, ...] = (
    _ext("gender", "Gender", "STANDARD_ENUM", "CUSTOMER", "Male", "Female", "Other"),
    _ext("city", "City"),
    _ext("state", "State"),
    _ext("area", "Area"),
    _ext("zip", "ZIP code"),
    _ext("country_of_residence", "Country of residence"),
    _ext("dob", "Date of birth", "DATE"),
    _ext("acquisition_channel", "Acquisition channel"),
    _ext("preferred_language", "Preferred language"),
    _ext("age_group", "Age group", "STANDARD_ENUM", "CUSTOMER", "18-24", "25-34", "35-44", "45-54", "55+"),
    _ext("preferred_store", "Preferred store"),
    _ext("nationality", "Nationality"),
    _ext("custom_card_name", "Card name", "STRING", "CARD"),
)


@dataclass(frozen=True)
class OrgConfig:
    default_status_label: str | None = None
    welcome_points: Decimal = Decimal(0)
    welcome_coupons: tuple[WelcomeCoupon, ...] = ()
    welcome_alternate_currencies: tuple[AlternateCurrency, ...] = ()
    supplementary_program_ids: frozenset[int] = frozenset()
    extended_fields: tuple[ExtendedFieldDef, ...] = DEFAULT_EXTENDED_FIELDS
    token_ttl_seconds: int = MAX_TOKEN_TTL
    _by_scope: dict[str, dict[str, ExtendedFieldDef]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_scope: dict[str, dict[str, ExtendedFieldDef]] = {}
        for definition in self.extended_fields:
            by_scope.setdefault(definition.scope, {})[definition.name] = definition
        object.__setattr__(self, "_by_scope", by_scope)

    def extended_field(self, scope: str, name: str) -> ExtendedFieldDef | None:
        return self._by_scope.get(scope, {}).get(name)

    def extended_names(self, scope: str) -> list[str]:
        return [d.name for d in self.extended_fields if d.scope == scope]


KEYS = (
    "default_status_label",
    "welcome_points",
    "welcome_coupons",
    "welcome_alternate_currencies",
    "supplementary_program_ids",
    "extended_fields",
    "token_ttl_seconds",
)


def parse_amount(value: Any) -> Decimal | None:
    """A non-negative decimal amount (string or number) up to MAX_AMOUNT, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        return None
    return amount


def parse_datetime(value: str) -> datetime | None:
    """An RFC 3339 date-time (as JSON Schema's `format: date-time` accepts it), timezone-aware."""
    text = value.strip().upper()
    text = re.sub(r"(T\d\d:\d\d):60", r"\1:59", text)  # a leap second: the mock's clock has none
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _text(raw: Mapping[str, Any], key: str, where: str, errors: list[FieldError], default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        errors.append(FieldError(f"{where}.{key}", "is required: expected a non-empty string"))
        return ""
    return value


def _records(value: Any, where: str, errors: list[FieldError]) -> list[tuple[str, Mapping[str, Any]]]:
    if not isinstance(value, list):
        errors.append(FieldError(where, "expected a list of objects"))
        return []
    found = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            errors.append(FieldError(f"{where}[{index}]", "expected an object"))
            continue
        found.append((f"{where}[{index}]", item))
    return found


def _coupons(value: Any, where: str, errors: list[FieldError]) -> tuple[WelcomeCoupon, ...]:
    coupons = []
    for at, item in _records(value, where, errors):
        description = _text(item, "description", at, errors)
        coupon_type = _text(item, "coupon_type", at, errors, "PE")
        discount_code = _text(item, "discount_code", at, errors, "NO_VALUE")
        valid_till: datetime | None = None
        if item.get("valid_till") is not None:
            parsed = parse_datetime(str(item["valid_till"])) if isinstance(item["valid_till"], str) else None
            if parsed is None:
                errors.append(FieldError(f"{at}.valid_till", "expected an ISO 8601 date-time with an offset"))
            valid_till = parsed
        valid_days = item.get("valid_days", 30)
        if valid_days is not None and (isinstance(valid_days, bool) or not isinstance(valid_days, int)
                                       or not 1 <= valid_days <= 3650):
            errors.append(FieldError(f"{at}.valid_days", "expected a whole number of days from 1 to 3650"))
            valid_days = 30
        coupons.append(WelcomeCoupon(description, coupon_type, discount_code, valid_days, valid_till))
    return tuple(coupons)


def _currencies(value: Any, where: str, errors: list[FieldError]) -> tuple[AlternateCurrency, ...]:
    currencies = []
    seen: set[str] = set()
    for at, item in _records(value, where, errors):
        identifier = _text(item, "identifier", at, errors)
        name = _text(item, "name", at, errors)
        amount = parse_amount(item.get("value"))
        if amount is None:
            errors.append(FieldError(f"{at}.value", f"expected a decimal amount from 0 to {MAX_AMOUNT}"))
        if identifier in seen:
            errors.append(FieldError(f"{at}.identifier", f"{identifier!r} is listed twice"))
        seen.add(identifier)
        currencies.append(AlternateCurrency(identifier, name, amount or Decimal(0)))
    return tuple(currencies)


def _extended(value: Any, where: str, errors: list[FieldError]) -> tuple[ExtendedFieldDef, ...]:
    definitions = []
    seen: set[tuple[str, str]] = set()
    for at, item in _records(value, where, errors):
        name = _text(item, "name", at, errors)
        if name and not _NAME.match(name):
            errors.append(FieldError(f"{at}.name", "expected letters, digits and _ (starting with a letter)"))
        scope = item.get("scope", "CUSTOMER")
        if scope not in SCOPES:
            errors.append(FieldError(f"{at}.scope", f"expected one of {', '.join(SCOPES)}"))
        if (name, str(scope)) in seen:
            errors.append(FieldError(f"{at}.name", f"{name!r} is defined twice for scope {scope}"))
        seen.add((name, str(scope)))
        values = item.get("possible_values", [])
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            errors.append(FieldError(f"{at}.possible_values", "expected a list of strings"))
            values = []
        definitions.append(
            ExtendedFieldDef(
                name,
                str(item.get("label", name)),
                str(item.get("data_type", "STANDARD_ENUM" if values else "STRING")),
                str(scope),
                tuple(values),
            )
        )
    return tuple(definitions)


def parse_config(raw: Any, base: OrgConfig, where: str = "settings") -> tuple[OrgConfig, list[FieldError]]:
    """`base` with the keys `raw` gives replaced, and every problem found (record and field named).
    The returned config is only meaningful when the error list is empty."""
    errors: list[FieldError] = []
    if not isinstance(raw, Mapping):
        return base, [FieldError(where, "expected an object of organisation settings")]
    unknown = sorted(str(k) for k in raw if k not in KEYS)
    for key in unknown:
        errors.append(FieldError(f"{where}.{key}", f"unknown setting; expected one of {', '.join(KEYS)}"))
    changes: dict[str, Any] = {}
    if "default_status_label" in raw:
        label = raw["default_status_label"]
        if label is not None and (not isinstance(label, str) or not label.strip()):
            errors.append(FieldError(f"{where}.default_status_label", "expected a non-empty string or null"))
        changes["default_status_label"] = label
    if "welcome_points" in raw:
        points = parse_amount(raw["welcome_points"])
        if points is None:
            errors.append(FieldError(f"{where}.welcome_points", f"expected a decimal amount from 0 to {MAX_AMOUNT}"))
        changes["welcome_points"] = points or Decimal(0)
    if "welcome_coupons" in raw:
        changes["welcome_coupons"] = _coupons(raw["welcome_coupons"], f"{where}.welcome_coupons", errors)
    if "welcome_alternate_currencies" in raw:
        changes["welcome_alternate_currencies"] = _currencies(
            raw["welcome_alternate_currencies"], f"{where}.welcome_alternate_currencies", errors
        )
    if "supplementary_program_ids" in raw:
        ids = raw["supplementary_program_ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            errors.append(FieldError(f"{where}.supplementary_program_ids", "expected a list of program IDs (integers)"))
            ids = []
        changes["supplementary_program_ids"] = frozenset(ids)
    if "extended_fields" in raw:
        changes["extended_fields"] = _extended(raw["extended_fields"], f"{where}.extended_fields", errors)
    if "token_ttl_seconds" in raw:
        ttl = raw["token_ttl_seconds"]
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TOKEN_TTL:
            errors.append(FieldError(f"{where}.token_ttl_seconds", f"expected whole seconds from 1 to {MAX_TOKEN_TTL}"))
            ttl = MAX_TOKEN_TTL
        changes["token_ttl_seconds"] = ttl
    return replace(base, **changes), errors
