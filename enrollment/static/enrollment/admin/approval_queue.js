/* The approval queue (enrollment/admin_queue.py): while a decision runs on the server (a
   synchronous bulk approval issues one certificate after the other), the button pressed is
   disabled and shows a spinner, and the form cannot be sent twice. A file of its own: the
   site's Content-Security-Policy allows no inline script. */
"use strict";
(function () {
  function busy(form, button) {
    form.dataset.submitting = "yes";
    form.setAttribute("aria-busy", "true");
    var status = document.createElement("p");
    status.className = "queue-busy-status";
    status.setAttribute("role", "status");
    status.textContent = "Working… issuing a certificate takes a few seconds per request.";
    (button && button.parentNode ? button.parentNode : form).appendChild(status);
    // After this event the browser has read the form's data: disabling now keeps the button's value.
    window.setTimeout(function () {
      form.querySelectorAll("button, input[type=submit]").forEach(function (element) {
        element.disabled = true;
      });
      if (button) {
        button.classList.add("is-busy");
      }
    }, 0);
  }

  function isDecision(form, submitter) {
    if (submitter && submitter.hasAttribute("data-busy")) {
      return true; // an Approve button of a row or of the request's page
    }
    // The changelist's Go button: only for an action that decides something.
    var action = form.querySelector("select[name=action]");
    return Boolean(submitter && submitter.name === "index" && action && action.value);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.submitting === "yes") {
      event.preventDefault(); // a second press while the first one still runs
      return;
    }
    var submitter = event.submitter || null;
    if (isDecision(form, submitter)) {
      busy(form, submitter);
    }
  });

  // Back from the browser's page cache: the buttons work again.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) {
      return;
    }
    document.querySelectorAll("form[data-submitting]").forEach(function (form) {
      delete form.dataset.submitting;
      form.removeAttribute("aria-busy");
      form.querySelectorAll(".is-busy").forEach(function (el) { el.classList.remove("is-busy"); });
      form.querySelectorAll(".queue-busy-status").forEach(function (el) { el.remove(); });
      form.querySelectorAll("button, input[type=submit]").forEach(function (el) { el.disabled = false; });
    });
  });
})();
