// lookaside status page: live data from /api/events (server-sent events, one per second),
// falling back to polling /api/state every second where EventSource is missing.
"use strict";

const STATE_WORDS = { serving: "serving", ejected: "ejected", down: "down", draining: "draining" };
const seen = new Set();  // backend ids already shown, to flash newcomers
let lastUpdate = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function sparkline(values) {
  const width = 160, height = 28, pad = 2;
  const chart = svg("svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
                             role: "img", "aria-label": "load over the last minute" });
  if (values.length < 2) return chart;
  const top = Math.max(1, ...values);
  const slots = Math.max(values.length, 20);  // a young backend's line still reads as a line
  const step = (width - 2 * pad) / (slots - 1);
  const x0 = width - pad - step * (values.length - 1);
  const points = values.map((v, i) => [x0 + i * step, height - pad - (v / top) * (height - 2 * pad)]);
  const line = points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
  const area = `${line}L${points[points.length - 1][0].toFixed(1)},${height - pad}L${x0.toFixed(1)},${height - pad}Z`;
  chart.append(svg("path", { class: "area", d: area }), svg("path", { class: "line", d: line }));
  return chart;
}

function age(seconds) {
  if (seconds < 1) return "just now";
  if (seconds < 60) return `${seconds.toFixed(1)} s ago`;
  return `${Math.floor(seconds / 60)} min ago`;
}

function backendRow(b) {
  const fill = Math.min(1, b.load);
  const meter = el("span", { class: `meter${b.load >= 1 ? " full" : b.load >= 0.75 ? " hot" : ""}` },
                   el("span", { style: `width:${(fill * 100).toFixed(0)}%` }));
  const row = el("tr", { "data-backend-id": b.id, "data-state": b.state },
    el("td", { class: "id", text: b.id }),
    el("td", { class: "address", text: b.address }),
    el("td", { class: "state-cell" }, el("span", { class: `state state-${b.state}`, text: STATE_WORDS[b.state] || b.state })),
    el("td", { class: "num load-cell", "data-label": "load" }, el("span", { class: "load" }, meter, b.load.toFixed(2))),
    el("td", { class: "spark-cell" }, sparkline(b.load_history)),
    el("td", { class: "num", "data-label": "picks/s", text: b.picks_per_second.toFixed(1) }),
    el("td", { class: "num", "data-label": "picks", text: b.picks.toLocaleString() }),
    el("td", { class: `num age${b.report_age_seconds > 3 ? " stale" : ""}`, "data-label": "report",
               text: age(b.report_age_seconds) }));
  if (!seen.has(b.id)) { row.classList.add("fresh"); seen.add(b.id); }
  return row;
}

function render(state) {
  lastUpdate = Date.now();
  document.getElementById("lb-address").textContent = state.lb.address || "";
  const t = state.totals;
  document.getElementById("total-services").textContent = t.services;
  document.getElementById("total-backends").textContent = t.backends;
  document.getElementById("total-serving").textContent = t.serving;
  const unhealthy = t.ejected + t.down + t.draining;
  const bad = document.getElementById("total-unhealthy");
  bad.textContent = unhealthy;
  bad.classList.toggle("some", unhealthy > 0);
  document.getElementById("total-pps").textContent = t.picks_per_second.toFixed(1);

  const template = document.getElementById("service-template");
  const list = document.getElementById("services");
  const sections = state.services.map((service) => {
    const section = template.content.firstElementChild.cloneNode(true);
    section.dataset.service = service.name;
    section.querySelector(".service-name").textContent = service.name;
    section.querySelector(".policy").textContent = service.policy;
    const n = service.backends.length;
    section.querySelector(".count").textContent = `${n} backend${n === 1 ? "" : "s"}`;
    section.querySelector("tbody").append(...service.backends.map(backendRow));
    return section;
  });
  list.replaceChildren(...sections);
  document.getElementById("empty").hidden = sections.length > 0;
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function setLive(mode, words) {
  const live = document.getElementById("live");
  live.dataset.live = mode;
  document.getElementById("live-text").textContent = words;
}

function poll() {
  fetch("/api/state", { cache: "no-store" })
    .then((r) => r.json())
    .then((state) => { render(state); setLive("live", "live (polling)"); })
    .catch(() => setLive("lost", "LB unreachable, retrying"))
    .finally(() => setTimeout(poll, 1000));
}

function listen() {
  const events = new EventSource("/api/events");
  events.onmessage = (message) => { render(JSON.parse(message.data)); setLive("live", "live"); };
  events.onerror = () => setLive("lost", "LB unreachable, reconnecting");
}

setInterval(() => {
  if (lastUpdate && Date.now() - lastUpdate > 3000) setLive("lost", "no update for a while");
}, 1000);

if ("EventSource" in window) listen(); else poll();
