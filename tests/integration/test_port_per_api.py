"""`MockServer(..., port_per_api=True)` (issue 21): each API also at the root of a port of its own,
in the same process and on the same state as `/<slug>` on the main port."""

from __future__ import annotations

import pytest
import requests

from mock_server.settings import Settings
from mock_server.testing import MockServer


def test_mock_server_serves_each_api_at_the_root_of_its_own_port() -> None:
    with MockServer(Settings(port=0, apis=("customtrades", "loke")), port_per_api=True) as mock:
        assert set(mock.api_ports) == {"customtrades", "loke"}
        assert len({mock.port, *mock.api_ports.values()}) == 3
        key = mock.credentials()["customtrades"]["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        created = requests.post(mock.url("customtrades", "/v1/customers"), headers=headers, timeout=10,
                                json={"first_name": "Ada", "last_name": "Lovelace"})
        assert created.status_code == 200, created.text
        uuid = created.json()["data"]["uuid"]
        read = requests.get(mock.root_url("customtrades", f"/v1/customers/{uuid}"), headers=headers, timeout=10)
        assert read.status_code == 200 and read.json()["data"]["uuid"] == uuid
        wrong = requests.get(mock.root_url("loke", "/v1/customers"), timeout=10)
        assert wrong.status_code == 404 and set(wrong.json()) >= {"message", "type"}  # LOKE's envelope
        mock.reset()
        assert requests.get(mock.root_url("customtrades", f"/v1/customers/{uuid}"), headers=headers,
                            timeout=10).status_code == 404
        ports = dict(mock.api_ports)
    for port in ports.values():  # stopped with the mock
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/", timeout=5)


def test_root_url_needs_port_per_api(mock: MockServer) -> None:
    with pytest.raises(LookupError, match="port_per_api=True"):
        mock.root_url("customtrades")
