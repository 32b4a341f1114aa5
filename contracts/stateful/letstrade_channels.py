"""Let'sTrade Custom Channels as a state machine: channels created, customers upserted through
their webhooks, keys rotated, channels deactivated.

Properties: a channel's key is returned on creation (and rotation) only, never by a read; a
channel's key works only for that channel (another channel's key is 401, assumed status; seed:
"checks the API key"); a rotated key stops working at once (assumed feature); an INACTIVE
channel refuses upserts (403, assumed); an upsert matches by e-mail, so a second upsert of the
same e-mail updates the same customer (same `_id`), changing only the fields sent; a
`+27721234565` cell number is stored as `27721234565` with `cell_country_code` `+27` (seed).
On a vendor without --allow-irreversible only the read steps run (channels and customers cannot
be deleted).
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle

from contracts import data
from contracts.report import Recorder
from contracts.stateful import IRREVERSIBLE, Api, Machine, start, step
from contracts.target import ApiContext

CREATE, LIST, ONE = "/v2/create/channel", "/v2/channels", "/v2/channels/{channel_id}"
ROTATE, UPSERT = "/v2/channels/{channel_id}/rotate-key", "/v1/webhooks/channels/{webhook_uuid}/customers"


class Channel:
    def __init__(self, channel_id: str, webhook_uuid: str, key: str, fields: list[dict[str, Any]]) -> None:
        self.id, self.uuid, self.key, self.fields = channel_id, webhook_uuid, key, fields
        self.active = True
        self.old_keys: list[str] = []

    def __repr__(self) -> str:
        return f"Channel({self.uuid})"


def build(ctx: ApiContext, recorder: Recorder) -> type[Machine]:
    api = Api(ctx, recorder)
    index = api.index
    configured = ctx.creds.get("letstrade_channel") or {}

    class Channels(Machine):
        channels = Bundle("channels")

        def __init__(self) -> None:
            super().__init__()
            ctx.fresh()
            self.customers: dict[str, tuple[str, dict[str, Any]]] = {}  # email -> (_id, last stored fields)

        @start(target=channels)
        def configured_channel(self) -> Any:
            if not configured.get("webhook_uuid") or not configured.get("api_key"):
                return None
            listed = api.call("GET", LIST)
            api.expect(listed, {200}, "list_channels", f"GET {LIST}", index.operation("GET", LIST))
            for channel in listed.json()["content"]["channels"]:
                if channel["webhook_uuid"] == configured["webhook_uuid"]:
                    return Channel(
                        channel["_id"],
                        channel["webhook_uuid"],
                        str(configured["api_key"]),
                        channel.get("custom_field_schema") or [],
                    )
            return None

        def _no_key_in(self, response: Any, channel: Channel, what: str) -> None:
            if channel.key in response.text:
                raise api.violation(
                    "no_secret_echo", what, f"{what} returned the channel's api_key", index.operation("GET", ONE)
                )

        @step(IRREVERSIBLE, target=channels, seed=st.integers())
        def create_channel(self, seed: int) -> Channel:
            rnd = random.Random(seed)
            fields = data.channel_field_schema("customer", rnd)
            body = {
                "type": "customer_webhook",
                "channel_type": "customer",
                "status": "ACTIVE",
                "permissions": {
                    "products": {"read": False, "write": False},
                    "orders": {"read": False, "write": False},
                    "customers": {"read": True, "write": True},
                },
                "custom_field_schema": fields,
            }
            response = api.call("POST", CREATE, json=body)
            api.expect(response, {200}, "create_channel", f"POST {CREATE}", index.operation("POST", CREATE))
            content = response.json()["content"]
            channel = Channel(content["channel"]["_id"], content["channel"]["webhook_uuid"], content["api_key"], fields)
            got = api.call("GET", ONE, f"/v2/channels/{channel.id}")
            api.expect(got, {200}, "get_created_channel", f"GET {ONE}", index.operation("GET", ONE))
            self._no_key_in(got, channel, f"GET {ONE}")
            return channel

        @step()
        def read_channels(self) -> None:
            listed = api.call("GET", LIST)
            api.expect(listed, {200}, "list_channels", f"GET {LIST}", index.operation("GET", LIST))
            if any("api_key" in channel for channel in listed.json()["content"]["channels"]):
                raise api.violation(
                    "no_secret_echo",
                    f"GET {LIST}",
                    "listChannels returned api_key fields",
                    index.operation("GET", LIST),
                )

        @step(IRREVERSIBLE, channel=channels, seed=st.integers(), reuse=st.booleans())
        def upsert(self, channel: Channel | None, seed: int, reuse: bool) -> None:
            if channel is None:
                return
            rnd = random.Random(seed)
            payload = data.channel_payload(channel.fields, rnd)
            if reuse and self.customers and "email" in {f.get("name") for f in channel.fields}:
                payload["email"] = rnd.choice(sorted(self.customers))
                payload.pop("cell_number", None)
            path = f"/v1/webhooks/channels/{channel.uuid}/customers"
            response = api.call("POST", UPSERT, path, headers={"X-API-Key": channel.key}, json=payload)
            if not channel.active:
                api.expect(
                    response,
                    {403},
                    "inactive_channel_refused",
                    f"POST {UPSERT} to an INACTIVE channel",
                    index.response("POST", UPSERT, 403),
                )
                return
            api.expect(response, {200}, "upsert", f"POST {UPSERT}", index.operation("POST", UPSERT))
            stored = response.json()["content"]
            self._check_stored(payload, stored)
            email = str(stored.get("email") or "").lower()
            if email:
                known = self.customers.get(email)
                if known is not None and payload.get("email") and known[0] != stored["_id"]:
                    raise api.violation(
                        "upsert_matches_by_email",
                        f"POST {UPSERT}",
                        f"a second upsert of {email} created customer {stored['_id']} instead of updating {known[0]}",
                        index.operation("POST", UPSERT),
                    )
                if known is not None:
                    for name in ("name", "surname"):
                        sent = {"name": "first_name", "surname": "last_name"}[name]
                        if sent not in payload and known[1].get(name) and stored.get(name) != known[1].get(name):
                            raise api.violation(
                                "upsert_changes_only_sent_fields",
                                f"POST {UPSERT}",
                                f"{name} changed from {known[1].get(name)!r} to {stored.get(name)!r} "
                                f"though {sent} was not sent",
                                index.operation("POST", UPSERT),
                            )
                self.customers[email] = (str(stored["_id"]), stored)

        def _check_stored(self, payload: dict[str, Any], stored: dict[str, Any]) -> None:
            cell = str(payload.get("cell_number") or "")
            normalised = stored.get("cell_number") == cell[1:] and stored.get("cell_country_code") == "+27"
            if cell.startswith("+27") and not normalised:
                raise api.violation(
                    "cell_number_normalised",
                    f"POST {UPSERT}",
                    f"{cell} was stored as cell_number {stored.get('cell_number')!r}, cell_country_code "
                    f"{stored.get('cell_country_code')!r}; expected {cell[1:]!r} and '+27'",
                    index.operation("POST", UPSERT),
                )
            for sent, kept in (("first_name", "name"), ("last_name", "surname")):
                if sent in payload and stored.get(kept) != payload[sent]:
                    raise api.violation(
                        "upsert_stores_fields",
                        f"POST {UPSERT}",
                        f"{sent} {payload[sent]!r} was stored as {kept} {stored.get(kept)!r}",
                        index.operation("POST", UPSERT),
                    )

        @step(IRREVERSIBLE, owner=channels, other=channels, seed=st.integers())
        def key_of_another_channel(self, owner: Channel | None, other: Channel | None, seed: int) -> None:
            if owner is None or other is None or owner.uuid == other.uuid:
                return
            path = f"/v1/webhooks/channels/{other.uuid}/customers"
            payload = data.channel_payload(other.fields, random.Random(seed))
            response = api.call("POST", UPSERT, path, headers={"X-API-Key": owner.key}, json=payload)
            api.expect(
                response,
                {401},
                "channel_key_scoped",
                f"POST {UPSERT} with another channel's key",
                index.response("POST", UPSERT, 401),
            )

        @step(IRREVERSIBLE, channel=channels, seed=st.integers())
        def rotate_key(self, channel: Channel | None, seed: int) -> None:
            if channel is None or (channel.id == configured.get("channel_id") and not ctx.in_process):
                return  # never rotate the key the account's own integration uses
            response = api.call("POST", ROTATE, f"/v2/channels/{channel.id}/rotate-key")
            api.expect(response, {200}, "rotate_key", f"POST {ROTATE}", index.operation("POST", ROTATE))
            old, channel.key = channel.key, response.json()["content"]["api_key"]
            channel.old_keys.append(old)
            path = f"/v1/webhooks/channels/{channel.uuid}/customers"
            payload = data.channel_payload(channel.fields, random.Random(seed))
            stale = api.call("POST", UPSERT, path, headers={"X-API-Key": old}, json=payload)
            api.expect(
                stale,
                {401},
                "rotated_key_refused",
                f"POST {UPSERT} with a rotated-out key",
                index.response("POST", UPSERT, 401),
            )

        @step(IRREVERSIBLE, channel=channels, active=st.booleans())
        def set_status(self, channel: Channel | None, active: bool) -> None:
            if channel is None or (channel.id == configured.get("channel_id") and not ctx.in_process):
                return
            response = api.call(
                "PATCH", ONE, f"/v2/channels/{channel.id}", json={"status": "ACTIVE" if active else "INACTIVE"}
            )
            api.expect(response, {200}, "update_channel", f"PATCH {ONE}", index.operation("PATCH", ONE))
            self._no_key_in(response, channel, f"PATCH {ONE}")
            channel.active = active

        def tour(self) -> None:
            """Every rule: a customer upserted twice by e-mail; another channel's key refused; a
            key rotated (the old one refused at once, the new one working); a channel deactivated,
            then written to (refused), reactivated, written to again."""
            mine = self.go("configured_channel")
            self.go("read_channels")
            first = self.go("create_channel", seed=1)
            second = self.go("create_channel", seed=2)
            self.go("upsert", channel=first, seed=3, reuse=False)
            self.go("upsert", channel=first, seed=4, reuse=True)
            self.go("key_of_another_channel", owner=first, other=second, seed=5)
            self.go("rotate_key", channel=first, seed=6)
            self.go("upsert", channel=first, seed=7, reuse=True)
            self.go("set_status", channel=second, active=False)
            self.go("upsert", channel=second, seed=8, reuse=False)
            self.go("set_status", channel=second, active=True)
            self.go("upsert", channel=second, seed=9, reuse=False)
            self.go("upsert", channel=mine, seed=10, reuse=False)

    Channels.bind(api)
    return Channels
