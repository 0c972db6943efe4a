/* cognito-gate: optional progressive enhancement. Every page works without it. */
(function () {
  "use strict";

  // Show/hide toggle for password inputs marked with data-show / data-hide labels.
  document.querySelectorAll("input[type=password][data-show]").forEach(function (input) {
    var wrap = input.parentElement;
    if (!wrap || !wrap.classList.contains("input-wrap")) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "reveal";
    button.textContent = input.dataset.show;
    button.setAttribute("aria-controls", input.id);
    if (input.dataset.showLabel) button.setAttribute("aria-label", input.dataset.showLabel);
    button.addEventListener("click", function () {
      var reveal = input.type === "password";
      input.type = reveal ? "text" : "password";
      button.textContent = reveal ? input.dataset.hide : input.dataset.show;
      var label = reveal ? input.dataset.hideLabel : input.dataset.showLabel;
      if (label) button.setAttribute("aria-label", label);
      input.focus();
    });
    wrap.classList.add("has-reveal");
    wrap.appendChild(button);
  });

  // Ignore repeated submits (double clicks) and show a busy state.
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.sent) {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "1";
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.setAttribute("aria-busy", "true");
        if (button.dataset.busy) button.textContent = button.dataset.busy;
      }
    });
  });

  // Coming back via the back/forward cache: make forms usable again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      delete form.dataset.sent;
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.removeAttribute("aria-busy");
        if (button.dataset.label) button.textContent = button.dataset.label;
      }
    });
  });
})();
