"""What each API is tested against: the in-process mock, a mock at a URL, or a vendor.

`Target` resolves, once per session, every selected API to an `ApiContext`: its base URL, a
rate-capped session, the headers that authenticate, the credentials, and the mock's admin client
when the target is a mock (the in-process one, or one found at the URL by probing
`/__admin/health`). A vendor has no admin API: mock-only steps skip there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from contracts import credentials as creds_mod
from contracts import safety
from contracts.admin import AdminClient, probe, require_admin
from contracts.http import TargetSession
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

    @property
    def is_mock(self) -> bool:
        return self.admin is not None

    @property
    def may_move_clock(self) -> bool:
        """Moving a shared mock's clock would disturb other xdist workers using it."""
        return self.admin is not None and (self.in_process or "PYTEST_XDIST_WORKER" not in os.environ)

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
        """Start a test from the seeded state: only the in-process mock is reset (it is this
        worker's own); a shared mock or a vendor is never reset. With `frozen_at` its clock is
        also set to that instant and stopped, so every id and timestamp derived from the clock
        (LOKE's ULIDs, for one) comes out the same when hypothesis replays a run."""
        self.cache.clear()
        if self.in_process and self.admin is not None:
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

    def describe(self, slug: str) -> str:
        if self.options.is_in_process(slug):
            return "the in-process mock"
        return self.base_url(slug)

    def base_url(self, slug: str) -> str:
        if slug in self.options.api_urls:
            return self.options.api_urls[slug]
        return f"{self.options.target}/{slug}"

    def _admin_for_url(self, slug: str, base: str) -> AdminClient | None:
        root = base[: -len(slug) - 1] if base.endswith(f"/{slug}") else base
        if root not in self._probes:
            self._probes[root] = probe(root)
        admin = self._probes[root]
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
            admin = self._admin_for_url(slug, base)
            creds = creds_mod.from_environment()
            if admin is not None:
                creds = creds_mod.merge(creds, admin.credentials())
            in_process = False
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
            label=self.describe(slug),
        )
        self._contexts[slug] = context
        return context

    def close(self) -> None:
        for context in self._contexts.values():
            context.session.close()
