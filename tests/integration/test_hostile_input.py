"""Hostile input against the engine: each answered by a clear 4xx in the vendor's envelope, with
nothing stored and the server still serving others."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from mock_server.settings import Settings
from mock_server.testing import MockServer
from tests.integration.auth_headers import auth_headers


@pytest.fixture(scope="module")
def hardened() -> Iterator[MockServer]:
    settings = Settings(port=0, strict=True, customtrades_quota=0, capillary_rpm=0, body_timeout=1.0)
    with MockServer(settings) as server:
        yield server


def _customers(mock: MockServer) -> str:
    return mock.url("customtrades", "/v1/customers")


def _count(mock: MockServer) -> int:
    creds = mock.credentials_cache()
    listed = mock.session.get(_customers(mock), headers=auth_headers("customtrades", creds))
    total: int = listed.json()["data"]["pagination"]["total"]
    return total


def _post(mock: MockServer, data: bytes, content_type: str = "application/json") -> requests.Response:
    headers = {**auth_headers("customtrades", mock.credentials_cache()), "Content-Type": content_type}
    return mock.session.post(_customers(mock), data=data, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "data,expected",
    [
        (b'{"first_name": "a", "last_name": ', "not valid JSON"),
        (b'{"first_name": "a", "last_name": "b"', "not valid JSON"),
        (b"[" * 10_000 + b"]" * 10_000, ""),
        (b'{"first_name": "\xff\xfe", "last_name": "b"}', "UTF-8"),
        (b'{"first_name": "a\x00", "last_name": "b"}', "not valid JSON"),
        (b'{"first_name": "a", "first_name": "b", "last_name": "c"}', "duplicate"),
        (b'{"first_name": "a", "last_name": "b", "notes": 1e999}', "out of range"),
        (b'{"first_name": "a", "last_name": "b", "notes": NaN}', "NaN"),
        (b"[" + b"1," * 300_000 + b"1]", "is not of type"),
    ],
    ids=[
        "truncated",
        "unterminated",
        "deep-nesting",
        "invalid-utf8",
        "nul-byte",
        "duplicate-key",
        "huge-float",
        "nan",
        "huge-array",
    ],
)
def test_malformed_bodies_are_400_in_envelope_and_store_nothing(
    hardened: MockServer, data: bytes, expected: str
) -> None:
    before = _count(hardened)
    response = _post(hardened, data)
    assert response.status_code in (400, 413), response.text
    body = response.json()
    assert body["success"] is False and expected in body["error"]
    assert _count(hardened) == before


def test_wrong_content_type_is_415(hardened: MockServer) -> None:
    response = _post(hardened, b"first_name=a&last_name=b", "application/x-www-form-urlencoded")
    assert response.status_code == 415 and "application/json" in response.json()["error"]


def test_body_one_byte_over_the_limit_is_413(hardened: MockServer) -> None:
    limit = hardened.settings.max_body_bytes
    response = _post(hardened, b" " * (limit + 1))
    assert response.status_code == 413


def test_100_mb_body_is_refused_without_reading_it(hardened: MockServer) -> None:
    """The declared length alone decides: the answer comes before the body is sent."""
    headers = auth_headers("customtrades", hardened.credentials_cache())
    request = (
        f"POST /customtrades/v1/customers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {headers['Authorization']}\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", hardened.port), timeout=10) as sock:
        sock.sendall(request + b"{")
        started = time.monotonic()
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413")
    assert time.monotonic() - started < 5


def test_long_query_string_and_header_get_the_vendor_envelope(hardened: MockServer) -> None:
    headers = auth_headers("customtrades", hardened.credentials_cache())
    long_query = hardened.session.get(_customers(hardened), params={"search": "x" * 20_000}, headers=headers)
    assert long_query.status_code == 414 and long_query.json()["success"] is False
    long_header = hardened.session.get(_customers(hardened), headers={**headers, "X-Junk": "y" * 20_000})
    assert long_header.status_code == 431 and "X-Junk" in long_header.json()["error"]


@pytest.mark.parametrize("segment", ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "..", "%00"])
def test_path_traversal_in_path_parameters_is_refused(hardened: MockServer, segment: str) -> None:
    headers = auth_headers("customtrades", hardened.credentials_cache())
    response = hardened.session.get(f"{_customers(hardened)}/{segment}", headers=headers)
    assert 400 <= response.status_code < 500
    assert response.json()["success"] is False


def test_slow_body_times_out_and_others_are_served(hardened: MockServer) -> None:
    async def slow_and_fast() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", hardened.port)
        headers = auth_headers("customtrades", hardened.credentials_cache())
        writer.write(
            (
                "POST /customtrades/v1/customers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: {headers['Authorization']}\r\nContent-Length: 100\r\n\r\n{{"
            ).encode()
        )
        await writer.drain()
        started = time.monotonic()
        fast = await asyncio.to_thread(hardened.session.get, hardened.admin_url("/health"), timeout=5)
        assert fast.status_code == 200
        fast_seconds = time.monotonic() - started
        answer = await asyncio.wait_for(reader.read(65536), timeout=10)
        writer.close()
        return answer, fast_seconds

    answer, fast_seconds = asyncio.run(slow_and_fast())
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"did not arrive" in answer
    assert fast_seconds < 1.0


def test_admin_token_guards_the_admin_api_only() -> None:
    with MockServer(Settings(port=0, apis=("customtrades",), admin_token="s3cret-admin")) as guarded:
        assert guarded.admin("GET", "/health").status_code == 401
        wrong = guarded.admin("GET", "/health", headers={"X-Admin-Token": "nope"})
        assert wrong.status_code == 401 and "s3cret" not in wrong.text
        ok = guarded.admin("GET", "/credentials", headers={"X-Admin-Token": "s3cret-admin"})
        assert ok.status_code == 200
        bearer = guarded.admin("GET", "/health", headers={"Authorization": "Bearer s3cret-admin"})
        assert bearer.status_code == 200
        key = ok.json()["customtrades"]["api_key"]
        vendor = guarded.session.get(
            guarded.url("customtrades", "/v1/customers"), headers={"Authorization": f"Bearer {key}"}
        )
        assert vendor.status_code == 200
