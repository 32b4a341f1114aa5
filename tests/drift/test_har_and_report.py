"""The HAR reader (streamed, any producer's layout, a cut-off tail), unusable input (exit 2 with
one line) and the HTML report in a real headless browser."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from mock_server.drift import har as har_module
from mock_server.drift.har import HarError, HarReader, HarWriter, build_entry
from tests.browser import NO_CHROMIUM, chromium_available, chromium_command


def _entry(n: int, url: str = "https://customtradescrm.com/api/v1/customers") -> dict[str, Any]:
    return build_entry(
        started=f"2026-01-01T00:00:{n:02d}.000Z",
        duration_ms=3.0,
        method="GET",
        url=f"{url}?page={n}",
        request_headers=[("Authorization", "Bearer ctc_live_x"), ("Cookie", "a=b")],
        request_body=b"",
        status=401,
        status_text="Unauthorized",
        response_headers=[("Content-Type", "application/json")],
        response_body=json.dumps({"success": False, "error": f"n{n}", "token": "t0k"}).encode(),
    )


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mock_server", *args], capture_output=True, text=True, timeout=300)


def test_writer_keeps_a_valid_document_and_the_reader_streams_it_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.har"
    writer = HarWriter(path)
    assert json.loads(path.read_text())["log"]["entries"] == []
    for n in range(5):
        writer.append(_entry(n))
        assert len(json.loads(path.read_text())["log"]["entries"]) == n + 1  # complete after every append
    writer.close()
    text = path.read_text()
    assert "ctc_live_x" not in text and "a=b" not in text and "t0k" not in text
    monkeypatch.setattr(har_module, "_CHUNK", 7)  # refills mid-token, mid-entry, mid-string
    entries = list(HarReader(str(path)))
    assert [e["request"]["url"].rsplit("=", 1)[1] for e in entries] == ["0", "1", "2", "3", "4"]


def test_a_file_cut_inside_an_entry_keeps_every_complete_entry(tmp_path: Path) -> None:
    path = tmp_path / "cut.har"
    writer = HarWriter(path)
    for n in range(3):
        writer.append(_entry(n))
    writer.close()
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b'"startedDateTime"') + 40])
    reader = HarReader(str(path))
    assert len(list(reader)) == 2 and reader.truncated
    result = _run("drift", str(path), "--no-replay")
    assert result.returncode in (0, 1) and "ends inside an entry" in result.stderr


def test_a_browser_style_har_with_pages_and_pretty_printing_is_read(tmp_path: Path) -> None:
    document = {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": "537.36"},
            "pages": [{"id": "page_1", "title": "entries: [ not this ]"}],
            "entries": [_entry(1), _entry(2, "https://api.loke.global/organizations")],
        }
    }
    path = tmp_path / "browser.har"
    path.write_text(json.dumps(document, indent=4))
    reader = HarReader(str(path))
    assert len(list(reader)) == 2 and reader.creator["name"] == "WebInspector" and not reader.truncated


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hello", "is not a HAR file"),
        ('{"log": {"version": "1.2"}}', "no `log.entries`"),
        ('{"log": {"entries": []}}', "holds no entries"),
        (json.dumps({"log": {"entries": [_entry(1, "https://example.com/x")]}}), "matched an API"),
    ],
)
def test_unusable_input_is_exit_2_with_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.har"
    path.write_text(content)
    result = _run("drift", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert _run("drift", str(tmp_path / "missing.har")).returncode == 2


def test_reader_refuses_binary(tmp_path: Path) -> None:
    path = tmp_path / "bin.har"
    path.write_bytes(b"{\xff\xfe")
    with pytest.raises(HarError):
        list(HarReader(str(path)))


@pytest.mark.skipif(not chromium_available(), reason=NO_CHROMIUM)
def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    path = tmp_path / "t.har"
    writer = HarWriter(path)
    writer.append(_entry(1))
    writer.append(
        build_entry(
            started="2026-01-01T00:00:05.000Z",
            duration_ms=3.0,
            method="DELETE",
            url="https://customtradescrm.com/api/v1/customers/3f0c1d9e-0000-4000-8000-000000000001",
            request_headers=[("Authorization", "Bearer x")],
            request_body=b"",
            status=204,
            status_text="No Content",
            response_headers=[],
            response_body=b"",
        )
    )
    writer.close()
    page = tmp_path / "report.html"
    result = _run("drift", str(path), "--no-replay", "--format", "html", "--output", str(page))
    assert result.returncode == 1, result.stderr
    html = page.read_text()
    assert "<script" not in html and "<link" not in html and "src=" not in html  # one self-contained file
    with tempfile.TemporaryDirectory() as tmp:
        base = chromium_command(tmp)
        shot = Path(tmp) / "drift.png"
        subprocess.run(
            [*base, f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()],
            capture_output=True,
            timeout=60,
            check=True,
        )
        assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        dom = subprocess.run(
            [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    assert "Drift report" in dom and "contract broken" in dom
    assert "status 204 is not documented for deleteCustomer" in dom
    assert "deleteCustomer" in dom and 'id="coverage"' in dom and 'id="assumptions"' in dom


def test_bad_replay_fixtures_are_exit_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "f.har"
    writer = HarWriter(path)
    writer.append(_entry(1))
    writer.close()
    fixtures = tmp_path / "bad.yaml"
    fixtures.write_text("customtrades:\n  customers:\n    - {email: x@example.com}\n")
    result = _run("drift", str(path), "--fixtures", str(fixtures))
    assert result.returncode == 2 and "customers[0].first_name" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
