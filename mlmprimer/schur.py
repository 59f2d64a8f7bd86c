"""The Schur step of the profiled deviance for large crossed designs: dense or sparse.

:mod:`mlmprimer.factor` eliminates the first (largest) random term level by level and is left
with the Schur complement ``S`` of ``[Z_rest | X | y]`` (size ``m = q_rest + p + 1``). This
module holds the two ways of factoring ``S`` and the rule choosing between them:

* **dense** (:func:`mlmprimer.factor.factorize` as always): ``S`` as an ``m x m`` array and
  LAPACK's Cholesky; its cost is ``m^3 / 3`` whatever the design;
* **sparse** (:func:`sparse_schur`): when the levels of the second factor meet few levels of
  the first ("local" crossing: raters who see a few neighbouring items each), the random
  block ``S_zz`` of ``S`` is sparse and stays sparse under a fill-reducing ordering. Its
  ordering is fixed once by its pattern (:func:`schur_plan`): a reverse Cuthill-McKee
  ordering and LAPACK's banded Cholesky when the band is narrow, else SuperLU
  (``scipy.sparse.linalg.splu``) with a symmetric minimum-degree ordering and no pivoting
  (``S_zz`` is symmetric positive definite, so ``U``'s diagonal is the ``D`` of
  ``S_zz = L D L'`` and ``log|S_zz| = sum(log U_ii)``). The small dense block of ``[X | y]``
  is then ``K = S_xx - S_xz S_zz^{-1} S_zx``, whose Cholesky factor holds ``R_X'`` and ``r``.

Both give the same ``log|L|^2``, ``log|R_X|^2`` and ``r^2`` to rounding (relative 1e-12 or
so), hence the same deviance; an optimiser's path may follow those last digits, so two fits
agree to its tolerances. ``"auto"`` (:func:`choose_schur`) keeps the dense path for every
design with fewer than :data:`SPARSE_MIN_Q` random columns after the first term (all of the
course's models) and otherwise takes the sparse one when ``S_zz``'s pattern has a narrow
band under reverse Cuthill-McKee.

The dense path's ``W'W - G' blockdiag(C) G`` is itself chosen by cost
(:func:`dense_gram_operand`): the pair map for small designs, one BLAS ``syrk`` with ``G``
held dense when the second factor has a few hundred to thousands of levels, or a sparse
product.

Examples
--------
>>> import numpy as np
>>> from mlmprimer.datasets import load
>>> from mlmprimer.design import model_design
>>> from mlmprimer.factor import CrossProducts, factorize
>>> d = model_design("diameter ~ 1 + (1 | plate) + (1 | sample)", load("penicillin")).design
>>> B = CrossProducts(d)
>>> th = np.array([1.5, 3.2])
>>> dense, sparse = factorize(th, d, B), factorize(th, d, B, schur="sparse")
>>> bool(np.isclose(dense.logdet_L, sparse.logdet_L, rtol=1e-12))
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import reverse_cuthill_mckee

from .control import SCHUR_FACTORS

if TYPE_CHECKING:  # pragma: no cover
    from .design import Design
    from .factor import CrossProducts

__all__ = [
    "BANDED_MAX_WORK",
    "DENSE_MAX_BYTES",
    "DENSE_MIN_PAIRS",
    "SCHUR_FACTORS",
    "SPARSE_MAX_FILL",
    "SPARSE_MIN_Q",
    "SparseSchur",
    "choose_schur",
    "schur_plan",
    "dense_gram",
    "dense_gram_operand",
    "schur_matrix",
    "sparse_cross",
    "sparse_pattern",
    "sparse_schur",
]

#: ``"auto"`` factors dense below this many random columns after the first term.
SPARSE_MIN_Q = 1000
#: ``"auto"`` factors dense when ``S_zz``'s pattern fills more than this fraction of it.
SPARSE_MAX_FILL = 0.1
#: The banded Cholesky is used when ``q_rest (bandwidth + 1)^2`` is at most this.
BANDED_MAX_WORK = 2e8
#: The pair map (exact for small designs) is kept below this many entries.
DENSE_MIN_PAIRS = 5_000_000
#: The largest dense copy of ``G`` held for the BLAS path of ``cross``.
DENSE_MAX_BYTES = 512 * 2**20


def dense_gram_operand(
    G: sp.csr_matrix, l1: int, p1: int, m: int, other_cost: float
) -> np.ndarray | None:
    """``G`` as a dense array when ``G' blockdiag(C) G`` is cheaper by BLAS, else None.

    The estimates are nanoseconds on one core: a BLAS ``syrk`` (``p1 = 1``) or ``gemm``
    costs about ``0.02 l1 m^2`` or ``0.03 l1 p1 m^2``; ``other_cost`` is the pair map's or the
    sparse product's. The dense copy must fit in :data:`DENSE_MAX_BYTES`.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from mlmprimer.schur import dense_gram_operand
    >>> G = sp.random(5000, 500, density=0.3, format="csr", random_state=1)
    >>> dense_gram_operand(G, 5000, 1, 500, other_cost=1e9).shape
    (5000, 500)
    >>> dense_gram_operand(G, 5000, 1, 500, other_cost=1e6) is None
    True
    """
    if 8.0 * l1 * p1 * m > DENSE_MAX_BYTES:
        return None
    cost = (0.02 if p1 == 1 else 0.03 * p1) * l1 * float(m) ** 2
    return G.toarray() if cost < other_cost else None


def dense_gram(Gd: np.ndarray, C: np.ndarray, WtW: np.ndarray) -> np.ndarray:
    """``W'W - G' blockdiag(C) G`` from the dense ``G`` (``l1 p1 x m``), by BLAS.

    With ``p1 = 1`` and ``C >= 0`` one ``syrk`` of ``sqrt(C) G`` (the lower triangle is
    exact, the upper one is ``W'W``'s); otherwise a ``gemm`` (both triangles).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.schur import dense_gram
    >>> rng = np.random.default_rng(0)
    >>> G, C, WtW = rng.normal(size=(6, 3)), rng.random((6, 1, 1)), np.eye(3)
    >>> ref = WtW - G.T @ (C[:, 0, 0][:, None] * G)
    >>> bool(np.allclose(np.tril(dense_gram(G, C, WtW)), np.tril(ref)))
    True
    """
    l1, p1 = C.shape[0], C.shape[1]
    m = Gd.shape[1]
    if p1 == 1:
        c = C[:, 0, 0]
        if np.all(c >= 0):
            H = Gd * np.sqrt(c)[:, None]
            # H (C order) is H' in Fortran order: syrk(H') = H'H without a copy
            return WtW - sla.blas.dsyrk(1.0, H.T, trans=0, lower=1)
        return WtW - Gd.T @ (c[:, None] * Gd)
    return WtW - Gd.T @ (C @ Gd.reshape(l1, p1, m)).reshape(-1, m)


def sparse_pattern(WtW: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    """The fixed sparse pattern of ``W'W - G' blockdiag(C) G`` and where the pair map goes.

    ``idx`` are the flat (``row * m + col``, lower triangle) indices of the pair map. Returns
    the CSC structure (both triangles), ``W'W`` on it, and the positions of the pair map's
    entries in the lower and (off the diagonal) the upper triangle.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.schur import sparse_cross, sparse_pattern
    >>> WtW = np.array([[2.0, 0.0], [0.0, 3.0]])
    >>> pat = sparse_pattern(WtW, np.array([2]))  # entry (1, 0)
    >>> sparse_cross(pat, np.array([0.5])).toarray().tolist()
    [[2.0, -0.5], [-0.5, 3.0]]
    """
    m = WtW.shape[0]
    r, c = np.nonzero(np.tril(WtW))
    lo = np.union1d(r.astype(np.int64) * m + c, np.asarray(idx, dtype=np.int64))
    R, Cc = np.divmod(lo, m)
    off = R > Cc
    keys = np.sort(np.concatenate([Cc * m + R, (R * m + Cc)[off]]))
    cols, rows = np.divmod(keys, m)
    a, b = np.divmod(np.asarray(idx, dtype=np.int64), m)
    poff = a > b
    return {
        "m": np.array(m),
        "indptr": np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=m))]),
        "indices": rows,
        "base": WtW[rows, cols],
        "pos_lo": np.searchsorted(keys, b * m + a),
        "pos_up": np.searchsorted(keys, (a * m + b)[poff]),
        "off": poff,
    }


def sparse_cross(pattern: dict[str, np.ndarray], v: np.ndarray) -> sp.csc_matrix:
    """``W'W`` minus the pair map's values ``v`` on the pattern of :func:`sparse_pattern`."""
    data = pattern["base"].copy()
    data[pattern["pos_lo"]] -= v
    data[pattern["pos_up"]] -= v[pattern["off"]]
    m = int(pattern["m"])
    return sp.csc_matrix((data, pattern["indices"], pattern["indptr"]), shape=(m, m))


def schur_matrix(M: sp.csc_matrix, lam: np.ndarray | sp.csr_matrix, qr: int) -> sp.csc_matrix:
    """``S = Lambda_W' M Lambda_W + I`` on the random columns, from the sparse ``M``.

    ``M`` is ``W'W - G' blockdiag(C) G`` with both triangles; ``lam`` is Lambda_W as a
    vector (scalar terms) or a sparse matrix (see :meth:`CrossProducts.lambda_w`).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from mlmprimer.schur import schur_matrix
    >>> S = schur_matrix(sp.csc_matrix(np.array([[2.0, 1.0], [1.0, 3.0]])), np.array([2.0, 1.0]), 1)
    >>> S.toarray().tolist()
    [[9.0, 2.0], [2.0, 3.0]]
    """
    m = M.shape[0]
    if isinstance(lam, np.ndarray):
        M = sp.csc_matrix(M)
        cols = np.repeat(np.arange(m), np.diff(M.indptr))
        data = M.data * lam[M.indices] * lam[cols]
        diag = (M.indices == cols) & (cols < qr)
        S = sp.csc_matrix((data, M.indices, M.indptr), shape=(m, m))
        if np.count_nonzero(diag) == qr:  # every diagonal entry stored: add I in place
            S.data[diag] += 1.0
            return S
    else:
        S = sp.csc_matrix(lam.T @ M @ lam)
    return sp.csc_matrix(S + sp.diags(np.r_[np.ones(qr), np.zeros(m - qr)], format="csc"))


class SparseSchur:
    """The sparse factorisation of the Schur complement ``S`` of ``[Z_rest | X | y]``.

    ``S_zz`` (the ``q_rest`` random columns) by SuperLU with a symmetric minimum-degree
    ordering and diagonal pivots, then the dense ``(p + 1) x (p + 1)`` block
    ``K = S_xx - S_xz S_zz^{-1} S_zx`` by LAPACK's Cholesky: ``Lx`` (lower) holds ``R_X'``
    in its first ``p`` rows and ``r`` in its last diagonal entry.

    Parameters
    ----------
    S : scipy.sparse.csc_matrix
        Symmetric positive definite, both triangles.
    qr : int
        The number of random columns (the rest are ``X`` and ``y``).

    Raises
    ------
    numpy.linalg.LinAlgError
        ``S`` is not positive definite (a pivot that is not positive).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from mlmprimer.schur import SparseSchur
    >>> S = np.array([[4.0, 0.0, 2.0], [0.0, 9.0, 3.0], [2.0, 3.0, 6.0]])
    >>> f = SparseSchur(sp.csc_matrix(S), 2)
    >>> bool(np.isclose(f.logdet_zz + 2 * np.log(f.Lx[0, 0]), np.linalg.slogdet(S)[1]))
    True
    """

    def __init__(self, S: sp.csc_matrix, qr: int, plan: dict | None = None) -> None:
        self.S = S
        self.qr = int(qr)
        Szz = S[:qr, :qr].tocsc()
        self.Szx = S[:qr, qr:].toarray()
        Sxx = S[qr:, qr:].toarray()
        self.lu = self.band = None
        self.plan = plan
        if qr > 0:
            if self.plan is None:
                self.plan = schur_plan(Szz)
            if self.plan["banded"]:
                self._factor_banded(Szz)
            else:
                self._factor_lu(Szz)
            self.Y = self.solve_zz(self.Szx)  # S_zz^{-1} S_zx
            K = Sxx - self.Szx.T @ self.Y
        else:
            self.logdet_zz = 0.0
            self.Y = np.zeros((0, Sxx.shape[0]))
            K = Sxx
        self.Lx = sla.cholesky(K, lower=True, check_finite=False)

    def _factor_lu(self, Szz: sp.csc_matrix) -> None:
        lu = spla.splu(
            Szz, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )
        d = lu.U.diagonal()
        if not np.all(d > 0) or not np.array_equal(lu.perm_r, lu.perm_c):
            raise np.linalg.LinAlgError("the Schur complement is not positive definite")
        self.lu = lu
        self.logdet_zz = float(np.sum(np.log(d)))

    def _factor_banded(self, Szz: sp.csc_matrix) -> None:
        perm = self.plan["perm"]
        P = Szz[perm][:, perm].tocoo()
        lo = P.row >= P.col
        k = (P.row - P.col)[lo]
        ab = np.zeros((int(k.max()) + 1 if k.size else 1, self.qr))
        ab[k, P.col[lo]] = P.data[lo]
        self.band = sla.cholesky_banded(ab, lower=True, check_finite=False)
        self.logdet_zz = 2.0 * float(np.sum(np.log(self.band[0])))

    @property
    def fill(self) -> int:
        """The entries of the factor of ``S_zz`` (``nnz(L) + nnz(U)``, or the band's)."""
        if self.lu is not None:
            return int(self.lu.L.nnz + self.lu.U.nnz)
        return 0 if self.band is None else int(self.band.size)

    def solve_zz(self, b: np.ndarray) -> np.ndarray:
        """``S_zz^{-1} b``."""
        b = np.asarray(b, dtype=float)
        if self.lu is not None:
            return self.lu.solve(b)
        if self.band is None:
            return b
        perm = self.plan["perm"]
        out = np.empty_like(b)
        out[perm] = sla.cho_solve_banded((self.band, True), b[perm], check_finite=False)
        return out

    def normal_solution(self) -> np.ndarray:
        """``(u_rest, beta)``: the solution of ``S[:-1, :-1] w = S[:-1, -1]``."""
        p = self.Lx.shape[0] - 1
        Lxx = self.Lx[:p, :p]
        beta = sla.solve_triangular(Lxx, self.Lx[p, :p], trans="T", lower=True)
        u = self.Y[:, p] - self.Y[:, :p] @ beta
        return np.concatenate([u, beta])


def schur_plan(Szz: sp.csc_matrix) -> dict:
    """The ordering of ``S_zz``'s factor, fixed by its pattern (the same at every theta).

    A reverse Cuthill-McKee ordering; when its band is narrow (``q (b + 1)^2`` at most
    :data:`BANDED_MAX_WORK`, as for "local" crossings) LAPACK's banded Cholesky is used in it,
    otherwise SuperLU with a minimum-degree ordering.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from mlmprimer.schur import schur_plan
    >>> schur_plan(sp.identity(5, format="csc"))["banded"]
    True
    """
    perm = reverse_cuthill_mckee(sp.csr_matrix(Szz), symmetric_mode=True)
    P = Szz[perm][:, perm].tocoo()
    bw = int(np.max(np.abs(P.row - P.col))) if P.nnz else 0
    return {"perm": perm, "banded": Szz.shape[0] * (bw + 1) ** 2 <= BANDED_MAX_WORK}


def sparse_schur(
    M: sp.csc_matrix, lam: np.ndarray | sp.csr_matrix, qr: int, plan: dict | None = None
) -> SparseSchur:
    """The sparse factorisation of ``S = Lambda_W' M Lambda_W + I`` (see :class:`SparseSchur`).

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> from mlmprimer.schur import sparse_schur
    >>> f = sparse_schur(sp.csc_matrix(np.array([[3.0, 1.0], [1.0, 2.0]])), np.ones(2), 1)
    >>> round(f.logdet_zz, 6), round(float(f.Lx[0, 0] ** 2), 6)  # log 4, 2 - 1/4
    (1.386294, 1.75)
    """
    return SparseSchur(schur_matrix(M, lam, qr), qr, plan)


def choose_schur(design: Design, B: CrossProducts, choice: str = "auto") -> str:
    """``"dense"`` or ``"sparse"``: the Schur step for ``design`` under ``choice``.

    ``"auto"``: dense below :data:`SPARSE_MIN_Q` random columns after the first term, or
    when the pattern of ``S_zz`` holds more than :data:`SPARSE_MAX_FILL` of its entries;
    otherwise sparse when a reverse Cuthill-McKee ordering gives ``S_zz`` a narrow band
    (:func:`schur_plan`, "local" crossings). A general sparse pattern can fill in badly
    under any ordering (random crossings do), and its fill is known only by factoring it,
    so ``"auto"`` leaves it dense; ``"sparse"`` factors it by SuperLU all the same.

    Raises
    ------
    ValueError
        ``choice`` is not one of :data:`mlmprimer.control.SCHUR_FACTORS`.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import model_design
    >>> from mlmprimer.factor import CrossProducts
    >>> from mlmprimer.schur import choose_schur
    >>> d = model_design("Yield ~ 1 + (1 | Batch)", load("dyestuff")).design
    >>> choose_schur(d, CrossProducts(d))
    'dense'
    """
    if choice not in SCHUR_FACTORS:
        raise ValueError(
            f"unknown schur_factor {choice!r}: choose one of "
            + ", ".join(repr(c) for c in SCHUR_FACTORS)
        )
    if choice != "auto":
        return choice
    if B.qr < SPARSE_MIN_Q:
        return "dense"
    pattern = _pattern(B)
    if pattern.nnz > SPARSE_MAX_FILL * B.qr**2:
        return "dense"
    plan = schur_plan(pattern)
    if not plan["banded"]:
        return "dense"
    B._schur_plan = plan  # the ordering depends on the pattern only
    return "sparse"


def _pattern(B: CrossProducts) -> sp.csc_matrix:
    """The pattern of ``S_zz``: ``G_r' G_r`` and ``W'W``'s random block, both triangles."""
    qr = B.qr
    r, c = np.nonzero(B.WtW[:qr, :qr])
    pairs = getattr(B, "_pairs", None)
    if pairs is not None:
        a, b = np.divmod(pairs[0], B.m)
        inside = a < qr
        r = np.concatenate([r, a[inside], b[inside]])
        c = np.concatenate([c, b[inside], a[inside]])
        P = sp.csc_matrix((np.ones(r.size), (r, c)), shape=(qr, qr))
    else:
        Gr = sp.csr_matrix(B.G[:, :qr])
        Gr.data = np.ones_like(Gr.data)
        P = sp.csc_matrix(Gr.T @ Gr) + sp.csc_matrix((np.ones(r.size), (r, c)), shape=(qr, qr))
    P.sum_duplicates()
    return P
