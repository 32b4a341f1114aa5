"""Tenants (issue 18; README, "Hosting a shared sandbox"): isolated sandboxes in one mock.

Two tenants with the same seed, used at the same time, never see each other's clock, resets,
faults, journal, stores, usage counters, conformance evidence, credentials created at run time or
LOKE deliveries; a tenant's token opens its own admin API and no other (401), an unknown tenant is
a 404; the default tenant is today's mock at today's URLs; `PUT /t/<id>/__admin/tenant` creates;
`--max-tenants` answers a clear 429 when full, and `--tenant-ttl` expires idle tenants, never one
in use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server.settings import Settings
from mock_server.testing import MockServer, TenantClient
from tests.integration.test_letstrade_pos_flow import offerings_body, product
from tests.integration.test_loke_webhooks import CrmReceiver

DAY = 86400.0


@pytest.fixture
def tenants(mock: MockServer) -> Iterator[list[TenantClient]]:
    """The tenants a test creates (append them): deleted at its end, whatever happened."""
    made: list[TenantClient] = []
    yield made
    for tenant in made:
        mock.admin("DELETE", f"/tenants/{tenant.id}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[CrmReceiver]:
    crm = CrmReceiver().start()
    yield crm
    crm.stop()


def _now(clock: dict[str, Any]) -> float:
    return datetime.fromisoformat(clock["now"].replace("Z", "+00:00")).timestamp()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _scenario(tenant: TenantClient, days: float, fault_status: int, crm: CrmReceiver) -> dict[str, Any]:
    """One tenant's own work; run for two tenants at once. Returns what it observed."""
    seen: dict[str, Any] = {}
    key = tenant.credentials["customtrades"]["api_key"]
    customers = tenant.url("customtrades", "/v1/customers")
    assert tenant.admin("POST", "/clock", json={"advance": days * DAY}).status_code == 200
    fault = tenant.admin("POST", "/faults", json={
        "api": "customtrades", "operation_id": "listCustomers", "status": fault_status, "times": 1,
    })
    assert fault.status_code == 201, fault.text
    seen["faulted"] = requests.get(customers, headers=_bearer(key), timeout=30).status_code
    created = requests.post(
        customers, headers=_bearer(key), timeout=30,
        json={"first_name": "Ada", "last_name": tenant.id, "email": f"{tenant.id}@example.com"},
    )
    assert created.status_code == 200, created.text
    listed = requests.get(customers, headers=_bearer(key), params={"limit": 100}, timeout=30)
    assert listed.status_code == 200, listed.text
    seen["emails"] = {c["email"] for c in listed.json()["data"]["customers"]}
    seen["usage"] = int(listed.headers["X-Usage-Count"])
    loke = tenant.credentials["loke"]
    org, headers = loke["organization_id"], _bearer(loke["access_token"])
    hook = requests.put(
        tenant.url("loke", f"/organizations/{org}/webhooks/crm"), headers=headers, timeout=30,
        json={"events": ["customer.created"], "secret": "whsec_tenant_test_1", "url": crm.url(f"/hooks/{tenant.id}")},
    )
    assert hook.status_code == 200, hook.text
    emitted = tenant.admin("POST", "/loke/events", json={
        "event": "customer.created",
        "customer": {"firstName": "Grace", "lastName": tenant.id, "email": f"grace-{tenant.id}@example.com"},
    })
    assert emitted.status_code == 202, emitted.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen["deliveries"] = tenant.admin("GET", "/loke/deliveries").json()
        if seen["deliveries"]:
            break
        time.sleep(0.05)
    seen["clock"] = tenant.admin("GET", "/clock").json()
    return seen


def test_two_tenants_with_the_same_seed_used_at_once_never_cross(
    mock: MockServer, tenants: list[TenantClient], receiver: CrmReceiver
) -> None:
    receiver.reset()
    first, second = mock.create_tenant(seed=7), mock.create_tenant(seed=7)
    tenants += [first, second]
    assert first.credentials == second.credentials, "same seed, same seeded credentials"
    default_clock = _now(mock.admin("GET", "/clock").json())

    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(_scenario, first, 1, 503, receiver)
        two = pool.submit(_scenario, second, 2, 502, receiver)
        a, b = one.result(timeout=120), two.result(timeout=120)

    # clock: each moved by its own amount, the default not at all
    real = time.time()
    assert abs(_now(a["clock"]) - (real + DAY)) < 120 and abs(_now(b["clock"]) - (real + 2 * DAY)) < 120
    assert abs(_now(mock.admin("GET", "/clock").json()) - time.time()) < 120 and default_clock < real + 60
    # faults: each got its own injected answer
    assert (a["faulted"], b["faulted"]) == (503, 502)
    # stores and usage counters: each sees its own customer only, and counts only its own requests
    assert f"{first.id}@example.com" in a["emails"] and f"{second.id}@example.com" not in a["emails"]
    assert f"{second.id}@example.com" in b["emails"] and f"{first.id}@example.com" not in b["emails"]
    assert a["usage"] == b["usage"] == 2, (a["usage"], b["usage"])  # the create and the list (the fault came first)
    # LOKE: one delivery each, to its own subscription, and the receiver got exactly those two
    assert [d["url"] for d in a["deliveries"]] == [receiver.url(f"/hooks/{first.id}")]
    assert [d["url"] for d in b["deliveries"]] == [receiver.url(f"/hooks/{second.id}")]
    assert sorted(r.path for r in receiver.wait_for(2)) == sorted([f"/hooks/{first.id}", f"/hooks/{second.id}"])
    # journal: each holds only its own traffic; the default's holds none of it
    for tenant in (first, second):
        bodies = " ".join(str(entry["request"].get("body")) for entry in tenant.journal())
        other = second if tenant is first else first
        assert f"{tenant.id}@example.com" in bodies and f"{other.id}@example.com" not in bodies
    assert not [e for e in mock.journal() if first.id in str(e) or second.id in str(e)]


def test_reset_conformance_and_credentials_made_at_run_time_stay_in_their_tenant(
    mock: MockServer, tenants: list[TenantClient]
) -> None:
    first, second = mock.create_tenant(seed=7), mock.create_tenant(seed=7)
    tenants += [first, second]
    letstrade = first.credentials["letstrade"]
    # a sign-in token made in the first tenant is refused by the second (same seed: same seeded token)
    signed = requests.post(first.url("letstrade-pos", "/user/sign_in"), timeout=30,
                           json={"email": letstrade["email"], "password": letstrade["password"]})
    assert signed.status_code == 200, signed.text
    fresh = signed.json()["content"]["token"]
    body = offerings_body([product("A", "1.00")], "1.00")
    assert requests.post(first.url("letstrade-pos", "/v1/get/offerings"), json=body,
                         headers=_bearer(fresh), timeout=30).status_code == 200
    # conformance: the first tenant's bill is evidence in its report only
    first_report = first.admin("GET", "/letstrade-pos/conformance").json()
    second_report = second.admin("GET", "/letstrade-pos/conformance").json()
    assert any(rule["evidence"] for rule in first_report["rules"])
    assert not any(rule["evidence"] for rule in second_report["rules"])
    assert second_report["summary"]["pass"] == second_report["summary"]["fail"] == 0
    refused = requests.post(second.url("letstrade-pos", "/v1/get/offerings"), json=body,
                            headers=_bearer(fresh), timeout=30)
    assert refused.status_code == 401, refused.text
    # reset: the second tenant's reset leaves the first's clock, journal and state alone
    assert first.admin("POST", "/clock", json={"advance": DAY}).status_code == 200
    assert second.admin("POST", "/reset").status_code == 200
    assert _now(first.admin("GET", "/clock").json()) > time.time() + DAY - 120
    assert len(first.journal()) == 2 and second.journal() == []  # sign-in and get/offerings
    assert requests.post(first.url("letstrade-pos", "/v1/get/offerings"), json=body,
                         headers=_bearer(fresh), timeout=30).status_code == 200
    # and a reset of the first forgets what was made there (the token too)
    assert first.admin("POST", "/reset").status_code == 200
    assert requests.post(first.url("letstrade-pos", "/v1/get/offerings"), json=body,
                         headers=_bearer(fresh), timeout=30).status_code == 401


def test_a_tenant_token_opens_its_own_admin_api_and_no_other(mock: MockServer, tenants: list[TenantClient]) -> None:
    first, second = mock.create_tenant(seed=1), mock.create_tenant(seed=2)
    tenants += [first, second]
    before = second.admin("GET", "/clock").json()
    calls = [("GET", "/requests", None), ("GET", "/credentials", None), ("POST", "/reset", None),
             ("POST", "/clock", {"advance": DAY}), ("POST", "/faults", {"api": "customtrades", "status": 500}),
             ("DELETE", "/requests", None), ("GET", "/letstrade-pos/conformance", None), ("GET", "/health", None)]
    for method, path, body in calls:
        for headers in ({"X-Admin-Token": first.admin_token}, {}, {"X-Admin-Token": "nope"},
                        {"Authorization": f"Bearer {first.admin_token}"}):
            answer = requests.request(method, second.admin_url(path), json=body, headers=headers, timeout=30)
            assert answer.status_code == 401, (method, path, headers.keys(), answer.status_code)
            assert answer.headers["Content-Type"].startswith("application/problem+json")
            assert first.admin_token not in answer.text and second.id in answer.text
    assert second.admin("GET", "/faults").json() == []
    assert abs(_now(second.admin("GET", "/clock").json()) - _now(before)) < 60
    # an unknown tenant is a 404 whatever the token; a tenant cannot manage tenants
    gone = requests.get(f"{mock.base_url}/t/no-such-tenant/__admin/health",
                        headers={"X-Admin-Token": first.admin_token}, timeout=30)
    assert gone.status_code == 404 and "no-such-tenant" in gone.json()["detail"]
    vendor = requests.get(f"{mock.base_url}/t/no-such-tenant/customtrades/v1/customers", timeout=30)
    assert vendor.status_code == 404 and vendor.json()["success"] is False  # the vendor's own envelope
    assert first.admin("GET", "/tenants").status_code == 404
    assert first.admin("POST", "/tenants", json={}).status_code == 404
    assert first.admin("GET", "/health").json() == {
        "status": "ok", "apis": list(Settings().apis), "tenant": first.id, "tenants": False,
    }


def test_the_default_tenant_is_unchanged_and_lists_and_deletes_tenants(
    mock: MockServer, tenants: list[TenantClient]
) -> None:
    health = mock.admin("GET", "/health").json()
    assert health == {"status": "ok", "apis": list(Settings().apis), "tenants": True}
    tenant = mock.create_tenant(id="listed-one", seed=3, apis=["loke", "customtrades"])
    tenants.append(tenant)
    assert tenant.base_url == f"{mock.base_url}/t/listed-one" and tenant.seed == 3
    assert set(tenant.credentials) >= {"customtrades", "loke"} and "capillary" not in tenant.credentials
    listed = mock.admin("GET", "/tenants").json()
    assert [t["id"] for t in listed] == ["listed-one"]
    assert listed[0]["apis"] == ["customtrades", "loke"] and "admin_token" not in str(listed)
    assert requests.get(tenant.url("capillary", "/v2/customers/lookup"), timeout=30).status_code == 404
    assert tenant.admin("GET", "/capillary/customers/1").status_code == 404
    # default: same URLs, credentials and admin API, no token needed
    key = mock.credentials()["customtrades"]["api_key"]
    assert requests.get(mock.url("customtrades", "/v1/customers"), headers=_bearer(key), timeout=30).status_code == 200
    foreign = requests.get(tenant.url("customtrades", "/v1/customers"), headers=_bearer(key), timeout=30)
    assert foreign.status_code == 401  # the default's key (seed 0) is not the tenant's (seed 3)
    own = _bearer(tenant.credentials["customtrades"]["api_key"])
    for extra in ({}, {"Expect": "100-continue"}):  # the fast path, and the app's route (Expect)
        answer = requests.get(tenant.url("customtrades", "/v1/customers"), headers={**own, **extra}, timeout=30)
        assert answer.status_code == 200, (extra, answer.text)
        unknown = requests.get(f"{mock.base_url}/t/nobody/loke/customers", headers=extra, timeout=30)
        assert unknown.status_code == 404 and unknown.json()["type"] == "not_found", unknown.text  # LOKE's envelope
    assert mock.admin("DELETE", "/tenants/listed-one").status_code == 204
    tenants.clear()
    assert requests.get(tenant.admin_url("/health"), headers={"X-Admin-Token": tenant.admin_token},
                        timeout=30).status_code == 404
    assert mock.admin("DELETE", "/tenants/listed-one").status_code == 404
    assert mock.admin("GET", "/tenants").json() == []


def test_create_checks_its_input_and_put_creates_at_the_tenant_path(
    mock: MockServer, tenants: list[TenantClient]
) -> None:
    put = requests.put(f"{mock.base_url}/t/put-made/__admin/tenant", json={"seed": 5}, timeout=30)
    assert put.status_code == 201, put.text
    tenants.append(TenantClient(mock, put.json()))
    assert put.json()["base_url"] == put.headers["Location"] == f"{mock.base_url}/t/put-made"
    assert requests.get(f"{mock.base_url}/t/put-made/__admin/health",
                        headers={"X-Admin-Token": put.json()["admin_token"]}, timeout=30).status_code == 200
    again = requests.put(f"{mock.base_url}/t/put-made/__admin/tenant", json={}, timeout=30)
    assert again.status_code == 409 and "put-made" in again.json()["detail"]
    assert mock.admin("POST", "/tenants", json={"id": "put-made"}).status_code == 409
    for body, field in [({"id": "Upper"}, "id"), ({"id": "ab"}, "id"), ({"seed": -1}, "seed"),
                        ({"apis": ["nope"]}, "apis"), ({"apis": []}, "apis"), ({"extra": 1}, "extra")]:
        refused = mock.admin("POST", "/tenants", json=body)
        assert refused.status_code == 400 and field in refused.text, (body, refused.text)
    bad_path = requests.put(f"{mock.base_url}/t/Bad_Id/__admin/tenant", json={}, timeout=30)
    assert bad_path.status_code == 400 and "id" in bad_path.text
    assert [t["id"] for t in mock.admin("GET", "/tenants").json()] == ["put-made"]
    assert requests.delete(f"{mock.base_url}/t/put-made/__admin/tenant", timeout=30).status_code == 204
    assert mock.admin("GET", "/tenants").json() == []


def test_server_token_limits_and_idle_expiry() -> None:
    """`--admin-token` guards the server-level calls (a tenant's token is not it); `--max-tenants`
    full is a 429; an idle tenant expires after `--tenant-ttl`, one with a request in flight does not."""
    server_token = {"X-Admin-Token": "operator-secret"}
    settings = Settings(port=0, apis=("customtrades",), admin_token="operator-secret", max_tenants=2, tenant_ttl=1.0)
    with MockServer(settings) as mock:
        assert mock.admin("POST", "/tenants", json={}).status_code == 401
        made = [mock.admin("POST", "/tenants", json={"id": f"slot-{i}"}, headers=server_token) for i in (1, 2)]
        assert [m.status_code for m in made] == [201, 201]
        busy, idle = (m.json() for m in made)
        busy_token = {"X-Admin-Token": busy["admin_token"]}
        assert mock.admin("GET", "/tenants", headers=busy_token).status_code == 401
        assert requests.get(f"{busy['base_url']}/__admin/health", headers=server_token, timeout=30).status_code == 200
        fault = requests.post(f"{busy['base_url']}/__admin/faults", headers=busy_token, timeout=30,
                              json={"api": "customtrades", "operation_id": "listCustomers", "latency_ms": 2500})
        assert fault.status_code == 201
        key = busy["credentials"]["customtrades"]["api_key"]
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(requests.get, f"{busy['base_url']}/customtrades/v1/customers",
                               headers=_bearer(key), timeout=30)
            time.sleep(0.3)
            full = mock.admin("POST", "/tenants", json={"id": "slot-3"}, headers=server_token)
            assert full.status_code == 429 and "--max-tenants" in full.json()["detail"], full.text
            assert slow.result().status_code == 200  # in flight past the TTL: never expired meanwhile
        listed = [t["id"] for t in mock.admin("GET", "/tenants", headers=server_token).json()]
        assert listed == ["slot-1"], listed  # the idle one expired, the busy one stayed
        assert requests.get(f"{idle['base_url']}/customtrades/v1/customers", timeout=30).status_code == 404
        assert mock.admin("POST", "/tenants", json={"id": "slot-3"}, headers=server_token).status_code == 201
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(mock.admin("GET", "/tenants", headers=server_token).json()) > 0:
            time.sleep(0.2)
        assert mock.admin("GET", "/tenants", headers=server_token).json() == []  # idle after its last request


def test_the_cli_takes_the_tenant_options() -> None:
    from mock_server.cli import build_parser, settings_from

    args = build_parser().parse_args(["serve", "--tenant-ttl", "90", "--max-tenants", "3"])
    assert (settings_from(args).tenant_ttl, settings_from(args).max_tenants) == (90.0, 3)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--tenant-ttl", "-1"])


@pytest.mark.parametrize("compact", [True, False], ids=["stopped", "crashed"])
def test_tenants_survive_a_restart_with_state_file_and_a_deleted_one_does_not(
    tmp_path: Path, compact: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--state-file DIR`: tenant X lives in DIR/tenants/X (its log and tenant.json); a restart
    re-opens it with its state and its admin token; a deleted tenant's folder is gone. "crashed":
    no last image at the stop, so every log (the default's too, which must not replay the tenant
    calls) is replayed at the restart, as after a kill -9."""
    if not compact:
        from mock_server import lifecycle

        close_state = lifecycle.close_state

        def without_image(services: Any, compact: bool = True) -> None:
            close_state(services, compact=False)

        monkeypatch.setattr(lifecycle, "close_state", without_image)
    settings = Settings(port=0, apis=("customtrades",), state_file=tmp_path)
    with MockServer(settings) as mock:
        kept = mock.create_tenant(id="kept", seed=4, pos_callback_url="http://till.example/pos/append-vouchers")
        dropped = mock.create_tenant(id="dropped")
        key = kept.credentials["customtrades"]["api_key"]
        made = requests.post(kept.url("customtrades", "/v1/customers"), headers=_bearer(key), timeout=30,
                             json={"first_name": "Ada", "last_name": "Kept", "email": "kept@example.com"})
        assert made.status_code == 200, made.text
        assert kept.admin("POST", "/clock", json={"advance": DAY}).status_code == 200
        assert (tmp_path / "tenants" / "kept" / "tenant.json").is_file()
        assert kept.admin_token not in (tmp_path / "tenants" / "kept" / "tenant.json").read_text()
        dropped.delete()
        assert not (tmp_path / "tenants" / "dropped").exists()
        assert requests.put(f"{mock.base_url}/t/put-one/__admin/tenant", json={}, timeout=30).status_code == 201
    monkeypatch.undo()
    with MockServer(settings) as mock:
        assert [(t["id"], t["pos_callback_url"]) for t in mock.admin("GET", "/tenants").json()] == [
            ("kept", "http://till.example/pos/append-vouchers"), ("put-one", None)
        ]
        assert mock.services.tenants is not None
        kept_world = mock.services.tenants.get("kept")
        assert kept_world is not None
        assert kept_world.world.settings.pos_callback_url == "http://till.example/pos/append-vouchers"
        listed = requests.get(f"{mock.base_url}/t/kept/customtrades/v1/customers", headers=_bearer(key), timeout=30)
        assert listed.status_code == 200
        assert "kept@example.com" in {c["email"] for c in listed.json()["data"]["customers"]}
        clock = requests.get(f"{mock.base_url}/t/kept/__admin/clock", headers={"X-Admin-Token": kept.admin_token},
                             timeout=30)
        assert clock.status_code == 200 and _now(clock.json()) > time.time() + DAY - 120
        assert requests.get(f"{mock.base_url}/t/dropped/__admin/health", timeout=30).status_code == 404


_SUITE_USER = '''
import json, os, pathlib

def _record(ctx, lcs_admin, name):
    before = lcs_admin.clock()
    advanced = lcs_admin.advance(86400)  # allowed: the tenant is this worker's own
    ctx.fresh()  # a reset of that tenant
    listed = ctx.request("GET", "/v1/customers")
    out = pathlib.Path(os.environ["TENANT_OUT"]) / name
    out.write_text(json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER"), "base": ctx.base_url,
                               "own": ctx.own_tenant, "clock": ctx.may_move_clock, "moved": lcs_admin.clock(),
                               "before": before, "advanced": advanced, "status": listed.status_code}))

def test_one(lcs_target, lcs_admin):
    _record(lcs_target.api("customtrades"), lcs_admin, "one")

def test_two(lcs_target, lcs_admin):
    _record(lcs_target.api("customtrades"), lcs_admin, "two")
'''


def test_the_contract_suite_uses_a_tenant_of_its_own_per_xdist_worker(tmp_path: Path) -> None:
    """On a `--target URL` whose health says tenants, each pytest-xdist worker creates a tenant
    (with the mock's `--admin-token` from LCS_ADMIN_TOKEN), may move its clock and reset it, and
    deletes it at the end; the default tenant is untouched."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "test_user.py").write_text(_SUITE_USER, encoding="utf-8")
    with MockServer(Settings(port=0, apis=("customtrades",), admin_token="operator-secret")) as mock:
        mock.session.headers["X-Admin-Token"] = "operator-secret"
        default_clock = _now(mock.admin("GET", "/clock").json())
        env = {**os.environ, "TENANT_OUT": str(tmp_path), "LCS_ADMIN_TOKEN": "operator-secret"}
        env.pop("PYTEST_XDIST_WORKER", None)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--target", mock.base_url,
             "--api", "customtrades", str(tmp_path / "test_user.py")],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        seen = [json.loads((tmp_path / name).read_text()) for name in ("one", "two")]
        assert mock.admin("GET", "/tenants").json() == []  # each worker deleted its tenant
        assert abs(_now(mock.admin("GET", "/clock").json()) - default_clock) < 60 and mock.journal() == []
    assert {s["worker"] for s in seen} == {"gw0", "gw1"}
    for record in seen:
        assert record["own"] and record["clock"] and record["status"] == 200
        assert record["base"].startswith(f"{mock.base_url}/t/lcs-{record['worker']}-")
        assert _now(record["advanced"]) > _now(record["before"]) + DAY - 60
        assert _now(record["moved"]) < _now(record["before"]) + 60  # the reset put its clock back
    assert seen[0]["base"] != seen[1]["base"]


def test_max_tenants_zero_serves_no_tenants() -> None:
    with MockServer(Settings(port=0, apis=("customtrades",), max_tenants=0)) as mock:
        assert mock.admin("GET", "/health").json() == {"status": "ok", "apis": ["customtrades"], "tenants": False}
        refused = mock.admin("POST", "/tenants", json={})
        assert refused.status_code == 404 and "--max-tenants 0" in refused.json()["detail"]
        assert requests.get(f"{mock.base_url}/t/any/__admin/health", timeout=30).status_code == 404


def test_every_journal_together_stays_under_journal_max_total_bytes() -> None:
    """A busy tenant's new requests push out the oldest of the whole process, here a quieter
    tenant's, and a deleted tenant's journal gives its share back at once."""
    with MockServer(Settings(port=0, apis=("customtrades",), journal_max_total_bytes=12_000)) as mock:
        quiet, busy = mock.create_tenant(id="quiet", seed=1), mock.create_tenant(id="busy", seed=2)

        def list_customers(tenant: TenantClient, times: int) -> None:
            key = _bearer(tenant.credentials["customtrades"]["api_key"])
            for _ in range(times):
                answer = requests.get(tenant.url("customtrades", "/v1/customers?per_page=1"), headers=key, timeout=30)
                assert answer.status_code == 200, answer.text

        list_customers(quiet, 3)
        assert len(quiet.journal()) == 3
        list_customers(busy, 30)
        kept_busy = busy.journal()
        assert quiet.journal() == [] and 3 < len(kept_busy) < 30  # the quiet tenant's went first
        assert [e["id"] for e in kept_busy] == list(range(31 - len(kept_busy), 31))  # the newest, in order
        budget = mock.services.journal.budget
        assert budget is not None and budget.used <= 12_000
        busy.delete()
        assert budget.used == mock.services.journal.bytes  # the default world's alone (the quiet one's is empty)
        assert budget.entries == len(mock.services.journal)
