"""The pure heart of Meltica: orders, risk and portfolio as deciders.

No I/O, no clock reads, no randomness, exact decimals. A decider is `decide(state, input,
ctx) -> events` (pure) and `evolve(state, event) -> state` (applies one event; the state
object is updated in place and returned, so replaying events over a fresh state rebuilds
it). Event classes mirror the Avro schemas of `schemas/avro` field for field; the `ts`
field of an event is the envelope's `ts_event`.
"""
