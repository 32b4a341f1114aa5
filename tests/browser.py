"""Debian's headless Chromium, as the page-rendering tests launch it (one flag list for all)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# no sandbox (containers run as root), no GPU, no /dev/shm (small in containers), and nothing
# that would reach the network on its own (the tests may only talk to 127.0.0.1)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NO_CHROMIUM = f"{CHROMIUM} is absent (Debian: apt-get install -y chromium)"


def chromium_available() -> bool:
    return os.path.exists(CHROMIUM)


def chromium_command(profile_dir: str) -> list[str]:
    """The command line of a one-shot headless Chromium using `profile_dir` as its profile."""
    return [CHROMIUM, *CHROMIUM_ARGS, f"--user-data-dir={profile_dir}/profile"]


def browser_missing() -> str | None:
    """Why the Playwright-driven page tests cannot run here, or None when they can."""
    if not chromium_available():
        return NO_CHROMIUM
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@contextlib.contextmanager
def launched() -> Iterator[Any]:
    """Debian's chromium driven by Playwright (never `playwright install`), closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
