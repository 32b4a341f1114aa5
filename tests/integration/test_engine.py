"""The engine's fixed interfaces over HTTP: health, reset, credentials, clock, journal, faults,
routing, auth and validation in the vendors' envelopes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mock_server.settings import SLUGS
from mock_server.spec import build_spec, load_document
from mock_server.testing import MockServer
from tests.integration.auth_headers import auth_headers

SPECS = {slug: build_spec(slug, load_document(slug)) for slug in SLUGS}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_health_lists_mounted_apis(mock: MockServer) -> None:
    response = mock.admin("GET", "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "apis": list(SLUGS), "tenants": True}


def test_credentials_have_the_fixed_keys_and_survive_reset(mock: MockServer) -> None:
    creds = mock.credentials()
    assert set(creds["letstrade"]) >= {"email", "password", "token"}
    assert set(creds["customtrades"]) >= {"api_key"}
    assert set(creds["capillary"]) >= {"till_username", "till_password", "oauth_key", "oauth_secret"}
    assert set(creds["loke"]) >= {"client_id", "client_secret", "organization_id", "access_token"}
    mock.reset()
    assert mock.credentials() == creds


def test_seeded_credentials_authenticate(mock: MockServer) -> None:
    creds = mock.credentials()
    for slug, path in [
        ("customtrades", "/v1/customers"),
        ("loke", f"/organizations/{creds['loke']['organization_id']}/customers"),
    ]:
        response = mock.session.get(mock.url(slug, path), headers=auth_headers(slug, creds))
        assert response.status_code == 200, (slug, response.text)


def test_clock_advance_set_freeze(mock: MockServer) -> None:
    before = mock.admin("GET", "/clock").json()
    assert before["frozen"] is False
    moved = mock.advance(3600)
    assert moved["now"] > before["now"]
    frozen = mock.admin("POST", "/clock", json={"set": "2030-01-01T00:00:00Z", "frozen": True}).json()
    assert frozen == {"now": "2030-01-01T00:00:00.000Z", "frozen": True}
    assert mock.admin("GET", "/clock").json()["now"] == "2030-01-01T00:00:00.000Z"
    mock.reset()
    assert mock.admin("GET", "/clock").json()["now"] < "2030-01-01"


@pytest.mark.parametrize(
    "body",
    [{}, {"advance": -1}, {"advance": "soon"}, {"set": "yesterday"}, {"advance": 1, "set": "2030-01-01T00:00:00Z"}],
)
def test_clock_rejects_bad_moves_as_problem_json(mock: MockServer, body: dict[str, Any]) -> None:
    response = mock.admin("POST", "/clock", json=body)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 400


def test_journal_records_vendor_calls_with_secrets_redacted_and_filters(mock: MockServer) -> None:
    creds = mock.credentials()
    mock.session.get(mock.url("customtrades", "/v1/customers"), headers=auth_headers("customtrades", creds))
    mock.session.post(
        mock.url("letstrade-channels", "/user/sign_in"), json={"email": "x@example.com", "password": "hunter2"}
    )
    mock.admin("GET", "/health")  # admin calls are never journaled
    entries = mock.journal()
    assert [e["operation_id"] for e in entries] == ["listCustomers", "signIn"]
    text = str(entries)
    assert creds["customtrades"]["api_key"] not in text and "hunter2" not in text
    assert entries[0]["request"]["headers"]["Authorization"] == "***"
    assert [e["api"] for e in mock.journal(api="letstrade-channels")] == ["letstrade-channels"]
    assert mock.journal(since=entries[0]["id"]) == entries[1:]
    assert mock.admin("DELETE", "/requests").status_code == 204
    assert mock.journal() == []


def test_journal_is_bounded() -> None:
    from mock_server.settings import Settings

    with MockServer(Settings(port=0, apis=("customtrades",), journal_max_entries=5)) as small:
        for _ in range(12):
            small.session.get(small.url("customtrades", "/v1/customers"))
        entries = small.journal()
        assert len(entries) == 5
        assert entries[-1]["id"] == 12


def test_fault_injects_error_for_matching_requests_only(mock: MockServer) -> None:
    creds = mock.credentials()
    headers = auth_headers("customtrades", creds)
    fault = mock.admin(
        "POST",
        "/faults",
        json={
            "api": "customtrades",
            "operation_id": "createCustomer",
            "match": {"/first_name": "Boom"},
            "status": 503,
            "times": 1,
        },
    )
    assert fault.status_code == 201
    url = mock.url("customtrades", "/v1/customers")
    hit = mock.session.post(url, json={"first_name": "Boom", "last_name": "X"}, headers=headers)
    assert hit.status_code == 503
    assert hit.json()["success"] is False
    again = mock.session.post(url, json={"first_name": "Boom", "last_name": "X"}, headers=headers)
    assert again.status_code != 503  # times: 1 used up
    assert mock.admin("GET", "/faults").json() == []
    assert mock.journal()[0]["source"] == "fault"


def test_fault_latency_and_pattern_match(mock: MockServer) -> None:
    creds = mock.credentials()
    mock.admin(
        "POST", "/faults", json={"api": "customtrades", "match": {"/search": {"pattern": "^slow"}}, "latency_ms": 300}
    )
    url = mock.url("customtrades", "/v1/customers")
    slow = mock.session.get(url, params={"search": "slowly"}, headers=auth_headers("customtrades", creds))
    fast = mock.session.get(url, params={"search": "quick"}, headers=auth_headers("customtrades", creds))
    assert slow.elapsed.total_seconds() >= 0.3 > fast.elapsed.total_seconds()
    assert mock.admin("DELETE", "/faults").status_code == 204


def test_fault_for_unknown_operation_is_rejected(mock: MockServer) -> None:
    response = mock.admin("POST", "/faults", json={"api": "loke", "operation_id": "nope", "status": 500})
    assert response.status_code == 400
    assert "nope" in response.json()["detail"]


def test_unknown_path_and_method_in_vendor_envelopes(mock: MockServer) -> None:
    missing = mock.session.get(mock.url("capillary", "/v2/nothing"))
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["status"] is False
    wrong = mock.session.delete(mock.url("letstrade-pos", "/v1/get/offerings"))
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    assert wrong.json()["success"] is False
    root = mock.session.get(mock.base_url + "/elsewhere")
    assert root.status_code == 404 and "mounted" in root.json()["detail"]


def test_body_errors(mock: MockServer) -> None:
    creds = mock.credentials()
    url = mock.url("customtrades", "/v1/customers")
    headers = auth_headers("customtrades", creds)
    bad_json = mock.session.post(url, data=b'{"first_name": ', headers={**headers, "Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
    wrong_type = mock.session.post(url, data=b"first_name=x", headers={**headers, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415
    too_big = mock.session.post(
        url, data=b"{" + b" " * (1024 * 1024) + b"}", headers={**headers, "Content-Type": "application/json"}
    )
    assert too_big.status_code == 413
    duplicate = mock.session.post(
        url,
        data=b'{"first_name":"a","first_name":"b","last_name":"c"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert duplicate.status_code == 400 and "duplicate" in duplicate.json()["error"]


def _secured() -> list[tuple[str, Any]]:
    return [(slug, op) for slug, spec in SPECS.items() for op in spec.operations if op.security]


@pytest.mark.parametrize("slug,op", _secured(), ids=lambda v: v if isinstance(v, str) else v.operation_id)
def test_every_secured_operation_needs_credentials(mock: MockServer, slug: str, op: Any) -> None:
    response = mock.session.request(op.method, mock.url(slug, _concrete(op.path)), json={})
    assert response.status_code == 401, response.text
    documented = op.response_for(401)
    assert documented is not None and documented.schema is not None
    assert documented.schema.errors(response.json()) == []


def _wrong(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    return {
        "string": 12345,
        "integer": "not-a-number",
        "number": "not-a-number",
        "boolean": "maybe",
        "object": "not-an-object",
        "array": "not-an-array",
    }.get(str(kind))


def _typed_field(op: Any) -> tuple[str, str, Any] | None:
    """(where, name, wrong value) for one typed field of the operation, body first."""
    media = op.raw.get("requestBody", {}).get("content", {}).get("application/json")
    if media:
        compiled = op.body_media["application/json"].schema  # dereferenced
        for name, prop in (compiled.get("properties") or {}).items():
            if _wrong(prop) is not None and "null" not in (prop.get("type") or []):
                return "body", name, _wrong(prop)
    for param in op.parameters:
        if param.location == "query" and param.json_type in ("integer", "number", "boolean"):
            return "query", param.name, _wrong(param.schema)
    return None


def _typed_cases() -> list[tuple[str, Any]]:
    return [(slug, op) for slug, spec in SPECS.items() for op in spec.operations if _typed_field(op)]


@pytest.mark.parametrize("slug,op", _typed_cases(), ids=lambda v: v if isinstance(v, str) else v.operation_id)
def test_wrong_typed_field_is_a_400_naming_it(mock: MockServer, slug: str, op: Any) -> None:
    where, name, value = _typed_field(op)  # type: ignore[misc]
    headers = auth_headers(slug, mock.credentials_cache())
    url = mock.url(slug, _concrete(op.path))
    if where == "body":
        example = op.raw["requestBody"]["content"]["application/json"].get("example")
        body = dict(example) if isinstance(example, dict) else {}
        body[name] = value
        response = mock.session.request(op.method, url, json=body, headers=headers)
    else:
        response = mock.session.request(op.method, url, params={name: value}, headers=headers)
    assert response.status_code == 400, response.text
    assert name in response.text


def test_examples_only_mode_answers_from_spec(mock: MockServer) -> None:
    from mock_server.settings import Settings

    with MockServer(Settings(port=0, apis=("loke",), examples_only=True, strict=True)) as static:
        creds = static.credentials()
        response = static.session.get(
            static.base_url + "/organizations/any/customers", headers=auth_headers("loke", creds)
        )  # exactly one API: served at the root too
        assert response.status_code == 200
        assert static.journal()[0]["source"] == "example"


def test_fixtures_reject_unknown_sections_and_load_nothing(mock: MockServer) -> None:
    response = mock.admin("POST", "/fixtures", json={"no-such-api": {"customers": []}})
    assert response.status_code == 400
    assert "no-such-api" in response.json()["detail"]
    not_an_object = mock.admin("POST", "/fixtures", json=["customers"])
    assert not_an_object.status_code == 400
