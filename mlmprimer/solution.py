"""The estimates at a given theta: beta, the conditional modes b, sigma, vcov(beta).

Stage 4 of a fit: :func:`solve_mixed` takes the optimum theta from
:func:`mlmprimer.optimize.optimize_theta` and returns a :class:`MixedSolution`, from which
:class:`mlmprimer.model.LmerModel` is built.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.design import build_design
>>> from mlmprimer.factor import deviance_function
>>> from mlmprimer.formula import parse_formula
>>> from mlmprimer.solution import solve_mixed
>>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
>>> round(solve_mixed(deviance_function(d), [0.848]).sigma, 1)
49.5
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .design import Design
from .factor import CrossProducts, Factor, ProfiledDeviance, deviance_at

__all__ = ["MixedSolution", "solve_mixed"]


@dataclass
class MixedSolution:
    """Estimates at a given theta.

    Attributes
    ----------
    theta : numpy.ndarray
    beta : numpy.ndarray
        Fixed effects.
    u : numpy.ndarray
        Spherical random effects (all terms, concatenated; level-major within a term).
    b : list of numpy.ndarray
        Conditional modes of the random effects, one ``(levels, p_i)`` array per term.
    sigma : float
        Residual standard deviation.
    vcov : numpy.ndarray
        Covariance matrix of beta.
    deviance : float
        Profiled deviance (ML) or REML criterion.
    pwrss : float
        Penalised residual sum of squares r^2.
    REML : bool

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import build_design
    >>> from mlmprimer.factor import deviance_function
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.optimize import optimize_theta
    >>> from mlmprimer.solution import solve_mixed
    >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
    >>> devfun = deviance_function(d, REML=True)
    >>> sol = solve_mixed(devfun, optimize_theta(devfun).theta)
    >>> round(float(sol.beta[0]), 1), round(sol.sigma, 2)
    (1527.5, 49.51)
    """

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    b: list[np.ndarray]
    sigma: float
    vcov: np.ndarray
    deviance: float
    pwrss: float
    REML: bool
    products: CrossProducts = field(repr=False)
    factor: Factor = field(repr=False)
    design: Design = field(repr=False)

    def fitted(self) -> np.ndarray:
        """X beta + Z b (+ the offset) for the observations.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.design import build_design
        >>> from mlmprimer.factor import deviance_function
        >>> from mlmprimer.formula import parse_formula
        >>> from mlmprimer.solution import solve_mixed
        >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
        >>> solve_mixed(deviance_function(d), [0.848]).fitted().shape
        (30,)
        """
        d = self.design
        out = d.X @ self.beta
        if d.offset is not None:
            out += d.offset
        for t, bt in zip(d.terms, self.b, strict=True):
            # Z_t b_t row by row: the term's columns times its level's modes, one column at a
            # time (n values, never an n x p_t array), added in the order of a row sum
            zb = t.Xi[:, 0] * bt[t.codes, 0]
            for a in range(1, t.p):
                zb += t.Xi[:, a] * bt[t.codes, a]
            out += zb
        return out

    def conditional_variances(self) -> list[np.ndarray]:
        """lme4's ``condVar``: ``sigma^2 Lambda A^{-1} Lambda'`` per level, for every term.

        ``A = Lambda' Z' Z Lambda + I`` (random effects only). Returns one array of shape
        ``(levels, p_i, p_i)`` per term.

        Examples
        --------
        >>> from mlmprimer.datasets import load
        >>> from mlmprimer.design import build_design
        >>> from mlmprimer.factor import deviance_function
        >>> from mlmprimer.formula import parse_formula
        >>> from mlmprimer.solution import solve_mixed
        >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"),
        ...                  load("sleepstudy"))
        >>> cv = solve_mixed(deviance_function(d), [0.9667, 0.0152, 0.2309]).conditional_variances()
        >>> cv[0].shape
        (18, 2, 2)
        """
        return _condvar(self.factor, self.products, self.design, self.sigma)


def solve_mixed(devfun: ProfiledDeviance, theta: np.ndarray) -> MixedSolution:
    """Fixed effects, conditional modes, sigma and vcov(beta) at ``theta`` (lme4's ``mkMerMod``).

    From the factorisation at theta (see :mod:`mlmprimer.factor`), two triangular solves give
    ``beta`` and ``u``; then ``b = Lambda u``, ``sigma^2 = r^2 / (n - p)`` (REML) or ``r^2 / n``
    (ML), and ``Var(beta) = sigma^2 (R_X' R_X)^{-1}``.

    Parameters
    ----------
    devfun : ProfiledDeviance
        The design's deviance function; its ``REML`` decides sigma's denominator and the
        deviance reported.
    theta : array_like

    Returns
    -------
    MixedSolution

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import build_design
    >>> from mlmprimer.factor import deviance_function
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.solution import solve_mixed
    >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), load("sleepstudy"))
    >>> sol = solve_mixed(deviance_function(d, REML=False), np.zeros(3))  # theta = 0: OLS
    >>> np.round(sol.beta, 3).tolist()
    [251.405, 10.467]
    """
    design, REML = devfun.design, devfun.REML
    theta = np.asarray(theta, dtype=float)
    B = devfun.products
    f = devfun.factor(theta)
    n, p = design.n, design.p
    w = f.normal_solution()  # (u_rest, beta); the sparse path never forms a dense factor
    u_rest = w[: B.qr]
    beta = w[B.qr : B.qr + p]
    vec = np.concatenate([w, [-1.0]])
    vec = f.lam * vec if isinstance(f.lam, np.ndarray) else f.lam @ vec
    g = (B.G @ vec).reshape(B.l1, B.p1)
    Bj = f.Linv @ f.T1.T
    v = np.einsum("jab,jb->ja", Bj, g)
    u1 = -np.einsum("jba,jb->ja", f.Linv, v)
    u = np.concatenate([u1.ravel(), u_rest])
    bs = []
    off = 0
    for t in design.terms:
        ut = u[off : off + t.q].reshape(t.nlevels, t.p)
        bs.append(ut @ t.template(theta).T)
        off += t.q
    denom = n - p if REML else n
    sigma2 = f.r2 / denom
    if p > 0:
        Lx = f.rx_lower(p)
        Lxinv = sla.solve_triangular(Lx, np.eye(p), lower=True, check_finite=False)
        vcov = sigma2 * (Lxinv.T @ Lxinv)
    else:
        vcov = np.zeros((0, 0))
    return MixedSolution(
        theta=theta,
        beta=beta,
        u=u,
        b=bs,
        sigma=math.sqrt(sigma2),
        vcov=vcov,
        deviance=deviance_at(f, n, p, REML),
        pwrss=f.r2,
        REML=REML,
        products=B,
        factor=f,
        design=design,
    )


def _condvar(f: Factor, B: CrossProducts, design: Design, sigma: float) -> list[np.ndarray]:
    qr = B.qr
    # covariance of u (relative to sigma^2), diagonal blocks
    Ainv11 = np.swapaxes(f.Linv, 1, 2) @ f.Linv  # A_j^{-1}
    blocks_u: list[np.ndarray] = []
    if qr > 0:
        Lrr = f.Ls[:qr, :qr]
        E = Ainv11 @ f.T1.T  # A_j^{-1} T1'
        bd = sp.bsr_matrix((E, np.arange(B.l1), np.arange(B.l1 + 1)), shape=(B.l1 * B.p1,) * 2)
        Gr = B.G[:, :qr]
        lam = f.lam
        if isinstance(lam, np.ndarray):
            Nmat = (bd @ Gr) @ sp.diags(lam[:qr])
        else:
            Nmat = (bd @ Gr) @ lam[:qr, :qr]
        P = sla.solve_triangular(
            Lrr, np.asarray(sp.csr_matrix(Nmat).T.toarray()), lower=True, check_finite=False
        )
        P3 = P.reshape(qr, B.l1, B.p1)
        blocks_u.append(Ainv11 + np.einsum("ila,ilb->lab", P3, P3))
        V = sla.solve_triangular(Lrr, np.eye(qr), lower=True, check_finite=False)
        off = 0
        for t in design.terms[1:]:
            Vt = V[:, off : off + t.q].reshape(qr, t.nlevels, t.p)
            blocks_u.append(np.einsum("ila,ilb->lab", Vt, Vt))
            off += t.q
    else:
        blocks_u.append(Ainv11)
    out = []
    s2 = sigma**2
    for t, cu in zip(design.terms, blocks_u, strict=True):
        T = t.template(f.theta)
        out.append(s2 * (T @ cu @ T.T))
    return out
