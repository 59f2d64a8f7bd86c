"""Checks of appendix A1, how lmer fits a model: ``exA1_1``, ``exA1_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from mlmprimer.check.core import (
    CheckResult,
    Verdict,
    exercise,
    judge_guess,
    judge_pair,
    load_data,
    questions,
    statsmodels_formula,
    variant_seed,
    words,
)

_PEN = "diameter ~ 1 + (1 | plate) + (1 | sample)"
_DRIVERS = "mpg ~ 1 + (1 | driver) + (1 | car)"
_SIMA1: dict[str, Any] = {"n_drivers": 30, "n_cars": 25}
_SEEDA1 = 3  # public variant of exercise A1.4; each student has their own


@functools.cache
def _chA1_penicillin() -> dict[str, float]:
    from mlmprimer.design import build_design
    from mlmprimer.factor import profiled_deviance
    from mlmprimer.formula import parse_formula

    pen = load_data("penicillin")
    design = build_design(parse_formula(_PEN), pen)
    ols = statsmodels_formula().ols("diameter ~ 1", pen).fit()
    zero = np.zeros_like(design.theta0)
    levels = [t.nlevels for t in design.terms]
    return {
        "q": float(design.q),
        "ntheta": float(design.theta0.size),
        "n": float(design.n),
        "first": float(levels[0]),
        "second": float(levels[1]),
        "nnz": float(design.Z().nnz),
        "nnz_row": float(design.Z().nnz / design.n),
        "dev0": float(profiled_deviance(zero, design, REML=False)),
        "reml0": float(profiled_deviance(zero, design, REML=True)),
        "llf": float(ols.llf),
    }


@functools.cache
def _chA1_sim(seed: int = _SEEDA1) -> dict[str, tuple[float, float]]:
    from mlmprimer import simulate
    from mlmprimer.design import build_design
    from mlmprimer.factor import deviance_function
    from mlmprimer.formula import parse_formula
    from mlmprimer.optimize import optimize_theta

    dc = simulate.drivers_cars(**_SIMA1, rng=seed)
    truth = dc.attrs["truth"]
    design = build_design(parse_formula(_DRIVERS), dc)
    factors = [name.split(".")[0] for name in design.theta_names]

    def pair(values: Any) -> tuple[float, float]:
        return float(values[0]), float(values[1])

    reml, ml = (optimize_theta(deviance_function(design, REML)).theta for REML in (True, False))
    sigma = truth["sigma"]
    return {
        "true": pair([truth[f"tau_{f}"] / sigma for f in factors]),
        "true_inverse": pair([sigma / truth[f"tau_{f}"] for f in factors]),
        "true_squared": pair([(truth[f"tau_{f}"] / sigma) ** 2 for f in factors]),
        "true_tau": pair([truth[f"tau_{f}"] for f in factors]),
        "hat": pair(reml),
        "hat_ml": pair(ml),
        "hat_squared": pair(np.asarray(reml) ** 2),
    }


@exercise("exA1_1", "the design of the Penicillin model: predict, then build it", points=3)
def exA1_1(
    prediction_n_theta: Any, q_pen: Any, n_theta_pen: Any, nonzero_per_row: Any
) -> CheckResult:
    """Exercise A1.1: size of Z and number of covariance parameters of the Penicillin model.

    The model is ``diameter ~ 1 + (1 | plate) + (1 | sample)`` on ``penicillin``.

    Parameters
    ----------
    prediction_n_theta : int
        Written before building the design: your guess of the number of entries of theta.
    q_pen : int
        The number of columns of Z, ``design.q``.
    n_theta_pen : int
        The number of covariance parameters, the length of ``design.theta0``.
    nonzero_per_row : int
        How many entries of a row of Z are not zero.

    Examples
    --------
    >>> exA1_1(0, ..., ..., ...).status
    'incorrect'
    """
    v = Verdict("exA1_1")
    t = _chA1_penicillin
    v.number(
        "q_pen",
        q_pen,
        lambda: t()["q"],
        what="the number of columns of Z",
        integer=True,
        slips=lambda: [
            (t()["n"], "this is the number of observations, the rows of Z."),
            (t()["first"], "this counts the plates only; Z has columns for both factors."),
            (t()["second"], "this counts the samples only; Z has columns for both factors."),
            (t()["nnz"], "this is the number of non-zero entries of Z."),
        ],
        hint="one column per level of each grouping factor: design.q or design.Z().shape.",
    )
    v.number(
        "n_theta_pen",
        n_theta_pen,
        lambda: t()["ntheta"],
        what="the number of covariance parameters",
        integer=True,
        slips=lambda: [
            (
                t()["ntheta"] + 1,
                "sigma is not part of theta: it has a closed form once theta is fixed.",
            ),
            (t()["q"], "this is the number of random effects, the columns of Z."),
        ],
        hint="design.theta0 has one entry per covariance parameter.",
    )
    v.number(
        "nonzero_per_row",
        nonzero_per_row,
        lambda: t()["nnz_row"],
        what="the number of non-zero entries in a row of Z",
        integer=True,
        slips=lambda: [
            (t()["nnz"], "this counts the non-zero entries of the whole of Z; divide by its rows."),
            (t()["q"], "this is the number of columns of Z, not of its non-zero entries."),
        ],
        hint="Z.nnz is the number of non-zero entries of Z; Z.shape[0] its number of rows.",
    )
    judge_guess(
        v, "prediction_n_theta", prediction_n_theta, lambda: t()["ntheta"], v.ok("n_theta_pen")
    )
    return v.result()


@exercise("exA1_2", "theta = 0 is ordinary least squares: the Penicillin check", points=2)
def exA1_2(dev_theta0_pen: Any, dev_ols_pen: Any) -> CheckResult:
    """Exercise A1.2: the ML deviance at theta = 0 against the OLS fit of ``diameter ~ 1``.

    Parameters
    ----------
    dev_theta0_pen : float
        ``profiled_deviance(theta, design, REML=False)`` with theta all zeros.
    dev_ols_pen : float
        Minus twice the log-likelihood of ``smf.ols("diameter ~ 1", pen).fit()``.

    Examples
    --------
    >>> exA1_2(..., ...).status
    'unanswered'
    """
    v = Verdict("exA1_2")
    t = _chA1_penicillin
    llf_msg = "this is a log-likelihood; the deviance is -2 times it."
    v.number(
        "dev_theta0_pen",
        dev_theta0_pen,
        lambda: t()["dev0"],
        what="the ML deviance at theta = 0",
        rel=1e-6,
        abs_tol=0.05,
        slips=lambda: [
            (t()["reml0"], "this is the REML criterion; pass REML=False for the ML deviance."),
            (-t()["dev0"] / 2, llf_msg),
        ],
        hint="profiled_deviance(np.zeros(len(design.theta0)), design, REML=False).",
    )
    v.number(
        "dev_ols_pen",
        dev_ols_pen,
        lambda: -2 * t()["llf"],
        what="-2 times the OLS log-likelihood",
        rel=1e-6,
        abs_tol=0.05,
        slips=lambda: [
            (t()["llf"], llf_msg),
            (2 * t()["llf"], "mind the sign: the deviance is -2 times the log-likelihood."),
            (-t()["llf"], "the deviance is -2 times the log-likelihood, not -1 times."),
        ],
        hint="-2 * smf.ols('diameter ~ 1', pen).fit().llf",
    )
    return v.result()


@exercise(
    "exA1_3",
    "what theta is and why only theta is searched, in words",
    kind="manual",
    answers={"answer_theta": words(30)},
)
def exA1_3(answer_theta: Any) -> CheckResult:
    """Exercise A1.3 (words, graded by hand): the role of theta in the fit.

    Parameters
    ----------
    answer_theta : str
        Three to five sentences.

    Examples
    --------
    >>> exA1_3("theta").status
    'incorrect'
    """
    v = Verdict("exA1_3")
    v.text(
        "answer_theta",
        answer_theta,
        ideas=[
            (
                r"relative|ratio|divided|sigma|σ",
                "that theta measures the random effects relative to sigma?",
            ),
            (
                r"closed form|least squares|profil|solve|formula|directly",
                "how beta and sigma are found once theta is fixed?",
            ),
            (r"ols|ordinary|no random|zero", "what theta = 0 means?"),
        ],
    )
    return v.result()


@exercise(
    "exA1_4", "simulated drivers and cars: theta-hat against the true theta", points=2, seed=_SEEDA1
)
def exA1_4(theta_true_sim: Any, theta_hat_sim: Any, *, student_id: Any = None) -> CheckResult:
    """Exercise A1.4: true and estimated theta of ``mpg ~ 1 + (1 | driver) + (1 | car)``.

    The data are ``simulate.drivers_cars(n_drivers=30, n_cars=25, rng=seed)``, where
    ``seed = check.variant_seed("exA1_4", student_id)``: each student's own draw (3 without a
    student id, the public variant). Both answers are in the order of ``design.theta_names``.

    Parameters
    ----------
    theta_true_sim : sequence of float
        The true theta, each factor's true SD divided by the true sigma (``attrs["truth"]``).
    theta_hat_sim : sequence of float
        ``optimize_theta(deviance_function(design, REML=True)).theta``.
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> exA1_4((1.0, 2.0, 3.0), ...).status
    'incorrect'
    """
    v = Verdict("exA1_4")
    seed = variant_seed("exA1_4", student_id)

    def t() -> dict[str, Any]:
        return _chA1_sim(seed)

    judge_pair(
        v,
        "theta_true_sim",
        theta_true_sim,
        lambda: t()["true"],
        what="the true theta",
        hint="theta is relative to sigma: tau_driver / sigma and tau_car / sigma.",
        slips=lambda: [
            (t()["true_inverse"], "these are sigma / tau; theta is tau / sigma."),
            (t()["true_squared"], "these are ratios of variances; theta is a ratio of SDs."),
            (t()["true_tau"], "these are the SDs tau themselves; divide by sigma."),
            (t()["hat"], "these are the estimates; the question asks for the true values."),
        ],
    )
    judge_pair(
        v,
        "theta_hat_sim",
        theta_hat_sim,
        lambda: t()["hat"],
        what="the REML estimate of theta",
        hint="optimize_theta(deviance_function(design, REML=True)).theta on the design.",
        slips=lambda: [
            (t()["hat_ml"], "this is the ML optimum; use REML (the default)."),
            (t()["hat_squared"], "these are squared; theta is a ratio of SDs."),
            (t()["true"], "these are the true values; estimate theta from the data."),
        ],
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        off = [abs(h / s - 1) for h, s in zip(truth["hat"], truth["true"], strict=True)]
        result.message = (
            "every part is right. The estimates miss the true theta by "
            f"{100 * off[0]:.0f} % (drivers) and {100 * off[1]:.0f} % (cars)."
        )
    return result


# The checks, and the right answers they compute (the tests compare them with lme4 and the truth).
__all__ = [
    *(q.qid for q in questions("A1")),
    "_chA1_penicillin",
    "_chA1_sim",
]
