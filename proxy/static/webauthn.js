/* cognito-gate: passkey sign-in (WEB_AUTHN challenge). Loaded only on that page. */
(function () {
  "use strict";

  var form = document.getElementById("webauthn-form");
  var button = document.getElementById("webauthn-start");
  if (!form || !button) return;
  var errorBox = document.getElementById("passkey-error");

  function fail(text) {
    if (!errorBox) return;
    errorBox.querySelector("p").textContent = text;
    errorBox.hidden = false;
    button.disabled = false;
  }

  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    if (!buffer) return null;
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  if (!window.PublicKeyCredential || !navigator.credentials) {
    fail(form.dataset.unsupported);
    button.disabled = true;
    return;
  }

  button.addEventListener("click", function () {
    var options;
    try {
      options = JSON.parse(form.dataset.webauthnOptions);
    } catch (e) {
      fail(form.dataset.error);
      return;
    }
    var publicKey = {
      challenge: fromB64url(options.challenge),
      rpId: options.rpId,
      timeout: options.timeout,
      userVerification: options.userVerification || "preferred",
      allowCredentials: (options.allowCredentials || []).map(function (c) {
        return { type: c.type, id: fromB64url(c.id), transports: c.transports };
      }),
    };
    button.disabled = true;
    navigator.credentials.get({ publicKey: publicKey }).then(function (credential) {
      var r = credential.response;
      form.elements.credential.value = JSON.stringify({
        id: credential.id,
        rawId: toB64url(credential.rawId),
        type: credential.type,
        response: {
          clientDataJSON: toB64url(r.clientDataJSON),
          authenticatorData: toB64url(r.authenticatorData),
          signature: toB64url(r.signature),
          userHandle: toB64url(r.userHandle),
        },
        clientExtensionResults: credential.getClientExtensionResults(),
        authenticatorAttachment: credential.authenticatorAttachment || null,
      });
      form.submit();
    }, function () {
      fail(form.dataset.error);
    });
  });
})();
