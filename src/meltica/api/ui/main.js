// Meltica's trader UI: plain DOM, one module per concern (api.js talks to the API).
import { api, all, key, stream, Problem } from "./api.js";

const STATUSES = "PENDING_NEW DENIED ACCEPTED SUBMITTED NEW REJECTED PARTIALLY_FILLED FILLED PENDING_CANCEL CANCELED PENDING_REPLACE REPLACED TRIGGERED EXPIRED".split(" ");
const TERMINAL = new Set(["DENIED", "REJECTED", "FILLED", "CANCELED", "EXPIRED"]);
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
    if (!can("trade") || TERMINAL.has(o.status)) return td;
    td.append(
      el("button", { onclick: () => attempt(async () => { await api(`/v1/orders/${o.order_id}`, { method: "DELETE" }); toast(`cancel of ${o.order_id.slice(0, 8)} requested`); }) }, "Cancel"),
      el("button", { onclick: () => amendForm(td, o) }, "Amend"));
    return td;
  };
  fill($("#orders"), [
    ["Created", (o) => el("td", { title: when(o.ts_created) }, when(o.ts_created).slice(11))],
    ["Order", (o) => el("td", {}, el("a", { href: "#blotter", onclick: () => trail(o.order_id) }, o.order_id.slice(0, 10)))],
    ["Account", (o) => o.account_id], ["Instrument", (o) => o.instrument_id], ["Side", (o) => o.side],
    ["Type", (o) => o.order_type], ["TIF", (o) => o.time_in_force], ["Qty", (o) => num(o.quantity)],
    ["Filled", (o) => num(o.filled_qty)], ["Price", (o) => num(o.price ?? o.trigger_price)], ["Avg", (o) => num(o.avg_px)],
    ["Status", (o) => el("td", { class: o.status }, o.status)], ["Reason", (o) => o.reason], ["", actions],
  ], orders, (o) => ({ "data-order": o.order_id, "data-status": o.status }));
}

function amendForm(td, o) {
  editing = true;
  const price = el("input", { name: "price", value: o.price ?? "", size: 8, "aria-label": "new price" });
  const qty = el("input", { name: "quantity", value: o.quantity, size: 6, "aria-label": "new quantity" });
  const done = () => { editing = false; refresh(); };
  const save = () => attempt(async () => {
    const body = {};
    if (price.value && price.value !== String(o.price)) body.price = price.value;
    if (qty.value && qty.value !== String(o.quantity)) body.quantity = qty.value;
    await api(`/v1/orders/${o.order_id}`, { method: "PATCH", body });
    toast(`amend of ${o.order_id.slice(0, 8)} requested`);
  }).finally(done);
  td.replaceChildren(price, qty, el("button", { onclick: save }, "Save"), el("button", { onclick: done }, "Back"));
  price.focus();
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

async function ticket() {
  const form = $("#ticket-form");
  if (!instruments.length) {
    instruments = await all("/v1/instruments");
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

// -- portfolio, risk, venues, strategies, backtests ------------------------------------------------
async function portfolio() {
  const [positions, balances, pnl, fills] = await Promise.all(["positions", "balances", "pnl", "fills"].map((p) => all(`/v1/${p}?limit=500`)));
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

async function venues() {
  fill($("#venue-list"), [["Venue", (v) => v.venue], ["Adapter", (v) => v.adapter], ["State", (v) => el("td", { class: v.state }, v.state)],
    ["Reason", (v) => v.reason], ["Received", (v) => num(v.received)], ["Published", (v) => num(v.published)], ["Gaps", (v) => num(v.gaps)],
    ["", (v) => el("td", {}, can("admin") ? [control(`/v1/venues/${v.venue}/start`, "Start"), control(`/v1/venues/${v.venue}/stop`, "Stop")] : [])]],
    await all("/v1/venues"), (v) => ({ "data-venue": v.venue, "data-state": v.state }));
}

async function strategies() {
  const [list, catalog] = await Promise.all([all("/v1/strategies"), api("/v1/strategies/catalog")]);
  fill($("#strategy-list"), [["Strategy", (s) => s.strategy_id], ["Account", (s) => s.account_id], ["Kind", (s) => s.kind],
    ["Instrument", (s) => s.instrument_id], ["State", (s) => el("td", { class: s.state }, s.state)], ["Reason", (s) => s.reason],
    ["Params", (s) => JSON.stringify(s.params)],
    ["", (s) => el("td", {}, can("trade") ? [control(`/v1/strategies/${s.strategy_id}/start`, "Start"), control(`/v1/strategies/${s.strategy_id}/stop`, "Stop")] : [])]], list);
  fill($("#catalog"), [["Kind", ([k]) => k], ["Parameters (default)", ([, p]) => Object.entries(p).map(([n, d]) => `${n}=${d || "required"}`).join(" ")]],
    Object.entries(catalog));
}

async function backtests() {
  fill($("#backtest-list"), [["Created", (b) => b.created_at], ["Backtest", (b) => el("td", {}, el("a", { href: "#backtests", onclick: () => showBacktest(b.backtest_id) }, b.backtest_id.slice(0, 12)))],
    ["Strategy", (b) => b.strategy], ["Instrument", (b) => b.instrument_id], ["Fills", (b) => num(b.fills)], ["Realized", (b) => num(b.realized_pnl)]],
    (await all("/v1/backtests")).reverse());
}

/** Draw `ys` across the 600×200 `svg` as one polyline (numbers only: no markup from data). */
function line(svg, ys, colour) {
  const lo = Math.min(...ys), hi = Math.max(...ys), n = Math.max(ys.length - 1, 1);
  const points = ys.map((y, i) => `${(i / n) * 600},${190 - ((y - lo) / (hi - lo || 1)) * 180}`).join(" ");
  svg.innerHTML = `<polyline fill="none" stroke="${colour}" stroke-width="1.5" vector-effect="non-scaling-stroke" points="${points}"/>`;
}

async function showBacktest(id) {
  const b = await api(`/v1/backtests/${id}`);
  const view = $("#backtest-view");
  $("h3", view).textContent = `${b.strategy} on ${b.instrument_id}`;
  const ys = b.equity.map(([, v]) => Number(v)); // for drawing only; the figures below stay exact strings
  let peak = -Infinity;
  const dd = ys.map((y) => ((peak = Math.max(peak, y)), peak ? y / peak - 1 : 0));
  line($("#equity"), ys, "#1f6feb");
  line($("#drawdown"), dd, "#cf222e");
  fill($("#stats"), [["Statistic", ([k]) => k], ["Value", ([, v]) => num(v)]], Object.entries(b.stats).filter(([, v]) => typeof v !== "object"));
  view.hidden = false;
}

// -- shell ------------------------------------------------------------------------------------------
const SCREENS = { blotter, ticket, portfolio, risk, venues, strategies, backtests };
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
    await stream("/v1/stream?kinds=orders,portfolio", soon, live.signal, () => { badge.textContent = "live"; badge.className = "badge on"; soon(); });
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
  $("#trip").addEventListener("click", () => killSwitch("trip"));
  $("#reset").addEventListener("click", () => killSwitch("reset"));
  $("#login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("#key").value.trim()); });
  $("#logout").addEventListener("click", () => { key.clear(); location.reload(); });
  window.addEventListener("hashchange", route);
  if (key.get()) login(key.get());
}

start();
