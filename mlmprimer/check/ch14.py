"""Checks of chapter 14, multilevel regression and poststratification: ``ex14_1`` ... ``ex14_4``.

The exercises use another poll than the chapter's: :data:`EX14` gives its census and poll (seeds,
sizes), the state asked about and the model. Each check is registered in
:data:`mlmprimer.check.core.QUESTIONS` when this module is imported (:mod:`mlmprimer.check` imports
every chapter).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
import pandas as pd

from mlmprimer.check.core import CheckResult, Verdict, exercise, prediction, questions, words

#: The exercises' census, poll, state and model (the chapter uses other seeds and sizes).
EX14: dict[str, Any] = {
    "census": {"n_states": 40, "rng": 14},
    "poll": {"n": 1000, "rng": 15},
    "state": "S28",
    "formula": "y ~ z + (1 | state) + (1 | age) + (1 | educ)",
}
_WHO_MOVES = {
    "small states": ("small", "the small states", "states with few respondents", "few"),
    "large states": ("large", "big", "the large states", "states with many respondents", "many"),
    "all alike": ("same", "all", "equal", "no difference", "all states alike"),
}


@functools.cache
def _ch14_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    from mlmprimer import mrp

    census = mrp.census(**EX14["census"])
    return census, mrp.poll(census, **EX14["poll"])


@functools.cache
def _ch14_simple() -> dict[str, float]:
    """Exercise 14.1: the state's own share, the poll's share, the truth (and slips)."""
    from mlmprimer import mrp

    census, poll = _ch14_data()
    state = EX14["state"]
    cells = census[census["state"] == state]
    rows = poll[poll["state"] == state]
    return {
        "raw": float(rows["y"].mean()),
        "raw_count": float(rows["y"].sum()),
        "complete": float(poll["y"].mean()),
        "truth": float(mrp.poststratify("p", census).loc[state, "estimate"]),
        "truth_unweighted": float(cells["p"].mean()),
        "national_truth": float(mrp.poststratify("p", census, by=None)["estimate"].iloc[0]),
    }


@functools.cache
def _ch14_mrp() -> dict[str, float]:
    """Exercises 14.2 and 14.3: the MRP estimates, and the slips of the weighting."""
    from mlmprimer import glmer, mrp
    from mlmprimer.glmermodel import GlmerWarning

    census, poll = _ch14_data()
    with warnings.catch_warnings():
        # the few age and education levels, and a small state whose answers are all no, are
        # expected in this poll: the check's own fit does not repeat the warnings
        warnings.simplefilter("ignore", GlmerWarning)
        m = glmer(EX14["formula"], poll, family="binomial")
    state = EX14["state"]
    pi = pd.Series(m.predict(census, type="response", allow_new_levels=True), index=census.index)
    eta = pd.Series(m.predict(census, type="link", allow_new_levels=True), index=census.index)
    fixed = pd.Series(m.predict(census, type="response", re=False), index=census.index)
    mine = census["state"] == state
    n_cells = poll.groupby(["state", "age", "educ"], observed=False).size()
    respondents = n_cells.reindex(
        pd.MultiIndex.from_frame(census[["state", "age", "educ"]])
    ).to_numpy()
    w = census["N"].to_numpy(dtype=float)
    states = mrp.poststratify(pi.to_numpy(), census)["estimate"]
    truth = mrp.poststratify("p", census)["estimate"]
    raw = mrp.poll_means(poll)["no_pooling"]
    err = states - truth

    def weighted(values: pd.Series, weights: np.ndarray, rows: Any = slice(None)) -> float:
        v = values.to_numpy(dtype=float)[rows]
        return float(np.sum(v * weights[rows]) / np.sum(weights[rows]))

    return {
        "mrp": float(states[state]),
        "unweighted": float(pi[mine].mean()),
        "sample_weights": weighted(pi, respondents, mine.to_numpy()),
        "logodds": weighted(eta, w, mine.to_numpy()),
        "fixed_only": weighted(fixed, w, mine.to_numpy()),
        "raw": float(raw[state]),
        "national": float(mrp.poststratify(pi.to_numpy(), census, by=None)["estimate"].iloc[0]),
        "national_states": float(states.mean()),
        "national_cells": float(pi.mean()),
        "national_raw": float(poll["y"].mean()),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mse": float(np.mean(err**2)),
        "mae": float(np.mean(np.abs(err))),
        "rmse_raw": float(np.sqrt(np.nanmean((raw - truth) ** 2))),
    }


_STATE = EX14["state"]


@exercise("ex14_1", f"no pooling, complete pooling and the truth for state {_STATE}", points=3)
def ex14_1(raw_14: Any, complete_14: Any, truth_14: Any) -> CheckResult:
    """Exercise 14.1: the simple estimates of one state, and its true value.

    Parameters
    ----------
    raw_14 : float
        The share of yes among the state's respondents (no pooling).
    complete_14 : float
        The share of yes among all respondents of the poll (complete pooling).
    truth_14 : float
        The state's true share of yes: its cells' true probabilities weighted by the census counts.

    Examples
    --------
    >>> ex14_1(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex14_1")
    t = _ch14_simple
    v.number(
        "raw_14",
        raw_14,
        lambda: t()["raw"],
        what=f"the share of yes among the respondents of {_STATE}",
        percent=True,
        slips=lambda: [
            (t()["raw_count"], "this is the number of yes answers; divide by the respondents."),
            (t()["truth"], "this is the state's true value; no pooling uses its respondents."),
        ],
        hint="poll_means(poll)['no_pooling'], or the mean of y over the state's rows.",
    )
    v.number(
        "complete_14",
        complete_14,
        lambda: t()["complete"],
        what="the share of yes in the whole poll",
        percent=True,
        slips=lambda: [
            (t()["national_truth"], "this is the true national value, not the poll's share."),
        ],
        hint="the mean of y over all rows of the poll.",
    )
    v.number(
        "truth_14",
        truth_14,
        lambda: t()["truth"],
        what=f"the true share of yes in {_STATE}",
        percent=True,
        slips=lambda: [
            (
                t()["truth_unweighted"],
                "this is the unweighted mean of the cells' probabilities: weight each cell by "
                "its census count N.",
            ),
            (t()["raw"], "this is the share among the state's respondents, not the truth."),
        ],
        hint="mrp.poststratify('p', census): the true probabilities weighted by N.",
    )
    return v.result()


@exercise("ex14_2", f"the MRP estimate of state {_STATE}", points=3)
def ex14_2(mrp_14: Any) -> CheckResult:
    """Exercise 14.2: the poststratified estimate of one state from the multilevel model.

    Parameters
    ----------
    mrp_14 : float
        The MRP estimate: the model's predicted probabilities of the state's census cells,
        weighted by their census counts.

    Examples
    --------
    >>> ex14_2(...).status
    'unanswered'
    """
    v = Verdict("ex14_2")
    t = _ch14_mrp
    v.number(
        "mrp_14",
        mrp_14,
        lambda: t()["mrp"],
        what=f"the MRP estimate of {_STATE}",
        percent=True,
        slips=lambda: [
            (
                t()["unweighted"],
                "this is the unweighted mean of the cell predictions: weight each cell by its "
                "census count N.",
            ),
            (
                t()["sample_weights"],
                "this weights the cells by the poll's respondents (sample weights), which brings "
                "back the poll's skew: weight by the census counts N.",
            ),
            (
                t()["logodds"],
                "this is a weighted mean of log-odds (type='link'): predict probabilities, "
                "type='response'.",
            ),
            (
                t()["raw"],
                "this is the state's own share (no pooling), not the model's partial-pooling "
                "estimate.",
            ),
            (
                t()["fixed_only"],
                "these predictions leave out the random effects (re=False): keep the state, age "
                "and education effects.",
            ),
        ],
        hint="mrp.poststratify(m, census) with m the glmer fit, or sum(N * pi_hat) / sum(N).",
    )
    return v.result()


@exercise("ex14_3", "the national MRP estimate and the error of the state estimates", points=2)
def ex14_3(national_14: Any, rmse_mrp_14: Any) -> CheckResult:
    """Exercise 14.3: poststratify to the nation, and the RMSE of MRP against the truth.

    Parameters
    ----------
    national_14 : float
        The national MRP estimate: every census cell's prediction weighted by its count.
    rmse_mrp_14 : float
        The root mean squared error of the 40 states' MRP estimates against their true values
        (a share, or percentage points).

    Examples
    --------
    >>> ex14_3(..., ...).status
    'unanswered'
    """
    v = Verdict("ex14_3")
    t = _ch14_mrp
    v.number(
        "national_14",
        national_14,
        lambda: t()["national"],
        what="the national MRP estimate",
        percent=True,
        slips=lambda: [
            (
                t()["national_states"],
                "this is the unweighted mean of the state estimates: states differ in size, so "
                "weight them (or all cells) by the census counts.",
            ),
            (
                t()["national_cells"],
                "this is the unweighted mean of the cell predictions: weight them by N.",
            ),
            (
                t()["national_raw"],
                "this is the poll's raw share of yes (weighting the cell predictions by the "
                "poll's respondents gives nearly the same): weight them by the census counts N.",
            ),
        ],
        hint="mrp.poststratify(m, census, by=None).",
    )
    v.number(
        "rmse_mrp_14",
        rmse_mrp_14,
        lambda: t()["rmse"],
        what="the RMSE of the MRP estimates against the truth",
        percent=True,
        slips=lambda: [
            (t()["mse"], "this is the mean squared error; take its square root."),
            (t()["mae"], "this is the mean absolute error; the question asks for the RMSE."),
            (
                t()["rmse_raw"],
                "this is the RMSE of the states' own shares (no pooling), not of MRP.",
            ),
        ],
        hint="sqrt(mean((estimate - truth)^2)) over the 40 states.",
    )
    return v.result()


@exercise(
    "ex14_4",
    "without the state-level predictor: whose estimates move? predict, then explain",
    kind="manual",
    answers={"prediction_14": prediction(_WHO_MOVES), "answer_14": words(40)},
)
def ex14_4(prediction_14: Any, answer_14: Any) -> CheckResult:
    """Exercise 14.4 (words, graded by hand): the model without ``z``, small or large states.

    Parameters
    ----------
    prediction_14 : str
        Whose MRP estimates change most when ``z`` is left out: ``"small states"``,
        ``"large states"`` or ``"all alike"``.
    answer_14 : str
        Why, in at least 40 words.

    Examples
    --------
    >>> ex14_4("small states", "too short").status
    'partial'
    """
    v = Verdict("ex14_4")
    v.prediction("prediction_14", prediction_14, truth=None, reveal=False)
    v.text(
        "answer_14",
        answer_14,
        ideas=[
            (r"pool|shrink|pull|borrow", "how strongly is a small state pulled, and towards what?"),
            (r"predictor|\bz\b|regression|line", "what does the state-level predictor supply?"),
            (r"respondent|sample|data|\bn\b", "how much do a state's own respondents weigh?"),
        ],
    )
    return v.result()


__all__ = [*(q.qid for q in questions("14")), "EX14"]
