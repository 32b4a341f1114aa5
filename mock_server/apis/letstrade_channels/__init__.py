"""Let'sTrade Custom Channels (`letstrade-channels`): sign-in and sign-up on the shared Let'sTrade
identity, channel management with a bearer token, and the per-channel webhooks that upsert
customers (into the customer store `letstrade-pos` reads too) and products.

Modules: `fieldschema` (the pure field-schema rules), `store` (state), `crm` (state changes),
`documents` (response shapes), `handlers` (HTTP <-> domain), this file (the plug-in)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from mock_server.apis.base import (
    ApiDefinition,
    Credential,
    Handler,
    Services,
    seeded_rng,
)
from mock_server.apis.letstrade import api as letstrade
from mock_server.apis.letstrade_channels import crm
from mock_server.apis.letstrade_channels import handlers as http
from mock_server.apis.letstrade_channels.handlers import PresentedKey
from mock_server.apis.letstrade_channels.store import ChannelsStore
from mock_server.errors import FieldError
from mock_server.schema import CompiledSchema

_API_KEY = re.compile(r"[0-9a-f]{32}")
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")
_RECORD_KEYS = {
    "_id",
    "webhook_uuid",
    "api_key",
    "type",
    "channel_type",
    "status",
    "permissions",
    "custom_field_schema",
}

DEMO_CHANNEL = {
    "type": "customer_webhook",
    "channel_type": "customer",
    "status": "ACTIVE",
    "permissions": {
        "products": {"read": False, "write": False},
        "orders": {"read": False, "write": False},
        "customers": {"read": True, "write": True},
    },
    "custom_field_schema": [
        {"name": "email", "type": "email", "required": False},
        {"name": "cell_number", "type": "phone", "required": False},
        {"name": "first_name", "type": "string", "required": False},
        {"name": "last_name", "type": "string", "required": False},
    ],
}


class LetstradeChannelsApi(ApiDefinition[ChannelsStore]):
    slug = "letstrade-channels"
    spec_name = "letstrade-channels"
    envelope = "letstrade"
    fixture_section = "letstrade-channels"
    handlers: dict[str, Handler] = {
        "signIn": http.sign_in,
        "signUp": http.sign_up,
        "createChannel": http.create_channel,
        "listChannels": http.list_channels,
        "getChannel": http.get_channel,
        "updateChannel": http.update_channel,
        "rotateChannelKey": http.rotate_channel_key,
        "upsertChannelCustomer": http.upsert_customer,
        "upsertChannelProduct": http.upsert_product,
    }
    admin_handlers: dict[str, Handler] = {
        "listLetstradeCustomers": http.admin_list_customers,
        "listLetstradeProducts": http.admin_list_products,
    }

    def create_store(self, services: Services) -> ChannelsStore:
        store = ChannelsStore(
            identity=letstrade.identity(services),
            customers=letstrade.customers(services),
            rng=seeded_rng(services.settings.seed, self.slug),
        )
        webhook_uuid = store.new_webhook_uuid()  # drawn first, then the key: stable across versions
        api_key = store.new_api_key()
        demo, _ = crm.create_channel(
            store,
            store.identity.client_id,
            DEMO_CHANNEL,
            services.clock.now(),
            api_key=api_key,
            webhook_uuid=webhook_uuid,
        )
        store.demo_channel_id, store.demo_api_key = demo.id, api_key
        return store

    def authenticate(self, services: Services, store: ChannelsStore, credential: Credential) -> Any | None:
        if credential.scheme == "channelApiKey":
            # checked against the addressed channel's key only, once the handler knows the channel
            return PresentedKey(credential.value) if credential.kind == "apikey" and credential.value else None
        return letstrade.check_bearer(store.identity, credential)

    def credentials(self, store: ChannelsStore) -> dict[str, Any]:
        demo = store.get(store.demo_channel_id or "")
        channel: dict[str, Any] = {}
        if demo is not None:
            channel = {"webhook_uuid": demo.webhook_uuid, "api_key": store.demo_api_key, "channel_id": demo.id}
        return {**letstrade.credentials(store.identity), "letstrade_channel": channel}

    # fixtures: {"channels": [{createChannel body + api_key (32 hex) + optional _id, webhook_uuid}]}
    def check_fixtures(self, services: Services, store: ChannelsStore, section: Any) -> list[FieldError]:
        if not isinstance(section, Mapping):
            return [FieldError("letstrade-channels", "must be an object {channels: [...]}")]
        errors = [
            FieldError(str(key), "is not a section of letstrade-channels fixtures; expected: channels")
            for key in section
            if key != "channels"
        ]
        records = section.get("channels", [])
        if not isinstance(records, list):
            return [*errors, FieldError("channels", "must be an array of channels")]
        body_schema = self._create_schema(services)
        ids: set[str] = {c.id for c in store}
        uuids: set[str] = {c.webhook_uuid for c in store}
        for index, record in enumerate(records):
            where = f"channels[{index}]"
            if not isinstance(record, Mapping):
                errors.append(FieldError(where, "must be an object"))
                continue
            body = {k: v for k, v in record.items() if k not in ("_id", "webhook_uuid", "api_key")}
            schema_errors = body_schema.errors(body, root=where)
            errors.extend(schema_errors)
            if not schema_errors:
                errors.extend(FieldError(f"{where}.{e.field}", e.message) for e in crm.check_channel(body))
            errors.extend(
                FieldError(
                    f"{where}.{key}", f"is not a channel field; expected one of {', '.join(sorted(_RECORD_KEYS))}"
                )
                for key in record
                if key not in _RECORD_KEYS
            )
            key = record.get("api_key")
            if not isinstance(key, str) or _API_KEY.fullmatch(key) is None:
                errors.append(
                    FieldError(f"{where}.api_key", "is required: 32 lowercase hex characters (the channel's key)")
                )
            if "_id" in record:
                channel_id = record["_id"]
                if not isinstance(channel_id, str) or _OBJECT_ID.fullmatch(channel_id) is None:
                    errors.append(FieldError(f"{where}._id", "must be 24 lowercase hex characters"))
                elif channel_id in ids:
                    errors.append(FieldError(f"{where}._id", f"{channel_id} is already a channel's _id"))
                else:
                    ids.add(channel_id)
            if "webhook_uuid" in record:
                try:
                    canonical = str(uuid.UUID(str(record["webhook_uuid"])))
                except ValueError:
                    errors.append(FieldError(f"{where}.webhook_uuid", "must be a UUID"))
                else:
                    if canonical in uuids:
                        errors.append(
                            FieldError(f"{where}.webhook_uuid", f"{canonical} is already a channel's webhook_uuid")
                        )
                    uuids.add(canonical)
        return errors

    def load_fixtures(self, services: Services, store: ChannelsStore, section: Any) -> int:
        records = list(section.get("channels", []))
        now = services.clock.now()
        for record in records:
            body = {k: v for k, v in record.items() if k not in ("_id", "webhook_uuid", "api_key")}
            uuid_text = record.get("webhook_uuid")
            crm.create_channel(
                store,
                store.identity.client_id,
                body,
                now,
                api_key=str(record["api_key"]),
                channel_id=record.get("_id"),
                webhook_uuid=str(uuid.UUID(str(uuid_text))) if uuid_text is not None else None,
            )
        return len(records)

    def _create_schema(self, services: Services) -> CompiledSchema:
        runtime = services.runtimes[self.slug]
        schema: CompiledSchema = runtime.spec.by_id()["createChannel"].body_media["application/json"]
        return schema
