"""`create_app(settings)`: the aiohttp application. Each API is a sub-app under `/<slug>` (and at
the root too when exactly one is selected), the admin API a sub-app under `/__admin`. All state
lives on typed app keys; nothing is module-level. `create_api_app` / `start_api_sites`: each API
also at the root of a port of its own (`serve --port-per-api`), on the same services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence

import aiohttp
from aiohttp import web

from mock_server import lifecycle
from mock_server.admin import AdminApi
from mock_server.apis.base import Services, Shared
from mock_server.apis.registry import definitions
from mock_server.clock import Clock
from mock_server.dispatcher import ApiRuntime, Mounts, dump_json, enveloped, fast_path, mount
from mock_server.faults import FaultRegistry
from mock_server.journal import Journal
from mock_server.persistence import StateFile
from mock_server.settings import SLUGS, Settings
from mock_server.spec import build_spec, load_document

SERVICES = web.AppKey("services", Services)
MOUNTS = web.AppKey("mounts", Mounts)
TICK_SECONDS = 0.25
log = logging.getLogger("mock_server")


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Everything the mock runs on, without HTTP: specs compiled, stores seeded, fixtures loaded."""
    services = Services(
        settings=settings,
        clock=clock or Clock(),
        journal=Journal(settings.journal_max_entries, settings.journal_max_bytes),
        faults=FaultRegistry(settings.seed),
        shared=Shared(),
        rng=random.Random(settings.seed),
    )
    available = definitions()
    for slug in settings.apis:
        definition = available[slug]
        spec = build_spec(slug, load_document(definition.spec_name, settings.specs_dir))
        services.runtimes[slug] = ApiRuntime(definition, spec, services)
    admin = AdminApi(available, settings.apis)
    services.runtimes[admin.slug] = ApiRuntime(
        admin, build_spec(admin.slug, load_document(admin.spec_name, settings.specs_dir)), services
    )
    for runtime in services.runtimes.values():
        runtime.reset_store()
    saved = None
    if settings.state_file is not None:
        services.state_file = StateFile(settings.state_file)
        saved = services.state_file.load()
    if saved is not None:
        lifecycle.restore(services, saved)
    else:
        if settings.fixtures is not None:
            lifecycle.load_fixtures(services, lifecycle.read_fixtures_file(settings.fixtures))
        lifecycle.persist(services)
    return services


async def _background(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    # no pool limit: aiohttp's default (100 connections) let 100 hung webhook receivers hold every
    # slot for their whole timeout, starving other subscribers and the POS callbacks (issue 11);
    # each caller bounds itself (one delivery in flight per LOKE subscription, a timeout per call)
    services.http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=30)
    )

    async def tick() -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                services.clock.run_due()
            except Exception:  # a timer bug must not stop the clock
                log.exception("scheduled work failed")

    ticker = asyncio.create_task(tick())
    yield
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    pending = list(services.background)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    await services.http.close()
    if services.state_file is not None:
        services.state_file.close()


def _application(services: Services) -> web.Application:
    settings = services.settings
    # aiohttp's own limits sit above ours, so an oversized URL or header gets the vendor's envelope
    limit = 4 * max(settings.max_url_bytes, settings.max_header_bytes)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        handler_args={"max_line_size": limit, "max_field_size": limit},
    )
    app[SERVICES] = services
    return app


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> web.Application:
    settings = settings or Settings()
    services = services or build_services(settings)
    app = _application(services)
    app.cleanup_ctx.append(_background)

    mounts = app[MOUNTS] = Mounts()
    mount(app, mounts, services.runtimes[AdminApi.slug], "/__admin")
    vendor = lifecycle.vendor_runtimes(services)
    for runtime in vendor:
        mount(app, mounts, runtime, f"/{runtime.slug}")

    if len(vendor) == 1:
        mount(app, mounts, vendor[0], "")
    else:
        mounted = ", ".join(f"/{rt.slug}" for rt in vendor)

        async def unknown(request: web.Request) -> web.StreamResponse:
            body = {
                "type": "about:blank#not_found",
                "title": "Not Found",
                "status": 404,
                "detail": f"No API is mounted at {request.path}; mounted: {mounted} and /__admin",
            }
            return web.Response(body=dump_json(body), status=404, content_type="application/problem+json")

        app.router.add_route("*", "/{tail:[\\s\\S]*}", unknown)
    return app


def create_api_app(services: Services, slug: str) -> web.Application:
    """One API alone at the root of an app of its own (`serve --port-per-api`): the same runtime,
    hence the same state, as `/<slug>` on the main app, so the vendor's client can use the port as
    its base URL. Nothing else is served there: any other path (another API's, `/__admin`) is that
    vendor's 404. The main app (`create_app`) owns the background work; start it first."""
    app = _application(services)
    mounts = app[MOUNTS] = Mounts()
    mount(app, mounts, services.runtimes[slug], "")
    return app


def api_ports(slugs: Sequence[str], port: int) -> dict[str, int]:
    """The port of each API's own site: `port` + 1 + the API's place in `SLUGS` (so Custom Trades
    is always `port` + 3, whichever APIs are mounted), or any free port when `port` is 0."""
    ports = {slug: 0 if port == 0 else port + 1 + SLUGS.index(slug) for slug in slugs}
    too_high = {slug: p for slug, p in ports.items() if p > 65535}
    if too_high:
        raise ValueError(
            f"--port-per-api puts {', '.join(too_high)} above port 65535; "
            f"use a --port of at most {65535 - 1 - max(SLUGS.index(s) for s in too_high)} (or 0)"
        )
    return ports


class ApiSiteError(OSError):
    """An API's own port could not be opened (`start_api_sites`)."""

    def __init__(self, slug: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.slug, self.port = slug, port


async def start_api_sites(
    services: Services, host: str, ports: Mapping[str, int], ssl_context: ssl.SSLContext | None = None
) -> list[tuple[str, web.AppRunner, int]]:
    """Serve each API of `ports` at the root of its own port (`create_api_app`): (slug, runner,
    bound port) for each. All or nothing: when one port cannot be opened, those opened are closed
    and `ApiSiteError` says which."""
    started: list[tuple[str, web.AppRunner, int]] = []
    try:
        for slug, port in ports.items():
            runner = await start_runner(create_api_app(services, slug))
            try:
                await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
            except OSError as exc:
                await runner.cleanup()
                raise ApiSiteError(slug, port, exc) from exc
            started.append((slug, runner, int(runner.addresses[0][1])))
    except BaseException:
        for _, runner, _ in started:
            await runner.cleanup()
        raise
    return started


async def start_runner(app: web.Application) -> web.AppRunner:
    """An AppRunner set up for `app`, its server taking the fast path (`dispatcher.fast_path`)
    to the APIs. Sites are added by the caller."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    server = runner.server
    assert server is not None
    server.request_handler = fast_path(app[MOUNTS], server.request_handler)
    enveloped(server, app[MOUNTS])  # the HTTP parser's own refusals in the vendors' envelopes too
    return runner
