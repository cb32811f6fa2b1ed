"""The `meltica` command line (typer + rich)."""

from __future__ import annotations

from meltica.cli.app import app


def main() -> None:
    """Entry point of the `meltica` console script."""
    app()


__all__ = ["app", "main"]
