"""`venues.common`: what the Binance and OKX adapters share (headers, ccxt's classes, the throttle gate)."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

from meltica.venues.common import Sinks, ThrottleGate, dec, from_ccxt, header, retry_after, text
from meltica.venues.port import VenueRejectedError, VenueThrottledError, VenueUnavailableError

ccxt = pytest.importorskip("ccxt")


def test_decimals_and_headers() -> None:
    assert [str(dec(v)) for v in ("0.00300000", "8477.00", "0")] == ["0.003", "8477", "0"]
    assert text(Decimal("5E+4")) == "50000"
    assert header({"X-MBX-USED-WEIGHT-1M": "7"}, "x-mbx-used-weight-1m") == "7"
    assert [retry_after(h) for h in ({"Retry-After": "3"}, {"retry-after": "soon"}, None)] == [
        3.0,
        None,
        None,
    ]


def test_ccxt_classes_map_to_the_port() -> None:
    def reason(text_: str, exc: BaseException) -> str:
        return f"r:{text_}"

    throttled = from_ccxt(ccxt.RateLimitExceeded("slow down"), 2.0, reason)
    assert isinstance(throttled, VenueThrottledError)
    assert throttled.retry_after == 2.0
    assert isinstance(from_ccxt(ccxt.RequestTimeout(""), 2.0, reason), VenueUnavailableError)
    rejected = from_ccxt(ccxt.InvalidOrder("bad"), 2.0, reason)
    assert isinstance(rejected, VenueRejectedError)
    assert (rejected.reason, rejected.detail) == ("r:bad", "bad")
    assert str(from_ccxt(OSError("refused"), 2.0, reason)).endswith("OSError: refused")


def test_a_throttle_closes_the_gate_until_its_retry_time() -> None:
    now = [100.0]
    gate = ThrottleGate(
        "V", lambda: now[0], lambda e: VenueThrottledError(5.0, str(e)), logging.getLogger(), "no"
    )

    async def throttled() -> None:
        raise RuntimeError("429")

    gate.check()
    with pytest.raises(VenueThrottledError):
        asyncio.run(gate.guard(throttled()))
    now[0] += 4.0
    with pytest.raises(VenueThrottledError) as refused:
        gate.check()
    assert refused.value.retry_after == pytest.approx(1.0)
    now[0] += 1.0
    gate.check()


def test_sinks_send_each_item_to_every_queue() -> None:
    async def main() -> list[list[str]]:
        sinks: Sinks[str] = Sinks()
        queues: list[asyncio.Queue[str]] = [asyncio.Queue(), asyncio.Queue()]
        for q in queues:
            sinks.add(q)
        sinks.send("a")
        sinks.discard(queues[1])
        sinks.send("b")
        assert sinks
        return [[q.get_nowait() for _ in range(q.qsize())] for q in queues]

    assert asyncio.run(main()) == [["a", "b"], ["a"]]
