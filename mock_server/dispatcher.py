"""The request pipeline of one API: route -> faults -> security -> parameters -> body -> handler
(or the spec's example) -> response check -> journal. Each stage is a small function from
`mock_server.validation`; this module is the only one that speaks aiohttp for vendor traffic."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from itertools import chain
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.http_writer import StreamWriter
from aiohttp.web_protocol import ERROR, _ErrInfo
from aiohttp.web_protocol import RequestHandler as HttpProtocol
from aiohttp.web_response import REASON_PHRASES
from aiohttp.web_server import Server

from mock_server import persistence, validation
from mock_server import rules as prose_rules
from mock_server.apis.base import ApiDefinition, ApiRequest, ApiResponse, Credential, Services
from mock_server.envelopes import ENVELOPES
from mock_server.errors import (
    FieldError,
    HeadersTooLarge,
    InternalError,
    MalformedRequest,
    MethodNotAllowed,
    MockError,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    UriTooLong,
    ValidationFailed,
)
from mock_server.spec import Operation, Router, Spec
from mock_server.write_batch import WriteBatch

if TYPE_CHECKING:
    from mock_server.tenants import TenantRegistry

log = logging.getLogger("mock_server")
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


def client_scheme(request: web.BaseRequest) -> str:
    """The scheme the client spoke, for the URLs the mock writes (`base_url`, LOKE's issuer, next
    pages): `X-Forwarded-Proto` (`http` or `https`) when a proxy on this host sent it — a loopback
    peer, such as nginx from `loyalty-mock nginx-config` terminating TLS — as uvicorn and gunicorn
    trust it from 127.0.0.1 by default; else the connection's own."""
    forwarded = request.headers.get("X-Forwarded-Proto")
    if forwarded is None:
        return request.scheme
    proto = forwarded.split(",", 1)[0].strip().lower()
    if proto not in ("http", "https"):
        return request.scheme
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:  # a Unix socket, or no peer
        return request.scheme
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped
    return proto if peer.is_loopback else request.scheme


def _exact(out: bytes) -> bytes:
    """`out` in a buffer of its own size. orjson (3.13) hands back the buffer it wrote into, 10 to
    25 times the text's size (4 KiB for a 200-byte answer, 512 KiB for 20 KB): kept in the journal,
    that was most of the mock's memory, and each new buffer cost fresh pages from the kernel (issue
    18). The copy costs a tenth of the encoding and lets the next encoding reuse the buffer."""
    return bytes(memoryview(out))


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON (orjson; the standard library for what orjson refuses, e.g. huge ints).
    Never raises on what a store can hold: a string that is not UTF-8 text (a lone surrogate) is
    written as its JSON escape (`"\\ud800"`), a value nested beyond the stack as a string saying so."""
    try:
        return _exact(orjson.dumps(value, default=str))  # half the cost of allowing non-string keys up front
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return _exact(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (RecursionError, ValueError):  # nested beyond the stack, or a circular reference
        return b'"unrenderable value: nested too deeply"'
    # a surrogate can only sit inside a JSON string, where backslashreplace's `\\udXXX` is its escape
    return text.encode("utf-8", "backslashreplace")


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
        self._rules = prose_rules.compile_spec(spec)  # the specs' prose rules (x- keywords), per operation
        # only an API that overrides response_headers pays for calling it on every response
        self._adds_headers = type(definition).response_headers is not ApiDefinition.response_headers

    @property
    def slug(self) -> str:
        return self.definition.slug

    def for_world(self, services: Services) -> ApiRuntime:
        """This API in another world (a tenant's): the compiled parts (definition, spec, router,
        validators, security schemes, envelopes) are this runtime's, shared and never changed;
        the store is the new world's own, built by `reset_store`."""
        runtime = copy.copy(self)
        runtime.services = services
        runtime.store = None
        return runtime

    def reset_store(self) -> None:
        self.store = None  # let the old state go before the new is built (peak memory at a million rows)
        self.store = self.definition.create_store(self.services)

    # -- the pipeline ------------------------------------------------------------------------
    async def handle(self, request: web.BaseRequest, path: str, prefix: str) -> web.StreamResponse:
        started = time.perf_counter()
        services = self.services
        clock = services.clock
        arrived = clock.reading()  # with --state-file the handler sees this reading (logged, replayed)
        now = clock.at(arrived)
        durable = services.state_file
        inputs = persistence.begin_inputs() if durable is not None else None  # outside answers, logged
        definition = self.definition
        op: Operation | None = None
        raw = b""
        principal: Any = None
        source = "handler"
        violations: list[dict[str, Any]] = []
        closing = False
        try:
            definition.guard(services, request.headers)  # before routing: a 404/405 tells nothing either
            self._check_sizes(request)
            op, path_params = validation.route(self.router, request.method, path)
            if request.body_exists:
                raw = await self._read_body(request)
            applies_faults = services.faults.active and not services.replaying  # a logged request had none
            fault_response = await self._apply_fault(op, raw, request) if applies_faults else None
            if fault_response is not None:
                response, source = fault_response, "fault"
            else:
                # --state-file: the clock reads `arrived` while this request runs (as when replayed)
                previous = clock.pin(arrived) if durable is not None else None
                try:
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
                        url_of_api=lambda: f"{client_scheme(request)}://{request.host}{prefix}",
                    )
                    definition.admit(services, self.store, api_request)
                    examples_only = services.settings.examples_only and definition.example_mode_applies
                    handler = None if examples_only else definition.handlers.get(op.operation_id)
                    if handler is None:
                        response, source = self._example(op), "example"
                    else:
                        result = handler(services, self.store, api_request)
                finally:
                    if durable is not None:
                        clock.pin(previous)
                if handler is not None:
                    if isinstance(result, ApiResponse):
                        response = result
                    elif durable is None:
                        response = await result
                    else:  # pinned at each step, never while it waits (other requests run then)
                        response = await _Pinned(result, clock, arrived)
                if services.settings.strict:
                    violations = self._check_response(op, response)
                    if violations:
                        response = self._violation_response(op, response, violations)
        except MockError as error:
            closing = isinstance(error, MalformedRequest)  # the connection's framing is broken
            envelope = self._op_envelopes.get(op.operation_id, self.envelope) if op else self.envelope
            response = ApiResponse(error.status, envelope(error), dict(error.headers), definition.error_media_type)
            if services.settings.strict and op is not None and op.response_for(error.status) is not None:
                violations = self._check_response(op, response)
        except Exception as exc:  # a mock bug: never hide it, never crash the server
            log.exception("unhandled error in %s %s", self.slug, op.operation_id if op else path)
            violations = [{"kind": "server_error", "message": f"{type(exc).__name__}: {exc}"}]
            response = ApiResponse(
                500,
                self.envelope(InternalError(f"Internal mock error: {type(exc).__name__}")),
                media_type=definition.error_media_type,
            )
        headers = response.headers
        if self._adds_headers:
            headers.update(definition.response_headers(services, self.store, principal, now))
        payload = self._encode(response)
        if payload is not None:
            headers["Content-Type"] = response.media_type
        flushed = None
        if (
            durable is not None
            and response.status < 400
            and source != "fault"
            and request.method not in _READ_ONLY
            and op is not None
            and op.operation_id not in persistence.VOLATILE_OPERATIONS
        ):  # in the state change's own step: the log's order is the changes' order
            checked = op.operation_id not in persistence.STATUS_ONLY_OPERATIONS
            flushed = durable.append(
                persistence.Entry(
                    self.slug, prefix, request.method, request.raw_path, path, tuple(request.headers.items()),
                    raw, client_scheme(request), request.host, arrived, response.status,
                    persistence.digest(payload or b"") if checked else b"",
                    persistence.collected_inputs(),
                )
            )
        if inputs is not None:
            persistence.end_inputs(inputs)
        if definition.journaled and not services.replaying:
            services.journal.exchange(  # kept as immutable atoms, which the collector stops tracking
                now,  # when the request arrived; formatted when read (keeps the hot path cheap)
                self.slug,
                op.operation_id if op else None,
                request.method,
                path,
                response.status,
                request.headers,
                request.rel_url.raw_query_string,
                raw,
                headers,
                payload or b"",
                violations,
                source,
                round((time.perf_counter() - started) * 1000, 3),
                len(raw) + (len(payload) if payload else 0) + 512,
            )
        if flushed is not None:  # the answer leaves once its log entry is on disk (group commit)
            try:
                await asyncio.shield(flushed)
            except persistence.StateFileError as exc:
                unsaved = InternalError(f"The change was made but not saved: {exc}")
                body = dump_json(self.envelope(unsaved))
                return web.Response(body=body, status=500, content_type=definition.error_media_type)
        sent = send(request, response.status, headers, payload, closing)
        if sent is _SENT_KEPT_ALIVE and request.protocol.writing_paused:  # a client reading slower than it asks waits
            await request._payload_writer.drain()
        return sent

    def _principal(self, credential: Credential) -> Any:
        return self.definition.authenticate(self.services, self.store, credential)

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
            else:  # a schema-valid body: then the rules the spec states in prose
                failures.extend(validation.rules(self._rules.get(op.operation_id, ()), parsed))
        if failures:
            raise ValidationFailed("The request is invalid", failures)
        return path_values, query, parsed

    def _check_sizes(self, request: web.BaseRequest) -> None:
        settings = self.services.settings
        if len(request.raw_path) > settings.max_url_bytes:
            raise UriTooLong(f"The URL is {len(request.raw_path)} bytes; at most {settings.max_url_bytes} are accepted")
        raw_headers = request.raw_headers
        if not raw_headers or 2 * max(map(len, chain.from_iterable(raw_headers))) <= settings.max_header_bytes:
            return  # no name or value is over half the bound: no line is over it (one C-speed pass)
        for name, value in raw_headers:
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
            content = request.content
            if content.is_eof():  # already all here (the usual small body): taken as it is, no waiting
                raw = request._read_bytes  # read before (a replayed request comes with its body read)
                if raw is None:
                    raw = content.read_nowait()
                    if len(raw) > limit:  # chunked: no length was announced
                        raise PayloadTooLarge(f"The request body is over {limit} bytes; at most {limit} are accepted")
                    request._read_bytes = raw  # what `request.read()` gives from now on
                return raw
            async with asyncio.timeout(self.services.settings.body_timeout):
                return await request.read()
        except HttpProcessingError as exc:  # the parser refused the body as it arrived
            raise parser_refusal(exc) from None
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


_CRLF = "\r\n"


_MANAGED = frozenset(("content-length", "transfer-encoding", "connection"))  # aiohttp writes these itself


class _Sent(web.StreamResponse):
    """An answer `send` already wrote: aiohttp's `prepare` and `write_eof` return at once."""

    def __init__(self, keep_alive: bool) -> None:
        super().__init__()
        self._eof_sent = True
        self._keep_alive = keep_alive

    def force_close(self) -> None:  # shared by every request: it never changes
        raise RuntimeError("this answer was already written: it can no longer close its connection")


# what `send` hands aiohttp once it wrote an answer itself: shared by every request (aiohttp only
# reads `keep_alive` of it; with no access log — the mock's servers have none — nothing else)
_SENT_KEPT_ALIVE, _SENT_CLOSING = _Sent(True), _Sent(False)


def send(
    request: web.BaseRequest,
    status: int,
    headers: dict[str, str] | list[tuple[str, str]],
    body: bytes | None,
    closing: bool = False,
    reason: str | None = None,
) -> web.StreamResponse:
    """Answer `request`: for a plain HTTP/1.1 answer, the status line, headers and body formatted
    here and written in one piece — what aiohttp's `web.Response` writes, byte for byte (the same
    headers in the same order: `headers`, Content-Length, Content-Type when none was given and there
    is a body, Date, Server, then Connection: close when the connection ends) — without building
    a response object at all (issue 20: 5 % of a GET's CPU against a `web.Response` subclass
    doing the same, its headers multidict and `prepare`/`write_eof` gone). A kept-alive answer
    waits for the end of the event loop's pass (`WriteBatch`, when the connection's protocol has
    one). Anything else — HTTP/1.0, HEAD, 1xx/204/304, a request through the app's routes (whose
    `on_response_prepare` signals may change headers), a header aiohttp sets itself, a header
    holding a tab, a control or a non-ASCII character — is a `web.Response`, aiohttp's own path,
    unchanged. `headers` may be pairs (a name repeated: the proxy's answers); a Date or Server
    among them is kept in its place instead of the server's own, as aiohttp does. `closing` ends the
    connection after the answer."""
    method = request.method
    writer = request._payload_writer
    if (
        request.version != HttpVersion11
        or method == "HEAD"
        or method == "CONNECT"
        or status < 200
        or status == 204
        or status == 304
        or getattr(request, "_match_info", None) is not None
        or not isinstance(writer, StreamWriter)
    ):
        return _response(status, headers, body, closing, reason)
    if isinstance(headers, dict):
        pairs: Any = headers.items()
        names = set(map(str.lower, headers))  # header names are case-insensitive
    else:
        pairs = headers
        names = {name.lower() for name, _ in headers}
    probe = "".join(chain.from_iterable(pairs)) + (reason or "")
    if not _MANAGED.isdisjoint(names) or not probe.isascii() or not probe.isprintable():  # a tab, a control
        return _response(status, headers, body, closing, reason)
    own = "\r\n".join(map(": ".join, pairs))
    transport = writer.transport
    if transport is None or transport.is_closing():
        return _response(status, headers, body, closing, reason)  # aiohttp's own refusal of a gone client
    keep_alive = request.keep_alive and not closing
    length = len(body) if body else 0
    typed = "" if not length or "content-type" in names else "Content-Type: application/octet-stream\r\n"
    dated = "" if "date" in names else f"Date: {rfc822_formatted_time()}\r\n"
    signed = "" if "server" in names else f"Server: {SERVER_SOFTWARE}\r\n"
    data = (
        f"HTTP/1.1 {status} {REASON_PHRASES.get(status, '') if reason is None else reason}\r\n"
        f"{own}{_CRLF if own else ''}Content-Length: {length}\r\n{typed}{dated}{signed}"
        f"{'' if keep_alive else 'Connection: close' + _CRLF}\r\n"
    ).encode("ascii")
    if body:
        data += body  # one copy of a small answer: cheaper than two writes
    writer.length = length
    writer.output_size += len(data)
    writer._eof = True
    batch: WriteBatch | None = getattr(request.protocol._manager, "batch", None)  # a server's own
    if batch is not None and keep_alive:
        batch.write(transport, data)
    else:  # it leaves now: aiohttp closes the transport after a closing answer
        transport.write(data)
    if body:
        notify = writer.on_body_write
        if notify is not None:
            notify(length, writer.output_size)
    return _SENT_KEPT_ALIVE if keep_alive else _SENT_CLOSING


def _response(
    status: int,
    headers: dict[str, str] | list[tuple[str, str]],
    body: bytes | None,
    closing: bool,
    reason: str | None = None,
) -> web.Response:
    response = web.Response(body=body, status=status, reason=reason, headers=headers)
    if closing:
        response.force_close()
    return response


class _Pinned:
    """Await a handler's coroutine with the clock pinned at `reading` during each of its steps
    (and only then: while it waits, other requests run on the real clock)."""

    __slots__ = ("_clock", "_coroutine", "_reading")

    def __init__(self, coroutine: Any, clock: Any, reading: Any) -> None:
        self._coroutine, self._clock, self._reading = coroutine, clock, reading

    def __await__(self) -> Any:
        coroutine, clock = self._coroutine, self._clock
        value: Any = None
        thrown: BaseException | None = None
        while True:
            previous = clock.pin(self._reading)
            try:
                step = coroutine.throw(thrown) if thrown is not None else coroutine.send(value)
            except StopIteration as done:
                return done.value
            finally:
                clock.pin(previous)
            try:
                value, thrown = (yield step), None
            except BaseException as exc:  # handed to the coroutine, as `await` does
                value, thrown = None, exc


def _getall(request: web.BaseRequest) -> Any:
    """The query's values of one name; the query string is parsed only when there is one (an
    operation with only path parameters never builds the request's query multidict)."""
    if not request.rel_url.raw_query_string:
        return _no_values

    def getall(name: str) -> list[str]:
        return list(request.query.getall(name, ()))

    return getall


def _no_values(name: str) -> list[str]:
    return []


class Mounts:
    """Which API serves which first path segment (`customtrades` -> its runtime and prefix), and
    the one served at the root too (when a single API is selected)."""

    def __init__(self) -> None:
        self.by_segment: dict[str, tuple[ApiRuntime, str]] = {}
        self.root: ApiRuntime | None = None
        self.tenants: TenantRegistry | None = None  # served under /t/<id>/ (`serve_tenant`)


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


def mount_tenants(app: web.Application, mounts: Mounts, tenants: TenantRegistry) -> None:
    """Serve every tenant under `/t/<id>/` (`serve_tenant`), for the app's routes and the fast path."""
    mounts.tenants = tenants

    async def dispatch(request: web.Request) -> web.StreamResponse:
        return await serve_tenant(mounts, tenants, request, request.match_info["tail"])

    app.router.add_route("*", "/t/{tail:[\\s\\S]*}", dispatch)


async def serve_tenant(
    mounts: Mounts, tenants: TenantRegistry, request: web.BaseRequest, rest: str
) -> web.StreamResponse:
    """A request to `/t/<rest>`: `<id>/<slug>/<vendor path>` goes to that tenant's API, `<id>/__admin/...`
    to its admin API (guarded by its own token), and `<id>/__admin/tenant` to the server's
    `/__admin/tenants/<id>` (creating a tenant at its own path, for a proxy that routes by the
    tenant segment). An unknown tenant is a 404 naming it, in the envelope of the API named."""
    tenant_id, _, tail = rest.partition("/")
    segment, _, after = tail.partition("/")
    if segment == "__admin" and after == "tenant":
        admin = mounts.by_segment["__admin"][0]
        return await admin.handle(request, f"/tenants/{tenant_id}", "/__admin")
    tenant = tenants.get(tenant_id)
    if tenant is None:
        shown = validation.printable(tenant_id)[:60]
        error = NotFound(
            f"No tenant named {shown!r} on this mock (it was never created, was deleted, or expired "
            "after --tenant-ttl idle); create one with POST /__admin/tenants",
            [FieldError("tenant", f"{shown!r} does not exist")],
        )
        return refusal(mounts, "/" + tail, error)
    found: ApiRuntime | None = tenant.world.runtimes.get(segment)
    if found is None:
        served = ", ".join(f"/t/{tenant_id}/{slug}" for slug in tenant.world.runtimes)
        error = NotFound(
            f"Tenant {tenant_id} serves {served}; nothing at /t/{tenant_id}/{validation.printable(segment)[:60]}",
            [FieldError("path", f"expected /t/{tenant_id}/<one of {', '.join(tenant.world.runtimes)}>/...")],
        )
        return refusal(mounts, "/__admin", error)  # problem+json: no API was named
    tenants.enter(tenant)
    try:
        return await found.handle(request, "/" + after, f"/t/{tenant_id}/{segment}")
    finally:
        tenants.leave(tenant)


RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def fast_path(mounts: Mounts, routed: RequestHandler) -> RequestHandler:
    """The server's request handler: the same dispatch the app's routes do, without aiohttp's URL
    resolution, match info and middleware chain (the mock has none) on every request — about a
    tenth of a request's cost (issue 11). What the routes would not give an API (unknown
    prefixes with several APIs) and `Expect: 100-continue` requests (the app answers the 100)
    go to `routed`, the app's own handler."""
    by_segment, root, tenants = mounts.by_segment, mounts.root, mounts.tenants

    def handle(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        # the usual request (an API's prefix, no Expect): its pipeline's coroutine itself, which
        # aiohttp awaits (no coroutine of this function's own wrapped around it)
        if request.raw_path[:1] == "/" and "Expect" not in request.headers:
            segment, _, rest = request.path[1:].partition("/")
            found = by_segment.get(segment)
            if found is not None:
                return found[0].handle(request, "/" + rest, found[1])
        return dispatch(request)

    async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if not request.raw_path.startswith("/"):  # CONNECT host:port, OPTIONS *: not a resource here
            return refusal(mounts, "", _not_origin_form(request))
        if "Expect" not in request.headers:
            segment, _, rest = path[1:].partition("/")
            found = by_segment.get(segment)
            if found is not None:
                return await found[0].handle(request, "/" + rest, found[1])
            if segment == "t" and tenants is not None:
                return await serve_tenant(mounts, tenants, request, rest)
            if root is not None:
                return await root.handle(request, path, "")
        return await routed(request)

    return handle


# -- refusals made before a request reaches an API (the HTTP parser's, non-resource targets) ------
def refusal(mounts: Mounts, path: str, error: MockError) -> web.Response:
    """`error` in the envelope of the API that serves `path` (problem+json when none does), as the
    app's own unknown-path answer does."""
    segment = path[1:].partition("/")[0] if path.startswith("/") else ""
    if segment == "t" and mounts.tenants is not None:  # /t/<id>/<slug>/...: the slug's envelope
        segment = (path.split("/", 4)[3:4] or [""])[0]
    found = mounts.by_segment.get(segment)
    runtime = found[0] if found is not None else mounts.root
    if runtime is None:
        envelope, media_type = ENVELOPES["problem"], "application/problem+json"
    else:
        envelope, media_type = runtime.envelope, runtime.definition.error_media_type
    response = web.Response(body=dump_json(envelope(error)), status=error.status, headers=error.headers)
    response.content_type = media_type
    return response


def _not_origin_form(request: web.BaseRequest) -> MockError:
    target = validation.printable(request.raw_path)[:100]
    if request.method == "CONNECT":
        return MethodNotAllowed(
            f"CONNECT {target}: this mock is not a proxy; send requests to /<api>/<path>",
            [FieldError("method", "CONNECT is not supported; expected GET, POST, PUT, PATCH, DELETE or HEAD")],
        )
    return MalformedRequest(
        f"{request.method} {target}: the request target is not a path",
        [FieldError("path", "expected a path starting with / (e.g. /<api>/<path>)")],
    )


_DUPLICATE = re.compile(r"Duplicate '?([A-Za-z0-9-]+)'? header|Duplicate ([A-Za-z0-9-]+)")


def parser_refusal(exc: BaseException | None, description: str = "") -> MockError:
    """The HTTP parser's complaint as a `MockError` naming the part at fault (414/431 for a line
    over aiohttp's limits, else a 400 `MalformedRequest`). Only the parser's description is used,
    never the offending bytes it quotes (they may hold a secret)."""
    if isinstance(exc, LineTooLong):
        line = bytes(exc.args[0]) if exc.args and isinstance(exc.args[0], (bytes, bytearray)) else b""
        limit = exc.args[1] if len(exc.args) > 1 else "its limit of"
        if line.startswith(b"/") or b" /" in line[:20]:
            return UriTooLong(f"The URL is over {limit} bytes", [FieldError("path", f"at most {limit} bytes")])
        return HeadersTooLarge(f"A header is over {limit} bytes", [FieldError("headers", f"at most {limit} bytes")])
    if isinstance(exc, HttpProcessingError) and not description:
        description = exc.message
    head = re.split(r"\n\n|: (?:bytearray\()?b['\"]", description, maxsplit=1)[0]
    reason = ": ".join(part.strip().rstrip(":") for part in head.splitlines() if part.strip()) or "malformed"
    lowered = reason.lower()
    duplicate = _DUPLICATE.search(reason)
    if duplicate is not None:
        name = duplicate.group(1) or duplicate.group(2)
        field = FieldError(f"header.{name}", f"was sent more than once; expected one {name} header")
    elif "transfer-encoding" in lowered and "content-length" in lowered:
        field = FieldError("header.Transfer-Encoding", "was sent with Content-Length; expected only one of them")
    elif "transfer-encoding" in lowered:
        field = FieldError("header.Transfer-Encoding", "is not supported; expected chunked or none")
    elif "content-length" in lowered:
        field = FieldError("header.Content-Length", "is invalid; expected one non-negative integer")
    elif "too many headers" in lowered:
        field = FieldError("headers", "too many were sent; expected fewer header lines")
    elif "chunk" in lowered:
        field = FieldError("body", "is not valid chunked coding; expected <hex size>CRLF<data>CRLF ... 0CRLFCRLF")
    elif "method" in lowered:
        field = FieldError("method", "is not a valid HTTP method token")
    elif "url" in lowered or "target" in lowered:
        part = "query" if "query" in lowered else "path"
        field = FieldError(part, f"holds a character that is not allowed; expected a percent-encoded {part}")
    elif "version" in lowered or "status line" in lowered or "crlf" in lowered:
        field = FieldError("request_line", "expected <METHOD> <path> HTTP/1.1 followed by CRLF")
    elif "header" in lowered:
        field = FieldError("headers", "a header line is invalid; expected Name: value with visible ASCII")
    else:
        field = FieldError("request", "is not valid HTTP/1.1")
    return MalformedRequest(f"The request is not valid HTTP/1.1 ({reason})", [field])


_HEADER_LINE = re.compile(rb"\r?\n([!#$%&'*+.^_`|~0-9A-Za-z-]{1,64})[ \t]*:([^\r\n]*)")
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def name_bad_header(error: MockError, head: bytes) -> MockError:
    """A generic refusal ("a header line is invalid", "not valid HTTP/1.1") made specific: the
    first header line of `head` (the bytes received) whose value holds a control character is
    named (the name only: a value may be a secret)."""
    if not error.fields or error.fields[0].field not in ("headers", "request") or error.status != 400:
        return error
    for match in _HEADER_LINE.finditer(head):
        if _BAD_VALUE_BYTE.search(match.group(2)):
            name = match.group(1).decode("ascii")
            return MalformedRequest(
                error.message,
                [FieldError(f"header.{name}", "holds a control character; expected visible ASCII, space or tab")],
            )
    return error


_ERROR_11 = ERROR._replace(version=HttpVersion11)
_REQUEST_LINE = re.compile(rb"(?:^|\n)[A-Z]+ (/[^ \r\n]*)")
_REQUEST_START = re.compile(rb"[A-Z]+ /")
_SEEN_BYTES = 4096


class EnvelopedRequestHandler(HttpProtocol):
    """aiohttp's per-connection protocol, with the refusals it makes itself (the HTTP parser's
    400s, an exception escaping a handler) answered in the vendor's envelope as HTTP/1.1 instead
    of plain text as HTTP/1.0. The parser's refusals carry no request, so the path (which picks
    the envelope) is read from the bytes received: the last request line in the latest chunk, else
    the one that began the latest chunk starting with a request line (a long URL or head spans
    several chunks)."""

    __slots__ = ("_latest_head", "_request_head")

    def __init__(self, manager: EnvelopedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._request_head = self._latest_head = b""

    def data_received(self, data: bytes) -> None:
        self._latest_head = data[:_SEEN_BYTES]
        if _REQUEST_START.match(data):
            self._request_head = self._latest_head
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued and self._current_request is not None:
            refused = self._messages[-1][0]
            if isinstance(refused, _ErrInfo) and refused.exc is not None:
                # the body of the request being handled broke (e.g. a malformed chunk): its
                # handler, waiting for that body, answers now (instead of at the body timeout),
                # that answer is the only one, and the connection closes after it
                self._messages.pop()
                self._lingering_time = 0.0
                self.close()
                self._current_request.content.set_exception(refused.exc)

    def _make_error_handler(self, err_info: _ErrInfo) -> RequestHandler:
        """The handler of a request the HTTP parser refused (it has no method, path or headers)."""

        async def refuse(request: web.BaseRequest) -> web.StreamResponse:
            # hostile or broken input is routine for a mock: no traceback in the log
            self.log_debug("Refused a request the HTTP parser could not read: %s", err_info.exc)
            lines = _REQUEST_LINE.findall(self._latest_head) or _REQUEST_LINE.findall(self._request_head)
            path = lines[-1].decode("latin-1") if lines else ""
            error = parser_refusal(err_info.exc, err_info.message or "")
            return self._refusal(path, name_bad_header(error, self._request_head or self._latest_head))

        return refuse

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; refuses once a response started
        error: MockError
        if status == 500:
            error = InternalError(f"Internal mock error: {type(exc).__name__ if exc else 'unknown'}")
        else:
            error = MockError(HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error")
            error.status = status
        return self._refusal(request.path, error)

    def _refusal(self, path: str, error: MockError) -> web.Response:
        manager = self._manager
        assert isinstance(manager, EnvelopedServer)  # only EnvelopedServer makes these
        response = refusal(manager.mounts, path, error)
        response.force_close()
        return response


class EnvelopedServer(Server):
    """aiohttp's server, making `EnvelopedRequestHandler`s; `enveloped` turns one made by
    `AppRunner` into this (the runner builds its server itself)."""

    mounts: Mounts
    batch: WriteBatch  # `send` writes kept-alive answers through it

    def __call__(self) -> HttpProtocol:
        return EnvelopedRequestHandler(self, loop=self._loop, **self._kwargs)



def enveloped(server: Server, mounts: Mounts) -> None:
    """Make `server` answer the framework's own refusals in the vendors' envelopes (above)."""
    server.__class__ = EnvelopedServer
    assert isinstance(server, EnvelopedServer)
    server.mounts = mounts
    server.batch = WriteBatch()
    make_request = server.request_factory

    def request_factory(
        message: Any, payload: Any, protocol: HttpProtocol, writer: Any, task: Any
    ) -> web.BaseRequest:
        # the parser's refusals are made for a placeholder HTTP/1.0 request: answer as HTTP/1.1
        return make_request(_ERROR_11 if message is ERROR else message, payload, protocol, writer, task)

    server.request_factory = request_factory
