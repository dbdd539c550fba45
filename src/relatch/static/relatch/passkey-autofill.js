/*
 * Relatch: passkeys in the sign-in page's username suggestions (WebAuthn conditional mediation).
 * Loaded with <script src> after webauthn.js (strict CSP, no inline script).
 *
 * Contract with signin/login.html:
 *   - the username field has autocomplete="username webauthn";
 *   - a hidden form id="passkey-autofill" posts to the passkey page (action), with the CSRF
 *     token, a hidden input name="credential", and data-options-url: where to POST for the
 *     request options (a fresh, single-use challenge kept in this browser's session).
 *
 * When the browser can show passkeys among its suggestions, this script asks for options and
 * starts navigator.credentials.get({mediation: "conditional"}); nothing appears on the page
 * until the person focuses the field. A passkey they choose is posted to the passkey page,
 * which checks it exactly as when they use that page. Anything going wrong here stays silent:
 * the password form works as before, and the passkey page says what went wrong when it does.
 */
(function () {
  "use strict";

  // The server forgets a challenge after 5 minutes (CHALLENGE_MAX_AGE): ask for a new one
  // before that, for a while, so a passkey chosen later still signs in.
  var RENEW_AFTER_MS = 4 * 60 * 1000;
  var RENEWALS = 15;

  function conditionalMediationAvailable() {
    var api = window.RelatchWebAuthn;
    var credential = window.PublicKeyCredential;
    if (!api || !api.supported() || !window.fetch || !window.AbortController ||
        typeof credential.isConditionalMediationAvailable !== "function") {
      return Promise.resolve(false);
    }
    return credential.isConditionalMediationAvailable();
  }

  function fetchOptions(form) {
    var token = form.querySelector("input[name=csrfmiddlewaretoken]");
    return window.fetch(form.getAttribute("data-options-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": token ? token.value : "", "Accept": "application/json" }
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("no passkey options: HTTP " + response.status);
      }
      return response.json();
    });
  }

  var current = null; // the running request: {controller, timer}

  function stop() {
    if (current) {
      window.clearTimeout(current.timer);
      current.controller.abort(); // its challenge is replaced by the next one, or expires
      current = null;
    }
  }

  function offer(form, renewalsLeft) {
    stop();
    var mine = { controller: new window.AbortController(), timer: null };
    current = mine;
    fetchOptions(form).then(function (json) {
      if (renewalsLeft > 0) {
        mine.timer = window.setTimeout(function () {
          offer(form, renewalsLeft - 1);
        }, RENEW_AFTER_MS);
      }
      return navigator.credentials.get({
        mediation: "conditional",
        publicKey: window.RelatchWebAuthn.requestOptions(json),
        signal: mine.controller.signal
      });
    }).then(function (credential) {
      window.clearTimeout(mine.timer);
      if (!credential || current !== mine) {
        return;
      }
      var input = form.querySelector("input[name=credential]");
      input.value = JSON.stringify(window.RelatchWebAuthn.authenticationJSON(credential));
      form.submit(); // the passkey page signs in, or shows why not with a way to try again
    }).catch(function () {
      // Cancelled, renewed, or not possible: the password form is still there, unchanged.
      window.clearTimeout(mine.timer);
    });
  }

  function start() {
    var form = document.getElementById("passkey-autofill");
    if (!form) {
      return;
    }
    conditionalMediationAvailable().then(function (available) {
      if (available) {
        offer(form, RENEWALS);
      }
    }).catch(function () {});
  }

  // Back to this page from the page cache: the old request may be gone, its challenge spent.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      start();
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
