"""`loyalty-mock conformance --url BASE`: fetch the POS conformance report from a running mock and
print it for a terminal (or as JSON). Exit 0 when no error-severity rule fails, 1 when one does,
2 when the report cannot be fetched."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from typing import Any

MARKS = {"pass": "PASS", "fail": "FAIL", "not_applicable": "n/a "}


def fetch(url: str, admin_token: str | None, timeout: float = 30.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url.rstrip("/") + "/__admin/letstrade-pos/conformance?format=json",
        headers={"Accept": "application/json", **({"X-Admin-Token": admin_token} if admin_token else {})},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        found: dict[str, Any] = json.loads(response.read())
    return found


def render_text(report: dict[str, Any], base_url: str) -> str:
    summary = report["summary"]
    lines = [
        f"Let'sTrade POS conformance — {report['generated_at']}",
        f"{summary['pass']} passed, {summary['fail']} failed, {summary['not_applicable']} not applicable",
        "",
    ]
    for rule in report["rules"]:
        mark = MARKS.get(rule["status"], rule["status"])
        lines.append(f"{mark}  {rule['id']:<26} {rule['severity']:<8} {rule['title']}")
        if rule["status"] == "fail":
            for item in rule["evidence"][:5]:
                lines.append(f"        #{item['request_id']} {item['time']}  {item['detail']}")
            if len(rule["evidence"]) > 5:
                lines.append(f"        … {len(rule['evidence']) - 5} more in the full report")
    failed = [r["id"] for r in report["rules"] if r["status"] == "fail" and r["severity"] == "error"]
    lines.append("")
    lines.append(
        f"NOT CONFORMANT: {', '.join(failed)} failed" if failed else "CONFORMANT: no error-severity rule failed"
    )
    lines.append(f"Full report: {base_url.rstrip('/')}/__admin/letstrade-pos/conformance?format=html")
    return "\n".join(lines)


def run(url: str, output: str = "text", admin_token: str | None = None) -> int:
    try:
        report = fetch(url, admin_token)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:300]
        print(f"loyalty-mock: error: {url} answered {exc.code} for the conformance report: {detail}", file=sys.stderr)
        return 2
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"loyalty-mock: error: cannot fetch the conformance report from {url}: {reason}", file=sys.stderr)
        return 2
    if output == "json":
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render_text(report, url))
    failed = any(r["status"] == "fail" and r["severity"] == "error" for r in report["rules"])
    return 1 if failed else 0
