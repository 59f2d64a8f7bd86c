"""The closed-form level blocks of the first random term (:mod:`mlmprimer.smallblocks`).

The elementwise Cholesky factors, inverses and ``T A_j^{-1} T'`` are checked against numpy's
LAPACK routines on random positive definite stacks; a block that is not positive definite makes
the deviance infinite; and the profiled deviance of designs whose first term has 2 and 3
columns (enough levels for the closed form) equals a dense computation from the explicit Z,
Lambda and the full system matrix.
"""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlmprimer.design import build_design
from mlmprimer.factor import CrossProducts, ProfiledDeviance
from mlmprimer.formula import parse_formula
from mlmprimer.smallblocks import CLOSED_FORM_MIN_LEVELS, block_cholesky, level_blocks


def spd_stack(rng, levels, p):
    """Random symmetric positive definite blocks of varied scale (seeded)."""
    X = rng.normal(size=(levels, p, p + 2)) * rng.uniform(0.1, 10.0, size=(levels, 1, 1))
    return X @ np.swapaxes(X, 1, 2) + 0.1 * np.eye(p)


def template(rng, p):
    T = np.tril(rng.normal(size=(p, p)))
    T[np.diag_indices(p)] = np.abs(T[np.diag_indices(p)]) + 0.1
    return T


@pytest.mark.parametrize("p", [2, 3])
def test_block_cholesky_equals_lapack(p):
    rng = np.random.default_rng(100 + p)
    A = spd_stack(rng, 500, p)
    L, Linv = block_cholesky(A)
    Lref = np.linalg.cholesky(A)
    scale = np.abs(Lref).max(axis=(1, 2), keepdims=True)
    np.testing.assert_array_less(np.abs(L - Lref) / scale, 1e-13)
    Minv = np.linalg.inv(Lref)
    iscale = np.abs(Minv).max(axis=(1, 2), keepdims=True)
    np.testing.assert_array_less(np.abs(Linv - Minv) / iscale, 1e-13)
    assert np.all(np.triu(L, 1) == 0.0) and np.all(np.triu(Linv, 1) == 0.0)


@pytest.mark.parametrize("p", [2, 3])
def test_level_blocks_closed_form_equals_lapack(p):
    rng = np.random.default_rng(200 + p)
    T, D = template(rng, p), spd_stack(rng, 400, p)
    closed = level_blocks(T, D, min_levels=0)
    lapack = level_blocks(T, D, min_levels=10**9)
    for got, want in zip(closed[:3], lapack[:3], strict=True):
        scale = np.abs(want).max(axis=(1, 2), keepdims=True)
        np.testing.assert_array_less(np.abs(got - want) / scale, 1e-13)
    # an independent computation: C_j = T A_j^{-1} T', log|A_11| by slogdet
    A = np.swapaxes(T, 0, 1)[None] @ D @ T[None] + np.eye(p)
    C = T[None] @ np.linalg.inv(A) @ T.T[None]
    np.testing.assert_allclose(closed[2], C, rtol=1e-11, atol=1e-13 * np.abs(C).max())
    assert closed[3] == pytest.approx(float(np.sum(np.linalg.slogdet(A)[1])), rel=1e-13)


def test_level_blocks_of_one_column_are_scalars():
    rng = np.random.default_rng(3)
    D = rng.uniform(0.5, 5.0, size=(50, 1, 1))
    L, Linv, C, logdet = level_blocks(np.array([[0.7]]), D)
    np.testing.assert_allclose(L[:, 0, 0], np.sqrt(0.49 * D[:, 0, 0] + 1.0), rtol=1e-15)
    np.testing.assert_allclose(C[:, 0, 0], 0.49 / (0.49 * D[:, 0, 0] + 1.0), rtol=1e-14)
    assert logdet == pytest.approx(float(np.sum(np.log(0.49 * D[:, 0, 0] + 1.0))), rel=1e-14)


@pytest.mark.parametrize("p", [2, 3])
def test_a_block_that_is_not_positive_definite_raises(p):
    rng = np.random.default_rng(300 + p)
    A = spd_stack(rng, 20, p)
    A[7, p - 1, p - 1] = -1.0
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        block_cholesky(A)
    A[7, p - 1, p - 1] = np.nan
    with pytest.raises(np.linalg.LinAlgError):
        block_cholesky(A)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="stack of square blocks"):
        block_cholesky(np.ones((3, 2, 3)))
    with pytest.raises(ValueError, match=r"D must have shape \(l, 2, 2\)"):
        level_blocks(np.eye(2), np.ones((4, 3, 3)))


def simulated(p1, levels, seed, second=False):
    """A first term with p1 columns on ``levels`` groups, optionally a crossed intercept term."""
    rng = np.random.default_rng(seed)
    n = 8 * levels
    df = pd.DataFrame(
        {
            "g": pd.Categorical(rng.integers(0, levels, n)),
            "h": pd.Categorical(rng.integers(0, 7, n)),
            "x": rng.normal(size=n),
            "z": rng.uniform(-1.0, 1.0, size=n),
        }
    )
    b = rng.normal(size=(levels, 3)) * [1.0, 0.5, 0.3]
    g = df.g.cat.codes.to_numpy()
    df["y"] = 1.0 + 0.5 * df.x + b[g, 0] + b[g, 1] * df.x + b[g, 2] * df.z + rng.normal(size=n)
    slopes = "x" if p1 == 2 else "x + z"
    formula = f"y ~ x + z + ({slopes} | g)" + (" + (1 | h)" if second else "")
    return build_design(parse_formula(formula), df)


def dense_deviance(design, theta, REML):
    """The profiled deviance from the explicit Z, Lambda and the full system (no blocking)."""
    Z = sp.hstack([t.z_block() for t in design.terms]).toarray()
    Lam = sp.block_diag(
        [sp.kron(sp.identity(t.nlevels), t.template(theta)) for t in design.terms]
    ).toarray()
    X, y, n, p = design.X, design.y, design.n, design.p
    ZL = Z @ Lam
    q = ZL.shape[1]
    A = ZL.T @ ZL + np.eye(q)
    M = np.block([[A, ZL.T @ X], [X.T @ ZL, X.T @ X]])
    rhs = np.concatenate([ZL.T @ y, X.T @ y])
    sol = np.linalg.solve(M, rhs)
    r2 = float(y @ y - rhs @ sol)
    logdet_A = np.linalg.slogdet(A)[1]
    if not REML:
        return logdet_A + n * (1.0 + math.log(2.0 * math.pi * r2 / n))
    RX = X.T @ X - X.T @ ZL @ np.linalg.solve(A, ZL.T @ X)
    nmp = n - p
    return logdet_A + np.linalg.slogdet(RX)[1] + nmp * (1.0 + math.log(2.0 * math.pi * r2 / nmp))


@pytest.mark.parametrize("second", [False, True])
@pytest.mark.parametrize("p1", [2, 3])
def test_deviance_equals_dense_reference(p1, second):
    levels = CLOSED_FORM_MIN_LEVELS + 20  # the closed form is taken
    d = simulated(p1, levels, seed=10 * p1 + second, second=second)
    assert d.terms[0].p == p1 and d.terms[0].nlevels >= CLOSED_FORM_MIN_LEVELS
    rng = np.random.default_rng(5)
    for REML in (True, False):
        dev = ProfiledDeviance(d, REML=REML)
        for _ in range(3):
            theta = d.theta0 + rng.normal(scale=0.4, size=d.theta0.size)
            theta = np.where(np.isfinite(d.lower), np.abs(theta), theta)
            assert dev(theta) == pytest.approx(dense_deviance(d, theta, REML), rel=1e-11)


def test_a_level_block_that_is_not_positive_definite_gives_an_infinite_deviance():
    d = simulated(2, CLOSED_FORM_MIN_LEVELS + 20, seed=4)
    B = CrossProducts(d)
    dev = ProfiledDeviance(d, REML=True)
    theta = np.array([1.0, 0.2, 0.8])
    assert np.isfinite(dev(theta))
    D = B.D.copy()
    D[11] = [[-5.0, 0.0], [0.0, 1.0]]  # T' D_11 T + I has a negative diagonal entry
    bad = CrossProducts.from_sums(d.terms[1:], D, B.G, B.WtW, d.p)
    assert ProfiledDeviance(d, REML=True, products=bad)(theta) == math.inf


def test_dense_pair_map_equals_the_explicit_product():
    d = simulated(2, CLOSED_FORM_MIN_LEVELS + 20, seed=6)
    B = CrossProducts(d)
    assert B.qr == 0 and isinstance(B._pairs[1], np.ndarray)  # the dense map is taken
    rng = np.random.default_rng(8)
    C = spd_stack(rng, B.l1, 2)
    G = B.G.toarray()
    blocks = sp.block_diag(list(C)).toarray()
    want = B.WtW - G.T @ blocks @ G
    got = B.cross(C)
    lower = np.tril_indices(B.m)
    np.testing.assert_allclose(got[lower], want[lower], rtol=1e-12, atol=1e-12 * np.abs(want).max())
