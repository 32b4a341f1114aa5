"""The one Let'sTrade customer store, shared by `letstrade-pos` (find-or-create by cell number on
get/offerings) and `letstrade-channels` (webhook upserts). Pure: no HTTP, time from the caller.

Indexes: id, e-mail (case-insensitive), cell number (digits with the country code, no `+`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# ITU calling codes of 1 and 2 digits; every other code has 3 (E.164). Enough to split a number.
_ONE_DIGIT = {"1", "7"}
_TWO_DIGIT = {
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48",
    "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81",
    "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
}
_DIGITS = re.compile(r"[^0-9]")


def split_cell(number: str, country_code: str | None = None) -> tuple[str, str | None]:
    """`+27721234565` -> (`27721234565`, `+27`), as Let'sTrade stores numbers (seed 000).
    A number without `+` keeps the given country code (prefixed onto the digits if missing)."""
    digits = _DIGITS.sub("", number)
    if country_code:
        code_digits = _DIGITS.sub("", country_code)
        if not digits.startswith(code_digits):
            digits = code_digits + digits.lstrip("0")
        return digits, f"+{code_digits}"
    if not number.strip().startswith("+"):
        return digits, None
    for size, codes in ((1, _ONE_DIGIT), (2, _TWO_DIGIT)):
        if digits[:size] in codes:
            return digits, f"+{digits[:size]}"
    return digits, f"+{digits[:3]}"


@dataclass
class Customer:
    id: str
    client_id: str
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    cell_number: str | None = None
    cell_country_code: str | None = None
    name: str = ""
    surname: str = ""
    channels: list[dict[str, Any]] = field(default_factory=list)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    imported: bool = False
    version: int = 0


class CustomerStore:
    def __init__(self, new_id: Callable[[], str], client_id: str) -> None:
        self._new_id = new_id
        self.client_id = client_id
        self._by_id: dict[str, Customer] = {}
        self._by_email: dict[str, str] = {}
        self._by_cell: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Customer]:
        return iter(list(self._by_id.values()))

    def get(self, customer_id: str) -> Customer | None:
        return self._by_id.get(customer_id)

    def find_by_email(self, email: str) -> Customer | None:
        found = self._by_email.get(email.strip().lower())
        return self._by_id.get(found) if found else None

    def find_by_cell(self, cell_number: str, country_code: str | None = None) -> Customer | None:
        digits, _ = split_cell(cell_number, country_code)
        found = self._by_cell.get(digits)
        return self._by_id.get(found) if found else None

    def create(self, now: datetime, **fields: Any) -> Customer:
        """A new customer; e-mail and cell number must not belong to another customer."""
        customer = Customer(id=self._new_id(), client_id=self.client_id, created_at=now, updated_at=now)
        self.update(customer, now, **fields)
        self._by_id[customer.id] = customer
        return customer

    def create_with_id(self, customer_id: str, now: datetime, **fields: Any) -> Customer:
        """A new customer with a given id (fixtures); the id, e-mail and cell number must be free
        (ValueError otherwise, changing nothing)."""
        if customer_id in self._by_id:
            raise ValueError(f"customer {customer_id} already exists")
        customer = Customer(id=customer_id, client_id=self.client_id, created_at=now, updated_at=now)
        self.update(customer, now, **fields)
        self._by_id[customer.id] = customer
        return customer

    def update(self, customer: Customer, now: datetime, **fields: Any) -> Customer:
        """Change fields and keep the indexes right (an e-mail or number taken by another
        customer raises ValueError and changes nothing)."""
        email = fields.get("email", customer.email)
        cell = fields.get("cell_number", customer.cell_number)
        code = fields.get("cell_country_code", customer.cell_country_code)
        cell_digits, cell_code = split_cell(cell, code) if cell else (None, code)
        if email is not None:
            owner = self._by_email.get(email.strip().lower())
            if owner is not None and owner != customer.id:
                raise ValueError(f"email {email} belongs to another customer")
        if cell_digits is not None:
            owner = self._by_cell.get(cell_digits)
            if owner is not None and owner != customer.id:
                raise ValueError(f"cell_number {cell_digits} belongs to another customer")
        if customer.email and customer.email.lower() != (email or "").lower():
            self._by_email.pop(customer.email.lower(), None)
        if customer.cell_number and customer.cell_number != cell_digits:
            self._by_cell.pop(customer.cell_number, None)
        for key, value in fields.items():
            if key not in ("email", "cell_number", "cell_country_code") and hasattr(customer, key):
                setattr(customer, key, value)
        customer.email, customer.cell_number, customer.cell_country_code = email, cell_digits, cell_code
        if email:
            self._by_email[email.strip().lower()] = customer.id
        if cell_digits:
            self._by_cell[cell_digits] = customer.id
        customer.updated_at = now
        return customer
