"""Faults outside the mock do not spread (issue 11, item 4).

- A LOKE webhook receiver that hangs (accepts, reads, never answers), resets connections, or
  answers slowly does not slow the other APIs: the p95 of Custom Trades GETs while deliveries are
  stuck is compared with a baseline measured in the same test, and LOKE's own calls stay prompt.
- Many hung receivers do not starve a healthy one (the outgoing connection pool is not a shared
  bottleneck; regression test of an engine fix: aiohttp's default pool of 100 connections).
- A POS append-vouchers endpoint that never answers does not hold a request slot forever: the
  admin bills/vouchers call answers a clear 504 within `pos_callback_timeout`, the bill is
  unchanged, other requests are served meanwhile.
- SIGTERM during load: requests that started before the signal finish with their answer, the
  process exits 0 within a few seconds (also while webhook deliveries hang).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from mock_server.settings import Settings
from mock_server.testing import MockServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NEW_CUSTOMER = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
ALL_EVENTS = ["customer.created", "customer.updated", "customer.updated-statistics", "payment.completed",
              "payment.refunded"]


class BadReceiver:
    """A webhook receiver (or POS endpoint) that misbehaves, on 127.0.0.1 in its own thread:
    `hang` reads the request and never answers; `reset` reads it and resets the connection (RST);
    `slow` answers 200 after `delay` seconds; `ok` answers 200 at once."""

    def __init__(self, mode: str, delay: float = 2.0) -> None:
        self.mode = mode
        self.delay = delay
        self.connections = 0
        self.requests = 0
        self.open = 0
        self.resets = 0
        self.answered = 0
        self._lock = threading.Lock()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()  # handlers that have started running
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self.port = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _read_request(self, reader: asyncio.StreamReader) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return False
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readexactly(length)
        with self._lock:
            self.requests += 1
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        with self._lock:
            self.connections += 1
            self.open += 1
        self._writers.add(writer)
        try:
            while await self._read_request(reader):
                if self.mode == "hang":  # never answers; notices only when the caller hangs up
                    while await reader.read(65536):
                        pass
                    return
                if self.mode == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    with self._lock:
                        self.resets += 1
                    writer.transport.abort()
                    return
                if self.mode == "slow":
                    await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
                with self._lock:
                    self.answered += 1
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with self._lock:
                self.open -= 1
            self._writers.discard(writer)
            writer.transport.abort()

    def __enter__(self) -> BadReceiver:
        ready = threading.Event()

        async def boot() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
            self.port = self._server.sockets[0].getsockname()[1]

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"bad-receiver-{self.mode}", daemon=True)
        self._thread.start()
        assert ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            """Stop accepting, close every connection accepted so far, wait until each is closed,
            and only then close the server.

            asyncio (3.11) wraps an accepted socket in a transport in a task of its own
            (`_accept_connection2`). Such a task cancelled before its first step never runs, and
            one that runs after `Server.close()` fails an assertion in `Server._attach`: either way
            its raw socket is left for the garbage collector ("ResourceWarning: unclosed <socket
            ...>", the CI flake of issue 17). So: stop reading the listening sockets (no new
            accepts), let the accepts already made finish, close what they opened (cancelling only
            handlers that have started), and close the server when nothing else runs."""
            assert self._server is not None
            for listening in self._server.sockets:
                self._loop.remove_reader(listening.fileno())
            me = asyncio.current_task()
            deadline = time.monotonic() + 5
            while True:
                for writer in list(self._writers):
                    writer.transport.abort()
                for task in list(self._handlers):
                    task.cancel()
                others = [task for task in asyncio.all_tasks() if task is not me]
                if not others:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"receiver tasks still running at close: {others}")
                await asyncio.wait(others, timeout=0.05)
            self._server.close()
            await asyncio.sleep(0)  # the transports' connection_lost callbacks close their sockets

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait(self, what: str, at_least: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if getattr(self, what) >= at_least:
                return
            time.sleep(0.01)
        raise AssertionError(f"{self.mode} receiver: expected {what} >= {at_least}, got {getattr(self, what)}")


@pytest.mark.parametrize("mode", ["reset", "hang"])
def test_the_bad_receiver_closes_every_connection_it_accepted_when_it_stops(mode: str) -> None:
    """Regression (issue 17, the CI flake of the `reset` isolation test): connections the kernel
    had completed but the receiver's loop had not yet wrapped in transports when it stopped were
    left for the garbage collector, "ResourceWarning: unclosed <socket ...>" (the sockets came from
    the receiver's `accept`, not from the mock). Made deterministic: the receiver's loop is held
    while the connections arrive, so its close runs before asyncio has handled a single one."""
    connections = 32
    unraisable: list[str] = []
    previous = sys.unraisablehook

    def record(report: Any) -> None:
        unraisable.append(f"{report.exc_value!r} (object {report.object!r})")
        previous(report)

    clients: list[socket.socket] = []
    sys.unraisablehook = record
    try:
        receiver = BadReceiver(mode).__enter__()
        blocked, release = threading.Event(), threading.Event()
        receiver._loop.call_soon_threadsafe(lambda: (blocked.set(), release.wait(10)))
        assert blocked.wait(10)
        for _ in range(connections):  # the kernel completes the handshakes; nothing is accepted yet
            clients.append(socket.create_connection(("127.0.0.1", receiver.port), timeout=5))
        threading.Timer(0.3, release.set).start()  # after __exit__ has queued its close
        receiver.__exit__(None, None, None)
        gc.collect()
        for client in clients:  # every connection was closed by the receiver, none is left open
            with contextlib.suppress(ConnectionResetError):
                assert client.recv(1) == b""
    finally:
        sys.unraisablehook = previous
        for client in clients:
            client.close()
    assert unraisable == []
    assert receiver.connections == connections


# -- helpers ------------------------------------------------------------------------------------------
def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


class Apis:
    """Authenticated calls to Custom Trades and LOKE on one mock."""

    def __init__(self, mock: MockServer) -> None:
        self.mock = mock
        creds = mock.credentials_cache()
        self.ct = {"Authorization": f"Bearer {creds['customtrades']['api_key']}"}
        self.loke = {"Authorization": f"Bearer {creds['loke']['access_token']}"}
        self.org = creds["loke"]["organization_id"]
        self.session = requests.Session()

    def ct_customer(self) -> str:
        created = self.session.post(self.mock.url("customtrades", "/v1/customers"), json=NEW_CUSTOMER,
                                    headers=self.ct, timeout=10)
        assert created.status_code == 200, created.text  # Custom Trades answers a create with 200
        found: str = created.json()["data"]["uuid"]
        return found

    def ct_latencies(self, customer: str, count: int) -> list[float]:
        """Sequential authenticated GETs of one customer on a keep-alive connection, in seconds."""
        url = self.mock.url("customtrades", f"/v1/customers/{customer}")
        latencies = []
        for _ in range(count):
            began = time.perf_counter()
            response = self.session.get(url, headers=self.ct, timeout=10)
            latencies.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
        return latencies

    def loke_path(self, path: str) -> str:
        return self.mock.url("loke", f"/organizations/{self.org}{path}")

    def subscribe(self, ref: str, url: str, events: list[str] | None = None) -> None:
        response = self.session.put(self.loke_path(f"/webhooks/{ref}"), headers=self.loke, timeout=10,
                                    json={"events": events or ALL_EVENTS, "secret": "s3cret", "url": url})
        assert response.status_code == 200, response.text

    def loke_customer(self) -> str:
        response = self.mock.admin("POST", "/loke/events", json={
            "event": "customer.created", "customer": {"firstName": "Grace", "lastName": "Hopper"}})
        assert response.status_code < 300, response.text
        listed = self.session.get(self.loke_path("/customers"), headers=self.loke, timeout=10).json()
        found: str = listed[-1]["id"]
        return found


class EventPump:
    """Fires LOKE points adjustments (each one an event delivered to every subscription) from a
    thread until stopped; records each call's status and latency."""

    def __init__(self, apis: Apis, customer: str, pause: float = 0.01) -> None:
        self.apis, self.customer, self.pause = apis, customer, pause
        self.statuses: list[int] = []
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            began = time.perf_counter()
            response = session.put(self.apis.loke_path(f"/customers/{self.customer}/points/{uuid.uuid4()}"),
                                   json={"amount": 1}, headers=self.apis.loke, timeout=30)
            self.latencies.append(time.perf_counter() - began)
            self.statuses.append(response.status_code)
            time.sleep(self.pause)

    def __enter__(self) -> EventPump:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


# -- webhook receivers that misbehave ------------------------------------------------------------------
SUBSCRIPTIONS = 20


@pytest.mark.parametrize("mode", ["hang", "reset", "slow"])
def test_a_misbehaving_webhook_receiver_does_not_slow_the_other_apis(mock: MockServer, mode: str) -> None:
    apis = Apis(mock)
    customer = apis.ct_customer()
    loke_customer = apis.loke_customer()
    apis.ct_latencies(customer, 30)  # warm-up
    baseline = apis.ct_latencies(customer, 200)

    with BadReceiver(mode, delay=3.0) as receiver:
        for n in range(SUBSCRIPTIONS):
            apis.subscribe(f"bad-{n}", receiver.url(f"/hook/{n}"))
        with EventPump(apis, loke_customer) as pump:
            # every subscription has a delivery at the receiver before we measure
            receiver.wait("requests", SUBSCRIPTIONS)
            during = apis.ct_latencies(customer, 200)
            stuck_at_end = receiver.open
        try:
            base95, during95 = p95(baseline), p95(during)
            print(f"{mode}: CT GET p95 baseline {base95 * 1000:.2f} ms, during {during95 * 1000:.2f} ms; "
                  f"receiver connections {receiver.connections}, requests {receiver.requests}, "
                  f"open at end {stuck_at_end}, resets {receiver.resets}; LOKE adjustPoints "
                  f"{len(pump.statuses)} calls, p95 {p95(pump.latencies) * 1000:.2f} ms")
            # the fault really happened while we measured
            if mode == "hang":
                assert stuck_at_end >= SUBSCRIPTIONS  # one hung POST per subscription, all still open
                assert receiver.answered == 0
            elif mode == "reset":
                assert receiver.resets >= SUBSCRIPTIONS
                attempts = mock.admin("GET", "/loke/deliveries").json()
                failed = [a for a in attempts if a["status"] is None]
                assert len(failed) >= SUBSCRIPTIONS, attempts[:3]
            else:
                assert stuck_at_end >= 1 and receiver.requests >= SUBSCRIPTIONS
            # ... and the other APIs did not notice: same order of latency as without it
            assert during95 <= 3 * base95 + 0.020, (base95, during95)
            # LOKE itself answers the call that caused the event before delivering it: waiting for
            # the receiver would cost every call its 3 s delay. (Not a p95 of ~16 calls, which is
            # their maximum: one 0.6 s pause of the whole test process, seen once in a CI run on a
            # fresh clone, is no delivery wait.)
            assert pump.statuses and set(pump.statuses) == {204}
            assert statistics.median(pump.latencies) < 0.05, pump.latencies
            assert max(pump.latencies) < 3.0, pump.latencies
        finally:
            mock.reset()  # cancels the deliveries in flight before the receiver goes away


def test_many_hung_receivers_do_not_starve_a_healthy_one(mock: MockServer) -> None:
    """Regression: the mock's outgoing HTTP client had aiohttp's default pool of 100 connections,
    so 100 subscriptions to a receiver that never answers held every slot for the 10 s delivery
    timeout, and deliveries to every other subscriber (and the POS callbacks) waited behind them."""
    apis = Apis(mock)
    with BadReceiver("hang") as hung, BadReceiver("ok") as healthy:
        try:
            for n in range(110):
                apis.subscribe(f"hung-{n:03d}", hung.url(f"/hook/{n}"), ["customer.created"])
            apis.subscribe("zz-healthy", healthy.url(), ["customer.created"])
            began = time.monotonic()
            apis.loke_customer()
            hung.wait("open", 110, timeout=5)
            healthy.wait("answered", 1, timeout=3)
            assert time.monotonic() - began < 3
        finally:
            mock.reset()


# -- a POS append-vouchers endpoint that never answers ------------------------------------------------
POS_TIMEOUT = 1.0
VOUCHER = {"id": "VCH-5", "title": "R5 off", "apply_to": "BASKET", "discount_type": "FIXED", "value": "5.00"}


def test_a_pos_that_never_answers_does_not_hold_a_request_slot(tmp_path: Any) -> None:
    with BadReceiver("hang") as till, MockServer(Settings(
        port=0, strict=True, apis=("letstrade-pos", "customtrades"), customtrades_quota=0,
        pos_callback_url=till.url("/append-vouchers"), pos_callback_timeout=POS_TIMEOUT,
    )) as mock:
        apis = Apis.__new__(Apis)
        apis.mock, apis.session = mock, requests.Session()
        creds = mock.credentials()
        apis.ct = {"Authorization": f"Bearer {creds['customtrades']['api_key']}"}
        pos = {"Authorization": f"Bearer {creds['letstrade']['token']}"}
        customer = apis.ct_customer()
        apis.ct_latencies(customer, 30)
        baseline = apis.ct_latencies(customer, 100)
        bills: list[dict[str, Any]] = []
        for n in range(4):  # four bills printed (get/offerings with code null opens a QR bill)
            basket = {"uuid": str(uuid.uuid4()), "total": "50.00", "outstanding": "50.00", "product_list": [
                {"sku": "A", "pid": "pid-A", "quantity": "1", "price": "50.00", "title": "A"}]}
            bill: dict[str, Any] = {"store_id": "STORE-1", "terminal_id": f"TILL-{n}", "basket": basket, "code": None}
            opened = requests.post(mock.url("letstrade-pos", "/v1/get/offerings"), json=bill, headers=pos, timeout=10)
            assert opened.status_code == 200, opened.text
            bills.append(bill)

        def select(body: dict[str, Any]) -> tuple[float, requests.Response]:
            path = f"/letstrade-pos/bills/{body['store_id']}/{body['terminal_id']}/{body['basket']['uuid']}/vouchers"
            began = time.perf_counter()
            answer = requests.post(mock.admin_url(path), json={"vouchers": [VOUCHER]}, timeout=30)
            return time.perf_counter() - began, answer

        with ThreadPoolExecutor(len(bills)) as pool:
            pending = [pool.submit(select, body) for body in bills]
            till.wait("requests", len(bills), timeout=POS_TIMEOUT)  # every callback is at the till, unanswered
            during = apis.ct_latencies(customer, 100)  # other requests are served meanwhile
            answers = [f.result() for f in pending]
        print(f"POS hang: CT GET p95 baseline {p95(baseline) * 1000:.2f} ms, while 4 callbacks hang "
              f"{p95(during) * 1000:.2f} ms; admin answers after "
              + ", ".join(f"{took:.2f} s ({a.status_code})" for took, a in answers))
        assert p95(during) <= 3 * p95(baseline) + 0.020
        for took, answer in answers:
            assert answer.status_code == 504, answer.text
            assert answer.headers["Content-Type"].startswith("application/problem+json")
            detail = answer.json()["detail"]
            assert f"did not answer within {POS_TIMEOUT:g} s" in detail and "unchanged" in detail, detail
            assert POS_TIMEOUT * 0.9 <= took < POS_TIMEOUT + 1.0
        # the slots are released: the mock hung up on the till, and nothing changed on the bills
        till.wait("connections", len(bills))
        deadline = time.monotonic() + 2
        while till.open and time.monotonic() < deadline:
            time.sleep(0.01)
        assert till.open == 0, "the mock still holds connections to the till"
        for body in bills:
            order = mock.admin("GET", "/letstrade-pos/orders", params={"transaction_id": body["basket"]["uuid"]})
            assert [(o["status"], o["app_vouchers"]) for o in order.json()] == [("OPEN", [])]
        user = mock.admin("GET", f"/letstrade-pos/users/{creds['letstrade_pos']['default_customer_id']}").json()
        assert all(v["id"] != VOUCHER["id"] for v in user["vouchers"]), "granted only on the till's 2xx"


# -- SIGTERM during load --------------------------------------------------------------------------------
@contextlib.contextmanager
def mock_process(*options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--log-level", "error",
         "--customtrades-quota", "0", "--capillary-rpm", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        admin = ""
        for line in proc.stdout:
            name, url = line.split()
            if name == "admin":
                admin = url
                break
        assert admin, proc.stderr.read() if proc.stderr else ""
        yield proc, admin.removesuffix("/__admin")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_sigterm_during_load_finishes_in_flight_requests_and_exits_0() -> None:
    with mock_process() as (proc, base), BadReceiver("hang") as hung:
        creds = requests.get(f"{base}/__admin/credentials", timeout=10).json()
        ct = {"Authorization": f"Bearer {creds['customtrades']['api_key']}"}
        loke = {"Authorization": f"Bearer {creds['loke']['access_token']}"}
        org = creds["loke"]["organization_id"]
        # a webhook delivery hangs while we stop (it must not hold up the exit)
        put = requests.put(f"{base}/loke/organizations/{org}/webhooks/hung", headers=loke, timeout=10,
                           json={"events": ["customer.created"], "secret": "s", "url": hung.url()})
        assert put.status_code == 200
        assert requests.post(f"{base}/__admin/loke/events", timeout=10, json={
            "event": "customer.created", "customer": {"firstName": "A", "lastName": "B"}}).status_code < 300
        hung.wait("open", 1)
        # every Custom Trades request takes 400 ms, so many are in flight when the signal comes
        fault = {"api": "customtrades", "latency_ms": 400}
        assert requests.post(f"{base}/__admin/faults", json=fault, timeout=10).status_code == 201

        signalled = threading.Event()
        signal_at: list[float] = []
        outcomes: list[tuple[float, float, str]] = []  # (started, ended, "200" or the exception)
        lock = threading.Lock()

        def worker() -> None:
            session = requests.Session()
            while not signalled.is_set():
                started = time.monotonic()
                try:
                    response = session.post(f"{base}/customtrades/v1/customers", json=NEW_CUSTOMER, headers=ct,
                                            timeout=10)
                    outcome = str(response.status_code)
                except requests.RequestException as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with lock:
                    outcomes.append((started, time.monotonic(), outcome))

        with ThreadPoolExecutor(16) as pool:
            for _ in range(16):
                pool.submit(worker)
            time.sleep(1.0)  # a couple of rounds of requests, then the signal mid-flight
            signal_at.append(time.monotonic())
            proc.send_signal(signal.SIGTERM)
            signalled.set()
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pytest.fail("the mock did not exit within 10 s of SIGTERM")
            exited_after = time.monotonic() - signal_at[0]
        before = [o for o in outcomes if o[0] < signal_at[0]]
        in_flight = [o for o in before if o[1] > signal_at[0]]
        failed = [o for o in before if o[2] != "200"]
        print(f"SIGTERM: {len(outcomes)} requests, {len(before)} started before the signal, {len(in_flight)} "
              f"of them in flight at the signal; exit {code} after {exited_after:.2f} s")
        assert len(in_flight) >= 8  # the test really caught requests mid-flight
        assert not failed, failed[:5]
        assert code == 0
        assert exited_after < 5

