"""One exception tree for everything the mock refuses, and one error -> status table.

Handlers and validators raise these; the dispatcher renders them in the vendor's own envelope
(`mock_server.envelopes`). No HTTP library is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One failing field: where (a JSON path such as `basket.product_list[0].price`,
    `query.limit`, `header.X-API-Key`), what was wrong and what was expected."""

    field: str
    message: str
    code: int | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "message": self.message}
        if self.code is not None:
            out["code"] = self.code
        return out


class MockError(Exception):
    """Base of every refusal. `kind` is a snake_case name (LOKE's `type`, problem+json's `type`);
    `status` comes from the class, so the table below is the one error -> status mapping."""

    status: int = 400
    kind: str = "error"

    def __init__(
        self,
        message: str,
        fields: list[FieldError] | None = None,
        *,
        code: int | None = None,
        headers: dict[str, str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = list(fields or [])
        self.code = code
        self.headers = dict(headers or {})
        if kind is not None:
            self.kind = kind


# The error -> status table. Every refusal the mock makes is one of these.
class ValidationFailed(MockError):
    status, kind = 400, "validation_error"


class MalformedBody(MockError):
    status, kind = 400, "malformed_body"


class MalformedRequest(MockError):
    """The request is not valid HTTP/1.1 (refused by the HTTP parser, before any route)."""

    status, kind = 400, "malformed_request"


class Unauthorized(MockError):
    status, kind = 401, "unauthorized"


class Forbidden(MockError):
    status, kind = 403, "forbidden"


class NotFound(MockError):
    status, kind = 404, "not_found"


class MethodNotAllowed(MockError):
    status, kind = 405, "method_not_allowed"


class Conflict(MockError):
    status, kind = 409, "conflict"


class Gone(MockError):
    status, kind = 410, "gone"


class PayloadTooLarge(MockError):
    status, kind = 413, "payload_too_large"


class UnsupportedMediaType(MockError):
    status, kind = 415, "unsupported_media_type"


class RequestTimeout(MockError):
    status, kind = 408, "request_timeout"


class UriTooLong(MockError):
    status, kind = 414, "uri_too_long"


class HeadersTooLarge(MockError):
    status, kind = 431, "headers_too_large"


class TooManyRequests(MockError):
    status, kind = 429, "rate_limited"


class InternalError(MockError):
    """A mock bug, answered (never hidden) in the vendor's envelope."""

    status, kind = 500, "internal_error"


class UpstreamUnavailable(MockError):
    status, kind = 502, "upstream_unavailable"


class UpstreamTimeout(MockError):
    status, kind = 504, "upstream_timeout"
