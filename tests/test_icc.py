"""Intraclass correlation, its bootstrap interval and the design effect."""

import warnings

import numpy as np
import pandas as pd
import pytest

from mlmprimer.datasets import load
from mlmprimer.icc import design_effect, effective_sample_size, icc, icc_ci
from mlmprimer.model import LmerWarning, lmer


def simulate_null(n_groups, size, tau2, sigma2, seed):
    """y_ij = 10 + u_j + e_ij with u_j ~ N(0, tau2), e_ij ~ N(0, sigma2)."""
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), size)
    u = rng.normal(0.0, np.sqrt(tau2), n_groups)
    y = 10.0 + u[group] + rng.normal(0.0, np.sqrt(sigma2), n_groups * size)
    return pd.DataFrame({"y": y, "g": pd.Categorical([f"g{j:03d}" for j in group])})


@pytest.fixture(scope="module")
def sleep():
    return load("sleepstudy")


@pytest.fixture(scope="module")
def intercept_model(sleep):
    return lmer("Reaction ~ Days + (1 | Subject)", sleep)


# ---------------------------------------------------------------------------------- design effect


def test_design_effect_formula_scalar():
    assert design_effect(0.1, 21) == pytest.approx(1 + 20 * 0.1)
    assert isinstance(design_effect(0.1, 21), float)


def test_design_effect_limits():
    # independent observations: no loss; clusters of one: no loss; ICC 1: a cluster counts once
    assert design_effect(0.0, 30) == 1.0
    assert design_effect(0.4, 1) == 1.0
    assert design_effect(1.0, 30) == pytest.approx(30.0)


def test_design_effect_vectorised_broadcasts():
    rho = np.array([0.0, 0.05, 0.2])
    m = np.array([[5.0], [25.0]])
    out = design_effect(rho, m)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, 1 + (m - 1) * rho)


@pytest.mark.parametrize(
    ("rho", "m", "match"),
    [
        (-0.1, 10, "icc"),
        (1.5, 10, "icc"),
        (0.1, 0.5, "cluster_size"),
        (np.nan, 10, "icc"),
        ("a lot", 10, "icc"),
        (0.1, [], "cluster_size"),
    ],
)
def test_design_effect_rejects_bad_input(rho, m, match):
    with pytest.raises(ValueError, match=match):
        design_effect(rho, m)


def test_effective_sample_size():
    # 600 pupils in 30 classes of 20 with ICC 0.1: n / (1 + 19 * 0.1)
    assert effective_sample_size(600, 0.1, 20) == pytest.approx(600 / 2.9)
    # ICC 0: every observation counts; ICC 1: each cluster counts once
    assert effective_sample_size(600, 0.0, 20) == pytest.approx(600)
    assert effective_sample_size(600, 1.0, 20) == pytest.approx(30)
    np.testing.assert_allclose(effective_sample_size([100, 200], 0.5, 3), [50.0, 100.0])
    with pytest.raises(ValueError, match="n must be positive"):
        effective_sample_size(0, 0.1, 5)


# -------------------------------------------------------------------------------------------- icc


def test_icc_is_tau2_over_total_from_varcorr(intercept_model):
    vc = intercept_model.varcorr
    tau2 = float(vc.loc[vc["grp"] == "Subject", "vcov"].iloc[0])
    sigma2 = float(vc.loc[vc["grp"] == "Residual", "vcov"].iloc[0])
    assert icc(intercept_model) == pytest.approx(tau2 / (tau2 + sigma2), rel=1e-10)
    assert sigma2 == pytest.approx(intercept_model.sigma**2, rel=1e-8)


def test_icc_recovers_truth_of_simulated_null_model():
    tau2, sigma2 = 0.25, 1.0  # true ICC 0.2
    data = simulate_null(n_groups=200, size=10, tau2=tau2, sigma2=sigma2, seed=20240521)
    model = lmer("y ~ 1 + (1 | g)", data)
    # standard error of the ICC estimate here is about 0.02
    assert icc(model) == pytest.approx(tau2 / (tau2 + sigma2), abs=0.06)


def test_icc_hsb82_null_model_published_value():
    # lme4 (REML): school variance 8.614, residual 39.148 -> 0.1804 (Raudenbush & Bryk: 0.18)
    hsb = load("Hsb82")
    model = lmer("mAch ~ 1 + (1 | school)", hsb)
    assert icc(model) == pytest.approx(8.614025 / (8.614025 + 39.148322), abs=5e-4)


def test_icc_adjusted_and_unadjusted(sleep, intercept_model):
    null = lmer("Reaction ~ 1 + (1 | Subject)", sleep)
    # without fixed-effect variance the two versions agree
    assert icc(null, adjusted=False) == pytest.approx(icc(null))
    # Days explains variance: the unadjusted ICC has a larger denominator
    assert icc(intercept_model, adjusted=False) < icc(intercept_model)


def test_icc_random_slopes_warns_and_uses_mean_variance(sleep):
    model = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    with pytest.warns(LmerWarning, match="random slopes"):
        value = icc(model)
    # by hand in R with lme4 1.1: mean over rows of z' Sigma z = 1698.084, sigma^2 = 654.940
    assert value == pytest.approx(1698.0837 / (1698.0837 + 654.9400), abs=2e-3)


def test_icc_by_group_with_two_grouping_factors():
    rng = np.random.default_rng(7)
    n_school, n_class, size = 30, 4, 8
    school = np.repeat(np.arange(n_school), n_class * size)
    klass = np.repeat(np.arange(n_school * n_class), size)
    y = (
        rng.normal(0, 1.0, n_school)[school]
        + rng.normal(0, 0.7, n_school * n_class)[klass]
        + rng.normal(0, 1.5, len(school))
    )
    data = pd.DataFrame(
        {
            "y": y,
            "school": pd.Categorical([f"s{j}" for j in school]),
            "klass": pd.Categorical([f"c{j}" for j in klass]),
        }
    )
    model = lmer("y ~ 1 + (1 | school) + (1 | klass)", data)
    by = icc(model, by_group=True)
    assert isinstance(by, pd.Series)
    assert set(by.index) == {"school", "klass"}
    vc = model.varcorr.set_index("grp")["vcov"]
    total = vc.sum()
    for grp in ("school", "klass"):
        assert by[grp] == pytest.approx(vc[grp] / total)
    assert by.sum() == pytest.approx(icc(model))
    ci = icc_ci(model, n_boot=4, seed=1, progress=False, by_group=True)
    assert list(ci.index) == list(by.index)
    assert list(ci.columns) == ["estimate", "conf.low", "conf.high", "n_boot", "n_failed"]
    np.testing.assert_allclose(ci["estimate"], by)
    assert (ci["n_boot"] + ci["n_failed"] == 4).all()


def test_icc_of_model_without_random_variance_is_zero():
    # group means of the noise are all exactly equal: no between-group variance
    rng = np.random.default_rng(3)
    e = rng.normal(size=(20, 6))
    e -= e.mean(axis=1, keepdims=True)
    data = pd.DataFrame(
        {"y": 5 + e.ravel(), "g": pd.Categorical(np.repeat([f"g{j:02d}" for j in range(20)], 6))}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lmer("y ~ 1 + (1 | g)", data)
    assert icc(model) == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------------------- icc_ci


def test_icc_ci_covers_truth_on_simulated_data():
    tau2, sigma2 = 0.5, 1.0  # true ICC 1/3
    data = simulate_null(n_groups=40, size=6, tau2=tau2, sigma2=sigma2, seed=11)
    model = lmer("y ~ 1 + (1 | g)", data)
    ci = icc_ci(model, n_boot=40, seed=5, progress=False)
    assert list(ci.index) == ["estimate", "conf.low", "conf.high", "n_boot", "n_failed"]
    assert ci["n_boot"] + ci["n_failed"] == 40
    assert ci["n_boot"] >= 36
    assert ci["conf.low"] <= ci["estimate"] <= ci["conf.high"]
    assert ci["conf.low"] < 1 / 3 < ci["conf.high"]
    assert ci["estimate"] == pytest.approx(icc(model))


def test_icc_ci_reproducible_and_quiet(intercept_model, capsys):
    a = icc_ci(intercept_model, n_boot=8, seed=42, progress=False)
    b = icc_ci(intercept_model, n_boot=8, seed=42, progress=False)
    pd.testing.assert_series_equal(a, b)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_icc_ci_narrower_at_lower_level(intercept_model):
    wide = icc_ci(intercept_model, n_boot=12, seed=3, level=0.95, progress=False)
    narrow = icc_ci(intercept_model, n_boot=12, seed=3, level=0.5, progress=False)
    assert narrow["conf.high"] - narrow["conf.low"] <= wide["conf.high"] - wide["conf.low"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_boot": 0}, "n_boot"), ({"n_boot": 2.5}, "n_boot"), ({"level": 1.0}, "level")],
)
def test_icc_ci_rejects_bad_arguments(intercept_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        icc_ci(intercept_model, progress=False, **kwargs)


def test_icc_ci_refits_formulas_that_use_the_callers_variables(sleep):
    scale = 10.0  # noqa: F841 - used inside the formula
    model = lmer("Reaction ~ I(Days / scale) + (1 | Subject)", sleep)
    ci = icc_ci(model, n_boot=5, seed=1, progress=False)
    assert ci["n_failed"] == 0
    assert ci["estimate"] == pytest.approx(icc(model))
