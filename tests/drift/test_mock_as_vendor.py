"""A vendor double that is the mock itself (same seed): drift over a realistic sequence finds
nothing for every API, no noise from ids, tokens or timestamps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mock_server.drift.engine import Drift, Options, analyse
from mock_server.testing import MockServer
from tests.drift.scenarios import SCENARIOS


@pytest.mark.parametrize("slug", list(SCENARIOS))
def test_the_mock_against_itself_differs_nowhere(
    slug: str, double: MockServer, proxied: Callable[..., Any], tmp_path: Path
) -> None:
    double.reset()
    proxy, client, har = proxied()
    SCENARIOS[slug](client)
    proxy.stop()
    report = asyncio.run(analyse(str(har), Options(apis=(slug,), seed=0)))
    assert report["summary"]["matched"] == len(client.answers)
    assert report["findings"] == [], report["findings"]
    seen = {op for op, s in report["coverage"][slug]["operations"].items() if s["statuses_seen"]}
    assert len(seen) >= 3


@pytest.mark.parametrize("slug", ["customtrades", "capillary", "loke", "letstrade-channels"])
def test_another_seed_differs_only_in_noise_which_is_learned(
    slug: str, double: MockServer, proxied: Callable[..., Any]
) -> None:
    """The replay mock's ids, keys, tokens and seeded data all differ from the recording's
    (seed 7 against seed 0): the id mapping and the noise run take every difference out."""
    double.reset()
    proxy, client, har = proxied()
    SCENARIOS[slug](client)
    proxy.stop()
    report = asyncio.run(analyse(str(har), Options(apis=(slug,), seed=7)))
    assert report["findings"] == [], report["findings"]


def test_without_the_noise_run_seeded_data_would_be_reported(
    double: MockServer, proxied: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    double.reset()
    proxy, client, har = proxied()
    SCENARIOS["loke"](client)
    proxy.stop()
    monkeypatch.setattr(Drift, "_learn_noise", lambda self, *args: None)
    report = asyncio.run(analyse(str(har), Options(apis=("loke",), seed=7)))
    assert any(f.get("difference") == "value" for f in report["findings"])
