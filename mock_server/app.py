"""`create_app(settings)`: the aiohttp application. Each API is served under `/<slug>` (and at
the root too when exactly one is selected), the admin API under `/__admin`, each tenant's under
`/t/<id>/` (`build_tenant_world`). All state lives on typed app keys; nothing is module-level.
`create_api_app` / `start_api_sites`: each API also at the root of a port of its own
(`serve --port-per-api`), on the same services."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from mock_server import lifecycle, persistence
from mock_server.admin import AdminApi, AdminRuntime, close_event_streams, close_world_streams
from mock_server.apis.base import Services, Shared
from mock_server.apis.registry import definitions
from mock_server.clock import Clock
from mock_server.dispatcher import ApiRuntime, Mounts, dump_json, enveloped, fast_path, mount, mount_tenants
from mock_server.faults import FaultRegistry
from mock_server.journal import Journal, JournalBudget
from mock_server.persistence import StateFileError
from mock_server.settings import SLUGS, Settings
from mock_server.spec import build_spec, load_document
from mock_server.tenants import Tenant, TenantRegistry

SERVICES = web.AppKey("services", Services)
MOUNTS = web.AppKey("mounts", Mounts)
TICK_SECONDS = 0.25
log = logging.getLogger("mock_server")


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Everything the mock runs on, without HTTP: specs compiled, stores seeded, fixtures loaded."""
    services = Services(
        settings=settings,
        clock=clock or Clock(),
        journal=Journal(
            settings.journal_max_entries, settings.journal_max_bytes, JournalBudget(settings.journal_max_total_bytes)
        ),
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
    services.runtimes[admin.slug] = AdminRuntime(  # the pipeline, plus the console's stream (issue 19)
        admin, build_spec(admin.slug, load_document(admin.spec_name, settings.specs_dir)), services
    )
    # --state-file with an image: the stores come from it (seeding a million customers first is waste)
    imaged = settings.state_file is not None and persistence.has_image(default_state_dir(settings.state_file))
    for runtime in services.runtimes.values():
        if not imaged:
            runtime.reset_store()
    if settings.max_tenants > 0:
        services.tenants = TenantRegistry(
            lambda tenant_id, seed, apis, pos_url: build_tenant_world(services, tenant_id, seed, apis, pos_url),
            apis=settings.apis,
            max_tenants=settings.max_tenants,
            ttl_seconds=settings.tenant_ttl,
            on_remove=close_tenant_world,
            on_create=save_tenant_record,
        )
    if settings.fixtures is not None and not imaged:
        lifecycle.load_fixtures(services, lifecycle.read_fixtures_file(settings.fixtures))
    if settings.state_file is not None:  # the seeded state, then the newest image + the log replayed
        persistence.check_root(settings.state_file)
        lifecycle.open_state(services, default_state_dir(settings.state_file))
        reopen_tenants(services)
    return services


def default_state_dir(state_dir: Path) -> Path:
    """The default tenant's part of `--state-file DIR` (tenant X's is `DIR/tenants/X`)."""
    return state_dir / "default"


def build_tenant_world(
    default: Services, tenant_id: str, seed: int, apis: tuple[str, ...], pos_callback_url: str | None = None
) -> Services:
    """A tenant's world: the server's settings with the tenant's seed, APIs and POS callback URL
    (the server's `--pos-callback-url` when it has none of its own), a clock, journal,
    faults, shared state and stores of its own, and runtimes sharing the default world's compiled
    parts (no spec is compiled again). The server's `--fixtures` load into it, as into the default
    tenant; `--seed-customers` does not (a tenant is of default size)."""
    settings = dataclasses.replace(
        default.settings, seed=seed, apis=apis, seed_customers=0,
        pos_callback_url=pos_callback_url or default.settings.pos_callback_url,
    )
    world = Services(
        settings=settings,
        clock=Clock(),
        journal=Journal(settings.journal_max_entries, settings.journal_max_bytes, default.journal.budget),
        faults=FaultRegistry(seed),
        shared=Shared(),
        rng=random.Random(seed),
    )
    world.runtimes = {
        slug: runtime.for_world(world)
        for slug, runtime in default.runtimes.items()
        if slug in apis or slug == AdminApi.slug
    }
    world.http = default.http  # one client session for every world's outbound calls
    for runtime in world.runtimes.values():
        runtime.reset_store()
    if settings.fixtures is not None:
        lifecycle.load_fixtures(world, lifecycle.read_fixtures_file(settings.fixtures))
    if settings.state_file is not None:  # its own log in DIR/tenants/<id> (replayed when it exists)
        lifecycle.open_state(world, tenant_state_dir(settings.state_file, tenant_id))
    return world


def tenant_state_dir(state_dir: Path, tenant_id: str) -> Path:
    """Tenant X's part of `--state-file DIR`: `DIR/tenants/X` (its log and its `tenant.json`)."""
    return state_dir / "tenants" / tenant_id


TENANT_RECORD = "tenant.json"


def save_tenant_record(tenant: Tenant) -> None:
    """`--state-file`: the tenant's `tenant.json` (id, seed, APIs, POS URL, the token's hash, times), written
    whole or not at all (a temporary file renamed, synced) before its creation is answered."""
    state_dir = tenant.world.settings.state_file
    if state_dir is None:
        return
    folder = tenant_state_dir(state_dir, tenant.id)
    temporary = folder / f"{TENANT_RECORD}.tmp"
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(tenant.record(), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, folder / TENANT_RECORD)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def reopen_tenants(services: Services) -> None:
    """Start-up with `--state-file DIR`: every tenant under `DIR/tenants/` again, its log replayed,
    its admin token the same; its idle time (`--tenant-ttl`) starts again from now."""
    registry, root = services.tenants, services.settings.state_file
    if registry is None or root is None:
        return
    for record_path in sorted((root / "tenants").glob(f"*/{TENANT_RECORD}")):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            tenant_id, seed, apis = str(record["id"]), int(record["seed"]), tuple(str(a) for a in record["apis"])
            token_hash, created_at = bytes.fromhex(record["token_sha256"]), float(record["created_at"])
            pos_url = record.get("pos_callback_url")  # absent in records written before it existed
            if pos_url is not None and not isinstance(pos_url, str):
                raise TypeError("pos_callback_url is not a string")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateFileError(f"{record_path} is not a tenant record of this mock ({exc})") from None
        if record_path.parent.name != tenant_id or not set(apis) <= set(services.settings.apis):
            raise StateFileError(
                f"{record_path}: tenant {tenant_id} with APIs {', '.join(apis)} cannot be served by this mock "
                f"(APIs {', '.join(services.settings.apis)}); start it with the same --api options"
            )
        world = build_tenant_world(services, tenant_id, seed, apis, pos_url)
        registry.adopt(
            Tenant(tenant_id, seed, apis, token_hash, created_at, time.time(), world, pos_callback_url=pos_url)
        )


def close_tenant_world(tenant: Tenant) -> None:
    """A deleted or expired tenant: its timers dropped, its outbound work cancelled, its
    `--state-file` part closed and deleted (a deleted tenant does not come back at a restart)."""
    world = tenant.world
    world.clock.reset()
    world.journal.close()  # its share of --journal-max-total-bytes back at once
    close_world_streams(world)  # its console streams end (they would keep it in use)
    for task in list(world.background):
        task.cancel()
    if world.settings.state_file is not None:
        lifecycle.close_state(world, compact=False)
        lifecycle.remove_state(tenant_state_dir(world.settings.state_file, tenant.id))


def worlds(services: Services) -> list[Services]:
    """The default world and every tenant's."""
    return [services, *(tenant.world for tenant in services.tenants or ())]


async def _background(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    # no pool limit: aiohttp's default (100 connections) let 100 hung webhook receivers hold every
    # slot for their whole timeout, starving other subscribers and the POS callbacks (issue 11);
    # each caller bounds itself (one delivery in flight per LOKE subscription, a timeout per call)
    services.http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=30)
    )

    for tenant in services.tenants or ():  # tenants re-opened at start-up
        tenant.world.http = services.http

    async def tick() -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for world in worlds(services):  # every tenant's due timers too
                try:
                    world.clock.run_due()
                except Exception:  # a timer bug must not stop the clock
                    log.exception("scheduled work failed%s", f" (tenant {world.tenant.id})" if world.tenant else "")
            if services.tenants is not None:
                expired = services.tenants.expire_idle()
                if expired:
                    log.info("expired idle tenants: %s", ", ".join(expired))

    ticker = asyncio.create_task(tick())
    yield
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    pending = [task for world in worlds(services) for task in world.background]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    await services.http.close()
    lifecycle.close_state(services)  # --state-file: flushed, and a last image written
    for tenant in services.tenants or ():
        lifecycle.close_state(tenant.world)  # each tenant's too


async def _close_event_streams(app: web.Application) -> None:
    close_event_streams(app[SERVICES])


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
    app.on_shutdown.append(_close_event_streams)  # before aiohttp waits for handlers: streams end

    mounts = app[MOUNTS] = Mounts()
    mount(app, mounts, services.runtimes[AdminApi.slug], "/__admin")
    if services.tenants is not None:
        mount_tenants(app, mounts, services.tenants)  # before the root mount: /t/ is the tenants'
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
