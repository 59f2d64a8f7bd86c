"""Intraclass correlation, its bootstrap interval and the design effect.

The intraclass correlation (ICC) of a model with one random intercept is the share of the
unexplained variance that lies between groups,

.. math:: \\rho = \\frac{\\tau^2}{\\tau^2 + \\sigma^2},

which is also the correlation of two observations of the same group. With covariates in the model
this is the *adjusted* ICC of R's ``performance::icc``: the fixed-effects variance is left out of
the denominator. With random slopes the group-level variance depends on the covariate; following
``performance::icc`` (Johnson 2014) the random-effect variance is then averaged over the rows of
the data, :math:`\\bar\\tau^2 = \\frac1n\\sum_i z_i^\\top \\Sigma z_i`.

References
----------
Johnson, P. C. D. (2014). Extension of Nakagawa & Schielzeth's R2GLMM to random slopes models.
*Methods in Ecology and Evolution*, 5, 944-946.

Nakagawa, S., Johnson, P. C. D. and Schielzeth, H. (2017). The coefficient of determination R2 and
intra-class correlation coefficient from generalized linear mixed-effects models revisited and
expanded. *Journal of the Royal Society Interface*, 14, 20170213.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlmprimer.bootstrap import bootstrap
from mlmprimer.model import LmerModel, LmerWarning

__all__ = ["icc", "icc_ci", "design_effect", "effective_sample_size"]


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------


def icc(model: LmerModel, by_group: bool = False, adjusted: bool = True) -> float | pd.Series:
    """Intraclass correlation of a fitted linear mixed model.

    Parameters
    ----------
    model : LmerModel
        A fit from :func:`mlmprimer.lmer`.
    by_group : bool, default False
        If True, return one value per grouping term: that term's variance over the total
        (all random-effect variances plus the residual variance, plus the fixed-effects variance
        when ``adjusted=False``). If False, return one number for all random effects together.
    adjusted : bool, default True
        The adjusted ICC (R's ``performance::icc``) leaves the variance explained by the fixed
        effects out of the denominator; the unadjusted ICC puts ``var(X beta)`` in it. For a null
        model the two are equal.

    Returns
    -------
    float or pandas.Series
        A float, or with ``by_group=True`` a Series indexed by the grouping terms (lme4's ``grp``
        labels of ``model.varcorr``).

    Warns
    -----
    LmerWarning
        When the model has random slopes: the ICC then depends on the covariate's values, and the
        number returned is the one for the random-effect variance averaged over the data
        (Johnson 2014).

    Notes
    -----
    For a model with one random intercept, ``tau^2 / (tau^2 + sigma^2)`` with ``tau^2`` and
    ``sigma^2`` taken from ``model.varcorr``. With several grouping factors (nested or crossed),
    the single number is ``sum(tau_g^2) / (sum(tau_g^2) + sigma^2)``; ``by_group=True`` gives the
    correlation of two observations that share only that factor, ``tau_g^2 / (sum(tau^2) +
    sigma^2)``.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> hsb = load("Hsb82")
    >>> m0 = lmer("mAch ~ 1 + (1 | school)", hsb)
    >>> round(icc(m0), 2)
    0.18
    """
    return _icc(model, by_group, adjusted, stacklevel=3)


def _icc(model: Any, by_group: bool, adjusted: bool, stacklevel: int) -> float | pd.Series:
    vc = model.varcomp
    variances, has_slopes = vc.mean_variances(), vc.has_slopes
    if variances.empty:
        raise ValueError("the model has no random effects: the ICC is not defined")
    if has_slopes and stacklevel > 0:
        warnings.warn(
            "the model has random slopes: the ICC depends on the covariate; the value returned "
            "uses the random-effect variance averaged over the rows of the data (Johnson 2014)",
            LmerWarning,
            stacklevel=stacklevel,
        )
    sigma2 = float(model.sigma) ** 2
    total = float(variances.sum()) + sigma2
    if not adjusted:
        total += vc.fixed_variance
    if by_group:
        out = variances / total
        out.name = "icc"
        out.index.name = "group"
        return out
    return float(variances.sum() / total)


def icc_ci(
    model: LmerModel,
    n_boot: int = 500,
    seed: int | np.random.Generator | None = None,
    level: float = 0.95,
    progress: bool = True,
    by_group: bool = False,
) -> pd.Series | pd.DataFrame:
    """Parametric-bootstrap percentile interval for the ICC.

    New responses are drawn from the fitted model (``model.simulate``), the model is fitted again
    to each, and the ICC of each refit is computed; the interval is given by the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of these values.

    Parameters
    ----------
    model : LmerModel
        A fit from :func:`mlmprimer.lmer`.
    n_boot : int, default 500
        Number of bootstrap samples.
    seed : int, numpy.random.Generator or None
        Seed (or generator) of the simulations; the same seed gives the same interval.
    level : float, default 0.95
        Confidence level, strictly between 0 and 1.
    progress : bool, default True
        Show a progress bar (``tqdm``); notebooks pass ``progress=False``.
    by_group : bool, default False
        One interval per grouping term (see :func:`icc`).

    Returns
    -------
    pandas.Series or pandas.DataFrame
        ``estimate`` (the ICC of ``model``), ``conf.low``, ``conf.high``, ``n_boot`` (refits that
        succeeded) and ``n_failed`` (refits that raised, left out of the interval). With
        ``by_group=True`` a DataFrame with one row per grouping term.

    Notes
    -----
    A refit whose variance estimate lands on zero gives an ICC of 0, so the interval can reach 0;
    that is the percentile bootstrap doing its job near the boundary. The warning about random
    slopes (see :func:`icc`) is given once, for the original model.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> sleep = load("sleepstudy")
    >>> m = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    >>> ci = icc_ci(m, n_boot=20, seed=1, progress=False)
    >>> bool(ci["conf.low"] < ci["estimate"] < ci["conf.high"])
    True
    >>> int(ci["n_boot"] + ci["n_failed"])
    20
    """
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    estimate = _icc(model, by_group, adjusted=True, stacklevel=3)
    boot = bootstrap(
        model,
        lambda fit: _icc(fit, by_group, True, stacklevel=0),
        int(n_boot),
        seed,
        progress,
        desc="bootstrap ICC",
    )
    failed = int(boot.attrs["n_failed"])
    ok = boot.drop(index=boot.attrs["failed"])
    values = list(ok.itertuples(index=False))

    probs = ((1 - level) / 2, (1 + level) / 2)

    def summary(est: float, boot: np.ndarray) -> dict[str, float]:
        low, high = np.quantile(boot, probs) if boot.size else (np.nan, np.nan)
        return {
            "estimate": float(est),
            "conf.low": float(low),
            "conf.high": float(high),
            "n_boot": len(values),
            "n_failed": failed,
        }

    if not by_group:
        return pd.Series(
            summary(estimate, ok.iloc[:, 0].to_numpy(dtype=float)), dtype=float, name="icc"
        )
    rows = [summary(est, ok[grp].to_numpy(dtype=float)) for grp, est in estimate.items()]
    return pd.DataFrame(rows, index=estimate.index)


def design_effect(icc: npt.ArrayLike, cluster_size: npt.ArrayLike) -> float | np.ndarray:
    """Kish's design effect of a cluster sample, ``1 + (m - 1) * ICC``.

    The design effect is the factor by which the variance of a mean (or of a regression
    coefficient of a group-level predictor) grows when observations come in clusters of size
    ``m`` with intraclass correlation ``ICC``, compared with a simple random sample.

    Parameters
    ----------
    icc : float or array-like
        Intraclass correlation(s), each in [0, 1].
    cluster_size : float or array-like
        Cluster size(s) ``m >= 1``; with unequal sizes use the mean size (a common
        approximation). Broadcast against ``icc``.

    Returns
    -------
    float or numpy.ndarray
        A float when both inputs are scalars, else an array of the broadcast shape.

    Examples
    --------
    >>> design_effect(0.1, 21)
    3.0
    >>> design_effect([0.0, 0.05, 0.2], 11).tolist()
    [1.0, 1.5, 3.0]
    """
    rho = _as_float_array(icc, "icc")
    m = _as_float_array(cluster_size, "cluster_size")
    if np.any((rho < 0) | (rho > 1)):
        raise ValueError(f"icc must lie in [0, 1], got {icc!r}")
    if np.any(m < 1):
        raise ValueError(f"cluster_size must be at least 1, got {cluster_size!r}")
    out = 1.0 + (m - 1.0) * rho
    return float(out) if out.ndim == 0 else out


def effective_sample_size(
    n: npt.ArrayLike, icc: npt.ArrayLike, cluster_size: npt.ArrayLike
) -> float | np.ndarray:
    """Effective sample size ``n / design_effect(icc, cluster_size)``.

    The number of independent observations that would give the same precision for a mean as
    ``n`` observations in clusters of size ``cluster_size``.

    Parameters
    ----------
    n : float or array-like
        Total number(s) of observations, positive.
    icc, cluster_size
        As in :func:`design_effect`.

    Returns
    -------
    float or numpy.ndarray

    Examples
    --------
    >>> effective_sample_size(600, 0.1, 21)
    200.0
    """
    total = _as_float_array(n, "n")
    if np.any(total <= 0):
        raise ValueError(f"n must be positive, got {n!r}")
    out = total / np.asarray(design_effect(icc, cluster_size))
    return float(out) if out.ndim == 0 else out


def _as_float_array(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {value!r}") from exc
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return arr
