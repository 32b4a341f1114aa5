"""Scale-out: a mixed tenant load against one mock process alone, then against `serve --workers 2`
behind nginx (`loyalty-mock nginx-config`), in one run (issue 18). Target: two workers >= 1.5x one.

    python benchmarks/scale_out.py [--seconds 10] [--connections 32] [--tenants 32] [--writes 0.2]

Each configuration gets `--tenants` fresh tenants (`PUT /t/<id>/__admin/tenant`, through nginx when
there is one) with one Custom Trades customer each; then wrk (Debian package `wrk`) spreads
requests round-robin over the tenants, each with its own API key: a `--writes` share of them
creates a customer (`POST .../v1/customers`, a validated body), the rest read one
(`GET .../v1/customers/<uuid>`). Rows: one process direct; one process behind nginx (the proxy's
own cost); two workers behind nginx. Nothing is pinned: the workers, nginx and wrk share the
host's cores, as they would in production on a small host; `uptime` is printed before and after,
since other work on the host skews every figure. Each row also gives the CPU a request cost in
each process, the cores the run got in all (CPU seconds / wall seconds: below 2, the host's other
work took the rest, and two workers cannot show their gain), and the capacity those costs imply
on two cores free of other work, with the load generator elsewhere. nginx's per-tenant rate limit is off here
(`--tenant-rate 0`) so that no answer is a cheap 429; a run with any non-2xx answer is invalid.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from _common import Result, _ms

from mock_server.workers import nginx_config, nginx_standalone

MOCK = [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--api", "customtrades",
        "--customtrades-quota", "0", "--log-level", "error"]
NEW_CUSTOMER = {
    "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "206-555-0100",
    "customer_type": "Residential", "is_vip": False, "notes": "benchmark",
}
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


@contextmanager
def _nginx(upstreams: list[str]) -> Iterator[tuple[str, list[int]]]:
    """nginx in front of `upstreams`, unprivileged, in a temporary prefix; yields its root URL and
    its pids (master and worker)."""
    if NGINX is None:
        sys.exit("nginx is not installed: `apt-get install -y nginx` (Debian package), then run again")
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)  # nginx's worker runs as `nobody` when this runs as root
        port = _free_port()
        config = nginx_config(upstreams, listen=f"127.0.0.1:{port}", tenant_rate=0)
        Path(folder, "nginx.conf").write_text(nginx_standalone(config))
        proc = subprocess.Popen(
            [NGINX, "-p", folder, "-c", f"{folder}/nginx.conf", "-e", f"{folder}/error.log", "-g", "daemon off;"]
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(url, timeout=1)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        sys.exit(f"nginx did not start: {Path(folder, 'error.log').read_text()[-2000:]}")
                    time.sleep(0.05)
            yield url, [proc.pid, *_children(proc.pid)]
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@contextmanager
def _single() -> Iterator[tuple[str, list[int]]]:
    """One `serve` process; yields its root URL and pid."""
    proc = subprocess.Popen(MOCK, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            name, url = line.split()
            if name == "admin":
                yield url.removesuffix("/__admin"), [proc.pid]
                break
        else:
            sys.exit("serve did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@contextmanager
def _workers(count: int) -> Iterator[tuple[list[str], list[int]]]:
    """`serve --workers count`; yields each worker's host:port (worker 0 first) and the workers' pids."""
    proc = subprocess.Popen([*MOCK, "--workers", str(count)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        upstreams = []
        for line in proc.stdout:
            name, url = line.split()
            if name.endswith(":admin"):
                upstreams.append(url.split("//")[1].removesuffix("/__admin"))
                if len(upstreams) == count:
                    break
        else:
            sys.exit(f"serve --workers {count} did not start")
        yield upstreams, _children(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _tenants(root: str, count: int, prefix: str) -> list[tuple[str, str, str]]:
    """`count` tenants with one customer each: (tenant id, API key, customer uuid)."""
    made = []
    session = requests.Session()
    for number in range(count):
        tenant = f"{prefix}-{number}"
        created = session.put(f"{root}/t/{tenant}/__admin/tenant", json={"seed": number}, timeout=30)
        created.raise_for_status()
        key = created.json()["credentials"]["customtrades"]["api_key"]
        customer = session.post(
            f"{root}/t/{tenant}/customtrades/v1/customers", json=NEW_CUSTOMER,
            headers={"Authorization": f"Bearer {key}"}, timeout=30,
        )
        customer.raise_for_status()
        made.append((tenant, key, customer.json()["data"]["uuid"]))
    return made


def _script(tenants: list[tuple[str, str, str]], writes: float) -> str:
    """A wrk script: round-robin over the tenants; every 1/writes-th request a create."""
    body = json.dumps(NEW_CUSTOMER)
    lines = ["local reqs = {}", "init = function(args)  -- after wrk has set its Host header"]
    every = max(1, round(1 / writes)) if writes > 0 else 0
    slots = len(tenants) * (every or 1)
    for slot in range(slots):
        tenant, key, uuid = tenants[slot % len(tenants)]
        headers = f'{{["Authorization"] = "Bearer {key}"'
        if every and slot % every == every - 1:
            headers += ', ["Content-Type"] = "application/json"}'
            lines.append(
                f'  reqs[{slot + 1}] = wrk.format("POST", "/t/{tenant}/customtrades/v1/customers", {headers}, '
                f"{json.dumps(body)})"
            )
        else:
            headers += "}"
            lines.append(f'  reqs[{slot + 1}] = wrk.format("GET", "/t/{tenant}/customtrades/v1/customers/{uuid}", '
                         f"{headers})")
    lines += [
        "end",
        "local i = 0",
        "request = function()",
        f"  i = i % {slots} + 1",
        "  return reqs[i]",
        "end",
    ]
    return "\n".join(lines) + "\n"


def _wrk(root: str, script: str, connections: int, seconds: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", file.name, root],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout
    finally:
        os.unlink(file.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        print(f"  wrk socket errors: {errors.group(1)}", file=sys.stderr)
    return Result(rps, p50, p99, int(bad.group(1)) if bad else 0)


@dataclass
class Run:
    result: Result
    requests: float  # answered in the run
    server_cpu: float  # CPU seconds of the mock process(es) during the run
    proxy_cpu: float  # ... of nginx
    load_cpu: float  # ... of wrk


def _run(root: str, script: str, args: argparse.Namespace, servers: list[int], proxies: list[int]) -> Run:
    before = (_cpu_seconds(servers), _cpu_seconds(proxies), resource.getrusage(resource.RUSAGE_CHILDREN))
    result = _wrk(root, script, args.connections, args.seconds)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = after.ru_utime + after.ru_stime - before[2].ru_utime - before[2].ru_stime
    return Run(result, result.rps * args.seconds, _cpu_seconds(servers) - before[0],
               _cpu_seconds(proxies) - before[1], load)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of one measurement (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each measuring every configuration (default 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tenants", type=int, default=32)
    parser.add_argument("--writes", type=float, default=0.2, help="share of requests that create (default 0.2)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `apt-get install -y wrk` (Debian package), then run again")
    print(f"before: {_uptime()}  ({os.cpu_count()} cores)", flush=True)
    with (
        _single() as (single, single_pids),
        _nginx([single.split("//")[1]]) as (single_proxy, single_proxy_pids),
        _workers(2) as (upstreams, worker_pids),
        _nginx(upstreams) as (sharded_proxy, sharded_proxy_pids),
    ):
        targets = {  # name: (root URL, mock pids, nginx pids)
            "1 process, direct": (single, single_pids, []),
            "1 process, nginx": (single_proxy, single_pids, single_proxy_pids),
            "2 workers, nginx": (sharded_proxy, worker_pids, sharded_proxy_pids),
        }
        scripts = {
            name: _script(_tenants(root, args.tenants, f"bench{index}"), args.writes)
            for index, (name, (root, _, _)) in enumerate(targets.items())
        }
        for name, (root, _, _) in targets.items():
            _wrk(root, scripts[name], args.connections, 2)  # warm-up
        # rounds interleave the configurations, so that a change of load on the host hits each alike
        runs: dict[str, list[Run]] = {name: [] for name in targets}
        for number in range(args.rounds):
            for name, (root, servers, proxies) in targets.items():
                runs[name].append(_run(root, scripts[name], args, servers, proxies))
            line = ", ".join(f"{name} {results[-1].result.rps:.0f}" for name, results in runs.items())
            print(f"round {number + 1}: {line} req/s", flush=True)
    print(f"after:  {_uptime()}")
    print(f"{args.tenants} tenants, {args.connections} connections, {args.rounds} x {args.seconds} s each, "
          f"{args.writes:.0%} creates / {1 - args.writes:.0%} reads; medians of the rounds")
    print(f"{'configuration':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}"
          f" {'CPU us/req: mock':>17} {'nginx':>6} {'wrk':>6} {'cores got':>9} {'capacity':>9}")
    medians, capacity = {}, {}
    for name, results in runs.items():
        medians[name] = median = Result(
            statistics.median(r.result.rps for r in results), statistics.median(r.result.p50_ms for r in results),
            statistics.median(r.result.p99_ms for r in results), sum(r.result.non_2xx for r in results),
        )
        count = sum(r.requests for r in results)
        mock, proxy, load = (
            sum(getattr(r, field) for r in results) / count for field in ("server_cpu", "proxy_cpu", "load_cpu")
        )
        # what 2 cores free of other work could answer (the load generator elsewhere): each mock
        # process is one event loop, so at most one core each; nginx shares the cores with them
        processes = 2 if name.startswith("2 workers") else 1
        # how many of the host's cores the run got in all (mock, nginx and wrk): on a shared host,
        # what the scheduler leaves; with less than 2, two workers cannot show their gain
        got = (mock + proxy + load) * count / (len(results) * args.seconds)
        capacity[name] = min(processes / mock, 2 / (mock + proxy))
        print(f"{name:<20} {median.rps:>9.0f} {median.p50_ms:>8.2f} {median.p99_ms:>8.2f} {median.non_2xx:>8}"
              f" {mock * 1e6:>17.0f} {proxy * 1e6:>6.0f} {load * 1e6:>6.0f} {got:>9.2f} {capacity[name]:>9.0f}")
    per_round = [
        s.result.rps / d.result.rps for s, d in zip(runs["2 workers, nginx"], runs["1 process, direct"], strict=True)
    ]
    ratio = medians["2 workers, nginx"].rps / medians["1 process, direct"].rps
    proxy_cost = medians["1 process, nginx"].rps / medians["1 process, direct"].rps
    print(f"ratio 2 workers behind nginx / 1 process direct: {ratio:.2f}x measured (target >= 1.5x); "
          f"per round {', '.join(f'{r:.2f}' for r in per_round)}")
    print(f"ratio 1 process behind nginx / 1 process direct: {proxy_cost:.2f}x (nginx's own cost)")
    print(f"capacity ratio on 2 free cores (from CPU per request): "
          f"{capacity['2 workers, nginx'] / capacity['1 process, direct']:.2f}x")
    valid = all(m.non_2xx == 0 for m in medians.values())
    if not valid:
        print("INVALID: some answers were not 2xx")
    print("target met" if valid and ratio >= 1.5 else "target NOT met")
    return 0 if valid and ratio >= 1.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
