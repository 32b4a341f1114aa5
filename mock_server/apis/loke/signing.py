"""Webhook signatures: `X-Event-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, keyed with
the subscription's secret (public docs). Also the one canonical encoding of an event body, so the
bytes signed are exactly the bytes sent. Pure: standard library only."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

PREFIX = "sha256="


def encode_body(payload: Any) -> bytes:
    """The raw body of a delivery: compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute over the exact bytes received, compare in constant time."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode("ascii"), header.strip().encode("utf-8", "replace"))
