"""The hand-written state machines of `contracts/stateful/`, one test per API. They use only
public endpoints (so they run against a vendor); mock-only and irreversible steps are rules that
are never chosen where they cannot run (see each module). Each test walks its machine's scripted
tour (every rule, the deep scenarios included) and then the profile's random runs, and reports
which rules ran ("rules reached N/M" in the summary; `contracts/stateful/__init__.py`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest

from contracts import options
from contracts.report import Recorder
from contracts.stateful import explore
from contracts.target import ApiContext

MODULES = {
    "letstrade-pos": "contracts.stateful.letstrade_pos",
    "letstrade-channels": "contracts.stateful.letstrade_channels",
    "customtrades": "contracts.stateful.customtrades",
    "capillary": "contracts.stateful.capillary",
    "loke": "contracts.stateful.loke",
}


def _stateful_test(slug: str) -> Callable[..., None]:
    @pytest.mark.lcs_api(slug, "stateful")
    def test(lcs_context: ApiContext, lcs_recorder: Recorder) -> None:
        machine = importlib.import_module(MODULES[slug]).build(lcs_context, lcs_recorder)
        explore(machine, options.current().machine_settings())

    return test


for _slug in options.current().apis:
    globals()[f"test_stateful_{_slug.replace('-', '_')}"] = _stateful_test(_slug)
