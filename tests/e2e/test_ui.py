"""The web UI at /ui in a real browser (Debian's chromium through Playwright) against `meltica up`:
a trader enters a key, trades, amends and cancels, trips the kill switch, stops a venue, opens a
backtest; a read-only key sees no ticket; /ui, /docs and /redoc load with no request off this
machine and no console errors. Screenshots of every screen go to tests/artifacts/ui/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import IN_CI
from tests.e2e.test_up import PORT, cli, environment

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "ui"
BASE = f"http://127.0.0.1:{PORT}"
DATA = Path(__file__).parents[1] / "data"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    if IN_CI:
        pytest.fail(f"CI must run the browser tests, but {CHROMIUM} is missing (apt-get install chromium)")
    pytest.skip(f"no {CHROMIUM}: apt-get install chromium (scripts/test.sh does)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
sync_api.expect.set_options(timeout=15_000)  # a loaded machine: venue and order changes take a moment


@dataclass
class Server:
    url: str
    trader: str  # read, trade and admin
    reader: str  # read only
    bound: str  # read and trade on account OTHER only
    backtest_id: str

    def get(self, path: str, key: str | None = None) -> Any:
        answer = httpx.get(self.url + path, headers={"X-API-Key": key or self.trader}, timeout=10)
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("ui")
    saved = cli(
        data,
        "backtest",
        "run",
        str(DATA / "usdjpy-ticks.csv"),
        "--format",
        "truefx",
        "--strategy",
        "market-making",
        "--param",
        "tick=0.001",
        "--save",
        "--json",
    )
    assert saved.returncode == 0, saved.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "meltica", "up", "--no-demo", "--tick-ms", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment(data),
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Meltica is up" in line:
                break
        else:
            raise AssertionError(f"meltica up did not start: {proc.wait()}")
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
        trader = cli(data, "keys", "create", "--name", "desk", "--scopes", "read,trade,admin").stdout.strip()
        reader = cli(data, "keys", "create", "--name", "monitor", "--scopes", "read").stdout.strip()
        bound = cli(data, "keys", "create", "--name", "other", "--accounts", "OTHER").stdout.strip()
        found = httpx.get(f"{BASE}/v1/backtests", headers={"X-API-Key": trader}, timeout=10).json()
        yield Server(BASE, trader, reader, bound, found["items"][0]["backtest_id"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Watched:
    """A page whose requests off 127.0.0.1 are blocked and recorded, and whose errors are kept."""

    page: Any
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expected: set[int] = field(default_factory=set)  # HTTP errors a test provokes on purpose

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate(
            "document.querySelector('main') && (document.querySelector('main').scrollLeft = 0)"
        )
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def problems(self) -> list[str]:
        provoked = re.compile(r"status of (\d+)")
        return [
            e for e in self.errors if not ((m := provoked.search(e)) and int(m.group(1)) in self.expected)
        ]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def watched(chromium: Any, server: Server) -> Iterator[Watched]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    w = Watched(context.new_page())

    def route(r: Any) -> None:
        if r.request.url.startswith(("http://127.0.0.1:", "data:", "blob:")):
            r.continue_()
        else:
            w.blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    w.page.on("console", lambda m: m.type == "error" and w.errors.append(m.text))
    w.page.on("pageerror", lambda e: w.errors.append(f"page error: {e}"))
    w.page.on("dialog", lambda d: d.accept())
    yield w
    context.close()
    assert w.blocked == [], "requests off this machine"
    assert w.problems() == [], "console errors"


def enter(w: Watched, server: Server, key: str) -> None:
    w.page.goto(f"{server.url}/ui")
    w.page.fill("#key", key)
    w.page.click("#login-form button")
    sync_api.expect(w.page.locator("#live")).to_have_text("live")


def order(w: Watched, **fields: str) -> str:
    """Fill the ticket's first leg, submit; the answer line."""
    page = w.page
    page.goto(f"{BASE}/ui/#ticket")
    for name, value in fields.items():
        field_ = page.locator(f"#ticket-form [name={name}]").first
        if name in ("quantity", "price", "trigger_price"):
            field_.fill(value)
        else:
            field_.select_option(value)
    page.locator("#ticket-result").evaluate("e => e.textContent = ''")
    page.click("#submit")
    result = page.locator("#ticket-result")
    sync_api.expect(result).not_to_have_text(re.compile(r"^$|submitting"))
    return str(result.text_content())


def order_id(answer: str) -> str:
    found = re.search(r"order ([0-9a-f-]{36})", answer)
    assert found, answer
    return found.group(1)


def row(w: Watched, oid: str) -> Any:
    return w.page.locator(f'#orders tr[data-order="{oid}"]')


def test_a_trader_trades_amends_cancels_and_sees_the_position(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    enter(w, server, server.trader)
    w.shot("blotter-empty")
    w.page.goto(f"{BASE}/ui/#ticket")
    w.shot("ticket")
    expect(w.page.locator("#increments")).to_contain_text("tick 0.01")

    filled = order_id(order(w, type="MARKET", side="BUY", quantity="0.01"))
    w.page.goto(f"{BASE}/ui/#blotter")
    began = time.monotonic()
    expect(row(w, filled)).to_have_attribute("data-status", "FILLED")
    print(f"FILLED in the blotter {time.monotonic() - began:.2f}s after opening it")
    w.page.locator(f'#orders tr[data-order="{filled}"] a').click()
    expect(w.page.locator("#trail li").last).to_contain_text("OrderFilled 0.01 @ ")

    w.page.goto(f"{BASE}/ui/#portfolio")
    position = w.page.locator("#positions tbody tr", has_text="BTCUSDT.SIM")
    expect(position).to_contain_text("0.01")
    w.shot("portfolio")

    w.expected.add(422)
    denied = order(w, type="MARKET", side="BUY", quantity="10")
    assert "Denied by pre-trade risk: max_order_notional" in denied
    expect(w.page.locator("#ticket-result")).to_have_class("error")
    w.shot("ticket-risk-denied")

    mark = Decimal(server.get(f"/v1/orders/{filled}")["avg_px"])
    price = (mark * Decimal("0.995")).quantize(Decimal("0.01"))
    resting = order_id(order(w, type="LIMIT", side="BUY", quantity="0.01", price=str(price)))
    w.page.goto(f"{BASE}/ui/#blotter")
    expect(row(w, resting)).to_have_attribute("data-status", "NEW")
    row(w, resting).get_by_role("button", name="Amend").click()
    amended = (mark * Decimal("0.996")).quantize(Decimal("0.01"))
    w.page.fill(f'#orders tr[data-order="{resting}"] [name=price]', str(amended))
    w.page.fill(f'#orders tr[data-order="{resting}"] [name=quantity]', "0.02")
    row(w, resting).get_by_role("button", name="Save").click()
    cells = row(w, resting).locator("td")
    expect(cells.nth(9)).to_have_text(f"{amended.normalize():f}")  # the API's decimals are normalized
    expect(cells.nth(7)).to_have_text("0.02")
    w.page.fill("#filters [name=instrument_id]", "BTCUSDT.SIM")
    w.shot("blotter")
    row(w, resting).get_by_role("button", name="Cancel").click()
    expect(row(w, resting)).to_have_attribute("data-status", "CANCELED")
    w.page.select_option("#filters [name=status]", "CANCELED")
    expect(w.page.locator("#orders tbody tr")).to_have_count(1)
    w.page.set_viewport_size({"width": 390, "height": 844})  # a phone
    w.page.select_option("#filters [name=status]", "")
    expect(w.page.locator("#nav")).to_be_visible()
    w.shot("blotter-phone")


def test_an_oco_list_goes_in_as_two_linked_orders(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    enter(w, server, server.trader)
    filled = server.get("/v1/orders?status=FILLED")["items"]
    mark = Decimal(filled[-1]["avg_px"]) if filled else Decimal(43000)
    w.page.goto(f"{BASE}/ui/#ticket")
    w.page.select_option("#ticket-form [name=contingency]", "OCO")
    legs = w.page.locator("#ticket-form fieldset.leg")
    expect(legs).to_have_count(2)
    for leg, side, factor in ((legs.nth(0), "BUY", "0.995"), (legs.nth(1), "SELL", "1.005")):
        leg.locator("[name=side]").select_option(side)
        leg.locator("[name=type]").select_option("LIMIT")
        leg.locator("[name=quantity]").fill("0.01")
        leg.locator("[name=price]").fill(str((mark * Decimal(factor)).quantize(Decimal("0.01"))))
    w.page.click("#submit")
    answer = w.page.locator("#ticket-result")
    expect(answer).to_have_text(re.compile(r"^list "))
    ids = re.findall(r"[0-9a-f-]{36}", str(answer.text_content()))[1:]
    assert len(ids) == 2
    w.page.goto(f"{BASE}/ui/#blotter")
    for oid in ids:
        expect(row(w, oid)).to_have_attribute("data-status", "NEW")
    w.page.locator(f'#orders tr[data-order="{ids[0]}"] a').click()
    expect(w.page.locator("#trail li").first).to_contain_text("OrderAccepted")
    for oid in ids:  # (a fill of one cancels the other; a cancel does not)
        row(w, oid).get_by_role("button", name="Cancel").click()
        expect(row(w, oid)).to_have_attribute("data-status", "CANCELED")


def test_a_gtd_order_carries_its_expiry(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    enter(w, server, server.trader)
    filled = server.get("/v1/orders?status=FILLED")["items"]
    mark = Decimal(filled[-1]["avg_px"]) if filled else Decimal(43000)
    w.page.goto(f"{BASE}/ui/#ticket")
    w.page.fill("#ticket-form [name=expire]", "2099-01-01T12:00")
    w.page.select_option("#ticket-form [name=time_in_force]", "GTD")
    price = str((mark * Decimal("0.995")).quantize(Decimal("0.01")))
    oid = order_id(order(w, type="LIMIT", side="BUY", quantity="0.01", price=price))
    w.page.goto(f"{BASE}/ui/#blotter")
    expect(row(w, oid)).to_have_attribute("data-status", "NEW")
    expect(row(w, oid).locator("td").nth(6)).to_have_text("GTD")
    row(w, oid).get_by_role("button", name="Cancel").click()
    expect(row(w, oid)).to_have_attribute("data-status", "CANCELED")


def test_the_kill_switch_denies_new_orders_until_reset(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    enter(w, server, server.trader)
    w.page.goto(f"{BASE}/ui/#risk")
    w.page.fill("#kill-reason", "ui test")
    w.page.click("#trip")  # the confirmation is accepted by the fixture's dialog handler
    expect(w.page.locator("#risk-events tbody tr").first).to_contain_text("KillSwitchTripped")
    expect(w.page.locator("#trading-state")).to_have_text("Kill switch tripped: GLOBAL")
    w.expected.add(422)
    assert "Denied by pre-trade risk: kill_switch" in order(w, type="MARKET", side="BUY", quantity="0.01")
    w.page.goto(f"{BASE}/ui/#risk")
    expect(w.page.locator("#denials tbody tr", has_text="kill_switch")).to_contain_text("1")
    w.shot("risk")
    w.page.click("#reset")
    expect(w.page.locator("#risk-events tbody tr").first).to_contain_text("KillSwitchReset")
    expect(w.page.locator("#trading-state")).to_have_text("Trading: no kill switch tripped")
    order_id(order(w, type="MARKET", side="SELL", quantity="0.01"))  # accepted again


def test_an_admin_edits_risk_limits(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    enter(w, server, server.trader)
    w.page.goto(f"{BASE}/ui/#risk")
    demo = w.page.locator('#limits tr[data-scope="ACCOUNT DEMO"]')
    demo.get_by_role("button", name="Edit").click()
    expect(w.page.locator("#limits-form [name=limits]")).to_have_value("throttle_rate=50 throttle_burst=20")
    w.page.fill("#limits-form [name=limits]", "throttle_rate=50 throttle_burst=20 max_open_orders=40")
    w.page.click("#limits-form button")
    expect(demo).to_contain_text("throttle_rate=50 throttle_burst=20 max_open_orders=40")
    limits = {(x["scope"], x["scope_id"]): x["limits"] for x in server.get("/v1/risk/limits")}
    assert limits[("ACCOUNT", "DEMO")]["max_open_orders"] == 40


def test_a_venue_stops_and_starts(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    enter(w, server, server.trader)
    w.page.goto(f"{BASE}/ui/#venues")
    sim = w.page.locator('#venue-list tr[data-venue="sim"]')
    expect(sim).to_have_attribute("data-state", "LIVE")
    sim.get_by_role("button", name="Stop").click()
    expect(sim).to_have_attribute("data-state", "STOPPED")
    sim.get_by_role("button", name="Start").click()
    expect(sim).to_have_attribute("data-state", "LIVE")
    w.shot("venues")
    w.page.goto(f"{BASE}/ui/#strategies")
    expect(w.page.locator("#catalog")).to_contain_text("sma-cross")
    w.shot("strategies")


def test_a_stored_backtest_shows_its_equity_chart(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    enter(w, server, server.trader)
    w.page.goto(f"{BASE}/ui/#backtests")
    w.page.locator("#backtest-list a", has_text=server.backtest_id[:12]).click()
    expect(w.page.locator("#backtest-view h3")).to_contain_text("market-making")
    equity = server.get(f"/v1/backtests/{server.backtest_id}")["equity"]
    for chart in ("#equity", "#drawdown"):
        points = w.page.locator(f"{chart} polyline").get_attribute("points") or ""
        assert len(points.split()) == len(equity)
    w.shot("backtests")


def test_a_read_only_key_sees_no_trading_controls(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    enter(w, server, server.reader)
    expect(w.page.locator('nav a[href="#ticket"]')).to_be_hidden()
    w.page.goto(f"{BASE}/ui/#ticket")
    expect(w.page.locator("#ticket")).to_be_hidden()
    expect(w.page.locator("#blotter")).to_be_visible()
    expect(w.page.get_by_role("button", name="Cancel")).to_have_count(0)
    w.page.goto(f"{BASE}/ui/#risk")
    expect(w.page.locator("#trip")).to_be_hidden()
    expect(w.page.locator("#limits-form")).to_be_hidden()
    expect(w.page.locator("#limits")).to_contain_text("DEFAULT")
    expect(w.page.get_by_role("button", name="Edit")).to_have_count(0)
    w.page.goto(f"{BASE}/ui/#venues")
    expect(w.page.locator("#venue-list tr[data-venue=sim]")).to_be_visible()
    expect(w.page.get_by_role("button", name="Stop")).to_have_count(0)
    w.shot("read-only")


def test_an_account_bound_key_sees_only_its_accounts(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    body = {"account_id": "DEMO", "instrument_id": "BTCUSDT.SIM", "side": "BUY", "type": "MARKET"}
    demo = httpx.post(
        f"{server.url}/v1/orders?wait=filled",
        json={**body, "quantity": "0.01"},
        headers={"X-API-Key": server.trader},
        timeout=15,
    ).json()["order_id"]
    enter(w, server, server.trader)
    expect(row(w, demo)).to_be_visible()
    w.page.click("#logout")
    enter(w, server, server.bound)
    expect(w.page.locator("#who")).to_contain_text("OTHER")
    w.page.goto(f"{BASE}/ui/#ticket")
    expect(w.page.locator("#ticket-form [name=account_id]")).to_have_value("OTHER")
    w.page.goto(f"{BASE}/ui/#blotter")
    expect(w.page.locator("#orders")).to_have_attribute("data-rows", "0")  # loaded, and none of DEMO


def test_a_wrong_key_is_refused_and_the_key_lasts_the_session(watched: Watched, server: Server) -> None:
    w, expect = watched, sync_api.expect
    w.expected.add(401)
    w.page.goto(f"{server.url}/ui/")
    w.page.fill("#key", "not-a-key")
    w.page.click("#login-form button")
    expect(w.page.locator("#toast")).to_have_class("error")
    expect(w.page.locator("#login")).to_be_visible()
    enter(w, server, server.trader)
    w.page.reload()
    expect(w.page.locator("#live")).to_have_text("live")  # no key asked again
    expect(w.page.locator("#login")).to_be_hidden()


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_work_offline(watched: Watched, server: Server, path: str) -> None:
    w, expect = watched, sync_api.expect
    w.page.goto(server.url + path)
    expect(w.page.get_by_text("/v1/orders/bulk").first).to_be_visible(timeout=15_000)
    w.shot(path.strip("/"))


def test_the_docs_routes_name_no_cdn(server: Server) -> None:
    for path in ("/docs", "/redoc"):
        html = httpx.get(server.url + path, timeout=10).text
        assert "/ui/vendor/" in html
        assert not re.search(r"https?://", html.replace("http://127.0.0.1", "")), path
    assert json.loads(httpx.get(f"{server.url}/v1/me", headers={"X-API-Key": server.reader}).text) == {
        "name": "monitor",
        "scopes": ["read"],
        "accounts": None,
    }
