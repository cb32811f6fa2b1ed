// Meltica's trader UI: plain DOM, one module per concern (api.js talks to the API).
import { api, all, key, stream, text, Problem } from "./api.js";
import { actions as allowed, amendable } from "./actions.js";

const STATUSES = "PENDING_NEW DENIED ACCEPTED SUBMITTED NEW REJECTED PARTIALLY_FILLED FILLED PENDING_CANCEL CANCELED PENDING_REPLACE REPLACED TRIGGERED EXPIRED".split(" ");
const TYPES = ["MARKET", "LIMIT", "STOP_MARKET", "STOP_LIMIT", "TRAILING_STOP_MARKET", "TRAILING_STOP_LIMIT"];
const TIFS = ["GTC", "IOC", "FOK", "GTD", "DAY"];
const LEGS = { NONE: ["Order"], OCO: ["Order 1", "Order 2"], BRACKET: ["Entry", "Take-profit", "Stop-loss"] };

const $ = (s, root = document) => root.querySelector(s);
let me = null;
let editing = false;
let live = null;
const can = (scope) => me && (me.scopes.includes(scope) || me.scopes.includes("admin"));

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...kids.flat().filter((k) => k != null));
  return e;
}

const when = (ns) => (ns ? new Date(Number(ns) / 1e6).toISOString().replace("T", " ").slice(0, 23) : "");
const num = (v) => el("td", { class: "num" }, v == null ? "" : String(v));

/** Fill `table` with a header of `cols` ([title, row => cell text or node]) and one row per item. */
function fill(table, cols, items, rowAttrs = () => ({})) {
  const head = el("thead", {}, el("tr", {}, cols.map(([t]) => el("th", {}, t))));
  const body = el("tbody", {}, items.map((it) => el("tr", rowAttrs(it), cols.map(([, f]) => {
    const v = f(it);
    return v instanceof Node ? v : el("td", {}, v == null ? "" : String(v));
  }))));
  table.replaceChildren(head, body);
  table.dataset.rows = items.length;
}

function toast(text, bad = false) {
  const t = $("#toast");
  t.textContent = text;
  t.className = bad ? "error" : "";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.textContent = ""), 5000);
}

/** Run `f`; a problem is shown, not thrown (the UI never leaves an unhandled rejection). */
async function attempt(f) {
  try { return await f(); } catch (e) { toast(e instanceof Problem ? `${e.body.title || e.status}: ${e.message}` : String(e), true); }
}

// -- blotter ----------------------------------------------------------------------------------------
async function blotter() {
  if (editing) return;
  const q = new URLSearchParams([...new FormData($("#filters"))].filter(([, v]) => v));
  const orders = (await all(`/v1/orders?limit=500&${q}`)).reverse();
  if (editing) return; // an amend opened while the list was loading: keep its form
  const actions = (o) => {
    const td = el("td");
    const may = can("trade") ? allowed(o) : [];
    td.append(
      may.includes("cancel") ? el("button", { onclick: () => attempt(async () => { await api(`/v1/orders/${o.order_id}`, { method: "DELETE" }); toast(`cancel of ${o.order_id.slice(0, 8)} requested`); }) }, "Cancel") : "",
      may.includes("amend") ? el("button", { onclick: () => amendForm(td, o) }, "Amend") : "");
    return td;
  };
  fill($("#orders"), [
    ["Created", (o) => el("td", { title: when(o.ts_created) }, when(o.ts_created).slice(11))],
    ["Order", (o) => el("td", {}, el("a", { href: "#blotter", onclick: () => trail(o.order_id) }, o.order_id.slice(0, 10)))],
    ["Account", (o) => o.account_id], ["Instrument", (o) => o.instrument_id], ["Side", (o) => o.side],
    ["Type", (o) => o.order_type], ["TIF", (o) => o.time_in_force], ["Qty", (o) => num(o.quantity)],
    ["Filled", (o) => num(o.filled_qty)], ["Price", (o) => num(o.price ?? o.trigger_price)], ["Avg", (o) => num(o.avg_px)],
    ["Status", (o) => el("td", { class: o.status }, o.status)], ["Reason", (o) => o.reason],
    ["Parent", (o) => el("td", { title: o.parent_order_id }, o.parent_order_id ? el("span", { class: "badge" }, o.parent_order_id.slice(0, 10)) : "")],
    ["", actions],
  ], orders, (o) => ({ "data-order": o.order_id, "data-status": o.status }));
}

function amendForm(td, o) {
  editing = true;
  const terms = amendable(o.order_type); // only the terms its type has: a market order's quantity
  const fields = terms.map((t) => el("input", { name: t, value: o[t] ?? "", size: t === "quantity" ? 6 : 8, "aria-label": `new ${t.replace("_", " ")}` }));
  const done = () => { editing = false; refresh(); };
  const save = () => attempt(async () => {
    const body = Object.fromEntries(fields.filter((f) => f.value && f.value !== String(o[f.name] ?? "")).map((f) => [f.name, f.value]));
    await api(`/v1/orders/${o.order_id}`, { method: "PATCH", body });
    toast(`amend of ${o.order_id.slice(0, 8)} requested`);
  }).finally(done);
  td.replaceChildren(...fields, el("button", { onclick: save }, "Save"), el("button", { onclick: done }, "Back"));
  fields.at(-1).focus();
}

async function trail(orderId) {
  const events = await all(`/v1/orders/${orderId}/events`);
  const box = $("#trail");
  $("span", box).textContent = orderId;
  $("ol", box).replaceChildren(...events.map((e) => {
    const p = JSON.parse(e.payload);
    const extra = p.reason || (p.fill ? `${p.fill.last_qty} @ ${p.fill.last_px}` : "");
    return el("li", {}, `${when(e.ts_event)} ${e.type} ${extra}`);
  }));
  box.hidden = false;
}

// -- order ticket -------------------------------------------------------------------------------------
let instruments = [];

async function known() {
  if (!instruments.length) instruments = await all("/v1/instruments");
  return instruments;
}

/** Offer the instruments in `select` (once). */
async function offer(select) {
  if (!select.options.length) select.replaceChildren(...(await known()).map((i) => el("option", {}, i.instrument_id)));
}

async function ticket() {
  const form = $("#ticket-form");
  if (!form.instrument_id.options.length) {
    await known();
    form.instrument_id.replaceChildren(...instruments.map((i) => el("option", {}, i.instrument_id)));
    form.account_id.value ||= me.accounts?.[0] || "DEMO";
    increments();
  }
}

function increments() {
  const i = instruments.find((x) => x.instrument_id === $("#ticket-form").instrument_id.value);
  $("#increments").textContent = i ? `tick ${i.price_increment}, lot ${i.size_increment}` : "";
}

function legs() {
  const form = $("#ticket-form");
  const names = LEGS[form.contingency.value];
  const first = $("fieldset.leg", form);
  $("legend", first).textContent = names[0];
  $("#more-legs").replaceChildren(...names.slice(1).map((n) => {
    const leg = first.cloneNode(true);
    $("legend", leg).textContent = n;
    leg.querySelectorAll("input:not([type=checkbox])").forEach((i) => (i.value = ""));
    return leg;
  }));
}

function order(leg, form) {
  const o = { account_id: form.account_id.value, instrument_id: form.instrument_id.value };
  for (const f of leg.querySelectorAll("input, select")) {
    if (f.type === "checkbox") { if (f.checked) o[f.name] = true; }
    else if (f.name === "expire") { if (f.value) o.expire_time_ns = Date.parse(f.value) * 1e6; } // local time, ms → ns
    else if (f.value) o[f.name] = f.value;
  }
  return o;
}

async function submit(ev) {
  ev.preventDefault();
  const form = ev.target;
  const out = $("#ticket-result");
  const orders = [...form.querySelectorAll("fieldset.leg")].map((leg) => order(leg, form));
  out.className = "";
  out.textContent = "submitting…";
  try {
    if (form.contingency.value === "NONE") {
      const r = await api("/v1/orders?wait=accepted", { method: "POST", body: orders[0] });
      out.textContent = `order ${r.order_id}: ${r.status}`;
    } else {
      const r = await api("/v1/orders/bulk", { method: "POST", body: { orders, contingency: form.contingency.value } });
      out.textContent = `list ${r.order_list_id}: ${r.order_ids.join(", ")}`;
    }
    out.className = "ok";
  } catch (e) {
    out.className = "error";
    out.textContent = e instanceof Problem ? `${e.body.title || e.status}: ${e.message}` : String(e);
  }
}

// -- price chart ------------------------------------------------------------------------------------
const RESTING = ["NEW", "PARTIALLY_FILLED", "ACCEPTED", "SUBMITTED"];
const MAX_MARKS = 2000;
const MAX_BARS = 120; // the latest closed bars a chart shows
const marks = new Map(); // instrument → [[ts ns, price text], …]: marks from the stream since the page opened
let plotted = null; // what the chart last loaded: {instrument, fills, resting, positions}
const SVG = "http://www.w3.org/2000/svg";

/** An SVG element with `attrs` and a tooltip `title` (if given). */
function shape(tag, attrs, title) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (title != null) e.append(Object.assign(document.createElementNS(SVG, "title"), { textContent: title }));
  return e;
}

const label = (x, y, cls, text) => Object.assign(shape("text", { x, y, class: cls }), { textContent: text });

/** A mark (PnLMarked) or a fill's price (PositionChanged) from the stream, kept for the chart. */
function noteMark(type, data) {
  const e = data?.event || {};
  const px = type === "PnLMarked" ? e.mark_px : type === "PositionChanged" ? e.last_px : null;
  const ts = Number(e.meta?.ts_event ?? e.ts); // the event time rides in the record's envelope
  if (px == null || !e.instrument_id || !Number.isFinite(ts)) return;
  const kept = marks.get(e.instrument_id) || [];
  const last = kept.at(-1);
  if (last && last[0] === ts && last[1] === String(px)) return; // the same tick, marked for another account
  kept.push([ts, String(px)]);
  if (kept.length > MAX_MARKS) kept.shift();
  marks.set(e.instrument_id, kept);
  if (screen() === "chart" && plotted?.instrument === e.instrument_id) redrawSoon();
}

let drawing = null;
function redrawSoon() {
  if (!drawing) drawing = setTimeout(() => { drawing = null; draw(); }, 250);
}

async function chart() {
  const form = $("#chart-form");
  await offer(form.instrument_id);
  const instrument = form.instrument_id.value;
  const account = form.account_id.value.trim();
  const mine = (x) => x.instrument_id === instrument;
  const q = (more) => new URLSearchParams({ limit: "500", ...(account && { account_id: account }), ...more });
  const [fills, positions, candles, ...open] = await Promise.all([
    all(`/v1/fills?${q({})}`), all(`/v1/positions?${q({})}`), bars(form.width, instrument),
    ...RESTING.map((status) => all(`/v1/orders?${q({ instrument_id: instrument, status })}`))]);
  if (form.instrument_id.value !== instrument) return; // changed while loading
  plotted = { instrument, ...candles, fills: fills.filter(mine), positions: positions.filter(mine), resting: open.flat().filter((o) => (o.price ?? o.trigger_price) != null) };
  fill($("#resting"), [["Order", (o) => o.order_id.slice(0, 10)], ["Account", (o) => o.account_id], ["Side", (o) => o.side],
    ["Type", (o) => o.order_type], ["Qty", (o) => num(o.quantity)], ["Price", (o) => num(o.price ?? o.trigger_price)],
    ["Status", (o) => o.status]], plotted.resting, (o) => ({ "data-order": o.order_id }));
  draw();
}

/** The bar widths there are (configured, then stored) offered in `select`, and the latest closed
 * bars of the chosen one on `instrument` with a note saying what they are, or why there are none. */
async function bars(select, instrument) {
  const widths = await api(`/v1/bars/widths?${new URLSearchParams({ instrument_id: instrument })}`);
  const choices = [...new Set([...(widths.configured || []), ...widths.series.map((s) => s.width)])];
  const chosen = choices.includes(select.value) ? select.value : choices[0];
  if (select.dataset.choices !== choices.join(" ")) { // rebuilt only when they change: an open list stays open
    select.replaceChildren(...choices.map((w) => el("option", { selected: w === chosen }, w)));
    select.dataset.choices = choices.join(" ");
  }
  select.disabled = !choices.length;
  if (!chosen) {
    const where = "settings bar_widths, e.g. MELTICA_BAR_WIDTHS='[\"1m\"]'";
    return { bars: [], note: widths.configured ? `no bars configured (${where})` : `no bars configured, or none closed yet (${where})` };
  }
  const q = new URLSearchParams({ instrument_id: instrument, width: chosen, latest: "true", limit: String(MAX_BARS) });
  const got = (await api(`/v1/bars?${q}`)).items;
  const source = { LAST: "trades", MID: "quote mids" }[got[0]?.source] || got[0]?.source;
  return { bars: got, note: got.length ? `${chosen} bars of ${source}: the latest ${got.length}` : `no ${chosen} bar closed on ${instrument} yet` };
}

/** Candles of closed bars, under the price line (fills, marks), fill markers and resting-order lines
 * of `plotted` (numbers for drawing only). */
function draw() {
  const svg = $("#price");
  if (!plotted) return;
  const { fills, positions, resting, bars } = plotted;
  $("#bars-note").textContent = plotted.note;
  const line = [...fills.map((f) => [Number(f.ts_event), f.price]), ...(marks.get(plotted.instrument) || []),
    ...positions.filter((p) => p.mark_px != null).map((p) => [Number(p.ts_event), p.mark_px])].sort((a, b) => a[0] - b[0]);
  const prices = [...line.map(([, p]) => Number(p)), ...resting.map((o) => Number(o.price ?? o.trigger_price)),
    ...bars.flatMap((b) => [Number(b.high), Number(b.low)])];
  svg.dataset.candles = bars.length;
  if (!prices.length) {
    svg.replaceChildren(label(20, 120, "axis", `${plotted.note}; no fills, marks or resting orders on ${plotted.instrument} yet`));
    svg.dataset.points = 0;
    return;
  }
  const lo0 = Math.min(...prices), hi0 = Math.max(...prices), pad = (hi0 - lo0) * 0.08 || Math.abs(hi0) * 0.001 || 1;
  const lo = lo0 - pad, hi = hi0 + pad;
  const times = [...line.map(([t]) => t), ...bars.flatMap((b) => [Number(b.ts_open), Number(b.ts_close)])];
  const t0 = times.length ? Math.min(...times) : 0, t1 = times.length ? Math.max(...times) : 1;
  const x = (t) => 60 + ((t - t0) / (t1 - t0 || 1)) * 470;
  const y = (p) => 230 - ((Number(p) - lo) / (hi - lo)) * 220;
  const kids = [label(2, 14, "axis", String(+hi.toPrecision(8))), label(2, 236, "axis", String(+lo.toPrecision(8)))];
  for (const b of bars) {
    const [open, close] = [Number(b.open), Number(b.close)];
    const mid = x((Number(b.ts_open) + Number(b.ts_close)) / 2), body = Math.max((x(Number(b.ts_close)) - x(Number(b.ts_open))) * 0.7, 1);
    const top = y(Math.max(open, close)), height = Math.max(y(Math.min(open, close)) - top, 0.5);
    const candle = shape("g", { class: `candle ${close >= open ? "up" : "down"}`, "data-ts": b.ts_open, "data-open": b.open,
      "data-high": b.high, "data-low": b.low, "data-close": b.close },
      `${when(b.ts_open)} ${b.width} O ${b.open} H ${b.high} L ${b.low} C ${b.close} V ${b.volume}`);
    candle.append(shape("line", { x1: mid, x2: mid, y1: y(b.high), y2: y(b.low) }), shape("rect", { x: mid - body / 2, y: top, width: body, height }));
    kids.push(candle);
  }
  kids.push(shape("polyline", { class: "px", points: line.map(([t, p]) => `${x(t)},${y(p)}`).join(" ") }));
  for (const o of resting) {
    const p = o.price ?? o.trigger_price;
    kids.push(shape("line", { x1: 60, x2: 530, y1: y(p), y2: y(p), class: `rest ${o.side}`, "data-order": o.order_id, "data-price": p },
      `${o.side} ${o.quantity} @ ${p} (${o.order_type}, ${o.status})`));
    kids.push(label(534, y(p) + 4, `axis ${o.side}`, String(p)));
  }
  for (const f of fills) {
    const [cx, cy] = [x(Number(f.ts_event)), y(f.price)];
    const d = f.side === "BUY" ? `M${cx},${cy - 6} l5,9 h-10 z` : `M${cx},${cy + 6} l5,-9 h-10 z`;
    kids.push(shape("path", { d, class: `fill ${f.side}`, "data-side": f.side, "data-price": f.price, "data-trade": f.trade_id },
      `${f.side} ${f.quantity} @ ${f.price} ${when(f.ts_event)}`));
  }
  svg.replaceChildren(...kids);
  svg.dataset.points = line.length;
}

// -- equity over time -------------------------------------------------------------------------------
const equity = new Map(); // "account currency" → [[ts ns, equity text], …]: the history, then the stream's

/** One equity point (an instant marked for several instruments counts once, with its last value). */
function noteEquity(account, currency, ts, value) {
  if (!account || !Number.isFinite(ts) || value == null) return;
  const name = `${account} ${currency}`;
  const kept = equity.get(name) || [];
  const last = kept.at(-1);
  if (last && ts <= last[0]) { if (ts === last[0]) last[1] = String(value); return; }
  kept.push([ts, String(value)]);
  if (kept.length > MAX_MARKS) kept.shift();
  equity.set(name, kept);
}

let equityDrawing = null;
function equitySeen(type, data) {
  const e = data?.event;
  if (type !== "PnLMarked" || !e) return;
  noteEquity(e.account_id, e.currency, Number(e.meta?.ts_event ?? e.ts), e.equity);
  if (screen() === "portfolio" && !equityDrawing) equityDrawing = setTimeout(() => { equityDrawing = null; drawEquity(); }, 500);
}

/** A line over time per account and currency (numbers for drawing only; the caption is the API's text). */
function drawEquity() {
  $("#equity-live").replaceChildren(...[...equity].map(([name, points]) => {
    const [account, currency] = name.split(" ");
    const ts = points.map(([t]) => t), ys = points.map(([, v]) => Number(v));
    const [t0, t1, lo, hi] = [Math.min(...ts), Math.max(...ts), Math.min(...ys), Math.max(...ys)];
    const xy = points.map(([t], i) => `${((t - t0) / (t1 - t0 || 1)) * 600},${110 - ((ys[i] - lo) / (hi - lo || 1)) * 100}`);
    const svg = shape("svg", { viewBox: "0 0 600 120", preserveAspectRatio: "none", role: "img", "aria-label": `equity of ${account}`,
      "data-account": account, "data-points": points.length });
    svg.append(shape("polyline", { points: xy.join(" "), class: "px", "vector-effect": "non-scaling-stroke" }));
    return el("figure", {}, el("figcaption", {}, `${account}: ${points.at(-1)[1]} ${currency} (low ${+lo.toPrecision(10)}, high ${+hi.toPrecision(10)})`), svg);
  }));
}

// -- portfolio, risk, venues, strategies, backtests ------------------------------------------------
async function portfolio() {
  const [positions, balances, pnl, fills] = await Promise.all(["positions", "balances", "pnl", "fills"].map((p) => all(`/v1/${p}?limit=500`)));
  if (!equity.size) { // the history first (the equity read model), then what the stream brings
    for (const p of (await api("/v1/equity?limit=1000")).items) noteEquity(p.account_id, p.currency, Number(p.ts_event), p.equity);
  }
  for (const p of pnl) noteEquity(p.account_id, p.currency, Number(p.ts_event), p.equity);
  drawEquity();
  fill($("#positions"), [["Account", (p) => p.account_id], ["Instrument", (p) => p.instrument_id], ["Side", (p) => p.side],
    ["Qty", (p) => num(p.quantity)], ["Avg", (p) => num(p.avg_px)], ["Mark", (p) => num(p.mark_px)],
    ["Realized", (p) => num(p.realized_pnl)], ["Unrealized", (p) => num(p.unrealized_pnl)], ["Fees", (p) => num(p.fees)]], positions);
  fill($("#balances"), [["Account", (b) => b.account_id], ["Asset", (b) => b.asset], ["Total", (b) => num(b.total)],
    ["Free", (b) => num(b.free)], ["Locked", (b) => num(b.locked)]], balances);
  fill($("#pnl"), [["Account", (p) => p.account_id], ["Instrument", (p) => p.instrument_id], ["Realized", (p) => num(p.realized_pnl)],
    ["Unrealized", (p) => num(p.unrealized_pnl)], ["Fees", (p) => num(p.fees)], ["Equity", (p) => num(p.equity)], ["Ccy", (p) => p.currency]], pnl);
  fill($("#fills"), [["Time", (f) => when(f.ts_event)], ["Order", (f) => f.order_id.slice(0, 10)], ["Instrument", (f) => f.instrument_id],
    ["Side", (f) => f.side], ["Qty", (f) => num(f.quantity)], ["Price", (f) => num(f.price)], ["Fee", (f) => num(f.fee)]], fills.slice(-50).reverse());
}

// -- execution analytics ----------------------------------------------------------------------------
/** `datetime-local` text (the browser's zone) as ns since the epoch, in text: ns exceed a JS number. */
const nanos = (local) => (local ? `${new Date(local).getTime()}000000` : "");
const millis = (ns) => (ns == null ? "" : (Number(ns) / 1e6).toFixed(3));

async function execution() {
  const form = $("#execution-form");
  const q = new URLSearchParams({ group_by: form.group_by.value });
  for (const [name, value] of [["start", nanos(form.start.value)], ["end", nanos(form.end.value)], ["account_id", form.account_id.value.trim()]]) {
    if (value) q.set(name, value);
  }
  const latest = new URLSearchParams(q);
  latest.delete("group_by");
  latest.set("latest", "true");
  latest.set("limit", "50");
  const [found, fills] = await Promise.all([api(`/v1/analytics/execution?${q}`), api(`/v1/analytics/execution/fills?${latest}`)]);
  const by = { venue: "Venue", instrument: "Instrument", strategy: "Strategy" }[found.group_by];
  fill($("#execution-groups"), [[by, (g) => g.key ?? "(none)"], ["Fills", (g) => num(g.fills)], ["Qty", (g) => num(g.quantity)],
    ["Notional", (g) => num(g.notional)], ["With arrival", (g) => num(g.slipped)], ["Mean bps", (g) => num(g.mean_slippage_bps)],
    ["Median bps", (g) => num(g.median_slippage_bps)], ["p95 bps", (g) => num(g.p95_slippage_bps)],
    ["Weighted bps", (g) => num(g.weighted_slippage_bps)], ["Sent→ack ms", (g) => num(millis(g.mean_submit_to_ack_ns))],
    ["Ack→fill ms", (g) => num(millis(g.mean_ack_to_fill_ns))]], found.groups, (g) => ({ "data-key": g.key ?? "" }));
  fill($("#execution-fills"), [["Time", (f) => when(f.ts_event)], ["Order", (f) => f.order_id.slice(0, 10)], ["Account", (f) => f.account_id],
    ["Venue", (f) => f.venue], ["Instrument", (f) => f.instrument_id], ["Strategy", (f) => f.strategy_id ?? ""], ["Side", (f) => f.side],
    ["Qty", (f) => num(f.quantity)], ["Price", (f) => num(f.fill_px)], ["Arrival mid", (f) => num(f.arrival_mid)],
    ["Slippage bps", (f) => num(f.slippage_bps)], ["Sent→ack ms", (f) => num(millis(f.submit_to_ack_ns))],
    ["Ack→fill ms", (f) => num(millis(f.ack_to_fill_ns))]], fills.items.slice().reverse(), (f) => ({ "data-trade": f.trade_id }));
}

async function risk() {
  const [limits, events, denied] = await Promise.all([api("/v1/risk/limits"), all("/v1/risk/events?limit=500"), all("/v1/orders?status=DENIED&limit=500")]);
  const tripped = new Map();
  for (const e of events.filter((e) => e.type.startsWith("KillSwitch"))) tripped.set(`${e.scope} ${e.scope_id}`.trim(), e.type === "KillSwitchTripped");
  const on = [...tripped].filter(([, t]) => t).map(([scope]) => scope);
  $("#trading-state").textContent = on.length ? `Kill switch tripped: ${on.join(", ")}` : "Trading: no kill switch tripped";
  $("#trading-state").className = on.length ? "error" : "ok";
  const reasons = new Map();
  for (const o of denied) reasons.set(o.reason || "?", (reasons.get(o.reason || "?") || 0) + 1);
  fill($("#denials"), [["Reason", ([r]) => r], ["Orders", ([, n]) => num(n)]], [...reasons].sort((a, b) => b[1] - a[1]));
  const text = (l) => Object.entries(l.limits).filter(([, v]) => v != null && !(Array.isArray(v) && !v.length)).map(([k, v]) => `${k}=${v}`).join(" ");
  const edit = (l) => { const f = $("#limits-form"); f.scope.value = l.scope; f.scope_id.value = l.scope_id; f.limits.value = text(l); f.limits.focus(); };
  fill($("#limits"), [["Scope", (l) => l.scope], ["Id", (l) => l.scope_id], ["Limits", (l) => el("td", { class: "hint" }, text(l))],
    ["", (l) => el("td", {}, can("admin") && l.scope !== "DEFAULT" ? el("button", { onclick: () => edit(l) }, "Edit") : null)]],
    limits, (l) => ({ "data-scope": `${l.scope} ${l.scope_id}`.trim() }));
  fill($("#risk-events"), [["Time", (e) => when(e.ts_event)], ["Event", (e) => e.type], ["Scope", (e) => e.scope], ["Id", (e) => e.scope_id],
    ["Reason", (e) => JSON.parse(e.payload).reason ?? ""]], events.slice(-50).reverse());
}

async function killSwitch(action) {
  const account = $("#kill-account").value;
  if (!confirm(`${action === "trip" ? "Trip" : "Reset"} the ${account ? `kill switch of ${account}` : "global kill switch"}?`)) return;
  const body = { action, ...(account && { account_id: account }), ...(action === "trip" && { reason: $("#kill-reason").value || "manual" }) };
  await attempt(async () => { await api("/v1/risk/kill-switch", { method: "POST", body }); toast(`kill switch ${action} requested`); });
  refresh();
}

const WHOLE = new Set(["throttle_burst", "max_open_orders", "circuit_breaker_breaches", "circuit_breaker_window_ns"]);
const LISTS = new Set(["accounts", "allowed_instruments", "allowed_order_types"]);

async function setLimits(ev) {
  ev.preventDefault();
  const f = ev.target;
  const body = { scope: f.scope.value, scope_id: f.scope.value === "GLOBAL" ? "" : f.scope_id.value };
  for (const pair of f.limits.value.split(/\s+/).filter(Boolean)) {
    const [name, value] = pair.split("=");
    body[name] = WHOLE.has(name) ? Number.parseInt(value, 10) : LISTS.has(name) ? value.split(",").filter(Boolean) : value;
  }
  await attempt(async () => { await api("/v1/risk/limits", { method: "PUT", body }); toast("limits change requested"); });
  soon();
}

const control = (path, what) => el("button", { onclick: () => attempt(async () => { await api(path, { method: "POST" }); toast(`${what} requested`); refresh(); }) }, what);

/** `name=value name=value` as an object of texts; an Error names a pair without `=`. */
function parsePairs(text) {
  return Object.fromEntries(text.split(/\s+/).filter(Boolean).map((pair) => {
    const at = pair.indexOf("=");
    if (at < 1) throw new Error(`parameter ${pair}: expected name=value`);
    return [pair.slice(0, at), pair.slice(at + 1)];
  }));
}

const remover = (path, what) => el("button", { class: "danger", onclick: () => {
  if (!confirm(`Remove ${what}?`)) return;
  attempt(async () => { await api(path, { method: "DELETE" }); toast(`removal of ${what} requested`); soon(); });
} }, "Remove");

let adapters = null;
async function addVenue(ev) {
  ev.preventDefault();
  const f = ev.target;
  await attempt(async () => {
    const body = { name: f.elements.name.value.trim(), adapter: f.adapter.value, params: parsePairs(f.params.value), start: f.start.checked };
    await api("/v1/venues", { method: "POST", body });
    toast(`venue ${body.name} add requested`);
    f.elements.name.value = "";
    f.params.value = "";
  });
  soon();
}

function adapterHint() {
  const takes = adapters?.[$("#venue-form").adapter.value] || [];
  $("#adapter-params").textContent = takes.length ? `takes ${takes.join(", ")}` : "";
}

async function venues() {
  const form = $("#venue-form");
  if (can("admin") && !adapters) {
    adapters = await api("/v1/venues/adapters");
    form.adapter.replaceChildren(...Object.keys(adapters).map((a) => el("option", {}, a)));
    adapterHint();
  }
  fill($("#venue-list"), [["Venue", (v) => v.venue], ["Adapter", (v) => v.adapter], ["State", (v) => el("td", { class: v.state }, v.state)],
    ["Reason", (v) => v.reason], ["Received", (v) => num(v.received)], ["Published", (v) => num(v.published)], ["Gaps", (v) => num(v.gaps)],
    ["", (v) => el("td", {}, can("admin") ? [control(`/v1/venues/${v.venue}/start`, "Start"), control(`/v1/venues/${v.venue}/stop`, "Stop"), remover(`/v1/venues/${v.venue}`, `venue ${v.venue}`)] : [])]],
    await all("/v1/venues"), (v) => ({ "data-venue": v.venue, "data-state": v.state }));
}

let kinds = null;
async function addStrategy(ev) {
  ev.preventDefault();
  const f = ev.target;
  await attempt(async () => {
    const body = { strategy_id: f.strategy_id.value.trim(), kind: f.kind.value, account_id: f.account_id.value.trim(),
      instrument_id: f.instrument_id.value, params: parsePairs(f.params.value), start: f.start.checked };
    await api("/v1/strategies", { method: "POST", body });
    toast(`strategy ${body.strategy_id} add requested`);
    f.strategy_id.value = "";
  });
  soon();
}

/** The chosen kind's parameters with their defaults, to edit ("name=" is required). */
function kindDefaults() {
  const f = $("#strategy-form");
  f.params.value = Object.entries(kinds?.[f.kind.value] || {}).map(([n, d]) => `${n}=${d}`).join(" ");
}

async function strategies() {
  const [list, catalog] = await Promise.all([all("/v1/strategies"), api("/v1/strategies/catalog")]);
  const form = $("#strategy-form");
  if (can("trade") && !kinds) {
    kinds = catalog;
    form.kind.replaceChildren(...Object.keys(catalog).map((k) => el("option", {}, k)));
    kindDefaults();  // before any await: a kind and parameters chosen meanwhile are the user's
    form.account_id.value ||= me.accounts?.[0] || "DEMO";
    await offer(form.instrument_id);
  }
  fill($("#strategy-list"), [["Strategy", (s) => s.strategy_id], ["Account", (s) => s.account_id], ["Kind", (s) => s.kind],
    ["Instrument", (s) => s.instrument_id], ["State", (s) => el("td", { class: s.state }, s.state)], ["Reason", (s) => s.reason],
    ["Params", (s) => JSON.stringify(s.params)],
    ["", (s) => el("td", {}, can("trade") ? [control(`/v1/strategies/${s.strategy_id}/start`, "Start"), control(`/v1/strategies/${s.strategy_id}/stop`, "Stop"),
      remover(`/v1/strategies/${s.strategy_id}`, `strategy ${s.strategy_id}`)] : [])]], list, (s) => ({ "data-strategy": s.strategy_id, "data-state": s.state }));
  fill($("#catalog"), [["Kind", ([k]) => k], ["Parameters (default)", ([, p]) => Object.entries(p).map(([n, d]) => `${n}=${d || "required"}`).join(" ")]],
    Object.entries(catalog));
}

async function backtests() {
  fill($("#backtest-list"), [["Created", (b) => b.created_at], ["Backtest", (b) => el("td", {}, el("a", { href: "#backtests", onclick: () => showBacktest(b.backtest_id) }, b.backtest_id.slice(0, 12)))],
    ["Strategy", (b) => b.strategy], ["Instrument", (b) => b.instrument_id], ["Params", (b) => el("td", { class: "hint" }, pairs(b.params))],
    ["Fills", (b) => num(b.fills)], ["Realized", (b) => num(b.realized_pnl)], ["Return", (b) => num(pct(b.stats.total_return))],
    ["Max DD", (b) => num(pct(b.stats.max_drawdown))], ["Sharpe", (b) => num(ratio(b.stats.sharpe))]],
    (await all("/v1/backtests")).reverse(), (b) => ({ "data-backtest": b.backtest_id }));
}

// Statistics are ratios (floats), shown rounded; money stays the API's exact decimal text.
const pct = (v) => (typeof v === "number" ? `${(v * 100).toFixed(2)}%` : v);
const ratio = (v) => (typeof v === "number" ? v.toFixed(2) : v);
const pairs = (o) => Object.entries(o || {}).map(([k, v]) => `${k}=${v}`).join(" ");

/** Draw `ys` across the 600×200 `svg` as one polyline (numbers only: no markup from data). */
function line(svg, ys, colour) {
  const lo = Math.min(...ys), hi = Math.max(...ys), n = Math.max(ys.length - 1, 1);
  const points = ys.map((y, i) => `${(i / n) * 600},${190 - ((y - lo) / (hi - lo || 1)) * 180}`).join(" ");
  svg.innerHTML = `<polyline fill="none" stroke="${colour}" stroke-width="1.5" vector-effect="non-scaling-stroke" points="${points}"/>`;
}

let reported = null; // {id, url}: the backtest shown, and its saved report's blob URL once loaded

async function showBacktest(id) {
  const b = await api(`/v1/backtests/${id}`);
  const view = $("#backtest-view");
  if (reported?.url) URL.revokeObjectURL(reported.url);
  reported = { id };
  $("#report").hidden = $("#report-save").hidden = true;
  $("h3", view).textContent = `${b.strategy} on ${b.instrument_id}`;
  const ys = b.equity.map(([, v]) => Number(v)); // for drawing only; the figures below stay exact strings
  let peak = -Infinity;
  const dd = ys.map((y) => ((peak = Math.max(peak, y)), peak ? y / peak - 1 : 0));
  line($("#equity"), ys, "#1f6feb");
  line($("#drawdown"), dd, "#cf222e");
  fill($("#stats"), [["Statistic", ([k]) => k], ["Value", ([, v]) => num(v)]], Object.entries(b.stats).filter(([, v]) => typeof v !== "object"));
  view.hidden = false;
  $("h3", view).focus(); // for the keyboard: the opened result, not back at the list's top
}

/** The shown backtest's HTML report in a sandboxed frame (no scripts, an origin of its own), and
 * a link that saves it (the API wants the key header, so a plain link to it cannot work). */
async function showReport() {
  const shown = reported;
  if (!shown) return;
  const html = await text(`/v1/backtests/${shown.id}/report`);
  if (reported !== shown) return; // another backtest opened meanwhile
  shown.url = URL.createObjectURL(new Blob([html], { type: "text/html" }));
  Object.assign($("#report-save"), { href: shown.url, download: `backtest-${shown.id}.html`, hidden: false });
  Object.assign($("#report"), { srcdoc: html, hidden: false });
}

// -- shell ------------------------------------------------------------------------------------------
const SCREENS = { blotter, ticket, portfolio, execution, chart, risk, venues, strategies, backtests };
function screen() {
  const name = location.hash.slice(1);
  return SCREENS[name] && (name !== "ticket" || can("trade")) ? name : "blotter";
}

function refresh() {
  if (me) attempt(SCREENS[screen()]);
}

function route() {
  if (!me) return;
  for (const s of Object.keys(SCREENS)) $(`#${s}`).hidden = s !== screen();
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("on", a.hash === `#${screen()}`));
  refresh();
}

let pending = null;
function soon() {
  // The stream reads the log; the read models follow a moment later: look now and again shortly.
  clearTimeout(pending);
  pending = setTimeout(() => { refresh(); pending = setTimeout(refresh, 700); }, 100);
}

async function listen() {
  live = new AbortController();
  const badge = $("#live");
  try {
    // Marks come many times a second: they redraw the chart, not every screen.
    const seen = (type, data) => { noteMark(type, data); equitySeen(type, data); if (type !== "PnLMarked") soon(); };
    await stream("/v1/stream?kinds=orders,portfolio", seen, live.signal, () => { badge.textContent = "live"; badge.className = "badge on"; soon(); });
  } catch (e) {
    if (e.name === "AbortError") return;
  }
  badge.textContent = "offline";
  badge.className = "badge";
  if (me) setTimeout(listen, 2000);
}

async function login(k) {
  key.set(k);
  try {
    me = await api("/v1/me");
  } catch (e) {
    key.clear();
    toast(e instanceof Problem ? e.message : String(e), true);
    return;
  }
  $("#login").hidden = true;
  $("#nav").hidden = $("#logout").hidden = false;
  $("#who").textContent = `${me.name} · ${me.scopes.join(",")} · ${me.accounts ? me.accounts.join(",") : "all accounts"}`;
  document.querySelectorAll("[data-needs]").forEach((e) => (e.hidden = !can(e.dataset.needs)));
  route();
  listen();
  setInterval(refresh, 5000);
}

function logout() {
  // Screens still loading and timers still set would ask on without a key: stop them first.
  me = null;
  clearTimeout(pending);
  if (live) live.abort();
  key.clear();
  location.reload();
}

function start() {
  $("#filters").status.append(...STATUSES.map((s) => el("option", {}, s)));
  const form = $("#ticket-form");
  form.type.append(...TYPES.map((t) => el("option", {}, t)));
  form.time_in_force.append(...TIFS.map((t) => el("option", {}, t)));
  form.contingency.addEventListener("change", legs);
  form.instrument_id.addEventListener("change", increments);
  form.addEventListener("submit", submit);
  $("#filters").addEventListener("input", refresh);
  $("#filters").addEventListener("submit", (e) => e.preventDefault());
  $("#limits-form").addEventListener("submit", setLimits);
  $("#chart-form").addEventListener("input", () => { plotted = null; refresh(); });
  $("#chart-form").addEventListener("submit", (e) => e.preventDefault());
  $("#execution-form").addEventListener("input", refresh);
  $("#execution-form").addEventListener("submit", (e) => e.preventDefault());
  $("#venue-form").addEventListener("submit", addVenue);
  $("#venue-form").adapter.addEventListener("change", adapterHint);
  $("#strategy-form").addEventListener("submit", addStrategy);
  $("#strategy-form").kind.addEventListener("change", kindDefaults);
  $("#report-show").addEventListener("click", () => attempt(showReport));
  $("#trip").addEventListener("click", () => killSwitch("trip"));
  $("#reset").addEventListener("click", () => killSwitch("reset"));
  $("#login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("#key").value.trim()); });
  $("#logout").addEventListener("click", logout);
  window.addEventListener("hashchange", route);
  if (key.get()) login(key.get());
}

start();
