"""mlmprimer.diagnostics against lme4's influence() and against known properties.

The fixtures in tests/fixtures/lme4_ch10/ are written by scripts/lme4_reference_ch10.R (see its
header) from the rows the Python side fits. The tests check that

- ``influence_groups`` reproduces lme4's fixed effects and variance components without each
  group, ``dfbeta`` and Cook's distance per group, on every fixture model;
- ``augment_groups`` agrees with the model's own conditional modes, conditional SDs and
  residuals, and with counts of the data;
- deleting a group that holds an outlying response moves the estimates most (simulated);
- bad input is refused with a message naming the problem;
- re-running the R script (when R with lme4 is installed; on CI it must be) reproduces the
  committed fixtures.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import r_setup

import mlmprimer
from mlmprimer import datasets
from mlmprimer.diagnostics import augment_groups, influence_groups, var_cov_components

REPO = Path(__file__).resolve().parents[1]
R_SCRIPT = REPO / "scripts" / "lme4_reference_ch10.R"
FIXTURE_DIR = Path(__file__).parent / "fixtures" / "lme4_ch10"
FIXTURE_FILES = (
    "models.csv",
    "var_cov.csv",
    "fixef_deleted.csv",
    "var_cov_deleted.csv",
    "cooks.csv",
)
R_PACKAGES = ("lme4",)

# Our optimum and lme4's differ at about 1e-5 relative on these fits; each deleted-group refit
# adds its own such difference. Cook's distance, a squared difference of two nearby vectors,
# moves more where it is small, hence its absolute tolerance.
REL = 2e-4
ABS_VC = 1e-3
COOKS_REL, COOKS_ABS = 2e-3, 1e-5


def read_fixture(name: str, directory: Path = FIXTURE_DIR) -> pd.DataFrame:
    return pd.read_csv(
        directory / name, keep_default_na=False, na_values=["NA"], dtype={"level": str}
    )


MODELS = read_fixture("models.csv")


@functools.cache
def fit(name: str) -> mlmprimer.LmerModel:
    spec = MODELS.set_index("name").loc[name]
    data = datasets.load(spec["dataset"])
    return mlmprimer.lmer(spec["formula"], data, REML=bool(spec["REML"]))


@functools.cache
def influence(name: str):
    spec = MODELS.set_index("name").loc[name]
    return influence_groups(fit(name), spec["group"])


def wide(name: str, fixture: str) -> pd.DataFrame:
    f = read_fixture(fixture)
    f = f[f["model"] == name]
    return f.pivot(index="level", columns="name", values="value")


def covariance_scale(row: pd.Series, comp: str) -> float:
    """sqrt(v[a] v[b]) for a covariance C[a,b] (its size when the correlation is 1), else 0."""
    prefix, _, rest = comp.rpartition(":")
    if not rest.startswith("C["):
        return 0.0
    a, b = rest[2:-1].split(",")
    pre = f"{prefix}:" if prefix else ""
    return float(np.sqrt(row[f"{pre}v[{a}]"] * row[f"{pre}v[{b}]"]))


@pytest.mark.lme4
@pytest.mark.parametrize("name", MODELS["name"].tolist())
def test_fits_the_rows_lme4_fits(name):
    spec = MODELS.set_index("name").loc[name]
    m = fit(name)
    assert m.nobs == spec["nobs"]
    assert math.isclose(float(m.getME("y").sum()), float(spec["sum_y"]), rel_tol=1e-12)


@pytest.mark.lme4
@pytest.mark.parametrize("name", MODELS["name"].tolist())
def test_variance_components_named_as_lme4(name):
    want = read_fixture("var_cov.csv")
    want = want[want["model"] == name].set_index("name")["value"]
    got = var_cov_components(fit(name))
    assert got.index.tolist() == want.index.tolist()
    for k in want.index:
        assert math.isclose(got[k], want[k], rel_tol=REL, abs_tol=ABS_VC), (k, got[k], want[k])


@pytest.mark.lme4
@pytest.mark.parametrize("name", MODELS["name"].tolist())
def test_refits_without_each_group_match_lme4(name):
    inf = influence(name)
    want_fe = wide(name, "fixef_deleted.csv")
    got_fe = inf.fixef_deleted
    assert sorted(got_fe.index) == sorted(want_fe.index)
    assert sorted(got_fe.columns) == sorted(want_fe.columns)
    for lev in want_fe.index:
        for term in want_fe.columns:
            g, w = got_fe.loc[lev, term], want_fe.loc[lev, term]
            scale = max(abs(w), float(np.sqrt(inf.vcov.loc[term, term])))
            assert abs(g - w) <= REL * scale, (lev, term, g, w)
    want_vc = wide(name, "var_cov_deleted.csv")
    got_vc = inf.var_cov_deleted
    assert sorted(got_vc.columns) == sorted(want_vc.columns)
    for lev in want_vc.index:
        for comp in want_vc.columns:
            g, w = got_vc.loc[lev, comp], want_vc.loc[lev, comp]
            scale = max(abs(w), covariance_scale(want_vc.loc[lev], comp))
            assert abs(g - w) <= 5 * REL * scale + ABS_VC, (lev, comp, g, w)


@pytest.mark.lme4
@pytest.mark.parametrize("name", MODELS["name"].tolist())
def test_cooks_distance_matches_lme4(name):
    want = read_fixture("cooks.csv")
    want = want[want["model"] == name].set_index("level")["cooks_distance"]
    got = influence(name).cooks_distance
    assert sorted(got.index) == sorted(want.index)
    for lev in want.index:
        assert math.isclose(got[lev], want[lev], rel_tol=COOKS_REL, abs_tol=COOKS_ABS), lev
    # the ordering that a reader sees: the most influential groups are the same
    assert set(got.nlargest(3).index) == set(want.nlargest(3).index)


def test_dfbeta_and_frame_follow_from_the_refits():
    inf = influence("sleep_slopes")
    assert np.allclose(inf.dfbeta, inf.fixef_deleted - inf.fixef)
    frame = inf.frame()
    assert frame.index.name == "Subject"
    assert frame["cooks_distance"].is_monotonic_decreasing
    assert {"dfbeta_Days", "dvc_sigma^2"} <= set(frame.columns)


def test_augment_groups_agrees_with_the_model():
    m = fit("sleep_slopes")
    a = augment_groups(m)
    assert len(a) == 2 * 18
    assert a.columns.tolist() == [
        "group", "level", "term", ".mode", ".condsd", ".z", ".n", ".resid_mean", ".resid_sd",
    ]  # fmt: skip
    slopes = a[a["term"] == "Days"].set_index("level")
    assert np.allclose(slopes[".mode"], m.ranef["Subject"]["Days"].to_numpy())
    assert np.allclose(slopes[".condsd"], m.ranef_condsd["Subject"]["Days"].to_numpy())
    assert (slopes[".n"] == 10).all()
    data = m.data.assign(r=m.residuals().to_numpy())
    by = data.groupby("Subject", observed=True)["r"]
    assert np.allclose(slopes[".resid_mean"], by.mean().reindex(slopes.index).to_numpy())
    assert np.allclose(slopes[".resid_sd"], by.std().reindex(slopes.index).to_numpy())
    assert math.isclose(float(slopes[".z"].std(ddof=1)), 1.0)


def test_augment_groups_counts_unbalanced_groups():
    radon = datasets.load("radon")
    m = fit("radon_county")
    a = augment_groups(m, "county").set_index("level")
    counts = radon["county"].value_counts()
    assert (a[".n"] == counts.reindex(a.index)).all()
    assert a.loc[counts[counts == 1].index, ".resid_sd"].isna().all()


def test_a_group_with_an_outlier_is_the_most_influential():
    rng = np.random.default_rng(2026)
    g = np.repeat(np.arange(12), 8)
    x = np.tile(np.arange(8.0), 12)
    y = 5 + 0.5 * x + rng.normal(0, 1, 12)[g] + rng.normal(0, 0.5, g.size)
    y[g == 7] += 3 * x[g == 7]  # group 7's slope is far from the others'
    data = pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"g{k:02d}" for k in g])})
    m = mlmprimer.lmer("y ~ x + (1 | g)", data)
    inf = influence_groups(m, "g")
    assert inf.cooks_distance.idxmax() == "g07"
    assert inf.dfbeta.loc["g07", "x"] < 0  # without it the mean slope falls
    assert inf.dfbeta["x"].abs().idxmax() == "g07"


def test_bad_input_is_refused_with_a_message():
    m = fit("sleep_slopes")
    with pytest.raises(ValueError, match="not a grouping factor.*Subject"):
        influence_groups(m, "Days")
    with pytest.raises(ValueError, match="not a grouping factor"):
        augment_groups(m, "subject")
    with pytest.raises(ValueError, match="name of a grouping factor"):
        influence_groups(m, 3)
    with pytest.raises(ValueError, match="fit from mlmprimer.lmer"):
        augment_groups(m.data)
    two = datasets.load("dyestuff")
    two = two[two["Batch"].isin(two["Batch"].cat.categories[:2])].copy()
    two["Batch"] = two["Batch"].cat.remove_unused_categories()
    with pytest.warns(mlmprimer.LmerWarning):
        small = mlmprimer.lmer("Yield ~ 1 + (1 | Batch)", two)
    with pytest.raises(ValueError, match="'Batch' has 2 levels"):
        influence_groups(small, "Batch")


@pytest.mark.lme4
def test_rerun_of_the_r_script_reproduces_the_fixtures(tmp_path):
    from test_ddf import rerun_same

    out = r_setup.run_reference_script(R_SCRIPT, R_PACKAGES, tmp_path)
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(FIXTURE_FILES)
    for name in FIXTURE_FILES:
        rerun_same(read_fixture(name, out), read_fixture(name), name)
