"""What an open console costs the mock (issue 19): GET throughput with no console, with one console
open in a real browser and streaming, and with a bare event-stream reader, in one run.

    python benchmarks/console_cost.py [--seconds 8] [--rounds 2] [--connections 32]

Starts the mock as `benchmarks/throughput.py` does (`serve --api customtrades --customtrades-quota 0`,
pinned to core 0) and drives the same authenticated GET of a Custom Trades customer with wrk pinned
to core 1, --rounds times in each of three conditions, interleaved (none, browser, stream, none, ...):

- none: no console open;
- browser: `/__admin/console` open in Debian's headless chromium (Playwright, pinned to core 1 with
  wrk, so its rendering does not take the mock's core), following the live feed;
- stream: one `GET /__admin/events` read and discarded by this script (the server's cost alone).

Every request wrk sends is journaled and streamed to the console (about a thousand summaries per
250 ms poll at this rate). Prints requests/s, p99 and the mock's CPU time per request (from
/proc: a cost that does not depend on what else the machine runs), the medians per condition and
the ratios to none. Target: browser >= 0.9x of none.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import stat
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

import requests
from _common import Result, cores, cpu_seconds, process, wrk

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.browser import CHROMIUM, CHROMIUM_ARGS

CONDITIONS = ("none", "browser", "stream")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StreamReader:
    """One `GET /__admin/events` read in a thread until stopped; counts the bytes it got."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.received = 0
        self.stopping = threading.Event()
        self.response: requests.Response | None = None
        self.thread = threading.Thread(target=self._run, name="events-reader", daemon=True)

    def __enter__(self) -> StreamReader:
        self.thread.start()
        deadline = time.monotonic() + 10
        while self.received == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def _run(self) -> None:
        try:
            with requests.get(self.admin + "/events", stream=True, timeout=30) as response:
                self.response = response
                for chunk in response.iter_content(chunk_size=65536):
                    self.received += len(chunk)
                    if self.stopping.is_set():
                        return
        except (requests.RequestException, AttributeError, ValueError):
            if not self.stopping.is_set():  # closed under the reader on purpose: not an error
                raise

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        if self.response is not None:
            self.response.close()
        self.thread.join(timeout=10)


class BrowserConsole:
    """The console page open in chromium, following the live feed."""

    def __init__(self, browser: Any, admin: str) -> None:
        self.browser = browser
        self.admin = admin
        self.context: Any = None
        self.page: Any = None

    def __enter__(self) -> BrowserConsole:
        self.context = self.browser.new_context(viewport={"width": 1440, "height": 900})
        self.page = self.context.new_page()
        self.page.goto(self.admin + "/console")
        self.page.wait_for_selector("[data-testid=stream-status][data-state=live]", timeout=30_000)
        time.sleep(1.0)  # the backlog (since=0) is in
        return self

    def rows(self) -> str:
        return str(self.page.inner_text("[data-testid=feed-count]"))

    def __exit__(self, *exc: object) -> None:
        self.context.close()


def pinned_chromium(folder: str) -> str:
    """A wrapper that runs chromium on the load generator's core (none where taskset is absent)."""
    load = cores()[1]
    if not load:
        return CHROMIUM
    wrapper = os.path.join(folder, "chromium")
    with open(wrapper, "w") as handle:
        handle.write(f'#!/bin/sh\nexec {" ".join(load)} {CHROMIUM} "$@"\n')
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    return wrapper


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk") or not os.path.exists(CHROMIUM):
        sys.exit("needs wrk and /usr/bin/chromium (Debian packages `wrk`, `chromium`)")
    from playwright.sync_api import sync_playwright

    server, _ = cores()
    cmd = [
        *server,
        sys.executable,
        "-m",
        "mock_server",
        "serve",
        "--port",
        str(_free_port()),
        "--api",
        "customtrades",
        "--customtrades-quota",
        "0",
        "--log-level",
        "error",
    ]
    results: dict[str, list[tuple[Result, float]]] = {c: [] for c in CONDITIONS}
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as folder, process(cmd, read_urls=True) as urls, sync_playwright() as pw:
        api, admin = urls["customtrades"], urls["admin"]
        key = requests.get(admin + "/credentials", timeout=10).json()["customtrades"]["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        created = requests.post(
            api + "/v1/customers", json={"first_name": "Ada", "last_name": "Lovelace"}, headers=auth, timeout=10
        )
        created.raise_for_status()
        url = f"{api}/v1/customers/{created.json()['data']['uuid']}"
        browser = pw.chromium.launch(executable_path=pinned_chromium(folder), args=CHROMIUM_ARGS)
        try:
            wrk(url, connections=args.connections, seconds=2, headers=auth)  # warm-up
            for round_index in range(args.rounds):
                order = CONDITIONS if round_index % 2 == 0 else tuple(reversed(CONDITIONS))
                for condition in order:
                    console: Any = None
                    if condition == "browser":
                        console = BrowserConsole(browser, admin).__enter__()
                    elif condition == "stream":
                        console = StreamReader(admin).__enter__()
                    try:
                        before = cpu_seconds(urls.pid)
                        result = wrk(url, connections=args.connections, seconds=args.seconds, headers=auth)
                        used = cpu_seconds(urls.pid) - before
                        if condition == "browser":
                            time.sleep(0.5)
                            notes.append(f"round {round_index + 1}: the page shows '{console.rows()}'")
                        elif condition == "stream":
                            notes.append(
                                f"round {round_index + 1}: the stream reader got {console.received / 1e6:.1f} MB"
                            )
                    finally:
                        if console is not None:
                            console.__exit__(None, None, None)
                    results[condition].append((result, used / max(result.requests, 1) * 1e6))
                    print(
                        f"round {round_index + 1} {condition:<8} {result.rps:>8.0f} req/s  p99 {result.p99_ms:6.2f} ms"
                        f"  mock CPU {results[condition][-1][1]:6.1f} us/request  non-2xx {result.non_2xx}",
                        flush=True,
                    )
        finally:
            browser.close()

    for note in notes:
        print(note)
    medians = {c: statistics.median(r.rps for r, _ in results[c]) for c in CONDITIONS}
    cpu = {c: statistics.median(u for _, u in results[c]) for c in CONDITIONS}
    print(f"{'condition':<10} {'req/s':>9} {'p99 ms':>8} {'CPU us/req':>11} {'ratio':>6}")
    for c in CONDITIONS:
        p99 = statistics.median(r.p99_ms for r, _ in results[c])
        print(f"{c:<10} {medians[c]:>9.0f} {p99:>8.2f} {cpu[c]:>11.1f} {medians[c] / medians['none']:>6.2f}")
    ratio = medians["browser"] / medians["none"]
    print(
        f"one console open in chromium: {ratio:.2f}x of none (target >= 0.90); "
        f"bare stream reader: {medians['stream'] / medians['none']:.2f}x"
    )
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
