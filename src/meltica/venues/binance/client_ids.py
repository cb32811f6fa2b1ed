"""Meltica's order ids as Binance client order ids, and back.

Binance takes client order ids matching `^[.A-Z:/a-z0-9_-]{1,36}$`, unique among open orders. An
order first travels under its Meltica order id itself (generation 0). Binance spot amends a price by
cancel-replace, which places a new order that needs a client id of its own: generation `n` of the
same Meltica order. Meltica's order ids are UUIDs (36 characters, no room for a suffix), so a UUID's
later generations pack its 16 bytes as 22 URL-safe base64 characters: `<b64>/<n>`; any other id
that fits gets `<id>:<n>`. Neither a UUID nor base64 holds `/` or `:`, so every client id decodes to
one (order id, generation); ids placed outside Meltica decode to themselves.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid

MAX_LENGTH = 36
BINANCE_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
ORDER_ID = re.compile(r"^[.A-Za-z0-9_-]{1,36}$")
"""The order ids that can travel: Binance's alphabet without the two separators."""
_UUID_GENERATION = re.compile(r"^([A-Za-z0-9_-]{22})/([0-9]+)$")
_PLAIN_GENERATION = re.compile(r"^(.+):([0-9]+)$")


def is_canonical_uuid(order_id: str) -> bool:
    try:
        return str(uuid.UUID(order_id)) == order_id
    except ValueError:
        return False


def _stem(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def client_id(order_id: str, generation: int = 0) -> str:
    """The client order id of `order_id`'s `generation`-th venue order (0: as submitted, n: after
    n cancel-replaces). Raises ValueError when the order id cannot be carried."""
    if not ORDER_ID.match(order_id):
        raise ValueError(f"order id {order_id!r} is not a Binance client order id ({ORDER_ID.pattern})")
    if generation < 0:
        raise ValueError(f"generation {generation} is negative")
    if generation == 0:
        return order_id
    if is_canonical_uuid(order_id):
        return f"{_stem(uuid.UUID(order_id).bytes)}/{generation}"
    cid = f"{order_id}:{generation}"
    if len(cid) > MAX_LENGTH:
        raise ValueError(f"order id {order_id!r} is too long for a replaced order's client id")
    return cid


def decode(cid: str) -> tuple[str, int]:
    """(Meltica order id, generation) of a client order id; an id placed outside Meltica is its own
    order id at generation 0."""
    found = _UUID_GENERATION.match(cid)
    if found:
        try:
            raw = base64.urlsafe_b64decode(found.group(1) + "==")
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 16 and _stem(raw) == found.group(1):
            return str(uuid.UUID(bytes=raw)), int(found.group(2))
        return cid, 0
    found = _PLAIN_GENERATION.match(cid)
    if found:
        return found.group(1), int(found.group(2))
    return cid, 0


def order_id_of(cid: str) -> str:
    """Meltica's order id of a client order id (whatever its generation)."""
    return decode(cid)[0]
