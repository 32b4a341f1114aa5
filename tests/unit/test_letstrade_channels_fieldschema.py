"""The pure field-schema rules of letstrade-channels: value types, channel definitions and payload
checks (mock_server/apis/letstrade_channels/fieldschema.py)."""

from __future__ import annotations

import string
from datetime import date
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mock_server.apis.letstrade_channels.fieldschema import (
    FIELD_TYPES,
    FieldDef,
    check_field_schema,
    check_payload,
    is_date,
    is_email,
    is_phone,
    missing_identifier,
    parse_fields,
    value_problem,
)

SEED_SCHEMA = [
    {"name": "email", "type": "email", "required": True},
    {"name": "first_name", "type": "string", "required": True},
    {"name": "last_name", "type": "string", "required": False},
    {"name": "cell_number", "type": "phone", "required": False},
]


# -- value types --------------------------------------------------------------------------------
@given(st.emails())
def test_every_generated_email_address_is_accepted(address: str) -> None:
    assert is_email(address)
    assert value_problem("email", address) is None


@pytest.mark.parametrize(
    "address",
    [
        "",
        "john.doe",
        "john.doe@",
        "@example.com",
        "john@doe@example.com",
        "john..doe@example.com",
        ".john@example.com",
        "john.doe@example",
        "john.doe@-example.com",
        "john.doe@example..com",
        "john doe@example.com",
        '"john doe"@example.com',
        "john@[127.0.0.1]",
        "john.doe@example.123",
        "a" * 65 + "@example.com",
        "ü@example.com",
    ],
)
def test_malformed_email_addresses_are_refused(address: str) -> None:
    assert not is_email(address)
    problem = value_problem("email", address)
    assert problem is not None and "e-mail" in problem


@given(
    st.sampled_from("123456789"),
    st.text(string.digits, min_size=6, max_size=14),
    st.lists(st.sampled_from([" ", "-", ".", ""]), min_size=20, max_size=20),
)
def test_e164_numbers_with_or_without_separators_are_phones(first: str, rest: str, seps: list[str]) -> None:
    digits = first + rest
    assert is_phone("+" + digits)
    assert is_phone(digits)  # a national / unprefixed number
    spaced = "+" + "".join(d + seps[i] for i, d in enumerate(digits)).rstrip(" -.")
    assert is_phone(spaced)


@pytest.mark.parametrize(
    "number",
    [
        "",
        "+",
        "123456",
        "+0721234565",
        "+1234567890123456",
        "0721234565x",
        "072-abc-4565",
        "++27721234565",
        "27 72 " * 8,
    ],
)
def test_non_phone_numbers_are_refused(number: str) -> None:
    assert not is_phone(number)
    problem = value_problem("phone", number)
    assert problem is not None and "phone number" in problem


@given(st.dates())
def test_every_calendar_date_is_a_date(day: date) -> None:
    assume(day.year >= 1000)
    assert is_date(day.isoformat())


@pytest.mark.parametrize(
    "text", ["", "1990-4-12", "1990-02-30", "1990-13-01", "19900412", "1990-04-12T00:00:00Z", "12/04/1990"]
)
def test_non_dates_are_refused(text: str) -> None:
    assert not is_date(text)


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("string", "x", [1, True, None, [], {}]),
        ("number", 1.5, ["1.5", True, None, []]),
        ("number", 0, [False]),
        ("boolean", False, [0, 1, "true", None]),
        ("date", "2024-02-29", ["2023-02-29", 20240229, None]),
        ("email", "a@example.com", [None, 1, ["a@example.com"]]),
        ("phone", "+27721234565", [27721234565, None]),
    ],
)
def test_each_field_type_accepts_its_values_only(kind: str, good: Any, bad: list[Any]) -> None:
    assert value_problem(kind, good) is None
    for value in bad:
        problem = value_problem(kind, value)
        assert problem is not None, f"{kind} accepted {value!r}"
        assert "expected" in problem or "must be" in problem


# -- channel definitions ------------------------------------------------------------------------
def test_the_seed_sample_schema_is_valid() -> None:
    assert check_field_schema("customer", SEED_SCHEMA) == []
    assert parse_fields(SEED_SCHEMA)[0] == FieldDef("email", "email", True)


@pytest.mark.parametrize(
    ("names", "ok"),
    [
        (["email"], True),
        (["cell_number"], True),
        (["email", "cell_number"], True),
        (["custom"], False),  # the literal "custom" exempts nothing: no payload could identify anyone
        (["custom", "first_name"], False),
        (["first_name"], False),
        ([], False),
    ],
)
def test_customer_channels_need_an_identifier_field(names: list[str], ok: bool) -> None:
    types = {"email": "email", "cell_number": "phone"}
    schema = [{"name": n, "type": types.get(n, "string"), "required": False} for n in names]
    errors = check_field_schema("customer", schema)
    assert (errors == []) is ok
    if not ok:
        assert [e.field for e in errors] == ["custom_field_schema"]
        assert "email" in errors[0].message and "cell_number" in errors[0].message


def test_product_channels_need_a_sku_field() -> None:
    assert check_field_schema("product", [{"name": "sku", "type": "string", "required": True}]) == []
    errors = check_field_schema("product", [{"name": "email", "type": "email", "required": True}])
    assert [e.field for e in errors] == ["custom_field_schema"] and "sku" in errors[0].message


def test_every_problem_of_a_definition_is_named() -> None:
    schema = [
        {"name": "email", "type": "string", "required": True},  # core field with another type
        {"name": "email", "type": "email", "required": True},  # duplicate
        {"name": "", "type": "colour", "required": "yes"},
        "not an object",
        {"name": "cell_number", "type": "phone", "required": False},
    ]
    errors = {(e.field, e.message.split(" ")[0]) for e in check_field_schema("customer", schema)}
    fields = {field for field, _ in errors}
    assert fields == {
        "custom_field_schema[0].type",
        "custom_field_schema[1].name",
        "custom_field_schema[2].name",
        "custom_field_schema[2].type",
        "custom_field_schema[2].required",
        "custom_field_schema[3]",
    }


@pytest.mark.parametrize(
    ("channel_type", "name", "wanted"),
    [
        ("customer", "email", "email"),
        ("customer", "cell_number", "phone"),
        ("customer", "first_name", "string"),
        ("customer", "last_name", "string"),
        ("product", "sku", "string"),
        ("product", "title", "string"),
    ],
)
def test_core_fields_keep_their_type(channel_type: str, name: str, wanted: str) -> None:
    identifier = {
        "customer": {"name": "email", "type": "email", "required": True},
        "product": {"name": "sku", "type": "string", "required": True},
    }
    for kind in FIELD_TYPES:
        schema = [{"name": name, "type": kind, "required": False}]
        if name != identifier[channel_type]["name"]:
            schema.append(identifier[channel_type])
        errors = check_field_schema(channel_type, schema)
        assert (errors == []) is (kind == wanted), (name, kind, errors)


# -- payloads -----------------------------------------------------------------------------------
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "email": st.emails(),
    "string": st.text(max_size=20),
    "phone": st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    "number": st.integers() | st.floats(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "date": st.dates(min_value=date(1000, 1, 1)).map(date.isoformat),
}
# a value of another JSON type than each field type accepts
_WRONG: dict[str, Any] = {"email": 1, "string": 2, "phone": 3, "number": "4", "boolean": "yes", "date": 5}


@st.composite
def schemas_and_payloads(draw: st.DrawFn) -> tuple[list[FieldDef], dict[str, Any]]:
    names = draw(st.lists(st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True), min_size=1, max_size=8, unique=True))
    fields = [FieldDef(n, draw(st.sampled_from(FIELD_TYPES)), draw(st.booleans())) for n in names]
    payload = {f.name: draw(_VALUES[f.type]) for f in fields if f.required or draw(st.booleans())}
    return fields, payload


@given(schemas_and_payloads())
def test_a_payload_of_the_schema_passes(case: tuple[list[FieldDef], dict[str, Any]]) -> None:
    fields, payload = case
    assert check_payload(fields, payload) == []


@given(schemas_and_payloads(), st.data())
def test_dropping_a_required_field_is_named(case: tuple[list[FieldDef], dict[str, Any]], data: st.DataObject) -> None:
    fields, payload = case
    required = [f.name for f in fields if f.required]
    assume(required)
    dropped = data.draw(st.sampled_from(required))
    errors = check_payload(fields, {k: v for k, v in payload.items() if k != dropped})
    assert [(e.field, "required" in e.message) for e in errors] == [(dropped, True)]


@given(schemas_and_payloads(), st.data())
def test_a_value_of_the_wrong_type_is_named(case: tuple[list[FieldDef], dict[str, Any]], data: st.DataObject) -> None:
    fields, payload = case
    field = data.draw(st.sampled_from(fields))
    errors = check_payload(fields, {**payload, field.name: _WRONG[field.type]})
    assert [e.field for e in errors] == [field.name]


@given(
    schemas_and_payloads(),
    st.lists(st.from_regex(r"[A-Z][a-z]{0,6}", fullmatch=True), min_size=1, max_size=3, unique=True),
)
def test_every_undefined_field_is_listed(case: tuple[list[FieldDef], dict[str, Any]], extra: list[str]) -> None:
    fields, payload = case  # schema names are lower case, so the capitalised extras are undefined
    errors = check_payload(fields, {**payload, **dict.fromkeys(extra, "x")})
    assert [e.field for e in errors] == extra
    assert all("not defined" in e.message for e in errors)


def test_null_is_no_value_of_any_type() -> None:
    fields = [FieldDef("email", "email", False), FieldDef("nick", "string", False)]
    errors = check_payload(fields, {"email": "a@example.com", "nick": None})
    assert [(e.field, e.message) for e in errors] == [("nick", "must be a string, got null")]


@pytest.mark.parametrize(
    ("payload", "missing"),
    [
        ({"first_name": "x"}, True),
        ({"email": "", "cell_number": "  "}, True),
        ({"email": None}, True),
        ({"email": "a@example.com"}, False),
        ({"cell_number": "+27721234565"}, False),
    ],
)
def test_the_identifier_rule(payload: dict[str, Any], missing: bool) -> None:
    errors = missing_identifier("customer", payload)
    assert bool(errors) is missing
    if missing:
        assert {e.field for e in errors} == {"email", "cell_number"}
