// Identifiers in table cells (module names, options such as --quick, config names such as
// medium-2L-bi) must not break across lines, not even at a hyphen. CSS cannot tell an
// identifier from code with spaces, so mark the ones without whitespace; docs/css/extra.css
// keeps those on one line and lets the rest wrap at spaces.
function lstmkitMarkIdentifiers(root) {
  root.querySelectorAll(".md-typeset td code, .md-typeset th code").forEach(function (code) {
    if (!/\s/.test(code.textContent.trim())) code.classList.add("lstmkit-identifier");
  });
}
if (typeof document$ !== "undefined") {
  document$.subscribe(function () { lstmkitMarkIdentifiers(document.body); });
} else {
  document.addEventListener("DOMContentLoaded", function () { lstmkitMarkIdentifiers(document.body); });
}
