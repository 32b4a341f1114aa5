"""HAR 1.2 files: a streaming reader that never loads a file whole, a crash-safe writer, and the
redaction applied to every recorded exchange.

The writer keeps the file a complete HAR document after every entry: each entry goes out as one
line, together with the closing `]}}` that it overwrites, in a single `pwrite` (so a `kill -9`
leaves the last complete entry and a valid document). `fsync` runs at most once a second and at
close: a process crash loses nothing written, a power cut at most the last second. Should a write
still be cut short (a full disk), the reader keeps every complete entry before it and reports the
incomplete tail instead of failing.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import parse_qsl, urlencode

import orjson

from mock_server.journal import REDACTED
from mock_server.journal import redact as _journal_redact

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "cap-api-access-token",
        "x-cap-api-auth-key",
        "x-cap-api-oauth-token",
        "cookie",
        "set-cookie",
        "x-admin-token",
    }
)
_AUTH_SCHEMES = ("bearer", "basic", "digest", "token")
CREATOR = {"name": "loyalty-mock proxy", "version": "1.2"}


class HarError(ValueError):
    """The file is not a HAR this tool can read (one clear sentence)."""


# -- redaction ------------------------------------------------------------------------------
def redact_header(name: str, value: str) -> str:
    """`***` for a secret header; an Authorization keeps its scheme word (`Bearer ***`)."""
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() in _AUTH_SCHEMES:
        return f"{scheme} {REDACTED}"
    return REDACTED


def _secret_key(key: str) -> bool:
    return bool(_journal_redact({key: "x"})[key] == REDACTED)


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret-looking string replaced by `***` (the journal's
    rule for names; flags such as `needs_password_change: true` keep their type)."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(v, str) and v and _secret_key(str(k)) else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _redacted_pairs(query: str) -> tuple[tuple[str, str], ...]:
    return tuple((k, REDACTED if v and _secret_key(k) else v) for k, v in parse_qsl(query, keep_blank_values=True))


# a client repeats its URL queries (paging, filters): each is parsed once (short ones, bounded)
_url_query_pairs = functools.lru_cache(maxsize=1024)(_redacted_pairs)


def redact_query(query: str) -> str:
    if not query:
        return query
    return urlencode(_redacted_pairs(query), safe="*")


# what a secret field's name contains (the journal's rule, `-` read as `_`), as it can appear in text
_SECRET_WORDS = ("password", "secret", "api_key", "api-key", "apikey", "token", "authorization")


def _may_name_a_secret(text: str) -> bool:
    """False when no JSON member name in `text` can be a secret one: none of the words appears in
    it (lower-cased, as the rule compares names) and no `\\u` escape could spell one."""
    lowered = text.lower()
    return "\\u" in lowered or any(word in lowered for word in _SECRET_WORDS)


def redact_body(text: str, mime_type: str) -> str:
    """A JSON or form body with password/secret/token fields replaced; anything else unchanged."""
    media = mime_type.split(";", 1)[0].strip().lower()
    if not text:
        return text
    if media == "application/x-www-form-urlencoded":
        return redact_query(text)
    if media.endswith("json") or media.endswith("+json"):
        if not _may_name_a_secret(text):
            return text  # nothing to redact: the exact text, without parsing it
        try:
            document = json.loads(text)
        except ValueError:
            return text
        cleaned = redact(document)
        if cleaned == document:
            return text  # nothing secret: keep the vendor's exact text
        return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":"))
    return text


# -- building entries -------------------------------------------------------------------------
def _headers(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": redact_header(k, v)} for k, v in pairs]


def _content_type(pairs: list[tuple[str, str]]) -> str:
    return next((v for k, v in pairs if k.lower() == "content-type"), "")


def _body_text(raw: bytes, mime_type: str) -> tuple[str, str | None]:
    """(text, encoding): UTF-8 text redacted, anything else base64 as HAR allows."""
    try:
        return redact_body(raw.decode("utf-8"), mime_type), None
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def build_entry(
    *,
    started: str,
    duration_ms: float,
    method: str,
    url: str,
    request_headers: list[tuple[str, str]],
    request_body: bytes,
    status: int,
    status_text: str,
    response_headers: list[tuple[str, str]],
    response_body: bytes,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One HAR 1.2 entry with every secret redacted (headers, query, JSON and form bodies)."""
    base, _, query = url.partition("?")
    pairs = (_url_query_pairs(query) if len(query) <= 2048 else _redacted_pairs(query)) if query else ()
    if query:
        url = f"{base}?{urlencode(pairs, safe='*')}"
    request: dict[str, Any] = {
        "method": method,
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _headers(request_headers),
        "queryString": [{"name": k, "value": v} for k, v in pairs],
        "headersSize": -1,
        "bodySize": len(request_body),
    }
    if request_body:
        mime = _content_type(request_headers)
        text, encoding = _body_text(request_body, mime)
        request["postData"] = {"mimeType": mime, "text": text, **({"encoding": encoding} if encoding else {})}
    mime = _content_type(response_headers)
    text, encoding = _body_text(response_body, mime)
    content: dict[str, Any] = {"size": len(response_body), "mimeType": mime, "text": text}
    if encoding:
        content["encoding"] = encoding
    wait = round(duration_ms, 3)
    entry: dict[str, Any] = {
        "startedDateTime": started,
        "time": wait,
        "request": request,
        "response": {
            "status": status,
            "statusText": status_text,
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": _headers(response_headers),
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": len(response_body),
        },
        "cache": {},
        "timings": {"send": 0, "wait": wait, "receive": 0},
    }
    if extra:
        entry.update(extra)
    return entry


def dump_entry(entry: Mapping[str, Any]) -> bytes:
    """One entry as the compact UTF-8 JSON line the writer appends (orjson; the standard library
    for what orjson refuses, e.g. a string with a lone surrogate, written as its `\\u` escape)."""
    try:
        return orjson.dumps(entry)
    except (TypeError, orjson.JSONEncodeError):
        pass
    try:
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(entry, separators=(",", ":")).encode("ascii")


# -- writing ----------------------------------------------------------------------------------
_TRAILER = b"\n]}}\n"


class HarWriter:
    """Appends entries to a HAR 1.2 file that is complete after every `append` (see module doc)."""

    def __init__(self, path: str | os.PathLike[str], fsync_interval: float = 1.0) -> None:
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        head = json.dumps({"version": "1.2", "creator": CREATOR, "entries": []})
        prefix = ('{"log": ' + head[: head.rindex("[") + 1]).encode("utf-8")
        os.write(self._fd, prefix + _TRAILER)
        self._end = len(prefix)  # where the trailer starts: the next entry overwrites it
        self.count = 0
        self._fsync_interval = fsync_interval
        self._synced = time.monotonic()
        os.fsync(self._fd)

    def append(self, entry: Mapping[str, Any]) -> None:
        data = (b",\n" if self.count else b"\n") + dump_entry(entry) + _TRAILER
        written = os.pwrite(self._fd, data, self._end)
        if written != len(data):  # pragma: no cover - a full disk: the reader keeps what came before
            raise OSError(f"short write to {self.path} ({written} of {len(data)} bytes)")
        self._end += len(data) - len(_TRAILER)
        self.count += 1
        now = time.monotonic()
        if now - self._synced >= self._fsync_interval:
            os.fsync(self._fd)
            self._synced = now

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


# -- reading ----------------------------------------------------------------------------------
_ENTRIES = re.compile(r'"entries"\s*:\s*\[')
_CHUNK = 1 << 20


@dataclass
class HarReader:
    """Streams `log.entries` of a HAR file one entry at a time (memory: the largest entry plus a
    chunk). After iteration, `truncated` says whether the file ended inside an entry."""

    path: str
    truncated: bool = False
    count: int = 0
    creator: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            handle = open(self.path, encoding="utf-8")  # noqa: SIM115 - closed in the finally below
        except OSError as exc:
            raise HarError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            yield from self._entries(handle)
        except UnicodeDecodeError:
            raise HarError(f"{self.path} is not a HAR file (not UTF-8 text)") from None
        finally:
            handle.close()

    def _entries(self, handle: IO[str]) -> Iterator[dict[str, Any]]:
        decoder = json.JSONDecoder()
        buffer = handle.read(_CHUNK)
        if not buffer.lstrip().startswith("{"):
            raise HarError(f"{self.path} is not a HAR file (expected a JSON object with a `log`)")
        eof = False
        while True:
            found = _ENTRIES.search(buffer)
            if found:
                break
            if eof:
                raise HarError(f"{self.path} is not a HAR file (no `log.entries` list)")
            more = handle.read(_CHUNK)
            eof = not more
            buffer = buffer[-64:] + more if len(buffer) > 4 * _CHUNK else buffer + more
        creator = re.search(r'"creator"\s*:\s*(\{[^{}]*\})', buffer[: found.start()])
        if creator:
            with contextlib.suppress(ValueError):
                self.creator = json.loads(creator.group(1))
        position = found.end()
        want = _CHUNK
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n,":
                position += 1
            if position >= len(buffer):
                if eof:
                    self.truncated = True  # no closing `]`
                    return
                more = handle.read(want)
                eof = not more
                buffer, position = buffer[position:] + more, 0
                continue
            if buffer[position] == "]":
                return
            try:
                entry, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError:
                if eof:
                    self.truncated = True  # the writer was cut off inside this entry
                    return
                more = handle.read(want)
                want = min(want * 2, 64 * _CHUNK)
                eof = not more
                buffer, position = buffer[position:] + more, 0
                continue
            want = _CHUNK
            if not isinstance(entry, dict):
                raise HarError(f"{self.path}: entry {self.count + 1} is not a JSON object")
            self.count += 1
            yield entry
            position = end
            if position > _CHUNK:
                buffer, position = buffer[position:], 0
