"""What both Let'sTrade APIs share over HTTP: the sign-in handler and the bearer-token check."""

from __future__ import annotations

from typing import Any

from mock_server.apis.base import ApiRequest, ApiResponse, Credential, Services
from mock_server.apis.letstrade.customers import Customer, CustomerStore
from mock_server.apis.letstrade.identity import Identity, User
from mock_server.errors import Unauthorized


def identity(services: Services) -> Identity:
    found: Identity = services.shared.get_or_create("letstrade-identity", lambda: Identity(services.settings.seed))
    return found


def check_bearer(ident: Identity, credential: Credential) -> User | None:
    if credential.kind != "bearer":
        return None
    return ident.user_for_token(credential.value)


def sign_in(ident: Identity, request: ApiRequest) -> ApiResponse:
    body = request.body or {}
    token = ident.sign_in(str(body.get("email", "")), str(body.get("password", "")))
    if token is None:
        raise Unauthorized("Invalid email or password")
    user = ident.user_for_token(token)
    assert user is not None
    return ApiResponse(
        200, {"success": True, "message": "Signed in successfully", "content": {"token": token, "user": user.public()}}
    )


def credentials(ident: Identity) -> dict[str, Any]:
    return {
        "letstrade": {
            "email": ident.default_user.email,
            "password": ident.default_password,
            "token": ident.default_token,
        }
    }


def customers(services: Services) -> CustomerStore:
    """The one Let'sTrade customer store both APIs read and write."""

    def make() -> CustomerStore:
        ident = identity(services)
        return CustomerStore(ident.new_object_id, client_id=ident.client_id)

    found: CustomerStore = services.shared.get_or_create("letstrade-customers", make)
    return found


def default_customer(services: Services) -> Customer:
    """The seeded Let'sTrade customer (same seed, same customer after every reset): it owns the codes
    minted without a `user` and the QR-app selections that name nobody (a fixed interface, see README)."""

    def make() -> Customer:
        return customers(services).create(
            services.clock.now(),
            name="Lerato",
            surname="Dlamini",
            email="lerato.dlamini@example.com",
            cell_number="27710000001",
            cell_country_code="+27",
        )

    found: Customer = services.shared.get_or_create("letstrade-default-customer", make)
    return found
