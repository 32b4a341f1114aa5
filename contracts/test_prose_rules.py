"""Negative cases for the rules the specs state in prose (our `x-` keywords, `contracts/prose.py`):
for every rule every operation meets, a valid request on this target (what it refers to exists:
minted codes, a channel, a customer) is changed to break exactly that rule (`prose.break_rule`),
sent with valid credentials, and must get the documented refusal (`x-rule-refusal`: status, the
vendor's envelope as the spec documents that response, the vendor's error code where it has one).

One test per rule and operation, e.g. `test_rule[capillary POST /v2/customers profiles x-unique-by]`.
Findings carry provenance: a rule-breaking request accepted is judged by the rule's label (the
`x-rule-refusal`'s own, else the keyword's node), a refusal of another status or shape by the
documented response's, a missing error code by the rule's. On a real target the rules of
irreversible operations run only with --allow-irreversible (`contracts/safety.py`). On any mock
(in-process or at a URL) the valid request is sent afterwards too and must be accepted, so a
refusal is known to come from the rule; on every target an `x-one-of-required` refusal must name
the group's fields (`prose.refusal_problems`), so a refusal for something else (the channel's field
schema, say) is not taken for the rule's."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from contracts import data, options, prose, suite
from contracts.failures import Finding
from contracts.provenance import Provenance, index_for
from contracts.report import Recorder
from contracts.specs import SLUGS, spec_file
from contracts.stateful.letstrade_pos import FINALISE, STORE, TERMINAL, _basket
from contracts.target import ApiContext

CHECK = "prose_rule_refused"


@dataclass
class Request:
    """A valid request on the target: the path (parameters filled in), its JSON body and query."""

    path: str
    body: Any
    params: dict[str, str] | None = None
    make: prose.Maker | None = None  # how to make an item that repeats another's key


Builder = Callable[[ApiContext, random.Random], Request]


# -- valid requests, per operation -----------------------------------------------------------------
def _minted(ctx: ApiContext, kind: str, rnd: random.Random) -> str:
    ctx.require_admin("minting P/R/E codes (a vendor's codes come from a customer's app)")
    return suite._mint(ctx, kind, rnd)


def _another_code(ctx: ApiContext, rnd: random.Random) -> prose.Maker:
    """A repeated code: a newly minted one of the same type (so only the rule can refuse it)."""

    def make(site: prose.RuleSite, item: Any) -> Any:
        if site.instance == ("code",) and isinstance(item, str) and site.node.get("x-unique-by-prefix"):
            return _minted(ctx, item[0], rnd)
        return item

    return make


def _offerings(ctx: ApiContext, rnd: random.Random) -> Request:
    body = _basket(rnd.randrange(10**6), [_minted(ctx, "P", rnd)], finalise=False)
    product = body["basket"]["product_list"][0]
    body["basket"]["external_vouchers"] = [
        {"id": f"EXT-{rnd.randrange(10**5)}", "title": "Rule check", "value": "1.00", "sku": product["sku"],
         "quantity": "1", "apply_to_promotion": False}
    ]  # fmt: skip
    return Request("/v1/get/offerings", body, make=_another_code(ctx, rnd))


def _finalise(ctx: ApiContext, rnd: random.Random) -> Request:
    body = _basket(rnd.randrange(10**6), [_minted(ctx, "P", rnd)], finalise=True)
    return Request(FINALISE, body, make=_another_code(ctx, rnd))


def _refund(ctx: ApiContext, rnd: random.Random) -> Request:
    code = _minted(ctx, "P", rnd)
    finalised = ctx.request("POST", FINALISE, json=_basket(rnd.randrange(10**6), [code], finalise=True))
    assert finalised.status_code == 200, f"finalising the order to refund failed: {finalised.text[:300]}"
    order = finalised.json()["content"]["order_id"]
    return Request("/v1/refund", {"store_id": STORE, "terminal_id": TERMINAL, "order_id": order, "code": [code]})


def _channel_body(rnd: random.Random) -> dict[str, Any]:
    return {
        "type": "customer_webhook",
        "channel_type": "customer",
        "status": "ACTIVE",
        "permissions": {k: {"read": k == "customers", "write": k == "customers"} for k in ("products", "customers")}
        | {"orders": {"read": False, "write": False}},
        "custom_field_schema": data.channel_field_schema("customer", rnd),
    }  # fmt: skip


def _create_channel(ctx: ApiContext, rnd: random.Random) -> Request:
    return Request("/v2/create/channel", _channel_body(rnd))


def _update_channel(ctx: ApiContext, rnd: random.Random) -> Request:
    """A channel of the test's own (never the account's configured one)."""
    created = ctx.request("POST", "/v2/create/channel", json=_channel_body(rnd))
    assert created.status_code == 200, f"creating the channel to update failed: {created.text[:300]}"
    channel = created.json()["content"]["channel"]["_id"]
    return Request(f"/v2/channels/{channel}", {"custom_field_schema": data.channel_field_schema("customer", rnd)})


def _channel_customer(ctx: ApiContext, rnd: random.Random) -> Request:
    webhook = (ctx.creds.get("letstrade_channel") or {}).get("webhook_uuid")
    if not webhook:
        pytest.skip("no channel configured (LCS_LETSTRADE_WEBHOOK_UUID, LCS_LETSTRADE_CHANNEL_KEY)")
    fake = data.seeded(rnd)
    body = {"email": data.unique_email(fake, rnd), "cell_number": data.za_cell(rnd), "first_name": fake.first_name()}
    return Request(f"/v1/webhooks/channels/{webhook}/customers", body)


def _registration(ctx: ApiContext, rnd: random.Random) -> Request:
    fake = data.seeded(rnd)
    profile = {
        "firstName": fake.first_name(),
        "lastName": fake.last_name(),
        "identifiers": [{"type": "mobile", "value": data.capillary_identifier("mobile", fake, rnd)}],
        "source": "INSTORE",
    }
    body = {
        "profiles": [profile],
        "loyaltyProgramEnrollments": [{"programId": 469, "tierNumber": 1, "loyaltyPoints": 0}],
    }

    def make(site: prose.RuleSite, item: Any) -> Any:
        if site.instance[-1:] == ("identifiers",):  # the same type, another identifier
            return {"type": item["type"], "value": data.capillary_identifier(str(item["type"]), fake, rnd)}
        return item

    return Request("/v2/customers", body, make=make)


def _points(ctx: ApiContext, rnd: random.Random) -> Request:
    org = (ctx.creds.get("loke") or {}).get("organization_id")
    if not org:
        pytest.skip("no LOKE organization configured (LCS_LOKE_ORGANIZATION_ID)")
    listed = ctx.request("GET", f"/organizations/{org}/customers")
    customers = listed.json() if listed.status_code == 200 else []
    if not customers:
        pytest.skip(f"the organization {org} lists no customer to adjust points of")
    path = f"/organizations/{org}/customers/{customers[0]['id']}/points/lcs-rule-{rnd.randrange(10**9)}"
    return Request(path, {"amount": 25, "notes": "rule check"})


BUILDERS: dict[tuple[str, str], Builder] = {
    ("letstrade-pos", "getOfferings"): _offerings,
    ("letstrade-pos", "finaliseOfferings"): _finalise,
    ("letstrade-pos", "refund"): _refund,
    ("letstrade-channels", "createChannel"): _create_channel,
    ("letstrade-channels", "updateChannel"): _update_channel,
    ("letstrade-channels", "upsertChannelCustomer"): _channel_customer,
    ("capillary", "registerCustomer"): _registration,
    ("loke", "adjustPoints"): _points,
}


# -- verdicts ----------------------------------------------------------------------------------------
def rule_provenance(site: prose.RuleSite) -> Provenance:
    """What a target accepting the rule-breaking request refutes: the rule's own label (on its
    `x-rule-refusal`), else the label the keyword's node has."""
    refusal = site.refusal
    if isinstance(refusal.get("x-provenance"), str):
        return Provenance(
            str(refusal["x-provenance"]),
            f"{spec_file(site.slug)}#{site.pointer}/{prose.REFUSAL}",
            " ".join(str(refusal.get("x-assumption", "")).split()),
        )
    keys = [0 if part is None else part for part in site.instance]
    return index_for(site.slug).request_body_field(site.method, site.path, keys)


def _finding(site: prose.RuleSite, what: str, message: str, status: int) -> Finding:
    expected = int(site.refusal.get("status", 400))
    if what in ("status", "envelope"):
        provenance = index_for(site.slug).response(site.method, site.path, expected)
    else:
        provenance = rule_provenance(site)
    kind = {
        "accepted": "rule-breaking request accepted",
        "status": "rule refused otherwise",
        "envelope": "rule refused otherwise",
        "code": "rule refused otherwise",
        "fields": "rule refused otherwise",
    }[what]
    title = f"{site.where} {site.keyword}: {message}"
    return Finding(site.slug, f"{site.method} {site.path}", kind, CHECK, provenance, title, forced_broken=status >= 500)


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def run_rule(ctx: ApiContext, recorder: Recorder, site: prose.RuleSite, seed: int = 0) -> None:
    """Break `site`'s rule in a valid request on `ctx`'s target and judge the answer (records
    findings and fails the test on any)."""
    ctx.skip_irreversible(site.operation_id)
    builder = BUILDERS.get((site.slug, site.operation_id))
    assert builder is not None, f"no valid request is known for {site.slug} {site.operation_id}: add a builder"
    rnd = random.Random(f"{site.label}|{seed}")
    valid = builder(ctx, rnd)
    body, changed = prose.break_rule(site, valid.body, valid.make)
    assert prose.violations(prose.request_body_schema(site.slug, site.method, site.path), body), site.label
    recorder.case(f"{site.method} {site.path}")
    answer = ctx.request(site.method, valid.path, json=body, params=valid.params)
    problems = prose.refusal_problems(site, answer.status_code, _json(answer))
    if problems:
        findings = [_finding(site, what, message, answer.status_code) for what, message in problems]
        recorder.add(findings)
        verdicts = "\n".join(f"  - {finding.line()}" for finding in findings)
        pytest.fail(
            f"loyalty-contract-suite verdicts:\n{verdicts}\n\nbroken at {changed}: "
            f"{site.method} {valid.path} answered {answer.status_code}: {answer.text[:500]}",
            pytrace=False,
        )
    if ctx.is_mock:  # the refusal came from the rule: the request it was made from is accepted
        recorder.case(f"{site.method} {site.path}")
        control = ctx.request(site.method, valid.path, json=valid.body, params=valid.params)
        assert 200 <= control.status_code < 300, (
            f"the valid request {site.label} was built from was refused ({control.status_code}): {control.text[:500]}"
        )


def _sites() -> list[Any]:
    selected = options.current().apis
    return [
        pytest.param(site, id=f"{site.slug} {site.label}", marks=pytest.mark.lcs_api(site.slug, "rules"))
        for slug in SLUGS
        if slug in selected
        for site in prose.rule_sites(slug)
    ]


@pytest.mark.parametrize("site", _sites())
def test_rule(site: prose.RuleSite, lcs_context: ApiContext, lcs_recorder: Recorder) -> None:
    run_rule(lcs_context, lcs_recorder, site)
