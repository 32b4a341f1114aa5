"""Webhook deliveries over HTTP: the one module of the LOKE package that uses aiohttp.

Every delivery is asynchronous: the request that caused the event is answered first, the POSTs
run as tasks tracked in `services.background`. Retries and fault-mode holds are timers on the
virtual clock (`services.clock.call_later`), so advancing the clock through the admin API drives
them; nothing here sleeps in real time.

Order: the first attempts to one subscription are sent one at a time, in the order they were
released (an `asyncio.Lock` per subscription is FIFO), so a healthy receiver sees events in the
order they happened unless a fault mode says otherwise.

A delivery is fixed when its event happens (URL, body, signature). If its subscription is deleted,
attempts not yet made are dropped. `close()` (on `/__admin/reset`) cancels everything in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

import aiohttp

from mock_server.apis.base import Services
from mock_server.apis.loke.delivery import (
    Attempt,
    Delivery,
    ReorderBuffer,
    backoff_seconds,
    classify,
    will_retry,
)
from mock_server.apis.loke.store import LokeStore, Subscription

log = logging.getLogger("mock_server.loke")
DEFAULT_TIMEOUT_SECONDS = 10.0  # real seconds a receiver has to answer before it counts as no answer
USER_AGENT = "loyalty-mock LOKE-Webhooks/1.0"
_MAX_RESPONSE_BYTES = 64 * 1024


class Outbound:
    def __init__(self, services: Services, store: LokeStore) -> None:
        self._services = services
        self._store = store
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: dict[int, Any] = {}  # id -> clock timer (timers are not hashable)
        self._locks: dict[str, asyncio.Lock] = {}
        self._buffers: dict[str, ReorderBuffer[Delivery]] = {}
        self._hold_timers: dict[str, Any] = {}
        self.closed = False
        timeout = services.settings.extra.get("loke_delivery_timeout", DEFAULT_TIMEOUT_SECONDS)
        self.timeout = float(timeout) if isinstance(timeout, int | float) else DEFAULT_TIMEOUT_SECONDS

    # -- entry points (synchronous: called from handlers and clock timers) ------------------------
    def dispatch(self, deliveries: list[Delivery]) -> int:
        """Start the deliveries of one event batch. Returns how many POSTs (copies included) the
        subscriptions' fault modes will make as first attempts."""
        total = 0
        for delivery in deliveries:
            sub = self._subscription(delivery)
            if sub is None:
                continue
            faults = sub.faults
            total += 1 + faults.duplicates
            if faults.delay_seconds > 0:
                delayed = replace(delivery, delayed_seconds=faults.delay_seconds)
                self._later(faults.delay_seconds, lambda d=delayed: self._release(d))
            else:
                self._release(delivery)
        return total

    def subscription_changed(self, sub: Subscription) -> None:
        """Fault modes changed: deliveries held for reordering go out now if reordering is off."""
        if not sub.faults.reorder_window:
            self._flush(sub.id)

    def subscription_deleted(self, sub: Subscription) -> None:
        """Held deliveries are dropped; pending retries find the subscription gone and stop."""
        self._buffers.pop(sub.id, None)
        self._locks.pop(sub.id, None)
        self._cancel_hold(sub.id)

    def close(self) -> None:
        """Forget everything (the store is being replaced): cancel timers and POSTs in flight."""
        self.closed = True
        for timer in list(self._timers.values()):
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()

    def held_for(self, webhook_id: str) -> int:
        """Deliveries held for reordering for one subscription."""
        buffer = self._buffers.get(webhook_id)
        return len(buffer) if buffer is not None else 0

    # -- the pipeline: delay -> duplicate -> reorder -> send ------------------------------------
    def _subscription(self, delivery: Delivery) -> Subscription | None:
        state = self._store.orgs.get(delivery.organization_id)
        if state is None:
            return None
        for sub in state.subscriptions.values():
            if sub.id == delivery.webhook_id:
                return sub
        return None

    def _release(self, delivery: Delivery) -> None:
        if self.closed:
            return
        sub = self._subscription(delivery)
        if sub is None:
            return
        copies = [delivery] + [
            replace(delivery, id=f"{delivery.id}.{n}", copy=n) for n in range(1, sub.faults.duplicates + 1)
        ]
        window = sub.faults.reorder_window
        for copy in copies:
            if window:
                buffer = self._buffers.setdefault(sub.id, ReorderBuffer())
                if not len(buffer):
                    self._hold_timers[sub.id] = self._later(
                        sub.faults.reorder_max_hold_seconds, lambda sid=sub.id: self._flush(sid)
                    )
                released = buffer.add(replace(copy, reordered=True), window)
                if released:
                    self._cancel_hold(sub.id)
                    for item in released:
                        self._spawn(item, 1)
            else:
                self._spawn(copy, 1)

    def _flush(self, webhook_id: str) -> None:
        self._cancel_hold(webhook_id)
        buffer = self._buffers.get(webhook_id)
        if buffer is not None:
            for item in buffer.flush():
                self._spawn(item, 1)

    def _cancel_hold(self, webhook_id: str) -> None:
        timer = self._hold_timers.pop(webhook_id, None)
        if timer is not None:
            timer.cancel()
            self._timers.pop(id(timer), None)

    def _later(self, seconds: float, callback: Any) -> Any:
        """A timer on the virtual clock. Its callback never raises into the clock (a failure
        there would break whatever moved the clock, e.g. an admin call)."""
        clock = self._services.clock

        def fire() -> None:
            self._timers.pop(id(timer), None)
            if self.closed:
                return
            try:
                callback()
            except Exception:
                log.exception("LOKE scheduled delivery work failed")

        timer = clock.call_later(seconds, fire)
        self._timers[id(timer)] = timer
        return timer

    def _spawn(self, delivery: Delivery, attempt: int) -> None:
        if self.closed or self._services.replaying:  # a --state-file replay sends nothing again
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a store used without the app): nothing can be sent
            log.warning("LOKE delivery %s not sent: no running event loop", delivery.id)
            return
        task = loop.create_task(self._attempt(delivery, attempt), name=f"loke-{delivery.id}-{attempt}")
        self._tasks.add(task)
        self._services.background.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._services.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("LOKE delivery task failed", exc_info=task.exception())

    async def _attempt(self, delivery: Delivery, attempt: int) -> None:
        if not self._store.webhook_alive(delivery.organization_id, delivery.webhook_id):
            return
        lock = self._locks.setdefault(delivery.webhook_id, asyncio.Lock())
        async with lock:
            if self.closed or not self._store.webhook_alive(delivery.organization_id, delivery.webhook_id):
                return
            sent_at = self._services.clock.now()
            started = time.perf_counter()
            status, error = await self._post(delivery)
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
        if self.closed:
            return
        self._record(delivery, attempt, sent_at, status, error, duration_ms)

    def _record(
        self,
        delivery: Delivery,
        attempt: int,
        sent_at: datetime,
        status: int | None,
        error: str | None,
        duration_ms: float,
    ) -> None:
        """Log the attempt and, in the same synchronous step, schedule the retry it calls for."""
        outcome = classify(status)
        retry_at = None
        if will_retry(outcome, attempt):
            wait = backoff_seconds(attempt)
            timer = self._later(wait, lambda: self._spawn(delivery, attempt + 1))
            retry_at = timer.when
        self._store.record_attempt(
            Attempt(0, delivery, attempt, sent_at, status, outcome, error, retry_at, duration_ms)
        )

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None]:
        http: aiohttp.ClientSession | None = self._services.http
        if http is None:
            return None, "the mock has no HTTP client (not started as an app)"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Event-Signature": delivery.signature,
        }
        try:
            async with http.post(
                delivery.url,
                data=delivery.body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    await response.content.read(_MAX_RESPONSE_BYTES)
                return response.status, None
        except TimeoutError:
            return None, f"no answer within {self.timeout:g} s"
        except aiohttp.ClientError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        except ValueError as exc:  # e.g. a URL aiohttp cannot send to
            return None, f"cannot send to {delivery.url}: {exc}"
