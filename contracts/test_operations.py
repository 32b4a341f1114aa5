"""Every operation of every selected API under schemathesis: examples, coverage and fuzzing
phases, positive and negative modes, all built-in checks plus the suite's own (`checks.py`).
One pytest test per operation, e.g. `test_customtrades[POST /v1/customers]`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from contracts import options
from contracts.report import Recorder
from contracts.suite import Runner, build_schema, hypothesis_settings
from contracts.target import ApiContext


def _operation_test(slug: str) -> Callable[..., None]:
    current = options.current()
    schema = build_schema(slug, current)

    @pytest.mark.lcs_api(slug, "operations")
    @schema.parametrize()
    @hypothesis_settings(current)
    def test(case: Any, lcs_runner: Runner) -> None:
        lcs_runner.run(case)

    built: Callable[..., None] = test
    return built


@pytest.fixture
def lcs_runner(lcs_context: ApiContext, lcs_recorder: Recorder) -> Runner:
    return Runner(lcs_context, lcs_recorder)


for _slug in options.current().apis:
    globals()[f"test_{_slug.replace('-', '_')}"] = _operation_test(_slug)
