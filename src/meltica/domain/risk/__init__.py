"""Pre-trade risk: limits as state changed by events, checks as a list, a decider."""
