"""`OkxExecution` end to end against the fake OKX (signed REST v5, the private `orders` channel)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TypeVar

import pytest

from meltica.domain.orders.model import OrderStatus
from meltica.domain.values import LiquiditySide, OrderType, TimeInForce
from meltica.events.envelope import order_id_for
from meltica.venues.okx import client_ids, wire
from meltica.venues.okx.config import OkxConfig
from meltica.venues.okx.execution import OkxExecution
from meltica.venues.port import (
    VenueError,
    VenueOrder,
    VenueRejectedError,
    VenueThrottledError,
    VenueTrade,
    VenueUnavailableError,
)
from tests.fakes.okx.fake import FakeOkx
from tests.venues.scenario import WAIT, Clock, Stream, dropped_then_followed
from tests.venues.scenario import run as run_scenario
from tests.venues.scenario import spec as order_spec

pytest.importorskip("ccxt.pro")

T = TypeVar("T")
BTC = "BTC-USD.OKX"
HTTP = Path(__file__).resolve().parents[1] / "data" / "okx" / "spot" / "http_json"


@pytest.fixture
def fake() -> Iterator[FakeOkx]:
    with FakeOkx() as started:
        started.set_balance("USD", "10000")
        started.set_balance("BTC", "1")
        started.set_book("BTC-USD", {"49000": "1"}, {"51000": "1"})
        yield started


def adapter_for(
    fake: FakeOkx,
    clock: Callable[[], float] | None = None,
    *,
    secret: str | None = None,
    passphrase: str | None = None,
) -> OkxExecution:
    config = OkxConfig(
        api_key=fake.api_key,
        secret=secret or fake.secret,
        passphrase=passphrase or fake.passphrase,
        rest_url=fake.rest_url,
        ws_url=fake.ws_url,
    )
    return OkxExecution(config) if clock is None else OkxExecution(config, clock=clock)


def run(fake: FakeOkx, scenario: Callable[[OkxExecution], Awaitable[T]], **kw: object) -> T:
    return run_scenario(lambda: adapter_for(fake, **kw), scenario)  # type: ignore[arg-type]


spec = partial(order_spec, instrument_id=BTC)


# -- pure ------------------------------------------------------------------------------------------------
def test_client_ids_carry_meltica_order_ids_both_ways() -> None:
    uid = order_id_for("acc-1", "x")
    cid = client_ids.client_id(uid)
    assert len(cid) == 23
    assert cid.isalnum()
    assert client_ids.order_id_of(cid) == uid
    assert client_ids.client_id("abc123") == "abc123" == client_ids.order_id_of("abc123")
    assert client_ids.order_id_of("client_order_123") == "client_order_123"  # placed outside Meltica
    for bad in ("has-dash", "x" * 33, cid):
        with pytest.raises(ValueError, match="not an OKX client order id"):
            client_ids.client_id(bad)


def test_recorded_answers_read_as_the_port_values() -> None:
    pending = json.loads((HTTP / "http_get_orders_pending.json").read_text())["data"][0]
    order = wire.order_of(pending, "BTC-USDT-SWAP.OKX", "client-order-1")
    assert (order.venue_order_id, order.status, order.quantity, order.price) == (
        "1234567890123456789",
        OrderStatus.NEW,
        Decimal("0.1"),
        Decimal(103500),
    )
    assert (order.filled_qty, order.avg_px, order.ts) == (Decimal(0), None, 1746947317000 * 1_000_000)
    fill = json.loads((HTTP / "http_transaction_detail.json").read_text())
    trade = wire.trade_of(fill, "BTC-USDT.OKX", "client_123")
    assert (trade.trade_id, trade.quantity, trade.price, trade.liquidity) == (
        "123456789",
        Decimal("0.001"),
        Decimal("42000.5"),
        LiquiditySide.TAKER,
    )
    assert (trade.fee, trade.fee_currency) == (Decimal("-0.042"), "USDT")  # a positive fee is a rebate
    push = json.loads((HTTP.parent / "ws_json" / "ws_orders.json").read_text())["data"][0]
    filled, fill = wire.order_of(push, "X.OKX", "o"), wire.trade_of(push, "X.OKX", "o")
    assert (filled.status, filled.filled_qty, filled.avg_px, filled.price) == (
        OrderStatus.FILLED,
        Decimal("0.03"),
        Decimal("103698.9"),
        None,
    )
    assert (fill.trade_id, fill.quantity, fill.fee, fill.fee_currency, fill.liquidity) == (
        "1518905529",
        Decimal("0.03"),
        Decimal("0.021776769"),
        "USDT",
        LiquiditySide.MAKER,
    )
    details = json.loads((HTTP / "http_get_account_balance.json").read_text())["data"][0]["details"]
    [usdt] = [b for b in wire.balances_of(details) if b.asset == "USDT"]
    assert (usdt.free, usdt.locked) == (Decimal("94.42612990333333"), Decimal("5.468566666666667"))


def test_order_params_for_each_kind() -> None:
    cid = "abc"
    assert wire.order_params(spec("a"), "BTC-USD", cid) == {
        "instId": "BTC-USD",
        "tdMode": "cash",
        "clOrdId": cid,
        "side": "buy",
        "sz": "0.003",
        "px": "50000",
        "ordType": "limit",
    }
    assert wire.order_params(spec("a", tif=TimeInForce.IOC), "BTC-USD", cid)["ordType"] == "ioc"
    assert wire.order_params(spec("a", post_only=True), "BTC-USD", cid)["ordType"] == "post_only"
    market = wire.order_params(spec("a", price=None, order_type=OrderType.MARKET), "BTC-USD", cid)
    assert (market["ordType"], market["tgtCcy"], "px" in market) == ("market", "base_ccy", False)
    with pytest.raises(VenueRejectedError, match="no time in force"):
        wire.order_params(spec("a", tif=TimeInForce.DAY), "BTC-USD", cid)


# -- against the fake ---------------------------------------------------------------------------------------
def test_submit_then_partial_fill_and_fill_arrive_over_updates(fake: FakeOkx) -> None:
    order = spec("fill-1")
    cid = client_ids.client_id(order.order_id)

    async def scenario(
        adapter: OkxExecution,
    ) -> tuple[VenueOrder, Stream, list[VenueTrade], list[VenueTrade]]:
        stream = Stream(adapter.updates())
        await stream.live()
        acked = await adapter.submit(order)
        fake.fill(cid, "0.001")
        fake.fill(cid)
        await stream.until(lambda: any(o.status is OrderStatus.FILLED for o in stream.orders(order.order_id)))
        await stream.stop()
        first = stream.trades()[0].trade_id
        return acked, stream, await adapter.trades_since(BTC, first), await adapter.trades_since(BTC, None)

    acked, stream, after_first, every = run(fake, scenario)
    assert (acked.order_id, acked.status, acked.quantity, acked.price, acked.filled_qty, acked.avg_px) == (
        order.order_id,
        OrderStatus.NEW,
        Decimal("0.003"),
        Decimal(50000),
        Decimal(0),
        None,
    )
    states = [(o.status, o.filled_qty) for o in stream.orders(order.order_id)]
    assert states == [
        (OrderStatus.NEW, Decimal(0)),
        (OrderStatus.PARTIALLY_FILLED, Decimal("0.001")),
        (OrderStatus.FILLED, Decimal("0.003")),
    ]
    assert stream.orders(order.order_id)[-1].avg_px == Decimal(50000)
    trades = stream.trades()
    assert [(t.order_id, t.quantity, t.price, t.liquidity) for t in trades] == [
        (order.order_id, Decimal("0.001"), Decimal(50000), LiquiditySide.MAKER),
        (order.order_id, Decimal("0.002"), Decimal(50000), LiquiditySide.MAKER),
    ]
    assert (trades[1].fee, trades[1].fee_currency) == (Decimal("0.0000016"), "BTC")
    assert all(t.venue_order_id == acked.venue_order_id for t in trades)
    assert [t.trade_id for t in after_first] == [trades[1].trade_id]
    assert [(t.trade_id, t.order_id, t.quantity, t.fee) for t in every] == [
        (t.trade_id, t.order_id, t.quantity, t.fee) for t in trades
    ]
    [balances] = [i for i in stream.items if isinstance(i, tuple)]
    assert ("USD", Decimal(10000), Decimal(0)) in [(b.asset, b.free, b.locked) for b in balances]
    assert fake.balance("USD") == (Decimal(9850), Decimal(0))


def test_market_order_fills_at_once_as_a_taker(fake: FakeOkx) -> None:
    async def scenario(adapter: OkxExecution) -> tuple[VenueOrder, list[VenueTrade]]:
        done = await adapter.submit(spec("mkt-1", quantity="0.01", price=None, order_type=OrderType.MARKET))
        return done, await adapter.trades_since(BTC, None)

    done, trades = run(fake, scenario)
    assert (done.status, done.filled_qty, done.avg_px, done.price) == (
        OrderStatus.FILLED,
        Decimal("0.01"),
        Decimal(51000),
        None,
    )
    assert [(t.quantity, t.price, t.liquidity) for t in trades] == [
        (Decimal("0.01"), Decimal(51000), LiquiditySide.TAKER)
    ]


def test_cancel_and_amend_by_client_order_id(fake: FakeOkx) -> None:
    order = spec("amend-1", quantity="0.002", price="40000")

    async def scenario(
        adapter: OkxExecution,
    ) -> tuple[VenueOrder, VenueOrder, VenueOrder, list[VenueOrder], Stream]:
        stream = Stream(adapter.updates())
        await stream.live()
        placed = await adapter.submit(order)
        fake.fill(client_ids.client_id(order.order_id), "0.001")
        amended = await adapter.amend(order, Decimal("0.005"), Decimal("40100"))
        pending = await adapter.open_orders()
        canceled = await adapter.cancel(order.order_id, BTC)
        await stream.until(
            lambda: any(o.status is OrderStatus.CANCELED for o in stream.orders(order.order_id))
        )
        await stream.stop()
        return placed, amended, canceled, pending, stream

    placed, amended, canceled, pending, stream = run(fake, scenario)
    assert amended.venue_order_id == placed.venue_order_id == canceled.venue_order_id  # amended in place
    assert (amended.status, amended.quantity, amended.price, amended.filled_qty) == (
        OrderStatus.PARTIALLY_FILLED,
        Decimal("0.005"),
        Decimal(40100),
        Decimal("0.001"),
    )
    assert [(o.order_id, o.quantity) for o in pending] == [(order.order_id, Decimal("0.005"))]
    assert (canceled.status, canceled.filled_qty) == (OrderStatus.CANCELED, Decimal("0.001"))
    assert [o.status for o in stream.orders(order.order_id)] == [
        OrderStatus.NEW,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.CANCELED,
    ]
    assert fake.balance("USD") == (Decimal(10000) - Decimal(40), Decimal(0))


@pytest.mark.parametrize(
    ("quantity", "price", "reason"),
    [
        ("10", "50000", "insufficient_balance"),
        ("0.000001", "50000", "lot_size"),  # below minSz 0.00001
        ("0.0000100001", "50000", "lot_size"),  # not on lotSz 0.00000001
        ("0.001", "50000.05", "price_filter"),  # not on tickSz 0.1
    ],
)
def test_rejects_are_mapped(fake: FakeOkx, quantity: str, price: str, reason: str) -> None:
    async def scenario(adapter: OkxExecution) -> VenueRejectedError:
        with pytest.raises(VenueRejectedError) as rejected:
            await adapter.submit(spec("reject-1", quantity=quantity, price=price))
        return rejected.value

    rejected = run(fake, scenario)
    assert rejected.reason == reason, rejected.detail
    assert fake.orders() == []


def test_duplicate_unknown_order_and_unknown_instrument(fake: FakeOkx) -> None:
    async def reason(call: Awaitable[object]) -> str:
        with pytest.raises(VenueRejectedError) as rejected:
            await call
        return rejected.value.reason

    async def scenario(adapter: OkxExecution) -> tuple[list[str], VenueOrder | None, VenueOrder]:
        resting = spec("dup-1", price="40000")
        await adapter.submit(resting)
        reasons = [
            await reason(adapter.submit(resting)),
            await reason(adapter.cancel(order_id_for("acc-1", "never"), BTC)),
            await reason(adapter.amend(spec("never"), Decimal(1), None)),
            await reason(adapter.submit(spec("x-1", instrument_id="DOGE-USD.OKX"))),
        ]
        maker = await adapter.submit(spec("maker-1", price="51000", post_only=True))
        return reasons, await adapter.order(order_id_for("acc-1", "never"), BTC), maker

    reasons, unknown, maker = run(fake, scenario)
    assert reasons == ["duplicate_order", "unknown_order", "unknown_order", "unknown_instrument"]
    assert unknown is None
    assert maker.status is OrderStatus.CANCELED  # OKX cancels a post-only order that would take


def test_429_throttles_and_calls_are_refused_until_retry(fake: FakeOkx) -> None:
    clock = Clock()

    async def scenario(adapter: OkxExecution) -> tuple[float, float, int]:
        fake.throttle_next(1)
        with pytest.raises(VenueThrottledError) as throttled:
            await adapter.submit(spec("throttle-1", price="40000"))
        sent = len(fake.requests)
        clock.now += 1.5
        with pytest.raises(VenueThrottledError) as refused:
            await adapter.balances()
        assert len(fake.requests) == sent  # refused here, not sent
        clock.now += 0.5
        await adapter.balances()
        return throttled.value.retry_after, refused.value.retry_after, len(fake.requests) - sent

    assert run(fake, scenario, clock=clock) == (2.0, 0.5, 1)
    assert fake.orders() == []


def test_5xx_is_unavailable_and_bad_credentials_are_rejected(fake: FakeOkx) -> None:
    async def scenario(adapter: OkxExecution) -> int:
        fake.fail_next(1, status=503)
        with pytest.raises(VenueUnavailableError):
            await adapter.balances()
        return len(await adapter.balances())

    assert run(fake, scenario) == 2

    async def refused(secret: str | None = None, passphrase: str | None = None) -> str:
        adapter = adapter_for(fake, secret=secret, passphrase=passphrase)
        try:
            with pytest.raises(VenueRejectedError) as rejected:
                await adapter.connect()
            return rejected.value.detail
        finally:
            await adapter.close()

    assert asyncio.run(refused(secret="not-the-secret")) == "50113: Invalid Sign"
    assert asyncio.run(refused(passphrase="nope")) == "50105: Your OK-ACCESS-PASSPHRASE is incorrect"


def test_a_dropped_private_socket_ends_updates_and_a_new_stream_follows(fake: FakeOkx) -> None:
    order = spec("after-drop-1", price="40000")

    def scenario(adapter: OkxExecution) -> Awaitable[tuple[VenueError | None, list[OrderStatus]]]:
        return dropped_then_followed(adapter, fake.drop_private, order)

    error, statuses = run(fake, scenario)
    assert isinstance(error, VenueUnavailableError)
    assert statuses == [OrderStatus.NEW]


def test_a_bad_login_ends_the_stream(fake: FakeOkx) -> None:
    async def scenario() -> VenueError | None:
        adapter = adapter_for(fake, secret="wrong")
        try:
            stream = Stream(adapter.updates())
            async with asyncio.timeout(WAIT):
                await stream.task
            return stream.error
        finally:
            await adapter.close()

    error = asyncio.run(scenario())
    assert isinstance(error, VenueUnavailableError)
    assert "60007" in str(error)


def test_instruments_carry_the_filters(fake: FakeOkx) -> None:
    async def scenario(adapter: OkxExecution) -> list[str]:
        found = {i.instrument_id: i for i in await adapter.instruments()}
        btc = found[BTC]
        assert (btc.price_increment, btc.size_increment, btc.min_quantity) == (
            Decimal("0.1"),
            Decimal("0.00000001"),
            Decimal("0.00001"),
        )
        return sorted(found)

    assert run(fake, scenario) == [
        f"{s}.OKX" for s in ("BTC-USD", "ETH-USD", "SOL-USD", "USDT-USD", "XRP-USD")
    ]
