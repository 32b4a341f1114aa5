"""Failures of the suite's own checks, and the classification of every failure (schemathesis'
built-in ones too) into a kind and a verdict: "contract broken" or "assumption refuted" at a
spec location (see `provenance.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemathesis.core.failures import Failure, FailureGroup, ServerError

from contracts.provenance import Provenance, ProvenanceIndex, index_for


class ContractViolation(Failure):
    """A property the specs cannot express was violated (e.g. a finalise executed twice)."""

    code = "ST950"
    kind_title = "Contract property violated"
    __slots__ = ("check", "provenance")

    def __init__(
        self, *, check: str, operation: str, message: str, provenance: Provenance, title: str | None = None
    ) -> None:
        super().__init__(operation=operation, title=title or f"{check}: {provenance.describe()}", message=message)
        self.check = check
        self.provenance = provenance

    @property
    def _unique_key(self) -> str:
        return f"{self.check}|{self.provenance.location}"


# schemathesis failure class -> (kind shown in the summary, the check that reports it)
_KINDS: dict[str, tuple[str, str]] = {
    "ServerError": ("server error", "not_a_server_error"),
    "ContentTypeServerError": ("server error", "not_a_server_error"),
    "JsonSchemaError": ("response schema", "response_schema_conformance"),
    "MalformedJson": ("malformed JSON", "response_schema_conformance"),
    "UndefinedStatusCode": ("undocumented status", "status_code_conformance"),
    "MissingContentType": ("content type", "content_type_conformance"),
    "MalformedMediaType": ("content type", "content_type_conformance"),
    "UndefinedContentType": ("content type", "content_type_conformance"),
    "MissingHeaders": ("response headers", "response_headers_conformance"),
    "AcceptedNegativeData": ("invalid request accepted", "negative_data_rejection"),
    "RejectedPositiveData": ("valid request rejected", "positive_data_acceptance"),
    "MissingHeaderNotRejected": ("missing header accepted", "missing_required_header"),
    "UnsupportedMethodResponse": ("unsupported method", "unsupported_method"),
    "AllowHeaderMismatch": ("unsupported method", "allow_header_conformance"),
    "IgnoredAuth": ("authentication ignored", "ignored_auth"),
    "UseAfterFree": ("use after free", "use_after_free"),
    "EnsureResourceAvailability": ("resource unavailable", "ensure_resource_availability"),
    "ObjectLevelAuthorizationViolation": ("object authorization", "object_level_authorization"),
    "ResponseTimeExceeded": ("slow response", "max_response_time"),
}


@dataclass(frozen=True)
class Finding:
    api: str
    operation: str  # e.g. "POST /v1/finalise/offerings"
    kind: str
    check: str
    provenance: Provenance
    title: str
    forced_broken: bool = False  # a server error is never a matter of assumption

    @property
    def refuted(self) -> bool:
        return self.provenance.assumed and not self.forced_broken

    @property
    def verdict(self) -> str:
        if self.refuted:
            return f"assumption refuted: {self.provenance.location}"
        return f"contract broken: {self.provenance.location}"

    def line(self) -> str:
        why = f" — {self.provenance.assumption}" if self.refuted and self.provenance.assumption else ""
        return f"{self.verdict} [{self.check} on {self.api} {self.operation}: {self.title}]{why}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "operation": self.operation,
            "kind": self.kind,
            "check": self.check,
            "verdict": "refuted" if self.refuted else "broken",
            "location": self.provenance.location,
            "title": self.title,
        }


def _request_provenance(index: ProvenanceIndex, failure: Failure, case: Any) -> Provenance:
    method, path = case.method, case.path
    meta = getattr(case, "meta", None)
    data = getattr(getattr(meta, "phase", None), "data", None)
    location = getattr(getattr(data, "parameter_location", None), "value", getattr(data, "parameter_location", None))
    parameter = getattr(data, "parameter", None)
    if location in ("query", "path", "header", "cookie") and parameter:
        return index.parameter(method, path, str(location), str(parameter))
    schema_location = getattr(data, "location", None)
    if location == "body" and isinstance(schema_location, str):
        keys = [t for t in schema_location.strip("/").split("/") if t and t not in ("properties", "items")]
        return index.request_body_field(method, path, keys)
    if meta is not None and getattr(meta, "components", None):
        for component, info in meta.components.items():
            name = getattr(component, "value", str(component))
            if getattr(getattr(info, "mode", None), "value", "") == "negative" and name == "body":
                return index.request_body_field(method, path, [])
    return index.request_body_field(method, path, [])


def _undocumented_status(index: ProvenanceIndex, case: Any, status: int) -> Provenance:
    """An undocumented status refutes the assumption behind the documented statuses of the same
    class when they are all assumed (e.g. the vendor answers 422 where 400 was assumed)."""
    operation = index.operation(case.method, case.path)
    if operation.assumed:
        return operation
    op_node, _ = index.operation_node(case.method, case.path)
    documented = [str(s) for s in ((op_node or {}).get("responses") or {}) if str(s)[:1] == str(status)[:1]]
    found = [index.response(case.method, case.path, s) for s in documented]
    if found and all(p.assumed for p in found):
        return found[0]
    return operation


def classify(api: str, spec: str, failure: Failure, case: Any, status: int | None) -> Finding:
    index = index_for(spec)
    operation = f"{case.method} {case.path}"
    name = type(failure).__name__
    if isinstance(failure, ContractViolation):
        return Finding(api, operation, failure.check, failure.check, failure.provenance, failure.title)
    kind, check = _KINDS.get(name, (name, name))
    if name == "CustomFailure":
        kind = check = str(failure.title).split("`")[1] if "`" in str(failure.title) else "custom check"
    title = str(failure.title)
    if name == "JsonSchemaError":
        path = list(getattr(failure, "instance_path", []) or [])
        provenance = index.response_field(case.method, case.path, status or 0, path)
        title = f"{title} at /{'/'.join(str(p) for p in path)}"
    elif name == "UndefinedStatusCode":
        provenance = _undocumented_status(index, case, int(getattr(failure, "status_code", status or 0)))
        title = f"{title} {getattr(failure, 'status_code', status)}"
    elif name in ("AcceptedNegativeData", "RejectedPositiveData", "MissingHeaderNotRejected"):
        provenance = _request_provenance(index, failure, case)
        title = f"{title} ({status})"
    elif status is not None and name not in ("ServerError", "ContentTypeServerError", "IgnoredAuth"):
        provenance = index.response(case.method, case.path, status)
    else:
        provenance = index.operation(case.method, case.path)
    phase = getattr(getattr(getattr(case, "meta", None), "phase", None), "name", None)
    if phase is not None:
        title = f"{title} [{getattr(phase, 'value', phase)} phase]"
    return Finding(api, operation, kind, check, provenance, title, forced_broken=isinstance(failure, ServerError))


def findings_from(api: str, spec: str, group: FailureGroup, case: Any, status: int | None) -> list[Finding]:
    return [classify(api, spec, failure, case, status) for failure in group.exceptions]


def annotate(group: FailureGroup, findings: list[Finding]) -> FailureGroup:
    """The same failures, with the verdicts first in the message (what pytest and JUnit show)."""
    lines = "\n".join(f"  - {finding.line()}" for finding in findings)
    header = f"loyalty-contract-suite verdicts:\n{lines}\n\n"
    return FailureGroup(list(group.exceptions), header + (group.message or ""))
