"""HTTP <-> domain for the Let'sTrade POS API and its admin calls. Handlers receive validated
requests and never see aiohttp; the one outgoing call is in `outbound.py`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from mock_server.apis.base import ApiRequest, ApiResponse, Services
from mock_server.apis.letstrade import api as letstrade
from mock_server.apis.letstrade_pos import flows, outbound
from mock_server.apis.letstrade_pos.store import ORDER_STATUSES, PosStore
from mock_server.clock import isoformat
from mock_server.errors import (
    Conflict,
    FieldError,
    NotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationFailed,
)
from mock_server.journal import redact, redact_headers

PROVIDER_API = "letstrade-pos-provider"


def _ok(message: str, content: Any) -> ApiResponse:
    return ApiResponse(200, {"success": True, "message": message, "content": content})


# -- the vendor API ------------------------------------------------------------------------------------
def sign_in(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    return letstrade.sign_in(store.identity, request)


def get_offerings(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    content = flows.get_offerings(store, services.clock.now(), request.body)
    return _ok("Offerings retrieved successfully.", content)


def finalise_offerings(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    content = flows.finalise(store, services.clock.now(), request.body)
    return _ok("Order finalised successfully.", content)


def refund(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    content = flows.refund(store, services.clock.now(), request.body)
    message = "Basket voided successfully." if content["voided"] else "Codes refunded successfully."
    return _ok(message, content)


# -- admin ---------------------------------------------------------------------------------------------
def mint_code(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    code = flows.mint_code(store, services.clock.now(), request.body)
    return ApiResponse(
        201, {"code": code.code, "type": code.type, "user_id": code.user_id, "expires_at": isoformat(code.expires_at)}
    )


def get_code(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    value = str(request.path_params["code"])
    code = store.codes.get(value)
    if code is None:
        raise NotFound(f"No code {value} was minted", [FieldError("code", "unknown code")])
    return ApiResponse(200, store.code_view(code, services.clock.now()))


def get_user(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    user_id = str(request.path_params["user_id"])
    customer = store.customer(user_id)
    if customer is None:
        raise NotFound(f"No Let'sTrade customer has id {user_id}", [FieldError("user_id", "unknown customer id")])
    return ApiResponse(200, store.user_view(customer, services.clock.now()))


def list_orders(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    query = request.query
    status = query.get("status")
    if status is not None and status not in ORDER_STATUSES:  # the spec's enum checks it too
        raise ValidationFailed(f"status must be one of {', '.join(ORDER_STATUSES)}")
    filters = {k: query[k] for k in ("user_id", "store_id", "terminal_id", "transaction_id", "status") if k in query}
    found = [
        order.view()
        for order in store.orders.values()
        if all(str(getattr(order, k)) == str(v) for k, v in filters.items())
    ]
    return ApiResponse(200, found)


def get_order(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    order_id = str(request.path_params["order_id"])
    order = store.orders.get(order_id)
    if order is None:
        raise NotFound(f"No order {order_id}", [FieldError("order_id", "unknown order id")])
    return ApiResponse(200, order.view())


def _reply_violations(store: PosStore, sent: dict[str, Any], reply: outbound.PosReply) -> list[dict[str, Any]]:
    spec = store.provider()
    operation = spec.by_id()["appendVouchers"]
    violations: list[dict[str, Any]] = []
    request_schema = operation.body_media.get("application/json")
    if request_schema is not None:  # our own request: a mismatch is a mock bug, recorded all the same
        violations.extend(
            {"kind": "request_schema", "field": e.field, "message": e.message} for e in request_schema.errors(sent)
        )
    if reply.status is None:
        violations.append({"kind": "timeout" if reply.timed_out else "unreachable", "message": reply.error})
        return violations
    documented = operation.response_for(reply.status)
    if documented is None:
        listed = ", ".join(sorted(operation.responses))
        violations.append(
            {"kind": "undocumented_status", "message": f"status {reply.status} is not documented (expected {listed})"}
        )
        return violations
    if documented.schema is None:
        return violations
    if not reply.json_body:
        violations.append({"kind": "response_schema", "field": "$", "message": "the answer is not a JSON document"})
        return violations
    for error in documented.schema.errors(reply.body):
        violations.append({"kind": "response_schema", "field": error.field, "message": error.message})
    return violations


async def append_bill_vouchers(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    """Plays the customer's app: the selected vouchers go to the POS's append-vouchers endpoint."""
    url = services.settings.pos_callback_url
    if not url:
        raise Conflict(
            "No POS append-vouchers endpoint is configured: start the mock with --pos-callback-url URL "
            "(Settings.pos_callback_url)"
        )
    params = request.path_params
    selection = flows.prepare_app_vouchers(
        store, services.clock.now(), str(params["store_id"]), str(params["terminal_id"]),
        str(params["transaction_id"]), request.body,
    )
    sent_at = services.clock.now()
    reply = await outbound.append_vouchers(services, url, selection.request)
    violations = _reply_violations(store, selection.request, reply)
    entry = services.journal.record(
        size=2048 + len(str(selection.request)) + len(str(reply.body)),
        time=isoformat(sent_at),
        api=PROVIDER_API,
        operation_id="appendVouchers",
        method="POST",
        path=urlsplit(url).path or "/",
        status=reply.status or 0,
        request={
            "direction": "outbound",
            "url": url,
            "headers": redact_headers(reply.request_headers),
            "query": {},
            "body": redact(selection.request),
        },
        response={"headers": redact_headers(reply.headers), "body": redact(reply.body), "error": reply.error},
        violations=violations,
        source="handler",
        duration_ms=reply.duration_ms,
    )
    if reply.status is None:
        detail = f"{reply.error} ({url}); the bill is unchanged"
        if reply.timed_out:
            raise UpstreamTimeout(detail, [FieldError("pos_callback_url", str(reply.error))])
        raise UpstreamUnavailable(detail, [FieldError("pos_callback_url", str(reply.error))])
    applied, note = False, f"the POS answered {reply.status}; nothing was attached to the bill"
    if 200 <= reply.status < 300:
        applied, note = flows.commit_app_vouchers(store, services.clock.now(), selection)
    order = store.orders[selection.order_id]
    return ApiResponse(
        200,
        {
            "pos_status": reply.status,
            "pos_body": reply.body,
            "valid": not violations,
            "violations": violations,
            "applied": applied,
            "note": note,
            "request": selection.request,
            "journal_id": entry.id,
            "bill": {
                "order_id": order.order_id,
                "status": order.status,
                "app_vouchers": [voucher_id for _, voucher_id in order.app_vouchers],
            },
        },
    )
