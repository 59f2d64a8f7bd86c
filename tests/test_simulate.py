"""Tests of mlmprimer.simulate: structure, seeding, validation and recovery of the truth.

Recovery is checked two ways. Moment (ANOVA-type) estimators that are exactly unbiased
for balanced data are computed over many seeds, and their Monte Carlo mean must lie within
3.5 Monte Carlo standard errors of the true value. REML fits with statsmodels' MixedLM
over fewer seeds must cover the true fixed effects with their 95% Wald intervals in
about the nominal share of seeds and estimate the standard deviations to within 10% on average.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from mlmprimer import simulate

GENERATORS = {
    "reaction_times": (simulate.reaction_times, ["subject", "reaction"], ["subject"]),
    "drivers_cars": (simulate.drivers_cars, ["driver", "car", "mpg"], ["driver", "car"]),
    "schools_ses": (simulate.schools_ses, ["school", "ses", "math"], ["school"]),
    "patients_doctors": (
        simulate.patients_doctors,
        ["doctor", "experience", "age", "cost"],
        ["doctor"],
    ),
    "school_level_predictor": (simulate.school_level_predictor, ["school", "w", "y"], ["school"]),
    "schools_two_levels": (simulate.schools_two_levels, ["school", "x", "w", "y"], ["school"]),
}

DEFAULT_TRUTH = {
    "reaction_times": {"beta0": 300.0, "tau": 35.0, "sigma": 45.0},
    "drivers_cars": {"mu": 30.0, "tau_driver": 3.0, "tau_car": 2.0, "sigma": 1.5},
    "schools_ses": {
        "beta0": 12.0,
        "beta1": 2.5,
        "tau0": 2.5,
        "tau1": 1.0,
        "rho": 0.3,
        "sigma": 6.0,
    },
    "patients_doctors": {
        "beta0": 3.0,
        "beta_age": 0.05,
        "beta_experience": -0.03,
        "tau0": 0.5,
        "tau_age": 0.02,
        "sigma": 1.0,
    },
    "school_level_predictor": {"beta0": 50.0, "beta_w": 2.0, "tau": 5.0, "sigma": 10.0},
    "schools_two_levels": {
        "beta0": 50.0,
        "beta_x": 1.0,
        "beta_w": 2.0,
        "tau": 5.0,
        "sigma": 10.0,
    },
}

N_MOMENT = 200  # seeds for the moment estimators (cheap)
N_REML = 30  # seeds for the REML fits (about 0.1-0.25 s each)


def assert_unbiased(estimates, truth, name):
    """The Monte Carlo mean lies within 3.5 Monte Carlo standard errors of the truth."""
    est = np.asarray(estimates, dtype=float)
    mcse = est.std(ddof=1) / np.sqrt(est.size)
    z = (est.mean() - truth) / mcse
    assert abs(z) < 3.5, f"{name}: mean {est.mean():.5g} vs truth {truth:.5g} (z = {z:.2f})"


@dataclass
class RemlFit:
    fe: pd.Series
    se: pd.Series
    cov_re: np.ndarray
    sigma: float
    vcomp: dict[str, float]


def reml_fit(formula, data, method="powell", **kwargs):
    """REML fit with statsmodels' MixedLM, on the response standardised and back again.

    MixedLM's optimisers are sensitive to the scale of the response (an intercept-only
    model at reaction-time scale can stop at an intercept of 0), so the response is
    fitted as z = (y - c) / s and the estimates are mapped back to the scale of y. Powell
    converged in every seed used here; Nelder-Mead is slower but more precise.
    """
    response = formula.split("~")[0].strip()
    c, s = data[response].mean(), data[response].std()
    scaled = data.assign(**{response: (data[response] - c) / s})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm(formula, scaled, **kwargs).fit(reml=True, method=method)
        fe = fit.fe_params * s
        fe["Intercept"] += c
        se = fit.bse_fe * s
    assert fit.converged
    assert np.isfinite(se).all()
    vcomp = {}
    if fit.model.exog_vc is not None and len(fit.vcomp):
        vcomp = dict(zip(fit.model.exog_vc.names, fit.vcomp * s**2, strict=True))
    return RemlFit(fe, se, fit.cov_re.to_numpy() * s**2, float(np.sqrt(fit.scale) * s), vcomp)


def assert_covers(lo, hi, truth, name, min_share=0.8):
    """95% intervals cover the truth in at least 80% of the seeds.

    With 30 seeds, 7 or more misses have probability 0.3% at the nominal 95% coverage.
    """
    inside = np.mean((np.asarray(lo) <= truth) & (truth <= np.asarray(hi)))
    assert inside >= min_share, f"{name}: 95% intervals cover the truth in {inside:.0%} of seeds"


def wald95(fit, term):
    z = 1.959963984540054
    return fit.fe[term] - z * fit.se[term], fit.fe[term] + z * fit.se[term]


# ------------------------------------------------------------------------ structure


@pytest.mark.parametrize("name", list(GENERATORS))
def test_columns_dtypes_and_truth(name):
    func, columns, groups = GENERATORS[name]
    df = func()
    assert df.columns.tolist() == columns
    assert df.attrs["truth"] == DEFAULT_TRUTH[name]
    assert all(isinstance(v, float) for v in df.attrs["truth"].values())
    for col in columns:
        if col in groups:
            assert isinstance(df[col].dtype, pd.CategoricalDtype)
            assert not df[col].cat.ordered
            cats = df[col].cat.categories.tolist()
            assert cats == sorted(cats), "zero-padded labels sort in numeric order"
            assert df[col].notna().all()
        else:
            assert pd.api.types.is_numeric_dtype(df[col])
            assert np.isfinite(df[col].to_numpy(dtype=float)).all()
    assert df.index.equals(pd.RangeIndex(len(df)))


def test_reaction_times_structure():
    df = simulate.reaction_times(n_subjects=12, n_obs=7, rng=3)
    assert df.shape == (84, 2)
    assert df["subject"].cat.categories.tolist() == [f"S{i:02d}" for i in range(1, 13)]
    assert (df["subject"].value_counts() == 7).all()
    assert df["reaction"].dtype == np.float64


def test_drivers_cars_fully_crossed_and_balanced():
    df = simulate.drivers_cars(n_drivers=4, n_cars=3, reps=5)
    assert df.shape == (60, 3)
    cells = pd.crosstab(df["driver"], df["car"])
    assert cells.shape == (4, 3)
    assert (cells.to_numpy() == 5).all()
    assert df["driver"].cat.categories.tolist() == ["D1", "D2", "D3", "D4"]
    assert df["car"].cat.categories.tolist() == ["C1", "C2", "C3"]


def test_schools_ses_structure_and_ses_shift():
    df = simulate.schools_ses(n_schools=12, n_students=9)
    assert df.shape == (108, 3)
    assert (df["school"].value_counts() == 9).all()
    assert df["school"].cat.categories[0] == "S01"
    # Without a school shift ses is standard normal; with one the school means spread.
    plain = simulate.schools_ses(n_schools=200, n_students=50, rng=1)
    shifted = simulate.schools_ses(n_schools=200, n_students=50, ses_between_sd=1.0, rng=1)
    assert abs(plain["ses"].mean()) < 0.05 and abs(plain["ses"].std() - 1) < 0.05
    sd_plain = plain.groupby("school", observed=True)["ses"].mean().std()
    sd_shift = shifted.groupby("school", observed=True)["ses"].mean().std()
    assert sd_plain < 0.25 < 0.8 < sd_shift


def test_patients_doctors_structure():
    df = simulate.patients_doctors(n_doctors=30, n_patients=20)
    assert df.shape == (600, 4)
    assert (df["doctor"].value_counts() == 20).all()
    per_doctor = df.groupby("doctor", observed=True)
    assert (per_doctor["experience"].nunique() == 1).all(), "experience is a doctor trait"
    assert df["experience"].dtype == np.int64 and df["age"].dtype == np.int64
    assert df["experience"].between(1, 35).all() and df["age"].between(20, 85).all()
    assert per_doctor["age"].nunique().min() > 1
    assert df["cost"].dtype == np.float64


def test_school_level_predictor_structure():
    df = simulate.school_level_predictor(n_schools=15, n_students=4, rng=2)
    assert df.shape == (60, 3)
    assert (df["school"].value_counts() == 4).all()
    assert (df.groupby("school", observed=True)["w"].nunique() == 1).all()
    assert df.groupby("school", observed=True)["y"].nunique().min() == 4


def test_schools_two_levels_structure():
    df = simulate.schools_two_levels(n_schools=12, n_students=6, rng=3)
    assert df.shape == (72, 4)
    assert (df["school"].value_counts() == 6).all()
    per_school = df.groupby("school", observed=True)
    assert (per_school["w"].nunique() == 1).all(), "w is a school trait"
    assert per_school["x"].nunique().min() == 6, "x varies within school"


def test_truth_follows_arguments():
    df = simulate.schools_ses(beta1=-1.0, tau1=0.0, rho=-1.0, rng=4)
    assert df.attrs["truth"]["beta1"] == -1.0
    assert df.attrs["truth"]["rho"] == -1.0
    # Integers are stored as floats.
    df = simulate.reaction_times(beta0=250, tau=0, sigma=10, rng=1)
    assert df.attrs["truth"] == {"beta0": 250.0, "tau": 0.0, "sigma": 10.0}


def test_zero_variances_give_exact_means():
    df = simulate.reaction_times(tau=0.0, sigma=0.0)
    assert (df["reaction"] == 300.0).all()
    df = simulate.drivers_cars(tau_driver=0.0, tau_car=0.0, sigma=0.0, mu=12.5)
    assert (df["mpg"] == 12.5).all()


# ------------------------------------------------------------------------ seeding


@pytest.mark.parametrize("name", list(GENERATORS))
def test_seeds_are_reproducible(name):
    func = GENERATORS[name][0]
    pd.testing.assert_frame_equal(func(), func(rng=0))
    pd.testing.assert_frame_equal(func(rng=11), func(rng=11))
    pd.testing.assert_frame_equal(func(rng=11), func(rng=np.random.default_rng(11)))
    response = GENERATORS[name][1][-1]
    assert not np.allclose(func(rng=11)[response], func(rng=12)[response])


def test_generator_is_advanced():
    gen = np.random.default_rng(5)
    first = simulate.reaction_times(rng=gen)
    second = simulate.reaction_times(rng=gen)
    assert not np.allclose(first["reaction"], second["reaction"])


def test_group_effects_do_not_depend_on_group_size():
    small = simulate.reaction_times(n_obs=2, sigma=0.0, rng=9)
    large = simulate.reaction_times(n_obs=20, sigma=0.0, rng=9)
    means_small = small.groupby("subject", observed=True)["reaction"].mean()
    means_large = large.groupby("subject", observed=True)["reaction"].mean()
    np.testing.assert_allclose(means_small.to_numpy(), means_large.to_numpy())


@pytest.mark.parametrize("bad", [None, 1.5, "0", True])
def test_rng_must_be_seed_or_generator(bad):
    with pytest.raises(TypeError, match="rng"):
        simulate.reaction_times(rng=bad)


def test_negative_seed_is_refused():
    with pytest.raises(ValueError, match="rng"):
        simulate.drivers_cars(rng=-1)


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("func", "kwargs", "argument"),
    [
        (simulate.reaction_times, {"n_subjects": 0}, "n_subjects"),
        (simulate.reaction_times, {"n_obs": 2.5}, "n_obs"),
        (simulate.reaction_times, {"tau": -1.0}, "tau"),
        (simulate.reaction_times, {"sigma": float("nan")}, "sigma"),
        (simulate.reaction_times, {"beta0": float("inf")}, "beta0"),
        (simulate.drivers_cars, {"reps": 0}, "reps"),
        (simulate.drivers_cars, {"n_cars": -3}, "n_cars"),
        (simulate.drivers_cars, {"tau_car": -0.1}, "tau_car"),
        (simulate.drivers_cars, {"tau_driver": "3"}, "tau_driver"),
        (simulate.schools_ses, {"rho": 1.01}, "rho"),
        (simulate.schools_ses, {"rho": -2.0}, "rho"),
        (simulate.schools_ses, {"tau1": -1.0}, "tau1"),
        (simulate.schools_ses, {"n_students": True}, "n_students"),
        (simulate.schools_ses, {"ses_between_sd": -0.5}, "ses_between_sd"),
        (simulate.patients_doctors, {"n_doctors": 0}, "n_doctors"),
        (simulate.patients_doctors, {"tau_age": -0.01}, "tau_age"),
        (simulate.patients_doctors, {"beta_experience": None}, "beta_experience"),
        (simulate.school_level_predictor, {"n_schools": 0}, "n_schools"),
        (simulate.school_level_predictor, {"tau": -5.0}, "tau"),
        (simulate.schools_two_levels, {"n_students": 0}, "n_students"),
        (simulate.schools_two_levels, {"beta_x": float("nan")}, "beta_x"),
        (simulate.schools_two_levels, {"sigma": -1.0}, "sigma"),
    ],
)
def test_invalid_arguments_name_the_argument(func, kwargs, argument):
    with pytest.raises(ValueError, match=rf"^{argument} "):
        func(**kwargs)


def test_numpy_integers_and_extreme_correlations_are_accepted():
    df = simulate.schools_ses(n_schools=np.int64(3), n_students=np.int32(2), rho=1.0)
    assert df.shape == (6, 3)
    assert simulate.schools_ses(rho=-1.0).shape == (1800, 3)


# ------------------------------------------------------------------------ recovery


def test_reaction_times_recovered_by_anova():
    n_subj, n_obs = 18, 10
    beta0, tau2, sigma2 = [], [], []
    for seed in range(N_MOMENT):
        y = simulate.reaction_times(rng=seed)["reaction"].to_numpy().reshape(n_subj, n_obs)
        means = y.mean(axis=1)
        msw = ((y - means[:, None]) ** 2).sum() / (n_subj * (n_obs - 1))
        msb = n_obs * means.var(ddof=1)
        beta0.append(y.mean())
        sigma2.append(msw)
        tau2.append((msb - msw) / n_obs)
    assert_unbiased(beta0, 300.0, "beta_0")
    assert_unbiased(tau2, 35.0**2, "tau^2")
    assert_unbiased(sigma2, 45.0**2, "sigma^2")


def test_reaction_times_recovered_by_reml():
    lo, hi, tau, sigma = [], [], [], []
    for seed in range(N_REML):
        fit = reml_fit("reaction ~ 1", simulate.reaction_times(rng=seed), groups="subject")
        a, b = wald95(fit, "Intercept")
        lo.append(a)
        hi.append(b)
        tau.append(np.sqrt(fit.cov_re[0, 0]))
        sigma.append(fit.sigma)
    assert_covers(lo, hi, 300.0, "beta_0")
    assert np.mean(tau) == pytest.approx(35.0, rel=0.1)
    assert np.mean(sigma) == pytest.approx(45.0, rel=0.1)


def test_drivers_cars_recovered_by_anova():
    n_d, n_c, reps = 10, 8, 2
    mu, tau_d2, tau_c2, sigma2 = [], [], [], []
    for seed in range(N_MOMENT):
        y = simulate.drivers_cars(rng=seed)["mpg"].to_numpy().reshape(n_d, n_c, reps)
        grand = y.mean()
        row = y.mean(axis=(1, 2))
        col = y.mean(axis=(0, 2))
        ms_d = n_c * reps * ((row - grand) ** 2).sum() / (n_d - 1)
        ms_c = n_d * reps * ((col - grand) ** 2).sum() / (n_c - 1)
        resid = y - row[:, None, None] - col[None, :, None] + grand
        ms_e = (resid**2).sum() / (y.size - n_d - n_c + 1)
        mu.append(grand)
        sigma2.append(ms_e)
        tau_d2.append((ms_d - ms_e) / (n_c * reps))
        tau_c2.append((ms_c - ms_e) / (n_d * reps))
    assert_unbiased(mu, 30.0, "mu")
    assert_unbiased(tau_d2, 3.0**2, "tau_driver^2")
    assert_unbiased(tau_c2, 2.0**2, "tau_car^2")
    assert_unbiased(sigma2, 1.5**2, "sigma^2")


def test_drivers_cars_crossed_reml_matches_anova():
    # For balanced data REML equals the ANOVA estimates when these are positive.
    df = simulate.drivers_cars(n_drivers=12, n_cars=9, reps=3, rng=21)
    fit = reml_fit(
        "mpg ~ 1",
        df.assign(all=1),
        method="nm",
        groups="all",
        vc_formula={"driver": "0 + C(driver)", "car": "0 + C(car)"},
    )
    vc = fit.vcomp
    y = df["mpg"].to_numpy().reshape(12, 9, 3)
    row, col, grand = y.mean(axis=(1, 2)), y.mean(axis=(0, 2)), y.mean()
    ms_e = ((y - row[:, None, None] - col[None, :, None] + grand) ** 2).sum() / (y.size - 20)
    tau_d2 = (27 * ((row - grand) ** 2).sum() / 11 - ms_e) / 27
    tau_c2 = (36 * ((col - grand) ** 2).sum() / 8 - ms_e) / 36
    assert vc["driver"] == pytest.approx(tau_d2, rel=2e-3)
    assert vc["car"] == pytest.approx(tau_c2, rel=2e-3)
    assert fit.sigma**2 == pytest.approx(ms_e, rel=2e-3)
    assert fit.fe["Intercept"] == pytest.approx(grand, rel=1e-6)


def _per_group_ols(x, y):
    """Intercepts, slopes, X'X inverses and pooled residual variance, one row per group."""
    xbar, ybar = x.mean(axis=1), y.mean(axis=1)
    sxx = ((x - xbar[:, None]) ** 2).sum(axis=1)
    slope = ((x - xbar[:, None]) * (y - ybar[:, None])).sum(axis=1) / sxx
    intercept = ybar - slope * xbar
    resid = y - intercept[:, None] - slope[:, None] * x
    s2 = (resid**2).sum() / (y.size - 2 * y.shape[0])
    n = x.shape[1]
    xtx_inv = np.empty((x.shape[0], 2, 2))
    xtx_inv[:, 0, 0] = 1 / n + xbar**2 / sxx
    xtx_inv[:, 0, 1] = xtx_inv[:, 1, 0] = -xbar / sxx
    xtx_inv[:, 1, 1] = 1 / sxx
    return np.column_stack([intercept, slope]), xtx_inv, s2


def test_schools_ses_recovered_by_moments():
    # Per-school OLS: the coefficients' covariance across schools, less the average
    # sampling covariance, estimates the covariance of the school effects unbiasedly.
    est = {k: [] for k in ("beta0", "beta1", "tau0^2", "tau1^2", "cov", "sigma^2")}
    for seed in range(N_MOMENT):
        df = simulate.schools_ses(rng=seed)
        x = df["ses"].to_numpy().reshape(60, 30)
        y = df["math"].to_numpy().reshape(60, 30)
        coef, xtx_inv, s2 = _per_group_ols(x, y)
        cov_u = np.cov(coef, rowvar=False) - s2 * xtx_inv.mean(axis=0)
        est["beta0"].append(coef[:, 0].mean())
        est["beta1"].append(coef[:, 1].mean())
        est["tau0^2"].append(cov_u[0, 0])
        est["tau1^2"].append(cov_u[1, 1])
        est["cov"].append(cov_u[0, 1])
        est["sigma^2"].append(s2)
    truth = {
        "beta0": 12.0,
        "beta1": 2.5,
        "tau0^2": 2.5**2,
        "tau1^2": 1.0**2,
        "cov": 0.3 * 2.5 * 1.0,
        "sigma^2": 36.0,
    }
    for key, value in truth.items():
        assert_unbiased(est[key], value, key)


def test_schools_ses_recovered_by_reml():
    lo0, hi0, lo1, hi1, tau0, tau1, sigma = [], [], [], [], [], [], []
    for seed in range(N_REML):
        fit = reml_fit(
            "math ~ ses", simulate.schools_ses(rng=seed), groups="school", re_formula="~ses"
        )
        a, b = wald95(fit, "Intercept")
        lo0.append(a)
        hi0.append(b)
        a, b = wald95(fit, "ses")
        lo1.append(a)
        hi1.append(b)
        tau0.append(np.sqrt(fit.cov_re[0, 0]))
        tau1.append(np.sqrt(fit.cov_re[1, 1]))
        sigma.append(fit.sigma)
    assert_covers(lo0, hi0, 12.0, "beta0")
    assert_covers(lo1, hi1, 2.5, "beta1")
    assert np.mean(tau0) == pytest.approx(2.5, rel=0.1)
    assert np.mean(tau1) == pytest.approx(1.0, rel=0.1)
    assert np.mean(sigma) == pytest.approx(6.0, rel=0.1)


def test_patients_doctors_recovered_by_moments():
    # Stage 1: OLS of cost on age per doctor. Stage 2: the intercepts on experience.
    est = {k: [] for k in ("beta0", "beta_exp", "beta_age", "tau0^2", "tau_age^2", "sigma^2")}
    for seed in range(N_MOMENT):
        df = simulate.patients_doctors(rng=seed)
        x = df["age"].to_numpy(dtype=float).reshape(40, 25)
        y = df["cost"].to_numpy().reshape(40, 25)
        experience = df["experience"].to_numpy(dtype=float)[::25]
        coef, xtx_inv, s2 = _per_group_ols(x, y)
        z = np.column_stack([np.ones(40), experience])
        gamma, *_ = np.linalg.lstsq(z, coef[:, 0], rcond=None)
        rss = ((coef[:, 0] - z @ gamma) ** 2).sum()
        leverage = np.einsum("ij,ji->i", z, np.linalg.solve(z.T @ z, z.T))
        noise0 = s2 * ((1 - leverage) * xtx_inv[:, 0, 0]).sum()
        est["beta0"].append(gamma[0])
        est["beta_exp"].append(gamma[1])
        est["beta_age"].append(coef[:, 1].mean())
        est["tau0^2"].append((rss - noise0) / (40 - 2))
        est["tau_age^2"].append(coef[:, 1].var(ddof=1) - s2 * xtx_inv[:, 1, 1].mean())
        est["sigma^2"].append(s2)
    truth = {
        "beta0": 3.0,
        "beta_exp": -0.03,
        "beta_age": 0.05,
        "tau0^2": 0.5**2,
        "tau_age^2": 0.02**2,
        "sigma^2": 1.0,
    }
    for key, value in truth.items():
        assert_unbiased(est[key], value, key)


def test_patients_doctors_recovered_by_reml():
    # Age in decades from 50 keeps statsmodels' optimiser well scaled; the age and
    # experience coefficients are unchanged by the centring.
    lo_a, hi_a, lo_e, hi_e, tau_age, sigma = [], [], [], [], [], []
    for seed in range(N_REML):
        df = simulate.patients_doctors(rng=seed)
        df["decades"] = (df["age"] - 50) / 10
        fit = reml_fit("cost ~ decades + experience", df, groups="doctor", re_formula="~decades")
        a, b = wald95(fit, "decades")
        lo_a.append(a / 10)
        hi_a.append(b / 10)
        a, b = wald95(fit, "experience")
        lo_e.append(a)
        hi_e.append(b)
        tau_age.append(np.sqrt(fit.cov_re[1, 1]) / 10)
        sigma.append(fit.sigma)
    assert_covers(lo_a, hi_a, 0.05, "beta_age")
    assert_covers(lo_e, hi_e, -0.03, "beta_experience")
    assert np.mean(tau_age) == pytest.approx(0.02, rel=0.1)
    assert np.mean(sigma) == pytest.approx(1.0, rel=0.1)


def test_school_level_predictor_ols_standard_errors_are_too_small():
    n_schools, n_students = 40, 25
    deff = 1 + (n_students - 1) * 25 / (25 + 100)
    ols_b, ols_se, agg_b, agg_se, tau2, sigma2 = [], [], [], [], [], []
    for seed in range(2 * N_MOMENT):
        df = simulate.school_level_predictor(rng=seed)
        w = df["w"].to_numpy()
        y = df["y"].to_numpy()
        # OLS on all students.
        x = np.column_stack([np.ones_like(w), w])
        b, rss, *_ = np.linalg.lstsq(x, y, rcond=None)
        ols_b.append(b[1])
        ols_se.append(np.sqrt(rss[0] / (y.size - 2) * np.linalg.inv(x.T @ x)[1, 1]))
        # OLS on school means: the right standard error for a school-level predictor.
        ym = y.reshape(n_schools, n_students)
        means = ym.mean(axis=1)
        xm = x[::n_students]
        bm, rssm, *_ = np.linalg.lstsq(xm, means, rcond=None)
        agg_b.append(bm[1])
        agg_se.append(np.sqrt(rssm[0] / (n_schools - 2) * np.linalg.inv(xm.T @ xm)[1, 1]))
        msw = ((ym - means[:, None]) ** 2).sum() / (n_schools * (n_students - 1))
        sigma2.append(msw)
        tau2.append(rssm[0] / (n_schools - 2) - msw / n_students)
    assert_unbiased(ols_b, 2.0, "beta_w (OLS)")
    assert_unbiased(agg_b, 2.0, "beta_w (school means)")
    assert_unbiased(tau2, 25.0, "tau^2")
    assert_unbiased(sigma2, 100.0, "sigma^2")
    # True sampling SD of the estimate versus the average reported standard error.
    ratio_ols = np.std(ols_b, ddof=1) / np.mean(ols_se)
    ratio_agg = np.std(agg_b, ddof=1) / np.mean(agg_se)
    assert ratio_ols == pytest.approx(np.sqrt(deff), rel=0.15)
    assert ratio_agg == pytest.approx(1.0, rel=0.15)


def test_school_level_predictor_mixed_model_covers_where_ols_does_not():
    mixed_in, ols_in = [], []
    for seed in range(N_REML):
        df = simulate.school_level_predictor(rng=seed)
        fit = reml_fit("y ~ w", df, groups="school")
        a, b = wald95(fit, "w")
        mixed_in.append(a <= 2.0 <= b)
        ols = smf.ols("y ~ w", df).fit()
        a, b = ols.conf_int(alpha=0.05).loc["w"]
        ols_in.append(a <= 2.0 <= b)
    # The OLS standard error is about 2.4 times too small: expected coverage near 58%.
    assert np.mean(mixed_in) >= 0.8
    assert np.mean(ols_in) < 0.8


def test_schools_two_levels_recovered_by_within_and_between_regressions():
    # The within-school regression estimates beta_x unbiasedly; the regression of school means
    # on w estimates beta_w, and its residual variance is tau^2 + (variance of x's school
    # means times beta_x^2 + sigma^2) / n_students.
    n_schools, n_students = 30, 20
    within, between, sigma2, tau2 = [], [], [], []
    for seed in range(N_MOMENT):
        df = simulate.schools_two_levels(rng=seed)
        g = df.groupby("school", observed=True)
        xc = (df["x"] - g["x"].transform("mean")).to_numpy()
        yc = (df["y"] - g["y"].transform("mean")).to_numpy()
        b = xc @ yc / (xc @ xc)
        within.append(b)
        sigma2.append(((yc - b * xc) ** 2).sum() / (len(df) - n_schools - 1))
        means = g[["x", "w", "y"]].mean()
        design = np.column_stack([np.ones(n_schools), means["x"], means["w"]])
        coef, rss, *_ = np.linalg.lstsq(design, means["y"].to_numpy(), rcond=None)
        between.append(coef[2])
        tau2.append(rss[0] / (n_schools - 3) - sigma2[-1] / n_students)
    assert_unbiased(within, 1.0, "beta_x (within)")
    assert_unbiased(between, 2.0, "beta_w (between)")
    assert_unbiased(sigma2, 100.0, "sigma^2")
    assert_unbiased(tau2, 25.0, "tau^2")
