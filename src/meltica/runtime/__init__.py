"""Hosting processors on an event log: steps, atomic commits, recovery by deterministic replay."""
