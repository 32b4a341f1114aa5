"""Request headers that authenticate against each API, from the mock's credentials."""

from __future__ import annotations

import base64
import hashlib
from typing import Any


def capillary_basic(creds: dict[str, Any]) -> str:
    cap = creds["capillary"]
    digest = hashlib.md5(cap["till_password"].encode(), usedforsecurity=False).hexdigest()
    return "Basic " + base64.b64encode(f"{cap['till_username']}:{digest}".encode()).decode()


def auth_headers(slug: str, creds: dict[str, Any]) -> dict[str, str]:
    if slug == "letstrade-pos":
        return {"Authorization": f"Bearer {creds['letstrade']['token']}"}
    if slug == "letstrade-channels":
        return {
            "Authorization": f"Bearer {creds['letstrade']['token']}",
            "X-API-Key": creds["letstrade_channel"]["api_key"],
        }
    if slug == "customtrades":
        return {"Authorization": f"Bearer {creds['customtrades']['api_key']}"}
    if slug == "capillary":
        return {"Authorization": capillary_basic(creds)}
    if slug == "loke":
        return {"Authorization": f"Bearer {creds['loke']['access_token']}"}
    return {}
