"""The one decimal syntax of every money, quantity and price the API (and the CLI) takes.

A decimal is a JSON string of ASCII digits with an optional sign and fraction: `^-?\\d+(\\.\\d+)?$`,
at most 20 digits before the point and 18 after it. No exponent, no underscores, no whitespace,
no `NaN` or `Infinity`, and no JSON numbers (a JSON number is a binary float to most parsers, so
it is not exact). Anything else is a 422 naming the field; the CLI answers the same way."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from meltica.domain.amounts import INTEGER_DIGITS, SCALE

PATTERN = rf"^-?\d{{1,{INTEGER_DIGITS}}}(\.\d{{1,{SCALE}}})?$"
_SYNTAX = re.compile(PATTERN, re.ASCII)
SYNTAX_HELP = (
    f'a decimal string such as "0.01": digits, an optional "-" and fraction, at most '
    f"{INTEGER_DIGITS} digits before the point and {SCALE} after it; no exponent, spaces or underscores"
)


def parse_decimal(text: str) -> Decimal:
    """`text` as an exact Decimal if it has the one decimal syntax; a ValueError saying why not."""
    if not _SYNTAX.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not {SYNTAX_HELP}")
    return Decimal(text)


def _strict(value: Any) -> Decimal:
    if isinstance(value, Decimal):  # a default, or a value set in code
        return value
    if not isinstance(value, str):
        raise ValueError(f"give decimals as JSON strings, {SYNTAX_HELP}")
    return parse_decimal(value)


_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": PATTERN,
        "maxLength": INTEGER_DIGITS + SCALE + 2,
        "description": f"An exact decimal: {SYNTAX_HELP}.",
        "examples": ["0.01"],
    }
)

Amount = Annotated[Decimal, BeforeValidator(_strict), _SCHEMA]
"""Any decimal in the one syntax (sign allowed)."""
Positive = Annotated[Decimal, BeforeValidator(_strict), Field(gt=0), _SCHEMA]
"""A decimal in the one syntax, greater than zero: quantities, prices, limits."""


def check_numeric_text(text: str) -> None:
    """A ValueError if `text` reads as a number to Python (`1_000`, ` 0.01 `, `1e3`, `NaN`, `٣`) but
    not in the one decimal syntax; words pass. For free-form parameters (strategies, venues)."""
    try:
        Decimal(text)
    except ArithmeticError:
        return
    parse_decimal(text)
