"""The checks of chapter 14, MRP: right answers pass, the typical slips of the weighting are named.

The generic properties of every check are tested in ``test_check.py``. Here the right answers are
computed again by hand from the exercise's census and poll (groupby and weighted sums, not the
library's ``poststratify``), and each slip the checks name is produced the way a student would
make it: an unweighted mean of the cells, weights from the poll instead of the census, log-odds
instead of probabilities, the state's own share instead of the model's estimate. The checks that
need a glmer fit are skipped where ``mlmprimer.glmer`` is not available.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

import mlmprimer
from mlmprimer import check, mrp
from mlmprimer.check.ch14 import EX14

STATE = EX14["state"]
# the polls have few age and education levels and small states whose answers are all alike:
# glmer warns about both, as expected here
pytestmark = pytest.mark.filterwarnings("ignore::mlmprimer.glmermodel.GlmerWarning")
needs_glmer = pytest.mark.skipif(
    not hasattr(mlmprimer, "glmer"), reason="mlmprimer.glmer not available"
)


@pytest.fixture(scope="module")
def data():
    census = mrp.census(**EX14["census"])
    return census, mrp.poll(census, **EX14["poll"])


def by_hand_truth(census, state):
    cells = census[census["state"] == state]
    return float((cells["N"] * cells["p"]).sum() / cells["N"].sum())


def parts(result):
    return {name: message for name, _, message in result.parts}


def test_the_exercise_data_differ_from_the_chapters(data):
    census, poll = data
    assert EX14["census"] != {"rng": 2026} and len(poll) != 1500
    assert census["state"].nunique() == 40
    # the state asked about is a small one, with respondents
    n = int((poll["state"] == STATE).sum())
    assert 0 < n <= poll.groupby("state", observed=False).size().median()


def test_ex14_1_right_answers_pass(data):
    census, poll = data
    rows = poll[poll["state"] == STATE]
    raw, complete = rows["y"].mean(), poll["y"].mean()
    truth = by_hand_truth(census, STATE)
    assert check.ex14_1(raw, complete, truth).status == "correct"
    # shares written as percentages are accepted
    assert check.ex14_1(100 * raw, 100 * complete, 100 * truth).status == "correct"


def test_ex14_1_slips_are_named(data):
    census, poll = data
    rows = poll[poll["state"] == STATE]
    raw, complete = rows["y"].mean(), poll["y"].mean()
    truth = by_hand_truth(census, STATE)
    unweighted = census.loc[census["state"] == STATE, "p"].mean()
    r = check.ex14_1(raw, complete, unweighted)
    assert r.status == "partial" and "unweighted mean" in parts(r)["truth_14"]
    r = check.ex14_1(rows["y"].sum(), complete, truth)
    assert "number of yes answers" in parts(r)["raw_14"]
    national = float((census["N"] * census["p"]).sum() / census["N"].sum())
    r = check.ex14_1(raw, national, truth)
    assert "true national value" in parts(r)["complete_14"]
    r = check.ex14_1(truth, complete, truth)
    assert "true value" in parts(r)["raw_14"]


def test_ex14_1_far_off_and_unanswered(data):
    assert check.ex14_1(0.99, 0.01, 0.99).status == "incorrect"
    assert check.ex14_1(..., ..., ...).status == "unanswered"


@pytest.fixture(scope="module")
def fitted(data):
    census, poll = data
    m = mlmprimer.glmer(EX14["formula"], poll, family="binomial")
    pi = np.asarray(m.predict(census, type="response", allow_new_levels=True))
    eta = np.asarray(m.predict(census, type="link", allow_new_levels=True))
    return m, pi, eta


@needs_glmer
def test_ex14_2_right_answer_and_weighting_slips(data, fitted):
    census, poll = data
    m, pi, eta = fitted
    mine = (census["state"] == STATE).to_numpy()
    n_c = census["N"].to_numpy(float)
    right = float(np.sum(n_c[mine] * pi[mine]) / np.sum(n_c[mine]))
    assert check.ex14_2(right).status == "correct"
    assert check.ex14_2(100 * right).status == "correct"
    # the MRP estimate lies between the state's own share and the model's expectation
    assert 0 < right < 1
    unweighted = float(pi[mine].mean())
    assert "unweighted mean" in parts(check.ex14_2(unweighted))["mrp_14"]
    fitted_rows = m.predict(poll[poll["state"] == STATE], type="response", allow_new_levels=True)
    sample_weighted = float(np.mean(fitted_rows))  # each respondent's cell counted once per person
    assert "sample weights" in parts(check.ex14_2(sample_weighted))["mrp_14"]
    logodds = float(np.sum(n_c[mine] * eta[mine]) / np.sum(n_c[mine]))
    assert "log-odds" in parts(check.ex14_2(logodds))["mrp_14"]
    raw = poll.loc[poll["state"] == STATE, "y"].mean()
    assert "no pooling" in parts(check.ex14_2(raw))["mrp_14"]
    assert check.ex14_2(0.999).status == "incorrect"
    # averaging log-odds and transforming back is not the same number in general
    assert abs(expit(logodds) - right) > 0


@needs_glmer
def test_ex14_3_right_answers_and_slips(data, fitted):
    census, poll = data
    m, pi, _ = fitted
    n_c = census["N"].to_numpy(float)
    national = float(np.sum(n_c * pi) / n_c.sum())
    frame = census.assign(wpi=n_c * pi)
    sums = frame.groupby("state", observed=True)[["wpi", "N"]].sum()
    est = sums["wpi"] / sums["N"]
    truth = census.assign(wp=census["N"] * census["p"]).groupby("state", observed=True)
    truth = truth["wp"].sum() / truth["N"].sum()
    rmse = float(np.sqrt(np.mean((est - truth) ** 2)))
    assert check.ex14_3(national, rmse).status == "correct"
    assert check.ex14_3(national, 100 * rmse).status == "correct"
    r = check.ex14_3(float(est.mean()), rmse**2)
    assert "unweighted mean of the state estimates" in parts(r)["national_14"]
    assert "mean squared error" in parts(r)["rmse_mrp_14"]
    r = check.ex14_3(poll["y"].mean(), float(np.mean(np.abs(est - truth))))
    assert "raw share" in parts(r)["national_14"]
    assert "mean absolute error" in parts(r)["rmse_mrp_14"]


def test_ex14_4_is_recorded_with_enough_words():
    text = " ".join(["small states are pulled towards the regression line of z"] * 5)
    assert check.ex14_4("small states", text).status == "recorded"
    assert check.ex14_4("small", text).status == "recorded"
    assert check.ex14_4("small states", "too short").status == "partial"
    assert check.ex14_4("perhaps", text).status != "recorded"
