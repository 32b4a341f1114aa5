"""Let'sTrade POS integration (`letstrade-pos`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mock_server.apis.base import ApiDefinition, ApiRequest, ApiResponse, Credential, Handler, Services
from mock_server.apis.letstrade import api as letstrade
from mock_server.apis.letstrade.identity import Identity


@dataclass
class PosStore:
    identity: Identity


def _sign_in(services: Services, store: PosStore, request: ApiRequest) -> ApiResponse:
    return letstrade.sign_in(store.identity, request)


class LetstradePosApi(ApiDefinition[PosStore]):
    slug = "letstrade-pos"
    spec_name = "letstrade-pos"
    envelope = "letstrade"
    handlers: dict[str, Handler] = {"signIn": _sign_in}

    def create_store(self, services: Services) -> PosStore:
        return PosStore(identity=letstrade.identity(services))

    def authenticate(self, services: Services, store: PosStore, credential: Credential) -> Any | None:
        return letstrade.check_bearer(store.identity, credential)

    def credentials(self, store: PosStore) -> dict[str, Any]:
        return letstrade.credentials(store.identity)
