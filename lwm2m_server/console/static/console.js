// lwm2m-server operator console: progress bar widths, confirmations, and live updates over
// server-sent events (device values and events, deployment targets). No framework, no build.
"use strict";

(function () {
  const prefix = "/console";

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
    const text = String(value);
    return text.length <= 200 ? text : text.slice(0, 197) + "...";
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

  // --- device page -----------------------------------------------------------------------
  function valueRow(path) {
    const body = document.querySelector("#values tbody");
    if (!body) return null;
    for (const row of body.rows) { if (row.dataset.row === path) return row; }
    const row = body.insertRow();
    row.dataset.row = path;
    const code = document.createElement("code");
    code.textContent = path;
    row.insertCell().appendChild(code);
    row.insertCell();
    const value = row.insertCell(); value.className = "value"; value.dataset.path = path;
    const time = row.insertCell(); time.className = "muted"; time.dataset.time = path;
    row.insertCell();
    const none = document.getElementById("no-values");
    if (none) none.remove();
    return row;
  }

  function showValues(values, when) {
    Object.keys(values || {}).forEach(function (path) {
      valueRow(path);
      document.querySelectorAll('[data-path="' + CSS.escape(path) + '"]').forEach(function (cell) {
        cell.textContent = shown(values[path]);
        flashCell(cell);
      });
      document.querySelectorAll('[data-time="' + CSS.escape(path) + '"]').forEach(function (cell) {
        cell.textContent = "just now";
        cell.title = when;
      });
    });
  }

  function addEvent(event) {
    const list = document.getElementById("events");
    if (!list) return;
    const none = document.getElementById("no-events");
    if (none) none.remove();
    const item = document.createElement("li");
    const time = document.createElement("span"); time.className = "ev-time";
    time.textContent = (event.time || "").slice(11, 19); time.title = event.time || "";
    const kind = document.createElement("span"); kind.className = "badge badge-kind";
    kind.textContent = event.kind;
    const data = document.createElement("span"); data.className = "ev-data";
    data.textContent = shown(JSON.stringify(event.data));
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
    const onValues = function (event) { showValues(event.data.values, event.time); addEvent(event); };
    const handlers = { notification: onValues, send: onValues };
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
  }

  // --- deployment page -------------------------------------------------------------------
  function recount() {
    const counts = {};
    let total = 0;
    document.querySelectorAll('#targets [data-field="state"]').forEach(function (el) {
      counts[el.textContent] = (counts[el.textContent] || 0) + 1;
      total += 1;
    });
    document.querySelectorAll("[data-count]").forEach(function (el) {
      el.textContent = counts[el.dataset.count] || 0;
    });
    const ok = counts.succeeded || 0, failed = counts.failed || 0;
    const done = ok + failed + (counts.cancelled || 0);
    const bar = document.getElementById("dep-progress");
    if (!bar || !total) return;
    bar.querySelector(".bar-ok").style.width = (100 * ok / total) + "%";
    bar.querySelector(".bar-fail").style.width = (100 * failed / total) + "%";
    bar.setAttribute("aria-valuenow", String(Math.round(100 * done / total)));
    const label = bar.nextElementSibling;
    if (label) label.textContent = Math.round(100 * done / total) + "% · " + done + "/" + total;
  }

  function deploymentPage(id) {
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
          field("progress").textContent = Math.round(100 * d.progress) + "%";
        }
        if ("result" in d) field("result").textContent = d.result === null ? "—" : String(d.result);
        if ("reason" in d) field("reason").textContent = d.reason || "";
        flashCell(row);
        recount();
      },
      deployment: function (event) {
        const d = event.data || {};
        if (String(d.deployment_id) !== id || !d.state) return;
        const badge = document.getElementById("dep-state");
        badge.textContent = d.state;
        badge.className = "badge state-" + d.state;
        // Buttons the token may press follow the state (data-when: the states that allow it).
        document.querySelectorAll("button[data-when]").forEach(function (button) {
          button.disabled = button.dataset.when.split(" ").indexOf(d.state) < 0;
        });
      },
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
    const body = document.body;
    if (body.dataset.device) devicePage(body.dataset.device);
    if (body.dataset.deployment) deploymentPage(body.dataset.deployment);
    if (body.dataset.liveList) devicesList();
  });
})();
