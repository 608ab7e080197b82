// lwm2m-server console, artifacts: upload with progress, the server's verdict, then accept or
// discard.
"use strict";

(function () {
  const C = window.lwm2mConsole;
  const el = C.el;

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


  C.pages.artifacts = artifactsPage;
})();
