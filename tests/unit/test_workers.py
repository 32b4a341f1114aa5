"""`serve --workers N` (mock_server/workers.py): the options a worker gets, its port, the supervisor's
restarts and shutdown (with stand-in workers, so no mock starts here), and the nginx configuration
shipped in deploy/, which must be what `loyalty-mock nginx-config` writes."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mock_server.cli import build_parser
from mock_server.cli import main as cli_main
from mock_server.workers import child_argv, nginx_config, nginx_standalone, worker_ports

ROOT = Path(__file__).resolve().parents[2]
SKIP = ("workers", "port", "state_file", "serve_parser")


def _serve_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = build_parser().parse_args(["serve"]).serve_parser
    return parser


def test_a_worker_gets_every_serve_option_back(tmp_path: Path) -> None:
    """Every `serve` option, set to something other than its default, reaches the worker unchanged:
    a new option of a kind `child_argv` cannot pass fails here."""
    fixtures = tmp_path / "fixtures.yaml"
    fixtures.write_text("{}\n")
    argv = ["serve"]
    parser = _serve_parser()
    for action in parser._actions:
        if not action.option_strings or action.dest in (*SKIP, "help"):
            continue
        option = action.option_strings[-1]
        if action.nargs == 0:
            argv.append(option)
        elif action.choices:
            argv += [option, next(str(c) for c in action.choices if c != action.default)]
        elif option in ("--fixtures", "--tls-cert", "--tls-key"):
            argv += [option, str(fixtures)]
        else:
            argv += [option, "7"]
    argv += ["--api", "loke"]  # repeated
    args = build_parser().parse_args(argv)
    passed = child_argv(args.serve_parser, args, SKIP)
    again = build_parser().parse_args(["serve", *passed])
    expected = {k: v for k, v in vars(args).items() if k not in SKIP}
    assert {k: v for k, v in vars(again).items() if k not in SKIP} == expected
    defaults = build_parser().parse_args(["serve"])
    assert child_argv(defaults.serve_parser, defaults, SKIP) == []  # defaults are not written


def test_an_option_kind_it_cannot_pass_is_an_error() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pair", nargs=2)
    with pytest.raises(ValueError, match="--pair"):
        child_argv(parser, parser.parse_args(["--pair", "a", "b"]), ())


def test_worker_ports() -> None:
    assert worker_ports(3, 8081) == [8081, 8082, 8083]
    assert worker_ports(2, 0) == [0, 0]
    with pytest.raises(ValueError, match="above port 65535"):
        worker_ports(3, 65534)
    with pytest.raises(ValueError, match="1 or more"):
        worker_ports(0, 8081)


def test_bad_worker_options_are_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["serve", "--workers", "2", "--port-per-api"]) == 2
    assert capsys.readouterr().err.strip() == "loyalty-mock: error: --port-per-api cannot be combined with --workers"
    assert cli_main(["serve", "--workers", "3", "--port", "65534"]) == 2
    assert "above port 65535" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["serve", "--workers", "0"])
    assert exit_info.value.code == 2 and "expected 1 or more" in capsys.readouterr().err


def test_deploy_files_are_what_the_command_writes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["nginx-config", "--workers", "2", "--port", "8081", "--listen", "8080"]
    assert cli_main(argv) == 0
    assert (ROOT / "deploy/loyalty-mock.conf").read_text() == capsys.readouterr().out
    standalone = nginx_standalone("include loyalty-mock.conf;  # the file next to this one")
    assert (ROOT / "deploy/nginx.conf").read_text() == standalone


def test_nginx_config_routes_tenants_by_hash_and_the_rest_to_worker_0() -> None:
    config = nginx_config(["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"], listen="9000")
    tenants = config.split("upstream loyalty_mock_tenants {")[1].split("}")[0]
    default = config.split("upstream loyalty_mock_default {")[1].split("}")[0]
    assert "hash $loyalty_mock_tenant consistent;" in tenants
    assert [line.split()[1] for line in tenants.splitlines() if line.strip().startswith("server ")] == [
        "127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"
    ]
    assert [line.split()[1] for line in default.splitlines() if line.strip().startswith("server ")] == [
        "127.0.0.1:9001"
    ]
    assert "proxy_next_upstream off;" in config and "listen 9000;" in config
    assert "\n    # listen 8443 ssl;" in config  # TLS written, commented out
    tls = nginx_config(["h:1"], tls_cert="/c.pem", tls_key="/k.pem", tls_listen="443", tenant_rate=0)
    assert "\n    listen 443 ssl;\n    ssl_certificate /c.pem;\n    ssl_certificate_key /k.pem;" in tls
    assert "limit_req " not in tls and "limit_req_zone" not in tls


def test_nginx_keeps_open_a_connection_to_a_worker_for_every_request_a_client_may_have_in_flight() -> None:
    """The upstream pool is shared by the workers: smaller than the requests in flight, nginx closes a
    connection to one worker whenever the load shifts to another (measured: one new connection per
    16 requests at 32 clients and a pool of 32)."""
    config = nginx_config(["127.0.0.1:9001", "127.0.0.1:9002"])
    tenants = config.split("upstream loyalty_mock_tenants {")[1].split("}")[0]
    [pool] = [int(line.split()[1].rstrip(";")) for line in tenants.splitlines()
              if line.strip().startswith("keepalive ")]
    [per_client] = [int(line.split()[2].rstrip(";")) for line in config.splitlines()
                    if line.strip().startswith("limit_conn loyalty_mock_addresses")]
    assert pool >= per_client >= 32


def test_nginx_config_needs_ports(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["nginx-config", "--port", "0"]) == 2
    assert "give --port" in capsys.readouterr().err
    assert cli_main(["nginx-config", "--upstream", "10.0.0.5:80", "--upstream", "10.0.0.6:80"]) == 0
    assert "server 10.0.0.6:80 max_fails=0;" in capsys.readouterr().out
    assert cli_main(["nginx-config", "--tls-cert", "c.pem"]) == 2
    assert "go together" in capsys.readouterr().err


# A stand-in worker: listens on its port (a free one for 0), prints its `admin` line with its pid,
# then sleeps; `FAIL` in the environment makes worker 1 exit 3 before printing anything.
FAKE_WORKER = textwrap.dedent(
    """
    import os, socket, sys, time
    index, port = int(sys.argv[1]), int(sys.argv[2])
    if os.environ.get("FAIL") and index == 1:
        print("loyalty-mock: cannot listen on 127.0.0.1:1: the port is already in use", file=sys.stderr)
        sys.exit(3)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    print(f"admin http://127.0.0.1:{s.getsockname()[1]}/pid-{os.getpid()}", flush=True)
    time.sleep(600)
    """
)
SUPERVISOR = textwrap.dedent(
    """
    import sys
    from mock_server.workers import run_workers
    def command(index, port):
        return [sys.executable, "-c", sys.argv[1], str(index), str(port)]
    def announce(lines):
        print("\\n".join(f"{name} {url}" for name, url in lines), flush=True)
    sys.exit(run_workers(2, 0, command, announce))
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[1].split()[0] == "Z")


@contextmanager
def _supervisor(**env: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """The supervisor with two stand-in workers; its stderr lines collected as they come."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, FAKE_WORKER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, **env}, cwd=ROOT,
    )
    errors: list[str] = []
    assert proc.stderr is not None and proc.stdout is not None
    stderr = proc.stderr
    reader = threading.Thread(target=lambda: errors.extend(stderr), daemon=True)
    reader.start()
    try:
        yield proc, errors
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        reader.join(timeout=20)
        proc.stdout.close()
        stderr.close()


def _wait_for(predicate: object, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and relies on PR_SET_PDEATHSIG")
def test_supervisor_restarts_a_dead_worker_on_its_port_and_stops_all() -> None:
    with _supervisor() as (proc, errors):
        assert proc.stdout is not None
        lines = [proc.stdout.readline().split() for _ in range(2)]
        assert [name for name, _ in lines] == ["worker-0:admin", "worker-1:admin"]
        urls = {name: url for name, url in lines}
        pids = {name: int(url.rsplit("pid-", 1)[1]) for name, url in urls.items()}
        port0 = urls["worker-0:admin"].split(":")[2].split("/")[0]
        os.kill(pids["worker-0:admin"], signal.SIGKILL)
        _wait_for(lambda: any("worker-0 restarted" in line for line in errors), "the restart")
        said = "".join(errors)
        assert f"worker-0 (pid {pids['worker-0:admin']}, port {port0}) killed by SIGKILL; restarting" in said
        restarted = next(line for line in errors if "worker-0 restarted" in line)
        assert f"at http://127.0.0.1:{port0}/pid-" in restarted  # the same port: nginx's config names it
        new_pid = int(restarted.split("(pid ")[1].split(")")[0])
        assert _alive(new_pid) and _alive(pids["worker-1:admin"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        _wait_for(lambda: not _alive(new_pid) and not _alive(pids["worker-1:admin"]), "the workers to stop")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="relies on PR_SET_PDEATHSIG")
def test_workers_die_with_a_killed_supervisor() -> None:
    with _supervisor() as (proc, _):
        assert proc.stdout is not None
        pids = [int(proc.stdout.readline().rsplit("pid-", 1)[1]) for _ in range(2)]
        proc.kill()
        proc.wait()
        _wait_for(lambda: not any(_alive(pid) for pid in pids), "orphaned workers to stop")


def test_a_worker_that_cannot_start_stops_the_others() -> None:
    with _supervisor(FAIL="1") as (proc, errors):
        assert proc.wait(timeout=30) == 3
        assert proc.stdout is not None and proc.stdout.read() == ""
    _wait_for(lambda: any("worker-1 did not start; stopped the other workers" in line for line in errors), "why")
    assert any("already in use" in line for line in errors)  # the worker's own reason
    assert not any("Traceback" in line for line in errors)
