"""The virtual clock. All domain code reads time from here, never from `datetime.now()`.

Real time by default; the admin API can advance it, set it or freeze it. Work that falls due at a
clock time (webhook retries, expiries) is scheduled with `call_at` and runs from `run_due`, which
the app calls after every clock move and on a short real-time tick.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


def _real_now() -> datetime:
    return datetime.fromtimestamp(time.time(), tz=UTC)


def isoformat(moment: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a `Z`, as the vendors print timestamps."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(order=True)
class _Timer:
    when: datetime
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """A clock that can be moved. `now()` is always timezone-aware UTC."""

    def __init__(self, source: Callable[[], datetime] = _real_now) -> None:
        self._source = source
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None
        self._pinned: datetime | None = None  # the source's reading while a request is handled
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    # reading
    def now(self) -> datetime:
        if self._frozen_at is not None:
            return self._frozen_at
        return (self._pinned or self._source()) + self._offset

    def reading(self) -> datetime:
        """The real-time source's reading (the pinned one while a request is handled)."""
        return self._pinned or self._source()

    def at(self, reading: datetime) -> datetime:
        """The virtual time when the source reads `reading`."""
        return self._frozen_at if self._frozen_at is not None else reading + self._offset

    def pin(self, reading: datetime | None) -> datetime | None:
        """Make the source read `reading` until pinned again (None: the real source); returns the
        previous pin. `--state-file` pins it while a request's handler runs, and replays a request
        pinned at its recorded reading, so both see the same times."""
        previous, self._pinned = self._pinned, reading
        return previous

    def timestamp(self) -> float:
        return self.now().timestamp()

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    # moving
    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward: advance must be 0 or more seconds")
        delta = timedelta(seconds=seconds)
        if self._frozen_at is not None:
            self._frozen_at += delta
        else:
            self._offset += delta
        self.run_due()

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("the time must carry a timezone offset, e.g. 2026-01-01T00:00:00Z")
        moment = moment.astimezone(UTC)
        if self._frozen_at is not None:
            self._frozen_at = moment
        else:
            self._offset = moment - self.reading()
        self.run_due()

    def freeze(self, frozen: bool) -> None:
        if frozen and self._frozen_at is None:
            self._frozen_at = self.now()
        elif not frozen and self._frozen_at is not None:
            self._offset = self._frozen_at - self.reading()
            self._frozen_at = None

    def state(self) -> dict[str, object]:
        """What a restart needs to keep the virtual time: the offset or the frozen moment."""
        return {"offset_seconds": self._offset.total_seconds(), "frozen_at": self._frozen_at}

    def restore(self, state: dict[str, object]) -> None:
        offset = state.get("offset_seconds", 0.0)
        frozen = state.get("frozen_at")
        self._offset = timedelta(seconds=float(offset) if isinstance(offset, int | float) else 0.0)
        self._frozen_at = frozen if isinstance(frozen, datetime) else None

    def reset(self) -> None:
        """Back to real time; pending timers are dropped."""
        self._offset = timedelta(0)
        self._frozen_at = None
        self._timers.clear()

    # scheduling
    def call_at(self, when: datetime, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(when, next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def call_later(self, seconds: float, callback: Callable[[], None]) -> _Timer:
        return self.call_at(self.now() + timedelta(seconds=seconds), callback)

    def pending(self) -> int:
        return sum(1 for t in self._timers if not t.cancelled)

    def run_due(self) -> int:
        """Run every timer due at the current clock time, in time order. Returns how many ran."""
        ran = 0
        while self._timers and self._timers[0].when <= self.now():
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.callback()
                ran += 1
        return ran
