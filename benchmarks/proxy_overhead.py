"""What the validating proxy costs: the same load straight to an upstream and through the proxy,
in the same run. Reports p50/p99 latency, throughput, the p50 the proxy adds and the throughput
ratio (targets, issue 15: added p50 < 1 ms, throughput >= 0.5x direct at 32 connections).

    python benchmarks/proxy_overhead.py [--seconds 10] [--connections 32] [--har]

The upstream is the mock (`loyalty-mock serve --api customtrades`, quota off), the load an
aiohttp client keeping `--connections` requests in flight (`wrk` is not needed). Where taskset
exists the upstream runs on core 0 and the proxy on core 1 (a proxy sharing its upstream's core
can reach at most half its throughput by construction); the client is not pinned."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cores


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): a cost that does not depend on
    what else the machine is running, unlike latency and throughput."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def started(cmd: list[str]) -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    urls: dict[str, str] = {"pid": str(proc.pid)}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            parts = line.split()
            if len(parts) >= 2:
                urls[parts[0]] = parts[1]
            if parts[0] == "admin":
                break
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(urls["admin"] + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        yield urls
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


async def load(url: str, headers: dict[str, str], connections: int, seconds: float) -> dict[str, float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--har", action="store_true", help="record a HAR through the proxy too")
    args = parser.parse_args()
    server_cpu, proxy_cpu = cores()
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
    with tempfile.TemporaryDirectory() as tmp, started(mock_cmd) as mock:
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
        with started(proxy_cmd) as proxy:
            path = "/v1/customers?limit=5"
            asyncio.run(load(upstream + path, headers, args.connections, 1.0))  # warm-up
            serial_direct = asyncio.run(load(upstream + path, headers, 1, min(args.seconds, 3.0)))
            serial_proxy = asyncio.run(load(proxy["customtrades"] + path, headers, 1, min(args.seconds, 3.0)))
            mock_pid, proxy_pid = int(mock["pid"]), int(proxy["pid"])
            before = cpu_seconds(mock_pid)
            direct = asyncio.run(load(upstream + path, headers, args.connections, args.seconds))
            direct["upstream_cpu_ms_per_request"] = round(
                (cpu_seconds(mock_pid) - before) * 1000 / direct["requests"], 3
            )
            before_mock, before_proxy = cpu_seconds(mock_pid), cpu_seconds(proxy_pid)
            proxied = asyncio.run(load(proxy["customtrades"] + path, headers, args.connections, args.seconds))
            proxied["upstream_cpu_ms_per_request"] = round(
                (cpu_seconds(mock_pid) - before_mock) * 1000 / proxied["requests"], 3
            )
            proxied["proxy_cpu_ms_per_request"] = round(
                (cpu_seconds(proxy_pid) - before_proxy) * 1000 / proxied["requests"], 3
            )
    print(
        json.dumps(
            {
                "connections": args.connections,
                "seconds": args.seconds,
                "har": args.har,
                "pinned": bool(server_cpu),
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
