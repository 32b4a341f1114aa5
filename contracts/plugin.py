"""pytest plugin of the contract suite (entry point `pytest11`: `loyalty_contracts`).

Loaded in every pytest run of an environment where the distribution is installed, so it is
inert unless a contract test runs: it only adds options (group "loyalty-contract-suite"),
markers and `lcs_`-prefixed fixtures, and starts the in-process mock lazily, the first time a
test needs it. Run the suite with `pytest --pyargs contracts [options]`.

Fixtures for your own tests (README, "Using the fixtures in your own tests", whose examples run
as tests): `lcs_target` (`.api(slug)` -> `.base_url`, `.request(method, path, ...)`, `.headers()`,
`.creds`, `.admin`), `lcs_api_urls` (base URL per API), `lcs_credentials` (per API, as
`/__admin/credentials` shapes them), `lcs_admin` (the mock's `AdminClient`: `clock()`,
`advance()`, `set_clock()`, `mint_code()`, `emit_loke_event()`, `journal()`, `add_fault()`, ...;
skips on a vendor), `lcs_mock` (the in-process `MockServer`), `lcs_fresh` (resets the in-process
mock, or the session's own tenant on a `--target` mock with tenants, before the test).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import pytest

from contracts import options as options_mod
from contracts import safety
from contracts.admin import AdminClient, require_admin
from contracts.report import META, PROPERTY, Recorder, Summary
from contracts.specs import SLUGS, load_spec
from contracts.target import ApiContext, Target

GROUP = "loyalty-contract-suite"

# (dest, long names: the short one is added only when no other plugin took it, kwargs)
_OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "lcs_target",
        "target",
        {
            "default": None,
            "metavar": "mock|URL",
            "help": "what to test: 'mock' (default; the mock in-process on port 0, reset per test) or a base URL laid "
            "out like the mock (<URL>/<slug>/...; a mock there that serves tenants gets a tenant of this run's own)",
        },
    ),
    (
        "lcs_api_url",
        "api-url",
        {
            "action": "append",
            "metavar": "SLUG=URL",
            "help": "the base URL of one API (repeatable), e.g. letstrade-pos=https://lets-trade-integration-prod.letstrade.global",
        },
    ),
    (
        "lcs_api",
        "api",
        {
            "action": "append",
            "metavar": "SLUG",
            "help": f"test only these APIs (repeatable or comma-separated): {', '.join(SLUGS)}",
        },
    ),
    (
        "lcs_examples",
        "examples",
        {
            "type": int,
            "default": None,
            "metavar": "N",
            "help": "examples per operation and generation mode (overrides the profile)",
        },
    ),
    (
        "lcs_profile",
        "profile",
        {
            "default": None,
            "choices": sorted(options_mod.PROFILES),
            "help": "the suite's example budget (not a hypothesis profile): ci (default, 25 per operation) "
            "or thorough (300 per operation, long state machines)",
        },
    ),
    (
        "lcs_allow_irreversible",
        "allow-irreversible",
        {
            "action": "store_true",
            "default": False,
            "help": "on a real target, also run operations that cannot be undone or cost money "
            "(finalise, refund, delete, registrations awarding points)",
        },
    ),
    (
        "lcs_max_rps",
        "max-rps",
        {
            "action": "append",
            "metavar": "[SLUG=]N",
            "help": "cap requests per second (all APIs, or one; 0 = no cap). "
            "Default on a non-mock target: below each vendor's documented limit",
        },
    ),
    (
        "lcs_webhook_receiver",
        "webhook-receiver",
        {
            "default": None,
            "metavar": "URL",
            "help": "fuzz this LOKE webhook receiver with signed events (and badly signed ones it must reject)",
        },
    ),
    (
        "lcs_webhook_secret",
        "webhook-secret",
        {"default": None, "metavar": "SECRET", "help": "the subscription secret the receiver verifies with"},
    ),
    (
        "lcs_pos_callback_url",
        "pos-callback-url",
        {
            "default": None,
            "metavar": "URL",
            "help": "fuzz this POS append-vouchers endpoint against letstrade-pos-provider.yaml",
        },
    ),
    (
        "lcs_har",
        "har",
        {
            "default": None,
            "metavar": "FILE",
            "help": "record every exchange with the target as HAR 1.2, secrets redacted (feeds `loyalty-mock drift`)",
        },
    ),
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "loyalty-contract-suite (pytest --pyargs contracts)")
    for dest, name, kwargs in _OPTIONS:
        try:  # the short name, unless a plugin loaded earlier owns it; the --lcs- one always works
            group.addoption(f"--{name}", f"--lcs-{name}", dest=dest, **kwargs)
        except (ValueError, argparse.ArgumentError):
            group.addoption(f"--lcs-{name}", dest=dest, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lcs_api(slug, suite): a loyalty-contract-suite test of one API (set by the suite)"
    )
    try:
        parsed = options_mod.build_options(config.getoption)
    except options_mod.OptionError as error:
        raise pytest.UsageError(str(error)) from None
    options_mod.set_current(parsed)
    config.pluginmanager.register(_Reporter(parsed), "loyalty-contract-suite-reporter")
    har = config.getoption("lcs_har", None)
    if har:
        from contracts.har import HarRecorder

        try:
            recorder = HarRecorder(str(har))
        except OSError as error:
            raise pytest.UsageError(f"--har: cannot write {har}: {error.strerror or error}") from None
        recorder.install()
        config.add_cleanup(recorder.close)


def _label(item: pytest.Item) -> str:
    operation = getattr(item, "operation_label", None)
    return f"{operation}" if operation else item.name


def _operation_id(slug: str, label: str | None) -> str | None:
    if not label or " " not in label:
        return None
    method, path = label.split(" ", 1)
    op = ((load_spec(slug).get("paths") or {}).get(path) or {}).get(method.lower()) or {}
    found = op.get("operationId")
    return str(found) if found else None


def _receiver_given(options: options_mod.Options, slug: str) -> bool:
    """Whether the option that points the suite at `slug`'s receiver (the endpoint the vendor
    calls: a LOKE webhook receiver, a POS's append-vouchers) was given."""
    given = {"loke": options.webhook_receiver, "letstrade-pos": options.pos_callback_url}
    return bool(given.get(slug))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    options = options_mod.current()
    deselected: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("lcs_api")
        if marker is None:
            continue
        slug, suite = str(marker.args[0]), str(marker.args[1]) if len(marker.args) > 1 else "operations"
        if slug not in options.apis and not (suite == "receiver" and _receiver_given(options, slug)):
            deselected.append(item)  # a receiver of another API runs only when its own option asks for it
            continue
        label = _label(item)
        item.user_properties.append((META, json.dumps({"api": slug, "suite": suite, "label": f"{suite} {label}"})))
        op_id = _operation_id(slug, getattr(item, "operation_label", None))
        if (
            op_id
            and not options.is_in_process(slug)
            and not options.allow_irreversible
            and safety.is_irreversible(slug, op_id)
        ):
            item.add_marker(pytest.mark.skip(reason=safety.reason(slug, op_id)))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        chosen = set(map(id, deselected))
        items[:] = [item for item in items if id(item) not in chosen]


class _Reporter:
    """Collects the results of contract tests (also from xdist workers) and prints the summary."""

    def __init__(self, options: options_mod.Options) -> None:
        self.options = options
        self.summary = Summary()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.summary.add_report(report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.summary.apis:
            return
        options = self.options
        target = "in-process mock" if options.target == options_mod.MOCK else options.target
        if options.api_urls:
            target += "; " + ", ".join(f"{k}={v}" for k, v in sorted(options.api_urls.items()))
        header = (
            f"target: {target} | profile {options.profile_name} | {options.examples_per_operation} examples per "
            f"operation{' | irreversible operations allowed' if options.allow_irreversible else ''}"
        )
        terminalreporter.write_sep("=", "loyalty-contract-suite summary")
        for line in self.summary.lines(header):
            terminalreporter.write_line(line)


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def lcs_options() -> options_mod.Options:
    return options_mod.current()


@pytest.fixture(scope="session")
def lcs_mock(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The in-process mock (strict, quota and rate limits off), started on first use."""
    from mock_server.settings import Settings
    from mock_server.testing import MockServer

    server = MockServer(Settings(port=0, strict=True, customtrades_quota=0, capillary_rpm=0)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lcs_target(request: pytest.FixtureRequest, lcs_options: options_mod.Options) -> Iterator[Target]:
    target = Target(lcs_options, lambda: request.getfixturevalue("lcs_mock"))
    try:
        yield target
    finally:
        target.close()


@pytest.fixture(scope="session")
def lcs_api_urls(lcs_target: Target, lcs_options: options_mod.Options) -> dict[str, str]:
    """The base URL of every selected API (starts the in-process mock when it is the target)."""
    return {slug: lcs_target.api(slug).base_url for slug in lcs_options.apis}


@pytest.fixture(scope="session")
def lcs_credentials(lcs_target: Target, lcs_options: options_mod.Options) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for slug in lcs_options.apis:
        found.update(lcs_target.api(slug).creds)
    return found


@pytest.fixture(scope="session")
def lcs_admin(lcs_target: Target, lcs_options: options_mod.Options) -> AdminClient:
    """The mock's admin client (skips the test when the target is not a mock)."""
    context = lcs_target.api(lcs_options.apis[0])
    return require_admin(context.admin, "the admin API", context.label)


@pytest.fixture
def lcs_fresh(lcs_target: Target, lcs_options: options_mod.Options) -> None:
    """Reset the in-process mock, or this session's own tenant on a `--target` mock that serves
    tenants, before this test (never a shared mock or a vendor)."""
    lcs_target.api(lcs_options.apis[0]).fresh()


def _marker_slug(request: pytest.FixtureRequest) -> tuple[str, str]:
    marker = request.node.get_closest_marker("lcs_api")
    if marker is None:
        raise pytest.UsageError("lcs_context / lcs_recorder need a test marked @pytest.mark.lcs_api(slug)")
    return str(marker.args[0]), str(marker.args[1]) if len(marker.args) > 1 else "operations"


@pytest.fixture
def lcs_context(request: pytest.FixtureRequest, lcs_target: Target) -> ApiContext:
    """The API of a test marked `lcs_api(slug)`, from a fresh state."""
    slug, _ = _marker_slug(request)
    context = lcs_target.api(slug)
    context.fresh()
    return context


@pytest.fixture
def lcs_recorder(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    slug, suite = _marker_slug(request)
    recorder = Recorder(slug, suite)
    yield recorder
    request.node.user_properties.append((PROPERTY, recorder.as_property()))
