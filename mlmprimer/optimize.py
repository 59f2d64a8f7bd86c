"""Minimising the profiled deviance over theta, and checking that the minimum is one.

Stage 3 of a fit: :func:`optimize_theta` minimises ``d(theta)`` (a
:class:`mlmprimer.factor.ProfiledDeviance`) subject to ``theta >= lower`` (template diagonals
non-negative) with the optimiser ``control.optimizer`` names (nlopt's BOBYQA, lme4's default,
or Nelder-Mead), with lme4's tolerances; then every optimiser's result goes through the same
convergence check (:func:`check_convergence`): a small step along each coordinate must not
lower the deviance by more than ``control.conv_tol``; where one does, the search restarts there.
A run that exhausts its budget or fails raises :class:`ConvergenceError`, so a returned fit
has converged.

OpenBLAS runs single-threaded during the search (:class:`SingleThreadedBlas`): each evaluation
factors one moderate dense matrix, where its threads cost more than they save.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.design import build_design
>>> from mlmprimer.factor import deviance_function
>>> from mlmprimer.formula import parse_formula
>>> from mlmprimer.optimize import optimize_theta
>>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
>>> res = optimize_theta(deviance_function(d, REML=True))
>>> round(float(res.theta[0]), 3), round(res.deviance, 2), res.optimizer
(0.848, 319.65, 'bobyqa')
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nlopt
import numpy as np

from .control import LmerControl
from .factor import ProfiledDeviance

__all__ = [
    "ConvergenceError",
    "SingleThreadedBlas",
    "THREADED_SCHUR_MIN",
    "ThetaFit",
    "check_convergence",
    "minimize",
    "optimize_theta",
]


class ConvergenceError(RuntimeError):
    """The optimiser did not reach a minimum of the profiled deviance.

    Examples
    --------
    >>> from mlmprimer.optimize import ConvergenceError
    >>> issubclass(ConvergenceError, RuntimeError)
    True
    """


@functools.cache
def _openblas_thread_controls() -> list[tuple[Any, Any]]:
    """(get, set) thread-count functions of the OpenBLAS libraries loaded (Linux only)."""
    controls: list[tuple[Any, Any]] = []
    try:
        import ctypes

        with open("/proc/self/maps", encoding="utf-8") as fh:
            paths = sorted({ln.split()[-1] for ln in fh if "openblas" in ln.rsplit("/", 1)[-1]})
        for path in paths:
            lib = ctypes.CDLL(path)
            for prefix in ("scipy_", ""):
                for suffix in ("", "64_"):
                    get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                    set_ = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
                    if get is not None and set_ is not None:
                        controls.append((get, set_))
    except (OSError, ValueError):  # not Linux, or no OpenBLAS: nothing to control
        controls = []
    return controls


#: Fits whose Schur complement (see :mod:`mlmprimer.factor`) has at least this order keep
#: OpenBLAS's threads during the search: its dense Cholesky then outweighs their overhead.
THREADED_SCHUR_MIN = 2000


class SingleThreadedBlas:
    """Run OpenBLAS single-threaded inside the block.

    Each evaluation factors one moderate dense matrix; OpenBLAS's worker threads then cost far
    more CPU than they save (and much more on a busy machine). ``enabled=False`` changes
    nothing (for Schur complements of order :data:`THREADED_SCHUR_MIN` and more, whose dense
    Cholesky gains from the threads).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.optimize import SingleThreadedBlas
    >>> with SingleThreadedBlas():
    ...     float(np.linalg.cholesky(np.eye(2))[0, 0])
    1.0
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def __enter__(self) -> SingleThreadedBlas:
        self._saved = []
        if not self.enabled:  # leave OpenBLAS's threads as they are
            return self
        for get, set_ in _openblas_thread_controls():
            try:
                self._saved.append((set_, int(get())))
                set_(1)
            except Exception:  # pragma: no cover - best effort
                pass
        return self

    def __exit__(self, *exc: object) -> None:
        for set_, n in self._saved:
            try:
                set_(n)
            except Exception:  # pragma: no cover - best effort
                pass


@dataclass
class ThetaFit:
    """Result of minimising the profiled deviance.

    Attributes
    ----------
    theta : numpy.ndarray
    deviance : float
    nevals : int
    path : list of (numpy.ndarray, float)
        Every evaluation, in order.
    message : str
        ``"converged"`` or ``"converged after a restart"``.
    optimizer : str
        The optimiser used (``control.optimizer``).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import build_design
    >>> from mlmprimer.factor import deviance_function
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.optimize import optimize_theta
    >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
    >>> res = optimize_theta(deviance_function(d, REML=False))
    >>> round(res.deviance, 2), res.nevals == len(res.path)
    (327.33, True)
    """

    theta: np.ndarray
    deviance: float
    nevals: int
    path: list[tuple[np.ndarray, float]] = field(repr=False)
    message: str = ""
    optimizer: str = "bobyqa"


_NLOPT = {
    "bobyqa": ("BOBYQA", nlopt.LN_BOBYQA),
    "Nelder_Mead": ("Nelder-Mead", nlopt.LN_NELDERMEAD),
}


def _nlopt_run(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    step: float | None,
    control: LmerControl,
) -> tuple[np.ndarray, float]:
    """One run of the chosen nlopt optimiser from ``x0``: the best point and its deviance."""
    label, algorithm = _NLOPT[control.optimizer]
    best: list[Any] = [np.inf, x0.copy()]

    def obj(x: np.ndarray, grad: np.ndarray) -> float:
        val = fun(x)
        if val < best[0]:
            best[0], best[1] = val, x.copy()
        return val if math.isfinite(val) else 1e300

    opt = nlopt.opt(algorithm, x0.size)
    opt.set_lower_bounds(lower.tolist())
    opt.set_min_objective(obj)
    opt.set_ftol_abs(control.ftol_abs)
    opt.set_xtol_abs(control.xtol_abs)
    opt.set_maxeval(control.maxeval)
    if step is not None:
        opt.set_initial_step(step)
    x0 = np.maximum(x0, lower)
    try:
        opt.optimize(x0.tolist())
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        code = nlopt.ROUNDOFF_LIMITED
    except (RuntimeError, ValueError) as err:
        raise ConvergenceError(f"the optimiser ({label}) failed: {err}") from err
    if code in (nlopt.MAXEVAL_REACHED, nlopt.MAXTIME_REACHED):
        raise ConvergenceError(
            f"the optimiser ({label}) stopped after {control.maxeval} evaluations without "
            f"converging (best deviance {best[0]:.6f} at theta = "
            f"{np.round(best[1], 6).tolist()})"
        )
    if code < 0 and code != nlopt.ROUNDOFF_LIMITED:
        raise ConvergenceError(f"the optimiser ({label}) failed with code {code}")
    return best[1], float(best[0])


def check_convergence(
    fun: Callable[[np.ndarray], float],
    x: np.ndarray,
    dev: float,
    lower: np.ndarray,
    control: LmerControl | None = None,
) -> np.ndarray | None:
    """A point one small step from ``x`` along a coordinate with a deviance lower by > conv_tol.

    The check of a local minimum (``None`` when ``x`` passes): 2 evaluations per parameter
    (one towards a bound that ``x`` sits on), far cheaper than a second optimiser run.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.optimize import check_convergence
    >>> f = lambda x: float((x[0] - 1.0) ** 2)
    >>> check_convergence(f, np.array([1.0]), 0.0, np.array([0.0])) is None
    True
    >>> check_convergence(f, np.array([0.5]), 0.25, np.array([0.0])).round(4).tolist()
    [0.501]
    """
    ctrl = LmerControl() if control is None else control
    best, best_dev = None, dev - ctrl.conv_tol
    for k in range(x.size):
        step = ctrl.conv_step * max(1.0, abs(x[k]))
        for sign in (1.0, -1.0):
            trial = x.copy()
            trial[k] = max(x[k] + sign * step, lower[k])
            if trial[k] == x[k]:
                continue
            d = fun(trial)
            if d < best_dev:
                best, best_dev = trial, d
    return best


def optimize_theta(
    devfun: ProfiledDeviance,
    control: LmerControl | None = None,
    *,
    start: np.ndarray | None = None,
) -> ThetaFit:
    """The theta minimising ``devfun`` (lme4's ``optimizeLmer`` and ``checkConv``).

    Parameters
    ----------
    devfun : ProfiledDeviance
        From :func:`mlmprimer.factor.deviance_function` (its design gives the bounds).
    control : LmerControl, optional
        The optimiser, its tolerances and budget, and the convergence check.
    start : numpy.ndarray, optional
        Starting theta (default ``design.theta0``: 1 on diagonals, 0 elsewhere).

    Returns
    -------
    ThetaFit

    Raises
    ------
    ConvergenceError
        The optimiser failed, exhausted ``control.maxeval``, or kept finding lower
        deviances near its solution.

    Examples
    --------
    >>> from mlmprimer.control import LmerControl
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import build_design
    >>> from mlmprimer.factor import deviance_function
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.optimize import optimize_theta
    >>> d = build_design(parse_formula("Reaction ~ Days + (Days | Subject)"), load("sleepstudy"))
    >>> devfun = deviance_function(d, REML=True)
    >>> round(optimize_theta(devfun).deviance, 3)
    1743.628
    >>> nm = optimize_theta(devfun, LmerControl(optimizer="Nelder_Mead"))
    >>> round(nm.deviance, 3), nm.optimizer
    (1743.628, 'Nelder_Mead')
    """
    design = devfun.design
    x0 = design.theta0 if start is None else np.asarray(start, dtype=float)
    threaded = getattr(devfun.products, "m", 0) >= THREADED_SCHUR_MIN
    return minimize(devfun, x0, design.lower, control, threaded=threaded)


def minimize(
    objective: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    control: LmerControl | None = None,
    step: float | None = None,
    threaded: bool = False,
) -> ThetaFit:
    """Minimise ``objective`` from ``x0`` above ``lower`` and check the minimum (or raise).

    The search and check of :func:`optimize_theta` for any parameter vector (``glmer``'s
    second stage minimises over theta and beta together).

    Parameters
    ----------
    objective : callable
        ``f(x) -> float`` (``inf`` where undefined).
    x0, lower : numpy.ndarray
        Start and lower bounds (``-inf`` for free parameters).
    control : LmerControl, optional
    step : float, optional
        The optimiser's initial step (default: nlopt's choice).
    threaded : bool, default False
        Keep OpenBLAS's threads during the search (see :class:`SingleThreadedBlas`).

    Returns
    -------
    ThetaFit
        ``theta`` holds the minimising ``x``.

    Raises
    ------
    ConvergenceError
        As :func:`optimize_theta`.

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.optimize import minimize
    >>> f = lambda x: float((x[0] - 1.0) ** 2 + (x[1] + 2.0) ** 2)
    >>> res = minimize(f, np.zeros(2), np.array([0.0, -np.inf]))
    >>> np.round(res.theta, 4).tolist()
    [1.0, -2.0]
    """
    ctrl = LmerControl() if control is None else control
    lower = np.asarray(lower, dtype=float)
    path: list[tuple[np.ndarray, float]] = []

    def fun(x: np.ndarray) -> float:
        x = np.maximum(np.asarray(x, dtype=float), lower)
        val = objective(x)
        path.append((x.copy(), float(val)))
        return float(val)

    x = np.asarray(x0, dtype=float).copy()
    message = "converged"
    with SingleThreadedBlas(enabled=not threaded):
        x, dev = _nlopt_run(fun, x, lower, step, ctrl)
        restarts = 0
        while ctrl.check_conv:
            probe = check_convergence(fun, x, dev, lower, ctrl)
            if probe is None:
                break
            if restarts == ctrl.conv_restarts:
                raise ConvergenceError(
                    "the optimiser kept finding lower deviances near its solution"
                )
            # a nearby point has a lower deviance: the search stopped short, so continue there
            x2, d2 = _nlopt_run(fun, probe, lower, ctrl.restart_step, ctrl)
            x, dev = (x2, d2) if d2 < dev else (probe, fun(probe))
            message = "converged after a restart"
            restarts += 1
        x, dev = to_bounds(fun, x, dev, lower, ctrl)
    if not np.isfinite(dev):
        raise ConvergenceError("the deviance is not finite at any point tried")
    return ThetaFit(x, dev, len(path), path, message, ctrl.optimizer)


def to_bounds(
    fun: Callable[[np.ndarray], float],
    x: np.ndarray,
    dev: float,
    lower: np.ndarray,
    control: LmerControl | None = None,
) -> tuple[np.ndarray, float]:
    """``x`` with its entries within ``boundary_tol`` of their bounds set to them, if that
    raises the deviance by at most ``ftol_abs``; else ``x`` (one evaluation, none if no entry
    is near a bound).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.optimize import to_bounds
    >>> flat = lambda x: float(x[0] ** 2)  # flat at its bound 0: x = 1e-6 is as good
    >>> to_bounds(flat, np.array([1e-6]), 1e-12, np.array([0.0]))[0].tolist()
    [0.0]
    >>> steep = lambda x: float((x[0] - 1e-5) ** 2) * 1e6  # a true minimum just inside
    >>> to_bounds(steep, np.array([1e-5]), 0.0, np.array([0.0]))[0].tolist()
    [1e-05]
    """
    ctrl = LmerControl() if control is None else control
    near = np.isfinite(lower) & (x > lower) & (x - lower <= ctrl.boundary_tol)
    if not near.any():
        return x, dev
    trial = np.where(near, lower, x)
    d = fun(trial)
    return (trial, d) if d <= dev + ctrl.ftol_abs else (x, dev)
