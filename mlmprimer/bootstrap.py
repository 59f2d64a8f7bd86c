"""The parametric bootstrap of a fitted model, as lme4's ``bootMer``.

:func:`bootstrap` draws ``nsim`` responses from the fitted model (new random effects and
residuals each time, ``model.simulate``), refits the model to each through the design's
new-response method (``model.refit(y)``, so X, Z, weights and offset stay those of the fit),
and applies a statistic to every refit. :func:`mlmprimer.profile.bootstrap_refits` (bootstrap
intervals of :func:`mlmprimer.confint`) and :func:`mlmprimer.icc_ci` use it.

Examples
--------
>>> from mlmprimer.bootstrap import bootstrap
>>> from mlmprimer.datasets import load
>>> from mlmprimer.model import lmer
>>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
>>> boot = bootstrap(m, lambda fit: fit.sigma, nsim=4, seed=1)
>>> boot.shape, round(float(boot.attrs["t0"].iloc[0]), 2)
((4, 1), 49.51)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["REFIT_ERRORS", "bootstrap", "progress_bar"]

#: Refits that raise one of these count as failed replicates.
REFIT_ERRORS = (ValueError, RuntimeError, ArithmeticError, np.linalg.LinAlgError)


def progress_bar(items: Any, show: bool, desc: str) -> Iterable[Any]:
    """``items``, with a progress bar (a widget in JupyterLab) when ``show`` is true.

    Examples
    --------
    >>> from mlmprimer.bootstrap import progress_bar
    >>> list(progress_bar([1, 2], False, "x"))
    [1, 2]
    """
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, total=len(items), desc=desc)


def _as_row(value: Any) -> pd.Series:
    """A statistic's value as a Series (its own index, or ``t1``, ``t2``, ...)."""
    if isinstance(value, pd.Series):
        return value.astype(float)
    arr = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    return pd.Series(arr, index=[f"t{k + 1}" for k in range(arr.size)])


def bootstrap(
    model: Any,
    fun: Callable[[Any], Any],
    nsim: int = 500,
    seed: int | np.random.Generator | None = None,
    progress: bool = False,
    desc: str = "bootstrap",
) -> pd.DataFrame:
    """Parametric bootstrap: ``fun`` of the model refitted to responses simulated from it.

    Parameters
    ----------
    model : LmerModel
    fun : callable
        ``fun(fit)`` -> a number, a 1-d array or a Series (the same length every time).
    nsim : int, default 500
        Number of simulated responses (>= 1).
    seed : int, numpy.random.Generator or None
        The same seed gives the same replicates.
    progress : bool, default False
        Show a progress bar (``tqdm``).
    desc : str
        Label of the progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per replicate (NaN where the refit raised), columns the statistic's index
        (``t1``, ``t2``, ... for numbers and arrays); ``attrs`` holds ``t0`` (the statistic of
        ``model``, a Series), ``n_failed`` and ``failed`` (the rows whose refit raised).

    Raises
    ------
    ValueError
        ``nsim`` not a positive integer.

    Notes
    -----
    All ``nsim`` responses are drawn first, in one call of ``model.simulate(nsim, rng)``; the
    refits run with warnings silenced (a singular refit is a valid replicate).

    Examples
    --------
    >>> from mlmprimer.bootstrap import bootstrap
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
    >>> b = bootstrap(m, lambda fit: fit.fixef, nsim=3, seed=2)
    >>> list(b.columns), b.attrs["n_failed"]
    (['(Intercept)'], 0)
    """
    if not isinstance(nsim, (int, np.integer)) or isinstance(nsim, bool) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, got {nsim!r}")
    t0 = _as_row(fun(model))
    rng = np.random.default_rng(seed)
    sims = model.simulate(int(nsim), rng).to_numpy(dtype=float).T
    rows = np.full((len(sims), t0.size), np.nan)
    failed: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, y in enumerate(progress_bar(sims, progress, desc=desc)):
            try:
                value = _as_row(fun(model.refit(y))).to_numpy(dtype=float)
            except REFIT_ERRORS:
                failed.append(k)
                continue
            if value.size != t0.size:
                raise ValueError(
                    f"the statistic gave {value.size} values for a refit but {t0.size} for "
                    "the model: it must give the same number every time"
                )
            rows[k] = value
    out = pd.DataFrame(rows, columns=t0.index)
    out.attrs.update({"t0": t0, "n_failed": len(failed), "failed": failed})
    return out
