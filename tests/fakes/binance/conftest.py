"""``fake_binance``: a started FakeBinance with some balances, stopped after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.binance.fake import FakeBinance


@pytest.fixture
def fake_binance() -> Iterator[FakeBinance]:
    with FakeBinance() as fake:
        fake.set_balance("USDT", "10000")
        fake.set_balance("BTC", "1")
        yield fake
