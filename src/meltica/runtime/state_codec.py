"""Snapshot encoding of processor state, kept out of the domain (whose state is plain dataclasses).

`dumps`/`dump` pickle every dataclass of `meltica.domain` as its fields by name, leaving out
caches (`TRANSIENT`); `restore` rebuilds one, giving fields added since the snapshot was taken
their defaults and ignoring fields removed since. Snapshots pickled plainly (each object's
slots, as `pickle.dumps` wrote them before this module) still load with `loads`, which gives
their domain objects the same defaults. A snapshot names `restore` by
its import path: keep it where it is. Only load snapshots whose MAC checked out.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import pickle  # nosec B403 # callers unpickle only MAC-checked snapshots
import pkgutil
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any

import meltica.domain
from meltica.domain.risk.state import RiskState

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

# Fields that are caches of other fields: never written, empty again once restored.
TRANSIENT: Mapping[type, frozenset[str]] = {RiskState: frozenset({"limits_cache"})}

Reduced = tuple[Callable[[type, dict[str, Any]], Any], tuple[type, dict[str, Any]]]


def _default(cls: type, f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise pickle.UnpicklingError(f"{cls.__name__} in the snapshot lacks {f.name!r}, which has no default")


def restore(cls: type, values: dict[str, Any]) -> Any:
    """A `cls` with the snapshot's `values` by name, defaults for the fields it lacks."""
    obj: Any = object.__new__(cls)
    for f in dataclasses.fields(cls):
        value = values[f.name] if f.name in values else _default(cls, f)
        object.__setattr__(obj, f.name, value)  # frozen dataclasses too
    return obj


def _reduce(obj: Any) -> Reduced:
    cls = type(obj)
    skip = TRANSIENT.get(cls, frozenset())
    return restore, (
        cls,
        {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name not in skip},
    )


@cache
def _dispatch_table() -> dict[type, Callable[[Any], Reduced]]:
    """A reducer for every dataclass defined in a `meltica.domain` module."""
    table: dict[type, Callable[[Any], Reduced]] = {}
    for info in pkgutil.walk_packages(meltica.domain.__path__, f"{meltica.domain.__name__}."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
            ):
                table[value] = _reduce
    return table


def dump(value: Any, file: SupportsWrite[bytes]) -> None:
    """Pickle `value` (processor state, a snapshot) into `file`."""
    pickler = pickle.Pickler(file, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _dispatch_table()
    pickler.dump(value)


def dumps(value: Any) -> bytes:
    """`value` pickled as `dump` writes it."""
    buf = io.BytesIO()
    dump(value, buf)
    return buf.getvalue()


# Classes renamed since a snapshot may have been written: (old module, old name) -> (module, name).
RENAMED = {
    ("meltica.processors.venue", "VenueProcessor"): ("meltica.processors.execution", "ExecutionProcessor"),
}


class _Unpickler(pickle.Unpickler):  # nosec B301 # callers pass only MAC-checked snapshots
    def find_class(self, module: str, name: str) -> Any:
        module, name = RENAMED.get((module, name), (module, name))
        return super().find_class(module, name)


def loads(data: bytes) -> Any:
    """The value of a snapshot pickle (written by `dump`, or plainly by an earlier version)."""
    value = _Unpickler(io.BytesIO(data)).load()  # nosec B301 # callers pass only MAC-checked snapshots
    if __name__.encode() not in data:  # plain: objects hold the slots they were pickled with
        _fill_defaults(value)
    return value


_LEAVES = (str, bytes, int, float, complex, Decimal, Enum, type, type(None))


def _fill_defaults(root: Any) -> None:
    """Give every domain dataclass reachable from `root` the fields it lacks, as `restore` does."""
    table = _dispatch_table()
    seen: set[int] = set()
    stack = [root]
    while stack:
        value = stack.pop()
        if isinstance(value, _LEAVES) or id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, dict):
            stack += value.keys()
            stack += value.values()
        elif isinstance(value, list | tuple | set | frozenset | deque):
            stack += value
        else:
            cls = type(value)
            if cls in table:
                for f in dataclasses.fields(value):
                    if not hasattr(value, f.name):
                        object.__setattr__(value, f.name, _default(cls, f))
            stack += getattr(value, "__dict__", {}).values()
            slots = (s for c in cls.__mro__ for s in getattr(c, "__slots__", ()))
            stack += [getattr(value, s) for s in slots if hasattr(value, s)]
