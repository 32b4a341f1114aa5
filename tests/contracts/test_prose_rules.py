"""The suite's negative cases for prose rules (`contracts/test_prose_rules.py`) can fail: a mock that
accepts a rule-breaking request, or refuses it otherwise, is reported with the right verdict; and
`prose.break_rule` breaks exactly the rule it is given."""

from __future__ import annotations

from typing import Any

import pytest

from contracts import prose
from contracts.report import Recorder
from contracts.specs import SLUGS
from contracts.target import ApiContext
from contracts.test_prose_rules import BUILDERS, rule_provenance, run_rule
from mock_server import rules
from mock_server.errors import Conflict, FieldError

SITES = {site.label: site for slug in SLUGS for site in prose.rule_sites(slug)}
EXTERNAL = "POST /v1/get/offerings basket.external_vouchers x-unique-by"
POINTS = "PUT /organizations/{organizationId}/customers/{customerId}/points/{reference} amount x-forbidden-values"


def test_every_rule_of_every_spec_has_a_valid_request_to_break() -> None:
    assert len(SITES) >= 11
    assert {(site.slug, site.operation_id) for site in SITES.values()} <= set(BUILDERS)


@pytest.mark.parametrize("label", sorted(SITES))
def test_break_rule_breaks_exactly_that_rule(label: str) -> None:
    """On a body that honours every rule, the change breaks the site's rule at the site's place and
    nothing else (synthetic bodies reaching every location)."""
    site = SITES[label]
    schema = prose.request_body_schema(site.slug, site.method, site.path)
    body = _reaching(site)
    assert prose.violations(schema, body) == [], body
    broken, changed = prose.break_rule(site, body, None)
    found = prose.violations(schema, broken)
    assert found and all(v.startswith(changed.split("[")[0]) or v.startswith("$") for v in found), (changed, found)
    assert body == _reaching(site), "the valid body is left as it was"


def _reaching(site: prose.RuleSite) -> Any:
    """A small body that reaches `site`'s location and honours its rule."""
    leaf: Any
    if site.keyword == "x-forbidden-values":
        leaf = 7
    elif site.keyword == "x-one-of-required":
        leaf = {str(site.node["x-one-of-required"][site.group][0]): "ann@example.com"}
    elif site.node.get("x-unique-by-prefix"):
        leaf = ["P1234"]
    else:
        pointers = site.node["x-unique-by"]
        leaf = ["R1"] if pointers == [""] else [{p.lstrip("/"): "one" for p in pointers}]
    for part in reversed(site.instance):
        leaf = [leaf] if part is None else {part: leaf}
    return leaf


# -- the negative cases fail on a mock that deviates -------------------------------------------------
def _mock_without_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "check", lambda compiled, document: [])


@pytest.mark.lcs_api("letstrade-pos", "rules")
def test_a_mock_accepting_a_repeated_external_voucher_is_reported(
    lcs_context: ApiContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    lcs_recorder = Recorder("letstrade-pos", "rules")  # its own: staged findings stay out of the run's summary
    run_rule(lcs_context, lcs_recorder, SITES[EXTERNAL])  # the mock enforces it: no finding
    assert not lcs_recorder.findings
    _mock_without_rules(monkeypatch)  # the mock has no other check for this rule
    with pytest.raises(pytest.fail.Exception, match="was accepted"):
        run_rule(lcs_context, lcs_recorder, SITES[EXTERNAL], seed=1)
    (finding,) = lcs_recorder.findings.values()
    assert finding.kind == "rule-breaking request accepted" and finding.refuted  # the rule is assumed
    assert finding.provenance == rule_provenance(SITES[EXTERNAL])
    assert finding.provenance.location.endswith("/OfferingsBasket/properties/external_vouchers/x-rule-refusal")


@pytest.mark.lcs_api("loke", "rules")
def test_a_mock_refusing_otherwise_is_reported_against_the_documented_response(
    lcs_context: ApiContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    lcs_recorder = Recorder("loke", "rules")  # its own: staged findings stay out of the run's summary

    def conflict(violations: Any) -> Any:
        return Conflict("no", [FieldError("amount", "no")], kind="nope")

    monkeypatch.setattr(rules, "refusal_error", conflict)
    with pytest.raises(pytest.fail.Exception, match="refused with 409, not the documented 400"):
        run_rule(lcs_context, lcs_recorder, SITES[POINTS], seed=2)
    (finding,) = lcs_recorder.findings.values()
    assert finding.kind == "rule refused otherwise"
    assert finding.provenance.location.endswith("/put/responses/400")  # the documented (assumed) 400 is refuted
    assert finding.refuted


@pytest.mark.lcs_api("loke", "rules")
def test_a_refusal_without_the_vendor_code_is_reported(
    lcs_context: ApiContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    lcs_recorder = Recorder("loke", "rules")  # its own: staged findings stay out of the run's summary
    real = rules.refusal_error

    def untyped(violations: Any) -> Any:
        error = real(violations)
        error.kind = "error"
        return error

    monkeypatch.setattr(rules, "refusal_error", untyped)
    with pytest.raises(pytest.fail.Exception, match="error code 'validation_error'"):
        run_rule(lcs_context, lcs_recorder, SITES[POINTS], seed=3)
    assert [f.kind for f in lcs_recorder.findings.values()] == ["rule refused otherwise"]


def test_sites_are_labelled_uniquely() -> None:
    assert len(SITES) == sum(len(prose.rule_sites(slug)) for slug in SLUGS), "two rules share a test id"
    site = SITES["POST /v2/customers profiles[*].identifiers x-unique-by"]
    assert site.refusal["code"] == 8013 and site.refusal["mock-domain"]
    assert site.where == "profiles[*].identifiers" and site.instance == ("profiles", None, "identifiers")
