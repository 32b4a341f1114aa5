"""Each vendor's error envelope (a fixed interface, see README), as pure functions of a `MockError`."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from mock_server.errors import MockError

Envelope = Callable[[MockError], Any]


def _detail(error: MockError) -> str:
    if not error.fields:
        return error.message
    listed = "; ".join(f"{f.field}: {f.message}" for f in error.fields[:10])
    more = f" (and {len(error.fields) - 10} more)" if len(error.fields) > 10 else ""
    return f"{error.message}: {listed}{more}"


def letstrade(error: MockError) -> dict[str, Any]:
    return {
        "success": False,
        "message": _detail(error),
        "errors": [{"field": f.field, "message": f.message} for f in error.fields],
    }


def customtrades(error: MockError) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "error": _detail(error)}
    if error.fields:
        body["details"] = [{"field": f.field, "message": f.message} for f in error.fields]
    return body


def capillary(error: MockError) -> dict[str, Any]:
    default_code = error.code if error.code is not None else 1000 + error.status
    items = [
        {
            "status": False,
            "code": f.code if f.code is not None else default_code,
            "message": f"{f.field}: {f.message}",
        }
        for f in error.fields
    ]
    if not items:
        items = [{"status": False, "code": default_code, "message": error.message}]
    return {"errors": items}


def loke(error: MockError) -> dict[str, Any]:
    return {"message": _detail(error), "type": error.kind}


def problem(error: MockError) -> dict[str, Any]:
    try:
        title = HTTPStatus(error.status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": f"about:blank#{error.kind}",
        "title": title,
        "status": error.status,
        "detail": _detail(error),
    }
    if error.fields:
        body["errors"] = [f.as_dict() for f in error.fields]
    return body


_OAUTH_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
}


def rfc6749(error: MockError) -> dict[str, Any]:
    """OAuth 2.0 token endpoint errors (RFC 6749 section 5.2)."""
    if error.kind in _OAUTH_ERRORS:
        kind = error.kind
    else:
        kind = "invalid_client" if error.status == 401 else "invalid_request"
    return {"error": kind, "error_description": _detail(error)}


ENVELOPES: dict[str, Envelope] = {
    "rfc6749": rfc6749,
    "letstrade": letstrade,
    "customtrades": customtrades,
    "capillary": capillary,
    "loke": loke,
    "problem": problem,
}
