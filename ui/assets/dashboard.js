// Renders a Grafana dashboard: rows (collapsible), timeseries, stat, gauge, bargauge, table,
// logs and text panels with units, thresholds, legends, overrides and table data links
// (`${__value.raw}`, `${__data.fields.<name>}`); template variables (query
// `label_values`/`label_names`/`metrics`/`query_result`, custom, interval, constant,
// datasource, textbox; multi-value and All); `$__interval`, `$__rate_interval`, `$__range`;
// panel repeats; auto-refresh. Queries go to the Prometheus (or, for Loki datasources, the
// Loki) API. Progress is in `window.sightlineDashboard` for tests and benchmarks.
"use strict";

(function () {
  const S = window.Sightline;
  const root = document.getElementById("dashboard");
  const status = document.getElementById("dashboard-status");
  const controls = document.getElementById("dashboard-controls");
  const variablesForm = document.getElementById("variables");
  const params = new URLSearchParams(location.search);
  const scrapeInterval = S.parseDuration(root.dataset.scrapeInterval || "15s") || 15;
  const progress = window.sightlineDashboard = { panels: 0, done: 0, errors: [], finished: false };
  let dashboard = null;
  let variables = [];
  let refreshTimer = null;
  let generation = 0;

  // ---- units and colours ---------------------------------------------------------------

  const NAMED_COLORS = {
    green: "#73bf69", "dark-green": "#37872d", "semi-dark-green": "#56a64b", "light-green": "#96d98d",
    red: "#f2495c", "dark-red": "#c4162a", "semi-dark-red": "#e02f44", "light-red": "#ff7383",
    yellow: "#fade2a", "dark-yellow": "#e0b400", "semi-dark-yellow": "#f2cc0c", "light-yellow": "#ffee52",
    orange: "#ff9830", "dark-orange": "#fa6400", "semi-dark-orange": "#ff780a", "light-orange": "#ffb357",
    blue: "#5794f2", "dark-blue": "#1f60c4", "semi-dark-blue": "#3274d9", "light-blue": "#8ab8ff",
    purple: "#b877d9", "dark-purple": "#8f3bb8", "semi-dark-purple": "#a352cc", "light-purple": "#ca95e5",
    transparent: "transparent", text: "currentColor",
  };
  const color = (name) => NAMED_COLORS[name] || name || "currentColor";

  function scaled(value, base, units, decimals) {
    let i = 0, v = Math.abs(value);
    while (v >= base && i < units.length - 1) { v /= base; i++; }
    const sign = value < 0 ? "-" : "";
    return sign + fixed(v, decimals) + " " + units[i];
  }
  function fixed(v, decimals) {
    if (decimals !== undefined && decimals !== null) return v.toFixed(decimals);
    if (v === 0) return "0";
    const a = Math.abs(v);
    const d = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
    return String(+v.toFixed(d));
  }
  function duration(seconds, decimals) {
    const a = Math.abs(seconds);
    if (a === 0) return "0 s";
    if (a < 1e-6) return fixed(seconds * 1e9, decimals) + " ns";
    if (a < 1e-3) return fixed(seconds * 1e6, decimals) + " µs";
    if (a < 1) return fixed(seconds * 1e3, decimals) + " ms";
    if (a < 60) return fixed(seconds, decimals) + " s";
    if (a < 3600) return fixed(seconds / 60, decimals) + " min";
    if (a < 86400) return fixed(seconds / 3600, decimals) + " hour";
    if (a < 604800) return fixed(seconds / 86400, decimals) + " day";
    return fixed(seconds / 604800, decimals) + " week";
  }
  const SI = ["", "k", "M", "G", "T", "P"];
  const IEC = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  const siWith = (suffix) => SI.map((p) => p + suffix);

  /** A value in a Grafana unit, e.g. `bytes` → `1.5 MiB`, `percentunit` → `42%`. */
  function formatUnit(value, unit, decimals) {
    if (value === null || value === undefined || Number.isNaN(value)) return "No data";
    if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
    switch (unit || "short") {
      case "none": return fixed(value, decimals);
      case "percent": return fixed(value, decimals) + "%";
      case "percentunit": return fixed(value * 100, decimals) + "%";
      case "bytes": return scaled(value, 1024, IEC, decimals);
      case "decbytes": return scaled(value, 1000, siWith("B"), decimals);
      case "bits": return scaled(value, 1000, siWith("b"), decimals);
      case "bps": return scaled(value, 1000, siWith("b/s"), decimals);
      case "Bps": return scaled(value, 1000, siWith("B/s"), decimals);
      case "binBps": return scaled(value, 1024, IEC.map((u) => u + "/s"), decimals);
      case "pps": return scaled(value, 1000, siWith("p/s"), decimals);
      case "ops": return scaled(value, 1000, siWith("ops/s"), decimals);
      case "reqps": return scaled(value, 1000, siWith("req/s"), decimals);
      case "rps": case "rds": return scaled(value, 1000, siWith("rd/s"), decimals);
      case "wps": return scaled(value, 1000, siWith("wr/s"), decimals);
      case "iops": return scaled(value, 1000, siWith("io/s"), decimals);
      case "s": return duration(value, decimals);
      case "ms": return duration(value / 1e3, decimals);
      case "µs": return duration(value / 1e6, decimals);
      case "ns": return duration(value / 1e9, decimals);
      case "hertz": return scaled(value, 1000, siWith("Hz"), decimals);
      case "celsius": return fixed(value, decimals) + " °C";
      case "dateTimeAsIso": return new Date(value).toISOString();
      case "short": default: {
        const text = scaled(value, 1000, SI, decimals).trim();
        return unit && unit !== "short" ? text + " " + unit : text;
      }
    }
  }

  /** The colour the thresholds give `value`. */
  function thresholdColor(config, value) {
    const thresholds = config.thresholds;
    if (!thresholds || !thresholds.steps || value === null || Number.isNaN(value)) return null;
    let v = value;
    if (thresholds.mode === "percentage") {
      const min = config.min ?? 0, max = config.max ?? 100;
      v = ((value - min) / (max - min || 1)) * 100;
    }
    let chosen = null;
    for (const step of thresholds.steps) if (step.value === null || step.value === undefined || v >= step.value) chosen = step.color;
    return chosen ? color(chosen) : null;
  }

  // ---- variables and interpolation -----------------------------------------------------

  const regexEscape = (value) => String(value).replace(/[\\^$*+?.()|[\]{}]/g, "\\$&");

  /** The values a variable stands for now (All expanded to every option). */
  function variableValues(variable) {
    if (variable.current.includes("$__all")) return variable.options.filter((o) => o.value !== "$__all").map((o) => o.value);
    return variable.current;
  }

  /** A variable's text in a query, as Grafana's Prometheus datasource formats it. */
  function formatVariable(variable, format) {
    if (variable.current.includes("$__all") && variable.allValue) return variable.allValue;
    const values = variableValues(variable);
    switch (format) {
      case "raw": case "text": return values.join(",");
      case "csv": return values.join(",");
      case "pipe": return values.join("|");
      case "json": return JSON.stringify(values);
      case "percentencode": return encodeURIComponent(values.join(","));
      case "queryparam": return values.map((v) => "var-" + variable.name + "=" + encodeURIComponent(v)).join("&");
      case "regex": return values.length === 1 ? regexEscape(values[0]) : "(" + values.map(regexEscape).join("|") + ")";
      default:
        if (variable.multi || variable.includeAll) {
          return values.length === 1 ? regexEscape(values[0]) : "(" + values.map(regexEscape).join("|") + ")";
        }
        return values.length ? String(values[0]) : "";
    }
  }

  /** The built-in variables for a panel of `width` px over the current range. */
  function builtins(width, panel) {
    const range = S.timeRange(params);
    const seconds = range.end - range.start;
    const maxPoints = (panel && panel.maxDataPoints) || Math.max(100, Math.min(width || 1000, 2000));
    let interval = Math.max(seconds / maxPoints, 1);
    const minInterval = panel && panel.interval ? S.parseDuration(interpolate(panel.interval, {}, null)) : NaN;
    if (minInterval > 0) interval = Math.max(interval, minInterval);
    interval = S.autoStep(0, interval, 1);
    return {
      __interval: S.formatDuration(interval), __interval_ms: String(interval * 1000),
      __rate_interval: S.formatDuration(Math.max(interval + scrapeInterval, 4 * scrapeInterval)),
      __range: Math.round(seconds) + "s", __range_s: String(Math.round(seconds)), __range_ms: String(Math.round(seconds * 1000)),
      __dashboard: dashboard ? dashboard.title : "",
      step: interval,
    };
  }

  /** `text` with `$var`, `${var}`, `${var:format}` and `[[var]]` replaced. */
  function interpolate(text, scoped, formatDefault) {
    if (typeof text !== "string") return text;
    return text.replace(/\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)/g, (match, a, aFormat, b, bFormat, c) => {
      const name = a || b || c;
      const format = aFormat || bFormat || formatDefault;
      if (scoped && Object.prototype.hasOwnProperty.call(scoped, name)) {
        const value = scoped[name];
        return format === "regex" ? regexEscape(value) : String(value);
      }
      const variable = variables.find((v) => v.name === name);
      return variable ? formatVariable(variable, format) : match;
    });
  }

  function queryText(variable) {
    const query = variable.query;
    if (query && typeof query === "object") return query.query || "";
    return query || "";
  }

  /** Resolves a query variable's options from the Prometheus API. */
  async function queryOptions(variable) {
    const text = interpolate(queryText(variable), {}, "regex").trim();
    const range = S.timeRange(params);
    const window = { start: String(range.start), end: String(range.end) };
    let values = [];
    let match;
    if ((match = /^label_values\(\s*(?:(.+),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/s.exec(text))) {
      const args = Object.assign({}, window);
      if (match[1]) args["match[]"] = match[1];
      values = await S.api("/api/v1/label/" + encodeURIComponent(match[2]) + "/values", args);
    } else if ((match = /^label_names\(\s*(.*)\s*\)$/s.exec(text))) {
      values = await S.api("/api/v1/labels", Object.assign(match[1] ? { "match[]": match[1] } : {}, window));
    } else if ((match = /^metrics\(\s*(.*)\s*\)$/s.exec(text))) {
      const re = new RegExp(match[1] || ".*");
      values = (await S.api("/api/v1/label/__name__/values", window)).filter((n) => re.test(n));
    } else if ((match = /^query_result\(\s*(.*)\s*\)$/s.exec(text))) {
      const data = await S.api("/api/v1/query", { query: match[1], time: String(range.end) });
      values = (data.result || []).map((s) => S.seriesName(s.metric) + " " + s.value[1] + " " + Math.round(s.value[0] * 1000));
    } else if (text) {
      throw new Error("variable " + variable.name + ": unsupported query " + JSON.stringify(text));
    }
    if (variable.regex) {
      const source = /^\/(.*)\/([gimsuy]*)$/s.exec(variable.regex);
      const re = source ? new RegExp(source[1], source[2].replace("g", "")) : new RegExp(variable.regex);
      values = values.flatMap((v) => {
        const m = re.exec(v);
        if (!m) return [];
        return [m.groups && m.groups.value ? m.groups.value : m[1] !== undefined ? m[1] : v];
      });
    }
    values = Array.from(new Set(values));
    const sort = variable.sort || 0;
    if (sort === 1 || sort === 2 || sort === 5 || sort === 6) values.sort((a, b) => a.localeCompare(b));
    if (sort === 3 || sort === 4) values.sort((a, b) => parseFloat(a) - parseFloat(b));
    if (sort === 2 || sort === 4 || sort === 6) values.reverse();
    return values.map((v) => ({ text: v, value: v }));
  }

  function customOptions(variable) {
    return queryText(variable).split(/,(?![^{]*})/).map((part) => part.trim()).filter(Boolean).map((part) => {
      const pair = /^(.*?)\s+:\s+(.*)$/.exec(part);
      return pair ? { text: pair[1], value: pair[2] } : { text: part, value: part };
    });
  }

  /** The variable's options; its current value from the URL, else the saved one, else the
   * first option. */
  async function resolveVariable(variable) {
    const type = variable.type;
    if (type === "datasource") variable.options = [{ text: "Sightline", value: queryText(variable) || "prometheus" }];
    else if (type === "constant") variable.options = [{ text: queryText(variable), value: queryText(variable) }];
    else if (type === "custom" || type === "interval") variable.options = customOptions(variable);
    else if (type === "textbox") variable.options = [];
    else if (type === "query") variable.options = await queryOptions(variable);
    else variable.options = [];
    if (type === "interval" && variable.auto) {
      variable.options.unshift({ text: "auto", value: "$__auto" });
    }
    if (variable.includeAll) variable.options.unshift({ text: "All", value: "$__all" });
    const fromUrl = params.getAll("var-" + variable.name);
    const saved = variable.saved;
    const wanted = fromUrl.length ? fromUrl : saved;
    if (type === "textbox" || type === "constant") {
      variable.current = [wanted[0] !== undefined ? wanted[0] : queryText(variable)];
      return;
    }
    const valid = wanted.filter((v) => variable.options.some((o) => o.value === v));
    if (valid.length) variable.current = variable.multi ? valid : [valid[0]];
    else variable.current = variable.options.length ? [variable.options[0].value] : [""];
    if (type === "interval" && variable.current[0] === "$__auto") variable.current = [builtins(1000).__interval];
  }

  function variableControl(variable, onChange) {
    if (variable.hide === 2 || variable.type === "constant") return null;
    const label = variable.hide === 1 ? null : S.el("span", { text: variable.label || variable.name });
    let input;
    if (variable.type === "textbox") {
      input = S.el("input", { value: variable.current[0] || "", size: "12" });
      input.addEventListener("change", () => { variable.current = [input.value]; onChange(variable); });
    } else {
      input = S.el("select", { multiple: variable.multi ? true : undefined, size: variable.multi ? String(Math.min(4, Math.max(2, variable.options.length))) : undefined },
        variable.options.map((o) => S.el("option", { value: o.value, text: o.text, selected: variable.current.includes(o.value) ? true : undefined })));
      input.addEventListener("change", () => {
        variable.current = Array.from(input.selectedOptions).map((o) => o.value);
        if (!variable.current.length && variable.options.length) variable.current = [variable.options[0].value];
        onChange(variable);
      });
    }
    input.setAttribute("aria-label", variable.label || variable.name);
    input.name = "var-" + variable.name;
    return S.el("label", { class: "variable" }, label, " ", input);
  }

  async function setUpVariables() {
    const list = (dashboard.templating && dashboard.templating.list) || [];
    variables = list.map((v) => {
      const current = v.current && v.current.value;
      const saved = current === undefined || current === null ? [] : Array.isArray(current) ? current.map(String) : [String(current)];
      return Object.assign({}, v, { saved, options: [], current: [] });
    });
    for (const variable of variables) {
      try { await resolveVariable(variable); } catch (error) { variable.error = error.message; variable.options = []; variable.current = [""]; }
    }
    renderVariables();
  }

  function renderVariables() {
    const changed = async (variable) => {
      const index = variables.indexOf(variable);
      for (const later of variables.slice(index + 1)) {
        later.saved = later.current;
        try { await resolveVariable(later); } catch (error) { later.error = error.message; }
      }
      saveVariables();
      renderVariables();
      renderPanels();
    };
    variablesForm.replaceChildren(...variables.map((v) => variableControl(v, changed)).filter(Boolean));
    const broken = variables.filter((v) => v.error);
    if (broken.length) {
      status.className = "query-status error";
      status.textContent = broken.map((v) => v.error).join("\n");
    }
  }

  function saveVariables() {
    for (const key of Array.from(params.keys())) if (key.startsWith("var-")) params.delete(key);
    for (const v of variables) {
      if (v.type === "constant" || v.type === "datasource") continue;
      for (const value of v.current) params.append("var-" + v.name, value);
    }
    S.saveParams(params, true);
  }

  // ---- queries -------------------------------------------------------------------------

  const REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

  function isLoki(panel, target) {
    const ds = (target && target.datasource) || panel.datasource;
    return !!ds && typeof ds === "object" && ds.type === "loki";
  }

  /** Runs a panel's targets: `[{refId, legendFormat, series: [{metric, values}]}]`. Instant
   * targets (and `instant` panels) give one value per series. */
  async function runTargets(panel, scoped, width, instantOnly) {
    const vars = Object.assign(builtins(width, panel), scoped);
    const range = S.timeRange(params);
    const targets = (panel.targets || []).filter((t) => !t.hide && (t.expr || t.query));
    return Promise.all(targets.map(async (target, index) => {
      const refId = target.refId || REF_IDS[index] || String(index);
      const expr = interpolate(target.expr || target.query, vars, null);
      const instant = instantOnly || target.instant === true || (target.format === "table" && target.range !== true);
      let step = vars.step;
      if (target.interval) {
        const min = S.parseDuration(interpolate(target.interval, vars, null));
        if (min > step) step = min;
      }
      step *= target.intervalFactor || 1;
      let data;
      if (isLoki(panel, target)) {
        const ns = (s) => String(Math.round(s * 1e9));
        data = instant
          ? await S.api("/loki/api/v1/query", { query: expr, time: ns(range.end) })
          : await S.api("/loki/api/v1/query_range", { query: expr, start: ns(range.start), end: ns(range.end), step: String(step) });
      } else {
        data = instant
          ? await S.api("/api/v1/query", { query: expr, time: String(range.end) })
          : await S.api("/api/v1/query_range", { query: expr, start: String(range.start), end: String(range.end), step: String(step) });
      }
      let series;
      if (data.resultType === "vector") series = data.result.map((s) => ({ metric: s.metric, values: [s.value] }));
      else if (data.resultType === "scalar") series = [{ metric: {}, values: [data.result] }];
      else if (data.resultType === "matrix") series = data.result;
      else series = [];
      return { refId, legendFormat: target.legendFormat, format: target.format, series };
    }));
  }

  /** A series' name: its legend format with `{{label}}` filled in, or its selector. */
  function displayName(frame, metric, config) {
    const format = frame.legendFormat;
    if (format && format !== "__auto") {
      return interpolate(format.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (m, name) => metric[name] !== undefined ? metric[name] : ""), {}, null);
    }
    if (config && config.displayName) return interpolate(config.displayName, {}, null);
    const name = S.seriesName(metric);
    return name === "{}" ? (frame.expr || "Value") : name;
  }

  /** fieldConfig.defaults with the overrides that match `name` applied. */
  function fieldConfig(panel, name, refId) {
    const config = JSON.parse(JSON.stringify((panel.fieldConfig && panel.fieldConfig.defaults) || {}));
    for (const override of (panel.fieldConfig && panel.fieldConfig.overrides) || []) {
      const matcher = override.matcher || {};
      let hit = false;
      if (matcher.id === "byName") hit = matcher.options === name;
      else if (matcher.id === "byRegexp") {
        const source = /^\/(.*)\/([a-z]*)$/.exec(matcher.options || "");
        try { hit = new RegExp(source ? source[1] : matcher.options, source ? source[2] : "").test(name); } catch (_) { hit = false; }
      } else if (matcher.id === "byFrameRefID") hit = matcher.options === refId;
      else if (matcher.id === "byType") hit = matcher.options === "number";
      if (!hit) continue;
      for (const property of override.properties || []) {
        const path = property.id.split(".");
        let target = config;
        for (const key of path.slice(0, -1)) target = target[key] = target[key] || {};
        target[path[path.length - 1]] = property.value;
      }
    }
    return config;
  }

  function reduce(values, calc) {
    const numbers = values.map((v) => Number(v[1])).filter((v) => !Number.isNaN(v));
    if (!numbers.length) return null;
    switch (calc) {
      case "mean": return numbers.reduce((a, b) => a + b, 0) / numbers.length;
      case "max": return Math.max(...numbers);
      case "min": return Math.min(...numbers);
      case "sum": return numbers.reduce((a, b) => a + b, 0);
      case "first": case "firstNotNull": return numbers[0];
      case "count": return numbers.length;
      default: return numbers[numbers.length - 1];
    }
  }

  // ---- panels --------------------------------------------------------------------------

  function renderTimeseries(body, panel, frames, size) {
    const series = [];
    const colors = [];
    const defaults = (panel.fieldConfig && panel.fieldConfig.defaults) || {};
    for (const frame of frames) {
      for (const s of frame.series) {
        const name = displayName(frame, s.metric, null);
        const config = fieldConfig(panel, name, frame.refId);
        const negative = config.custom && config.custom.transform === "negative-Y";
        const values = negative ? s.values.map(([t, v]) => [t, String(-Number(v))]) : s.values;
        series.push({ metric: { __name__: config.displayName ? interpolate(config.displayName, {}, null) : name }, values, unit: config.unit, decimals: config.decimals });
        colors.push(config.color && config.color.mode === "fixed" ? color(config.color.fixedColor) : null);
      }
    }
    const custom = defaults.custom || {};
    const legend = (panel.options && panel.options.legend) || {};
    const hidden = legend.showLegend === false || legend.displayMode === "hidden";
    const height = Math.max(size.height - (hidden ? 4 : 46), 80);
    const range = S.timeRange(params);
    const plot = S.drawGraph(body, series, {
      stacked: custom.stacking && custom.stacking.mode === "normal",
      colors: colors.map((c, i) => c || S.PALETTE[i % S.PALETTE.length]),
      label: (metric) => metric.__name__,
      legend: !hidden,
      width: size.width,
      height,
      xRange: [range.start, range.end],
      onZoom: zoomTo,
      format: (v) => formatUnit(v, defaults.unit, defaults.decimals),
      seriesFormat: (i) => (v) => formatUnit(v, series[i].unit || defaults.unit, series[i].decimals ?? defaults.decimals),
    });
    return plot;
  }

  /** One value per series: `[{name, value, config}]`, reduced as the panel asks. */
  function reducedValues(panel, frames) {
    const calc = (panel.options && panel.options.reduceOptions && panel.options.reduceOptions.calcs || ["lastNotNull"])[0];
    const out = [];
    for (const frame of frames) {
      for (const s of frame.series) {
        const name = displayName(frame, s.metric, null);
        const config = fieldConfig(panel, name, frame.refId);
        out.push({ name: config.displayName ? interpolate(config.displayName, {}, null) : name, value: reduce(s.values, calc), config });
      }
    }
    return out;
  }

  function renderStat(body, panel, frames) {
    const values = reducedValues(panel, frames);
    const colorMode = (panel.options && panel.options.colorMode) || "value";
    const tiles = values.length ? values : [{ name: "", value: null, config: fieldConfig(panel, "", "A") }];
    body.replaceChildren(S.el("div", { class: "stats" }, tiles.map((item) => {
      const text = formatUnit(item.value, item.config.unit, item.config.decimals);
      const c = thresholdColor(item.config, item.value);
      const style = colorMode === "background" && c ? "background:" + c + ";color:#fff" : c && colorMode !== "none" ? "color:" + c : "";
      return S.el("div", { class: "stat-tile", style },
        tiles.length > 1 ? S.el("small", { text: item.name }) : null,
        S.el("span", { class: "stat-big", text }));
    })));
  }

  function renderGauge(body, panel, frames) {
    const values = reducedValues(panel, frames);
    const tiles = values.length ? values : [{ name: "", value: null, config: fieldConfig(panel, "", "A") }];
    const svgNS = "http://www.w3.org/2000/svg";
    body.replaceChildren(S.el("div", { class: "stats" }, tiles.map((item) => {
      const unit = item.config.unit;
      const min = item.config.min ?? 0;
      const max = item.config.max ?? (unit === "percentunit" ? 1 : 100);
      const fraction = item.value === null ? 0 : Math.max(0, Math.min(1, (item.value - min) / (max - min || 1)));
      const c = thresholdColor(item.config, item.value) || "var(--accent)";
      const svg = document.createElementNS(svgNS, "svg");
      svg.setAttribute("viewBox", "0 0 100 60");
      svg.setAttribute("class", "gauge");
      const arc = (f, stroke, width) => {
        const angle = Math.PI * (1 - f);
        const path = document.createElementNS(svgNS, "path");
        path.setAttribute("d", "M 10 55 A 40 40 0 0 1 " + (50 + 40 * Math.cos(angle)).toFixed(2) + " " + (55 - 40 * Math.sin(angle)).toFixed(2));
        path.setAttribute("fill", "none");
        path.setAttribute("stroke", stroke);
        path.setAttribute("stroke-width", String(width));
        return path;
      };
      svg.append(arc(1, "var(--border)", 8));
      if (fraction > 0) svg.append(arc(fraction, c, 8));
      const label = document.createElementNS(svgNS, "text");
      label.setAttribute("x", "50"); label.setAttribute("y", "52"); label.setAttribute("text-anchor", "middle");
      label.setAttribute("class", "gauge-value");
      label.textContent = formatUnit(item.value, unit, item.config.decimals);
      svg.append(label);
      return S.el("div", { class: "stat-tile" }, tiles.length > 1 ? S.el("small", { text: item.name }) : null, svg);
    })));
  }

  function renderBarGauge(body, panel, frames) {
    const values = reducedValues(panel, frames);
    if (!values.length) { body.replaceChildren(S.el("p", { class: "empty", text: "No data" })); return; }
    body.replaceChildren(S.el("div", { class: "bargauge" }, values.map((item) => {
      const unit = item.config.unit;
      const min = item.config.min ?? 0;
      const max = item.config.max ?? Math.max(...values.map((v) => v.value || 0), unit === "percentunit" ? 1 : 0);
      const fraction = item.value === null ? 0 : Math.max(0, Math.min(1, (item.value - min) / (max - min || 1)));
      const c = thresholdColor(item.config, item.value) || "var(--accent)";
      return S.el("div", { class: "bar-row" },
        S.el("span", { class: "bar-name", text: item.name }),
        S.el("span", { class: "bar-track" }, S.el("span", { class: "bar-fill", style: "width:" + (fraction * 100).toFixed(1) + "%;background:" + c })),
        S.el("span", { class: "bar-value", text: formatUnit(item.value, unit, item.config.decimals) }));
    })));
  }

  /** Table rows from instant frames, merged by their labels as Grafana's merge and
   * joinByField do; columns `Time`, the labels, then `Value` (or `Value #<refId>`). */
  function tableOf(panel, frames) {
    const many = frames.length > 1;
    const columns = ["Time"];
    const labelColumns = new Set();
    const rows = new Map();
    for (const frame of frames) {
      const valueColumn = many ? "Value #" + frame.refId : "Value";
      if (!columns.includes(valueColumn)) columns.push(valueColumn);
      for (const s of frame.series) {
        const labels = Object.assign({}, s.metric);
        delete labels.__name__;
        if (s.metric.__name__ && !many) labels.__name__ = s.metric.__name__;
        Object.keys(labels).forEach((k) => labelColumns.add(k));
        const key = JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]));
        const row = rows.get(key) || Object.assign({}, labels);
        const last = s.values[s.values.length - 1];
        if (last) { row.Time = Number(last[0]) * 1000; row[valueColumn] = Number(last[1]); }
        rows.set(key, row);
      }
    }
    let names = ["Time"].concat(Array.from(labelColumns).sort(), columns.slice(1));
    let data = Array.from(rows.values());
    const renames = {};
    for (const transformation of panel.transformations || []) {
      const options = transformation.options || {};
      if (transformation.id === "organize") {
        const excluded = options.excludeByName || {};
        names = names.filter((n) => !excluded[n]);
        const index = options.indexByName || {};
        if (Object.keys(index).length) names.sort((a, b) => (index[a] ?? 1000) - (index[b] ?? 1000));
        Object.assign(renames, options.renameByName || {});
      } else if (transformation.id === "sortBy") {
        const sort = (options.sort || [])[0];
        if (sort && sort.field) {
          const field = Object.keys(renames).find((k) => renames[k] === sort.field) || sort.field;
          data.sort((a, b) => (a[field] > b[field] ? 1 : a[field] < b[field] ? -1 : 0) * (sort.desc ? -1 : 1));
        }
      } else if (transformation.id === "filterFieldsByName") {
        const include = (options.include && options.include.names) || null;
        if (include) names = names.filter((n) => include.includes(n));
      }
    }
    return { names, data, renames };
  }

  /** A data link's URL for one table cell: `${__value.raw}` is the cell, `${__data.fields.x}`
   * (or `${__data.fields["x"]}`) another column of its row, and dashboard variables as
   * elsewhere; every substituted value is URL-encoded. */
  function dataLink(url, row, value) {
    const filled = String(url || "")
      .replace(/\$\{__value\.(?:raw|text)\}/g, () => encodeURIComponent(String(value)))
      .replace(/\$\{__data\.fields(?:\.([\w]+)|\["([^"\]]+)"\])\}/g, (m, a, b) => encodeURIComponent(String(row[a || b] ?? "")));
    return interpolate(filled, {}, "percentencode");
  }

  function renderTable(body, panel, frames) {
    const table = tableOf(panel, frames);
    if (!table.data.length) { body.replaceChildren(S.el("p", { class: "empty", text: "No data" })); return; }
    const title = (name) => table.renames[name] || name;
    const configs = table.names.map((name) => fieldConfig(panel, title(name), ""));
    const cell = (row, name, i) => {
      const value = row[name];
      if (value === undefined) return S.el("td", {});
      if (name === "Time") return S.el("td", { text: new Date(value).toISOString() });
      const link = (configs[i].links || [])[0];
      const content = (text) => link ? S.el("a", { href: dataLink(link.url, row, value), title: link.title || undefined, text }) : text;
      if (typeof value === "number") {
        const c = thresholdColor(configs[i], value);
        const style = c && configs[i].custom && configs[i].custom.cellOptions && configs[i].custom.cellOptions.type === "color-text" ? "color:" + c : undefined;
        return S.el("td", { class: "num", style }, content(formatUnit(value, configs[i].unit, configs[i].decimals)));
      }
      return S.el("td", {}, content(String(value)));
    };
    body.replaceChildren(S.el("div", { class: "scroll" }, S.el("table", {},
      S.el("thead", {}, S.el("tr", {}, table.names.map((n, i) => S.el("th", { class: typeof table.data[0][n] === "number" && n !== "Time" ? "num" : undefined, text: configs[i].displayName || title(n) })))),
      S.el("tbody", {}, table.data.map((row) => S.el("tr", {}, table.names.map((n, i) => cell(row, n, i))))))));
  }

  /** A logs panel's lines: each Loki target's newest `maxLines` (100 by default) in the
   * range, merged newest first. */
  async function runLogs(panel, scoped, width) {
    const vars = Object.assign(builtins(width, panel), scoped);
    const range = S.timeRange(params);
    const ns = (s) => String(Math.round(s * 1e9));
    const targets = (panel.targets || []).filter((t) => !t.hide && (t.expr || t.query));
    const limit = Math.max(...targets.map((t) => Number(t.maxLines) || 100), 1);
    const answers = await Promise.all(targets.map((target) => S.api("/loki/api/v1/query_range", {
      query: interpolate(target.expr || target.query, vars, null),
      start: ns(range.start), end: ns(range.end), limit: String(Number(target.maxLines) || 100), direction: "backward",
    })));
    const entries = [];
    for (const data of answers) {
      if (data.resultType !== "streams") throw new Error("a logs panel needs a log query, not a metric query");
      for (const stream of data.result) for (const [ts, line] of stream.values) entries.push({ ts, line, labels: stream.stream });
    }
    const newerFirst = (a, b) => b.ts.length - a.ts.length || (b.ts > a.ts ? 1 : b.ts < a.ts ? -1 : 0);
    return entries.sort(newerFirst).slice(0, limit);
  }

  /** Log lines as Grafana's logs panel shows them: time, the stream's labels when
   * `showLabels`, the line; coloured by level; wrapped when `wrapLogMessage`. */
  function renderLogs(body, panel, entries) {
    if (!entries.length) { body.replaceChildren(S.el("p", { class: "empty", text: "No data" })); return; }
    const options = panel.options || {};
    body.replaceChildren(S.el("ol", { class: "loglines panel-logs" + (options.wrapLogMessage ? " wrap" : "") }, entries.map((entry) => {
      const level = S.logLevel(entry.labels, entry.line, S.logFields(entry.line));
      return S.el("li", { class: "logline" + (level ? " level-" + level : "") },
        S.el("div", { class: "row" },
          options.showTime === false ? null : S.el("time", { datetime: entry.ts, text: S.logTime(entry.ts) }),
          options.showLabels ? S.el("span", { class: "stream", text: S.seriesName(entry.labels) }) : null,
          S.el("span", { class: "text", text: entry.line })));
    })));
  }

  function renderText(body, panel) {
    const options = panel.options || {};
    const content = interpolate(options.content !== undefined ? options.content : panel.content || "", {}, null);
    // Markdown and HTML are shown as text: a dashboard file must never run script here.
    const text = (options.mode || panel.mode) === "html"
      ? new DOMParser().parseFromString(content, "text/html").body.textContent
      : content.replace(/^#+\s*/gm, "").replace(/\*\*([^*]+)\*\*/g, "$1");
    body.replaceChildren(...text.split(/\n{2,}/).map((p) => S.el("p", { text: p.trim() })));
  }

  /** Whether a panel needs one value per series only: tables, and stat, gauge and bar
   * gauge panels showing the last value (other reductions need the range). */
  function wantsInstant(panel) {
    if (panel.type === "timeseries" || panel.type === "graph") return false;
    if (panel.type === "table" || panel.type === "table-old") return false;
    const calcs = (panel.options && panel.options.reduceOptions && panel.options.reduceOptions.calcs) || ["lastNotNull"];
    return ["lastNotNull", "last"].includes(calcs[0]);
  }

  const RENDERERS = {
    timeseries: renderTimeseries, graph: renderTimeseries,
    stat: renderStat, singlestat: renderStat,
    gauge: renderGauge, bargauge: renderBarGauge,
    table: renderTable, "table-old": renderTable,
  };

  /** Runs and draws one panel; `size` is its body's, measured with the others' in one
   * layout pass so that drawing a panel never forces another. */
  async function renderPanel(element, panel, scoped, size, mine) {
    const body = element.querySelector(".panel-body");
    element.dataset.state = "loading";
    try {
      if (panel.type === "text") renderText(body, panel);
      else if (panel.type === "logs") {
        const entries = await runLogs(panel, scoped, size.width);
        if (mine !== generation) return;
        renderLogs(body, panel, entries);
      } else if (RENDERERS[panel.type]) {
        const frames = await runTargets(panel, scoped, size.width, wantsInstant(panel));
        await S.chartsReady();
        if (mine !== generation) return;
        RENDERERS[panel.type](body, panel, frames, size);
      } else {
        throw new Error("panel type " + JSON.stringify(panel.type) + " is not supported yet");
      }
      element.dataset.state = "done";
    } catch (error) {
      if (mine !== generation) return;
      element.dataset.state = "error";
      body.replaceChildren(S.el("p", { class: "panel-error", text: error.message || String(error) }));
      progress.errors.push({ panel: element.dataset.title, error: error.message || String(error) });
    } finally {
      if (mine === generation) {
        progress.done += 1;
        if (progress.done === progress.panels) finish();
      }
    }
  }

  function finish() {
    progress.finished = true;
    progress.finishedAt = performance.now();
    const errors = progress.errors.length;
    status.className = "query-status" + (errors ? " error" : "");
    status.textContent = progress.panels + " panels rendered, " + errors + " errors" +
      (errors ? ":\n" + progress.errors.map((e) => e.panel + ": " + e.error).join("\n") : "");
  }

  function panelElement(panel, scoped) {
    const title = interpolate(panel.title || "", scoped, null);
    const grid = panel.gridPos || { x: 0, y: 0, w: 12, h: 8 };
    return S.el("section", {
      class: "dash-panel panel-" + (panel.type || "unknown"),
      "data-title": title || "(untitled " + panel.type + ")",
      style: "grid-column:" + (grid.x + 1) + " / span " + Math.min(grid.w, 24 - grid.x) + ";grid-row:" + (grid.y + 1) + " / span " + grid.h,
      "aria-label": title || panel.type,
    },
      S.el("h3", { class: "panel-title", title: panel.description || undefined, text: title }),
      S.el("div", { class: "panel-body" }));
  }

  /** Panels with their repeats expanded: `[{panel, scoped}]`, repeated ones side by side. */
  function expandRepeats(panels) {
    const out = [];
    for (const panel of panels) {
      const variable = panel.repeat && variables.find((v) => v.name === panel.repeat);
      if (!variable) { out.push({ panel, scoped: {} }); continue; }
      const values = variableValues(variable);
      const grid = panel.gridPos || { x: 0, y: 0, w: 12, h: 8 };
      const perRow = panel.repeatDirection === "v" ? 1 : Math.max(1, Math.floor(24 / Math.max(panel.maxPerRow ? 24 / panel.maxPerRow : grid.w, 1)));
      const width = panel.repeatDirection === "v" ? grid.w : Math.floor(24 / Math.min(perRow, values.length || 1));
      values.forEach((value, i) => {
        const copy = Object.assign({}, panel, { gridPos: {
          x: panel.repeatDirection === "v" ? grid.x : (i % perRow) * width,
          y: grid.y + Math.floor(i / perRow) * grid.h + (panel.repeatDirection === "v" ? i * grid.h : 0),
          w: width, h: grid.h } });
        out.push({ panel: copy, scoped: { [variable.name]: value } });
      });
    }
    return out;
  }

  /** Sections of the dashboard: panels before the first row, then each row with its panels. */
  function sections() {
    const panels = (dashboard.panels || []).slice().sort((a, b) => ((a.gridPos || {}).y - (b.gridPos || {}).y) || ((a.gridPos || {}).x - (b.gridPos || {}).x));
    const out = [{ row: null, panels: [] }];
    for (const panel of panels) {
      if (panel.type === "row") out.push({ row: panel, panels: panel.collapsed ? (panel.panels || []).slice() : [] });
      else out[out.length - 1].panels.push(panel);
    }
    return out.filter((section) => section.row || section.panels.length);
  }

  function renderPanels() {
    const mine = ++generation;
    progress.panels = 0; progress.done = 0; progress.errors = []; progress.finished = false;
    status.className = "query-status";
    status.textContent = "Loading…";
    const work = [];
    const nodes = sections().map((section) => {
      const expanded = expandRepeats(section.panels);
      const top = Math.min(...expanded.map((p) => (p.panel.gridPos || {}).y || 0));
      const grid = S.el("div", { class: "dashboard-grid" });
      const renderSection = () => {
        for (const { panel, scoped } of expanded) {
          const copy = Object.assign({}, panel, { gridPos: Object.assign({}, panel.gridPos || { x: 0, y: 0, w: 12, h: 8 }) });
          copy.gridPos.y = (copy.gridPos.y || 0) - (Number.isFinite(top) ? top : 0);
          const element = panelElement(copy, scoped);
          grid.append(element);
          work.push({ element, panel: copy, scoped });
        }
      };
      if (!section.row) { renderSection(); return grid; }
      const title = interpolate(section.row.title || "", {}, null);
      const header = S.el("button", { type: "button", class: "row-toggle", "aria-expanded": section.row.collapsed ? "false" : "true", text: (section.row.collapsed ? "▸ " : "▾ ") + title });
      const wrapper = S.el("section", { class: "dash-row", "aria-label": title }, S.el("h2", {}, header), grid);
      let rendered = !section.row.collapsed;
      grid.hidden = !!section.row.collapsed;
      header.addEventListener("click", () => {
        const open = header.getAttribute("aria-expanded") !== "true";
        header.setAttribute("aria-expanded", String(open));
        header.textContent = (open ? "▾ " : "▸ ") + title;
        grid.hidden = !open;
        if (open && !rendered) {
          rendered = true;
          const before = work.length;
          renderSection();
          const added = work.splice(before);
          progress.panels += added.length;
          progress.finished = false;
          run(added);
        }
      });
      if (rendered) renderSection();
      return wrapper;
    });
    root.replaceChildren(...nodes);
    progress.panels = work.length;
    if (!work.length) finish();
    run(work);

    /** Measures every panel first (one layout), then starts them all. */
    function run(items) {
      const sizes = items.map(({ element }) => {
        const body = element.querySelector(".panel-body");
        return { width: body.clientWidth, height: body.clientHeight };
      });
      items.forEach(({ element, panel, scoped }, i) => renderPanel(element, panel, scoped, sizes[i], mine));
    }
  }

  function zoomTo(start, end) {
    S.zoomTo(params, start, end);
    picker.sync();
    S.saveParams(params, true);
    renderPanels();
  }

  function setRefresh(every) {
    if (refreshTimer) clearInterval(refreshTimer);
    refreshTimer = null;
    const seconds = S.parseDuration(every);
    if (seconds > 0) refreshTimer = setInterval(renderPanels, seconds * 1000);
  }

  /** Grafana's `from=now-6h&to=now` (and the dashboard's saved time) as our `range`. */
  function normalizeTime() {
    const from = params.get("from"), to = params.get("to");
    const saved = dashboard.time || {};
    const relative = (text) => /^now-(\w+)$/.exec(text || "");
    if (from && relative(from) && (!to || to === "now")) {
      params.set("range", relative(from)[1]); params.delete("from"); params.delete("to");
    } else if (!from && !params.get("range") && relative(saved.from) && (saved.to || "now") === "now") {
      params.set("range", relative(saved.from)[1]);
    }
  }

  let picker;
  async function start() {
    try {
      dashboard = JSON.parse(document.getElementById("dashboard-json").textContent);
    } catch (error) {
      status.className = "query-status error";
      status.textContent = "Cannot load the dashboard: " + error.message;
      progress.finished = true;
      return;
    }
    normalizeTime();
    picker = S.rangePicker(controls.querySelector("[data-range-picker]"), params, () => { S.saveParams(params, true); renderPanels(); });
    controls.refresh.value = params.get("refresh") || dashboard.refresh || "";
    controls.refresh.addEventListener("change", () => {
      if (controls.refresh.value) params.set("refresh", controls.refresh.value); else params.delete("refresh");
      S.saveParams(params, false);
      setRefresh(controls.refresh.value);
    });
    document.getElementById("reload").addEventListener("click", renderPanels);
    setRefresh(controls.refresh.value);
    await setUpVariables();
    renderPanels();
  }

  window.addEventListener("popstate", () => location.reload());
  start();
})();
