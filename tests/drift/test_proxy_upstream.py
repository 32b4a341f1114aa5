"""The proxy's own HTTP/1.1 client (`mock_server.proxy.upstream`) against a scripted vendor that
writes raw bytes: every framing RFC 9112 allows, answers cut into pieces, kept-alive and stale
connections, and answers no proxy should pass on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import requests
from yarl import URL

from mock_server.proxy.testing import ProxyServer
from mock_server.proxy.upstream import (
    Answer,
    UpstreamConnectionError,
    UpstreamPool,
    UpstreamProtocolError,
)

Script = Callable[[int, bytes], Awaitable[list[bytes] | None]]


class Vendor:
    """Reads each request (head and Content-Length body) and writes what `script(n, request)`
    returns, piece by piece; None closes the connection without an answer."""

    def __init__(self, script: Script, close_after: bool = False) -> None:
        self.script = script
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> URL:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return URL(f"http://127.0.0.1:{port}/base")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                pieces = await self.script(len(self.requests), request)
                if pieces is None:
                    break
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        if self._tasks:  # the client has closed its side: each handler ends at its end of stream
            await asyncio.wait(self._tasks, timeout=5)
        await self.server.wait_closed()


def exchange(script: Script, calls: list[tuple[str, bytes]], close_after: bool = False) -> tuple[list[Any], Vendor]:
    """Run `calls` (method, body) one after another through one pool; each result is an Answer
    or the exception raised."""

    async def run() -> tuple[list[Any], Vendor]:
        vendor = Vendor(script, close_after)
        pool = UpstreamPool(await vendor.start(), max_body=1000)
        results: list[Any] = []
        for method, body in calls:
            try:
                async with asyncio.timeout(5):
                    results.append(await pool.request(method, "/x?q=1", [("X-Trace", "t")], body))
            except Exception as exc:
                results.append(exc)
        pool.close()
        await vendor.stop()
        return results, vendor

    return asyncio.run(run())


def always(*pieces: bytes) -> Script:
    async def script(n: int, request: bytes) -> list[bytes]:
        return list(pieces)

    return script


def test_the_request_goes_out_as_given_and_a_length_framed_answer_is_read_even_byte_by_byte() -> None:
    raw = (
        b"HTTP/1.1 201 Created Here\r\nContent-Type: application/json\r\n"
        b'X-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 7\r\n\r\n{"a":1}'
    )
    (answer, second), vendor = exchange(
        always(*[raw[i : i + 1] for i in range(len(raw))]), [("POST", b"{}"), ("GET", b"")]
    )
    assert isinstance(answer, Answer) and answer.status == 201 and answer.reason == "Created Here"
    assert answer.headers[1:3] == [("X-Dup", "1"), ("X-Dup", "2")] and answer.body == b'{"a":1}'
    assert second.body == b'{"a":1}' and vendor.connections == 1  # kept alive
    assert vendor.requests[0].startswith(b"POST /base/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nX-Trace: t\r\nContent-Length: 2\r\n\r\n{}" in vendor.requests[0]
    assert b"Content-Length" not in vendor.requests[1]  # a GET without a body says nothing of one


def test_chunked_answers_with_extensions_and_trailers_are_decoded() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    (first, second), vendor = exchange(always(raw[:20], raw[20:37], raw[37:]), [("GET", b""), ("GET", b"")])
    assert first.body == b"Wikipedia" and second.body == b"Wikipedia" and vendor.connections == 1


def test_interim_answers_are_skipped_and_answers_without_a_body_are_complete_at_once() -> None:
    async def script(n: int, request: bytes) -> list[bytes]:
        if n == 1:
            return [b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
        if n == 2:
            return [b"HTTP/1.1 204 No Content\r\n\r\n"]
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"]  # HEAD: the length of what GET would send

    results, vendor = exchange(script, [("GET", b""), ("DELETE", b""), ("HEAD", b"")])
    assert [(r.status, r.body) for r in results] == [(200, b"ok"), (204, b""), (200, b"")]
    assert vendor.connections == 1


def test_an_answer_delimited_by_the_close_is_read_to_the_end_and_the_connection_not_reused() -> None:
    results, vendor = exchange(
        always(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", b"all of ", b"it"),
        [("GET", b""), ("GET", b"")],
        close_after=True,
    )
    assert [r.body for r in results] == [b"all of it", b"all of it"] and vendor.connections == 2


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        (b"SPDY/3 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "status code"),
        (b"HTTP/1.1 200 OK\r\nNo colon here\r\nContent-Length: 0\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", "over 1000 bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX", "CRLF"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "switched protocols"),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000, "exceed"),
        (b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n", "exceed"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",  # the complaint names the case
)
def test_what_is_not_a_readable_answer_is_refused_naming_why(raw: bytes, complaint: str) -> None:
    (result,), _ = exchange(always(raw), [("GET", b"")])
    assert isinstance(result, UpstreamProtocolError) and complaint in str(result)


def test_a_connection_that_ends_inside_the_answer_is_a_connection_error() -> None:
    (result,), _ = exchange(
        always(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), [("GET", b"")], close_after=True
    )
    assert isinstance(result, UpstreamConnectionError) and "in the middle of the answer" in str(result)


def test_a_kept_alive_connection_the_vendor_dropped_is_retried_once_for_idempotent_methods_only() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def script(n: int, request: bytes) -> list[bytes] | None:
        return None if n in (2, 5) else [ok]  # requests 2 and 5 meet a connection closing under them

    results, vendor = exchange(script, [("GET", b""), ("GET", b""), ("POST", b"{}"), ("POST", b"{}")])
    assert [getattr(r, "body", None) for r in results[:3]] == [b"ok", b"ok", b"ok"]
    assert isinstance(results[3], UpstreamConnectionError)  # a POST may have been acted on: not resent
    assert [r.split(b" ", 1)[0] for r in vendor.requests] == [b"GET", b"GET", b"GET", b"POST", b"POST"]


def test_a_timed_out_exchange_closes_its_connection_so_a_late_answer_reaches_nobody() -> None:
    async def script(n: int, request: bytes) -> list[bytes]:
        if n == 1:
            await asyncio.sleep(0.5)
            return [b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate"]
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"]

    async def run() -> list[Any]:
        vendor = Vendor(script)
        pool = UpstreamPool(await vendor.start(), max_body=1000)
        results: list[Any] = []
        for timeout in (0.1, 5):
            try:
                async with asyncio.timeout(timeout):
                    results.append((await pool.request("GET", "/", [], b"")).body)
            except TimeoutError as exc:
                results.append(exc)
        pool.close()
        await vendor.stop()
        return results

    late, fresh = asyncio.run(run())
    assert isinstance(late, TimeoutError) and fresh == b"fresh"


def test_credentials_in_the_upstream_url_are_refused() -> None:
    with pytest.raises(ValueError, match="credentials in the upstream URL"):
        UpstreamPool(URL("http://user:pw@127.0.0.1:1/"), max_body=10)


def test_an_unreadable_answer_is_a_502_in_the_vendors_envelope_through_the_proxy() -> None:
    loop = asyncio.new_event_loop()
    vendor = Vendor(always(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"))
    base = loop.run_until_complete(vendor.start())
    import threading

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with ProxyServer({"customtrades": str(base)}) as proxy:
            answer = requests.get(f"{proxy.base_url}/customtrades/v1/customers", timeout=10)
            journal = requests.get(f"{proxy.base_url}/__admin/requests", timeout=10).json()
    finally:
        asyncio.run_coroutine_threadsafe(vendor.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
    assert answer.status_code == 502
    assert answer.json()["success"] is False and "invalid Content-Length" in answer.json()["error"]
    assert journal[-1]["source"] == "bad_gateway" and journal[-1]["status"] == 502
