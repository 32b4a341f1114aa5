"""The one place this API speaks HTTP outwards: Let'sTrade calling the POS's own append-vouchers
endpoint (`--pos-callback-url`, seed 004 "QR Code Slip Printing", step 3)."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from mock_server import persistence
from mock_server.apis.base import Services

USER_AGENT = "loyalty-mock/letstrade-pos (append-vouchers)"


@dataclass
class PosReply:
    """What the POS answered, or why it did not (`status` None)."""

    status: int | None
    body: Any = None
    json_body: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    timed_out: bool = False
    duration_ms: float = 0.0
    request_headers: dict[str, str] = field(default_factory=dict)


async def append_vouchers(services: Services, url: str, payload: dict[str, Any]) -> PosReply:
    """The POS's answer; with `--state-file` it is logged with the request, and a replay of the
    log gets it back from there instead of calling the POS again."""
    replayed = persistence.replayed_input(services.replaying)
    if replayed is not None:
        return PosReply(**replayed)
    reply = await _call(services, url, payload)
    persistence.record_input(dataclasses.asdict(reply))
    return reply


async def _call(services: Services, url: str, payload: dict[str, Any]) -> PosReply:
    timeout_s = services.settings.pos_callback_timeout
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
    session: aiohttp.ClientSession | None = services.http
    own = session is None
    if session is None:  # services built without the app (tests of the engine); normally set at start-up
        session = aiohttp.ClientSession()
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 3)

    try:
        async with session.post(
            url,
            data=json.dumps(payload).encode("utf-8"),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            raw = await response.read()
            body: Any
            try:
                body, is_json = (json.loads(raw), True) if raw else (None, False)
            except ValueError:
                body, is_json = raw[:4096].decode("utf-8", errors="replace"), False
            return PosReply(
                response.status, body, is_json, dict(response.headers), duration_ms=elapsed(), request_headers=headers
            )
    except TimeoutError:
        return PosReply(
            None, error=f"the POS did not answer within {timeout_s:g} s", timed_out=True, duration_ms=elapsed(),
            request_headers=headers,
        )
    except (aiohttp.ClientError, ValueError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        return PosReply(
            None, error=f"the POS could not be reached: {reason}", duration_ms=elapsed(), request_headers=headers
        )
    finally:
        if own:
            await session.close()
