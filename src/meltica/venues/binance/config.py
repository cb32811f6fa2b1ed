"""What a Binance adapter needs to know: credentials, Meltica's venue code, where the venue is."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BinanceConfig:
    """Binance spot. `rest_url` and `ws_url` replace the venue's hosts (a fake, a proxy): REST goes to
    `{rest_url}/api/v3`, the WebSocket API to `{ws_url}/ws-api/v3`, streams to `{ws_url}/ws`.
    `sandbox` selects Binance's spot testnet (its own keys). The credentials never show in a repr."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    venue: str = "BINANCE"
    rest_url: str | None = None
    ws_url: str | None = None
    recv_window: int = 10_000  # ms a signed request stays valid (Binance allows up to 60000)
    sandbox: bool = False

    def __post_init__(self) -> None:
        if not self.api_key or not self.secret:
            raise ValueError("Binance needs an API key and its secret")
        if not 0 < self.recv_window <= 60_000:
            raise ValueError(f"recv_window {self.recv_window} ms is outside Binance's 1..60000")
