// Shows that a box of the page scrolls sideways. A wide formula, table or code block scrolls inside
// its own box, but phones (and some desktops) draw no scrollbar until it is touched: the content just
// looks cut off at the edge. Every box of the article that scrolls sideways and holds more than it
// shows gets the class mlm-scrollbox, and mlm-more-right / mlm-more-left while there is more to see on
// that side; mlmprimer.css fades that edge. The box is also made reachable with the keyboard
// (tabindex 0), so that the arrow keys scroll it, and is named for screen readers.
(function () {
  var ARTICLE = "article.bd-article";
  var watched = new WeakSet();
  var resizes = typeof ResizeObserver === "function" ? new ResizeObserver(onResize) : null;

  function scrollsSideways(el) {
    var o = getComputedStyle(el).overflowX;
    return o === "auto" || o === "scroll";
  }

  function label(el) {
    if (el.matches("mjx-container")) return "formula, scrolls sideways";
    if (el.querySelector("table")) return "table, scrolls sideways";
    if (el.matches("pre")) return "code, scrolls sideways";
    return "wide content, scrolls sideways";
  }

  function update(el) {
    var hidden = el.scrollWidth - el.clientWidth;
    var wide = el.clientWidth > 0 && hidden > 1;
    el.classList.toggle("mlm-scrollbox", wide);
    el.classList.toggle("mlm-more-left", wide && el.scrollLeft > 1);
    el.classList.toggle("mlm-more-right", wide && el.scrollLeft < hidden - 1);
    if (wide && !el.hasAttribute("tabindex")) {
      el.setAttribute("tabindex", "0");
      el.setAttribute("data-mlm-tabindex", "");
    } else if (!wide && el.hasAttribute("data-mlm-tabindex")) {
      el.removeAttribute("tabindex");
      el.removeAttribute("data-mlm-tabindex");
    }
    // named even where the theme made it focusable already (its table containers)
    if (wide && !el.hasAttribute("aria-label") && !el.matches("mjx-container")) {
      el.setAttribute("role", "region");
      el.setAttribute("aria-label", label(el));
      el.setAttribute("data-mlm-label", "");
    } else if (!wide && el.hasAttribute("data-mlm-label")) {
      el.removeAttribute("role");
      el.removeAttribute("aria-label");
      el.removeAttribute("data-mlm-label");
    }
  }

  function onScroll(event) {
    update(event.currentTarget);
  }

  function onResize(entries) {
    entries.forEach(function (entry) {
      update(entry.target);
    });
  }

  function scan() {
    var article = document.querySelector(ARTICLE);
    if (!article) return;
    article.querySelectorAll("*").forEach(function (el) {
      if (el.closest("mjx-assistive-mml")) return;
      if (!watched.has(el)) {
        if (!scrollsSideways(el)) return;
        watched.add(el);
        el.addEventListener("scroll", onScroll, { passive: true });
        if (resizes) resizes.observe(el);
      }
      update(el);
    });
    // counted, so that a test can wait for the scan that follows a resize
    var root = document.documentElement;
    root.setAttribute("data-mlm-scans", String(Number(root.getAttribute("data-mlm-scans") || 0) + 1));
  }

  // after a resize, a page settles in steps (the sidebars come and go, long pages lay out again):
  // scan when it has just settled, and once more a second later
  var pending = [];
  function later() {
    pending.forEach(window.clearTimeout);
    pending = [window.setTimeout(scan, 150), window.setTimeout(scan, 1000)];
  }

  function afterMath() {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      // after wide-math.js, which gives wide inline formulas a scrolling box of their own
      MathJax.startup.promise.then(function () {
        window.setTimeout(scan, 0);
      });
    } else if (document.querySelector(".math")) {
      window.setTimeout(afterMath, 100);
    }
  }

  function start() {
    scan();
    afterMath();
  }

  window.addEventListener("resize", later);
  // a block opened later (a solution, a hidden cell) shows boxes that had no width before
  document.addEventListener("toggle", later, true);
  document.addEventListener("click", later, true);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
