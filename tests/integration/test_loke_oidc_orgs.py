"""LOKE as a published client starts it (issue 16): OpenID Connect discovery of the issuer, the
client-credentials grant by either client authentication method, then the organizations that
installed the add-on and their locations. The published clients (openid-client 5 and 6 from npm,
Authlib from PyPI) run unmodified: only the issuer URL and the credentials are theirs to set."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests

from mock_server.settings import Settings
from mock_server.spec import load_document
from mock_server.testing import MockServer
from tests.integration.serve_process import certificate, start_serve

CLIENTS = Path(__file__).resolve().parent.parent / "clients"
DISCOVERY = "/auth/.well-known/openid-configuration"


def _creds(mock: MockServer) -> dict[str, Any]:
    creds: dict[str, Any] = mock.credentials_cache()["loke"]
    return creds


def _bearer(mock: MockServer) -> dict[str, str]:
    return {"Authorization": f"Bearer {_creds(mock)['access_token']}"}


def _get(mock: MockServer, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(mock.url("loke", path), headers=_bearer(mock), timeout=30, **kwargs)


def _check_discovery(base: str, verify: Any = True) -> dict[str, Any]:
    """The document at <base>/auth names <base>/auth as issuer and endpoints that work."""
    response = requests.get(base + DISCOVERY, timeout=30, verify=verify)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    issuer = base + "/auth"
    assert doc["issuer"] == issuer
    assert doc["token_endpoint"] == issuer + "/token"
    assert doc["jwks_uri"] == issuer + "/jwks"
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}
    keys = requests.get(doc["jwks_uri"], timeout=30, verify=verify)
    assert keys.status_code == 200 and keys.json() == {"keys": []}
    return doc


def _grant_both_ways(token_endpoint: str, client_id: str, secret: str, verify: Any = True) -> list[str]:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    by_basic = requests.post(token_endpoint, data={"grant_type": "client_credentials"},
                             headers={"Authorization": f"Basic {basic}"}, timeout=30, verify=verify)
    by_post = requests.post(token_endpoint, data={"grant_type": "client_credentials", "client_id": client_id,
                                                  "client_secret": secret}, timeout=30, verify=verify)
    assert by_basic.status_code == 200 and by_post.status_code == 200, (by_basic.text, by_post.text)
    return [by_basic.json()["access_token"], by_post.json()["access_token"]]


# -- discovery ---------------------------------------------------------------------------------------
def test_discovery_under_the_slug_points_back_at_the_mock_and_its_token_endpoint_takes_both_methods(
    mock: MockServer,
) -> None:
    doc = _check_discovery(mock.url("loke"))
    creds = _creds(mock)
    for token in _grant_both_ways(doc["token_endpoint"], creds["client_id"], creds["client_secret"]):
        listed = requests.get(mock.url("loke", "/organizations"), headers={"Authorization": f"Bearer {token}"},
                              timeout=30)
        assert listed.status_code == 200
    # a trailing slash on the issuer (openid-client appends .well-known after it) reaches nothing else
    assert requests.get(mock.url("loke", "/auth/.well-known/other"), timeout=30).status_code == 404


def test_discovery_follows_the_host_the_client_used(mock: MockServer) -> None:
    """Built from the request (scheme, Host, prefix), not from the listening socket: a client that
    reached the mock as localhost (or through a proxy that keeps the Host) gets localhost back."""
    doc = requests.get(mock.url("loke", DISCOVERY).replace("127.0.0.1", "localhost"), timeout=30).json()
    assert doc["issuer"] == f"http://localhost:{mock.port}/loke/auth"
    proxied = requests.get(mock.url("loke", DISCOVERY), headers={"Host": "auth.example.test:8443"}, timeout=30)
    assert proxied.json()["token_endpoint"] == "http://auth.example.test:8443/loke/auth/token"


def test_discovery_at_the_root_with_tls_when_loke_is_the_only_api(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    proc, urls = start_serve("--api", "loke", "--seed", "5", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        root = urls["(root)"].rstrip("/")
        assert root.startswith("https://")
        creds = requests.get(urls["admin"] + "/credentials", timeout=30, verify=str(cert)).json()["loke"]
        for base in (root, urls["loke"].rstrip("/")):
            doc = _check_discovery(base, verify=str(cert))
            assert doc["issuer"].startswith("https://")
            _grant_both_ways(doc["token_endpoint"], creds["client_id"], creds["client_secret"], verify=str(cert))
        if _node_ready():
            found = _run_node_clients(root + "/auth", root, creds, {"NODE_EXTRA_CA_CERTS": str(cert)})
            assert found["v6"]["client_secret_basic"]["issuer"] == root + "/auth"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


# -- published clients -------------------------------------------------------------------------------
def _node_ready() -> bool:
    return shutil.which("node") is not None and (CLIENTS / "node_modules" / "openid-client").is_dir()


def _run_node_clients(issuer: str, api_base: str, creds: dict[str, Any], extra_env: dict[str, str]) -> dict[str, Any]:
    env = dict(os.environ, LOKE_CLIENT_ID=creds["client_id"], LOKE_CLIENT_SECRET=creds["client_secret"], **extra_env)
    run = subprocess.run(["node", str(CLIENTS / "loke_oidc.mjs"), issuer, api_base], env=env, capture_output=True,
                         text=True, timeout=120, cwd=CLIENTS)
    assert run.returncode == 0, run.stderr[-4000:]
    found: dict[str, Any] = json.loads(run.stdout)
    return found


def test_openid_client_discovers_the_issuer_and_runs_the_client_credentials_grant(mock: MockServer) -> None:
    """openid-client 5 (`Issuer.discover`, `client.grant`, `client.requestResource`) and 6
    (`discovery`, which checks the issuer strictly, `clientCredentialsGrant`,
    `fetchProtectedResource`), each with client_secret_basic and client_secret_post."""
    if not _node_ready():
        pytest.skip("node and tests/clients/node_modules are needed (.ci/run installs them with npm ci)")
    creds = _creds(mock)
    requests.delete(mock.admin_url("/requests"), timeout=30)
    found = _run_node_clients(mock.url("loke", "/auth"), mock.url("loke"), creds, {})
    installed = [creds["organization_id"], creds["second_organization_id"]]
    assert found["v5"]["issuer"] == mock.url("loke", "/auth")
    assert found["v5"]["token_endpoint"] == mock.url("loke", "/auth/token")
    assert found["v5"]["wrong_secret"] == {"name": "OPError", "error": "invalid_client"}
    for version in ("v5", "v6"):
        for method in ("client_secret_basic", "client_secret_post"):
            result = found[version][method]
            assert result["token_type"].lower() == "bearer"
            assert result["organizations"] == installed
            assert result["customers_status"] == 200 and result["customers"] == 12
    # both client authentication methods really reached the token endpoint
    grants = [entry for entry in mock.journal(api="loke", operation_id="getToken") if entry["status"] == 200]
    with_basic = [e for e in grants if "authorization" in {k.lower() for k in e["request"]["headers"]}]
    assert len(grants) == 4 and len(with_basic) == 2


def test_authlib_validates_the_metadata_and_fetches_tokens_by_both_methods(mock: MockServer) -> None:
    oidc = pytest.importorskip("authlib.oidc.discovery", reason="Authlib is in the test extra")
    session_module = pytest.importorskip("authlib.integrations.requests_client")
    doc = requests.get(mock.url("loke", DISCOVERY), timeout=30).json()
    metadata = oidc.OpenIDProviderMetadata(doc)
    metadata.validate()  # OpenID Connect Discovery and RFC 8414 rules (loopback http is allowed)
    creds = _creds(mock)
    for method in ("client_secret_basic", "client_secret_post"):
        with session_module.OAuth2Session(creds["client_id"], creds["client_secret"],
                                          token_endpoint_auth_method=method) as session:
            token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
            assert token["token_type"].lower() == "bearer" and token["expires_in"] == 3600
            customers = session.get(mock.url("loke", f"/organizations/{creds['organization_id']}/customers"),
                                    timeout=30)
            assert customers.status_code == 200 and len(customers.json()) == 12


# -- organizations and locations ---------------------------------------------------------------------
def test_organizations_lists_the_installed_ones_and_each_can_be_read(mock: MockServer) -> None:
    creds = _creds(mock)
    listed = _get(mock, "/organizations")
    assert listed.status_code == 200 and "X-Next-Page" not in listed.headers
    organizations = listed.json()
    assert [o["id"] for o in organizations] == [creds["organization_id"], creds["second_organization_id"]]
    assert all(set(o) == {"id", "name"} and o["name"] for o in organizations)
    for organization in organizations:
        assert _get(mock, f"/organizations/{organization['id']}").json() == organization
    refused = _get(mock, f"/organizations/{creds['not_installed_organization_id']}")
    assert refused.status_code == 403 and refused.json()["type"] == "forbidden"
    missing = _get(mock, "/organizations/01HZZZZZZZZZZZZZZZZZZZZZZ9")
    assert missing.status_code == 404 and missing.json()["type"] == "not_found"
    unauthenticated = requests.get(mock.url("loke", "/organizations"), timeout=30)
    assert unauthenticated.status_code == 401


def test_spec_example_organization_exists_in_the_seeded_mock(mock: MockServer) -> None:
    """A fuzzer that starts from the spec's examples reaches real data, not a 404."""
    example = load_document("loke")["components"]["parameters"]["OrganizationId"]["example"]
    assert _get(mock, f"/organizations/{example}").status_code == 200
    assert _get(mock, f"/organizations/{example}/customers").json() != []
    location = load_document("loke")["components"]["parameters"]["LocationId"]["example"]
    assert _get(mock, f"/organizations/{example}/locations/{location}").status_code == 200


def test_locations_are_the_ones_payments_are_taken_at(mock: MockServer) -> None:
    creds = _creds(mock)
    org = creds["organization_id"]
    locations = _get(mock, f"/organizations/{org}/locations").json()
    ids = [location["id"] for location in locations]
    assert len(ids) >= 2 and ids == sorted(ids)
    for location in locations:
        assert _get(mock, f"/organizations/{org}/locations/{location['id']}").json() == location
    payments = _get(mock, f"/organizations/{org}/payments").json()
    by_location = {lid: _get(mock, f"/organizations/{org}/payments", params={"locationId": lid}).json()
                   for lid in ids}
    assert sorted(p["id"] for found in by_location.values() for p in found) == sorted(p["id"] for p in payments)
    assert all(by_location[lid] for lid in ids), "every seeded venue has taken a payment"
    # a payment event names one of these locations
    customer = _get(mock, f"/organizations/{org}/customers").json()[0]["id"]
    made = mock.admin("POST", "/loke/events", json={"event": "payment.completed", "location": {"id": ids[1]},
                                                    "payment": {"customer": {"id": customer},
                                                                "items": [{"name": "Scone", "amount": 450}]}})
    assert made.status_code == 202, made.text
    assert made.json()["location"] == locations[1]
    missing = _get(mock, f"/organizations/{org}/locations/01HZZZZZZZZZZZZZZZZZZZZZZ9")
    assert missing.status_code == 404 and missing.json()["type"] == "not_found"
    other = _get(mock, f"/organizations/{creds['second_organization_id']}/locations/{ids[0]}")
    assert other.status_code == 404


def test_seeded_organizations_and_locations_are_deterministic_by_seed() -> None:
    def world(seed: int) -> list[Any]:
        with MockServer(Settings(port=0, seed=seed, apis=("loke",))) as server:
            headers = {"Authorization": f"Bearer {server.credentials()['loke']['access_token']}"}
            orgs = requests.get(server.url("loke", "/organizations"), headers=headers, timeout=30).json()
            return [(o, requests.get(server.url("loke", f"/organizations/{o['id']}/locations"), headers=headers,
                                     timeout=30).json()) for o in orgs]

    first = world(11)
    assert first == world(11)
    assert first != world(12)


def test_fixtures_add_organizations_and_locations_and_listing_pages(mock: MockServer) -> None:
    many = [{"name": f"Franchise {n:04d}"} for n in range(1000)]
    section = {
        "organizations": [{"id": "01J00000000000000000000R01", "name": "Harbour Kiosk"},
                          {"id": "01J00000000000000000000R02", "name": "Never Installed", "installed": False},
                          *many],
        "locations": [{"organization_id": "01J00000000000000000000R01", "id": "01J00000000000000000000C01",
                       "name": "Harbour Kiosk - Wharf"}],
        "customers": [{"organization_id": "01J00000000000000000000R01", "id": "01J00000000000000000000K01",
                       "firstName": "Ada", "lastName": "Byrne"}],
        "payments": [{"organization_id": "01J00000000000000000000R01", "customer": {"id": "01J00000000000000000000K01"},
                      "locationId": "01J00000000000000000000C01",
                      "items": [{"name": "Flat White", "amount": 550}]}],
    }
    loaded = mock.admin("POST", "/fixtures", json={"loke": section})
    assert loaded.status_code == 200, loaded.text
    seen: list[str] = []
    url: str | None = mock.url("loke", "/organizations")
    pages = 0
    while url:
        page = requests.get(url, headers=_bearer(mock), timeout=30)
        assert page.status_code == 200
        seen.extend(o["id"] for o in page.json())
        url = page.headers.get("X-Next-Page")
        pages += 1
    assert pages == 2 and len(seen) == len(set(seen)) == 2 + 1 + 1000
    assert "01J00000000000000000000R01" in seen and "01J00000000000000000000R02" not in seen
    kiosk = "/organizations/01J00000000000000000000R01"
    assert _get(mock, kiosk + "/locations").json() == [{"id": "01J00000000000000000000C01",
                                                         "name": "Harbour Kiosk - Wharf"}]
    paid = _get(mock, kiosk + "/payments", params={"locationId": "01J00000000000000000000C01"}).json()
    assert [p["chargedAmount"] for p in paid] == [550]
    assert _get(mock, "/organizations/01J00000000000000000000R02").status_code == 403


def test_fixtures_check_every_organization_and_location_before_loading_any(mock: MockServer) -> None:
    before = _get(mock, "/organizations").json()
    org = _creds(mock)["organization_id"]
    locations_before = _get(mock, f"/organizations/{org}/locations").json()
    bad = {
        "organizations": [{"id": "01J00000000000000000000R03", "name": "Fine"},
                          {"id": before[0]["id"], "name": "Taken id"}, {"name": ""}],
        "locations": [{"name": "Fine venue"}, {"organization_id": "01J00000000000000000000R99", "name": "Nowhere"}],
        "payments": [{"organization_id": "01J00000000000000000000R03",
                      "customer": {"id": "01J00000000000000000000K09"}}],
    }
    refused = mock.admin("POST", "/fixtures", json={"loke": bad})
    assert refused.status_code == 400, refused.text
    text = refused.text
    for where in ("loke.organizations[1].id", "loke.organizations[2].name", "loke.locations[1].organization_id",
                  "loke.payments[0].locationId", "loke.payments[0].customer.id"):
        assert where in text, (where, text)
    assert _get(mock, "/organizations").json() == before
    assert _get(mock, f"/organizations/{org}/locations").json() == locations_before
