"""A reference POS (till) that plays realistic Let'sTrade sessions against the mock, correctly or
with one of the faults real integrations have, so the conformance report has something to judge.

    loyalty-mock serve --api letstrade-pos --pos-callback-url http://127.0.0.1:9000/append-vouchers
    python -m mock_server.pos_simulator --url http://127.0.0.1:8080 --mode correct --listen 127.0.0.1:9000

A session is one bill: bill print (get/offerings, no code) -> optionally the customer scans the QR
and picks vouchers in the app (the mock then calls this till's own append-vouchers endpoint) or
reads out a code (get/offerings again with it) -> payment -> bill close (finalise, always). The
"customer" side (minting codes, the app's voucher selection, a customer who takes 10 minutes) is
played through the mock's admin API.

As a library (tests): `with Till() as till:` starts the append-vouchers endpoint (`till.url`);
`PosSimulator(base_url, mode, till=till).run()` plays the scenarios.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

MODES = (
    "correct",
    "skip-finalise",  # no finalise for a bill printed with no code, no QR scan, no vouchers
    "retry-finalise",  # sends every finalise a second time after its 2xx
    "drop-vouchers",  # finalise without the deals and vouchers get/offerings returned
    "external-vouchers-on-finalise",  # sends external_vouchers to finalise too
    "ignore-expiry",  # retries an expired code instead of asking for a new one
    "numbers-as-json",  # sends amounts as JSON numbers on a bill print (then corrects them)
    "bad-append-answer",  # the append-vouchers endpoint answers outside the provider spec
)
SCENARIOS = ("no-code", "qr-vouchers", "redeem-deal", "pay-and-earn", "external-vouchers", "expired-code")
CENTS = Decimal("0.01")
DEAL = {
    "id": "SIM-DEAL-MUF2",
    "title": "2 muffins, R6 off",
    "apply_to": "PRODUCT",
    "sku": "MUF",
    "discount_type": "FIXED",
    "value": "6.00",
    "min_quantity": "2",
}


def money(value: Decimal) -> str:
    return str(value.quantize(CENTS, rounding=ROUND_HALF_UP))


def product(sku: str, title: str, price: str, quantity: str = "1", **extra: Any) -> dict[str, Any]:
    return {"sku": sku, "pid": f"pid-{sku}", "title": title, "price": price, "quantity": quantity, **extra}


def line_amount(item: dict[str, Any]) -> Decimal:
    unit = Decimal(item["promotion_price"] if item.get("on_promotion") else item["price"])
    for condiment in item.get("condiments") or []:
        unit += Decimal(condiment.get("price", "0")) * Decimal(condiment.get("quantity", "1"))
    amount = unit * Decimal(item["quantity"])
    for add_on in item.get("add_ons") or []:
        amount += line_amount(add_on)
    return amount


# -- the till's own append-vouchers endpoint ---------------------------------------------------------------
@dataclass
class TillBill:
    store_id: str
    terminal_id: str
    uuid: str
    total: Decimal
    outstanding: Decimal
    vouchers: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


class Till:
    """The POS provider's `POST /append-vouchers` (openapi/letstrade-pos-provider.yaml): it checks
    the open bill exists and matches, attaches the vouchers and updates the bill's amount due."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, answer: str = "good") -> None:
        self.answer = answer  # "good" or "bad" (a 200 outside the provider spec)
        self.bills: dict[tuple[str, str], TillBill] = {}
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        till = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
                status, answer = till.append(body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="pos-till", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name}:{port}/append-vouchers"

    def start(self) -> Till:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Till:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def open_bill(self, bill: TillBill) -> None:
        with self.lock:
            self.bills[(bill.store_id, bill.uuid)] = bill

    def bill(self, store_id: str, bill_uuid: str) -> TillBill | None:
        with self.lock:
            return self.bills.get((store_id, bill_uuid))

    @staticmethod
    def _error(message: str, field_name: str, detail: str) -> dict[str, Any]:
        return {"success": False, "message": message, "errors": [{"field": field_name, "message": detail}]}

    def append(self, body: Any) -> tuple[int, dict[str, Any]]:
        self.received.append(body)
        if not isinstance(body, dict) or not all(
            k in body for k in ("uid", "store_id", "transaction_id", "remaining_amount", "vouchers")
        ):
            return 400, self._error("The request is invalid", "$", "expected uid, store_id, transaction_id, vouchers")
        with self.lock:
            bill = self.bills.get((str(body["store_id"]), str(body["transaction_id"])))
            if bill is None:
                return 404, self._error(
                    f"No open bill {body['transaction_id']} at store {body['store_id']}.",
                    "transaction_id",
                    "unknown bill",
                )
            if bill.closed:
                return 409, self._error(f"Bill {bill.uuid} is already closed.", "transaction_id", "bill closed")
            bill.vouchers.extend(v for v in body["vouchers"] if isinstance(v, dict))
            bill.outstanding = Decimal(str(body["remaining_amount"]))
        if self.answer == "bad":
            return 200, {"ok": True, "remaining": body["remaining_amount"]}
        return 200, {
            "success": True,
            "message": f"{len(body['vouchers'])} voucher(s) applied to bill {bill.uuid}.",
            "content": {"transaction_id": bill.uuid, "remaining_amount": money(bill.outstanding)},
        }


# -- the till's side of Let'sTrade ---------------------------------------------------------------------------
@dataclass
class Step:
    name: str
    status: int | None
    note: str = ""


@dataclass
class ScenarioRun:
    scenario: str
    bill: str
    steps: list[Step] = field(default_factory=list)


class PosSimulator:
    def __init__(
        self,
        base_url: str,
        mode: str = "correct",
        *,
        till: Till | None = None,
        admin_token: str | None = None,
        store_id: str = "STORE-SIM",
        terminal_id: str = "TILL-01",
        session: requests.Session | None = None,
        timeout: float = 30.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        self.base = base_url.rstrip("/")
        self.mode = mode
        self.till = till
        self.store_id = store_id
        self.terminal_id = terminal_id
        self.http = session or requests.Session()
        self.timeout = timeout
        self.admin_headers = {"X-Admin-Token": admin_token} if admin_token else {}
        self.headers: dict[str, str] = {}
        self.runs: list[ScenarioRun] = []
        if till is not None and mode == "bad-append-answer":
            till.answer = "bad"

    # -- HTTP ---------------------------------------------------------------------------------------
    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(
            method, f"{self.base}/__admin{path}", json=body, headers=self.admin_headers, timeout=self.timeout
        )

    def pos(self, path: str, body: Any, run: ScenarioRun, step: str) -> requests.Response:
        answer = self.http.post(
            f"{self.base}/letstrade-pos{path}", json=body, headers=self.headers, timeout=self.timeout
        )
        run.steps.append(Step(step, answer.status_code))
        return answer

    def setup(self) -> None:
        creds = self.admin("GET", "/credentials")
        creds.raise_for_status()
        self.headers = {"Authorization": f"Bearer {creds.json()['letstrade']['token']}"}
        self.admin("POST", "/fixtures", {"letstrade": {"deals": [DEAL]}}).raise_for_status()

    def mint(self, code_type: str, **options: Any) -> str:
        answer = self.admin("POST", "/letstrade-pos/codes", {"type": code_type, **options})
        answer.raise_for_status()
        code: str = answer.json()["code"]
        return code

    # -- the bill ------------------------------------------------------------------------------------
    def basket(self, products: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        total = sum((line_amount(p) for p in products), Decimal(0))
        vat = total * 15 / 115  # South African VAT, included in the prices
        return {
            "uuid": str(uuid.uuid4()),
            "total": money(total),
            "outstanding": money(total),
            "sub_total": money(total - vat.quantize(CENTS, rounding=ROUND_HALF_UP)),
            "vat": money(vat),
            "product_list": products,
            **extra,
        }

    def print_bill(self, run: ScenarioRun, basket: dict[str, Any], code: Any = "omit") -> dict[str, Any]:
        """Bill print: get/offerings with no code (omitted, null or []), then the QR goes on the slip."""
        body: dict[str, Any] = {"store_id": self.store_id, "terminal_id": self.terminal_id, "basket": basket}
        if code != "omit":
            body["code"] = code
        if self.mode == "numbers-as-json" and run.scenario == "no-code":
            wrong = json.loads(json.dumps(body))
            wrong["basket"]["total"] = float(basket["total"])
            for item in wrong["basket"]["product_list"]:
                item["price"], item["quantity"] = float(item["price"]), int(Decimal(item["quantity"]))
            if self.pos("/v1/get/offerings", wrong, run, "bill print (amounts as JSON numbers)").status_code == 400:
                run.steps[-1].note = "rejected; resent with strings"
        answer = self.pos("/v1/get/offerings", body, run, "bill print: get/offerings")
        answer.raise_for_status()
        if self.till is not None:
            self.till.open_bill(
                TillBill(
                    self.store_id,
                    self.terminal_id,
                    basket["uuid"],
                    Decimal(basket["total"]),
                    Decimal(basket["outstanding"]),
                )
            )
        return dict(answer.json()["content"])

    def offerings(self, run: ScenarioRun, basket: dict[str, Any], codes: list[str], step: str) -> requests.Response:
        body = {"store_id": self.store_id, "terminal_id": self.terminal_id, "basket": basket, "code": codes}
        return self.pos("/v1/get/offerings", body, run, step)

    def close_bill(
        self, run: ScenarioRun, basket: dict[str, Any], offered: dict[str, Any] | None, codes: list[str]
    ) -> None:
        """Payment happened; bill close: finalise, always, with what get/offerings returned."""
        final: dict[str, Any] = {k: v for k, v in basket.items() if k not in ("outstanding", "external_vouchers")}
        final["outstanding_amount"] = basket["outstanding"]
        result = (offered or {}).get("basket") or {}
        if self.mode != "drop-vouchers":
            by_sku = {p.get("sku"): p for p in result.get("product_list") or []}
            products = []
            for item in final["product_list"]:
                back = by_sku.get(item["sku"]) or {}
                item = dict(item)
                if back.get("vouchers"):
                    item["vouchers"] = back["vouchers"]
                if back.get("deal"):
                    item["deal"] = back["deal"]
                products.append(item)
            final["product_list"] = products
            if result.get("vouchers"):
                final["vouchers"] = result["vouchers"]
            if result.get("deals"):
                final["deals"] = result["deals"]
        if self.mode == "external-vouchers-on-finalise" and basket.get("external_vouchers"):
            wrong = {**final, "external_vouchers": basket["external_vouchers"]}
            body = {"store_id": self.store_id, "terminal_id": self.terminal_id, "basket": wrong, "code": codes}
            if (
                self.pos(
                    "/v1/finalise/offerings", body, run, "bill close: finalise (with external vouchers)"
                ).status_code
                == 400
            ):
                run.steps[-1].note = "rejected; resent without them"
        body = {"store_id": self.store_id, "terminal_id": self.terminal_id, "basket": final, "code": codes}
        answer = self.pos("/v1/finalise/offerings", body, run, "bill close: finalise")
        if self.till is not None and answer.ok:
            bill = self.till.bill(self.store_id, basket["uuid"])
            if bill is not None:
                bill.closed = True
        if self.mode == "retry-finalise" and answer.ok:
            self.pos("/v1/finalise/offerings", body, run, "bill close: finalise again (retry)")

    # -- scenarios -----------------------------------------------------------------------------------------
    def run(self, scenarios: int | None = None) -> list[ScenarioRun]:
        self.setup()
        count = len(SCENARIOS) if scenarios is None else scenarios
        for index in range(count):
            name = SCENARIOS[index % len(SCENARIOS)]
            getattr(self, "scenario_" + name.replace("-", "_"))()
        return self.runs

    def _run(self, name: str, basket: dict[str, Any]) -> ScenarioRun:
        run = ScenarioRun(name, basket["uuid"])
        self.runs.append(run)
        return run

    def scenario_no_code(self) -> None:
        """No code, no QR scan, no vouchers: finalise all the same."""
        basket = self.basket([product("SAN", "Toasted sandwich", "75.00"), product("WAT", "Still water", "18.50")])
        run = self._run("no-code", basket)
        offered = self.print_bill(run, basket)
        if self.mode == "skip-finalise":
            run.steps.append(Step("bill close: finalise skipped (nothing to redeem)", None))
            return
        self.close_bill(run, basket, {"basket": offered["basket"]}, [])

    def scenario_qr_vouchers(self) -> None:
        """The customer scans the QR and picks a voucher in the app; the till reprints and closes."""
        basket = self.basket([product("SAN", "Toasted sandwich", "75.00"), product("COF", "Flat white", "32.50")])
        run = self._run("qr-vouchers", basket)
        self.print_bill(run, basket, code=None)
        voucher = {
            "id": f"SIM-QR-{uuid.uuid4().hex[:8]}",
            "title": "R10 off your bill",
            "apply_to": "BASKET",
            "discount_type": "FIXED",
            "value": "10.00",
        }
        path = f"/letstrade-pos/bills/{self.store_id}/{self.terminal_id}/{basket['uuid']}/vouchers"
        scan = self.admin("POST", path, {"vouchers": [voucher]})
        run.steps.append(
            Step(
                "QR scan: app selects a voucher (append-vouchers)", scan.status_code, "" if scan.ok else scan.text[:200]
            )
        )
        reprint = self.offerings(run, basket, [], "reprint: get/offerings")
        reprint.raise_for_status()
        self.close_bill(run, basket, reprint.json()["content"], [])

    def scenario_redeem_deal(self) -> None:
        """Two muffins (a deal) and a coffee; the customer reads out an R code for 50% off the coffee."""
        coffee = product(
            "COF",
            "Flat white",
            "32.50",
            condiments=[{"pid": "pid-ALM", "sku": "ALM", "title": "Almond milk", "price": "6.00", "quantity": "1"}],
        )
        basket = self.basket([product("MUF", "Blueberry muffin", "28.00", "2"), coffee])
        run = self._run("redeem-deal", basket)
        self.print_bill(run, basket)
        code = self.mint(
            "R",
            vouchers=[
                {
                    "id": f"SIM-R-{uuid.uuid4().hex[:8]}",
                    "title": "Half-price coffee",
                    "apply_to": "PRODUCT",
                    "sku": "COF",
                    "discount_type": "PERCENT",
                    "value": "50",
                }
            ],
        )
        answer = self.offerings(run, basket, [code], "code read out: get/offerings")
        answer.raise_for_status()
        self.close_bill(run, basket, answer.json()["content"], [code])

    def scenario_pay_and_earn(self) -> None:
        """Pays with a P code (wallet, then card) and earns with an E code."""
        basket = self.basket(
            [
                product("SAN", "Toasted sandwich", "75.00"),
                product("JUI", "Orange juice", "25.00", on_promotion=True, promotion_price="22.00"),
            ]
        )
        run = self._run("pay-and-earn", basket)
        self.print_bill(run, basket)
        pay = self.mint("P", wallet_balance="50.00", card_limit="500.00")
        earn = self.mint("E", points_per_currency_unit="1")
        answer = self.offerings(run, basket, [pay, earn], "codes read out: get/offerings")
        answer.raise_for_status()
        self.close_bill(run, basket, answer.json()["content"], [pay, earn])

    def scenario_external_vouchers(self) -> None:
        """A till-side voucher (R5 off a juice) goes to get/offerings only."""
        external = [
            {
                "id": f"EXT-{uuid.uuid4().hex[:8]}",
                "title": "R5 off juice",
                "value": "5.00",
                "sku": "JUI",
                "quantity": "1",
                "apply_to_promotion": True,
            }
        ]
        basket = self.basket(
            [
                product("JUI", "Orange juice", "25.00", "2", on_promotion=True, promotion_price="22.00"),
                product("WAT", "Still water", "18.50"),
            ],
            external_vouchers=external,
        )
        run = self._run("external-vouchers", basket)
        offered = self.print_bill(run, basket)
        self.close_bill(run, basket, offered, [])

    def scenario_expired_code(self) -> None:
        """The customer reads out a code after more than 10 minutes: it has expired."""
        basket = self.basket([product("SAN", "Toasted sandwich", "75.00")])
        run = self._run("expired-code", basket)
        self.print_bill(run, basket)
        old = self.mint("E")
        self.admin("POST", "/clock", {"advance": 601}).raise_for_status()  # the customer took 10 minutes
        run.steps.append(Step("customer waits 10 min 1 s (virtual clock)", None))
        first = self.offerings(run, basket, [old], "code read out: get/offerings")
        codes = [old]
        offered: dict[str, Any] | None = None
        if first.status_code == 410:
            if self.mode == "ignore-expiry":
                self.offerings(run, basket, [old], "retry the same code: get/offerings")
                finalise = {
                    "store_id": self.store_id,
                    "terminal_id": self.terminal_id,
                    "basket": {
                        **{k: v for k, v in basket.items() if k != "outstanding"},
                        "outstanding_amount": basket["outstanding"],
                    },
                    "code": [old],
                }
                self.pos("/v1/finalise/offerings", finalise, run, "finalise with the same code")
                codes = []  # gives up on loyalty and closes the bill
            else:
                codes = [self.mint("E")]
                run.steps.append(Step("asked the customer for a new code", None))
                again = self.offerings(run, basket, codes, "new code: get/offerings")
                again.raise_for_status()
                offered = again.json()["content"]
        elif first.ok:
            offered = first.json()["content"]
        self.close_bill(run, basket, offered, codes)


# -- CLI -------------------------------------------------------------------------------------------------------
def _listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mock_server.pos_simulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the mock's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--mode", choices=MODES, default="correct", help="how the till behaves (default correct)")
    parser.add_argument(
        "--scenarios",
        type=int,
        default=len(SCENARIOS),
        metavar="N",
        help=f"sessions to play, cycling through {', '.join(SCENARIOS)} (default {len(SCENARIOS)})",
    )
    parser.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 9000),
        metavar="HOST:PORT",
        help="where the till's append-vouchers endpoint listens (default 127.0.0.1:9000); start "
        "the mock with --pos-callback-url http://HOST:PORT/append-vouchers",
    )
    parser.add_argument("--admin-token", metavar="TOKEN", help="the mock's --admin-token, if it has one")
    parser.add_argument("--store-id", default="STORE-SIM")
    parser.add_argument("--terminal-id", default="TILL-01")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scenarios < 1:
        print("pos_simulator: --scenarios must be 1 or more", file=sys.stderr)
        return 2
    try:
        till = Till(*args.listen).start()
    except OSError as exc:
        print(
            f"pos_simulator: cannot listen on {args.listen[0]}:{args.listen[1]}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    try:
        simulator = PosSimulator(
            args.url,
            args.mode,
            till=till,
            admin_token=args.admin_token,
            store_id=args.store_id,
            terminal_id=args.terminal_id,
        )
        runs = simulator.run(args.scenarios)
    except requests.RequestException as exc:
        print(f"pos_simulator: the mock at {args.url} failed: {exc}", file=sys.stderr)
        return 1
    finally:
        till.stop()
    print(f"till append-vouchers endpoint: {till.url} (mode {args.mode})")
    for run in runs:
        print(f"\n{run.scenario}  bill {run.bill}")
        for step in run.steps:
            status = "-" if step.status is None else str(step.status)
            print(f"  {status:>4}  {step.name}{'  (' + step.note + ')' if step.note else ''}")
    print(
        f"\nReport: loyalty-mock conformance --url {args.url}"
        f"   (or {args.url}/__admin/letstrade-pos/conformance?format=html)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
