"""Shared fixtures: one in-process mock per session (strict: its own answers are checked against
the specs), reset before each test that uses it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from mock_server.settings import Settings
from mock_server.testing import MockServer

settings.register_profile(
    "ci", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def mock_server() -> Iterator[MockServer]:
    with MockServer(Settings(port=0, strict=True, customtrades_quota=0, capillary_rpm=0)) as server:
        yield server


@pytest.fixture
def mock(mock_server: MockServer) -> MockServer:
    mock_server.reset()
    return mock_server
