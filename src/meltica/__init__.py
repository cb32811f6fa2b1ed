"""Meltica: an event-sourced order management and trading system."""

__version__ = "0.1.0"
