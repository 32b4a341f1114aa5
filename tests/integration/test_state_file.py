"""`--state-file`: state survives a restart and a kill -9 during writes; the file stays readable."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from mock_server.settings import Settings
from mock_server.testing import MockServer
from tests.integration.auth_headers import auth_headers


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "mock.sqlite"
    settings = Settings(port=0, strict=True, state_file=state, seed=5)
    with MockServer(settings) as first:
        creds = first.credentials()
        created = first.session.post(
            first.url("customtrades", "/v1/customers"),
            json={"first_name": "Persis", "last_name": "Tent"},
            headers=auth_headers("customtrades", creds),
        )
        assert created.status_code == 200, created.text
        uuid = created.json()["data"]["uuid"]
        org = creds["loke"]["organization_id"]
        hook = first.session.put(
            first.url("loke", f"/organizations/{org}/webhooks/crm-sync"),
            json={"events": ["customer.created"], "secret": "s" * 16, "url": "http://127.0.0.1:9/hook"},
            headers=auth_headers("loke", creds),
        )
        assert hook.status_code == 200, hook.text
        first.advance(3600)
        clock = first.admin("GET", "/clock").json()["now"]
    with MockServer(settings) as second:
        assert second.credentials() == creds
        again = second.session.get(
            second.url("customtrades", f"/v1/customers/{uuid}"), headers=auth_headers("customtrades", creds)
        )
        assert again.status_code == 200 and again.json()["data"]["first_name"] == "Persis"
        hooks = second.session.get(
            second.url("loke", f"/organizations/{org}/webhooks"), headers=auth_headers("loke", creds)
        )
        assert [h["ref"] for h in hooks.json()] == ["crm-sync"]
        assert second.admin("GET", "/clock").json()["now"] >= clock


def test_a_state_file_from_another_configuration_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "mock.sqlite"
    with MockServer(Settings(port=0, state_file=state, seed=1, apis=("loke",))):
        pass
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mock_server",
            "serve",
            "--port",
            "0",
            "--state-file",
            str(state),
            "--seed",
            "2",
            "--api",
            "loke",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--seed 1" in result.stderr and "Traceback" not in result.stderr


def _serve(state: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_server",
            "serve",
            "--port",
            "0",
            "--api",
            "customtrades",
            "--customtrades-quota",
            "0",
            "--state-file",
            str(state),
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


def test_kill_9_during_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    state = tmp_path / "mock.sqlite"
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

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=20)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acknowledged) > 20

    proc, urls = _serve(state)
    try:
        with requests.Session() as session:
            missing = [
                uuid
                for uuid in acknowledged
                if session.get(f"{urls['customtrades']}/v1/customers/{uuid}", headers=headers, timeout=5).status_code
                != 200
            ]
        assert missing == []
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
