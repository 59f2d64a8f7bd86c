"""The penalised weighted least squares step of PIRLS, with what does not change built once.

One iteration of PIRLS (:mod:`mlmprimer.pirls`) solves
``min ||W^{1/2}(z - X beta - Z Lambda u)||^2 + ||u||^2`` at the current working weights ``W`` and
response ``z``. The kernels here lay out, once per fit, the columns that do not change (``Z``,
``X``, the sums per level of the first grouping factor) and, once per theta, the templates, so
that an iteration costs a few array operations:

* :class:`PwlsKernel`, any random terms: the first term's level blocks by a batched Cholesky, the
  rest by a dense Schur complement, as :func:`mlmprimer.factor.factorize` does;
* :class:`ScalarTermsKernel`, random terms that are all scalar (intercepts or one column each):
  the cross-products from sums per level (:class:`LevelSums`) instead of dense products.

Both return a :class:`mlmprimer.factor.Factor` and the product ``v -> H v`` with the system's
matrix, which the step halving of PIRLS uses.

Examples
--------
>>> import numpy as np
>>> from mlmprimer.pwls import LevelSums
>>> sums = LevelSums(np.array([0, 1, 0, 2]), 3)
>>> sums(np.array([1.0, 2.0, 3.0, 4.0])).tolist()
[4.0, 2.0, 4.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.linalg.lapack import dpotrf as _potrf

from .design import Design
from .factor import Factor

__all__ = ["LevelSums", "PwlsKernel", "ScalarTermsKernel", "finish_factor", "term_column"]


class LevelSums:
    """Sums of rows per level of a grouping factor: a dense indicator product when small, the
    rows reordered when every level has one row, else sums over the rows sorted by level."""

    def __init__(self, codes: np.ndarray, nlevels: int, dense_limit: int = 20_000) -> None:
        n = codes.shape[0]
        self.J: np.ndarray | None = None
        if n * nlevels <= dense_limit:
            J = np.zeros((nlevels, n))
            J[codes, np.arange(n)] = 1.0
            self.J = J
        self.order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=nlevels)
        self.one_row = bool(np.all(counts == 1))
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def along_rows(self, a: np.ndarray) -> np.ndarray:
        """The sums per level of every row of ``a`` (``k x n`` to ``k x nlevels``)."""
        if self.J is not None:
            return a @ self.J.T
        if self.one_row:
            return a[:, self.order]
        return np.add.reduceat(a[:, self.order], self.starts, axis=1)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if self.J is not None:
            return self.J @ a
        if self.one_row:
            return a[self.order]
        return np.add.reduceat(a[self.order], self.starts, axis=0)


class PwlsKernel:
    """The penalised weighted least squares system of PIRLS, with what does not change built once.

    The columns ``[Z_rest | X | 0]`` (X left out when beta is fixed) are stacked once; each
    iteration writes the working response into the last column, scales the rows by
    ``W^{1/2}`` and factors ``Lambda' Z' W Z Lambda + I`` blockwise, as
    :func:`mlmprimer.factor.factorize` does: the first term's level blocks by a batched
    Cholesky (scalars for a scalar term), then the Schur complement of the other columns,
    ``W'W - H'H`` with ``H_j = L_j^{-1} T_1' Z_1j' W``.
    """

    def __init__(self, design: Design, Zrest: np.ndarray, with_beta: bool, sums: LevelSums) -> None:
        t1 = design.terms[0]
        n = design.n
        self.p1, self.l1 = t1.p, t1.nlevels
        self.X1 = t1.Xi
        self.x1 = term_column(t1) if t1.p == 1 else None
        self.codes1 = t1.codes
        self.sums = sums
        self.qr = Zrest.shape[1]
        self.p = design.p if with_beta else 0
        cols = [Zrest] + ([design.X] if with_beta else []) + [np.zeros((n, 1))]
        self.base = np.hstack(cols)
        self.m = self.base.shape[1]
        self.diag = np.arange(self.qr)
        # one scalar term and beta fixed: the system is one equation per level
        self.scalar_only = self.p1 == 1 and self.m == 1

    def _scalar_factor(
        self,
        theta: np.ndarray,
        T1: np.ndarray,
        lam: np.ndarray,
        wts: np.ndarray,
        z: np.ndarray,
    ) -> tuple[Factor, Callable[[np.ndarray], np.ndarray]]:
        """:meth:`factor` when ``u`` is the only unknown and one scalar term holds it.

        ``L_j^2 = 1 + t^2 sum_j w x^2``, ``H_j = t sum_j w x z / L_j`` and
        ``r^2 = sum w z^2 - H'H``: no matrix to factor.
        """
        wx = wts if self.x1 is None else wts * self.x1
        D = np.bincount(
            self.codes1, weights=wx if self.x1 is None else wx * self.x1, minlength=self.l1
        )
        G = np.bincount(self.codes1, weights=wx * z, minlength=self.l1)
        t = T1[0, 0]
        L11 = np.sqrt(t * t * D + 1.0)
        Linv = 1.0 / L11
        h = t * Linv * G
        r2 = float((wts * z * z).sum() - h @ h)
        if not r2 > 0.0:
            raise np.linalg.LinAlgError(
                "the penalised least squares system is not positive definite"
            )
        logdet_L = 2.0 * float(np.log(L11).sum())
        f = Factor(
            theta,
            T1,
            L11[:, None, None],
            Linv[:, None, None],
            np.array([[math.sqrt(r2)]]),
            lam,
            logdet_L,
            0.0,
            r2,
        )

        def hv(vec: np.ndarray) -> np.ndarray:
            return h * vec[0]

        return f, hv

    def factor(
        self,
        theta: np.ndarray,
        T1: np.ndarray,
        lam: np.ndarray,
        wts: np.ndarray,
        z: np.ndarray,
    ) -> tuple[Factor, Callable[[np.ndarray], np.ndarray]]:
        """The factorisation at working weights ``wts`` and response ``z``, and ``v -> H v``."""
        if self.scalar_only:
            return self._scalar_factor(theta, T1, lam, wts, z)
        sw = np.sqrt(wts)
        base = self.base
        base[:, -1] = z
        W = base * sw[:, None]
        p1, l1, m = self.p1, self.l1, self.m
        if p1 == 1:
            x = sw if self.x1 is None else self.x1 * sw
            P = np.empty((W.shape[0], m + 1))
            np.multiply(W, x[:, None], out=P[:, :m])
            np.multiply(x, x, out=P[:, m])
            S1 = self.sums(P)
            t = T1[0, 0]
            L11 = np.sqrt(t * t * S1[:, m] + 1.0)
            Linv = 1.0 / L11
            H = (t * Linv)[:, None] * S1[:, :m]
            logdet1 = 2.0 * float(np.log(L11).sum())
            L11, Linv = L11[:, None, None], Linv[:, None, None]
        else:
            X1 = self.X1 * sw[:, None]
            P = X1[:, :, None] * np.concatenate([X1, W], axis=1)[:, None, :]
            S1 = self.sums(P.reshape(-1, p1 * (p1 + m))).reshape(l1, p1, p1 + m)
            A = T1.T @ S1[:, :, :p1] @ T1
            A[:, np.arange(p1), np.arange(p1)] += 1.0
            L11 = np.linalg.cholesky(A)
            Linv = np.linalg.inv(L11)
            H = ((Linv @ T1.T) @ S1[:, :, p1:]).reshape(l1 * p1, m)
            logdet1 = 2.0 * float(np.log(np.diagonal(L11, axis1=1, axis2=2)).sum())
        S = W.T @ W
        S -= H.T @ H
        return finish_factor(self, theta, T1, lam, S, logdet1, L11, Linv), H.__matmul__


def finish_factor(
    kern: PwlsKernel | ScalarTermsKernel,
    theta: np.ndarray,
    T1: np.ndarray,
    lam: np.ndarray,
    S: np.ndarray,
    logdet1: float,
    L11: np.ndarray,
    Linv: np.ndarray,
) -> Factor:
    """Scale the Schur complement ``S`` by Lambda, add I on the random columns, factor it."""
    qr = kern.qr
    if qr:
        if lam.ndim == 1:
            S *= lam[:, None]
            S *= lam[None, :]
        else:
            S = lam.T @ S @ lam
        S[kern.diag, kern.diag] += 1.0
    Ls, info = _potrf(S, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError("the penalised least squares system is not positive definite")
    dg = Ls.diagonal()
    logdet_L = logdet1 + (2.0 * float(np.log(dg[:qr]).sum()) if qr else 0.0)
    logdet_RX = 2.0 * float(np.log(dg[qr : qr + kern.p]).sum())
    return Factor(theta, T1, L11, Linv, Ls, lam, logdet_L, logdet_RX, float(dg[-1] ** 2))


class ScalarTermsKernel:
    """:class:`PwlsKernel` for scalar random terms only, without forming ``Z`` densely.

    ``Z' W Z`` is diagonal within a term and a table of weight sums between two terms, and
    ``Z' W [X | z]`` is sums per level: bincounts over the rows replace the products of the
    dense ``n x m`` matrix. When every level of the first term has one row (an observation-
    level effect), its elimination only reweights the rows: ``w / (1 + t^2 w x^2)``.
    """

    def __init__(self, design: Design, with_beta: bool, sums: LevelSums) -> None:
        t1, rest = design.terms[0], design.terms[1:]
        n = design.n
        self.p1, self.l1, self.sums = 1, t1.nlevels, sums
        self.codes1 = t1.codes
        self.x1 = term_column(t1)
        self.rest = []
        off = 0
        for t in rest:
            self.rest.append(
                (t.codes, term_column(t), t.nlevels, off, LevelSums(t.codes, t.nlevels))
            )
            off += t.nlevels
        self.qr = off
        self.p = design.p if with_beta else 0
        self.F = np.hstack(([design.X] if with_beta else []) + [np.zeros((n, 1))])
        self.m = self.qr + self.F.shape[1]
        self.diag = np.arange(self.qr)
        self.pairs = [
            (ck * nl + cl, nk * nl, (ok, nk), (ol, nl), xk, xl)
            for i, (ck, xk, nk, ok, _) in enumerate(self.rest)
            for (cl, xl, nl, ol, _) in self.rest[i + 1 :]
        ]
        self.gcodes = [t1.codes * nk + ck for ck, _, nk, _, _ in self.rest]

    def cross(self, w: np.ndarray) -> np.ndarray:
        """``[Z_rest | F]' diag(w) [Z_rest | F]``, ``F = [X | z]``."""
        qr, m = self.qr, self.m
        F = self.F
        S = np.zeros((m, m))
        for ck, xk, nk, ok, sums in self.rest:
            wk = w if xk is None else w * xk
            idx = np.arange(ok, ok + nk)
            S[idx, idx] = np.bincount(ck, weights=wk if xk is None else wk * xk, minlength=nk)
            block = sums(wk[:, None] * F)
            S[ok : ok + nk, qr:] = block
            S[qr:, ok : ok + nk] = block.T
        for code, size, (ok, nk), (ol, nl), xk, xl in self.pairs:
            wkl = w if xk is None else w * xk
            wkl = wkl if xl is None else wkl * xl
            block = np.bincount(code, weights=wkl, minlength=size).reshape(nk, nl)
            S[ok : ok + nk, ol : ol + nl] = block
            S[ol : ol + nl, ok : ok + nk] = block.T
        S[qr:, qr:] = (F * w[:, None]).T @ F
        return S

    def _rows(self, vec: np.ndarray) -> np.ndarray:
        """``[Z_rest | F] vec`` for every row."""
        out = self.F @ vec[self.qr :]
        for ck, xk, _nk, ok, _ in self.rest:
            part = vec[ok:][ck]
            out += part if xk is None else xk * part
        return out

    def factor(
        self,
        theta: np.ndarray,
        T1: np.ndarray,
        lam: np.ndarray,
        wts: np.ndarray,
        z: np.ndarray,
    ) -> tuple[Factor, Callable[[np.ndarray], np.ndarray]]:
        """As :meth:`PwlsKernel.factor`."""
        self.F[:, -1] = z
        t = T1[0, 0]
        xw = wts if self.x1 is None else wts * self.x1
        if self.sums.one_row:
            a = xw if self.x1 is None else xw * self.x1
            L2 = t * t * a + 1.0
            Lrow = np.sqrt(L2)
            S = self.cross(wts / L2)
            order = self.sums.order
            L11 = Lrow[order]
            logdet1 = 2.0 * float(np.log(Lrow).sum())
            coef = (t / Lrow) * xw

            def hv(vec: np.ndarray) -> np.ndarray:
                return (coef * self._rows(vec))[order]

        else:
            l1 = self.l1
            D = np.bincount(
                self.codes1, weights=xw if self.x1 is None else xw * self.x1, minlength=l1
            )
            L11 = np.sqrt(t * t * D + 1.0)
            logdet1 = 2.0 * float(np.log(L11).sum())
            parts = [
                np.bincount(code, weights=xw if xk is None else xw * xk, minlength=l1 * nk).reshape(
                    l1, nk
                )
                for code, (_ck, xk, nk, _ok, _s) in zip(self.gcodes, self.rest, strict=True)
            ]
            parts.append(self.sums(xw[:, None] * self.F))
            H = (t / L11)[:, None] * np.hstack(parts)
            S = self.cross(wts)
            S -= H.T @ H
            hv = H.__matmul__
        Linv = 1.0 / L11
        f = finish_factor(self, theta, T1, lam, S, logdet1, L11[:, None, None], Linv[:, None, None])
        return f, hv


def term_column(t: object) -> np.ndarray | None:
    """A scalar term's column, None when it is a random intercept (all ones)."""
    x = t.Xi[:, 0]  # type: ignore[attr-defined]
    return None if np.all(x == 1.0) else x
