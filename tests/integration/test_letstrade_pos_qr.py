"""The QR slip flow over HTTP against a fake POS started here: bill print (get/offerings without a
code), the customer's app selecting vouchers (`POST /__admin/letstrade-pos/bills/.../vouchers`),
Let'sTrade calling the POS's append-vouchers, and finalise at bill close. The POS answers well,
badly, or not at all."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mock_server.settings import Settings
from mock_server.spec import build_spec, load_document
from mock_server.testing import MockServer, TenantClient
from tests.integration.test_letstrade_pos_flow import Pos, content, finalise_body, offerings_body, product

CALLBACK_TIMEOUT = 0.5
PROVIDER = build_spec("letstrade-pos-provider", load_document("letstrade-pos-provider")).by_id()["appendVouchers"]


class FakePos:
    """A POS's append-vouchers endpoint whose behaviour a test picks with `mode`."""

    def __init__(self) -> None:
        self.mode = "good"
        self.received: list[Any] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # the stdlib's name
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"null")
                fake.received.append(body)
                if fake.mode == "hangup":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fake.mode == "slow":
                    time.sleep(CALLBACK_TIMEOUT * 3)
                status, answer = fake.answer(body)
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # "slow": the mock gave up waiting
                    self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, body: Any) -> tuple[int, Any]:
        if self.mode == "bad":
            return 200, {"ok": True, "remaining": body["remaining_amount"]}
        if self.mode == "reject":
            return 404, {
                "success": False,
                "message": "No open bill",
                "errors": [{"field": "transaction_id", "message": "unknown bill"}],
            }
        return 200, {
            "success": True,
            "message": f"{len(body['vouchers'])} voucher(s) applied",
            "content": {"transaction_id": body["transaction_id"], "remaining_amount": body["remaining_amount"]},
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/pos/append-vouchers"

    def __enter__(self) -> FakePos:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def fake_pos() -> Iterator[FakePos]:
    with FakePos() as pos:
        yield pos


@pytest.fixture(scope="module")
def qr_server(fake_pos: FakePos) -> Iterator[MockServer]:
    settings = Settings(port=0, strict=True, pos_callback_url=fake_pos.url, pos_callback_timeout=CALLBACK_TIMEOUT)
    with MockServer(settings) as server:
        yield server


@pytest.fixture
def qr(qr_server: MockServer, fake_pos: FakePos) -> MockServer:
    qr_server.reset()
    fake_pos.mode = "good"
    fake_pos.received.clear()
    return qr_server


BSK20 = {"id": "VCH-BSK-20", "title": "R20 off", "apply_to": "BASKET", "discount_type": "FIXED", "value": "20.00"}


def print_bill(pos: Pos) -> dict[str, Any]:
    """Bill print: get/offerings with `code` null; the QR carries store, terminal and basket.uuid."""
    body = offerings_body([product("SAN", "75.00"), product("COF", "25.00")], "100.00", None)
    body["code"] = None
    content(pos.offerings(body))
    return body


def select(mock: MockServer, body: dict[str, Any], vouchers: list[dict[str, Any]], **extra: Any) -> Any:
    path = f"/letstrade-pos/bills/{body['store_id']}/{body['terminal_id']}/{body['basket']['uuid']}/vouchers"
    return mock.admin("POST", path, json={"vouchers": vouchers, **extra})


def test_good_pos_answer_attaches_the_vouchers_which_finalise_then_burns(qr: MockServer, fake_pos: FakePos) -> None:
    pos = Pos(qr)
    body = print_bill(pos)
    order_id = content(pos.offerings(body))["order_id"]
    answer = select(qr, body, [BSK20])
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["pos_status"], result["valid"], result["applied"]) == (200, True, True)
    assert result["bill"] == {"order_id": order_id, "status": "OPEN", "app_vouchers": ["VCH-BSK-20"]}
    sent = fake_pos.received[-1]
    assert PROVIDER.body_media["application/json"].errors(sent) == [], "the request matches the provider spec"
    assert {k: sent[k] for k in ("uid", "store_id", "terminal_id", "transaction_id")} == {
        "uid": order_id,
        "store_id": "STORE-1",
        "terminal_id": "TILL-1",
        "transaction_id": body["basket"]["uuid"],
    }
    assert (sent["original_amount"], sent["discount_amount"], sent["remaining_amount"]) == ("100.00", "20.00", "80.00")
    assert sent["vouchers"] == [{**BSK20, "discount": "20.00"}] and sent["reference"].endswith("R20 off")
    journal = qr.journal(operation_id="appendVouchers")
    assert [(e["api"], e["status"], e["violations"]) for e in journal] == [("letstrade-pos-provider", 200, [])]
    assert journal[0]["id"] == result["journal_id"] and journal[0]["request"]["body"] == sent
    # the POS refreshes the bill: the voucher is priced in; finalise at bill close burns it
    refreshed = content(pos.offerings(body))["basket"]
    assert refreshed["vouchers"] == [{"id": "VCH-BSK-20", "title": "R20 off", "apply_to": "BASKET", "discount": 20}]
    assert refreshed["outstanding_amount"] == "80.00"
    done = content(pos.finalise(finalise_body(body)))
    assert done["order_id"] == order_id and done["basket"]["outstanding_amount"] == "80.00"
    assert [(v["id"], v["status"]) for v in pos.user()["vouchers"]] == [("VCH-BSK-20", "REDEEMED")]
    again = select(qr, body, [BSK20])
    assert again.status_code == 409, "vouchers are appended before bill closure only"


def test_product_voucher_the_customer_already_holds(qr: MockServer, fake_pos: FakePos) -> None:
    pos = Pos(qr)
    pos.mint(
        "E",
        vouchers=[
            {
                "id": "V-SAN",
                "title": "R15 off",
                "apply_to": "PRODUCT",
                "sku": "SAN",
                "discount_type": "FIXED",
                "value": "15",
            }
        ],
    )
    body = print_bill(pos)
    result = select(qr, body, [{"id": "V-SAN"}]).json()
    assert result["applied"] and fake_pos.received[-1]["vouchers"][0]["sku"] == "SAN"
    assert fake_pos.received[-1]["remaining_amount"] == "85.00"
    product_vouchers = content(pos.offerings(body))["basket"]["product_list"][0]["vouchers"]
    assert [(v["id"], v["discount"], v["discounted_price"]) for v in product_vouchers] == [("V-SAN", "15.00", "60.00")]


def test_bad_pos_answers_are_reported_against_the_provider_spec(qr: MockServer, fake_pos: FakePos) -> None:
    pos = Pos(qr)
    body = print_bill(pos)
    fake_pos.mode = "bad"
    result = select(qr, body, [BSK20]).json()
    assert result["pos_status"] == 200 and result["valid"] is False
    assert {v["kind"] for v in result["violations"]} == {"response_schema"}
    assert {(v["field"], v["message"]) for v in result["violations"]} >= {("success", "is required but missing")}
    entry = qr.journal(operation_id="appendVouchers")[-1]
    assert entry["violations"] == result["violations"] and entry["response"]["body"] == {
        "ok": True,
        "remaining": "80.00",
    }
    # a documented refusal is a valid answer: nothing is attached
    other = print_bill(pos)
    fake_pos.mode = "reject"
    rejected = select(qr, other, [{**BSK20, "id": "V-2"}]).json()
    assert (rejected["pos_status"], rejected["valid"], rejected["applied"]) == (404, True, False)
    assert rejected["bill"]["app_vouchers"] == []


def test_pos_that_does_not_answer_gives_504_and_leaves_the_bill_unchanged(qr: MockServer, fake_pos: FakePos) -> None:
    pos = Pos(qr)
    body = print_bill(pos)
    fake_pos.mode = "slow"
    started = time.perf_counter()
    answer = select(qr, body, [BSK20])
    assert time.perf_counter() - started < CALLBACK_TIMEOUT * 2.5
    assert answer.status_code == 504
    assert "did not answer" in answer.json()["detail"] and "unchanged" in answer.json()["detail"]
    order = qr.admin("GET", "/letstrade-pos/orders", params={"transaction_id": body["basket"]["uuid"]}).json()[0]
    assert order["app_vouchers"] == [] and order["status"] == "OPEN"
    assert pos.user()["vouchers"] == [], "a voucher defined in the selection is only granted on a 2xx"
    entry = qr.journal(operation_id="appendVouchers")[-1]
    assert entry["status"] == 0 and entry["violations"][0]["kind"] == "timeout"
    fake_pos.mode = "hangup"
    hung = select(qr, body, [BSK20])
    assert hung.status_code == 502 and "could not be reached" in hung.json()["detail"]


def test_selection_refusals(qr: MockServer, fake_pos: FakePos) -> None:
    pos = Pos(qr)
    body = print_bill(pos)
    missing_bill = dict(body, basket={**body["basket"], "uuid": "no-such-bill"})
    assert select(qr, missing_bill, [BSK20]).status_code == 404
    assert select(qr, body, [{"id": "NOT-HELD"}]).status_code == 404
    wrong_sku = {"id": "V-X", "title": "x", "apply_to": "PRODUCT", "sku": "ZZZ", "discount_type": "FIXED", "value": "1"}
    refused = select(qr, body, [wrong_sku])
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "vouchers[0].id"
    assert select(qr, body, [BSK20], user_id="nobody").status_code == 404
    assert fake_pos.received == [], "nothing was sent to the POS for a refused selection"


def test_without_a_pos_callback_url_the_flow_says_how_to_configure_it(mock: MockServer) -> None:
    pos = Pos(mock)
    body = print_bill(pos)
    refused = select(mock, body, [BSK20])
    assert refused.status_code == 409 and "--pos-callback-url" in refused.json()["detail"]


# -- a shared sandbox: each tenant's app-voucher calls go to its own POS ---------------------------
class _TenantAsMock:
    """What `Pos` needs of a mock, from a tenant (its URLs, session, admin API and credentials)."""

    def __init__(self, tenant: TenantClient) -> None:
        self.session, self.url, self.admin = tenant.session, tenant.url, tenant.admin
        self.credentials = tenant.credentials

    def credentials_cache(self) -> dict[str, Any]:
        return self.credentials


def test_each_tenant_calls_its_own_pos_and_a_tenant_without_one_the_servers(
    qr: MockServer, fake_pos: FakePos
) -> None:
    with FakePos() as till_a, FakePos() as till_b:
        made = {
            name: qr.create_tenant(seed=5, apis=["letstrade-pos", "letstrade-channels"], **options)
            for name, options in (("a", {"pos_callback_url": till_a.url}), ("b", {"pos_callback_url": till_b.url}),
                                  ("server's", {}))
        }
        try:
            listed = {t["id"]: t["pos_callback_url"] for t in qr.admin("GET", "/tenants").json()}
            assert [listed[t.id] for t in made.values()] == [till_a.url, till_b.url, None]
            for tenant in made.values():
                scoped = _TenantAsMock(tenant)
                body = print_bill(Pos(scoped))  # type: ignore[arg-type]
                answer = select(scoped, body, [BSK20])  # type: ignore[arg-type]
                assert answer.status_code == 200 and answer.json()["applied"], answer.text
            # one call each, to the POS its tenant named (the same seed: the same bill ids everywhere)
            assert [len(till_a.received), len(till_b.received), len(fake_pos.received)] == [1, 1, 1]
            refused = qr.admin("POST", "/tenants", json={"pos_callback_url": "ftp://till/append"})
            assert refused.status_code == 400 and "pos_callback_url" in refused.text
        finally:
            for tenant in made.values():
                tenant.delete()
