"""The proxy's HTTP/1.1 client on both event loops `--loop` offers (uvloop's transports are not
`asyncio.Transport` subclasses), and its per-exchange timeout: a vendor that never answers is a
TimeoutError after the timeout, and the pool stays usable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from yarl import URL

from mock_server.eventloop import resolve
from mock_server.proxy.upstream import UpstreamPool

LOOPS = [
    "asyncio",
    pytest.param("uvloop", marks=pytest.mark.skipif(resolve("auto").name != "uvloop", reason="no uvloop")),
]


def run_on(loop_name: str, main: Callable[[], object]) -> object:
    with asyncio.Runner(loop_factory=resolve(loop_name).factory) as runner:
        return runner.run(main())  # type: ignore[arg-type]


async def vendor(answer_slow: bool) -> tuple[asyncio.Server, URL]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if answer_slow and head.startswith(b"GET /base/slow"):
                    await asyncio.sleep(5)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Seen: " + head.split(b" ")[1] + b"\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/base")


@pytest.mark.parametrize("loop_name", LOOPS)
def test_the_pool_answers_and_reuses_its_connection_on_each_loop(loop_name: str) -> None:
    async def main() -> list[tuple[int, bytes, str]]:
        server, base = await vendor(answer_slow=False)
        pool = UpstreamPool(base, max_body=100)
        answers = [await pool.request("GET", f"/x{n}", [], b"", timeout=5) for n in range(3)]
        idle = len(pool._idle)
        pool.close()
        server.close()
        assert idle == 1  # one connection served all three
        return [(a.status, a.body, dict(a.headers)["X-Seen"]) for a in answers]

    assert run_on(loop_name, main) == [(200, b"ok", f"/base/x{n}") for n in range(3)]


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_vendor_slower_than_the_timeout_is_a_timeout_and_the_next_exchange_works(loop_name: str) -> None:
    async def main() -> tuple[type[BaseException], float, bytes]:
        server, base = await vendor(answer_slow=True)
        pool = UpstreamPool(base, max_body=100)
        began = time.monotonic()
        with pytest.raises(TimeoutError) as raised:
            await pool.request("GET", "/slow", [], b"", timeout=0.3)
        waited = time.monotonic() - began
        after = await pool.request("GET", "/fast", [], b"", timeout=5)
        pool.close()
        server.close()
        return raised.type, waited, after.body

    kind, waited, body = run_on(loop_name, main)  # type: ignore[misc]
    assert kind is TimeoutError
    assert 0.25 < waited < 2.0
    assert body == b"ok"
