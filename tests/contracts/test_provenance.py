"""Provenance-aware results: a failure lands on the most specific spec item, and is "assumption
refuted" where that item is `x-provenance: assumed`; the session summary aggregates per API."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import requests
import schemathesis
from schemathesis import Response
from schemathesis.core.failures import FailureGroup

from contracts.failures import annotate, classify, findings_from
from contracts.provenance import index_for
from contracts.report import META, PROPERTY, Recorder, Summary
from contracts.specs import load_spec


def test_operation_and_response_provenance_follow_refs() -> None:
    pos = index_for("letstrade-pos")
    finalise = pos.operation("POST", "/v1/finalise/offerings")
    assert (finalise.value, finalise.location) == ("seed", "letstrade-pos.yaml#/paths/~1v1~1finalise~1offerings/post")
    assert pos.operation("POST", "/user/sign_in").assumed
    conflict = pos.response("POST", "/v1/finalise/offerings", 409)
    assert conflict.assumed and conflict.location == "letstrade-pos.yaml#/components/responses/AlreadyFinalised"
    assert "409" in conflict.assumption
    # an undocumented status falls back to the operation
    assert pos.response("POST", "/v1/finalise/offerings", 418).location == finalise.location


def test_schema_fields_take_the_deepest_declared_provenance() -> None:
    pos = index_for("letstrade-pos")
    loan = pos.response_field("POST", "/v1/get/offerings", 200, ["content", "basket", "loan", "amount"])
    assert loan.assumed and loan.location.endswith("/components/schemas/OfferingsResultBasket/properties/loan")
    order = pos.response_field("POST", "/v1/get/offerings", 200, ["content", "order_id"])
    # the `content` wrapper is public-docs, but the fields inside are the document's own (its response table)
    assert order.value == "seed"
    assert order.location.endswith("/OfferingsResponse/properties/content/properties/order_id")
    assert pos.response_field("POST", "/v1/get/offerings", 200, ["success"]).value == "public-docs"
    voucher_id = pos.response_field(
        "POST", "/v1/get/offerings", 200, ["content", "basket", "product_list", 0, "vouchers", 0, "id"]
    )
    assert voucher_id.assumed and voucher_id.location.endswith("/ProductVoucher/properties/id")


def test_parameters_and_webhooks() -> None:
    loke = index_for("loke")
    after = loke.parameter("GET", "/organizations/{organizationId}/customers", "query", "after")
    assert after.assumed and after.location == "loke.yaml#/components/parameters/After/schema"
    event = loke.operation("post", "customer.created")
    assert event.value == "seed" and event.location == "loke.yaml#/webhooks/customer.created/post"
    assert "refuted" in after.describe() and "broken" in event.describe()


def _response(status: int, body: object, url: str) -> Response:
    return Response(
        status_code=status,
        headers={"content-type": ["application/json"]},
        content=json.dumps(body).encode(),
        request=requests.Request("GET", url).prepare(),
        elapsed=0.0,
        verify=True,
    )


def test_builtin_failures_are_classified_by_where_they_land() -> None:
    schema = schemathesis.openapi.from_dict(load_spec("customtrades"))
    case = schema["/v1/customers/{uuid}"]["GET"].Case(path_parameters={"uuid": "123e4567-e89b-12d3-a456-426614174000"})
    customer = {"uuid": "123e4567-e89b-12d3-a456-426614174000", "first_name": "A", "last_name": "B", "is_vip": "yes"}
    bad = _response(200, {"success": True, "data": customer}, "http://mock/customtrades/v1/customers/x")
    with pytest.raises(FailureGroup) as caught:
        case.validate_response(bad, checks=[schemathesis.specs.openapi.checks.response_schema_conformance])
    findings = findings_from("customtrades", "customtrades", caught.value, case, 200)
    assert findings and findings[0].check == "response_schema_conformance"
    assert findings[0].kind == "response schema" and findings[0].operation == "GET /v1/customers/{uuid}"
    assert findings[0].provenance.location.startswith("customtrades.yaml#/components/schemas/")
    message = annotate(caught.value, findings).message
    assert message.startswith("loyalty-contract-suite verdicts:") and "contract broken: customtrades.yaml#" in message


def test_a_server_error_is_never_an_assumption() -> None:
    schema = schemathesis.openapi.from_dict(load_spec("letstrade-pos"))
    case = schema["/user/sign_in"]["POST"].Case(
        body={"email": "a@example.com", "password": "x"}
    )  # an assumed operation
    with pytest.raises(FailureGroup) as caught:
        case.validate_response(
            _response(500, {"success": False}, "http://mock/x"), checks=[schemathesis.checks.not_a_server_error]
        )
    finding = classify("letstrade-pos", "letstrade-pos", caught.value.exceptions[0], case, 500)
    assert finding.provenance.assumed and not finding.refuted
    assert finding.verdict.startswith("contract broken")


def test_summary_aggregates_reports_per_api() -> None:
    summary = Summary()
    recorder = Recorder("loke", "operations")
    recorder.case("GET /organizations/{organizationId}/customers")
    recorder.case("GET /organizations/{organizationId}/customers")
    meta = (META, json.dumps({"api": "loke", "suite": "operations", "label": "operations GET /x"}))

    def report(when: str, outcome: str, props: list[tuple[str, str]]) -> SimpleNamespace:
        return SimpleNamespace(
            nodeid="t::x",
            when=when,
            passed=outcome == "passed",
            failed=outcome == "failed",
            skipped=outcome == "skipped",
            user_properties=props,
            longrepr=None,
        )

    summary.add_report(report("setup", "passed", [meta]))
    summary.add_report(report("call", "passed", [meta]))
    summary.add_report(report("teardown", "passed", [meta, (PROPERTY, recorder.as_property())]))
    lines = summary.lines("target: test")
    row = next(line for line in lines if line.startswith("loke"))
    assert row.split()[1:5] == ["1", "2", "1", "0"]  # operations, cases, passed, failed
    failing = Recorder("loke", "operations")
    failing.case("GET /organizations/{organizationId}/customers")
    pos = index_for("letstrade-pos")
    from contracts.failures import Finding

    failing.add(
        [
            Finding(
                "loke",
                "GET /x",
                "paging",
                "next_page_never_repeats",
                pos.response("POST", "/v1/finalise/offerings", 409),
                "t",
            )
        ]
    )
    summary.add_report(SimpleNamespace(**{**vars(report("call", "failed", [meta])), "nodeid": "t::y"}))
    summary.add_report(
        SimpleNamespace(
            **{**vars(report("teardown", "passed", [meta, (PROPERTY, failing.as_property())])), "nodeid": "t::y"}
        )
    )
    lines = summary.lines("target: test")
    row = next(line for line in lines if line.startswith("loke"))
    assert row.split()[3:5] == ["1", "1"] and "paging (refuted): 1" in row
    assert any(
        line.strip().startswith("assumption refuted: letstrade-pos.yaml#/components/responses/AlreadyFinalised")
        for line in lines
    )
