"""Load the OpenAPI specs once: operations, a route table, compiled validators, examples, provenance.

Nothing here touches HTTP; the dispatcher asks this module what an operation expects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mock_server.schema import CompiledSchema, dereference

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PARAM = re.compile(r"\{([^{}/]+)\}")


def specs_dir(override: Path | None = None) -> Path:
    """Where the specs live: an explicit folder, the repository's `openapi/`, or the installed copy."""
    if override is not None:
        return override
    repo = Path(__file__).resolve().parent.parent / "openapi"
    if repo.is_dir():
        return repo
    return Path(str(resources.files("mock_server") / "openapi"))


@cache
def _read_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an OpenAPI document")
    return data


def load_document(name: str, directory: Path | None = None) -> dict[str, Any]:
    """The raw spec `<name>.yaml` (cached; never mutate it)."""
    return _read_yaml(specs_dir(directory) / f"{name}.yaml")


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # path | query | header | cookie
    required: bool
    schema: dict[str, Any]
    validator: CompiledSchema
    explode_array: bool
    json_type: str | None = field(init=False)  # derived once: read on every request
    where: str = field(init=False)  # `query.page`: the field name errors report

    def __post_init__(self) -> None:
        kind = self.schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            kind = kinds[0] if kinds else None
        object.__setattr__(self, "json_type", kind if isinstance(kind, str) else None)
        object.__setattr__(self, "where", f"{self.location}.{self.name}")


@dataclass(frozen=True)
class ResponseSpec:
    status: str
    media_type: str | None
    schema: CompiledSchema | None
    example: Any
    has_example: bool


@dataclass
class Operation:
    api: str
    operation_id: str
    method: str
    path: str
    summary: str
    provenance: str
    security: list[dict[str, list[str]]]
    parameters: list[Parameter]
    body_required: bool
    body_media: dict[str, CompiledSchema]
    responses: dict[str, ResponseSpec]
    raw: dict[str, Any] = field(repr=False)

    @property
    def path_params(self) -> list[Parameter]:
        return [p for p in self.parameters if p.location == "path"]

    def response_for(self, status: int) -> ResponseSpec | None:
        """The documented response for a status: exact, then `4XX`-style, then `default`."""
        exact = self.responses.get(str(status))
        if exact is not None:
            return exact
        return self.responses.get(f"{str(status)[0]}XX") or self.responses.get("default")

    def example_response(self) -> tuple[int, ResponseSpec] | None:
        """The lowest documented 2xx, which the engine answers with when no handler exists."""
        return self._example

    def __post_init__(self) -> None:
        success = sorted(s for s in self.responses if s.isdigit() and s.startswith("2"))
        self._example = (int(success[0]), self.responses[success[0]]) if success else None


@dataclass
class Spec:
    slug: str
    document: dict[str, Any]
    operations: list[Operation]
    security_schemes: dict[str, dict[str, Any]]

    def by_id(self) -> dict[str, Operation]:
        return {op.operation_id: op for op in self.operations}


def _media_example(media: Mapping[str, Any]) -> tuple[bool, Any]:
    if "example" in media:
        return True, media["example"]
    examples = media.get("examples")
    if isinstance(examples, dict) and examples:
        first = next(iter(examples.values()))
        if isinstance(first, dict) and "value" in first:
            return True, first["value"]
    schema = media.get("schema")
    if isinstance(schema, dict):
        if "example" in schema:
            return True, schema["example"]
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return True, schema["examples"][0]
    return False, None


def _compile_parameter(raw: Mapping[str, Any]) -> Parameter:
    schema = dict(raw.get("schema") or {})
    explode = raw.get("explode", raw.get("style", "form") == "form")
    return Parameter(
        name=str(raw["name"]),
        location=str(raw["in"]),
        required=bool(raw.get("required", raw.get("in") == "path")),
        schema=schema,
        validator=CompiledSchema(schema),
        explode_array=bool(explode),
    )


def _iter_raw_operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], list[Any]]]:
    for path, item in (document.get("paths") or {}).items():
        shared = list(item.get("parameters") or [])
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method], shared


def build_spec(slug: str, document: Mapping[str, Any]) -> Spec:
    """Dereference a spec and compile everything the dispatcher needs per operation."""
    resolved: dict[str, Any] = dereference(dict(document), document)
    global_security = resolved.get("security") or []
    operations: list[Operation] = []
    for path, method, raw, shared in _iter_raw_operations(resolved):
        params: dict[tuple[str, str], dict[str, Any]] = {}
        for p in [*shared, *(raw.get("parameters") or [])]:
            params[(p["in"], p["name"].lower() if p["in"] == "header" else p["name"])] = p
        body = raw.get("requestBody") or {}
        responses: dict[str, ResponseSpec] = {}
        for status, response in (raw.get("responses") or {}).items():
            content = response.get("content") or {}
            media_type = next(iter(content), None)
            media = content.get(media_type, {}) if media_type else {}
            has_example, example = _media_example(media) if media else (False, None)
            schema = media.get("schema") if media else None
            responses[str(status)] = ResponseSpec(
                status=str(status),
                media_type=media_type,
                schema=CompiledSchema(schema) if isinstance(schema, dict) else None,
                example=example,
                has_example=has_example,
            )
        operations.append(
            Operation(
                api=slug,
                operation_id=str(raw.get("operationId") or f"{method}_{path}"),
                method=method.upper(),
                path=path,
                summary=str(raw.get("summary", "")),
                provenance=str(raw.get("x-provenance", "")),
                security=list(raw.get("security", global_security)),
                parameters=[_compile_parameter(p) for p in params.values()],
                body_required=bool(body.get("required", False)),
                body_media={
                    media_type: CompiledSchema(media.get("schema") or {})
                    for media_type, media in (body.get("content") or {}).items()
                },
                responses=responses,
                raw=raw,
            )
        )
    schemes = dict((resolved.get("components") or {}).get("securitySchemes") or {})
    return Spec(slug=slug, document=dict(document), operations=operations, security_schemes=schemes)


class Router:
    """OpenAPI path templates -> operations. Literal paths are a dict lookup; templated ones a
    regex each, tried most-literal first (so `/a/lookup/x` beats `/a/{id}/x`)."""

    def __init__(self, operations: list[Operation]) -> None:
        self._literal: dict[str, dict[str, Operation]] = {}
        templated: dict[str, dict[str, Operation]] = {}
        for op in operations:
            target = templated if _PARAM.search(op.path) else self._literal
            target.setdefault(op.path, {})[op.method] = op
        ordered = sorted(templated, key=lambda p: (-len(_PARAM.sub("", p)), p))
        self._templated = [
            (self._compile(path), templated[path], {_group(n): n for n in _PARAM.findall(path)}) for path in ordered
        ]

    @staticmethod
    def _compile(template: str) -> re.Pattern[str]:
        pattern = ""
        last = 0
        for match in _PARAM.finditer(template):
            pattern += re.escape(template[last : match.start()]) + f"(?P<{_group(match.group(1))}>[^/]+)"
            last = match.end()
        pattern += re.escape(template[last:])
        return re.compile(f"^{pattern}$")

    def match(self, path: str) -> tuple[dict[str, Operation], dict[str, str]] | None:
        methods = self._literal.get(path)
        if methods is not None:
            return methods, {}
        for regex, methods, names in self._templated:
            found = regex.match(path)
            if found:
                return methods, {names[k]: v for k, v in found.groupdict().items()}
        return None


def _group(name: str) -> str:
    return "p_" + "".join(c if c.isalnum() else f"_{ord(c):x}_" for c in name)


def _marked(document: Mapping[str, Any], pick: Callable[[dict[str, Any]], str | None]) -> Iterator[tuple[str, str]]:
    """Every location (a JSON pointer) of `document` whose object `pick` gives a text for, with it."""

    def walk(node: Any, pointer: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            text = pick(node)
            if text is not None:
                yield pointer or "/", text
            for key, child in node.items():
                yield from walk(child, f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield from walk(child, f"{pointer}/{index}")

    yield from walk(document, "")


def iter_provenance(document: Mapping[str, Any], value: str = "assumed") -> Iterator[tuple[str, str]]:
    """Every location (a JSON pointer) carrying `x-provenance: <value>`, with its x-assumption."""

    def pick(node: dict[str, Any]) -> str | None:
        if node.get("x-provenance") != value:
            return None
        return str(node.get("x-assumption", node.get("description", ""))).strip()

    yield from _marked(document, pick)


def iter_assumptions(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every assumption of a spec: the items marked `x-provenance: assumed`, and the documented
    (`seed` / `public-docs`) items whose `x-assumption` records an assumed detail of their
    behaviour (openapi/CONVENTIONS.md, "Provenance and sources")."""
    yield from iter_provenance(document)

    def pick(node: dict[str, Any]) -> str | None:
        if node.get("x-provenance") in ("seed", "public-docs") and node.get("x-assumption"):
            return str(node["x-assumption"]).strip()
        return None

    yield from _marked(document, pick)
