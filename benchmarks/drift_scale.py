"""`drift` at scale: generate a HAR of N exchanges (default 100,000) and time `loyalty-mock drift`
on it with replay, reporting wall time and the peak RSS of the drift process.

    python benchmarks/drift_scale.py [--entries 100000] [--keep FILE.har] [--no-replay]

The HAR is built from real exchanges: one realistic sequence per API (customtrades, capillary,
LOKE) recorded through the proxy in front of the mock, then repeated with shifted times (ten
minutes apart, so a month's quota is not the limit) until N entries. Targets (issue 15): under
120 s with replay, peak RSS under 500 MiB (the HAR is streamed, never loaded whole)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from mock_server.drift.har import HarReader, HarWriter  # noqa: E402
from mock_server.proxy.testing import ProxyServer  # noqa: E402
from mock_server.settings import Settings  # noqa: E402
from mock_server.testing import MockServer  # noqa: E402
from tests.drift.conftest import ALL, recording_client  # noqa: E402
from tests.drift.scenarios import SCENARIOS  # noqa: E402


def record_sequence(directory: str) -> list[dict[str, object]]:
    path = os.path.join(directory, "sequence.har")
    with MockServer(Settings(port=0, seed=0)) as mock:
        proxy = ProxyServer({slug: mock.url(slug) for slug in ALL}, har_path=path).start()
        client = recording_client(mock, proxy, mock.credentials())
        for slug in ("customtrades", "capillary", "loke"):
            SCENARIOS[slug](client)
        proxy.stop()
    return list(HarReader(path))


def generate(path: str, entries: int, sequence: list[dict[str, object]]) -> None:
    writer = HarWriter(path, fsync_interval=3600)
    start = datetime.fromisoformat(str(sequence[0]["startedDateTime"]).replace("Z", "+00:00"))
    written = 0
    round_ = 0
    while written < entries:
        shift = timedelta(minutes=10 * round_)
        for entry in sequence:
            moment = datetime.fromisoformat(str(entry["startedDateTime"]).replace("Z", "+00:00"))
            copy = dict(entry)
            copy["startedDateTime"] = (start + shift + (moment - start)).isoformat().replace("+00:00", "Z")
            writer.append(copy)
            written += 1
            if written == entries:
                break
        round_ += 1
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--keep", metavar="FILE.har", help="write the generated HAR here (default: a temp file)")
    parser.add_argument("--no-replay", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or os.path.join(tmp, "scale.har")
        sequence = record_sequence(tmp)
        started = time.perf_counter()
        generate(path, args.entries, sequence)
        generated = time.perf_counter() - started
        size = os.path.getsize(path)
        command = [
            sys.executable,
            "-m",
            "mock_server",
            "drift",
            path,
            "--format",
            "json",
            "--output",
            os.path.join(tmp, "report.json"),
        ]
        if args.no_replay:
            command.append("--no-replay")
        started = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_kib = usage.ru_maxrss
        cpu = usage.ru_utime + usage.ru_stime
        if run.returncode == 2:
            sys.exit(f"drift failed: {run.stderr}")
        with open(os.path.join(tmp, "report.json"), encoding="utf-8") as handle:
            summary = json.load(handle)["summary"]
    print(
        json.dumps(
            {
                "entries": args.entries,
                "sequence_length": len(sequence),
                "har_mib": round(size / 2**20, 1),
                "generate_s": round(generated, 1),
                "drift_s": round(elapsed, 1),
                "drift_cpu_s": round(cpu, 1),  # the honest figure on a shared machine
                "entries_per_s": round(args.entries / elapsed),
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "replay": not args.no_replay,
                "summary": summary,
                "targets": {"drift_s": "< 120", "peak_rss_mib": "< 500"},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
