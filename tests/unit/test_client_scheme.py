"""The scheme the mock writes into URLs (`base_url`, LOKE's issuer, next pages) when it sits
behind a proxy that terminates TLS: `X-Forwarded-Proto` from a proxy on this host (a loopback
peer) is believed, from anyone else, or with any other value, it is not."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from mock_server.dispatcher import client_scheme


class _Transport:
    def __init__(self, peer: Any) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default


def _scheme(peer: Any, forwarded: str | None) -> str:
    headers = CIMultiDict({"Host": "sandbox.example"})
    if forwarded is not None:
        headers["X-Forwarded-Proto"] = forwarded
    return client_scheme(make_mocked_request("GET", "/", headers=headers, transport=_Transport(peer)))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        (("127.0.0.1", 50000), "https", "https"),
        (("127.0.0.9", 50000), "HTTPS", "https"),  # all of 127/8, any case
        (("::1", 50000, 0, 0), "https", "https"),
        (("::ffff:127.0.0.1", 50000, 0, 0), "https", "https"),
        (("127.0.0.1", 50000), "https, http", "https"),  # the first proxy's, as nginx appends
        (("127.0.0.1", 50000), None, "http"),
        (("127.0.0.1", 50000), "gopher", "http"),  # not a scheme the mock writes
        (("127.0.0.1", 50000), "", "http"),
        (("203.0.113.7", 50000), "https", "http"),  # not a proxy on this host
        (("10.0.0.2", 50000), "https", "http"),
        ("/run/mock.sock", "https", "http"),  # a Unix socket: no address to trust
        (None, "https", "http"),
    ],
)
def test_forwarded_proto_is_believed_only_from_this_host(peer: Any, forwarded: str | None, expected: str) -> None:
    assert _scheme(peer, forwarded) == expected
