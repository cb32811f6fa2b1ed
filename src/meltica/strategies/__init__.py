"""Strategies: processors that read market data and their own order events and emit commands."""
