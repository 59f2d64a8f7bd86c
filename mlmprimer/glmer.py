"""Generalized linear mixed models with lme4's ``glmer``: binary, binomial-count and count outcomes.

:func:`glmer` is four stages, as :func:`mlmprimer.lmer`::

    md = glmer_design(formula, data, family, ...)   # the response, X, Z, the theta layout
    dev = GlmmDeviance(md.design, family, ...)      # pirls: PIRLS, the Laplace / AGQ deviance
    fit = fit_glmm(dev, control)                    # lme4's two optimisation stages, checked
    model = GlmerModel(md, dev, fit, ...)           # glmermodel: the results

The two stages are lme4's: first theta alone, beta found by PIRLS with the random effects
(the ``nAGQ = 0`` deviance); then theta and beta together from there, with the Laplace
(``nAGQ = 1``) or adaptive Gauss-Hermite deviance. Standard errors come from the Hessian of
that deviance (central differences, lme4's default).

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.glmer import glmer
>>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"),
...           family="binomial")
>>> round(m.loglik, 2), m.fixef.round(2).tolist()
(-92.03, [-1.4, -0.99, -1.13, -1.58])
"""

from __future__ import annotations

import dataclasses
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import patsy

from .control import GlmerControl
from .design import Design, build_design, design_warnings, require_random_terms
from .family import Family
from .family import family as make_family
from .formula import ParsedFormula, formula_variables, parse_formula
from .glmermodel import GlmerModel, GlmerWarning
from .optimize import ConvergenceError, SingleThreadedBlas, ThetaFit, minimize
from .pirls import GlmmDeviance, PirlsState, hessian
from .rsyntax import deparse, parse_r
from .rterms import expression_values
from .validate import validate_data

__all__ = [
    "GlmerDesign",
    "GlmmFit",
    "fit_glmm",
    "glmer",
    "glmer_design",
    "glmm_response",
]


# ----------------------------------------------------------------------------------------------
# stage 1: the response and the design
# ----------------------------------------------------------------------------------------------


@dataclass
class GlmmResponse:
    """A GLMM response as R stores it: ``y`` (proportions or counts), trials, how it was given.

    Attributes
    ----------
    y : pandas.Series
        Proportions of successes (binomial) or counts (Poisson); NaN where a column is missing.
    trials : pandas.Series
        Binomial trials per row (``successes + failures`` for ``cbind``; 1 otherwise).
    kind : str
        ``"cbind"``, ``"factor"``, ``"binary"``, ``"proportion"`` or ``"count"``.
    notes : list of str
        Warnings (non-integer counts, ...).
    """

    y: pd.Series
    trials: pd.Series
    kind: str
    notes: list[str] = field(default_factory=list)


def _complete_rows(text: str, data: pd.DataFrame) -> pd.Series:
    cols = [c for c in formula_variables(text) if c in data.columns]
    return data[cols].notna().all(axis=1) if cols else pd.Series(True, index=data.index)


def _rows_text(index: pd.Index, mask: np.ndarray, limit: int = 5) -> str:
    rows = [str(r) for r in index[mask][:limit]]
    more = int(mask.sum()) - len(rows)
    return ", ".join(rows) + (f" and {more} more" if more > 0 else "")


def _values(text: str, data: pd.DataFrame, eval_env: Any, formula: str) -> pd.Series:
    ok = _complete_rows(text, data)
    out = pd.Series(np.nan, index=data.index)
    if ok.any():
        out[ok] = expression_values(text, data.loc[ok], eval_env, "response", formula)
    return out


def _factor_response(name: str, col: pd.Series, fam: Family) -> GlmmResponse:
    if fam.name != "binomial":
        raise ValueError(
            f"the response {name!r} is a factor (or text): a poisson model needs counts"
        )
    if isinstance(col.dtype, pd.CategoricalDtype):
        levels = list(col.cat.remove_unused_categories().cat.categories)
    else:
        levels = sorted(pd.unique(col.dropna()), key=str)
    if len(levels) != 2:
        raise ValueError(
            f"the response {name!r} is a factor with {len(levels)} levels "
            f"({', '.join(map(str, levels[:5]))}): a binomial model needs two (the first, "
            f"{levels[0]!r}, is 0 and the other 1)"
            if levels
            else f"the response {name!r} has no values"
        )
    y = pd.Series(np.where(col.isna(), np.nan, (col != levels[0]).astype(float)), col.index)
    return GlmmResponse(y, pd.Series(1.0, index=col.index), "factor")


def _cbind_response(node: Any, parsed: ParsedFormula, data: pd.DataFrame, env: Any, fam: Family):
    if fam.name != "binomial":
        raise ValueError("cbind(successes, failures) is a binomial response, not a poisson one")
    if len(node.args) != 2:
        raise ValueError(
            f"{parsed.response}: cbind() needs two columns, the successes and the failures"
        )
    texts = [deparse(a) for a in node.args]
    s, f = (_values(t, data, env, parsed.formula) for t in texts)
    notes: list[str] = []
    for text, v in zip(texts, (s, f), strict=True):
        neg = (v < 0).to_numpy()
        if neg.any():
            raise ValueError(
                f"{parsed.response}: {text!r} (the {'successes' if v is s else 'failures'}) is "
                f"negative in rows {_rows_text(data.index, neg)}; counts must be >= 0"
            )
        frac = (v.notna() & (v != np.round(v))).to_numpy()
        if frac.any():
            notes.append(
                f"{parsed.response}: {text!r} is not a whole number in rows "
                f"{_rows_text(data.index, frac)} (non-integer counts in a binomial model)"
            )
    n = s + f
    zero = (n == 0).to_numpy()
    if zero.any():
        raise ValueError(
            f"{parsed.response}: no trials (successes + failures = 0) in rows "
            f"{_rows_text(data.index, zero)}; drop those rows"
        )
    return GlmmResponse(s / n, n, "cbind", notes)


def proportion_notes(name: str, y: np.ndarray, weights: np.ndarray, index: pd.Index) -> list[str]:
    """A note when a proportion times its weights (the trials) is not a whole number (R warns).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlmprimer.glmer import proportion_notes
    >>> proportion_notes("p", np.array([0.5, 0.25]), np.array([2.0, 4.0]), pd.RangeIndex(2))
    []
    """
    k = weights * y
    frac = np.abs(k - np.round(k)) > 1e-7 * np.maximum(1.0, np.abs(k))
    if not frac.any():
        return []
    return [
        f"the response {name!r} times the weights is not a whole number of successes in rows "
        f"{_rows_text(index, frac)} (non-integer #successes in a binomial model); give the "
        "number of trials as weights="
    ]


def glmm_response(
    parsed: ParsedFormula,
    data: pd.DataFrame,
    fam: Family,
    eval_env: Any = None,
) -> GlmmResponse:
    """The response of a GLMM, checked against the family's support.

    Binomial: ``cbind(successes, failures)`` (counts >= 0), a two-level factor or text (the
    first level is 0, as R), a boolean, 0/1 numbers or proportions in [0, 1] (with ``weights``
    the number of trials). Poisson: counts >= 0.

    Raises
    ------
    ValueError
        A response outside the family's support; the message names the column and rows.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.family import family
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.glmer import glmm_response
    >>> df = pd.DataFrame({"s": [1, 2], "n": [3, 4], "g": ["a", "b"]})
    >>> r = glmm_response(parse_formula("cbind(s, n - s) ~ 1 + (1 | g)"), df, family("binomial"))
    >>> r.kind, r.y.round(3).tolist(), r.trials.tolist()
    ('cbind', [0.333, 0.5], [3.0, 4.0])
    >>> glmm_response(parse_formula("n ~ 1 + (1 | g)"), df, family("binomial"))
    Traceback (most recent call last):
    ...
    ValueError: the response 'n' must be 0/1 or proportions in [0, 1] for a binomial ...
    """
    name = parsed.response
    node = parse_r(name)
    if node.kind == "call" and node.value == "cbind":
        return _cbind_response(node, parsed, data, eval_env, fam)
    if node.kind == "name" and name in data.columns:
        col = data[name]
        if pd.api.types.is_bool_dtype(col.dtype):
            y = pd.Series(col.to_numpy(dtype=float, na_value=np.nan), index=data.index)
            if fam.name == "binomial":
                return GlmmResponse(y, pd.Series(1.0, index=data.index), "binary")
        elif not pd.api.types.is_numeric_dtype(col.dtype):
            return _factor_response(name, col, fam)
    y = _values(name, data, eval_env, parsed.formula)
    one = pd.Series(1.0, index=data.index)
    vals = y.to_numpy()
    ok = ~np.isnan(vals)
    if fam.name == "binomial":
        bad = ok & ((vals < 0) | (vals > 1))
        if bad.any():
            raise ValueError(
                f"the response {name!r} must be 0/1 or proportions in [0, 1] for a binomial "
                f"model, but it is {vals[bad][0]:g} in rows {_rows_text(data.index, bad)}: "
                "for counts of successes out of n trials write cbind(successes, n - successes)"
            )
        notes: list[str] = []
        binary = bool(np.all(np.isin(vals[ok], (0.0, 1.0))))
        return GlmmResponse(y, one, "binary" if binary else "proportion", notes)
    neg = ok & (vals < 0)
    if neg.any():
        raise ValueError(
            f"the response {name!r} must be counts >= 0 for a poisson model, but it is "
            f"{vals[neg][0]:g} in rows {_rows_text(data.index, neg)}"
        )
    frac = ok & (vals != np.round(vals))
    notes = []
    if frac.any():
        notes.append(
            f"the response {name!r} is not a whole number in rows "
            f"{_rows_text(data.index, frac)} (non-integer counts in a poisson model)"
        )
    return GlmmResponse(y, one, "count", notes)


@dataclass
class GlmerDesign:
    """Stage 1 of a ``glmer`` fit (lme4's ``glFormula``).

    Attributes
    ----------
    parsed : ParsedFormula
    data : pandas.DataFrame
        The rows used.
    design : Design
        ``y`` the proportions or counts, ``weights`` the prior weights (trials times
        ``weights=``).
    family : Family
    trials : numpy.ndarray
        ``m`` of R's binomial ``aic`` (the trials, or the prior weights when no row has more
        than one trial); ones for a Poisson model.
    response : GlmmResponse
    notes : list of str
    offset_rows : numpy.ndarray or None
    """

    parsed: ParsedFormula
    data: pd.DataFrame
    design: Design
    family: Family
    trials: np.ndarray
    response: GlmmResponse
    notes: list[str] = field(default_factory=list)
    offset_rows: np.ndarray | None = None
    user_weights: np.ndarray | None = None


def glmer_design(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "binomial",
    eval_env: Any = None,
    *,
    link: str | None = None,
    weights: Any = None,
    offset: Any = None,
    control: GlmerControl | None = None,
) -> GlmerDesign:
    """Parse, check the response and the data, drop incomplete rows, build the design.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import glmer_design
    >>> md = glmer_design("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                   load("cbpp"), "binomial")
    >>> md.design.n, md.design.p, md.design.weights[:3].tolist()
    (56, 4, [14.0, 12.0, 9.0])
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    fam = family if isinstance(family, Family) else make_family(family, link)
    parsed = parse_formula(formula)
    require_random_terms(parsed)
    # the response is read first (cbind, factors), then stands in the data as one column
    placeholder = f"`{parsed.response}`" if parse_r(parsed.response).kind != "name" else None
    resp_name = parsed.response
    resp = glmm_response(parsed, data, fam, eval_env)
    frame = data.copy()
    frame[resp_name] = resp.y
    parsed2 = parsed if placeholder is None else dataclasses.replace(parsed, response=placeholder)
    checked = validate_data(parsed2, frame, eval_env, weights=weights, offset=offset, check_y=False)
    rows = checked.data.index
    trials = resp.trials.loc[rows].to_numpy(dtype=float)
    wt = trials if checked.weights is None else trials * checked.weights
    design = build_design(
        parsed2,
        checked.data,
        eval_env,
        weights=wt,
        offset=checked.offset,
        control=control,
        glmm=True,
    )
    design = dataclasses.replace(design, y=resp.y.loc[rows].to_numpy(dtype=float))
    m = trials if np.any(trials > 1) else wt
    if resp.kind == "proportion":
        resp.notes += proportion_notes(parsed.response, design.y, wt, rows)
    if resp_name in data.columns:
        used = checked.data.copy()
        used[resp_name] = data.loc[rows, resp_name]
    else:
        used = checked.data.drop(columns=[resp_name])
    notes = resp.notes + list(checked.notes) + design_warnings(design, control)
    return GlmerDesign(parsed, used, design, fam, m, resp, notes, checked.offset, checked.weights)


# ----------------------------------------------------------------------------------------------
# stage 3: the two optimisation stages
# ----------------------------------------------------------------------------------------------


@dataclass
class GlmmFit:
    """The optimum of a GLMM and what is computed there.

    Attributes
    ----------
    theta, beta : numpy.ndarray
    deviance : float
        The Laplace / AGQ deviance at the optimum (``-2 logLik``).
    state : PirlsState
        The conditional modes at the optimum (beta fixed).
    vcov : numpy.ndarray
        Covariance of beta: ``2 H^{-1}`` (beta block) from the Hessian of the deviance, or
        ``(R_X' R_X)^{-1}`` when that is not positive definite or ``nAGQ = 0``.
    vcov_method : str
        ``"hessian"`` or ``"RX"``.
    stages : list of ThetaFit
    gradient, hess : numpy.ndarray or None
        At the optimum, over (theta, beta).
    """

    theta: np.ndarray
    beta: np.ndarray
    deviance: float
    state: PirlsState
    vcov: np.ndarray
    vcov_method: str
    stages: list[ThetaFit]
    gradient: np.ndarray | None = None
    hess: np.ndarray | None = None


def _rx_vcov(dev: GlmmDeviance, st: PirlsState) -> np.ndarray:
    """``(R_X' R_X)^{-1}`` from the joint PIRLS system at the modes."""
    sol, B = dev.solve(st, with_beta=True)
    p = dev.design.p
    Lx = sol.factor.Ls[B.qr : B.qr + p, B.qr : B.qr + p]
    Linv = np.linalg.inv(Lx)
    return Linv.T @ Linv


def _check_gradient(g: np.ndarray, H: np.ndarray, free: np.ndarray, tol: float) -> None:
    """lme4's ``check.conv.grad``: ``max(min(|R^{-T} g|, |g|)) < tol`` (free parameters)."""
    gf, Hf = g[free], H[np.ix_(free, free)]
    try:
        R = np.linalg.cholesky(Hf)
    except np.linalg.LinAlgError:
        raise ConvergenceError(
            "the fit did not reach a minimum: the Hessian of the deviance at the optimiser's "
            "result is not positive definite (lme4: 'Model is nearly unidentifiable' or "
            "'degenerate Hessian'); simplify the model or rescale the predictors"
        ) from None
    scaled = np.linalg.solve(R, gf)
    worst = float(np.max(np.minimum(np.abs(scaled), np.abs(gf)))) if gf.size else 0.0
    if worst > tol:
        raise ConvergenceError(
            f"the fit did not converge: max|grad| = {worst:.3g} > {tol:g} at the optimiser's "
            "result (lme4's 'Model failed to converge'); rescale the predictors or try "
            "control={'optimizer': 'Nelder_Mead'}"
        )


def fit_glmm(dev: GlmmDeviance, control: GlmerControl | None = None) -> GlmmFit:
    """lme4's two stages: theta with beta in PIRLS, then (theta, beta) by the Laplace/AGQ deviance.

    Raises
    ------
    ConvergenceError
        An optimiser or PIRLS failed, or the optimum fails the gradient check.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import fit_glmm, glmer_design
    >>> from mlmprimer.pirls import GlmmDeviance
    >>> md = glmer_design("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                   load("cbpp"), "binomial")
    >>> fit = fit_glmm(GlmmDeviance(md.design, md.family, md.trials))
    >>> round(fit.deviance, 3), round(float(fit.theta[0]), 3)
    (184.053, 0.642)
    """
    with SingleThreadedBlas():
        return _fit_glmm(dev, GlmerControl() if control is None else control)


def _fit_glmm(dev: GlmmDeviance, ctrl: GlmerControl) -> GlmmFit:
    d = dev.design
    k = d.theta0.size
    opt1 = minimize(dev.stage1, d.theta0, d.lower, ctrl)
    stages = [opt1]
    if dev.nAGQ == 0:
        st = _final_mode(dev, opt1.theta, None)
        return GlmmFit(opt1.theta, st.beta, opt1.deviance, st, _rx_vcov(dev, st), "RX", stages)
    st1 = _final_mode(dev, opt1.theta, None)
    dev.set_start(st1)
    x0 = np.concatenate([opt1.theta, st1.beta])
    lower = np.concatenate([d.lower, np.full(d.p, -np.inf)])
    ctrl2 = dataclasses.replace(ctrl, optimizer=ctrl.optimizer2)
    opt2 = minimize(dev.stage2, x0, lower, ctrl2)
    stages.append(opt2)
    free = np.concatenate([d.lower != 0, np.ones(d.p, bool)])
    for attempt in range(ctrl.grad_restarts + 1):
        g, H = hessian(dev.stage2, opt2.theta, ctrl.hessian_step)
        free |= np.abs(opt2.theta) > ctrl.singular_tol
        if not ctrl.check_conv:
            break
        try:
            _check_gradient(g, H, free, ctrl.grad_tol)
            break
        except ConvergenceError:
            if attempt == ctrl.grad_restarts:
                raise
            # the search stopped short of the optimum: continue from there, in smaller steps
            opt2 = minimize(dev.stage2, opt2.theta, lower, ctrl2, step=ctrl.restart_step / 10)
            stages.append(opt2)
    theta, beta = opt2.theta[:k], opt2.theta[k:]
    st = _final_mode(dev, theta, beta)
    deviance = dev.laplace(st)
    try:
        np.linalg.cholesky(H)
        vc = 2.0 * np.linalg.inv(H)[k:, k:]
        method = "hessian"
    except np.linalg.LinAlgError:
        vc, method = _rx_vcov(dev, st), "RX"
    return GlmmFit(theta, beta, deviance, st, vc, method, stages, g, H)


def _final_mode(dev: GlmmDeviance, theta: np.ndarray, beta: np.ndarray | None) -> PirlsState:
    try:
        return dev.mode(theta, beta)
    except Exception as err:
        raise ConvergenceError(f"PIRLS failed at the optimum: {err}") from err


# ----------------------------------------------------------------------------------------------
# the entry
# ----------------------------------------------------------------------------------------------


def separation_check(dev: GlmmDeviance, tol: float = 1e-8) -> list[str]:
    """A warning when the fixed effects separate a binomial outcome (before the mixed fit).

    The GLM without random effects (theta = 0) is fitted; fitted probabilities that reach 0
    or 1, or no convergence, mean complete or quasi-complete separation (R's glm: "fitted
    probabilities numerically 0 or 1 occurred"): some estimates then drift to infinity.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import glmer_design, separation_check
    >>> from mlmprimer.pirls import GlmmDeviance
    >>> md = glmer_design("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                   load("cbpp"), "binomial")
    >>> separation_check(GlmmDeviance(md.design, md.family, md.trials))
    []
    """
    if dev.family.name != "binomial" or dev.design.p == 0:
        return []
    probe = GlmmDeviance(dev.design, dev.family, dev.trials, rule="exact", pirls_maxit=50)
    try:
        st = probe.mode(np.zeros(dev.design.theta0.size))
        extreme = bool(np.any((st.mu < tol) | (st.mu > 1 - tol)))
    except Exception:  # PIRLS does not converge: the estimates run away
        extreme = True
    if not extreme:
        return []
    return [
        "fitted probabilities numerically 0 or 1 occurred in the model without random "
        "effects: a predictor (or a combination of predictors) separates the outcomes, so "
        "some fixed-effect estimates drift towards infinity and their standard errors are "
        "meaningless; check the cross-tabulation of the outcome with each predictor"
    ]


def _name_in(frame: Any, obj: Any) -> str:
    """The caller's name for ``obj`` (for ``Data:`` in the summary), else ``"data"``."""
    names = [
        k
        for scope in (frame.f_locals, frame.f_globals)
        for k, v in scope.items()
        if v is obj and not k.startswith("_")
    ]
    return names[0] if names else "data"


def _check_nagq(nAGQ: Any, design: Design) -> int:
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, int | np.integer) or nAGQ < 0:
        raise ValueError(f"nAGQ must be a whole number >= 0, not {nAGQ!r}")
    if nAGQ > 1 and (len(design.terms) != 1 or design.terms[0].p != 1):
        raise ValueError(
            "nAGQ > 1 (adaptive Gauss-Hermite quadrature) is only available for models with a "
            "single scalar random-effects term, such as (1 | g); as lme4, use nAGQ = 1 "
            "(Laplace) for this model"
        )
    return int(nAGQ)


def glmer(
    formula: str,
    data: pd.DataFrame,
    family: str = "binomial",
    link: str | None = None,
    nAGQ: int = 1,
    *,
    weights: Any = None,
    offset: Any = None,
    control: GlmerControl | Mapping[str, Any] | None = None,
) -> GlmerModel:
    """Fit a generalized linear mixed model written in lme4's formula syntax (lme4's ``glmer``).

    Parameters
    ----------
    formula : str
        e.g. ``"cbind(incidence, size - incidence) ~ period + (1 | herd)"``; random-effects
        terms as in :func:`mlmprimer.lmer`; ``offset(log(t))`` for exposures.
    data : pandas.DataFrame
    family : {"binomial", "poisson"}
    link : str, optional
        Binomial ``"logit"`` (default), ``"probit"``, ``"cloglog"``; Poisson ``"log"``.
    nAGQ : int, default 1
        1: the Laplace approximation; > 1: adaptive Gauss-Hermite quadrature with that many
        nodes (one scalar random-effects term only); 0: beta estimated inside PIRLS, one
        optimisation stage (fast, approximate).
    weights : array-like, Series or str, optional
        Prior weights; for a proportion response, the number of trials.
    offset : array-like, Series or str, optional
        Added to the linear predictor (and to the formula's ``offset()`` terms).
    control : GlmerControl or mapping, optional
        The optimiser, PIRLS and the convergence checks (lme4's ``glmerControl()``).

    Returns
    -------
    GlmerModel

    Raises
    ------
    ValueError
        A response outside the family's support (negative counts, a factor with three
        levels, proportions above 1, negative ``cbind`` counts), an unknown family or
        link, ``nAGQ > 1`` with more than one scalar random term, and every data problem
        of :func:`mlmprimer.lmer`.
    ConvergenceError
        The fit did not reach the optimum.

    Warns
    -----
    GlmerWarning
        Dropped rows, non-integer counts, few groups, separation (a fixed effect or a group
        whose fitted probabilities are all 0 or 1), singular fits.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import glmer
    >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
    >>> m.varcorr.round(3)[["grp", "sdcor"]].values.tolist()
    [['herd', 0.642]]
    """
    env = patsy.EvalEnvironment.capture(1)
    frame = sys._getframe(1)
    return fit_glmer(
        formula,
        data,
        family,
        link,
        nAGQ,
        weights=weights,
        offset=offset,
        control=control,
        eval_env=env,
        data_name=_name_in(frame, data),
    )


def fit_glmer(
    formula: str,
    data: pd.DataFrame,
    family: str | Family = "binomial",
    link: str | None = None,
    nAGQ: int = 1,
    *,
    weights: Any = None,
    offset: Any = None,
    control: GlmerControl | Mapping[str, Any] | None = None,
    eval_env: Any = None,
    data_name: str = "data",
    stacklevel: int = 3,
) -> GlmerModel:
    """:func:`glmer` with the formula's environment given (the four stages).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import fit_glmer
    >>> m = fit_glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", load("cbpp"))
    >>> m.nobs, m.family, m.link
    (56, 'binomial', 'logit')
    """
    ctrl = GlmerControl.from_arg(control)
    md = glmer_design(
        formula,
        data,
        family,
        eval_env,
        link=link,
        weights=weights,
        offset=offset,
        control=ctrl,
    )
    k = _check_nagq(nAGQ, md.design)
    for note in md.notes:
        warnings.warn(note, GlmerWarning, stacklevel=stacklevel)
    dev = GlmmDeviance(
        md.design,
        md.family,
        md.trials,
        k,
        pirls_tol=ctrl.pirls_tol,
        pirls_maxit=ctrl.pirls_maxit,
        halving_maxit=ctrl.halving_maxit,
        rule=ctrl.pirls_rule,
    )
    for note in separation_check(dev):
        warnings.warn(note, GlmerWarning, stacklevel=stacklevel)
    fit = fit_glmm(dev, ctrl)
    model = GlmerModel(
        md,
        dev,
        fit,
        formula=formula,
        nAGQ=k,
        control=ctrl,
        original_data=data,
        data_name=data_name,
        eval_env=eval_env,
        weights_arg=weights,
        offset_arg=offset,
    )
    for note in model.fit_notes():
        warnings.warn(note, GlmerWarning, stacklevel=stacklevel)
    return model


def refit_glmer(model: GlmerModel, newresp: Any = None) -> GlmerModel:
    """Stages 2 to 4 on the design of ``model`` with a new response (:meth:`GlmerModel.refit`).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import glmer, refit_glmer
    >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
    >>> m2 = refit_glmer(m, m.simulate(1, rng=3)["sim_1"])
    >>> m2.nobs == m.nobs
    True
    """
    md = model.glmer_design
    design = md.design
    if newresp is not None:
        y = _new_glmm_response(model, newresp)
        design = design.with_response(y)
        md = dataclasses.replace(md, design=design)
    old = model.devfun
    dev = GlmmDeviance(
        design,
        md.family,
        md.trials,
        model.nAGQ,
        pirls_tol=old.tol,
        pirls_maxit=old.maxit,
        halving_maxit=old.halving_maxit,
        rule=old.rule,
    )
    fit = fit_glmm(dev, model.control)
    return GlmerModel(
        md,
        dev,
        fit,
        formula=model.formula,
        nAGQ=model.nAGQ,
        control=model.control,
        original_data=model.original_data,
        data_name=model.data_name,
        eval_env=model.eval_env,
        weights_arg=model.weights_arg,
        offset_arg=model.offset_arg,
    )


def _new_glmm_response(model: GlmerModel, newresp: Any) -> np.ndarray:
    """``newresp`` for the rows of ``model``, checked against the family's support."""
    index = model.design.index
    if isinstance(newresp, pd.DataFrame):
        if newresp.shape[1] != 1:
            raise ValueError("refit: newresp must be one column (a Series or an array)")
        newresp = newresp.iloc[:, 0]
    if isinstance(newresp, pd.Series):
        if not newresp.index.equals(index):
            if not (newresp.index.is_unique and index.isin(newresp.index).all()):
                raise ValueError(
                    "refit: the index of newresp does not hold the rows of the fit; pass a "
                    f"Series with the data's index or an array of {model.nobs} values"
                )
            newresp = newresp.reindex(index)
        newresp = newresp.to_numpy(dtype=float, na_value=np.nan)
    try:
        y = np.asarray(newresp, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("refit: newresp must be numeric") from None
    if y.shape != (model.nobs,):
        raise ValueError(f"refit: newresp has {y.size} values but the model uses {model.nobs} rows")
    if not np.all(np.isfinite(y)):
        raise ValueError("refit: newresp has missing or infinite values")
    if model.family == "binomial" and np.any((y < 0) | (y > 1)):
        raise ValueError("refit: a binomial newresp holds proportions in [0, 1]")
    if model.family == "poisson" and np.any(y < 0):
        raise ValueError("refit: a poisson newresp holds counts >= 0")
    return y
