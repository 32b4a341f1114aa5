"""What `letstrade-channels` does to state: create and change channels, upsert customers and products
through a channel, sign users up. Pure domain (no HTTP): each function runs its checks first and
writes only when all pass, without awaiting in between, so concurrent requests cannot both pass a
check and no refusal leaves partial state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from mock_server import secrets
from mock_server.apis.letstrade.customers import Customer, split_cell
from mock_server.apis.letstrade.identity import User
from mock_server.apis.letstrade_channels.fieldschema import (
    CORE_FIELDS,
    check_field_schema,
    check_payload,
    is_email,
    is_phone,
    missing_identifier,
    parse_fields,
)
from mock_server.apis.letstrade_channels.store import Channel, ChannelsStore, Product, Profile
from mock_server.errors import Conflict, FieldError, Forbidden, NotFound, Unauthorized, ValidationFailed

RESOURCES = ("products", "orders", "customers")


def _permissions(raw: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
    return {name: {"read": bool(raw[name]["read"]), "write": bool(raw[name]["write"])} for name in RESOURCES}


# -- channels -----------------------------------------------------------------------------------
def check_channel(body: Mapping[str, Any]) -> list[FieldError]:
    """The rules of a channel definition beyond its JSON schema (which has already passed)."""
    return check_field_schema(str(body["channel_type"]), body["custom_field_schema"])


def create_channel(
    store: ChannelsStore,
    client_id: str,
    body: Mapping[str, Any],
    now: datetime,
    *,
    api_key: str | None = None,
    channel_id: str | None = None,
    webhook_uuid: str | None = None,
) -> tuple[Channel, str]:
    """A new channel and its API key (the key is returned here once and only its hash is kept)."""
    errors = check_channel(body)
    if errors:
        raise ValidationFailed("The channel definition is invalid", errors)
    key = api_key if api_key is not None else store.new_api_key()
    channel = Channel(
        id=channel_id or store.new_id(),
        client_id=client_id,
        webhook_uuid=webhook_uuid or store.new_webhook_uuid(),
        key_hash=secrets.sha256_hex(key),
        type=str(body["type"]),
        channel_type=str(body["channel_type"]),
        status=str(body["status"]),
        permissions=_permissions(body["permissions"]),
        fields=parse_fields(body["custom_field_schema"]),
        created_at=now,
        updated_at=now,
    )
    store.add(channel)
    return channel, key


def update_channel(channel: Channel, body: Mapping[str, Any], now: datetime) -> Channel:
    """A partial update of status, permissions and field schema. `type` and `channel_type` cannot
    change (sending the current value is allowed, so a channel read back can be sent back)."""
    errors = [
        FieldError(name, f"cannot be changed (it is {getattr(channel, name)!r}); create a new channel instead")
        for name in ("type", "channel_type")
        if name in body and body[name] != getattr(channel, name)
    ]
    if "custom_field_schema" in body:
        errors.extend(check_field_schema(channel.channel_type, body["custom_field_schema"]))
    if errors:
        raise ValidationFailed("The channel update is invalid", errors)
    if "status" in body:
        channel.status = str(body["status"])
    if "permissions" in body:
        channel.permissions = _permissions(body["permissions"])
    if "custom_field_schema" in body:
        channel.fields = parse_fields(body["custom_field_schema"])
    channel.updated_at = now
    return channel


def owned_channel(store: ChannelsStore, client_id: str, channel_id: str) -> Channel:
    channel = store.get(channel_id)
    if channel is None or channel.client_id != client_id:
        raise NotFound(f"Channel not found: no channel with _id {channel_id}")
    return channel


# -- the webhook --------------------------------------------------------------------------------
def admit_webhook(store: ChannelsStore, webhook_uuid: str, presented_key: str, resource: str) -> Channel:
    """The channel a webhook call may write through, checked in the documented order: the channel
    exists (404), the key is this channel's (401, constant time), the channel is ACTIVE (403), it
    is of the resource's channel_type (403) and has that resource's write permission (403)."""
    channel = store.by_webhook_uuid(webhook_uuid)
    if channel is None:
        raise NotFound(f"Channel not found: no channel with webhook_uuid {webhook_uuid}")
    if not channel.key_matches(presented_key):
        raise Unauthorized(
            "Invalid API key for this channel", [FieldError("header.X-API-Key", "is not this channel's key")]
        )
    if channel.status != "ACTIVE":
        raise Forbidden(f"This channel is {channel.status}: only an ACTIVE channel accepts data")
    if channel.resource != resource:
        raise Forbidden(
            f"This is a {channel.channel_type} channel: send its data to "
            f"/v1/webhooks/channels/{channel.webhook_uuid}/{channel.resource}"
        )
    if not channel.can_write():
        raise Forbidden(f"This channel is not allowed to write {resource} (permissions.{resource}.write is false)")
    return channel


def check_webhook_payload(channel: Channel, payload: Any) -> Mapping[str, Any]:
    """The identifier rule first (its own message), then the channel's field schema."""
    if not isinstance(payload, Mapping):
        raise ValidationFailed("The payload must be a JSON object", [FieldError("body", "must be a JSON object")])
    missing = missing_identifier(channel.channel_type, payload)
    if missing:
        if channel.channel_type == "customer":
            message = "The payload must contain an identifier: email or cell_number"
        else:
            message = "The payload must contain an identifier: sku"
        raise ValidationFailed(message, missing)
    errors = check_payload(channel.fields, payload)
    if errors:
        raise ValidationFailed("The payload does not match this channel's custom_field_schema", errors)
    return payload


def upsert_customer(store: ChannelsStore, channel: Channel, payload: Mapping[str, Any], now: datetime) -> Customer:
    """Match by email, then by cell number; update what matched, or create an imported customer.
    `first_name`/`last_name` become `name`/`surname`; other fields are custom attributes."""
    customers = store.customers
    email = payload.get("email") or None
    raw_cell = payload.get("cell_number") or None
    cell_digits, cell_code = split_cell(raw_cell) if raw_cell else (None, None)
    by_email = customers.find_by_email(email) if email else None
    by_cell = customers.find_by_cell(raw_cell) if raw_cell else None
    if by_email is not None and by_cell is not None and by_email.id != by_cell.id:
        raise Conflict(
            "email and cell_number belong to two different customers",
            [FieldError("cell_number", f"{cell_digits} belongs to another customer than email {email}")],
        )
    target = by_email or by_cell
    changes_email = target is not None and email and target.email and target.email.lower() != str(email).lower()
    if target is not None and changes_email and store.is_registered(target.id):
        # the e-mail address is that user's sign-in: a channel cannot change it
        raise Conflict(
            "This customer has signed up with another email address; a channel cannot change it",
            [FieldError("email", f"the customer with cell_number {target.cell_number} signed up with another email")],
        )
    fields: dict[str, Any] = {}
    if email:
        fields["email"] = email
    if cell_digits:
        fields["cell_number"] = cell_digits
        if cell_code is not None:
            fields["cell_country_code"] = cell_code
    if "first_name" in payload:
        fields["name"] = payload["first_name"]
    if "last_name" in payload:
        fields["surname"] = payload["last_name"]
    core = CORE_FIELDS["customer"]
    custom = {k: v for k, v in payload.items() if k not in core}
    membership = channel.membership()
    try:
        if target is None:
            return customers.create(now, **fields, custom_fields=custom, channels=[membership], imported=True)
        channels = list(target.channels)
        if not any(m.get("channel_id") == channel.id for m in channels):
            channels.append(membership)
        return customers.update(
            target, now, **fields, custom_fields={**target.custom_fields, **custom}, channels=channels
        )
    except ValueError as exc:  # an identifier taken by another customer: nothing was changed
        raise Conflict(
            "The customer's identifiers belong to another customer", [FieldError("body", str(exc))]
        ) from None


def upsert_product(store: ChannelsStore, channel: Channel, payload: Mapping[str, Any], now: datetime) -> Product:
    """Match by `sku`; update it, or create it. `title` is stored as such, other fields as attributes."""
    sku = str(payload["sku"])
    core = CORE_FIELDS["product"]
    custom = {k: v for k, v in payload.items() if k not in core}
    product = store.product_by_sku(sku)
    if product is None:
        product = store.add_product(
            Product(id=store.new_id(), client_id=channel.client_id, sku=sku, created_at=now, updated_at=now)
        )
    if "title" in payload:
        product.title = str(payload["title"])
    product.attributes = {**product.attributes, **custom}
    if not any(m.get("channel_id") == channel.id for m in product.channels):
        product.channels = [*product.channels, channel.membership()]
    product.updated_at = now
    return product


# -- sign-up ------------------------------------------------------------------------------------
def sign_up(store: ChannelsStore, body: Mapping[str, Any], now: datetime) -> tuple[User, str]:
    """Register a user and sign them in. A user and a customer are one Let'sTrade document: the user
    gets the id of the customer with the same e-mail address or cell number (a customer a channel
    imported claims their profile), or of a new customer."""
    email = str(body["email"])
    errors: list[FieldError] = []
    if not is_email(email):
        errors.append(FieldError("email", "is not a valid e-mail address; expected e.g. john.doe@example.com"))
    raw_cell = body.get("cell_number") or None
    if raw_cell is not None and not is_phone(str(raw_cell)):
        errors.append(FieldError("cell_number", "is not a valid phone number; expected e.g. +27721234565"))
    if errors:
        raise ValidationFailed("The sign-up details are invalid", errors)
    ident, customers = store.identity, store.customers
    if ident.find_by_email(email) is not None:
        raise Conflict(
            "A user with this email address is already registered", [FieldError("email", "is already registered")]
        )
    by_email = customers.find_by_email(email)
    by_cell = customers.find_by_cell(str(raw_cell)) if raw_cell else None
    if by_email is not None and by_cell is not None and by_email.id != by_cell.id:
        raise Conflict(
            "This cell number belongs to another customer", [FieldError("cell_number", "belongs to another customer")]
        )
    target = by_email or by_cell
    if target is not None and store.is_registered(target.id):
        raise Conflict(
            "A user with this cell number is already registered",
            [FieldError("cell_number", "is already registered to another user")],
        )
    # only what the body sends changes a claimed customer; a new one starts from the defaults
    fields: dict[str, Any] = {"email": email, "name": str(body["name"])}
    if "surname" in body:
        fields["surname"] = str(body["surname"])
    if raw_cell:
        digits, code = split_cell(str(raw_cell))
        fields["cell_number"] = digits
        if code is not None:
            fields["cell_country_code"] = code
    try:
        customer = customers.create(now, **fields) if target is None else customers.update(target, now, **fields)
    except ValueError as exc:
        raise Conflict("The sign-up details belong to another customer", [FieldError("body", str(exc))]) from None
    profile = store.profile(customer.id) if target is not None else Profile(agrees_terms_and_conditions=False)
    changes = {
        name: body[name]
        for name in ("agrees_terms_and_conditions", "get_communication", "birthday", "loyalty_sign_up")
        if name in body
    }
    store.profiles[customer.id] = replace(profile, **changes)
    user = ident.register(email, str(body["password"]), customer.name, customer.surname, user_id=customer.id)
    return user, ident.issue_token(user)
