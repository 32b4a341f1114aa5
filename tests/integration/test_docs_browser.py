"""The interactive docs, `/__admin/docs/<name>` (issue 21): Swagger UI 5 renders every spec in a
real browser (Debian's chromium driven by Playwright), shows every operation, loads nothing from
another host, and "Try it out" calls the mock (for the provider spec: the POS under test). Also the
spec variant the page loads (`?mock_url=`) and the admin token on the page's own files (issue 17).

The browser tests skip, with the reason, where `/usr/bin/chromium` or Playwright is absent; one
browser serves them all. Set `DOCS_SCREENSHOT=<file.png>` to keep a screenshot of the Custom Trades
page (docs/img/swagger-customtrades.png was made so)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from mock_server.settings import Settings
from mock_server.spec import HTTP_METHODS, load_document
from mock_server.testing import MockServer
from tests.browser import browser_missing, launched

SPECS = ("letstrade-pos", "letstrade-pos-provider", "letstrade-channels", "customtrades", "capillary", "loke", "admin")
ADMIN_TOKEN = "docs-admin-token-0123"


needs_browser = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


# -- a POS under test that a browser may call (it answers CORS preflight) -------------------------------
@dataclass
class CorsPos:
    received: list[Any] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> CorsPos:
        pos = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _cors(self) -> None:
                self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
                self.send_header("Access-Control-Allow-Headers", "Content-Type")
                self.send_header("Access-Control-Allow-Methods", "POST")

            def do_OPTIONS(self) -> None:
                self.send_response(204)
                self._cors()
                self.end_headers()

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                pos.received.append({"path": self.path, "body": body})
                payload = json.dumps(
                    {"success": True, "message": "applied by the POS under test", "content": {}}
                ).encode()
                self.send_response(200)
                self._cors()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="cors-pos", daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


class PrefixTlsProxy:
    """What a shared sandbox puts in front of the mock: a reverse proxy that terminates TLS and
    serves the mock under a path prefix (`https://127.0.0.1:<port>/loyalty/...` -> the mock)."""

    HOP_BY_HOP = frozenset(
        {"host", "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
    )

    def __init__(self, upstream: str, cert: Path, key: Path, prefix: str = "/loyalty") -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def forward(self) -> None:
                if not self.path.startswith(prefix + "/"):
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy.HOP_BY_HOP}
                answer = requests.request(
                    self.command,
                    upstream + self.path[len(prefix) :],
                    headers={**headers, "Accept-Encoding": "identity"},
                    data=self.rfile.read(length) if length else None,
                    timeout=30,
                    allow_redirects=False,
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in proxy.HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}{prefix}"

    def __enter__(self) -> PrefixTlsProxy:
        threading.Thread(target=self.server.serve_forever, name="tls-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subject = ["-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), *subject],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def pos() -> Iterator[CorsPos]:
    running = CorsPos().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def docs_mock(pos: CorsPos) -> Iterator[MockServer]:
    settings = Settings(port=0, strict=True, pos_callback_url=pos.base_url + "/append-vouchers")
    with MockServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as chromium:
        yield chromium


# -- what the spec says the page must show ---------------------------------------------------------------
def spec_operations(name: str) -> list[str]:
    """`METHOD path` of every operation, webhooks included (Swagger UI shows them as operations too)."""
    document = load_document(name)
    found = []
    for section in ("paths", "webhooks"):
        for path, item in (document.get(section) or {}).items():
            found += [f"{method.upper()} {path}" for method in item if method in HTTP_METHODS]
    return sorted(found)


def expected_base(name: str, root: str, pos: CorsPos | None = None) -> str:
    if name == "admin":
        return f"{root}/__admin"
    if name == "letstrade-pos-provider":
        assert pos is not None
        return pos.base_url
    return f"{root}/{name}"


# -- driving Swagger UI ----------------------------------------------------------------------------------
def open_docs(browser: Any, base_url: str, name: str, **context_options: Any) -> tuple[Any, Any, list[str]]:
    """A fresh browser context on the docs page of `name`; requests to any other host are refused
    and listed (the page must work offline)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    elsewhere: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(("http://127.0.0.1:", "https://127.0.0.1:", "data:")):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    answer = page.goto(f"{base_url}/__admin/docs/{name}")
    assert answer is not None and answer.status == 200, answer and answer.status
    # operations, or what Swagger UI shows instead: an error, or "Unable to render this definition"
    page.wait_for_selector(".opblock, .errors-wrapper, .version-pragma", timeout=30_000)
    return context, page, elsewhere


def rendered_operations(page: Any) -> list[str]:
    return sorted(
        page.eval_on_selector_all(
            "#swagger-ui .opblock",
            """blocks => blocks.map(b => b.querySelector('.opblock-summary-method').textContent + ' '
                + b.querySelector('[data-path]').getAttribute('data-path'))""",
        )
    )


def authorize(page: Any, scheme: str, *values: str) -> None:
    """Swagger UI's Authorize dialog: fill the scheme's inputs in order, apply, close."""
    page.click(".auth-wrapper button.authorize")
    box = page.locator(".auth-container", has=page.locator("h4", has_text=scheme))
    for index, value in enumerate(values):
        box.locator("input").nth(index).fill(value)
    box.locator("button.authorize").click()
    box.locator("button", has_text="Logout").wait_for(timeout=15_000)
    page.click(".modal-ux .close-modal")


def try_it_out(
    page: Any, method: str, path: str, params: dict[str, str] | None = None, body: Any = None
) -> tuple[int, str, str]:
    """Try it out -> Execute on one operation: (status, request URL, response body) as the page shows them."""
    block = page.locator(f".opblock.opblock-{method}", has=page.locator(f'[data-path="{path}"]'))
    block.locator(".opblock-summary").first.click()
    block.locator("button.try-out__btn").click()
    for name, value in (params or {}).items():
        block.locator(f'tr[data-param-name="{name}"] input').fill(value)
    if body is not None:
        block.locator("textarea.body-param__text").fill(json.dumps(body))
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=30_000)
    url = block.locator(".request-url pre").inner_text()
    shown = block.locator(".live-responses-table tbody .response-col_description pre").first.inner_text()
    return int(status.inner_text().strip()), url.strip(), shown


def capillary_password(creds: dict[str, Any]) -> str:
    return hashlib.md5(creds["capillary"]["till_password"].encode(), usedforsecurity=False).hexdigest()


# One "Try it out" per spec, as a user would: authorize with the mock's credentials, then execute.
Exercise = Callable[[Any, dict[str, Any]], tuple[str, str, tuple[int, str, str]]]


def _letstrade_pos(page: Any, creds: dict[str, Any]) -> tuple[str, str, tuple[int, str, str]]:
    body = {"email": creds["letstrade"]["email"], "password": creds["letstrade"]["password"]}
    return "signIn", '"token"', try_it_out(page, "post", "/user/sign_in", body=body)


def _provider(page: Any, creds: dict[str, Any]) -> tuple[str, str, tuple[int, str, str]]:
    body = {
        "uid": "ORDER-1",
        "store_id": "STORE-1",
        "transaction_id": "BASKET-1",
        "remaining_amount": "10.00",
        "vouchers": [],
    }
    return "appendVouchers", "applied by the POS under test", try_it_out(page, "post", "/append-vouchers", body=body)


def _channels(page: Any, creds: dict[str, Any]) -> tuple[str, str, tuple[int, str, str]]:
    authorize(page, "bearerAuth", creds["letstrade"]["token"])
    return "listChannels", '"success"', try_it_out(page, "get", "/v2/channels")


def _customtrades(page: Any, creds: dict[str, Any]) -> tuple[str, str, tuple[int, str, str]]:
    authorize(page, "bearerAuth", creds["customtrades"]["api_key"])
    return "listCustomers", '"data"', try_it_out(page, "get", "/v1/customers")


def _capillary(page: Any, creds: dict[str, Any]) -> tuple[str, str, tuple[int, str, str]]:
    authorize(page, "basicAuth", creds["capillary"]["till_username"], capillary_password(creds))
    return "listExtendedFields", '"dataType"', try_it_out(page, "get", "/v2/extendedFields")


def _loke(page: Any, creds: dict[str, Any]) -> tuple[str, str, tuple[int, str, str]]:
    # the token comes from the mock's own token operation (the spec's tokenUrl names the vendor's host)
    authorize(page, "oauth2", creds["loke"]["client_id"], creds["loke"]["client_secret"])
    # Swagger UI fills optional parameters with the spec's examples: a cursor of no listing of this
    # mock and filters no seeded customer matches; a user clears them as here
    params = {"organizationId": creds["loke"]["organization_id"], "after": "", "email": "", "phoneNumber": ""}
    return "listCustomers", '"firstName"', try_it_out(page, "get", "/organizations/{organizationId}/customers", params)


def _admin(page: Any, creds: dict[str, Any]) -> tuple[str, str, tuple[int, str, str]]:
    return "health", '"status": "ok"', try_it_out(page, "get", "/health")


EXERCISES: dict[str, Exercise] = {
    "letstrade-pos": _letstrade_pos,
    "letstrade-pos-provider": _provider,
    "letstrade-channels": _channels,
    "customtrades": _customtrades,
    "capillary": _capillary,
    "loke": _loke,
    "admin": _admin,
}


@needs_browser
@pytest.mark.parametrize("name", SPECS)
def test_docs_page_renders_every_operation_and_tries_one_against_the_mock(
    name: str, browser: Any, docs_mock: MockServer, pos: CorsPos
) -> None:
    docs_mock.reset()
    creds = docs_mock.credentials()
    context, page, elsewhere = open_docs(browser, docs_mock.base_url, name)
    try:
        text = page.inner_text("#swagger-ui")
        assert "Unable to render" not in text and page.locator(".errors-wrapper").count() == 0, text[:500]
        assert rendered_operations(page) == spec_operations(name)
        base = expected_base(name, docs_mock.base_url, pos)
        assert page.locator(".servers select option").first.get_attribute("value") == base
        if name == "customtrades" and os.environ.get("DOCS_SCREENSHOT"):
            page.screenshot(path=os.environ["DOCS_SCREENSHOT"])

        operation_id, marker, (status, url, shown) = EXERCISES[name](page, creds)
        assert status == 200, shown
        assert url.startswith(base + "/"), url
        assert marker in shown
        if name == "letstrade-pos-provider":
            assert pos.received[-1] == {
                "path": "/append-vouchers",
                "body": {
                    "uid": "ORDER-1",
                    "store_id": "STORE-1",
                    "transaction_id": "BASKET-1",
                    "remaining_amount": "10.00",
                    "vouchers": [],
                },
            }
        elif name != "admin":  # admin calls are never journaled
            calls = [(e["operation_id"], e["status"]) for e in docs_mock.journal()]
            assert (operation_id, 200) in calls, calls
        assert elsewhere == []
    finally:
        context.close()


@needs_browser
def test_try_it_out_calls_the_mock_behind_a_tls_proxy_with_a_path_prefix(
    browser: Any, docs_mock: MockServer, tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    docs_mock.reset()
    creds = docs_mock.credentials()
    with PrefixTlsProxy(docs_mock.base_url, *self_signed_certificate(tmp_path)) as proxy:
        context, page, elsewhere = open_docs(browser, proxy.url, "customtrades", ignore_https_errors=True)
        try:
            assert rendered_operations(page) == spec_operations("customtrades")
            base = f"{proxy.url}/customtrades"
            assert page.locator(".servers select option").first.get_attribute("value") == base
            _, marker, (status, url, shown) = _customtrades(page, creds)
            assert status == 200 and url.startswith(f"{base}/v1/customers") and marker in shown, (status, url)
            assert ("listCustomers", 200) in [(e["operation_id"], e["status"]) for e in docs_mock.journal()]
            assert elsewhere == []
        finally:
            context.close()


@needs_browser
def test_docs_with_an_admin_token_work_in_a_browser_given_it_as_basic_credentials(browser: Any) -> None:
    settings = Settings(port=0, strict=True, apis=("customtrades",), admin_token=ADMIN_TOKEN)
    with MockServer(settings) as guarded:
        from playwright.sync_api import Error as PlaywrightError

        context = browser.new_context()
        try:
            refused = context.new_page().goto(f"{guarded.base_url}/__admin/docs/customtrades")
            assert refused is not None and refused.status == 401
        except PlaywrightError as error:  # the browser was asked for credentials (none given: no dialog)
            assert "ERR_INVALID_AUTH_CREDENTIALS" in str(error)
        finally:
            context.close()
        creds = guarded.admin("GET", "/credentials", headers={"X-Admin-Token": ADMIN_TOKEN}).json()
        context, page, elsewhere = open_docs(
            browser, guarded.base_url, "customtrades", http_credentials={"username": "me", "password": ADMIN_TOKEN}
        )
        try:
            assert rendered_operations(page) == spec_operations("customtrades")
            _, marker, (status, url, shown) = _customtrades(page, creds)
            assert status == 200 and url.startswith(f"{guarded.base_url}/customtrades/") and marker in shown
            assert elsewhere == []
        finally:
            context.close()


# -- without a browser: the spec variant, the files, the token -------------------------------------------
@pytest.mark.parametrize("name", SPECS)
def test_the_spec_the_page_loads_points_at_the_mock_behind_a_prefix_and_tls(name: str, docs_mock: MockServer) -> None:
    root = "https://sandbox.example/loyalty"
    answer = docs_mock.admin("GET", f"/specs/{name}", params={"mock_url": root + "/"})
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/yaml")
    served, original = yaml.safe_load(answer.text), load_document(name)
    base = docs_mock.settings.pos_callback_url.rsplit("/", 1)[0] if name == "letstrade-pos-provider" else None
    base = base or expected_base(name, root)
    assert served["servers"][0]["url"] == base
    assert served["servers"][1:] == [s for s in original["servers"] if s["url"] != base]
    assert "Try it out calls" in served["info"]["description"]
    assert served["info"]["description"].endswith(original["info"]["description"])
    for key in set(original) - {"servers", "info", "components"}:
        assert served[key] == original[key], key
    schemes = served.get("components", {}).get("securitySchemes", {})
    for scheme_name, scheme in schemes.items():
        for flow in (scheme.get("flows") or {}).values():
            assert flow["tokenUrl"] == f"{base}/auth/token", scheme_name  # LOKE: the mock's getToken
    if "components" in original:
        assert {k: v for k, v in served["components"].items() if k != "securitySchemes"} == {
            k: v for k, v in original["components"].items() if k != "securitySchemes"
        }


def test_the_spec_file_itself_is_served_unchanged(docs_mock: MockServer) -> None:
    from mock_server.spec import specs_dir

    for name in SPECS:
        answer = docs_mock.admin("GET", f"/specs/{name}")
        assert answer.status_code == 200
        assert answer.content == (specs_dir() / f"{name}.yaml").read_bytes()
        assert answer.text.startswith("openapi: 3.1")
    assert docs_mock.admin("GET", "/specs/../secrets").status_code == 404
    assert docs_mock.admin("GET", "/specs/nope").status_code == 404


def test_the_provider_spec_keeps_its_servers_when_no_pos_is_configured() -> None:
    with MockServer(Settings(port=0, apis=("customtrades",))) as plain:
        answer = plain.admin("GET", "/specs/letstrade-pos-provider", params={"mock_url": plain.base_url})
        assert answer.status_code == 200
        served = yaml.safe_load(answer.text)
    assert served["servers"] == load_document("letstrade-pos-provider")["servers"]
    assert "--pos-callback-url" in served["info"]["description"]


@pytest.mark.parametrize("bad", ["ftp://x/", "javascript:alert(1)", "/relative", "http://", "http://a b/"])
def test_a_mock_url_that_is_not_an_http_url_is_refused_naming_the_field(bad: str, docs_mock: MockServer) -> None:
    answer = docs_mock.admin("GET", "/specs/customtrades", params={"mock_url": bad})
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert "query.mock_url" in answer.json()["detail"]


def test_the_page_loads_swagger_ui_5_from_the_mock_itself(docs_mock: MockServer) -> None:
    page = docs_mock.admin("GET", "/docs/customtrades")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "../docs-static/swagger-ui-bundle.js" in page.text and "mock_url=" in page.text
    script = docs_mock.admin("GET", "/docs-static/swagger-ui-bundle.js")
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert b'"5.' in script.content and len(script.content) > 1_000_000  # Swagger UI 5 reads OpenAPI 3.1
    style = docs_mock.admin("GET", "/docs-static/swagger-ui.css")
    assert style.status_code == 200 and style.headers["Content-Type"].startswith("text/css")
    for missing in ("index.html", "swagger-ui.js", "..%2Fswagger_ui%2F__init__.py", ".hidden"):
        refused = docs_mock.admin("GET", f"/docs-static/{missing}")
        assert refused.status_code in (400, 404), missing
        assert refused.headers["Content-Type"].startswith("application/problem+json")


DOCS_PATHS = ("/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css", "/docs/customtrades")


def test_the_docs_files_need_the_admin_token_like_every_admin_path() -> None:
    """Issue 17: they were served by a static route beside the admin pipeline, without the token."""
    with MockServer(Settings(port=0, apis=("customtrades",), admin_token=ADMIN_TOKEN)) as guarded:
        for path in DOCS_PATHS:
            url = guarded.admin_url(path)
            for method in ("GET", "HEAD", "OPTIONS", "POST"):
                refused = requests.request(method, url, timeout=10)
                assert refused.status_code == 401, (method, path)
            assert ADMIN_TOKEN not in refused.text
            assert requests.get(url, headers={"X-Admin-Token": "not-the-token"}, timeout=10).status_code == 401
            assert requests.get(url, headers={"X-Admin-Token": ADMIN_TOKEN}, timeout=10).status_code == 200


def test_the_admin_token_may_come_as_basic_credentials_which_a_browser_is_asked_for() -> None:
    basic = "Basic " + base64.b64encode(f"anyone:{ADMIN_TOKEN}".encode()).decode()
    wrong = "Basic " + base64.b64encode(b"anyone:not-the-token").decode()
    with MockServer(Settings(port=0, apis=("customtrades",), admin_token=ADMIN_TOKEN)) as guarded:
        for path in DOCS_PATHS:
            url = guarded.admin_url(path)
            refused = requests.get(url, timeout=10)
            assert refused.headers.get("WWW-Authenticate", "").startswith("Basic "), path  # the browser asks
            for sent in (wrong, "Basic !!!", "Basic " + base64.b64encode(ADMIN_TOKEN.encode()).decode()):
                assert requests.get(url, headers={"Authorization": sent}, timeout=10).status_code == 401
            assert requests.get(url, headers={"Authorization": basic}, timeout=10).status_code == 200
