// Passkeys (WebAuthn Level 3) on our pages, as progressive enhancement: without this script,
// or in a browser without WebAuthn, the pages work as before (password, one-time codes) and
// the passkey buttons stay hidden. Served from /static under the pages' CSP (no inline
// script, no eval; the page allows `script-src 'self'; connect-src 'self'`).
//
// The contract with the HTML (any element may carry it; a <form> is usual):
//
//   data-passkey="sign-in"        the login page: the browser's autofill offers passkeys in
//                                 the username field (conditional mediation; that input's
//                                 autocomplete includes "webauthn"), and the start button
//                                 asks for one in the browser's dialog
//   data-passkey="second-factor"  after a password: the start button asks for one (dialog)
//   data-passkey="register"       the account page: the start button registers a new one
//   data-passkey="invitation"     an invitation's page: the start button makes the account
//                                 with a new passkey (the username typed in the form)
//   data-passkey-options="URL"    POSTed to for the options: JSON {csrf, interaction}; the
//                                 answer is the `publicKey` options as JSON (also accepted
//                                 wrapped as {"publicKey": {...}})
//   data-passkey-finish="URL"     POSTed to with the credential: JSON {csrf, interaction,
//                                 credential, name}; `credential` is the WebAuthn L3
//                                 `PublicKeyCredential.toJSON()` form (base64url fields).
//                                 The answer is {"redirect": "URL"} to go on (register: the
//                                 page reloads when there is none), or a 4xx with
//                                 {"error": "text for the person"}
//   data-passkey-csrf="TOKEN"     the page's CSRF token, sent as `csrf`
//   data-passkey-interaction="H"  the pending request's handle, sent as `interaction`
//                                 (login and second factor; absent on the account page)
//   data-passkey-token="T"        the invitation's token, sent as `token` (invitation only)
//   data-passkey-failed="TEXT"    shown when the server's answer has no message (a network
//                                 error, a 500), in the page's language
//   data-passkey-cancelled="TEXT" shown when the person closes the browser's dialog or it
//                                 times out (nothing is shown without it)
// and inside that element:
//   <button type="button" data-passkey-start hidden>   the start button ("Sign in with a
//                                 passkey", "Add a passkey"); shown by this script only
//                                 where WebAuthn is available
//   <input data-passkey-name>     optional (register): the new passkey's name, sent as `name`
//   <input data-passkey-username> (invitation) the username chosen, sent as `username`;
//                                 checked by the browser (`required`) before the dialog
//   [data-passkey-shown hidden]   shown by this script where WebAuthn is available (what
//                                 speaks of the button: it is useless without it)
//   <p role="alert" data-passkey-error hidden>   where messages go (made if missing)
(function () {
  "use strict";
  var PKC = window.PublicKeyCredential;
  if (!PKC || !navigator.credentials) return;

  // How many refused answers the username field's autofill takes before it stops asking
  // (the button still works): an authenticator that answers by itself, with a passkey
  // this server does not know, would otherwise be asked in a loop.
  var AUTOFILL_REFUSALS = 3;

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer), text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64), bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function withIds(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: fromBase64url(d.id) });
    });
  }

  // The options from their JSON form: the browser's own parser (WebAuthn L3 §5.1.9, §5.1.10)
  // where there is one, else the base64url members decoded by hand.
  function creationOptions(json) {
    if (PKC.parseCreationOptionsFromJSON) return PKC.parseCreationOptionsFromJSON(json);
    var options = Object.assign({}, json, {
      challenge: fromBase64url(json.challenge),
      user: Object.assign({}, json.user, { id: fromBase64url(json.user.id) }),
    });
    if (json.excludeCredentials) options.excludeCredentials = withIds(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    if (PKC.parseRequestOptionsFromJSON) return PKC.parseRequestOptionsFromJSON(json);
    var options = Object.assign({}, json, { challenge: fromBase64url(json.challenge) });
    if (json.allowCredentials) options.allowCredentials = withIds(json.allowCredentials);
    return options;
  }

  // The credential in its JSON form (`toJSON()`, WebAuthn L3 §5.1), by hand where missing.
  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    var r = credential.response;
    var json = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: toBase64url(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      json.response.attestationObject = toBase64url(r.attestationObject);
      if (r.getTransports) json.response.transports = r.getTransports();
    } else {
      json.response.authenticatorData = toBase64url(r.authenticatorData);
      json.response.signature = toBase64url(r.signature);
      json.response.userHandle = r.userHandle ? toBase64url(r.userHandle) : null;
    }
    return json;
  }

  function Passkey(element) {
    this.element = element;
    this.kind = element.getAttribute("data-passkey");
    this.button = element.querySelector("[data-passkey-start]");
    this.conditional = null; // the AbortController of a pending autofill request
    this.autofillAvailable = false;
    this.refusals = 0; // answers of the autofill the server refused
  }

  Passkey.prototype.body = function (extra) {
    var body = { csrf: this.element.getAttribute("data-passkey-csrf") || "" };
    var interaction = this.element.getAttribute("data-passkey-interaction");
    if (interaction) body.interaction = interaction;
    var token = this.element.getAttribute("data-passkey-token");
    if (token) body.token = token;
    var username = this.username();
    if (username) body.username = username.value;
    return JSON.stringify(Object.assign(body, extra || {}));
  };

  Passkey.prototype.post = function (attribute, extra) {
    return fetch(this.element.getAttribute(attribute), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: this.body(extra),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) throw { server: json.error || null };
        return json;
      });
    }, function () {
      throw { server: null };
    });
  };

  // The username input of an invitation's page (null elsewhere).
  Passkey.prototype.username = function () {
    return this.element.querySelector("[data-passkey-username]");
  };

  Passkey.prototype.say = function (message) {
    var alert = this.element.querySelector("[data-passkey-error]");
    if (!alert) {
      alert = document.createElement("p");
      alert.className = "error";
      alert.setAttribute("role", "alert");
      alert.setAttribute("data-passkey-error", "");
      this.element.insertBefore(alert, this.element.firstChild);
    }
    alert.textContent = message || "";
    alert.hidden = !message;
  };

  // What went wrong, for the person: the server's words, or the page's.
  Passkey.prototype.failed = function (error, modal) {
    if (error && error.name === "AbortError") return; // we cancelled it ourselves
    if (error && error.name === "NotAllowedError") {
      if (modal) this.say(this.element.getAttribute("data-passkey-cancelled"));
      return;
    }
    this.say((error && error.server) ||
      this.element.getAttribute("data-passkey-failed") ||
      "Something went wrong with the passkey. Please try again.");
  };

  Passkey.prototype.finish = function (credential) {
    var name = this.element.querySelector("[data-passkey-name]");
    var extra = { credential: credentialJSON(credential) };
    if (name && name.value) extra.name = name.value;
    var kind = this.kind;
    return this.post("data-passkey-finish", extra).then(function (answer) {
      if (answer.redirect) window.location.assign(answer.redirect);
      else if (kind === "register") window.location.reload();
    }, function (error) {
      error.answered = true; // the server refused this answer: another may be tried
      throw error;
    });
  };

  Passkey.prototype.options = function () {
    return this.post("data-passkey-options").then(function (json) {
      return json.publicKey || json;
    });
  };

  // Whether the autofill may ask (again).
  Passkey.prototype.mayAutofill = function () {
    return this.autofillAvailable && this.refusals < AUTOFILL_REFUSALS;
  };

  // The username field's autofill: one pending request for as long as the page is open;
  // after the server refuses an answer, a fresh one (a ceremony is answered only once),
  // up to AUTOFILL_REFUSALS times.
  Passkey.prototype.autofill = function () {
    var self = this;
    var controller = new AbortController();
    self.conditional = controller;
    self.options().then(function (json) {
      return navigator.credentials.get({
        mediation: "conditional",
        publicKey: requestOptions(json),
        signal: controller.signal,
      });
    }).then(function (credential) {
      if (credential) return self.finish(credential);
    }).catch(function (error) {
      if (controller.signal.aborted) return;
      self.failed(error, false);
      if (error && error.answered) {
        self.refusals += 1;
        if (self.mayAutofill()) self.autofill();
      }
    });
  };

  // The button: the browser's dialog (`navigator.credentials.get` or `.create`).
  Passkey.prototype.start = function () {
    var self = this;
    if (self.conditional) {
      self.conditional.abort();
      self.conditional = null;
    }
    self.say("");
    var username = self.username();
    if (username && !username.reportValidity()) return;
    self.button.disabled = true;
    self.options().then(function (json) {
      if (self.kind === "register" || self.kind === "invitation") {
        return navigator.credentials.create({ publicKey: creationOptions(json) });
      }
      return navigator.credentials.get({ publicKey: requestOptions(json) });
    }).then(function (credential) {
      if (credential) return self.finish(credential);
    }).catch(function (error) {
      self.failed(error, true);
      // The autofill was given up for the dialog: offer it again.
      if (self.mayAutofill()) self.autofill();
    }).then(function () {
      self.button.disabled = false;
    });
  };

  function enhance(element) {
    var passkey = new Passkey(element);
    if (passkey.button) {
      passkey.button.hidden = false;
      passkey.button.addEventListener("click", function (event) {
        event.preventDefault();
        passkey.start();
      });
    }
    var shown = element.querySelectorAll("[data-passkey-shown]");
    for (var j = 0; j < shown.length; j++) shown[j].hidden = false;
    if (passkey.kind === "sign-in" && PKC.isConditionalMediationAvailable) {
      PKC.isConditionalMediationAvailable().then(function (available) {
        passkey.autofillAvailable = available;
        if (available) passkey.autofill();
      }, function () {});
    }
  }

  var elements = document.querySelectorAll("[data-passkey]");
  for (var i = 0; i < elements.length; i++) enhance(elements[i]);
})();
