"""The penalised least squares engine of lme4 (Bates, Maechler, Bolker & Walker, 2015).

The random effects are ``b = Lambda_theta u`` with ``u ~ N(0, sigma^2 I)``; for a given
``theta`` the fixed effects, ``u`` and ``sigma`` have closed forms, leaving the *profiled*
deviance, a function of ``theta`` alone, to be minimised numerically (BOBYQA).

The linear algebra is blocked. With the random terms ordered by number of levels, largest first,
``M = [Z_1 Lambda_1 | Z_rest Lambda_rest | X | y]`` and the cross-product of ``M`` plus the
identity on the random columns is factored as

* ``A_11`` (block diagonal, one small ``p_1 x p_1`` block per level of the first factor),
  factored by a batched Cholesky;
* the dense Schur complement of the remaining columns ``[Z_rest | X | y]``, factored by a dense
  Cholesky whose last diagonal entry is the penalised residual norm.

No ``n x n`` matrix is ever formed; after an ``O(n)`` set-up each evaluation costs a sparse
product and one dense Cholesky of size ``q_rest + p + 1``.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.engine import build_design, optimize_theta, profiled_deviance
>>> from mlmprimer.formula import parse_formula
>>> data = load("dyestuff")
>>> design = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), data)
>>> theta = optimize_theta(design, REML=True)
>>> round(profiled_deviance(theta, design, REML=True), 2)
319.65
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nlopt
import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp

from .formula import (
    ParsedFormula,
    RandomTerm,
    check_finite,
    fixed_design,
    grouping_factor,
    offset_values,
    response_values,
    term_design,
)

__all__ = [
    "ConvergenceError",
    "TermBlock",
    "Design",
    "build_design",
    "profiled_deviance",
    "optimize_theta",
    "fit_theta",
    "ThetaFit",
    "MixedSolution",
    "solve_mixed",
    "theta_to_templates",
]

_LOG2PI = math.log(2.0 * math.pi)


class ConvergenceError(RuntimeError):
    """The optimiser did not reach a minimum of the profiled deviance.

    Examples
    --------
    >>> from mlmprimer.engine import ConvergenceError
    >>> issubclass(ConvergenceError, RuntimeError)
    True
    """


# ----------------------------------------------------------------------------------------------
# design
# ----------------------------------------------------------------------------------------------


@dataclass
class TermBlock:
    """One random-effects term with its grouping factor and columns.

    Attributes
    ----------
    term : RandomTerm
        The parsed term.
    group : str
        Grouping factor name as lme4 prints it (``"Subject"``, ``"cask:batch"``).
    codes : numpy.ndarray of int, shape (n,)
        Level of each observation (0-based).
    levels : pandas.Index
        The levels, in order.
    Xi : numpy.ndarray, shape (n, p)
        The term's columns (its model matrix).
    colnames : list of str
        lme4 names of the columns (``"(Intercept)"``, ``"Days"``).
    theta_start : int
        Index of the term's first entry in ``theta``.
    design_info : object
        patsy design information to rebuild ``Xi`` for new data.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), load("sleepstudy"))
    >>> t = d.terms[0]
    >>> t.group, t.p, t.nlevels, t.ntheta
    ('Subject', 2, 18, 3)
    """

    term: RandomTerm
    group: str
    codes: np.ndarray
    levels: pd.Index
    Xi: np.ndarray
    colnames: list[str]
    theta_start: int = 0
    design_info: Any = None

    @property
    def factors(self) -> tuple[str, ...]:
        """The data columns forming the groups."""
        return self.term.factors

    @property
    def has_intercept(self) -> bool:
        """Whether the term has a random intercept."""
        return self.term.has_intercept

    @property
    def expr(self) -> str:
        """The term's model formula (left of ``|``)."""
        return self.term.expr

    @property
    def p(self) -> int:
        """Number of columns per level."""
        return int(self.Xi.shape[1])

    @property
    def nlevels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def q(self) -> int:
        """Number of random effects of the term (levels x columns)."""
        return self.nlevels * self.p

    @property
    def ntheta(self) -> int:
        """Number of covariance parameters (lower triangle of the template)."""
        return self.p * (self.p + 1) // 2

    @property
    def theta_slice(self) -> slice:
        """Where the term's parameters are in ``theta``."""
        return slice(self.theta_start, self.theta_start + self.ntheta)

    def template(self, theta: np.ndarray) -> np.ndarray:
        """The lower-triangular relative covariance factor T (``p x p``) at ``theta``.

        Examples
        --------
        >>> import numpy as np
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.engine import build_design
        >>> from mlmprimer.formula import parse_formula
        >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"),
        ...                  load("sleepstudy"))
        >>> d.terms[0].template(np.array([1.0, 0.5, 2.0])).tolist()
        [[1.0, 0.0], [0.5, 2.0]]
        """
        T = np.zeros((self.p, self.p))
        T[_tril_colmajor(self.p)] = np.asarray(theta, dtype=float)[self.theta_slice]
        return T


def _tril_colmajor(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a p x p lower triangle in column-major order."""
    rows, cols = [], []
    for j in range(p):
        for i in range(j, p):
            rows.append(i)
            cols.append(j)
    return np.array(rows, dtype=np.intp), np.array(cols, dtype=np.intp)


def theta_to_templates(theta: np.ndarray, design: Design) -> list[np.ndarray]:
    """The templates T_i of every term at ``theta`` (covariance of one level: sigma^2 T T').

    Parameters
    ----------
    theta : numpy.ndarray
    design : Design

    Returns
    -------
    list of numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design, theta_to_templates
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), load("sleepstudy"))
    >>> theta_to_templates(np.array([1.0, 0.5, 2.0]), d)[0]
    array([[1. , 0. ],
           [0.5, 2. ]])
    """
    return [t.template(theta) for t in design.terms]


@dataclass
class Design:
    """Everything the engine needs about one model and data set.

    Attributes
    ----------
    y : numpy.ndarray, shape (n,)
    X : numpy.ndarray, shape (n, p)
        Fixed-effects model matrix (rank-deficient columns already dropped).
    xnames : list of str
        lme4 names of the columns of X.
    terms : list of TermBlock
        Random-effects terms in lme4's order (by decreasing number of levels).
    theta0 : numpy.ndarray
        Starting value (1 on template diagonals, 0 elsewhere).
    lower : numpy.ndarray
        Lower bounds of theta (0 on template diagonals, -inf elsewhere).
    theta_names : list of str
        e.g. ``"Subject.(Intercept)"``, ``"Subject.Days.(Intercept)"``, ``"Subject.Days"``.
    index : pandas.Index
        Row labels of the observations used.
    fixed_info : object
        patsy design information of X.
    dropped : list of str
        Columns of the fixed part dropped because X was rank deficient.
    weights : numpy.ndarray or None
        Prior weights: the residual variance of observation i is sigma^2 / w_i.
    offset : numpy.ndarray or None
        A known part of the linear predictor (coefficient 1): the formula's ``offset()`` terms
        plus the ``offset=`` argument.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), load("sleepstudy"))
    >>> d.n, d.p, d.q, d.theta0.tolist(), d.lower.tolist()
    (180, 2, 36, [1.0, 0.0, 1.0], [0.0, -inf, 0.0])
    """

    y: np.ndarray
    X: np.ndarray
    xnames: list[str]
    terms: list[TermBlock]
    theta0: np.ndarray
    lower: np.ndarray
    theta_names: list[str]
    index: pd.Index
    fixed_info: Any = None
    dropped: list[str] = field(default_factory=list)
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n(self) -> int:
        """Number of observations."""
        return int(self.y.shape[0])

    @property
    def p(self) -> int:
        """Number of fixed-effect columns."""
        return int(self.X.shape[1])

    @property
    def q(self) -> int:
        """Total number of random effects."""
        return sum(t.q for t in self.terms)

    def Z(self) -> sp.csc_matrix:
        """The sparse random-effects model matrix Z (n x q), terms side by side.

        Within a term the columns are level-major: level 1's columns, then level 2's, ...

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.engine import build_design
        >>> from mlmprimer.formula import parse_formula
        >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"),
        ...                  load("sleepstudy"))
        >>> d.Z().shape, d.Z()[:2].toarray()[:, :4].tolist()
        ((180, 36), [[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
        """
        blocks = [_term_Z(t, self.n) for t in self.terms]
        return sp.hstack(blocks, format="csc") if blocks else sp.csc_matrix((self.n, 0))

    def Lambda(self, theta: np.ndarray) -> sp.csc_matrix:
        """The sparse relative covariance factor Lambda_theta (q x q): I_l (kron) T per term.

        Examples
        --------
        >>> import numpy as np
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.engine import build_design
        >>> from mlmprimer.formula import parse_formula
        >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"),
        ...                  load("sleepstudy"))
        >>> d.Lambda(np.array([1.0, 0.5, 2.0])).toarray()[:3, :3].tolist()
        [[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [0.0, 0.0, 1.0]]
        """
        blocks = [
            sp.kron(sp.identity(t.nlevels), sp.csr_matrix(t.template(theta))) for t in self.terms
        ]
        return sp.block_diag(blocks, format="csc")


def _term_Z(t: TermBlock, n: int, Xi: np.ndarray | None = None) -> sp.csr_matrix:
    rows = np.repeat(np.arange(n), t.p)
    cols = (t.codes[:, None] * t.p + np.arange(t.p)[None, :]).ravel()
    values = t.Xi if Xi is None else Xi
    return sp.csr_matrix((values.ravel(), (rows, cols)), shape=(n, t.q))


def _lme4_order(nl: list[int]) -> list[int]:
    """lme4's term order: if any term has more levels than the one before, rev(order(nl))."""
    idx = list(range(len(nl)))
    if any(b > a for a, b in zip(nl, nl[1:], strict=False)):
        idx = sorted(idx, key=lambda i: nl[i])[::-1]
    return idx


def build_design(
    parsed: ParsedFormula,
    data: pd.DataFrame,
    eval_env: Any = None,
    *,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> Design:
    """Build the response, X, the random-effects terms and the theta layout.

    Parameters
    ----------
    parsed : ParsedFormula
        From :func:`mlmprimer.formula.parse_formula`; needs at least one random term.
    data : pandas.DataFrame
        The observations (no missing values in the columns used; see
        :func:`mlmprimer.formula.validate_data`).
    eval_env : mapping or patsy.EvalEnvironment, optional
        Where names in the formula that are not columns are looked up.
    weights : numpy.ndarray, optional
        Prior weights, one per row (positive): the residual variance of row i is
        sigma^2 / w_i, as lme4's ``weights``.
    offset : numpy.ndarray, optional
        Added to the formula's ``offset()`` terms.

    Returns
    -------
    Design

    Raises
    ------
    ValueError
        No random term, a grouping factor with fewer than 2 levels or with as many levels as
        observations, a term with at least as many random effects as observations (as lme4),
        a non-numeric response, or values that are not finite.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("strength ~ 1 + (1 | batch/cask)"), load("pastes"))
    >>> [(t.group, t.nlevels) for t in d.terms]
    [('cask:batch', 30), ('batch', 10)]
    """
    if not parsed.random:
        raise ValueError(
            f"no random-effects terms in {parsed.formula!r}: add one such as (1 | group), "
            "or fit an ordinary linear model"
        )
    n = len(data)
    y = response_values(parsed, data, eval_env)
    check_finite(y, [parsed.response], "response", data.index)
    Xdf, finfo = fixed_design(parsed, data, eval_env)
    X = Xdf.to_numpy(dtype=float)
    xnames = list(Xdf.columns)
    check_finite(X, xnames, "fixed-effects column", data.index)
    off = offset_values(parsed, data, eval_env)
    if offset is not None:
        extra = np.asarray(offset, dtype=float)
        if extra.shape != (n,):
            raise ValueError(f"offset has {extra.size} values for {n} observations")
        off = extra if off is None else off + extra
    if off is not None:
        check_finite(off, ["offset"], "offset", data.index)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,):
            raise ValueError(f"weights has {w.size} values for {n} observations")
        check_finite(w, ["weights"], "weights", data.index)
        if np.any(w <= 0):
            raise ValueError("weights must be positive")
    dropped: list[str] = []
    if X.shape[1] > 0:
        keep = _full_rank_columns(X)
        if len(keep) < X.shape[1]:
            kept = set(keep)
            dropped = [name for j, name in enumerate(xnames) if j not in kept]
            X = X[:, keep]
            xnames = [xnames[j] for j in keep]
    blocks: list[TermBlock] = []
    for term in parsed.random:
        codes, levels = grouping_factor(data, term.factors)
        Xi, names, info = term_design(term, data, eval_env)
        if len(levels) < 2:
            raise ValueError(
                f"grouping factor {term.group!r} has only {len(levels)} level"
                f"{'' if len(levels) == 1 else 's'}: a random effect needs at least 2 groups "
                "(with one group, leave the term out)"
            )
        if len(levels) >= n:
            raise ValueError(
                f"grouping factor {term.group!r} has {len(levels)} levels for {n} observations: "
                "the number of levels must be smaller than the number of observations, or the "
                "random effect cannot be told apart from the residual"
            )
        if Xi.shape[1] == 0:
            raise ValueError(f"the random-effects term {term} has no columns")
        check_finite(Xi, names, f"column of the random-effects term {term}", data.index)
        q = len(levels) * Xi.shape[1]
        if q >= n:
            raise ValueError(
                f"number of observations (={n}) <= number of random effects (={q}) for term "
                f"{term}: the random-effects parameters and the residual variance are probably "
                "unidentifiable (lme4 refuses such a model too)"
                + (
                    f"; the term has {Xi.shape[1]} columns ({', '.join(names[:4])}"
                    f"{', ...' if len(names) > 4 else ''})"
                    if Xi.shape[1] > 2
                    else ""
                )
            )
        blocks.append(TermBlock(term, term.group, codes, levels, Xi, names, 0, info))
    order = _lme4_order([b.nlevels for b in blocks])
    blocks = [blocks[i] for i in order]
    theta0, lower, tnames = [], [], []
    start = 0
    for b in blocks:
        b.theta_start = start
        rows, cols = _tril_colmajor(b.p)
        for i, j in zip(rows, cols, strict=True):
            theta0.append(1.0 if i == j else 0.0)
            lower.append(0.0 if i == j else -np.inf)
            nm = b.colnames[i] if i == j else f"{b.colnames[i]}.{b.colnames[j]}"
            tnames.append(f"{b.group}.{nm}")
        start += b.ntheta
    return Design(
        y=y,
        X=X,
        xnames=xnames,
        terms=blocks,
        theta0=np.array(theta0),
        lower=np.array(lower),
        theta_names=tnames,
        index=data.index,
        fixed_info=finfo,
        dropped=dropped,
        weights=w,
        offset=off,
    )


def _full_rank_columns(X: np.ndarray, tol: float = 1e-7) -> list[int]:
    """Columns of X to keep for a full-rank matrix.

    As R's limited-pivoting QR: columns are taken in order and one that is (numerically) a
    combination of the columns kept before it is dropped.
    """
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        col = X[:, j].astype(float)
        norm = float(np.linalg.norm(col))
        if norm == 0:
            continue
        r = col - Q @ (Q.T @ col)
        r = r - Q @ (Q.T @ r)  # re-orthogonalise
        rn = float(np.linalg.norm(r))
        if rn > tol * norm:
            keep.append(j)
            Q = np.column_stack([Q, r / rn])
    return keep


# ----------------------------------------------------------------------------------------------
# the blocked factorisation
# ----------------------------------------------------------------------------------------------


class _Blocks:
    """Products computed once per design: D (per-level Z_1'Z_1), G = Z_1'W, W'W."""

    def __init__(self, design: Design) -> None:
        terms = design.terms
        n = design.n
        # prior weights: every row of [Z | X | y - offset] is multiplied by sqrt(w_i)
        sw = None if design.weights is None else np.sqrt(design.weights)

        def scaled(a: np.ndarray) -> np.ndarray:
            if sw is None:
                return a
            return a * (sw[:, None] if a.ndim == 2 else sw)

        self.ldw = 0.0 if design.weights is None else float(np.sum(np.log(design.weights)))
        t1 = terms[0]
        p1, l1 = t1.p, t1.nlevels
        self.p1, self.l1 = p1, l1
        X1 = scaled(t1.Xi)
        D = np.zeros((l1, p1, p1))
        for a in range(p1):
            for c in range(a + 1):
                w = np.bincount(t1.codes, weights=X1[:, a] * X1[:, c], minlength=l1)
                D[:, a, c] = w
                D[:, c, a] = w
        self.D = D
        Z1 = _term_Z(t1, n, X1)
        rest = terms[1:]
        self.qr = sum(t.q for t in rest)
        self.p = design.p
        self.m = self.qr + self.p + 1
        parts = [_term_Z(t, n, scaled(t.Xi)) for t in rest]
        y = design.y if design.offset is None else design.y - design.offset
        parts.append(sp.csr_matrix(scaled(np.column_stack([design.X, y]))))
        W = sp.hstack(parts, format="csc")
        self.G = (Z1.T.tocsr() @ W).tocsr()  # q1 x m
        self.G.sort_indices()
        self.Gt = self.G.T.tocsr()
        self.WtW = (W.T @ W).toarray()
        self.rest_scalar = all(t.p == 1 for t in rest)
        # pattern of Lambda_W = blockdiag(Lambda_rest, I_{p+1})
        rows, cols = [], []
        off = 0
        for t in rest:
            r, c = _tril_colmajor(t.p)
            lev = np.arange(t.nlevels)[:, None] * t.p
            rows.append((off + lev + r[None, :]).ravel())
            cols.append((off + lev + c[None, :]).ravel())
            off += t.q
        tail = np.arange(self.qr, self.m)
        rows.append(tail)
        cols.append(tail)
        self._lam_rows = np.concatenate(rows)
        self._lam_cols = np.concatenate(cols)
        self._rest = rest
        self._pairs = self._pair_map()

    def _pair_map(self, limit: int = 30_000_000) -> tuple[np.ndarray, sp.csr_matrix] | None:
        """The linear map from the blocks C_j to the lower triangle of sum_j G_j' C_j G_j.

        ``G_j`` are the ``p_1`` rows of G for level j. Returns the flat indices of the
        entries touched and a sparse matrix P with ``K.flat[idx] = P @ vec(C)``; None if the
        map would be too large (the sparse product is used instead).
        """
        G = self.G.tocoo()
        p1, m = self.p1, self.m
        order = np.lexsort((G.col, G.row // p1))
        row, col, val = G.row[order], G.col[order], G.data[order]
        lev = row // p1
        r = row % p1
        counts = np.bincount(lev, minlength=self.l1)
        total = int(np.sum(counts.astype(np.int64) ** 2))
        if total > limit:
            return None
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        # every ordered pair (e, f) of entries of the same level
        e = np.repeat(np.arange(len(lev)), counts[lev])
        f = starts[lev[e]] + (
            np.arange(total) - np.repeat(np.cumsum(counts[lev]) - counts[lev], counts[lev])
        )
        a, b = col[e], col[f]
        keep = a >= b
        e, f, a, b = e[keep], f[keep], a[keep], b[keep]
        flat = a.astype(np.int64) * m + b
        src = lev[e].astype(np.int64) * p1 * p1 + r[e] * p1 + r[f]
        idx, inv = np.unique(flat, return_inverse=True)
        P = sp.csr_matrix((val[e] * val[f], (inv, src)), shape=(len(idx), self.l1 * p1 * p1))
        P.sum_duplicates()
        return idx, P

    def cross(self, C: np.ndarray) -> np.ndarray:
        """``W'W - G' blockdiag(C) G`` (lower triangle exact; full if Lambda_W is not diagonal).

        C has shape ``(l1, p1, p1)``.
        """
        if self._pairs is not None:
            idx, P = self._pairs
            M = self.WtW.copy()
            M.flat[idx] -= P @ C.ravel()
            if not self.rest_scalar:
                M = np.tril(M) + np.tril(M, -1).T
            return M
        if self.p1 == 1:
            Gs = self.G.copy()
            Gs.data *= np.repeat(C[:, 0, 0], np.diff(self.G.indptr))
        else:
            bd = sp.bsr_matrix(
                (C, np.arange(self.l1), np.arange(self.l1 + 1)),
                shape=(self.l1 * self.p1, self.l1 * self.p1),
            )
            Gs = (bd @ self.G).tocsr()
        return self.WtW - (self.Gt @ Gs).toarray()

    def lambda_w(self, theta: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """Lambda_W as a vector (diagonal case) or a sparse matrix."""
        vals = [np.tile(np.asarray(theta, float)[t.theta_slice], t.nlevels) for t in self._rest]
        vals.append(np.ones(self.p + 1))
        data = np.concatenate(vals)
        if self.rest_scalar:
            return data
        return sp.csr_matrix((data, (self._lam_rows, self._lam_cols)), shape=(self.m, self.m))


def _blocks(design: Design) -> _Blocks:
    b = design._cache.get("blocks")
    if b is None:
        b = _Blocks(design)
        design._cache["blocks"] = b
    return b


@dataclass
class _Factor:
    """The factorisation at one theta."""

    theta: np.ndarray
    T1: np.ndarray
    L11: np.ndarray  # (l1, p1, p1) lower Cholesky factors of A_11's blocks
    Linv: np.ndarray  # their inverses
    Ls: np.ndarray  # lower Cholesky factor of the Schur complement (m x m)
    lam: np.ndarray | sp.csr_matrix
    logdet_L: float
    logdet_RX: float
    r2: float
    ldw: float = 0.0  # sum of log prior weights


def _factorize(theta: np.ndarray, design: Design) -> _Factor:
    B = _blocks(design)
    theta = np.asarray(theta, dtype=float)
    T1 = design.terms[0].template(theta)
    A11 = T1.T @ B.D @ T1
    A11[:, np.arange(B.p1), np.arange(B.p1)] += 1.0
    if B.p1 == 1:
        L11 = np.sqrt(A11)
        Linv = 1.0 / L11
    else:
        L11 = np.linalg.cholesky(A11)
        Linv = np.linalg.inv(L11)
    Bj = Linv @ T1.T
    # T1 A_j^{-1} T1' for every level j
    M = B.cross(np.swapaxes(Bj, 1, 2) @ Bj)
    logdet1 = 2.0 * float(np.sum(np.log(np.diagonal(L11, axis1=1, axis2=2))))
    lam = B.lambda_w(theta)
    if isinstance(lam, np.ndarray):
        S = M
        S *= lam[:, None]
        S *= lam[None, :]
    else:
        S = np.asarray(lam.T @ np.asarray(lam.T @ M).T)
    idx = np.arange(B.qr)
    S[idx, idx] += 1.0
    Ls = sla.cholesky(S, lower=True, check_finite=False, overwrite_a=True)
    dg = np.diagonal(Ls)
    logdet_L = logdet1 + 2.0 * float(np.sum(np.log(dg[: B.qr])))
    logdet_RX = 2.0 * float(np.sum(np.log(dg[B.qr : B.qr + B.p])))
    r2 = float(dg[-1] ** 2)
    return _Factor(theta, T1, L11, Linv, Ls, lam, logdet_L, logdet_RX, r2, B.ldw)


def _deviance(f: _Factor, n: int, p: int, REML: bool) -> float:
    # prior weights add -sum(log w) (the density of y_i has variance sigma^2 / w_i)
    if REML:
        nmp = n - p
        return f.logdet_L + f.logdet_RX + nmp * (1.0 + _LOG2PI + math.log(f.r2 / nmp)) - f.ldw
    return f.logdet_L + n * (1.0 + _LOG2PI + math.log(f.r2 / n)) - f.ldw


def profiled_deviance(theta: np.ndarray, design: Design, REML: bool = True) -> float:
    """The profiled deviance (ML) or REML criterion at ``theta``.

    ML: ``log|L|^2 + n (1 + log(2 pi r^2 / n))``; REML:
    ``log|L|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2 / (n - p)))``. With prior weights the
    rows are scaled by ``sqrt(w_i)`` and both criteria gain ``- sum(log w_i)``, as in lme4.

    Parameters
    ----------
    theta : array_like
        Covariance parameters (see ``design.theta_names``).
    design : Design
    REML : bool, default True

    Returns
    -------
    float
        ``-2 log L`` maximised over beta and sigma (ML), or lme4's REML criterion.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design, profiled_deviance
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), load("sleepstudy"))
    >>> round(profiled_deviance(np.array([0.9667, 0.0152, 0.2309]), d, REML=True), 1)
    1743.6
    """
    theta = np.asarray(theta, dtype=float)
    if theta.shape != design.theta0.shape:
        raise ValueError(f"theta must have {design.theta0.size} entries, got {theta.size}")
    below = [design.theta_names[i] for i in np.flatnonzero(theta < design.lower)]
    if below:
        raise ValueError(
            f"theta is below its lower bound at {', '.join(below)} "
            "(template diagonals must be >= 0)"
        )
    f = _factorize(theta, design)
    return _deviance(f, design.n, design.p, REML)


# ----------------------------------------------------------------------------------------------
# optimisation
# ----------------------------------------------------------------------------------------------


@functools.cache
def _openblas_thread_controls() -> list[tuple[Any, Any]]:
    """(get, set) thread-count functions of the OpenBLAS libraries loaded (Linux only)."""
    controls: list[tuple[Any, Any]] = []
    try:
        import ctypes

        with open("/proc/self/maps", encoding="utf-8") as fh:
            paths = sorted({ln.split()[-1] for ln in fh if "openblas" in ln.rsplit("/", 1)[-1]})
        for path in paths:
            lib = ctypes.CDLL(path)
            for prefix in ("scipy_", ""):
                for suffix in ("", "64_"):
                    get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                    set_ = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
                    if get is not None and set_ is not None:
                        controls.append((get, set_))
    except (OSError, ValueError):  # not Linux, or no OpenBLAS: nothing to control
        controls = []
    return controls


class _SingleThreadedBlas:
    """Run OpenBLAS single-threaded inside the block.

    Each evaluation factors one moderate dense matrix; OpenBLAS's worker threads then cost far
    more CPU than they save (and much more on a busy machine).
    """

    def __enter__(self) -> _SingleThreadedBlas:
        self._saved = []
        for get, set_ in _openblas_thread_controls():
            try:
                self._saved.append((set_, int(get())))
                set_(1)
            except Exception:  # pragma: no cover - best effort
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for set_, n in self._saved:
            try:
                set_(n)
            except Exception:  # pragma: no cover - best effort
                pass


@dataclass
class ThetaFit:
    """Result of minimising the profiled deviance.

    Attributes
    ----------
    theta : numpy.ndarray
    deviance : float
    nevals : int
    path : list of (numpy.ndarray, float)
        Every evaluation, in order.
    message : str

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design, fit_theta
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
    >>> res = fit_theta(d, REML=False)
    >>> round(res.deviance, 2), res.nevals == len(res.path)
    (327.33, True)
    """

    theta: np.ndarray
    deviance: float
    nevals: int
    path: list[tuple[np.ndarray, float]]
    message: str = ""


def _bobyqa(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    step: float | None,
    maxeval: int,
    ftol_abs: float,
    xtol_abs: float,
) -> tuple[np.ndarray, float, int]:
    k = x0.size
    best: list[Any] = [np.inf, x0.copy()]

    def obj(x: np.ndarray, grad: np.ndarray) -> float:
        val = fun(x)
        if val < best[0]:
            best[0], best[1] = val, x.copy()
        return val if np.isfinite(val) else 1e300

    opt = nlopt.opt(nlopt.LN_BOBYQA, k)
    opt.set_lower_bounds(lower.tolist())
    opt.set_min_objective(obj)
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    opt.set_maxeval(maxeval)
    if step is not None:
        opt.set_initial_step(step)
    x0 = np.maximum(x0, lower)
    try:
        opt.optimize(x0.tolist())
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        code = nlopt.ROUNDOFF_LIMITED
    except (RuntimeError, ValueError) as err:
        raise ConvergenceError(f"the optimiser (BOBYQA) failed: {err}") from err
    if code in (nlopt.MAXEVAL_REACHED, nlopt.MAXTIME_REACHED):
        raise ConvergenceError(
            f"the optimiser (BOBYQA) stopped after {maxeval} evaluations without converging "
            f"(best deviance {best[0]:.6f} at theta = {np.round(best[1], 6).tolist()})"
        )
    if code < 0 and code != nlopt.ROUNDOFF_LIMITED:
        raise ConvergenceError(f"the optimiser (BOBYQA) failed with code {code}")
    return best[1], float(best[0]), code


def fit_theta(
    design: Design,
    REML: bool = True,
    *,
    start: np.ndarray | None = None,
    maxeval: int = 100_000,
    ftol_abs: float = 1e-8,
    xtol_abs: float = 1e-8,
    check: bool = True,
) -> ThetaFit:
    """Minimise the profiled deviance over theta with BOBYQA, then verify the optimum.

    BOBYQA runs with lme4's tolerances (``ftol_abs = xtol_abs = 1e-8``). The optimum is then
    checked: a small step along each coordinate must not lower the deviance by more than 1e-6;
    where one does, the search continues from there.

    Parameters
    ----------
    design : Design
    REML : bool, default True
    start : numpy.ndarray, optional
        Starting theta (default ``design.theta0``).
    maxeval : int, default 100000
        Evaluation budget of each BOBYQA run.
    ftol_abs, xtol_abs : float
        Stopping tolerances.
    check : bool, default True
        Verify the optimum by probing its neighbourhood (and restart where that finds lower).

    Returns
    -------
    ThetaFit

    Raises
    ------
    ConvergenceError
        If the optimiser fails or exhausts ``maxeval``.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design, fit_theta
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), load("sleepstudy"))
    >>> round(fit_theta(d).deviance, 3)
    1743.628
    """
    path: list[tuple[np.ndarray, float]] = []
    lower = design.lower

    def fun(x: np.ndarray) -> float:
        x = np.maximum(np.asarray(x, dtype=float), lower)
        try:
            val = _deviance(_factorize(x, design), design.n, design.p, REML)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            val = np.inf
        if not np.isfinite(val):
            val = np.inf
        path.append((x.copy(), float(val)))
        return float(val)

    x0 = design.theta0.copy() if start is None else np.asarray(start, dtype=float).copy()
    with _SingleThreadedBlas():
        x, dev, message = _minimise(fun, x0, lower, maxeval, ftol_abs, xtol_abs, check)
    if not np.isfinite(dev):
        raise ConvergenceError("the profiled deviance is not finite at any theta tried")
    return ThetaFit(theta=x, deviance=dev, nevals=len(path), path=path, message=message)


def _minimise(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    maxeval: int,
    ftol_abs: float,
    xtol_abs: float,
    check: bool,
) -> tuple[np.ndarray, float, str]:
    x, dev, _ = _bobyqa(fun, x0, lower, None, maxeval, ftol_abs, xtol_abs)
    message = "converged"
    if not check:
        return x, dev, message
    for _ in range(10):
        probe = _lower_neighbour(fun, x, dev, lower)
        if probe is None:
            return x, dev, message
        # a nearby theta has a lower deviance: the search stopped short, so continue from there
        x2, d2, _ = _bobyqa(fun, probe, lower, 0.05, maxeval, ftol_abs, xtol_abs)
        x, dev = (x2, d2) if d2 < dev else (probe, fun(probe))
        message = "converged after a restart"
    raise ConvergenceError("the optimiser kept finding lower deviances near its solution")


def _lower_neighbour(
    fun: Callable[[np.ndarray], float], x: np.ndarray, dev: float, lower: np.ndarray
) -> np.ndarray | None:
    """A point one small step from ``x`` along a coordinate with a deviance lower by > 1e-6.

    The check of a local minimum: 2 evaluations per parameter (one towards a bound that ``x``
    sits on), which costs far less than a second optimiser run.
    """
    best, best_dev = None, dev - 1e-6
    for k in range(x.size):
        step = 1e-3 * max(1.0, abs(x[k]))
        for sign in (1.0, -1.0):
            trial = x.copy()
            trial[k] = max(x[k] + sign * step, lower[k])
            if trial[k] == x[k]:
                continue
            d = fun(trial)
            if d < best_dev:
                best, best_dev = trial, d
    return best


def optimize_theta(
    design: Design, REML: bool = True, trace: bool = False, **kwargs: Any
) -> np.ndarray | tuple[np.ndarray, list[tuple[np.ndarray, float]]]:
    """The theta minimising the profiled deviance (REML criterion by default).

    Parameters
    ----------
    design : Design
    REML : bool, default True
    trace : bool, default False
        Also return the path of evaluations.
    **kwargs
        Passed to :func:`fit_theta` (``start``, ``maxeval``, ``ftol_abs``, ``xtol_abs``).

    Returns
    -------
    theta : numpy.ndarray
        Or ``(theta, path)`` with ``trace=True``; ``path`` is a list of ``(theta, deviance)``
        for every evaluation, in order.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design, optimize_theta
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
    >>> theta, path = optimize_theta(d, REML=True, trace=True)
    >>> round(float(theta[0]), 3), len(path) > 5
    (0.848, True)
    """
    res = fit_theta(design, REML, **kwargs)
    if trace:
        return res.theta, res.path
    return res.theta


# ----------------------------------------------------------------------------------------------
# solution at theta
# ----------------------------------------------------------------------------------------------


@dataclass
class MixedSolution:
    """Estimates at a given theta.

    Attributes
    ----------
    theta : numpy.ndarray
    beta : numpy.ndarray
        Fixed effects.
    u : numpy.ndarray
        Spherical random effects (all terms, concatenated; level-major within a term).
    b : list of numpy.ndarray
        Conditional modes of the random effects, one ``(levels, p_i)`` array per term.
    sigma : float
        Residual standard deviation.
    vcov : numpy.ndarray
        Covariance matrix of beta.
    deviance : float
        Profiled deviance (ML) or REML criterion.
    pwrss : float
        Penalised residual sum of squares r^2.
    REML : bool

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design, optimize_theta, solve_mixed
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
    >>> sol = solve_mixed(d, optimize_theta(d))
    >>> round(float(sol.beta[0]), 1), round(sol.sigma, 2)
    (1527.5, 49.51)
    """

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    b: list[np.ndarray]
    sigma: float
    vcov: np.ndarray
    deviance: float
    pwrss: float
    REML: bool
    _factor: _Factor = field(repr=False)
    _design: Design = field(repr=False)

    def fitted(self) -> np.ndarray:
        """X beta + Z b (+ the offset) for the observations.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.engine import build_design, optimize_theta, solve_mixed
        >>> from mlmprimer.formula import parse_formula
        >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
        >>> solve_mixed(d, optimize_theta(d)).fitted().shape
        (30,)
        """
        d = self._design
        out = d.X @ self.beta
        if d.offset is not None:
            out = out + d.offset
        for t, bt in zip(d.terms, self.b, strict=True):
            out = out + np.sum(t.Xi * bt[t.codes], axis=1)
        return out

    def conditional_variances(self) -> list[np.ndarray]:
        """lme4's ``condVar``: ``sigma^2 Lambda A^{-1} Lambda'`` per level, for every term.

        ``A = Lambda' Z' Z Lambda + I`` (random effects only). Returns one array of shape
        ``(levels, p_i, p_i)`` per term.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.engine import build_design, optimize_theta, solve_mixed
        >>> from mlmprimer.formula import parse_formula
        >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"),
        ...                  load("sleepstudy"))
        >>> cv = solve_mixed(d, optimize_theta(d)).conditional_variances()
        >>> cv[0].shape
        (18, 2, 2)
        """
        return _condvar(self._factor, self._design, self.sigma)


def solve_mixed(design: Design, theta: np.ndarray, REML: bool = True) -> MixedSolution:
    """Fixed effects, conditional modes, sigma and vcov(beta) at ``theta``.

    Parameters
    ----------
    design : Design
    theta : numpy.ndarray
    REML : bool, default True
        Decides sigma's denominator (n - p for REML, n for ML) and the deviance reported.

    Returns
    -------
    MixedSolution

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design, solve_mixed
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), load("sleepstudy"))
    >>> sol = solve_mixed(d, np.zeros(3), REML=False)  # theta = 0: ordinary least squares
    >>> np.round(sol.beta, 3).tolist()
    [251.405, 10.467]
    """
    theta = np.asarray(theta, dtype=float)
    B = _blocks(design)
    f = _factorize(theta, design)
    n, p = design.n, design.p
    Ls = f.Ls
    c = Ls[-1, :-1]
    w = sla.solve_triangular(Ls[:-1, :-1], c, trans="T", lower=True, check_finite=False)
    u_rest = w[: B.qr]
    beta = w[B.qr : B.qr + p]
    vec = np.concatenate([w, [-1.0]])
    vec = f.lam * vec if isinstance(f.lam, np.ndarray) else f.lam @ vec
    g = (B.G @ vec).reshape(B.l1, B.p1)
    Bj = f.Linv @ f.T1.T
    v = np.einsum("jab,jb->ja", Bj, g)
    u1 = -np.einsum("jba,jb->ja", f.Linv, v)
    u = np.concatenate([u1.ravel(), u_rest])
    bs = []
    off = 0
    for t in design.terms:
        ut = u[off : off + t.q].reshape(t.nlevels, t.p)
        bs.append(ut @ t.template(theta).T)
        off += t.q
    denom = n - p if REML else n
    sigma2 = f.r2 / denom
    if p > 0:
        Lx = Ls[B.qr : B.qr + p, B.qr : B.qr + p]
        Lxinv = sla.solve_triangular(Lx, np.eye(p), lower=True, check_finite=False)
        vcov = sigma2 * (Lxinv.T @ Lxinv)
    else:
        vcov = np.zeros((0, 0))
    return MixedSolution(
        theta=theta,
        beta=beta,
        u=u,
        b=bs,
        sigma=math.sqrt(sigma2),
        vcov=vcov,
        deviance=_deviance(f, n, p, REML),
        pwrss=f.r2,
        REML=REML,
        _factor=f,
        _design=design,
    )


def _condvar(f: _Factor, design: Design, sigma: float) -> list[np.ndarray]:
    B = _blocks(design)
    qr = B.qr
    # covariance of u (relative to sigma^2), diagonal blocks
    Ainv11 = np.swapaxes(f.Linv, 1, 2) @ f.Linv  # A_j^{-1}
    blocks_u: list[np.ndarray] = []
    if qr > 0:
        Lrr = f.Ls[:qr, :qr]
        E = Ainv11 @ f.T1.T  # A_j^{-1} T1'
        bd = sp.bsr_matrix((E, np.arange(B.l1), np.arange(B.l1 + 1)), shape=(B.l1 * B.p1,) * 2)
        Gr = B.G[:, :qr]
        lam = f.lam
        if isinstance(lam, np.ndarray):
            Nmat = (bd @ Gr) @ sp.diags(lam[:qr])
        else:
            Nmat = (bd @ Gr) @ lam[:qr, :qr]
        P = sla.solve_triangular(
            Lrr, np.asarray(sp.csr_matrix(Nmat).T.toarray()), lower=True, check_finite=False
        )
        P3 = P.reshape(qr, B.l1, B.p1)
        blocks_u.append(Ainv11 + np.einsum("ila,ilb->lab", P3, P3))
        V = sla.solve_triangular(Lrr, np.eye(qr), lower=True, check_finite=False)
        off = 0
        for t in design.terms[1:]:
            Vt = V[:, off : off + t.q].reshape(qr, t.nlevels, t.p)
            blocks_u.append(np.einsum("ila,ilb->lab", Vt, Vt))
            off += t.q
    else:
        blocks_u.append(Ainv11)
    out = []
    s2 = sigma**2
    for t, cu in zip(design.terms, blocks_u, strict=True):
        T = t.template(f.theta)
        out.append(s2 * (T @ cu @ T.T))
    return out
