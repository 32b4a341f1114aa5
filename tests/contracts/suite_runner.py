"""Run the contract suite as a user does (`python -m pytest --pyargs contracts ...`, in a
subprocess) and read what it found from its JUnit XML: per test, the outcome, the failure
message and the suite's `lcs` property (operations, cases, findings with check and location)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class TestResult:
    name: str
    outcome: str  # passed | failed | skipped | error
    message: str = ""
    findings: list[dict[str, Any]] = field(default_factory=list)
    cases: int = 0


@dataclass
class SuiteRun:
    returncode: int
    output: str
    tests: dict[str, TestResult]

    def findings(self) -> list[dict[str, Any]]:
        return [f for t in self.tests.values() for f in t.findings]

    def found(self, check: str, operation: str) -> bool:
        return any(f["check"] == check and f["operation"] == operation for f in self.findings())

    def failed(self) -> list[TestResult]:
        return [t for t in self.tests.values() if t.outcome in ("failed", "error")]


def parse_junit(path: Path) -> dict[str, TestResult]:
    tests: dict[str, TestResult] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = "failed" if tag == "failure" else tag
                message = f"{node.get('message', '')}\n{node.text or ''}"
        result = TestResult(name, outcome, message)
        for prop in case.iter("property"):
            if prop.get("name") == "lcs":
                data = json.loads(prop.get("value") or "{}")
                result.findings.extend(data.get("findings", []))
                result.cases += int(data.get("cases", 0))
        tests[name] = result
    return tests


def run_suite(tmp: Path, *args: str, timeout: float = 600) -> SuiteRun:
    junit = tmp / f"junit-{uuid.uuid4().hex}.xml"  # runs may go in parallel
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "contracts",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
        *args,
    ]
    env = {**os.environ, "CI": "true"}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    tests = parse_junit(junit) if junit.exists() else {}
    return SuiteRun(done.returncode, done.stdout + done.stderr, tests)
