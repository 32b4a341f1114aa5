"""HTTP <-> domain for the five customer operations. Parameters and bodies arrive validated
against `openapi/customtrades.yaml`; the principal is the key's `Company`. Each handler is
synchronous: a read-check-write never awaits in the middle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mock_server.apis.base import ApiRequest, ApiResponse, Services
from mock_server.apis.customtrades import search
from mock_server.apis.customtrades.store import (
    ADDRESS_PARTS,
    Company,
    CustomerTable,
    CustomTradesStore,
    to_ms,
)
from mock_server.errors import NotFound

WRITABLE = (
    "first_name",
    "last_name",
    "company_name",
    "email",
    "phone",
    "customer_type",
    "is_vip",
    "primary_service_location_uuid",
    "notes",
    "internal_flags",
    "on_my_way_notify_via",
    *(f"{kind}_{part}" for kind in ("physical", "billing") for part in ADDRESS_PARTS),
)


def writable(body: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes a client may set; read-only (`uuid`, timestamps) and unknown ones are ignored."""
    return {name: body[name] for name in WRITABLE if name in body}


def _table(store: CustomTradesStore, request: ApiRequest) -> CustomerTable:
    company: Company = request.principal
    return store.table(company)


def _live_row(table: CustomerTable, request: ApiRequest) -> int:
    uuid = str(request.path_params["uuid"])
    row = table.find(uuid)
    if row is None:
        # another company's customer, an unknown uuid and a soft-deleted customer look the same
        raise NotFound(f"Customer not found: no customer with uuid {uuid} in your company")
    return row


def _now_ms(services: Services) -> int:
    return to_ms(services.clock.now())


def list_customers(services: Services, store: CustomTradesStore, request: ApiRequest) -> ApiResponse:
    table = _table(store, request)
    query = request.query
    page, limit = int(query.get("page", 1)), int(query.get("limit", 50))
    rows, total = table.page(
        str(query.get("filter", "all")),
        bool(query.get("include_deleted", False)),
        search.parse_search(query.get("search")),
        page,
        limit,
    )
    pagination = {"page": page, "limit": limit, "total": total, "total_pages": search.total_pages(total, limit)}
    return ApiResponse(
        200, {"success": True, "data": {"customers": [table.record(row) for row in rows], "pagination": pagination}}
    )


def get_customer(services: Services, store: CustomTradesStore, request: ApiRequest) -> ApiResponse:
    table = _table(store, request)
    return ApiResponse(200, {"success": True, "data": table.record(_live_row(table, request))})


def create_customer(services: Services, store: CustomTradesStore, request: ApiRequest) -> ApiResponse:
    table = _table(store, request)
    row = table.create(store.new_uuid(), writable(request.body), _now_ms(services))
    return ApiResponse(200, {"success": True, "data": table.record(row)})


def update_customer(services: Services, store: CustomTradesStore, request: ApiRequest) -> ApiResponse:
    table = _table(store, request)
    row = _live_row(table, request)
    table.update(row, writable(request.body), _now_ms(services))
    return ApiResponse(200, {"success": True, "data": table.record(row)})


def delete_customer(services: Services, store: CustomTradesStore, request: ApiRequest) -> ApiResponse:
    table = _table(store, request)
    table.soft_delete(_live_row(table, request), _now_ms(services))
    return ApiResponse(200, {"success": True, "data": {"message": "Customer deleted successfully"}})


HANDLERS = {
    "listCustomers": list_customers,
    "getCustomer": get_customer,
    "createCustomer": create_customer,
    "updateCustomer": update_customer,
    "deleteCustomer": delete_customer,
}
