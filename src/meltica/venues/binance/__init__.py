"""Binance spot through ccxt (`pip install meltica[binance]`): the execution adapter and its config."""

from meltica.venues.binance.config import BinanceConfig
from meltica.venues.binance.execution import BinanceExecution

__all__ = ["BinanceConfig", "BinanceExecution"]
