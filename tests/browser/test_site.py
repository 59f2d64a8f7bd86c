"""The built book in headless Chromium, offline: every page of the toc loads all it needs from
127.0.0.1, typesets its math, shows its figures, offers its notebook, fits a phone; search,
solutions and navigation work. Needs `make book` first; see conftest.py for how it runs and skips.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import unquote, urljoin, urlsplit

import pytest

from .conftest import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    WAIT_FOR_MATHJAX,
    fetch,
    http_status,
    is_local,
    js_errors,
    solution_pages,
    toc_pages,
    toc_parts,
)

pytestmark = pytest.mark.browser

# A term the search must find once the ICC chapter is in the toc (then in that chapter's results).
SEARCH_TERM = os.environ.get("MLMPRIMER_SEARCH_TERM", "intraclass")
ICC_CHAPTER = os.environ.get("MLMPRIMER_SEARCH_PAGE", "book/04-icc")
IMAGE_FILE = re.compile(r"\.(png|jpe?g|gif|svg|webp)$", re.IGNORECASE)


def _listing(items) -> str:
    return "\n  " + "\n  ".join(str(i) for i in items)


def _docname(url: str, base: str) -> str | None:
    """'http://127.0.0.1:PORT/book/notation.html#x' -> 'book/notation' (None: not a page)."""
    if not url.startswith(base):
        return None
    path = unquote(urlsplit(url).path)[len(urlsplit(base).path) :]
    if path == "" or path.endswith("/"):
        path += "index.html"
    return path[: -len(".html")] if path.endswith(".html") else None


def pytest_generate_tests(metafunc):
    notebooks, solutions = [p for p in toc_pages() if p.is_notebook], list(solution_pages())
    for name, pages, none in (
        ("notebook_page", notebooks, "no notebook page in the toc"),
        ("solution_page", solutions, "the toc has no Solutions part (yet)"),
    ):
        if name in metafunc.fixturenames:
            if pages:
                metafunc.parametrize(name, pages, ids=[p.docname for p in pages])
            else:
                metafunc.parametrize(
                    name, [pytest.param(None, marks=pytest.mark.skip(reason=none))]
                )


# --------------------------------------------------------------------------------------------------
# Every page of the toc


def test_page_and_everything_it_loads_answer_200(visitor, toc_page):
    report = visitor.visit(toc_page)
    assert report.status == 200, f"{report.url} answered {report.status}"
    assert not report.bad_responses, (
        f"{toc_page}: local loads failed:{_listing(report.bad_responses)}"
    )
    assert not report.failed_requests, (
        f"{toc_page}: local requests failed:{_listing(report.failed_requests)}"
    )


def test_page_needs_nothing_from_outside(visitor, toc_page):
    """Every script, stylesheet, font, image and request comes from the book itself: offline, a
    CDN's MathJax or font would leave the page broken."""
    report = visitor.visit(toc_page)
    assert not report.external, (
        f"{toc_page} tried to load from outside 127.0.0.1 (blocked):"
        f"{_listing(f'{kind}: {url}' for kind, url in report.external)}"
    )


def test_page_has_no_javascript_errors(visitor, toc_page):
    report = visitor.visit(toc_page)
    errors = js_errors(report.page_errors + report.console_errors)
    assert not errors, f"{toc_page}: JavaScript errors:{_listing(errors)}"


def test_every_local_link_answers_200(visitor, toc_page):
    report = visitor.visit(toc_page)
    local = sorted(
        {
            u.split("#", 1)[0]
            for u in report.dom["urls"]
            if urlsplit(u).scheme == "http" and is_local(u)
        }
    )
    broken = [(code, u) for u in local if (code := http_status(u)) != 200]
    assert not broken, f"{toc_page}: local links that do not answer 200:{_listing(broken)}"


def test_math_is_typeset_offline(visitor, toc_page):
    report = visitor.visit(toc_page)
    math = report.dom["math"]
    if not math["nodes"] and not math["rawTex"]:
        pytest.skip(f"{toc_page} has no math")
    mj = report.mathjax
    assert mj["loaded"], f"{toc_page}: MathJax did not load (offline), formulas stay raw TeX"
    assert str(mj["version"]).startswith("3."), f"{toc_page}: MathJax {mj['version']}, expected 3.x"
    assert mj["error"] is None, f"{toc_page}: {mj['error']}"
    assert not math["untypeset"], f"{toc_page}: math left as raw TeX:{_listing(math['untypeset'])}"
    assert not math["errors"], f"{toc_page}: MathJax errors:{_listing(math['errors'])}"
    assert not math["rawTex"], (
        f"{toc_page}: TeX in the text outside any math node (escaped or unsupported markup?):"
        f"{_listing(math['rawTex'])}"
    )
    assert math["mjx"] >= math["nodes"], f"{toc_page}: {math}"


def test_images_show_and_have_alt_text(visitor, toc_page):
    report = visitor.visit(toc_page)
    problems = []
    for img in report.dom["images"]:
        src = img["src"].rsplit("/", 1)[-1]
        alt = (img["alt"] or "").strip()
        if not alt:
            problems.append(f"{src}: no alt text")
        elif alt.rsplit("/", 1)[-1] == src or IMAGE_FILE.search(alt):
            # myst-nb's default for a plot shown by a code cell: the image's own path
            problems.append(
                f"{src}: the alt text is the file name; describe the figure (glue:figure :alt:, "
                "or the cell metadata mystnb: image: alt:)"
            )
        if not img["loaded"]:
            problems.append(f"{src}: did not load")
        if img["inArticle"] and not img["collapsed"] and not img["visible"]:
            problems.append(f"{src}: not visible ({img['width']}x{img['height']} px)")
    assert not problems, f"{toc_page}: images:{_listing(problems)}"


def test_code_blocks_have_a_copy_button(visitor, toc_page):
    report = visitor.visit(toc_page)
    code = report.dom["code"]
    if not code["blocks"]:
        pytest.skip(f"{toc_page} has no code block")
    assert not code["withoutCopy"], (
        f"{toc_page}: code blocks without a copy button:{_listing(code['withoutCopy'])}"
    )


def test_solutions_are_collapsed_until_opened(visitor, toc_page):
    """Every solution starts hidden; every collapsible block opens when clicked."""
    report = visitor.visit(toc_page)
    if not report.toggles_before:
        pytest.skip(f"{toc_page} has no solution or collapsible block")
    shown = [t for t in report.toggles_before if t["solution"] and not t["hidden"]]
    assert not shown, (
        f"{toc_page}: solutions visible before they are opened (give them `:class: dropdown`):"
        f"{_listing(t['title'] or t['id'] for t in shown)}"
    )
    stuck = [t for t in report.toggles_after if t["hidden"] and not t["empty"]]
    assert not stuck, f"{toc_page}: blocks that did not open when clicked:{_listing(stuck)}"


def test_solutions_part_is_collapsed(visitor, solution_page):
    report = visitor.visit(solution_page)
    collapsed = [t for t in report.toggles_before if t["hidden"]]
    assert collapsed, (
        f"{solution_page} (in the Solutions part) shows everything at once: put each solution in a "
        "`solution` directive with `:class: dropdown` (or another collapsed block)"
    )


def test_download_button_offers_the_notebook(visitor, notebook_page):
    report = visitor.visit(notebook_page)
    assert report.download["button"], f"{notebook_page}: no download button in the page header"
    offers = [i for i in report.download["items"] if i["href"].split("?")[0].endswith(".ipynb")]
    assert offers, (
        f"{notebook_page}: the download menu offers no .ipynb: {report.download['items']}"
    )
    item = offers[0]
    assert item["visible"], (
        f"{notebook_page}: the .ipynb entry is not shown when the menu is opened"
    )
    status, body = fetch(item["href"])
    assert status == 200, f"{item['href']} answered {status}"
    notebook = json.loads(body)
    assert "cells" in notebook and notebook.get("nbformat") == 4, f"{item['href']} is no notebook"


def test_page_fits_a_phone(visitor, toc_page):
    """At 375 px the text does not scroll sideways; wide tables and code scroll in their own box."""
    report = visitor.visit(toc_page)
    layout = report.phone
    assert layout["scrollWidth"] <= layout["viewport"] + 1, (
        f"{toc_page} scrolls sideways at {layout['viewport']} px "
        f"(document {layout['scrollWidth']} px wide); sticking out:{_listing(layout['offenders'])}"
    )
    assert not layout["offenders"], (
        f"{toc_page}: at {layout['viewport']} px these stick out of the screen:"
        f"{_listing(layout['offenders'])}"
    )


def test_left_navigation_lists_the_toc_in_order(visitor, toc_page, server):
    report = visitor.visit(toc_page)
    expected = [p.docname for p in toc_pages()]
    listed = []
    for link in report.dom["nav"]:
        name = _docname(link["href"], server)
        if name and (not listed or listed[-1] != name):
            listed.append(name)
    if listed and listed[0] != expected[0]:
        expected = expected[1:]  # html.home_page_in_navbar: false
    assert listed == expected, (
        f"{toc_page}: the left navigation lists{_listing(listed)}\n"
        f"but the toc has{_listing(expected)}"
    )
    parts = [c for c in toc_parts() if c]
    assert report.dom["captions"] == parts, (
        f"{toc_page}: navigation captions {report.dom['captions']} are not the toc's parts {parts}"
    )


# --------------------------------------------------------------------------------------------------
# Site features


def test_site_root_redirects_to_the_first_page(offline_page, server):
    tab = offline_page()
    tab.page.goto(server, wait_until="load")
    root = toc_pages()[0]
    tab.page.wait_for_url(urljoin(server, root.html) + "*", timeout=10_000)
    assert not tab.errors() and not tab.bad_responses, tab.errors() + tab.bad_responses


def _search(tab, server, term: str) -> list[str]:
    """Search as a reader does (the header's search box, Enter); the docnames of the results."""
    p = tab.page
    p.goto(urljoin(server, toc_pages()[0].html), wait_until="load")
    p.locator("button.search-button__button:visible").first.click()
    box = p.locator("#pst-search-dialog input[type=search]")
    box.wait_for(state="visible")
    box.fill(term)
    box.press("Enter")
    p.wait_for_url(re.compile(r"search\.html\?"), timeout=10_000)
    p.wait_for_function(
        """() => {
            const h = document.querySelector('#search-results h2');
            return h && h.textContent.trim() === 'Search Results';
        }""",
        timeout=20_000,
    )
    hrefs = p.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
    assert not tab.errors(), tab.errors()
    return [d for h in hrefs if (d := _docname(h.split("#")[0], server))]


def test_search_finds_a_term_of_the_landing_page(offline_page, server, site):
    root = toc_pages()[0]
    text = _article_text(site / root.html)
    first = next((p for p in text.split("\n\n") if len(p.split()) >= 8), text)
    words = sorted(set(re.findall(r"\b[a-z]{7,}\b", first)), key=lambda w: (-len(w), w))
    assert words, f"{root}: no paragraph with a word of seven letters or more"
    term = words[0]
    found = _search(offline_page(), server, term)
    assert root.docname in found, f"searching {term!r} (from {root}) found {found}"


def test_search_finds_the_intraclass_correlation(offline_page, server, site):
    containing = [
        p.docname
        for p in toc_pages()
        if (site / p.html).is_file() and SEARCH_TERM.lower() in _article_text(site / p.html).lower()
    ]
    icc_in_toc = any(p.docname == ICC_CHAPTER for p in toc_pages())
    if not containing and not icc_in_toc:
        pytest.skip(f"no page contains {SEARCH_TERM!r} yet and {ICC_CHAPTER} is not in the toc")
    found = _search(offline_page(), server, SEARCH_TERM)
    assert found, f"searching {SEARCH_TERM!r} found nothing; pages that contain it: {containing}"
    if icc_in_toc:
        assert ICC_CHAPTER in found, (
            f"searching {SEARCH_TERM!r} did not find {ICC_CHAPTER}: {found}"
        )
    missing = sorted(set(containing) - set(found))
    assert not missing, f"searching {SEARCH_TERM!r} missed pages that contain it: {missing}"


def test_phone_navigation_opens(offline_page, server):
    """At a phone's width the left navigation and the page's contents are behind the header's
    buttons; they open, on screen, and the navigation lists every page of the toc."""
    tab = offline_page(PHONE)
    p = tab.page
    p.goto(urljoin(server, toc_pages()[1 if len(toc_pages()) > 1 else 0].html), wait_until="load")
    links = p.locator("nav.bd-docs-nav a.reference")
    assert not links.first.is_visible(), "the left navigation is shown at 375 px without asking"
    p.locator("button.primary-toggle:visible").first.click()
    try:
        links.last.wait_for(state="visible", timeout=5_000)
    except Exception:
        pytest.fail("the header's navigation button does not open the left navigation at 375 px")
    boxes = [links.nth(i).bounding_box() for i in range(links.count())]
    off = [b for b in boxes if not b or b["x"] < -1 or b["x"] + b["width"] > PHONE["width"] + 1]
    assert not off, f"navigation links off the screen: {off}"
    assert links.count() >= len(toc_pages()) - 1
    p.keyboard.press("Escape")
    links.last.wait_for(state="hidden", timeout=5_000)
    # the page's own table of contents, behind the button at the right of the header
    entries = p.locator("#pst-page-toc-nav a")
    if entries.count():
        p.locator("button.secondary-toggle:visible").first.click()
        try:
            entries.last.wait_for(state="visible", timeout=5_000)
        except Exception:
            pytest.fail("the header's contents button does not open the page's contents at 375 px")
        p.keyboard.press("Escape")
    assert not tab.errors(), tab.errors()


def test_desktop_sidebar_button_hides_the_navigation(offline_page, server):
    tab = offline_page(DESKTOP)
    p = tab.page
    p.goto(urljoin(server, toc_pages()[0].html), wait_until="load")
    sidebar = p.locator("#pst-primary-sidebar")
    assert sidebar.bounding_box()["x"] >= 0, "the left navigation is not shown at 1280 px"
    p.locator("button.primary-toggle:visible").first.click()
    p.wait_for_function(
        "() => document.querySelector('#pst-primary-sidebar').getBoundingClientRect().right <= 0",
        timeout=5_000,
    )
    assert not tab.errors(), tab.errors()


def _chapter():
    wanted = os.environ.get("MLMPRIMER_SCREENSHOT_PAGE")
    pages = [p for p in toc_pages() if not p.is_root]
    if wanted:
        return next(p for p in toc_pages() if p.docname == wanted)
    solutions = set(solution_pages())
    return next(
        (p for p in pages if p.is_notebook and p not in solutions),
        pages[0] if pages else toc_pages()[0],
    )


@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
def test_screenshots(offline_page, server, viewport_name):
    """Screenshots for people to look at: _build/screenshots/{landing,chapter}-{desktop,phone}.png
    (the first screen) and ...-full.png (the whole page)."""
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    made = []
    for label, page in (("landing", toc_pages()[0]), ("chapter", _chapter())):
        tab = offline_page(viewport)
        tab.page.goto(urljoin(server, page.html), wait_until="load")
        tab.page.evaluate(WAIT_FOR_MATHJAX)
        tab.page.wait_for_timeout(300)
        for suffix, full in (("", False), ("-full", True)):
            path = SCREENSHOTS / f"{label}-{viewport_name}{suffix}.png"
            tab.page.screenshot(path=str(path), full_page=full)
            assert path.stat().st_size > 5_000, f"{path} is (nearly) empty"
            made.append(path)
    (SCREENSHOTS / "pages.txt").write_text(
        f"landing: {toc_pages()[0].docname}\nchapter: {_chapter().docname}\n", encoding="utf8"
    )
    print("\n".join(str(p) for p in made))


# --------------------------------------------------------------------------------------------------


def _article_text(path) -> str:
    """Text of the page's article (paragraphs separated by blank lines), from the built HTML."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.depth = 0
            self.skip = 0
            self.parts: list[str] = []

        def handle_starttag(self, tag, attrs):
            classes = (dict(attrs).get("class") or "").split()
            if tag == "article" and ("bd-article" in classes or self.depth):
                self.depth += 1
            elif tag in ("script", "style", "pre"):
                self.skip += 1
            elif tag in ("p", "li", "td", "h1", "h2", "h3", "h4", "div") and self.depth:
                self.parts.append("\n\n")

        def handle_endtag(self, tag):
            if tag == "article" and self.depth:
                self.depth -= 1
            elif tag in ("script", "style", "pre") and self.skip:
                self.skip -= 1

        def handle_data(self, data):
            if self.depth and not self.skip:
                self.parts.append(data)

    parser = Text()
    parser.feed(path.read_text(encoding="utf8"))
    text = "".join(parser.parts)
    return re.sub(r"\n\s*\n\s*", "\n\n", re.sub(r"[ \t]+", " ", text)).strip()
