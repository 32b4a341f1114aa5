"""The tenant registry (`mock_server.tenants`) without HTTP: ids, seeds and APIs checked, tokens
kept only as hashes, `--max-tenants` and `--tenant-ttl` on a fake clock, in-use tenants kept."""

from __future__ import annotations

import random

import pytest

from mock_server.apis.base import Services, Shared
from mock_server.clock import Clock
from mock_server.errors import Conflict, ValidationFailed
from mock_server.faults import FaultRegistry
from mock_server.journal import Journal
from mock_server.settings import Settings
from mock_server.tenants import TenantLimitReached, TenantRegistry

APIS = ("customtrades", "loke")


class Fixture:
    def __init__(self, max_tenants: int = 3, ttl: float = 60.0) -> None:
        self.now = 1_000_000.0
        self.built: list[tuple[str, int, tuple[str, ...]]] = []
        self.pos_urls: list[str | None] = []
        self.removed: list[str] = []
        self.registry = TenantRegistry(
            self.build, apis=APIS, max_tenants=max_tenants, ttl_seconds=ttl,
            on_remove=lambda tenant: self.removed.append(tenant.id), now=lambda: self.now,
        )

    def build(self, tenant_id: str, seed: int, apis: tuple[str, ...], pos_callback_url: str | None) -> Services:
        self.built.append((tenant_id, seed, apis))
        self.pos_urls.append(pos_callback_url)
        return Services(Settings(seed=seed, apis=apis), Clock(), Journal(10, 10_000), FaultRegistry(seed), Shared(),
                        random.Random(seed))


def test_create_checks_fields_chooses_defaults_and_keeps_only_the_token_hash() -> None:
    fx = Fixture()
    tenant, token = fx.registry.create("ci-1", 7, ["loke", "customtrades"])
    assert (tenant.id, tenant.seed, tenant.apis) == ("ci-1", 7, APIS)  # the server's order
    assert fx.built == [("ci-1", 7, APIS)] and tenant.world.tenant is tenant
    assert token not in repr(tenant.record()) and tenant.record()["token_sha256"] == tenant.token_hash.hex()
    assert tenant.accepts(token) and not tenant.accepts(token + "x") and not tenant.accepts(None)
    other, other_token = fx.registry.create()
    assert other.id.startswith("t-") and other.apis == APIS and other_token != token and 0 <= other.seed < 2**31
    assert fx.registry.get("ci-1") is tenant and fx.registry.get("nope") is None
    with pytest.raises(Conflict):
        fx.registry.create("ci-1")
    for bad in [{"tenant_id": "AB"}, {"tenant_id": "x" * 41}, {"tenant_id": "a_b"}, {"seed": -1}, {"seed": True},
                {"seed": 2**63}, {"apis": []}, {"apis": ["capillary"]}, {"pos_callback_url": "ftp://till/x"},
                {"pos_callback_url": "http:///no-host"}, {"pos_callback_url": "till.example/x"},
                {"pos_callback_url": 7}, {"pos_callback_url": "http://till/" + "x" * 2048},
                {"pos_callback_url": "http://till/a\nb"}, {"pos_callback_url": "http://[::1/x"}]:
        with pytest.raises(ValidationFailed) as refused:
            fx.registry.create(**bad)  # type: ignore[arg-type]
        field = next(iter(bad)).replace("tenant_id", "id")
        assert refused.value.fields and refused.value.fields[0].field.startswith(field), bad
    assert len(fx.built) == 2  # nothing built for a refused request
    till, _ = fx.registry.create("till-a", pos_callback_url="https://till-a.example:8443/pos/append-vouchers")
    assert fx.pos_urls == [None, None, "https://till-a.example:8443/pos/append-vouchers"]
    assert till.record()["pos_callback_url"] == till.describe("http://mock")["pos_callback_url"] == fx.pos_urls[-1]


def test_full_registry_expires_idle_tenants_first_then_answers_429() -> None:
    fx = Fixture(max_tenants=2, ttl=60)
    old, _ = fx.registry.create("old-one")
    fx.now += 30
    fx.registry.create("young-one")
    with pytest.raises(TenantLimitReached) as full:
        fx.registry.create("third")
    assert full.value.status == 429 and "--max-tenants" in full.value.message
    fx.now += 31  # old-one idle 61 s, young-one 31 s
    fx.registry.create("third")
    assert fx.removed == ["old-one"] and {t.id for t in fx.registry} == {"young-one", "third"}
    assert old.world.tenant is old  # its world is only dropped, the caller (on_remove) closes it


def test_a_tenant_in_use_is_never_expired_and_use_restarts_its_ttl() -> None:
    fx = Fixture(ttl=60)
    busy, _ = fx.registry.create("busy")
    working, _ = fx.registry.create("working")
    fx.registry.create("idle")
    fx.registry.enter(busy)  # a request in flight for longer than the TTL
    working.world.background.add(object())  # outbound work (a webhook delivery) running
    fx.now += 61
    assert fx.registry.expire_idle() == ["idle"]
    fx.registry.leave(busy)
    working.world.background.clear()
    fx.now += 59
    assert fx.registry.expire_idle() == ["working"]  # its TTL ran from its creation; busy's from its request
    fx.now += 2
    assert fx.registry.expire_idle() == ["busy"]
    assert fx.removed == ["idle", "working", "busy"] and len(fx.registry) == 0


def test_ttl_zero_never_expires_and_delete_reports_unknown_ids() -> None:
    fx = Fixture(ttl=0)
    fx.registry.create("kept")
    fx.now += 10**9
    assert fx.registry.expire_idle() == [] and fx.registry.get("kept") is not None
    assert fx.registry.delete("kept") and not fx.registry.delete("kept")
    assert fx.removed == ["kept"]


def test_describe_never_shows_the_token() -> None:
    fx = Fixture()
    tenant, token = fx.registry.create("shown", 3)
    shown = tenant.describe("http://mock")
    assert shown["base_url"] == "http://mock/t/shown" and shown["seed"] == 3 and shown["in_use"] is False
    assert token not in str(shown) and tenant.token_hash.hex() not in str(shown)
