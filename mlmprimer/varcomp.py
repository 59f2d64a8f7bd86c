"""The variance components of a fit: covariance, SDs and correlations of each random term.

Built once per fit from theta and sigma (the covariance of one level's effects of term i is
``sigma^2 T_i T_i'``, ``T_i`` the term's template), :class:`VarComp` is what
``LmerModel.varcorr`` shows (:meth:`VarComp.frame`, R's ``as.data.frame(VarCorr(m))``) and what
:func:`mlmprimer.icc`, :func:`mlmprimer.r2`, :func:`mlmprimer.pooling` and
:func:`mlmprimer.compare` read.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.model import lmer
>>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
>>> vc = m.varcomp
>>> vc["Subject"].sd.round(2).tolist(), round(vc.sigma, 2)
([24.74, 5.92], 25.59)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .design import Design

__all__ = ["TermVariance", "VarComp", "unique_names", "variance_components"]


@dataclass(frozen=True)
class TermVariance:
    """The variance parameters of one random-effects term.

    Attributes
    ----------
    name : str
        The term's label in ``varcorr`` (the grouping factor, made unique as R's
        ``make.unique``: ``"Subject"``, ``"Subject.1"`` for ``(Days || Subject)``).
    group : str
        The grouping factor.
    terms : list of str
        The columns' lme4 names (``"(Intercept)"``, ``"Days"``).
    cov : numpy.ndarray, shape (p, p)
        Covariance of one level's effects, ``sigma^2 T T'``.
    sd : numpy.ndarray, shape (p,)
    corr : numpy.ndarray, shape (p, p)
        Correlations in the lower triangle (NaN above it, on the diagonal and where an SD
        is 0).
    Xi : numpy.ndarray, shape (n, p)
        The term's columns on the rows used.
    """

    name: str
    group: str
    terms: list[str]
    cov: np.ndarray
    sd: np.ndarray
    corr: np.ndarray
    Xi: np.ndarray

    @property
    def p(self) -> int:
        """Number of columns."""
        return len(self.terms)

    def mean_variance(self) -> float:
        """Variance of the term's effect on a row, averaged over the rows: mean of z' Sigma z.

        For a random intercept this is tau^2 (Johnson 2014 for slopes).
        """
        if self.terms == ["(Intercept)"]:
            return float(self.cov[0, 0])
        return float(np.mean(np.einsum("ij,jk,ik->i", self.Xi, self.cov, self.Xi)))


@dataclass(frozen=True)
class VarComp:
    """Variance components of a fit: one :class:`TermVariance` per term, and sigma.

    Iterating gives the terms in lme4's order; ``vc[name]`` finds one by its label.

    Attributes
    ----------
    terms : tuple of TermVariance
    sigma : float
        Residual standard deviation.
    fixed_variance : float
        Variance of the fixed-effects predictions ``X beta`` over the rows used (``var()``
        with ``n - 1``, as R), the ``sigma^2_f`` of R^2 and of the unadjusted ICC.
    """

    terms: tuple[TermVariance, ...]
    sigma: float
    fixed_variance: float = 0.0

    def __iter__(self) -> Iterator[TermVariance]:
        return iter(self.terms)

    def __len__(self) -> int:
        return len(self.terms)

    def __getitem__(self, name: str) -> TermVariance:
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(f"no random-effects term {name!r}; terms: {[t.name for t in self]}")

    @property
    def has_slopes(self) -> bool:
        """Whether a term has more than a random intercept."""
        return any(t.terms != ["(Intercept)"] for t in self.terms)

    def mean_variances(self) -> pd.Series:
        """Each term's :meth:`TermVariance.mean_variance`, indexed by its label.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", load("penicillin"))
        >>> m.varcomp.mean_variances().round(3).to_dict()
        {'plate': 0.717, 'sample': 3.731}
        """
        values = {t.name: t.mean_variance() for t in self.terms}
        return pd.Series(values, dtype=float, name="variance")

    def frame(self) -> pd.DataFrame:
        """R's ``as.data.frame(VarCorr(m))``: ``grp, var1, var2, vcov, sdcor``.

        Variances then correlations per term, ``Residual`` last; a correlation row carries the
        covariance in ``vcov``.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.model import lmer
        >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
        >>> m.varcomp.frame()["grp"].tolist()
        ['Batch', 'Residual']
        """
        rows = []
        for t in self.terms:
            for i, nm in enumerate(t.terms):
                rows.append((t.name, nm, None, t.cov[i, i], t.sd[i]))
            for j in range(t.p):
                for i in range(j + 1, t.p):
                    rows.append((t.name, t.terms[j], t.terms[i], t.cov[i, j], t.corr[i, j]))
        rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        out = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
        for c in ("grp", "var1", "var2"):
            out[c] = out[c].astype("str")
        return out


def unique_names(names: list[str]) -> list[str]:
    """R's make.unique: 'Subject', 'Subject.1', ...

    Examples
    --------
    >>> from mlmprimer.varcomp import unique_names
    >>> unique_names(["g", "g", "h"])
    ['g', 'g.1', 'h']
    """
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


def variance_components(
    design: Design, theta: np.ndarray, sigma: float, beta: np.ndarray | None = None
) -> VarComp:
    """The variance components at ``theta`` and ``sigma`` (lme4's ``VarCorr``).

    Parameters
    ----------
    design : Design
    theta : numpy.ndarray
    sigma : float
    beta : numpy.ndarray, optional
        The fixed effects, for ``fixed_variance`` (0 without them).

    Returns
    -------
    VarComp

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import build_design
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.varcomp import variance_components
    >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), load("sleepstudy"))
    >>> vc = variance_components(d, np.array([1.0, 0.0, 0.5]), 2.0)
    >>> vc["Subject"].cov.tolist()
    [[4.0, 0.0], [0.0, 1.0]]
    """
    theta = np.asarray(theta, dtype=float)
    s2 = sigma**2
    names = unique_names([t.group for t in design.terms])
    out = []
    for t, name in zip(design.terms, names, strict=True):
        T = t.template(theta)
        cov = s2 * (T @ T.T)
        sd = np.sqrt(np.diag(cov))
        corr = np.full((t.p, t.p), np.nan)
        for i in range(t.p):
            for j in range(i):
                denom = sd[i] * sd[j]
                if denom > 0:
                    corr[i, j] = cov[i, j] / denom
        out.append(TermVariance(name, t.group, list(t.colnames), cov, sd, corr, t.Xi))
    fixed = 0.0
    if beta is not None and design.n > 1:
        fixed = float(np.var(design.X @ np.asarray(beta, dtype=float), ddof=1))
    return VarComp(tuple(out), float(sigma), fixed)
