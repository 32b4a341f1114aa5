"""A plugin that owns `--profile` (as pytest-profiling does), to test that the contract suite's
plugin then registers only `--lcs-profile` instead of breaking every pytest run."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("clashing").addoption("--profile", action="store_true", help="another plugin's --profile")
