"""The profiled deviance of a small model by one dense Cholesky factor.

For a model whose random effects and fixed effects together are few (``q + p + 1`` up to
:data:`FULL_DENSE_MAX`, as Penicillin's 32 or sleepstudy's 39 with uncorrelated slopes), the
blocked factorisation of :mod:`mlmprimer.factor` spends its time in Python calls on tiny
arrays, not in arithmetic. (One random term of one or two columns takes
:mod:`mlmprimer.singleterm`, cheaper still.) There one LAPACK Cholesky of the whole
penalised system is faster: with
``Omega = [Z | X | y]'[Z | X | y]`` (rows scaled by ``sqrt(w)``) and
``Lambda_full = blockdiag(Lambda, I_{p+1})``, the lower factor ``L`` of

    ``Lambda_full' Omega Lambda_full + blockdiag(I_q, 0)``

holds ``L_Z`` (its first ``q`` diagonal entries give ``log|L|^2``), ``R_X'`` (the next
``p``) and ``r`` (the last entry: ``r^2`` is the penalised residual sum of squares): the same
three numbers as the blocked factor, equal up to rounding. It serves the optimiser's
evaluations; the solution at the optimum comes from the blocked factor
(:meth:`mlmprimer.factor.ProfiledDeviance.factor`).

Examples
--------
>>> import numpy as np
>>> from mlmprimer.datasets import load
>>> from mlmprimer.design import model_design
>>> from mlmprimer.factor import CrossProducts, deviance_at, factorize
>>> from mlmprimer.fulldense import FullDense
>>> d = model_design("Reaction ~ Days + (Days | Subject)", load("sleepstudy")).design
>>> B, theta = CrossProducts(d), np.array([0.97, 0.02, 0.23])
>>> full = FullDense(d.terms, B).parts(theta)
>>> blocked = factorize(theta, d, B)
>>> bool(np.allclose(full, (blocked.logdet_L, blocked.logdet_RX, blocked.r2), rtol=1e-12))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import lapack

from .design import tril_colmajor

if TYPE_CHECKING:
    from .design import TermBlock
    from .factor import CrossProducts

__all__ = ["FULL_DENSE_MAX", "FullDense"]

#: The largest order ``q + p + 1`` of the whole system factored densely at each evaluation.
FULL_DENSE_MAX = 100


class FullDense:
    """``Omega`` and the places of the terms' columns, set up once; :meth:`parts` per theta.

    Parameters
    ----------
    terms : sequence of TermBlock
        The design's random terms, in its order (their ``p``, ``nlevels`` and
        ``theta_slice``).
    products : CrossProducts
        The design's cross-products (``D``, ``G`` and ``W'W``).
    """

    def __init__(self, terms: Sequence[TermBlock], products: CrossProducts) -> None:
        B = products
        q1 = B.l1 * B.p1
        self.q = q1 + B.qr
        self.p = B.p
        size = q1 + B.m
        omega = np.zeros((size, size))
        lev = np.arange(q1).reshape(B.l1, B.p1)
        omega[lev[:, :, None], lev[:, None, :]] = B.D
        omega[:q1, q1:] = B.G.toarray()
        omega[q1:, :q1] = omega[:q1, q1:].T
        omega[q1:, q1:] = B.WtW
        # Scalar terms scale their rows and columns by one theta each: one outer product. A term
        # with p columns multiplies each level's p columns (then rows) by its template T. Its
        # columns are reordered column-major (the first column of every level, then the
        # second, ...), so that T acts on contiguous blocks of nlev columns: new block j is
        # sum_{i >= j} T_ij old block i. The reordering permutes rows and columns of the Z part
        # alike: |L|, R_X and r are unchanged.
        order = np.arange(size)
        self._scalar: list[tuple[slice, int]] = []
        self._vector: list[list[tuple[slice, list[tuple[slice, int]]]]] = []
        off = 0
        for t in terms:
            if t.p == 1:
                self._scalar.append((slice(off, off + t.q), t.theta_start))
            else:
                order[off : off + t.q] = off + np.arange(t.q).reshape(t.nlevels, t.p).T.ravel()
                cols = [slice(off + j * t.nlevels, off + (j + 1) * t.nlevels) for j in range(t.p)]
                # T[i, j] is theta[theta_start + k] for the k-th (i, j) of the lower triangle
                entries: list[list[tuple[slice, int]]] = [[] for _ in range(t.p)]
                for k, (i, j) in enumerate(zip(*tril_colmajor(t.p), strict=True)):
                    entries[int(j)].append((cols[int(i)], t.theta_start + k))
                self._vector.append(list(zip(cols, entries, strict=True)))
            off += t.q
        # LAPACK's layout (dpotrf factors a copy in place), each column contiguous
        self.omega = np.asfortranarray(omega[np.ix_(order, order)])

    def parts(self, theta: np.ndarray) -> tuple[float, float, float]:
        """``(log|L|^2, log|R_X|^2, r^2)`` at ``theta``.

        Raises
        ------
        numpy.linalg.LinAlgError
            If the penalised system is not positive definite at ``theta``.
        """
        if self._scalar:
            lam = np.ones(self.omega.shape[0])
            for block, k in self._scalar:
                lam[block] = theta[k]
            S = self.omega * lam[:, None]  # a fresh array (Fortran order, as Omega)
            S *= lam[None, :]
        else:
            S = self.omega.copy(order="F")
        size = S.shape[0]
        for blocks in self._vector:
            for cols, entries in blocks:  # ascending j: the old blocks i > j are untouched
                (_, k0), *rest = entries  # the first is T[j, j]
                S[:, cols] *= theta[k0]
                for other, k in rest:
                    S[:, cols] += theta[k] * S[:, other]
            for rows, entries in blocks:
                (_, k0), *rest = entries
                S[rows, :] *= theta[k0]
                for other, k in rest:
                    S[rows, :] += theta[k] * S[other, :]
        S.T.flat[: self.q * (size + 1) : size + 1] += 1.0  # S.T: the C-ordered view
        L, info = lapack.dpotrf(S, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise np.linalg.LinAlgError("the penalised system is not positive definite")
        cum = np.cumsum(np.log(np.diagonal(L)))
        q, p = self.q, self.p
        at_q = float(cum[q - 1]) if q else 0.0
        return 2.0 * at_q, 2.0 * (float(cum[q + p - 1]) - at_q), float(L[-1, -1] ** 2)
