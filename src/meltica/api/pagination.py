"""Cursor pagination of every list endpoint: keyset pages over a unique, stable order.

A page is `{"items": [...], "next_cursor": "..."}`; `next_cursor` is null on the last page, so a
list is never cut short without saying so. A cursor is opaque: the list's name and the sort key of
the page's last row, as base64url JSON with a checksum. Anything else — edited, truncated, from
another list, a value out of its column's range — is `400 bad-cursor`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query

from meltica.api.problems import Problem
from meltica.api.schemas import Page
from meltica.projections.queries import InvalidKeyError, Keyset, Rows

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR = 512
_SALT = b"meltica.cursor.v1/"

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
Cursor = Annotated[str | None, Query(description="The next_cursor of the previous page.")]


def bad_cursor(detail: str = "use the next_cursor of the previous page, unchanged") -> Problem:
    return Problem(400, "bad-cursor", "Bad cursor", detail)


def _checksum(payload: bytes) -> str:
    return hashlib.sha256(_SALT + payload).hexdigest()[:16]


def encode(name: str, values: Sequence[Any]) -> str:
    """The cursor after a row whose sort key is `values`, in list `name`."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    payload = json.dumps([name, *plain], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _checksum(payload)


def decode(keyset: Keyset, cursor: str) -> tuple[Any, ...]:
    """The sort key a cursor of `keyset`'s list holds, checked against the key's columns."""
    body, dot, checksum = cursor.partition(".")
    if len(cursor) > MAX_CURSOR or not dot or not body:
        raise bad_cursor()
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise bad_cursor() from None
    if checksum != _checksum(payload):
        raise bad_cursor()
    try:
        found = json.loads(payload)
    except ValueError:
        raise bad_cursor() from None
    if not isinstance(found, list) or not found or found[0] != keyset.name:
        raise bad_cursor(f"not a cursor of {keyset.name}")
    try:
        return keyset.key(found[1:])
    except InvalidKeyError as err:
        raise (bad_cursor(str(err)) if str(err) else bad_cursor()) from None


def after(keyset: Keyset, cursor: str | None) -> tuple[Any, ...] | None:
    """Where a page of `keyset`'s list starts: after the cursor's key (None: at the start)."""
    return decode(keyset, cursor) if cursor else None


def page(keyset: Keyset, rows: Rows, item: Callable[[dict[str, Any]], dict[str, Any]] = dict) -> Page:
    """`rows` as a page, with the cursor of the next page if more rows follow."""
    nxt = None if rows.last is None else encode(keyset.name, rows.last)
    return Page(items=[item(r) for r in rows.items], next_cursor=nxt)
