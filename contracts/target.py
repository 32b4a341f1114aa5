"""What each API is tested against: the in-process mock, a mock at a URL, or a vendor.

`Target` resolves, once per session, every selected API to an `ApiContext`: its base URL, a
rate-capped session, the headers that authenticate, the credentials, and the mock's admin client
when the target is a mock (the in-process one, or one found at the URL by probing
`/__admin/health`). A vendor has no admin API: mock-only steps skip there.

A mock at a URL whose health says `"tenants": true` is shared safely: the session (each
pytest-xdist worker its own) creates a tenant of its own there (`POST /__admin/tenants`, id
`lcs-<worker>-<random>`, seed 0 like the in-process mock), tests it at `/t/<id>/<slug>` with the
tenant's credentials and admin token, may reset it and move its clock, and deletes it at the end.
`LCS_ADMIN_TOKEN` (a mock started with `--admin-token`) is sent to the `--target` URL only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import requests

from contracts import credentials as creds_mod
from contracts import safety
from contracts.admin import AdminClient, probe, require_admin
from contracts.http import TIMEOUT, TargetSession
from contracts.options import Options

if TYPE_CHECKING:
    from mock_server.testing import MockServer


@dataclass
class ApiContext:
    slug: str
    base_url: str
    in_process: bool
    admin: AdminClient | None
    creds: dict[str, Any]
    session: TargetSession
    headers: creds_mod.AuthHeaders
    options: Options
    label: str  # how skip messages name the target
    cache: dict[str, Any] = field(default_factory=dict)  # per-test scratch (ids seen, minted codes)
    own_tenant: bool = False  # a tenant this session created on a shared mock (reset and clock are ours)

    @property
    def is_mock(self) -> bool:
        return self.admin is not None

    @property
    def may_move_clock(self) -> bool:
        """Moving a shared mock's clock would disturb other xdist workers using it (not so in a
        tenant of this session's own)."""
        return self.admin is not None and (
            self.in_process or self.own_tenant or "PYTEST_XDIST_WORKER" not in os.environ
        )

    @property
    def allow_irreversible(self) -> bool:
        return self.in_process or self.options.allow_irreversible

    def require_admin(self, what: str) -> AdminClient:
        return require_admin(self.admin, what, self.label)

    def require_clock(self, what: str) -> AdminClient:
        admin = self.require_admin(what)
        if not self.may_move_clock:
            pytest.skip(f"mock-only step skipped: {what} moves the clock of a mock shared by pytest-xdist workers")
        return admin

    def skip_irreversible(self, operation_id: str) -> None:
        if not self.allow_irreversible and safety.is_irreversible(self.slug, operation_id):
            pytest.skip(safety.reason(self.slug, operation_id))

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """An authenticated request to this API (`path` after the base URL)."""
        sent = {**self.headers(), **(headers or {})}
        return self.session.request(method, self.url(path), headers=sent, **kwargs)

    def fresh(self, *, frozen_at: str | None = None) -> None:
        """Start a test from the seeded state: only the in-process mock and a tenant of this
        session's own are reset (they are this worker's own); a shared mock or a vendor is never
        reset. With `frozen_at` its clock is also set to that instant and stopped, so every id and
        timestamp derived from the clock (LOKE's ULIDs, for one) comes out the same when
        hypothesis replays a run."""
        self.cache.clear()
        if (self.in_process or self.own_tenant) and self.admin is not None:
            self.admin.reset()
            if frozen_at is not None:
                self.admin.set_clock(frozen_at, frozen=True)

    def known_secrets(self) -> dict[str, str]:
        return creds_mod.known_secrets(self.creds)


class Target:
    """Session-wide resolution of every API (lazy: the in-process mock starts on first use)."""

    def __init__(self, options: Options, start_mock: Callable[[], MockServer]) -> None:
        self.options = options
        self._start_mock = start_mock
        self._contexts: dict[str, ApiContext] = {}
        self._mock_admin: AdminClient | None = None
        self._mock_creds: dict[str, Any] | None = None
        self._probes: dict[str, AdminClient | None] = {}
        self._tenants: dict[str, OwnTenant | None] = {}  # mock root -> this session's tenant there
        self._admin_session = requests.Session()
        admin_token = os.environ.get("LCS_ADMIN_TOKEN")
        if admin_token:
            self._admin_session.headers["X-Admin-Token"] = admin_token

    def describe(self, slug: str) -> str:
        if self.options.is_in_process(slug):
            return "the in-process mock"
        return self.base_url(slug)

    def base_url(self, slug: str) -> str:
        if slug in self.options.api_urls:
            return self.options.api_urls[slug]
        return f"{self.options.target}/{slug}"

    def _root(self, slug: str, base: str) -> str:
        return base[: -len(slug) - 1] if base.endswith(f"/{slug}") else base

    def _probe(self, root: str) -> AdminClient | None:
        if root not in self._probes:  # LCS_ADMIN_TOKEN goes to --target only, never to an --api-url host
            self._probes[root] = probe(root, self._admin_session if root == self.options.target else None)
        return self._probes[root]

    def _own_tenant(self, slug: str, base: str) -> OwnTenant | None:
        """This session's tenant on the mock at `base`, created on first use, when that mock
        serves tenants and `slug` is one of its APIs; else None (the mock is used as it is)."""
        root = self._root(slug, base)
        if root not in self._tenants:
            self._tenants[root] = None
            server = self._probe(root)
            try:
                health = server.health() if server is not None else {}
            except Exception:  # a mock that stopped answering: treat as not a mock
                health = {}
            if health.get("tenants") is True:
                server_session = self._admin_session if root == self.options.target else requests.Session()
                self._tenants[root] = OwnTenant.create(root, list(health.get("apis") or []), server_session)
        tenant = self._tenants[root]
        return tenant if tenant is not None and slug in tenant.apis else None

    def _admin_for_url(self, slug: str, base: str) -> AdminClient | None:
        admin = self._probe(self._root(slug, base))
        if admin is None:
            return None
        try:
            mounted = admin.health().get("apis") or []
        except Exception:  # a mock that stopped answering: treat as not a mock
            return None
        return admin if slug in mounted else None

    def api(self, slug: str) -> ApiContext:
        found = self._contexts.get(slug)
        if found is not None:
            return found
        options = self.options
        tenant: OwnTenant | None = None
        if options.is_in_process(slug):
            mock = self._start_mock()
            base = mock.api_url(slug)
            if self._mock_admin is None:
                self._mock_admin = AdminClient(f"{mock.base_url}/__admin")
                self._mock_creds = self._mock_admin.credentials()
            admin: AdminClient | None = self._mock_admin
            creds: dict[str, Any] = dict(self._mock_creds or {})
            in_process = True
        else:
            base = self.base_url(slug)
            tenant = self._own_tenant(slug, base)
            in_process = False
            if tenant is not None:
                base, admin, creds = f"{tenant.base_url}/{slug}", tenant.admin, dict(tenant.credentials)
            else:
                admin = self._admin_for_url(slug, base)
                creds = creds_mod.from_environment()
                if admin is not None:
                    creds = creds_mod.merge(creds, admin.credentials())
        if slug == "loke" and admin is not None:
            creds.setdefault("loke", {}).setdefault("token_url", f"{base}/auth/token")
        missing = creds_mod.missing_for(slug, creds)
        if missing:
            pytest.skip(f"{slug}: no credentials for {self.describe(slug)}; set {' or '.join(missing)}")
        session = TargetSession(options.rate_cap(slug, is_mock=admin is not None))
        context = ApiContext(
            slug=slug,
            base_url=base,
            in_process=in_process,
            admin=admin,
            creds=creds,
            session=session,
            headers=creds_mod.AuthHeaders(slug, creds, base, session),
            options=options,
            label=self.describe(slug) if tenant is None else f"tenant {tenant.id} of {tenant.root}",
            own_tenant=tenant is not None,
        )
        self._contexts[slug] = context
        return context

    def close(self) -> None:
        for context in self._contexts.values():
            context.session.close()
        for tenant in self._tenants.values():
            if tenant is not None:
                tenant.delete()
        self._admin_session.close()


@dataclass
class OwnTenant:
    """A tenant this session created on a shared mock (deleted at the session's end)."""

    root: str
    id: str
    base_url: str
    apis: list[str]
    credentials: dict[str, Any]
    admin: AdminClient
    server: requests.Session

    @classmethod
    def create(cls, root: str, apis: list[str], server: requests.Session) -> OwnTenant | None:
        """A new tenant on the mock at `root` (id `lcs-<xdist worker or main>-<random>`), or None
        when the mock refuses (e.g. full: `--max-tenants`); then the mock is used as it is."""
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main").lower()
        tenant_id = f"lcs-{''.join(c for c in worker if c.isalnum())[:12]}-{secrets.token_hex(4)}"
        try:
            answer = server.post(
                f"{root}/__admin/tenants", json={"id": tenant_id, "seed": 0, "apis": apis}, timeout=TIMEOUT
            )
        except requests.RequestException:
            return None
        if answer.status_code != 201:
            return None
        created = answer.json()
        base_url = f"{root}/t/{created['id']}"  # as this session reaches the mock (the answer's host may differ)
        session = requests.Session()
        session.headers["X-Admin-Token"] = str(created["admin_token"])
        admin = AdminClient(f"{base_url}/__admin", session)
        return cls(root, str(created["id"]), base_url, apis, created["credentials"], admin, server)

    def delete(self) -> None:
        self.admin.session.close()
        with contextlib.suppress(requests.RequestException):
            self.server.delete(f"{self.root}/__admin/tenants/{self.id}", timeout=TIMEOUT)
