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
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import BigInteger, Column, DateTime, Engine, Integer, String, Table, and_, or_, select

from meltica.api.problems import Problem
from meltica.api.schemas import Page

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR = 512
_INT64 = 2**63
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


def decode(name: str, columns: Sequence[Column[Any]], cursor: str) -> tuple[Any, ...]:
    """The sort key a cursor of list `name` holds, checked against the key's columns."""
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
    if not isinstance(found, list) or len(found) != len(columns) + 1 or found[0] != name:
        raise bad_cursor(f"not a cursor of {name}")
    return tuple(_value(c, v) for c, v in zip(columns, found[1:], strict=True))


def _value(column: Column[Any], value: Any) -> Any:
    kind = column.type
    if isinstance(kind, BigInteger | Integer):
        if type(value) is not int or not -_INT64 <= value < _INT64:
            raise bad_cursor(f"{column.name} out of range")
        return value
    if isinstance(kind, DateTime):
        try:
            return datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise bad_cursor(f"{column.name} is not a time") from None
    if isinstance(kind, String):
        if not isinstance(value, str) or (kind.length is not None and len(value) > kind.length):
            raise bad_cursor(f"{column.name} is not a valid key")
        return value
    raise bad_cursor()  # pragma: no cover - a key column of another type


def after(columns: Sequence[Column[Any]], values: Sequence[Any]) -> Any:
    """Rows whose key (`columns`, ascending) comes after `values`."""
    first, *rest = columns
    if not rest:
        return first > values[0]
    return or_(first > values[0], and_(first == values[0], after(rest, values[1:])))


@dataclass(frozen=True)
class Keyset:
    """One list: its name (in its cursors) and its unique sort key, ascending."""

    name: str
    columns: tuple[Column[Any], ...]

    def page(
        self,
        db: Engine,
        table: Table,
        where: Sequence[Any],
        limit: int,
        cursor: str | None,
        item: Callable[[dict[str, Any]], dict[str, Any]] = dict,
    ) -> Page:
        """Up to `limit` rows of `table` matching `where` after `cursor`, and the next cursor."""
        conditions = list(where)
        if cursor:
            conditions.append(after(self.columns, decode(self.name, self.columns, cursor)))
        stmt = select(table).where(*conditions).order_by(*self.columns).limit(limit + 1)
        with db.connect() as conn:
            found = [dict(r._mapping) for r in conn.execute(stmt)]
        nxt = None
        if len(found) > limit:
            found = found[:limit]
            nxt = encode(self.name, [found[-1][c.name] for c in self.columns])
        return Page(items=[item(r) for r in found], next_cursor=nxt)
