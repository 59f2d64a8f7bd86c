"""The first term's level blocks in closed form: Cholesky and inverse of many tiny matrices.

A fit's first random term has one ``p_1 x p_1`` block ``A_j = T' D_j T + I`` per level ``j``
(``T`` the relative covariance factor, ``D_j = Z_j' Z_j``). :func:`level_blocks` returns their
Cholesky factors ``L_j``, the inverses ``L_j^{-1}``, ``log|A_11|`` and the blocks
``C_j = T A_j^{-1} T'`` that the Schur complement subtracts (:mod:`mlmprimer.factor`).

For ``p_1 <= 3`` every entry is computed by elementwise arithmetic on arrays of one value per
level (``A[i][k]``, the ``(i, k)`` entry of every block), unrolled over the few entries of a
block: a batched LAPACK call (``np.linalg.cholesky``, ``np.linalg.inv``) pays its overhead once
per tiny matrix, this path once per entry. Larger blocks take the batched LAPACK path. A block
that is not positive definite raises :class:`numpy.linalg.LinAlgError` on both paths.

Examples
--------
>>> import numpy as np
>>> from mlmprimer.smallblocks import block_cholesky
>>> A = np.array([[[4.0, 2.0], [2.0, 5.0]]])
>>> L, Linv = block_cholesky(A)
>>> L[0].tolist(), Linv[0].tolist()
([[2.0, 0.0], [1.0, 2.0]], [[0.5, 0.0], [-0.25, 0.5]])
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLOSED_FORM_MAX", "CLOSED_FORM_MIN_LEVELS", "block_cholesky", "level_blocks"]

#: The largest block order factored by the closed-form (elementwise) path.
CLOSED_FORM_MAX = 3

#: The fewest levels for which :func:`level_blocks` takes the closed form: below, the ~60
#: elementwise passes cost more than the batched LAPACK calls (sleepstudy's 18 levels: 125 us
#: against 85 us an evaluation).
CLOSED_FORM_MIN_LEVELS = 100

_NOT_PD = "a level block of the first term is not positive definite"

Parts = list[list[np.ndarray]]  # parts[i][k]: entry (i, k) of every block, one value per level


def _parts(S: np.ndarray) -> Parts:
    """The entries of a stack ``(l, p, p)`` as contiguous arrays of length l."""
    p = S.shape[1]
    return [[np.ascontiguousarray(S[:, i, k]) for k in range(p)] for i in range(p)]


def _stack(P: Parts, lower: bool) -> np.ndarray:
    """A stack ``(l, p, p)`` from its entries: lower triangular (upper zero) or symmetric."""
    p, n = len(P), P[0][0].shape[0]
    S = np.zeros((n, p, p))
    for i in range(p):
        for k in range(i + 1):
            S[:, i, k] = P[i][k]
            if not lower and k < i:
                S[:, k, i] = P[i][k]
    return S


def _cholesky_parts(A: Parts) -> tuple[Parts, Parts]:
    """Lower Cholesky factors and their inverses, entry by entry (lower triangles only)."""
    p = len(A)
    L: Parts = [[None] * p for _ in range(p)]  # type: ignore[list-item]
    for j in range(p):
        s = A[j][j]
        for k in range(j):
            s = s - L[j][k] * L[j][k]
        if not np.all(s > 0.0):  # also catches NaN
            raise np.linalg.LinAlgError(_NOT_PD)
        L[j][j] = np.sqrt(s)
        for i in range(j + 1, p):
            t = A[i][j]
            for k in range(j):
                t = t - L[i][k] * L[j][k]
            L[i][j] = t / L[j][j]
    M: Parts = [[None] * p for _ in range(p)]  # type: ignore[list-item]
    for i in range(p):
        M[i][i] = 1.0 / L[i][i]
        for j in range(i - 1, -1, -1):
            # row i of L times column j of L^{-1} is zero: sum_{k=j..i} L[i][k] M[k][j] = 0
            t = L[i][j] * M[j][j]
            for k in range(j + 1, i):
                t = t + L[i][k] * M[k][j]
            M[i][j] = -t * M[i][i]
    return L, M


def block_cholesky(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors and their inverses of a stack of symmetric blocks.

    Parameters
    ----------
    A : ndarray, shape (l, p, p)
        Symmetric positive definite blocks (only the lower triangles are read).

    Returns
    -------
    L, Linv : ndarray, shape (l, p, p)
        ``A[j] = L[j] @ L[j].T`` with ``L[j]`` lower triangular, and ``Linv[j] = inv(L[j])``.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.smallblocks import block_cholesky
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(5, 3, 3))
    >>> A = X @ np.swapaxes(X, 1, 2) + np.eye(3)
    >>> L, Linv = block_cholesky(A)
    >>> bool(np.allclose(L, np.linalg.cholesky(A)) and np.allclose(Linv @ L, np.eye(3)))
    True
    """
    A = np.asarray(A, dtype=float)
    if A.ndim != 3 or A.shape[1] != A.shape[2]:
        raise ValueError(f"A must be a stack of square blocks (l, p, p), got shape {A.shape}")
    p = A.shape[1]
    if p > CLOSED_FORM_MAX or A.shape[0] == 0:
        L = np.linalg.cholesky(A)
        return L, np.linalg.inv(L)
    Lp, Mp = _cholesky_parts(_parts(A))
    return _stack(Lp, lower=True), _stack(Mp, lower=True)


def level_blocks(
    T: np.ndarray, D: np.ndarray, min_levels: int = CLOSED_FORM_MIN_LEVELS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The first term's blocks at one theta: ``L_j``, ``L_j^{-1}``, ``C_j`` and ``log|A_11|``.

    Parameters
    ----------
    T : ndarray, shape (p, p)
        The lower-triangular relative covariance factor of the term.
    D : ndarray, shape (l, p, p)
        ``Z_j' Z_j`` for every level ``j`` (symmetric).
    min_levels : int, default CLOSED_FORM_MIN_LEVELS
        The closed form is used for ``2 <= p <= 3`` and at least this many levels, batched
        LAPACK otherwise.

    Returns
    -------
    L, Linv : ndarray, shape (l, p, p)
        Lower Cholesky factors of ``A_j = T' D_j T + I`` and their inverses.
    C : ndarray, shape (l, p, p)
        ``T A_j^{-1} T'`` (symmetric).
    logdet : float
        ``log|A_11| = sum_j log|A_j|``.

    Raises
    ------
    numpy.linalg.LinAlgError
        If a block ``A_j`` is not positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.smallblocks import level_blocks
    >>> T = np.array([[1.0, 0.0], [0.5, 2.0]])
    >>> D = np.array([[[3.0, 1.0], [1.0, 2.0]]])
    >>> L, Linv, C, logdet = level_blocks(T, D, min_levels=0)
    >>> A = T.T @ D[0] @ T + np.eye(2)
    >>> bool(np.allclose(C[0], T @ np.linalg.inv(A) @ T.T))
    True
    >>> bool(np.isclose(logdet, np.linalg.slogdet(A)[1]))
    True
    """
    T = np.asarray(T, dtype=float)
    D = np.asarray(D, dtype=float)
    p = T.shape[0]
    if D.ndim != 3 or D.shape[1:] != (p, p) or T.shape != (p, p):
        raise ValueError(f"D must have shape (l, {p}, {p}) for a {T.shape} T, got {D.shape}")
    if p == 1:
        t = T[0, 0]
        L = np.sqrt(t * D * t + 1.0)
        Linv = 1.0 / L
        Bj = Linv * t
        return L, Linv, Bj * Bj, 2.0 * float(np.sum(np.log(L)))
    if p > CLOSED_FORM_MAX or D.shape[0] == 0 or D.shape[0] < min_levels:
        A = T.T @ D @ T
        A[:, np.arange(p), np.arange(p)] += 1.0
        L = np.linalg.cholesky(A)
        Linv = np.linalg.inv(L)
        Bj = Linv @ T.T
        C = np.swapaxes(Bj, 1, 2) @ Bj
        return L, Linv, C, 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
    if p == 2:
        return _level_blocks_2(T, D)
    Dp = _parts(D)
    t = [[float(T[i, k]) for k in range(p)] for i in range(p)]
    # E = D T (E[a][k] = sum_{b >= k} D[a][b] T[b][k]), then A = T' E + I (lower triangle)
    E = [[_lincomb([(t[b][k], Dp[a][b]) for b in range(k, p)]) for k in range(p)] for a in range(p)]
    A: Parts = [
        [_lincomb([(t[a][i], E[a][k]) for a in range(i, p)]) for k in range(i + 1)]
        for i in range(p)
    ]
    for i in range(p):
        A[i][i] = A[i][i] + 1.0
    Lp, Mp = _cholesky_parts(A)
    # B = L^{-1} T' (B[r][i] = sum_{s <= min(r, i)} M[r][s] T[i][s]); C = B' B
    Bp = [
        [_lincomb([(t[i][s], Mp[r][s]) for s in range(min(r, i) + 1)]) for i in range(p)]
        for r in range(p)
    ]
    Cp: Parts = [
        [_dot([Bp[r][i] for r in range(p)], [Bp[r][k] for r in range(p)]) for k in range(i + 1)]
        for i in range(p)
    ]
    logdet = 0.0
    for j in range(p):
        logdet += float(np.sum(np.log(Lp[j][j])))
    return _stack(Lp, lower=True), _stack(Mp, lower=True), _stack(Cp, lower=False), 2.0 * logdet


def _level_blocks_2(
    T: np.ndarray, D: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """:func:`level_blocks` for ``p = 2``, unrolled by hand and written in place.

    ``C = T A^{-1} T'`` is formed from ``A^{-1} = L^{-T} L^{-1}`` (entries P, Q, R) and
    ``log|A_j| = log(a_00 s)`` with ``s = a_11 - l_10^2`` (``= l_11^2``): one logarithm a level.
    """
    t00, t10, t11 = float(T[0, 0]), float(T[1, 0]), float(T[1, 1])
    d00, d10, d11 = D[:, 0, 0], D[:, 1, 0], D[:, 1, 1]
    n = D.shape[0]
    L, M, C = np.zeros((n, 2, 2)), np.zeros((n, 2, 2)), np.empty((n, 2, 2))
    # A = T' D T + I
    e = d00 * t00
    e += d10 * t10  # (D T)[0][0]
    f = d10 * t00
    f += d11 * t10  # (D T)[1][0]
    a00 = e * t00
    a00 += f * t10
    a00 += 1.0
    a10 = f * t11
    a11 = d11 * (t11 * t11)
    a11 += 1.0
    if not np.all(a00 > 0.0):  # also catches NaN
        raise np.linalg.LinAlgError(_NOT_PD)
    l00 = np.sqrt(a00, out=L[:, 0, 0])
    l10 = np.divide(a10, l00, out=L[:, 1, 0])
    s = a11 - l10 * l10
    if not np.all(s > 0.0):
        raise np.linalg.LinAlgError(_NOT_PD)
    l11 = np.sqrt(s, out=L[:, 1, 1])
    m00 = np.divide(1.0, l00, out=M[:, 0, 0])
    m11 = np.divide(1.0, l11, out=M[:, 1, 1])
    m10 = np.multiply(l10, m00, out=M[:, 1, 0])
    m10 *= m11
    np.negative(m10, out=m10)
    # C = T A^{-1} T' with A^{-1} = M' M: P = (A^-1)00, Q = (A^-1)10, R = (A^-1)11
    P = m00 * m00
    P += m10 * m10
    Q = m10 * m11
    R = m11 * m11
    np.multiply(P, t00 * t00, out=C[:, 0, 0])
    c10 = np.multiply(P, t00 * t10, out=C[:, 1, 0])
    c10 += Q * (t00 * t11)
    C[:, 0, 1] = c10
    c11 = np.multiply(P, t10 * t10, out=C[:, 1, 1])
    c11 += Q * (2.0 * t10 * t11)
    c11 += R * (t11 * t11)
    logdet = float(np.sum(np.log(a00 * s)))
    return L, M, C, logdet


def _lincomb(terms: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """``sum_k c_k x_k`` over the terms ``(c_k, x_k)`` (at least one)."""
    c, x = terms[0]
    out = c * x
    for c, x in terms[1:]:
        out = out + c * x
    return out


def _dot(u: list[np.ndarray], v: list[np.ndarray]) -> np.ndarray:
    """``sum_r u_r v_r``, elementwise over the levels."""
    out = u[0] * v[0]
    for a, b in zip(u[1:], v[1:], strict=True):
        out = out + a * b
    return out
