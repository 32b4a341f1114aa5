"""LOKE (`loke`)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mock_server import secrets
from mock_server.apis.base import ApiDefinition, ApiRequest, ApiResponse, Credential, Handler, Services, seeded_rng
from mock_server.errors import Unauthorized, ValidationFailed

TOKEN_TTL_SECONDS = 3600
SEEDED_TOKEN_TTL = timedelta(days=365)


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    installed: bool


@dataclass
class LokeStore:
    client_id: str
    client_secret: str
    organizations: dict[str, Organization]
    token_seed: str
    tokens: dict[str, datetime] = field(default_factory=dict)  # sha256(token) -> expiry
    seeded_token: str = ""
    issued: int = 0

    def issue_token(self, expires: datetime) -> str:
        self.issued += 1
        token = "loke_" + secrets.sha256_hex(f"{self.token_seed}:{self.issued}")
        self.tokens[secrets.sha256_hex(token)] = expires
        return token

    @property
    def installed(self) -> list[Organization]:
        return [o for o in self.organizations.values() if o.installed]


def _basic_client(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _get_token(services: Services, store: LokeStore, request: ApiRequest) -> ApiResponse:
    body = request.body or {}
    client_id, client_secret = body.get("client_id"), body.get("client_secret")
    basic = _basic_client(request.headers.get("Authorization", ""))
    if basic is not None:
        client_id, client_secret = basic
    if body.get("grant_type") != "client_credentials":
        raise ValidationFailed("Only the client_credentials grant is supported", kind="unsupported_grant_type")
    if not (secrets.same(str(client_id or ""), store.client_id) and secrets.same(str(client_secret or ""), store.client_secret)):
        raise Unauthorized("Unknown client or wrong secret", kind="invalid_client")
    token = store.issue_token(services.clock.now() + timedelta(seconds=TOKEN_TTL_SECONDS))
    return ApiResponse(200, {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECONDS})


class LokeApi(ApiDefinition[LokeStore]):
    slug = "loke"
    spec_name = "loke"
    envelope = "loke"
    handlers: dict[str, Handler] = {"getToken": _get_token}

    def create_store(self, services: Services) -> LokeStore:
        rng = seeded_rng(services.settings.seed, self.slug)

        def org_id() -> str:
            return "org_" + secrets.token_hex(rng, 8)

        orgs = [
            Organization(org_id(), "Bean Counter Cafe", True),
            Organization(org_id(), "Second Cup Roasters", True),
            Organization(org_id(), "Not Installed Diner", False),
        ]
        store = LokeStore(
            client_id="client_" + secrets.token_hex(rng, 8),
            client_secret="secret_" + secrets.token_urlsafe(rng, 24),
            organizations={o.id: o for o in orgs},
            token_seed=secrets.token_hex(rng, 8),
        )
        store.seeded_token = store.issue_token(services.clock.now() + SEEDED_TOKEN_TTL)
        return store

    def authenticate(self, services: Services, store: LokeStore, credential: Credential) -> Any | None:
        if credential.kind != "bearer":
            return None
        expiry = store.tokens.get(secrets.sha256_hex(credential.value))
        if expiry is None or services.clock.now() >= expiry:
            return None
        return store.client_id

    def credentials(self, store: LokeStore) -> dict[str, Any]:
        installed = store.installed
        not_installed = [o for o in store.organizations.values() if not o.installed]
        return {
            "loke": {
                "client_id": store.client_id,
                "client_secret": store.client_secret,
                "organization_id": installed[0].id,
                "access_token": store.seeded_token,
                "second_organization_id": installed[1].id,
                "not_installed_organization_id": not_installed[0].id,
            }
        }
