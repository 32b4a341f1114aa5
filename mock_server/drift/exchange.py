"""A HAR entry as drift sees it: which API it belongs to, the path after that API's base URL,
and both messages. Matching is by base URL (`--api-url`, then the real vendors' defaults), by the
`_api`/`_path` fields this project's proxy writes, or by the mock's own `/<slug>/...` layout."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from multidict import CIMultiDict

from mock_server.settings import SLUGS

# the real base URLs (README.md); LOKE's token endpoint lives on its auth host, which the spec
# serves under `/auth`
DEFAULT_API_URLS: dict[str, list[str]] = {
    "letstrade-pos": ["https://lets-trade-integration-prod.letstrade.global"],
    "letstrade-channels": ["https://lets-trade-user-prod.letstrade.global"],
    "customtrades": ["https://customtradescrm.com/api"],
    "capillary": ["https://eucrm.cc.capillarytech.com"],
    "loke": ["https://api.loke.global"],
}
ADMIN = "__admin"
_PATH_PREFIX = {"https://auth.loke.global": ("loke", "/auth")}


@dataclass(slots=True)
class Exchange:
    entry: int  # 1-based position in the HAR
    api: str
    method: str
    path: str  # decoded, after the API's base URL
    query: str  # raw query string
    request_headers: CIMultiDict[str]
    request_body: bytes
    started: datetime | None
    duration_ms: float
    status: int
    response_headers: CIMultiDict[str]
    response_body: bytes


def _headers(items: Any) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                name = item["name"]
                if name.startswith(":"):  # HTTP/2 pseudo-headers in browser exports
                    continue
                headers.add(name, str(item.get("value", "")))
    return headers


def _text(container: Any, key: str = "text") -> bytes:
    if not isinstance(container, dict):
        return b""
    text = container.get(key)
    if not isinstance(text, str):
        return b""
    if container.get("encoding") == "base64":
        try:
            return base64.b64decode(text)
        except ValueError:
            return b""
    return text.encode("utf-8")


def _started(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class Matcher:
    def __init__(self, api_urls: Mapping[str, Iterable[str]] | None = None, apis: Iterable[str] | None = None) -> None:
        self.apis = frozenset(apis) if apis else frozenset(SLUGS)
        bases: list[tuple[str, str, str]] = []  # (base, slug, path prefix in the spec)
        for slug, urls in (api_urls or {}).items():
            bases.extend((url.rstrip("/"), slug, "") for url in urls)
        self._explicit = len(bases)
        for slug, urls in DEFAULT_API_URLS.items():
            bases.extend((url, slug, "") for url in urls)
        bases.extend((base, slug, prefix) for base, (slug, prefix) in _PATH_PREFIX.items())
        # the longest base first, so `/api` beats the bare host
        self._bases = sorted(bases[: self._explicit], key=lambda b: -len(b[0])) + sorted(
            bases[self._explicit :], key=lambda b: -len(b[0])
        )

    def locate(self, url: str, entry: Mapping[str, Any]) -> tuple[str, str] | None:
        """(slug, path after the base URL) or None."""
        split = urlsplit(url)
        bare = f"{split.scheme}://{split.netloc}{split.path}"
        for base, slug, prefix in self._bases[: self._explicit]:
            if bare == base or bare.startswith(base + "/"):
                return slug, prefix + (bare[len(base) :] or "/")
        api, path = entry.get("_api"), entry.get("_path")
        if isinstance(api, str) and api in SLUGS and isinstance(path, str):
            return api, path
        for base, slug, prefix in self._bases[self._explicit :]:
            if bare == base or bare.startswith(base + "/"):
                return slug, prefix + (bare[len(base) :] or "/")
        segment, _, rest = split.path[1:].partition("/")
        if segment == ADMIN:  # the mock's admin API: set-up steps (a minted code), replayed, not judged
            return ADMIN, "/" + rest
        if segment in SLUGS:
            return segment, "/" + rest
        for name in ("t",):  # a tenant of the mock: /t/<id>/<slug>/...
            if segment == name:
                parts = split.path.split("/", 4)
                if len(parts) >= 4 and parts[3] in SLUGS:
                    return parts[3], "/" + (parts[4] if len(parts) > 4 else "")
        return None

    def match(self, index: int, entry: Mapping[str, Any]) -> Exchange | None:
        request = entry.get("request")
        response = entry.get("response")
        if not isinstance(request, dict) or not isinstance(response, dict):
            return None
        url = request.get("url")
        method = request.get("method")
        status = response.get("status")
        if not isinstance(url, str) or not isinstance(method, str) or not isinstance(status, int) or status <= 0:
            return None  # no answer recorded (a browser's aborted request)
        found = self.locate(url, entry)
        if found is None or (found[0] not in self.apis and found[0] != ADMIN):
            return None
        slug, path = found
        time_ms = entry.get("time")
        return Exchange(
            entry=index,
            api=slug,
            method=method.upper(),
            path=unquote(path),
            query=urlsplit(url).query,
            request_headers=_headers(request.get("headers")),
            request_body=_text(request.get("postData")),
            started=_started(entry.get("startedDateTime")),
            duration_ms=float(time_ms) if isinstance(time_ms, (int, float)) else 0.0,
            status=status,
            response_headers=_headers(response.get("headers")),
            response_body=_text(response.get("content")),
        )
