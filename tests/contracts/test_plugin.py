"""The plugin: options and their parsing, credentials, the request-rate cap, and that it stays
inert in a pytest run that has no contract test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import credentials, options
from contracts.http import RateLimiter, worker_share
from contracts.specs import SLUGS
from tests.contracts.suite_runner import ROOT, run_suite
from tests.integration.auth_headers import capillary_basic


def test_option_values_are_parsed_and_checked() -> None:
    assert options.parse_apis(["loke,customtrades", "loke"]) == ("loke", "customtrades")
    assert options.parse_api_urls(["capillary=https://eucrm.cc.capillarytech.com/"]) == {
        "capillary": "https://eucrm.cc.capillarytech.com"
    }
    assert options.parse_max_rps(["2", "capillary=0.5"]) == {"*": 2.0, "capillary": 0.5}
    for parse, value in (
        (options.parse_apis, ["shopify"]),
        (options.parse_api_urls, ["loke=ftp://x"]),
        (options.parse_api_urls, ["nope=https://x"]),
        (options.parse_max_rps, ["fast"]),
        (options.parse_max_rps, ["-1"]),
    ):
        with pytest.raises(options.OptionError):
            parse(value)


def test_build_options_requires_a_secret_with_a_receiver_and_a_url_target() -> None:
    def getter(**values: object) -> object:
        return lambda name: values.get(name)

    with pytest.raises(options.OptionError, match="--webhook-secret"):
        options.build_options(getter(lcs_webhook_receiver="http://crm/hook"))
    with pytest.raises(options.OptionError, match="--target"):
        options.build_options(getter(lcs_target="staging"))
    built = options.build_options(getter(lcs_target="http://127.0.0.1:9/", lcs_profile="thorough"))
    assert built.target == "http://127.0.0.1:9" and not built.is_in_process("loke")
    assert built.examples_per_operation >= 300 and built.stateful_settings().max_examples >= 100


def test_rate_caps_protect_vendors_not_mocks() -> None:
    default = options.Options(target="https://vendor.example")
    assert default.rate_cap("capillary", is_mock=False) == pytest.approx(80 / 60)  # below 100 requests/minute
    assert default.rate_cap("capillary", is_mock=True) is None
    capped = options.Options(max_rps={"*": 3.0, "loke": 0.0})
    assert capped.rate_cap("capillary", is_mock=True) == 3.0 and capped.rate_cap("loke", is_mock=False) is None


def test_rate_limiter_spaces_requests_evenly() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])


def test_xdist_workers_share_a_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    assert worker_share(2.0) == 0.5


def test_credentials_from_the_environment() -> None:
    env = {
        "LCS_CUSTOMTRADES_API_KEY": "ctc_live_abc",
        "LCS_CAPILLARY_TILL_USERNAME": "till",
        "LCS_CAPILLARY_TILL_PASSWORD": "pw-123456",
    }
    found = credentials.from_environment(env)
    assert found["customtrades"] == {"api_key": "ctc_live_abc"}
    assert credentials.missing_for("customtrades", found) == []
    assert credentials.missing_for("capillary", found) == []
    assert credentials.missing_for("loke", found) == [
        "LCS_LOKE_ACCESS_TOKEN",
        "LCS_LOKE_CLIENT_ID + LCS_LOKE_CLIENT_SECRET",
    ]
    secrets = credentials.known_secrets(found)
    assert credentials.md5_hex("pw-123456") in secrets and "pw-123456" in secrets and "ctc_live_abc" in secrets
    assert credentials.known_secrets({"customtrades": {"api_key": "short"}}) == {}  # too short to tell from data
    headers = credentials.AuthHeaders("capillary", found, "http://x", None)  # type: ignore[arg-type]
    assert headers() == {"Authorization": capillary_basic(found)}


def _pytest(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_plugin_is_inert_without_contract_tests(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\ndef test_plain():\n    assert 'mock_server.testing' not in sys.modules\n", encoding="utf-8"
    )
    done = _pytest(tmp_path, "-q", "test_plain.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loyalty-contract-suite" not in done.stdout


def test_options_fall_back_to_lcs_names_when_taken(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "-p", "tests.contracts.clashing_plugin", "--help")
    assert done.returncode == 0, done.stderr
    assert "--lcs-profile" in done.stdout and "--lcs-target" in done.stdout
    assert "another plugin's --profile" in done.stdout


@pytest.fixture(autouse=True)
def _importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _summary_rows(output: str) -> list[str]:
    table = output.split("loyalty-contract-suite summary", 1)[1].splitlines()
    start = next(i for i, line in enumerate(table) if line.startswith("api "))
    return [line.split()[0] for line in table[start + 1 :] if line.strip()][: len(SLUGS)]


def test_api_option_limits_the_summary_to_that_api(tmp_path: Path) -> None:
    """`--api customtrades` used to leave the other APIs' receiver tests selected (skipped), so the
    summary listed rows for loke and letstrade-pos too (issue 21)."""
    run = run_suite(tmp_path, "--api", "customtrades", "-k", "receiver or test_links_customtrades", "--examples", "1")
    assert run.returncode == 0, run.output[-3000:]
    rows = [row for row in _summary_rows(run.output) if row in SLUGS]
    assert rows == ["customtrades"], run.output[-2000:]
    assert set(run.tests) == {"test_links_customtrades"}
