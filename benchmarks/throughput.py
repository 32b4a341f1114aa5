"""Throughput of the mock against a bare aiohttp server on the same event loop, in one run (issue 20).

    python benchmarks/throughput.py [--seconds 10] [--connections 32] [--loop auto|uvloop|asyncio]

Starts (a) the mock (`--api customtrades --customtrades-quota 0 --log-level error`, plain serve:
no --strict, journal on) and (b) a bare aiohttp server answering fixed JSON bodies of the same
sizes as the mock's, both on the same event loop (`--loop`; `auto` = uvloop when importable, as
`serve` picks it), each pinned to core 0, and drives both with wrk pinned to core 1: an
authenticated GET of a Custom Trades customer and an authenticated POST creating one (a
validated body). Prints requests/s, p50 and p99, the server's CPU time per request (from /proc:
less disturbed by other load than throughput is), the mock/bare ratios and a pasteable summary.
Targets: GET >= 0.60x and POST >= 0.45x of bare, p99 < 5 ms. Exit status 1 while one is missed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
from dataclasses import dataclass

import requests
from _common import Result, Started, cores, cpu_seconds, process, wrk

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mock_server import eventloop  # the repository's package, also when not installed

BARE = r"""
import asyncio, sys
from aiohttp import web
port, loop_name = int(sys.argv[1]), sys.argv[4]
get_body, post_body = open(sys.argv[2], 'rb').read(), open(sys.argv[3], 'rb').read()
async def get(request):
    return web.Response(body=get_body, content_type="application/json")
async def post(request):
    await request.read()
    return web.Response(body=post_body, content_type="application/json")
app = web.Application()
app.router.add_get("/customer", get)
app.router.add_post("/customers", post)
async def main():
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()
if loop_name == "uvloop":
    import uvloop
    factory = uvloop.new_event_loop
else:
    factory = asyncio.new_event_loop
with asyncio.Runner(loop_factory=factory) as runner:
    runner.run(main())
"""

NEW_CUSTOMER = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone": "206-555-0100",
    "customer_type": "Residential",
    "is_vip": False,
    "notes": "benchmark",
}
TARGETS = {"GET": 0.60, "POST": 0.45}
P99_TARGET_MS = 5.0


@dataclass
class Measured:
    result: Result
    cpu_us: float  # the server's CPU time (user + system) per request, in microseconds


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "?"


def _measure(server: Started, url: str, args: argparse.Namespace, **options: object) -> Measured:
    if args.warmup:
        wrk(url, connections=args.connections, seconds=args.warmup, **options)  # type: ignore[arg-type]
    before = cpu_seconds(server.pid)
    result = wrk(url, connections=args.connections, seconds=args.seconds, **options)  # type: ignore[arg-type]
    spent = cpu_seconds(server.pid) - before
    return Measured(result, spent / max(result.requests, 1) * 1e6)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1, help="seconds of load before each measurement (0 = none)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--loop", choices=eventloop.CHOICES, default="auto", help="event loop of both servers")
    args = parser.parse_args()
    try:
        loop = eventloop.resolve(args.loop)
    except eventloop.LoopUnavailable as exc:
        sys.exit(str(exc))
    server, _ = cores()
    results: dict[str, Measured] = {}
    load_before = _load()
    post_options = {"method": "POST", "body": NEW_CUSTOMER}

    mock_cmd = [
        *server, sys.executable, "-m", "mock_server", "serve", "--port", str(_free_port()),
        "--api", "customtrades", "--customtrades-quota", "0", "--log-level", "error", "--loop", loop.name,
    ]  # fmt: skip
    with process(mock_cmd, read_urls=True) as urls:
        api, admin = urls["customtrades"], urls["admin"]
        key = requests.get(admin + "/credentials", timeout=10).json()["customtrades"]["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        created = requests.post(api + "/v1/customers", json=NEW_CUSTOMER, headers=auth, timeout=10)
        created.raise_for_status()
        uuid = created.json()["data"]["uuid"]
        get_bytes = requests.get(f"{api}/v1/customers/{uuid}", headers=auth, timeout=10).content
        post_bytes = created.content
        requests.delete(admin + "/requests", timeout=10)
        json_auth = {**auth, "Content-Type": "application/json"}
        results["mock GET"] = _measure(urls, f"{api}/v1/customers/{uuid}", args, headers=auth)
        results["mock POST"] = _measure(urls, f"{api}/v1/customers", args, headers=json_auth, **post_options)

    with tempfile.NamedTemporaryFile(delete=False) as g, tempfile.NamedTemporaryFile(delete=False) as p:
        g.write(get_bytes)
        p.write(post_bytes)
    try:
        port = _free_port()
        bare_cmd = [*server, sys.executable, "-c", BARE, str(port), g.name, p.name, loop.name]
        base = f"http://127.0.0.1:{port}"
        with process(bare_cmd, ready_url=f"{base}/customer") as bare:
            results["bare GET"] = _measure(bare, f"{base}/customer", args, headers=auth)
            results["bare POST"] = _measure(bare, f"{base}/customers", args, headers=json_auth, **post_options)
    finally:
        os.unlink(g.name)
        os.unlink(p.name)
    load_after = _load()

    ratios = {op: results[f"mock {op}"].result.rps / results[f"bare {op}"].result.rps for op in TARGETS}
    cpu_ratios = {op: results[f"bare {op}"].cpu_us / results[f"mock {op}"].cpu_us for op in TARGETS}
    worst_p99 = max(results["mock GET"].result.p99_ms, results["mock POST"].result.p99_ms)
    met = {op: ratios[op] >= TARGETS[op] for op in TARGETS}
    p99_met = worst_p99 < P99_TARGET_MS
    errors = sum(m.result.non_2xx for m in results.values())

    today = datetime.date.today().isoformat()
    print(
        f"## throughput.py {today}: loop {loop.name} {loop.version} (--loop {args.loop}), Python "
        f"{platform.python_version()}, {args.seconds} s per figure after {args.warmup} s warm-up, "
        f"{args.connections} connections, load average {load_before} before / {load_after} after"
    )
    print()
    print("| server / operation | req/s | p50 ms | p99 ms | server CPU µs/request | non-2xx |")
    print("|---|---|---|---|---|---|")
    for name, m in results.items():
        r = m.result
        print(f"| {name} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {m.cpu_us:.1f} | {r.non_2xx} |")
    print()
    for op, target in TARGETS.items():
        verdict = "met" if met[op] else f"NOT met (short by {target - ratios[op]:.2f})"
        print(
            f"- {op} mock/bare {ratios[op]:.2f}x (target >= {target:.2f}x): {verdict}; "
            f"by CPU per request {cpu_ratios[op]:.2f}x"
        )
    verdict = "met" if p99_met else "NOT met"
    print(f"- mock p99 {worst_p99:.2f} ms (target < {P99_TARGET_MS:g} ms): {verdict}")
    if errors:
        print(f"- {errors} non-2xx answers (a broken run)")
    ok = all(met.values()) and p99_met and not errors
    print("- targets met" if ok else "- targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
