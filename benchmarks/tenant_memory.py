"""Resident memory of idle tenants: 1,000 tenants of default size in one mock process.

    python benchmarks/tenant_memory.py                  # 1,000 tenants
    python benchmarks/tenant_memory.py --tenants 200

Starts two mock processes side by side (`python -m mock_server serve --port 0`, all five APIs,
default options): the baseline creates no tenant; the other creates N over HTTP
(`POST /__admin/tenants`, each with its own seed) and sends each one request (a Custom Trades
customer list with the tenant's own key) so every tenant has been used once. Both processes get
the same number of requests (the baseline's go to its default tenant), then idle; the resident
memory (VmRSS) of each is read, and the figure is (loaded - baseline) / N: what one idle tenant
costs. Also prints the create latency (p50, p99) and the CPU both processes use while idle (the
clock ticker visits every tenant). Target of issue 18: < 2 MiB per idle tenant
(exit status 1 when missed). Not run by the test suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import requests

TARGET_MIB = 2.0


@contextmanager
def mock_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A mock process with every API and tenants on (defaults); yields it and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = ""
        for line in proc.stdout:
            name, url = line.split()
            if name == "admin":
                base = url.removesuffix("/__admin")
                break
        if not base:
            sys.exit(f"the mock did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield proc, base
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


IDLE_SECONDS = 5.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    args = parser.parse_args()
    count = args.tenants
    with mock_process() as (baseline, base_url), mock_process() as (loaded, loaded_url):
        session = requests.Session()
        default_key = session.get(f"{base_url}/__admin/credentials", timeout=30).json()["customtrades"]["api_key"]
        created_ms: list[float] = []
        started = time.perf_counter()
        for index in range(count):
            began = time.perf_counter()
            body = {"id": f"bench-{index}", "seed": index}
            answer = session.post(f"{loaded_url}/__admin/tenants", json=body, timeout=60)
            created_ms.append((time.perf_counter() - began) * 1000)
            if answer.status_code != 201:
                sys.exit(f"tenant {index}: {answer.status_code} {answer.text[:300]}")
            tenant = answer.json()
            key = tenant["credentials"]["customtrades"]["api_key"]
            url = f"{tenant['base_url']}/customtrades/v1/customers"
            used = session.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
            if used.status_code != 200:
                sys.exit(f"tenant {index}: its customer list answered {used.status_code}")
            session.get(f"{base_url}/__admin/health", timeout=30)  # the same two requests to the baseline
            session.get(
                f"{base_url}/customtrades/v1/customers", headers={"Authorization": f"Bearer {default_key}"}, timeout=30
            )
        elapsed = time.perf_counter() - started
        listed = session.get(f"{loaded_url}/__admin/tenants", timeout=60).json()
        assert len(listed) == count, f"{len(listed)} tenants listed, {count} created"
        time.sleep(2)  # idle
        base_rss, loaded_rss = rss_bytes(baseline.pid), rss_bytes(loaded.pid)
        cpu_before = cpu_seconds(baseline.pid), cpu_seconds(loaded.pid)
        time.sleep(IDLE_SECONDS)  # the clock ticker visits every tenant 4 times a second
        pairs = zip((baseline, loaded), cpu_before, strict=True)
        idle_cpu = [(cpu_seconds(proc.pid) - before) / IDLE_SECONDS for proc, before in pairs]
    per_tenant = (loaded_rss - base_rss) / count
    ordered = sorted(created_ms)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {count} tenants made and used in {elapsed:.0f} s")
    print(f"create: p50 {statistics.median(ordered):.1f} ms, p99 {ordered[int(0.99 * (len(ordered) - 1))]:.1f} ms")
    print(f"baseline RSS {base_rss / 2**20:.1f} MiB; with {count} tenants {loaded_rss / 2**20:.1f} MiB")
    print(f"idle CPU: baseline {idle_cpu[0]:.1%}, with {count} tenants {idle_cpu[1]:.1%} of a core")
    verdict = "PASS" if per_tenant < TARGET_MIB * 2**20 else "FAIL"
    print(f"RSS per idle tenant: {per_tenant / 1024:.0f} KiB (target < {TARGET_MIB:g} MiB): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
