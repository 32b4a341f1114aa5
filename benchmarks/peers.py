"""Side by side: bare aiohttp (the ceiling), this mock, Prism and WireMock, in one run (issue 11).

    python3 benchmarks/peers.py [--seconds 10] [--connections 32] [--warmup 2] [--rounds 1]

The same two Custom Trades operations on every server: an authenticated GET of one customer and a
POST creating one (a request body checked against the spec's CustomerCreate schema):

- bare      aiohttp answering fixed bytes (the mock's own answers), no routing, no validation;
- mock      `loyalty-mock serve --api customtrades --customtrades-quota 0 --log-level error`;
- Prism     `prism mock openapi/customtrades.yaml -v error` (static mode: answers the spec's
            examples; validates the request against the spec, but checks only that an
            Authorization header is present, not that the key is valid);
- WireMock  the standalone jar with two stubs: the GET matches the exact Bearer key, the POST the
            key and `matchesJsonSchema` with the spec's CustomerCreate schema; both answer the
            mock's own bytes. Journal bounded like ours (10 000 entries).

Each server runs alone, pinned to core 0 (taskset); wrk (one thread) is pinned to core 1, with the
same connections and duration for all. Each operation gets a `--warmup` wrk run first (the JVM
needs it). Printed per server: requests/s, p50, p99, non-2xx, start-up time (process start -> first
successful authenticated GET) and resident memory (VmRSS of the server's process tree after the
load, and its peak VmHWM). Then our ratios and the issue's targets: mock >= 3x Prism on both
operations, mock p99 below every peer's, GET >= 0.6x bare, start-up < 1 s. With `--rounds N` the
whole comparison repeats and the verdict uses the median of each figure.

Set-up: Prism and WireMock come from npm into benchmarks/.peers/ (git-ignored), installed by this
script when missing (`npm install --prefix benchmarks/.peers @stoplight/prism-cli wiremock`);
WireMock needs Java 11+ (`java` on PATH); wrk: `apt-get install -y wrk`. Never run by the tests.
Loopback only; every run is bounded in time. Exit status 0 when every target is met, else 1.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from _common import HERE, Result, cores, wrk
from throughput import BARE, NEW_CUSTOMER, _free_port

ROOT = os.path.dirname(HERE)
PEERS = os.path.join(HERE, ".peers")
PRISM = os.path.join(PEERS, "node_modules", ".bin", "prism")
SERVERS = ("bare", "mock", "prism", "wiremock")
OPS = ("GET", "POST")


# -- set-up -----------------------------------------------------------------------------------------
def wiremock_jar() -> str | None:
    found = sorted(glob.glob(os.path.join(PEERS, "node_modules", "wiremock", "build", "wiremock-standalone-*.jar")))
    return found[-1] if found else None


def setup_peers() -> None:
    """Install Prism and WireMock from npm into benchmarks/.peers/ when they are not there yet."""
    if os.path.exists(PRISM) and wiremock_jar():
        return
    if not shutil.which("npm"):
        sys.exit("npm is needed to install the peers (Prism, WireMock): install Node.js 18+ and run again")
    print("installing the peers: npm install --prefix benchmarks/.peers @stoplight/prism-cli wiremock", flush=True)
    subprocess.run(
        ["npm", "install", "--prefix", PEERS, "--no-audit", "--no-fund", "@stoplight/prism-cli", "wiremock"],
        check=True,
        timeout=600,
    )
    if not (os.path.exists(PRISM) and wiremock_jar()):
        sys.exit("npm install finished but prism or the WireMock jar is missing under benchmarks/.peers/")
    if not shutil.which("java"):
        sys.exit("WireMock needs Java 11+ on PATH")


# -- processes ----------------------------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    """pid and every descendant (Prism or a wrapper may fork)."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the process tree in MiB, from /proc/<pid>/status."""
    rss = hwm = 0
    for member in _tree(pid):
        try:
            with open(f"/proc/{member}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, hwm / 1024


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    startup_s: float
    log: Any


def start(cmd: list[str], probe: Callable[[], bool], timeout: float = 60.0, cwd: str = ROOT) -> Running:
    """Start a server and time process start -> first successful probe (polled every 5 ms)."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    while time.perf_counter() - began < timeout:
        if proc.poll() is not None:
            break
        try:
            if probe():
                return Running(proc, time.perf_counter() - began, log)
        except requests.RequestException:
            pass
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    log.seek(0)
    sys.exit(f"{' '.join(cmd)} did not answer within {timeout:g} s:\n{log.read().decode(errors='replace')[-3000:]}")


def stop(running: Running) -> None:
    running.proc.terminate()
    try:
        running.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        running.proc.kill()
        running.proc.wait()
    running.log.close()


def ok_get(url: str, headers: dict[str, str]) -> Callable[[], bool]:
    return lambda: 200 <= requests.get(url, headers=headers, timeout=1).status_code < 300


# -- one server -------------------------------------------------------------------------------------
@dataclass
class Figures:
    results: dict[str, Result]
    startup_s: float
    rss_mb: float
    peak_mb: float


def drive(get_url: str, post_url: str, auth: dict[str, str], args: argparse.Namespace) -> dict[str, Result]:
    post_headers = {**auth, "Content-Type": "application/json"}
    found: dict[str, Result] = {}
    for op, url, extra in (("GET", get_url, {}), ("POST", post_url, {"method": "POST", "body": NEW_CUSTOMER})):
        headers = post_headers if op == "POST" else auth
        if args.warmup:
            wrk(url, connections=args.connections, seconds=args.warmup, headers=headers, **extra)  # type: ignore[arg-type]
        found[op] = wrk(url, connections=args.connections, seconds=args.seconds, headers=headers, **extra)  # type: ignore[arg-type]
    return found


def measure(running: Running, get_url: str, post_url: str, auth: dict[str, str], args: argparse.Namespace) -> Figures:
    try:
        results = drive(get_url, post_url, auth, args)
        rss, peak = memory_mb(running.proc.pid)
    finally:
        stop(running)
    return Figures(results, running.startup_s, rss, peak)


def customtrades_key() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "mock_server", "credentials"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    key: str = json.loads(out)["customtrades"]["api_key"]
    return key


def bench_mock(server: list[str], key: str, args: argparse.Namespace) -> tuple[Figures, bytes, bytes]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}/customtrades"
    auth = {"Authorization": f"Bearer {key}"}
    cmd = [*server, sys.executable, "-m", "mock_server", "serve", "--port", str(port), "--api", "customtrades",
           "--customtrades-quota", "0", "--log-level", "error"]
    # the mock starts empty: its start-up probe is the authenticated list GET (same pipeline)
    running = start(cmd, ok_get(f"{base}/v1/customers", auth))
    created = requests.post(f"{base}/v1/customers", json=NEW_CUSTOMER, headers=auth, timeout=10)
    created.raise_for_status()
    uuid = created.json()["data"]["uuid"]
    got = requests.get(f"{base}/v1/customers/{uuid}", headers=auth, timeout=10)
    got.raise_for_status()
    requests.delete(f"http://127.0.0.1:{port}/__admin/requests", timeout=10)
    figures = measure(running, f"{base}/v1/customers/{uuid}", f"{base}/v1/customers", auth, args)
    return figures, got.content, created.content


def bench_bare(server: list[str], key: str, get_bytes: bytes, post_bytes: bytes, args: argparse.Namespace) -> Figures:
    with tempfile.NamedTemporaryFile(delete=False) as g, tempfile.NamedTemporaryFile(delete=False) as p:
        g.write(get_bytes)
        p.write(post_bytes)
    try:
        port = _free_port()
        auth = {"Authorization": f"Bearer {key}"}
        base = f"http://127.0.0.1:{port}"
        cmd = [*server, sys.executable, "-c", BARE, str(port), g.name, p.name]
        running = start(cmd, ok_get(f"{base}/customer", auth))
        return measure(running, f"{base}/customer", f"{base}/customers", auth, args)
    finally:
        os.unlink(g.name)
        os.unlink(p.name)


def bench_prism(server: list[str], key: str, uuid: str, args: argparse.Namespace) -> Figures:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {key}"}
    cmd = [*server, PRISM, "mock", os.path.join(ROOT, "openapi", "customtrades.yaml"), "-h", "127.0.0.1",
           "-p", str(port), "-v", "error"]
    running = start(cmd, ok_get(f"{base}/v1/customers/{uuid}", auth))
    return measure(running, f"{base}/v1/customers/{uuid}", f"{base}/v1/customers", auth, args)


def _plain_schema(node: Any) -> Any:
    """A JSON Schema without the spec's annotations (x-*, descriptions, examples)."""
    if isinstance(node, dict):
        drop = {"description", "examples", "example"}
        return {k: _plain_schema(v) for k, v in node.items() if not k.startswith("x-") and k not in drop}
    if isinstance(node, list):
        return [_plain_schema(v) for v in node]
    return node


def bench_wiremock(
    server: list[str], key: str, uuid: str, get_bytes: bytes, post_bytes: bytes, args: argparse.Namespace
) -> Figures:
    sys.path.insert(0, ROOT)
    from mock_server.schema import dereference
    from mock_server.spec import load_document

    document = load_document("customtrades")
    body = dereference(document["paths"]["/v1/customers"]["post"]["requestBody"], document)
    schema = _plain_schema(body["content"]["application/json"]["schema"])
    bearer = {"Authorization": {"equalTo": f"Bearer {key}"}}
    json_headers = {"Content-Type": "application/json"}
    stubs = {
        "mappings": [
            {
                "request": {"method": "GET", "url": f"/v1/customers/{uuid}", "headers": bearer},
                "response": {"status": 200, "body": get_bytes.decode(), "headers": json_headers},
            },
            {
                "request": {
                    "method": "POST",
                    "url": "/v1/customers",
                    "headers": {**bearer, "Content-Type": {"contains": "application/json"}},
                    "bodyPatterns": [{"matchesJsonSchema": json.dumps(schema), "schemaVersion": "V202012"}],
                },
                "response": {"status": 201, "body": post_bytes.decode(), "headers": json_headers},
            },
        ]
    }
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "mappings"))
        os.makedirs(os.path.join(root, "__files"))
        with open(os.path.join(root, "mappings", "customtrades.json"), "w") as handle:
            json.dump(stubs, handle)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {key}"}
        cmd = [*server, "java", "-jar", str(wiremock_jar()), "--port", str(port), "--bind-address", "127.0.0.1",
               "--root-dir", root, "--disable-banner", "--max-request-journal-entries", "10000"]
        running = start(cmd, ok_get(f"{base}/v1/customers/{uuid}", auth))
        # the POST stub must accept our body and refuse a schema-violating one, like the others
        good = requests.post(f"{base}/v1/customers", json=NEW_CUSTOMER, headers=auth, timeout=10).status_code
        bad = requests.post(f"{base}/v1/customers", json={"first_name": 5}, headers=auth, timeout=10).status_code
        if good != 201 or bad < 400:
            stop(running)
            sys.exit(f"WireMock stubs misbehave: valid POST -> {good}, invalid POST -> {bad}")
        return measure(running, f"{base}/v1/customers/{uuid}", f"{base}/v1/customers", auth, args)


def one_round(args: argparse.Namespace) -> dict[str, Figures]:
    server, _ = cores()
    key = customtrades_key()
    figures: dict[str, Figures] = {}
    figures["mock"], get_bytes, post_bytes = bench_mock(server, key, args)
    uuid = json.loads(get_bytes)["data"]["uuid"]
    figures["bare"] = bench_bare(server, key, get_bytes, post_bytes, args)
    figures["prism"] = bench_prism(server, key, uuid, args)
    figures["wiremock"] = bench_wiremock(server, key, uuid, get_bytes, post_bytes, args)
    return figures


# -- report -----------------------------------------------------------------------------------------
def table(figures: dict[str, Figures]) -> None:
    print(f"{'server':<9} {'op':<5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
          f"{'start s':>8} {'RSS MiB':>8} {'peak MiB':>9}")
    for name in SERVERS:
        f = figures[name]
        for op in OPS:
            r = f.results[op]
            print(f"{name:<9} {op:<5} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.non_2xx:>8} "
                  f"{f.startup_s:>8.3f} {f.rss_mb:>8.1f} {f.peak_mb:>9.1f}")


def median_figures(rounds: list[dict[str, Figures]]) -> dict[str, Figures]:
    merged: dict[str, Figures] = {}
    for name in SERVERS:
        results = {
            op: Result(
                statistics.median(r[name].results[op].rps for r in rounds),
                statistics.median(r[name].results[op].p50_ms for r in rounds),
                statistics.median(r[name].results[op].p99_ms for r in rounds),
                max(r[name].results[op].non_2xx for r in rounds),
            )
            for op in OPS
        }
        merged[name] = Figures(
            results,
            statistics.median(r[name].startup_s for r in rounds),
            statistics.median(r[name].rss_mb for r in rounds),
            statistics.median(r[name].peak_mb for r in rounds),
        )
    return merged


def verdict(figures: dict[str, Figures]) -> bool:
    mock = figures["mock"]
    checks: list[tuple[str, bool]] = []
    for op in OPS:
        m = mock.results[op].rps
        ratios = {peer: m / figures[peer].results[op].rps for peer in ("prism", "wiremock", "bare")}
        print(f"ratios {op:<4}: mock/Prism {ratios['prism']:.2f}x, mock/WireMock {ratios['wiremock']:.2f}x, "
              f"mock/bare {ratios['bare']:.2f}x")
        checks.append((f"{op} mock >= 3x Prism ({ratios['prism']:.2f}x)", ratios["prism"] >= 3))
        peers_p99 = {peer: figures[peer].results[op].p99_ms for peer in ("prism", "wiremock")}
        lower = all(mock.results[op].p99_ms < p for p in peers_p99.values())
        detail = ", ".join(f"{peer} {p:.2f}" for peer, p in peers_p99.items())
        checks.append((f"{op} mock p99 {mock.results[op].p99_ms:.2f} ms < every peer's ({detail})", lower))
    checks.append((f"GET mock >= 0.6x bare ({mock.results['GET'].rps / figures['bare'].results['GET'].rps:.2f}x)",
                   mock.results["GET"].rps >= 0.6 * figures["bare"].results["GET"].rps))
    checks.append((f"mock start-up < 1 s ({mock.startup_s:.3f} s)", mock.startup_s < 1.0))
    errors = {f"{name} {op}": figures[name].results[op].non_2xx for name in SERVERS for op in OPS}
    checks.append(("no non-2xx answers in any run" + "".join(f"; {k}: {v}" for k, v in errors.items() if v),
                   not any(errors.values())))
    for text, passed in checks:
        print(f"  [{'met' if passed else 'NOT met'}] {text}")
    return all(passed for _, passed in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="measured wrk run per operation (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured wrk run first (default 2; 0 = none)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the comparison; the verdict uses medians")
    args = parser.parse_args()
    setup_peers()
    server, load = cores()
    print(f"pinning: servers {' '.join(server) or '(none: taskset missing)'}, wrk {' '.join(load) or '(none)'}; "
          f"{args.connections} connections, {args.warmup} s warm-up + {args.seconds} s per operation")
    rounds = []
    for number in range(1, args.rounds + 1):
        figures = one_round(args)
        rounds.append(figures)
        print(f"\nround {number}")
        table(figures)
    merged = median_figures(rounds) if len(rounds) > 1 else rounds[0]
    if len(rounds) > 1:
        print(f"\nmedian of {len(rounds)} rounds")
        table(merged)
    print()
    ok = verdict(merged)
    print("PASS: every target met" if ok else "FAIL: some targets not met (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
