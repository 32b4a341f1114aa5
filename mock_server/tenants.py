"""Tenants: isolated sandboxes in one process (README, "Hosting a shared sandbox").

A tenant is one more world (`apis.base.Services`): its own seed, clock, journal, faults, shared
Let'sTrade state, stores, counters, deliveries and credentials, served under `/t/<id>/...` and
guarded by its own admin token. Its runtimes share the default world's compiled parts, so a
tenant costs only its state. This module is the registry: create (id, seed, APIs, token), look
up, delete, and expire the idle ones. It builds no world itself (`build_world`, given by the app)
and never speaks HTTP.

The admin token is 32 random bytes from the operating system (never the seed: a token must not
be guessable from a tenant's seed); only its SHA-256 is kept, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets as system_secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from mock_server.apis.base import Services
from mock_server.errors import Conflict, FieldError, MockError, ValidationFailed

TENANT_ID = re.compile(r"[a-z0-9-]{3,40}")
MAX_SEED = 2**63 - 1
DEFAULT_TTL_SECONDS = 24 * 3600.0
DEFAULT_MAX_TENANTS = 1000


class TenantLimitReached(MockError):
    """`--max-tenants` tenants exist and none of them may be expired (all in use)."""

    status, kind = 429, "tenant_limit"


@dataclass(eq=False)
class Tenant:
    id: str
    seed: int
    apis: tuple[str, ...]
    token_hash: bytes  # SHA-256 of the admin token; the token itself is never kept
    created_at: float  # real time (seconds since the epoch)
    last_used: float  # real time of the latest request's end (or start, while one is in flight)
    world: Services
    in_flight: int = 0  # requests being answered now
    pos_callback_url: str | None = None  # its own POS under test (else the server's --pos-callback-url)

    @property
    def base_path(self) -> str:
        return f"/t/{self.id}"

    def accepts(self, presented: str | None) -> bool:
        """Whether `presented` is this tenant's admin token (constant time)."""
        if presented is None:
            return False
        return hmac.compare_digest(hashlib.sha256(presented.encode("utf-8")).digest(), self.token_hash)

    @property
    def in_use(self) -> bool:
        """A request is being answered, or outbound work (a webhook delivery, a POS call) runs."""
        return self.in_flight > 0 or bool(self.world.background)

    def describe(self, root: str) -> dict[str, Any]:
        """What `GET /__admin/tenants` shows (never the token)."""
        return {
            "id": self.id,
            "base_url": f"{root}{self.base_path}",
            "seed": self.seed,
            "apis": list(self.apis),
            "pos_callback_url": self.pos_callback_url,
            "created_at": _iso(self.created_at),
            "last_used_at": _iso(self.last_used),
            "in_use": self.in_use,
        }

    def record(self) -> dict[str, Any]:
        """What a restart needs to re-open the tenant (`tenant.json` under `--state-file`)."""
        return {
            "id": self.id,
            "seed": self.seed,
            "apis": list(self.apis),
            "pos_callback_url": self.pos_callback_url,
            "token_sha256": self.token_hash.hex(),
            "created_at": self.created_at,
            "last_used": self.last_used,
        }


def _is_http_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS or not value.isprintable():
        return False
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed [IPv6 address
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


WorldBuilder = Callable[[str, int, tuple[str, ...], str | None], Services]  # id, seed, APIs, POS URL
MAX_URL_CHARS = 2048


class TenantRegistry:
    """Every tenant of one process. `build_world(id, seed, apis, pos_callback_url)` makes a tenant's world;
    `on_create(tenant)` is told of each new one (e.g. to save its record; when it raises, the tenant
    is removed again and the error propagates); `on_remove(tenant)` of each tenant deleted or
    expired (after it left the registry).
    `max_tenants` bounds how many exist; a tenant idle (no request, no outbound work) for
    `ttl_seconds` of real time is expired (`0` = never)."""

    def __init__(
        self,
        build_world: WorldBuilder,
        *,
        apis: Sequence[str],
        max_tenants: int = DEFAULT_MAX_TENANTS,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        on_remove: Callable[[Tenant], None] | None = None,
        on_create: Callable[[Tenant], None] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._build = build_world
        self.apis = tuple(apis)
        self.max_tenants = max_tenants
        self.ttl_seconds = ttl_seconds
        self._on_remove = on_remove
        self._on_create = on_create
        self._now = now
        self._tenants: dict[str, Tenant] = {}

    def __len__(self) -> int:
        return len(self._tenants)

    def __iter__(self) -> Iterator[Tenant]:
        return iter(list(self._tenants.values()))  # a copy: the caller may delete while iterating

    def get(self, tenant_id: str) -> Tenant | None:
        return self._tenants.get(tenant_id)

    # -- create / delete --------------------------------------------------------------------------
    def check(
        self, tenant_id: str | None, seed: Any, apis: Sequence[str] | None, pos_callback_url: Any = None
    ) -> tuple[str, int, tuple[str, ...]]:
        """The request's id, seed, APIs and POS callback URL, checked (400 naming each bad field,
        409 for a taken id), the omitted ones chosen: a random id and seed, every API of the server."""
        errors: list[FieldError] = []
        if tenant_id is None:
            tenant_id = "t-" + system_secrets.token_hex(6)
        elif not isinstance(tenant_id, str) or TENANT_ID.fullmatch(tenant_id) is None:
            errors.append(FieldError("id", "expected 3 to 40 characters from a-z, 0-9 and -"))
        if seed is None:
            seed = system_secrets.randbelow(2**31)
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            errors.append(FieldError("seed", f"expected a whole number from 0 to {MAX_SEED}"))
        chosen: tuple[str, ...] = self.apis
        if apis is not None:
            if not apis:
                errors.append(FieldError("apis", "expected at least one API"))
            for index, slug in enumerate(apis):
                if slug not in self.apis:
                    expected = ", ".join(self.apis)
                    message = f"{slug!r} is not mounted here; expected one of {expected}"
                    errors.append(FieldError(f"apis[{index}]", message))
            chosen = tuple(slug for slug in self.apis if slug in apis)  # the server's order
        if pos_callback_url is not None and not _is_http_url(pos_callback_url):
            expected = f"expected an http:// or https:// URL with a host, at most {MAX_URL_CHARS} characters"
            errors.append(FieldError("pos_callback_url", expected))
        if errors:
            raise ValidationFailed("The tenant cannot be created", errors)
        if tenant_id in self._tenants:
            raise Conflict(
                f"A tenant named {tenant_id!r} exists; choose another id or delete it first",
                [FieldError("id", "is taken")],
            )
        return tenant_id, int(seed), chosen

    def create(
        self,
        tenant_id: str | None = None,
        seed: Any = None,
        apis: Sequence[str] | None = None,
        pos_callback_url: Any = None,
    ) -> tuple[Tenant, str]:
        """A new tenant and its admin token (shown this once). `pos_callback_url`: the POS under
        test that this tenant's Let'sTrade app-voucher calls go to (default the server's)."""
        tenant_id, seed, chosen = self.check(tenant_id, seed, apis, pos_callback_url)
        if len(self._tenants) >= self.max_tenants:
            self.expire_idle()
        if len(self._tenants) >= self.max_tenants:
            raise TenantLimitReached(
                f"This mock holds its maximum of {self.max_tenants} tenants (--max-tenants), all in use; "
                "delete one (DELETE /__admin/tenants/<id>) or try again when one has been idle for "
                f"{self.ttl_seconds:g} seconds (--tenant-ttl)",
                [FieldError("id", "no room for another tenant")],
            )
        token = system_secrets.token_urlsafe(32)
        now = self._now()
        world = self._build(tenant_id, seed, chosen, pos_callback_url)  # may raise (fixtures): nothing added
        tenant = Tenant(
            tenant_id, seed, chosen, hashlib.sha256(token.encode("utf-8")).digest(), now, now, world,
            pos_callback_url=pos_callback_url,
        )
        world.tenant = tenant
        self._tenants[tenant_id] = tenant
        if self._on_create is not None:
            try:
                self._on_create(tenant)
            except BaseException:
                self.delete(tenant_id)
                raise
        return tenant, token

    def adopt(self, tenant: Tenant) -> None:
        """Register a tenant re-opened from its saved record (start-up with `--state-file`)."""
        tenant.world.tenant = tenant
        self._tenants[tenant.id] = tenant

    def delete(self, tenant_id: str) -> bool:
        tenant = self._tenants.pop(tenant_id, None)
        if tenant is None:
            return False
        if self._on_remove is not None:
            self._on_remove(tenant)
        return True

    # -- use and expiry ---------------------------------------------------------------------------
    def enter(self, tenant: Tenant) -> None:
        tenant.in_flight += 1
        tenant.last_used = self._now()

    def leave(self, tenant: Tenant) -> None:
        tenant.in_flight -= 1
        tenant.last_used = self._now()

    def expire_idle(self) -> list[str]:
        """Delete every tenant idle for the TTL; one in use (a request in flight, outbound work
        running) is never expired. Returns the ids expired."""
        if self.ttl_seconds <= 0:
            return []
        limit = self._now() - self.ttl_seconds
        expired = [t.id for t in self._tenants.values() if t.last_used <= limit and not t.in_use]
        for tenant_id in expired:
            self.delete(tenant_id)
        return expired
