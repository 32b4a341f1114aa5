"""The console's server side (issue 19) over HTTP: the page and its files without the token, the
live event stream (guarded, per tenant, capped, ended by shutdown), one journal entry, and the
drift analysis of an uploaded HAR."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server.admin import DRIFT_MAX_BYTES, AdminRuntime, _Slots
from mock_server.errors import TooManyRequests
from mock_server.events import MAX_STREAMS
from mock_server.settings import Settings
from mock_server.testing import MockServer, TenantClient

TOKEN = "c0ns0le-t0ken-h5"
AUTH = {"X-Admin-Token": TOKEN}
HAR = Path(__file__).parents[1] / "drift" / "proxy_har_golden.har"


@pytest.fixture(scope="module")
def server() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, apis=("customtrades",), admin_token=TOKEN, seed=3)) as mock:
        yield mock


@pytest.fixture
def mock(server: MockServer) -> MockServer:
    server.admin("POST", "/reset", headers=AUTH)
    return server


class EventReader:
    """An open `GET <path>` event stream over a socket of its own: events as they arrive, read in
    a thread (chunked transfer coding undone, SSE lines parsed); `close` shuts the socket."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}\r\n".encode())
        self.file = self.sock.makefile("rb")
        status = self.file.readline().decode()
        self.status = int(status.split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().decode().strip()) != "":
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.body = b""
        if self.status != 200:
            self.body = self.file.read(int(self.headers.get("content-length", "0")))
        self.events: list[dict[str, Any]] = []
        self.ended = threading.Event()
        self.clean_end = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self._thread.start()

    def _chunks(self) -> Iterator[bytes]:
        while True:
            size = int(self.file.readline().split(b";")[0].strip() or b"x", 16)
            if size == 0:
                self.clean_end = True  # the last chunk: the server ended the stream
                return
            data = self.file.read(size)
            self.file.readline()
            yield data

    def _read(self) -> None:
        pending = b""
        event: dict[str, Any] = {}
        try:
            for chunk in self._chunks():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode()
                    if line == "":
                        with self._changed:
                            self.events.append({**event, "at": time.monotonic()})
                            self._changed.notify_all()
                        event = {}
                    elif line.startswith(":"):
                        event["comment"] = line[1:].strip()
                    else:
                        name, _, value = line.partition(": ")
                        event[name] = json.loads(value) if name == "data" else value
        except (OSError, ValueError):
            pass  # closed by `close`, or cut
        finally:
            with self._changed:
                self.ended.set()
                self._changed.notify_all()

    def wait_for(self, kind: str, timeout: float = 5.0, after: int = 0) -> dict[str, Any]:
        """The first event `kind` among those past the first `after`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events[after:]:
                    if event.get("event") == kind:
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.ended.is_set():
                    raise AssertionError(f"no {kind} event within {timeout} s; got {self.events[after:]}")
                self._changed.wait(left)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.file.close()
        self.sock.close()


@pytest.fixture
def open_streams() -> Iterator[list[EventReader]]:
    readers: list[EventReader] = []
    yield readers
    for reader in readers:
        reader.close()


def _stream(readers: list[EventReader], port: int, path: str, headers: dict[str, str] = AUTH) -> EventReader:
    reader = EventReader(port, path, headers)
    readers.append(reader)
    assert reader.status == 200, reader.body
    return reader


def _customers(mock: MockServer, base: str | None = None, key: str | None = None) -> requests.Response:
    if key is None:
        key = mock.admin("GET", "/credentials", headers=AUTH).json()["customtrades"]["api_key"]
    url = f"{base}/customtrades/v1/customers?limit=1" if base else mock.url("customtrades", "/v1/customers?limit=1")
    return requests.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


# -- the page and its files ------------------------------------------------------------------------
def test_the_console_page_needs_no_token(mock: MockServer) -> None:
    page = requests.get(mock.admin_url("/console"), timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    assert page.text.lstrip().lower().startswith("<!doctype html")
    assert requests.get(mock.admin_url("/requests"), timeout=10).status_code == 401  # its data calls are guarded


def test_console_files_are_served_by_extension_and_nothing_else(mock: MockServer) -> None:
    index = requests.get(mock.admin_url("/console/index.html"), timeout=10)
    assert index.status_code == 200 and index.headers["Content-Type"].startswith("text/html")
    assert index.headers["Cache-Control"] == "no-cache"
    console_dir = Path(__file__).parents[2] / "mock_server" / "console"
    for path in console_dir.iterdir():
        if path.suffix in (".js", ".css") and path.is_file() and not path.name.startswith("."):
            answer = requests.get(mock.admin_url(f"/console/{path.name}"), timeout=10)
            expected = "application/javascript" if path.suffix == ".js" else "text/css"
            assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(expected)
            assert answer.content == path.read_bytes()
    for name in ("..%2Fadmin.py", "%2E%2E%2F%2E%2E%2Fpyproject.toml", ".hidden", "no-such.js",
                 "index.html%00.js", "sub%2Findex.html", "..%5Cadmin.py"):
        refused = requests.get(mock.admin_url(f"/console/{name}"), timeout=10)
        assert refused.status_code == 404, f"{name}: {refused.status_code}"
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.json()["status"] == 404


def test_a_tenant_has_the_console_at_its_admin_base(mock: MockServer) -> None:
    tenant = TenantClient(mock, mock.admin("POST", "/tenants", headers=AUTH, json={}).json())
    try:
        page = requests.get(f"{tenant.base_url}/__admin/console", timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    finally:
        mock.admin("DELETE", f"/tenants/{tenant.id}", headers=AUTH)


# -- GET /__admin/requests/{id} ----------------------------------------------------------------------
def test_get_request_is_the_entry_as_listed_or_404(mock: MockServer) -> None:
    assert _customers(mock).status_code == 200
    listed = mock.admin("GET", "/requests", headers=AUTH).json()
    assert len(listed) == 1
    one = mock.admin("GET", f"/requests/{listed[0]['id']}", headers=AUTH)
    assert one.status_code == 200 and one.json() == listed[0]
    assert one.json()["request"]["headers"]["Authorization"] == "***"
    missing = mock.admin("GET", f"/requests/{listed[0]['id'] + 1}", headers=AUTH)
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/problem+json"
    assert mock.admin("GET", "/requests/abc", headers=AUTH).status_code == 400
    assert mock.admin("GET", f"/requests/{listed[0]['id']}").status_code == 401


# -- GET /__admin/events ---------------------------------------------------------------------------
def test_a_new_request_reaches_the_stream_within_a_second(mock: MockServer, open_streams: list[EventReader]) -> None:
    reader = _stream(open_streams, mock.port, "/__admin/events")
    assert reader.headers["content-type"].startswith("text/event-stream")
    assert reader.headers["cache-control"] == "no-cache"
    clock = reader.wait_for("clock")
    assert set(clock["data"]) == {"now", "frozen"}
    seen = len(reader.events)
    answered = _customers(mock)
    done = time.monotonic()
    event = reader.wait_for("requests", timeout=2, after=seen)
    assert event["at"] - done < 1.0
    [entry] = event["data"]["entries"]
    assert entry == {
        "id": entry["id"], "time": entry["time"], "api": "customtrades", "operation_id": "listCustomers",
        "method": "GET", "path": "/v1/customers", "status": answered.status_code,
        "duration_ms": entry["duration_ms"], "violations": 0,
    }
    assert event["id"] == str(entry["id"])
    assert mock.admin("GET", f"/requests/{entry['id']}", headers=AUTH).json()["time"] == entry["time"]


def test_without_since_only_new_traffic_with_since_zero_the_backlog(
    mock: MockServer, open_streams: list[EventReader]
) -> None:
    for _ in range(3):
        _customers(mock)
    ids = [e["id"] for e in mock.admin("GET", "/requests", headers=AUTH).json()]
    backlog = _stream(open_streams, mock.port, "/__admin/events?since=0")
    first = backlog.wait_for("requests")
    assert [e["id"] for e in first["data"]["entries"]] == ids
    live = _stream(open_streams, mock.port, "/__admin/events")
    live.wait_for("clock")
    time.sleep(0.6)  # a few polls: nothing old arrives
    assert not [e for e in live.events if e.get("event") == "requests"]
    after = _stream(open_streams, mock.port, f"/__admin/events?since={ids[1]}")
    assert [e["id"] for e in after.wait_for("requests")["data"]["entries"]] == ids[2:]


def test_clearing_the_journal_sends_reset(mock: MockServer, open_streams: list[EventReader]) -> None:
    reader = _stream(open_streams, mock.port, "/__admin/events")
    _customers(mock)
    reader.wait_for("requests")
    seen = len(reader.events)
    assert mock.admin("DELETE", "/requests", headers=AUTH).status_code == 204
    _customers(mock)  # right after the clear, likely within the same poll
    reset = reader.wait_for("reset", after=seen)
    assert reset["data"] == {}
    fresh = reader.wait_for("requests", after=reader.events.index(reset))
    assert len(fresh["data"]["entries"]) == 1


def test_the_stream_needs_the_token(mock: MockServer) -> None:
    for headers in ({}, {"X-Admin-Token": "wrong"}, {"Authorization": "Bearer wrong"}):
        refused = requests.get(mock.admin_url("/events"), headers=headers, timeout=10)
        assert refused.status_code == 401 and refused.headers["Content-Type"] == "application/problem+json"
        assert TOKEN not in refused.text
    bad = requests.get(mock.admin_url("/events?since=-1"), headers=AUTH, timeout=10)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "query.since"
    assert requests.post(mock.admin_url("/events"), headers=AUTH, timeout=10).status_code == 405


def test_a_tenant_stream_sees_its_own_traffic_with_its_own_token_only(
    mock: MockServer, open_streams: list[EventReader]
) -> None:
    made = [TenantClient(mock, mock.admin("POST", "/tenants", headers=AUTH, json={}).json()) for _ in range(2)]
    one, two = made
    try:
        refused = requests.get(f"{one.base_url}/__admin/events", headers={"X-Admin-Token": two.admin_token}, timeout=10)
        assert refused.status_code == 401
        server_level = requests.get(mock.admin_url("/events"), headers={"X-Admin-Token": one.admin_token}, timeout=10)
        assert server_level.status_code == 401
        reader = _stream(open_streams, mock.port, f"/t/{one.id}/__admin/events", {"X-Admin-Token": one.admin_token})
        default = _stream(open_streams, mock.port, "/__admin/events")
        reader.wait_for("clock")
        default.wait_for("clock")
        key_two = two.credentials["customtrades"]["api_key"]
        assert _customers(mock, two.base_url, key_two).status_code == 200  # another tenant's traffic
        key_one = one.credentials["customtrades"]["api_key"]
        assert _customers(mock, one.base_url, key_one).status_code == 200
        [entry] = reader.wait_for("requests")["data"]["entries"]
        assert entry["id"] == 1  # tenant one's journal: one entry
        time.sleep(0.6)
        assert sum(len(e["data"]["entries"]) for e in reader.events if e.get("event") == "requests") == 1
        assert not [e for e in default.events if e.get("event") == "requests"]  # the default world saw none
    finally:
        for tenant in made:
            mock.admin("DELETE", f"/tenants/{tenant.id}", headers=AUTH)


def _raw_stream(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Admin-Token: {TOKEN}\r\n\r\n".encode())
    head = sock.recv(4096)
    if not head.startswith(b"HTTP/1.1 200"):
        sock.close()
        raise AssertionError(head[:300])
    return sock


def _open_streams(mock: MockServer) -> int:
    admin = mock.services.runtimes["__admin"]
    assert isinstance(admin, AdminRuntime)
    return admin.streams.count(mock.services)


def _wait_for_no_streams(mock: MockServer) -> None:
    deadline = time.monotonic() + 5  # a closed stream is noticed at its next poll (250 ms)
    while _open_streams(mock) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _open_streams(mock) == 0


def test_at_most_32_streams_per_tenant_then_429(mock: MockServer) -> None:
    _wait_for_no_streams(mock)  # those of earlier tests
    sockets: list[socket.socket] = []
    try:
        for _ in range(MAX_STREAMS):
            sockets.append(_raw_stream(mock.port, "/__admin/events"))
        refused = requests.get(mock.admin_url("/events"), headers=AUTH, timeout=10)
        assert refused.status_code == 429 and refused.headers["Content-Type"] == "application/problem+json"
        assert "at most 32" in refused.json()["detail"]
        tenant = TenantClient(mock, mock.admin("POST", "/tenants", headers=AUTH, json={}).json())
        try:  # another tenant's allowance is its own
            with requests.get(f"{tenant.base_url}/__admin/events", headers={"X-Admin-Token": tenant.admin_token},
                              stream=True, timeout=10) as other:
                assert other.status_code == 200
        finally:
            mock.admin("DELETE", f"/tenants/{tenant.id}", headers=AUTH)
    finally:
        for sock in sockets:
            sock.close()
    _wait_for_no_streams(mock)  # the client went away: each stream stopped and gave its place back


def test_streams_end_cleanly_when_the_server_stops() -> None:
    server = MockServer(Settings(port=0, apis=("customtrades",))).start()
    try:
        readers = [EventReader(server.port, "/__admin/events", {}) for _ in range(3)]
        for reader in readers:
            reader.wait_for("clock")
    finally:
        started = time.monotonic()
        server.stop()
        stopped = time.monotonic() - started
    assert stopped < 5, f"shutdown waited {stopped:.1f} s for the streams"
    for reader in readers:
        assert reader.ended.wait(5) and reader.clean_end  # the stream was ended (last chunk), not cut
        reader.close()


# -- POST /__admin/drift ---------------------------------------------------------------------------
def test_drift_answers_the_report_as_json_and_html(mock: MockServer) -> None:
    har = HAR.read_bytes()
    report = requests.post(mock.admin_url("/drift"), headers=AUTH, data=har, timeout=60)
    assert report.status_code == 200 and report.headers["Content-Type"] == "application/json"
    body = report.json()
    assert body["exchanges"] == len(json.loads(har)["log"]["entries"]) and body["replayed"] is False
    assert {"summary", "findings", "coverage"} <= set(body) and body["source"] == "the uploaded HAR"
    page = requests.post(mock.admin_url("/drift?format=html&replay=true"), headers=AUTH, data=har, timeout=120)
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.text.lstrip().lower().startswith("<!doctype html") and "Drift report" in page.text
    assert mock.admin("GET", "/requests", headers=AUTH).json() == []  # not vendor traffic


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "required"),
        (b"not json at all", "not a HAR"),
        (b'{"log": {"version": "1.2"}}', "entries"),
        (b"\xff\xfe{", "HAR"),
        (b"[1, 2]", "HAR"),
    ],
)
def test_drift_refuses_an_unusable_har_with_400(mock: MockServer, body: bytes, says: str) -> None:
    refused = requests.post(mock.admin_url("/drift"), headers=AUTH, data=body, timeout=60)
    assert refused.status_code == 400, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert says in refused.json()["detail"] and "/tmp" not in refused.text


def test_drift_needs_the_token_and_valid_options(mock: MockServer) -> None:
    har = HAR.read_bytes()
    assert requests.post(mock.admin_url("/drift"), data=har, timeout=60).status_code == 401
    bad = requests.post(mock.admin_url("/drift?format=pdf"), headers=AUTH, data=har, timeout=60)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "query.format"
    assert requests.get(mock.admin_url("/drift"), headers=AUTH, timeout=10).status_code == 405


def test_drift_refuses_a_har_over_32_mib_with_413(mock: MockServer) -> None:
    with socket.create_connection(("127.0.0.1", mock.port), timeout=10) as sock:  # announced: refused unread
        sock.sendall(
            f"POST /__admin/drift HTTP/1.1\r\nHost: x\r\nX-Admin-Token: {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {DRIFT_MAX_BYTES + 1}\r\n\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")

    def chunks() -> Iterator[bytes]:  # chunked, no length: refused once past the cap
        piece = b" " * (1 << 20)
        for _ in range(DRIFT_MAX_BYTES // len(piece) + 2):
            yield piece

    try:
        answer = requests.post(mock.admin_url("/drift"), headers=AUTH, data=chunks(), timeout=60)
    except requests.ConnectionError:  # the server answered and closed while the client still sent
        return
    assert answer.status_code == 413 and answer.json()["status"] == 413


def test_deleting_a_tenant_ends_its_streams(mock: MockServer, open_streams: list[EventReader]) -> None:
    tenant = TenantClient(mock, mock.admin("POST", "/tenants", headers=AUTH, json={}).json())
    reader = _stream(open_streams, mock.port, f"/t/{tenant.id}/__admin/events", {"X-Admin-Token": tenant.admin_token})
    reader.wait_for("clock")
    assert mock.admin("DELETE", f"/tenants/{tenant.id}", headers=AUTH).status_code == 204
    assert reader.ended.wait(3) and reader.clean_end


def test_at_most_two_drift_analyses_run_at_once() -> None:
    slots = _Slots(2)
    with slots.take(), slots.take(), pytest.raises(TooManyRequests, match="at most 2"):
        slots.take().__enter__()
    with slots.take():  # given back
        assert slots.taken == 1


def test_head_of_the_stream_answers_its_headers_and_ends(mock: MockServer) -> None:
    answer = requests.head(mock.admin_url("/events"), headers=AUTH, timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
    _wait_for_no_streams(mock)


def test_drift_and_the_stream_are_not_in_the_state_log(tmp_path: Path) -> None:
    from mock_server.persistence import read_segments

    state = tmp_path / "state"
    with MockServer(Settings(port=0, apis=("customtrades",), state_file=state)) as durable:
        reader = EventReader(durable.port, "/__admin/events?since=0", {})
        try:
            reader.wait_for("clock")
            assert requests.post(durable.admin_url("/drift"), data=HAR.read_bytes(), timeout=60).status_code == 200
            assert durable.admin("POST", "/clock", json={"advance": 60}).status_code == 200  # a logged change
            logged = [(entry.method, entry.path) for _, _, entry in read_segments(state / "default", -1)]
        finally:
            reader.close()
    assert logged == [("POST", "/clock")]
