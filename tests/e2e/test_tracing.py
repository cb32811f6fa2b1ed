"""One order is one trace, from the submit command to the fill and its portfolio events."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from meltica import telemetry
from meltica.runtime.publisher import Publisher
from meltica.topics import ORDER_EVENTS, PORTFOLIO_EVENTS, VENUE_REPORTS, VENUE_REQUESTS
from meltica.topology import build_engine
from tests.e2e.stack import Stack


def test_an_order_is_one_trace_from_submit_to_fill() -> None:
    exporter = InMemorySpanExporter()
    tracer = telemetry.tracer_provider(exporter).get_tracer("test")
    stack = Stack()
    stack.publisher = Publisher(stack.log, stack.codec, stack.clock, tracer)
    stack.engine = build_engine(stack.log, stack.codec, clock=stack.clock, tracer=tracer)
    stack.setup()
    spec = stack.submit(qty="1", price="99.90")  # rests, fills later on a trade
    stack.trade("99.80")
    assert stack.order_events(spec.order_id)[-1] == "OrderFilled"

    command = [r for p in range(2) for r in stack.log.read("orders.commands", p, 0, 100)][-1]
    trace = telemetry.trace_id(command.headers)
    assert trace is not None
    related = []
    for topic in (ORDER_EVENTS, VENUE_REQUESTS, VENUE_REPORTS, PORTFOLIO_EVENTS):
        for p in range(2):
            for rec in stack.log.read(topic, p, 0, 1000):
                fields = stack.codec.decode_record(rec).record
                if spec.order_id in (fields.get("order_id"), (fields.get("order") or {}).get("order_id")):
                    related.append(rec)
    assert len(related) >= 7
    assert {telemetry.trace_id(r.headers) for r in related} == {trace}
    spans = {s.name for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace}
    assert {
        "risk SubmitOrder",
        "orders OrderAccepted",
        "venue VenueSubmitOrder",
        "orders ExecutionReport",
    } <= spans


def test_an_unsampled_order_keeps_its_trace_id_and_makes_no_spans() -> None:
    """Sampling 0: the submit starts a trace nobody records; every event of the order carries its
    trace id all the same, and no processor makes a span for it."""
    exporter = InMemorySpanExporter()
    tracer = telemetry.tracer_provider(exporter, sample_ratio=0.0).get_tracer("test")
    stack = Stack()
    stack.publisher = Publisher(stack.log, stack.codec, stack.clock, tracer)
    stack.engine = build_engine(stack.log, stack.codec, clock=stack.clock, tracer=tracer)
    stack.setup()
    spec = stack.submit(qty="1", price="100.02")
    assert stack.order_events(spec.order_id)[-1] == "OrderFilled"
    command = [r for p in range(2) for r in stack.log.read("orders.commands", p, 0, 100)][-1]
    trace = telemetry.trace_id(command.headers)
    assert trace is not None
    events = [r for p in range(2) for r in stack.log.read(ORDER_EVENTS, p, 0, 1000)]
    mine = [r for r in events if telemetry.trace_id(r.headers) == trace]
    assert len(mine) >= 4  # accepted, submitted, acknowledged, filled
    assert exporter.get_finished_spans() == ()
