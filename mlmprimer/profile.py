"""Confidence intervals for the parameters of a linear mixed model, as lme4's ``confint``.

Three methods, as in lme4:

``"profile"``
    Likelihood-profile intervals. For one parameter held at a value ``x``, the deviance
    (``-2 log L``) is minimised over all the other parameters; the signed square root of its
    rise above the minimum, ``zeta(x) = sign(x - x_hat) sqrt(d(x) - d(x_hat))``, is compared
    with the normal quantiles ``+-z`` (1.96 for 95 %). The random-effect parameters are taken
    on the scale of standard deviations and correlations, with the residual standard deviation
    sigma; the fixed effects are profiled out of that deviance. Like lme4, a REML fit is first
    refitted by maximum likelihood and the *likelihood* is profiled (the intervals are centred
    on the ML estimates). Where the profile stays inside ``+-z`` all the way to a bound (a
    standard deviation of 0, a correlation of -1 or 1), the bound is the limit.
``"Wald"``
    ``estimate +- z * std.error`` for the fixed effects; no interval (NaN) for the
    random-effect parameters, whose sampling distributions are far from normal.
``"boot"``
    Parametric bootstrap percentile intervals: new responses are simulated from the fit, the
    model is refitted to each, and the quantiles of the refits' estimates are taken.

The profile itself (the deviance on the scale of standard deviations and correlations, and
how the limits are read off it) is :mod:`mlmprimer.devprofile`.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.model import lmer
>>> from mlmprimer.profile import confint
>>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
>>> confint(m).round(1)
               2.5 %  97.5 %
.sig01          12.2    84.1
.sigma          38.2    67.7
(Intercept)   1486.5  1568.5
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from .bigfit import SourceModel
from .bootstrap import bootstrap, progress_bar
from .devprofile import Profiler, check_model, inverse_at, parameter_names, sdcor
from .model import LmerModel, LmerWarning
from .optimize import ConvergenceError, SingleThreadedBlas

__all__ = ["METHODS", "BootstrapRefits", "bootstrap_refits", "confint", "parameter_names"]

#: The interval methods of :func:`confint` (and of ``LmerModel.tidy(conf_method=...)``).
METHODS = ("profile", "Wald", "boot")


# ----------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------


class BootstrapRefits(NamedTuple):
    """Statistics of parametric bootstrap refits.

    Attributes
    ----------
    values : numpy.ndarray, shape (n_ok, k)
        One row per refit that succeeded.
    n_failed : int
        Refits that raised (left out of ``values``).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.profile import BootstrapRefits
    >>> BootstrapRefits(np.zeros((3, 2)), 1).n_failed
    1
    """

    values: np.ndarray
    n_failed: int


def bootstrap_refits(
    model: LmerModel,
    statistic: Callable[[LmerModel], Any],
    nsim: int = 500,
    seed: int | np.random.Generator | None = None,
    progress: bool = False,
    desc: str = "bootstrap",
) -> BootstrapRefits:
    """Refit the model to responses simulated from it; a statistic of each refit.

    The replicates of :func:`mlmprimer.bootstrap.bootstrap` (responses from
    ``model.simulate``, refits with the same design and criterion as ``model``), the failed
    ones left out.

    Parameters
    ----------
    model, statistic, nsim, seed, progress, desc
        As ``model, fun, nsim, seed, progress, desc`` of :func:`mlmprimer.bootstrap.bootstrap`.

    Returns
    -------
    BootstrapRefits
        ``values`` (one row per successful refit) and ``n_failed``.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> from mlmprimer.profile import bootstrap_refits
    >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
    >>> res = bootstrap_refits(m, lambda fit: fit.sigma, nsim=5, seed=1)
    >>> res.values.shape, res.n_failed
    ((5, 1), 0)
    """
    check_model(model)
    _check_nsim(nsim)
    boot = bootstrap(model, statistic, int(nsim), seed, progress, desc=desc)
    ok = boot.drop(index=boot.attrs["failed"]).to_numpy(dtype=float)
    return BootstrapRefits(ok, int(boot.attrs["n_failed"]))


def _estimates(fit: LmerModel) -> np.ndarray:
    """Standard deviations, correlations, sigma and fixed effects, in confint's order."""
    vc = sdcor(np.asarray(fit.theta, dtype=float), float(fit.sigma), fit.design)
    return np.concatenate([vc, fit.fixef.to_numpy(dtype=float)])


# ----------------------------------------------------------------------------------------------
# confint
# ----------------------------------------------------------------------------------------------


def _check_nsim(nsim: Any) -> None:
    if not isinstance(nsim, (int, np.integer)) or isinstance(nsim, bool) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, got {nsim!r}")


def _check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
        raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    return float(level)


def _percent(a: float) -> str:
    """R's format.perc(a, 3): ``"2.5 %"``."""
    return f"{100 * a:.3g} %"


def _select(parm: str | Sequence[str] | None, names: list[str], nvc: int) -> list[int]:
    if parm is None:
        return list(range(len(names)))
    wanted = [parm] if isinstance(parm, str) else list(parm)
    idx: set[int] = set()
    for p in wanted:
        if p == "theta_":
            idx.update(range(nvc))
        elif p == "beta_":
            idx.update(range(nvc, len(names)))
        elif p in names:
            idx.add(names.index(p))
        else:
            raise ValueError(
                f"unknown parameter {p!r}: use one of {names}, 'theta_' (all variance "
                "parameters) or 'beta_' (all fixed effects)"
            )
    return sorted(idx)


def confint(
    model: LmerModel | SourceModel,
    method: str = "profile",
    level: float = 0.95,
    *,
    parm: str | Sequence[str] | None = None,
    nsim: int = 500,
    seed: int | np.random.Generator | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Confidence intervals for a model's parameters, as lme4's ``confint(fit, method=...)``.

    Parameters
    ----------
    model : LmerModel or SourceModel
        A fit from :func:`mlmprimer.lmer` (from a data frame, or from a file or database:
        then ``"profile"`` and ``"Wald"`` only, since there are no rows to simulate from).
    method : {"profile", "Wald", "boot"}, default "profile"
        Likelihood profile, Wald (fixed effects only) or parametric bootstrap percentile
        intervals; see the module documentation.
    level : float, default 0.95
        Confidence level, strictly between 0 and 1.
    parm : str or sequence of str, optional
        Parameters to give (default all): names from :func:`parameter_names`, ``"theta_"``
        for every variance parameter (with ``.sigma``) or ``"beta_"`` for every fixed effect.
        With ``"profile"`` only those are profiled.
    nsim : int, default 500
        Bootstrap samples (``method="boot"``).
    seed : int, numpy.random.Generator or None
        Seed of the bootstrap simulations; the same seed gives the same intervals.
    progress : bool, default False
        Show a progress bar (over the bootstrap refits, or over the parameters profiled).

    Returns
    -------
    pandas.DataFrame
        Index lme4's parameter names (``.sig01``, ..., ``.sigma``, fixed effects), columns
        ``"2.5 %"`` and ``"97.5 %"`` (for ``level=0.95``). With ``"boot"``, ``attrs`` holds
        ``nsim`` and ``n_failed``.

    Raises
    ------
    ValueError
        An unknown method or parameter, a level outside (0, 1), ``nsim < 1``.
    RuntimeError
        Every bootstrap refit failed.

    Warns
    -----
    LmerWarning
        Bootstrap refits that failed (how many; the intervals use the others); a parameter
        whose profile could not be computed (its limits are NaN).

    Notes
    -----
    Profile intervals of a REML fit are those of the ML fit, as lme4's (it profiles the
    likelihood after refitting by ML). Bootstrap refits use the fit's criterion. A
    correlation of a bootstrap refit with a standard deviation of 0 is undefined and left
    out of that correlation's quantiles.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> from mlmprimer.profile import confint
    >>> m = lmer("strength ~ 1 + (1 | batch/cask)", load("pastes"))
    >>> confint(m).round(3)  # the batch SD (.sig02) may well be 0
                 2.5 %  97.5 %
    .sig01       2.158   4.054
    .sig02       0.000   2.947
    .sigma       0.652   1.085
    (Intercept) 58.664  61.443
    >>> confint(m, "Wald").round(2)
                 2.5 %  97.5 %
    .sig01         NaN     NaN
    .sig02         NaN     NaN
    .sigma         NaN     NaN
    (Intercept)  58.73   61.38
    >>> ci = confint(m, "boot", nsim=20, seed=1)
    >>> ci.attrs["n_failed"], list(ci.columns)
    (0, ['2.5 %', '97.5 %'])
    """
    check_model(model)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    level = _check_level(level)
    if method == "boot":
        _check_nsim(nsim)
        if not isinstance(model, LmerModel):
            raise ValueError(
                "a fit from a file or database has no rows to simulate from: use "
                "method='profile' or 'Wald'"
            )
    names = parameter_names(model)
    nvc = model.design.theta0.size + 1
    which = _select(parm, names, nvc)
    a = (1.0 - level) / 2.0
    columns = [_percent(a), _percent(1.0 - a)]
    z = float(stats.norm.ppf(1.0 - a))
    out = np.full((len(names), 2), np.nan)

    if method == "Wald":
        se = np.sqrt(np.diag(model.vcov.to_numpy(dtype=float)))
        beta = model.fixef.to_numpy(dtype=float)
        out[nvc:, 0] = beta - z * se
        out[nvc:, 1] = beta + z * se
        frame = pd.DataFrame(out, index=names, columns=columns)
        return frame.iloc[which]

    if method == "boot":
        res = bootstrap_refits(model, _estimates, nsim, seed, progress, desc="bootstrap confint")
        if res.values.shape[0] == 0:
            raise RuntimeError(f"all {nsim} bootstrap refits failed: no interval")
        if res.n_failed:
            warnings.warn(
                f"{res.n_failed} of {nsim} bootstrap refits failed; the intervals use the "
                f"{nsim - res.n_failed} that succeeded",
                LmerWarning,
                stacklevel=2,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column of NaN correlations
            out = np.nanquantile(res.values, [a, 1.0 - a], axis=0).T
        frame = pd.DataFrame(out, index=names, columns=columns).iloc[which]
        frame.attrs.update(nsim=int(nsim), n_failed=int(res.n_failed))
        return frame

    # lme4 profiles out to the chi-square cut-off of all parameters at alpha = 0.01
    cutoff = max(math.sqrt(stats.chi2.ppf(0.99, len(names))), 1.1 * z)
    with SingleThreadedBlas():
        prof = Profiler(model)
        # where the profile stays inside +-z, the limit is the parameter's bound
        nfixed = len(names) - nvc
        lower = np.concatenate([prof.lower, np.full(nfixed, -math.inf)])
        upper = np.concatenate([prof.upper, np.full(nfixed, math.inf)])
        for k in progress_bar(np.asarray(which), progress, desc="profile confint"):
            k = int(k)
            try:
                x, zeta = prof.profile(k, cutoff)
            except (ConvergenceError, ValueError, np.linalg.LinAlgError) as err:
                warnings.warn(
                    f"no profile interval for {names[k]}: {err}", LmerWarning, stacklevel=2
                )
                continue
            lim = inverse_at(x, zeta, np.array([-z, z]))
            out[k] = np.where(np.isnan(lim), [lower[k], upper[k]], lim)
    return pd.DataFrame(out, index=names, columns=columns).iloc[which]
