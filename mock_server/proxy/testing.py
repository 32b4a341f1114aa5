"""Run the proxy in-process for tests, on a free port in a daemon thread (like `MockServer`)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from aiohttp import web

from mock_server.proxy.app import ProxyState, build_state, create_proxy_app


class ProxyServer:
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
        ready: Future[int] = Future()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            self.state = build_state(self.upstreams, **self.options)
            self._runner = web.AppRunner(create_proxy_app(self.state), handle_signals=False, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, self.host, 0).start()
            ready.set_result(int(self._runner.addresses[0][1]))

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(boot())
            except BaseException as exc:
                if not ready.done():
                    ready.set_exception(exc)
                return
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="loyalty-mock-proxy", daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=120)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)
        loop.close()
        self._loop = None

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, slug: str, path: str = "") -> str:
        return f"{self.base_url}/{slug}{path}"
