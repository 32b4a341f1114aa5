"""`loyalty-mock drift` and `loyalty-mock assumptions --evidence`: options, exit status, output."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from mock_server.cli import slug_url
from mock_server.settings import SLUGS


def _pointer(text: str) -> str:
    if text and not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"expected a JSON pointer such as /data/*/created_at, got {text!r}")
    return text


def add_parser(sub: Any) -> None:
    """Add `drift` to the `loyalty-mock` subcommands."""
    drift = sub.add_parser("drift", help="report where recorded vendor traffic, the specs and the mock disagree")
    drift.add_argument("har", metavar="FILE.har", help="a HAR 1.2 file (the proxy's, a browser's, mitmproxy's...)")
    drift.add_argument(
        "--api-url",
        action="append",
        type=slug_url,
        default=[],
        metavar="SLUG=URL",
        help="the base URL one API was called at (repeatable; defaults: the vendors' real base URLs)",
    )
    drift.add_argument("--api", action="append", choices=SLUGS, metavar="SLUG", help="only these APIs (repeatable)")
    drift.add_argument("--format", choices=["text", "json", "html", "junit"], default="text")
    drift.add_argument("--output", metavar="FILE", help="write the report here (default: standard output)")
    drift.add_argument("--no-replay", action="store_true", help="check against the specs only, not the mock")
    drift.add_argument(
        "--ignore",
        action="append",
        type=_pointer,
        default=[],
        metavar="POINTER",
        help="a response pointer never compared, e.g. /data/*/updated_at (repeatable)",
    )
    drift.add_argument("--seed", type=int, default=0, help="seed of the replay mock (the noise run uses seed+1)")
    drift.add_argument(
        "--fixtures",
        metavar="FILE.yaml",
        type=Path,
        help="records to load into the replay mocks first (e.g. the POS codes the vendor minted)",
    )


def _options(args: argparse.Namespace) -> Any:
    from mock_server.drift.engine import Options

    urls: dict[str, list[str]] = defaultdict(list)
    for slug, url in args.api_url:
        urls[slug].append(url)
    return Options(
        api_urls=dict(urls),
        apis=tuple(dict.fromkeys(args.api or ())),
        replay=not args.no_replay,
        ignore=tuple(args.ignore),
        seed=args.seed,
        fixtures=args.fixtures,
    )


def _fail(message: str) -> int:
    print(f"loyalty-mock drift: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from mock_server.drift.engine import analyse
    from mock_server.drift.har import HarError
    from mock_server.drift.render import RENDERERS
    from mock_server.errors import MockError

    if args.fixtures is not None and not args.fixtures.is_file():
        return _fail(f"no such fixtures file: {args.fixtures}")
    try:
        report = asyncio.run(analyse(args.har, _options(args)))
    except HarError as error:
        return _fail(str(error))
    except MockError as error:  # bad replay fixtures
        details = "; ".join(f"{f.field}: {f.message}" for f in error.fields[:5])
        return _fail(f"cannot start the replay mock: {error.message}{': ' + details if details else ''}")
    if report.get("truncated"):
        print(
            f"loyalty-mock drift: warning: {args.har} ends inside an entry (the recorder was cut off); "
            f"read {report['exchanges']} complete entries",
            file=sys.stderr,
        )
    text = RENDERERS[args.format](report)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            return _fail(f"cannot write {args.output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)
    return 1 if report["findings"] else 0


def run_assumptions(evidence: list[Path]) -> int:
    """Each assumed item of the APIs the traffic reached, with its verdict and exchange count."""
    from mock_server.drift.engine import Options, analyse
    from mock_server.drift.har import HarError

    verdicts: dict[str, tuple[str, int]] = {}
    rank = {"refuted": 2, "confirmed": 1, "unobserved": 0}
    for path in evidence:
        try:
            report = asyncio.run(analyse(str(path), Options(replay=True)))
        except HarError as error:
            return _fail(str(error))
        for item in report["assumptions"]:
            verdict, count = verdicts.get(item["location"], ("unobserved", 0))
            new = item["verdict"] if rank[item["verdict"]] > rank[verdict] else verdict
            verdicts[item["location"]] = (new, count + item["exchanges"])
    for location, (verdict, count) in verdicts.items():
        print(f"{location}\t{verdict}\t{count} exchanges")
    tally: dict[str, int] = defaultdict(int)
    for verdict, _count in verdicts.values():
        tally[verdict] += 1
    print(
        f"{len(verdicts)} assumed items: {tally['confirmed']} confirmed, {tally['refuted']} refuted, "
        f"{tally['unobserved']} unobserved",
        file=sys.stderr,
    )
    return 0
