"""Comparing processor states structurally (snapshot tests)."""

from __future__ import annotations

from collections import deque
from dataclasses import fields, is_dataclass
from decimal import Decimal
from enum import Enum
from typing import Any


def canonical(value: Any, seen: frozenset[int] = frozenset()) -> Any:
    """Structural form of a state: objects as their attributes, sets sorted, loggers by name."""
    if isinstance(value, str | int | float | bool | Decimal | Enum | bytes) or value is None:
        return value
    if id(value) in seen:
        return ("<cycle>", type(value).__name__)
    seen = seen | {id(value)}
    if isinstance(value, dict):
        return {repr(canonical(k, seen)): canonical(v, seen) for k, v in value.items()}
    if isinstance(value, list | tuple | deque):
        return [canonical(v, seen) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((canonical(v, seen) for v in value), key=repr)
    if type(value).__name__ == "Logger":
        return ("logger", value.name)
    if is_dataclass(value):
        return (
            type(value).__name__,
            {f.name: canonical(getattr(value, f.name), seen) for f in fields(value)},
        )
    attrs = dict(getattr(value, "__dict__", {}))
    for slot in getattr(type(value), "__slots__", ()):
        if hasattr(value, slot):
            attrs[slot] = getattr(value, slot)
    return (type(value).__name__, {k: canonical(v, seen) for k, v in sorted(attrs.items())})
