"""The endpoints a vendor calls, fuzzed from the specs (schemathesis tests neither `webhooks`
nor callbacks): a CRM's LOKE webhook receiver (`--webhook-receiver URL --webhook-secret S`) and a
POS's append-vouchers endpoint (`--pos-callback-url URL`). Skipped unless the option is given."""

from __future__ import annotations

import pytest

from contracts import options
from contracts.http import TargetSession
from contracts.receivers import fuzz_pos_provider, fuzz_webhook_receiver
from contracts.report import Recorder


@pytest.mark.lcs_api("loke", "receiver")
def test_loke_webhook_receiver(lcs_recorder: Recorder) -> None:
    current = options.current()
    if not current.webhook_receiver or not current.webhook_secret:
        pytest.skip("no webhook receiver to fuzz: give --webhook-receiver URL --webhook-secret SECRET")
    try:
        report = fuzz_webhook_receiver(
            current.webhook_receiver,
            current.webhook_secret,
            current.profile.receiver_examples,
            TargetSession(current.max_rps.get("*")),
        )
    finally:
        lcs_recorder.operations.add(f"webhooks -> {current.webhook_receiver}")
    lcs_recorder.cases += report.sent


@pytest.mark.lcs_api("letstrade-pos", "receiver")
def test_pos_append_vouchers(lcs_recorder: Recorder) -> None:
    current = options.current()
    if not current.pos_callback_url:
        pytest.skip("no POS append-vouchers endpoint to fuzz: give --pos-callback-url URL")
    report = fuzz_pos_provider(
        current.pos_callback_url, current.profile.receiver_examples, TargetSession(current.max_rps.get("*"))
    )
    lcs_recorder.operations.add(f"POST append-vouchers -> {current.pos_callback_url}")
    lcs_recorder.cases += report.sent
