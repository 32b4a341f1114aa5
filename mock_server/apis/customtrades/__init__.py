"""Custom Trades CRM (`customtrades`): company-scoped customers with search, paging and soft
delete, a monthly request quota with usage headers, and `--seed-customers N` (fast at a million).

Modules: `store.py` (state, compact columns, indexes, usage), `search.py` (the pure search, filter,
order and paging rules), `seeding.py` (pooled Faker data), `handlers.py` (HTTP <-> domain).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mock_server import secrets
from mock_server.apis.base import ApiDefinition, ApiRequest, Credential, Handler, Services, seeded_rng
from mock_server.apis.customtrades import seeding
from mock_server.apis.customtrades.handlers import HANDLERS, writable
from mock_server.apis.customtrades.store import Company, CustomTradesStore, next_month, to_ms
from mock_server.clock import isoformat
from mock_server.errors import FieldError, Forbidden
from mock_server.schema import CompiledSchema, dereference
from mock_server.spec import load_document

__all__ = ["Company", "CustomTradesApi", "CustomTradesStore"]

log = logging.getLogger("mock_server")
COMPANIES = ("Acme Plumbing", "Beta Electrical")
FIXTURE_TIMES = ("created_at", "updated_at", "deleted_at")


class CustomTradesApi(ApiDefinition[CustomTradesStore]):
    slug = "customtrades"
    spec_name = "customtrades"
    envelope = "customtrades"
    handlers: Mapping[str, Handler] = HANDLERS
    fixture_section = "customtrades"

    def create_store(self, services: Services) -> CustomTradesStore:
        seed = services.settings.seed
        rng = seeded_rng(seed, self.slug)
        store = CustomTradesStore(uuid_rng=seeded_rng(seed, self.slug, "uuids"))
        for index, name in enumerate(COMPANIES, start=1):
            store.add_company(Company(f"company-{index}", name), "ctc_live_" + secrets.token_urlsafe(rng, 32))
        if services.settings.seed_customers:
            started = time.perf_counter()
            first = next(iter(store.companies.values()))
            store.table(first).load(seeding.generate(seed, services.settings.seed_customers))
            log.info(
                "customtrades: seeded %d customers into %s in %.1f s",
                services.settings.seed_customers, first.id, time.perf_counter() - started,
            )
        return store

    def authenticate(self, services: Services, store: CustomTradesStore, credential: Credential) -> Any | None:
        if credential.kind not in ("bearer", "apikey"):
            return None
        return store.company_for_key(credential.value)

    def credentials(self, store: CustomTradesStore) -> dict[str, Any]:
        first, second = list(store.companies)[:2]
        return {
            "customtrades": {"api_key": store.plain_keys[first], "company_id": first},
            "customtrades_second_company": {"api_key": store.plain_keys[second], "company_id": second},
        }

    # quota and usage headers --------------------------------------------------------------------
    def admit(self, services: Services, store: CustomTradesStore, request: ApiRequest) -> None:
        company = request.principal
        if not isinstance(company, Company):
            return
        quota = services.settings.customtrades_quota
        now = request.received_at
        if not store.usage.admit(company.id, now, quota):
            raise Forbidden(
                f"Monthly API usage limit exceeded: {quota} of {quota} requests used this month; "
                f"the limit resets on {isoformat(next_month(now))}",
                kind="usage_limit_exceeded",
            )

    def response_headers(
        self, services: Services, store: CustomTradesStore, principal: Any, now: datetime
    ) -> dict[str, str]:
        if not isinstance(principal, Company):
            return {}  # no key, or one that names no company: there is no usage to report
        return store.usage.headers(principal.id, now, services.settings.customtrades_quota)

    # fixtures -----------------------------------------------------------------------------------
    def _record_schema(self, services: Services, store: CustomTradesStore) -> CompiledSchema:
        document = load_document(self.spec_name, services.settings.specs_dir)
        create = dereference(document["components"]["schemas"]["CustomerCreate"], document)
        return CompiledSchema(
            {
                "allOf": [create],
                "properties": {
                    "company_id": {"enum": list(store.companies)},
                    "uuid": {"type": "string", "format": "uuid"},
                    **{name: {"type": "string", "format": "date-time"} for name in FIXTURE_TIMES},
                },
            }
        )

    def check_fixtures(self, services: Services, store: CustomTradesStore, section: Any) -> list[FieldError]:
        """Section shape: `{customers: [{company_id?, uuid?, created_at?, updated_at?, deleted_at?,
        ...the createCustomer body}]}`; company_id defaults to the first company."""
        if not isinstance(section, Mapping):
            return [FieldError("customtrades", "expected a mapping with a `customers` list")]
        errors = [
            FieldError(f"customtrades.{key}", "unknown key; expected only `customers`")
            for key in section
            if key != "customers"
        ]
        records = section.get("customers", [])
        if not isinstance(records, list):
            return [*errors, FieldError("customtrades.customers", "expected a list of customers")]
        schema = self._record_schema(services, store)
        seen: set[str] = set()
        for at, record in enumerate(records):
            where = f"customtrades.customers[{at}]"
            found = schema.errors(record, root=where)
            errors.extend(found)
            if found or not isinstance(record, Mapping):
                continue
            uuid = str(record.get("uuid", "")).lower()
            if uuid and (uuid in seen or any(uuid in t.by_uuid for t in store.tables.values())):
                errors.append(FieldError(f"{where}.uuid", f"{uuid} is already taken; expected a unique uuid"))
            seen.add(uuid)
        return errors

    def load_fixtures(self, services: Services, store: CustomTradesStore, section: Any) -> int:
        now = services.clock.now()

        def when(record: Mapping[str, Any], name: str, default: datetime) -> int:
            value = record.get(name)
            return to_ms(datetime.fromisoformat(value.upper().replace("Z", "+00:00")) if value else default)

        records: list[Mapping[str, Any]] = list(section.get("customers", []))
        # stored oldest first, so the newest-first list order follows created_at
        records.sort(key=lambda record: when(record, "created_at", now))
        first_company = next(iter(store.companies))
        for record in records:
            table = store.tables[str(record.get("company_id", first_company))]
            created = when(record, "created_at", now)
            row = table.create(str(record.get("uuid") or store.new_uuid()), writable(record), created)
            if record.get("deleted_at"):
                table.soft_delete(row, when(record, "deleted_at", now))
            if record.get("updated_at"):
                table.updated[row] = when(record, "updated_at", now)
        return len(records)
