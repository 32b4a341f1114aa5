"""Helpers shared by the benchmarks: start servers as processes pinned to a core, drive them with
wrk (Debian package `wrk`), parse its figures. Loopback only; every run is bounded in time."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests

HERE = os.path.dirname(os.path.abspath(__file__))


def cores() -> tuple[list[str], list[str]]:
    """(server prefix, load-generator prefix): pinned to different cores where taskset exists."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    return [], []


class Started(dict[str, str]):
    """The URLs a server process printed (name -> URL), and its process id."""

    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): a cost that does not depend on
    what else the machine is running, unlike latency and throughput (nan where /proc is absent)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def process(cmd: list[str], ready_url: str | None = None, read_urls: bool = False) -> Iterator[Started]:
    """Start a server process; yields the URLs it printed when read_urls: `name url` lines, as
    `serve` prints them, or `name url -> upstream` lines, as `proxy` does (the first two words)."""
    errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True)
    urls = Started()
    urls.pid = proc.pid
    try:
        if read_urls:
            assert proc.stdout is not None
            for line in proc.stdout:
                words = line.split()
                if len(words) < 2:
                    continue
                name, url = words[0], words[1]
                urls[name] = url
                if name == "admin":
                    break
            else:
                errors.seek(0)
                sys.exit(f"{' '.join(cmd)} did not start:\n{errors.read()[-3000:]}")
        if ready_url or urls:
            target = ready_url or urls["admin"] + "/health"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if requests.get(target, timeout=1).status_code < 500:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
        yield urls
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        errors.close()


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    requests: int = 0


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str,
    *,
    connections: int,
    seconds: int,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: object | None = None,
    pinned: bool = True,
) -> Result:
    """`pinned`: run wrk on the load generator's core (`cores()`); False leaves it to the scheduler."""
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: `apt-get install -y wrk` (Debian package), then run again")
    lines = [f'wrk.method = "{method}"']
    for name, value in (headers or {}).items():
        lines.append(f'wrk.headers["{name}"] = "{value}"')
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    try:
        load = cores()[1] if pinned else []
        out = subprocess.run(
            [*load, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    done = re.search(r"(\d+) requests in", out)
    return Result(rps, p50, p99, int(bad.group(1)) if bad else 0, int(done.group(1)) if done else 0)
