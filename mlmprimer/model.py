"""Linear mixed models with lme4's formula syntax, estimates and conventions.

:func:`lmer` fits a model by REML (default) or maximum likelihood and returns an
:class:`LmerModel` whose attributes follow lme4 (``fixef``, ``ranef``, ``VarCorr`` as
``varcorr``, ``sigma``, ``logLik`` as ``loglik``, ...) and broom.mixed (``tidy``, ``glance``,
``augment``).

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.model import lmer
>>> sleep = load("sleepstudy")
>>> m = lmer("Reaction ~ Days + (Days | Subject)", sleep)
>>> m.fixef.round(2).to_dict()
{'(Intercept)': 251.41, 'Days': 10.47}
>>> round(m.loglik, 2)
-871.81

The results class is :class:`mlmprimer.lmermodel.LmerModel`; this module is the driver,
:func:`lmer` and the refits of :meth:`LmerModel.refit` and :meth:`LmerModel.update`.

A fit is four stages, each a public function of its own module; :func:`lmer` is just these::

    md = model_design(formula, data, ...)            # design: parse, check, X, Z, theta layout
    devfun = deviance_function(md.design, REML)      # factor: d(theta), the profiled deviance
    opt = optimize_theta(devfun, control)            # optimize: minimise, check convergence
    sol = solve_mixed(devfun, opt.theta)             # solution: beta, b, sigma at theta
    model = LmerModel.from_stages(md, devfun, opt, sol, formula=formula)
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import patsy

from .backends import fit_statsmodels, sm_spec
from .bigfit import SourceModel, is_source, lmer_source
from .control import LmerControl
from .design import Design, model_design
from .factor import deviance_function
from .formula import FormulaError, update_formula
from .lmermodel import LmerModel, LmerWarning
from .optimize import ConvergenceError, SingleThreadedBlas, optimize_theta
from .rprint import SINGULAR_MESSAGE, LmerSummary
from .solution import solve_mixed
from .validate import check_response

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "lmer",
    "refit_model",
    "update_model",
    "LmerModel",
    "LmerWarning",
    "LmerSummary",
    "ConvergenceError",
    "FormulaError",
]

_BACKENDS = ("mlmprimer", "statsmodels")


def _caller_data_name(data: Any, frame: Any) -> str:
    try:
        for scope in (frame.f_locals, frame.f_globals):
            for k, v in scope.items():
                if v is data and not k.startswith("_"):
                    return k
    except Exception:  # pragma: no cover - introspection is best effort
        pass
    return "data"


def lmer(
    formula: str,
    data: pd.DataFrame | str | PathLike[str] | duckdb.DuckDBPyRelation,
    REML: bool = True,
    backend: str = "mlmprimer",
    *,
    control: LmerControl | Mapping[str, Any] | None = None,
    weights: Any = None,
    offset: Any = None,
    family: Any = None,
) -> LmerModel | SourceModel:
    """Fit a linear mixed model written in lme4's formula syntax.

    Parameters
    ----------
    formula : str
        e.g. ``"Reaction ~ Days + (Days | Subject)"``, in R's formula language (``I(x^2)``,
        ``poly(x, 2)``, ``log(y)``, ``offset(z)``, ...; see :mod:`mlmprimer.formula`).
    data : pandas.DataFrame, str, pathlib.Path, duckdb.DuckDBPyRelation or Dask DataFrame
        Factors are best given as pandas categoricals (their first category is the reference
        level, as R's first level). A Parquet or CSV path or a DuckDB relation is fitted by
        SQL aggregation in DuckDB, without loading the rows, and a Dask DataFrame by sums over
        its partitions (:func:`mlmprimer.bigfit.lmer_source`, returning a
        :class:`mlmprimer.bigfit.SourceModel`; ``weights`` then names a column).
    REML : bool, default True
        REML (default, as lme4) or maximum likelihood.
    backend : {"mlmprimer", "statsmodels"}
        ``"statsmodels"`` fits with statsmodels' MixedLM and checks its optimum against this
        package's; it raises if MixedLM fell short (never returns a wrong fit).
    control : LmerControl or mapping, optional
        The optimiser and every threshold, as lme4's ``lmerControl()``: an
        :class:`mlmprimer.control.LmerControl`, or a mapping of some of its fields
        (``{"optimizer": "Nelder_Mead"}``, ``{"maxeval": 500}``).
    weights : array-like, pandas.Series or str, optional
        Prior weights as in lme4: the residual variance of row i is ``sigma^2 / w_i`` and the
        log-likelihood is lme4's. One positive value per row of ``data`` (a Series is matched
        by index), or an expression of the columns such as ``"n"`` or ``"1 / v"``.
    offset : array-like, pandas.Series or str, optional
        A known part of the linear predictor, added to any ``offset()`` terms of the formula;
        given like ``weights``.
    family : None
        Not taken: a binomial or Poisson model is fitted by :func:`mlmprimer.glmer.glmer`, and
        giving ``family`` here raises an error that says so (lme4's ``lmer`` hands such a call
        to ``glmer`` with a warning).

    Returns
    -------
    LmerModel

    Raises
    ------
    FormulaError
        A syntax error in the formula (with its position).
    ValueError
        Unknown columns, infinite values, a non-numeric or constant response, a grouping
        factor with one level, object columns mixing ``1`` and ``"1"``, ... (see
        :func:`mlmprimer.validate.validate_data`); the message names the column. A
        ``family`` argument (use :func:`mlmprimer.glmer.glmer`).
    ConvergenceError
        The optimiser did not converge.
    NotImplementedError
        ``backend="statsmodels"`` with a model MixedLM cannot express.

    Warns
    -----
    LmerWarning
        Rows dropped for missing values, object columns converted, a response that looks
        binary or like counts, text levels R would order differently, grouping factors with
        fewer than 5 levels, groups with a single observation in a random-slope term,
        rank-deficient fixed effects, singular fits.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> pen = load("penicillin")
    >>> m = lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    >>> m.varcorr.round(3)[["grp", "sdcor"]].values.tolist()
    [['plate', 0.847], ['sample', 1.932], ['Residual', 0.55]]
    """
    if family is not None:
        raise ValueError(
            f"lmer() fits linear mixed models and takes no family (got {family!r}): fit a binomial "
            f"or Poisson model with mlmprimer.glmer(formula, data, family={family!r})"
        )
    if is_source(data):  # a file or a DuckDB relation: sums by SQL, rows never loaded
        if backend != "mlmprimer" or offset is not None:
            raise ValueError("a file or DuckDB relation is fitted with no offset= or backend=")
        return lmer_source(formula, data, REML, control=control, weights=weights)
    frame = sys._getframe(1)
    env = patsy.EvalEnvironment.capture(1)
    return _fit(
        formula,
        data,
        REML,
        backend,
        control,
        env,
        _caller_data_name(data, frame),
        weights=weights,
        offset=offset,
    )


def _fit(
    formula: str,
    data: pd.DataFrame,
    REML: bool,
    backend: str,
    control: LmerControl | Mapping[str, Any] | None,
    env: Any,
    data_name: str,
    *,
    weights: Any = None,
    offset: Any = None,
    stacklevel: int = 3,
) -> LmerModel:
    # stacklevel: the frame of the user's call (lmer, LmerModel.update, LmerModel.refit)
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, not {backend!r}")
    ctrl = LmerControl.from_arg(control)
    # 1. the design: parse, check the data (every check), drop incomplete rows, X, Z, theta
    md = model_design(formula, data, env, weights=weights, offset=offset, control=ctrl)
    if backend == "statsmodels" and (
        weights is not None or offset is not None or md.parsed.offsets
    ):
        raise NotImplementedError(
            "statsmodels MixedLM has no prior weights or offsets: use backend='mlmprimer'"
        )
    for note in md.notes:
        warnings.warn(note, LmerWarning, stacklevel=stacklevel)
    # raise before fitting for models MixedLM cannot express
    spec = sm_spec(md.design, md.parsed) if backend == "statsmodels" else None
    # 2. the profiled deviance of that design, a function of theta
    # single-threaded BLAS, as in the optimiser: OpenBLAS's threads cost more than they save
    # here (far more on a busy machine); the reference models' cross-products are the same bits
    with SingleThreadedBlas():
        devfun = deviance_function(md.design, REML, ctrl.schur_factor)
    # 3. minimise it and check the convergence
    opt = optimize_theta(devfun, ctrl)
    theta = opt.theta
    if spec is not None:
        theta = fit_statsmodels(
            md.design, md.parsed, spec, md.data, REML, opt, ctrl.statsmodels_tol
        )
    # 4. the solution at theta, and the fitted model
    model = LmerModel.from_stages(
        md,
        devfun,
        opt,
        solve_mixed(devfun, theta),
        formula=formula,
        original_data=data,
        data_name=data_name,
        backend=backend,
        eval_env=env,
        control=ctrl,
        weights_arg=weights,
        offset_arg=offset,
    )
    if model.singular:
        warnings.warn(SINGULAR_MESSAGE, LmerWarning, stacklevel=stacklevel)
    return model


# ----------------------------------------------------------------------------------------------
# refit and update
# ----------------------------------------------------------------------------------------------


def refit_model(model: LmerModel, newresp: Any = None, REML: bool | None = None) -> LmerModel:
    """The same model fitted to a new response or by another criterion (:meth:`LmerModel.refit`).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer, refit_model
    >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
    >>> round(refit_model(m, REML=False).loglik, 2)
    -163.66
    """
    if isinstance(newresp, bool | np.bool_):
        raise TypeError(
            "refit(newresp, REML): the first argument is a new response; for another "
            "criterion write refit(REML=...)"
        )
    reml = model.REML if REML is None else bool(REML)
    if newresp is None and model.backend == "statsmodels" and not model.same_design:
        # the statsmodels cross-check needs the data: fit again from it
        return _fit(
            model.formula,
            model.original_data,
            reml,
            model.backend,
            model.control,
            model.eval_env,
            model.data_name,
            weights=model.weights_arg,
            offset=model.offset_arg,
            stacklevel=4,
        )
    y = model.design.y if newresp is None else _new_response(model, newresp)
    data = model.data
    if newresp is not None and model.response in data.columns:
        data = data.copy()
        data[model.response] = y
    refitted = _fit_design(model, model.design.with_response(y), data, reml)
    if refitted.singular:
        warnings.warn(SINGULAR_MESSAGE, LmerWarning, stacklevel=3)
    return refitted


def _fit_design(model: LmerModel, design: Design, data: pd.DataFrame, REML: bool) -> LmerModel:
    """Stages 2 to 4 on ``design``, the rest (formula, call, control) as in ``model``."""
    with SingleThreadedBlas():
        devfun = deviance_function(design, REML, model.control.schur_factor)
    opt = optimize_theta(devfun, model.control)
    return LmerModel(
        formula=model.formula,
        parsed=model.parsed,
        data=data,
        original_data=data,
        data_name=model.data_name,
        design=design,
        fit=opt,
        solution=solve_mixed(devfun, opt.theta),
        REML=REML,
        backend="mlmprimer",
        eval_env=model.eval_env,
        control=model.control,
        weights_arg=model.weights_arg,
        offset_arg=model.offset_arg,
        offset_rows=model.offset_rows,
        same_design=True,
    )


def _new_response(model: LmerModel, newresp: Any) -> np.ndarray:
    """``newresp`` as floats for the rows used of ``model``, checked."""
    index = model.design.index
    if isinstance(newresp, pd.DataFrame):
        if newresp.shape[1] != 1:
            raise ValueError("refit: newresp must be one column (a Series or an array)")
        newresp = newresp.iloc[:, 0]
    if isinstance(newresp, pd.Series):
        if newresp.index.equals(index):
            values = newresp
        elif newresp.index.is_unique and index.isin(newresp.index).all():
            values = newresp.reindex(index)
        else:
            raise ValueError(
                "refit: the index of newresp does not hold the rows of the fit; pass a "
                f"Series with the data's index or an array of {model.nobs} values"
            )
        try:
            y = values.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError("refit: newresp must be numeric") from None
    else:
        try:
            y = np.asarray(newresp, dtype=float)
        except (TypeError, ValueError):
            raise ValueError("refit: newresp must be numeric") from None
        if y.ndim != 1 or y.shape[0] != model.nobs:
            raise ValueError(
                f"refit: newresp has {y.size} values but the model uses {model.nobs} rows"
            )
    notes: list[str] = []
    check_response("newresp", y, index, notes)
    return y


def update_model(
    model: LmerModel,
    formula: str | None = None,
    *,
    data: pd.DataFrame | None = None,
    REML: bool | None = None,
    weights: Any = ...,
    offset: Any = ...,
) -> LmerModel:
    """The model with a changed formula, data or criterion (:meth:`LmerModel.update`).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer, update_model
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    >>> update_model(m, ". ~ . - Days").formula
    'Reaction ~ (Days | Subject)'
    """
    new_formula = model.formula if formula is None else update_formula(model.formula, formula)
    if weights is ...:
        weights = model.weights_arg
        if model.same_design and model.design.weights is not None:
            weights = pd.Series(model.design.weights, index=model.design.index)
    if offset is ...:
        offset = model.offset_arg
        if model.same_design and model.offset_rows is not None:
            offset = pd.Series(model.offset_rows, index=model.design.index)
    return _fit(
        new_formula,
        model.original_data if data is None else data,
        model.REML if REML is None else bool(REML),
        model.backend,
        model.control,
        model.eval_env,
        model.data_name if data is None else "data",
        weights=weights,
        offset=offset,
        stacklevel=4,
    )
