"""Multilevel regression and poststratification (MRP): a simulated poll, its census, the weighting.

A poll asks a yes/no question of a few hundred or thousand people. Its respondents fall into
*cells*, the combinations of the variables the poll records (here state x age group x education),
and a *census* says how many people of the population live in each cell. MRP fits a multilevel
logistic model to the poll, predicts the probability of "yes" in every census cell, and averages
those predictions over the cells of a state, each weighted by its census count: the
*poststratification*.

:func:`census` simulates a population with a known probability in every cell, :func:`poll` draws
a poll from it with very uneven numbers of respondents per state (small states get a handful, some
none) and with some groups answering more readily than others, :func:`poll_means` gives the
no-pooling and complete-pooling estimates from the poll, and :func:`poststratify` weights any cell
estimates (a fitted model's predictions, or a column of the census) by the census counts.

Examples
--------
>>> from mlmprimer import mrp
>>> pop = mrp.census(n_states=5, rng=1)
>>> truth = mrp.poststratify("p", pop, by="state")
>>> truth.columns.tolist(), len(truth)
(['estimate', 'N'], 5)
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = ["AGE_GROUPS", "EDUCATION", "census", "poll", "poll_means", "poststratify"]

#: The age groups of the simulated census, youngest first.
AGE_GROUPS = ("18-29", "30-44", "45-64", "65+")
#: The education levels of the simulated census, lowest first.
EDUCATION = ("no high school", "high school", "some college", "college")


def _rng(rng: np.random.Generator | int) -> np.random.Generator:
    """The generator itself, or a new one seeded with a non-negative int."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a non-negative int seed or a numpy.random.Generator, got {rng!r}")


def _effects(name: str, values: Sequence[float], levels: Sequence[str]) -> np.ndarray:
    out = np.asarray(values, dtype=float)
    if out.shape != (len(levels),) or not np.all(np.isfinite(out)):
        raise ValueError(
            f"{name} must be {len(levels)} finite numbers, one per level "
            f"({', '.join(levels)}), got {values!r}"
        )
    return out


def census(
    n_states: int = 50,
    rng: np.random.Generator | int = 0,
    *,
    beta0: float = -0.2,
    beta_z: float = 0.5,
    tau_state: float = 0.4,
    age_effects: Sequence[float] = (-0.5, -0.15, 0.15, 0.5),
    educ_effects: Sequence[float] = (-0.45, -0.15, 0.15, 0.45),
    median_population: int = 1_000_000,
    population_sd: float = 1.0,
) -> pd.DataFrame:
    """A simulated census: people per state x age group x education cell, and the true opinion.

    Each state ``j`` has a standardised state-level predictor ``z_j ~ N(0, 1)`` (think of a
    previous election's result), a state effect ``u_j ~ N(0, tau_state^2)`` and a population
    ``exp(N(log(median_population), population_sd^2))``, shared out over the 16 age x education
    cells by state-specific shares (a Dirichlet draw around common shares), so that states differ
    in size and in make-up. The probability of "yes" in a cell is

    ``p = expit(beta0 + beta_z z_j + u_j + age_effects[a] + educ_effects[e])``.

    Parameters
    ----------
    n_states : int
        Number of states (labelled ``S01``, ``S02``, ...).
    rng : int or numpy.random.Generator
        Seed or generator; the default ``0`` makes the call reproducible.
    beta0, beta_z : float
        Intercept and coefficient of ``z`` on the log-odds scale.
    tau_state : float
        Standard deviation of the state effects (log-odds).
    age_effects, educ_effects : sequence of 4 floats
        Effects of the age groups (:data:`AGE_GROUPS`) and of education (:data:`EDUCATION`) on
        the log-odds.
    median_population : int
        Median number of people per state.
    population_sd : float
        Standard deviation of the log population sizes: 1 gives states from a few hundred
        thousand to several million people.

    Returns
    -------
    pandas.DataFrame
        One row per cell (``16 * n_states``): ``state``, ``age``, ``educ`` (categoricals),
        ``z``, ``N`` (people in the cell) and ``p`` (true probability). ``attrs["truth"]`` holds
        the parameters and ``attrs["state_effects"]`` the ``u_j``.

    Examples
    --------
    >>> from mlmprimer.mrp import census
    >>> pop = census(n_states=3, rng=2)
    >>> pop.shape
    (48, 6)
    >>> bool(pop["p"].between(0, 1).all()), int(pop["N"].min()) >= 0
    (True, True)
    """
    if isinstance(n_states, bool) or not isinstance(n_states, numbers.Integral) or n_states < 1:
        raise ValueError(f"n_states must be a positive integer, got {n_states!r}")
    if not np.isfinite([beta0, beta_z, tau_state, population_sd]).all():
        raise ValueError("beta0, beta_z, tau_state and population_sd must be finite numbers")
    if tau_state < 0 or population_sd < 0:
        raise ValueError("tau_state and population_sd are standard deviations: they must be >= 0")
    if median_population < 1:
        raise ValueError(f"median_population must be at least 1, got {median_population!r}")
    a = _effects("age_effects", age_effects, AGE_GROUPS)
    e = _effects("educ_effects", educ_effects, EDUCATION)
    gen = _rng(rng)
    n_states = int(n_states)

    z = gen.normal(0.0, 1.0, n_states)
    u = gen.normal(0.0, tau_state, n_states)
    size = np.rint(np.exp(gen.normal(np.log(median_population), population_sd, n_states)))
    base = np.outer([0.21, 0.26, 0.33, 0.20], [0.11, 0.28, 0.29, 0.32]).ravel()
    shares = gen.dirichlet(40.0 * base, size=n_states)
    counts = np.vstack([gen.multinomial(int(s), sh) for s, sh in zip(size, shares, strict=True)])

    n_age, n_educ = len(AGE_GROUPS), len(EDUCATION)
    state = np.repeat(np.arange(n_states), n_age * n_educ)
    age = np.tile(np.repeat(np.arange(n_age), n_educ), n_states)
    educ = np.tile(np.arange(n_educ), n_states * n_age)
    width = len(str(n_states))
    labels = [f"S{i:0{width}d}" for i in range(1, n_states + 1)]
    eta = beta0 + beta_z * z[state] + u[state] + a[age] + e[educ]
    out = pd.DataFrame(
        {
            "state": pd.Categorical.from_codes(state, categories=labels),
            "age": pd.Categorical.from_codes(age, categories=list(AGE_GROUPS)),
            "educ": pd.Categorical.from_codes(educ, categories=list(EDUCATION)),
            "z": z[state],
            "N": counts.ravel().astype(np.int64),
            "p": expit(eta),
        }
    )
    out.attrs["truth"] = {
        "beta0": float(beta0),
        "beta_z": float(beta_z),
        "tau_state": float(tau_state),
        **{f"age {lev}": float(v) for lev, v in zip(AGE_GROUPS, a, strict=True)},
        **{f"educ {lev}": float(v) for lev, v in zip(EDUCATION, e, strict=True)},
    }
    out.attrs["state_effects"] = dict(zip(labels, u.tolist(), strict=True))
    return out


def poll(
    census: pd.DataFrame,
    n: int = 1500,
    rng: np.random.Generator | int = 0,
    *,
    response_age: Sequence[float] = (-0.8, -0.3, 0.2, 0.6),
    response_educ: Sequence[float] = (-0.9, -0.3, 0.2, 0.6),
    state_sd: float = 0.5,
) -> pd.DataFrame:
    """A poll of ``n`` people drawn from a census of :func:`census`, one row per respondent.

    A person's chance of ending up in the poll is proportional to
    ``exp(response_age[a] + response_educ[e] + w_j)``, with a state factor ``w_j ~ N(0,
    state_sd^2)``: by default the young and the less educated answer less often, as in real
    polls, and states are polled unevenly on top of their different sizes. The ``n``
    respondents are shared out over the cells by a multinomial draw with these chances times the
    cell counts, and each answers "yes" (``y = 1``) with the cell's true probability ``p``.

    Parameters
    ----------
    census : pandas.DataFrame
        A census as :func:`census` returns it (columns ``state``, ``age``, ``educ``, ``z``,
        ``N``, ``p``).
    n : int
        Number of respondents.
    rng : int or numpy.random.Generator
        Seed or generator; the default ``0`` makes the call reproducible.
    response_age, response_educ : sequence of 4 floats
        Log relative response rates of the age groups and education levels.
    state_sd : float
        Standard deviation of the states' log relative response rates.

    Returns
    -------
    pandas.DataFrame
        ``n`` rows with ``state``, ``age``, ``educ``, ``z`` (the census's categoricals and
        state-level predictor) and ``y`` (0/1), sorted by cell. States without respondents
        keep their level in ``state``'s categories.

    Examples
    --------
    >>> from mlmprimer.mrp import census, poll
    >>> sample = poll(census(n_states=10, rng=3), n=200, rng=4)
    >>> sample.shape, sorted(sample["y"].unique().tolist())
    ((200, 5), [0, 1])
    """
    needed = ("state", "age", "educ", "z", "N", "p")
    if not isinstance(census, pd.DataFrame):
        raise ValueError(f"census must be a pandas DataFrame, got {type(census).__name__}")
    missing = [c for c in needed if c not in census.columns]
    if missing:
        raise ValueError(f"census lacks the column(s) {', '.join(missing)}: use mrp.census()")
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not np.isfinite(state_sd) or state_sd < 0:
        raise ValueError(f"state_sd must be a non-negative number, got {state_sd!r}")
    ra = _effects("response_age", response_age, AGE_GROUPS)
    re_ = _effects("response_educ", response_educ, EDUCATION)
    gen = _rng(rng)

    states = census["state"].cat.categories
    w = dict(zip(states, gen.normal(0.0, state_sd, len(states)), strict=True))
    rate = np.exp(
        ra[census["age"].cat.codes.to_numpy()]
        + re_[census["educ"].cat.codes.to_numpy()]
        + census["state"].map(w).astype(float).to_numpy()
    )
    chance = census["N"].to_numpy(dtype=float) * rate
    k = gen.multinomial(int(n), chance / chance.sum())
    yes = gen.binomial(k, census["p"].to_numpy(dtype=float))
    rows = np.repeat(np.arange(len(census)), k)
    # within a cell: the first yes[c] respondents said yes
    first = np.repeat(np.cumsum(k) - k, k)
    y = (np.arange(rows.size) - first < np.repeat(yes, k)).astype(np.int64)
    out = census.iloc[rows][["state", "age", "educ", "z"]].reset_index(drop=True)
    out["y"] = y
    return out


def poll_means(poll: pd.DataFrame, by: str = "state", y: str = "y") -> pd.DataFrame:
    """No-pooling and complete-pooling estimates from a poll, one row per level of ``by``.

    Parameters
    ----------
    poll : pandas.DataFrame
        One row per respondent.
    by : str
        The grouping column (every level of a categorical is listed, also those without
        respondents).
    y : str
        The 0/1 response.

    Returns
    -------
    pandas.DataFrame
        Indexed by the levels of ``by``: ``n`` (respondents), ``no_pooling`` (the group's share
        of yes; NaN without respondents) and ``complete`` (the share of yes in the whole poll).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"state": ["A", "A", "B"], "y": [1, 0, 1]})
    >>> poll_means(df).round(3).to_dict("list")
    {'n': [2, 1], 'no_pooling': [0.5, 1.0], 'complete': [0.667, 0.667]}
    """
    if not isinstance(poll, pd.DataFrame):
        raise ValueError(f"poll must be a pandas DataFrame, got {type(poll).__name__}")
    for role, col in (("by", by), ("y", y)):
        if col not in poll.columns:
            raise ValueError(f"{role}={col!r} is not a column of the poll")
    if not pd.api.types.is_numeric_dtype(poll[y]) or poll[y].isna().any():
        raise ValueError(f"y={y!r} must be a numeric 0/1 column without missing values")
    grouped = poll.groupby(by, observed=False)[y]
    out = pd.DataFrame({"n": grouped.size(), "no_pooling": grouped.mean()})
    out["complete"] = float(poll[y].mean())
    return out


def _cell_values(model: Any, census: pd.DataFrame, allow_new_levels: bool) -> np.ndarray:
    if isinstance(model, str):
        if model not in census.columns:
            raise ValueError(f"model={model!r} is neither a fitted model nor a census column")
        values = census[model].to_numpy(dtype=float)
    elif hasattr(model, "predict"):
        accepted = inspect.signature(model.predict).parameters
        kwargs: dict[str, Any] = {}
        if "type" in accepted:
            kwargs["type"] = "response"
        if "allow_new_levels" in accepted:
            kwargs["allow_new_levels"] = allow_new_levels
        values = np.asarray(model.predict(census, **kwargs), dtype=float)
    else:
        values = np.asarray(model, dtype=float)
    if values.shape != (len(census),):
        raise ValueError(
            f"the cell estimates must be one number per census row ({len(census)}), "
            f"got shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ValueError("the cell estimates contain missing or infinite values")
    return values


def poststratify(
    model: Any,
    census: pd.DataFrame,
    by: str | Sequence[str] | None = "state",
    weight: str = "N",
    *,
    allow_new_levels: bool = True,
) -> pd.DataFrame:
    """Weight cell estimates by the census counts: the poststratified estimate of each group.

    For group ``j`` (a level of ``by``) the estimate is ``sum_c N_c theta_c / sum_c N_c`` over
    the census cells ``c`` of the group, with ``N_c`` the census count and ``theta_c`` the cell
    estimate: a fitted model's prediction on the response scale (a probability, for a logistic
    model) or a column of the census.

    Parameters
    ----------
    model : fitted model, str or array-like
        A fitted model with ``predict(newdata, ...)`` (``mlmprimer.glmer``'s model is called with
        ``type="response"`` and ``allow_new_levels``), the name of a census column holding the
        cell estimates (such as the true probabilities ``"p"``), or one value per census row.
    census : pandas.DataFrame
        One row per cell, with the columns the model's formula needs, ``by`` and ``weight``.
    by : str, list of str or None
        The column(s) to poststratify to; ``None`` gives one row, ``"all"``, for the whole census.
    weight : str
        The column of census counts.
    allow_new_levels : bool
        Passed to the model's ``predict``: cells of groups the model has not seen get a random
        effect of zero, so their prediction rests on the fixed effects and the other terms.

    Returns
    -------
    pandas.DataFrame
        Indexed by the levels of ``by`` (those with census rows): ``estimate`` and the group's
        total count (column named ``weight``).

    Examples
    --------
    >>> import pandas as pd
    >>> cells = pd.DataFrame({"state": ["A", "A", "B"], "N": [300, 100, 50],
    ...                       "p": [0.2, 0.6, 0.5]})
    >>> poststratify("p", cells).round(3).to_dict("list")
    {'estimate': [0.3, 0.5], 'N': [400, 50]}
    >>> float(poststratify("p", cells, by=None)["estimate"].iloc[0].round(4))
    0.3222
    """
    if not isinstance(census, pd.DataFrame):
        raise ValueError(f"census must be a pandas DataFrame, got {type(census).__name__}")
    keys = [] if by is None else [by] if isinstance(by, str) else list(by)
    for col in [*keys, weight]:
        if col not in census.columns:
            raise ValueError(
                f"{col!r} is not a column of the census; columns are: "
                + ", ".join(map(str, census.columns))
            )
    w = census[weight]
    if not pd.api.types.is_numeric_dtype(w) or not np.all(np.isfinite(w.to_numpy(float))):
        raise ValueError(f"weight={weight!r} must be numeric counts without missing values")
    if (w < 0).any():
        raise ValueError(f"weight={weight!r} has negative counts: census counts are >= 0")
    values = _cell_values(model, census, allow_new_levels)
    frame = pd.DataFrame({"wy": w.to_numpy(float) * values, weight: w.to_numpy()})
    if keys:
        for k in keys:
            frame[k] = census[k].array
    else:
        frame["all"] = "all"
        keys = ["all"]
    sums = frame.groupby(keys, observed=True, sort=True)[["wy", weight]].sum()
    empty = sums.index[sums[weight] <= 0]
    if len(empty):
        raise ValueError(f"no census weight in group(s) {list(empty)[:5]}: nothing to average")
    out = pd.DataFrame({"estimate": sums["wy"] / sums[weight], weight: sums[weight]})
    return out
