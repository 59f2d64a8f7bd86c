"""The design of a linear mixed model: response, X, Z, the theta layout, every design check.

Stage 1 of a fit (:func:`mlmprimer.model.lmer` reads as four stages; see :mod:`mlmprimer`):
:func:`model_design` parses the formula, checks the data (:func:`mlmprimer.validate.validate_data`,
the one place of the data checks), drops rows with missing values and builds the
:class:`Design`. The design holds

* ``y`` (n), the fixed-effects matrix ``X`` (n x p, rank-deficient columns dropped);
* one :class:`TermBlock` per random term ``(expr | g)``: its grouping codes and columns
  ``X_i``, so that ``Z = [Z_1 | Z_2 | ...]`` with ``Z_i`` the row-wise Kronecker product of the
  indicators of ``g`` and ``X_i`` (columns level-major), in lme4's term order;
* the layout of ``theta``: term i's template ``T_i`` (``p_i x p_i``, lower triangular) holds
  its entries column-major, ``Lambda = blockdiag(I_{l_i} kron T_i)``, so that ``b = Lambda u``
  and ``Var(b) = sigma^2 Lambda Lambda'``; ``theta0`` (1 on diagonals, 0 elsewhere) and
  ``lower`` (0 on diagonals, -inf elsewhere), as lme4.

A design never changes once built: :meth:`Design.with_response` returns a new one for a new
response (bootstrap, simulation, ``refit``).

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.design import model_design
>>> md = model_design("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
>>> md.design.n, md.design.p, md.design.q, md.design.theta_names
(180, 2, 36, ['Subject.(Intercept)', 'Subject.Days.(Intercept)', 'Subject.Days'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .control import LmerControl
from .formula import ParsedFormula, RandomTerm, parse_formula
from .rterms import fixed_design, grouping_factor, offset_values, response_values, term_design
from .validate import check_finite, validate_data

__all__ = [
    "TermBlock",
    "Design",
    "ModelDesign",
    "build_design",
    "model_design",
    "design_warnings",
    "require_random_terms",
    "term_order",
    "theta_layout",
    "theta_to_templates",
    "tril_colmajor",
]


def require_random_terms(parsed: ParsedFormula) -> None:
    """Raise unless the formula has a random-effects term.

    Examples
    --------
    >>> from mlmprimer.design import require_random_terms
    >>> from mlmprimer.formula import parse_formula
    >>> require_random_terms(parse_formula("y ~ x"))
    Traceback (most recent call last):
    ...
    ValueError: no random-effects terms in 'y ~ x': add one such as (1 | group); ...
    """
    if not parsed.random:
        raise ValueError(
            f"no random-effects terms in {parsed.formula!r}: add one such as (1 | group); for a "
            "model without random effects use statsmodels' ols"
        )


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
    >>> from mlmprimer.design import build_design
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
        >>> from mlmprimer.design import build_design
        >>> from mlmprimer.formula import parse_formula
        >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"),
        ...                  load("sleepstudy"))
        >>> d.terms[0].template(np.array([1.0, 0.5, 2.0])).tolist()
        [[1.0, 0.0], [0.5, 2.0]]
        """
        T = np.zeros((self.p, self.p))
        T[tril_colmajor(self.p)] = np.asarray(theta, dtype=float)[self.theta_slice]
        return T

    def z_block(self, values: np.ndarray | None = None) -> sp.csr_matrix:
        """The term's columns of Z (n x q): row i holds ``values[i]`` in its level's columns.

        ``values`` defaults to the term's own columns ``Xi`` (pass them scaled, for weights).

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.design import build_design
        >>> from mlmprimer.formula import parse_formula
        >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
        >>> d.terms[0].z_block().shape
        (30, 6)
        """
        n = self.codes.shape[0]
        rows = np.repeat(np.arange(n), self.p)
        cols = (self.codes[:, None] * self.p + np.arange(self.p)[None, :]).ravel()
        vals = self.Xi if values is None else values
        return sp.csr_matrix((vals.ravel(), (rows, cols)), shape=(n, self.q))


def tril_colmajor(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a p x p lower triangle in column-major order (theta's order).

    Examples
    --------
    >>> from mlmprimer.design import tril_colmajor
    >>> [r.tolist() for r in tril_colmajor(2)]
    [[0, 1, 1], [0, 0, 1]]
    """
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
    >>> from mlmprimer.design import build_design, theta_to_templates
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
    xtx : numpy.ndarray or None
        ``X'X`` (unweighted) when the design was built by :func:`build_design`, which needs it
        for the rank check; the cross-products of a fit without weights reuse it. Not an
        argument: a design made by ``dataclasses.replace`` (another ``X``) starts without it.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import build_design
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
    xtx: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

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
        >>> from mlmprimer.design import build_design
        >>> from mlmprimer.formula import parse_formula
        >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"),
        ...                  load("sleepstudy"))
        >>> d.Z().shape, d.Z()[:2].toarray()[:, :4].tolist()
        ((180, 36), [[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
        """
        blocks = [t.z_block() for t in self.terms]
        return sp.hstack(blocks, format="csc") if blocks else sp.csc_matrix((self.n, 0))

    def Lambda(self, theta: np.ndarray) -> sp.csc_matrix:
        """The sparse relative covariance factor Lambda_theta (q x q): I_l (kron) T per term.

        Examples
        --------
        >>> import numpy as np
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.design import build_design
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

    def with_response(self, y: np.ndarray) -> Design:
        """The same design (rows, X, Z, weights, offset) with another response vector.

        The one way to fit a new response (parametric bootstrap, simulation, ``refit``):
        nothing is recomputed from the data, and the design itself is left unchanged.

        Parameters
        ----------
        y : array_like, shape (n,)
            On the scale of the formula's response (values of ``log(y)`` for ``log(y) ~ ...``).

        Returns
        -------
        Design

        Raises
        ------
        ValueError
            ``y`` of the wrong length.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.design import build_design
        >>> from mlmprimer.formula import parse_formula
        >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
        >>> d2 = d.with_response(2 * d.y)
        >>> float(d2.y[0] / d.y[0]), d2.X is d.X
        (2.0, True)
        """
        y = np.asarray(y, dtype=float)
        if y.shape != (self.n,):
            raise ValueError(f"the new response has {y.size} values for {self.n} observations")
        new = dataclasses.replace(self, y=y)
        new.xtx = self.xtx  # the same X
        return new


def theta_layout(blocks: list[TermBlock]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Set each term's ``theta_start``; return lme4's start, lower bounds and names of theta.

    Term by term, its template's lower triangle in column-major order: 1 and bound 0 on the
    diagonal, 0 and no bound below it; names ``group.column`` and ``group.row.column``.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import model_design, theta_layout
    >>> d = model_design("Reaction ~ Days + (Days | Subject)", load("sleepstudy")).design
    >>> theta0, lower, names = theta_layout(d.terms)
    >>> theta0.tolist(), lower.tolist(), names[1]
    ([1.0, 0.0, 1.0], [0.0, -inf, 0.0], 'Subject.Days.(Intercept)')
    """
    theta0, lower, names = [], [], []
    start = 0
    for b in blocks:
        b.theta_start = start
        rows, cols = tril_colmajor(b.p)
        for i, j in zip(rows, cols, strict=True):
            theta0.append(1.0 if i == j else 0.0)
            lower.append(0.0 if i == j else -np.inf)
            nm = b.colnames[i] if i == j else f"{b.colnames[i]}.{b.colnames[j]}"
            names.append(f"{b.group}.{nm}")
        start += b.ntheta
    return np.array(theta0), np.array(lower), names


def term_order(nlevels: list[int]) -> list[int]:
    """lme4's order of the random terms, given each term's number of levels in the formula.

    As lme4's ``mkReTrms``: if any term has more levels than the one before it, the terms go
    by decreasing number of levels (``rev(order(nl))``), else they keep the formula's order.

    Examples
    --------
    >>> from mlmprimer.design import term_order
    >>> term_order([6, 24]), term_order([24, 6]), term_order([3, 5, 5])
    ([1, 0], [0, 1], [2, 1, 0])
    """
    idx = list(range(len(nlevels)))
    if any(b > a for a, b in zip(nlevels, nlevels[1:], strict=False)):
        idx = sorted(idx, key=lambda i: nlevels[i])[::-1]
    return idx


def build_design(
    parsed: ParsedFormula,
    data: pd.DataFrame,
    eval_env: Any = None,
    *,
    weights: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    control: LmerControl | None = None,
    glmm: bool = False,
) -> Design:
    """Build the response, X, the random-effects terms and the theta layout.

    Parameters
    ----------
    parsed : ParsedFormula
        From :func:`mlmprimer.formula.parse_formula`; needs at least one random term.
    data : pandas.DataFrame
        The observations (no missing values in the columns used; see
        :func:`mlmprimer.validate.validate_data`).
    eval_env : mapping or patsy.EvalEnvironment, optional
        Where names in the formula that are not columns are looked up.
    weights : numpy.ndarray, optional
        Prior weights, one per row (positive): the residual variance of row i is
        sigma^2 / w_i, as lme4's ``weights``.
    offset : numpy.ndarray, optional
        Added to the formula's ``offset()`` terms.
    control : LmerControl, optional
        Its ``rank_tol`` decides which fixed-effects columns are dropped.
    glmm : bool, default False
        A generalized linear mixed model (no residual term): as lme4's ``glmer``, a grouping
        factor may have one level per observation (an observation-level random effect).

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
    >>> from mlmprimer.design import build_design
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("strength ~ 1 + (1 | batch/cask)"), load("pastes"))
    >>> [(t.group, t.nlevels) for t in d.terms]
    [('cask:batch', 30), ('batch', 10)]
    """
    require_random_terms(parsed)
    ctrl = LmerControl() if control is None else control
    n = len(data)
    y = response_values(parsed, data, eval_env)
    check_finite(y, [parsed.response], "response", data.index)
    Xdf, finfo = fixed_design(parsed, data, eval_env)
    X = Xdf.to_numpy(dtype=float)
    xnames = list(Xdf.columns)
    # X'X serves the finiteness check (its diagonal is finite exactly when every value is,
    # short of overflow), the rank check and, without weights, the fit's cross-products
    G = X.T @ X
    if not np.all(np.isfinite(np.diag(G))):
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
        keep = _full_rank_columns(X, ctrl.rank_tol, G)
        if len(keep) < X.shape[1]:
            kept = set(keep)
            dropped = [name for j, name in enumerate(xnames) if j not in kept]
            X = np.asfortranarray(X[:, keep])
            xnames = [xnames[j] for j in keep]
            G = G[np.ix_(keep, keep)]
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
        if len(levels) >= n and not glmm:
            raise ValueError(
                f"grouping factor {term.group!r} has {len(levels)} levels for {n} observations: "
                "the number of levels must be smaller than the number of observations, or the "
                "random effect cannot be told apart from the residual"
            )
        if Xi.shape[1] == 0:
            raise ValueError(f"the random-effects term {term} has no columns")
        check_finite(Xi, names, f"column of the random-effects term {term}", data.index)
        q = len(levels) * Xi.shape[1]
        if q >= n and not glmm:
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
    order = term_order([b.nlevels for b in blocks])
    blocks = [blocks[i] for i in order]
    theta0, lower, tnames = theta_layout(blocks)
    design = Design(
        y=y,
        X=X,
        xnames=xnames,
        terms=blocks,
        theta0=theta0,
        lower=lower,
        theta_names=tnames,
        index=data.index,
        fixed_info=finfo,
        dropped=dropped,
        weights=w,
        offset=off,
    )
    design.xtx = G
    return design


#: smallest eigenvalue of the scaled X'X (a correlation-like matrix) that needs no pivoting
FULL_RANK_EIGEN = 1e-6


def _full_rank_columns(X: np.ndarray, tol: float = 1e-7, G: np.ndarray | None = None) -> list[int]:
    """Columns of X to keep for a full-rank matrix.

    As R's limited-pivoting QR: columns are taken in order and one that is (numerically) a
    combination of the columns kept before it is dropped (its residual norm at most ``tol``
    times its norm). First, on the p x p matrix ``X'X`` scaled to a unit diagonal: if its
    smallest eigenvalue exceeds :data:`FULL_RANK_EIGEN`, every column's relative residual
    against any others is at least its square root (1e-3, far above ``tol`` and above the
    rounding of ``X'X``), so all are kept with no pass over the rows; otherwise (some column
    collinear or nearly so) the columns are taken in order as R does, by Gram-Schmidt on X.
    ``G`` is ``X'X`` when the caller has it.
    """
    p = X.shape[1]
    G = X.T @ X if G is None else G
    d = np.diag(G).copy()
    if p == 0 or np.all(d > 0):
        s = 1.0 / np.sqrt(d)
        if p == 0 or np.linalg.eigvalsh(G * s[:, None] * s[None, :])[0] > FULL_RANK_EIGEN:
            return list(range(p))
    return _gram_schmidt_columns(X, tol)


def _gram_schmidt_columns(X: np.ndarray, tol: float) -> list[int]:
    """R's in-order rule by (re-orthogonalised) Gram-Schmidt on the columns of X."""
    keep: list[int] = []
    Q = np.empty((X.shape[0], X.shape[1]), order="F")
    for j in range(X.shape[1]):
        col = X[:, j].astype(float)
        norm = float(np.linalg.norm(col))
        if norm == 0:
            continue
        Qk = Q[:, : len(keep)]
        r = col - Qk @ (Qk.T @ col)
        r = r - Qk @ (Qk.T @ r)  # re-orthogonalise
        rn = float(np.linalg.norm(r))
        if rn > tol * norm:
            Q[:, len(keep)] = r / rn
            keep.append(j)
    return keep


def design_warnings(design: Design, control: LmerControl | None = None) -> list[str]:
    """The warnings a design deserves: dropped columns, few groups, unidentified slopes.

    Parameters
    ----------
    design : Design
    control : LmerControl, optional
        Its ``few_levels`` is the number of levels below which a factor is warned about.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import build_design, design_warnings
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("diameter ~ 1 + (1 | sample)"), load("penicillin"))
    >>> design_warnings(d)  # 6 samples: no warning
    []
    """
    ctrl = LmerControl() if control is None else control
    notes: list[str] = []
    if design.dropped:
        k = len(design.dropped)
        notes.append(
            f"fixed-effect model matrix is rank deficient so dropping {k} column"
            f"{'s' if k > 1 else ''} / coefficient{'s' if k > 1 else ''}: "
            + ", ".join(design.dropped)
        )
    for g, nl in {t.group: t.nlevels for t in design.terms}.items():
        if nl < ctrl.few_levels:
            notes.append(
                f"grouping factor {g!r} has only {nl} levels: its variance is poorly estimated "
                "from so few groups; consider treating it as a fixed effect"
            )
    for t in design.terms:
        slopes = [c for c in t.colnames if c != "(Intercept)"]
        if slopes:
            single = int(np.sum(np.bincount(t.codes, minlength=t.nlevels) == 1))
            if single:
                notes.append(
                    f"{single} of {t.nlevels} groups of {t.group!r} have a single observation; "
                    f"the random slope for {', '.join(slopes)} is not identified within them"
                )
    return notes


@dataclass
class ModelDesign:
    """Stage 1 of a fit: the parsed formula, the rows used, the design and the warnings.

    Attributes
    ----------
    parsed : ParsedFormula
    data : pandas.DataFrame
        The rows used (missing values dropped, columns converted as the checks report).
    design : Design
    notes : list of str
        Warnings of the data checks and of the design, in order.
    offset_rows : numpy.ndarray or None
        The ``offset=`` argument for the rows used (without the formula's ``offset()``).
    """

    parsed: ParsedFormula
    data: pd.DataFrame
    design: Design
    notes: list[str] = field(default_factory=list)
    offset_rows: np.ndarray | None = None


def model_design(
    formula: str,
    data: pd.DataFrame,
    eval_env: Any = None,
    *,
    weights: Any = None,
    offset: Any = None,
    control: LmerControl | None = None,
) -> ModelDesign:
    """Parse, check the data, drop incomplete rows and build the design (lme4's ``lFormula``).

    Parameters
    ----------
    formula : str
        lme4's formula syntax.
    data : pandas.DataFrame
    eval_env : mapping or patsy.EvalEnvironment, optional
        Where names that are not columns are looked up.
    weights, offset : optional
        As :func:`mlmprimer.model.lmer` takes them (arrays, Series or expressions).
    control : LmerControl, optional

    Returns
    -------
    ModelDesign

    Raises
    ------
    FormulaError, ValueError
        See :func:`mlmprimer.validate.validate_data` and :func:`build_design`.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import model_design
    >>> md = model_design("diameter ~ 1 + (1 | plate) + (1 | sample)", load("penicillin"))
    >>> [(t.group, t.nlevels) for t in md.design.terms], md.notes
    ([('plate', 24), ('sample', 6)], [])
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    parsed = parse_formula(formula)
    require_random_terms(parsed)
    checked = validate_data(parsed, data, eval_env, weights=weights, offset=offset)
    design = build_design(
        parsed,
        checked.data,
        eval_env,
        weights=checked.weights,
        offset=checked.offset,
        control=control,
    )
    notes = list(checked.notes) + design_warnings(design, control)
    return ModelDesign(parsed, checked.data, design, notes, checked.offset)
