"""Boundary checks from the documents: every limit a spec states is probed at the limit, one below
and one above, and the answer is checked against what the document says must happen.

The limits come from the specs (`contracts/boundaries.py`): JSON Schema limits and `x-truncate-at`
on request fields, and our markers `x-valid-for`, `x-page-size`, `x-rate-limit`, `x-quota`
(openapi/CONVENTIONS.md, "Limits the suite probes at their boundary"). Four tests per API:

- field limits: a value of the limit's length, count or size, one below and one above, sent in an
  otherwise valid request; the outcome must be what the document says: stored whole (read back),
  cut exactly at N (read back equals the first N characters), or refused with the documented 4xx
  in the vendor's envelope (and its error code, where the spec names one). One test per operation;
  a limit no probe below can build a valid request around is named in that test's skip reason.
  Not probed: lengths of path parameters (an empty segment is another URL) and of opaque `after`
  cursors (a value of the limit's length is no cursor the target issued);
- validity periods: a code or token is used one second before its period ends (accepted) and one
  second after (refused with the documented status). Mock only: the mock's virtual clock is moved
  through its admin API; on a vendor the period would have to be waited out;
- page sizes: a listing asked for max-1, max and max+1 items (holding more than max) answers
  exactly as many, and above max what the marker says (refused, or clamped); a listing the server
  pages holds at most max items, and the rest follows on the next page;
- rate limits and quotas: N requests accepted and request N+1 refused, only where it is cheap and
  harms nobody (a mock that enforces a small limit, whose clock the test may move back).

Writes run on a real target only where the rest of the suite runs them (`contracts/safety.py`).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from contracts import boundaries
from contracts.boundaries import Case, FieldLimit, Marker
from contracts.failures import ContractViolation
from contracts.report import Recorder
from contracts.specs import SLUGS, dereference, load_spec
from contracts.stateful import Api
from contracts.target import ApiContext

SUITE = "boundaries"
CHEAP_REQUESTS = 200  # a rate limit or quota is probed only when it takes at most this many requests
FROZEN_AT = "2031-03-03T10:00:00Z"  # where a validity test stops the mock's clock
_MISSING = object()  # the probe cannot read the field back
_NOT_FOUND = object()  # the probe read back and found nothing: accepted, yet not stored


def _params(test: str, slugs: list[str]) -> list[Any]:
    return [pytest.param(slug, marks=pytest.mark.lcs_api(slug, SUITE), id=slug) for slug in slugs]


def _with_markers(*keywords: str) -> list[str]:
    return [slug for slug in SLUGS if any(boundaries.markers(slug, k) for k in keywords)]


class Findings:
    """Violations of one test: each recorded with its provenance, all reported together at the end."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.messages: list[str] = []

    def add(self, violation: ContractViolation) -> None:
        self.messages.append(f"{violation.provenance.describe()}: {violation.message}")

    def run(self, step: Callable[..., None], *args: Any) -> None:
        try:
            step(*args)
        except ContractViolation as violation:
            self.add(violation)

    def fail_if_any(self) -> None:
        if self.messages:
            pytest.fail("boundary violations:\n" + "\n".join(f"  - {m}" for m in self.messages), pytrace=False)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _text(prefix: str, length: int) -> str:
    """A string of exactly `length` characters starting with `prefix` (as much of it as fits)."""
    return (prefix + "x" * max(0, length - len(prefix)))[:length]


def _unique(rnd: random.Random) -> str:
    return f"lcs{rnd.getrandbits(40):010x}"


def _error_codes(body: Any) -> set[int]:
    found: set[int] = set()
    if isinstance(body, dict):
        for item in body.get("errors") or []:
            if isinstance(item, dict) and isinstance(item.get("code"), int):
                found.add(item["code"])
    return found


# -- field limits: one probe per operation ---------------------------------------------------------
@dataclass
class Sent:
    response: requests.Response
    stored: Any = _MISSING  # the field as the target kept it (read back), when the probe can tell
    # the probe cannot make the rest of the request succeed (a sign-in with a made-up password):
    # "accepted" then means only "not refused as invalid" (any answer but the validation refusal)
    validation_only: bool = False


Probe = Callable[[Api, Case, random.Random], Sent]


def _size_value(case: Case, rnd: random.Random, prefix: str = "") -> Any:
    if case.limit.measures == "length":
        return _text(prefix or _unique(rnd), int(case.size))
    return case.size if case.limit.schema.get("type") != "integer" else int(case.size)


# Custom Trades ---------------------------------------------------------------------------------------
CT_CUSTOMERS = "/v1/customers"
CT_CUSTOMER = "/v1/customers/{uuid}"


def _ct_read(api: Api, uuid: str, name: str) -> Any:
    response = api.call("GET", CT_CUSTOMER, f"/v1/customers/{uuid}")
    data = (_json(response) or {}).get("data") or {}
    return data.get(name, _NOT_FOUND) if response.status_code == 200 else _NOT_FOUND


def _ct_create(api: Api, body: dict[str, Any]) -> requests.Response:
    return api.call("POST", CT_CUSTOMERS, json=body)


def ct_create_customer(api: Api, case: Case, rnd: random.Random) -> Sent:
    name = str(case.limit.field[0])
    body = {"first_name": "Boundary", "last_name": "Case", name: _size_value(case, rnd, "Bo")}
    response = _ct_create(api, body)
    if response.status_code != 200:
        return Sent(response)
    return Sent(response, _ct_read(api, str(response.json()["data"]["uuid"]), name))


def ct_update_customer(api: Api, case: Case, rnd: random.Random) -> Sent:
    name = str(case.limit.field[0])
    created = _ct_create(api, {"first_name": "Boundary", "last_name": "Update"})
    api.expect(created, {200}, "boundary_setup", f"POST {CT_CUSTOMERS}", api.index.operation("POST", CT_CUSTOMERS))
    uuid = str(created.json()["data"]["uuid"])
    response = api.call("PUT", CT_CUSTOMER, f"/v1/customers/{uuid}", json={name: _size_value(case, rnd, "Up")})
    return Sent(response, _ct_read(api, uuid, name) if response.status_code == 200 else _MISSING)


def ct_list_customers(api: Api, case: Case, rnd: random.Random) -> Sent:
    name = str(case.limit.field[0])
    response = api.call("GET", CT_CUSTOMERS, params={name: int(case.size)})
    pagination = ((_json(response) or {}).get("data") or {}).get("pagination") or {}
    return Sent(response, pagination.get(name, _MISSING) if response.status_code == 200 else _MISSING)


# Capillary -------------------------------------------------------------------------------------------
CAP_CUSTOMERS = "/v2/customers"
CAP_CUSTOMER = "/v2/customers/{userId}"
CAP_LOOKUP = "/v2/customers/lookup/customerDetails"


def _cap_lookup(api: Api, value: str, kind: str = "externalId") -> dict[str, Any] | None:
    response = api.call(
        "GET",
        CAP_LOOKUP,
        params={"source": "INSTORE", "identifierName": kind, "identifierValue": value},
    )
    found = _json(response)
    return found if response.status_code == 200 and isinstance(found, dict) else None


def _cap_profile(rnd: random.Random, external_id: str) -> dict[str, Any]:
    return {
        "firstName": "Boundary",
        "lastName": "Case",
        "identifiers": [{"type": "externalId", "value": external_id}],
        "source": "INSTORE",
    }


def _cap_stored(details: dict[str, Any] | None, keys: tuple[str | int, ...]) -> Any:
    """The registered value at `keys` (a request path) in the lookup's answer."""
    if details is None:
        return _NOT_FOUND
    node: Any = details
    for key in keys:
        if isinstance(node, list):
            key = 0 if isinstance(key, int) else key
            node = node[key] if isinstance(key, int) and key < len(node) else _MISSING
        elif isinstance(node, dict):
            node = node.get(str(key), _MISSING)
        if node is _MISSING:
            return _NOT_FOUND
    return node


def cap_register_customer(api: Api, case: Case, rnd: random.Random) -> Sent:
    keys = case.limit.field
    external_id = _unique(rnd)
    body: dict[str, Any] = {"profiles": [_cap_profile(rnd, external_id)]}
    if keys == ("profiles",):
        sources = ["INSTORE", "WEBSITE", "ECOMMERCE", "MOBILE_APP"]
        body["profiles"] = [{**_cap_profile(rnd, external_id), "source": sources[i]} for i in range(int(case.size))]
    elif keys == ("profiles", 0, "identifiers"):
        extra = [
            {"type": "email", "value": f"{external_id}@example.com"},
            {"type": "mobile", "value": "4478" + str(rnd.randrange(10**8, 10**9))},
        ]
        body["profiles"][0]["identifiers"] = [{"type": "externalId", "value": external_id}, *extra][: int(case.size)]
    elif keys == ("profiles", 0, "identifiers", 0, "value"):
        # the document states the 255-character cut for e-mail values (the spec's x-assumption):
        # the cut is probed with an e-mail, the minimum length with an external id
        kind = "email" if case.limit.side == "truncate" else "externalId"
        suffix = "@example.com" if kind == "email" else ""
        external_id = _text(_unique(rnd), int(case.size) - len(suffix)) + suffix if case.size else ""
        body["profiles"][0]["identifiers"] = [{"type": kind, "value": external_id}]
    elif keys in (("profiles", 0, "firstName"), ("profiles", 0, "lastName")):
        body["profiles"][0][str(keys[2])] = _size_value(case, rnd, "N")
    elif keys[0] == "loyaltyProgramEnrollments":
        body["loyaltyProgramEnrollments"] = [{"programId": 469, "tierNumber": 1, str(keys[2]): _size_value(case, rnd)}]
    else:
        raise NotImplementedError(case.limit.describe())
    response = api.call("POST", CAP_CUSTOMERS, json=body)
    if response.status_code != 200 or not external_id:
        return Sent(response)
    limit = case.limit
    if keys == ("profiles", 0, "identifiers", 0, "value"):
        kind = str(body["profiles"][0]["identifiers"][0]["type"])
        cut = external_id[: int(limit.limit)] if limit.side == "truncate" else external_id
        found = _cap_lookup(api, cut, kind) or (_cap_lookup(api, external_id, kind) if cut != external_id else None)
        identifiers = _cap_stored(found, ("profiles", 0, "identifiers"))
        kept = [i for i in identifiers if isinstance(i, dict)] if isinstance(identifiers, list) else []
        return Sent(response, next((i["value"] for i in kept if i.get("type") == kind), _NOT_FOUND))
    if keys[0] == "loyaltyProgramEnrollments":
        effects = (_json(response) or {}).get("sideEffects") or []
        points = [e.get("awardedPoints") for e in effects if isinstance(e, dict) and e.get("type") == "points"]
        return Sent(response, points[0] if points else 0)
    details = _cap_lookup(api, external_id[:255])
    if keys in (("profiles", 0, "firstName"), ("profiles", 0, "lastName")):
        return Sent(response, _cap_stored(details, keys))
    if keys == ("profiles",):
        return Sent(response)  # how a lookup shows several source accounts is not documented
    stored = _cap_stored(details, keys)
    return Sent(response, len(stored) if isinstance(stored, list) else stored)


def cap_update_customer(api: Api, case: Case, rnd: random.Random) -> Sent:
    keys = case.limit.field
    external_id = _unique(rnd)
    created = api.call("POST", CAP_CUSTOMERS, json={"profiles": [_cap_profile(rnd, external_id)]})
    api.expect(created, {200}, "boundary_setup", f"POST {CAP_CUSTOMERS}", api.index.operation("POST", CAP_CUSTOMERS))
    user_id = int(created.json()["createdId"])
    body: dict[str, Any] = {"profiles": [{"firstName": "Boundary"}]}
    if keys == ("profiles",):
        body["profiles"] = [{"firstName": f"Boundary{i}"} for i in range(int(case.size))]
    elif keys in (("profiles", 0, "firstName"), ("profiles", 0, "lastName")):
        body["profiles"][0][str(keys[2])] = _size_value(case, rnd, "U")
    else:
        raise NotImplementedError(case.limit.describe())
    response = api.call("PUT", CAP_CUSTOMER, f"/v2/customers/{user_id}", params={"source": "INSTORE"}, json=body)
    if response.status_code != 200 or keys == ("profiles",):
        return Sent(response)
    return Sent(response, _cap_stored(_cap_lookup(api, external_id), keys))


# Let'sTrade ------------------------------------------------------------------------------------------
def _example(slug: str, method: str, path: str) -> dict[str, Any]:
    document = load_spec(slug)
    body = dereference(document["paths"][path][method]["requestBody"], document)
    found: dict[str, Any] = copy.deepcopy(next(iter(body["content"].values()))["example"])
    return found


def pos_sign_in(api: Api, case: Case, rnd: random.Random) -> Sent:
    email = str((api.ctx.creds.get("letstrade") or {}).get("email") or "pos.operator@example.com")
    body = {"email": email, "password": _size_value(case, rnd, "pw")}
    return Sent(api.call("POST", "/user/sign_in", json=body, authenticated=False), validation_only=True)


def _pos_finalise_body(rnd: random.Random, products: int) -> dict[str, Any]:
    from contracts import data

    body: dict[str, Any] = {"store_id": "lcs-store", "terminal_id": "lcs-till", "basket": {}, "code": []}
    data.pos_basket(body, rnd, finalise=True)
    fake = data.seeded(rnd)
    lines = [data.pos_product(fake, rnd) for _ in range(products)]
    total = sum((line for _, line in lines), Decimal(0))
    basket = body["basket"]
    basket["product_list"] = [product for product, _ in lines]
    basket["sub_total"] = basket["total"] = basket["outstanding_amount"] = data.money(total)
    for name in ("vat", "service_fee", "delivery_fee", "discount", "product_handling_fees"):
        basket[name] = "0.00"
    return body


def pos_finalise(api: Api, case: Case, rnd: random.Random) -> Sent:
    body = _pos_finalise_body(rnd, int(case.size))
    return Sent(api.call("POST", "/v1/finalise/offerings", json=body))


def channels_sign_up(api: Api, case: Case, rnd: random.Random) -> Sent:
    body = _example("letstrade-channels", "post", "/user/sign_up")
    body.update(email=f"{_unique(rnd)}@example.com", cell_number=f"+2772{rnd.randrange(10**6, 10**7)}")
    body["password"] = _size_value(case, rnd, "pw")
    return Sent(api.call("POST", "/user/sign_up", json=body, authenticated=False))


def channels_create(api: Api, case: Case, rnd: random.Random) -> Sent:
    body = _example("letstrade-channels", "post", "/v2/create/channel")
    if case.limit.field == ("type",):
        body["type"] = _size_value(case, rnd, "t")
    else:
        body["custom_field_schema"].append({"name": _size_value(case, rnd, "f"), "type": "string", "required": False})
    return Sent(api.call("POST", "/v2/create/channel", json=body))


def channels_update(api: Api, case: Case, rnd: random.Random) -> Sent:
    """The update of a channel this case creates (never the configured one, whose key the suite
    was given: README, "Safety on real targets")."""
    from contracts import data

    made = api.call("POST", "/v2/create/channel", json=_example("letstrade-channels", "post", "/v2/create/channel"))
    assert made.status_code == 200, f"creating the channel to update failed: {made.text[:300]}"
    channel = str(made.json()["content"]["channel"]["_id"])
    fields = data.channel_field_schema("customer", rnd)
    fields.append({"name": _size_value(case, rnd, "f"), "type": "string", "required": False})
    path = f"/v2/channels/{channel}"
    return Sent(api.call("PATCH", "/v2/channels/{channel_id}", path, json={"custom_field_schema": fields}))


def pos_refund(api: Api, case: Case, rnd: random.Random) -> Sent:
    """Refund of an order that does not exist: a code list of valid length passes validation (and
    is then not found); an empty one is refused as invalid."""
    body = _example("letstrade-pos", "post", "/v1/refund")
    body["order_id"] = f"{rnd.getrandbits(96):024x}"
    body["code"] = [f"{kind}{_unique(rnd)[3:11].upper()}" for kind in "PRE"][: int(case.size)]
    return Sent(api.call("POST", "/v1/refund", json=body), validation_only=True)


def channels_upsert_product(api: Api, case: Case, rnd: random.Random) -> Sent:
    from contracts import data

    def product_channel() -> dict[str, Any]:
        body = _example("letstrade-channels", "post", "/v2/create/channel")
        body.update(type="product_webhook", channel_type="product")
        body["permissions"]["products"] = {"read": True, "write": True}
        body["custom_field_schema"] = data.channel_field_schema("product", rnd)
        created = api.call("POST", "/v2/create/channel", json=body)
        where = "POST /v2/create/channel"
        api.expect(created, {200}, "boundary_setup", where, api.index.operation("POST", "/v2/create/channel"))
        content: dict[str, Any] = created.json()["content"]
        return content

    channel = api.ctx.cache.get("boundary-product-channel") or product_channel()
    api.ctx.cache["boundary-product-channel"] = channel
    template = "/v1/webhooks/channels/{webhook_uuid}/products"
    path = template.replace("{webhook_uuid}", str(channel["channel"]["webhook_uuid"]))
    body = {"sku": _size_value(case, rnd, "S"), "title": "Boundary mug"}
    headers = {"X-API-Key": str(channel["api_key"])}
    return Sent(api.call("POST", template, path, json=body, headers=headers, authenticated=False))


# LOKE --------------------------------------------------------------------------------------------------
def _loke_org(api: Api) -> str:
    return str((api.ctx.creds.get("loke") or {}).get("organization_id") or "")


def loke_create_list(api: Api, case: Case, rnd: random.Random) -> Sent:
    template = "/organizations/{organizationId}/customer-lists"
    path = template.replace("{organizationId}", _loke_org(api))
    response = api.call("POST", template, path, json={"name": _size_value(case, rnd, "L")})
    return Sent(response, (_json(response) or {}).get("name", _MISSING) if response.status_code == 201 else _MISSING)


def loke_upsert_webhook(api: Api, case: Case, rnd: random.Random) -> Sent:
    from contracts import data

    template = "/organizations/{organizationId}/webhooks/{webhookRef}"
    path = template.replace("{organizationId}", _loke_org(api)).replace("{webhookRef}", f"lcs-{_unique(rnd)}")
    body = _example("loke", "put", template)
    body["url"] = data.DISCARD_URL
    if case.limit.field == ("events",):
        body["events"] = body["events"][: int(case.size)]
    else:
        body["secret"] = _size_value(case, rnd, "s")
    response = api.call("PUT", template, path, json=body)
    events = (_json(response) or {}).get("events") if response.status_code == 200 else None
    stored = len(events) if case.limit.field == ("events",) and isinstance(events, list) else _MISSING
    return Sent(response, stored)


def loke_list_payments(api: Api, case: Case, rnd: random.Random) -> Sent:
    template = "/organizations/{organizationId}/payments"
    path = template.replace("{organizationId}", _loke_org(api))
    name = str(case.limit.field[0])
    return Sent(api.call("GET", template, path, params={name: _size_value(case, rnd, "loc")}))


# (api, operationId) -> (probe, the fields it can build; None = every field of the operation)
PROBES: dict[tuple[str, str], tuple[Probe, set[tuple[str | int, ...]] | None]] = {
    ("customtrades", "createCustomer"): (ct_create_customer, None),
    ("customtrades", "updateCustomer"): (ct_update_customer, None),
    ("customtrades", "listCustomers"): (ct_list_customers, None),
    ("capillary", "registerCustomer"): (
        cap_register_customer,
        {
            ("profiles",),
            ("profiles", 0, "firstName"),
            ("profiles", 0, "lastName"),
            ("profiles", 0, "identifiers"),
            ("profiles", 0, "identifiers", 0, "value"),
            ("loyaltyProgramEnrollments", 0, "loyaltyPoints"),
        },
    ),
    ("capillary", "updateCustomer"): (
        cap_update_customer,
        {("profiles",), ("profiles", 0, "firstName"), ("profiles", 0, "lastName")},
    ),
    ("letstrade-pos", "signIn"): (pos_sign_in, None),
    ("letstrade-pos", "finaliseOfferings"): (pos_finalise, {("basket", "product_list")}),
    ("letstrade-pos", "refund"): (pos_refund, {("code",)}),
    ("letstrade-channels", "signUp"): (channels_sign_up, None),
    ("letstrade-channels", "upsertChannelProduct"): (channels_upsert_product, {("sku",)}),
    ("letstrade-channels", "createChannel"): (channels_create, None),
    ("letstrade-channels", "updateChannel"): (channels_update, None),
    ("loke", "createCustomerList"): (loke_create_list, {("name",)}),
    ("loke", "upsertWebhook"): (loke_upsert_webhook, {("events",), ("secret",)}),
    ("loke", "listPayments"): (loke_list_payments, {("locationId",)}),
}


def probe_for(limit: FieldLimit) -> Probe | None:
    found = PROBES.get((limit.api, limit.operation_id))
    if found is None:
        return None
    probe, fields = found
    return probe if fields is None or limit.field in fields else None


def _refusal_status(limit: FieldLimit) -> str:
    """The status the spec documents for a refused field: its validation 400 (CONVENTIONS.md)."""
    return "400"


def check_case(api: Api, case: Case, sent: Sent) -> None:
    limit = case.limit
    response = sent.response
    what = case.describe()
    if case.expect == "refused":
        expected = _refusal_status(limit)
        if response.status_code < 400:
            raise api.violation(
                "boundary_refused",
                limit.operation,
                f"{what}, but it was accepted ({response.status_code})",
                limit.provenance,
            )
        if str(response.status_code) != expected:
            raise api.violation(
                "boundary_refused",
                limit.operation,
                f"{what} with {expected}, got {response.status_code}: {response.text[:200]}",
                api.index.response(limit.method, limit.path, expected),
            )
        codes = _error_codes(_json(response))
        if limit.error_code is not None and limit.error_code not in codes:
            raise api.violation(
                "boundary_error_code",
                limit.operation,
                f"{what} with error code {limit.error_code}, got {sorted(codes) or 'none'}: {response.text[:200]}",
                limit.provenance,
            )
        return
    if sent.validation_only and str(response.status_code) != _refusal_status(limit):
        return
    if response.status_code >= 300:
        raise api.violation(
            "boundary_accepted",
            limit.operation,
            f"{what}, but it was refused ({response.status_code}): {response.text[:200]}",
            limit.provenance,
        )
    if sent.stored is _MISSING:
        return
    if sent.stored is _NOT_FOUND:
        raise api.violation(
            "boundary_stored_whole",
            limit.operation,
            f"{what}: accepted ({response.status_code}) but not found when read back",
            limit.provenance,
        )
    stored = sent.stored
    if limit.measures == "length" and isinstance(stored, str):
        if case.expect == "cut" and len(stored) != int(limit.limit):
            raise api.violation(
                "boundary_truncated",
                limit.operation,
                f"{what} at exactly {limit.limit:g} characters; {len(stored)} were kept",
                limit.provenance,
            )
        if case.expect == "whole" and len(stored) != int(case.size):
            raise api.violation(
                "boundary_stored_whole",
                limit.operation,
                f"{what} (all {case.size:g} characters kept); {len(stored)} were kept",
                limit.provenance,
            )
    elif limit.measures in ("value", "items") and isinstance(stored, (int, float)) and stored != case.size:
        raise api.violation(
            "boundary_stored_whole",
            limit.operation,
            f"{what} and kept as sent; the target kept {stored}",
            limit.provenance,
        )


PATH_SKIP = "path parameters (an empty or 1-character path segment names no particular resource)"
CURSOR_SKIP = "`after` cursors (opaque: a value of the limit's length is no cursor the target issued)"


def _skip_summary(skipped: list[str]) -> str:
    rest = [reason for reason in skipped if reason not in (PATH_SKIP, CURSOR_SKIP)]
    grouped = [f"{skipped.count(kind)} limits on {kind}" for kind in (PATH_SKIP, CURSOR_SKIP) if kind in skipped]
    return "; ".join([*rest, *grouped])


def _field_limit_skip(ctx: ApiContext, limit: FieldLimit) -> str | None:
    """Why `limit` is not probed on this target (None: it is)."""
    if limit.location == "path":
        return PATH_SKIP
    if limit.location == "query" and limit.field == ("after",):
        return CURSOR_SKIP
    if probe_for(limit) is None:
        return f"{limit.describe()} (no probe builds a valid {limit.operation_id} request around it)"
    if (
        not ctx.allow_irreversible
        and ctx.slug in _irreversible_ops()
        and limit.operation_id in _irreversible_ops()[ctx.slug]
    ):
        return f"{limit.describe()}: {limit.operation_id} is irreversible on a real target (--allow-irreversible)"
    if limit.operation_id == "signIn" and not ctx.is_mock:
        return f"{limit.describe()}: sign-ins with made-up passwords could lock a real account"
    if ctx.slug == "customtrades" and limit.operation_id == "updateCustomer" and not ctx.is_mock:
        return f"{limit.describe()}: never changes a real account's existing customers"
    return None


def _irreversible_ops() -> dict[str, dict[str, str]]:
    from contracts.safety import IRREVERSIBLE

    return IRREVERSIBLE


def _probe_case(api: Api, case: Case, probe: Probe, rnd: random.Random) -> None:
    check_case(api, case, probe(api, case, rnd))


def _probed_kinds(limit: FieldLimit) -> bool:
    """Limits of a kind the suite probes at all (not path parameters or opaque cursors)."""
    return limit.location != "path" and not (limit.location == "query" and limit.field == ("after",))


def _field_limit_params() -> list[Any]:
    """One test per operation with a limit on a request field (path parameters and cursors aside)."""
    found: list[Any] = []
    for slug in SLUGS:
        operations = dict.fromkeys(f.operation_id for f in boundaries.field_limits(slug) if _probed_kinds(f))
        found.extend(
            pytest.param(slug, op, marks=pytest.mark.lcs_api(slug, SUITE), id=f"{slug}-{op}") for op in operations
        )
    return found


@pytest.mark.parametrize(("slug", "operation_id"), _field_limit_params())
def test_field_limits(slug: str, operation_id: str, lcs_context: ApiContext, lcs_recorder: Recorder) -> None:
    api = Api(lcs_context, lcs_recorder)
    findings = Findings(api)
    rnd = random.Random(f"boundaries-{slug}-{operation_id}-{time.time_ns() if not lcs_context.in_process else 0}")
    skipped: list[str] = []
    probed = 0
    for limit in boundaries.field_limits(slug):
        if limit.operation_id != operation_id:
            continue
        reason = _field_limit_skip(lcs_context, limit)
        if reason is not None:
            skipped.append(reason)
            continue
        probe = probe_for(limit)
        assert probe is not None
        probed += 1
        for case in boundaries.cases(limit):
            findings.run(_probe_case, api, case, probe, rnd)
    findings.fail_if_any()
    if not probed:
        pytest.skip(_skip_summary(skipped))


# -- validity periods ------------------------------------------------------------------------------------
def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FrozenClock:
    """Stops the mock's clock at FROZEN_AT for the test and restarts it where it was afterwards
    (a shared mock's clock is never left stopped)."""

    def __init__(self, ctx: ApiContext, what: str) -> None:
        self.admin = ctx.require_clock(what)
        self.start = datetime.fromisoformat(FROZEN_AT.replace("Z", "+00:00"))

    def __enter__(self) -> FrozenClock:
        self.before = self.admin.clock()
        self.admin.set_clock(FROZEN_AT, frozen=True)
        return self

    def at(self, seconds: float) -> None:
        self.admin.set_clock(_iso(self.start + timedelta(seconds=seconds)), frozen=True)

    def __exit__(self, *exc: Any) -> None:
        now = self.before.get("now") if isinstance(self.before, dict) else None
        if now:
            self.admin.set_clock(str(now), frozen=bool(self.before.get("frozen", False)))


def _period_seconds(marker: Marker, issued: Any) -> int:
    period = marker.duration()
    if period is not None:
        return period.seconds
    return int(issued)


def _use_window(
    api: Api, clock: FrozenClock, marker: Marker, seconds: int, use: Callable[[], requests.Response], operation: str
) -> None:
    """Use the credential one second before its period ends (accepted) and one second after
    (refused with the marker's status)."""
    what = f"valid for {seconds} s ({marker.value.get('duration')})"
    clock.at(seconds - 1)
    early = use()
    if str(early.status_code) == marker.refused or early.status_code in (401, 403, 410):
        raise api.violation(
            "boundary_valid_until",
            operation,
            f"refused {early.status_code} one second before the end of its validity ({what}): {early.text[:200]}",
            marker.provenance,
        )
    clock.at(seconds + 1)
    late = use()
    if late.status_code < 400:
        raise api.violation(
            "boundary_expired_after",
            operation,
            f"still accepted ({late.status_code}) one second after its validity ended ({what})",
            marker.provenance,
        )
    if str(late.status_code) != marker.refused:
        method, path = operation.split(" ", 1)
        raise api.violation(
            "boundary_expired_after",
            operation,
            f"an expired use answered {late.status_code}, documented {marker.refused} ({what}): {late.text[:200]}",
            api.index.response(method, path, marker.refused),
        )


def _pos_code_validity(ctx: ApiContext, api: Api, marker: Marker) -> None:
    from contracts import data

    offerings = "/v1/get/offerings"
    with FrozenClock(ctx, "a code's 10-minute validity") as clock:
        admin = ctx.require_admin("minting a code")
        code = str(admin.mint_code(type="E", points_per_currency_unit="1")["code"])
        rnd = random.Random(22)
        body: dict[str, Any] = {
            "store_id": "lcs-store",
            "terminal_id": "lcs-till",
            "basket": {"user": {}},
            "code": [code],
        }
        data.pos_basket(body, rnd, finalise=False)
        body["basket"].pop("user", None)

        def use() -> requests.Response:
            return api.call("POST", offerings, json=body)

        _use_window(api, clock, marker, _period_seconds(marker, None), use, f"POST {offerings}")


def _capillary_token_validity(ctx: ApiContext, api: Api, marker: Marker) -> None:
    creds = ctx.creds.get("capillary") or {}
    with FrozenClock(ctx, "an access token's lifetime") as clock:
        issued = api.call(
            "POST",
            "/v3/oauth/token/generate",
            authenticated=False,
            json={"key": creds.get("oauth_key"), "secret": creds.get("oauth_secret")},
        )
        api.expect(issued, {200}, "boundary_setup", "POST /v3/oauth/token/generate", marker.provenance)
        token = issued.json()["data"]

        def use() -> requests.Response:
            return api.call(
                "GET",
                CAP_LOOKUP,
                authenticated=False,
                headers={"CAP-API-ACCESS-TOKEN": str(token["accessToken"])},
                params={"source": "INSTORE", "identifierName": "externalId", "identifierValue": "lcs-validity"},
            )

        _use_window(api, clock, marker, _period_seconds(marker, token["ttlSeconds"]), use, f"GET {CAP_LOOKUP}")


def _loke_token_validity(ctx: ApiContext, api: Api, marker: Marker) -> None:
    creds = ctx.creds.get("loke") or {}
    with FrozenClock(ctx, "an access token's lifetime") as clock:
        issued = api.call(
            "POST",
            "/auth/token",
            authenticated=False,
            data={
                "grant_type": "client_credentials",
                "client_id": creds.get("client_id"),
                "client_secret": creds.get("client_secret"),
            },
        )
        api.expect(issued, {200}, "boundary_setup", "POST /auth/token", marker.provenance)
        token = issued.json()

        def use() -> requests.Response:
            return api.call(
                "GET",
                "/organizations",
                authenticated=False,
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )

        _use_window(api, clock, marker, _period_seconds(marker, token["expires_in"]), use, "GET /organizations")


VALIDITY: dict[tuple[str, str], Callable[[ApiContext, Api, Marker], None]] = {
    ("letstrade-pos", "/components/schemas/Code"): _pos_code_validity,
    ("capillary", "/components/schemas/TokenResponse/properties/data/properties/ttlSeconds"): _capillary_token_validity,
    ("loke", "/components/schemas/TokenResponse/properties/expires_in"): _loke_token_validity,
}


@pytest.mark.parametrize("slug", _params("validity", _with_markers("x-valid-for")))
def test_validity_periods(slug: str, lcs_context: ApiContext, lcs_recorder: Recorder) -> None:
    if lcs_context.admin is None:
        pytest.skip(
            f"mock-only: a validity period is probed by moving the mock's clock to just before and just after "
            f"it ends; {lcs_context.label} is not a mock and waiting the period out is too slow"
        )
    api = Api(lcs_context, lcs_recorder)
    findings = Findings(api)
    missing = []
    for marker in boundaries.markers(slug, "x-valid-for"):
        check = VALIDITY.get((slug, marker.pointer))
        if check is None:
            missing.append(f"{marker.pointer}: no probe issues and uses what it marks")
            continue
        findings.run(check, lcs_context, api, marker)
    findings.fail_if_any()
    if missing:
        pytest.fail(f"{slug}: x-valid-for markers without a probe: {missing}")


# -- page sizes -------------------------------------------------------------------------------------------
def _items_at(body: Any, pointer: str) -> Any:
    node = body
    for token in [t for t in pointer.split("/")[1:]]:
        node = node.get(token) if isinstance(node, dict) else None
    return node


def _ct_fill(ctx: ApiContext, api: Api, count: int) -> int:
    """At least `count` customers on a mock (created through the API); the total."""
    first = api.call("GET", CT_CUSTOMERS, params={"limit": 1})
    total = int(((_json(first) or {}).get("data") or {}).get("pagination", {}).get("total", 0))
    if ctx.is_mock:
        for n in range(total, count):
            _ct_create(api, {"first_name": "Page", "last_name": f"Filler{n}"})
        total = max(total, count)
    return total


def _page_size_parameter(ctx: ApiContext, api: Api, marker: Marker) -> None:
    assert marker.operation is not None
    method, path = marker.operation
    value = marker.value
    name, most = str(value["parameter"]), int(value["max"])
    operation = f"{method.upper()} {path}"
    total = _ct_fill(ctx, api, most + 1) if ctx.slug == "customtrades" else 0
    for asked in (most - 1, most, most + 1):
        response = api.call(method.upper(), path, params={name: asked})
        if asked > most and value["above"] == "refused":
            if str(response.status_code) != str(value["refused"]):
                raise api.violation(
                    "boundary_page_size",
                    operation,
                    f"{name}={asked} (above the maximum {most}) must be refused with {value['refused']}, "
                    f"got {response.status_code}",
                    api.index.parameter(method, path, "query", name),
                )
            continue
        api.expect(response, {200}, "boundary_page_size", f"{operation} {name}={asked}", marker.provenance)
        items = _items_at(_json(response), str(value["items"]))
        expected = min(asked, most, total)
        if not isinstance(items, list) or (total and len(items) != expected):
            raise api.violation(
                "boundary_page_size",
                operation,
                f"{name}={asked} with {total} items must answer a page of {expected}, got "
                f"{len(items) if isinstance(items, list) else items!r}",
                marker.provenance,
            )


def _page_size_server(ctx: ApiContext, api: Api, marker: Marker) -> None:
    """A listing the server pages: with max+1 items, the first page holds at most max and names the next."""
    assert marker.operation is not None
    method, template = marker.operation
    most = int(marker.value["max"])
    operation = f"{method.upper()} {template}"
    org = str((ctx.creds.get("loke") or {}).get("organization_id") or "")
    if not org:
        pytest.skip("loke: no organization to page through; set LCS_LOKE_ORGANIZATION_ID")
    path = template.replace("{organizationId}", org)
    first = api.call(method.upper(), template, path)
    api.expect(first, {200}, "boundary_page_size", operation, marker.provenance)
    existing = len(first.json())
    if ctx.is_mock and existing <= most and first.headers.get("X-Next-Page") is None:
        admin = ctx.require_admin("filling an organization past one page")
        rnd = random.Random(1001)
        start = int(time.time() * 1000) - 10**9
        admin.load_fixtures(
            {
                "loke": {
                    "customers": [
                        {
                            "organization_id": org,
                            "id": _ulid(start + n, rnd),
                            "firstName": "Page",
                            "lastName": f"Size{n}",
                            "email": f"pagesize{n}.{start}@example.com",
                        }
                        for n in range(most + 1 - existing)
                    ]
                }
            }
        )
        first = api.call(method.upper(), template, path)
        api.expect(first, {200}, "boundary_page_size", operation, marker.provenance)
    page = first.json()
    link = first.headers.get("X-Next-Page")
    if len(page) > most:
        raise api.violation(
            "boundary_page_size", operation, f"a page holds {len(page)} items (at most {most})", marker.provenance
        )
    if ctx.is_mock and link is None:
        raise api.violation(
            "boundary_page_size",
            operation,
            f"with {most + 1} or more items the first page ({len(page)}) has no X-Next-Page",
            marker.provenance,
        )
    if link is not None and ctx.is_mock:
        second = api.call(method.upper(), template, url=link)
        api.expect(second, {200}, "boundary_page_size", operation, marker.provenance)
        if len(page) + len(second.json()) < most + 1 and second.headers.get("X-Next-Page") is None:
            raise api.violation(
                "boundary_page_size",
                operation,
                f"two pages hold {len(page) + len(second.json())} of at least {most + 1} items and no third follows",
                marker.provenance,
            )


def _ulid(milliseconds: int, rnd: random.Random) -> str:
    crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = (milliseconds << 80) | rnd.getrandbits(80)
    return "".join(crockford[(value >> shift) & 31] for shift in range(125, -1, -5))


@pytest.mark.parametrize("slug", _params("page", _with_markers("x-page-size")))
def test_page_sizes(slug: str, lcs_context: ApiContext, lcs_recorder: Recorder) -> None:
    api = Api(lcs_context, lcs_recorder)
    findings = Findings(api)
    for marker in boundaries.markers(slug, "x-page-size"):
        check = _page_size_parameter if "parameter" in marker.value else _page_size_server
        findings.run(check, lcs_context, api, marker)
    findings.fail_if_any()


# -- rate limits and quotas -------------------------------------------------------------------------------
def _cheap_request(ctx: ApiContext, api: Api) -> Callable[[], requests.Response]:
    if ctx.slug == "capillary":
        return lambda: api.call(
            "GET",
            CAP_LOOKUP,
            params={"source": "INSTORE", "identifierName": "externalId", "identifierValue": "lcs-rate-limit"},
        )
    return lambda: api.call("GET", CT_CUSTOMERS, params={"limit": 1})


def _fresh_window(admin: Any, marker: Marker) -> None:
    """Move the mock's clock to where the limit counts from zero again: past a rate limit's
    window, or to the first instant of next month for a monthly quota ("reset on the 1st")."""
    window = marker.duration()
    if window is None:
        return
    if window.fixed:
        admin.advance(window.seconds + 1)
        return
    clock = admin.clock()
    now = datetime.fromisoformat(str(clock["now"]).replace("Z", "+00:00"))
    months = now.year * 12 + now.month - 1 + window.months
    start = datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
    admin.set_clock(_iso(start), frozen=bool(clock.get("frozen", False)))


def _probe_limit(ctx: ApiContext, api: Api, marker: Marker) -> None:
    kind = "quota" if marker.keyword == "x-quota" else "rate limit"
    documented = int(marker.value["requests"])
    per = str(marker.value["per"])
    if not ctx.is_mock:
        pytest.skip(
            f"{ctx.slug}: the {kind} of {documented:,} requests per {per} is not probed on {ctx.label}: "
            f"reaching it would lock the account's credentials out for other users"
        )
    if ctx.in_process and ctx.slug == "capillary":
        pytest.skip(
            f"{ctx.slug}: the {kind} of {documented} requests per {per} is not probed: the in-process mock "
            "runs with it off (contracts/plugin.py, capillary_rpm=0); start `loyalty-mock serve` and use --target"
        )
    admin = ctx.require_clock(f"probing the {kind}")
    operation = f"GET {CAP_LOOKUP if ctx.slug == 'capillary' else CT_CUSTOMERS}"
    send = _cheap_request(ctx, api)
    limit = documented
    header = marker.value.get("limit-header")
    if header:  # the target says which limit it enforces (a mock may run with its own, or none)
        enforced = send().headers.get(str(header))
        limit = int(enforced) if enforced is not None and enforced.isdigit() else documented
    if limit == 0:
        pytest.skip(
            f"{ctx.slug}: the {kind} of {documented:,} requests per {per} is not probed: {ctx.label} enforces "
            f"none ({header}: 0; the in-process mock runs with it off, contracts/plugin.py)"
        )
    if limit > CHEAP_REQUESTS:
        pytest.skip(
            f"{ctx.slug}: the {kind} of {limit:,} requests per {per} is not probed: more than {CHEAP_REQUESTS} requests"
        )
    _fresh_window(admin, marker)
    sent, refused_at = 0, None
    try:
        # up to twice the limit: a target that refuses none of them enforces no limit at all
        while sent < 2 * limit and refused_at is None:
            response = send()
            sent += 1
            count = response.headers.get(str(marker.value.get("count-header")))
            if sent == 1 and count is not None and count != "1":
                raise api.violation(
                    "boundary_quota_reset",
                    operation,
                    f"the first request of a new period reports {marker.value.get('count-header')}: {count} "
                    "(expected 1)",
                    marker.provenance,
                )
            if str(response.status_code) == marker.refused:
                refused_at = sent
    finally:
        _fresh_window(admin, marker)  # so that nobody else is refused
    if refused_at is None:
        pytest.skip(f"{ctx.slug}: {ctx.label} refused none of {sent} requests: it enforces no {kind}")
    if refused_at != limit + 1:
        raise api.violation(
            "boundary_rate_limit",
            operation,
            f"request {refused_at} was the first refused: {limit} requests per {per} must be accepted "
            f"and request {limit + 1} refused with {marker.refused}",
            marker.provenance,
        )


@pytest.mark.parametrize("slug", _params("rate", _with_markers("x-rate-limit", "x-quota")))
def test_rate_limits_and_quotas(slug: str, lcs_context: ApiContext, lcs_recorder: Recorder) -> None:
    api = Api(lcs_context, lcs_recorder)
    findings = Findings(api)
    for marker in [*boundaries.markers(slug, "x-rate-limit"), *boundaries.markers(slug, "x-quota")]:
        findings.run(_probe_limit, lcs_context, api, marker)
    findings.fail_if_any()
