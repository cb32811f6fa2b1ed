"""Venue adapters: translate between venues and Meltica's venue requests and reports."""
