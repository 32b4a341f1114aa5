"""Let'sTrade POS as a state machine: codes minted (mock), offerings read, baskets finalised,
codes expiring on the clock (mock), refunds.

Properties (seed 004 unless marked): get/offerings is read-only (asking twice gives the same
basket and leaves the code usable); finalise executes once per code and per basket (a second
one is 409, assumed status); a code is valid for 10 minutes (410 after, assumed status); an
unknown code is 404 (assumed); a refund reverses once (a second is 409, assumed; refund is an
upcoming feature). On a vendor only the QR bill (no code) and the unknown-code steps run: codes
come from a customer's app, and finalise and refund cannot be undone.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle

from contracts import data
from contracts.report import Recorder
from contracts.stateful import CLOCK, IRREVERSIBLE, MOCK, Api, Machine, step
from contracts.target import ApiContext

OFFERINGS, FINALISE, REFUND = "/v1/get/offerings", "/v1/finalise/offerings", "/v1/refund"
STORE, TERMINAL = "LCS-STORE-1", "LCS-TILL-1"


def _basket(seed: int, codes: list[str], *, finalise: bool, basket_uuid: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"store_id": STORE, "terminal_id": TERMINAL, "code": codes, "basket": {}}
    rnd = random.Random(seed)
    data.pos_basket(body, rnd, finalise=finalise)
    body["basket"]["uuid"] = basket_uuid or f"lcs-{uuid.uuid4()}"  # a new transaction, a new basket
    return body


def build(ctx: ApiContext, recorder: Recorder) -> type[Machine]:
    api = Api(ctx, recorder)
    index = api.index

    class Pos(Machine):
        codes = Bundle("codes")
        orders = Bundle("orders")

        def __init__(self) -> None:
            super().__init__()
            ctx.fresh()
            self.expired: set[str] = set()
            self.finalised: set[str] = set()
            self.refunded: set[str] = set()
            self.minted: list[str] = []

        def _state(self, code: str) -> tuple[str, set[int]]:
            """What a code is now, and the statuses using it may answer (a finalised code whose
            10 minutes are over may be refused as finalised or as expired)."""
            if code in self.finalised:
                return "finalised", {409, 410} if code in self.expired else {409}
            if code in self.expired:
                return "expired", {410}
            return "active", {200}

        @step(MOCK, offline=True, target=codes, kind=st.sampled_from(["P", "R", "E"]))
        def mint(self, kind: str) -> str:
            admin = ctx.require_admin("minting a code")
            body: dict[str, Any] = {"type": kind}
            if kind == "P":
                body.update(wallet_balance="150.00", card_limit="5000.00")
            code = str(admin.mint_code(**body)["code"])
            self.minted.append(code)
            return code

        @step(seed=st.integers(), empty=st.sampled_from([None, []]))
        def qr_bill(self, seed: int, empty: Any) -> None:
            """Bill print without a code (QR slip flow): get/offerings accepts code null or []."""
            body = _basket(seed, [], finalise=False)
            body["code"] = empty
            response = api.call("POST", OFFERINGS, json=body)
            api.expect(
                response,
                {200},
                "qr_bill_offerings",
                f"POST {OFFERINGS} without a code",
                index.operation("POST", OFFERINGS),
            )

        @step(seed=st.integers())
        def unknown_code(self, seed: int) -> None:
            code = "R" + uuid.UUID(int=random.Random(seed).getrandbits(128)).hex[:12].upper()
            response = api.call("POST", OFFERINGS, json=_basket(seed, [code], finalise=False))
            api.expect(
                response,
                {404},
                "unknown_code_refused",
                f"POST {OFFERINGS} with a code never issued",
                index.response("POST", OFFERINGS, 404),
            )

        @step(code=codes, seed=st.integers())
        def offerings(self, code: str, seed: int) -> None:
            body = _basket(seed, [code], finalise=False)
            first = api.call("POST", OFFERINGS, json=body)
            state, expected = self._state(code)
            api.expect(
                first,
                expected,
                "code_state",
                f"POST {OFFERINGS} with a {state} code",
                index.response("POST", OFFERINGS, min(expected))
                if state != "active"
                else index.operation("POST", OFFERINGS),
            )
            if state != "active":
                return
            again = api.call("POST", OFFERINGS, json=body)
            api.expect(
                again, {200}, "offerings_read_only", f"POST {OFFERINGS} twice", index.operation("POST", OFFERINGS)
            )
            a, b = first.json()["content"]["basket"], again.json()["content"]["basket"]
            if a.get("outstanding_amount") != b.get("outstanding_amount"):
                raise api.violation(
                    "offerings_read_only",
                    f"POST {OFFERINGS}",
                    f"asking twice changed outstanding_amount from {a.get('outstanding_amount')} "
                    f"to {b.get('outstanding_amount')}: "
                    "get/offerings only determines the offerings",
                    index.operation("POST", OFFERINGS),
                )

        @step(IRREVERSIBLE, target=orders, code=codes, seed=st.integers())
        def finalise(self, code: str, seed: int) -> str:
            body = _basket(seed, [code], finalise=True)
            response = api.call("POST", FINALISE, json=body)
            state, expected = self._state(code)
            api.expect(
                response,
                expected,
                "finalise_executes_once" if state == "finalised" else "code_state",
                f"POST {FINALISE} with a {state} code",
                index.response("POST", FINALISE, min(expected))
                if state != "active"
                else index.operation("POST", FINALISE),
            )
            if state != "active":
                return ""
            self.finalised.add(code)
            again = api.call("POST", FINALISE, json=body)
            api.expect(
                again,
                {409},
                "finalise_executes_once",
                f"POST {FINALISE} of the same basket again",
                index.response("POST", FINALISE, 409),
            )
            other = _basket(seed + 1, [code], finalise=True)
            reused = api.call("POST", FINALISE, json=other)
            api.expect(
                reused,
                {409},
                "finalise_executes_once",
                f"POST {FINALISE} reusing a finalised code on another basket",
                index.response("POST", FINALISE, 409),
            )
            return str(response.json()["content"]["order_id"])

        @step(IRREVERSIBLE, seed=st.integers())
        def finalise_without_code(self, seed: int) -> None:
            """Every bill close is finalised, even with no code (seed); once per basket."""
            body = _basket(seed, [], finalise=True)
            first = api.call("POST", FINALISE, json=body)
            api.expect(
                first,
                {200},
                "finalise_every_bill",
                f"POST {FINALISE} without a code",
                index.operation("POST", FINALISE),
            )
            again = api.call("POST", FINALISE, json=body)
            api.expect(
                again,
                {409},
                "finalise_executes_once",
                f"POST {FINALISE} of the same basket again",
                index.response("POST", FINALISE, 409),
            )

        @step(MOCK, CLOCK, offline=True)
        def expire(self) -> None:
            """Ten minutes pass: every code minted so far and not finalised expires."""
            ctx.require_clock("moving the clock").advance(601)
            self.expired.update(self.minted)

        @step(IRREVERSIBLE, order=orders)
        def refund(self, order: str) -> None:
            if not order:
                return
            body = {
                "store_id": STORE,
                "terminal_id": TERMINAL,
                "order_id": order,
                "reason": "Customer returned the order.",
            }
            response = api.call("POST", REFUND, json=body)
            expected = 409 if order in self.refunded else 200
            api.expect(
                response,
                {expected},
                "refund_once",
                f"POST {REFUND}",
                index.response("POST", REFUND, expected) if expected != 200 else index.operation("POST", REFUND),
            )
            self.refunded.add(order)

        def tour(self) -> None:
            """Every rule, and the code's whole life: read twice, finalised (twice, and on another
            basket), refunded (twice), used after finalising; a code let expire, then used; an
            expired code finalised."""
            self.go("qr_bill", seed=1, empty=None)
            self.go("unknown_code", seed=2)
            paid, kept, late = (self.go("mint", kind=kind) for kind in ("P", "R", "E"))
            self.go("offerings", code=paid, seed=3)
            order = self.go("finalise", code=paid, seed=4)
            self.go("offerings", code=paid, seed=5)
            self.go("finalise_without_code", seed=6)
            self.go("refund", order=order)
            self.go("refund", order=order)
            self.go("offerings", code=kept, seed=7)
            self.go("expire")
            self.go("offerings", code=kept, seed=8)
            self.go("finalise", code=late, seed=9)
            self.go("finalise", code=paid, seed=10)

    Pos.bind(api)
    return Pos
