"""A sliding-window rate limiter on the virtual clock. Pure: no HTTP, no real time.

Capillary documents a requests-per-minute limit per region (seed 003: Asia-2 100, Asia-1 600,
EMEA 100) and, for demo clusters, "100 requests/minute per key" (Capillary's public docs). The mock keeps,
per credential, the times of the requests it admitted in the last `window_seconds`; a request is
admitted while fewer than `limit` of them fall in the window `(now - window, now]`. A refused request
is not counted (assumed: the documents do not say), so a client that waits `retry_after` seconds is
admitted again.
"""

from __future__ import annotations

from collections import deque


class SlidingWindowLimiter:
    """`limit` requests per `window_seconds` per key; `limit == 0` means unlimited (nothing kept)."""

    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        if limit < 0:
            raise ValueError("limit must be 0 (unlimited) or more")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.limit = limit
        self.window = float(window_seconds)
        self._admitted: dict[str, deque[float]] = {}

    def _window_of(self, key: str, now: float) -> deque[float]:
        times = self._admitted.setdefault(key, deque())
        # the clock may have been set back (admin `set`): times after `now` no longer happened
        while times and times[-1] > now:
            times.pop()
        horizon = now - self.window
        while times and times[0] <= horizon:
            times.popleft()
        return times

    def acquire(self, key: str, now: float) -> float | None:
        """Admit one request of `key` at `now` (seconds): None when admitted (and counted),
        otherwise the seconds until the oldest counted request leaves the window."""
        if self.limit == 0:
            return None
        times = self._window_of(key, now)
        if len(times) >= self.limit:
            # never above the window: (t + 60) - t can round to 60.00000000000001
            return min(self.window, times[0] + self.window - now)
        times.append(now)
        return None

    def used(self, key: str, now: float) -> int:
        """How many requests of `key` count against the limit at `now`."""
        if self.limit == 0:
            return 0
        return len(self._window_of(key, now))

    def clear(self) -> None:
        self._admitted.clear()
