"""A fake Binance spot venue speaking Binance's REST, WebSocket stream and WebSocket API protocols."""

from tests.fakes.binance.fake import FakeBinance

__all__ = ["FakeBinance"]
