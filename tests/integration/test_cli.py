"""The console script: serve on a free port, clean shutdown, clear errors, credentials, assumptions."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import requests

CLI = [sys.executable, "-m", "mock_server"]


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        name, url = line.split()
        urls[name] = url
        if name == "admin":
            return proc, urls
    proc.kill()
    raise AssertionError(f"no start-up lines; stderr: {proc.communicate(timeout=20)[1]}")


def test_serve_prints_urls_serves_and_stops_on_sigterm() -> None:
    proc, urls = _start("--seed", "7")
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
    proc, urls = _start("--api", "customtrades")
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


def test_serves_https_with_a_given_certificate(tmp_path: object) -> None:
    import shutil
    from pathlib import Path

    import pytest

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = Path(str(tmp_path))
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    proc, urls = _start("--api", "loke", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert urls["admin"].startswith("https://")
        assert requests.get(urls["admin"] + "/health", timeout=10, verify=str(cert)).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0
