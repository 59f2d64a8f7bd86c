"""Complete, no and partial pooling side by side."""

import numpy as np
import pandas as pd
import pytest

from mlmprimer.datasets import load
from mlmprimer.model import lmer
from mlmprimer.pooling import pooling


@pytest.fixture(scope="module")
def sleep():
    return load("sleepstudy")


@pytest.fixture(scope="module")
def unbalanced():
    """Groups of 2 to 30 observations with a between-group SD of 1 and a residual SD of 2."""
    rng = np.random.default_rng(12)
    sizes = [2, 3, 5, 8, 12, 20, 30, 4, 6, 10]
    rows = []
    for j, n in enumerate(sizes):
        u = rng.normal(0, 1.0)
        x = rng.uniform(0, 10, n)
        y = 3 + u + 0.5 * x + rng.normal(0, 2.0, n)
        rows.append(pd.DataFrame({"score": y, "hours": x, "team": f"t{j}"}))
    return pd.concat(rows, ignore_index=True)


def test_intercept_only_columns_and_estimates(sleep):
    tab = pooling(sleep, y="Reaction", group="Subject")
    assert list(tab.columns) == ["n", "complete", "no_pooling", "partial", "weight"]
    # index: R's level order of the factor
    assert list(tab.index) == list(sleep["Subject"].cat.categories)
    means = sleep.groupby("Subject", observed=True)["Reaction"].agg(["mean", "size"])
    np.testing.assert_allclose(tab["no_pooling"], means["mean"].reindex(tab.index))
    assert (tab["n"] == means["size"].reindex(tab.index)).all()
    np.testing.assert_allclose(tab["complete"], sleep["Reaction"].mean())
    model = lmer("Reaction ~ 1 + (1 | Subject)", sleep)
    coefs = model.coef()["Subject"]["(Intercept)"].reindex(tab.index)
    np.testing.assert_allclose(tab["partial"], coefs, rtol=1e-8)


def test_partial_is_weighted_average(unbalanced):
    tab = pooling(unbalanced, y="score", group="team")
    model = lmer("score ~ 1 + (1 | team)", unbalanced)
    mu = float(model.fixef["(Intercept)"])
    w = tab["weight"]
    # the conditional mode of a random intercept: w * (own mean) + (1 - w) * fixed intercept
    np.testing.assert_allclose(tab["partial"], w * tab["no_pooling"] + (1 - w) * mu, rtol=1e-6)
    assert ((w > 0) & (w < 1)).all()
    # larger groups keep more of their own mean
    ordered = tab.sort_values("n")
    assert ordered["weight"].is_monotonic_increasing
    tau2 = tab.attrs["tau2"]["(Intercept)"]
    np.testing.assert_allclose(w, tau2 / (tau2 + tab.attrs["sigma2"] / tab["n"]))


def test_weight_column_is_the_weight_of_the_own_mean_not_the_shrinkage(unbalanced):
    # the column is lambda_j, the share of the own mean that a group keeps; the shrinkage, the
    # share of the way to the fixed intercept that its estimate is pulled, is 1 - lambda_j
    tab = pooling(unbalanced, y="score", group="team")
    mu = float(lmer("score ~ 1 + (1 | team)", unbalanced).fixef["(Intercept)"])
    kept = (tab["partial"] - mu) / (tab["no_pooling"] - mu)
    pulled = (tab["no_pooling"] - tab["partial"]) / (tab["no_pooling"] - mu)
    np.testing.assert_allclose(tab["weight"], kept, rtol=1e-6)
    np.testing.assert_allclose(1 - tab["weight"], pulled, rtol=1e-6)
    # the largest group keeps most of its own mean, the smallest keeps least
    assert tab.loc[tab["n"].idxmax(), "weight"] > 0.5 > tab.loc[tab["n"].idxmin(), "weight"]
    # no column may carry the ambiguous name
    assert not [c for c in tab.columns if c.startswith("shrinkage")]
    slopes = pooling(unbalanced, y="score", group="team", x="hours")
    assert not [c for c in slopes.columns if c.startswith("shrinkage")]


def test_with_slope_matches_separate_regressions(sleep):
    tab = pooling(sleep, y="Reaction", group="Subject", x="Days")
    assert {
        "complete_intercept",
        "complete_slope",
        "no_pooling_intercept",
        "no_pooling_slope",
        "partial_intercept",
        "partial_slope",
        "weight_intercept",
        "weight_slope",
    } <= set(tab.columns)
    slope, intercept = np.polyfit(sleep["Days"], sleep["Reaction"], 1)
    assert tab["complete_slope"].iloc[0] == pytest.approx(slope)
    assert tab["complete_intercept"].iloc[0] == pytest.approx(intercept)
    for lev in ["308", "335"]:
        g = sleep[sleep["Subject"] == lev]
        b1, b0 = np.polyfit(g["Days"], g["Reaction"], 1)
        assert tab.loc[lev, "no_pooling_slope"] == pytest.approx(b1)
        assert tab.loc[lev, "no_pooling_intercept"] == pytest.approx(b0)
    model = lmer("Reaction ~ 1 + Days + (1 + Days | Subject)", sleep)
    coefs = model.coef()["Subject"].reindex(tab.index)
    np.testing.assert_allclose(tab["partial_intercept"], coefs["(Intercept)"], rtol=1e-8)
    np.testing.assert_allclose(tab["partial_slope"], coefs["Days"], rtol=1e-8)


def test_slope_weights_are_the_diagonal_of_the_blup_weights(unbalanced):
    tab = pooling(unbalanced, y="score", group="team", x="hours")
    model = lmer("score ~ 1 + hours + (1 + hours | team)", unbalanced)
    vc = model.varcorr
    var = vc[vc["var2"].isna() & (vc["grp"] == "team")].set_index("var1")["vcov"]
    cov = float(vc.loc[vc["var2"].notna(), "vcov"].iloc[0])
    T = np.array([[var["(Intercept)"], cov], [cov, var["hours"]]])
    s2 = model.sigma**2
    beta = model.fixef[["(Intercept)", "hours"]].to_numpy()
    for lev, g in unbalanced.groupby("team"):
        X = np.column_stack([np.ones(len(g)), g["hours"]])
        XtX = X.T @ X
        own = np.linalg.solve(XtX, X.T @ g["score"].to_numpy())
        lam = T @ np.linalg.pinv(T + s2 * np.linalg.inv(XtX))
        # the BLUP of the group's coefficients is beta + Lambda (own - beta) ...
        partial = tab.loc[lev, ["partial_intercept", "partial_slope"]].to_numpy(dtype=float)
        np.testing.assert_allclose(partial, beta + lam @ (own - beta), rtol=1e-4, atol=1e-6)
        # ... and the reported weights are Lambda's diagonal
        np.testing.assert_allclose(
            tab.loc[lev, ["weight_intercept", "weight_slope"]].to_numpy(dtype=float),
            np.diag(lam),
            rtol=1e-4,
            atol=1e-8,
        )


def test_missing_values_are_dropped(sleep):
    holes = sleep.copy()
    holes.loc[[0, 1, 2], "Reaction"] = np.nan
    tab = pooling(holes, y="Reaction", group="Subject")
    assert tab["n"].sum() == len(sleep) - 3
    assert tab.loc["308", "n"] == 7


def test_string_groups_are_sorted(unbalanced):
    tab = pooling(unbalanced, y="score", group="team")
    assert list(tab.index) == sorted(unbalanced["team"].unique())
    assert tab.index.name == "team"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": "Reactoin", "group": "Subject"}, "Reactoin"),
        ({"y": "Reaction", "group": "subject"}, "subject"),
        ({"y": "Reaction", "group": "Subject", "x": "day"}, "day"),
        ({"y": "Subject", "group": "Days"}, "numeric"),
    ],
)
def test_bad_columns_are_named(sleep, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pooling(sleep, **kwargs)


def test_other_bad_input(sleep):
    with pytest.raises(ValueError, match="DataFrame"):
        pooling(sleep.to_dict(), y="Reaction", group="Subject")
    one = sleep[sleep["Subject"] == "308"]
    with pytest.raises(ValueError, match="two levels"):
        pooling(one, y="Reaction", group="Subject")
    flat = sleep.assign(zero=0.0)
    with pytest.raises(ValueError, match="does not vary"):
        pooling(flat, y="Reaction", group="Subject", x="zero")


def test_any_column_names_work(sleep):
    odd = sleep.rename(columns={"Reaction": "reaction time", "Subject": "class", "Days": "day #"})
    tab = pooling(odd, y="reaction time", group="class", x="day #")
    plain = pooling(sleep, y="Reaction", group="Subject", x="Days")
    np.testing.assert_allclose(tab.to_numpy(dtype=float), plain.to_numpy(dtype=float))
    assert tab.index.name == "class"
    assert set(tab.attrs["tau2"]) == {"(Intercept)", "day #"}
