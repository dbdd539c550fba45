// Copy and print buttons of the new-recovery-codes page. Loaded with <script src> (the content
// security policy forbids inline scripts); without JavaScript the buttons stay hidden and the
// download link still works.
(function () {
  "use strict";
  var list = document.getElementById("recovery-codes");
  var status = document.getElementById("recovery-codes-status");
  if (!list) { return; }

  function say(text) { if (status) { status.textContent = text; } }

  function codesText() {
    var items = list.querySelectorAll("li");
    var lines = [];
    for (var i = 0; i < items.length; i++) { lines.push(items[i].textContent.trim()); }
    return lines.join("\n") + "\n";
  }

  function copy() {
    if (!navigator.clipboard) { say("Your browser cannot copy from here: select the codes instead."); return; }
    navigator.clipboard.writeText(codesText()).then(
      function () { say("Copied. Paste them into your password manager now."); },
      function () { say("Copying failed: select the codes and copy them yourself."); }
    );
  }

  var actions = { copy: copy, print: function () { window.print(); } };
  var buttons = document.querySelectorAll("[data-recovery-codes]");
  for (var i = 0; i < buttons.length; i++) {
    var action = actions[buttons[i].getAttribute("data-recovery-codes")];
    if (!action) { continue; }
    buttons[i].hidden = false;
    buttons[i].addEventListener("click", action);
  }
})();
