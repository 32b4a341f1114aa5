"""The request pipeline of one API: route -> faults -> security -> parameters -> body -> handler
(or the spec's example) -> response check -> journal. Each stage is a small function from
`mock_server.validation`; this module is the only one that speaks aiohttp for vendor traffic."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from mock_server import validation
from mock_server.apis.base import ApiDefinition, ApiRequest, ApiResponse, Credential, Services
from mock_server.envelopes import ENVELOPES
from mock_server.errors import (
    FieldError,
    HeadersTooLarge,
    MockError,
    PayloadTooLarge,
    RequestTimeout,
    UriTooLong,
    ValidationFailed,
)
from mock_server.journal import JournalEntry
from mock_server.spec import Operation, Router, Spec

log = logging.getLogger("mock_server")
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson; the standard library for what orjson refuses, e.g. huge ints)."""
    try:
        return orjson.dumps(value, default=str)  # half the cost of allowing non-string keys up front
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")


class ApiRuntime:
    """One mounted API: its definition, compiled spec, route table and (resettable) store."""

    def __init__(self, definition: ApiDefinition[Any], spec: Spec, services: Services) -> None:
        self.definition = definition
        self.spec = spec
        self.services = services
        self.router = Router(spec.operations)
        self.envelope = ENVELOPES[definition.envelope]
        self._op_envelopes = {
            op.operation_id: ENVELOPES[op.raw["x-error-envelope"]]
            for op in spec.operations
            if op.raw.get("x-error-envelope") in ENVELOPES
        }
        self.store: Any = None
        self._schemes = validation.compile_schemes(spec.security_schemes)
        # only an API that overrides response_headers pays for calling it on every response
        self._adds_headers = type(definition).response_headers is not ApiDefinition.response_headers

    @property
    def slug(self) -> str:
        return self.definition.slug

    def reset_store(self) -> None:
        self.store = None  # let the old state go before the new is built (peak memory at a million rows)
        self.store = self.definition.create_store(self.services)

    # -- the pipeline ------------------------------------------------------------------------
    async def handle(self, request: web.BaseRequest, path: str, prefix: str) -> web.StreamResponse:
        started = time.perf_counter()
        services = self.services
        now = services.clock.now()
        definition = self.definition
        op: Operation | None = None
        raw = b""
        principal: Any = None
        source = "handler"
        violations: list[dict[str, Any]] = []
        try:
            self._check_sizes(request)
            op, path_params = validation.route(self.router, request.method, path)
            definition.guard(services, request.headers)
            if request.body_exists:
                raw = await self._read_body(request)
            fault_response = await self._apply_fault(op, raw, request) if services.faults.active else None
            if fault_response is not None:
                response, source = fault_response, "fault"
            else:
                if op.security:
                    principal = validation.authenticate(
                        op, self._schemes, request.headers, self._principal
                    )
                path_values, query, parsed = self._validate_input(op, path_params, request, raw)
                api_request = ApiRequest(
                    operation=op,
                    path_params=path_values,
                    query=query,
                    headers=request.headers,
                    body=parsed,
                    principal=principal,
                    received_at=now,
                    url_of_api=lambda: f"{request.scheme}://{request.host}{prefix}",
                )
                definition.admit(services, self.store, api_request)
                examples_only = services.settings.examples_only and definition.example_mode_applies
                handler = None if examples_only else definition.handlers.get(op.operation_id)
                if handler is None:
                    response, source = self._example(op), "example"
                else:
                    result = handler(services, self.store, api_request)
                    response = result if isinstance(result, ApiResponse) else await result
                if services.settings.strict:
                    violations = self._check_response(op, response)
                    if violations:
                        response = self._violation_response(op, response, violations)
        except MockError as error:
            envelope = self._op_envelopes.get(op.operation_id, self.envelope) if op else self.envelope
            response = ApiResponse(error.status, envelope(error), dict(error.headers), definition.error_media_type)
            if services.settings.strict and op is not None and op.response_for(error.status) is not None:
                violations = self._check_response(op, response)
        except Exception as exc:  # a mock bug: never hide it, never crash the server
            log.exception("unhandled error in %s %s", self.slug, op.operation_id if op else path)
            violations = [{"kind": "server_error", "message": f"{type(exc).__name__}: {exc}"}]
            response = ApiResponse(
                500,
                self.envelope(MockError(f"Internal mock error: {type(exc).__name__}")),
                media_type=definition.error_media_type,
            )
        if services.state_file is not None and request.method not in _READ_ONLY and response.status < 400:
            self._persist()
        headers = response.headers
        if self._adds_headers:
            headers.update(definition.response_headers(services, self.store, principal, now))
        payload = self._encode(response)
        if payload is not None:
            headers["Content-Type"] = response.media_type
        if definition.journaled:
            services.journal.append(
                JournalEntry(
                    0,
                    now,  # when the request arrived; formatted when read (keeps the hot path cheap)
                    self.slug,
                    op.operation_id if op else None,
                    request.method,
                    path,
                    response.status,
                    # the request's header and query views are immutable: kept as they are, copied on read
                    {"headers": request.headers, "query": request.rel_url.raw_query_string, "raw": raw},
                    {"headers": headers, "raw": payload or b""},
                    violations,
                    source,
                    round((time.perf_counter() - started) * 1000, 3),
                    len(raw) + (len(payload) if payload else 0) + 512,
                )
            )
        return web.Response(body=payload, status=response.status, headers=headers)

    def _principal(self, credential: Credential) -> Any:
        return self.definition.authenticate(self.services, self.store, credential)

    def _persist(self) -> None:
        from mock_server.lifecycle import persist  # lifecycle imports this module

        persist(self.services)

    def _validate_input(
        self, op: Operation, path_params: dict[str, str], request: web.BaseRequest, raw: bytes
    ) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """Parameters, then body; schema errors of both are reported together."""
        failures: list[FieldError] = []
        path_values: dict[str, Any] = {}
        query: dict[str, Any] = {}
        parsed: Any = None
        if op.parameters:
            try:
                path_values, query, _headers = validation.parameters(
                    op, path_params, _getall(request), request.headers
                )
            except ValidationFailed as error:
                failures.extend(error.fields)
        if op.body_media:
            try:
                parsed = validation.body(op, request.headers.get("Content-Type", ""), raw)
            except ValidationFailed as error:
                failures.extend(error.fields)
        if failures:
            raise ValidationFailed("The request is invalid", failures)
        return path_values, query, parsed

    def _check_sizes(self, request: web.BaseRequest) -> None:
        settings = self.services.settings
        if len(request.raw_path) > settings.max_url_bytes:
            raise UriTooLong(f"The URL is {len(request.raw_path)} bytes; at most {settings.max_url_bytes} are accepted")
        for name, value in request.raw_headers:
            if len(name) + len(value) > settings.max_header_bytes:
                header = name.decode("latin-1")[:60]
                raise HeadersTooLarge(
                    f"Header {header} is over {settings.max_header_bytes} bytes",
                    [FieldError(f"header.{header}", f"at most {settings.max_header_bytes} bytes")],
                )

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        if not request.body_exists:
            return b""
        limit = self.services.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(
                f"The request body is {request.content_length} bytes; at most {limit} bytes are accepted"
            )
        try:
            if request.content.is_eof():  # already all here (the usual small body): nothing to wait for
                return await request.read()
            async with asyncio.timeout(self.services.settings.body_timeout):
                return await request.read()
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive within {self.services.settings.body_timeout:g} seconds"
            ) from None
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge(f"The request body is over {limit} bytes; at most {limit} are accepted") from None

    async def _apply_fault(self, op: Operation, raw: bytes, request: web.BaseRequest) -> ApiResponse | None:
        faults = self.services.faults
        if not faults.active:
            return None
        try:
            document = json.loads(raw) if raw else None
        except ValueError:
            document = None
        fault = faults.pick(self.slug, op.operation_id, document, dict(request.query))
        if fault is None:
            return None
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault.status is None:
            return None
        body = fault.body
        if body is None:
            body = self.envelope(MockError(f"Injected fault {fault.id}", kind="injected_fault"))
        return ApiResponse(fault.status, body)

    def _example(self, op: Operation) -> ApiResponse:
        found = op.example_response()
        if found is None:
            return ApiResponse(200, None)
        status, spec = found
        if spec.media_type is None:
            return ApiResponse(status, None)
        return ApiResponse(status, spec.example, media_type=spec.media_type)

    def _check_response(self, op: Operation, response: ApiResponse) -> list[dict[str, Any]]:
        documented = op.response_for(response.status)
        if documented is None:
            return [{"kind": "undocumented_status", "message": f"status {response.status} is not documented"}]
        if response.media_type != documented.media_type and documented.media_type is not None and (
            op.raw.get("responses", {}).get(documented.status, {}).get("content", {}).get(response.media_type)
        ):
            return []  # another documented representation (e.g. ?format=html); only the first is compiled
        if documented.schema is None or response.body is None:
            if documented.schema is not None and response.body is None:
                return [{"kind": "response_schema", "message": "the documented body is missing"}]
            return []
        return [
            {"kind": "response_schema", "field": e.field, "message": e.message}
            for e in documented.schema.errors(response.body)
        ]

    def _violation_response(
        self, op: Operation, response: ApiResponse, violations: list[dict[str, Any]]
    ) -> ApiResponse:
        log.error("response of %s %s violates its spec: %s", self.slug, op.operation_id, violations)
        error = MockError(
            f"Mock bug: the {response.status} response of {op.operation_id} does not match its spec",
            [FieldError(str(v.get("field", "response")), str(v["message"])) for v in violations],
            kind="mock_response_violation",
        )
        return ApiResponse(500, {**self.envelope(error), "mock_violations": violations})

    def _encode(self, response: ApiResponse) -> bytes | None:
        if response.body is None:
            return None
        if isinstance(response.body, bytes):
            return response.body
        if isinstance(response.body, str) and not response.media_type.endswith("json"):
            return response.body.encode("utf-8")
        return dump_json(response.body)


def _getall(request: web.BaseRequest) -> Any:
    query = request.query

    def getall(name: str) -> list[str]:
        return list(query.getall(name, []))

    return getall


class Mounts:
    """Which API serves which first path segment (`customtrades` -> its runtime and prefix), the
    one served at the root too (when a single API is selected), and the paths left to aiohttp's
    router (the admin's static docs)."""

    def __init__(self) -> None:
        self.by_segment: dict[str, tuple[ApiRuntime, str]] = {}
        self.root: ApiRuntime | None = None
        self.routed_prefixes: tuple[str, ...] = ()


def mount(app: web.Application, mounts: Mounts, runtime: ApiRuntime, prefix: str) -> None:
    """Serve one API under `prefix` ("" = the root) with a catch-all route on `app` itself
    (routing is the spec's), and record it in `mounts` for the fast path."""

    async def dispatch(request: web.Request) -> web.StreamResponse:
        return await runtime.handle(request, "/" + request.match_info["tail"], prefix)

    app.router.add_route("*", prefix + "/{tail:[\\s\\S]*}", dispatch)
    if prefix:

        async def bare_prefix(request: web.Request) -> web.StreamResponse:
            return await runtime.handle(request, "/", prefix)

        app.router.add_route("*", prefix, bare_prefix)
        mounts.by_segment[prefix[1:]] = (runtime, prefix)
    else:
        mounts.root = runtime


RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def fast_path(mounts: Mounts, routed: RequestHandler) -> RequestHandler:
    """The server's request handler: the same dispatch the app's routes do, without aiohttp's URL
    resolution, match info and middleware chain (the mock has none) on every request — about a
    tenth of a request's cost (issue 11). What the routes would not give an API (the admin's
    static docs, unknown prefixes with several APIs) and `Expect: 100-continue` requests (the
    app answers the 100) go to `routed`, the app's own handler."""
    by_segment, root, routed_prefixes = mounts.by_segment, mounts.root, mounts.routed_prefixes

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if "Expect" not in request.headers and not path.startswith(routed_prefixes):
            segment, _, rest = path[1:].partition("/")
            found = by_segment.get(segment)
            if found is not None:
                return await found[0].handle(request, "/" + rest, found[1])
            if root is not None:
                return await root.handle(request, path, "")
        return await routed(request)

    return handle
