"""The book's interactive figures and self-check questions, driven by keyboard in headless
Chromium with the network blocked: each figure moves its output, the numbers it shows agree with
the library's formulas, and each question answers a known slip with the feedback that names it.
Needs `make book` first; see conftest.py for how it runs and skips.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest

from mlmprimer.icc import design_effect, effective_sample_size

from .conftest import ROOT, js_errors

pytestmark = pytest.mark.browser

SHRINKAGE_PAGE = "book/05-shrinkage"
DEFF_PAGE = "book/04-icc"
SLOPE_PAGE = "book/06-random-slopes"


def _pages_with(kind: str) -> list[str]:
    """The chapters whose stored outputs hold a widget of this kind."""
    marker = f'data-mlm-widget=\\"{kind}\\"'
    return sorted(
        f"book/{p.stem}"
        for p in (ROOT / "book").glob("*.ipynb")
        if marker in p.read_text(encoding="utf8")
    )


QUESTION_PAGES = _pages_with("question")


@pytest.fixture
def open_page(offline_page, server):
    """Open a chapter offline and wait until interactive.js has set up its widgets."""
    tabs = []

    def make(docname: str):
        tab = offline_page()
        tabs.append(tab)
        response = tab.page.goto(urljoin(server, f"{docname}.html"), wait_until="load")
        assert response and response.status == 200, f"{docname}.html did not load"
        widgets = tab.page.locator("[data-mlm-widget]")
        assert widgets.count() > 0, f"{docname}: no interactive widget in the page"
        tab.page.wait_for_selector("[data-mlm-widget][data-mlm-ready]", timeout=10_000)
        not_ready = tab.page.locator("[data-mlm-widget]:not([data-mlm-ready])")
        assert not_ready.count() == 0, f"{docname}: widgets interactive.js did not set up"
        return tab

    yield make
    for tab in tabs:
        assert not tab.external, f"requests to outside the book: {tab.external}"
        assert not js_errors(tab.errors()), f"JavaScript errors: {tab.errors()}"


def params(locator) -> dict:
    return json.loads(locator.get_attribute("data-mlm-params"))


def labelled(page, widget_id: str) -> None:
    """Every input and select of the widget has a label (or aria-label); its result is live."""
    missing = page.evaluate(
        """id => Array.from(document.getElementById(id).querySelectorAll('input, select'))
             .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
             .map(el => el.id)""",
        widget_id,
    )
    assert not missing, f"{widget_id}: controls without a label: {missing}"
    live = page.locator(f"#{widget_id} [aria-live]")
    assert live.count() >= 1, f"{widget_id}: no aria-live output"


def press(page, selector: str, key: str, times: int = 1) -> None:
    page.focus(selector)
    for _ in range(times):
        page.keyboard.press(key)


def number(page, selector: str, attribute: str) -> float:
    return float(page.get_attribute(selector, attribute))


# --------------------------------------------------------------------------------------------------
# Chapter 5: the partial-pooling estimate


def test_shrinkage_weight_follows_the_keyboard(open_page):
    tab = open_page(SHRINKAGE_PAGE)
    page = tab.page
    widget = page.locator("#mlm-shrinkage")
    p = params(widget)
    labelled(page, "mlm-shrinkage")
    result = "#mlm-shrinkage-result"

    def check(n: int, ratio: float, group_mean: float) -> float:
        tau2 = ratio * p["sigma2"]
        lam = tau2 / (tau2 + p["sigma2"] / n)  # lambda_j as chapter 5 defines it
        assert number(page, result, "data-lambda") == pytest.approx(lam, rel=1e-9)
        estimate = lam * group_mean + (1 - lam) * p["grand_mean"]
        assert number(page, result, "data-estimate") == pytest.approx(estimate, rel=1e-9)
        text = page.inner_text(result)
        assert f"= {lam:.2f}." in text, text
        assert f"= {estimate:.2f}" in text, text
        return lam

    name, n0, mean0 = p["groups"][0]
    assert page.input_value("#mlm-shrinkage-n-box") == str(n0)
    lam0 = check(n0, p["ratio"], mean0)

    press(page, "#mlm-shrinkage-n", "ArrowRight", 3)
    assert page.input_value("#mlm-shrinkage-n-box") == str(n0 + 3)
    lam_more = check(n0 + 3, p["ratio"], mean0)
    assert lam_more > lam0, "more homes must give the county's own mean more weight"

    # the ratio slider is on a log scale: read the ratio it moved to from its number box
    press(page, "#mlm-shrinkage-ratio", "ArrowLeft", 20)
    ratio = float(page.input_value("#mlm-shrinkage-ratio-box"))
    assert ratio < p["ratio"]
    lam_less = check(n0 + 3, ratio, mean0)
    assert lam_less < lam_more, "a smaller tau^2 must pull the county harder"
    tau2 = ratio * p["sigma2"]

    # another example county, chosen with the keyboard
    press(page, "#mlm-shrinkage-group", "ArrowDown")
    _, n1, mean1 = p["groups"][1]
    assert page.input_value("#mlm-shrinkage-n-box") == str(n1)
    lam = number(page, result, "data-lambda")
    tau2_now = lam * p["sigma2"] / n1 / (1 - lam)
    assert number(page, result, "data-estimate") == pytest.approx(
        lam * mean1 + (1 - lam) * p["grand_mean"], rel=1e-9
    )
    assert tau2_now == pytest.approx(tau2, rel=1e-6)


def test_shrinkage_ratio_box_accepts_a_typed_value(open_page):
    page = open_page(SHRINKAGE_PAGE).page
    p = params(page.locator("#mlm-shrinkage"))
    page.fill("#mlm-shrinkage-n-box", "1")
    page.press("#mlm-shrinkage-n-box", "Tab")
    ratio = p["ratio"] * 4
    page.fill("#mlm-shrinkage-ratio-box", f"{ratio}")
    page.press("#mlm-shrinkage-ratio-box", "Tab")
    lam = ratio / (ratio + 1)  # tau^2 / (tau^2 + sigma^2 / 1), divided by sigma^2
    assert number(page, "#mlm-shrinkage-result", "data-lambda") == pytest.approx(lam, rel=1e-9)


# --------------------------------------------------------------------------------------------------
# Chapter 4: design effect and effective sample size


def test_design_effect_follows_the_keyboard(open_page):
    page = open_page(DEFF_PAGE).page
    widget = page.locator("#mlm-design-effect")
    p = params(widget)
    labelled(page, "mlm-design-effect")
    result = "#mlm-design-effect-result"

    def check(icc: float, m: float, j: int) -> None:
        deff = design_effect(icc, m)
        assert number(page, result, "data-deff") == pytest.approx(deff, rel=1e-12)
        assert number(page, result, "data-neff") == pytest.approx(
            effective_sample_size(j * m, icc, m), rel=1e-12
        )
        assert f"= {deff:.2f}." in page.inner_text(result)

    check(p["icc"], p["cluster_size"], p["n_clusters"])
    before = number(page, result, "data-deff")
    press(page, "#mlm-design-effect-icc", "ArrowRight", 4)
    icc = float(page.input_value("#mlm-design-effect-icc"))
    assert icc > p["icc"]
    assert float(page.input_value("#mlm-design-effect-icc-box")) == icc
    check(icc, p["cluster_size"], p["n_clusters"])
    assert number(page, result, "data-deff") > before

    page.fill("#mlm-design-effect-m-box", "20")
    page.press("#mlm-design-effect-m-box", "Tab")
    press(page, "#mlm-design-effect-j", "ArrowLeft", 2)
    check(icc, 20.0, p["n_clusters"] - 2)

    # ICC = 0: no loss at all
    page.fill("#mlm-design-effect-icc-box", "0")
    page.press("#mlm-design-effect-icc-box", "Tab")
    assert number(page, result, "data-deff") == 1.0


# --------------------------------------------------------------------------------------------------
# Chapter 6: the between-school variance at x


def test_slope_variance_follows_the_keyboard(open_page):
    page = open_page(SLOPE_PAGE).page
    p = params(page.locator("#mlm-slope-variance"))
    labelled(page, "mlm-slope-variance")
    result = "#mlm-slope-variance-result"
    cov = np.array(
        [
            [p["tau0"] ** 2, p["rho"] * p["tau0"] * p["tau1"]],
            [p["rho"] * p["tau0"] * p["tau1"], p["tau1"] ** 2],
        ]
    )

    def check() -> float:
        x = float(page.input_value("#mlm-slope-variance-x"))
        z = np.array([1.0, x])
        v = float(z @ cov @ z)
        assert number(page, result, "data-variance") == pytest.approx(v, rel=1e-9)
        share = v / (v + p["sigma"] ** 2)
        assert number(page, result, "data-share") == pytest.approx(share, rel=1e-9)
        assert f"= {share:.3f}." in page.inner_text(result)
        return x

    x0 = check()
    press(page, "#mlm-slope-variance-x", "ArrowRight", 10)
    x1 = check()
    assert x1 == pytest.approx(x0 + 0.5)
    press(page, "#mlm-slope-variance-x", "End")
    assert check() == pytest.approx(p["x_max"])


# --------------------------------------------------------------------------------------------------
# Self-check questions


def _far_from(values: list[float], answer: float) -> float:
    """A number no slip or answer is near."""
    guess = 7.0 * abs(answer) + 13.0
    while any(math.isclose(guess, v, rel_tol=0.1) for v in values):
        guess = guess * 3 + 1
    return guess


@pytest.mark.parametrize("docname", QUESTION_PAGES or [pytest.param(None, marks=pytest.mark.skip)])
def test_questions_name_the_slip(open_page, docname):
    page = open_page(docname).page
    questions = page.locator('[data-mlm-widget="question"]')
    assert questions.count() >= 2, f"{docname}: fewer than two self-check questions"
    for k in range(questions.count()):
        q = questions.nth(k)
        qid = q.get_attribute("id")
        p = params(q)
        assert page.locator(f"#{qid} [aria-live]").count() == 1
        feedback = f"#{qid}-feedback"

        def verdict(feedback: str = feedback) -> tuple[str, str]:
            return page.get_attribute(feedback, "data-status"), page.inner_text(feedback)

        if p["kind"] == "number":
            box = f"#{qid}-answer"
            assert page.locator(f'label[for="{qid}-answer"]').count() == 1
            cases = [(p["answer"], "right", p["right"])]
            cases += [(s["value"], "slip", s["feedback"]) for s in p["slips"]]
            values = [p["answer"], *(s["value"] for s in p["slips"])]
            cases += [(_far_from(values, p["answer"]), "otherwise", p["otherwise"])]
            for value, status, message in cases:
                page.fill(box, f"{value:.6g}")
                page.press(box, "Enter")
                got = verdict()
                assert got[0] == status, f"{qid}: answer {value:.6g} gave {got}"
                assert got[1].endswith(message), f"{qid}: answer {value:.6g} gave {got[1]!r}"
                prefix = "✓ Right." if status == "right" else "✗ Not yet."
                assert got[1].startswith(prefix), got[1]
            page.fill(box, "about a half")
            page.press(box, "Enter")
            assert verdict()[0] == "unreadable"
        else:
            assert p["kind"] == "choice"
            assert sum(c["correct"] for c in p["choices"]) == 1
            for i, choice in enumerate(p["choices"]):
                radio = f"#{qid}-c{i}"
                assert page.locator(f'label[for="{qid}-c{i}"]').inner_text() == choice["label"]
                page.focus(radio)
                page.keyboard.press("Space")
                assert page.is_checked(radio)
                page.focus(f"#{qid} button[type=submit]")
                page.keyboard.press("Enter")
                status, text = verdict()
                assert status == ("right" if choice["correct"] else "slip"), (qid, i, status)
                assert text.endswith(choice["feedback"]), (qid, i, text)


def test_every_widget_chapter_is_checked():
    """The figures this file drives are the ones the chapters hold (a renamed id fails here)."""
    found = {kind: _pages_with(kind) for kind in ("shrinkage", "design-effect", "slope-variance")}
    assert found == {
        "shrinkage": [SHRINKAGE_PAGE],
        "design-effect": [DEFF_PAGE],
        "slope-variance": [SLOPE_PAGE],
    }
    assert {DEFF_PAGE, SHRINKAGE_PAGE, SLOPE_PAGE, "book/03-null-model"} <= set(QUESTION_PAGES)
    assert all(re.fullmatch(r"book/[0-9A]\w*-[\w-]+", p) for p in QUESTION_PAGES)
    assert Path(ROOT / "book" / "_static" / "interactive.js").is_file()
