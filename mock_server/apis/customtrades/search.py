"""What `GET /v1/customers` means, as pure functions: the search rule, the filters, the order and
the page arithmetic. No state and no HTTP here; `store.py` answers the same questions with
indexes, and the tests check it against `matches` (the rule written plainly).

The search rule (assumed: the document says only "searches name, email, phone, customer_id").
The term is trimmed and case-folded; an empty term is no search. A customer matches when any of:
- names: every word of the term (a run of letters/digits, `\\w+`) is the start of a word of the
  customer's first or last name ("jo", "john d", "doe john", "o'brien" all find John O'Brien Doe);
- email: the e-mail address starts with the term ("john.doe", "john.doe1@example.com");
- phone: the term is only digits and separators (space, `-`, `.`, `(`, `)`) and its digits start
  the phone's ten digits ("206-555", "(206) 555-12", "2065551234");
- id: the term is the customer's `uuid` (any case).
Prefixes rather than substrings: a prefix is answered from a sorted index in O(log n + matches),
as a vendor's database index would; a substring of a million e-mails is a scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# -- flags: one byte per customer ---------------------------------------------------------------
COMMERCIAL = 1  # customer_type == "Commercial" (else "Residential")
VIP = 2  # is_vip
DELETED = 4  # soft-deleted (deleted_at is set)
FLAG_CODES = range(8)

FILTERS = ("all", "residential", "commercial", "vip")


def in_view(flags: int, filter_name: str, include_deleted: bool) -> bool:
    """Whether a customer with these flags is listed under `filter` / `include_deleted`."""
    if flags & DELETED and not include_deleted:
        return False
    if filter_name == "residential":
        return not flags & COMMERCIAL
    if filter_name == "commercial":
        return bool(flags & COMMERCIAL)
    if filter_name == "vip":
        return bool(flags & VIP)
    if filter_name == "all":
        return True
    raise ValueError(f"unknown filter {filter_name!r}; expected one of {', '.join(FILTERS)}")


def view_mask(filter_name: str, include_deleted: bool) -> bytes:
    """`mask[flags]` is 1 when a customer with those flags is in the view, else 0."""
    return bytes(int(in_view(code, filter_name, include_deleted)) for code in FLAG_CODES)


def views() -> list[tuple[str, bool]]:
    """Every (filter, include_deleted) combination a list request can ask for."""
    return [(name, deleted) for deleted in (False, True) for name in FILTERS]


# -- text ---------------------------------------------------------------------------------------
_WORD = re.compile(r"\w+")
_PHONE_TERM = re.compile(r"[0-9\s().\-]+")
_NOT_DIGIT = re.compile(r"[^0-9]")
PHONE_DIGITS = 10


def fold(text: str) -> str:
    """Case-insensitive form of a text (Unicode case folding: `Straße` -> `strasse`)."""
    folded = text.casefold()
    return text if folded == text else folded  # keep the original object: no second copy in memory


def words(text: str) -> list[str]:
    """The searchable words of a name: runs of letters and digits, case-folded, each once."""
    return list(dict.fromkeys(_WORD.findall(text.casefold())))


def name_words(first_name: str, last_name: str) -> list[str]:
    return list(dict.fromkeys([*words(first_name), *words(last_name)]))


def phone_digits(phone: str) -> int:
    """`206-555-1234` -> 2065551234 (phones are validated as xxx-xxx-xxxx before they get here)."""
    digits = _NOT_DIGIT.sub("", phone)
    if len(digits) != PHONE_DIGITS:
        raise ValueError(f"a phone number has {PHONE_DIGITS} digits (xxx-xxx-xxxx), got {phone!r}")
    return int(digits)


def format_phone(number: int) -> str:
    text = f"{number:010d}"
    return f"{text[:3]}-{text[3:6]}-{text[6:]}"


@dataclass(frozen=True)
class SearchQuery:
    text: str  # trimmed, case-folded
    words: tuple[str, ...]  # its words, each once
    phone_prefix: str | None  # its digits, when it reads as (part of) a phone number


def parse_search(raw: str | None) -> SearchQuery | None:
    """The search term as the indexes use it; None when there is nothing to search for."""
    if raw is None:
        return None
    text = raw.strip().casefold()
    if not text:
        return None
    digits = _NOT_DIGIT.sub("", text) if _PHONE_TERM.fullmatch(text) else ""
    phone_prefix = digits if 0 < len(digits) <= PHONE_DIGITS else None
    return SearchQuery(text, tuple(dict.fromkeys(_WORD.findall(text))), phone_prefix)


def matches(
    query: SearchQuery,
    *,
    first_name: str,
    last_name: str,
    email: str | None,
    phone: str | None,
    uuid: str,
) -> bool:
    """The search rule, written plainly (the definition the indexes must agree with)."""
    if query.words:
        own = name_words(first_name, last_name)
        if all(any(word.startswith(term) for word in own) for term in query.words):
            return True
    if email is not None and email.casefold().startswith(query.text):
        return True
    if (
        phone is not None
        and query.phone_prefix is not None
        and f"{phone_digits(phone):010d}".startswith(query.phone_prefix)
    ):
        return True
    return uuid.lower() == query.text


def prefix_end(prefix: str) -> str | None:
    """The least string greater than every string starting with `prefix` (None: no bound)."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    return stripped[:-1] + chr(ord(stripped[-1]) + 1)


def phone_range(prefix: str) -> tuple[int, int]:
    """The ten-digit numbers starting with these digits, as [low, high)."""
    scale = 10 ** (PHONE_DIGITS - len(prefix))
    return int(prefix) * scale, (int(prefix) + 1) * scale


# -- order and pages ----------------------------------------------------------------------------
# Order (assumed): newest first, i.e. the reverse of the order in which the customers were stored.
# That is `created_at` descending for customers created through the API, unless the virtual clock
# was set back; seeded customers are stored oldest first.


def total_pages(total: int, limit: int) -> int:
    return -(-total // limit)


def page_bounds(total: int, page: int, limit: int) -> tuple[int, int]:
    """Positions [start, stop) of a page in the newest-first list; empty past the end."""
    start = min((page - 1) * limit, total)
    return start, min(start + limit, total)


def newest_first(rows: Iterable[int]) -> list[int]:
    return sorted(rows, reverse=True)
