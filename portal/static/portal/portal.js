// The self-service pages' one script (templates/base.html), a file under the Content-Security-Policy.
// After a form comes back with errors, keyboard and screen-reader users land on the first one
// instead of the top of the page. Everything works without it.
(function () {
  "use strict";

  function firstError() {
    // A field Django marked invalid (aria-invalid), else a form-wide error list, else an error message.
    var field = document.querySelector('main [aria-invalid="true"]');
    if (field) return field;
    var list = document.querySelector("main form .errorlist, main .messages [role=alert]");
    if (!list) return null;
    if (!list.hasAttribute("tabindex")) list.setAttribute("tabindex", "-1");
    return list;
  }

  function focusFirstError() {
    var target = firstError();
    if (!target) return;
    // A field inside a closed disclosure cannot take the focus: open it first.
    for (var node = target.parentElement; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    target.focus();
    if (target.scrollIntoView) target.scrollIntoView({ block: "center" });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusFirstError);
  } else {
    focusFirstError();
  }
})();
