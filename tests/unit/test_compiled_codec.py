"""The schema-compiled codec writes exactly what fastavro writes, for every schema."""

from __future__ import annotations

import io
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meltica.events import default_catalog
from meltica.events.compiled import compile_decoder, compile_encoder

LONG = st.integers(-(2**63), 2**63 - 1)
INT = st.integers(-(2**31), 2**31 - 1)
DECIMALS = st.one_of(
    st.decimals(min_value=1 - 10**28, max_value=10**28 - 1, allow_nan=False, allow_infinity=False),
    st.decimals(min_value=-(10**12), max_value=10**12, places=8),
)


def strategy(schema: Any, names: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for `schema`."""
    if isinstance(schema, str) and schema in names:
        return strategy(names[schema], names)
    if isinstance(schema, list):
        return st.one_of(*(strategy(s, names) for s in schema))
    t = schema if isinstance(schema, str) else schema["type"]
    if isinstance(schema, dict) and schema.get("logicalType") == "meltica-decimal":
        return DECIMALS
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": INT,
        "long": LONG,
        "string": st.text(max_size=80),
        "bytes": st.binary(max_size=80),
        "double": st.floats(allow_nan=False),
    }
    if t in simple:
        return simple[t]
    if t == "enum":
        names[schema["name"]] = schema
        return st.sampled_from(schema["symbols"])
    if t == "array":
        return st.lists(strategy(schema["items"], names), max_size=4)
    if t == "map":
        return st.dictionaries(st.text(max_size=10), strategy(schema["values"], names), max_size=4)
    if t == "record":
        names[schema["name"]] = schema
        return st.fixed_dictionaries({f["name"]: strategy(f["type"], names) for f in schema["fields"]})
    raise AssertionError(f"no strategy for {t}")


RECORDS = [e for e in default_catalog().entries() if e.schema["type"] == "record"]


@pytest.mark.parametrize("entry", RECORDS, ids=lambda e: e.short_name)
def test_compiled_matches_fastavro(entry) -> None:  # type: ignore[no-untyped-def]
    encode, decode = compile_encoder(entry.schema), compile_decoder(entry.schema)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(strategy(entry.schema, {}))
    def check(record: dict[str, Any]) -> None:
        ref = io.BytesIO()
        schemaless_writer(ref, entry.parsed, record)
        assert encode(record) == ref.getvalue()
        back, end = decode(ref.getvalue(), 0)
        assert end == len(ref.getvalue())
        assert back == schemaless_reader(io.BytesIO(ref.getvalue()), entry.parsed, None)

    check()
