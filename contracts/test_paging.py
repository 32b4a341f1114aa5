"""Paging walked to the end: LOKE's `X-Next-Page` never repeats or skips a customer.

On a mock the organization is filled past one page (fixtures), a customer registers in the
middle of the export (it must appear exactly once, on a later page: the keyset paging the spec
describes), and a `sort=updated` export sees a changed customer again, later, with its new data.
On a vendor the configured organization is walked as it is (at most `MAX_PAGES` pages): no
customer twice, in creation order, and the last page has no `X-Next-Page`.
"""

from __future__ import annotations

import random
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from contracts.report import Recorder
from contracts.stateful import Api
from contracts.target import ApiContext

CUSTOMERS = "/organizations/{organizationId}/customers"
PAGE_SIZE = 1000  # public docs: customer pages hold up to 1000 items
MAX_PAGES = 20
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(milliseconds: int, rnd: random.Random) -> str:
    value = (milliseconds << 80) | rnd.getrandbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def walk(api: Api, org: str, params: dict[str, str], between_pages: Any = None) -> list[dict[str, Any]]:
    """Every page of a listing, following X-Next-Page; checks each page and the chain."""
    index = api.index
    url_path = CUSTOMERS.replace("{organizationId}", org)
    items: list[dict[str, Any]] = []
    response = api.call("GET", CUSTOMERS, url_path, params=params)
    pages = 0
    cursors: set[str] = set()
    while True:
        pages += 1
        api.expect(response, {200}, "list_customers", f"GET {CUSTOMERS}", index.operation("GET", CUSTOMERS))
        page = response.json()
        if len(page) > PAGE_SIZE:
            raise api.violation(
                "page_size",
                f"GET {CUSTOMERS}",
                f"a page holds {len(page)} customers (at most {PAGE_SIZE})",
                index.response("GET", CUSTOMERS, 200),
            )
        items.extend(page)
        link = response.headers.get("X-Next-Page")
        if link is None or pages >= MAX_PAGES:
            return items
        if not page:
            raise api.violation(
                "next_page_never_repeats",
                f"GET {CUSTOMERS}",
                "an empty page carries X-Next-Page",
                index.operation("GET", CUSTOMERS),
            )
        target = urlsplit(link)
        if target.query in cursors:
            raise api.violation(
                "next_page_never_repeats",
                f"GET {CUSTOMERS}",
                f"X-Next-Page {link} was already followed",
                index.operation("GET", CUSTOMERS),
            )
        cursors.add(target.query)
        if between_pages is not None:
            between_pages(pages, page)
        response = api.call("GET", CUSTOMERS, url=link)


def _no_repeats(api: Api, items: list[dict[str, Any]], what: str, allowed: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    ids = [str(c["id"]) for c in items]
    repeated = {i for i in ids if ids.count(i) > 1} - set(allowed)
    if repeated:
        raise api.violation(
            "next_page_never_repeats",
            f"GET {CUSTOMERS}",
            f"{what}: {len(repeated)} customer(s) appear twice, e.g. {sorted(repeated)[0]}",
            api.index.operation("GET", CUSTOMERS),
        )
    return ids


@pytest.mark.lcs_api("loke", "stateful")
def test_loke_paging_never_repeats_or_skips(lcs_context: ApiContext, lcs_recorder: Recorder) -> None:
    api = Api(lcs_context, lcs_recorder)
    org = str((lcs_context.creds.get("loke") or {}).get("organization_id") or "")
    if not org:
        pytest.skip("loke: no organization to page through; set LCS_LOKE_ORGANIZATION_ID")
    index = api.index
    if lcs_context.admin is None:
        ids = _no_repeats(api, walk(api, org, {"sort": "created"}), "the export")
        if ids != sorted(ids):
            raise api.violation(
                "created_order",
                f"GET {CUSTOMERS}",
                "sort=created is not in id (registration) order",
                index.parameter("GET", CUSTOMERS, "query", "sort"),
            )
        pytest.skip(
            "mock-only steps skipped: filling the organization past one page and registering or changing "
            f"customers during the export need the mock's /__admin API ({lcs_context.label} is not a mock); "
            f"the existing {len(ids)} customers were walked without a repeat"
        )
    admin = lcs_context.admin
    before = {c["id"] for c in walk(api, org, {})}
    rnd = random.Random(20240302)
    start = int(time.time() * 1000) - 10**9
    loaded = [ulid(start + n, rnd) for n in range(PAGE_SIZE * 2 + 137)]
    admin.load_fixtures(
        {
            "loke": {
                "customers": [
                    {
                        "organization_id": org,
                        "id": i,
                        "firstName": "Page",
                        "lastName": f"Walker{n}",
                        "email": f"walker{n}.{i.lower()}@example.com",
                    }
                    for n, i in enumerate(loaded)
                ]
            }
        }
    )
    registered: list[str] = []

    def register_midway(page_number: int, page: list[dict[str, Any]]) -> None:
        if page_number == 1:
            admin.emit_loke_event(
                event="customer.created",
                organization_id=org,
                customer={"firstName": "Late", "lastName": "Registrant", "email": f"late.{start}@example.com"},
            )
            registered.extend(c["id"] for c in walk(api, org, {"email": f"late.{start}@example.com"}))

    items = walk(api, org, {"sort": "created"}, register_midway)
    ids = _no_repeats(api, items, "sort=created")
    expected = before | set(loaded) | set(registered)
    if set(ids) != expected:
        missing = expected - set(ids)
        raise api.violation(
            "next_page_never_skips",
            f"GET {CUSTOMERS}",
            f"walking every page missed {len(missing)} customer(s), e.g. {sorted(missing)[:2]} "
            f"(a customer registered during the export must appear on a later page)",
            index.operation("GET", CUSTOMERS),
        )
    if ids != sorted(ids):
        raise api.violation(
            "created_order",
            f"GET {CUSTOMERS}",
            "sort=created is not in id (registration) order",
            index.parameter("GET", CUSTOMERS, "query", "sort"),
        )

    changed: list[str] = []

    def change_midway(page_number: int, page: list[dict[str, Any]]) -> None:
        if page_number == 1 and page:
            customer = page[0]["id"]
            admin.emit_loke_event(
                event="customer.updated",
                organization_id=org,
                customer={"id": customer, "lastName": "Changed-During-Export"},
            )
            changed.append(customer)

    updated = walk(api, org, {"sort": "updated"}, change_midway)
    ids = _no_repeats(api, updated, "sort=updated", allowed=set(changed))
    if set(ids) != expected:
        raise api.violation(
            "next_page_never_skips",
            f"GET {CUSTOMERS}",
            f"sort=updated missed {len(expected - set(ids))} customer(s)",
            index.operation("GET", CUSTOMERS),
        )
    last = [c for c in updated if c["id"] in changed][-1:]
    if changed and (not last or last[0].get("lastName") != "Changed-During-Export" or ids.count(changed[0]) != 2):
        raise api.violation(
            "sort_updated_never_misses_a_change",
            f"GET {CUSTOMERS}",
            "a customer changed during a sort=updated export did not appear again, later, with its new data",
            index.parameter("GET", CUSTOMERS, "query", "sort"),
        )
