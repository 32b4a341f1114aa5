"""The proxy's HTTP edge: forward each request to the vendor unchanged, hand the vendor's answer
back unchanged (byte for byte), and on the side check both against the API's spec, journal the
exchange (`/__admin/requests`) and append it to a HAR file. Findings never block traffic.

Per exchange, in order: read the client's body; send the request to the vendor on a kept-alive
connection (`upstream.UpstreamPool`); check the request against the spec while the vendor works
on it; check the answer; journal it; append the HAR entry (one write: the exchange is on disk
before the client has its answer, so a crash never loses an answered exchange); answer. The
server hands every request straight to `handle` (`start_proxy_runner`), without aiohttp's URL
resolution and middleware chain, as the mock's `dispatcher.fast_path` does.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from mock_server.apis.registry import definitions
from mock_server.clock import isoformat
from mock_server.dispatcher import dump_json, send
from mock_server.drift.har import HarWriter, build_entry, redact_header
from mock_server.drift.speccheck import ApiSpec, Check, Checker, load_api
from mock_server.envelopes import ENVELOPES, Envelope
from mock_server.errors import MockError, PayloadTooLarge
from mock_server.journal import Journal, JournalEntry
from mock_server.proxy.upstream import UpstreamConnectionError, UpstreamPool, UpstreamProtocolError
from mock_server.write_batch import WriteBatch

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
    pool: UpstreamPool


@dataclass
class ProxyState:
    upstreams: dict[str, Upstream]
    timeout: float
    journal: Journal
    har: HarWriter | None = None
    exchanges: int = 0
    violations: int = 0


PROXY = web.AppKey("proxy", ProxyState)
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def build_state(
    upstreams: dict[str, str],
    *,
    timeout: float = 30.0,
    har_path: str | None = None,
    journal_max_entries: int = 10_000,
    journal_max_bytes: int = 32 * 1024 * 1024,
) -> ProxyState:
    """Raises ValueError for an upstream URL the proxy cannot use, OSError for an unwritable HAR."""
    available = definitions()
    built: dict[str, Upstream] = {}
    for slug, url in upstreams.items():
        definition = available[slug]
        api = load_api(slug, definition.spec_name)
        base = URL(url.rstrip("/"))
        built[slug] = Upstream(
            slug=slug,
            base=base,
            api=api,
            checker=Checker(api),
            envelope=ENVELOPES[definition.envelope],
            error_media_type=definition.error_media_type,
            pool=UpstreamPool(base, max_body=MAX_BODY_BYTES),
        )
    return ProxyState(
        upstreams=built,
        timeout=timeout,
        journal=Journal(journal_max_entries, journal_max_bytes),
        har=HarWriter(har_path) if har_path else None,
    )


def _forwarded_headers(headers: CIMultiDictProxy[str]) -> list[tuple[str, str]]:
    """The client's headers for the next hop: all but the hop-by-hop ones and those `Connection` names."""
    connection = headers.get("Connection")
    if connection:
        dropped = HOP_BY_HOP | {t.strip().lower() for t in connection.split(",") if t.strip()}
    else:
        dropped = HOP_BY_HOP
    return [(k, v) for k, v in headers.items() if k.lower() not in dropped]


def _decoded(raw: bytes, encoding: str) -> bytes:
    """The body to validate (the client still gets the vendor's bytes as they came)."""
    if not encoding:
        return raw
    encoding = encoding.strip().lower()
    try:
        if encoding in ("gzip", "x-gzip"):
            return gzip.decompress(raw)
        if encoding == "deflate":
            return zlib.decompress(raw)
    except (OSError, zlib.error, EOFError):
        return b""
    return raw


def shape_key(value: Any) -> frozenset[str]:
    """The folded JSON pointers of a value (array indices as `*`): what the checker's walk of the
    schema depends on, so answers of one shape share one walk. The same set as
    `frozenset(drift.compare.Flat(value).shape)`, without building the pointer -> value map."""
    seen: set[str] = set()
    add = seen.add
    stack: list[tuple[str, Any]] = [("", value)]
    pop, push = stack.pop, stack.append
    while stack:
        folded, node = pop()
        add(folded)
        kind = type(node)
        if kind is dict:
            for key, child in node.items():
                if "~" in key or "/" in key:
                    key = key.replace("~", "~0").replace("/", "~1")
                push((f"{folded}/{key}", child))
        elif kind is list:
            item = folded + "/*"
            for child in node:
                push((item, child))
    return frozenset(seen)


# a run of digits an integer beyond 64 bits could be written with: orjson would read it as a float
_LONG_DIGITS = re.compile(rb"\d{19}")


def _parsed(raw: bytes) -> tuple[Any, frozenset[str]] | None:
    """The JSON body with its shape, so answers of one shape share one walk of the schema. The
    value is what the standard library reads (as `drift` does): orjson, several times faster,
    where it reads the same; `json` for what it refuses (UTF-16, NaN, 1e400) or would read
    otherwise (integers beyond 64 bits, which it turns into floats)."""
    if not raw:
        return None
    try:
        if _LONG_DIGITS.search(raw) is not None:
            raise ValueError("maybe an integer beyond 64 bits")
        document = orjson.loads(raw)
    except ValueError:  # orjson.JSONDecodeError is one
        try:
            document = json.loads(raw)
        except (ValueError, RecursionError):
            return None  # the checker reports what is wrong with it
    return document, shape_key(document)


class RedactedHeaders(Mapping[str, str]):
    """Headers as the journal shows them, redacted when read (`/__admin/requests`), not on every
    exchange: a view of the pairs, secret values replaced (`har.redact_header`)."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def _shown(self) -> dict[str, str]:
        return {k: redact_header(k, v) for k, v in self._pairs}

    def __getitem__(self, key: str) -> str:
        return self._shown()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._shown())

    def __len__(self) -> int:
        return len(self._shown())

    def items(self) -> Any:
        return self._shown().items()


def _checker_error(upstream: Upstream, direction: str, exc: Exception) -> dict[str, Any]:
    return {
        "direction": direction,
        "kind": "checker_error",
        "message": f"{type(exc).__name__}: {exc}",
        "location": upstream.api.file,
        "provenance": "seed",
        "provenance_location": "",
    }


async def _forward(
    state: ProxyState, upstream: Upstream, request: web.BaseRequest, raw_path: str, path: str
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
    method = request.method
    query = request.rel_url.raw_query_string
    headers = request.headers
    check = Check()
    checked: list[bool] = []

    def check_request() -> None:  # runs while the vendor works on the request
        checked.append(True)
        try:
            upstream.checker.request(check, method, path, query, headers, body)
        except Exception as exc:  # a checker bug must never cost the client its answer
            log.exception("checking %s %s failed", upstream.slug, path)
            check.violations.append(_checker_error(upstream, "request", exc))

    failure: MockError | None = None
    try:
        answer = await upstream.pool.request(
            method,
            f"{raw_path}?{query}" if query else raw_path,
            _forwarded_headers(headers),
            body,
            check_request,
            state.timeout,
        )
    except TimeoutError:
        failure = UpstreamTimeout(
            f"The vendor at {upstream.base} did not answer within {state.timeout:g} seconds (proxy timeout)"
        )
    except UpstreamConnectionError as exc:
        failure = UpstreamUnreachable(f"The vendor at {upstream.base} could not be reached: {exc}")
    except UpstreamProtocolError as exc:
        failure = UpstreamUnreachable(f"The vendor at {upstream.base} sent an answer the proxy cannot read: {exc}")
    if not checked:  # the request never went out
        check_request()
    if failure is None:
        status, status_text, answer_pairs, payload = answer.status, answer.reason, answer.headers, answer.body
    else:
        status, status_text = failure.status, "Bad Gateway" if failure.status == 502 else "Gateway Timeout"
        payload = dump_json(upstream.envelope(failure))
        answer_pairs = [("Content-Type", upstream.error_media_type)]
    duration_ms = (time.perf_counter() - started) * 1000
    response_headers = CIMultiDict(answer_pairs)
    decoded = _decoded(payload, response_headers.get("Content-Encoding", ""))

    if failure is None:
        try:
            media = response_headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            parsed = _parsed(decoded) if media.endswith("json") else None
            upstream.checker.response(check, status, response_headers, decoded, parsed)
        except Exception as exc:  # a checker bug must never cost the client its answer
            log.exception("checking %s %s failed", upstream.slug, path)
            check.violations.append(_checker_error(upstream, "response", exc))
    try:
        _record(
            state,
            upstream,
            method,
            headers,
            path,
            query,
            body,
            status,
            status_text,
            answer_pairs,
            response_headers,
            payload,
            decoded,
            started_wall,
            duration_ms,
            check,
            failure,
        )
    except Exception:  # recording must never cost the client its answer
        log.exception("recording %s %s failed", upstream.slug, path)

    out_headers = [(k, v) for k, v in answer_pairs if k.lower() not in HOP_BY_HOP]
    return send(request, status, out_headers, payload, reason=status_text or None)


def _record(
    state: ProxyState,
    upstream: Upstream,
    method: str,
    request_headers: CIMultiDictProxy[str],
    path: str,
    query: str,
    body: bytes,
    status: int,
    status_text: str,
    answer_pairs: list[tuple[str, str]],
    response_headers: CIMultiDict[str],
    payload: bytes,
    decoded: bytes,
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
        log.error("%s %s %s: %s", upstream.slug, method, path, failure.message)
    request_pairs = list(request_headers.items())
    state.journal.append(
        JournalEntry(
            0,
            started,
            upstream.slug,
            op_id,
            method,
            path,
            status,
            {"headers": RedactedHeaders(request_pairs), "query": query, "raw": body},
            {"headers": RedactedHeaders(answer_pairs), "raw": payload},
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
            method=method,
            url=url,
            request_headers=[(k, v) for k, v in request_pairs if k.lower() not in HOP_BY_HOP],
            request_body=body,
            status=status,
            status_text=status_text,
            response_headers=[(k, v) for k, v in answer_pairs if k.lower() != "content-length"],
            response_body=decoded,
            extra={"_api": upstream.slug, "_path": path, "_operationId": op_id, "_violations": violations},
        )
        try:
            state.har.append(entry)
        except OSError as exc:  # a full disk: say so, keep proxying
            log.error("cannot append to the HAR file %s: %s", state.har.path, exc)


async def _admin(state: ProxyState, request: web.BaseRequest, tail: str) -> web.StreamResponse:
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


async def _cleanup(app: web.Application) -> Any:
    state = app[PROXY]
    yield
    for upstream in state.upstreams.values():
        upstream.pool.close()
    if state.har is not None:
        state.har.close()


def proxy_handler(state: ProxyState) -> Handler:
    """The request handler: `/__admin/...`, `/<slug>/...`, and the root when one API is proxied."""
    single = next(iter(state.upstreams.values())) if len(state.upstreams) == 1 else None

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
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

    return handle


def create_proxy_app(state: ProxyState) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[PROXY] = state
    app.cleanup_ctx.append(_cleanup)
    app.router.add_route("*", "/{tail:[\\s\\S]*}", proxy_handler(state))
    return app


async def start_proxy_runner(state: ProxyState) -> web.AppRunner:
    """An AppRunner for the proxy whose server hands requests straight to the handler (no URL
    resolution, no middleware chain); `Expect: 100-continue` requests go through the app, which
    answers the 100. Sites are added by the caller."""
    runner = web.AppRunner(create_proxy_app(state), handle_signals=False, access_log=None)
    await runner.setup()
    server = runner.server
    assert server is not None
    routed: Handler = server.request_handler
    direct = proxy_handler(state)
    server.batch = WriteBatch()  # type: ignore[attr-defined]  # answers leave once per pass (`dispatcher.send`)

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if "Expect" in request.headers:
            return await routed(request)
        return await direct(request)

    server.request_handler = handle
    return runner
