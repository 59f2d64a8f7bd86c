"""The checks of chapter 8, predictors at two levels: right answers pass, slips are named.

The generic properties of every check (unanswered, junk answers, the registry) are tested in
``test_check.py``. Here the checks' right answers are compared with lme4, run live on mlmRev's
Hsb82 and Exam (skipped without R, required on CI), and with properties that hold whatever the
engine: the within-group effect of the Mundlak model equals the regression with a dummy per
group, and the between effect is the within plus the contextual effect.
"""

from __future__ import annotations

import math

import pytest
import statsmodels.formula.api as smf
from r_setup import r_numbers

from mlmprimer import check, datasets

# lme4's numbers for the Hsb82 and Exam exercises, each printed with 10 significant digits
LME4_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
d <- mlmRev::Hsb82
d$minority <- as.numeric(d$minrty == "Yes")
d$minority_mean <- ave(d$minority, d$school)
tau2 <- function(m) as.data.frame(VarCorr(m))$vcov[1]
se <- function(m, term) sqrt(vcov(m)[term, term])
m0 <- lmer(mAch ~ 1 + (1 | school), data = d)
m1 <- lmer(mAch ~ minrty + (1 | school), data = d)
mm <- lmer(mAch ~ minority + minority_mean + (1 | school), data = d)
e <- mlmRev::Exam
e$lrt_mean <- ave(e$standLRT, e$school)
e$lrt_c <- e$standLRT - e$lrt_mean
wb <- lmer(normexam ~ lrt_c + lrt_mean + (1 | school), data = e)
mu <- lmer(normexam ~ standLRT + lrt_mean + (1 | school), data = e)
cl <- lmer(normexam ~ lrt_c * lrt_mean + (lrt_c | school), data = e)
cl0 <- lmer(normexam ~ lrt_c * lrt_mean + (1 | school), data = e)
out <- c(
  r_tau2 = 1 - tau2(m1) / tau2(m0),
  r_sigma2 = 1 - sigma(m1)^2 / sigma(m0)^2,
  raw = unname(fixef(m1)["minrtyYes"]),
  within = unname(fixef(mm)["minority"]),
  contextual = unname(fixef(mm)["minority_mean"]),
  lrt_within = unname(fixef(wb)["lrt_c"]),
  lrt_between = unname(fixef(wb)["lrt_mean"]),
  lrt_contextual = unname(fixef(mu)["lrt_mean"]),
  inter = unname(fixef(cl)["lrt_c:lrt_mean"]),
  se_slope = se(cl, "lrt_c:lrt_mean"),
  se_intercept = se(cl0, "lrt_c:lrt_mean")
)
for (k in names(out)) cat(k, sprintf("%.10g", out[[k]]), "\n")
"""


@pytest.fixture(scope="module")
def lme4_numbers() -> dict[str, float]:
    return r_numbers(LME4_SCRIPT, ("lme4", "mlmRev"))


def test_hsb_and_exam_answers_agree_with_lme4(lme4_numbers: dict[str, float]) -> None:
    ours = {
        **{f"lrt_{k}": check._ch08_exam()[k] for k in ("within", "between", "contextual")},
        **{k: check._ch08_variances()[k] for k in ("r_tau2", "r_sigma2", "raw")},
        **{k: check._ch08_minrty()[k] for k in ("within", "contextual")},
        **{k: check._ch08_cross_level()[k] for k in ("inter", "se_slope", "se_intercept")},
    }
    assert set(ours) == set(lme4_numbers)
    for key, want in lme4_numbers.items():
        assert math.isclose(ours[key], want, rel_tol=1e-4), (key, ours[key], want)


def test_within_effects_equal_the_regression_with_a_dummy_per_group() -> None:
    exam = datasets.load("exam")
    dummies = smf.ols("normexam ~ standLRT + C(school)", data=exam).fit()
    assert math.isclose(check._ch08_exam()["within"], dummies.params["standLRT"], rel_tol=1e-5)
    assert math.isclose(check._ch08_exam()["mundlak_lrt"], dummies.params["standLRT"], rel_tol=1e-5)
    hsb = datasets.load("hsb").assign(minority=lambda d: (d["minrty"] == "Yes").astype(float))
    schools = smf.ols("mAch ~ minority + C(school)", data=hsb).fit()
    assert math.isclose(check._ch08_minrty()["within"], schools.params["minority"], rel_tol=1e-5)


def test_between_is_within_plus_contextual() -> None:
    for t in (check._ch08_exam(), check._ch08_minrty()):
        assert math.isclose(t["between"], t["within"] + t["contextual"], rel_tol=1e-5)
    # and the blend of the raw random-intercept slope lies between within and between
    r = check._ch08_exam()
    assert min(r["within"], r["between"]) < r["raw"] < max(r["within"], r["between"])


def test_exam_effects_and_their_slips() -> None:
    t = check._ch08_exam()
    right = check.ex08_1(round(t["within"], 3), f"{t['between']:.3f}", t["contextual"])
    assert right.status == "correct", right
    swapped = str(check.ex08_1(t["raw"], t["contextual"], t["between"]))
    assert "blend" in swapped and "contextual effect: lrt_mean next to raw standLRT" in swapped
    assert "between effect (lrt_mean next to lrt_c)" in swapped
    # the raw slope is close to the within effect, but three digits tell them apart
    assert "blend" in str(check.ex08_1(round(t["raw"], 3), ..., ...))
    signs = str(check.ex08_1(-t["within"], ..., -t["contextual"]))
    assert signs.count("the sign is off") == 2


def test_variance_reductions_prediction_and_slips() -> None:
    t = check._ch08_variances()
    assert t["r_tau2"] > t["r_sigma2"] > 0  # minrty explains a larger share of tau^2
    right = check.ex08_2("tau^2", 100 * t["r_tau2"], t["r_sigma2"])  # a percentage is read as one
    assert right.status == "correct" and "bear it out" in str(right), right
    wrong_way = check.ex08_2("sigma2", t["r_tau2"], t["r_sigma2"])
    assert wrong_way.status == "correct" and "say otherwise" in str(wrong_way)
    slips = str(check.ex08_2("between", t["r_tau_sd"], t["kept_sigma2"]))
    assert "standard deviations" in slips and "remains" in slips
    assert "divide it by" in str(check.ex08_2(..., t["drop_tau2"], ...))
    assert "standard deviations" in str(check.ex08_2(..., ..., t["r_sigma_sd"]))
    assert check.ex08_2("both", ..., ...).status == "incorrect"


def test_minority_mundlak_slips() -> None:
    t = check._ch08_minrty()
    assert check.ex08_3(t["within"], round(t["contextual"], 2)).status == "correct"
    slips = str(check.ex08_3(check._ch08_variances()["raw"], t["between"]))
    assert "blend" in slips and "between effect" in slips
    assert "standard error" in str(check.ex08_3(..., t["se_contextual"]))


def test_cross_level_standard_errors() -> None:
    t = check._ch08_cross_level()
    assert t["se_slope"] > t["se_intercept"]  # the random slope widens the interaction's SE
    assert check.ex08_4(t["inter"], t["se_slope"], t["se_intercept"]).status == "correct"
    swapped = str(check.ex08_4(t["lrt"], t["se_intercept"], t["se_slope"]))
    assert "school of average intake" in swapped
    assert "without the random slope" in swapped and "with the random slope" in swapped
    assert "square root" in str(check.ex08_4(..., t["se_slope"] ** 2, ...))
    assert "without the random slope" in str(check.ex08_4(t["inter_intercept"], ..., ...))


def test_words_are_recorded_with_a_minimum() -> None:
    assert check.ex08_5("the group mean").status == "incorrect"
    text = " ".join(["The random intercept model assumes the group effects are unrelated"] * 6)
    result = check.ex08_5(text)
    assert result.status == "recorded"
    assert any("group mean" in h for h in result.hints)  # an idea the text leaves out


def test_checks_read_the_answers_of_the_solution_variables() -> None:
    names = [v for q in check.questions(8) for v in q.variables]
    assert len(names) == len(set(names)) == 12
