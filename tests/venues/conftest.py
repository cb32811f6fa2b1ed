"""The fake Binance's fixture (`fake_binance`) for the venue adapters' tests."""

from tests.fakes.binance.conftest import fake_binance

__all__ = ["fake_binance"]
