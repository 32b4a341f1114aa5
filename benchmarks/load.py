"""Load without loss (issue 11, item 3): mixed traffic across all five APIs, then an audit.

    python3 benchmarks/load.py [--seconds 60] [--workers 48] [--sample 1.0]

Starts the mock as its own process (`loyalty-mock serve --port <free> --customtrades-quota 0
--capillary-rpm 0 --log-level error`, all five APIs, default journal bounds), pinned to core 0 when
taskset exists (this client pins itself to core 1), and drives it from one asyncio + aiohttp client
with `--workers` concurrent workers, as fast as the mock answers (closed loop, no think time),
for `--seconds`. Loopback only; bounded in time. The mix (weights in MIX):

- Custom Trades: create a customer (unique e-mail), read a created one;
- Capillary: register a customer (unique mobile and e-mail, INSTORE), look one up;
- LOKE: award or deduct points (unique reference; a deduction beyond the balance is an expected
  400 `insufficient_points`), create a customer list, upsert a webhook subscription (to an event
  the run never fires, so no deliveries), read a customer;
- Let'sTrade channels: upsert a customer through a channel's webhook (unique e-mail);
- Let'sTrade POS: mint a P code (admin API), get/offerings, finalise; every DOUBLE-th code is
  finalised twice concurrently (exactly one 2xx expected, the other 409).

Then, with the mock still running, the audit:
- zero 5xx and zero transport errors, no unexpected statuses;
- zero lost writes: every acknowledged create is read back (Custom Trades GET by uuid; Capillary
  lookup by e-mail gives the same id; LOKE lists by id and webhooks in the list; channel customers
  via the admin read by e-mail; POS orders via the admin read, FINALISED with their code);
- every finalise counted once: exactly one 2xx per code, each code FINALISED, one order per code;
- the POS wallet reconciles to the cent: opening balance - sum of the charged basket totals ==
  closing balance (admin `GET /__admin/letstrade-pos/users/{id}`), and each order's
  `payments.wallet` equals its basket total (Decimal arithmetic);
- the LOKE points ledger reconciles: per customer, the sum of acknowledged adjustments equals the
  change of `statistics.pointsBalance` (and earned/redeemed totals likewise);
- resident memory (VmRSS from /proc/<pid>/status, sampled every `--sample` s): the curve is printed,
  and the growth from 25 % to 100 % of the run, which must be explained by the state the run
  stored (at most MAX_BYTES_PER_RECORD per acknowledged create) rather than by the journal or a
  leak; the journal must stay within its bound.

Prints every figure and a PASS/FAIL line; exit status 1 on any failure. Not run by the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIX = {
    "ct_create": 3, "ct_get": 3,
    "cap_register": 2, "cap_lookup": 1,
    "loke_points": 3, "loke_list": 1, "loke_webhook": 1, "loke_get": 1,
    "lt_upsert": 2,
    "pos_finalise": 2,
}
DOUBLE = 5  # every 5th POS code is finalised twice concurrently
LOKE_CUSTOMERS = 20
OPENING_WALLET = Decimal("100000000.00")
MAX_BYTES_PER_RECORD = 8 * 1024  # RSS growth after warm-up must be explained by the state stored
EXPECTED_4XX = {("loke_points", 400)}  # a deduction beyond the balance: insufficient_points


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runqueue_seconds(pid: int) -> float:
    """Time the process spent runnable but waiting for a CPU (/proc/<pid>/schedstat, field 2)."""
    try:
        with open(f"/proc/{pid}/schedstat") as handle:
            return int(handle.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@dataclass
class Ledger:
    """Everything the run was told was done (2xx answers), to audit afterwards."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    ct: dict[str, str] = field(default_factory=dict)  # uuid -> email
    cap: dict[str, int] = field(default_factory=dict)  # email -> createdId
    loke_lists: dict[str, str] = field(default_factory=dict)  # id -> name
    loke_webhooks: set[str] = field(default_factory=set)  # refs
    loke_points: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    lt: dict[str, str] = field(default_factory=dict)  # email -> _id
    pos_finalised: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)  # code -> answers
    pos_totals: dict[str, Decimal] = field(default_factory=dict)  # code -> basket total
    creates: list[float] = field(default_factory=list)  # monotonic time of each acknowledged create


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, creds: dict[str, Any], ledger: Ledger) -> None:
        self.s, self.base, self.ledger = session, base, ledger
        cap = creds["capillary"]
        digest = hashlib.md5(cap["till_password"].encode(), usedforsecurity=False).hexdigest()
        basic = "Basic " + base64.b64encode(f"{cap['till_username']}:{digest}".encode()).decode()
        self.h = {
            "customtrades": {"Authorization": f"Bearer {creds['customtrades']['api_key']}"},
            "capillary": {"Authorization": basic},
            "loke": {"Authorization": f"Bearer {creds['loke']['access_token']}"},
            "letstrade-pos": {"Authorization": f"Bearer {creds['letstrade']['token']}"},
        }
        self.org = creds["loke"]["organization_id"]
        self.counter = 0
        self.channel: dict[str, Any] = {}
        self.loke_customers: list[str] = []
        self.pos_user = ""

    def next(self) -> int:
        self.counter += 1
        return self.counter

    async def call(self, op: str, method: str, path: str, *, api: str | None = None, **kw: Any) -> tuple[int, Any]:
        """One request; records status and latency; returns (status, JSON body or None); status 0 on
        a transport error."""
        headers = {**(self.h[api] if api else {}), **kw.pop("headers", {})}
        began = time.perf_counter()
        try:
            async with self.s.request(method, self.base + path, headers=headers, **kw) as response:
                raw = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            self.ledger.errors.append(f"{op} {method} {path}: {type(exc).__name__}: {exc}")
            self.ledger.statuses[(op, 0)] += 1
            return 0, None
        self.ledger.latencies[op].append(time.perf_counter() - began)
        self.ledger.statuses[(op, status)] += 1
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if status >= 500:
            self.ledger.errors.append(f"{op} {method} {path}: {status} {raw[:300]!r}")
        return status, body

    def unexpected(self, op: str, status: int, body: Any) -> None:
        if status and status < 500 and (op, status) not in EXPECTED_4XX:
            self.ledger.unexpected.append(f"{op}: {status} {json.dumps(body)[:300]}")

    # -- set-up -------------------------------------------------------------------------------------
    async def setup(self) -> None:
        path = os.path.join(ROOT, "tests/fixtures/seed_samples/letstrade-channels/create_channel_request.json")
        with open(path, encoding="utf-8") as handle:
            sample = json.load(handle)
        status, body = await self.call("setup", "POST", "/letstrade-channels/v2/create/channel",
                                       headers=self.h["letstrade-pos"], json=sample["body"])
        assert status == 200, body
        self.channel = body["content"]
        for n in range(LOKE_CUSTOMERS):
            status, body = await self.call("setup", "POST", "/__admin/loke/events", json={
                "event": "customer.created", "customer": {"firstName": f"Load{n}", "lastName": "Test",
                                                          "email": f"loke-{n}@load.example.com"}})
            assert status < 300, body
        status, listed = await self.call("setup", "GET", f"/loke/organizations/{self.org}/customers", api="loke")
        assert status == 200, listed
        self.loke_customers = [c["id"] for c in listed if (c.get("email") or "").endswith("@load.example.com")]
        assert len(self.loke_customers) == LOKE_CUSTOMERS, listed[:3]
        status, body = await self.call("setup", "POST", "/__admin/letstrade-pos/codes", json={
            "type": "P", "user": {"cell_number": "27700000042", "cell_country_code": "+27", "name": "Load",
                                  "surname": "Test"}, "wallet_balance": str(OPENING_WALLET)})
        assert status == 201, body
        self.pos_user = body["user_id"]

    async def loke_stats(self) -> dict[str, dict[str, int]]:
        found = {}
        for customer in self.loke_customers:
            status, body = await self.call("audit", "GET", f"/loke/organizations/{self.org}/customers/{customer}",
                                           api="loke")
            assert status == 200, body
            found[customer] = body["statistics"]
        return found

    async def wallet(self) -> Decimal:
        status, body = await self.call("audit", "GET", f"/__admin/letstrade-pos/users/{self.pos_user}")
        assert status == 200, body
        return Decimal(body["wallet_balance"])

    # -- the mix ------------------------------------------------------------------------------------
    async def ct_create(self) -> None:
        email = f"ct-{self.next()}@load.example.com"
        status, body = await self.call("ct_create", "POST", "/customtrades/v1/customers", api="customtrades",
                                       json={"first_name": "Ada", "last_name": "Load", "email": email})
        if status == 200:
            self.ledger.ct[body["data"]["uuid"]] = email
            self.ledger.creates.append(time.monotonic())
        else:
            self.unexpected("ct_create", status, body)

    async def ct_get(self) -> None:
        if not self.ledger.ct:
            return await self.ct_create()
        uid = random.choice(list(self.ledger.ct)) if len(self.ledger.ct) < 64 else self._recent(self.ledger.ct)
        status, body = await self.call("ct_get", "GET", f"/customtrades/v1/customers/{uid}", api="customtrades")
        if status != 200:
            self.unexpected("ct_get", status, body)

    @staticmethod
    def _recent(found: dict[str, Any]) -> str:
        return next(reversed(found))

    async def cap_register(self) -> None:
        n = self.next()
        email = f"cap-{n}@load.example.com"
        body = {"profiles": [{"firstName": "Grace", "lastName": "Load", "source": "INSTORE", "identifiers": [
            {"type": "mobile", "value": f"9198{n:08d}"}, {"type": "email", "value": email}]}]}
        status, answer = await self.call("cap_register", "POST", "/capillary/v2/customers", api="capillary", json=body)
        if status == 200 and answer.get("createdId"):
            self.ledger.cap[email] = answer["createdId"]
            self.ledger.creates.append(time.monotonic())
        else:
            self.unexpected("cap_register", status, answer)

    async def cap_lookup(self) -> None:
        if not self.ledger.cap:
            return await self.cap_register()
        email = self._recent(self.ledger.cap)
        status, body = await self.call("cap_lookup", "GET", "/capillary/v2/customers/lookup/customerDetails",
                                       api="capillary", params={"source": "INSTORE", "identifierName": "email",
                                                                "identifierValue": email})
        if status != 200:
            self.unexpected("cap_lookup", status, body)

    async def loke_points(self) -> None:
        customer = random.choice(self.loke_customers)
        amount = random.choice([5, 10, 20, 50, -5, -10, -30])
        ref = f"load-{self.next()}"
        status, body = await self.call("loke_points", "PUT",
                                       f"/loke/organizations/{self.org}/customers/{customer}/points/{ref}",
                                       api="loke", json={"amount": amount})
        if status == 204:
            self.ledger.loke_points[customer].append(amount)
            self.ledger.creates.append(time.monotonic())  # a points record is kept per reference
        elif not (status == 400 and body and body.get("type") == "insufficient_points"):
            self.unexpected("loke_points", status, body)

    async def loke_list(self) -> None:
        name = f"Load list {self.next()}"
        status, body = await self.call("loke_list", "POST", f"/loke/organizations/{self.org}/customer-lists",
                                       api="loke", json={"name": name})
        if status in (200, 201):
            self.ledger.loke_lists[body["id"]] = name
            self.ledger.creates.append(time.monotonic())
        else:
            self.unexpected("loke_list", status, body)

    async def loke_webhook(self) -> None:
        ref = f"load-{self.next()}"
        status, body = await self.call("loke_webhook", "PUT", f"/loke/organizations/{self.org}/webhooks/{ref}",
                                       api="loke", json={"events": ["order.rejected"], "secret": "s3cret",
                                                         "url": "http://127.0.0.1:9/never-called"})
        if status == 200:
            self.ledger.loke_webhooks.add(ref)
            self.ledger.creates.append(time.monotonic())
        else:
            self.unexpected("loke_webhook", status, body)

    async def loke_get(self) -> None:
        customer = random.choice(self.loke_customers)
        status, body = await self.call("loke_get", "GET", f"/loke/organizations/{self.org}/customers/{customer}",
                                       api="loke")
        if status != 200:
            self.unexpected("loke_get", status, body)

    async def lt_upsert(self) -> None:
        email = f"lt-{self.next()}@load.example.com"
        path = f"/letstrade-channels/v1/webhooks/channels/{self.channel['channel']['webhook_uuid']}/customers"
        status, body = await self.call("lt_upsert", "POST", path, headers={"X-API-Key": self.channel["api_key"]},
                                       json={"email": email, "first_name": "Thandi", "last_name": "Load"})
        if status == 200:
            self.ledger.lt[email] = body["content"]["_id"]
            self.ledger.creates.append(time.monotonic())
        else:
            self.unexpected("lt_upsert", status, body)

    async def pos_finalise(self) -> None:
        n = self.next()
        status, minted = await self.call("pos_mint", "POST", "/__admin/letstrade-pos/codes",
                                         json={"type": "P", "user": {"_id": self.pos_user}})
        if status != 201:
            return self.unexpected("pos_mint", status, minted)
        code = minted["code"]
        total = Decimal(random.randint(100, 99999)) / 100
        text = f"{total:.2f}"
        basket = {"uuid": str(uuid.uuid4()), "total": text, "outstanding": text, "product_list": [
            {"sku": f"SKU-{n % 50}", "pid": f"pid-{n % 50}", "quantity": "1", "price": text, "title": "Load item"}]}
        offer = {"store_id": "STORE-LOAD", "terminal_id": f"TILL-{n % 8}", "basket": basket, "code": [code]}
        status, offered = await self.call("pos_offerings", "POST", "/letstrade-pos/v1/get/offerings",
                                          api="letstrade-pos", json=offer)
        if status != 200:
            return self.unexpected("pos_offerings", status, offered)
        final_basket = {k: v for k, v in basket.items() if k != "outstanding"}
        final_basket["outstanding_amount"] = text
        final = {**{k: v for k, v in offer.items() if k != "basket"}, "basket": final_basket}
        self.ledger.pos_totals[code] = total
        attempts = 2 if n % DOUBLE == 0 else 1
        answers = await asyncio.gather(*[
            self.call("pos_finalise", "POST", "/letstrade-pos/v1/finalise/offerings", api="letstrade-pos", json=final)
            for _ in range(attempts)])
        self.ledger.pos_finalised[code] = [
            (s, b["content"]["order_id"] if s == 200 else None) for s, b in answers
        ]
        if any(s == 200 for s, _ in answers):
            self.ledger.creates.append(time.monotonic())
        for s, b in answers:
            if s != 200 and not (attempts == 2 and s == 409):
                self.unexpected("pos_finalise", s, b)


async def worker(client: Client, deadline: float, ops: list[str], weights: list[int]) -> None:
    while time.monotonic() < deadline:
        op = random.choices(ops, weights)[0]
        await getattr(client, op)()


async def sampler(pid: int, began: float, deadline: float, every: float, curve: list[tuple[float, int]]) -> None:
    while True:
        curve.append((time.monotonic() - began, rss_kib(pid)))
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(every)


# -- the audit ------------------------------------------------------------------------------------------
async def gather_limited(coros: list[Any], limit: int = 32) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*[one(c) for c in coros])


async def audit(client: Client, ledger: Ledger, opening: dict[str, Any]) -> list[tuple[str, bool, str]]:
    checks: list[tuple[str, bool, str]] = []
    org = client.org

    async def ct(uid: str, email: str) -> bool:
        status, body = await client.call("audit", "GET", f"/customtrades/v1/customers/{uid}", api="customtrades")
        return status == 200 and body["data"]["email"] == email

    async def cap(email: str, created: int) -> bool:
        status, body = await client.call("audit", "GET", "/capillary/v2/customers/lookup/customerDetails",
                                         api="capillary", params={"source": "INSTORE", "identifierName": "email",
                                                                  "identifierValue": email})
        return status == 200 and body.get("id") == created

    async def loke_list(list_id: str, name: str) -> bool:
        status, body = await client.call("audit", "GET", f"/loke/organizations/{org}/customer-lists/{list_id}",
                                         api="loke")
        return status == 200 and body["name"] == name

    async def lt(email: str, _id: str) -> bool:
        status, body = await client.call("audit", "GET", "/__admin/letstrade-channels/customers",
                                         params={"email": email})
        return status == 200 and [c["_id"] for c in body["customers"]] == [_id]

    async def pos(code: str, order_id: str) -> bool:
        status, order = await client.call("audit", "GET", f"/__admin/letstrade-pos/orders/{order_id}")
        s2, found = await client.call("audit", "GET", f"/__admin/letstrade-pos/codes/{code}")
        return (
            status == 200 and order["status"] == "FINALISED" and code in order["codes"]
            and Decimal(order["payments"].get("wallet", "0")) == ledger.pos_totals[code]
            and s2 == 200 and found["status"] == "FINALISED" and found["order_id"] == order_id
        )

    def lost(name: str, results: list[bool], total: int) -> None:
        missing = results.count(False)
        checks.append((f"{name}: {total} acknowledged, {missing} not readable back", missing == 0, ""))

    lost("Custom Trades customers", await gather_limited([ct(u, e) for u, e in ledger.ct.items()]), len(ledger.ct))
    lost("Capillary registrations", await gather_limited([cap(e, i) for e, i in ledger.cap.items()]), len(ledger.cap))
    lost("LOKE customer lists", await gather_limited([loke_list(i, n) for i, n in ledger.loke_lists.items()]),
         len(ledger.loke_lists))
    status, hooks = await client.call("audit", "GET", f"/loke/organizations/{org}/webhooks", api="loke")
    refs = {h["ref"] for h in hooks} if status == 200 else set()
    lost("LOKE webhook subscriptions", [ref in refs for ref in ledger.loke_webhooks], len(ledger.loke_webhooks))
    lost("Let'sTrade channel upserts", await gather_limited([lt(e, i) for e, i in ledger.lt.items()]), len(ledger.lt))

    # finalise: exactly one 2xx per code, and each of them is a FINALISED order charged its total
    twice = [c for c, answers in ledger.pos_finalised.items() if len(answers) == 2]
    not_once = {c: a for c, a in ledger.pos_finalised.items() if sum(s == 200 for s, _ in a) != 1}
    checks.append((f"POS finalise: {len(ledger.pos_finalised)} codes ({len(twice)} finalised twice concurrently), "
                   f"{len(not_once)} without exactly one 2xx", not not_once, str(list(not_once.items())[:3])))
    done = {c: str(next(o for s, o in a if s == 200)) for c, a in ledger.pos_finalised.items() if c not in not_once}
    lost("POS orders (FINALISED, code FINALISED, wallet payment == basket total)",
         await gather_limited([pos(c, o) for c, o in done.items()]), len(done))
    status, orders = await client.call("audit", "GET", "/__admin/letstrade-pos/orders",
                                       params={"user_id": client.pos_user, "status": "FINALISED"})
    checks.append((f"POS orders of the load customer: {len(orders)} FINALISED for {len(done)} acknowledged finalises",
                   status == 200 and len(orders) == len(done), ""))
    charged = sum((ledger.pos_totals[c] for c in done), Decimal("0.00"))
    closing = await client.wallet()
    checks.append((f"POS wallet: opening {opening['wallet']} - charged {charged} = {opening['wallet'] - charged}, "
                   f"closing {closing}", opening["wallet"] - charged == closing, ""))

    # LOKE points ledger
    stats = await client.loke_stats()
    bad = []
    for customer, before in opening["loke"].items():
        amounts = ledger.loke_points.get(customer, [])
        after = stats[customer]
        expected = (
            before["pointsBalance"] + sum(amounts),
            before["totalPointsEarned"] + sum(a for a in amounts if a > 0),
            before["totalPointsRedeemed"] - sum(a for a in amounts if a < 0),
        )
        if expected != (after["pointsBalance"], after["totalPointsEarned"], after["totalPointsRedeemed"]):
            bad.append((customer, expected, after))
    adjustments = sum(len(a) for a in ledger.loke_points.values())
    checks.append((f"LOKE points: {adjustments} acknowledged adjustments over {len(stats)} customers, "
                   f"{len(bad)} customers whose statistics do not add up", not bad, str(bad[:2])))
    return checks


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def run(args: argparse.Namespace, pid: int, base: str) -> bool:
    ledger = Ledger()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.get(base + "/__admin/credentials") as response:
            creds = await response.json()
        client = Client(session, base, creds, ledger)
        await client.setup()
        opening = {"wallet": await client.wallet(), "loke": await client.loke_stats()}
        ledger.statuses.clear()
        ledger.latencies.clear()

        print(f"running {args.seconds} s with {args.workers} workers ...", flush=True)
        began = time.monotonic()
        deadline = began + args.seconds
        curve: list[tuple[float, int]] = []
        cpu_began, wait_began, client_began = cpu_seconds(pid), runqueue_seconds(pid), time.process_time()
        ops, weights = list(MIX), list(MIX.values())
        sampling = asyncio.create_task(sampler(pid, began, deadline, args.sample, curve))
        await asyncio.gather(*[worker(client, deadline, ops, weights) for _ in range(args.workers)])
        elapsed = time.monotonic() - began
        await sampling
        cpu_busy = (cpu_seconds(pid) - cpu_began) / elapsed
        cpu_wait = (runqueue_seconds(pid) - wait_began) / elapsed
        client_busy = (time.process_time() - client_began) / elapsed
        run_statuses = Counter(ledger.statuses)
        total = sum(run_statuses.values())

        # a read-only phase: no new state, the journal churns at its bound; RSS must stay flat
        read_curve: list[tuple[float, int]] = []
        if args.read_seconds:
            read_began = time.monotonic()
            read_deadline = read_began + args.read_seconds
            reads = ["ct_get", "cap_lookup", "loke_get"]
            sampling = asyncio.create_task(sampler(pid, read_began, read_deadline, args.sample, read_curve))
            await asyncio.gather(*[worker(client, read_deadline, reads, [1, 1, 1]) for _ in range(args.workers)])
            await sampling
        read_statuses = Counter(ledger.statuses) - run_statuses
        journal_status, journal = await client.call("audit", "GET", "/__admin/requests")

        print(f"\n{total} requests in {elapsed:.1f} s = {total / elapsed:.0f} req/s (all five APIs, mixed); "
              f"CPU: the mock busy {100 * cpu_busy:.0f} % of its core and runnable-but-waiting "
              f"{100 * cpu_wait:.0f} % (other load on the machine); this client busy {100 * client_busy:.0f} %")
        print(f"{'operation':<15} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}  statuses")
        by_op: dict[str, Counter[int]] = defaultdict(Counter)
        for (op, status), count in run_statuses.items():
            by_op[op][status] += count
        for op in sorted(by_op):
            lat = ledger.latencies.get(op, [])
            shown = " ".join(f"{s}:{c}" for s, c in sorted(by_op[op].items()))
            print(f"{op:<15} {sum(by_op[op].values()):>9} {pct(lat, 0.5):>8.2f} {pct(lat, 0.99):>8.2f}  {shown}")

        # memory
        print("\nresident memory of the mock (VmRSS):")
        step = max(1, len(curve) // 12)
        for t, kib in curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else []):
            print(f"  t={t:6.1f} s  {kib / 1024:8.1f} MiB")
        quarter = min(curve, key=lambda p: abs(p[0] - 0.25 * args.seconds))
        end = curve[-1]
        growth_kib = end[1] - quarter[1]
        stored_after = sum(1 for t in ledger.creates if t - began >= quarter[0])
        allowance_kib = stored_after * MAX_BYTES_PER_RECORD / 1024
        per_record = growth_kib * 1024 / stored_after if stored_after else float("inf")
        print(f"growth from 25 % (t={quarter[0]:.1f} s, {quarter[1] / 1024:.1f} MiB) to 100 % "
              f"({end[1] / 1024:.1f} MiB): {growth_kib / 1024:+.1f} MiB ({100 * growth_kib / quarter[1]:+.1f} %); "
              f"{stored_after} records stored meanwhile = {per_record:.0f} bytes per record "
              f"(allowance {MAX_BYTES_PER_RECORD})")

        read_growth_kib = 0
        if read_curve:
            start = min(read_curve, key=lambda p: abs(p[0] - 0.25 * args.read_seconds))
            read_growth_kib = read_curve[-1][1] - start[1]
            reads_done = sum(read_statuses.values())
            print(f"read-only phase: {reads_done} requests in {args.read_seconds:g} s; RSS "
                  + " ".join(f"{kib / 1024:.1f}" for _, kib in read_curve[:: max(1, len(read_curve) // 6)])
                  + f" MiB; growth from 25 % to 100 % of it: {read_growth_kib / 1024:+.1f} MiB")

        print("\naudit ...", flush=True)
        checks = await audit(client, ledger, opening)

    every = run_statuses + read_statuses
    five = sum(c for (op, s), c in every.items() if s >= 500)
    transport = sum(c for (op, s), c in every.items() if s == 0)
    checks.insert(0, (f"zero 5xx ({five}) and zero transport errors ({transport}) during the run",
                      five == 0 and transport == 0, "; ".join(ledger.errors[:3])))
    checks.insert(1, (f"no unexpected answers ({len(ledger.unexpected)})", not ledger.unexpected,
                      "; ".join(ledger.unexpected[:3])))
    journal_entries = len(journal) if journal_status == 200 else -1
    checks.append((f"journal bounded: {journal_entries} entries kept (bound 10000)",
                   0 <= journal_entries <= 10_000, ""))
    checks.append((f"memory flat after warm-up: {growth_kib / 1024:+.1f} MiB for {stored_after} records stored "
                   f"(<= {allowance_kib / 1024:.1f} MiB at {MAX_BYTES_PER_RECORD} bytes/record)",
                   growth_kib <= allowance_kib, ""))
    if read_curve:
        limit_kib = max(2048, 0.02 * read_curve[0][1])
        checks.append((f"memory flat with no new state (read-only phase): {read_growth_kib / 1024:+.1f} MiB "
                       f"(<= {limit_kib / 1024:.1f} MiB)", read_growth_kib <= limit_kib, ""))
    print()
    for text, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {text}" + (f"\n         {detail}" if detail and not ok else ""))
    return all(ok for _, ok, _ in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load phase (default 60)")
    parser.add_argument("--workers", type=int, default=48, help="concurrent workers (default 48)")
    parser.add_argument("--read-seconds", type=float, default=10.0,
                        help="a read-only phase after the mixed one, to check memory stays flat (default 10; 0 = none)")
    parser.add_argument("--sample", type=float, default=1.0, help="seconds between RSS samples (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random mix seed (default 0)")
    args = parser.parse_args()
    random.seed(args.seed)
    pin_server: list[str] = []
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        pin_server = ["taskset", "-c", "0"]
        os.sched_setaffinity(0, {1})
    port = free_port()
    cmd = [*pin_server, sys.executable, "-m", "mock_server", "serve", "--port", str(port), "--customtrades-quota", "0",
           "--capillary-rpm", "0", "--log-level", "error"]
    print("mock:", " ".join(cmd[len(pin_server):]), f"(pinned: {' '.join(pin_server) or 'no'})")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("admin"):
                break
        else:
            sys.exit(f"the mock did not start: {proc.stderr.read() if proc.stderr else ''}")
        ok = asyncio.run(run(args, proc.pid, f"http://127.0.0.1:{port}"))
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    if code != 0 or "Traceback" in stderr:
        print(f"  [FAIL] the mock exited {code} on SIGTERM" + (f"; stderr: {stderr[-1500:]}" if stderr else ""))
        ok = False
    else:
        print("  [ok] the mock exited 0 on SIGTERM")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
