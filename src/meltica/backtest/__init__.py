"""Backtests: recorded market data through the same processors as live, under a simulated clock."""
