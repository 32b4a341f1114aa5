"""The `loke` section of a fixtures file (`--fixtures`, `POST /__admin/fixtures`):

```yaml
loke:
  organizations:  # more organizations (installed: whether they installed the add-on, default true)
    - {id?, name, installed?}
  locations:   # venues of an organization (payments may then use them as locationId)
    - {organization_id?, id?, name}
  customers:   # LOKE's Customer fields; id (a ULID) and timestamps optional
    - {organization_id?, id?, firstName, lastName, email?, phoneNumber?, dob?, gender?,
       hasAgreedToMarketing?, createdAt?, updatedAt?, statistics?: {pointsBalance?, ...}}
  lists:       # members: customer ids (or {id, addedAt?}) of the same organization
    - {organization_id?, id?, name, createdAt?, members?: [...]}
  payments:    # LOKE's Payment fields; amounts derived from items when absent
    - {organization_id?, id?, customer: {id}, items?, chargedAmount?, ..., currency?,
       billingType?, createdAt?, completedAt?, locationId?}
```

`organization_id` defaults to the first seeded organization that installed the add-on. Records
may refer to organizations, locations and customers of the same document. Fixtures are state as
it is: a payment loaded here does not change its customer's statistics (give them on the customer).
`check` reports every problem (record and field named) before `load` changes anything. Pure: no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from mock_server.apis.loke import events
from mock_server.apis.loke.store import STATISTICS_FIELDS, Counters, LokeStore, Organization, OrgState, Payment
from mock_server.errors import FieldError, MockError
from mock_server.schema import CompiledSchema

_ULID = {"type": "string", "pattern": "^[0-7][0-9A-HJKMNP-TV-Z]{25}$"}
_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_CENTS = {"type": "integer", "minimum": 0, "maximum": 10**12}
_ORG = {"type": "string", "minLength": 1}

SECTION = CompiledSchema(
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "organizations": {"type": "array"},
            "locations": {"type": "array"},
            "customers": {"type": "array"},
            "lists": {"type": "array"},
            "payments": {"type": "array"},
        },
    }
)
ORGANIZATION = CompiledSchema(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"id": _ULID, "name": {"type": "string", "minLength": 1}, "installed": {"type": "boolean"}},
    }
)
LOCATION = CompiledSchema(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {"organization_id": _ORG, "id": _ULID, "name": {"type": "string", "minLength": 1}},
    }
)
CUSTOMER = CompiledSchema(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["firstName", "lastName"],
        "properties": {
            "organization_id": _ORG,
            "id": _ULID,
            "firstName": {"type": "string"},
            "lastName": {"type": "string"},
            "email": {"type": ["string", "null"], "format": "email"},
            "phoneNumber": {"type": ["string", "null"], "pattern": r"^\+[1-9][0-9]{6,14}$"},
            "dob": {"type": ["string", "null"], "format": "date"},
            "gender": {"type": ["string", "null"]},
            "hasAgreedToMarketing": {"type": "boolean"},
            "createdAt": _TIME,
            "updatedAt": _TIME,
            "statistics": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    name: ({"type": "integer"} if not name.endswith("At") else _NULLABLE_TIME)
                    for name in STATISTICS_FIELDS
                },
            },
        },
    }
)
CUSTOMER_LIST = CompiledSchema(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["name"],
        "properties": {
            "organization_id": _ORG,
            "id": _ULID,
            "name": {"type": "string", "minLength": 1},
            "createdAt": _TIME,
            "members": {
                "type": "array",
                "items": {
                    "oneOf": [
                        _ULID,
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["id"],
                            "properties": {"id": _ULID, "addedAt": _TIME},
                        },
                    ]
                },
            },
        },
    }
)
_CHOICE = {
    "type": "object",
    "required": ["name", "amount"],
    "properties": {"id": {"type": "string", "minLength": 1}, "name": {"type": "string"}, "amount": {"type": "integer"}},
}
_OPTION = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "choices": {"type": "array", "items": _CHOICE},
    },
}
PAYMENT_ITEM = {
    "type": "object",
    "required": ["name", "amount"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "name": {"type": "string"},
        "amount": {"type": "integer", "minimum": -(10**12), "maximum": 10**12},
        "quantity": {"type": "integer", "minimum": 1, "maximum": 10_000},
        "type": {"enum": ["item", "discount", "surcharge"]},
        "options": {"type": "array", "items": _OPTION},
    },
}
PAYMENT = CompiledSchema(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["customer"],
        "properties": {
            "organization_id": _ORG,
            "id": {"type": "string", "format": "uuid"},
            "customer": {"type": "object", "required": ["id"], "properties": {"id": _ULID}},
            "billingType": {"type": "string", "minLength": 1},
            "chargedAmount": _CENTS,
            "creditAmount": _CENTS,
            "discountAmount": _CENTS,
            "externalAmount": _CENTS,
            "feeAmount": _CENTS,
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "createdAt": _TIME,
            "completedAt": _NULLABLE_TIME,
            "locationId": {"type": "string", "minLength": 1},
            "items": {"type": "array", "items": PAYMENT_ITEM},
        },
    }
)


def _records(section: Mapping[str, Any], name: str) -> list[Any]:
    found = section.get(name)
    return list(found) if isinstance(found, list) else []


def check(store: LokeStore, section: Any) -> list[FieldError]:
    """Every problem with the section; empty when `load` will load all of it."""
    if not isinstance(section, Mapping):
        return [FieldError("loke", "expected a mapping with customers, lists and/or payments")]
    problems = list(SECTION.errors(section, root="loke"))
    if problems:
        return problems
    default_org = store.installed[0].id
    emails: dict[tuple[str, str], str] = {}
    phones: dict[tuple[str, str], str] = {}
    new_customers: dict[str, set[str]] = {}
    # organizations of this document: empty stand-ins, so later records can be checked against them
    pending: dict[str, OrgState] = {}
    scratch = Counters(random.Random(0))

    def valid(name: str, schema: CompiledSchema) -> Iterator[tuple[str, Any]]:
        """The records of `name` that `schema` accepts, each with where it is (its errors noted)."""
        for index, record in enumerate(_records(section, name)):
            where = f"loke.{name}[{index}]"
            errors = schema.errors(record, root=where)
            if errors:
                problems.extend(errors)
                continue
            yield where, record

    def owned(name: str, schema: CompiledSchema) -> Iterator[tuple[str, Any, OrgState]]:
        """`valid` records of `name` with the organization they belong to (an unknown one noted)."""
        for where, record in valid(name, schema):
            org_id = str(record.get("organization_id") or default_org)
            state = store.orgs.get(org_id) or pending.get(org_id)
            if state is None:
                known = ", ".join([*store.orgs, *pending])
                message = f"unknown organization {org_id}; known: {known}"
                problems.append(FieldError(f"{where}.organization_id", message))
                continue
            yield where, record, state

    for where, record in valid("organizations", ORGANIZATION):
        org_id = record.get("id")
        if org_id is None:
            continue  # gets a new id: nothing in this document can refer to it
        if org_id in store.orgs or org_id in pending:
            problems.append(FieldError(f"{where}.id", f"organization {org_id} already exists"))
            continue
        pending[org_id] = OrgState(Organization(org_id, str(record["name"]), True), scratch)

    new_locations: dict[str, set[str]] = {}
    for where, record, state in owned("locations", LOCATION):
        location_id = record.get("id")
        if location_id is not None:
            if location_id in state.locations or location_id in new_locations.get(state.id, set()):
                problems.append(FieldError(f"{where}.id", f"location {location_id} already exists in {state.id}"))
            new_locations.setdefault(state.id, set()).add(location_id)

    def customer_known(state: OrgState, customer_id: str) -> bool:
        return customer_id in state.customers or customer_id in new_customers.get(state.id, set())

    for where, record, state in owned("customers", CUSTOMER):
        customer_id = record.get("id")
        if customer_id is not None:
            if customer_known(state, customer_id):
                problems.append(FieldError(f"{where}.id", f"customer {customer_id} already exists in {state.id}"))
            new_customers.setdefault(state.id, set()).add(customer_id)
        problems.extend(state.contact_conflicts(record, None, where))
        for field_name, taken in (("email", emails), ("phoneNumber", phones)):
            value = record.get(field_name)
            if isinstance(value, str):
                key = (state.id, value.lower() if field_name == "email" else value)
                if key in taken:
                    problems.append(FieldError(f"{where}.{field_name}", f"{value} is also given to {taken[key]}"))
                taken[key] = where
        created, updated = record.get("createdAt"), record.get("updatedAt")
        if created and updated and _time(updated) < _time(created):
            problems.append(FieldError(f"{where}.updatedAt", "is before createdAt"))

    new_lists: set[tuple[str, str]] = set()
    for where, record, state in owned("lists", CUSTOMER_LIST):
        list_id = record.get("id")
        if list_id is not None:
            if list_id in state.lists or (state.id, list_id) in new_lists:
                problems.append(FieldError(f"{where}.id", f"customer list {list_id} already exists in {state.id}"))
            new_lists.add((state.id, list_id))
        seen: set[str] = set()
        for position, member in enumerate(record.get("members") or []):
            member_id = member if isinstance(member, str) else member["id"]
            if not customer_known(state, member_id):
                problems.append(FieldError(f"{where}.members[{position}]", f"no customer {member_id} in {state.id}"))
            if member_id in seen:
                problems.append(FieldError(f"{where}.members[{position}]", f"{member_id} is listed twice"))
            seen.add(member_id)

    new_payments: set[tuple[str, str]] = set()
    for where, record, state in owned("payments", PAYMENT):
        payment_id = record.get("id")
        if payment_id is not None:
            if payment_id in state.payments or (state.id, payment_id) in new_payments:
                problems.append(FieldError(f"{where}.id", f"payment {payment_id} already exists in {state.id}"))
            new_payments.add((state.id, payment_id))
        if not customer_known(state, record["customer"]["id"]):
            problems.append(FieldError(f"{where}.customer.id", f"no customer {record['customer']['id']} in {state.id}"))
        location_id = record.get("locationId")
        if location_id is not None and location_id not in state.locations and location_id not in new_locations.get(
            state.id, set()
        ):
            known = ", ".join([*state.locations, *sorted(new_locations.get(state.id, set()))])
            problems.append(FieldError(f"{where}.locationId", f"unknown location; known in {state.id}: {known}"))
        elif location_id is None and not state.locations and not new_locations.get(state.id):
            problems.append(FieldError(f"{where}.locationId", f"{state.id} has no location; give one in locations"))
        try:
            events.payment_amounts(record.get("items") or [], record)
        except MockError as exc:
            problems.append(FieldError(f"{where}.items", exc.fields[0].message if exc.fields else exc.message))
    return problems


def load(store: LokeStore, section: Mapping[str, Any], now: datetime) -> int:
    """Load a section `check` accepted. Returns the number of records loaded."""
    default_org = store.installed[0].id
    count = 0
    for record in _records(section, "organizations"):
        org_id = record.get("id") or store.counters.ulid(now)
        store.add_org(Organization(str(org_id), str(record["name"]), bool(record.get("installed", True))))
        count += 1
    for record in _records(section, "locations"):
        state = store.orgs[str(record.get("organization_id") or default_org)]
        state.add_location(str(record["name"]), now, location_id=record.get("id"))
        count += 1
    for record in _records(section, "customers"):
        state = store.orgs[str(record.get("organization_id") or default_org)]
        created = _time(record["createdAt"]) if record.get("createdAt") else None
        state.create_customer(
            now,
            record,
            customer_id=record.get("id") or (state.counters.ulid(created) if created else None),
            created_at=created,
            updated_at=_time(record["updatedAt"]) if record.get("updatedAt") else None,
            statistics=events.parse_statistics(record.get("statistics") or {}),
        )
        count += 1
    for record in _records(section, "lists"):
        state = store.orgs[str(record.get("organization_id") or default_org)]
        created_at = _time(record["createdAt"]) if record.get("createdAt") else now
        made = state.create_list(str(record["name"]), created_at, list_id=record.get("id"))
        for member in record.get("members") or []:
            member_id = member if isinstance(member, str) else member["id"]
            added = member.get("addedAt") if isinstance(member, Mapping) else None
            state.add_member(made.id, member_id, _time(added) if added else now)
        count += 1
    for record in _records(section, "payments"):
        state = store.orgs[str(record.get("organization_id") or default_org)]
        created_at = _time(record["createdAt"]) if record.get("createdAt") else now
        completed = record.get("completedAt", record.get("createdAt") or None)
        items = events.payment_items(state, record.get("items") or [], created_at)
        amounts = events.payment_amounts(items, record)
        payment = Payment(
            id=str(record.get("id") or state.counters.uuid()),
            customer_id=str(record["customer"]["id"]),
            billing_type=str(record.get("billingType") or events.DEFAULT_BILLING_TYPE),
            charged_amount=amounts["chargedAmount"],
            credit_amount=amounts["creditAmount"],
            discount_amount=amounts["discountAmount"],
            external_amount=amounts["externalAmount"],
            fee_amount=amounts["feeAmount"],
            currency=str(record.get("currency") or events.DEFAULT_CURRENCY),
            created_at=created_at,
            completed_at=_time(completed) if completed else (None if "completedAt" in record else now),
            items=items,
            location_id=record.get("locationId") or next(iter(state.locations)),
        )
        state.add_payment(payment, count_spend=False)
        count += 1
    return count


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
