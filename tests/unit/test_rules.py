"""`mock_server.rules`: the prose rules of our `x-` keywords, compiled from a schema and checked on a
body. Properties against a brute-force reading of each keyword, the refusal each rule documents,
the real specs' rules, and agreement with the contract suite's own reading (`contracts.prose`)."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import prose
from mock_server import rules
from mock_server.errors import Conflict, ValidationFailed
from mock_server.spec import Spec, build_spec, load_document

FAST = settings(max_examples=50, deadline=None, database=None)
# JSON scalars that Python confuses: True == 1 == 1.0, False == 0
SCALARS = st.sampled_from([0, 1, 1.0, 0.0, True, False, None, "", "a", "b", "P1", "P2", "R1"])


def _reference_unique(items: list[Any], key: Any, exempt: set[Any] = frozenset()) -> list[int]:
    """Indexes of items whose key an earlier item already has (brute force, JSON equality)."""
    repeats = []
    for index, item in enumerate(items):
        k = key(item)
        if k in exempt:
            continue
        if any(key(earlier) == k and key(earlier) not in exempt for earlier in items[:index]):
            repeats.append(index)
    return repeats


def _json_key(value: Any) -> str:
    """JSON equality as text: true is not 1, but 1.0 is 1 (one JSON number)."""

    def plain(node: Any) -> Any:
        if isinstance(node, float) and node.is_integer():
            return int(node)
        if isinstance(node, list):
            return [plain(v) for v in node]
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items()}
        return node

    return json.dumps(plain(value), sort_keys=True)


# -- x-unique-by ---------------------------------------------------------------------------------------
@FAST
@given(st.lists(st.fixed_dictionaries({}, optional={"type": SCALARS, "value": SCALARS}), max_size=6))
def test_unique_by_one_pointer_with_exemptions(items: list[dict[str, Any]]) -> None:
    schema = {
        "type": "object",
        "properties": {"ids": {"type": "array", "x-unique-by": ["/type"], "x-unique-by-exempt": ["a"]}},
    }
    found = rules.check(rules.compile_schema(schema), {"ids": items})
    key = lambda item: _json_key(item.get("type", "<absent>"))  # noqa: E731
    expected = _reference_unique(items, key, {_json_key("a")})
    assert [v.field for v in found] == [f"ids[{i}].type" for i in expected]
    assert all(v.refusal == rules.Refusal() for v in found)


@FAST
@given(st.lists(st.fixed_dictionaries({}, optional={"s": SCALARS, "a": SCALARS, "x": SCALARS}), max_size=6))
def test_unique_by_two_pointers(items: list[dict[str, Any]]) -> None:
    schema = {"type": "array", "x-unique-by": ["/s", "/a"]}
    found = rules.check(rules.compile_schema(schema), items)
    key = lambda item: (_json_key(item.get("s", "<absent>")), _json_key(item.get("a", "<absent>")))  # noqa: E731
    assert [v.field for v in found] == [f"[{i}]" for i in _reference_unique(items, key)]


@FAST
@given(st.lists(SCALARS | st.lists(SCALARS, max_size=2), max_size=6))
def test_unique_by_the_item_itself(items: list[Any]) -> None:
    found = rules.check(rules.compile_schema({"type": "array", "x-unique-by": [""]}), items)
    assert [v.field for v in found] == [f"[{i}]" for i in _reference_unique(items, _json_key)]


@FAST
@given(st.lists(st.text(alphabet="PRE12", max_size=4), max_size=6), st.integers(1, 3))
def test_unique_by_prefix(items: list[str], width: int) -> None:
    found = rules.check(rules.compile_schema({"type": "array", "x-unique-by-prefix": width}), items)
    assert [v.field for v in found] == [f"[{i}]" for i in _reference_unique(items, lambda s: s[:width])]


def test_unique_messages_name_the_earlier_item() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "array", "x-unique-by-prefix": 1}}}
    (violation,) = rules.check(rules.compile_schema(schema), {"code": ["P1", "R1", "P2"]})
    assert violation.field == "code[2]" and "code[0]" in violation.message and "'P'" in violation.message
    pairs = {"type": "array", "x-unique-by": ["/source", "/accountId"]}
    (violation,) = rules.check(rules.compile_schema(pairs), [{"source": "X"}, {"source": "X"}])
    assert violation.field == "[1]" and "source and accountId" in violation.message and "'X'" in violation.message


# -- x-one-of-required ---------------------------------------------------------------------------------
@FAST
@given(st.dictionaries(st.sampled_from(["email", "cell_number", "name", "sku"]), SCALARS, max_size=4))
def test_one_of_required_names_every_member(body: dict[str, Any]) -> None:
    schema = {"type": "object", "x-one-of-required": [["email", "cell_number"], ["name", "sku"]]}
    found = rules.check(rules.compile_schema(schema), body)
    expected = [m for group in (["email", "cell_number"], ["name", "sku"]) if not set(group) & set(body) for m in group]
    assert [v.field for v in found] == expected  # present with any value (null too) counts as present


def test_one_of_required_inside_arrays_names_the_item() -> None:
    schema = {"type": "array", "items": {"type": "object", "x-one-of-required": [["a", "b"]]}}
    found = rules.check(rules.compile_schema(schema), [{"a": 1}, {"c": 1}])
    assert [v.field for v in found] == ["[1].a", "[1].b"]
    assert "send at least one of a, b" in found[0].message


# -- x-forbidden-values --------------------------------------------------------------------------------
@FAST
@given(SCALARS)
def test_forbidden_values_compare_as_json(value: Any) -> None:
    schema = {"type": "object", "properties": {"amount": {"x-forbidden-values": [0]}}}
    found = rules.check(rules.compile_schema(schema), {"amount": value})
    forbidden = not isinstance(value, bool) and value == 0  # 0 and 0.0, never false
    assert [v.field for v in found] == (["amount"] if forbidden else [])


def test_an_absent_member_is_not_checked() -> None:
    schema = {"type": "object", "properties": {"amount": {"x-forbidden-values": [0]}}}
    assert rules.check(rules.compile_schema(schema), {}) == []
    assert rules.check(rules.compile_schema(schema), [{"amount": 0}]) == []  # not where the rule is


# -- refusals ------------------------------------------------------------------------------------------
def test_the_refusal_carries_status_and_vendor_code() -> None:
    def rule(refusal: dict[str, Any]) -> list[rules.Violation]:
        schema = {"type": "object", "properties": {"n": {"x-forbidden-values": [0], "x-rule-refusal": refusal}}}
        return rules.check(rules.compile_schema(schema), {"n": 0})

    capillary = rules.refusal_error(rule({"status": 400, "code": 8014, "message": "m"}))
    assert isinstance(capillary, ValidationFailed) and capillary.fields[0].code == 8014
    assert capillary.fields[0].message.endswith("; m") and capillary.fields[0].field == "n"
    loke = rules.refusal_error(rule({"status": 400, "code": "validation_error"}))
    assert loke.kind == "validation_error" and loke.fields[0].code is None
    conflict = rules.refusal_error(rule({"status": 409, "code": "duplicate"}))
    assert isinstance(conflict, Conflict) and conflict.status == 409 and conflict.kind == "duplicate"
    teapot = rules.refusal_error(rule({"status": 422}))
    assert teapot.status == 422 and isinstance(teapot, ValidationFailed)


def test_a_location_left_to_the_domain_is_not_compiled() -> None:
    schema = {"type": "array", "x-unique-by": [""], "x-rule-refusal": {"status": 400, "mock-domain": "why"}}
    assert rules.compile_schema(schema) == ()


# -- the real specs ------------------------------------------------------------------------------------
@functools.cache
def _spec(slug: str) -> Spec:
    return build_spec(slug, load_document(slug))


def _compiled(slug: str) -> dict[str, tuple[rules.Rule, ...]]:
    return rules.compile_spec(_spec(slug))


def test_the_specs_rules_reach_their_operations() -> None:
    found = {slug: sorted(_compiled(slug)) for slug in ("letstrade-pos", "letstrade-channels", "capillary", "loke")}
    assert found == {
        "letstrade-pos": ["finaliseOfferings", "getOfferings", "refund"],
        "letstrade-channels": ["upsertChannelCustomer"],  # the field schema: `mock-domain`
        "capillary": [],  # every Capillary rule is `mock-domain`: the registration code answers them together
        "loke": ["adjustPoints"],
    }
    offerings = _compiled("letstrade-pos")["getOfferings"]
    assert {(r.where, r.kind) for r in offerings} == {
        (("code",), "unique"),
        (("basket", "external_vouchers"), "unique"),
    }
    (points,) = _compiled("loke")["adjustPoints"]
    assert points.refusal == rules.Refusal(400, "validation_error", points.refusal.message) and points.refusal.message


BODIES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["code", "id", "basket", "external_vouchers", "email", "cell_number", "first_name", "amount"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


CODES = st.lists(st.sampled_from(["P1", "P2", "R1", "E1", 1]), max_size=4)
SHAPED = {
    "/v1/get/offerings": st.fixed_dictionaries(
        {"code": CODES | st.none()},
        optional={"basket": st.fixed_dictionaries({}, optional={"external_vouchers": st.lists(
            st.fixed_dictionaries({}, optional={"id": st.sampled_from(["a", "b"]), "value": SCALARS}), max_size=3
        )})},
    ),
    "/v1/refund": st.fixed_dictionaries({"code": CODES}),
    "/v1/webhooks/channels/{webhook_uuid}/customers": st.dictionaries(
        st.sampled_from(["email", "cell_number", "first_name"]), SCALARS, max_size=3
    ),
    "/organizations/{organizationId}/customers/{customerId}/points/{reference}": st.fixed_dictionaries(
        {"amount": SCALARS}
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("slug", "method", "path"),
    [
        ("letstrade-pos", "POST", "/v1/get/offerings"),
        ("letstrade-pos", "POST", "/v1/refund"),
        ("letstrade-channels", "POST", "/v1/webhooks/channels/{webhook_uuid}/customers"),
        ("loke", "PUT", "/organizations/{organizationId}/customers/{customerId}/points/{reference}"),
    ],
)
@settings(max_examples=40, deadline=None, database=None)
@given(draw=st.data())
def test_the_mock_and_the_suite_read_the_keywords_alike(slug: str, method: str, path: str, draw: st.DataObject) -> None:
    """Differential: the mock's rules and the suite's (`contracts.prose.violations`) agree on
    whether a body breaks a rule, wherever the mock checks the rule itself (bodies shaped to reach
    the rules' locations, and arbitrary ones)."""
    body = draw.draw(SHAPED[path] | BODIES)
    op = next(o for o in _spec(slug).operations if o.method == method and o.path == path)
    schema = prose.request_body_schema(slug, method, path)
    mock = rules.check(rules.compile_operation(op), body)
    suite = prose.violations(schema, body)
    assert bool(mock) == bool(suite), (mock, suite)


@pytest.mark.parametrize(
    ("codes", "repeated"),
    [([[], {}], False), ([{}, {}], True), ([[], []], True), ([[1], {"1": 1}], False), (["P", "P"], True)],
)
def test_an_empty_array_and_an_empty_object_are_different_items(codes: list[Any], repeated: bool) -> None:
    """Found by the differential test above: the suite read [] and {} as the same item (both an
    empty tuple), the mock did not. JSON tells them apart; both now do."""
    op = next(o for o in _spec("letstrade-pos").operations if o.method == "POST" and o.path == "/v1/refund")
    schema = prose.request_body_schema("letstrade-pos", "POST", "/v1/refund")
    body = {"code": codes}
    assert bool(rules.check(rules.compile_operation(op), body)) is repeated
    assert bool(prose.violations(schema, body)) is repeated
