"""What an OKX execution adapter needs to know: credentials, Meltica's venue code, where OKX is."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class OkxConfig:
    """OKX spot (cash). `rest_url` replaces `https://www.okx.com` (REST under `/api/v5`), `ws_url`
    replaces `wss://ws.okx.com:8443` (the private websocket at `/ws/v5/private`). `demo` selects
    OKX's demo trading (its own keys; `x-simulated-trading: 1`). Credentials never show in a repr."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)
    venue: str = "OKX"
    rest_url: str | None = None
    ws_url: str | None = None
    demo: bool = False

    def __post_init__(self) -> None:
        if not self.api_key or not self.secret or not self.passphrase:
            raise ValueError("OKX needs an API key, its secret and its passphrase")
