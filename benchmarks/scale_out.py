"""Scale-out: a mixed tenant load against one mock process alone, then against `serve --workers 2`
behind nginx (`loyalty-mock nginx-config`), in one run (issue 18). Target: two workers >= 1.5x one.

    python benchmarks/scale_out.py [--seconds 10] [--rounds 3] [--connections 32] [--tenants 32]
                                   [--writes 0.2] [--split even|hash] [--pin]

Every configuration serves the same `--tenants` tenant ids (`PUT /t/<id>/__admin/tenant`, through
nginx when there is one), each with one Custom Trades customer; by default ids the consistent hash
shares equally between the two workers (16 + 16: the average share; a given small set can fall
13 + 19, and then the busier worker bounds the closed-loop load), `--split hash` takes
`tenant-0` ... as they fall. wrk (Debian package `wrk`, one thread, a prebuilt request table)
spreads requests round-robin over the tenants, each with its own API key: a `--writes` share of
them creates a customer (`POST .../v1/customers`, a validated body), the rest read one
(`GET .../v1/customers/<uuid>`). Same options for every mock process (no `--state-file`, so no
fsync on either side). Rows: one process direct; the same process behind nginx (the proxy's own
cost); two workers behind nginx. Rounds interleave the rows. Nothing is pinned unless `--pin`
(the mock processes to one core each; nginx and wrk float). Each row gives the CPU a request cost
in the mock, nginx and wrk, the cores each got (CPU seconds / wall seconds: below 2 in all, the
host's other work took the rest, and two workers cannot show their gain), and the capacity those
costs imply on two cores free of other work. Before the run and after each round, two processes
of pure Python work are timed against one: the host's own two-core scaling, the ceiling before any
proxy cost.
nginx's per-tenant rate limit is off here (`--tenant-rate 0`) so that no answer is a cheap 429; a
run with any non-2xx answer is invalid. The target counts as met only if both the ratio of the
medians and the median of the rounds' ratios reach it.
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
from concurrent.futures import ProcessPoolExecutor
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


def _owners(upstreams: list[str], session: requests.Session) -> dict[str, int]:
    """Which worker has each tenant (tenant id -> worker index), asked of each worker directly."""
    owners = {}
    for index, upstream in enumerate(upstreams):
        listed = session.get(f"http://{upstream}/__admin/tenants", timeout=30)
        listed.raise_for_status()
        owners.update({tenant["id"]: index for tenant in listed.json()})
    return owners


def _pick_ids(root: str, upstreams: list[str], count: int, split: str) -> tuple[list[str], list[int]]:
    """The tenant ids every configuration uses, and how many of them each worker owns. `split` "hash":
    `tenant-0` ... `tenant-<count - 1>`, wherever the hash puts them. "even": the first ids of that
    series that give each worker its equal share, what the hash gives on average over many tenants
    (the others are deleted again), so that the figure is the workers' scaling, not the luck of one
    small set of ids."""
    session = requests.Session()
    share = -(-count // len(upstreams))  # each worker's share, rounded up
    kept: list[str] = []
    per_worker = [0] * len(upstreams)
    number = 0
    while len(kept) < count:
        if number >= 50 * count:
            sys.exit(f"no even split of {count} tenants found in {number} ids")
        batch = [f"tenant-{number + offset}" for offset in range(count - len(kept))]
        number += len(batch)
        for tenant in batch:
            session.put(f"{root}/t/{tenant}/__admin/tenant", json={}, timeout=30).raise_for_status()
        owners = _owners(upstreams, session)
        for tenant in batch:
            if (split == "even" and per_worker[owners[tenant]] >= share) or len(kept) == count:
                session.delete(f"{root}/__admin/tenants/{tenant}", timeout=30).raise_for_status()
            else:
                kept.append(tenant)
                per_worker[owners[tenant]] += 1
    for tenant in kept:  # created again, with one customer each, by `_tenants` on every configuration
        session.delete(f"{root}/__admin/tenants/{tenant}", timeout=30).raise_for_status()
    return kept, per_worker


def _tenants(root: str, ids: list[str]) -> list[tuple[str, str, str]]:
    """The tenants `ids` with one customer each: (tenant id, API key, customer uuid)."""
    made = []
    session = requests.Session()
    for number, tenant in enumerate(ids):
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
    wall: float  # seconds the run took
    server_cpu: list[float]  # CPU seconds of each mock process during the run
    proxy_cpu: float  # ... of nginx (master and worker)
    load_cpu: float  # ... of wrk


def _run(root: str, script: str, args: argparse.Namespace, servers: list[int], proxies: list[int]) -> Run:
    before = ([_cpu_seconds([pid]) for pid in servers], _cpu_seconds(proxies),
              resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic())
    result = _wrk(root, script, args.connections, args.seconds)
    wall = time.monotonic() - before[3]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = after.ru_utime + after.ru_stime - before[2].ru_utime - before[2].ru_stime
    server = [_cpu_seconds([pid]) - start for pid, start in zip(servers, before[0], strict=True)]
    return Run(result, result.rps * args.seconds, wall, server, _cpu_seconds(proxies) - before[1], load)


def _pin(pid: int, cores: set[int]) -> None:
    """Every thread of `pid` may run only on `cores`."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cores)


def _load_average() -> float:
    return os.getloadavg()[0]


def _spin(seconds: float) -> float:  # pragma: no cover - runs in a child process
    """Pure Python work for `seconds` of wall time: loop turns done per second (CPU-bound, no I/O)."""
    turns, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10_000):
            turns += 1
    return turns / seconds


def _host_scaling(seconds: float = 2.0) -> float:
    """What two processes of pure Python work get done together over what one gets done alone, on
    this host now: 2.0 on two free cores of fixed speed; less when other work takes CPU time, or when
    a core runs slower with its neighbour busy (frequency, a hypervisor sharing physical cores). The
    ceiling of the workers' ratio before any proxy or load-generator cost."""
    with ProcessPoolExecutor(2) as pool:
        alone = pool.submit(_spin, seconds).result()
        together = sum(future.result() for future in [pool.submit(_spin, seconds) for _ in range(2)])
    return together / alone


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of one measurement (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each measuring every configuration (default 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--tenants", type=int, default=32)
    parser.add_argument("--writes", type=float, default=0.2, help="share of requests that create (default 0.2)")
    parser.add_argument(
        "--split", choices=("even", "hash"), default="even",
        help="tenant ids: 'even' picks ids the hash shares equally between the workers (default); "
        "'hash' takes tenant-0 ... tenant-<N-1> wherever they fall",
    )
    parser.add_argument(
        "--pin", action="store_true",
        help="pin the mock processes (the one alone to core 0, worker i to core i); nginx and wrk float",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `apt-get install -y wrk` (Debian package), then run again")
    cores = sorted(os.sched_getaffinity(0))
    print(f"before: {_uptime()}  ({len(cores)} cores)", flush=True)
    scaling = [_host_scaling()]  # and after every round
    with (
        _single() as (single, single_pids),
        _nginx([single.split("//")[1]]) as (single_proxy, single_proxy_pids),
        _workers(2) as (upstreams, worker_pids),
        _nginx(upstreams) as (sharded_proxy, sharded_proxy_pids),
    ):
        if args.pin:
            _pin(single_pids[0], {cores[0]})
            for index, pid in enumerate(worker_pids):
                _pin(pid, {cores[index % len(cores)]})
        ids, split = _pick_ids(sharded_proxy, upstreams, args.tenants, args.split)
        print(f"tenants per worker: {split} ({args.split})", flush=True)
        # the same tenant ids and requests everywhere; both single-process rows use the same tenants
        scripts = {
            "1 process": _script(_tenants(single, ids), args.writes),
            "2 workers": _script(_tenants(sharded_proxy, ids), args.writes),
        }
        targets = {  # name: (root URL, script, mock pids, nginx pids)
            "1 process, direct": (single, scripts["1 process"], single_pids, []),
            "1 process, nginx": (single_proxy, scripts["1 process"], single_pids, single_proxy_pids),
            "2 workers, nginx": (sharded_proxy, scripts["2 workers"], worker_pids, sharded_proxy_pids),
        }
        for root, script, _, _ in targets.values():
            _wrk(root, script, args.connections, 2)  # warm-up
        # rounds interleave the configurations, so that a change of load on the host hits each alike
        runs: dict[str, list[Run]] = {name: [] for name in targets}
        loads = [_load_average()]
        for number in range(args.rounds):
            for name, (root, script, servers, proxies) in targets.items():
                runs[name].append(_run(root, script, args, servers, proxies))
            loads.append(_load_average())
            scaling.append(_host_scaling(1.0))
            line = ", ".join(f"{name} {results[-1].result.rps:.0f}" for name, results in runs.items())
            print(f"round {number + 1}: {line} req/s; load average {loads[-1]:.2f}; host two-core scaling "
                  f"{scaling[-1]:.2f}x", flush=True)
    print(f"after:  {_uptime()}")
    print(f"{args.tenants} tenants ({split} per worker), {args.connections} connections, {args.rounds} x "
          f"{args.seconds} s each, {args.writes:.0%} creates / {1 - args.writes:.0%} reads, "
          f"{'mock processes pinned' if args.pin else 'nothing pinned'}; medians of the rounds")
    print(f"{'configuration':<20} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7}"
          f" {'CPU us/req: mock':>17} {'nginx':>6} {'wrk':>5} {'cores: mock':>16} {'nginx':>6} {'wrk':>5}"
          f" {'all':>5} {'capacity':>9}")
    medians, capacity = {}, {}
    for name, results in runs.items():
        medians[name] = median = Result(
            statistics.median(r.result.rps for r in results), statistics.median(r.result.p50_ms for r in results),
            statistics.median(r.result.p99_ms for r in results), sum(r.result.non_2xx for r in results),
        )
        count = sum(r.requests for r in results)
        wall = sum(r.wall for r in results)
        per_process = [sum(r.server_cpu[i] for r in results) for i in range(len(results[0].server_cpu))]
        mock = sum(per_process) / count
        proxy, load = (sum(getattr(r, field) for r in results) / count for field in ("proxy_cpu", "load_cpu"))
        # what 2 cores free of other work could answer (the load generator elsewhere): each mock
        # process is one event loop, so at most one core each; nginx shares the cores with them
        capacity[name] = min(len(per_process) / mock, 2 / (mock + proxy))
        # the cores each part got (CPU seconds / wall seconds): on a shared host, what the scheduler
        # left; with less than 2 in all, two workers cannot show their gain
        got = "+".join(f"{cpu / wall:.2f}" for cpu in per_process)
        every = (sum(per_process) + (proxy + load) * count) / wall
        print(f"{name:<20} {median.rps:>7.0f} {median.p50_ms:>7.2f} {median.p99_ms:>7.2f} {median.non_2xx:>7}"
              f" {mock * 1e6:>17.0f} {proxy * 1e6:>6.0f} {load * 1e6:>5.0f} {got:>16} {proxy * count / wall:>6.2f}"
              f" {load * count / wall:>5.2f} {every:>5.2f} {capacity[name]:>9.0f}")
    per_round = [
        s.result.rps / d.result.rps for s, d in zip(runs["2 workers, nginx"], runs["1 process, direct"], strict=True)
    ]
    ratio = medians["2 workers, nginx"].rps / medians["1 process, direct"].rps
    paired = statistics.median(per_round)
    proxy_cost = medians["1 process, nginx"].rps / medians["1 process, direct"].rps
    print(f"ratio 2 workers behind nginx / 1 process direct: {ratio:.2f}x of the medians, {paired:.2f}x the median "
          f"of the rounds' ratios ({', '.join(f'{r:.2f}' for r in per_round)}; target >= 1.5x); "
          f"load average {min(loads):.2f}-{max(loads):.2f}")
    print(f"ratio 1 process behind nginx / 1 process direct: {proxy_cost:.2f}x (nginx's own cost)")
    print(f"host: two processes of pure Python work do {statistics.median(scaling):.2f}x what one does alone "
          f"(median; {min(scaling):.2f}-{max(scaling):.2f}, before and after each round): the ceiling before "
          "nginx's and wrk's costs")
    estimate = capacity["2 workers, nginx"] / capacity["1 process, direct"]
    print(f"capacity ratio from CPU per request: {estimate:.2f}x on 2 free cores of one speed; "
          f"{estimate * statistics.median(scaling) / 2:.2f}x at this host's median two-core scaling")
    valid = all(m.non_2xx == 0 for m in medians.values())
    if not valid:
        print("INVALID: some answers were not 2xx")
    met = valid and min(ratio, paired) >= 1.5
    print("target met" if met else "target NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
