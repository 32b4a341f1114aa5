"""Run the mock in-process for tests: one server per session on a free port, in a daemon thread.

    with MockServer(Settings(strict=True)) as mock:
        requests.get(mock.url("customtrades", "/v1/customers"), headers=...)
        mock.reset()

`MockServer(settings, port_per_api=True)` also serves each API at the root of a free port of its
own, on the same state (`loyalty-mock serve --port-per-api`): `mock.root_url("loke")`.

Used by this project's tests and by the `contracts` pytest plugin; speaks to the mock only over
HTTP (the admin API), except for `services`, which tests of the engine itself may inspect.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Any

import requests
from aiohttp import web

from mock_server.apis.base import Services
from mock_server.app import SERVICES, create_app, start_api_sites, start_runner
from mock_server.lifecycle import vendor_runtimes
from mock_server.settings import Settings


class MockServer:
    def __init__(
        self, settings: Settings | None = None, host: str = "127.0.0.1", *, port_per_api: bool = False
    ) -> None:
        self.settings = settings or Settings(port=0)
        self.host = host
        self.port = 0
        self.port_per_api = port_per_api
        self.api_ports: dict[str, int] = {}  # slug -> its own port (port_per_api)
        self._api_runners: list[web.AppRunner] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._app: web.Application | None = None
        self.session = requests.Session()
        self._credentials: dict[str, Any] | None = None

    # lifecycle
    def start(self) -> MockServer:
        ready: Future[int] = Future()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            self._app = create_app(self.settings)
            self._runner = await start_runner(self._app)
            site = web.TCPSite(self._runner, self.host, 0)
            await site.start()
            address = self._runner.addresses[0]
            if self.port_per_api:
                services = self._app[SERVICES]
                free = {runtime.slug: 0 for runtime in vendor_runtimes(services)}
                for slug, runner, port in await start_api_sites(services, self.host, free):
                    self._api_runners.append(runner)
                    self.api_ports[slug] = port
            ready.set_result(int(address[1]))

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(boot())
            except BaseException as exc:  # surface start-up errors to the caller
                if not ready.done():
                    ready.set_exception(exc)
                return
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="loyalty-mock", daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=120)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop
        for runner in self._api_runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        self._api_runners.clear()
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)
        loop.close()
        self._loop = None
        self.session.close()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # addresses
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def api_url(self, slug: str) -> str:
        return f"{self.base_url}/{slug}"

    def url(self, slug: str, path: str = "") -> str:
        return f"{self.base_url}/{slug}{path}"

    def root_url(self, slug: str, path: str = "") -> str:
        """The API at the root of its own port (needs `port_per_api=True`)."""
        if slug not in self.api_ports:
            raise LookupError(f"{slug} has no port of its own: start MockServer(..., port_per_api=True)")
        return f"http://{self.host}:{self.api_ports[slug]}{path}"

    # in-process access (engine tests only)
    @property
    def services(self) -> Services:
        assert self._app is not None
        return self._app[SERVICES]

    def call(self, fn: Any, *args: Any) -> Any:
        """Run `fn(*args)` on the server's loop thread (safe access to stores)."""
        assert self._loop is not None

        async def invoke() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=30)

    # admin API
    def admin_url(self, path: str = "") -> str:
        return f"{self.base_url}/__admin{path}"

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.base_url}/__admin{path}", timeout=30, **kwargs)

    def reset(self) -> None:
        self.admin("POST", "/reset").raise_for_status()

    def credentials_cache(self) -> dict[str, Any]:
        """The credentials, fetched once per server (they survive resets: same seed)."""
        if self._credentials is None:
            self._credentials = self.credentials()
        return self._credentials

    def credentials(self) -> dict[str, Any]:
        response = self.admin("GET", "/credentials")
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def advance(self, seconds: float) -> dict[str, Any]:
        response = self.admin("POST", "/clock", json={"advance": seconds})
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        response = self.admin("GET", "/requests", params=filters)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found
