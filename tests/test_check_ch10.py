"""The checks of chapter 10, checking the model: right answers pass, slips are named.

The generic properties of every check (unanswered, junk answers, the registry) are tested in
``test_check.py``. Here the checks' right answers are compared with lme4's numbers (the
influence fixtures of scripts/lme4_reference_ch10.R, and lme4 run live on nlme's Oxboys and
mlmRev's Exam for exercises 10.1 and 10.4: skipped without R, required on CI), with statsmodels
(an independent fit of the same model) and with what the simulated data of exercise 10.3 were made
to show.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from r_setup import r_numbers

from mlmprimer import check, datasets
from mlmprimer.check import ch10

FIXTURES = Path(__file__).parent / "fixtures" / "lme4_ch10"

# Exercise 10.1's residual SDs per boy and exercise 10.4's R^2 (Nakagawa and Schielzeth, with
# the random-slope variance averaged over the rows, Johnson 2014), from lme4's fits.
LME4_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
ox <- nlme::Oxboys
m <- lmer(height ~ age + (age | Subject), data = ox)
sd_by <- tapply(resid(m), as.character(ox$Subject), sd)
e <- mlmRev::Exam
r <- lmer(normexam ~ standLRT + schavg + schgend + (standLRT | school), data = e)
var_f <- var(as.vector(model.matrix(r) %*% fixef(r)))
z <- cbind(1, e$standLRT)
var_r <- mean(rowSums((z %*% VarCorr(r)$school) * z))
total <- var_f + var_r + sigma(r)^2
out <- c(
  subject = as.numeric(names(which.max(sd_by))),
  sd = max(sd_by),
  marginal = var_f / total,
  conditional = (var_f + var_r) / total
)
for (k in names(out)) cat(k, sprintf("%.10g", out[[k]]), "\n")
"""


@pytest.fixture(scope="module")
def lme4_numbers() -> dict[str, float]:
    return r_numbers(LME4_SCRIPT, ("lme4", "nlme", "mlmRev"))


def test_ex10_1_and_ex10_4_right_answers_are_lme4s(lme4_numbers: dict[str, float]) -> None:
    boys, r2 = ch10._ch10_oxboys(), ch10._ch10_r2()
    assert boys["subject"] == lme4_numbers["subject"]
    assert math.isclose(boys["sd"], lme4_numbers["sd"], rel_tol=1e-4)
    assert math.isclose(r2["marginal"], lme4_numbers["marginal"], rel_tol=1e-4)
    assert math.isclose(r2["conditional"], lme4_numbers["conditional"], rel_tol=1e-4)
    assert check.ex10_1(int(lme4_numbers["subject"]), lme4_numbers["sd"]).status == "correct"
    assert check.ex10_4(lme4_numbers["marginal"], lme4_numbers["conditional"]).status == "correct"


def status(result) -> str:
    return result.status


def test_ex10_1_right_answer_from_statsmodels_residuals():
    ox = datasets.load("oxboys")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("height ~ age", ox, groups="Subject", re_formula="~age").fit(
            reml=True, method=["lbfgs"]
        )
    resid = pd.Series(np.asarray(fit.resid), index=ox["Subject"].to_numpy())
    sd = resid.groupby(level=0).std()
    t = ch10._ch10_oxboys()
    assert t["subject"] == float(sd.idxmax())
    assert math.isclose(t["sd"], sd.max(), rel_tol=1e-3)
    # the largest SD stands clear of the second, so the answer does not hang on the engine
    assert sd.nlargest(2).iloc[0] > 1.1 * sd.nlargest(2).iloc[1]
    assert status(check.ex10_1(sd.idxmax(), sd.max())) == "correct"
    assert status(check.ex10_1(int(sd.idxmax()), round(sd.max(), 2))) == "correct"


def test_ex10_1_slips_are_named():
    t = ch10._ch10_oxboys()
    r = check.ex10_1(t["smallest_subject"], t["variance"])
    assert r.status == "incorrect"
    text = str(r)
    assert "smallest SD" in text and "variance" in text
    assert "sigma" in str(check.ex10_1(t["subject"], t["sigma"]))
    assert "ddof" in str(check.ex10_1(t["subject"], t["sd_ddof0"]))
    assert "level-2" in str(check.ex10_1(t["largest_slope_subject"], t["sd"]))


@pytest.mark.lme4
def test_ex10_2_right_answer_is_lme4s_cooks_distance():
    cooks = pd.read_csv(FIXTURES / "cooks.csv")
    cooks = cooks[cooks["model"] == "radon_county"].set_index("level")["cooks_distance"]
    t = ch10._ch10_radon()
    assert math.isclose(t["cooks"], cooks.max(), rel_tol=2e-3)
    counts = datasets.load("radon")["county"].value_counts()
    assert t["n_top"] == counts[cooks.idxmax()]
    assert t["largest_county_is_top"] == float(cooks.idxmax() == counts.idxmax())
    r = check.ex10_2("yes", cooks.max(), counts[cooks.idxmax()])
    assert r.status == "correct"
    assert "bear out" in str(r)
    assert "go against" in str(check.ex10_2("no", cooks.max(), counts[cooks.idxmax()]))


def test_ex10_2_slips_are_named():
    t = ch10._ch10_radon()
    assert "(m - p) / (m p)" in str(check.ex10_2("yes", t["unscaled"], t["n_top"]))
    assert "second largest" in str(check.ex10_2("yes", t["second"], t["n_top"]))
    assert "number of counties" in str(check.ex10_2("no", t["cooks"], t["n_counties"]))
    r = check.ex10_2("perhaps", t["cooks"], t["n_top"])
    assert r.status == "partial" and "not one of the options" in str(r)


def test_ex10_3_data_without_a_group_effect_give_a_singular_fit():
    data = ch10.no_group_data()
    assert data["g"].nunique() == 20 and len(data) == 100
    # the group means vary no more than residuals alone would make them: the one-way ANOVA's
    # between-group mean square is below the within-group one, so the variance estimate is 0
    ols = smf.ols("y ~ x + C(g)", data).fit()
    within = ols.mse_resid
    between = smf.ols("y ~ x", data).fit().ssr - ols.ssr
    assert between / 19 < within
    t = ch10._ch10_singular()
    assert t["singular"] == 1.0 and t["tau"] == 0.0
    assert check.ex10_3("yes", 0).status == "correct"
    assert check.ex10_3("Yes", "0.0").status == "correct"


def test_ex10_3_slips_are_named():
    t = ch10._ch10_singular()
    r = check.ex10_3("no", t["sigma"])
    assert r.status == "incorrect"
    assert "m.singular" in str(r) and "residual SD" in str(r)


def test_ex10_4_right_answer_from_statsmodels():
    exam = datasets.load("exam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm(
            "normexam ~ standLRT + schavg + schgend", exam, groups="school", re_formula="~standLRT"
        ).fit(reml=True, method=["lbfgs"])
    fixed = np.asarray(fit.model.exog @ fit.fe_params.to_numpy())
    var_f = float(np.var(fixed, ddof=1))
    z = np.column_stack([np.ones(len(exam)), exam["standLRT"].to_numpy()])
    var_r = float(np.mean(np.einsum("ij,jk,ik->i", z, fit.cov_re.to_numpy(), z)))
    total = var_f + var_r + fit.scale
    t = ch10._ch10_r2()
    assert math.isclose(t["marginal"], var_f / total, rel_tol=2e-3)
    assert math.isclose(t["conditional"], (var_f + var_r) / total, rel_tol=2e-3)
    assert check.ex10_4(var_f / total, (var_f + var_r) / total).status == "correct"
    assert check.ex10_4(100 * var_f / total, 100 * (var_f + var_r) / total).status == "correct"


def test_ex10_4_slips_are_named():
    t = ch10._ch10_r2()
    r = check.ex10_4(t["conditional"], t["marginal"])
    assert "conditional R^2" in str(r) and "marginal R^2" in str(r)
    assert "ICC" in str(check.ex10_4(t["icc_null"], t["conditional"]))


def test_ex10_5_words():
    assert check.ex10_5("delete it").status == "incorrect"
    long = " ".join(["I would refit the model without the group and report both fits."] * 4)
    assert check.ex10_5(long).status == "recorded"
