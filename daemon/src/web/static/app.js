// The stockd web view: renders the JSON API. Every string from the server
// (investor names are plugin-controlled) goes into the page as text nodes,
// never as markup.
"use strict";

const main = document.getElementById("main");
const statusLine = document.getElementById("status");

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function money(x) {
  return x === null || x === undefined || !Number.isFinite(x)
    ? "n/a"
    : x.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function percent(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? "n/a" : (x * 100).toFixed(2) + " %";
}

function signed(x) {
  return el("td", { class: "num " + (x > 0 ? "up" : x < 0 ? "down" : "") }, money(x));
}

async function getJson(url) {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function line(points, width, height, pad) {
  const values = points.map((p) => p[1]);
  const min = Math.min(...values), max = Math.max(...values);
  const span = max - min || 1;
  const n = Math.max(points.length - 1, 1);
  return points.map((p, i) => [pad + (i / n) * (width - 2 * pad), height - pad - ((p[1] - min) / span) * (height - 2 * pad)]);
}

function sparkline(values) {
  const chart = svg("svg", { class: "spark", viewBox: "0 0 120 24" });
  if (values.length > 1) {
    const xy = line(values.map((v, i) => [i, v]), 120, 24, 2);
    chart.append(svg("polyline", { points: xy.map((p) => p.join(",")).join(" "), fill: "none", stroke: "#3867d6" }));
  }
  return chart;
}

let events = null;
function onEvents(name, handler) {
  if (!events) {
    events = new EventSource("/api/events");
    events.onopen = () => { statusLine.textContent = "live"; };
    events.onerror = () => { statusLine.textContent = "reconnecting…"; };
  }
  events.addEventListener(name, handler);
}

// Portfolios: the server pages, sorts and filters; a live event reloads the page shown.
function portfoliosPage() {
  const state = { sort: "portfolio", order: "asc", filter: "", offset: 0, limit: 50 };
  const columns = [
    ["portfolio", "Portfolio"], ["investor", "Investor"], ["nav", "NAV"],
    ["nav_change", "NAV_Change"], ["nav_change_pct", "NAV_Change_%"],
  ];
  const filter = el("input", { id: "filter", placeholder: "filter: investor name or N.P", size: 30 });
  const movers = el("button", { id: "movers" }, "Top movers");
  const prev = el("button", { id: "prev" }, "‹ previous");
  const next = el("button", { id: "next" }, "next ›");
  const info = el("span", { id: "page-info" });
  const table = el("table", { id: "portfolios" });
  main.replaceChildren(el("div", { class: "controls" }, filter, movers, prev, next, info), table);

  async function load() {
    const query = new URLSearchParams({ ...state, offset: String(state.offset), limit: String(state.limit) });
    let page;
    try {
      page = await getJson("/api/portfolios?" + query);
    } catch (error) {
      table.replaceChildren(el("tr", {}, el("td", { class: "error" }, error.message)));
      return;
    }
    const head = el("tr", {}, ...columns.map(([key, label]) =>
      el("th", { "data-sort": key, onclick: () => sortBy(key) }, label + (state.sort === key ? (state.order === "asc" ? " ▲" : " ▼") : ""))),
      el("th", {}, "Last valued"), el("th", {}, "Recent NAVs"));
    const rows = page.rows.map((row) => el("tr", { "data-portfolio": row.portfolio },
      el("td", {}, el("a", { href: "/portfolio/" + encodeURIComponent(row.portfolio) }, row.portfolio)),
      el("td", { class: "investor" }, row.investor),
      el("td", { class: "num nav" }, money(row.nav)),
      signed(row.nav_change), signed(row.nav_change_pct),
      el("td", { class: "timestamp" }, row.timestamp),
      el("td", {}, sparkline(row.spark))));
    table.replaceChildren(head, ...rows);
    const last = Math.min(page.offset + page.rows.length, page.total);
    info.textContent = page.total === 0 ? "no valuations yet" : `${page.offset + 1}–${last} of ${page.total}`;
    prev.disabled = state.offset === 0;
    next.disabled = last >= page.total;
  }
  function sortBy(key) {
    state.order = state.sort === key && state.order === "asc" ? "desc" : "asc";
    state.sort = key;
    state.offset = 0;
    load();
  }
  filter.addEventListener("input", () => { state.filter = filter.value; state.offset = 0; load(); });
  movers.addEventListener("click", () => { state.sort = "movers"; state.order = "desc"; state.offset = 0; load(); });
  prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); load(); });
  next.addEventListener("click", () => { state.offset += state.limit; load(); });
  // At most one fetch a second, however often valuations arrive.
  let scheduled = false;
  onEvents("valuations", () => {
    if (!scheduled) {
      scheduled = true;
      setTimeout(() => { scheduled = false; load(); }, 1000);
    }
  });
  load();
}

// Seconds since the epoch of a "YYYY-MM-DD HH:MM:SS" UTC timestamp.
function epoch(timestamp) {
  return Date.parse(timestamp.replace(" ", "T") + "Z") / 1000;
}

// About `count` round values spanning [min, max]: steps of 1, 2 or 5 × 10^k.
function ticks(min, max, count) {
  if (max === min) return [min];
  const raw = (max - min) / count;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const values = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) values.push(v);
  return values;
}

// Seconds since the epoch as "HH:MM:SS", or "MM-DD HH:MM" over more than a day.
function clock(seconds, long) {
  const text = new Date(seconds * 1000).toISOString();
  return long ? text.slice(5, 10) + " " + text.slice(11, 16) : text.slice(11, 19);
}

// The NAV over time: a time axis, a NAV axis, the line (with a dot per row
// when there are few), and the row under the pointer written into `hover`.
function historyChart(rows, hover) {
  const [width, height, left, right, top, bottom] = [800, 300, 100, 20, 12, 34];
  const chart = svg("svg", { class: "chart", id: "chart", viewBox: `0 0 ${width} ${height}` });
  if (rows.length === 0) return chart;
  const times = rows.map((row) => epoch(row.timestamp));
  const navs = rows.map((row) => row.nav);
  const range = (values) => values.reduce(([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)], [Infinity, -Infinity]);
  let [t0, t1] = range(times);
  let [y0, y1] = range(navs);
  const single = t0 === t1 ? [t0] : null;
  if (single) { t0 -= 10; t1 += 10; }
  if (y0 === y1) { const pad = Math.abs(y0) * 0.01 || 1; y0 -= pad; y1 += pad; }
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (v) => height - bottom - ((v - y0) / (y1 - y0)) * (height - top - bottom);
  const axisY = svg("g", { id: "axis-nav", class: "axis" });
  for (const value of ticks(y0, y1, 5)) {
    axisY.append(svg("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }));
    const label = svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", class: "tick" });
    label.textContent = money(value);
    axisY.append(label);
  }
  const axisT = svg("g", { id: "axis-time", class: "axis" });
  const long = t1 - t0 > 86400;
  // Up to five whole-second times, first and last included, no repeats.
  const stops = single || [...new Set([0, 1, 2, 3, 4].map((i) => Math.round(t0 + ((t1 - t0) * i) / 4)))];
  for (const [i, t] of stops.entries()) {
    axisT.append(svg("line", { x1: x(t), x2: x(t), y1: height - bottom, y2: height - bottom + 5, class: "grid" }));
    const label = svg("text", { x: x(t), y: height - bottom + 18, "text-anchor": single ? "middle" : i === 0 ? "start" : i === stops.length - 1 ? "end" : "middle", class: "tick" });
    label.textContent = clock(t, long);
    axisT.append(label);
  }
  const frame = svg("polyline", { points: `${left},${top} ${left},${height - bottom} ${width - right},${height - bottom}`, fill: "none", class: "frame" });
  const xy = times.map((t, i) => [x(t), y(navs[i])]);
  chart.append(axisY, axisT, frame,
    svg("polyline", { points: xy.map((p) => p.join(",")).join(" "), fill: "none", stroke: "#3867d6", "stroke-width": 2 }));
  if (rows.length <= 500) {
    for (const [px, py] of xy) chart.append(svg("circle", { cx: px, cy: py, r: 3, fill: "#3867d6", class: "point" }));
  }
  const marker = svg("circle", { r: 5, fill: "none", stroke: "#b42318", "stroke-width": 2, visibility: "hidden", id: "marker" });
  const overlay = svg("rect", { x: left, y: top, width: width - left - right, height: height - top - bottom, fill: "transparent", id: "overlay" });
  overlay.addEventListener("mousemove", (event) => {
    const box = chart.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * width;
    let nearest = 0;
    for (let i = 1; i < xy.length; i++) if (Math.abs(xy[i][0] - px) < Math.abs(xy[nearest][0] - px)) nearest = i;
    marker.setAttribute("cx", xy[nearest][0]);
    marker.setAttribute("cy", xy[nearest][1]);
    marker.setAttribute("visibility", "visible");
    hover.textContent = `${rows[nearest].timestamp} UTC — NAV ${money(rows[nearest].nav)}`;
  });
  chart.append(marker, overlay);
  return chart;
}

// One portfolio: its NAV over a range as a chart, its rows and statistics (App2).
function portfolioPage(id) {
  statusLine.textContent = "";
  const from = el("input", { id: "from", placeholder: "from: 2026-11-24 09:40", size: 22 });
  const to = el("input", { id: "to", placeholder: "to (optional)", size: 22 });
  const show = el("button", { id: "show" }, "Show");
  const download = el("a", { id: "download" }, "Download CSV");
  const title = el("h2", {}, "Portfolio " + id);
  const body = el("div", { id: "history" });
  main.replaceChildren(title, el("div", { class: "controls" }, from, to, show, download), body);
  async function load() {
    const query = new URLSearchParams({ from: from.value, to: to.value });
    download.setAttribute("href", "/api/portfolios/" + encodeURIComponent(id) + "?format=csv&" + query);
    let answer;
    try {
      answer = await getJson("/api/portfolios/" + encodeURIComponent(id) + "?" + query);
    } catch (error) {
      body.replaceChildren(el("p", { class: "error" }, error.message));
      return;
    }
    if (answer.investor) title.textContent = `Portfolio ${answer.portfolio} — ${answer.investor}`;
    const stats = answer.stats || {};
    const table = el("table", { id: "rows" },
      el("tr", {}, el("th", {}, "TIMESTAMP"), el("th", {}, "NAV"), el("th", {}, "NAV_Change"), el("th", {}, "NAV_Change_%")),
      ...answer.rows.map((row) => el("tr", {}, el("td", {}, row.timestamp), el("td", { class: "num" }, money(row.nav)),
        signed(row.nav_change), signed(row.nav_change_pct))));
    const fall = stats.drawdown_peak ? ` (${stats.drawdown_peak} → ${stats.drawdown_trough})` : "";
    const hover = el("div", { id: "hover", class: "hover" }, answer.rows.length ? "point at the chart for a value" : "no rows in the range");
    body.replaceChildren(
      el("div", { class: "stats" },
        el("span", {}, "rows: ", el("b", { id: "count" }, answer.rows.length)),
        el("span", {}, "average NAV: ", el("b", { id: "average" }, money(stats.average))),
        el("span", {}, "standard deviation: ", el("b", { id: "stddev" }, money(stats.stddev))),
        el("span", {}, "spread (max − min) / average: ", el("b", { id: "spread" }, percent(stats.spread)))),
      el("div", { class: "stats" },
        el("span", {}, "return: ", el("b", { id: "return" }, percent(stats.return))),
        el("span", {}, "maximum drawdown: ", el("b", { id: "drawdown" }, percent(stats.max_drawdown)), fall),
        el("span", { title: "sample standard deviation of the returns between consecutive rows, not annualised" },
          "volatility per interval: ", el("b", { id: "volatility" }, percent(stats.volatility)))),
      historyChart(answer.rows, hover), hover, table);
  }
  show.addEventListener("click", load);
  load();
}

// The investors: every plugin file, running, quarantined or failed; live on
// plugin changes, and every 5 s for the status.
function investorsPage() {
  statusLine.textContent = "";
  const table = el("table", { id: "investors" });
  const note = el("p", {});
  main.replaceChildren(note, table);
  async function load() {
    const answer = await getJson("/api/investors");
    note.textContent = answer.running_here ? "" : "This process does not run the investors (--roles).";
    table.replaceChildren(
      el("tr", {}, ...["Investor", "Name", "Status", "Portfolios", "Last valued", "Failed intervals", "File", "Error"].map((h) => el("th", {}, h))),
      ...answer.investors.map((row) => el("tr", { "data-investor": row.investor },
        el("td", {}, row.investor), el("td", { class: "name" }, row.name === null ? "—" : row.name),
        el("td", { class: "status" }, row.status), el("td", {}, row.portfolios.map((p) => `${row.investor}.${p}`).join(" ")),
        el("td", { class: "last-valued" }, row.last_valued === null ? "—" : row.last_valued),
        el("td", { class: "num failed" }, row.failed_intervals),
        el("td", {}, row.file), el("td", { class: "error" }, row.error === null ? "" : row.error))));
  }
  onEvents("investors", load);
  load();
  setInterval(load, 5000);
}

// The market: the latest price of every ticker.
function marketPage() {
  const table = el("table", { id: "market" });
  main.replaceChildren(table);
  let pending = false;
  async function load() {
    pending = false;
    const answer = await getJson("/api/market");
    table.replaceChildren(
      el("tr", {}, el("th", {}, "Ticker"), el("th", {}, "Price"), el("th", {}, "Last trade")),
      ...answer.quotes.map((q) => el("tr", { "data-ticker": q.ticker }, el("td", {}, q.ticker), el("td", { class: "num" }, money(q.price)), el("td", {}, q.at))));
  }
  onEvents("market", () => { if (!pending) { pending = true; setTimeout(load, 1000); } });
  load();
}

const path = location.pathname;
const current = path.startsWith("/investors") ? "nav-investors" : path.startsWith("/market") ? "nav-market" : "nav-portfolios";
document.getElementById(current).classList.add("current");
if (path.startsWith("/portfolio/")) portfolioPage(decodeURIComponent(path.slice("/portfolio/".length)));
else if (path.startsWith("/investors")) investorsPage();
else if (path.startsWith("/market")) marketPage();
else portfoliosPage();
