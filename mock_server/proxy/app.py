"""The proxy's HTTP edge: forward each request to the vendor unchanged, hand the vendor's answer
back unchanged (byte for byte), and on the side check both against the API's spec, journal the
exchange (`/__admin/requests`) and append it to a HAR file. Findings never block traffic."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from mock_server.apis.registry import definitions
from mock_server.clock import isoformat
from mock_server.dispatcher import dump_json
from mock_server.drift.compare import Flat
from mock_server.drift.har import HarWriter, build_entry, redact_header
from mock_server.drift.speccheck import ApiSpec, Check, Checker, load_api
from mock_server.envelopes import ENVELOPES, Envelope
from mock_server.errors import MockError, PayloadTooLarge
from mock_server.journal import Journal, JournalEntry

log = logging.getLogger("mock_server.proxy")

# RFC 9110 section 7.6.1 hop-by-hop headers, plus what the HTTP library sets itself per hop
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


MAX_BODY_BYTES = 64 * 1024 * 1024


class UpstreamUnreachable(MockError):
    status, kind = 502, "bad_gateway"


class UpstreamTimeout(MockError):
    status, kind = 504, "gateway_timeout"


@dataclass
class Upstream:
    slug: str
    base: URL
    api: ApiSpec
    checker: Checker
    envelope: Envelope
    error_media_type: str


@dataclass
class ProxyState:
    upstreams: dict[str, Upstream]
    timeout: float
    journal: Journal
    har: HarWriter | None = None
    session: aiohttp.ClientSession | None = None
    exchanges: int = 0
    violations: int = 0
    pending: set[asyncio.Task[Any]] = field(default_factory=set)


PROXY = web.AppKey("proxy", ProxyState)


def build_state(
    upstreams: dict[str, str],
    *,
    timeout: float = 30.0,
    har_path: str | None = None,
    journal_max_entries: int = 10_000,
    journal_max_bytes: int = 32 * 1024 * 1024,
) -> ProxyState:
    available = definitions()
    built: dict[str, Upstream] = {}
    for slug, url in upstreams.items():
        definition = available[slug]
        api = load_api(slug, definition.spec_name)
        built[slug] = Upstream(
            slug=slug,
            base=URL(url.rstrip("/")),
            api=api,
            checker=Checker(api),
            envelope=ENVELOPES[definition.envelope],
            error_media_type=definition.error_media_type,
        )
    return ProxyState(
        upstreams=built,
        timeout=timeout,
        journal=Journal(journal_max_entries, journal_max_bytes),
        har=HarWriter(har_path) if har_path else None,
    )


def _forwarded_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    connection = {t.strip().lower() for t in headers.get("Connection", "").split(",") if t.strip()}
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP | connection)


def _decoded(raw: bytes, encoding: str) -> bytes:
    """The body to validate (the client still gets the vendor's bytes as they came)."""
    encoding = encoding.strip().lower()
    try:
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
    except (OSError, zlib.error, EOFError):
        return b""
    return raw


def _parsed(raw: bytes) -> tuple[Any, frozenset[str]] | None:
    """The JSON body with its shape, so answers of one shape share one walk of the schema."""
    if not raw:
        return None
    try:
        flat = Flat(json.loads(raw))
    except (ValueError, RecursionError):
        return None  # the checker reports what is wrong with it
    return flat.values[""], frozenset(flat.shape)


def _json_headers(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> dict[str, str]:
    shown: dict[str, str] = {}
    for key, value in headers.items():
        shown[key] = redact_header(key, value)
    return shown


async def _forward(
    state: ProxyState, upstream: Upstream, request: web.Request, raw_path: str, path: str
) -> web.StreamResponse:
    """`raw_path` (as the client encoded it) goes to the vendor; `path` (decoded) is checked."""
    started_wall = datetime.now(UTC)
    started = time.perf_counter()
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        error = PayloadTooLarge(f"The request body is over {MAX_BODY_BYTES} bytes, the proxy's limit")
        return web.Response(
            body=dump_json(upstream.envelope(error)), status=413, content_type=upstream.error_media_type
        )
    query = request.rel_url.raw_query_string
    target = URL(str(upstream.base) + raw_path + (f"?{query}" if query else ""), encoded=True)
    headers = _forwarded_headers(request.headers)
    assert state.session is not None
    status: int
    status_text: str
    response_headers: CIMultiDict[str]
    payload: bytes
    failure: MockError | None = None
    try:
        async with state.session.request(
            request.method,
            target,
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=state.timeout),
        ) as answer:
            payload = await answer.read()
            status, status_text = answer.status, answer.reason or ""
            response_headers = CIMultiDict(answer.headers)
    except TimeoutError:
        failure = UpstreamTimeout(
            f"The vendor at {upstream.base} did not answer within {state.timeout:g} seconds (proxy timeout)"
        )
    except (aiohttp.ClientError, OSError) as exc:
        failure = UpstreamUnreachable(
            f"The vendor at {upstream.base} could not be reached: {type(exc).__name__}: {exc}"
        )
    if failure is not None:
        status, status_text = failure.status, "Bad Gateway" if failure.status == 502 else "Gateway Timeout"
        payload = dump_json(upstream.envelope(failure))
        response_headers = CIMultiDict({"Content-Type": upstream.error_media_type})
    duration_ms = (time.perf_counter() - started) * 1000

    check = Check()
    try:
        upstream.checker.request(check, request.method, path, query, request.headers, body)
        if failure is None:
            decoded = _decoded(payload, response_headers.get("Content-Encoding", ""))
            upstream.checker.response(check, status, response_headers, decoded, _parsed(decoded))
    except Exception as exc:  # a checker bug must never cost the client its answer
        log.exception("checking %s %s failed", upstream.slug, path)
        check.violations.append(
            {
                "direction": "response",
                "kind": "checker_error",
                "message": f"{type(exc).__name__}: {exc}",
                "location": upstream.api.file,
                "provenance": "seed",
                "provenance_location": "",
            }
        )
    try:
        _record(
            state,
            upstream,
            request,
            path,
            query,
            body,
            status,
            status_text,
            response_headers,
            payload,
            started_wall,
            duration_ms,
            check,
            failure,
        )
    except Exception:  # recording must never cost the client its answer
        log.exception("recording %s %s failed", upstream.slug, path)

    out_headers = CIMultiDict((k, v) for k, v in response_headers.items() if k.lower() not in HOP_BY_HOP)
    return web.Response(body=payload, status=status, reason=status_text or None, headers=out_headers)


def _record(
    state: ProxyState,
    upstream: Upstream,
    request: web.Request,
    path: str,
    query: str,
    body: bytes,
    status: int,
    status_text: str,
    response_headers: CIMultiDict[str],
    payload: bytes,
    started: datetime,
    duration_ms: float,
    check: Check,
    failure: MockError | None,
) -> None:
    op_id = check.operation.operation_id if check.operation else None
    violations = [{k: v for k, v in violation.items() if k != "provenance_location"} for violation in check.violations]
    state.exchanges += 1
    state.violations += len(violations)
    for violation in violations:
        log.warning(
            "%s %s %s %s: %s %s at %s (%s)",
            upstream.slug,
            op_id or "-",
            violation["direction"],
            violation.get("pointer") or "-",
            violation["kind"],
            violation["message"],
            violation["location"],
            violation["provenance"],
        )
    if failure is not None:
        log.error("%s %s %s: %s", upstream.slug, request.method, path, failure.message)
    state.journal.append(
        JournalEntry(
            0,
            started,
            upstream.slug,
            op_id,
            request.method,
            path,
            status,
            {"headers": _json_headers(request.headers), "query": query, "raw": body},
            {"headers": _json_headers(response_headers), "raw": payload},
            violations,
            "proxy" if failure is None else failure.kind,
            round(duration_ms, 3),
            len(body) + len(payload) + 512,
        )
    )
    if state.har is not None:
        url = str(upstream.base) + path + (f"?{query}" if query else "")
        entry = build_entry(
            started=isoformat(started),
            duration_ms=duration_ms,
            method=request.method,
            url=url,
            request_headers=[(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP],
            request_body=body,
            status=status,
            status_text=status_text,
            response_headers=[(k, v) for k, v in response_headers.items() if k.lower() != "content-length"],
            response_body=_decoded(payload, response_headers.get("Content-Encoding", "")),
            extra={"_api": upstream.slug, "_path": path, "_operationId": op_id, "_violations": violations},
        )
        try:
            state.har.append(entry)
        except OSError as exc:  # a full disk: say so, keep proxying
            log.error("cannot append to the HAR file %s: %s", state.har.path, exc)


async def _admin(state: ProxyState, request: web.Request, tail: str) -> web.StreamResponse:
    if tail == "/health" and request.method == "GET":
        body: Any = {"status": "ok", "apis": list(state.upstreams), "mode": "proxy", "exchanges": state.exchanges}
        return web.Response(body=dump_json(body), content_type="application/json")
    if tail == "/requests" and request.method == "DELETE":
        state.journal.clear()
        return web.Response(status=204)
    if tail == "/requests" and request.method == "GET":
        since_raw = request.query.get("since")
        since: int | datetime | None = None
        if since_raw:
            try:
                since = int(since_raw)
            except ValueError:
                try:
                    since = datetime.fromisoformat(since_raw.replace("Z", "+00:00"))
                except ValueError:
                    return _problem(400, f"query.since: expected an entry id or an ISO-8601 time, got {since_raw!r}")
        entries = state.journal.entries(
            api=request.query.get("api"), operation_id=request.query.get("operation_id"), since=since
        )
        return web.Response(body=dump_json([e.as_dict() for e in entries]), content_type="application/json")
    return _problem(404, f"The proxy's admin API has /health and /requests only; no {request.method} {tail}")


def _problem(status: int, detail: str) -> web.Response:
    body = {
        "type": "about:blank",
        "title": "Not Found" if status == 404 else "Bad Request",
        "status": status,
        "detail": detail,
    }
    return web.Response(body=dump_json(body), status=status, content_type="application/problem+json")


async def _session_ctx(app: web.Application) -> Any:
    state = app[PROXY]
    state.session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=False),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )
    yield
    await state.session.close()
    if state.har is not None:
        state.har.close()


def create_proxy_app(state: ProxyState) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[PROXY] = state
    app.cleanup_ctx.append(_session_ctx)
    single = next(iter(state.upstreams.values())) if len(state.upstreams) == 1 else None

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/__admin" or path.startswith("/__admin/"):
            return await _admin(state, request, path[len("/__admin") :])
        segment, _, rest = path[1:].partition("/")
        upstream = state.upstreams.get(segment)
        if upstream is not None:
            raw = request.raw_path.split("?", 1)[0]
            raw_tail = "/" + raw[len(segment) + 2 :] if rest or raw.endswith("/") else "/"
            return await _forward(state, upstream, request, raw_tail, "/" + rest)
        if single is not None:
            return await _forward(state, single, request, request.raw_path.split("?", 1)[0], path)
        mounted = ", ".join(f"/{slug}" for slug in state.upstreams)
        return _problem(404, f"No API is proxied at {path}; proxied: {mounted} and /__admin")

    app.router.add_route("*", "/{tail:[\\s\\S]*}", handle)
    return app
