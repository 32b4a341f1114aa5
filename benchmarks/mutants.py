"""Deliberately deviating mocks for the mutation benchmark (`benchmarks/mutation_score.py`, issue 22).

Each `Mutant` is one plausible way a real vendor could differ from its documents: `apply(mock,
patcher)` monkeypatches a started in-process `mock_server.testing.MockServer` (a handler of its
API definition, a domain function or store method, a compiled prose rule of its runtime), and
`probe(client)` makes a couple of HTTP calls and says whether the deviation shows. On the
unmutated mock every probe must say False, after `apply` True
(`tests/contracts/test_mutants_apply.py`), so a mutant can never silently become a no-op.

Patches on modules and classes are process-wide: the benchmark runs each mutant in a process of
its own, and `Patcher.undo()` restores everything (the probe test applies them one after another).
None of these is a feature of the mock, and none is in `tests/contracts/test_mutations.py`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import threading
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import ModuleType
from typing import Any

import requests

from mock_server import secrets as mock_secrets
from mock_server.apis.base import ApiRequest, ApiResponse, Services
from mock_server.apis.capillary import registration as capillary_registration
from mock_server.apis.capillary.store import CapillaryStore
from mock_server.apis.customtrades.handlers import writable
from mock_server.apis.customtrades.store import to_ms
from mock_server.apis.letstrade_channels import crm as channels_crm
from mock_server.apis.letstrade_channels.store import Channel, ChannelsStore
from mock_server.apis.letstrade_pos import codes as pos_codes
from mock_server.apis.letstrade_pos import flows as pos_flows
from mock_server.apis.loke.store import LokeStore, OrgState
from mock_server.errors import Conflict, FieldError, Gone, NotFound, ValidationFailed
from mock_server.settings import Settings
from mock_server.testing import MockServer

_MISSING = object()


def mock_settings() -> Settings:
    """The mutated (and baseline) mock: limits off, responses unchecked (a mutant must reach the
    client), and no tenants where the mock has them (the suite must test the patched world)."""
    extra: dict[str, Any] = {}
    if "max_tenants" in {f.name for f in dataclasses.fields(Settings)}:
        extra["max_tenants"] = 0
    return Settings(port=0, strict=False, customtrades_quota=0, capillary_rpm=0, **extra)


class Patcher:
    """setattr with undo, for modules, classes and instances (an attribute that was only inherited
    is deleted again, not copied down)."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        own = vars(target).get(name, _MISSING)
        self._undo.append((target, name, own))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._undo:
            target, name, old = self._undo.pop()
            if old is _MISSING:
                delattr(target, name)
            else:
                setattr(target, name, old)


Wrap = Callable[[Any], Any]


def patch_handler(p: Patcher, mock: MockServer, slug: str, operation_id: str, make: Wrap) -> None:
    """Replace one handler of this mock's API definition (an instance attribute)."""
    definition = mock.services.runtimes[slug].definition
    original = definition.handlers[operation_id]
    p.setattr(definition, "handlers", {**definition.handlers, operation_id: make(original)})


def drop_rules(p: Patcher, mock: MockServer, slug: str, operation_id: str, kind: str) -> None:
    """Remove the compiled prose rules (`x-` keywords, `mock_server.rules`) of one kind from one
    operation of this mock's runtime; a mock without that validation stage is left alone."""
    runtime = mock.services.runtimes[slug]
    compiled = getattr(runtime, "_rules", None)
    if not isinstance(compiled, dict):
        return
    kept = tuple(rule for rule in compiled.get(operation_id, ()) if getattr(rule, "kind", None) != kind)
    p.setattr(runtime, "_rules", {**compiled, operation_id: kept})


def patch_function(p: Patcher, module: ModuleType | type, name: str, make: Wrap) -> None:
    p.setattr(module, name, make(getattr(module, name)))


# -- the probes' HTTP client -----------------------------------------------------------------------
def auth_headers(slug: str, creds: dict[str, Any]) -> dict[str, str]:
    """Headers that authenticate every operation of `slug` (as the plain CLI is given them)."""
    if slug in ("letstrade-pos", "letstrade-channels"):
        headers = {"Authorization": f"Bearer {creds['letstrade']['token']}"}
        if slug == "letstrade-channels":
            headers["X-API-Key"] = creds["letstrade_channel"]["api_key"]
        return headers
    if slug == "customtrades":
        return {"Authorization": f"Bearer {creds['customtrades']['api_key']}"}
    if slug == "capillary":
        till = creds["capillary"]
        digest = hashlib.md5(till["till_password"].encode()).hexdigest()
        basic = base64.b64encode(f"{till['till_username']}:{digest}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    if slug == "loke":
        return {"Authorization": f"Bearer {creds['loke']['access_token']}"}
    raise KeyError(slug)


class Client:
    """A couple of authenticated calls against one mock, for the probes."""

    def __init__(self, mock: MockServer) -> None:
        self.mock = mock
        self.creds = mock.credentials()
        self.session = requests.Session()

    def call(
        self, slug: str, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        sent = {**auth_headers(slug, self.creds), **(headers or {})}
        return self.session.request(method, self.mock.url(slug, path), headers=sent, timeout=30, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.mock.admin(method, path, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def advance(self, seconds: float) -> None:
        self.admin("POST", "/clock", json={"advance": seconds})

    @property
    def org(self) -> str:
        return str(self.creds["loke"]["organization_id"])


def _unique(tag: str) -> str:
    return f"{tag}{uuidlib.uuid4().hex[:10]}"


# -- Let'sTrade POS ----------------------------------------------------------------------------------
BASKET = {
    "total": "38.00", "outstanding": "38.00", "vat": "4.96", "sub_total": "33.04",
    "delivery_fee": "0.00", "service_fee": "0.00", "discount": "0.00",
    "product_list": [{"sku": "FW-REG", "pid": "6650b7e1a2c3d4e5f6a7b801", "quantity": "1", "price": "38.00"}],
}


def _bill(codes: list[str]) -> dict[str, Any]:
    basket = {**BASKET, "uuid": _unique("bill-")}
    return {"store_id": "STORE-1", "terminal_id": "TILL-3", "code": codes, "basket": basket}


def _mint(c: Client, kind: str = "R") -> str:
    return str(c.admin("POST", "/letstrade-pos/codes", json={"type": kind})["code"])


def _offerings(c: Client, codes: list[str]) -> requests.Response:
    return c.call("letstrade-pos", "POST", "/v1/get/offerings", json=_bill(codes))


def pos_validity(minutes: int) -> Callable[[MockServer, Patcher], None]:
    def apply(mock: MockServer, p: Patcher) -> None:
        p.setattr(pos_codes, "VALIDITY", timedelta(minutes=minutes))

    return apply


def probe_code_valid_longer(c: Client) -> bool:
    code = _mint(c)
    c.advance(10 * 60 + 30)
    return _offerings(c, [code]).status_code == 200  # documented: 410 after 10 minutes


def probe_code_valid_shorter(c: Client) -> bool:
    code = _mint(c)
    c.advance(9 * 60 + 30)
    return _offerings(c, [code]).status_code == 410  # documented: valid for 10 minutes


_IGNORE_EXPIRY = threading.local()


def expired_code_finalises(mock: MockServer, p: Patcher) -> None:
    """Finalise does not look at a code's expiry (get/offerings still does)."""
    expired = pos_codes.Code.expired

    def lenient(self: Any, now: datetime) -> bool:
        return False if getattr(_IGNORE_EXPIRY, "on", False) else expired(self, now)

    def make(original: Any) -> Any:
        def finalise(store: Any, now: datetime, body: Any) -> Any:
            _IGNORE_EXPIRY.on = True
            try:
                return original(store, now, body)
            finally:
                _IGNORE_EXPIRY.on = False

        return finalise

    p.setattr(pos_codes.Code, "expired", lenient)
    patch_function(p, pos_flows, "finalise", make)


def probe_expired_code_finalises(c: Client) -> bool:
    code = _mint(c)
    c.advance(11 * 60)
    return c.call("letstrade-pos", "POST", "/v1/finalise/offerings", json=_bill([code])).status_code == 200


def two_codes_of_one_type(mock: MockServer, p: Patcher) -> None:
    """Two codes of one type (two redemption codes) are taken together; a repeated code is still refused."""
    for operation_id in ("getOfferings", "finaliseOfferings"):
        drop_rules(p, mock, "letstrade-pos", operation_id, "unique")

    def make(original: Any) -> Any:
        def check(store: Any, now: datetime, raw: Any) -> Any:
            values = [str(v) for v in raw or []]
            if len(set(values)) != len(values):
                return original(store, now, raw)
            return [code for value in values for code in original(store, now, [value])]

        return check

    patch_function(p, pos_flows, "check_request_codes", make)


def probe_two_codes_of_one_type(c: Client) -> bool:
    return _offerings(c, [_mint(c), _mint(c)]).status_code == 200  # documented: one code per type (400)


def _finalised_order(c: Client, kind: str = "E") -> tuple[str, str]:
    code = _mint(c, kind)
    answer = c.call("letstrade-pos", "POST", "/v1/finalise/offerings", json=_bill([code]))
    answer.raise_for_status()
    return code, str(answer.json()["content"]["order_id"])


def refund_twice(mock: MockServer, p: Patcher) -> None:
    """A refund of codes already refunded (or of a voided basket) answers 200 again."""

    def make(original: Any) -> Any:
        def refund(store: Any, now: datetime, body: Any) -> Any:
            try:
                return original(store, now, body)
            except Conflict:
                codes = [str(v) for v in body.get("code") or []]
                voided = body.get("code") is None
                return {
                    "order_id": str(body["order_id"]),
                    "refunded_codes": codes,
                    "voided": voided,
                    "status": "VOIDED" if voided else "REFUNDED",
                }

        return refund

    patch_function(p, pos_flows, "refund", make)


def probe_refund_twice(c: Client) -> bool:
    code, order_id = _finalised_order(c)
    body = {"store_id": "STORE-1", "terminal_id": "TILL-3", "order_id": order_id, "code": [code]}
    first = c.call("letstrade-pos", "POST", "/v1/refund", json=body)
    second = c.call("letstrade-pos", "POST", "/v1/refund", json=body)
    return first.status_code == 200 and second.status_code == 200  # documented: 409 the second time


def expired_is_400(mock: MockServer, p: Patcher) -> None:
    """An expired code is refused with 400 (a generic validation error) instead of the documented 410."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            try:
                return original(services, store, request)
            except Gone as gone:
                raise ValidationFailed(gone.message, gone.fields) from None

        return handler

    for operation_id in ("getOfferings", "finaliseOfferings"):
        patch_handler(p, mock, "letstrade-pos", operation_id, make)


def probe_expired_is_400(c: Client) -> bool:
    code = _mint(c)
    c.advance(11 * 60)
    return _offerings(c, [code]).status_code == 400


# -- Let'sTrade Custom Channels ------------------------------------------------------------------
PERMISSIONS = {
    "customers": {"read": True, "write": True},
    "products": {"read": False, "write": False},
    "orders": {"read": False, "write": False},
}
OPEN_SCHEMA = [
    {"name": "email", "type": "email", "required": False},
    {"name": "first_name", "type": "string", "required": False},
    {"name": "cell_number", "type": "phone", "required": False},
]


def _channel(c: Client) -> dict[str, Any]:
    body = {
        "type": _unique("probe_"),
        "channel_type": "customer",
        "status": "ACTIVE",
        "permissions": PERMISSIONS,
        "custom_field_schema": OPEN_SCHEMA,
    }
    answer = c.call("letstrade-channels", "POST", "/v2/create/channel", json=body)
    answer.raise_for_status()
    content: dict[str, Any] = answer.json()["content"]
    return content


def _channel_key(content: dict[str, Any]) -> str:
    for name in ("api_key", "apiKey", "key"):
        if name in content:
            return str(content[name])
    return str(content["channel"]["api_key"])


def _channel_field(content: dict[str, Any], name: str) -> str:
    return str(content[name] if name in content else content["channel"][name])


def _upsert(c: Client, content: dict[str, Any], key: str, payload: dict[str, Any]) -> requests.Response:
    uuid = _channel_field(content, "webhook_uuid")
    path = f"/v1/webhooks/channels/{uuid}/customers"
    return c.call("letstrade-channels", "POST", path, headers={"X-API-Key": key}, json=payload)


def _email() -> str:
    return f"{_unique('probe.')}@example.com"


def rotated_key_still_works(mock: MockServer, p: Patcher) -> None:
    """Rotating a channel's key issues a new one but the old key keeps working."""
    rotate, matches = ChannelsStore.rotate_key, Channel.key_matches

    def rotate_key(self: Any, channel: Any, now: datetime) -> str:
        channel.__dict__.setdefault("_retired_hashes", []).append(channel.key_hash)
        return str(rotate(self, channel, now))

    def key_matches(self: Any, presented: str) -> bool:
        digest = mock_secrets.sha256_hex(presented)
        retired = self.__dict__.get("_retired_hashes", ())
        return bool(matches(self, presented)) or any(mock_secrets.same(digest, old) for old in retired)

    p.setattr(ChannelsStore, "rotate_key", rotate_key)
    p.setattr(Channel, "key_matches", key_matches)


def probe_rotated_key_still_works(c: Client) -> bool:
    created = _channel(c)
    old_key = _channel_key(created)
    channel_id = _channel_field(created, "_id")
    c.call("letstrade-channels", "POST", f"/v2/channels/{channel_id}/rotate-key").raise_for_status()
    return _upsert(c, created, old_key, {"email": _email()}).status_code == 200  # documented: 401


def inactive_channel_writable(mock: MockServer, p: Patcher) -> None:
    """A channel set INACTIVE still accepts webhook writes."""

    def make(original: Any) -> Any:
        def admit(store: Any, webhook_uuid: str, presented_key: str, resource: str) -> Any:
            channel = store.by_webhook_uuid(webhook_uuid)
            if channel is None or channel.status == "ACTIVE":
                return original(store, webhook_uuid, presented_key, resource)
            status = channel.status
            channel.status = "ACTIVE"
            try:
                return original(store, webhook_uuid, presented_key, resource)
            finally:
                channel.status = status

        return admit

    patch_function(p, channels_crm, "admit_webhook", make)


def probe_inactive_channel_writable(c: Client) -> bool:
    created = _channel(c)
    channel_id = _channel_field(created, "_id")
    c.call("letstrade-channels", "PATCH", f"/v2/channels/{channel_id}", json={"status": "INACTIVE"}).raise_for_status()
    return _upsert(c, created, _channel_key(created), {"email": _email()}).status_code == 200  # documented: 403


def identifier_optional(mock: MockServer, p: Patcher) -> None:
    """A customer payload with neither email nor cell_number is accepted (stored without identifier)."""
    drop_rules(p, mock, "letstrade-channels", "upsertChannelCustomer", "one_of")

    def make(original: Any) -> Any:
        def missing(channel_type: str, payload: Any) -> Any:
            return [] if channel_type == "customer" else original(channel_type, payload)

        return missing

    patch_function(p, channels_crm, "missing_identifier", make)


def probe_identifier_optional(c: Client) -> bool:
    created = _channel(c)
    return _upsert(c, created, _channel_key(created), {"first_name": "Thandi"}).status_code == 200  # documented: 400


def create_channel_201(mock: MockServer, p: Patcher) -> None:
    """Channel creation answers 201 Created, which the document does not list (it shows 200)."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            response = original(services, store, request)
            response.status = 201
            return response

        return handler

    patch_handler(p, mock, "letstrade-channels", "createChannel", make)


def probe_create_channel_201(c: Client) -> bool:
    body = {
        "type": _unique("probe_"),
        "channel_type": "customer",
        "status": "ACTIVE",
        "permissions": PERMISSIONS,
        "custom_field_schema": OPEN_SCHEMA,
    }
    return c.call("letstrade-channels", "POST", "/v2/create/channel", json=body).status_code == 201


# -- Custom Trades -----------------------------------------------------------------------------------
def _ct_create(c: Client, **fields: Any) -> str:
    body = {"first_name": "Ada", "last_name": "Lovelace", **fields}
    answer = c.call("customtrades", "POST", "/v1/customers", json=body)
    answer.raise_for_status()
    return str(answer.json()["data"]["uuid"])


def limit_100_refused(mock: MockServer, p: Patcher) -> None:
    """The list's page size tops out at 99: limit=100, the documented maximum, is refused."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            if int(request.query.get("limit", 50)) >= 100:
                refused = [FieldError("limit", "must not be greater than 99")]
                raise ValidationFailed("The given data was invalid.", refused)
            return original(services, store, request)

        return handler

    patch_handler(p, mock, "customtrades", "listCustomers", make)


def probe_limit_100_refused(c: Client) -> bool:
    return c.call("customtrades", "GET", "/v1/customers", params={"limit": 100}).status_code == 400


LIST_LAG = timedelta(minutes=2)


def new_customer_missing_from_list(mock: MockServer, p: Patcher) -> None:
    """The list is served from a search index that lags: a customer created in the last two minutes
    is not listed yet (get by uuid finds it; the totals count it)."""
    created: dict[str, datetime] = {}

    def make_create(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            response = original(services, store, request)
            created[str(response.body["data"]["uuid"])] = services.clock.now()
            return response

        return handler

    def make_list(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            response = original(services, store, request)
            now = services.clock.now()
            data = response.body["data"]
            data["customers"] = [
                c for c in data["customers"] if not (c["uuid"] in created and now - created[c["uuid"]] < LIST_LAG)
            ]
            return response

        return handler

    patch_handler(p, mock, "customtrades", "createCustomer", make_create)
    patch_handler(p, mock, "customtrades", "listCustomers", make_list)


def probe_new_customer_missing_from_list(c: Client) -> bool:
    uuid = _ct_create(c)
    listed = c.call("customtrades", "GET", "/v1/customers", params={"limit": 100}).json()["data"]["customers"]
    return all(item["uuid"] != uuid for item in listed)


def update_not_persisted(mock: MockServer, p: Patcher) -> None:
    """PUT answers the updated customer, but notes and company_name are not stored."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            table = store.table(request.principal)
            row = table.find(str(request.path_params["uuid"]))
            before = table.record(row) if row is not None else None
            response = original(services, store, request)
            if row is not None and before is not None:
                table.update(row, {k: before[k] for k in ("notes", "company_name")}, to_ms(services.clock.now()))
            return response

        return handler

    patch_handler(p, mock, "customtrades", "updateCustomer", make)


def probe_update_not_persisted(c: Client) -> bool:
    uuid = _ct_create(c, notes="before")
    put = c.call("customtrades", "PUT", f"/v1/customers/{uuid}", json={"notes": "after"})
    got = c.call("customtrades", "GET", f"/v1/customers/{uuid}").json()["data"]
    return put.status_code == 200 and got.get("notes") == "before"


def deleted_customer_updatable(mock: MockServer, p: Patcher) -> None:
    """A soft-deleted customer can still be updated (200), though get and delete say 404."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            table = store.table(request.principal)
            uuid = str(request.path_params["uuid"])
            row = table.by_uuid.get(uuid.lower())
            if row is not None and table.find(uuid) is None:
                table.update(row, writable(request.body), to_ms(services.clock.now()))
                return ApiResponse(200, {"success": True, "data": table.record(row)})
            return original(services, store, request)

        return handler

    patch_handler(p, mock, "customtrades", "updateCustomer", make)


def probe_deleted_customer_updatable(c: Client) -> bool:
    uuid = _ct_create(c)
    c.call("customtrades", "DELETE", f"/v1/customers/{uuid}").raise_for_status()
    return c.call("customtrades", "PUT", f"/v1/customers/{uuid}", json={"notes": "x"}).status_code == 200


def cross_company_read(mock: MockServer, p: Patcher) -> None:
    """Get by uuid finds a customer of any company (the key's company is not checked)."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            try:
                return original(services, store, request)
            except NotFound:
                uuid = str(request.path_params["uuid"])
                for table in store.tables.values():
                    row = table.find(uuid)
                    if row is not None:
                        return ApiResponse(200, {"success": True, "data": table.record(row)})
                raise

        return handler

    patch_handler(p, mock, "customtrades", "getCustomer", make)


def probe_cross_company_read(c: Client) -> bool:
    uuid = _ct_create(c)
    other = {"Authorization": f"Bearer {c.creds['customtrades_second_company']['api_key']}"}
    return c.call("customtrades", "GET", f"/v1/customers/{uuid}", headers=other).status_code == 200


def not_found_framework_envelope(mock: MockServer, p: Patcher) -> None:
    """A missing customer is answered in the web framework's default 404 body, not the API's envelope."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            try:
                return original(services, store, request)
            except NotFound:
                return ApiResponse(404, {"message": "No query results for model [App\\Models\\Customer]."})

        return handler

    for operation_id in ("getCustomer", "updateCustomer", "deleteCustomer"):
        patch_handler(p, mock, "customtrades", operation_id, make)


def probe_not_found_framework_envelope(c: Client) -> bool:
    answer = c.call("customtrades", "GET", f"/v1/customers/{uuidlib.uuid4()}")
    return answer.status_code == 404 and "success" not in answer.json()


# -- Capillary ---------------------------------------------------------------------------------------
def _mobile() -> str:
    return "9198" + str(uuidlib.uuid4().int)[:8]


def _register(c: Client, profile: dict[str, Any], *more: dict[str, Any]) -> requests.Response:
    return c.call("capillary", "POST", "/v2/customers", json={"profiles": [profile, *more]})


def _lookup(c: Client, mobile: str) -> dict[str, Any]:
    params = {"source": "INSTORE", "identifierName": "mobile", "identifierValue": mobile}
    answer = c.call("capillary", "GET", "/v2/customers/lookup/customerDetails", params=params)
    answer.raise_for_status()
    profile: dict[str, Any] = answer.json()["profiles"][0]
    return profile


def capillary_limit(name: str, value: int) -> Callable[[MockServer, Patcher], None]:
    def apply(mock: MockServer, p: Patcher) -> None:
        p.setattr(capillary_registration, name, value)

    return apply


def probe_names_cut_at_99(c: Client) -> bool:
    mobile = _mobile()
    profile = {"firstName": "N" * 100, "lastName": "L", "identifiers": [{"type": "mobile", "value": mobile}]}
    _register(c, {**profile, "source": "INSTORE"}).raise_for_status()
    return len(_lookup(c, mobile)["firstName"]) == 99  # documented: the first 100 kept


def probe_email_kept_past_255(c: Client) -> bool:
    mobile = _mobile()
    email = "e" * 244 + "@example.com"  # 256 characters
    identifiers = [{"type": "mobile", "value": mobile}, {"type": "email", "value": email}]
    _register(c, {"firstName": "E", "identifiers": identifiers, "source": "INSTORE"}).raise_for_status()
    stored = [i["value"] for i in _lookup(c, mobile)["identifiers"] if i["type"] == "email"]
    return bool(stored) and len(stored[0]) == 256  # documented: characters past 255 are ignored


def source_account_twice(mock: MockServer, p: Patcher) -> None:
    """Two profiles for one source account in one registration are accepted (the last one wins)."""
    drop_rules(p, mock, "capillary", "registerCustomer", "unique")

    def make(original: Any) -> Any:
        def parse(body: Any, config: Any, **kwargs: Any) -> Any:
            if isinstance(body, dict) and isinstance(body.get("profiles"), list):
                seen: dict[tuple[str, str], Any] = {}
                for profile in body["profiles"]:
                    if isinstance(profile, dict):
                        key = (str(profile.get("source", kwargs.get("source"))), str(profile.get("accountId", "")))
                        seen[key] = profile
                body = {**body, "profiles": list(seen.values())}
            return original(body, config, **kwargs)

        return parse

    patch_function(p, capillary_registration, "parse_registration", make)


def probe_source_account_twice(c: Client) -> bool:
    profile = {"firstName": "T", "identifiers": [{"type": "mobile", "value": _mobile()}], "source": "INSTORE"}
    return _register(c, profile, {**profile, "lastName": "Twice"}).status_code == 200  # documented: refused


def invalid_identifier_8014(mock: MockServer, p: Patcher) -> None:
    """An invalid identifier is refused with the generic registration code 8014 instead of 8013."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            try:
                return original(services, store, request)
            except ValidationFailed as refused:
                if refused.code == 8013 or any(f.code == 8013 for f in refused.fields):
                    fields = [dataclasses.replace(f, code=8014 if f.code == 8013 else f.code) for f in refused.fields]
                    raise ValidationFailed(refused.message, fields, code=8014) from None
                raise

        return handler

    for operation_id in ("registerCustomer", "updateCustomer"):
        patch_handler(p, mock, "capillary", operation_id, make)


def probe_invalid_identifier_8014(c: Client) -> bool:
    profile = {"firstName": "B", "identifiers": [{"type": "email", "value": "not-an-email"}], "source": "INSTORE"}
    answer = _register(c, profile)
    return answer.status_code == 400 and answer.json()["errors"][0]["code"] == 8014


def token_expires_early(mock: MockServer, p: Patcher) -> None:
    """An OAuth token stops working a minute before the ttlSeconds (and the `exp` claim) it was
    issued with: the gateway's own clock for tokens is a minute short."""
    issue = CapillaryStore.issue_token

    def issue_token(self: Any, now: datetime) -> tuple[str, int]:
        token, ttl = issue(self, now)
        digest = mock_secrets.sha256_hex(token)
        self._tokens[digest] = self._tokens[digest] - timedelta(seconds=60)
        return token, ttl

    p.setattr(CapillaryStore, "issue_token", issue_token)


def probe_token_expires_early(c: Client) -> bool:
    keys = c.creds["capillary"]
    answer = c.session.post(
        c.mock.url("capillary", "/v3/oauth/token/generate"),
        json={"key": keys["oauth_key"], "secret": keys["oauth_secret"]},
        timeout=30,
    )
    data = answer.json()["data"]
    c.advance(int(data["ttlSeconds"]) - 30)
    token = {"X-CAP-API-OAUTH-TOKEN": data["accessToken"]}
    lookup = c.session.get(c.mock.url("capillary", "/v2/extendedFields"), headers=token, timeout=30)
    return lookup.status_code == 401  # documented: valid for ttlSeconds


# -- LOKE --------------------------------------------------------------------------------------------
def _loke_customer(c: Client) -> str:
    listed = c.call("loke", "GET", f"/organizations/{c.org}/customers").json()
    return str(listed[0]["id"])


def zero_points_accepted(mock: MockServer, p: Patcher) -> None:
    """A points adjustment of 0 is accepted (204, nothing changes) instead of refused."""
    drop_rules(p, mock, "loke", "adjustPoints", "forbidden")

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            if isinstance(request.body, dict) and request.body.get("amount") == 0:
                store.reachable_org(str(request.path_params["organizationId"])).customer(
                    str(request.path_params["customerId"])
                )
                return ApiResponse(204)
            return original(services, store, request)

        return handler

    patch_handler(p, mock, "loke", "adjustPoints", make)


def probe_zero_points_accepted(c: Client) -> bool:
    customer = _loke_customer(c)
    path = f"/organizations/{c.org}/customers/{customer}/points/{_unique('ref-')}"
    return c.call("loke", "PUT", path, json={"amount": 0}).status_code == 204


def deliveries_after_delete(mock: MockServer, p: Patcher) -> None:
    """Deleting a webhook subscription only hides it from the list: events keep being delivered to
    it (a soft delete that the delivery side does not look at)."""
    delete = OrgState.delete_subscription

    def hidden(state: Any) -> set[str]:
        found: set[str] = state.__dict__.setdefault("_hidden_webhooks", set())
        return found

    def delete_subscription(self: Any, ref: str) -> Any:
        sub = self.subscriptions.get(ref)
        if sub is None or sub.id in hidden(self):  # the documented 404, from the original
            kept = self.subscriptions.pop(ref, None)
            try:
                return delete(self, ref)
            finally:
                if kept is not None:
                    self.subscriptions[ref] = kept
        hidden(self).add(sub.id)
        return sub

    def make_list(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            response = original(services, store, request)
            state = store.orgs.get(str(request.path_params["organizationId"]))
            gone = hidden(state) if state is not None else set()
            response.body = [item for item in response.body if item.get("id") not in gone]
            return response

        return handler

    def make_upsert(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            state = store.orgs.get(str(request.path_params["organizationId"]))
            ref = str(request.path_params["webhookRef"])
            if state is not None and ref in state.subscriptions and state.subscriptions[ref].id in hidden(state):
                hidden(state).discard(state.subscriptions[ref].id)
                delete(state, ref)  # a new subscription under the old ref
            return original(services, store, request)

        return handler

    p.setattr(OrgState, "delete_subscription", delete_subscription)
    patch_handler(p, mock, "loke", "listWebhooks", make_list)
    patch_handler(p, mock, "loke", "upsertWebhook", make_upsert)


def probe_deliveries_after_delete(c: Client) -> bool:
    customer = {"firstName": "Probe", "lastName": "Hook"}
    event = {"event": "customer.created", "organization_id": c.org, "customer": customer}
    before = int(c.admin("POST", "/loke/events", json=event)["deliveries"])
    ref = _unique("lcs-probe-")
    hook = f"/organizations/{c.org}/webhooks/{ref}"
    body = {"url": "http://127.0.0.1:9/hook", "events": ["customer.created"], "secret": "probe-secret-0001"}
    c.call("loke", "PUT", hook, json=body).raise_for_status()
    c.call("loke", "DELETE", hook).raise_for_status()
    after = int(c.admin("POST", "/loke/events", json=event)["deliveries"])
    return after > before  # documented: a deleted subscription gets nothing


def secret_in_header(mock: MockServer, p: Patcher) -> None:
    """The webhook upsert answers with the subscription's secret in an `X-Webhook-Secret` header."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            response = original(services, store, request)
            response.headers = {**response.headers, "X-Webhook-Secret": str(request.body["secret"])}
            return response

        return handler

    patch_handler(p, mock, "loke", "upsertWebhook", make)


def probe_secret_in_header(c: Client) -> bool:
    body = {"url": "https://crm.example.com/hook", "events": ["customer.created"], "secret": "probe-secret-0002"}
    answer = c.call("loke", "PUT", f"/organizations/{c.org}/webhooks/{_unique('lcs-probe-')}", json=body)
    return answer.headers.get("X-Webhook-Secret") == body["secret"]


def uninstalled_org_reachable(mock: MockServer, p: Patcher) -> None:
    """The client token reaches an organization that has not installed the add-on."""
    p.setattr(LokeStore, "reachable_org", lambda self, organization_id: self.org(organization_id))


def probe_uninstalled_org_reachable(c: Client) -> bool:
    other = c.creds["loke"]["not_installed_organization_id"]
    return c.call("loke", "GET", f"/organizations/{other}/customers").status_code == 200  # documented: 403


def customer_without_dob(mock: MockServer, p: Patcher) -> None:
    """The single-customer read leaves out `dob` (the export list still has it)."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            response = original(services, store, request)
            if isinstance(response.body, dict):
                response.body = {k: v for k, v in response.body.items() if k != "dob"}
            return response

        return handler

    patch_handler(p, mock, "loke", "getCustomer", make)


def probe_customer_without_dob(c: Client) -> bool:
    customer = _loke_customer(c)
    return "dob" not in c.call("loke", "GET", f"/organizations/{c.org}/customers/{customer}").json()


def reversal_twice(mock: MockServer, p: Patcher) -> None:
    """Reversing a points record that was already reversed answers 204 again."""
    reversed_before: set[tuple[str, str]] = set()

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            key = (str(request.path_params["customerId"]), str(request.path_params["reference"]))
            try:
                response = original(services, store, request)
            except NotFound:
                if key in reversed_before:
                    return ApiResponse(204)
                raise
            reversed_before.add(key)
            return response

        return handler

    patch_handler(p, mock, "loke", "reversePoints", make)


def probe_reversal_twice(c: Client) -> bool:
    customer = _loke_customer(c)
    path = f"/organizations/{c.org}/customers/{customer}/points/{_unique('ref-')}"
    c.call("loke", "PUT", path, json={"amount": 5}).raise_for_status()
    first = c.call("loke", "DELETE", path)
    second = c.call("loke", "DELETE", path)
    return first.status_code == 204 and second.status_code == 204  # documented: 404 the second time


# -- the list ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutant:
    name: str
    api: str
    kind: str  # boundary | prose | scenario | schema | security | paging
    deviation: str  # what the mutated mock does
    documented: str  # what the documents say instead
    apply: Callable[[MockServer, Patcher], None]
    probe: Callable[[Client], bool]
    select: str  # pytest -k expression: the tests of the suite that concern it (narrows `thorough`)


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "pos-code-valid-11-minutes", "letstrade-pos", "boundary",
        "a P/R/E code is accepted for 11 minutes after it was generated",
        "a code expires 10 minutes after it is generated; using it later is refused (410)",
        pos_validity(11), probe_code_valid_longer, "test_validity_periods or test_stateful",
    ),
    Mutant(
        "pos-code-valid-9-minutes", "letstrade-pos", "boundary",
        "a code is refused as expired (410) 9 minutes after it was generated",
        "a code is valid for 10 minutes from the moment it is generated",
        pos_validity(9), probe_code_valid_shorter, "test_validity_periods or test_stateful",
    ),
    Mutant(
        "pos-expired-code-finalises", "letstrade-pos", "scenario",
        "finalise accepts a code whose 10 minutes are over (get/offerings still refuses it)",
        "an expired code is refused on every call (410); a new code must be generated",
        expired_code_finalises, probe_expired_code_finalises, "test_validity_periods or test_stateful",
    ),
    Mutant(
        "pos-two-codes-of-one-type", "letstrade-pos", "prose",
        "two codes of one type (two R codes) are accepted in one request",
        "at most one code of each type (P, R, E) per transaction",
        two_codes_of_one_type, probe_two_codes_of_one_type, "test_rule or get/offerings",
    ),
    Mutant(
        "pos-refund-twice", "letstrade-pos", "scenario",
        "refunding codes already refunded answers 200 again",
        "a code is refunded at most once (a second refund is a 409)",
        refund_twice, probe_refund_twice, "test_stateful or refund",
    ),
    Mutant(
        "pos-expired-code-400", "letstrade-pos", "schema",
        "an expired code is refused with 400 (a validation error)",
        "an expired code is answered 410 Gone, telling the till to ask for a new code",
        expired_is_400, probe_expired_is_400, "test_validity_periods or test_stateful",
    ),
    Mutant(
        "channels-rotated-key-still-works", "letstrade-channels", "scenario",
        "after a key rotation the channel's old key still writes",
        "a channel's API key authenticates only its own webhook; rotating replaces the key",
        rotated_key_still_works, probe_rotated_key_still_works, "test_stateful",
    ),
    Mutant(
        "channels-inactive-channel-writable", "letstrade-channels", "scenario",
        "a channel set INACTIVE still accepts webhook customer upserts",
        "only an ACTIVE channel accepts data (403 otherwise)",
        inactive_channel_writable, probe_inactive_channel_writable, "test_stateful",
    ),
    Mutant(
        "channels-identifier-optional", "letstrade-channels", "prose",
        "a customer upsert with neither email nor cell_number is stored",
        "the payload must carry an identifier: email or cell_number (400 otherwise)",
        identifier_optional, probe_identifier_optional, "test_rule or customers",
    ),
    Mutant(
        "channels-create-201", "letstrade-channels", "schema",
        "channel creation answers 201 Created",
        "channel creation answers 200 with the channel and its key (201 is not documented)",
        create_channel_201, probe_create_channel_201, "create/channel",
    ),
    Mutant(
        "customtrades-limit-100-refused", "customtrades", "boundary",
        "the list refuses limit=100 (its page size tops out at 99)",
        "limit: max 100",
        limit_100_refused, probe_limit_100_refused, "test_page_sizes or (test_customtrades and GET and not uuid)",
    ),
    Mutant(
        "customtrades-new-customer-unlisted", "customtrades", "paging",
        "a customer created in the last two minutes is missing from the list (a lagging index)",
        "the list returns the company's customers, newest first",
        new_customer_missing_from_list, probe_new_customer_missing_from_list, "test_stateful",
    ),
    Mutant(
        "customtrades-update-not-persisted", "customtrades", "paging",
        "PUT answers the new notes/company_name but does not store them",
        "a partial update changes the attributes sent; get returns them",
        update_not_persisted, probe_update_not_persisted, "test_stateful",
    ),
    Mutant(
        "customtrades-deleted-updatable", "customtrades", "scenario",
        "a soft-deleted customer can still be updated (200)",
        "a deleted customer is gone for get, update and delete (404)",
        deleted_customer_updatable, probe_deleted_customer_updatable, "test_stateful",
    ),
    Mutant(
        "customtrades-cross-company-read", "customtrades", "security",
        "get by uuid returns another company's customer",
        "a key sees only its own company's customers",
        cross_company_read, probe_cross_company_read, "test_stateful",
    ),
    Mutant(
        "customtrades-404-framework-envelope", "customtrades", "schema",
        "a missing customer is answered with the framework's {\"message\": ...} 404 body",
        "errors are {\"success\": false, \"error\": ...}",
        not_found_framework_envelope, probe_not_found_framework_envelope, "test_customtrades and uuid",
    ),
    Mutant(
        "capillary-names-cut-at-99", "capillary", "boundary",
        "first and last names are cut to 99 characters",
        "the character limit for names is 100; characters past it are ignored",
        capillary_limit("NAME_LIMIT", 99), probe_names_cut_at_99, "test_field_limits",
    ),
    Mutant(
        "capillary-email-past-255", "capillary", "boundary",
        "an e-mail identifier keeps 256 characters",
        "an e-mail can go up to 255 characters; characters past it are ignored",
        capillary_limit("EMAIL_LIMIT", 256), probe_email_kept_past_255, "test_field_limits",
    ),
    Mutant(
        "capillary-source-account-twice", "capillary", "prose",
        "two profiles for one source account in a registration are accepted",
        "a source account appears once (identifiers unique per source)",
        source_account_twice, probe_source_account_twice, "test_rule",
    ),
    Mutant(
        "capillary-invalid-identifier-8014", "capillary", "schema",
        "an invalid identifier is refused with code 8014",
        "an invalid identifier is error 8013",
        invalid_identifier_8014, probe_invalid_identifier_8014, "test_rule or (test_capillary and POST)",
    ),
    Mutant(
        "capillary-token-expires-early", "capillary", "boundary",
        "an OAuth token stops working a minute before the ttlSeconds it was issued with",
        "the token is valid for ttlSeconds (3600)",
        token_expires_early, probe_token_expires_early, "test_validity_periods or test_stateful",
    ),
    Mutant(
        "loke-zero-points-accepted", "loke", "prose",
        "a points adjustment of 0 is accepted (204)",
        "amount is a non-zero integer: positive awards, negative deducts",
        zero_points_accepted, probe_zero_points_accepted, "test_rule",
    ),
    Mutant(
        "loke-deliveries-after-delete", "loke", "scenario",
        "a deleted webhook subscription keeps receiving deliveries",
        "deleting a subscription stops its deliveries",
        deliveries_after_delete, probe_deliveries_after_delete, "test_stateful",
    ),
    Mutant(
        "loke-secret-in-header", "loke", "security",
        "the webhook upsert answers with the secret in an X-Webhook-Secret header",
        "the secret is write-only: never returned",
        secret_in_header, probe_secret_in_header, "test_loke and webhooks",
    ),
    Mutant(
        "loke-uninstalled-org-reachable", "loke", "security",
        "the client token reads an organization that has not installed the add-on",
        "a token reaches only the organizations that installed the add-on (403 otherwise)",
        uninstalled_org_reachable, probe_uninstalled_org_reachable, "test_stateful",
    ),
    Mutant(
        "loke-customer-without-dob", "loke", "schema",
        "GET customer by id leaves out dob",
        "a customer always carries dob (null when unknown)",
        customer_without_dob, probe_customer_without_dob, "test_loke and customerId and not points and not members",
    ),
    Mutant(
        "loke-reversal-twice", "loke", "scenario",
        "reversing a points record twice answers 204 both times",
        "a reversal removes the record; reversing it again is a 404",
        reversal_twice, probe_reversal_twice, "test_stateful or points",
    ),
)

BY_NAME = {mutant.name: mutant for mutant in MUTANTS}
