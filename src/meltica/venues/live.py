"""Which registry connections execute orders, and for which venue code.

A connection of the venue registry (`meltica venues add NAME KIND -p ...`) always brings market
data; a connection of a kind listed here with an `account` parameter also executes that Meltica
account's orders at the venue (its gateway, `venues/gateway.py`). The engine's execution processor
learns from the registry's events which venue codes are served that way and leaves their requests
to the gateway instead of rejecting them as an unknown venue.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from meltica.venues.port import ExecutionAdapter

EXECUTING_KINDS = {"binance": "BINANCE", "okx": "OKX"}
"""Adapter kinds that can execute orders, and the venue code their instrument ids carry by default."""

GATEWAY_PARAMS = ("account", "external_orders", "max_request_age_s")
"""Connection parameters that belong to the gateway, not to the market-data adapter."""
CREDENTIAL_PARAMS = ("api_key_file", "secret_file", "passphrase_file")
NEEDED_CREDENTIALS = {"binance": ("api_key_file", "secret_file"), "okx": CREDENTIAL_PARAMS}
"""The credential files each kind needs to trade (OKX also has a passphrase)."""

EXTERNAL_ORDER_POLICIES = ("ignore", "cancel")
"""What the gateway does with an open order at the venue that Meltica never sent."""


def execution_venue(adapter: str, params: Mapping[str, str]) -> str | None:
    """The venue code a connection executes orders for, or None when it brings market data only."""
    if adapter not in EXECUTING_KINDS or not params.get("account"):
        return None
    return (params.get("venue") or EXECUTING_KINDS[adapter]).upper()


def connection_venue(adapter: str, params: Mapping[str, str]) -> str:
    """The venue code whose market data a connection brings (its `venue` parameter, else the
    kind's own code; the data adapters' default is the simulated venue, SIM)."""
    return params.get("venue") or EXECUTING_KINDS.get(adapter) or "SIM"


def market_params(params: Mapping[str, str]) -> dict[str, str]:
    """A connection's parameters without the gateway's (what its market-data adapter takes)."""
    return {k: v for k, v in params.items() if k not in GATEWAY_PARAMS}


def check_gateway(adapter: str, params: Mapping[str, str]) -> None:
    """Refuse bad gateway parameters now (a ValueError with the reason), before a command is logged."""
    if not params.get("account"):
        for name in GATEWAY_PARAMS[1:]:
            if name in params:
                raise ValueError(f"{name} needs account= (the Meltica account this connection trades for)")
        return
    if adapter not in EXECUTING_KINDS:
        raise ValueError(
            f"adapter {adapter!r} does not execute orders (those that do: {', '.join(EXECUTING_KINDS)})"
        )
    policy = params.get("external_orders", "ignore")
    if policy not in EXTERNAL_ORDER_POLICIES:
        raise ValueError(f"external_orders={policy!r}: one of {', '.join(EXTERNAL_ORDER_POLICIES)}")
    age = params.get("max_request_age_s", "30")
    try:
        if not 0 < float(age) <= 3600:
            raise ValueError
    except ValueError:
        raise ValueError(f"max_request_age_s={age!r}: seconds in (0, 3600]") from None
    for name in NEEDED_CREDENTIALS[adapter]:
        _secret(adapter, params, name)  # readable and not empty; the value is not kept


def _secret(adapter: str, params: Mapping[str, str], name: str) -> str:
    """A credential from the file a parameter names, or from `MELTICA_<KIND>_<NAME>` (a path too)."""
    variable = f"MELTICA_{adapter.upper()}_{name.upper()}"
    path = params.get(name) or os.environ.get(variable)
    if not path:
        raise ValueError(f"trading needs {name}= (a file holding the credential) or {variable}")
    try:
        value = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ValueError(f"{name}: cannot read {path}: {err.strerror}") from None
    if not value:
        raise ValueError(f"{name}: {path} is empty")
    return value


def make_execution(adapter: str, params: Mapping[str, str]) -> ExecutionAdapter:
    """The execution adapter of a connection that executes (`execution_venue` is not None)."""
    venue = execution_venue(adapter, params) or EXECUTING_KINDS.get(adapter, "")
    rest_url, ws_url = params.get("rest_url") or None, params.get("ws_url") or None
    if adapter == "binance":
        from meltica.venues.binance.config import BinanceConfig
        from meltica.venues.binance.execution import BinanceExecution

        return BinanceExecution(
            BinanceConfig(
                api_key=_secret(adapter, params, "api_key_file"),
                secret=_secret(adapter, params, "secret_file"),
                venue=venue,
                rest_url=rest_url,
                ws_url=ws_url,
                sandbox=params.get("testnet", "false").lower() == "true",
            )
        )
    if adapter == "okx":
        from meltica.venues.okx.config import OkxConfig
        from meltica.venues.okx.execution import OkxExecution

        return OkxExecution(
            OkxConfig(
                api_key=_secret(adapter, params, "api_key_file"),
                secret=_secret(adapter, params, "secret_file"),
                passphrase=_secret(adapter, params, "passphrase_file"),
                venue=venue,
                rest_url=rest_url,
                ws_url=ws_url,
                demo=params.get("demo", "false").lower() == "true",
            )
        )
    raise ValueError(f"adapter {adapter!r} does not execute orders")


class SecretPathRefusedError(ValueError):
    """A credential file named over the API outside the secret folders."""


def check(
    adapter: str,
    params: Mapping[str, str],
    *,
    replay_roots: Sequence[Path] | None = None,
    secret_roots: Sequence[Path] | None = None,
) -> None:
    """Refuse an unknown adapter or bad parameters, the gateway's included (a ValueError). With
    `secret_roots` (a client over the API), a credential file must resolve inside one of them — checked
    before the file is looked at, so a client cannot learn which files exist elsewhere."""
    if secret_roots is not None:
        for name in CREDENTIAL_PARAMS:
            if name in params and not _inside(Path(params[name]), secret_roots):
                where = ", ".join(str(r) for r in secret_roots) or "none are configured"
                raise SecretPathRefusedError(
                    f"{name} must be a file in the secret directories ({where}); see MELTICA_SECRET_DIRS"
                )
    from meltica.marketdata import adapters

    adapters.check(adapter, market_params(params), replay_roots)
    check_gateway(adapter, params)


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    real = path.expanduser().resolve()
    return any(real.is_relative_to(root.resolve()) for root in roots)
