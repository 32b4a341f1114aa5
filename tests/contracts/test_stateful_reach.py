"""Scenario coverage of the hand-written state machines (issue 22): every rule of every machine is
reached in the `ci` profile, whatever hypothesis draws, because each machine's scripted tour
drives them all (and the deep scenarios: a code let expire then used, a channel deactivated then
written to, a key rotated then the old one used, ...); the summary says "rules reached N/M".

In-process against the mock: the tour of each machine, its reach, and what the mock answered to
it (from its journal, so a tour that stops reaching a deep state fails here too)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from types import SimpleNamespace

import pytest
from hypothesis import settings

from contracts import options
from contracts.report import META, PROPERTY, Recorder, Summary, reach_line
from contracts.stateful import STEP, Machine, explore
from contracts.target import ApiContext, Target
from contracts.test_stateful import MODULES

# What the mock must have answered to each tour: (operationId, status) -> the scenario it proves.
DEEP = {
    "letstrade-pos": {
        ("getOfferings", 410): "a code let expire, then used",
        ("finaliseOfferings", 410): "an expired code finalised",
        ("finaliseOfferings", 409): "a basket finalised twice, a finalised code reused",
        ("getOfferings", 409): "a finalised code used again",
        ("refund", 409): "an order refunded twice",
        ("getOfferings", 404): "a code never issued",
    },
    "letstrade-channels": {
        ("upsertChannelCustomer", 403): "a deactivated channel written to",
        ("upsertChannelCustomer", 401): "a rotated-out key, another channel's key",
        ("rotateChannelKey", 200): "a key rotated",
    },
    "customtrades": {
        ("getCustomer", 404): "a soft-deleted customer read",
        ("updateCustomer", 404): "a soft-deleted customer updated",
        ("deleteCustomer", 404): "a customer deleted twice",
    },
    "capillary": {
        ("registerCustomer", 409): "a customer registered twice",
        ("generateOauthToken", 200): "an OAuth token used",
    },
    "loke": {
        ("adjustPoints", 409): "a points reference used twice",
        ("reversePoints", 204): "an award reversed",
        ("reversePoints", 404): "an award reversed twice",
        ("deleteWebhook", 404): "a subscription deleted twice",
        ("removeCustomerListMember", 204): "a list member removed",
    },
}


def _machine(slug: str, ctx: ApiContext, recorder: Recorder) -> type[Machine]:
    machine: type[Machine] = importlib.import_module(MODULES[slug]).build(ctx, recorder)
    return machine


def _hypothesis_rules(machine: type[Machine]) -> set[str]:
    """Every rule hypothesis would draw (and every initialize rule), by its markers."""
    return {
        name
        for name, member in inspect.getmembers(machine)
        if any(
            getattr(member, marker, None)
            for marker in ("hypothesis_stateful_rule", "hypothesis_stateful_initialize_rule")
        )
    }


@pytest.mark.parametrize("slug", sorted(MODULES))
def test_every_rule_is_declared_as_a_counted_step(slug: str, lcs_target: Target) -> None:
    ctx = lcs_target.api(slug)
    machine = _machine(slug, ctx, Recorder(slug, "stateful"))
    rules = _hypothesis_rules(machine)
    assert rules, "no hypothesis rule found: the marker names changed, this test proves nothing"
    assert rules == set(machine.reach.steps), "a rule declared with @rule/@initialize is not counted: use step/start"
    assert all(getattr(getattr(machine, name), STEP).name == name for name in rules)


@pytest.mark.parametrize("slug", sorted(MODULES))
def test_the_tour_alone_reaches_every_rule_and_the_deep_scenarios(slug: str, lcs_target: Target) -> None:
    ctx = lcs_target.api(slug)
    recorder = Recorder(slug, "stateful")
    machine = _machine(slug, ctx, recorder)
    machine().walk()
    statuses = machine.reach.statuses(ctx)
    assert reach_line(statuses) == f"rules reached {len(statuses)}/{len(statuses)}", statuses
    assert ctx.admin is not None
    answered = {(e["operation_id"], e["status"]) for e in ctx.admin.journal(api=slug)}
    missing = {scenario for key, scenario in DEEP[slug].items() if key not in answered}
    assert not missing, f"the tour no longer reaches: {sorted(missing)}; the mock answered {sorted(answered)}"
    assert not recorder.findings


def test_ci_exploration_reports_the_reach_through_the_recorder(lcs_target: Target) -> None:
    """`explore` (what test_stateful runs): tour, then random runs; the reach lands in the
    recorder's property, which the summary turns into a line per API."""
    ctx = lcs_target.api("letstrade-pos")
    recorder = Recorder("letstrade-pos", "stateful")
    machine = _machine("letstrade-pos", ctx, recorder)
    explore(machine, settings(options.Options(profile_name="ci").stateful_settings(), max_examples=2))
    data = json.loads(recorder.as_property())
    assert set(data["rules"]) == set(machine.reach.steps) and set(data["rules"].values()) == {"reached"}
    summary = Summary()
    meta = (META, json.dumps({"api": "letstrade-pos", "suite": "stateful", "label": "stateful x"}))
    for when in ("setup", "call", "teardown"):
        props = [meta, (PROPERTY, recorder.as_property())] if when == "teardown" else [meta]
        summary.add_report(
            SimpleNamespace(nodeid="t::x", when=when, passed=True, failed=False, skipped=False, user_properties=props)
        )
    lines = summary.lines("target: test")
    assert f"  letstrade-pos: rules reached {len(data['rules'])}/{len(data['rules'])}" in lines


def test_rules_a_vendor_cannot_run_are_counted_apart_with_their_reason(lcs_target: Target) -> None:
    """On a vendor without --allow-irreversible: mock-only and irreversible rules are not
    allowed (nor a rule whose arguments only such rules make), and are counted apart; an allowed
    rule never reached is named."""
    mock = lcs_target.api("letstrade-pos")
    vendor = dataclasses.replace(mock, admin=None, in_process=False)
    machine = _machine("letstrade-pos", vendor, Recorder("letstrade-pos", "stateful"))
    machine.reach.ran.add("qr_bill")
    statuses = machine.reach.statuses(vendor)
    assert statuses["mint"] == "not allowed: mock-only" and statuses["expire"] == "not allowed: mock-only"
    assert statuses["refund"] == "not allowed: irreversible"
    assert statuses["offerings"] == "not allowed: mock-only"  # its codes come only from the mock's minting
    assert reach_line(statuses) == (
        "rules reached 1/2 (6 not allowed on this target: irreversible 3, mock-only 3); never reached: unknown_code"
    )
    customtrades = _machine("customtrades", vendor, Recorder("customtrades", "stateful"))
    assert customtrades.reach.statuses(vendor)["other_company_sees_nothing"] == (
        "never reached: its precondition never held"
    )


def test_a_recorder_without_rules_keeps_its_property_and_summary_as_before() -> None:
    recorder = Recorder("loke", "operations")
    recorder.case("GET /x")
    assert "rules" not in json.loads(recorder.as_property())
    recorder.rules_reached({"a": "never reached", "b": "reached"})
    recorder.rules_reached({"a": "reached", "b": "never reached"})  # the best status of a rule wins
    assert recorder.rules == {"a": "reached", "b": "reached"}


def test_the_profiles_random_runs_come_after_the_tour() -> None:
    """ci: the tour pays for itself with one random run fewer than the links get (8); thorough
    keeps 100 runs of 40 steps; --examples N sets the runs as before."""
    ci, thorough = options.Options(profile_name="ci"), options.Options(profile_name="thorough")
    assert (ci.machine_settings().max_examples, ci.machine_settings().stateful_step_count) == (7, 12)
    assert ci.stateful_settings().max_examples == 8
    assert (thorough.machine_settings().max_examples, thorough.machine_settings().stateful_step_count) == (100, 40)
    assert options.Options(examples=40).machine_settings().max_examples == 40
