"""glmer: the families, PIRLS, the Laplace and AGQ deviance, the fitted model's accessors.

The agreement with lme4 is in test_glmer_reference.py; here each stage is checked against an
independent computation (scipy's densities, statsmodels' GLM, numerical derivatives, direct
quadrature) or against simulation truth.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import integrate, special, stats

from mlmprimer import GlmerModel, glmer
from mlmprimer.control import GlmerControl
from mlmprimer.datasets import load
from mlmprimer.family import LINKS, family
from mlmprimer.glmer import fit_glmm, glmer_design
from mlmprimer.glmermodel import GlmerWarning
from mlmprimer.pirls import GlmmDeviance, gh_rule, hessian

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return load("cbpp")


@pytest.fixture(scope="module")
def cbpp_fit(cbpp: pd.DataFrame) -> GlmerModel:
    return glmer(CBPP, cbpp)


# ---- families ----------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog", "log"])
def test_link_inverse_and_derivative(link: str) -> None:
    lk = LINKS[link]
    eta = np.linspace(-3, 1.5, 13)
    mu = lk.linkinv(eta)
    np.testing.assert_allclose(lk.linkfun(mu), eta, rtol=1e-10, atol=1e-10)
    h = 1e-6
    numeric = (lk.linkinv(eta + h) - lk.linkinv(eta - h)) / (2 * h)
    np.testing.assert_allclose(lk.mu_eta(eta), numeric, rtol=1e-6)


def test_binomial_and_poisson_aic_are_minus_twice_the_log_density() -> None:
    rng = np.random.default_rng(4)
    n = rng.integers(1, 20, 30).astype(float)
    k = rng.binomial(n.astype(int), 0.3)
    mu = rng.uniform(0.05, 0.95, 30)
    got = family("binomial").aic(k / n, n, mu, n)
    assert got == pytest.approx(-2 * stats.binom.logpmf(k, n, mu).sum(), rel=1e-12)
    y = rng.poisson(3.0, 30).astype(float)
    lam = rng.uniform(0.5, 6, 30)
    got = family("poisson").aic(y, np.ones(30), lam, np.ones(30))
    assert got == pytest.approx(-2 * stats.poisson.logpmf(y, lam).sum(), rel=1e-12)


def test_deviance_residuals_are_twice_the_log_likelihood_ratio() -> None:
    rng = np.random.default_rng(5)
    y = rng.poisson(2.0, 25).astype(float)
    mu = rng.uniform(0.5, 4, 25)
    one = np.ones(25)
    dev = family("poisson").dev_resids(y, mu, one)
    llr = 2 * (stats.poisson.logpmf(y, np.maximum(y, 1e-300)) - stats.poisson.logpmf(y, mu))
    np.testing.assert_allclose(dev, llr, rtol=1e-10, atol=1e-10)


def test_gauss_hermite_rule_integrates_normal_moments() -> None:
    z, w = gh_rule(9)
    for power, moment in ((0, 1.0), (2, 1.0), (4, 3.0), (6, 15.0), (8, 105.0)):
        assert float(np.sum(w * z**power)) == pytest.approx(moment, rel=1e-10)


def test_hessian_of_a_quadratic() -> None:
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    g, H = hessian(lambda x: float(x @ A @ x / 2 + x[0]), np.array([0.5, -1.0]))
    np.testing.assert_allclose(H, A, atol=1e-5)
    np.testing.assert_allclose(g, A @ np.array([0.5, -1.0]) + [1, 0], atol=1e-6)


# ---- the deviance -------------------------------------------------------------------------------


def test_deviance_at_theta_zero_is_the_glm_deviance(cbpp: pd.DataFrame) -> None:
    """With theta = 0 the random effects vanish: -2 log L of the binomial GLM (statsmodels)."""
    md = glmer_design(CBPP, cbpp, "binomial")
    dev = GlmmDeviance(md.design, md.family, md.trials, rule="exact")
    endog = np.column_stack([cbpp["incidence"], cbpp["size"] - cbpp["incidence"]])
    res = sm.GLM(endog, md.design.X, family=sm.families.Binomial()).fit()
    assert dev.stage1(np.zeros(1)) == pytest.approx(-2 * res.llf, abs=1e-7)
    st = dev.mode(np.zeros(1))
    np.testing.assert_allclose(st.beta, res.params, atol=1e-7)


def _direct_marginal_deviance(md, theta: float, beta: np.ndarray) -> float:
    """-2 log L by adaptive-free quadrature over each herd's effect (scipy.integrate.quad)."""
    d = md.design
    t = d.terms[0]
    y, wt = d.y, d.weights
    k = np.round(y * wt)
    fixed = d.X @ beta
    total = 0.0
    for j in range(t.nlevels):
        rows = t.codes == j

        def f(b, rows=rows):
            mu = special.expit(fixed[rows] + b)
            return math.exp(stats.binom.logpmf(k[rows], wt[rows], mu).sum()) * stats.norm.pdf(
                b, scale=theta
            )

        val, _ = integrate.quad(f, -8 * theta, 8 * theta, epsabs=0, epsrel=1e-11, limit=200)
        total += math.log(val)
    return -2.0 * total


def test_agq_converges_to_the_exact_marginal_likelihood(cbpp: pd.DataFrame) -> None:
    md = glmer_design(CBPP, cbpp, "binomial")
    pars = np.array([0.65, -1.4, -1.0, -1.13, -1.58])
    exact = _direct_marginal_deviance(md, pars[0], pars[1:])
    errors = []
    for k in (1, 3, 9, 25):
        dev = GlmmDeviance(md.design, md.family, md.trials, k, rule="exact")
        errors.append(abs(dev.stage2(pars) - exact))
    assert errors[-1] < 1e-8
    assert errors[0] > errors[1] > errors[2]


def test_agq_with_one_node_is_the_laplace_deviance(cbpp: pd.DataFrame) -> None:
    md = glmer_design(CBPP, cbpp, "binomial")
    pars = np.array([0.6, -1.3, -1.0, -1.1, -1.5])
    lap = GlmmDeviance(md.design, md.family, md.trials, 1, rule="exact")
    st = lap.mode(pars[:1], pars[1:])
    agq = GlmmDeviance(md.design, md.family, md.trials, 1, rule="exact")
    agq.nAGQ = 1
    assert lap.laplace(st) == pytest.approx(
        agq._agq(st, md.family.aic(md.design.y, md.trials, st.mu, lap.wt))
    )


def test_exact_mode_zeroes_the_gradient_of_the_penalised_deviance(cbpp: pd.DataFrame) -> None:
    md = glmer_design(CBPP, cbpp, "binomial")
    dev = GlmmDeviance(md.design, md.family, md.trials, rule="exact")
    theta, beta = np.array([0.7]), np.array([-1.4, -1.0, -1.1, -1.6])
    st = dev.mode(theta, beta)

    def pdev(u):
        return dev.state(theta, beta, u).pdev

    h = 1e-6
    grad = [(pdev(st.u + h * e) - pdev(st.u - h * e)) / (2 * h) for e in np.eye(st.u.size)]
    assert np.max(np.abs(grad)) < 1e-5


def test_lme4_rule_is_close_to_the_exact_deviance(cbpp: pd.DataFrame) -> None:
    md = glmer_design(CBPP, cbpp, "binomial")
    pars = np.array([0.64, -1.4, -0.99, -1.13, -1.58])
    exact = GlmmDeviance(md.design, md.family, md.trials, rule="exact").stage2(pars)
    lme4 = GlmmDeviance(md.design, md.family, md.trials, rule="lme4").stage2(pars)
    assert abs(exact - lme4) < 5e-3


# ---- fits: simulation truth ----------------------------------------------------------------


def _simulated_binary(seed: int, groups: int = 150, per: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.standard_normal(g.size)
    b = rng.normal(0, 0.8, groups)
    eta = -0.5 + 0.7 * x + b[g]
    y = rng.binomial(1, special.expit(eta))
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g.astype(str))})


def test_binary_fit_recovers_the_truth() -> None:
    data = _simulated_binary(11)
    m = glmer("y ~ x + (1 | g)", data)
    se = np.sqrt(np.diag(m.vcov))
    assert abs(m.fixef["(Intercept)"] + 0.5) < 3 * se[0]
    assert abs(m.fixef["x"] - 0.7) < 3 * se[1]
    assert 0.6 < m.varcorr["sdcor"].iloc[0] < 1.0


def test_poisson_offset_is_an_exposure() -> None:
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(80), 10)
    t = rng.uniform(0.5, 5, g.size)
    b = rng.normal(0, 0.5, 80)
    y = rng.poisson(t * np.exp(0.3 + b[g]))
    data = pd.DataFrame({"y": y, "t": t, "g": pd.Categorical(g.astype(str))})
    m = glmer("y ~ 1 + offset(log(t)) + (1 | g)", data, "poisson")
    m2 = glmer("y ~ 1 + (1 | g)", data, "poisson", offset=np.log(t))
    assert m.loglik == pytest.approx(m2.loglik, abs=1e-6)
    se = math.sqrt(m.vcov.iloc[0, 0])
    assert abs(m.fixef.iloc[0] - 0.3) < 3 * se
    np.testing.assert_allclose(m.offset, np.log(t))


def test_response_forms_give_the_same_fit(cbpp: pd.DataFrame, cbpp_fit: GlmerModel) -> None:
    """cbind counts, proportions with weights, and the expanded 0/1 rows are one model."""
    prop = glmer("incidence / size ~ period + (1 | herd)", cbpp, weights=cbpp["size"])
    assert prop.loglik == pytest.approx(cbpp_fit.loglik, abs=1e-6)
    np.testing.assert_allclose(prop.fixef, cbpp_fit.fixef, atol=1e-6)
    # one row per animal: successes then failures, a factor response (first level = 0)
    rows = []
    for _, r in cbpp.iterrows():
        rows += [(r.herd, r.period, "sick")] * int(r.incidence)
        rows += [(r.herd, r.period, "healthy")] * int(r["size"] - r.incidence)
    long = pd.DataFrame(rows, columns=["herd", "period", "status"])
    long["herd"] = pd.Categorical(long["herd"], categories=cbpp["herd"].cat.categories)
    long["period"] = pd.Categorical(long["period"], categories=cbpp["period"].cat.categories)
    long["status"] = pd.Categorical(long["status"], categories=["healthy", "sick"])
    binary = glmer("status ~ period + (1 | herd)", long)
    # the same likelihood up to the binomial coefficients, which do not depend on parameters
    np.testing.assert_allclose(binary.fixef, cbpp_fit.fixef, atol=2e-4)
    np.testing.assert_allclose(binary.theta, cbpp_fit.theta, atol=2e-4)


# ---- the fitted model ----------------------------------------------------------------------


def test_fitted_predict_and_residuals(cbpp: pd.DataFrame, cbpp_fit: GlmerModel) -> None:
    m = cbpp_fit
    eta = m.predict()
    np.testing.assert_allclose(special.expit(eta), m.fitted(), rtol=1e-12)
    np.testing.assert_allclose(m.predict(cbpp, type="response"), m.fitted(), rtol=1e-10)
    pop = m.predict(cbpp, re=False)
    np.testing.assert_allclose(pop, m.X.to_numpy() @ m.fixef.to_numpy(), rtol=1e-12)
    y, mu, w = m.design.y, m.fitted().to_numpy(), m.weights.to_numpy()
    np.testing.assert_allclose(m.residuals("response"), y - mu)
    np.testing.assert_allclose(m.residuals("pearson"), (y - mu) / np.sqrt(mu * (1 - mu) / w))
    assert float((m.residuals() ** 2).sum()) == pytest.approx(m.deviance_residual_sum())
    np.testing.assert_allclose(m.weights, cbpp["size"])


def test_new_levels_need_allow_new_levels(cbpp: pd.DataFrame, cbpp_fit: GlmerModel) -> None:
    new = cbpp.iloc[:2].copy()
    new["herd"] = new["herd"].cat.add_categories(["99"])
    new.loc[new.index[1], "herd"] = "99"
    with pytest.raises(ValueError, match=r"'herd'.*99"):
        cbpp_fit.predict(new)
    got = cbpp_fit.predict(new, allow_new_levels=True)
    pop = cbpp_fit.predict(new, re=False)
    assert got.iloc[1] == pytest.approx(pop.iloc[1])
    assert got.iloc[0] != pytest.approx(pop.iloc[0])


def test_simulate_and_refit(cbpp_fit: GlmerModel) -> None:
    sims = cbpp_fit.simulate(3, rng=np.random.default_rng(2))
    assert sims.shape == (56, 3)
    trials = cbpp_fit.weights.to_numpy()
    counts = sims.to_numpy() * trials[:, None]
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)
    again = cbpp_fit.simulate(3, rng=np.random.default_rng(2))
    pd.testing.assert_frame_equal(sims, again)
    refit = cbpp_fit.refit(sims["sim_1"])
    assert refit.nobs == cbpp_fit.nobs and refit.loglik != pytest.approx(cbpp_fit.loglik)
    same = cbpp_fit.refit()
    assert same.loglik == pytest.approx(cbpp_fit.loglik, abs=1e-9)


def test_ranef_condsd_is_the_inverse_curvature(cbpp_fit: GlmerModel) -> None:
    """For one scalar term: theta / sqrt(theta^2 sum_i W_i + 1) per herd."""
    m = cbpp_fit
    fam = family("binomial")
    eta, mu = m.eta, m.mu
    W = m.weights.to_numpy() * fam.mu_eta(eta) ** 2 / fam.variance(mu)
    t = m.design.terms[0]
    D = np.bincount(t.codes, weights=W)
    th = m.theta[0]
    np.testing.assert_allclose(
        m.ranef_condsd["herd"].iloc[:, 0], th / np.sqrt(th**2 * D + 1), rtol=1e-6
    )


def test_summary_layout(cbpp_fit: GlmerModel) -> None:
    text = str(cbpp_fit.summary())
    lines = text.splitlines()
    assert lines[0].startswith("Generalized linear mixed model fit by maximum likelihood")
    assert " Family: binomial  ( logit )" in lines
    assert "            Estimate Std. Error z value Pr(>|z|)    " in lines
    assert "Residual" not in text
    assert "Number of obs: 56, groups:  herd, 15" in lines


def test_tidy_glance_augment(cbpp_fit: GlmerModel) -> None:
    td = cbpp_fit.tidy(conf_int=True, exponentiate=True)
    fixed = td[td.effect == "fixed"]
    np.testing.assert_allclose(fixed["estimate"], np.exp(cbpp_fit.fixef))
    assert (fixed["conf.low"] < fixed["estimate"]).all()
    z = stats.norm.ppf(0.975)
    se = np.sqrt(np.diag(cbpp_fit.vcov))
    np.testing.assert_allclose(fixed["conf.high"], np.exp(cbpp_fit.fixef + z * se))
    rv = cbpp_fit.tidy(effects="ran_vals")
    assert len(rv) == 15
    gl = cbpp_fit.glance()
    assert gl["logLik"].iloc[0] == cbpp_fit.loglik
    aug = cbpp_fit.augment()
    np.testing.assert_allclose(aug[".mu"], cbpp_fit.fitted())


def test_nagq_needs_one_scalar_term() -> None:
    data = load("verbagg")
    with pytest.raises(ValueError, match="single scalar random-effects term"):
        glmer("r2 ~ Anger + (1 | id) + (1 | item)", data, nAGQ=5)


def test_convergence_failure_is_refused(cbpp: pd.DataFrame) -> None:
    from mlmprimer.optimize import ConvergenceError

    with pytest.raises(ConvergenceError):
        glmer(CBPP, cbpp, control={"maxeval": 5})


def test_control_fields() -> None:
    c = GlmerControl.from_arg({"pirls_rule": "exact"})
    assert c.pirls_rule == "exact"
    with pytest.raises(ValueError, match="unknown control settings"):
        GlmerControl.from_arg({"tolPwrss": 1})


def test_exact_rule_fit_is_at_least_as_good(cbpp: pd.DataFrame, cbpp_fit: GlmerModel) -> None:
    exact = glmer(CBPP, cbpp, control={"pirls_rule": "exact"})
    md = glmer_design(CBPP, cbpp, "binomial")
    dev = GlmmDeviance(md.design, md.family, md.trials, rule="exact")
    at_lme4 = dev.stage2(np.concatenate([cbpp_fit.theta, cbpp_fit.fixef]))
    assert exact.deviance <= at_lme4 + 1e-6
    np.testing.assert_allclose(exact.fixef, cbpp_fit.fixef, atol=2e-3)


def test_separation_warns() -> None:
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(20), 10)
    x = rng.standard_normal(200)
    y = (x > 0).astype(float)  # x separates the outcomes perfectly
    data = pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g.astype(str))})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            glmer("y ~ x + (1 | g)", data)
        except Exception:  # a separated fit may also fail to converge: refused loudly
            pass
    assert any(issubclass(w.category, GlmerWarning) and "separat" in str(w.message) for w in caught)


def test_fit_glmm_stages(cbpp: pd.DataFrame) -> None:
    md = glmer_design(CBPP, cbpp, "binomial")
    fit = fit_glmm(GlmmDeviance(md.design, md.family, md.trials, 0))
    assert fit.vcov_method == "RX" and len(fit.stages) == 1


def test_compare_nested_glmer_fits(cbpp: pd.DataFrame, cbpp_fit: GlmerModel) -> None:
    from mlmprimer import compare

    null = glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp)
    tab = compare(null, cbpp_fit)
    chisq = 2 * (cbpp_fit.loglik - null.loglik)
    assert tab["Chisq"].iloc[1] == pytest.approx(chisq)
    assert tab["Pr(>Chisq)"].iloc[1] == pytest.approx(stats.chi2.sf(chisq, 3))
    pois = glmer("incidence ~ period + (1 | herd)", cbpp, "poisson")
    with pytest.raises(ValueError, match="different families"):
        compare(pois, cbpp_fit)
