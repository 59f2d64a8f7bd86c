"""Checks of chapter 8, predictors at two levels: ``ex08_1``, ``ex08_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd

from mlmprimer.check.core import (
    CheckResult,
    Verdict,
    exercise,
    fit_cached,
    fixef_se,
    intercept_variance,
    load_data,
    prediction,
    questions,
    words,
)

_EXAM_WB = "normexam ~ lrt_c + lrt_mean + (1 | school)"
_EXAM_MUNDLAK = "normexam ~ standLRT + lrt_mean + (1 | school)"
_EXAM_RAW = "normexam ~ standLRT + (1 | school)"
_NULL08 = "mAch ~ 1 + (1 | school)"
_MINRTY = "mAch ~ minrty + (1 | school)"
_MINRTY_MUNDLAK = "mAch ~ minority + minority_mean + (1 | school)"
_MINRTY_WB = "mAch ~ minority_c + minority_mean + (1 | school)"
_CL_SLOPE = "normexam ~ lrt_c * lrt_mean + (lrt_c | school)"
_CL_INTERCEPT = "normexam ~ lrt_c * lrt_mean + (1 | school)"
_INTER = "lrt_c:lrt_mean"
_WHICH_VARIANCE = {
    "tau2": (
        "tau 2",
        "tau",
        "tau squared",
        "school",
        "school variance",
        "schools",
        "between",
        "between schools",
        "level 2",
    ),
    "sigma2": (
        "sigma 2",
        "sigma",
        "sigma squared",
        "pupil",
        "pupil variance",
        "pupils",
        "within",
        "within schools",
        "residual",
        "level 1",
    ),
}


def _with_group_mean(data: pd.DataFrame, column: str, group: str, prefix: str) -> pd.DataFrame:
    """``data`` with the group mean of ``column`` (``PREFIX_mean``) and the centred column
    (``PREFIX_c``)."""
    mean = data.groupby(group, observed=True)[column].transform("mean")
    return data.assign(**{f"{prefix}_mean": mean, f"{prefix}_c": data[column] - mean})


def _exam_lrt() -> pd.DataFrame:
    """The exam data with the school mean of ``standLRT`` (``lrt_mean``) and ``lrt_c``."""
    return _with_group_mean(load_data("exam"), "standLRT", "school", "lrt")


@functools.cache
def _ch08_exam() -> dict[str, float]:
    from mlmprimer.model import lmer

    exam = _exam_lrt()
    wb, mundlak = lmer(_EXAM_WB, exam), lmer(_EXAM_MUNDLAK, exam)
    raw = fit_cached(_EXAM_RAW, "exam")
    means = exam.groupby("school", observed=True)[["normexam", "standLRT"]].mean()
    slope = np.polyfit(means["standLRT"], means["normexam"], 1)[0]
    return {
        "within": float(wb.fixef["lrt_c"]),
        "between": float(wb.fixef["lrt_mean"]),
        "contextual": float(mundlak.fixef["lrt_mean"]),
        "mundlak_lrt": float(mundlak.fixef["standLRT"]),
        "raw": float(raw.fixef["standLRT"]),
        "between_ols": float(slope),
        "se_within": fixef_se(wb, "lrt_c"),
        "se_between": fixef_se(wb, "lrt_mean"),
        "se_contextual": fixef_se(mundlak, "lrt_mean"),
    }


@functools.cache
def _ch08_variances() -> dict[str, float]:
    null, minrty = fit_cached(_NULL08, "hsb"), fit_cached(_MINRTY, "hsb")
    t0, t1 = intercept_variance(null, "school"), intercept_variance(minrty, "school")
    s0, s1 = float(null.sigma) ** 2, float(minrty.sigma) ** 2
    return {
        "r_tau2": 1 - t1 / t0,
        "r_sigma2": 1 - s1 / s0,
        "r_tau_sd": 1 - math.sqrt(t1 / t0),
        "r_sigma_sd": 1 - math.sqrt(s1 / s0),
        "kept_tau2": t1 / t0,
        "kept_sigma2": s1 / s0,
        "drop_tau2": t0 - t1,
        "drop_sigma2": s0 - s1,
        "raw": float(minrty.fixef["minrtyYes"]),
        "se_raw": fixef_se(minrty, "minrtyYes"),
    }


@functools.cache
def _ch08_minrty() -> dict[str, float]:
    from mlmprimer.model import lmer

    hsb = load_data("hsb")
    hsb = hsb.assign(minority=(hsb["minrty"] == "Yes").astype(float))
    hsb = _with_group_mean(hsb, "minority", "school", "minority")
    mundlak, wb = lmer(_MINRTY_MUNDLAK, hsb), lmer(_MINRTY_WB, hsb)
    return {
        "within": float(mundlak.fixef["minority"]),
        "contextual": float(mundlak.fixef["minority_mean"]),
        "between": float(wb.fixef["minority_mean"]),
        "se_within": fixef_se(mundlak, "minority"),
        "se_contextual": fixef_se(mundlak, "minority_mean"),
    }


@functools.cache
def _ch08_cross_level() -> dict[str, float]:
    from mlmprimer.model import lmer

    exam = _exam_lrt()
    slope, intercept = lmer(_CL_SLOPE, exam), lmer(_CL_INTERCEPT, exam)
    return {
        "inter": float(slope.fixef[_INTER]),
        "se_slope": fixef_se(slope, _INTER),
        "se_intercept": fixef_se(intercept, _INTER),
        "inter_intercept": float(intercept.fixef[_INTER]),
        "lrt": float(slope.fixef["lrt_c"]),
        "lrt_mean": float(slope.fixef["lrt_mean"]),
        "se_lrt_slope": fixef_se(slope, "lrt_c"),
        "se_lrt_intercept": fixef_se(intercept, "lrt_c"),
    }


_BLEND = (
    "this is the slope of the raw predictor in a random-intercept model without its group mean: "
    "a blend of the within and the between effect."
)


@exercise(
    "ex08_1", "exam: intake score within and between schools, and the contextual effect", points=3
)
def ex08_1(within_lrt: Any, between_lrt: Any, contextual_lrt: Any) -> CheckResult:
    """Exercise 8.1: within, between and contextual effects of ``standLRT`` (REML, ``exam``).

    The models are ``normexam ~ lrt_c + lrt_mean + (1 | school)`` and the Mundlak model
    ``normexam ~ standLRT + lrt_mean + (1 | school)``, with ``lrt_mean`` the school mean of the
    intake score ``standLRT`` and ``lrt_c = standLRT - lrt_mean``.

    Parameters
    ----------
    within_lrt : float
        The coefficient of ``lrt_c``: the within-school effect.
    between_lrt : float
        The coefficient of ``lrt_mean`` next to ``lrt_c``: the between-school effect.
    contextual_lrt : float
        The coefficient of ``lrt_mean`` next to raw ``standLRT``: the contextual effect.

    Examples
    --------
    >>> ex08_1(..., ..., ...).status
    'unanswered'
    >>> ex08_1("a lot", ..., ...).status
    'incorrect'
    """
    v = Verdict("ex08_1")
    t = _ch08_exam
    v.number(
        "within_lrt",
        within_lrt,
        lambda: t()["within"],
        what="the within-school effect of the intake score",
        # the raw slope lies within 1 % of it: three significant digits tell the two apart
        rel=0.003,
        slips=lambda: [
            (t()["raw"], _BLEND),
            (t()["between"], "this is the between-school effect, the coefficient of lrt_mean."),
            (t()["se_within"], "this is the standard error; the question asks for the estimate."),
            (-t()["within"], "the sign is off: pupils with a higher intake score do better at 16."),
        ],
        hint="the coefficient of lrt_c in normexam ~ lrt_c + lrt_mean + (1 | school).",
    )
    v.number(
        "between_lrt",
        between_lrt,
        lambda: t()["between"],
        what="the between-school effect of the intake score",
        slips=lambda: [
            (
                t()["contextual"],
                "this is the contextual effect: lrt_mean next to raw standLRT. The between effect "
                "is lrt_mean next to the school-mean-centred lrt_c.",
            ),
            (t()["within"], "this is the within-school effect, the coefficient of lrt_c."),
            (
                t()["between_ols"],
                "this is an OLS regression of the school means; use the multilevel model.",
            ),
            (t()["raw"], _BLEND),
        ],
        hint="the coefficient of lrt_mean in the model with lrt_c.",
    )
    v.number(
        "contextual_lrt",
        contextual_lrt,
        lambda: t()["contextual"],
        what="the contextual effect",
        slips=lambda: [
            (
                t()["between"],
                "this is the between effect (lrt_mean next to lrt_c); the contextual effect is "
                "lrt_mean next to raw standLRT, between minus within.",
            ),
            (-t()["contextual"], "the sign is off: the contextual effect is between minus within."),
            (
                t()["se_contextual"],
                "this is the standard error; the question asks for the estimate.",
            ),
            (t()["mundlak_lrt"], "this is the coefficient of standLRT in the Mundlak model."),
        ],
        hint="fit normexam ~ standLRT + lrt_mean + (1 | school) and read lrt_mean.",
    )
    return v.result()


#: variance key -> (its name in messages, what it is, the other variance, how to read it)
_VARIANCES = {
    "tau2": ("tau^2", "the school variance", "sigma2", "from varcorr's vcov"),
    "sigma2": ("sigma^2", "the pupil variance", "tau2", "m.sigma is an SD: square it"),
}


def _reduction_part(v: Verdict, name: str, value: Any, key: str) -> None:
    """Judge the proportional reduction of one variance of exercise 8.2, naming the slips."""
    t = _ch08_variances
    label, what, other, source = _VARIANCES[key]
    v.number(
        name,
        value,
        lambda: t()[f"r_{key}"],
        what=f"the proportional reduction of {what}",
        percent=True,
        slips=lambda: [
            (
                t()[f"r_{key[:-1]}_sd"],
                "this is computed from standard deviations; use the variances (square an SD).",
            ),
            (t()[f"kept_{key}"], f"this is the share of {label} that remains; subtract it from 1."),
            (
                t()[f"drop_{key}"],
                f"this is the drop in test points squared; divide it by the null model's {label}.",
            ),
            (t()[f"r_{other}"], f"this is the reduction of {_VARIANCES[other][0]}, not {label}."),
        ],
        hint=f"1 - {label} of the minrty model / {label} of the null model; {source}.",
    )


@exercise(
    "ex08_2",
    "minority: predict, then the reductions of tau^2 and sigma^2",
    points=3,
    answers={"prediction_minrty": prediction(_WHICH_VARIANCE)},
)
def ex08_2(
    prediction_minrty: Any, reduction_tau2_minrty: Any, reduction_sigma2_minrty: Any
) -> CheckResult:
    """Exercise 8.2: proportional reductions of the variances when ``minrty`` is added.

    From ``mAch ~ 1 + (1 | school)`` to ``mAch ~ minrty + (1 | school)``, both by REML (``hsb``).

    Parameters
    ----------
    prediction_minrty : str
        Written before fitting: which variance falls by the larger proportion, ``"tau2"`` (the
        schools') or ``"sigma2"`` (the pupils')?
    reduction_tau2_minrty, reduction_sigma2_minrty : float
        ``1 - tau2_minrty / tau2_null`` and ``1 - sigma2_minrty / sigma2_null``, as fractions.

    Examples
    --------
    >>> ex08_2("tau2", ..., ...).status
    'partial'
    >>> ex08_2("both", ..., ...).status
    'incorrect'
    """
    v = Verdict("ex08_2")
    t = _ch08_variances
    _reduction_part(v, "reduction_tau2_minrty", reduction_tau2_minrty, "tau2")
    _reduction_part(v, "reduction_sigma2_minrty", reduction_sigma2_minrty, "sigma2")
    truth = t()
    v.prediction(
        "prediction_minrty",
        prediction_minrty,
        truth=lambda: "tau2" if truth["r_tau2"] > truth["r_sigma2"] else "sigma2",
        reveal=v.ok("reduction_tau2_minrty") and v.ok("reduction_sigma2_minrty"),
    )
    return v.result()


@exercise("ex08_3", "minority: the Mundlak model's within and contextual effects", points=2)
def ex08_3(within_minrty: Any, contextual_minrty: Any) -> CheckResult:
    """Exercise 8.3: ``mAch ~ minority + minority_mean + (1 | school)`` (REML, ``hsb``).

    ``minority`` is 1 for ``minrty == "Yes"``, ``minority_mean`` its school mean.

    Parameters
    ----------
    within_minrty : float
        The coefficient of ``minority``: the within-school difference.
    contextual_minrty : float
        The coefficient of ``minority_mean``: the contextual effect.

    Examples
    --------
    >>> ex08_3(..., ...).status
    'unanswered'
    """
    v = Verdict("ex08_3")
    t = _ch08_minrty
    v.number(
        "within_minrty",
        within_minrty,
        lambda: t()["within"],
        what="the within-school effect of minority",
        slips=lambda: [
            (_ch08_variances()["raw"], _BLEND),
            (t()["between"], "this is the between-school effect (within plus contextual)."),
            (t()["contextual"], "this is the contextual effect, the coefficient of minority_mean."),
            (
                -t()["within"],
                "the sign is off: minority pupils score lower than their schoolmates.",
            ),
        ],
        hint="the coefficient of minority in the Mundlak model.",
    )
    v.number(
        "contextual_minrty",
        contextual_minrty,
        lambda: t()["contextual"],
        what="the contextual effect of the school's minority share",
        slips=lambda: [
            (
                t()["between"],
                "this is the between effect: minority_mean next to the school-centred minority. "
                "The Mundlak model has raw minority.",
            ),
            (t()["within"], "this is the within effect, the coefficient of minority."),
            (
                t()["se_contextual"],
                "this is the standard error; the question asks for the estimate.",
            ),
            (-t()["contextual"], "the sign is off."),
        ],
        hint="the coefficient of minority_mean in mAch ~ minority + minority_mean + (1 | school).",
    )
    return v.result()


@exercise(
    "ex08_4",
    "intake x school mean: the interaction and its SE with and without the slope",
    points=3,
)
def ex08_4(inter_lrt_mean: Any, se_inter_slope: Any, se_inter_intercept: Any) -> CheckResult:
    """Exercise 8.4: the cross-level interaction ``lrt_c:lrt_mean`` (REML, ``exam``).

    The models are ``normexam ~ lrt_c * lrt_mean + (lrt_c | school)`` and the same with
    ``(1 | school)``; ``lrt_c`` and ``lrt_mean`` are those of exercise 8.1.

    Parameters
    ----------
    inter_lrt_mean : float
        The interaction's estimate in the random-slope model.
    se_inter_slope : float
        Its standard error in the random-slope model.
    se_inter_intercept : float
        Its standard error in the random-intercept model.

    Examples
    --------
    >>> ex08_4(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex08_4")
    t = _ch08_cross_level
    v.number(
        "inter_lrt_mean",
        inter_lrt_mean,
        lambda: t()["inter"],
        what="the cross-level interaction",
        slips=lambda: [
            (
                t()["lrt"],
                "this is the within-school slope of lrt_c in a school of average intake "
                "(lrt_mean = 0); the interaction is how much that slope changes per unit of "
                "lrt_mean.",
            ),
            (t()["lrt_mean"], "this is the main effect of lrt_mean."),
            (
                t()["inter_intercept"],
                "this is the estimate of the model without the random slope, (1 | school).",
            ),
            (t()["se_slope"], "this is the standard error; the question asks for the estimate."),
        ],
        hint="fixef['lrt_c:lrt_mean'] of the random-slope model.",
    )
    v.number(
        "se_inter_slope",
        se_inter_slope,
        lambda: t()["se_slope"],
        what="the interaction's standard error with the random slope",
        slips=lambda: [
            (
                t()["se_intercept"],
                "this is the standard error of the model without the random slope, (1 | school).",
            ),
            (t()["se_slope"] ** 2, "this is the variance; take its square root."),
            (t()["se_lrt_slope"], "this is the standard error of lrt_c, not of the interaction."),
        ],
        hint="the std.error of lrt_c:lrt_mean in m.tidy() of the (lrt_c | school) model.",
    )
    v.number(
        "se_inter_intercept",
        se_inter_intercept,
        lambda: t()["se_intercept"],
        what="the interaction's standard error without the random slope",
        slips=lambda: [
            (t()["se_slope"], "this is the standard error of the model with the random slope."),
            (t()["se_intercept"] ** 2, "this is the variance; take its square root."),
            (
                t()["se_lrt_intercept"],
                "this is the standard error of lrt_c, not of the interaction.",
            ),
        ],
        hint="the std.error of lrt_c:lrt_mean in the (1 | school) model.",
    )
    return v.result()


@exercise(
    "ex08_5",
    "the random-effects assumption and the group mean, in words",
    kind="manual",
    answers={"answer_mundlak": words(40)},
)
def ex08_5(answer_mundlak: Any) -> CheckResult:
    """Exercise 8.5 (words, graded by hand): when a random-intercept slope is biased.

    Parameters
    ----------
    answer_mundlak : str
        Four to six sentences.

    Examples
    --------
    >>> ex08_5("too short").status
    'incorrect'
    """
    v = Verdict("ex08_5")
    v.text(
        "answer_mundlak",
        answer_mundlak,
        ideas=[
            (
                r"correlat|relat|depend|independ|assum",
                "what the model assumes about the group effects and the predictor?",
            ),
            (r"between|toward|blend|mix|pull", "in which direction the estimate is pulled?"),
            (
                r"group mean|school mean|meanses|mundlak|mean of x|xbar|x bar",
                "what the group mean adds to the model?",
            ),
            (r"within|fixed.effect|dumm", "which effect the coefficient of x then estimates?"),
        ],
    )
    return v.result()


# The checks, and the right answers they compute (the tests compare them with lme4's numbers).
__all__ = [
    *(q.qid for q in questions("08")),
    "_ch08_exam",
    "_ch08_variances",
    "_ch08_minrty",
    "_ch08_cross_level",
]
