"""`loyalty-mock proxy`: options and the run loop (like `serve`: one line per API, Ctrl-C stops)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from mock_server import eventloop
from mock_server.cli import listen, slug_url, until_stopped
from mock_server.eventloop import CHOICES


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected more than 0 seconds, got {text}")
    return value


def add_parser(sub: Any, port: Any) -> None:
    """Add `proxy` to the `loyalty-mock` subcommands (`port`: the CLI's port-number type)."""
    proxy = sub.add_parser("proxy", help="validating, recording reverse proxy in front of the vendors")
    proxy.add_argument(
        "--upstream",
        action="append",
        required=True,
        type=slug_url,
        metavar="SLUG=URL",
        help="the vendor's base URL for one API (repeatable)",
    )
    proxy.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    proxy.add_argument("--port", type=port, default=8080, help="port (default 8080; 0 = any free port)")
    proxy.add_argument("--har", metavar="FILE", help="append every exchange to this HAR 1.2 file (secrets redacted)")
    proxy.add_argument(
        "--upstream-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="answer 504 when the vendor takes longer (default 30)",
    )
    proxy.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    proxy.add_argument(
        "--loop",
        choices=list(CHOICES),
        default="auto",
        help="event loop, as for serve: uvloop or the standard library's asyncio (default auto: uvloop when installed)",
    )


async def _run(args: argparse.Namespace) -> int:
    from mock_server.proxy.app import build_state, start_proxy_runner

    upstreams = dict(args.upstream)
    try:
        state = build_state(upstreams, timeout=args.upstream_timeout, har_path=args.har)
    except ValueError as exc:
        print(f"loyalty-mock: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"loyalty-mock: error: cannot write the HAR file {args.har}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    eventloop.freeze_start_up_heap()  # the specs and validators live as long as the process
    runner = await start_proxy_runner(state)
    port = await listen(runner, args.host, args.port)
    if port is None:
        return 1
    base = f"http://{args.host}:{port}"
    for slug, url in upstreams.items():
        print(f"{slug:<20} {base}/{slug} -> {url}")
    if len(upstreams) == 1:
        print(f"{'(root)':<20} {base}")
    print(f"{'admin':<20} {base}/__admin", flush=True)
    await until_stopped()
    await runner.cleanup()
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        loop = eventloop.resolve(args.loop)
    except eventloop.LoopUnavailable as exc:
        print(f"loyalty-mock: error: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("mock_server.proxy").info("event loop: %s %s (--loop %s)", loop.name, loop.version, args.loop)
    try:
        return eventloop.run(_run(args), loop)
    except KeyboardInterrupt:  # pragma: no cover
        return 130
