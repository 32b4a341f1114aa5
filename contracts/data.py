"""Realistic request data where it matters: names, e-mail addresses, phone numbers, money and the
shapes a real client sends (a basket whose totals add up, a channel whose field schema has an
identifier, a Capillary profile whose identifiers are what their type says).

Applied to POSITIVE cases only (`flatmap_case` hooks registered per schema, see `hooks`):
a negative case is invalid on purpose and must reach the target as generated. The Faker
instance is seeded from hypothesis, so every case is reproducible and shrinks.
"""

from __future__ import annotations

import random
import re
import string
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import hypothesis.strategies as st
import schemathesis
from faker import Faker
from schemathesis import GenerationMode

from contracts import prose

_FAKE = Faker("en_US")
CENT = Decimal("0.01")
# Where a mock's outgoing webhook deliveries go in positive cases: a local port nothing listens
# on (connection refused at once), so fuzzing never makes the mock call out to the internet.
DISCARD_URL = "http://127.0.0.1:9/lcs-webhook"


def is_positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode == GenerationMode.POSITIVE


def seeded(rnd: random.Random) -> Faker:
    _FAKE.seed_instance(rnd.getrandbits(64))
    return _FAKE


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def digits(rnd: random.Random, count: int) -> str:
    return "".join(rnd.choice(string.digits) for _ in range(count))


def za_cell(rnd: random.Random) -> str:
    """A South African mobile number in E.164 form (+27 and 9 digits starting 6-8)."""
    return f"+27{rnd.choice('678')}{digits(rnd, 8)}"


def unique_email(fake: Faker, rnd: random.Random) -> str:
    user = fake.user_name().replace(".", "_")[:20] or "customer"
    return f"{user}.{digits(rnd, 6)}@{fake.free_email_domain()}"


def hex_id(rnd: random.Random, length: int = 24) -> str:
    return "".join(rnd.choice("0123456789abcdef") for _ in range(length))


# -- Let'sTrade POS ----------------------------------------------------------------------------------
def pos_product(fake: Faker, rnd: random.Random) -> tuple[dict[str, Any], Decimal]:
    price = Decimal(rnd.randint(500, 25000)) / 100
    quantity = rnd.randint(1, 3)
    product: dict[str, Any] = {
        "sku": f"SKU-{digits(rnd, 6)}",
        "pid": hex_id(rnd),
        "quantity": str(quantity),
        "price": money(price),
        "title": fake.word().title(),
        "on_promotion": False,
        "barcode": digits(rnd, 13),
    }
    line = price * quantity
    if rnd.random() < 0.3:
        condiment_price = Decimal(rnd.randint(0, 1500)) / 100
        product["condiments"] = [
            {
                "pid": hex_id(rnd),
                "sku": f"CND-{digits(rnd, 4)}",
                "title": fake.word().title(),
                "price": money(condiment_price),
                "quantity": "1",
            }
        ]
        line += condiment_price * quantity
    if rnd.random() < 0.3:
        promotion = (price * Decimal("0.8")).quantize(CENT)
        product["on_promotion"] = True
        product["promotion_price"] = money(promotion)
        line = line - (price - promotion) * quantity
    return product, line


def pos_basket(body: dict[str, Any], rnd: random.Random, *, finalise: bool) -> None:
    """A basket whose amounts add up: sub_total = the lines, total = sub_total + VAT + fees."""
    fake = seeded(rnd)
    basket = body.get("basket")
    if not isinstance(basket, dict):
        return
    products = [pos_product(fake, rnd) for _ in range(rnd.randint(1, 4))]
    sub_total = sum((line for _, line in products), Decimal(0))
    vat = (sub_total * Decimal("0.15")).quantize(CENT, rounding=ROUND_HALF_UP)
    service_fee = Decimal(rnd.choice([0, 0, 500, 1000])) / 100
    total = sub_total + vat + service_fee
    basket["uuid"] = f"lcs-{fake.uuid4()}"
    basket["product_list"] = [product for product, _ in products]
    basket["sub_total"], basket["vat"], basket["total"] = money(sub_total), money(vat), money(total)
    basket["service_fee"], basket["delivery_fee"], basket["discount"] = money(service_fee), "0.00", "0.00"
    if finalise:
        basket["outstanding_amount"] = money(total)
        basket.pop("outstanding", None)
        basket.pop("external_vouchers", None)
        basket["vouchers"], basket["deals"] = [], []
        basket["product_handling_fees"] = "0.00"
    else:
        basket["outstanding"] = money(total)
        if basket.get("external_vouchers"):
            product = basket["product_list"][0]
            basket["external_vouchers"] = [
                {
                    "id": f"EXT-{digits(rnd, 5)}",
                    "title": fake.catch_phrase()[:40],
                    "value": "5.00",
                    "sku": product["sku"],
                    "quantity": "1",
                    "apply_to_promotion": bool(rnd.getrandbits(1)),
                }
            ]
    if "user" in basket:
        cell = za_cell(rnd)
        basket["user"] = {
            "name": fake.first_name(),
            "surname": fake.last_name(),
            "email": unique_email(fake, rnd),
            "cell_country_code": "+27",
            "cell_number": cell[1:],
        }


# -- Let'sTrade channels -----------------------------------------------------------------------------
def channel_field_schema(channel_type: str, rnd: random.Random) -> list[dict[str, Any]]:
    if channel_type == "product":
        fields = [
            {"name": "sku", "type": "string", "required": True},
            {"name": "title", "type": "string", "required": False},
        ]
    else:
        fields = [
            {"name": "email", "type": "email", "required": True},
            {"name": "first_name", "type": "string", "required": True},
            {"name": "last_name", "type": "string", "required": False},
            {"name": "cell_number", "type": "phone", "required": False},
        ]
    extras = [("loyalty_tier", "string"), ("points", "number"), ("vip", "boolean"), ("joined_on", "date")]
    for name, kind in rnd.sample(extras, rnd.randint(0, 2)):
        fields.append({"name": name, "type": kind, "required": False})
    return fields


def channel_payload(field_schema: list[dict[str, Any]], rnd: random.Random) -> dict[str, Any]:
    """A webhook payload that satisfies a channel's own field schema."""
    fake = seeded(rnd)
    payload: dict[str, Any] = {}
    for spec in field_schema:
        name, kind = str(spec.get("name")), str(spec.get("type", "string"))
        if not spec.get("required") and rnd.random() < 0.3:
            continue
        if kind == "email":
            payload[name] = unique_email(fake, rnd)
        elif kind == "phone":
            payload[name] = za_cell(rnd)
        elif kind == "number":
            payload[name] = rnd.randint(0, 5000)
        elif kind == "boolean":
            payload[name] = bool(rnd.getrandbits(1))
        elif kind == "date":
            payload[name] = fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat()
        elif name == "first_name":
            payload[name] = fake.first_name()
        elif name == "last_name":
            payload[name] = fake.last_name()
        elif name == "sku":
            payload[name] = f"SKU-{digits(rnd, 6)}"
        else:
            payload[name] = fake.word()
    # seed 000: every payload carries an identifier (email or cell_number; sku for products)
    defined = {str(spec.get("name")): str(spec.get("type", "string")) for spec in field_schema}
    identifiers = [name for name in ("email", "cell_number", "sku") if name in defined]
    if identifiers and not any(name in payload for name in identifiers):
        name = identifiers[0]
        payload[name] = {"email": unique_email(fake, rnd), "cell_number": za_cell(rnd)}.get(
            name, f"SKU-{digits(rnd, 6)}"
        )
    return payload


# -- Capillary ---------------------------------------------------------------------------------------
LOOKUP_IDENTIFIERS = ("mobile", "email", "externalId", "cardnumber")
# capillary.yaml Source (a profile without one takes the registration's `source` query parameter)
CAPILLARY_SOURCES = ("INSTORE", "ECOMMERCE", "WEBSITE", "MOBILE_APP")


def capillary_identifier(kind: str, fake: Faker, rnd: random.Random) -> str | None:
    if kind == "mobile":
        return f"91{rnd.choice('6789')}{digits(rnd, 9)}"
    if kind == "email":
        return unique_email(fake, rnd)
    if kind == "externalId":
        return f"EXT{digits(rnd, 9)}"
    if kind == "cardnumber":
        return digits(rnd, 12)
    return None


def capillary_profile(profile: dict[str, Any], fake: Faker, rnd: random.Random) -> None:
    if "firstName" in profile:
        profile["firstName"] = fake.first_name()
    if "lastName" in profile:
        profile["lastName"] = fake.last_name()
    seen: dict[str, str] = {}
    identifiers = []
    for identifier in profile.get("identifiers") or []:
        if not isinstance(identifier, dict):
            continue
        kind = str(identifier.get("type"))
        if kind not in LOOKUP_IDENTIFIERS:  # seed 003: identifier types are mobile, email, externalId
            kind = identifier["type"] = rnd.choice(LOOKUP_IDENTIFIERS)
        if kind in seen and kind != "cardnumber":
            continue
        value = capillary_identifier(kind, fake, rnd)
        if value is not None:
            identifier["value"] = value
            seen[kind] = value
        identifier.pop("extendedFields", None)
        identifiers.append(identifier)
    if not identifiers:
        value = capillary_identifier("mobile", fake, rnd)
        identifiers.append({"type": "mobile", "value": value})
        seen["mobile"] = str(value)
    profile["identifiers"] = identifiers
    channels = []
    for channel in profile.get("commChannels") or []:
        if isinstance(channel, dict) and channel.get("type") in seen:
            channel["value"] = seen[str(channel["type"])]
            channels.append(channel)
    profile["commChannels"] = channels


def capillary_registration(body: dict[str, Any], rnd: random.Random) -> None:
    fake = seeded(rnd)
    profiles = [p for p in body.get("profiles") or [] if isinstance(p, dict)]
    sources: set[tuple[Any, Any]] = set()
    kept = []
    for profile in profiles:
        key = (profile.get("source"), profile.get("accountId", ""))
        if key in sources:
            continue
        sources.add(key)
        capillary_profile(profile, fake, rnd)
        kept.append(profile)
    if kept:
        body["profiles"] = kept
    body["extendedFields"] = {}  # which ones an organisation enables is its own configuration
    enrolments = []
    programs: set[int] = set()
    for enrolment in body.get("loyaltyProgramEnrollments") or []:
        if not isinstance(enrolment, dict):
            continue
        program = rnd.choice([469, 470, 471])
        if program in programs:
            continue
        programs.add(program)
        enrolments.append(
            {
                "programId": program,
                "tierNumber": rnd.randint(1, 3),
                "loyaltyPoints": rnd.randint(0, 200),
                "tierExpiryDate": "2030-05-11T16:36:17+05:30",
                "pointsExpiryDate": "2030-05-11T16:36:17+05:30",
            }
        )
    if "loyaltyProgramEnrollments" in body:
        body["loyaltyProgramEnrollments"] = enrolments


# -- per operation -----------------------------------------------------------------------------------
def _customtrades(body: dict[str, Any], rnd: random.Random) -> None:
    fake = seeded(rnd)
    replace = {
        "first_name": fake.first_name,
        "last_name": fake.last_name,
        "company_name": fake.company,
        "email": lambda: unique_email(fake, rnd),
        "phone": lambda: fake.numerify("###-###-####"),
        "notes": fake.sentence,
        "physical_address1": fake.street_address,
        "billing_address1": fake.street_address,
        "physical_city": fake.city,
        "billing_city": fake.city,
        "physical_state": fake.state_abbr,
        "billing_state": fake.state_abbr,
        "physical_zip": fake.zipcode,
        "billing_zip": fake.zipcode,
    }
    for name, make in replace.items():
        if isinstance(body.get(name), str):
            body[name] = make()


def _loke(operation: str, case: Any, rnd: random.Random) -> None:
    fake = seeded(rnd)
    body = case.body
    if operation == "upsertWebhook" and isinstance(body, dict):
        body["url"] = DISCARD_URL
        body["secret"] = fake.password(length=24, special_chars=False)
    elif operation == "adjustPoints" and isinstance(body, dict):
        body["amount"] = rnd.choice([-1, 1]) * rnd.randint(1, 500)
        if "notes" in body:
            body["notes"] = fake.sentence()
    elif operation == "createCustomerList" and isinstance(body, dict):
        body["name"] = fake.catch_phrase()
    if isinstance(case.query, dict):
        if "email" in case.query:
            case.query["email"] = unique_email(fake, rnd)
        if "phoneNumber" in case.query:
            case.query["phoneNumber"] = f"+614{digits(rnd, 8)}"


def _letstrade_channels(operation: str, body: Any, rnd: random.Random) -> None:
    if not isinstance(body, dict):
        return
    fake = seeded(rnd)
    if operation in ("createChannel", "updateChannel") and "custom_field_schema" in body:
        body["custom_field_schema"] = channel_field_schema(str(body.get("channel_type", "customer")), rnd)
    if operation == "createChannel":
        body["type"] = "product_webhook" if body.get("channel_type") == "product" else "customer_webhook"
    elif operation == "signUp":
        body["name"], body["email"] = fake.first_name(), unique_email(fake, rnd)
        body["password"] = fake.password(length=16)
        for name, make in (("surname", fake.last_name), ("cell_number", lambda: za_cell(rnd))):
            if name in body:
                body[name] = make()
        if "birthday" in body:
            body["birthday"] = fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat()
    elif operation == "signIn":
        body["email"], body["password"] = unique_email(fake, rnd), fake.password(length=16)


def realistic(api: str, case: Any, rnd: random.Random) -> Any:
    """`case` with realistic values (positive cases only; others are returned untouched)."""
    if not is_positive(case):
        return case
    raw = case.operation.definition.raw
    operation = str(raw.get("operationId", "")) if isinstance(raw, dict) else ""
    body = case.body
    if api == "customtrades" and isinstance(body, dict):
        _customtrades(body, rnd)
    elif api == "letstrade-pos" and operation in ("getOfferings", "finaliseOfferings") and isinstance(body, dict):
        pos_basket(body, rnd, finalise=operation == "finaliseOfferings")  # codes: `prose` (x-unique-by-prefix)
    elif api == "letstrade-channels":
        _letstrade_channels(operation, body, rnd)
    elif api == "capillary" and isinstance(body, dict):
        if operation == "registerCustomer":
            capillary_registration(body, rnd)
        elif operation == "updateCustomer":
            fake = seeded(rnd)
            for profile in body.get("profiles") or []:
                if isinstance(profile, dict):
                    for name, make in (("firstName", fake.first_name), ("lastName", fake.last_name)):
                        if name in profile:
                            profile[name] = make()
    elif api == "loke":
        _loke(operation, case, rnd)
    return case


def install(schema: schemathesis.BaseSchema, api: str) -> None:
    """Register the realistic-data hook on this schema only (never globally)."""

    @schema.hook("flatmap_case")
    def realistic_data(context: Any, case: Any) -> st.SearchStrategy[Any]:
        if not is_positive(case):
            return st.just(case)
        return st.randoms(use_true_random=False).map(lambda rnd: realistic(api, case, rnd))


# -- documented rules beyond the JSON schemas ---------------------------------------------------------
# Some refusals are documented in a spec's prose, not its schema (e.g. "a customer channel must
# define email or cell_number"). A positive case (of any phase: examples, coverage, fuzzing) is
# brought within those documented rules just before it is sent, with the smallest change, so
# `positive_data_acceptance` reports only refusals no document explains. Each rule names the
# spec passage it follows.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[0-9]{7,15}$")
_TYPED_NAMES = {
    "email": "email",
    "cell_number": "phone",
    "first_name": "string",
    "last_name": "string",
    "sku": "string",
    "title": "string",
}


def _channel_schema_rules(body: dict[str, Any], channel_type: str) -> None:
    """letstrade-channels.yaml createChannel/updateChannel: field names unique, fields with a
    meaning in the stored document typed as documented, and an identifier field present."""
    fields = body.get("custom_field_schema")
    if not isinstance(fields, list):
        return
    kept: list[Any] = []
    names: set[str] = set()
    for spec in fields:
        if not isinstance(spec, dict) or spec.get("name") in names:
            continue
        names.add(str(spec.get("name")))
        if spec.get("name") in _TYPED_NAMES:
            spec["type"] = _TYPED_NAMES[str(spec["name"])]
        kept.append(spec)
    identifiers = {"sku"} if channel_type == "product" else {"email", "cell_number"}
    if not names & identifiers:
        name = "sku" if channel_type == "product" else "email"
        kept.append({"name": name, "type": _TYPED_NAMES[name], "required": False})
    body["custom_field_schema"] = kept


def _sign_up_rules(body: dict[str, Any], rnd: random.Random) -> None:
    """letstrade-channels.yaml signUp: 400 for an e-mail that is not local@domain.tld or a
    cell_number that is not 7 to 15 digits."""
    if isinstance(body.get("email"), str) and not _EMAIL.match(body["email"]):
        body["email"] = unique_email(seeded(rnd), rnd)
    if isinstance(body.get("cell_number"), str) and not _PHONE.match(body["cell_number"]):
        body["cell_number"] = za_cell(rnd)


def _lookup_identifier_first(identifiers: list[Any], types: set[str], fake: Faker, rnd: random.Random) -> None:
    """The spec's link from a registration to its lookup reads the first identifier of the first
    profile, and lookups take only mobile, email, externalId and cardnumber: put one of those first
    (the thorough run followed the link with a registration whose first identifier was a
    `martjackId`, which the lookup rightly refuses)."""
    at = next((i for i, found in enumerate(identifiers) if found.get("type") in LOOKUP_IDENTIFIERS), None)
    if at is not None:
        identifiers.insert(0, identifiers.pop(at))
    elif "mobile" not in types:
        identifiers.insert(0, {"type": "mobile", "value": capillary_identifier("mobile", fake, rnd)})


def _registration_sources(body: dict[str, Any], query: dict[str, Any], rnd: random.Random) -> None:
    """capillary.yaml registerCustomer: a profile without `source` takes the query's `source`, and
    one of the query's source without `accountId` the query's `accountId` (a profile's own values
    win); with neither, 8004. Written into the profiles, so the source-account rules below see
    the accounts the mock will see."""
    source, account = query.get("source"), query.get("accountId")
    for profile in body.get("profiles") or []:
        if not isinstance(profile, dict):
            continue
        if "source" not in profile:
            profile["source"] = source if isinstance(source, str) else rnd.choice(CAPILLARY_SOURCES)
        if "accountId" not in profile and isinstance(account, str) and profile["source"] == source:
            profile["accountId"] = account


def _capillary_rules(body: dict[str, Any], rnd: random.Random) -> None:
    """capillary.yaml registerCustomer: identifiers valid for their type (8013/8014), one value
    per type in a profile (8013), a source account once (8014), extended fields only the ones the
    organisation enables (8014; the suite sends none), a program enrolled once (8014)."""
    fake = seeded(rnd)
    seen_accounts: set[tuple[Any, Any]] = set()
    profiles = []
    for profile in body.get("profiles") or []:
        if not isinstance(profile, dict):
            profiles.append(profile)
            continue
        account = (profile.get("source"), profile.get("accountId", ""))
        if account in seen_accounts:
            continue
        seen_accounts.add(account)
        types: set[str] = set()
        identifiers = []
        for identifier in profile.get("identifiers") or []:
            if not isinstance(identifier, dict):
                continue
            kind = str(identifier.get("type"))
            if kind in types and kind != "cardnumber":
                continue
            types.add(kind)
            value = identifier.get("value")
            if kind == "email" and not (isinstance(value, str) and _EMAIL.match(value)):
                identifier["value"] = unique_email(fake, rnd)
            elif kind == "mobile" and not (isinstance(value, str) and re.match(r"^\+?[0-9]{6,15}$", value)):
                identifier["value"] = capillary_identifier("mobile", fake, rnd)
            elif isinstance(value, str) and not value.strip():
                identifier["value"] = capillary_identifier(kind, fake, rnd) or f"id{digits(rnd, 8)}"
            identifier.pop("extendedFields", None)
            identifiers.append(identifier)
        if not profiles and identifiers:
            _lookup_identifier_first(identifiers, types, fake, rnd)
        if "identifiers" in profile:
            profile["identifiers"] = identifiers
        profiles.append(profile)
    if "profiles" in body:
        body["profiles"] = profiles
    if "extendedFields" in body:
        body["extendedFields"] = {}
    enrolments = body.get("loyaltyProgramEnrollments")
    if isinstance(enrolments, list):
        programs: set[Any] = set()
        unique = []
        for enrolment in enrolments:
            program = enrolment.get("programId") if isinstance(enrolment, dict) else None
            if program is not None and program in programs:
                continue
            programs.add(program)
            unique.append(enrolment)
        body["loyaltyProgramEnrollments"] = unique


MAX_AMOUNT = Decimal("999999999999999.99")
_DECIMAL_STRING = re.compile(r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$")


def _amount(raw: Any) -> Decimal | None:
    return Decimal(raw) if isinstance(raw, str) and _DECIMAL_STRING.match(raw) else None


def _item_amount(item: dict[str, Any]) -> Decimal:
    """quantity x (price + condiments), as letstrade-pos.yaml's ValidationError bounds it."""
    condiments = sum(
        ((_amount(c.get("price")) or Decimal(0)) * (_amount(c.get("quantity", "1")) or Decimal(0)))
        for c in item.get("condiments") or []
        if isinstance(c, dict)
    )
    return (_amount(item.get("quantity")) or Decimal(0)) * ((_amount(item.get("price")) or Decimal(0)) + condiments)


def basket_amounts_allowed(node: Any) -> bool:
    """letstrade-pos.yaml (ValidationError): no amount in a basket is negative or above
    999999999999999.99, nor is any product's (or add-on's) quantity x (price + condiments)."""
    if isinstance(node, dict):
        if "price" in node and _item_amount(node) > MAX_AMOUNT:
            return False
        return all(basket_amounts_allowed(value) for value in node.values())
    if isinstance(node, list):
        return all(basket_amounts_allowed(value) for value in node)
    amount = _amount(node)
    return amount is None or Decimal(0) <= amount <= MAX_AMOUNT


def _pos_rules(operation: str, body: dict[str, Any], rnd: random.Random) -> None:
    """letstrade-pos.yaml getOfferings/finaliseOfferings: a basket with an amount the document
    refuses (found by the 20-seed run: a links-phase finalise generated afresh, with negative
    add-on prices) is replaced by a realistic one; a valid basket (a link's) is left alone."""
    if not basket_amounts_allowed(body.get("basket")):
        pos_basket(body, rnd, finalise=operation == "finaliseOfferings")
    if not basket_amounts_allowed(body.get("basket")):  # amounts in members pos_basket keeps
        body["basket"] = {}
        pos_basket(body, rnd, finalise=operation == "finaliseOfferings")


def _loke_rules(operation: str, case: Any) -> None:
    """loke.yaml: `after` is an opaque cursor only taken from X-Next-Page (anything else is 400);
    adjustPoints refuses amount 0 and deductions below the balance (400)."""
    if isinstance(case.query, dict):
        case.query.pop("after", None)
    if operation == "adjustPoints" and isinstance(case.body, dict) and isinstance(case.body.get("amount"), int):
        case.body["amount"] = abs(case.body["amount"]) or 1


def _fill(name: str, schema: dict[str, Any], rnd: random.Random) -> Any:
    """A value for a member an `x-one-of-required` group needs."""
    if schema.get("format") == "email":
        return unique_email(seeded(rnd), rnd)
    if name in ("cell_number", "mobile", "phone"):
        return za_cell(rnd)
    examples = schema.get("examples")
    return examples[0] if isinstance(examples, list) and examples else None


def prose_keywords(api: str, case: Any, rnd: random.Random) -> None:
    """The rules the spec states in our `x-` keywords (`prose.py`), on the case's body."""
    schema = prose.request_body_schema(api, case.method, case.path)
    if schema is not None and isinstance(case.body, (dict, list)):
        case.body = prose.honour(schema, case.body, rnd, _fill)


def documented_rules(api: str, case: Any, rnd: random.Random, channel_type: Any = None) -> None:
    """Bring a positive case within the rules its spec documents in prose (mutates it): first the
    rules in machine-readable form (our `x-` keywords), then those only this module knows.
    `channel_type(channel_id)` tells an updated channel's type (its new field schema must keep
    that type's identifier)."""
    if not is_positive(case):
        return
    prose_keywords(api, case, rnd)
    raw = case.operation.definition.raw
    operation = str(raw.get("operationId", "")) if isinstance(raw, dict) else ""
    body = case.body
    if api == "letstrade-pos" and operation in ("getOfferings", "finaliseOfferings") and isinstance(body, dict):
        _pos_rules(operation, body, rnd)
    if api == "letstrade-channels" and isinstance(body, dict):
        if operation == "createChannel":
            _channel_schema_rules(body, str(body.get("channel_type", "customer")))
        elif operation == "updateChannel":
            body.pop("type", None)
            body.pop("channel_type", None)
            if "custom_field_schema" in body:
                known = channel_type(str(case.path_parameters.get("channel_id"))) if channel_type else None
                _channel_schema_rules(body, str(known or "customer"))
        elif operation == "signUp":
            _sign_up_rules(body, rnd)
    elif api == "capillary" and isinstance(body, dict) and operation in ("registerCustomer", "updateCustomer"):
        if operation == "registerCustomer":
            _registration_sources(body, case.query if isinstance(case.query, dict) else {}, rnd)
        _capillary_rules(body, rnd)
        if operation == "updateCustomer":  # capillary.yaml updateCustomer: identifiers and source cannot change
            for profile in body.get("profiles") or []:
                if isinstance(profile, dict):
                    profile.pop("identifiers", None)
                    profile.pop("source", None)
    elif api == "loke":
        _loke_rules(operation, case)
