"""The monthly quota (`--customtrades-quota N`): per company, by the virtual clock's month,
answered 403 in the vendor's envelope once used up, cleared by a reset."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from mock_server.settings import Settings
from mock_server.testing import MockServer

QUOTA = 3


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, strict=True, customtrades_quota=QUOTA, apis=("customtrades",))) as mock:
        yield mock


@pytest.fixture
def quota_mock(server: MockServer) -> MockServer:
    server.reset()
    server.admin("POST", "/clock", json={"set": "2024-01-31T23:00:00Z", "frozen": True}).raise_for_status()
    return server


def _get(mock: MockServer, company: str = "customtrades") -> requests.Response:
    key = mock.credentials_cache()[company]["api_key"]
    return mock.session.get(mock.url("customtrades", "/v1/customers"), headers={"X-API-Key": key}, timeout=30)


def _usage(response: requests.Response) -> tuple[int, int, str]:
    h = response.headers
    return int(h["X-Usage-Count"]), int(h["X-Usage-Limit"]), h["X-Usage-Resets"]


def test_the_quota_is_answered_403_once_used_up(quota_mock: MockServer) -> None:
    answers = [_get(quota_mock) for _ in range(QUOTA + 2)]
    assert [a.status_code for a in answers] == [200] * QUOTA + [403, 403]
    assert [_usage(a) for a in answers] == [(n, QUOTA, "2024-02-01T00:00:00.000Z") for n in (1, 2, 3, 3, 3)]
    refused = answers[-1].json()
    assert refused["success"] is False
    assert "usage limit exceeded" in refused["error"] and "2024-02-01T00:00:00.000Z" in refused["error"]


def test_every_operation_counts_and_is_refused(quota_mock: MockServer) -> None:
    key = quota_mock.credentials_cache()["customtrades"]["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    url = quota_mock.url("customtrades", "/v1/customers")
    created = quota_mock.session.post(url, json={"first_name": "A", "last_name": "B"}, headers=headers, timeout=30)
    uuid = created.json()["data"]["uuid"]
    assert quota_mock.session.get(f"{url}/{uuid}", headers=headers, timeout=30).status_code == 200
    assert quota_mock.session.put(f"{url}/{uuid}", json={}, headers=headers, timeout=30).status_code == 200
    refused = quota_mock.session.delete(f"{url}/{uuid}", headers=headers, timeout=30)
    assert refused.status_code == 403 and _usage(refused)[0] == QUOTA
    assert quota_mock.session.get(f"{url}/{uuid}", headers=headers, timeout=30).status_code == 403


def test_each_company_has_its_own_quota(quota_mock: MockServer) -> None:
    for _ in range(QUOTA):
        _get(quota_mock)
    assert _get(quota_mock).status_code == 403
    other = _get(quota_mock, "customtrades_second_company")
    assert other.status_code == 200 and _usage(other)[0] == 1


def test_the_month_follows_the_virtual_clock(quota_mock: MockServer) -> None:
    for _ in range(QUOTA):
        _get(quota_mock)
    assert _get(quota_mock).status_code == 403
    quota_mock.advance(3600)  # 2024-02-01T00:00:00Z: a new month
    renewed = _get(quota_mock)
    assert renewed.status_code == 200
    assert _usage(renewed) == (1, QUOTA, "2024-03-01T00:00:00.000Z")


def test_december_resets_on_new_year(quota_mock: MockServer) -> None:
    quota_mock.admin("POST", "/clock", json={"set": "2024-12-31T23:59:59Z"}).raise_for_status()
    assert _usage(_get(quota_mock))[2] == "2025-01-01T00:00:00.000Z"


def test_reset_clears_usage(quota_mock: MockServer) -> None:
    for _ in range(QUOTA):
        _get(quota_mock)
    assert _get(quota_mock).status_code == 403
    quota_mock.reset()
    assert _get(quota_mock).status_code == 200


def test_the_quota_is_documented_as_the_limit(quota_mock: MockServer) -> None:
    assert _usage(_get(quota_mock))[1] == QUOTA
    assert Settings().customtrades_quota == 50_000  # the vendor's default
