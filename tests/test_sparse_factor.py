"""The sparse Schur step (mlmprimer.schur) against the dense one, and the choice between them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mlmprimer.control import LmerControl
from mlmprimer.datasets import load
from mlmprimer.design import build_design, model_design
from mlmprimer.factor import CrossProducts, ProfiledDeviance, deviance_function, factorize
from mlmprimer.formula import parse_formula
from mlmprimer.model import lmer
from mlmprimer.optimize import optimize_theta
from mlmprimer.schur import SparseSchur, choose_schur, dense_gram, schur_plan
from mlmprimer.solution import solve_mixed

FIXTURES = Path(__file__).parent / "fixtures" / "lme4"


def ratings(n_raters: int, n_items: int, per_rater: int, seed: int, slopes: bool = False):
    """Raters each scoring a few items near their own position ("local" crossing)."""
    rng = np.random.default_rng(seed)
    rater = np.repeat(np.arange(n_raters), per_rater)
    centre = rater * n_items // n_raters
    item = (centre + rng.integers(-4, 5, rater.size)) % n_items
    x = rng.normal(size=rater.size)
    a = rng.normal(0, 0.8, n_raters)
    b0, b1 = rng.normal(0, 0.6, n_items), rng.normal(0, 0.3, n_items)
    y = (
        1.0
        + 0.5 * x
        + a[rater]
        + b0[item]
        + (b1[item] * x if slopes else 0)
        + rng.normal(size=x.size)
    )
    return pd.DataFrame({"y": y, "x": x, "rater": rater.astype(str), "item": item.astype(str)})


RATINGS = ratings(400, 300, 6, seed=11)
SLOPES = ratings(400, 150, 8, seed=12, slopes=True)

CASES = {
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", load("penicillin")),
    "scotssec": ("attain ~ verbal + sex + (1 | primary) + (1 | second)", load("scotssec")),
    "ratings": ("y ~ x + (1 | rater) + (1 | item)", RATINGS),
    "vector_rest": ("y ~ x + (1 | rater) + (x | item)", SLOPES),
}


def design_of(name: str):
    formula, data = CASES[name]
    return build_design(parse_formula(formula), data)


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))) if a.size else 0.0


@pytest.mark.parametrize("REML", [True, False])
@pytest.mark.parametrize("name", sorted(CASES))
def test_sparse_deviance_and_estimates_equal_the_dense(name, REML):
    d = design_of(name)
    dense = ProfiledDeviance(d, REML, schur_factor="dense")
    sparse = ProfiledDeviance(d, REML, products=dense.products, schur_factor="sparse")
    rng = np.random.default_rng(3)
    for theta in [d.theta0, d.theta0 * 0.3 + 0.05, np.abs(rng.normal(1, 0.5, d.theta0.size))]:
        theta = np.where(d.lower == 0, np.abs(theta), theta)
        assert sparse(theta) == pytest.approx(dense(theta), rel=1e-11)
    opt = optimize_theta(dense)
    opt_s = optimize_theta(sparse)
    # the optimiser's path follows the deviance's last digits: the optimum agrees to the
    # deviance's rounding, theta to the accuracy the optimiser's tolerances give
    assert opt_s.deviance == pytest.approx(opt.deviance, rel=1e-11)
    assert np.allclose(opt_s.theta, opt.theta, rtol=1e-4, atol=1e-5)
    # at the same theta every estimate agrees to rounding
    sd, ss = solve_mixed(dense, opt.theta), solve_mixed(sparse, opt.theta)
    assert ss.deviance == pytest.approx(sd.deviance, rel=1e-11)
    assert rel(ss.beta, sd.beta) < 1e-9
    assert ss.sigma == pytest.approx(sd.sigma, rel=1e-10)
    for bs, bd in zip(ss.b, sd.b, strict=True):
        assert np.allclose(bs, bd, rtol=1e-9, atol=1e-9 * np.max(np.abs(bd)))
    # the factor's own solve (no dense factor) gives the same u_rest and beta
    fs, fd = sparse.factor(opt.theta), dense.factor(opt.theta)
    w_s, w_d = fs.normal_solution(), fd.normal_solution()
    assert np.allclose(w_s, w_d, rtol=1e-9, atol=1e-9 * np.max(np.abs(w_d)))
    assert np.allclose(fs.rx_lower(d.p), fd.rx_lower(d.p), rtol=1e-10, atol=1e-12)
    assert fs.schur is not None and fd.schur is None


@pytest.mark.parametrize("name", ["penicillin", "vector_rest"])
def test_sparse_fit_through_lmer_matches_dense(name):
    formula, data = CASES[name]
    md = lmer(formula, data, control={"schur_factor": "dense"})
    ms = lmer(formula, data, control={"schur_factor": "sparse"})
    assert ms.loglik == pytest.approx(md.loglik, rel=1e-11)
    assert np.allclose(ms.fixef, md.fixef, rtol=1e-5)
    assert np.allclose(ms.varcorr["vcov"], md.varcorr["vcov"], rtol=1e-4)


def test_sparse_factor_forms_the_dense_cholesky_on_demand():
    d = design_of("scotssec")
    B = CrossProducts(d)
    th = np.array([0.5, 0.3])
    fd, fs = factorize(th, d, B), factorize(th, d, B, schur="sparse")
    S = fs.schur.S.toarray()
    assert np.allclose(fs.Ls @ fs.Ls.T, S, rtol=1e-12, atol=1e-10)
    assert np.allclose(fs.Ls, fd.Ls, rtol=1e-10, atol=1e-10)


def test_sparse_schur_against_dense_linear_algebra():
    rng = np.random.default_rng(5)
    R = sp.random(40, 40, density=0.05, random_state=7).toarray()
    R[-3:] = rng.normal(size=(3, 40))  # [X | y] rows are dense
    A = R @ R.T + np.eye(40)
    for banded in (True, False):
        plan = schur_plan(sp.csc_matrix(A[:37, :37]))
        plan["banded"] = banded
        f = SparseSchur(sp.csc_matrix(A), 37, plan)
        assert f.logdet_zz == pytest.approx(np.linalg.slogdet(A[:37, :37])[1], rel=1e-12)
        L = np.linalg.cholesky(A)
        assert np.allclose(f.Lx, L[37:, 37:], rtol=1e-10)
        w = np.linalg.solve(A[:-1, :-1], A[:-1, -1])
        assert np.allclose(f.normal_solution(), w, rtol=1e-9)
    bad = A.copy()
    bad[0, 0] = -1.0
    with pytest.raises(np.linalg.LinAlgError):
        SparseSchur(sp.csc_matrix(bad), 37)


@pytest.mark.parametrize("p1", [1, 2])
def test_dense_gram_and_sparse_cross_equal_the_pair_map(p1):
    formula = "y ~ x + (1 | rater) + (1 | item)" if p1 == 1 else "y ~ x + (x | rater) + (1 | item)"
    d = build_design(parse_formula(formula), SLOPES)
    B = CrossProducts(d)
    assert B._pairs is not None
    rng = np.random.default_rng(2)
    R = rng.normal(size=(B.l1, p1, p1))
    C = R @ np.swapaxes(R, 1, 2)  # positive semi-definite blocks, as factorize's
    M = B.cross(C)
    # an independent computation: the sparse product
    Gs = sp.block_diag(list(C)) @ B.G
    ref = B.WtW - (B.G.T @ Gs).toarray()
    assert np.allclose(np.tril(M), np.tril(ref), rtol=1e-12, atol=1e-9)
    assert np.allclose(np.tril(dense_gram(B.G.toarray(), C, B.WtW)), np.tril(ref), atol=1e-9)
    assert np.allclose(B.cross_sparse(C).toarray(), ref, rtol=1e-12, atol=1e-9)
    B._pairs = None  # the sparse product when there is no pair map
    assert np.allclose(B.cross_sparse(C).toarray(), ref, rtol=1e-12, atol=1e-9)


def test_auto_keeps_the_course_models_dense():
    for path in sorted(FIXTURES.glob("*.json")):
        fx = json.loads(path.read_text())
        md = model_design(fx["formula"], load(fx["dataset"]))
        assert deviance_function(md.design, fx["REML"]).schur == "dense", path.stem


def test_auto_picks_sparse_for_a_large_sparse_crossing():
    formula = CASES["ratings"][0]
    d = build_design(parse_formula(formula), ratings(1500, 1200, 6, seed=11))
    B = CrossProducts(d)
    assert B.qr >= 1000
    assert choose_schur(d, B) == "sparse"
    assert deviance_function(d).schur == "sparse"
    # a dense crossing of the same size stays dense: each rater sees 60 of 1,100 items
    rng = np.random.default_rng(4)
    rater = np.repeat(np.arange(1200), 60)
    item = np.concatenate([rng.choice(1100, 60, replace=False) for _ in range(1200)])
    df = pd.DataFrame(
        {"y": rng.normal(size=rater.size), "r": rater.astype(str), "i": item.astype(str)}
    )
    d2 = build_design(parse_formula("y ~ 1 + (1 | r) + (1 | i)"), df)
    assert CrossProducts(d2).qr == 1100
    assert deviance_function(d2).schur == "dense"


def test_bad_schur_factor_is_refused():
    with pytest.raises(ValueError, match="unknown schur_factor 'cholesky'.*'auto', 'dense'"):
        LmerControl(schur_factor="cholesky")
    with pytest.raises(ValueError, match="unknown schur_factor"):
        lmer("diameter ~ 1 + (1 | plate)", load("penicillin"), control={"schur_factor": 1})
    d = design_of("penicillin")
    with pytest.raises(ValueError, match="unknown schur_factor 'banded'"):
        deviance_function(d, schur_factor="banded")


def test_blas_threads_are_kept_only_when_asked() -> None:
    from mlmprimer.optimize import SingleThreadedBlas, _openblas_thread_controls

    controls = _openblas_thread_controls()
    if not controls:
        pytest.skip("no OpenBLAS thread controls in this process")
    get, set_ = controls[0]
    before = int(get())
    set_(2)
    try:
        with SingleThreadedBlas():
            assert int(get()) == 1
        assert int(get()) == 2
        with SingleThreadedBlas(enabled=False):
            assert int(get()) == 2
    finally:
        set_(before)


def test_only_large_schur_complements_keep_the_threads() -> None:
    from mlmprimer.optimize import THREADED_SCHUR_MIN

    # every course model, InstEval's 1,142 lecturer and department levels included, is below
    d = build_design(
        parse_formula("y ~ service + (1 | s) + (1 | d) + (1 | dept)"), load("insteval")
    )
    assert CrossProducts(d).m < THREADED_SCHUR_MIN
