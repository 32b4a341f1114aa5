"""A channel's `custom_field_schema`: the rules a channel definition must follow, and the check of a
webhook payload against it. Pure (no HTTP, no state): every problem comes back as a `FieldError`.

Seed 000: a channel defines "the custom field schema (expected incoming fields)"; Let'sTrade
"ensures the payload matches the schema". What "matches" means here (assumed, documented in
openapi/letstrade-channels.yaml): every field the schema marks `required` is present, every value is
of its field's declared type, and no field the schema does not define is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from mock_server.errors import FieldError
from mock_server.schema import json_type

FIELD_TYPES: tuple[str, ...] = ("email", "string", "phone", "number", "boolean", "date")
CHANNEL_TYPES: tuple[str, ...] = ("customer", "product")

# Fields with a meaning in the stored document; a channel that defines one must give it this type.
CORE_FIELDS: dict[str, dict[str, str]] = {
    "customer": {"email": "email", "cell_number": "phone", "first_name": "string", "last_name": "string"},
    "product": {"sku": "string", "title": "string"},
}
# The payload identifiers (seed 000, "Critical Identifier Requirements"; `sku` is assumed).
IDENTIFIERS: dict[str, tuple[str, ...]] = {"customer": ("email", "cell_number"), "product": ("sku",)}

_EXPECTED = {
    "email": "an e-mail address such as john.doe@example.com",
    "string": "a string",
    "phone": "a phone number such as +27721234565 (E.164 recommended: +, country code, number; 7 to 15 digits)",
    "number": "a JSON number",
    "boolean": "true or false",
    "date": "a date as YYYY-MM-DD, e.g. 1990-04-12",
}

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATEXT}(\.{_ATEXT})*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PHONE_SEPARATORS = re.compile(r"[ ().-]")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}|[0-9]{7,15}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class FieldDef:
    """One entry of a channel's `custom_field_schema`."""

    name: str
    type: str
    required: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "required": self.required}


# -- value types --------------------------------------------------------------------------------
def is_email(value: str) -> bool:
    """A plain `local@domain.tld` address: dot-atom local part (at most 64 characters), a domain of at
    least two DNS labels, at most 254 characters in all. Quoted local parts and IP literals, which
    RFC 5321 allows but no CRM accepts, are refused."""
    if len(value) > 254 or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    if not 1 <= len(local) <= 64 or _LOCAL_PART.fullmatch(local) is None:
        return False
    labels = domain.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return False
    return all(_DOMAIN_LABEL.fullmatch(label) is not None for label in labels)


def is_phone(value: str) -> bool:
    """E.164 (`+27721234565`) or a national number (`0721234565`); spaces, dots, hyphens and
    brackets between digits are allowed; 7 to 15 digits."""
    if len(value) > 32:
        return False
    return _PHONE.fullmatch(_PHONE_SEPARATORS.sub("", value)) is not None


def is_date(value: str) -> bool:
    if _DATE.fullmatch(value) is None:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def value_problem(field_type: str, value: Any) -> str | None:
    """Why `value` is not of `field_type` (a sentence naming what was expected), or None."""
    expected = _EXPECTED[field_type]
    got = json_type(value)
    if field_type == "number":
        return None if got == "number" else f"must be {expected}, got {got}"
    if field_type == "boolean":
        return None if got == "boolean" else f"must be {expected}, got {got}"
    if got != "string":
        return f"must be {expected}, got {got}"
    if field_type == "email" and not is_email(value):
        return f"is not a valid e-mail address; expected {expected}"
    if field_type == "phone" and not is_phone(value):
        return f"is not a valid phone number; expected {expected}"
    if field_type == "date" and not is_date(value):
        return f"is not a valid date; expected {expected}"
    return None


# -- channel definitions ------------------------------------------------------------------------
def parse_fields(raw: Sequence[Mapping[str, Any]]) -> list[FieldDef]:
    """Field definitions from a `custom_field_schema` that `check_field_schema` accepted."""
    return [FieldDef(str(e["name"]), str(e["type"]), bool(e["required"])) for e in raw]


def check_field_schema(channel_type: str, raw: Any, root: str = "custom_field_schema") -> list[FieldError]:
    """Every problem with a channel's field schema.

    Beyond the shape (name, type in FIELD_TYPES, required), the rules are:
    - a field name is defined once;
    - a field with a meaning in the stored document keeps that meaning's type (`email` is `email`,
      `cell_number` is `phone`, `first_name`/`last_name`/`sku`/`title` are `string`);
    - identifier rule: a `customer` channel defines `email` or `cell_number`; a `product` channel
      defines `sku`. The document's "custom_field_schema.email: required if custom_field_schema.custom
      is absent" is read together with its identifier rule: `email` is required unless the schema
      defines the other identifier, `cell_number`. A field named `custom` exempts nothing, since a
      channel with neither identifier could never accept a payload (see the spec's
      CustomFieldSchema description).
    """
    if channel_type not in CHANNEL_TYPES:
        return [FieldError("channel_type", f"must be one of: {', '.join(CHANNEL_TYPES)}")]
    if not isinstance(raw, list):
        return [FieldError(root, "must be an array of field definitions {name, type, required}")]
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    core = CORE_FIELDS[channel_type]
    for index, entry in enumerate(raw):
        where = f"{root}[{index}]"
        if not isinstance(entry, Mapping):
            errors.append(FieldError(where, "must be an object {name, type, required}"))
            continue
        name, kind, required = entry.get("name"), entry.get("type"), entry.get("required")
        if not isinstance(name, str) or not name:
            errors.append(FieldError(f"{where}.name", "must be a non-empty string: the payload field's name"))
            name = None
        elif name in seen:
            errors.append(
                FieldError(
                    f"{where}.name", f"{name!r} is already defined at {root}[{seen[name]}]; define each field once"
                )
            )
        else:
            seen[name] = index
        if not isinstance(kind, str) or kind not in FIELD_TYPES:
            errors.append(FieldError(f"{where}.type", f"must be one of: {', '.join(FIELD_TYPES)}"))
        elif name in core and kind != core[name]:
            errors.append(
                FieldError(
                    f"{where}.type",
                    f"the {name} field of a {channel_type} channel must have type {core[name]}, not {kind}",
                )
            )
        if not isinstance(required, bool):
            errors.append(FieldError(f"{where}.required", "must be true or false"))
    identifiers = IDENTIFIERS[channel_type]
    if not any(name in seen for name in identifiers):
        if channel_type == "customer":
            message = (
                "a customer channel must define a field named email (required unless the schema defines "
                "cell_number): every payload is matched to a customer by email or cell_number"
            )
        else:
            message = "a product channel must define a field named sku: every payload is matched to a product by sku"
        errors.append(FieldError(root, message))
    return errors


# -- payloads -----------------------------------------------------------------------------------
def missing_identifier(channel_type: str, payload: Mapping[str, Any]) -> list[FieldError]:
    """The identifier rule of seed 000 on a payload: `email` or `cell_number` (a product: `sku`)
    present and not empty."""
    identifiers = IDENTIFIERS[channel_type]
    if any(_present(payload.get(name)) for name in identifiers):
        return []
    if channel_type == "customer":
        return [
            FieldError("email", "is missing, and so is cell_number: send at least one, it identifies the customer"),
            FieldError("cell_number", "is missing, and so is email: send at least one, it identifies the customer"),
        ]
    return [FieldError("sku", "is required: it identifies the product")]


def _present(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return value is not None


def check_payload(fields: Sequence[FieldDef], payload: Mapping[str, Any]) -> list[FieldError]:
    """Every way `payload` breaks the channel's field schema: required fields missing (or null),
    values not of their declared type, and fields the schema does not define (each listed)."""
    errors: list[FieldError] = []
    for field in fields:
        if field.name not in payload:
            if field.required:
                errors.append(FieldError(field.name, "is required by this channel's custom_field_schema but missing"))
            continue
        problem = value_problem(field.type, payload[field.name])
        if problem is not None:
            errors.append(FieldError(field.name, problem))
    defined = {field.name for field in fields}
    unknown = [name for name in payload if name not in defined]
    if unknown:
        listing = ", ".join(sorted(defined)) or "none"
        errors.extend(
            FieldError(name, f"is not defined in this channel's custom_field_schema (defined fields: {listing})")
            for name in unknown
        )
    return errors


def unknown_fields(fields: Sequence[FieldDef], payload: Mapping[str, Any]) -> list[str]:
    defined = {field.name for field in fields}
    return [name for name in payload if name not in defined]
