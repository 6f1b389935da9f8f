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
    const stats = answer.stats;
    const chart = svg("svg", { class: "chart", id: "chart", viewBox: "0 0 800 260", preserveAspectRatio: "none" });
    const points = answer.rows.map((row, i) => [i, row.nav]);
    if (points.length > 0) {
      const xy = line(points, 800, 260, 20);
      chart.append(svg("polyline", { points: xy.map((p) => p.join(",")).join(" "), fill: "none", stroke: "#3867d6", "stroke-width": 2 }));
      for (const [x, y] of xy) chart.append(svg("circle", { cx: x, cy: y, r: 3, fill: "#3867d6", class: "point" }));
    }
    const table = el("table", { id: "rows" },
      el("tr", {}, el("th", {}, "TIMESTAMP"), el("th", {}, "NAV"), el("th", {}, "NAV_Change"), el("th", {}, "NAV_Change_%")),
      ...answer.rows.map((row) => el("tr", {}, el("td", {}, row.timestamp), el("td", { class: "num" }, money(row.nav)),
        signed(row.nav_change), signed(row.nav_change_pct))));
    body.replaceChildren(
      el("div", { class: "stats" },
        el("span", {}, "rows: ", el("b", { id: "count" }, answer.rows.length)),
        el("span", {}, "average NAV: ", el("b", { id: "average" }, money(stats && stats.average))),
        el("span", {}, "standard deviation: ", el("b", { id: "stddev" }, money(stats && stats.stddev))),
        el("span", {}, "spread (max − min) / average: ", el("b", { id: "spread" }, percent(stats && stats.spread)))),
      chart, table);
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
