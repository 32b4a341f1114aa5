"""The admin API (`/__admin`): described by `openapi/admin.yaml` and served through the same
pipeline as the vendor APIs, so its requests are validated too. Never journaled."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import html
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from openapi_ui_bundles import swagger_ui

from mock_server import events, lifecycle, secrets, validation
from mock_server.apis.base import ApiDefinition, ApiRequest, ApiResponse, Handler, Services
from mock_server.clock import isoformat
from mock_server.dispatcher import ApiRuntime, dump_json, parser_refusal
from mock_server.errors import (
    FieldError,
    InternalError,
    MockError,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from mock_server.spec import HTTP_METHODS, Spec, load_document, specs_dir
from mock_server.validation import is_text

if TYPE_CHECKING:
    from mock_server.tenants import TenantRegistry

log = logging.getLogger("mock_server")
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


def _get_request(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    entry_id = int(request.path_params["id"])
    newer, _ = services.journal.after(entry_id - 1)
    if not newer or newer[0].id != entry_id:
        raise NotFound(
            f"no journal entry {entry_id} (never recorded, cleared, or dropped past the journal's bounds)",
            [FieldError("id", "is not in the journal")],
        )
    return ApiResponse(200, newer[0].as_dict())


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
    tenant, token = _registry(services).create(
        tenant_id, body.get("seed"), body.get("apis"), body.get("pos_callback_url")
    )
    base_url = f"{_root(request)}{tenant.base_path}"
    created = {
        "id": tenant.id,
        "base_url": base_url,
        "admin_token": token,
        "credentials": lifecycle.collect_credentials(tenant.world),
        "seed": tenant.seed,
        "apis": list(tenant.apis),
        "pos_callback_url": tenant.pos_callback_url,
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


# -- the console (issue 19): a page served without the token (it holds no data; each call it makes
# is guarded), its files, and the drift analysis of an uploaded HAR ------------------------------
CONSOLE_DIR = Path(__file__).parent / "console"
_CONSOLE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_NO_CACHE = "no-cache"


def _get_console(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    page = CONSOLE_DIR / "index.html"
    try:
        text = page.read_text(encoding="utf-8")
    except OSError:
        raise NotFound("the console page is not installed (mock_server/console/index.html is missing)") from None
    return ApiResponse(200, text, {"Cache-Control": _NO_CACHE}, "text/html; charset=utf-8")


def console_file(name: str) -> Path | None:
    """The console file `name`: a regular file directly in `CONSOLE_DIR`, not a dotfile (None else)."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\x00" in name:
        return None
    path = CONSOLE_DIR / name
    try:
        if path.is_symlink() or not path.is_file() or path.parent.resolve() != CONSOLE_DIR.resolve():
            return None
    except (OSError, ValueError):
        return None
    return path


def _get_console_asset(services: Services, store: None, request: ApiRequest) -> ApiResponse:
    name = str(request.path_params["file"])
    path = console_file(name)
    if path is None:
        shown = validation.printable(name)[:60]
        raise NotFound(f"no console file named {shown!r}", [FieldError("file", "is not a file of the console")])
    try:
        body = path.read_bytes()
    except OSError:
        raise NotFound(f"no console file named {name!r}") from None
    media_type = _CONSOLE_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return ApiResponse(200, body, {"Cache-Control": _NO_CACHE, "X-Content-Type-Options": "nosniff"}, media_type)


DRIFT_MAX_BYTES = 32 * 1024 * 1024  # a HAR uploaded to POST /__admin/drift
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]", re.IGNORECASE)
DRIFT_AT_ONCE = 2  # analyses running at once (each holds its HAR in memory and a thread)


class _Slots:
    """At most `limit` holders at once; `take` refuses the next with a 429 (no queue: the client retries)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    @contextlib.contextmanager
    def take(self) -> Iterator[None]:
        if self.taken >= self.limit:
            raise TooManyRequests(f"{self.taken} drift analyses are running; at most {self.limit} at once: retry later")
        self.taken += 1
        try:
            yield
        finally:
            self.taken -= 1


def drift_report(raw: bytes, replay: bool, output: str) -> tuple[str, str]:
    """The drift report of the HAR `raw` (`loyalty-mock drift`'s engine), as (text, media type);
    `output` is json or html. An unusable HAR is a `ValidationFailed` naming what is wrong. Blocking
    (it reads a file and may replay against two fresh in-process mocks): run it in a thread."""
    from mock_server.drift.engine import Options, analyse
    from mock_server.drift.har import HarError
    from mock_server.drift.render import as_html, as_json

    if _SURROGATE_ESCAPE.search(raw):  # a lone surrogate (only an escape makes one): refused naming its field
        validation.parse_json(raw)
    handle, name = tempfile.mkstemp(prefix="lcs-drift-", suffix=".har")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(raw)
        try:
            report = asyncio.run(analyse(name, Options(replay=replay)))
        except HarError as error:
            message = str(error).replace(name, "the request body")
            raise ValidationFailed(message, [FieldError("body", "is not a usable HAR 1.2 document")]) from None
        except MockError as error:  # the replay mocks refused to start
            raise ValidationFailed(f"cannot start the replay mock: {error.message}", error.fields) from None
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            message = f"the HAR could not be analysed ({type(exc).__name__}: {str(exc)[:200]})"
            raise ValidationFailed(message, [FieldError("body", "is not a usable HAR 1.2 document")]) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
    report["source"] = "the uploaded HAR"  # not the temporary file's name
    if output == "html":
        return as_html(report), "text/html; charset=utf-8"
    return as_json(report), "application/json"


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
        "getConsole": _get_console,
        "getConsoleAsset": _get_console_asset,
        "getRequest": _get_request,
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


class ConsolePages(AdminApi):
    """The console's page and files (`getConsole`, `getConsoleAsset`): the admin pipeline without
    the token, as the page holds no data (every call it makes is guarded). Only `AdminRuntime`
    hands it requests, and only for `/console` and `/console/<file>`."""

    handlers: dict[str, Handler] = {"getConsole": _get_console, "getConsoleAsset": _get_console_asset}

    def __init__(self) -> None:
        self.handlers = dict(type(self).handlers)

    def guard(self, services: Services, headers: Mapping[str, str]) -> None:
        return None


_CONSOLE_PAGES = ConsolePages()


def _getall(request: web.BaseRequest) -> Any:
    query = request.query

    def getall(name: str) -> list[str]:
        return list(query.getall(name, []))

    return getall


class AdminRuntime(ApiRuntime):
    """The admin API's runtime: the pipeline (`ApiRuntime.handle`) for every admin call but three
    that are not one request, one answer: the console's event stream (`streamEvents`, a
    long-lived `text/event-stream`), the drift analysis (`analyseDrift`, a body up to 32 MiB
    analysed in a thread) and the console's page and files (no token). Each does what the pipeline
    would first (the guard, routing, parameters) and answers refusals in the same envelope."""

    def __init__(self, definition: ApiDefinition[Any], spec: Spec, services: Services) -> None:
        super().__init__(definition, spec, services)
        self.streams = events.Streams()  # shared by every world's copy (`for_world`): counted per world
        self.drifts = _Slots(DRIFT_AT_ONCE)  # analyses running in threads, server-wide

    async def handle(self, request: web.BaseRequest, path: str, prefix: str) -> web.StreamResponse:
        if path == "/events":
            return await self._events(request, path)
        if path == "/drift":
            return await self._drift(request, path)
        if path == "/console" or path.startswith("/console/"):
            public = copy.copy(self)
            public.definition = _CONSOLE_PAGES
            return await ApiRuntime.handle(public, request, path, prefix)
        return await super().handle(request, path, prefix)

    def _refused(self, error: MockError) -> web.Response:
        response = web.Response(body=dump_json(self.envelope(error)), status=error.status, headers=error.headers)
        response.content_type = self.definition.error_media_type
        return response

    def _admitted(self, request: web.BaseRequest, path: str) -> dict[str, Any]:
        """The guard, the route and the query parameters of `request`, as the pipeline checks them."""
        self.definition.guard(self.services, request.headers)
        op, path_params = validation.route(self.router, request.method, path)
        _path, query, _headers = validation.parameters(op, path_params, _getall(request), request.headers)
        return query

    # -- GET /__admin/events -------------------------------------------------------------------
    async def _events(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        services = self.services
        try:
            query = self._admitted(request, path)
            stop = self.streams.open(services)
        except events.StreamLimit as exc:
            return self._refused(TooManyRequests(f"{exc}: close one (each console tab holds one)"))
        except MockError as error:
            return self._refused(error)
        try:
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream; charset=utf-8",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",  # a proxy (nginx) passes each event on at once
                }
            )
            await response.prepare(request)
            if request.method == "HEAD":
                return response
            await self._stream(request, response, events.Cursor(services.journal, query.get("since")), stop)
            return response
        finally:
            self.streams.release(services, stop)

    async def _stream(
        self, request: web.BaseRequest, response: web.StreamResponse, cursor: events.Cursor, stop: asyncio.Event
    ) -> None:
        loop = asyncio.get_running_loop()
        next_clock = loop.time() + events.CLOCK_SECONDS
        next_keepalive = loop.time() + events.KEEPALIVE_SECONDS
        try:
            await response.write(events.frame("clock", _clock_body(self.services)))
            await self._send(response, cursor)
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), events.POLL_SECONDS)
                transport = request.transport
                if stop.is_set() or transport is None or transport.is_closing():
                    break  # shutting down, or the client went away
                await self._send(response, cursor)
                chunks = []
                now = loop.time()
                if now >= next_clock:
                    chunks.append(events.frame("clock", _clock_body(self.services)))
                    next_clock = now + events.CLOCK_SECONDS
                if now >= next_keepalive:
                    chunks.append(events.KEEPALIVE)
                    next_keepalive = now + events.KEEPALIVE_SECONDS
                if chunks:
                    await response.write(b"".join(chunks))
            transport = request.transport
            if transport is not None and not transport.is_closing():
                await response.write_eof()
        except ConnectionError:  # the client went away while an event was written
            pass

    @staticmethod
    async def _send(response: web.StreamResponse, cursor: events.Cursor) -> None:
        """What is new in the journal, one event per step of the loop (`events.STEP` entries each):
        at thousands of requests a second a poll finds thousands of entries, and summarising them
        all in one step would hold every request waiting behind it (p99 6 -> 21 ms, measured)."""
        for chunk in cursor.iter_frames(events.STEP):
            await response.write(chunk)
            await asyncio.sleep(0)

    # -- POST /__admin/drift -------------------------------------------------------------------
    async def _drift(self, request: web.BaseRequest, path: str) -> web.StreamResponse:
        try:
            query = self._admitted(request, path)
            with self.drifts.take():
                raw = await self._read_har(request)
                if not raw.strip():
                    missing = FieldError("body", "is required but missing")
                    raise ValidationFailed("A request body is required: a HAR 1.2 JSON document", [missing])
                text, media_type = await asyncio.to_thread(
                    drift_report, raw, bool(query.get("replay", False)), str(query.get("format", "json"))
                )
        except MockError as error:
            return self._refused(error)
        except Exception as exc:  # a bug of the engine: never hide it, never crash the server
            log.exception("drift analysis failed")
            return self._refused(InternalError(f"Internal mock error in the drift analysis: {type(exc).__name__}"))
        response = web.Response(body=text.encode("utf-8"), headers={"Cache-Control": "no-store"})
        response.headers["Content-Type"] = media_type
        return response

    async def _read_har(self, request: web.BaseRequest) -> bytes:
        limit = DRIFT_MAX_BYTES
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"The HAR is {request.content_length} bytes; at most {limit} bytes are accepted")
        chunks: list[bytes] = []
        received = 0
        try:
            async with asyncio.timeout(self.services.settings.body_timeout):
                async for chunk in request.content.iter_any():
                    received += len(chunk)
                    if received > limit:
                        raise PayloadTooLarge(f"The HAR is over {limit} bytes; at most {limit} bytes are accepted")
                    chunks.append(chunk)
        except HttpProcessingError as exc:
            raise parser_refusal(exc) from None
        except TimeoutError:
            raise RequestTimeout(
                f"The HAR did not arrive within {self.services.settings.body_timeout:g} seconds"
            ) from None
        return b"".join(chunks)


def close_event_streams(services: Services) -> None:
    """End every console event stream of the server (on shutdown: aiohttp waits for handlers)."""
    admin = services.runtimes.get(AdminApi.slug)
    if isinstance(admin, AdminRuntime):
        admin.streams.close_all()


def close_world_streams(world: Services) -> None:
    """End the console event streams of one world (a tenant being deleted or expired)."""
    admin = world.runtimes.get(AdminApi.slug)
    if isinstance(admin, AdminRuntime):
        admin.streams.close_world(world)
