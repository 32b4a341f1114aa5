"""HTTP <-> domain for Capillary: each handler reads the validated `ApiRequest`, calls the pure
registration rules and the store, and shapes the documented answer. No aiohttp here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mock_server import envelopes, secrets
from mock_server.apis.base import ApiRequest, ApiResponse, Handler, Services
from mock_server.apis.capillary import registration as reg
from mock_server.apis.capillary.store import USER_CONTEXT_HEADERS, CapillaryStore
from mock_server.errors import NotFound, Unauthorized


def actor(principal: Any) -> str:
    """Who is calling, for the audit trail: `till:<username>` or `oauth:<key>` (never a secret)."""
    return str(principal) if principal is not None else "anonymous"


def user_context(headers: Mapping[str, str]) -> dict[str, str]:
    """The USER-CONTEXT-* headers the request carried, in Capillary's audit field names."""
    found: dict[str, str] = {}
    for header, name in USER_CONTEXT_HEADERS.items():
        value = headers.get(header)
        if value is not None:
            found[name] = value
    return found


def generate_token(services: Services, store: CapillaryStore, request: ApiRequest) -> ApiResponse:
    body = request.body if isinstance(request.body, Mapping) else {}
    key_ok = secrets.same(str(body.get("key", "")), store.oauth_key)
    secret_ok = secrets.same(str(body.get("secret", "")), store.oauth_secret)
    if not (key_ok and secret_ok):
        refused = Unauthorized("Invalid key or secret")
        return ApiResponse(401, {"data": None, **envelopes.capillary(refused)})
    token, ttl = store.issue_token(services.clock.now())
    return ApiResponse(200, {"data": {"accessToken": token, "ttlSeconds": ttl}, "errors": None})


def register_customer(services: Services, store: CapillaryStore, request: ApiRequest) -> ApiResponse:
    registration = reg.parse_registration(
        request.body, store.config, source=request.query.get("source"), account_id=request.query.get("accountId")
    )
    outcome = store.register(
        registration, services.clock.now(), actor(request.principal), user_context(request.headers)
    )
    return ApiResponse(
        200, {"createdId": outcome.customer_id, "warnings": outcome.warnings, "sideEffects": outcome.side_effects}
    )


def lookup_customer(services: Services, store: CapillaryStore, request: ApiRequest) -> ApiResponse:
    query = request.query
    source = None if query["source"] == "ALL" else str(query["source"])
    customer = store.lookup(source, str(query["identifierName"]), str(query["identifierValue"]))
    return ApiResponse(200, customer.details(source))


def fetch_customer_id(services: Services, store: CapillaryStore, request: ApiRequest) -> ApiResponse:
    """`GET /v2/customers/lookup`: only the ID of the customer `lookupCustomer` would find."""
    query = request.query
    source = None if query["source"] == "ALL" else str(query["source"])
    customer = store.lookup(source, str(query["identifierName"]), str(query["identifierValue"]))
    return ApiResponse(200, {"entity": customer.id, "warnings": []})


def update_customer(services: Services, store: CapillaryStore, request: ApiRequest) -> ApiResponse:
    update = reg.parse_update(request.body if isinstance(request.body, Mapping) else None, store.config)
    customer = store.update(
        int(request.path_params["userId"]),
        str(request.query["source"]),
        update,
        services.clock.now(),
        actor(request.principal),
        user_context(request.headers),
    )
    return ApiResponse(200, {"createdId": customer.id, "warnings": [], "sideEffects": []})


def list_extended_fields(services: Services, store: CapillaryStore, request: ApiRequest) -> ApiResponse:
    fields = [definition.as_json() for definition in store.config.extended_fields]
    return ApiResponse(200, {"data": fields, "warnings": [], "errors": []})


def admin_get_customer(services: Services, store: CapillaryStore, request: ApiRequest) -> ApiResponse:
    customer_id = int(request.path_params["customerId"])
    customer = store.customer(customer_id)
    if customer is None:
        raise NotFound(f"no Capillary customer {customer_id}")
    return ApiResponse(200, customer.record())


HANDLERS: dict[str, Handler] = {
    "generateOauthToken": generate_token,
    "registerCustomer": register_customer,
    "lookupCustomer": lookup_customer,
    "fetchCustomerId": fetch_customer_id,
    "updateCustomer": update_customer,
    "listExtendedFields": list_extended_fields,
}

ADMIN_HANDLERS: dict[str, Handler] = {"getCapillaryCustomer": admin_get_customer}
