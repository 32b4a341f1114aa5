"""`create_app(settings)`: the aiohttp application. Each API is a sub-app under `/<slug>` (and at
the root too when exactly one is selected), the admin API a sub-app under `/__admin`. All state
lives on typed app keys; nothing is module-level."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from mock_server import lifecycle
from mock_server.admin import AdminApi
from mock_server.apis.base import Services, Shared
from mock_server.apis.registry import definitions
from mock_server.clock import Clock
from mock_server.dispatcher import ApiRuntime, Mounts, dump_json, fast_path, mount
from mock_server.faults import FaultRegistry
from mock_server.journal import Journal
from mock_server.persistence import StateFile
from mock_server.settings import Settings
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


def _swagger_ui_dir() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


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


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> web.Application:
    settings = settings or Settings()
    services = services or build_services(settings)
    # aiohttp's own limits sit above ours, so an oversized URL or header gets the vendor's envelope
    limit = 4 * max(settings.max_url_bytes, settings.max_header_bytes)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        handler_args={"max_line_size": limit, "max_field_size": limit},
    )
    app[SERVICES] = services
    app.cleanup_ctx.append(_background)

    mounts = app[MOUNTS] = Mounts()
    static = _swagger_ui_dir()
    if static is not None:
        app.router.add_static("/__admin/docs-static", static)
        mounts.routed_prefixes = ("/__admin/docs-static/",)
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


async def start_runner(app: web.Application) -> web.AppRunner:
    """An AppRunner set up for `app`, its server taking the fast path (`dispatcher.fast_path`)
    to the APIs. Sites are added by the caller."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    server = runner.server
    assert server is not None
    server.request_handler = fast_path(app[MOUNTS], server.request_handler)
    return runner
