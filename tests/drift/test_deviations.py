"""A vendor double with known deviations behind the proxy: the client gets the vendor's bytes,
the HAR holds every exchange with secrets redacted, and `drift` names each deviation at the
right operation, pointer, spec location and verdict, and nothing else."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server.drift.engine import Options, analyse
from mock_server.drift.har import HarReader
from mock_server.proxy.testing import ProxyServer
from mock_server.settings import Settings
from mock_server.testing import MockServer
from tests.drift.conftest import ALL, recording_client
from tests.drift.scenarios import SCENARIOS, Client
from tests.drift.vendor_double import VendorDouble

CT = "openapi/customtrades.yaml#"
CUSTOMER = f"{CT}/components/schemas/Customer"
EXPECTED = {
    # an extra field
    ("customtrades", "getCustomer", "vendor_violates_spec", "/data/loyalty_tier", "contract broken", CUSTOMER),
    ("customtrades", "getCustomer", "mock_differs", "/data/loyalty_tier", "mock differs", CUSTOMER),
    # a missing field
    (
        "customtrades",
        "createCustomer",
        "vendor_violates_spec",
        "/data/is_vip",
        "contract broken",
        f"{CUSTOMER}/properties/is_vip",
    ),
    ("customtrades", "createCustomer", "mock_differs", "/data/is_vip", "mock differs", f"{CUSTOMER}/properties/is_vip"),
    # a different status for one case
    (
        "customtrades",
        "deleteCustomer",
        "vendor_violates_spec",
        None,
        "contract broken",
        f"{CT}/paths/~1v1~1customers~1{{uuid}}/delete/responses",
    ),
    (
        "customtrades",
        "deleteCustomer",
        "mock_differs",
        None,
        "mock differs",
        f"{CT}/paths/~1v1~1customers~1{{uuid}}/delete/responses",
    ),
    # a field in another format, on an assumed property and on a documented one
    (
        "customtrades",
        "updateCustomer",
        "vendor_violates_spec",
        "/data/updated_at",
        "assumption refuted",
        f"{CUSTOMER}/properties/updated_at",
    ),
    (
        "customtrades",
        "updateCustomer",
        "mock_differs",
        "/data/updated_at",
        "mock differs",
        f"{CUSTOMER}/properties/updated_at",
    ),
    (
        "loke",
        "getCustomer",
        "vendor_violates_spec",
        "/createdAt",
        "contract broken",
        "openapi/loke.yaml#/components/schemas/Customer/properties/createdAt",
    ),
    (
        "loke",
        "getCustomer",
        "mock_differs",
        "/createdAt",
        "mock differs",
        "openapi/loke.yaml#/components/schemas/Customer/properties/createdAt",
    ),
    # a different error code
    (
        "capillary",
        "lookupCustomer",
        "mock_differs",
        "/errors/0/code",
        "mock differs",
        "openapi/capillary.yaml#/components/schemas/Message/properties/code",
    ),
    # a different paging rule (one customer per page whatever the limit)
    (
        "loke",
        "listCustomers",
        "mock_differs",
        "",
        "mock differs",
        "openapi/loke.yaml#/paths/~1organizations~1{organizationId}~1customers/get/responses/200/content/application~1json/schema",
    ),
}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Client, dict[str, Any]]]:
    har = tmp_path_factory.mktemp("deviations") / "vendor.har"
    with MockServer(Settings(port=0, seed=0)) as mock:
        vendor = VendorDouble(mock.base_url).start()
        try:
            with ProxyServer({slug: vendor.url(slug) for slug in ALL}, har_path=str(har)) as proxy:
                client = recording_client(mock, proxy, mock.credentials())
                for slug in ("customtrades", "capillary", "loke"):
                    SCENARIOS[slug](client)
                journal = requests.get(f"{proxy.base_url}/__admin/requests", timeout=10).json()
        finally:
            vendor.stop()
        yield har, client, {"journal": journal, "credentials": mock.credentials()}


def _key(finding: dict[str, Any]) -> tuple[Any, ...]:
    return (
        finding["api"],
        finding["operation_id"],
        finding["kind"],
        finding.get("pointer"),
        finding["verdict"],
        finding["location"],
    )


def test_drift_names_each_deviation_and_nothing_else(recorded: tuple[Path, Client, dict[str, Any]]) -> None:
    har, client, _ = recorded
    report = asyncio.run(analyse(str(har), Options(seed=0)))
    assert report["summary"]["matched"] == len(client.answers)
    assert {_key(f) for f in report["findings"]} == EXPECTED
    assumed = {a["location"]: a for a in report["assumptions"]}
    assert assumed[f"{CUSTOMER}/properties/updated_at"]["verdict"] == "refuted"
    assert report["summary"]["assumptions"]["refuted"] == 1
    assert report["summary"]["contracts_broken"] == 4
    confirmed = [a for a in report["assumptions"] if a["verdict"] == "confirmed"]
    assert confirmed and all(a["exchanges"] > 0 for a in confirmed)
    cover = report["coverage"]["customtrades"]
    assert cover["operations_seen"] == cover["operations_documented"] == 5
    assert cover["operations"]["deleteCustomer"]["statuses_seen"] == [204]


def test_spec_only_mode_reports_the_vendor_findings_alone(recorded: tuple[Path, Client, dict[str, Any]]) -> None:
    har, _, _ = recorded
    report = asyncio.run(analyse(str(har), Options(replay=False)))
    assert {_key(f) for f in report["findings"]} == {k for k in EXPECTED if k[2] == "vendor_violates_spec"}


def test_ignore_takes_a_pointer_out(recorded: tuple[Path, Client, dict[str, Any]]) -> None:
    har, _, _ = recorded
    report = asyncio.run(analyse(str(har), Options(ignore=("/errors/*/code", "/data/updated_at"))))
    pointers = {f.get("pointer") for f in report["findings"]}
    assert "/errors/0/code" not in pointers and "/data/updated_at" not in pointers
    assert "/data/loyalty_tier" in pointers


def test_the_har_holds_every_exchange_with_secrets_redacted(recorded: tuple[Path, Client, dict[str, Any]]) -> None:
    har, client, extra = recorded
    entries = list(HarReader(str(har)))
    assert len(entries) == len(client.answers)
    assert [e["response"]["status"] for e in entries] == [a.status_code for a in client.answers]
    text = har.read_text(encoding="utf-8")
    json.loads(text)  # one valid HAR 1.2 document
    secrets = [
        extra["credentials"]["customtrades"]["api_key"],
        extra["credentials"]["loke"]["client_secret"],
        extra["credentials"]["loke"]["access_token"],
        extra["credentials"]["capillary"]["oauth_secret"],
        extra["credentials"]["capillary"]["till_password"],
    ]
    issued = [a.json().get("access_token") for a in client.answers if a.request.url.endswith("/auth/token")]
    for secret in [*secrets, *issued]:
        assert secret and secret not in text
        assert secret not in json.dumps(extra["journal"])
    auth = {h["value"] for e in entries for h in e["request"]["headers"] if h["name"].lower() == "authorization"}
    assert auth <= {"Bearer ***", "Basic ***"} and auth
    token = next(e for e in entries if e["request"]["url"].endswith("/auth/token"))
    assert (
        "client_secret=%2A%2A%2A" in token["request"]["postData"]["text"]
        or "client_secret=***" in token["request"]["postData"]["text"]
    )
    assert json.loads(token["response"]["content"]["text"])["access_token"] == "***"


def test_the_journal_lists_violations_with_direction_pointer_location_and_provenance(
    recorded: tuple[Path, Client, dict[str, Any]],
) -> None:
    journal = recorded[2]["journal"]
    found = [v for entry in journal for v in entry["violations"]]
    extra_field = next(v for v in found if v.get("pointer") == "/data/loyalty_tier")
    assert extra_field["direction"] == "response"
    assert extra_field["location"] == CUSTOMER and extra_field["provenance"] == "seed"
    unauthenticated = next(e for e in journal if e["status"] == 401)
    assert unauthenticated["violations"][0]["direction"] == "request"


def test_drift_cli_exit_status_and_formats(recorded: tuple[Path, Client, dict[str, Any]], tmp_path: Path) -> None:
    har = recorded[0]
    out = tmp_path / "report.json"
    run = subprocess.run(
        [sys.executable, "-m", "mock_server", "drift", str(har), "--format", "json", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    report = json.loads(out.read_text())
    assert set(report) >= {"generated_at", "source", "exchanges", "summary", "findings", "assumptions", "coverage"}
    assert set(report["summary"]) >= {
        "exchanges",
        "matched",
        "vendor_violations",
        "mock_differences",
        "assumptions",
        "contracts_broken",
    }
    for finding in report["findings"]:
        assert set(finding) >= {
            "kind",
            "verdict",
            "api",
            "operation_id",
            "location",
            "provenance",
            "detail",
            "count",
            "example",
        }
        assert isinstance(finding["example"]["entry"], int)
    junit = subprocess.run(
        [sys.executable, "-m", "mock_server", "drift", str(har), "--format", "junit", "--no-replay"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert junit.returncode == 1 and "<testsuite" in junit.stdout and "<failure" in junit.stdout


def test_assumptions_with_evidence_print_each_verdict_and_its_exchanges(
    recorded: tuple[Path, Client, dict[str, Any]],
) -> None:
    har = recorded[0]
    run = subprocess.run(
        [sys.executable, "-m", "mock_server", "assumptions", "--evidence", str(har)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    lines = dict(line.split("\t", 1) for line in run.stdout.splitlines())
    assert lines[f"{CUSTOMER}/properties/updated_at"].startswith("refuted\t")
    verdicts = {value.split("\t")[0] for value in lines.values()}
    assert verdicts == {"confirmed", "refuted", "unobserved"}
    for value in lines.values():
        verdict, count = value.split("\t")
        exchanges = int(count.split()[0])
        assert (exchanges == 0) == (verdict == "unobserved")
    assert "1 refuted" in run.stderr
