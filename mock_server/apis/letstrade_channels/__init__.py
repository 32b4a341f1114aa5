"""Let'sTrade Custom Channels (`letstrade-channels`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from mock_server import secrets
from mock_server.apis.base import (
    ApiDefinition,
    ApiRequest,
    ApiResponse,
    Credential,
    Handler,
    Services,
    seeded_rng,
)
from mock_server.apis.letstrade import api as letstrade
from mock_server.apis.letstrade.identity import Identity


@dataclass
class Channel:
    id: str
    client_id: str
    webhook_uuid: str
    api_key: str
    channel_type: str = "customer"
    status: str = "ACTIVE"
    permissions: dict[str, dict[str, bool]] = field(default_factory=dict)
    custom_field_schema: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ChannelsStore:
    identity: Identity
    channels: dict[str, Channel] = field(default_factory=dict)  # webhook_uuid -> channel

    def channel_for_key(self, key: str) -> Channel | None:
        found = None
        for channel in self.channels.values():  # constant time per channel; no early exit
            if secrets.same(key, channel.api_key):
                found = channel
        return found


def _sign_in(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    return letstrade.sign_in(store.identity, request)


class LetstradeChannelsApi(ApiDefinition[ChannelsStore]):
    slug = "letstrade-channels"
    spec_name = "letstrade-channels"
    envelope = "letstrade"
    handlers: dict[str, Handler] = {"signIn": _sign_in}

    def create_store(self, services: Services) -> ChannelsStore:
        store = ChannelsStore(identity=letstrade.identity(services))
        rng = seeded_rng(services.settings.seed, self.slug)
        demo = Channel(
            id=store.identity.new_object_id(),
            client_id=store.identity.new_object_id(),
            webhook_uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            api_key=secrets.token_hex(rng, 16),
            permissions={
                "products": {"read": False, "write": False},
                "orders": {"read": False, "write": False},
                "customers": {"read": True, "write": True},
            },
            custom_field_schema=[
                {"name": "email", "type": "email", "required": False},
                {"name": "cell_number", "type": "phone", "required": False},
                {"name": "first_name", "type": "string", "required": False},
                {"name": "last_name", "type": "string", "required": False},
            ],
        )
        store.channels[demo.webhook_uuid] = demo
        return store

    def authenticate(self, services: Services, store: ChannelsStore, credential: Credential) -> Any | None:
        if credential.scheme == "channelApiKey":
            return store.channel_for_key(credential.value)
        return letstrade.check_bearer(store.identity, credential)

    def credentials(self, store: ChannelsStore) -> dict[str, Any]:
        demo = next(iter(store.channels.values()))
        return {
            **letstrade.credentials(store.identity),
            "letstrade_channel": {"webhook_uuid": demo.webhook_uuid, "api_key": demo.api_key},
        }
