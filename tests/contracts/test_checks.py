"""The suite's own checks on synthetic responses: each property violated in each way it can be,
and kept, so a check is proven to fail (and to pass) whatever the mock currently does. Replays
are answered by a scripted `send`, the clock by a fake admin client."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Response

from contracts import checks
from contracts.checks import CheckEnv, find_secret_leaks
from contracts.failures import ContractViolation
from contracts.specs import load_spec

_SCHEMAS: dict[str, Any] = {}


def case(slug: str, method: str, path: str, **kwargs: Any) -> Any:
    if slug not in _SCHEMAS:
        _SCHEMAS[slug] = schemathesis.openapi.from_dict(load_spec(slug))
    return _SCHEMAS[slug][path][method].Case(**kwargs)


def response(
    status: int, body: Any = None, *, url: str = "http://mock/api", headers: dict[str, str] | None = None
) -> Response:
    content = json.dumps(body).encode() if body is not None else b""
    sent = {"content-type": ["application/json"], **{k.lower(): [v] for k, v in (headers or {}).items()}}
    return Response(
        status_code=status,
        headers=sent,
        content=content,
        request=requests.Request("GET", url).prepare(),
        elapsed=0.0,
        verify=True,
    )


class Reply:
    def __init__(self, status: int, body: Any = None) -> None:
        self.status_code = status
        self._body = body
        self.text = json.dumps(body) if body is not None else ""
        self.headers: dict[str, str] = {}

    def json(self) -> Any:
        if self._body is None:
            raise ValueError("no body")
        return self._body


class Script:
    """A fake `send`: answers each request with the next scripted reply, and keeps the requests."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.sent: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> Reply:
        self.sent.append(kwargs)
        return self.replies.pop(0)


class FakeAdmin:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def clock(self) -> dict[str, Any]:
        self.calls.append(("clock", None))
        return {"now": "2026-01-01T00:00:00.000Z", "frozen": False}

    def advance(self, seconds: float) -> None:
        self.calls.append(("advance", seconds))

    def set_clock(self, iso: str) -> None:
        self.calls.append(("set", iso))


def env(api: str, send: Script | None = None, **kwargs: Any) -> CheckEnv:
    return CheckEnv(
        api=api,
        spec=api,
        base_url="http://mock/api",
        send=send or Script(),
        headers=lambda: {"Authorization": "Bearer lt_token_for_tests_0001"},
        **kwargs,
    )


def violation(check: Callable[..., Any], e: CheckEnv, resp: Response, c: Any) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        check(e, None, resp, c)
    return caught.value


# -- finalise_executes_once ---------------------------------------------------------------------------
FINALISE_BODY = {
    "store_id": "S1",
    "terminal_id": "T1",
    "code": ["PABC123"],
    "basket": {"uuid": "b-1", "total": "10.00", "product_list": []},
}


def _finalise_case() -> Any:
    return case("letstrade-pos", "POST", "/v1/finalise/offerings", body=json.loads(json.dumps(FINALISE_BODY)))


def test_finalise_twice_is_a_broken_contract() -> None:
    send = Script(Reply(200, {"success": True}))
    found = violation(checks.finalise_executes_once, env("letstrade-pos", send), response(200, {}), _finalise_case())
    assert "executed twice" in found.message
    assert not found.provenance.assumed  # finalise executes once: seed 004
    assert found.provenance.location == "letstrade-pos.yaml#/paths/~1v1~1finalise~1offerings/post"


def test_second_finalise_refused_with_another_status_refutes_the_409_assumption() -> None:
    send = Script(Reply(400, {"success": False}))
    found = violation(checks.finalise_executes_once, env("letstrade-pos", send), response(200, {}), _finalise_case())
    assert found.provenance.assumed
    assert found.provenance.location == "letstrade-pos.yaml#/components/responses/AlreadyFinalised"


def test_finalise_replays_the_basket_and_the_codes_on_another_basket() -> None:
    send = Script(Reply(409, {"success": False}), Reply(409, {"success": False}))
    checks.finalise_executes_once(env("letstrade-pos", send), None, response(200, {}), _finalise_case())  # type: ignore[arg-type]
    assert send.sent[0]["json"]["basket"]["uuid"] == "b-1"
    assert send.sent[1]["json"]["basket"]["uuid"] != "b-1" and send.sent[1]["json"]["code"] == ["PABC123"]


def test_finalise_check_ignores_refused_finalises() -> None:
    send = Script()
    checks.finalise_executes_once(env("letstrade-pos", send), None, response(409, {}), _finalise_case())  # type: ignore[arg-type]
    assert send.sent == []


# -- expired_code_refused ----------------------------------------------------------------------------
def _offerings_case() -> Any:
    body = {
        "store_id": "S1",
        "terminal_id": "T1",
        "code": ["RMINTED1"],
        "basket": {"uuid": "b", "total": "1", "outstanding": "1", "product_list": []},
    }
    return case("letstrade-pos", "POST", "/v1/get/offerings", body=body)


@pytest.mark.parametrize(
    ("early", "late", "assumed", "text"),
    [
        (200, 200, False, "accepted (200) 10:01"),
        (410, 410, False, "refused (410) 9:50"),
        (200, 400, True, "not 410"),
    ],
)
def test_expiry_violations(early: int, late: int, assumed: bool, text: str) -> None:
    admin = FakeAdmin()
    e = env(
        "letstrade-pos",
        Script(Reply(early, {}), Reply(late, {})),
        admin=admin,
        may_move_clock=True,
        minted={"RMINTED1"},
    )
    found = violation(checks.expired_code_refused, e, response(200, {}), _offerings_case())
    assert text in found.message
    assert found.provenance.assumed is assumed
    assert admin.calls[-1] == ("set", "2026-01-01T00:00:00.000Z")  # the clock is put back


def test_expiry_passes_and_moves_the_clock_across_ten_minutes() -> None:
    admin = FakeAdmin()
    e = env(
        "letstrade-pos", Script(Reply(200, {}), Reply(410, {})), admin=admin, may_move_clock=True, minted={"RMINTED1"}
    )
    checks.expired_code_refused(e, None, response(200, {}), _offerings_case())  # type: ignore[arg-type]
    advanced = sum(v for k, v in admin.calls if k == "advance")
    assert 600 < advanced < 610


def test_expiry_needs_a_code_this_test_minted_and_a_clock_it_may_move() -> None:
    for e in (
        env("letstrade-pos", admin=FakeAdmin(), may_move_clock=False, minted={"RMINTED1"}),
        env("letstrade-pos", admin=FakeAdmin(), may_move_clock=True, minted=set()),
        env("letstrade-pos", admin=None, may_move_clock=True, minted={"RMINTED1"}),
    ):
        checks.expired_code_refused(e, None, response(200, {}), _offerings_case())  # type: ignore[arg-type]
        assert e.send.sent == []  # type: ignore[attr-defined]


# -- channel_key_scoped ------------------------------------------------------------------------------
def _upsert_case() -> Any:
    return case(
        "letstrade-channels",
        "POST",
        "/v1/webhooks/channels/{webhook_uuid}/customers",
        path_parameters={"webhook_uuid": "2ae70f8c-cdd4-4b96-83f0-03beae593414"},
        body={"email": "a@example.com"},
    )


def test_another_channels_key_accepted_is_caught() -> None:
    send = Script(Reply(200, {"success": True}))
    e = env("letstrade-channels", send, foreign_channel_key=lambda: "key-of-another-channel-000000000")
    found = violation(checks.channel_key_scoped, e, response(200, {}), _upsert_case())
    assert "Another channel's API key was accepted" in found.message
    assert send.sent[0]["headers"]["X-API-Key"] == "key-of-another-channel-000000000"


def test_another_channels_key_refused_with_403_refutes_the_401_assumption() -> None:
    e = env(
        "letstrade-channels", Script(Reply(403, {})), foreign_channel_key=lambda: "key-of-another-channel-000000000"
    )
    found = violation(checks.channel_key_scoped, e, response(200, {}), _upsert_case())
    assert "not 401" in found.message


def test_key_scoping_passes_on_401_and_is_skipped_without_a_second_key() -> None:
    ok = env(
        "letstrade-channels", Script(Reply(401, {})), foreign_channel_key=lambda: "key-of-another-channel-000000000"
    )
    checks.channel_key_scoped(ok, None, response(200, {}), _upsert_case())  # type: ignore[arg-type]
    none = env("letstrade-channels", Script())
    checks.channel_key_scoped(none, None, response(200, {}), _upsert_case())  # type: ignore[arg-type]


# -- customtrades paging and soft delete --------------------------------------------------------------
def _list(total: int, page: int, limit: int, count: int, pages: int, deleted: bool = False) -> dict[str, Any]:
    customers = [{"uuid": f"u{n}", "deleted_at": "2026-01-01T00:00:00Z" if deleted else None} for n in range(count)]
    return {
        "success": True,
        "data": {
            "customers": customers,
            "pagination": {"page": page, "limit": limit, "total": total, "total_pages": pages},
        },
    }


LIST_URL = "http://mock/api/v1/customers?page=2&limit=3"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (_list(7, 2, 3, 3, 2), "total_pages is 2"),
        (_list(7, 2, 3, 2, 3), "holds 2 customers"),
        (_list(7, 1, 3, 3, 3), "pagination.page is 1"),
        (_list(7, 2, 5, 2, 2), "pagination.limit is 5"),
    ],
)
def test_paging_inconsistencies_are_caught(body: dict[str, Any], text: str) -> None:
    c = case("customtrades", "GET", "/v1/customers", query={"page": 2, "limit": 3})
    found = violation(checks.paging_totals_consistent, env("customtrades"), response(200, body, url=LIST_URL), c)
    assert text in found.message


def test_consistent_pages_pass_including_the_last_and_past_the_end() -> None:
    c = case("customtrades", "GET", "/v1/customers")
    for url, body in (
        (LIST_URL, _list(7, 2, 3, 3, 3)),
        ("http://mock/api/v1/customers?page=3&limit=3", _list(7, 3, 3, 1, 3)),
        ("http://mock/api/v1/customers?page=9&limit=3", _list(7, 9, 3, 0, 3)),
        ("http://mock/api/v1/customers", _list(0, 1, 50, 0, 0)),
    ):
        checks.paging_totals_consistent(env("customtrades"), None, response(200, body, url=url), c)  # type: ignore[arg-type]


def test_duplicate_customer_on_a_page_is_caught() -> None:
    body = _list(2, 1, 50, 2, 1)
    body["data"]["customers"][1]["uuid"] = "u0"
    c = case("customtrades", "GET", "/v1/customers")
    found = violation(
        checks.paging_totals_consistent, env("customtrades"), response(200, body, url="http://mock/api/v1/customers"), c
    )
    assert "twice" in found.message


def test_soft_deleted_customer_listed_without_include_deleted_is_caught() -> None:
    c = case("customtrades", "GET", "/v1/customers")
    body = _list(1, 1, 50, 1, 1, deleted=True)
    found = violation(
        checks.soft_deleted_hidden, env("customtrades"), response(200, body, url="http://mock/api/v1/customers"), c
    )
    assert "include_deleted" in found.message
    checks.soft_deleted_hidden(
        env("customtrades"),
        None,  # type: ignore[arg-type]
        response(200, body, url="http://mock/api/v1/customers?include_deleted=true"),
        c,
    )


def test_get_of_a_soft_deleted_customer_is_caught() -> None:
    c = case("customtrades", "GET", "/v1/customers/{uuid}", path_parameters={"uuid": "u0"})
    body = {"success": True, "data": {"uuid": "u0", "deleted_at": "2026-01-01T00:00:00Z"}}
    assert "expected 404" in violation(checks.soft_deleted_hidden, env("customtrades"), response(200, body), c).message


def _delete_case() -> Any:
    return case("customtrades", "DELETE", "/v1/customers/{uuid}", path_parameters={"uuid": "u0"})


def test_deleted_customer_still_readable_is_caught() -> None:
    send = Script(Reply(200, {"success": True, "data": {"uuid": "u0"}}))
    assert (
        "not 404"
        in violation(
            checks.soft_deleted_leave_lists, env("customtrades", send), response(200, {}), _delete_case()
        ).message
    )


def test_deleted_customer_still_listed_is_caught() -> None:
    send = Script(Reply(404, {}), Reply(200, _list(1, 1, 100, 1, 1, deleted=True)))
    found = violation(checks.soft_deleted_leave_lists, env("customtrades", send), response(200, {}), _delete_case())
    assert "still listed" in found.message


def test_include_deleted_not_showing_it_refutes_the_search_assumption() -> None:
    send = Script(Reply(404, {}), Reply(200, _list(0, 1, 100, 0, 0)), Reply(200, _list(0, 1, 100, 0, 0)))
    found = violation(checks.soft_deleted_leave_lists, env("customtrades", send), response(200, {}), _delete_case())
    assert found.provenance.assumed  # how search matches is an assumption of the spec
    assert found.provenance.location == "customtrades.yaml#/paths/~1v1~1customers/get/parameters/2/schema"


def test_soft_delete_done_right_passes() -> None:
    send = Script(Reply(404, {}), Reply(200, _list(0, 1, 100, 0, 0)), Reply(200, _list(1, 1, 100, 1, 1, deleted=True)))
    checks.soft_deleted_leave_lists(env("customtrades", send), None, response(200, {}), _delete_case())  # type: ignore[arg-type]
    assert send.sent[1]["params"]["include_deleted"] == "false" and send.sent[2]["params"]["include_deleted"] == "true"


# -- capillary duplicate registration ----------------------------------------------------------------
def _register_case() -> Any:
    body = {"profiles": [{"identifiers": [{"type": "mobile", "value": "919876543210"}], "source": "INSTORE"}]}
    return case("capillary", "POST", "/v2/customers", body=body)


@pytest.mark.parametrize(
    ("reply", "assumed", "text"),
    [
        (Reply(200, {"createdId": 1}), False, "accepted twice"),
        (Reply(409, {"errors": [{"status": False, "code": 8014, "message": "x"}]}), False, "without error code 8006"),
        (Reply(400, {"errors": [{"status": False, "code": 8006, "message": "x"}]}), True, "not 409"),
    ],
)
def test_duplicate_registration(reply: Reply, assumed: bool, text: str) -> None:
    found = violation(
        checks.duplicate_registration_refused, env("capillary", Script(reply)), response(200, {}), _register_case()
    )
    assert text in found.message and found.provenance.assumed is assumed


def test_duplicate_registration_refused_with_8006_passes() -> None:
    reply = Reply(
        409, {"errors": [{"status": False, "code": 8006, "message": "Customer already exists for same source"}]}
    )
    checks.duplicate_registration_refused(env("capillary", Script(reply)), None, response(200, {}), _register_case())  # type: ignore[arg-type]


# -- LOKE paging and points ----------------------------------------------------------------------------
LOKE_LIST = "/organizations/{organizationId}/customers"
PAGE_URL = "http://mock/api/organizations/O1/customers?sort=created"


def _loke_list_case() -> Any:
    return case("loke", "GET", LOKE_LIST, path_parameters={"organizationId": "O1"})


@pytest.mark.parametrize(
    ("link", "body", "text"),
    [
        ("/organizations/O1/customers?after=abc", [{"id": "A"}], "not a full URL"),
        ("http://mock/api/organizations/O2/customers?after=abc", [{"id": "A"}], "not at the listing"),
        ("http://mock/api/organizations/O1/customers?sort=created", [{"id": "A"}], "no `after` cursor"),
        ("http://mock/api/organizations/O1/customers?after=abc", [], "empty page"),
    ],
)
def test_bad_next_page_links_are_caught(link: str, body: list[Any], text: str) -> None:
    found = violation(
        checks.next_page_never_repeats,
        env("loke"),
        response(200, body, url=PAGE_URL, headers={"X-Next-Page": link}),
        _loke_list_case(),
    )
    assert text in found.message


def test_a_cursor_that_loops_is_caught() -> None:
    url = "http://mock/api/organizations/O1/customers?after=abc"
    found = violation(
        checks.next_page_never_repeats,
        env("loke"),
        response(200, [{"id": "A"}], url=url, headers={"X-Next-Page": url}),
        _loke_list_case(),
    )
    assert "endless loop" in found.message


def test_a_next_page_repeating_items_is_caught_and_a_clean_one_passes() -> None:
    link = "http://mock/api/organizations/O1/customers?after=abc"
    resp = response(200, [{"id": "A"}, {"id": "B"}], url=PAGE_URL, headers={"X-Next-Page": link})
    found = violation(
        checks.next_page_never_repeats,
        env("loke", Script(Reply(200, [{"id": "B"}, {"id": "C"}]))),
        resp,
        _loke_list_case(),
    )
    assert "repeats 1 item" in found.message
    send = Script(Reply(200, [{"id": "C"}]))
    checks.next_page_never_repeats(env("loke", send), None, resp, _loke_list_case())  # type: ignore[arg-type]
    assert send.sent[0]["url"].endswith("/organizations/O1/customers?after=abc")


def test_points_reference_reused() -> None:
    c = case(
        "loke",
        "PUT",
        "/organizations/{organizationId}/customers/{customerId}/points/{reference}",
        path_parameters={"organizationId": "O1", "customerId": "01FCCGYZA9JPQ97HBSTKW0KT7P", "reference": "r1"},
        body={"amount": 5},
    )
    found = violation(checks.points_reference_single_use, env("loke", Script(Reply(204))), response(204), c)
    assert "expected 409 duplicate_point_record" in found.message
    ok = Script(Reply(409, {"message": "dup", "type": "duplicate_point_record"}))
    checks.points_reference_single_use(env("loke", ok), None, response(204), c)  # type: ignore[arg-type]


# -- secrets -------------------------------------------------------------------------------------------
ARGON = (  # seed 000's sample response
    "$argon2id$v=19$m=65536,t=3,p=4$ye7Ngfb+THQeVpdNJNH3H4ZFP/NjqDL++JK068ASu2U$dY7SYAkTAxiwRkIkeARQepX/SL+++Nfukx3jzFazO5s"
)
PLACEHOLDER = (
    "$argon2id$v=19$m=65536,t=3,p=4$bW9jay1wbGFjZWhvbGRlci1zYWx0$bm90LWEtaGFzaC1vZi1hbnl0aGluZy1wbGFjZWhvbGRlcg"
)


def leaks(
    body: Any,
    *,
    request_body: Any = None,
    known: dict[str, str] | None = None,
    auth: dict[str, str] | None = None,
    headers: dict[str, list[str]] | None = None,
    bearer: bool = True,
) -> list[tuple[str, str]]:
    return find_secret_leaks(
        headers or {}, body, "", auth or {}, request_body, set(), known or {}, bearer_is_secret=bearer
    )


def test_secret_leaks_are_found_where_they_are() -> None:
    assert leaks(
        {"data": {"note": "key ctc_live_abcdefgh123"}}, known={"ctc_live_abcdefgh123": "Custom Trades API key"}
    ) == [("/data/note", "Custom Trades API key (ctc…)")]
    assert (
        leaks({"secret": "whsec_long_secret_1"}, request_body={"secret": "whsec_long_secret_1", "url": "http://x"})[0][
            0
        ]
        == "/secret"
    )
    assert leaks({"content": {"password": ARGON}})[0][1].startswith("a password hash")
    assert leaks(
        {},
        headers={"x-debug": ["Bearer lt_token_for_tests_0001"]},
        auth={"Authorization": "Bearer lt_token_for_tests_0001"},
    )


def test_capillary_token_headers_are_secrets() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.capillary-oauth-token-0001"
    for header in ("CAP-API-ACCESS-TOKEN", "X-CAP-API-OAUTH-TOKEN"):
        assert leaks({"echo": token}, auth={header: token}) == [("/echo", f"the {header} header sent (eyJ…)")], header


def test_basic_credentials_and_their_password_are_secrets() -> None:
    basic = "Basic " + base64.b64encode(b"mock.till:0123456789abcdef0123456789abcdef").decode()
    assert leaks({"echo": "0123456789abcdef0123456789abcdef"}, auth={"Authorization": basic})


def test_what_is_not_a_leak() -> None:
    assert leaks({"content": {"password": PLACEHOLDER}}) == []  # the mock's documented placeholder
    assert (
        leaks(
            {"token": "lt_token_for_tests_0001"}, auth={"Authorization": "Bearer lt_token_for_tests_0001"}, bearer=False
        )
        == []
    )
    assert leaks({"name": "samevalue1"}, request_body={"name": "samevalue1", "password": "samevalue1"}) == []
    assert leaks({"secret": "short"}, request_body={"secret": "short"}) == []  # too short to tell from data
    assert leaks({"echo": ARGON}, request_body={"note": ARGON}) == []  # the client's own data echoed


def test_no_secret_echo_names_the_response_field() -> None:
    c = case(
        "loke",
        "PUT",
        "/organizations/{organizationId}/webhooks/{webhookRef}",
        path_parameters={"organizationId": "O1", "webhookRef": "crm"},
        body={
            "events": ["customer.created"],
            "secret": "whsec_9fK2mQ7xL4pR8tV1",
            "url": "https://crm.example.com/hook",
        },
    )
    body = {
        "events": ["customer.created"],
        "id": "w1",
        "ref": "crm",
        "url": "https://crm.example.com/hook",
        "secret": "whsec_9fK2mQ7xL4pR8tV1",
    }
    found = violation(checks.no_secret_echo, env("loke"), response(200, body), c)
    assert "/secret" in found.message and found.check == "no_secret_echo"
    assert found.provenance.location.startswith("loke.yaml#/components/schemas/Webhook")


def test_checks_are_bound_per_api_and_named() -> None:
    names = [c.__name__ for c in checks.checks_for(env("customtrades"))]
    assert names == ["no_secret_echo", "paging_totals_consistent", "soft_deleted_hidden", "soft_deleted_leave_lists"]
    assert set(checks.CHECK_NAMES) >= set(names)
