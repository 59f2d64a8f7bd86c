"""Every threshold of a fit in one object, as lme4's ``lmerControl()``.

:class:`LmerControl` holds the optimiser's choice and tolerances, the convergence check, and
the limits the data checks and warnings use. ``lmer(control=...)`` takes one, or a mapping of
some of its fields (``{"maxeval": 500}``), or nothing (lme4's defaults).

Examples
--------
>>> from mlmprimer.control import LmerControl
>>> ctrl = LmerControl.from_arg({"optimizer": "Nelder_Mead"})
>>> ctrl.optimizer, ctrl.ftol_abs
('Nelder_Mead', 1e-08)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OPTIMIZERS", "SCHUR_FACTORS", "GlmerControl", "LmerControl"]

#: The optimisers of :func:`mlmprimer.optimize.optimize_theta`, by lme4's names.
OPTIMIZERS = ("bobyqa", "Nelder_Mead")
#: The Schur steps of :class:`mlmprimer.factor.ProfiledDeviance` (see :mod:`mlmprimer.schur`).
SCHUR_FACTORS = ("auto", "dense", "sparse")


@dataclass(frozen=True)
class LmerControl:
    """Settings of the optimiser, the convergence check and the data checks.

    Attributes
    ----------
    optimizer : {"bobyqa", "Nelder_Mead"}
        The derivative-free method minimising the profiled deviance: nlopt's BOBYQA (lme4's
        default, ``nloptwrap``) or Nelder-Mead (``optimizer = "Nelder_Mead"`` in lme4).
        Either result goes through the same convergence check.
    maxeval : int
        Evaluation budget of each optimiser run.
    ftol_abs, xtol_abs : float
        Absolute stopping tolerances on the deviance and on theta (lme4's 1e-8).
    check_conv : bool
        Probe the optimum: a step of ``conv_step`` (relative, at least absolute) along each
        coordinate must not lower the deviance by more than ``conv_tol``; where one does, the
        search restarts there (at most ``conv_restarts`` times) with initial step
        ``restart_step``.
    conv_step, conv_tol, restart_step : float
    conv_restarts : int
    singular_tol : float
        A fit is singular (on the boundary) when a template diagonal entry of theta is below
        this (lme4's ``isSingular(tol = 1e-4)``).
    boundary_tol : float
        After the search, the parameters with a lower bound that are within this of it are
        set to the bound, if the deviance there is at most ``ftol_abs`` higher (MixedModels.jl's
        ``xtol_zero_abs``). Near a zero variance the deviance is flat (it changes with theta
        squared), so where in that flat stretch the search stops depends on rounding, that is
        on the machine; the bound does not. 0 turns this off.
    rank_tol : float
        Relative tolerance below which a fixed-effects column is a combination of earlier
        ones and dropped (R's QR tolerance 1e-7).
    few_levels : int
        A grouping factor with fewer levels than this gets a warning.
    statsmodels_tol : float
        How much higher (in deviance units) statsmodels' optimum may be than ours before
        ``backend="statsmodels"`` refuses it.
    schur_factor : {"auto", "dense", "sparse"}
        How each evaluation factors the Schur complement of the random terms after the first
        (:mod:`mlmprimer.schur`): a dense Cholesky, or a sparse one with a fill-reducing
        ordering (for a large second factor crossed sparsely with the first, as raters and
        items). ``"auto"`` factors dense unless that complement has at least 1,000 columns
        and its sparse factor stays sparse. The estimates are the same either way.

    Examples
    --------
    >>> from mlmprimer.control import LmerControl
    >>> LmerControl().optimizer
    'bobyqa'
    >>> LmerControl(schur_factor="cholmod")
    Traceback (most recent call last):
    ...
    ValueError: unknown schur_factor 'cholmod': choose one of 'auto', 'dense', 'sparse'
    """

    optimizer: str = "bobyqa"
    maxeval: int = 100_000
    ftol_abs: float = 1e-8
    xtol_abs: float = 1e-8
    check_conv: bool = True
    conv_step: float = 1e-3
    conv_tol: float = 1e-6
    conv_restarts: int = 10
    restart_step: float = 0.05
    singular_tol: float = 1e-4
    boundary_tol: float = 1e-4
    rank_tol: float = 1e-7
    few_levels: int = 5
    statsmodels_tol: float = 2e-3
    schur_factor: str = "auto"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {self.optimizer!r}: choose one of "
                + ", ".join(repr(o) for o in OPTIMIZERS)
            )
        if self.schur_factor not in SCHUR_FACTORS:
            raise ValueError(
                f"unknown schur_factor {self.schur_factor!r}: choose one of "
                + ", ".join(repr(o) for o in SCHUR_FACTORS)
            )

    @classmethod
    def from_arg(cls, control: LmerControl | Mapping[str, Any] | None) -> LmerControl:
        """The control object for ``lmer(control=...)``: an LmerControl, a mapping or None.

        Raises
        ------
        ValueError
            A setting that is not a field (the message lists the known ones), or an
            unknown optimiser.

        Examples
        --------
        >>> from mlmprimer.control import LmerControl
        >>> LmerControl.from_arg(None) == LmerControl()
        True
        >>> LmerControl.from_arg({"tol": 1})
        Traceback (most recent call last):
        ...
        ValueError: unknown control settings ['tol']; known: ['boundary_tol', 'check_conv', ...]
        """
        if control is None:
            return cls()
        if isinstance(control, cls):
            return control
        settings = dict(control)
        known = sorted(f.name for f in dataclasses.fields(cls))
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise ValueError(f"unknown control settings {unknown}; known: {known}")
        return cls(**settings)


@dataclass(frozen=True)
class GlmerControl(LmerControl):
    """The settings of a ``glmer`` fit, as lme4's ``glmerControl()``.

    Every field of :class:`LmerControl` (``optimizer`` is the first stage's; the tolerances
    and the convergence probe serve both stages; ``schur_factor`` is not used, PIRLS
    factors dense), and:

    Attributes
    ----------
    optimizer2 : {"Nelder_Mead", "bobyqa"}
        The second stage's optimiser (over theta and beta): Nelder-Mead, as lme4's default
        ``glmerControl(optimizer = c("bobyqa", "Nelder_Mead"))``.
    pirls_rule : {"lme4", "exact"}
        ``"lme4"``: each evaluation of the deviance runs PIRLS as lme4 does (from the same
        linear predictor, stopping when the relative change of the penalised deviance is below
        ``pirls_tol``, lme4's ``tolPwrss``), so that the estimates, the deviance and its
        numerical Hessian are lme4's; ``"exact"``: PIRLS runs to the mode (to ``pirls_tol``
        relative in the modes), the exact Laplace / AGQ values.
    pirls_tol : float or None
        None: 1e-7 (``"lme4"``, lme4's default) or 1e-8 (``"exact"``).
    pirls_maxit : int
        Most PIRLS iterations per evaluation (then the deviance is ``inf`` there).
    halving_maxit : int
        Most step halvings in one PIRLS iteration.
    hessian_step : float
        The step of the central differences of the Hessian (lme4's ``deriv12``, 1e-4).
    grad_tol : float
        The largest scaled gradient accepted at the optimum (lme4's ``check.conv.grad``
        tolerance, 2e-3); beyond it the search continues from there (at most
        ``grad_restarts`` times) and then the fit is refused.
    grad_restarts : int

    Examples
    --------
    >>> from mlmprimer.control import GlmerControl
    >>> c = GlmerControl.from_arg({"optimizer": "Nelder_Mead"})
    >>> c.optimizer, c.hessian_step
    ('Nelder_Mead', 0.0001)
    """

    optimizer2: str = "Nelder_Mead"
    pirls_rule: str = "lme4"
    pirls_tol: float | None = None
    pirls_maxit: int = 100
    halving_maxit: int = 30
    hessian_step: float = 1e-4
    grad_tol: float = 2e-3
    grad_restarts: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer2 not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer2 {self.optimizer2!r}: choose one of "
                + ", ".join(repr(o) for o in OPTIMIZERS)
            )
        if self.pirls_rule not in ("lme4", "exact"):
            raise ValueError(f"pirls_rule must be 'lme4' or 'exact', not {self.pirls_rule!r}")
