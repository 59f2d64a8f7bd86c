"""The profiled deviance of a design: the blocked Cholesky factorisation (Bates et al. 2015).

Stage 2 of a fit: :func:`deviance_function` turns a design into ``d(theta)``, the deviance with
beta and sigma profiled out. For a given theta (``Lambda = Lambda_theta``):

1. ``A = Lambda' Z' Z Lambda + I_q``;
2. the penalised least squares problem
   ``min_{u, beta} ||y - X beta - Z Lambda u||^2 + ||u||^2``, solved through the Cholesky factor
   of the cross-product of ``[Z Lambda | X | y]`` (plus ``I`` on the random columns); its last
   diagonal entry is ``r``, the minimised penalised residual norm, and its ``X`` block is
   ``R_X``;
3. ML: ``d(theta) = log|L|^2 + n (1 + log(2 pi r^2 / n))``;
   REML: ``d_R(theta) = log|L|^2 + log|R_X|^2 + (n - p) (1 + log(2 pi r^2 / (n - p)))``;
   prior weights scale every row by ``sqrt(w_i)`` and add ``- sum(log w_i)``.

The linear algebra is blocked. With the random terms ordered by number of levels, largest first,
``M = [Z_1 Lambda_1 | Z_rest Lambda_rest | X | y]`` and the cross-product of ``M`` plus the
identity on the random columns is factored as

* ``A_11`` (block diagonal, one small ``p_1 x p_1`` block per level of the first factor),
  factored by a batched Cholesky;
* the dense Schur complement of the remaining columns ``[Z_rest | X | y]``, factored by a dense
  Cholesky whose last diagonal entry is the penalised residual norm.

No ``n x n`` matrix is ever formed; after an ``O(n)`` set-up (:class:`CrossProducts`, held by the
deviance function) each evaluation costs a sparse product and one dense Cholesky of size
``q_rest + p + 1``.

Examples
--------
>>> import numpy as np
>>> from mlmprimer.datasets import load
>>> from mlmprimer.design import model_design
>>> from mlmprimer.factor import deviance_function
>>> d = model_design("Yield ~ 1 + (1 | Batch)", load("dyestuff")).design
>>> devfun = deviance_function(d, REML=True)
>>> round(devfun(np.array([0.848])), 2)
319.65
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .design import Design, TermBlock, tril_colmajor
from .fulldense import FULL_DENSE_MAX, FullDense
from .groupsums import columns_of, gram_w, level_sums, pair_sums, scaled_columns, scaled_tail
from .schur import (
    DENSE_MIN_PAIRS,
    SparseSchur,
    choose_schur,
    dense_gram,
    dense_gram_operand,
    sparse_cross,
    sparse_pattern,
    sparse_schur,
)
from .singleterm import SingleTerm
from .smallblocks import CLOSED_FORM_MIN_LEVELS, level_blocks

__all__ = [
    "LOG2PI",
    "CrossProducts",
    "Factor",
    "ProfiledDeviance",
    "SparseFactor",
    "deviance_at",
    "deviance_function",
    "factorize",
    "profiled_deviance",
]

#: log(2 pi), in every Gaussian deviance
LOG2PI = math.log(2.0 * math.pi)

#: The largest pair map (entries) held as a dense array.
DENSE_PAIR_MAX = 4_000_000


class CrossProducts:
    """Products computed once per design: D (per-level Z_1'Z_1), G = Z_1'W, W'W.

    ``W = [Z_rest | X | y - offset]``, every row scaled by ``sqrt(w_i)`` under prior weights.
    They depend on ``y``: a new response is a new design (:meth:`Design.with_response`) and
    so new products.

    They are grouped sums over the rows (one pass per pair of columns), with no sparse matrix
    of n rows: per level of a term with ``np.bincount`` of its codes, per pair of levels of
    two terms with ``np.bincount`` of the combined codes (kept sparse: occupied pairs only);
    ``X'X``, ``X'y`` and ``y'y`` are BLAS products of the columns of X and y. The grouped
    sums add their products row by row in row order, as the sparse products ``Z_1'W`` and
    ``Z_rest'W`` do.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import model_design
    >>> from mlmprimer.factor import CrossProducts
    >>> d = model_design("diameter ~ 1 + (1 | plate) + (1 | sample)", load("penicillin")).design
    >>> B = CrossProducts(d)
    >>> B.l1, B.qr, B.m
    (24, 6, 8)
    """

    def __init__(self, design: Design) -> None:
        # one pass over the rows by grouped sums (np.bincount), no sparse assembly of Z; every
        # grouped sum adds the products of the (sqrt(w)-scaled) columns in row order
        w = design.weights
        sw = None if w is None else np.sqrt(w)
        ldw = 0.0 if w is None else float(np.sum(np.log(w)))
        t1, rest = design.terms[0], list(design.terms[1:])
        y = design.y if design.offset is None else design.y - design.offset
        Xs, ys = scaled_tail(design.X, y, sw)
        tail = [*Xs.T, ys] if sw is not None else scaled_columns([*Xs.T, ys], None)
        u1 = scaled_columns(columns_of(t1.Xi), sw)
        buf = np.empty(design.n)  # the products of two columns, one pair at a time
        D = level_sums(t1.codes, t1.nlevels, u1, u1, buf, symmetric=True)
        qr = sum(t.q for t in rest)
        m = qr + design.p + 1
        # G = Z_1'W: sparse against Z_rest (occupied pairs of levels only), dense against [X | y]
        rows, cols, vals = [], [], []
        off = 0
        for t in rest:
            r, c, v = pair_sums(t1.codes, t1.nlevels, u1, t.codes, t.nlevels, t.Xi, sw, buf)
            rows.append(r)
            cols.append(c + off)
            vals.append(v)
            off += t.q
        counts = D[:, 0, 0] if u1[0] is None else None  # an intercept against one
        dense = level_sums(t1.codes, t1.nlevels, u1, tail, buf, counts=counts)
        dense = dense.reshape(t1.q, m - qr)
        if not rest and dense.all():  # every entry stored: the CSR arrays directly
            G = sp.csr_matrix(
                (dense.ravel(), np.tile(np.arange(m), t1.q), np.arange(0, t1.q * m + 1, m)),
                shape=(t1.q, m),
            )
        else:
            rows.append(np.repeat(np.arange(t1.q), m - qr))
            cols.append(np.tile(np.arange(qr, m), t1.q))
            vals.append(dense.ravel())
            G = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=(t1.q, m),
            )
            G.eliminate_zeros()
        xtx = design.xtx if sw is None and design.xtx is not None else Xs.T @ Xs
        self._set(rest, D, G, gram_w(rest, xtx, Xs, ys, tail, sw, buf), design.p, ldw)

    @classmethod
    def from_sums(
        cls,
        rest: Sequence[TermBlock],
        D: np.ndarray,
        G: sp.spmatrix | np.ndarray,
        WtW: np.ndarray,
        p: int,
        ldw: float = 0.0,
    ) -> CrossProducts:
        """Products given as sums already computed elsewhere (a database, chunks of rows).

        ``rest`` are the random terms after the first (their ``p``, ``nlevels``, ``q`` and
        ``theta_slice`` are used, never their rows); ``D`` is ``(l1, p1, p1)``, ``G`` is
        ``Z_1'W`` (``l1 p1 x m``), ``WtW`` is ``W'W`` (``m x m``) with
        ``W = [Z_rest | X | y - offset]`` and ``ldw`` the sum of the log prior weights.

        Examples
        --------
        >>> import numpy as np
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.design import model_design
        >>> from mlmprimer.factor import CrossProducts
        >>> d = model_design("Yield ~ 1 + (1 | Batch)", load("dyestuff")).design
        >>> B = CrossProducts(d)
        >>> C = CrossProducts.from_sums(d.terms[1:], B.D, B.G, B.WtW, d.p)
        >>> bool(np.allclose(C.cross(np.ones((6, 1, 1))), B.cross(np.ones((6, 1, 1)))))
        True
        """
        self = cls.__new__(cls)
        self._set(list(rest), np.asarray(D, dtype=float), sp.csr_matrix(G), WtW, p, ldw)
        return self

    def _set(
        self,
        rest: list[TermBlock],
        D: np.ndarray,
        G: sp.csr_matrix,
        WtW: np.ndarray,
        p: int,
        ldw: float,
    ) -> None:
        self.ldw = float(ldw)
        self.l1, self.p1 = D.shape[0], D.shape[1]
        self.D = D
        self.qr = sum(t.q for t in rest)
        self.p = int(p)
        self.m = self.qr + self.p + 1
        if G.shape != (self.l1 * self.p1, self.m) or WtW.shape != (self.m, self.m):
            raise ValueError(
                f"cross-products do not fit together: G is {G.shape}, W'W is {WtW.shape}, "
                f"expected {(self.l1 * self.p1, self.m)} and {(self.m, self.m)}"
            )
        self.G = G
        self.G.sort_indices()
        self.WtW = np.asarray(WtW, dtype=float)
        self.rest_scalar = all(t.p == 1 for t in rest)
        # pattern of Lambda_W = blockdiag(Lambda_rest, I_{p+1})
        rows, cols = [], []
        off = 0
        for t in rest:
            r, c = tril_colmajor(t.p)
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

    @functools.cached_property
    def _pairs(self) -> tuple[np.ndarray, sp.csr_matrix | np.ndarray] | None:
        """The pair map (or None), and the dense operand ``_Gd``, formed at the first product:
        a fit whose evaluations take another path (:mod:`mlmprimer.singleterm`) needs them for
        the solution only."""
        return self._pair_map()

    def _pair_map(
        self, limit: int = 30_000_000
    ) -> tuple[np.ndarray, sp.csr_matrix | np.ndarray] | None:
        """The linear map from the blocks C_j to the lower triangle of sum_j G_j' C_j G_j.

        ``G_j`` are the ``p_1`` rows of G for level j. Returns the flat indices of the
        entries touched and a sparse matrix P with ``K.flat[idx] = P @ vec(C)`` (held dense
        when at least half full, for a first term with slopes and many levels); None if the
        map would be too large (the sparse product is used instead).
        """
        p1, m = self.p1, self.m
        self._sparse_pattern = None
        self._Gd = None
        if self.qr == 0 and p1 == 1:
            # G is Z_1'[X | y] alone, a dense l1 x (p + 1): one syrk an evaluation, no map
            self._Gd = dense_gram_operand(self.G, self.l1, p1, m, math.inf)
            if self._Gd is not None:
                return None
        G = self.G.tocoo()
        order = np.lexsort((G.col, G.row // p1))
        row, col, val = G.row[order], G.col[order], G.data[order]
        lev = row // p1
        r = row % p1
        counts = np.bincount(lev, minlength=self.l1)
        total = int(np.sum(counts.astype(np.int64) ** 2))
        if total > limit:
            # the sparse product: ~2.5 ns a pair, ~50 ns an entry of its result
            cost = 2.5 * total + 50.0 * min(float(m) ** 2, total)
            self._Gd = dense_gram_operand(self.G, self.l1, p1, m, cost)
            return None
        if self.qr == 0 and p1 > 1 and self.l1 >= CLOSED_FORM_MIN_LEVELS:
            dense = self._dense_pair_map()
            if dense is not None:
                return dense
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
        if P.nnz > DENSE_MIN_PAIRS:
            cost = 2.0 * P.nnz + float(m) ** 2  # the pair map's product and a copy of W'W
            self._Gd = dense_gram_operand(self.G, self.l1, p1, m, cost)
        size = P.shape[0] * P.shape[1]
        if p1 > 1 and self.l1 >= CLOSED_FORM_MIN_LEVELS and 2 * P.nnz >= size <= DENSE_PAIR_MAX:
            # a mostly full map (slopes against [X | y] only): BLAS's product is ~3x faster
            return idx, P.toarray()
        return idx, P

    def _dense_pair_map(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The pair map of :meth:`_pair_map` for a G without ``Z_rest`` (dense ``l1 p1 x m``).

        Row k of P is the lower-triangle entry ``(a_k, b_k)``, column ``(j, r, s)`` holds
        ``G[j p1 + r, a_k] G[j p1 + s, b_k]``: the same products as the general construction,
        formed by broadcasting. None if P would be too large or mostly zero.
        """
        p1, m, l1 = self.p1, self.m, self.l1
        a, b = np.tril_indices(m)  # flat indices a m + b, ascending
        size = a.size * l1 * p1 * p1
        if size > DENSE_PAIR_MAX:
            return None
        Gd = self.G.toarray().reshape(l1, p1, m)
        P = np.einsum("jrk,jsk->kjrs", Gd[:, :, a], Gd[:, :, b]).reshape(a.size, -1)
        nnz = int(np.count_nonzero(P))
        if 2 * nnz < size:
            return None
        if nnz > DENSE_MIN_PAIRS:
            cost = 2.0 * nnz + float(m) ** 2  # as for the sparse map
            self._Gd = dense_gram_operand(self.G, self.l1, p1, m, cost)
        return a.astype(np.int64) * m + b, P

    @functools.cached_property
    def Gt(self) -> sp.csr_matrix:
        """``G'`` by rows (for the sparse products), formed at its first use."""
        return self.G.T.tocsr()

    def cross(self, C: np.ndarray) -> np.ndarray:
        """``W'W - G' blockdiag(C) G`` (lower triangle exact; full if Lambda_W is not diagonal).

        C has shape ``(l1, p1, p1)``. By a BLAS product with G held dense when that is
        estimated cheapest (:func:`mlmprimer.schur.dense_gram_operand`), else by the pair map
        (small designs) or a sparse product.
        """
        pairs = self._pairs  # sets _Gd too
        if self._Gd is not None:
            M = dense_gram(self._Gd, C, self.WtW)
            if not self.rest_scalar:
                M = np.tril(M) + np.tril(M, -1).T
            return M
        if pairs is not None:
            idx, P = pairs
            M = self.WtW.copy()
            M.flat[idx] -= P @ C.ravel()
            if not self.rest_scalar:
                M = np.tril(M) + np.tril(M, -1).T
            return M
        return self.WtW - (self.Gt @ self._scaled_g(C)).toarray()

    def cross_sparse(self, C: np.ndarray) -> sp.csc_matrix:
        """``W'W - G' blockdiag(C) G`` as a sparse matrix, both triangles (the sparse Schur step).

        Through the pair map on a pattern fixed at the first call when there is one, else by a
        sparse product.
        """
        if self._pairs is not None:
            if getattr(self, "_sparse_pattern", None) is None:
                self._sparse_pattern = sparse_pattern(self.WtW, self._pairs[0])
            return sparse_cross(self._sparse_pattern, self._pairs[1] @ C.ravel())
        if getattr(self, "_WtW_sparse", None) is None:
            self._WtW_sparse = sp.csc_matrix(self.WtW)
        return sp.csc_matrix(self._WtW_sparse - self.Gt @ self._scaled_g(C))

    def _scaled_g(self, C: np.ndarray) -> sp.csr_matrix:
        """``blockdiag(C) G``: each level's rows of G multiplied by its block of C."""
        if self.p1 == 1:
            Gs = self.G.copy()
            Gs.data *= np.repeat(C[:, 0, 0], np.diff(self.G.indptr))
        else:
            bd = sp.bsr_matrix(
                (C, np.arange(self.l1), np.arange(self.l1 + 1)),
                shape=(self.l1 * self.p1, self.l1 * self.p1),
            )
            Gs = (bd @ self.G).tocsr()
        return Gs

    def lambda_w(self, theta: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """Lambda_W as a vector (diagonal case) or a sparse matrix."""
        vals = [np.tile(np.asarray(theta, float)[t.theta_slice], t.nlevels) for t in self._rest]
        vals.append(np.ones(self.p + 1))
        data = np.concatenate(vals)
        if self.rest_scalar:
            return data
        return sp.csr_matrix((data, (self._lam_rows, self._lam_cols)), shape=(self.m, self.m))


@dataclass
class Factor:
    """The blocked Cholesky factorisation at one theta.

    ``L11`` factors the block-diagonal ``A_11 = T_1' D_j T_1 + I`` of the first term,
    ``Ls`` the Schur complement of ``[Z_rest | X | y]``: its rows ``qr .. qr+p`` hold ``R_X'``
    and its last diagonal entry is ``r`` (so ``r2 = r^2``, the penalised residual sum of
    squares); ``logdet_L = log|L|^2``, ``logdet_RX = log|R_X|^2``.
    """

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
    schur: SparseSchur | None = None  # the sparse Schur step (then Ls is formed on demand)

    def normal_solution(self) -> np.ndarray:
        """``(u_rest, beta)``, the penalised least squares solution of the Schur system.

        ``S[:-1, :-1] w = S[:-1, -1]``, without forming ``Ls`` on the sparse path.
        """
        if self.schur is not None:
            return self.schur.normal_solution()
        Ls = self.Ls
        return sla.solve_triangular(
            Ls[:-1, :-1], Ls[-1, :-1], trans="T", lower=True, check_finite=False
        )

    def rx_lower(self, p: int) -> np.ndarray:
        """``R_X'``, the lower ``p x p`` Cholesky factor of the fixed effects' block."""
        if self.schur is not None:
            return self.schur.Lx[:p, :p]
        q = self.Ls.shape[0] - p - 1
        return self.Ls[q : q + p, q : q + p]


class SparseFactor(Factor):
    """A :class:`Factor` whose Schur step is sparse (:class:`mlmprimer.schur.SparseSchur`).

    ``Ls``, the dense Cholesky factor of the Schur complement, is computed on first use
    (for code that reads it); :meth:`normal_solution` and :meth:`rx_lower` do not need it.
    """

    @property  # type: ignore[override]
    def Ls(self) -> np.ndarray:  # noqa: N802 - the name of Factor's field
        """The dense lower Cholesky factor of the Schur complement (formed on first use)."""
        if self._Ls is None:
            m = self.schur.S.shape[0]
            if m > DENSE_LS_MAX:
                raise MemoryError(
                    f"a dense factor of the {m} x {m} Schur complement is too large: "
                    "use normal_solution() and rx_lower()"
                )
            self._Ls = sla.cholesky(
                self.schur.S.toarray(), lower=True, check_finite=False, overwrite_a=True
            )
        return self._Ls

    @Ls.setter
    def Ls(self, value: np.ndarray | None) -> None:  # noqa: N802
        self._Ls = value


#: The largest Schur complement whose dense factor a :class:`SparseFactor` forms on demand.
DENSE_LS_MAX = 30_000


def factorize(theta: np.ndarray, design: Design, B: CrossProducts, schur: str = "dense") -> Factor:
    """The factorisation at ``theta`` (steps 1 to 4 of the profiled deviance).

    ``schur`` is ``"dense"`` (LAPACK's Cholesky of the Schur complement) or ``"sparse"``
    (:func:`mlmprimer.schur.sparse_schur`, returning a :class:`SparseFactor`).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import model_design
    >>> from mlmprimer.factor import CrossProducts, factorize
    >>> d = model_design("Yield ~ 1 + (1 | Batch)", load("dyestuff")).design
    >>> f = factorize(np.zeros(1), d, CrossProducts(d))
    >>> round(f.r2 / d.n, 1)  # theta = 0: OLS, here the variance of y
    3839.6
    """
    theta = np.asarray(theta, dtype=float)
    T1 = design.terms[0].template(theta)
    # elementwise over the levels for p1 = 1 (and in closed form for p1 <= 3 with many
    # levels), batched LAPACK otherwise; C holds T1 A_j^{-1} T1' for every level j
    L11, Linv, C, logdet1 = level_blocks(T1, B.D)
    lam = B.lambda_w(theta)
    if schur == "sparse":
        sch = sparse_schur(B.cross_sparse(C), lam, B.qr, getattr(B, "_schur_plan", None))
        B._schur_plan = sch.plan  # the ordering depends on the pattern only
        dg = np.diagonal(sch.Lx)
        return SparseFactor(
            theta,
            T1,
            L11,
            Linv,
            None,  # type: ignore[arg-type]  # formed on demand
            lam,
            logdet1 + sch.logdet_zz,
            2.0 * float(np.sum(np.log(dg[: B.p]))),
            float(dg[-1] ** 2),
            B.ldw,
            sch,
        )
    M = B.cross(C)
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
    return Factor(theta, T1, L11, Linv, Ls, lam, logdet_L, logdet_RX, r2, B.ldw)


def deviance_at(f: Factor, n: int, p: int, REML: bool) -> float:
    """ML deviance or REML criterion from a factorisation (step 5)."""
    return criterion(f.logdet_L, f.logdet_RX, f.r2, f.ldw, n, p, REML)


def criterion(
    logdet_L: float, logdet_RX: float, r2: float, ldw: float, n: int, p: int, REML: bool
) -> float:
    """ML deviance or REML criterion from ``log|L|^2``, ``log|R_X|^2`` and ``r^2``."""
    # prior weights add -sum(log w) (the density of y_i has variance sigma^2 / w_i)
    if REML:
        nmp = n - p
        return logdet_L + logdet_RX + nmp * (1.0 + LOG2PI + math.log(r2 / nmp)) - ldw
    return logdet_L + n * (1.0 + LOG2PI + math.log(r2 / n)) - ldw


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
    >>> from mlmprimer.design import model_design
    >>> from mlmprimer.factor import profiled_deviance
    >>> d = model_design("Reaction ~ Days + (Days | Subject)", load("sleepstudy")).design
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
    f = factorize(theta, design, CrossProducts(design))
    return deviance_at(f, design.n, design.p, REML)


class ProfiledDeviance:
    """``d(theta)`` of one design: ML deviance or REML criterion, beta and sigma profiled.

    Calling it with theta returns the criterion (``inf`` where the factorisation fails, so an
    optimiser steps back); :meth:`factor` returns the whole factorisation. The design's
    cross-products are computed once, on construction.

    Parameters
    ----------
    design : Design
    REML : bool, default True
    products : CrossProducts, optional
        Cross-products computed elsewhere (:meth:`CrossProducts.from_sums`); by default they
        are computed from the design's rows.
    schur_factor : {"auto", "dense", "sparse"}, default "auto"
        How the Schur complement of ``[Z_rest | X | y]`` is factored
        (:func:`mlmprimer.schur.choose_schur`): ``"auto"`` picks sparse only for a large
        second factor whose crossing with the first is sparse.

    Attributes
    ----------
    design : Design
    REML : bool
    products : CrossProducts
    schur : {"dense", "sparse"}
        The Schur step chosen.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import model_design
    >>> from mlmprimer.factor import ProfiledDeviance
    >>> d = model_design("Yield ~ 1 + (1 | Batch)", load("dyestuff")).design
    >>> round(ProfiledDeviance(d, REML=False)(np.array([0.7525])), 2)
    327.33
    """

    def __init__(
        self,
        design: Design,
        REML: bool = True,
        products: CrossProducts | None = None,
        schur_factor: str = "auto",
    ) -> None:
        self.design = design
        self.REML = bool(REML)
        self.products = CrossProducts(design) if products is None else products
        self.schur = choose_schur(design, self.products, schur_factor)
        if self.schur == "sparse":
            _ = self.products._pairs  # formed now, so that the dense copy of G is dropped:
            self.products._Gd = None  # it serves the dense path only
        B = self.products
        # the optimiser's evaluations: one random term of one or two columns in closed form,
        # level by level; another small system by one dense Cholesky of it all
        self._full: SingleTerm | FullDense | None = None
        if self.schur == "dense" and SingleTerm.fits(B):
            self._full = SingleTerm.from_products(B)
        elif self.schur == "dense" and B.l1 * B.p1 + B.m <= FULL_DENSE_MAX:
            self._full = FullDense(design.terms, B)

    def factor(self, theta: np.ndarray) -> Factor:
        """The factorisation at ``theta``."""
        return factorize(theta, self.design, self.products, self.schur)

    def __call__(self, theta: np.ndarray) -> float:
        d = self.design
        try:
            if self._full is None:
                val = deviance_at(self.factor(theta), d.n, d.p, self.REML)
            else:
                parts = self._full.parts(theta)
                val = criterion(*parts, self.products.ldw, d.n, d.p, self.REML)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return math.inf
        val = float(val)
        return val if math.isfinite(val) else math.inf


def deviance_function(
    design: Design, REML: bool = True, schur_factor: str = "auto"
) -> ProfiledDeviance:
    """The profiled deviance of ``design`` as a function of theta (lme4's ``mkLmerDevfun``).

    Parameters
    ----------
    design : Design
    REML : bool, default True
    schur_factor : {"auto", "dense", "sparse"}, default "auto"
        The Schur step (see :class:`ProfiledDeviance`).

    Returns
    -------
    ProfiledDeviance

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import model_design
    >>> from mlmprimer.factor import deviance_function
    >>> d = model_design("Reaction ~ Days + (Days | Subject)", load("sleepstudy")).design
    >>> round(deviance_function(d, REML=False)(np.zeros(3)), 2)  # theta = 0: OLS
    1900.29
    """
    return ProfiledDeviance(design, REML, schur_factor=schur_factor)
