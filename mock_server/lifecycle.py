"""Whole-world operations used by start-up and the admin API: reset, fixtures, credentials, and
the `--state-file` log of a world (`open_state`, `close_state`, `remove_state`)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiohttp.http import HttpVersion11
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EmptyStreamReader, StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from mock_server import persistence
from mock_server.apis.base import Services, Shared
from mock_server.dispatcher import ApiRuntime
from mock_server.errors import FieldError, ValidationFailed
from mock_server.persistence import StateFileError


def vendor_runtimes(services: Services) -> list[ApiRuntime]:
    return [rt for slug, rt in services.runtimes.items() if not slug.startswith("__")]


# -- --state-file: one world's durable log (`persistence`), opened, replayed and closed here ------
def state_meta(services: Services) -> dict[str, Any]:
    """What built a world's starting state: a directory made by another one is refused."""
    settings = services.settings
    fixtures = None
    if settings.fixtures is not None:
        try:
            fixtures = hashlib.sha256(settings.fixtures.read_bytes()).hexdigest()
        except OSError:
            fixtures = None
    return {
        "seed": settings.seed,
        "apis": list(settings.apis),
        "fixtures_sha256": fixtures,
        "seed_customers": settings.seed_customers,
    }


def capture_world(services: Services) -> dict[str, Any]:
    """What an image holds: every store, the shared Let'sTrade state, the clock, the rng, the
    faults. Not the journal, nor timers (pending webhook retries are not resumed after a restart)."""
    return {
        "shared": services.shared,
        "stores": {slug: runtime.store for slug, runtime in services.runtimes.items()},
        "clock": services.clock.state(),
        "rng": services.rng.getstate(),
        "faults": services.faults,
    }


def restore_world(services: Services, world: Any) -> None:
    try:
        stores = world["stores"]
        if set(stores) != set(services.runtimes):
            raise StateFileError(f"the image holds the APIs {', '.join(sorted(stores))}")
        services.shared = world["shared"]
        for slug, runtime in services.runtimes.items():
            runtime.store = stores[slug]
        services.clock.restore(world["clock"])
        services.rng.setstate(world["rng"])
        services.faults = world["faults"]
    except (KeyError, TypeError, ValueError) as exc:
        raise StateFileError(f"the image is not a world of this mock ({exc})") from None


def open_state(services: Services, directory: Path) -> None:
    """Make `directory` this world's durable state: created when new; else its newest image is
    loaded and every later logged request replayed, in order, through the pipeline on the
    virtual clock, each checked against the answer it got (a different one stops the start-up,
    naming the entry). Then new writes are logged there (`services.state_file`)."""
    persistence.prepare_directory(directory, state_meta(services))
    persistence.remove_tmp(directory)
    position, world = persistence.read_image(directory)
    if world is not None:
        restore_world(services, world)
    durable = persistence.DurableLog(directory, position)
    durable.capture = lambda: capture_world(services)
    last = position
    try:
        loop, own_loop = asyncio.get_running_loop(), False
    except RuntimeError:  # built before serving (the CLI's `credentials`, tests): a loop only to refer to
        loop, own_loop = asyncio.new_event_loop(), True
    services.replaying = True
    try:
        for path, offset, entry in persistence.read_segments(directory, position):
            replay_entry(services, entry, f"{path} byte {offset}", loop)
            last = max(last, int(path.name[len(persistence.SEGMENT) :]))
            durable.entries += 1
    finally:
        services.replaying = False
        if own_loop:
            loop.close()
    try:
        durable.start(last)
    except OSError as exc:
        raise StateFileError(f"cannot write in --state-file directory {directory}: {exc.strerror or exc}") from None
    services.state_file = durable


def close_state(services: Services, *, compact: bool = True) -> None:
    """Flush the world's log and (`compact`) write a last image, so the next start replays
    nothing; the world stays usable in memory, no longer durable."""
    durable = services.state_file
    if durable is not None:
        services.state_file = None
        durable.close(compact=compact)


def remove_state(directory: Path) -> None:
    """Delete a world's state directory (a deleted tenant); close it first."""
    shutil.rmtree(directory, ignore_errors=True)


class _Protocol:
    """What an in-memory request asks of its protocol: nothing (the body is there already)."""

    transport = None
    ssl_context = None
    peername = ("127.0.0.1", 0)
    sockname = ("127.0.0.1", 0)

    def pause_reading(self, *args: Any, **kwargs: Any) -> None:  # pragma: no cover - bodies are given whole
        pass

    def resume_reading(self, *args: Any, **kwargs: Any) -> None:
        pass


def replay_entry(
    services: Services, entry: persistence.Entry, where: str, loop: asyncio.AbstractEventLoop
) -> None:
    """Run one logged request again, synchronously (nothing in it waits: the body is in memory,
    faults are not applied and outside answers come from the log), its clock source pinned at
    the reading it arrived at."""
    runtime = services.runtimes.get(entry.runtime)
    if runtime is None:
        raise StateFileError(f"{where}: {entry.describe()} was served by {entry.runtime}, which is not mounted")
    headers = CIMultiDict(entry.headers)
    payload = StreamReader(_PROTOCOL, 1 << 16, loop=loop)  # type: ignore[arg-type]
    payload.feed_eof()
    message = RawRequestMessage(
        entry.method, entry.raw_path, HttpVersion11, CIMultiDictProxy(headers),
        tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in entry.headers),
        False, None, False, False, URL(entry.raw_path, encoded=True),
    )
    request = web.BaseRequest(
        message, payload if entry.body else EmptyStreamReader(),
        _PROTOCOL,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # no writer: the answer is compared, not sent
        None,  # type: ignore[arg-type]
        loop,
        client_max_size=services.settings.max_body_bytes, scheme=entry.scheme, host=entry.host, remote="127.0.0.1",
    )
    request._read_bytes = entry.body  # the body as read (aiohttp 3.14: `read()` answers it)
    clock = services.clock
    previous = clock.pin(entry.arrived)
    token = persistence.begin_inputs(entry.inputs)
    coroutine = runtime.handle(request, entry.path, entry.prefix)
    try:
        coroutine.send(None)
    except StopIteration as done:
        response = done.value
    else:
        coroutine.close()
        raise StateFileError(f"{where}: replaying {entry.describe()} waited for I/O; it cannot be replayed")
    finally:
        persistence.end_inputs(token)
        clock.pin(previous)
    body = response.body if isinstance(response.body, bytes) else b""
    if response.status != entry.status or (entry.digest and persistence.digest(body) != entry.digest):
        raise StateFileError(
            f"{where}: replaying {entry.describe()} answered {response.status}"
            + (" with another body" if response.status == entry.status else "")
            + "; the log does not reproduce this state (a different mock version or configuration?)"
        )


_PROTOCOL = _Protocol()


def reset_all(services: Services) -> None:
    """Forget everything and re-seed: same seed, same credentials and records as at start-up."""
    services.clock.reset()
    services.journal.reset()
    services.faults.reset()
    services.rng.seed(services.settings.seed)
    services.shared = Shared()
    for runtime in services.runtimes.values():
        runtime.reset_store()
    if services.settings.fixtures is not None:
        load_fixtures(services, read_fixtures_file(services.settings.fixtures))


def read_fixtures_file(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.safe_load(handle) or {}
    except OSError as exc:
        raise ValidationFailed(f"cannot read fixtures file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"fixtures file {path} is not valid YAML/JSON: {exc}") from None


def load_fixtures(services: Services, document: Any) -> dict[str, int]:
    """Check every section first, then load: a bad record loads nothing at all."""
    if not isinstance(document, Mapping):
        raise ValidationFailed("fixtures must be a mapping of section name -> records")
    by_section = {
        rt.definition.fixture_section: rt for rt in vendor_runtimes(services) if rt.definition.fixture_section
    }
    errors: list[FieldError] = []
    for name, section in document.items():
        runtime = by_section.get(str(name))
        if runtime is None:
            known = ", ".join(sorted(by_section)) or "none"
            errors.append(FieldError(str(name), f"no mounted API takes this section; sections taken: {known}"))
            continue
        errors.extend(
            FieldError(f"{name}.{e.field}" if not e.field.startswith(str(name)) else e.field, e.message)
            for e in runtime.definition.check_fixtures(services, runtime.store, section)
        )
    if errors:
        raise ValidationFailed("Fixtures rejected; nothing was loaded", errors)
    return {
        str(name): by_section[str(name)].definition.load_fixtures(services, by_section[str(name)].store, section)
        for name, section in document.items()
    }


def collect_credentials(services: Services) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for runtime in vendor_runtimes(services):
        found.update(runtime.definition.credentials(runtime.store))
    return found


def new_rng(seed: int) -> random.Random:
    return random.Random(seed)
