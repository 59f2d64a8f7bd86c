// Collapsible content of a page (sphinx-togglebutton admonitions, solution blocks,
// <details> dropdowns): is each one's content hidden? With open=true, open each first.
async (open) => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const short = (s, n = 80) => (s || "").replace(/\s+/g, " ").trim().slice(0, n);
  const visible = (el) =>
    (el.checkVisibility ? el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }) : true) &&
    el.getBoundingClientRect().height > 0;
  const items = [
    ...new Set([...article.querySelectorAll(".admonition.toggle, .admonition.dropdown, .solution, details")]),
  ];
  if (open) {
    for (const el of items) {
      if (el.tagName === "DETAILS") {
        if (!el.open) el.querySelector(":scope > summary")?.click();
      } else if (el.classList.contains("toggle-hidden")) {
        (el.querySelector(":scope > .admonition-title") || el.querySelector("button.toggle-button"))?.click();
      }
    }
    await new Promise((r) => setTimeout(r, 500)); // the toggles fade in over 0.3 s
  }
  return items.map((el) => {
    const isDetails = el.tagName === "DETAILS";
    const content = [...el.children].filter((c) =>
      isDetails ? c.tagName !== "SUMMARY" : !c.classList.contains("admonition-title"),
    );
    const title = isDetails ? el.querySelector(":scope > summary") : el.querySelector(":scope > .admonition-title");
    return {
      kind: isDetails ? "details" : "admonition",
      id: el.id || null,
      classes: el.className,
      solution: el.classList.contains("solution"),
      title: short(title ? title.textContent : ""),
      hidden: content.length > 0 && !content.some(visible),
      empty: content.length === 0,
    };
  });
}
