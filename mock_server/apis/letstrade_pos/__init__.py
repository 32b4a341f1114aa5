"""Let'sTrade POS integration (`letstrade-pos`, seed 004): codes with a 10-minute expiry, basket
pricing, irreversible finalise, refund, and the QR slip flow.

Modules: `codes` (code format and expiry), `pricing` (pure Decimal basket pricing), `baskets`
(request parsing and response rendering), `store` (state), `flows` (the use cases), `fixtures`
(the `letstrade` fixtures section), `handlers` (HTTP <-> domain), `outbound` (the POS callback).
"""

from __future__ import annotations

from typing import Any

from mock_server.apis.base import ApiDefinition, Credential, Handler, Services
from mock_server.apis.letstrade import api as letstrade
from mock_server.apis.letstrade_pos import fixtures
from mock_server.apis.letstrade_pos import handlers as pos
from mock_server.apis.letstrade_pos.conformance.handler import get_conformance
from mock_server.apis.letstrade_pos.store import PosStore
from mock_server.errors import FieldError


class LetstradePosApi(ApiDefinition[PosStore]):
    slug = "letstrade-pos"
    spec_name = "letstrade-pos"
    envelope = "letstrade"
    fixture_section = "letstrade"
    handlers: dict[str, Handler] = {
        "signIn": pos.sign_in,
        "getOfferings": pos.get_offerings,
        "finaliseOfferings": pos.finalise_offerings,
        "refund": pos.refund,
    }
    admin_handlers: dict[str, Handler] = {
        "mintCode": pos.mint_code,
        "getPosCode": pos.get_code,
        "getPosUser": pos.get_user,
        "listPosOrders": pos.list_orders,
        "getPosOrder": pos.get_order,
        "appendBillVouchers": pos.append_bill_vouchers,
        "getConformance": get_conformance,
    }

    def create_store(self, services: Services) -> PosStore:
        return PosStore(
            identity=letstrade.identity(services),
            customers=letstrade.customers(services),
            default_customer_id=letstrade.default_customer(services).id,
            seed=services.settings.seed,
            specs_dir=services.settings.specs_dir,
        )

    def authenticate(self, services: Services, store: PosStore, credential: Credential) -> Any | None:
        return letstrade.check_bearer(store.identity, credential)

    def credentials(self, store: PosStore) -> dict[str, Any]:
        return {
            **letstrade.credentials(store.identity),
            "letstrade_pos": {"default_customer_id": store.default_customer_id},
        }

    def check_fixtures(self, services: Services, store: PosStore, section: Any) -> list[FieldError]:
        return fixtures.check(store, section)

    def load_fixtures(self, services: Services, store: PosStore, section: Any) -> int:
        return fixtures.load(store, services.clock.now(), section)
