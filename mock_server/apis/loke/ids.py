"""ULIDs (LOKE's customer ids, e.g. `01FCCGYZA9JPQ97HBSTKW0KT7P`): 48 bits of milliseconds then 80
random bits, written as 26 Crockford base-32 characters, so string order is creation order.

The generator is monotonic: every id it returns is greater than every id it returned or was shown
before, even when the virtual clock is set backwards. The customer export relies on this (a
customer created during an export sorts after every customer that existed when it started).
Pure: no I/O, time and randomness come from the caller.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_PATTERN = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
_MAX = (1 << 128) - 1
_VALUES = {char: index for index, char in enumerate(ALPHABET)}


def encode(value: int) -> str:
    if not 0 <= value <= _MAX:
        raise ValueError("a ULID is a 128-bit unsigned number")
    chars = []
    for _ in range(26):
        chars.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def decode(text: str) -> int:
    if not ULID_PATTERN.match(text):
        raise ValueError(f"{text!r} is not a ULID (26 Crockford base-32 characters, first one 0-7)")
    value = 0
    for char in text:
        value = (value << 5) | _VALUES[char]
    return value


def is_ulid(text: str) -> bool:
    return bool(ULID_PATTERN.match(text))


def timestamp_of(text: str) -> datetime:
    """The moment encoded in a ULID's first 48 bits."""
    return datetime.fromtimestamp((decode(text) >> 80) / 1000, tz=UTC)


class UlidGenerator:
    """Monotonic ULIDs from a seeded random source."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._last = 0

    def new(self, moment: datetime) -> str:
        millis = max(0, min(int(moment.timestamp() * 1000), (1 << 48) - 1))
        candidate = (millis << 80) | self._rng.getrandbits(80)
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return encode(candidate)

    def observe(self, existing: str) -> None:
        """An id created elsewhere (a fixture): later ids sort after it."""
        self._last = max(self._last, decode(existing))


def seeded_uuid(rng: random.Random) -> str:
    """A version-4 UUID from a seeded source (payment ids)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
