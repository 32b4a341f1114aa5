"""Mutation score of the contract suite (issue 22): how many deliberately deviating mocks it catches.

    python3 benchmarks/mutation_score.py [--profile ci|thorough|both] [--no-cli] [--only NAME ...]
                                         [--jobs 2] [--seed 1] [--json FILE] [--markdown]

The mutants are `benchmarks/mutants.py` (each a plausible vendor difference, applied as a
monkeypatch to an in-process mock). Every run targets its own mock
(`mock_server.testing.MockServer`, limits off, in a worker process of its own, so patches of
modules and classes cannot leak into another run), reset before each step:

1. the baseline: the unmutated mock, once per API, through the same steps;
2. per mutant, on its API only:
   - suite `ci`: `python -m pytest --pyargs contracts --target <mock> --api <slug> --allow-irreversible`
     (the whole API, exactly what a user runs);
   - suite `thorough`: the same with `--profile thorough`, narrowed with `-k` to the tests that
     concern the mutant (its `select`; the whole API's thorough run takes many minutes);
   - the plain CLI: `schemathesis run openapi/<api>.yaml --url <mock>/<slug> --max-examples 25
     --checks all` with the `/__admin/credentials` as headers, the same example budget as `ci`
     (25 per operation; the stateful phase 8 scenarios of at most 12 steps, as `ci`'s state
     machines), no shrinking.
   A step kills the mutant when it reports a finding that the baseline's same step did not
   (suite: `check on operation` of each finding, or a failing test without one; CLI: each
   failure's title and operation). Both tools run with the same `--seed`.

Prints each mutant's verdicts (suite ci / thorough / CLI) with the finding that killed it and the
time of each step, then the three kill rates and the total time. Exit status 1 only when the
harness itself failed (a step crashed, timed out or selected no test), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CI_EXAMPLES = 25  # contracts/options.py, profile ci: examples per operation and mode
CLI_STATEFUL = "[phases.stateful]\nmax-steps = 12\n\n[phases.stateful.generation]\nmax-examples = 8\n"
STEPS = ("ci", "thorough", "cli")
STEP_TIMEOUT = 900.0
MUTANT_BUDGET = 60.0  # seconds a step may take (issue 22)


@dataclass
class Step:
    step: str
    seconds: float = 0.0
    signatures: list[str] = field(default_factory=list)  # what it reported
    tests: int = 0  # suite: tests run; CLI: test cases
    error: str | None = None  # harness error: crashed, timed out, selected nothing
    note: str = ""


# -- one step --------------------------------------------------------------------------------------
def _suite_signatures(junit: Path) -> tuple[list[str], int]:
    found: set[str] = set()
    tests = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "")
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        tests += not skipped
        findings: list[dict[str, Any]] = []
        for prop in case.iter("property"):
            if prop.get("name") == "lcs":
                findings.extend(json.loads(prop.get("value") or "{}").get("findings", []))
        for finding in findings:
            found.add(f"{finding.get('check')} on {finding.get('operation')}")
        if failed and not findings:
            found.add(f"{name} failed")
    return sorted(found), tests


def run_suite(base_url: str, slug: str, profile: str, select: str | None, seed: int, tmp: Path) -> Step:
    step = Step("ci" if profile == "ci" else "thorough")
    junit = tmp / f"{slug}-{profile}-{time.monotonic_ns()}.xml"
    command = [
        sys.executable, "-m", "pytest", "--pyargs", "contracts", "-p", "no:cacheprovider", "-q",
        f"--junitxml={junit}", "-o", "junit_family=xunit2",
        "--target", base_url, "--api", slug, "--allow-irreversible", "--profile", profile,
        f"--hypothesis-seed={seed}",
    ]
    if select:
        command += ["-k", select]
        step.note = f"-k {select!r}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["CI"] = "true"
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        step.seconds = time.monotonic() - started
        step.error = f"timed out after {STEP_TIMEOUT:.0f} s"
        return step
    step.seconds = time.monotonic() - started
    if done.returncode not in (0, 1) or not junit.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        step.error = f"pytest exit {done.returncode}: {' | '.join(tail)}"
        return step
    step.signatures, step.tests = _suite_signatures(junit)
    if step.tests == 0:
        step.error = "no test ran"
    return step


def run_cli(base_url: str, slug: str, headers: dict[str, str], seed: int, tmp: Path) -> Step:
    step = Step("cli")
    report = tmp / f"{slug}-cli-{time.monotonic_ns()}.json"
    config = tmp / "schemathesis.toml"
    config.write_text(CLI_STATEFUL)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run",
        str(ROOT / "openapi" / f"{slug}.yaml"), "--url", f"{base_url}/{slug}",
        "--max-examples", str(CI_EXAMPLES), "--checks", "all", "--generation-database", "none", "--no-shrink",
        "--seed", str(seed), "--report", "json", "--report-json-path", str(report),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        step.seconds = time.monotonic() - started
        step.error = f"timed out after {STEP_TIMEOUT:.0f} s"
        return step
    step.seconds = time.monotonic() - started
    if not report.exists():
        tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
        step.error = f"schemathesis exit {done.returncode}: {' | '.join(tail)}"
        return step
    data = json.loads(report.read_text())
    step.tests = int(data.get("test_cases", {}).get("generated", 0))
    found = {
        f"{failure.get('title') or failure.get('type')} on {operation}"
        for failure in data.get("failures", [])
        for operation in failure.get("operations") or ["?"]
    }
    step.signatures = sorted(found)
    return step


# -- a worker process: one mock, one mutant (or none), its steps -------------------------------------
def worker(name: str, slug: str, steps: list[str], select: str | None, seed: int) -> dict[str, Any]:
    from benchmarks.mutants import BY_NAME, Patcher, auth_headers, mock_settings
    from mock_server.testing import MockServer

    results: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="lcs-mutation-") as scratch, MockServer(mock_settings()) as mock:
        tmp = Path(scratch)
        patcher = Patcher()
        if name != "baseline":
            BY_NAME[name].apply(mock, patcher)
        headers = auth_headers(slug, mock.credentials())
        for step in steps:
            mock.reset()  # every step from the seeded state (the patches survive a reset)
            if step == "cli":
                results.append(run_cli(mock.base_url, slug, headers, seed, tmp))
            else:
                results.append(run_suite(mock.base_url, slug, step, select if step == "thorough" else None, seed, tmp))
        patcher.undo()
    return {"name": name, "api": slug, "steps": [asdict(s) for s in results]}


def spawn(name: str, slug: str, steps: list[str], select: str | None, seed: int) -> dict[str, Any]:
    """Run `worker` in a process of its own; a crash comes back as a harness error per step."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--api", slug,
               "--steps", ",".join(steps), "--seed", str(seed)]
    if select:
        command += ["--select", select]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=STEP_TIMEOUT * len(steps) + 120)
        for line in done.stdout.splitlines():
            if line.startswith("RESULT "):
                found: dict[str, Any] = json.loads(line[len("RESULT "):])
                return found
        problem = f"worker exit {done.returncode}: {' | '.join(done.stderr.strip().splitlines()[-3:])}"
    except subprocess.TimeoutExpired:
        problem = "worker timed out"
    seconds = time.monotonic() - started
    return {"name": name, "api": slug, "steps": [asdict(Step(s, seconds, error=problem)) for s in steps]}


# -- verdicts ------------------------------------------------------------------------------------------
def verdict(step: dict[str, Any], baseline: dict[str, Any] | None) -> tuple[str, list[str]]:
    """killed / survived / error, and the new signatures."""
    if step.get("error"):
        return "error", [str(step["error"])]
    if baseline is None or baseline.get("error"):
        return "error", ["no usable baseline for this step"]
    new = sorted(set(step["signatures"]) - set(baseline["signatures"]))
    return ("killed" if new else "survived"), new


def _by_step(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["step"]: s for s in result["steps"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("ci", "thorough", "both"), default="both")
    parser.add_argument("--no-cli", action="store_true", help="skip the plain schemathesis CLI")
    parser.add_argument("--only", action="append", metavar="NAME", help="only this mutant (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at a time (default 2: two cores)")
    parser.add_argument("--seed", type=int, default=1, help="hypothesis and schemathesis seed (default 1)")
    parser.add_argument("--json", type=Path, help="write every result to this file")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--reuse", type=Path, metavar="FILE",
                        help="take the step results an earlier run wrote with --json (e.g. the CLI's, which do not "
                             "depend on the suite) instead of running them again")
    parser.add_argument("--deadline", type=float, metavar="SECONDS",
                        help="start no step run after this many seconds; report what finished")
    parser.add_argument("--reuse-steps", default="cli", metavar="STEPS",
                        help="which steps --reuse takes, comma-separated (default: cli)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    parser.add_argument("--steps", help=argparse.SUPPRESS)
    parser.add_argument("--select", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = worker(args.worker, args.api, args.steps.split(","), args.select, args.seed)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    from benchmarks.mutants import BY_NAME, MUTANTS

    if args.list:
        for m in MUTANTS:
            print(f"{m.name:40} {m.api:19} {m.kind:9} {m.deviation}\n{'':40} thorough -k {m.select!r}")
        return 0
    unknown = [n for n in args.only or [] if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown mutant(s): {', '.join(unknown)}; see --list")
    chosen = [BY_NAME[n] for n in args.only] if args.only else list(MUTANTS)
    steps = [s for s in STEPS if (s != "cli" or not args.no_cli)
             and (s == "cli" or args.profile in (s, "both"))]
    apis = sorted({m.api for m in chosen})
    union = {api: " or ".join(f"({m.select})" for m in chosen if m.api == api) for api in apis}
    load = os.getloadavg()
    print(f"mutation score: {len(chosen)} mutants over {len(apis)} APIs; steps {', '.join(steps)}; "
          f"seed {args.seed}; {args.jobs} at a time; load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)

    results: dict[str, dict[str, Any]] = {}
    reused = _reuse(args.reuse, [s for s in steps if s in args.reuse_steps.split(',')]) if args.reuse else {}
    # one job per (run, step), step by step: every baseline of a step, then the mutants taking the
    # APIs in turn, so a run cut short by --deadline has whole steps for every API
    interleaved: list[Any] = []
    queues = {api: [m for m in chosen if m.api == api] for api in apis}
    while any(queues.values()):
        for api in apis:
            if queues[api]:
                interleaved.append(queues[api].pop(0))
    jobs: list[tuple[str, str, str | None, str]] = []
    for step in steps:
        runs = [("baseline", api, union[api]) for api in apis] + [(m.name, m.api, m.select) for m in interleaved]
        for name, api, select in runs:
            key = f"baseline:{api}" if name == "baseline" else name
            if step in reused.get(key, {}):
                results.setdefault(key, {"name": name, "api": api, "steps": []})["steps"].append(reused[key][step])
            else:
                jobs.append((name, api, select, step))
    if reused:
        print(f"  reused from {args.reuse}: {sum(len(r['steps']) for r in results.values())} step results", flush=True)
    started = time.monotonic()
    shown: set[str] = set()

    def show_ready() -> None:
        """Print each mutant's verdicts as soon as all its steps and its API's baselines are in."""
        for m in chosen:
            base = results.get(f"baseline:{m.api}")
            mine = results.get(m.name)
            if m.name in shown or base is None or mine is None:
                continue
            if {s["step"] for s in mine["steps"]} >= set(steps) and {s["step"] for s in base["steps"]} >= set(steps):
                shown.add(m.name)
                line, why = verdict_line(m, steps, results)
                print(f"  {line}", flush=True)
                for reason in why:
                    print(f"      {reason}", flush=True)

    pending = list(jobs)
    rank = {job: index for index, job in enumerate(jobs)}

    def priority(job: tuple[str, str, str | None, str], _: Any) -> tuple[int, int, int]:
        """Step by step, baselines first; within a later step, the mutants an earlier step let
        survive go first (a run cut short by --deadline has measured those)."""
        name, _api, _select, step = job
        survived = name != "baseline" and any(
            _step_verdict(BY_NAME[name], earlier, results)[0] == "survived" for earlier in steps[: steps.index(step)]
        )
        return steps.index(step), 0 if name == "baseline" else (1 if survived else 2), rank[job]

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        running: dict[Any, tuple[str, str]] = {}
        while pending or running:
            while pending and len(running) < max(1, args.jobs):
                if args.deadline and time.monotonic() - started > args.deadline:
                    print(f"  deadline of {args.deadline:.0f} s reached: {len(pending)} step runs not started",
                          flush=True)
                    pending.clear()
                    break
                pending.sort(key=lambda job: priority(job, pending))
                name, api, select, step = pending.pop(0)
                running[pool.submit(spawn, name, api, [step], select, args.seed)] = (name, api)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name, api = running.pop(future)
                result = future.result()
                key = f"baseline:{api}" if name == "baseline" else name
                results.setdefault(key, {"name": name, "api": api, "steps": []})["steps"].extend(result["steps"])
                if name == "baseline":
                    for s in result["steps"]:
                        problem = f"  ERROR {s['error']}" if s.get("error") else ""
                        print(f"  baseline {api} {s['step']}: {s['seconds']:.0f} s, "
                              f"{len(s['signatures'])} findings{problem}", flush=True)
                show_ready()
                if args.json is not None:
                    args.json.write_text(json.dumps({"partial": True, "results": results}, indent=1))
    total = time.monotonic() - started
    return report(chosen, steps, results, total, args.json, args.markdown)


def _reuse(path: Path, steps: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Step results of an earlier run (its --json file) that had no harness error, by run and step."""
    data = json.loads(path.read_text())
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for key, result in data.get("results", {}).items():
        for step in result.get("steps", []):
            if step["step"] in steps and not step.get("error"):
                found.setdefault(key, {})[step["step"]] = {**step, "note": f"{step.get('note', '')} reused".strip()}
    return found


def _step_verdict(
    m: Any, step: str, results: dict[str, dict[str, Any]]
) -> tuple[str, list[str], dict[str, Any] | None]:
    """(killed | survived | error | not run, the new signatures, the mutant's step result)."""
    mine = _by_step(results.get(m.name, {"steps": []})).get(step)
    base = _by_step(results.get(f"baseline:{m.api}", {"steps": []})).get(step)
    if mine is None:
        return "not run", [], None
    outcome, new = verdict(mine, base)
    return outcome, new, mine


def verdict_line(m: Any, steps: list[str], results: dict[str, dict[str, Any]]) -> tuple[str, list[str]]:
    cells, seconds, why = [], [], []
    for s in steps:
        outcome, new, mine = _step_verdict(m, s, results)
        cells.append(f"{s} {outcome}")
        seconds.append(f"{mine['seconds']:.0f}" if mine else "-")
        if new:
            why.append(f"{s}: {new[0]}" + (f" (+{len(new) - 1} more)" if len(new) > 1 else ""))
    return f"{m.name:40} {', '.join(cells)}  ({'/'.join(seconds)} s)", why


def report(
    chosen: list[Any], steps: list[str], results: dict[str, dict[str, Any]], total: float,
    json_path: Path | None, markdown: bool,
) -> int:
    harness_errors = 0
    for api in sorted({m.api for m in chosen}):
        for s in results.get(f"baseline:{api}", {"steps": []})["steps"]:
            harness_errors += bool(s.get("error"))
            shown = "; ".join(s["signatures"]) or "-"
            print(f"baseline {api:19} {s['step']:8} {s['seconds']:5.0f} s  "
                  f"{'ERROR ' + str(s['error']) if s.get('error') else shown}")
    rows: list[dict[str, Any]] = []
    kills = dict.fromkeys(steps, 0)
    judged = dict.fromkeys(steps, 0)
    over_budget: list[str] = []
    print()
    print(f"{'mutant':40} {'api':19} {'kind':9} " + " ".join(f"{s:>9}" for s in steps) + "   seconds")
    for m in chosen:
        row: dict[str, Any] = {"name": m.name, "api": m.api, "kind": m.kind, "deviation": m.deviation,
                               "documented": m.documented, "select": m.select}
        cells, seconds, why = [], [], []
        for s in steps:
            outcome, new, mine = _step_verdict(m, s, results)
            harness_errors += outcome == "error"
            judged[s] += outcome in ("killed", "survived")
            kills[s] += outcome == "killed"
            took = mine["seconds"] if mine else None
            row[s] = {"verdict": outcome, "new": new, "seconds": round(took, 1) if took is not None else None,
                      "reused": bool(mine and "reused" in mine.get("note", ""))}
            cells.append(f"{outcome:>9}")
            seconds.append(f"{took:.0f}" if took is not None else "-")
            if took is not None and took > MUTANT_BUDGET and s != "cli":
                over_budget.append(f"{m.name} {s} {took:.0f} s")
            if new:
                why.append(f"{s}: {new[0]}" + (f" (+{len(new) - 1})" if len(new) > 1 else ""))
        rows.append(row)
        print(f"{m.name:40} {m.api:19} {m.kind:9} " + " ".join(cells) + "   " + "/".join(seconds))
        for line in why:
            print(f"    {line}")
    print()
    for s in steps:
        rate = 100.0 * kills[s] / judged[s] if judged[s] else 0.0
        label = {"ci": "suite ci", "thorough": "suite thorough", "cli": "schemathesis CLI"}[s]
        print(f"kill rate {label:17} {kills[s]:3}/{judged[s]:<3} {rate:5.1f} %")
    print(f"steps over {MUTANT_BUDGET:.0f} s: {', '.join(over_budget) if over_budget else 'none'}")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"total {total:.0f} s; harness errors: {harness_errors}; load {load}")
    if markdown:
        print()
        print("| mutant | API | class | " + " | ".join(steps) + " |")
        print("|---|---|---|" + "---|" * len(steps))
        for row in rows:
            cells = [f"{row[s]['verdict']}" + (f" ({row[s]['seconds']:.0f} s)" if row[s]["seconds"] is not None else "")
                     for s in steps]
            print(f"| `{row['name']}` | {row['api']} | {row['kind']} | " + " | ".join(cells) + " |")
    if json_path is not None:
        json_path.write_text(json.dumps({"rows": rows, "results": results, "total_seconds": total,
                                         "kills": kills, "judged": judged}, indent=1))
    return 1 if harness_errors else 0


if __name__ == "__main__":
    sys.exit(main())
