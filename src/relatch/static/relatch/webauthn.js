/*
 * Relatch: the browser's half of security keys (WebAuthn). Loaded with <script src> (strict CSP,
 * no inline script).
 *
 * Contract with the pages:
 *   - a form with data-webauthn="register" or data-webauthn="authenticate" holds a hidden
 *     input name="credential";
 *   - the options made by the server are in <script type="application/json"
 *     id="webauthn-options"> (Django's json_script), with binary values in base64url;
 *   - on submit this script calls navigator.credentials.create() or .get(), writes the answer
 *     as JSON (the shape of PublicKeyCredential.toJSON()) into the hidden input and submits;
 *   - problems are written into the element with id="webauthn-error" (role="alert").
 */
(function () {
  "use strict";

  var MESSAGES = {
    NotAllowedError: "The request was cancelled or timed out. Try again.",
    AbortError: "The request was cancelled. Try again.",
    InvalidStateError: {
      register: "This security key is already registered to your account. Use another key.",
      authenticate: "This security key cannot be used here. Try another key."
    },
    SecurityError: "Your browser refused to use security keys on this site. They need a secure " +
      "site reached by its name (HTTPS, or localhost).",
    NotSupportedError: "This security key does not support what Relatch needs. Try another key.",
    ConstraintError: "This security key cannot do what Relatch asks (for example a PIN). " +
      "Try another key."
  };
  var UNSUPPORTED = "This browser does not support security keys. Try another browser, or " +
    "another way to sign in.";
  var NO_OPTIONS = "The page is missing its security key request. Reload the page and try again.";
  var FAILED = "The security key did not answer. Try again.";

  // --- base64url <-> ArrayBuffer --------------------------------------------------------------

  function base64urlToBuffer(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = window.atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function bufferToBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i += 1) {
      binary += String.fromCharCode(bytes[i]);
    }
    return window.btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // --- options from the server (JSON) to what the WebAuthn API takes ------------------------

  function descriptors(list) {
    return (list || []).map(function (item) {
      var descriptor = { type: item.type, id: base64urlToBuffer(item.id) };
      if (item.transports) {
        descriptor.transports = item.transports;
      }
      return descriptor;
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = base64urlToBuffer(json.challenge);
    options.user = Object.assign({}, json.user, { id: base64urlToBuffer(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = base64urlToBuffer(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  // --- the browser's answer to JSON (as PublicKeyCredential.toJSON() gives it) ----------------

  function extensionResults(credential) {
    var results = credential.getClientExtensionResults ? credential.getClientExtensionResults() : {};
    var safe = {};
    // Only the results Relatch asks for, and only JSON-safe ones.
    if (results && results.credProps && typeof results.credProps.rk === "boolean") {
      safe.credProps = { rk: results.credProps.rk };
    }
    return safe;
  }

  function registrationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: bufferToBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: extensionResults(credential),
      response: {
        clientDataJSON: bufferToBase64url(response.clientDataJSON),
        attestationObject: bufferToBase64url(response.attestationObject),
        transports: typeof response.getTransports === "function" ? response.getTransports() : []
      }
    };
  }

  function authenticationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: bufferToBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: extensionResults(credential),
      response: {
        clientDataJSON: bufferToBase64url(response.clientDataJSON),
        authenticatorData: bufferToBase64url(response.authenticatorData),
        signature: bufferToBase64url(response.signature),
        userHandle: response.userHandle ? bufferToBase64url(response.userHandle) : null
      }
    };
  }

  // --- the page ---------------------------------------------------------------------------------

  function showError(message) {
    var box = document.getElementById("webauthn-error");
    if (!box) {
      window.alert(message);
      return;
    }
    box.textContent = "";
    var paragraph = document.createElement("p");
    paragraph.textContent = message;
    box.appendChild(paragraph);
    box.hidden = false;
  }

  function clearError() {
    var box = document.getElementById("webauthn-error");
    if (box) {
      box.textContent = "";
      box.hidden = true;
    }
  }

  function messageFor(error, mode) {
    var known = error && MESSAGES[error.name];
    if (known && typeof known === "object") {
      return known[mode];
    }
    return known || FAILED;
  }

  function readOptions() {
    var element = document.getElementById("webauthn-options");
    if (!element) {
      return null;
    }
    try {
      return JSON.parse(element.textContent);
    } catch (ignored) {
      return null;
    }
  }

  function supported() {
    return Boolean(window.PublicKeyCredential && navigator.credentials);
  }

  function ceremony(mode, json) {
    if (mode === "register") {
      return navigator.credentials.create({ publicKey: creationOptions(json) })
        .then(registrationJSON);
    }
    return navigator.credentials.get({ publicKey: requestOptions(json) })
      .then(authenticationJSON);
  }

  function setBusy(form, busy) {
    form.setAttribute("aria-busy", busy ? "true" : "false");
    var buttons = form.querySelectorAll("button[type=submit], input[type=submit]");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].disabled = busy;
    }
  }

  function onSubmit(event) {
    var form = event.currentTarget;
    var mode = form.getAttribute("data-webauthn");
    var input = form.querySelector("input[name=credential]");
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") {
      return; // a ceremony is already running: a double click must not start a second one
    }
    clearError();
    // Check the form's own fields (e.g. the key's name) before asking for a touch.
    if (typeof form.reportValidity === "function" && !form.reportValidity()) {
      return;
    }
    if (!supported()) {
      showError(UNSUPPORTED);
      return;
    }
    var json = readOptions();
    if (!json || !input) {
      showError(NO_OPTIONS);
      return;
    }
    setBusy(form, true);
    ceremony(mode, json).then(function (answer) {
      input.value = JSON.stringify(answer);
      // HTMLFormElement.submit() fires no submit event: no loop, and the page navigates.
      form.submit();
    }).catch(function (error) {
      setBusy(form, false);
      showError(messageFor(error, mode));
    });
  }

  function start() {
    var forms = document.querySelectorAll("form[data-webauthn]");
    for (var i = 0; i < forms.length; i += 1) {
      var mode = forms[i].getAttribute("data-webauthn");
      if (mode === "register" || mode === "authenticate") {
        forms[i].addEventListener("submit", onSubmit);
      }
    }
  }

  // Coming back with the Back button (page cache): the form must not stay "busy".
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      var forms = document.querySelectorAll("form[data-webauthn]");
      for (var i = 0; i < forms.length; i += 1) {
        setBusy(forms[i], false);
      }
    }
  });

  // For passkey-autofill.js (the sign-in page): one copy of the conversions, read-only.
  window.RelatchWebAuthn = Object.freeze({
    supported: supported,
    requestOptions: requestOptions,
    authenticationJSON: authenticationJSON
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
