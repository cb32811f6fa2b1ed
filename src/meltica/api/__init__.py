"""The REST API (FastAPI): submit commands as events, read the projections."""
