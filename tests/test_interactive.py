"""mlmprimer.interactive: the widgets carry the computed values, and the page's formulas
(book/_static/interactive.js, run with Node.js) agree with the library's."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mlmprimer as mlm
from mlmprimer import datasets, interactive
from mlmprimer.check.core import read_number
from mlmprimer.icc import design_effect, effective_sample_size

SCRIPT = Path(__file__).resolve().parents[1] / "book" / "_static" / "interactive.js"
NODE = shutil.which("node")


def page_params(widget: interactive.Html) -> dict:
    """The JSON the page's script reads, taken back out of the HTML."""
    match = re.search(r'data-mlm-params="([^"]*)"', widget.html)
    assert match, "no data-mlm-params in the widget's HTML"
    return json.loads(html.unescape(match.group(1)))


def run_js(expression: str):
    """Evaluate `expression` with `f` bound to interactive.js's formulas; its value as JSON."""
    if NODE is None:
        pytest.skip("Node.js is not installed: the page's formulas cannot be run outside a browser")
    code = (
        f"const f = require({json.dumps(str(SCRIPT))});\nconsole.log(JSON.stringify({expression}));"
    )
    out = subprocess.run([NODE, "-e", code], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def radon():
    data = datasets.load("radon")
    fit = mlm.lmer("log_radon ~ 1 + (1 | county)", data=data)
    tab = mlm.pooling(data, y="log_radon", group="county")
    tau2 = float(fit.varcorr["vcov"].iloc[0])
    return fit, tab, tau2, float(fit.sigma) ** 2


# ------------------------------------------------------------------------------------------
# the HTML carries the computed values


def test_shrinkage_widget_carries_the_fitted_values(radon):
    fit, tab, tau2, sigma2 = radon
    by_size = tab.sort_values("n", kind="stable")
    examples = {name: (row.n, row.no_pooling) for name, row in by_size.head(3).iterrows()}
    widget = interactive.shrinkage(float(fit.fixef["(Intercept)"]), tau2, sigma2, examples)
    params = page_params(widget)
    assert params == widget.params
    assert params["tau2"] == pytest.approx(tau2, rel=1e-3)
    assert params["sigma2"] == pytest.approx(sigma2, rel=1e-3)
    assert params["ratio"] == pytest.approx(tau2 / sigma2, rel=1e-3)
    assert params["grand_mean"] == pytest.approx(float(fit.fixef["(Intercept)"]), rel=1e-3)
    for (name, n, mean), (want, (n_want, mean_want)) in zip(
        params["groups"], examples.items(), strict=True
    ):
        assert (name, n) == (want, n_want)
        assert mean == pytest.approx(mean_want, rel=1e-3)
    # every control is labelled and the result is announced
    for control in ("group", "n", "ratio"):
        assert f'<label for="mlm-shrinkage-{control}">' in widget.html
    assert 'aria-live="polite"' in widget.html


def test_design_effect_widget_carries_the_computed_icc(radon):
    fit, tab, *_ = radon
    rho = float(mlm.icc(fit))
    widget = interactive.design_effect_calculator(rho, float(tab["n"].mean()), len(tab))
    params = page_params(widget)
    assert params["icc"] == pytest.approx(rho, rel=1e-3)
    assert params["cluster_size"] == pytest.approx(tab["n"].mean(), rel=1e-3)
    assert params["n_clusters"] == len(tab)


def test_numbers_are_rounded_to_stable_digits():
    assert interactive.stable(1 / 3) == 0.3333
    assert interactive.stable(-123456.7) == -123500.0
    with pytest.raises(ValueError, match="finite"):
        interactive.stable(float("nan"))


# ------------------------------------------------------------------------------------------
# the page's formulas agree with the library's


def test_js_weight_reproduces_the_pooling_table(radon):
    fit, tab, tau2, sigma2 = radon
    sizes = [int(n) for n in tab["n"]]
    got = run_js(f"{json.dumps(sizes)}.map(n => f.lambda(n, {tau2!r}, {sigma2!r}))")
    np.testing.assert_allclose(got, tab["weight"].to_numpy(), rtol=1e-9)
    means = tab["no_pooling"].tolist()
    beta0 = float(fit.fixef["(Intercept)"])
    got = run_js(
        f"{json.dumps(sizes)}.map((n, i) => f.partial(f.lambda(n, {tau2!r}, {sigma2!r}), "
        f"{json.dumps(means)}[i], {beta0!r}))"
    )
    # the model's own partial-pooling estimates (beta_0 + u_j), not the formula again
    np.testing.assert_allclose(got, tab["partial"].to_numpy(), atol=1e-6)


@pytest.mark.parametrize(("icc", "m", "j"), [(0.0, 10, 30), (0.05, 11, 30), (0.18, 44.9, 160)])
def test_js_design_effect_agrees_with_the_library(icc, m, j):
    deff, neff = run_js(f"[f.designEffect({icc}, {m}), f.effectiveN({j}, {m}, {icc})]")
    assert deff == pytest.approx(design_effect(icc, m), rel=1e-12)
    assert neff == pytest.approx(effective_sample_size(j * m, icc, m), rel=1e-12)


def test_js_slope_variance_is_the_quadratic_form():
    tau0, tau1, rho = 2.1, 0.6, -0.4
    cov = np.array([[tau0**2, rho * tau0 * tau1], [rho * tau0 * tau1, tau1**2]])
    xs = [-2.0, -0.5, 0.0, 1.3, 3.0]
    got = run_js(f"{json.dumps(xs)}.map(x => f.slopeVariance(x, {tau0}, {tau1}, {rho}))")
    want = [np.array([1.0, x]) @ cov @ np.array([1.0, x]) for x in xs]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("text", ["0.25", " 12.5 % ", "-3", "+.5", "1e-3", "2.5E2%", "7."])
def test_js_reads_numbers_as_the_notebook_checks_do(text):
    assert run_js(f"f.readNumber({json.dumps(text)})") == pytest.approx(read_number(text))


@pytest.mark.parametrize("text", ["", "abc", "1/4", "0.2.5", "NaN"])
def test_js_refuses_what_is_no_number(text):
    assert run_js(f"f.readNumber({json.dumps(text)})") is None


# ------------------------------------------------------------------------------------------
# questions


def icc_question(tau2: float, sigma2: float) -> interactive.Html:
    return interactive.number_question(
        "q-icc",
        f"tau^2 = {tau2} and sigma^2 = {sigma2}: what is the ICC?",
        tau2 / (tau2 + sigma2),
        right="the share of the variance between groups",
        otherwise="divide tau^2 by tau^2 + sigma^2",
        slips=[
            interactive.Slip(tau2 / sigma2, "you divided by sigma^2 alone"),
            interactive.Slip(
                np.sqrt(tau2) / (np.sqrt(tau2) + np.sqrt(sigma2)), "you used standard deviations"
            ),
        ],
    )


@pytest.mark.parametrize(
    ("answer", "status", "message"),
    [
        ("0.25", "right", "the share of the variance between groups"),
        ("25 %", "right", "the share of the variance between groups"),
        ("0.333", "slip", "you divided by sigma^2 alone"),
        ("0.366", "slip", "you used standard deviations"),
        ("0.9", "otherwise", "divide tau^2 by tau^2 + sigma^2"),
        ("a quarter", "unreadable", "Write a number"),
    ],
)
def test_js_names_the_slip_of_a_number_answer(answer, status, message):
    params = page_params(icc_question(1.0, 3.0))
    verdict = run_js(f"f.judgeNumber({json.dumps(params)}, {json.dumps(answer)})")
    assert verdict["status"] == status
    assert verdict["message"].startswith(message)


def test_js_judges_a_choice():
    q = interactive.choice_question(
        "q-c",
        "Which groups are pulled hardest?",
        [
            interactive.Choice("small", "their means are noisiest", correct=True),
            interactive.Choice("large", "large groups keep their means"),
        ],
    )
    params = page_params(q)
    verdicts = run_js(f"[0, 1, null].map(i => f.judgeChoice({json.dumps(params)}, i))")
    assert [v["status"] for v in verdicts] == ["right", "slip", "unreadable"]
    assert verdicts[1]["message"] == "large groups keep their means"
    assert 'type="radio"' in q.html and '<label for="q-c-c0">' in q.html


# ------------------------------------------------------------------------------------------
# bad input


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="tau2 must be a positive number"):
        interactive.shrinkage(0.0, -1.0, 1.0, {"a": (3, 1.0)})
    with pytest.raises(ValueError, match="group 'a': n_j must be a whole number"):
        interactive.shrinkage(0.0, 1.0, 1.0, {"a": (2.5, 1.0)})
    with pytest.raises(ValueError, match="at least one example group"):
        interactive.shrinkage(0.0, 1.0, 1.0, {})
    with pytest.raises(ValueError, match="n_clusters must be a whole number"):
        interactive.design_effect_calculator(0.1, 10, 0)
    with pytest.raises(ValueError, match="rho must lie in"):
        interactive.slope_variance(1.0, 1.0, 1.5, 1.0, (0, 1))
    with pytest.raises(ValueError, match="ident must be lower-case"):
        interactive.design_effect_calculator(0.1, 10, 3, ident="Not an id")
    with pytest.raises(ValueError, match="exactly one correct"):
        interactive.choice_question("q", "?", [interactive.Choice("a", "x", correct=True)] * 2)
    with pytest.raises(ValueError, match="within the tolerance of another slip"):
        interactive.number_question(
            "q", "?", 1.0, right="r", otherwise="o",
            slips=[interactive.Slip(2.0, "a"), interactive.Slip(2.001, "b")],
        )  # fmt: skip
