"""`loyalty-mock serve` as a subprocess for the CLI tests: start it and read its URL lines, and a
self-signed certificate for its TLS options."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "mock_server"]


def start_serve(*args: str, port: int = 0) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`serve --port PORT *args`, once it has printed its URLs (name -> URL, up to `admin`)."""
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
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


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by openssl in `folder`."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key
