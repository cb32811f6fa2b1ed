"""Instruments the embedded stack defines on its simulated venue."""

from __future__ import annotations

from meltica.domain.instruments import Instrument, spot

DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    spot(
        "BTCUSDT",
        "SIM",
        "BTC",
        "USDT",
        price_increment="0.01",
        size_increment="0.0001",
        min_notional="5",
        maker_fee="0.0001",
        taker_fee="0.0005",
    ),
    spot(
        "ETHUSDT",
        "SIM",
        "ETH",
        "USDT",
        price_increment="0.01",
        size_increment="0.001",
        min_notional="5",
        maker_fee="0.0001",
        taker_fee="0.0005",
    ),
    spot(
        "USDJPY",
        "SIM",
        "USD",
        "JPY",
        price_increment="0.001",
        size_increment="1",
        maker_fee="0.00002",
        taker_fee="0.00002",
    ),
)
