"""LOKE as the event source, tested from the receiving side: a test CRM receiver (an aiohttp server
started here on 127.0.0.1, port 0) subscribes, gets every event type signed, and the mock retries,
delays, duplicates and reorders deliveries on the virtual clock. Tests move the clock; they never
sleep for a backoff (they only poll briefly for an asynchronous POST to land)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from aiohttp import web
from jsonschema import Draft202012Validator

from mock_server.schema import dereference
from mock_server.spec import load_document
from mock_server.testing import MockServer

SECRET = "whsec_test_9fK2mQ7xL4pR8tV1"
ALL_EVENTS = [
    "customer.created", "customer.updated", "customer.updated-statistics", "payment.completed",
    "payment.refunded", "order.created", "order.accepted", "order.rejected", "order.completed",
]
T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class CrmReceiver:
    """A CRM's webhook endpoint: records every POST; answers the scripted statuses in turn (then 200)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[int] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.received.append(Received(request.path, dict(request.headers), body))
            status = self.script.pop(0) if self.script else 200
        return web.Response(status=status, text="ok")

    def start(self) -> CrmReceiver:
        ready = threading.Event()

        async def boot() -> None:
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = int(self._runner.addresses[0][1])

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="crm-receiver", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def url(self, path: str = "/hooks/loke") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self, script: list[int] | None = None) -> None:
        with self._lock:
            self.received.clear()
            self.script = list(script or [])

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} POSTs, got {len(self.received)}")


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a CRM does with X-Event-Signature (public docs): HMAC-SHA256 of the raw body, hex."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


@pytest.fixture(scope="module")
def receiver() -> Iterator[CrmReceiver]:
    crm = CrmReceiver().start()
    yield crm
    crm.stop()


@pytest.fixture
def crm(receiver: CrmReceiver, mock: MockServer) -> CrmReceiver:
    receiver.reset()
    return receiver


class Loke:
    """The mock's LOKE API and admin calls, for one organization."""

    def __init__(self, mock: MockServer) -> None:
        self.mock = mock
        creds = mock.credentials_cache()["loke"]
        self.org = creds["organization_id"]
        self.headers = {"Authorization": f"Bearer {creds['access_token']}"}

    def subscribe(self, url: str, events: list[str] | None = None, ref: str = "crm", secret: str = SECRET) -> Any:
        response = requests.put(
            self.mock.url("loke", f"/organizations/{self.org}/webhooks/{ref}"),
            json={"events": events or ALL_EVENTS, "secret": secret, "url": url},
            headers=self.headers,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def emit(self, event: str, **data: Any) -> Any:
        response = self.mock.admin("POST", "/loke/events", json={"event": event, **data})
        assert response.status_code == 202, response.text
        return response.json()

    def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        response = self.mock.admin("GET", "/loke/deliveries", params=filters)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    def wait_attempts(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.deliveries()
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"expected {count} delivery attempts, got {self.deliveries()}")

    def faults(self, ref: str = "crm", **modes: Any) -> Any:
        response = self.mock.admin("PUT", f"/loke/organizations/{self.org}/webhooks/{ref}/faults", json=modes)
        assert response.status_code == 200, response.text
        return response.json()

    def freeze(self, at: datetime = T0) -> None:
        self.mock.admin("POST", "/clock", json={"set": at.isoformat(), "frozen": True}).raise_for_status()

    def new_customer(self, **fields: Any) -> str:
        customer = {"firstName": "Ada", "lastName": "Lovelace", **fields}
        return str(self.emit("customer.created", customer=customer)["customer"]["id"])


@pytest.fixture
def loke(mock: MockServer) -> Loke:
    return Loke(mock)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _quiet(check: Callable[[], bool], seconds: float = 0.3) -> None:
    """Assert nothing more happens for a short real-time moment (no backoff is waited out)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check()
        time.sleep(0.02)


def _event_schemas() -> dict[str, Any]:
    document = load_document("loke")
    resolved = dereference(document, document)
    return {
        name: item["post"]["requestBody"]["content"]["application/json"]["schema"]
        for name, item in resolved["webhooks"].items()
    }


# -- acceptance: every event type, signed; a tampered body fails ----------------------------------
def test_receiver_gets_every_event_type_with_a_valid_signature(loke: Loke, crm: CrmReceiver) -> None:
    loke.freeze()
    loke.subscribe(crm.url())
    cid = loke.new_customer(email="ada@example.com", phoneNumber="+61400111222")
    loke.emit("customer.updated", customer={"id": cid, "lastName": "King"})
    loke.emit("customer.updated-statistics", customer={"id": cid}, statistics={"pointsBalance": 75})
    paid = loke.emit("payment.completed", payment={"customer": {"id": cid}, "items": [{"name": "Tea", "amount": 450}]})
    loke.emit("payment.refunded", payment={"id": paid["payment"]["id"]})
    order = loke.emit("order.created", order={"items": [{"name": "Pie", "amount": 800}]})["order"]["id"]
    loke.emit("order.accepted", order={"id": order})
    loke.emit("order.rejected", order={"items": [{"name": "Soup", "amount": 900}]})
    loke.emit("order.completed", order={"id": order}, customer={"id": cid})
    expected = [
        "customer.created", "customer.updated", "customer.updated-statistics",
        "payment.completed", "customer.updated-statistics", "payment.refunded", "customer.updated-statistics",
        "order.created", "order.accepted", "order.rejected",
        "order.completed", "payment.completed", "customer.updated-statistics",
    ]
    got = crm.wait_for(len(expected))
    assert [r.payload["event"] for r in got] == expected  # in order: no fault mode is set
    assert set(expected) == set(ALL_EVENTS)
    schemas = _event_schemas()
    for request in got:
        assert request.headers["Content-Type"] == "application/json"
        assert verify(SECRET, request.body, request.headers["X-Event-Signature"])
        errors = [e.message for e in Draft202012Validator(
            schemas[request.payload["event"]], format_checker=Draft202012Validator.FORMAT_CHECKER
        ).iter_errors(request.payload)]
        assert errors == [], (request.payload["event"], errors)
        assert request.payload["organization"] == {"id": loke.org, "name": "Bean Counter Cafe"}
        assert SECRET.encode() not in request.body
    # the documented payloads carry the state the event made, timed by the virtual clock
    created = got[0].payload["customer"]
    assert created["createdAt"] == _iso(T0) and created["email"] == "ada@example.com"
    assert got[1].payload["customer"]["lastName"] == "King"
    assert got[3].payload["payment"]["chargedAmount"] == 450
    assert got[4].payload["statistics"]["totalSpend"] == 450
    assert got[6].payload["statistics"]["totalSpend"] == 0
    assert got[12].payload["statistics"]["totalSpend"] == 800
    # a tampered body, or the right body with another secret, fails verification
    first = got[0]
    tampered = first.body.replace(b"Lovelace", b"Lovelacf")
    assert tampered != first.body
    assert not verify(SECRET, tampered, first.headers["X-Event-Signature"])
    assert not verify("another-secret", first.body, first.headers["X-Event-Signature"])
    # the deliveries log shows the same signatures, never the secret
    log = loke.wait_attempts(len(expected))
    assert [d["signature"] for d in log] == [r.headers["X-Event-Signature"] for r in got]
    assert SECRET not in json.dumps(log)


def test_only_subscribed_events_are_posted_to_each_subscription(loke: Loke, crm: CrmReceiver) -> None:
    loke.subscribe(crm.url("/a"), ["customer.created"], ref="a", secret="secret-a")
    loke.subscribe(crm.url("/b"), ["customer.updated"], ref="b", secret="secret-b")
    cid = loke.new_customer()
    loke.emit("customer.updated", customer={"id": cid, "firstName": "Augusta"})
    got = crm.wait_for(2)
    assert sorted((r.path, r.payload["event"]) for r in got) == [("/a", "customer.created"), ("/b", "customer.updated")]
    for r in got:
        assert verify(f"secret-{r.path[1:]}", r.body, r.headers["X-Event-Signature"])
    _quiet(lambda: len(crm.received) == 2)


def test_points_adjustment_through_the_api_sends_updated_statistics(loke: Loke, crm: CrmReceiver) -> None:
    loke.subscribe(crm.url(), ["customer.updated-statistics"])
    cid = loke.new_customer()
    response = requests.put(
        loke.mock.url("loke", f"/organizations/{loke.org}/customers/{cid}/points/adj-1"),
        json={"amount": 250, "notes": "welcome"},
        headers=loke.headers,
        timeout=10,
    )
    assert response.status_code == 204
    got = crm.wait_for(1)
    assert got[0].payload["statistics"]["pointsBalance"] == 250
    assert got[0].payload["customer"]["id"] == cid


# -- acceptance: retries on the virtual clock ------------------------------------------------------
def test_500_twice_then_200_is_exactly_three_attempts_at_10_and_20_seconds(loke: Loke, crm: CrmReceiver) -> None:
    crm.reset(script=[500, 500, 200])
    loke.freeze()
    loke.subscribe(crm.url())
    loke.new_customer()
    first = loke.wait_attempts(1)[0]
    assert (first["attempt"], first["status"], first["outcome"]) == (1, 500, "failed")
    assert first["time"] == _iso(T0) and first["retry_at"] == _iso(T0 + timedelta(seconds=10))

    loke.mock.advance(9.9)
    _quiet(lambda: len(crm.received) == 1)  # not due yet
    loke.mock.advance(0.1)
    second = loke.wait_attempts(2)[1]
    assert (second["attempt"], second["status"], second["time"]) == (2, 500, _iso(T0 + timedelta(seconds=10)))
    assert second["retry_at"] == _iso(T0 + timedelta(seconds=30))

    loke.mock.advance(20)
    third = loke.wait_attempts(3)[2]
    assert (third["attempt"], third["status"], third["outcome"], third["retry_at"]) == (3, 200, "delivered", None)
    assert third["time"] == _iso(T0 + timedelta(seconds=30))

    loke.mock.advance(1000)
    _quiet(lambda: len(crm.received) == 3 and len(loke.deliveries()) == 3)
    bodies = {r.body for r in crm.received}
    assert len(bodies) == 1  # every attempt sends the same bytes and signature
    assert len({d["delivery_id"] for d in loke.deliveries()}) == 1


def test_a_4xx_answer_is_never_retried(loke: Loke, crm: CrmReceiver) -> None:
    crm.reset(script=[400])
    loke.freeze()
    loke.subscribe(crm.url())
    loke.new_customer()
    only = loke.wait_attempts(1)[0]
    assert (only["status"], only["outcome"], only["retry_at"]) == (400, "rejected", None)
    for seconds in (10, 20, 40, 80, 1000):
        loke.mock.advance(seconds)
    _quiet(lambda: len(crm.received) == 1 and len(loke.deliveries()) == 1)


def test_no_answer_is_retried_up_to_five_attempts(loke: Loke, crm: CrmReceiver) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    loke.freeze()
    loke.subscribe(f"http://127.0.0.1:{dead_port}/hooks")
    loke.new_customer()
    loke.wait_attempts(1)
    for n, wait in enumerate((10, 20, 40, 80), start=2):
        loke.mock.advance(wait)
        loke.wait_attempts(n)
    attempts = loke.deliveries()
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4, 5]
    assert all(a["status"] is None and a["outcome"] == "failed" and a["error"] for a in attempts)
    offsets = [(datetime.fromisoformat(a["time"]) - T0).total_seconds() for a in attempts]
    assert offsets == [0, 10, 30, 70, 150]
    assert attempts[-1]["retry_at"] is None
    loke.mock.advance(10_000)
    _quiet(lambda: len(loke.deliveries()) == 5)


def test_deleting_the_subscription_stops_its_retries(loke: Loke, crm: CrmReceiver) -> None:
    crm.reset(script=[503, 503, 503])
    loke.freeze()
    loke.subscribe(crm.url())
    loke.new_customer()
    loke.wait_attempts(1)
    response = requests.delete(
        loke.mock.url("loke", f"/organizations/{loke.org}/webhooks/crm"), headers=loke.headers, timeout=10
    )
    assert response.status_code == 204
    loke.mock.advance(10)
    _quiet(lambda: len(crm.received) == 1)


def test_reset_cancels_pending_deliveries(loke: Loke, crm: CrmReceiver) -> None:
    loke.freeze()
    loke.subscribe(crm.url())
    loke.faults(delay_seconds=30)
    loke.new_customer()
    loke.mock.reset()
    loke.mock.advance(60)
    _quiet(lambda: not crm.received)


# -- acceptance: fault modes -----------------------------------------------------------------------
def test_duplicate_mode_posts_each_event_twice(loke: Loke, crm: CrmReceiver) -> None:
    loke.subscribe(crm.url(), ["customer.created"])
    answer = loke.faults(duplicates=1)
    assert answer["faults"]["duplicates"] == 1
    emitted = loke.emit("customer.created", customer={"firstName": "Dup", "lastName": "Licate"})
    assert emitted["deliveries"] == 2
    got = crm.wait_for(2)
    assert got[0].body == got[1].body
    assert got[0].headers["X-Event-Signature"] == got[1].headers["X-Event-Signature"]
    assert verify(SECRET, got[1].body, got[1].headers["X-Event-Signature"])
    log = loke.wait_attempts(2)
    assert sorted(d["copy"] for d in log) == [0, 1] and len({d["event_id"] for d in log}) == 1
    _quiet(lambda: len(crm.received) == 2)


def test_out_of_order_mode_delivers_newest_first(loke: Loke, crm: CrmReceiver) -> None:
    loke.subscribe(crm.url(), ["customer.created", "customer.updated"])
    loke.faults(reorder_window=2)
    cid = loke.new_customer()
    _quiet(lambda: not crm.received, 0.2)  # held until the window fills
    loke.emit("customer.updated", customer={"id": cid, "firstName": "Later"})
    got = crm.wait_for(2)
    assert [r.payload["event"] for r in got] == ["customer.updated", "customer.created"]
    assert all(d["reordered"] for d in loke.wait_attempts(2))


def test_out_of_order_mode_releases_held_deliveries_after_the_hold_time(loke: Loke, crm: CrmReceiver) -> None:
    loke.freeze()
    loke.subscribe(crm.url(), ["customer.created"])
    loke.faults(reorder_window=5, reorder_max_hold_seconds=45)
    loke.new_customer(firstName="First")
    loke.new_customer(firstName="Second")
    held = loke.mock.admin("GET", f"/loke/organizations/{loke.org}/webhooks/crm/faults").json()
    assert held["held"] == 2
    loke.mock.advance(44)
    _quiet(lambda: not crm.received, 0.2)
    loke.mock.advance(1)
    got = crm.wait_for(2)
    assert [r.payload["customer"]["firstName"] for r in got] == ["Second", "First"]


def test_delay_mode_holds_deliveries_on_the_virtual_clock(loke: Loke, crm: CrmReceiver) -> None:
    loke.freeze()
    loke.subscribe(crm.url(), ["customer.created"])
    loke.faults(delay_seconds=30)
    loke.new_customer()
    _quiet(lambda: not crm.received, 0.2)
    loke.mock.advance(30)
    got = crm.wait_for(1)
    attempt = loke.wait_attempts(1)[0]
    assert attempt["time"] == _iso(T0 + timedelta(seconds=30)) and attempt["delayed_seconds"] == 30
    # the payload keeps the event's own timestamp: the seed says to use it, not the arrival time
    assert got[0].payload["customer"]["createdAt"] == _iso(T0)


def test_clearing_fault_modes_releases_held_deliveries(loke: Loke, crm: CrmReceiver) -> None:
    loke.subscribe(crm.url(), ["customer.created"])
    loke.faults(reorder_window=3)
    loke.new_customer()
    assert loke.mock.admin("DELETE", f"/loke/organizations/{loke.org}/webhooks/crm/faults").status_code == 204
    crm.wait_for(1)
    assert loke.mock.admin("GET", f"/loke/organizations/{loke.org}/webhooks/crm/faults").json()["faults"] == {
        "delay_seconds": 0, "duplicates": 0, "reorder_window": 0, "reorder_max_hold_seconds": 60,
    }


def test_without_fault_modes_events_arrive_in_order(loke: Loke, crm: CrmReceiver) -> None:
    loke.subscribe(crm.url(), ["customer.created"])
    names = [f"Customer{n}" for n in range(8)]
    for name in names:
        loke.new_customer(firstName=name)
    got = crm.wait_for(len(names))
    assert [r.payload["customer"]["firstName"] for r in got] == names


def test_fault_mode_admin_errors(loke: Loke) -> None:
    missing = loke.mock.admin("PUT", f"/loke/organizations/{loke.org}/webhooks/nope/faults", json={"duplicates": 1})
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("application/problem+json")
    loke.subscribe("http://127.0.0.1:9/unused")
    bad = loke.mock.admin("PUT", f"/loke/organizations/{loke.org}/webhooks/crm/faults", json={"reorder_window": 1})
    assert bad.status_code == 400 and "reorder_window" in bad.text
    too_many = loke.mock.admin("PUT", f"/loke/organizations/{loke.org}/webhooks/crm/faults", json={"duplicates": 99})
    assert too_many.status_code == 400 and "duplicates" in too_many.text


def test_deliveries_can_be_filtered_and_cleared(loke: Loke, crm: CrmReceiver) -> None:
    loke.subscribe(crm.url(), ["customer.created", "customer.updated"])
    cid = loke.new_customer()
    loke.emit("customer.updated", customer={"id": cid, "gender": "FEMALE"})
    loke.wait_attempts(2)
    assert [d["event"] for d in loke.deliveries(event="customer.updated")] == ["customer.updated"]
    assert loke.deliveries(webhook_ref="other") == []
    assert loke.mock.admin("DELETE", "/loke/deliveries").status_code == 204
    assert loke.deliveries() == []


def test_event_admin_errors_name_the_field(loke: Loke) -> None:
    cases = [
        ({"event": "customer.created"}, 400, "customer"),
        ({"event": "customer.teleported"}, 400, "event"),
        ({"event": "customer.updated", "customer": {"id": "01HZZZZZZZZZZZZZZZZZZZZZZ1", "lastName": "X"}}, 404, "01HZ"),
        ({"event": "payment.refunded", "payment": {"id": "3f6c2a9e-8b1d-4c57-9e2a-6d4b7f1c0a85"}}, 404, "Payment"),
        ({"event": "customer.created", "organization_id": "nope", "customer": {"firstName": "A", "lastName": "B"}},
         404, "nope"),
        ({"event": "payment.completed", "payment": {"customer": {"id": "01HZZZZZZZZZZZZZZZZZZZZZZ1"}}}, 404, "01HZ"),
    ]
    for body, status, mentioned in cases:
        response = loke.mock.admin("POST", "/loke/events", json=body)
        assert response.status_code == status, (body, response.text)
        assert mentioned in response.json()["detail"], response.text
    loke.new_customer(email="taken@example.com")
    clash = loke.mock.admin(
        "POST", "/loke/events", json={"event": "customer.created",
                                       "customer": {"firstName": "B", "lastName": "C", "email": "taken@example.com"}}
    )
    assert clash.status_code == 409 and "customer.email" in clash.text
