"""Orders: commands, events, the transition table and the order-book decider."""
