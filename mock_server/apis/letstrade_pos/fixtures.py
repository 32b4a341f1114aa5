"""The `letstrade` fixtures section (shared Let'sTrade customers, and the POS accounts, vouchers,
deals and subscriptions): every problem found first, with record and field named; then loaded.

```yaml
letstrade:
  customers:     [{_id?, name?, surname?, email?, cell_number?, cell_country_code?}]
  wallets:       [{user_id, wallet_balance?, loan_limit?, card_limit?, points?}]
  vouchers:      [{user_id, id, title?, apply_to, sku?, discount_type, value, quantity?}]
  deals:         [{id, title?, apply_to, sku?, discount_type, value, min_quantity?, min_spend?}]
  subscriptions: [{id, user_id, title?, pids, discount_type, value, units?, remaining?}]
```
`user_id` names a customer that exists or is in `customers` of the same section (by `_id`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from mock_server.apis.letstrade.customers import split_cell
from mock_server.apis.letstrade_pos.pricing import BASKET, PRODUCT, DealRule, money
from mock_server.apis.letstrade_pos.store import Deal, PosStore, Subscription, check_voucher, voucher_from
from mock_server.errors import FieldError
from mock_server.schema import CompiledSchema

_AMOUNT = {"type": "string", "pattern": r"^[0-9]{1,15}(\.[0-9]{1,6})?$"}
_KINDS = {"apply_to": {"enum": [BASKET, PRODUCT]}, "discount_type": {"enum": ["FIXED", "PERCENT"]}}
_TEXT = {"type": "string", "minLength": 1}


def _records(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "object", "required": required, "additionalProperties": False, "properties": properties},
    }


SCHEMA = CompiledSchema(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "customers": _records(
                [],
                {
                    "_id": _TEXT,
                    "name": {"type": "string"},
                    "surname": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                    "cell_number": {"type": "string", "pattern": "[0-9]"},
                    "cell_country_code": {"type": "string"},
                },
            ),
            "wallets": _records(
                ["user_id"],
                {
                    "user_id": _TEXT,
                    "wallet_balance": _AMOUNT,
                    "loan_limit": _AMOUNT,
                    "card_limit": _AMOUNT,
                    "points": {"type": "integer", "minimum": 0},
                },
            ),
            "vouchers": _records(
                ["user_id", "id", "apply_to", "discount_type", "value"],
                {"user_id": _TEXT, "id": _TEXT, "title": {"type": "string"}, "sku": _TEXT, "value": _AMOUNT,
                 "quantity": _AMOUNT, **_KINDS},
            ),
            "deals": _records(
                ["id", "apply_to", "discount_type", "value"],
                {"id": _TEXT, "title": {"type": "string"}, "sku": _TEXT, "value": _AMOUNT,
                 "min_quantity": _AMOUNT, "min_spend": _AMOUNT, **_KINDS},
            ),
            "subscriptions": _records(
                ["id", "user_id", "pids", "discount_type", "value"],
                {
                    "id": _TEXT,
                    "user_id": _TEXT,
                    "title": {"type": "string"},
                    "pids": {"type": "array", "minItems": 1, "items": _TEXT},
                    "discount_type": _KINDS["discount_type"],
                    "value": _AMOUNT,
                    "units": {"type": "integer", "minimum": 1},
                    "remaining": {"type": ["integer", "null"], "minimum": 0},
                },
            ),
        },
    }
)


def check(store: PosStore, section: Any) -> list[FieldError]:
    if not isinstance(section, Mapping):
        return [FieldError("letstrade", "expected a mapping of customers, wallets, vouchers, deals, subscriptions")]
    problems = SCHEMA.errors(section, root="letstrade")
    if problems:
        return problems
    new_ids: set[str] = set()
    emails: dict[str, str] = {}
    cells: dict[str, str] = {}
    for index, customer in enumerate(section.get("customers") or []):
        path = f"letstrade.customers[{index}]"
        customer_id = customer.get("_id")
        if customer_id is not None:
            if customer_id in new_ids or store.customer(customer_id) is not None:
                problems.append(FieldError(f"{path}._id", f"customer {customer_id} already exists"))
            new_ids.add(customer_id)
        email = customer.get("email")
        if email is not None:
            owner = store.customers.find_by_email(email)
            if owner is not None or email.lower() in emails:
                problems.append(FieldError(f"{path}.email", f"{email} already belongs to another customer"))
            emails[email.lower()] = path
        cell = customer.get("cell_number")
        if cell is not None:
            digits, _ = split_cell(cell, customer.get("cell_country_code"))
            if store.customers.find_by_cell(cell, customer.get("cell_country_code")) is not None or digits in cells:
                problems.append(FieldError(f"{path}.cell_number", f"{digits} already belongs to another customer"))
            cells[digits] = path

    def known(user_id: str) -> bool:
        return user_id in new_ids or store.customer(user_id) is not None

    for name in ("wallets", "vouchers", "subscriptions"):
        for index, record in enumerate(section.get(name) or []):
            if not known(record["user_id"]):
                where = f"letstrade.{name}[{index}].user_id"
                problems.append(FieldError(where, f"no customer {record['user_id']} (add it to customers)"))
    seen_vouchers: set[tuple[str, str]] = set()
    for index, record in enumerate(section.get("vouchers") or []):
        path = f"letstrade.vouchers[{index}]"
        problems.extend(FieldError(f, m) for f, m in check_voucher(record, path))
        key = (record["user_id"], record["id"])
        if key in seen_vouchers:
            message = f"duplicate voucher {record['id']} for customer {record['user_id']}"
            problems.append(FieldError(f"{path}.id", message))
        seen_vouchers.add(key)
    for name in ("deals", "subscriptions"):
        ids: set[str] = set()
        for index, record in enumerate(section.get(name) or []):
            path = f"letstrade.{name}[{index}]"
            if name == "deals":
                problems.extend(FieldError(f, m) for f, m in check_voucher(record, path))
            elif record["discount_type"] == "PERCENT" and Decimal(record["value"]) > 100:
                problems.append(FieldError(f"{path}.value", "a PERCENT value is a percentage: at most 100"))
            if record["id"] in ids:
                problems.append(FieldError(f"{path}.id", f"duplicate id {record['id']}"))
            ids.add(record["id"])
    return problems


def load(store: PosStore, now: datetime, section: Mapping[str, Any]) -> int:
    count = 0
    for customer in section.get("customers") or []:
        fields = {k: v for k, v in customer.items() if k != "_id"}
        if customer.get("_id") is not None:
            store.customers.create_with_id(customer["_id"], now, **fields)
        else:
            store.customers.create(now, **fields)
        count += 1
    for wallet in section.get("wallets") or []:
        account = store.account(wallet["user_id"])
        for key in ("wallet_balance", "loan_limit", "card_limit"):
            if wallet.get(key) is not None:
                setattr(account, key, money(Decimal(wallet[key])))
        if wallet.get("points") is not None:
            account.points = int(wallet["points"])
        count += 1
    for record in section.get("vouchers") or []:
        held = voucher_from(record)
        store.account(record["user_id"]).vouchers[held.id] = held
        count += 1
    for record in section.get("deals") or []:
        store.deals[record["id"]] = Deal(
            DealRule(
                id=record["id"],
                title=record.get("title") or record["id"],
                apply_to=record["apply_to"],
                discount_type=record["discount_type"],
                value=Decimal(record["value"]),
                sku=record.get("sku"),
                min_quantity=Decimal(record.get("min_quantity", "1")),
                min_spend=money(Decimal(record.get("min_spend", "0"))),
            )
        )
        count += 1
    for record in section.get("subscriptions") or []:
        store.subscriptions[record["id"]] = Subscription(
            id=record["id"],
            user_id=record["user_id"],
            title=record.get("title") or record["id"],
            pids=frozenset(record["pids"]),
            discount_type=record["discount_type"],
            value=Decimal(record["value"]),
            units=int(record.get("units", 1)),
            remaining=record.get("remaining"),
        )
        count += 1
    return count
