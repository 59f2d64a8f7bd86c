"""The book on a phone (390 px) and on a desktop (1280 px), offline: wide formulas, tables and code
blocks scroll in their own box and show that they do, a formula keeps its punctuation on its line,
captions are readable (WCAG AA contrast), no page throws a JavaScript error or lists a script twice,
and the reference pages (how to use the book, glossary, bibliography) are there and their links
resolve. Needs `make book` first; see conftest.py for how it runs and skips.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from .conftest import (
    JS_DIR,
    LAYOUT,
    ROOT,
    WAIT_FOR_MATHJAX,
    OfflinePage,
    toc_pages,
)

pytestmark = pytest.mark.browser

PHONE_390 = {"width": 390, "height": 844}
DESKTOP_1280 = {"width": 1280, "height": 900}
SCROLLBOXES = (JS_DIR / "scrollboxes.js").read_text(encoding="utf8")
CONTRAST = (JS_DIR / "contrast.js").read_text(encoding="utf8")
AA_NORMAL_TEXT = 4.5
# how many times scroll-cues.js has scanned the page
SCANS = '() => Number(document.documentElement.getAttribute("data-mlm-scans") || 0)'
REFERENCE_PAGES = ("book/how-to-use", "book/glossary", "book/bibliography")
# Terms the glossary must define (any of them may be the head of its entry or one of its synonyms).
GLOSSARY_TERMS = (
    "random effect",
    "group effect",
    "BLUP",
    "conditional mode",
    "ICC",
    "variance partition coefficient",
    "REML",
    "ML",
    "shrinkage",
    "partial pooling",
    "fixed effect",
    "level 1",
    "level 2",
    "crossed random effects",
    "nested random effects",
    "singular fit",
    "conditional",
    "marginal",
    "design effect",
    "null model",
)


def _listing(items) -> str:
    return "\n  " + "\n  ".join(str(i) for i in items)


# --------------------------------------------------------------------------------------------------
# One visit per page: 390 px first, then the same page at 1280 px


@dataclass
class Visit:
    url: str
    phone: dict
    phone_layout: dict
    captions: list
    desktop: dict
    errors: list


class _Visits:
    def __init__(self, browser, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.done: dict[str, Visit] = {}

    def get(self, page) -> Visit:
        if page.docname not in self.done:
            self.done[page.docname] = self._visit(page)
        return self.done[page.docname]

    @staticmethod
    def settle(p) -> None:
        p.evaluate(WAIT_FOR_MATHJAX)
        # scroll-cues.js scans once MathJax is done, and 150 ms and 1 s after a resize
        p.wait_for_timeout(400)

    def _visit(self, page) -> Visit:
        tab = OfflinePage(self.browser, PHONE_390)
        try:
            p = tab.page
            url = urljoin(self.base_url, page.html)
            p.goto(url, wait_until="load")
            self.settle(p)
            phone = p.evaluate(SCROLLBOXES)
            phone_layout = p.evaluate(LAYOUT)
            captions = p.evaluate(CONTRAST)
            scans = p.evaluate(SCANS)
            p.set_viewport_size(DESKTOP_1280)
            # the cues are judged after the two scans that follow a resize, however slow the machine
            p.wait_for_function(f"() => ({SCANS})() >= {scans} + 2", timeout=15_000)
            self.settle(p)
            desktop = p.evaluate(SCROLLBOXES)
            return Visit(url, phone, phone_layout, captions, desktop, tab.errors())
        finally:
            tab.close()


@pytest.fixture(scope="session")
def visits(browser, server) -> _Visits:
    return _Visits(browser, server)


def _box_problems(report: dict) -> list[str]:
    """What is wrong with the boxes whose content is wider than they are (see scrollboxes.js)."""
    problems = []
    width = report["viewport"]
    for box in report["boxes"]:
        what = f"{box['kind']} {box['element']} ({box['hidden']} px hidden)"
        if box["overflowX"] == "visible":
            continue  # spills over, not cut: whether it leaves the screen is layout.js's to say
        if not box["scrolls"]:
            problems.append(f"{what}: cut off (overflow-x: {box['overflowX']}), it cannot scroll")
            continue
        if box["left"] < -1 or box["right"] > width + 1:
            problems.append(
                f"{what}: the scrolling box itself sticks out ({box['left']}..{box['right']})"
            )
        if "mlm-scrollbox" not in box["classes"] or "mlm-more-right" not in box["classes"]:
            problems.append(f"{what}: no sign that it scrolls (classes {box['classes']})")
        elif not box["fade"]:
            problems.append(f"{what}: marked as scrolling but no fade is drawn (mlmprimer.css)")
        if box["tabIndex"] < 0:
            problems.append(f"{what}: the keyboard cannot reach it (no tabindex)")
        if not box["label"]:
            problems.append(f"{what}: no name for screen readers")
        end = box["classesAtEnd"] or []
        if "mlm-more-right" in end or "mlm-more-left" not in end:
            problems.append(f"{what}: scrolled to its end, the cue does not follow ({end})")
    return problems


# --------------------------------------------------------------------------------------------------
# Every page of the toc


def test_wide_boxes_scroll_visibly_on_a_phone(visits, toc_page):
    """At 390 px a display formula, table or code block wider than the screen scrolls inside its
    own box, which is on screen, says so (a fading edge), and can be focused and scrolled."""
    visit = visits.get(toc_page)
    problems = _box_problems(visit.phone)
    assert not problems, f"{toc_page} at 390 px:{_listing(problems)}"
    layout = visit.phone_layout
    assert layout["scrollWidth"] <= layout["viewport"] + 1 and not layout["offenders"], (
        f"{toc_page} sticks out at 390 px (document {layout['scrollWidth']} px wide):"
        f"{_listing(layout['offenders'])}"
    )


def test_long_code_lines_scroll_visibly_on_a_desktop(visits, toc_page):
    """At 1280 px no code line (or formula, or table) is cut off without a sign that it scrolls."""
    visit = visits.get(toc_page)
    problems = _box_problems(visit.desktop)
    assert not problems, f"{toc_page} at 1280 px:{_listing(problems)}"


def test_inline_formula_keeps_its_punctuation(visits, toc_page):
    """No comma (or full stop, colon, ...) after an inline formula starts a line of its own."""
    lonely = visits.get(toc_page).phone["lonely"]
    assert not lonely, (
        f"{toc_page} at 390 px, punctuation cut off from its formula:{_listing(lonely)}"
    )


def test_captions_have_aa_contrast(visits, toc_page):
    captions = visits.get(toc_page).captions
    if not captions:
        pytest.skip(f"{toc_page} has no caption")
    low = [c for c in captions if c["ratio"] < AA_NORMAL_TEXT]
    assert not low, f"{toc_page}: caption text below {AA_NORMAL_TEXT}:1 contrast:{_listing(low)}"


def test_no_javascript_errors_at_either_width(visits, toc_page):
    errors = visits.get(toc_page).errors
    assert not errors, f"{toc_page}: JavaScript errors at 390 or 1280 px:{_listing(errors)}"


class _Scripts(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self._inline: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag != "script":
            return
        a = dict(attrs)
        if a.get("src"):
            self.scripts.append("src " + a["src"].split("?", 1)[0])
        elif (a.get("type") or "text/javascript") in ("text/javascript", "module"):
            self._inline = []

    def handle_data(self, data):
        if self._inline is not None:
            self._inline.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._inline is not None:
            body = " ".join("".join(self._inline).split())
            if body:
                self.scripts.append("inline " + body[:100])
            self._inline = None


def test_no_page_lists_a_script_twice(site, toc_page):
    """The cause of the error every page used to throw: an inline script written twice."""
    parser = _Scripts()
    parser.feed((site / toc_page.html).read_text(encoding="utf8"))
    twice = [s for s, n in Counter(parser.scripts).items() if n > 1]
    assert not twice, f"{toc_page} lists these scripts more than once:{_listing(twice)}"


# --------------------------------------------------------------------------------------------------
# Pages with a known wide element: the checks above must have something to check


def _page(docname: str):
    page = next((p for p in toc_pages() if p.docname == docname), None)
    if page is None:
        pytest.skip(f"{docname} is not in the toc")
    return page


def test_chapter_5_weight_formula_is_shown_to_scroll(visits):
    """Chapter 5's key formula (the partial-pooling estimate with lambda_j's definition) is wider
    than a phone: it must be one of the formulas marked as scrolling, its full width reachable."""
    report = visits.get(_page("book/05-shrinkage")).phone
    wide_math = [b for b in report["boxes"] if b["kind"] == "math"]
    weight = [b for b in wide_math if "λj" in b["element"].replace(" ", "")]
    assert weight, f"no display formula with lambda_j wider than 390 px: {wide_math}"
    assert all("mlm-more-right" in b["classes"] and b["fade"] for b in weight), weight


def test_course_map_keeps_its_data_column(visits, site, server, browser):
    """The landing page's course map fits a phone: every column, the data sets too, is on screen
    without scrolling."""
    root = toc_pages()[0]
    tab = OfflinePage(browser, PHONE_390)
    try:
        p = tab.page
        p.goto(urljoin(server, root.html), wait_until="load")
        p.evaluate(WAIT_FOR_MATHJAX)
        cells = p.evaluate(
            """() => {
                const table = [...document.querySelectorAll('article table')].find((t) =>
                    [...t.querySelectorAll('th')].some((th) => th.textContent.trim() === 'data'));
                if (!table) return null;
                return [...table.querySelectorAll('th, td')].map((c) => {
                    const r = c.getBoundingClientRect();
                    return {text: c.textContent.trim().slice(0, 40), left: r.left, right: r.right};
                });
            }"""
        )
        width = p.evaluate("() => document.documentElement.clientWidth")
    finally:
        tab.close()
    assert cells, f"{root}: no course-map table with a 'data' column"
    off = [c for c in cells if c["right"] > width + 1 or c["left"] < -1]
    assert not off, f"course-map cells off a {width} px screen:{_listing(off)}"


# --------------------------------------------------------------------------------------------------
# The reference pages


def test_reference_pages_are_in_the_toc():
    names = [p.docname for p in toc_pages()]
    missing = [d for d in REFERENCE_PAGES if d not in names]
    assert not missing, f"not in the toc (scripts/toc.py): {missing}"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.terms: list[str] = []
        self._dt = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "dt" and (a.get("id") or "").startswith("term-"):
            self._dt = True
            self.terms.append("")

    def handle_data(self, data):
        if self._dt:
            self.terms[-1] += data

    def handle_endtag(self, tag):
        if tag == "dt":
            self._dt = False


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf8"))
    return parser


def test_glossary_defines_the_course_terms(site):
    _page("book/glossary")
    dts = _parse(site / "book/glossary.html").terms
    terms = {re.sub(r"[\s¶#]+$", "", t).strip().lower() for t in dts}
    missing = [t for t in GLOSSARY_TERMS if t.lower() not in terms]
    assert not missing, f"the glossary lacks the terms {missing}; it has {sorted(terms)}"


def _bib_keys() -> list[str]:
    text = (ROOT / "references.bib").read_text(encoding="utf8")
    return re.findall(r"^@\w+\{([^,\s]+),", text, re.M)


def test_bibliography_lists_every_entry_of_references_bib(site):
    _page("book/bibliography")
    html = (site / "book/bibliography.html").read_text(encoding="utf8")
    article = html[html.find("<article") : html.find("</article>")]
    entries = re.findall(r'<div class="citation" id="[^"]+"', article)
    if not entries:  # docutils renders citations as a definition list in some versions
        entries = re.findall(r'<dt class="label" id="[^"]+"', article)
    keys = _bib_keys()
    assert len(entries) == len(keys), (
        f"bibliography.html shows {len(entries)} entries, references.bib has {len(keys)}"
    )


def test_how_to_page_covers_reading_running_and_assignments(site):
    _page("book/how-to-use")
    parsed = _parse(site / "book/how-to-use.html")
    html = (site / "book/how-to-use.html").read_text(encoding="utf8")
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "make lab" in text, "the how-to page does not say how to open JupyterLab"
    targets = {urlsplit(h).path.rsplit("/", 1)[-1] for h in parsed.hrefs}
    for page in ("instructors.html", "glossary.html", "00-first-look.html"):
        assert page in targets, f"the how-to page does not link to {page}"


@pytest.mark.parametrize(
    "docname", ["book/index", "book/notation", "book/how-to-use", *REFERENCE_PAGES[1:]]
)
def test_links_of_the_reference_pages_resolve(site, docname):
    """Every link to a page of the book, or to a place in one, from the landing page, the notation
    page and the reference pages exists; the landing and notation pages link terms to the
    glossary."""
    _page(docname)
    path = site / f"{docname}.html"
    parsed = _parse(path)
    broken = []
    glossary_links = 0
    for href in parsed.hrefs:
        parts = urlsplit(href)
        if parts.scheme or href.startswith("//") or href.startswith("mailto:"):
            continue
        target = (path.parent / parts.path).resolve() if parts.path else path
        if not target.is_file():
            broken.append(href)
            continue
        if parts.fragment:
            ids = parsed.ids if target == path else _parse(target).ids
            if parts.fragment not in ids:
                broken.append(href)
        if target.name == "glossary.html" and parts.fragment.startswith("term-"):
            glossary_links += 1
    assert not broken, f"{docname}: links that lead nowhere:{_listing(broken)}"
    if docname in ("book/index", "book/notation"):
        assert glossary_links >= 5, f"{docname} links only {glossary_links} terms to the glossary"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_captions_have_aa_contrast_in_both_colour_modes(browser, server, scheme):
    """The book follows the reader's colour mode (html_context default_mode auto): a chapter's
    figure captions must be readable in both."""
    page = _page("book/05-shrinkage")
    context = browser.new_context(viewport=PHONE_390, color_scheme=scheme, service_workers="block")
    try:
        context.route(
            "**/*",
            lambda route: (
                route.continue_()
                if urlsplit(route.request.url).hostname == "127.0.0.1"
                else route.abort("blockedbyclient")
            ),
        )
        p = context.new_page()
        p.goto(urljoin(server, page.html), wait_until="load")
        p.evaluate(WAIT_FOR_MATHJAX)
        mode = p.evaluate("() => document.documentElement.dataset.theme")
        captions = p.evaluate(CONTRAST)
    finally:
        context.close()
    assert mode == scheme, f"asked for {scheme}, the page shows {mode}"
    assert captions, f"{page} has no caption"
    low = [c for c in captions if c["ratio"] < AA_NORMAL_TEXT]
    assert not low, f"{page} ({scheme}): caption text below {AA_NORMAL_TEXT}:1:{_listing(low)}"
