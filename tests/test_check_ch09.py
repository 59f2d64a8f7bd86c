"""The checks of chapter 9: right answers from lme4 or statsmodels pass, the usual slips are named.

The generic properties (unanswered, junk answers, the registry) are tested for every check in
``test_check.py``. Here the right answers come from outside the checks: lme4's numbers in the
fixtures written by ``scripts/lme4_reference.R``, or independent ``statsmodels`` fits.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from mlmprimer import check, datasets

FIXTURES = Path(__file__).parent / "fixtures" / "lme4"


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _best_fit(model, reml: bool):
    # the higher of two optimisers' maxima (statsmodels' default can stop short)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [model.fit(reml=reml), model.fit(reml=reml, method=["lbfgs"])]
    return max((f for f in fits if np.isfinite(f.llf)), key=lambda f: f.llf)


def _part(result, name: str) -> tuple[str, str]:
    return next((status, message) for n, status, message in result.parts if n == name)


# --------------------------------------------------------------------------------------------
# 9.1: REML and ML
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sleep_taus() -> dict[str, float]:
    sleep = datasets.load("sleepstudy")
    model = smf.mixedlm("Reaction ~ Days", sleep, groups="Subject")
    return {
        "reml": float(np.sqrt(_best_fit(model, True).cov_re.iloc[0, 0])),
        "ml": float(np.sqrt(_best_fit(model, False).cov_re.iloc[0, 0])),
    }


def test_ex09_1_accepts_statsmodels_estimates(sleep_taus) -> None:
    result = check.ex09_1("smaller", round(sleep_taus["reml"], 2), round(sleep_taus["ml"], 2))
    assert result.status == "correct", str(result)


def test_ex09_1_names_swapped_estimates_and_variances(sleep_taus) -> None:
    result = check.ex09_1("larger", sleep_taus["ml"], sleep_taus["ml"] ** 2)
    assert result.status == "partial"
    assert "ML estimate" in _part(result, "tau0_reml")[1]
    assert "variance" in _part(result, "tau0_ml")[1]
    # a wrong prediction is recorded, and contradicted once the estimates are right
    contradicted = check.ex09_1("larger", sleep_taus["reml"], sleep_taus["ml"])
    assert "say otherwise" in _part(contradicted, "prediction_tau0_ml")[1]


# --------------------------------------------------------------------------------------------
# 9.2: a fixed effect by ML
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minrty_tests() -> dict[str, float]:
    hsb = datasets.load("hsb")
    small = "mAch ~ cses + meanses + sector"
    fits = {}
    for reml in (False, True):
        a = _best_fit(smf.mixedlm(small, hsb, groups="school"), reml)
        b = _best_fit(smf.mixedlm(small + " + minrty", hsb, groups="school"), reml)
        fits[reml] = 2 * (b.llf - a.llf)
    return {"ml": fits[False], "reml": fits[True], "p": float(stats.chi2.sf(fits[False], 1))}


def test_ex09_2_accepts_the_ml_test(minrty_tests) -> None:
    result = check.ex09_2(round(minrty_tests["ml"], 1), minrty_tests["p"])
    assert result.status == "correct", str(result)


def test_ex09_2_names_a_reml_statistic_and_a_halved_p(minrty_tests) -> None:
    result = check.ex09_2(minrty_tests["reml"], minrty_tests["p"] / 2)
    assert result.status == "incorrect"
    assert "REML" in _part(result, "chisq_minrty")[1]
    assert "halves" in _part(result, "p_minrty")[1]


# --------------------------------------------------------------------------------------------
# 9.3: a variance on its boundary, from lme4's log-likelihood
# --------------------------------------------------------------------------------------------


def _ols_reml_loglik(y: np.ndarray) -> float:
    """R's logLik(lm(y ~ 1), REML = TRUE)."""
    n, p = len(y), 1
    rss = float(np.sum((y - y.mean()) ** 2))
    return -0.5 * ((n - p) * (np.log(2 * np.pi) + 1 + np.log(rss / (n - p))) + np.log(n))


def test_ex09_3_accepts_the_mixture_test_from_lme4() -> None:
    fix = _fixture("dyestuff")
    assert fix["formula"] == "Yield ~ 1 + (1 | Batch)" and fix["REML"]
    y = datasets.load("dyestuff")["Yield"].to_numpy(dtype=float)
    chisq = 2 * (fix["logLik"] - _ols_reml_loglik(y))
    p_mix = 0.5 * stats.chi2.sf(chisq, 1)
    assert check.ex09_3(round(chisq, 2), round(p_mix, 4)).status == "correct"
    naive = check.ex09_3(chisq, 2 * p_mix)
    assert naive.status == "partial"
    assert "naive" in _part(naive, "p_dye_mixture")[1]
    doubled = check.ex09_3(chisq / 2, p_mix)
    assert "double it" in _part(doubled, "chisq_dye")[1]


# --------------------------------------------------------------------------------------------
# 9.4: intervals, from lme4's confint()
# --------------------------------------------------------------------------------------------


def test_ex09_4_accepts_lme4s_intervals_in_either_order() -> None:
    fix = _fixture("sleepstudy_slopes")
    assert fix["formula"] == "Reaction ~ Days + (Days | Subject)"
    confint = fix["confint"]
    tau1 = confint["profile"][".sig03"]
    wald = confint["Wald"]["Days"]
    assert check.ex09_4(tuple(tau1), tuple(wald)).status == "correct"
    rounded = check.ex09_4((round(tau1[1], 1), round(tau1[0], 1)), [round(w, 2) for w in wald])
    assert rounded.status == "correct", str(rounded)


def test_ex09_4_tells_the_profile_interval_of_beta_from_the_wald_one() -> None:
    confint = _fixture("sleepstudy_slopes")["confint"]
    result = check.ex09_4([x**2 for x in confint["profile"][".sig03"]], confint["profile"]["Days"])
    assert result.status == "incorrect"
    assert "variance" in _part(result, "ci_tau1_profile")[1]
    assert "profile interval of beta_1" in _part(result, "ci_days_wald")[1]
    intercept = check.ex09_4(confint["profile"][".sig01"], confint["Wald"]["(Intercept)"])
    assert "tau_0" in _part(intercept, "ci_tau1_profile")[1]
    assert "intercept" in _part(intercept, "ci_days_wald")[1]


# --------------------------------------------------------------------------------------------
# 9.5 (words) and 9.6 (a second cross-level interaction)
# --------------------------------------------------------------------------------------------


def test_ex09_5_records_long_answers_only() -> None:
    assert check.ex09_5("REML is wrong here.").status == "incorrect"
    long = (
        "The REML likelihood depends on the fixed effects design, so two models with different "
        "fixed effects have REML likelihoods of different data. Refit both by maximum likelihood "
        "and compare those, then report the REML estimates of the chosen model."
    )
    result = check.ex09_5(long)
    assert result.status == "recorded" and not result.hints


def test_ex09_6_accepts_statsmodels_and_names_the_older_model() -> None:
    hsb = datasets.load("hsb")
    m5 = "mAch ~ cses + meanses + sector + cses:sector"
    fits = {
        f: _best_fit(smf.mixedlm(f, hsb, groups="school", re_formula="~cses"), False)
        for f in (m5, m5 + " + cses:meanses")
    }
    chisq = 2 * (fits[m5 + " + cses:meanses"].llf - fits[m5].llf)
    reml6 = _best_fit(
        smf.mixedlm(m5 + " + cses:meanses", hsb, groups="school", re_formula="~cses"), True
    )
    tau1 = float(np.sqrt(reml6.cov_re.iloc[1, 1]))
    assert check.ex09_6(round(chisq, 1), round(tau1, 3)).status == "correct"
    reml5 = _best_fit(smf.mixedlm(m5, hsb, groups="school", re_formula="~cses"), True)
    older = check.ex09_6(chisq, float(np.sqrt(reml5.cov_re.iloc[1, 1])))
    assert "final model" in _part(older, "tau1_both")[1]
