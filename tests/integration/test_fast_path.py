"""The server's fast path (`dispatcher.fast_path`, issue 11) answers exactly what the app's own
routes answer: the same requests sent to a server with it and to one without give the same
statuses, headers that matter and bodies (the admin's static docs included: an admin operation,
`getDocsAsset`, like any other); what it hands back to the routes (`Expect: 100-continue`,
unknown prefixes) still works."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from mock_server.app import create_app, start_runner
from mock_server.settings import Settings
from tests.integration.auth_headers import auth_headers

FROZEN = "2026-03-02T09:00:00Z"


def _requests(creds: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ct = auth_headers("customtrades", creds)
    loke = auth_headers("loke", creds)
    org = creds["loke"]["organization_id"]
    pos = auth_headers("letstrade-pos", creds)
    return [
        ("GET", "/__admin/health", {}),
        ("GET", "/__admin", {}),
        ("GET", "/customtrades/v1/customers?limit=2", {"headers": ct}),
        ("POST", "/customtrades/v1/customers", {"headers": ct, "json": {"first_name": "Ada", "last_name": "L"}}),
        ("POST", "/customtrades/v1/customers", {"headers": ct, "json": {"first_name": 1}}),
        ("POST", "/customtrades/v1/customers", {"headers": {**ct, "Expect": "100-continue"}, "json": {"x": 1}}),
        ("GET", "/customtrades/v1/customers/%7Bnot-a-uuid%7D", {"headers": ct}),
        ("DELETE", "/customtrades/v1/customers", {"headers": ct}),
        ("GET", "/customtrades", {"headers": ct}),
        ("GET", f"/loke/organizations/{org}/customers?limit=3", {"headers": loke}),
        ("GET", "/capillary/v2/extendedFields?type=CUSTOMER", {"headers": auth_headers("capillary", creds)}),
        ("POST", "/letstrade-pos/v1/get/offerings", {"data": b"{", "headers": {**pos, "Content-Type": "text/plain"}}),
        ("GET", "/nowhere/at/all", {}),
        ("GET", "/__admin/docs-static/swagger-ui.css", {}),
    ]


async def _answers(fast: bool) -> list[tuple[int, str, str]]:
    app = create_app(Settings(port=0, strict=True, customtrades_quota=0, capillary_rpm=0))
    if fast:
        runner = await start_runner(app)
    else:
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    answers: list[tuple[int, str, str]] = []
    try:
        async with aiohttp.ClientSession() as session:
            await session.post(f"{base}/__admin/clock", json={"set": FROZEN, "frozen": True})
            async with session.get(f"{base}/__admin/credentials") as got:
                creds = await got.json()
            for method, path, kwargs in _requests(creds):
                async with session.request(method, base + path, **kwargs) as response:
                    body = await response.read()
                    kind = response.headers.get("Content-Type", "")
                    answers.append((response.status, kind, body.decode("utf-8", "replace")[:4000]))
    finally:
        await runner.cleanup()
    return answers


def test_fast_path_answers_what_the_routes_answer() -> None:
    routed = asyncio.run(_answers(fast=False))
    fast = asyncio.run(_answers(fast=True))
    assert [a[0] for a in fast] == [a[0] for a in routed]
    assert fast == routed
    statuses = [a[0] for a in fast]
    # and the answers are the interesting ones, not a wall of 404s
    assert statuses[0] == 200 and statuses[2] == 200 and statuses[3] == 200
    assert statuses[4] == 400 and statuses[5] == 400 and statuses[7] == 405
    assert statuses[9] == 200 and statuses[10] == 200 and statuses[11] == 415
    assert statuses[12] == 404 and "mounted" in fast[12][2]
    assert statuses[13] == 200 and "css" in fast[13][1]
