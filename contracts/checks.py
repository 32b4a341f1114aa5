"""Checks for what the specs cannot express, run on every response of the operations they
concern (next to schemathesis' built-in checks).

Each check is a plain schemathesis check function `(ctx, response, case)`, bound to a `CheckEnv`
(the target, a way to send requests, the admin API when the target is a mock). They are passed
explicitly to `call_and_validate(additional_checks=...)`, never registered globally, so they
cannot leak into other schemathesis tests of the same process.

A violation raises `ContractViolation` naming the check, the operation and the spec location
the property comes from, so the report says "contract broken" or "assumption refuted".

Checks (operation: property):
- `no_secret_echo` (all): no response (body or headers) carries a password, key or client
  secret, one sent in the request, or a password hash;
- `finalise_executes_once` (letstrade-pos finaliseOfferings): a finalised basket or code cannot
  be finalised again (409);
- `expired_code_refused` (letstrade-pos getOfferings): a code works until 10 minutes after
  minting and is refused (410) after (mock only: the clock is moved, then put back);
- `channel_key_scoped` (letstrade-channels webhooks): another channel's API key is refused (401);
- `paging_totals_consistent` (customtrades listCustomers): page, limit, total, total_pages and
  the items of the page agree;
- `soft_deleted_hidden` (customtrades listCustomers, getCustomer): soft-deleted customers are
  not listed (without include_deleted) nor returned;
- `soft_deleted_leave_lists` (customtrades deleteCustomer): after a delete, get is 404, the
  customer leaves lists, and include_deleted shows it;
- `duplicate_registration_refused` (capillary registerCustomer): registering the same customer
  in the same source again is 8006 (409);
- `next_page_never_repeats` (loke paged lists): `X-Next-Page` is a URL of the same listing, the
  next page repeats nothing of this one, and an empty page has no link;
- `points_reference_single_use` (loke adjustPoints): a points reference is used once; again is
  409 duplicate_point_record.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from schemathesis import Case, CheckContext, Response

from contracts.admin import AdminClient
from contracts.failures import ContractViolation
from contracts.provenance import Provenance, index_for

CheckFunction = Callable[[CheckContext, Response, Case[Any]], bool | None]

# Body fields whose value is a secret when a client sends it.
SECRET_FIELDS = frozenset({"password", "secret", "client_secret", "api_key", "apikey", "till_password", "oauth_secret"})
# Password hashes: argon2, bcrypt, scrypt, PBKDF2 and crypt(3) formats.
PASSWORD_HASH = re.compile(r"\$(argon2(?:id|i|d)|2[abxy]?|scrypt|pbkdf2(?:-sha\d+)?|[156])\$[^\s\"]{8,}")
# The mock's documented stand-in for the vendor's password hash (letstrade-channels.yaml,
# ChannelCustomer.password): its salt is base64("mock-placeholder-salt"); it hashes nothing.
MOCK_HASH_PLACEHOLDER_SALT = base64.b64encode(b"mock-placeholder-salt").decode().rstrip("=")
MIN_SECRET_LENGTH = 8
CODE_LIFETIME_SECONDS = 600


@dataclass
class CheckEnv:
    api: str
    spec: str
    base_url: str
    send: Callable[..., Any]  # requests-style: send(method=..., url=..., headers=..., json=..., params=...)
    headers: Callable[[], dict[str, str]]
    admin: AdminClient | None = None
    may_move_clock: bool = False
    secrets: dict[str, str] = field(default_factory=dict)
    minted: set[str] = field(default_factory=set)
    foreign_channel_key: Callable[[], str | None] = lambda: None


# -- helpers ---------------------------------------------------------------------------------------
def operation_id(case: Case[Any]) -> str | None:
    raw = case.operation.definition.raw
    return str(raw["operationId"]) if isinstance(raw, dict) and "operationId" in raw else None


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_2xx(status: int) -> bool:
    return 200 <= status < 300


def _sent_query(response: Response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(str(response.request.url)).query, keep_blank_values=True)


def _violation(env: CheckEnv, check: str, case: Case[Any], message: str, provenance: Provenance) -> ContractViolation:
    return ContractViolation(
        check=check, operation=f"{case.method} {case.path}", message=message, provenance=provenance
    )


def _replay(env: CheckEnv, case: Case[Any], *, headers: dict[str, str] | None = None, body: Any = ...) -> Any:
    """Send `case` again (optionally with other headers or body), authenticated as the suite."""
    kwargs = case.as_transport_kwargs(base_url=env.base_url, headers={**env.headers(), **(headers or {})})
    if body is not ...:
        kwargs.pop("data", None)
        kwargs["json"] = body
    kwargs.pop("cookies", None)
    return env.send(**kwargs)


def _strings(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield (*path, str(key)), str(key)
            yield from _strings(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*path, index))


def _described(
    name: str, check: Callable[[CheckEnv, CheckContext, Response, Case[Any]], bool | None], env: CheckEnv
) -> CheckFunction:
    def bound(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
        return check(env, ctx, response, case)

    bound.__name__ = name
    bound.__qualname__ = name
    bound.__doc__ = check.__doc__
    return bound


# -- secrets ---------------------------------------------------------------------------------------
def _header_secrets(headers: Any, bearer_is_secret: bool) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in (headers or {}).items():
        lowered, text = name.lower(), str(value)
        if lowered == "authorization":
            scheme, _, credential = text.partition(" ")
            if scheme.lower() == "basic":
                found[credential] = "the Basic credentials sent"
                try:
                    decoded = base64.b64decode(credential, validate=True).decode("utf-8")
                except ValueError:
                    decoded = ""
                _, sep, password = decoded.partition(":")
                if sep:
                    found[password] = "the password sent in the Basic credentials"
            elif bearer_is_secret:
                found[credential] = "the bearer token sent"
        elif lowered in ("x-api-key", "cap-api-access-token", "x-cap-api-oauth-token"):
            found[text] = f"the {name} header sent"
    return found


def _body_secrets(body: Any) -> tuple[dict[str, str], set[str]]:
    """(secret values by field, every other string value of the request)."""
    secrets: dict[str, str] = {}
    others: set[str] = set()
    for path, value in _strings(body):
        key = str(path[-1]).lower() if path else ""
        if path and isinstance(path[-1], str) and value == path[-1]:
            others.add(value)  # a key
        elif key in SECRET_FIELDS:
            secrets[value] = f"the `{'.'.join(str(p) for p in path)}` sent in the request"
        else:
            others.add(value)
    return secrets, others


def find_secret_leaks(
    response_headers: dict[str, list[str]],
    response_body: Any,
    response_text: str,
    auth_headers: Any,
    request_body: Any,
    request_other_values: set[str],
    known: dict[str, str],
    bearer_is_secret: bool,
) -> list[tuple[str, str]]:
    """Every (where, what) a response leaks; pure, so it is unit-testable on synthetic data.

    Secrets are: `known` ones (the credentials' passwords, keys, client secrets), the
    credentials in `auth_headers` (the headers the suite authenticated with; a bearer token only
    where the operation is secured: token endpoints return tokens), and secret fields of the
    request body (password, secret, api_key, ...) unless the same value is also sent as ordinary
    data. Header values the fuzzer generated are not secrets."""
    candidates = dict(known)
    body_secrets, others = _body_secrets(request_body)
    candidates.update(_header_secrets(auth_headers, bearer_is_secret))
    candidates.update(body_secrets)
    others |= request_other_values
    candidates = {s: label for s, label in candidates.items() if len(s) >= MIN_SECRET_LENGTH and s not in others}
    leaks: list[tuple[str, str]] = []
    strings: list[tuple[tuple[str | int, ...], str]] = (
        list(_strings(response_body)) if response_body is not None else [((), response_text)]
    )
    for name, values in response_headers.items():
        if name.lower() in ("set-cookie",):
            continue
        strings.extend(((f"header {name}",), value) for value in values)
    for path, value in strings:
        where = (
            "/" + "/".join(str(p) for p in path)
            if path and not str(path[0]).startswith("header ")
            else str(path[0])
            if path
            else "body"
        )
        for secret, label in candidates.items():
            if secret in value:
                leaks.append((where, f"{label} ({secret[:3]}…)"))
        hashed = PASSWORD_HASH.search(value)
        if hashed and MOCK_HASH_PLACEHOLDER_SALT not in value and value not in others:  # not the client's own data
            leaks.append((where, f"a password hash ({hashed.group(0)[:14]}…)"))
    return leaks


def no_secret_echo(env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """No response carries a password, API key, client secret or password hash."""
    security = case.operation.definition.raw.get("security")
    declares_security = bool(security) or (security is None and bool(index_for(env.spec).document.get("security")))
    other_values = {str(v) for v in (case.path_parameters or {}).values()} | {
        str(v) for v in (case.query or {}).values() if isinstance(v, str)
    }
    body = _json(response) if response.content else None
    leaks = find_secret_leaks(
        response.headers,
        body,
        response.text if body is None and response.content else "",
        env.headers(),
        case.body if isinstance(case.body, (dict, list)) else None,
        other_values,
        env.secrets,
        bearer_is_secret=declares_security,
    )
    if leaks:
        where = leaks[0][0]
        path = [int(p) if p.isdigit() else p for p in where.strip("/").split("/")] if where.startswith("/") else []
        provenance = index_for(env.spec).response_field(case.method, case.path, response.status_code, path)
        listed = "; ".join(f"{w}: {x}" for w, x in leaks[:5])
        raise _violation(
            env, "no_secret_echo", case, f"The {response.status_code} response leaks secrets: {listed}", provenance
        )
    return None


# -- letstrade-pos -----------------------------------------------------------------------------------
def finalise_executes_once(env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A finalised basket (store + terminal + basket.uuid) or code cannot be finalised again."""
    if (
        operation_id(case) != "finaliseOfferings"
        or not _is_2xx(response.status_code)
        or not isinstance(case.body, dict)
    ):
        return None
    index = index_for(env.spec)
    executed_once = index.operation(case.method, case.path)
    already = index.response(case.method, case.path, 409)
    attempts: list[tuple[str, Any]] = [("the same request again", ...)]
    codes = case.body.get("code") or []
    if codes and isinstance(case.body.get("basket"), dict):
        other_basket = json.loads(json.dumps(case.body))
        other_basket["basket"]["uuid"] = f"lcs-{uuid.uuid4()}"
        attempts.append((f"the same code(s) {codes} with another basket", other_basket))
    for what, body in attempts:
        again = _replay(env, case, body=body)
        if _is_2xx(again.status_code):
            raise _violation(
                env,
                "finalise_executes_once",
                case,
                f"Finalise executed twice: {what} was answered {again.status_code} "
                f"after a first {response.status_code}; "
                "finalise is irreversible and must execute exactly once",
                executed_once,
            )
        if again.status_code != 409:
            raise _violation(
                env,
                "finalise_executes_once",
                case,
                f"A second finalise ({what}) was refused with {again.status_code}, not 409: {again.text[:300]}",
                already,
            )
    return None


def expired_code_refused(env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A code is valid for 10 minutes from minting and refused after (mock only: moves the clock)."""
    if operation_id(case) != "getOfferings" or not _is_2xx(response.status_code) or not isinstance(case.body, dict):
        return None
    raw_codes = case.body.get("code")
    codes = [str(code) for code in raw_codes] if isinstance(raw_codes, list) else []
    if not codes or not env.may_move_clock or env.admin is None or not set(codes) <= env.minted:
        return None  # only codes this test minted (and whose age it knows) on a mock it may move
    index = index_for(env.spec)
    admin = env.admin
    started = admin.clock()["now"]
    try:
        admin.advance(CODE_LIFETIME_SECONDS - 10)
        early = _replay(env, case)
        if not _is_2xx(early.status_code):
            raise _violation(
                env,
                "expired_code_refused",
                case,
                f"Code(s) {codes} were refused ({early.status_code}) 9:50 after minting; "
                "codes are valid for 10 minutes: "
                f"{early.text[:300]}",
                index.operation(case.method, case.path),
            )
        admin.advance(11)
        late = _replay(env, case)
        if _is_2xx(late.status_code):
            raise _violation(
                env,
                "expired_code_refused",
                case,
                f"Code(s) {codes} were accepted ({late.status_code}) 10:01 after minting; "
                "a code expires after 10 minutes",
                index.operation(case.method, case.path),
            )
        if late.status_code != 410:
            raise _violation(
                env,
                "expired_code_refused",
                case,
                f"An expired code was refused with {late.status_code}, not 410: {late.text[:300]}",
                index.response(case.method, case.path, 410),
            )
    finally:
        admin.set_clock(started)
    return None


# -- letstrade-channels ------------------------------------------------------------------------------
def channel_key_scoped(env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A channel's API key works only for that channel: another channel's key is refused."""
    if operation_id(case) not in ("upsertChannelCustomer", "upsertChannelProduct") or not _is_2xx(response.status_code):
        return None
    other = env.foreign_channel_key()
    if not other:
        return None
    again = _replay(env, case, headers={"X-API-Key": other})
    index = index_for(env.spec)
    if _is_2xx(again.status_code):
        raise _violation(
            env,
            "channel_key_scoped",
            case,
            f"Another channel's API key was accepted ({again.status_code}) "
            f"on webhook {case.path_parameters.get('webhook_uuid')}",
            index.operation(case.method, case.path),
        )
    if again.status_code != 401:
        raise _violation(
            env,
            "channel_key_scoped",
            case,
            f"Another channel's API key was refused with {again.status_code}, not 401: {again.text[:300]}",
            index.response(case.method, case.path, 401),
        )
    return None


# -- customtrades ------------------------------------------------------------------------------------
def paging_totals_consistent(env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """page, limit, total, total_pages and the page's items agree."""
    if operation_id(case) != "listCustomers" or not _is_2xx(response.status_code):
        return None
    body = _json(response)
    try:
        data = body["data"]
        customers, pagination = list(data["customers"]), dict(data["pagination"])
        total, limit, page, pages = (int(pagination[k]) for k in ("total", "limit", "page", "total_pages"))
    except (KeyError, TypeError, ValueError):
        return None  # response_schema_conformance reports the shape
    sent = _sent_query(response)
    problems: list[str] = []
    try:
        asked_page = int(sent.get("page", ["1"])[-1])
        asked_limit = int(sent.get("limit", ["50"])[-1])
    except ValueError:
        asked_page, asked_limit = page, limit
    if page != asked_page:
        problems.append(f"pagination.page is {page}, the request asked for page {asked_page}")
    if limit != asked_limit:
        problems.append(f"pagination.limit is {limit}, the request asked for limit {asked_limit}")
    expected_pages = math.ceil(total / limit) if limit > 0 else 0
    if pages != expected_pages and not (total == 0 and pages in (0, 1)):
        problems.append(f"total_pages is {pages}, but total {total} at limit {limit} makes {expected_pages}")
    expected_items = max(0, min(limit, total - (page - 1) * limit)) if limit > 0 else 0
    if len(customers) != expected_items:
        problems.append(
            f"page {page} holds {len(customers)} customers; total {total} at limit {limit} makes {expected_items}"
        )
    ids = [c.get("uuid") for c in customers if isinstance(c, dict)]
    if len(ids) != len(set(ids)):
        problems.append("a customer appears twice on the page")
    if problems:
        provenance = index_for(env.spec).response_field(
            case.method, case.path, response.status_code, ["data", "pagination"]
        )
        raise _violation(env, "paging_totals_consistent", case, "; ".join(problems), provenance)
    return None


def soft_deleted_hidden(env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Soft-deleted customers leave lists (unless include_deleted) and get answers 404 for them."""
    op = operation_id(case)
    if op not in ("listCustomers", "getCustomer") or not _is_2xx(response.status_code):
        return None
    body = _json(response)
    index = index_for(env.spec)
    if op == "getCustomer":
        customer = body.get("data") if isinstance(body, dict) else None
        if isinstance(customer, dict) and customer.get("deleted_at"):
            raise _violation(
                env,
                "soft_deleted_hidden",
                case,
                f"getCustomer returned a soft-deleted customer (deleted_at {customer['deleted_at']}); expected 404",
                index.operation(case.method, case.path),
            )
        return None
    if _sent_query(response).get("include_deleted", ["false"])[-1].lower() == "true":
        return None
    customers = ((body or {}).get("data") or {}).get("customers") if isinstance(body, dict) else None
    for position, customer in enumerate(customers or []):
        if isinstance(customer, dict) and customer.get("deleted_at"):
            raise _violation(
                env,
                "soft_deleted_hidden",
                case,
                f"customers[{position}] ({customer.get('uuid')}) is soft-deleted "
                "but listed without include_deleted=true",
                index.parameter(case.method, case.path, "query", "include_deleted"),
            )
    return None


def soft_deleted_leave_lists(env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """After a delete the customer is 404, gone from lists, and listed with include_deleted=true."""
    if operation_id(case) != "deleteCustomer" or not _is_2xx(response.status_code):
        return None
    customer_id = str(case.path_parameters.get("uuid"))
    index = index_for(env.spec)
    headers = env.headers()
    got = env.send(method="GET", url=f"{env.base_url}/v1/customers/{customer_id}", headers=headers)
    if got.status_code != 404:
        raise _violation(
            env,
            "soft_deleted_leave_lists",
            case,
            f"GET of the deleted customer {customer_id} answered {got.status_code}, not 404",
            index.operation("GET", "/v1/customers/{uuid}"),
        )
    for include in (False, True):
        listed = env.send(
            method="GET",
            url=f"{env.base_url}/v1/customers",
            headers=headers,
            params={"search": customer_id, "include_deleted": str(include).lower(), "limit": 100},
        )
        body = _json(listed) if _is_2xx(listed.status_code) else None
        found = [c for c in (((body or {}).get("data") or {}).get("customers") or []) if c.get("uuid") == customer_id]
        if not include and found:
            raise _violation(
                env,
                "soft_deleted_leave_lists",
                case,
                f"The deleted customer {customer_id} is still listed without include_deleted",
                index.operation("GET", "/v1/customers"),
            )
        if include and (not found or not found[0].get("deleted_at")):
            raise _violation(
                env,
                "soft_deleted_leave_lists",
                case,
                f"Searching include_deleted=true for the deleted customer's uuid {customer_id} did not list it with "
                f"deleted_at set (answer {listed.status_code})",
                index.parameter("GET", "/v1/customers", "query", "search"),
            )
    return None


# -- capillary ---------------------------------------------------------------------------------------
def duplicate_registration_refused(
    env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """Registering the same customer again in the same source fails with 8006."""
    if operation_id(case) != "registerCustomer" or not _is_2xx(response.status_code):
        return None
    again = _replay(env, case)
    index = index_for(env.spec)
    if _is_2xx(again.status_code):
        raise _violation(
            env,
            "duplicate_registration_refused",
            case,
            f"The same registration was accepted twice ({again.status_code}); Capillary answers 8006 "
            "'Customer already exists for same source'",
            index.operation(case.method, case.path),
        )
    body = _json(again)
    codes = (
        [e.get("code") for e in (body or {}).get("errors") or [] if isinstance(e, dict)]
        if isinstance(body, dict)
        else []
    )
    if 8006 not in codes:
        raise _violation(
            env,
            "duplicate_registration_refused",
            case,
            f"A duplicate registration was refused with {again.status_code} "
            f"but without error code 8006: {again.text[:300]}",
            index.operation(case.method, case.path),
        )
    if again.status_code != 409:
        raise _violation(
            env,
            "duplicate_registration_refused",
            case,
            f"A duplicate registration (8006) was answered {again.status_code}, not 409",
            index.response(case.method, case.path, 409),
        )
    return None


# -- loke --------------------------------------------------------------------------------------------
def _page_ids(body: Any) -> list[str]:
    return [str(item.get("id")) for item in body or [] if isinstance(item, dict) and "id" in item]


def next_page_never_repeats(env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """`X-Next-Page` links the same listing, and the next page repeats nothing of this one."""
    if not _is_2xx(response.status_code):
        return None
    links = response.headers.get("x-next-page") or []
    if not links:
        return None
    link = links[0]
    index = index_for(env.spec)
    where = index.operation(case.method, case.path)
    body = _json(response)
    sent = urlsplit(str(response.request.url))
    target = urlsplit(link)
    problems: list[str] = []
    if target.scheme not in ("http", "https") or not target.netloc:
        problems.append(f"X-Next-Page {link!r} is not a full URL")
    if target.path.rstrip("/") != sent.path.rstrip("/"):
        problems.append(f"X-Next-Page points at {target.path}, not at the listing {sent.path}")
    after = parse_qs(target.query).get("after")
    if not after:
        problems.append(f"X-Next-Page {link!r} carries no `after` cursor")
    elif after == parse_qs(sent.query).get("after"):
        problems.append("X-Next-Page carries the cursor of the page it came with (an endless loop)")
    if isinstance(body, list) and not body:
        problems.append("an empty page carries X-Next-Page (the last page must not)")
    if problems:
        raise _violation(env, "next_page_never_repeats", case, "; ".join(problems), where)
    following = env.send(method="GET", url=f"{env.base_url}{case.formatted_path}?{target.query}", headers=env.headers())
    if following.status_code != 200:
        raise _violation(
            env,
            "next_page_never_repeats",
            case,
            f"Following X-Next-Page answered {following.status_code}: {following.text[:300]}",
            where,
        )
    repeated = set(_page_ids(body)) & set(_page_ids(_json(following)))
    if repeated:
        raise _violation(
            env,
            "next_page_never_repeats",
            case,
            f"The next page repeats {len(repeated)} item(s) of this page, e.g. {sorted(repeated)[0]}",
            where,
        )
    return None


def points_reference_single_use(env: CheckEnv, ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A points reference is usable once per customer: a second PUT is 409 duplicate_point_record."""
    if operation_id(case) != "adjustPoints" or not _is_2xx(response.status_code):
        return None
    again = _replay(env, case)
    body = _json(again)
    index = index_for(env.spec)
    if again.status_code != 409 or not isinstance(body, dict) or body.get("type") != "duplicate_point_record":
        raise _violation(
            env,
            "points_reference_single_use",
            case,
            f"Reusing points reference {case.path_parameters.get('reference')!r} was answered {again.status_code} "
            f"{again.text[:200]}; expected 409 duplicate_point_record",
            index.response(case.method, case.path, 409),
        )
    return None


_BY_API: dict[str, list[tuple[str, Callable[[CheckEnv, CheckContext, Response, Case[Any]], bool | None]]]] = {
    "letstrade-pos": [
        ("finalise_executes_once", finalise_executes_once),
        ("expired_code_refused", expired_code_refused),
    ],
    "letstrade-channels": [("channel_key_scoped", channel_key_scoped)],
    "customtrades": [
        ("paging_totals_consistent", paging_totals_consistent),
        ("soft_deleted_hidden", soft_deleted_hidden),
        ("soft_deleted_leave_lists", soft_deleted_leave_lists),
    ],
    "capillary": [("duplicate_registration_refused", duplicate_registration_refused)],
    "loke": [
        ("next_page_never_repeats", next_page_never_repeats),
        ("points_reference_single_use", points_reference_single_use),
    ],
}


def checks_for(env: CheckEnv) -> list[CheckFunction]:
    """The suite's checks for one API, bound to `env` (pass as `additional_checks`)."""
    pairs = [("no_secret_echo", no_secret_echo), *_BY_API.get(env.api, [])]
    return [_described(name, check, env) for name, check in pairs]


CHECK_NAMES: tuple[str, ...] = ("no_secret_echo", *(name for pairs in _BY_API.values() for name, _ in pairs))
