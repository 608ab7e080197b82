// lwm2m-server console, device pages: values with their time and source, live notifications
// and Send, charts of numeric values (inline SVG), and the devices list following registrations.
"use strict";

(function () {
  const C = window.lwm2mConsole;
  const prefix = C.prefix, SVG = C.SVG, flashCell = C.flashCell, shown = C.shown, el = C.el,
    ago = C.ago, connect = C.connect, getJson = C.getJson;

  // --- device page: values with time and source, charts ------------------------------------
  function valueRow(path) {
    const body = document.querySelector("#values tbody");
    if (!body) return null;
    for (const row of body.rows) { if (row.dataset.row === path) return row; }
    const row = body.insertRow();
    row.dataset.row = path;
    row.insertCell().appendChild(el("code", "", path));
    row.insertCell();
    const value = row.insertCell(); value.className = "value"; value.dataset.path = path;
    const when = el("span", "when"); when.dataset.when = path;
    row.insertCell().appendChild(when);
    row.insertCell();
    const none = document.getElementById("no-values");
    if (none) none.remove();
    return row;
  }

  function showWhen(path, time, source) {
    document.querySelectorAll('[data-when="' + CSS.escape(path) + '"]').forEach(function (span) {
      const t = el("time", "", ago(time));
      t.setAttribute("datetime", time); t.title = time;
      span.replaceChildren(el("span", "src src-" + source, source), " ", t);
    });
  }

  function showValue(path, value, time, source, highlight) {
    valueRow(path);
    document.querySelectorAll('[data-path="' + CSS.escape(path) + '"]').forEach(function (cell) {
      const text = shown(value);
      if (cell.textContent !== text) {
        cell.textContent = text;
        if (highlight) flashCell(cell);
      }
    });
    showWhen(path, time, source);
  }

  const series = {};

  function drawCharts() {
    const box = document.getElementById("charts");
    if (!box) return;
    // A chart needs a change to show: values seen once (a read) stay in the tables only.
    const varies = function (p) { return series[p].some(function (pt) { return pt[1] !== series[p][0][1]; }); };
    const paths = Object.keys(series).filter(function (p) { return series[p].length > 1; }).sort(function (a, b) {
      return (varies(b) - varies(a)) || (a < b ? -1 : a > b ? 1 : 0); // values that move first
    });
    const none = document.getElementById("no-charts");
    if (none) none.hidden = paths.length > 0;
    paths.forEach(function (path) {
      let fig = box.querySelector('figure[data-chart="' + CSS.escape(path) + '"]');
      if (!fig) {
        fig = el("figure", "chart");
        fig.dataset.chart = path;
        const cap = el("figcaption");
        cap.append(el("code", "", path), " ", el("span", "chart-name"), " ", el("b", "chart-last"));
        fig.append(cap);
        const svg = document.createElementNS(SVG, "svg");
        svg.setAttribute("viewBox", "0 0 320 100");
        svg.setAttribute("role", "img");
        fig.append(svg);
      }
      box.append(fig); // (re)placed in sorted order
      const pts = series[path];
      const names = window.__valueNames || {};
      fig.querySelector(".chart-name").textContent = names[path] || "";
      fig.querySelector(".chart-last").textContent = shown(pts[pts.length - 1][1]);
      fig.dataset.points = String(pts.length);
      const svg = fig.querySelector("svg");
      const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
      let lo = Math.min.apply(null, pts.map(function (p) { return p[1]; }));
      let hi = Math.max.apply(null, pts.map(function (p) { return p[1]; }));
      if (hi === lo) { hi += 1; lo -= 1; }
      const x = function (t) { return t1 === t0 ? 310 : 40 + 270 * (t - t0) / (t1 - t0); };
      const y = function (v) { return 85 - 75 * (v - lo) / (hi - lo); };
      const coords = pts.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); });
      svg.replaceChildren();
      const axis = document.createElementNS(SVG, "path");
      axis.setAttribute("d", "M40 10 V85 H310");
      axis.setAttribute("class", "axis");
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", coords.join(" "));
      line.setAttribute("class", "line");
      svg.append(axis, line);
      pts.forEach(function (p) {
        const dot = document.createElementNS(SVG, "circle");
        dot.setAttribute("cx", x(p[0]).toFixed(1)); dot.setAttribute("cy", y(p[1]).toFixed(1));
        dot.setAttribute("r", "2.2"); dot.setAttribute("class", "dot");
        svg.append(dot);
      });
      [[hi, 14], [lo, 88]].forEach(function (label) {
        const text = document.createElementNS(SVG, "text");
        text.setAttribute("x", "36"); text.setAttribute("y", String(label[1]));
        text.setAttribute("class", "tick");
        text.textContent = shown(+label[0].toPrecision(4));
        svg.append(text);
      });
      const span = document.createElementNS(SVG, "text");
      span.setAttribute("x", "310"); span.setAttribute("y", "98"); span.setAttribute("class", "tick end");
      span.textContent = pts.length + " values over " + Math.round(t1 - t0) + " s";
      svg.append(span);
      svg.setAttribute("aria-label", path + ": " + pts.length + " values from " + lo + " to " + hi);
    });
  }

  function addPoints(values, time) {
    const t = Date.parse(time) / 1000;
    Object.keys(values || {}).forEach(function (path) {
      const v = values[path];
      if (typeof v !== "number" || !isFinite(v)) return;
      const pts = series[path] || (series[path] = []);
      if (pts.length && pts[pts.length - 1][0] >= t) return;
      pts.push([t, v]);
      if (pts.length > 240) pts.shift();
    });
    drawCharts();
  }

  async function refreshValues(endpoint) {
    let data;
    try {
      data = await getJson(prefix + "/devices/" + encodeURIComponent(endpoint) + "/values.json");
    } catch (e) { return; }
    const names = {};
    Object.keys(data.values).forEach(function (path) {
      const v = data.values[path];
      names[path] = v.name;
      showValue(path, v.value, v.time, v.source, true);
    });
    window.__valueNames = names;
    Object.keys(data.series).forEach(function (path) { series[path] = data.series[path]; });
    drawCharts();
  }

  function addEvent(event) {
    const list = document.getElementById("events");
    if (!list) return;
    const none = document.getElementById("no-events");
    if (none) none.remove();
    const item = document.createElement("li");
    const time = el("span", "ev-time", (event.time || "").slice(11, 19));
    time.title = event.time || "";
    const kind = el("span", "badge badge-kind", event.kind);
    const data = el("span", "ev-data", shown(JSON.stringify(event.data)));
    item.append(time, " ", kind, " ", data);
    list.prepend(item);
    while (list.children.length > 50) list.lastElementChild.remove();
  }

  function setStatus(online) {
    const badge = document.getElementById("device-status");
    if (!badge) return;
    badge.textContent = online ? "online" : "offline";
    badge.className = "badge " + (online ? "badge-ok" : "badge-off");
  }

  function devicePage(endpoint) {
    const onValues = function (source) {
      return function (event) {
        const values = event.data.values || {};
        Object.keys(values).forEach(function (path) {
          showValue(path, values[path], event.time, source, true);
        });
        addPoints(values, event.time);
        addEvent(event);
      };
    };
    const handlers = { notification: onValues("notification"), send: onValues("send") };
    ["registered", "updated"].forEach(function (k) {
      handlers[k] = function (event) { setStatus(true); addEvent(event); };
    });
    ["deregistered", "expired"].forEach(function (k) {
      handlers[k] = function (event) { setStatus(false); addEvent(event); };
    });
    ["request", "notification_error", "queued_request_done", "deployment_target"].forEach(function (k) {
      handlers[k] = addEvent;
    });
    connect({ endpoint: endpoint }, handlers);
    // Reads made elsewhere (REST, CLI, the server's own) publish no event: look every few
    // seconds, so no value stays stale on an open page; times age in place meanwhile.
    refreshValues(endpoint);
    setInterval(function () { if (!document.hidden) refreshValues(endpoint); }, 4000);
  }


  // --- devices list: status and last seen follow registrations ------------------------------
  function devicesList() {
    const onChange = function (online) {
      return function (event) {
        const row = document.querySelector('#devices tr[data-endpoint="' + CSS.escape(event.endpoint || "") + '"]');
        if (!row) {
          if (online) document.getElementById("new-devices").hidden = false;
          return;
        }
        const status = row.querySelector('[data-field="status"]');
        status.textContent = online ? "online" : "offline";
        status.className = "badge " + (online ? "badge-ok" : "badge-off");
        const seen = row.querySelector('[data-field="seen"]');
        seen.textContent = online ? "just now" : seen.textContent;
        flashCell(row);
      };
    };
    connect({ kind: "registered,updated,deregistered,expired" }, {
      registered: onChange(true), updated: onChange(true),
      deregistered: onChange(false), expired: onChange(false),
    });
  }


  C.pages.device = devicePage;
  C.pages.devicesList = devicesList;
})();
