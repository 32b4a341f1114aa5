"""The reference till (mock_server.pos_simulator) against the mock over HTTP: in correct mode every
rule passes; each faulty mode makes exactly the rule it breaks fail, with evidence naming the
offending requests of the journal. Also the report's formats and `loyalty-mock conformance`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from mock_server.apis.letstrade_pos.conformance.rules import RULES
from mock_server.pos_simulator import SCENARIOS, PosSimulator, Till
from mock_server.settings import Settings
from mock_server.testing import MockServer
from tests.browser import NO_CHROMIUM, chromium_available, chromium_command


@pytest.fixture(scope="module")
def till() -> Iterator[Till]:
    with Till() as running:
        yield running


@pytest.fixture(scope="module")
def conformance_server(till: Till) -> Iterator[MockServer]:
    with MockServer(Settings(port=0, strict=True, pos_callback_url=till.url)) as server:
        yield server


@pytest.fixture
def pos_mock(conformance_server: MockServer, till: Till) -> MockServer:
    conformance_server.reset()
    till.answer = "good"
    till.bills.clear()
    return conformance_server


def play(mock: MockServer, till: Till, mode: str) -> dict[str, Any]:
    PosSimulator(mock.base_url, mode, till=till).run()
    if mode == "skip-finalise":
        mock.advance(1801)  # past --pos-bill-timeout (1800 s)
    answer = mock.admin("GET", "/letstrade-pos/conformance")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    report: dict[str, Any] = answer.json()
    return report


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in report["rules"]}


def journal(mock: MockServer) -> dict[int, dict[str, Any]]:
    return {e["id"]: e for e in mock.journal()}


def test_correct_mode_passes_every_rule_with_evidence(pos_mock: MockServer, till: Till) -> None:
    report = play(pos_mock, till, "correct")
    assert report["summary"] == {"pass": len(RULES), "fail": 0, "not_applicable": 0}
    for rule in report["rules"]:
        assert rule["status"] == "pass" and rule["evidence"], rule["id"]
    entries = journal(pos_mock)
    appended = by_id(report)["LTP-APPEND-VOUCHERS"]["evidence"]
    assert all(entries[e["request_id"]]["api"] == "letstrade-pos-provider" for e in appended)


# mode -> (the one rule that fails, what the offending journal entries look like)
FAULTS: dict[str, tuple[str, Any]] = {
    "skip-finalise": (
        "LTP-FINALISE-EVERY-BILL",
        lambda e: e["operation_id"] == "getOfferings" and "code" not in e["request"]["body"],
    ),
    "retry-finalise": (
        "LTP-NO-FINALISE-RETRY",
        lambda e: e["operation_id"] == "finaliseOfferings" and e["status"] == 409,
    ),
    "drop-vouchers": (
        "LTP-PASS-BACK",
        lambda e: (
            e["operation_id"] == "finaliseOfferings"
            and e["status"] == 200
            and "vouchers" not in e["request"]["body"]["basket"]
        ),
    ),
    "external-vouchers-on-finalise": (
        "LTP-EXTERNAL-VOUCHERS",
        lambda e: e["operation_id"] == "finaliseOfferings" and "external_vouchers" in e["request"]["body"]["basket"],
    ),
    "ignore-expiry": ("LTP-EXPIRED-CODE", lambda e: e["status"] == 410),
    "numbers-as-json": (
        "LTP-DECIMAL-STRINGS",
        lambda e: e["status"] == 400 and isinstance(e["request"]["body"]["basket"]["total"], float),
    ),
    "bad-append-answer": ("LTP-APPEND-VOUCHERS", lambda e: e["api"] == "letstrade-pos-provider" and e["violations"]),
}
EXPECTED_COUNT = {"drop-vouchers": 2, "ignore-expiry": 2, "retry-finalise": len(SCENARIOS)}


@pytest.mark.parametrize("mode", sorted(FAULTS))
def test_each_faulty_mode_fails_exactly_its_rule_naming_the_offending_requests(
    pos_mock: MockServer, till: Till, mode: str
) -> None:
    rule_id, offending = FAULTS[mode]
    report = play(pos_mock, till, mode)
    rules = by_id(report)
    assert [r for r, rule in rules.items() if rule["status"] == "fail"] == [rule_id]
    assert report["summary"] == {"pass": len(RULES) - 1, "fail": 1, "not_applicable": 0}
    evidence = rules[rule_id]["evidence"]
    assert len(evidence) == EXPECTED_COUNT.get(mode, 1)
    entries = journal(pos_mock)
    first_410 = min((i for i, e in entries.items() if e["status"] == 410), default=None)
    assert first_410 not in {item["request_id"] for item in evidence}, "the first 410 is no fault of the till"
    for item in evidence:
        entry = entries[item["request_id"]]
        assert offending(entry), (mode, item, entry["operation_id"], entry["status"])
        assert item["time"] == entry["time"] and item["detail"]


def test_warning_only_failures_keep_the_cli_green_and_errors_make_it_red(pos_mock: MockServer, till: Till) -> None:
    play(pos_mock, till, "numbers-as-json")
    green = cli("conformance", "--url", pos_mock.base_url)
    assert green.returncode == 0, green.stdout + green.stderr
    assert "FAIL  LTP-DECIMAL-STRINGS" in green.stdout and "CONFORMANT" in green.stdout
    pos_mock.reset()
    play(pos_mock, till, "retry-finalise")
    red = cli("conformance", "--url", pos_mock.base_url)
    assert red.returncode == 1 and "NOT CONFORMANT: LTP-NO-FINALISE-RETRY failed" in red.stdout
    as_json = cli("conformance", "--url", pos_mock.base_url, "--format", "json")
    assert as_json.returncode == 1 and '"LTP-NO-FINALISE-RETRY"' in as_json.stdout
    gone = cli("conformance", "--url", "http://127.0.0.1:9")
    assert gone.returncode == 2 and "cannot fetch the conformance report" in gone.stderr


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mock_server", *args], capture_output=True, text=True, timeout=60)


def test_junit_report_parses_with_a_failure_per_failed_error_rule(pos_mock: MockServer, till: Till) -> None:
    play(pos_mock, till, "drop-vouchers")
    answer = pos_mock.admin("GET", "/letstrade-pos/conformance", params={"format": "junit"})
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(answer.content)
    suite = root.find("testsuite")
    assert root.tag == "testsuites" and suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(RULES) and suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name", "").split(":")[0] for c in failed] == ["LTP-PASS-BACK"]
    failure = failed[0].find("failure")
    assert failure is not None and "did not pass back" in (failure.text or "")


def test_format_is_validated(pos_mock: MockServer) -> None:
    refused = pos_mock.admin("GET", "/letstrade-pos/conformance", params={"format": "pdf"})
    assert refused.status_code == 400 and refused.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.skipif(not chromium_available(), reason=NO_CHROMIUM)
def test_html_report_renders_in_headless_chromium(pos_mock: MockServer, till: Till) -> None:
    play(pos_mock, till, "skip-finalise")
    page = pos_mock.admin("GET", "/letstrade-pos/conformance", params={"format": "html"})
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    url = pos_mock.admin_url("/letstrade-pos/conformance?format=html")
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "report.png"
        base = chromium_command(tmp)
        subprocess.run(
            [*base, f"--screenshot={shot}", "--window-size=1280,2000", url], capture_output=True, timeout=60, check=True
        )
        assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        keep = os.environ.get("CONFORMANCE_SCREENSHOT")
        if keep:
            shutil.copy(shot, keep)
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "Let'sTrade POS conformance report" in dom
    assert "NOT CONFORMANT: 1 error rule(s) failed (LTP-FINALISE-EVERY-BILL)" in dom
    assert "passed" in dom and "failed" in dom and "not applicable" in dom
    assert "has had no successful finalise" in dom
