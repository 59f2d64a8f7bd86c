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
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from .engine import (
    ConvergenceError,
    Design,
    MixedSolution,
    TermBlock,
    ThetaFit,
    build_design,
    fit_theta,
    profiled_deviance,
    solve_mixed,
)
from .formula import (
    FormulaError,
    ParsedFormula,
    check_columns,
    formula_variables,
    lme4_name,
    parse_formula,
)

__all__ = ["lmer", "LmerModel", "LmerWarning", "LmerSummary", "ConvergenceError", "FormulaError"]


class LmerWarning(UserWarning):
    """Warnings about data or fits (dropped rows, few groups, singular fits, ...).

    Examples
    --------
    >>> from mlmprimer.model import LmerWarning
    >>> issubclass(LmerWarning, UserWarning)
    True
    """


SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"
_BACKENDS = ("mlmprimer", "statsmodels")
#: The optimiser settings ``lmer(control=...)`` accepts (keyword arguments of ``fit_theta``).
_CONTROL_SETTINGS = frozenset({"maxeval", "ftol_abs", "xtol_abs"})


# ----------------------------------------------------------------------------------------------
# number formatting in R's style
# ----------------------------------------------------------------------------------------------


def _decimals(x: float, digits: int) -> int:
    """Decimals R's format() needs to show x to `digits` significant digits."""
    if not np.isfinite(x) or x == 0:
        return 0
    mag = math.floor(math.log10(abs(x)))
    top = max(0, digits - 1 - mag)
    rounded = round(x, top)
    for d in range(top + 1):
        if abs(round(x, d) - rounded) < 1e-12 * max(1.0, abs(x)):
            return d
    return top


def _fmt_col(values: Sequence[float], digits: int = 4) -> list[str]:
    """Format a numeric column with common decimals, as R's format(x, digits=)."""
    vals = [float(v) for v in values]
    finite = [v for v in vals if np.isfinite(v)]
    dec = max((_decimals(v, digits) for v in finite), default=0)
    return [f"{v:.{dec}f}" if np.isfinite(v) else "NA" for v in vals]


def _zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    mx = float(np.max(np.abs(x))) if x.size else 0.0
    if mx > 0:
        return np.round(x, max(0, digits - int(math.ceil(math.log10(mx)))))
    return np.round(x, digits)


def _table(rows: list[list[str]], align: Sequence[str], indent: str = "") -> str:
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [
            c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align, strict=True)
        ]
        lines.append((indent + " ".join(cells)).rstrip())
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# the fitted model
# ----------------------------------------------------------------------------------------------


@dataclass
class LmerSummary:
    """lme4's ``summary(m)``: ``str()`` gives the text laid out as R prints it.

    Attributes
    ----------
    text : str
    coefficients : pandas.DataFrame
        Estimate, Std. Error, t value.
    varcorr : pandas.DataFrame

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
    >>> print(m.summary())  # doctest: +ELLIPSIS
    Linear mixed model fit by REML ['lmerMod']
    Formula: Yield ~ 1 + (1 | Batch)
    ...
    """

    text: str
    coefficients: pd.DataFrame
    varcorr: pd.DataFrame

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def _level_positions(levels: pd.Index, keys: pd.Index) -> np.ndarray:
    """Positions of ``keys`` among a grouping factor's ``levels`` (-1 for a level not seen).

    Keys that do not match as they are are matched by their text, so ``308`` finds the level
    ``"308"`` of a factor read as strings.
    """
    idx = levels.get_indexer(keys)
    missing = idx < 0
    if missing.any():
        by_text = levels.astype(str).get_indexer(keys[missing].astype(str))
        idx[missing] = by_text
    return idx


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
    ranef : dict of pandas.DataFrame
    ranef_condsd : dict of pandas.DataFrame
    singular, converged : bool
    npar : int
        Number of estimated parameters (fixed effects, theta and sigma).

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
        control: dict[str, Any] | None,
    ) -> None:
        self.formula = formula
        self.parsed = parsed
        self.response = parsed.response
        self.data = data
        self._original_data = original_data
        self._data_name = data_name
        self.design = design
        self.fit_info = fit
        self.solution = solution
        self.REML = bool(REML)
        self.backend = backend
        self._eval_env = eval_env
        self._control = control
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
        self.singular = bool(np.any(self.theta[design.lower == 0] < 1e-4))
        self.ngroups = {}
        for t in design.terms:
            self.ngroups.setdefault(t.group, t.nlevels)
        self._term_names = _unique_names([t.group for t in design.terms])
        self.varcorr = self._make_varcorr()
        self.ranef = self._by_group(solution.b)
        self._ranef_condsd: dict[str, pd.DataFrame] | None = None

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

    def _term_parameters(self) -> list[tuple[TermBlock, str, np.ndarray, np.ndarray, np.ndarray]]:
        """``(term, name, covariance, sds, correlations)`` of each random-effects term.

        In lme4's order; ``name`` is the term's label in ``varcorr`` and ``correlations`` has
        its lower triangle filled (NaN where a standard deviation is 0).
        """
        s2 = self.sigma**2
        out = []
        for t, name in zip(self.design.terms, self._term_names, strict=True):
            T = t.template(self.theta)
            cov = s2 * (T @ T.T)
            sd = np.sqrt(np.diag(cov))
            corr = np.full((t.p, t.p), np.nan)
            for i in range(t.p):
                for j in range(i):
                    denom = sd[i] * sd[j]
                    if denom > 0:
                        corr[i, j] = cov[i, j] / denom
            out.append((t, name, cov, sd, corr))
        return out

    def _make_varcorr(self) -> pd.DataFrame:
        rows = []
        for t, name, cov, sd, corr in self._term_parameters():
            for i, nm in enumerate(t.colnames):
                rows.append((name, nm, None, cov[i, i], sd[i]))
            for j in range(t.p):
                for i in range(j + 1, t.p):
                    rows.append((name, t.colnames[j], t.colnames[i], cov[i, j], corr[i, j]))
        rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        out = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
        for c in ("grp", "var1", "var2"):
            out[c] = out[c].astype("str")
        return out

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

    def residuals(self) -> pd.Series:
        """Response minus fitted values (conditional residuals), for the rows used.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> abs(round(float(m.residuals().mean()), 6))
        0.0
        """
        return pd.Series(
            self.design.y - self.solution.fitted(), index=self.design.index, name="residuals"
        )

    def predict(self, newdata: pd.DataFrame | None = None, re: bool = True) -> pd.Series:
        """Predictions; with ``re=False`` population-level (fixed effects only).

        Levels of a grouping factor not seen in the fit get random effects of zero.

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Default: the rows used in the fit.
        re : bool, default True
            Include the random effects.

        Returns
        -------
        pandas.Series

        Examples
        --------
        >>> import pandas as pd
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        >>> new = pd.DataFrame({"Days": [0, 10], "Subject": ["308", "999"]})
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     p = m.predict(new)
        >>> p.round(1).tolist()  # 999 is a new subject: population line
        [253.7, 356.1]
        >>> print(caught[0].message)  # doctest: +ELLIPSIS
        1 row(s) of newdata have levels of 'Subject' the fit did not see (999): ...
        """
        if newdata is None:
            if re:
                return self.fitted().rename("predicted")
            return pd.Series(
                self.design.X @ self.fixef.to_numpy(), index=self.design.index, name="predicted"
            )
        if not isinstance(newdata, pd.DataFrame):
            raise TypeError("newdata must be a pandas DataFrame")
        self._check_newdata(newdata, re)
        (mat,) = patsy.build_design_matrices(
            [self.design.fixed_info], newdata, NA_action="raise", return_type="dataframe"
        )
        Xn = pd.DataFrame(np.asarray(mat), columns=[lme4_name(c) for c in mat.columns])
        Xn = Xn[self.design.xnames]
        pred = Xn.to_numpy() @ self.fixef.to_numpy()
        if re:
            for t, b in zip(self.design.terms, self.solution.b, strict=True):
                for f in t.factors:
                    if f not in newdata.columns:
                        raise ValueError(
                            f"newdata has no column {f!r} (grouping factor {t.group!r}); "
                            "use re=False for population-level predictions"
                        )
                (Xi,) = patsy.build_design_matrices([t.design_info], newdata, NA_action="raise")
                Xi = np.asarray(Xi)
                if len(t.factors) == 1:
                    keys = pd.Index(newdata[t.factors[0]])
                else:
                    keys = pd.Index(
                        newdata[list(t.factors)].astype(str).agg(":".join, axis=1).to_numpy()
                    )
                idx = _level_positions(t.levels, keys)
                seen = idx >= 0
                if not seen.all():
                    unseen = pd.unique(keys[~seen].astype(str))
                    warnings.warn(
                        f"{(~seen).sum()} row(s) of newdata have levels of {t.group!r} the fit "
                        f"did not see ({', '.join(unseen[:5])}"
                        f"{', ...' if len(unseen) > 5 else ''}): their {t.group} effects are 0, "
                        "so they get the population-level prediction",
                        LmerWarning,
                        stacklevel=2,
                    )
                contrib = np.zeros(len(newdata))
                contrib[seen] = np.sum(Xi[seen] * b[idx[seen]], axis=1)
                pred = pred + contrib
        return pd.Series(pred, index=newdata.index, name="predicted")

    def _check_newdata(self, newdata: pd.DataFrame, re: bool) -> None:
        """Name a data column the predictions need that ``newdata`` lacks or has NaN in."""
        parts = [self.parsed.fixed] + [t.expr for t in self.parsed.random if re]
        for part in parts:
            for name in formula_variables(part):
                if name not in self.data.columns:
                    continue  # a name from the caller's namespace
                if name not in newdata.columns:
                    raise ValueError(
                        f"newdata has no column {name!r}, which the formula {self.formula!r} uses"
                    )
                if newdata[name].isna().any():
                    raise ValueError(f"newdata has missing values in column {name!r}")

    # ---- summaries ------------------------------------------------------------------------

    def _coef_table(self) -> pd.DataFrame:
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        return pd.DataFrame(
            {
                "Estimate": self.fixef.to_numpy(),
                "Std. Error": se,
                "t value": self.fixef.to_numpy() / se,
            },
            index=self.fixef.index,
        )

    def summary(self) -> LmerSummary:
        """A summary laid out like lme4's ``summary(m)``.

        Returns
        -------
        LmerSummary
            ``print()`` it for the text.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        >>> "REML criterion at convergence: 1743.6" in str(m.summary())
        True
        """
        lines = []
        if self.REML:
            lines.append("Linear mixed model fit by REML ['lmerMod']")
        else:
            lines.append("Linear mixed model fit by maximum likelihood  ['lmerMod']")
        lines.append(f"Formula: {self.formula}")
        lines.append(f"   Data: {self._data_name}")
        lines.append("")
        if self.REML:
            lines.append(f"REML criterion at convergence: {round(self.deviance, 1):.7g}")
        else:
            vals = [f"{v:.1f}" for v in (self.aic, self.bic, self.loglik, self.deviance)]
            vals.append(str(self.nobs - self.npar))
            heads = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
            w = [max(len(h), len(v), 8) + 1 for h, v in zip(heads, vals, strict=True)]
            lines.append("".join(h.rjust(k) for h, k in zip(heads, w, strict=True)) + " ")
            lines.append("".join(v.rjust(k) for v, k in zip(vals, w, strict=True)) + " ")
        lines.append("")
        lines.append("Scaled residuals: ")
        rq = np.quantile(self.residuals().to_numpy() / self.sigma, [0, 0.25, 0.5, 0.75, 1])
        rq = _zapsmall(rq, 5)
        cells = _fmt_col(rq, 4)
        w = max(max(len(c) for c in cells), 6)
        lines.append(" ".join(h.rjust(w) for h in ["Min", "1Q", "Median", "3Q", "Max"]) + " ")
        lines.append(" ".join(c.rjust(w) for c in cells) + " ")
        lines.append("")
        lines.append("Random effects:")
        lines.append(self._varcorr_text())
        grp = "; ".join(f"{g}, {k}" for g, k in self.ngroups.items())
        lines.append(f"Number of obs: {self.nobs}, groups:  {grp}")
        lines.append("")
        ct = self._coef_table()
        if len(ct):
            lines.append("Fixed effects:")
            est_se = _fmt_col(list(ct["Estimate"]) + list(ct["Std. Error"]), 4)
            k = len(ct)
            tv = [f"{v:.3f}" for v in ct["t value"]]
            rows = [["", "Estimate", "Std. Error", "t value"]]
            for i, nm in enumerate(ct.index):
                rows.append([nm, est_se[i], est_se[k + i], tv[i]])
            lines.append(_table(rows, "lrrr"))
        else:
            lines.append("No fixed effect coefficients")
        if self.singular:
            lines.append("optimizer (nloptwrap) convergence code: 0 (OK)")
            lines.append(SINGULAR_MESSAGE)
        return LmerSummary("\n".join(lines) + "\n", ct, self.varcorr.copy())

    def _varcorr_text(self) -> str:
        vc = []
        for t, name, cov, sd, corr in self._term_parameters():
            for i, nm in enumerate(t.colnames):
                vc.append((name if i == 0 else "", nm, cov[i, i], sd[i], corr[i, :i], t.p))
        vc.append(("Residual", "", self.sigma**2, self.sigma, np.array([]), 1))
        var_s = _fmt_col([r[2] for r in vc], 4)
        sd_s = _fmt_col([r[3] for r in vc], 4)
        maxp = max(r[5] for r in vc)
        head = ["Groups", "Name", "Variance", "Std.Dev."] + (
            ["Corr"] + [""] * (maxp - 2) if maxp > 1 else []
        )
        rows = [head]
        for (g, nm, _, _, cr, _), v, s in zip(vc, var_s, sd_s, strict=True):
            cells = [f"{c:.2f}" if np.isfinite(c) else "NaN" for c in cr]
            cells += [""] * (maxp - 1 - len(cells))
            rows.append([g, nm, v, s] + cells)
        # R left-justifies Variance/Std.Dev. after formatting to a common width
        align = "llll" + "r" * (maxp - 1)
        return _table(rows, align, indent=" ")

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
    ) -> pd.DataFrame:
        """A tidy table of estimates with broom.mixed's column names.

        Parameters
        ----------
        effects : str or sequence of {"fixed", "ran_pars", "ran_vals"}
        conf_int : bool, default False
            Add Wald intervals ``conf.low``, ``conf.high`` (fixed effects only).
        conf_level : float, default 0.95

        Returns
        -------
        pandas.DataFrame

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        >>> m.tidy()["term"].tolist()  # doctest: +NORMALIZE_WHITESPACE
        ['(Intercept)', 'Days', 'sd__(Intercept)', 'cor__(Intercept).Days', 'sd__Days',
         'sd__Observation']
        """
        if isinstance(effects, str):
            effects = (effects,)
        bad = [e for e in effects if e not in ("fixed", "ran_pars", "ran_vals")]
        if bad:
            raise ValueError(f"unknown effects {bad}: use 'fixed', 'ran_pars' or 'ran_vals'")
        z = stats.norm.ppf(0.5 + conf_level / 2)
        if "ran_vals" in effects:
            if len(effects) > 1:
                raise ValueError("effects='ran_vals' cannot be combined with other effects")
            rows = []
            for g, modes in self.ranef.items():
                sd = self.ranef_condsd[g]
                for term in modes.columns:
                    for lev in modes.index:
                        rows.append(
                            ("ran_vals", g, lev, term, modes.loc[lev, term], sd.loc[lev, term])
                        )
            out = pd.DataFrame(
                rows, columns=["effect", "group", "level", "term", "estimate", "std.error"]
            )
            if conf_int:
                out["conf.low"] = out["estimate"] - z * out["std.error"]
                out["conf.high"] = out["estimate"] + z * out["std.error"]
            return out
        rows = []
        if "fixed" in effects:
            ct = self._coef_table()
            for nm, r in ct.iterrows():
                rows.append(("fixed", None, nm, r["Estimate"], r["Std. Error"], r["t value"]))
        if "ran_pars" in effects:
            for t, name, _, sd, corr in self._term_parameters():
                for j in range(t.p):
                    rows.append(("ran_pars", name, f"sd__{t.colnames[j]}", sd[j], np.nan, np.nan))
                    for i in range(j + 1, t.p):
                        term = f"cor__{t.colnames[j]}.{t.colnames[i]}"
                        rows.append(("ran_pars", name, term, corr[i, j], np.nan, np.nan))
            rows.append(("ran_pars", "Residual", "sd__Observation", self.sigma, np.nan, np.nan))
        out = pd.DataFrame(
            rows, columns=["effect", "group", "term", "estimate", "std.error", "statistic"]
        )
        if conf_int:
            out["conf.low"] = out["estimate"] - z * out["std.error"]
            out["conf.high"] = out["estimate"] + z * out["std.error"]
        return out

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
        last = "REMLcrit" if self.REML else "deviance"
        return pd.DataFrame(
            [
                {
                    "nobs": self.nobs,
                    "sigma": self.sigma,
                    "logLik": self.loglik,
                    "AIC": self.aic,
                    "BIC": self.bic,
                    last: self.deviance,
                    "df.residual": self.nobs - self.npar,
                }
            ]
        )

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
        out = self.data.copy()
        out[".fitted"] = self.fitted().to_numpy()
        out[".resid"] = self.residuals().to_numpy()
        out[".fixed"] = self.design.X @ self.fixef.to_numpy()
        return out

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
        f = _to_r(self.formula)
        reml = "" if self.REML else ", REML = FALSE"
        return f"lmer({f}, data = {self._data_name}{reml})"

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
        spec = _sm_spec(self.design, self.parsed)
        return spec.code(self.parsed, self._data_name, self.REML)

    # ---- refits and simulation -------------------------------------------------------------

    def refit(self, REML: bool | None = None) -> LmerModel:
        """The same model fitted again (by default with the same criterion).

        Parameters
        ----------
        REML : bool, optional

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> round(m.refit(REML=False).loglik, 2)
        -163.66
        """
        return _fit(
            self.formula,
            self._original_data,
            self.REML if REML is None else bool(REML),
            self.backend,
            self._control,
            self._eval_env,
            self._data_name,
        )

    def _with_response(self, y: np.ndarray) -> LmerModel:
        """The same model fitted (same criterion, default optimiser settings) to a new response.

        For the parametric bootstrap: ``y`` holds one value per row used. It goes into a new
        column of those rows, so that a transformed response in the formula (``log(y) ~ ...``)
        is not transformed twice, and the design (X, Z, the grouping factors) is reused rather
        than built again from the data, as only the response changes.
        """
        data = self.data.copy()
        name = "_mlmprimer_boot_y"
        while name in data.columns:
            name += "_"
        data[name] = np.asarray(y, dtype=float)
        formula = f"{name} ~{self.formula.split('~', 1)[1]}"
        parsed = dataclasses.replace(self.parsed, formula=formula, response=name)
        design = dataclasses.replace(self.design, y=data[name].to_numpy(dtype=float), _cache={})
        fit = fit_theta(design, self.REML)
        return LmerModel(
            formula=formula,
            parsed=parsed,
            data=data,
            original_data=data,
            data_name=self._data_name,
            design=design,
            fit=fit,
            solution=solve_mixed(design, fit.theta, self.REML),
            REML=self.REML,
            backend="mlmprimer",
            eval_env=self._eval_env,
            control={},
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
        out = np.empty((d.n, n))
        for k in range(n):
            y = base.copy()
            for t in d.terms:
                u = rng.standard_normal((t.nlevels, t.p)) * self.sigma
                b = u @ t.template(self.theta).T
                y += np.sum(t.Xi * b[t.codes], axis=1)
            y += rng.standard_normal(d.n) * self.sigma
            out[:, k] = y
        return pd.DataFrame(out, index=d.index, columns=[f"sim_{k + 1}" for k in range(n)])


def _unique_names(names: list[str]) -> list[str]:
    """R's make.unique: 'Subject', 'Subject.1', ..."""
    seen: dict[str, int] = {}
    out = []
    for nm in names:
        if nm in seen:
            seen[nm] += 1
            out.append(f"{nm}.{seen[nm]}")
        else:
            seen[nm] = 0
            out.append(nm)
    return out


def _to_r(formula: str) -> str:
    """Python/patsy spellings in a formula as R writes them."""
    f = formula.replace("**", "^")
    f = re.sub(r"\bnp\.", "", f)
    f = re.sub(r"\bC\(([^(),]+)\)", r"factor(\1)", f)
    return f


# ----------------------------------------------------------------------------------------------
# statsmodels
# ----------------------------------------------------------------------------------------------


@dataclass
class _SmSpec:
    groups: str | None  # None: one group holding every row
    re_formula: str | None
    re_term: int | None  # index in design.terms of the term in re_formula
    vc: dict[str, tuple[str, int]]  # name -> (formula, term index)

    def code(self, parsed: ParsedFormula, data_name: str, REML: bool) -> str:
        fixed = parsed.fixed_formula
        data = data_name if self.groups else f"{data_name}.assign(group=1)"
        args = [f'"{fixed}"', data, f'groups="{self.groups or "group"}"']
        if self.re_formula is not None:
            args.append(f're_formula="{self.re_formula}"')
        if self.vc:
            inner = ", ".join(f'"{k}": "{v[0]}"' for k, v in self.vc.items())
            args.append(f"vc_formula={{{inner}}}")
        return f'smf.mixedlm({", ".join(args)}).fit(reml={REML}, method=["bfgs", "lbfgs"])'


def _strip_zero(expr: str) -> str:
    e = re.sub(r"^\s*0\s*\+\s*", "", expr)
    e = re.sub(r"\s*[-]\s*1\s*$", "", e)
    return e.strip()


def _vc_formula(term: Any, within: tuple[str, ...]) -> str:
    facs = [f for f in term.factors if f not in within] or list(term.factors)
    cats = ":".join(f"C({f})" for f in facs)
    if term.has_intercept:
        return f"0 + {cats}"
    return f"0 + {cats}:{_strip_zero(term.expr)}"


def _sm_spec(design: Design, parsed: ParsedFormula) -> _SmSpec:
    terms = design.terms
    groups = list(dict.fromkeys(t.group for t in terms))
    # an outer factor inside which every other term is nested
    outer = None
    for g in groups:
        gt = next(t for t in terms if t.group == g)
        if len(gt.factors) == 1 and all(set(gt.factors) <= set(t.factors) for t in terms):
            outer = gt.factors[0]
            break
    names: dict[str, int] = {}

    def vc_name(t: Any) -> str:
        base = (
            "_".join(t.factors)
            if t.has_intercept
            else f"{'_'.join(t.factors)}_{_strip_zero(t.expr)}"
        )
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in base)
        names[base] = names.get(base, 0) + 1
        return base if names[base] == 1 else f"{base}{names[base]}"

    if outer is None:
        vec = [t for t in terms if t.p > 1]
        if vec:
            t = vec[0]
            raise NotImplementedError(
                f"statsmodels MixedLM cannot fit the correlated term ({t.term.expr} | {t.group}) "
                "together with a crossed grouping factor: write it as "
                f"({_strip_zero(t.term.expr) or '1'} || {t.group}) (uncorrelated effects), "
                "or use backend='mlmprimer'"
            )
        vc = {vc_name(t): (_vc_formula(t, ()), k) for k, t in enumerate(terms)}
        return _SmSpec(None, None, None, vc)
    own = [k for k, t in enumerate(terms) if t.factors == (outer,)]
    vec = [k for k in own if terms[k].p > 1]
    if len(vec) > 1:
        t = terms[vec[1]]
        raise NotImplementedError(
            f"statsmodels MixedLM allows one correlated term per group; ({t.term.expr} | "
            f"{t.group}) is a second one: merge the terms or use backend='mlmprimer'"
        )
    others_vec = [t for t in terms if t.factors != (outer,) and t.p > 1]
    if others_vec:
        t = others_vec[0]
        raise NotImplementedError(
            f"statsmodels MixedLM cannot fit the correlated nested term ({t.term.expr} | "
            f"{t.group}): write ({_strip_zero(t.term.expr) or '1'} || {t.group}) or use "
            "backend='mlmprimer'"
        )
    re_term = vec[0] if vec else next((k for k in own if terms[k].has_intercept), None)
    re_formula = None
    if re_term is not None:
        t = terms[re_term]
        re_formula = "1" if t.p == 1 else f"~{t.term.expr}"
    vc = {}
    for k, t in enumerate(terms):
        if k == re_term:
            continue
        if t.factors == (outer,):
            vc[vc_name(t)] = (f"0 + {_strip_zero(t.term.expr)}", k)
        else:
            vc[vc_name(t)] = (_vc_formula(t, (outer,)), k)
    if re_formula == "1" and not vc:
        re_formula = None
    return _SmSpec(outer, re_formula, re_term, vc)


def _fit_statsmodels(
    design: Design,
    parsed: ParsedFormula,
    spec: _SmSpec,
    data: pd.DataFrame,
    REML: bool,
    ours: ThetaFit,
) -> np.ndarray:
    """Fit with statsmodels and return the theta its estimates imply (checked against ours)."""
    import statsmodels.formula.api as smf

    df = data.copy()
    if spec.groups is None:
        df["_group_all"] = 1
        groups = "_group_all"
    else:
        groups = spec.groups
    kwargs: dict[str, Any] = {"groups": groups}
    if spec.re_formula is not None:
        kwargs["re_formula"] = spec.re_formula
    if spec.vc:
        kwargs["vc_formula"] = {k: v[0] for k, v in spec.vc.items()}
    model = smf.mixedlm(parsed.fixed_formula, df, **kwargs)
    best: tuple[float, np.ndarray] | None = None
    errors = []
    for method in (["lbfgs"], ["bfgs"], ["powell", "lbfgs"], ["nm", "bfgs"], None):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = model.fit(reml=REML, method=method) if method else model.fit(reml=REML)
            theta = _theta_from_sm(res, design, spec)
            dev = profiled_deviance(theta, design, REML)
        except Exception as err:  # a failed method: try the next one
            errors.append(f"{method}: {err}")
            continue
        if best is None or dev < best[0]:
            best = (dev, theta)
        if dev - ours.deviance <= 2e-3:
            break
    if best is None:
        raise RuntimeError("statsmodels MixedLM failed with every method: " + "; ".join(errors))
    dev, theta = best
    if dev - ours.deviance > 2e-3:
        raise RuntimeError(
            "statsmodels MixedLM stopped short of the maximum: its estimates give "
            f"logLik {-dev / 2:.4f} but the maximum is {-ours.deviance / 2:.4f} "
            f"({(dev - ours.deviance) / 2:.4f} lower); refusing to return a wrong fit — "
            "use backend='mlmprimer'"
        )
    return theta


def _theta_from_sm(res: Any, design: Design, spec: _SmSpec) -> np.ndarray:
    scale = float(res.scale)
    theta = np.zeros_like(design.theta0)
    terms = design.terms
    if spec.re_term is not None:
        t = terms[spec.re_term]
        cov = np.asarray(res.cov_re, dtype=float) / scale
        if cov.shape != (t.p, t.p):
            raise RuntimeError("unexpected random-effects covariance shape from statsmodels")
        T = _chol_psd(cov)
        rows, cols = np.tril_indices(t.p)
        order = np.lexsort((rows, cols))
        theta[t.theta_slice] = T[rows[order], cols[order]]
    names = list(res.model.exog_vc.names) if spec.vc else []
    vcomp = np.asarray(res.vcomp, dtype=float) if spec.vc else np.array([])
    for name, (_, k) in spec.vc.items():
        theta[terms[k].theta_slice] = math.sqrt(max(vcomp[names.index(name)], 0.0) / scale)
    return np.maximum(theta, design.lower)


def _chol_psd(cov: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        half = v * np.sqrt(np.clip(w, 0, None))
        _, r = np.linalg.qr(half.T)
        L = r.T
        return L * np.sign(np.where(np.diag(L) == 0, 1, np.diag(L)))


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
    control: Mapping[str, Any] | None = None,
) -> LmerModel:
    """Fit a linear mixed model written in lme4's formula syntax.

    Parameters
    ----------
    formula : str
        e.g. ``"Reaction ~ Days + (Days | Subject)"``; see :mod:`mlmprimer.formula`.
    data : pandas.DataFrame
        Factors are best given as pandas categoricals (their first category is the reference
        level, as R's first level).
    REML : bool, default True
        REML (default, as lme4) or maximum likelihood.
    backend : {"mlmprimer", "statsmodels"}
        ``"statsmodels"`` fits with statsmodels' MixedLM and checks its optimum against this
        package's; it raises if MixedLM fell short (never returns a wrong fit).
    control : mapping, optional
        Optimiser settings: ``maxeval``, ``ftol_abs``, ``xtol_abs``.

    Returns
    -------
    LmerModel

    Raises
    ------
    FormulaError
        A syntax error in the formula (with its position).
    ValueError
        Unknown columns, a non-numeric response, a grouping factor with one level, ...
    ConvergenceError
        The optimiser did not converge.
    NotImplementedError
        ``backend="statsmodels"`` with a model MixedLM cannot express.

    Warns
    -----
    LmerWarning
        Rows dropped for missing values, grouping factors with fewer than 5 levels, groups
        with a single observation in a random-slope term, rank-deficient fixed effects,
        singular fits.

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
        formula, data, REML, backend, dict(control or {}), env, _caller_data_name(data, frame)
    )


def _fit(
    formula: str,
    data: pd.DataFrame,
    REML: bool,
    backend: str,
    control: dict[str, Any] | None,
    env: Any,
    data_name: str,
) -> LmerModel:
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, not {backend!r}")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    ctrl = dict(control or {})
    unknown = set(ctrl) - _CONTROL_SETTINGS
    if unknown:
        raise ValueError(
            f"unknown control settings {sorted(unknown)}; known: {sorted(_CONTROL_SETTINGS)}"
        )
    parsed = parse_formula(formula)
    if not parsed.random:
        raise ValueError(
            f"no random-effects terms in {formula!r}: add one such as (1 | group); for a "
            "model without random effects use statsmodels' ols"
        )
    used = check_columns(parsed, data, env.namespace if env is not None else None)
    missing = data[used].isna().any(axis=1)
    nmiss = int(missing.sum())
    if nmiss:
        cols = [c for c in used if data[c].isna().any()]
        warnings.warn(
            f"{nmiss} row{'s' if nmiss > 1 else ''} with missing values in "
            f"{', '.join(repr(c) for c in cols)} dropped (like R's na.omit); "
            f"{len(data) - nmiss} rows used",
            LmerWarning,
            stacklevel=3,
        )
    clean = data.loc[~missing]
    if len(clean) == 0:
        raise ValueError("no rows left after dropping rows with missing values")
    design = build_design(parsed, clean, env)
    if design.dropped:
        k = len(design.dropped)
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping {k} column"
            f"{'s' if k > 1 else ''} / coefficient{'s' if k > 1 else ''}: "
            + ", ".join(design.dropped),
            LmerWarning,
            stacklevel=3,
        )
    for g, nl in {t.group: t.nlevels for t in design.terms}.items():
        if nl < 5:
            warnings.warn(
                f"grouping factor {g!r} has only {nl} levels: its variance is poorly estimated "
                "from so few groups; consider treating it as a fixed effect",
                LmerWarning,
                stacklevel=3,
            )
    for t in design.terms:
        slopes = [c for c in t.colnames if c != "(Intercept)"]
        if slopes:
            single = int(np.sum(np.bincount(t.codes, minlength=t.nlevels) == 1))
            if single:
                warnings.warn(
                    f"{single} of {t.nlevels} groups of {t.group!r} have a single observation; "
                    f"the random slope for {', '.join(slopes)} is not identified within them",
                    LmerWarning,
                    stacklevel=3,
                )
    # raise before fitting for models MixedLM cannot express
    spec = _sm_spec(design, parsed) if backend == "statsmodels" else None
    fit = fit_theta(design, REML, **ctrl)
    theta = fit.theta
    if spec is not None:
        theta = _fit_statsmodels(design, parsed, spec, clean, REML, fit)
    solution = solve_mixed(design, theta, REML)
    model = LmerModel(
        formula=formula,
        parsed=parsed,
        data=clean,
        original_data=data,
        data_name=data_name,
        design=design,
        fit=fit,
        solution=solution,
        REML=REML,
        backend=backend,
        eval_env=env,
        control=control,
    )
    if model.singular:
        warnings.warn(SINGULAR_MESSAGE, LmerWarning, stacklevel=3)
    return model
