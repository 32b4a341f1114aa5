"""Capillary v2 customers (`capillary`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mock_server import secrets
from mock_server.apis.base import ApiDefinition, ApiRequest, ApiResponse, Credential, Handler, Services, seeded_rng
from mock_server.errors import Unauthorized

TOKEN_TTL_SECONDS = 3600  # "token life at most 60 minutes" (public docs); the mock gives the maximum


@dataclass
class CapillaryStore:
    till_username: str
    till_password: str
    oauth_key: str
    oauth_secret: str
    rng_seed: str
    tokens: dict[str, datetime] = field(default_factory=dict)  # sha256(token) -> expiry
    issued: int = 0

    def issue_token(self, now: datetime) -> str:
        self.issued += 1
        token = "cap." + secrets.sha256_hex(f"{self.rng_seed}:{self.issued}")
        self.tokens[secrets.sha256_hex(token)] = now + timedelta(seconds=TOKEN_TTL_SECONDS)
        return token


def _generate_token(services: Services, store: CapillaryStore, request: ApiRequest) -> ApiResponse:
    body = request.body or {}
    key_ok = secrets.same(str(body.get("key", "")), store.oauth_key)
    secret_ok = secrets.same(str(body.get("secret", "")), store.oauth_secret)
    if not (key_ok and secret_ok):
        raise Unauthorized("Invalid key or secret", code=401)
    token = store.issue_token(services.clock.now())
    return ApiResponse(200, {"data": {"accessToken": token, "ttlSeconds": TOKEN_TTL_SECONDS}, "errors": None})


class CapillaryApi(ApiDefinition[CapillaryStore]):
    slug = "capillary"
    spec_name = "capillary"
    envelope = "capillary"
    handlers: dict[str, Handler] = {"generateOauthToken": _generate_token}

    def create_store(self, services: Services) -> CapillaryStore:
        rng = seeded_rng(services.settings.seed, self.slug)
        return CapillaryStore(
            till_username="mock.till",
            till_password="Till-" + secrets.token_urlsafe(rng, 9),
            oauth_key="key_" + secrets.token_hex(rng, 8),
            oauth_secret="sec_" + secrets.token_hex(rng, 16),
            rng_seed=secrets.token_hex(rng, 8),
        )

    def authenticate(self, services: Services, store: CapillaryStore, credential: Credential) -> Any | None:
        if credential.kind == "basic":
            user_ok = secrets.same(credential.value, store.till_username)
            password_ok = secrets.same((credential.password or "").lower(), secrets.md5_hex(store.till_password))
            return store.till_username if user_ok and password_ok else None
        if credential.scheme == "oauthToken":
            expiry = store.tokens.get(secrets.sha256_hex(credential.value))
            if expiry is not None and services.clock.now() < expiry:
                return f"oauth:{store.oauth_key}"
        return None

    def credentials(self, store: CapillaryStore) -> dict[str, Any]:
        return {
            "capillary": {
                "till_username": store.till_username,
                "till_password": store.till_password,
                "oauth_key": store.oauth_key,
                "oauth_secret": store.oauth_secret,
            }
        }
