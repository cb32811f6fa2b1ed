"""`?wait=`: waiting for an order's status without holding a thread or a connection, and
without polling a database.

A waiting request awaits a future. The waiter learns statuses from the order events as they are
committed (`observe`): in `meltica up` from the engine's commits (`follow_engine`), in `meltica
run api` from a read_committed consumer of `orders.events` (`meltica.api.order_feed`). It folds
them with the order decider's own `evolve`, keeping the open orders and the final status of the
newest `capacity` closed ones. An order whose acceptance it did not see (submitted before this
process started, or submitted again under its client order id) is looked up once in the read
models when a wait on it starts; a wait that times out answers with the last status it saw."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from meltica.domain.orders import events as oe
from meltica.domain.orders.decider import STATUS_SET_BY, OrderBook, evolve
from meltica.domain.orders.model import TERMINAL, OrderStatus
from meltica.projections import queries
from meltica.topics import ORDER_EVENTS

if TYPE_CHECKING:
    from meltica.runtime.engine import Engine as Runtime
    from meltica.runtime.processor import Output

log = logging.getLogger(__name__)

S = OrderStatus
_ORDER_EVENTS = frozenset(
    {*STATUS_SET_BY, oe.OrderAcknowledged, oe.OrderCancelRejected, oe.OrderReplaced, oe.OrderAmendRejected}
)
"""The events that may change an order's status (the others leave it as it is)."""


@dataclass(eq=False)
class _Wait:
    targets: frozenset[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[str]
    status: str = S.PENDING_NEW.value
    done: bool = False


def _resolve(future: asyncio.Future[str], status: str) -> None:
    if not future.done():
        future.set_result(status)


class OrderWaiter:
    """Resolves waits on order statuses from the committed order events it is given."""

    def __init__(self, db: Engine, capacity: int = 100_000) -> None:
        self.db, self.capacity = db, capacity
        self._lock = threading.Lock()
        self._waits: dict[str, list[_Wait]] = {}
        self._book = OrderBook()  # the open orders whose acceptance was seen
        self._closed: OrderedDict[str, str] = OrderedDict()  # order id -> final status
        self._seen: OrderedDict[str, str] = OrderedDict()  # orders without state: status by event
        self._denials: OrderedDict[str, str] = OrderedDict()  # order id -> why risk denied it

    async def wait(self, order_id: str, targets: frozenset[str], timeout: float) -> str:
        """The order's status once it is one of `targets` or terminal, or the last seen after `timeout`."""
        loop = asyncio.get_running_loop()
        w = _Wait(targets, loop, loop.create_future())
        with self._lock:
            self._waits.setdefault(order_id, []).append(w)
            known = self._status(order_id)
            if known is not None:
                self._offer(w, known)
        lookup = None if known is not None else loop.run_in_executor(None, self._look_up, order_id)
        try:
            return await asyncio.wait_for(w.future, max(timeout, 0.0))
        except TimeoutError:
            return w.status
        finally:
            if lookup is not None:
                lookup.cancel()
            with self._lock:
                waits = self._waits.get(order_id, [])
                if w in waits:
                    waits.remove(w)
                if not waits:
                    self._waits.pop(order_id, None)

    def order(self, order_id: str) -> dict[str, Any] | None:
        """An open order this waiter holds (ids and status), whether or not projected yet."""
        with self._lock:
            order = self._book.orders.get(order_id)
            if order is None:
                return None
            spec = order.spec
            return {
                "order_id": order_id,
                "account_id": spec.account_id,
                "instrument_id": spec.instrument_id,
                "status": order.status.value,
            }

    def status(self, order_id: str) -> str | None:
        """The order's latest status this waiter saw committed (None: it has not seen the order)."""
        with self._lock:
            return self._status(order_id)

    def denial(self, order_id: str) -> str | None:
        """Why risk denied the order, if this waiter saw the denial."""
        with self._lock:
            return self._denials.get(order_id)

    def pending(self) -> int:
        """How many waits are pending."""
        with self._lock:
            return sum(len(ws) for ws in self._waits.values())

    def observe(self, events: Iterable[Any]) -> None:
        """Committed events (any; the order events among them count), in their order."""
        with self._lock:
            for event in events:
                if type(event) in _ORDER_EVENTS:
                    self._apply(event)

    def _apply(self, event: Any) -> None:
        order_id: str = event.order_id
        book = self._book
        if order_id in self._closed:  # (closed: nothing changes it any more)
            return
        if type(event) is oe.OrderAccepted or order_id in book.orders:
            evolve(book, event)
        elif type(event) is oe.OrderDenied:
            book.denied[order_id] = event.reason
        order = book.orders.get(order_id)
        if order is not None:
            status = order.status.value
        elif order_id in book.denied:
            status = S.DENIED.value
        else:
            found = STATUS_SET_BY.get(type(event))  # an order whose acceptance came before the waiter
            if found is None:
                return
            status = found.value
        if type(event) is oe.OrderDenied:
            self._remember(self._denials, order_id, str(event.reason))
        if status in TERMINAL:
            self._close(order_id, status)
        elif order is None:
            self._remember(self._seen, order_id, status)
        elif len(book.orders) > self.capacity:  # the oldest open order's later events: by STATUS_SET_BY
            oldest = next(iter(book.orders))
            self._remember(self._seen, oldest, book.orders[oldest].status.value)
            self._forget(oldest)
        for w in self._waits.get(order_id, ()):
            self._offer(w, status)

    def _close(self, order_id: str, status: str) -> None:
        self._forget(order_id)
        self._seen.pop(order_id, None)
        self._remember(self._closed, order_id, status)

    def _forget(self, order_id: str) -> None:
        book = self._book
        order = book.orders.pop(order_id, None)
        book.denied.pop(order_id, None)
        book.open_ids.pop(order_id, None)
        book.children.pop(order_id, None)
        if order is not None:
            book.held.get(order.spec.instrument_id, {}).pop(order_id, None)

    def _remember(self, where: OrderedDict[str, str], order_id: str, status: str) -> None:
        where[order_id] = status
        where.move_to_end(order_id)
        while len(where) > self.capacity:
            where.popitem(last=False)

    def _status(self, order_id: str) -> str | None:
        order = self._book.orders.get(order_id)
        if order is not None:
            return order.status.value
        if order_id in self._book.denied:
            return S.DENIED.value
        return self._closed.get(order_id) or self._seen.get(order_id)

    @staticmethod
    def _offer(w: _Wait, status: str) -> None:
        w.status = status
        if not w.done and (status in w.targets or status in TERMINAL):
            w.done = True
            with contextlib.suppress(RuntimeError):  # the request's loop is gone
                w.loop.call_soon_threadsafe(_resolve, w.future, status)

    def _look_up(self, order_id: str) -> None:
        """The read models' status of an order no event told about yet (once per wait)."""
        try:
            found = queries.order_statuses(self.db, [order_id]).get(order_id)
        except Exception:  # the database is away: the wait ends with what events tell
            log.warning("order waiter: status lookup failed", exc_info=True)
            return
        if found is None:
            return
        with self._lock:
            if self._status(order_id) is None:  # events are newer than the read models
                for w in self._waits.get(order_id, ()):
                    self._offer(w, found)


def follow_engine(engine: Runtime, waiter: OrderWaiter) -> Callable[[list[Output]], None]:
    """Feed `waiter` the order events of every commit of the embedded `engine` (`meltica up`)."""

    def committed(outputs: list[Output]) -> None:
        waiter.observe(o.event for o in outputs if o.topic == ORDER_EVENTS)

    engine.committed.append(committed)
    return committed
