"""The names of the four stages of a fit, gathered in one module.

Each stage has its own module: :mod:`mlmprimer.design` (the design), :mod:`mlmprimer.factor`
(the profiled deviance), :mod:`mlmprimer.optimize` (the search over theta) and
:mod:`mlmprimer.solution` (beta, b and sigma at theta). This module only re-exports their names,
unchanged; :func:`mlmprimer.model.lmer` runs the same stages.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.engine import build_design, deviance_function, optimize_theta
>>> from mlmprimer.formula import parse_formula
>>> design = build_design(parse_formula("Yield ~ 1 + (1 | Batch)"), load("dyestuff"))
>>> opt = optimize_theta(deviance_function(design, REML=True))
>>> round(float(opt.theta[0]), 3), round(opt.deviance, 2)
(0.848, 319.65)
"""

from __future__ import annotations

from .design import Design, TermBlock, build_design, theta_to_templates
from .factor import deviance_function, profiled_deviance
from .optimize import ConvergenceError, ThetaFit, optimize_theta
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
