"""The gateway of a live venue: venue requests to an `ExecutionAdapter`, its answers to reports.

One gateway serves one registry connection (`meltica venues add bn binance -p account=ACC-1 ...`):
it reads `venue.requests` for its venue from its own committed position, calls the adapter, and
writes `ExecutionReport`s to `venue.reports` together with its new position (one atomic append),
where the order state machine takes them as it takes the simulator's. The venue's user-data
stream (order updates, fills) becomes reports as well.

Nothing is lost or doubled across disconnects and restarts:
- every fill carries the venue's trade id; a trade id seen before (in this run or in the log) is
  dropped and counted (the order state machine drops it again if one slipped through);
- on start, after every reconnect and every `reconcile_every_s` the gateway *reconciles*: the
  venue's fills the log lacks become fill reports flagged `reconciled`; an order the log holds open
  that the venue has closed (or never had) is closed with the venue's reason; an open order Meltica
  never sent is reported and ignored or canceled (`external_orders`); the venue's balances go to
  the portfolio, which reports any that differ from its own (`BalanceDiscrepancy`);
- a request read again after a crash (its answer was not committed) is first looked up at the
  venue by its client order id, so it is never sent twice;
- a request still unsent after `max_request_age_s` (the venue was down) is rejected, not sent late.

While the venue throttles (429/418), new orders are rejected with the reason and the time left;
cancels and amends wait for the limit to pass and go out then.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from meltica.clock import Clock, LiveClock
from meltica.domain.orders.events import (
    ExecutionReport,
    Fill,
    VenueAmendOrder,
    VenueCancelOrder,
    VenueSubmitOrder,
)
from meltica.domain.orders.model import OrderSpec, OrderStatus
from meltica.domain.portfolio.events import VenueBalanceReported
from meltica.domain.values import ExecType
from meltica.errors import MelticaError
from meltica.events.codec import Codec
from meltica.events.mapping import from_record
from meltica.log.base import EventLog, Message, Record, TopicPartition, records_after
from meltica.retry import RetryPolicy
from meltica.runtime.publisher import Publisher
from meltica.topics import PORTFOLIO_COMMANDS, VENUE_REPORTS, VENUE_REQUESTS
from meltica.venues.port import (
    ExecutionAdapter,
    VenueError,
    VenueOrder,
    VenueRejectedError,
    VenueThrottledError,
    VenueTrade,
    VenueUnavailableError,
)

log = logging.getLogger("meltica.gateway")
T = TypeVar("T")
_CLOSED = (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
_EXEC_OF_CLOSE = {
    OrderStatus.CANCELED: ExecType.CANCELED,
    OrderStatus.EXPIRED: ExecType.EXPIRED,
    OrderStatus.REJECTED: ExecType.REJECTED,
}


class GatewayStoppedError(Exception):
    """The gateway was stopped while a request waited to be retried."""


@dataclass
class Known:
    """What the log says about one of the gateway's orders."""

    spec: OrderSpec
    venue_order_id: str | None = None
    acked: bool = False
    filled: Decimal = Decimal(0)
    closed: bool = False


@dataclass
class GatewayStats:
    """Counters of one gateway (exported as metrics)."""

    requests: int = 0
    reports: int = 0
    duplicate_fills: int = 0
    reconciled_fills: int = 0
    reconciled_closes: int = 0
    external_orders: int = 0
    throttled: int = 0
    reconnects: int = 0
    expired_requests: int = 0
    last_reconcile_ns: int = 0


@dataclass
class Gateway:
    """Hosts one live venue's adapter for one Meltica account."""

    name: str
    adapter: ExecutionAdapter
    log: EventLog
    codec: Codec
    account: str
    external_orders: str = "ignore"
    max_request_age_s: float = 30.0
    clock: Clock = field(default_factory=LiveClock)
    reconcile_every_s: float = 60.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(first_s=0.5))  # venue calls, reconnects
    stats: GatewayStats = field(default_factory=GatewayStats)

    def __post_init__(self) -> None:
        self.venue = self.adapter.venue
        self.group = f"meltica-gateway-{self.name}"
        self.publisher = Publisher(self.log, self.codec, self.clock)
        self.orders: dict[str, Known] = {}
        self.by_venue_id: dict[str, str] = {}
        self.trades: set[tuple[str, str]] = set()
        # per instrument, a trade id up to which every fill of ours is known (none: a
        # reconciliation asks for all recent ones). Live fills do not move it: a fill lost before
        # a live one must still be found.
        self.checkpoint: dict[str, str] = {}
        self.reconcile_after = 0.0  # monotonic time of the next reconciliation (0: none due)
        self.last_reconciled = 0.0
        self.positions: dict[TopicPartition, int] = {}
        self._nothing_below: dict[TopicPartition, int] = {}
        self.started_ns = 0
        self.sent: set[str] = set()  # orders this run asked the venue to place
        self.throttled_until = 0.0
        self.ready = threading.Event()  # rebuilt from the log and reconciled once

    # -- life -------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Serve until `stop` (in the calling thread, on its own event loop)."""
        try:
            asyncio.run(self._main(stop))
        except (GatewayStoppedError, VenueError):
            if not stop.is_set():
                raise

    async def _main(self, stop: threading.Event) -> None:
        self.started_ns = self.clock.now_ns()
        await self._retrying(self.adapter.connect, stop)
        try:
            self.rebuild()
            await self._retrying(self.reconcile, stop)
            self.ready.set()
            tasks = [
                asyncio.create_task(self._follow_updates(stop)),
                asyncio.create_task(self._reconcile_when_due(stop)),
            ]
            try:
                await self._serve_requests(stop)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await self.adapter.close()

    async def _retrying(self, call: Callable[[], Awaitable[T]], stop: threading.Event) -> T:
        attempt = 0
        while True:
            try:
                return await call()
            except (VenueUnavailableError, VenueThrottledError) as err:
                attempt += 1
                delay = max(self.retry.delay(attempt), getattr(err, "retry_after", 0.0))
                log.warning("gateway %s: %s; retrying in %.1f s", self.name, err, delay)
                await self._pause(delay, stop)

    # -- the log ----------------------------------------------------------------------------------
    def _decode(self, rec: Record) -> Any | None:
        try:
            return from_record(*self.codec.decode_record(rec))
        except (MelticaError, KeyError, TypeError, ValueError):
            return None  # dead-lettered by the engine; nothing for the gateway

    def _read_all(self, topic: str) -> list[Any]:
        events = []
        for p in range(self.log.partitions(topic)):
            pos, end = 0, self.log.end_offset(topic, p)
            while pos < end:
                batch = self.log.read(topic, p, pos, 5000)
                if not batch:
                    break
                pos = batch[-1].offset + 1
                events += [
                    (r.seq, r.partition, r.offset, e) for r in batch if (e := self._decode(r)) is not None
                ]
        return [e for *_, e in sorted(events, key=lambda t: t[:3])]

    def rebuild(self) -> None:
        """What the log says about this venue's orders and fills, and where the requests stand."""
        for p in range(self.log.partitions(VENUE_REQUESTS)):
            tp = TopicPartition(VENUE_REQUESTS, p)
            self.positions[tp] = self.log.committed(self.group, tp) or 0
        for req in self._read_all(VENUE_REQUESTS):
            ours = isinstance(req, VenueSubmitOrder) and req.venue == self.venue
            if ours and req.order.account_id == self.account:
                self.orders.setdefault(req.order.order_id, Known(req.order))
        for rep in self._read_all(VENUE_REPORTS):
            if isinstance(rep, ExecutionReport) and rep.venue == self.venue:
                self._note(rep)

    def _note(self, rep: ExecutionReport) -> None:
        """Fold one of this venue's reports into what the gateway knows."""
        known = self.orders.get(rep.order_id)
        if rep.fill is not None:
            self.trades.add((rep.instrument_id, rep.fill.trade_id))
        if known is None:
            return
        if rep.venue_order_id:
            known.venue_order_id = rep.venue_order_id
            self.by_venue_id[rep.venue_order_id] = rep.order_id
        if rep.exec_type is ExecType.NEW:
            known.acked = True
        elif rep.exec_type is ExecType.TRADE and rep.fill is not None:
            known.filled += rep.fill.last_qty
            known.closed = known.filled >= known.spec.quantity
        elif rep.exec_type is ExecType.REPLACED:
            known.spec = _replaced(known.spec, rep.quantity, rep.price)
        elif rep.exec_type in (ExecType.CANCELED, ExecType.EXPIRED, ExecType.REJECTED):
            known.closed = True

    def _write(
        self, reports: Sequence[ExecutionReport], positions: dict[TopicPartition, int] | None = None
    ) -> None:
        messages: list[Message] = [
            self.publisher.message(VENUE_REPORTS, r, correlation_id=r.order_id) for r in reports
        ]
        if positions is None:
            if messages:
                self.log.append(messages)
        else:
            self.log.append_and_commit(messages, self.group, positions)
        for r in reports:
            self._note(r)
        self.stats.reports += len(reports)

    # -- requests ---------------------------------------------------------------------------------
    async def _serve_requests(self, stop: threading.Event) -> None:
        while not stop.is_set():
            records = records_after(self.log, self.positions, self._nothing_below, 200)
            if not records:
                await asyncio.sleep(0.005)
                continue
            after = dict(self.positions)
            moved = False
            for rec in records:
                if stop.is_set():
                    break
                after[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
                req = self._decode(rec)
                if (
                    not isinstance(req, VenueSubmitOrder | VenueCancelOrder | VenueAmendOrder)
                    or req.venue != self.venue
                ):
                    moved = True  # another venue's: committed with the next answer or the batch
                    continue
                self.stats.requests += 1
                reports = await self.handle(req, stop)
                self._write(reports, dict(after))  # the answer and the position, atomically
                self.positions, moved = dict(after), False
            if moved:
                self.log.commit(self.group, after)
                self.positions = after

    async def handle(
        self, req: VenueSubmitOrder | VenueCancelOrder | VenueAmendOrder, stop: threading.Event
    ) -> list[ExecutionReport]:
        """The reports that answer one request."""
        if isinstance(req, VenueSubmitOrder):
            return await self._submit(req, stop)
        if req.account_id != self.account:
            return []  # never ours: its submission was rejected
        if isinstance(req, VenueCancelOrder):
            return await self._cancel(req, stop)
        return await self._amend(req, stop)

    def _too_old(self, ts: int) -> bool:
        return self.clock.now_ns() - ts > self.max_request_age_s * 1e9

    async def _submit(self, req: VenueSubmitOrder, stop: threading.Event) -> list[ExecutionReport]:
        spec = req.order
        if spec.account_id != self.account:
            return [
                self._reject(
                    spec, f"account {spec.account_id} does not trade at {self.venue} (connection {self.name})"
                )
            ]
        self.orders.setdefault(spec.order_id, Known(spec))
        uncertain = req.ts < self.started_ns or spec.order_id in self.sent  # it may be at the venue
        attempt = 0
        while True:
            phase = "query"
            try:
                if uncertain:
                    seen = await self.adapter.order(spec.order_id, spec.instrument_id)
                    if seen is not None:
                        phase = "answer"
                        return await self._answer(seen)
                    uncertain = False
                if self._too_old(req.ts):
                    self.stats.expired_requests += 1
                    unreachable = f"{self.venue} was unreachable for over {self.max_request_age_s:g} s"
                    return [self._reject(spec, f"not sent: {unreachable}")]
                if time.monotonic() < self.throttled_until:
                    self.stats.throttled += 1
                    left = self.throttled_until - time.monotonic()
                    return [
                        self._reject(
                            spec, f"throttled: {self.venue} limits requests for another {left:.1f} s"
                        )
                    ]
                phase = "submit"
                self.sent.add(spec.order_id)
                placed = await self.adapter.submit(spec)
                phase = "answer"
                return await self._answer(placed)
            except VenueRejectedError as err:
                return [self._reject(spec, f"{err.reason}: {err.detail}")]
            except VenueThrottledError as err:
                self.throttled_until = time.monotonic() + err.retry_after
                self.stats.throttled += 1
                if phase == "submit":  # refused, not placed
                    return [
                        self._reject(
                            spec, f"throttled: {self.venue} limits requests for {err.retry_after:g} s"
                        )
                    ]
                uncertain = uncertain or phase == "answer"
                await self._pause(err.retry_after, stop)
            except VenueUnavailableError as err:
                uncertain = uncertain or phase in ("submit", "answer")
                attempt += 1
                delay = self.retry.delay(attempt)
                log.warning(
                    "gateway %s: submit %s: %s; retrying in %.1f s", self.name, spec.order_id, err, delay
                )
                await self._pause(delay, stop)

    async def _pause(self, seconds: float, stop: threading.Event) -> None:
        """Wait before a retry; a stop meanwhile ends the request unanswered (answered after a restart)."""
        if stop.is_set():
            raise GatewayStoppedError
        await asyncio.sleep(seconds)
        if stop.is_set():
            raise GatewayStoppedError

    async def _answer(self, seen: VenueOrder) -> list[ExecutionReport]:
        """Reports for what the venue says about one of our orders: its acknowledgement, fills the
        log lacks (from the venue's trade list), and its close."""
        known = self.orders.get(seen.order_id)
        if known is None:
            return []
        out: list[ExecutionReport] = []
        if seen.status is OrderStatus.REJECTED:
            return [] if known.closed else [self._reject(known.spec, seen.reason or "rejected by the venue")]
        self.by_venue_id[seen.venue_order_id] = seen.order_id
        if not known.acked:
            out.append(
                self._report(
                    known, ExecType.NEW, OrderStatus.NEW, seen.ts, venue_order_id=seen.venue_order_id
                )
            )
            known.acked = True  # written with the answer; a stream update meanwhile must not ack again
        if seen.filled_qty > known.filled:
            out += await self._catch_up(seen.instrument_id, reconciled=False)
        if seen.status in _EXEC_OF_CLOSE and not known.closed:
            out.append(self._close(known, seen, seen.reason))
        return out

    async def _cancel(self, req: VenueCancelOrder, stop: threading.Event) -> list[ExecutionReport]:
        known = self.orders.get(req.order_id)
        if known is None:
            return []
        try:
            seen = await self._retrying(lambda: self.adapter.cancel(req.order_id, req.instrument_id), stop)
        except VenueRejectedError as err:
            now = await self._retrying(lambda: self.adapter.order(req.order_id, req.instrument_id), stop)
            out = await self._answer(now) if now is not None else []
            rejected = self._report(
                known,
                ExecType.CANCEL_REJECTED,
                _status(known),
                self.clock.now_ns(),
                reason=f"{err.reason}: {err.detail}",
            )
            return [*out, rejected]
        return await self._answer(seen)

    async def _amend(self, req: VenueAmendOrder, stop: threading.Event) -> list[ExecutionReport]:
        known = self.orders.get(req.order_id)
        if known is None:
            return []
        quantity = req.quantity if req.quantity is not None else known.spec.quantity
        price = req.price if req.price is not None else known.spec.price
        try:
            seen = await self._retrying(lambda: self.adapter.amend(known.spec, quantity, price), stop)
        except VenueRejectedError as err:
            return [
                self._report(
                    known,
                    ExecType.REPLACE_REJECTED,
                    _status(known),
                    self.clock.now_ns(),
                    reason=f"{err.reason}: {err.detail}",
                )
            ]
        out: list[ExecutionReport] = []
        if seen.status in _EXEC_OF_CLOSE:  # the old order was canceled and the new one refused: gone
            if seen.filled_qty > known.filled:
                out += await self._catch_up(seen.instrument_id, reconciled=False)
            now = self.clock.now_ns()
            refused = self._report(known, ExecType.REPLACE_REJECTED, _status(known), now, reason=seen.reason)
            return [*out, refused, self._close(known, seen, seen.reason)]
        if seen.venue_order_id != known.venue_order_id:
            self.by_venue_id[seen.venue_order_id] = seen.order_id
        out.append(
            self._report(
                known,
                ExecType.REPLACED,
                OrderStatus.REPLACED,
                seen.ts,
                venue_order_id=seen.venue_order_id,
                quantity=seen.quantity,
                price=seen.price,
            )
        )
        known.spec = _replaced(known.spec, seen.quantity, seen.price)
        known.venue_order_id = seen.venue_order_id
        if seen.filled_qty > known.filled:
            out += await self._catch_up(seen.instrument_id, reconciled=False)
        return out

    # -- the venue's own news ---------------------------------------------------------------------
    async def _follow_updates(self, stop: threading.Event) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                async for update in self.adapter.updates():
                    attempt = 0
                    self._write(await self.on_update(update))
                raise VenueUnavailableError("the user-data stream ended")
            except VenueError as err:
                attempt += 1
                self.stats.reconnects += 1
                delay = max(
                    self.retry.delay(attempt), getattr(err, "retry_after", 0.0)
                )  # a 429: its Retry-After
                log.warning("gateway %s: user data: %s; reconnecting in %.1f s", self.name, err, delay)
                self.reconcile_after = time.monotonic() + delay  # once listening again
                await asyncio.sleep(delay)

    async def _reconcile_when_due(self, stop: threading.Event) -> None:
        """Reconcile after a reconnect (retried until it succeeds), and every `reconcile_every_s`."""
        while not stop.is_set():
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if not self.reconcile_after and now - self.last_reconciled >= self.reconcile_every_s:
                self.reconcile_after = now
            if self.reconcile_after and now >= self.reconcile_after:
                try:
                    await self.reconcile()
                    self.reconcile_after = 0.0
                except VenueError as err:
                    self.reconcile_after = now + self.retry.delay(1)
                    log.warning("gateway %s: reconciliation failed: %s", self.name, err)

    async def on_update(self, update: Any) -> list[ExecutionReport]:
        """Reports for one user-data update."""
        if isinstance(update, VenueTrade):
            return self._fills([update], reconciled=False)
        if isinstance(update, VenueOrder):
            known = self.orders.get(update.order_id)
            if known is None:
                return []
            if update.status is OrderStatus.REJECTED:
                return (
                    []
                    if known.closed
                    else [self._reject(known.spec, update.reason or "rejected by the venue")]
                )
            out: list[ExecutionReport] = []
            if not known.acked and update.status not in _CLOSED:
                out.append(
                    self._report(
                        known, ExecType.NEW, OrderStatus.NEW, update.ts, venue_order_id=update.venue_order_id
                    )
                )
            if update.status in _CLOSED and update.filled_qty > known.filled:
                out += await self._catch_up(update.instrument_id, reconciled=False)  # a fill message was lost
            if update.status in _EXEC_OF_CLOSE and not known.closed:
                out.append(self._close(known, update, update.reason))
            return out
        return []  # balances: the portfolio keeps Meltica's own

    def _fills(self, trades: Sequence[VenueTrade], *, reconciled: bool) -> list[ExecutionReport]:
        out = []
        running: dict[str, Decimal] = {}  # fills of this batch on top of what the log holds
        for t in trades:
            key = (t.instrument_id, t.trade_id)
            order_id = t.order_id or self.by_venue_id.get(t.venue_order_id)
            known = self.orders.get(order_id) if order_id else None
            if known is None or order_id is None:
                continue  # not Meltica's
            if key in self.trades:
                self.stats.duplicate_fills += 1
                continue
            self.trades.add(key)
            cum = running.get(order_id, known.filled) + t.quantity
            running[order_id] = cum
            status = OrderStatus.FILLED if cum >= known.spec.quantity else OrderStatus.PARTIALLY_FILLED
            fill = Fill(
                t.trade_id,
                t.venue_order_id,
                t.side,
                t.quantity,
                t.price,
                t.fee,
                t.fee_currency,
                t.liquidity,
                t.ts,
                reconciled,
            )
            out.append(
                self._report(known, ExecType.TRADE, status, t.ts, venue_order_id=t.venue_order_id, fill=fill)
            )
            if reconciled:
                self.stats.reconciled_fills += 1
        return out

    async def _catch_up(self, instrument_id: str, *, reconciled: bool) -> list[ExecutionReport]:
        trades = await self.adapter.trades_since(instrument_id, self.checkpoint.get(instrument_id))
        if trades:  # everything up to the last of them is known now
            self.checkpoint[instrument_id] = max((t.trade_id for t in trades), key=_trade_order)
        return self._fills(trades, reconciled=reconciled)

    # -- reconciliation ---------------------------------------------------------------------------
    async def reconcile(self) -> None:
        """Make the log agree with the venue: missed fills, orders closed meanwhile, strangers."""
        instruments = sorted({k.spec.instrument_id for k in self.orders.values() if not k.closed})
        for iid in instruments:
            self._write(await self._catch_up(iid, reconciled=True))
        open_at_venue = await self.adapter.open_orders()
        theirs = {o.order_id: o for o in open_at_venue if o.order_id in self.orders}
        for o in open_at_venue:
            if o.order_id not in self.orders:
                await self._stranger(o)
        for order_id, known in list(self.orders.items()):
            if known.closed:
                continue
            if order_id in theirs:
                self._write(await self._answer(theirs[order_id]))
                continue
            if not known.acked:
                continue  # its request is still being answered
            seen = await self.adapter.order(order_id, known.spec.instrument_id)
            if seen is None:
                if known.acked:
                    self.stats.reconciled_closes += 1
                    self._write(
                        [
                            self._report(
                                known,
                                ExecType.CANCELED,
                                OrderStatus.CANCELED,
                                self.clock.now_ns(),
                                reason="reconciled: the venue has no such order",
                            )
                        ]
                    )
                continue
            reports = await self._answer(seen)
            if any(r.exec_type in (ExecType.CANCELED, ExecType.EXPIRED) for r in reports):
                self.stats.reconciled_closes += 1
            self._write(reports)
        balances = await self.adapter.balances()
        now = self.clock.now_ns()
        reported = [
            VenueBalanceReported(self.account, self.venue, b.asset, b.free + b.locked, now) for b in balances
        ]
        if reported:  # the portfolio compares them with its own and reports a difference
            self.log.append([self.publisher.message(PORTFOLIO_COMMANDS, r) for r in reported])
        self.stats.last_reconcile_ns = now
        self.last_reconciled = time.monotonic()

    async def _stranger(self, order: VenueOrder) -> None:
        """An open order at the venue that Meltica never sent."""
        self.stats.external_orders += 1
        action = "ignored"
        if self.external_orders == "cancel":
            try:
                await self.adapter.cancel(order.order_id, order.instrument_id)
                action = "canceled"
            except VenueError as err:
                action = f"cancel failed: {err}"
        log.warning(
            "gateway %s: open order %s (%s %s %s @ %s) was not sent by Meltica: %s",
            self.name,
            order.venue_order_id,
            order.instrument_id,
            order.side.value,
            order.quantity,
            order.price,
            action,
        )

    # -- reports ----------------------------------------------------------------------------------
    def _report(
        self,
        known: Known,
        exec_type: ExecType,
        status: OrderStatus,
        ts_venue: int,
        *,
        venue_order_id: str | None = None,
        fill: Fill | None = None,
        quantity: Decimal | None = None,
        price: Decimal | None = None,
        reason: str = "",
    ) -> ExecutionReport:
        spec = known.spec
        return ExecutionReport(
            self.venue,
            exec_type,
            spec.order_id,
            spec.account_id,
            spec.instrument_id,
            status,
            ts_venue,
            self.clock.now_ns(),
            venue_order_id=venue_order_id or known.venue_order_id,
            fill=fill,
            quantity=quantity,
            price=price,
            reason=reason,
        )

    def _reject(self, spec: OrderSpec, reason: str) -> ExecutionReport:
        known = self.orders.get(spec.order_id) or Known(spec)
        return self._report(
            known, ExecType.REJECTED, OrderStatus.REJECTED, self.clock.now_ns(), reason=reason
        )

    def _close(self, known: Known, seen: VenueOrder, reason: str) -> ExecutionReport:
        exec_type = _EXEC_OF_CLOSE[seen.status]
        return self._report(
            known,
            exec_type,
            seen.status,
            seen.ts,
            venue_order_id=seen.venue_order_id,
            reason=reason or f"{seen.status.value.lower()} at {self.venue}",
        )


def _status(known: Known) -> OrderStatus:
    return OrderStatus.PARTIALLY_FILLED if known.filled else OrderStatus.NEW


def _replaced(spec: OrderSpec, quantity: Decimal | None, price: Decimal | None) -> OrderSpec:
    from dataclasses import replace

    return replace(
        spec,
        quantity=quantity if quantity is not None else spec.quantity,
        price=price if price is not None else spec.price,
    )


def _trade_order(trade_id: str) -> tuple[int, int | str]:
    """Venue trade ids are numbers on Binance; anything else sorts after them by text."""
    return (0, int(trade_id)) if trade_id.isdigit() else (1, trade_id)
