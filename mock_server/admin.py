"""The admin API (`/__admin`): described by `openapi/admin.yaml` and served through the same
pipeline as the vendor APIs, so its requests are validated too. Never journaled."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import yaml
from openapi_ui_bundles import swagger_ui

from mock_server import lifecycle, secrets
from mock_server.apis.base import ApiDefinition, ApiRequest, ApiResponse, Handler, Services
from mock_server.clock import isoformat
from mock_server.errors import FieldError, NotFound, Unauthorized, ValidationFailed
from mock_server.spec import HTTP_METHODS, load_document, specs_dir
from mock_server.validation import is_text

if TYPE_CHECKING:
    from mock_server.tenants import TenantRegistry

SPEC_NAMES = ("letstrade-pos", "letstrade-pos-provider", "letstrade-channels", "customtrades", "capillary", "loke")


def _health(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    body: dict[str, Any] = {"status": "ok", "apis": [rt.slug for rt in lifecycle.vendor_runtimes(services)]}
    if services.tenant is not None:
        body["tenant"] = services.tenant.id  # a tenant holds no tenants of its own
        body["tenants"] = False
    else:
        body["tenants"] = services.tenants is not None
    return ApiResponse(200, body)


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


# -- tenants (README, "Hosting a shared sandbox") -------------------------------------------------
def _registry(services: Services) -> TenantRegistry:
    if services.tenant is not None:
        raise NotFound(
            f"tenants are managed at the server's /__admin/tenants, not inside tenant {services.tenant.id}"
        )
    registry: TenantRegistry | None = services.tenants
    if registry is None:
        raise NotFound("this mock serves no tenants (started with --max-tenants 0)")
    return registry


def _root(request: ApiRequest) -> str:
    """The mock's root URL as this client reached it (the admin API's base without `/__admin`)."""
    return request.base_url.removesuffix("/__admin")


def _create_tenant(services: Services, request: ApiRequest, tenant_id: str | None) -> ApiResponse:
    body: dict[str, Any] = request.body or {}
    tenant, token = _registry(services).create(tenant_id, body.get("seed"), body.get("apis"))
    base_url = f"{_root(request)}{tenant.base_path}"
    created = {
        "id": tenant.id,
        "base_url": base_url,
        "admin_token": token,
        "credentials": lifecycle.collect_credentials(tenant.world),
        "seed": tenant.seed,
        "apis": list(tenant.apis),
    }
    return ApiResponse(201, created, {"Location": base_url})


def _post_tenant(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    return _create_tenant(services, request, (request.body or {}).get("id"))


def _put_tenant(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    return _create_tenant(services, request, str(request.path_params["id"]))


def _list_tenants(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    root = _root(request)
    return ApiResponse(200, [tenant.describe(root) for tenant in _registry(services)])


def _delete_tenant(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    tenant_id = str(request.path_params["id"])
    if not _registry(services).delete(tenant_id):
        raise NotFound(f"no tenant named {tenant_id!r}", [FieldError("id", "does not exist")])
    return ApiResponse(204)


def _spec_name(services: Services, name: str) -> str:
    allowed = {*SPEC_NAMES, "admin"} & ({*services.runtimes, "admin", "letstrade-pos-provider"})
    if name not in allowed:
        raise NotFound(f"no spec named {name!r}; available: {', '.join(sorted(allowed))}")
    return name


def _get_spec(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    name = _spec_name(services, str(request.path_params["name"]))
    mock_url = request.query.get("mock_url")
    if mock_url is None:
        text = (specs_dir(services.settings.specs_dir) / f"{name}.yaml").read_text(encoding="utf-8")
        return ApiResponse(200, text, media_type="application/yaml")
    document = _pointed_at_the_mock(services, name, str(mock_url).rstrip("/"))
    text = yaml.dump(document, Dumper=_SpecDumper, sort_keys=False, allow_unicode=True, width=100)
    return ApiResponse(200, text, media_type="application/yaml")


class _SpecDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """YAML as the spec files write it: multi-line descriptions as `|` blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_SpecDumper.add_representer(str, _represent_str)


def _provider_base(services: Services, paths: Mapping[str, Any]) -> str | None:
    """The POS under test's base URL: `--pos-callback-url` without the provider path it names."""
    url = services.settings.pos_callback_url
    if url is None:
        return None
    for path in paths:
        if url.endswith(path):
            return url[: -len(path)]
    return None


def _pointed_at_the_mock(services: Services, name: str, root: str) -> dict[str, Any]:
    """Spec `name` with the mock (reached at `root`) as its first server, at every level that names
    servers, and the mock's own token operation as every OAuth token URL. The cached document is
    copied where it changes, never mutated."""
    document = dict(load_document(name, services.settings.specs_dir))
    paths: dict[str, Any] = document.get("paths") or {}
    credentials = f"[`{root}/__admin/credentials`]({root}/__admin/credentials)"
    if name == "letstrade-pos-provider":
        base = _provider_base(services, paths)
        if base is None:
            note = (
                "**This mock calls your POS here** (`--pos-callback-url`); start the mock with it "
                "to have Try it out call your POS."
            )
        else:
            note = (
                f"**This mock calls your POS at `{base}`** (`--pos-callback-url`): Try it out calls it "
                "too. A browser sends the call only when your POS answers CORS preflight requests."
            )
    elif name == "admin":
        base = f"{root}/__admin"
        note = f"**Served by this mock:** Try it out calls `{base}`, the first server."
    else:
        base = f"{root}/{name}"
        note = (
            f"**Served by this mock:** Try it out calls `{base}`, the first server. "
            f"Credentials for the Authorize button: {credentials}."
        )
    info = dict(document.get("info") or {})
    info["description"] = f"{note}\n\n{info.get('description', '')}"
    document["info"] = info
    if base is None:
        return document
    first = {"url": base, "description": "this mock" if name != "letstrade-pos-provider" else "your POS"}

    def servers(node: Mapping[str, Any]) -> list[Any]:
        return [first, *(s for s in node.get("servers") or [] if not (isinstance(s, dict) and s.get("url") == base))]

    document["servers"] = servers(document)
    rewritten: dict[str, Any] = {}
    for path, item in paths.items():
        if isinstance(item, dict):
            item = {
                key: {**value, "servers": servers(value)}
                if key in HTTP_METHODS and isinstance(value, dict) and "servers" in value
                else value
                for key, value in item.items()
            }
            if "servers" in item:
                item["servers"] = servers(item)
        rewritten[path] = item
    document["paths"] = rewritten
    components = document.get("components") or {}
    schemes = components.get("securitySchemes") or {}
    if any(isinstance(s, dict) and s.get("type") == "oauth2" for s in schemes.values()):
        document["components"] = {
            **components,
            "securitySchemes": {key: _oauth_at_the_mock(scheme, base, paths) for key, scheme in schemes.items()},
        }
    return document


def _oauth_at_the_mock(scheme: Any, base: str, paths: Mapping[str, Any]) -> Any:
    """An OAuth scheme whose token URLs (on the vendor's auth host) name the operation of this spec
    that serves them on the mock: the one path ending with the URL's path (LOKE: `/token` ->
    `/auth/token`). A URL no path matches stays as it is."""
    if not isinstance(scheme, dict) or scheme.get("type") != "oauth2":
        return scheme
    flows: dict[str, Any] = {}
    for flow_name, flow in (scheme.get("flows") or {}).items():
        flow = dict(flow)
        for key in ("tokenUrl", "refreshUrl"):
            url = flow.get(key)
            if isinstance(url, str):
                tail = "/" + url.split("://", 1)[-1].partition("/")[2].split("?", 1)[0]
                matches = [p for p in paths if p.endswith(tail) and "post" in (paths[p] or {})]
                if tail != "/" and len(matches) == 1:
                    flow[key] = base + matches[0]
        flows[flow_name] = flow
    return {**scheme, "flows": flows}


# The page is `<mock root>/__admin/docs/<name>`: its script works out the root as this browser
# reaches it (behind a path prefix or TLS too) and asks for the spec pointed at it. `validatorUrl:
# null` keeps Swagger UI from loading its badge from swagger.io (the page loads nothing from
# another host); `data:,` as the icon keeps the browser from asking the mock for /favicon.ico.
_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — loyalty-mock</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="../docs-static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="../docs-static/swagger-ui-bundle.js"></script>
<script>
const root = new URL("../../", window.location.href).href;
window.ui = SwaggerUIBundle({{
  url: "../specs/" + {name} + "?mock_url=" + encodeURIComponent(root),
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  displayRequestDuration: true,
}});
</script>
</body></html>
"""


def _get_docs(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    name = _spec_name(services, str(request.path_params["slug"]))
    page = _DOCS_PAGE.format(title=html.escape(name), name=json.dumps(name))
    return ApiResponse(200, page, media_type="text/html")


_DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}


def _get_docs_asset(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    name = str(request.path_params["file"])
    media_type = _DOCS_ASSETS.get(name)
    if media_type is None:
        raise NotFound(f"no docs file named {name!r}; available: {', '.join(sorted(_DOCS_ASSETS))}")
    body = (swagger_ui.static_path / name).read_bytes()
    return ApiResponse(200, body, {"Cache-Control": "private, max-age=3600"}, media_type)


def _contributed(slug: str, handler: Handler) -> Handler:
    def call(services: Services, store: None, request: ApiRequest) -> Any:
        runtime = services.runtimes.get(slug)
        if runtime is None:  # a tenant created with fewer APIs than the server's
            raise NotFound(f"the {slug} API is not mounted in this tenant (create it with {slug} in apis)")
        return handler(services, runtime.store, request)

    return call


def _not_mounted(slug: str) -> Handler:
    def call(services: Services, store: None, request: ApiRequest) -> ApiResponse:
        raise NotFound(f"the {slug} API is not mounted in this mock (start it with --api {slug})")

    return call


# With `--admin-token`, a browser cannot add a header to the docs page, its script and style sheet
# or the spec it loads. It does send HTTP Basic credentials, asked for once (a 401 carrying this
# challenge) and then sent with every request to the mock's admin paths, so the token also counts
# as the password of Basic credentials, under any user name.
ADMIN_TOKEN_CHALLENGE = {"WWW-Authenticate": 'Basic realm="loyalty-mock admin", charset="UTF-8"'}


def presented_admin_token(headers: Mapping[str, str]) -> str | None:
    """The admin token a request presents: `X-Admin-Token: <token>`, `Authorization: Bearer
    <token>` or `Authorization: Basic base64(<any user>:<token>)` (a browser); None without one or
    when it is not UTF-8 text."""
    sent = headers.get("X-Admin-Token")
    if sent is None:
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            sent = value.strip()
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return None
            _user, colon, password = decoded.partition(":")
            sent = password if colon else None
    if sent is not None and not is_text(sent):  # a header byte that is not UTF-8: never the token
        return None
    return sent


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
        "getDocsAsset": _get_docs_asset,
        "createTenant": _post_tenant,
        "putTenant": _put_tenant,
        "listTenants": _list_tenants,
        "deleteTenant": _delete_tenant,
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
        """With `--admin-token`, every admin call needs it (a sandbox shared by several vendors).
        A tenant's admin API needs that tenant's own token (or the server's `--admin-token`)."""
        if services.replaying:  # a logged call was admitted when it was made (and tokens may change since)
            return
        token = services.settings.admin_token
        tenant = services.tenant
        if tenant is not None:
            presented = presented_admin_token(headers)
            if not tenant.accepts(presented) and not secrets.same(presented, token):
                raise Unauthorized(
                    f"The admin API of tenant {tenant.id} needs the tenant's admin token (returned when the "
                    "tenant was created): send X-Admin-Token: <token>",
                    headers=ADMIN_TOKEN_CHALLENGE,
                )
            return
        if token is None:
            return
        if not secrets.same(presented_admin_token(headers), token):
            raise Unauthorized(
                "This mock's admin API needs its token: send X-Admin-Token: <token>", headers=ADMIN_TOKEN_CHALLENGE
            )
