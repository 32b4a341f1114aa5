"""The hand-written state machines of `contracts/stateful/`, one test per API. They use only
public endpoints (so they run against a vendor); mock-only and irreversible steps are rules that
are never chosen where they cannot run (see each module)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
from hypothesis.stateful import run_state_machine_as_test

from contracts import options
from contracts.report import Recorder
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
        run_state_machine_as_test(machine, settings=options.current().stateful_settings())  # type: ignore[no-untyped-call]

    return test


for _slug in options.current().apis:
    globals()[f"test_stateful_{_slug.replace('-', '_')}"] = _stateful_test(_slug)
