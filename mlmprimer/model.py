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
    _check_response,
    _r_only,
    formula_variables,
    lme4_name,
    offset_values,
    parse_formula,
    update_formula,
    validate_data,
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


def _abbreviate_one(text: str, minlength: int) -> str:
    """R's ``abbreviate()`` of one name (method "left.kept", use.classes = TRUE).

    Spaces are dropped first; then, each pass sweeping from the right and stopping as soon as
    the name is short enough, lower-case vowels ending a word, the other lower-case vowels
    (except a word's first letter), lower-case letters ending a word, the other lower-case
    letters, and finally any character but a word's first.
    """
    chars = list(text.lstrip(" "))
    nspace = 0

    def short() -> bool:
        return len(chars) - nspace <= minlength

    def last_of_word(i: int) -> bool:
        return not chars[i - 1].isspace() and (i + 1 == len(chars) or chars[i + 1].isspace())

    def first_of_word(i: int) -> bool:
        return chars[i - 1].isspace()

    def sweep(drop: Any) -> bool:
        i = len(chars) - 1
        while i > 0:
            if i < len(chars) and drop(i):
                del chars[i]
            if short():
                return True
            i -= 1
        return False

    done = len(chars) < minlength
    if not done:
        trailing = True
        for i in range(len(chars) - 1, 0, -1):
            if chars[i].isspace():
                if trailing:
                    del chars[i]
                else:
                    nspace += 1
            else:
                trailing = False
            if short():
                done = True
                break
    vowels = "aeiou"
    passes = [
        lambda i: chars[i] in vowels and last_of_word(i),
        lambda i: chars[i] in vowels and not first_of_word(i),
        lambda i: chars[i].islower() and last_of_word(i),
        lambda i: chars[i].islower() and not first_of_word(i),
        lambda i: not first_of_word(i) and not chars[i].isspace(),
    ]
    for drop in passes:
        if done:
            break
        done = sweep(drop)
    if len(chars) > minlength:
        chars = [c for k, c in enumerate(chars) if k == 0 or not c.isspace()]
    return "".join(chars)


def _abbreviate(names: Sequence[str], minlength: int) -> list[str]:
    """R's ``abbreviate(names, minlength)``: names that would coincide get longer ones."""
    names = [n.strip(" ") for n in names]
    unique = list(dict.fromkeys(names))
    out = dict.fromkeys(unique, "")
    todo = list(unique)
    m = minlength
    while todo:
        for n in todo:
            out[n] = _abbreviate_one(n, m)
        groups: dict[str, int] = {}
        for n in unique:
            groups[out[n]] = groups.get(out[n], 0) + 1
        todo = [n for n in unique if groups[out[n]] > 1]
        m += 1
    return [out[n] for n in names]


#: lme4's ``lme4.summary.cor.max``: the largest p whose correlations summary() prints
_COR_MAX = 12
#: R's default line width (``getOption("width")``)
_R_WIDTH = 80


def _correlation_text(names: Sequence[str], vcov: np.ndarray) -> str:
    """lme4's "Correlation of Fixed Effects" block (without its heading), as R prints it."""
    sd = np.sqrt(np.diag(vcov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = vcov / np.outer(sd, sd)
    p = len(names)
    values = [round(float(v), 3) + 0.0 for v in corr.ravel()]
    cells = [f"{v:.3f}" if np.isfinite(v) else "NaN" for v in values]
    width = max(len(c) for c in cells)
    cells = [c.rjust(width) for c in cells]
    rows = _abbreviate(names, 11)[1:]
    cols = _abbreviate(names, 6)[:-1]
    body = [[cells[i * p + j] if i > j else "" for j in range(p - 1)] for i in range(1, p)]
    wrow = max(len(r) for r in rows)
    wcol = [max([len(cols[j])] + [len(r[j]) for r in body]) for j in range(p - 1)]
    # R prints as many columns as fit in its line width (80), then the next ones below
    chunks: list[list[int]] = []
    for j in range(p - 1):
        if chunks and wrow + sum(1 + wcol[k] for k in chunks[-1] + [j]) <= _R_WIDTH:
            chunks[-1].append(j)
        else:
            chunks.append([j])
    lines = []
    for chunk in chunks:
        lines.append(" " * wrow + "".join(" " + cols[j].ljust(wcol[j]) for j in chunk))
        for name, r in zip(rows, body, strict=True):
            lines.append(name.ljust(wrow) + "".join(" " + r[j].ljust(wcol[j]) for j in chunk))
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
        control: dict[str, Any] | None,
        weights_arg: Any = None,
        offset_arg: Any = None,
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
        self._weights_arg = weights_arg
        self._offset_arg = offset_arg
        self._same_design = False  # refit() without a new response reuses the design
        self._offset_rows: np.ndarray | None = None  # offset= for the rows used
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
                self.design.X @ self.fixef.to_numpy() + self.offset.to_numpy(),
                index=self.design.index,
                name="predicted",
            )
        if not isinstance(newdata, pd.DataFrame):
            raise TypeError("newdata must be a pandas DataFrame")
        self._check_newdata(newdata, re)
        (mat,) = patsy.build_design_matrices(
            [self.design.fixed_info], newdata, NA_action="raise", return_type="dataframe"
        )
        Xn = pd.DataFrame(np.asarray(mat), columns=[lme4_name(c) for c in mat.columns])
        Xn = Xn[self.design.xnames]
        pred = Xn.to_numpy() @ self.fixef.to_numpy() + self._newdata_offset(newdata)
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

    def _newdata_offset(self, newdata: pd.DataFrame) -> np.ndarray | float:
        """The offset for new data: the formula's offset() terms and a text ``offset=``."""
        texts = list(self.parsed.offsets)
        if isinstance(self._offset_arg, str):
            texts.append(self._offset_arg)
        elif self._offset_arg is not None:
            warnings.warn(
                "the offset= values given to lmer belong to the rows of the fit, so they are not "
                "added to predictions for newdata (write offset() in the formula, or offset= as "
                "an expression of the columns, to have them)",
                LmerWarning,
                stacklevel=3,
            )
        if not texts:
            return 0.0
        spec = dataclasses.replace(self.parsed, offsets=tuple(texts))
        values = offset_values(spec, newdata.reset_index(drop=True), self._eval_env)
        return np.asarray(values, dtype=float)

    def _check_newdata(self, newdata: pd.DataFrame, re: bool) -> None:
        """Name a data column the predictions need that ``newdata`` lacks or has NaN in."""
        parts = [self.parsed.fixed, *self.parsed.offsets] + [
            t.expr for t in self.parsed.random if re
        ]
        if isinstance(self._offset_arg, str):
            parts.append(self._offset_arg)
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

    def summary(self, correlation: bool | None = None) -> LmerSummary:
        """A summary laid out like lme4's ``summary(m)``.

        Parameters
        ----------
        correlation : bool, optional
            Show the correlations of the fixed effects (lme4's "Correlation of Fixed
            Effects"). By default they are shown, as lme4 prints them, for 2 to 12 fixed
            effects.

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
        >>> print(str(m.summary()).split("Correlation of Fixed Effects:")[1])
        <BLANKLINE>
             (Intr)
        Days -0.138
        <BLANKLINE>
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
        pearson = self.residuals(type="pearson", scaled=True).to_numpy()
        rq = np.quantile(pearson, [0, 0.25, 0.5, 0.75, 1])
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
            p = len(ct)
            show = (p <= _COR_MAX) if correlation is None else bool(correlation)
            if show and p > 1:
                lines.append("")
                lines.append("Correlation of Fixed Effects:")
                lines.append(_correlation_text(list(ct.index), self.vcov.to_numpy()))
            elif correlation is None and p > _COR_MAX:
                lines.append("")
                lines.append(
                    f"Correlation matrix not shown by default, as p = {p} > {_COR_MAX}.\n"
                    "Use summary(correlation=True) or\n"
                    "    vcov                      if you need it"
                )
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
        conf_method: str = "Wald",
        nsim: int = 500,
        seed: int | np.random.Generator | None = None,
        progress: bool = False,
    ) -> pd.DataFrame:
        """A tidy table of estimates with broom.mixed's column names.

        Parameters
        ----------
        effects : str or sequence of {"fixed", "ran_pars", "ran_vals"}
        conf_int : bool, default False
            Add the interval columns ``conf.low``, ``conf.high``.
        conf_level : float, default 0.95
            Confidence level, strictly between 0 and 1.
        conf_method : {"Wald", "profile", "boot"}, default "Wald"
            ``"Wald"``: estimate +- z * std.error, for the fixed effects only (NaN for the
            random-effect parameters, as broom.mixed); ``"profile"``: likelihood-profile
            intervals for every parameter; ``"boot"``: parametric bootstrap percentile
            intervals. See :func:`mlmprimer.profile.confint`. ``effects="ran_vals"`` takes only
            ``"Wald"`` (estimate +- z * conditional SD).
        nsim : int, default 500
            Bootstrap samples (``conf_method="boot"``).
        seed : int, numpy.random.Generator or None
            Seed of the bootstrap; the same seed gives the same intervals.
        progress : bool, default False
            Show a progress bar while profiling or bootstrapping.

        Returns
        -------
        pandas.DataFrame
            With ``conf_method="boot"``, ``attrs`` holds ``nsim`` and ``n_failed``.

        Raises
        ------
        ValueError
            Unknown effects or interval method, a level outside (0, 1), ``nsim < 1``.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        >>> m.tidy()["term"].tolist()  # doctest: +NORMALIZE_WHITESPACE
        ['(Intercept)', 'Days', 'sd__(Intercept)', 'cor__(Intercept).Days', 'sd__Days',
         'sd__Observation']
        >>> d = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> ci = d.tidy(conf_int=True, conf_method="profile")
        >>> ci[["term", "estimate", "conf.low", "conf.high"]].round(1)
                      term  estimate  conf.low  conf.high
        0      (Intercept)    1527.5    1486.5     1568.5
        1  sd__(Intercept)      42.0      12.2       84.1
        2  sd__Observation      49.5      38.2       67.7
        """
        from .profile import METHODS, confint

        if isinstance(effects, str):
            effects = (effects,)
        bad = [e for e in effects if e not in ("fixed", "ran_pars", "ran_vals")]
        if bad:
            raise ValueError(f"unknown effects {bad}: use 'fixed', 'ran_pars' or 'ran_vals'")
        if conf_method not in METHODS:
            raise ValueError(
                f"unknown conf_method {conf_method!r}: use one of {', '.join(METHODS)}"
            )
        if isinstance(conf_level, bool) or not (
            isinstance(conf_level, (int, float, np.floating)) and 0 < conf_level < 1
        ):
            raise ValueError(f"conf_level must be strictly between 0 and 1, got {conf_level!r}")
        z = stats.norm.ppf(0.5 + conf_level / 2)
        if "ran_vals" in effects:
            if len(effects) > 1:
                raise ValueError("effects='ran_vals' cannot be combined with other effects")
            if conf_int and conf_method != "Wald":
                raise ValueError(
                    "intervals for effects='ran_vals' use the conditional SDs: "
                    f"conf_method must be 'Wald', not {conf_method!r}"
                )
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
        keys = []  # each row's parameter name in confint (.sig01, ..., .sigma, fixed effects)
        if "fixed" in effects:
            ct = self._coef_table()
            for nm, r in ct.iterrows():
                rows.append(("fixed", None, nm, r["Estimate"], r["Std. Error"], r["t value"]))
                keys.append(nm)
        if "ran_pars" in effects:
            for t, name, _, sd, corr in self._term_parameters():
                for j in range(t.p):
                    rows.append(("ran_pars", name, f"sd__{t.colnames[j]}", sd[j], np.nan, np.nan))
                    for i in range(j + 1, t.p):
                        term = f"cor__{t.colnames[j]}.{t.colnames[i]}"
                        rows.append(("ran_pars", name, term, corr[i, j], np.nan, np.nan))
            rows.append(("ran_pars", "Residual", "sd__Observation", self.sigma, np.nan, np.nan))
            keys += [f".sig{k + 1:02d}" for k in range(self.theta.size)] + [".sigma"]
        out = pd.DataFrame(
            rows, columns=["effect", "group", "term", "estimate", "std.error", "statistic"]
        )
        if conf_int and conf_method == "Wald":
            out["conf.low"] = out["estimate"] - z * out["std.error"]
            out["conf.high"] = out["estimate"] + z * out["std.error"]
        elif conf_int:
            parm = [p for e, p in (("fixed", "beta_"), ("ran_pars", "theta_")) if e in effects]
            ci = confint(
                self,
                conf_method,
                float(conf_level),
                parm=parm,
                nsim=nsim,
                seed=seed,
                progress=progress,
            )
            out["conf.low"] = ci.iloc[:, 0].reindex(keys).to_numpy()
            out["conf.high"] = ci.iloc[:, 1].reindex(keys).to_numpy()
            out.attrs.update(ci.attrs)
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
        out[".fixed"] = self.predict(re=False).to_numpy()
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
        extra = ""
        for arg, value in (("weights", self._weights_arg), ("offset", self._offset_arg)):
            if value is not None:
                extra += f", {arg} = {value if isinstance(value, str) else arg}"
        return f"lmer({f}, data = {self._data_name}{reml}{extra})"

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
        if newresp is None and not self._same_design:
            return _fit(
                self.formula,
                self._original_data,
                reml,
                self.backend,
                self._control,
                self._eval_env,
                self._data_name,
                weights=self._weights_arg,
                offset=self._offset_arg,
            )
        y = self.design.y if newresp is None else self._new_response(newresp)
        design = dataclasses.replace(self.design, y=y, _cache={})
        fit = fit_theta(design, reml, **(self._control or {}))
        data = self.data
        if newresp is not None and self.response in data.columns:
            data = data.copy()
            data[self.response] = y
        model = LmerModel(
            formula=self.formula,
            parsed=self.parsed,
            data=data,
            original_data=data,
            data_name=self._data_name,
            design=design,
            fit=fit,
            solution=solve_mixed(design, fit.theta, reml),
            REML=reml,
            backend="mlmprimer",
            eval_env=self._eval_env,
            control=self._control,
            weights_arg=self._weights_arg,
            offset_arg=self._offset_arg,
        )
        model._same_design = True
        model._offset_rows = self._offset_rows
        if model.singular:
            warnings.warn(SINGULAR_MESSAGE, LmerWarning, stacklevel=2)
        return model

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
        _check_response("newresp", y, index, notes)
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
            weights = self._weights_arg
            if self._same_design and self.design.weights is not None:
                weights = pd.Series(self.design.weights, index=self.design.index)
        if offset is ...:
            offset = self._offset_arg
            if self._same_design and self._offset_rows is not None:
                offset = pd.Series(self._offset_rows, index=self.design.index)
        return _fit(
            new_formula,
            self._original_data if data is None else data,
            self.REML if REML is None else bool(REML),
            self.backend,
            self._control,
            self._eval_env,
            self._data_name if data is None else "data",
            weights=weights,
            offset=offset,
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
    r_only = _r_only(parsed)
    if r_only or parsed.offsets:
        raise NotImplementedError(
            "statsmodels reads formulas with patsy, where R's spelling "
            f"({', '.join(repr(p) for p in r_only) or 'offset()'}) means something else or "
            "nothing: use backend='mlmprimer', or write the formula in Python's spelling"
        )
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
    control : mapping, optional
        Optimiser settings: ``maxeval``, ``ftol_abs``, ``xtol_abs``.
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
        :func:`mlmprimer.formula.validate_data`); the message names the column.
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
        dict(control or {}),
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
    control: dict[str, Any] | None,
    env: Any,
    data_name: str,
    *,
    weights: Any = None,
    offset: Any = None,
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
    if backend == "statsmodels" and (weights is not None or offset is not None or parsed.offsets):
        raise NotImplementedError(
            "statsmodels MixedLM has no prior weights or offsets: use backend='mlmprimer'"
        )
    # every check of the data in one place, before any design is built
    checked = validate_data(parsed, data, env, weights=weights, offset=offset)
    for note in checked.notes:
        warnings.warn(note, LmerWarning, stacklevel=3)
    clean = checked.data
    design = build_design(parsed, clean, env, weights=checked.weights, offset=checked.offset)
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
        weights_arg=weights,
        offset_arg=offset,
    )
    model._offset_rows = checked.offset
    if model.singular:
        warnings.warn(SINGULAR_MESSAGE, LmerWarning, stacklevel=3)
    return model
