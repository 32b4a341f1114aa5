"""Results per API: what each contract test saw (operations, cases, findings, and for a state
machine which of its rules ran: `Recorder.rules_reached`, "rules reached N/M" in the summary),
carried from the test to the session summary through the test report's `user_properties`, so it
also works when pytest-xdist runs the tests in worker processes (reports travel to the
controller) and lands in JUnit XML as a `<property name="lcs">` of each test case."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from contracts.failures import Finding

PROPERTY = "lcs"
META = "lcs-meta"


@dataclass
class Recorder:
    """What one test (one operation, one state machine, one receiver) saw."""

    api: str
    suite: str  # operations | links | stateful | receiver
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    findings: dict[str, Finding] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)  # state machine rule -> reach (see `rules_reached`)

    def case(self, operation: str) -> None:
        self.cases += 1
        self.operations.add(operation)

    def add(self, findings: list[Finding]) -> None:
        for finding in findings:
            self.findings.setdefault(
                f"{finding.operation}|{finding.check}|{finding.provenance.location}|{finding.kind}", finding
            )

    def rules_reached(self, statuses: dict[str, str]) -> None:
        """A state machine's reach: rule -> "reached", "never reached[: why]" or
        "not allowed: <reason>" (mock-only, irreversible, ...); the best status of a rule wins."""
        merge_reach(self.rules, statuses)

    def as_property(self) -> str:
        data: dict[str, Any] = {
            "api": self.api,
            "suite": self.suite,
            "operations": sorted(self.operations),
            "cases": self.cases,
            "findings": [f.as_dict() for f in self.findings.values()],
        }
        if self.rules:
            data["rules"] = dict(sorted(self.rules.items()))
        return json.dumps(data, sort_keys=True)


def _rank(status: str) -> int:
    return 0 if status == "reached" else 1 if status.startswith("never") else 2


def merge_reach(into: dict[str, str], statuses: dict[str, str]) -> None:
    for rule, status in statuses.items():
        known = into.get(rule)
        if known is None or _rank(status) < _rank(known):
            into[rule] = status


def reach_line(rules: dict[str, str]) -> str:
    """`rules reached N/M`, M the rules allowed on this target; the others counted apart with
    their reason, and the allowed ones never reached named."""
    allowed = {rule: status for rule, status in rules.items() if not status.startswith("not allowed")}
    reached = sum(status == "reached" for status in allowed.values())
    line = f"rules reached {reached}/{len(allowed)}"
    barred = Counter(
        status.removeprefix("not allowed: ") for status in rules.values() if status.startswith("not allowed")
    )
    if barred:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(barred.items()))
        line += f" ({sum(barred.values())} not allowed on this target: {reasons})"
    missed = [
        f"{rule}{status.removeprefix('never reached')}"
        for rule, status in sorted(allowed.items())
        if status != "reached"
    ]
    if missed:
        line += f"; never reached: {', '.join(missed)}"
    return line


@dataclass
class ApiStats:
    operations: set[str] = field(default_factory=set)
    cases: int = 0
    tests: Counter[str] = field(default_factory=Counter)  # passed / failed / skipped
    kinds: Counter[str] = field(default_factory=Counter)  # "<kind> (broken|refuted)"
    findings: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rules: dict[str, str] = field(default_factory=dict)  # reach of its state machine's rules


class Summary:
    """Session-wide aggregation (on the xdist controller too)."""

    def __init__(self) -> None:
        self.apis: dict[str, ApiStats] = {}
        self._outcomes: dict[str, str] = {}

    def stats(self, api: str) -> ApiStats:
        return self.apis.setdefault(api, ApiStats())

    def add_report(self, report: Any) -> None:
        props = dict(getattr(report, "user_properties", []) or [])
        meta_raw = props.get(META)
        if meta_raw is None:
            return
        meta = json.loads(str(meta_raw))
        stats = self.stats(str(meta["api"]))
        nodeid = str(report.nodeid)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = "skipped" if report.skipped else "failed" if report.failed else "passed"
            self._outcomes[nodeid] = outcome
            stats.tests[outcome] += 1
            if report.skipped:
                reason = _skip_reason(report)
                stats.skipped.append(f"{meta.get('label') or nodeid}: {reason}")
        if report.when == "teardown" and PROPERTY in props:
            data = json.loads(str(props[PROPERTY]))
            stats.operations.update(data.get("operations", []))
            stats.cases += int(data.get("cases", 0))
            merge_reach(stats.rules, {str(k): str(v) for k, v in (data.get("rules") or {}).items()})
            for finding in data.get("findings", []):
                stats.findings.append(finding)
                stats.kinds[f"{finding['kind']} ({finding['verdict']})"] += 1
            if self._outcomes.get(nodeid) == "failed" and not data.get("findings"):
                stats.kinds["error (broken)"] += 1

    def lines(self, header: str) -> list[str]:
        if not self.apis:
            return []
        rows = [
            header,
            f"{'api':<20} {'operations':>10} {'cases':>7} {'passed':>6} {'failed':>6} {'skipped':>7}  failures by kind",
        ]
        for api in sorted(self.apis):
            s = self.apis[api]
            kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(s.kinds.items())) or "-"
            rows.append(
                f"{api:<20} {len(s.operations):>10} {s.cases:>7} {s.tests['passed']:>6} {s.tests['failed']:>6} "
                f"{s.tests['skipped']:>7}  {kinds}"
            )
        reach = [(api, reach_line(s.rules)) for api, s in sorted(self.apis.items()) if s.rules]
        if reach:
            rows.append("")
            rows.append("state machines (each rule run at least once, in the tour or the random runs):")
            rows.extend(f"  {api}: {line}" for api, line in reach)
        findings = [(api, f) for api, s in sorted(self.apis.items()) for f in s.findings]
        if findings:
            rows.append("")
            rows.append("findings (assumption refuted = the vendor differs from a guess marked x-provenance: assumed):")
            seen: set[str] = set()
            for api, f in findings:
                verdict = "assumption refuted" if f["verdict"] == "refuted" else "contract broken"
                line = f"  {verdict}: {f['location']} — {f['check']} on {api} {f['operation']}: {f['title']}"
                if line not in seen:
                    seen.add(line)
                    rows.append(line)
        skipped = [(api, reason) for api, s in sorted(self.apis.items()) for reason in s.skipped]
        if skipped:
            rows.append("")
            rows.append("skipped:")
            rows.extend(f"  {api} {reason}" for api, reason in skipped)
        return rows


def _skip_reason(report: Any) -> str:
    longrepr = getattr(report, "longrepr", None)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr or "skipped")
