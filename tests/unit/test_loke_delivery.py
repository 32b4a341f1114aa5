"""LOKE delivery policy and signatures: the retry schedule (10/20/40/80 s, 5 attempts, only no
answer or >= 500 retried), the reorder buffer, HMAC signatures over the raw body."""

from __future__ import annotations

import hashlib
import hmac
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.apis.loke import delivery, signing


def test_backoff_doubles_from_ten_seconds() -> None:
    assert [delivery.backoff_seconds(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    with pytest.raises(ValueError):
        delivery.backoff_seconds(0)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(None, "failed"), (500, "failed"), (503, "failed"), (599, "failed"), (200, "delivered"), (204, "delivered"),
     (400, "rejected"), (404, "rejected"), (410, "rejected"), (429, "rejected"), (301, "rejected"), (100, "rejected")],
)
def test_only_no_answer_or_5xx_fails(status: int | None, outcome: str) -> None:
    assert delivery.classify(status) == outcome


def test_documented_scenarios() -> None:
    assert delivery.schedule([500, 500, 200]) == [(1, 0), (2, 10), (3, 30)]
    assert delivery.schedule([400]) == [(1, 0)]
    assert delivery.schedule([None] * 9) == [(1, 0), (2, 10), (3, 30), (4, 70), (5, 150)]


@given(st.lists(st.one_of(st.none(), st.integers(100, 599)), max_size=8))
def test_schedule_properties(statuses: list[int | None]) -> None:
    made = delivery.schedule(statuses)
    assert 1 <= len(made) <= delivery.MAX_ATTEMPTS
    assert [n for n, _ in made] == list(range(1, len(made) + 1))
    for (n, at), (_, later) in itertools.pairwise(made):
        assert later - at == delivery.backoff_seconds(n)
    answered = [*statuses, 200][: len(made)]
    # every attempt but the last failed; the last one ended it (success, rejection or attempts exhausted)
    assert all(delivery.classify(s) == "failed" for s in answered[:-1])
    last = delivery.classify(answered[-1])
    assert last != "failed" or len(made) == delivery.MAX_ATTEMPTS


@given(st.lists(st.integers(), max_size=40), st.integers(2, 6))
def test_reorder_buffer_releases_each_item_once_newest_first_per_window(items: list[int], window: int) -> None:
    buffer: delivery.ReorderBuffer[int] = delivery.ReorderBuffer()
    released: list[int] = []
    for item in items:
        batch = buffer.add(item, window)
        assert len(batch) in (0, window)
        released.extend(batch)
    released.extend(buffer.flush())
    assert sorted(released) == sorted(items)
    full = len(items) // window * window
    for start in range(0, full, window):
        assert released[start : start + window] == list(reversed(items[start : start + window]))
    assert len(buffer) == 0


@given(st.text(min_size=1, max_size=50), st.binary(max_size=500))
def test_signature_is_hmac_sha256_hex_of_the_raw_body(secret: str, body: bytes) -> None:
    header = signing.sign(secret, body)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert header == f"sha256={expected}"
    assert signing.verify(secret, body, header)


@given(st.text(min_size=1, max_size=20), st.binary(min_size=1, max_size=200), st.data())
def test_tampered_body_or_wrong_secret_fails_verification(secret: str, body: bytes, data: st.DataObject) -> None:
    header = signing.sign(secret, body)
    position = data.draw(st.integers(0, len(body) - 1))
    tampered = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :]
    assert not signing.verify(secret, tampered, header)
    assert not signing.verify(secret + "x", body, header)
    assert not signing.verify(secret, body, None)
    assert not signing.verify(secret, body, header.removeprefix("sha256="))


def test_body_encoding_is_compact_utf8_json() -> None:
    assert signing.encode_body({"event": "customer.created", "name": "Zoë"}) == (
        '{"event":"customer.created","name":"Zoë"}'.encode()
    )
