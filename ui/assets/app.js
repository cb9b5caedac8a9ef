// Sightline's shared page code: the theme, JSON API calls, safe DOM building (text is
// always set as text, never parsed as HTML), time ranges kept in the URL, graphs with
// uPlot, the query editor's autocomplete, and the skip link. Page scripts build on
// `window.Sightline`.
"use strict";

(function () {
  const root = document.documentElement;
  const saved = localStorage.getItem("sightline-theme");
  const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  root.dataset.theme = saved || (dark ? "dark" : "light");
})();

window.Sightline = (function () {
  const S = {};

  S.prefix = () => document.body.dataset.prefix || "";

  /** An element with properties (`class`, `text`, `title`, `on*` handlers, other
   * attributes) and children (nodes, or strings added as text). */
  S.el = function (tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  };

  /** Calls a JSON API under the route prefix; resolves to `data` of a Prometheus-style
   * envelope (or the whole body when there is none) and rejects with the server's error. */
  S.api = async function (path, params, init) {
    const query = params ? "?" + new URLSearchParams(params).toString() : "";
    const response = await fetch(S.prefix() + path + query, init);
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
    if (!response.ok || (body && body.status === "error")) {
      const message = (body && (body.error || body.message)) || text || response.statusText;
      throw new Error(message.trim());
    }
    return body && body.status === "success" && "data" in body ? body.data : body;
  };

  // ---- durations and time ranges -------------------------------------------------------

  const UNITS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };

  /** Seconds of a Prometheus duration such as `1h30m`; NaN when it is not one. */
  S.parseDuration = function (text) {
    const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/gy;
    const trimmed = String(text || "").trim();
    if (!trimmed) return NaN;
    let total = 0, match, end = 0;
    while ((match = re.exec(trimmed)) !== null) { total += parseFloat(match[1]) * UNITS[match[2]]; end = re.lastIndex; }
    return end === trimmed.length ? total : NaN;
  };

  /** A short duration for seconds: `15s`, `5m`, `1h30m`, `2d`. */
  S.formatDuration = function (seconds) {
    if (seconds < 1) return Math.round(seconds * 1000) + "ms";
    let rest = Math.round(seconds), out = "";
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
      if (rest >= size) { out += Math.floor(rest / size) + unit; rest %= size; }
    }
    return out;
  };

  S.RANGES = ["5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "2d", "7d"];

  /** The time range in a page's URL: `range` back from `to` (default now), or absolute
   * `from`/`to` in Unix ms. Returns seconds. */
  S.timeRange = function (params) {
    const to = params.get("to") ? Number(params.get("to")) / 1000 : Date.now() / 1000;
    if (params.get("from")) return { start: Number(params.get("from")) / 1000, end: to };
    const range = S.parseDuration(params.get("range") || "1h") || 3600;
    return { start: to - range, end: to };
  };

  /** A step giving about 250 points over the range, rounded to a whole second or more. */
  S.autoStep = function (start, end, points) {
    const raw = (end - start) / (points || 250);
    const nice = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
    return nice.find((n) => n >= raw) || Math.ceil(raw / 86400) * 86400;
  };

  const localInput = (seconds) => {
    const d = new Date(seconds * 1000 - new Date().getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 16);
  };

  /** The range picker: relative ranges, or absolute from/to, read from and written to
   * `params`; calls `onChange` after a change. */
  S.rangePicker = function (container, params, onChange) {
    const select = S.el("select", { "aria-label": "Time range" },
      S.RANGES.map((r) => S.el("option", { value: r, text: "Last " + r })),
      S.el("option", { value: "custom", text: "Absolute…" }));
    const from = S.el("input", { type: "datetime-local", "aria-label": "From" });
    const to = S.el("input", { type: "datetime-local", "aria-label": "To" });
    const absolute = S.el("span", { class: "range-picker" }, from, " – ", to);
    const sync = () => {
      const isAbsolute = params.has("from");
      select.value = isAbsolute ? "custom" : (params.get("range") || "1h");
      absolute.hidden = !isAbsolute;
      if (isAbsolute) {
        const r = S.timeRange(params);
        from.value = localInput(r.start);
        to.value = localInput(r.end);
      }
    };
    select.addEventListener("change", () => {
      if (select.value === "custom") {
        const r = S.timeRange(params);
        params.set("from", String(Math.round(r.start * 1000)));
        params.set("to", String(Math.round(r.end * 1000)));
        params.delete("range");
      } else {
        params.set("range", select.value);
        params.delete("from");
        params.delete("to");
      }
      sync();
      onChange();
    });
    for (const input of [from, to]) {
      input.addEventListener("change", () => {
        const start = new Date(from.value).getTime(), end = new Date(to.value).getTime();
        if (!(start < end)) return;
        params.set("from", String(start));
        params.set("to", String(end));
        onChange();
      });
    }
    container.replaceChildren(select, absolute);
    sync();
    return { sync };
  };

  /** Makes `[start, end]` (seconds) the page's absolute range, as a drag-to-zoom does. */
  S.zoomTo = function (params, start, end) {
    params.set("from", String(Math.round(start * 1000)));
    params.set("to", String(Math.round(end * 1000)));
    params.delete("range");
  };

  /** Shows a failed query's message in a status line. */
  S.showError = function (status, error) {
    status.className = "query-status error";
    status.textContent = error.message || String(error);
  };

  /** Writes `params` to the address bar: every setting of the page is in its URL. */
  S.saveParams = function (params, push) {
    const url = location.pathname + "?" + params.toString();
    if (url === location.pathname + location.search) return;
    (push ? history.pushState : history.replaceState).call(history, null, "", url);
  };

  // ---- log lines -----------------------------------------------------------------------

  /** Fields of a JSON object line (nested keys joined with `_`), or of a logfmt line. */
  S.logFields = function (line) {
    const trimmed = line.trim();
    if (trimmed.startsWith("{")) {
      try {
        const object = JSON.parse(trimmed);
        const fields = {};
        const flatten = (value, prefix) => {
          for (const [key, inner] of Object.entries(value)) {
            const name = prefix ? prefix + "_" + key : key;
            if (inner && typeof inner === "object" && !Array.isArray(inner)) flatten(inner, name);
            else fields[name] = typeof inner === "string" ? inner : JSON.stringify(inner);
          }
        };
        flatten(object, "");
        return fields;
      } catch (_) { /* not JSON: try logfmt */ }
    }
    const fields = {};
    const re = /([a-zA-Z_][\w.\-]*)=("(?:[^"\\]|\\.)*"|\S*)/g;
    let match;
    while ((match = re.exec(line)) !== null) {
      let value = match[2];
      if (value.startsWith("\"")) { try { value = JSON.parse(value); } catch (_) { value = value.slice(1, -1); } }
      fields[match[1]] = value;
    }
    return fields;
  };

  /** The level of a line (`error`, `warn`, `info`, `debug` or ""): from its labels, else
   * from its `fields` (`level=`, `"level":`), else from a level word in it. */
  S.logLevel = function (labels, line, fields) {
    const value = labels.level || labels.detected_level || labels.severity || fields.level || fields.lvl || fields.severity || "";
    const text = String(value || (/\b(ERROR|ERR|FATAL|PANIC|CRIT(?:ICAL)?|WARN(?:ING)?|INFO|DEBUG|TRACE)\b/i.exec(line) || [])[1] || "").toLowerCase();
    if (/^(err|error|fatal|panic|crit|critical|alert|emerg)/.test(text)) return "error";
    if (/^warn/.test(text)) return "warn";
    if (/^info|^notice/.test(text)) return "info";
    if (/^(debug|trace)/.test(text)) return "debug";
    return "";
  };

  /** A Loki timestamp (ns, as a string) as `2026-12-05 23:41:25.123`, in UTC. */
  S.logTime = function (ns) {
    const ms = Number(BigInt(ns) / 1000000n);
    return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
  };

  // ---- series and values ---------------------------------------------------------------

  /** `name{a="b", …}` of a metric's labels. */
  S.seriesName = function (metric) {
    const name = metric.__name__ || "";
    const labels = Object.keys(metric).filter((k) => k !== "__name__").sort()
      .map((k) => k + "=" + JSON.stringify(metric[k]));
    return labels.length || !name ? name + "{" + labels.join(", ") + "}" : name;
  };

  /** A value with at most 4 significant digits and an SI suffix. */
  S.formatValue = function (v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
    const a = Math.abs(v);
    if (a === 0) return "0";
    for (const [size, suffix] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
      if (a >= size) return +(v / size).toPrecision(4) + suffix;
    }
    if (a < 0.001) return v.toExponential(2);
    return String(+v.toPrecision(4));
  };

  S.PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

  /** Draws a Prometheus matrix (`[{metric, values: [[t, "v"], …]}]`) with uPlot into
   * `container`: lines (or stacked areas, or bars), a legend whose entries toggle series
   * and show values under the cursor, and drag-to-zoom calling `onZoom(start, end)`.
   * Options: `stacked`, `bars`, `colors`, `label(metric)`, `legend`, `width` (measured by
   * the caller, else the container's), `height`, `xRange`
   * (`[start, end]` seconds: the axis spans the queried range, not just the data), `format(v)`
   * for axis and legend values, `seriesFormat(i)` for series i's legend values. */
  /** Resolves once uPlot is there: a page may load it after its own script, so that its
   * start-up overlaps the page's first queries. */
  S.chartsReady = function () {
    if (window.uPlot) return Promise.resolve();
    const script = document.querySelector("script[src*='/uplot/']");
    if (!script) return Promise.reject(new Error("this page does not load the chart library"));
    return new Promise((resolve, reject) => {
      script.addEventListener("load", () => resolve(), { once: true });
      script.addEventListener("error", () => reject(new Error("the chart library did not load")), { once: true });
    });
  };

  /** The theme's axis and grid colours, read once per theme: reading computed style after
   * each drawn graph would force a style pass per graph. */
  const themeColors = (function () {
    const cache = new Map();
    return function () {
      const theme = document.documentElement.dataset.theme;
      if (!cache.has(theme)) {
        const style = getComputedStyle(document.documentElement);
        cache.set(theme, {
          fg: style.getPropertyValue("--muted").trim() || "#888",
          grid: style.getPropertyValue("--border").trim() || "#ddd",
        });
      }
      return cache.get(theme);
    };
  })();

  S.drawGraph = function (container, matrix, options) {
    const opts = options || {};
    container.replaceChildren();
    if (container._resize) window.removeEventListener("resize", container._resize);
    if (!matrix.length) {
      container.append(S.el("p", { class: "empty", text: "No data in this range." }));
      return null;
    }
    const times = new Set();
    for (const series of matrix) for (const [t] of series.values) times.add(Number(t));
    const xs = Array.from(times).sort((a, b) => a - b);
    const index = new Map(xs.map((t, i) => [t, i]));
    const columns = matrix.map((series) => {
      const ys = new Array(xs.length).fill(null);
      for (const [t, v] of series.values) ys[index.get(Number(t))] = Number(v);
      return ys;
    });
    if (opts.stacked) {
      for (let s = 1; s < columns.length; s++) {
        for (let i = 0; i < xs.length; i++) {
          if (columns[s][i] !== null) columns[s][i] += columns[s - 1][i] || 0;
        }
      }
    }
    const { fg, grid } = themeColors();
    const bars = opts.bars && window.uPlot.paths && window.uPlot.paths.bars
      ? window.uPlot.paths.bars({ size: [0.9, 60] }) : null;
    const series = [{}].concat(matrix.map((s, i) => {
      const color = (opts.colors && opts.colors[i]) || S.PALETTE[i % S.PALETTE.length];
      return {
        label: opts.label ? opts.label(s.metric) : S.seriesName(s.metric),
        stroke: color,
        width: 1.5,
        fill: opts.stacked || bars ? color + "55" : undefined,
        paths: bars || undefined,
        points: { show: false },
        spanGaps: false,
        value: (u, v) => (opts.seriesFormat ? opts.seriesFormat(i) : format)(v),
      };
    }));
    const format = opts.format || S.formatValue;
    const height = opts.height || 300;
    const plot = new window.uPlot({
      width: Math.max(opts.width || container.clientWidth, 300),
      height,
      series,
      scales: { x: opts.xRange ? { time: true, range: () => opts.xRange } : { time: true } },
      axes: [
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 72,
          values: (u, values) => values.map(format) },
      ],
      cursor: { drag: { x: true, y: false } },
      legend: { show: opts.legend !== false, live: true },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 5 || !opts.onZoom) return;
          const start = u.posToVal(u.select.left, "x");
          const end = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          opts.onZoom(start, end);
        }],
      },
    }, [xs].concat(columns), container);
    container._resize = () => plot.setSize({ width: Math.max(container.clientWidth, 300), height });
    window.addEventListener("resize", container._resize);
    return plot;
  };

  // ---- autocomplete --------------------------------------------------------------------

  /** Suggestions under a textarea. `provider(textBeforeCursor)` resolves to
   * `{ token, items: [{ text, hint }] }`, where `token` is the text an item replaces.
   * Arrow keys move, Enter or Tab accepts, Escape closes; Ctrl+Enter calls `onRun`. */
  S.autocomplete = function (textarea, list, provider, onRun) {
    let items = [], selected = 0, token = "", request = 0;
    const close = () => { list.hidden = true; items = []; textarea.setAttribute("aria-expanded", "false"); };
    const render = () => {
      list.replaceChildren(...items.map((item, i) => S.el("li", {
        role: "option", "aria-selected": i === selected ? "true" : "false",
        onmousedown: (event) => { event.preventDefault(); accept(i); },
      }, item.text, item.hint ? S.el("small", { text: item.hint }) : null)));
      list.hidden = items.length === 0;
      textarea.setAttribute("aria-expanded", items.length ? "true" : "false");
      const current = list.children[selected];
      if (current && current.scrollIntoView) current.scrollIntoView({ block: "nearest" });
    };
    const accept = (i) => {
      const item = items[i];
      if (!item) return;
      const position = textarea.selectionStart;
      const before = textarea.value.slice(0, position - token.length);
      const after = textarea.value.slice(position);
      textarea.value = before + item.text + after;
      const cursor = before.length + item.text.length;
      textarea.setSelectionRange(cursor, cursor);
      close();
      textarea.focus();
    };
    const update = async () => {
      const mine = ++request;
      const before = textarea.value.slice(0, textarea.selectionStart);
      let result;
      try { result = await provider(before); } catch (_) { result = null; }
      if (mine !== request) return;
      if (!result || !result.items.length) { close(); return; }
      token = result.token;
      items = result.items.slice(0, 50);
      selected = 0;
      render();
    };
    textarea.addEventListener("input", update);
    textarea.addEventListener("blur", () => setTimeout(close, 100));
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault(); close(); onRun(); return;
      }
      if (list.hidden) {
        if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); onRun(); }
        return;
      }
      if (event.key === "ArrowDown") { event.preventDefault(); selected = (selected + 1) % items.length; render(); }
      else if (event.key === "ArrowUp") { event.preventDefault(); selected = (selected - 1 + items.length) % items.length; render(); }
      else if (event.key === "Enter" || event.key === "Tab") { event.preventDefault(); accept(selected); }
      else if (event.key === "Escape") { event.preventDefault(); close(); }
    });
  };

  /** Items of `values` starting with (then containing) `prefix`, as suggestions. */
  S.matching = function (values, prefix, hint) {
    const lower = prefix.toLowerCase();
    const starts = [], contains = [];
    for (const value of values) {
      const v = value.toLowerCase();
      if (v.startsWith(lower)) starts.push(value);
      else if (lower.length > 1 && v.includes(lower)) contains.push(value);
      if (starts.length > 50) break;
    }
    return starts.concat(contains).filter((v) => v !== prefix).map((text) => ({ text, hint }));
  };

  /** Where the cursor is inside a `{…}` selector: `{ name, op, partial }` while typing a
   * label value (after `name="`), `{ partial }` while typing a label name, else null. */
  S.selectorContext = function (before) {
    const open = before.lastIndexOf("{");
    if (open < 0 || before.lastIndexOf("}") > open) return null;
    const inside = before.slice(open + 1);
    const value = /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)$/.exec(inside);
    if (value) return { name: value[1], op: value[2], partial: value[3], metric: before.slice(0, open).match(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/) };
    const name = /(?:^|,)\s*([a-zA-Z_][a-zA-Z0-9_]*)?$/.exec(inside);
    return name ? { partial: name[1] || "" } : null;
  };

  /** A cache of one fetch per key for `ttl` ms. */
  S.cached = function (fetcher, ttl) {
    const cache = new Map();
    return (key) => {
      const hit = cache.get(key);
      if (hit && Date.now() - hit.at < (ttl || 60000)) return hit.value;
      const value = fetcher(key).catch((error) => { cache.delete(key); throw error; });
      cache.set(key, { at: Date.now(), value });
      return value;
    };
  };

  /** Query history in local storage, newest first, without repeats. */
  S.history = function (key) {
    const read = () => { try { return JSON.parse(localStorage.getItem(key)) || []; } catch (_) { return []; } };
    return {
      list: read,
      add(query) {
        const next = [query].concat(read().filter((q) => q !== query)).slice(0, 30);
        localStorage.setItem(key, JSON.stringify(next));
      },
    };
  };

  /** Fills a history list; choosing an entry calls `choose(query)`. */
  S.renderHistory = function (list, history, choose) {
    const entries = history.list();
    list.replaceChildren(...(entries.length ? entries.map((query) => S.el("li", {}, S.el("a", {
      href: "#", text: query, onclick: (event) => { event.preventDefault(); choose(query); },
    }))) : [S.el("li", { text: "No queries yet." })]));
  };

  document.addEventListener("DOMContentLoaded", () => {
    const toggle = document.getElementById("theme-toggle");
    if (toggle) toggle.addEventListener("click", () => {
      const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      localStorage.setItem("sightline-theme", next);
      document.dispatchEvent(new CustomEvent("sightline-theme"));
    });
    // The skip link moves the focus without a history entry, which pages that keep their
    // state in the URL would take for a navigation.
    const skip = document.querySelector("a.skip");
    const main = document.getElementById("main");
    if (skip && main) skip.addEventListener("click", (event) => { event.preventDefault(); main.focus(); });
  });

  return S;
})();
