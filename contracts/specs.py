"""The specs the contract suite tests from: the same `openapi/*.yaml` files the mock serves.

Read from the repository's `openapi/` folder when the suite runs from a checkout, else from the
copy installed with the distribution (package data of `mock_server`). Only the files are shared:
the suite never imports the mock's code to read them.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SLUGS: tuple[str, ...] = ("letstrade-pos", "letstrade-channels", "customtrades", "capillary", "loke")
PROVIDER_SPEC = "letstrade-pos-provider"


def specs_dir() -> Path:
    repo = Path(__file__).resolve().parent.parent / "openapi"
    if (repo / "loke.yaml").is_file():
        return repo
    return Path(str(resources.files("mock_server") / "openapi"))


@cache
def _load(name: str) -> dict[str, Any]:
    with (specs_dir() / f"{name}.yaml").open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    if not isinstance(document, dict):
        raise ValueError(f"{name}.yaml is not an OpenAPI document")
    return document


def load_spec(name: str) -> dict[str, Any]:
    """A private copy of the spec `<name>.yaml` (callers may change it)."""
    return copy.deepcopy(_load(name))


def spec_file(name: str) -> str:
    return f"{name}.yaml"


def resolve_ref(document: dict[str, Any], ref: str) -> Any:
    """The node a local `#/...` reference points at."""
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported, got {ref!r}")
    node: Any = document
    for token in ref[2:].split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def dereference(node: Any, document: dict[str, Any]) -> Any:
    """`node` with every local `$ref` replaced by its target (the specs are never recursive)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = dereference(resolve_ref(document, str(node["$ref"])), document)
            siblings = {k: dereference(v, document) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings} if isinstance(target, dict) else target
        return {k: dereference(v, document) for k, v in node.items()}
    if isinstance(node, list):
        return [dereference(v, document) for v in node]
    return node


def pointer_token(value: str) -> str:
    return value.replace("~", "~0").replace("/", "~1")
