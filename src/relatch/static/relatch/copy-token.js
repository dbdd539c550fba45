// Copy buttons: the new-API-token page and a project page's install commands. Loaded with
// <script src> (the content security policy forbids inline scripts); without JavaScript the
// buttons stay hidden and the text can be selected by hand. Each button names the element whose
// text it copies in data-copy-target; #copy-status says what happened, in its data-copied text
// when copying worked.
(function () {
  "use strict";
  var status = document.getElementById("copy-status");
  var copied = (status && status.getAttribute("data-copied")) || "Copied.";

  function say(text) { if (status) { status.textContent = text; } }

  function copyFrom(targetId) {
    var target = document.getElementById(targetId);
    if (!target) { return; }
    if (!navigator.clipboard) { say("Your browser cannot copy from here: select the text instead."); return; }
    navigator.clipboard.writeText(target.textContent.trim()).then(
      function () { say(copied); },
      function () { say("Copying failed: select the text and copy it yourself."); }
    );
  }

  var buttons = document.querySelectorAll("[data-copy-target]");
  for (var i = 0; i < buttons.length; i++) {
    var targetId = buttons[i].getAttribute("data-copy-target");
    buttons[i].hidden = false;
    buttons[i].addEventListener("click", copyFrom.bind(null, targetId));
  }
})();
