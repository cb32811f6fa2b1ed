"""OKX spot: the execution adapter (`execution`, through ccxt) and the wire format market data shares."""
