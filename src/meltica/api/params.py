"""Parameters of venues and strategies as the API takes them: bounded, printable text, numbers
in the one decimal syntax (`meltica.api.numbers`)."""

from __future__ import annotations

from pydantic import Field

from meltica.api.numbers import check_numeric_text
from meltica.api.problems import Problem
from meltica.control.specs import ParamValue, Strict, text_params

MAX_PARAMS = 64
MAX_PARAM_TEXT = 1024


class ParamsRequest(Strict):
    params: dict[str, ParamValue] = Field(description="Parameters to change; the others keep their values.")


def checked_params(params: dict[str, ParamValue]) -> dict[str, str]:
    """Parameters as text: at most `MAX_PARAMS`, bounded, printable, numbers in the one decimal
    syntax (`meltica.api.numbers`); a ValueError saying what is wrong."""
    if len(params) > MAX_PARAMS:
        raise ValueError(f"at most {MAX_PARAMS} parameters")
    text = text_params(params)
    for name, value in text.items():
        if len(name) > 64 or len(value) > MAX_PARAM_TEXT or not (name + value).isprintable():
            raise ValueError(
                f"{name[:64]!r}: names are at most 64 and values {MAX_PARAM_TEXT} printable characters"
            )
        try:
            check_numeric_text(value)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    return text


def invalid(detail: str) -> Problem:
    return Problem(422, "invalid-parameters", "Invalid parameters", detail)
