"""`--state-file DIR`: a log of every write, fsynced before its answer, plus compacted images.
State survives a restart (from the image, and from the log alone), kill -9 during concurrent
writers loses no acknowledged write, compaction runs while the server serves, a log that no longer
replays to its recorded answers stops the start-up naming the entry, and a bad directory is a
clear start-up error."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server import persistence
from mock_server.app import SERVICES, build_services
from mock_server.settings import Settings
from mock_server.testing import MockServer
from tests.integration.auth_headers import auth_headers


def _create(server: MockServer, creds: dict[str, Any], name: str) -> str:
    created = server.session.post(
        server.url("customtrades", "/v1/customers"),
        json={"first_name": name, "last_name": "Tent"},
        headers=auth_headers("customtrades", creds),
    )
    assert created.status_code == 200, created.text
    return str(created.json()["data"]["uuid"])


def _log(server: MockServer) -> persistence.DurableLog:
    assert server._app is not None
    durable = server._app[SERVICES].state_file
    assert isinstance(durable, persistence.DurableLog)
    return durable


@pytest.mark.parametrize("from_image", [True, False], ids=["image", "log-replay"])
def test_state_survives_a_restart(tmp_path: Path, from_image: bool) -> None:
    settings = Settings(port=0, strict=True, state_file=tmp_path / "state", seed=5)
    with MockServer(settings) as first:
        creds = first.credentials()
        uuids = [_create(first, creds, f"Persis{i}") for i in range(3)]
        org = creds["loke"]["organization_id"]
        hook = first.session.put(
            first.url("loke", f"/organizations/{org}/webhooks/crm-sync"),
            json={"events": ["customer.created"], "secret": "s" * 16, "url": "http://127.0.0.1:9/hook"},
            headers=auth_headers("loke", creds),
        )
        assert hook.status_code == 200, hook.text
        first.advance(3600)
        fault = first.admin("POST", "/faults", json={"api": "capillary", "status": 503, "times": 5})
        assert fault.status_code in (200, 201), fault.text
        uuids.append(_create(first, creds, "After"))
        clock = first.admin("GET", "/clock").json()["now"]
        if not from_image:
            _log(first).capture = None  # as after kill -9: no last image, the next start replays the log
    names = sorted(p.name for p in (tmp_path / "state" / "default").iterdir())
    assert ("image.00000001" in names) is from_image and ("log.00000001" in names) is not from_image
    with MockServer(settings) as second:
        assert second.credentials() == creds
        for uuid in uuids:
            again = second.session.get(
                second.url("customtrades", f"/v1/customers/{uuid}"), headers=auth_headers("customtrades", creds)
            )
            assert again.status_code == 200, again.text
        hooks = second.session.get(
            second.url("loke", f"/organizations/{org}/webhooks"), headers=auth_headers("loke", creds)
        )
        assert [h["ref"] for h in hooks.json()] == ["crm-sync"]
        assert second.admin("GET", "/clock").json()["now"] >= clock
        assert len(second.admin("GET", "/faults").json()) == 1
        # the next id continues the sequence: the same as a mock that never stopped would give
        uuids.append(_create(second, creds, "Later"))
    with MockServer(Settings(port=0, strict=True, seed=5)) as never_stopped:
        same = [_create(never_stopped, creds, n) for n in ("Persis0", "Persis1", "Persis2", "After", "Later")]
    assert uuids == same


def _serve(state: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mock_server", "serve", "--port", "0", "--api", "customtrades",
            "--customtrades-quota", "0", "--state-file", str(state), *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        name, url = line.split()
        urls[name] = url
        if name == "admin":
            break
    return proc, urls


def kill_9_round(state: Path, writers: int = 16, seconds: float = 1.5) -> tuple[int, list[str]]:
    """Writers create customers until the server is killed (SIGKILL); then a restart must hold
    every acknowledged one. Returns (acknowledged, missing)."""
    proc, urls = _serve(state)
    key = requests.get(urls["admin"] + "/credentials", timeout=10).json()["customtrades"]["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        with requests.Session() as session:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = session.post(
                        urls["customtrades"] + "/v1/customers",
                        headers=headers,
                        timeout=5,
                        json={"first_name": f"W{n}", "last_name": f"N{i}"},
                    )
                except requests.RequestException:
                    return
                if r.status_code == 200:
                    acknowledged.append(r.json()["data"]["uuid"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=20)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    proc, urls = _serve(state)
    try:
        with requests.Session() as session:
            missing = [
                uuid
                for uuid in acknowledged
                if session.get(f"{urls['customtrades']}/v1/customers/{uuid}", headers=headers, timeout=5).status_code
                != 200
            ]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    return len(acknowledged), missing


def test_kill_9_during_16_concurrent_writers_loses_no_acknowledged_write(tmp_path: Path) -> None:
    acknowledged, missing = kill_9_round(tmp_path / "state")
    assert acknowledged > 20 and missing == []


def test_compaction_runs_while_serving_and_keeps_everything(tmp_path: Path) -> None:
    settings = Settings(port=0, state_file=tmp_path / "state", seed=3, apis=("customtrades",), customtrades_quota=0)
    directory = tmp_path / "state" / "default"
    with MockServer(settings) as server:
        creds = server.credentials()
        durable = _log(server)
        durable.compact_entries = 25
        uuids: list[str] = []
        health: list[int] = []
        stop = threading.Event()

        def reader() -> None:
            with requests.Session() as session:
                while not stop.is_set():
                    health.append(session.get(server.url("__admin", "/health"), timeout=10).status_code)

        probe = threading.Thread(target=reader)
        probe.start()
        try:
            # at least 80 creates, and more while fewer than two compactions have started: on a
            # loaded machine one compaction (fork + image) may span many writes
            while len(uuids) < 80 or (durable.compactions + (durable._compaction is not None) < 2 and len(uuids) < 600):
                uuids.append(_create(server, creds, f"C{len(uuids)}"))
        finally:
            stop.set()
            probe.join(timeout=10)
        assert server._loop is not None
        asyncio.run_coroutine_threadsafe(durable.wait_idle(), server._loop).result(timeout=30)
        assert durable.compactions >= 2 and health and set(health) == {200}
        names = sorted(p.name for p in directory.iterdir())
        images = [n for n in names if n.startswith("image.")]
        segments = [n for n in names if n.startswith("log.")]
        assert len(images) == 1 and all(s > images[0].replace("image.", "log.") for s in segments)
        durable.capture = None  # restart from the compacted image + the log written after it
    with MockServer(settings) as again:
        for uuid in uuids:
            found = again.session.get(
                again.url("customtrades", f"/v1/customers/{uuid}"), headers=auth_headers("customtrades", creds)
            )
            assert found.status_code == 200, uuid


def test_a_log_that_replays_differently_stops_the_start_naming_the_entry(tmp_path: Path) -> None:
    settings = Settings(port=0, state_file=tmp_path / "state", seed=4, apis=("customtrades",))
    with MockServer(settings) as server:
        creds = server.credentials()
        for name in ("One", "Two", "Three"):
            _create(server, creds, name)
        _log(server).capture = None
    directory = tmp_path / "state" / "default"
    entries = list(persistence.read_segments(directory, 0))
    assert len(entries) == 3
    path, offset, second = entries[1]
    data = path.read_bytes()
    frames = [e.encode() for _, _, e in entries]
    frames[1] = persistence.Entry(**{**second.__dict__, "digest": b"\0" * 8}).encode()
    assert b"".join(e.encode() for _, _, e in entries) == data
    path.write_bytes(b"".join(frames))
    with pytest.raises(persistence.StateFileError) as refused:
        build_services(settings)
    message = str(refused.value)
    assert f"{path} byte {offset}" in message and "POST /customtrades/v1/customers" in message
    assert "another body" in message


def test_a_torn_last_write_is_cut_off(tmp_path: Path) -> None:
    settings = Settings(port=0, state_file=tmp_path / "state", seed=4, apis=("customtrades",))
    with MockServer(settings) as server:
        creds = server.credentials()
        kept = _create(server, creds, "Kept")
        _log(server).capture = None
    segment = tmp_path / "state" / "default" / "log.00000001"
    first_frame = segment.read_bytes()
    with segment.open("ab") as handle:
        handle.write(b"\x40\x00\x00\x00torn")  # a frame whose write the crash interrupted
    # a later segment written in the same unsynced batch (rotation): after the torn frame, so never
    # acknowledged; replaying it would create a customer again (and answer another body)
    later = segment.with_name("log.00000002")
    later.write_bytes(first_frame)
    with MockServer(settings) as again:
        found = again.session.get(
            again.url("customtrades", f"/v1/customers/{kept}"), headers=auth_headers("customtrades", creds)
        )
        assert found.status_code == 200
        # cut off, and the next segment (where this run writes) starts empty
        assert segment.read_bytes() == first_frame and later.stat().st_size == 0


def _start_error(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--state-file", str(state), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_state_directories_are_clear_start_up_errors(tmp_path: Path) -> None:
    old = tmp_path / "mock.sqlite"
    old.write_bytes(b"SQLite format 3\x00")  # an earlier version's single-file snapshot
    result = _start_error(old, "--api", "loke")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is a file" in result.stderr and "new directory" in result.stderr

    with pytest.raises(persistence.StateFileError, match=r"cannot use --state-file directory .*Not a directory"):
        build_services(Settings(state_file=old / "state", apis=("loke",)))  # cannot be made under a file

    state = tmp_path / "state"
    with MockServer(Settings(port=0, state_file=state, seed=1, apis=("loke",))):
        pass
    with pytest.raises(persistence.StateFileError, match="with --seed 1; start with the same options"):
        build_services(Settings(state_file=state, seed=2, apis=("loke",)))
    with pytest.raises(persistence.StateFileError, match="with --api loke; start with the same options"):
        build_services(Settings(state_file=state, seed=1, apis=("loke", "capillary")))


def test_a_pos_callback_is_replayed_from_the_log_not_sent_again(tmp_path: Path) -> None:
    """The append-vouchers handler acts on the POS's answer: the answer is logged with the request
    and given back on replay (a different answer, or a call, would change the replayed reply)."""
    from tests.integration.test_letstrade_pos_flow import Pos, content
    from tests.integration.test_letstrade_pos_qr import BSK20, FakePos, print_bill, select

    with FakePos() as till:
        settings = Settings(port=0, strict=True, state_file=tmp_path / "state", pos_callback_url=till.url)
        with MockServer(settings) as first:
            body = print_bill(Pos(first))
            order_id = content(Pos(first).offerings(body))["order_id"]
            answer = select(first, body, [BSK20])
            assert answer.status_code == 200 and answer.json()["applied"] is True, answer.text
            _log(first).capture = None  # the next start replays the log
        calls = len(till.received)
        till.mode = "reject"  # a POS that would now refuse: the replay must not ask it
        with MockServer(settings) as second:
            again = content(Pos(second).offerings(body))
            assert again["order_id"] == order_id
            assert [v["id"] for v in again["basket"]["vouchers"]] == ["VCH-BSK-20"]  # the logged POS answer
        assert len(till.received) == calls
