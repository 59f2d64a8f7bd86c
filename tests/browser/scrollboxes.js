// Every box of the article whose content is wider than the box itself, at the current width: does
// it scroll (overflow-x auto/scroll) or clip, does it show that it scrolls (book/_static/scroll-cues.js
// classes and the fade of mlmprimer.css), can the keyboard reach it, and does the cue follow the
// scroll position (scrolled to its end, the right-hand cue must go and the left-hand one come)?
// Also: inline formulas separated from the punctuation that follows them by a line break.
async () => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const vw = document.documentElement.clientWidth;
  const short = (s, n = 70) => (s || "").replace(/\s+/g, " ").trim().slice(0, n);
  const describe = (el) => {
    let d = el.tagName.toLowerCase();
    if (el.classList.length) d += "." + [...el.classList].slice(0, 3).join(".");
    return `${d} "${short(el.textContent, 50)}"`;
  };
  const kind = (el) => {
    if (el.matches("mjx-container, .math") || el.closest("div.math")) return "math";
    if (el.matches("pre") || el.closest("div.highlight")) return "code";
    if (el.querySelector("table") || el.matches("table")) return "table";
    return "other";
  };
  const frame = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 30)));
  const boxes = [];
  for (const el of article.querySelectorAll("*")) {
    if (el.closest("mjx-assistive-mml")) continue;
    // inside a formula, MathJax clips its own parts (the extender of a tall bracket): the formula's
    // box, and the span Sphinx puts around it, are what the reader sees cut or not
    const formula = el.closest("mjx-container");
    if (formula && formula !== el) continue;
    // text for screen readers only is clipped to nothing on purpose: not a box the reader sees
    if (el.closest(".mlm-sr, .sr-only, .visually-hidden")) continue;
    if (el.clientWidth === 0 || el.clientHeight === 0) continue;
    if (el.scrollWidth <= el.clientWidth + 1) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === "hidden") continue;
    const r = el.getBoundingClientRect();
    boxes.push({ el, cs, r });
  }
  const out = [];
  for (const { el, cs, r } of boxes) {
    const overflowX = cs.overflowX;
    const scrolls = overflowX === "auto" || overflowX === "scroll";
    const mask = cs.maskImage && cs.maskImage !== "none" ? cs.maskImage : cs.webkitMaskImage || "none";
    const item = {
      element: describe(el),
      kind: kind(el),
      overflowX,
      scrolls,
      hidden: el.scrollWidth - el.clientWidth,
      left: Math.round(r.left),
      right: Math.round(r.right),
      classes: [...el.classList].filter((c) => c.startsWith("mlm-")),
      fade: /gradient/.test(mask),
      tabIndex: el.tabIndex,
      label: el.getAttribute("aria-label") || (el.matches("mjx-container") ? "formula" : null),
      classesAtEnd: null,
    };
    if (scrolls) {
      const before = el.scrollLeft;
      el.scrollLeft = el.scrollWidth;
      el.dispatchEvent(new Event("scroll"));
      await frame();
      item.classesAtEnd = [...el.classList].filter((c) => c.startsWith("mlm-"));
      el.scrollLeft = before;
      el.dispatchEvent(new Event("scroll"));
    }
    out.push(item);
  }
  await frame();

  // Punctuation after an inline formula, on a later line than the formula.
  const lonely = [];
  const inline = article.querySelectorAll('mjx-container[jax="CHTML"]:not([display="true"])');
  for (const container of inline) {
    const math = container.closest("span.math") || container;
    let next = math.nextSibling;
    if (!next && math.parentElement.classList.contains("mlm-nobreak")) next = math.parentElement.nextSibling;
    if (!next || next.nodeType !== Node.TEXT_NODE) continue;
    const m = next.data.match(/^[,.;:!?)]/);
    if (!m) continue;
    const range = document.createRange();
    range.setStart(next, 0);
    range.setEnd(next, 1);
    const p = range.getBoundingClientRect();
    const f = (container.querySelector("mjx-math") || container).getBoundingClientRect();
    if (p.height === 0 || f.height === 0) continue;
    if (p.top >= f.bottom - 1) {
      lonely.push({
        formula: short(container.textContent, 40),
        punctuation: m[0],
        where: describe(container.closest("td, th, p, li") || container.parentElement),
      });
    }
  }
  return { viewport: vw, boxes: out, lonely };
}
