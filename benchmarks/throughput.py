"""Throughput of the mock against a bare aiohttp server, in one run (issue: engine performance).

    python benchmarks/throughput.py [--seconds 10] [--connections 32]

Starts (a) a bare aiohttp server answering fixed JSON bodies of the same sizes as the mock's and
(b) the mock (`--api customtrades --customtrades-quota 0`, plain serve: no --strict), each pinned
to core 0, and drives both with wrk pinned to core 1: an authenticated GET of a Custom Trades
customer and an authenticated POST creating one (a validated body). Prints requests/s, p50 and
p99, and the mock/bare ratios. Targets: GET >= 0.60x and POST >= 0.45x of bare, p99 < 10 ms.
"""

from __future__ import annotations

import argparse
import sys

import requests
from _common import Result, cores, process, wrk

BARE = r"""
import sys
from aiohttp import web
get_body, post_body = open(sys.argv[2], 'rb').read(), open(sys.argv[3], 'rb').read()
async def get(request):
    return web.Response(body=get_body, content_type="application/json")
async def post(request):
    await request.read()
    return web.Response(body=post_body, content_type="application/json")
app = web.Application()
app.router.add_get("/customer", get)
app.router.add_post("/customers", post)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

NEW_CUSTOMER = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone": "206-555-0100",
    "customer_type": "Residential",
    "is_vip": False,
    "notes": "benchmark",
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    server, _ = cores()
    results: dict[str, Result] = {}

    mock_cmd = [
        *server,
        sys.executable,
        "-m",
        "mock_server",
        "serve",
        "--port",
        str(_free_port()),
        "--api",
        "customtrades",
        "--customtrades-quota",
        "0",
        "--log-level",
        "error",
    ]
    with process(mock_cmd, read_urls=True) as urls:
        api, admin = urls["customtrades"], urls["admin"]
        key = requests.get(admin + "/credentials", timeout=10).json()["customtrades"]["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        created = requests.post(api + "/v1/customers", json=NEW_CUSTOMER, headers=auth, timeout=10)
        created.raise_for_status()
        uuid = created.json()["data"]["uuid"]
        get_bytes = requests.get(f"{api}/v1/customers/{uuid}", headers=auth, timeout=10).content
        post_bytes = created.content
        requests.delete(admin + "/requests", timeout=10)
        results["mock GET"] = wrk(
            f"{api}/v1/customers/{uuid}", connections=args.connections, seconds=args.seconds, headers=auth
        )
        results["mock POST"] = wrk(
            f"{api}/v1/customers",
            connections=args.connections,
            seconds=args.seconds,
            method="POST",
            headers={**auth, "Content-Type": "application/json"},
            body=NEW_CUSTOMER,
        )

    import tempfile

    with tempfile.NamedTemporaryFile(delete=False) as g, tempfile.NamedTemporaryFile(delete=False) as p:
        g.write(get_bytes)
        p.write(post_bytes)
    port = _free_port()
    bare_cmd = [*server, sys.executable, "-c", BARE, str(port), g.name, p.name]
    with process(bare_cmd, ready_url=f"http://127.0.0.1:{port}/customer"):
        results["bare GET"] = wrk(
            f"http://127.0.0.1:{port}/customer", connections=args.connections, seconds=args.seconds, headers=auth
        )
        results["bare POST"] = wrk(
            f"http://127.0.0.1:{port}/customers",
            connections=args.connections,
            seconds=args.seconds,
            method="POST",
            headers={**auth, "Content-Type": "application/json"},
            body=NEW_CUSTOMER,
        )

    print(f"{'server/operation':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in results.items():
        print(f"{name:<12} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.non_2xx:>8}")
    get_ratio = results["mock GET"].rps / results["bare GET"].rps
    post_ratio = results["mock POST"].rps / results["bare POST"].rps
    print(f"ratio mock/bare: GET {get_ratio:.2f} (target >= 0.60), POST {post_ratio:.2f} (target >= 0.45)")
    worst_p99 = max(results["mock GET"].p99_ms, results["mock POST"].p99_ms)
    print(f"mock p99: {worst_p99:.2f} ms (target < 10 ms)")
    ok = get_ratio >= 0.60 and post_ratio >= 0.45 and worst_p99 < 10
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
