"""The one-pass cross-products and the design's rank check against explicit matrices.

:class:`mlmprimer.factor.CrossProducts` sums by grouping codes (``np.bincount``) and never forms
Z; here D, G = Z_1'W and W'W are formed from the explicit sparse ``design.Z()``, X, y, the
weights and the offset, and the profiled deviance from dense linear algebra.
"""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlmprimer.datasets import load
from mlmprimer.design import build_design, design_warnings, model_design
from mlmprimer.factor import (
    CrossProducts,
    ProfiledDeviance,
    criterion,
    deviance_at,
    factorize,
)
from mlmprimer.formula import parse_formula
from mlmprimer.fulldense import FULL_DENSE_MAX, FullDense
from mlmprimer.singleterm import SingleTerm

RTOL = 1e-12


def simulated(n=600, levels=(40, 15, 6), seed=11):
    """Three crossed factors, a slope, known weights and offset (seeded)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "a": rng.integers(0, levels[0], n),
            "b": rng.integers(0, levels[1], n),
            "c": rng.integers(0, levels[2], n),
            "x": rng.standard_normal(n),
            "z": rng.uniform(-1, 1, n),
        }
    )
    df["y"] = (
        1.0
        + 0.5 * df.x
        + rng.standard_normal(levels[0])[df.a]
        + (0.7 + 0.3 * df.x) * rng.standard_normal(levels[1])[df.b]
        + 0.4 * rng.standard_normal(levels[2])[df.c]
        + rng.standard_normal(n)
    )
    return df, rng.uniform(0.5, 2.0, n), rng.normal(0, 0.3, n)


def make(formula, data, weights=None, offset=None):
    return build_design(parse_formula(formula), data, weights=weights, offset=offset)


def explicit(d):
    """D, G and W'W from the explicit sparse Z, dense X and y (rows scaled by sqrt(w))."""
    sw = np.ones(d.n) if d.weights is None else np.sqrt(d.weights)
    y = d.y if d.offset is None else d.y - d.offset
    Z = sp.diags(sw) @ d.Z().tocsc()
    q1, p1 = d.terms[0].q, d.terms[0].p
    Z1 = Z[:, :q1]
    W = sp.hstack([Z[:, q1:], sp.csc_matrix(sw[:, None] * np.column_stack([d.X, y]))]).tocsc()
    ZZ = (Z1.T @ Z1).toarray()
    D = np.stack([ZZ[j * p1 : (j + 1) * p1, j * p1 : (j + 1) * p1] for j in range(q1 // p1)])
    # Z_1'Z_1 is block diagonal: nothing outside the per-level blocks
    off_blocks = ZZ.copy()
    for j in range(q1 // p1):
        off_blocks[j * p1 : (j + 1) * p1, j * p1 : (j + 1) * p1] = 0.0
    assert not off_blocks.any()
    return D, (Z1.T @ W).toarray(), (W.T @ W).toarray()


def dense_deviance(d, theta, REML):
    """The profiled deviance by dense linear algebra on [Z Lambda | X] (small designs)."""
    sw = np.ones(d.n) if d.weights is None else np.sqrt(d.weights)
    y = sw * (d.y if d.offset is None else d.y - d.offset)
    ZL = sw[:, None] * (d.Z() @ d.Lambda(theta)).toarray()
    X = sw[:, None] * d.X
    q, n, p = ZL.shape[1], d.n, d.p
    A = ZL.T @ ZL + np.eye(q)
    full = np.block([[A, ZL.T @ X], [X.T @ ZL, X.T @ X]])
    rhs = np.concatenate([ZL.T @ y, X.T @ y])
    sol = np.linalg.solve(full, rhs)
    r2 = y @ y - rhs @ sol
    logdet_L = np.linalg.slogdet(A)[1]
    logdet_RX = np.linalg.slogdet(full)[1] - logdet_L
    ldw = 0.0 if d.weights is None else np.sum(np.log(d.weights))
    if REML:
        return logdet_L + logdet_RX + (n - p) * (1 + np.log(2 * np.pi * r2 / (n - p))) - ldw
    return logdet_L + n * (1 + np.log(2 * np.pi * r2 / n)) - ldw


def with_unused_level(d):
    """The design with an extra level (no rows) in its first and last grouping factors."""
    terms = list(d.terms)
    for i in {0, len(terms) - 1}:
        t = terms[i]
        terms[i] = dataclasses.replace(t, levels=t.levels.append(pd.Index(["(unused)"])))
    start = 0
    for t in terms:
        t.theta_start = start
        start += t.ntheta
    return dataclasses.replace(d, terms=terms)


SIM, SIM_W, SIM_OFF = simulated()
MANY, MANY_W, _ = simulated(n=3000, levels=(500, 15, 6), seed=12)
SPARSE, _, _ = simulated(n=900, levels=(400, 15, 6), seed=13)  # many levels of one row

CASES = {
    "intercept": lambda: make("Yield ~ 1 + (1 | Batch)", load("dyestuff")),
    "correlated slopes": lambda: make("Reaction ~ Days + (Days | Subject)", load("sleepstudy")),
    "uncorrelated slopes": lambda: make(
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", load("sleepstudy")
    ),
    "crossed": lambda: make("diameter ~ 1 + (1 | plate) + (1 | sample)", load("penicillin")),
    "nested": lambda: make("strength ~ 1 + (1 | batch/cask)", load("pastes")),
    "three factors": lambda: make("y ~ x + z + (1 | a) + (x | b) + (1 | c)", SIM),
    "weights": lambda: make("y ~ x + (x | b) + (1 | c)", SIM, weights=SIM_W),
    "offset": lambda: make("y ~ x + (1 | a) + (1 | b)", SIM, offset=SIM_OFF),
    "weights and offset": lambda: make(
        "y ~ x + z + (x | a) + (1 | b) + (0 + z | c)", SIM, weights=SIM_W, offset=SIM_OFF
    ),
    "no fixed effects": lambda: make("y ~ 0 + (1 | a) + (1 | b)", SIM),
    "one term, weights and offset": lambda: make(
        "y ~ x + z + (x | b)", SIM, weights=SIM_W, offset=SIM_OFF
    ),
    "one term, no fixed effects": lambda: make("y ~ 0 + (x | a)", SIM),
    "one term, many levels": lambda: make("y ~ x + (z | a)", MANY, weights=MANY_W),
    "one term, levels of one row": lambda: make("y ~ x + (x | a)", SPARSE),
    "unused levels": lambda: with_unused_level(
        make("y ~ x + (x | a) + (1 | b)", SIM, weights=SIM_W)
    ),
}


@pytest.fixture(params=list(CASES), scope="module")
def case(request):
    return CASES[request.param]()


def test_products_equal_the_explicit_matrices(case):
    d = case
    B = CrossProducts(d)
    D, G, WtW = explicit(d)
    scale = max(1.0, float(np.max(np.abs(WtW))))
    np.testing.assert_allclose(B.D, D, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(B.G.toarray(), G, rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_allclose(B.WtW, WtW, rtol=RTOL, atol=RTOL * scale)
    assert np.array_equal(B.WtW, B.WtW.T)
    assert B.G.nnz == np.count_nonzero(G)  # no explicit zeros, nothing missing
    assert (B.l1, B.p1, B.qr, B.m) == (
        d.terms[0].nlevels,
        d.terms[0].p,
        d.q - d.terms[0].q,
        d.q - d.terms[0].q + d.p + 1,
    )


def test_grouped_sums_are_added_in_row_order(case):
    # the grouped sums are those of the sparse products Z_1'W and Z_rest'W (row by row, in row
    # order) to the last bit; [X | y]'[X | y] is a BLAS product, equal to rounding
    d = case
    sw = None if d.weights is None else np.sqrt(d.weights)
    y = d.y if d.offset is None else d.y - d.offset

    def scaled(a):
        return a if sw is None else a * (sw[:, None] if a.ndim == 2 else sw)

    t1 = d.terms[0]
    Z1 = t1.z_block(scaled(t1.Xi))
    parts = [t.z_block(scaled(t.Xi)) for t in d.terms[1:]]
    parts.append(sp.csr_matrix(scaled(np.column_stack([d.X, y]))))
    W = sp.hstack(parts, format="csc")
    B = CrossProducts(d)
    assert np.array_equal(B.G.toarray(), (Z1.T.tocsr() @ W).toarray())
    ref = (W.T @ W).toarray()
    qr = B.qr
    assert np.array_equal(B.WtW[:qr], ref[:qr])
    np.testing.assert_allclose(
        B.WtW[qr:, qr:], ref[qr:, qr:], rtol=1e-13, atol=1e-13 * np.abs(ref).max()
    )


def test_deviance_equals_a_dense_computation(case):
    d = case
    rng = np.random.default_rng(5)
    for REML in (True, False):
        devfun = ProfiledDeviance(d, REML)
        for _ in range(3):
            theta = d.theta0 + rng.uniform(-0.4, 0.6, d.theta0.size)
            theta = np.where(np.isfinite(d.lower), np.abs(theta), theta)
            want = dense_deviance(d, theta, REML)
            assert devfun(theta) == pytest.approx(want, rel=1e-10)
            # the blocked factor (the solution's) and the whole system's one dense factor
            blocked = deviance_at(devfun.factor(theta), d.n, d.p, REML)
            assert blocked == pytest.approx(want, rel=1e-10)
            parts = FullDense(d.terms, devfun.products).parts(theta)
            full = criterion(*parts, devfun.products.ldw, d.n, d.p, REML)
            assert full == pytest.approx(want, rel=1e-10)
            if SingleTerm.fits(devfun.products):  # one term, level by level
                parts = SingleTerm.from_products(devfun.products).parts(theta)
                one = criterion(*parts, devfun.products.ldw, d.n, d.p, REML)
                assert one == pytest.approx(want, rel=1e-10)


def test_small_systems_are_factored_whole_at_each_evaluation():
    small = make("Reaction ~ Days + (Days | Subject) + (1 | Days)", load("sleepstudy"))
    assert small.q + small.p + 1 <= FULL_DENSE_MAX
    assert isinstance(ProfiledDeviance(small)._full, FullDense)
    big = make("y ~ x + (x | a) + (1 | b)", SIM)  # 40 x 2 + 15 + 2 + 1 = 98: whole
    assert isinstance(ProfiledDeviance(big)._full, FullDense)
    bigger = make("y ~ x + (x | a) + (x | b)", SIM)  # 80 + 30 + 3 = 113: blocked
    assert bigger.q + bigger.p + 1 > FULL_DENSE_MAX
    assert ProfiledDeviance(bigger)._full is None


def test_one_term_of_one_or_two_columns_is_evaluated_level_by_level():
    for formula, data in [
        ("Yield ~ 1 + (1 | Batch)", load("dyestuff")),
        ("Reaction ~ Days + (Days | Subject)", load("sleepstudy")),
        ("y ~ x + (z | a)", MANY),  # 500 levels: beyond the whole system's dense factor
    ]:
        assert isinstance(ProfiledDeviance(make(formula, data))._full, SingleTerm)
    three = make("y ~ x + (x + z | b)", SIM)  # three columns: the whole system, densely
    assert not SingleTerm.fits(CrossProducts(three))
    assert isinstance(ProfiledDeviance(three)._full, FullDense)
    with pytest.raises(ValueError, match="one random term only"):
        SingleTerm.from_products(CrossProducts(make("y ~ x + (1 | a) + (1 | b)", SIM)))


def test_one_term_evaluation_holds_for_large_variances_and_levels_of_one_row():
    # a level of one row has D_j of rank one: det M_j from 1 + tr + det(T)^2 det(D_j), exact
    d = make("y ~ x + (x | a)", SPARSE)
    B = CrossProducts(d)
    one = SingleTerm.from_products(B)
    for theta in ([30.0, 5.0, 20.0], [1e3, -2e2, 1e2], [0.0, 0.0, 1e-4]):
        theta = np.array(theta)
        want = deviance_at(factorize(theta, d, B), d.n, d.p, True)
        got = criterion(*one.parts(theta), B.ldw, d.n, d.p, True)
        assert got == pytest.approx(want, rel=1e-9)


def test_one_term_evaluation_signals_a_system_that_is_not_positive_definite():
    d = make("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    one = SingleTerm.from_products(CrossProducts(d))
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        one.parts(np.array([np.nan, 0.0, 1.0]))
    assert ProfiledDeviance(d)(np.array([np.nan, 0.0, 1.0])) == np.inf


def test_many_pairs_of_levels_are_summed_sparsely():
    # two crossed factors whose pairs of levels are too many for a dense count: renumbered
    rng = np.random.default_rng(3)
    n = 4000
    df = pd.DataFrame(
        {"a": np.arange(n) % 1200, "b": rng.integers(0, 1000, n), "x": rng.normal(size=n)}
    )
    df["y"] = df.x + rng.normal(size=(1200,))[df.a] + rng.normal(size=(1000,))[df.b]
    df["y"] += rng.normal(size=n)
    d = make("y ~ x + (1 | a) + (1 | b) + (0 + x | b)", df, weights=rng.uniform(1, 2, n))
    assert d.terms[0].nlevels * d.terms[1].nlevels > max(2 * n, 1 << 20)
    B = CrossProducts(d)
    D, G, WtW = explicit(d)
    np.testing.assert_allclose(B.D, D, rtol=RTOL)
    np.testing.assert_allclose(B.G.toarray(), G, rtol=RTOL, atol=RTOL * np.max(np.abs(G)))
    np.testing.assert_allclose(B.WtW, WtW, rtol=RTOL, atol=RTOL * np.max(np.abs(WtW)))


# --------------------------------------------------------------------------------------------
# the rank check of X
# --------------------------------------------------------------------------------------------


def in_order_rank(X, tol=1e-7):
    """R's rule by least squares: column j is kept if its residual on the kept ones is large."""
    keep = []
    for j in range(X.shape[1]):
        col = X[:, j]
        norm = np.linalg.norm(col)
        if norm == 0:
            continue
        if keep:
            coef = np.linalg.lstsq(X[:, keep], col, rcond=None)[0]
            res = np.linalg.norm(col - X[:, keep] @ coef)
        else:
            res = norm
        if res > tol * norm:
            keep.append(j)
    return keep


def rank_data(seed=2, n=400):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"g": rng.integers(0, 20, n), "x1": rng.normal(size=n)})
    df["x2"] = rng.normal(size=n)
    df["y"] = df.x1 + rng.normal(size=n)
    return df, rng


@pytest.mark.parametrize(
    ("extra", "dropped"),
    [
        ({"twice": lambda d, e: 2 * d.x1}, ["twice"]),
        ({"diff": lambda d, e: d.x1 - 3 * d.x2}, ["diff"]),
        ({"const": lambda d, e: 0 * d.x1 + 5.0}, ["const"]),
        ({"zero": lambda d, e: 0.0 * d.x1}, ["zero"]),
        ({"near": lambda d, e: d.x1 + 1e-10 * e}, ["near"]),
        ({"close": lambda d, e: d.x1 + 1e-5 * e}, []),
        ({"big": lambda d, e: 1e2 + 1e-3 * e, "sum": lambda d, e: d.x1 + d.x2}, ["sum"]),
    ],
)
def test_rank_deficient_x_drops_the_same_columns(extra, dropped):
    df, rng = rank_data()
    noise = rng.normal(size=len(df))
    for name, f in extra.items():
        df[name] = f(df, noise)
    formula = "y ~ x1 + x2 + " + " + ".join(extra) + " + (1 | g)"
    d = make(formula, df)
    full = np.column_stack([np.ones(len(df)), df[["x1", "x2", *extra]].to_numpy()])
    names = ["(Intercept)", "x1", "x2", *extra]
    assert d.xnames == [names[j] for j in in_order_rank(full)]
    assert d.dropped == dropped
    notes = design_warnings(d)
    if dropped:
        k = len(dropped)
        assert notes[0] == (
            f"fixed-effect model matrix is rank deficient so dropping {k} column / "
            f"coefficient: {', '.join(dropped)}"
        )
    else:
        assert not any("rank deficient" in s for s in notes)


def test_rank_deficient_x_warns_when_fitted():
    from mlmprimer.model import lmer

    df = load("sleepstudy").assign(Days2=lambda x: 2 * x.Days)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = lmer("Reaction ~ Days + Days2 + (1 | Subject)", df)
    assert list(m.fixef.index) == ["(Intercept)", "Days"]
    assert any(
        "rank deficient so dropping 1 column / coefficient: Days2" in str(w.message) for w in caught
    )
    md = model_design("Reaction ~ Days + (1 | Subject)", load("sleepstudy"))
    assert m.loglik == pytest.approx(-0.5 * ProfiledDeviance(md.design, True)(m.theta), rel=1e-12)
