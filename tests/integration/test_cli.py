"""The console script: serve on a free port, clean shutdown, clear errors, credentials, assumptions."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.serve_process import CLI, certificate, start_serve


def test_serve_prints_urls_serves_and_stops_on_sigterm() -> None:
    proc, urls = start_serve("--seed", "7")
    try:
        assert set(urls) == {"letstrade-pos", "letstrade-channels", "customtrades", "capillary", "loke", "admin"}
        health = requests.get(urls["admin"] + "/health", timeout=10)
        assert health.json()["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Traceback" not in stderr


def test_single_api_is_also_served_at_the_root() -> None:
    proc, urls = start_serve("--api", "customtrades")
    try:
        assert "(root)" in urls and "loke" not in urls
        assert requests.get(urls["(root)"] + "/v1/customers", timeout=10).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([*CLI, "serve", "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "already in use" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_option_is_a_clear_error() -> None:
    result = subprocess.run([*CLI, "serve", "--api", "nope"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and "Traceback" not in result.stderr
    negative = subprocess.run([*CLI, "serve", "--customtrades-quota", "-1"], capture_output=True, text=True, timeout=60)
    assert negative.returncode == 2 and "expected 0 or more" in negative.stderr


def test_credentials_are_deterministic_per_seed() -> None:
    def creds(seed: str) -> dict[str, object]:
        out = subprocess.run([*CLI, "credentials", "--seed", seed], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        loaded: dict[str, object] = json.loads(out.stdout)
        return loaded

    first, again, other = creds("1"), creds("1"), creds("2")
    assert first == again
    assert first["customtrades"] != other["customtrades"]
    assert {"letstrade", "customtrades", "capillary", "loke"} <= set(first)


def test_assumptions_lists_assumed_items_with_locations() -> None:
    out = subprocess.run([*CLI, "assumptions"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) > 20
    assert all(line.startswith("openapi/") and "#/" in line for line in lines)
    assert any("letstrade-pos.yaml#/paths/~1user~1sign_in/post" in line for line in lines)


def test_bad_fixtures_file_is_a_clear_error(tmp_path: object) -> None:
    from pathlib import Path

    fixtures = Path(str(tmp_path)) / "fixtures.yaml"
    fixtures.write_text("nonsense-section:\n  customers: []\n", encoding="utf-8")
    result = subprocess.run(
        [*CLI, "serve", "--port", "0", "--fixtures", str(fixtures)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "nonsense-section" in result.stderr and "Traceback" not in result.stderr


def test_serves_https_with_a_givencertificate(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    proc, urls = start_serve("--api", "loke", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert urls["admin"].startswith("https://")
        assert requests.get(urls["admin"] + "/health", timeout=10, verify=str(cert)).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


# -- serve --port-per-api (issue 21): every API at the root of a port of its own, same state -----------
SLUGS = ["letstrade-pos", "letstrade-channels", "customtrades", "capillary", "loke"]


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    return stderr


def _free_block(size: int) -> int:
    """A port P with P..P+size-1 all free right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + size > 65535:
            continue
        held = []
        try:
            for port in range(first, first + size):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise AssertionError("no block of free ports")


def test_port_per_api_serves_every_api_at_the_root_of_its_own_port_on_the_same_state() -> None:
    proc, urls = start_serve("--port-per-api", "--seed", "5")
    try:
        main_port = int(urls["admin"].rsplit(":", 1)[1].split("/")[0])
        assert set(urls) == {*SLUGS, *(f"{slug}:root" for slug in SLUGS), "admin"}
        own = {slug: urls[f"{slug}:root"] for slug in SLUGS}
        for slug in SLUGS:  # the prefixed URLs are unchanged
            assert urls[slug] == f"http://127.0.0.1:{main_port}/{slug}"
        ports = {int(url.rsplit(":", 1)[1]) for url in own.values()}
        assert all(url.startswith("http://127.0.0.1:") and url.count("/") == 2 for url in own.values()), own
        assert len(ports) == 5 and main_port not in ports
        creds = requests.get(urls["admin"] + "/credentials", timeout=10).json()
        ct = {"Authorization": f"Bearer {creds['customtrades']['api_key']}"}

        # created under /customtrades on the main port, read at the root of the Custom Trades port ...
        created = requests.post(urls["customtrades"] + "/v1/customers", headers=ct, timeout=10,
                                json={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})
        assert created.status_code == 200, created.text
        uuid = created.json()["data"]["uuid"]
        read = requests.get(own["customtrades"] + f"/v1/customers/{uuid}", headers=ct, timeout=10)
        assert read.status_code == 200, read.text
        assert read.json()["data"]["email"] == "ada@example.com"
        # ... and the other way round
        other = requests.post(own["customtrades"] + "/v1/customers", headers=ct, timeout=10,
                              json={"first_name": "Grace", "last_name": "Hopper"})
        assert other.status_code == 200, other.text
        listed = requests.get(urls["customtrades"] + "/v1/customers", headers=ct, timeout=10).json()
        assert {c["uuid"] for c in listed["data"]["customers"]} == {uuid, other.json()["data"]["uuid"]}

        # LOKE's own client resolves paths from the host root: token grant and a call, unprefixed
        loke = creds["loke"]
        token = requests.post(own["loke"] + "/auth/token", timeout=10, data={
            "grant_type": "client_credentials", "client_id": loke["client_id"], "client_secret": loke["client_secret"]})
        assert token.status_code == 200, token.text
        customers = requests.get(own["loke"] + f"/organizations/{loke['organization_id']}/customers", timeout=10,
                                 headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert customers.status_code == 200, customers.text

        # a path of another API (or the admin's) on an API's own port is that vendor's 404
        wrong = requests.get(own["customtrades"] + f"/organizations/{loke['organization_id']}/customers",
                             headers=ct, timeout=10)
        assert wrong.status_code == 404
        assert wrong.json()["success"] is False and "/organizations/" in wrong.json()["error"]
        prefixed = requests.get(own["customtrades"] + "/customtrades/v1/customers", headers=ct, timeout=10)
        assert prefixed.status_code == 404 and prefixed.json()["success"] is False
        wrong_loke = requests.get(own["loke"] + "/v1/customers", timeout=10)
        assert wrong_loke.status_code == 404 and set(wrong_loke.json()) >= {"message", "type"}
        admin = requests.get(own["capillary"] + "/__admin/health", timeout=10)
        assert admin.status_code == 404
        assert admin.json()["errors"][0]["status"] is False and isinstance(admin.json()["errors"][0]["code"], int)

        # one state: a reset through the main port's admin API empties the API's own port too
        assert requests.post(urls["admin"] + "/reset", timeout=10).status_code < 300
        gone = requests.get(own["customtrades"] + f"/v1/customers/{uuid}", headers=ct, timeout=10)
        assert gone.status_code == 404
    finally:
        _stop(proc)


def test_port_per_api_takes_the_ports_after_port_in_a_fixed_order() -> None:
    base = _free_block(6)
    proc, urls = start_serve("--port-per-api", "--api", "loke", "--api", "customtrades", port=base)
    try:
        # fixed offsets by API, whichever APIs are mounted: Custom Trades P+3, LOKE P+5
        assert urls["customtrades:root"] == f"http://127.0.0.1:{base + 3}"
        assert urls["loke:root"] == f"http://127.0.0.1:{base + 5}"
        assert "capillary:root" not in urls and "(root)" not in urls
        assert requests.get(urls["loke:root"] + "/organizations", timeout=10).status_code == 401
    finally:
        _stop(proc)


def test_port_per_api_with_a_port_in_use_or_out_of_range_is_one_clear_line() -> None:
    base = _free_block(6)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 3))
        busy.listen()
        result = subprocess.run([*CLI, "serve", "--port", str(base), "--port-per-api"],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"loyalty-mock: cannot listen on 127.0.0.1:{base + 3} (--port-per-api, customtrades): "
        "the port is already in use"
    ]
    with socket.socket() as probe:  # the ports opened before the busy one were closed again
        probe.bind(("127.0.0.1", base + 1))
    high = subprocess.run([*CLI, "serve", "--port", "65533", "--port-per-api"],
                          capture_output=True, text=True, timeout=120)
    assert high.returncode == 2 and "Traceback" not in high.stderr
    assert "at most 65530" in high.stderr and len(high.stderr.strip().splitlines()) == 1


def test_port_per_api_serves_https_on_every_port(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    proc, urls = start_serve("--port-per-api", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        for slug in SLUGS:
            assert urls[f"{slug}:root"].startswith("https://127.0.0.1:"), urls
        creds = requests.get(urls["admin"] + "/credentials", timeout=10, verify=str(cert)).json()
        listed = requests.get(urls["customtrades:root"] + "/v1/customers", timeout=10, verify=str(cert),
                              headers={"Authorization": f"Bearer {creds['customtrades']['api_key']}"})
        assert listed.status_code == 200, listed.text
        with pytest.raises(requests.ConnectionError):  # TLS only: plain HTTP is not answered
            requests.get(urls["customtrades:root"].replace("https:", "http:") + "/v1/customers", timeout=10)
    finally:
        _stop(proc)


# -- a reader that closes the pipe early (issue 16): every command ends quietly ---------------------------
@pytest.fixture
def closed_pipe() -> Iterator[int]:
    """The write end of a pipe whose reader has already gone: the first write gets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    yield write_end
    os.close(write_end)


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("command", [["assumptions"], ["credentials", "--seed", "3"], ["--help"], ["serve", "--help"]])
def test_a_command_whose_reader_has_gone_ends_quietly_with_141(
    closed_pipe: int, command: list[str], buffered: bool
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    result = subprocess.run([*CLI, *command], stdout=closed_pipe, stderr=subprocess.PIPE, text=True, timeout=120,
                            env=env)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr
    if "--help" in command and not buffered:
        assert result.returncode == 0  # argparse itself ignores a failed write of its help
    else:
        assert result.returncode == 141  # 128 + SIGPIPE, what a shell reports for `yes` in `yes | head`


def test_serve_whose_reader_has_gone_keeps_serving(closed_pipe: int) -> None:
    port = _free_block(1)
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port)], stdout=closed_pipe, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/__admin/health", timeout=5)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=10)[1]
                time.sleep(0.2)
        assert health.status_code == 200
        time.sleep(0.5)
        assert proc.poll() is None  # the start-up lines found no reader; the mock serves on
    finally:
        stderr = _stop(proc)
    assert "BrokenPipeError" not in stderr and "Exception ignored" not in stderr
