"""The MRP module: the simulated census and poll, and the poststratification.

The properties checked are those the chapter relies on: poststratifying the true cell
probabilities gives the true state values (computed here again, cell by cell); a constant
estimate (complete pooling) stays that constant in every state and nationally; the national value
is the census-weighted mean of the state values; the poll's make-up follows its response rates;
and bad input is refused with a message naming the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import r_setup
from scipy.special import expit

import mlmprimer
from mlmprimer import mrp

# the polls have few age and education levels and small states whose answers are all alike:
# glmer warns about both, as expected here
pytestmark = pytest.mark.filterwarnings("ignore::mlmprimer.glmermodel.GlmerWarning")
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "lme4_ch14"
R_SCRIPT = ROOT / "scripts" / "lme4_reference_ch14.R"
#: the chapter's census and poll, as the R script reads them
CHAPTER = {"census": {"rng": 2026}, "poll": {"n": 1500, "rng": 6}}
FORMULA = "y ~ z + (1 | state) + (1 | age) + (1 | educ)"


@pytest.fixture(scope="module")
def population():
    return mrp.census(n_states=30, rng=11)


@pytest.fixture(scope="module")
def sample(population):
    return mrp.poll(population, n=1000, rng=12)


def test_census_layout_and_truth(population):
    assert len(population) == 30 * 16
    cells = population.groupby(["state", "age", "educ"], observed=True).size()
    assert (cells == 1).all() and len(cells) == 30 * 16
    t = population.attrs["truth"]
    u = population["state"].map(population.attrs["state_effects"]).astype(float)
    a = population["age"].map({g: t[f"age {g}"] for g in mrp.AGE_GROUPS}).astype(float)
    e = population["educ"].map({g: t[f"educ {g}"] for g in mrp.EDUCATION}).astype(float)
    eta = t["beta0"] + t["beta_z"] * population["z"] + u + a + e
    np.testing.assert_allclose(population["p"], expit(eta), rtol=1e-12)
    # z is a state-level predictor: constant within a state
    assert (population.groupby("state", observed=True)["z"].nunique() == 1).all()
    assert (population["N"] >= 0).all()


def test_census_is_seeded_and_uses_a_generator():
    a = mrp.census(n_states=4, rng=3)
    b = mrp.census(n_states=4, rng=3)
    pd.testing.assert_frame_equal(a, b)
    gen = np.random.default_rng(3)
    c = mrp.census(n_states=4, rng=gen)
    d = mrp.census(n_states=4, rng=gen)  # the generator was advanced
    pd.testing.assert_frame_equal(a, c)
    assert not np.allclose(c["p"], d["p"])


def test_states_differ_in_size(population):
    sizes = population.groupby("state", observed=True)["N"].sum()
    assert sizes.max() / sizes.min() > 10


def test_poststratifying_the_truth_recovers_the_state_values(population):
    got = mrp.poststratify("p", population, by="state")
    for state, cells in population.groupby("state", observed=True):
        expected = (cells["N"] * cells["p"]).sum() / cells["N"].sum()
        assert got.loc[state, "estimate"] == pytest.approx(expected, rel=1e-13)
        assert got.loc[state, "N"] == cells["N"].sum()
    # an unweighted mean of the cells is something else when cells differ in size
    unweighted = population.groupby("state", observed=True)["p"].mean()
    assert np.max(np.abs(unweighted - got["estimate"])) > 1e-3


def test_the_national_value_is_the_weighted_mean_of_the_states(population):
    states = mrp.poststratify("p", population, by="state")
    national = mrp.poststratify("p", population, by=None)
    weighted = (states["estimate"] * states["N"]).sum() / states["N"].sum()
    assert national["estimate"].iloc[0] == pytest.approx(weighted, rel=1e-13)
    assert national["N"].iloc[0] == population["N"].sum()


def test_complete_pooling_stays_the_poll_mean(population, sample):
    means = mrp.poll_means(sample)
    complete = float(sample["y"].mean())
    assert np.allclose(means["complete"], complete)
    const = np.full(len(population), complete)
    by_state = mrp.poststratify(const, population)
    national = mrp.poststratify(const, population, by=None)
    np.testing.assert_allclose(by_state["estimate"], complete, rtol=1e-13)
    assert national["estimate"].iloc[0] == pytest.approx(complete, rel=1e-13)


def test_poll_means_no_pooling_are_state_shares(sample):
    means = mrp.poll_means(sample)
    assert len(means) == 30  # every state listed, with or without respondents
    assert means["n"].sum() == len(sample)
    for state, rows in sample.groupby("state", observed=True):
        assert means.loc[state, "no_pooling"] == pytest.approx(rows["y"].mean())
    assert means.loc[means["n"] == 0, "no_pooling"].isna().all()


def test_poll_size_columns_and_uneven_states(population, sample):
    assert len(sample) == 1000
    assert list(sample.columns) == ["state", "age", "educ", "z", "y"]
    assert set(sample["y"].unique()) <= {0, 1}
    n = sample.groupby("state", observed=False).size()
    assert n.max() >= 8 * max(n.min(), 1)
    # the state-level predictor travels with the state
    z = population.groupby("state", observed=True)["z"].first()
    np.testing.assert_allclose(sample["z"], sample["state"].map(z).astype(float))


def test_poll_under_represents_the_groups_that_answer_less(population):
    big = mrp.poll(population, n=100_000, rng=5)
    census_share = population.groupby("age", observed=True)["N"].sum() / population["N"].sum()
    poll_share = big["age"].value_counts(normalize=True).reindex(census_share.index)
    assert poll_share["18-29"] < census_share["18-29"]
    assert poll_share["65+"] > census_share["65+"]
    # with equal response rates the shares match the census
    fair = mrp.poll(
        population,
        n=100_000,
        rng=5,
        response_age=(0, 0, 0, 0),
        response_educ=(0, 0, 0, 0),
        state_sd=0.0,
    )
    fair_share = fair["age"].value_counts(normalize=True).reindex(census_share.index)
    np.testing.assert_allclose(fair_share, census_share, atol=0.01)


def test_cell_answers_follow_the_true_probabilities(population):
    big = mrp.poll(population, n=200_000, rng=6)
    cell = big.groupby(["state", "age", "educ"], observed=True)["y"].agg(["mean", "size"])
    truth = population.set_index(["state", "age", "educ"])["p"].reindex(cell.index)
    z = (cell["mean"] - truth) / np.sqrt(truth * (1 - truth) / cell["size"])
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2


class _Model:
    """A stand-in for a fitted model: records how predict was called."""

    def __init__(self, values):
        self.values = values
        self.calls = []

    def predict(self, newdata, type="link", allow_new_levels=False):  # noqa: A002
        self.calls.append((len(newdata), type, allow_new_levels))
        return self.values


class _LinearModel:
    def predict(self, newdata, re=True):
        return np.full(len(newdata), 0.25)


def test_a_model_is_asked_for_probabilities(population):
    model = _Model(population["p"].to_numpy())
    got = mrp.poststratify(model, population)
    assert model.calls == [(len(population), "response", True)]
    pd.testing.assert_frame_equal(got, mrp.poststratify("p", population))
    mrp.poststratify(model, population, allow_new_levels=False)
    assert model.calls[-1][2] is False
    # a model without type= (an lmer fit) is called without it
    lin = mrp.poststratify(_LinearModel(), population)
    np.testing.assert_allclose(lin["estimate"], 0.25)


def test_poststratify_by_two_columns(population):
    got = mrp.poststratify("p", population, by=["state", "age"])
    assert got.index.names == ["state", "age"] and len(got) == 30 * 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "region"}, "'region' is not a column"),
        ({"weight": "count"}, "'count' is not a column"),
        ({"model": "q"}, "neither a fitted model nor a census column"),
        ({"model": np.ones(3)}, "one number per census row"),
        ({"model": np.full(16, np.nan)}, "missing or infinite"),
    ],
)
def test_poststratify_refuses_bad_input(kwargs, message):
    pop = mrp.census(n_states=1, rng=1)
    args = {"model": "p", "census": pop, **kwargs}
    with pytest.raises(ValueError, match=message):
        mrp.poststratify(**args)


def test_poststratify_refuses_bad_weights():
    pop = mrp.census(n_states=2, rng=1)
    neg = pop.assign(N=-pop["N"])
    with pytest.raises(ValueError, match="negative counts"):
        mrp.poststratify("p", neg)
    empty = pop.assign(N=np.where(pop["state"] == "S2", 0, pop["N"]))
    with pytest.raises(ValueError, match="no census weight in group"):
        mrp.poststratify("p", empty)


def test_simulators_refuse_bad_input():
    with pytest.raises(TypeError, match="rng"):
        mrp.census(rng=None)
    with pytest.raises(ValueError, match="n_states"):
        mrp.census(n_states=0)
    with pytest.raises(ValueError, match="age_effects"):
        mrp.census(age_effects=(0, 1))
    with pytest.raises(ValueError, match="lacks the column"):
        mrp.poll(pd.DataFrame({"state": ["A"]}))
    with pytest.raises(ValueError, match="n must be"):
        mrp.poll(mrp.census(n_states=2), n=0)


def chapter_data():
    pop = mrp.census(**CHAPTER["census"])
    return pop, mrp.poll(pop, **CHAPTER["poll"])


def test_the_r_scripts_inputs_are_the_chapters_poll_and_census():
    pop, sample = chapter_data()
    for name, frame in (("census", pop), ("poll", sample)):
        stored = pd.read_csv(FIXTURES / f"{name}.csv")
        assert list(stored.columns) == list(frame.columns), name
        for col in frame.columns:
            if pd.api.types.is_numeric_dtype(frame[col]):
                np.testing.assert_allclose(stored[col], frame[col], rtol=1e-13, err_msg=name)
            else:
                assert stored[col].astype(str).tolist() == frame[col].astype(str).tolist()


def test_rerun_of_the_r_script_reproduces_the_fixtures(tmp_path):
    out = r_setup.run_reference_script(
        R_SCRIPT, ("lme4",), tmp_path, course_data=False, timeout=300
    )
    for name in ("glmer.csv", "states.csv"):
        new, old = pd.read_csv(out / name), pd.read_csv(FIXTURES / name)
        assert new.drop(columns=["value", "estimate"], errors="ignore").equals(
            old.drop(columns=["value", "estimate"], errors="ignore")
        )
        col = "value" if "value" in old.columns else "estimate"
        # the optimiser stops within its tolerance: the last digits vary between runs
        np.testing.assert_allclose(new[col], old[col], rtol=1e-4, err_msg=name)


needs_glmer = pytest.mark.skipif(
    not hasattr(mlmprimer, "glmer"), reason="mlmprimer.glmer not available"
)


@needs_glmer
def test_glmer_and_its_poststratification_agree_with_lme4():
    pop, sample = chapter_data()
    m = mlmprimer.glmer(FORMULA, sample, family="binomial")
    ref = pd.read_csv(FIXTURES / "glmer.csv").fillna({"term": ""})
    fixef = ref[ref["what"] == "fixef"].set_index("term")["value"]
    se = ref[ref["what"] == "se"].set_index("term")["value"]
    sd = ref[ref["what"] == "sd"].set_index("term")["value"]
    loglik = float(ref.loc[ref["what"] == "logLik", "value"].iloc[0])
    assert m.loglik == pytest.approx(loglik, abs=1e-3)
    np.testing.assert_allclose(m.fixef[fixef.index], fixef, rtol=2e-3)
    np.testing.assert_allclose(np.sqrt(np.diag(m.vcov.loc[se.index, se.index])), se, rtol=2e-3)
    ours = m.varcorr.set_index("grp")["sdcor"]
    np.testing.assert_allclose(ours[sd.index], sd, rtol=2e-3, atol=1e-4)
    states = pd.read_csv(FIXTURES / "states.csv").set_index("state")["estimate"]
    got = mrp.poststratify(m, pop)["estimate"]
    np.testing.assert_allclose(got[states.index], states, atol=1e-3)


@needs_glmer
def test_mrp_beats_no_pooling_on_the_simulated_poll():
    pop = mrp.census(rng=2026)
    sample = mrp.poll(pop, n=1500, rng=1)
    m = mlmprimer.glmer("y ~ z + (1 | state) + (1 | age) + (1 | educ)", sample)
    truth = mrp.poststratify("p", pop)["estimate"]
    est = mrp.poststratify(m, pop)["estimate"]
    raw = mrp.poll_means(sample)["no_pooling"]
    rmse = lambda e: float(np.sqrt(np.nanmean((e - truth) ** 2)))  # noqa: E731
    assert rmse(est) < 0.7 * rmse(raw)
