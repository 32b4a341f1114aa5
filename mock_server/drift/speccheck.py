"""Check one recorded exchange against an API's spec, both directions, and say where in the spec
file each finding belongs and what that place's provenance is.

Validation reuses the mock's own compiled specs and validators (`spec.build_spec`,
`validation.route/parameters/body`, `CompiledSchema`); this module adds what the mock does not
need: locations in the *raw* spec file (following `$ref`s), the governing `x-provenance`, the
schema places an exchange exercised, undocumented fields and documented response headers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from mock_server import validation
from mock_server.errors import MockError
from mock_server.journal import REDACTED
from mock_server.schema import CompiledSchema, dereference
from mock_server.spec import Operation, Router, Spec, build_spec, load_document

PROVENANCES = ("seed", "public-docs", "assumed")
_MISSING = object()
_PATH_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")
_COMBINATORS = ("allOf", "anyOf", "oneOf")


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer_of(parts: list[str | int]) -> str:
    return "".join(f"/{escape(str(p))}" for p in parts)


def parts_of(json_path: str) -> list[str | int]:
    """`basket.items[0].sku` (the mock's field names) -> `["basket", "items", 0, "sku"]`."""
    if json_path in ("", "$", "body"):
        return []
    parts: list[str | int] = []
    for name, index in _PATH_PART.findall(json_path):
        parts.append(int(index) if index else name)
    return parts


def value_at(document: Any, parts: list[str | int]) -> Any:
    node = document
    for part in parts:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


@dataclass
class ApiSpec:
    """One API's raw spec document, compiled spec, route table and security schemes."""

    slug: str
    spec_name: str
    document: dict[str, Any]
    spec: Spec
    router: Router
    schemes: dict[str, validation.Scheme]
    _header_validators: dict[str, CompiledSchema] = field(default_factory=dict)
    _nodes: dict[str, Any] = field(default_factory=dict)
    _provenance: dict[str, str | None] = field(default_factory=dict)
    _walks: dict[tuple[str, str, frozenset[str]], tuple[set[str], list[dict[str, Any]]]] = field(default_factory=dict)
    _where: dict[str, dict[str, str]] = field(default_factory=dict)
    _op_provenance: dict[str, tuple[str, str]] = field(default_factory=dict)
    # what checking an operation needs that does not depend on the exchange, keyed by id(operation)
    # (operations live as long as the spec) and, for answers, by status: built at first use
    _request_plans: dict[int, _RequestPlan] = field(default_factory=dict)
    _response_plans: dict[tuple[int, int], _ResponsePlan | None] = field(default_factory=dict)

    @property
    def file(self) -> str:
        return f"openapi/{self.spec_name}.yaml"

    def location(self, pointer: str) -> str:
        return f"{self.file}#{pointer}"

    def node(self, pointer: str) -> Any:
        found = self._nodes.get(pointer, _MISSING)
        if found is not _MISSING:
            return found
        found = self._node(pointer)
        self._nodes[pointer] = found
        return found

    def _node(self, pointer: str) -> Any:
        node: Any = self.document
        for token in pointer.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(token)]
            else:
                node = node[token]
        return node

    def resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow `$ref`s: the node and its location in the file."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 32:
            pointer = node["$ref"][1:]
            node = self.node(pointer)
            seen += 1
        return node, pointer

    def provenance_of(self, pointer: str, default: tuple[str, str]) -> tuple[str, str]:
        """(provenance, its location) of the node at `pointer`, or `default` when it carries none."""
        if pointer in self._provenance:
            known = self._provenance[pointer]
            return (known, pointer) if known is not None else default
        try:
            node = self.node(pointer)
        except (KeyError, IndexError, ValueError, TypeError):
            node = None
        found = node.get("x-provenance") if isinstance(node, dict) else None
        self._provenance[pointer] = str(found) if found in PROVENANCES else None
        return (str(found), pointer) if found in PROVENANCES else default

    def header_validator(self, pointer: str, schema: Mapping[str, Any]) -> CompiledSchema:
        """The compiled validator of a header's `schema` (its `$ref`s resolved once, at first use)."""
        compiled = self._header_validators.get(pointer)
        if compiled is None:
            compiled = self._header_validators[pointer] = CompiledSchema(dereference(schema, self.document))
        return compiled

    def parameter_locations(self, op_pointer: str) -> dict[str, str]:
        """`in.name` -> where each parameter of an operation is described (path item's, then its own)."""
        where = self._where.get(op_pointer)
        if where is not None:
            return where
        where = self._where[op_pointer] = {}
        item_pointer = op_pointer.rsplit("/", 1)[0]
        for owner in (item_pointer, op_pointer):
            try:
                raw_params = self.node(owner).get("parameters") or []
            except (KeyError, IndexError, ValueError, TypeError, AttributeError):
                continue
            for index, raw in enumerate(raw_params):
                resolved, location = self.resolve(raw, f"{owner}/parameters/{index}")
                if isinstance(resolved, dict):
                    where[f"{resolved.get('in')}.{resolved.get('name')}"] = location
        return where


def load_api(slug: str, spec_name: str) -> ApiSpec:
    document = load_document(spec_name)
    spec = build_spec(slug, document)
    return ApiSpec(
        slug=slug,
        spec_name=spec_name,
        document=document,
        spec=spec,
        router=Router(spec.operations),
        schemes=validation.compile_schemes(spec.security_schemes),
    )


def operation_pointer(op: Operation) -> str:
    return f"/paths/{escape(op.path)}/{op.method.lower()}"


@dataclass(slots=True)
class _RequestPlan:
    """An operation's request checks, with everything that does not depend on the exchange."""

    pointer: str
    provenance: tuple[str, str]
    security_expected: str
    security_location: str
    # per parameter: it, and where it is described when the spec file says (else None)
    parameters: list[tuple[Any, str | None]]


@dataclass(slots=True)
class _ResponseHeader:
    name: str
    location: str
    provenance: tuple[str, str]
    required: bool
    schema: dict[str, Any] | None  # None: not a schema the check can use
    kind: Any
    validator: CompiledSchema | None = None  # compiled at the first value checked


@dataclass(slots=True)
class _ResponsePlan:
    """A documented (operation, status): its places in the file, provenance, headers and content."""

    documented: Any  # the ResponseSpec
    status_pointer: str
    location: str
    provenance: tuple[str, str]
    headers: list[_ResponseHeader]
    content: Any
    media: dict[str, tuple[str, Any]] = field(default_factory=dict)  # media -> (schema pointer, node)


@dataclass
class Check:
    """What one exchange told about the spec: the findings and every spec place it exercised
    (a location -> the provenance governing it, for the assumptions' verdicts)."""

    operation: Operation | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    exercised: set[str] = field(default_factory=set)


class Checker:
    def __init__(self, api: ApiSpec) -> None:
        self.api = api

    def _violation(
        self,
        direction: str,
        kind: str,
        message: str,
        pointer: str | None,
        location: str,
        provenance: tuple[str, str],
    ) -> dict[str, Any]:
        found: dict[str, Any] = {
            "direction": direction,
            "kind": kind,
            "message": message,
            "location": self.api.location(location),
            "provenance": provenance[0],
            "provenance_location": provenance[1],
        }
        if pointer is not None:
            found["pointer"] = pointer
        return found

    def _raw(self, pointer: str) -> tuple[Any, str]:
        """The node of the raw file at `pointer` (its `$ref`s followed) and where it really is."""
        try:
            return self.api.resolve(self.api.node(pointer), pointer)
        except (KeyError, IndexError, ValueError, TypeError):
            return {}, pointer

    def _op_provenance(self, op: Operation) -> tuple[str, str]:
        pointer = operation_pointer(op)
        found = self.api._op_provenance.get(pointer)
        if found is None:
            found = self.api.provenance_of(pointer, self.api.provenance_of("/info", ("seed", "/info")))
            self.api._op_provenance[pointer] = found
        return found

    # -- request ------------------------------------------------------------------------
    def request(
        self, check: Check, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> dict[str, str]:
        """Route, security presence, parameters, body. Returns the path parameters."""
        api = self.api
        try:
            op, path_params = validation.route(api.router, method, path)
        except MockError as error:
            check.violations.append(
                self._violation("request", "undocumented_operation", error.message, None, "/paths", ("seed", "/paths"))
            )
            return {}
        check.operation = op
        plan = self.api._request_plans.get(id(op))
        if plan is None:
            plan = self.api._request_plans[id(op)] = self._request_plan(op)
        op_pointer = plan.pointer
        op_prov = plan.provenance
        check.exercised.add(op_pointer)
        if op.security and not self._credential_present(op, headers, check):
            check.violations.append(
                self._violation(
                    "request",
                    "security",
                    f"no credential sent; the operation requires {plan.security_expected}",
                    None,
                    plan.security_location,
                    op_prov,
                )
            )
        if op.parameters:
            self._parameters(check, op, plan, path_params, query, headers)
        if op.body_media:
            self._body(check, op, op_pointer, op_prov, headers, body)
        return path_params

    def _request_plan(self, op: Operation) -> _RequestPlan:
        op_pointer = operation_pointer(op)
        where = self.api.parameter_locations(op_pointer)
        return _RequestPlan(
            pointer=op_pointer,
            provenance=self._op_provenance(op),
            security_expected=" or ".join(sorted({name for req in op.security for name in req})),
            security_location=f"{op_pointer}/security" if "security" in op.raw else "/security",
            parameters=[(param, where.get(param.where)) for param in op.parameters],
        )

    def _credential_present(self, op: Operation, headers: Mapping[str, str], check: Check | None = None) -> bool:
        for requirement in op.security:
            if not requirement:
                return True
            if all(self._scheme_present(name, headers) for name in requirement):
                if check is not None:
                    check.exercised.update(f"/components/securitySchemes/{escape(n)}" for n in requirement)
                return True
        return False

    def _scheme_present(self, name: str, headers: Mapping[str, str]) -> bool:
        scheme = self.api.schemes.get(name)
        if scheme is None or not scheme.header:
            return False
        value = headers.get(scheme.header, "")
        if not value:
            return False
        if scheme.kind == "apikey":
            return True
        word, _, rest = value.partition(" ")
        return word.lower() == scheme.kind and bool(rest.strip())

    def _parameters(
        self,
        check: Check,
        op: Operation,
        plan: _RequestPlan,
        path_params: Mapping[str, str],
        query: str,
        headers: Mapping[str, str],
    ) -> None:
        grouped: dict[str, list[str]] = {}
        if query:
            for key, value in parse_qsl(query, keep_blank_values=True):
                found = grouped.get(key)
                if found is None:
                    grouped[key] = [value]
                else:
                    found.append(value)

        def getall(name: str) -> list[str]:
            found = grouped.get(name)
            return list(found) if found is not None else []

        exercised = check.exercised
        for param, described in plan.parameters:
            if described is None:
                continue
            location = param.location
            present = (
                param.name in path_params
                if location == "path"
                else param.name in grouped
                if location == "query"
                else headers.get(param.name) is not None
            )
            if present:
                exercised.add(described)
        where = self.api.parameter_locations(plan.pointer)
        op_prov = plan.provenance
        op_pointer = plan.pointer
        try:
            validation.parameters(op, path_params, getall, headers)
        except MockError as error:
            for failure in error.fields:
                name = failure.field.split("[", 1)[0]
                location = where.get(name, f"{op_pointer}/parameters")
                check.violations.append(
                    self._violation(
                        "request",
                        "parameter",
                        f"{failure.field} {failure.message}",
                        None,
                        location,
                        self.api.provenance_of(location, op_prov),
                    )
                )

    def _body(
        self,
        check: Check,
        op: Operation,
        op_pointer: str,
        op_prov: tuple[str, str],
        headers: Mapping[str, str],
        raw: bytes,
    ) -> None:
        content_type = headers.get("Content-Type", "")
        body_pointer = f"{op_pointer}/requestBody"
        body_node, body_location = self._raw(body_pointer)
        body_prov = self.api.provenance_of(body_location, op_prov)
        try:
            document = validation.body(op, content_type, raw)
        except MockError as error:
            media = content_type.split(";", 1)[0].strip().lower()
            schema_pointer = f"{body_location}/content/{escape(media)}/schema"
            parsed = _parse(raw, media)
            for failure in error.fields or []:
                parts = parts_of(failure.field) if failure.field != "body" else []
                if failure.field.startswith("header."):
                    parts = []
                if value_at(parsed, parts) == REDACTED:
                    continue  # a redacted secret cannot be judged
                location, prov = self._descend(schema_pointer, parts, body_prov)
                check.violations.append(
                    self._violation(
                        "request",
                        "request_body",
                        f"{failure.field} {failure.message}",
                        pointer_of(parts),
                        location,
                        prov,
                    )
                )
            if not error.fields:
                check.violations.append(
                    self._violation("request", "request_body", error.message, "", body_location, body_prov)
                )
            return
        if document is None:
            return
        media = content_type.split(";", 1)[0].strip().lower()
        if isinstance(body_node, dict) and media in (body_node.get("content") or {}):
            self._walk(check, "request", document, f"{body_location}/content/{escape(media)}/schema", [], body_prov)

    # -- response -----------------------------------------------------------------------
    def response(
        self,
        check: Check,
        status: int,
        headers: Mapping[str, str],
        raw: bytes,
        parsed: tuple[Any, frozenset[str]] | None = None,
    ) -> None:
        """`parsed`: the body already parsed, with its shape (folded pointers), when the caller has
        it; exchanges of the same shape share one walk of the schema."""
        op = check.operation
        if op is None:
            return
        plan_key = (id(op), status)
        plans = self.api._response_plans
        if plan_key in plans:
            plan = plans[plan_key]
        else:
            plan = plans[plan_key] = self._response_plan(op, status)
        if plan is None:
            op_pointer = operation_pointer(op)
            op_prov = self._op_provenance(op)
            check.violations.append(
                self._violation(
                    "response",
                    "undocumented_status",
                    f"status {status} is not documented for {op.operation_id} (documented: "
                    f"{', '.join(sorted(op.responses)) or 'none'})",
                    None,
                    f"{op_pointer}/responses",
                    op_prov,
                )
            )
            return
        documented = plan.documented
        response_location = plan.location
        check.exercised.add(plan.status_pointer)
        check.exercised.add(response_location)
        prov = plan.provenance
        if plan.headers:
            self._response_headers(check, plan.headers, headers)
        content = plan.content
        if not content:
            return
        media = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if not raw:
            check.violations.append(
                self._violation(
                    "response",
                    "response_body",
                    f"status {status} documents a body ({', '.join(content)}); none came",
                    "",
                    response_location,
                    prov,
                )
            )
            return
        if media not in content:
            if not any(m.endswith("json") for m in content) or not media.endswith("json"):
                check.violations.append(
                    self._violation(
                        "response",
                        "content_type",
                        f"Content-Type {media or '(none)'} is not documented for status {status}; "
                        f"documented: {', '.join(content)}",
                        None,
                        f"{response_location}/content",
                        prov,
                    )
                )
                return
            media = next(m for m in content if m.endswith("json"))
        if not media.endswith("json"):
            return
        try:
            document = parsed[0] if parsed is not None else json.loads(raw)
        except ValueError as exc:
            check.violations.append(
                self._violation(
                    "response", "response_body", f"the body is not valid JSON ({exc})", "", response_location, prov
                )
            )
            return
        found = plan.media.get(media)
        if found is None:
            schema_pointer = f"{response_location}/content/{escape(media)}/schema"
            found = plan.media[media] = (
                schema_pointer,
                self.api.resolve(content[media].get("schema"), schema_pointer)[0],
            )
        schema_pointer, schema_node = found
        if documented.schema is not None and isinstance(schema_node, dict):
            for failure in documented.schema.errors(document):
                parts = parts_of(failure.field)
                if value_at(document, parts) == REDACTED:
                    continue
                location, found_prov = self._descend(schema_pointer, parts, prov)
                check.violations.append(
                    self._violation(
                        "response",
                        "response_body",
                        f"{failure.field} {failure.message}",
                        pointer_of(parts),
                        location,
                        found_prov,
                    )
                )
        if parsed is None:
            self._walk(check, "response", document, schema_pointer, [], prov)
            return
        key = (schema_pointer, prov[1], parsed[1])
        cached = self.api._walks.get(key)
        if cached is None:
            walked = Check()
            self._walk(walked, "response", document, schema_pointer, [], prov)
            cached = self.api._walks[key] = (walked.exercised, walked.violations)
        check.exercised.update(cached[0])
        check.violations.extend(dict(v) for v in cached[1])

    def _response_plan(self, op: Operation, status: int) -> _ResponsePlan | None:
        documented = op.response_for(status)
        if documented is None:
            return None
        op_pointer = operation_pointer(op)
        status_pointer = f"{op_pointer}/responses/{escape(documented.status)}"
        node, location = self._raw(status_pointer)
        prov = self.api.provenance_of(location, self._op_provenance(op))
        headers: list[_ResponseHeader] = []
        described = node.get("headers") if isinstance(node, dict) else None
        if isinstance(described, dict):
            for name, raw in described.items():
                header, header_location = self.api.resolve(raw, f"{location}/headers/{escape(name)}")
                if not isinstance(header, dict):
                    continue
                schema, _ = self.api.resolve(header.get("schema") or {}, f"{header_location}/schema")
                headers.append(
                    _ResponseHeader(
                        name=name,
                        location=header_location,
                        provenance=self.api.provenance_of(header_location, prov),
                        required=bool(header.get("required")),
                        schema=schema if isinstance(schema, dict) else None,
                        kind=schema.get("type") if isinstance(schema, dict) else None,
                    )
                )
        content = node.get("content") if isinstance(node, dict) else None
        return _ResponsePlan(documented, status_pointer, location, prov, headers, content)

    def _response_headers(self, check: Check, documented: list[_ResponseHeader], headers: Mapping[str, str]) -> None:
        for header in documented:
            name = header.name
            value = headers.get(name)
            if value is None:
                if header.required:
                    check.violations.append(
                        self._violation(
                            "response",
                            "response_header",
                            f"header {name} is required but missing",
                            None,
                            header.location,
                            header.provenance,
                        )
                    )
                continue
            check.exercised.add(header.location)
            schema = header.schema
            if schema is None:
                continue
            kind = header.kind
            coerced: Any = value
            if kind in ("integer", "number"):
                try:
                    coerced = int(value) if kind == "integer" else float(value)
                except ValueError:
                    coerced = value
            validator = header.validator
            if validator is None:
                validator = header.validator = self.api.header_validator(header.location, schema)
            for failure in validator.errors(coerced, root=f"header.{name}"):
                check.violations.append(
                    self._violation(
                        "response",
                        "response_header",
                        f"{failure.field} {failure.message}",
                        None,
                        header.location,
                        header.provenance,
                    )
                )

    def locate_response(self, op: Operation, status: int, parts: list[str | int] | None) -> tuple[str, tuple[str, str]]:
        """The spec location (and its provenance) of a response status, or of a field in that
        response's JSON body when `parts` is given."""
        op_pointer = operation_pointer(op)
        prov = self._op_provenance(op)
        documented = op.response_for(status)
        if documented is None:
            return f"{op_pointer}/responses", prov
        node, location = self._raw(f"{op_pointer}/responses/{escape(documented.status)}")
        prov = self.api.provenance_of(location, prov)
        content = node.get("content") if isinstance(node, dict) else None
        if parts is None or not isinstance(content, dict):
            return location, prov
        media = next((m for m in content if m.endswith("json")), None)
        if media is None:
            return location, prov
        return self._descend(f"{location}/content/{escape(media)}/schema", parts, prov)

    # -- walking the raw schema -------------------------------------------------------------
    def _child(self, node: Any, location: str, part: str | int, instance: Any) -> tuple[Any, str] | None:
        """The schema for `part` of an instance validated by `node` (following combinators)."""
        api = self.api
        node, location = api.resolve(node, location)
        if not isinstance(node, dict):
            return None
        if isinstance(part, int):
            items = node.get("items")
            if isinstance(items, dict):
                return api.resolve(items, f"{location}/items")
        else:
            properties = node.get("properties")
            if isinstance(properties, dict) and part in properties:
                return api.resolve(properties[part], f"{location}/properties/{escape(part)}")
        for keyword in _COMBINATORS:
            branches = node.get(keyword)
            if isinstance(branches, list):
                for index, branch in enumerate(branches):
                    found = self._child(branch, f"{location}/{keyword}/{index}", part, instance)
                    if found is not None:
                        return found
        if isinstance(part, str):
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                return api.resolve(extra, f"{location}/additionalProperties")
        return None

    def _descend(
        self, schema_pointer: str, parts: list[str | int], prov: tuple[str, str]
    ) -> tuple[str, tuple[str, str]]:
        """The deepest schema location along `parts`, and the provenance governing it."""
        try:
            node, location = self.api.resolve(self.api.node(schema_pointer), schema_pointer)
        except (KeyError, IndexError, ValueError, TypeError):
            return schema_pointer, prov
        prov = self.api.provenance_of(location, prov)
        for part in parts:
            found = self._child(node, location, part, None)
            if found is None:
                break
            node, location = found
            prov = self.api.provenance_of(location, prov)
        return location, prov

    def _documents_any(self, node: Any, location: str) -> bool:
        """Whether an object schema leaves unknown properties open (so none is 'undocumented')."""
        node, location = self.api.resolve(node, location)
        if not isinstance(node, dict):
            return True
        if "properties" in node or "additionalProperties" in node or "patternProperties" in node:
            extra = node.get("additionalProperties")
            return extra is True or isinstance(extra, dict) or bool(node.get("patternProperties"))
        for keyword in _COMBINATORS:
            branches = node.get(keyword)
            if isinstance(branches, list) and branches:
                return (
                    any(self._documents_any(b, f"{location}/{keyword}/{i}") for i, b in enumerate(branches))
                    if keyword != "allOf"
                    else all(self._documents_any(b, f"{location}/{keyword}/{i}") for i, b in enumerate(branches))
                )
        return True

    def _walk(
        self,
        check: Check,
        direction: str,
        instance: Any,
        location: str,
        parts: list[str | int],
        prov: tuple[str, str],
    ) -> None:
        """Record every schema place the instance exercised; report undocumented fields."""
        try:
            node, location = self.api.resolve(self.api.node(location), location)
        except (KeyError, IndexError, ValueError, TypeError):
            return
        self._walk_node(check, direction, instance, node, location, parts, prov, 0)

    def _walk_node(
        self,
        check: Check,
        direction: str,
        instance: Any,
        node: Any,
        location: str,
        parts: list[str | int],
        prov: tuple[str, str],
        depth: int,
    ) -> None:
        if depth > 32:
            return
        prov = self.api.provenance_of(location, prov)
        check.exercised.add(location)
        if isinstance(instance, dict):
            open_ended = self._documents_any(node, location)
            for key, value in instance.items():
                found = self._child(node, location, key, value)
                if found is None:
                    if not open_ended:
                        check.violations.append(
                            self._violation(
                                direction,
                                "undocumented_field",
                                f"field {json.dumps(key)} is not documented",
                                pointer_of([*parts, key]),
                                location,
                                prov,
                            )
                        )
                    continue
                child, child_location = found
                self._walk_node(check, direction, value, child, child_location, [*parts, key], prov, depth + 1)
        elif isinstance(instance, list):
            for index, item in enumerate(instance):
                found = self._child(node, location, index, item)
                if found is None:
                    return
                child, child_location = found
                self._walk_node(check, direction, item, child, child_location, [*parts, index], prov, depth + 1)
                if index >= 50:  # the schema places a long list exercises are all in its first items
                    break


def _parse(raw: bytes, media: str) -> Any:
    if media == "application/x-www-form-urlencoded":
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return json.loads(raw)
    except ValueError:
        return None
