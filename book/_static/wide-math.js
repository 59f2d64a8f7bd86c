// Inline formulas on a narrow screen, after MathJax has typeset the page.
//
// 1. A formula keeps the punctuation that follows it ("$\beta_W$, $\beta_B$"): the browser may break
//    a line between a typeset formula and the next character, which leaves a comma alone at the start
//    of a line (in a narrow table cell above all). The formula and its punctuation are wrapped in one
//    span.mlm-nobreak that mlmprimer.css keeps on one line.
// 2. Inline formulas that stick out of the screen (on a phone) are marked, so that mlmprimer.css can
//    give them a scrolling box of their own; this runs again on every resize.
(function () {
  var PUNCTUATION = /^[,.;:!?)\]\u2019\u201d]+/;
  var INLINE = 'mjx-container[jax="CHTML"]:not([display="true"])';

  function keepPunctuation() {
    document.querySelectorAll(INLINE).forEach(function (container) {
      // Sphinx puts each formula in a span.math; the punctuation follows that span
      var math = container.parentElement && container.parentElement.matches("span.math") ? container.parentElement : container;
      if (math.parentElement && math.parentElement.classList.contains("mlm-nobreak")) return;
      var next = math.nextSibling;
      if (!next || next.nodeType !== Node.TEXT_NODE) return;
      var found = next.data.match(PUNCTUATION);
      if (!found) return;
      next.splitText(found[0].length); // next now holds the punctuation only
      var wrapper = document.createElement("span");
      wrapper.className = "mlm-nobreak";
      math.parentNode.insertBefore(wrapper, math);
      wrapper.appendChild(math);
      wrapper.appendChild(next);
    });
  }

  function mark() {
    var width = document.documentElement.clientWidth;
    document.querySelectorAll(INLINE).forEach(function (el) {
      el.classList.remove("mlm-wide-math");
    });
    document.querySelectorAll(".mlm-nobreak.mlm-wide").forEach(function (el) {
      el.classList.remove("mlm-wide");
    });
    document.querySelectorAll(INLINE).forEach(function (el) {
      var math = el.querySelector("mjx-math") || el; // not the screen-reader copy beside it
      var box = math.getBoundingClientRect();
      if (box.right > width + 1 || box.left < -1) {
        el.classList.add("mlm-wide-math");
        // a formula wider than the screen may break from its punctuation after all
        var wrapper = el.closest(".mlm-nobreak");
        if (wrapper) wrapper.classList.add("mlm-wide");
      }
    });
  }

  function typeset() {
    keepPunctuation();
    mark();
  }

  function start() {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(typeset);
    } else {
      window.setTimeout(start, 100);
    }
  }
  window.addEventListener("resize", mark);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
