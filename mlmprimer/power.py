"""Power and precision of a multilevel design by simulation.

:func:`replicates` draws ``nsim`` data sets from a simulator of :mod:`mlmprimer.simulate` for
each setting of its design (number of groups, group size, effect sizes, ...), fits the model
with :func:`mlmprimer.lmer` to each and records, for every term of interest, the estimate,
its standard error, the p-value of its test and whether the fit was singular.
:func:`summarise` turns those replicates into one row per setting and term: the rejection rate
(the power, or the type I error rate when the effect is 0) with its Monte Carlo standard
error, the mean estimate, its bias, the empirical standard error, the mean reported standard
error and the coverage of the 95% (``1 - alpha``) Wald interval. :func:`power` is the two in
one call. :func:`wald_power` is the normal-theory power of a two-sided Wald test with a known
standard error, and :func:`balanced_se` the standard error a balanced random-intercept design
gives a student-level or a school-level coefficient (where the design effect enters).

Examples
--------
>>> from mlmprimer import simulate
>>> from mlmprimer.power import power
>>> tab = power(simulate.schools_two_levels, "y ~ x + w + (1 | school)",
...             {"n_schools": [10], "n_students": [5]}, terms={"w": "beta_w"}, nsim=5, seed=1)
>>> tab[["n_schools", "term", "nsim"]].to_dict("records")
[{'n_schools': 10, 'term': 'w', 'nsim': 5}]
"""

from __future__ import annotations

import itertools
import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .bootstrap import REFIT_ERRORS, progress_bar
from .model import lmer

__all__ = ["balanced_se", "power", "replicates", "settings_frame", "summarise", "wald_power"]

#: The columns of :func:`replicates` after the setting's own columns.
REPLICATE_COLUMNS = ["rep", "term", "truth", "estimate", "std_error", "df", "p_value", "singular"]


def settings_frame(settings: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
    """The settings as a frame, one row per setting.

    A mapping of argument name to a list of values is expanded to every combination (a
    grid, the first argument varying slowest); a scalar value is one level. A DataFrame is
    taken as it is (each row a setting).

    Examples
    --------
    >>> from mlmprimer.power import settings_frame
    >>> settings_frame({"n_schools": [5, 10], "n_students": 20}).to_dict("records")
    [{'n_schools': 5, 'n_students': 20}, {'n_schools': 10, 'n_students': 20}]
    """
    if isinstance(settings, pd.DataFrame):
        frame = settings.reset_index(drop=True)
    elif isinstance(settings, Mapping):
        levels = {}
        for name, values in settings.items():
            if isinstance(values, (str, bytes)) or not np.iterable(values):
                values = [values]
            values = list(values)
            if not values:
                raise ValueError(f"settings[{name!r}] has no values")
            levels[name] = values
        frame = pd.DataFrame(list(itertools.product(*levels.values())), columns=list(levels))
    else:
        raise TypeError(
            f"settings must be a DataFrame or a mapping of argument name to values, "
            f"got {type(settings).__name__}"
        )
    if frame.empty or frame.shape[1] == 0:
        raise ValueError("settings must hold at least one setting and one argument")
    bad = [c for c in frame.columns if not isinstance(c, str) or not c.isidentifier()]
    if bad:
        raise ValueError(f"settings columns must be argument names, got {bad!r}")
    if "rng" in frame.columns:
        raise ValueError("settings must not set 'rng': the seed is power()'s seed argument")
    return frame


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number between 0 and 1, got {alpha!r}")
    return float(alpha)


def _scalar(value: Any) -> Any:
    """A numpy scalar as a Python one (so that it prints and compares plainly)."""
    return value.item() if isinstance(value, np.generic) else value


def _fit_rows(fit: Any, terms: Mapping[str, str], truth: Mapping[str, float], ddf: str | None):
    """One (term, truth, estimate, se, df, p, singular) tuple per term of interest."""
    tab = fit.tidy(ddf=ddf).set_index("term")
    rows = []
    for term, key in terms.items():
        if term not in tab.index:
            raise ValueError(
                f"term {term!r} is not in the fitted model; its terms are {list(tab.index)}"
            )
        est = float(tab.at[term, "estimate"])
        se = float(tab.at[term, "std.error"])
        if tab.at[term, "effect"] != "fixed" or not np.isfinite(se):
            df, p = np.nan, np.nan
        elif ddf is None:
            df = math.inf
            p = float(2 * stats.norm.sf(abs(est / se)))
        else:
            df = float(tab.at[term, "df"])
            p = float(tab.at[term, "p.value"])
        rows.append((term, float(truth[key]), est, se, df, p, bool(fit.singular)))
    return rows


def replicates(
    simulate_fn: Callable[..., pd.DataFrame],
    formula: str,
    settings: pd.DataFrame | Mapping[str, Any],
    terms: Mapping[str, str],
    nsim: int = 100,
    seed: int = 0,
    ddf: str | None = None,
    REML: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """Simulate, fit and record the terms of interest, ``nsim`` times per setting.

    Parameters
    ----------
    simulate_fn : callable
        A simulator called as ``simulate_fn(**setting, rng=generator)`` that returns data
        with the true parameters in ``attrs["truth"]`` (every function of
        :mod:`mlmprimer.simulate`).
    formula : str
        The lme4 formula fitted to every data set.
    settings : DataFrame or mapping
        The designs, one per row, or a grid of argument values (see :func:`settings_frame`).
    terms : mapping
        Term of the fit, as :meth:`LmerModel.tidy` names it (``"w"``, ``"sd__(Intercept)"``)
        -> the name of its true value in ``attrs["truth"]`` (``"beta_w"``, ``"tau"``).
    nsim : int, default 100
        Data sets per setting.
    seed : int, default 0
        The seed of the whole run. Each setting gets its own stream (``SeedSequence(seed)``
        spawned once per row), so a setting's replicates do not depend on the settings after it.
    ddf : {None, "Satterthwaite", "Kenward-Roger"}
        None tests fixed effects with the Wald z (normal) statistic; otherwise with the t
        statistic and these degrees of freedom (:meth:`LmerModel.tidy`'s ``ddf``).
    REML : bool, default True
    progress : bool, default False
        Show a progress bar over all the fits.

    Returns
    -------
    pandas.DataFrame
        One row per setting, replicate and term: the setting's columns, then ``rep``, ``term``,
        ``truth``, ``estimate``, ``std_error``, ``df`` (``inf`` for a z test), ``p_value``
        (NaN for a standard deviation), ``singular``. A fit that raised gives NaN estimates;
        ``attrs["n_failed"]`` counts them.

    Examples
    --------
    >>> from mlmprimer import simulate
    >>> from mlmprimer.power import replicates
    >>> reps = replicates(simulate.reaction_times, "reaction ~ 1 + (1 | subject)",
    ...                   {"n_subjects": [6]}, {"sd__(Intercept)": "tau"}, nsim=3, seed=4)
    >>> reps[["n_subjects", "rep", "term", "truth"]].to_dict("records")[0]
    {'n_subjects': 6, 'rep': 0, 'term': 'sd__(Intercept)', 'truth': 35.0}
    """
    frame = settings_frame(settings)
    nsim = _positive_int("nsim", nsim)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not callable(simulate_fn):
        raise TypeError(f"simulate_fn must be a simulator function, got {simulate_fn!r}")
    if not isinstance(terms, Mapping) or not terms:
        raise ValueError("terms must map at least one fitted term to the name of its truth")
    if ddf not in (None, "Satterthwaite", "Kenward-Roger"):
        raise ValueError(f"ddf must be None, 'Satterthwaite' or 'Kenward-Roger', got {ddf!r}")
    streams = np.random.SeedSequence(int(seed)).spawn(len(frame))
    jobs = [(row, k) for row in range(len(frame)) for k in range(nsim)]
    gens = [np.random.default_rng(s) for s in streams]
    # Row by row keeps each column's type (iloc would make 40 a float next to a float column).
    rows_of = [{c: _scalar(v) for c, v in r.items()} for r in frame.to_dict("records")]
    records: list[tuple] = []
    n_failed = 0
    for row, k in progress_bar(jobs, progress, desc="power"):
        setting = rows_of[row]
        data = simulate_fn(**setting, rng=gens[row])
        truth = data.attrs.get("truth", {})
        missing = [key for key in terms.values() if key not in truth]
        if missing:
            raise ValueError(
                f"the simulator's attrs['truth'] has no {missing!r}; it holds {list(truth)}"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = lmer(formula, data, REML=REML)
        except REFIT_ERRORS:
            n_failed += 1
            nan = np.nan
            rows = [(t, float(truth[key]), nan, nan, nan, nan, False) for t, key in terms.items()]
        else:
            rows = _fit_rows(fit, terms, truth, ddf)
        records += [(*setting.values(), k, *r) for r in rows]
    out = pd.DataFrame(records, columns=[*frame.columns, *REPLICATE_COLUMNS])
    out.attrs["n_failed"] = n_failed
    return out


def summarise(reps: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One row per setting and term from the output of :func:`replicates`.

    Parameters
    ----------
    reps : DataFrame
        :func:`replicates`' table.
    alpha : float, default 0.05
        Level of the tests; the intervals are ``1 - alpha`` Wald intervals (z, or t with the
        replicate's df).

    Returns
    -------
    pandas.DataFrame
        The setting's columns and ``term``, then ``nsim`` (fits that did not fail),
        ``rejection`` (share of p-values below ``alpha``) and ``rejection_mcse``
        (``sqrt(r (1 - r) / nsim)``), ``truth``, ``mean_estimate``, ``bias`` and ``bias_mcse``
        (empirical SE / sqrt(nsim)), ``empirical_se`` (SD of the estimates), ``mean_se`` (mean
        reported standard error), ``coverage`` (share of intervals holding the truth) and
        ``singular`` (share of singular fits). Tests and intervals are NaN for standard
        deviations.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.power import summarise
    >>> reps = pd.DataFrame({"J": 5, "rep": [0, 1, 2, 3], "term": "w", "truth": 1.0,
    ...                      "estimate": [0.5, 1.5, 1.0, 2.0], "std_error": 0.5,
    ...                      "df": float("inf"), "p_value": [0.3, 0.01, 0.04, 0.001],
    ...                      "singular": False})
    >>> row = summarise(reps).iloc[0]
    >>> float(row["rejection"]), float(row["rejection_mcse"]), float(row["bias"])
    (0.75, 0.2165063509461097, 0.25)
    """
    alpha = _alpha(alpha)
    missing = [c for c in REPLICATE_COLUMNS if c not in reps.columns]
    if missing:
        raise ValueError(f"reps lacks the columns {missing}: pass the table of replicates()")
    keys = [c for c in reps.columns if c not in REPLICATE_COLUMNS] + ["term"]
    ok = reps.dropna(subset=["estimate"])
    if ok.empty:
        raise ValueError("every fit failed: there is nothing to summarise")
    rows = []
    for key, g in ok.groupby(keys, sort=False):
        n = len(g)
        est = g["estimate"].to_numpy(float)
        se = g["std_error"].to_numpy(float)
        truth = float(g["truth"].iloc[0])
        p = g["p_value"].to_numpy(float)
        tested = bool(np.isfinite(p).all())
        rate = float(np.mean(p < alpha)) if tested else np.nan
        if tested:
            df = g["df"].to_numpy(float)
            crit = np.where(np.isinf(df), stats.norm.ppf(1 - alpha / 2), 0.0)
            finite = np.isfinite(df)
            crit[finite] = stats.t.ppf(1 - alpha / 2, df[finite])
            coverage = float(np.mean(np.abs(est - truth) <= crit * se))
        else:
            coverage = np.nan
        emp = float(np.std(est, ddof=1)) if n > 1 else np.nan
        rows.append(
            (
                *key,
                n,
                rate,
                math.sqrt(rate * (1 - rate) / n) if tested else np.nan,
                truth,
                float(est.mean()),
                float(est.mean() - truth),
                emp / math.sqrt(n),
                emp,
                float(np.mean(se)) if tested else np.nan,
                coverage,
                float(g["singular"].mean()),
            )
        )
    columns = [
        "nsim",
        "rejection",
        "rejection_mcse",
        "truth",
        "mean_estimate",
        "bias",
        "bias_mcse",
        "empirical_se",
        "mean_se",
        "coverage",
        "singular",
    ]
    out = pd.DataFrame(rows, columns=[*keys, *columns])
    out.attrs["alpha"] = alpha
    out.attrs["n_failed"] = int(reps["estimate"].isna().sum() // max(reps["term"].nunique(), 1))
    return out


def power(
    simulate_fn: Callable[..., pd.DataFrame],
    formula: str,
    settings: pd.DataFrame | Mapping[str, Any],
    terms: Mapping[str, str],
    nsim: int = 100,
    seed: int = 0,
    alpha: float = 0.05,
    ddf: str | None = None,
    REML: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """Power and precision by simulation: :func:`summarise` of :func:`replicates`.

    See :func:`replicates` for the parameters and :func:`summarise` for the columns; the
    replicates themselves are in ``attrs["replicates"]``.

    Examples
    --------
    >>> from mlmprimer import simulate
    >>> from mlmprimer.power import power
    >>> tab = power(simulate.school_level_predictor, "y ~ w + (1 | school)",
    ...             {"n_schools": [20], "n_students": [5]}, {"w": "beta_w"}, nsim=4, seed=3)
    >>> list(tab.columns)[:5]
    ['n_schools', 'n_students', 'term', 'nsim', 'rejection']
    """
    alpha = _alpha(alpha)
    reps = replicates(simulate_fn, formula, settings, terms, nsim, seed, ddf, REML, progress)
    out = summarise(reps, alpha)
    out.attrs["replicates"] = reps
    return out


def wald_power(effect: Any, se: Any, alpha: float = 0.05) -> float | np.ndarray:
    """Power of the two-sided Wald z test of a coefficient with a known standard error.

    ``P(|Z| > z_{1 - alpha/2})`` for ``Z ~ N(effect / se, 1)``: the analytic answer that a
    simulation reproduces when the standard error is well estimated (many groups).

    Examples
    --------
    >>> from mlmprimer.power import wald_power
    >>> round(wald_power(2.8, 1.0), 3)
    0.8
    >>> round(wald_power(0.0, 1.0), 3)
    0.05
    """
    alpha = _alpha(alpha)
    se_arr = np.asarray(se, dtype=float)
    if np.any(~np.isfinite(se_arr) | (se_arr <= 0)):
        raise ValueError(f"se must be positive and finite, got {se!r}")
    delta = np.asarray(effect, dtype=float) / se_arr
    z = stats.norm.ppf(1 - alpha / 2)
    out = stats.norm.sf(z - delta) + stats.norm.cdf(-z - delta)
    return float(out) if np.ndim(out) == 0 else out


def balanced_se(
    n_groups: Any,
    group_size: Any,
    tau: float,
    sigma: float,
    level: str,
    predictor_sd: float = 1.0,
) -> float | np.ndarray:
    """Standard error of a coefficient in a balanced random-intercept design (many groups).

    For a school-level predictor ``w_j`` (``level="group"``) the school means carry the
    information: ``se^2 = (tau^2 + sigma^2 / m) / (J * sd_w^2)``, which is the simple random
    sample's ``(tau^2 + sigma^2) / (J m sd_w^2)`` times the design effect
    ``1 + (m - 1) ICC`` of chapter 4. For a student-level predictor drawn independently of
    the school (``level="unit"``) the within-school comparisons carry nearly all of it:
    ``1 / se^2 = J sd_x^2 ((m - 1) / sigma^2 + 1 / (m tau^2 + sigma^2))``, close to the
    simple random sample's ``sigma^2 / (J m sd_x^2)`` and free of the design effect. Both
    treat the predictor's sample variance as its population value and the variances as
    known, so they are large-sample answers, optimistic for few groups.

    Parameters
    ----------
    n_groups, group_size : int or array-like
        Number of groups ``J`` and observations per group ``m`` (broadcast).
    tau, sigma : float
        Between-group and residual standard deviations.
    level : {"group", "unit"}
        The level of the predictor.
    predictor_sd : float, default 1
        Standard deviation of the predictor.

    Examples
    --------
    >>> from mlmprimer.power import balanced_se
    >>> round(balanced_se(30, 20, tau=5, sigma=10, level="group"), 3)
    1.0
    >>> round(balanced_se(30, 20, tau=5, sigma=10, level="unit"), 4)
    0.417
    """
    J = np.asarray(n_groups, dtype=float)
    m = np.asarray(group_size, dtype=float)
    if np.any(J < 1) or np.any(m < 1):
        raise ValueError("n_groups and group_size must be at least 1")
    for name, value in (("tau", tau), ("sigma", sigma), ("predictor_sd", predictor_sd)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if level == "group":
        var = (tau**2 + sigma**2 / m) / (J * predictor_sd**2)
    elif level == "unit":
        if sigma == 0:
            raise ValueError("a unit-level effect needs a positive sigma")
        info = (m - 1) / sigma**2 + 1 / (m * tau**2 + sigma**2)
        var = 1 / (J * predictor_sd**2 * info)
    else:
        raise ValueError(f"level must be 'group' or 'unit', got {level!r}")
    out = np.sqrt(var)
    return float(out) if out.ndim == 0 else out
