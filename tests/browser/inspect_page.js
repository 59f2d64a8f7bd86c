// Evaluated in each page of the built book by conftest.Visitor: what the tests check, in one pass.
() => {
  const article =
    document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const short = (s, n = 120) => (s || "").replace(/\s+/g, " ").trim().slice(0, n);
  const visible = (el) =>
    (el.checkVisibility ? el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }) : true) &&
    el.getBoundingClientRect().width > 0 &&
    el.getBoundingClientRect().height > 0;

  // Math: every Sphinx math node typeset by MathJax, no MathJax error, no raw TeX left in the text.
  const math = [...document.querySelectorAll(".math")];
  const untypeset = math.filter((el) => !el.querySelector("mjx-container")).map((el) => short(el.textContent));
  const mathErrors = [...document.querySelectorAll("mjx-merror, [data-mjx-error]")].map((el) =>
    short(el.getAttribute("data-mjx-error") || el.textContent),
  );
  const clone = article.cloneNode(true);
  clone
    .querySelectorAll("pre, code, kbd, samp, script, style, textarea, mjx-container, .highlight")
    .forEach((el) => el.remove());
  const text = clone.textContent;
  const rawTex = [];
  const patterns = [
    /\\\(.*?\\\)/gs, // \( ... \)
    /\\\[.*?\\\]/gs, // \[ ... \]
    /\$\$[^$]+\$\$/g, // $$ ... $$
    /\$[^$\n]*[\\^_{][^$\n]*\$/g, // $ ... $ with a TeX command, sub/superscript or brace
    /\\begin\{[a-z*]+\}/g,
  ];
  for (const re of patterns) for (const m of text.matchAll(re)) rawTex.push(short(m[0], 80));

  // Images: loaded, visible unless inside a collapsed toggle, with alt text.
  const collapsed = (el) =>
    !!el.closest("details:not([open]), .toggle-hidden, .only-dark, .only-light, [hidden]");
  const images = [...document.querySelectorAll("img")].map((img) => {
    const r = img.getBoundingClientRect();
    return {
      src: img.currentSrc || img.src,
      alt: img.getAttribute("alt"),
      loaded: img.complete && img.naturalWidth > 0,
      visible: visible(img),
      collapsed: collapsed(img),
      inArticle: article.contains(img),
      width: Math.round(r.width),
      height: Math.round(r.height),
    };
  });

  // Code blocks: sphinx-copybutton puts a button.copybtn into every div.highlight.
  const blocks = [...article.querySelectorAll("div.highlight")].filter((d) => d.querySelector("pre"));
  const withoutCopy = blocks.filter((d) => !d.querySelector("button.copybtn")).map((d) => short(d.textContent, 60));
  const cellInputs = [...article.querySelectorAll(".cell_input div.highlight")];

  // Everything the page links to or loads.
  const urls = new Set();
  document.querySelectorAll("a[href]").forEach((a) => urls.add(a.href));
  document.querySelectorAll("img[src], script[src], iframe[src], source[src], video[src], audio[src]")
    .forEach((e) => urls.add(e.src));
  document.querySelectorAll("link[href]").forEach((l) => {
    if (!["canonical", "alternate"].includes((l.rel || "").toLowerCase())) urls.add(l.href);
  });

  // The left navigation, in document order.
  const nav = [...document.querySelectorAll("nav.bd-docs-nav a[href]")].map((a) => ({
    href: a.href,
    text: short(a.textContent, 80),
  }));
  const captions = [...document.querySelectorAll("nav.bd-docs-nav .caption")].map((c) => short(c.textContent, 80));

  return {
    title: document.title,
    h1: [...article.querySelectorAll("h1")].map((h) => short(h.textContent, 80)),
    math: { nodes: math.length, mjx: document.querySelectorAll("mjx-container").length, untypeset, errors: mathErrors, rawTex },
    images,
    code: { blocks: blocks.length, withoutCopy, cellInputs: cellInputs.length },
    urls: [...urls],
    nav,
    captions,
  };
}
