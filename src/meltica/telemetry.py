"""OpenTelemetry set-up and W3C trace-context propagation through record headers."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import REGISTRY, generate_latest

from meltica.log.base import Headers

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = ("traceparent", "tracestate")


def tracer_provider(exporter: str | SpanExporter | None = None, sample_ratio: float = 1.0) -> TracerProvider:
    """A provider exporting to `exporter` if given. Every event gets trace context; a fraction
    `sample_ratio` of new traces is recorded (children follow their parent's decision)."""
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    if exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":  # to an OpenTelemetry collector; OTEL_EXPORTER_OTLP_ENDPOINT says where
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif isinstance(exporter, SpanExporter):
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


_installed: list[TracerProvider] = []
_meters: list[metrics.Meter] = []


def meter() -> metrics.Meter:
    """The process-wide meter, exported in Prometheus format (`/metrics`)."""
    if not _meters:
        provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
        metrics.set_meter_provider(provider)
        _meters.append(provider.get_meter("meltica"))
    return _meters[0]


def prometheus_text() -> bytes:
    """Every metric in the Prometheus text format."""
    meter()
    return generate_latest(REGISTRY)


def configure(exporter: str | None = None, sample_ratio: float = 1.0) -> None:
    """Install the process-wide tracer provider once (ids for every event; export if asked)."""
    if not _installed:
        _installed.append(tracer_provider(exporter, sample_ratio))
        trace.set_tracer_provider(_installed[0])


_CONTEXTS: dict[bytes, Context] = {}


def extract(headers: Headers) -> Context:
    """The trace context carried by record headers (empty context if none); parsed once per value."""
    parent = next((v for k, v in headers if k == "traceparent"), None)
    if parent is None:
        return Context()
    state = next((v for k, v in headers if k == "tracestate"), b"")
    key = parent + b"|" + state
    found = _CONTEXTS.get(key)
    if found is None:
        if len(_CONTEXTS) > 10_000:
            _CONTEXTS.clear()
        carrier = {"traceparent": parent.decode("latin-1")}
        if state:
            carrier["tracestate"] = state.decode("latin-1")
        found = _CONTEXTS[key] = _PROPAGATOR.extract(carrier)
    return found


def inject(context: Context | None = None) -> Headers:
    """Headers carrying the current (or given) span's trace context."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return tuple((k, v.encode("latin-1")) for k, v in carrier.items())


def unsampled(headers: Headers) -> Headers | None:
    """The trace headers of `headers` when they carry a trace that is not recorded (its
    `traceparent` flags unsampled): a step passes them on as they came instead of making a span
    nobody records. None when the trace is sampled, or there is none."""
    parent = next((v for k, v in headers if k == "traceparent"), None)
    if parent is None or len(parent) != 55 or int(parent[53:55], 16) & 1:
        return None
    return tuple((k, v) for k, v in headers if k in ("traceparent", "tracestate"))


def span_headers(span: trace.Span) -> Headers:
    """`traceparent` (and `tracestate`) of `span`, formatted directly (W3C Trace Context)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ()
    parent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}".encode()
    if ctx.trace_state:
        return (("traceparent", parent), ("tracestate", ctx.trace_state.to_header().encode()))
    return (("traceparent", parent),)


def trace_id(headers: Headers) -> str | None:
    """The trace id in `traceparent`, or None."""
    value: Mapping[str, bytes] = dict(headers)
    parent = value.get("traceparent")
    return parent.decode().split("-")[1] if parent else None


__all__ = ["extract", "inject", "span_headers", "trace", "trace_id", "tracer_provider"]
