"""What the proxy hands the spec checker: the parsed answer and its shape, the key under which
answers of one shape share one walk of the schema, must be what `drift` computes for them."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.drift.compare import Flat
from mock_server.proxy.app import _parsed, shape_key

KEYS = st.sampled_from(["a", "b", "x/y", "t~1", "", "é", "0"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_the_shape_key_is_the_set_of_folded_pointers_drift_computes(value: Any) -> None:
    assert shape_key(value) == frozenset(Flat(value).shape)


def test_bodies_orjson_refuses_or_reads_otherwise_are_read_as_the_standard_library_reads_them() -> None:
    for raw in (b'{"n": NaN}', '{"a": [1]}'.encode("utf-16"), b"[1e400]"):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
        parsed = _parsed(raw)
        assert parsed is not None and json.dumps(parsed[0]) == json.dumps(json.loads(raw))
    for big in (b'{"id": 123456789012345678901234567890}', b"[-9223372036854775809, 18446744073709551616]"):
        assert orjson.loads(big) != json.loads(big)  # orjson reads them as floats
        parsed = _parsed(big)
        assert parsed is not None and json.dumps(parsed[0]) == json.dumps(json.loads(big))
    assert _parsed(b"") is None and _parsed(b"{not json") is None
