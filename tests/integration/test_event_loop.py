"""`serve --loop auto|uvloop|asyncio` (mock_server/eventloop.py, issue 20): auto picks uvloop when it
can be imported and the standard library's loop when not; asking for uvloop where it is missing is
a clear start-up error; the mock serves the same on either loop."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from mock_server import eventloop
from mock_server.settings import Settings
from tests.integration.serve_process import start_serve

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None
needs_uvloop = pytest.mark.skipif(not HAS_UVLOOP, reason="uvloop is not installed here")


async def _running_loop_kind() -> str:
    return eventloop.describe(asyncio.get_running_loop())


def _without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` now raises ImportError


def test_asyncio_is_the_standard_librarys_loop() -> None:
    chosen = eventloop.resolve("asyncio")
    assert chosen.name == "asyncio"
    assert eventloop.run(_running_loop_kind(), chosen) == "asyncio"


@needs_uvloop
def test_auto_and_uvloop_run_on_uvloop_when_it_is_installed() -> None:
    for choice in ("auto", "uvloop"):
        chosen = eventloop.resolve(choice)
        assert chosen.name == "uvloop" and chosen.version
        assert eventloop.run(_running_loop_kind(), chosen) == "uvloop"


def test_auto_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_uvloop(monkeypatch)
    chosen = eventloop.resolve("auto")
    assert chosen.name == "asyncio"
    assert eventloop.run(_running_loop_kind(), chosen) == "asyncio"


def test_uvloop_asked_for_but_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_uvloop(monkeypatch)
    with pytest.raises(eventloop.LoopUnavailable, match=r"--loop uvloop: uvloop cannot be imported.*--loop asyncio"):
        eventloop.resolve("uvloop")


def test_unknown_loop_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown event loop 'trio'"):
        eventloop.resolve("trio")
    with pytest.raises(ValueError, match="unknown event loop 'trio'"):
        Settings(event_loop="trio")


def _serves_a_customer(urls: dict[str, str]) -> None:
    key = requests.get(urls["admin"] + "/credentials", timeout=10).json()["customtrades"]["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    created = requests.post(
        urls["customtrades"] + "/v1/customers", json={"first_name": "Ada", "last_name": "L"}, headers=auth, timeout=10
    )
    assert created.status_code == 200, created.text
    uuid = created.json()["data"]["uuid"]
    got = requests.get(f"{urls['customtrades']}/v1/customers/{uuid}", headers=auth, timeout=10)
    assert got.status_code == 200 and got.json()["data"]["first_name"] == "Ada"
    assert got.headers["X-Usage-Count"] == "2"  # the domain's headers, then aiohttp's
    assert got.headers["Content-Length"] == str(len(got.content)) and "Date" in got.headers


@pytest.mark.parametrize("choice", ["asyncio", pytest.param("uvloop", marks=needs_uvloop), "auto"])
def test_serve_runs_on_the_loop_asked_for_and_logs_it_once(choice: str) -> None:
    proc, urls = start_serve("--api", "customtrades", "--loop", choice)
    try:
        _serves_a_customer(urls)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    expected = "asyncio" if choice == "asyncio" or not HAS_UVLOOP else "uvloop"
    assert err.count("event loop: ") == 1
    assert f"event loop: {expected} " in err and f"(--loop {choice})" in err
    assert proc.returncode == 0


def test_serve_loop_uvloop_where_it_cannot_be_imported_exits_2(tmp_path: Path) -> None:
    (tmp_path / "uvloop.py").write_text("raise ImportError('no uvloop build here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--loop", "uvloop"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert "loyalty-mock: error: --loop uvloop: uvloop cannot be imported" in done.stderr
    assert "Traceback" not in done.stderr
