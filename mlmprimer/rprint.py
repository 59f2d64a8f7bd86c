"""Numbers and tables laid out as R and lme4 print them.

R's ``format(x, digits = 4)`` (common decimals over a column), ``zapsmall``, ``abbreviate``,
the tables of lme4's ``summary(m)`` and ``print(VarCorr(m))``, and formulas in R's spelling.

Examples
--------
>>> from mlmprimer.rprint import format_column
>>> format_column([0.5, 12.25], 4)  # R: format(c(0.5, 12.25), digits = 4)
['0.50', '12.25']
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .varcomp import VarComp

__all__ = [
    "COR_MAX",
    "R_WIDTH",
    "SINGULAR_MESSAGE",
    "LmerSummary",
    "abbreviate",
    "correlation_text",
    "decimals",
    "format_column",
    "format_pvalues",
    "glmer_summary",
    "layout_table",
    "r_formula",
    "summary",
    "varcorr_text",
    "zapsmall",
]

#: lme4's message for a fit on the boundary
SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"


def decimals(x: float, digits: int) -> int:
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


def format_column(values: Sequence[float], digits: int = 4) -> list[str]:
    """Format a numeric column with common decimals, as R's format(x, digits=)."""
    vals = [float(v) for v in values]
    finite = [v for v in vals if np.isfinite(v)]
    dec = max((decimals(v, digits) for v in finite), default=0)
    return [f"{v:.{dec}f}" if np.isfinite(v) else "NA" for v in vals]


def zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    mx = float(np.max(np.abs(x))) if x.size else 0.0
    if mx > 0:
        return np.round(x, max(0, digits - int(math.ceil(math.log10(mx)))))
    return np.round(x, digits)


def layout_table(rows: list[list[str]], align: Sequence[str], indent: str = "") -> str:
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


def abbreviate(names: Sequence[str], minlength: int) -> list[str]:
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
COR_MAX = 12
#: R's default line width (``getOption("width")``)
R_WIDTH = 80


def correlation_text(names: Sequence[str], vcov: np.ndarray) -> str:
    """lme4's "Correlation of Fixed Effects" block (without its heading), as R prints it."""
    sd = np.sqrt(np.diag(vcov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = vcov / np.outer(sd, sd)
    p = len(names)
    values = [round(float(v), 3) + 0.0 for v in corr.ravel()]
    cells = [f"{v:.3f}" if np.isfinite(v) else "NaN" for v in values]
    width = max(len(c) for c in cells)
    cells = [c.rjust(width) for c in cells]
    rows = abbreviate(names, 11)[1:]
    cols = abbreviate(names, 6)[:-1]
    body = [[cells[i * p + j] if i > j else "" for j in range(p - 1)] for i in range(1, p)]
    wrow = max(len(r) for r in rows)
    wcol = [max([len(cols[j])] + [len(r[j]) for r in body]) for j in range(p - 1)]
    # R prints as many columns as fit in its line width (80), then the next ones below
    chunks: list[list[int]] = []
    for j in range(p - 1):
        if chunks and wrow + sum(1 + wcol[k] for k in chunks[-1] + [j]) <= R_WIDTH:
            chunks[-1].append(j)
        else:
            chunks.append([j])
    lines = []
    for chunk in chunks:
        lines.append(" " * wrow + "".join(" " + cols[j].ljust(wcol[j]) for j in chunk))
        for name, r in zip(rows, body, strict=True):
            lines.append(name.ljust(wrow) + "".join(" " + r[j].ljust(wcol[j]) for j in chunk))
    return "\n".join(lines)


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


def summary(model: Any, correlation: bool | None = None) -> LmerSummary:
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
    if model.REML:
        lines.append("Linear mixed model fit by REML ['lmerMod']")
    else:
        lines.append("Linear mixed model fit by maximum likelihood  ['lmerMod']")
    lines.append(f"Formula: {model.formula}")
    lines.append(f"   Data: {model.data_name}")
    lines.append("")
    if model.REML:
        lines.append(f"REML criterion at convergence: {round(model.deviance, 1):.7g}")
    else:
        vals = [f"{v:.1f}" for v in (model.aic, model.bic, model.loglik, model.deviance)]
        vals.append(str(model.nobs - model.npar))
        heads = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        w = [max(len(h), len(v), 8) + 1 for h, v in zip(heads, vals, strict=True)]
        lines.append("".join(h.rjust(k) for h, k in zip(heads, w, strict=True)) + " ")
        lines.append("".join(v.rjust(k) for v, k in zip(vals, w, strict=True)) + " ")
    lines.append("")
    lines.append("Scaled residuals: ")
    pearson = model.residuals(type="pearson", scaled=True).to_numpy()
    rq = np.quantile(pearson, [0, 0.25, 0.5, 0.75, 1])
    rq = zapsmall(rq, 5)
    cells = format_column(rq, 4)
    w = max(max(len(c) for c in cells), 6)
    lines.append(" ".join(h.rjust(w) for h in ["Min", "1Q", "Median", "3Q", "Max"]) + " ")
    lines.append(" ".join(c.rjust(w) for c in cells) + " ")
    lines.append("")
    lines.append("Random effects:")
    lines.append(varcorr_text(model.varcomp))
    grp = "; ".join(f"{g}, {k}" for g, k in model.ngroups.items())
    lines.append(f"Number of obs: {model.nobs}, groups:  {grp}")
    lines.append("")
    ct = model.coef_table()
    if len(ct):
        lines.append("Fixed effects:")
        est_se = format_column(list(ct["Estimate"]) + list(ct["Std. Error"]), 4)
        k = len(ct)
        tv = [f"{v:.3f}" for v in ct["t value"]]
        rows = [["", "Estimate", "Std. Error", "t value"]]
        for i, nm in enumerate(ct.index):
            rows.append([nm, est_se[i], est_se[k + i], tv[i]])
        lines.append(layout_table(rows, "lrrr"))
        p = len(ct)
        show = (p <= COR_MAX) if correlation is None else bool(correlation)
        if show and p > 1:
            lines.append("")
            lines.append("Correlation of Fixed Effects:")
            lines.append(correlation_text(list(ct.index), model.vcov.to_numpy()))
        elif correlation is None and p > COR_MAX:
            lines.append("")
            lines.append(
                f"Correlation matrix not shown by default, as p = {p} > {COR_MAX}.\n"
                "Use summary(correlation=True) or\n"
                "    vcov                      if you need it"
            )
    else:
        lines.append("No fixed effect coefficients")
    if model.singular:
        lines.append("optimizer (nloptwrap) convergence code: 0 (OK)")
        lines.append(SINGULAR_MESSAGE)
    return LmerSummary("\n".join(lines) + "\n", ct, model.varcorr.copy())


def varcorr_text(vc: VarComp, residual: bool = True) -> str:
    """The "Random effects" table of lme4's ``summary(m)`` (``print(VarCorr(m))``).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> from mlmprimer.rprint import varcorr_text
    >>> print(varcorr_text(lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff")).varcomp))
     Groups   Name        Variance Std.Dev.
     Batch    (Intercept) 1764     42.00
     Residual             2451     49.51

    ``residual=False`` leaves out the residual row (a ``glmer`` fit has none).
    """
    rows_vc = []
    for t in vc:
        for i, nm in enumerate(t.terms):
            rows_vc.append((t.name if i == 0 else "", nm, t.cov[i, i], t.sd[i], t.corr[i, :i], t.p))
    if residual:
        rows_vc.append(("Residual", "", vc.sigma**2, vc.sigma, np.array([]), 1))
    var_s = format_column([r[2] for r in rows_vc], 4)
    sd_s = format_column([r[3] for r in rows_vc], 4)
    maxp = max(r[5] for r in rows_vc)
    head = ["Groups", "Name", "Variance", "Std.Dev."] + (
        ["Corr"] + [""] * (maxp - 2) if maxp > 1 else []
    )
    rows = [head]
    for (g, nm, _, _, cr, _), v, s in zip(rows_vc, var_s, sd_s, strict=True):
        cells = [f"{c:.2f}" if np.isfinite(c) else "NaN" for c in cr]
        cells += [""] * (maxp - 1 - len(cells))
        rows.append([g, nm, v, s] + cells)
    # R left-justifies Variance/Std.Dev. after formatting to a common width
    align = "llll" + "r" * (maxp - 1)
    return layout_table(rows, align, indent=" ")


def r_formula(formula: str) -> str:
    """Python/patsy spellings in a formula as R writes them."""
    f = formula.replace("**", "^")
    f = re.sub(r"\bnp\.", "", f)
    f = re.sub(r"\bC\(([^(),]+)\)", r"factor(\1)", f)
    return f


def format_pvalues(p: Sequence[float], digits: int = 3) -> list[str]:
    """p-values as R's ``printCoefmat`` shows them (``format.pval``, ``< 2e-16`` below eps).

    Values of at least 1e-4 share fixed decimals; smaller ones are in scientific notation.

    Examples
    --------
    >>> from mlmprimer.rprint import format_pvalues
    >>> format_pvalues([1.4688e-09, 0.0010683, 0.00047397, 0.00018187, 1e-20])
    ['1.47e-09', '0.001068', '0.000474', '0.000182', '< 2e-16']
    """
    vals = np.asarray(p, dtype=float)
    eps = float(np.finfo(float).eps)
    out = [""] * len(vals)
    fixed = [i for i, v in enumerate(vals) if v >= 1e-4]
    for i, txt in zip(fixed, format_column([vals[i] for i in fixed], digits), strict=True):
        out[i] = txt
    for i, v in enumerate(vals):
        if v < eps:
            out[i] = "< 2e-16"
        elif v < 1e-4:
            out[i] = f"{v:.{digits - 1}e}"
    return out


def _stars(p: float) -> str:
    for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return mark
    return ""


def glmer_summary(model: Any, correlation: bool | None = None) -> LmerSummary:
    """lme4's ``summary(m)`` of a ``glmer`` fit (Laplace or AGQ header, z tests, stars).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import glmer
    >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
    >>> print(str(m.summary()).split("Fixed effects:")[0])  # doctest: +ELLIPSIS
    Generalized linear mixed model fit by maximum likelihood (Laplace
      Approximation) [glmerMod]
     Family: binomial  ( logit )
    Formula: cbind(incidence, size - incidence) ~ period + (1 | herd)
       Data: data
    <BLANKLINE>
         AIC      BIC   logLik deviance df.resid
       194.1    204.2    -92.0    184.1       51
    ...
    """
    lines = ["Generalized linear mixed model fit by maximum likelihood "]
    if model.nAGQ == 1:
        lines[0] += "(Laplace"
        lines.append("  Approximation) [glmerMod]")
    else:
        lines[0] += "(Adaptive"
        lines.append(f"  Gauss-Hermite Quadrature, nAGQ = {model.nAGQ}) [glmerMod]")
    lines.append(f" Family: {model.family}  ( {model.link} )")
    lines.append(f"Formula: {r_formula(model.formula)}")
    lines.append(f"   Data: {model.data_name}")
    lines.append("")
    vals = [f"{v:.1f}" for v in (model.aic, model.bic, model.loglik, model.deviance)]
    vals.append(str(model.nobs - model.npar))
    heads = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    cw = max(len(x) for x in heads + vals)
    lines.append(" ".join(h.rjust(cw) for h in heads) + " ")
    lines.append(" ".join(v.rjust(cw) for v in vals) + " ")
    lines.append("")
    lines.append("Scaled residuals: ")
    rq = zapsmall(np.quantile(model.residuals("pearson").to_numpy(), [0, 0.25, 0.5, 0.75, 1]), 5)
    cells = format_column(rq, 4)
    cw = max(max(len(c) for c in cells), 6)
    lines.append(" ".join(h.rjust(cw) for h in ["Min", "1Q", "Median", "3Q", "Max"]) + " ")
    lines.append(" ".join(c.rjust(cw) for c in cells) + " ")
    lines.append("")
    lines.append("Random effects:")
    lines.append(varcorr_text(model.varcomp, residual=False))
    grp = "; ".join(f"{g}, {k}" for g, k in model.ngroups.items())
    lines.append(f"Number of obs: {model.nobs}, groups:  {grp}")
    lines.append("")
    ct = model.coef_table()
    if len(ct):
        lines.append("Fixed effects:")
        k = len(ct)
        est_se = format_column(list(ct["Estimate"]) + list(ct["Std. Error"]), 4)
        zv = [f"{v:.3f}" for v in ct["z value"]]
        pv = format_pvalues(list(ct["Pr(>|z|)"]))
        stars = [_stars(v) for v in ct["Pr(>|z|)"]]
        show_stars = any(stars)
        rows = [["", "Estimate", "Std. Error", "z value", "Pr(>|z|)"]]
        for i, nm in enumerate(ct.index):
            rows.append([nm, est_se[i], est_se[k + i], zv[i], pv[i]])
        table = layout_table(rows, "lrrrr").split("\n")
        if show_stars:
            table = [table[0] + "    "] + [
                line + " " + st.ljust(3) for line, st in zip(table[1:], stars, strict=True)
            ]
        lines.extend(table)
        if show_stars:
            lines.append("---")
            lines.append("Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1")
        show = (k <= COR_MAX) if correlation is None else bool(correlation)
        if show and k > 1:
            lines.append("")
            lines.append("Correlation of Fixed Effects:")
            lines.append(correlation_text(list(ct.index), model.vcov.to_numpy()))
    else:
        lines.append("No fixed effect coefficients")
    if model.singular:
        lines.append("optimizer (Nelder_Mead) convergence code: 0 (OK)")
        lines.append(SINGULAR_MESSAGE)
    return LmerSummary("\n".join(lines) + "\n", ct, model.varcorr.copy())
