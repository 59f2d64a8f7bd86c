"""Shared pieces of the browser tests: the pages of the toc, the built book served on 127.0.0.1,
headless Chromium driven by Playwright, and one cached visit per page.

Run after `make book`:  .venv/bin/pytest -m browser -o addopts="" tests/browser

Environment:
- CI=true                turns each "cannot run here" skip (no Chromium, no book) into a failure;
- MLMPRIMER_HTML         the built site (default: _build/html);
- MLMPRIMER_TOC          the toc the site was built from (default: _toc.yml);
- MLMPRIMER_CHROMIUM     the browser executable (default: /usr/bin/chromium);
- MLMPRIMER_SEARCH_TERM  a term the search must find (default: intraclass), and
  MLMPRIMER_SEARCH_PAGE  the page it must find it on once that page is in the toc (book/04-icc);
- MLMPRIMER_SCREENSHOT_PAGE  the chapter to screenshot (default: the first notebook chapter).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("MLMPRIMER_HTML", ROOT / "_build" / "html")).resolve()
TOC = Path(os.environ.get("MLMPRIMER_TOC", ROOT / "_toc.yml")).resolve()
SCREENSHOTS = HTML.parent / "screenshots"
CHROMIUM = os.environ.get("MLMPRIMER_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI") == "true"

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Errors of the toolchain itself, each known to be harmless, with the reason. Keep this short: the
# one the toolchain used to log on every page (an inline script written twice) is removed at its
# cause by book/_ext/inline_scripts.py.
KNOWN_ERRORS: set[str] = set()


def js_errors(messages) -> list[str]:
    """The messages that are not known, harmless errors of the toolchain."""
    return [m for m in messages if not any(known in m for known in KNOWN_ERRORS)]


SOURCE_SUFFIXES = (".ipynb", ".md", ".rst")
LOCAL_HOSTS = {"127.0.0.1"}


# --------------------------------------------------------------------------------------------------
# Skips that are failures in CI


def require(condition: bool, reason: str) -> None:
    """Skip the test with `reason` unless `condition`; in CI (CI=true) fail instead."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------------------------------
# The toc


@dataclass(frozen=True)
class TocPage:
    docname: str  # "book/notation"
    source: Path | None  # its source file, when found
    part: str | None  # caption of the part it is in (None for the root and part-less books)
    depth: int  # 0 root, 1 chapter, 2 section, ...

    @property
    def html(self) -> str:
        return f"{self.docname}.html"

    @property
    def is_notebook(self) -> bool:
        return self.source is not None and self.source.suffix == ".ipynb"

    @property
    def is_root(self) -> bool:
        return self.depth == 0

    def __str__(self) -> str:
        return self.docname


def _docname(entry: str) -> tuple[str, Path | None]:
    entry = entry.strip().lstrip("/")
    for suffix in SOURCE_SUFFIXES:
        if entry.endswith(suffix):
            entry = entry[: -len(suffix)]
            break
    for suffix in SOURCE_SUFFIXES:
        candidate = TOC.parent / f"{entry}{suffix}"
        if candidate.is_file():
            return entry, candidate
    return entry, None


def _walk(entries, part, depth, out):
    for entry in entries or []:
        if not isinstance(entry, dict):
            continue
        if "file" in entry:
            name, source = _docname(str(entry["file"]))
            out.append(TocPage(name, source, part, depth))
        elif "glob" in entry:
            found = set()
            for suffix in SOURCE_SUFFIXES:
                for path in TOC.parent.glob(f"{entry['glob']}{suffix}"):
                    found.add(path.relative_to(TOC.parent).with_suffix("").as_posix())
            for name in sorted(found):
                out.append(TocPage(*_docname(name), part=part, depth=depth))
        for key in ("sections", "chapters"):
            _walk(entry.get(key), part, depth + 1, out)


@functools.cache
def toc_pages() -> tuple[TocPage, ...]:
    """Every page of the toc in reading order (root first), as the left navigation lists them."""
    import yaml

    toc = yaml.safe_load(TOC.read_text(encoding="utf8"))
    root_name, root_source = _docname(str(toc["root"]))
    out = [TocPage(root_name, root_source, None, 0)]
    for part in toc.get("parts") or []:
        _walk(part.get("chapters"), part.get("caption"), 1, out)
    _walk(toc.get("chapters"), None, 1, out)
    _walk(toc.get("sections"), None, 1, out)
    return tuple(out)


@functools.cache
def toc_parts() -> tuple[str, ...]:
    import yaml

    toc = yaml.safe_load(TOC.read_text(encoding="utf8"))
    return tuple(p.get("caption") or "" for p in toc.get("parts") or [])


def solution_pages() -> tuple[TocPage, ...]:
    """Pages of a part whose caption says Solutions (or whose path is solutions/...)."""
    return tuple(
        p
        for p in toc_pages()
        if (p.part and re.search(r"solution", p.part, re.I)) or p.docname.startswith("solutions/")
    )


def pytest_generate_tests(metafunc):
    # An unreadable toc is a collection error, on purpose: the book cannot be built either.
    if "toc_page" in metafunc.fixturenames:
        pages = toc_pages()
        metafunc.parametrize("toc_page", pages, ids=[p.docname for p in pages])


# --------------------------------------------------------------------------------------------------
# The built site on 127.0.0.1


@pytest.fixture(scope="session")
def site() -> Path:
    index = HTML / "index.html"
    require(index.is_file(), f"{index} is missing: run `make book` first")
    return HTML


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def server(site) -> str:
    """Base URL (ending in /) of a threaded http.server serving the book; stopped at the end."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="book-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


# Straight to 127.0.0.1, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str) -> tuple[int, bytes]:
    """Status and body of a GET of a local URL (the fragment dropped)."""
    try:
        with _OPENER.open(url.split("#", 1)[0], timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


@functools.cache
def http_status(url: str) -> int:
    """Status of a GET of a local URL (the fragment dropped); cached over the session."""
    return fetch(url)[0]


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "javascript", "mailto"):
        return True
    return parts.hostname in LOCAL_HOSTS


# --------------------------------------------------------------------------------------------------
# The browser


@pytest.fixture(scope="session")
def browser(site):
    require(
        Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK),
        f"no Chromium at {CHROMIUM} (Debian: `make sysdeps` installs it)",
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright for Python is not installed (the `test` extra has it)")
    profile = tempfile.mkdtemp(prefix="mlmprimer-chromium-")
    pw = sync_playwright().start()
    try:
        # Playwright gives the browser a fresh temporary --user-data-dir; it never downloads one.
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            env={**os.environ, "HOME": profile},
        )
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()
        shutil.rmtree(profile, ignore_errors=True)


class OfflinePage:
    """A browser page in its own context that may only talk to 127.0.0.1; everything else is
    aborted and recorded, as are console errors, uncaught exceptions and failed local loads."""

    def __init__(self, browser, viewport=DESKTOP):
        self.context = browser.new_context(viewport=viewport, service_workers="block")
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.external: list[tuple[str, str]] = []  # (resource type, url)
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.bad_responses: list[tuple[int, str]] = []
        self.failed_requests: list[tuple[str, str]] = []
        self.context.route("**/*", self._route)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        self.page.on("response", self._response)
        self.page.on("requestfailed", self._failed)

    def _route(self, route):
        request = route.request
        if is_local(request.url):
            route.continue_()
        else:
            self.external.append((request.resource_type, request.url))
            route.abort("blockedbyclient")

    def _console(self, msg):
        if msg.type != "error":
            return
        where = (msg.location or {}).get("url", "")
        # A blocked outside request logs "Failed to load resource"; it is reported as external.
        if "net::ERR_BLOCKED_BY_CLIENT" in msg.text or (where and not is_local(where)):
            return
        self.console_errors.append(f"{msg.text} ({where})" if where else msg.text)

    def _response(self, response):
        if is_local(response.url) and response.status >= 400:
            self.bad_responses.append((response.status, response.url))

    def _failed(self, request):
        if is_local(request.url):
            self.failed_requests.append((request.failure or "failed", request.url))

    def errors(self) -> list[str]:
        return js_errors(self.page_errors + self.console_errors)

    def close(self):
        self.context.close()


@pytest.fixture
def offline_page(browser):
    pages = []

    def make(viewport=DESKTOP) -> OfflinePage:
        page = OfflinePage(browser, viewport)
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.close()


# --------------------------------------------------------------------------------------------------
# One visit per page, shared by the per-page tests

JS_DIR = Path(__file__).resolve().parent

WAIT_FOR_MATHJAX = """
async () => {
  const math = document.querySelectorAll('.math').length;
  const MJ = window.MathJax;
  if (!MJ || !MJ.startup || !MJ.startup.promise) {
    return {loaded: false, version: null, math, error: null};
  }
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error('MathJax did not finish within 20 s')), 20000));
  try {
    await Promise.race([MJ.startup.promise, timeout]);
  } catch (err) {
    return {loaded: true, version: MJ.version, math, error: String(err)};
  }
  return {loaded: true, version: MJ.version, math, error: null};
}
"""

INSPECT = (JS_DIR / "inspect_page.js").read_text(encoding="utf8")
LAYOUT = (JS_DIR / "layout.js").read_text(encoding="utf8")
TOGGLES = (JS_DIR / "toggles.js").read_text(encoding="utf8")


@dataclass
class PageReport:
    page: TocPage
    url: str
    status: int | None
    mathjax: dict
    dom: dict
    phone: dict
    toggles_before: list
    toggles_after: list
    download: dict
    external: list = field(default_factory=list)
    console_errors: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)
    bad_responses: list = field(default_factory=list)
    failed_requests: list = field(default_factory=list)


class Visitor:
    def __init__(self, browser, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.reports: dict[str, PageReport] = {}

    def url(self, page: TocPage) -> str:
        return urljoin(self.base_url, page.html)

    def visit(self, page: TocPage) -> PageReport:
        if page.docname not in self.reports:
            self.reports[page.docname] = self._visit(page)
        return self.reports[page.docname]

    def _visit(self, toc_page: TocPage) -> PageReport:
        tab = OfflinePage(self.browser, DESKTOP)
        try:
            p = tab.page
            url = self.url(toc_page)
            response = p.goto(url, wait_until="load")
            status = response.status if response else None
            mathjax = p.evaluate(WAIT_FOR_MATHJAX)
            p.wait_for_timeout(50)  # copybutton / togglebutton run on DOMContentLoaded
            dom = p.evaluate(INSPECT)
            download = self._download(p)
            toggles_before = p.evaluate(TOGGLES, False)
            toggles_after = p.evaluate(TOGGLES, True) if toggles_before else []
            # the same page at a phone's width (the theme's layout is pure CSS media queries)
            p.keyboard.press("Escape")
            p.set_viewport_size(PHONE)
            p.wait_for_timeout(300)
            phone = p.evaluate(LAYOUT)
            return PageReport(
                page=toc_page,
                url=url,
                status=status,
                mathjax=mathjax,
                dom=dom,
                phone=phone,
                toggles_before=toggles_before,
                toggles_after=toggles_after,
                download=download,
                external=list(tab.external),
                console_errors=list(tab.console_errors),
                page_errors=list(tab.page_errors),
                bad_responses=list(tab.bad_responses),
                failed_requests=list(tab.failed_requests),
            )
        finally:
            tab.close()

    @staticmethod
    def _download(p) -> dict:
        """Open the header's download menu; which files does it offer, are they visible?"""
        button = p.locator(".dropdown-download-buttons button.dropdown-toggle")
        if button.count() == 0:
            return {"button": False, "items": []}
        button.first.click()
        items = p.locator(".dropdown-download-buttons .dropdown-menu a")
        try:
            items.first.wait_for(state="visible", timeout=5_000)
        except Exception:
            pass
        out = []
        for i in range(items.count()):
            a = items.nth(i)
            out.append(
                {
                    "href": a.evaluate("a => a.href"),
                    "text": a.inner_text().strip(),
                    "visible": a.is_visible(),
                }
            )
        p.keyboard.press("Escape")
        return {"button": True, "items": out}


@pytest.fixture(scope="session")
def visitor(browser, server) -> Visitor:
    return Visitor(browser, server)
