"""The profiled deviance of a small model by one dense Cholesky factor.

For a model whose random effects and fixed effects together are few (``q + p + 1`` up to
:data:`FULL_DENSE_MAX`, as sleepstudy's 39 or Oxboys' 55), the blocked factorisation of
:mod:`mlmprimer.factor` spends its time in Python calls on tiny arrays, not in arithmetic.
There one LAPACK Cholesky of the whole penalised system is faster: with
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
        self.omega = omega
        # each term's columns (and rows) of Omega are multiplied by its template T, level by level
        self._terms = []
        off = 0
        for t in terms:
            self._terms.append((off, t.nlevels, t.p, t))
            off += t.q

    def parts(self, theta: np.ndarray) -> tuple[float, float, float]:
        """``(log|L|^2, log|R_X|^2, r^2)`` at ``theta``.

        Raises
        ------
        numpy.linalg.LinAlgError
            If the penalised system is not positive definite at ``theta``.
        """
        S = self.omega.copy()
        size = S.shape[0]
        for off, nlev, p, t in self._terms:
            block = slice(off, off + nlev * p)
            if p == 1:  # a scalar term: its columns and rows times theta
                lam = float(theta[t.theta_start])
                S[:, block] *= lam
                S[block, :] *= lam
                continue
            T = t.template(theta)  # each level's p columns times T, then its p rows times T'
            S[:, block] = (S[:, block].reshape(size, nlev, p) @ T).reshape(size, -1)
            S[block, :] = (T.T @ S[block, :].reshape(nlev, p, size)).reshape(-1, size)
        S.flat[: self.q * (size + 1) : size + 1] += 1.0
        L, info = lapack.dpotrf(S, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise np.linalg.LinAlgError("the penalised system is not positive definite")
        cum = np.cumsum(np.log(np.diagonal(L)))
        q, p = self.q, self.p
        at_q = float(cum[q - 1]) if q else 0.0
        return 2.0 * at_q, 2.0 * (float(cum[q + p - 1]) - at_q), float(L[-1, -1] ** 2)
