"""Let'sTrade POS over HTTP (strict mode: every answer is checked against the spec): codes and their
expiry, get/offerings, exactly-once finalise (also under 50 concurrent calls), refunds, the bill
print of the QR flow, fixtures and the admin reads."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from mock_server.testing import MockServer

Json = dict[str, Any]


class Pos:
    """A POS (and a tester) talking to the mock."""

    def __init__(self, mock: MockServer) -> None:
        self.mock = mock
        creds = mock.credentials_cache()
        self.headers = {"Authorization": f"Bearer {creds['letstrade']['token']}"}
        self.default_user = creds["letstrade_pos"]["default_customer_id"]

    # vendor API
    def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self.mock.session.post(
            self.mock.url("letstrade-pos", path),
            json=body,
            headers=self.headers if headers is None else headers,
            timeout=30,
        )

    def offerings(self, body: Json) -> requests.Response:
        return self.post("/v1/get/offerings", body)

    def finalise(self, body: Json) -> requests.Response:
        return self.post("/v1/finalise/offerings", body)

    def refund(self, body: Json) -> requests.Response:
        return self.post("/v1/refund", body)

    # admin
    def mint(self, code_type: str, **options: Any) -> str:
        response = self.mock.admin("POST", "/letstrade-pos/codes", json={"type": code_type, **options})
        assert response.status_code == 201, response.text
        code: str = response.json()["code"]
        return code

    def user(self, user_id: str | None = None) -> Json:
        response = self.mock.admin("GET", f"/letstrade-pos/users/{user_id or self.default_user}")
        assert response.status_code == 200, response.text
        found: Json = response.json()
        return found

    def code(self, code: str) -> Json:
        found: Json = self.mock.admin("GET", f"/letstrade-pos/codes/{code}").json()
        return found

    def order(self, order_id: str) -> Json:
        found: Json = self.mock.admin("GET", f"/letstrade-pos/orders/{order_id}").json()
        return found

    def freeze(self) -> None:
        self.mock.admin("POST", "/clock", json={"frozen": True}).raise_for_status()


def product(sku: str, price: str, quantity: str = "1", **extra: Any) -> Json:
    return {"sku": sku, "pid": f"pid-{sku}", "quantity": quantity, "price": price, "title": sku, **extra}


def offerings_body(products: list[Json], total: str, codes: list[str] | None = None, **basket: Any) -> Json:
    body: Json = {
        "store_id": "STORE-1",
        "terminal_id": "TILL-1",
        "basket": {"uuid": str(uuid.uuid4()), "total": total, "outstanding": total, "product_list": products, **basket},
    }
    if codes is not None:
        body["code"] = codes
    return body


def finalise_body(offered: Json) -> Json:
    """What a POS sends back at bill close: the same basket, outstanding_amount, no external vouchers."""
    body = {k: v for k, v in offered.items() if k != "basket"}
    basket = {k: v for k, v in offered["basket"].items() if k not in ("outstanding", "external_vouchers")}
    basket["outstanding_amount"] = offered["basket"]["outstanding"]
    body["basket"] = basket
    return body


def content(response: requests.Response, status: int = 200) -> Json:
    assert response.status_code == status, response.text
    body: Json = response.json()
    return body["content"] if status == 200 else body


# -- identity ------------------------------------------------------------------------------------------
def test_sign_in_gives_a_bearer_token_that_works_and_a_wrong_password_reveals_nothing(mock: MockServer) -> None:
    pos = Pos(mock)
    creds = mock.credentials_cache()["letstrade"]
    signed = pos.post("/user/sign_in", {"email": creds["email"], "password": creds["password"]}, headers={})
    token = content(signed)["token"]
    assert token != creds["token"]
    fresh = pos.post(
        "/v1/get/offerings",
        offerings_body([product("A", "1.00")], "1.00"),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert fresh.status_code == 200
    wrong = pos.post("/user/sign_in", {"email": creds["email"], "password": "nope"}, headers={})
    unknown = pos.post("/user/sign_in", {"email": "nobody@example.com", "password": "nope"}, headers={})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()  # no hint which of e-mail or password was wrong
    assert pos.post("/v1/get/offerings", {}, headers={"Authorization": "Bearer nope"}).status_code == 401


# -- the main flow ---------------------------------------------------------------------------------------
def test_mint_offerings_finalise_and_finalise_again_conflicts_with_balances_unchanged(mock: MockServer) -> None:
    pos = Pos(mock)
    code = pos.mint("P", wallet_balance="100.00")
    body = offerings_body([product("A", "30.00", "2")], "60.00", [code])
    offered = content(pos.offerings(body))
    assert offered["basket"]["wallet"] == {"amount": 60}
    assert offered["basket"]["outstanding_amount"] == "0.00"
    assert pos.user()["wallet_balance"] == "100.00", "get/offerings must not charge"
    done = content(pos.finalise(finalise_body(body)))
    assert done["order_id"] == offered["order_id"] and done["order_code"] == offered["order_code"]
    assert done["client_id"] and done["basket"]["wallet"] == {"amount": 60}
    assert pos.user()["wallet_balance"] == "40.00"
    again = pos.finalise(finalise_body(body))
    assert again.status_code == 409
    assert again.json()["success"] is False and again.json()["errors"][0]["field"] == "code[0]"
    assert pos.user()["wallet_balance"] == "40.00"
    assert pos.code(code)["status"] == "FINALISED"
    assert pos.order(done["order_id"])["status"] == "FINALISED"


def test_code_is_valid_at_9_min_59_s_and_expired_at_10_min_1_s(mock: MockServer) -> None:
    pos = Pos(mock)
    pos.freeze()
    code = pos.mint("P", wallet_balance="10.00")
    body = offerings_body([product("A", "5.00")], "5.00", [code])
    mock.advance(599)
    assert pos.offerings(body).status_code == 200
    mock.advance(2)
    expired = pos.finalise(finalise_body(body))
    assert expired.status_code == 410
    assert "a new code must be generated" in expired.json()["message"]
    assert pos.code(code)["status"] == "EXPIRED"
    assert pos.user()["wallet_balance"] == "10.00"
    unknown = pos.offerings(offerings_body([product("A", "5.00")], "5.00", ["PZZZZZZZZ"]))
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "code[0]"


def test_p_code_pays_from_wallet_then_loan_then_card(mock: MockServer) -> None:
    pos = Pos(mock)
    code = pos.mint("P", wallet_balance="25.00", loan_limit="10.00", card_limit="500.00")
    body = offerings_body([product("A", "40.00"), product("B", "12.50")], "52.50", [code])
    offered = content(pos.offerings(body))["basket"]
    assert (offered["wallet"], offered["loan"], offered["card"]) == ({"amount": 25}, {"amount": 10}, {"amount": 17.5})
    content(pos.finalise(finalise_body(body)))
    account = pos.user()
    assert (account["wallet_balance"], account["loan_used"], account["card_used"]) == ("0.00", "10.00", "17.50")
    # without a card, what the wallet cannot pay stays outstanding
    poor = pos.mint("P", wallet_balance="5.00", loan_limit="0", card_limit="0")
    left = content(pos.offerings(offerings_body([product("A", "20.00")], "20.00", [poor])))["basket"]
    assert left["outstanding_amount"] == "15.00" and "card" not in left


def test_r_code_product_and_basket_vouchers_are_shown_then_burned(mock: MockServer) -> None:
    pos = Pos(mock)
    code = pos.mint(
        "R",
        vouchers=[
            {
                "id": "V-SAN",
                "title": "R15 off sandwiches",
                "apply_to": "PRODUCT",
                "sku": "SAN",
                "discount_type": "FIXED",
                "value": "15.00",
                "quantity": "1",
            },
            {"id": "V-BSK", "title": "10% off", "apply_to": "BASKET", "discount_type": "PERCENT", "value": "10"},
            {
                "id": "V-NONE",
                "title": "not in this basket",
                "apply_to": "PRODUCT",
                "sku": "ZZZ",
                "discount_type": "FIXED",
                "value": "1",
            },
        ],
    )
    body = offerings_body([product("SAN", "75.00", "2"), product("COF", "25.00")], "175.00", [code])
    offered = content(pos.offerings(body))["basket"]
    sandwich = offered["product_list"][0]["vouchers"]
    assert sandwich == [
        {
            "id": "V-SAN",
            "title": "R15 off sandwiches",
            "apply_to": "PRODUCT",
            "sku": "SAN",
            "discount": "15.00",
            "discounted_price": "135.00",
        }
    ]
    assert offered["vouchers"] == [{"id": "V-BSK", "title": "10% off", "apply_to": "BASKET", "discount": 16}]
    assert offered["discount"] == "31.00" and offered["outstanding_amount"] == "144.00"
    assert {v["id"]: v["status"] for v in pos.user()["vouchers"]} == {
        "V-SAN": "AVAILABLE",
        "V-BSK": "AVAILABLE",
        "V-NONE": "AVAILABLE",
    }
    final = finalise_body(body)
    final["basket"]["product_list"][0]["vouchers"] = sandwich
    final["basket"]["vouchers"] = offered["vouchers"] + [{"id": "P-ONLY", "apply_to": "PRODUCT", "discount": 1}]
    done = content(pos.finalise(final))["basket"]
    assert done["vouchers"] == offered["vouchers"], "finalise echoes basket vouchers filtered to BASKET"
    assert done["product_list"][0]["vouchers"] == sandwich
    assert {v["id"]: v["status"] for v in pos.user()["vouchers"]} == {
        "V-SAN": "REDEEMED",
        "V-BSK": "REDEEMED",
        "V-NONE": "AVAILABLE",
    }


def test_e_code_awards_points_once_per_currency_unit_paid(mock: MockServer) -> None:
    pos = Pos(mock)
    code = pos.mint("E", points_per_currency_unit="1.5")
    body = offerings_body([product("A", "33.30")], "33.30", [code])
    content(pos.offerings(body))
    assert pos.user()["points"] == 0, "E codes take no action on get/offerings"
    done = content(pos.finalise(finalise_body(body)))
    assert pos.user()["points"] == 49  # 33.30 x 1.5 = 49.95, rounded down
    assert pos.order(done["order_id"])["points_awarded"] == 49


def test_external_voucher_with_quantity_and_apply_to_promotion(mock: MockServer) -> None:
    pos = Pos(mock)
    muffins = product("MUF", "32.50", "3", on_promotion=True, promotion_price="28.00")
    external = [
        {
            "id": "EXT-1",
            "title": "R5 off 2 muffins",
            "value": "5.00",
            "sku": "MUF",
            "quantity": "2",
            "apply_to_promotion": True,
        },
        {"id": "EXT-2", "title": "R5 off regular price", "value": "5.00", "sku": "MUF", "quantity": "1"},
    ]
    body = offerings_body([muffins], "84.00", external_vouchers=external)
    offered = content(pos.offerings(body))["basket"]
    assert [(v["id"], v["discount"]) for v in offered["external_vouchers"]] == [("EXT-1", "10.00"), ("EXT-2", "0.50")]
    assert offered["outstanding_amount"] == "73.50"
    done = content(pos.finalise(finalise_body(body)))["basket"]
    assert done["outstanding_amount"] == "73.50", "external vouchers processed on get/offerings count at finalise"
    refused = offerings_body([muffins], "84.00", external_vouchers=external)
    rejected = pos.finalise({**refused, "basket": {**refused["basket"], "outstanding_amount": "84.00"}})
    assert rejected.status_code == 400
    assert any(e["field"] == "basket.external_vouchers" for e in rejected.json()["errors"])


def test_refund_restores_balances_vouchers_and_points(mock: MockServer) -> None:
    pos = Pos(mock)
    p = pos.mint("P", wallet_balance="50.00", card_limit="100.00")
    r = pos.mint(
        "R", vouchers=[{"id": "V", "title": "R5", "apply_to": "BASKET", "discount_type": "FIXED", "value": "5"}]
    )
    e = pos.mint("E")
    before = pos.user()
    body = offerings_body([product("A", "80.00")], "80.00", [p, r, e])
    done = content(pos.finalise(finalise_body(body)))
    after = pos.user()
    assert (after["wallet_balance"], after["card_used"], after["points"]) == ("0.00", "25.00", 75)
    refund = {"store_id": "STORE-1", "terminal_id": "TILL-1", "order_id": done["order_id"]}
    refunded = content(pos.refund({**refund, "code": [p], "reason": "customer changed their mind"}))
    assert refunded == {"order_id": done["order_id"], "refunded_codes": [p], "voided": False, "status": "REFUNDED"}
    assert pos.user()["wallet_balance"] == "50.00" and pos.user()["points"] == 75
    assert pos.refund({**refund, "code": [p]}).status_code == 409
    assert pos.order(done["order_id"])["status"] == "PARTIALLY_REFUNDED"
    voided = content(pos.refund(refund))
    assert voided["voided"] is True and voided["refunded_codes"] == [r, e]
    restored = pos.user()
    for key in ("wallet_balance", "card_used", "loan_used", "points", "vouchers"):
        assert restored[key] == before[key], key
    assert pos.refund(refund).status_code == 409
    assert {pos.code(c)["status"] for c in (p, r, e)} == {"REFUNDED"}
    assert pos.finalise(finalise_body(body)).status_code == 409, "a refunded code is still used"


def test_fifty_concurrent_finalises_of_one_code_execute_once(mock: MockServer) -> None:
    pos = Pos(mock)
    code = pos.mint("P", wallet_balance="1000.00")
    barrier = threading.Barrier(50)
    url = mock.url("letstrade-pos", "/v1/finalise/offerings")

    def attempt(index: int) -> int:
        body = finalise_body(offerings_body([product("A", "10.00")], "10.00", [code]))  # 50 different baskets
        barrier.wait(timeout=30)
        return requests.post(url, json=body, headers=pos.headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(attempt, range(50)))
    assert sorted(statuses) == [200] + [409] * 49
    assert pos.user()["wallet_balance"] == "990.00"

    # and 50 concurrent finalises of one basket without any code: one order
    shared = finalise_body(offerings_body([product("A", "10.00")], "10.00"))
    barrier.reset()

    def same_basket(index: int) -> int:
        barrier.wait(timeout=30)
        return requests.post(url, json=shared, headers=pos.headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(same_basket, range(50)))
    assert sorted(statuses) == [200] + [409] * 49
    finalised = mock.admin("GET", "/letstrade-pos/orders", params={"transaction_id": shared["basket"]["uuid"]}).json()
    assert [o["status"] for o in finalised] == ["FINALISED"]


# -- the bill print (QR flow, step 1) ------------------------------------------------------------------
def test_bill_print_accepts_code_omitted_empty_or_null_and_refreshes_one_bill(mock: MockServer) -> None:
    pos = Pos(mock)
    body = offerings_body([product("A", "10.00")], "10.00")
    ids = set()
    for codes in (None, [], "null"):
        sent = dict(body)
        if codes == "null":
            sent["code"] = None
        elif codes is not None:
            sent["code"] = codes
        ids.add(content(pos.offerings(sent))["order_id"])
    assert len(ids) == 1, "every get/offerings of one store + terminal + basket.uuid refreshes the same bill"
    order = pos.order(ids.pop())
    assert (order["status"], order["offerings_calls"], order["transaction_id"]) == ("OPEN", 3, body["basket"]["uuid"])
    other_till = {**body, "terminal_id": "TILL-2"}
    assert content(pos.offerings(other_till))["order_id"] != order["order_id"]
    done = content(pos.finalise(finalise_body(body)))
    assert done["order_id"] == order["order_id"]
    assert pos.offerings(body).status_code == 409, "a finalised basket cannot be offered again"


def test_cell_number_finds_or_creates_the_customer_letstrade_channels_reads(mock: MockServer) -> None:
    pos = Pos(mock)
    body = offerings_body(
        [product("A", "10.00")],
        "10.00",
        user={"cell_number": "27725550000", "cell_country_code": "+27", "name": "Ayanda"},
    )
    order_id = content(pos.offerings(body))["order_id"]
    user_id = pos.order(order_id)["user_id"]
    assert user_id and user_id != pos.default_user
    customer = pos.user(user_id)
    assert (customer["name"], customer["cell_number"], customer["cell_country_code"]) == (
        "Ayanda",
        "27725550000",
        "+27",
    )
    again = offerings_body([product("A", "10.00")], "10.00", user={"cell_number": "+27725550000"})
    assert pos.order(content(pos.offerings(again))["order_id"])["user_id"] == user_id


def test_an_email_that_is_another_customers_is_a_409_conflict_and_creates_no_one(mock: MockServer) -> None:
    """Found by the thorough contract run (issue 11): a schema-valid basket whose user e-mail
    belongs to another stored customer was refused 400, which tells a POS its request is
    malformed; it is a conflict with stored state (409), and nothing is created."""
    pos = Pos(mock)
    first = offerings_body(
        [product("A", "10.00")], "10.00", user={"cell_number": "27725550001", "email": "taken@example.com"}
    )
    owner = pos.order(content(pos.offerings(first))["order_id"])["user_id"]
    clash = offerings_body(
        [product("A", "10.00")], "10.00", user={"cell_number": "27725550002", "email": "taken@example.com"}
    )
    for answer in (pos.offerings(clash), pos.finalise(clash)):
        assert answer.status_code == 409, answer.text
        refusal = answer.json()
        assert refusal["success"] is False
        assert [e["field"] for e in refusal["errors"]] == ["basket.user.email"]
        assert owner in refusal["errors"][0]["message"]
    listed = mock.admin("GET", "/letstrade-pos/orders").json()
    assert len(listed) == 1  # only the first basket's order; the clash stored nothing


# -- fixtures and admin ---------------------------------------------------------------------------------
def test_fixtures_load_into_the_letstrade_section_or_nothing(mock: MockServer) -> None:
    pos = Pos(mock)
    good = {
        "letstrade": {
            "customers": [{"_id": "cust-1", "name": "Sam", "cell_number": "27731112222"}],
            "wallets": [{"user_id": "cust-1", "wallet_balance": "20.00"}],
            "vouchers": [
                {"user_id": "cust-1", "id": "V1", "apply_to": "BASKET", "discount_type": "FIXED", "value": "2"}
            ],
            "deals": [
                {
                    "id": "D1",
                    "title": "R1 off A",
                    "apply_to": "PRODUCT",
                    "sku": "A",
                    "discount_type": "FIXED",
                    "value": "1",
                }
            ],
        }
    }
    loaded = mock.admin("POST", "/fixtures", json=good)
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["loaded"]["letstrade"] == 4
    code = pos.mint("P", user={"_id": "cust-1"})
    offered = content(pos.offerings(offerings_body([product("A", "10.00")], "10.00", [code])))["basket"]
    assert offered["product_list"][0]["deal"] == {"id": "D1", "title": "R1 off A", "discount": "1.00"}
    assert offered["wallet"] == {"amount": 9}
    bad = {"letstrade": {"wallets": [{"user_id": "ghost"}], "customers": [{"_id": "cust-2"}]}}
    refused = mock.admin("POST", "/fixtures", json=bad)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "letstrade.wallets[0].user_id"
    assert mock.admin("GET", "/letstrade-pos/users/cust-2").status_code == 404, "nothing loads when anything is wrong"


def test_admin_refusals_and_order_filters(mock: MockServer) -> None:
    pos = Pos(mock)
    assert mock.admin("POST", "/letstrade-pos/codes", json={"type": "X"}).status_code == 400
    assert mock.admin("POST", "/letstrade-pos/codes", json={"type": "P", "walet_balance": "1"}).status_code == 400
    assert mock.admin("POST", "/letstrade-pos/codes", json={"type": "P", "user": {"_id": "nobody"}}).status_code == 404
    assert mock.admin("GET", "/letstrade-pos/codes/PNOPE1234").status_code == 404
    assert mock.admin("GET", "/letstrade-pos/orders/nope").status_code == 404
    content(pos.offerings(offerings_body([product("A", "1.00")], "1.00")))
    done = content(pos.finalise(finalise_body(offerings_body([product("A", "1.00")], "1.00"))))
    open_orders = mock.admin("GET", "/letstrade-pos/orders", params={"status": "OPEN"}).json()
    finalised = mock.admin("GET", "/letstrade-pos/orders", params={"status": "FINALISED"}).json()
    assert len(open_orders) == 1 and [o["order_id"] for o in finalised] == [done["order_id"]]
    assert mock.admin("GET", "/letstrade-pos/orders", params={"status": "NOPE"}).status_code == 400


def test_the_journal_keeps_what_a_conformance_report_needs(mock: MockServer) -> None:
    pos = Pos(mock)
    code = pos.mint("E")
    body = offerings_body([product("A", "10.00")], "10.00", [code])
    content(pos.offerings(body))
    content(pos.finalise(finalise_body(body)))
    entries = mock.journal(api="letstrade-pos")
    assert [e["operation_id"] for e in entries] == ["getOfferings", "finaliseOfferings"]
    finalise = entries[1]
    assert finalise["request"]["body"]["code"] == [code]
    assert finalise["response"]["body"]["content"]["order_id"] == entries[0]["response"]["body"]["content"]["order_id"]
    assert finalise["request"]["headers"]["Authorization"] == "***"
    assert all(e["violations"] == [] for e in entries)
