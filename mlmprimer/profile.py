"""Confidence intervals for the parameters of a linear mixed model, as lme4's ``confint``.

Three methods, as in lme4:

``"profile"``
    Likelihood-profile intervals. For one parameter held at a value ``x``, the deviance
    (``-2 log L``) is minimised over all the other parameters; the signed square root of its
    rise above the minimum, ``zeta(x) = sign(x - x_hat) sqrt(d(x) - d(x_hat))``, is compared
    with the normal quantiles ``+-z`` (1.96 for 95 %). The random-effect parameters are taken
    on the scale of standard deviations and correlations, with the residual standard deviation
    sigma; the fixed effects are profiled out of that deviance. Like lme4, a REML fit is first
    refitted by maximum likelihood and the *likelihood* is profiled (the intervals are centred
    on the ML estimates). Where the profile stays inside ``+-z`` all the way to a bound (a
    standard deviation of 0, a correlation of -1 or 1), the bound is the limit.
``"Wald"``
    ``estimate +- z * std.error`` for the fixed effects; no interval (NaN) for the
    random-effect parameters, whose sampling distributions are far from normal.
``"boot"``
    Parametric bootstrap percentile intervals: new responses are simulated from the fit, the
    model is refitted to each, and the quantiles of the refits' estimates are taken.

The deviance used for profiling is built from the engine's factorisation
(:mod:`mlmprimer.engine`). With the covariance of term i's effects written through standard
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
>>> from mlmprimer.model import lmer
>>> from mlmprimer.profile import confint
>>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
>>> confint(m).round(1)
               2.5 %  97.5 %
.sig01          12.2    84.1
.sigma          38.2    67.7
(Intercept)   1486.5  1568.5
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import nlopt
import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy import interpolate, stats

from .bootstrap import bootstrap, progress_bar
from .design import Design
from .factor import LOG2PI, ProfiledDeviance, deviance_function
from .model import LmerModel, LmerWarning
from .optimize import ConvergenceError, SingleThreadedBlas, optimize_theta
from .solution import solve_mixed

__all__ = ["METHODS", "BootstrapRefits", "bootstrap_refits", "confint", "parameter_names"]

#: The interval methods of :func:`confint` (and of ``LmerModel.tidy(conf_method=...)``).
METHODS = ("profile", "Wald", "boot")


# ----------------------------------------------------------------------------------------------
# parameters: names and the standard deviation / correlation scale
# ----------------------------------------------------------------------------------------------


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
    _check_model(model)
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


def _sdcor(theta: np.ndarray, sigma: float, design: Design) -> np.ndarray:
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


def _theta_from_sdcor(par: np.ndarray, design: Design) -> np.ndarray | None:
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


def _deviance_sdcor(par: np.ndarray, devfun: ProfiledDeviance) -> float:
    """ML deviance at standard deviations, correlations and sigma (fixed effects profiled)."""
    sigma = float(par[-1])
    if not sigma > 0 or np.any(~np.isfinite(par)):
        return math.inf
    design = devfun.design
    theta = _theta_from_sdcor(par, design)
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

    Variables are expected on a scale of about 1 (see ``_Profiler.scale``). A probe one small
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


class _Profiler:
    """zeta functions of every parameter of an ML fit, with warm starts."""

    def __init__(self, model: LmerModel) -> None:
        design = model.design
        self.design = design
        self.devfun = deviance_function(design, REML=False)
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
        self.est = _sdcor(self.theta, self.sigma, design)
        # a correlation with an SD of 0 is undefined; 0 is a valid value to start from
        self.start = np.where(np.isnan(self.est), 0.0, self.est)
        self.lower = np.array([-1.0 if k == "cor" else 0.0 for k in self.kinds])
        self.upper = np.array([1.0 if k == "cor" else math.inf for k in self.kinds])
        self.base = min(float(base), _deviance_sdcor(self.start, self.devfun))
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
            return _deviance_sdcor(par, self.devfun)

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
                return _deviance_sdcor(par, self.devfun)
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


def _inverse_at(x: np.ndarray, z: np.ndarray, targets: np.ndarray) -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------


class BootstrapRefits(NamedTuple):
    """Statistics of parametric bootstrap refits.

    Attributes
    ----------
    values : numpy.ndarray, shape (n_ok, k)
        One row per refit that succeeded.
    n_failed : int
        Refits that raised (left out of ``values``).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.profile import BootstrapRefits
    >>> BootstrapRefits(np.zeros((3, 2)), 1).n_failed
    1
    """

    values: np.ndarray
    n_failed: int


def bootstrap_refits(
    model: LmerModel,
    statistic: Callable[[LmerModel], Any],
    nsim: int = 500,
    seed: int | np.random.Generator | None = None,
    progress: bool = False,
    desc: str = "bootstrap",
) -> BootstrapRefits:
    """Refit the model to responses simulated from it; a statistic of each refit.

    The replicates of :func:`mlmprimer.bootstrap.bootstrap` (responses from
    ``model.simulate``, refits with the same design and criterion as ``model``), the failed
    ones left out.

    Parameters
    ----------
    model, statistic, nsim, seed, progress, desc
        As ``model, fun, nsim, seed, progress, desc`` of :func:`mlmprimer.bootstrap.bootstrap`.

    Returns
    -------
    BootstrapRefits
        ``values`` (one row per successful refit) and ``n_failed``.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> from mlmprimer.profile import bootstrap_refits
    >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
    >>> res = bootstrap_refits(m, lambda fit: fit.sigma, nsim=5, seed=1)
    >>> res.values.shape, res.n_failed
    ((5, 1), 0)
    """
    _check_model(model)
    _check_nsim(nsim)
    boot = bootstrap(model, statistic, int(nsim), seed, progress, desc=desc)
    ok = boot.drop(index=boot.attrs["failed"]).to_numpy(dtype=float)
    return BootstrapRefits(ok, int(boot.attrs["n_failed"]))


def _estimates(fit: LmerModel) -> np.ndarray:
    """Standard deviations, correlations, sigma and fixed effects, in confint's order."""
    sdcor = _sdcor(np.asarray(fit.theta, dtype=float), float(fit.sigma), fit.design)
    return np.concatenate([sdcor, fit.fixef.to_numpy(dtype=float)])


# ----------------------------------------------------------------------------------------------
# confint
# ----------------------------------------------------------------------------------------------


def _check_model(model: Any) -> None:
    if not isinstance(model, LmerModel):
        raise TypeError(f"model must be an LmerModel (from mlmprimer.lmer), not {type(model)!r}")


def _check_nsim(nsim: Any) -> None:
    if not isinstance(nsim, (int, np.integer)) or isinstance(nsim, bool) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, got {nsim!r}")


def _check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
        raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    return float(level)


def _percent(a: float) -> str:
    """R's format.perc(a, 3): ``"2.5 %"``."""
    return f"{100 * a:.3g} %"


def _select(parm: str | Sequence[str] | None, names: list[str], nvc: int) -> list[int]:
    if parm is None:
        return list(range(len(names)))
    wanted = [parm] if isinstance(parm, str) else list(parm)
    idx: set[int] = set()
    for p in wanted:
        if p == "theta_":
            idx.update(range(nvc))
        elif p == "beta_":
            idx.update(range(nvc, len(names)))
        elif p in names:
            idx.add(names.index(p))
        else:
            raise ValueError(
                f"unknown parameter {p!r}: use one of {names}, 'theta_' (all variance "
                "parameters) or 'beta_' (all fixed effects)"
            )
    return sorted(idx)


def confint(
    model: LmerModel,
    method: str = "profile",
    level: float = 0.95,
    *,
    parm: str | Sequence[str] | None = None,
    nsim: int = 500,
    seed: int | np.random.Generator | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Confidence intervals for a model's parameters, as lme4's ``confint(fit, method=...)``.

    Parameters
    ----------
    model : LmerModel
        A fit from :func:`mlmprimer.lmer`.
    method : {"profile", "Wald", "boot"}, default "profile"
        Likelihood profile, Wald (fixed effects only) or parametric bootstrap percentile
        intervals; see the module documentation.
    level : float, default 0.95
        Confidence level, strictly between 0 and 1.
    parm : str or sequence of str, optional
        Parameters to give (default all): names from :func:`parameter_names`, ``"theta_"``
        for every variance parameter (with ``.sigma``) or ``"beta_"`` for every fixed effect.
        With ``"profile"`` only those are profiled.
    nsim : int, default 500
        Bootstrap samples (``method="boot"``).
    seed : int, numpy.random.Generator or None
        Seed of the bootstrap simulations; the same seed gives the same intervals.
    progress : bool, default False
        Show a progress bar (over the bootstrap refits, or over the parameters profiled).

    Returns
    -------
    pandas.DataFrame
        Index lme4's parameter names (``.sig01``, ..., ``.sigma``, fixed effects), columns
        ``"2.5 %"`` and ``"97.5 %"`` (for ``level=0.95``). With ``"boot"``, ``attrs`` holds
        ``nsim`` and ``n_failed``.

    Raises
    ------
    ValueError
        An unknown method or parameter, a level outside (0, 1), ``nsim < 1``.
    RuntimeError
        Every bootstrap refit failed.

    Warns
    -----
    LmerWarning
        Bootstrap refits that failed (how many; the intervals use the others); a parameter
        whose profile could not be computed (its limits are NaN).

    Notes
    -----
    Profile intervals of a REML fit are those of the ML fit, as lme4's (it profiles the
    likelihood after refitting by ML). Bootstrap refits use the fit's criterion. A
    correlation of a bootstrap refit with a standard deviation of 0 is undefined and left
    out of that correlation's quantiles.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> from mlmprimer.profile import confint
    >>> m = lmer("strength ~ 1 + (1 | batch/cask)", load("pastes"))
    >>> confint(m).round(3)  # the batch SD (.sig02) may well be 0
                 2.5 %  97.5 %
    .sig01       2.158   4.054
    .sig02       0.000   2.947
    .sigma       0.652   1.085
    (Intercept) 58.664  61.443
    >>> confint(m, "Wald").round(2)
                 2.5 %  97.5 %
    .sig01         NaN     NaN
    .sig02         NaN     NaN
    .sigma         NaN     NaN
    (Intercept)  58.73   61.38
    >>> ci = confint(m, "boot", nsim=20, seed=1)
    >>> ci.attrs["n_failed"], list(ci.columns)
    (0, ['2.5 %', '97.5 %'])
    """
    _check_model(model)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    level = _check_level(level)
    if method == "boot":
        _check_nsim(nsim)
    names = parameter_names(model)
    nvc = model.design.theta0.size + 1
    which = _select(parm, names, nvc)
    a = (1.0 - level) / 2.0
    columns = [_percent(a), _percent(1.0 - a)]
    z = float(stats.norm.ppf(1.0 - a))
    out = np.full((len(names), 2), np.nan)

    if method == "Wald":
        se = np.sqrt(np.diag(model.vcov.to_numpy(dtype=float)))
        beta = model.fixef.to_numpy(dtype=float)
        out[nvc:, 0] = beta - z * se
        out[nvc:, 1] = beta + z * se
        frame = pd.DataFrame(out, index=names, columns=columns)
        return frame.iloc[which]

    if method == "boot":
        res = bootstrap_refits(model, _estimates, nsim, seed, progress, desc="bootstrap confint")
        if res.values.shape[0] == 0:
            raise RuntimeError(f"all {nsim} bootstrap refits failed: no interval")
        if res.n_failed:
            warnings.warn(
                f"{res.n_failed} of {nsim} bootstrap refits failed; the intervals use the "
                f"{nsim - res.n_failed} that succeeded",
                LmerWarning,
                stacklevel=2,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column of NaN correlations
            out = np.nanquantile(res.values, [a, 1.0 - a], axis=0).T
        frame = pd.DataFrame(out, index=names, columns=columns).iloc[which]
        frame.attrs.update(nsim=int(nsim), n_failed=int(res.n_failed))
        return frame

    # lme4 profiles out to the chi-square cut-off of all parameters at alpha = 0.01
    cutoff = max(math.sqrt(stats.chi2.ppf(0.99, len(names))), 1.1 * z)
    with SingleThreadedBlas():
        prof = _Profiler(model)
        # where the profile stays inside +-z, the limit is the parameter's bound
        nfixed = len(names) - nvc
        lower = np.concatenate([prof.lower, np.full(nfixed, -math.inf)])
        upper = np.concatenate([prof.upper, np.full(nfixed, math.inf)])
        for k in progress_bar(np.asarray(which), progress, desc="profile confint"):
            k = int(k)
            try:
                x, zeta = prof.profile(k, cutoff)
            except (ConvergenceError, ValueError, np.linalg.LinAlgError) as err:
                warnings.warn(
                    f"no profile interval for {names[k]}: {err}", LmerWarning, stacklevel=2
                )
                continue
            lim = _inverse_at(x, zeta, np.array([-z, z]))
            out[k] = np.where(np.isnan(lim), [lower[k], upper[k]], lim)
    return pd.DataFrame(out, index=names, columns=columns).iloc[which]
