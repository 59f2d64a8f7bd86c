"""The profiled deviance of a model with one random term, level by level in closed form.

Most course models have a single random term with one or two columns: ``(1 | g)`` or
``(x | g)``. Their penalised system is block diagonal in the random effects, one
``p_1 x p_1`` block ``M_j = T' D_j T + I`` a level (``T`` the relative covariance factor,
``D_j = Z_j' Z_j``), and three numbers per evaluation are all the optimiser needs:

- ``log|L|^2 = sum_j log det M_j``;
- the Schur complement ``S = W'W - sum_j Q_j' T M_j^{-1} T' Q_j`` of the random effects,
  with ``W = [X | y]`` and ``Q_j = Z_j' W`` (``p_1 x (p + 1)``); its Cholesky factor
  holds ``R_X`` (``log|R_X|^2``) and ``r`` (``r^2``, the penalised residual sum of squares).

For ``p_1 <= 2`` the determinant and inverse of each ``M_j`` are explicit, and every level's
contribution to ``S`` is a weighted sum of the fixed products ``Q_jr' Q_js`` (the rows of
``Q_j``), formed once: an evaluation is a handful of operations on arrays of one value per
level and one small matrix product, however many rows the data has. The numbers equal those
of the blocked factor (:func:`mlmprimer.factor.factorize`) up to rounding; the solution at the
optimum still comes from the blocked factor.

Examples
--------
>>> import numpy as np
>>> from mlmprimer.datasets import load
>>> from mlmprimer.design import model_design
>>> from mlmprimer.factor import CrossProducts, factorize
>>> from mlmprimer.singleterm import SingleTerm
>>> d = model_design("Reaction ~ Days + (Days | Subject)", load("sleepstudy")).design
>>> B, theta = CrossProducts(d), np.array([0.97, 0.02, 0.23])
>>> one = SingleTerm.from_products(B).parts(theta)
>>> blocked = factorize(theta, d, B)
>>> bool(np.allclose(one, (blocked.logdet_L, blocked.logdet_RX, blocked.r2), rtol=1e-12))
True
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.linalg import lapack

if TYPE_CHECKING:
    from .factor import CrossProducts

__all__ = ["SINGLE_TERM_MAX", "SingleTerm"]

#: The most entries of the fixed products ``Q_jr' Q_js`` (``levels x 3 x (p + 1)^2`` for two
#: columns) held for the closed form; a larger model takes the blocked factor.
SINGLE_TERM_MAX = 4_000_000

_NOT_PD = "the penalised system is not positive definite"


class SingleTerm:
    """The fixed products of a one-term model, set up once; :meth:`parts` per theta.

    Parameters
    ----------
    D : numpy.ndarray, shape (levels, p1, p1)
        ``Z_j' Z_j`` per level (``p1`` is 1 or 2).
    Q : numpy.ndarray, shape (levels, p1, m)
        ``Z_j' [X | y]`` per level.
    WtW : numpy.ndarray, shape (m, m)
        ``[X | y]' [X | y]``.
    """

    def __init__(self, D: np.ndarray, Q: np.ndarray, WtW: np.ndarray) -> None:
        levels, p1, m = Q.shape
        if p1 not in (1, 2) or D.shape != (levels, p1, p1) or WtW.shape != (m, m):
            raise ValueError(
                f"one term of 1 or 2 columns: D is {D.shape}, Q is {Q.shape}, W'W is {WtW.shape}"
            )
        self.p1, self.m, self.p = p1, m, m - 1
        self.WtW = np.array(WtW, dtype=float)
        self.WtW.shape = (m * m,)
        if p1 == 1:
            self.d = np.ascontiguousarray(D[:, 0, 0])
            # P[j] = Q_j' Q_j, flattened: S = W'W - sum_j c_j P[j]
            self.P = np.einsum("jr,js->jrs", Q[:, 0], Q[:, 0]).reshape(levels, m * m)
        else:
            # the distinct entries of D_j, a row of ones (the identity added to each M_j) and
            # det D_j: det M_j = 1 + tr(T' D_j T) + det(T)^2 det D_j, a sum of terms >= 0
            # (no cancellation, as M00 M11 - M01^2 would suffer for a nearly singular D_j)
            d00, d01, d11 = D[:, 0, 0], D[:, 0, 1], D[:, 1, 1]
            self.d = np.stack([d00, d01, d11, np.ones(levels), d00 * d11 - d01 * d01])
            q0, q1 = Q[:, 0], Q[:, 1]
            cross = np.einsum("jr,js->jrs", q0, q1)
            self.P = np.concatenate(
                [
                    np.einsum("jr,js->jrs", q0, q0).reshape(levels, m * m),
                    (0.5 * (cross + cross.transpose(0, 2, 1))).reshape(levels, m * m),
                    np.einsum("jr,js->jrs", q1, q1).reshape(levels, m * m),
                ]
            )

    @classmethod
    def from_products(cls, products: CrossProducts) -> SingleTerm:
        """From the cross-products of a design with one random term (``qr == 0``)."""
        B = products
        if B.qr != 0:
            raise ValueError("SingleTerm serves a design with one random term only")
        return cls(B.D, B.G.toarray().reshape(B.l1, B.p1, B.m), B.WtW)

    @staticmethod
    def fits(products: CrossProducts) -> bool:
        """Whether a design's products take this path: one term of 1 or 2 columns, not huge."""
        B = products
        blocks = 1 if B.p1 == 1 else 3
        return B.qr == 0 and B.p1 <= 2 and blocks * B.l1 * B.m * B.m <= SINGLE_TERM_MAX

    def parts(self, theta: np.ndarray) -> tuple[float, float, float]:
        """``(log|L|^2, log|R_X|^2, r^2)`` at ``theta``.

        Raises
        ------
        numpy.linalg.LinAlgError
            If the penalised system is not positive definite at ``theta``.
        """
        if self.p1 == 1:
            t2 = float(theta[0]) ** 2
            M = self.d * t2
            M += 1.0
            if not M.min() > 0.0:  # only for sums that are not a design's (or NaN)
                raise np.linalg.LinAlgError(_NOT_PD)
            logdet_L = float(np.log(M).sum())
            c = np.divide(t2, M, out=M)  # T M_j^{-1} T'
        else:
            # T = [[a, 0], [b, c]]. Rows of M: the entries (0, 0), (0, 1), (1, 1) of every M_j
            # and its determinant. The second matrix turns M_j^{-1} = [[M11, -M01], [-M01, M00]]
            # / det into T M_j^{-1} T''s entries (0, 0), 2 x (0, 1) and (1, 1): the weights of
            # the three blocks of P.
            a, b, c = theta[:3].tolist()  # the only term's parameters
            aa, ab, ac, bb, bc, cc = a * a, a * b, a * c, b * b, b * c, c * c
            coef = np.array(
                [aa, 2.0 * ab, bb, 1.0, 0.0,
                 0.0, ac, bc, 0.0, 0.0,
                 0.0, 0.0, cc, 1.0, 0.0,
                 aa, 2.0 * ab, bb + cc, 1.0, ac * ac,
                 aa, 0.0, 0.0, 2.0 * ab, -2.0 * ac, 0.0, bb, -2.0 * bc, cc]
            )  # fmt: skip
            M = coef[:20].reshape(4, 5) @ self.d
            det = M[3]
            if not (det.min() > 0.0 and M[0].min() > 0.0):  # sums that are not a design's
                raise np.linalg.LinAlgError(_NOT_PD)
            logdet_L = float(np.log(det).sum())
            inv = M[2::-1]  # M11, M01, M00
            inv /= det
            c = (coef[20:].reshape(3, 3) @ inv).ravel()
        if not math.isfinite(logdet_L):
            raise np.linalg.LinAlgError(_NOT_PD)
        S = self.WtW - c @ self.P
        S.shape = (self.m, self.m)
        L, info = lapack.dpotrf(S, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise np.linalg.LinAlgError(_NOT_PD)
        diag = L.diagonal().tolist()  # p + 1 numbers: Python's arithmetic is quicker
        p = self.p
        return logdet_L, 2.0 * math.fsum(map(math.log, diag[:p])), diag[p] ** 2
