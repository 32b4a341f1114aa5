"""Credentials for each API, from environment variables (real targets) or from the mock's
`/__admin/credentials`, and the request headers they turn into.

Environment variables (all optional; an API whose required ones are missing on a real target is
skipped with the names of the missing variables):

| variable | used for |
|---|---|
| `LCS_LETSTRADE_TOKEN` | Let'sTrade bearer token (`letstrade-pos`, channel management) |
| `LCS_LETSTRADE_CHANNEL_KEY`, `LCS_LETSTRADE_WEBHOOK_UUID` | one customer channel's `X-API-Key` and `webhook_uuid` |
| `LCS_LETSTRADE_OTHER_CHANNEL_KEY` | the key of another channel of the same account (key-scoping check) |
| `LCS_CUSTOMTRADES_API_KEY` | Custom Trades key (`ctc_live_...`) |
| `LCS_CUSTOMTRADES_SECOND_API_KEY` | a key of another company (isolation checks) |
| `LCS_CAPILLARY_TILL_USERNAME`, `LCS_CAPILLARY_TILL_PASSWORD` | Capillary Basic auth (plain password; MD5 sent) |
| `LCS_CAPILLARY_OAUTH_KEY`, `LCS_CAPILLARY_OAUTH_SECRET` | Capillary OAuth instead of Basic |
| `LCS_LOKE_ACCESS_TOKEN` | a LOKE bearer token, or: |
| `LCS_LOKE_CLIENT_ID`, `LCS_LOKE_CLIENT_SECRET` | client credentials (at `LCS_LOKE_TOKEN_URL`, default below) |
| `LCS_LOKE_ORGANIZATION_ID` | the organization to test |
| `LCS_LOKE_NOT_INSTALLED_ORGANIZATION_ID` | an organization that did not install the add-on (403 / unlisted check) |

The LOKE token URL defaults to https://auth.loke.global/token (on a mock: its `/auth/token`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import requests

ENV: dict[str, dict[str, str]] = {
    "letstrade": {"token": "LCS_LETSTRADE_TOKEN"},
    "letstrade_channel": {
        "api_key": "LCS_LETSTRADE_CHANNEL_KEY",
        "webhook_uuid": "LCS_LETSTRADE_WEBHOOK_UUID",
        "other_api_key": "LCS_LETSTRADE_OTHER_CHANNEL_KEY",
    },
    "customtrades": {"api_key": "LCS_CUSTOMTRADES_API_KEY"},
    "customtrades_second_company": {"api_key": "LCS_CUSTOMTRADES_SECOND_API_KEY"},
    "capillary": {
        "till_username": "LCS_CAPILLARY_TILL_USERNAME",
        "till_password": "LCS_CAPILLARY_TILL_PASSWORD",
        "oauth_key": "LCS_CAPILLARY_OAUTH_KEY",
        "oauth_secret": "LCS_CAPILLARY_OAUTH_SECRET",
    },
    "loke": {
        "access_token": "LCS_LOKE_ACCESS_TOKEN",
        "client_id": "LCS_LOKE_CLIENT_ID",
        "client_secret": "LCS_LOKE_CLIENT_SECRET",
        "token_url": "LCS_LOKE_TOKEN_URL",
        "organization_id": "LCS_LOKE_ORGANIZATION_ID",
        "not_installed_organization_id": "LCS_LOKE_NOT_INSTALLED_ORGANIZATION_ID",
    },
}

# Per API: alternatives, each a list of (section, key) that together authenticate.
REQUIRED: dict[str, list[list[tuple[str, str]]]] = {
    "letstrade-pos": [[("letstrade", "token")]],
    "letstrade-channels": [[("letstrade", "token")]],
    "customtrades": [[("customtrades", "api_key")]],
    "capillary": [
        [("capillary", "till_username"), ("capillary", "till_password")],
        [("capillary", "oauth_key"), ("capillary", "oauth_secret")],
    ],
    "loke": [[("loke", "access_token")], [("loke", "client_id"), ("loke", "client_secret")]],
}

LOKE_TOKEN_URL = "https://auth.loke.global/token"


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    env = os.environ if environ is None else environ
    found: dict[str, dict[str, str]] = {}
    for section, keys in ENV.items():
        values = {key: env[name] for key, name in keys.items() if env.get(name)}
        if values:
            found[section] = values
    return found


def merge(primary: Mapping[str, Any], fallback: Mapping[str, Any]) -> dict[str, Any]:
    """`primary` completed key by key from `fallback`."""
    merged: dict[str, Any] = copy.deepcopy(dict(fallback))
    for section, values in primary.items():
        if isinstance(values, Mapping):
            merged.setdefault(section, {}).update(values)
        else:
            merged[section] = values
    return merged


def missing_for(slug: str, creds: Mapping[str, Any]) -> list[str]:
    """Names of the environment variables still needed for `slug` (empty when it can run)."""
    options = REQUIRED[slug]
    for option in options:
        if all((creds.get(section) or {}).get(key) for section, key in option):
            return []
    return [" + ".join(ENV[section][key] for section, key in option) for option in options]


def md5_hex(value: str) -> str:
    return hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()


def capillary_basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{md5_hex(password)}".encode()).decode()


def known_secrets(creds: Mapping[str, Any]) -> dict[str, str]:
    """Values that no response may ever contain, by what they are (passwords, keys, client
    secrets). Tokens are not here: token endpoints return them by design."""
    found: dict[str, str] = {}

    def add(label: str, value: Any) -> None:
        if isinstance(value, str) and len(value) >= 8:
            found[value] = label

    lt = creds.get("letstrade") or {}
    add("Let'sTrade password", lt.get("password"))
    channel = creds.get("letstrade_channel") or {}
    add("channel API key", channel.get("api_key"))
    add("channel API key", channel.get("other_api_key"))
    for section in ("customtrades", "customtrades_second_company"):
        add("Custom Trades API key", (creds.get(section) or {}).get("api_key"))
    cap = creds.get("capillary") or {}
    add("Capillary till password", cap.get("till_password"))
    if cap.get("till_password"):
        add("MD5 of the Capillary till password", md5_hex(str(cap["till_password"])))
    add("Capillary OAuth secret", cap.get("oauth_secret"))
    add("LOKE client secret", (creds.get("loke") or {}).get("client_secret"))
    return found


class AuthHeaders:
    """The headers that authenticate against one API; fetches (and refreshes) tokens where the
    API issues short-lived ones (Capillary OAuth: 300 s; LOKE client credentials)."""

    def __init__(self, slug: str, creds: Mapping[str, Any], base_url: str, session: requests.Session) -> None:
        self.slug = slug
        self.creds = creds
        self.base_url = base_url
        self.session = session
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, str]:
        creds = self.creds
        if self.slug == "letstrade-pos":
            return {"Authorization": f"Bearer {creds['letstrade']['token']}"}
        if self.slug == "letstrade-channels":
            headers = {"Authorization": f"Bearer {creds['letstrade']['token']}"}
            key = (creds.get("letstrade_channel") or {}).get("api_key")
            if key:
                headers["X-API-Key"] = str(key)
            return headers
        if self.slug == "customtrades":
            return {"Authorization": f"Bearer {creds['customtrades']['api_key']}"}
        if self.slug == "capillary":
            cap = creds["capillary"]
            if cap.get("till_username") and cap.get("till_password"):
                return {"Authorization": capillary_basic(str(cap["till_username"]), str(cap["till_password"]))}
            return {"CAP-API-ACCESS-TOKEN": self._cached(self._capillary_token)}
        if self.slug == "loke":
            loke = creds["loke"]
            if loke.get("access_token"):
                return {"Authorization": f"Bearer {loke['access_token']}"}
            return {"Authorization": f"Bearer {self._cached(self._loke_token)}"}
        raise KeyError(self.slug)

    def _cached(self, fetch: Any) -> str:
        with self._lock:
            if self._token is None or time.monotonic() > self._expires:
                token, ttl = fetch()
                self._token, self._expires = token, time.monotonic() + max(5.0, ttl - 30.0)
            return self._token

    def _capillary_token(self) -> tuple[str, float]:
        cap = self.creds["capillary"]
        response = self.session.post(
            f"{self.base_url}/v3/oauth/token/generate", json={"key": cap["oauth_key"], "secret": cap["oauth_secret"]}
        )
        response.raise_for_status()
        data = response.json()["data"]
        return str(data["accessToken"]), float(data.get("ttlSeconds", 300))

    def _loke_token(self) -> tuple[str, float]:
        loke = self.creds["loke"]
        url = loke.get("token_url") or LOKE_TOKEN_URL
        response = self.session.post(
            str(url),
            data={
                "grant_type": "client_credentials",
                "client_id": loke["client_id"],
                "client_secret": loke["client_secret"],
            },
        )
        response.raise_for_status()
        body = response.json()
        return str(body["access_token"]), float(body.get("expires_in", 3600))
