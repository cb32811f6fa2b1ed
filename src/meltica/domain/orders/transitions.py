"""The legal status transitions of an order, as data (DESIGN §4).

`PENDING_NEW` is the state of a submission nobody decided on yet. Fills may arrive before
the venue's acknowledgement (SUBMITTED -> PARTIALLY_FILLED/FILLED), and a fill may race a
cancel or amend request (PENDING_* -> *FILLED). Terminal states allow nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

from meltica.domain.orders.model import TERMINAL, OrderStatus

S = OrderStatus

_LIVE_AT_VENUE = frozenset(
    {S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.PENDING_REPLACE, S.CANCELED, S.EXPIRED}
)

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING_NEW: frozenset({S.ACCEPTED, S.DENIED}),
    S.ACCEPTED: frozenset({S.SUBMITTED, S.TRIGGERED, S.CANCELED, S.EXPIRED}),
    S.TRIGGERED: frozenset({S.SUBMITTED, S.CANCELED, S.EXPIRED}),
    S.SUBMITTED: frozenset({S.NEW, S.REJECTED} | _LIVE_AT_VENUE),
    S.NEW: frozenset({S.TRIGGERED} | _LIVE_AT_VENUE),
    S.REPLACED: frozenset({S.TRIGGERED} | _LIVE_AT_VENUE),
    S.PARTIALLY_FILLED: _LIVE_AT_VENUE,
    S.PENDING_CANCEL: frozenset({S.CANCELED, S.PARTIALLY_FILLED, S.FILLED, S.EXPIRED}),
    S.PENDING_REPLACE: frozenset({S.REPLACED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    **{terminal: frozenset() for terminal in TERMINAL},
}


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    """Whether an order in `current` may move to `target`."""
    return target in TRANSITIONS[current]
