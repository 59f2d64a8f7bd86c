// Marks inline formulas that stick out of the screen (on a phone), so that mlmprimer.css can give
// them a scrolling box of their own. Runs after MathJax has typeset the page and on every resize.
(function () {
  function mark() {
    var width = document.documentElement.clientWidth;
    var selector = 'mjx-container[jax="CHTML"]:not([display="true"])';
    document.querySelectorAll(selector).forEach(function (el) {
      el.classList.remove("mlm-wide-math");
    });
    document.querySelectorAll(selector).forEach(function (el) {
      var math = el.querySelector("mjx-math") || el; // not the screen-reader copy beside it
      var box = math.getBoundingClientRect();
      if (box.right > width + 1 || box.left < -1) el.classList.add("mlm-wide-math");
    });
  }
  function start() {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      MathJax.startup.promise.then(mark);
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
