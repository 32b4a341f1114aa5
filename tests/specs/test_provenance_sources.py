"""Provenance labels must be checkable: every `seed` item quotes its vendor document, every
`public-docs` item quotes the vendor's public documentation, and no spec cites a file that a user
of the package does not have (openapi/CONVENTIONS.md, "Provenance and sources").

The quote checks read the source documents from `../shared/` beside the repository (present in
development and CI, not in an installed package); without it they are skipped with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.specs.conftest import ALL_SPECS, ROOT, VENDOR_SPECS, load

SHARED = ROOT.parent / "shared"
SEEDS = SHARED / "seeds"
PUBLIC_FACTS = SHARED / "public-facts.md"

# Which vendor document each spec is built from.
SEED_OF = {
    "letstrade-channels": "000_f7b904c396dafb18.txt",
    "customtrades": "001_4bbc236a29655fd4.txt",
    "loke": "002_84751275158928bb.txt",
    "capillary": "003_5a62a29de715fcc9.txt",
    "letstrade-pos": "004_82b0e23956f986cf.txt",
    "letstrade-pos-provider": "004_82b0e23956f986cf.txt",
}

# Citations a user of the package cannot follow: the project's private design notes and the
# copies of the vendor documents kept beside the repository.
FORBIDDEN_CITATIONS = re.compile(r"DESIGN\.md|DESIGN §|shared/|seeds/|public-facts|seed 00[0-4]|seed document")
# CONVENTIONS.md shows the seed-sample fixtures' own `source` strings ("seed 000, ..."): only the
# file citations are forbidden there.
FORBIDDEN_FILES = re.compile(r"DESIGN\.md|DESIGN §|shared/|seeds/|public-facts")


def normalise(text: str) -> str:
    """Case, whitespace, typographic quotes and Markdown backticks do not count."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("`", "").replace("\u00a0", " ")
    return " ".join(text.lower().split())


def _labelled(node: Any, pointer: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if isinstance(node.get("x-provenance"), str):
            found.append((pointer or "/", node))
        for key, value in node.items():
            if key in ("example", "examples"):
                continue
            found.extend(_labelled(value, f"{pointer}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_labelled(value, f"{pointer}/{index}"))
    return found


def _quotes(node: dict[str, Any]) -> list[str]:
    source = node.get("x-source")
    if isinstance(source, str):
        return [source]
    if isinstance(source, list) and all(isinstance(item, str) for item in source):
        return list(source)
    return []


def _items(name: str, label: str) -> list[tuple[str, dict[str, Any]]]:
    return [(pointer, node) for pointer, node in _labelled(load(name)) if node["x-provenance"] == label]


@pytest.mark.parametrize("name", VENDOR_SPECS)
def test_every_documented_item_quotes_its_source(name: str) -> None:
    """A `seed` or `public-docs` label without the words it rests on is a claim nobody can check."""
    missing = [
        f"{pointer} ({node['x-provenance']})"
        for pointer, node in _labelled(load(name))
        if node["x-provenance"] in ("seed", "public-docs") and not [q for q in _quotes(node) if q.strip()]
    ]
    assert missing == [], f"{name}: items without an x-source quote: {missing}"


def _need(path: Path) -> str:
    if not path.exists():
        pytest.skip(f"{path} is absent (the vendor documents live beside the repository in dev and CI only)")
    return normalise(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", VENDOR_SPECS)
def test_seed_quotes_occur_in_the_vendor_document(name: str) -> None:
    text = _need(SEEDS / SEED_OF[name])
    wrong = [
        f"{pointer}: {quote!r}"
        for pointer, node in _items(name, "seed")
        for quote in _quotes(node)
        if normalise(quote) not in text
    ]
    assert wrong == [], f"{name}: x-source quotes not in {SEED_OF[name]}: {wrong}"


@pytest.mark.parametrize("name", VENDOR_SPECS)
def test_public_docs_quotes_occur_in_the_public_facts(name: str) -> None:
    text = _need(PUBLIC_FACTS)
    wrong = [
        f"{pointer}: {quote!r}"
        for pointer, node in _items(name, "public-docs")
        for quote in _quotes(node)
        if normalise(quote) not in text
    ]
    assert wrong == [], f"{name}: x-source quotes not in public-facts.md: {wrong}"


def test_normalise_ignores_case_whitespace_quotes_and_backticks() -> None:
    assert normalise("Let\u2019s  Trade\n`X-Next-Page`") == "let's trade x-next-page"
    assert normalise("max: 100") not in normalise("limit(number, default: 50, max: 10)required")


@pytest.mark.parametrize("name", ALL_SPECS)
def test_specs_cite_only_what_ships(name: str) -> None:
    """Users have the specs, ARCHITECTURE.md and openapi/CONVENTIONS.md, not the project's
    private notes or its copies of the vendor documents: cite a vendor document by its title and
    section heading, a public page by its URL."""
    text = (ROOT / "openapi" / f"{name}.yaml").read_text(encoding="utf-8")
    hits = [
        f"line {number}: {line.strip()[:100]}"
        for number, line in enumerate(text.splitlines(), 1)
        if FORBIDDEN_CITATIONS.search(line)
    ]
    assert hits == [], f"{name}.yaml cites files users do not have: {hits}"


def test_conventions_cite_only_what_ships() -> None:
    text = (ROOT / "openapi" / "CONVENTIONS.md").read_text(encoding="utf-8")
    assert not FORBIDDEN_FILES.search(text), FORBIDDEN_FILES.search(text)


def test_assumptions_listing_cites_only_what_ships(capsys: pytest.CaptureFixture[str]) -> None:
    from mock_server.cli import main

    assert main(["assumptions"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) > 100, "the listing lost its items"
    hits = [line for line in lines if FORBIDDEN_CITATIONS.search(line.split("\t", 1)[-1])]
    assert hits == [], hits


def _at(document: dict[str, Any], *path: str) -> dict[str, Any]:
    """Walk keys; a `name=<x>` step picks the list item (a parameter) with that name."""
    node: Any = document
    for step in path:
        if step.startswith("name="):
            node = next(item for item in node if isinstance(item, dict) and item.get("name") == step[5:])
        else:
            node = node[step]
    assert isinstance(node, dict)
    return node


# The labels found wrong by reading every spec against the documents (issue 16), both ways.
RELABELLED = [
    # Documented by the vendor document, once marked assumed.
    ("customtrades", ("paths", "/v1/customers", "get", "parameters", "name=search"), "seed"),
    ("letstrade-pos", ("components", "schemas", "User", "properties", "email"), "seed"),
    ("letstrade-pos", ("components", "schemas", "ExternalVoucher", "properties", "sku"), "seed"),
    ("letstrade-pos", ("components", "schemas", "ExternalVoucher", "properties", "apply_to_promotion"), "seed"),
    # Named by LOKE's integration guide, once marked public-docs.
    ("loke", ("paths", "/organizations/{organizationId}/customers", "get"), "seed"),
    ("loke", ("paths", "/organizations/{organizationId}/webhooks/{webhookRef}", "put"), "seed"),
    ("loke", ("paths", "/organizations/{organizationId}/customer-lists", "get"), "seed"),
    ("loke", ("paths", "/organizations/{organizationId}/customer-lists/{listId}/members", "get"), "seed"),
    ("loke", ("components", "headers", "XNextPage"), "seed"),
    # Inferences, once marked seed (or left to inherit seed).
    (
        "letstrade-channels",
        ("components", "schemas", "ChannelWithKeyEnvelope", "properties", "content", "properties", "api_key"),
        "assumed",
    ),
    ("letstrade-channels", ("components", "schemas", "Permission"), "assumed"),
    ("letstrade-channels", ("components", "schemas", "ChannelCustomerPayload"), "assumed"),
    ("letstrade-pos", ("components", "schemas", "BasketVoucher", "properties", "apply_to"), "assumed"),
    ("letstrade-pos", ("components", "schemas", "ExternalVoucher", "properties", "value"), "assumed"),
    ("capillary", ("components", "schemas", "Identifier", "properties", "type"), "assumed"),
    ("capillary", ("components", "schemas", "Identifier", "properties", "value"), "assumed"),
    ("customtrades", ("paths", "/v1/customers", "get", "parameters", "name=limit", "schema"), "assumed"),
]


@pytest.mark.parametrize(
    ("name", "path", "label"), RELABELLED, ids=lambda v: "/".join(v) if isinstance(v, tuple) else v
)
def test_relabelled_items_keep_their_true_provenance(name: str, path: tuple[str, ...], label: str) -> None:
    node = _at(load(name), *path)
    assert node.get("x-provenance") == label, f"{name} {'/'.join(path)}: {node.get('x-provenance')!r}"
    if label == "assumed":
        assert node.get("x-assumption"), "an assumed item says what was assumed and why"


def test_custom_trades_limit_over_100_is_a_marked_choice() -> None:
    schema = _at(load("customtrades"), "paths", "/v1/customers", "get", "parameters", "name=limit", "schema")
    assert schema["maximum"] == 100
    assert "max: 100" in schema["x-assumption"] and "refused" in schema["x-assumption"]


def test_pos_user_email_conflict_is_described_as_the_409_the_mock_answers() -> None:
    document = load("letstrade-pos")
    email = _at(document, "components", "schemas", "User", "properties", "email")
    text = " ".join(str(email.get(key, "")) for key in ("description", "x-assumption"))
    assert "409" in text and "400" not in text
    assert "basket.user.email" in _at(document, "components", "responses", "AlreadyFinalised")["description"]


class _DuplicateKeyLoader(yaml.SafeLoader):
    duplicates: list[str]


def _mapping(loader: _DuplicateKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    keys = [loader.construct_object(key) for key, _ in node.value]
    loader.duplicates += [f"line {node.start_mark.line + 1}: {k!r}" for k in set(keys) if keys.count(k) > 1]
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_DuplicateKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


@pytest.mark.parametrize("name", ALL_SPECS)
def test_no_key_is_given_twice(name: str) -> None:
    """A YAML loader keeps the last of two equal keys silently: a second `x-provenance` or
    `x-source` added to an item would override the first without any other test noticing."""
    loader = _DuplicateKeyLoader((ROOT / "openapi" / f"{name}.yaml").read_text(encoding="utf-8"))
    loader.duplicates = []
    try:
        loader.get_single_data()
    finally:
        loader.dispose()
    assert loader.duplicates == []
