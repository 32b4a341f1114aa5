"""`--seed-customers N` through settings and the CLI: the first company gets N customers,
deterministic under `--seed`, listed, filtered and searched like any others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server.settings import Settings
from mock_server.testing import MockServer

COUNT = 400
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seeded() -> Iterator[MockServer]:
    settings = Settings(port=0, strict=True, customtrades_quota=0, seed_customers=COUNT, seed=11,
                        apis=("customtrades",))
    with MockServer(settings) as mock:
        yield mock


def _list(mock: MockServer, company: str = "customtrades", **params: Any) -> dict[str, Any]:
    key = mock.credentials_cache()[company]["api_key"]
    response = mock.session.get(mock.url("customtrades", "/v1/customers"), params=params,
                                headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _all(mock: MockServer, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        data = _list(mock, page=page, limit=100, **params)
        found += data["customers"]
        if page >= data["pagination"]["total_pages"]:
            return found
        page += 1


def test_the_first_company_holds_the_seeded_customers(seeded: MockServer) -> None:
    seeded.reset()
    everyone = _all(seeded, include_deleted="true")  # strict mode: each one checked against the spec
    assert len(everyone) == COUNT == len({c["uuid"] for c in everyone})
    live = _list(seeded)["pagination"]["total"]
    assert live == sum(c["deleted_at"] is None for c in everyone) < COUNT
    assert _list(seeded, company="customtrades_second_company")["pagination"]["total"] == 0
    residential = _list(seeded, filter="residential")["pagination"]["total"]
    commercial = _list(seeded, filter="commercial")["pagination"]["total"]
    assert residential + commercial == live and commercial > 0
    created = [c["created_at"] for c in everyone]
    assert created == sorted(created, reverse=True)


def test_seeded_customers_survive_a_reset_unchanged(seeded: MockServer) -> None:
    seeded.reset()
    before = _list(seeded, page=3, limit=50, include_deleted="true")
    seeded.reset()
    assert _list(seeded, page=3, limit=50, include_deleted="true") == before


def test_seeded_customers_are_searchable_and_a_new_one_comes_first(seeded: MockServer) -> None:
    seeded.reset()
    someone = next(c for c in _list(seeded, page=2)["customers"] if c["email"])
    assert [c["uuid"] for c in _list(seeded, search=someone["email"])["customers"]] == [someone["uuid"]]
    key = seeded.credentials_cache()["customtrades"]["api_key"]
    created = seeded.session.post(seeded.url("customtrades", "/v1/customers"),
                                  json={"first_name": "Fresh", "last_name": "Face", "email": "fresh@example.com"},
                                  headers={"Authorization": f"Bearer {key}"}, timeout=30).json()["data"]
    assert _list(seeded, limit=1)["customers"] == [created]
    assert [c["uuid"] for c in _list(seeded, search="fresh@example.com")["customers"]] == [created["uuid"]]


def test_the_cli_seeds_customers_and_serves_at_the_root() -> None:
    command = [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--api", "customtrades",
               "--seed-customers", "60", "--seed", "3", "--customtrades-quota", "0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env=env) as process:
        watchdog = threading.Timer(60, process.kill)  # a server that never prints its URLs cannot hang the test
        watchdog.start()
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(3)]
            root = next(line.split()[-1] for line in lines if line.startswith("(root)"))
            admin = next(line.split()[-1] for line in lines if line.startswith("admin"))
            key = requests.get(f"{admin}/credentials", timeout=30).json()["customtrades"]["api_key"]
            response = requests.get(f"{root}/v1/customers", params={"include_deleted": "true", "limit": "1"},
                                    headers={"X-API-Key": key}, timeout=30)
            assert response.status_code == 200
            assert response.json()["data"]["pagination"]["total"] == 60
            assert response.headers["X-Usage-Limit"] == "0"
        finally:
            watchdog.cancel()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
