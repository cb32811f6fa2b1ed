"""Order requests as domain specs: the deterministic order id of a client order id, and what the
instrument's reference data says of a spec before risk sees it."""

from __future__ import annotations

import secrets
from decimal import Decimal

from sqlalchemy import Engine

from meltica.api.keys import ApiKey
from meltica.api.schemas import OrderRequest
from meltica.domain.orders.model import OrderSpec
from meltica.domain.values import TrailingOffsetType, is_multiple
from meltica.events.envelope import derive_event_id, order_id_for
from meltica.projections import queries


def spec_of(body: OrderRequest, key: ApiKey) -> OrderSpec:
    """The order `key` asks for; without a client order id, a fresh one."""
    client_id = body.client_order_id or derive_event_id(f"api/{key.key_id}/{secrets.token_hex(16)}")
    return OrderSpec(
        order_id=order_id_for(body.account_id, client_id),
        client_order_id=client_id,
        account_id=body.account_id,
        instrument_id=body.instrument_id,
        side=body.side,
        order_type=body.type,
        quantity=body.quantity,
        price=body.price,
        trigger_price=body.trigger_price,
        trigger_type=body.trigger_type,
        trailing_offset=body.trailing_offset,
        trailing_offset_type=TrailingOffsetType.NONE
        if body.trailing_offset is None
        else TrailingOffsetType(body.trailing_offset_type),
        limit_offset=body.limit_offset,
        activation_price=body.activation_price,
        display_quantity=body.display_quantity,
        time_in_force=body.time_in_force,
        expire_time_ns=body.expire_time_ns,
        post_only=body.post_only,
        reduce_only=body.reduce_only,
        tags={"api_key": key.key_id},
    )


def lot_problem(db: Engine, spec: OrderSpec) -> str | None:
    """What the instrument's lot size makes of the spec's display quantity, if anything (risk
    checks every quantity's precision again; this names the field at once)."""
    if spec.display_quantity is None:
        return None
    row = queries.instrument(db, spec.instrument_id)
    lot = None if row is None else Decimal(row["size_increment"])
    if lot is not None and not is_multiple(spec.display_quantity, lot):
        return f"display_quantity {spec.display_quantity} is not a multiple of the lot size {lot}"
    return None
