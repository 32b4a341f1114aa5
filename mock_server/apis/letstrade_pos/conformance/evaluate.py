"""Judging a till from the journal: the entries of `letstrade-pos` (the till's calls) and of
`letstrade-pos-provider` (the mock's calls to the till's append-vouchers) are grouped into bills
(`store_id + terminal_id + basket.uuid`), and every rule of `rules.py` collects evidence: the
requests that show it kept or broke the rule. Pure: no HTTP, time from the caller."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mock_server.apis.letstrade_pos.conformance import rules as R
from mock_server.apis.letstrade_pos.conformance.rules import FAIL, NOT_APPLICABLE, PASS, Rule
from mock_server.errors import FieldError
from mock_server.spec import Spec

POS_API = "letstrade-pos"
PROVIDER_API = "letstrade-pos-provider"
OFFERINGS = "getOfferings"
FINALISE = "finaliseOfferings"
APPEND = "appendVouchers"
MAX_FAILING = 100  # evidence items kept per rule; the last one says how many more there were
MAX_PASSING = 25

BillKey = tuple[str, str, str]


# -- the journal, read ------------------------------------------------------------------------------
@dataclass
class Call:
    """One journal entry as the rules need it."""

    id: int
    time: str
    at: datetime
    api: str
    operation_id: str | None
    method: str
    path: str
    status: int
    body: Any
    response: Any
    violations: list[dict[str, Any]]
    duration_ms: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def basket(self) -> Mapping[str, Any]:
        basket = self.body.get("basket") if isinstance(self.body, Mapping) else None
        return basket if isinstance(basket, Mapping) else {}

    @property
    def key(self) -> BillKey | None:
        body = self.body if isinstance(self.body, Mapping) else {}
        if self.operation_id == APPEND:
            parts = (body.get("store_id"), body.get("terminal_id"), body.get("transaction_id"))
        else:
            parts = (body.get("store_id"), body.get("terminal_id"), self.basket.get("uuid"))
        if all(isinstance(p, str) for p in parts):
            return (str(parts[0]), str(parts[1]), str(parts[2]))
        return None

    @property
    def codes(self) -> list[str]:
        raw = self.body.get("code") if isinstance(self.body, Mapping) else None
        return [c for c in raw if isinstance(c, str)] if isinstance(raw, list) else []

    @property
    def content(self) -> Mapping[str, Any]:
        found = self.response.get("content") if isinstance(self.response, Mapping) else None
        return found if isinstance(found, Mapping) else {}

    @property
    def label(self) -> str:
        return f"#{self.id} {self.operation_id or self.method + ' ' + self.path} ({self.status or 'no answer'})"


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def calls_from(entries: Iterable[Mapping[str, Any]]) -> list[Call]:
    """The journal's entries (as `GET /__admin/requests` shows them) that concern the till."""
    found: list[Call] = []
    for entry in entries:
        api = str(entry.get("api"))
        if api not in (POS_API, PROVIDER_API):
            continue
        request = entry.get("request") or {}
        response = entry.get("response") or {}
        found.append(
            Call(
                id=int(entry["id"]),
                time=str(entry["time"]),
                at=parse_time(str(entry["time"])),
                api=api,
                operation_id=entry.get("operation_id"),
                method=str(entry.get("method", "")),
                path=str(entry.get("path", "")),
                status=int(entry.get("status") or 0),
                body=request.get("body"),
                response=response.get("body"),
                violations=list(entry.get("violations") or []),
                duration_ms=float(entry.get("duration_ms") or 0.0),
                error=response.get("error"),
            )
        )
    found.sort(key=lambda c: c.id)
    return found


# -- results ------------------------------------------------------------------------------------------
@dataclass
class Evidence:
    call: Call
    detail: str
    failing: bool

    def as_json(self) -> dict[str, Any]:
        return {"request_id": self.call.id, "time": self.call.time, "detail": self.detail}


@dataclass
class RuleResult:
    rule: Rule
    failing: list[Evidence] = field(default_factory=list)
    passing: list[Evidence] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failing:
            return FAIL
        return PASS if self.passing else NOT_APPLICABLE

    def shown(self) -> list[Evidence]:
        """The evidence a report shows: the failures when there are any, else what shows the pass."""
        items, cap = (self.failing, MAX_FAILING) if self.failing else (self.passing, MAX_PASSING)
        if len(items) <= cap:
            return list(items)
        kept = list(items[:cap])
        last = kept[-1]
        kept[-1] = Evidence(last.call, f"{last.detail} (and {len(items) - cap} more like this)", last.failing)
        return kept

    def fail(self, call: Call, detail: str) -> None:
        self.failing.append(Evidence(call, detail, True))

    def ok(self, call: Call, detail: str) -> None:
        self.passing.append(Evidence(call, detail, False))


@dataclass
class Report:
    generated_at: datetime
    results: list[RuleResult]
    bills: int
    calls: int

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    def failed_errors(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == FAIL and r.rule.severity == R.ERROR]


# -- request bodies against the spec -------------------------------------------------------------------
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def resolve(document: Any, path: str) -> Any:
    """The value at an error's field path (`basket.product_list[0].price`), or None."""
    if path in ("", "$"):
        return document
    node = document
    for name, index in _TOKEN.findall(path):
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return None
            node = node[int(index)]
        else:
            if not isinstance(node, Mapping) or name not in node:
                return None
            node = node[name]
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_string(value: int | float) -> str:
    return format(Decimal(str(value)), "f")


def numbers_in(value: Any, path: str) -> list[tuple[str, Any]]:
    if _is_number(value):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [found for k, v in value.items() for found in numbers_in(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in numbers_in(v, f"{path}[{i}]")]
    return []


def _stringify(value: Any) -> Any:
    if _is_number(value):
        return _as_string(value)
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    return value


def _set(document: Any, path: str, value: Any) -> None:
    tokens = _TOKEN.findall(path)
    node = document
    for name, index in tokens[:-1]:
        node = node[int(index)] if index else node[name]
    name, index = tokens[-1]
    if index:
        node[int(index)] = value
    else:
        node[name] = value


def _under(field_path: str, root: str) -> bool:
    return field_path == root or field_path.startswith(root + ".") or field_path.startswith(root + "[")


@dataclass
class BodyCheck:
    other: list[FieldError] = field(default_factory=list)  # plain spec violations
    numbers: list[tuple[str, Any]] = field(default_factory=list)  # JSON numbers where a string is documented
    external: list[FieldError] = field(default_factory=list)  # external_vouchers on finalise


def check_body(spec: Spec, call: Call) -> BodyCheck:
    result = BodyCheck()
    operation = spec.by_id().get(call.operation_id or "")
    if operation is None:
        return result
    schema = operation.body_media.get("application/json")
    if schema is None:
        return result
    if call.body is None or isinstance(call.body, str):
        if operation.raw.get("requestBody", {}).get("required") or call.body is not None:
            what = "no body" if call.body is None else "a body that is not JSON"
            result.other.append(FieldError("$", f"sent {what}; expected a JSON object"))
        return result
    for error in schema.errors(call.body):
        if call.operation_id == FINALISE and _under(error.field, "basket.external_vouchers"):
            result.external.append(error)
            continue
        value = resolve(call.body, error.field)
        if _is_number(value) and "string" in error.message:
            result.numbers.append((error.field, value))
            continue
        found = numbers_in(value, error.field) if isinstance(value, (dict, list)) else []
        if found:
            candidate = copy.deepcopy(call.body)
            if error.field in ("", "$"):
                candidate = _stringify(candidate)
            else:
                _set(candidate, error.field, _stringify(value))
            if not any(_under(e.field, error.field) for e in schema.errors(candidate)):
                result.numbers.extend(n for n in found if n not in result.numbers)
                continue
        result.other.append(error)
    return result


# -- amounts --------------------------------------------------------------------------------------------
def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        found = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return found if found.is_finite() else None


def _unit(item: Mapping[str, Any], problems: list[str], where: str) -> Decimal:
    price = _dec(item.get("price")) or Decimal(0)
    promo = _dec(item.get("promotion_price"))
    if price < 0:
        problems.append(f"{where}.price is negative ({item.get('price')})")
    if promo is not None and promo < 0:
        problems.append(f"{where}.promotion_price is negative ({item.get('promotion_price')})")
    unit = promo if item.get("on_promotion") is True and promo is not None else price
    for index, condiment in enumerate(item.get("condiments") or []):
        if isinstance(condiment, Mapping):
            c_price = _dec(condiment.get("price")) or Decimal(0)
            c_qty = _dec(condiment.get("quantity"))
            c_qty = Decimal(1) if c_qty is None else c_qty
            if c_price < 0 or c_qty < 0:
                problems.append(f"{where}.condiments[{index}] has a negative price or quantity")
            unit += c_price * c_qty
    return unit


def basket_amounts(call: Call) -> tuple[list[str], str]:
    """What is inconsistent in the basket's amounts (empty when they add up), and how it adds up."""
    basket = call.basket
    problems: list[str] = []
    lines = Decimal(0)
    products = [p for p in basket.get("product_list") or [] if isinstance(p, Mapping)]
    for index, product in enumerate(products):
        where = f"basket.product_list[{index}]"
        quantity = _dec(product.get("quantity")) or Decimal(0)
        if quantity <= 0:
            problems.append(f"{where}.quantity is {product.get('quantity')}; expected more than 0")
        lines += quantity * _unit(product, problems, where)
        for a_index, add_on in enumerate(product.get("add_ons") or []):
            if isinstance(add_on, Mapping):
                a_where = f"{where}.add_ons[{a_index}]"
                a_qty = _dec(add_on.get("quantity")) or Decimal(0)
                if a_qty < 0:
                    problems.append(f"{a_where}.quantity is negative")
                lines += a_qty * _unit(add_on, problems, a_where)
    fees = sum(
        (_dec(basket.get(k)) or Decimal(0) for k in ("delivery_fee", "service_fee", "product_handling_fees")),
        Decimal(0),
    )
    vat = _dec(basket.get("vat")) or Decimal(0)
    discount = _dec(basket.get("discount")) or Decimal(0)
    total = _dec(basket.get("total"))
    slack = R.CENT * max(1, len(products))
    if total is None:
        return problems, ""
    if total < 0:
        problems.append(f"basket.total is negative ({basket.get('total')})")
    readings = {lines + fees, lines + fees + vat, lines + fees - discount, lines + fees + vat - discount}
    if not any(abs(total - r) <= slack for r in readings):
        problems.append(
            f"basket.total {basket.get('total')} is not the sum of the product lines ({lines:.2f}) plus fees "
            f"({fees:.2f}){f' and vat ({vat:.2f})' if vat else ''}"
        )
    sub_total = _dec(basket.get("sub_total"))
    if sub_total is not None and not any(abs(total - r) <= slack for r in (sub_total + vat + fees, sub_total + fees)):
        problems.append(
            f"basket.total {basket.get('total')} is not sub_total {basket.get('sub_total')} plus vat and fees"
        )
    due_field = "outstanding" if call.operation_id == OFFERINGS else "outstanding_amount"
    due = _dec(basket.get(due_field))
    if due is not None:
        if due < 0:
            problems.append(f"basket.{due_field} is negative ({basket.get(due_field)})")
        elif due > total + slack:
            problems.append(
                f"basket.{due_field} {basket.get(due_field)} is more than basket.total {basket.get('total')}"
            )
        elif discount and due > total - discount + slack:
            problems.append(
                f"basket.{due_field} {basket.get(due_field)} is more than total less the basket's own discount "
                f"({total - discount:.2f})"
            )
    how = f"total {basket.get('total')} = lines {lines:.2f} + fees {fees:.2f}" + (f", vat {vat:.2f}" if vat else "")
    if due is not None:
        how += f"; {due_field} {basket.get(due_field)}"
    return problems, how


# -- the evaluation -------------------------------------------------------------------------------------
def _ids(items: Any) -> list[str]:
    return [str(v["id"]) for v in items or [] if isinstance(v, Mapping) and v.get("id") is not None]


def _offered(call: Call) -> dict[str, str]:
    """Deal and voucher ids in a get/offerings answer -> where they were."""
    basket = call.content.get("basket")
    basket = basket if isinstance(basket, Mapping) else {}
    found: dict[str, str] = {}
    for vid in _ids(basket.get("vouchers")):
        found[f"voucher {vid}"] = "basket.vouchers"
    for did in _ids(basket.get("deals")):
        found[f"deal {did}"] = "basket.deals"
    for product in basket.get("product_list") or []:
        if not isinstance(product, Mapping):
            continue
        sku = product.get("sku")
        for vid in _ids(product.get("vouchers")):
            found.setdefault(f"voucher {vid}", f"product {sku} vouchers")
        deal = product.get("deal")
        if isinstance(deal, Mapping) and deal.get("id") is not None:
            found.setdefault(f"deal {deal['id']}", f"product {sku} deal")
    return found


def _passed_back(call: Call) -> set[str]:
    basket = call.basket
    sent = {f"voucher {v}" for v in _ids(basket.get("vouchers"))} | {f"deal {d}" for d in _ids(basket.get("deals"))}
    for product in basket.get("product_list") or []:
        if isinstance(product, Mapping):
            sent |= {f"voucher {v}" for v in _ids(product.get("vouchers"))}
            deal = product.get("deal")
            if isinstance(deal, Mapping) and deal.get("id") is not None:
                sent.add(f"deal {deal['id']}")
    return sent


def _expired_codes(call: Call) -> list[str]:
    codes = call.codes
    errors = call.response.get("errors") if isinstance(call.response, Mapping) else None
    found: list[str] = []
    for error in errors or []:
        match = re.fullmatch(r"code\[(\d+)\]", str(error.get("field", ""))) if isinstance(error, Mapping) else None
        if match and int(match.group(1)) < len(codes) and "expired" in str(error.get("message", "")):
            found.append(codes[int(match.group(1))])
    return found or codes


def evaluate(entries: Iterable[Mapping[str, Any]], spec: Spec, now: datetime, bill_timeout: float) -> Report:
    """The report over journal entries (oldest first or not: ordered by id here)."""
    calls = calls_from(entries)
    results = {rule.id: RuleResult(rule) for rule in R.RULES}
    pos_calls = [c for c in calls if c.api == POS_API]
    appends = [c for c in calls if c.api == PROVIDER_API and c.operation_id == APPEND]
    bills: dict[BillKey, list[Call]] = {}
    for call in pos_calls:
        if call.operation_id in (OFFERINGS, FINALISE) and call.key is not None:
            bills.setdefault(call.key, []).append(call)
    appends_by_bill: dict[BillKey, list[Call]] = {}
    for call in appends:
        if call.key is not None:
            appends_by_bill.setdefault(call.key, []).append(call)

    checks = {c.id: check_body(spec, c) for c in pos_calls if c.operation_id is not None}
    _spec_valid(results[R.SPEC_VALID.id], pos_calls, checks)
    _decimal_strings(results[R.DECIMAL_STRINGS.id], pos_calls, checks)
    _external(results[R.EXTERNAL_ONLY_ON_OFFERINGS.id], bills, checks)
    _amounts(results[R.AMOUNTS_CONSISTENT.id], pos_calls, checks)
    for key, bill in bills.items():
        _offerings_on_print(results[R.OFFERINGS_ON_PRINT.id], bill)
        _finalise_every_bill(results[R.FINALISE_EVERY_BILL.id], key, bill, now, bill_timeout)
        _pass_back(results[R.PASS_BACK.id], bill, appends_by_bill.get(key, []))
    _no_retry(results[R.NO_FINALISE_RETRY.id], pos_calls)
    _expired(results[R.EXPIRED_CODE.id], pos_calls)
    _append_vouchers(results[R.APPEND_VOUCHERS.id], appends, bills)
    return Report(now, [results[rule.id] for rule in R.RULES], len(bills), len(calls))


def _fields(errors: Sequence[FieldError]) -> str:
    return "; ".join(f"{e.field}: {e.message}" for e in errors)


def _spec_valid(result: RuleResult, calls: list[Call], checks: dict[int, BodyCheck]) -> None:
    for call in calls:
        problems: list[str] = []
        if call.operation_id is None:
            problems.append(f"{call.method} {call.path} is not an operation of letstrade-pos.yaml ({call.status})")
        else:
            if call.status == 401:
                problems.append("no valid bearer token in the Authorization header (401)")
            if call.status in (408, 413, 415):
                message = call.response.get("message") if isinstance(call.response, Mapping) else None
                problems.append(f"answered {call.status}: {message or 'the body could not be taken'}")
            check = checks.get(call.id)
            if check is not None and check.other:
                problems.append(_fields(check.other))
        if problems:
            result.fail(call, f"{call.operation_id or 'unknown path'}: " + "; ".join(problems))
        else:
            result.ok(call, f"{call.operation_id}: valid against the spec")


def _decimal_strings(result: RuleResult, calls: list[Call], checks: dict[int, BodyCheck]) -> None:
    for call in calls:
        check = checks.get(call.id)
        if check is None or call.operation_id not in (OFFERINGS, FINALISE, "refund"):
            continue
        if check.numbers:
            shown = ", ".join(f'{path} = {value!r} (send "{_as_string(value)}")' for path, value in check.numbers)
            result.fail(call, f"{call.operation_id} sent JSON numbers where the spec documents strings: {shown}")
        elif isinstance(call.body, Mapping):
            result.ok(call, f"{call.operation_id}: every amount and quantity sent as a string")


def _external(result: RuleResult, bills: dict[BillKey, list[Call]], checks: dict[int, BodyCheck]) -> None:
    for bill in bills.values():
        offered_external: Call | None = None
        for call in bill:
            if call.operation_id == OFFERINGS and call.basket.get("external_vouchers"):
                offered_external = call
            if call.operation_id != FINALISE:
                continue
            if "external_vouchers" in call.basket:
                ids = _ids(call.basket.get("external_vouchers")) or ["[]"]
                result.fail(
                    call,
                    f"finalise sent basket.external_vouchers ({', '.join(ids)}); they are only accepted on "
                    f"get/offerings (answered {call.status})",
                )
            elif offered_external is not None:
                sent = ", ".join(_ids(offered_external.basket.get("external_vouchers")))
                result.ok(
                    call,
                    f"finalise left out the external vouchers ({sent}) sent on get/offerings #{offered_external.id}",
                )


def _amounts(result: RuleResult, calls: list[Call], checks: dict[int, BodyCheck]) -> None:
    for call in calls:
        check = checks.get(call.id)
        if call.operation_id not in (OFFERINGS, FINALISE) or check is None:
            continue
        if check.other or check.numbers or not call.basket:
            continue  # an invalid body is judged by the spec rules
        problems, how = basket_amounts(call)
        if problems:
            result.fail(call, f"{call.operation_id}: " + "; ".join(problems))
        else:
            result.ok(call, f"{call.operation_id}: {how}")


def _offerings_on_print(result: RuleResult, bill: list[Call]) -> None:
    finalise = next((c for c in bill if c.operation_id == FINALISE and c.status not in (400, 401)), None)
    if finalise is None:
        return
    before = [c for c in bill if c.operation_id == OFFERINGS and c.ok and c.id < finalise.id]
    if before:
        result.ok(finalise, f"finalise after get/offerings #{before[0].id} (bill print)")
    else:
        result.fail(
            finalise, "finalise of a basket for which no successful get/offerings was called first (bill print)"
        )


def _finalise_every_bill(
    result: RuleResult, key: BillKey, bill: list[Call], now: datetime, bill_timeout: float
) -> None:
    opened = [c for c in bill if c.operation_id == OFFERINGS and c.ok]
    if not opened:
        return
    closing = next((c for c in bill if c.operation_id == FINALISE and c.ok), None)
    if closing is not None:
        result.ok(closing, f"finalise closed the bill {key[2]} printed by get/offerings #{opened[0].id}")
        return
    last = opened[-1]
    idle = (now - last.at).total_seconds()
    if idle <= bill_timeout:
        return  # still open, within its time: no evidence yet
    tried = [c for c in bill if c.operation_id == FINALISE]
    attempts = (
        f"; finalise attempts {', '.join(c.label for c in tried)} all failed"
        if tried
        else "; finalise was never called"
    )
    result.fail(
        last,
        f"bill {key[2]} at store {key[0]}, terminal {key[1]} (get/offerings #{opened[0].id}"
        f"{'' if last is opened[0] else f', last refreshed by #{last.id}'}) has had no successful finalise for "
        f"{idle:.0f} s (--pos-bill-timeout {bill_timeout:g} s){attempts}",
    )


def _pass_back(result: RuleResult, bill: list[Call], appends: list[Call]) -> None:
    closing = next((c for c in bill if c.operation_id == FINALISE and c.ok), None)
    if closing is None:
        return
    offered = [c for c in bill if c.operation_id == OFFERINGS and c.ok and c.id < closing.id]
    if not offered:
        return
    last = offered[-1]
    expected = _offered(last)
    for append in appends:
        if append.ok and last.id < append.id < closing.id and isinstance(append.body, Mapping):
            for voucher in append.body.get("vouchers") or []:
                if isinstance(voucher, Mapping) and voucher.get("id") is not None:
                    expected.setdefault(f"voucher {voucher['id']}", f"append-vouchers #{append.id}")
    if not expected:
        return
    missing = [f"{name} ({where})" for name, where in expected.items() if name not in _passed_back(closing)]
    if missing:
        result.fail(
            closing,
            f"finalise did not pass back {', '.join(missing)} from get/offerings #{last.id}",
        )
    else:
        result.ok(closing, f"finalise passed back {', '.join(sorted(expected))} from get/offerings #{last.id}")


def _no_retry(result: RuleResult, calls: list[Call]) -> None:
    done_bills: dict[BillKey, Call] = {}
    done_codes: dict[str, Call] = {}
    retried: set[int] = set()
    for call in calls:
        if call.operation_id != FINALISE:
            continue
        earlier = done_bills.get(call.key) if call.key is not None else None
        reused = [(code, done_codes[code]) for code in call.codes if code in done_codes]
        if earlier is not None:
            result.fail(
                call,
                f"finalise of basket {call.key[2] if call.key else '?'} sent again after #{earlier.id} was answered "
                f"{earlier.status} (answered {call.status}); a finalise cannot be undone or repeated",
            )
            retried.add(earlier.id)
        elif reused:
            first = reused[0][1]
            result.fail(
                call,
                f"finalise sent code {', '.join(c for c, _ in reused)} again after #{first.id} finalised it "
                f"(answered {call.status})",
            )
            retried.add(first.id)
        if call.ok:
            if call.key is not None:
                done_bills.setdefault(call.key, call)
            for code in call.codes:
                done_codes.setdefault(code, call)
    for call in done_bills.values():
        if call.id not in retried:
            result.ok(call, "finalised once, never sent again")


def _expired(result: RuleResult, calls: list[Call]) -> None:
    relevant = [c for c in calls if c.operation_id in (OFFERINGS, FINALISE)]
    for index, call in enumerate(relevant):
        if call.status != 410:
            continue
        codes = _expired_codes(call)
        later = relevant[index + 1 :]
        again = next((c for c in later if set(c.codes) & set(codes)), None)
        if again is not None:
            result.fail(
                again,
                f"sent expired code {', '.join(sorted(set(again.codes) & set(codes)))} again after #{call.id} answered "
                "410; a new code must be generated and passed",
            )
            continue
        following = next((c for c in later if c.key == call.key), None)
        if following is not None:
            new = [c for c in following.codes if c not in codes]
            how = f"a new code {', '.join(new)}" if new else "no code"
            result.ok(call, f"code {', '.join(codes)} expired; the till went on with {how} (#{following.id})")


def _append_vouchers(result: RuleResult, appends: list[Call], bills: dict[BillKey, list[Call]]) -> None:
    for call in appends:
        problems: list[str] = []
        if call.status == 0:
            problems.append(call.error or "the till did not answer")
        own = [v for v in call.violations if v.get("kind") not in ("request_schema", "timeout", "unreachable")]
        if own:
            problems.append(
                "the answer does not match letstrade-pos-provider.yaml: "
                + "; ".join(f"{v.get('field', '$')}: {v.get('message')}" for v in own)
            )
        if call.duration_ms > R.APPEND_VOUCHERS_BUDGET_MS and call.status:
            problems.append(f"answered after {call.duration_ms:.0f} ms (budget {R.APPEND_VOUCHERS_BUDGET_MS:g} ms)")
        if call.status and not call.ok and not own:
            bill = bills.get(call.key) if call.key is not None else None
            printed = bill is not None and any(c.operation_id == OFFERINGS and c.ok and c.id < call.id for c in bill)
            closed = bill is not None and any(c.operation_id == FINALISE and c.ok and c.id < call.id for c in bill)
            if printed and not closed:
                problems.append(
                    f"refused ({call.status}) vouchers for bill {call.key[2] if call.key else '?'}, which it "
                    "printed and has not closed"
                )
        where = f"append-vouchers for bill {call.key[2] if call.key else '?'}"
        if problems:
            result.fail(call, f"{where}: " + "; ".join(problems))
        else:
            result.ok(call, f"{where}: answered {call.status} per the provider spec in {call.duration_ms:.0f} ms")
