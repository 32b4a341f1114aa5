"""The drift report as text, JSON, one self-contained HTML page, or JUnit XML."""

from __future__ import annotations

import html
import json
from typing import Any
from xml.sax.saxutils import escape as xml_escape


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"


def as_text(report: dict[str, Any]) -> str:
    summary = report["summary"]
    lines = [
        f"drift report for {report['source']} ({summary['matched']} of {summary['exchanges']} exchanges matched"
        f"{', replayed against the mock' if report.get('replayed') else ''})",
    ]
    if report.get("truncated"):
        lines.append("warning: the HAR ends inside an entry (the recorder was cut off); every complete entry was read")
    assumptions = summary["assumptions"]
    lines.append(
        f"vendor violations: {summary['vendor_violations']}   mock differences: {summary['mock_differences']}   "
        f"contracts broken: {summary['contracts_broken']}   assumptions: {assumptions['confirmed']} confirmed, "
        f"{assumptions['refuted']} refuted, {assumptions['unobserved']} unobserved"
    )
    if not report["findings"]:
        lines.append("no differences: the vendor, the specs and the mock agree on this traffic")
    requests = report.get("request_violations") or []
    if requests:
        lines.append(
            f"note: {sum(r['count'] for r in requests)} recorded requests break the spec themselves "
            "(the client's doing, not a difference; see request_violations in --format json)"
        )
    for finding in report["findings"]:
        status = f" {finding['status']}" if finding.get("status") is not None else ""
        pointer = f" {finding['pointer']}" if finding.get("pointer") else ""
        lines.append(
            f"[{finding['verdict']}] {finding['api']} {finding['operation_id'] or '(no operation)'}{status}{pointer}: "
            f"{finding['detail']} x{finding['count']} (entry {finding['example']['entry']}) "
            f"at {finding['location']} ({finding['provenance']})"
        )
    lines.append("coverage:")
    for slug, cover in report["coverage"].items():
        lines.append(f"  {slug}: {cover['operations_seen']}/{cover['operations_documented']} operations seen")
    return "\n".join(lines) + "\n"


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:1200px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ccd;border-radius:6px;padding:.6rem 1rem}
.card b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #e2e2ea;padding:.3rem .5rem;text-align:left;
vertical-align:top}th{background:#f4f4f8}code{font-size:12px;word-break:break-all}
.v-contract-broken{color:#a00}.v-assumption-refuted,.v-refuted{color:#b35900}.v-mock-differs{color:#5a2ca0}
.v-confirmed{color:#0a6b2e}.v-unobserved{color:#777}.ok{color:#0a6b2e;font-weight:600}
"""


def _cls(verdict: str) -> str:
    return "v-" + verdict.replace(" ", "-")


def as_html(report: dict[str, Any]) -> str:
    e = html.escape
    summary = report["summary"]
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Drift report: {e(str(report['source']))}</title><style>{_CSS}</style></head><body>",
        f"<h1>Drift report</h1><p>Source <code>{e(str(report['source']))}</code>, "
        f"generated {e(report['generated_at'])}.</p>",
        "<div class=cards id=summary>",
    ]
    cards = [
        ("exchanges", summary["exchanges"]),
        ("matched", summary["matched"]),
        ("vendor violations", summary["vendor_violations"]),
        ("mock differences", summary["mock_differences"]),
        ("contracts broken", summary["contracts_broken"]),
        ("assumptions confirmed", summary["assumptions"]["confirmed"]),
        ("assumptions refuted", summary["assumptions"]["refuted"]),
        ("assumptions unobserved", summary["assumptions"]["unobserved"]),
    ]
    out.extend(f"<div class=card><b>{value}</b>{e(label)}</div>" for label, value in cards)
    out.append("</div><h2>Findings</h2>")
    if not report["findings"]:
        out.append("<p class=ok id=no-findings>No differences: the vendor, the specs and the mock agree.</p>")
    else:
        out.append(
            "<table id=findings><thead><tr><th>verdict</th><th>API</th><th>operation</th><th>status</th>"
            "<th>pointer</th><th>detail</th><th>count</th><th>spec location</th><th>provenance</th></tr></thead><tbody>"
        )
        for f in report["findings"]:
            out.append(
                f"<tr class=finding><td class='{_cls(f['verdict'])}'>{e(f['verdict'])}</td><td>{e(f['api'])}</td>"
                f"<td>{e(str(f['operation_id']))}</td><td>{e(str(f.get('status', '')))}</td>"
                f"<td><code>{e(str(f.get('pointer', '')))}</code></td><td>{e(f['detail'])}</td><td>{f['count']}</td>"
                f"<td><code>{e(f['location'])}</code></td><td>{e(f['provenance'])}</td></tr>"
            )
        out.append("</tbody></table>")
    out.append(
        "<h2>Coverage</h2><table id=coverage><thead><tr><th>API</th><th>operation</th>"
        "<th>statuses seen</th><th>statuses documented</th></tr></thead><tbody>"
    )
    for slug, cover in report["coverage"].items():
        for op_id, statuses in cover["operations"].items():
            seen = ", ".join(str(s) for s in statuses["statuses_seen"]) or "-"
            documented = ", ".join(str(s) for s in statuses["statuses_documented"])
            out.append(f"<tr><td>{e(slug)}</td><td>{e(op_id)}</td><td>{seen}</td><td>{documented}</td></tr>")
    out.append(
        "</tbody></table><h2>Assumptions</h2><table id=assumptions><thead><tr><th>verdict</th>"
        "<th>exchanges</th><th>spec location</th></tr></thead><tbody>"
    )
    for item in report["assumptions"]:
        out.append(
            f"<tr><td class='{_cls(item['verdict'])}'>{e(item['verdict'])}</td><td>{item['exchanges']}</td>"
            f"<td><code>{e(item['location'])}</code></td></tr>"
        )
    out.append("</tbody></table></body></html>\n")
    return "".join(out)


def as_junit(report: dict[str, Any]) -> str:
    """One test case per operation seen (failed by its findings), one per finding-free API."""
    by_case: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for slug, cover in report["coverage"].items():
        for op_id, statuses in cover["operations"].items():
            if statuses["statuses_seen"]:
                by_case[(slug, op_id)] = []
    for finding in report["findings"]:
        by_case.setdefault((finding["api"], str(finding["operation_id"])), []).append(finding)
    failures = sum(1 for found in by_case.values() if found)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuite name="drift" tests="{len(by_case)}" failures="{failures}" errors="0">',
    ]
    for (slug, op_id), found in sorted(by_case.items()):
        out.append(f'  <testcase classname="drift.{xml_escape(slug)}" name="{xml_escape(op_id)}">')
        for finding in found:
            message = f"[{finding['verdict']}] {finding['detail']}"
            body = (
                f"{finding['location']} ({finding['provenance']}), x{finding['count']}, "
                f"entry {finding['example']['entry']}"
            )
            out.append(
                f'    <failure message="{xml_escape(message, {chr(34): "&quot;"})}">{xml_escape(body)}</failure>'
            )
        out.append("  </testcase>")
    out.append("</testsuite>")
    return "\n".join(out) + "\n"


RENDERERS = {"json": as_json, "text": as_text, "html": as_html, "junit": as_junit}
