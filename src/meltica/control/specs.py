"""What an operator declares — risk limits, instruments, venues, strategies — as validated models.

The same models validate the YAML configuration file and the REST API's request bodies, and
turn into the commands that put a declaration into the log."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from meltica.domain.instruments import Instrument, spot
from meltica.domain.risk.events import SetRiskLimits
from meltica.domain.risk.limits import RiskLimits
from meltica.domain.values import OrderType, RiskScope

Px = Annotated[Decimal, Field(gt=0, max_digits=38, decimal_places=18, allow_inf_nan=False)]
Fee = Annotated[Decimal, Field(ge=-1, le=1, max_digits=38, decimal_places=18, allow_inf_nan=False)]
Int32 = Annotated[int, Field(ge=1, le=2**31 - 1)]
Nanos = Annotated[int, Field(ge=0, le=2**63 - 1)]
Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
Kind = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^([A-Za-z0-9_\-]+|[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*)$",
        description="A shipped strategy, or module:Class under the server's strategy_modules.",
    ),
]
ParamValue = str | int | float | bool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LimitsRequest(Strict):
    """Risk limits of one scope; unset fields fall back to the wider scopes and the defaults."""

    scope: Literal["GLOBAL", "ACCOUNT", "PORTFOLIO", "INSTRUMENT"]
    scope_id: str = Field(default="", max_length=128)
    accounts: list[Id] = Field(default_factory=list, description="PORTFOLIO scope: the accounts it groups.")
    throttle_rate: Px | None = None
    throttle_burst: Int32 | None = None
    price_band: Px | None = None
    max_order_notional: Px | None = None
    max_position: Px | None = None
    max_gross_exposure: Px | None = None
    max_net_exposure: Px | None = None
    max_open_orders: Int32 | None = None
    min_quantity: Px | None = None
    max_quantity: Px | None = None
    allowed_instruments: list[Id] | None = None
    allowed_order_types: list[OrderType] | None = None
    circuit_breaker_breaches: Int32 | None = None
    circuit_breaker_window_ns: Nanos | None = None

    def command(self, operator: str, ts: int) -> SetRiskLimits:
        """The command that sets these limits."""
        fields = self.model_dump(exclude={"scope", "scope_id", "accounts"})
        for key in ("allowed_instruments", "allowed_order_types"):
            if fields.get(key) is not None:
                fields[key] = tuple(fields[key])
        return SetRiskLimits(
            RiskScope(self.scope), self.scope_id, RiskLimits(**fields), operator, ts, tuple(self.accounts)
        )


class InstrumentSpec(Strict):
    """A spot instrument `SYMBOL.VENUE`; precisions follow from the increments."""

    symbol: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
    venue: Name
    base_currency: Annotated[str, Field(min_length=1, max_length=16)]
    quote_currency: Annotated[str, Field(min_length=1, max_length=16)]
    price_increment: Px
    size_increment: Px
    min_notional: Px | None = None
    maker_fee: Fee = Decimal(0)
    taker_fee: Fee = Decimal(0)

    def instrument(self) -> Instrument:
        return spot(
            self.symbol,
            self.venue,
            self.base_currency,
            self.quote_currency,
            price_increment=str(self.price_increment),
            size_increment=str(self.size_increment),
            min_notional=None if self.min_notional is None else str(self.min_notional),
            maker_fee=str(self.maker_fee),
            taker_fee=str(self.taker_fee),
        )


class VenueSpec(Strict):
    """A named market-data/venue connection; several names may share one adapter."""

    name: Name
    adapter: Name
    params: dict[str, ParamValue] = Field(default_factory=dict)
    start: bool = Field(default=True, description="Connect as soon as it is added.")


class StrategySpec(Strict):
    """A strategy instance: which strategy, on what, for which account, with which parameters."""

    strategy_id: Name
    kind: Kind
    account_id: Id
    instrument_id: Id
    params: dict[str, ParamValue] = Field(default_factory=dict)
    start: bool = Field(default=True, description="Start it as soon as it is created.")


def text_params(params: dict[str, ParamValue]) -> dict[str, str]:
    """Parameters as the text the log carries (booleans lower-case)."""
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in sorted(params.items())}
