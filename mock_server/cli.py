"""`loyalty-mock`: serve the mock, print its credentials, list the specs' assumptions."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import shlex
import signal
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from mock_server import eventloop
from mock_server.errors import MockError
from mock_server.persistence import StateFileError
from mock_server.settings import CAPILLARY_REGION_RPM, EVENT_LOOPS, SLUGS, Settings

SPEC_FILES = ("letstrade-pos", "letstrade-pos-provider", "letstrade-channels", "customtrades", "capillary", "loke")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"loyalty-mock: error: {message} (see `loyalty-mock {self.prog.split()[-1]} --help`)\n")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):  # NaN too
        raise argparse.ArgumentTypeError(f"expected 0 or more seconds, got {text}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _port(text: str) -> int:
    value = _non_negative(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def _add_seed(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="makes ids, keys and data deterministic (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="loyalty-mock", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = sub.add_parser("serve", help="start the mock and serve until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8080, help="port (default 8080; 0 = any free port)")
    serve.add_argument(
        "--port-per-api",
        action="store_true",
        help="also serve each API at the root of a port of its own, same state: --port + 1..5 in the order "
        f"{', '.join(SLUGS)} (any free ports with --port 0); prints one URL per API",
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="run N mock processes, worker i on --port + i (free ports with --port 0), each with its own state "
        "(--state-file DIR: DIR/worker-<i>); tenants shard over them behind nginx (see `loyalty-mock nginx-config`)",
    )
    serve.set_defaults(serve_parser=serve)
    serve.add_argument(
        "--api",
        action="append",
        choices=SLUGS,
        metavar="SLUG",
        help=f"mount only this API (repeatable; default all): {', '.join(SLUGS)}",
    )
    _add_seed(serve)
    serve.add_argument("--pos-callback-url", metavar="URL", help="the POS's append-vouchers endpoint (QR flow)")
    serve.add_argument(
        "--pos-bill-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="an open bill with no finalise after this long fails conformance (default 1800)",
    )
    serve.add_argument("--fixtures", type=_existing_file, metavar="FILE.yaml", help="records to load at start")
    serve.add_argument(
        "--customtrades-quota",
        type=_non_negative,
        default=50_000,
        metavar="N",
        help="monthly requests per Custom Trades company (default 50000; 0 = unlimited)",
    )
    serve.add_argument(
        "--capillary-region",
        choices=sorted(CAPILLARY_REGION_RPM),
        default="emea",
        help="Capillary region whose documented rate limit applies (default emea)",
    )
    serve.add_argument(
        "--capillary-rpm",
        type=_non_negative,
        metavar="N",
        help="override the region's requests per minute (0 = unlimited)",
    )
    serve.add_argument(
        "--seed-customers",
        type=_non_negative,
        default=0,
        metavar="N",
        help="fill the first Custom Trades company with N generated customers",
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        help="check every response against its spec; a mismatch answers 500 and is journaled",
    )
    serve.add_argument(
        "--examples-only",
        action="store_true",
        help="answer every operation from its spec examples (no state), like a static mock",
    )
    serve.add_argument(
        "--state-file",
        type=Path,
        metavar="DIR",
        help="keep all state in this directory across restarts and kill -9: every write is logged and fsynced "
        "before its answer (group commit), compacted in the background (default: in memory)",
    )
    serve.add_argument(
        "--admin-token", metavar="TOKEN", help="require this token (X-Admin-Token header) on every /__admin call"
    )
    serve.add_argument(
        "--tenant-ttl",
        type=_seconds,
        default=24 * 3600.0,
        metavar="SECONDS",
        help="a tenant (POST /__admin/tenants) idle this long in real time is deleted (default 86400; 0 = never)",
    )
    serve.add_argument(
        "--max-tenants",
        type=_non_negative,
        default=1000,
        metavar="N",
        help="at most N tenants at once; creating one more is a 429 (default 1000; 0 = no tenants)",
    )
    serve.add_argument("--tls-cert", type=_existing_file, metavar="PEM", help="serve HTTPS with this certificate")
    serve.add_argument("--tls-key", type=_existing_file, metavar="PEM", help="the certificate's private key")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--loop",
        choices=EVENT_LOOPS,
        default="auto",
        help="event loop: uvloop (faster) or the standard library's asyncio (default auto: uvloop when installed)",
    )
    serve.add_argument("--journal-max-entries", type=_non_negative, default=10_000, metavar="N")
    serve.add_argument("--journal-max-bytes", type=_non_negative, default=32 * 1024 * 1024, metavar="N")
    serve.add_argument(
        "--journal-max-total-bytes", type=_non_negative, default=512 * 1024 * 1024, metavar="N",
        help="the bytes every tenant's journal keeps together (counted as --journal-max-bytes counts them); "
        "past it the oldest entries of the whole process go first (default 512 MiB)",
    )

    credentials = sub.add_parser("credentials", help="print the credentials the mock seeds (as JSON)")
    _add_seed(credentials)
    assumptions = sub.add_parser(
        "assumptions", help="list every assumption of the specs (assumed items, x-assumption notes) with its location"
    )
    assumptions.add_argument(
        "--evidence", action="append", type=_existing_file, metavar="FILE.har",
        help="judge each assumption by recorded vendor traffic (repeatable)",
    )
    from mock_server.drift.cli import add_parser as add_drift
    from mock_server.proxy.cli import add_parser as add_proxy

    add_proxy(sub, _port)
    add_drift(sub)
    _add_nginx_config(sub)
    conformance = sub.add_parser("conformance", help="print a running mock's POS conformance report")
    conformance.add_argument("--url", required=True, help="the mock's base URL, e.g. http://127.0.0.1:8080")
    conformance.add_argument("--format", choices=["text", "json"], default="text", help="output (default text)")
    conformance.add_argument("--admin-token", metavar="TOKEN", help="the mock's --admin-token, if it has one")
    return parser


def _add_nginx_config(sub: argparse._SubParsersAction[_Parser]) -> None:
    from mock_server.workers import DEFAULT_TENANT_RATE

    nginx = sub.add_parser(
        "nginx-config",
        help="print the nginx configuration that shards tenants over `serve --workers N` (a conf.d file)",
    )
    nginx.add_argument("--workers", type=_positive, default=2, metavar="N", help="number of workers (default 2)")
    nginx.add_argument(
        "--port", type=_port, default=8081, help="worker 0's port, as given to `serve --workers` (default 8081)"
    )
    nginx.add_argument(
        "--host", type=_nginx_word, default="127.0.0.1", help="the workers' address (default 127.0.0.1)"
    )
    nginx.add_argument(
        "--upstream", action="append", type=_nginx_word, metavar="HOST:PORT",
        help="a worker's address, worker 0 first (repeatable; instead of --workers/--port/--host)",
    )
    nginx.add_argument(
        "--listen", type=_nginx_word, default="8080", metavar="[ADDR:]PORT", help="where nginx listens (default 8080)"
    )
    nginx.add_argument(
        "--tenant-rate", type=_non_negative, default=DEFAULT_TENANT_RATE, metavar="N",
        help=f"requests per second per tenant, burst twice that (default {DEFAULT_TENANT_RATE}; 0 = no limit)",
    )
    nginx.add_argument(
        "--tls-cert", type=_nginx_word, metavar="PEM", help="also listen with TLS, with this certificate"
    )
    nginx.add_argument("--tls-key", type=_nginx_word, metavar="PEM", help="the certificate's private key")
    nginx.add_argument(
        "--tls-listen", type=_nginx_word, default="8443", metavar="[ADDR:]PORT", help="the TLS port (default 8443)"
    )
    nginx.add_argument(
        "--standalone", action="store_true",
        help="a whole nginx.conf for running nginx without root: nginx -p DIR -c FILE -e DIR/error.log",
    )


def _nginx_word(text: str) -> str:
    """A value written into nginx's configuration as one word (an address, a port, a file)."""
    if not text or any(c.isspace() or c in ";{}'\"#$\\" for c in text):
        raise argparse.ArgumentTypeError(f"expected one word without spaces, quotes, ;, {{, }}, # or $, got {text!r}")
    return text


def _nginx_config(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    from mock_server.workers import nginx_config, nginx_standalone, worker_ports

    if (args.tls_cert is None) != (args.tls_key is None):
        print("loyalty-mock: error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.upstream:
        upstreams = list(args.upstream)
    else:
        try:
            ports = worker_ports(args.workers, args.port)
        except ValueError as exc:
            print(f"loyalty-mock: error: {exc}", file=sys.stderr)
            return 2
        if args.port == 0:
            print("loyalty-mock: error: nginx needs the workers' ports: give --port (or --upstream)", file=sys.stderr)
            return 2
        upstreams = [f"{args.host}:{port}" for port in ports]
    command = "loyalty-mock " + shlex.join(sys.argv[1:] if argv is None else argv)
    config = nginx_config(
        upstreams, listen=args.listen, tenant_rate=args.tenant_rate, tls_cert=args.tls_cert,
        tls_key=args.tls_key, tls_listen=args.tls_listen, command=command,
    )
    print(nginx_standalone(config) if args.standalone else config, end="")
    return 0


def _serve_workers(args: argparse.Namespace) -> int:
    """`serve --workers N`: each worker is `serve` with the same options, its own port and state."""
    from mock_server.workers import child_argv, run_workers, state_dir, worker_ports

    if args.port_per_api:
        print("loyalty-mock: error: --port-per-api cannot be combined with --workers", file=sys.stderr)
        return 2
    try:
        worker_ports(args.workers, args.port)
        settings_from(args)  # the same checks as a single process, before any worker starts
    except ValueError as exc:
        print(f"loyalty-mock: error: {exc}", file=sys.stderr)
        return 2
    common = child_argv(args.serve_parser, args, skip=("workers", "port", "state_file", "serve_parser"))

    def command(index: int, port: int) -> list[str]:
        argv = [sys.executable, "-m", "mock_server", "serve", *common, "--port", str(port)]
        if args.state_file is not None:
            folder = state_dir(args.state_file, index)
            folder.parent.mkdir(parents=True, exist_ok=True)
            argv += ["--state-file", str(folder)]
        return argv

    try:
        return run_workers(args.workers, args.port, command, _print_urls)
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C while stopping
        return 130


def _print_urls(lines: Sequence[tuple[str, str]]) -> None:
    """The start-up lines `name  URL` (scripts read them)."""
    width = max(20, *(len(name) + 1 for name, _ in lines))
    try:
        print("\n".join(f"{name:<{width}} {url}" for name, url in lines), flush=True)
    except BrokenPipeError:  # nobody reads the URLs (`serve | head -1`): keep serving all the same
        _discard_stdout()


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        host=args.host,
        port=args.port,
        apis=tuple(dict.fromkeys(args.api)) if args.api else SLUGS,
        seed=args.seed,
        pos_callback_url=args.pos_callback_url,
        pos_bill_timeout=args.pos_bill_timeout,
        fixtures=args.fixtures,
        customtrades_quota=args.customtrades_quota,
        capillary_region=args.capillary_region,
        capillary_rpm=args.capillary_rpm,
        seed_customers=args.seed_customers,
        strict=args.strict,
        examples_only=args.examples_only,
        admin_token=args.admin_token,
        state_file=args.state_file,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        log_level=args.log_level,
        journal_max_entries=args.journal_max_entries,
        journal_max_bytes=args.journal_max_bytes,
        journal_max_total_bytes=args.journal_max_total_bytes,
        tenant_ttl=args.tenant_ttl,
        max_tenants=args.max_tenants,
        event_loop=args.loop,
    )


async def _serve(settings: Settings, api_ports: dict[str, int] | None = None) -> int:
    """Serve until SIGINT/SIGTERM. `api_ports` (`--port-per-api`): each of these APIs also at the
    root of its own port, on the same state."""
    from mock_server.app import ApiSiteError, create_app, start_api_sites, start_runner
    from mock_server.lifecycle import vendor_runtimes

    try:
        app = create_app(settings)
    except MockError as error:  # e.g. a fixtures file that names a bad record
        details = "; ".join(f"{f.field}: {f.message}" for f in error.fields)
        print(f"loyalty-mock: error: {error.message}{': ' + details if details else ''}", file=sys.stderr)
        return 2
    except StateFileError as error:
        print(f"loyalty-mock: error: {error}", file=sys.stderr)
        return 2
    runner = await start_runner(app)
    ssl_context = None
    if settings.tls_cert is not None and settings.tls_key is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(settings.tls_cert, settings.tls_key)
        except (ssl.SSLError, OSError) as exc:
            await runner.cleanup()
            print(f"loyalty-mock: error: cannot use the TLS certificate/key: {exc}", file=sys.stderr)
            return 2
    port = await listen(runner, settings.host, settings.port, ssl_context)
    if port is None:
        return 1
    scheme = "https" if ssl_context else "http"
    base = f"{scheme}://{settings.host}:{port}"
    from mock_server.app import SERVICES

    api_sites = []
    if api_ports:
        try:
            api_sites = await start_api_sites(app[SERVICES], settings.host, api_ports, ssl_context)
        except ApiSiteError as exc:
            await runner.cleanup()
            reason = "the port is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            print(
                f"loyalty-mock: cannot listen on {settings.host}:{exc.port} (--port-per-api, {exc.slug}): {reason}",
                file=sys.stderr,
            )
            return 1
    runtimes = vendor_runtimes(app[SERVICES])
    lines = [(runtime.slug, f"{base}/{runtime.slug}") for runtime in runtimes]
    if len(runtimes) == 1:
        lines.append(("(root)", base))
    lines += [(f"{slug}:root", f"{scheme}://{settings.host}:{bound}") for slug, _, bound in api_sites]
    lines.append(("admin", f"{base}/__admin"))
    logging.getLogger("mock_server").info("event loop: %s (--loop %s)", eventloop.running(), settings.event_loop)
    eventloop.freeze_start_up_heap()
    _print_urls(lines)

    await until_stopped()
    for _, api_runner, _ in api_sites:  # their requests finish while the main app's services still run
        await api_runner.cleanup()
    await runner.cleanup()
    return 0


def slug_url(text: str) -> tuple[str, str]:
    """The argument type `SLUG=URL` (`proxy --upstream`, `drift --api-url`)."""
    slug, sep, url = text.partition("=")
    if not sep or slug not in SLUGS:
        raise argparse.ArgumentTypeError(f"expected SLUG=URL with SLUG one of {', '.join(SLUGS)}, got {text!r}")
    if not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL for {slug}, got {url!r}")
    return slug, url


async def listen(
    runner: web.AppRunner, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> int | None:
    """Start a site of `runner` on `host:port`: the port it listens on (the free one when `port`
    is 0), or None when it cannot (the runner cleaned up, the reason on stderr: exit status 1)."""
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        reason = "the port is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        print(f"loyalty-mock: cannot listen on {host}:{port}: {reason}", file=sys.stderr)
        return None
    for sock in runner.addresses or []:
        return int(sock[1])
    return port


async def until_stopped() -> None:
    """Wait for SIGINT (Ctrl-C) or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _discard_stdout() -> None:
    """Point stdout at /dev/null: its reader has gone, and Python's own flush of stdout at exit
    would otherwise end in a BrokenPipeError message."""
    with contextlib.suppress(OSError, ValueError):  # stdout without a file descriptor (a test's)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _reader_went_away() -> int:
    """The reader closed the pipe (`loyalty-mock assumptions | head`): stop quietly, as Unix tools
    do (they die of SIGPIPE, which a shell reports as 141)."""
    _discard_stdout()
    return 128 + signal.SIGPIPE


def _assumptions() -> int:
    from mock_server.spec import iter_assumptions, load_document

    count = 0
    for name in SPEC_FILES:
        document = load_document(name)
        for pointer, why in iter_assumptions(document):
            print(f"openapi/{name}.yaml#{pointer}\t{' '.join(why.split())}")
            count += 1
    print(f"{count} assumed items", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Every command: a reader that closes stdout early (`loyalty-mock assumptions | head`,
    `loyalty-mock credentials | head -1`, `--help | head`) ends the output quietly with status 141,
    as Unix tools do; `serve` keeps serving (`_serve`)."""
    try:
        try:
            return _run(build_parser().parse_args(argv), argv)
        finally:
            sys.stdout.flush()  # the reader's going shows here, not in Python's last flush at exit
    except BrokenPipeError:
        return _reader_went_away()


def _run(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    if args.command == "nginx-config":
        return _nginx_config(args, argv)
    if args.command == "serve" and args.workers is not None:
        return _serve_workers(args)
    if args.command == "assumptions":
        if args.evidence:
            from mock_server.drift.cli import run_assumptions

            return run_assumptions(args.evidence)
        return _assumptions()
    if args.command in ("proxy", "drift"):
        from mock_server.drift.cli import run as run_drift
        from mock_server.proxy.cli import run as run_proxy

        return run_proxy(args) if args.command == "proxy" else run_drift(args)
    if args.command == "conformance":
        from mock_server.conformance_cli import run

        return run(args.url, args.format, args.admin_token)
    if args.command == "credentials":
        from mock_server.app import build_services
        from mock_server.lifecycle import collect_credentials

        print(json.dumps(collect_credentials(build_services(Settings(seed=args.seed))), indent=2))
        return 0
    from mock_server.app import api_ports

    try:
        settings = settings_from(args)
        ports = api_ports(settings.apis, settings.port) if args.port_per_api else None
    except ValueError as exc:
        print(f"loyalty-mock: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        loop = eventloop.resolve(settings.event_loop)
    except eventloop.LoopUnavailable as exc:
        print(f"loyalty-mock: error: {exc}", file=sys.stderr)
        return 2
    try:
        return eventloop.run(_serve(settings, ports), loop)
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C while stopping
        return 130
