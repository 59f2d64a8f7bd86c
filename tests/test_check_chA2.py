"""The checks of appendix A2 (mlmprimer.check.chA2) against answers computed without lmer.

The right answers come from lme4's stored fits (``tests/fixtures/lme4``) and from statsmodels;
each check must call them right, name the typical wrong answers, and never raise.
"""

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
import statsmodels.formula.api as smf

from mlmprimer import check, datasets

FIXTURES = Path(__file__).parent / "fixtures" / "lme4"


def lme4(name):
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def variance(fx, grp, var1):
    return next(r["vcov"] for r in fx["varcorr"] if r["grp"] == grp and r["var1"] == var1)


@pytest.fixture(scope="module")
def hsb():
    return datasets.load("hsb")


def test_exA2_1_right_answers_from_lme4_are_right():
    fx = lme4("hsb_ses_uncorrelated")  # mAch ~ ses + (ses || school), the same model
    r = check.exA2_1(fx["logLik"], variance(fx, "school.1", "ses"))
    assert r.status == "correct", r


def test_exA2_1_names_the_correlated_model_and_the_variance_ratio():
    fx = lme4("hsb_ses_slopes")  # mAch ~ ses + (ses | school): what re_formula="~ses" fits
    unc = lme4("hsb_ses_uncorrelated")
    ratio = variance(unc, "school.1", "ses") / unc["sigma"] ** 2
    r = check.exA2_1(fx["logLik"], ratio)
    assert r.status == "incorrect"
    text = str(r)
    assert "vc_formula" in text and "divided by sigma^2" in text


def test_exA2_1_names_the_missing_random_intercept(hsb):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        no_int = smf.mixedlm("mAch ~ ses", hsb, groups="school", vc_formula={"ses": "0 + ses"})
        r = no_int.fit(reml=True)
    assert 're_formula="1"' in str(check.exA2_1(r.llf, ...))


def test_exA2_2_right_answers_and_the_prediction():
    fx = lme4("hsb_null")
    tau0sq = variance(fx, "school", "(Intercept)")
    ratio = tau0sq / fx["sigma"] ** 2
    r = check.exA2_2("smaller", tau0sq, ratio)
    assert r.status == "correct"
    assert "bear" in str(r)  # the prediction is compared with the results, and borne out
    wrong_guess = check.exA2_2("larger", tau0sq, ratio)
    assert wrong_guess.status == "correct" and "say otherwise" in str(wrong_guess)


def test_exA2_2_names_the_swap_and_the_icc():
    fx = lme4("hsb_null")
    tau0sq = variance(fx, "school", "(Intercept)")
    ratio = tau0sq / fx["sigma"] ** 2
    icc = tau0sq / (tau0sq + fx["sigma"] ** 2)
    swapped = str(check.exA2_2("same", ratio, tau0sq))
    assert "r.cov_re" in swapped
    assert "ICC" in str(check.exA2_2(..., tau0sq, icc))


def test_exA2_3_predictions_from_statsmodels(hsb):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = smf.mixedlm("mAch ~ ses", hsb, groups="school").fit(reml=True)
    population = float(r.fe_params["Intercept"])
    group = population + float(r.random_effects["1224"].iloc[0])
    text = (
        "lmer adds the random effect of the school to the fixed part, statsmodels predicts the "
        "population average only, and a new school gets the population value from both tools."
    )
    assert check.exA2_3(population, group).status == "correct"
    swapped = str(check.exA2_3(group, population))
    assert "re=False" in swapped and "statsmodels' predict does not" in swapped
    assert check.exA2_4(text).status == "recorded"  # the words go to the instructor
    assert "too short" in str(check.exA2_4("the effect"))
    assert "new school" in str(check.exA2_4(" ".join(["the random effect matters"] * 10)))


@pytest.mark.parametrize("qid", ["exA2_1", "exA2_2", "exA2_3", "exA2_4"])
def test_checks_never_raise_and_wait_for_answers(qid):
    q = check.QUESTIONS[qid]
    assert q.chapter == "A2"
    func = getattr(check, qid)
    assert func(*([...] * len(q.variables))).status == "unanswered"
    assert func(*([["a", "list"]] * len(q.variables))).status in ("incorrect", "error")
    assert func(*([pd.DataFrame()] * len(q.variables))).status != "correct"
