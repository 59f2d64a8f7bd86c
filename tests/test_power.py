"""Tests of mlmprimer.power: known truth, the analytic answer, seeding and bad input.

The truth is known because the data are simulated: under the null the rejection rate must be
alpha within Monte Carlo error, power must rise with the number of groups, and for many groups
the simulated power and standard errors must agree with the normal-theory answer of a balanced
design (the design effect for the school-level predictor).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlmprimer import simulate
from mlmprimer.power import (
    balanced_se,
    power,
    replicates,
    settings_frame,
    summarise,
    wald_power,
)

FORMULA = "y ~ x + w + (1 | school)"
TERMS = {"x": "beta_x", "w": "beta_w", "sd__(Intercept)": "tau"}
NSIM = 150


@pytest.fixture(scope="module")
def by_groups():
    """Power for 5, 20 and 60 schools of 10 students (450 fits, about 30 s)."""
    grid = {"n_schools": [5, 20, 60], "n_students": [10]}
    return power(simulate.schools_two_levels, FORMULA, grid, TERMS, nsim=NSIM, seed=12)


def row(tab, n_schools, term):
    out = tab[(tab["n_schools"] == n_schools) & (tab["term"] == term)]
    assert len(out) == 1
    return out.iloc[0]


def within_mc(value, target, mcse, slack=0.0):
    """``value`` lies within 3.5 Monte Carlo SEs (plus an approximation allowance) of target."""
    return abs(value - target) <= 3.5 * mcse + slack


# ------------------------------------------------------------------------ known truth


def test_rejection_rate_under_the_null_is_alpha():
    tab = power(
        simulate.schools_two_levels,
        FORMULA,
        {"n_schools": [40], "n_students": [8], "beta_x": [0.0], "beta_w": [0.0]},
        {"x": "beta_x", "w": "beta_w"},
        nsim=200,
        seed=3,
    )
    for term in ("x", "w"):
        r = tab[tab["term"] == term].iloc[0]
        mcse = math.sqrt(0.05 * 0.95 / r["nsim"])
        assert within_mc(r["rejection"], 0.05, mcse), (term, r["rejection"])
        assert within_mc(r["coverage"], 0.95, mcse), (term, r["coverage"])
        assert within_mc(r["bias"], 0.0, r["bias_mcse"])


def test_power_rises_with_the_number_of_groups(by_groups):
    for term in ("x", "w"):
        rates = [row(by_groups, j, term)["rejection"] for j in (5, 20, 60)]
        assert rates[0] < rates[1] < rates[2], (term, rates)
    # Few groups: more singular fits, a less precise tau.
    assert row(by_groups, 5, "w")["singular"] > row(by_groups, 60, "w")["singular"]
    sd5 = row(by_groups, 5, "sd__(Intercept)")["empirical_se"]
    sd60 = row(by_groups, 60, "sd__(Intercept)")["empirical_se"]
    assert sd5 > 2 * sd60


@pytest.mark.parametrize(("term", "level", "beta"), [("x", "unit", 1.0), ("w", "group", 2.0)])
def test_many_groups_agree_with_the_analytic_power(by_groups, term, level, beta):
    r = row(by_groups, 60, term)
    se = balanced_se(60, 10, tau=5.0, sigma=10.0, level=level)
    # The empirical SE of the estimates estimates se to within about 1 / sqrt(2 nsim) relative.
    assert r["empirical_se"] == pytest.approx(se, rel=3.5 / math.sqrt(2 * NSIM) + 0.03)
    assert r["mean_se"] == pytest.approx(se, rel=0.05)
    assert within_mc(r["rejection"], wald_power(beta, se), r["rejection_mcse"], slack=0.02)
    assert within_mc(r["bias"], 0.0, r["bias_mcse"])
    assert within_mc(r["coverage"], 0.95, math.sqrt(0.05 * 0.95 / NSIM))


def test_design_effect_is_the_ratio_of_variances(by_groups):
    # Same 600 students at random versus 60 schools of 10: the school-level coefficient's
    # variance grows by the design effect 1 + 9 * 0.2 = 2.8, the student-level one's does not.
    srs = (5.0**2 + 10.0**2) / 600
    deff = balanced_se(60, 10, tau=5.0, sigma=10.0, level="group") ** 2 / srs
    assert deff == pytest.approx(1 + 9 * 25 / 125)
    ratio_x = balanced_se(60, 10, tau=5.0, sigma=10.0, level="unit") ** 2 / (100 / 600)
    assert 1 < ratio_x < 1.12


def test_tau_is_summarised_without_a_test(by_groups):
    r = row(by_groups, 60, "sd__(Intercept)")
    assert np.isnan(r["rejection"]) and np.isnan(r["coverage"]) and np.isnan(r["mean_se"])
    assert r["truth"] == 5.0
    assert within_mc(r["mean_estimate"], 5.0, r["bias_mcse"], slack=0.25)


def test_replicates_are_kept_and_counted(by_groups):
    reps = by_groups.attrs["replicates"]
    assert len(reps) == 3 * NSIM * len(TERMS)
    assert by_groups["nsim"].eq(NSIM).all()
    assert set(reps["term"]) == set(TERMS)
    assert (reps.loc[reps["term"] == "w", "df"] == np.inf).all()


def test_satterthwaite_df_for_a_school_level_predictor():
    reps = replicates(
        simulate.schools_two_levels,
        FORMULA,
        {"n_schools": [6], "n_students": [4]},
        {"w": "beta_w"},
        nsim=3,
        seed=2,
        ddf="Satterthwaite",
    )
    # Six schools: a few df for w where the fit is not singular; a singular fit has no
    # school variance left and gets the df of ordinary regression, 24 rows - 3 coefficients.
    fine = ~reps["singular"]
    assert fine.any() and (reps.loc[fine, "df"] < 10).all()
    np.testing.assert_allclose(reps.loc[~fine, "df"], 21, rtol=1e-4)
    assert reps["p_value"].between(0, 1).all()


def test_failed_fits_are_counted_and_refused_when_all_fail():
    def constant(n_schools, rng):
        zero = {"beta_x": 0.0, "beta_w": 0.0, "tau": 0.0, "sigma": 0.0}
        return simulate.schools_two_levels(n_schools=n_schools, rng=rng, **zero)

    reps = replicates(constant, "y ~ 1 + (1 | school)", {"n_schools": [4]}, {"x": "beta_x"}, 2)
    assert reps.attrs["n_failed"] == 2
    with pytest.raises(ValueError, match="every fit failed"):
        summarise(reps)


# ------------------------------------------------------------------------ seeding


def small(**kwargs):
    args = {
        "simulate_fn": simulate.school_level_predictor,
        "formula": "y ~ w + (1 | school)",
        "settings": {"n_schools": [8, 12], "n_students": [4]},
        "terms": {"w": "beta_w"},
        "nsim": 3,
        "seed": 5,
    }
    return replicates(**(args | kwargs))


def test_same_seed_same_table():
    pd.testing.assert_frame_equal(small(), small())
    assert not np.allclose(small()["estimate"], small(seed=6)["estimate"])


def test_a_setting_does_not_depend_on_the_settings_after_it():
    one = small(settings={"n_schools": [8], "n_students": [4]})
    two = small()
    pd.testing.assert_frame_equal(one, two[two["n_schools"] == 8].reset_index(drop=True))


def test_settings_grid_and_frame():
    grid = settings_frame({"a": [1, 2], "b": ["u", "v"], "c": 0.5})
    assert grid.to_dict("list") == {"a": [1, 1, 2, 2], "b": ["u", "v", "u", "v"], "c": [0.5] * 4}
    frame = pd.DataFrame({"n_schools": [5, 50], "n_students": [100, 10]}, index=[7, 9])
    assert settings_frame(frame).index.tolist() == [0, 1]


def test_wald_power_values():
    assert wald_power(0.0, 2.0, alpha=0.1) == pytest.approx(0.1)
    assert wald_power(1.959963984540054, 1.0) == pytest.approx(0.5, abs=1e-4)
    assert wald_power(-3.0, 1.0) == pytest.approx(wald_power(3.0, 1.0))
    np.testing.assert_allclose(wald_power([0.0, 10.0], 1.0), [0.05, 1.0], atol=1e-9)


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nsim": 0}, "nsim must be a positive integer"),
        ({"nsim": 2.5}, "nsim"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"seed": None}, "seed"),
        ({"ddf": "KR"}, "ddf must be"),
        ({"terms": {}}, "terms must map"),
        ({"terms": {"w": "beta"}}, r"attrs\['truth'\] has no \['beta'\]"),
        ({"terms": {"ses": "beta_w"}}, "term 'ses' is not in the fitted model"),
        ({"settings": {"n_schools": []}}, r"settings\['n_schools'\] has no values"),
        ({"settings": {"rng": [1]}}, "must not set 'rng'"),
        ({"settings": pd.DataFrame()}, "at least one setting"),
        ({"settings": {"n_schools": [0]}}, "n_schools must be a positive integer"),
        ({"settings": {"n_groups": [5]}}, "n_groups"),
    ],
)
def test_bad_input_is_named(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        small(**kwargs)


def test_bad_settings_type_and_simulator():
    with pytest.raises(TypeError, match="settings must be a DataFrame or a mapping"):
        small(settings=[5, 10])
    with pytest.raises(TypeError, match="simulate_fn must be a simulator"):
        small(simulate_fn="schools_two_levels")


@pytest.mark.parametrize("alpha", [0, 1, 1.5, "0.05", True])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha must be a number between 0 and 1"):
        power(simulate.reaction_times, "reaction ~ 1 + (1 | subject)", {}, {}, alpha=alpha)


def test_summarise_needs_replicates():
    with pytest.raises(ValueError, match="reps lacks the columns"):
        summarise(pd.DataFrame({"estimate": [1.0]}))


def test_analytic_helpers_refuse_bad_input():
    with pytest.raises(ValueError, match="se must be positive"):
        wald_power(1.0, 0.0)
    with pytest.raises(ValueError, match="level must be 'group' or 'unit'"):
        balanced_se(10, 5, 1.0, 1.0, level="school")
    with pytest.raises(ValueError, match="n_groups and group_size"):
        balanced_se(0, 5, 1.0, 1.0, level="group")
    with pytest.raises(ValueError, match="tau must be a non-negative"):
        balanced_se(10, 5, -1.0, 1.0, level="group")
