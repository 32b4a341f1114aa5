"""Building the schemathesis side of the suite: one schema per API (positive and negative modes,
realistic positive data), the target-dependent preparation of a case just before it is sent,
and the runner that calls, validates and classifies."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

from contracts import data
from contracts.checks import CheckEnv, CheckFunction, checks_for, operation_id
from contracts.failures import annotate, findings_from
from contracts.options import Options
from contracts.report import Recorder
from contracts.specs import load_spec
from contracts.target import ApiContext

# How often a positive case is pointed at something that exists on the target (a minted code,
# the configured channel or organization, a customer seen in a list) instead of a random id.
SUBSTITUTE = 0.75


def build_schema(slug: str, options: Options) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(load_spec(slug))
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=options.examples_per_operation,
        # The specs allow unknown query parameters and fields (CONVENTIONS.md): an unexpected
        # parameter is not invalid input, so it must not be generated as such.
        allow_extra_parameters=False,
    )
    data.install(schema, slug)
    return schema


def hypothesis_settings(options: Options) -> settings:
    return settings(
        max_examples=options.examples_per_operation,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )


# -- target-dependent preparation (positive cases only) ------------------------------------------
def _cached(ctx: ApiContext, key: str, fetch: Callable[[], Any]) -> Any:
    if key not in ctx.cache:
        try:
            ctx.cache[key] = fetch()
        except Exception:  # a look-up that fails only means no substitution
            ctx.cache[key] = None
    return ctx.cache[key]


def _ids(ctx: ApiContext, path: str, pick: Callable[[Any], list[str]]) -> list[str]:
    response = ctx.request("GET", path)
    return pick(response.json()) if response.status_code == 200 else []


def _customers(ctx: ApiContext, rnd: random.Random) -> list[str]:
    """Customers to aim get/update/delete at; an empty company on a mock gets three first."""
    ids = _ids(ctx, "/v1/customers", lambda b: [c["uuid"] for c in b["data"]["customers"]])
    if not ids and ctx.is_mock:
        fake = data.seeded(rnd)
        for _ in range(3):
            created = ctx.request(
                "POST", "/v1/customers", json={"first_name": fake.first_name(), "last_name": fake.last_name()}
            )
            if created.status_code == 200:
                ids.append(str(created.json()["data"]["uuid"]))
    return ids


def _mint(ctx: ApiContext, kind: str, rnd: random.Random) -> str:
    admin = ctx.admin
    assert admin is not None
    body: dict[str, Any] = {"type": kind}
    if kind == "P":
        body.update(
            wallet_balance=f"{rnd.randint(0, 300)}.00", card_limit="5000.00", loan_limit=f"{rnd.randint(0, 100)}.00"
        )
    if kind == "E":
        body["points_per_currency_unit"] = "1"
    code = str(admin.mint_code(**body)["code"])
    ctx.cache.setdefault("minted", set()).add(code)
    return code


def _channel(ctx: ApiContext) -> dict[str, Any] | None:
    """The configured channel as getChannel/listChannels returns it (with its field schema)."""

    def fetch() -> dict[str, Any] | None:
        wanted = (ctx.creds.get("letstrade_channel") or {}).get("webhook_uuid")
        response = ctx.request("GET", "/v2/channels")
        if response.status_code != 200:
            return None
        for channel in response.json().get("content", {}).get("channels", []):
            if channel.get("webhook_uuid") == wanted:
                found: dict[str, Any] = channel
                return found
        return None

    found: dict[str, Any] | None = _cached(ctx, "channel", fetch)
    return found


def _channel_type(ctx: ApiContext, channel_id: str) -> str | None:
    response = ctx.request("GET", f"/v2/channels/{channel_id}")
    if response.status_code != 200:
        return None
    return str(response.json()["content"]["channel"].get("channel_type"))


def protect(ctx: ApiContext, case: Any) -> None:
    """Outside the in-process mock, never aim a case (of any mode: schemathesis also reuses ids it
    saw in responses) at what the account's own integration depends on: its configured channel
    (update, key rotation) and webhook subscriptions the suite did not create."""
    if ctx.in_process:
        return
    op = operation_id(case)
    params = case.path_parameters
    if ctx.slug == "letstrade-channels" and op in ("updateChannel", "rotateChannelKey"):
        channel = _channel(ctx)
        if channel is not None and params.get("channel_id") == channel.get("_id"):
            params["channel_id"] = data.hex_id(case_random(case))  # an id no channel has
    elif ctx.slug == "loke" and op in ("upsertWebhook", "deleteWebhook"):
        ref = str(params.get("webhookRef", ""))
        if not ref.startswith("lcs-"):
            params["webhookRef"] = f"lcs-{ref}"


def case_random(case: Any) -> random.Random:
    """A random source that is a function of what the case sends, so a case replayed by
    hypothesis (shrinking, a stateful re-run) is prepared exactly as before."""
    key = json.dumps([case.method, case.path, case.path_parameters, case.query, case.body], sort_keys=True, default=str)
    return random.Random(hashlib.sha256(key.encode()).hexdigest())


def prepare(ctx: ApiContext, case: Any, *, substitute: bool = True) -> None:
    """Bring a positive case within the spec's prose rules and point it at things that exist on
    this target (mutates the case). A case a link produced keeps the ids the link gave it
    (`substitute=False`): schemathesis takes every changed value for a linked one, so swapping
    in a seeded id would make its checks blame the resource the link's parent created."""
    try:
        if not data.is_positive(case):
            return
        _prepare_positive(ctx, case, substitute)
    finally:
        protect(ctx, case)


def _prepare_positive(ctx: ApiContext, case: Any, substitute: bool) -> None:
    rnd = case_random(case)
    data.documented_rules(ctx.slug, case, rnd, lambda channel_id: _channel_type(ctx, channel_id))
    if not substitute:
        return
    op = operation_id(case)
    path_params = case.path_parameters
    if ctx.slug == "letstrade-pos" and op in ("getOfferings", "finaliseOfferings") and ctx.admin is not None:
        codes = case.body.get("code") if isinstance(case.body, dict) else None
        if codes:
            case.body["code"] = [_mint(ctx, str(code)[0], rnd) for code in codes]
    elif ctx.slug == "letstrade-channels":
        channel = _channel(ctx)
        if channel is None or rnd.random() > SUBSTITUTE:
            return
        if op == "upsertChannelCustomer":
            path_params["webhook_uuid"] = channel["webhook_uuid"]
            case.body = data.channel_payload(channel.get("custom_field_schema") or [], rnd)
        elif op == "getChannel" or (op in ("updateChannel", "rotateChannelKey") and ctx.in_process):
            path_params["channel_id"] = channel["_id"]
    elif ctx.slug == "customtrades" and op in ("getCustomer", "updateCustomer", "deleteCustomer"):
        if op != "getCustomer" and not ctx.is_mock:
            return  # never change a real account's existing customers
        ids = _cached(ctx, "customers", lambda: _customers(ctx, rnd))
        if ids and rnd.random() < SUBSTITUTE:
            path_params["uuid"] = rnd.choice(ids)
    elif ctx.slug == "loke" and "organizationId" in path_params:
        org = (ctx.creds.get("loke") or {}).get("organization_id")
        if not org or rnd.random() > SUBSTITUTE:
            return
        path_params["organizationId"] = org
        if "customerId" in path_params:
            ids = _cached(
                ctx,
                "loke-customers",
                lambda: _ids(ctx, f"/organizations/{org}/customers", lambda b: [c["id"] for c in b]),
            )
            if ids:
                path_params["customerId"] = rnd.choice(ids)
        if "listId" in path_params:
            lists = _cached(
                ctx,
                "loke-lists",
                lambda: _ids(ctx, f"/organizations/{org}/customer-lists", lambda b: [c["id"] for c in b]),
            )
            if lists:
                path_params["listId"] = rnd.choice(lists)


# -- checks bound to a target ------------------------------------------------------------------------
def _foreign_channel_key(ctx: ApiContext) -> Callable[[], str | None]:
    def key() -> str | None:
        configured = (ctx.creds.get("letstrade_channel") or {}).get("other_api_key")
        if configured:
            return str(configured)
        if not ctx.is_mock:
            return None  # creating a channel on a real account cannot be undone

        def create() -> str | None:
            body = {
                "type": "customer_webhook",
                "channel_type": "customer",
                "status": "ACTIVE",
                "permissions": {k: {"read": True, "write": True} for k in ("products", "orders", "customers")},
                "custom_field_schema": data.channel_field_schema("customer", random.Random(7)),
            }
            response = ctx.request("POST", "/v2/create/channel", json=body)
            return str(response.json()["content"]["api_key"]) if response.status_code == 200 else None

        found: str | None = _cached(ctx, "foreign-channel-key", create)
        return found

    return key


def check_env(ctx: ApiContext, spec: str | None = None) -> CheckEnv:
    return CheckEnv(
        api=ctx.slug,
        spec=spec or ctx.slug,
        base_url=ctx.base_url,
        send=ctx.session.request,
        headers=ctx.headers,
        admin=ctx.admin,
        may_move_clock=ctx.may_move_clock,
        secrets=ctx.known_secrets(),
        minted=ctx.cache.setdefault("minted", set()),
        foreign_channel_key=_foreign_channel_key(ctx),
    )


def negates_credentials(case: Any) -> bool:
    """Whether `case` is a negative case aimed at a security scheme's header, query or cookie."""
    if getattr(case, "meta", None) is None:
        return False
    return bool(case.operation.schema.is_security_param_negated(case))


class Runner:
    """Sends a case to the target and validates it: built-in checks plus the suite's own."""

    def __init__(self, ctx: ApiContext, recorder: Recorder) -> None:
        self.ctx = ctx
        self.recorder = recorder
        self.checks: list[CheckFunction] = checks_for(check_env(ctx))

    def call_kwargs(self, case: Any, *, substitute: bool = True) -> dict[str, Any]:
        prepare(self.ctx, case, substitute=substitute)
        # A negative case whose invalid part is a credential (schemathesis treats the security
        # schemes' headers as parameters: "violates `required` (was Authorization)") is sent as
        # generated: the suite's own credentials would put back what the case left out on
        # purpose, and a correct target accepting that valid request would be blamed for it.
        headers = {} if negates_credentials(case) else self.ctx.headers()
        return {"base_url": self.ctx.base_url, "session": self.ctx.session, "headers": headers}

    def classify_and_raise(self, group: FailureGroup, case: Any, status: int | None) -> None:
        findings = findings_from(self.ctx.slug, self.ctx.slug, group, case, status)
        self.recorder.add(findings)
        raise annotate(group, findings) from None

    def run(self, case: Any) -> None:
        self.recorder.case(case.operation.label)
        kwargs = self.call_kwargs(case)
        response = case.call(**kwargs)
        try:
            case.validate_response(
                response,
                additional_checks=self.checks,
                headers=kwargs["headers"],
                transport_kwargs=kwargs,
            )
        except FailureGroup as group:
            self.classify_and_raise(group, case, response.status_code)
