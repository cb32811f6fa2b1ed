"""`BinanceExecution` end to end against the protocol-true fake Binance (REST, WebSocket API user data)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial
from typing import TypeVar

import pytest

from meltica.domain.instruments import Instrument
from meltica.domain.orders.model import OrderStatus
from meltica.domain.values import LiquiditySide, OrderType
from meltica.events.envelope import order_id_for
from meltica.venues.binance import BinanceConfig, BinanceExecution, execution
from meltica.venues.port import (
    VenueError,
    VenueOrder,
    VenueRejectedError,
    VenueThrottledError,
    VenueTrade,
    VenueUnavailableError,
)
from tests.fakes.binance.fake import FakeBinance
from tests.venues.scenario import Clock, Stream, dropped_then_followed
from tests.venues.scenario import run as run_scenario
from tests.venues.scenario import spec as order_spec

pytest.importorskip("ccxt.pro")

T = TypeVar("T")
BTC = "BTCUSDT.BINANCE"


def adapter_for(
    fake: FakeBinance, clock: Callable[[], float] | None = None, secret: str | None = None
) -> BinanceExecution:
    config = BinanceConfig(
        api_key=fake.api_key, secret=secret or fake.secret, rest_url=fake.rest_url, ws_url=fake.ws_url
    )
    return BinanceExecution(config) if clock is None else BinanceExecution(config, clock=clock)


def run(fake: FakeBinance, scenario: Callable[[BinanceExecution], Awaitable[T]], **kw: object) -> T:
    return run_scenario(lambda: adapter_for(fake, **kw), scenario)  # type: ignore[arg-type]


spec = partial(order_spec, instrument_id=BTC)


def test_submit_then_partial_fill_and_fill_arrive_over_updates(fake_binance: FakeBinance) -> None:
    order = spec("fill-1")

    async def scenario(
        adapter: BinanceExecution,
    ) -> tuple[VenueOrder, Stream, list[VenueTrade], list[VenueTrade]]:
        stream = Stream(adapter.updates())
        await stream.live()
        fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"51000": "1"})
        acked = await adapter.submit(order)
        fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"49990": "0.001", "51000": "1"})
        fake_binance.trade("BTCUSDT", "49999", "5")
        await stream.until(lambda: any(o.status is OrderStatus.FILLED for o in stream.orders(order.order_id)))
        await stream.stop()
        first = stream.trades()[0].trade_id
        return acked, stream, await adapter.trades_since(BTC, first), await adapter.trades_since(BTC, None)

    acked, stream, after_first, every = run(fake_binance, scenario)
    assert (acked.order_id, acked.status, acked.quantity, acked.price) == (
        order.order_id,
        OrderStatus.NEW,
        Decimal("0.003"),
        Decimal("50000"),
    )
    assert (acked.filled_qty, acked.avg_px) == (0, None)
    states = [(o.status, o.filled_qty) for o in stream.orders(order.order_id)]
    assert states == [
        (OrderStatus.NEW, Decimal(0)),
        (OrderStatus.PARTIALLY_FILLED, Decimal("0.001")),
        (OrderStatus.FILLED, Decimal("0.003")),
    ]
    assert stream.orders(order.order_id)[-1].avg_px == Decimal("50000")
    trades = stream.trades()
    assert [(t.order_id, t.quantity, t.price, t.liquidity) for t in trades] == [
        (order.order_id, Decimal("0.001"), Decimal("50000"), LiquiditySide.MAKER),
        (order.order_id, Decimal("0.002"), Decimal("50000"), LiquiditySide.MAKER),
    ]
    assert (trades[1].fee, trades[1].fee_currency) == (Decimal("0.000002"), "BTC")
    assert all(t.venue_order_id == acked.venue_order_id for t in trades)
    assert [t.trade_id for t in after_first] == [trades[1].trade_id]
    assert [(t.trade_id, t.order_id, t.quantity) for t in every] == [
        (t.trade_id, t.order_id, t.quantity) for t in trades
    ]
    balances = [i for i in stream.items if isinstance(i, tuple)]
    assert ("USDT", Decimal(10000), Decimal(0)) in [(b.asset, b.free, b.locked) for b in balances[0]]
    assert ("USDT", Decimal(9850), Decimal(0)) in [(b.asset, b.free, b.locked) for b in balances[-1]]


def test_market_order_fills_at_once(fake_binance: FakeBinance) -> None:
    fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"50000": "0.001", "50010": "1"})
    order = spec("market-1", quantity="0.002", price=None, order_type=OrderType.MARKET)
    placed = run(fake_binance, lambda adapter: adapter.submit(order))
    assert (placed.status, placed.filled_qty, placed.avg_px, placed.price) == (
        OrderStatus.FILLED,
        Decimal("0.002"),
        Decimal("50005"),
        None,
    )


def test_cancel_by_client_id_and_the_stream_names_meltica_order(fake_binance: FakeBinance) -> None:
    order = spec("cancel-1", price="40000")

    async def scenario(adapter: BinanceExecution) -> tuple[VenueOrder, VenueOrder | None, Stream, str]:
        stream = Stream(adapter.updates())
        await stream.live()
        await adapter.submit(order)
        canceled = await adapter.cancel(order.order_id, BTC)
        await stream.until(
            lambda: any(o.status is OrderStatus.CANCELED for o in stream.orders(order.order_id))
        )
        queried = await adapter.order(order.order_id, BTC)
        with pytest.raises(VenueRejectedError) as again:
            await adapter.cancel(order.order_id, BTC)
        assert await adapter.open_orders() == []
        await stream.stop()
        return canceled, queried, stream, again.value.reason

    canceled, queried, stream, again = run(fake_binance, scenario)
    assert (canceled.order_id, canceled.status) == (order.order_id, OrderStatus.CANCELED)
    assert queried is not None
    assert queried.status is OrderStatus.CANCELED
    assert [o.status for o in stream.orders(order.order_id)] == [OrderStatus.NEW, OrderStatus.CANCELED]
    assert again == "unknown_order"
    assert fake_binance.balance("USDT") == (Decimal(10000), Decimal(0))


def test_amend_cancel_replaces_and_keeps_meltica_order_id(fake_binance: FakeBinance) -> None:
    order = spec("amend-1", price="40000")

    async def scenario(adapter: BinanceExecution) -> tuple[VenueOrder, VenueOrder, Stream, list[VenueOrder]]:
        stream = Stream(adapter.updates())
        await stream.live()
        acked = await adapter.submit(order)
        fake_binance.fill_order(int(acked.venue_order_id), "0.001")
        amended = await adapter.amend(order, Decimal("0.004"), Decimal("41000"))
        listed = await adapter.open_orders()
        [resting] = fake_binance.open_orders()
        assert (resting.qty, resting.price) == (Decimal("0.003"), Decimal("41000"))  # the leaves, re-placed
        fake_binance.fill_order(int(amended.venue_order_id))
        await stream.until(lambda: any(o.status is OrderStatus.FILLED for o in stream.orders(order.order_id)))
        await stream.stop()
        return acked, amended, stream, listed

    acked, amended, stream, listed = run(fake_binance, scenario)
    assert amended.order_id == order.order_id
    assert amended.venue_order_id != acked.venue_order_id
    assert (amended.status, amended.quantity, amended.filled_qty, amended.price) == (
        OrderStatus.NEW,
        Decimal("0.004"),
        Decimal("0.001"),
        Decimal("41000"),
    )
    assert [(o.order_id, o.quantity, o.filled_qty) for o in listed] == [
        (order.order_id, Decimal("0.004"), Decimal("0.001"))
    ]
    # the replaced venue order's cancel is not Meltica's order's
    assert OrderStatus.CANCELED not in [o.status for o in stream.orders(order.order_id)]
    final = stream.orders(order.order_id)[-1]
    assert (final.status, final.quantity, final.filled_qty) == (
        OrderStatus.FILLED,
        Decimal("0.004"),
        Decimal("0.004"),
    )
    assert final.avg_px == Decimal("40750")  # 0.001 at 40000, 0.003 at 41000
    assert [(t.order_id, t.quantity) for t in stream.trades()] == [
        (order.order_id, Decimal("0.001")),
        (order.order_id, Decimal("0.003")),
    ]

    async def restarted(adapter: BinanceExecution) -> tuple[VenueOrder | None, list[VenueTrade]]:
        return await adapter.order(order.order_id, BTC), await adapter.trades_since(BTC, None)

    # a fresh process finds the chain at the venue: the latest venue order, the earlier one's fills
    queried, trades = run(fake_binance, restarted)
    assert queried is not None
    assert (queried.status, queried.quantity, queried.filled_qty, queried.venue_order_id) == (
        OrderStatus.FILLED,
        Decimal("0.004"),
        Decimal("0.004"),
        amended.venue_order_id,
    )
    assert [t.order_id for t in trades] == [order.order_id, order.order_id]


def test_amend_whose_new_order_fails_answers_the_cancel(fake_binance: FakeBinance) -> None:
    order = spec("amend-2", price="40000")

    async def scenario(adapter: BinanceExecution) -> tuple[VenueOrder, VenueOrder | None, str]:
        await adapter.submit(order)
        answer = await adapter.amend(order, Decimal("1"), None)  # 40000 USDT: more than the account has
        with pytest.raises(VenueRejectedError) as gone:
            await adapter.amend(order, Decimal("0.002"), None)
        return answer, await adapter.order(order.order_id, BTC), gone.value.reason

    answer, queried, gone = run(fake_binance, scenario)
    assert (answer.order_id, answer.status) == (order.order_id, OrderStatus.CANCELED)
    assert answer.reason.startswith("insufficient_balance")
    assert queried is not None
    assert queried.status is OrderStatus.CANCELED
    assert gone == "unknown_order"
    assert fake_binance.open_orders() == []


@pytest.mark.parametrize(
    ("quantity", "price", "reason"),
    [
        ("1", "50000", "insufficient_balance"),
        ("0.00001", "50000", "min_notional"),
        ("0.001", "50000.001", "price_filter"),
        ("0.0000015", "50000", "lot_size"),
    ],
)
def test_rejects_are_mapped(fake_binance: FakeBinance, quantity: str, price: str, reason: str) -> None:
    async def scenario(adapter: BinanceExecution) -> VenueRejectedError:
        with pytest.raises(VenueRejectedError) as rejected:
            await adapter.submit(spec("reject-1", quantity=quantity, price=price))
        return rejected.value

    rejected = run(fake_binance, scenario)
    assert rejected.reason == reason, rejected.detail
    assert fake_binance.open_orders() == []


def test_would_take_duplicate_and_unknown_instrument(fake_binance: FakeBinance) -> None:
    fake_binance.set_book("BTCUSDT", {"49000": "1"}, {"51000": "1"})

    async def reason(call: Awaitable[object]) -> str:
        with pytest.raises(VenueRejectedError) as rejected:
            await call
        return rejected.value.reason

    async def scenario(adapter: BinanceExecution) -> list[str]:
        resting = spec("dup-1", price="40000")
        await adapter.submit(resting)
        return [
            await reason(adapter.submit(spec("maker-1", price="51000", post_only=True))),
            await reason(adapter.submit(resting)),
            await reason(adapter.submit(spec("x-1", instrument_id="XYZUSDT.BINANCE"))),
        ]

    assert run(fake_binance, scenario) == ["would_take", "duplicate_order", "unknown_instrument"]


def test_429_throttles_and_calls_are_refused_until_retry_after(fake_binance: FakeBinance) -> None:
    clock = Clock()

    async def scenario(adapter: BinanceExecution) -> tuple[float, float, int]:
        fake_binance.throttle_next(1, retry_after=7)
        with pytest.raises(VenueThrottledError) as throttled:
            await adapter.submit(spec("throttle-1", price="40000"))
        sent = len(fake_binance.requests)
        clock.now += 5
        with pytest.raises(VenueThrottledError) as refused:
            await adapter.balances()
        assert len(fake_binance.requests) == sent  # refused here, not sent
        clock.now += 2
        await adapter.balances()
        return throttled.value.retry_after, refused.value.retry_after, len(fake_binance.requests) - sent

    retry_after, left, sent = run(fake_binance, scenario, clock=clock)
    assert (retry_after, left, sent) == (7, 2, 1)
    assert fake_binance.open_orders() == []


def test_5xx_and_an_unreachable_venue_are_unavailable(fake_binance: FakeBinance) -> None:
    async def scenario(adapter: BinanceExecution) -> int:
        fake_binance.fail_next(1, status=503)
        with pytest.raises(VenueUnavailableError):
            await adapter.balances()
        return len(await adapter.balances())

    assert run(fake_binance, scenario) == 2  # USDT and BTC once the venue answers again

    async def unreachable() -> None:
        adapter = BinanceExecution(
            BinanceConfig(api_key="k", secret="s", rest_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9")
        )
        try:
            with pytest.raises(VenueUnavailableError):
                await adapter.connect()
        finally:
            await adapter.close()

    asyncio.run(unreachable())


def test_wrong_secret_is_rejected_by_the_venue(fake_binance: FakeBinance) -> None:
    async def scenario() -> VenueRejectedError:
        adapter = adapter_for(fake_binance, secret="not-the-secret")
        try:
            with pytest.raises(VenueRejectedError) as rejected:
                await adapter.connect()
            return rejected.value
        finally:
            await adapter.close()

    rejected = asyncio.run(scenario())
    assert (rejected.reason, rejected.detail) == (
        "venue_rejected",
        "-1022: Signature for this request is not valid.",
    )


def test_dropped_user_stream_ends_updates_and_a_new_one_follows_again(fake_binance: FakeBinance) -> None:
    order = spec("after-drop-1", price="40000")

    def scenario(adapter: BinanceExecution) -> Awaitable[tuple[VenueError | None, list[OrderStatus]]]:
        return dropped_then_followed(adapter, fake_binance.drop_user_stream, order)

    error, statuses = run(fake_binance, scenario)
    assert isinstance(error, VenueUnavailableError)
    assert statuses == [OrderStatus.NEW]


def test_order_unknown_to_the_venue_is_none_and_weight_is_reported(fake_binance: FakeBinance) -> None:
    async def scenario(adapter: BinanceExecution) -> tuple[VenueOrder | None, int]:
        return await adapter.order(order_id_for("acc-1", "never"), BTC), adapter.weight_used

    found, weight = run(fake_binance, scenario)
    assert found is None
    assert weight == fake_binance.weights.used > 0  # exchangeInfo, account, the order query


def test_instruments_carry_the_filters(fake_binance: FakeBinance) -> None:
    async def scenario(adapter: BinanceExecution) -> dict[str, Instrument]:
        return {i.instrument_id: i for i in await adapter.instruments()}

    found = run(fake_binance, scenario)
    assert sorted(found) == ["BTCUSDT.BINANCE", "ETHBTC.BINANCE", "ETHUSDT.BINANCE"]
    btc, ethbtc = found[BTC], found["ETHBTC.BINANCE"]
    assert (btc.symbol, btc.venue, btc.base_currency, btc.quote_currency) == (
        "BTCUSDT",
        "BINANCE",
        "BTC",
        "USDT",
    )
    assert (btc.price_increment, btc.price_precision, btc.size_increment, btc.size_precision) == (
        Decimal("0.01"),
        2,
        Decimal("0.00001"),
        5,
    )
    assert (btc.min_quantity, btc.max_quantity, btc.min_notional) == (Decimal("0.00001"), 9000, 5)
    assert (btc.maker_fee, btc.taker_fee) == (Decimal("0.001"), Decimal("0.001"))
    assert (ethbtc.price_increment, ethbtc.min_notional) == (Decimal("0.00001"), Decimal("0.0001"))


def test_trades_since_pages_through_every_fill_oldest_first(
    fake_binance: FakeBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execution, "TRADES_PAGE", 2)
    order = spec("pages-1", quantity="0.005", price="40000")

    async def scenario(adapter: BinanceExecution) -> tuple[list[VenueTrade], list[VenueTrade]]:
        placed = await adapter.submit(order)
        for _ in range(5):
            fake_binance.fill_order(int(placed.venue_order_id), "0.001")
        return await adapter.trades_since(BTC, "0"), await adapter.trades_since(BTC, "3")

    every, after_third = run(fake_binance, scenario)
    assert [t.trade_id for t in every] == ["1", "2", "3", "4", "5"]
    assert {t.order_id for t in every} == {order.order_id}
    assert [t.trade_id for t in after_third] == ["4", "5"]
