// lwm2m-server console, deployments: the live page of one deployment (targets, stage, final
// state, retry) and the new-deployment form's live target count.
"use strict";

(function () {
  const C = window.lwm2mConsole;
  const prefix = C.prefix, flashCell = C.flashCell, connect = C.connect, getJson = C.getJson;

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


  C.pages.deployment = deploymentPage;
  C.pages.newDeployment = newDeployment;
})();
