"""Webhook delivery policy, without I/O: what a delivery is, when it counts as failed, when the
next attempt is due, and the per-subscription fault modes (delay, duplicate, out of order).

LOKE (public docs): one POST per event; up to 5 attempts with exponential backoff (10 s, 20 s,
40 s, ...); only no response or a status >= 500 is a failure, so a 4xx answer is not retried.
`outbound.py` does the HTTP and schedules attempts on the virtual clock from these rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

MAX_ATTEMPTS = 5
FIRST_BACKOFF_SECONDS = 10.0

DELIVERED = "delivered"  # a 2xx answer: done
REJECTED = "rejected"  # 1xx/3xx/4xx: not a failure, never retried
FAILED = "failed"  # no answer or >= 500: retried while attempts remain


def backoff_seconds(attempt: int) -> float:
    """Seconds between failed attempt `attempt` and the next one: 10, 20, 40, 80."""
    if attempt < 1:
        raise ValueError("attempts are numbered from 1")
    return FIRST_BACKOFF_SECONDS * float(1 << (attempt - 1))


def classify(status: int | None) -> str:
    if status is None or status >= 500:
        return FAILED
    if 200 <= status < 300:
        return DELIVERED
    return REJECTED


def will_retry(outcome: str, attempt: int) -> bool:
    return outcome == FAILED and attempt < MAX_ATTEMPTS


def schedule(statuses: list[int | None]) -> list[tuple[int, float]]:
    """(attempt number, seconds after the first attempt) of every attempt a receiver answering
    `statuses` in turn gets (None = no answer). A pure model of the whole policy, for tests."""
    made: list[tuple[int, float]] = []
    offset = 0.0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        made.append((attempt, offset))
        status = statuses[attempt - 1] if attempt - 1 < len(statuses) else 200
        if not will_retry(classify(status), attempt):
            break
        offset += backoff_seconds(attempt)
    return made


@dataclass(frozen=True)
class FaultModes:
    """What a subscription's receiver must survive (set through the admin API).

    - `delay_seconds`: every delivery waits this long (virtual clock) before its first attempt;
    - `duplicates`: every delivery is sent 1 + duplicates times (identical body and signature);
    - `reorder_window`: deliveries are held until this many are waiting (or the oldest has waited
      `reorder_max_hold_seconds`), then sent newest first. 0 = off.
    """

    delay_seconds: float = 0.0
    duplicates: int = 0
    reorder_window: int = 0
    reorder_max_hold_seconds: float = 60.0

    @property
    def active(self) -> bool:
        return bool(self.delay_seconds or self.duplicates or self.reorder_window)

    def as_dict(self) -> dict[str, Any]:
        return {
            "delay_seconds": self.delay_seconds,
            "duplicates": self.duplicates,
            "reorder_window": self.reorder_window,
            "reorder_max_hold_seconds": self.reorder_max_hold_seconds,
        }


@dataclass(frozen=True)
class Delivery:
    """One event for one subscription: the exact bytes and signature every attempt sends."""

    id: str
    event_id: str
    event: str
    organization_id: str
    webhook_id: str
    webhook_ref: str
    url: str
    body: bytes
    signature: str
    copy: int = 0  # 0 = the original; 1.. = duplicates made by the `duplicates` fault mode
    delayed_seconds: float = 0.0
    reordered: bool = False


@dataclass
class Attempt:
    """One POST (or a POST that got no answer), as `/__admin/loke/deliveries` lists it."""

    id: int
    delivery: Delivery
    attempt: int
    time: datetime
    status: int | None
    outcome: str
    error: str | None
    retry_at: datetime | None
    duration_ms: float
    payload: Any = field(repr=False, default=None)


T = TypeVar("T")


class ReorderBuffer(Generic[T]):
    """Holds items and releases them newest first, `window` at a time."""

    def __init__(self) -> None:
        self._held: list[T] = []

    def __len__(self) -> int:
        return len(self._held)

    def add(self, item: T, window: int) -> list[T]:
        """Hold `item`; when `window` items are held, all of them, newest first (else [])."""
        self._held.append(item)
        if len(self._held) >= max(window, 1):
            return self.flush()
        return []

    def flush(self) -> list[T]:
        released, self._held = list(reversed(self._held)), []
        return released
