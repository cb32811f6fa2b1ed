"""The shipped strategies by name, and user strategies by `module:Class` (subclasses of the same
`Strategy` API, constructed the same way: `Class(instrument_id, **keyword parameters)`), with their
parameters parsed from `name=value` strings."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping, Sequence

from meltica.strategies.base import Strategy
from meltica.strategies.grid import Grid
from meltica.strategies.market_making import MarketMaking
from meltica.strategies.mean_reversion import MeanReversion
from meltica.strategies.momentum import Momentum
from meltica.strategies.operators import DelayStrategy, LoggingStrategy
from meltica.strategies.sma_cross import SmaCross

STRATEGIES: dict[str, type[Strategy]] = {
    "sma-cross": SmaCross,
    "momentum": Momentum,
    "mean-reversion": MeanReversion,
    "grid": Grid,
    "market-making": MarketMaking,
    "logging": LoggingStrategy,
    "delay": DelayStrategy,
}
IDENTITY = ("instrument_id", "strategy_id", "account_id")  # given by the instance, not parameters


Modules = bool | Sequence[str]
"""Which `module:Class` names may load: False none, True any (the CLI's own), else the modules
under these prefixes (an operator's `strategy_modules`, for remote callers)."""
MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class StrategyNotAllowedError(ValueError):
    """A `module:Class` strategy whose module is outside the allowed prefixes."""


def allowed(module_name: str, modules: Modules) -> bool:
    """Whether `module_name` may be imported under `modules`."""
    if isinstance(modules, bool):
        return modules
    return any(module_name == p or module_name.startswith(p + ".") for p in modules if p)


def resolve(name: str, *, modules: Modules = False) -> type[Strategy]:
    """The strategy class a name gives: a shipped one or `module:Class` importable from the path,
    if `modules` allows its module (importing runs the module: for remote callers only under the
    operator's prefixes); a StrategyNotAllowedError, or another ValueError saying why not."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    module_name, sep, class_name = name.partition(":")
    if not sep:
        raise ValueError(f"unknown strategy {name!r}; one of {', '.join(STRATEGIES)}, or module:Class")
    if not modules:
        raise StrategyNotAllowedError(
            f"strategy {name}: user strategy modules are not enabled here (the setting "
            "strategy_modules, MELTICA_STRATEGY_MODULES, is empty)"
        )
    if not MODULE_NAME.fullmatch(module_name) or not class_name.isidentifier():
        raise ValueError(f"strategy {name}: not module.path:Class")
    if not allowed(module_name, modules):
        prefixes = ", ".join(modules) if not isinstance(modules, bool) and modules else "none"
        raise StrategyNotAllowedError(
            f"strategy {name}: module {module_name} is not under the allowed prefixes of the setting "
            f"strategy_modules (MELTICA_STRATEGY_MODULES): {prefixes}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"strategy {name}: cannot import {module_name}: {err}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ValueError(f"strategy {name}: {module_name} has no Strategy subclass {class_name}")
    return cls


def parameters(name: str, *, modules: Modules = False) -> dict[str, str]:
    """The parameters a strategy takes, with their defaults as text."""
    signature = inspect.signature(resolve(name, modules=modules).__init__)
    return {
        p.name: "" if p.default is inspect.Parameter.empty else str(p.default)
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in IDENTITY
    }


def build(
    name: str,
    instrument_id: str,
    params: Mapping[str, str],
    *,
    strategy_id: str | None = None,
    account_id: str | None = None,
    modules: Modules = False,
) -> Strategy:
    """A strategy from its name and `name=value` parameters; unknown or malformed ones are a ValueError."""
    cls = resolve(name, modules=modules)
    known = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, object] = {}
    for key, raw in params.items():
        if key not in known or key == "instrument_id":
            raise ValueError(
                f"{name} has no parameter {key!r}; it takes {', '.join(parameters(name, modules=modules))}"
            )
        default = known[key].default
        try:
            kwargs[key] = int(raw) if isinstance(default, int) and not isinstance(default, bool) else raw
        except ValueError:
            raise ValueError(f"{key} must be an integer, got {raw!r}") from None
    if strategy_id is not None:
        kwargs["strategy_id"] = strategy_id
    if account_id is not None:
        kwargs["account_id"] = account_id
    missing = [
        p.name
        for p in known.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and p.default is inspect.Parameter.empty
        and p.name not in kwargs
    ]
    if missing:
        raise ValueError(f"{name} needs {', '.join(missing)}")
    try:
        return cls(instrument_id, **kwargs)  # type: ignore[call-arg]
    except ArithmeticError:  # decimal.InvalidOperation: a number parameter that is not one
        raise ValueError(f"{name}: a number parameter is not a decimal number") from None
