"""`--har FILE` (also `--lcs-har`): record every exchange the suite has with a target as HAR 1.2,
secrets redacted, so a run against a vendor's sandbox feeds `loyalty-mock drift` directly.

Every request the suite sends to a target goes through `contracts.http.TargetSession.send`
(schemathesis' calls, the checks' replays, the state machines), so the recorder wraps that one
method for the session and restores it at the end; the mock's admin calls (resets) are not
recorded. Each exchange is appended at once through `mock_server.drift.har.HarWriter`: the file
is a complete HAR after every entry. Under pytest-xdist each worker writes its own file
(`FILE.gw0.har`, ...), as one file cannot take several writers.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from contracts.http import TargetSession
from mock_server.drift.har import HarWriter, build_entry

_DECODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def worker_path(path: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return path
    target = Path(path)
    return str(target.with_name(f"{target.stem}.{worker}{target.suffix or '.har'}"))


class HarRecorder:
    def __init__(self, path: str) -> None:
        self.path = worker_path(path)
        self.writer = HarWriter(self.path)
        self._lock = threading.Lock()
        self._original: Any = None

    def record(self, response: requests.Response) -> None:
        request = response.request
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):  # a stream: not replayable, recorded empty
            body = b""
        elapsed = response.elapsed.total_seconds()
        started = datetime.now(UTC) - timedelta(seconds=elapsed)
        entry = build_entry(
            started=started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            duration_ms=elapsed * 1000,
            method=str(request.method),
            url=str(request.url),
            request_headers=[(k, str(v)) for k, v in request.headers.items()],
            request_body=body,
            status=response.status_code,
            status_text=response.reason or "",
            # requests hands over the body decoded: the encoding headers no longer describe it
            response_headers=[(k, v) for k, v in response.headers.items() if k.lower() not in _DECODED],
            response_body=response.content,
            extra={"_source": "loyalty-contract-suite"},
        )
        with self._lock:
            self.writer.append(entry)

    def install(self) -> None:
        original = TargetSession.send
        recorder = self

        def send(session: TargetSession, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            response = original(session, request, **kwargs)
            recorder.record(response)
            return response

        self._original = original
        TargetSession.send = send  # type: ignore[method-assign]

    def close(self) -> None:
        if self._original is not None:
            TargetSession.send = self._original  # type: ignore[method-assign]
            self._original = None
        with self._lock:
            self.writer.close()
