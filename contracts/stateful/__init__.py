"""Hand-written hypothesis state machines, one per API (`build(ctx, recorder)` in each module).

They model what the specs say a sequence of calls does (a customer created then deleted leaves
the lists; a finalised code cannot be finalised again; a rotated key stops working) and use only
the public endpoints, so they run against a vendor too. Steps that need the mock (minting a code,
moving the clock, making a LOKE event happen) are rules guarded by `ctx.is_mock`, and steps that
cannot be undone by `ctx.allow_irreversible`: on a real target they are never chosen, and the
test says which were skipped.

Every call goes through `Api.call`, which counts it, checks its status is documented and its body
matches the documented schema, and checks it leaks no secret.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import requests

from contracts.checks import find_secret_leaks
from contracts.failures import ContractViolation, Finding
from contracts.provenance import Provenance, index_for
from contracts.report import Recorder
from contracts.specs import dereference, load_spec
from contracts.target import ApiContext


@cache
def _document(name: str) -> dict[str, Any]:
    return load_spec(name)


@cache
def _validator(name: str, method: str, template: str, status: str) -> jsonschema.Validator | None:
    document = _document(name)
    op = ((document.get("paths") or {}).get(template) or {}).get(method.lower()) or {}
    responses = op.get("responses") or {}
    key = status if status in responses else f"{status[0]}XX" if f"{status[0]}XX" in responses else "default"
    response = dereference(responses.get(key), document) if key in responses else None
    if not isinstance(response, dict):
        return None
    for media in (response.get("content") or {}).values():
        if isinstance(media, dict) and isinstance(media.get("schema"), dict):
            return jsonschema.Draft202012Validator(media["schema"], format_checker=jsonschema.FormatChecker())
    return None


def documented_statuses(name: str, method: str, template: str) -> set[str]:
    op = ((_document(name).get("paths") or {}).get(template) or {}).get(method.lower()) or {}
    return {str(s) for s in (op.get("responses") or {})}


class Api:
    """One API as a state machine sees it."""

    def __init__(self, ctx: ApiContext, recorder: Recorder, spec: str | None = None) -> None:
        self.ctx = ctx
        self.recorder = recorder
        self.spec = spec or ctx.slug
        self.index = index_for(self.spec)
        self.secrets = ctx.known_secrets()

    def violation(self, check: str, operation: str, message: str, provenance: Provenance) -> ContractViolation:
        self.recorder.add([Finding(self.ctx.slug, operation, check, check, provenance, message.split(":")[0][:120])])
        return ContractViolation(check=check, operation=operation, message=message, provenance=provenance)

    def call(
        self,
        method: str,
        template: str,
        path: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
        url: str | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """`method` on `path` (the template with its values; default the template itself), or on
        an absolute `url` (a link the API returned)."""
        label = f"{method} {template}"
        self.recorder.case(label)
        sent = {**(self.ctx.headers() if authenticated else {}), **(headers or {})}
        response = self.ctx.session.request(method, url or self.ctx.url(path or template), headers=sent, **kwargs)
        self._conforms(method, template, label, response, kwargs.get("json") or kwargs.get("data"))
        return response

    def _conforms(self, method: str, template: str, label: str, response: requests.Response, body: Any) -> None:
        status = str(response.status_code)
        statuses = documented_statuses(self.spec, method, template)
        if response.status_code >= 500:
            raise self.violation(
                "not_a_server_error",
                label,
                f"{label} answered {status}: {response.text[:300]}",
                self.index.operation(method, template),
            )
        if status not in statuses and f"{status[0]}XX" not in statuses and "default" not in statuses:
            raise self.violation(
                "status_code_conformance",
                label,
                f"{label} answered {status}, which is not documented ({', '.join(sorted(statuses))}): "
                f"{response.text[:300]}",
                self.index.operation(method, template),
            )
        validator = _validator(self.spec, method, template, status)
        parsed: Any = None
        if response.content:
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
        if validator is not None and parsed is not None:
            error = next(iter(validator.iter_errors(parsed)), None)
            if error is not None:
                path = list(error.absolute_path)
                raise self.violation(
                    "response_schema_conformance",
                    label,
                    f"{label} {status} body breaks its schema at /{'/'.join(map(str, path))}: {error.message[:300]}",
                    self.index.response_field(method, template, status, path),
                )
        leaks = find_secret_leaks(
            {k.lower(): [v] for k, v in response.headers.items()},
            parsed,
            response.text if parsed is None else "",
            self.ctx.headers(),
            body if isinstance(body, (dict, list)) else None,
            set(),
            self.secrets,
            bearer_is_secret=True,
        )
        if leaks:
            raise self.violation(
                "no_secret_echo",
                label,
                f"{label} {status} leaks: " + "; ".join(f"{w}: {x}" for w, x in leaks[:3]),
                self.index.response(method, template, status),
            )

    def expect(
        self, response: requests.Response, statuses: set[int], check: str, what: str, provenance: Provenance
    ) -> None:
        if response.status_code not in statuses:
            raise self.violation(
                check,
                what,
                f"{what}: expected {' or '.join(map(str, sorted(statuses)))}, got {response.status_code}: "
                f"{response.text[:300]}",
                provenance,
            )
