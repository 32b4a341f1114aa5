"""Writes of one pass of the event loop, made together (issue 20): pure asyncio, used for the
answers of the mock and of the recording proxy (`dispatcher.send`)."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("mock_server")


class WriteBatch:
    """The answers of one pass of the event loop, written together at the start of the next pass
    (before it reads anything new), instead of each as it is made. Each write to a socket whose
    reader sleeps wakes that reader; on one host, with the reader on another core, that wake-up was
    the largest single cost of an answer (14 % of a GET's CPU: the kernel's `sock_def_readable`).
    Written together, a pass's writes wake a reader once. A write waits at most for the rest of its
    pass; per connection the order is kept (what a connection does next is handled in a later pass,
    after this flush). A write to a transport closing by then is dropped, as the transport itself
    would drop it. `dispatcher.send` queues only kept-alive answers: one that closes its connection
    leaves at once."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[tuple[asyncio.Transport, bytes]] = []

    def write(self, transport: asyncio.Transport, data: bytes) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append((transport, data))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for transport, data in pending:
            if transport.is_closing():  # the reader went away meanwhile: as a write to it would
                continue
            try:
                transport.write(data)
            except Exception:  # one broken transport must not keep the others' writes
                log.exception("writing an answer failed")
