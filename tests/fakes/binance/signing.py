"""HMAC-SHA256 request signing as Binance checks it (REST and WebSocket API)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

from tests.fakes.binance import errors

DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA256 of ``payload`` keyed by ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(secret: str, params: Mapping[str, object]) -> str:
    """A query string with ``signature`` appended, as a client sends it."""
    query = urlencode({k: str(v) for k, v in params.items()})
    return f"{query}&signature={sign(secret, query)}"


def strip_signature(total: str) -> tuple[str, str | None]:
    """Split ``...&signature=hex`` into (signed payload, signature); the signature is the last parameter."""
    marker = "signature="
    head, sep, sig = total.rpartition(marker)
    if not sep or (head and not head.endswith("&")):
        return total, None
    return head.removesuffix("&"), sig


def verify_rest(
    query: str, body: str, api_key: str | None, keys: Mapping[str, str], now_ms: int
) -> dict[str, str]:
    """Check a SIGNED REST request; returns its parameters or raises a Binance error.

    Binance signs ``totalParams`` = query string concatenated with the body (no separator).
    """
    if not api_key:
        raise errors.BinanceError(401, -2014, "API-key format invalid.")
    secret = keys.get(api_key)
    if secret is None:
        raise errors.invalid_api_key()
    query_payload, query_sig = strip_signature(query)
    body_payload, body_sig = strip_signature(body)
    if query_sig is not None:
        payload, signature = query_payload + body, query_sig
    elif body_sig is not None:
        payload, signature = query + body_payload, body_sig
    else:
        raise errors.missing("signature")
    params = dict(parse_qsl(query_payload if query_sig else query, keep_blank_values=True))
    params.update(parse_qsl(body_payload if body_sig else body, keep_blank_values=True))
    if not hmac.compare_digest(sign(secret, payload), signature):
        raise errors.bad_signature()
    check_timestamp(params, now_ms)
    return params


def verify_ws(params: Mapping[str, object], keys: Mapping[str, str], now_ms: int) -> str:
    """Check a signed WebSocket API request; the payload is every param but ``signature``, sorted by name."""
    api_key = str(params.get("apiKey") or "")
    secret = keys.get(api_key)
    if secret is None:
        raise errors.invalid_api_key()
    signature = params.get("signature")
    if not isinstance(signature, str):
        raise errors.missing("signature")
    payload = "&".join(f"{k}={_ws_value(params[k])}" for k in sorted(params) if k != "signature")
    if not hmac.compare_digest(sign(secret, payload), signature):
        raise errors.bad_signature()
    check_timestamp({k: str(v) for k, v in params.items()}, now_ms)
    return api_key


def _ws_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_timestamp(params: Mapping[str, str], now_ms: int) -> None:
    """``timestamp`` must be no more than 1 s ahead of the server and within ``recvWindow`` behind it."""
    raw = params.get("timestamp")
    if raw is None or not raw.isdigit():
        raise errors.missing("timestamp")
    window_raw = params.get("recvWindow", str(DEFAULT_RECV_WINDOW))
    try:
        window = int(float(window_raw))
    except ValueError as exc:
        raise errors.bad_param("recvWindow") from exc
    if window > MAX_RECV_WINDOW:
        raise errors.BinanceError(400, -1131, "recvWindow must be less than 60000")
    timestamp = int(raw)
    if timestamp > now_ms + 1000:
        raise errors.ahead_of_server(timestamp - now_ms)
    if now_ms - timestamp > window:
        raise errors.outside_recv_window()
