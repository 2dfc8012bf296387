// The operator console: polls the JSON API beside this file and redraws each panel.
"use strict";

const FAST_MS = 1500;
const SLOW_MS = 5000;
const TERMINAL = ["DELIVERED", "CANCELLED", "COMPENSATION_FAILED"];
const SVG = "http://www.w3.org/2000/svg";

let selected = null;
let selectedTerminal = false;
const lettersShown = new Map(); // DLQ -> message count when its letters were read

// el("td", {class: "num"}, "3", child...): an element with attributes and children.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fill(id, ...children) {
  document.getElementById(id).replaceChildren(...children.flat());
}

function pill(status, prefix = "s") {
  return el("span", { class: `pill ${prefix}-${status}` }, status.replace("_", " "));
}

async function getJSON(path, init) {
  const r = await fetch(path, Object.assign({ cache: "no-store" }, init));
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${path}: HTTP ${r.status}`);
  return body;
}

function ago(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso || "";
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return new Date(t).toLocaleString();
}

function clock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(11, 23);
}

function money(total) {
  if (!total) return "";
  const [amount, currency] = total;
  return `${(amount / 100).toFixed(2)} ${currency}`;
}

function ms(n) {
  if (n < 1000) return `${Math.round(n)} ms`;
  return `${(n / 1000).toFixed(n < 10000 ? 2 : 1)} s`;
}

function number(v) {
  if (Math.abs(v) >= 1000) return v.toLocaleString(undefined, { maximumFractionDigits: 0 });
  return String(Math.round(v * 100) / 100);
}

// --- orders: funnel and list ---

function renderFunnel(stages, total) {
  document.getElementById("order-total").textContent = `${total} order${total === 1 ? "" : "s"}`;
  const max = Math.max(1, ...stages.map((s) => s.reached));
  const rows = [];
  stages.forEach((s, i) => {
    if (!s.forward && stages[i - 1] && stages[i - 1].forward) rows.push(el("div", { class: "sep" }));
    const fillBar = el("div", { class: `fill s-${s.status}`, style: `width:${(100 * s.reached) / max}%` });
    const nowBar = el("div", { class: "now", style: `width:${(100 * s.now) / max}%` });
    rows.push(
      el("div", { class: "label" }, pill(s.status)),
      el("div", { class: "track", title: `${s.reached} reached, ${s.now} there now` }, fillBar, nowBar),
      el("div", { class: "count stage", "data-stage": s.status, "data-reached": s.reached, "data-now": s.now },
        el("b", {}, s.reached), ` reached · ${s.now} now`),
    );
  });
  fill("funnel", rows);
}

function renderOrders(orders) {
  if (!orders.length) {
    fill("orders", el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No orders yet.")));
    return;
  }
  fill("orders", orders.map((o) =>
    el("tr", {
      class: `pick${o.orderId === selected ? " selected" : ""}`,
      "data-order": o.orderId,
      onclick: () => select(o.orderId),
    },
    el("td", { class: "id" }, el("code", { title: o.orderId }, o.orderId)),
    el("td", {}, pill(o.status)),
    el("td", {}, o.customerId),
    el("td", {}, o.restaurantId),
    el("td", { class: "num" }, money(o.total)),
    el("td", { class: "when", title: o.createdAt }, ago(o.createdAt)),
    el("td", { class: "when", title: o.updatedAt }, ago(o.updatedAt)))));
}

async function refreshOrders() {
  const r = await getJSON("api/orders");
  renderFunnel(r.funnel, r.total);
  renderOrders(r.orders);
  if (!selected && r.orders.length) select(r.orders[0].orderId);
}

// --- one order: timeline and trace waterfall ---

function select(id) {
  selected = id;
  selectedTerminal = false;
  for (const tr of document.querySelectorAll("#orders tr[data-order]")) {
    tr.classList.toggle("selected", tr.dataset.order === id);
  }
  refreshDetail().catch(showError);
}

function renderTimeline(order) {
  fill("detail-id", order.orderId);
  fill("detail-status", pill(order.status));
  fill("timeline", order.timeline.map((e) =>
    el("li", {},
      el("span", { class: "at", title: e.at }, clock(e.at)),
      el("span", {}, pill(e.status)),
      el("span", {}, e.cause, e.detail ? el("small", {}, ` — ${e.detail}`) : null))));
}

const FUNCTIONS = ["OrderApiFunction", "OrderSagaFunction", "InventoryFunction",
  "PaymentFunction", "DeliveryFunction", "NotificationFunction"];

// A span's function as the template names it: recorded spans carry the deployed name.
function templateFunction(name) {
  return FUNCTIONS.find((f) => (name || "").includes(f)) || name || "?";
}

// What a span handled: a message's type beside the span's own name.
function label(s) {
  const type = (s.attributes || {}).messageType;
  return type ? `${s.name} ${type}` : s.name;
}

function renderWaterfall(trace) {
  const spans = trace.spans;
  document.getElementById("trace-source").textContent = trace.source === "timeline"
    ? "derived from the order's timeline (no span store yet)"
    : trace.source;
  if (!spans.length) {
    fill("waterfall", el("p", { class: "empty" }, "No spans."));
    return;
  }
  const t = (s) => Date.parse(s);
  const start = Math.min(...spans.map((s) => t(s.start)));
  const end = Math.max(...spans.map((s) => t(s.end)));
  const width = Math.max(1, end - start);
  // Tree order: each span under its parent, siblings by start.
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map();
  for (const s of [...spans].sort((a, b) => t(a.start) - t(b.start))) {
    const parent = ids.has(s.parentSpanId) ? s.parentSpanId : "";
    children.set(parent, [...(children.get(parent) || []), s]);
  }
  const ordered = [];
  const walk = (parent, depth) => {
    for (const s of children.get(parent) || []) {
      ordered.push([s, depth]);
      walk(s.spanId, depth + 1);
    }
  };
  walk("", 0);
  const rows = ordered.map(([s, depth]) => {
    const left = (100 * (t(s.start) - start)) / width;
    const w = (100 * (t(s.end) - t(s.start))) / width;
    const dur = t(s.end) - t(s.start);
    const fn = templateFunction(s.function);
    const title = [`${s.name} (${s.function})`, ms(dur),
      ...Object.entries(s.attributes || {}).map(([k, v]) => `${k}: ${v}`)].join("\n");
    return el("div", { class: "row", title, "data-span": s.spanId },
      el("div", { class: "name", style: `padding-left:${8 * Math.min(depth, 8)}px` },
        label(s), el("small", {}, `${fn.replace("Function", "")} · ${ms(dur)}`)),
      el("div", { class: "lane" },
        el("div", {
          class: `span ${s.parentSpanId ? `f-${fn}` : "root"}`,
          style: `left:${left}%;width:${w}%`,
        })));
  });
  rows.push(el("div", { class: "axis" }, el("span"), el("div", {}, el("span", {}, "0"), el("span", {}, ms(width / 2)), el("span", {}, ms(width)))));
  fill("waterfall", rows);
}

async function refreshDetail() {
  if (!selected || selectedTerminal) return;
  const id = selected;
  const [order, trace] = await Promise.all([
    getJSON(`api/orders/${encodeURIComponent(id)}`),
    getJSON(`api/orders/${encodeURIComponent(id)}/trace`),
  ]);
  if (id !== selected) return;
  renderTimeline(order);
  renderWaterfall(trace);
  // A terminal order changes no more: stop polling it.
  selectedTerminal = TERMINAL.includes(order.status);
}

// --- queues, dead letters, redrive ---

function count(n, hot) {
  return el("td", { class: `num ${n === 0 ? "zero" : hot ? "hot" : ""}` }, n);
}

function renderQueues(queues) {
  fill("queues", queues.map((q) =>
    el("tr", { "data-queue": q.logicalId, title: q.error || "" },
      el("td", {}, q.logicalId), count(q.visible), count(q.inFlight), count(q.delayed))));
}

function lettersRow(dlq, letters) {
  const head = el("tr", {}, ["Message", "Type", "Order", "Reason", "Code", "Redrives", ""].map((h) => el("th", {}, h)));
  const rows = letters.map((m) =>
    el("tr", {},
      el("td", {}, el("code", {}, m.messageId.slice(0, 8))),
      el("td", {}, m.type || "?"),
      el("td", {}, m.orderId ? el("code", {}, m.orderId) : ""),
      el("td", { class: "reason" }, m.reason || "(none recorded)"),
      el("td", {}, m.code || ""),
      el("td", { class: "num" }, m.redrives),
      el("td", {}, dlq.redrivable ? el("button", { onclick: () => redrive(dlq.logicalId, { ids: [m.messageId] }) }, "Redrive") : "")));
  return el("tr", { class: "letters", "data-letters": dlq.logicalId },
    el("td", { colspan: 5 }, el("table", {}, head, rows)));
}

async function renderDlqs(dlqs) {
  const rows = [];
  for (const d of dlqs) {
    rows.push(el("tr", { "data-dlq": d.logicalId, title: d.error || "" },
      el("td", {}, el("b", {}, d.logicalId)),
      el("td", { class: "note" }, d.source),
      count(d.count, true),
      count(d.inFlight),
      el("td", { class: "num" }, d.redrivable
        ? el("button", { disabled: d.count === 0, onclick: () => redrive(d.logicalId, { all: true }) }, "Redrive all")
        : el("small", {}, "stream failures"))));
    if (d.count > 0) {
      // Reading parks the messages for a moment: only when the count moved.
      let letters = lettersShown.get(d.logicalId);
      if (!letters || letters.count !== d.count) {
        const r = await getJSON(`api/dlqs/${d.logicalId}/messages`).catch(() => ({ messages: [] }));
        letters = { count: d.count, messages: r.messages };
        lettersShown.set(d.logicalId, letters);
      }
      if (letters.messages.length) rows.push(lettersRow(d, letters.messages));
    } else {
      lettersShown.delete(d.logicalId);
    }
  }
  fill("dlqs", rows);
}

async function refreshQueues() {
  const r = await getJSON("api/queues");
  renderQueues(r.queues);
  await renderDlqs(r.dlqs);
}

async function redrive(dlq, which) {
  const note = document.getElementById("redrive-result");
  const what = which.all ? "every message" : `message ${which.ids.join(", ")}`;
  if (!window.confirm(`Redrive ${what} of ${dlq} to its source queue?`)) return;
  try {
    const r = await getJSON(`api/dlqs/${dlq}/redrive`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-dishpatch-console": "redrive" },
      body: JSON.stringify(which),
    });
    note.textContent = `${dlq}: ${r.moved.length} moved back` +
      (r.skipped.length ? `, ${r.skipped.length} left (${r.skipped.map((s) => s.why).join("; ")})` : "");
  } catch (e) {
    note.textContent = `${dlq}: redrive refused: ${e.message}`;
  }
  lettersShown.delete(dlq);
  refreshQueues().catch(showError);
}

// --- breaker ---

async function refreshBreaker() {
  const r = await getJSON("api/breaker");
  const hours = r.windowSecs / 3600;
  if (!r.providers.length) {
    fill("breaker", el("div", { class: "provider", "data-provider": "psp", "data-state": "CLOSED" },
      "psp", pill("CLOSED", "b"), el("div", { class: "note" }, `no transition in the last ${hours} h`)));
    return;
  }
  fill("breaker", r.providers.map((p) =>
    el("div", { class: "provider", "data-provider": p.provider, "data-state": p.state },
      p.provider, pill(p.state, "b"),
      el("div", { class: "note" },
        p.sinceMs ? `since ${new Date(p.sinceMs).toLocaleTimeString()} · ` : "",
        `${p.transitions} transition${p.transitions === 1 ? "" : "s"} in ${hours} h`))));
}

// --- metrics: one sparkline per series ---

function sparkline(points, stat, periodMs, windowMs) {
  const now = Date.now();
  const first = Math.floor((now - windowMs) / periodMs) * periodMs;
  const byBucket = new Map(points.map(([t, v]) => [Math.floor(t / periodMs) * periodMs, v]));
  const values = [];
  for (let t = first; t <= now; t += periodMs) {
    // A count is zero in a period without data; other statistics have no value there.
    values.push(byBucket.has(t) ? byBucket.get(t) : stat === "Sum" ? 0 : null);
  }
  const w = 200;
  const h = 36;
  const known = values.filter((v) => v !== null);
  const max = Math.max(1e-9, ...known);
  const min = Math.min(0, ...known);
  const x = (i) => (w * i) / Math.max(1, values.length - 1);
  const y = (v) => h - 2 - ((h - 4) * (v - min)) / (max - min || 1);
  const pts = values.map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "none");
  if (pts.length) {
    const area = document.createElementNS(SVG, "polygon");
    const firstX = pts[0].split(",")[0];
    const lastX = pts[pts.length - 1].split(",")[0];
    area.setAttribute("points", `${firstX},${h} ${pts.join(" ")} ${lastX},${h}`);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.append(area, line);
  }
  if (stat !== "Sum") {
    // Gauges and averages have gaps: each known value is marked, lone ones included.
    values.forEach((v, i) => {
      if (v === null) return;
      const dot = document.createElementNS(SVG, "circle");
      dot.setAttribute("cx", x(i).toFixed(1));
      dot.setAttribute("cy", y(v).toFixed(1));
      dot.setAttribute("r", "2.2");
      svg.append(dot);
    });
  }
  return svg;
}

async function refreshMetrics() {
  const r = await getJSON("api/metrics");
  document.getElementById("metrics-window").textContent =
    `namespace dishpatch · last ${r.windowSecs / 60} min · ${r.periodSecs} s periods`;
  if (!r.series.length) {
    fill("metrics", el("p", { class: "empty" }, "No metric has data yet."));
  } else {
    fill("metrics", r.series.map((s) => {
      const dims = Object.entries(s.dimensions).map(([k, v]) => `${k}=${v}`).join(" ");
      const values = s.points.map((p) => p[1]);
      const shown = s.stat === "Sum" ? values.reduce((a, b) => a + b, 0) : values[values.length - 1] || 0;
      const unit = s.unit === "Milliseconds" ? "ms" : "";
      const label = s.stat === "Sum" ? "in window" : s.stat === "Average" ? "avg, latest" : "latest";
      return el("div", { class: "metric", "data-metric": s.name, title: s.help },
        el("div", { class: "title" }, s.name),
        el("div", { class: "dims" }, dims),
        el("div", { class: "value" }, number(shown), el("small", {}, ` ${unit} ${label}`)),
        sparkline(s.points, s.stat, r.periodSecs * 1000, r.windowSecs * 1000));
    }));
  }
  document.getElementById("metrics-waiting").textContent = r.waiting.length
    ? `No data yet: ${r.waiting.join(", ")}.` : "";
}

// --- polling ---

function showError(e) {
  const live = document.getElementById("live");
  live.className = "live off";
  live.textContent = `error: ${e.message}`;
}

function every(periodMs, refresh) {
  const run = async () => {
    try {
      await refresh();
      const live = document.getElementById("live");
      live.className = "live on";
      live.textContent = `live · ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      showError(e);
    }
    setTimeout(run, periodMs);
  };
  run();
}

async function refreshStack() {
  const r = await getJSON("api/stack");
  document.getElementById("stack").textContent = `stack ${r.prefix}`;
}

refreshStack().catch(showError);
every(FAST_MS, refreshOrders);
every(FAST_MS, refreshDetail);
every(FAST_MS, refreshQueues);
every(SLOW_MS, refreshBreaker);
every(SLOW_MS, refreshMetrics);
