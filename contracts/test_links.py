"""Schemathesis' stateful phase per API: chains of calls through the specs' OpenAPI links
(create -> read/update/delete, offerings -> finalise -> finalise again / refund, register ->
lookup/update, ...), with the same checks as the per-operation tests. On a real target the
irreversible operations are left out of the chains unless --allow-irreversible is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.stateful.state_machine import APIStateMachine

from contracts import options, safety
from contracts.report import Recorder
from contracts.suite import Runner, build_schema
from contracts.target import ApiContext

REPLAYABLE_CLOCK = "2026-03-02T09:00:00Z"  # any fixed instant; a working-day morning


def _links_test(slug: str) -> Callable[..., None]:
    @pytest.mark.lcs_api(slug, "links")
    def test(lcs_context: ApiContext, lcs_recorder: Recorder) -> None:
        current = options.current()
        schema = build_schema(slug, current)
        if not lcs_context.allow_irreversible:
            excluded = sorted(safety.IRREVERSIBLE.get(slug, {}))
            if excluded:
                schema = schema.exclude(operation_id=excluded)
        if not schema.statistic.transitions.selected:
            pytest.skip(
                f"{slug}: no OpenAPI links left to follow on {lcs_context.label} (irreversible operations excluded)"
            )
        runner = Runner(lcs_context, lcs_recorder)

        class Links(schema.as_state_machine()):  # type: ignore[misc]
            def setup(self) -> None:
                # replays must see the same responses: hypothesis re-runs a sequence to shrink it,
                # and a link's value (a new id) that changed between runs reads as a flaky strategy
                lcs_context.fresh(frozen_at=REPLAYABLE_CLOCK)
                runner.checks = Runner(lcs_context, lcs_recorder).checks

            def get_call_kwargs(self, case: Any) -> dict[str, Any]:
                recorded = self.recorder.cases.get(case.id)  # recorded before the call, with its parent
                linked = recorded is not None and recorded.parent_id is not None
                return runner.call_kwargs(case, substitute=not linked)

            def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
                lcs_recorder.case(case.operation.label)
                try:
                    super().validate_response(response, case, additional_checks=runner.checks, **kwargs)
                except FailureGroup as group:
                    runner.classify_and_raise(group, case, response.status_code)

        machine: type[APIStateMachine] = Links
        machine.run(settings=current.stateful_settings())

    return test


for _slug in options.current().apis:
    globals()[f"test_links_{_slug.replace('-', '_')}"] = _links_test(_slug)
