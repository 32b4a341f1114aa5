"""The sliding-window limiter against a plain model: admitted exactly while fewer than `limit`
admitted requests fall in (now - 60, now], Retry-After exactly when the oldest leaves, never more
than `limit` in any window, the clock allowed to jump back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.apis.capillary.ratelimit import SlidingWindowLimiter

steps = st.lists(
    st.tuples(st.sampled_from(["till", "oauth"]), st.one_of(st.integers(0, 3), st.floats(0, 70), st.just(-20.0))),
    min_size=1,
    max_size=300,
)


@settings(max_examples=200)
@given(limit=st.integers(1, 12), events=steps)
def test_the_limiter_matches_the_model(limit: int, events: list[tuple[str, float]]) -> None:
    limiter = SlidingWindowLimiter(limit, 60.0)
    model: dict[str, list[float]] = {}
    now = 1_000.0
    for key, step in events:
        now = max(0.0, now + step)
        admitted = [t for t in model.get(key, []) if now - 60 < t <= now]
        model[key] = admitted
        wait = limiter.acquire(key, now)
        if len(admitted) < limit:
            assert wait is None
            admitted.append(now)
        else:
            assert wait is not None
            assert wait == pytest.approx(min(admitted) + 60 - now)
            assert 0 < wait <= 60
        assert limiter.used(key, now) == len(model[key])


@settings(max_examples=100)
@given(limit=st.integers(1, 10), gaps=st.lists(st.floats(0, 20), min_size=1, max_size=200))
def test_no_window_ever_holds_more_than_the_limit(limit: int, gaps: list[float]) -> None:
    limiter = SlidingWindowLimiter(limit, 60.0)
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        if limiter.acquire("k", now) is None:
            admitted.append(now)
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 60) <= limit


def test_waiting_retry_after_is_enough() -> None:
    limiter = SlidingWindowLimiter(3, 60.0)
    for t in (0.0, 10.0, 20.0):
        assert limiter.acquire("k", t) is None
    wait = limiter.acquire("k", 25.0)
    assert wait == 35.0
    assert limiter.acquire("k", 25.0 + wait - 0.001) is not None
    assert limiter.acquire("k", 25.0 + wait) is None
    assert limiter.acquire("other", 25.0) is None  # per key


def test_zero_is_unlimited_and_keeps_nothing() -> None:
    limiter = SlidingWindowLimiter(0)
    assert all(limiter.acquire("k", 0.0) is None for _ in range(10_000))
    assert limiter.used("k", 0.0) == 0


def test_clear_and_bad_arguments() -> None:
    limiter = SlidingWindowLimiter(1)
    limiter.acquire("k", 0.0)
    assert limiter.acquire("k", 1.0) is not None
    limiter.clear()
    assert limiter.acquire("k", 1.0) is None
    with pytest.raises(ValueError):
        SlidingWindowLimiter(-1)
    with pytest.raises(ValueError):
        SlidingWindowLimiter(1, 0)


def test_retry_after_never_exceeds_the_window() -> None:
    # (t + 60) - t is 60.00000000000001 for this t in binary floating point
    t = 7.043
    assert (t + 60.0) - t > 60.0
    limiter = SlidingWindowLimiter(1, 60.0)
    assert limiter.acquire("k", t) is None
    assert limiter.acquire("k", t) == 60.0
