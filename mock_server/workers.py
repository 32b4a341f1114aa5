"""`loyalty-mock serve --workers N`: N mock processes on one host, each with its own port and state,
and the nginx configuration that shards tenants over them (`loyalty-mock nginx-config`).

Tenants are independent Worlds, so they shard: a process owns whole tenants, and a reverse proxy
routes each request by the tenant segment of its path (`/t/<id>/...`) with consistent hashing
(nginx `hash $tenant consistent`). Nothing is shared between the processes, so there is nothing to
lock. The supervisor here only starts the workers, prints their URLs, restarts one that dies (a
worker with `--state-file` comes back with its tenants: image + log replay) and stops them all on
SIGTERM/SIGINT. Worker `i` listens on `--port + i` (any free port with `--port 0`; a restarted
worker gets its first port back, since the proxy's configuration names it) and keeps its state in
`<--state-file>/worker-<i>`.

The default tenant (`/<slug>/...`, `/__admin/...` outside `/t/`) lives on worker 0 only: it is one
World, so exactly one process may own it, and worker 0 is the one at `--port`, where a single
process would be. `nginx_config` writes the proxy's half of that contract.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_TIMEOUT = 120.0  # seconds for a worker to print its URLs (a busy 2-core host compiles specs slowly)
STOP_TIMEOUT = 30.0  # seconds for the workers to stop after SIGTERM before they are killed
MAX_BACKOFF = 30.0  # seconds between restarts of a worker that keeps dying at once
STABLE_AFTER = 10.0  # a worker that ran this long before dying is restarted at once

Line = tuple[str, str]


def child_argv(parser: argparse.ArgumentParser, args: argparse.Namespace, skip: Sequence[str]) -> list[str]:
    """The command-line options that give `parser` back `args` (all but the `skip` destinations),
    so a worker runs with exactly the supervisor's options. Only options that differ from their
    default are written. An option kind this does not know is an error (a unit test round-trips
    every `serve` option, so a new kind is caught there, not in production)."""
    argv: list[str] = []
    for action in parser._actions:
        if action.dest in skip or not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        option = action.option_strings[-1] if action.option_strings[-1].startswith("--") else action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            argv.append(option if value else f"--no-{option[2:]}")
        elif isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
            argv.append(option)
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                argv += [option, str(item)]
        elif type(action) is argparse._StoreAction and action.nargs is None:
            argv += [option, str(value)]
        else:
            raise ValueError(f"cannot pass {option} ({type(action).__name__}) on to a worker")
    return argv


def worker_ports(count: int, port: int) -> list[int]:
    """Worker `i` listens on `port + i`; all on free ports when `port` is 0."""
    if count < 1:
        raise ValueError("--workers must be 1 or more")
    if port and port + count - 1 > 65535:
        raise ValueError(f"--workers {count} puts worker {count - 1} above port 65535; use a --port of at most "
                         f"{65536 - count} (or 0)")
    return [0 if port == 0 else port + index for index in range(count)]


def _exit_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the worker gets SIGTERM when the supervisor dies, even of SIGKILL, so no worker is left
    holding its port. Elsewhere a no-op."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError, AttributeError):
        function: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
        return function
    return None


_PRCTL = _prctl()  # resolved before any fork: the child only calls it


@dataclass
class Worker:
    index: int
    port: int
    argv: Callable[[int], list[str]]  # the command for a port
    process: asyncio.subprocess.Process | None = None
    lines: list[Line] = field(default_factory=list)
    started: float = 0.0
    failures: int = 0
    drain: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"worker-{self.index}"


class StartError(Exception):
    """A worker stopped (or went silent) before it printed its URLs; its own reason is already on
    stderr (workers share the supervisor's stderr)."""

    def __init__(self, worker: Worker, status: int | None) -> None:
        super().__init__(f"{worker.name} did not start")
        self.worker, self.status = worker, status


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


def _say(message: str) -> None:
    print(f"loyalty-mock: {message}", file=sys.stderr, flush=True)


def _status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    """Runs the workers until SIGTERM/SIGINT (`run`). `announce` gets every worker's URL lines once
    all have started, names prefixed `worker-<i>:` (`worker-0:admin http://...`)."""

    def __init__(self, workers: list[Worker], announce: Callable[[list[Line]], None]) -> None:
        self.workers = workers
        self.announce = announce
        self.stopping = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.stopping.set)
        starts = [asyncio.create_task(self._start(worker)) for worker in self.workers]
        starting: asyncio.Future[Any] = asyncio.gather(*starts)
        stop: asyncio.Future[Any] = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait([starting, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        failure = starting.exception() if starting.done() else None
        if not starting.done() or failure is not None:  # interrupted, or a worker could not start
            for start in starts:
                start.cancel()
            await asyncio.gather(*starts, return_exceptions=True)
            await self._stop_all()
            if isinstance(failure, StartError):
                _say(f"{failure.worker.name} did not start; stopped the other workers")
                return failure.status or 1
            if failure is not None:
                raise failure
            return 0
        self.announce([(f"{w.name}:{name}", url) for w in self.workers for name, url in w.lines])
        for worker in self.workers:  # which process is which, for an operator (and the tests)
            assert worker.process is not None
            _say(f"{worker.name} started (pid {worker.process.pid}) at {dict(worker.lines)['admin']}")
        watchers = [asyncio.create_task(self._watch(worker)) for worker in self.workers]
        await self.stopping.wait()
        await self._stop_all()
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        return 0

    async def _start(self, worker: Worker) -> None:
        """Start `worker` and read its URL lines (up to `admin`); its port is then the bound one, so
        a restart comes back on the same port."""
        process = worker.process = await asyncio.create_subprocess_exec(
            *worker.argv(worker.port),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=_exit_with_parent,
        )
        assert process.stdout is not None
        lines: list[Line] = []
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while not lines or lines[-1][0] != "admin":
                    raw = await process.stdout.readline()
                    if not raw:
                        raise StartError(worker, await process.wait())
                    name, _, url = raw.decode().strip().partition(" ")
                    lines.append((name, url.strip()))
        except TimeoutError:
            _say(f"{worker.name} printed no URLs within {START_TIMEOUT:.0f} s")
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise StartError(worker, None) from None
        worker.lines, worker.started = lines, time.monotonic()
        worker.port = int(lines[-1][1].split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        # nothing more is printed on stdout; drain it all the same so a worker never blocks on it
        worker.drain = asyncio.create_task(_drain(process.stdout))

    async def _watch(self, worker: Worker) -> None:
        """Restart `worker` whenever it dies, until the supervisor stops. A worker that keeps dying
        at once is restarted after a growing pause (0.5 s doubling up to 30 s)."""
        while True:
            assert worker.process is not None
            code = await worker.process.wait()
            await asyncio.sleep(0.2)  # a Ctrl-C reaches the workers too: let the supervisor see it first
            if self.stopping.is_set():
                return
            lived = time.monotonic() - worker.started
            worker.failures = 0 if lived >= STABLE_AFTER else worker.failures + 1
            pid = worker.process.pid
            while True:
                delay = 0.0 if worker.failures == 0 else min(MAX_BACKOFF, 0.5 * 2 ** (worker.failures - 1))
                _say(f"{worker.name} (pid {pid}, port {worker.port}) {_status(code)}; restarting"
                     + (f" in {delay:g} s" if delay else ""))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay or 0.001)
                if self.stopping.is_set():
                    return
                try:
                    await self._start(worker)
                except StartError as failed:
                    worker.failures += 1
                    code = failed.status if failed.status is not None else -signal.SIGKILL
                    assert worker.process is not None
                    pid = worker.process.pid
                    continue
                assert worker.process is not None
                _say(f"{worker.name} restarted (pid {worker.process.pid}) at {dict(worker.lines)['admin']}")
                break

    async def _stop_all(self) -> None:
        """SIGTERM to every live worker; SIGKILL to those still running after `STOP_TIMEOUT`."""
        live = [w.process for w in self.workers if w.process is not None and w.process.returncode is None]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await asyncio.gather(*(process.wait() for process in live))
        except TimeoutError:
            for process in live:
                if process.returncode is None:
                    _say(f"a worker (pid {process.pid}) did not stop within {STOP_TIMEOUT:.0f} s; killing it")
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(process.wait() for process in live))


def run_workers(
    count: int,
    port: int,
    command: Callable[[int, int], list[str]],
    announce: Callable[[list[Line]], None],
) -> int:
    """Run `count` workers (`command(index, port)` starts worker `index` on `port`) until
    SIGTERM/SIGINT; the exit status (0, or a worker's when one could not start)."""
    workers = [
        Worker(index, worker_port, functools.partial(command, index))
        for index, worker_port in enumerate(worker_ports(count, port))
    ]
    return asyncio.run(Supervisor(workers, announce).run())


def state_dir(base: Path, index: int) -> Path:
    """Worker `index`'s own state directory under `--state-file DIR`."""
    return base / f"worker-{index}"


# ---------------------------------------------------------------------------------------------
# nginx

DEFAULT_TENANT_RATE = 200  # requests per second per tenant (burst twice that): see the README
CONNECTIONS_PER_ADDRESS = 256  # nginx's limit_conn per client address
KEEPALIVE = CONNECTIONS_PER_ADDRESS  # idle connections nginx keeps to the workers: what one client may have in flight


def nginx_config(
    upstreams: Sequence[str],
    *,
    listen: str = "8080",
    tenant_rate: int = DEFAULT_TENANT_RATE,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    tls_listen: str = "8443",
    command: str = "",
) -> str:
    """The http-level nginx configuration (a file for /etc/nginx/conf.d/) that shards tenants over
    `upstreams` (`host:port` of each worker, worker 0 first). `tenant_rate` 0 turns the per-tenant
    rate limit off. With `tls_cert`/`tls_key` the server also listens with TLS on `tls_listen`;
    without, those lines are written commented out."""
    if not upstreams:
        raise ValueError("at least one upstream is needed")
    servers = "\n".join(f"    server {upstream} max_fails=0;" for upstream in upstreams)
    tls = "" if tls_cert and tls_key else "# "
    rate_zone = (
        f"limit_req_zone $loyalty_mock_tenant zone=loyalty_mock_tenants:10m rate={tenant_rate}r/s;"
        if tenant_rate
        else "# per-tenant rate limit off (--tenant-rate 0)"
    )
    rate_use = (
        f"limit_req zone=loyalty_mock_tenants burst={2 * tenant_rate} nodelay;" if tenant_rate else "# no limit_req"
    )
    generated = f"# Generated by `{command}`.\n" if command else ""
    return _NGINX_TEMPLATE.format(
        generated=generated,
        servers=servers,
        default_server=f"    server {upstreams[0]} max_fails=0;",
        listen=listen,
        keepalive=KEEPALIVE,
        connections=CONNECTIONS_PER_ADDRESS,
        tls=tls,
        tls_listen=tls_listen,
        tls_cert=tls_cert or "/etc/ssl/certs/sandbox.example.pem",
        tls_key=tls_key or "/etc/ssl/private/sandbox.example.key",
        rate_zone=rate_zone,
        rate_use=rate_use,
        refuse_post=_problem(
            405, "Method Not Allowed", "Behind this proxy a tenant is created at its own path, so that it can be "
            "routed to its worker: PUT /t/<id>/__admin/tenant with the same body, without id."
        ),
        unavailable=_problem(
            503, "Service Unavailable", "The mock worker that owns this tenant is not answering (restarting?); "
            "try again in a moment."
        ),
        too_many=_problem(
            429, "Too Many Requests", "This sandbox limits requests per tenant and connections per client "
            "address; slow down."
        ),
    )


def _problem(status: int, title: str, detail: str) -> str:
    """An application/problem+json body for nginx's own answers (no single quote: nginx quotes it)."""
    return json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})


def nginx_standalone(http_config: str, prefix: str = "") -> str:
    """A whole nginx.conf around `http_config`, for running nginx without root (`nginx -p DIR -c
    FILE -e DIR/error.log`): pid and temporary files under the prefix (relative paths resolve
    against `-p`, or under `prefix` when given), no access log."""
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    body = "\n".join(f"    {line}" if line else "" for line in http_config.splitlines())
    return _STANDALONE_TEMPLATE.format(base=base, http=body)


_NGINX_TEMPLATE = """\
# loyalty-mock behind nginx: tenants sharded over the workers of `loyalty-mock serve --workers N`.
{generated}#
# Routing. A request for a tenant (`/t/<id>/...`, and the server-level `/__admin/tenants/<id>`)
# goes to the worker chosen by consistent hashing of <id>: always the same one, and adding a
# worker moves only about 1/N of the tenants. Everything else (the default tenant at `/<slug>/...`
# and `/__admin/...`) goes to worker 0: the default tenant is one world, so exactly one process
# owns it. Create tenants with `PUT /t/<id>/__admin/tenant` (routable by its path);
# `POST /__admin/tenants` is refused here (405), since the id in its body cannot be routed.
# `GET /__admin/tenants` lists worker 0's tenants only: ask each worker on its own port for all.
#
# No failover by design (`max_fails=0`, `proxy_next_upstream off`): a tenant's requests never go
# to another worker, which does not have it (and a create there would make a second copy). While
# a worker restarts, its tenants get a 503 with Retry-After.

map $uri $loyalty_mock_tenant {{
    ~^/t/([^/]+)                  $1;
    ~^/__admin/tenants/([^/]+)    $1;
    default                       "";
}}

upstream loyalty_mock_tenants {{
    hash $loyalty_mock_tenant consistent;
{servers}
    # Idle connections kept open to the workers, one pool for all of them: at least the requests
    # in flight at once. A smaller pool closes a connection to one worker whenever the load shifts
    # to another, and reopens it later (32 clients with a pool of 32: a new TCP connection per 16
    # requests, 5 % of the throughput of two workers).
    keepalive {keepalive};
    keepalive_timeout 60s;  # below aiohttp's 75 s, so nginx never reuses a connection the worker closes
}}

upstream loyalty_mock_default {{
{default_server}
    keepalive 64;
    keepalive_timeout 60s;
}}

# Limits for a sandbox shared by strangers. The body and header limits sit above the mock's own
# (1 MiB body, 16 KiB URL or header), so the mock refuses first, in the vendor's error envelope.
{rate_zone}
limit_req_status 429;
limit_conn_zone $binary_remote_addr zone=loyalty_mock_addresses:10m;
limit_conn_status 429;

server {{
    listen {listen};
    # TLS: give the certificate and key (`loyalty-mock nginx-config --tls-cert PEM --tls-key PEM`).
    {tls}listen {tls_listen} ssl;
    {tls}ssl_certificate {tls_cert};
    {tls}ssl_certificate_key {tls_key};
    {tls}ssl_protocols TLSv1.2 TLSv1.3;

    server_tokens off;
    client_max_body_size 2m;
    large_client_header_buffers 8 32k;
    underscores_in_headers on;       # pass every header through unchanged
    ignore_invalid_headers off;      # ... and let the mock judge a bad one, in the vendor's envelope
    client_header_timeout 10s;
    client_body_timeout 30s;
    send_timeout 30s;
    keepalive_timeout 75s;
    keepalive_requests 10000;
    limit_conn loyalty_mock_addresses {connections};

    proxy_http_version 1.1;
    proxy_set_header Connection "";  # keep-alive to the workers
    proxy_set_header Host $http_host;  # the mock builds absolute URLs (LOKE's issuer, next pages) from it
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_redirect off;
    proxy_next_upstream off;
    proxy_connect_timeout 5s;
    proxy_read_timeout 610s;  # an admin-injected latency may be up to 600 s
    proxy_send_timeout 30s;

    error_page 502 503 504 = @loyalty_mock_unavailable;
    error_page 429 = @loyalty_mock_too_many;

    location /t/ {{
        {rate_use}
        proxy_pass http://loyalty_mock_tenants;
    }}

    location /__admin/tenants/ {{
        proxy_pass http://loyalty_mock_tenants;
    }}

    location = /__admin/tenants {{
        default_type application/problem+json;  # the 405's
        if ($request_method = POST) {{
            add_header Allow GET always;
            return 405 '{refuse_post}';
        }}
        proxy_pass http://loyalty_mock_default;
    }}

    location / {{
        proxy_pass http://loyalty_mock_default;
    }}

    location @loyalty_mock_unavailable {{
        default_type application/problem+json;
        add_header Retry-After 2 always;
        return 503 '{unavailable}';
    }}

    location @loyalty_mock_too_many {{
        default_type application/problem+json;
        add_header Retry-After 1 always;
        return 429 '{too_many}';
    }}
}}
"""

_STANDALONE_TEMPLATE = """\
# A whole nginx.conf for running nginx without root around the loyalty-mock configuration:
#   nginx -p DIR -c THIS_FILE -e DIR/error.log    (add -g 'daemon off;' to keep it in the foreground)
worker_processes 1;
# Below the workers' priority (nice 5), so that nginx, sharing the cores with them, does not
# preempt a worker in the middle of a request but takes what arrived meanwhile in one wake-up:
# measured with two workers on two cores, 32 -> 19 us of nginx per request and 1.47x -> 1.67x one
# process. Not lower: at 10 it waits too long and the workers idle (1.32x).
worker_priority 5;
pid {base}nginx.pid;
error_log {base}error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    client_body_temp_path {base}client_body;
    proxy_temp_path {base}proxy;
    fastcgi_temp_path {base}fastcgi;
    uwsgi_temp_path {base}uwsgi;
    scgi_temp_path {base}scgi;

{http}
}}
"""
