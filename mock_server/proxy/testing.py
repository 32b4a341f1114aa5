"""Run the proxy in-process for tests, on a free port in a daemon thread (like `MockServer`)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from mock_server.proxy.app import ProxyState, build_state, start_proxy_runner
from mock_server.testing import InThreadServer, start_in_thread, stop_thread


class ProxyServer(InThreadServer):
    def __init__(self, upstreams: dict[str, str], host: str = "127.0.0.1", **options: Any) -> None:
        self.upstreams = upstreams
        self.options = options
        self.host = host
        self.port = 0
        self.state: ProxyState | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self) -> ProxyServer:
        async def boot() -> int:
            self.state = build_state(self.upstreams, **self.options)
            self._runner = await start_proxy_runner(self.state)
            await web.TCPSite(self._runner, self.host, 0).start()
            return int(self._runner.addresses[0][1])

        self._loop, self._thread, self.port = start_in_thread(boot, "loyalty-mock-proxy")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        stop_thread(self._loop, self._thread, [self._runner])
        self._loop = None

    def url(self, slug: str, path: str = "") -> str:
        return f"{self.base_url}/{slug}{path}"
