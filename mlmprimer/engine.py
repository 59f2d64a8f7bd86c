"""The fitting engine under one name: the design, the profiled deviance, the optimiser.

The engine lives in one module per stage (:mod:`mlmprimer.design`, :mod:`mlmprimer.factor`,
:mod:`mlmprimer.optimize`, :mod:`mlmprimer.solution`); this module gathers their names for the
appendix *How lmer fits a model* and its exercises, with :func:`optimize_theta` in the form the
appendix uses: a design in, theta out.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.engine import build_design, optimize_theta, profiled_deviance
>>> from mlmprimer.formula import parse_formula
>>> data = load("dyestuff")
>>> design = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), data)
>>> theta = optimize_theta(design, REML=True)
>>> round(profiled_deviance(theta, design, REML=True), 2)
319.65
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .control import LmerControl
from .design import Design, TermBlock, build_design, theta_to_templates
from .factor import deviance_function, profiled_deviance
from .optimize import ConvergenceError, ThetaFit
from .optimize import optimize_theta as _optimize
from .solution import MixedSolution, solve_mixed

__all__ = [
    "ConvergenceError",
    "Design",
    "MixedSolution",
    "TermBlock",
    "ThetaFit",
    "build_design",
    "deviance_function",
    "optimize_theta",
    "profiled_deviance",
    "solve_mixed",
    "theta_to_templates",
]


def optimize_theta(
    design: Design, REML: bool = True, trace: bool = False, **control: Any
) -> np.ndarray | tuple[np.ndarray, list[tuple[np.ndarray, float]]]:
    """The theta minimising the profiled deviance of ``design`` (REML criterion by default).

    The appendix's one-call form of ``optimize.optimize_theta(deviance_function(design, REML))``.

    Parameters
    ----------
    design : Design
    REML : bool, default True
    trace : bool, default False
        Also return the path of evaluations.
    **control
        Fields of :class:`mlmprimer.control.LmerControl` (``maxeval``, ``optimizer``, ...).

    Returns
    -------
    theta : numpy.ndarray
        Or ``(theta, path)`` with ``trace=True``; ``path`` is a list of ``(theta, deviance)``
        for every evaluation, in order.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.engine import build_design, optimize_theta
    >>> from mlmprimer.formula import parse_formula
    >>> d = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
    >>> theta, path = optimize_theta(d, REML=True, trace=True)
    >>> round(float(theta[0]), 3), len(path) > 5
    (0.848, True)
    """
    res = _optimize(deviance_function(design, REML), LmerControl.from_arg(control))
    return (res.theta, res.path) if trace else res.theta
