"""The built HTML, read as files (no browser): every internal link and #anchor resolves, the
headings of each page descend in order, "next" walks the toc. Needs `make book` (hence `browser`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from .conftest import toc_pages

pytestmark = pytest.mark.browser

# Attributes that point at another file (or a place in one).
LINK_ATTRS = {
    "a": ("href",),
    "area": ("href",),
    "link": ("href",),
    "img": ("src",),
    "script": ("src",),
    "iframe": ("src",),
    "source": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "form": ("action",),
}
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads"}


@dataclass
class ParsedPage:
    ids: set[str] = field(default_factory=set)
    refs: list[tuple[int, str, str]] = field(default_factory=list)  # (line, tag/attr, value)
    headings: list[tuple[int, str, int]] = field(default_factory=list)  # (level, text, line)
    next_href: str | None = None


class _Parser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()
        self.article = 0
        self.heading: list | None = None
        self.in_next = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        line = self.getpos()[0]
        if a.get("id"):
            self.page.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.page.ids.add(a["name"])
        for attr in LINK_ATTRS.get(tag, ()):
            if a.get(attr) is not None:
                self.page.refs.append((line, f"{tag}[{attr}]", a[attr].strip()))
        classes = (a.get("class") or "").split()
        if tag == "article" and ("bd-article" in classes or self.article):
            self.article += 1
        if self.article and re.fullmatch(r"h[1-6]", tag):
            self.heading = [int(tag[1]), "", line]
        if tag == "a" and "right-next" in classes and self.page.next_href is None:
            self.page.next_href = a.get("href")

    def handle_endtag(self, tag):
        if tag == "article" and self.article:
            self.article -= 1
        if self.heading and tag == f"h{self.heading[0]}":
            level, text, line = self.heading
            self.page.headings.append((level, " ".join(text.replace("#", "").split()), line))
            self.heading = None

    def handle_data(self, data):
        if self.heading is not None:
            self.heading[1] += data


@functools.cache
def parse(path: Path) -> ParsedPage:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf8", errors="replace"))
    parser.close()
    return parser.page


def _html_files(site: Path) -> list[Path]:
    return sorted(
        p for p in site.rglob("*.html") if not SKIP_DIRS & set(p.relative_to(site).parts[:-1])
    )


def _check_ref(site: Path, page: Path, value: str) -> str | None:
    """None if `value` (an href or src of `page`) resolves inside the site, else what is wrong."""
    if not value or value == "#" or SCHEME.match(value) or value.startswith("//"):
        return None  # empty, "this page", or outside the site (checked by the browser tests)
    parts = urlsplit(value)
    path = unquote(parts.path)
    if path:
        target = (page.parent / path).resolve()
        if path.endswith("/") or target.is_dir():
            target = target / "index.html"
    else:
        target = page
    try:
        target.relative_to(site)
    except ValueError:
        return f"points outside the built site ({target})"
    if not target.is_file():
        return f"missing file {target.relative_to(site)}"
    fragment = unquote(parts.fragment)
    if fragment and target.suffix == ".html" and fragment not in parse(target).ids:
        return f"no id {fragment!r} in {target.relative_to(site)}"
    return None


def test_internal_links_and_anchors_resolve(site):
    files = _html_files(site)
    assert files, f"no HTML page under {site}"
    problems = []
    for page in files:
        for line, where, value in parse(page).refs:
            if (problem := _check_ref(site, page, value)) is not None:
                problems.append(f"{page.relative_to(site)}:{line} {where}={value!r}: {problem}")
    assert not problems, f"{len(problems)} broken internal links:\n  " + "\n  ".join(
        sorted(set(problems))[:200]
    )


def test_every_toc_page_was_built(site):
    missing = [p.html for p in toc_pages() if not (site / p.html).is_file()]
    assert not missing, f"pages of the toc missing from {site}: {missing}"


def test_headings_descend_in_order(site, toc_page):
    """The page starts with one h1 and never skips a level going down (no h2 -> h4)."""
    path = site / toc_page.html
    assert path.is_file(), f"{toc_page.html} was not built"
    headings = parse(path).headings
    assert headings, f"{toc_page}: no heading in the article"
    first = headings[0]
    assert first[0] == 1, f"{toc_page}: the first heading is h{first[0]} {first[1]!r}, not an h1"
    jumps = [
        f"h{a[0]} {a[1]!r} -> h{b[0]} {b[1]!r} (line {b[2]})"
        for a, b in zip(headings, headings[1:], strict=False)
        if b[0] > a[0] + 1
    ]
    assert not jumps, f"{toc_page}: headings skip a level:\n  " + "\n  ".join(jumps)


def test_next_buttons_walk_the_toc_in_order(site):
    """From the first page, the "next" button at the foot of each page leads through the toc."""
    expected = [p.docname for p in toc_pages()]
    walked = []
    page = site / toc_pages()[0].html
    while page.is_file() and len(walked) <= len(expected):
        walked.append(page.relative_to(site).with_suffix("").as_posix())
        href = parse(page).next_href
        if not href:
            break
        page = (page.parent / unquote(urlsplit(href).path)).resolve()
    assert walked == expected, (
        "following 'next' from the first page visits\n  "
        + "\n  ".join(walked)
        + "\nbut the toc is\n  "
        + "\n  ".join(expected)
    )
