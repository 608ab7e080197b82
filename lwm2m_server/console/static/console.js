// lwm2m-server operator console, shared part: progress bar widths, confirmations, relative
// times, the server-sent events connection, JSON fetches; each page's script registers itself in
// lwm2mConsole.pages and runs when the page's body names it. No framework, no build, nothing
// fetched from anywhere but this server.
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

  const pages = {};
  window.lwm2mConsole = { prefix: prefix, SVG: SVG, setWidths: setWidths, flashCell: flashCell,
                          shown: shown, el: el, ago: ago, connect: connect, getJson: getJson,
                          pages: pages };

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
    if (body.dataset.device) pages.device(body.dataset.device);
    if (body.dataset.deployment) pages.deployment(body.dataset.deployment);
    if (body.dataset.liveList) pages.devicesList();
    if (body.dataset.newDeployment) pages.newDeployment();
    if (body.dataset.artifacts) pages.artifacts();
  });
})();
