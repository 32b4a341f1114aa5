"""The contract suite records what it sends and receives as HAR (`--har`), which `drift` reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mock_server.drift.har import HarReader
from tests.contracts.suite_runner import run_suite


def test_the_contract_suite_writes_a_har_that_drift_reads(tmp_path: Path) -> None:
    har = tmp_path / "suite.har"
    run = run_suite(tmp_path, "--api", "customtrades", "--examples", "2", "--lcs-har", str(har), "-k", "operations")
    assert har.exists(), run.output[-3000:]
    entries = list(HarReader(str(har)))
    assert len(entries) >= 10, run.output[-3000:]
    assert all("/customtrades/" in e["request"]["url"] for e in entries)  # no admin calls recorded
    text = har.read_text(encoding="utf-8")
    assert "ctc_live_" not in text  # the API key is redacted
    drift = subprocess.run(
        [sys.executable, "-m", "mock_server", "drift", str(har), "--no-replay", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert drift.returncode in (0, 1), drift.stderr
    report = json.loads(drift.stdout)
    assert report["summary"]["matched"] == len(entries)
    assert report["coverage"]["customtrades"]["operations_seen"] >= 3
