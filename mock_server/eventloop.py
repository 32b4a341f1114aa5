"""Which event loop `serve` runs on (`--loop auto|uvloop|asyncio`; issue 20).

uvloop (libuv, in C) runs the same aiohttp server with less per-request overhead in the loop's
own machinery (callbacks, transports, the reads and writes of the sockets). It is optional: a
dependency where it has wheels (CPython, not Windows), and the mock runs the same on the
standard library's loop. `auto` picks uvloop when it can be imported, else asyncio."""

from __future__ import annotations

import asyncio
import gc
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, NamedTuple, TypeVar

from mock_server.settings import EVENT_LOOPS

CHOICES: tuple[str, ...] = EVENT_LOOPS
T = TypeVar("T")


class LoopUnavailable(RuntimeError):
    """`--loop uvloop` where uvloop cannot be imported."""


class Choice(NamedTuple):
    """The loop a `--loop` value resolves to: its name, a version to log, and a factory."""

    name: str  # "uvloop" | "asyncio"
    version: str
    factory: Callable[[], asyncio.AbstractEventLoop]


def _uvloop() -> Any | None:
    try:
        return importlib.import_module("uvloop")
    except ImportError:  # not installed, or no wheel for this platform / implementation
        return None


def resolve(choice: str) -> Choice:
    """The loop `choice` stands for: `auto` is uvloop when importable, else asyncio."""
    if choice not in CHOICES:
        raise ValueError(f"unknown event loop {choice!r}; expected one of {', '.join(CHOICES)}")
    if choice != "asyncio":
        uvloop = _uvloop()
        if uvloop is not None:
            return Choice("uvloop", str(getattr(uvloop, "__version__", "?")), uvloop.new_event_loop)
        if choice == "uvloop":
            raise LoopUnavailable(
                "--loop uvloop: uvloop cannot be imported here (pip install uvloop; it has no Windows or "
                "PyPy build); use --loop asyncio or --loop auto"
            )
    import platform

    return Choice("asyncio", platform.python_version(), asyncio.new_event_loop)


def describe(loop: asyncio.AbstractEventLoop) -> str:
    """`uvloop` or `asyncio`, for a loop."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def running() -> str:
    """The running loop with its version, as `serve` logs it once it listens: `uvloop 0.23.0`."""
    name = describe(asyncio.get_running_loop())
    return f"{name} {resolve(name).version}"


def run(main: Coroutine[Any, Any, T], chosen: Choice) -> T:
    """Run `main` to completion on a new loop made by `chosen` (as `asyncio.run` does)."""
    with asyncio.Runner(loop_factory=chosen.factory) as runner:
        return runner.run(main)


def freeze_start_up_heap() -> None:
    """Keep what start-up built (modules, specs, validators, seeded or restored stores) out of every
    later collection of the oldest generation, which would otherwise walk it all again (issue 18:
    with a large --seed-customers, most of the pause). Reference counting still frees it; only the
    cycles among it (a few hundred objects, left by the first reset of the default tenant) are never
    collected. Call it once, when the server is ready to listen."""
    gc.collect()
    gc.freeze()
