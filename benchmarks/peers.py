"""Side by side, each server at its best: bare aiohttp (the ceiling), this mock, Prism and WireMock
(issues 11 and 20).

    python3 benchmarks/peers.py                 # every server, 2 rounds (~15 min quiet; at most ~35)
    python3 benchmarks/peers.py --servers wiremock,wiremock-nojournal --rounds 1 --json out.json
    python3 benchmarks/peers.py --merge a.json b.json      # one summary from several runs

The same two Custom Trades operations on every server: an authenticated GET of one customer and a
POST creating one (a request body checked against the spec's CustomerCreate schema):

- bare      aiohttp answering fixed bytes (the mock's own answers), no routing, no validation;
- mock      `loyalty-mock serve --api customtrades --customtrades-quota 0 --log-level error`
            (validates the key and the body, stores the customer, keeps a journal bounded at 10,000);
- prism     `prism mock openapi/customtrades.yaml -v error` (static mode: answers the spec's
            examples; validates the request against the spec, but checks only that an
            Authorization header is present, not that the key is valid);
- wiremock  the standalone jar with two stubs: the GET matches the exact Bearer key, the POST the
            key and `matchesJsonSchema` with the spec's CustomerCreate schema; both answer the
            mock's own bytes. Journal bounded like ours (`--max-request-journal-entries 10000`);
- wiremock-nojournal  the same with `--no-request-journal` (WireMock's advice for load tests).

Both WireMock variants get WireMock's load flags: `--disable-request-logging` (verbose is off by
default), `--async-response-enabled true` (it only changes stubs with a delay: ours have none),
`--container-threads` = connections + 8 (Jetty serves a request on a pool thread for its whole
life, and its acceptor and selector threads come from the same pool) and
`--jetty-acceptor-threads 1` (the connections are kept alive: one accept each). The JVM runs with
its defaults; pinned to one core, it picks the serial collector, and its JIT and GC threads share
that core with Jetty.

Each server runs alone, pinned to core 0 (taskset); wrk (one thread) is pinned to core 1, with the
same connections for all. Warm-up, per server and per operation: repeated 5 s wrk runs until the
last three are within 3 % of each other (max/min) and of the best run so far, after a minimum
(30 s for the JVM, 15 s for the others) and never past the cap (`--warm-cap-jvm` 120 s,
`--warm-cap` 60 s for the others: they have no JIT, or V8's, which is warm in seconds); the curve
is printed. Then a measured `--seconds` run.
Before the load, each server is probed with four requests that tell what it checks: a POST missing
a required field, a POST with a field of the wrong type, a GET without Authorization and a GET with
a wrong key (status and the first bytes of the answer).

Printed per round and server: requests/s, p50, p99, non-2xx, start-up time (process start -> first
successful authenticated GET), resident memory (VmRSS of the server's process tree after the load
and its peak VmHWM); then, over the rounds, the median and spread (min-max) of each figure, the
same-run ratios, the probe table and the targets (a summary block in Markdown, for the doc).
Every server is restarted each round. Load averages are printed at each start.

Set-up: Prism and WireMock come from npm into benchmarks/.peers/ (git-ignored), installed by this
script when missing (`npm install --prefix benchmarks/.peers @stoplight/prism-cli wiremock`);
WireMock needs Java 11+ (`java` on PATH); wrk: `apt-get install -y wrk`. Never run by the tests.
Loopback only; every run is bounded in time. Exit status 0 when every target that the servers
measured allow checking is met, else 1.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import requests
from _common import HERE, Result, cores, wrk
from throughput import BARE, NEW_CUSTOMER, _free_port

ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # the repository's package, also when not installed
PEERS = os.path.join(HERE, ".peers")
PRISM = os.path.join(PEERS, "node_modules", ".bin", "prism")
SERVERS = ("bare", "mock", "prism", "wiremock", "wiremock-nojournal")
PEER_NAMES = ("prism", "wiremock", "wiremock-nojournal")
OPS = ("GET", "POST")
WARM_STEP = 5  # seconds per warm-up wrk run
PLATEAU_RUNS = 3  # the last this many warm-up runs ...
PLATEAU_SPREAD = 0.03  # ... within this fraction of each other (max/min - 1)
WARM_MIN = {"wiremock": 30, "wiremock-nojournal": 30}  # seconds; the JVM's JIT needs them
WARM_MIN_DEFAULT = 15
JVM = ("wiremock", "wiremock-nojournal")
PROBES = ("POST missing last_name", "POST first_name: 5", "GET no Authorization", "GET wrong key")


# -- set-up -----------------------------------------------------------------------------------------
def wiremock_jar() -> str | None:
    found = sorted(glob.glob(os.path.join(PEERS, "node_modules", "wiremock", "build", "wiremock-standalone-*.jar")))
    return found[-1] if found else None


def setup_peers(servers: list[str]) -> None:
    """Install Prism and WireMock from npm into benchmarks/.peers/ when they are not there yet."""
    wanted_prism = "prism" in servers
    wanted_wiremock = any(s.startswith("wiremock") for s in servers)
    if (not wanted_prism or os.path.exists(PRISM)) and (not wanted_wiremock or wiremock_jar()):
        pass
    else:
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
    if wanted_wiremock and not shutil.which("java"):
        sys.exit("WireMock needs Java 11+ on PATH")


def versions(servers: list[str]) -> dict[str, str]:
    """What ran: the versions of the peers, Java (and the collector it picks on one core), Node, Python."""
    found = {"python": platform.python_version()}
    try:
        import aiohttp

        found["aiohttp"] = aiohttp.__version__
    except ImportError:  # pragma: no cover - the project depends on it
        pass
    if "prism" in servers:
        try:
            with open(os.path.join(PEERS, "node_modules", "@stoplight", "prism-cli", "package.json")) as handle:
                found["prism"] = json.load(handle)["version"]
        except (OSError, KeyError, ValueError):
            found["prism"] = "?"
        node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30, check=False)
        found["node"] = node.stdout.strip()
    if any(s.startswith("wiremock") for s in servers):
        jar = wiremock_jar() or "?"
        found["wiremock"] = os.path.basename(jar).removeprefix("wiremock-standalone-").removesuffix(".jar")
        flags = subprocess.run(
            [*cores()[0], "java", "-XX:+PrintCommandLineFlags", "-version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        out = flags.stdout + flags.stderr
        version = next((line for line in out.splitlines() if "version" in line), "?")
        gc = next((w.removeprefix("-XX:+") for w in out.split() if w.startswith("-XX:+Use") and w.endswith("GC")), "?")
        found["java"] = f"{version.strip()} ({gc} on the server's core)"
    return found


def event_loop(choice: str) -> tuple[str, list[str]]:
    """(loop name for the bare server, `serve` arguments for the mock): both on the same loop.
    Where this checkout's `serve` has no `--loop` (no mock_server.eventloop), asyncio for both."""
    try:
        from mock_server import eventloop  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return "asyncio", []
    try:
        name: str = eventloop.resolve(choice).name
    except eventloop.LoopUnavailable as exc:
        sys.exit(str(exc))
    return name, ["--loop", name]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


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


# -- what each server checks --------------------------------------------------------------------------
def _violations(header: str | None) -> str:
    """Prism answers the spec's example of the error and says what it found in `sl-violations`."""
    if not header:
        return ""
    try:
        messages = [str(v.get("message", "")) for v in json.loads(header)]
    except (ValueError, AttributeError, TypeError):
        return f" [sl-violations: {header[:80]}]"
    return f" [sl-violations: {'; '.join(messages)[:100]}]"


def probe(get_url: str, post_url: str, key: str) -> dict[str, str]:
    """Four requests that tell what a server validates: `status first-bytes-of-body` for each."""
    auth = {"Authorization": f"Bearer {key}"}
    missing = {k: v for k, v in NEW_CUSTOMER.items() if k != "last_name"}
    asks: list[tuple[str, str, str, dict[str, str], Any]] = [
        (PROBES[0], "POST", post_url, auth, missing),
        (PROBES[1], "POST", post_url, auth, {**NEW_CUSTOMER, "first_name": 5}),
        (PROBES[2], "GET", get_url, {}, None),
        (PROBES[3], "GET", get_url, {"Authorization": "Bearer not-the-key-0000"}, None),
    ]
    found: dict[str, str] = {}
    for name, method, url, headers, body in asks:
        try:
            answer = requests.request(method, url, headers=headers, json=body, timeout=10)
            text = " ".join(answer.content[:400].decode(errors="replace").split())[:80]
            found[name] = f"{answer.status_code} {text}" + _violations(answer.headers.get("sl-violations"))
        except requests.RequestException as exc:
            found[name] = f"error {type(exc).__name__}"
    return found


# -- one server -------------------------------------------------------------------------------------
@dataclass
class Figures:
    results: dict[str, Result]
    startup_s: float
    rss_mb: float
    peak_mb: float
    warm: dict[str, list[float]] = field(default_factory=dict)  # req/s of each 5 s warm-up run
    probes: dict[str, str] = field(default_factory=dict)
    load: str = ""  # load average when the server started


def flat(curve: list[float]) -> bool:
    """Throughput stopped rising: the last PLATEAU_RUNS warm-up runs agree within PLATEAU_SPREAD
    (max/min) and are at the best level seen (a dip caused by other load is no plateau)."""
    last = curve[-PLATEAU_RUNS:]
    return (len(last) == PLATEAU_RUNS and min(last) > 0 and max(last) <= (1 + PLATEAU_SPREAD) * min(last)
            and max(curve) <= (1 + PLATEAU_SPREAD) * min(last))


def warm_up(name: str, op: str, url: str, headers: dict[str, str], extra: dict[str, Any],
            args: argparse.Namespace) -> list[float]:
    """5 s wrk runs until the last three agree within 3 %, after the server's minimum, up to the cap."""
    cap = args.warm_cap_jvm if name in JVM else args.warm_cap
    minimum = min(WARM_MIN.get(name, WARM_MIN_DEFAULT), cap)
    curve: list[float] = []
    while len(curve) * WARM_STEP < cap:
        curve.append(wrk(url, connections=args.connections, seconds=WARM_STEP, headers=headers, **extra).rps)
        if len(curve) * WARM_STEP >= minimum and flat(curve):
            break
    state = "plateau" if flat(curve) else "cap reached, no plateau"
    print(f"  warm-up {name} {op} ({state} after {len(curve) * WARM_STEP} s): "
          + " ".join(f"{rps:.0f}" for rps in curve), flush=True)
    return curve


def drive(name: str, get_url: str, post_url: str, auth: dict[str, str],
          args: argparse.Namespace) -> tuple[dict[str, Result], dict[str, list[float]]]:
    post_headers = {**auth, "Content-Type": "application/json"}
    found: dict[str, Result] = {}
    curves: dict[str, list[float]] = {}
    plan: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", get_url, {}),
        ("POST", post_url, {"method": "POST", "body": NEW_CUSTOMER}),
    ]
    for op, url, extra in plan:
        headers = post_headers if op == "POST" else auth
        curves[op] = warm_up(name, op, url, headers, extra, args) if args.warm_cap > 0 else []
        found[op] = wrk(url, connections=args.connections, seconds=args.seconds, headers=headers, **extra)
    return found, curves


def measure(name: str, running: Running, get_url: str, post_url: str, key: str,
            args: argparse.Namespace) -> Figures:
    began_load = load_average()
    try:
        probes = probe(get_url, post_url, key)
        results, curves = drive(name, get_url, post_url, {"Authorization": f"Bearer {key}"}, args)
        rss, peak = memory_mb(running.proc.pid)
    finally:
        stop(running)
    return Figures(results, running.startup_s, rss, peak, curves, probes, began_load)


def customtrades_key() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "mock_server", "credentials"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    key: str = json.loads(out)["customtrades"]["api_key"]
    return key


@dataclass
class Fixture:
    """The bytes every server answers (the mock's own) and the customer the GET reads."""

    key: str
    uuid: str
    get_bytes: bytes
    post_bytes: bytes


def bench_mock(server: list[str], key: str, args: argparse.Namespace,
               fixture_only: bool = False) -> tuple[Figures | None, Fixture]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}/customtrades"
    auth = {"Authorization": f"Bearer {key}"}
    cmd = [*server, sys.executable, "-m", "mock_server", "serve", "--port", str(port), "--api", "customtrades",
           "--customtrades-quota", "0", "--log-level", "error", *event_loop(args.loop)[1]]
    # the mock starts empty: its start-up probe is the authenticated list GET (same pipeline)
    running = start(cmd, ok_get(f"{base}/v1/customers", auth))
    try:
        created = requests.post(f"{base}/v1/customers", json=NEW_CUSTOMER, headers=auth, timeout=10)
        created.raise_for_status()
        uuid = created.json()["data"]["uuid"]
        got = requests.get(f"{base}/v1/customers/{uuid}", headers=auth, timeout=10)
        got.raise_for_status()
    except BaseException:
        stop(running)
        raise
    fixture = Fixture(key, uuid, got.content, created.content)
    if fixture_only:
        stop(running)
        return None, fixture
    get_url, post_url = f"{base}/v1/customers/{uuid}", f"{base}/v1/customers"
    figures = measure("mock", running, get_url, post_url, key, args)
    return figures, fixture


def bench_bare(server: list[str], fixture: Fixture, args: argparse.Namespace) -> Figures:
    with tempfile.NamedTemporaryFile(delete=False) as g, tempfile.NamedTemporaryFile(delete=False) as p:
        g.write(fixture.get_bytes)
        p.write(fixture.post_bytes)
    try:
        port = _free_port()
        auth = {"Authorization": f"Bearer {fixture.key}"}
        base = f"http://127.0.0.1:{port}"
        cmd = [*server, sys.executable, "-c", BARE, str(port), g.name, p.name, event_loop(args.loop)[0]]
        running = start(cmd, ok_get(f"{base}/customer", auth))
        return measure("bare", running, f"{base}/customer", f"{base}/customers", fixture.key, args)
    finally:
        os.unlink(g.name)
        os.unlink(p.name)


def bench_prism(server: list[str], fixture: Fixture, args: argparse.Namespace) -> Figures:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {fixture.key}"}
    cmd = [*server, PRISM, "mock", os.path.join(ROOT, "openapi", "customtrades.yaml"), "-h", "127.0.0.1",
           "-p", str(port), "-v", "error"]
    running = start(cmd, ok_get(f"{base}/v1/customers/{fixture.uuid}", auth))
    return measure("prism", running, f"{base}/v1/customers/{fixture.uuid}", f"{base}/v1/customers",
                   fixture.key, args)


def _plain_schema(node: Any) -> Any:
    """A JSON Schema without the spec's annotations (x-*, descriptions, examples)."""
    if isinstance(node, dict):
        drop = {"description", "examples", "example"}
        return {k: _plain_schema(v) for k, v in node.items() if not k.startswith("x-") and k not in drop}
    if isinstance(node, list):
        return [_plain_schema(v) for v in node]
    return node


def wiremock_flags(name: str, connections: int) -> list[str]:
    """WireMock's flags for a load test; `wiremock` keeps a journal bounded like ours."""
    journal = ["--no-request-journal"] if name == "wiremock-nojournal" else ["--max-request-journal-entries", "10000"]
    return [*journal, "--disable-request-logging", "--async-response-enabled", "true",
            "--container-threads", str(connections + 8), "--jetty-acceptor-threads", "1"]


def bench_wiremock(name: str, server: list[str], fixture: Fixture, args: argparse.Namespace) -> Figures:
    from mock_server.schema import dereference
    from mock_server.spec import load_document

    document = load_document("customtrades")
    body = dereference(document["paths"]["/v1/customers"]["post"]["requestBody"], document)
    schema = _plain_schema(body["content"]["application/json"]["schema"])
    bearer = {"Authorization": {"equalTo": f"Bearer {fixture.key}"}}
    json_headers = {"Content-Type": "application/json"}
    uuid = fixture.uuid
    stubs = {
        "mappings": [
            {
                "request": {"method": "GET", "url": f"/v1/customers/{uuid}", "headers": bearer},
                "response": {"status": 200, "body": fixture.get_bytes.decode(), "headers": json_headers},
            },
            {
                "request": {
                    "method": "POST",
                    "url": "/v1/customers",
                    "headers": {**bearer, "Content-Type": {"contains": "application/json"}},
                    "bodyPatterns": [{"matchesJsonSchema": json.dumps(schema), "schemaVersion": "V202012"}],
                },
                "response": {"status": 201, "body": fixture.post_bytes.decode(), "headers": json_headers},
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
        auth = {"Authorization": f"Bearer {fixture.key}"}
        cmd = [*server, "java", "-jar", str(wiremock_jar()), "--port", str(port), "--bind-address", "127.0.0.1",
               "--root-dir", root, "--disable-banner", *wiremock_flags(name, args.connections)]
        running = start(cmd, ok_get(f"{base}/v1/customers/{uuid}", auth))
        # the POST stub must accept our body and refuse a schema-violating one, like the others
        good = requests.post(f"{base}/v1/customers", json=NEW_CUSTOMER, headers=auth, timeout=10).status_code
        bad = requests.post(f"{base}/v1/customers", json={"first_name": 5}, headers=auth, timeout=10).status_code
        if good != 201 or bad < 400:
            stop(running)
            sys.exit(f"WireMock stubs misbehave: valid POST -> {good}, invalid POST -> {bad}")
        return measure(name, running, f"{base}/v1/customers/{uuid}", f"{base}/v1/customers", fixture.key, args)


def one_round(servers: list[str], args: argparse.Namespace) -> dict[str, Figures]:
    server, _ = cores()
    key = customtrades_key()
    figures: dict[str, Figures] = {}
    if "mock" in servers:
        print(f" mock: load average {load_average()}", flush=True)
    measured, fixture = bench_mock(server, key, args, fixture_only="mock" not in servers)
    if measured is not None:
        figures["mock"] = measured
    for name in servers:
        if name == "mock":
            continue
        print(f" {name}: load average {load_average()}", flush=True)
        if name == "bare":
            figures[name] = bench_bare(server, fixture, args)
        elif name == "prism":
            figures[name] = bench_prism(server, fixture, args)
        elif name.startswith("wiremock"):
            figures[name] = bench_wiremock(name, server, fixture, args)
    return {name: figures[name] for name in servers}


# -- report -----------------------------------------------------------------------------------------
def table(figures: dict[str, Figures]) -> None:
    print(f"{'server':<19} {'op':<5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
          f"{'start s':>8} {'RSS MiB':>8} {'peak MiB':>9} {'warm s':>7}")
    for name, f in figures.items():
        for op in OPS:
            r = f.results[op]
            warm = len(f.warm.get(op, [])) * WARM_STEP
            print(f"{name:<19} {op:<5} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.non_2xx:>8} "
                  f"{f.startup_s:>8.3f} {f.rss_mb:>8.1f} {f.peak_mb:>9.1f} {warm:>7}")


@dataclass
class Spread:
    median: float
    low: float
    high: float

    def text(self, digits: int = 0) -> str:
        if len({round(self.low, digits), round(self.high, digits)}) == 1:
            return f"{self.median:,.{digits}f}"
        return f"{self.median:,.{digits}f} ({self.low:,.{digits}f}-{self.high:,.{digits}f})"


def spread(values: list[float]) -> Spread:
    return Spread(statistics.median(values), min(values), max(values))


def collect(rounds: list[dict[str, Figures]]) -> dict[str, list[Figures]]:
    """Every round's figures of each server, in SERVERS order."""
    found: dict[str, list[Figures]] = {}
    for name in SERVERS:
        runs = [r[name] for r in rounds if name in r]
        if runs:
            found[name] = runs
    return found


def summary(rounds: list[dict[str, Figures]], meta: dict[str, Any]) -> bool:
    """The Markdown block for docs/performance.md, then the targets; True when all checked are met."""
    by_server = collect(rounds)
    med: dict[str, dict[str, Spread]] = {}
    print("\n---- summary (Markdown) ----")
    print(f"Conditions: {meta.get('when', '?')}; {meta.get('connections')} connections, wrk 1 thread on core 1, "
          f"each server alone on core 0; warm-up 5 s runs to a plateau (3 within 3 %, min 30 s JVM / 15 s "
          f"others, cap {meta.get('warm_cap_jvm')} s JVM / {meta.get('warm_cap')} s others), "
          f"then {meta.get('seconds')} s measured per operation. "
          f"Load averages at server starts: {', '.join(meta.get('loads', [])) or '?'}.")
    print("Versions: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()))
    print()
    print("| server | rounds | GET req/s | GET p50 / p99 ms | POST req/s | POST p50 / p99 ms | "
          "start-up s | RSS MiB | warm-up s GET / POST |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, runs in by_server.items():
        cells: dict[str, Spread] = {}
        row = [f"{name}", str(len(runs))]
        for op in OPS:
            cells[f"{op} rps"] = spread([f.results[op].rps for f in runs])
            cells[f"{op} p50"] = spread([f.results[op].p50_ms for f in runs])
            cells[f"{op} p99"] = spread([f.results[op].p99_ms for f in runs])
            row += [cells[f"{op} rps"].text(), f"{cells[f'{op} p50'].text(2)} / {cells[f'{op} p99'].text(2)}"]
        cells["start"] = spread([f.startup_s for f in runs])
        cells["rss"] = spread([f.rss_mb for f in runs])
        warm = " / ".join(
            "-".join(str(v) for v in sorted({min(w), max(w)}))
            for w in ([len(f.warm.get(op, [])) * WARM_STEP for f in runs] for op in OPS)
        )
        row += [cells["start"].text(2), cells["rss"].text(0), warm]
        med[name] = cells
        print("| " + " | ".join(row) + " |")
    print("\nMedian of the rounds; (min-max) where the rounds differ.")

    print("\n| what each server answers | " + " | ".join(by_server) + " |")
    print("|---|" + "---|" * len(by_server))
    for name in PROBES:
        answers = []
        for runs in by_server.values():
            by_status = {f.probes.get(name, "?").split(" ", 1)[0]: f.probes.get(name, "?") for f in runs}
            seen = [by_status[status] for status in sorted(by_status)]  # the last round's text per status
            answers.append(" / ".join(f"`{a}`" for a in seen).replace("|", "\\|"))
        print(f"| {name} | " + " | ".join(answers) + " |")

    if "mock" in med:
        print()
        for op in OPS:
            parts = [f"mock/{peer} {med['mock'][f'{op} rps'].median / med[peer][f'{op} rps'].median:.2f}x"
                     for peer in by_server if peer != "mock"]
            print(f"Ratios {op} (medians): " + ", ".join(parts))
    print("---- end of summary ----\n")
    return verdict(med, by_server)


def verdict(med: dict[str, dict[str, Spread]], by_server: dict[str, list[Figures]]) -> bool:
    """Issue 20's targets (and issue 11's on Prism) that the servers measured allow checking."""
    checks: list[tuple[str, bool]] = []
    if "mock" in med:
        mock = med["mock"]
        if "bare" in med:
            for op, target in (("GET", 0.6), ("POST", 0.45)):
                ratio = mock[f"{op} rps"].median / med["bare"][f"{op} rps"].median
                checks.append((f"{op} mock >= {target}x bare ({ratio:.2f}x)", ratio >= target))
        for op in OPS:
            p99 = mock[f"{op} p99"].median
            checks.append((f"{op} mock p99 < 5 ms ({p99:.2f} ms)", p99 < 5))
        for peer in ("wiremock", "wiremock-nojournal"):
            if peer in med:
                ratio = mock["GET rps"].median / med[peer]["GET rps"].median
                checks.append((f"GET mock >= warmed {peer} ({ratio:.2f}x)", ratio >= 1))
                for op in OPS:
                    ours, theirs = mock[f"{op} p99"].median, med[peer][f"{op} p99"].median
                    checks.append((f"{op} mock p99 {ours:.2f} < {peer} {theirs:.2f} ms", ours < theirs))
        if "prism" in med:
            for op in OPS:
                ratio = mock[f"{op} rps"].median / med["prism"][f"{op} rps"].median
                checks.append((f"{op} mock >= 3x Prism (issue 11; {ratio:.2f}x)", ratio >= 3))
        checks.append((f"mock start-up < 1 s ({mock['start'].median:.3f} s)", mock["start"].median < 1.0))
    errors = {f"{name} {op}": max(f.results[op].non_2xx for f in runs)
              for name, runs in by_server.items() for op in OPS}
    checks.append(("no non-2xx answers in any measured run" + "".join(f"; {k}: {v}" for k, v in errors.items() if v),
                   not any(errors.values())))
    for text, passed in checks:
        print(f"  [{'met' if passed else 'NOT met'}] {text}")
    return all(passed for _, passed in checks)


# -- saving and merging -----------------------------------------------------------------------------
def dump(path: str, rounds: list[dict[str, Figures]], meta: dict[str, Any]) -> None:
    with open(path, "w") as handle:
        json.dump({"meta": meta, "rounds": [{n: asdict(f) for n, f in r.items()} for r in rounds]}, handle, indent=1)


def load_saved(paths: list[str]) -> tuple[list[dict[str, Figures]], dict[str, Any]]:
    rounds: list[dict[str, Figures]] = []
    meta: dict[str, Any] = {"loads": [], "versions": {}, "when": []}
    for path in paths:
        with open(path) as handle:
            data = json.load(handle)
        for saved in data["rounds"]:
            found = {}
            for name, f in saved.items():
                f["results"] = {op: Result(**r) for op, r in f["results"].items()}
                found[name] = Figures(**f)
            rounds.append(found)
        m = data["meta"]
        meta["loads"] += m.get("loads", [])
        meta["versions"].update(m.get("versions", {}))
        meta["when"].append(m.get("when", "?"))
        for k in ("connections", "seconds", "warm_cap", "warm_cap_jvm"):
            meta.setdefault(k, m.get(k))
    first, last = min(meta["when"]), max(meta["when"])
    meta["when"] = (first if first == last else f"{first} to {last}") + f" ({len(paths)} runs merged)"
    return rounds, meta


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="measured wrk run per operation (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--warm-cap", type=int, default=60,
                        help="most seconds of warm-up per operation for bare, mock and Prism (default 60; "
                        "0 = no warm-up for any server)")
    parser.add_argument("--warm-cap-jvm", type=int, default=120,
                        help="most seconds of warm-up per operation for WireMock (default 120)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each restarting every server (default 2)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"comma-separated subset of {','.join(SERVERS)} (default: all)")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="event loop of the mock and of bare aiohttp, the same for both (default auto: "
                        "uvloop when importable)")
    parser.add_argument("--json", metavar="PATH", help="also save the figures (for --merge)")
    parser.add_argument("--merge", nargs="+", metavar="PATH", help="print one summary from saved runs; runs nothing")
    args = parser.parse_args()
    if args.merge:
        rounds, meta = load_saved(args.merge)
        for number, figures in enumerate(rounds, 1):
            print(f"\nsaved round {number}")
            table(figures)
        ok = summary(rounds, meta)
        print("PASS: every target checked is met" if ok else "FAIL: some targets not met (see above)")
        return 0 if ok else 1
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = sorted(set(servers) - set(SERVERS))
    if unknown or not servers:
        parser.error(f"unknown servers {unknown}; choose from {', '.join(SERVERS)}")
    servers = [s for s in SERVERS if s in servers]
    setup_peers(servers)
    server, load_core = cores()
    ceiling = args.rounds * sum(
        2 * ((args.warm_cap_jvm if name in JVM else args.warm_cap) + args.seconds + 2) + 15 for name in servers
    )
    print(f"pinning: servers {' '.join(server) or '(none: taskset missing)'}, wrk {' '.join(load_core) or '(none)'}; "
          f"{args.connections} connections; servers {', '.join(servers)}; {args.rounds} round(s); warm-up to a "
          f"plateau (cap {args.warm_cap} s, WireMock {args.warm_cap_jvm} s) then {args.seconds} s per operation; "
          f"at most ~{ceiling // 60 + 1} min")
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "connections": args.connections,
        "seconds": args.seconds,
        "warm_cap": args.warm_cap,
        "warm_cap_jvm": args.warm_cap_jvm,
        "versions": {"event loop (mock, bare)": event_loop(args.loop)[0], **versions(servers)},
        "loads": [],
    }
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()), flush=True)
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"\nround {number}", flush=True)
        figures = one_round(servers, args)
        rounds.append(figures)
        meta["loads"] += [f"{name} {f.load}" for name, f in figures.items()]
        table(figures)
        if args.json:
            dump(args.json, rounds, meta)
    ok = summary(rounds, meta)
    print("PASS: every target checked is met" if ok else "FAIL: some targets not met (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
