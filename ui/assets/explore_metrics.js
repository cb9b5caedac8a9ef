// Explore metrics: a PromQL editor with autocomplete and history, a graph (lines or stacked,
// legend toggles, hover values, drag to zoom) or a table, over a range kept in the URL.
"use strict";

(function () {
  const S = window.Sightline;
  const FUNCTIONS = ["abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv",
    "double_exponential_smoothing", "exp", "floor", "histogram_quantile", "holt_winters", "hour", "idelta",
    "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin",
    "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year"];
  const AGGREGATIONS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values", "limitk", "limit_ratio"];
  const KEYWORDS = ["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless"];

  const params = new URLSearchParams(location.search);
  // Prometheus's links (alert generator URLs): g0.expr, g0.tab (1 = table), g0.range_input.
  if (!params.has("expr") && params.has("g0.expr")) params.set("expr", params.get("g0.expr"));
  if (!params.has("tab") && params.get("g0.tab") === "1") params.set("tab", "table");
  if (!params.has("range") && params.has("g0.range_input")) params.set("range", params.get("g0.range_input"));
  for (const key of Array.from(params.keys())) if (key.startsWith("g0.")) params.delete(key);
  const form = document.getElementById("query-form");
  const textarea = document.getElementById("expr");
  const status = document.getElementById("query-status");
  const graph = document.getElementById("graph");
  const graphPanel = document.getElementById("graph-panel");
  const tablePanel = document.getElementById("table-panel");
  const tableBody = document.querySelector("#result-table tbody");
  const history = S.history("sightline-history-promql");
  const tabs = Array.from(document.querySelectorAll("[data-tab]"));
  let lastResult = null;

  textarea.value = params.get("expr") || "";
  form.step.value = params.get("step") || "";
  form.stacked.checked = params.get("stacked") === "1";

  const metricNames = S.cached(() => S.api("/api/v1/label/__name__/values"), 60000);
  const labelNames = S.cached(() => S.api("/api/v1/labels"), 60000);
  const labelValues = S.cached((key) => {
    const [name, metric] = JSON.parse(key);
    return S.api("/api/v1/label/" + encodeURIComponent(name) + "/values", metric ? { "match[]": metric } : null);
  }, 60000);

  async function suggest(before) {
    const selector = S.selectorContext(before);
    if (selector && selector.name) {
      const metric = selector.metric ? selector.metric[1] : "";
      const values = await labelValues(JSON.stringify([selector.name, metric]));
      return { token: selector.partial, items: S.matching(values, selector.partial, "value") };
    }
    if (selector) {
      return { token: selector.partial, items: S.matching(await labelNames(), selector.partial, "label") };
    }
    const grouping = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*?)([a-zA-Z_][a-zA-Z0-9_]*)?$/.exec(before);
    if (grouping) {
      const partial = grouping[2] || "";
      return { token: partial, items: S.matching(await labelNames(), partial, "label") };
    }
    const word = /([a-zA-Z_:][a-zA-Z0-9_:]*)$/.exec(before);
    if (!word) return null;
    const partial = word[1];
    const names = await metricNames();
    return {
      token: partial,
      items: S.matching(FUNCTIONS, partial, "function")
        .concat(S.matching(AGGREGATIONS, partial, "aggregation"))
        .concat(S.matching(KEYWORDS, partial, "keyword"))
        .concat(S.matching(names, partial, "metric")),
    };
  }

  function setTab(tab) {
    params.set("tab", tab);
    for (const button of tabs) button.setAttribute("aria-selected", String(button.dataset.tab === tab));
    graphPanel.hidden = tab !== "graph";
    tablePanel.hidden = tab !== "table";
  }

  function logsLink(metric, range) {
    const labels = ["namespace", "pod", "container"].filter((k) => metric[k]);
    if (!metric.namespace && !metric.pod) return null;
    const selector = "{" + labels.map((k) => k + "=" + JSON.stringify(metric[k])).join(", ") + "}";
    const query = new URLSearchParams({ query: selector, from: String(Math.round(range.start * 1000)), to: String(Math.round(range.end * 1000)) });
    return S.el("a", { href: S.prefix() + "/explore/logs?" + query, text: "logs", title: "Logs of " + selector + " over this range" });
  }

  async function run(push) {
    const expr = textarea.value.trim();
    params.set("expr", expr);
    const step = form.step.value.trim();
    if (step) params.set("step", step); else params.delete("step");
    if (form.stacked.checked) params.set("stacked", "1"); else params.delete("stacked");
    S.saveParams(params, push);
    if (!expr) { status.textContent = ""; return; }
    history.add(expr);
    S.renderHistory(document.getElementById("history"), history, choose);
    const range = S.timeRange(params);
    const started = performance.now();
    status.className = "query-status";
    status.textContent = "Running…";
    try {
      if ((params.get("tab") || "graph") === "graph") {
        const stepSeconds = step ? S.parseDuration(step) : S.autoStep(range.start, range.end);
        if (!(stepSeconds > 0)) throw new Error("step " + JSON.stringify(step) + " is not a duration such as 15s or 1m");
        const data = await S.api("/api/v1/query_range", { query: expr, start: range.start, end: range.end, step: stepSeconds });
        const matrix = data.resultType === "matrix" ? data.result : [];
        lastResult = { matrix, range };
        drawGraph();
        const points = matrix.reduce((n, s) => n + s.values.length, 0);
        status.textContent = matrix.length + " series, " + points + " points, step " + S.formatDuration(stepSeconds) + ", " + Math.round(performance.now() - started) + " ms";
      } else {
        const data = await S.api("/api/v1/query", { query: expr, time: range.end });
        renderTable(data, range);
        status.textContent = "Evaluated at " + new Date(range.end * 1000).toISOString() + ", " + Math.round(performance.now() - started) + " ms";
      }
    } catch (error) {
      S.showError(status, error);
    }
  }

  function drawGraph() {
    if (!lastResult) return;
    S.drawGraph(graph, lastResult.matrix, {
      stacked: form.stacked.checked,
      xRange: [lastResult.range.start, lastResult.range.end],
      onZoom: (start, end) => {
        S.zoomTo(params, start, end);
        picker.sync();
        run(true);
      },
    });
    const links = lastResult.matrix.map((s) => [s.metric, logsLink(s.metric, lastResult.range)]).filter(([, link]) => link);
    if (links.length) {
      graph.append(S.el("details", { class: "series-logs" }, S.el("summary", { text: "Logs of these series" }),
        S.el("ul", { class: "plain" }, links.map(([metric, link]) => S.el("li", {}, link, " ", S.seriesName(metric))))));
    }
  }

  function renderTable(data, range) {
    const rows = [];
    if (data.resultType === "vector") {
      for (const sample of data.result) {
        rows.push(S.el("tr", {}, S.el("td", {}, S.el("code", { text: S.seriesName(sample.metric) })),
          S.el("td", { class: "num", text: sample.value[1] }), S.el("td", {}, logsLink(sample.metric, range))));
      }
    } else if (data.resultType === "matrix") {
      for (const series of data.result) {
        rows.push(S.el("tr", {}, S.el("td", {}, S.el("code", { text: S.seriesName(series.metric) })),
          S.el("td", { class: "num", text: series.values.map((v) => v[1] + " @" + v[0]).join("\n") }), S.el("td", {})));
      }
    } else {
      rows.push(S.el("tr", {}, S.el("td", { text: data.resultType }), S.el("td", { class: "num", text: data.result[1] }), S.el("td", {})));
    }
    if (!rows.length) rows.push(S.el("tr", {}, S.el("td", { colspan: "3", text: "Empty result." })));
    tableBody.replaceChildren(...rows);
  }

  function choose(query) {
    textarea.value = query;
    run(true);
  }

  const picker = S.rangePicker(document.querySelector("[data-range-picker]"), params, () => run(true));
  S.autocomplete(textarea, document.getElementById("suggestions"), suggest, () => run(true));
  S.renderHistory(document.getElementById("history"), history, choose);
  form.addEventListener("submit", (event) => { event.preventDefault(); run(true); });
  form.stacked.addEventListener("change", () => { run(false); });
  for (const button of tabs) button.addEventListener("click", () => { setTab(button.dataset.tab); run(false); });
  document.addEventListener("sightline-theme", drawGraph);
  window.addEventListener("popstate", () => location.reload());
  setTab(params.get("tab") === "table" ? "table" : "graph");
  run(false);
})();
