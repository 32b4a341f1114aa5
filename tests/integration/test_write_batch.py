"""The pipeline's kept-alive answers leave together, at the start of the event loop's next pass
(`WriteBatch`, issue 20): each one reaches its own connection, in the order its
requests came (pipelined requests too, whichever path wrote each answer), an answer closing
its connection still leaves before the close, and a broken or closed transport costs no one
else's answer."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import web

from mock_server import dispatcher
from mock_server.app import create_app, start_runner
from mock_server.settings import Settings
from mock_server.write_batch import WriteBatch
from tests.integration.raw_http import LOOPS, exchange, request_bytes, run_on

UNKNOWN = "00000000-0000-4000-8000-000000000000"


class _Transport:
    def __init__(self, closing: bool = False, broken: bool = False) -> None:
        self.written: list[bytes] = []
        self.closing, self.broken = closing, broken

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        if self.broken:
            raise RuntimeError("broken")
        self.written.append(data)


def test_a_pass_s_answers_leave_together_at_the_next_pass(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        flushes = 0

        class Counted(WriteBatch):
            def flush(self) -> None:
                nonlocal flushes
                flushes += 1
                super().flush()

        batch = Counted()
        one, two, gone, broken = _Transport(), _Transport(), _Transport(closing=True), _Transport(broken=True)
        for transport, data in ((one, b"a"), (broken, b"x"), (two, b"b"), (gone, b"g"), (one, b"c")):
            batch.write(transport, data)  # type: ignore[arg-type]
        assert one.written == two.written == []  # nothing leaves during the pass
        await asyncio.sleep(0)
        assert (one.written, two.written, gone.written, flushes) == ([b"a", b"c"], [b"b"], [], 1)
        batch.write(two, b"d")  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert (two.written, flushes) == ([b"b", b"d"], 2)

    with caplog.at_level(logging.ERROR, logger="mock_server"):
        asyncio.run(scenario())
    assert "writing an answer failed" in caplog.text  # the broken one is logged, the others written


def _answers(stream: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each answer in a stream of HTTP/1.1 answers (Content-Length framed)."""
    found = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
        length = int(fields.get(b"Content-Length", b"0"))  # none on a 204
        found.append((status, rest[:length]))
        stream = rest[length:]
    return found


async def _server() -> tuple[web.AppRunner, int, dict[str, str], list[str]]:
    app = create_app(Settings(port=0, apis=("customtrades",), customtrades_quota=0))
    runner = await start_runner(app)
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_bytes("GET", "/__admin/credentials", {"Connection": "close"}))
    credentials = json.loads((await reader.read()).split(b"\r\n\r\n", 1)[1])
    writer.close()
    auth = {"Authorization": f"Bearer {credentials['customtrades']['api_key']}"}
    uuids = []
    for i in range(6):
        body = json.dumps({"first_name": f"Ada{i}", "last_name": "Lovelace"}).encode()
        fields = {**auth, "Connection": "close", "Content-Type": "application/json"}
        created = _answers(await exchange(port, request_bytes("POST", "/customtrades/v1/customers", fields, body)))
        uuids.append(json.loads(created[0][1])["data"]["uuid"])
    return runner, port, auth, uuids


@pytest.mark.parametrize("loop", LOOPS)
def test_pipelined_answers_come_back_in_order_whichever_path_wrote_them(
    loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    batched: list[bytes] = []
    write = WriteBatch.write

    def spied(self: WriteBatch, transport: Any, data: bytes) -> None:
        batched.append(data)
        write(self, transport, data)

    monkeypatch.setattr(WriteBatch, "write", spied)

    async def scenario() -> list[tuple[int, bytes]]:
        runner, port, auth, uuids = await _server()
        try:
            pipelined = b"".join(
                [
                    request_bytes("GET", f"/customtrades/v1/customers/{uuids[0]}", auth),  # batched
                    request_bytes("GET", f"/customtrades/v1/customers/{UNKNOWN}", auth),  # 404
                    request_bytes("GET", f"/customtrades/v1/customers/{uuids[1]}", auth),
                    request_bytes("DELETE", "/__admin/requests", {}),  # 204, no body: aiohttp's own path
                    request_bytes("GET", f"/customtrades/v1/customers/{uuids[2]}", auth),
                    request_bytes("GET", "/customtrades/v1/customers", {}),  # 401
                    request_bytes("GET", f"/customtrades/v1/customers/{uuids[3]}", {**auth, "Connection": "close"}),
                ]
            )
            return _answers(await exchange(port, pipelined))
        finally:
            await runner.cleanup()

    answers = run_on(loop, scenario())
    assert [status for status, _ in answers] == [200, 404, 200, 204, 200, 401, 200]
    got = [json.loads(body)["data"]["uuid"] for status, body in answers if status == 200]
    assert len(set(got)) == 4  # four different customers, in the order asked
    # the pipeline's kept-alive answers waited for their pass (refusals too); not the 204 (no body:
    # aiohttp's own path), nor the last (it closes the connection: it leaves before the close)
    assert [data.split(b" ", 2)[1] for data in batched] == [b"200", b"404", b"200", b"200", b"401"]


@pytest.mark.parametrize("loop", LOOPS)
def test_concurrent_connections_each_get_their_own_answers(loop: str) -> None:
    async def client(port: int, auth: dict[str, str], uuids: list[str]) -> list[str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        seen = []
        try:
            for uuid in uuids:  # one request at a time on this connection, kept alive
                writer.write(request_bytes("GET", f"/customtrades/v1/customers/{uuid}", auth))
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                seen.append(json.loads(await reader.readexactly(length))["data"]["uuid"])
        finally:
            writer.close()
        return seen

    async def scenario() -> None:
        runner, port, auth, uuids = await _server()
        try:
            plans = [[uuids[(i + j) % len(uuids)] for j in range(12)] for i in range(40)]
            results = await asyncio.gather(*(client(port, auth, plan) for plan in plans))
        finally:
            await runner.cleanup()
        assert results == plans  # every connection got exactly its own answers, in its order

    run_on(loop, scenario())


def test_a_body_already_here_is_taken_whole_and_still_bounded() -> None:
    """A body that arrived with its head is taken as it is (no waiting, `_read_body`): a chunked one
    (no length announced) over --max-body-bytes is still a 413 naming the bound, and one at the
    bound is read whole."""
    from mock_server.testing import MockServer

    def chunked(document: bytes) -> bytes:
        return f"{len(document):x}\r\n".encode() + document + b"\r\n0\r\n\r\n"

    with MockServer(Settings(port=0, apis=("customtrades",), customtrades_quota=0, max_body_bytes=64)) as mock:
        key = mock.credentials_cache()["customtrades"]["api_key"]
        fields = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Connection": "close"}
        head = request_bytes("POST", "/customtrades/v1/customers", {**fields, "Transfer-Encoding": "chunked"})
        fits = json.dumps({"first_name": "Ada", "last_name": "L", "notes": "x" * 12}).encode()
        over = json.dumps({"first_name": "Ada", "last_name": "L", "notes": "x" * 40}).encode()
        assert len(fits) <= 64 < len(over)
        (status, body), = _answers(asyncio.run(exchange(mock.port, head + chunked(fits))))
        assert status == 200 and json.loads(body)["data"]["notes"] == "x" * 12
        (status, body), = _answers(asyncio.run(exchange(mock.port, head + chunked(over))))
        assert status == 413 and "at most 64" in json.loads(body)["error"]


def test_the_shared_already_sent_answers_never_change() -> None:
    # every request that `send` answered itself hands aiohttp one of two shared markers: closing
    # one would close every later kept-alive connection, so it is refused
    for marker, kept in ((dispatcher._SENT_KEPT_ALIVE, True), (dispatcher._SENT_CLOSING, False)):
        with pytest.raises(RuntimeError, match="already written"):
            marker.force_close()
        assert marker.keep_alive is kept
