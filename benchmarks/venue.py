"""Orders to a live venue through the Binance execution adapter, against the fake Binance on loopback
(`tests/fakes/binance`: signed REST, its matching engine, the WebSocket API user-data stream).

- submit->ack: one order at a time, the REST round trip the gateway waits for (sign, send, the
  venue's answer parsed into the port's `VenueOrder`);
- orders/s: 8 submissions in flight, as the gateway would with several accounts' requests;
- submit->stream: from the submit call until its execution report arrives on the user-data stream.

    python -m benchmarks.venue
"""

from __future__ import annotations

import asyncio
import statistics
import time
from decimal import Decimal
from typing import Any

from tests.fakes.binance import FakeBinance

from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import OrderSide, OrderType
from meltica.venues.binance import BinanceConfig, BinanceExecution
from meltica.venues.port import VenueOrder

GROUP = "live venue (fake Binance, loopback)"
N = 300


def _spec(i: int) -> OrderSpec:
    return OrderSpec(
        f"bench-{i}",
        f"bench-{i}",
        "ACC-1",
        "BTCUSDT.BINANCE",
        OrderSide.BUY,
        OrderType.LIMIT,
        Decimal("0.001"),
        Decimal("40000"),  # rests far from the book
    )


def _quantile(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=1000)[int(q * 1000) - 1] if len(xs) > 1 else xs[0]


async def _measure(fake: FakeBinance) -> dict[str, float]:
    adapter = BinanceExecution(
        BinanceConfig(api_key=fake.api_key, secret=fake.secret, rest_url=fake.rest_url, ws_url=fake.ws_url)
    )
    await adapter.connect()
    try:
        seen: dict[str, float] = {}
        stream = adapter.updates()

        async def follow() -> None:
            async for u in stream:
                if isinstance(u, VenueOrder):
                    seen.setdefault(u.order_id, time.perf_counter())

        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.5)  # subscribed
        acks: list[float] = []
        streamed: list[float] = []
        for i in range(N):
            started = time.perf_counter()
            placed = await adapter.submit(_spec(i))
            acks.append(time.perf_counter() - started)
            for _ in range(200):
                if placed.order_id in seen:
                    break
                await asyncio.sleep(0.0005)
            if placed.order_id in seen:
                streamed.append(seen[placed.order_id] - started)
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with sem:
                await adapter.submit(_spec(N + i))

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(N)))
        rate = N / (time.perf_counter() - started)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        ms = [a * 1000 for a in acks]
        sms = [a * 1000 for a in streamed] or [float("nan")]
        return {
            "orders_per_s": rate,
            "ack_p50_ms": statistics.median(ms),
            "ack_p99_ms": _quantile(ms, 0.99),
            "stream_p50_ms": statistics.median(sms),
            "stream_p99_ms": _quantile(sms, 0.99),
        }
    finally:
        await adapter.close()


def measure() -> dict[str, float]:
    with FakeBinance() as fake:
        fake.set_balance("USDT", "100000000")
        fake.set_book("BTCUSDT", {"49000": "1"}, {"51000": "1"})
        fake.set_weight_limit(10**9)  # the benchmark measures the path, not Binance's limits
        return asyncio.run(_measure(fake))


def results() -> list[Any]:
    from benchmarks.run import Result

    m = measure()
    return [
        Result(GROUP, "orders/s to the venue (8 in flight)", m["orders_per_s"]),
        Result(GROUP, "submit->venue ack p50_ms", m["ack_p50_ms"], lower_is_better=True, decimals=1),
        Result(GROUP, "submit->venue ack p99_ms", m["ack_p99_ms"], lower_is_better=True, decimals=1),
        Result(
            GROUP, "submit->user-stream report p50_ms", m["stream_p50_ms"], lower_is_better=True, decimals=1
        ),
        Result(
            GROUP, "submit->user-stream report p99_ms", m["stream_p99_ms"], lower_is_better=True, decimals=1
        ),
    ]


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name:>16}: {value:,.1f}")
