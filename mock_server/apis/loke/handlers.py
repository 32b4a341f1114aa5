"""HTTP <-> domain for LOKE: each handler reads a validated `ApiRequest`, calls the store and the
pure modules, and answers an `ApiResponse`. Every read-check-write is synchronous; the webhook
POSTs an operation causes run afterwards, in the background (`outbound.py`)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from mock_server.apis.base import ApiRequest, ApiResponse, Services
from mock_server.apis.loke import events, views
from mock_server.apis.loke.delivery import Attempt, FaultModes
from mock_server.apis.loke.events import EventSummary
from mock_server.apis.loke.outbound import Outbound
from mock_server.apis.loke.paging import (
    PAGE_SIZE,
    CursorError,
    SortedIndex,
    decode_cursor,
    encode_cursor,
    next_page_url,
)
from mock_server.apis.loke.store import LokeStore, OrgState
from mock_server.clock import isoformat
from mock_server.errors import FieldError, Unauthorized, ValidationFailed

TOKEN_TTL_SECONDS = 3600
K = TypeVar("K", str, int)


# -- token endpoint (RFC 6749; errors in its own envelope, x-error-envelope: rfc6749) ---------------
def _basic_client(header: str) -> tuple[str, str] | None:
    """client_secret_basic: `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1)."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII (e.g. "Basic ü"), or not UTF-8
        return None
    user, sep, password = decoded.partition(":")
    return (unquote_plus(user), unquote_plus(password)) if sep else None


def get_token(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    body: dict[str, Any] = dict(request.body or {})
    header = request.headers.get("Authorization", "")
    basic_attempted = header[:6].lower() == "basic "
    challenge = {"WWW-Authenticate": 'Basic realm="auth.loke.global"'} if basic_attempted else {}
    if basic_attempted:
        basic = _basic_client(header)
        if basic is None:
            raise Unauthorized(
                "The Authorization header is not valid HTTP Basic: expected Basic base64(client_id:client_secret)",
                kind="invalid_client",
                headers=challenge,
            )
        if "client_secret" in body:
            raise ValidationFailed(
                "Use one client authentication method: HTTP Basic or client_secret in the body, not both",
                [FieldError("client_secret", "must be absent when HTTP Basic is used")],
                kind="invalid_request",
            )
        if "client_id" in body and body["client_id"] != basic[0]:
            raise ValidationFailed(
                "client_id in the body does not match the HTTP Basic user name",
                [FieldError("client_id", "expected the same client id as the Basic user name")],
                kind="invalid_request",
            )
        client_id, client_secret = basic
    else:
        client_id, client_secret = str(body.get("client_id") or ""), str(body.get("client_secret") or "")
        if not client_id or not client_secret:
            raise Unauthorized(
                "No client authentication: send client_id and client_secret in the body, or HTTP Basic",
                kind="invalid_client",
            )
    if not store.client_matches(client_id, client_secret):
        raise Unauthorized("Client authentication failed: unknown client or wrong secret", kind="invalid_client",
                           headers=challenge)
    grant = body.get("grant_type")
    if grant != "client_credentials":
        raise ValidationFailed(
            "Unsupported grant type",
            [FieldError("grant_type", f"{grant!r} is not supported; expected client_credentials")],
            kind="unsupported_grant_type",
        )
    token = store.issue_token(services.clock.now() + timedelta(seconds=TOKEN_TTL_SECONDS))
    return ApiResponse(
        200,
        {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECONDS},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


# -- OpenID Connect discovery (the issuer is `<this API's base URL>/auth`) ----------------------------
def issuer_of(request: ApiRequest) -> str:
    """The issuer as this client reached it: scheme, host and mount prefix of the request, so the
    document points back at the mock behind any port, with TLS, under `/loke`, at the root and
    inside a tenant."""
    return request.base_url + "/auth"


def openid_configuration(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    issuer = issuer_of(request)
    return ApiResponse(
        200,
        {
            "issuer": issuer,
            "token_endpoint": issuer + "/token",
            "jwks_uri": issuer + "/jwks",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


def jwks(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    """The mock's access tokens are opaque and it issues no ID tokens: nothing to verify."""
    return ApiResponse(200, {"keys": []}, headers={"Cache-Control": "public, max-age=300"})


# -- helpers ---------------------------------------------------------------------------------------
def _org(store: LokeStore, request: ApiRequest) -> OrgState:
    return store.reachable_org(str(request.path_params["organizationId"]))


def _cursor(request: ApiRequest, scope: str, kind: type[K]) -> K | None:
    token = request.query.get("after")
    if token is None:
        return None
    try:
        return decode_cursor(str(token), scope, kind)
    except CursorError as exc:
        raise ValidationFailed("Request parameters are invalid", [FieldError("query.after", str(exc))]) from None


def _page(
    request: ApiRequest,
    segments: list[str],
    scope: str,
    index: SortedIndex[K],
    kind: type[K],
    render: Callable[[str], Any],
    keep: Callable[[str], bool] | None = None,
) -> ApiResponse:
    after = _cursor(request, scope, kind)
    if keep is None:
        ids, next_key = index.page(after, PAGE_SIZE)
    else:
        ids, next_key = index.page_where(after, PAGE_SIZE, keep)
    headers = {}
    if next_key is not None:
        headers["X-Next-Page"] = next_page_url(
            request.base_url, segments, request.query, encode_cursor(scope, next_key)
        )
    return ApiResponse(200, [render(item_id) for item_id in ids], headers=headers)


def outbound_for(services: Services, store: LokeStore) -> Outbound:
    """The store's delivery machinery, attached on first use (a store restored from
    `--state-file` arrives without it)."""
    if store.outbound is None:
        store.outbound = Outbound(services, store)
    outbound: Outbound = store.outbound
    return outbound


def emit(
    services: Services, store: LokeStore, state: OrgState, emitted: list[events.Emitted]
) -> tuple[list[EventSummary], int]:
    """Fan the payloads out to the organization's subscriptions and start delivering."""
    summaries, deliveries = events.fan_out(store, state, emitted)
    return summaries, outbound_for(services, store).dispatch(deliveries)


# -- organizations and their locations -------------------------------------------------------------
def list_organizations(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    """The organizations that installed the add-on (the ones the client token reaches)."""
    return _page(
        request,
        ["organizations"],
        "organizations",
        store.org_index,
        str,
        lambda org_id: views.organization(store.orgs[org_id]),
        lambda org_id: store.orgs[org_id].org.installed,
    )


def get_organization(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    return ApiResponse(200, views.organization(_org(store, request)))


def list_locations(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    return _page(
        request,
        ["organizations", state.id, "locations"],
        f"locations:{state.id}",
        state.locations_index,
        str,
        lambda location_id: views.location(state.locations[location_id]),
    )


def get_location(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    return ApiResponse(200, views.location(state.location(str(request.path_params["locationId"]))))


# -- customers -------------------------------------------------------------------------------------
def list_customers(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    email, phone = request.query.get("email"), request.query.get("phoneNumber")
    segments = ["organizations", state.id, "customers"]

    def render(customer_id: str) -> Any:
        return views.customer(state.customers[customer_id])

    matches = None if email is None and phone is None else _contact_matches(state, email, phone)
    if str(request.query.get("sort") or "created") == "created":
        by_created = state.by_created
        if matches is not None:  # the exact filters match at most one customer: no scan
            by_created = SortedIndex()
            for customer_id in matches:
                by_created.add(customer_id, customer_id)
        return _page(request, segments, f"customers:{state.id}:created", by_created, str, render)
    by_updated = state.by_updated
    if matches is not None:
        by_updated = SortedIndex()
        for customer_id in matches:
            by_updated.add(state.customers[customer_id].update_seq, customer_id)
    return _page(request, segments, f"customers:{state.id}:updated", by_updated, int, render)


def _contact_matches(state: OrgState, email: Any, phone: Any) -> set[str]:
    """Exact e-mail (case-insensitive) and phone filters, both when both are given."""
    wanted: set[str] | None = None
    if email is not None:
        found = state.find_by_email(str(email))
        wanted = {found.id} if found else set()
    if phone is not None:
        found = state.find_by_phone(str(phone))
        by_phone = {found.id} if found else set()
        wanted = by_phone if wanted is None else wanted & by_phone
    return wanted or set()


def get_customer(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    return ApiResponse(200, views.customer(state.customer(str(request.path_params["customerId"]))))


# -- points ----------------------------------------------------------------------------------------
def adjust_points(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    body: dict[str, Any] = request.body
    customer = state.adjust_points(
        str(request.path_params["customerId"]),
        str(request.path_params["reference"]),
        int(body["amount"]),
        body.get("notes"),
        services.clock.now(),
    )
    emit(services, store, state, [events.statistics_payload(state, customer)])
    return ApiResponse(204)


def reverse_points(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    customer = state.reverse_points(
        str(request.path_params["customerId"]), str(request.path_params["reference"]), services.clock.now()
    )
    emit(services, store, state, [events.statistics_payload(state, customer)])
    return ApiResponse(204)


# -- webhook subscriptions -------------------------------------------------------------------------
def list_webhooks(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    return ApiResponse(200, [views.webhook(s) for s in state.subscriptions.values()])


def upsert_webhook(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    body: dict[str, Any] = request.body
    sub = state.upsert_subscription(
        str(request.path_params["webhookRef"]),
        str(body["url"]),
        [str(e) for e in body["events"]],
        str(body["secret"]),
        services.clock.now(),
    )
    return ApiResponse(200, views.webhook(sub))


def delete_webhook(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    sub = state.delete_subscription(str(request.path_params["webhookRef"]))
    outbound_for(services, store).subscription_deleted(sub)
    return ApiResponse(204)


# -- payments --------------------------------------------------------------------------------------
def list_payments(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    sort = str(request.query.get("sort") or "created")
    index = state.payments_by_created if sort == "created" else state.payments_by_updated
    location = request.query.get("locationId")
    keep = None if location is None else (lambda pid: state.payments[pid].location_id == location)
    return _page(
        request,
        ["organizations", state.id, "payments"],
        f"payments:{state.id}:{sort}",
        index,
        int,
        lambda pid: views.payment(state.payments[pid], state),
        keep,
    )


# -- customer lists --------------------------------------------------------------------------------
def list_customer_lists(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    return _page(
        request,
        ["organizations", state.id, "customer-lists"],
        f"lists:{state.id}",
        state.lists_index,
        str,
        lambda lid: views.customer_list(state.lists[lid]),
    )


def create_customer_list(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    created = state.create_list(str(request.body["name"]), services.clock.now())
    return ApiResponse(201, views.customer_list(created))


def get_customer_list(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    return ApiResponse(200, views.customer_list(state.customer_list(str(request.path_params["listId"]))))


def list_customer_list_members(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    target = state.customer_list(str(request.path_params["listId"]))
    return _page(
        request,
        ["organizations", state.id, "customer-lists", target.id, "members"],
        f"members:{state.id}:{target.id}",
        target.index,
        int,
        lambda cid: views.member(target.members[cid], state.customers[cid]),
    )


def add_customer_list_member(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    state.add_member(str(request.path_params["listId"]), str(request.path_params["customerId"]), services.clock.now())
    return ApiResponse(204)


def remove_customer_list_member(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = _org(store, request)
    state.remove_member(str(request.path_params["listId"]), str(request.path_params["customerId"]))
    return ApiResponse(204)


# -- admin -----------------------------------------------------------------------------------------
def admin_emit_event(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    body: dict[str, Any] = request.body
    organization_id = body.get("organization_id") or store.installed[0].id
    state = store.org(str(organization_id))
    outcome = events.apply(state, body, services.clock.now())
    summaries, sent = emit(services, store, state, outcome.emitted)
    answer = {
        "event": body["event"],
        "organization_id": state.id,
        "events": [s.as_dict() for s in summaries],
        "deliveries": sent,
        **outcome.data,
    }
    return ApiResponse(202, answer)


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    d = attempt.delivery
    return {
        "id": attempt.id,
        "delivery_id": d.id,
        "event_id": d.event_id,
        "event": d.event,
        "organization_id": d.organization_id,
        "webhook_id": d.webhook_id,
        "webhook_ref": d.webhook_ref,
        "url": d.url,
        "attempt": attempt.attempt,
        "copy": d.copy,
        "time": isoformat(attempt.time),
        "status": attempt.status,
        "outcome": attempt.outcome,
        "error": attempt.error,
        "retry_at": isoformat(attempt.retry_at) if attempt.retry_at is not None else None,
        "signature": d.signature,
        "delayed_seconds": d.delayed_seconds,
        "reordered": d.reordered,
        "duration_ms": attempt.duration_ms,
        "payload": json.loads(d.body),
    }


def admin_list_deliveries(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    filters = {
        name: request.query[name]
        for name in ("organization_id", "webhook_ref", "event", "event_id")
        if request.query.get(name) is not None
    }
    found = []
    for attempt in store.attempts:
        d = attempt.delivery
        values = {"organization_id": d.organization_id, "webhook_ref": d.webhook_ref, "event": d.event,
                  "event_id": d.event_id}
        if all(values[k] == v for k, v in filters.items()):
            found.append(attempt_view(attempt))
    return ApiResponse(200, found)


def admin_clear_deliveries(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    store.clear_attempts()
    return ApiResponse(204)


def _faults_view(services: Services, store: LokeStore, state: OrgState, ref: str) -> dict[str, Any]:
    sub = state.subscription(ref)
    held = outbound_for(services, store).held_for(sub.id)
    return {
        "organization_id": state.id,
        "webhook_ref": sub.ref,
        "webhook_id": sub.id,
        "faults": sub.faults.as_dict(),
        "held": held,
    }


def admin_get_faults(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = store.org(str(request.path_params["organizationId"]))
    return ApiResponse(200, _faults_view(services, store, state, str(request.path_params["webhookRef"])))


def admin_set_faults(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = store.org(str(request.path_params["organizationId"]))
    body: dict[str, Any] = request.body
    window = int(body.get("reorder_window", 0))
    if window == 1:
        raise ValidationFailed(
            "The fault modes are invalid",
            [FieldError("reorder_window", "1 cannot reorder anything; expected 0 (off) or 2 or more")],
        )
    faults = FaultModes(
        delay_seconds=float(body.get("delay_seconds", 0)),
        duplicates=int(body.get("duplicates", 0)),
        reorder_window=window,
        reorder_max_hold_seconds=float(body.get("reorder_max_hold_seconds", 60)),
    )
    sub = state.set_faults(str(request.path_params["webhookRef"]), faults)
    outbound_for(services, store).subscription_changed(sub)
    return ApiResponse(200, _faults_view(services, store, state, sub.ref))


def admin_clear_faults(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    state = store.org(str(request.path_params["organizationId"]))
    sub = state.set_faults(str(request.path_params["webhookRef"]), FaultModes())
    outbound_for(services, store).subscription_changed(sub)
    return ApiResponse(204)
