"""The pipeline's answers (`dispatcher.send`, issue 20) leave as the very bytes aiohttp's own
`web.Response` writes — status line, headers in the same order, body, keep-alive or close — for
every kind of answer, on both event loops; the lean path is the one taken for a plain HTTP/1.1
answer, and aiohttp's own for the rest (HEAD, HTTP/1.0, no body)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from aiohttp import web

from mock_server import dispatcher
from mock_server.app import create_app, start_runner
from mock_server.settings import Settings
from tests.integration.raw_http import LOOPS, exchange, request_bytes, run_on


async def _raw(port: int, data: bytes) -> bytes:
    return re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: (now)", await exchange(port, data))


async def _exchanges() -> tuple[list[bytes], int]:
    """The raw answers to a fixed set of requests, and how many went aiohttp's own way."""
    app = create_app(Settings(port=0, apis=("customtrades", "loke"), customtrades_quota=0))
    runner = await start_runner(app)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    through_aiohttp = 0
    original = web.Response.prepare

    async def counted(self: web.Response, request: web.BaseRequest) -> Any:
        nonlocal through_aiohttp
        through_aiohttp += 1
        return await original(self, request)

    answers: list[bytes] = []
    try:
        close = {"Connection": "close"}
        await _raw(port, request_bytes("POST", "/__admin/clock", {**close, "Content-Type": "application/json"},
                                  b'{"set": "2026-03-02T09:00:00Z", "frozen": true}'))  # fmt: skip
        credentials = await _raw(port, request_bytes("GET", "/__admin/credentials", close))
        key = json.loads(credentials.split(b"\r\n\r\n", 1)[1])["customtrades"]["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        body = b'{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}'
        created = await _raw(port, request_bytes("POST", "/customtrades/v1/customers",
                                            {**auth, **close, "Content-Type": "application/json"}, body))  # fmt: skip
        uuid = json.loads(created.split(b"\r\n\r\n", 1)[1])["data"]["uuid"]
        one = f"/customtrades/v1/customers/{uuid}"
        web.Response.prepare = counted  # type: ignore[method-assign,assignment]
        unknown = "/customtrades/v1/customers/00000000-0000-4000-8000-000000000000"
        json_auth = {**auth, **close, "Content-Type": "application/json"}
        plain = [
            request_bytes("GET", one, {**auth, **close}),  # 200 with the domain's headers
            request_bytes("GET", one, auth) + request_bytes("GET", one, {**auth, **close}),  # kept alive, then closed
            request_bytes("GET", unknown, {**auth, **close}),  # 404 in the envelope
            request_bytes("DELETE", "/customtrades/v1/customers", {**auth, **close}),  # 405 with Allow
            request_bytes("POST", "/customtrades/v1/customers", json_auth, b'{"first_name": 1}'),  # 400
            request_bytes("GET", "/customtrades/v1/customers", close),  # 401
            request_bytes("GET", "/loke/nowhere", close),  # another API's envelope
        ]
        for request in plain:
            answers.append(await _raw(port, request))
        lean_misses = through_aiohttp
        for request in (
            request_bytes("HEAD", one, {**auth, **close}),
            request_bytes("GET", one, auth, version="1.0"),
            request_bytes("DELETE", "/__admin/requests", close),  # 204: no body
        ):
            answers.append(await _raw(port, request))
    finally:
        web.Response.prepare = original  # type: ignore[method-assign]
        await runner.cleanup()
    return answers, lean_misses


def _run(loop: str, lean: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], int]:
    with monkeypatch.context() as patch:
        if not lean:  # every answer the way aiohttp writes a web.Response
            patch.setattr(dispatcher, "send", lambda request, status, headers, body, closing=False:
                          dispatcher._response(status, headers, body, closing))  # fmt: skip
        return run_on(loop, _exchanges())


@pytest.mark.parametrize("loop", LOOPS)
def test_lean_answers_are_the_bytes_aiohttp_writes(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lean, lean_misses = _run(loop, True, monkeypatch)
    reference, reference_misses = _run(loop, False, monkeypatch)
    assert lean_misses == 0  # the plain answers all took the lean path
    assert reference_misses > 0  # (and the reference run did go through aiohttp's own)
    assert lean == reference
    statuses = [answer.split(b" ", 2)[1] for answer in lean]
    assert statuses == [b"200", b"200", b"404", b"405", b"400", b"401", b"404", b"200", b"200", b"204"]
    kept_alive, closed = lean[1].split(b"HTTP/1.1 ")[1:]
    assert b"Connection" not in kept_alive and b"\r\nConnection: close\r\n" in closed
    assert lean[0].index(b"X-Usage-Count") < lean[0].index(b"Content-Length") < lean[0].index(b"Server")
    assert lean[7].endswith(b"\r\n\r\n") and b"Content-Length: " in lean[7]  # HEAD: the length, no body


SHAPES: list[dict[str, Any]] = [
    {"body": b"\x00\x01 bytes", "headers": {}},  # no Content-Type: aiohttp's octet-stream, after the length
    {"body": b"{}", "headers": {"Content-Type": "application/json", "Location": "/a?b=c"}},
    {"body": b"", "headers": {"X-Empty": ""}},  # an empty body and an empty value
    {"body": None, "headers": {}, "status": 200},
    {"body": b"x", "headers": {"X-Tab": "a\tb"}},  # a tab: aiohttp's own path
    {"body": b"x", "headers": {"X-Name": "caf\u00e9"}},  # non-ASCII: aiohttp's own path
    {"body": b"x", "headers": {"Connection": "close"}},  # one of the headers aiohttp manages
    {"body": b"x", "headers": {"content-length": "1"}},  # one it manages, in another case
    {"body": b"gone", "headers": {"Content-Type": "text/plain"}, "status": 410},
    {"body": b"{}", "headers": {"content-type": "application/json"}},  # its own type, lower case: no other
    # a Date and a Server of its own (the proxy forwards the vendor's) stay where they are, no second
    {"body": b"{}", "headers": {"Server": "vendor/1", "X-A": "1", "Date": "Mon, 01 Jan 2024 00:00:00 GMT"}},
    {"body": b"no", "headers": {"X-B": "2"}, "status": 418, "reason": "Not Today"},  # the vendor's reason
    {"body": b"odd", "headers": [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]},  # pairs, a name twice
]


async def _shapes(lean: bool) -> list[bytes]:
    async def answer(request: web.BaseRequest) -> web.StreamResponse:
        shape = SHAPES[int(request.path.strip("/"))]
        status, headers, body, reason = shape.get("status", 200), shape["headers"], shape["body"], shape.get("reason")
        if lean:
            return dispatcher.send(request, status, headers, body, reason=reason)
        return web.Response(body=body, status=status, reason=reason, headers=headers)

    server = web.Server(answer, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        return [await _raw(port, request_bytes("GET", f"/{i}", {"Connection": "close"})) for i in range(len(SHAPES))]
    finally:
        await runner.cleanup()


def test_every_shape_of_answer_is_written_as_aiohttp_writes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = asyncio.run(_shapes(False))
    handed_back: list[str] = []
    original = web.Response.prepare

    async def counted(self: web.Response, request: web.BaseRequest) -> Any:
        handed_back.append(request.path)
        return await original(self, request)

    monkeypatch.setattr(web.Response, "prepare", counted)
    lean = asyncio.run(_shapes(True))
    assert lean == reference
    assert handed_back == ["/4", "/5", "/6", "/7"]  # the tab, the non-ASCII value, the managed headers
    assert b"Content-Length: 8\r\nContent-Type: application/octet-stream\r\nDate" in lean[0]
