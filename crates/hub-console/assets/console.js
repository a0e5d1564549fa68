// Integration Hub console: the little that is not htmx. Copy buttons, and a
// record of script errors (browser tests assert that there are none).
(function () {
  "use strict";
  window.consoleErrors = [];
  window.addEventListener("error", function (e) { window.consoleErrors.push(String(e.message)); });
  document.addEventListener("securitypolicyviolation", function (e) {
    window.consoleErrors.push("CSP: " + e.violatedDirective + " " + e.blockedURI);
  });
  document.addEventListener("htmx:responseError", function (e) {
    window.consoleErrors.push("htmx: " + e.detail.xhr.status + " " + e.detail.pathInfo.requestPath);
  });
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-copy]");
    if (!b) { return; }
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (!el) { return; }
    var text = el.value !== undefined ? el.value : el.textContent;
    var done = function () { b.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(el); done(); });
    } else { fallback(el); done(); }
  });
  function fallback(el) {
    if (el.select) { el.select(); } else {
      var r = document.createRange(); r.selectNodeContents(el);
      var s = window.getSelection(); s.removeAllRanges(); s.addRange(r);
    }
    try { document.execCommand("copy"); } catch (_) { /* the text stays selected */ }
  }
  // A confirmation before destructive forms (data-confirm), without inline script.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    var msg = f.getAttribute && f.getAttribute("data-confirm");
    if (msg && !f.hasAttribute("data-confirmed")) {
      var box = f.querySelector(".confirm");
      if (box && box.hidden) { e.preventDefault(); box.hidden = false; var c = box.querySelector("button"); if (c) { c.focus(); } }
    }
  }, true);
  // Transformation Builder: removing a rule row (focus moves to its
  // neighbour), a new row's first field focused, a sample read from a file
  // in the browser, and the sample kept in this tab across a save (it is not
  // part of the template).
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-remove-rule]");
    if (!b) { return; }
    var row = b.closest("fieldset.rule");
    if (!row) { return; }
    var next = row.nextElementSibling || row.previousElementSibling;
    row.remove();
    var focus = next ? next.querySelector("select, input") : document.getElementById("add-rule");
    if (focus) { focus.focus(); }
    document.body.dispatchEvent(new CustomEvent("rules-changed", { bubbles: true }));
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    var d = e.detail;
    if (d.target && d.target.id === "rules" && d.requestConfig && d.requestConfig.elt && d.requestConfig.elt.id === "add-rule") {
      var rows = d.target.querySelectorAll("fieldset.rule");
      var input = rows.length ? rows[rows.length - 1].querySelector(".rule-input") : null;
      if (input) { input.focus(); }
    }
  });
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input.matches || !input.matches("[data-sample-file]")) { return; }
    var file = input.files && input.files[0];
    var status = document.getElementById(input.id + "-status");
    var area = document.getElementById(input.getAttribute("data-sample-file"));
    if (!file || !area) { return; }
    var max = parseInt(input.getAttribute("data-max-bytes"), 10);
    if (file.size > max) {
      status.textContent = file.name + " is larger than " + Math.round(max / 1024) + " KiB: choose a smaller sample.";
      return;
    }
    file.text().then(function (text) {
      area.value = text;
      status.textContent = "Read " + file.name + " (" + file.size + " bytes).";
      area.dispatchEvent(new Event("input", { bubbles: true }));
    }, function () { status.textContent = "Could not read " + file.name + "."; });
  });
  var SAMPLE = "hub-console-sample:";
  document.addEventListener("submit", function (e) {
    var area = document.getElementById("sample");
    var builder = document.getElementById("builder");
    if (!area || !builder) { return; }
    var code = e.target.querySelector("[name=code]");
    var key = (code && code.value.trim()) || builder.getAttribute("data-sample-key");
    try { window.sessionStorage.setItem(SAMPLE + key, area.value); } catch (_) { /* no storage: the sample is typed again */ }
  });
  (function () {
    var area = document.getElementById("sample");
    var builder = document.getElementById("builder");
    if (!area || !builder || area.value) { return; }
    try {
      var kept = window.sessionStorage.getItem(SAMPLE + builder.getAttribute("data-sample-key"));
      if (kept) { area.value = kept; }
    } catch (_) { /* no storage */ }
  })();
})();
