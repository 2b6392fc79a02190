// SMP admin portal. Plain JavaScript, no dependencies, no build step.
// Every value from the server goes into the page as text (textContent),
// never as HTML. The token lives in sessionStorage: this tab only.
"use strict";

const $ = (sel) => document.querySelector(sel);
const STAGES = ["01_created", "02_dispatching", "03_assigned", "04_in_progress", "05_completed", "09_cancelled"];
const POLL_MS = 2000;

let me = null; // {name, role, can}
let pollTimer = null;
let lagTimer = null; // the read-model pages' lag check
let cities = [];

// ---------- API ----------
function token() { return sessionStorage.getItem("smp-admin-token") || ""; }

async function api(method, path, body) {
  const opts = { method, headers: { "Authorization": "Bearer " + token() } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new Error("cannot reach SMP: " + e.message);
  }
  const data = await res.json().catch(() => ({}));
  if (res.status === 401 && me) { logout("Your session ended: log in again."); }
  if (!res.ok) {
    const msg = (data.error && data.error.message) || res.statusText;
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return data;
}

// ---------- small DOM helpers ----------
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}
const td = (text, cls) => el("td", { text: text === undefined || text === null ? "" : String(text), class: cls });
function fill(tbody, rows) { tbody.replaceChildren(...rows); }
function fmtTime(t) {
  if (!t || t.startsWith("0001")) return "";
  const d = new Date(t);
  return d.toLocaleString();
}
function ago(t) {
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}
const ms = (v) => (v === undefined || v === null ? "–" : (v >= 100 ? Math.round(v) : v.toFixed(1)) + " ms");

// latest(key) starts a load and returns a check that it is still the
// newest of its kind: an older answer arriving late must not overwrite a
// newer one.
const loads = {};
function latest(key) {
  const n = (loads[key] || 0) + 1;
  loads[key] = n;
  return () => loads[key] === n;
}

let toastTimer;
function toast(msg, bad) {
  const t = $("#toast");
  t.textContent = msg;
  t.className = "toast show" + (bad ? " bad" : "");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.className = "toast"; }, 5000);
}

// Role gating: controls carrying data-perm are disabled, with the reason,
// when the token's role may not do that action (the API refuses it too).
function applyPermissions(root) {
  for (const b of (root || document).querySelectorAll("[data-perm]")) {
    const ok = me && me.can[b.dataset.perm];
    b.disabled = !ok;
    if (!ok) b.title = "Your role (" + (me ? me.role : "?") + ") may not do this";
    else b.removeAttribute("title");
  }
}

// confirmAction opens the confirmation dialog; it resolves with the
// reason typed, or null when cancelled. label names the text asked for
// ("Reason" unless given, e.g. "Note").
function confirmAction(title, text, needReason, label) {
  const dlg = $("#confirm");
  const what = label || "Reason";
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-label").textContent = what;
  $("#confirm-error").textContent = "";
  const reason = $("#confirm-reason");
  reason.value = "";
  reason.required = needReason !== false;
  return new Promise((resolve) => {
    const done = (v) => {
      dlg.removeEventListener("close", onClose);
      $("#confirm-form").removeEventListener("submit", onSubmit);
      $("#confirm-cancel").removeEventListener("click", onCancel);
      resolve(v);
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      const r = reason.value.trim();
      if (reason.required && r.length < 3) {
        $("#confirm-error").textContent = "A " + what.toLowerCase() + " (at least 3 characters) is required.";
        reason.focus();
        return;
      }
      dlg.close();
      done(r);
    };
    const onCancel = () => { dlg.close(); };
    const onClose = () => done(null);
    dlg.addEventListener("close", onClose);
    $("#confirm-form").addEventListener("submit", onSubmit);
    $("#confirm-cancel").addEventListener("click", onCancel);
    dlg.showModal();
    reason.focus();
  });
}

// ---------- login ----------
async function login(tok) {
  sessionStorage.setItem("smp-admin-token", tok);
  try {
    me = await api("GET", "/admin/me");
  } catch (e) {
    sessionStorage.removeItem("smp-admin-token");
    me = null;
    throw e;
  }
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#whoami").textContent = me.name + " · " + me.role;
  applyPermissions();
  route();
}

function logout(msg) {
  // A full reload drops everything the last user had on screen.
  sessionStorage.removeItem("smp-admin-token");
  if (msg) sessionStorage.setItem("smp-login-message", msg);
  me = null;
  location.replace("/admin/");
}

// ---------- routing ----------
const views = {
  dashboard: { load: loadDashboard, poll: true },
  dispatch: { load: loadStuck },
  orders: { load: loadOrders, lag: true },
  events: { load: () => Promise.all([loadEvents(), loadBusDLQ()]) },
  integrations: { load: loadIntegrations },
  flags: { load: loadFlags },
  status: { load: loadStatus },
  onboarding: { load: () => loadOnboarding(false) },
  finance: { load: loadFinance },
  security: { load: loadSecurity },
  audit: { load: loadAudit },
};

function route() {
  if (!me) return;
  const name = (location.hash || "#dashboard").slice(1).split("/")[0];
  const v = views[name] ? name : "dashboard";
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + v;
  for (const a of document.querySelectorAll(".tabs a")) {
    if (a.dataset.tab === v) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  clearInterval(pollTimer);
  clearInterval(lagTimer);
  const run = () => views[v].load().catch((e) => toast(e.message, true));
  run();
  if (views[v].poll) pollTimer = setInterval(run, POLL_MS);
  if (views[v].lag) lagTimer = setInterval(checkLag, POLL_MS);
}

// ---------- dashboard ----------
async function loadDashboard() {
  const current = latest("dashboard");
  const d = await api("GET", "/admin/dashboard");
  if (!current()) return;
  $("#dash-updated").textContent = new Date(d.at).toLocaleTimeString();
  $("#dash-updated").setAttribute("datetime", d.at);
  const errs = Object.entries(d.errors || {}).map(([k, v]) => k + ": " + v);
  $("#dash-errors").textContent = errs.join(" · ");
  const e = d.engine;
  if (e) {
    $("#stat-engine").textContent = e.engine_up ? "up" : "DOWN";
    $("#stat-engine").className = "value " + (e.engine_up ? "state-up" : "state-down");
    $("#stat-ws").textContent = e.websocket_connections;
    $("#stat-latency").textContent = ms(e.dispatch_latency_ms.p50) + " / " + ms(e.dispatch_latency_ms.p99);
    $("#stat-first-offer").textContent = ms(e.first_offer_latency_ms.p50) + " / " + ms(e.first_offer_latency_ms.p99);
    $("#stat-active").textContent = e.active_dispatches;
    const qs = Object.entries(e.queue_length || {}).sort();
    cities = qs.map(([c]) => c);
    fill($("#dash-queues tbody"), qs.map(([c, n]) => el("tr", {}, td(c), td(n), td(e.backpressure[c] ? "yes" : "no", e.backpressure[c] ? "state-down" : ""))));
    drawFunnel(e.orders_per_stage || {});
  }
  const wh = d.webhook_events || {};
  $("#stat-dlq").textContent = wh.dlq || 0;
  const busDLQ = Object.values(d.bus_dlq || {}).reduce((a, b) => a + b, 0);
  $("#stat-bus-dlq").textContent = busDLQ;
  const r = d.replica || {};
  $("#stat-replica").textContent = !r.configured ? "no replica" : (r.reachable ? r.lag_seconds.toFixed(1) + " s" : "unreachable");
  const lags = Object.entries(d.consumer_lag || {}).sort();
  $("#stat-lag").textContent = lags.length ? lags.reduce((a, [, n]) => a + n, 0) : "–";
  fill($("#dash-lag tbody"), lags.map(([g, n]) => el("tr", {}, td(g), td(n))));
  $("#stat-alerts").textContent = d.alerts_firing.length;
  $("#stat-alerts").className = "value" + (d.alerts_firing.length ? " state-down" : "");
  $("#dash-alerts").replaceChildren(...(d.alerts_firing.length ? d.alerts_firing.map((a) => {
    const li = el("li", {}, el("strong", { text: a.name }), " (" + (a.severity || "none") + ") " + ((a.annotations || {}).summary || "") + " ");
    const url = (a.annotations || {}).runbook_url;
    if (url) li.append(el("a", { href: url, text: "runbook" }));
    return li;
  }) : [el("li", { class: "muted", text: "none" })]));
  fill($("#dash-breakers tbody"), (d.breakers || []).map((b) => el("tr", {}, td(b.service), td(b.state, "state-" + b.state), td(b.failures))));
  drawLatency(d.history || []);
}

const SVGNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// The stage funnel: one bar per stage, its count written beside it.
function drawFunnel(perStage) {
  const s = $("#chart-funnel");
  const title = s.querySelector("title");
  const max = Math.max(1, ...STAGES.map((st) => perStage[st] || 0));
  const parts = [title];
  STAGES.forEach((st, i) => {
    const n = perStage[st] || 0;
    const y = 8 + i * 30;
    const w = Math.round((n / max) * 250);
    parts.push(svg("text", { x: 0, y: y + 15 }, st));
    parts.push(svg("rect", { class: "bar", x: 105, y: y, width: Math.max(w, 1), height: 20, "data-stage": st }));
    parts.push(svg("text", { x: 110 + w, y: y + 15, "data-count": st }, String(n)));
  });
  title.textContent = "Orders per stage: " + STAGES.map((st) => st + " " + (perStage[st] || 0)).join(", ");
  s.replaceChildren(...parts);
}

// Latency over time: dispatch (created → assigned) p50 and p99, and the
// first offer's p50, from the server's samples.
function drawLatency(hist) {
  const s = $("#chart-latency");
  const title = s.querySelector("title");
  const parts = [title];
  const W = 400, H = 190, L = 40, B = 20;
  parts.push(svg("line", { class: "axis", x1: L, y1: H - B, x2: W, y2: H - B }));
  parts.push(svg("line", { class: "axis", x1: L, y1: 0, x2: L, y2: H - B }));
  if (hist.length < 2) {
    parts.push(svg("text", { x: L + 10, y: 90 }, "collecting samples…"));
    title.textContent = "Dispatch latency over time: not enough samples yet";
    s.replaceChildren(...parts);
    return;
  }
  const max = Math.max(1, ...hist.map((h) => Math.max(h.dispatch_p99_ms, h.first_offer_p50_ms)));
  const t0 = new Date(hist[0].at).getTime(), t1 = new Date(hist[hist.length - 1].at).getTime();
  const x = (h) => L + ((new Date(h.at).getTime() - t0) / Math.max(1, t1 - t0)) * (W - L - 5);
  const y = (v) => (H - B) - (v / max) * (H - B - 10);
  const line = (key, cls) => svg("polyline", { class: cls, points: hist.map((h) => x(h).toFixed(1) + "," + y(h[key]).toFixed(1)).join(" ") });
  parts.push(line("dispatch_p50_ms", "l1"), line("dispatch_p99_ms", "l2"), line("first_offer_p50_ms", "l3"));
  parts.push(svg("text", { x: 0, y: 12 }, Math.round(max) + " ms"));
  parts.push(svg("text", { x: 0, y: H - B }, "0"));
  parts.push(svg("text", { x: L, y: H - 4 }, new Date(t0).toLocaleTimeString()));
  parts.push(svg("text", { x: W - 2, y: H - 4, "text-anchor": "end" }, new Date(t1).toLocaleTimeString()));
  const last = hist[hist.length - 1];
  title.textContent = "Dispatch latency over time; latest p50 " + ms(last.dispatch_p50_ms) + ", p99 " + ms(last.dispatch_p99_ms);
  s.replaceChildren(...parts);
}

// ---------- manual dispatch ----------
let selectedOrder = null;

function fillCitySelect(sel) {
  const keep = sel.value;
  const opts = [sel.options[0]];
  for (const c of cities) opts.push(el("option", { value: c, text: c }));
  sel.replaceChildren(...opts);
  sel.value = keep;
}

async function ensureCities() {
  if (cities.length) return;
  try {
    const d = await api("GET", "/admin/stats");
    cities = Object.keys(d.queue_length || {}).sort();
  } catch (e) { /* the selects keep "all" */ }
}

async function loadStuck() {
  const current = latest("stuck");
  await ensureCities();
  fillCitySelect($("#stuck-city"));
  const q = new URLSearchParams({ stuck_after: $("#stuck-after").value, limit: "200" });
  if ($("#stuck-city").value) q.set("city", $("#stuck-city").value);
  const d = await api("GET", "/admin/orders?" + q);
  if (!current()) return;
  $("#stuck-empty").hidden = d.orders.length > 0;
  fill($("#stuck-orders tbody"), d.orders.map((o) => el("tr", { "data-order": o.id },
    td(o.id), td(o.city), td(o.service), td(o.stage), td(ago(o.stage_changed_at)),
    el("td", {}, el("button", { type: "button", class: "small", "data-perm": "orders.candidates", "aria-label": "Find technicians for " + o.id, text: "Find technicians",
      onclick: () => loadCandidates(o) })))));
  applyPermissions($("#stuck-orders"));
}

async function loadCandidates(o) {
  selectedOrder = o;
  const d = await api("GET", "/admin/orders/" + encodeURIComponent(o.id) + "/candidates?limit=10");
  const panel = $("#candidates-panel");
  panel.hidden = false;
  $("#candidates-title").textContent = "Candidates for " + o.id + " (" + o.city + ", " + o.service + ")";
  const list = $("#candidates-list");
  if (!d.candidates.length) {
    list.replaceChildren(el("p", { class: "muted", text: "No technician is online and free near this order." }));
  } else {
    list.replaceChildren(...d.candidates.map((c, i) => {
      const id = "cand-" + i;
      return el("div", { class: "candidate" },
        el("input", { type: "radio", name: "candidate", id, value: c.technician_id, checked: i === 0 }),
        el("label", { for: id, text: c.technician_id + " — " + (c.distance_m / 1000).toFixed(2) + " km" }));
    }));
  }
  applyPermissions(panel);
  const first = list.querySelector("input");
  (first || $("#assign-reason")).focus();
}

async function assign(ev) {
  ev.preventDefault();
  const pick = document.querySelector('input[name="candidate"]:checked');
  if (!selectedOrder || !pick) { toast("Choose a technician first.", true); return; }
  const reason = $("#assign-reason").value.trim();
  if (reason.length < 3) { toast("A reason is required.", true); $("#assign-reason").focus(); return; }
  try {
    const o = await api("POST", "/admin/orders/" + encodeURIComponent(selectedOrder.id) + "/assign", { technician_id: pick.value, reason });
    toast("Order " + o.id + " assigned to " + o.technician_id + " (" + o.stage + ")");
    $("#candidates-panel").hidden = true;
    $("#assign-reason").value = "";
    selectedOrder = null;
    await loadStuck();
  } catch (e) { toast(e.message, true); }
}

// ---------- orders (the list from the read model: INC-009) ----------
const LAG_BANNER_S = 60; // the banner shows while es_sink_lag_seconds is above this

// readModelDate turns a document's time (microseconds since 1970, as the
// orders table keeps it) into a readable local time.
function readModelDate(v) {
  if (v === undefined || v === null || v === "") return "";
  if (typeof v === "string") return fmtTime(v);
  const msec = v > 1e14 ? v / 1000 : (v > 1e11 ? v : v * 1000);
  return new Date(msec).toLocaleString();
}

// showLag shows or hides the read-model banner: behind by more than
// LAG_BANNER_S, or unavailable (err).
function showLag(lag, err) {
  const b = $("#rm-banner");
  if (err) {
    b.hidden = false;
    b.className = "banner banner-critical";
    b.textContent = "The read model is unavailable: " + err.message + ". Search and lists cannot be served; open an order by its id below (its detail reads the database).";
    return;
  }
  if (lag !== undefined && lag !== null && lag > LAG_BANNER_S) {
    b.hidden = false;
    b.className = "banner";
    b.dataset.lag = String(Math.round(lag));
    b.textContent = "Search results may be " + Math.round(lag) + " s behind (es_sink_lag_seconds): recent orders and changes may be missing; an order's detail reads the database.";
  } else {
    b.hidden = true;
    b.textContent = "";
    delete b.dataset.lag;
  }
}

async function checkLag() {
  const current = latest("lag");
  try {
    const d = await api("GET", "/admin/readmodel/lag");
    if (current()) showLag(d.es_sink_lag_seconds);
  } catch (e) {
    if (current()) showLag(null, e);
  }
}

async function loadOrders() {
  await ensureCities();
  fillCitySelect($("#orders-city"));
  $("#orders-error").textContent = "";
  const q = new URLSearchParams({ limit: "100" });
  const text = [$("#orders-q").value.trim(), $("#orders-address").value.trim()].filter(Boolean).join(" ");
  if (text) q.set("q", text);
  for (const [k, sel] of [["phone", "#orders-phone"], ["technician_id", "#orders-technician"], ["stage", "#orders-stage"], ["city", "#orders-city"], ["from", "#orders-from"], ["to", "#orders-to"]]) {
    const v = $(sel).value.trim();
    if (v) q.set(k, v);
  }
  const current = latest("orders");
  let d;
  try {
    d = await api("GET", "/admin/orders/search?" + q);
  } catch (e) {
    if (!current()) return;
    fill($("#orders-table tbody"), []);
    $("#orders-summary").textContent = "";
    if (e.status === 503) showLag(null, e);
    else $("#orders-error").textContent = "Search refused: " + e.message;
    return;
  }
  if (!current()) return;
  $("#orders-table").dataset.searches = String(Number($("#orders-table").dataset.searches || 0) + 1); // answered searches
  showLag(d.lag_seconds);
  $("#orders-summary").textContent = d.total + " order(s) in the read model" + (d.total > d.orders.length ? ", the newest " + d.orders.length + " shown" : "");
  fill($("#orders-table tbody"), d.orders.map(orderRow));
}

async function openOrder() {
  const id = $("#orders-id").value.trim();
  if (!id) { $("#orders-id").focus(); return; }
  $("#orders-error").textContent = "";
  try {
    await showOrder(id);
  } catch (e) {
    $("#orders-error").textContent = "Order " + id + ": " + e.message;
  }
}

function orderRow(o) {
  return el("tr", { "data-order": o.id },
    el("td", {}, el("button", { type: "button", class: "small secondary", text: o.id, "aria-label": "Show order " + o.id,
      onclick: () => showOrder(o.id).catch((e) => { $("#orders-error").textContent = "Order " + o.id + ": " + e.message; }) })),
    td(o.city), td(o.service), td(o.stage), td(o.payment_status), td(o.technician_id), td(o.address, "wrap"), td(readModelDate(o.created_at)));
}

async function showOrder(id) {
  const o = await api("GET", "/admin/orders/" + encodeURIComponent(id));
  selectedOrder = o;
  const p = $("#order-detail");
  p.hidden = false;
  $("#order-title").textContent = "Order " + o.id;
  const f = [["Stage", o.stage], ["Payment", o.payment_status], ["Price", (o.price_vnd || 0).toLocaleString("vi-VN") + " ₫"], ["City", o.city],
    ["Service", o.service], ["Customer", o.customer_id], ["Technician", o.technician_id || "—"], ["Address", o.address || "—"],
    ["Created", fmtTime(o.created_at)], ["Stage changed", fmtTime(o.stage_changed_at)]];
  $("#order-fields").replaceChildren(...f.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v, "data-field": k.toLowerCase() })]));
  fill($("#order-history tbody"), (o.transitions || []).map((t) => el("tr", {}, td(fmtTime(t.at)), td(t.from), td(t.to), td(t.actor), td(t.reason, "wrap"))));
  $("#mark-paid").hidden = o.payment_status === "paid" || o.payment_status === "refund_required" || o.payment_status === "refunded";
  applyPermissions(p);
  $("#trace-note").textContent = "";
  fill($("#order-trace tbody"), []);
  $("#order-trace").hidden = !me.can["orders.trace"];
  if (me.can["orders.trace"]) {
    try {
      const tr = await api("GET", "/admin/orders/" + encodeURIComponent(o.id) + "/dispatch-trace");
      const rows = (tr.offers || []).map((x) => el("tr", {}, td(x.round + "." + x.wave), td(x.technician_id), td((x.distance_m / 1000).toFixed(2) + " km"), td(x.state), td(fmtTime(x.sent_at))));
      $("#trace-note").textContent = (tr.waves || []).length + " wave(s), " + rows.length + " offer(s)";
      fill($("#order-trace tbody"), rows);
    } catch (e) { $("#trace-note").textContent = e.message; }
  } else {
    $("#trace-note").textContent = "Your role may not read dispatch traces.";
  }
  $("#order-title").scrollIntoView({ block: "nearest" });
  return o;
}

async function markPaid() {
  if (!selectedOrder) return;
  const reason = await confirmAction("Mark " + selectedOrder.id + " paid?", "Only when inside shows the payment completed (runbook INC-002 option B). This is audited.");
  if (reason === null) return;
  try {
    const r = await api("POST", "/admin/orders/" + encodeURIComponent(selectedOrder.id) + "/mark-paid", { reason });
    toast(r.changed ? "Order " + r.order.id + " marked paid" : "Order " + r.order.id + " was already paid");
    await showOrder(r.order.id);
  } catch (e) { toast(e.message, true); }
}

// ---------- events ----------
function eventFilter() {
  return { status: $("#events-status").value, event_type: $("#events-type").value, order_id: $("#events-order").value.trim() };
}

async function loadEvents() {
  const current = latest("events");
  const f = eventFilter();
  const q = new URLSearchParams({ limit: "200" });
  for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
  const d = await api("GET", "/admin/events?" + q);
  if (!current()) return;
  $("#events-empty").hidden = d.events.length > 0;
  $("#events-all").checked = false;
  fill($("#events-table tbody"), d.events.map((e) => el("tr", { "data-event": e.event_id },
    el("td", {}, el("input", { type: "checkbox", class: "event-pick", value: e.event_id, "aria-label": "Select event " + e.event_id })),
    td(e.event_id), td(e.event_type), td(e.order_id), td(e.status), td(e.attempts), td(e.last_error, "wrap"),
    el("td", {}, e.status === "processed" ? "" : el("button", { type: "button", class: "small", "data-perm": "events.replay", "aria-label": "Replay " + e.event_id, text: "Replay",
      onclick: () => replay([e.event_id]) })))));
  applyPermissions($("#events-table"));
}

async function replay(ids) {
  if (!ids.length) { toast("Select events to replay first.", true); return; }
  const reason = await confirmAction("Replay " + ids.length + " event(s)?", ids.join(", "));
  if (reason === null) return;
  let ok = 0;
  const failed = [];
  for (const id of ids) {
    try {
      await api("POST", "/admin/events/" + encodeURIComponent(id) + "/replay", { reason });
      ok++;
    } catch (e) { failed.push(id + ": " + e.message); }
  }
  toast("Replayed " + ok + " event(s)" + (failed.length ? "; failed " + failed.join("; ") : ""), failed.length > 0);
  await loadEvents();
}

async function replayAll() {
  const f = eventFilter();
  const what = [f.event_type || "every type", f.order_id ? "order " + f.order_id : "every order"].join(", ");
  const reason = await confirmAction("Replay every dead-lettered event?", "Matching: " + what + ".");
  if (reason === null) return;
  try {
    const r = await api("POST", "/admin/events/replay", { event_type: f.event_type, order_id: f.order_id, reason });
    toast("Replayed " + r.replayed + " event(s)");
    await loadEvents();
  } catch (e) { toast(e.message, true); }
}

async function loadBusDLQ() {
  const topic = $("#busdlq-topic").value;
  try {
    const d = await api("GET", "/admin/bus/dlq?max=100&topic=" + encodeURIComponent(topic));
    fill($("#busdlq-table tbody"), d.dead_letters.map((m) => el("tr", {}, td(m.partition + ":" + m.offset), td(m.group), td(m.reason, "wrap"),
      td((m.headers || {})["dlq.attempts"] || ""), td(m.key))));
  } catch (e) {
    fill($("#busdlq-table tbody"), [el("tr", {}, el("td", { colspan: 5, class: "muted", text: e.message }))]);
  }
}

async function replayBusDLQ() {
  const topic = $("#busdlq-topic").value;
  const reason = await confirmAction("Replay every dead letter of " + topic + "?", "They go back on their topic; consumers apply each event once.");
  if (reason === null) return;
  try {
    const r = await api("POST", "/admin/bus/dlq/replay", { topic, all: true, reason });
    toast("Replayed " + r.replayed + " message(s)");
    await loadBusDLQ();
  } catch (e) { toast(e.message, true); }
}

// ---------- flags and integrations ----------
function flagSwitch(f) {
  return el("button", { type: "button", class: "switch", role: "switch", "aria-checked": String(f.value), "data-flag": f.name, "data-perm": "flags.set",
    "aria-label": f.name, text: f.value ? "On" : "Off", onclick: () => toggleFlag(f) });
}

async function toggleFlag(f) {
  const to = !f.value;
  const reason = await confirmAction("Turn " + f.name + " " + (to ? "on" : "off") + "?", "This changes the platform's behaviour at once and is audited.");
  if (reason === null) return;
  try {
    await api("PUT", "/admin/flags/" + encodeURIComponent(f.name), { value: to, reason });
    toast(f.name + " is now " + (to ? "on" : "off"));
  } catch (e) { toast(e.message, true); }
  route();
}

async function loadFlags() {
  const d = await api("GET", "/admin/flags");
  fill($("#flags-table tbody"), d.flags.map((f) => el("tr", {}, el("th", { scope: "row", text: f.name }), el("td", {}, flagSwitch(f)))));
  applyPermissions($("#flags-table"));
}

async function loadIntegrations() {
  const [b, fl] = await Promise.all([api("GET", "/admin/circuit-breaker"), api("GET", "/admin/flags")]);
  fill($("#breakers-table tbody"), b.breakers.length ? b.breakers.map((x) => el("tr", { "data-service": x.service }, td(x.service), td(x.state, "state-" + x.state), td(x.failures), td(x.changed_at || ""),
    el("td", {}, el("button", { type: "button", class: "small", "data-perm": "breaker.half_open", "aria-label": "Force " + x.service + " half-open", text: "Force half-open",
      onclick: () => halfOpen(x.service) })))) : [el("tr", {}, el("td", { colspan: 5, class: "muted", text: "No integrations are configured in this process." }))]);
  const bypass = fl.flags.find((f) => f.name === "INTEGRATION_BYPASS_CIRCUIT");
  $("#bypass-flag").replaceChildren(...(bypass ? [el("span", { text: "INTEGRATION_BYPASS_CIRCUIT " }), flagSwitch(bypass)] : []));
  applyPermissions($("#view-integrations"));
}

async function halfOpen(service) {
  const reason = await confirmAction("Force " + service + " half-open?", "The next call probes " + service + ": success closes the breaker, failure opens it again.");
  if (reason === null) return;
  try {
    const s = await api("POST", "/admin/circuit-breaker/half-open", { service, reason });
    toast(service + " is " + s.state);
  } catch (e) { toast(e.message, true); }
  await loadIntegrations();
}

// ---------- status page ----------
async function loadStatus() {
  const p = await api("GET", "/admin/status");
  const sel = $("#status-component");
  if (!sel.options.length) sel.replaceChildren(...p.components.map((c) => el("option", { value: c.id, text: c.name })));
  fill($("#status-table tbody"), p.components.map((c) => el("tr", { "data-component": c.id }, el("th", { scope: "row", text: c.name }),
    el("td", {}, el("span", { class: "pill state-" + c.state, text: c.state })), td(c.source || ""),
    td(c.set ? c.set.state + (c.set.message ? ": " + c.set.message : "") + " (" + c.set.updated_by + ")" : "operational", "wrap"))));
  applyPermissions($("#view-status"));
}

async function setStatus(ev) {
  ev.preventDefault();
  const id = $("#status-component").value;
  const body = { state: $("#status-state").value, message: $("#status-message").value, reason: $("#status-reason").value };
  try {
    await api("PUT", "/admin/status/components/" + encodeURIComponent(id), body);
    toast(id + " set to " + body.state);
    $("#status-reason").value = "";
    await loadStatus();
  } catch (e) { toast(e.message, true); }
}

// ---------- onboarding ----------
// Each kind: its key, the list's columns and the create form's fields
// ([name, placeholder, type]; "number" and "list" are sent as such).
const KINDS = {
  cities: { key: "code", cols: ["code", "name", "lat", "lng", "status"],
    fields: [["code", "HCMC"], ["name", "Hồ Chí Minh"], ["lat", "10.78", "number"], ["lng", "106.70", "number"], ["radius_km", "15", "number"]] },
  services: { key: "code", cols: ["code", "name", "skill", "price_vnd", "commission_pct", "status"],
    fields: [["code", "aircon_repair"], ["name", "Sửa máy lạnh"], ["skill", "aircon_repair"], ["price_vnd", "350000", "number"], ["commission_pct", "15", "number"]] },
  partners: { key: "id", cols: ["id", "name", "country", "contact", "status"],
    fields: [["name", "Điện lạnh Sài Gòn"], ["country", "VN"], ["contact", "+842838000001"]] },
  technicians: { key: "id", cols: ["id", "name", "phone", "partner_id", "city", "skills", "status"],
    fields: [["partner_id", "P001"], ["name", "Nguyễn Văn An"], ["phone", "0901234567"], ["city", "HCMC"], ["skills", "aircon_repair, plumbing", "list"], ["lat", "10.78", "number"], ["lng", "106.70", "number"]] },
  customers: { key: "id", cols: ["id", "name", "phone", "status"], fields: [["name", "Trần Thị Bình"], ["phone", "0912345678"]] },
};
let onbNext = "";

function renderOnbForm() {
  const kind = $("#onb-kind").value;
  $("#onb-create-title").textContent = "Create (" + kind + ")";
  $("#onb-fields").replaceChildren(...KINDS[kind].fields.flatMap(([name, ph, type]) => [
    el("label", { for: "onb-f-" + name, text: name }),
    el("input", { id: "onb-f-" + name, name, placeholder: ph, "data-type": type, inputmode: type === "number" ? "decimal" : undefined }),
  ]));
  const cols = KINDS[kind].cols;
  $("#onb-table thead tr").replaceChildren(...cols.map((c) => el("th", { scope: "col", text: c })), el("th", { scope: "col", text: "" }));
  applyPermissions($("#onb-create"));
}

async function loadOnboarding(more) {
  const kind = $("#onb-kind").value;
  const q = new URLSearchParams({ limit: "50" });
  if ($("#onb-status").value) q.set("status", $("#onb-status").value);
  if (kind === "technicians" && $("#onb-city").value.trim()) q.set("city", $("#onb-city").value.trim());
  if (more && onbNext) q.set("after", onbNext);
  const d = await api("GET", "/admin/" + kind + "?" + q);
  const k = KINDS[kind];
  const rows = (d[kind] || []).map((r) => el("tr", {}, ...k.cols.map((c) => td(Array.isArray(r[c]) ? r[c].join(", ") : r[c])),
    el("td", {}, (r.status === "active")
      ? el("button", { type: "button", class: "secondary", "data-perm": "catalog.write", text: "Deactivate", onclick: () => deactivateRecord(kind, r[k.key]) })
      : null)));
  if (more) $("#onb-table tbody").append(...rows); else fill($("#onb-table tbody"), rows);
  onbNext = d.next || "";
  $("#onb-more").hidden = !onbNext;
  applyPermissions($("#onb-table"));
}

async function createRecord() {
  const kind = $("#onb-kind").value;
  const body = {};
  for (const inp of $("#onb-fields").querySelectorAll("input")) {
    const v = inp.value.trim();
    if (!v) continue;
    if (inp.dataset.type === "number") body[inp.name] = Number(v);
    else if (inp.dataset.type === "list") body[inp.name] = v.split(/[,|]/).map((x) => x.trim()).filter(Boolean);
    else body[inp.name] = v;
  }
  const r = await api("POST", "/admin/" + kind, body);
  toast("Created " + kind.replace(/s$/, "").replace(/ie$/, "y") + " " + r[KINDS[kind].key]);
  for (const inp of $("#onb-fields").querySelectorAll("input")) inp.value = "";
  await loadOnboarding(false);
}

async function deactivateRecord(kind, key) {
  const reason = await confirmAction("Deactivate " + key, "It stays on record but takes no new orders" + (kind === "technicians" ? " or offers (suspended)." : "."), true);
  if (reason === null) return;
  try {
    await api("POST", "/admin/" + kind + "/" + encodeURIComponent(key) + "/deactivate", { reason });
    toast(key + " deactivated");
    await loadOnboarding(false);
  } catch (e) { toast(e.message, true); }
}

// ---------- finance (wallets, reconciliation: INC-010) ----------
const vnd = (n) => (n === undefined || n === null ? "" : Number(n).toLocaleString("vi-VN"));

async function loadFinance() {
  const [p, runs] = await Promise.all([api("GET", "/admin/partners?limit=1000"), api("GET", "/admin/wallets/recon/runs?limit=30")]);
  fill($("#fin-wallets tbody"), (p.partners || []).map((x) => el("tr", { "data-partner": x.id }, td(x.id), td(x.name), td(x.status),
    td(vnd(x.balance_vnd), "num"), td(x.floor_vnd === null || x.floor_vnd === undefined ? "none" : vnd(x.floor_vnd), "num"),
    td(x.wallet_state, x.wallet_state === "below_floor" ? "bad" : ""))));
  const list = runs.runs || [];
  fill($("#fin-runs tbody"), list.map((r) => el("tr", { "data-run": r.id }, td(r.day), td(fmtTime(r.started_at)), td(r.trigger), td(r.status),
    td(r.verdict, r.verdict === "mismatch" ? "bad" : ""), td(r.partners), td(r.mismatches), td(r.inconclusive),
    td(r.max_diff_pct + " % / " + vnd(r.max_diff_vnd) + " VND"),
    el("td", {}, el("button", { type: "button", text: "Show", onclick: () => showRun(r.id).catch((e) => toast(e.message, true)) })))));
  if (list.length) await showRun(list[0].id);
  else { fill($("#fin-rows tbody"), []); fill($("#fin-adjustments tbody"), []); }
}

async function showRun(id) {
  const r = await api("GET", "/admin/wallets/recon/runs/" + encodeURIComponent(id));
  $("#fin-run-title").textContent = "Rows of the run of " + r.day + " (" + r.status + ", " + r.verdict + ")" + (r.error ? ": " + r.error : "");
  const rows = r.rows || [];
  fill($("#fin-rows tbody"), rows.map((w) => {
    const inc = w.verdict === "inconclusive";
    return el("tr", { "data-partner": w.partner_id }, td(w.partner_id), td(vnd(w.smp_balance), "num"), td(inc ? "" : vnd(w.gateway_balance), "num"),
      td(inc ? "" : vnd(w.diff_amount), "num"), td(inc ? "" : w.diff_pct), td(w.last_txn_id), td(w.verdict, w.verdict === "mismatch" ? "bad" : ""), td(w.note, "wrap"));
  }));
  const adj = [];
  for (const w of rows) for (const a of (w.detail && w.detail.adjustments) || []) {
    adj.push(el("tr", {}, td(w.partner_id), td(a.id), td(vnd(a.amount_vnd), "num"), td(a.reason, "wrap"), td(a.actor),
      td(a.expected_diff_vnd === null || a.expected_diff_vnd === undefined ? "none" : vnd(a.expected_diff_vnd), "num"), td(a.matched ? "yes" : "no")));
  }
  fill($("#fin-adjustments tbody"), adj);
}

async function runRecon(ev) {
  const day = $("#fin-date").value || "yesterday";
  const reason = await confirmAction("Run the reconciliation of " + day + " now?", "It asks VNPay for the day's records and may apply missed notifications. This is audited.", false);
  if (reason === null) return;
  const r = await api("POST", "/admin/wallets/recon/runs", { date: day, reason });
  toast("Reconciliation of " + r.day + ": " + r.status + ", " + r.verdict);
  await loadFinance();
}

// ---------- security (fraud alerts, decisions, wallet controls: INC-011) ----------
const list = (xs) => (xs || []).join(", ");

// secSection runs one part's load and shows its error in the part, not in
// a toast that fades: a 403 says which role the API wants.
async function secSection(errSel, fn) {
  $(errSel).textContent = "";
  try {
    await fn();
    return null;
  } catch (e) {
    $(errSel).textContent = (e.status === 403 ? "Refused (403): " : "") + e.message;
    return e;
  }
}

async function loadSecurity() {
  const refused = $("#sec-refused");
  const errs = await Promise.all([
    secSection("#sec-alerts-error", loadFraudAlerts),
    secSection("#sec-dec-error", loadDecisions),
    secSection("#sec-wallet-error", loadControls),
    secSection("#sec-reports-error", loadComplianceReports),
    secSection("#sec-held-error", loadHeldTopups),
  ]);
  const denied = errs.find((e) => e && e.status === 403);
  refused.hidden = !denied;
  refused.textContent = denied ? "The Security tab is for the security role (your role: " + me.role + "). The API refused: " + denied.message : "";
  applyPermissions($("#view-security"));
}

async function loadFraudAlerts() {
  const current = latest("fraud-alerts");
  const d = await api("GET", "/internal/fraud-alerts/recent?hours=" + encodeURIComponent($("#sec-hours").value));
  if (!current()) return;
  const rows = (d.alerts || []).map((a) => el("tr", { "data-partner": a.partner_id }, el("th", { scope: "row", text: a.partner_id }), td(fmtTime(a.last_at)),
    td(a.severity, a.severity === "high" ? "bad" : ""), td(a.outcome, a.outcome === "freeze" || a.outcome === "soft_block" ? "bad" : ""), td(a.score),
    td(list(a.signals), "wrap"), td(list(a.txn_ids), "wrap"),
    el("td", {}, el("button", { type: "button", class: "small secondary", text: "Decisions", "aria-label": "Show the decisions of " + a.partner_id,
      onclick: () => { $("#sec-dec-partner").value = a.partner_id; secSection("#sec-dec-error", loadDecisions); } }))));
  fill($("#sec-alerts tbody"), rows.length ? rows : [el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No partner flagged in the last " + d.hours + " hour(s)." }))]);
}

async function loadDecisions() {
  const current = latest("fraud-decisions");
  const q = new URLSearchParams({ limit: "100" });
  if ($("#sec-dec-partner").value.trim()) q.set("partner", $("#sec-dec-partner").value.trim());
  if ($("#sec-dec-flagged").checked) q.set("flagged", "true");
  const d = await api("GET", "/admin/fraud/decisions?" + q);
  if (!current()) return;
  const rows = [];
  for (const x of d.decisions || []) {
    const treeID = "tree-" + x.decision_id;
    const tree = el("tr", { id: treeID, class: "rule-tree", hidden: true }, el("td", { colspan: 10 }, ruleTree(x)));
    const toggle = el("button", { type: "button", class: "small secondary", text: "Rule tree", "aria-expanded": "false", "aria-controls": treeID,
      "aria-label": "Rule tree of " + x.decision_id });
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      tree.hidden = !open;
    });
    rows.push(el("tr", { "data-decision": x.decision_id }, el("th", { scope: "row", text: x.decision_id, class: "wrap" }), td(fmtTime(x.created_at)), td(x.partner_id),
      td(x.txn_id), td(vnd(x.amount_vnd), "num"), td(x.score), td(x.outcome, x.outcome === "freeze" || x.outcome === "soft_block" ? "bad" : ""),
      td(x.severity || "none"), td(list(x.signals) || "none", "wrap"), el("td", {}, toggle)), tree);
  }
  fill($("#sec-decisions tbody"), rows.length ? rows : [el("tr", {}, el("td", { colspan: 10, class: "muted", text: "No decisions match." }))]);
}

// ruleTree is one decision's evaluation: every rule with its verdict, the
// values it saw, and the evidence.
function ruleTree(x) {
  const values = (v) => Object.entries(v || {}).sort().map(([k, val]) => k + " = " + (typeof val === "object" ? JSON.stringify(val) : String(val))).join("; ");
  const rules = el("table", { class: "rules" }, el("caption", { text: "Rules of " + x.decision_id + " (score " + x.score + ", outcome " + x.outcome + ", rules version " + (x.rules_version || "?") + ")" }),
    el("thead", {}, el("tr", {}, ...["Rule", "Result", "Severity", "Outcome", "Score", "Expression", "Values it saw", "Why"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...(x.rules || []).map((r) => el("tr", { "data-rule": r.rule, "data-result": r.result },
      el("th", { scope: "row", text: r.rule }), td(r.result, r.result === "hit" ? "bad" : ""), td(r.severity), td(r.outcome), td(r.score),
      el("td", { class: "wrap" }, el("code", { text: r.when || "" })), td(values(r.values), "wrap"), td(r.reason, "wrap")))));
  const ev = x.evidence || {};
  const f = [["Transactions", list(ev.txn_ids)], ["IP addresses", list(ev.ips)], ["IP country", ev.ip_country], ["User agent", ev.user_agent],
    ["Device id", ev.device_id], ["Event", x.event_type + " " + x.event_id], ["Occurred", fmtTime(x.occurred_at)]];
  const evidence = el("dl", { class: "fields evidence" }, ...f.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v || "—", "data-field": k.toLowerCase() })]));
  return el("div", { class: "tree" }, el("div", { class: "table-wrap" }, rules), el("h4", { text: "Evidence" }), evidence);
}

async function loadControls() {
  const current = latest("controls");
  const [p, c] = await Promise.all([api("GET", "/admin/partners?limit=1000"), api("GET", "/admin/wallets/controls")]);
  if (!current()) return;
  const by = {};
  for (const x of c.controls || []) by[x.partner_id] = x;
  const partners = (p.partners || []).map((x) => ({ id: x.id, name: x.name }));
  for (const id of Object.keys(by)) if (!partners.some((x) => x.id === id)) partners.push({ id, name: "" });
  fill($("#sec-wallets tbody"), partners.map((x) => {
    const v = by[x.id] || { state: "open" };
    const ctl = v.control || {};
    const act = (label, perm, fn) => el("button", { type: "button", class: "small" + (label.startsWith("Lift") || label === "Unfreeze" ? " secondary" : ""),
      "data-perm": perm, "data-action": label.toLowerCase().replace(/ /g, "-"), "aria-label": label + " the wallet of " + x.id, text: label, onclick: () => fn(x.id) });
    return el("tr", { "data-partner": x.id }, el("th", { scope: "row", text: x.id }), td(x.name), td(v.state, v.state === "open" ? "" : "bad"),
      td(ctl.reason, "wrap"), td(ctl.actor), td(fmtTime(ctl.since)), td(fmtTime(ctl.until)),
      el("td", { class: "actions-cell" },
        v.state === "frozen" ? act("Unfreeze", "wallets.freeze", unfreezeWallet) : act("Freeze", "wallets.freeze", freezeWallet),
        v.state === "soft_blocked" ? act("Lift soft-block", "wallets.soft_block", liftSoftBlock)
          : (v.state === "frozen" ? null : act("Soft-block", "wallets.soft_block", softBlockWallet)),
        el("button", { type: "button", class: "small secondary", text: "Details", "aria-label": "Details of the wallet of " + x.id,
          onclick: () => secSection("#sec-wallet-error", () => showControl(x.id)) })));
  }));
  applyPermissions($("#sec-wallets"));
}

async function showControl(id) {
  const v = await api("GET", "/admin/partners/" + encodeURIComponent(id) + "/wallet/control");
  const ctl = v.control || {};
  $("#sec-control").hidden = false;
  $("#sec-control").dataset.partner = id;
  $("#sec-control-title").textContent = "Wallet of " + id + ": " + v.state;
  const f = [["State", v.state], ["Reason", ctl.reason], ["By", ctl.actor], ["Since", fmtTime(ctl.since)], ["Until", fmtTime(ctl.until)]];
  $("#sec-control-fields").replaceChildren(...f.flatMap(([k, val]) => [el("dt", { text: k }), el("dd", { text: val || "—", "data-field": k.toLowerCase() })]));
  const held = v.held_topups || [];
  fill($("#sec-held tbody"), held.length ? held.map((t) => el("tr", {}, td(t.txn_ref), td(vnd(t.amount_vnd), "num"), td(fmtTime(t.created_at))))
    : [el("tr", {}, el("td", { colspan: 3, class: "muted", text: "none" }))]);
  const notes = v.admin_users || [];
  fill($("#sec-notes tbody"), notes.length ? notes.map((u) => el("tr", {}, td(u.user_id + (u.name ? " (" + u.name + ")" : "")), td(u.notes, "wrap"), td(fmtTime(u.updated_at))))
    : [el("tr", {}, el("td", { colspan: 3, class: "muted", text: "none" }))]);
}

// control runs one wallet action after its confirmation, then shows the
// wallet again; the API's refusal stays on screen.
async function control(id, path, title, text, label) {
  const reason = await confirmAction(title, text, true, label);
  if (reason === null) return;
  const body = label === "Note" ? { note: reason } : { reason };
  $("#sec-wallet-error").textContent = "";
  try {
    const r = await api("POST", "/admin/partners/" + encodeURIComponent(id) + "/wallet/" + path, body);
    const state = r.control ? r.control.state : "";
    toast("Wallet of " + id + ": " + (r.changed ? r.previous + " → " + state : "already " + state) +
      (r.released && r.released.length ? "; released " + r.released.join(", ") : ""));
  } catch (e) {
    $("#sec-wallet-error").textContent = id + ": " + (e.status === 403 ? "Refused (403): " : "") + e.message;
  }
  await secSection("#sec-wallet-error", loadControls);
  await secSection("#sec-wallet-error", () => showControl(id));
  await secSection("#sec-held-error", loadHeldTopups); // an unfreeze releases held top-ups
}

const freezeWallet = (id) => control(id, "freeze", "Freeze the wallet of " + id + "?",
  "Top-ups are refused (one already paid is held) and so is every debit but SMP's commissions, until unfrozen.");
const unfreezeWallet = (id) => control(id, "unfreeze", "Unfreeze the wallet of " + id + "?",
  "Held top-ups are credited. The note is kept in the partner's admin users' notes.", "Note");
const softBlockWallet = (id) => control(id, "soft-block", "Soft-block the wallet of " + id + "?",
  "Operations are capped at 1,000,000 VND per rolling 24 hours for 48 hours, or until lifted.");
const liftSoftBlock = (id) => control(id, "lift-soft-block", "Lift the soft block of " + id + "?", "The wallet's operations are no longer capped.");

// ---------- held top-ups (issue 18: release or reverse, INC-011) ----------
async function loadHeldTopups() {
  const current = latest("held-topups");
  const partner = $("#sec-held-partner").value.trim();
  const d = await api("GET", "/admin/wallets/held" + (partner ? "?partner=" + encodeURIComponent(partner) : ""));
  if (!current()) return;
  const ts = d.held || [];
  fill($("#sec-held-topups tbody"), ts.length ? ts.map((t) => {
    const act = (label, fn) => el("button", { type: "button", class: "small" + (label === "Reverse" ? " secondary" : ""), "data-perm": "wallets.held",
      "data-action": label.toLowerCase(), "aria-label": label + " the held top-up " + t.txn_ref + " of " + t.partner_id, text: label, onclick: () => fn(t) });
    return el("tr", { "data-txn": t.txn_ref, "data-partner": t.partner_id, "data-status": t.status }, td(t.partner_id),
      el("th", { scope: "row", text: t.txn_ref, class: "wrap" }), td(vnd(t.amount_vnd), "num"), td(t.hold_reason || "—"),
      td(t.status, "bad"), td(fmtTime(t.updated_at || t.created_at)),
      td(t.refund_error ? t.refund_error + " (attempt " + t.refund_attempts + ")" : "", t.refund_error ? "bad wrap" : "wrap"),
      el("td", { class: "actions-cell" }, t.status === "held" ? act("Release", releaseHeld) : null, act("Reverse", reverseHeld)));
  }) : [el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No held top-ups" + (partner ? " of " + partner : "") + "." }))]);
  applyPermissions($("#sec-held-topups"));
}

// heldAction releases or reverses one held top-up after its confirmation;
// the API's refusal (403 naming the rule, 503 with VNPay's refund error)
// stays in the section; the list and the wallets are shown again.
async function heldAction(t, verb, title, text) {
  const reason = await confirmAction(title, text, true);
  if (reason === null) return;
  $("#sec-held-error").textContent = "";
  $("#sec-held-result").textContent = "";
  try {
    const r = await api("POST", "/admin/partners/" + encodeURIComponent(t.partner_id) + "/wallet/held/" + encodeURIComponent(t.txn_ref) + "/" + verb, { reason });
    const tp = r.topup || {};
    let msg = t.txn_ref + ": " + (r.changed ? "" : "already ") + tp.status;
    if (r.posting) msg += "; credited " + vnd(r.posting.amount_vnd) + " VND, balance of " + t.partner_id + " " + vnd(r.posting.balance_after_vnd) + " VND";
    if (verb === "reverse" && tp.refund_no) msg += "; VNPay refund " + tp.refund_no;
    $("#sec-held-result").textContent = msg;
    toast(msg);
  } catch (e) {
    $("#sec-held-error").textContent = t.txn_ref + ": " + (e.status === 403 ? "Refused (403): " : e.status === 503 ? "VNPay's refund failed (503): " : "") + e.message;
  }
  await secSection("#sec-wallet-error", loadControls);
  const panel = $("#sec-control");
  if (!panel.hidden && panel.dataset.partner === t.partner_id) await secSection("#sec-wallet-error", () => showControl(t.partner_id));
  await loadHeldTopups().catch((e) => { $("#sec-held-error").textContent += " " + e.message; });
}

const releaseHeld = (t) => heldAction(t, "release", "Release top-up " + t.txn_ref + " of " + t.partner_id + "?",
  vnd(t.amount_vnd) + " VND is credited to the wallet, if the ledger allows it now (held by " + (t.hold_reason || "?") + "). This is audited.");
const reverseHeld = (t) => heldAction(t, "reverse", "Reverse top-up " + t.txn_ref + " of " + t.partner_id + "?",
  vnd(t.amount_vnd) + " VND is refunded to its payer through VNPay's refund API. This is audited.");

async function loadComplianceReports() {
  const current = latest("reports");
  const d = await api("GET", "/admin/compliance/reports?limit=200");
  if (!current()) return;
  const rs = d.reports || [];
  fill($("#sec-reports tbody"), rs.length ? rs.map((r) => el("tr", { "data-report": r.id }, td(r.id, "wrap"), td(r.partner_id), td(r.posting_id, "wrap"),
    td(vnd(r.amount_vnd), "num"), td(vnd(r.threshold_vnd), "num"), td(r.status), td(fmtTime(r.created_at))))
    : [el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No large-value reports (threshold " + vnd(d.threshold_vnd) + " VND)." }))]);
}

// ---------- audit ----------
async function loadAudit() {
  const q = new URLSearchParams({ limit: "200" });
  if ($("#audit-action").value.trim()) q.set("action", $("#audit-action").value.trim());
  if ($("#audit-target").value.trim()) q.set("target", $("#audit-target").value.trim());
  const d = await api("GET", "/admin/audit?" + q);
  fill($("#audit-table tbody"), (d.entries || d.audit || []).map((a) => el("tr", {}, td(fmtTime(a.at)), td(a.actor), td(a.role), td(a.action), td(a.target, "wrap"),
    td(a.before, "wrap"), td(a.after, "wrap"), td(a.reason, "wrap"))));
}

// ---------- wiring ----------
function onSubmit(sel, fn) {
  $(sel).addEventListener("submit", (ev) => { ev.preventDefault(); fn(ev).catch((e) => toast(e.message, true)); });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const st of STAGES) $("#orders-stage").append(el("option", { value: st, text: st }));
  $("#login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("#login-error").textContent = "";
    try {
      await login($("#login-token").value.trim());
    } catch (e) {
      $("#login-error").textContent = e.status === 401 || e.status === 403 ? "That token is not valid for the admin portal." : e.message;
      $("#login-token").select(); // typing again replaces it
    }
  });
  $("#logout").addEventListener("click", () => logout());
  window.addEventListener("hashchange", route);
  onSubmit("#stuck-form", loadStuck);
  $("#assign-form").addEventListener("submit", assign);
  onSubmit("#orders-form", loadOrders);
  onSubmit("#order-open-form", openOrder);
  $("#mark-paid").addEventListener("click", markPaid);
  onSubmit("#events-form", loadEvents);
  $("#events-all").addEventListener("change", (ev) => { for (const c of document.querySelectorAll(".event-pick")) c.checked = ev.target.checked; });
  $("#replay-selected").addEventListener("click", () => replay([...document.querySelectorAll(".event-pick:checked")].map((c) => c.value)));
  $("#replay-all").addEventListener("click", replayAll);
  onSubmit("#busdlq-form", loadBusDLQ);
  $("#busdlq-replay").addEventListener("click", replayBusDLQ);
  $("#status-form").addEventListener("submit", setStatus);
  onSubmit("#audit-form", loadAudit);
  onSubmit("#fin-run-form", runRecon);
  onSubmit("#sec-alerts-form", () => secSection("#sec-alerts-error", loadFraudAlerts));
  onSubmit("#sec-dec-form", () => secSection("#sec-dec-error", loadDecisions));
  onSubmit("#sec-held-form", () => secSection("#sec-held-error", loadHeldTopups));
  onSubmit("#onb-form", () => loadOnboarding(false));
  onSubmit("#onb-create", createRecord);
  $("#onb-kind").addEventListener("change", () => { renderOnbForm(); loadOnboarding(false).catch((e) => toast(e.message, true)); });
  $("#onb-more").addEventListener("click", () => loadOnboarding(true).catch((e) => toast(e.message, true)));
  renderOnbForm();
  $("#login-error").textContent = sessionStorage.getItem("smp-login-message") || "";
  sessionStorage.removeItem("smp-login-message");
  if (token()) {
    login(token()).catch(() => { sessionStorage.removeItem("smp-admin-token"); $("#login-token").focus(); });
  } else {
    $("#login-token").focus();
  }
});
