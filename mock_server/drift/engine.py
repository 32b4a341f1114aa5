"""`drift`: one pass over a HAR (streamed), each matched exchange checked against its API's spec
and (unless `replay=False`) replayed against two fresh mocks with different seeds: the first is
compared with the vendor, the second only tells which differences are noise. Findings are
aggregated per (API, operation, status, kind, pointer), so memory stays bounded by the API's
size, not the file's."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mock_server import spec as spec_module
from mock_server.clock import isoformat
from mock_server.drift.compare import Flat, differences, fold, ignored
from mock_server.drift.exchange import ADMIN, Exchange, Matcher
from mock_server.drift.har import HarError, HarReader
from mock_server.drift.speccheck import ApiSpec, Check, Checker, load_api, parts_of
from mock_server.journal import REDACTED
from mock_server.settings import SLUGS


@dataclass
class Options:
    api_urls: dict[str, list[str]] = field(default_factory=dict)
    apis: tuple[str, ...] = ()
    replay: bool = True
    ignore: tuple[str, ...] = ()
    seed: int = 0
    fixtures: Any = None  # a path: records loaded into the replay mocks (e.g. POS codes)


@dataclass
class _Aggregate:
    finding: dict[str, Any]
    folded: str = ""
    count: int = 0


NOISE_MIN = 5_000  # exchanges the noise run follows at least
NOISE_QUIET = 1_000  # ... and then until this many bring no new (operation, status) pair


def _flat(raw: bytes) -> Flat | None:
    if not raw:
        return None
    try:
        return Flat(json.loads(raw))
    except ValueError:
        return None


def _is_noise(folded: str, difference: str, noise: set[str]) -> bool:
    """Whether two mocks disagreed there too: the same value or length, or the shape at this
    pointer or above it (a field one mock had and the other not)."""
    if difference in ("value", "length") and f"{difference}:{folded}" in noise:
        return True
    pointer = folded
    while True:
        if f"shape:{pointer}" in noise:
            return True
        if not pointer:
            return False
        pointer = pointer.rsplit("/", 1)[0]


def _escape_parts(pointer: str) -> list[str | int]:
    parts: list[str | int] = []
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        parts.append(0 if token == "*" else int(token) if token.isdigit() else token)
    return parts


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


class Drift:
    def __init__(self, source: str, options: Options) -> None:
        self.source = source
        self.options = options
        self.matcher = Matcher(options.api_urls, options.apis or None)
        self.apis: dict[str, ApiSpec] = {}
        self.checkers: dict[str, Checker] = {}
        self.exchanges = 0
        self.matched = 0
        self.truncated = False
        self.findings: dict[tuple[Any, ...], _Aggregate] = {}
        self.exercised: dict[str, Counter[str]] = {}
        self.statuses: dict[str, dict[str, set[int]]] = {}
        self.noise: dict[tuple[str, str, int], set[str]] = {}
        self.noisy_status: set[tuple[str, str]] = set()
        self.runs: list[Any] = []
        self.stopped_runs: list[Any] = []
        self.noise_keys: set[tuple[str, str, int]] = set()
        self.noise_quiet = 0
        self.noise_exchanges = 0
        self.request_findings: dict[tuple[Any, ...], dict[str, Any]] = {}

    # -- set-up --------------------------------------------------------------------------
    def _api(self, slug: str) -> Checker:
        checker = self.checkers.get(slug)
        if checker is None:
            from mock_server.apis.registry import definitions

            api = self.apis[slug] = load_api(slug, definitions()[slug].spec_name)
            checker = self.checkers[slug] = Checker(api)
            self.exercised[slug] = Counter()
            self.statuses[slug] = {}
        return checker

    def _start_runs(self) -> None:
        from mock_server.drift.replay import MockRun

        apis = tuple(self.options.apis) or SLUGS
        fixtures = self.options.fixtures
        self.runs = [MockRun(self.options.seed, apis, fixtures), MockRun(self.options.seed + 1, apis, fixtures)]

    # -- the pass ------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        reader = HarReader(self.source)
        try:
            for index, entry in enumerate(reader, 1):
                self.exchanges = index
                exchange = self.matcher.match(index, entry)
                if exchange is None:
                    continue
                if exchange.api == ADMIN:
                    await self._setup(exchange)
                    continue
                self.matched += 1
                await self._exchange(exchange)
        finally:
            for run in self.runs:
                await run.close()
        self.truncated = reader.truncated
        if self.exchanges == 0 and not reader.truncated:
            raise HarError(f"{self.source} holds no entries")
        if self.matched == 0:
            raise HarError(
                f"none of the {self.exchanges} entries in {self.source} matched an API "
                "(give the vendor's base URL with --api-url SLUG=URL)"
            )
        return self.report()

    async def _exchange(self, exchange: Exchange) -> None:
        checker = self._api(exchange.api)
        check = Check()
        checker.request(
            check, exchange.method, exchange.path, exchange.query, exchange.request_headers, exchange.request_body
        )
        vendor = _flat(exchange.response_body)
        parsed = (vendor.values[""], frozenset(vendor.shape)) if vendor is not None else None
        checker.response(check, exchange.status, exchange.response_headers, exchange.response_body, parsed)
        op = check.operation
        slug = exchange.api
        self.exercised[slug].update(check.exercised)
        op_id = op.operation_id if op else None
        if op_id is not None:
            self.statuses[slug].setdefault(op_id, set()).add(exchange.status)
        for violation in check.violations:
            if violation["direction"] == "request":  # the client's mistake, not a disagreement
                request_key = (slug, op_id, violation["location"], violation["kind"], violation["message"][:200])
                held = self.request_findings.get(request_key)
                if held is None:
                    held = self.request_findings[request_key] = {
                        "api": slug,
                        "operation_id": op_id,
                        "location": violation["location"],
                        "provenance": violation["provenance"],
                        "detail": violation["message"],
                        "count": 0,
                        "example": {"entry": exchange.entry, "method": exchange.method, "path": exchange.path},
                    }
                held["count"] += 1
                continue
            verdict = "assumption refuted" if violation["provenance"] == "assumed" else "contract broken"
            vendor_key = (
                "vendor",
                slug,
                op_id,
                exchange.status,
                violation["location"],
                violation.get("pointer"),
                violation["kind"],
            )
            self._add(
                vendor_key,
                fold(violation.get("pointer") or ""),
                {
                    "kind": "vendor_violates_spec",
                    "verdict": verdict,
                    "api": slug,
                    "operation_id": op_id,
                    "status": exchange.status,
                    "direction": violation["direction"],
                    "location": violation["location"],
                    "provenance": violation["provenance"],
                    "provenance_location": violation["provenance_location"],
                    **({"pointer": violation["pointer"]} if "pointer" in violation else {}),
                    "detail": violation["message"],
                },
                exchange,
                {},
            )
        if op is not None and self.options.replay:
            await self._replay(exchange, checker, op, vendor)

    async def _setup(self, exchange: Exchange) -> None:
        """A call to the mock's own admin API (e.g. minting a POS code, which only the mock can):
        done on the replay mocks too, so later requests find the same records."""
        if not self.options.replay:
            return
        if not self.runs:
            self._start_runs()
        vendor = _flat(exchange.response_body)
        for run in self.runs:
            _status, _headers, body = await run.send(exchange, "")
            run.learn(exchange, vendor, _flat(body))

    async def _replay(self, exchange: Exchange, checker: Checker, op: Any, vendor: Flat | None) -> None:
        if not self.runs:
            self._start_runs()
        first = self.runs[0]
        second = self.runs[1] if len(self.runs) > 1 else None
        slug, op_id = exchange.api, op.operation_id
        status_a, _headers_a, body_a = await first.send(exchange, op_id)
        flat_a = _flat(body_a)
        # ids come from the vendor's successful answers (what it created, and what it lists: the
        # records a later request names), never from its errors
        creates = 200 <= exchange.status < 300
        if creates:
            first.learn(exchange, vendor, flat_a)
        learned = (slug, op_id, status_a) in self.noise_keys
        if second is not None:
            status_b, _headers_b, body_b = await second.send(exchange, op_id)
            flat_b = _flat(body_b) if body_b != body_a or creates else flat_a
            if creates:
                second.learn(exchange, vendor, flat_b)
            self._learn_noise(slug, op_id, status_a, status_b, flat_a, flat_b, body_a == body_b)
            learned = True
            await self._maybe_stop_noise_run()
        if status_a != exchange.status:
            self._add(
                ("status", slug, op_id, exchange.status, status_a),
                "",
                _mock_differs(
                    checker, op, exchange, None, detail=f"the vendor answered {exchange.status}, the mock {status_a}"
                ),
                exchange,
                {"vendor_status": exchange.status, "mock_status": status_a},
            )
            return
        if vendor is None and flat_a is None:
            return
        if exchange.response_body == body_a:
            return
        ids = first.ids
        for kind, folded, pointer, vendor_value, mock_value in differences(
            vendor if vendor is not None else Flat(None),
            flat_a if flat_a is not None else Flat(None),
            lambda v, m: ids.get(str(v)) == str(m),
        ):
            if kind == "value" and not learned:
                continue  # no noise known for this answer (first seen after the noise run ended)
            detail = {
                "missing": f"the vendor sends {folded or '/'} ({vendor_value}); the mock does not",
                "extra": f"the mock sends {folded or '/'} ({mock_value}); the vendor does not",
                "type": f"{folded or '/'}: the vendor sends {vendor_value}, the mock {mock_value}",
                "length": f"{folded or '/'}: the vendor sends {vendor_value} items, the mock {mock_value}",
                "value": f"{folded or '/'}: the vendor sends {_short(vendor_value)}, the mock {_short(mock_value)}",
            }[kind]
            self._add(
                ("mock", slug, op_id, exchange.status, kind, folded),
                folded,
                _mock_differs(
                    checker, op, exchange, _escape_parts(folded), pointer=pointer, difference=kind, detail=detail
                ),
                exchange,
                {"vendor": vendor_value, "mock": mock_value},
            )

    def _learn_noise(
        self,
        slug: str,
        op_id: str,
        status_a: int,
        status_b: int,
        flat_a: Flat | None,
        flat_b: Flat | None,
        identical: bool,
    ) -> None:
        key = (slug, op_id, status_a)
        if key not in self.noise_keys:
            self.noise_keys.add(key)
            self.noise_quiet = 0
        else:
            self.noise_quiet += 1
        self.noise_exchanges += 1
        if status_a != status_b:
            self.noisy_status.add((slug, op_id))
            return
        if identical:
            return
        noise = self.noise.setdefault(key, set())
        first, second = self.runs[0], self.runs[1]
        # the two mocks' ids differ by construction: compare them through their own maps
        back, ids_a = second.reverse, first.ids
        for kind, folded, *_rest in differences(
            flat_a if flat_a is not None else Flat(None),
            flat_b if flat_b is not None else Flat(None),
            lambda a, b: ids_a.get(back.get(str(b), "\0")) == str(a),
        ):
            # values that differ between two mocks are noise for values only; a shape that
            # differs (a list's length, a field present in one) is noise for everything there
            noise.add(f"{kind if kind in ('value', 'length') else 'shape'}:{folded}")

    async def _maybe_stop_noise_run(self) -> None:
        """Diffy learns noise from a sample: the second mock follows the traffic until the
        (operation, status) pairs stop growing, then stops (half the replay cost on big files)."""
        if self.noise_exchanges >= NOISE_MIN and self.noise_quiet >= NOISE_QUIET and len(self.runs) > 1:
            await self.runs[1].close()
            self.stopped_runs.append(self.runs.pop())

    def _add(
        self, key: tuple[Any, ...], folded: str, finding: dict[str, Any], exchange: Exchange, example: Mapping[str, Any]
    ) -> None:
        found = self.findings.get(key)
        if found is None:
            finding["example"] = {
                "entry": exchange.entry,
                "method": exchange.method,
                "path": exchange.path,
                **({"time": isoformat(exchange.started)} if exchange.started else {}),
                **example,
            }
            found = self.findings[key] = _Aggregate(finding, folded)
        found.count += 1

    # -- the report ----------------------------------------------------------------------
    def _kept(self) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for key, aggregate in self.findings.items():
            finding = aggregate.finding
            if finding["kind"] == "mock_differs":
                slug, op_id, status = finding["api"], finding["operation_id"], finding["status"]
                if key[0] == "status" and (slug, op_id) in self.noisy_status:
                    continue
                if key[0] == "mock":
                    if (slug, op_id) in self.noisy_status:
                        continue
                    noise = self.noise.get((slug, op_id, status), set())
                    if _is_noise(aggregate.folded, str(finding.get("difference")), noise):
                        continue
            if (
                self.options.ignore
                and finding.get("pointer") is not None
                and ignored(aggregate.folded, self.options.ignore)
            ):
                continue
            kept.append({**finding, "count": aggregate.count})
        kept.sort(
            key=lambda f: (f["api"], f["operation_id"] or "", f["kind"], f.get("status") or 0, f.get("pointer") or "")
        )
        return kept

    def report(self) -> dict[str, Any]:
        findings = self._kept()
        refuted: dict[tuple[str, str], int] = Counter()
        for finding in findings:  # an assumption is refuted by a finding on the item it governs
            file = finding["location"].split("#", 1)[0]
            refuted[(file, finding["provenance_location"])] += 1
        assumptions: list[dict[str, Any]] = []
        for slug, api in sorted(self.apis.items()):
            counts = self.exercised[slug]
            # the assumed items, and documented items whose `x-assumption` records an assumed detail
            # (`iter_assumptions` where the spec module has it, else the assumed items alone)
            listing = getattr(spec_module, "iter_assumptions", spec_module.iter_provenance)
            for pointer, _why in dict(listing(api.document)).items():
                seen = counts.get(pointer, 0)
                if (api.file, pointer) in refuted:
                    verdict = "refuted"
                elif seen:
                    verdict = "confirmed"
                else:
                    verdict = "unobserved"
                assumptions.append({"location": api.location(pointer), "verdict": verdict, "exchanges": seen})
        coverage: dict[str, Any] = {}
        for slug, api in sorted(self.apis.items()):
            seen_ops = self.statuses[slug]
            operations = {
                op.operation_id: {
                    "statuses_seen": sorted(seen_ops.get(op.operation_id, set())),
                    "statuses_documented": sorted(int(s) for s in op.responses if s.isdigit()),
                }
                for op in api.spec.operations
            }
            coverage[slug] = {
                "operations_seen": sum(1 for op in api.spec.operations if op.operation_id in seen_ops),
                "operations_documented": len(api.spec.operations),
                "operations": operations,
            }
        verdicts = Counter(a["verdict"] for a in assumptions)
        vendor = [f for f in findings if f["kind"] == "vendor_violates_spec"]
        mock = [f for f in findings if f["kind"] == "mock_differs"]
        return {
            "generated_at": isoformat(datetime.now(UTC)),
            "source": self.source,
            "exchanges": self.exchanges,
            "truncated": self.truncated,
            "replayed": self.options.replay,
            "noise_run": {"exchanges": self.noise_exchanges, "operations": len(self.noise_keys)},
            "summary": {
                "exchanges": self.exchanges,
                "matched": self.matched,
                "vendor_violations": sum(f["count"] for f in vendor),
                "mock_differences": sum(f["count"] for f in mock),
                "assumptions": {k: verdicts.get(k, 0) for k in ("confirmed", "refuted", "unobserved")},
                "contracts_broken": sum(1 for f in vendor if f["verdict"] == "contract broken"),
                "request_violations": sum(f["count"] for f in self.request_findings.values()),
            },
            "findings": findings,
            "request_violations": list(self.request_findings.values()),
            "assumptions": assumptions,
            "coverage": coverage,
        }


async def analyse(source: str, options: Options) -> dict[str, Any]:
    return await Drift(source, options).run()


def iter_sources(paths: Iterable[str]) -> Iterable[str]:
    yield from paths


__all__ = ["REDACTED", "Drift", "HarError", "Options", "analyse", "parts_of"]


def _mock_differs(
    checker: Checker, op: Any, exchange: Exchange, parts: list[str | int] | None, **facts: Any
) -> dict[str, Any]:
    """A "mock differs" finding about `exchange`'s answer (at `parts` of its body, None: its
    status), located in the spec; `facts` (the detail last) complete it."""
    location, prov = checker.locate_response(op, exchange.status, parts)
    return {
        "kind": "mock_differs",
        "verdict": "mock differs",
        "api": exchange.api,
        "operation_id": op.operation_id,
        "status": exchange.status,
        "location": checker.api.location(location),
        "provenance": prov[0],
        "provenance_location": prov[1],
        **facts,
    }
