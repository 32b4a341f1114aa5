"""Hand-written hypothesis state machines, one per API (`build(ctx, recorder)` in each module).

They model what the specs say a sequence of calls does (a customer created then deleted leaves
the lists; a finalised code cannot be finalised again; a rotated key stops working) and use only
the public endpoints, so they run against a vendor too. Steps that need the mock (minting a code,
moving the clock, making a LOKE event happen) are rules gated by `MOCK` (and `CLOCK`), and steps
that cannot be undone by `IRREVERSIBLE`: on a real target they are never chosen, and the summary
counts them apart with the reason.

Every call goes through `Api.call`, which counts it, checks its status is documented and its body
matches the documented schema, and checks it leaks no secret.

Scenario coverage (issue 22). Each rule is declared with `step(...)` (hypothesis' `rule` plus
the gates above, an optional state precondition `when`, and reach counting), and each machine
writes a `tour`: a short scripted walk that drives every rule at least once in an order that
reaches the deep scenarios (let a code expire, then use it; deactivate a channel, then write to
it; rotate a key, then use the old one; finalise twice), calling the same rule methods with fixed
arguments, so the checks are the ones the random steps make. `explore` runs the tour once and
then hypothesis' random runs (the profile's budget). A short random budget rarely reaches such
sequences on its own (hypothesis also switches random subsets of the rules off per run); the tour
makes reaching them deterministic, the random runs still look for the sequences nobody wrote.
A rule counts as reached when its body sent at least one request to the API (or, for a step on
the mock's admin API only, when it completed): a rule that returned early for want of something
to work on does not count. The reach goes to the summary ("rules reached N/M").
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

import jsonschema
import requests
from hypothesis import settings as Settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

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


# -- gates, steps, reach and the tour (issue 22) ---------------------------------------------------
@dataclass(frozen=True)
class Gate:
    """What a rule needs from the target; `reason` is how the summary counts a rule that cannot
    run there ("5 not allowed on this target: mock-only 3, irreversible 2")."""

    reason: str
    allows: Callable[[ApiContext], bool]


MOCK = Gate("mock-only", lambda ctx: ctx.is_mock)
CLOCK = Gate("moves the clock of a shared mock", lambda ctx: ctx.may_move_clock)
IRREVERSIBLE = Gate("irreversible", lambda ctx: ctx.allow_irreversible)


def credential(what: str, present: Callable[[ApiContext], bool]) -> Gate:
    """A rule that needs an optional credential (another company's key, OAuth credentials)."""
    return Gate(f"needs {what}", present)


@dataclass(frozen=True)
class StepInfo:
    name: str
    gates: tuple[Gate, ...]
    when: Callable[[Any], bool] | None
    offline: bool  # talks only to the mock's admin API (or is an initialize rule): reached when it completes
    makes: str | None = None  # the bundle its results go to
    needs: tuple[str, ...] = ()  # the bundles it draws arguments from


STEP = "_lcs_step"
ALWAYS = "_lcs_invariant"


class _Missing:
    """What a tour step gives back when it did not run (gated off, or an argument missing)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _counted(f: Callable[..., Any], info: StepInfo) -> Callable[..., Any]:
    @functools.wraps(f)
    def counted(self: Machine, **kwargs: Any) -> Any:
        before = self.api.recorder.cases
        result = f(self, **kwargs)
        if info.offline or self.api.recorder.cases > before:
            self.reach.ran.add(info.name)
        return result

    return counted


def _bundle(target: Any) -> str | None:
    return str(target.name) if isinstance(target, Bundle) else None


def _bundles(arguments: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted({str(value.name) for value in arguments.values() if isinstance(value, Bundle)}))


def step(
    *gates: Gate,
    when: Callable[[Any], bool] | None = None,
    offline: bool = False,
    target: Any = None,
    **arguments: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """hypothesis' `@rule(target=..., **arguments)` for a rule that runs only where every gate
    allows it and (a state precondition) `when(machine)` holds, its reach counted."""

    def decorate(f: Callable[..., Any]) -> Any:
        info = StepInfo(f.__name__, gates, when, offline, _bundle(target), _bundles(arguments))

        def enabled(self: Machine) -> bool:
            if not all(gate.allows(self.ctx) for gate in gates):
                return False
            if when is None:
                return True
            holds = bool(when(self))
            if holds:
                self.reach.held.add(info.name)
            return holds

        wrapped = precondition(enabled)(rule(target=target, **arguments)(_counted(f, info)))
        setattr(wrapped, STEP, info)
        return wrapped

    return decorate


def start(*, target: Any = None) -> Callable[[Callable[..., Any]], Any]:
    """hypothesis' `@initialize(target=...)` with its reach counted (it runs first in every
    random run, and where the tour calls it)."""

    def decorate(f: Callable[..., Any]) -> Any:
        info = StepInfo(f.__name__, (), None, offline=True, makes=_bundle(target))
        wrapped = initialize(target=target)(_counted(f, info))
        setattr(wrapped, STEP, info)
        return wrapped

    return decorate


def always(f: Callable[..., Any]) -> Any:
    """hypothesis' `@invariant()`, also checked after every tour step."""
    wrapped = invariant()(f)
    setattr(wrapped, ALWAYS, True)
    return wrapped


@dataclass
class Reach:
    """Which rules of one machine ran (in the tour or the random runs) in this test."""

    steps: dict[str, StepInfo]
    ran: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)  # rules whose `when` held at least once

    def blocked(self, ctx: ApiContext, name: str, seen: frozenset[str] = frozenset()) -> Gate | None:
        """The gate that keeps rule `name` from running on this target: its own, or else that of
        every rule making what it needs (a code only the mock can mint makes using it mock-only)."""
        info = self.steps[name]
        own = next((gate for gate in info.gates if not gate.allows(ctx)), None)
        if own is not None:
            return own
        for bundle in info.needs:
            makers = [n for n, other in self.steps.items() if other.makes == bundle and n not in seen]
            gates = [self.blocked(ctx, n, seen | {name}) for n in makers]
            if gates and all(gates):
                return gates[0]
        return None

    def statuses(self, ctx: ApiContext) -> dict[str, str]:
        """rule -> "reached" | "not allowed: <reason>" | "never reached[: why]"."""
        found: dict[str, str] = {}
        for name, info in self.steps.items():
            gate = self.blocked(ctx, name)
            if name in self.ran:
                found[name] = "reached"
            elif gate is not None:
                found[name] = f"not allowed: {gate.reason}"
            elif info.when is not None and name not in self.held:
                found[name] = "never reached: its precondition never held"
            else:
                found[name] = "never reached"
        return found


class Machine(RuleBasedStateMachine):
    """A state machine of the suite: `bind(api)` it once built; override `tour`."""

    ctx: ClassVar[ApiContext]
    api: ClassVar[Api]
    reach: ClassVar[Reach]

    def __init__(self) -> None:
        super().__init__()
        self._walked: list[str] = []  # the tour's steps so far, for a failure's note

    @classmethod
    def bind(cls, api: Api) -> None:
        cls.ctx = api.ctx
        cls.api = api
        steps = {info.name: info for _, member in inspect.getmembers(cls) if (info := getattr(member, STEP, None))}
        cls.reach = Reach(steps)

    def tour(self) -> None:
        """The scripted prelude: `self.go(rule, **arguments)` for every rule, deep scenarios
        included, in an order that makes each one do its work."""
        raise NotImplementedError

    def go(self, name: str, **arguments: Any) -> Any:
        """Run rule `name` as the random steps would (same method, same checks), if its gates
        allow it here, its precondition holds and no argument is MISSING; else MISSING."""
        info = self.reach.steps[name]
        if any(value is MISSING for value in arguments.values()) or self.reach.blocked(self.ctx, name):
            return MISSING
        if info.when is not None:
            if not info.when(self):
                return MISSING
            self.reach.held.add(name)
        self._walked.append(f"state.{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})")
        result = getattr(self, name)(**arguments)
        for _, member in inspect.getmembers(type(self)):
            if getattr(member, ALWAYS, False):
                member(self)
        return result

    def walk(self) -> None:
        """The tour, on this (fresh) machine; a failure carries the steps that led to it."""
        try:
            self.tour()
        except Exception as error:
            error.add_note("in the scripted tour (the last step failed):\n" + "\n".join(self._walked))
            raise
        finally:
            self.teardown()


def explore(machine: type[Machine], settings: Settings) -> None:
    """The tour once, then hypothesis' random runs with `settings`; the reach of both goes to the
    recorder, also when a check fails."""
    try:
        machine().walk()
        run_state_machine_as_test(machine, settings=settings)  # type: ignore[no-untyped-call]
    finally:
        machine.api.recorder.rules_reached(machine.reach.statuses(machine.ctx))
