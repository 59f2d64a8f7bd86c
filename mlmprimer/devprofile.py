"""Likelihood profiles of the parameters of a linear mixed model, as lme4's ``profile``.

For one parameter held at a value ``x``, the deviance (``-2 log L``) is minimised over all the
other parameters; ``zeta(x) = sign(x - x_hat) sqrt(d(x) - d(x_hat))`` is the signed square root
of its rise above the minimum. :func:`mlmprimer.profile.confint` inverts zeta at the normal
quantiles.

The deviance used for profiling is built from the engine's factorisation
(:mod:`mlmprimer.factor`). With the covariance of term i's effects written through standard
deviations and correlations, ``Sigma_i = D R D``, and the residual SD sigma, the relative factor
is ``T_i = D chol(R) / sigma`` (theta); for that theta the penalised least squares solution
gives ``log|L|^2`` and the penalised residual sum of squares ``r^2``, and

.. math:: d(\\text{sd, cor}, \\sigma) = \\log|L|^2 + r^2 / \\sigma^2 + n \\log(2 \\pi \\sigma^2)

(the fixed effects at their conditional optimum; with prior weights ``w_i`` the rows are
scaled by ``sqrt(w_i)`` and ``- sum(log w_i)`` is added, as in the engine). For a fixed
effect held at ``b``, the other fixed effects and sigma are profiled out in closed form: with
``V = (R_X' R_X)^{-1}``, ``r^2_j(b) = r^2 + (b - beta_hat_j)^2 / V_jj`` and the deviance is
``log|L|^2 + n (1 + log(2 pi r^2_j / n))``, minimised over theta.

The limits are read off the profile as lme4 reads them, so that the numbers agree with R's:
zeta is computed at points stepping out from the estimate (steps of about an eighth of the
chi-square cut-off, ``sqrt(qchisq(0.99, number of parameters))``, in zeta) until it passes the
cut-off or the parameter reaches its bound; a natural cubic spline of zeta on the parameter is
inverted at ``+-z``. A profile that turns flat (a correlation, once a standard deviation of its
term is 0) is interpolated linearly. Where a profile bends sharply between two of its points the
spline can miss the exact crossing, as lme4's does: in the Hsb82 model
``mAch ~ ses + (ses | school)`` the lower limit of the ``ses`` slope SD is 0.085, while zeta
reaches -1.96 at 0.079 (the correlation runs into -1 on the way down).

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.devprofile import parameter_names
>>> from mlmprimer.model import lmer
>>> parameter_names(lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy")))
['.sig01', '.sig02', '.sig03', '.sigma', '(Intercept)', 'Days']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import nlopt
import numpy as np
import scipy.linalg as sla
from scipy import interpolate

from .design import Design
from .factor import LOG2PI, ProfiledDeviance, deviance_function
from .lmermodel import LmerModel
from .optimize import ConvergenceError, optimize_theta
from .solution import solve_mixed

__all__ = ["Profiler", "check_model", "inverse_at", "parameter_names", "sdcor"]


# ----------------------------------------------------------------------------------------------
# parameters: names and the standard deviation / correlation scale
# ----------------------------------------------------------------------------------------------


def check_model(model: Any) -> None:
    """Raise ``TypeError`` unless ``model`` is a fitted :class:`~mlmprimer.lmermodel.LmerModel`.

    Examples
    --------
    >>> from mlmprimer.devprofile import check_model
    >>> check_model("m")
    Traceback (most recent call last):
    ...
    TypeError: model must be an LmerModel (from mlmprimer.lmer), not <class 'str'>
    """
    from .bigfit import SourceModel

    if not isinstance(model, LmerModel | SourceModel):
        raise TypeError(f"model must be an LmerModel (from mlmprimer.lmer), not {type(model)!r}")


def parameter_names(model: LmerModel) -> list[str]:
    """lme4's names of a model's parameters, in ``confint``'s order.

    One ``.sigNN`` per entry of theta (a standard deviation on a template's diagonal, a
    correlation off it, in theta's column-major order), ``.sigma``, then the fixed effects.

    Parameters
    ----------
    model : LmerModel

    Returns
    -------
    list of str

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> from mlmprimer.profile import parameter_names
    >>> parameter_names(lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy")))
    ['.sig01', '.sig02', '.sig03', '.sigma', '(Intercept)', 'Days']
    """
    check_model(model)
    k = model.design.theta0.size
    return [f".sig{i + 1:02d}" for i in range(k)] + [".sigma"] + list(model.design.xnames)


def _tril(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a p x p lower triangle, column by column (theta's order)."""
    cols, rows = np.triu_indices(p)
    return rows, cols


def _kinds(design: Design) -> list[str]:
    """``"sd"`` or ``"cor"`` for each entry of theta, then ``"sigma"``."""
    out = []
    for t in design.terms:
        rows, cols = _tril(t.p)
        out += ["sd" if i == j else "cor" for i, j in zip(rows, cols, strict=True)]
    return out + ["sigma"]


def sdcor(theta: np.ndarray, sigma: float, design: Design) -> np.ndarray:
    """Standard deviations and correlations (theta's layout), then sigma.

    A correlation with a standard deviation of 0 is NaN, as in lme4.
    """
    out = np.empty(theta.size + 1)
    for t in design.terms:
        T = t.template(theta)
        C = T @ T.T
        sd = np.sqrt(np.diag(C))
        rows, cols = _tril(t.p)
        vals = []
        for i, j in zip(rows, cols, strict=True):
            if i == j:
                vals.append(sigma * sd[i])
            else:
                den = sd[i] * sd[j]
                vals.append(C[i, j] / den if den > 0 else np.nan)
        out[t.theta_slice] = vals
    out[-1] = sigma
    return out


def _psd_cholesky(R: np.ndarray, tol: float = 1e-12) -> np.ndarray | None:
    """Lower Cholesky factor of a positive semi-definite matrix (zero pivots allowed).

    None when ``R`` is not positive semi-definite.
    """
    p = R.shape[0]
    L = np.zeros((p, p))
    for j in range(p):
        d = R[j, j] - L[j, :j] @ L[j, :j]
        if d < -tol:
            return None
        if d <= tol:
            resid = R[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]
            if np.any(np.abs(resid) > 1e-8):
                return None
            continue
        L[j, j] = math.sqrt(d)
        L[j + 1 :, j] = (R[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


def _theta_fromsdcor(par: np.ndarray, design: Design) -> np.ndarray | None:
    """theta for standard deviations and correlations ``par`` (sigma last); None if invalid."""
    sigma = par[-1]
    theta = np.empty(design.theta0.size)
    for t in design.terms:
        vals = par[t.theta_slice]
        if t.p == 1:
            theta[t.theta_slice] = vals[0] / sigma
            continue
        rows, cols = _tril(t.p)
        S = np.zeros((t.p, t.p))
        S[rows, cols] = vals
        sd = np.diag(S).copy()
        R = S + S.T
        np.fill_diagonal(R, 1.0)
        Lr = _psd_cholesky(R)
        if Lr is None:
            return None
        theta[t.theta_slice] = ((sd[:, None] * Lr) / sigma)[rows, cols]
    return theta


# ----------------------------------------------------------------------------------------------
# the deviances
# ----------------------------------------------------------------------------------------------


def _deviancesdcor(par: np.ndarray, devfun: ProfiledDeviance) -> float:
    """ML deviance at standard deviations, correlations and sigma (fixed effects profiled)."""
    sigma = float(par[-1])
    if not sigma > 0 or np.any(~np.isfinite(par)):
        return math.inf
    design = devfun.design
    theta = _theta_fromsdcor(par, design)
    if theta is None:
        return math.inf
    f = devfun.factor(theta)
    s2 = sigma * sigma
    # f.ldw: the sum of the log prior weights (0 without weights)
    return f.logdet_L + f.r2 / s2 + design.n * (LOG2PI + math.log(s2)) - f.ldw


def _fixed_part(theta: np.ndarray, devfun: ProfiledDeviance) -> tuple[Any, np.ndarray, np.ndarray]:
    """The factorisation at theta, beta_hat(theta) and diag((R_X' R_X)^{-1})."""
    f = devfun.factor(theta)
    qr, p = devfun.products.qr, devfun.design.p
    Lx = f.Ls[qr : qr + p, qr : qr + p]
    beta = sla.solve_triangular(Lx, f.Ls[-1, qr : qr + p], trans="T", lower=True)
    Lxinv = sla.solve_triangular(Lx, np.eye(p), lower=True)
    return f, beta, np.sum(Lxinv**2, axis=0)


def _deviance_fixed(theta: np.ndarray, devfun: ProfiledDeviance, j: int, b: float) -> float:
    """ML deviance with fixed effect j held at b (others and sigma profiled), at theta."""
    try:
        f, beta, vdiag = _fixed_part(theta, devfun)
    except (np.linalg.LinAlgError, ValueError):
        return math.inf
    r2 = f.r2 + (b - beta[j]) ** 2 / vdiag[j]
    n = devfun.design.n
    return f.logdet_L + n * (1.0 + LOG2PI + math.log(r2 / n)) - f.ldw


# ----------------------------------------------------------------------------------------------
# bounded minimisation (BOBYQA) of the nuisance parameters
# ----------------------------------------------------------------------------------------------


def _minimise(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    step: float = 0.02,
) -> tuple[np.ndarray, float]:
    """Minimise ``fun`` over the box with BOBYQA, then probe the neighbourhood of the optimum.

    Variables are expected on a scale of about 1 (see ``Profiler.scale``). A probe one small
    step along each coordinate that lowers ``fun`` by more than 1e-7 restarts the search there.
    """
    x0 = np.clip(np.asarray(x0, dtype=float), lower, upper)
    best = [math.inf, x0.copy()]

    def obj(x: np.ndarray, grad: np.ndarray) -> float:
        val = fun(x)
        if val < best[0]:
            best[0], best[1] = val, x.copy()
        return val if math.isfinite(val) else 1e300

    width = np.minimum(upper - lower, 1e300)
    for _ in range(5):
        opt = nlopt.opt(nlopt.LN_BOBYQA, x0.size)
        opt.set_lower_bounds(lower.tolist())
        opt.set_upper_bounds(upper.tolist())
        opt.set_min_objective(obj)
        opt.set_ftol_abs(1e-8)
        opt.set_xtol_abs(1e-8)
        opt.set_maxeval(20_000)
        opt.set_initial_step(np.minimum(step, width / 4).tolist())
        try:
            opt.optimize(x0.tolist())
        except nlopt.RoundoffLimited:
            pass
        except (RuntimeError, ValueError) as err:
            raise ConvergenceError(f"profiling: the optimiser (BOBYQA) failed: {err}") from err
        x, fx = best[1], best[0]
        probe = None
        for k in range(x.size):
            h = 1e-4 * max(1.0, abs(x[k]))
            for sign in (1.0, -1.0):
                trial = x.copy()
                trial[k] = min(max(x[k] + sign * h, lower[k]), upper[k])
                if trial[k] != x[k] and fun(trial) < fx - 1e-7:
                    probe = trial
        if probe is None:
            return x, fx
        x0, step = probe, 0.01
    return best[1], best[0]


# ----------------------------------------------------------------------------------------------
# the profile
# ----------------------------------------------------------------------------------------------


class Profiler:
    """zeta functions of every parameter of an ML fit, with warm starts."""

    def __init__(self, model: LmerModel) -> None:
        design = model.design
        self.design = design
        # a fit from a database has no rows: its ML deviance reuses the aggregated products
        products = getattr(model, "devfun", None) if not isinstance(model, LmerModel) else None
        schur = model.control.schur_factor
        if products is not None:
            self.devfun = ProfiledDeviance(design, False, products.products, schur_factor=schur)
        else:
            self.devfun = deviance_function(design, REML=False, schur_factor=schur)
        if model.REML:
            fit = optimize_theta(self.devfun, start=model.theta)
            theta, base = fit.theta, fit.deviance
        else:
            theta, base = model.theta, model.deviance
        # an SD the optimiser left a hair above 0 is 0 when that costs no likelihood
        snapped = np.where((design.lower == 0) & (np.abs(theta) < 1e-6), 0.0, theta)
        if self.devfun(snapped) <= base + 1e-9:
            theta = snapped
        sol = solve_mixed(self.devfun, theta)
        self.theta = np.asarray(theta, dtype=float)
        self.beta = np.asarray(sol.beta, dtype=float)
        self.fixed_se = np.sqrt(np.diag(sol.vcov))
        self.sigma = float(sol.sigma)
        self.kinds = _kinds(design)
        self.est = sdcor(self.theta, self.sigma, design)
        # a correlation with an SD of 0 is undefined; 0 is a valid value to start from
        self.start = np.where(np.isnan(self.est), 0.0, self.est)
        self.lower = np.array([-1.0 if k == "cor" else 0.0 for k in self.kinds])
        self.upper = np.array([1.0 if k == "cor" else math.inf for k in self.kinds])
        self.base = min(float(base), _deviancesdcor(self.start, self.devfun))
        self.scale = self._scales()

    # scales of the variance parameters, about one standard error each
    def _scales(self) -> np.ndarray:
        est, kinds, sigma = self.start, self.kinds, self.sigma
        fallback = np.array(
            [
                0.5 if k == "cor" else (max(0.2 * e, 0.05 * sigma) if k == "sd" else 0.1 * e)
                for k, e in zip(kinds, est, strict=True)
            ]
        )
        inside = (est - self.lower > 1e-3 * fallback) & (self.upper - est > 1e-3 * fallback)
        idx = np.flatnonzero(inside)
        scale = fallback.copy()
        if idx.size == 0:
            return scale
        h = 1e-3 * fallback[idx]
        hess = np.empty((idx.size, idx.size))

        def dev(shift: np.ndarray) -> float:
            par = est.copy()
            par[idx] += shift
            return _deviancesdcor(par, self.devfun)

        d0 = dev(np.zeros(idx.size))
        for a in range(idx.size):
            for b in range(a + 1):
                ea = np.zeros(idx.size)
                eb = np.zeros(idx.size)
                ea[a], eb[b] = h[a], h[b]
                val = (dev(ea + eb) - dev(ea - eb) - dev(eb - ea) + dev(-ea - eb)) / (
                    4 * h[a] * h[b]
                )
                hess[a, b] = hess[b, a] = val
        with np.errstate(all="ignore"):
            try:
                cov = 2.0 * np.linalg.inv(hess)
                se = np.sqrt(np.diag(cov))
            except np.linalg.LinAlgError:
                se = np.full(idx.size, np.nan)
            diag = np.sqrt(2.0 / np.diag(hess))
        se = np.where(np.isfinite(se) & (se > 0), se, diag)
        ok = np.isfinite(se) & (se > 0) & np.isfinite(d0)
        scale[idx[ok]] = se[ok]
        return scale

    # zeta of a variance parameter ------------------------------------------------------------

    def vc_zeta(self, w: int, x: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """zeta of variance parameter w at x; the other parameters' optimum."""
        others = np.array([i for i in range(self.start.size) if i != w])
        scale = self.scale[others]
        par = self.start.copy()
        par[w] = x

        def fun(v: np.ndarray) -> float:
            par[others] = v * scale
            try:
                return _deviancesdcor(par, self.devfun)
            except (np.linalg.LinAlgError, ValueError):
                return math.inf

        lo, hi = self.lower[others] / scale, self.upper[others] / scale
        v, dev = _minimise(fun, start[others] / scale, lo, hi)
        opt = par.copy()
        opt[others] = v * scale
        return self._zeta(x, self.start[w], dev), opt

    # zeta of a fixed effect ----------------------------------------------------------------

    def fixed_zeta(self, j: int, b: float, start: np.ndarray) -> tuple[float, np.ndarray]:
        """zeta of fixed effect j at b; the optimal theta."""
        design = self.design
        scale = np.maximum(np.abs(self.theta), 0.05)

        def fun(v: np.ndarray) -> float:
            return _deviance_fixed(v * scale, self.devfun, j, b)

        v, dev = _minimise(fun, start / scale, design.lower / scale, np.full(scale.size, np.inf))
        return self._zeta(b, self.beta[j], dev), v * scale

    def _zeta(self, x: float, est: float, dev: float) -> float:
        diff = dev - self.base
        if not math.isfinite(diff):
            return math.nan
        if diff < -1e-3:
            raise ConvergenceError(
                f"profiling found a deviance {-diff:.4g} below the fit's: the fit is not at "
                "the maximum of the likelihood; refit it before computing intervals"
            )
        return math.copysign(math.sqrt(max(diff, 0.0)), x - est)

    # one profile ---------------------------------------------------------------------------

    def profile(self, k: int, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
        """Points ``(x, zeta)`` of the profile of parameter k (confint order), sorted by x.

        The points are placed as lme4 places them: from the estimate, steps of about
        ``cutoff / 8`` in zeta (secant predictions, at most 10 times the previous step) in
        each direction until ``|zeta|`` passes ``cutoff`` or the parameter reaches a bound.
        The first point is 1 % beyond the estimate (0.001 for an estimate of 0) for a
        variance parameter, an eighth of the cut-off times the standard error for a fixed
        effect.
        """
        nvc = self.start.size
        delta = cutoff / 8.0
        if k < nvc:
            est = float(self.start[k])
            lo, hi = float(self.lower[k]), float(self.upper[k])
            first = 0.001 if est == 0 else 1.01 * est
            minstep = 1e-3 * float(self.scale[k])
            start0 = self.start

            def zeta(x: float, s: np.ndarray) -> tuple[float, np.ndarray]:
                return self.vc_zeta(k, x, s)
        else:
            j = k - nvc
            est = float(self.beta[j])
            lo, hi = -math.inf, math.inf
            first = est + delta * float(self.fixed_se[j])
            minstep = 1e-3 * float(self.fixed_se[j])
            start0 = self.theta

            def zeta(x: float, s: np.ndarray) -> tuple[float, np.ndarray]:
                return self.fixed_zeta(j, x, s)

        if not math.isfinite(est):
            return np.array([]), np.array([])
        first = min(max(first, lo), hi)
        z1, s1 = zeta(first, start0)
        points = [(est, 0.0), (first, z1)]
        up = [(est, 0.0, start0), (first, z1, s1)]
        points += _walk(zeta, up, lo, hi, cutoff, delta, minstep)
        if est > lo:
            down = [(first, z1, s1), (est, 0.0, start0)]
            points += _walk(zeta, down, lo, hi, cutoff, delta, minstep)
        by_x = {x: z for x, z in reversed(points) if math.isfinite(z)}  # one zeta per x
        x = np.array(sorted(by_x))
        return x, np.array([by_x[v] for v in x])


def _walk(
    zeta: Callable[[float, np.ndarray], tuple[float, np.ndarray]],
    rows: list[tuple[float, float, np.ndarray]],
    lo: float,
    hi: float,
    cutoff: float,
    delta: float,
    minstep: float,
    maxpts: int = 100,
    maxmult: float = 10.0,
) -> list[tuple[float, float]]:
    """Profile points beyond the last two ``rows`` (x, zeta, nuisance optimum), outwards.

    Each step is ``delta`` in zeta by the secant of the last two points, capped at
    ``maxmult`` times the last step and clipped to ``[lo, hi]``; it stops past ``cutoff``, at
    a bound or after ``maxpts`` points. Where the profile turns flat after rising (as for a
    correlation once a standard deviation of its term is 0) it goes to the bound; where it is
    flat next to the estimate the step doubles (at least ``minstep``).
    """
    out: list[tuple[float, float]] = []
    while len(rows) < maxpts:
        (x0, z0, _), (x1, z1, s1) = rows[-2], rows[-1]
        if not (lo < x1 < hi) or (math.isfinite(z1) and abs(z1) > cutoff):
            break
        num = x1 - x0
        denom = z1 - z0
        flat = not math.isfinite(denom) or abs(denom) <= 1e-6 * delta or denom * num < 0
        if flat and math.isfinite(z1) and abs(z1) >= delta:
            # risen, then flat or falling (a correlation's profile once an SD of its term is
            # 0): nothing is left to interpolate before the bound
            step = math.inf
        elif flat:
            # flat next to the estimate: grow the step until zeta moves
            step = max(minstep, 2.0 * abs(num))
        else:
            step = min(delta * num / denom, maxmult * abs(num))
        x2 = min(hi, max(lo, x1 + math.copysign(step, num)))
        if not math.isfinite(x2):
            break
        z2, s2 = zeta(x2, s1)
        rows.append((x2, z2, s2))
        out.append((x2, z2))
    return out


def _natural_spline_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """First derivatives at the knots of the natural cubic spline interpolating (x, y)."""
    return interpolate.CubicSpline(x, y, bc_type="natural")(x, 1)


def inverse_at(x: np.ndarray, z: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The parameter values where the profile reaches ``targets`` (NaN outside its range).

    The profile is interpolated as lme4 does: a natural cubic spline of zeta on the
    parameter, then its monotone inverse, cubic on each interval between knots (values and
    inverse slopes of the spline at both ends), quadratic on the two end intervals (the slope
    at the outer end free), straightened to a line where that quadratic bends outwards. A
    profile that is not strictly increasing (flat parts), or has fewer than 4 points, is
    interpolated linearly.
    """
    targets = np.asarray(targets, dtype=float)
    out = np.full(targets.shape, np.nan)
    if x.size < 2:
        return out
    dz = np.diff(z)
    if x.size < 4 or np.any(dz <= 1e-9):
        order = np.argsort(z, kind="stable")
        zs, xs = z[order], x[order]
        uz, inv = np.unique(zs, return_inverse=True)
        ux = np.bincount(inv, weights=xs) / np.bincount(inv)  # ties: the mean, as approx()
        inside = (targets >= uz[0]) & (targets <= uz[-1])
        out[inside] = np.interp(targets[inside], uz, ux)
        return out
    slope = 1.0 / _natural_spline_slopes(x, z)  # dx / dzeta at the knots
    dx = np.diff(x)
    m = x.size - 1
    b = np.empty(m)  # x(zeta) = x_i + b t + c t^2 + d t^3 on [z_i, z_i+1], t = zeta - z_i
    c = np.empty(m)
    d = np.zeros(m)
    for i in range(m):
        h = dz[i]
        b[i] = slope[i]
        rhs = np.array([dx[i] - slope[i] * h, slope[i + 1] - slope[i]])
        c[i], d[i] = np.linalg.solve(np.array([[h * h, h**3], [2 * h, 3 * h * h]]), rhs)
    if m > 1:
        # first interval: quadratic matching both values and the slope at its inner end
        h = dz[0]
        b[0], c[0] = np.linalg.solve(np.array([[h, h * h], [1.0, 2 * h]]), [dx[0], slope[1]])
        d[0] = 0.0
        # last interval: quadratic with the slope at its inner end
        h = dz[-1]
        c[-1] = (dx[-1] - slope[-2] * h) / (h * h)
        d[-1] = 0.0
    if c[0] > 0:
        b[0], c[0], d[0] = dx[0] / dz[0], 0.0, 0.0
    if c[-1] < 0:
        b[-1], c[-1], d[-1] = dx[-1] / dz[-1], 0.0, 0.0
    inside = (targets >= z[0]) & (targets <= z[-1])
    i = np.clip(np.searchsorted(z, targets[inside], side="left") - 1, 0, m - 1)
    t = targets[inside] - z[i]
    out[inside] = x[i] + t * (b[i] + t * (c[i] + t * d[i]))
    return out
