"""The results of a ``glmer`` fit: :class:`GlmerModel`, as lme4's ``glmerMod``.

A fitted model holds its design, the optimum of (theta, beta), the conditional modes there and
lme4's Hessian-based covariance of beta, and gives lme4's accessors (``fixef``, ``ranef``,
``VarCorr`` as ``varcorr``, ``predict``, ``residuals``, ``simulate``, ``refit``) and
broom.mixed's (``tidy``, ``glance``, ``augment``). It is made by :func:`mlmprimer.glmer`.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.glmer import glmer
>>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
>>> type(m).__module__, m.nobs, m.ngroups
('mlmprimer.glmermodel', 56, {'herd': 15})
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from .lmermodel import LmerWarning
from .rterms import expression_values
from .varcomp import VarComp, variance_components

if TYPE_CHECKING:
    from .control import GlmerControl
    from .glmer import GlmerDesign, GlmmFit
    from .pirls import GlmmDeviance

__all__ = ["GlmerModel", "GlmerWarning"]

_RESIDUAL_TYPES = ("deviance", "pearson", "response", "working")


class GlmerWarning(LmerWarning):
    """Warnings about the data or a ``glmer`` fit (separation, non-integer counts, ...).

    Examples
    --------
    >>> from mlmprimer.glmermodel import GlmerWarning
    >>> from mlmprimer.lmermodel import LmerWarning
    >>> issubclass(GlmerWarning, LmerWarning)
    True
    """


class _Modes:
    """The conditional modes ``b`` per term (what :mod:`mlmprimer.prediction` reads)."""

    def __init__(self, b: list[np.ndarray]) -> None:
        self.b = b


class GlmerModel:
    """A fitted generalized linear mixed model (the result of :func:`mlmprimer.glmer`).

    Attributes
    ----------
    formula, response : str
    family, link : str
    nAGQ : int
    data : pandas.DataFrame
        The rows used.
    X : pandas.DataFrame
    fixef : pandas.Series
    vcov : pandas.DataFrame
        lme4's ``vcov(m)``: twice the inverse Hessian of the deviance (beta block).
    theta : numpy.ndarray
    varcorr : pandas.DataFrame
        R's ``as.data.frame(VarCorr(m))`` (no residual row).
    varcomp : VarComp
    ranef, ranef_condsd : dict of pandas.DataFrame
    loglik, deviance, aic, bic : float
        ``deviance`` is ``-2 logLik`` (lme4's ``deviance(m)`` of a glmer fit is the sum of
        the deviance residuals instead; see :meth:`deviance_residual_sum`).
    nobs, npar : int
    ngroups : dict
    singular, converged : bool
    weights, offset : pandas.Series
        The prior weights (binomial trials times ``weights=``) and the offset of the rows used.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import glmer
    >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
    >>> round(m.aic, 1), round(m.bic, 1), m.npar
    (194.1, 204.2, 5)
    """

    def __init__(
        self,
        md: GlmerDesign,
        dev: GlmmDeviance,
        fit: GlmmFit,
        *,
        formula: str,
        nAGQ: int,
        control: GlmerControl,
        original_data: pd.DataFrame | None = None,
        data_name: str = "data",
        eval_env: Any = None,
        weights_arg: Any = None,
        offset_arg: Any = None,
    ) -> None:
        d = md.design
        self.formula = formula
        self.parsed = md.parsed
        self.response = md.parsed.response
        self.family = md.family.name
        self.link = md.family.link
        self.nAGQ = int(nAGQ)
        self.design = d
        self.glmer_design = md
        self.data = md.data
        self.original_data = md.data if original_data is None else original_data
        self.data_name = data_name
        self.eval_env = eval_env
        self.control = control
        self.weights_arg = weights_arg
        self.offset_arg = offset_arg
        self.offset_rows = md.offset_rows
        self.devfun = dev
        self.fit_info = fit
        self.converged = True
        self.nobs = d.n
        self.theta = np.asarray(fit.theta, dtype=float).copy()
        self.X = pd.DataFrame(d.X, index=d.index, columns=d.xnames)
        self.fixef = pd.Series(fit.beta, index=d.xnames, name="fixef")
        self.vcov = pd.DataFrame(fit.vcov, index=d.xnames, columns=d.xnames)
        self.vcov_method = fit.vcov_method
        self.weights = pd.Series(dev.wt, index=d.index, name="weights")
        self.offset = pd.Series(dev.offset, index=d.index, name="offset")
        self.npar = d.p + d.theta0.size
        self.deviance = float(fit.deviance)
        self.loglik = -self.deviance / 2.0
        self.aic = self.deviance + 2.0 * self.npar
        self.bic = self.deviance + math.log(self.nobs) * self.npar
        self.singular = bool(np.any(self.theta[d.lower == 0] < control.singular_tol))
        self.ngroups: dict[str, int] = {}
        for t in d.terms:
            self.ngroups.setdefault(t.group, t.nlevels)
        self.sigma = 1.0
        self.varcomp: VarComp = variance_components(d, self.theta, 1.0, fit.beta)
        vc = self.varcomp.frame()
        self.varcorr = vc[vc["grp"] != "Residual"].reset_index(drop=True)
        st = fit.state
        self.u = st.u
        self.eta = st.eta
        self.mu = st.mu
        b, off = [], 0
        for t in d.terms:
            ut = st.u[off : off + t.q].reshape(t.nlevels, t.p)
            b.append(ut @ t.template(self.theta).T)
            off += t.q
        self.solution = _Modes(b)
        self.ranef = self._by_group(b)
        self._ranef_condsd: dict[str, pd.DataFrame] | None = None

    # ---- random effects ----------------------------------------------------------------------

    def _by_group(self, arrays: list[np.ndarray]) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for t, arr in zip(self.design.terms, arrays, strict=True):
            df = pd.DataFrame(arr, index=t.levels.copy(), columns=t.colnames)
            df.index.name = t.group
            out[t.group] = pd.concat([out[t.group], df], axis=1) if t.group in out else df
        return out

    @property
    def ranef_condsd(self) -> dict[str, pd.DataFrame]:
        """Conditional SDs of the random effects (lme4's ``condVar``), shaped like ``ranef``.

        From ``Lambda (Lambda' Z' W Z Lambda + I)^{-1} Lambda'`` at the modes.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> m.ranef_condsd["herd"].shape
        (15, 1)
        """
        if self._ranef_condsd is None:
            sol = self.devfun.solution(self.fit_info.state, with_beta=False)
            cv = dataclasses.replace(sol, sigma=1.0).conditional_variances()
            sds = [np.sqrt(np.clip(np.diagonal(c, axis1=1, axis2=2), 0, None)) for c in cv]
            self._ranef_condsd = self._by_group(sds)
        return self._ranef_condsd

    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-group coefficients (fixed effects plus the group's modes), as R's ``coef(m)``.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> m.coef()["herd"].shape
        (15, 4)
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

    # ---- fitted values, predictions, residuals ------------------------------------------------

    def fitted(self) -> pd.Series:
        """Fitted means on the response scale (probabilities or expected counts), lme4's ``fitted``.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> bool(m.fitted().between(0, 1).all())
        True
        """
        return pd.Series(self.mu, index=self.design.index, name="fitted")

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        type: str = "link",
        re: bool = True,
        allow_new_levels: bool = False,
    ) -> pd.Series:
        """Predictions on the link or the response scale (lme4's ``predict``).

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Default: the rows used. For new data the formula's ``offset()`` terms are added
            but not an ``offset=`` argument, as lme4's ``predict``.
        type : {"link", "response"}
        re : bool, default True
            Include the random effects (``False``: population level, lme4's ``re.form = NA``).
        allow_new_levels : bool, default False
            With ``re=True``, levels of a grouping factor not in the fit get random effects
            of 0; without it they raise.

        Raises
        ------
        ValueError
            A level not seen in the fit (naming the factor and the level), an unknown type.

        Examples
        --------
        >>> import pandas as pd
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> new = pd.DataFrame({"period": pd.Categorical(["1"], categories=["1", "2", "3", "4"])})
        >>> m.predict(new, type="response", re=False).round(3).tolist()
        [0.198]
        """
        from .prediction import predict as predict_link  # noqa: PLC0415 - imports lmer

        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', not {type!r}")
        if newdata is None:
            eta = pd.Series(self.eta, index=self.design.index, name="predicted")
            if not re:
                eta = pd.Series(
                    self.design.X @ self.fixef.to_numpy() + self.offset.to_numpy(),
                    index=self.design.index,
                    name="predicted",
                )
        else:
            if re and not allow_new_levels:
                self._check_levels(newdata)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LmerWarning)
                eta = predict_link(self, newdata, re=re)  # type: ignore[arg-type]
            if isinstance(self.offset_arg, str):
                # as lme4, the offset= argument is not applied to new data (offset() terms are)
                eta = eta - expression_values(
                    self.offset_arg, newdata.reset_index(drop=True), self.eval_env, "offset"
                )
        if type == "response":
            fam = self.glmer_design.family
            return pd.Series(fam.linkinv(eta.to_numpy()), index=eta.index, name="predicted")
        return eta

    def _check_levels(self, newdata: pd.DataFrame) -> None:
        for t in self.design.terms:
            if not all(f in newdata.columns for f in t.factors):
                continue
            if len(t.factors) == 1:
                keys = pd.Index(newdata[t.factors[0]])
            else:
                keys = pd.Index(newdata[list(t.factors)].astype(str).agg(":".join, axis=1))
            known = set(map(str, t.levels))
            new = [k for k in pd.unique(keys.astype(str)) if k not in known]
            if new:
                raise ValueError(
                    f"newdata has levels of the grouping factor {t.group!r} the fit did not "
                    f"see: {', '.join(new[:5])}{', ...' if len(new) > 5 else ''}; pass "
                    "allow_new_levels=True to give them random effects of 0, or re=False"
                )

    def residuals(self, type: str = "deviance") -> pd.Series:
        """Residuals of the rows used, lme4's ``residuals(m, type)`` (default deviance).

        * ``"deviance"``: ``sign(y - mu) sqrt(d_i)``;
        * ``"pearson"``: ``(y - mu) sqrt(w_i / V(mu_i))``;
        * ``"response"``: ``y - mu``;
        * ``"working"``: ``(y - mu) / mu_eta(eta_i)``.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> r = m.residuals()
        >>> bool(abs((r**2).sum() - m.deviance_residual_sum()) < 1e-8)
        True
        """
        if type not in _RESIDUAL_TYPES:
            raise ValueError(f"type must be one of {_RESIDUAL_TYPES}, not {type!r}")
        fam = self.glmer_design.family
        y, mu, wt = self.design.y, self.mu, self.weights.to_numpy()
        if type == "deviance":
            r = np.sign(y - mu) * np.sqrt(np.clip(fam.dev_resids(y, mu, wt), 0, None))
        elif type == "pearson":
            r = (y - mu) * np.sqrt(wt / fam.variance(mu))
        elif type == "response":
            r = y - mu
        else:
            r = (y - mu) / fam.mu_eta(self.eta)
        return pd.Series(r, index=self.design.index, name="residuals")

    def deviance_residual_sum(self) -> float:
        """The sum of squared deviance residuals at the modes (what lme4's ``deviance(m)`` gives).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> m.deviance_residual_sum() < m.deviance
        True
        """
        return float(np.sum(self.fit_info.state.devres))

    # ---- tables --------------------------------------------------------------------------------

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value, Pr(>|z|) of the fixed effects (lme4's summary table).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> list(m.coef_table().columns)
        ['Estimate', 'Std. Error', 'z value', 'Pr(>|z|)']
        """
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        est = self.fixef.to_numpy()
        z = est / se
        return pd.DataFrame(
            {
                "Estimate": est,
                "Std. Error": se,
                "z value": z,
                "Pr(>|z|)": 2.0 * stats.norm.sf(np.abs(z)),
            },
            index=self.fixef.index,
        )

    def summary(self, correlation: bool | None = None) -> Any:
        """A summary laid out like lme4's ``summary(m)`` of a glmer fit.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> print(m.summary())  # doctest: +ELLIPSIS
        Generalized linear mixed model fit by maximum likelihood (Laplace
          Approximation) [glmerMod]
         Family: binomial  ( logit )
        ...
        """
        from .rprint import glmer_summary  # noqa: PLC0415

        return glmer_summary(self, correlation)

    def __repr__(self) -> str:
        return (
            f"<GlmerModel {self.formula!r} ({self.family}, {self.link}), nobs={self.nobs}, "
            f"logLik={self.loglik:.4f}>"
        )

    def __str__(self) -> str:
        return str(self.summary())

    def fit_notes(self) -> list[str]:
        """Warnings the fit deserves: singular fit, groups or columns with separation.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> m.fit_notes()
        []
        """
        from .rprint import SINGULAR_MESSAGE  # noqa: PLC0415

        notes = []
        if self.singular:
            notes.append(SINGULAR_MESSAGE)
        notes.extend(separation_notes(self))
        return notes

    # ---- simulation and refits ----------------------------------------------------------------

    def simulate(self, n: int = 1, rng: np.random.Generator | int | None = None) -> pd.DataFrame:
        """New responses from the fitted model, random effects drawn afresh (R's ``simulate``).

        Returns
        -------
        pandas.DataFrame
            Columns ``sim_1`` ... ``sim_n`` on the response's scale: 0/1, proportions of the
            trials (``cbind`` or ``weights=``), or counts.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> s = m.simulate(2, rng=1)
        >>> s.shape, bool(s.ge(0).all().all() and s.le(1).all().all())
        ((56, 2), True)
        """
        gen = np.random.default_rng(rng)
        d, fam = self.design, self.glmer_design.family
        base = d.X @ self.fixef.to_numpy() + self.offset.to_numpy()
        trials = self.glmer_design.response.trials.loc[d.index].to_numpy(dtype=float)
        if self.family == "binomial" and self.glmer_design.response.kind == "proportion":
            trials = self.weights.to_numpy()
        out = np.empty((d.n, n))
        for k in range(n):
            u = gen.standard_normal(d.q)
            mu = fam.linkinv(base + self.devfun.re_part(self.theta, u))
            out[:, k] = fam.sample(mu, trials, gen)
        return pd.DataFrame(out, index=d.index, columns=[f"sim_{k + 1}" for k in range(n)])

    def refit(self, newresp: Any = None) -> GlmerModel:
        """The same model fitted to a new response (lme4's ``refit(m, newresp)``).

        ``newresp`` is on the scale of :meth:`simulate` (0/1, proportions of the same
        trials, or counts), one value per row used.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> round(m.refit().loglik - m.loglik, 6)
        0.0
        """
        from .glmer import refit_glmer  # noqa: PLC0415

        return refit_glmer(self, newresp)

    # ---- broom.mixed ---------------------------------------------------------------------------

    def tidy(
        self,
        effects: str | Sequence[str] = ("fixed", "ran_pars"),
        conf_int: bool = False,
        conf_level: float = 0.95,
        exponentiate: bool = False,
    ) -> pd.DataFrame:
        """broom.mixed's ``tidy``: fixed effects with z tests, random-effect SDs and correlations.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> m.tidy()["term"].tolist()
        ['(Intercept)', 'period2', 'period3', 'period4', 'sd__(Intercept)']
        """
        from .broom import tidy_glmer  # noqa: PLC0415

        return tidy_glmer(self, effects, conf_int, conf_level, exponentiate)

    def glance(self) -> pd.DataFrame:
        """broom.mixed's ``glance``: ``nobs, sigma, logLik, AIC, BIC, deviance, df.residual``.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> list(m.glance().columns)
        ['nobs', 'sigma', 'logLik', 'AIC', 'BIC', 'deviance', 'df.residual']
        """
        return pd.DataFrame(
            {
                "nobs": [self.nobs],
                "sigma": [1.0],
                "logLik": [self.loglik],
                "AIC": [self.aic],
                "BIC": [self.bic],
                "deviance": [self.deviance_residual_sum()],
                "df.residual": [self.nobs - self.npar],
            }
        )

    def augment(self) -> pd.DataFrame:
        """The data with ``.fitted`` (link scale, as broom.mixed), ``.resid`` (deviance),
        ``.fixed`` (population-level linear predictor) and ``.mu`` (response scale).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.glmer import glmer
        >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
        >>> list(m.augment().columns[-4:])
        ['.fitted', '.resid', '.fixed', '.mu']
        """
        out = self.data.copy()
        out[".fitted"] = self.predict(type="link").to_numpy()
        out[".resid"] = self.residuals("deviance").to_numpy()
        out[".fixed"] = self.predict(type="link", re=False).to_numpy()
        out[".mu"] = self.mu
        return out


def separation_notes(model: GlmerModel) -> list[str]:
    """Warnings for groups (of the largest grouping factor) whose outcomes are all 0 or all 1.

    Their conditional modes are pulled towards the mean; with many such groups the variance
    of the random effect is poorly determined. (Separation by the fixed effects is checked
    before a fit: :func:`mlmprimer.glmer.separation_check`.)

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import glmer
    >>> from mlmprimer.glmermodel import separation_notes
    >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
    >>> separation_notes(m)
    []
    """
    if model.family != "binomial":
        return []
    notes = []
    y = model.design.y
    for t in model.design.terms:
        total = np.bincount(t.codes, weights=y * model.weights.to_numpy(), minlength=t.nlevels)
        count = np.bincount(t.codes, weights=model.weights.to_numpy(), minlength=t.nlevels)
        zero = np.flatnonzero(total == 0)
        full = np.flatnonzero(np.isclose(total, count))
        for label, idx in (("0", zero), ("1", full)):
            if len(idx) == len(count):
                continue
            if len(idx):
                levels = ", ".join(str(t.levels[i]) for i in idx[:5])
                more = f" and {len(idx) - 5} more" if len(idx) > 5 else ""
                notes.append(
                    f"{len(idx)} group(s) of {t.group!r} have all outcomes {label} "
                    f"({levels}{more}): their random effects are shrunk towards the mean, "
                    "and the group variance may be poorly determined"
                )
        break  # the largest grouping factor
    return notes
