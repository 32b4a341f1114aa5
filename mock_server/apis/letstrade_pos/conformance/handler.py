"""`GET /__admin/letstrade-pos/conformance[?format=json|html|junit]`: the report over the journal,
judged at the virtual clock's now (an open bill fails after `Settings.pos_bill_timeout`)."""

from __future__ import annotations

from typing import Any

from mock_server.apis.base import ApiRequest, ApiResponse, Services
from mock_server.apis.letstrade_pos.conformance.evaluate import POS_API, PROVIDER_API, evaluate
from mock_server.apis.letstrade_pos.conformance.report import to_html, to_json, to_junit

MEDIA_TYPES = {"json": "application/json", "html": "text/html", "junit": "application/xml"}


def get_conformance(services: Services, store: Any, request: ApiRequest) -> ApiResponse:
    spec = services.runtimes[POS_API].spec
    entries = [entry.as_dict() for api in (POS_API, PROVIDER_API) for entry in services.journal.entries(api=api)]
    report = evaluate(entries, spec, services.clock.now(), services.settings.pos_bill_timeout)
    fmt = str(request.query.get("format") or "json")
    if fmt == "html":
        return ApiResponse(200, to_html(report), media_type=MEDIA_TYPES["html"])
    if fmt == "junit":
        return ApiResponse(200, to_junit(report), media_type=MEDIA_TYPES["junit"])
    return ApiResponse(200, to_json(report))
