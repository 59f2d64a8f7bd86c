"""Confidence intervals (mlmprimer.profile.confint and LmerModel.tidy) against lme4's confint.

The lme4 intervals are in the reference fixtures (tests/fixtures/lme4/*.json, key "confint"),
written by scripts/lme4_reference.R.
"""

import functools
import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import mlmprimer
from mlmprimer import datasets
from mlmprimer.model import LmerModel, LmerWarning, lmer
from mlmprimer.optimize import ConvergenceError
from mlmprimer.profile import bootstrap_refits, confint, parameter_names

# How close the profile limits must be to lme4's. Both interpolate a spline through the points
# of the profile; where a profile is well behaved the two agree to about 1e-6. The largest
# difference, 3e-3, is the lower limit of the ses slope SD in hsb_ses_slopes, where lme4's
# optimiser of the other parameters stops short at one profile point.
PROFILE_REL = 5e-3


@functools.cache
def fitted(dataset, formula, REML):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        return lmer(formula, datasets.load(dataset), REML=REML)


@functools.cache
def profiled(dataset, formula, REML):
    return confint(fitted(dataset, formula, REML), "profile")


def fixture_model(fx):
    return fitted(fx["dataset"], fx["formula"], fx["REML"])


@pytest.fixture(scope="module")
def sleep_slopes():
    return fitted("sleepstudy", "Reaction ~ Days + (Days | Subject)", True)


@pytest.fixture(scope="module")
def dyestuff():
    return fitted("dyestuff", "Yield ~ 1 + (1 | Batch)", True)


# --------------------------------------------------------------------------------------------
# lme4's numbers
# --------------------------------------------------------------------------------------------


def test_fixtures_carry_lme4_intervals(lme4_fixture):
    ci = lme4_fixture["confint"]
    assert ci["level"] == 0.95
    names = list(ci["Wald"])
    k = len(lme4_fixture["theta"])
    assert names == [f".sig{i + 1:02d}" for i in range(k)] + [".sigma"] + list(
        lme4_fixture["fixef"]
    )
    if lme4_fixture["name"] == "insteval":
        assert ci["profile"] is None  # too slow to profile in R
    else:
        kept = [n for n in names if n not in ci["profile_left_out"]]
        assert list(ci["profile"]) == kept


def test_profile_matches_lme4(lme4_fixture):
    want = lme4_fixture["confint"]["profile"]
    if want is None:
        pytest.skip("lme4 did not profile this model (too slow)")
    m = fixture_model(lme4_fixture)
    got = profiled(lme4_fixture["dataset"], lme4_fixture["formula"], lme4_fixture["REML"])
    assert list(got.columns) == ["2.5 %", "97.5 %"]
    assert list(got.index) == parameter_names(m)
    for name, limits in want.items():
        for col, expected in zip(got.columns, limits, strict=True):
            value = got.loc[name, col]
            if expected == 0:  # lme4's limit at the bound of a standard deviation
                assert value == pytest.approx(0.0, abs=1e-12), (name, col, value)
            else:
                assert value == pytest.approx(expected, rel=PROFILE_REL), (name, col, expected)


def test_wald_matches_lme4(lme4_fixture):
    m = fixture_model(lme4_fixture)
    got = confint(m, "Wald")
    for name, (low, high) in lme4_fixture["confint"]["Wald"].items():
        if low is None:  # no Wald interval for a variance parameter
            assert got.loc[name].isna().all(), name
        else:
            assert got.loc[name].tolist() == pytest.approx([low, high], rel=1e-4), name


def read_fixture(directory, name):
    return json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))


def test_tidy_profile_columns_are_lme4_intervals(lme4_fixture_dir):
    fx = read_fixture(lme4_fixture_dir, "sleepstudy_slopes")
    want = fx["confint"]["profile"]
    m = fixture_model(fx)
    t = m.tidy(conf_int=True, conf_method="profile")
    assert list(t.columns) == [
        "effect",
        "group",
        "term",
        "estimate",
        "std.error",
        "statistic",
        "conf.low",
        "conf.high",
    ]
    order = ["(Intercept)", "Days", ".sig01", ".sig02", ".sig03", ".sigma"]
    assert list(t.term) == [
        "(Intercept)",
        "Days",
        "sd__(Intercept)",
        "cor__(Intercept).Days",
        "sd__Days",
        "sd__Observation",
    ]
    for (_, row), name in zip(t.iterrows(), order, strict=True):
        assert [row["conf.low"], row["conf.high"]] == pytest.approx(want[name], rel=PROFILE_REL)


def test_tidy_profile_of_one_kind_of_effect(lme4_fixture_dir, dyestuff):
    want = read_fixture(lme4_fixture_dir, "dyestuff")["confint"]["profile"]
    ran = dyestuff.tidy("ran_pars", conf_int=True, conf_method="profile")
    assert list(ran.term) == ["sd__(Intercept)", "sd__Observation"]
    assert ran[["conf.low", "conf.high"]].to_numpy().tolist() == [
        pytest.approx(want[".sig01"], rel=PROFILE_REL),
        pytest.approx(want[".sigma"], rel=PROFILE_REL),
    ]
    fixed = dyestuff.tidy("fixed", conf_int=True, conf_method="profile")
    assert fixed[["conf.low", "conf.high"]].iloc[0].tolist() == pytest.approx(
        want["(Intercept)"], rel=PROFILE_REL
    )


# --------------------------------------------------------------------------------------------
# properties of the profile
# --------------------------------------------------------------------------------------------


def test_deviance_rises_by_z_squared_at_fixed_effect_limits(sleep_slopes):
    # Holding Days at a limit and refitting by ML (Days moved into the response) must cost
    # 1.96^2 in deviance: an independent check through the ordinary fitting path.
    m = sleep_slopes
    ci = confint(m, parm="Days")
    full = m.refit(REML=False)
    sleep = datasets.load("sleepstudy")
    for b in ci.loc["Days"]:
        data = sleep.assign(y_fixed=sleep["Reaction"] - b * sleep["Days"])
        held = lmer("y_fixed ~ 1 + (Days | Subject)", data, REML=False)
        assert held.deviance - full.deviance == pytest.approx(1.959964**2, abs=2e-3)


def test_fixed_effect_limits_with_prior_weights_and_offset():
    # the same check with prior weights and an offset, which enter the deviance
    sleep = datasets.load("sleepstudy")
    w = 1 + sleep["Days"] / 10
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep, weights=w, offset=0.5 * sleep["Days"])
    full = m.refit(REML=False)
    for b in confint(m, parm="Days").loc["Days"]:
        held = lmer(
            "Reaction ~ 1 + (Days | Subject)",
            sleep,
            weights=w,
            offset=(0.5 + b) * sleep["Days"],
            REML=False,
        )
        assert held.deviance - full.deviance == pytest.approx(1.959964**2, abs=2e-3)


def test_reml_fit_is_profiled_on_the_likelihood():
    # as lme4: a REML fit gives the intervals of its ML refit
    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    reml = profiled("penicillin", formula, True)
    ml = profiled("penicillin", formula, False)
    np.testing.assert_allclose(reml, ml, rtol=1e-5)


def test_narrower_level_gives_nested_intervals(dyestuff):
    wide = confint(dyestuff, level=0.95)
    narrow = confint(dyestuff, level=0.8)
    assert list(narrow.columns) == ["10 %", "90 %"]
    assert (narrow.iloc[:, 0] > wide.iloc[:, 0]).all()
    assert (narrow.iloc[:, 1] < wide.iloc[:, 1]).all()
    # around the ML estimates, yet wide enough to hold the REML ones too
    t = dyestuff.tidy()
    est = t.set_index("term").estimate[["sd__(Intercept)", "sd__Observation", "(Intercept)"]]
    assert (narrow.iloc[:, 0].to_numpy() < est.to_numpy()).all()
    assert (est.to_numpy() < narrow.iloc[:, 1].to_numpy()).all()


def test_singular_fit_has_lower_limit_zero():
    # no between-group variation at all: the SD estimate is 0 and so is its lower limit
    rng = np.random.default_rng(3)
    data = pd.DataFrame(
        {"g": np.repeat([f"g{i}" for i in range(10)], 8), "y": rng.normal(size=80) + 5.0}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        m = lmer("y ~ 1 + (1 | g)", data)
    assert m.singular
    ci = confint(m)
    assert ci.loc[".sig01", "2.5 %"] == 0.0
    assert 0 < ci.loc[".sig01", "97.5 %"] < 1.0
    sigma_low, sigma_high = ci.loc[".sigma"]
    assert sigma_low < m.sigma < sigma_high


def test_parm_selects_rows(sleep_slopes):
    formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"
    m = fitted("penicillin", formula, True)
    full = profiled("penicillin", formula, True)
    theta = confint(m, parm="theta_")
    assert list(theta.index) == [".sig01", ".sig02", ".sigma"]
    pd.testing.assert_frame_equal(theta, full.iloc[:3])
    pd.testing.assert_frame_equal(confint(m, parm="(Intercept)"), full.iloc[3:])
    assert list(confint(sleep_slopes, "Wald", parm=[".sigma", "Days"]).index) == [
        ".sigma",
        "Days",
    ]
    assert list(confint(sleep_slopes, "Wald", parm="beta_").index) == ["(Intercept)", "Days"]


def test_profile_on_large_model_takes_seconds():
    import time

    m = fitted("hsb", "mAch ~ ses + (ses | school)", True)
    start = time.process_time()
    ci = confint(m)
    assert time.process_time() - start < 30
    assert ci.notna().all().all()


def test_exported_at_top_level():
    assert mlmprimer.confint is confint


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


def test_boot_intervals_cover_estimates_and_are_seeded(sleep_slopes):
    m = sleep_slopes
    a = confint(m, "boot", nsim=25, seed=11)
    b = confint(m, "boot", nsim=25, seed=11)
    c = confint(m, "boot", nsim=25, seed=np.random.default_rng(11))
    d = confint(m, "boot", nsim=5, seed=12)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert not confint(m, "boot", nsim=5, seed=11).equals(d)  # another seed, other draws
    assert a.attrs == {"nsim": 25, "n_failed": 0}
    est = m.tidy()
    est_by_name = dict(
        zip(
            ["(Intercept)", "Days", ".sig01", ".sig02", ".sig03", ".sigma"],
            est.estimate,
            strict=True,
        )
    )
    for name, (low, high) in a.iterrows():
        assert low < est_by_name[name] < high, name
    # the fixed effects' percentile intervals are about as wide as their Wald intervals
    wald = confint(m, "Wald")
    ratio = (a.iloc[:, 1] - a.iloc[:, 0]) / (wald.iloc[:, 1] - wald.iloc[:, 0])
    assert ratio[["(Intercept)", "Days"]].between(0.5, 2.0).all()


def test_tidy_boot_is_reproducible_and_quiet(dyestuff, capsys):
    a = dyestuff.tidy(conf_int=True, conf_method="boot", nsim=20, seed=5)
    b = dyestuff.tidy(conf_int=True, conf_method="boot", nsim=20, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["n_failed"] == 0
    assert (a["conf.low"] < a["estimate"]).all() and (a["estimate"] < a["conf.high"]).all()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_boot_progress_bar_when_asked(dyestuff, capsys):
    confint(dyestuff, "boot", nsim=3, seed=1, progress=True)
    assert "bootstrap" in capsys.readouterr().err


def test_failed_refits_are_counted_and_reported(dyestuff, monkeypatch):
    calls = {"n": 0}
    original = LmerModel.refit

    def flaky(self, newresp=None, REML=None):
        calls["n"] += 1
        if calls["n"] % 4 == 0:
            raise ConvergenceError("the optimiser did not converge")
        return original(self, newresp, REML)

    monkeypatch.setattr(LmerModel, "refit", flaky)
    with pytest.warns(LmerWarning, match="5 of 20 bootstrap refits failed"):
        ci = confint(dyestuff, "boot", nsim=20, seed=2)
    assert ci.attrs == {"nsim": 20, "n_failed": 5}
    assert ci.notna().all().all()


def test_all_refits_failing_raises(dyestuff, monkeypatch):
    def broken(self, newresp=None, REML=None):
        raise ConvergenceError("the optimiser did not converge")

    monkeypatch.setattr(LmerModel, "refit", broken)
    with pytest.raises(RuntimeError, match="all 6 bootstrap refits failed"):
        confint(dyestuff, "boot", nsim=6, seed=2)


def test_bootstrap_refits_statistic_and_count(dyestuff):
    res = bootstrap_refits(dyestuff, lambda fit: [fit.sigma, fit.fixef.iloc[0]], nsim=4, seed=3)
    assert res.values.shape == (4, 2) and res.n_failed == 0
    again = bootstrap_refits(dyestuff, lambda fit: [fit.sigma, fit.fixef.iloc[0]], nsim=4, seed=3)
    np.testing.assert_array_equal(res.values, again.values)
    assert (res.values[:, 0] > 0).all()


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "bootstrap"}, ValueError, "unknown method 'bootstrap'"),
        ({"method": "wald"}, ValueError, "unknown method"),
        ({"level": 0}, ValueError, "strictly between 0 and 1"),
        ({"level": 1}, ValueError, "strictly between 0 and 1"),
        ({"level": 1.5}, ValueError, "strictly between 0 and 1"),
        ({"level": -0.2}, ValueError, "strictly between 0 and 1"),
        ({"level": "0.95"}, ValueError, "between 0 and 1"),
        ({"level": math.nan}, ValueError, "strictly between 0 and 1"),
        ({"method": "boot", "nsim": 0}, ValueError, "nsim must be a positive integer"),
        ({"method": "boot", "nsim": -5}, ValueError, "nsim must be a positive integer"),
        ({"method": "boot", "nsim": 2.5}, ValueError, "nsim must be a positive integer"),
        ({"method": "boot", "nsim": True}, ValueError, "nsim must be a positive integer"),
        ({"parm": "Days"}, ValueError, "unknown parameter 'Days'"),
    ],
)
def test_confint_rejects_bad_input(dyestuff, kwargs, error, match):
    with pytest.raises(error, match=match):
        confint(dyestuff, **kwargs)


def test_confint_rejects_a_non_model():
    with pytest.raises(TypeError, match="LmerModel"):
        confint(pd.DataFrame({"y": [1.0]}))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"conf_int": True, "conf_method": "likelihood"}, "unknown conf_method 'likelihood'"),
        ({"conf_int": True, "conf_level": 95}, "strictly between 0 and 1"),
        ({"conf_int": True, "conf_method": "boot", "nsim": 0}, "nsim must be a positive"),
        (
            {"effects": "ran_vals", "conf_int": True, "conf_method": "profile"},
            "conf_method must be 'Wald'",
        ),
    ],
)
def test_tidy_rejects_bad_interval_options(dyestuff, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dyestuff.tidy(**kwargs)


def test_tidy_default_is_unchanged(sleep_slopes):
    t = sleep_slopes.tidy()
    assert list(t.columns) == ["effect", "group", "term", "estimate", "std.error", "statistic"]
    w = sleep_slopes.tidy(conf_int=True)
    assert w.loc[w.effect == "ran_pars", ["conf.low", "conf.high"]].isna().all().all()
    fixed = w[w.effect == "fixed"]
    wald = confint(sleep_slopes, "Wald", parm="beta_")
    np.testing.assert_allclose(fixed["conf.low"], wald.iloc[:, 0])
    np.testing.assert_allclose(fixed["conf.high"], wald.iloc[:, 1])
