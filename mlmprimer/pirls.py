"""PIRLS and the Laplace / adaptive Gauss-Hermite deviance of a generalized linear mixed model.

Stage 2 of a ``glmer`` fit. The model is ``y_i | u ~ family(mu_i)``,
``g(mu_i) = eta_i = x_i' beta + z_i' Lambda_theta u + offset_i``, ``u ~ N(0, I_q)``.

**PIRLS** (penalised iteratively reweighted least squares) finds the conditional mode of ``u``
(and, for ``nAGQ = 0``, of beta with it) at given parameters. From the current ``eta``:

* working weights ``W_i = w_i mu_eta(eta_i)^2 / V(mu_i)``;
* working response ``z_i = eta_i - offset_i + (y_i - mu_i) / mu_eta(eta_i)`` (minus
  ``x_i' beta`` when beta is fixed);
* the penalised weighted least squares problem ``min ||W^{1/2}(z - X beta - Z Lambda u)||^2 +
  ||u||^2``, solved by the blocked Cholesky factorisation of :mod:`mlmprimer.factor` with the
  rows scaled by ``W^{1/2}``; the columns that do not change (``Z``, ``X``, the sums per
  level) are laid out once per fit, the templates once per theta, so that an iteration costs
  a few array operations (:class:`WeightedProducts` builds the same products for
  :func:`mlmprimer.solution.solve_mixed`, the conditional variances);
* step halving towards that solution until the penalised deviance
  ``sum(d_i) + ||u||^2`` (``d_i`` the deviance residuals) decreases; stop when its relative
  change is below ``pirls_tol``.

**Laplace deviance** (``nAGQ = 1``) at the mode: ``aic(y, mu) + ||u||^2 + log|L|^2``, with
``aic`` = ``-2 sum log f(y_i | mu_i)`` (R's ``family$aic``) and ``L`` the Cholesky factor of
``Lambda' Z' W Z Lambda + I``.

**Adaptive Gauss-Hermite quadrature** (``nAGQ = K > 1``, one scalar random-effects term):
with the mode ``u_j`` and ``s_j = 1 / L_jj`` of group j, ``devc_j(u) = sum_{i in j} d_i(u) +
u^2``, and the K-point rule ``(z_k, w_k)`` for the standard normal (:func:`gh_rule`),
``mult_j = sum_k w_k exp(-(devc_j(u_j + z_k s_j) - devc_j(u_j)) / 2 + z_k^2 / 2)`` and the
deviance is ``aic - sum(d_i) + sum_j devc_j(u_j) + log|L|^2 - 2 sum_j log(mult_j)``.

Examples
--------
>>> import numpy as np
>>> from mlmprimer.glmer import glmer_design
>>> from mlmprimer.datasets import load
>>> from mlmprimer.pirls import GlmmDeviance
>>> md = glmer_design("cbind(incidence, size - incidence) ~ period + (1 | herd)",
...                   load("cbpp"), "binomial")
>>> dev = GlmmDeviance(md.design, md.family, md.trials)
>>> round(dev.stage1(np.array([0.64])), 2)
184.11
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dtrtrs as _trtrs

from .design import Design
from .factor import CrossProducts, Factor, factorize
from .family import Family, FamilyResponse
from .pwls import LevelSums, PwlsKernel, ScalarTermsKernel, term_column
from .solution import MixedSolution, solve_mixed

__all__ = [
    "GlmmDeviance",
    "PirlsError",
    "PirlsState",
    "PwlsStep",
    "WeightedProducts",
    "gh_rule",
    "hessian",
]


class PirlsError(ArithmeticError):
    """PIRLS did not converge (or produced no finite penalised deviance).

    Examples
    --------
    >>> from mlmprimer.pirls import PirlsError
    >>> issubclass(PirlsError, ArithmeticError)
    True
    """


@functools.cache
def gh_rule(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the K-point Gauss-Hermite rule for the standard normal (lme4's GHrule).

    ``sum_k w_k f(z_k)`` approximates ``E f(Z)``, ``Z ~ N(0, 1)``, exactly for polynomials of
    degree up to ``2K - 1``.

    Examples
    --------
    >>> from mlmprimer.pirls import gh_rule
    >>> z, w = gh_rule(3)
    >>> z.round(4).tolist(), round(float(w.sum()), 10), round(float((w * z**2).sum()), 10)
    ([-1.7321, 0.0, 1.7321], 1.0, 1.0)
    """
    if k < 1:
        raise ValueError("the Gauss-Hermite rule needs at least 1 node")
    z, w = np.polynomial.hermite_e.hermegauss(k)
    return z, w / math.sqrt(2.0 * math.pi)


class WeightedProducts(CrossProducts):
    """The cross-products of :class:`mlmprimer.factor.CrossProducts` with working weights.

    ``M = W^{1/2} [Z_rest | X | z]`` (X left out when beta is fixed) and the first term's
    ``W^{1/2} Z_1``: ``D_j`` (per level of the first factor), ``G = Z_1' W M`` (dense) and
    ``M'M``, recomputed at every PIRLS iteration; :func:`mlmprimer.factor.factorize` then
    factors ``Lambda' Z' W Z Lambda + I`` exactly as for a linear mixed model.
    """

    def __init__(self, problem: GlmmDeviance, sw: np.ndarray, z: np.ndarray, with_beta: bool):
        t1 = problem.design.terms[0]
        p1, l1 = t1.p, t1.nlevels
        self.p1, self.l1 = p1, l1
        self.ldw = 0.0
        X1 = t1.Xi * sw[:, None]
        D = np.empty((l1, p1, p1))
        for a in range(p1):
            for c in range(a + 1):
                D[:, a, c] = D[:, c, a] = np.bincount(
                    t1.codes, weights=X1[:, a] * X1[:, c], minlength=l1
                )
        self.D = D
        parts = [problem.Zrest] + ([problem.design.X] if with_beta else []) + [z[:, None]]
        W = np.hstack(parts) * sw[:, None]
        self.qr = problem.Zrest.shape[1]
        self.p = problem.design.p if with_beta else 0
        self.m = W.shape[1]
        order, starts = problem.level_order, problem.level_starts
        Ws = W[order]
        X1s = X1[order]
        G = np.stack([np.add.reduceat(X1s[:, [a]] * Ws, starts, axis=0) for a in range(p1)], 1)
        self.G = G.reshape(l1 * p1, self.m)
        self.WtW = W.T @ W
        self.problem = problem

    def cross(self, C: np.ndarray) -> np.ndarray:
        """``M'M - G' blockdiag(C) G``."""
        if self.p1 == 1:
            return self.WtW - self.G.T @ (C[:, 0, 0][:, None] * self.G)
        Gr = self.G.reshape(self.l1, self.p1, self.m)
        return self.WtW - self.G.T @ (C @ Gr).reshape(-1, self.m)

    @property
    def rest_scalar(self) -> bool:  # type: ignore[override]
        return self.problem.rest_scalar

    def lambda_w(self, theta: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """``blockdiag(Lambda_rest, I)`` (a vector when every other term is scalar)."""
        tail = self.m - self.qr
        rest = self.problem.design.terms[1:]
        theta = np.asarray(theta, dtype=float)
        if self.problem.rest_scalar:
            vals = [np.repeat(theta[t.theta_slice], t.nlevels) for t in rest]
            return np.concatenate([*vals, np.ones(tail)])
        blocks = [sp.kron(sp.identity(t.nlevels), sp.csr_matrix(t.template(theta))) for t in rest]
        return sp.block_diag([*blocks, sp.identity(tail)], format="csr")


_MINUS_ONE = np.array([-1.0])


@dataclass
class PirlsState:
    """A point of PIRLS: the modes, the linear predictor, mu and the penalised deviance.

    Attributes
    ----------
    theta, beta, u : numpy.ndarray
    eta, mu : numpy.ndarray
    devres : numpy.ndarray
        The deviance residuals ``d_i``.
    pdev : float
        ``sum(d_i) + ||u||^2``.
    factor : Factor or None
        The factorisation at the working weights of the last iteration.
    """

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    devres: np.ndarray
    pdev: float
    factor: Factor | None = None


@dataclass
class PwlsStep:
    """The solution of one PIRLS iteration: the new modes and the factor it used."""

    u: np.ndarray
    beta: np.ndarray
    factor: Factor


class _WeightedLS:
    """The penalised weighted least squares problem of one PIRLS iteration (for solve_mixed)."""

    REML = False

    def __init__(self, design: Design, products: WeightedProducts) -> None:
        self.design = design
        self.products = products

    def factor(self, theta: np.ndarray) -> Factor:
        return factorize(theta, self.design, self.products)


class GlmmDeviance:
    """The deviance of a GLMM design: PIRLS, the Laplace and the adaptive Gauss-Hermite forms.

    :meth:`stage1` is the deviance of theta with beta found by PIRLS (``nAGQ = 0``, lme4's
    first stage); :meth:`stage2` the Laplace (``nAGQ = 1``) or AGQ deviance of
    ``(theta, beta)``. Each evaluation starts PIRLS from the modes of the previous one.

    Parameters
    ----------
    design : Design
        Its ``y`` holds proportions (binomial) or counts, ``weights`` the prior weights.
    family : Family
    trials : numpy.ndarray
        Binomial ``m_i`` of R's ``family$aic`` (ones for a Poisson model).
    nAGQ : int, default 1
    pirls_tol : float, optional
        ``rule="lme4"``: the relative change of the penalised deviance at which PIRLS stops
        (lme4's ``tolPwrss``, default 1e-7); ``rule="exact"``: the largest step of the modes,
        relative to ``1 + max|u|`` (default 1e-8).
    pirls_maxit, halving_maxit : int
    rule : {"lme4", "exact"}
        ``"lme4"`` (default) follows lme4's deviance functions: each evaluation starts from
        the same linear predictor and stops on lme4's criterion, so the deviance (and its
        numerical Hessian, the standard errors) are lme4's, which differ from the exact
        Laplace values by PIRLS's tolerance (about 1e-3 in the deviance, 1% in the standard
        errors). ``"exact"`` iterates to the mode to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import glmer_design
    >>> from mlmprimer.pirls import GlmmDeviance
    >>> md = glmer_design("cbind(incidence, size - incidence) ~ period + (1 | herd)",
    ...                   load("cbpp"), "binomial")
    >>> dev = GlmmDeviance(md.design, md.family, md.trials)
    >>> pars = np.array([0.642, -1.3983, -0.9919, -1.1282, -1.5797])
    >>> round(dev.stage2(pars), 2)
    184.05
    """

    def __init__(
        self,
        design: Design,
        family: Family,
        trials: np.ndarray,
        nAGQ: int = 1,
        *,
        pirls_tol: float | None = None,
        pirls_maxit: int = 100,
        halving_maxit: int = 30,
        rule: str = "lme4",
    ) -> None:
        self.design = design
        self.family = family
        self.y = design.y
        n = design.n
        self.wt = np.ones(n) if design.weights is None else design.weights
        self.trials = np.asarray(trials, dtype=float)
        self.offset = np.zeros(n) if design.offset is None else design.offset
        self.resp = FamilyResponse(family, self.y, self.trials, self.wt)
        self.nAGQ = int(nAGQ)
        if rule not in ("lme4", "exact"):
            raise ValueError(f"rule must be 'lme4' or 'exact', not {rule!r}")
        self.rule = rule
        self.tol = (1e-7 if rule == "lme4" else 1e-8) if pirls_tol is None else pirls_tol
        self.eta0: np.ndarray | None = None
        self.maxit = pirls_maxit
        self.halving_maxit = halving_maxit
        t1 = design.terms[0]
        # rows sorted by the first term's levels, for sums per level (every level has rows)
        self.level_order = np.argsort(t1.codes, kind="stable")
        counts = np.bincount(t1.codes, minlength=t1.nlevels)
        self.level_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rest = design.terms[1:]
        self.Zrest = (
            sp.hstack([t.z_block() for t in rest], format="csc").toarray()
            if rest
            else np.zeros((n, 0))
        )
        self.rest_scalar = all(t.p == 1 for t in rest)
        self.design_u = dataclasses.replace(design, X=np.zeros((n, 0)), xnames=[])
        self.q = design.q
        self._last: PirlsState | None = None
        self.level_sums = LevelSums(t1.codes, t1.nlevels)
        # the Gauss-Hermite nodes as columns, weights and z^2 / 2 (nAGQ > 1)
        zk, wk = gh_rule(max(self.nAGQ, 1))
        self._gh = (zk[:, None], wk[:, None], (zk**2 / 2.0)[:, None])
        scalar = t1.p == 1 and self.rest_scalar and len(design.terms) > 1
        self._kernels: dict[bool, PwlsKernel | ScalarTermsKernel] = {
            b: ScalarTermsKernel(design, b, self.level_sums)
            if scalar
            else PwlsKernel(design, self.Zrest, b, self.level_sums)
            for b in (True, False)
        }
        self._start0: tuple[np.ndarray, np.ndarray, np.ndarray] = (np.zeros(0),) * 3
        self._work0: tuple[np.ndarray, np.ndarray] = (np.zeros(0),) * 2
        self._theta_key: bytes | None = None
        self._beta_key: bytes | None = None
        self._beta_val: tuple[np.ndarray, np.ndarray] = (np.zeros(0),) * 2
        self._theta_val: tuple[list[np.ndarray], dict[bool, np.ndarray]] = ([], {})

    # ---- the pieces -------------------------------------------------------------------------

    def re_part(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``Z Lambda_theta u`` for the observations."""
        templates = self._theta_parts(np.asarray(theta, dtype=float))[0]
        out = None
        off = 0
        for t, T in zip(self.design.terms, templates, strict=True):
            ut = u[off : off + t.q]
            if t.p == 1:
                part = t.Xi[:, 0] * (ut * T[0, 0])[t.codes]
            else:
                bt = ut.reshape(t.nlevels, t.p) @ T.T
                part = np.einsum("ia,ia->i", t.Xi, bt[t.codes])
            out = part if out is None else out + part
            off += t.q
        return out

    def state(self, theta: np.ndarray, beta: np.ndarray, u: np.ndarray) -> PirlsState:
        """The linear predictor, mu and penalised deviance at ``(theta, beta, u)``."""
        eta = self._fixed_part(beta)[1] + self.re_part(theta, u)
        return self._state_at(theta, beta, u, eta)

    def _fixed_part(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``X beta`` and ``X beta + offset`` (cached: beta is fixed within PIRLS in stage 2)."""
        key = beta.tobytes()
        if self._beta_key != key:
            xb = self.design.X @ beta
            self._beta_key, self._beta_val = key, (xb, xb + self.offset)
        return self._beta_val

    def _state_at(
        self, theta: np.ndarray, beta: np.ndarray, u: np.ndarray, eta: np.ndarray
    ) -> PirlsState:
        mu = self.resp.linkinv(eta)
        devres = self.resp.dev_resids(mu)
        pdev = float(devres.sum() + u @ u)
        return PirlsState(
            theta, beta, u, eta, mu, devres, pdev if math.isfinite(pdev) else math.inf
        )

    def start_state(self, theta: np.ndarray) -> PirlsState:
        """R's starting point: ``mu`` from ``family.mustart``, u = 0 (penalised deviance inf)."""
        mu = self.family.mustart(self.y, self.wt)
        eta = self.family.linkfun(mu)
        st = self._state_at(theta, np.zeros(self.design.p), np.zeros(self.q), eta)
        st.pdev = math.inf
        return st

    def products(self, st: PirlsState, with_beta: bool) -> WeightedProducts:
        """The weighted cross-products of one PIRLS iteration at ``st``."""
        fam = self.family
        mu_eta = fam.mu_eta(st.eta)
        wts = self.wt * mu_eta**2 / fam.variance(st.mu)
        z = st.eta - self.offset + (self.y - st.mu) / mu_eta
        if not with_beta:
            z = z - self._fixed_part(st.beta)[0]
        return WeightedProducts(self, np.sqrt(wts), z, with_beta)

    def solution(self, st: PirlsState, with_beta: bool) -> MixedSolution:
        """The penalised weighted least squares solution at ``st`` as a ``MixedSolution``
        (its ``conditional_variances`` with ``sigma = 1`` are lme4's ``condVar``)."""
        design = self.design if with_beta else self.design_u
        ls = _WeightedLS(design, self.products(st, with_beta))
        return solve_mixed(ls, st.theta)  # type: ignore[arg-type]

    def _theta_parts(self, theta: np.ndarray) -> tuple[list[np.ndarray], dict[bool, np.ndarray]]:
        """The templates of every term and ``blockdiag(Lambda_rest, I)`` at theta (cached)."""
        key = theta.tobytes()
        if self._theta_key != key:
            terms = self.design.terms
            templates = [t.template(theta) for t in terms]
            rest = terms[1:]
            if self.rest_scalar:
                lam_rest = np.concatenate(
                    [np.repeat(theta[t.theta_slice], t.nlevels) for t in rest] + [np.zeros(0)]
                )
            else:
                lam_rest = (
                    sp.block_diag(
                        [
                            sp.kron(sp.identity(t.nlevels), sp.csr_matrix(T))
                            for t, T in zip(rest, templates[1:], strict=True)
                        ]
                    ).toarray()
                    if rest
                    else np.zeros((0, 0))
                )
            lams = {}
            for with_beta, kern in self._kernels.items():
                tail = kern.m - kern.qr
                if self.rest_scalar:
                    lams[with_beta] = np.concatenate([lam_rest, np.ones(tail)])
                else:
                    lam = np.eye(kern.m)
                    lam[: kern.qr, : kern.qr] = lam_rest
                    lams[with_beta] = lam
            self._theta_key, self._theta_val = key, (templates, lams)
        return self._theta_val

    def _working(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The working weights and response (before ``X beta`` is taken off) at ``eta``."""
        mu_eta = self.resp.mu_eta(eta)
        wts = self.wt * mu_eta**2 / self.resp.variance(mu)
        return wts, eta - self.offset + (self.y - mu) / mu_eta

    def solve(
        self, st: PirlsState, with_beta: bool
    ) -> tuple[PwlsStep, PwlsKernel | ScalarTermsKernel]:
        """One penalised weighted least squares step from ``st``: the full (u, beta) solution.

        From the blocked factor (see :class:`PwlsKernel`): ``(u_rest, beta)`` by one
        triangular solve with the Schur complement's factor, then the first term's ``u_j``
        level by level.
        """
        if st.eta is self._start0[0]:
            wts, z = self._work0
        else:
            wts, z = self._working(st.eta, st.mu)
        if not with_beta:
            z = z - self._fixed_part(st.beta)[0]
        kern = self._kernels[with_beta]
        templates, lams = self._theta_parts(st.theta)
        lam = lams[with_beta]
        f, hv = kern.factor(st.theta, templates[0], lam, wts, z)
        Ls = f.Ls
        if Ls.shape[0] > 1:
            w, info = _trtrs(Ls[:-1, :-1], Ls[-1, :-1], lower=1, trans=1)
            if info != 0:
                raise np.linalg.LinAlgError("singular penalised least squares system")
        else:
            w = np.zeros(0)
        vec = np.concatenate((w, _MINUS_ONE))
        if kern.qr:
            vec = lam * vec if lam.ndim == 1 else lam @ vec
        v = hv(vec)
        if kern.p1 == 1:
            u1 = -f.Linv.ravel() * v
        else:
            u1 = -np.einsum("jba,jb->ja", f.Linv, v.reshape(kern.l1, kern.p1)).ravel()
        u = np.concatenate((u1, w[: kern.qr])) if kern.qr else u1
        beta = w[kern.qr : kern.qr + kern.p] if with_beta else st.beta
        return PwlsStep(u, beta, f), kern

    def pirls(self, st: PirlsState, with_beta: bool) -> PirlsState:
        """Iterate from ``st`` to the conditional mode (u, and beta if ``with_beta``).

        Raises
        ------
        PirlsError
            No decrease of the penalised deviance after ``halving_maxit`` halvings, or no
            convergence in ``pirls_maxit`` iterations.
        """
        for _ in range(self.maxit):
            sol = self.solve(st, with_beta)[0]
            du = sol.u - st.u
            db = sol.beta - st.beta if with_beta else None
            new = self._halve(st, du, db)
            new.factor = sol.factor
            if self.rule == "lme4":
                # lme4's rule: stop on the relative change of the penalised deviance; the
                # factor is the one of the last iteration (at the weights before its step)
                if abs(st.pdev - new.pdev) < self.tol * abs(new.pdev):
                    return new
            else:
                # exact: stop when the full step is negligible, then factor once more at the
                # weights of the new modes, so that log|L|^2 belongs to the mode exactly
                size = float(np.max(np.abs(du), initial=0.0))
                if db is not None and db.size:
                    size = max(size, float(np.max(np.abs(db))))
                if size < self.tol * (1.0 + float(np.max(np.abs(new.u), initial=0.0))):
                    new.factor = self.solve(new, with_beta)[0].factor
                    return new
            st = new
        raise PirlsError(f"PIRLS did not converge in {self.maxit} iterations")

    def _halve(self, st: PirlsState, du: np.ndarray, db: np.ndarray | None) -> PirlsState:
        """The full step from ``st``, halved until the penalised deviance does not increase."""
        step = 1.0
        # rounding may raise the penalised deviance by a few ulps at the mode
        slack = 1e-12 * (abs(st.pdev) + 1.0) if np.isfinite(st.pdev) else math.inf
        for _h in range(self.halving_maxit):
            beta = st.beta + step * db if db is not None else st.beta
            new = self.state(st.theta, beta, st.u + step * du)
            if new.pdev <= st.pdev + slack:
                return new
            if self.rule == "lme4" and abs(st.pdev - new.pdev) < self.tol * abs(new.pdev):
                return new
            step /= 2.0
        raise PirlsError("PIRLS step halving failed to reduce the penalised deviance")

    def laplace(self, st: PirlsState) -> float:
        """The Laplace (``nAGQ <= 1``) or adaptive Gauss-Hermite deviance at a converged state."""
        assert st.factor is not None
        aic = self.resp.aic(st.mu)
        if self.nAGQ <= 1:
            return aic + float(st.u @ st.u) + st.factor.logdet_L
        return self._agq(st, aic)

    def _agq(self, st: PirlsState, aic: float) -> float:
        t = self.design.terms[0]
        assert st.factor is not None
        codes, nl = t.codes, t.nlevels
        sd = 1.0 / st.factor.L11[:, 0, 0]
        z, w, half_z2 = self._gh
        theta = float(st.theta[0])
        x = term_column(t)
        re = theta * st.u[codes] if x is None else theta * st.u[codes] * x
        fixed = st.eta - re
        devc0 = np.bincount(codes, weights=st.devres, minlength=nl) + st.u**2
        # every node at once: row k of uk holds the groups' effects at node k
        uk = st.u + z * sd
        rek = theta * uk[:, codes] if x is None else theta * uk[:, codes] * x
        mu = self.resp.linkinv(fixed + rek)
        devc = self.level_sums.along_rows(self.resp.dev_resids(mu)) + uk**2
        total = (w * np.exp(half_z2 - (devc - devc0) / 2.0)).sum(axis=0)
        return float(
            aic
            - np.sum(st.devres)
            + np.sum(devc0)
            + st.factor.logdet_L
            - 2.0 * np.sum(np.log(total))
        )

    # ---- the two stages ----------------------------------------------------------------------

    def mode(self, theta: np.ndarray, beta: np.ndarray | None = None) -> PirlsState:
        """The converged PIRLS state at theta (beta found too when ``beta`` is None).

        With ``rule="lme4"`` every evaluation starts from the linear predictor ``eta0`` (set
        by :meth:`set_start`; at first the fit at theta0 from R's starting values), as
        lme4's deviance functions do; with ``rule="exact"`` from the previous modes.
        """
        theta = np.asarray(theta, dtype=float)
        with_beta = beta is None
        b = np.zeros(self.design.p) if with_beta else np.asarray(beta, dtype=float)
        if self.rule == "lme4":
            if self.eta0 is None:
                first = self.pirls(self.start_state(self.design.theta0), True)
                self.set_start(first)
            eta0, mu0, devres0 = self._start0
            st = PirlsState(theta, b, np.zeros(self.q), eta0, mu0, devres0, math.inf)
            return self.pirls(st, with_beta)
        last = self._last
        if last is None:
            st = self.start_state(theta)
            if not with_beta:
                st = self.state(theta, b, np.zeros(self.q))
        else:
            st = self.state(theta, last.beta if with_beta else b, last.u)
        try:
            out = self.pirls(st, with_beta)
        except PirlsError:
            if last is None:
                raise
            # the previous modes were a poor start here: start again from R's starting values
            st = self.start_state(theta)
            if not with_beta:
                st = self.state(theta, b, np.zeros(self.q))
            out = self.pirls(st, with_beta)
        self._last = out
        return out

    def set_start(self, st: PirlsState) -> None:
        """Start later evaluations (``rule="lme4"``) from the linear predictor of ``st``.

        lme4 does so between its two stages (``updateGlmerDevfun``: ``lp0``).
        """
        self.eta0 = st.eta.copy()
        # mu and the deviance residuals there, shared by every evaluation's first state
        mu0 = self.resp.linkinv(self.eta0)
        self._start0 = (self.eta0, mu0, self.resp.dev_resids(mu0))
        self._work0 = self._working(self.eta0, mu0)

    def _value(self, theta: np.ndarray, beta: np.ndarray | None) -> float:
        try:
            val = self.laplace(self.mode(theta, beta))
        except (PirlsError, np.linalg.LinAlgError, ValueError, FloatingPointError):
            return math.inf
        return float(val) if np.isfinite(val) else math.inf

    def stage1(self, theta: np.ndarray) -> float:
        """The Laplace deviance at theta with beta inside PIRLS (``nAGQ = 0``)."""
        return self._value(theta, None)

    def stage2(self, pars: np.ndarray) -> float:
        """The Laplace / AGQ deviance at ``pars = (theta, beta)``."""
        pars = np.asarray(pars, dtype=float)
        k = self.design.theta0.size
        return self._value(pars[:k], pars[k:])


def hessian(fun: object, x: np.ndarray, step: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of ``fun`` at ``x`` by central differences (lme4's ``deriv12``).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.pirls import hessian
    >>> g, H = hessian(lambda x: float(x[0] ** 2 + 3 * x[0] * x[1]), np.array([1.0, 2.0]))
    >>> np.round(g, 6).tolist(), np.round(H, 4).tolist()
    ([8.0, 3.0], [[2.0, 3.0], [3.0, 0.0]])
    """
    f = fun  # type: ignore[assignment]
    x = np.asarray(x, dtype=float)
    k = x.size
    e = np.eye(k) * step
    fx = f(x)  # type: ignore[operator]
    fp = np.array([f(x + e[j]) for j in range(k)])  # type: ignore[operator]
    fm = np.array([f(x - e[j]) for j in range(k)])  # type: ignore[operator]
    g = (fp - fm) / (2.0 * step)
    H = np.diag((fp - 2.0 * fx + fm) / step**2)
    for i in range(k):
        for j in range(i):
            val = (
                f(x + e[i] + e[j])  # type: ignore[operator]
                - f(x + e[i] - e[j])  # type: ignore[operator]
                - f(x - e[i] + e[j])  # type: ignore[operator]
                + f(x - e[i] - e[j])  # type: ignore[operator]
            ) / (4.0 * step**2)
            H[i, j] = H[j, i] = val
    return g, H
