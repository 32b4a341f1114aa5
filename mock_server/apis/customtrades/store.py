"""All state of the Custom Trades mock: companies and their keys, each company's customer table,
and the monthly usage counters. Pure and synchronous: no HTTP, time passed in by the caller.

A customer table is stored by column, one entry per customer in creation order (a customer's
row number is its position), so a million customers cost a few hundred bytes each rather than a
dict apiece: flags and timestamps live in byte/int arrays, phone numbers as integers, addresses as
shared 5-tuples, and seeded strings (names, cities...) are shared from pools.

Indexes, maintained on every write, so no request scans the customers:
- `uuid` -> row (dict);
- e-mail (case-folded) and phone (ten digits as an integer): sorted (key, row) arrays, searched
  by prefix with `bisect`;
- name words: word -> sorted rows, plus the sorted list of words for prefix search;
- views: for each (filter, include_deleted) the number of its customers in each block of rows,
  so the k-th customer of a view is found by a walk over block counts and a C-speed regex scan of
  one block of the flag bytes; a page is that plus `limit` more matches. Nothing is sorted per
  request.
"""

from __future__ import annotations

import hmac
import re
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import OrderedDict
from collections.abc import Iterable, Mapping, MutableSequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import accumulate, chain, islice
from random import Random
from typing import Any, Generic, TypeVar

from mock_server import secrets
from mock_server.apis.customtrades import search
from mock_server.apis.customtrades.search import COMMERCIAL, DELETED, VIP, SearchQuery
from mock_server.clock import isoformat

Address = tuple[str | None, str | None, str | None, str | None, str | None]
NO_ADDRESS: Address = (None, None, None, None, None)
ADDRESS_PARTS = ("address1", "address2", "city", "state", "zip")
NOTIFY_VIA: tuple[str | None, ...] = (None, "email", "sms", "both")
NO_PHONE = -1
DOCUMENT_CACHE = 4096  # customer documents kept built (a read-mostly client re-reads the same ones)
NULLABLE_TEXT = ("company_name", "email", "primary_service_location_uuid", "notes")
READ_ONLY = ("uuid", "created_at", "updated_at", "deleted_at")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """A timezone-aware time as whole milliseconds since the epoch (exact integer arithmetic)."""
    return (moment - _EPOCH) // _MS


def iso_ms(ms: int) -> str:
    """`clock.isoformat` of the moment `ms` milliseconds after the epoch; the text of its whole
    second is computed once per second (a customer's timestamps, and successive requests', share
    it): a tenth of the cost of formatting a datetime."""
    second, milli = divmod(ms, 1000)
    return f"{_second_text(second)}.{milli:03d}Z"


@lru_cache(maxsize=64)
def _second_text(second: int) -> str:
    return isoformat(_EPOCH + timedelta(seconds=second)).removesuffix(".000Z")


def uuid_from_bits(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (as `uuid.UUID(int=..., version=4)`)."""
    bits = (bits & ~(0xC000 << 48)) | (0x8000 << 48)
    bits = (bits & ~(0xF000 << 64)) | (0x4000 << 64)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# -- indexes ------------------------------------------------------------------------------------
K = TypeVar("K", str, int)


class SortedPairs(Generic[K]):
    """(key, row) pairs sorted by key, in two parallel arrays; equal keys in any order."""

    __slots__ = ("keys", "rows")
    keys: MutableSequence[K]
    rows: array[int]

    def __init__(self, keys: MutableSequence[K], rows: array[int]) -> None:
        self.keys = keys
        self.rows = rows

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: K, row: int) -> None:
        at = bisect_right(self.keys, key)
        self.keys.insert(at, key)
        self.rows.insert(at, row)

    def remove(self, key: K, row: int) -> None:
        low, high = bisect_left(self.keys, key), bisect_right(self.keys, key)
        at = self.rows.index(row, low, high)
        del self.keys[at]
        del self.rows[at]

    def between(self, low: K, high: K | None) -> array[int]:
        """Rows whose key is in [low, high) (high None: no upper bound)."""
        start = bisect_left(self.keys, low)
        stop = len(self.keys) if high is None else bisect_left(self.keys, high)
        return self.rows[start:stop]


class WordIndex:
    """Name word -> the rows whose first or last name has it (ascending), and the sorted words."""

    __slots__ = ("postings", "sorted_words")

    def __init__(self) -> None:
        self.postings: dict[str, array[int]] = {}
        self.sorted_words: list[str] = []

    def add(self, row: int, words: Iterable[str]) -> None:
        for word in words:
            rows = self.postings.get(word)
            if rows is None:
                self.postings[word] = array("i", [row])
                insort(self.sorted_words, word)
            elif rows[-1] < row:
                rows.append(row)
            else:
                insort(rows, row)

    def remove(self, row: int, words: Iterable[str]) -> None:
        for word in words:
            rows = self.postings[word]
            rows.remove(row)
            if not rows:
                del self.postings[word]
                del self.sorted_words[bisect_left(self.sorted_words, word)]

    def starting_with(self, term: str) -> list[array[int]]:
        low = bisect_left(self.sorted_words, term)
        end = search.prefix_end(term)
        high = len(self.sorted_words) if end is None else bisect_left(self.sorted_words, end)
        return [self.postings[word] for word in self.sorted_words[low:high]]

    def rows_matching(self, terms: Iterable[str]) -> set[int]:
        """Rows where every term starts some word of the name (the smallest term's rows first)."""
        groups: list[tuple[int, list[array[int]]]] = []
        for term in terms:
            lists = self.starting_with(term)
            size = sum(map(len, lists))
            if size == 0:
                return set()
            groups.append((size, lists))
        if not groups:
            return set()
        groups.sort(key=lambda group: group[0])
        found = set(chain.from_iterable(groups[0][1]))
        for _, lists in groups[1:]:
            if not found:
                break
            found.intersection_update(chain.from_iterable(lists))
        return found


def _byte_class(codes: Iterable[int]) -> re.Pattern[bytes]:
    return re.compile(b"[" + b"".join(re.escape(bytes([code])) for code in codes) + b"]")


class Views:
    """The flag byte of every row, and per view (filter, include_deleted) its member count in each
    block of `block` rows: count, k-th member and pages without looking at every row."""

    def __init__(self, block: int = 1024) -> None:
        self.block = block
        self.flags = bytearray()
        self.keys = search.views()
        self.masks = [search.view_mask(name, deleted) for name, deleted in self.keys]
        self._position = {key: at for at, key in enumerate(self.keys)}
        self._patterns = [_byte_class(c for c in search.FLAG_CODES if mask[c]) for mask in self.masks]
        self._blocks: list[list[int]] = [[] for _ in self.keys]
        self._totals = [0 for _ in self.keys]

    def __len__(self) -> int:
        return len(self.flags)

    def view(self, filter_name: str, include_deleted: bool) -> int:
        return self._position[(filter_name, include_deleted)]

    def mask(self, view: int) -> bytes:
        return self.masks[view]

    def total(self, view: int) -> int:
        return self._totals[view]

    def extend(self, flags: bytes | bytearray) -> None:
        """Add rows in bulk (seeding): counts per block by C-speed translate + count."""
        start = len(self.flags)
        self.flags.extend(flags)
        for view, mask in enumerate(self.masks):
            members = self.flags.translate(mask.ljust(256, b"\0"))
            blocks = self._blocks[view]
            first = start // self.block
            if blocks and start % self.block:  # finish the partly filled block
                first += 1
                blocks[-1] += members.count(1, start, first * self.block)
            for at in range(first * self.block, len(self.flags), self.block):
                blocks.append(members.count(1, at, at + self.block))
            self._totals[view] = sum(blocks)

    def append(self, flags: int) -> None:
        row = len(self.flags)
        self.flags.append(flags)
        new_block = row % self.block == 0
        for view, mask in enumerate(self.masks):
            blocks = self._blocks[view]
            if new_block:
                blocks.append(0)
            if mask[flags]:
                blocks[-1] += 1
                self._totals[view] += 1

    def set(self, row: int, flags: int) -> None:
        old = self.flags[row]
        if old == flags:
            return
        self.flags[row] = flags
        block = row // self.block
        for view, mask in enumerate(self.masks):
            change = mask[flags] - mask[old]
            if change:
                self._blocks[view][block] += change
                self._totals[view] += change

    def select(self, view: int, rank: int) -> int:
        """The row of the view's `rank`-th member (0-based, oldest first)."""
        sums = list(accumulate(self._blocks[view]))
        block = bisect_right(sums, rank)
        before = sums[block - 1] if block else 0
        found = self._patterns[view].finditer(self.flags, block * self.block)
        return next(islice(found, rank - before, None)).start()

    def newest_first(self, view: int, start: int, stop: int) -> list[int]:
        """The view's members at newest-first positions [start, stop)."""
        if start >= stop:
            return []
        total = self._totals[view]
        first = self.select(view, total - stop)
        rows = [m.start() for m in islice(self._patterns[view].finditer(self.flags, first), stop - start)]
        rows.reverse()
        return rows


# -- the customer table -------------------------------------------------------------------------
@dataclass
class SeedBatch:
    """Customers generated in bulk (`seeding.py`), one list entry per customer, oldest first."""

    uuid: list[str]
    first_name: list[str]
    last_name: list[str]
    company_name: list[str | None]
    email: list[str | None]
    phone: array[int]  # ten digits, or NO_PHONE
    flags: bytearray
    notify: bytearray  # index into NOTIFY_VIA
    physical: list[Address | None]
    billing: list[Address | None]
    location: list[str | None]
    notes: list[str | None]
    internal_flags: list[dict[str, Any] | None]
    created: array[int]  # ms since the epoch
    updated: array[int]
    deleted: array[int]  # meaningful where flags has DELETED


class CustomerTable:
    """One company's customers. Row numbers are creation order; nothing is ever removed (soft
    delete sets a flag), so a row number is a stable handle."""

    def __init__(self, block: int = 1024) -> None:
        self.uuid: list[str] = []
        self.first_name: list[str] = []
        self.last_name: list[str] = []
        self.company_name: list[str | None] = []
        self.email: list[str | None] = []
        self.phone: array[int] = array("q")
        self.notify = bytearray()
        self.physical: list[Address | None] = []
        self.billing: list[Address | None] = []
        self.location: list[str | None] = []
        self.notes: list[str | None] = []
        self.internal_flags: list[dict[str, Any] | None] = []
        self.created: array[int] = array("q")
        self.updated: array[int] = array("q")
        self.deleted: array[int] = array("q")
        self.views = Views(block)
        self.by_uuid: dict[str, int] = {}
        self.emails: SortedPairs[str] = SortedPairs([], array("i"))
        self.phones: SortedPairs[int] = SortedPairs(array("q"), array("i"))
        self.names = WordIndex()
        # row -> its built document, for the rows read most recently; dropped on every change
        self._documents: OrderedDict[int, dict[str, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.uuid)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_documents"] = OrderedDict()  # a cache: not worth a byte of the --state-file
        return state

    # reading --------------------------------------------------------------------------------
    def find(self, uuid: str) -> int | None:
        """The row of a live (not soft-deleted) customer, or None."""
        row = self.by_uuid.get(uuid.lower())
        if row is None or self.views.flags[row] & DELETED:
            return None
        return row

    def record(self, row: int) -> dict[str, Any]:
        """The Customer object, every attribute of the document's table (a fresh dict each call)."""
        cached = self._documents.get(row)
        if cached is None:
            cached = self._build(row)
            if len(self._documents) >= DOCUMENT_CACHE:
                self._documents.popitem(last=False)  # the oldest built (O(1), unlike a dict's first key)
            self._documents[row] = cached
        return dict(cached)

    def _build(self, row: int) -> dict[str, Any]:
        flags = self.views.flags[row]
        physical = self.physical[row] or NO_ADDRESS
        billing = self.billing[row] or NO_ADDRESS
        phone = self.phone[row]
        return {
            "uuid": self.uuid[row],
            "first_name": self.first_name[row],
            "last_name": self.last_name[row],
            "company_name": self.company_name[row],
            "email": self.email[row],
            "phone": None if phone == NO_PHONE else search.format_phone(phone),
            "customer_type": "Commercial" if flags & COMMERCIAL else "Residential",
            "is_vip": bool(flags & VIP),
            "physical_address1": physical[0],
            "physical_address2": physical[1],
            "physical_city": physical[2],
            "physical_state": physical[3],
            "physical_zip": physical[4],
            "billing_address1": billing[0],
            "billing_address2": billing[1],
            "billing_city": billing[2],
            "billing_state": billing[3],
            "billing_zip": billing[4],
            "primary_service_location_uuid": self.location[row],
            "notes": self.notes[row],
            "internal_flags": self.internal_flags[row],
            "on_my_way_notify_via": NOTIFY_VIA[self.notify[row]],
            "created_at": iso_ms(self.created[row]),
            "updated_at": iso_ms(self.updated[row]),
            "deleted_at": iso_ms(self.deleted[row]) if flags & DELETED else None,
        }

    def matching(self, query: SearchQuery) -> set[int]:
        """Rows the search term finds (any view), from the indexes."""
        found = self.names.rows_matching(query.words)
        found.update(self.emails.between(query.text, search.prefix_end(query.text)))
        if query.phone_prefix is not None:
            found.update(self.phones.between(*search.phone_range(query.phone_prefix)))
        row = self.by_uuid.get(query.text)
        if row is not None:
            found.add(row)
        return found

    def page(
        self, filter_name: str, include_deleted: bool, query: SearchQuery | None, page: int, limit: int
    ) -> tuple[list[int], int]:
        """(rows of the page, newest first; total in the view)."""
        view = self.views.view(filter_name, include_deleted)
        if query is None:
            total = self.views.total(view)
            start, stop = search.page_bounds(total, page, limit)
            return self.views.newest_first(view, start, stop), total
        mask, flags = self.views.mask(view), self.views.flags
        hits = search.newest_first(row for row in self.matching(query) if mask[flags[row]])
        start, stop = search.page_bounds(len(hits), page, limit)
        return hits[start:stop], len(hits)

    # writing --------------------------------------------------------------------------------
    def create(self, uuid: str, values: Mapping[str, Any], now_ms: int) -> int:
        """Add a customer from validated attributes (those not given are null / defaults)."""
        row = len(self.uuid)
        self.uuid.append(uuid.lower())
        self.by_uuid[uuid.lower()] = row
        self.first_name.append(values["first_name"])
        self.last_name.append(values["last_name"])
        self.names.add(row, search.name_words(values["first_name"], values["last_name"]))
        for name in ("company_name", "email", "notes"):
            getattr(self, name).append(values.get(name))
        self.location.append(values.get("primary_service_location_uuid"))
        email = values.get("email")
        if email is not None:
            self.emails.add(search.fold(email), row)
        phone = values.get("phone")
        number = NO_PHONE if phone is None else search.phone_digits(phone)
        self.phone.append(number)
        if number != NO_PHONE:
            self.phones.add(number, row)
        self.notify.append(NOTIFY_VIA.index(values.get("on_my_way_notify_via")))
        self.physical.append(_address(NO_ADDRESS, "physical", values))
        self.billing.append(_address(NO_ADDRESS, "billing", values))
        self.internal_flags.append(values.get("internal_flags"))
        self.created.append(now_ms)
        self.updated.append(now_ms)
        self.deleted.append(0)
        self.views.append(_flags(0, values))
        return row

    def update(self, row: int, changes: Mapping[str, Any], now_ms: int) -> None:
        """Partial update: only the attributes present change; read-only ones are ignored."""
        first = changes.get("first_name", self.first_name[row])
        last = changes.get("last_name", self.last_name[row])
        if first != self.first_name[row] or last != self.last_name[row]:
            old = search.name_words(self.first_name[row], self.last_name[row])
            new = search.name_words(first, last)
            self.names.remove(row, [w for w in old if w not in new])
            self.names.add(row, [w for w in new if w not in old])
            self.first_name[row], self.last_name[row] = first, last
        if "email" in changes:
            old_email, email = self.email[row], changes["email"]
            if old_email is not None:
                self.emails.remove(search.fold(old_email), row)
            if email is not None:
                self.emails.add(search.fold(email), row)
            self.email[row] = email
        if "phone" in changes:
            if self.phone[row] != NO_PHONE:
                self.phones.remove(self.phone[row], row)
            number = NO_PHONE if changes["phone"] is None else search.phone_digits(changes["phone"])
            if number != NO_PHONE:
                self.phones.add(number, row)
            self.phone[row] = number
        for name in ("company_name", "notes", "internal_flags"):
            if name in changes:
                getattr(self, name)[row] = changes[name]
        if "primary_service_location_uuid" in changes:
            self.location[row] = changes["primary_service_location_uuid"]
        if "on_my_way_notify_via" in changes:
            self.notify[row] = NOTIFY_VIA.index(changes["on_my_way_notify_via"])
        self.physical[row] = _address(self.physical[row] or NO_ADDRESS, "physical", changes)
        self.billing[row] = _address(self.billing[row] or NO_ADDRESS, "billing", changes)
        self.views.set(row, _flags(self.views.flags[row], changes))
        self.updated[row] = now_ms
        self._documents.pop(row, None)

    def soft_delete(self, row: int, now_ms: int) -> None:
        self.views.set(row, self.views.flags[row] | DELETED)
        self.deleted[row] = now_ms
        self.updated[row] = now_ms
        self._documents.pop(row, None)

    def load(self, batch: SeedBatch) -> None:
        """Add generated customers in bulk, building the indexes in one pass each."""
        if len(self):
            raise ValueError("bulk loading is for an empty table (seeding at start-up)")
        count = len(batch.uuid)
        self.uuid, self.first_name, self.last_name = batch.uuid, batch.first_name, batch.last_name
        self.company_name, self.email, self.phone = batch.company_name, batch.email, batch.phone
        self.notify, self.physical, self.billing = batch.notify, batch.physical, batch.billing
        self.location, self.notes, self.internal_flags = batch.location, batch.notes, batch.internal_flags
        self.created, self.updated, self.deleted = batch.created, batch.updated, batch.deleted
        self.by_uuid = dict(zip(batch.uuid, range(count), strict=True))
        if len(self.by_uuid) != count:
            raise ValueError("seeded uuids must be unique")
        with_email = [row for row in range(count) if batch.email[row] is not None]
        keys = [search.fold(batch.email[row] or "") for row in with_email]
        order = sorted(range(len(with_email)), key=keys.__getitem__)
        self.emails = SortedPairs([keys[at] for at in order], array("i", [with_email[at] for at in order]))
        phones = batch.phone
        with_phone = sorted((row for row in range(count) if phones[row] != NO_PHONE), key=phones.__getitem__)
        self.phones = SortedPairs(array("q", [phones[row] for row in with_phone]), array("i", with_phone))
        words: dict[str, list[str]] = {}
        add = self.names.add
        for row, (first, last) in enumerate(zip(batch.first_name, batch.last_name, strict=True)):
            pair = f"{first}\x00{last}"
            found = words.get(pair)
            if found is None:
                found = words[pair] = search.name_words(first, last)
            add(row, found)
        self.views.extend(batch.flags)


def _flags(flags: int, values: Mapping[str, Any]) -> int:
    if "customer_type" in values:
        flags = flags | COMMERCIAL if values["customer_type"] == "Commercial" else flags & ~COMMERCIAL
    if "is_vip" in values:
        flags = flags | VIP if values["is_vip"] else flags & ~VIP
    return flags


_ADDRESS_FIELDS = {kind: tuple(f"{kind}_{part}" for part in ADDRESS_PARTS) for kind in ("physical", "billing")}


def _address(current: Address, kind: str, values: Mapping[str, Any]) -> Address | None:
    names = _ADDRESS_FIELDS[kind]
    if values.keys().isdisjoint(names):  # the usual case on create: no address sent
        return None if current == NO_ADDRESS else current
    a1, a2, city, state, zip_code = (values.get(name, old) for name, old in zip(names, current, strict=True))
    updated: Address = (a1, a2, city, state, zip_code)
    return None if updated == NO_ADDRESS else updated


# -- usage --------------------------------------------------------------------------------------
@dataclass
class Usage:
    period: tuple[int, int]  # (year, month) of the virtual clock
    count: int = 0


def next_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


class UsageMeter:
    """Requests per company per calendar month (UTC) of the virtual clock."""

    def __init__(self) -> None:
        self._usage: dict[str, Usage] = {}
        self._resets: dict[tuple[int, int], str] = {}

    def current(self, company_id: str, now: datetime) -> Usage:
        if now.tzinfo is not UTC:
            now = now.astimezone(UTC)
        period = (now.year, now.month)
        usage = self._usage.get(company_id)
        if usage is None or usage.period != period:
            usage = self._usage[company_id] = Usage(period)
        return usage

    def admit(self, company_id: str, now: datetime, quota: int) -> bool:
        """Count one request; False (and not counted) when the quota is used up (0 = unlimited)."""
        usage = self.current(company_id, now)
        if quota and usage.count >= quota:
            return False
        usage.count += 1
        return True

    def headers(self, company_id: str, now: datetime, quota: int) -> dict[str, str]:
        usage = self.current(company_id, now)
        if usage.period not in self._resets:  # formatted once per month, not per request
            self._resets[usage.period] = isoformat(next_month(now.astimezone(UTC)))
        return {
            "X-Usage-Count": str(usage.count),
            "X-Usage-Limit": str(quota),
            "X-Usage-Resets": self._resets[usage.period],
        }


# -- the whole API's state ----------------------------------------------------------------------
@dataclass(frozen=True)
class Company:
    id: str
    name: str


@dataclass
class CustomTradesStore:
    uuid_rng: Random
    companies: dict[str, Company] = field(default_factory=dict)
    key_hashes: dict[bytes, str] = field(default_factory=dict)  # sha256(key) digest -> company id
    plain_keys: dict[str, str] = field(default_factory=dict)  # company id -> key (for credentials)
    tables: dict[str, CustomerTable] = field(default_factory=dict)
    usage: UsageMeter = field(default_factory=UsageMeter)

    def add_company(self, company: Company, key: str) -> None:
        self.companies[company.id] = company
        self.key_hashes[secrets.sha256(key)] = company.id
        self.plain_keys[company.id] = key
        self.tables[company.id] = CustomerTable()

    def company_for_key(self, key: str) -> Company | None:
        """Constant time in the key: its hash is compared with every stored hash."""
        digest = secrets.sha256(key)
        found: str | None = None
        for stored, company_id in self.key_hashes.items():
            if hmac.compare_digest(digest, stored):
                found = company_id
        return self.companies.get(found) if found is not None else None

    def table(self, company: Company) -> CustomerTable:
        return self.tables[company.id]

    def new_uuid(self) -> str:
        """A fresh customer uuid, unique across companies (deterministic under --seed)."""
        while True:
            uuid = uuid_from_bits(self.uuid_rng.getrandbits(128))
            if all(uuid not in table.by_uuid for table in self.tables.values()):
                return uuid
