"""The proxy's HTTP/1.1 client to one vendor: a pool of keep-alive connections, each an asyncio
protocol that parses the vendor's answer itself.

aiohttp's `ClientSession.request` costs about as much CPU as the rest of a proxied exchange
together (URL objects, a request and a response object, cookie and redirect machinery, traces,
timers); a proxy needs none of it. What it needs is here: write the request (one `write`), read
one answer framed as RFC 9112 section 6.3 says (no body for HEAD, 1xx, 204 and 304; chunked;
Content-Length; or until the vendor closes), and hand back the status, reason, headers (in the
vendor's order and spelling) and body bytes (still compressed, if they came so). A connection is
reused when the answer allows it (HTTP/1.1 without `Connection: close`, a delimited body, nothing
left over); one that went stale while idle is retried once on a new connection for idempotent
methods (RFC 9112 section 9.3.1, as aiohttp does). Interim 1xx answers (100, 103) are skipped.

Anything that is not a readable HTTP/1.1 answer (a bad status line, a header line without a
colon, conflicting lengths, a head over 64 KiB, a body over the proxy's limit) raises
`UpstreamProtocolError`; a connection that fails or closes early raises `UpstreamConnectionError`.
The caller bounds the whole exchange in time (`asyncio.timeout`); a cancelled exchange closes its
connection, so no late answer can be read as the next request's.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from yarl import URL

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# methods that carry no body unless given one (aiohttp sends `Content-Length: 0` for the others)
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"})
MAX_HEAD_BYTES = 64 * 1024
_HEX = frozenset(b"0123456789abcdefABCDEF")
# header lines: a token (RFC 9110 section 5.1), a colon, a value without CR, LF or NUL; CRLF between
_FIELDS = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\0]*(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\0]*)*")


class UpstreamError(Exception):
    """The exchange with the vendor failed (the message says how)."""


class UpstreamConnectionError(UpstreamError):
    """The vendor could not be reached, or the connection failed before the answer was complete."""


class UpstreamProtocolError(UpstreamError):
    """The vendor sent something that is not an HTTP/1.1 answer the proxy can pass on."""


class _Stale(UpstreamConnectionError):
    """A reused connection closed before a byte of the answer came: safe to retry idempotent requests."""


@dataclass(slots=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


_NO_BODY, _LENGTH, _CHUNKED, _UNTIL_CLOSE = 0, 1, 2, 3


def _tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",") if token.strip()}


def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]], bool]:
    """(status, reason, headers, HTTP/1.1?) from the bytes before the blank line."""
    status_line, _, fields = head.partition(b"\r\n")
    if not status_line.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")) or b"\n" in status_line or b"\r" in status_line:
        raise UpstreamProtocolError(f"the answer does not start with an HTTP/1.x status line: {status_line[:80]!r}")
    code = status_line[9:12]
    if len(code) != 3 or not code.isdigit() or status_line[12:13] not in (b"", b" ") or code[0] == 0x30:
        raise UpstreamProtocolError(f"the status line has no valid status code: {status_line[:80]!r}")
    reason = status_line[13:].decode("utf-8", "surrogateescape")
    headers: list[tuple[str, str]] = []
    if not fields:
        return int(code), reason, headers, status_line[5:8] == b"1.1"
    if _FIELDS.fullmatch(fields) is None:  # one scan for every line; the slow search only to say which
        line = next((line for line in fields.split(b"\r\n") if _FIELDS.fullmatch(line) is None), fields)
        raise UpstreamProtocolError(f"the answer has a malformed header line: {line[:80]!r}")
    for line in fields.split(b"\r\n"):
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("utf-8", "surrogateescape")))
    return int(code), reason, headers, status_line[5:8] == b"1.1"


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time, its answer parsed as it comes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_body: int) -> None:
        self._loop = loop
        self._max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._received = False
        self._head_request = False
        # the answer being read
        self._head: tuple[int, str, list[tuple[str, str]], bool] | None = None
        self._framing = _NO_BODY
        self._left = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._chunk_state = 0  # 0: size line, 1: data, 2: trailers
        self.keep_alive = False

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not `asyncio.Transport` subclasses, only alike
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._head is not None and self._framing == _UNTIL_CLOSE and exc is None:
            self._finish()  # the close delimits the body
        elif not self._received:
            waiter.set_exception(_Stale(f"the connection closed before an answer came ({exc or 'end of stream'})"))
        else:
            waiter.set_exception(
                UpstreamConnectionError(f"the connection closed in the middle of the answer ({exc or 'end of stream'})")
            )

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost decides what the end means

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted any more
            return
        self._received = True
        self._buffer += data
        try:
            self._parse()
        except UpstreamProtocolError as error:
            waiter.set_exception(error)
            self.close()

    # -- one exchange ------------------------------------------------------------------------
    def send(self, data: bytes, head_request: bool) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self._waiter = self._loop.create_future()
        self._received = False
        self._head_request = head_request
        self._head = None
        self.keep_alive = False
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _parse(self) -> None:
        buffer = self._buffer
        while self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end > MAX_HEAD_BYTES or (end < 0 and len(buffer) > MAX_HEAD_BYTES):
                raise UpstreamProtocolError(f"the answer's status line and headers exceed {MAX_HEAD_BYTES} bytes")
            if end < 0:
                return
            head = _parse_head(bytes(buffer[:end]))
            del buffer[: end + 4]
            status = head[0]
            if 100 <= status < 200:
                if status == 101:
                    raise UpstreamProtocolError("the vendor switched protocols (101), which the proxy cannot pass on")
                continue  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._start_body(head)
        if self._framing == _LENGTH:
            if len(buffer) >= self._left:
                self._parts.append(bytes(buffer[: self._left]))
                del buffer[: self._left]
                self._finish()
        elif self._framing == _CHUNKED:
            self._parse_chunks()
        elif self._framing == _UNTIL_CLOSE:
            self._size += len(buffer)
            self._check_size()
            self._parts.append(bytes(buffer))
            buffer.clear()
        else:
            self._finish()

    def _start_body(self, head: tuple[int, str, list[tuple[str, str]], bool]) -> None:
        status, _, headers, http11 = head
        self._head = head
        self._parts = []
        self._size = 0
        connection: set[str] = set()
        transfer: list[str] = []
        lengths: set[str] = set()
        for name, value in headers:
            lowered = name.lower()
            if lowered == "connection":
                connection |= _tokens(value)
            elif lowered == "transfer-encoding":
                transfer.extend(token.strip().lower() for token in value.split(",") if token.strip())
            elif lowered == "content-length":
                lengths.update(part.strip() for part in value.split(","))
        reusable = "close" not in connection if http11 else "keep-alive" in connection
        if self._head_request or status in (204, 304):
            self._framing = _NO_BODY
        elif transfer:
            if transfer[-1] == "chunked":
                self._framing, self._chunk_state, self._left = _CHUNKED, 0, 0
                reusable = reusable and not lengths  # both framings: answer it, then do not trust the connection
            else:
                self._framing, reusable = _UNTIL_CLOSE, False
        elif lengths:
            length = next(iter(lengths)) if len(lengths) == 1 else ""
            if not length.isdigit():
                raise UpstreamProtocolError(f"the answer has an invalid Content-Length: {', '.join(sorted(lengths))}")
            self._framing, self._left = _LENGTH, int(length)
            self._size = self._left
            self._check_size()
        else:
            self._framing, reusable = _UNTIL_CLOSE, False
        self.keep_alive = reusable

    def _check_size(self) -> None:
        if self._size > self._max_body:
            raise UpstreamProtocolError(f"the answer's body is over {self._max_body} bytes, the proxy's limit")

    def _parse_chunks(self) -> None:
        buffer = self._buffer
        while True:
            if self._chunk_state == 0:  # chunk-size [; extensions] CRLF
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 4096:
                        raise UpstreamProtocolError("a chunk size line of the answer is over 4096 bytes")
                    return
                digits = bytes(buffer[:end]).split(b";", 1)[0].strip(b" \t")
                if not digits or len(digits) > 16 or not _HEX.issuperset(digits):
                    raise UpstreamProtocolError(f"the answer has an invalid chunk size: {bytes(buffer[:end])[:40]!r}")
                del buffer[: end + 2]
                self._left = int(digits, 16)
                self._size += self._left
                self._check_size()
                self._chunk_state = 1 if self._left else 2
            elif self._chunk_state == 1:  # chunk-data CRLF
                if len(buffer) < self._left + 2:
                    return
                if buffer[self._left : self._left + 2] != b"\r\n":
                    raise UpstreamProtocolError("a chunk of the answer is not followed by CRLF")
                self._parts.append(bytes(buffer[: self._left]))
                del buffer[: self._left + 2]
                self._chunk_state = 0
            else:  # trailer fields (ignored, as aiohttp does) up to the blank line
                if buffer[:2] == b"\r\n":
                    del buffer[:2]
                    self._finish()
                    return
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(buffer) > MAX_HEAD_BYTES:
                        raise UpstreamProtocolError(f"the answer's trailer fields exceed {MAX_HEAD_BYTES} bytes")
                    return
                del buffer[: end + 4]
                self._finish()
                return

    def _finish(self) -> None:
        head, waiter = self._head, self._waiter
        assert head is not None and waiter is not None
        parts = self._parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._parts = []
        if self._buffer:  # more than the answer: never reuse the connection
            self.keep_alive = False
            self._buffer.clear()
        waiter.set_result(Answer(head[0], head[1], head[2], body))


def _expire(waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class UpstreamPool:
    """Keep-alive connections to one vendor base URL (no limit on how many are open at once; up
    to `max_idle` are kept between exchanges, each for at most `idle_timeout` seconds)."""

    def __init__(
        self,
        base: URL,
        *,
        max_body: int,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float = 15.0,
        max_idle: int = 100,
    ) -> None:
        if base.scheme not in ("http", "https") or not base.raw_host:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {base}")
        if base.raw_user or base.raw_password:
            raise ValueError(
                f"credentials in the upstream URL are not supported ({base.with_user(None)}); "
                "the client's own credentials are forwarded"
            )
        self.base = base
        self.prefix = base.raw_path.rstrip("/")
        self._host = base.raw_host
        self._port: int = base.port or (443 if base.scheme == "https" else 80)
        self._host_header = base.host_port_subcomponent or self._host
        self._ssl: ssl.SSLContext | None = None
        if base.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context()
        self._max_body = max_body
        self._idle: list[_Connection] = []
        self._idle_timeout = idle_timeout
        self._max_idle = max_idle

    def request_head(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
        """The request's bytes up to and including the blank line (`target`: the path after the
        base URL's path, with its query, as the client encoded it)."""
        lines = [f"{method} {self.prefix}{target} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        for name, value in headers:
            lines.append(f"{name}: {value}\r\n")
        if body or method not in _BODILESS_METHODS:
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("utf-8", "surrogateescape")

    async def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        while_waiting: Callable[[], None] | None = None,
        timeout: float | None = None,
    ) -> Answer:
        """Send one request and read its answer. `while_waiting` runs once, right after the
        request has gone out (work that can overlap with the vendor's). `timeout` bounds the
        whole exchange, connecting included: TimeoutError after that many seconds (one timer
        per exchange, armed on the connection's waiter: `asyncio.timeout` costs several times
        as much CPU, a cost every exchange pays)."""
        data = self.request_head(method, target, headers, body) + body
        head_request = method == "HEAD"
        retry = method in IDEMPOTENT_METHODS
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            connection = self._checkout()
            reused = connection is not None
            if connection is None:
                if deadline is None:
                    connection = await self._connect()
                else:
                    async with asyncio.timeout_at(deadline):
                        connection = await self._connect()
            timer: asyncio.TimerHandle | None = None
            try:
                waiter = connection.send(data, head_request)
                if deadline is not None:
                    timer = loop.call_at(deadline, _expire, waiter)
                if while_waiting is not None:
                    while_waiting()
                    while_waiting = None
                answer = await waiter
            except _Stale:
                connection.close()
                if reused and retry:
                    retry = False
                    continue
                raise
            except BaseException:  # a failure, a timeout, a cancellation: the connection is done
                connection.close()
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            if connection.keep_alive and not connection.closed:
                self._checkin(connection)
            else:
                connection.close()
            return answer

    def _checkout(self) -> _Connection | None:
        idle = self._idle
        if not idle:
            return None
        deadline = time.monotonic() - self._idle_timeout
        while idle:
            connection = idle.pop()
            transport = connection.transport
            if not connection.closed and connection.idle_since > deadline and transport and not transport.is_closing():
                return connection
            connection.close()
        return None

    def _checkin(self, connection: _Connection) -> None:
        if len(self._idle) >= self._max_idle:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(
                lambda: _Connection(loop, self._max_body),
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl is not None else None,
            )
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise UpstreamConnectionError(f"{type(exc).__name__}: {exc}") from exc
        return protocol

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
