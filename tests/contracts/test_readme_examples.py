"""The README's fixture examples are tests (issue 21): every fenced ```python block of its section
"Using the fixtures in your own tests" is written to a file of its own in an empty directory and
run there with pytest in a subprocess, as a user's project would run it (the plugin loaded from
its entry point, no conftest of this repository)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contracts.suite_runner import ROOT

SECTION = "### Using the fixtures in your own tests"


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, f"README.md lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1]
    section = re.split(r"^#{2,3} ", section, maxsplit=1, flags=re.MULTILINE)[0]
    return re.findall(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)


BLOCKS = readme_blocks()


def test_the_section_has_examples() -> None:
    assert len(BLOCKS) >= 2
    names = [name for block in BLOCKS for name in re.findall(r"^def (test_\w+)\(", block, flags=re.MULTILINE)]
    fixtures = " ".join(BLOCKS)
    for fixture in ("lcs_target", "lcs_api_urls", "lcs_credentials", "lcs_admin", "lcs_fresh"):
        assert fixture in fixtures, f"no README example uses {fixture}"
    assert len(names) == len(set(names)) >= 4


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_readme_example_runs(number: int, tmp_path: Path) -> None:
    block = BLOCKS[number]
    tests = re.findall(r"^def (test_\w+)\(", block, flags=re.MULTILINE)
    (tmp_path / f"test_readme_example_{number}.py").write_text(block, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-W", "error", "-rA"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"README example {number + 1} fails:\n{output[-4000:]}"
    for name in tests:
        assert f"PASSED test_readme_example_{number}.py::{name}" in output, output[-2000:]
