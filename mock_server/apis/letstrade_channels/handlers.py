"""HTTP <-> domain for `letstrade-channels`: each handler reads the validated request, calls `crm`,
and answers in seed 000's `{success, message, content}` wrapper. Synchronous: no handler awaits, so
a read-check-write is never interleaved with another request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mock_server.apis.base import ApiRequest, ApiResponse, Services
from mock_server.apis.letstrade import api as letstrade
from mock_server.apis.letstrade.identity import User
from mock_server.apis.letstrade_channels import crm
from mock_server.apis.letstrade_channels.documents import (
    channel_document,
    channel_with_key,
    customer_document,
    product_document,
)
from mock_server.apis.letstrade_channels.store import ChannelsStore
from mock_server.errors import Unauthorized


@dataclass(frozen=True)
class PresentedKey:
    """The principal of a webhook call: the `X-API-Key` as sent. It is checked against the addressed
    channel's key only (in the handler, where the channel is known), never against other channels."""

    value: str


def _ok(message: str, content: Any) -> ApiResponse:
    return ApiResponse(200, {"success": True, "message": message, "content": content})


def _user(request: ApiRequest) -> User:
    if not isinstance(request.principal, User):  # the spec declares bearerAuth: never reached
        raise Unauthorized("A valid bearer token is required")
    return request.principal


def _client_id(store: ChannelsStore, user: User) -> str:
    """Every user of the mock belongs to the one Let'sTrade client (merchant) it plays."""
    return store.identity.client_id


def _key(request: ApiRequest) -> str:
    if not isinstance(request.principal, PresentedKey):  # the spec declares channelApiKey: never reached
        raise Unauthorized("Missing credentials: send the X-API-Key header")
    return request.principal.value


# -- authentication -----------------------------------------------------------------------------
def sign_in(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    return letstrade.sign_in(store.identity, request)


def sign_up(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    user, token = crm.sign_up(store, request.body, services.clock.now())
    return _ok("User successfully signed up", {"token": token, "user": user.public()})


# -- channels -----------------------------------------------------------------------------------
def create_channel(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    client_id = _client_id(store, _user(request))
    channel, api_key = crm.create_channel(store, client_id, request.body, services.clock.now())
    return _ok("Channel successfully created!", channel_with_key(channel, api_key))


def list_channels(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    client_id = _client_id(store, _user(request))
    channels = [channel_document(c, with_schema=True) for c in store.for_client(client_id)]
    return _ok("Channels successfully retrieved", {"channels": channels})


def get_channel(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    channel = crm.owned_channel(store, _client_id(store, _user(request)), str(request.path_params["channel_id"]))
    return _ok("Channel successfully retrieved", {"channel": channel_document(channel, with_schema=True)})


def update_channel(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    channel = crm.owned_channel(store, _client_id(store, _user(request)), str(request.path_params["channel_id"]))
    crm.update_channel(channel, request.body, services.clock.now())
    return _ok("Channel successfully updated", {"channel": channel_document(channel, with_schema=True)})


def rotate_channel_key(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    channel = crm.owned_channel(store, _client_id(store, _user(request)), str(request.path_params["channel_id"]))
    api_key = store.rotate_key(channel, services.clock.now())
    return _ok("Channel key successfully rotated", channel_with_key(channel, api_key))


# -- webhooks -----------------------------------------------------------------------------------
def upsert_customer(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    channel = crm.admit_webhook(store, str(request.path_params["webhook_uuid"]), _key(request), "customers")
    payload = crm.check_webhook_payload(channel, request.body)
    customer = crm.upsert_customer(store, channel, payload, services.clock.now())
    document = customer_document(customer, store.profile(customer.id), registered=store.is_registered(customer.id))
    return _ok("Customer successfully created/updated", document)


def upsert_product(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    channel = crm.admit_webhook(store, str(request.path_params["webhook_uuid"]), _key(request), "products")
    payload = crm.check_webhook_payload(channel, request.body)
    product = crm.upsert_product(store, channel, payload, services.clock.now())
    return _ok("Product successfully created/updated", product_document(product))


# -- admin (openapi/admin.yaml, the letstrade-channels block) -----------------------------------
def admin_list_customers(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    """The shared Let'sTrade customers as channel documents; `email`/`cell_number` filter exactly."""
    email = request.query.get("email")
    cell = request.query.get("cell_number")
    if email is not None or cell is not None:
        by_email = store.customers.find_by_email(str(email)) if email is not None else None
        by_cell = store.customers.find_by_cell(str(cell)) if cell is not None else None
        if email is not None and cell is not None:
            found = [by_email] if by_email is not None and by_cell is not None and by_email.id == by_cell.id else []
        else:
            found = [c for c in (by_email, by_cell) if c is not None]
    else:
        found = list(store.customers)
    documents = [
        customer_document(c, store.profile(c.id), registered=store.is_registered(c.id)) for c in found if c is not None
    ]
    return ApiResponse(200, {"customers": documents, "count": len(documents)})


def admin_list_products(services: Services, store: ChannelsStore, request: ApiRequest) -> ApiResponse:
    products = [product_document(p) for p in store.products.values()]
    return ApiResponse(200, {"products": products, "count": len(products)})
