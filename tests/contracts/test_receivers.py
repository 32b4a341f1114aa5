"""Fuzzing the endpoints a vendor calls: a LOKE webhook receiver and a POS's append-vouchers
endpoint, each against a correct local implementation (must pass) and broken ones (must fail,
naming the check), directly and through the plugin's options (`--webhook-receiver`,
`--pos-callback-url`)."""

from __future__ import annotations

import hmac
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from contracts.failures import ContractViolation
from contracts.receivers import (
    SIGNATURE_HEADER,
    LocalReceiver,
    fuzz_pos_provider,
    fuzz_webhook_receiver,
    sign,
    verifying_webhook_handler,
)
from tests.contracts.suite_runner import run_suite

SECRET = "whsec_contract_suite_test_secret"


def accepts_everything(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
    return 200, {"ok": True}


def compares_signature_loosely(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
    """Only checks that a sha256= signature is present (a common bug)."""
    sent = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER.lower(), "")
    return (204, None) if sent.startswith("sha256=") else (401, None)


def crashes_on_bad_signatures(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
    sent = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER.lower(), "")
    return (204, None) if hmac.compare_digest(sent, sign(raw, SECRET)) else (500, {"error": "boom"})


def test_a_correct_receiver_passes() -> None:
    with LocalReceiver(verifying_webhook_handler(SECRET)) as receiver:
        report = fuzz_webhook_receiver(f"{receiver.url}/loke", SECRET, examples=3)
    events = {json.loads(raw)["event"] for _, _, raw in receiver.received if raw.startswith(b"{")}
    assert len(events) == 9  # every event type of loke.yaml's webhooks
    assert report.statuses["signed: 204"] == report.statuses["unsigned: 401"] > 9


@pytest.mark.parametrize(
    ("handler", "check"),
    [
        (accepts_everything, "receiver_rejects_bad_signatures"),
        (compares_signature_loosely, "receiver_rejects_bad_signatures"),
        (crashes_on_bad_signatures, "receiver_rejects_bad_signatures"),
        (lambda p, h, raw: (500, None), "receiver_acknowledges_signed_events"),
    ],
    ids=["accepts everything", "only checks the prefix", "500 on a bad signature", "fails good events"],
)
def test_broken_receivers_fail(handler: Any, check: str) -> None:
    with LocalReceiver(handler) as receiver, pytest.raises(ContractViolation) as caught:
        fuzz_webhook_receiver(f"{receiver.url}/loke", SECRET, examples=3)
    assert caught.value.check == check
    assert caught.value.provenance.location.startswith("loke.yaml#/webhooks/")


class Pos:
    """A POS with one open bill; validates what Let'sTrade sends as the provider spec says."""

    def __init__(self, broken: str = "") -> None:
        self.broken = broken
        self.bill = {"store_id": "STORE-1", "transaction_id": "open-bill", "total": Decimal("100.00")}

    def __call__(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if self.broken == "accepts":
            return 200, {"success": True, "message": "applied"}
        if self.broken == "422":
            return 422, {"detail": "unprocessable"}
        try:
            body = json.loads(raw)
            original, discount, remaining = (
                Decimal(str(body[k])) for k in ("original_amount", "discount_amount", "remaining_amount")
            )
            assert (
                isinstance(body["vouchers"], list)
                and isinstance(body["store_id"], str)
                and isinstance(body["transaction_id"], str)
            )
        except (ValueError, KeyError, TypeError, ArithmeticError, AssertionError):
            return 400, {
                "success": False,
                "message": "invalid request",
                "errors": [{"field": "body", "message": "invalid"}],
            }
        if (body["store_id"], body["transaction_id"]) != (self.bill["store_id"], self.bill["transaction_id"]):
            return 404, {
                "success": False,
                "message": "No open bill",
                "errors": [{"field": "transaction_id", "message": "unknown"}],
            }
        if original - discount != remaining:
            return 400, {"success": False, "message": "amounts do not add up", "errors": []}
        return 200, {"success": True, "message": "applied", "content": {"transaction_id": body["transaction_id"]}}


def test_a_correct_pos_passes() -> None:
    with LocalReceiver(Pos()) as pos:
        report = fuzz_pos_provider(f"{pos.url}/append-vouchers", examples=5)
    assert report.sent == 20 and all(status.split(": ")[1] in ("400", "404") for status in report.statuses)


@pytest.mark.parametrize(
    ("broken", "check"), [("accepts", "pos_refuses_what_it_cannot_apply"), ("422", "status_code_conformance")]
)
def test_broken_pos_fails(broken: str, check: str) -> None:
    with LocalReceiver(Pos(broken)) as pos, pytest.raises(ContractViolation) as caught:
        fuzz_pos_provider(f"{pos.url}/append-vouchers", examples=5)
    assert caught.value.check == check


def test_through_the_plugin_options(tmp_path: Path) -> None:
    """`pytest --pyargs contracts --webhook-receiver URL --webhook-secret S` (and the POS option)."""
    with (
        LocalReceiver(verifying_webhook_handler(SECRET)) as good,
        LocalReceiver(accepts_everything) as bad,
        LocalReceiver(Pos()) as pos,
    ):
        passed = run_suite(
            tmp_path,
            "-k",
            "test_loke_webhook_receiver or test_pos_append_vouchers",
            "--examples",
            "2",
            "--webhook-receiver",
            f"{good.url}/loke",
            "--webhook-secret",
            SECRET,
            "--pos-callback-url",
            f"{pos.url}/append-vouchers",
            "--api",
            "loke",
            "--api",
            "letstrade-pos",
        )
        failed = run_suite(
            tmp_path,
            "-k",
            "test_loke_webhook_receiver",
            "--examples",
            "2",
            "--webhook-receiver",
            f"{bad.url}/loke",
            "--webhook-secret",
            SECRET,
            "--api",
            "loke",
        )
    assert passed.returncode == 0, passed.output[-2000:]
    assert {t.outcome for t in passed.tests.values()} == {"passed"} and len(passed.tests) == 2
    assert failed.returncode == 1
    [result] = failed.tests.values()
    assert result.outcome == "failed" and "receiver_rejects_bad_signatures" in result.message
