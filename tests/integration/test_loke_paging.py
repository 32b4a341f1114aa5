"""The customer export as a CRM does it: follow `X-Next-Page` until it is absent. 2,500 customers
are 3 pages; none is missed or repeated, also while customers are added or changed mid-export."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from mock_server.apis.loke import ids
from mock_server.testing import MockServer


class Export:
    def __init__(self, mock: MockServer) -> None:
        self.mock = mock
        creds = mock.credentials_cache()["loke"]
        self.org = creds["organization_id"]
        self.headers = {"Authorization": f"Bearer {creds['access_token']}"}

    def first_url(self, **params: str) -> str:
        url = self.mock.url("loke", f"/organizations/{self.org}/customers")
        return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")

    def page(self, url: str) -> tuple[list[dict[str, Any]], str | None]:
        response = requests.get(url, headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json(), response.headers.get("X-Next-Page")

    def fill(self, total: int) -> None:
        """Load customers (fixtures) until the organization has `total`."""
        have = len(self.page(self.first_url())[0])
        assert have < 1000
        customers = [  # a minute apart: their ULIDs leave gaps a test can insert into
            {"firstName": f"Bulk{n}", "lastName": "Customer", "email": f"bulk{n}@example.com",
             "createdAt": f"2025-01-{1 + n // 1440:02d}T{n // 60 % 24:02d}:{n % 60:02d}:00Z"}
            for n in range(total - have)
        ]
        self.load(customers)

    def load(self, customers: list[dict[str, Any]]) -> None:
        response = self.mock.admin("POST", "/fixtures", json={"loke": {"customers": customers}})
        assert response.status_code == 200, response.text


@pytest.fixture
def export(mock: MockServer) -> Export:
    return Export(mock)


def test_2500_customers_export_in_three_pages_with_none_missed_or_repeated(export: Export) -> None:
    export.fill(2500)
    pages: list[list[dict[str, Any]]] = []
    url: str | None = export.first_url()
    while url is not None:
        page, url = export.page(url)
        pages.append(page)
    assert [len(p) for p in pages] == [1000, 1000, 500]
    ids_seen = [c["id"] for p in pages for c in p]
    assert len(set(ids_seen)) == 2500
    assert ids_seen == sorted(ids_seen)  # created order is ULID order


def test_customers_added_mid_export_cause_no_skip_or_repeat(export: Export) -> None:
    export.fill(2500)
    page, url = export.page(export.first_url())
    seen = [c["id"] for c in page]
    cursor_id = seen[-1]
    # new customers: some created now (they sort last), some loaded with ids in the part already
    # exported and in the part still to come
    export.load([{"firstName": f"Late{n}", "lastName": "Comer"} for n in range(700)])
    behind = ids.encode(ids.decode(seen[10]) + 1)
    ahead = ids.encode(ids.decode(cursor_id) + 1)
    export.load([{"id": behind, "firstName": "Behind", "lastName": "Cursor"},
                 {"id": ahead, "firstName": "Ahead", "lastName": "Cursor"}])
    while url is not None:
        page, url = export.page(url)
        seen.extend(c["id"] for c in page)
    everyone = {c["id"] for c in _all(export)}
    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(seen) == everyone - {behind}  # nothing skipped; only the id behind the cursor is not returned
    assert ahead in seen


def test_sort_updated_returns_a_changed_customer_again_with_its_new_data(export: Export) -> None:
    export.fill(1500)
    first, url = export.page(export.first_url(sort="updated"))
    assert url is not None and "sort=updated" in url
    changed = first[0]["id"]
    response = export.mock.admin("POST", "/loke/events", json={
        "event": "customer.updated", "customer": {"id": changed, "lastName": "Changed"}})
    assert response.status_code == 202
    rest: list[dict[str, Any]] = []
    while url is not None:
        page, url = export.page(url)
        rest.extend(page)
    seen = [c["id"] for c in first + rest]
    assert set(seen) == {c["id"] for c in _all(export)}
    assert seen.count(changed) == 2 and rest[-1]["id"] == changed and rest[-1]["lastName"] == "Changed"
    assert len(seen) == 1501


def test_exactly_1000_customers_is_one_page_without_next(export: Export) -> None:
    export.fill(1000)
    page, url = export.page(export.first_url())
    assert len(page) == 1000 and url is None


def test_cursor_is_bound_to_its_listing(export: Export) -> None:
    export.fill(1200)
    _, url = export.page(export.first_url())
    assert url is not None
    cursor = url.split("after=")[1]
    for wrong in (
        export.first_url(sort="updated", after=cursor),
        export.mock.url("loke", f"/organizations/{export.mock.credentials_cache()['loke']['second_organization_id']}"
                                f"/customers?after={cursor}"),
        export.first_url(after="not-a-cursor"),
    ):
        response = requests.get(wrong, headers=export.headers, timeout=30)
        assert response.status_code == 400 and response.json()["type"] == "validation_error"
        assert "query.after" in response.json()["message"]


def _all(export: Export) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url: str | None = export.first_url()
    while url is not None:
        page, url = export.page(url)
        found.extend(page)
    return found
