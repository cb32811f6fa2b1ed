"""Domain dataclasses <-> Avro records. Field names match one to one; an event's `ts` is the
envelope's `ts_event` (the `meta` record is built by the caller and passed through)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any

from meltica.domain import control
from meltica.domain.audit import ApiCallAudited
from meltica.domain.instruments import Instrument
from meltica.domain.marketdata import Bar, OrderBookDelta, OrderBookSnapshot, QuoteTick, TradeTick
from meltica.domain.orders import commands as order_commands
from meltica.domain.orders import events as order_events
from meltica.domain.portfolio import events as portfolio_events
from meltica.domain.risk import events as risk_events
from meltica.errors import SchemaError


def _classes(module: types.ModuleType) -> dict[str, type]:
    return {
        name: obj
        for name, obj in vars(module).items()
        if isinstance(obj, type)
        and dataclasses.is_dataclass(obj)
        and not name.startswith("_")
        and obj.__module__ == module.__name__
        and name != "Fill"
    }


# Avro record name -> domain class, for every record that travels on a topic.
DOMAIN_TYPES: dict[str, type] = {
    **_classes(order_commands),
    **_classes(order_events),
    **_classes(risk_events),
    **_classes(portfolio_events),
    **_classes(control),
    "QuoteTick": QuoteTick,
    "TradeTick": TradeTick,
    "OrderBookDelta": OrderBookDelta,
    "OrderBookSnapshot": OrderBookSnapshot,
    "Bar": Bar,
    "InstrumentDefined": Instrument,
    "ApiCallAudited": ApiCallAudited,
}
NAMES: dict[type, str] = {cls: name for name, cls in DOMAIN_TYPES.items()}


Writer = Callable[[Any], Any]


def _writer(tp: Any) -> Writer | None:
    """A function turning a domain value of type `tp` into its Avro form (None: as it is)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = _writer(args[0]) if len(args) == 1 else None
        if inner is None:
            return None
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        item = _writer(typing.get_args(tp)[0])
        return list if item is None else (lambda v: [item(x) for x in v])
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        return dict
    if isinstance(tp, type) and issubclass(tp, Enum):
        return lambda v: v.value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _record_writer(tp)
    return None


@cache
def _record_writer(cls: type) -> Callable[[Any], dict[str, Any]]:
    hints = typing.get_type_hints(cls)
    plan = [(f.name, _writer(hints[f.name])) for f in dataclasses.fields(cls) if f.name != "ts"]

    def write(value: Any) -> dict[str, Any]:
        return {name: getattr(value, name) if w is None else w(getattr(value, name)) for name, w in plan}

    return write


def avro_name(event: Any) -> str:
    """The Avro record name of a domain event."""
    try:
        return NAMES[type(event)]
    except KeyError:
        raise SchemaError(f"{type(event).__name__} has no Avro schema") from None


def to_record(event: Any, meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(Avro name, record) for a domain event with envelope metadata `meta`."""
    try:
        name = NAMES[type(event)]
    except KeyError:
        raise SchemaError(f"{type(event).__name__} has no Avro schema") from None
    cls: type = type(event)
    record = _record_writer(cls)(event)
    record["meta"] = meta
    return name, record


Reader = Callable[[Any], Any]


def _identity(v: Any) -> Any:
    return v


def _reader(tp: Any) -> Reader:
    """A function turning the Avro form of a `tp` value into the domain value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = _reader(args[0]) if len(args) == 1 else _identity
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        item = _reader(typing.get_args(tp)[0])
        return lambda v: tuple(item(x) for x in v)
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        return dict
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _record_reader(tp)
    if tp is Decimal:
        return lambda v: v if isinstance(v, Decimal) else Decimal(v)
    return _identity


@cache
def _record_reader(cls: type) -> Reader:
    hints = typing.get_type_hints(cls)
    readers = {f.name: _reader(hints[f.name]) for f in dataclasses.fields(cls) if f.name != "ts"}
    has_ts = "ts" in hints

    def read(record: Mapping[str, Any]) -> Any:
        kwargs = {name: reader(record[name]) for name, reader in readers.items() if name in record}
        if has_ts:
            kwargs["ts"] = record["meta"]["ts_event"] if "meta" in record else 0
        return cls(**kwargs)

    return read


def from_record(name: str, record: Mapping[str, Any]) -> Any:
    """The domain event of a decoded Avro record."""
    try:
        cls = DOMAIN_TYPES[name]
    except KeyError:
        raise SchemaError(f"no domain type for Avro record {name!r}") from None
    return _record_reader(cls)(record)


def json_default(value: Any) -> Any:
    """`json.dumps` default for decoded records: decimals as exact strings, enums as their value,
    bytes as hex."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
