"""An embedded stack for end-to-end tests: a log, the engine, a publisher, and readers."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meltica.clock import SimulatedClock
from meltica.domain.instruments import Instrument, spot
from meltica.domain.marketdata import AggressorSide, QuoteTick, TradeTick
from meltica.domain.orders.commands import SubmitOrder
from meltica.domain.orders.model import OrderSpec
from meltica.domain.portfolio.events import AdjustBalance
from meltica.domain.values import OrderSide, OrderType
from meltica.events.codec import Codec
from meltica.events.mapping import from_record
from meltica.log.base import EventLog
from meltica.log.memory import MemoryLog
from meltica.runtime.engine import Engine
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_COMMANDS, PORTFOLIO_COMMANDS, QUOTES, TRADES, topic_specs
from meltica.topology import build_engine

BTC = spot(
    "BTCUSDT",
    "SIM",
    "BTC",
    "USDT",
    price_increment="0.01",
    size_increment="0.001",
    taker_fee="0.001",
    maker_fee="0.0002",
)
T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000


@dataclass
class Stack:
    log: EventLog = field(default_factory=MemoryLog)
    codec: Codec = field(default_factory=Codec)
    clock: SimulatedClock = field(default_factory=lambda: SimulatedClock(T0))
    engine: Engine | None = None
    ts: int = T0
    _n: int = 0

    def __post_init__(self) -> None:
        for spec in topic_specs(2):
            self.log.create_topic(spec)
        self.publisher = Publisher(self.log, self.codec, self.clock)
        self.engine = build_engine(self.log, self.codec, clock=self.clock)

    def tick(self) -> int:
        self.ts += SEC // 4
        self.clock.advance_to(self.ts)
        return self.ts

    def run(self) -> int:
        assert self.engine is not None
        return self.engine.drain()

    def setup(self, *instruments: Instrument, cash: str = "1000000", base: str = "100") -> None:
        self.publisher.define(instruments or (BTC,))
        for asset, amount in (("USDT", cash), ("BTC", base)):
            self.publisher.publish(
                PORTFOLIO_COMMANDS, AdjustBalance("ACC-1", asset, Decimal(amount), "test", self.tick())
            )
        self.quote("100.00", "100.02")

    def quote(self, bid: str, ask: str, size: str = "10") -> None:
        self.publisher.publish(
            QUOTES,
            QuoteTick(
                BTC.instrument_id, Decimal(bid), Decimal(size), Decimal(ask), Decimal(size), self.tick()
            ),
        )
        self.run()

    def trade(self, price: str, size: str = "1") -> None:
        self._n += 1
        self.publisher.publish(
            TRADES,
            TradeTick(
                BTC.instrument_id,
                Decimal(price),
                Decimal(size),
                AggressorSide.BUYER,
                f"X{self._n}",
                self.tick(),
            ),
        )
        self.run()

    def submit(
        self,
        side: OrderSide = OrderSide.BUY,
        qty: str = "1",
        price: str | None = "100.00",
        order_type: OrderType = OrderType.LIMIT,
        **kw: Any,
    ) -> OrderSpec:
        self._n += 1
        kw.setdefault("order_id", f"O{self._n}")
        kw.setdefault("instrument_id", BTC.instrument_id)
        spec = OrderSpec(
            client_order_id=kw["order_id"],
            account_id="ACC-1",
            side=side,
            order_type=order_type,
            quantity=Decimal(qty),
            price=None if price is None else Decimal(price),
            **kw,
        )
        self.command(SubmitOrder(spec, self.tick()))
        return spec

    def command(self, cmd: Any, topic: str = ORDER_COMMANDS) -> None:
        self.publisher.publish(topic, cmd)
        self.run()

    def events(self, topic: str) -> list[Any]:
        out = []
        for p in range(self.log.partitions(topic)):
            for rec in self.log.read(topic, p, 0, 100_000):
                name, fields = self.codec.decode_record(rec)
                out.append((rec.seq, from_record(name, fields)))
        return [e for _, e in sorted(out, key=lambda x: x[0])]

    def order_events(self, order_id: str) -> list[str]:
        return [type(e).__name__ for e in self.events("orders.events") if _order_id(e) == order_id]


def _order_id(e: Any) -> str | None:
    return e.order.order_id if hasattr(e, "order") else getattr(e, "order_id", None)
