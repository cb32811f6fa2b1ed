"""The order lists of `POST /v1/orders/bulk`: plain orders, OCO (the orders cancel each other)
or BRACKET (an entry, then a take-profit and a stop-loss that cancel each other)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from meltica.api.problems import Problem
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import ContingencyType
from meltica.events.envelope import derive_event_id

Contingency = Literal["NONE", "OCO", "BRACKET"]


def list_id_of(order_ids: Sequence[str]) -> str:
    """Deterministic list id: the same orders are the same list."""
    return derive_event_id("list/" + "/".join(order_ids))


def linked(plain: Sequence[OrderSpec], contingency: Contingency, list_id: str) -> list[OrderSpec]:
    """`plain` with the links of `contingency` (a bracket is entry, take-profit, stop-loss)."""
    if contingency == "OCO":
        ids = [s.order_id for s in plain]
        return [
            dataclasses.replace(
                s,
                contingency_type=ContingencyType.OCO,
                order_list_id=list_id,
                linked_order_ids=tuple(i for i in ids if i != s.order_id),
            )
            for s in plain
        ]
    if contingency == "BRACKET":
        if len(plain) != 3:
            raise Problem(422, "validation", "A bracket is three orders", "entry, take-profit, stop-loss")
        entry, tp, sl = plain
        return [
            dataclasses.replace(entry, contingency_type=ContingencyType.OTO, order_list_id=list_id),
            dataclasses.replace(
                tp,
                contingency_type=ContingencyType.OCO,
                order_list_id=list_id,
                parent_order_id=entry.order_id,
                linked_order_ids=(sl.order_id,),
            ),
            dataclasses.replace(
                sl,
                contingency_type=ContingencyType.OCO,
                order_list_id=list_id,
                parent_order_id=entry.order_id,
                linked_order_ids=(tp.order_id,),
            ),
        ]
    return list(plain)
