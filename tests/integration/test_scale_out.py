"""Scale-out: `loyalty-mock serve --workers 2` behind a real nginx (Debian's) configured by
`loyalty-mock nginx-config`. Tenants created through nginx land on exactly one worker (asked
directly) and stay there, are isolated through nginx, and come back after a kill -9 of their
worker, which the supervisor restarts on the same port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from mock_server.workers import nginx_config, nginx_standalone
from tests.integration.serve_process import CLI, certificate

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
SERVER_TOKEN = "server-secret-token"
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian package `nginx`)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    proxy: str  # nginx's root URL
    workers: list[str]  # each worker's root URL, worker 0 first
    supervisor: subprocess.Popen[str]
    said: list[str] = field(default_factory=list)  # the supervisor's stderr lines
    tls: tuple[str, Path] | None = None  # nginx's https root URL and its certificate, when openssl exists

    def pid(self, worker: int) -> int:
        """The live pid of `worker`, from the supervisor's last started/restarted line about it."""
        line = [x for x in self.said if f"worker-{worker} started" in x or f"worker-{worker} restarted" in x][-1]
        return int(line.split("(pid ")[1].split(")")[0])

    def owner(self, tenant: str, token: str) -> int:
        """The one worker that has `tenant` (asked directly, not through nginx)."""
        answers = [
            requests.get(f"{root}/t/{tenant}/__admin/health", headers={"X-Admin-Token": token}, timeout=10).status_code
            for root in self.workers
        ]
        assert sorted(answers) == [200, 404], f"{tenant}: {answers}"
        return answers.index(200)


def _wait_until_up(url: str, what: str, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not answer at {url}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("scale-out")
    folder.chmod(0o755)  # nginx's worker runs as `nobody` when the tests run as root
    supervisor = subprocess.Popen(
        [*CLI, "serve", "--workers", "2", "--port", "0", "--api", "customtrades", "--api", "loke",
         "--customtrades-quota", "0", "--seed", "5", "--admin-token", SERVER_TOKEN,
         "--state-file", str(folder / "state"), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    said: list[str] = []
    assert supervisor.stderr is not None and supervisor.stdout is not None
    stderr = supervisor.stderr
    reader = threading.Thread(target=lambda: said.extend(stderr), daemon=True)
    reader.start()
    nginx: subprocess.Popen[str] | None = None
    try:
        urls: dict[str, str] = {}
        while "worker-1:admin" not in urls:
            line = supervisor.stdout.readline()
            assert line, f"serve --workers 2 did not start: {''.join(said)}"
            name, url = line.split()
            urls[name] = url
        assert set(urls) == {f"worker-{i}:{name}" for i in (0, 1) for name in ("customtrades", "loke", "admin")}
        workers = [urls[f"worker-{i}:admin"].removesuffix("/__admin") for i in (0, 1)]
        health = requests.get(workers[0] + "/__admin/health", headers={"X-Admin-Token": SERVER_TOKEN}, timeout=10)
        assert health.json()["tenants"] is True

        port, tls_port = _free_port(), _free_port()
        tls = {}
        if shutil.which("openssl"):
            cert, key = certificate(folder)
            tls = {"tls_cert": str(cert), "tls_key": str(key), "tls_listen": f"127.0.0.1:{tls_port}"}
        config = nginx_standalone(
            nginx_config([w.split("//")[1] for w in workers], listen=f"127.0.0.1:{port}", **tls)
        )
        (folder / "nginx.conf").write_text(config)
        nginx = subprocess.Popen(
            [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log"),
             "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        proxy = f"http://127.0.0.1:{port}"
        _wait_until_up(proxy, "nginx", nginx)
        tls_root = (f"https://127.0.0.1:{tls_port}", Path(tls["tls_cert"])) if tls else None
        yield Cluster(proxy, workers, supervisor, said, tls_root)
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.communicate(timeout=20)
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(timeout=40)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait()
        reader.join(timeout=20)
        supervisor.stdout.close()
        stderr.close()
    assert supervisor.returncode == 0, "".join(said)
    assert not any("Traceback" in line for line in said), "".join(said)


def _running(pid: int) -> bool:
    """`pid` exists and is not a zombie (killed, not yet reaped by the supervisor)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _create(cluster: Cluster, tenant: str, **body: object) -> dict[str, object]:
    """PUT /t/<id>/__admin/tenant through nginx (the server's admin token passes through)."""
    answer = requests.put(
        f"{cluster.proxy}/t/{tenant}/__admin/tenant", json=body, headers={"X-Admin-Token": SERVER_TOKEN}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, object] = answer.json()
    assert created["id"] == tenant
    assert created["base_url"] == f"{cluster.proxy}/t/{tenant}"  # Host passes through: URLs point at nginx
    return created


@dataclass
class Tenant:
    id: str
    token: str
    key: str
    owner: int

    def admin(self) -> dict[str, str]:
        return {"X-Admin-Token": self.token}

    def api(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def tenants(cluster: Cluster) -> list[Tenant]:
    """Tenants created through nginx until each worker owns at least one (at most 16 tries)."""
    made: list[Tenant] = []
    for number in range(16):
        created = _create(cluster, f"shard-{number}", seed=11)  # one seed: same credentials everywhere
        token, credentials = str(created["admin_token"]), created["credentials"]
        assert isinstance(credentials, dict)
        tenant = Tenant(str(created["id"]), token, credentials["customtrades"]["api_key"], 0)
        tenant.owner = cluster.owner(tenant.id, token)
        made.append(tenant)
        if number >= 3 and {t.owner for t in made} == {0, 1}:
            break
    assert {t.owner for t in made} == {0, 1}, "16 tenants all hashed to one worker"
    return made


NEW_CUSTOMER = {
    "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "206-555-0100",
    "customer_type": "Residential", "is_vip": False, "notes": "scale-out",
}


def test_tenants_land_on_one_worker_and_stay_there(cluster: Cluster, tenants: list[Tenant]) -> None:
    for tenant in tenants:
        for _ in range(3):
            listed = requests.get(f"{cluster.proxy}/t/{tenant.id}/customtrades/v1/customers", headers=tenant.api(),
                                  timeout=10)
            assert listed.status_code == 200, listed.text
        # every call was served by the owner: its journal has them, the other worker has no such tenant
        owner, other = cluster.workers[tenant.owner], cluster.workers[1 - tenant.owner]
        journal = requests.get(f"{owner}/t/{tenant.id}/__admin/requests", headers=tenant.admin(), timeout=10)
        assert [entry["operation_id"] for entry in journal.json()][-3:] == ["listCustomers"] * 3
        assert cluster.owner(tenant.id, tenant.token) == tenant.owner
        elsewhere = requests.get(f"{other}/t/{tenant.id}/__admin/requests", headers=tenant.admin(), timeout=10)
        assert elsewhere.status_code == 404


def test_server_level_calls_through_nginx(cluster: Cluster, tenants: list[Tenant]) -> None:
    server = {"X-Admin-Token": SERVER_TOKEN}
    refused = requests.post(f"{cluster.proxy}/__admin/tenants", json={"id": "not-routable"}, headers=server,
                            timeout=10)
    assert refused.status_code == 405 and refused.headers["Content-Type"] == "application/problem+json"
    assert "PUT /t/<id>/__admin/tenant" in refused.json()["detail"] and refused.headers["Allow"] == "GET"
    # the list is worker 0's (documented), the same as asking worker 0 directly
    through = requests.get(f"{cluster.proxy}/__admin/tenants", headers=server, timeout=10)
    direct = requests.get(f"{cluster.workers[0]}/__admin/tenants", headers=server, timeout=10)
    assert through.status_code == 200
    listed = {t["id"] for t in through.json()}
    assert listed == {t["id"] for t in direct.json()} == {t.id for t in tenants if t.owner == 0}
    # the default tenant is worker 0's: a customer made at /customtrades through nginx is there
    credentials = requests.get(f"{cluster.proxy}/__admin/credentials", headers=server, timeout=10).json()
    auth = {"Authorization": f"Bearer {credentials['customtrades']['api_key']}"}
    made = requests.post(f"{cluster.proxy}/customtrades/v1/customers", json=NEW_CUSTOMER, headers=auth, timeout=10)
    assert made.status_code in (200, 201), made.text
    uuid = made.json()["data"]["uuid"]
    assert requests.get(f"{cluster.workers[0]}/customtrades/v1/customers/{uuid}", headers=auth,
                        timeout=10).status_code == 200
    # /__admin/tenants/<id> hashes like /t/<id>/: created and deleted there, the tenant is on its worker
    for number in range(4):
        tenant = f"by-server-path-{number}"
        made = requests.put(f"{cluster.proxy}/__admin/tenants/{tenant}", json={}, headers=server, timeout=10)
        assert made.status_code == 201, made.text
        owner = cluster.owner(tenant, str(made.json()["admin_token"]))
        health = requests.get(f"{cluster.proxy}/t/{tenant}/__admin/health", headers=server, timeout=10)
        assert health.status_code == 200, health.text
        gone = requests.delete(f"{cluster.proxy}/__admin/tenants/{tenant}", headers=server, timeout=10)
        assert gone.status_code == 204, gone.text
        assert requests.get(f"{cluster.workers[owner]}/t/{tenant}/__admin/health", headers=server,
                            timeout=10).status_code == 404
    # without the server's token nginx passes the request on and the mock refuses it
    assert requests.get(f"{cluster.proxy}/__admin/tenants", timeout=10).status_code == 401


def test_tenants_are_isolated_through_nginx(cluster: Cluster, tenants: list[Tenant]) -> None:
    same = [(a, b) for i, a in enumerate(tenants) for b in tenants[i + 1:] if a.owner == b.owner][:1]
    # b never minted a LOKE token before it is checked (one seed: b's own first token would be a's)
    minters = {a.id for a, _ in same}
    across = [(a, b) for a in tenants for b in tenants if (a.owner, b.owner) == (0, 1) and b.id not in minters][:1]
    assert len(same) == len(across) == 1
    for a, b in same + across:
        base_a, base_b = f"{cluster.proxy}/t/{a.id}", f"{cluster.proxy}/t/{b.id}"
        clock_b = requests.get(f"{base_b}/__admin/clock", headers=b.admin(), timeout=10).json()
        moved = requests.post(f"{base_a}/__admin/clock", json={"advance": 86400 * 3}, headers=a.admin(), timeout=10)
        assert moved.status_code == 200
        assert requests.get(f"{base_b}/__admin/clock", headers=b.admin(), timeout=10).json()["now"][:10] == (
            clock_b["now"][:10]
        )
        made = requests.post(f"{base_b}/customtrades/v1/customers", json=NEW_CUSTOMER, headers=b.api(), timeout=10)
        assert made.status_code in (200, 201), made.text
        uuid = made.json()["data"]["uuid"]
        # a's key is b's too (one seed) but b's customer is not in a's world
        assert requests.get(f"{base_a}/customtrades/v1/customers/{uuid}", headers=a.api(),
                            timeout=10).status_code == 404
        fault = {"api": "customtrades", "operation_id": "getCustomer", "status": 503, "body": {"error": "down"}}
        assert requests.post(f"{base_a}/__admin/faults", json=fault, headers=a.admin(), timeout=10).status_code == 201
        injected = requests.get(f"{base_a}/customtrades/v1/customers/{uuid}", headers=a.api(), timeout=10)
        assert injected.status_code == 503 and injected.json() == {"error": "down"}  # the mock's, not nginx's page
        assert requests.get(f"{base_b}/customtrades/v1/customers/{uuid}", headers=b.api(),
                            timeout=10).status_code == 200
        assert requests.post(f"{base_a}/__admin/reset", headers=a.admin(), timeout=10).status_code in (200, 204)
        assert requests.get(f"{base_b}/customtrades/v1/customers/{uuid}", headers=b.api(),
                            timeout=10).status_code == 200
        journal_a = requests.get(f"{base_a}/__admin/requests", headers=a.admin(), timeout=10).json()
        assert uuid not in str(journal_a)
        # a LOKE token minted in a (same client id and secret as b's: one seed) is no good in b
        loke = requests.get(f"{base_a}/__admin/credentials", headers=a.admin(), timeout=10).json()["loke"]
        form = {"grant_type": "client_credentials", "client_id": loke["client_id"],
                "client_secret": loke["client_secret"]}
        minted = requests.post(f"{base_a}/loke/auth/token", data=form, timeout=10)
        assert minted.status_code == 200, minted.text
        bearer = {"Authorization": f"Bearer {minted.json()['access_token']}"}
        assert requests.get(f"{base_a}/loke/organizations", headers=bearer, timeout=10).status_code == 200
        assert requests.get(f"{base_b}/loke/organizations", headers=bearer, timeout=10).status_code == 401
        # a's admin token reaches nothing of b's
        for path in ("/__admin/clock", "/__admin/requests", "/__admin/credentials"):
            assert requests.get(f"{base_b}{path}", headers=a.admin(), timeout=10).status_code in (401, 403, 404)


def test_tls_at_nginx(cluster: Cluster, tenants: list[Tenant]) -> None:
    if cluster.tls is None:
        pytest.skip("openssl is needed to make a test certificate")
    root, cert = cluster.tls
    tenant = tenants[-1]
    health = requests.get(f"{root}/t/{tenant.id}/__admin/health", headers=tenant.admin(), verify=str(cert), timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    listed = requests.get(f"{root}/t/{tenant.id}/customtrades/v1/customers", headers=tenant.api(), verify=str(cert),
                          timeout=10)
    assert listed.status_code == 200, listed.text
    # the URLs the mock writes say https, as the client spoke to nginx (its X-Forwarded-Proto)
    created = requests.put(f"{root}/t/tls-made/__admin/tenant", json={}, headers={"X-Admin-Token": SERVER_TOKEN},
                           verify=str(cert), timeout=30)
    assert created.status_code == 201, created.text
    assert created.json()["base_url"] == f"{root}/t/tls-made" and root.startswith("https://")
    discovery = requests.get(f"{root}/t/tls-made/loke/auth/.well-known/openid-configuration", verify=str(cert),
                             timeout=10)
    assert discovery.status_code == 200 and discovery.json()["issuer"] == f"{root}/t/tls-made/loke/auth"


def test_a_tenant_survives_kill_9_of_its_worker(cluster: Cluster, tenants: list[Tenant]) -> None:
    tenant = tenants[0]
    other = next(t for t in tenants if t.owner != tenant.owner)
    base = f"{cluster.proxy}/t/{tenant.id}"
    made = requests.post(f"{base}/customtrades/v1/customers", json=NEW_CUSTOMER, headers=tenant.api(), timeout=10)
    assert made.status_code in (200, 201), made.text
    uuid = made.json()["data"]["uuid"]
    victim = cluster.pid(tenant.owner)
    os.kill(victim, signal.SIGKILL)
    while _running(victim):
        time.sleep(0.01)
    # while the worker is down its tenants get nginx's 503 (never the other worker), the others are served
    down = requests.get(f"{base}/customtrades/v1/customers/{uuid}", headers=tenant.api(), timeout=10)
    if down.status_code != 200:  # the supervisor may already have it back on a fast machine
        assert down.status_code == 503 and down.headers["Retry-After"] == "2", down.text
        assert down.headers["Content-Type"] == "application/problem+json"
    served = requests.get(f"{cluster.proxy}/t/{other.id}/__admin/health", headers=other.admin(), timeout=10)
    assert served.status_code == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        back = requests.get(f"{base}/customtrades/v1/customers/{uuid}", headers=tenant.api(), timeout=10)
        if back.status_code != 503:
            break
        time.sleep(0.1)
    assert any(f"worker-{tenant.owner} (pid {victim}" in line and "restarting" in line for line in cluster.said)
    assert back.status_code == 200, f"{back.text}\nsupervisor: {''.join(cluster.said)}"
    assert back.json()["data"]["uuid"] == uuid
    assert cluster.owner(tenant.id, tenant.token) == tenant.owner  # same worker, same token
    assert cluster.pid(tenant.owner) != victim

