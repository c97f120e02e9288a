// Drehscheibe console: small progressive enhancements (no inline scripts;
// the Content-Security-Policy allows only files from the console itself).
(function () {
  "use strict";

  // <input type="checkbox" data-select-all="id"> ticks every checkbox
  // named "id" in the same form.
  function wireSelectAll(root) {
    root.querySelectorAll("input[data-select-all]").forEach(function (box) {
      if (box.dataset.wired) { return; }
      box.dataset.wired = "1";
      box.addEventListener("change", function () {
        var form = box.form;
        if (!form) { return; }
        var name = box.dataset.selectAll;
        form.querySelectorAll("input[type=checkbox]").forEach(function (other) {
          if (other.name === name && !other.disabled) { other.checked = box.checked; }
        });
      });
    });
  }

  // <form data-confirm="Text"> asks before it is sent. Listening in the
  // capture phase, a "no" stops the event before htmx sees it too.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm &&
        !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("DOMContentLoaded", function () { wireSelectAll(document); });
  document.addEventListener("htmx:afterSwap", function (event) { wireSelectAll(event.target); });
})();
