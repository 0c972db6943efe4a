/* cognito-gate: adding a passkey from the account page. Loaded on the account page (shows
   the "Add a passkey" form when this browser can create one) and on the page after it, which
   runs navigator.credentials.create with Cognito's options and posts the new credential. */
(function () {
  "use strict";

  var supported = !!(window.PublicKeyCredential && navigator.credentials);

  // The account page: the add form carries `hidden` until we know it can work here.
  var add = document.getElementById("passkey-add");
  if (add) {
    if (supported) add.hidden = false;
    else document.getElementById("passkeys-unsupported").hidden = false;
  }

  var form = document.getElementById("passkey-register-form");
  var button = document.getElementById("passkey-create");
  if (!form || !button) return;
  // Without JavaScript the page says adding needs it, and offers no button that does nothing.
  button.hidden = false;
  document.getElementById("passkey-register-lede").hidden = false;
  var errorBox = document.getElementById("passkey-register-error");

  function fail(text) {
    errorBox.querySelector("p").textContent = text;
    errorBox.hidden = false;
    button.disabled = false;
  }

  function fromB64url(text) {
    var b64 = String(text).replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    if (!buffer) return undefined;
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  if (!supported) {
    fail(form.dataset.unsupported);
    button.disabled = true;
    return;
  }

  var options;
  try {
    options = JSON.parse(form.dataset.options);
  } catch (e) {
    fail(form.dataset.error);
    return;
  }

  function publicKey() {
    var o = JSON.parse(JSON.stringify(options)); // a fresh copy for each attempt
    o.challenge = fromB64url(o.challenge);
    o.user.id = fromB64url(o.user.id);
    o.excludeCredentials = (o.excludeCredentials || []).map(function (c) {
      return { type: c.type, id: fromB64url(c.id), transports: c.transports };
    });
    return o;
  }

  // RegistrationResponseJSON (WebAuthn Level 3), what CompleteWebAuthnRegistration takes.
  function asJson(credential) {
    var r = credential.response;
    var response = {
      clientDataJSON: toB64url(r.clientDataJSON),
      attestationObject: toB64url(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : [],
    };
    if (r.getAuthenticatorData) response.authenticatorData = toB64url(r.getAuthenticatorData());
    if (r.getPublicKey && r.getPublicKey()) response.publicKey = toB64url(r.getPublicKey());
    if (r.getPublicKeyAlgorithm) response.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    };
  }

  function create(quiet) {
    button.disabled = true;
    errorBox.hidden = true;
    navigator.credentials.create({ publicKey: publicKey() }).then(function (credential) {
      form.elements.credential.value = JSON.stringify(asJson(credential));
      form.submit();
    }, function (error) {
      if (error && error.name === "InvalidStateError") fail(form.dataset.exists);
      else if (quiet && error && error.name === "NotAllowedError") button.disabled = false;
      else fail(form.dataset.error);
    });
  }

  button.addEventListener("click", function () { create(false); });
  // The user just asked for this: open the browser's prompt at once. Where the browser wants
  // a click first (or the prompt was dismissed) the button stays to try again.
  create(true);
})();
