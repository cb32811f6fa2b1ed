"""Read models: SQL tables fed by the projector, their migrations and queries."""
