// Typeset the math that pymdownx.arithmatex (generic mode) leaves as \( ... \) and \[ ... \].
// Material's instant loading replaces the page body, so render again on every page change.
function lstmkitRenderMath(root) {
  root.querySelectorAll(".arithmatex").forEach(function (el) {
    renderMathInElement(el, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  });
}
if (typeof document$ !== "undefined") {
  document$.subscribe(function () { lstmkitRenderMath(document.body); });
} else {
  document.addEventListener("DOMContentLoaded", function () { lstmkitRenderMath(document.body); });
}
