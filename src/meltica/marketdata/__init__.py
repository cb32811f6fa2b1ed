"""Market data: instrument definitions, a synthetic feed, and replay of recorded files."""
