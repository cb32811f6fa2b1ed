"""The range of an amount an account can be credited or debited by (deposits, withdrawals).

Decimal arithmetic keeps `PRECISION` significant digits; an amount has at most `INTEGER_DIGITS`
digits before the point, `SCALE` after it and `PRECISION` in all, so that balances built from
such amounts stay exact, encodable and readable. The wire's own range (`events.decimals`) is
wider: any magnitude below 10**PRECISION.
"""

from __future__ import annotations

from decimal import Decimal

PRECISION = 28  # significant digits of Decimal arithmetic (the default context)
INTEGER_DIGITS = 20
SCALE = 18


def amount_problem(value: Decimal) -> str | None:
    """Why `value` cannot be an amount credited or debited (None when it can)."""
    if not value.is_finite():
        return f"{value} is not a finite number"
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # nosec B101 # typing; finite checked above
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant:
        return None
    exponent += len(digits) - len(significant)
    if value.adjusted() >= INTEGER_DIGITS:
        return f"{value} has more than {INTEGER_DIGITS} digits before the point"
    if -exponent > SCALE:
        return f"{value} has more than {SCALE} decimal places"
    if len(significant) > PRECISION:
        return f"{value} has more than {PRECISION} significant digits"
    return None
