"""Custom Trades CRM (`customtrades`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mock_server import secrets
from mock_server.apis.base import ApiDefinition, Credential, Services, seeded_rng


@dataclass(frozen=True)
class Company:
    id: str
    name: str


@dataclass
class CustomTradesStore:
    companies: dict[str, Company] = field(default_factory=dict)
    key_hashes: dict[str, str] = field(default_factory=dict)  # sha256(key) -> company id
    plain_keys: dict[str, str] = field(default_factory=dict)  # company id -> key (for credentials)

    def add_company(self, company: Company, key: str) -> None:
        self.companies[company.id] = company
        self.key_hashes[secrets.sha256_hex(key)] = company.id
        self.plain_keys[company.id] = key


class CustomTradesApi(ApiDefinition[CustomTradesStore]):
    slug = "customtrades"
    spec_name = "customtrades"
    envelope = "customtrades"

    def create_store(self, services: Services) -> CustomTradesStore:
        rng = seeded_rng(services.settings.seed, self.slug)
        store = CustomTradesStore()
        for index, name in enumerate(("Acme Plumbing", "Beta Electrical"), start=1):
            store.add_company(Company(f"company-{index}", name), "ctc_live_" + secrets.token_urlsafe(rng, 32))
        return store

    def authenticate(self, services: Services, store: CustomTradesStore, credential: Credential) -> Any | None:
        if credential.kind not in ("bearer", "apikey"):
            return None
        company_id = store.key_hashes.get(secrets.sha256_hex(credential.value))
        return store.companies.get(company_id) if company_id else None

    def credentials(self, store: CustomTradesStore) -> dict[str, Any]:
        first, second = list(store.companies)[:2]
        return {
            "customtrades": {"api_key": store.plain_keys[first], "company_id": first},
            "customtrades_second_company": {"api_key": store.plain_keys[second], "company_id": second},
        }
