"""The Binance adapter's config: secrets stay out of reprs; hosts, testnet and options reach ccxt."""

from __future__ import annotations

import pytest

from meltica.venues.binance import BinanceConfig
from meltica.venues.binance.client import BinanceClient

pytest.importorskip("ccxt.pro")


def test_repr_hides_the_credentials() -> None:
    config = BinanceConfig(api_key="the-key-123", secret="the-secret-456")
    shown = repr(config)
    assert "the-key-123" not in shown
    assert "the-secret-456" not in shown
    assert "BINANCE" in shown


@pytest.mark.parametrize(
    "bad",
    [
        {"api_key": "", "secret": "s"},
        {"api_key": "k", "secret": ""},
        {"api_key": "k", "secret": "s", "recv_window": 60_001},
    ],
)
def test_unusable_configs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"API key|recv_window"):
        BinanceConfig(**bad)  # type: ignore[arg-type]


def test_testnet_and_host_overrides_reach_ccxt() -> None:
    testnet = BinanceClient(BinanceConfig(api_key="k", secret="s", sandbox=True, recv_window=5000))
    assert testnet.urls["api"]["private"] == "https://testnet.binance.vision/api/v3"
    assert testnet.user_url == "wss://ws-api.testnet.binance.vision/ws-api/v3"
    assert (testnet.options["recvWindow"], testnet.enableRateLimit) == (5000, True)
    local = BinanceClient(
        BinanceConfig(api_key="k", secret="s", rest_url="http://127.0.0.1:1/", ws_url="ws://127.0.0.1:1")
    )
    assert local.urls["api"]["public"] == local.urls["api"]["private"] == "http://127.0.0.1:1/api/v3"
    assert local.urls["api"]["ws"]["spot"] == "ws://127.0.0.1:1/ws"
    assert local.user_url == "ws://127.0.0.1:1/ws-api/v3"
