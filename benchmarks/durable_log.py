"""`--state-file`'s durable log: a create's cost at 1,000 and 1,000,000 stored customers, health
latency while 8 clients write, and kill -9 during 16 concurrent writers (issue 18, item 3).

    python benchmarks/durable_log.py                        # 1,000 and 1,000,000 customers
    python benchmarks/durable_log.py --large 100000 --creates 200 --rounds 1

Each mock is a separate process on loopback (`python -m mock_server serve --port 0 --api
customtrades --customtrades-quota 0 --seed-customers N --state-file DIR`). A create is one
keep-alive `POST /customtrades/v1/customers`, sent one after another from this process, each
acknowledged only after its log entry is fsynced (fdatasync). The disk's own flush latency is
measured in the same directory in the same run (one 300-byte append + fdatasync), since it is the
floor of a durable write, and so is the same create on a mock without `--state-file`.
Health: one keep-alive `GET /__admin/health` every 5 ms while 8 writer
processes create customers as fast as they can. Kill -9: 16 writer threads until SIGKILL, then a
restart must hold every acknowledged customer; three rounds on one directory. Also printed: the
shutdown (last image written) and restart (image loaded) times at the large size. Prints each
target as PASS/FAIL (exit status 1 if one fails). Not run by the test suite.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"create_p50_ms": 2.0, "ratio": 1.5, "health_p99_ms": 10.0}


class Mock:
    """One mock process; `urls` as its CLI prints them."""

    def __init__(self, state: Path | None, customers: int, timeout: float = 600.0) -> None:
        command = [
            sys.executable, "-m", "mock_server", "serve", "--port", "0", "--api", "customtrades",
            "--customtrades-quota", "0", "--seed-customers", str(customers),
            *(["--state-file", str(state)] if state is not None else []),
        ]
        started = time.perf_counter()
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives as long as the mock; its log
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            for line in self.process.stdout or ():
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        self.urls: dict[str, str] = {}
        while "admin" not in self.urls:
            try:
                line = lines.get(timeout=max(0.001, timeout - (time.perf_counter() - started)))
            except queue.Empty:
                self.process.kill()
                raise SystemExit(f"the mock was not ready within {timeout:.0f} s") from None
            label, _, url = line.strip().rpartition(" ")
            self.urls[label.strip()] = url
        self.ready_s = time.perf_counter() - started
        self.stop_s = 0.0
        with Client(self.urls["admin"]) as admin:
            self.key = admin.request("GET", "/credentials")[1]["customtrades"]["api_key"]

    def rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> float:
        """SIGTERM (the last image is written); seconds until the process is gone."""
        began = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=600)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.perf_counter() - began

    def logged(self, word: str) -> list[str]:
        self.log.seek(0)
        return [line.strip() for line in self.log if word in line]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)


class Client:
    """One keep-alive HTTP connection: `request` returns (status, parsed body, seconds)."""

    def __init__(self, base: str, key: str | None = None) -> None:
        parts = urlsplit(base)
        self.prefix = parts.path.rstrip("/")
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.close()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any, float]:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {**self.headers, **({"Content-Type": "application/json"} if payload else {})}
        began = time.perf_counter()
        self.connection.request(method, self.prefix + path, body=payload, headers=headers)
        response = self.connection.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - began
        return response.status, json.loads(raw) if raw else None, elapsed

    def create(self, tag: str) -> tuple[int, Any, float]:
        return self.request("POST", "/v1/customers", {"first_name": "Dura", "last_name": tag})


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


def disk_flush_ms(directory: Path, count: int = 200) -> float:
    """p50 of one 300-byte append + fdatasync in `directory`: the floor of a durable write."""
    path = directory / "flush-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    flush = getattr(os, "fdatasync", os.fsync)
    took = []
    try:
        for _ in range(count):
            began = time.perf_counter()
            os.write(fd, b"x" * 300)
            flush(fd)
            took.append(time.perf_counter() - began)
    finally:
        os.close(fd)
        path.unlink()
    return quantile(took, 0.5)


def interleaved_creates(mocks: dict[str, Mock], count: int, warmup: int = 50) -> dict[str, list[float]]:
    """`count` creates on each mock, taken in turn (a, b, c, a, b, c...), so that the machine's load
    weighs on every mock alike and their ratio means something on a busy host."""
    clients = {name: Client(mock.urls["customtrades"], mock.key) for name, mock in mocks.items()}
    took: dict[str, list[float]] = {name: [] for name in mocks}
    try:
        for i in range(warmup + count):
            for name, client in clients.items():
                status, body, seconds = client.create(f"c{i}")
                if status != 200:
                    raise SystemExit(f"create on {name} answered {status}: {body}")
                if i >= warmup:
                    took[name].append(seconds)
    finally:
        for client in clients.values():
            client.connection.close()
    return took


def _writer(url: str, key: str, stop_at: float, counter: Any) -> None:
    with Client(url, key) as client:
        done = 0
        while time.time() < stop_at:
            if client.create(f"w{done}")[0] == 200:
                done += 1
    with counter.get_lock():
        counter.value += done


def health_under_writers(mock: Mock, writers: int, seconds: float) -> tuple[list[float], int]:
    """Health latencies sampled every 5 ms while `writers` processes create; (latencies, creates)."""
    stop_at = time.time() + seconds + 1.0
    counter = multiprocessing.Value("i", 0)
    procs = [
        multiprocessing.Process(target=_writer, args=(mock.urls["customtrades"], mock.key, stop_at, counter))
        for _ in range(writers)
    ]
    for proc in procs:
        proc.start()
    time.sleep(1.0)  # the writers are running
    took = []
    with Client(mock.urls["admin"]) as admin:
        while time.time() < stop_at - 0.2:
            status, _, elapsed = admin.request("GET", "/health")
            if status == 200:
                took.append(elapsed)
            time.sleep(0.005)
    for proc in procs:
        proc.join(timeout=60)
    return took, int(counter.value)


def kill_round(state: Path, writers: int, seconds: float) -> tuple[int, int]:
    """(acknowledged, missing after the restart) for one kill -9 round."""
    mock = Mock(state, 0)
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        with Client(mock.urls["customtrades"], mock.key) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    status, body, _ = client.create(f"k{n}-{i}")
                except (OSError, http.client.HTTPException):
                    return
                if status == 200:
                    acknowledged.append(body["data"]["uuid"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    mock.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    again = Mock(state, 0)
    try:
        with Client(again.urls["customtrades"], again.key) as client:
            missing = sum(1 for uuid in acknowledged if client.request("GET", f"/v1/customers/{uuid}")[0] != 200)
    finally:
        again.stop()
    return len(acknowledged), missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1_000, help="customers in the small store (default 1,000)")
    parser.add_argument("--large", type=int, default=1_000_000, help="customers in the large store (default 1M)")
    parser.add_argument("--creates", type=int, default=500, help="timed creates per size (default 500)")
    parser.add_argument("--writers", type=int, default=8, help="writer processes during the health probe")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the health probe")
    parser.add_argument("--rounds", type=int, default=3, help="kill -9 rounds (16 writers each)")
    parser.add_argument("--compaction-seconds", type=float, default=45.0,
                        help="health probe at the large size, long enough for a compaction (0: skip)")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min), "
          f"{os.cpu_count()} cores")
    results: dict[str, bool] = {}
    with tempfile.TemporaryDirectory(prefix="durable-log-") as tmp:
        base = Path(tmp)
        small, large = f"{args.small:,}", f"{args.large:,}"
        mocks = {
            "memory": Mock(None, args.small),
            "memory-large": Mock(None, args.large),
            small: Mock(base / "state-small", args.small),
            large: Mock(base / "state-large", args.large),
        }
        floor = disk_flush_ms(base)
        took = interleaved_creates(mocks, args.creates)
        floor = (floor + disk_flush_ms(base)) / 2
        p50 = {name: quantile(values, 0.5) for name, values in took.items()}
        for name, mock in mocks.items():
            label = {"memory": f"at {small} customers WITHOUT --state-file",
                     "memory-large": f"at {large} customers WITHOUT --state-file"}.get(name, f"at {name} customers")
            print(f"create {label}: p50 {p50[name]:.2f} ms, p90 {quantile(took[name], 0.9):.2f} ms, "
                  f"p99 {quantile(took[name], 0.99):.2f} ms (ready in {mock.ready_s:.1f} s, "
                  f"RSS {mock.rss_mib():.0f} MiB)")
        print(f"disk: one 300-byte append + fdatasync p50 {floor:.2f} ms (before and after, same directory)")
        ratio = p50[large] / p50[small]
        print(f"ratio p50 {large} / {small}: {ratio:.2f}; what the log adds to a create's p50: "
              f"{p50[small] - p50['memory']:.2f} ms at {small}, {p50[large] - p50['memory-large']:.2f} ms at {large} "
              f"(the store's own cost at {large}: {p50['memory-large'] - p50['memory']:+.2f} ms, sorted-index inserts)")
        for name in (small, large):
            results[f"create p50 at {name} = {p50[name]:.2f} ms <= {TARGETS['create_p50_ms']:g} ms"] = (
                p50[name] <= TARGETS["create_p50_ms"]
            )
        results[f"ratio {ratio:.2f} <= {TARGETS['ratio']:g}"] = ratio <= TARGETS["ratio"]
        if args.compaction_seconds > 0:  # enough writes to pass the compaction threshold (20,000 entries)
            health, made = health_under_writers(mocks[large], args.writers, args.compaction_seconds)
            folder = base / "state-large" / "default"
            images = sorted(p.name for p in folder.glob("image.*"))
            print(f"health at {large} while {args.writers} clients write {made} creates (compaction: "
                  f"{', '.join(images) or 'none yet'}): p50 {quantile(health, 0.5):.2f} ms, "
                  f"p99 {quantile(health, 0.99):.2f} ms, max {max(health) * 1000:.1f} ms")
            for line in mocks[large].logged("compacted"):
                print("  mock's log: " + line.split(": ", 1)[-1])
        mocks[large].stop_s = mocks[large].stop()
        mocks["memory-large"].stop()
        for name in ("memory", small):
            health, made = health_under_writers(mocks[name], args.writers, args.seconds)
            p99 = quantile(health, 0.99)
            what = "WITHOUT --state-file" if name == "memory" else "with the durable log"
            print(f"health while {args.writers} clients write ({what}): p50 {quantile(health, 0.5):.2f} ms, "
                  f"p99 {p99:.2f} ms over {len(health)} probes; {made / args.seconds:.0f} creates/s")
            if name == small:
                results[f"health p99 {p99:.2f} ms < {TARGETS['health_p99_ms']:g} ms"] = p99 < TARGETS["health_p99_ms"]
            mocks[name].stop()
        again = Mock(base / "state-large", args.large)
        images = (base / "state-large" / "default").glob("image.*")
        print(f"at {large}: clean shutdown (last image written) {mocks[large].stop_s:.1f} s; restart (image "
              f"loaded) {again.ready_s:.1f} s vs first start (seeding) {mocks[large].ready_s:.1f} s; image "
              f"{sum(p.stat().st_size for p in images) / 2**20:.0f} MiB, RSS after {again.rss_mib():.0f} MiB")
        again.stop()
        for round_ in range(1, args.rounds + 1):
            acknowledged, missing = kill_round(base / "kill", 16, 2.0)
            print(f"kill -9 round {round_}: {acknowledged} acknowledged writes by 16 writers, "
                  f"{missing} missing after restart")
            results[f"kill -9 round {round_}: no acknowledged write lost"] = missing == 0 and acknowledged > 0
    for label, ok in results.items():
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
