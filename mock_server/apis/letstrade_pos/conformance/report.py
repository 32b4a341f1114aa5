"""The conformance report in three forms: JSON (the fixed shape the README documents), a
self-contained HTML page a vendor can send to Let'sTrade, and JUnit XML for the vendor's CI.
Everything a till sent is escaped before it reaches HTML or XML."""

from __future__ import annotations

import html
import json
from typing import Any
from xml.etree import ElementTree as ET

from mock_server.apis.letstrade_pos.conformance.evaluate import Evidence, Report, RuleResult
from mock_server.apis.letstrade_pos.conformance.rules import ASSUMPTIONS, ERROR, FAIL, NOT_APPLICABLE, PASS
from mock_server.clock import isoformat

BODY_LIMIT = 6000  # characters of a body shown in the HTML page


def to_json(report: Report) -> dict[str, Any]:
    return {
        "generated_at": isoformat(report.generated_at),
        "summary": {
            "pass": report.count(PASS),
            "fail": report.count(FAIL),
            "not_applicable": report.count(NOT_APPLICABLE),
        },
        "rules": [
            {
                "id": r.rule.id,
                "title": r.rule.title,
                "severity": r.rule.severity,
                "status": r.status,
                "source": r.rule.source,
                "evidence": [e.as_json() for e in r.shown()],
            }
            for r in report.results
        ],
    }


def verdict(report: Report) -> str:
    failed = report.failed_errors()
    if failed:
        return f"NOT CONFORMANT: {len(failed)} error rule(s) failed ({', '.join(r.rule.id for r in failed)})"
    warnings = [r for r in report.results if r.status == FAIL]
    if warnings:
        return f"CONFORMANT WITH WARNINGS: {', '.join(r.rule.id for r in warnings)}"
    return "CONFORMANT: no rule failed"


# -- HTML ------------------------------------------------------------------------------------------------
_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:28px 32px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 10px}
.meta{color:#5a6272;margin:0 0 18px}
.verdict{padding:14px 18px;border-radius:8px;font-weight:600;font-size:17px;margin:14px 0}
.verdict.bad{background:#fde8e8;color:#8a1c1c;border:1px solid #f3b4b4}
.verdict.warn{background:#fff4dc;color:#7a5200;border:1px solid #f0d28a}
.verdict.good{background:#e3f6e8;color:#17602f;border:1px solid #a9dfb7}
.cards{display:flex;gap:12px}.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:10px 18px}
.card b{display:block;font-size:24px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid #e6e9ef;vertical-align:top}
th{background:#eef1f5;font-size:13px;text-transform:uppercase;letter-spacing:.03em;color:#4a5263}
.st{font-weight:700;border-radius:4px;padding:2px 8px;font-size:13px;white-space:nowrap}
.st.pass{background:#dff3e4;color:#17602f}.st.fail{background:#fbdcdc;color:#8a1c1c}
.st.not_applicable{background:#eceef2;color:#505866}
.sev{font-size:12px;color:#5a6272}
section.rule{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:14px 18px;margin:14px 0}
section.rule h3{margin:0 0 6px;font-size:16px}
blockquote{margin:6px 0 10px;padding:6px 12px;border-left:3px solid #c5cbd6;color:#4a5263;font-size:13.5px}
.ev{border-top:1px solid #eceef2;padding:8px 0}
.ev .id{font-family:ui-monospace,Menlo,Consolas,monospace;font-weight:600}
details{margin:4px 0}summary{cursor:pointer;color:#2c5aa0;font-size:13px}
pre{background:#f4f5f7;border:1px solid #e1e4ea;border-radius:6px;padding:8px;overflow:auto;font-size:12.5px;
max-height:320px;white-space:pre-wrap;word-break:break-all}
ul.assume{font-size:13.5px;color:#4a5263}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _dump(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + f"\n… ({len(text) - BODY_LIMIT} more characters)"


def _evidence_html(item: Evidence) -> str:
    call = item.call
    what = call.operation_id or f"{call.method} {call.path}"
    direction = "Let'sTrade → till" if call.api == "letstrade-pos-provider" else "till → Let'sTrade"
    return (
        f'<div class="ev"><span class="id">request #{_e(call.id)}</span> · {_e(call.time)} · {_e(what)} '
        f"({_e(direction)}, status {_e(call.status or 'no answer')})<br>{_e(item.detail)}"
        f"<details><summary>request body</summary><pre>{_e(_dump(call.body))}</pre></details>"
        f"<details><summary>response body</summary><pre>{_e(_dump(call.response))}</pre></details></div>"
    )


def _rule_html(result: RuleResult) -> str:
    shown = result.shown()
    if shown:
        heading = "Failing requests" if result.failing else "Requests that show it"
        evidence = f"<h4>{heading} ({len(result.failing or result.passing)})</h4>" + "".join(
            _evidence_html(e) for e in shown
        )
    else:
        evidence = "<p>No request in the journal shows this rule either way: play a scenario that exercises it.</p>"
    return (
        f'<section class="rule" id="{_e(result.rule.id)}"><h3><span class="st {_e(result.status)}">'
        f"{_e(result.status.replace('_', ' ').upper())}</span> {_e(result.rule.id)} "
        f'<span class="sev">({_e(result.rule.severity)})</span></h3><div>{_e(result.rule.title)}</div>'
        f"<blockquote>Seed 004: “{_e(result.rule.source)}”</blockquote>{evidence}</section>"
    )


def to_html(report: Report) -> str:
    data = to_json(report)
    summary = data["summary"]
    failed = report.failed_errors()
    css = "bad" if failed else ("warn" if summary["fail"] else "good")
    rows = "".join(
        f'<tr><td><a href="#{_e(r.rule.id)}">{_e(r.rule.id)}</a></td><td>{_e(r.rule.title)}</td>'
        f'<td>{_e(r.rule.severity)}</td><td><span class="st {_e(r.status)}">{_e(r.status.replace("_", " "))}</span>'
        f"</td><td>{len(r.failing) if r.failing else len(r.passing)}</td></tr>"
        for r in report.results
    )
    assumptions = "".join(f"<li>{_e(a)}</li>" for a in ASSUMPTIONS)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Let'sTrade POS conformance report — {_e(data['generated_at'])}</title><style>{_STYLE}</style></head>"
        "<body><main><h1>Let'sTrade POS conformance report</h1>"
        f'<p class="meta">Generated {_e(data["generated_at"])} by loyalty-mock from {report.calls} journaled '
        f"request(s) in {report.bills} bill(s) (store_id + terminal_id + basket.uuid). Rules from the Let'sTrade POS "
        "integration document (seed 004).</p>"
        f'<div class="verdict {css}">{_e(verdict(report))}</div>'
        f'<div class="cards"><div class="card"><b>{summary["pass"]}</b>passed</div>'
        f'<div class="card"><b>{summary["fail"]}</b>failed</div>'
        f'<div class="card"><b>{summary["not_applicable"]}</b>not applicable</div></div>'
        "<h2>Rules</h2><table><thead><tr><th>Rule</th><th>Statement</th><th>Severity</th><th>Status</th>"
        f"<th>Evidence</th></tr></thead><tbody>{rows}</tbody></table>"
        "<h2>Evidence (failed rules first)</h2>"
        f"{''.join(_rule_html(r) for r in sorted(report.results, key=lambda r: r.status != FAIL))}"
        f'<h2>How the rules were read</h2><ul class="assume">{assumptions}</ul>'
        "</main></body></html>\n"
    )


# -- JUnit -----------------------------------------------------------------------------------------------
def _clean(text: str) -> str:
    """XML 1.0 cannot carry most control characters, whatever the escaping."""
    return "".join(ch for ch in text if ch in "\t\n\r" or ord(ch) >= 0x20)


def to_junit(report: Report) -> str:
    """One testcase per rule: an error rule that fails is a <failure>; a warning that fails passes with
    the warning in <system-out> (a vendor's CI goes red only for errors); not_applicable is <skipped>."""
    failures = len(report.failed_errors())
    skipped = report.count(NOT_APPLICABLE)
    stamp = isoformat(report.generated_at)
    suites = ET.Element(
        "testsuites",
        name="letstrade-pos conformance",
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="letstrade-pos.conformance",
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        timestamp=stamp,
    )
    for result in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"letstrade-pos.{result.rule.severity}",
            name=f"{result.rule.id}: {result.rule.title}",
            time="0",
        )
        lines = [f"#{e.call.id} {e.call.time} {e.call.operation_id or e.call.path}: {e.detail}" for e in result.shown()]
        text = _clean("\n".join([f"Seed 004: {result.rule.source}", *lines]))
        if result.status == FAIL and result.rule.severity == ERROR:
            failure = ET.SubElement(
                case, "failure", type=result.rule.severity, message=_clean(result.shown()[0].detail[:500])
            )
            failure.text = text
        elif result.status == FAIL:
            ET.SubElement(case, "system-out").text = "WARNING (rule failed, severity warning)\n" + text
        elif result.status == NOT_APPLICABLE:
            ET.SubElement(case, "skipped", message="not applicable: no request shows this rule either way")
        else:
            ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
