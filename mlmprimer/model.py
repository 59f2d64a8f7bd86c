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

A fit is four stages, each a public function of its own module; :func:`lmer` is just these::

    md = model_design(formula, data, ...)            # design: parse, check, X, Z, theta layout
    devfun = deviance_function(md.design, REML)      # factor: d(theta), the profiled deviance
    opt = optimize_theta(devfun, control)            # optimize: minimise, check convergence
    sol = solve_mixed(devfun, opt.theta)             # solution: beta, b, sigma at theta
    model = LmerModel.from_stages(md, devfun, opt, sol, formula=formula)
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import patsy

from .backends import fit_statsmodels, sm_spec
from .control import LmerControl
from .design import Design, ModelDesign, model_design
from .factor import ProfiledDeviance, deviance_function
from .formula import (
    FormulaError,
    ParsedFormula,
    update_formula,
)
from .optimize import ConvergenceError, ThetaFit, optimize_theta
from .rprint import SINGULAR_MESSAGE, LmerSummary, r_formula
from .rprint import summary as _summary
from .solution import MixedSolution, solve_mixed
from .validate import check_response
from .varcomp import VarComp, variance_components

__all__ = ["lmer", "LmerModel", "LmerWarning", "LmerSummary", "ConvergenceError", "FormulaError"]


class LmerWarning(UserWarning):
    """Warnings about data or fits (dropped rows, few groups, singular fits, ...).

    Examples
    --------
    >>> from mlmprimer.model import LmerWarning
    >>> issubclass(LmerWarning, UserWarning)
    True
    """


_BACKENDS = ("mlmprimer", "statsmodels")


class LmerModel:
    """A fitted linear mixed model (the result of :func:`lmer`).

    Attributes
    ----------
    formula : str
    response : str
    data : pandas.DataFrame
        The rows used (after dropping rows with missing values).
    X : pandas.DataFrame
        Fixed-effects model matrix with lme4's column names.
    REML : bool
    backend : str
    fixef : pandas.Series
    vcov : pandas.DataFrame
    sigma : float
    theta : numpy.ndarray
    loglik, deviance, aic, bic : float
    nobs : int
    ngroups : dict
    varcorr : pandas.DataFrame
        A view of :attr:`varcomp` as R's ``as.data.frame(VarCorr(m))``.
    varcomp : VarComp
        The variance components (covariance, SDs, correlations per term; see
        :mod:`mlmprimer.varcomp`).
    ranef : dict of pandas.DataFrame
    ranef_condsd : dict of pandas.DataFrame
    singular, converged : bool
    npar : int
        Number of estimated parameters (fixed effects, theta and sigma).
    weights : pandas.Series
        Prior weights of the rows used (1 when none were given), as lme4's ``weights(m)``.
    offset : pandas.Series
        The offset of the rows used (``offset()`` terms plus ``offset=``; 0 when none).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
    >>> m.ngroups, m.nobs, round(m.sigma, 2)
    ({'Batch': 6}, 30, 49.51)
    """

    def __init__(
        self,
        *,
        formula: str,
        parsed: ParsedFormula,
        data: pd.DataFrame,
        original_data: pd.DataFrame,
        data_name: str,
        design: Design,
        fit: ThetaFit,
        solution: MixedSolution,
        REML: bool,
        backend: str,
        eval_env: Any,
        control: LmerControl,
        weights_arg: Any = None,
        offset_arg: Any = None,
        offset_rows: np.ndarray | None = None,
        same_design: bool = False,
    ) -> None:
        self.formula = formula
        self.parsed = parsed
        self.response = parsed.response
        self.data = data
        self._original_data = original_data
        self.data_name = data_name
        self.design = design
        self.fit_info = fit
        self.solution = solution
        self.REML = bool(REML)
        self.backend = backend
        self.eval_env = eval_env
        self._control = control
        self.weights_arg = weights_arg
        self.offset_arg = offset_arg
        self._same_design = same_design  # refit() without a new response reuses the design
        self._offset_rows = offset_rows  # offset= for the rows used
        self.weights = pd.Series(
            np.ones(design.n) if design.weights is None else design.weights,
            index=design.index,
            name="weights",
        )
        self.offset = pd.Series(
            np.zeros(design.n) if design.offset is None else design.offset,
            index=design.index,
            name="offset",
        )
        self.theta = np.asarray(solution.theta, dtype=float).copy()
        self.converged = True
        self.nobs = design.n
        self.sigma = float(solution.sigma)
        self.X = pd.DataFrame(design.X, index=design.index, columns=design.xnames)
        self.fixef = pd.Series(solution.beta, index=design.xnames, name="fixef")
        self.vcov = pd.DataFrame(solution.vcov, index=design.xnames, columns=design.xnames)
        self.npar = design.p + design.theta0.size + 1
        crit = float(solution.deviance)
        self.deviance = crit
        self.loglik = -crit / 2.0
        self.aic = crit + 2.0 * self.npar
        self.bic = crit + math.log(self.nobs) * self.npar
        self.singular = bool(np.any(self.theta[design.lower == 0] < control.singular_tol))
        self.ngroups = {}
        for t in design.terms:
            self.ngroups.setdefault(t.group, t.nlevels)
        self.varcomp: VarComp = variance_components(design, self.theta, self.sigma, solution.beta)
        self.varcorr = self.varcomp.frame()
        self.ranef = self._by_group(solution.b)
        self._ranef_condsd: dict[str, pd.DataFrame] | None = None

    @classmethod
    def from_stages(
        cls,
        md: ModelDesign,
        devfun: ProfiledDeviance,
        fit: ThetaFit,
        solution: MixedSolution,
        *,
        formula: str,
        original_data: pd.DataFrame | None = None,
        data_name: str = "data",
        backend: str = "mlmprimer",
        eval_env: Any = None,
        control: LmerControl | None = None,
        weights_arg: Any = None,
        offset_arg: Any = None,
    ) -> LmerModel:
        """The fitted model from the four stages (lme4's ``mkMerMod``).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.design import model_design
        >>> from mlmprimer.factor import deviance_function
        >>> from mlmprimer.model import LmerModel
        >>> from mlmprimer.optimize import optimize_theta
        >>> from mlmprimer.solution import solve_mixed
        >>> f = "Yield ~ 1 + (1 | Batch)"
        >>> md = model_design(f, load("dyestuff"))
        >>> devfun = deviance_function(md.design, REML=True)
        >>> opt = optimize_theta(devfun)
        >>> m = LmerModel.from_stages(md, devfun, opt, solve_mixed(devfun, opt.theta), formula=f)
        >>> round(m.sigma, 2)
        49.51
        """
        return cls(
            formula=formula,
            parsed=md.parsed,
            data=md.data,
            original_data=md.data if original_data is None else original_data,
            data_name=data_name,
            design=md.design,
            fit=fit,
            solution=solution,
            REML=devfun.REML,
            backend=backend,
            eval_env=eval_env,
            control=LmerControl() if control is None else control,
            weights_arg=weights_arg,
            offset_arg=offset_arg,
            offset_rows=md.offset_rows,
        )

    # ---- random effects ----------------------------------------------------------------------

    def _by_group(self, arrays: list[np.ndarray]) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for t, arr in zip(self.design.terms, arrays, strict=True):
            df = pd.DataFrame(arr, index=t.levels.copy(), columns=t.colnames)
            df.index.name = t.group
            if t.group in out:
                out[t.group] = pd.concat([out[t.group], df], axis=1)
            else:
                out[t.group] = df
        return out

    @property
    def ranef_condsd(self) -> dict[str, pd.DataFrame]:
        """Conditional SDs of the random effects, shaped like :attr:`ranef` (lme4's condVar).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> m.ranef_condsd["Batch"].shape
        (6, 1)
        """
        if self._ranef_condsd is None:
            cv = self.solution.conditional_variances()
            sds = [np.sqrt(np.clip(np.diagonal(c, axis1=1, axis2=2), 0, None)) for c in cv]
            self._ranef_condsd = self._by_group(sds)
        return self._ranef_condsd

    # ---- lme4 accessors -------------------------------------------------------------------

    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-group coefficients (fixed effects plus the group's random effects), as R's coef().

        Returns
        -------
        dict of pandas.DataFrame
            One frame per grouping factor; columns are the fixed effects (random-only terms
            first, with a fixed part of 0).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        >>> list(m.coef()["Subject"].columns)
        ['(Intercept)', 'Days']
        """
        out = {}
        for g, modes in self.ranef.items():
            missing = [c for c in modes.columns if c not in self.fixef.index]
            fe = pd.concat([pd.Series(0.0, index=missing), self.fixef])
            val = pd.DataFrame(
                np.tile(fe.to_numpy(), (len(modes), 1)), index=modes.index, columns=fe.index
            )
            for c in modes.columns:
                val[c] = val[c] + modes[c].to_numpy()
            out[g] = val
        return out

    def fitted(self) -> pd.Series:
        """Fitted values ``X beta + Z b`` for the rows used.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> len(m.fitted())
        30
        """
        return pd.Series(self.solution.fitted(), index=self.design.index, name="fitted")

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        """Response minus fitted values (conditional residuals), for the rows used.

        Parameters
        ----------
        type : {"response", "pearson"}, default "response"
            As lme4's ``residuals(m, type=)``: ``"pearson"`` multiplies by the square root of
            the prior weights (the same without weights).
        scaled : bool, default False
            Divide by the residual SD ``sigma`` (lme4's ``scaled = TRUE``).

        Returns
        -------
        pandas.Series

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> abs(round(float(m.residuals().mean()), 6))
        0.0
        """
        if type not in ("response", "pearson"):
            raise ValueError(f"type must be 'response' or 'pearson', not {type!r}")
        r = self.design.y - self.solution.fitted()
        if type == "pearson" and self.design.weights is not None:
            r = r * np.sqrt(self.design.weights)
        if scaled:
            r = r / self.sigma
        return pd.Series(r, index=self.design.index, name="residuals")

    def predict(self, newdata: pd.DataFrame | None = None, re: bool = True) -> pd.Series:
        """Predictions; ``re=False``: population level (see :func:`mlmprimer.prediction.predict`).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        >>> m.predict(m.data.head(2), re=False).round(1).tolist()
        [251.4, 261.9]
        """
        from .prediction import predict

        return predict(self, newdata, re)

    # ---- summaries ------------------------------------------------------------------------

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error and t value of the fixed effects (lme4's ``coef(summary(m))``).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> list(lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff")).coef_table().columns)
        ['Estimate', 'Std. Error', 't value']
        """
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        return pd.DataFrame(
            {
                "Estimate": self.fixef.to_numpy(),
                "Std. Error": se,
                "t value": self.fixef.to_numpy() / se,
            },
            index=self.fixef.index,
        )

    def summary(self, correlation: bool | None = None) -> LmerSummary:
        """A summary laid out like lme4's ``summary(m)``: see :func:`mlmprimer.rprint.summary`.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> "REML criterion at convergence: 319.7" in str(m.summary())
        True
        """
        return _summary(self, correlation)

    def __repr__(self) -> str:
        kind = "REML" if self.REML else "ML"
        return (
            f"<LmerModel {self.formula!r} fit by {kind}: nobs={self.nobs}, "
            f"logLik={self.loglik:.4f}, sigma={self.sigma:.4g}"
            f"{', singular' if self.singular else ''}>"
        )

    def __str__(self) -> str:
        return str(self.summary())

    # ---- broom.mixed -----------------------------------------------------------------------

    def tidy(
        self,
        effects: str | Sequence[str] = ("fixed", "ran_pars"),
        conf_int: bool = False,
        conf_level: float = 0.95,
        conf_method: str = "Wald",
        nsim: int = 500,
        seed: int | np.random.Generator | None = None,
        progress: bool = False,
        ddf: str | None = None,
    ) -> pd.DataFrame:
        """A tidy table of estimates with broom.mixed's column names.

        See :func:`mlmprimer.broom.tidy` for the parameters (effects, intervals and their
        methods ``"Wald"``, ``"profile"``, ``"boot"``; ``ddf`` ``"Satterthwaite"`` or
        ``"Kenward-Roger"`` for df and p-values of the fixed effects) and the columns.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        >>> m.tidy()["term"].tolist()  # doctest: +NORMALIZE_WHITESPACE
        ['(Intercept)', 'Days', 'sd__(Intercept)', 'cor__(Intercept).Days', 'sd__Days',
         'sd__Observation']
        """
        from .broom import tidy

        return tidy(self, effects, conf_int, conf_level, conf_method, nsim, seed, progress, ddf)

    def glance(self) -> pd.DataFrame:
        """One-row summary of the fit (broom.mixed's ``glance``).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> list(m.glance().columns)
        ['nobs', 'sigma', 'logLik', 'AIC', 'BIC', 'REMLcrit', 'df.residual']
        """
        from .broom import glance

        return glance(self)

    def augment(self) -> pd.DataFrame:
        """The data used, with ``.fitted``, ``.resid`` and ``.fixed`` columns.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> list(m.augment().columns)[-3:]
        ['.fitted', '.resid', '.fixed']
        """
        from .broom import augment

        return augment(self)

    # ---- code in other tools ---------------------------------------------------------------

    def r_code(self) -> str:
        """The equivalent lme4 call.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> sleep = load("sleepstudy")
        >>> lmer("Reaction ~ Days + (Days | Subject)", sleep).r_code()
        'lmer(Reaction ~ Days + (Days | Subject), data = sleep)'
        """
        f = r_formula(self.formula)
        reml = "" if self.REML else ", REML = FALSE"
        extra = ""
        for arg, value in (("weights", self.weights_arg), ("offset", self.offset_arg)):
            if value is not None:
                extra += f", {arg} = {value if isinstance(value, str) else arg}"
        return f"lmer({f}, data = {self.data_name}{reml}{extra})"

    def statsmodels_code(self) -> str:
        """The equivalent ``statsmodels`` MixedLM call, as text.

        Raises
        ------
        NotImplementedError
            For models MixedLM cannot express.

        Notes
        -----
        No single choice of MixedLM's optimisers reaches the maximum on every model: the call
        written here uses ``method=["bfgs", "lbfgs"]``, which can stop short (for example on
        ``log_radon ~ uranium + (1 | county)``, by about one log-likelihood unit) while
        ``method="powell"`` fails elsewhere. Always compare the result's ``llf`` with this model's
        ``loglik``; ``lmer(..., backend="statsmodels")`` does that check for you.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> sleep = load("sleepstudy")
        >>> print(lmer("Reaction ~ Days + (Days | Subject)", sleep).statsmodels_code())
        ... # doctest: +ELLIPSIS
        smf.mixedlm("Reaction ~ Days", sleep, groups="Subject", re_formula="~Days").fit(...)
        """
        return sm_spec(self.design, self.parsed).code(self.data_name, self.REML)

    # ---- refits and simulation -------------------------------------------------------------

    def refit(self, newresp: Any = None, REML: bool | None = None) -> LmerModel:
        """The same model fitted again: to a new response, or by another criterion.

        As lme4's ``refit(m, newresp)``, a new response is fitted with the same design (the
        same rows, X, Z, weights and offset); without one the model is fitted again from its
        data.

        Parameters
        ----------
        newresp : array-like or pandas.Series, optional
            One value per row used (``nobs``), on the scale of the response as the formula
            writes it (for ``log(y) ~ ...``, values of ``log(y)``). A Series is matched by its
            index, which may be that of the whole data given to :func:`lmer`.
        REML : bool, optional
            Default: the model's own criterion.

        Returns
        -------
        LmerModel

        Raises
        ------
        ValueError
            A new response of the wrong length or index, not finite or constant.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> round(m.refit(REML=False).loglik, 2)
        -163.66
        >>> doubled = m.refit(2 * m.data["Yield"])
        >>> round(doubled.sigma / m.sigma, 6)
        2.0
        """
        if isinstance(newresp, bool | np.bool_):
            raise TypeError(
                "refit(newresp, REML): the first argument is a new response; for another "
                "criterion write refit(REML=...)"
            )
        reml = self.REML if REML is None else bool(REML)
        if newresp is None and self.backend == "statsmodels" and not self._same_design:
            # the statsmodels cross-check needs the data: fit again from it
            return _fit(
                self.formula,
                self._original_data,
                reml,
                self.backend,
                self._control,
                self.eval_env,
                self.data_name,
                weights=self.weights_arg,
                offset=self.offset_arg,
            )
        y = self.design.y if newresp is None else self._new_response(newresp)
        data = self.data
        if newresp is not None and self.response in data.columns:
            data = data.copy()
            data[self.response] = y
        model = self._fit_design(self.design.with_response(y), data, reml)
        if model.singular:
            warnings.warn(SINGULAR_MESSAGE, LmerWarning, stacklevel=2)
        return model

    def _fit_design(self, design: Design, data: pd.DataFrame, REML: bool) -> LmerModel:
        """Stages 2 to 4 on ``design`` (the same model, formula and call otherwise)."""
        devfun = deviance_function(design, REML)
        opt = optimize_theta(devfun, self._control)
        return LmerModel(
            formula=self.formula,
            parsed=self.parsed,
            data=data,
            original_data=data,
            data_name=self.data_name,
            design=design,
            fit=opt,
            solution=solve_mixed(devfun, opt.theta),
            REML=REML,
            backend="mlmprimer",
            eval_env=self.eval_env,
            control=self._control,
            weights_arg=self.weights_arg,
            offset_arg=self.offset_arg,
            offset_rows=self._offset_rows,
            same_design=True,
        )

    def _new_response(self, newresp: Any) -> np.ndarray:
        """``newresp`` as floats for the rows used, checked."""
        index = self.design.index
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
                    f"Series with the data's index or an array of {self.nobs} values"
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
            if y.ndim != 1 or y.shape[0] != self.nobs:
                raise ValueError(
                    f"refit: newresp has {y.size} values but the model uses {self.nobs} rows"
                )
        notes: list[str] = []
        check_response("newresp", y, index, notes)
        return y

    def update(
        self,
        formula: str | None = None,
        *,
        data: pd.DataFrame | None = None,
        REML: bool | None = None,
        weights: Any = ...,
        offset: Any = ...,
    ) -> LmerModel:
        """The model with a changed formula, data or criterion, as lme4's ``update(m, ...)``.

        Parameters
        ----------
        formula : str, optional
            In R's update syntax, where ``.`` is what the model's formula had there:
            ``". ~ . + x"`` adds a term, ``". ~ . - x"`` removes one, ``"log(.) ~ ."``
            transforms the response (see :func:`mlmprimer.formula.update_formula`).
        data : pandas.DataFrame, optional
            Default: the data the model was fitted to.
        REML : bool, optional
            Default: the model's own criterion.
        weights, offset : optional
            Default: those of the model; ``None`` removes them.

        Returns
        -------
        LmerModel

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        >>> m2 = m.update(". ~ . + I(Days^2)")
        >>> m2.formula
        'Reaction ~ Days + (Days | Subject) + I(Days^2)'
        >>> list(m2.fixef.index)
        ['(Intercept)', 'Days', 'I(Days^2)']
        """
        new_formula = self.formula if formula is None else update_formula(self.formula, formula)
        if weights is ...:
            weights = self.weights_arg
            if self._same_design and self.design.weights is not None:
                weights = pd.Series(self.design.weights, index=self.design.index)
        if offset is ...:
            offset = self.offset_arg
            if self._same_design and self._offset_rows is not None:
                offset = pd.Series(self._offset_rows, index=self.design.index)
        return _fit(
            new_formula,
            self._original_data if data is None else data,
            self.REML if REML is None else bool(REML),
            self.backend,
            self._control,
            self.eval_env,
            self.data_name if data is None else "data",
            weights=weights,
            offset=offset,
        )

    def simulate(self, n: int = 1, rng: np.random.Generator | int | None = None) -> pd.DataFrame:
        """New responses drawn from the fitted model (parametric bootstrap).

        Random effects are drawn afresh from their fitted distribution, as R's
        ``simulate(m)``.

        Parameters
        ----------
        n : int, default 1
            Number of response vectors.
        rng : numpy.random.Generator or int, optional
            Random generator or seed.

        Returns
        -------
        pandas.DataFrame
            Columns ``sim_1`` ... ``sim_n``, one row per observation used.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> m.simulate(3, rng=1).shape
        (30, 3)
        """
        rng = np.random.default_rng(rng)
        d = self.design
        base = d.X @ self.fixef.to_numpy()
        if d.offset is not None:
            base = base + d.offset
        # prior weights: residual SD sigma / sqrt(w_i)
        noise_sd = self.sigma if d.weights is None else self.sigma / np.sqrt(d.weights)
        out = np.empty((d.n, n))
        for k in range(n):
            y = base.copy()
            for t in d.terms:
                u = rng.standard_normal((t.nlevels, t.p)) * self.sigma
                b = u @ t.template(self.theta).T
                y += np.sum(t.Xi * b[t.codes], axis=1)
            y += rng.standard_normal(d.n) * noise_sd
            out[:, k] = y
        return pd.DataFrame(out, index=d.index, columns=[f"sim_{k + 1}" for k in range(n)])

    # ---- lme4's getME ---------------------------------------------------------------------

    #: The names :meth:`getME` knows.
    GETME_NAMES = (
        "X", "Z", "Zt", "Lambda", "Lambdat", "theta", "beta", "u", "b", "y", "mu", "weights",
        "offset", "n", "p", "q", "lower", "cnms", "flist", "sigma", "REML", "devfun",
    )  # fmt: skip

    def getME(self, name: str) -> Any:
        """A part of the fit by lme4's ``getME(m, name)`` names.

        Parameters
        ----------
        name : str
            ``"X"`` (n x p array), ``"Z"``, ``"Zt"`` (sparse, lme4's column order),
            ``"Lambda"``, ``"Lambdat"`` (sparse q x q at the fitted theta), ``"theta"``,
            ``"beta"``, ``"u"`` (spherical random effects), ``"b"`` (``Lambda u``), ``"y"``,
            ``"mu"`` (fitted values), ``"weights"``, ``"offset"`` (arrays of n), ``"n"``,
            ``"p"``, ``"q"``, ``"lower"`` (theta's bounds), ``"cnms"`` (the columns of each
            term, keyed by its label in ``varcorr``), ``"flist"`` (the grouping factors, a
            DataFrame of categoricals), ``"sigma"``, ``"REML"`` and ``"devfun"`` (the profiled
            deviance of the design by the model's criterion, a function of theta).

        Returns
        -------
        object

        Raises
        ------
        ValueError
            An unknown name (the message lists the known ones).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        >>> m.getME("Z").shape, m.getME("q"), m.getME("cnms")
        ((180, 36), 36, {'Subject': ['(Intercept)', 'Days']})
        >>> round(m.getME("devfun")(m.getME("theta")), 3) == round(m.deviance, 3)
        True
        """
        d = self.design
        getters: dict[str, Any] = {
            "X": lambda: d.X.copy(),
            "Z": lambda: d.Z(),
            "Zt": lambda: d.Z().T.tocsc(),
            "Lambda": lambda: d.Lambda(self.theta),
            "Lambdat": lambda: d.Lambda(self.theta).T.tocsc(),
            "theta": lambda: self.theta.copy(),
            "beta": lambda: self.fixef.to_numpy(copy=True),
            "u": lambda: self.solution.u.copy(),
            "b": lambda: d.Lambda(self.theta) @ self.solution.u,
            "y": lambda: d.y.copy(),
            "mu": lambda: self.solution.fitted(),
            "weights": lambda: self.weights.to_numpy(copy=True),
            "offset": lambda: self.offset.to_numpy(copy=True),
            "n": lambda: d.n,
            "p": lambda: d.p,
            "q": lambda: d.q,
            "lower": lambda: d.lower.copy(),
            "cnms": lambda: {tv.name: list(tv.terms) for tv in self.varcomp},
            "flist": self._flist,
            "sigma": lambda: self.sigma,
            "REML": lambda: self.REML,
            "devfun": lambda: deviance_function(d, self.REML),
        }
        if name not in getters:
            raise ValueError(f"getME: unknown name {name!r}; known: {', '.join(self.GETME_NAMES)}")
        return getters[name]()

    def _flist(self) -> pd.DataFrame:
        out = {}
        for t in self.design.terms:
            if t.group not in out:
                out[t.group] = pd.Categorical.from_codes(t.codes, categories=t.levels)
        return pd.DataFrame(out, index=self.design.index)


# ----------------------------------------------------------------------------------------------
# lmer
# ----------------------------------------------------------------------------------------------


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
    data: pd.DataFrame,
    REML: bool = True,
    backend: str = "mlmprimer",
    *,
    control: LmerControl | Mapping[str, Any] | None = None,
    weights: Any = None,
    offset: Any = None,
) -> LmerModel:
    """Fit a linear mixed model written in lme4's formula syntax.

    Parameters
    ----------
    formula : str
        e.g. ``"Reaction ~ Days + (Days | Subject)"``, in R's formula language (``I(x^2)``,
        ``poly(x, 2)``, ``log(y)``, ``offset(z)``, ...; see :mod:`mlmprimer.formula`).
    data : pandas.DataFrame
        Factors are best given as pandas categoricals (their first category is the reference
        level, as R's first level).
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
        :func:`mlmprimer.validate.validate_data`); the message names the column.
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
) -> LmerModel:
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
        warnings.warn(note, LmerWarning, stacklevel=3)
    # raise before fitting for models MixedLM cannot express
    spec = sm_spec(md.design, md.parsed) if backend == "statsmodels" else None
    # 2. the profiled deviance of that design, a function of theta
    devfun = deviance_function(md.design, REML)
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
        warnings.warn(SINGULAR_MESSAGE, LmerWarning, stacklevel=3)
    return model
