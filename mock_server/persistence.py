"""`--state-file DIR`: a world's state as an append-only log of the requests that changed it, plus
the latest compacted image (Redis's AOF + background rewrite). Standard library only.

Files in a world's directory (the default tenant's is `DIR/default/`, tenant X's `DIR/tenants/X/`):
- `state.json` — what built the starting state (format, seed, APIs, fixtures, seeded customers);
  a directory made by another configuration is refused, naming the option;
- `log.NNNNNNNN` — segments of frames `<length u32><crc32 u32><pickled entry>`, one per request that
  changed state (2xx/3xx, not read-only, not answered by an injected fault), in the order the
  state changed. The writing segment is replaced by a new one at every compaction;
- `image.NNNNNNNN` — the world as it was after the last frame of segment NNNNNNNN (pickled, written
  by a forked child to a temporary file, fsynced, renamed). Start-up = the newest image (or the
  seeded state) + every later segment replayed through the pipeline (`lifecycle.open_state`).

Group commit: `DurableLog.append` adds a frame to a buffer in the same synchronous step as the
state change (so the log's order is the order of the changes) and returns a future; one flusher
task hands everything buffered to a worker thread that writes and fsyncs it, while the event loop
keeps serving; each write's 2xx leaves when its frame's fsync is done. A crash loses only writes
not yet acknowledged; a frame torn by the crash is cut off at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import logging
import os
import pickle
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

FORMAT = 2
META = "state.json"
SEGMENT = "log."
IMAGE = "image."
_FRAME = struct.Struct("<II")
_IMAGE_MAGIC = b"loyalty-mock image 2\n"
# operations that change nothing a restart keeps (the journal is not durable): not logged
# (the tenant calls too: a tenant's durability is its own folder, DIR/tenants/<id>, not the default's log)
VOLATILE_OPERATIONS = frozenset({"clearRequests", "createTenant", "putTenant", "deleteTenant"})
# operations whose answer names something not durable (the journal entry of the POS call): only
# their status is checked on replay
STATUS_ONLY_OPERATIONS = frozenset({"appendBillVouchers"})
COMPACT_ENTRIES = 20_000  # entries since the last image that start a compaction (~ a few s of replay)
COMPACT_BYTES = 64 * 1024 * 1024

log = logging.getLogger("mock_server.persistence")
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


class StateFileError(RuntimeError):
    """The state directory cannot be used (unreadable, unwritable, made by another configuration,
    or its log does not replay to the answers it recorded)."""


@dataclass(frozen=True)
class Entry:
    """One request that changed state, as it arrived, and what it was answered."""

    runtime: str  # the runtime's slug (`__admin` for the admin API)
    prefix: str  # where it was mounted (`/loke`, "" at the root)
    method: str
    raw_path: str  # the whole target as received, query included
    path: str  # the path within the API
    headers: tuple[tuple[str, str], ...]
    body: bytes
    scheme: str
    host: str
    arrived: datetime  # the clock source's reading when it arrived (the virtual time follows)
    status: int
    digest: bytes  # of the response body (empty: not checked, `STATUS_ONLY_OPERATIONS`)
    inputs: tuple[Any, ...] = ()  # what the outside world answered while it ran (a POS callback)

    def encode(self) -> bytes:
        payload = pickle.dumps(
            (
                self.runtime, self.prefix, self.method, self.raw_path, self.path, self.headers, self.body,
                self.scheme, self.host, self.arrived, self.status, self.digest, self.inputs,
            ),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload

    def describe(self) -> str:
        return f"{self.method} {self.raw_path} (arrived {self.arrived.isoformat()}, answered {self.status})"


def digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=8).digest()


# -- answers from outside, recorded while a request runs and given back when it is replayed -------
_inputs: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("durable_inputs", default=None)


def begin_inputs(replayed: tuple[Any, ...] | None = None) -> contextvars.Token[list[Any] | None]:
    """Start collecting (live) or giving back (`replayed`) outside answers for this request."""
    return _inputs.set(list(reversed(replayed)) if replayed is not None else [])


def end_inputs(token: contextvars.Token[list[Any] | None]) -> None:
    _inputs.reset(token)


def record_input(value: Any) -> None:
    """An outside answer a handler acted on (e.g. the POS's reply): kept with the request."""
    found = _inputs.get()
    if found is not None:
        found.append(value)


def collected_inputs() -> tuple[Any, ...]:
    return tuple(_inputs.get() or ())


def replayed_input(replaying: bool) -> Any:
    """While replaying: the outside answer recorded for this point of the request (raises when
    the log has none: the request did not do this when it ran). None when live."""
    if not replaying:
        return None
    found = _inputs.get()
    if not found:
        raise StateFileError("the replayed request called out where the recorded one did not")
    return found.pop()


# -- the directory -------------------------------------------------------------------------------
def _number(name: str, prefix: str) -> int | None:
    tail = name[len(prefix) :]
    return int(tail) if name.startswith(prefix) and len(tail) == 8 and tail.isdigit() else None


# fdatasync where there is one: an append still makes its new size durable (POSIX requires it of
# the metadata needed to read the data back) without flushing timestamps; measured here as
# cheaper than fsync (about 1.7 ms vs 2.8 ms p50 for a 300-byte append on this VM's disk)
_datasync = getattr(os, "fdatasync", os.fsync)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _shared_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="state-flush")
        return _executor


def check_root(root: Path) -> None:
    """`--state-file` names a directory; a file there is most likely an earlier version's SQLite
    snapshot, which is not read (nor changed): a clear error rather than a migration."""
    if root.exists() and not root.is_dir():
        raise StateFileError(
            f"--state-file {root} is a file; --state-file now names a directory (a write-ahead log "
            "and compacted images), and the single-file SQLite snapshots of earlier versions are not read: "
            "start with a new directory"
        )


def prepare_directory(directory: Path, meta: dict[str, Any]) -> None:
    """Create `directory` (mode 0700: the log holds credentials) and check or write its
    `state.json`. Raises `StateFileError` with what is wrong and what to do."""
    check_root(directory)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = directory / ".probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StateFileError(f"cannot use --state-file directory {directory}: {exc.strerror or exc}") from None
    path = directory / META
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StateFileError(f"cannot read {path}: {exc}") from None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            found = saved.get("format") if isinstance(saved, dict) else None
            raise StateFileError(f"{path} has format {found}; this mock reads format {FORMAT}")
        for key, value in meta.items():
            if saved.get(key) != value:
                option = {"apis": "--api", "fixtures_sha256": "--fixtures", "seed_customers": "--seed-customers"}.get(
                    key, f"--{key.replace('_', '-')}"
                )
                shown = ", ".join(saved[key]) if isinstance(saved.get(key), list) else saved.get(key)
                what = f"{option} {shown}" if key != "fixtures_sha256" else (
                    "other --fixtures (none, another file, or the file changed since)"
                )
                raise StateFileError(
                    f"--state-file {directory} was written by a mock with {what}; "
                    "start with the same options or another --state-file directory"
                )
        return
    tmp = directory / (META + ".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, **meta}, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    _fsync_dir(directory)


def has_image(directory: Path) -> bool:
    try:
        return any(_number(p.name, IMAGE) is not None for p in directory.iterdir())
    except OSError:
        return False


def read_image(directory: Path) -> tuple[int, Any]:
    """(the segment it covers, the pickled world) of the newest image; (0, None) when none."""
    images = sorted(n for n in (_number(p.name, IMAGE) for p in directory.iterdir()) if n is not None)
    if not images:
        return 0, None
    path = directory / f"{IMAGE}{images[-1]:08d}"
    try:
        with path.open("rb") as handle:
            if handle.read(len(_IMAGE_MAGIC)) != _IMAGE_MAGIC:
                raise StateFileError(f"{path} is not an image of this mock")
            return images[-1], pickle.load(handle)  # our own file, written by write_image
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise StateFileError(f"cannot read {path}: {exc}") from None


def write_image(directory: Path, position: int, world: Any) -> Path:
    """Atomically: a temporary file, fsynced, renamed, the directory fsynced."""
    final = directory / f"{IMAGE}{position:08d}"
    tmp = directory / f"{IMAGE}{position:08d}.tmp"
    with tmp.open("wb") as handle:
        handle.write(_IMAGE_MAGIC)
        pickle.dump(world, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, final)
    _fsync_dir(directory)
    return final


def read_segments(directory: Path, after: int) -> Iterator[tuple[Path, int, Entry]]:
    """Every entry of the segments after `after`, in order, with its file and offset. A torn frame
    (short, or failing its CRC) ends the log: it and everything after it are cut off."""
    numbers = sorted(n for n in (_number(p.name, SEGMENT) for p in directory.iterdir()) if n is not None)
    for index, number in enumerate(numbers):
        path = directory / f"{SEGMENT}{number:08d}"
        if number <= after:
            path.unlink(missing_ok=True)  # covered by the image (a compaction died before removing it)
            continue
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            good = offset + _FRAME.size <= len(data)
            if good:
                length, crc = _FRAME.unpack_from(data, offset)
                payload = data[offset + _FRAME.size : offset + _FRAME.size + length]
                good = len(payload) == length and zlib.crc32(payload) == crc
            if not good:
                # a crash while it was written: the batch holding it was not fsynced, so neither it
                # nor anything after it (later batches wait for that fsync) was acknowledged
                later = [directory / f"{SEGMENT}{n:08d}" for n in numbers[index + 1 :]]
                log.warning(
                    "cutting off a torn write at byte %d of %s and %d later segment(s)", offset, path, len(later)
                )
                with path.open("r+b") as handle:
                    handle.truncate(offset)
                    os.fsync(handle.fileno())
                for segment in later:
                    segment.unlink(missing_ok=True)
                return
            try:
                fields = pickle.loads(payload)  # our own file
                entry = Entry(*fields)
            except Exception as exc:
                raise StateFileError(f"{path} byte {offset}: unreadable entry ({exc})") from None
            yield path, offset, entry
            offset += _FRAME.size + length


def remove_tmp(directory: Path) -> None:
    """An image a crash interrupted (and only ours: a tenant's directory holds other files too)."""
    for path in directory.glob(f"{IMAGE}*.tmp"):
        path.unlink(missing_ok=True)


class DurableLog:
    """The log of one world: appends with group commit, segments, background compaction."""

    def __init__(self, directory: Path, image_position: int) -> None:
        self.directory = directory
        self.image_position = image_position
        self.replaying = False
        self.closed = False
        self.capture: Callable[[], Any] | None = None  # the world an image holds (set by lifecycle)
        self.compact_entries = COMPACT_ENTRIES
        self.compact_bytes = COMPACT_BYTES
        self.entries = 0  # appended since the image
        self.bytes = 0
        self.compactions = 0
        self.fork_ms = 0.0
        self.segment = image_position
        self._fd = -1
        self._mutex = threading.Lock()  # guards the buffer (taken by the loop and the flushing thread)
        self._io = threading.Lock()  # one writer at a time, in buffer order
        self._pending: list[tuple[int, bytes]] = []
        self._waiter: asyncio.Future[None] | None = None
        self._retired: list[int] = []  # segments' fds to close after their last flush
        self._new_segment = False  # the directory entry of a new segment is not durable yet
        self._flusher: asyncio.Task[None] | None = None
        self._compaction: asyncio.Task[None] | None = None

    # -- writing -----------------------------------------------------------------------------
    def start(self, after: int) -> None:
        """Open a new segment after segment `after` (the newest one replayed)."""
        self._rotate(after + 1)

    def _rotate(self, number: int) -> None:
        path = self.directory / f"{SEGMENT}{number:08d}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with self._mutex:
            if self._fd >= 0:
                self._retired.append(self._fd)
            self._fd = fd
            self.segment = number
            self._new_segment = True

    def append(self, entry: Entry) -> asyncio.Future[None]:
        """Buffer `entry` (in the state change's own step); the future is done once it is on disk."""
        frame = entry.encode()
        loop = asyncio.get_running_loop()
        with self._mutex:
            self._pending.append((self._fd, frame))
            if self._waiter is None:
                self._waiter = loop.create_future()
            waiter = self._waiter
        self.entries += 1
        self.bytes += len(frame)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_loop())
        if (self.entries >= self.compact_entries or self.bytes >= self.compact_bytes) and self._compaction is None:
            self._compaction = loop.create_task(self._compact())
        return waiter

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending or self._retired:
                waiter, error = await loop.run_in_executor(_shared_executor(), self._flush_now)
                _settle(waiter, error)
        except RuntimeError as exc:  # the executor is gone (interpreter exit): no writer waits forever
            with self._mutex:
                waiter, self._waiter = self._waiter, None
            _settle(waiter, OSError(str(exc)))
        finally:
            self._flusher = None

    def _flush_now(self) -> tuple[asyncio.Future[None] | None, OSError | None]:
        """Write and fsync everything buffered (any thread); returns its waiter and any error."""
        with self._io:
            with self._mutex:
                batch, waiter, retired, new = self._pending, self._waiter, self._retired, self._new_segment
                self._pending, self._waiter, self._retired, self._new_segment = [], None, [], False
            try:
                touched: dict[int, None] = {}
                for fd, frame in batch:
                    view = memoryview(frame)
                    while view:
                        view = view[os.write(fd, view) :]
                    touched[fd] = None
                for fd in retired:
                    touched[fd] = None
                for fd in touched:
                    _datasync(fd)
                if new:
                    _fsync_dir(self.directory)
                for fd in retired:
                    os.close(fd)
            except OSError as exc:
                log.error("cannot write the state log in %s: %s", self.directory, exc)
                return waiter, exc
            return waiter, None

    # -- compaction --------------------------------------------------------------------------
    async def _compact(self) -> None:
        """Rotate, then a forked child writes the image of this moment while the server goes on;
        the segments it covers are removed when it is done."""
        try:
            if self.closed or self.capture is None:
                return
            position = self.segment
            self._rotate(position + 1)
            covered_entries, covered_bytes = self.entries, self.bytes
            began = time.perf_counter()
            pid = _fork() if hasattr(os, "fork") else None
            if pid == 0:  # the child: write the image of the world as it was at the fork, and go
                code = 1
                with contextlib.suppress(BaseException):
                    write_image(self.directory, position, self.capture())
                    code = 0
                os._exit(code)
            loop = asyncio.get_running_loop()
            self.fork_ms = (time.perf_counter() - began) * 1000  # the loop's only pause
            if pid is None:  # no fork (Windows): write it here, blocking (rare: at the threshold only)
                ok = _try_write(self.directory, position, self.capture())
            else:
                _, status = await loop.run_in_executor(None, os.waitpid, pid, 0)
                ok = os.waitstatus_to_exitcode(status) == 0
            if not ok:
                log.error("compaction of %s failed; the log keeps growing and is retried later", self.directory)
                self.compact_entries += self.compact_entries  # do not retry at every write
                self.compact_bytes += self.compact_bytes
                return
            self._drop_before(position)
            log.info(
                "compacted %s: image %d written in %.1f s in the background (fork paused serving %.1f ms)",
                self.directory, position, time.perf_counter() - began, self.fork_ms,
            )
            self.image_position = position
            self.entries -= covered_entries
            self.bytes -= covered_bytes
            self.compactions += 1
        finally:
            self._compaction = None

    def _drop_before(self, position: int) -> None:
        for path in self.directory.iterdir():
            number = _number(path.name, SEGMENT)
            if number is not None and number <= position:
                path.unlink(missing_ok=True)
            number = _number(path.name, IMAGE)
            if number is not None and number < position:
                path.unlink(missing_ok=True)

    async def wait_idle(self) -> None:
        """Until nothing is buffered, being flushed or compacted (tests, benchmarks)."""
        while self._flusher is not None or self._compaction is not None or self._pending:
            for task in (self._flusher, self._compaction):
                if task is not None:
                    await asyncio.wait({task})
            await asyncio.sleep(0)

    def compact_now(self) -> None:
        """Start a compaction now (in the background), unless one runs."""
        if self._compaction is None and not self.closed:
            self._compaction = asyncio.get_running_loop().create_task(self._compact())

    def close(self, compact: bool = True) -> None:
        """Flush what is buffered, wait for a running compaction's child, and (`compact`) write
        a last image here so the next start replays nothing. Synchronous: used at shutdown."""
        if self.closed:
            return
        self.closed = True
        waiter, error = self._flush_now()
        _settle(waiter, error)
        if self._compaction is not None:
            self._compaction.cancel()
        position = self.segment
        if compact and self.capture is not None and self.entries and error is None:
            if _try_write(self.directory, position, self.capture()):
                self._drop_before(position)  # the writing segment included: the image covers it
                self.image_position = position
        elif self.entries == 0:  # nothing since the image: no empty segment left behind per start
            with contextlib.suppress(OSError):
                (self.directory / f"{SEGMENT}{position:08d}").unlink()
        with self._mutex:
            fds = [*self._retired, self._fd] if self._fd >= 0 else list(self._retired)
            self._retired, self._fd = [], -1
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _settle(waiter: asyncio.Future[None] | None, error: OSError | None) -> None:
    if waiter is None or waiter.done():
        return
    if error is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(StateFileError(f"the state log could not be written: {error.strerror or error}"))


def _try_write(directory: Path, position: int, world: Any) -> bool:
    try:
        write_image(directory, position, world)
    except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
        log.error("cannot write an image in %s: %s", directory, exc)
        return False
    return True


def _fork() -> int:
    """os.fork(), deliberately from a process that has threads (the flushing workers): the child
    only pickles in-memory objects, writes one file and leaves with os._exit, never taking a lock
    another thread could hold (no logging, no executor), which is what Python 3.12's warning
    about forking a multi-threaded process is about."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()
