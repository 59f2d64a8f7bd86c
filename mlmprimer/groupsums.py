"""Grouped sums over the rows: the one pass that gives a design's cross-products.

:class:`mlmprimer.factor.CrossProducts` needs ``Z_j' Z_j`` per level of a term, ``Z_1' W`` and
``W' W`` (``W = [Z_rest | X | y]``, rows scaled by ``sqrt(w)`` under prior weights). Each is a
sum over rows grouped by the levels of a grouping factor: ``np.bincount`` of the level codes
weighted by the product of two columns, one pair of columns at a time, into one reusable
buffer of ``n`` values. A column of ones is passed as ``None``, so that an intercept's sums are
the counts (or the other column's sums) without a product. Products of two different terms
(crossed factors) are summed per occupied pair of levels only.

Examples
--------
>>> import numpy as np
>>> from mlmprimer.groupsums import level_sums
>>> codes = np.array([0, 1, 0, 1, 1])
>>> x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
>>> level_sums(codes, 2, [None, x], [None, x], np.empty(5), symmetric=True)[:, 0].tolist()
[[2.0, 4.0], [3.0, 11.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .design import TermBlock

__all__ = ["columns_of", "gram_w", "level_sums", "pair_sums", "scaled_columns", "scaled_tail"]


Column = np.ndarray | None  # a column of W, None for a column of ones


def columns_of(A: np.ndarray) -> list[np.ndarray]:
    """The columns of a matrix, each contiguous (copied once, if A is stored by rows)."""
    return [np.ascontiguousarray(A[:, j], dtype=float) for j in range(A.shape[1])]


def scaled_columns(cols: Sequence[np.ndarray], sw: np.ndarray | None) -> list[Column]:
    """The columns times ``sqrt(w)``; without weights None for a column of ones."""
    if sw is None:  # the first value settles most columns without a pass over the rest
        return [None if c[0] == 1.0 and np.all(c == 1.0) else c for c in cols]
    return [c * sw for c in cols]


def _sums(codes: np.ndarray, nbins: int, u: Column, v: Column, buf: np.ndarray) -> np.ndarray:
    """Sums of ``u * v`` (None: ones) by bin, added in row order (as a sparse product does).

    The products are written into ``buf`` (n values), so that no pass allocates.
    """
    if u is None or v is None:
        wt = v if u is None else u
    else:
        wt = np.multiply(u, v, out=buf)
    out = np.bincount(codes, weights=wt, minlength=nbins)
    return out if wt is not None else out.astype(float)


def level_sums(
    codes: np.ndarray,
    nlevels: int,
    u: Sequence[Column],
    v: Sequence[Column],
    buf: np.ndarray,
    symmetric: bool = False,
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """``S[j, a, b]``: the sum of ``u[a] * v[b]`` over the rows of level j.

    With ``symmetric`` (``u`` is ``v``) only ``b <= a`` is summed, and mirrored. ``counts``,
    the rows per level when known, serves a pair of columns of ones.
    """
    S = np.empty((nlevels, len(u), len(v)))
    for a, ua in enumerate(u):
        for b, vb in enumerate(v):
            if symmetric and b > a:
                continue
            ones = ua is None and vb is None and counts is not None
            S[:, a, b] = counts if ones else _sums(codes, nlevels, ua, vb, buf)
            if symmetric:
                S[:, b, a] = S[:, a, b]
    return S


def pair_sums(
    ca: np.ndarray,
    la: int,
    ua: Sequence[Column],
    cb: np.ndarray,
    lb: int,
    Xb: np.ndarray,
    sw: np.ndarray | None,
    buf: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Z_a' Z_b`` (rows scaled by ``sw``) as COO (rows, cols, values), occupied bins only.

    ``ua`` are term a's scaled columns (:func:`scaled_columns`), ``Xb`` term b's columns.
    Pairs of levels are numbered ``ca * lb + cb``; they are summed by ``np.bincount`` when
    there are few enough of them, and renumbered by ``np.unique`` first otherwise.
    """
    n = ca.shape[0]
    k = ca.astype(np.int64) * lb + cb
    dense = la * lb <= max(2 * n, 1 << 20)
    if dense:
        bins = np.flatnonzero(np.bincount(k, minlength=la * lb))
    else:
        bins, k = np.unique(k, return_inverse=True)
    nb = la * lb if dense else len(bins)
    ub = scaled_columns(columns_of(Xb), sw)
    pa, pb = len(ua), len(ub)
    lev_a, lev_b = bins // lb, bins % lb
    rows, cols, vals = [], [], []
    for a, u in enumerate(ua):
        for b, v in enumerate(ub):
            s = _sums(k, nb, u, v, buf)
            vals.append(s[bins] if dense else s)
            rows.append(lev_a * pa + a)
            cols.append(lev_b * pb + b)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def scaled_tail(
    X: np.ndarray, y: np.ndarray, sw: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (stored by columns, each contiguous) and ``y``, rows scaled by ``sqrt(w)``."""
    if sw is not None:
        return np.asfortranarray(X * sw[:, None]), y * sw
    return np.asfortranarray(X, dtype=float), np.asarray(y, dtype=float)


def gram_w(
    rest: Sequence[TermBlock],
    xtx: np.ndarray,
    Xs: np.ndarray,
    ys: np.ndarray,
    tail: Sequence[Column],
    sw: np.ndarray | None,
    buf: np.ndarray,
) -> np.ndarray:
    """``W'W`` (dense, symmetric) for ``W = [Z_rest | Xs | ys]``, the scaled ``[X | y]``.

    ``xtx`` is ``Xs'Xs``; ``tail`` are the columns of ``[Xs | ys]`` for the grouped sums (None
    for a column of ones); ``X'y`` and ``y'y`` are BLAS products.
    """
    p = Xs.shape[1]
    qr = sum(t.q for t in rest)
    m = qr + p + 1
    M = np.zeros((m, m))
    M[qr : qr + p, qr : qr + p] = np.triu(xtx) if rest else xtx
    M[qr : qr + p, -1] = Xs.T @ ys
    M[-1, -1] = ys @ ys
    offs = np.cumsum([0] + [t.q for t in rest])
    for i, t in enumerate(rest):
        ut = scaled_columns(columns_of(t.Xi), sw)
        # its own levels: p_t x p_t blocks on the diagonal
        S = level_sums(t.codes, t.nlevels, ut, ut, buf, symmetric=True)
        idx = offs[i] + np.arange(t.q).reshape(t.nlevels, t.p)
        M[idx[:, :, None], idx[:, None, :]] = S
        M[offs[i] : offs[i + 1], qr:] = level_sums(t.codes, t.nlevels, ut, tail, buf).reshape(
            t.q, -1
        )
        for j in range(i + 1, len(rest)):
            s = rest[j]
            r, c, v = pair_sums(t.codes, t.nlevels, ut, s.codes, s.nlevels, s.Xi, sw, buf)
            M[offs[i] + r, offs[j] + c] = v
    if not rest:  # X'X (symmetric), X'y and y'y: mirror the last column
        M[-1, qr:-1] = M[qr:-1, -1]
        return M
    # the upper triangle filled above, mirrored
    M = np.triu(M)
    M += np.triu(M, 1).T
    return M
