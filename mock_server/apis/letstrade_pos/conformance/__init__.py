"""POS vendor conformance: the mock judges a till's Let'sTrade integration from the journal.

Modules: `rules` (each rule's id, statement, seed passage, severity), `evaluate` (journal entries ->
bills -> evidence per rule), `report` (JSON in its fixed shape, HTML, JUnit XML),
`handler` (`GET /__admin/letstrade-pos/conformance`). Pure: no aiohttp.
"""

from __future__ import annotations

from mock_server.apis.letstrade_pos.conformance.evaluate import Report, evaluate
from mock_server.apis.letstrade_pos.conformance.report import to_html, to_json, to_junit
from mock_server.apis.letstrade_pos.conformance.rules import RULES, Rule

__all__ = ["RULES", "Report", "Rule", "evaluate", "to_html", "to_json", "to_junit"]
