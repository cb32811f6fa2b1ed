"""`?wait=`: waiting for an order's status without holding a thread or a connection.

A waiting request awaits a future. One daemon thread per app looks up the status of every
pending order in one indexed query per `interval` and resolves the futures whose order reached
what they wait for (or a terminal status). It reads only the `orders` read model, so it works the
same where the projector runs in this process (`meltica up`) and where it is another process
(`meltica run api` on PostgreSQL). The thread starts with the first wait and ends after a few
idle seconds; a wait that times out answers with the last status it saw."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from meltica.domain.orders.model import TERMINAL
from meltica.projections import tables as t

log = logging.getLogger(__name__)

BATCH = 500  # order ids per query


@dataclass(eq=False)
class _Wait:
    targets: frozenset[str]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[str]
    status: str = "PENDING_NEW"
    done: bool = field(default=False)


def _resolve(future: asyncio.Future[str], status: str) -> None:
    if not future.done():
        future.set_result(status)


class OrderWaiter:
    """Resolves waits on order statuses from one shared poll of the read model."""

    def __init__(self, db: Engine, interval: float = 0.02, idle: float = 5.0) -> None:
        self.db, self.interval, self.idle = db, interval, idle
        self._lock = threading.Lock()
        self._waits: dict[str, list[_Wait]] = {}
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    async def wait(self, order_id: str, targets: frozenset[str], timeout: float) -> str:
        """The order's status once it is one of `targets` or terminal, or the last seen after `timeout`."""
        loop = asyncio.get_running_loop()
        w = _Wait(targets, loop, loop.create_future())
        with self._lock:
            self._waits.setdefault(order_id, []).append(w)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="order-waiter", daemon=True)
                self._thread.start()
        self._wake.set()
        try:
            return await asyncio.wait_for(w.future, max(timeout, 0.0))
        except TimeoutError:
            return w.status
        finally:
            with self._lock:
                waits = self._waits.get(order_id, [])
                if w in waits:
                    waits.remove(w)
                if not waits:
                    self._waits.pop(order_id, None)

    def pending(self) -> int:
        """How many waits are pending."""
        with self._lock:
            return sum(len(ws) for ws in self._waits.values())

    def _run(self) -> None:
        while True:
            with self._lock:
                ids = list(self._waits)
                if not ids:
                    self._wake.clear()
            if not ids:
                if self._wake.wait(self.idle):
                    continue
                with self._lock:
                    if not self._waits:
                        self._thread = None
                        return
                continue
            try:
                self._poll(ids)
            except Exception:  # the database is away: the waits time out with what they saw
                log.warning("order waiter: status lookup failed", exc_info=True)
            time.sleep(self.interval)

    def _poll(self, ids: list[str]) -> None:
        statuses: dict[str, str] = {}
        with self.db.connect() as conn:
            for i in range(0, len(ids), BATCH):
                query = select(t.orders.c.order_id, t.orders.c.status).where(
                    t.orders.c.order_id.in_(ids[i : i + BATCH])
                )
                statuses.update({row.order_id: row.status for row in conn.execute(query)})
        with self._lock:
            for order_id, status in statuses.items():
                for w in self._waits.get(order_id, []):
                    w.status = status
                    if not w.done and (status in w.targets or status in TERMINAL):
                        w.done = True
                        with contextlib.suppress(RuntimeError):  # the request's loop is gone
                            w.loop.call_soon_threadsafe(_resolve, w.future, status)
