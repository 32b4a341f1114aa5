"""Keyset paging with LOKE's opaque `after` cursor and the `X-Next-Page` header.

A listing is a `SortedIndex`: every item has a unique, immutable sort key (a ULID for creation
order, a sequence number for update or membership order). A page is "the next `limit` keys after
the cursor's key", found by bisection, so a page costs O(log n + limit) and the result does not
depend on what happened before: an item inserted after the cursor's position appears later in
the export, one inserted before it is not returned, and no item that existed when the export
started is skipped or returned twice because of an insertion. An item whose key changes (a
customer updated during a `sort=updated` export) leaves its old position and appears again at
its new one, with its new data.

The cursor is `base64url("<scope>|<key>")`: opaque to clients (LOKE: "not for manual use"), bound
to the listing it came from (organization, resource, sort), so a cursor from another listing is
refused instead of silently paging the wrong thing. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar
from urllib.parse import quote, urlencode

from mock_server.apis.loke.ids import is_ulid

PAGE_SIZE = 1000  # public docs: "Customer pages hold up to 1000 items"

K = TypeVar("K", str, int)


class CursorError(ValueError):
    """An `after` value that is not a cursor of this listing."""


class SortedIndex(Generic[K]):
    """Unique sort keys -> item ids, kept in key order."""

    def __init__(self) -> None:
        self._keys: list[K] = []
        self._items: dict[K, str] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def add(self, key: K, item_id: str) -> None:
        if key in self._items:
            raise KeyError(f"sort key {key!r} is already taken")
        if not self._keys or key > self._keys[-1]:
            self._keys.append(key)  # the common case: a new item sorts last
        else:
            bisect.insort(self._keys, key)
        self._items[key] = item_id

    def remove(self, key: K) -> None:
        del self._items[key]
        del self._keys[bisect.bisect_left(self._keys, key)]

    def ids(self) -> list[str]:
        return [self._items[key] for key in self._keys]

    def page(self, after: K | None, limit: int = PAGE_SIZE) -> tuple[list[str], K | None]:
        """The ids of the next `limit` items after `after` (from the start when None), and the
        key to continue after, or None when this page reaches the end."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        start = 0 if after is None else bisect.bisect_right(self._keys, after)
        keys = self._keys[start : start + limit]
        more = start + limit < len(self._keys)
        return [self._items[key] for key in keys], (keys[-1] if more and keys else None)

    def page_where(
        self, after: K | None, limit: int, keep: Callable[[str], bool]
    ) -> tuple[list[str], K | None]:
        """As `page`, over only the items `keep` accepts (a filtered listing)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        start = 0 if after is None else bisect.bisect_right(self._keys, after)
        found: list[str] = []
        last: K | None = None
        for position in range(start, len(self._keys)):
            key = self._keys[position]
            item_id = self._items[key]
            if not keep(item_id):
                continue
            if len(found) == limit:
                return found, last  # one more match exists beyond this page
            found.append(item_id)
            last = key
        return found, None


def encode_cursor(scope: str, key: str | int) -> str:
    tag = "s" if isinstance(key, str) else "n"
    raw = f"{scope}|{tag}{key}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, scope: str, kind: type[K]) -> K:
    """The key a cursor of listing `scope` carries, or CursorError saying what is wrong."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CursorError("is not a paging cursor; follow the URL in the previous page's X-Next-Page header") from None
    found_scope, sep, tagged = raw.rpartition("|")
    if not sep or not tagged:
        raise CursorError("is not a paging cursor; follow the URL in the previous page's X-Next-Page header")
    if found_scope != scope:
        raise CursorError(
            "is a cursor of another listing (another organization, resource or sort order); "
            "follow the X-Next-Page URL of this listing"
        )
    tag, value = tagged[0], tagged[1:]
    if kind is int:
        if tag != "n" or not value.isdigit() or len(value) > 18:
            raise CursorError("is not a valid cursor for this listing")
        return int(value)  # type: ignore[return-value]
    if tag != "s" or not is_ulid(value):
        raise CursorError("is not a valid cursor for this listing")
    return value  # type: ignore[return-value]


def next_page_url(base_url: str, path_segments: list[str], query: Mapping[str, object], cursor: str) -> str:
    """The full URL of the next page: same path and filters, `after` replaced by the cursor."""
    path = "/" + "/".join(quote(segment, safe="") for segment in path_segments)
    params = [(k, str(v)) for k, v in query.items() if k != "after" and v is not None]
    params.append(("after", cursor))
    return f"{base_url}{path}?{urlencode(params)}"
