"""Thin adapters between the runtime and the deciders: route inputs, key outputs."""
