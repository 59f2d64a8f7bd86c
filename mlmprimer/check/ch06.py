"""Checks of chapter 6, random slopes: ``ex06_1``, ``ex06_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from mlmprimer.check.core import (
    MORE_LESS,
    YES_NO,
    Z95,
    CheckResult,
    Verdict,
    close_to,
    exercise,
    fit_cached,
    fixef_se,
    judge_range,
    load_data,
    option,
    prediction,
    questions,
    varcorr_row,
    variant_seed,
    words,
)

_CSES_INT = "mAch ~ cses + (1 | school)"
_CSES_UNC = "mAch ~ cses + (1 | school) + (0 + cses | school)"
_CSES_COR = "mAch ~ cses + (1 + cses | school)"
_SES_COR = "mAch ~ ses + (1 + ses | school)"
_OX = "height ~ age + (age | Subject)"
_ESTIMATES_06 = {
    "tau_0": ("tau0", "tau 0", "intercept sd", "the intercept sd"),
    "tau_1": ("tau1", "tau 1", "slope sd", "the slope sd"),
    "rho": ("correlation", "the correlation", "rho hat"),
}
_SIM06: dict[str, Any] = {"n_schools": 80, "n_students": 25}
_SEED06 = 6  # public variant of exercise 6.5; each student has their own


@functools.cache
def _ch06_cses() -> dict[str, float]:
    m, ms = fit_cached(_CSES_COR, "hsb"), fit_cached(_SES_COR, "hsb")
    tau1_var, tau1 = varcorr_row(m, "school", "cses")
    _, tau0 = varcorr_row(m, "school", "(Intercept)")
    cov, rho = varcorr_row(m, "school", "(Intercept)", "cses")
    _, tau1_ses = varcorr_row(ms, "school", "ses")
    _, rho_ses = varcorr_row(ms, "school", "(Intercept)", "ses")
    return {
        "tau1": tau1,
        "tau1_var": tau1_var,
        "tau0": tau0,
        "rho": rho,
        "cov": cov,
        "b1": float(m.fixef["cses"]),
        "se_b1": fixef_se(m, "cses"),
        "sigma": float(m.sigma),
        "tau1_ses": tau1_ses,
        "rho_ses": rho_ses,
        "b1_ses": float(ms.fixef["ses"]),
    }


@functools.cache
def _ch06_compare() -> dict[str, float]:
    from mlmprimer.compare import compare

    mi, mu, mc = (
        fit_cached(_CSES_INT, "hsb"),
        fit_cached(_CSES_UNC, "hsb"),
        fit_cached(_CSES_COR, "hsb"),
    )
    three = compare(mi, mu, mc, names=["int", "unc", "cor"], verbose=False)
    both = compare(mi, mc, names=["int", "cor"], verbose=False)
    ml = compare(mi, mu, names=["int", "unc"], refit=True, verbose=False)
    return {
        "chisq": float(three.loc["unc", "Chisq"]),
        "p_naive": float(three.loc["unc", "Pr(>Chisq)"]),
        "p_mix": float(three.loc["unc", "Pr(>Chisq) mixture"]),
        "chisq_rho": float(three.loc["cor", "Chisq"]),
        "p_both": float(both.loc["cor", "Pr(>Chisq)"]),
        "p_both_mix": float(both.loc["cor", "Pr(>Chisq) mixture"]),
        "chisq_ml": float(ml.loc["unc", "Chisq"]),
        "p_ml_mix": float(ml.loc["unc", "Pr(>Chisq) mixture"]),
        "loglik_diff": float(mu.loglik - mi.loglik),
    }


@functools.cache
def _ch06_oxboys() -> dict[str, float]:
    from mlmprimer.model import lmer

    ox = load_data("oxboys")
    m = fit_cached(_OX, "oxboys")
    start = lmer("height ~ age_start + (age_start | Subject)", ox.assign(age_start=ox["age"] + 1))
    t0, tau0 = varcorr_row(m, "Subject", "(Intercept)")
    t1, tau1 = varcorr_row(m, "Subject", "age")
    c, rho = varcorr_row(m, "Subject", "(Intercept)", "age")
    var_start, tau0_start = varcorr_row(start, "Subject", "(Intercept)")
    _, rho_start = varcorr_row(start, "Subject", "(Intercept)", "age_start")
    _, tau1_start = varcorr_row(start, "Subject", "age_start")
    tau0_end = math.sqrt(t0 + 2 * c + t1)
    return {
        "tau0": tau0,
        "rho": rho,
        "tau0_start": tau0_start,
        "var_start": var_start,
        "rho_start": rho_start,
        "tau0_end": tau0_end,
        "rho_end": (c + t1) / (tau0_end * tau1),
        "tau1": tau1,
        "tau1_start": tau1_start,
    }


@functools.cache
def _ch06_sim(seed: int = _SEED06) -> dict[str, Any]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    sim = simulate.schools_ses(**_SIM06, rng=seed)
    m = lmer("math ~ ses + (ses | school)", sim)
    tau1_var, tau1 = varcorr_row(m, "school", "ses")
    _, tau0 = varcorr_row(m, "school", "(Intercept)")
    _, rho = varcorr_row(m, "school", "(Intercept)", "ses")
    return {
        "tau1": tau1,
        "tau1_var": tau1_var,
        "tau0": tau0,
        "rho": rho,
        "b0": float(m.fixef["(Intercept)"]),
        "se_b0": fixef_se(m, "(Intercept)"),
        "b1": float(m.fixef["ses"]),
        "se_b1": fixef_se(m, "ses"),
        "truth": dict(sim.attrs["truth"]),
    }


@exercise("ex06_1", "slopes of centred SES: tau_1, rho and the range of slopes", points=3)
def ex06_1(tau1_cses: Any, rho_cses: Any, slope_range_cses: Any) -> CheckResult:
    """Exercise 6.1: the random part of ``mAch ~ cses + (1 + cses | school)`` (REML, ``hsb``).

    Parameters
    ----------
    tau1_cses : float
        :math:`\\hat\\tau_1`, the standard deviation of the schools' ``cses`` slopes.
    rho_cses : float
        :math:`\\hat\\rho`, the correlation of a school's intercept and slope.
    slope_range_cses : tuple of float
        ``(lower, upper)``: where 95 % of the schools' slopes lie by the model,
        :math:`\\hat\\beta_1 \\pm 1.96\\,\\hat\\tau_1`.

    Examples
    --------
    >>> ex06_1(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex06_1")
    t = _ch06_cses
    v.number(
        "tau1_cses",
        tau1_cses,
        lambda: t()["tau1"],
        what="the standard deviation of the cses slopes",
        slips=lambda: [
            (t()["tau1_var"], "this looks like the variance tau_1^2; the question asks for tau_1."),
            (t()["tau0"], "this is tau_0, the SD of the intercepts."),
            (t()["tau1_ses"], "this is the slope SD of the model with ses; use cses here."),
            (t()["sigma"], "this is the residual SD sigma."),
        ],
        hint="the sdcor column of m.varcorr, row school / cses.",
    )
    v.number(
        "rho_cses",
        rho_cses,
        lambda: t()["rho"],
        what="the intercept-slope correlation",
        abs_tol=0.005,
        slips=lambda: [
            (t()["cov"], "this is the covariance (vcov); the correlation is in sdcor."),
            (t()["rho_ses"], "this is the correlation of the model with ses; use cses here."),
        ],
        hint="the row of m.varcorr whose var2 is cses holds the correlation in sdcor.",
    )
    truth = t()
    judge_range(
        v,
        "slope_range_cses",
        slope_range_cses,
        truth["b1"],
        Z95 * truth["tau1"],
        what="the 95 % range of the schools' slopes",
        hint="beta_1 plus and minus 1.96 times the SD of the slopes.",
        slips=[
            (truth["b1"], Z95 * truth["tau1_var"], "this range uses the variance tau_1^2."),
            (
                truth["b1"],
                Z95 * truth["se_b1"],
                "this is a confidence interval for the average slope beta_1; the question asks "
                "where the schools' own slopes lie, which is set by tau_1.",
            ),
            (
                truth["b1_ses"],
                Z95 * truth["tau1_ses"],
                "this is the range of the model with ses; use cses here.",
            ),
        ],
    )
    return v.result()


@exercise(
    "ex06_2",
    "do the cses slopes vary? The boundary-corrected test",
    points=2,
    answers={"naive_p_cses": option(MORE_LESS)},
)
def ex06_2(chisq_slope_cses: Any, p_mixture_cses: Any, naive_p_cses: Any) -> CheckResult:
    """Exercise 6.2: likelihood-ratio test of ``(1 | school)`` against an uncorrelated slope.

    The models are ``mAch ~ cses + (1 | school)`` and ``mAch ~ cses + (1 | school) + (0 + cses
    | school)``, both by REML, compared with ``mlmprimer.compare``.

    Parameters
    ----------
    chisq_slope_cses : float
        The likelihood-ratio statistic, twice the difference of the log-likelihoods.
    p_mixture_cses : float
        The p-value from the 50:50 mixture of chi^2_0 and chi^2_1.
    naive_p_cses : str
        Whether the naive chi^2_1 p-value is ``"larger"`` or ``"smaller"`` than the mixture one
        (or the ``"same"``).

    Examples
    --------
    >>> ex06_2(-3, ..., ...).status
    'incorrect'
    """
    v = Verdict("ex06_2")
    t = _ch06_compare
    ml_msg = (
        "this comes from ML refits (what R's anova() does unless given refit = FALSE); models "
        "that differ only in their random effects are compared on the REML criterion "
        "(compare's default here)."
    )
    v.number(
        "chisq_slope_cses",
        chisq_slope_cses,
        lambda: t()["chisq"],
        what="the likelihood-ratio statistic",
        slips=lambda: [
            (t()["loglik_diff"], "this is the difference of the log-likelihoods; double it."),
            (t()["chisq_ml"], ml_msg),
            (t()["chisq_rho"], "this compares the correlated with the uncorrelated model."),
        ],
        hint="mlm.compare(m_int, m_unc) and its Chisq column.",
    )
    v.number(
        "p_mixture_cses",
        p_mixture_cses,
        lambda: t()["p_mix"],
        what="the mixture p-value",
        rel=0.03,
        abs_tol=1.1e-4,
        slips=lambda: [
            (
                t()["p_naive"],
                "this is the naive chi^2_1 p-value; tau_1^2 = 0 lies on the boundary, so use the "
                "mixture.",
            ),
            (2 * t()["p_naive"], "this doubles the p-value; the mixture halves it."),
            (
                t()["p_both_mix"],
                "this tests the correlated model (slope variance and covariance) against random "
                "intercepts; the question adds the slope variance only.",
            ),
            (t()["p_both"], "this is the naive test of the correlated model."),
            (t()["p_ml_mix"], ml_msg),
        ],
        hint="the column 'Pr(>Chisq) mixture', on the row of the uncorrelated model.",
    )
    v.option(
        "naive_p_cses",
        naive_p_cses,
        lambda: "larger" if t()["p_naive"] > t()["p_mix"] else "smaller",
        what=(
            "the naive p-value is larger. Under tau_1^2 = 0 the variance sits on the edge of its "
            "possible values, the statistic is 0 half of the time, and chi^2_1 overstates the "
            "p-value: a test that is too cautious"
        ),
        hint="compare the columns 'Pr(>Chisq)' and 'Pr(>Chisq) mixture' of the comparison.",
    )
    return v.result()


@exercise(
    "ex06_3",
    "Oxford boys: moving the zero of age, predict then refit",
    points=3,
    answers={
        "prediction_tau0_start": prediction(MORE_LESS),
        "unchanged_start": option(_ESTIMATES_06),
    },
)
def ex06_3(
    prediction_tau0_start: Any, tau0_start: Any, rho_start: Any, unchanged_start: Any
) -> CheckResult:
    """Exercise 6.3: ``height ~ age + (age | Subject)`` with age counted from the first occasion.

    ``age_start = age + 1`` is 0 at the first measurement (``age`` runs from -1 to 1).

    Parameters
    ----------
    prediction_tau0_start : str
        Written before fitting: will :math:`\\hat\\tau_0` with ``age_start`` be ``"larger"``,
        ``"smaller"`` or the ``"same"`` as with ``age``?
    tau0_start : float
        :math:`\\hat\\tau_0` of ``height ~ age_start + (age_start | Subject)`` (cm).
    rho_start : float
        Its intercept-slope correlation.
    unchanged_start : str
        Which of ``"tau_0"``, ``"tau_1"`` and ``"rho"`` is the same in both models.

    Examples
    --------
    >>> ex06_3("bigger", ..., ..., ...).status
    'partial'
    """
    v = Verdict("ex06_3")
    t = _ch06_oxboys
    v.number(
        "tau0_start",
        tau0_start,
        lambda: t()["tau0_start"],
        what="the SD of the boys' heights at the first occasion",
        slips=lambda: [
            (t()["tau0"], "this is tau_0 of the model with age: at the middle of the study."),
            (t()["var_start"], "this looks like the variance; the question asks for the SD."),
            (t()["tau0_end"], "this is tau_0 at the last occasion: age_start = age + 1."),
            (t()["tau1"], "this is tau_1, the SD of the growth rates."),
        ],
        hint="refit with age_start = age + 1 and read sdcor of the (Intercept) row.",
    )
    v.number(
        "rho_start",
        rho_start,
        lambda: t()["rho_start"],
        what="the correlation at the first occasion",
        abs_tol=0.005,
        slips=lambda: [
            (t()["rho"], "this is the correlation of the model with age (middle of the study)."),
            (t()["rho_end"], "this is the correlation at the last occasion."),
        ],
        hint="the sdcor of the row whose var2 is age_start.",
    )

    def unchanged() -> str:
        pairs = {
            "tau_0": (t()["tau0"], t()["tau0_start"]),
            "tau_1": (t()["tau1"], t()["tau1_start"]),
            "rho": (t()["rho"], t()["rho_start"]),
        }
        same = [k for k, (a, b) in pairs.items() if close_to(b, a, 1e-4)]
        return same[0] if len(same) == 1 else ""

    v.option(
        "unchanged_start",
        unchanged_start,
        unchanged,
        what=(
            "tau_1, the spread of the growth rates, does not depend on where age starts; tau_0 "
            "and rho describe the lines at age 0, which has moved"
        ),
        hint="print m.varcorr of both models side by side.",
    )
    truth = t()
    v.prediction(
        "prediction_tau0_start",
        prediction_tau0_start,
        truth=lambda: "smaller" if truth["tau0_start"] < truth["tau0"] else "larger",
        reveal=v.ok("tau0_start"),
    )
    return v.result()


@exercise(
    "ex06_4",
    "why slopes are shrunk harder than intercepts, in words",
    kind="manual",
    answers={"answer_slope_shrinkage": words(30)},
)
def ex06_4(answer_slope_shrinkage: Any) -> CheckResult:
    """Exercise 6.4 (words, graded by hand): why school slopes are shrunk so hard.

    Parameters
    ----------
    answer_slope_shrinkage : str
        Three to five sentences.

    Examples
    --------
    >>> ex06_4(["a", "list"]).status
    'incorrect'
    """
    v = Verdict("ex06_4")
    v.text(
        "answer_slope_shrinkage",
        answer_slope_shrinkage,
        ideas=[
            (
                r"spread|range|narrow|similar|vari\w* of (ses|x)|sum of squares",
                "how much SES varies within one school, and why that matters for a slope?",
            ),
            (r"noise|uncertain|precis|sampling|standard error|reliab", "how precise a slope is?"),
            (r"weight|shrink|pull|average slope|borrow|pool", "what the model does with it?"),
        ],
    )
    return v.result()


@exercise(
    "ex06_5",
    "simulated schools: slope SD and the average slope against the truth",
    points=2,
    answers={"covers_beta1_sim": option(YES_NO)},
    seed=_SEED06,
)
def ex06_5(
    tau1_sim: Any, ci_beta1_sim: Any, covers_beta1_sim: Any, rho_sim: Any, *, student_id: Any = None
) -> CheckResult:
    """Exercise 6.5: ``math ~ ses + (ses | school)`` on simulated schools with a known truth.

    The data are ``simulate.schools_ses(n_schools=80, n_students=25, rng=seed)``, where
    ``seed = check.variant_seed("ex06_5", student_id)``: each student's own draw (6 without a
    student id, the public variant).

    Parameters
    ----------
    tau1_sim : float
        The estimated SD of the schools' slopes, :math:`\\hat\\tau_1`.
    ci_beta1_sim : tuple of float
        The 95 % Wald interval ``(lower, upper)`` of the average slope :math:`\\beta_1`.
    covers_beta1_sim : str
        ``"yes"`` or ``"no"``: does the interval contain the true :math:`\\beta_1`?
    rho_sim : float
        The estimated correlation of the schools' intercepts and slopes, :math:`\\hat\\rho`.
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> ex06_5(..., ..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex06_5")
    seed = variant_seed("ex06_5", student_id)

    def t() -> dict[str, Any]:
        return _ch06_sim(seed)

    v.number(
        "tau1_sim",
        tau1_sim,
        lambda: t()["tau1"],
        what="the estimated SD of the slopes",
        slips=lambda: [
            (t()["tau1_var"], "this looks like the variance tau_1^2; the question asks for tau_1."),
            (
                t()["truth"]["tau1"],
                "this is the true value from attrs['truth']; the question asks for the estimate.",
            ),
            (t()["tau0"], "this is tau_0, the SD of the intercepts."),
        ],
        hint="fit the model and read the sdcor of the school / ses row of m.varcorr.",
    )
    truth = t()
    judge_range(
        v,
        "ci_beta1_sim",
        ci_beta1_sim,
        truth["b1"],
        Z95 * truth["se_b1"],
        what="the 95 % interval of the average slope",
        hint="m.tidy(conf_int=True) has conf.low and conf.high; or beta_1 -/+ 1.96 SE.",
        slips=[
            (
                truth["b0"],
                Z95 * truth["se_b0"],
                "this is the interval of the intercept; the question asks for the slope of ses.",
            ),
            (
                truth["b1"],
                Z95 * truth["tau1"],
                "this is where 95 % of the schools' slopes lie (it uses tau_1), not an interval "
                "for the average slope.",
            ),
            (truth["b1"], truth["se_b1"], "this is plus and minus one SE, a 68 % interval."),
        ],
    )
    low, high = truth["b1"] - Z95 * truth["se_b1"], truth["b1"] + Z95 * truth["se_b1"]
    covers = low <= truth["truth"]["beta1"] <= high
    v.option(
        "covers_beta1_sim",
        covers_beta1_sim,
        lambda: "yes" if covers else "no",
        what=f"the interval {'contains' if covers else 'misses'} the true beta_1",
        hint="the true beta_1 is in attrs['truth']['beta1'].",
    )
    v.number(
        "rho_sim",
        rho_sim,
        lambda: truth["rho"],
        what="the estimated correlation of the intercepts and slopes",
        abs_tol=0.005,
        slips=lambda: [
            (truth["truth"]["rho"], "this is the true value; the question asks for the estimate."),
        ],
        hint="the sdcor of the row of m.varcorr whose var2 is ses.",
    )
    result = v.result()
    if result.status == "correct":
        true_tau1, true_rho = truth["truth"]["tau1"], truth["truth"]["rho"]
        result.message = (
            "every part is right. The estimated slope SD is "
            f"{abs(100 * (truth['tau1'] / true_tau1 - 1)):.0f} % "
            f"{'above' if truth['tau1'] > true_tau1 else 'below'} the true one; the estimated "
            f"correlation is {abs(truth['rho'] - true_rho):.2f} "
            f"{'above' if truth['rho'] > true_rho else 'below'} the true {true_rho:g}."
        )
    return result


# The checks, and the right answers they compute (the tests compare them with lme4 and the truth).
__all__ = [
    *(q.qid for q in questions("06")),
    "_ch06_cses",
    "_ch06_compare",
    "_ch06_oxboys",
    "_ch06_sim",
]
