"""Checks of chapter 3, the null model: ``ex03_1``, ``ex03_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from mlmprimer.check.core import (
    MORE_LESS,
    Z95,
    Z99,
    CheckResult,
    Unreadable,
    Verdict,
    exercise,
    fit_cached,
    fixef_se,
    intercept_variance,
    is_unanswered,
    lme4_theta_slip,
    load_data,
    prediction,
    questions,
    read_pair,
    variant_seed,
    words,
)

# not the chapter's sleep study, whose null model the chapter prints: the orthodontic children
_NULL03 = "distance ~ 1 + (1 | Subject)"
_DATA03 = "orthodont"
_SIM03 = {"n_subjects": 6, "n_obs": 10, "reps": 100}
_SEED03 = 0  # public variant of exercise 3.5 (studies 0..99); each student has their own


@functools.cache
def _ch03_null() -> dict[str, float]:
    reml = fit_cached(_NULL03, _DATA03)
    ml = fit_cached(_NULL03, _DATA03, REML=False)
    tau2, sigma2 = intercept_variance(reml, "Subject"), float(reml.sigma) ** 2
    return {
        "beta0": float(reml.fixef["(Intercept)"]),
        "se_beta0": fixef_se(reml, "(Intercept)"),
        "tau2": tau2,
        "sigma2": sigma2,
        "tau2_ml": intercept_variance(ml, "Subject"),
        "sigma2_ml": float(ml.sigma) ** 2,
        "mean": float(load_data(_DATA03)["distance"].mean()),
        # lme4's theta: the covariance parameter tau / sigma, often confused with the grand mean
        "theta_lme4": float(np.asarray(reml.theta, dtype=float)[0]),
        # statsmodels' own parameter "Subject Var" (its params) is tau^2 / sigma^2, not tau^2
        "ratio_sm": tau2 / sigma2,
    }


def _ch03_ml_reml_replicates(
    n_subjects: int, n_obs: int, reps: int, first: int = 0
) -> dict[str, float]:
    """Mean REML and ML estimates of tau^2 over ``reps`` simulated studies.

    Study ``k`` is drawn with the seed ``first + k`` (``k = 0, ..., reps - 1``).
    """
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    reml, ml = [], []
    for seed in range(first, first + reps):
        df = simulate.reaction_times(n_subjects=n_subjects, n_obs=n_obs, rng=seed)
        reml.append(intercept_variance(lmer("reaction ~ 1 + (1 | subject)", df), "subject"))
        ml.append(
            intercept_variance(lmer("reaction ~ 1 + (1 | subject)", df, REML=False), "subject")
        )
    tau = simulate.reaction_times(n_subjects=2, n_obs=1).attrs["truth"]["tau"]
    return {"reml": float(np.mean(reml)), "ml": float(np.mean(ml)), "tau2": tau**2}


@functools.cache
def _ch03_sim(seed: int = _SEED03) -> dict[str, float]:
    return _ch03_ml_reml_replicates(**_SIM03, first=seed)


def _interval_part(v: Verdict, name: str, value: Any, z: float, what: str, hint: str) -> None:
    t = _ch03_null()
    beta0, tau, sigma = t["beta0"], math.sqrt(t["tau2"]), math.sqrt(t["sigma2"])
    if is_unanswered(value):
        v.add(name, "unanswered", "not answered yet.")
        return
    try:
        low, high = read_pair(value)
    except Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.", hint)
        return
    low, high = min(low, high), max(low, high)

    def near(centre: float, half: float) -> bool:
        # limits rounded to 0.1 mm, from estimates rounded as printed, still pass
        tol = 0.03 * half
        return abs(low - (centre - half)) <= tol and abs(high - (centre + half)) <= tol

    # z itself or z rounded to two decimals (1.96, 2.58)
    if any(near(beta0, zz * tau) for zz in (z, round(z, 2))):
        v.add(name, "correct", f"right: this is {what}.")
    elif near(beta0, z * sigma):
        v.add(
            name,
            "incorrect",
            "this range uses sigma, the spread of single measurements around a child's own "
            "average; children's averages spread with tau.",
            hint,
        )
    elif near(beta0, z * t["tau2"]):
        v.add(name, "incorrect", "this range uses the variance tau^2; use the SD tau.", hint)
    elif near(beta0, z * math.sqrt(t["tau2"] + t["sigma2"])):
        v.add(
            name,
            "incorrect",
            "this range combines tau and sigma: it is for single measurements of a new child, "
            "not for children's averages.",
            hint,
        )
    elif near(beta0, z * t["se_beta0"]):
        v.add(
            name,
            "incorrect",
            "this is a confidence interval for the grand mean beta_0; the question asks where "
            "the children's own averages lie.",
            hint,
        )
    elif near(beta0, 1.959964 * tau) or near(beta0, 2.575829 * tau):
        v.add(name, "incorrect", "right idea, wrong multiplier: check 95 % against 99 %.", hint)
    else:
        v.add(name, "incorrect", f"not {what}.", hint)


@exercise("ex03_1", "orthodont null model: beta_0, tau^2 and sigma^2", points=3)
def ex03_1(beta0_hat: Any, tau2_hat: Any, sigma2_hat: Any) -> CheckResult:
    """Exercise 3.1: the three parameters of ``distance ~ 1 + (1 | Subject)`` (REML).

    The model is fitted to ``orthodont``, the jaw distances of the children of an orthodontic
    study (the chapter fits the sleep study).

    Parameters
    ----------
    beta0_hat : float
        The grand mean :math:`\\hat\\beta_0` (mm), the fixed intercept.
    tau2_hat : float
        The between-child variance :math:`\\hat\\tau^2` (mm²).
    sigma2_hat : float
        The residual variance :math:`\\hat\\sigma^2` (mm²).

    Examples
    --------
    >>> ex03_1(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex03_1")
    t = _ch03_null
    sd_msg = "this looks like the SD ({}); the question asks for the variance ({}^2)."
    v.number(
        "beta0_hat",
        beta0_hat,
        lambda: t()["beta0"],
        what="the estimated grand mean",
        slips=lambda: [
            lme4_theta_slip(
                fit_cached(_NULL03, _DATA03), "the grand mean beta_0 is the fixed intercept"
            )
        ],
        hint="m.fixef['(Intercept)']",
    )
    v.number(
        "tau2_hat",
        tau2_hat,
        lambda: t()["tau2"],
        what="the between-child variance",
        slips=lambda: [
            (math.sqrt(t()["tau2"]), sd_msg.format("tau", "tau")),
            (t()["sigma2"], "this is the residual variance sigma^2, not tau^2."),
            (t()["tau2_ml"], "this is the ML estimate; the question asks for the REML fit."),
            (
                t()["ratio_sm"],
                "this is statsmodels' parameter 'Subject Var', the ratio tau^2 / sigma^2; "
                "tau^2 itself is cov_re (the ratio times scale).",
            ),
        ],
        hint="the vcov column of m.varcorr, row Subject.",
    )
    v.number(
        "sigma2_hat",
        sigma2_hat,
        lambda: t()["sigma2"],
        what="the residual variance",
        slips=lambda: [
            (math.sqrt(t()["sigma2"]), sd_msg.format("sigma", "sigma")),
            (t()["tau2"], "this is the between-child variance tau^2, not sigma^2."),
        ],
        hint="m.sigma is the residual SD.",
    )
    return v.result()


@exercise("ex03_2", "95 % and 99 % ranges of the children's averages", points=2)
def ex03_2(range95: Any, range99: Any) -> CheckResult:
    """Exercise 3.2: where 95 % and 99 % of children's average distances lie, by the model.

    Parameters
    ----------
    range95, range99 : tuple of float
        ``(lower, upper)`` in mm.

    Examples
    --------
    >>> print(ex03_2((1, 2, 3), ...))
    ✗ ex03_2 (exercise 3.2) not right yet: 0 of 2 right.
      ✗ range95: expected two numbers, (lower, upper), got a tuple of length 3.
      … range99: not answered yet.
      hint: beta_0 plus and minus z times the right standard deviation.
    """
    v = Verdict("ex03_2")
    hint = "beta_0 plus and minus z times the right standard deviation."
    _interval_part(v, "range95", range95, Z95, "the 95 % range of children's averages", hint)
    _interval_part(v, "range99", range99, Z99, "the 99 % range of children's averages", hint)
    return v.result()


@exercise(
    "ex03_3",
    "what tau and sigma say about a new child, in words",
    kind="manual",
    answers={"answer_new_subject": words(30)},
)
def ex03_3(answer_new_subject: Any) -> CheckResult:
    """Exercise 3.3 (words, graded by hand): tau and sigma for a new child.

    Parameters
    ----------
    answer_new_subject : str
        Three to five sentences.

    Examples
    --------
    >>> ex03_3(42).status
    'incorrect'
    """
    v = Verdict("ex03_3")
    v.text(
        "answer_new_subject",
        answer_new_subject,
        ideas=[
            (r"tau|τ|between", "what tau describes (the spread of children's own averages)?"),
            (
                r"sigma|σ|within|residual",
                "what sigma describes (the spread of one child's measurements)?",
            ),
            (r"\bmm\b|millimet|\d", "how big these spreads are, in millimetres?"),
        ],
    )
    return v.result()


@exercise(
    "ex03_4",
    "ML against REML: predict, then refit",
    points=2,
    answers={"prediction_ml": prediction(MORE_LESS)},
)
def ex03_4(prediction_ml: Any, tau2_ml: Any) -> CheckResult:
    """Exercise 3.4: the ML estimate of :math:`\\tau^2` for the null model of exercise 3.1.

    Parameters
    ----------
    prediction_ml : str
        Written before fitting: will the ML estimate of tau^2 be ``"larger"``, ``"smaller"`` or
        the ``"same"`` as the REML one?
    tau2_ml : float
        :math:`\\hat\\tau^2` of the ML fit (``REML=False``).

    Examples
    --------
    >>> ex03_4("bigger", ...).status
    'partial'
    """
    v = Verdict("ex03_4")
    t = _ch03_null
    v.number(
        "tau2_ml",
        tau2_ml,
        lambda: t()["tau2_ml"],
        what="the ML estimate of tau^2",
        slips=lambda: [
            (t()["tau2"], "this is the REML estimate; refit with REML=False."),
            (math.sqrt(t()["tau2_ml"]), "this looks like the SD tau; the question asks for tau^2."),
            (t()["sigma2_ml"], "this is the residual variance sigma^2."),
        ],
        hint="mlm.lmer(..., REML=False), then the vcov column of varcorr.",
    )
    truth = t()
    v.prediction(
        "prediction_ml",
        prediction_ml,
        truth=lambda: "smaller" if truth["tau2_ml"] < truth["tau2"] else "larger",
        reveal=v.ok("tau2_ml"),
    )
    return v.result()


@exercise("ex03_5", "simulated studies: the bias of ML against the truth", points=2, seed=_SEED03)
def ex03_5(mean_tau2_reml: Any, mean_tau2_ml: Any, *, student_id: Any = None) -> CheckResult:
    """Exercise 3.5: average REML and ML estimates of tau^2 over 100 simulated small studies.

    Study ``k`` (``k = 0, ..., 99``) is ``simulate.reaction_times(n_subjects=6, n_obs=10,
    rng=seed + k)``, where ``seed = check.variant_seed("ex03_5", student_id)`` (0 without a
    student id, the public variant); the true :math:`\\tau^2` is in ``attrs["truth"]``.

    Parameters
    ----------
    mean_tau2_reml, mean_tau2_ml : float
        The mean over the 100 studies of :math:`\\hat\\tau^2` by REML and by ML.
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> ex03_5(..., ...).status
    'unanswered'
    """
    v = Verdict("ex03_5")
    seed = variant_seed("ex03_5", student_id)

    def t() -> dict[str, float]:
        return _ch03_sim(seed)

    v.number(
        "mean_tau2_reml",
        mean_tau2_reml,
        lambda: t()["reml"],
        what="the mean REML estimate",
        rel=0.02,
        slips=lambda: [
            (t()["ml"], "this is the mean ML estimate."),
            (math.sqrt(t()["reml"]), "this looks like an SD; average the variances tau^2."),
        ],
        hint="fit each of the 100 studies (seeds seed to seed + 99) and average the 100 tau^2.",
    )
    v.number(
        "mean_tau2_ml",
        mean_tau2_ml,
        lambda: t()["ml"],
        what="the mean ML estimate",
        rel=0.02,
        slips=lambda: [
            (t()["reml"], "this is the mean REML estimate; refit with REML=False."),
            (math.sqrt(t()["ml"]), "this looks like an SD; average the variances tau^2."),
        ],
        hint="the same 100 studies, fitted with REML=False.",
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        result.message = (
            f"every part is right. Against the true tau^2 of {truth['tau2']:.0f}, REML is off by "
            f"{100 * (truth['reml'] / truth['tau2'] - 1):+.0f} % on average and ML by "
            f"{100 * (truth['ml'] / truth['tau2'] - 1):+.0f} %."
        )
    return result


# The checks, and the right answers they compute (the tests compare them with lme4 and the truth).
__all__ = [
    *(q.qid for q in questions("03")),
    "_ch03_null",
    "_ch03_ml_reml_replicates",
    "_ch03_sim",
]
