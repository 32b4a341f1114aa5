"""The console with a full journal (issue 19): 10,000 entries, measured in the real browser.

    python benchmarks/console_page.py [--entries 10000] [--loads 3] [--filters 5]

Starts the mock (`serve --api customtrades`, a journal of --entries), fills its journal with real
traffic (wrk, a mix of 200, 404 and 401 answers), then opens `/__admin/console` in Debian's
headless chromium (Playwright, `/usr/bin/chromium`) --loads times and measures, in the page
(`performance.now()`, from navigation start):

- first contentful paint of the page;
- time until the feed shows the whole backlog (the count says N requests, the newest 100 rows
  are in the table; 500 at most, with "show more"): the stream's `since=0` backlog arrives in
  batches of 1,000 and the feed is rendered at most 5 times a second;
- time to filter: from setting a filter (status 5xx... the search box) to the next frame after the
  feed was re-rendered, --filters times each, over the whole in-memory list;
- the page's JS heap once the backlog is in.

Prints medians (and min-max). Needs wrk and chromium (Debian packages).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile

import requests
from _common import cores, process

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.browser import CHROMIUM, CHROMIUM_ARGS

# wrk script: real requests whose answers differ (200 a customer, 404 an unknown one, 401 no key)
MIX = r"""
local paths = {}
local key = os.getenv("BENCH_KEY")
local uuid = os.getenv("BENCH_UUID")
request = function()
  local n = math.random(10)
  if n <= 6 then
    return wrk.format("GET", "/customtrades/v1/customers/" .. uuid, {["Authorization"] = "Bearer " .. key})
  elseif n <= 9 then
    local unknown = "/customtrades/v1/customers/00000000-0000-4000-8000-00000000000" .. n
    return wrk.format("GET", unknown, {["Authorization"] = "Bearer " .. key})
  end
  return wrk.format("GET", "/customtrades/v1/customers")
end
"""

FILTERS = [  # (label, element id, value, event)
    ("status 5xx (none match)", "f-status", "5", "change"),
    ("status 4xx", "f-status", "4", "change"),
    ("search 'customers/0000'", "f-text", "customers/0000", "input"),
    ("operation getCustomer", "f-op", "getCustomer", "change"),
    ("clear all filters", None, "", "input"),
    ("show more x4: 100 -> 500 rows", "feed-more", "", "click"),
]

APPLY = """async ([id, value, kind]) => {
    const reset = () => {
        for (const f of ['f-api', 'f-op', 'f-status', 'f-text']) document.getElementById(f).value = '';
    };
    const started = performance.now();
    if (id === null) { reset(); document.getElementById('f-text').dispatchEvent(new Event('input')); }
    else if (kind === 'click') { for (let i = 0; i < 4; i++) document.getElementById(id).click(); }
    else { const el = document.getElementById(id); el.value = value; el.dispatchEvent(new Event(kind)); }
    const rendered = performance.now();
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    const painted = performance.now();
    const rows = document.querySelectorAll('#feed tr').length;
    const count = document.getElementById('feed-count').textContent;
    reset(); document.getElementById('f-text').dispatchEvent(new Event('input'));
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    return [rendered - started, painted - started, rows, count];
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(api_root: str, admin: str, entries: int) -> int:
    key = requests.get(admin + "/credentials", timeout=10).json()["customtrades"]["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    created = requests.post(
        api_root + "/customtrades/v1/customers",
        json={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        headers=auth,
        timeout=10,
    )
    created.raise_for_status()
    uuid = created.json()["data"]["uuid"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(MIX)
    env = {**os.environ, "BENCH_KEY": key, "BENCH_UUID": uuid}
    try:
        for _ in range(20):
            count = len(requests.get(admin + "/requests", params={"since": "0"}, timeout=60).json())
            if count >= entries:
                return count
            subprocess.run(
                [*cores()[1], "wrk", "-t1", "-c16", "-d2s", "-s", script.name, api_root],
                env=env,
                capture_output=True,
                check=True,
                timeout=60,
            )
    finally:
        os.unlink(script.name)
    return len(requests.get(admin + "/requests", timeout=60).json())


def measure(browser: object, console_url: str, entries: int, filter_rounds: int) -> dict[str, object]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(console_url)
        shown = page.wait_for_function(
            """(n) => { const c = document.getElementById('feed-count').textContent;
                        const rows = document.querySelectorAll('#feed tr').length;
                        const done = c.startsWith(n + ' requests') && rows === Math.min(n, 100);
                        return done ? performance.now() : false }""",
            arg=entries,
            polling="raf",
            timeout=60_000,
        ).json_value()
        fcp = page.evaluate(
            "() => (performance.getEntriesByName('first-contentful-paint')[0] || {startTime: NaN}).startTime"
        )
        heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : NaN")
        filters: dict[str, list[float]] = {}
        rows: dict[str, str] = {}
        for _ in range(filter_rounds):
            for label, element, value, kind in FILTERS:
                _, painted, _, count = page.evaluate(APPLY, [element, value, kind])
                filters.setdefault(label, []).append(painted)
                rows[label] = count
        return {"fcp": fcp, "backlog": shown, "heap": heap, "filters": filters, "rows": rows}
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--filters", type=int, default=5)
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
        "--journal-max-entries",
        str(args.entries),
        "--log-level",
        "error",
    ]
    with process(cmd, read_urls=True) as urls:
        admin = urls["admin"]
        root = admin.rsplit("/__admin", 1)[0]
        count = fill(root, admin, args.entries)
        print(f"journal: {count} entries (real traffic: 200, 404, 401)")
        results = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for _ in range(args.loads):
                    results.append(measure(browser, admin + "/console", count, args.filters))
            finally:
                browser.close()

    def line(name: str, values: list[float], unit: str = "ms") -> None:
        print(f"{name:<38} {statistics.median(values):>8.1f} {unit}   (min {min(values):.1f}, max {max(values):.1f})")

    print(f"{args.loads} page loads, {count} entries; medians:")
    line("first contentful paint", [float(r["fcp"]) for r in results])  # type: ignore[arg-type]
    line("whole backlog in the feed (100 rows)", [float(r["backlog"]) for r in results])  # type: ignore[arg-type]
    line("JS heap with the backlog", [float(r["heap"]) / 2**20 for r in results], "MiB")  # type: ignore[arg-type]
    for label, *_ in FILTERS:
        values = [v for r in results for v in r["filters"][label]]  # type: ignore[index]
        line(f"filter: {label}", values)
        print(f"{'':<38} -> {results[-1]['rows'][label]}")  # type: ignore[index]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
