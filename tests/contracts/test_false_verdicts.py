"""A correct mock is never blamed for the suite's own invalid cases (issues 21 and 22).

- The links phase once sent a finalise with codes `["R…", "P…", "P…"]`: "at most one code of each
  type" was only prose, honoured by the generation hook but not by the preparation every phase
  shares, and a linked case skips the hook. The rule is now `x-unique-by-prefix` in the spec
  (`contracts/prose.py`), honoured for every positive case just before it is sent.
- `POST /v1/refund` was once reported "schema-violating request accepted (200)": the negative case
  left out `Authorization` on purpose, and the runner put the suite's own credentials back.
"""

from __future__ import annotations

import functools
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from contracts import data, options, prose, suite
from contracts.report import Recorder
from contracts.specs import SLUGS
from contracts.stateful.letstrade_pos import FINALISE, REFUND, _basket
from contracts.target import ApiContext

PROSE_SPECS = (*SLUGS, "letstrade-pos-provider")
REFUSAL_KEYS = {"status", "code", "message", "mock-domain", "x-provenance", "x-source", "x-assumption"}


@pytest.mark.lcs_api("letstrade-pos", "links")
def test_a_linked_finalise_sends_one_code_of_each_type(
    lcs_context: ApiContext, lcs_recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The falsifying example: a finalise whose parent is a get/offerings (so `prepare` keeps its
    values: substitute=False) with two P codes. Before the fix the mock rightly answered 400 and
    `positive_data_acceptance` reported "contract broken" on the finalise."""
    rnd = random.Random(21)
    codes = [suite._mint(lcs_context, kind, rnd) for kind in ("R", "P", "P")]
    operation = suite.build_schema("letstrade-pos", options.current())[FINALISE]["POST"]
    case = operation.Case(body=_basket(21, codes, finalise=True))
    monkeypatch.setattr(data, "is_positive", lambda case: True)  # as a positive case of the links phase
    suite.Runner(lcs_context, lcs_recorder).call_kwargs(case, substitute=False)
    assert case.body["code"] == codes[:2], "the later code of a type already sent is dropped, nothing else"
    response = lcs_context.request("POST", FINALISE, json=case.body)
    assert response.status_code == 200, response.text


@pytest.mark.lcs_api("letstrade-pos", "links")
def test_a_fresh_linked_finalise_gets_a_basket_whose_amounts_are_allowed(
    lcs_context: ApiContext, lcs_recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the 20-seed run (seed 9): a links-phase finalise whose body was generated afresh
    (not taken from the link) carried add-ons with negative quantity and prices; the mock rightly
    answered 400 ("an amount is negative", letstrade-pos.yaml ValidationError) and the suite
    reported "contract broken" on the finalise."""
    code = suite._mint(lcs_context, "P", random.Random(25))
    body = _basket(25, [code], finalise=True)
    product = body["basket"]["product_list"][0]
    product["add_ons"] = [{"pid": "a1", "quantity": "-08500", "price": "-5853927.182787"}]
    product["condiments"] = [{"pid": "c1", "price": "-613373"}]
    assert not data.basket_amounts_allowed(body["basket"])
    operation = suite.build_schema("letstrade-pos", options.current())[FINALISE]["POST"]
    case = operation.Case(body=body)
    monkeypatch.setattr(data, "is_positive", lambda case: True)
    suite.Runner(lcs_context, lcs_recorder).call_kwargs(case, substitute=False)
    assert data.basket_amounts_allowed(case.body["basket"]) and case.body["code"] == [code]
    response = lcs_context.request("POST", FINALISE, json=case.body)
    assert response.status_code == 200, response.text
    valid = _basket(26, [code], finalise=True)
    linked = operation.Case(body=json.loads(json.dumps(valid)))
    suite.Runner(lcs_context, lcs_recorder).call_kwargs(linked, substitute=False)
    assert linked.body == valid, "a valid basket (a link's) is left as it is"


def test_basket_amount_bounds() -> None:
    assert data.basket_amounts_allowed({"total": "0.00", "product_list": [{"quantity": "2", "price": "5.00"}]})
    assert not data.basket_amounts_allowed({"total": "-0.01"})
    assert not data.basket_amounts_allowed({"total": "999999999999999.999"})
    big = {"quantity": "10", "price": "999999999999999.00"}
    assert not data.basket_amounts_allowed({"product_list": [big]})
    assert data.basket_amounts_allowed({"product_list": [{**big, "quantity": "1"}]})


def _negative_without_authorization(operation: Any) -> Any:
    """A negative case whose only invalid part is the missing `Authorization` header."""
    schema = operation.schema

    def wanted(case: Any) -> bool:
        return schema.is_security_param_negated(case) and not case.meta.is_negative_at(ParameterLocation.BODY)

    return find(
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        wanted,
        settings=settings(
            max_examples=2000, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)
        ),
    )


@pytest.mark.lcs_api("letstrade-pos", "links")
def test_a_negative_case_without_credentials_is_sent_without_them(
    lcs_context: ApiContext, lcs_recorder: Recorder
) -> None:
    """The refund a finalise links to, in negative mode with `Authorization` left out: before the
    fix the runner added the suite's token, the correct mock refunded (200) and the suite reported
    "schema-violating request accepted"."""
    code = suite._mint(lcs_context, "P", random.Random(22))
    finalised = lcs_context.request("POST", FINALISE, json=_basket(22, [code], finalise=True))
    assert finalised.status_code == 200, finalised.text
    operation = suite.build_schema("letstrade-pos", options.current())[REFUND]["POST"]
    case = _negative_without_authorization(operation)
    body = finalised.json()["content"]
    case.body = {"store_id": "LCS-STORE-1", "terminal_id": "LCS-TILL-1", "order_id": body["order_id"]}
    runner = suite.Runner(lcs_context, lcs_recorder)
    assert "Authorization" not in runner.call_kwargs(case)["headers"]
    runner.run(case)  # raised FailureGroup (AcceptedNegativeData, 200) before the fix
    assert not lcs_recorder.findings
    still = lcs_context.request("POST", REFUND, json=case.body)
    assert still.status_code == 200, "the order was refunded by the unauthenticated request"


def test_positive_cases_keep_their_credentials() -> None:
    operation = suite.build_schema("letstrade-pos", options.current())[REFUND]["POST"]
    case = find(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        lambda case: True,
        settings=settings(database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck)),
    )
    assert not suite.negates_credentials(case)
    assert suite.negates_credentials(_negative_without_authorization(operation))


# -- the x- keywords ---------------------------------------------------------------------------------
def _keyword_nodes(slug: str) -> list[tuple[str, dict[str, Any]]]:
    from contracts.specs import load_spec, resolve_ref

    document = load_spec(slug)
    return [(pointer, resolve_ref(document, f"#{pointer}")) for pointer in prose.keyword_locations(slug)]


@pytest.mark.parametrize("slug", PROSE_SPECS)
def test_the_keywords_are_well_formed(slug: str) -> None:
    for pointer, node in _keyword_nodes(slug):
        where = f"{slug}.yaml#{pointer}"
        if "x-unique-by" in node:
            pointers = node["x-unique-by"]
            assert isinstance(pointers, list) and pointers, where
            assert all(isinstance(p, str) and (p == "" or p.startswith("/")) for p in pointers), where
        if "x-unique-by-exempt" in node:
            assert isinstance(node["x-unique-by-exempt"], list) and len(node.get("x-unique-by", [])) == 1, where
        if "x-unique-by-prefix" in node:
            assert isinstance(node["x-unique-by-prefix"], int) and node["x-unique-by-prefix"] >= 1, where
        if "x-unique-by" in node or "x-unique-by-prefix" in node:
            assert "items" in node, f"{where}: a uniqueness rule belongs on an array"
        for group in node.get("x-one-of-required", []):
            assert isinstance(group, list) and len(group) >= 2, where
            assert all(name in (node.get("properties") or {}) for name in group), where
        if "x-forbidden-values" in node:
            assert isinstance(node["x-forbidden-values"], list) and node["x-forbidden-values"], where
        _refusal_well_formed(slug, where, node)


def _refusal_well_formed(slug: str, where: str, node: dict[str, Any]) -> None:
    """Every keyword location says what refusal the documents give (`x-rule-refusal`), with the
    vendor's error code in the form its envelope carries, and a label where it differs."""
    refusal = node.get(prose.REFUSAL)
    assert isinstance(refusal, dict), f"{where}: a prose rule needs its x-rule-refusal"
    assert set(refusal) <= REFUSAL_KEYS, where
    assert isinstance(refusal.get("status"), int) and 400 <= refusal["status"] < 500, where
    code = refusal.get("code")
    assert code is None or isinstance(code, {"capillary": int, "loke": str}.get(slug, type(None))), where
    for key in ("message", "mock-domain"):
        assert key not in refusal or (isinstance(refusal[key], str) and refusal[key].strip()), where
    if refusal.get("x-provenance") == "assumed":
        assert refusal.get("x-assumption"), where
    elif "x-provenance" in refusal:
        assert refusal["x-provenance"] in ("seed", "public-docs") and refusal.get("x-source"), where


@pytest.mark.parametrize("slug", PROSE_SPECS)
def test_every_rule_refusal_is_a_documented_response(slug: str) -> None:
    """The refusal's status is a response every operation meeting the rule documents (its schema
    is the envelope the negative cases check), and an x-rule-refusal sits only beside a rule."""
    for site in prose.rule_sites(slug):
        status = site.refusal.get("status")
        assert prose.documented_response(slug, site.method, site.path, status) is not None, (site.label, status)
    for pointer, node in _keyword_nodes(slug):
        assert any(k in node for k in prose.KEYWORDS), pointer

    def stray(node: Any, pointer: str) -> list[str]:
        if isinstance(node, dict):
            found = [pointer] if prose.REFUSAL in node and not any(k in node for k in prose.KEYWORDS) else []
            return found + [p for k, v in node.items() for p in stray(v, f"{pointer}/{k}")]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in stray(v, f"{pointer}/{i}")]
        return []

    from contracts.specs import load_spec

    assert stray(load_spec(slug), "") == []


def test_every_prose_rule_has_its_keyword() -> None:
    """The rules issue 21 lists, found where their prose is (a rule dropped from a spec fails here)."""
    found = {slug: prose.keyword_locations(slug) for slug in PROSE_SPECS}
    expected = {
        "letstrade-pos": [
            "/components/schemas/Codes",
            "/components/schemas/RefundRequest/properties/code",
            "/components/schemas/OfferingsBasket/properties/external_vouchers",  # seed 004: "unique identifier"
        ],
        "letstrade-channels": [
            "/components/schemas/CustomFieldSchema",
            "/components/schemas/ChannelCustomerPayload",
        ],
        "capillary": [
            "/components/schemas/RegisterProfile/properties/identifiers",
            "/components/schemas/RegisterCustomerRequest/properties/profiles",
            "/components/schemas/RegisterCustomerRequest/properties/loyaltyProgramEnrollments",
        ],
        "loke": ["/components/schemas/PointsAdjustment/properties/amount"],
    }
    for slug, pointers in expected.items():
        assert set(pointers) <= set(found[slug]), (slug, found[slug])


def test_violations_and_honour_on_each_keyword() -> None:
    codes = prose.request_body_schema("letstrade-pos", "POST", FINALISE)
    assert codes is not None
    body: dict[str, Any] = {"code": ["R1111", "P2222", "P3333", "R1111", "E4444"]}
    assert [v.split(":")[0] for v in prose.violations(codes, body)] == ["code[2]", "code[3]"]
    prose.honour(codes, body, random.Random(0))
    assert body["code"] == ["R1111", "P2222", "E4444"] and prose.violations(codes, body) == []

    register = prose.request_body_schema("capillary", "POST", "/v2/customers")
    assert register is not None
    profile = {"source": "INSTORE", "identifiers": [{"type": "mobile", "value": "1"}, {"type": "mobile", "value": "2"}]}
    cards = [{"type": "cardnumber", "value": "1"}, {"type": "cardnumber", "value": "2"}]
    registration = {
        "profiles": [profile, {"source": "INSTORE", "identifiers": cards}, {"source": "INSTORE", "accountId": "9"}],
        "loyaltyProgramEnrollments": [{"programId": 469}, {"programId": 470}, {"programId": 469}],
    }
    assert len(prose.violations(register, registration)) == 3  # mobile twice, INSTORE twice, 469 twice
    prose.honour(register, registration, random.Random(0))
    assert prose.violations(register, registration) == []
    assert [p.get("accountId") for p in registration["profiles"]] == [None, "9"]  # source accounts differ by id
    assert registration["profiles"][0]["identifiers"] == [{"type": "mobile", "value": "1"}]
    assert [e["programId"] for e in registration["loyaltyProgramEnrollments"]] == [469, 470]

    payload = prose.request_body_schema("letstrade-channels", "POST", "/v1/webhooks/channels/{webhook_uuid}/customers")
    points = prose.request_body_schema(
        "loke", "PUT", "/organizations/{organizationId}/customers/{customerId}/points/{reference}"
    )
    for schema in (payload, points):
        assert schema is not None, "operation path moved: update this test"
    assert prose.violations(payload, {"first_name": "Ann"})
    filled = prose.honour(payload, {"first_name": "Ann"}, random.Random(0), data._fill)
    assert "@" in filled["email"] and prose.violations(payload, filled) == []
    assert prose.violations(points, {"amount": 0}) and prose.honour(points, {"amount": 0}, random.Random(0))["amount"]


def _operations_with_keywords() -> list[tuple[str, str, str]]:
    found = []
    for slug in SLUGS:
        for path in prose._dereferenced(slug).get("paths") or {}:
            for method in ("get", "put", "post", "patch", "delete"):
                body = prose.request_body_schema(slug, method, path)
                if body is not None and _has_keyword(body):
                    found.append((slug, method.upper(), path))
    return found


def _has_keyword(node: Any) -> bool:
    if isinstance(node, dict):
        return any(k in node for k in prose.KEYWORDS) or any(_has_keyword(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_keyword(v) for v in node)
    return False


OPERATIONS = _operations_with_keywords()


@functools.cache
def _schema(slug: str) -> Any:
    return suite.build_schema(slug, options.current())


def test_the_keywords_reach_the_operations_they_govern() -> None:
    assert {(slug, path) for slug, _, path in OPERATIONS} >= {
        ("letstrade-pos", "/v1/get/offerings"),
        ("letstrade-pos", FINALISE),
        ("letstrade-pos", REFUND),
        ("capillary", "/v2/customers"),
        ("letstrade-channels", "/v2/create/channel"),
    }


@pytest.mark.parametrize(("slug", "method", "path"), OPERATIONS)
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(draw=st.data())
def test_every_positive_case_honours_the_keywords(slug: str, method: str, path: str, draw: st.DataObject) -> None:
    """What any phase sends as positive (generated, then `documented_rules`) breaks no rule."""
    operation = _schema(slug)[path][method]
    case = draw.draw(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    data.documented_rules(slug, case, random.Random(draw.draw(st.integers(0, 2**32))))
    schema = prose.request_body_schema(slug, method, path)
    assert prose.violations(schema, case.body) == []


# -- the mock refuses what the keywords forbid (the keywords describe the mock's real rules) ---------
def _refused(response: Any, status: int = 400) -> None:
    assert response.status_code == status, response.text


def _breaks(slug: str, method: str, path: str, body: Any) -> None:
    schema = prose.request_body_schema(slug, method, path)
    assert prose.violations(schema, body), "this request was meant to break a keyword's rule"


@pytest.mark.lcs_api("letstrade-pos", "links")
def test_the_mock_refuses_two_codes_of_a_type_and_a_code_refunded_twice(lcs_context: ApiContext) -> None:
    rnd = random.Random(24)
    first, second = (suite._mint(lcs_context, "P", rnd) for _ in range(2))
    body = _basket(24, [first, second], finalise=False)
    _breaks("letstrade-pos", "POST", "/v1/get/offerings", body)
    _refused(lcs_context.request("POST", "/v1/get/offerings", json=body))
    finalised = lcs_context.request("POST", FINALISE, json=_basket(24, [first], finalise=True))
    assert finalised.status_code == 200, finalised.text
    refund = {
        "store_id": "LCS-STORE-1",
        "terminal_id": "LCS-TILL-1",
        "order_id": finalised.json()["content"]["order_id"],
        "code": [first, first],
    }
    _breaks("letstrade-pos", "POST", REFUND, refund)
    _refused(lcs_context.request("POST", REFUND, json=refund))


@pytest.mark.lcs_api("letstrade-channels", "links")
def test_the_mock_refuses_a_field_defined_twice_and_a_payload_without_identifier(lcs_context: ApiContext) -> None:
    fields = [{"name": "email", "type": "email", "required": True}, {"name": "email", "type": "email"}]
    channel = {
        "type": "customer_webhook",
        "channel_type": "customer",
        "status": "ACTIVE",
        "permissions": {k: {"read": True, "write": True} for k in ("products", "orders", "customers")},
        "custom_field_schema": fields,
    }
    _breaks("letstrade-channels", "POST", "/v2/create/channel", channel)
    _refused(lcs_context.request("POST", "/v2/create/channel", json=channel))
    webhook = lcs_context.creds["letstrade_channel"]["webhook_uuid"]
    path = "/v1/webhooks/channels/{webhook_uuid}/customers"
    _breaks("letstrade-channels", "POST", path, {"first_name": "Ann"})
    _refused(lcs_context.request("POST", path.format(webhook_uuid=webhook), json={"first_name": "Ann"}))


@pytest.mark.lcs_api("capillary", "links")
def test_the_mock_refuses_repeats_in_a_registration(lcs_context: ApiContext) -> None:
    def profile(mobile: str, **more: Any) -> dict[str, Any]:
        return {"source": "INSTORE", "identifiers": [{"type": "mobile", "value": mobile}], **more}

    two_mobiles = profile("919800000001")
    two_mobiles["identifiers"].append({"type": "mobile", "value": "919800000002"})
    repeats = {
        "8013": {"profiles": [two_mobiles]},
        "8014": {"profiles": [profile("919800000003"), profile("919800000004")]},
        "8014 ": {
            "profiles": [profile("919800000005")],
            "loyaltyProgramEnrollments": [{"programId": 469}, {"programId": 469}],
        },
    }
    for code, body in repeats.items():
        _breaks("capillary", "POST", "/v2/customers", body)
        answer = lcs_context.request("POST", "/v2/customers", json=body)
        assert answer.status_code == 400 and int(code) in {e["code"] for e in answer.json()["errors"]}, answer.text


@pytest.mark.lcs_api("loke", "links")
def test_the_mock_refuses_a_zero_points_adjustment(lcs_context: ApiContext) -> None:
    org = lcs_context.creds["loke"]["organization_id"]
    customer = lcs_context.request("GET", f"/organizations/{org}/customers").json()[0]["id"]
    path = "/organizations/{organizationId}/customers/{customerId}/points/{reference}"
    _breaks("loke", "PUT", path, {"amount": 0})
    _refused(
        lcs_context.request("PUT", f"/organizations/{org}/customers/{customer}/points/lcs-zero", json={"amount": 0})
    )
