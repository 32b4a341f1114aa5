"""Run the mock in-process for tests: one server per session on a free port, in a daemon thread.

    with MockServer(Settings(strict=True)) as mock:
        requests.get(mock.url("customtrades", "/v1/customers"), headers=...)
        mock.reset()

`MockServer(settings, port_per_api=True)` also serves each API at the root of a free port of its
own, on the same state (`loyalty-mock serve --port-per-api`): `mock.root_url("loke")`.

A tenant (an isolated sandbox in the same server, `POST /__admin/tenants`):

    tenant = mock.create_tenant(seed=7)
    requests.get(tenant.url("customtrades", "/v1/customers"), headers=...)
    tenant.admin("POST", "/clock", json={"advance": 60})   # its own admin API, with its token
    tenant.delete()

Used by this project's tests and by the `contracts` pytest plugin; speaks to the mock only over
HTTP (the admin API), except for `services`, which tests of the engine itself may inspect.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self

import requests
from aiohttp import web

from mock_server.apis.base import Services
from mock_server.app import SERVICES, create_app, start_api_sites, start_runner
from mock_server.lifecycle import vendor_runtimes
from mock_server.settings import Settings


def start_in_thread(
    boot: Callable[[], Awaitable[int]], name: str
) -> tuple[asyncio.AbstractEventLoop, threading.Thread, int]:
    """A new event loop in a daemon thread called `name`: runs `boot` (which starts the sites and
    returns the port), then serves until `stop_thread`. Returns the loop, the thread and the port;
    an error in `boot` is raised here."""
    ready: Future[int] = Future()
    loop = asyncio.new_event_loop()

    async def booted() -> None:
        ready.set_result(await boot())

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(booted())
        except BaseException as exc:  # surface start-up errors to the caller
            if not ready.done():
                ready.set_exception(exc)
            return
        loop.run_forever()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return loop, thread, ready.result(timeout=120)


def stop_thread(
    loop: asyncio.AbstractEventLoop, thread: threading.Thread | None, runners: Iterable[web.AppRunner | None]
) -> None:
    """Clean up `runners` (in order) on `loop`, then stop the loop, join its thread and close it."""
    for runner in runners:
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    if thread is not None:
        thread.join(timeout=30)
    loop.close()


class InThreadServer:
    """What `MockServer` and the proxy's `ProxyServer` share: `with` starts and stops the server,
    which listens on `host:port`."""

    host: str
    port: int

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class TenantClient:
    """A tenant of a `MockServer`: its base URL, credentials and admin API (its token sent)."""

    def __init__(self, mock: MockServer, created: dict[str, Any]) -> None:
        self.mock = mock
        self.id: str = created["id"]
        self.base_url: str = created["base_url"]
        self.admin_token: str = created["admin_token"]
        self.credentials: dict[str, Any] = created["credentials"]
        self.seed: int = created["seed"]
        self.session = requests.Session()
        self.session.headers["X-Admin-Token"] = self.admin_token

    def url(self, slug: str, path: str = "") -> str:
        return f"{self.base_url}/{slug}{path}"

    def admin_url(self, path: str = "") -> str:
        return f"{self.base_url}/__admin{path}"

    def admin(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.admin_url(path), timeout=30, **kwargs)

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        response = self.admin("GET", "/requests", params=filters)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def delete(self) -> None:
        self.mock.admin("DELETE", f"/tenants/{self.id}").raise_for_status()
        self.session.close()


class MockServer(InThreadServer):
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
        async def boot() -> int:
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
            return int(address[1])

        self._loop, self._thread, self.port = start_in_thread(boot, "loyalty-mock")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        stop_thread(self._loop, self._thread, [*self._api_runners, self._runner])
        self._api_runners.clear()
        self._loop = None
        self.session.close()

    # addresses
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

    def create_tenant(self, **body: Any) -> TenantClient:
        """A new tenant (`POST /__admin/tenants` with `body`: id, seed, apis)."""
        response = self.admin("POST", "/tenants", json=body)
        if response.status_code != 201:
            raise AssertionError(f"creating a tenant answered {response.status_code}: {response.text[:300]}")
        return TenantClient(self, response.json())

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
