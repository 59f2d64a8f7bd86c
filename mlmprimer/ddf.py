"""Small-sample degrees of freedom for tests of fixed effects: Satterthwaite and Kenward-Roger.

A t test of a fixed effect, or of a linear combination ``L beta`` of them, divides the estimate
by a standard error that is itself estimated: it depends on the estimated variance components.
The reference distribution is then not a normal but, approximately, a t (or F) distribution
whose denominator degrees of freedom reflect how well the variance components are known.

- **Satterthwaite** (as R's lmerTest computes it): with ``v = L' Var(beta) L``, a function of the
  variance parameters (lme4's ``theta`` and the residual SD ``sigma``), ``df = 2 v^2 / (g' A g)``,
  where ``g`` is the gradient of ``v`` with respect to these parameters and ``A`` their
  asymptotic covariance, twice the inverse Hessian of the deviance (REML criterion for REML
  fits). The derivatives are numerical, with Richardson extrapolation, as lmerTest's.
- **Kenward-Roger** (Kenward and Roger 1997, as R's pbkrtest computes it, for REML fits): the
  covariance of ``beta`` is first adjusted for the uncertainty of the variance parameters, which
  the plug-in covariance ignores (the adjustment usually makes standard errors larger), and the
  degrees of freedom come from matching the first two moments of the Wald statistic to those of
  a scaled F distribution. The covariance of the data is
  parameterised by the variances and covariances of each random-effects term and ``sigma^2``.

Everything is computed from the model's design (``X``, ``Z``, ``Lambda(theta)``, prior weights)
and its estimates (``theta``, ``sigma``), with cross-products of size ``p + q`` (fixed plus
random effects): no matrix of size ``n x n`` is formed. Satterthwaite's method works with sparse
factorisations and allows prior weights and ML fits; Kenward-Roger needs a REML fit without
prior weights, and holds dense matrices of size ``p + q``.

References
----------
Kenward, M. G. and Roger, J. H. (1997). Small sample inference for fixed effects from restricted
maximum likelihood. Biometrics 53, 983-997.
Kuznetsova, A., Brockhoff, P. B. and Christensen, R. H. B. (2017). lmerTest package: tests in
linear mixed effects models. Journal of Statistical Software 82(13), 1-26.
Halekoh, U. and Hojsgaard, S. (2014). A Kenward-Roger approximation and parametric bootstrap
methods for tests in linear mixed models - the R package pbkrtest. Journal of Statistical
Software 59(9), 1-30.

Examples
--------
>>> import mlmprimer
>>> from mlmprimer import datasets, ddf
>>> m = mlmprimer.lmer("Reaction ~ Days + (Days | Subject)", datasets.load("sleepstudy"))
>>> tab = ddf.satterthwaite(m)
>>> tab["term"].tolist()
['(Intercept)', 'Days']
>>> [round(x, 1) for x in tab["df"]]
[17.0, 17.0]
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.linalg as la
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import stats

if TYPE_CHECKING:
    from mlmprimer.model import LmerModel

__all__ = ["METHODS", "ddf_table", "ftest", "kenward_roger", "satterthwaite"]

#: The methods :func:`ddf_table` and :func:`ftest` know, as lmerTest spells them.
METHODS = ("Satterthwaite", "Kenward-Roger")

_COLUMNS = ["term", "estimate", "std.error", "df", "statistic", "p.value"]


# ---------------------------------------------------------------------------------------------
# The model's design as cross-products
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    """Cross-products of the (prior-weighted) design, and Lambda's linear basis.

    With prior weights w, rows of X, Z and y (offset removed) are multiplied by sqrt(w), so that
    the residuals have variance sigma^2 in the transformed problem.
    """

    XtX: np.ndarray  # p x p
    ZtX: np.ndarray  # q x p
    ZtZ: sp.csc_matrix  # q x q
    Xty: np.ndarray
    Zty: np.ndarray
    yty: float
    n: int
    basis: tuple[sp.csc_matrix, ...]  # Lambda(theta) = sum_k theta_k basis[k]
    weighted: bool

    @property
    def p(self) -> int:
        return self.XtX.shape[0]

    @property
    def q(self) -> int:
        return self.ZtZ.shape[0]

    def Lambda(self, theta: np.ndarray) -> sp.csc_matrix:
        out = sp.csc_matrix((self.q, self.q))
        for t, b in zip(theta, self.basis, strict=True):
            out = out + t * b
        return out


def _design_Z(design: Any) -> sp.csc_matrix:
    z = design.Z
    return sp.csc_matrix(z() if callable(z) else z)


def _problem(model: LmerModel) -> _Problem:
    design = model.design
    X = np.asarray(design.X, dtype=float)
    Z = _design_Z(design)
    y = np.asarray(design.y, dtype=float)
    if design.offset is not None:
        y = y - np.asarray(design.offset, dtype=float)
    weighted = design.weights is not None and not np.allclose(design.weights, 1.0)
    if design.weights is not None:
        sw = np.sqrt(np.asarray(design.weights, dtype=float))
        X, y = X * sw[:, None], y * sw
        Z = sp.csc_matrix(sp.diags(sw) @ Z)
    theta = np.asarray(model.theta, dtype=float)
    basis = tuple(sp.csc_matrix(design.Lambda(np.eye(theta.size)[k])) for k in range(theta.size))
    problem = _Problem(
        XtX=X.T @ X,
        ZtX=np.asarray(Z.T @ X),
        ZtZ=sp.csc_matrix(Z.T @ Z),
        Xty=X.T @ y,
        Zty=np.asarray(Z.T @ y).ravel(),
        yty=float(y @ y),
        n=X.shape[0],
        basis=basis,
        weighted=weighted,
    )
    gap = abs(problem.Lambda(theta) - sp.csc_matrix(design.Lambda(theta))).max()
    if gap > 1e-12 * max(1.0, float(np.abs(theta).max(initial=0.0))):
        raise NotImplementedError("Lambda(theta) is not linear in theta for this model")
    return problem


@dataclass(frozen=True)
class _Solve:
    """The penalised least squares solution at one theta (lme4's equations).

    A = Lambda'Z'Z Lambda + I is factored as a sparse matrix (it is block diagonal for one
    grouping factor, sparse for several), so that a model with many groups stays cheap.
    """

    solve_A: Callable[[np.ndarray], np.ndarray]  # x -> A^-1 x
    logdet_A: float
    XtVX: np.ndarray  # X'X - X'Z Lambda A^-1 Lambda'Z'X: sigma^2 times Var(beta)^-1
    logdet_XtVX: float
    pwrss: float  # penalised weighted residual sum of squares at beta-hat, u-hat


def _diagonal_lead(A: sp.csc_matrix) -> int:
    """How many leading rows and columns of A form a diagonal block.

    lme4 orders the terms by decreasing number of levels; when the first is a scalar term
    ``(1 | g)``, its block of A is diagonal (each observation has one level of g).
    """
    coo = A.tocoo()
    off = coo.row != coo.col
    return int(np.maximum(coo.row[off], coo.col[off]).min(initial=A.shape[0]))


def _factor(A: sp.csc_matrix) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
    """Solver and log-determinant of a sparse symmetric positive definite matrix.

    A leading diagonal block D (at least half of A) is eliminated first, leaving the dense
    Schur complement S = C - B' D^-1 B of the other columns (the blocked Cholesky factorisation
    of crossed models); otherwise A is factored as a sparse matrix.
    """
    q = A.shape[0]
    k = _diagonal_lead(A)
    if 2 * k < q:
        lu = spla.splu(
            A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )
        return lu.solve, float(np.log(np.abs(lu.U.diagonal())).sum())
    d = A.diagonal()[:k]
    B = sp.csc_matrix(A[:k, k:])
    S = A[k:, k:].toarray() - (B.T @ sp.diags(1 / d) @ B).toarray()
    chol_S = la.cho_factor(S, lower=True) if q > k else None

    def solve(r: np.ndarray) -> np.ndarray:
        r = np.asarray(r, dtype=float)
        flat = r.ndim == 1
        r = r.reshape(q, -1)
        y1 = r[:k] / d[:, None]
        if chol_S is None:
            out = y1
        else:
            x2 = la.cho_solve(chol_S, r[k:] - B.T @ y1)
            out = np.vstack([y1 - (B @ x2) / d[:, None], x2])
        return out.ravel() if flat else out

    logdet = float(np.log(d).sum())
    if chol_S is not None:
        logdet += 2.0 * float(np.log(np.diag(chol_S[0])).sum())
    return solve, logdet


def _solve(problem: _Problem, theta: np.ndarray) -> _Solve:
    lam = problem.Lambda(theta)
    A = sp.csc_matrix(lam.T @ problem.ZtZ @ lam + sp.identity(problem.q, format="csc"))
    solve_A, logdet_A = _factor(A)
    LZX = np.asarray(lam.T @ problem.ZtX)
    LZy = np.asarray(lam.T @ problem.Zty).ravel()
    AiLZX = solve_A(LZX)
    AiLZy = solve_A(LZy)
    XtVX = problem.XtX - LZX.T @ AiLZX
    XtVy = problem.Xty - LZX.T @ AiLZy
    RX = la.cholesky(XtVX, lower=True)
    beta = la.cho_solve((RX, True), XtVy)
    return _Solve(
        solve_A=solve_A,
        logdet_A=logdet_A,
        XtVX=XtVX,
        logdet_XtVX=2.0 * float(np.log(np.diag(RX)).sum()),
        pwrss=float(problem.yty - LZy @ AiLZy - XtVy @ beta),
    )


def _deviance(problem: _Problem, varpar: np.ndarray, reml: bool) -> float:
    """-2 log-likelihood (REML: restricted) at theta = varpar[:-1], sigma = varpar[-1].

    Up to a constant (the prior weights' log-determinant), as lmerTest's ``devfun_vp``.
    """
    sigma2 = varpar[-1] ** 2
    s = _solve(problem, varpar[:-1])
    dev = s.logdet_A + s.pwrss / sigma2 + problem.n * np.log(2 * np.pi * sigma2)
    if reml:
        dev += s.logdet_XtVX - problem.p * np.log(2 * np.pi * sigma2)
    return float(dev)


def _vcov_beta(problem: _Problem, varpar: np.ndarray) -> np.ndarray:
    """Covariance of the fixed effects, sigma^2 (X' V^-1 X)^-1, at the variance parameters."""
    s = _solve(problem, varpar[:-1])
    return varpar[-1] ** 2 * la.cho_solve(la.cho_factor(s.XtVX), np.eye(problem.p))


# ---------------------------------------------------------------------------------------------
# Numerical derivatives with Richardson extrapolation (the settings of R's numDeriv)
# ---------------------------------------------------------------------------------------------

_ZERO_TOL = np.sqrt(np.finfo(float).eps / 7e-7)


def _steps(x: np.ndarray, d: float, eps: float = 1e-4) -> np.ndarray:
    return np.abs(d * x) + eps * (np.abs(x) < _ZERO_TOL)


def _extrapolate(approx: list[np.ndarray]) -> np.ndarray:
    """Richardson extrapolation of central differences at steps h, h/2, h/4, ..."""
    a = list(approx)
    for m in range(1, len(a)):
        a = [(a[k + 1] * 4**m - a[k]) / (4**m - 1) for k in range(len(a) - 1)]
    return a[0]


def _jacobian(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, d: float = 1e-4, r: int = 4
) -> np.ndarray:
    """d f / d x (columns: the coordinates of x), as ``numDeriv::jacobian``."""
    h0 = _steps(x, d)
    cols = []
    for i in range(x.size):
        approx = []
        for k in range(r):
            e = np.zeros_like(x)
            e[i] = h0[i] / 2**k
            approx.append((np.ravel(f(x + e)) - np.ravel(f(x - e))) / (2 * e[i]))
        cols.append(_extrapolate(approx))
    return np.column_stack(cols)


def _hessian(
    f: Callable[[np.ndarray], float], x: np.ndarray, d: float = 0.1, r: int = 4
) -> np.ndarray:
    """The Hessian of a scalar function, as ``numDeriv::hessian`` (``genD``)."""
    k = x.size
    h0 = _steps(x, d)
    f0 = f(x)
    diag = np.empty(k)
    for i in range(k):
        approx = []
        for j in range(r):
            e = np.zeros(k)
            e[i] = h0[i] / 2**j
            approx.append((f(x + e) - 2 * f0 + f(x - e)) / e[i] ** 2)
        diag[i] = _extrapolate(approx)
    H = np.diag(diag)
    for i in range(k):
        for j in range(i):
            approx = []
            for m in range(r):
                h = h0 / 2**m
                e = np.zeros(k)
                e[i], e[j] = h[i], h[j]
                cross = f(x + e) - 2 * f0 + f(x - e) - diag[i] * h[i] ** 2 - diag[j] * h[j] ** 2
                approx.append(cross / (2 * h[i] * h[j]))
            H[i, j] = H[j, i] = _extrapolate(approx)
    return H


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _method(method: str) -> str:
    if isinstance(method, str):
        key = method.strip().lower().replace("_", "-").replace(" ", "-")
        for name in METHODS:
            if key == name.lower():
                return name
    raise ValueError(f"unknown method {method!r}: use one of {', '.join(map(repr, METHODS))}")


def _contrasts(model: LmerModel, L: Any) -> tuple[np.ndarray, list[str]]:
    """L as a (k x p) array in the order of the fixed effects, with a name per row."""
    terms = [str(t) for t in model.fixef.index]
    p = len(terms)
    if L is None:
        return np.eye(p), terms
    if isinstance(L, pd.Series):  # one contrast, by name
        L = pd.DataFrame([L.to_numpy()], columns=L.index, index=[L.name or "L1"])
    if isinstance(L, pd.DataFrame):
        cols = [str(c) for c in L.columns]
        unknown = [c for c in cols if c not in terms]
        if unknown:
            raise ValueError(
                f"columns of L {unknown} are not fixed effects of the model ({', '.join(terms)})"
            )
        names = [str(i) for i in L.index]
        L = L.reindex(columns=terms, fill_value=0.0).to_numpy(dtype=float)
    else:
        L = np.atleast_2d(np.asarray(L, dtype=float))
        names = [f"L{i + 1}" for i in range(L.shape[0])]
    if L.ndim != 2 or L.shape[1] != p:
        raise ValueError(
            f"L has {L.shape[-1]} columns but the model has {p} fixed effects "
            f"({', '.join(terms)}): give one column per fixed effect"
        )
    if not np.all(np.isfinite(L)):
        raise ValueError("L has missing or infinite entries")
    if np.any(np.all(L == 0, axis=1)):
        raise ValueError("a row of L is all zero: it tests nothing")
    return L, names


def _require_reml(model: LmerModel) -> None:
    if not model.REML:
        raise ValueError(
            "Kenward-Roger needs a REML fit (pbkrtest and lmerTest refuse ML fits): refit with "
            "REML=True, or use method='Satterthwaite'"
        )


# ---------------------------------------------------------------------------------------------
# Satterthwaite
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Satterthwaite:
    vcov: np.ndarray  # p x p
    jacobian: list[np.ndarray]  # d vcov / d varpar_k
    varpar_cov: np.ndarray  # asymptotic covariance of (theta, sigma)

    def df(self, row: np.ndarray) -> float:
        v = float(row @ self.vcov @ row)
        g = np.array([row @ J @ row for J in self.jacobian])
        return 2 * v**2 / float(g @ self.varpar_cov @ g)


def _satterthwaite_parts(model: LmerModel) -> _Satterthwaite:
    problem = _problem(model)
    varpar = np.append(np.asarray(model.theta, dtype=float), float(model.sigma))
    reml = bool(model.REML)
    H = _hessian(lambda v: _deviance(problem, v, reml), varpar)
    if np.linalg.eigvalsh(H).min() <= 0:
        warnings.warn(
            "the Hessian of the deviance in (theta, sigma) is not positive definite (a "
            "variance near 0?): Satterthwaite's degrees of freedom may be unreliable",
            RuntimeWarning,
            stacklevel=3,
        )
    jac = _jacobian(lambda v: _vcov_beta(problem, v), varpar)
    p = problem.p
    return _Satterthwaite(
        vcov=_vcov_beta(problem, varpar),
        jacobian=[jac[:, k].reshape(p, p) for k in range(varpar.size)],
        varpar_cov=2 * np.linalg.inv(H),
    )


# ---------------------------------------------------------------------------------------------
# Kenward-Roger
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _KenwardRoger:
    vcov: np.ndarray  # Phi, the unadjusted covariance of beta
    vcov_adj: np.ndarray  # Phi_A
    P: list[np.ndarray]  # -X' Sigma^-1 G_i Sigma^-1 X, with the sign pbkrtest gives it
    W: np.ndarray  # twice the inverse expected information of the covariance parameters

    def moments(self, L: np.ndarray) -> tuple[float, float, int]:
        """A1, A2 of Kenward and Roger (1997) for the hypothesis L beta = 0, and its rank q."""
        Phi = self.vcov
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        u = [Theta @ Phi @ P @ Phi for P in self.P]
        tr = np.array([np.trace(x) for x in u])
        prod = np.array([[np.sum(a * b.T) for b in u] for a in u])
        A1 = float(tr @ self.W @ tr)
        A2 = float(np.sum(self.W * prod))
        return A1, A2, L.shape[0]

    def ddf_and_scaling(self, L: np.ndarray) -> tuple[float, float]:
        A1, A2, q = self.moments(L)
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        denom = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
        V0 = 1 + c1 * B
        V1 = 1 - c2 * B
        V2 = 1 - c3 * B
        V0 = 0.0 if abs(V0) < 1e-10 else V0
        ratio = (1 - A2 / q) / V1 if V1 != 0 else 0.0
        rho = ratio**2 * V0 / (q * V2)
        df = 4 + (q + 2) / (q * rho - 1)
        scaling = 1.0 if abs(df - 2) < 0.01 else df * (1 - A2 / q) / (df - 2)
        return float(df), float(scaling)


# Kenward-Roger needs about ten dense (p + q) x (p + q) matrices: at 2500, some 500 MB.
_KR_MAX_SIZE = 2500


def _covariance_directions(problem: _Problem) -> list[sp.csc_matrix]:
    """D_k with Var(b) = sum_k gamma_k D_k: one per variance or covariance of each term.

    The entries of a term's covariance sit where its theta entries sit in Lambda (the lower
    triangle of the template), so D_k is the symmetric pattern of Lambda's k-th basis matrix.
    """
    out = []
    for b in problem.basis:
        pattern = (abs(b) + abs(b.T)) != 0
        out.append(sp.csc_matrix(pattern, dtype=float))
    return out


def _kenward_roger_parts(model: LmerModel) -> _KenwardRoger:
    _require_reml(model)
    problem = _problem(model)
    if problem.weighted:
        raise NotImplementedError(
            "Kenward-Roger with prior weights is not implemented (pbkrtest ignores prior "
            "weights); use method='Satterthwaite'"
        )
    p, q, n = problem.p, problem.q, problem.n
    if p + q > _KR_MAX_SIZE:
        raise NotImplementedError(
            f"Kenward-Roger works here with dense matrices of size p + q = {p + q} (fixed plus "
            f"random effects), more than {_KR_MAX_SIZE}; use method='Satterthwaite', which "
            "stays sparse"
        )
    theta = np.asarray(model.theta, dtype=float)
    s2 = float(model.sigma) ** 2
    lam = problem.Lambda(theta)
    s = _solve(problem, theta)
    # B = [X Z]; Sigma = s2 (Z Lambda Lambda'Z' + I); B'Sigma^-k B from (p+q)-sized pieces:
    # (I + Z Lambda Lambda'Z')^-k = I - Z Lambda (A^-1 + ... + A^-k) Lambda'Z'.
    ZtZ = problem.ZtZ.toarray()
    G0 = np.block([[problem.XtX, problem.ZtX.T], [problem.ZtX, ZtZ]])
    F = lam.T @ np.hstack([problem.ZtX, ZtZ])
    Y, acc, S = F, np.zeros_like(F), []
    for k in (1, 2, 3):
        Y = s.solve_A(Y)
        acc = acc + Y
        S.append((G0 - F.T @ acc) / s2**k)
    x, z = slice(0, p), slice(p, p + q)
    K1, N1, M1 = S[0][x, x], S[0][z, x], S[0][z, z]
    K2, N2, M2 = S[1][x, x], S[1][z, x], S[1][z, z]
    K3 = S[2][x, x]
    Ainv = s.solve_A(np.eye(q))
    trace_S2 = (n - q + np.sum(Ainv * Ainv)) / s2**2

    D = _covariance_directions(problem)
    DN = [d @ N1 for d in D]
    DM = [np.asarray(d @ M1) for d in D]
    m = len(D) + 1  # the residual variance last
    P = [-(N1.T @ dn) for dn in DN] + [-K2]
    Q = [[np.empty(0)] * m for _ in range(m)]
    K = np.empty((m, m))
    for i in range(m - 1):
        for j in range(m - 1):
            Q[i][j] = DN[i].T @ M1 @ DN[j]
            K[i, j] = np.sum(DM[i] * DM[j].T)
        Q[i][m - 1] = DN[i].T @ N2
        Q[m - 1][i] = Q[i][m - 1].T
        K[i, m - 1] = K[m - 1, i] = float(np.sum(D[i].multiply(M2)))
    Q[m - 1][m - 1] = K3
    K[m - 1, m - 1] = trace_S2

    Phi = la.cho_solve(la.cho_factor(K1), np.eye(p))
    IE2 = np.array(
        [
            [
                K[i, j] - 2 * np.sum(Phi * Q[i][j]) + np.sum((Phi @ P[i]) * (P[j] @ Phi))
                for j in range(m)
            ]
            for i in range(m)
        ]
    )
    IE2 = (IE2 + IE2.T) / 2
    if np.abs(np.linalg.eigvalsh(IE2)).min() > 1e-10:
        W = 2 * np.linalg.inv(IE2)
    else:
        W = 2 * np.linalg.pinv(IE2)
    U = sum(W[i, j] * (Q[i][j] - P[i] @ Phi @ P[j]) for i in range(m) for j in range(m))
    return _KenwardRoger(vcov=Phi, vcov_adj=Phi + 2 * Phi @ U @ Phi, P=P, W=W)


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------


def _t_table(
    model: LmerModel,
    L: Any,
    vcov: np.ndarray,
    df_of: Callable[[np.ndarray], float],
) -> pd.DataFrame:
    """The t tests of the rows of L, with covariance ``vcov`` and df ``df_of(row)``."""
    Lm, names = _contrasts(model, L)
    est = Lm @ model.fixef.to_numpy(dtype=float)
    se = np.sqrt(np.einsum("ij,jk,ik->i", Lm, vcov, Lm))
    df = np.array([df_of(row) for row in Lm])
    t = est / se
    return pd.DataFrame(
        {
            "term": names,
            "estimate": est,
            "std.error": se,
            "df": df,
            "statistic": t,
            "p.value": 2 * stats.t.sf(np.abs(t), df),
        },
        columns=_COLUMNS,
    )


def satterthwaite(model: LmerModel, L: Any = None) -> pd.DataFrame:
    """t tests of fixed effects with Satterthwaite's degrees of freedom (as lmerTest).

    Parameters
    ----------
    model : LmerModel
        A fit of :func:`mlmprimer.lmer` (REML or ML; prior weights are allowed).
    L : array-like or pandas.DataFrame, optional
        Contrasts to test, one per row (``L @ beta = 0``), one column per fixed effect; a
        DataFrame's columns are matched to the fixed effects by name (missing ones are 0) and
        its index names the rows. By default each fixed effect is tested.

    Returns
    -------
    pandas.DataFrame
        One row per fixed effect or contrast, columns ``term, estimate, std.error, df,
        statistic, p.value`` (broom.mixed's names); ``statistic`` is the t statistic and
        ``p.value`` two-sided.

    Raises
    ------
    ValueError
        If `L` has the wrong number of columns, unknown column names, or a row of zeros.

    Examples
    --------
    >>> import mlmprimer
    >>> from mlmprimer import datasets
    >>> from mlmprimer.ddf import satterthwaite
    >>> m = mlmprimer.lmer("Reaction ~ Days + (1 | Subject)", datasets.load("sleepstudy"))
    >>> tab = satterthwaite(m).set_index("term")
    >>> round(float(tab.loc["(Intercept)", "df"]), 2), round(float(tab.loc["Days", "df"]))
    (22.81, 161)
    """
    _contrasts(model, L)  # bad input is reported before any work
    parts = _satterthwaite_parts(model)
    return _t_table(model, L, parts.vcov, parts.df)


def kenward_roger(model: LmerModel, L: Any = None) -> pd.DataFrame:
    """t tests of fixed effects with the Kenward-Roger adjustment (as pbkrtest and lmerTest).

    The standard errors come from the adjusted covariance of the fixed effects (pbkrtest's
    ``vcovAdj``), the degrees of freedom from Kenward and Roger's approximation (pbkrtest's
    ``Lb_ddf``), as ``summary(m, ddf = "Kenward-Roger")`` of lmerTest reports them.

    Parameters
    ----------
    model : LmerModel
        A REML fit of :func:`mlmprimer.lmer` without prior weights.
    L : array-like or pandas.DataFrame, optional
        Contrasts, one per row, as in :func:`satterthwaite`.

    Returns
    -------
    pandas.DataFrame
        Columns ``term, estimate, std.error, df, statistic, p.value``.

    Raises
    ------
    ValueError
        For an ML fit (the method is defined for REML), or an `L` of the wrong shape.
    NotImplementedError
        For a fit with prior weights, or with more than 2500 fixed plus random effects
        (``p + q``; the computation holds dense matrices of that size).

    Examples
    --------
    >>> import mlmprimer
    >>> from mlmprimer import datasets
    >>> from mlmprimer.ddf import kenward_roger
    >>> m = mlmprimer.lmer("strength ~ 1 + (1 | batch/cask)", datasets.load("pastes"))
    >>> tab = kenward_roger(m)
    >>> round(float(tab["df"].iloc[0]), 3)
    9.0
    """
    _contrasts(model, L)  # bad input is reported before any work
    parts = _kenward_roger_parts(model)
    return _t_table(model, L, parts.vcov_adj, lambda row: parts.ddf_and_scaling(row[None, :])[0])


def _check_full_rank(L: np.ndarray) -> None:
    if np.linalg.matrix_rank(L) < L.shape[0]:
        raise ValueError(
            f"the {L.shape[0]} rows of L are linearly dependent: drop the redundant rows"
        )


def ftest(model: LmerModel, L: Any, method: str = "Satterthwaite") -> pd.DataFrame:
    """F test of ``L beta = 0`` with small-sample denominator degrees of freedom.

    As lmerTest's ``contest(m, L, joint = TRUE, ddf = method)``, and ``anova(m, ddf = method)``
    for the rows of L that make up a model term. Satterthwaite's F is the Wald statistic over
    the number of rows, its denominator df combine the df of the rows' eigen-contrasts;
    Kenward-Roger's F uses the adjusted covariance and is scaled as in pbkrtest's
    ``KRmodcomp``.

    Parameters
    ----------
    model : LmerModel
        A fit of :func:`mlmprimer.lmer` (REML for Kenward-Roger).
    L : array-like or pandas.DataFrame
        The hypothesis, one row per linear combination, one column per fixed effect (a
        DataFrame's columns are matched by name); the rows must be linearly independent.
    method : {"Satterthwaite", "Kenward-Roger"}
        How the denominator degrees of freedom are found.

    Returns
    -------
    pandas.DataFrame
        One row with columns ``statistic`` (F), ``NumDF``, ``DenDF`` and ``p.value``.

    Raises
    ------
    ValueError
        For an unknown method, an `L` of the wrong shape or with dependent rows, or an ML fit
        with Kenward-Roger.

    Examples
    --------
    >>> import mlmprimer
    >>> from mlmprimer import datasets
    >>> from mlmprimer.ddf import ftest
    >>> m = mlmprimer.lmer(
    ...     "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", datasets.load("machines")
    ... )
    >>> res = ftest(m, [[0, 1, 0], [0, 0, 1]], method="Kenward-Roger")
    >>> int(res["NumDF"].iloc[0]), round(float(res["DenDF"].iloc[0]), 3)
    (2, 10.0)
    """
    name = _method(method)
    Lm, _ = _contrasts(model, L)
    _check_full_rank(Lm)
    beta = model.fixef.to_numpy(dtype=float)
    q = Lm.shape[0]
    if name == "Kenward-Roger":
        kr = _kenward_roger_parts(model)
        est = Lm @ beta
        F_unscaled = float(est @ np.linalg.solve(Lm @ kr.vcov_adj @ Lm.T, est)) / q
        dendf, scaling = kr.ddf_and_scaling(Lm)
        F = scaling * F_unscaled
    else:
        sat = _satterthwaite_parts(model)
        d, P = np.linalg.eigh(Lm @ sat.vcov @ Lm.T)
        PtL = P.T @ Lm
        F = float(np.sum((PtL @ beta) ** 2 / d)) / q
        nu = np.array([sat.df(row) for row in PtL])
        dendf = _combined_df(nu)
    return pd.DataFrame(
        {"statistic": [F], "NumDF": [q], "DenDF": [dendf], "p.value": [stats.f.sf(F, q, dendf)]}
    )


def _combined_df(nu: np.ndarray) -> float:
    """Denominator df of an F from the df of its independent t statistics (lmerTest)."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < 1e-8):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - nu.size)


def ddf_table(model: LmerModel, method: str = "Satterthwaite") -> pd.DataFrame:
    """Standard errors, df, t statistics and p-values of the fixed effects, indexed by term.

    Parameters
    ----------
    model : LmerModel
        A fit of :func:`mlmprimer.lmer`.
    method : {"Satterthwaite", "Kenward-Roger"}
        The small-sample method (Kenward-Roger also adjusts the standard errors).

    Returns
    -------
    pandas.DataFrame
        Index: the fixed effects' names; columns ``std.error, df, statistic, p.value``.

    Examples
    --------
    >>> import mlmprimer
    >>> from mlmprimer import datasets
    >>> from mlmprimer.ddf import ddf_table
    >>> m = mlmprimer.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", datasets.load("penicillin"))
    >>> ddf_table(m, "Kenward-Roger").columns.tolist()
    ['std.error', 'df', 'statistic', 'p.value']
    """
    name = _method(method)
    tab = satterthwaite(model) if name == "Satterthwaite" else kenward_roger(model)
    return tab.set_index("term")[["std.error", "df", "statistic", "p.value"]]
