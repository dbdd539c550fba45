// After a refused form, put the keyboard (and a screen reader) on the first thing to fix: the
// first field marked invalid, else the form's own error box. A served file, not inline script,
// so the strict content security policy holds.
(function () {
  "use strict";
  var target = document.querySelector('[aria-invalid="true"]') ||
    document.querySelector(".form-errors[role=alert]");
  if (target) {
    target.focus();
  }
})();
