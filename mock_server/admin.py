"""The admin API (`/__admin`): described by `openapi/admin.yaml` and served through the same
pipeline as the vendor APIs, so its requests are validated too. Never journaled."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mock_server import lifecycle, secrets
from mock_server.apis.base import ApiDefinition, ApiRequest, ApiResponse, Handler, Services
from mock_server.clock import isoformat
from mock_server.errors import NotFound, Unauthorized, ValidationFailed
from mock_server.spec import specs_dir

SPEC_NAMES = ("letstrade-pos", "letstrade-pos-provider", "letstrade-channels", "customtrades", "capillary", "loke")


def _health(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    return ApiResponse(200, {"status": "ok", "apis": [rt.slug for rt in lifecycle.vendor_runtimes(services)]})


def _reset(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    lifecycle.reset_all(services)
    return ApiResponse(200, {"status": "reset"})


def _credentials(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    return ApiResponse(200, lifecycle.collect_credentials(services))


def _clock_body(services: Services) -> dict[str, Any]:
    return {"now": isoformat(services.clock.now()), "frozen": services.clock.frozen}


def _get_clock(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    return ApiResponse(200, _clock_body(services))


def _set_clock(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    body: dict[str, Any] = request.body
    clock = services.clock
    if "frozen" in body:
        clock.freeze(bool(body["frozen"]))
    if "set" in body:
        try:
            clock.set(datetime.fromisoformat(str(body["set"]).replace("Z", "+00:00")))
        except ValueError as exc:
            raise ValidationFailed(f"set: {exc}") from None
    if "advance" in body:
        clock.advance(float(body["advance"]))
    return ApiResponse(200, _clock_body(services))


def _list_requests(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    since_raw = request.query.get("since")
    since: int | datetime | None = None
    if since_raw is not None:
        since = int(since_raw) if since_raw.isdigit() else datetime.fromisoformat(since_raw.replace("Z", "+00:00"))
    entries = services.journal.entries(
        api=request.query.get("api"), operation_id=request.query.get("operation_id"), since=since
    )
    return ApiResponse(200, [entry.as_dict() for entry in entries])


def _clear_requests(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    services.journal.clear()
    return ApiResponse(204)


def _list_faults(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    return ApiResponse(200, [fault.as_dict() for fault in services.faults.list()])


def _add_fault(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    body: dict[str, Any] = dict(request.body)
    if body["api"] not in services.runtimes:
        raise ValidationFailed(f"api: {body['api']} is not mounted in this mock")
    op_id = body.get("operation_id")
    if op_id is not None and op_id not in services.runtimes[body["api"]].spec.by_id():
        known = ", ".join(sorted(services.runtimes[body["api"]].spec.by_id()))
        raise ValidationFailed(f"operation_id: {op_id} is not an operation of {body['api']}; expected one of {known}")
    fault = services.faults.add(**body)
    return ApiResponse(201, {"id": fault.id})


def _clear_faults(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    services.faults.clear()
    return ApiResponse(204)


def _load_fixtures(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    return ApiResponse(200, {"loaded": lifecycle.load_fixtures(services, request.body)})


def _spec_name(services: Services, name: str) -> str:
    allowed = {*SPEC_NAMES, "admin"} & ({*services.runtimes, "admin", "letstrade-pos-provider"})
    if name not in allowed:
        raise NotFound(f"no spec named {name!r}; available: {', '.join(sorted(allowed))}")
    return name


def _get_spec(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    name = _spec_name(services, str(request.path_params["name"]))
    text = (specs_dir(services.settings.specs_dir) / f"{name}.yaml").read_text(encoding="utf-8")
    return ApiResponse(200, text, media_type="application/yaml")


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — loyalty-mock</title>
<link rel="stylesheet" href="../docs-static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="../docs-static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({{url: "../specs/{name}", dom_id: "#swagger-ui",
  servers: [{{url: "{base}"}}]}});</script>
</body></html>
"""


def _get_docs(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    name = _spec_name(services, str(request.path_params["slug"]))
    base = request.base_url.rsplit("/__admin", 1)[0] + ("" if name == "admin" else f"/{name}")
    page = _DOCS_PAGE.format(title=html.escape(name), name=html.escape(name), base=html.escape(base))
    return ApiResponse(200, page, media_type="text/html")


def _contributed(slug: str, handler: Handler) -> Handler:
    def call(services: Services, store: None, request: ApiRequest) -> Any:
        return handler(services, services.runtimes[slug].store, request)

    return call


def _not_mounted(slug: str) -> Handler:
    def call(services: Services, store: None, request: ApiRequest) -> ApiResponse:
        raise NotFound(f"the {slug} API is not mounted in this mock (start it with --api {slug})")

    return call


class AdminApi(ApiDefinition[None]):
    slug = "__admin"
    spec_name = "admin"
    envelope = "problem"
    error_media_type = "application/problem+json"
    journaled = False
    example_mode_applies = False
    handlers: dict[str, Handler] = {
        "health": _health,
        "reset": _reset,
        "getCredentials": _credentials,
        "getClock": _get_clock,
        "setClock": _set_clock,
        "listRequests": _list_requests,
        "clearRequests": _clear_requests,
        "listFaults": _list_faults,
        "addFault": _add_fault,
        "clearFaults": _clear_faults,
        "loadFixtures": _load_fixtures,
        "getSpec": _get_spec,
        "getDocs": _get_docs,
    }

    def __init__(self, definitions: dict[str, ApiDefinition[Any]] | None = None, mounted: tuple[str, ...] = ()) -> None:
        handlers = dict(type(self).handlers)
        for slug, definition in (definitions or {}).items():
            for operation_id, handler in definition.admin_handlers.items():
                handlers[operation_id] = _contributed(slug, handler) if slug in mounted else _not_mounted(slug)
        self.handlers = handlers

    def create_store(self, services: Services) -> None:
        return None

    def guard(self, services: Services, headers: Mapping[str, str]) -> None:
        """With `--admin-token`, every admin call needs it (a sandbox shared by several vendors)."""
        token = services.settings.admin_token
        if token is None:
            return
        sent = headers.get("X-Admin-Token")
        if sent is None:
            scheme, _, value = headers.get("Authorization", "").partition(" ")
            sent = value.strip() if scheme.lower() == "bearer" else None
        if not secrets.same(sent, token):
            raise Unauthorized("This mock's admin API needs its token: send X-Admin-Token: <token>")
