"""State of `letstrade-channels`: channels (keys kept as SHA-256 hashes), the products that product
channels write, and the profile attributes of customers this API knows beyond the shared customer
record. Customers themselves live in the shared Let'sTrade customer store (`apis/letstrade`), so
`letstrade-pos` finds what a channel wrote. Synchronous methods only; pure (no HTTP)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mock_server import secrets
from mock_server.apis.letstrade.customers import CustomerStore
from mock_server.apis.letstrade.identity import Identity
from mock_server.apis.letstrade_channels.fieldschema import FieldDef


@dataclass
class Channel:
    id: str
    client_id: str
    webhook_uuid: str
    key_hash: str  # sha256 of the api_key: the key itself is shown once and never stored
    type: str
    channel_type: str  # customer | product
    status: str  # ACTIVE | INACTIVE
    permissions: dict[str, dict[str, bool]]
    fields: list[FieldDef]
    created_at: datetime
    updated_at: datetime
    deleted: bool = False

    @property
    def resource(self) -> str:
        """The webhook's resource: `customers` or `products`."""
        return "customers" if self.channel_type == "customer" else "products"

    def can_write(self) -> bool:
        return bool(self.permissions.get(self.resource, {}).get("write"))

    def key_matches(self, presented: str) -> bool:
        """Constant time: the hashes of the presented and the stored key are compared."""
        return secrets.same(secrets.sha256_hex(presented), self.key_hash)

    def membership(self) -> dict[str, str]:
        """How a record written through this channel names it (seed 000's `channels[]` item)."""
        return {"channel_id": self.id, "channel": self.type.upper(), "name": self.type}


@dataclass
class Product:
    id: str
    client_id: str
    sku: str
    created_at: datetime
    updated_at: datetime
    title: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    channels: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Profile:
    """Customer-document attributes that are not part of the shared customer record. Defaults are
    those of seed 000's sample (a customer imported through a channel)."""

    agrees_terms_and_conditions: bool = True
    get_communication: bool = False
    gender: str = "N/A"
    identity_type: str = "N/A"
    role: str = "USER"
    status: str = "ACTIVE"
    floating_fleet: bool = False
    birthday: str | None = None
    loyalty_sign_up: bool | None = None


class ChannelsStore:
    def __init__(
        self,
        identity: Identity,
        customers: CustomerStore,
        rng: random.Random,
    ) -> None:
        self.identity = identity
        self.customers = customers
        self._rng = rng
        self._by_id: dict[str, Channel] = {}
        self._by_uuid: dict[str, str] = {}  # webhook_uuid -> channel id
        self.products: dict[str, Product] = {}  # id -> product
        self._products_by_sku: dict[str, str] = {}
        self.profiles: dict[str, Profile] = {}  # customer id -> profile
        self.demo_channel_id: str | None = None
        self.demo_api_key: str | None = None  # kept (only) so /__admin/credentials can hand it out

    # ids and keys ------------------------------------------------------------------------------
    def new_id(self) -> str:
        return self.identity.new_object_id()

    def new_webhook_uuid(self) -> str:
        while True:
            candidate = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            if candidate not in self._by_uuid:
                return candidate

    def new_api_key(self) -> str:
        """32 lowercase hex characters, as the seed's sample key."""
        return secrets.token_hex(self._rng, 16)

    # channels -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._by_id.values()))

    def add(self, channel: Channel) -> Channel:
        if channel.id in self._by_id or channel.webhook_uuid in self._by_uuid:
            raise ValueError("channel id or webhook_uuid already in use")
        self._by_id[channel.id] = channel
        self._by_uuid[channel.webhook_uuid] = channel.id
        return channel

    def get(self, channel_id: str) -> Channel | None:
        found = self._by_id.get(channel_id)
        return found if found is not None and not found.deleted else None

    def by_webhook_uuid(self, webhook_uuid: str) -> Channel | None:
        try:
            canonical = str(uuid.UUID(webhook_uuid))
        except ValueError:
            return None
        channel_id = self._by_uuid.get(canonical)
        return self.get(channel_id) if channel_id else None

    def for_client(self, client_id: str) -> list[Channel]:
        return [c for c in self._by_id.values() if c.client_id == client_id and not c.deleted]

    def rotate_key(self, channel: Channel, now: datetime) -> str:
        key = self.new_api_key()
        channel.key_hash = secrets.sha256_hex(key)
        channel.updated_at = now
        if channel.id == self.demo_channel_id:
            self.demo_api_key = key
        return key

    # products -----------------------------------------------------------------------------------
    def product_by_sku(self, sku: str) -> Product | None:
        found = self._products_by_sku.get(sku)
        return self.products.get(found) if found else None

    def add_product(self, product: Product) -> Product:
        if product.sku in self._products_by_sku:
            raise ValueError(f"sku {product.sku} already exists")
        self.products[product.id] = product
        self._products_by_sku[product.sku] = product.id
        return product

    # customer profiles --------------------------------------------------------------------------
    def profile(self, customer_id: str) -> Profile:
        return self.profiles.get(customer_id) or Profile()

    def is_registered(self, customer_id: str) -> bool:
        """Whether the customer has signed up (a Let'sTrade user with the customer's id exists)."""
        return customer_id in self.identity.users
