"""The checks of chapter 11, growth over time: right answers pass, slips are named.

The generic properties of every check (unanswered, junk answers, the registry) are tested in
``test_check.py``. The exercises ask the chapter's questions of the response speed of the sleep
study (1000 / Reaction) and of log(distance) in Orthodont. Their right answers are compared with
lme4, run live on lme4's sleepstudy and nlme's Orthodont (skipped without R, required on CI), and
with properties that hold whatever the engine: in these balanced data every subject has the same
times, so the fixed effects equal ordinary least squares, and moving the zero of time leaves the
slope and the likelihood alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.formula.api as smf
from r_setup import r_numbers

from mlmprimer import check, datasets
from mlmprimer.check import ch11

LME4_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
s <- subset(sleepstudy, Days >= 2)
s$dep <- s$Days - 2
s$dep_end <- s$dep - 7
s$speed <- 1000 / s$Reaction
m <- lmer(speed ~ dep + (dep | Subject), data = s)
e <- lmer(speed ~ dep_end + (dep_end | Subject), data = s)
o <- nlme::Orthodont
o$age11 <- o$age - 11
r <- lmer(log(distance) ~ age11 * Sex + (age11 | Subject), data = o)
vm <- as.data.frame(VarCorr(m))
ve <- as.data.frame(VarCorr(e))
out <- c(
  b0 = unname(fixef(m)[1]),
  b1 = unname(fixef(m)[2]),
  tau0 = vm$sdcor[1],
  rho = vm$sdcor[3],
  b0_end = unname(fixef(e)[1]),
  tau0_end = ve$sdcor[1],
  rho_end = ve$sdcor[3],
  girls = unname(fixef(r)["age11"] + fixef(r)["age11:SexFemale"]),
  inter = unname(fixef(r)["age11:SexFemale"])
)
for (k in names(out)) cat(k, sprintf("%.10g", out[[k]]), "\n")
"""


@pytest.fixture(scope="module")
def lme4_numbers() -> dict[str, float]:
    return r_numbers(LME4_SCRIPT, ("lme4", "nlme"))


def truth() -> dict[str, float]:
    return {**ch11._ch11_sleep(), **ch11._ch11_orthodont()}


def test_answers_agree_with_lme4(lme4_numbers: dict[str, float]) -> None:
    ours = truth()
    for key, want in lme4_numbers.items():
        assert math.isclose(ours[key], want, rel_tol=1e-4), (key, ours[key], want)


def test_balanced_fixed_effects_are_least_squares() -> None:
    sleep = datasets.load("sleepstudy").query("Days >= 2")
    sleep = sleep.assign(dep=sleep["Days"] - 2, speed=1000 / sleep["Reaction"])
    ols = smf.ols("speed ~ dep", data=sleep).fit()
    assert math.isclose(truth()["b0"], ols.params["Intercept"], rel_tol=1e-6)
    assert math.isclose(truth()["b1"], ols.params["dep"], rel_tol=1e-6)
    orth = datasets.load("orthodont")
    orth = orth.assign(age11=orth["age"] - 11, log_distance=np.log(orth["distance"]))
    ols = smf.ols("log_distance ~ age11 * Sex", data=orth).fit()
    girls = ols.params["age11"] + ols.params["age11:Sex[T.Female]"]
    assert math.isclose(truth()["inter"], ols.params["age11:Sex[T.Female]"], rel_tol=1e-6)
    assert math.isclose(truth()["girls"], girls, rel_tol=1e-6)


def test_the_chapters_answers_are_not_the_exercises() -> None:
    """The chapter prints the answers in ms and mm; they are named slips here, not right."""
    t = truth()
    r = check.ex11_1(t["b0_ms"], t["b1_ms"])
    assert r.status == "incorrect"
    assert all("ms" in message for _, _, message in r.parts)
    # 1000 / (average reaction time) is within 1% of the average speed: it must not pass
    assert abs(t["inverse_b0_ms"] - t["b0"]) < 0.01 * t["b0"]
    message = check.ex11_1(t["inverse_b0_ms"], t["b1"]).parts[0][2]
    assert "reciprocal" in message
    r = check.ex11_3(t["girls_mm"], t["inter_mm"])
    assert r.status == "incorrect"
    assert all("log(distance)" in message for _, _, message in r.parts)


def test_moving_the_zero_of_time() -> None:
    t = truth()
    # the intercept moves by 7 slopes; the lines fan out, so the intercepts spread further
    assert math.isclose(t["b0_end"], t["b0"] + 7 * t["b1"], rel_tol=1e-5)
    assert t["tau0_end"] > t["tau0"]
    assert t["rho_end"] > t["rho"]


def test_right_answers_pass() -> None:
    t = truth()
    assert check.ex11_1(t["b0"], t["b1"]).status == "correct"
    assert check.ex11_1(round(t["b0"], 2), round(t["b1"], 3)).status == "correct"
    assert check.ex11_2("larger", t["tau0_end"], t["rho_end"]).status == "correct"
    assert check.ex11_3(t["girls"], t["inter"]).status == "correct"


@pytest.mark.parametrize(
    ("key", "word"),
    [("b0_all", "training day"), ("b0_raw", "not shifted"), ("tau0", "SD of the subjects")],
)
def test_ex11_1_names_the_baseline_slips(key: str, word: str) -> None:
    r = check.ex11_1(truth()[key], truth()["b1"])
    assert r.status == "partial"
    assert word in r.parts[0][2]


def test_ex11_1_names_the_all_days_slope() -> None:
    r = check.ex11_1(truth()["b0"], truth()["b1_all"])
    assert r.status == "partial"
    assert "adaptation" in r.parts[1][2]


def test_ex11_2_slips_and_prediction() -> None:
    t = truth()
    r = check.ex11_2("smaller", t["tau0_end_var"], t["rho"])
    assert r.status == "partial"
    messages = dict((name, message) for name, _, message in r.parts)
    assert "variance" in messages["tau0_end"]
    assert "baseline" in messages["rho_end"]
    # a prediction scores whatever it says, and is compared once the SD is right
    r = check.ex11_2("smaller", t["tau0_end"], t["rho_end"])
    assert r.score == r.max_score
    assert "say otherwise" in dict((n, m) for n, _, m in r.parts)["prediction_tau0_end"]
    assert check.ex11_2("perhaps", ..., ...).status == "incorrect"


def test_ex11_3_names_the_slips() -> None:
    t = truth()
    r = check.ex11_3(t["boys"], t["sex"])
    messages = dict((name, message) for name, _, message in r.parts)
    assert r.status == "incorrect"
    assert "boys' rate" in messages["girls_rate"]
    assert "level at age 11" in messages["rate_difference"]
    r = check.ex11_3(t["girls"], -t["inter"])
    assert r.status == "partial" and "sign" in r.parts[1][2]


def test_ex11_4_wants_forty_words() -> None:
    assert check.ex11_4("independent errors").status == "incorrect"
    long = " ".join(["The residuals are measured from each subject's own fitted line."] * 5)
    r = check.ex11_4(long + " nlme's corAR1 fits it.")
    assert r.status == "recorded"
    assert any("simulat" in h or "independence" in h for h in r.hints)
