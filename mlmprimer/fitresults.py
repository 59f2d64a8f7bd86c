"""Result tables of a linear mixed-model fit, from its design and solution.

The numbers and tables every fit reports, whether its rows were in memory
(:class:`mlmprimer.lmermodel.LmerModel`) or only their sums
(:class:`mlmprimer.bigfit.SourceModel`): the fit statistics (deviance, logLik, AIC, BIC,
singularity), per-group frames of conditional modes and SDs, R's ``coef()``, the fixed-effects
table and the one-line repr.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.fitresults import fixef_table
>>> from mlmprimer.model import lmer
>>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
>>> fixef_table(m.fixef, m.vcov).round(2).values.tolist()
[[1527.5, 19.38, 78.8]]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from .control import LmerControl
from .design import TermBlock
from .solution import MixedSolution

__all__ = [
    "by_group",
    "condsd_by_group",
    "fit_repr",
    "fit_statistics",
    "fixef_table",
    "group_coefficients",
]


def group_coefficients(fixef: pd.Series, ranef: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Per-group coefficients, R's ``coef()``: each group's random effects added to the fixed ones.

    A term with a random part but no fixed part (``(0 + x | g)`` with no ``x`` in the fixed
    effects) has a fixed part of 0; those columns come first.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.fitresults import group_coefficients
    >>> fe = pd.Series({"(Intercept)": 10.0, "x": 2.0})
    >>> re = {"g": pd.DataFrame({"(Intercept)": [1.0, -1.0]}, index=["a", "b"])}
    >>> group_coefficients(fe, re)["g"]
       (Intercept)    x
    a         11.0  2.0
    b          9.0  2.0
    """
    out = {}
    for g, modes in ranef.items():
        missing = [c for c in modes.columns if c not in fixef.index]
        fe = pd.concat([pd.Series(0.0, index=missing), fixef])
        val = pd.DataFrame(
            np.tile(fe.to_numpy(), (len(modes), 1)), index=modes.index, columns=fe.index
        )
        for c in modes.columns:
            val[c] = val[c] + modes[c].to_numpy()
        out[g] = val
    return out


def fit_statistics(design: Any, solution: MixedSolution, control: LmerControl) -> dict[str, Any]:
    """The numbers every linear mixed-model fit reports, from its design and solution.

    Shared by :class:`LmerModel` and :class:`mlmprimer.bigfit.SourceModel` (whose design has
    no rows, only ``n``, ``p``, ``terms``, ``theta0`` and ``lower``).

    Returns
    -------
    dict
        ``theta``, ``converged``, ``nobs``, ``sigma``, ``npar`` (fixed effects, theta and
        sigma), ``deviance`` (the REML criterion for a REML fit), ``loglik``, ``aic``, ``bic``,
        ``singular`` (a diagonal element of theta below ``control.singular_tol``) and
        ``ngroups`` (levels per grouping factor).

    Examples
    --------
    >>> import mlmprimer as mlm
    >>> from mlmprimer.fitresults import fit_statistics
    >>> m = mlm.lmer("Reaction ~ Days + (1 | Subject)", mlm.datasets.load("sleepstudy"))
    >>> s = fit_statistics(m.design, m.solution, m.control)
    >>> s["npar"], s["ngroups"], round(s["aic"], 1)
    (4, {'Subject': 18}, 1794.5)
    """
    theta = np.asarray(solution.theta, dtype=float).copy()
    npar = design.p + design.theta0.size + 1
    crit = float(solution.deviance)
    ngroups: dict[str, int] = {}
    for t in design.terms:
        ngroups.setdefault(t.group, t.nlevels)
    return {
        "theta": theta,
        "converged": True,
        "nobs": design.n,
        "sigma": float(solution.sigma),
        "npar": npar,
        "deviance": crit,
        "loglik": -crit / 2.0,
        "aic": crit + 2.0 * npar,
        "bic": crit + math.log(design.n) * npar,
        "singular": bool(np.any(theta[design.lower == 0] < control.singular_tol)),
        "ngroups": ngroups,
    }


def by_group(terms: Iterable[TermBlock], arrays: Iterable[np.ndarray]) -> dict[str, pd.DataFrame]:
    """Per-term arrays (levels x columns) as one frame per grouping factor, as lme4's ``ranef``.

    Terms of the same factor (``(1 | g) + (0 + x | g)``) are put side by side.

    Examples
    --------
    >>> import mlmprimer as mlm
    >>> from mlmprimer.fitresults import by_group
    >>> f = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"
    >>> m = mlm.lmer(f, mlm.datasets.load("sleepstudy"))
    >>> list(by_group(m.design.terms, m.solution.b)["Subject"].columns)
    ['(Intercept)', 'Days']
    """
    out: dict[str, pd.DataFrame] = {}
    for t, arr in zip(terms, arrays, strict=True):
        df = pd.DataFrame(arr, index=t.levels.copy(), columns=t.colnames)
        df.index.name = t.group
        out[t.group] = pd.concat([out[t.group], df], axis=1) if t.group in out else df
    return out


def condsd_by_group(terms: Iterable[TermBlock], solution: MixedSolution) -> dict[str, pd.DataFrame]:
    """Conditional SDs of the random effects (lme4's condVar), shaped as :func:`by_group`.

    Examples
    --------
    >>> import mlmprimer as mlm
    >>> from mlmprimer.fitresults import condsd_by_group
    >>> m = mlm.lmer("Yield ~ 1 + (1 | Batch)", mlm.datasets.load("dyestuff"))
    >>> condsd_by_group(m.design.terms, m.solution)["Batch"].round(2).iloc[0].tolist()
    [19.59]
    """
    cv = solution.conditional_variances()
    sds = [np.sqrt(np.clip(np.diagonal(c, axis1=1, axis2=2), 0, None)) for c in cv]
    return by_group(terms, sds)


def fixef_table(fixef: pd.Series, vcov: pd.DataFrame) -> pd.DataFrame:
    """Estimate, Std. Error and t value of fixed effects (lme4's ``coef(summary(m))``).

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.fitresults import fixef_table
    >>> fe = pd.Series({"(Intercept)": 10.0, "x": 2.0})
    >>> fixef_table(fe, pd.DataFrame([[4.0, 0.0], [0.0, 1.0]], fe.index, fe.index))
                 Estimate  Std. Error  t value
    (Intercept)      10.0         2.0      5.0
    x                 2.0         1.0      2.0
    """
    se = np.sqrt(np.diag(vcov.to_numpy()))
    est = fixef.to_numpy()
    return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": est / se}, index=fixef.index)


def fit_repr(name: str, model: Any) -> str:
    """``<name 'formula' fit by REML: nobs=..., logLik=..., sigma=...>`` for a fitted model.

    Examples
    --------
    >>> import mlmprimer as mlm
    >>> from mlmprimer.fitresults import fit_repr
    >>> fit_repr("Fit", mlm.lmer("Yield ~ 1 + (1 | Batch)", mlm.datasets.load("dyestuff")))
    "<Fit 'Yield ~ 1 + (1 | Batch)' fit by REML: nobs=30, logLik=-159.8271, sigma=49.51>"
    """
    kind = "REML" if model.REML else "ML"
    return (
        f"<{name} {model.formula!r} fit by {kind}: nobs={model.nobs}, "
        f"logLik={model.loglik:.4f}, sigma={model.sigma:.4g}"
        f"{', singular' if model.singular else ''}>"
    )
