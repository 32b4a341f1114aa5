"""An installed package carries the specs and the conventions the specs cite (issue 21): the
package data `mock_server/openapi/` is the repository's `openapi/` (a symlink, copied as files
by the build), and `specs_dir()` finds it when there is no repository around the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.specs.conftest import ALL_SPECS, ROOT


@pytest.mark.timeout(300)
def test_a_built_package_contains_the_specs_and_finds_them(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("mock_server", "contracts", "openapi"):
        shutil.copytree(
            ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    build = tmp_path / "build"
    done = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "build_py", "-d", str(build)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shipped = build / "mock_server" / "openapi"
    assert sorted(p.name for p in shipped.iterdir() if p.suffix == ".yaml") == sorted(f"{n}.yaml" for n in ALL_SPECS)
    assert (shipped / "CONVENTIONS.md").is_file(), "the specs cite openapi/CONVENTIONS.md: it must ship with them"
    assert not shipped.is_symlink(), "the build copies the files, an installed package has no repository to point at"
    # Outside any repository, the package finds its own copy.
    probe = (
        "import mock_server.spec as s; print(s.specs_dir()); print(s.load_document('customtrades')['info']['x-slug'])"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(build), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.split() == [str(shipped), "customtrades"]
