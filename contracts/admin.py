"""A client of the mock's admin API (`/__admin`, described by `openapi/admin.yaml`).

Steps that need it (minting a code, moving the clock, making a LOKE event happen, loading
fixtures) only exist on a mock: against a real vendor they are skipped with a clear reason
(`require_admin`).
"""

from __future__ import annotations

from typing import Any, NoReturn

import pytest
import requests

from contracts.http import TIMEOUT


class AdminError(RuntimeError):
    pass


class AdminClient:
    def __init__(self, base_url: str, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")  # .../__admin
        self.session = session or requests.Session()

    def request(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 202, 204), **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}{path}", timeout=TIMEOUT, **kwargs)
        if response.status_code not in expect:
            raise AdminError(f"{method} /__admin{path} answered {response.status_code}: {response.text[:500]}")
        if not response.content:
            return None
        content_type = response.headers.get("Content-Type", "")
        return response.json() if "json" in content_type else response.text

    # whole mock
    def health(self) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", "/health")
        return found

    def reset(self) -> None:
        self.request("POST", "/reset")

    def credentials(self) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", "/credentials")
        return found

    def clock(self) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", "/clock")
        return found

    def advance(self, seconds: float) -> dict[str, Any]:
        found: dict[str, Any] = self.request("POST", "/clock", json={"advance": seconds})
        return found

    def set_clock(self, iso: str, *, frozen: bool | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"set": iso}
        if frozen is not None:
            body["frozen"] = frozen
        found: dict[str, Any] = self.request("POST", "/clock", json=body)
        return found

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.request("GET", "/requests", params=filters)
        return found

    def add_fault(self, **fault: Any) -> str:
        return str(self.request("POST", "/faults", json=fault)["id"])

    def clear_faults(self) -> None:
        self.request("DELETE", "/faults")

    def load_fixtures(self, document: dict[str, Any]) -> dict[str, int]:
        found: dict[str, int] = self.request("POST", "/fixtures", json=document)["loaded"]
        return found

    # per API
    def mint_code(self, **body: Any) -> dict[str, Any]:
        found: dict[str, Any] = self.request("POST", "/letstrade-pos/codes", json=body)
        return found

    def emit_loke_event(self, **body: Any) -> Any:
        return self.request("POST", "/loke/events", json=body)

    def loke_deliveries(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.request("GET", "/loke/deliveries")
        return found


def probe(root_url: str, session: requests.Session | None = None) -> AdminClient | None:
    """The admin client of the mock at `root_url`, or None when it is not a mock."""
    client = AdminClient(f"{root_url.rstrip('/')}/__admin", session)
    try:
        found = client.health()
    except (requests.RequestException, AdminError, ValueError):
        return None
    return client if isinstance(found, dict) and found.get("status") == "ok" else None


def skip_mock_only(what: str, target: str) -> NoReturn:
    pytest.skip(f"mock-only step skipped: {what} needs the mock's /__admin API, and {target} is not a mock")


def require_admin(admin: AdminClient | None, what: str, target: str) -> AdminClient:
    if admin is None:
        skip_mock_only(what, target)
    return admin
