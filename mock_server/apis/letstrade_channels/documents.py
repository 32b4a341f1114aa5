"""The JSON documents `letstrade-channels` answers with, in seed 000's shapes. Pure."""

from __future__ import annotations

from typing import Any

from mock_server.apis.letstrade.customers import Customer
from mock_server.apis.letstrade_channels.store import Channel, Product, Profile
from mock_server.clock import isoformat

# The real API returns the customer's argon2id password hash (seed 000). The mock never derives
# anything from a password it knows: every customer document carries this same constant, in the
# same PHC shape, whose salt and "hash" decode to "mock-placeholder-salt" and
# "not-a-hash-of-anything-placeholder".
PASSWORD_PLACEHOLDER = (
    "$argon2id$v=19$m=65536,t=3,p=4$bW9jay1wbGFjZWhvbGRlci1zYWx0$bm90LWEtaGFzaC1vZi1hbnl0aGluZy1wbGFjZWhvbGRlcg"
)


def webhook_url(channel: Channel) -> str:
    """As the vendor returns it: without the `/v1` prefix of the documented endpoint (seed defect)."""
    return f"/webhooks/channels/{channel.webhook_uuid}/{channel.resource}"


def channel_document(channel: Channel, *, with_schema: bool) -> dict[str, Any]:
    """Seed 000's `content.channel` (exactly its keys when `with_schema` is False, as createChannel
    answers); reads add the `custom_field_schema`. Never the api_key."""
    document: dict[str, Any] = {
        "_id": channel.id,
        "client_id": channel.client_id,
        "status": channel.status,
        "deleted": channel.deleted,
        "permissions": {name: dict(access) for name, access in channel.permissions.items()},
        "type": channel.type,
        "channel_type": channel.channel_type,
        "webhook_uuid": channel.webhook_uuid,
        "webhook_url": webhook_url(channel),
    }
    if with_schema:
        document["custom_field_schema"] = [field.as_dict() for field in channel.fields]
    return document


def channel_with_key(channel: Channel, api_key: str) -> dict[str, Any]:
    return {
        "channel": channel_document(channel, with_schema=False),
        "webhook_url": webhook_url(channel),
        "api_key": api_key,
    }


def customer_document(customer: Customer, profile: Profile, *, registered: bool) -> dict[str, Any]:
    """The stored customer as seed 000's upsert response shows it (keys in its order). `email`,
    `cell_number`/`cell_country_code`, `name` and `surname` appear when the customer has them."""
    document: dict[str, Any] = {"_id": customer.id}
    if customer.cell_number:
        document["cell_number"] = customer.cell_number
    if customer.email:
        document["email"] = customer.email
    document["client_id"] = customer.client_id
    document["__v"] = customer.version
    document["agrees_terms_and_conditions"] = profile.agrees_terms_and_conditions
    if customer.cell_number and customer.cell_country_code:
        document["cell_country_code"] = customer.cell_country_code
    document["channels"] = [dict(membership) for membership in customer.channels]
    document["children"] = []
    document["createdAt"] = isoformat(customer.created_at)
    document["extra_data"] = [{"name": name, "value": value} for name, value in customer.custom_fields.items()]
    document["floating_fleet"] = profile.floating_fleet
    document["gender"] = profile.gender
    document["get_communication"] = profile.get_communication
    document["identity_type"] = profile.identity_type
    document["imported"] = customer.imported
    if customer.name:
        document["name"] = customer.name
    document["needs_password_change"] = not registered
    document["password"] = PASSWORD_PLACEHOLDER
    document["role"] = profile.role
    document["status"] = profile.status
    if customer.surname:
        document["surname"] = customer.surname
    document["updatedAt"] = isoformat(customer.updated_at)
    return document


def product_document(product: Product) -> dict[str, Any]:
    document: dict[str, Any] = {"_id": product.id, "sku": product.sku}
    if product.title is not None:
        document["title"] = product.title
    document["client_id"] = product.client_id
    document["channels"] = [dict(membership) for membership in product.channels]
    document["extra_data"] = [{"name": name, "value": value} for name, value in product.attributes.items()]
    document["createdAt"] = isoformat(product.created_at)
    document["updatedAt"] = isoformat(product.updated_at)
    return document
