"""Hardening II (issue 17): strings that are not UTF-8 text, a journal that must render what it
kept, the HTTP parser's own refusals, and an admin token that guards every admin path and method.
Each answer is checked on the wire, in the vendor's own envelope."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from mock_server.dispatcher import dump_json
from mock_server.settings import Settings
from mock_server.spec import load_document
from mock_server.testing import MockServer
from tests.integration.auth_headers import auth_headers


@pytest.fixture(scope="module")
def mock() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, strict=True, customtrades_quota=0, capillary_rpm=0, seed=17)) as server:
        yield server


def _raw(port: int, data: bytes, pause_after: int | None = None) -> bytes:
    """Send `data` (in two parts, `pause_after` bytes first, when given) and read until closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if pause_after is None:
            sock.sendall(data)
        else:
            sock.sendall(data[:pause_after])
            time.sleep(0.3)
            sock.sendall(data[pause_after:])
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return received
            received += chunk


def _split(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return status_line, headers, body


def _ct_customers(mock: MockServer) -> list[dict[str, Any]]:
    headers = auth_headers("customtrades", mock.credentials_cache())
    listed = mock.session.get(mock.url("customtrades", "/v1/customers?limit=100&include_deleted=true"), headers=headers)
    assert listed.status_code == 200, listed.text
    customers: list[dict[str, Any]] = listed.json()["data"]["customers"]
    return customers


# 1. strings that are not UTF-8 text ------------------------------------------------------------
def test_the_reported_lone_surrogate_is_refused_naming_the_field_and_nothing_is_stored(mock: MockServer) -> None:
    before = _ct_customers(mock)
    headers = {**auth_headers("customtrades", mock.credentials_cache()), "Content-Type": "application/json"}
    answer = mock.session.post(
        mock.url("customtrades", "/v1/customers"), data=b'{"first_name": "lone\\ud800", "last_name": "x"}',
        headers=headers,
    )
    assert answer.status_code == 400 and answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert body["success"] is False and "first_name" in body["error"] and "UTF-8" in body["error"]
    assert [d["field"] for d in body["details"]] == ["first_name"]
    assert _ct_customers(mock) == before


def _loke_webhook(mock: MockServer, secret: str) -> tuple[str, Any]:
    org = mock.credentials_cache()["loke"]["organization_id"]
    body = {"url": "http://127.0.0.1:9/hook", "events": ["customer.created"], "secret": secret}
    return f"/organizations/{org}/webhooks/h17", body


@pytest.mark.parametrize(
    ("slug", "method", "path", "body", "field"),
    [
        ("customtrades", "POST", "/v1/customers", {"first_name": "a", "last_name": "b", "\udc80k": "v"}, "\\udc80k"),
        ("customtrades", "POST", "/v1/customers", {"first_name": "a", "last_name": ["\udfff"]}, "last_name[0]"),
        ("capillary", "POST", "/v2/customers?source=INSTORE",
         {"profiles": [{"firstName": "x\ud800", "identifiers": [{"type": "mobile", "value": "27710000999"}]}]},
         "profiles[0].firstName"),
        ("letstrade-channels", "POST", "/user/sign_in", {"email": "a\ud800@example.com", "password": "x"}, "email"),
        ("letstrade-pos", "POST", "/user/sign_in", {"email": "a@example.com", "password": "\udbff"}, "password"),
        ("loke", "PUT", None, None, "secret"),
        ("admin", "POST", "/faults", {"api": "customtrades\ud800", "status": 503}, "api"),
    ],
    ids=["customtrades-key", "customtrades-array", "capillary", "channels", "pos", "loke", "admin"],
)
def test_a_lone_surrogate_anywhere_in_a_json_body_is_a_400_naming_it_on_every_api(
    mock: MockServer, slug: str, method: str, path: str | None, body: Any, field: str
) -> None:
    if slug == "loke":
        path, body = _loke_webhook(mock, "whsec\udfff")
    assert path is not None
    url = mock.admin_url(path) if slug == "admin" else mock.url(slug, path)
    headers = {**auth_headers(slug, mock.credentials_cache()), "Content-Type": "application/json"}
    answer = mock.session.request(method, url, data=json.dumps(body).encode(), headers=headers)
    assert answer.status_code == 400, answer.text
    envelope = answer.json()
    text = json.dumps(envelope, ensure_ascii=False)
    assert field in text and "UTF-8" in text
    if slug == "admin":
        assert envelope["status"] == 400 and answer.headers["Content-Type"] == "application/problem+json"
        assert mock.admin("GET", "/faults").json() == []
    elif slug == "capillary":
        assert all(error["status"] is False for error in envelope["errors"])
    elif slug == "loke":
        assert envelope["type"] == "validation_error"
        listed = mock.session.get(url.rsplit("/", 1)[0], headers=headers)
        assert listed.status_code == 200 and "h17" not in listed.text
    else:
        assert envelope["success"] is False


def test_a_form_field_that_is_not_utf8_text_is_refused_by_name_at_the_loke_token_endpoint(mock: MockServer) -> None:
    answer = mock.session.post(
        mock.url("loke", "/auth/token"),
        data=b"grant_type=client_credentials&client_id=%ED%A0%80&client_secret=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request" and "client_id" in answer.json()["error_description"]


def test_header_bytes_that_are_not_utf8_are_refused_not_a_500(mock: MockServer) -> None:
    creds = mock.credentials_cache()
    capillary = {**auth_headers("capillary", creds), "Content-Type": "application/json"}
    param = mock.session.post(
        mock.url("capillary", "/v2/customers?source=INSTORE"),
        data=b'{"profiles": [{"identifiers": [{"type": "mobile", "value": "27710000998"}]}]}',
        headers={**capillary, "USER-CONTEXT-ENTITY-TYPE": b"\xed\xa0\x80"},
    )
    assert param.status_code == 400 and "USER-CONTEXT-ENTITY-TYPE" in param.text, param.text
    bearer = mock.session.get(mock.url("customtrades", "/v1/customers"), headers={"Authorization": b"Bearer \xff\xfe"})
    assert bearer.status_code == 401 and bearer.json()["success"] is False
    # "Basic ü" is valid UTF-8 but not base64: LOKE's token endpoint answered 500 (ValueError)
    basic = mock.session.post(
        mock.url("loke", "/auth/token"), data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic \u00fc".encode()},
    )
    assert basic.status_code == 401 and basic.json()["error"] == "invalid_client"
    capillary_basic = mock.session.get(
        mock.url("capillary", "/v2/extendedFields"), headers={"Authorization": "Basic \u00fc".encode()}
    )
    assert capillary_basic.status_code == 401
    assert mock.admin("GET", "/requests").status_code == 200  # the journal shows those headers


def test_the_encoder_never_raises_on_what_a_store_holds() -> None:
    for value in ({"a": "lone\ud800", "b": "é", "\udfff": ["\x00\ufffe"]}, {10**40: 1}, [[["x"]]] * 3):
        json.loads(dump_json(value))
    assert json.loads(dump_json({"name": "lone\ud800é"})) == {"name": "lone\ud800é"}
    deep: list[Any] = []
    node = deep
    for _ in range(5_000):
        node.append([])
        node = node[0]
    assert isinstance(json.loads(dump_json(deep)), str)  # said, not raised


def test_a_store_holding_a_lone_surrogate_still_renders_and_survives_a_restart(tmp_path: Path) -> None:
    """Defence in depth: a string that got in by a path the API checks do not cover (the
    `--fixtures` file is YAML, whose escapes can make one) still lists, before and after restart."""
    fixtures = tmp_path / "fixtures.yaml"
    fixtures.write_text('customtrades:\n  customers:\n    - {first_name: "lone\\ud800", last_name: "x"}\n')
    assert yaml.safe_load(fixtures.read_text())["customtrades"]["customers"][0]["first_name"] == "lone\ud800"
    settings = Settings(port=0, strict=True, state_file=tmp_path / "state.db", fixtures=fixtures, seed=3)
    for _ in range(2):  # the second start restores the state file
        with MockServer(settings) as server:
            names = [c["first_name"] for c in _ct_customers(server)]
            assert "lone\ud800" in names
            assert server.admin("GET", "/requests").status_code == 200


# 2. the journal renders every body it kept -------------------------------------------------------
def test_the_journal_renders_a_10000_deep_body_it_kept(mock: MockServer) -> None:
    headers = {**auth_headers("customtrades", mock.credentials_cache()), "Content-Type": "application/json"}
    deep = mock.session.post(mock.url("customtrades", "/v1/customers"), data=b"[" * 10_000 + b"]" * 10_000,
                             headers=headers)
    assert deep.status_code == 400
    moderately = mock.session.post(mock.url("customtrades", "/v1/customers"), data=b"[" * 500 + b"]" * 500,
                                   headers=headers)
    assert moderately.status_code == 400
    journal = mock.admin("GET", "/requests", params={"api": "customtrades"})
    assert journal.status_code == 200, journal.text
    bodies = [entry["request"]["body"] for entry in journal.json()[-2:]]
    assert all(isinstance(body, str) and body.startswith("[[[[") for body in bodies)


# 3. the HTTP parser's own refusals, in the vendor's envelope ---------------------------------------
_HOST = b"Host: x\r\nConnection: close\r\n"
_POST = b"POST /customtrades/v1/customers HTTP/1.1\r\n" + _HOST + b"Content-Type: application/json\r\n"
PARSER_CASES = {
    "too-many-headers": (b"GET /customtrades/v1/customers HTTP/1.1\r\n" + _HOST
                         + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n", "headers"),
    "two-content-types": (_POST + b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", "header.Content-Type"),
    "length-and-chunked": (_POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                           "header.Transfer-Encoding"),
    "malformed-chunk": (_POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", "body"),
    "two-content-lengths": (_POST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "header.Content-Length"),
    "bad-header-char": (b"GET /customtrades/v1/customers HTTP/1.1\r\n" + _HOST
                        + b"Authorization: Bearer s3cret\x01tail\r\n\r\n", "header.Authorization"),
    "raw-byte-in-path": (b"GET /customtrades/v1/customers/\xff HTTP/1.1\r\n" + _HOST + b"\r\n", "path"),
    "bad-version": (b"GET /customtrades/v1/customers HTTP/9.9\r\n" + _HOST + b"\r\n", "request_line"),
}


@pytest.mark.parametrize("case", sorted(PARSER_CASES))
def test_the_http_parsers_refusals_are_http11_in_the_vendor_envelope(mock: MockServer, case: str) -> None:
    before = len(_ct_customers(mock))
    data, field = PARSER_CASES[case]
    status_line, headers, body = _split(_raw(mock.port, data))
    assert status_line == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    envelope = json.loads(body)
    assert envelope["success"] is False and [d["field"] for d in envelope["details"]] == [field]
    assert b"s3cret" not in body  # the parser quotes the offending line: never echoed
    assert len(_ct_customers(mock)) == before


def test_a_malformed_chunk_after_the_headers_is_answered_at_once_and_only_once(mock: MockServer) -> None:
    auth = auth_headers("customtrades", mock.credentials_cache())["Authorization"].encode()
    head = _POST + b"Authorization: " + auth + b"\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"
    started = time.monotonic()
    answer = _raw(mock.port, head + b"zz\r\n0\r\n\r\n", pause_after=len(head))
    assert time.monotonic() - started < 5  # not the 30 s body timeout
    status_line, headers, body = _split(answer)
    assert status_line == "HTTP/1.1 400 Bad Request" and headers["connection"] == "close"
    assert json.loads(body)["details"][0]["field"] == "body"  # one answer: nothing follows its body
    assert mock.admin("GET", "/health").status_code == 200


def test_a_header_value_with_a_control_character_is_refused_naming_the_header_not_its_value(
    mock: MockServer,
) -> None:
    """Found by the string sweep: a NUL in a header value is refused by the HTTP parser, which does
    not say which header; the refusal names it from the bytes received (never the value)."""
    request = (
        b"PUT /capillary/v2/customers/1?source=INSTORE HTTP/1.1\r\n" + _HOST + b"\r\n"
        b"USER-CONTEXT-ENTITY-TYPE: secret\x00value\r\nContent-Length: 0\r\n\r\n"
    )
    status_line, headers, body = _split(_raw(mock.port, request))
    assert status_line == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/json"
    message = json.loads(body)["errors"][0]["message"]  # Capillary's envelope
    assert message.startswith("header.USER-CONTEXT-ENTITY-TYPE: holds a control character"), message
    assert "secret" not in body.decode("latin-1")


def test_a_url_over_the_parsers_own_limit_is_a_414_in_the_apis_envelope(mock: MockServer) -> None:
    """Found by the string sweep: a URL longer than aiohttp's line limit arrives in several reads
    and was answered in problem+json (the request line had left the last reads seen)."""
    url = b"/loke/organizations/" + b"%C3%A9" * 40_000
    status_line, headers, body = _split(_raw(mock.port, b"GET " + url + b" HTTP/1.1\r\n" + _HOST + b"\r\n"))
    assert status_line == "HTTP/1.1 414 Request-URI Too Long"
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["type"] == "uri_too_long"  # LOKE's envelope: {message, type}


@pytest.mark.parametrize(
    ("request_line", "status"),
    [(b"CONNECT example.com:443 HTTP/1.1", "405 Method Not Allowed"), (b"OPTIONS * HTTP/1.1", "400 Bad Request")],
)
def test_connect_and_options_star_are_answered_in_problem_json(
    mock: MockServer, request_line: bytes, status: str
) -> None:
    status_line, headers, body = _split(_raw(mock.port, request_line + b"\r\n" + _HOST + b"\r\n"))
    assert status_line == f"HTTP/1.1 {status}"
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == int(status[:3])


def test_a_single_api_at_the_root_answers_parser_refusals_in_its_own_envelope() -> None:
    with MockServer(Settings(port=0, apis=("capillary",))) as server:
        request = b"POST /v2/customers HTTP/1.1\r\n" + _HOST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
        status_line, headers, body = _split(_raw(server.port, request))
        assert status_line == "HTTP/1.1 400 Bad Request" and headers["content-type"] == "application/json"
        assert json.loads(body)["errors"][0]["status"] is False
        assert "Content-Length" in json.loads(body)["errors"][0]["message"]


def test_an_internal_error_says_500_in_its_problem_body() -> None:
    with MockServer(Settings(port=0, apis=("customtrades",))) as server:

        def broken(*_args: Any) -> Any:
            raise RuntimeError("boom")

        server.services.runtimes["__admin"].definition.handlers["health"] = broken
        answer = server.admin("GET", "/health")
        assert answer.status_code == 500 and answer.json()["status"] == 500 and answer.json()["title"] != "Bad Request"


# 4. the admin token guards every admin path and method --------------------------------------------
_TOKEN = "adm1n-t0ken-h17"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND")


def _admin_paths() -> list[str]:
    paths = [path.replace("{", "").replace("}", "") for path in load_document("admin")["paths"]]
    # the console page and its static files hold no data and are public by design (like the docs
    # pages); every call the page makes is guarded: tests/integration/test_console_api.py
    paths = [path for path in paths if path not in ("/console", "/console/file")]
    return [*paths, "/no-such-admin-path", "/", "", "/docs-static/swagger-ui.css", "/docs-static/..%2F..%2Fsecrets",
            "/docs-static/index.html"]


@pytest.fixture(scope="module")
def guarded() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, admin_token=_TOKEN, seed=5)) as server:
        yield server


@pytest.mark.parametrize("path", _admin_paths())
def test_every_admin_path_and_method_needs_the_token(guarded: MockServer, path: str) -> None:
    secrets_ = guarded.admin("GET", "/credentials", headers={"X-Admin-Token": _TOKEN}).json()
    leaks = {str(value) for api in secrets_.values() if isinstance(api, dict) for value in api.values()
             if isinstance(value, str) and len(value) >= 8}
    for method in _METHODS:
        for headers in ({}, {"X-Admin-Token": "wrong"}, {"Authorization": "Bearer wrong"}):
            answer = requests.request(method, guarded.admin_url(path), headers=headers, timeout=10,
                                      data=b"{}" if method in ("POST", "PUT", "PATCH") else None)
            assert answer.status_code == 401, f"{method} /__admin{path}: {answer.status_code} {answer.text[:200]}"
            if method != "HEAD":
                assert answer.headers["Content-Type"] == "application/problem+json"
                assert answer.json()["status"] == 401
            assert not any(secret in answer.text for secret in leaks)
