// lwm2m-server operator console: progress bar widths, confirmations, live updates over
// server-sent events (device values, deployment targets), value charts (inline SVG), the
// new-deployment target count, and artifact uploads with progress. No framework, no build,
// nothing fetched from anywhere but this server.
"use strict";

(function () {
  const prefix = "/console";
  const SVG = "http://www.w3.org/2000/svg";

  function setWidths(root) {
    root.querySelectorAll("[data-w]").forEach(function (el) { el.style.width = el.dataset.w; });
  }

  function flashCell(el) {
    el.classList.remove("changed");
    void el.offsetWidth; // restart the animation
    el.classList.add("changed");
  }

  function shown(value) {
    if (typeof value === "boolean") return value ? "true" : "false";
    if (value === null || value === undefined) return "";
    if (typeof value === "number" && !Number.isInteger(value)) return String(parseFloat(value.toPrecision(7)));
    const text = String(value);
    return text.length <= 200 ? text : text.slice(0, 197) + "...";
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function ago(iso) {
    const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
    if (!isFinite(seconds)) return "";
    if (seconds < 2) return "just now";
    const units = [["d", 86400], ["h", 3600], ["min", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(seconds) >= size) return Math.floor(seconds / size) + " " + unit + " ago";
    }
    return seconds + " s ago";
  }

  function connect(query, handlers) {
    if (!window.EventSource) return null;
    const live = document.getElementById("live");
    const source = new EventSource(prefix + "/events?" + new URLSearchParams(query).toString());
    source.onopen = function () { if (live) live.hidden = false; };
    source.onerror = function () { if (live) live.hidden = true; };
    Object.keys(handlers).forEach(function (kind) {
      source.addEventListener(kind, function (msg) {
        let event;
        try { event = JSON.parse(msg.data); } catch (e) { return; }
        handlers[kind](event);
      });
    });
    window.addEventListener("pagehide", function () { source.close(); });
    return source;
  }

  async function getJson(url) {
    const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const type = answer.headers.get("content-type") || "";
    if (!answer.ok || type.indexOf("application/json") < 0) throw new Error("HTTP " + answer.status);
    return answer.json();
  }

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
    const paths = Object.keys(series).filter(function (p) { return series[p].length > 1; }).sort();
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
        box.append(fig);
      }
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

  // --- deployment page -------------------------------------------------------------------
  const FINAL = ["completed", "completed_with_failures", "cancelled"];

  function finalSummary(state, c) {
    if (FINAL.indexOf(state) < 0) return null;
    if (state === "cancelled") {
      return ["off", "Cancelled", c.ok + " of " + c.total + " succeeded before the cancel, " +
              c.cancelled + " cancelled, " + c.failed + " failed."];
    }
    if (c.failed) {
      return ["warn", "Finished with failures", c.failed + " of " + c.total + " targets failed, " +
              c.ok + " succeeded. Retry the failed targets, or look at their reasons below."];
    }
    return ["ok", "Completed", "All " + c.ok + " targets succeeded."];
  }

  function recount() {
    const counts = {};
    let total = 0;
    document.querySelectorAll('#targets [data-field="state"]').forEach(function (cell) {
      counts[cell.textContent] = (counts[cell.textContent] || 0) + 1;
      total += 1;
    });
    document.querySelectorAll("[data-count]").forEach(function (cell) {
      cell.textContent = counts[cell.dataset.count] || 0;
    });
    const c = { ok: counts.succeeded || 0, failed: counts.failed || 0,
                cancelled: counts.cancelled || 0, total: total };
    const done = c.ok + c.failed + c.cancelled;
    const bar = document.getElementById("dep-progress");
    if (!bar || !total) return c;
    bar.querySelector(".bar-ok").style.width = (100 * c.ok / total) + "%";
    bar.querySelector(".bar-fail").style.width = (100 * c.failed / total) + "%";
    bar.querySelector(".bar-cancel").style.width = (100 * c.cancelled / total) + "%";
    bar.setAttribute("aria-valuenow", String(Math.round(100 * done / total)));
    bar.setAttribute("aria-valuetext", done + " of " + total + " targets finished: " + c.ok +
                     " succeeded, " + c.failed + " failed, " + c.cancelled + " cancelled");
    const label = bar.nextElementSibling;
    if (label) {
      label.textContent = c.ok + " ok" + (c.failed ? " · " + c.failed + " failed" : "") +
        (c.cancelled ? " · " + c.cancelled + " cancelled" : "") + " · " + done + "/" + total + " finished";
    }
    return c;
  }

  function showFinal(state) {
    const c = recount();
    const box = document.getElementById("dep-final");
    const summary = finalSummary(state, c);
    if (box) {
      box.hidden = !summary;
      if (summary) {
        box.className = "final final-" + summary[0];
        box.querySelector('[data-field="title"]').textContent = summary[1];
        box.querySelector('[data-field="text"]').textContent = summary[2];
      }
    }
    markState(state, c.failed);
    const retry = document.getElementById("retry-box");
    if (retry) retry.hidden = !(c.failed > 0 && state !== "cancelled");
  }

  // A deployment that completed with failed targets says so in its badge too (servers that
  // have the completed_with_failures state send it; older ones say completed).
  function markState(state, failed) {
    const badge = document.getElementById("dep-state");
    if (!badge) return;
    const shownState = state === "completed" && failed ? "completed_with_failures" : state;
    badge.textContent = shownState.replace(/_/g, " ");
    badge.className = "badge state-" + shownState;
  }

  function deploymentPage(id) {
    const stages = (document.body.dataset.stages || "100").split(",");
    let state = document.getElementById("dep-state").dataset.state;
    connect({ kind: "deployment_target,deployment" }, {
      deployment_target: function (event) {
        const d = event.data || {};
        if (String(d.deployment_id) !== id) return;
        const row = document.querySelector('#targets tr[data-target="' + CSS.escape(event.endpoint || "") + '"]');
        if (!row) return;
        const field = function (name) { return row.querySelector('[data-field="' + name + '"]'); };
        if (d.state) { field("state").textContent = d.state; field("state").className = "badge state-" + d.state; }
        if (typeof d.progress === "number") {
          field("bar").style.width = (100 * d.progress) + "%";
          field("bar").parentElement.setAttribute("aria-valuenow", String(Math.round(100 * d.progress)));
          field("progress").textContent = Math.round(100 * d.progress) + "%";
        }
        if ("result" in d) field("result").textContent = d.result === null ? "—" : String(d.result);
        if ("reason" in d) field("reason").textContent = d.reason || "";
        if ("attempt" in d) field("attempt").textContent = String(d.attempt);
        if (d.method) field("method").textContent = d.method;
        flashCell(row);
        showFinal(state);
      },
      deployment: function (event) {
        const d = event.data || {};
        if (String(d.deployment_id) !== id || !d.state) return;
        state = d.state;
        const reason = document.getElementById("dep-reason");
        if (reason && "reason" in d) { reason.textContent = d.reason || ""; reason.hidden = !d.reason; }
        if (typeof d.current_stage === "number") {
          const stage = document.querySelector('#dep-stage [data-field="stage"]');
          const percent = document.querySelector('#dep-stage [data-field="percent"]');
          stage.textContent = String(d.current_stage + 1);
          percent.textContent = stages[Math.min(d.current_stage, stages.length - 1)];
          flashCell(stage.parentElement);
        }
        // Buttons the token may press follow the state (data-when: the states that allow it).
        document.querySelectorAll("button[data-when]").forEach(function (button) {
          button.disabled = button.dataset.when.split(" ").indexOf(d.state) < 0;
        });
        showFinal(state);
      },
    });
  }

  // --- new deployment: targets by tag or endpoints, with a live count ----------------------
  function newDeployment() {
    const form = document.getElementById("deployment-form");
    if (!form) return;
    const out = document.getElementById("target-count");
    let timer = null, asked = 0;
    const mode = function () { return form.querySelector('input[name="target_mode"]:checked').value; };
    const count = async function () {
      const query = new URLSearchParams();
      if (mode() === "tag") {
        if (!form.tag.value) { out.textContent = "Choose a tag to see how many devices match."; return; }
        query.set("tag", form.tag.value);
      } else {
        if (!form.endpoints.value.trim()) { out.textContent = "List endpoints to see how many are known."; return; }
        query.set("endpoints", form.endpoints.value);
      }
      const mine = ++asked;
      try {
        const c = await getJson(prefix + "/deployments/targets?" + query.toString());
        if (mine !== asked) return; // the operator changed the targets meanwhile
        let text = c.count + " device" + (c.count === 1 ? "" : "s") + " targeted: " +
          c.registered + " registered, " + c.online + " online";
        if (c.unknown.length) text += "; not registered: " + c.unknown.join(", ") + (c.count - c.registered > c.unknown.length ? ", …" : "");
        out.textContent = text;
        out.dataset.count = String(c.count);
      } catch (e) { out.textContent = "Could not count the targets (" + e.message + ")."; }
    };
    const later = function () { asked++; clearTimeout(timer); timer = setTimeout(count, 250); };
    const show = function () {
      form.querySelectorAll("[data-mode]").forEach(function (box) { box.hidden = box.dataset.mode !== mode(); });
      form.tag.required = mode() === "tag";
      form.endpoints.required = mode() === "endpoints";
      later();
    };
    form.querySelectorAll('input[name="target_mode"]').forEach(function (r) { r.addEventListener("change", show); });
    form.tag.addEventListener("change", later);
    form.endpoints.addEventListener("input", later);
    show();
  }

  // --- artifacts: upload with progress, the server's verdict, then accept or discard --------
  function artifactsPage() {
    const form = document.getElementById("upload-form");
    if (!form) return;
    const progress = document.getElementById("upload-progress");
    const bar = progress.querySelector(".progress");
    const percent = document.getElementById("upload-percent");
    const verdict = document.getElementById("verdict");
    const title = document.getElementById("verdict-title");
    const checks = document.getElementById("verdict-checks");
    const actions = document.getElementById("verdict-actions");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      progress.hidden = false; verdict.hidden = true;
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      xhr.upload.onprogress = function (ev) {
        if (!ev.lengthComputable) return;
        const p = Math.round(100 * ev.loaded / ev.total);
        bar.querySelector(".bar-info").style.width = p + "%";
        bar.setAttribute("aria-valuenow", String(p));
        percent.textContent = p + "% of " + ev.total + " bytes sent";
      };
      xhr.onload = function () {
        submit.disabled = false;
        bar.querySelector(".bar-info").style.width = "100%";
        bar.setAttribute("aria-valuenow", "100");
        percent.textContent = "100% sent; the server checked it";
        let answer;
        try { answer = JSON.parse(xhr.responseText); } catch (err) {
          answer = { ok: false, error: "HTTP " + xhr.status + ": the server refused the upload (signed out? reload the page)" };
        }
        verdict.hidden = false;
        checks.replaceChildren();
        if (!answer.ok) {
          verdict.className = "verdict verdict-bad";
          title.textContent = "Refused: " + answer.error;
          actions.hidden = true;
          return;
        }
        verdict.className = "verdict verdict-ok";
        title.textContent = "Checks passed: " + answer.kind + " " + answer.name + " " + answer.version;
        answer.checks.forEach(function (line) {
          checks.append(el("dt", "", line[0]), el("dd", "", line[1]));
        });
        actions.querySelectorAll('input[name="token"]').forEach(function (input) { input.value = answer.token; });
        actions.hidden = false;
        document.getElementById("confirm-upload").focus();
      };
      xhr.onerror = function () {
        submit.disabled = false;
        verdict.hidden = false;
        verdict.className = "verdict verdict-bad";
        title.textContent = "The upload did not reach the server.";
        actions.hidden = true;
      };
      xhr.send(new FormData(form));
    });
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

  document.addEventListener("DOMContentLoaded", function () {
    setWidths(document);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.dataset.confirm)) e.preventDefault();
      });
    });
    // Relative times age in place ("5 s ago" stays true on an open page).
    setInterval(function () {
      document.querySelectorAll("time[datetime]").forEach(function (t) { t.textContent = ago(t.getAttribute("datetime")); });
    }, 5000);
    const body = document.body;
    if (body.dataset.device) devicePage(body.dataset.device);
    if (body.dataset.deployment) deploymentPage(body.dataset.deployment);
    if (body.dataset.liveList) devicesList();
    if (body.dataset.newDeployment) newDeployment();
    if (body.dataset.artifacts) artifactsPage();
  });
})();
