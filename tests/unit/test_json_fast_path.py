"""Request bodies are parsed by orjson when that gives exactly what the standard library's strict
path gives (`validation._fast_json`, issue 20): the same document or the same refusal, word for
word, for every input — duplicate keys, numbers beyond 64 bits, lone surrogates, NaN, depth,
bad UTF-8 included."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server import validation
from mock_server.errors import MockError


def _outcome(raw: bytes) -> tuple[Any, ...]:
    try:
        document = validation.parse_json(raw)
    except MockError as error:
        return ("refused", type(error).__name__, error.message, [(f.field, f.message) for f in error.fields])
    return ("parsed", json.dumps(document), type(document).__name__)


def _both(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    fast = _outcome(raw)
    with monkeypatch.context() as patch:
        patch.setattr(validation, "_fast_json", lambda raw: validation._SLOW)
        standard = _outcome(raw)
    return fast, standard


CASES = [
    b'{"first_name": "Ada", "is_vip": false, "notes": null, "n": [1, 2.5, -0, 1e-7]}',
    b'{"a": 1, "a": 2}',  # duplicate: refused
    b'{"\\u0061": 1, "a": 2}',  # the same key, escaped
    b'{"a": {"b": 1, "b": 1}}',  # nested duplicate
    b'{"a\\":": 1, "b": "x\\":y"}',  # key ends inside strings: no duplicate, standard path
    b'{"a": 123456789012345678901234567890}',  # beyond 64 bits: an int, not a float
    b'{"a": -9223372036854775809}',
    b'{"a": 1e400}',  # infinity: refused
    b'{"a": NaN}',
    b'{"a": "\\ud800"}',  # lone surrogate: refused by field
    b'{"a": "\\ud83d\\ude00"}',  # a pair: fine
    b'\xff\xfe',
    b"[" * 3000 + b"]" * 3000,  # deeper than either parser goes
    b'{"a": 1,}',
    b'{"a": 1} x',
    b'\xef\xbb\xbf{}',
    b'"just a string"',
    b'  [1, {"k" : "v"}, []]  ',
]


@pytest.mark.parametrize("raw", CASES)
def test_fast_path_agrees_with_the_standard_library(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, standard = _both(raw, monkeypatch)
    assert fast == standard


def test_the_usual_body_takes_the_fast_path_and_a_duplicate_does_not() -> None:
    assert validation._fast_json(CASES[0]) is not validation._SLOW
    assert validation._fast_json(b'{"a": 1, "a": 2}') is validation._SLOW
    assert validation._fast_json(b'{"a": 123456789012345678901234567890}') is validation._SLOW
    with pytest.raises(MockError, match="duplicate key 'a'"):
        validation.parse_json(b'{"a": {"a": 1, "a": 2}}')


_ATOMS = st.sampled_from(
    [b"1", b"-0", b"0.5", b"1e400", b"1234567890123456789", b"99999999999999999999", b"true", b"null", b"NaN",
     b'"a"', b'"\\ud800"', b'"\\udc00"', b'"\\ud83d\\ude00"', b'"\\":"', b'"\xc3\xa9"', b'"\xff"', b'""', b"-1E-5"]
)  # fmt: skip
_KEYS = st.sampled_from([b'"a"', b'"b"', b'"\\u0061"', b'"\\":"', b'"x y"', b'""'])
_WS = st.sampled_from([b"", b" ", b"\n", b"\t"])


def _members(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    pair = st.tuples(_WS, _KEYS, _WS, children).map(lambda t: t[0] + t[1] + t[2] + b":" + t[3])
    objects = st.lists(pair, max_size=4).map(lambda items: b"{" + b",".join(items) + b"}")
    arrays = st.lists(children, max_size=4).map(lambda items: b"[" + b",".join(items) + b"]")
    return objects | arrays


_DOCUMENTS = st.recursive(_ATOMS, _members, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(raw=_DOCUMENTS, cut=st.integers(min_value=0, max_value=400), byte=st.integers(min_value=0, max_value=255))
def test_fast_path_agrees_on_generated_and_damaged_documents(raw: bytes, cut: int, byte: int) -> None:
    for candidate in (raw, raw[:cut] + bytes([byte]) + raw[cut + 1 :]):
        with pytest.MonkeyPatch.context() as monkeypatch:
            fast, standard = _both(candidate, monkeypatch)
        assert fast == standard, candidate
