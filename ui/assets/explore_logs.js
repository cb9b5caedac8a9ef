// Explore logs: a LogQL editor with label autocomplete, the log-volume histogram, lines with
// level colours that expand to their labels and parsed fields, context around a line, live
// tail over the Loki websocket, and a metric graph beside the logs on the same range.
"use strict";

(function () {
  const S = window.Sightline;
  const params = new URLSearchParams(location.search);
  const form = document.getElementById("query-form");
  const textarea = document.getElementById("query");
  const status = document.getElementById("query-status");
  const lines = document.getElementById("lines");
  const volume = document.getElementById("volume");
  const metricPanel = document.getElementById("metric-panel");
  const splitPanel = document.getElementById("split-panel");
  const splitForm = document.getElementById("split-form");
  const tailButton = document.getElementById("tail");
  const history = S.history("sightline-history-logql");
  const MAX_TAIL_LINES = 2000;
  let socket = null;

  textarea.value = params.get("query") || "";
  form.limit.value = params.get("limit") || "1000";
  form.wrap.checked = params.get("wrap") !== "0";
  form.split.checked = params.get("split") === "1";
  form.expr.value = params.get("expr") || "";

  const labelNames = S.cached((range) => S.api("/loki/api/v1/labels", JSON.parse(range)), 30000);
  const labelValues = S.cached((key) => {
    const [name, range] = JSON.parse(key);
    return S.api("/loki/api/v1/label/" + encodeURIComponent(name) + "/values", range);
  }, 30000);

  function nsRange() {
    const r = S.timeRange(params);
    return { start: String(Math.floor(r.start * 1e9)), end: String(Math.ceil(r.end * 1e9)) };
  }

  async function suggest(before) {
    const selector = S.selectorContext(before);
    if (!selector) return null;
    if (selector.name) {
      const values = await labelValues(JSON.stringify([selector.name, nsRange()]));
      return { token: selector.partial, items: S.matching(values || [], selector.partial, "value") };
    }
    const names = await labelNames(JSON.stringify(nsRange()));
    return { token: selector.partial, items: S.matching(names || [], selector.partial, "label") };
  }

  /** Whether a query is a log query (a selector and a pipeline) rather than a metric one. */
  const isLogQuery = (query) => query.trim().startsWith("{");

  const selectorOf = (labels) => "{" + Object.keys(labels).sort().map((k) => k + "=" + JSON.stringify(labels[k])).join(", ") + "}";

  function lineItem(entry, extraClass) {
    const fields = S.logFields(entry.line);
    const level = S.logLevel(entry.labels, entry.line, fields);
    const item = S.el("li", { class: "logline" + (level ? " level-" + level : "") + (extraClass ? " " + extraClass : "") });
    const row = S.el("div", { class: "row", tabindex: "0", role: "button", "aria-expanded": "false" },
      S.el("time", { datetime: entry.ts, text: S.logTime(entry.ts) }),
      S.el("span", { class: "text", text: entry.line }));
    const toggle = () => {
      const open = item.querySelector(".details");
      if (open) { open.remove(); row.setAttribute("aria-expanded", "false"); return; }
      row.setAttribute("aria-expanded", "true");
      item.append(details(entry, fields));
    };
    row.addEventListener("click", toggle);
    row.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(); } });
    item.append(row);
    return item;
  }

  function details(entry, fields) {
    const table = (title, object) => Object.keys(object).length ? S.el("table", { class: "facts" },
      S.el("caption", { text: title }),
      Object.keys(object).sort().map((k) => S.el("tr", {}, S.el("th", { text: k }), S.el("td", {}, S.el("code", { text: object[k] }))))) : null;
    const box = S.el("div", { class: "details" },
      table("Stream labels", entry.labels),
      table("Parsed fields", fields),
      S.el("p", { class: "actions" },
        S.el("button", { type: "button", class: "small secondary", text: "Show context", onclick: (event) => showContext(event.target.closest("li"), entry) }),
        " ",
        S.el("button", { type: "button", class: "small secondary", text: "Only this stream", onclick: () => { textarea.value = selectorOf(entry.labels); run(true); } })));
    return box;
  }

  /** Ten lines before and after `entry` in its stream, around its item. */
  async function showContext(item, entry) {
    const selector = selectorOf(entry.labels);
    const ts = BigInt(entry.ts);
    const day = 86400n * 1000000000n;
    try {
      const [before, after] = await Promise.all([
        S.api("/loki/api/v1/query_range", { query: selector, start: String(ts - day), end: String(ts), limit: "10", direction: "backward" }),
        S.api("/loki/api/v1/query_range", { query: selector, start: String(ts + 1n), end: String(ts + day), limit: "10", direction: "forward" }),
      ]);
      const older = entriesOf(before).sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? 1 : -1));
      const newer = entriesOf(after).sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? 1 : -1));
      item.classList.add("anchor");
      item.before(...newer.map((e) => lineItem(e, "context")));
      item.after(...older.map((e) => lineItem(e, "context")));
    } catch (error) {
      S.showError(status, error);
    }
  }

  function entriesOf(data) {
    const entries = [];
    for (const stream of data.result || []) {
      for (const [ts, line] of stream.values) entries.push({ ts, line, labels: stream.stream });
    }
    return entries;
  }

  function rangeOptions() {
    const range = S.timeRange(params);
    return {
      xRange: [range.start, range.end],
      onZoom: (start, end) => {
        S.zoomTo(params, start, end);
        picker.sync();
        run(true);
      },
    };
  }

  async function run(push) {
    stopTail();
    const query = textarea.value.trim();
    params.set("query", query);
    params.set("limit", form.limit.value.trim() || "1000");
    if (form.wrap.checked) params.delete("wrap"); else params.set("wrap", "0");
    if (form.split.checked) params.set("split", "1"); else params.delete("split");
    if (form.expr.value.trim()) params.set("expr", form.expr.value.trim()); else params.delete("expr");
    S.saveParams(params, push);
    splitForm.hidden = splitPanel.hidden = !form.split.checked;
    if (form.split.checked) runSplit();
    if (!query) { status.textContent = ""; return; }
    history.add(query);
    const range = S.timeRange(params);
    const ns = nsRange();
    const started = performance.now();
    status.className = "query-status";
    status.textContent = "Running…";
    const step = S.autoStep(range.start, range.end, 60);
    try {
      if (isLogQuery(query)) {
        metricPanel.hidden = true;
        const [data, counts] = await Promise.all([
          S.api("/loki/api/v1/query_range", { query, start: ns.start, end: ns.end, limit: params.get("limit"), direction: "backward" }),
          S.api("/loki/api/v1/query_range", { query: "sum(count_over_time(" + query + " [" + S.formatDuration(step) + "]))", start: ns.start, end: ns.end, step: String(step) })
            .catch(() => ({ result: [] })),
        ]);
        const entries = entriesOf(data).sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? 1 : BigInt(a.ts) > BigInt(b.ts) ? -1 : 0));
        lines.replaceChildren(...entries.map((e) => lineItem(e)));
        const total = (counts.result || []).reduce((n, s) => n + s.values.reduce((m, v) => m + Number(v[1]), 0), 0);
        S.drawGraph(volume, (counts.result || []).map((s) => ({ metric: { __name__: "lines" }, values: s.values })), Object.assign({ bars: true, height: 120, legend: false }, rangeOptions()));
        status.textContent = entries.length + " lines shown of " + total + " in range, " + Math.round(performance.now() - started) + " ms";
      } else {
        metricPanel.hidden = false;
        lines.replaceChildren();
        volume.replaceChildren();
        const data = await S.api("/loki/api/v1/query_range", { query, start: ns.start, end: ns.end, step: String(step) });
        const matrix = data.resultType === "matrix" ? data.result : [];
        S.drawGraph(document.getElementById("metric-graph"), matrix, rangeOptions());
        status.textContent = matrix.length + " series, " + Math.round(performance.now() - started) + " ms";
      }
    } catch (error) {
      S.showError(status, error);
    }
  }

  async function runSplit() {
    const expr = form.expr.value.trim();
    const target = document.getElementById("split-graph");
    if (!expr) { target.replaceChildren(S.el("p", { class: "empty", text: "Enter a PromQL query to graph it beside the logs." })); return; }
    const range = S.timeRange(params);
    try {
      const data = await S.api("/api/v1/query_range", { query: expr, start: range.start, end: range.end, step: S.autoStep(range.start, range.end) });
      S.drawGraph(target, data.result || [], Object.assign({ height: 200 }, rangeOptions()));
    } catch (error) {
      target.replaceChildren(S.el("p", { class: "error-text", text: error.message }));
    }
  }

  function startTail() {
    const query = textarea.value.trim();
    if (!isLogQuery(query)) { S.showError(status, new Error("Live tail needs a log query: a {selector} and filters.")); return; }
    const url = new URL(S.prefix() + "/loki/api/v1/tail", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.search = new URLSearchParams({ query, limit: "100", start: String(BigInt(Date.now() - 60000) * 1000000n) }).toString();
    socket = new WebSocket(url);
    tailButton.setAttribute("aria-pressed", "true");
    tailButton.textContent = "Stop tail";
    status.className = "query-status";
    status.textContent = "Tailing…";
    lines.replaceChildren();
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (_) { return; }
      const entries = [];
      for (const stream of message.streams || []) {
        for (const [ts, line] of stream.values) entries.push({ ts, line, labels: stream.stream });
      }
      entries.sort((a, b) => (BigInt(a.ts) < BigInt(b.ts) ? 1 : -1));
      lines.prepend(...entries.map((e) => lineItem(e)));
      while (lines.children.length > MAX_TAIL_LINES) lines.lastChild.remove();
      status.textContent = "Tailing: " + lines.children.length + " lines";
    });
    socket.addEventListener("close", () => { if (socket) { stopTail(); status.textContent = "The server closed the tail."; } });
  }

  function stopTail() {
    if (!socket) return;
    const open = socket;
    socket = null;
    open.close();
    tailButton.setAttribute("aria-pressed", "false");
    tailButton.textContent = "Live tail";
    status.textContent = "Tail stopped: " + lines.children.length + " lines";
  }

  const picker = S.rangePicker(document.querySelector("[data-range-picker]"), params, () => run(true));
  S.autocomplete(textarea, document.getElementById("suggestions"), suggest, () => run(true));
  form.addEventListener("submit", (event) => { event.preventDefault(); run(true); });
  form.wrap.addEventListener("change", () => {
    lines.classList.toggle("wrap", form.wrap.checked);
    if (form.wrap.checked) params.delete("wrap"); else params.set("wrap", "0");
    S.saveParams(params, false);
  });
  form.split.addEventListener("change", () => run(false));
  form.expr.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); run(true); } });
  tailButton.addEventListener("click", () => (socket ? stopTail() : startTail()));
  window.addEventListener("popstate", () => location.reload());
  lines.classList.toggle("wrap", form.wrap.checked);
  run(false);
})();
