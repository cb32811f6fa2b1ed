"""Exact decimals on the wire: Avro `string` annotated with logicalType `meltica-decimal`.

Values are written as the canonical `str()` of a finite `Decimal` and read back as `Decimal`.
Readers that do not know the logical type see a plain decimal string. Floats are refused:
money and quantities never pass through binary floating point.

The wire's range is what Meltica computes with exactly: a magnitude below 10**28 (`PRECISION`,
the digits the decimal context keeps). A value beyond it is refused on write and on read (the
runtime dead-letters such a record; the projector passes over it). Amounts credited or debited
are held tighter (`domain.amounts`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastavro.read import LOGICAL_READERS
from fastavro.write import LOGICAL_WRITERS

from meltica.domain.amounts import PRECISION

LOGICAL_TYPE = "meltica-decimal"
_KEY = f"string-{LOGICAL_TYPE}"


def in_range(value: Decimal) -> bool:
    """Whether finite `value` is inside the wire's range: below 10**PRECISION in magnitude."""
    return not value or value.adjusted() < PRECISION


def to_wire(value: Any, _schema: Any = None) -> str:
    """Decimal (or int, or decimal string) -> canonical decimal string."""
    if type(value) is Decimal:
        if not value.is_finite():
            raise ValueError(f"decimal must be finite, got {value}")
        if not in_range(value):
            raise ValueError(f"decimal out of range (|x| < 1E+{PRECISION}), got {value}")
        return str(value)
    if isinstance(value, (bool, float)):
        raise TypeError(f"decimal fields take Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, int | str | Decimal):
        try:
            parsed = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a decimal: {value!r}") from None
        return to_wire(parsed)
    raise TypeError(f"decimal fields take Decimal, int or str, not {type(value).__name__}")


def from_wire(value: str, _writer: Any = None, _reader: Any = None) -> Decimal:
    """Canonical decimal string -> Decimal; anything else is a decode error."""
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {value!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"decimal must be finite, got {value!r}")
    if not in_range(parsed):
        raise ValueError(f"decimal out of range (|x| < 1E+{PRECISION}), got {value[:40]!r}")
    return parsed


def install() -> None:
    """Teach fastavro the logical type (idempotent)."""
    LOGICAL_WRITERS[_KEY] = to_wire
    LOGICAL_READERS[_KEY] = from_wire


install()
