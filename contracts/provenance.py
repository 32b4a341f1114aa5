"""Where in a spec a failure lands, and what that spec item's `x-provenance` says.

Every spec item says where it comes from (`seed`, `public-docs` or `assumed`). A failure on an
item marked `assumed` refutes an assumption (the vendor behaves differently from our guess); any
other failure breaks the documented contract. This module finds the most specific item a failure
is about: the operation, a response (possibly a shared `components/responses/...` one), a
property inside a response or request schema, or a parameter. Provenance declared on a node
applies to everything under it unless a deeper node says otherwise.

Locations are reported as `<file>#<JSON pointer>` of the node that *declares* the provenance (a
`$ref` target is reported where it is defined, e.g. `letstrade-pos.yaml#/components/responses/AlreadyFinalised`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contracts.specs import pointer_token, resolve_ref, spec_file

_COMBINATORS = ("allOf", "anyOf", "oneOf")


@dataclass(frozen=True)
class Provenance:
    value: str  # seed | public-docs | assumed | "" (not declared)
    location: str  # <file>#<pointer>
    assumption: str = ""

    @property
    def assumed(self) -> bool:
        return self.value == "assumed"

    def describe(self) -> str:
        if self.assumed:
            why = f" ({self.assumption})" if self.assumption else ""
            return f"assumption refuted: {self.location}{why}"
        source = self.value or "undeclared"
        return f"contract broken: {self.location} (x-provenance: {source})"


class ProvenanceIndex:
    """Provenance look-ups over one raw (not dereferenced) spec document."""

    def __init__(self, name: str, document: dict[str, Any]) -> None:
        self.name = name
        self.file = spec_file(name)
        self.document = document

    # -- helpers -------------------------------------------------------------------------------
    def _here(self, node: Any, pointer: str, inherited: Provenance) -> Provenance:
        if isinstance(node, dict) and isinstance(node.get("x-provenance"), str):
            return Provenance(
                str(node["x-provenance"]),
                f"{self.file}#{pointer}",
                " ".join(str(node.get("x-assumption", "")).split()),
            )
        return inherited

    def _follow(self, node: Any, pointer: str, inherited: Provenance) -> tuple[Any, str, Provenance]:
        """Resolve a chain of `$ref`s, collecting provenance at each hop (the referring node's
        own siblings first, then the target's)."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 32:
            inherited = self._here(node, pointer, inherited)
            ref = str(node["$ref"])
            node, pointer = resolve_ref(self.document, ref), ref[1:]
            seen += 1
        return node, pointer, self._here(node, pointer, inherited)

    def operation_node(self, method: str, path: str) -> tuple[dict[str, Any] | None, str]:
        item = (self.document.get("paths") or {}).get(path)
        if item is None:
            item = (self.document.get("webhooks") or {}).get(path)
            base = f"/webhooks/{pointer_token(path)}"
        else:
            base = f"/paths/{pointer_token(path)}"
        if not isinstance(item, dict):
            return None, base
        op = item.get(method.lower())
        return (op if isinstance(op, dict) else None), f"{base}/{method.lower()}"

    def _root(self) -> Provenance:
        return self._here(self.document.get("info", {}), "/info", Provenance("", f"{self.file}#/"))

    # -- public look-ups -----------------------------------------------------------------------
    def operation(self, method: str, path: str) -> Provenance:
        node, pointer = self.operation_node(method, path)
        root = self._here(self.document, "", self._root())
        if node is None:
            return Provenance(root.value, f"{self.file}#{pointer}", root.assumption)
        found = self._here(node, pointer, root)
        if found is root:
            return Provenance(root.value, f"{self.file}#{pointer}", root.assumption)
        return found

    def _response(self, method: str, path: str, status: int | str) -> tuple[Any, str, Provenance]:
        """The documented response for `status` (its node, pointer and provenance), or no node
        and the operation's provenance when there is none."""
        op_node, pointer = self.operation_node(method, path)
        base = self.operation(method, path)
        if op_node is None:
            return None, "", base
        responses = op_node.get("responses") or {}
        key = _status_key(responses, status)
        if key is None:
            return None, "", base
        return self._follow(responses[key], f"{pointer}/responses/{pointer_token(key)}", base)

    def _content_field(self, node: Any, node_pointer: str, path: Sequence[str | int], found: Provenance) -> Provenance:
        """Provenance of `path` inside the first schema of a request body or response `node`."""
        for media_type, media in ((node.get("content") or {}) if isinstance(node, dict) else {}).items():
            if isinstance(media, dict) and "schema" in media:
                schema_pointer = f"{node_pointer}/content/{pointer_token(media_type)}/schema"
                return self._walk(media["schema"], schema_pointer, list(path), found)[1]
        return found

    def response(self, method: str, path: str, status: int | str) -> Provenance:
        return self._response(method, path, status)[2]

    def response_field(
        self, method: str, path: str, status: int | str, instance_path: Sequence[str | int]
    ) -> Provenance:
        node, node_pointer, found = self._response(method, path, status)
        return found if node is None else self._content_field(node, node_pointer, instance_path, found)

    def request_body_field(self, method: str, path: str, schema_path: Sequence[str | int]) -> Provenance:
        """Provenance of a request body property; `schema_path` is a path of instance keys."""
        op_node, pointer = self.operation_node(method, path)
        base = self.operation(method, path)
        if op_node is None or "requestBody" not in op_node:
            return base
        node, node_pointer, found = self._follow(op_node["requestBody"], f"{pointer}/requestBody", base)
        return self._content_field(node, node_pointer, schema_path, found)

    def parameter(self, method: str, path: str, location: str, name: str) -> Provenance:
        op_node, pointer = self.operation_node(method, path)
        base = self.operation(method, path)
        if op_node is None:
            return base
        item = (self.document.get("paths") or {}).get(path) or {}
        candidates = [(f"{pointer}/parameters", op_node.get("parameters") or [])]
        candidates.append((f"/paths/{pointer_token(path)}/parameters", item.get("parameters") or []))
        for list_pointer, params in candidates:
            for index, raw in enumerate(params):
                param, param_pointer, found = self._follow(raw, f"{list_pointer}/{index}", base)
                if not isinstance(param, dict) or param.get("in") != location:
                    continue
                if str(param.get("name", "")).lower() != name.lower():
                    continue
                schema = param.get("schema")
                if isinstance(schema, dict):
                    return self._walk(schema, f"{param_pointer}/schema", [], found)[1]
                return found
        return base

    # -- schema walk ---------------------------------------------------------------------------
    def _walk(self, node: Any, pointer: str, path: list[str | int], inherited: Provenance) -> tuple[int, Provenance]:
        """Follow `path` (instance keys) into a schema; returns (how many keys were matched, the
        deepest provenance found on the way)."""
        node, pointer, here = self._follow(node, pointer, inherited)
        if not isinstance(node, dict):
            return 0, here
        best_depth, best = 0, here
        for key in _COMBINATORS:
            for index, branch in enumerate(node.get(key) or []):
                depth, found = self._walk(branch, f"{pointer}/{key}/{index}", path, here)
                if depth > best_depth or (depth == best_depth and found is not here and best is here):
                    best_depth, best = depth, found
        if not path:
            return best_depth, best
        head, rest = path[0], path[1:]
        child: Any = None
        child_pointer = ""
        if isinstance(head, int) or (isinstance(head, str) and head.isdigit() and "items" in node):
            if isinstance(node.get("items"), dict):
                child, child_pointer = node["items"], f"{pointer}/items"
        else:
            properties = node.get("properties") or {}
            if head in properties:
                child, child_pointer = properties[head], f"{pointer}/properties/{pointer_token(str(head))}"
            elif isinstance(node.get("additionalProperties"), dict):
                child, child_pointer = node["additionalProperties"], f"{pointer}/additionalProperties"
        if child is not None:
            depth, found = self._walk(child, child_pointer, rest, here)
            if depth + 1 > best_depth:
                return depth + 1, found
        return best_depth, best


def _status_key(responses: dict[str, Any], status: int | str) -> str | None:
    text = str(status)
    if text in responses:
        return text
    wildcard = f"{text[0]}XX"
    for key in (wildcard, wildcard.lower(), "default"):
        if key in responses:
            return key
    return None


_INDEXES: dict[str, ProvenanceIndex] = {}


def index_for(name: str) -> ProvenanceIndex:
    """The (cached) provenance index of spec `<name>.yaml`."""
    from contracts.specs import load_spec

    found = _INDEXES.get(name)
    if found is None:
        found = _INDEXES[name] = ProvenanceIndex(name, load_spec(name))
    return found
