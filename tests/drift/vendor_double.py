"""A "vendor double": an upstream on 127.0.0.1 that answers like the mock (it forwards to one)
but with known deviations, each on one operation, so every other operation is deviation-free."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import aiohttp
from aiohttp import web

Rewrite = Callable[[str, str, str, str, int, Any], tuple[int, Any] | None]
UNCHANGED = object()


def deviations(slug: str, method: str, path: str, query: str, status: int, body: Any) -> tuple[int, Any] | None:
    """The known deviations (None: answer as the mock did)."""
    if slug == "customtrades":
        if method == "GET" and re.fullmatch(r"/v1/customers/[0-9a-f-]{36}", path) and status == 200:
            body["data"]["loyalty_tier"] = "gold"  # an extra field
            return status, body
        if method == "POST" and path == "/v1/customers" and status == 200:
            del body["data"]["is_vip"]  # a missing field
            return status, body
        if method == "PUT" and status == 200:
            body["data"]["updated_at"] = 1733300000  # a field in another format (an assumed one)
            return status, body
        if method == "DELETE" and status == 200:
            return 204, None  # a different status for one case
    if slug == "capillary" and path == "/v2/customers/lookup/customerDetails" and status == 404:
        body["errors"][0]["code"] = 8016  # a different error code
        return status, body
    if slug == "loke" and method == "GET" and re.fullmatch(r"/organizations/[^/]+/customers", path) and status == 200:
        return status, body[:1]  # a different paging rule: one customer per page whatever the limit
    if (
        slug == "loke"
        and method == "GET"
        and status == 200
        and re.fullmatch(r"/organizations/[^/]+/customers/[^/]+", path)
    ):
        body["createdAt"] = 1704961260  # a field in another format (epoch seconds, not ISO-8601)
        return status, body
    return None


class VendorDouble:
    def __init__(self, mock_base: str, rewrite: Rewrite = deviations) -> None:
        self.mock_base = mock_base
        self.rewrite = rewrite
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        slug, _, rest = request.path[1:].partition("/")
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, f"{self.mock_base}{request.path_qs}", data=body or None, headers=headers
            ) as answer,
        ):
            raw = await answer.read()
            status = answer.status
            out_headers = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "date", "server")
            }
        try:
            document = json.loads(raw) if raw else None
        except ValueError:
            document = UNCHANGED
        if document is not UNCHANGED:
            changed = self.rewrite(slug, request.method, "/" + rest, request.query_string, status, document)
            if changed is not None:
                status, document = changed
                raw = json.dumps(document).encode() if document is not None else b""
                if document is None:
                    out_headers.pop("Content-Type", None)
        return web.Response(body=raw, status=status, headers=out_headers)

    def start(self) -> VendorDouble:
        ready: Future[int] = Future()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            ready.set_result(int(self._runner.addresses[0][1]))

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=60)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._loop.close()
        self._loop = None

    def url(self, slug: str) -> str:
        return f"http://127.0.0.1:{self.port}/{slug}"
