"""The HAR the proxy (and `contracts --har`) writes keeps its format byte for byte:
`proxy_har_golden.har` was written by the implementation before the proxy's speed-up (issue 15,
commit 0380394) from the exchanges below, and the writer must still produce exactly that file;
and the journal shows the proxy's headers redacted, though it no longer redacts them per exchange."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from mock_server.drift.har import HarReader, HarWriter, build_entry, dump_entry
from mock_server.proxy.app import RedactedHeaders
from mock_server.proxy.testing import ProxyServer
from mock_server.settings import Settings
from mock_server.testing import MockServer

GOLDEN = Path(__file__).with_name("proxy_har_golden.har")
VIOLATION = {
    "direction": "response",
    "kind": "undocumented_field",
    "message": 'field "x" is not documented',
    "pointer": "/x",
    "location": "openapi/loke.yaml#/x",
    "provenance": "assumed",
}
EXCHANGES: list[dict[str, Any]] = [
    {  # secrets in the query, headers and a JSON body (re-serialised); a body without any (kept exactly)
        "started": "2026-12-04T10:00:00.000Z",
        "duration_ms": 1.23456,
        "method": "POST",
        "url": "https://api.example/v1/login?user=a%20b&token=s3cr3t&x=%2A*",
        "request_headers": [
            ("Authorization", "Bearer ctc_live_x"),
            ("X-API-Key", "k"),
            ("Content-Type", "application/json"),
        ],
        "request_body": b'{"email":"a@b.c","password":"hunter2","nested":{"apiKey":"k","needs_password_change":true},'
        b'"n":1.50}',
        "status": 200,
        "status_text": "OK",
        "response_headers": [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Set-Cookie", "s=1"),
            ("X-Note", "é"),
        ],
        "response_body": '{ "token" : "abc", "name":"é\\u00e9", "list":[1, 2.0] }'.encode(),
        "extra": {"_api": "loke", "_path": "/v1/login", "_operationId": "login", "_violations": [VIOLATION]},
    },
    {  # nothing secret: the vendor's exact text, odd spacing included
        "started": "2026-12-04T10:00:01.000Z",
        "duration_ms": 0.5,
        "method": "GET",
        "url": "http://h/v1/customers?limit=5",
        "request_headers": [("Accept", "*/*")],
        "request_body": b"",
        "status": 200,
        "status_text": "OK",
        "response_headers": [("Content-Type", "application/json")],
        "response_body": b'{"success" : true,\n "data":{"customers":[]}}  ',
        "extra": None,
    },
    {  # a form body with a secret; a secret name spelt with a JSON escape
        "started": "2026-12-04T10:00:02.000Z",
        "duration_ms": 10,
        "method": "POST",
        "url": "http://h/oauth/token",
        "request_headers": [("Content-Type", "application/x-www-form-urlencoded")],
        "request_body": b"grant_type=client_credentials&client_secret=zz&scope=a+b",
        "status": 401,
        "status_text": "Unauthorized",
        "response_headers": [("Content-Type", "application/problem+json")],
        "response_body": b'{"pass\\u0077ord":"x","detail":"no"}',
        "extra": {"_source": "loyalty-contract-suite"},
    },
    {  # bytes that are not UTF-8 (base64), an empty query, no answer body
        "started": "2026-12-04T10:00:03.000Z",
        "duration_ms": 2,
        "method": "PUT",
        "url": "http://h/img?",
        "request_headers": [("Content-Type", "application/octet-stream")],
        "request_body": b"\xff\x00\x01",
        "status": 204,
        "status_text": "No Content",
        "response_headers": [],
        "response_body": b"",
        "extra": {},
    },
]


def test_the_writer_produces_the_golden_file_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "now.har"
    writer = HarWriter(path)
    for exchange in EXCHANGES:
        writer.append(build_entry(**exchange))
    writer.close()
    assert path.read_bytes() == GOLDEN.read_bytes()
    text = GOLDEN.read_text(encoding="utf-8")
    for secret in ("ctc_live_x", "s3cr3t", "hunter2", '"abc"', "s=1", "client_secret=zz", '"x","detail"'):
        assert secret not in text


def test_a_string_orjson_refuses_is_still_written_as_json() -> None:
    entry = {"text": "\udcff lone surrogate", "n": 1}  # a header value decoded with surrogateescape
    assert json.loads(dump_entry(entry)) == entry


def test_the_journal_shows_the_proxys_headers_redacted() -> None:
    shown = RedactedHeaders([("Authorization", "Bearer abc"), ("X-CAP-API-AUTH-KEY", "k"), ("X-Trace", "t")])
    assert dict(shown.items()) == {"Authorization": "Bearer ***", "X-CAP-API-AUTH-KEY": "***", "X-Trace": "t"}
    assert (
        len(shown) == 3
        and shown["X-Trace"] == "t"
        and list(shown) == ["Authorization", "X-CAP-API-AUTH-KEY", "X-Trace"]
    )
    with MockServer(Settings(port=0, seed=0)) as mock, ProxyServer({"capillary": mock.url("capillary")}) as proxy:
        requests.get(
            f"{proxy.base_url}/v2/extendedFields",
            headers={"X-CAP-API-AUTH-KEY": "capillary-secret-key", "X-CAP-API-AUTH-ORG-ID": "1"},
            timeout=10,
        )
        journal = requests.get(f"{proxy.base_url}/__admin/requests", timeout=10).json()
    assert "capillary-secret-key" not in json.dumps(journal)
    assert journal[-1]["request"]["headers"]["X-CAP-API-AUTH-KEY"] == "***"


def test_the_golden_file_reads_back() -> None:
    entries = list(HarReader(str(GOLDEN)))
    assert [e["response"]["status"] for e in entries] == [200, 200, 401, 204]
