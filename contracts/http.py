"""HTTP for the suite: a `requests.Session` that never exceeds a request rate.

Every request to a target (schemathesis' own calls, the checks' replays, the state machines)
goes through one session per API, so a cap holds for everything the suite sends there. Under
pytest-xdist each worker process gets an equal share of the cap.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import requests

TIMEOUT = 30.0


class RateLimiter:
    """At most `rate` requests per second, evenly spaced (no bursts)."""

    def __init__(self, rate: float, clock: Any = time.monotonic, sleep: Any = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for the next slot; returns how long it waited."""
        with self._lock:
            now = float(self._clock())
            start = max(now, self._next)
            self._next = start + self.interval
        waited = start - now
        if waited > 0:
            self._sleep(waited)
        return waited


def worker_share(rate: float) -> float:
    """This process's share of a cap when pytest-xdist runs several workers."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return rate / max(1, workers)


class TargetSession(requests.Session):
    """A session with a default timeout and an optional rate cap (requests per second)."""

    def __init__(self, rate: float | None = None) -> None:
        super().__init__()
        self.limiter = RateLimiter(worker_share(rate)) if rate else None
        self.sent = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if self.limiter is not None:
            self.limiter.acquire()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT
        self.sent += 1
        return super().send(request, **kwargs)
