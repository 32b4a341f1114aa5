"""Fuzzing the endpoints a vendor calls (schemathesis does not test a spec's `webhooks` or
callbacks):

- a CRM's LOKE webhook receiver (`--webhook-receiver URL --webhook-secret S`): events generated
  from `loke.yaml`'s `webhooks` payload schemas (hypothesis-jsonschema), signed
  `X-Event-Signature: sha256=<hex HMAC-SHA256 of the raw body>`, must be acknowledged (2xx), also
  when delivered twice (LOKE retries); the same events unsigned, signed with another secret,
  tampered with after signing, or with a malformed signature must be rejected with a 4xx (a 2xx
  accepts a forgery; a 5xx makes LOKE retry);
- a POS's append-vouchers endpoint (`--pos-callback-url URL`) against
  `letstrade-pos-provider.yaml`: documented statuses and bodies only, never a 5xx, invalid bodies
  refused, and no voucher appended to a bill that does not exist or whose amounts do not add up.

Also `LocalReceiver`, a tiny HTTP server for tests (the mock's own deliveries, test receivers).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import hypothesis.strategies as st
import jsonschema
import requests
from hypothesis import HealthCheck, Phase, given, settings

from contracts.failures import ContractViolation
from contracts.provenance import index_for
from contracts.specs import PROVIDER_SPEC, dereference, load_spec

SIGNATURE_HEADER = "X-Event-Signature"
# No shrinking: every shrink step is another request to someone's endpoint; the first failing
# request is reported as it was sent.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate)


def _fuzz_settings(max_examples: int) -> settings:
    """How a receiver is fuzzed: no shrinking (every call reaches the user's server), no database."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=PHASES,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


BAD_SIGNATURES = ("unsigned", "other secret", "tampered body", "malformed signature", "signature of another body")


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _strip(node: Any) -> Any:
    """A schema without OpenAPI annotations (x-*, examples) for hypothesis-jsonschema."""
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if not k.startswith("x-") and k not in ("example", "examples")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


@cache
def webhook_schemas() -> dict[str, tuple[dict[str, Any], Any]]:
    """event name -> (payload schema, the spec's example payload)."""
    document = load_spec("loke")
    found: dict[str, tuple[dict[str, Any], Any]] = {}
    for name, item in (document.get("webhooks") or {}).items():
        media = item["post"]["requestBody"]["content"]["application/json"]
        found[name] = (_strip(dereference(media["schema"], document)), media.get("example"))
    return found


def payloads(event: str) -> st.SearchStrategy[Any]:
    from hypothesis_jsonschema import from_schema  # a dependency; imported here to keep the plugin light

    schema, _ = webhook_schemas()[event]
    return from_schema(schema, codec="utf-8", allow_x00=False)


def _violation(check: str, operation: str, message: str, location: tuple[str, str, int | None]) -> ContractViolation:
    spec, name, status = location
    index = index_for(spec)
    provenance = index.response("post", name, status) if status is not None else index.operation("post", name)
    return ContractViolation(check=check, operation=operation, message=message, provenance=provenance)


@dataclass
class ReceiverReport:
    sent: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, status: int) -> None:
        self.sent += 1
        key = f"{kind}: {status}"
        self.statuses[key] = self.statuses.get(key, 0) + 1


def _bad(kind: str, body: bytes, secret: str, other: bytes) -> tuple[bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if kind == "unsigned":
        return body, headers
    if kind == "other secret":
        return body, {**headers, SIGNATURE_HEADER: sign(body, secret + "-not-it")}
    if kind == "tampered body":
        return body + b" ", {**headers, SIGNATURE_HEADER: sign(body, secret)}
    if kind == "malformed signature":
        return body, {**headers, SIGNATURE_HEADER: "sha256=" + "z" * 64}
    return body, {**headers, SIGNATURE_HEADER: sign(other, secret)}


def deliver(session: requests.Session, url: str, event: str, payload: Any, secret: str, report: ReceiverReport) -> None:
    """One correctly signed delivery, repeated (LOKE retries), then every bad signature."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    operation = f"POST {event} -> {url}"
    good = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)}
    for attempt in ("signed", "signed again (a retried delivery)"):
        response = session.post(url, data=body, headers=good)
        report.count(attempt, response.status_code)
        if not 200 <= response.status_code < 300:
            raise _violation(
                "receiver_acknowledges_signed_events",
                operation,
                f"{event} {attempt}, correctly signed, was answered {response.status_code} (expected 2xx; LOKE "
                f"{'retries 5xx' if response.status_code >= 500 else 'drops the event on a 4xx'}): "
                f"{response.text[:200]}\n"
                f"body: {body[:300]!r}",
                ("loke", event, None),
            )
    other = json.dumps({"event": event, "organization": {"id": "01ANOTHERBODY0000000000000", "name": "x"}}).encode()
    for kind in BAD_SIGNATURES:
        sent, headers = _bad(kind, body, secret, other)
        response = session.post(url, data=sent, headers=headers)
        report.count(kind, response.status_code)
        if not 400 <= response.status_code < 500:
            verdict = "accepted a forged event" if response.status_code < 400 else "did not reject it with a 4xx"
            raise _violation(
                "receiver_rejects_bad_signatures",
                operation,
                f"{event} with {kind} was answered {response.status_code}: the receiver {verdict} (a bad "
                f"{SIGNATURE_HEADER} must be refused with a 4xx; 5xx makes LOKE retry)",
                ("loke", event, 400),
            )


def fuzz_webhook_receiver(
    url: str, secret: str, examples: int = 10, session: requests.Session | None = None
) -> ReceiverReport:
    """Every event type: the spec's example, then `examples` generated payloads. Raises
    `ContractViolation` (an AssertionError) at the first misbehaviour."""
    session = session or requests.Session()
    report = ReceiverReport()
    schemas = webhook_schemas()
    for event, (_, example) in schemas.items():
        if example is not None:
            deliver(session, url, event, example, secret, report)

    @_fuzz_settings(examples * len(schemas))
    @given(st.data())
    def generated(draw: st.DataObject) -> None:
        event = draw.draw(st.sampled_from(sorted(schemas)), label="event")
        deliver(session, url, event, draw.draw(payloads(event), label="payload"), secret, report)

    generated()
    return report


# -- the POS's append-vouchers endpoint ------------------------------------------------------------
@cache
def _provider() -> tuple[dict[str, Any], dict[str, jsonschema.Validator]]:
    document = load_spec(PROVIDER_SPEC)
    op = document["paths"]["/append-vouchers"]["post"]
    request = _strip(dereference(op["requestBody"]["content"]["application/json"]["schema"], document))
    validators = {}
    for status, response in op["responses"].items():
        resolved = dereference(response, document)
        for media in (resolved.get("content") or {}).values():
            validators[str(status)] = jsonschema.Draft202012Validator(
                _strip(media["schema"]), format_checker=jsonschema.FormatChecker()
            )
    return request, validators


def _reconciles(body: dict[str, Any]) -> bool:
    try:
        original, discount, remaining = (
            Decimal(str(body[k])) for k in ("original_amount", "discount_amount", "remaining_amount")
        )
    except (KeyError, InvalidOperation, TypeError):
        return False
    return original - discount == remaining


def _negative(draw: st.DataObject, body: dict[str, Any]) -> tuple[str, Any]:
    kind = draw.draw(
        st.sampled_from(["missing field", "wrong type", "not JSON", "amounts do not add up"]), label="mutation"
    )
    if kind == "missing field":
        name = draw.draw(st.sampled_from(sorted(body)), label="field")
        return f"without {name}", {k: v for k, v in body.items() if k != name}
    if kind == "wrong type":
        name = draw.draw(st.sampled_from(["original_amount", "vouchers", "store_id", "transaction_id"]), label="field")
        return f"{name} of the wrong type", {**body, name: {"not": "this type"}}
    if kind == "not JSON":
        return "a body that is not JSON", b"{not json"
    return "amounts that do not add up", {
        **body,
        "remaining_amount": str(Decimal(str(body.get("original_amount", "1"))) + 7),
    }


def post_vouchers(session: requests.Session, url: str, body: Any) -> requests.Response:
    if isinstance(body, bytes):
        return session.post(url, data=body, headers={"Content-Type": "application/json"})
    return session.post(url, json=body)


def check_pos_answer(url: str, what: str, body: Any, response: requests.Response, *, must_refuse: bool) -> None:
    """The POS's answer to one append-vouchers call, against the provider spec."""
    _, validators = _provider()
    status = str(response.status_code)
    operation = f"POST /append-vouchers ({url})"
    location = (PROVIDER_SPEC, "/append-vouchers", None)
    if response.status_code >= 500:
        raise _violation(
            "not_a_server_error", operation, f"{what} was answered {status}: {response.text[:200]}", location
        )
    if status not in validators:
        raise _violation(
            "status_code_conformance",
            operation,
            f"{what} was answered {status}, not one of {', '.join(sorted(validators))}: {response.text[:200]}",
            location,
        )
    try:
        parsed = response.json()
    except ValueError:
        raise _violation(
            "content_type_conformance",
            operation,
            f"{what}: the {status} answer is not JSON: {response.text[:200]}",
            (PROVIDER_SPEC, "/append-vouchers", response.status_code),
        ) from None
    error = next(iter(validators[status].iter_errors(parsed)), None)
    if error is not None:
        raise _violation(
            "response_schema_conformance",
            operation,
            f"{what}: the {status} body breaks its schema at /{'/'.join(map(str, error.absolute_path))}: "
            f"{error.message[:200]}",
            (PROVIDER_SPEC, "/append-vouchers", response.status_code),
        )
    if must_refuse and 200 <= response.status_code < 300:
        raise _violation(
            "pos_refuses_what_it_cannot_apply",
            operation,
            f"{what} was accepted ({status}); the POS must validate that the open bill exists and matches, "
            "and that the amounts reconcile. "
            f"Sent: {json.dumps(body)[:300] if not isinstance(body, bytes) else body!r}",
            location,
        )


def fuzz_pos_provider(url: str, examples: int = 10, session: requests.Session | None = None) -> ReceiverReport:
    """Append-vouchers calls for bills the POS never opened (random transaction ids), valid and
    invalid: none may be accepted, every answer must be documented."""
    from hypothesis_jsonschema import from_schema

    session = session or requests.Session()
    report = ReceiverReport()
    request_schema, _ = _provider()
    bodies = from_schema(request_schema, codec="utf-8", allow_x00=False)

    @_fuzz_settings(examples * 4)
    @given(st.data())
    def generated(draw: st.DataObject) -> None:
        body = draw.draw(bodies, label="body")
        assert isinstance(body, dict)  # the request schema is an object
        if draw.draw(st.booleans(), label="negative"):
            what, sent = _negative(draw, body)
        else:
            what, sent = (
                (
                    "a valid body for a bill that does not exist"
                    if _reconciles(body)
                    else "a valid body whose amounts do not add up"
                ),
                body,
            )
        response = post_vouchers(session, url, sent)
        report.count(what, response.status_code)
        check_pos_answer(url, what, sent, response, must_refuse=True)

    generated()
    return report


# -- a local HTTP server for tests ------------------------------------------------------------------
Handler = Callable[[str, dict[str, str], bytes], tuple[int, Any]]


class LocalReceiver:
    """Serves `handler(path, headers, raw body) -> (status, JSON body)` on 127.0.0.1 in a thread,
    and keeps every request it received."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                outer.received.append((self.path, headers, raw))
                status, body = outer.handler(self.path, headers, raw)
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        # a short poll: shutdown() waits up to one poll interval, and state machines open many receivers
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, name="lcs-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LocalReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def verifying_webhook_handler(secret: str) -> Handler:
    """A correct LOKE webhook receiver: verifies the signature over the raw bytes, constant time."""

    def handle(path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        sent = {k.lower(): v for k, v in headers.items()}.get(SIGNATURE_HEADER.lower(), "")
        if not hmac.compare_digest(sent.encode(), sign(raw, secret).encode()):
            return 401, {"error": "bad signature"}
        return 204, None

    return handle
