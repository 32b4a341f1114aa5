"""Custom Trades at a million customers: seeding time, resident memory and request latency.

    python benchmarks/customtrades_scale.py                 # 1,000,000 customers, 1,000 requests each
    python benchmarks/customtrades_scale.py --customers 100000 --requests 300

Starts the mock as separate processes on loopback (`python -m mock_server serve --port 0 ...`, the
CLI prints the base URLs): one with `--seed-customers N`, one with none (the baseline: the same
requests on an empty store), plus a bare aiohttp endpoint (the floor: HTTP alone). Each latency is
one keep-alive HTTP request, sent one after another from this process. Prints the figures and each
target of issue #6 as PASS/FAIL (exit status 1 if one fails). Not run by the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"seed_s": 60.0, "rss_gib": 1.5, "p99_ms": 20.0}

BARE_SERVER = """
import sys
from aiohttp import web
async def hello(request):
    return web.json_response({"success": True, "data": {"customers": [], "pagination": {}}})
async def main():
    app = web.Application(); app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app, access_log=None); await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0); await site.start()
    print(f"bare http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    import asyncio; await asyncio.Event().wait()
import asyncio; asyncio.run(main())
"""


@dataclass
class Server:
    name: str
    process: subprocess.Popen[str]
    urls: dict[str, str]
    ready_s: float

    def rss_mib(self) -> tuple[float, float]:
        """(current, peak) resident memory of the server process, from /proc."""
        fields: dict[str, float] = {}
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    fields[name] = int(value.split()[0]) / 1024
        return fields["VmRSS"], fields["VmHWM"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(name: str, command: list[str], lines: int, timeout: float) -> Server:
    """Start a server and wait (bounded) until it has printed its `lines` URL lines."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stdout is not None
    lines_read: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # a thread, so that waiting for a line can time out
        for line in process.stdout or ():
            lines_read.put(line)

    threading.Thread(target=pump, daemon=True).start()
    urls: dict[str, str] = {}
    while len(urls) < lines:
        left = timeout - (time.perf_counter() - started)
        try:
            line = lines_read.get(timeout=max(left, 0.001))
        except queue.Empty:
            process.kill()
            raise SystemExit(f"{name}: not ready within {timeout:.0f} s") from None
        label, _, url = line.strip().rpartition(" ")
        urls[label.strip()] = url
    return Server(name, process, urls, time.perf_counter() - started)


class Client:
    """One keep-alive HTTP connection; `get` returns (status, parsed body, seconds)."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base)
        self.prefix = parts.path.rstrip("/")
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self.headers = headers or {}

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any, float]:
        target = self.prefix + path + (f"?{urlencode(params)}" if params else "")
        payload = json.dumps(body).encode() if body is not None else None
        headers = {**self.headers, **({"Content-Type": "application/json"} if payload else {})}
        began = time.perf_counter()
        self.connection.request(method, target, body=payload, headers=headers)
        response = self.connection.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - began
        return response.status, json.loads(raw) if raw else None, elapsed

    def get(self, path: str, **params: Any) -> tuple[int, Any, float]:
        return self.request("GET", path, **params)

    def close(self) -> None:
        self.connection.close()


@dataclass
class Latency:
    label: str
    seconds: list[float]

    def quantile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    @property
    def p50(self) -> float:
        return self.quantile(0.50)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)


def measure(label: str, count: int, call: Callable[[int], tuple[int, Any, float]],
            check: Callable[[int, Any], None] | None = None) -> Latency:
    for warm in range(min(20, count)):
        call(warm)
    seconds = []
    for index in range(count):
        status, body, elapsed = call(index)
        if status != 200:
            raise SystemExit(f"{label}: request {index} answered {status}: {str(body)[:300]}")
        if check is not None:
            check(index, body)
        seconds.append(elapsed)
    return Latency(label, seconds)


@contextlib.contextmanager
def servers(args: argparse.Namespace) -> Iterator[dict[str, Server]]:
    mock = [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--api", "customtrades",
            "--customtrades-quota", "0", "--seed", str(args.seed)]
    running: dict[str, Server] = {}
    try:
        running["bare"] = start("bare aiohttp", [sys.executable, "-c", BARE_SERVER], 1, 60)
        running["empty"] = start("empty mock", mock, 3, 120)
        print(f"empty mock ready in {running['empty'].ready_s:.1f} s; seeding {args.customers:,} customers ...",
              flush=True)
        running["full"] = start("seeded mock", [*mock, "--seed-customers", str(args.customers)], 3, args.timeout)
        yield running
    finally:
        for server in running.values():
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=1000, help="requests per latency figure (default 1000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for the seeded mock (s)")
    args = parser.parse_args()
    deep_page = 5000 if args.customers >= 600_000 else max(1, args.customers // 200)

    with servers(args) as running:
        full, empty, bare = running["full"], running["empty"], running["bare"]
        seed_s = full.ready_s - empty.ready_s
        rss_ready, _ = full.rss_mib()
        admin = Client(full.urls["admin"])
        key = admin.get("/credentials")[1]["customtrades"]["api_key"]
        empty_key = Client(empty.urls["admin"]).get("/credentials")[1]["customtrades"]["api_key"]
        api = Client(full.urls["customtrades"], {"Authorization": f"Bearer {key}"})
        api_empty = Client(empty.urls["customtrades"], {"Authorization": f"Bearer {empty_key}"})
        floor = Client(bare.urls["bare"])

        # e-mails of customers spread over the whole list (random pages), each to be found again
        rng = random.Random(args.seed)
        _, first, _ = api.get("/v1/customers", limit=100)
        total_live = first["data"]["pagination"]["total"]
        pages = first["data"]["pagination"]["total_pages"]
        emails: list[tuple[str, str]] = []
        while len(emails) < args.requests:
            page = api.get("/v1/customers", limit=100, page=rng.randint(1, pages))[1]["data"]["customers"]
            emails += [(c["email"], c["uuid"]) for c in page if c["email"]]
        emails = emails[: args.requests]

        def found_email(index: int, body: Any) -> None:
            if emails[index][1] not in [c["uuid"] for c in body["data"]["customers"]]:
                raise SystemExit(f"search for {emails[index][0]} did not find {emails[index][1]}")

        def full_page(index: int, body: Any) -> None:
            if len(body["data"]["customers"]) != 100:
                raise SystemExit(f"a page held {len(body['data']['customers'])} customers, not 100")

        # the page baseline: the same page size from a store of 100 customers (same work per answer)
        for index in range(100):
            api_empty.request("POST", "/v1/customers", body={
                "first_name": f"Base{index}", "last_name": "Line", "email": f"base{index}@example.com",
                "phone": "206-555-0100", "physical_city": "Seattle", "billing_city": "Seattle"})

        n = args.requests
        figures = [
            measure("search by e-mail", n, lambda i: api.get("/v1/customers", search=emails[i][0]), found_email),
            measure(f"page={deep_page}&limit=100", n,
                    lambda i: api.get("/v1/customers", page=deep_page, limit=100), full_page),
            measure("  same search, empty store", n, lambda i: api_empty.get("/v1/customers", search=emails[i][0])),
            measure("  page=1&limit=100 of a 100-customer store", n,
                    lambda i: api_empty.get("/v1/customers", page=1, limit=100), full_page),
            measure("  bare aiohttp endpoint", n, lambda i: floor.get("/")),
            measure("search by last name (\"smith\")", n // 5, lambda i: api.get("/v1/customers", search="smith")),
            measure("search by one letter (\"a\")", n // 20, lambda i: api.get("/v1/customers", search="a")),
            measure(f"filter=vip, page={deep_page // 10}", n // 5,
                    lambda i: api.get("/v1/customers", filter="vip", page=deep_page // 10, limit=100)),
            measure("get by uuid", n // 5, lambda i: api.get(f"/v1/customers/{emails[i][1]}")),
            measure("create (keeps every index current)", n // 5, lambda i: api.request(
                "POST", "/v1/customers", body={"first_name": "New", "last_name": f"Customer{i}",
                                               "email": f"new.customer{i}@example.com", "phone": "425-555-0100"})),
        ]

        # create, then find the new customer by e-mail, uuid and name
        _, created, create_s = api.request("POST", "/v1/customers", body={
            "first_name": "Benchmark", "last_name": "Zyzzyva", "email": "benchmark.zyzzyva@example.com",
            "phone": "206-555-0199", "customer_type": "Commercial", "is_vip": True,
        })
        uuid = created["data"]["uuid"]
        finds = {
            term: uuid in [c["uuid"] for c in api.get("/v1/customers", search=term)[1]["data"]["customers"]]
            for term in ("benchmark.zyzzyva@example.com", uuid, "benchmark zyz", "206-555-0199")
        }
        newest = api.get("/v1/customers", limit=1)[1]["data"]["customers"][0]["uuid"] == uuid
        rss_after, rss_peak = full.rss_mib()
        empty_rss, _ = empty.rss_mib()
        for client in (api, api_empty, floor, admin):
            client.close()

    by_label = {f.label: f for f in figures}
    search_f, page_f = by_label["search by e-mail"], by_label[f"page={deep_page}&limit=100"]
    search_base = by_label["  same search, empty store"]
    page_base = by_label["  page=1&limit=100 of a 100-customer store"]
    floor_f = by_label["  bare aiohttp endpoint"]

    print()
    print(f"Custom Trades at {args.customers:,} customers ({total_live:,} live), seed {args.seed}, "
          f"{n} requests per figure, one keep-alive client on loopback; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  ready: empty mock {empty.ready_s:.1f} s, seeded mock {full.ready_s:.1f} s -> seeding {seed_s:.1f} s")
    print(f"  RSS: empty mock {empty_rss:.0f} MiB; seeded mock {rss_ready:.0f} MiB when ready, "
          f"{rss_after:.0f} MiB after the run (peak {rss_peak:.0f} MiB)")
    print(f"  {'request':<44} {'p50 ms':>8} {'p99 ms':>8}")
    for figure in figures:
        print(f"  {figure.label:<44} {figure.p50:8.2f} {figure.p99:8.2f}")
    for q in ("p50", "p99"):
        def ratio(a: Latency, b: Latency, q: str = q) -> float:
            return float(getattr(a, q)) / float(getattr(b, q))

        print(f"  ratio {q} seeded / small store: search {ratio(search_f, search_base):.2f}x (vs the empty store), "
              f"page {ratio(page_f, page_base):.2f}x (vs a 100-customer store); "
              f"seeded / bare aiohttp: search {ratio(search_f, floor_f):.2f}x, page {ratio(page_f, floor_f):.2f}x")
    print(f"  create {create_s * 1000:.2f} ms; then found by "
          + ", ".join(f"{term!r}: {'yes' if ok else 'NO'}" for term, ok in finds.items())
          + f"; listed first: {'yes' if newest else 'NO'}")

    checks = [
        (f"seeding {args.customers:,} customers < {TARGETS['seed_s']:.0f} s", seed_s < TARGETS["seed_s"]),
        (f"RSS < {TARGETS['rss_gib']} GiB", rss_peak / 1024 < TARGETS["rss_gib"]),
        (f"search by e-mail p99 < {TARGETS['p99_ms']:.0f} ms", search_f.p99 < TARGETS["p99_ms"]),
        (f"page={deep_page}&limit=100 p99 < {TARGETS['p99_ms']:.0f} ms", page_f.p99 < TARGETS["p99_ms"]),
        ("create then search finds the new customer", all(finds.values()) and newest),
    ]
    print()
    for label, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
