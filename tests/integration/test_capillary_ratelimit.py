"""The regional requests-per-minute limit over HTTP, on the virtual clock (no real waiting): its
own mock in the EMEA region (100 RPM per credential), clock frozen in every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from mock_server.settings import Settings
from mock_server.testing import MockServer
from tests.integration.auth_headers import capillary_basic


@pytest.fixture(scope="module")
def emea() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, strict=True, capillary_region="emea")) as server:
        yield server


@pytest.fixture
def limited(emea: MockServer) -> MockServer:
    emea.reset()
    emea.admin("POST", "/clock", json={"frozen": True}).raise_for_status()
    return emea


def _fields(mock: MockServer, headers: dict[str, str]) -> requests.Response:
    return mock.session.get(mock.url("capillary", "/v2/extendedFields"), headers=headers, timeout=30)


def _basic(mock: MockServer) -> dict[str, str]:
    return {"Authorization": capillary_basic(mock.credentials_cache())}


def _token(mock: MockServer) -> requests.Response:
    cap = mock.credentials_cache()["capillary"]
    return mock.session.post(
        mock.url("capillary", "/v3/oauth/token/generate"),
        json={"key": cap["oauth_key"], "secret": cap["oauth_secret"]},
        timeout=30,
    )


def test_the_101st_request_in_a_minute_is_429_until_the_window_passes(limited: MockServer) -> None:
    basic = _basic(limited)
    statuses = [_fields(limited, basic).status_code for _ in range(100)]
    assert statuses == [200] * 100
    refused = _fields(limited, basic)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    error = refused.json()["errors"][0]
    assert error["code"] == 1429 and "100 requests per minute" in error["message"] and "emea" in error["message"]
    limited.advance(30)
    still = _fields(limited, basic)
    assert still.status_code == 429 and still.headers["Retry-After"] == "30"
    limited.advance(30)
    assert _fields(limited, basic).status_code == 200  # the whole first minute has left the window
    assert all(_fields(limited, basic).status_code == 200 for _ in range(99))
    # a register call counts the same: the window is full again
    registered = limited.session.post(
        limited.url("capillary", "/v2/customers"),
        json={"profiles": [{"identifiers": [{"type": "mobile", "value": "919800000001"}], "source": "INSTORE"}]},
        headers=basic,
        timeout=30,
    )
    assert registered.status_code == 429 and registered.headers["Retry-After"].isdigit()


def test_the_window_slides(limited: MockServer) -> None:
    basic = _basic(limited)
    assert all(_fields(limited, basic).status_code == 200 for _ in range(50))
    limited.advance(30)
    assert all(_fields(limited, basic).status_code == 200 for _ in range(50))
    assert _fields(limited, basic).status_code == 429
    limited.advance(30)  # the first 50 leave the window, the last 50 stay for 30 seconds more
    assert all(_fields(limited, basic).status_code == 200 for _ in range(50))
    refused = _fields(limited, basic)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"


def test_each_credential_has_its_own_window_and_tokens_share_their_clients(limited: MockServer) -> None:
    basic = _basic(limited)
    assert all(_fields(limited, basic).status_code == 200 for _ in range(100))
    assert _fields(limited, basic).status_code == 429
    token = _token(limited)  # counts against the OAuth client, not the till
    assert token.status_code == 200
    first = {"CAP-API-ACCESS-TOKEN": token.json()["data"]["accessToken"]}
    second = {"CAP-API-ACCESS-TOKEN": _token(limited).json()["data"]["accessToken"]}
    statuses = [_fields(limited, first if i % 2 else second).status_code for i in range(98)]
    assert statuses == [200] * 98  # 2 token calls + 98 calls = the client's 100
    assert _fields(limited, first).status_code == 429
    assert _fields(limited, second).status_code == 429
    assert _token(limited).status_code == 429


def test_reset_forgets_the_counters(limited: MockServer) -> None:
    basic = _basic(limited)
    assert all(_fields(limited, basic).status_code == 200 for _ in range(100))
    assert _fields(limited, basic).status_code == 429
    limited.reset()
    assert _fields(limited, basic).status_code == 200


def test_the_rpm_override_and_zero_for_unlimited() -> None:
    with MockServer(Settings(port=0, strict=True, capillary_region="asia1", capillary_rpm=3)) as three:
        three.admin("POST", "/clock", json={"frozen": True}).raise_for_status()
        basic = _basic(three)
        assert [_fields(three, basic).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert "--capillary-rpm" in _fields(three, basic).json()["errors"][0]["message"]
    # the session mock runs with capillary_rpm=0: far more than any region's limit passes
    with MockServer(Settings(port=0, capillary_rpm=0)) as unlimited:
        basic = _basic(unlimited)
        assert all(_fields(unlimited, basic).status_code == 200 for _ in range(650))
