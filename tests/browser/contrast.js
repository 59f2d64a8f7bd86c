// The WCAG 2 contrast ratio of the text of every figure and table caption of the article against the
// background it is drawn on (the first ancestor with an opaque background, else white), per element
// that holds text directly (the caption's number, its text, a formula in it).
() => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const rgba = (s) => {
    const m = s.match(/rgba?\(([^)]+)\)/);
    if (!m) return [0, 0, 0, 1];
    const v = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const background = (el) => {
    const layers = [];
    for (let a = el; a; a = a.parentElement) {
      const c = rgba(getComputedStyle(a).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (fg, bg) => {
    const [a, b] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  };
  const out = [];
  const captions = article.querySelectorAll("figcaption, table > caption, .caption-text");
  for (const caption of captions) {
    const holders = new Set();
    const walker = document.createTreeWalker(caption, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const el = t.parentElement;
      // the permalink sign shows only on hover, and is a link, not caption text
      if (!t.textContent.trim() || el.closest("mjx-assistive-mml, a.headerlink")) continue;
      if (getComputedStyle(el).visibility === "hidden") continue;
      holders.add(el);
    }
    for (const el of holders) {
      const cs = getComputedStyle(el);
      const bg = background(el);
      const fg = over(rgba(cs.color), bg);
      const opacity = [...(function* (e) { for (; e; e = e.parentElement) yield Number(getComputedStyle(e).opacity); })(el)]
        .reduce((x, y) => x * y, 1);
      const shown = over(fg.slice(0, 3).concat([opacity]), bg);
      out.push({
        text: el.textContent.replace(/\s+/g, " ").trim().slice(0, 50),
        color: cs.color,
        background: `rgb(${bg.slice(0, 3).map(Math.round).join(", ")})`,
        ratio: Math.round(ratio(shown, bg) * 100) / 100,
      });
    }
  }
  return out;
}
