"""The tests' condition wait: returns the first truthy value, or fails naming what it waited for."""

from __future__ import annotations

import itertools

import pytest

from tests.waiting import wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = itertools.count(1)
    assert wait_until(lambda: next(calls) >= 3 and "third", 5, "a third call", every=0.001) == "third"


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"not within 0.05 s: the moon\nlog tail"):
        wait_until(lambda: False, 0.05, "the moon", every=0.01, detail=lambda: "log tail")
