"""Portfolio: positions (netting, average cost), balances, PnL and execution analytics."""
