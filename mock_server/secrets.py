"""Secrets: generated from a seeded source, compared in constant time, stored as hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random


def token_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def token_hex(rng: random.Random, n: int) -> str:
    return token_bytes(rng, n).hex()


def token_urlsafe(rng: random.Random, n: int) -> str:
    return base64.urlsafe_b64encode(token_bytes(rng, n)).rstrip(b"=").decode("ascii")


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets (None never matches)."""
    if a is None or b is None:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def sha256(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def md5_hex(secret: str) -> str:
    return hashlib.md5(secret.encode("utf-8"), usedforsecurity=False).hexdigest()
