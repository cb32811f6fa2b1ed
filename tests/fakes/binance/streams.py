"""Binance-shaped stream events and their fan-out to connected WebSocket clients.

User data goes to WebSocket API subscribers as ``{"subscriptionId": n, "event": {...}}`` (the recorded
``*_wrapped.json`` shape); market data to ``/ws/<stream>`` (raw) or ``/stream?streams=`` (combined,
``{"stream": ..., "data": ...}``) clients.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.fakes.binance.faults import Faults
from tests.fakes.binance.matching import Book, Fill, Order
from tests.fakes.binance.seed import fmt, recorded_event

CLOSE = object()  # queued to end a connection


def execution_report(order: Order, exec_type: str, fill: Fill | None, now: int) -> dict[str, Any]:
    """An ``executionReport`` with every field of the recorded one, in its order."""
    event: dict[str, Any] = recorded_event("execution_report_wrapped")["event"]
    canceled = exec_type == "CANCELED"
    event.update(
        E=now,
        s=order.symbol,
        c=order.cancel_client_order_id if canceled else order.client_order_id,
        S=order.side,
        o=order.type,
        f=order.time_in_force,
        q=fmt(order.qty),
        p=fmt(order.price),
        C=order.client_order_id if canceled else "",
        x=exec_type,
        X=order.status,
        i=order.order_id,
        l=fmt(fill.qty if fill else Decimal(0)),
        z=fmt(order.executed),
        L=fmt(fill.price if fill else Decimal(0)),
        n=fmt(fill.commission) if fill else "0",
        N=fill.commission_asset if fill else None,
        T=fill.time if fill else now,
        t=fill.trade_id if fill else -1,
        I=order.order_id * 2 + (fill.trade_id if fill else 0),
        w=order.is_open and order.type != "MARKET",
        m=fill.is_maker if fill else False,
        O=order.time,
        Z=fmt(order.quote),
        Y=fmt(fill.price * fill.qty) if fill else fmt(Decimal(0)),
        W=order.time,
    )
    if exec_type == "EXPIRED":  # the recorded expired report carries the expiry reason
        event["eR"] = "INSUFFICIENT_LIQUIDITY"
    return event


def account_position(assets: dict[str, tuple[Decimal, Decimal]], now: int) -> dict[str, Any]:
    return {
        "e": "outboundAccountPosition",
        "E": now,
        "u": now,
        "B": [{"a": a, "f": fmt(free), "l": fmt(locked)} for a, (free, locked) in assets.items()],
    }


def balance_update(asset: str, delta: Decimal, now: int) -> dict[str, Any]:
    return {"e": "balanceUpdate", "E": now, "a": asset, "d": fmt(delta), "T": now}


@dataclass(eq=False)
class Connection:
    """One WebSocket client: what it listens to and the queue its writer task drains."""

    queue: asyncio.Queue[object] = field(default_factory=asyncio.Queue)
    streams: set[str] = field(default_factory=set)
    combined: bool = False
    user_subscriptions: set[int] = field(default_factory=set)

    def send(self, message: object) -> None:
        self.queue.put_nowait(message)

    def close(self) -> None:
        self.queue.put_nowait(CLOSE)


class Streams:
    """Implements the engine's ``Sink``: shapes each happening and queues it to the listening clients."""

    def __init__(self, faults: Faults, books: dict[str, Book]) -> None:
        self.faults = faults
        self.books = books
        self.connections: set[Connection] = set()
        self.user_messages_sent = 0
        self._next_subscription = 0
        self._best: dict[str, tuple[object, ...]] = {}

    # --- subscriptions ---------------------------------------------------------------------------------

    def subscribe_user(self, conn: Connection) -> int:
        sid = self._next_subscription
        self._next_subscription += 1
        conn.user_subscriptions.add(sid)
        return sid

    def user_connections(self) -> list[Connection]:
        return [c for c in self.connections if c.user_subscriptions]

    def drop_market_streams(self) -> int:
        dropped = [c for c in self.connections if c.streams]
        for conn in dropped:
            conn.close()
        return len(dropped)

    def drop_user_streams(self) -> int:
        dropped = self.user_connections()
        for conn in dropped:
            conn.user_subscriptions.clear()
            conn.close()
        return len(dropped)

    # --- Sink ------------------------------------------------------------------------------------------

    def user_event(self, event: dict[str, Any]) -> None:
        listeners = self.user_connections()
        if not listeners:
            return  # nobody connected: the event is gone, as on Binance
        for _ in range(self.faults.user_copies()):
            self.user_messages_sent += 1
            for conn in listeners:
                for sid in sorted(conn.user_subscriptions):
                    conn.send({"subscriptionId": sid, "event": event})

    def order_update(self, order: Order, exec_type: str, fill: Fill | None, now: int) -> None:
        self.user_event(execution_report(order, exec_type, fill, now))

    def balances(self, assets: dict[str, tuple[Decimal, Decimal]], now: int) -> None:
        self.user_event(account_position(assets, now))

    def public_trade(
        self, symbol: str, trade_id: int, price: Decimal, qty: Decimal, buyer_maker: bool, now: int
    ) -> None:
        self.market(
            f"{symbol.lower()}@trade",
            {
                "e": "trade",
                "E": now,
                "s": symbol,
                "t": trade_id,
                "p": fmt(price),
                "q": fmt(qty),
                "T": now,
                "m": buyer_maker,
                "M": True,
            },
        )

    def depth(
        self,
        symbol: str,
        first: int,
        last: int,
        bids: list[tuple[Decimal, Decimal]],
        asks: list[tuple[Decimal, Decimal]],
        now: int,
    ) -> None:
        data = {
            "e": "depthUpdate",
            "E": now,
            "s": symbol,
            "U": first,
            "u": last,
            "b": [[fmt(p), fmt(q)] for p, q in bids],
            "a": [[fmt(p), fmt(q)] for p, q in asks],
        }
        if not self.faults.take_lost_depth():
            self.market(f"{symbol.lower()}@depth", data)
            self.market(f"{symbol.lower()}@depth@100ms", data)
        self._book_ticker(symbol)

    def _book_ticker(self, symbol: str) -> None:
        book = self.books[symbol]
        bid, ask = book.best("BUY"), book.best("SELL")
        best = (bid, ask)
        if self._best.get(symbol) == best:
            return
        self._best[symbol] = best
        zero = fmt(Decimal(0))
        self.market(
            f"{symbol.lower()}@bookTicker",
            {
                "u": book.last_update_id,
                "s": symbol,
                "b": fmt(bid[0]) if bid else zero,
                "B": fmt(bid[1]) if bid else zero,
                "a": fmt(ask[0]) if ask else zero,
                "A": fmt(ask[1]) if ask else zero,
            },
        )

    def market(self, stream: str, data: dict[str, Any]) -> None:
        for conn in self.connections:
            if stream in conn.streams:
                conn.send({"stream": stream, "data": data} if conn.combined else data)
