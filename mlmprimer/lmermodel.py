"""The results of a linear mixed-model fit: :class:`LmerModel`, as lme4's ``merMod``.

A fitted model holds its design, the optimum of theta and the solution there, and gives
lme4's accessors (``fixef``, ``ranef``, ``VarCorr`` as ``varcorr``, ``getME``, ...) and
broom.mixed's (``tidy``, ``glance``, ``augment``). It is made by :func:`mlmprimer.model.lmer`
(the four stages of a fit); :meth:`LmerModel.refit` and :meth:`LmerModel.update` fit again
through :mod:`mlmprimer.model`.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.model import lmer
>>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
>>> type(m).__module__, m.nobs
('mlmprimer.lmermodel', 30)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .backends import sm_spec
from .control import LmerControl
from .design import Design, ModelDesign
from .factor import ProfiledDeviance, deviance_function
from .fitresults import (
    by_group,
    condsd_by_group,
    fit_repr,
    fit_statistics,
    fixef_table,
    group_coefficients,
)
from .formula import ParsedFormula
from .optimize import ThetaFit
from .rprint import LmerSummary, r_formula
from .rprint import summary as print_summary
from .solution import MixedSolution
from .varcomp import VarComp, variance_components

__all__ = ["LmerModel", "LmerWarning"]


class LmerWarning(UserWarning):
    """Warnings about data or fits (dropped rows, few groups, singular fits, ...).

    Examples
    --------
    >>> from mlmprimer.model import LmerWarning
    >>> issubclass(LmerWarning, UserWarning)
    True
    """


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
        self.original_data = original_data
        self.data_name = data_name
        self.design = design
        self.fit_info = fit
        self.solution = solution
        self.REML = bool(REML)
        self.backend = backend
        self.eval_env = eval_env
        self.control = control
        self.weights_arg = weights_arg
        self.offset_arg = offset_arg
        self.same_design = same_design  # refit() without a new response reuses the design
        self.offset_rows = offset_rows  # offset= for the rows used
        # theta, converged, nobs, sigma, npar, deviance, loglik, aic, bic, singular, ngroups
        vars(self).update(fit_statistics(design, solution, control))
        # the tables (X, fixef, vcov, varcorr, ranef, weights, offset) are built on first access

    # ---- the tables of a fit, each built once on first access ------------------------------

    @cached_property
    def weights(self) -> pd.Series:
        """Prior weights of the rows used (1 when none were given), as lme4's ``weights(m)``."""
        d = self.design
        return pd.Series(
            np.ones(d.n) if d.weights is None else d.weights, index=d.index, name="weights"
        )

    @cached_property
    def offset(self) -> pd.Series:
        """The offset of the rows used (``offset()`` terms plus ``offset=``; 0 when none)."""
        d = self.design
        return pd.Series(
            np.zeros(d.n) if d.offset is None else d.offset, index=d.index, name="offset"
        )

    @cached_property
    def X(self) -> pd.DataFrame:
        """The fixed-effects model matrix with lme4's column names (a copy of the design's)."""
        d = self.design
        return pd.DataFrame(d.X, index=d.index, columns=d.xnames)

    @cached_property
    def fixef(self) -> pd.Series:
        """The fixed effects, indexed by lme4's term names."""
        return pd.Series(self.solution.beta, index=self.design.xnames, name="fixef")

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """The covariance matrix of the fixed effects (lme4's ``vcov(m)``)."""
        names = self.design.xnames
        return pd.DataFrame(self.solution.vcov, index=names, columns=names)

    @cached_property
    def varcomp(self) -> VarComp:
        """The variance components (see :mod:`mlmprimer.varcomp`)."""
        return variance_components(self.design, self.theta, self.sigma, self.solution.beta)

    @cached_property
    def varcorr(self) -> pd.DataFrame:
        """:attr:`varcomp` as R's ``as.data.frame(VarCorr(m))``."""
        return self.varcomp.frame()

    @cached_property
    def _fitted_values(self) -> np.ndarray:
        """``X beta + Z b`` (+ the offset) as an array, computed once."""
        return self.solution.fitted()

    @cached_property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """The conditional modes of the random effects, one frame per grouping factor."""
        return self._by_group(self.solution.b)

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
        return by_group(self.design.terms, arrays)

    @cached_property
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
        return condsd_by_group(self.design.terms, self.solution)

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
        return group_coefficients(self.fixef, self.ranef)

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
        return pd.Series(self._fitted_values, index=self.design.index, name="fitted")

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
        r = self.design.y - self._fitted_values
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
        return fixef_table(self.fixef, self.vcov)

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
        return print_summary(self, correlation)

    def __repr__(self) -> str:
        return fit_repr("LmerModel", self)

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
        from .model import refit_model

        return refit_model(self, newresp, REML)

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
        from .model import update_model

        return update_model(self, formula, data=data, REML=REML, weights=weights, offset=offset)

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
            "devfun": lambda: deviance_function(d, self.REML, self.control.schur_factor),
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
