"""The conformance rules over hand-made journals: each rule passes, fails and is not_applicable
for the right reasons, a violation is reported by the most precise rule only, and the reports
(JSON shape, HTML escaping, JUnit XML) hold whatever a till sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.apis.letstrade_pos.conformance import RULES, evaluate, to_html, to_json, to_junit
from mock_server.apis.letstrade_pos.conformance.evaluate import Report
from mock_server.clock import isoformat
from mock_server.spec import build_spec, load_document

SPEC = build_spec("letstrade-pos", load_document("letstrade-pos"))
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TIMEOUT = 1800.0


class Journal:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(
        self,
        op: str | None,
        body: Any,
        status: int = 200,
        response: Any = None,
        *,
        at: float = 0,
        api: str = "letstrade-pos",
        violations: list[dict[str, Any]] | None = None,
        duration_ms: float = 1.0,
        error: str | None = None,
    ) -> int:
        entry_id = len(self.entries) + 1
        self.entries.append(
            {
                "id": entry_id,
                "time": isoformat(T0 + timedelta(seconds=at)),
                "api": api,
                "operation_id": op,
                "method": "POST",
                "path": "/v1/x",
                "status": status,
                "request": {"headers": {}, "body": body},
                "response": {"headers": {}, "body": response, "error": error},
                "violations": violations or [],
                "source": "handler",
                "duration_ms": duration_ms,
            }
        )
        return entry_id

    def report(self, after: float = 0) -> Report:
        return evaluate(self.entries, SPEC, T0 + timedelta(seconds=after), TIMEOUT)


def status(report: Report) -> dict[str, str]:
    return {r.rule.id: r.status for r in report.results}


def failing(report: Report) -> dict[str, list[int]]:
    return {r.rule.id: [e.call.id for e in r.failing] for r in report.results if r.failing}


def basket(uuid: str = "B1", total: str = "10.00", **extra: Any) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "total": total,
        "outstanding": total,
        "product_list": [{"sku": "A", "pid": "pid-A", "quantity": "1", "price": total}],
        **extra,
    }


def offerings(uuid: str = "B1", codes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"store_id": "S1", "terminal_id": "T1", "basket": basket(uuid, **extra)}
    if codes is not None:
        body["code"] = codes
    return body


def finalise(uuid: str = "B1", codes: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    b = basket(uuid)
    b["outstanding_amount"] = b.pop("outstanding")
    b.update(extra)
    return {"store_id": "S1", "terminal_id": "T1", "basket": b, "code": codes or []}


def answer(**basket_fields: Any) -> dict[str, Any]:
    return {
        "success": True,
        "message": "ok",
        "content": {
            "order_id": "o1",
            "order_code": "LT-1",
            "basket": {"outstanding_amount": "10.00", "product_list": [], **basket_fields},
        },
    }


def test_an_empty_journal_is_not_applicable_everywhere_and_has_the_fixed_shape() -> None:
    data = to_json(Journal().report())
    assert data["summary"] == {"pass": 0, "fail": 0, "not_applicable": len(RULES)}
    assert [r["id"] for r in data["rules"]] == [r.id for r in RULES]
    for rule in data["rules"]:
        assert set(rule) == {"id", "title", "severity", "status", "source", "evidence"}
        assert rule["severity"] in ("error", "warning") and rule["source"] and rule["evidence"] == []


def test_a_clean_bill_passes_the_flow_rules() -> None:
    j = Journal()
    j.add("getOfferings", offerings(), response=answer())
    j.add("finaliseOfferings", finalise(), response=answer())
    got = status(j.report())
    for rule in (
        "LTP-SPEC-VALID",
        "LTP-OFFERINGS-ON-PRINT",
        "LTP-FINALISE-EVERY-BILL",
        "LTP-NO-FINALISE-RETRY",
        "LTP-AMOUNTS",
        "LTP-DECIMAL-STRINGS",
    ):
        assert got[rule] == "pass", rule
    for rule in ("LTP-PASS-BACK", "LTP-EXTERNAL-VOUCHERS", "LTP-EXPIRED-CODE", "LTP-APPEND-VOUCHERS"):
        assert got[rule] == "not_applicable", rule


def test_an_open_bill_fails_only_after_the_bill_timeout_counted_from_its_last_offerings() -> None:
    j = Journal()
    j.add("getOfferings", offerings(), response=answer())
    refresh = j.add("getOfferings", offerings(), response=answer(), at=600)
    assert status(j.report(after=600 + TIMEOUT))["LTP-FINALISE-EVERY-BILL"] == "not_applicable"
    late = j.report(after=600 + TIMEOUT + 1)
    assert failing(late) == {"LTP-FINALISE-EVERY-BILL": [refresh]}
    assert "finalise was never called" in late.results[2].failing[0].detail
    j.add("finaliseOfferings", finalise(), status=500, at=700)
    assert "all failed" in j.report(after=4000).results[2].failing[0].detail


def test_finalise_without_a_bill_print_fails_the_offerings_rule() -> None:
    j = Journal()
    alone = j.add("finaliseOfferings", finalise(), response=answer())
    assert failing(j.report()) == {"LTP-OFFERINGS-ON-PRINT": [alone]}


def test_json_numbers_are_a_warning_not_a_spec_violation_and_other_violations_are_exact() -> None:
    j = Journal()
    body = offerings()
    body["basket"]["total"] = 10
    body["basket"]["product_list"][0]["quantity"] = 1.5
    numbers = j.add("getOfferings", body, status=400)
    missing = offerings("B2")
    del missing["basket"]["product_list"][0]["pid"]
    broken = j.add("getOfferings", missing, status=400)
    report = j.report()
    assert failing(report) == {"LTP-SPEC-VALID": [broken], "LTP-DECIMAL-STRINGS": [numbers]}
    assert "basket.product_list[0].pid" in report.results[0].failing[0].detail
    warning = report.results[-1].failing[0].detail
    assert "basket.total = 10" in warning and "basket.product_list[0].quantity = 1.5" in warning
    assert report.failed_errors()[0].rule.id == "LTP-SPEC-VALID"


def test_a_number_inside_a_nullable_deal_is_found_and_a_documented_number_is_not_flagged() -> None:
    j = Journal()
    j.add("getOfferings", offerings(), response=answer())
    body = finalise(vouchers=[{"id": "V1", "apply_to": "BASKET", "discount": 5.0}])  # documented as number
    body["basket"]["product_list"][0]["deal"] = {"id": "D1", "discount": 6}
    sent = j.add("finaliseOfferings", body, status=400)
    report = j.report()
    assert failing(report) == {"LTP-DECIMAL-STRINGS": [sent]}
    assert "basket.product_list[0].deal.discount = 6" in report.results[-1].failing[0].detail
    assert "vouchers[0].discount" not in report.results[-1].failing[0].detail


def test_external_vouchers_on_finalise_are_reported_by_their_own_rule_only() -> None:
    j = Journal()
    ext = [{"id": "X1", "value": "1.00"}]
    j.add("getOfferings", offerings(external_vouchers=ext), response=answer())
    wrong = j.add("finaliseOfferings", finalise(external_vouchers=ext), status=400)
    j.add("finaliseOfferings", finalise(), response=answer())
    report = j.report()
    assert failing(report) == {"LTP-EXTERNAL-VOUCHERS": [wrong]}
    assert "X1" in report.results[4].failing[0].detail


def test_deals_and_vouchers_of_the_last_offerings_and_of_append_vouchers_must_be_passed_back() -> None:
    j = Journal()
    product = {"sku": "A", "vouchers": [{"id": "PV"}], "deal": {"id": "PD"}}
    j.add(
        "getOfferings",
        offerings(),
        response=answer(product_list=[product], vouchers=[{"id": "BV"}], deals=[{"id": "BD"}]),
    )
    j.add(
        "appendVouchers",
        {"store_id": "S1", "terminal_id": "T1", "transaction_id": "B1", "vouchers": [{"id": "APP"}]},
        api="letstrade-pos-provider",
        response={"success": True, "message": "ok"},
    )
    sent = finalise(vouchers=[{"id": "BV", "apply_to": "BASKET", "discount": 1}])
    sent["basket"]["product_list"][0]["vouchers"] = [{"id": "PV"}]
    closing = j.add("finaliseOfferings", sent, response=answer())
    report = j.report()
    assert failing(report) == {"LTP-PASS-BACK": [closing]}
    detail = report.results[3].failing[0].detail
    assert "deal PD" in detail and "deal BD" in detail and "voucher APP" in detail
    assert "voucher BV" not in detail and "voucher PV" not in detail


def test_a_finalise_sent_again_after_a_2xx_fails_by_basket_and_by_code() -> None:
    j = Journal()
    j.add("getOfferings", offerings(codes=["EAAAA1"]), response=answer())
    j.add("finaliseOfferings", finalise(codes=["EAAAA1"]), response=answer())
    same_basket = j.add("finaliseOfferings", finalise(codes=["EAAAA1"]), status=409)
    j.add("getOfferings", offerings("B2"), response=answer())
    same_code = j.add("finaliseOfferings", finalise("B2", codes=["EAAAA1"]), status=409)
    assert failing(j.report()) == {"LTP-NO-FINALISE-RETRY": [same_basket, same_code]}


def test_a_finalise_resent_after_a_failure_is_not_a_retry_of_an_executed_one() -> None:
    j = Journal()
    j.add("getOfferings", offerings(), response=answer())
    j.add("finaliseOfferings", finalise(), status=503)
    j.add("finaliseOfferings", finalise(), response=answer())
    assert status(j.report())["LTP-NO-FINALISE-RETRY"] == "pass"


def test_an_expired_code_must_be_replaced_not_retried() -> None:
    expired = {"success": False, "message": "expired", "errors": [{"field": "code[1]", "message": "expired at x"}]}
    j = Journal()
    j.add("getOfferings", offerings(codes=["PAAAA1", "EBBBB2"]), status=410, response=expired)
    j.add("getOfferings", offerings(codes=["PAAAA1", "ECCCC3"]), response=answer())
    assert status(j.report())["LTP-EXPIRED-CODE"] == "pass", "P was not the expired code: keeping it is fine"
    again = j.add("finaliseOfferings", finalise(codes=["EBBBB2"]), status=410, response=expired)
    assert failing(j.report()) == {"LTP-EXPIRED-CODE": [again]}


def test_append_vouchers_timeouts_slow_answers_violations_and_refusals_of_open_bills_fail() -> None:
    j = Journal()
    j.add("getOfferings", offerings(), response=answer())
    body = {"store_id": "S1", "terminal_id": "T1", "transaction_id": "B1", "vouchers": []}
    provider = "letstrade-pos-provider"
    good = j.add("appendVouchers", body, api=provider, response={"success": True, "message": "ok"})
    assert status(j.report())["LTP-APPEND-VOUCHERS"] == "pass"
    timeout = j.add(
        "appendVouchers",
        body,
        status=0,
        api=provider,
        error="the POS did not answer within 5 s",
        violations=[{"kind": "timeout", "message": "the POS did not answer within 5 s"}],
    )
    slow = j.add("appendVouchers", body, api=provider, duration_ms=2500, response={"success": True, "message": "ok"})
    bad = j.add(
        "appendVouchers",
        body,
        api=provider,
        response={"ok": 1},
        violations=[{"kind": "response_schema", "field": "success", "message": "is required"}],
    )
    refused = j.add("appendVouchers", body, status=404, api=provider, response={"success": False, "message": "no"})
    report = j.report()
    assert failing(report) == {"LTP-APPEND-VOUCHERS": [timeout, slow, bad, refused]}
    assert good not in failing(report)["LTP-APPEND-VOUCHERS"]
    details = [e.detail for e in report.results[7].failing]
    assert "did not answer" in details[0] and "2500 ms" in details[1] and "success" in details[2]
    assert "printed and has not closed" in details[3]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"total": "12.00"}, "not the sum of the product lines"),
        ({"outstanding": "11.00"}, "more than basket.total"),
        ({"outstanding": "-1.00"}, "negative"),
        ({"sub_total": "5.00", "vat": "1.00"}, "sub_total"),
    ],
)
def test_inconsistent_amounts_fail(change: dict[str, str], expected: str) -> None:
    j = Journal()
    body = offerings()
    body["basket"].update(change)
    sent = j.add("getOfferings", body, response=answer())
    report = j.report()
    assert failing(report) == {"LTP-AMOUNTS": [sent]}
    assert expected in report.results[8].failing[0].detail


def test_vat_inclusive_and_exclusive_prices_condiments_promotions_and_add_ons_add_up() -> None:
    product = {
        "sku": "C",
        "pid": "p",
        "quantity": "2",
        "price": "30.00",
        "on_promotion": True,
        "promotion_price": "25.00",
        "condiments": [{"pid": "m", "price": "5.00", "quantity": "1"}],
        "add_ons": [{"sku": "S", "pid": "s", "quantity": "1", "price": "10.00"}],
    }
    j = Journal()
    inclusive = {
        "store_id": "S1",
        "terminal_id": "T1",
        "basket": {
            "uuid": "B1",
            "total": "70.00",
            "outstanding": "70.00",
            "vat": "9.13",
            "sub_total": "60.87",
            "product_list": [product],
        },
    }
    exclusive = json.loads(json.dumps(inclusive))
    exclusive["basket"].update(uuid="B2", total="80.50", outstanding="80.50", vat="10.50", sub_total="70.00")
    j.add("getOfferings", inclusive, response=answer())
    j.add("getOfferings", exclusive, response=answer())
    assert status(j.report())["LTP-AMOUNTS"] == "pass"


def test_unauthenticated_and_unknown_path_requests_violate_the_spec() -> None:
    j = Journal()
    no_token = j.add("getOfferings", offerings(), status=401)
    unknown = j.add(None, {"x": 1}, status=404)
    report = j.report()
    assert failing(report)["LTP-SPEC-VALID"] == [no_token, unknown]


def test_evidence_is_capped_and_says_how_many_more() -> None:
    j = Journal()
    for index in range(130):
        j.add("getOfferings", offerings(f"B{index}"), status=401)
    shown = to_json(j.report())["rules"][0]["evidence"]
    assert len(shown) == 100 and shown[-1]["detail"].endswith("(and 30 more like this)")


HOSTILE = st.text(alphabet=st.sampled_from(list("<>&\"'/ascript=\x00\x07é")), min_size=1, max_size=40)


@given(HOSTILE)
def test_html_and_junit_carry_hostile_till_input_safely(text: str) -> None:
    j = Journal()
    j.add("getOfferings", offerings(uuid="<script>alert(1)</script>" + text), response=answer())
    j.add("finaliseOfferings", {"store_id": text, "terminal_id": "T1", "basket": {"uuid": text}}, status=400)
    report = j.report(after=TIMEOUT + 1)
    page = to_html(report)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    root = ET.fromstring(to_junit(report).encode())
    assert root.tag == "testsuites" and len(root.findall("./testsuite/testcase")) == len(RULES)
