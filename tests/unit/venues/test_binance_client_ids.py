"""Meltica's order ids as Binance client order ids: every generation decodes to the order id."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meltica.events.envelope import order_id_for
from meltica.venues.binance.client_ids import BINANCE_CLIENT_ID, client_id, decode, order_id_of

ORDER = order_id_for("acc-1", "c-1")  # Meltica's order ids are UUIDs: 36 characters


def test_an_order_travels_under_its_own_id_first() -> None:
    assert client_id(ORDER) == ORDER
    assert decode(ORDER) == (ORDER, 0)


def test_an_amended_uuid_order_packs_the_uuid_and_its_generation() -> None:
    first = client_id(ORDER, 1)
    assert first.endswith("/1")
    assert len(first) == 24
    assert BINANCE_CLIENT_ID.match(first)
    assert decode(first) == (ORDER, 1)
    assert decode(client_id(ORDER, 12)) == (ORDER, 12)
    assert client_id(ORDER, 1) != client_id(ORDER, 2)


def test_other_ids_get_a_suffix_when_it_fits() -> None:
    assert client_id("o-1", 3) == "o-1:3"
    assert decode("o-1:3") == ("o-1", 3)
    with pytest.raises(ValueError, match="too long"):
        client_id("x" * 35, 1)
    with pytest.raises(ValueError, match="too long"):  # only canonical (lowercase) UUIDs are packed
        client_id(ORDER.upper(), 1)


@pytest.mark.parametrize("bad", ["", "a b", "a:b", "a/b", "x" * 37, "ü"])
def test_ids_binance_cannot_carry_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Binance client order id"):
        client_id(bad)


def test_ids_placed_outside_meltica_decode_to_themselves() -> None:
    for foreign in ("web_4f1c2a", "x-R4BD3S82abcdef", "and_0123456789abcdefABCD/7"):
        assert order_id_of(foreign) == foreign


@given(st.uuids(), st.integers(min_value=0, max_value=10**12))
def test_every_generation_of_a_uuid_decodes_back(order: uuid.UUID, generation: int) -> None:
    cid = client_id(str(order), generation)
    assert BINANCE_CLIENT_ID.match(cid)
    assert decode(cid) == (str(order), generation)


@given(st.from_regex(r"[.A-Za-z0-9_-]{1,30}", fullmatch=True), st.integers(min_value=0, max_value=99999))
def test_every_generation_of_a_short_id_decodes_back(order: str, generation: int) -> None:
    cid = client_id(order, generation)
    assert BINANCE_CLIENT_ID.match(cid)
    assert decode(cid) == (order, generation)
