"""OpenTelemetry set-up and W3C trace-context propagation through record headers."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from meltica.log.base import Headers

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = ("traceparent", "tracestate")


def tracer_provider(exporter: str | SpanExporter | None = None) -> TracerProvider:
    """A provider that always records (ids for every event), exporting to `exporter` if given."""
    provider = TracerProvider()
    if exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif isinstance(exporter, SpanExporter):
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


_installed: list[TracerProvider] = []


def configure(exporter: str | None = None) -> None:
    """Install the process-wide tracer provider once (ids for every event; export if asked)."""
    if not _installed:
        _installed.append(tracer_provider(exporter))
        trace.set_tracer_provider(_installed[0])


def extract(headers: Headers) -> Context:
    """The trace context carried by record headers (empty context if none)."""
    carrier = {k: v.decode("latin-1") for k, v in headers if k in _TRACE_HEADERS}
    return _PROPAGATOR.extract(carrier)


def inject(context: Context | None = None) -> Headers:
    """Headers carrying the current (or given) span's trace context."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return tuple((k, v.encode("latin-1")) for k, v in carrier.items())


def trace_id(headers: Headers) -> str | None:
    """The trace id in `traceparent`, or None."""
    value: Mapping[str, bytes] = dict(headers)
    parent = value.get("traceparent")
    return parent.decode().split("-")[1] if parent else None


__all__ = ["extract", "inject", "trace", "trace_id", "tracer_provider"]
