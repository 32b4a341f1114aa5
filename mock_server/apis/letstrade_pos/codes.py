"""Let'sTrade codes (seed 004): `P` payment, `R` redemption, `E` earning; valid for 10 minutes from
the moment they are generated, by the virtual clock; tied to one user and to at most one finalised
basket. Pure: times come from the caller."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

CODE_TYPES = ("P", "R", "E")
TYPE_NAMES = {"P": "payment", "R": "redemption", "E": "earning"}
VALIDITY = timedelta(minutes=10)  # seed 004: "a 10-minute expiry from the moment they are generated"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read out at the till
CODE_LENGTH = 8  # after the type letter (the format is assumed: `^[PRE][A-Z0-9]{4,32}$` in the spec)

ACTIVE = "ACTIVE"
FINALISED = "FINALISED"
REFUNDED = "REFUNDED"
EXPIRED = "EXPIRED"  # never stored: an ACTIVE code past its expiry reads as EXPIRED


@dataclass
class Code:
    code: str
    type: str
    user_id: str
    minted_at: datetime
    expires_at: datetime
    voucher_ids: tuple[str, ...] = ()  # R: the vouchers it redeems (empty: every voucher the user holds)
    points_rate: Decimal = Decimal(1)  # E: points per currency unit paid
    state: str = ACTIVE
    order_id: str | None = None
    finalised_at: datetime | None = None
    refunded_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        """Valid for exactly 10 minutes: from `minted_at` up to, not including, `expires_at`."""
        return now >= self.expires_at

    def status(self, now: datetime) -> str:
        if self.state == ACTIVE and self.expired(now):
            return EXPIRED
        return self.state


def new_code(rng: random.Random, code_type: str, taken: set[str] | dict[str, Code]) -> str:
    """A fresh code of the given type that is not in `taken`."""
    if code_type not in CODE_TYPES:
        raise ValueError(f"code type must be one of {', '.join(CODE_TYPES)}")
    while True:
        candidate = code_type + "".join(rng.choice(_ALPHABET) for _ in range(CODE_LENGTH))
        if candidate not in taken:
            return candidate


def mint(
    rng: random.Random,
    taken: dict[str, Code],
    code_type: str,
    user_id: str,
    now: datetime,
    *,
    voucher_ids: tuple[str, ...] = (),
    points_rate: Decimal = Decimal(1),
) -> Code:
    return Code(
        code=new_code(rng, code_type, taken),
        type=code_type,
        user_id=user_id,
        minted_at=now,
        expires_at=now + VALIDITY,
        voucher_ids=voucher_ids,
        points_rate=points_rate,
    )
