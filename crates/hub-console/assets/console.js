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
})();
