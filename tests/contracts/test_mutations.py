"""The contract suite catches bugs: each test breaks an in-process mock on purpose (a patched
handler, an injected fault), runs the suite against it as a user would (`pytest --pyargs contracts
--target URL`, in a subprocess) and asserts the run fails, naming the check and the operation. A
control run of the same selections against an unbroken mock must not report those findings.

The mutations are injected by this test code only; they are not features of the mock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mock_server.apis.base import ApiRequest, ApiResponse, Services
from mock_server.errors import Conflict
from mock_server.settings import Settings
from mock_server.testing import MockServer
from tests.contracts.suite_runner import SuiteRun, run_suite


def _patch_handler(mock: MockServer, slug: str, operation_id: str, make: Callable[[Any], Any]) -> None:
    """Replace one handler of this mock only (an instance attribute: other mocks keep theirs)."""
    definition = mock.services.runtimes[slug].definition
    original = definition.handlers[operation_id]
    definition.handlers = {**definition.handlers, operation_id: make(original)}


def finalise_twice(mock: MockServer) -> None:
    """Finalise lets a second finalise of the same basket or code succeed (answers the first's 200)."""

    def make(original: Any) -> Any:
        done: list[ApiResponse] = []

        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            try:
                response = original(services, store, request)
            except Conflict:
                if done:
                    return done[-1]
                raise
            done.append(response)
            return response

        return handler

    _patch_handler(mock, "letstrade-pos", "finaliseOfferings", make)


def server_error_for_bad_phones(mock: MockServer) -> None:
    """An injected fault answers 500 to any createCustomer whose phone is not xxx-xxx-xxxx."""
    mock.admin(
        "POST",
        "/faults",
        json={
            "api": "customtrades",
            "operation_id": "createCustomer",
            "match": {"/phone": {"pattern": "^(?![0-9]{3}-[0-9]{3}-[0-9]{4}$)"}},
            "status": 500,
            "body": {"success": False, "error": "Internal Server Error"},
        },
    ).raise_for_status()


def wrong_field_type(mock: MockServer) -> None:
    """getCustomer answers is_vip as a string ("yes") instead of a boolean."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            response = original(services, store, request)
            response.body = {**response.body, "data": {**response.body["data"], "is_vip": "yes"}}
            return response

        return handler

    _patch_handler(mock, "customtrades", "getCustomer", make)


def key_of_any_channel(mock: MockServer) -> None:
    """The customer webhook accepts the API key of any channel, not only the addressed one's."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            addressed = store.by_webhook_uuid(str(request.path_params["webhook_uuid"]))
            presented = getattr(request.principal, "value", "")
            if addressed is not None and any(c.key_matches(presented) for c in store):
                addressed.key_matches = lambda key: True  # the bug: any channel's key passes
                try:
                    return original(services, store, request)
                finally:
                    del addressed.key_matches
            return original(services, store, request)

        return handler

    _patch_handler(mock, "letstrade-channels", "upsertChannelCustomer", make)


def secret_echoed(mock: MockServer) -> None:
    """The LOKE webhook upsert answers with the subscription's secret."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            response = original(services, store, request)
            response.body = {**response.body, "secret": request.body["secret"]}
            return response

        return handler

    _patch_handler(mock, "loke", "upsertWebhook", make)


def paging_total_off_by_one(mock: MockServer) -> None:
    """listCustomers reports one customer more in pagination.total than there are."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            response = original(services, store, request)
            pagination = response.body["data"]["pagination"]
            pagination["total"] += 1
            return response

        return handler

    _patch_handler(mock, "customtrades", "listCustomers", make)


def duplicate_registration_accepted(mock: MockServer) -> None:
    """registerCustomer answers a duplicate registration (8006) with 200."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            try:
                return original(services, store, request)
            except Conflict:
                return ApiResponse(200, {"createdId": 1, "warnings": [], "sideEffects": []})

        return handler

    _patch_handler(mock, "capillary", "registerCustomer", make)


def deleted_customers_listed(mock: MockServer) -> None:
    """listCustomers lists soft-deleted customers even without include_deleted=true."""

    def make(original: Any) -> Any:
        def handler(services: Services, store: Any, request: ApiRequest) -> Any:
            return original(
                services, store, dataclasses.replace(request, query={**request.query, "include_deleted": True})
            )

        return handler

    _patch_handler(mock, "customtrades", "listCustomers", make)


@dataclass(frozen=True)
class Mutation:
    name: str
    apply: Callable[[MockServer], None]
    api: str
    select: str  # pytest -k expression
    check: str
    operation: str
    extra: tuple[str, ...] = ()


MUTATIONS = [
    Mutation(
        "a second finalise succeeds",
        finalise_twice,
        "letstrade-pos",
        "test_letstrade_pos and finalise",
        "finalise_executes_once",
        "POST /v1/finalise/offerings",
    ),
    Mutation(
        "a fault answers 500 for bad phone numbers",
        server_error_for_bad_phones,
        "customtrades",
        "test_customtrades and POST",
        "not_a_server_error",
        "POST /v1/customers",
    ),
    Mutation(
        "a response field has the wrong type",
        wrong_field_type,
        "customtrades",
        "test_customtrades and uuid and not PUT and not DELETE",
        "response_schema_conformance",
        "GET /v1/customers/{uuid}",
    ),
    Mutation(
        "a channel key works for another channel",
        key_of_any_channel,
        "letstrade-channels",
        "test_letstrade_channels and customers",
        "channel_key_scoped",
        "POST /v1/webhooks/channels/{webhook_uuid}/customers",
    ),
    Mutation(
        "a secret is echoed in a response",
        secret_echoed,
        "loke",
        "test_loke and PUT and webhooks",
        "no_secret_echo",
        "PUT /organizations/{organizationId}/webhooks/{webhookRef}",
    ),
    Mutation(
        "paging totals disagree with the pages",
        paging_total_off_by_one,
        "customtrades",
        "test_customtrades and GET and not uuid and not POST",
        "paging_totals_consistent",
        "GET /v1/customers",
    ),
    Mutation(
        "a duplicate registration is accepted",
        duplicate_registration_accepted,
        "capillary",
        "test_capillary and POST and v2",
        "duplicate_registration_refused",
        "POST /v2/customers",
    ),
    Mutation(
        "soft-deleted customers stay listed",
        deleted_customers_listed,
        "customtrades",
        "test_stateful_customtrades",
        "soft_deleted_leave_lists",
        "GET /v1/customers",
        ("--examples", "40"),
    ),
]


def _run_against(
    tmp: Path, mutation: Mutation | None, apis: list[str], select: str, extra: tuple[str, ...]
) -> SuiteRun:
    # max_tenants=0: the suite tests this mock's default tenant, where the mutation's fault is
    # (a mock serving tenants would get a tenant of the suite's own: tests/integration/test_tenants.py)
    settings = Settings(port=0, strict=False, customtrades_quota=0, capillary_rpm=0, max_tenants=0)
    with MockServer(settings) as mock:
        if mutation is not None:
            mutation.apply(mock)
        api_args = [arg for api in apis for arg in ("--api", api)]
        return run_suite(tmp, "--target", mock.base_url, "--allow-irreversible", *api_args, "-k", select, *extra)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SuiteRun]]:
    """Every mutated run and one control run, two at a time (each against its own mock)."""
    tmp = tmp_path_factory.mktemp("mutations")
    jobs: dict[str, Callable[[], SuiteRun]] = {
        m.name: (lambda m=m: _run_against(tmp, m, [m.api], m.select, m.extra)) for m in MUTATIONS
    }
    apis = sorted({m.api for m in MUTATIONS})
    select = " or ".join(f"({m.select})" for m in MUTATIONS)
    jobs["control"] = lambda: _run_against(tmp, None, apis, select, ("--examples", "40"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        yield {name: future.result() for name, future in futures.items()}


def test_at_least_five_mutations() -> None:
    assert len(MUTATIONS) >= 5


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_mutation_is_caught(mutation: Mutation, runs: dict[str, SuiteRun]) -> None:
    run = runs[mutation.name]
    assert run.tests, f"the suite ran no test:\n{run.output[-3000:]}"
    assert run.returncode == 1, f"the suite passed against a mock where {mutation.name}:\n{run.output[-3000:]}"
    assert run.found(mutation.check, mutation.operation), (
        f"no {mutation.check} finding on {mutation.operation}; findings: {run.findings()}\n{run.output[-3000:]}"
    )
    failed = run.failed()
    messages = "\n".join(t.message for t in failed)
    assert mutation.check in messages and mutation.operation.split(" ")[1] in messages, messages[:3000]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_control_run_does_not_report_it(mutation: Mutation, runs: dict[str, SuiteRun]) -> None:
    control = runs["control"]
    assert control.tests, control.output[-3000:]
    assert not control.found(mutation.check, mutation.operation), (
        f"the unbroken mock is reported for {mutation.check} on {mutation.operation}: {control.findings()}"
    )
