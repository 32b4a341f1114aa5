"""What the validating proxy costs: the same load straight to an upstream and through the proxy,
in the same run. Reports p50/p99 latency, throughput, the p50 the proxy adds, the throughput
ratio (targets, issue 15: added p50 < 1 ms, throughput >= 0.5x direct at 32 connections) and the
CPU each process spends per request (a cost that, unlike the others, barely depends on what else
the machine runs).

    python benchmarks/proxy_overhead.py [--seconds 10] [--rounds 3] [--connections 32] [--har] [--client aiohttp|wrk]

The upstream is the mock (`loyalty-mock serve --api customtrades`, quota off), the proxy
`loyalty-mock proxy` in front of it, both started by `_common.process`. Where taskset exists the
upstream runs on core 0 and the proxy on core 1 (a proxy sharing its upstream's core can reach at
most half its throughput by construction); the load generator is not pinned. It keeps
`--connections` requests in flight: `wrk` (Debian package; the default where installed, and the
figures of record since 7 December 2026) or an aiohttp client (`--client aiohttp`, the default
without wrk), which costs about ten times wrk's CPU per request: on two cores, unpinned, it takes
that CPU from the proxy or the upstream and the ratio measures the client as much as the proxy.
The direct and the proxied load alternate `--rounds` times; the round with the median ratio is
reported, with every round's ratio and the load average after it (the machine's other work moves
these figures; the CPU per request moves far less)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cores, cpu_seconds, process, wrk

from mock_server.eventloop import resolve

PATH = "/v1/customers?limit=5"


async def _aiohttp_load(url: str, headers: dict[str, str], connections: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started_at = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started_at)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "requests": len(latencies),
        "non_200": errors,
    }


def load(client: str, url: str, headers: dict[str, str], connections: int, seconds: float) -> dict[str, Any]:
    if client == "wrk":
        found = wrk(url, connections=connections, seconds=max(1, round(seconds)), headers=headers, pinned=False)
        return {
            "rps": found.rps,
            "p50_ms": found.p50_ms,
            "p99_ms": found.p99_ms,
            "requests": found.requests,
            "non_200": found.non_2xx,
        }
    return asyncio.run(_aiohttp_load(url, headers, connections, seconds))


def with_cpu(run: Callable[[], dict[str, Any]], pids: dict[str, int]) -> dict[str, Any]:
    """`run()`'s figures plus, per process named in `pids`, its CPU milliseconds per request."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    result = run()
    for name, pid in pids.items():
        spent = cpu_seconds(pid) - before[name]
        result[f"{name}_cpu_ms_per_request"] = round(spent * 1000 / max(result["requests"], 1), 3)
    return result


def load_average() -> float:
    with open("/proc/loadavg", encoding="ascii") as handle:
        return float(handle.read().split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--har", action="store_true", help="record a HAR through the proxy too")
    parser.add_argument(
        "--client",
        choices=["aiohttp", "wrk"],
        default="wrk" if shutil.which("wrk") else "aiohttp",
        help="the load generator (default: wrk where installed, else the aiohttp client)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="direct then proxied, this many times (median reported)")
    args = parser.parse_args()
    server_cpu, proxy_cpu = cores()
    loadavg_before = load_average()
    mock_cmd = [
        *server_cpu,
        sys.executable,
        "-m",
        "mock_server",
        "serve",
        "--port",
        "0",
        "--api",
        "customtrades",
        "--customtrades-quota",
        "0",
        "--log-level",
        "error",
        "--journal-max-entries",
        "0",
    ]
    with tempfile.TemporaryDirectory() as tmp, process(mock_cmd, read_urls=True) as mock:
        upstream = mock["customtrades"]
        creds = requests.get(mock["admin"] + "/credentials", timeout=10).json()
        headers = {"Authorization": f"Bearer {creds['customtrades']['api_key']}"}
        proxy_cmd = [
            *proxy_cpu,
            sys.executable,
            "-m",
            "mock_server",
            "proxy",
            "--upstream",
            f"customtrades={upstream}",
            "--port",
            "0",
            "--log-level",
            "error",
        ]
        if args.har:
            proxy_cmd += ["--har", os.path.join(tmp, "bench.har")]
        with process(proxy_cmd, read_urls=True) as proxy:
            direct_url, proxy_url = upstream + PATH, proxy["customtrades"] + PATH
            serial_seconds = min(args.seconds, 3.0)
            for url in (direct_url, proxy_url):  # warm-up: connections, caches, the first walks
                load(args.client, url, headers, args.connections, 1.0)
            serial_direct = load(args.client, direct_url, headers, 1, serial_seconds)
            serial_proxy = load(args.client, proxy_url, headers, 1, serial_seconds)
            rounds: list[tuple[dict[str, Any], dict[str, Any], float]] = []
            for _ in range(args.rounds):  # alternate, so a change in the machine's load hits both alike
                direct = with_cpu(
                    lambda: load(args.client, direct_url, headers, args.connections, args.seconds),
                    {"upstream": mock.pid},
                )
                proxied = with_cpu(
                    lambda: load(args.client, proxy_url, headers, args.connections, args.seconds),
                    {"upstream": mock.pid, "proxy": proxy.pid},
                )
                rounds.append((direct, proxied, load_average()))
    # the round with the median ratio stands for the run; every round's ratio is listed
    ranked = sorted(rounds, key=lambda found: found[1]["rps"] / max(found[0]["rps"], 1e-9))
    direct, proxied, _ = ranked[len(ranked) // 2]
    print(
        json.dumps(
            {
                "connections": args.connections,
                "seconds": args.seconds,
                "har": args.har,
                "client": args.client,
                "pinned": bool(server_cpu),
                "event_loop": resolve("auto").name,  # both servers run --loop auto (the default)
                "load_average": {"before": loadavg_before, "after": load_average()},
                "rounds": [  # in the order they ran
                    {
                        "direct_rps": d["rps"],
                        "proxy_rps": p["rps"],
                        "ratio": round(p["rps"] / d["rps"], 3) if d["rps"] else None,
                        "proxy_cpu_ms_per_request": p["proxy_cpu_ms_per_request"],
                        "upstream_cpu_ms_per_request": d["upstream_cpu_ms_per_request"],
                        "load_average": loadavg,
                    }
                    for d, p, loadavg in rounds
                ],
                "direct": direct,
                "proxy": proxied,
                "added_p50_ms": round(proxied["p50_ms"] - direct["p50_ms"], 3),
                # one request in flight: what the proxy adds to a request, without queueing behind others
                "serial": {
                    "direct_p50_ms": serial_direct["p50_ms"],
                    "proxy_p50_ms": serial_proxy["p50_ms"],
                    "added_p50_ms": round(serial_proxy["p50_ms"] - serial_direct["p50_ms"], 3),
                },
                "throughput_ratio": round(proxied["rps"] / direct["rps"], 3) if direct["rps"] else None,
                "targets": {"added_p50_ms": "< 1", "throughput_ratio": ">= 0.5"},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
