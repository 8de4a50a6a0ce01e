// The algorithm's admin page: hide the params that do not shape a state's batch type, and draw
// the machine with the vendored Mermaid (loaded before this file, both deferred; no inline script
// is allowed by the page's CSP).
"use strict";
(function () {
  function showParamsFor(select) {
    var state = select.closest(".inline-related");
    if (!state) return;
    state.querySelectorAll("[data-batch-types]").forEach(function (input) {
      var shapes = input.dataset.batchTypes.split(" ").indexOf(select.value) !== -1;
      // The field with its help: the fieldBox's wrapper on a line of several fields, else the row.
      var fieldBox = input.closest(".fieldBox");
      var box = fieldBox ? fieldBox.parentElement : input.closest(".form-row");
      // Hidden, not disabled: a hidden param keeps its value, should the batch type come back.
      if (box) box.classList.toggle("param-not-shaping", !shapes);
    });
    // A line whose params all do not shape this batch type goes too.
    state.querySelectorAll(".form-multiline").forEach(function (line) {
      var shown = Array.prototype.some.call(line.children, function (box) {
        return !box.classList.contains("param-not-shaping");
      });
      line.closest(".form-row").classList.toggle("param-not-shaping", !shown);
    });
  }

  function batchTypeSelects(root) {
    return root.querySelectorAll('select[name$="-batch_type"]');
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches('select[name$="-batch_type"]')) showParamsFor(event.target);
  });
  document.addEventListener("formset:added", function (event) {
    batchTypeSelects(event.target).forEach(showParamsFor);
  });
  batchTypeSelects(document).forEach(showParamsFor);

  var diagram = document.getElementById("machine-diagram");
  if (diagram && window.mermaid) {
    // Natural size (the holder scrolls): fitted to the page, a large machine's labels get unreadable.
    window.mermaid.initialize({
      startOnLoad: false, securityLevel: "strict", theme: "neutral",
      flowchart: { useMaxWidth: false, wrappingWidth: 260 },
    });
    window.mermaid.run({ nodes: [diagram] }).then(function () {
      diagram.dataset.rendered = "true";
    }, function (error) {
      diagram.dataset.rendered = "failed";
      diagram.closest(".machine-diagram").querySelector("details").open = true;
      console.error("the machine's picture could not be drawn", error);
    });
  }
})();
