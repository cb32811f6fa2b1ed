"""Finding the project's data folders: inside an installed wheel, or in the source tree."""

from __future__ import annotations

from pathlib import Path

from meltica.errors import ConfigurationError

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(packaged: str, source: str) -> Path:
    """`meltica/<packaged>` in a wheel (see pyproject force-include), else `<repo>/<source>`."""
    inside = _PACKAGE / packaged
    if inside.is_dir():
        return inside
    for parent in _PACKAGE.parents:
        candidate = parent / source
        if candidate.is_dir():
            return candidate
    raise ConfigurationError(f"cannot find {source}/ (nor meltica/{packaged} in the installed package)")
