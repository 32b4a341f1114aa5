"""A vendor double (the mock, optionally behind a deviating rewriter) with the proxy in front."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server.clock import isoformat
from mock_server.drift.har import build_entry
from mock_server.proxy.testing import ProxyServer
from mock_server.settings import Settings
from mock_server.testing import MockServer
from tests.drift.scenarios import Client

ALL = ("letstrade-pos", "letstrade-channels", "customtrades", "capillary", "loke")


@pytest.fixture(scope="module")
def double() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, seed=0)) as mock:
        yield mock


def recording_client(double: MockServer, proxy: ProxyServer, creds: dict[str, Any]) -> Client:
    """A client through the proxy whose admin calls (POS minting) are recorded in the HAR too."""

    def admin(method: str, path: str, **kwargs: Any) -> requests.Response:
        started = datetime.now(UTC)
        answer = double.admin(method, path, **kwargs)
        body = json.dumps(kwargs["json"]).encode() if "json" in kwargs else b""
        assert proxy.state is not None and proxy.state.har is not None
        proxy.state.har.append(
            build_entry(
                started=isoformat(started),
                duration_ms=1.0,
                method=method,
                url=double.admin_url(path),
                request_headers=[("Content-Type", "application/json")] if body else [],
                request_body=body,
                status=answer.status_code,
                status_text=answer.reason,
                response_headers=[("Content-Type", answer.headers.get("Content-Type", ""))],
                response_body=answer.content,
            )
        )
        return answer

    return Client(proxy.url, creds, admin)


@pytest.fixture
def proxied(double: MockServer, tmp_path: Path) -> Callable[..., tuple[ProxyServer, Client, Path]]:
    started: list[ProxyServer] = []

    def start(upstreams: dict[str, str] | None = None) -> tuple[ProxyServer, Client, Path]:
        har = tmp_path / "traffic.har"
        proxy = ProxyServer(upstreams or {slug: double.url(slug) for slug in ALL}, har_path=str(har)).start()
        started.append(proxy)
        return proxy, recording_client(double, proxy, double.credentials()), har

    yield start  # type: ignore[misc]
    for proxy in started:
        proxy.stop()
