"""Value types shared by the domain: enums that mirror the Avro enums, decimal helpers."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)
ROUTER_VENUE = "SOR"
"""The venue code of smart-routed orders (`domain/routing.py`): `BTCUSDT.SOR`."""
ONE = Decimal(1)
BPS = Decimal(10_000)
NS_PER_SECOND = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_SECOND


class OrderSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells."""
        return 1 if self is OrderSide.BUY else -1

    @property
    def opposite(self) -> OrderSide:
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_MARKET = "STOP_MARKET"
    STOP_LIMIT = "STOP_LIMIT"
    TRAILING_STOP_MARKET = "TRAILING_STOP_MARKET"
    TRAILING_STOP_LIMIT = "TRAILING_STOP_LIMIT"

    @property
    def has_trigger(self) -> bool:
        """Stop and trailing-stop orders wait for a trigger before they are live."""
        return self not in (OrderType.MARKET, OrderType.LIMIT)

    @property
    def is_trailing(self) -> bool:
        return self in (OrderType.TRAILING_STOP_MARKET, OrderType.TRAILING_STOP_LIMIT)

    @property
    def has_limit_price(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP_LIMIT)

    @property
    def when_triggered(self) -> OrderType:
        """The type an order becomes once its trigger fires."""
        return OrderType.LIMIT if self.has_limit_price else OrderType.MARKET


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    GTD = "GTD"
    DAY = "DAY"


class TriggerType(StrEnum):
    """Which price fires a trigger; DEFAULT uses trades, and quotes on the order's far side."""

    LAST = "LAST"
    BID = "BID"
    ASK = "ASK"
    MID = "MID"
    DEFAULT = "DEFAULT_TRIGGER"


class TrailingOffsetType(StrEnum):
    PRICE = "PRICE"
    BASIS_POINTS = "BASIS_POINTS"
    NONE = "NO_TRAILING_OFFSET"


class ContingencyType(StrEnum):
    NONE = "NO_CONTINGENCY"
    OCO = "OCO"
    OTO = "OTO"


class LiquiditySide(StrEnum):
    NONE = "NO_LIQUIDITY_SIDE"
    MAKER = "MAKER"
    TAKER = "TAKER"


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class RiskScope(StrEnum):
    GLOBAL = "GLOBAL"
    ACCOUNT = "ACCOUNT"
    PORTFOLIO = "PORTFOLIO"
    INSTRUMENT = "INSTRUMENT"


class ExecType(StrEnum):
    NEW = "NEW"
    REJECTED = "REJECTED"
    TRADE = "TRADE"
    CANCELED = "CANCELED"
    REPLACED = "REPLACED"
    EXPIRED = "EXPIRED"
    TRIGGERED = "TRIGGERED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    REPLACE_REJECTED = "REPLACE_REJECTED"


def next_utc_midnight(ts_ns: int) -> int:
    """End of the UTC day that contains `ts_ns`: the expiry of a DAY order."""
    return (ts_ns // NS_PER_DAY + 1) * NS_PER_DAY


def is_multiple(value: Decimal, increment: Decimal) -> bool:
    """Whether `value` is a whole multiple of `increment` (a tick or lot size)."""
    return increment == 0 or value % increment == 0
