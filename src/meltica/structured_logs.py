"""Process logs (stdlib `logging`): text for people, or JSON lines for a log pipeline, each carrying
the service and the trace and span ids of the OpenTelemetry span current when it was emitted."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

from opentelemetry import trace

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s"

_state = {"service": "meltica"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, service, level, logger, message, trace_id, span_id
    (when a span is current), exception (when one is attached) and any `extra={...}` fields."""

    _RESERVED = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "service"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "service": _state["service"],
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in self._RESERVED and not key.startswith("_"):
                entry[key] = value
        return json.dumps(entry, default=str)


class _ServiceFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.service = _state["service"]
        return True


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at emit time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(log_format: LogFormat = "text", service: str | None = None, level: int = logging.INFO) -> None:
    """Route the root logger to stderr in `log_format`; called once per process by the CLI (again
    only to change format, service or level). Replaces the handler it installed before."""
    if service:
        set_service(service)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.addFilter(_ServiceFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)


def set_service(name: str) -> None:
    """The service every later log line names (`meltica run risk` sets `risk`)."""
    _state["service"] = name
