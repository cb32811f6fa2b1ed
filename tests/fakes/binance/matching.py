"""The fake's exchange: one account, a test-driven book per symbol, orders that rest and fill (exact Decimal).

The book holds the *other* side's liquidity, set by the test (``set_book``) or printed as trades
(``trade``). Our orders take from it on entry (taker) and are filled at their own price when the book
or a trade later crosses them (maker). Balances move with every fill; commission is taken in the asset
received, at the account's maker/taker rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from tests.fakes.binance import errors
from tests.fakes.binance.seed import SymbolRules

ZERO = Decimal(0)
EIGHT = Decimal("1e-8")
OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass
class Order:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    qty: Decimal
    time: int
    executed: Decimal = ZERO
    quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    cancel_client_order_id: str = ""

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


@dataclass(frozen=True)
class Fill:
    trade_id: int
    order: Order
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time: int


@dataclass
class Book:
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    last_update_id: int = 1000

    def best(self, side: str) -> tuple[Decimal, Decimal] | None:
        levels = self.bids if side == "BUY" else self.asks
        if not levels:
            return None
        price = max(levels) if side == "BUY" else min(levels)
        return price, levels[price]

    def sorted(self, side: str) -> list[tuple[Decimal, Decimal]]:
        levels = self.bids if side == "BUY" else self.asks
        return sorted(levels.items(), reverse=side == "BUY")


class Sink(Protocol):
    """Where the engine reports what happened (the streams shape and push it)."""

    def order_update(self, order: Order, exec_type: str, fill: Fill | None, now: int) -> None: ...
    def balances(self, assets: dict[str, tuple[Decimal, Decimal]], now: int) -> None: ...
    def public_trade(
        self, symbol: str, trade_id: int, price: Decimal, qty: Decimal, buyer_maker: bool, now: int
    ) -> None: ...
    def depth(
        self,
        symbol: str,
        first: int,
        last: int,
        bids: list[tuple[Decimal, Decimal]],
        asks: list[tuple[Decimal, Decimal]],
        now: int,
    ) -> None: ...


def crosses(order: Order, price: Decimal) -> bool:
    """Whether a level at ``price`` on the other side trades with ``order``."""
    if order.type == "MARKET":
        return True
    return price <= order.price if order.side == "BUY" else price >= order.price


def opposite(side: str) -> str:
    return "SELL" if side == "BUY" else "BUY"


class Engine:
    def __init__(
        self,
        rules: list[SymbolRules],
        sink: Sink,
        maker_rate: Decimal = Decimal("0.001"),
        taker_rate: Decimal = Decimal("0.001"),
    ) -> None:
        self.rules = {r.symbol: r for r in rules}
        self.books = {r.symbol: Book() for r in rules}
        self.sink = sink
        self.maker_rate = maker_rate
        self.taker_rate = taker_rate
        self.balances: dict[str, list[Decimal]] = {}
        self.orders: dict[int, Order] = {}
        self.fills: list[Fill] = []
        self.public_trades: dict[str, list[tuple[int, Decimal, Decimal, int, bool]]] = {
            r.symbol: [] for r in rules
        }
        self._next_order_id = 1
        self._next_trade_id = {r.symbol: 1 for r in rules}

    # --- account -------------------------------------------------------------------------------------

    def set_balance(self, asset: str, free: Decimal, locked: Decimal = ZERO) -> None:
        self.balances[asset] = [free, locked]

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        free, locked = self.balances.get(asset, [ZERO, ZERO])
        return free, locked

    def _move(self, asset: str, free: Decimal = ZERO, locked: Decimal = ZERO) -> None:
        entry = self.balances.setdefault(asset, [ZERO, ZERO])
        entry[0] += free
        entry[1] += locked

    def _report_balances(self, assets: set[str], now: int) -> None:
        self.sink.balances({a: self.balance(a) for a in sorted(assets)}, now)

    # --- orders --------------------------------------------------------------------------------------

    def symbol(self, symbol: str) -> SymbolRules:
        rules = self.rules.get(symbol)
        if rules is None:
            raise errors.invalid_symbol()
        return rules

    def check_filters(
        self, rules: SymbolRules, order_type: str, side: str, qty: Decimal, price: Decimal
    ) -> None:
        off_grid = price < rules.min_price or price > rules.max_price or price % rules.tick_size
        if order_type != "MARKET" and off_grid:
            raise errors.filter_failure("PRICE_FILTER")
        if qty < rules.min_qty or qty > rules.max_qty or (qty - rules.min_qty) % rules.step_size:
            raise errors.filter_failure("LOT_SIZE")
        reference = price
        if order_type == "MARKET":
            best = self.books[rules.symbol].best(opposite(side))
            reference = best[0] if best else ZERO
        if reference and reference * qty < rules.min_notional:
            raise errors.filter_failure("NOTIONAL")

    def place(
        self,
        symbol: str,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal,
        time_in_force: str,
        client_order_id: str,
        now: int,
    ) -> tuple[Order, list[Fill]]:
        rules = self.symbol(symbol)
        self.check_filters(rules, order_type, side, qty, price)
        if any(o.client_order_id == client_order_id and o.is_open for o in self.orders.values()):
            raise errors.duplicate_order()
        book = self.books[symbol]
        takeable = [(p, q) for p, q in book.sorted(opposite(side))]
        order = Order(
            symbol,
            self._next_order_id,
            client_order_id,
            side,
            order_type,
            time_in_force,
            price,
            qty,
            now,
            update_time=now,
        )
        takeable = [(p, q) for p, q in takeable if crosses(order, p)]
        if order_type == "LIMIT_MAKER" and takeable:
            raise errors.BinanceError(400, -2010, "Order would immediately match and take.")
        if side == "BUY":
            need = price * qty if order_type != "MARKET" else self._cost(takeable, qty)
            if self.balance(rules.quote)[0] < need:
                raise errors.insufficient_balance()
        elif self.balance(rules.base)[0] < qty:
            raise errors.insufficient_balance()
        self._next_order_id += 1
        self.orders[order.order_id] = order
        if order_type != "MARKET":
            self._lock(order, order.qty)
        self.sink.order_update(order, "NEW", None, now)
        if order_type != "MARKET":
            self._report_balances({rules.base, rules.quote}, now)
        available = sum((q for _, q in takeable), ZERO)
        if time_in_force == "FOK" and available < qty:
            self._close(order, "EXPIRED", now)
            return order, []
        fills = []
        for level_price, level_qty in takeable:
            if not order.remaining:
                break
            fills.append(self._fill(order, level_price, min(level_qty, order.remaining), False, now))
        if order.remaining and (order_type == "MARKET" or time_in_force in ("IOC", "FOK")):
            self._close(order, "EXPIRED", now)
        return order, fills

    @staticmethod
    def _cost(levels: list[tuple[Decimal, Decimal]], qty: Decimal) -> Decimal:
        cost, left = ZERO, qty
        for price, level_qty in levels:
            take = min(left, level_qty)
            cost, left = cost + price * take, left - take
        return cost

    def _lock(self, order: Order, qty: Decimal, sign: int = 1) -> None:
        rules = self.rules[order.symbol]
        if order.side == "BUY":
            amount = order.price * qty * sign
            self._move(rules.quote, free=-amount, locked=amount)
        else:
            self._move(rules.base, free=-qty * sign, locked=qty * sign)

    def _fill(
        self, order: Order, price: Decimal, qty: Decimal, is_maker: bool, now: int, consume: bool = True
    ) -> Fill:
        rules = self.rules[order.symbol]
        rate = self.maker_rate if is_maker else self.taker_rate
        resting = order.type != "MARKET"
        if order.side == "BUY":
            commission, asset = (qty * rate).quantize(EIGHT), rules.base
            if resting:
                self._move(rules.quote, free=(order.price - price) * qty, locked=-order.price * qty)
            else:
                self._move(rules.quote, free=-price * qty)
            self._move(rules.base, free=qty - commission)
        else:
            commission, asset = (price * qty * rate).quantize(EIGHT), rules.quote
            if resting:
                self._move(rules.base, locked=-qty)
            else:
                self._move(rules.base, free=-qty)
            self._move(rules.quote, free=price * qty - commission)
        order.executed += qty
        order.quote += price * qty
        order.update_time = now
        order.status = "FILLED" if not order.remaining else "PARTIALLY_FILLED"
        trade_id = self._next_trade_id[order.symbol]
        self._next_trade_id[order.symbol] += 1
        fill = Fill(trade_id, order, price, qty, commission, asset, is_maker, now)
        self.fills.append(fill)
        if consume:
            self._consume(order.symbol, opposite(order.side), None if is_maker else price, qty, now)
        buyer_maker = (order.side == "BUY") == is_maker
        self.public_trades[order.symbol].append((trade_id, price, qty, now, buyer_maker))
        self.sink.public_trade(order.symbol, trade_id, price, qty, buyer_maker, now)
        self.sink.order_update(order, "TRADE", fill, now)
        self._report_balances({rules.base, rules.quote}, now)
        return fill

    def _consume(self, symbol: str, side: str, at: Decimal | None, qty: Decimal, now: int) -> None:
        """Take ``qty`` off the book's ``side``: at one level (taker) or from the best levels (maker)."""
        book = self.books[symbol]
        levels = book.bids if side == "BUY" else book.asks
        changes: dict[Decimal, Decimal] = {}
        prices = [at] if at is not None else [p for p, _ in book.sorted(side)]
        left = qty
        for price in prices:
            if left <= 0 or price not in levels:
                continue
            take = min(left, levels[price])
            levels[price] -= take
            left -= take
            changes[price] = levels[price]
            if not levels[price]:
                del levels[price]
        if changes:
            self._publish_depth(
                symbol, changes if side == "BUY" else {}, changes if side == "SELL" else {}, now
            )

    def _close(self, order: Order, status: str, now: int) -> None:
        if order.type != "MARKET":
            self._lock(order, order.remaining, sign=-1)
        order.status = status
        order.update_time = now
        self.sink.order_update(order, "CANCELED" if status == "CANCELED" else "EXPIRED", None, now)
        rules = self.rules[order.symbol]
        self._report_balances({rules.base, rules.quote}, now)

    def find(self, symbol: str, order_id: int | None, client_order_id: str | None) -> Order | None:
        for order in self.orders.values():
            if order.symbol != symbol:
                continue
            if order_id is not None and order.order_id == order_id:
                return order
            if order_id is None and client_order_id is not None and order.client_order_id == client_order_id:
                return order
        return None

    def cancel(self, order: Order, now: int, cancel_client_order_id: str = "") -> Order:
        if not order.is_open:
            raise errors.unknown_order_cancel()
        order.cancel_client_order_id = cancel_client_order_id
        self._close(order, "CANCELED", now)
        return order

    def open_orders(self, symbol: str | None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and symbol in (None, o.symbol)]

    # --- the market, driven by the test ----------------------------------------------------------------

    def set_book(
        self, symbol: str, bids: dict[Decimal, Decimal], asks: dict[Decimal, Decimal], now: int
    ) -> None:
        book = self.books[symbol]
        bid_changes = _diff(book.bids, bids)
        ask_changes = _diff(book.asks, asks)
        book.bids, book.asks = dict(bids), dict(asks)
        if bid_changes or ask_changes:
            self._publish_depth(symbol, bid_changes, ask_changes, now)
        self._match_resting(symbol, now)

    def _publish_depth(
        self, symbol: str, bids: dict[Decimal, Decimal], asks: dict[Decimal, Decimal], now: int
    ) -> None:
        book = self.books[symbol]
        first = book.last_update_id + 1
        book.last_update_id += len(bids) + len(asks)
        self.sink.depth(
            symbol, first, book.last_update_id, sorted(bids.items(), reverse=True), sorted(asks.items()), now
        )

    def _match_resting(self, symbol: str, now: int) -> None:
        book = self.books[symbol]
        for order in sorted(self.open_orders(symbol), key=lambda o: o.order_id):
            available = sum((q for p, q in book.sorted(opposite(order.side)) if crosses(order, p)), ZERO)
            if available:
                self._fill(order, order.price, min(available, order.remaining), True, now)

    def trade(self, symbol: str, price: Decimal, qty: Decimal, now: int) -> None:
        """A trade prints at ``price``: crossed resting orders fill first (at their price), up to ``qty``."""
        self.symbol(symbol)
        left = qty
        for order in sorted(self.open_orders(symbol), key=lambda o: o.order_id):
            if left and crosses(order, price):
                take = min(left, order.remaining)
                self._fill(order, order.price, take, True, now, consume=False)
                left -= take
        if left:
            trade_id = self._next_trade_id[symbol]
            self._next_trade_id[symbol] += 1
            self.public_trades[symbol].append((trade_id, price, left, now, True))
            self.sink.public_trade(symbol, trade_id, price, left, True, now)

    def fill_order(self, order: Order, qty: Decimal | None, now: int) -> Fill:
        """Fill a resting order at its own price, as if a taker came (the book is left as it is)."""
        take = order.remaining if qty is None else min(qty, order.remaining)
        return self._fill(order, order.price, take, True, now, consume=False)

    def trades_of(self, symbol: str) -> list[Fill]:
        return [f for f in self.fills if f.order.symbol == symbol]


def _diff(old: dict[Decimal, Decimal], new: dict[Decimal, Decimal]) -> dict[Decimal, Decimal]:
    changes = {p: q for p, q in new.items() if old.get(p) != q}
    changes.update({p: ZERO for p in old if p not in new})
    return changes
