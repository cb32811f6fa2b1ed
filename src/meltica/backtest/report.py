"""A self-contained HTML report of a backtest: statistics, equity, drawdown and trades on price
as inline SVG (no scripts, no external files); the same charts as a PNG with matplotlib."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime

from meltica.backtest.engine import BacktestResult, mark
from meltica.domain.marketdata import Bar, QuoteTick, TradeTick
from meltica.errors import ConfigurationError

W, H = 960, 220


def _points(values: Sequence[float], limit: int = 1500) -> list[tuple[int, float]]:
    step = max(1, len(values) // limit)
    return list(enumerate(values))[::step]


def _polyline(values: Sequence[float], color: str, n: int) -> str:
    pts = _points(values)
    if not pts:
        return ""
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span = (hi - lo) or 1.0
    coords = " ".join(
        f"{i / max(n - 1, 1) * W:.1f},{H - (v - lo) / span * (H - 20) - 10:.1f}" for i, v in pts
    )
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{coords}"/>'


def _chart(title: str, body: str) -> str:
    return (
        f'<h2>{html.escape(title)}</h2><svg viewBox="0 0 {W} {H}" width="100%" '
        f'style="background:#fafafa;border:1px solid #ddd">{body}</svg>'
    )


def _markers(result: BacktestResult, bars: Sequence[Bar | QuoteTick | TradeTick]) -> str:
    if not bars:
        return ""
    closes = [float(mark(b)) for b in bars]
    lo, hi = min(closes), max(closes)
    span = (hi - lo) or 1.0
    first, last = bars[0].ts, bars[-1].ts
    out = []
    for ts, fill in result.fills[:2000]:
        x = (ts - first) / max(last - first, 1) * W
        y = H - (float(fill.last_px) - lo) / span * (H - 20) - 10
        color = "#1a7f37" if fill.side.value == "BUY" else "#cf222e"
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="{color}"/>')
    return "".join(out)


def render(result: BacktestResult, bars: Sequence[Bar | QuoteTick | TradeTick], title: str) -> str:
    equity = [float(e) for _, e in result.stats.equity]
    peak, drawdown = float("-inf"), []
    for v in equity:
        peak = max(peak, v)
        drawdown.append(v / peak - 1 if peak > 0 else 0.0)
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in result.stats.summary().items()
    )
    start = datetime.fromtimestamp(bars[0].ts / 1e9, UTC).isoformat() if bars else ""
    end = datetime.fromtimestamp(bars[-1].ts / 1e9, UTC).isoformat() if bars else ""
    trades = "".join(
        f"<tr><td>{datetime.fromtimestamp(ts / 1e9, UTC).isoformat()}</td><td>{f.side.value}</td>"
        f"<td>{f.last_qty}</td><td>{f.last_px}</td><td>{f.fee}</td></tr>"
        for ts, f in result.fills[:500]
    )
    price = _polyline([float(mark(b)) for b in bars], "#57606a", len(bars))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1000px}}table{{border-collapse:collapse}}
td,th{{padding:2px 10px;border-bottom:1px solid #eee;text-align:left;font-size:13px}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{html.escape(start)} — {html.escape(end)}, {len(bars)} bars,
{len(result.fills)} fills; realized PnL {result.realized_pnl}, open position {result.open_position}.</p>
<table>{rows}</table>
{_chart("Equity", _polyline(equity, "#0969da", len(equity)))}
{_chart("Drawdown", _polyline(drawdown, "#cf222e", len(drawdown)))}
{_chart("Trades on price", price + _markers(result, bars))}
<h2>Fills (first 500)</h2>
<table><tr><th>time</th><th>side</th><th>quantity</th><th>price</th><th>fee</th></tr>
{trades}</table></body></html>
"""


def render_png(result: BacktestResult, bars: Sequence[Bar | QuoteTick | TradeTick], title: str) -> bytes:
    """The report's three charts (equity, drawdown, trades on price) as one PNG (extra 'report')."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ConfigurationError("PNG reports need matplotlib: pip install 'meltica[report]'") from err
    equity_at = [datetime.fromtimestamp(ts / 1e9, UTC) for ts, _ in result.stats.equity]
    equity = [float(e) for _, e in result.stats.equity]
    peak, drawdown = float("-inf"), []
    for v in equity:
        peak = max(peak, v)
        drawdown.append(v / peak - 1 if peak > 0 else 0.0)
    figure = Figure(figsize=(12, 9), dpi=100, layout="constrained")
    ax_equity, ax_drawdown, ax_price = figure.subplots(3, 1, sharex=True)
    figure.suptitle(title)
    ax_equity.plot(equity_at, equity, color="#0969da", linewidth=1)
    ax_equity.set_ylabel("equity")
    ax_drawdown.fill_between(equity_at, drawdown, 0, color="#cf222e", alpha=0.4, linewidth=0)
    ax_drawdown.set_ylabel("drawdown")
    step = max(1, len(bars) // 5000)
    shown = bars[::step]
    ax_price.plot(
        [datetime.fromtimestamp(b.ts / 1e9, UTC) for b in shown],
        [float(mark(b)) for b in shown],
        color="#57606a",
        linewidth=0.8,
    )
    for side, color, marker in (("BUY", "#1a7f37", "^"), ("SELL", "#cf222e", "v")):
        fills = [(ts, f) for ts, f in result.fills if f.side.value == side]
        ax_price.scatter(
            [datetime.fromtimestamp(ts / 1e9, UTC) for ts, _ in fills],
            [float(f.last_px) for _, f in fills],
            color=color,
            marker=marker,
            s=14,
            label=side.lower(),
            zorder=3,
        )
    ax_price.set_ylabel("price")
    ax_price.legend(loc="upper left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
