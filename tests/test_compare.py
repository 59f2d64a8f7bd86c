"""Likelihood-ratio tests, information criteria and R^2."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlmprimer.compare import REFIT_NOTE, compare, r2
from mlmprimer.datasets import load
from mlmprimer.model import lmer


@pytest.fixture(scope="module")
def sleep():
    return load("sleepstudy")


@pytest.fixture(scope="module")
def ml_fits(sleep):
    m1 = lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    m2 = lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=False)
    return m1, m2


def test_columns_and_lrt_statistic(ml_fits):
    m1, m2 = ml_fits
    tab = compare(m1, m2)
    assert list(tab.columns) == [
        "npar",
        "AIC",
        "BIC",
        "logLik",
        "deviance",
        "Chisq",
        "Df",
        "Pr(>Chisq)",
        "Pr(>Chisq) mixture",
    ]
    assert list(tab.index) == ["m1", "m2"]
    chisq = 2 * (m2.loglik - m1.loglik)
    assert tab.loc["m2", "Chisq"] == pytest.approx(chisq)
    assert tab.loc["m2", "Df"] == 2
    assert tab.loc["m2", "Pr(>Chisq)"] == pytest.approx(stats.chi2.sf(chisq, 2))
    assert np.isnan(tab.loc["m1", "Chisq"])
    np.testing.assert_allclose(tab["deviance"], -2 * tab["logLik"])
    np.testing.assert_allclose(tab["AIC"], tab["deviance"] + 2 * tab["npar"])
    np.testing.assert_allclose(tab["BIC"], tab["deviance"] + np.log(180) * tab["npar"])
    assert tab.attrs["note"] == ""


def test_matches_lme4_anova(ml_fits):
    # R: anova(m1, m2) with lme4 1.1 on sleepstudy, ML fits
    tab = compare(*ml_fits)
    assert tab["npar"].tolist() == [4, 6]
    np.testing.assert_allclose(tab["AIC"], [1802.0786, 1763.9393], atol=2e-3)
    np.testing.assert_allclose(tab["logLik"], [-897.03932, -875.96967], atol=1e-3)
    assert tab.loc["m2", "Chisq"] == pytest.approx(42.1393, abs=2e-3)


def test_rows_sorted_by_npar_and_named(ml_fits):
    m1, m2 = ml_fits
    tab = compare(m2, m1, names=["slopes", "intercepts"])
    assert list(tab.index) == ["intercepts", "slopes"]
    assert tab["npar"].is_monotonic_increasing
    assert tab.loc["slopes", "Chisq"] > 0


def test_reml_fits_with_different_fixed_effects_are_refitted(sleep, capsys):
    m0 = lmer("Reaction ~ 1 + (1 | Subject)", sleep)
    m1 = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    tab = compare(m0, m1)
    assert tab.attrs["note"] == REFIT_NOTE == "refitting model(s) with ML (instead of REML)"
    assert REFIT_NOTE in capsys.readouterr().out
    assert tab.attrs["refitted"] == ["m1", "m2"]
    assert tab.attrs["REML"] is False
    ml = [m0.refit(REML=False), m1.refit(REML=False)]
    np.testing.assert_allclose(tab["logLik"], [m.loglik for m in ml], rtol=1e-8)
    # the REML criterion would be the wrong thing here
    assert tab.loc["m2", "logLik"] != pytest.approx(m1.loglik)
    assert tab.loc["m2", "Chisq"] == pytest.approx(2 * (ml[1].loglik - ml[0].loglik))
    with pytest.raises(ValueError, match="fixed effects"):
        compare(m0, m1, refit=False)


def test_reml_fits_with_same_fixed_effects_kept(sleep, capsys):
    m1 = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    m2 = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    tab = compare(m1, m2)
    assert tab.attrs["note"] == "" and tab.attrs["REML"] is True
    assert capsys.readouterr().out == ""
    np.testing.assert_allclose(tab["logLik"], [m1.loglik, m2.loglik])
    # R: anova(m1, m2, refit = FALSE)
    assert tab.loc["m2", "Chisq"] == pytest.approx(42.83681, abs=2e-3)
    # lme4's default: always refit
    forced = compare(m1, m2, refit=True, verbose=False)
    assert forced.attrs["note"] == REFIT_NOTE
    assert capsys.readouterr().out == ""
    assert forced.loc["m2", "Chisq"] == pytest.approx(42.1393, abs=2e-3)


def test_mixture_p_value_for_correlated_slope(ml_fits):
    tab = compare(*ml_fits)
    chisq = tab.loc["m2", "Chisq"]
    # added: slope variance and its covariance with the intercept -> 50:50 chi2_1 : chi2_2
    expected = 0.5 * stats.chi2.sf(chisq, 1) + 0.5 * stats.chi2.sf(chisq, 2)
    assert tab.loc["m2", "Pr(>Chisq) mixture"] == pytest.approx(expected)
    assert tab.loc["m2", "Pr(>Chisq) mixture"] < tab.loc["m2", "Pr(>Chisq)"]


@pytest.fixture(scope="module")
def nested_data():
    rng = np.random.default_rng(2)
    school = np.repeat(np.arange(25), 12)
    klass = np.repeat(np.arange(75), 4)
    y = rng.normal(0, 1, 25)[school] + rng.normal(0, 0.3, 75)[klass] + rng.normal(0, 1, 300)
    return pd.DataFrame(
        {
            "y": y,
            "school": pd.Categorical([f"s{j:02d}" for j in school]),
            "klass": pd.Categorical([f"c{j:02d}" for j in klass]),
        }
    )


def test_mixture_p_value_is_half_for_one_boundary_variance(nested_data):
    small = lmer("y ~ 1 + (1 | school)", nested_data, REML=False)
    big = lmer("y ~ 1 + (1 | school) + (1 | klass)", nested_data, REML=False)
    tab = compare(small, big)
    assert tab.loc["m2", "Df"] == 1
    assert tab.loc["m2", "Pr(>Chisq) mixture"] == pytest.approx(
        0.5 * tab.loc["m2", "Pr(>Chisq)"], rel=1e-10
    )


def test_no_mixture_when_fixed_effects_change(sleep):
    m0 = lmer("Reaction ~ 1 + (1 | Subject)", sleep, REML=False)
    m1 = lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    tab = compare(m0, m1)
    assert np.isnan(tab.loc["m2", "Pr(>Chisq) mixture"])
    assert tab.attrs["note"] == ""


def test_models_must_share_data(sleep, ml_fits):
    m1, _ = ml_fits
    fewer = lmer("Reaction ~ Days + (1 | Subject)", sleep.iloc[10:], REML=False)
    with pytest.raises(ValueError, match="180 observations.*170"):
        compare(m1, fewer)
    logged = sleep.assign(logRT=np.log(sleep["Reaction"]))
    other = lmer("logRT ~ Days + (1 | Subject)", logged, REML=False)
    with pytest.raises(ValueError, match="'Reaction'.*'logRT'"):
        compare(m1, other)
    shuffled = sleep.assign(Reaction=sleep["Reaction"].to_numpy()[::-1])
    moved = lmer("Reaction ~ Days + (1 | Subject)", shuffled, REML=False)
    with pytest.raises(ValueError, match="differs"):
        compare(m1, moved)


def test_bad_arguments(ml_fits):
    with pytest.raises(ValueError, match="at least one"):
        compare()
    with pytest.raises(ValueError, match="names"):
        compare(*ml_fits, names=["a"])
    with pytest.raises(ValueError, match="unique"):
        compare(*ml_fits, names=["a", "a"])


# --------------------------------------------------------------------------------------------- r2


def test_r2_sleepstudy_matches_performance(sleep):
    model = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    out = r2(model)
    assert list(out.index) == ["marginal", "conditional"]
    # performance::r2_nakagawa (and the same sums by hand in R with lme4): 0.2787, 0.7992
    assert out["marginal"] == pytest.approx(0.27865, abs=1e-3)
    assert out["conditional"] == pytest.approx(0.79922, abs=1e-3)


def test_r2_is_variance_share(sleep):
    model = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    out = r2(model)
    var_f = np.var(model.X.to_numpy() @ model.fixef[model.X.columns].to_numpy(), ddof=1)
    vc = model.varcorr.set_index("grp")["vcov"]
    total = var_f + vc["Subject"] + vc["Residual"]
    assert out["marginal"] == pytest.approx(var_f / total)
    assert out["conditional"] == pytest.approx((var_f + vc["Subject"]) / total)
    assert 0 < out["marginal"] < out["conditional"] < 1


@pytest.fixture(scope="module")
def no_variance_data():
    rng = np.random.default_rng(8)
    # every group has the same x values and noise with mean 0: no between-group variance
    x = np.concatenate([rng.permutation(np.linspace(0, 10, 10)) for _ in range(40)])
    e = rng.normal(0, 3, (40, 10))
    e -= e.mean(axis=1, keepdims=True)
    return pd.DataFrame(
        {"y": 2 + 0.8 * x + e.ravel(), "x": x, "g": np.repeat([f"g{j:02d}" for j in range(40)], 10)}
    )


def test_r2_without_group_variance_is_ols_like(no_variance_data):
    data = no_variance_data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lmer("y ~ x + (1 | g)", data, REML=False)
    out = r2(model)
    assert out["conditional"] == pytest.approx(out["marginal"], abs=1e-6)
    fit = np.polyval(np.polyfit(data["x"], data["y"], 1), data["x"])
    ols_r2 = 1 - np.sum((data["y"] - fit) ** 2) / np.sum((data["y"] - data["y"].mean()) ** 2)
    assert out["marginal"] == pytest.approx(ols_r2, abs=0.01)


def test_ols_baseline_for_a_random_intercept(sleep):
    import statsmodels.formula.api as smf

    ols = smf.ols("Reaction ~ Days", data=sleep).fit()
    lmm = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    tab = compare(ols, lmm, names=["ols", "lmm"])
    # same fixed effects: compared on the REML criterion, R's logLik(lm, REML = TRUE)
    assert tab.attrs["note"] == "" and tab.attrs["REML"] is True
    assert tab.loc["ols", "logLik"] == pytest.approx(-946.8318317, abs=1e-6)
    assert tab.loc["ols", "npar"] == 3
    assert tab.loc["lmm", "Df"] == 1
    assert tab.loc["lmm", "Pr(>Chisq) mixture"] == pytest.approx(
        0.5 * tab.loc["lmm", "Pr(>Chisq)"], rel=1e-10
    )
    ml = compare(ols, lmm.refit(REML=False))
    assert ml.loc["m1", "logLik"] == pytest.approx(-950.1465282, abs=1e-6)
    assert ml.attrs["REML"] is False


def test_ols_reml_likelihood_is_the_lmm_boundary(no_variance_data):
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmm = lmer("y ~ x + (1 | g)", no_variance_data)
    tab = compare(smf.ols("y ~ x", data=no_variance_data).fit(), lmm)
    # with its variance estimated as 0 the mixed model's REML criterion is that of OLS
    assert tab.loc["m2", "logLik"] == pytest.approx(tab.loc["m1", "logLik"], abs=1e-6)
    assert tab.loc["m2", "Pr(>Chisq) mixture"] == pytest.approx(1.0)
