"""The proxy: traffic through unchanged both ways, findings never block, 502/504 in the vendor's
envelope, and a HAR that survives kill -9."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web

from mock_server.drift.har import HarReader
from mock_server.proxy.testing import ProxyServer
from mock_server.settings import Settings
from mock_server.testing import MockServer

ODD_BODY = (
    b'{ "success" : true,\n "data" : {"uuid":"3f0c1d9e-0000-4000-8000-000000000001", "first_name":"\xc3\xa9"} }  '
)


class Upstream:
    """A raw upstream: echoes what it received, answers odd bytes, or hangs."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            {"method": request.method, "raw_path": request.raw_path, "body": body, "headers": list(request.raw_headers)}
        )
        if request.path.endswith("/slow"):
            await asyncio.sleep(5)
        if request.path.endswith("/gzip"):
            return web.Response(
                body=gzip.compress(ODD_BODY),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip", "X-Vendor": "gz"},
            )
        return web.Response(
            body=ODD_BODY,
            status=200,
            headers={"Content-Type": "application/json; charset=utf-8", "X-Vendor": "yes", "Set-Cookie": "s=1"},
        )

    def start(self) -> Upstream:
        ready: Future[int] = Future()

        async def boot() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self.handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            ready.set_result(int(self._runner.addresses[0][1]))

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=30)
        return self

    def stop(self) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


def test_request_goes_out_unchanged_and_the_answer_comes_back_byte_for_byte(upstream: Upstream, tmp_path: Path) -> None:
    har = tmp_path / "p.har"
    base = f"http://127.0.0.1:{upstream.port}/api"
    with ProxyServer({"customtrades": base}, har_path=str(har)) as proxy:
        body = b'{"first_name":"A",  "last_name":"B"}'
        answer = requests.post(
            f"{proxy.base_url}/customtrades/v1/customers?b=2&a=%20x&a=1",
            data=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer ctc_live_secret",
                "X-Trace": "t1",
                "Connection": "keep-alive, X-Hop",
                "X-Hop": "drop-me",
            },
            timeout=10,
        )
        assert answer.content == ODD_BODY
        assert answer.headers["X-Vendor"] == "yes" and answer.headers["Set-Cookie"] == "s=1"
        assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
        seen = upstream.received[-1]
        assert seen["method"] == "POST" and seen["body"] == body
        assert seen["raw_path"] == "/api/v1/customers?b=2&a=%20x&a=1"
        names = {k.decode().lower(): v.decode() for k, v in seen["headers"]}
        assert names["authorization"] == "Bearer ctc_live_secret" and names["x-trace"] == "t1"
        assert "x-hop" not in names  # named in Connection: hop-by-hop
        # the root serves the single API too; a compressed answer stays compressed
        raw = requests.get(f"{proxy.base_url}/v1/customers/gzip", stream=True, timeout=10)
        assert raw.raw.read(decode_content=False) == gzip.compress(ODD_BODY)
        assert upstream.received[-1]["raw_path"] == "/api/v1/customers/gzip"
        journal = requests.get(f"{proxy.base_url}/__admin/requests", timeout=10).json()
    assert "ctc_live_secret" not in json.dumps(journal)
    entries = list(HarReader(str(har)))
    assert len(entries) == 2
    assert "ctc_live_secret" not in har.read_text(encoding="utf-8")
    assert json.loads(entries[1]["response"]["content"]["text"]) == json.loads(ODD_BODY)  # decoded for drift


def test_findings_never_block_traffic(upstream: Upstream) -> None:
    base = f"http://127.0.0.1:{upstream.port}"
    with ProxyServer({"customtrades": base}) as proxy:
        # no credentials, a body the spec refuses, an undocumented path: all forwarded
        answer = requests.post(f"{proxy.base_url}/customtrades/v1/nowhere", data=b"not json", timeout=10)
        assert answer.status_code == 200 and answer.content == ODD_BODY
        entry = requests.get(f"{proxy.base_url}/__admin/requests", timeout=10).json()[-1]
    assert entry["violations"][0]["kind"] == "undocumented_operation"
    assert entry["violations"][0]["direction"] == "request"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_vendor_is_502_and_slow_vendor_504_in_the_vendors_envelope(upstream: Upstream) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    with ProxyServer({"capillary": dead, "customtrades": f"http://127.0.0.1:{upstream.port}"}, timeout=0.5) as proxy:
        gone = requests.get(f"{proxy.base_url}/capillary/v2/extendedFields", timeout=10)
        assert gone.status_code == 502
        assert (
            gone.json()["errors"][0]["status"] is False
            and "could not be reached" in gone.json()["errors"][0]["message"]
        )
        started = time.monotonic()
        slow = requests.get(f"{proxy.base_url}/customtrades/v1/customers/slow", timeout=10)
        assert slow.status_code == 504 and time.monotonic() - started < 3
        assert slow.json()["success"] is False and "0.5 seconds" in slow.json()["error"]


def test_kill_9_mid_traffic_leaves_a_har_drift_reads(tmp_path: Path) -> None:
    har = tmp_path / "killed.har"
    with MockServer(Settings(port=0, seed=0, customtrades_quota=0)) as mock:
        key = mock.credentials()["customtrades"]["api_key"]
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mock_server",
                "proxy",
                "--upstream",
                f"customtrades={mock.url('customtrades')}",
                "--port",
                "0",
                "--har",
                str(har),
                "--log-level",
                "error",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            url = first.split()[1]
            stop = threading.Event()
            sent: list[int] = []

            def traffic() -> None:
                session = requests.Session()
                while not stop.is_set():
                    try:
                        session.post(
                            f"{url}/v1/customers",
                            json={"first_name": "K", "last_name": str(len(sent))},
                            headers={"Authorization": f"Bearer {key}"},
                            timeout=5,
                        )
                        sent.append(1)
                    except requests.RequestException:
                        return

            workers = [threading.Thread(target=traffic) for _ in range(4)]
            for worker in workers:
                worker.start()
            deadline = time.monotonic() + 20
            while len(sent) < 150 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            stop.set()
            for worker in workers:
                worker.join(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
    reader = HarReader(str(har))
    entries = list(reader)
    assert len(entries) >= 100
    assert all(e["response"]["status"] == 200 and e["request"]["method"] == "POST" for e in entries)
    drift = subprocess.run(
        [sys.executable, "-m", "mock_server", "drift", str(har), "--no-replay", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert drift.returncode in (0, 1), drift.stderr
    assert json.loads(drift.stdout)["summary"]["matched"] == len(entries)


def test_a_checker_failure_never_costs_the_client_its_answer(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mock_server.drift.speccheck import Checker

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("checker bug")

    monkeypatch.setattr(Checker, "response", broken)
    with ProxyServer({"customtrades": f"http://127.0.0.1:{upstream.port}"}) as proxy:
        answer = requests.get(f"{proxy.base_url}/v1/customers", timeout=10)
        assert answer.status_code == 200 and answer.content == ODD_BODY
        entry = requests.get(f"{proxy.base_url}/__admin/requests", timeout=10).json()[-1]
    assert any(v["kind"] == "checker_error" for v in entry["violations"])


def test_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "mock_server",
                "proxy",
                "--upstream",
                "loke=http://127.0.0.1:1",
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode == 1 and "already in use" in run.stderr and "Traceback" not in run.stderr
