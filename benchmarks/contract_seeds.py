"""The whole contract suite, once per hypothesis seed, several seeds in a row (issue 21).

    python3 benchmarks/contract_seeds.py [--seeds 20] [--first 1] [--timeout 900] [-- EXTRA PYTEST ARGS]

Each run is exactly what a user types, `python3 -m pytest --pyargs contracts -p no:cacheprovider`,
plus `--hypothesis-seed=N` (seeds FIRST .. FIRST+SEEDS-1), against the in-process mock with the
default `ci` profile, from the repository root. On a correct mock every run must pass: any failure
is a false verdict of the suite (or a real mock bug). Printed per seed: pass/fail, the test counts,
the failing tests with the suite's verdict lines, and the time; then one final line:
`seeds: N run, M failed, T s in total`. Exit status 0 when every run passed, else 1.
Never run by the tests (about 1-3 minutes per seed on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_COUNTS = re.compile(r"=+ (.*\bin [0-9.]+s.*) =+\s*$", re.MULTILINE)
_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
_VERDICT = re.compile(r"^  ((?:contract broken|assumption refuted): .*)$", re.MULTILINE)  # the summary's findings


def run_seed(seed: int, timeout: float, extra: list[str]) -> tuple[bool, str, list[str], list[str], float]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "contracts",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--hypothesis-seed={seed}",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        output, passed = done.stdout + done.stderr, done.returncode == 0
    except subprocess.TimeoutExpired as expired:
        output = f"{expired.stdout or ''}{expired.stderr or ''}\ntimed out after {timeout:.0f} s"
        passed = False
    elapsed = time.monotonic() - started
    counts = _COUNTS.findall(output)
    failed = _FAILED.findall(output)
    verdicts = sorted(set(_VERDICT.findall(output)))
    return passed, counts[-1] if counts else output.strip().splitlines()[-1:][0], failed, verdicts, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (default 20)")
    parser.add_argument("--first", type=int, default=1, help="the first seed (default 1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per run (default 900)")
    parser.add_argument("extra", nargs="*", help="more pytest arguments, after --")
    args = parser.parse_args(argv)
    total_started = time.monotonic()
    failures = 0
    for seed in range(args.first, args.first + args.seeds):
        passed, counts, failed, verdicts, elapsed = run_seed(seed, args.timeout, args.extra)
        failures += not passed
        print(f"seed {seed:>4}: {'pass' if passed else 'FAIL'}  {elapsed:6.1f} s  {counts}", flush=True)
        for name in failed:
            print(f"           failed: {name}", flush=True)
        for verdict in verdicts:
            print(f"           {verdict}", flush=True)
    total = time.monotonic() - total_started
    print(f"seeds: {args.seeds} run, {failures} failed, {total:.0f} s in total", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
