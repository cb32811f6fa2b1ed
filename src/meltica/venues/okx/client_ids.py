"""Meltica's order ids as OKX client order ids (`clOrdId`), and back.

OKX takes up to 32 letters and digits, unique among the account's open orders. A Meltica order id
(a UUID: 36 characters with dashes) travels as `M` + its 16 bytes in base 62 (22 characters); any
other id of letters and digits up to 32 characters travels as itself. OKX amends in place and keeps
the client order id, so one Meltica order is always one OKX order. An id placed outside Meltica
decodes to itself.
"""

from __future__ import annotations

import re
import string
import uuid

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
OKX_CLIENT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
_ENCODED = re.compile(r"^M([0-9A-Za-z]{22})$")


def _base62(number: int) -> str:
    digits = []
    for _ in range(22):
        number, rest = divmod(number, 62)
        digits.append(ALPHABET[rest])
    return "".join(reversed(digits))


def client_id(order_id: str) -> str:
    """The clOrdId of `order_id`; a ValueError when OKX cannot carry it."""
    try:
        parsed = uuid.UUID(order_id)
    except ValueError:
        parsed = None
    if parsed is not None and str(parsed) == order_id:
        return "M" + _base62(parsed.int)
    if not OKX_CLIENT_ID.match(order_id) or _ENCODED.match(order_id):
        raise ValueError(
            f"order id {order_id!r} is not an OKX client order id (a UUID, or 1-32 letters and digits)"
        )
    return order_id


def order_id_of(cid: str) -> str:
    """Meltica's order id of a clOrdId (itself when it was not placed by Meltica)."""
    found = _ENCODED.match(cid)
    if found is None:
        return cid
    number = 0
    for char in found.group(1):
        number = number * 62 + ALPHABET.index(char)
    if number >= 1 << 128:
        return cid
    return str(uuid.UUID(int=number))
