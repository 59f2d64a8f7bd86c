// Does the page fit a phone's width? The document must not scroll sideways, and no element of the
// article may stick out of the viewport unless it sits in a box of the article that scrolls itself
// (wide tables and code blocks do).
() => {
  const vw = window.innerWidth;
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const ar = article.getBoundingClientRect();
  const scrollsInside = (el) => {
    for (let a = el.parentElement; a && a !== article.parentElement; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === "auto" || o === "scroll") {
        const r = a.getBoundingClientRect();
        if (r.right <= vw + 1 && r.left >= -1) return true;
      }
    }
    return false;
  };
  const describe = (el) => {
    let d = el.tagName.toLowerCase();
    if (el.id) d += "#" + el.id;
    if (el.classList.length) d += "." + [...el.classList].slice(0, 3).join(".");
    const t = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 60);
    return t ? `${d} "${t}"` : d;
  };
  const offenders = [];
  for (const el of article.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right <= vw + 1 && r.left >= -1) continue;
    if (getComputedStyle(el).visibility === "hidden") continue;
    // MathJax's copy of each formula for screen readers is clipped to nothing on screen
    if (el.closest("mjx-assistive-mml")) continue;
    if (offenders.some((o) => o.el.contains(el))) continue;
    if (scrollsInside(el)) continue;
    offenders.push({ el, right: r.right, left: r.left });
  }
  return {
    viewport: vw,
    scrollWidth: document.documentElement.scrollWidth,
    articleLeft: Math.round(ar.left),
    articleRight: Math.round(ar.right),
    offenders: offenders.slice(0, 10).map((o) => ({
      element: describe(o.el),
      left: Math.round(o.left),
      right: Math.round(o.right),
    })),
  };
}
