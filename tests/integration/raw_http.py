"""Raw HTTP/1.1 over a socket, for tests that look at the bytes on the wire, on either event loop."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

LOOPS = ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed here"))]  # fmt: skip


def run_on(loop: str, coroutine: Coroutine[Any, Any, T]) -> T:
    """`coroutine` run to its end on a new loop of that name (`LOOPS`)."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"", version: str = "1.1") -> bytes:
    """A request's bytes (with Content-Length when it has a body)."""
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1:1", *(f"{k}: {v}" for k, v in headers.items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(port: int, data: bytes) -> bytes:
    """Send `data` on a new connection and read until the server closes it (the last request
    asks it to: `Connection: close`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    stream = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return stream
