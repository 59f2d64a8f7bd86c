"""Checks of chapter 10, checking the model: ``ex10_1``, ``ex10_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np
import pandas as pd

from mlmprimer.check.core import (
    YES_NO,
    CheckResult,
    Verdict,
    exercise,
    fit_cached,
    intercept_variance,
    load_data,
    option,
    prediction,
    questions,
    variant_seed,
    words,
)

#: exercise 10.1: the chapter's model of the sleep study, asked of the Oxford boys (the
#: chapter prints the sleep study's answers)
_GROWTH = "height ~ age + (age | Subject)"
_RADON = "log_radon ~ floor + uranium + (1 | county)"
#: exercise 10.4: the chapter's model of Hsb82, asked of the London exam data (the chapter
#: prints Hsb82's R^2)
_EXAM = "normexam ~ standLRT + schavg + schgend + (standLRT | school)"
_EXAM_NULL = "normexam ~ 1 + (1 | school)"
_NO_GROUP = "y ~ x + (1 | g)"
#: the simulation of exercise 10.3: 20 groups of 5, no group effect (tau = 0), this seed for the
#: public variant (each student has their own, ``variant_seed("ex10_3", student_id)``)
NO_GROUP_SEED = 5


def no_group_data(seed: int = NO_GROUP_SEED) -> pd.DataFrame:
    """The data of exercise 10.3: ``y = 2 + 0.5 x + e``, 20 groups of 5 and no group effect.

    Examples
    --------
    >>> no_group_data().shape
    (100, 3)
    """
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(20), 5)
    x = rng.normal(size=100)
    y = 2 + 0.5 * x + rng.normal(size=100)
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"g{k:02d}" for k in g])})


@functools.cache
def _ch10_oxboys() -> dict[str, float]:
    from mlmprimer.diagnostics import augment_groups

    m = fit_cached(_GROWTH, "oxboys")
    per = augment_groups(m)
    slopes = per[per["term"] == "age"].set_index("level")
    intercepts = per[per["term"] == "(Intercept)"].set_index("level")
    sd = slopes[".resid_sd"]
    resid = pd.Series(m.residuals().to_numpy(), index=m.data["Subject"].to_numpy())
    sd0 = resid.groupby(level=0).std(ddof=0)
    top = str(sd.idxmax())
    return {
        "subject": float(top),
        "sd": float(sd.max()),
        "smallest_subject": float(sd.idxmin()),
        "second_subject": float(sd.sort_values().index[-2]),
        "largest_slope_subject": float(slopes[".mode"].abs().idxmax()),
        "largest_intercept_subject": float(intercepts[".mode"].abs().idxmax()),
        "variance": float(sd.max()) ** 2,
        "sd_ddof0": float(sd0[top]),
        "sigma": float(m.sigma),
        "mean_abs": float(resid.loc[top].abs().mean()),
    }


@functools.cache
def _ch10_radon() -> dict[str, float]:
    from mlmprimer.diagnostics import influence_groups

    m = fit_cached(_RADON, "radon")
    inf = influence_groups(m, "county")
    d = inf.cooks_distance
    top = d.idxmax()
    counts = load_data("radon")["county"].value_counts()
    p = len(m.fixef)
    k = len(d)
    return {
        "cooks": float(d.max()),
        "n_top": float(counts[top]),
        "largest_county_is_top": float(top == counts.idxmax()),
        "n_largest": float(counts.max()),
        "n_counties": float(k),
        "unscaled": float(d.max() * k * p / (k - p)),
        "dfbeta_uranium": float(inf.dfbeta.loc[top, "uranium"]),
        "dfbeta_floor": float(inf.dfbeta.loc[top, "floor"]),
        "second": float(d.nlargest(2).iloc[1]),
        "n_second": float(counts[d.nlargest(2).index[1]]),
    }


@functools.cache
def _ch10_singular(seed: int = NO_GROUP_SEED) -> dict[str, float]:
    from mlmprimer.model import lmer

    data = no_group_data(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lmer(_NO_GROUP, data)
    resid_sd = float(np.std(data["y"] - np.poly1d(np.polyfit(data["x"], data["y"], 1))(data["x"])))
    return {
        "singular": float(m.singular),
        "tau": float(np.sqrt(intercept_variance(m, "g"))),
        "sigma": float(m.sigma),
        "ols_sd": resid_sd,
        "true_tau": 0.0,
    }


@functools.cache
def _ch10_r2() -> dict[str, float]:
    from mlmprimer.compare import r2

    m, null = fit_cached(_EXAM, "exam"), fit_cached(_EXAM_NULL, "exam")
    both = r2(m)
    tau2 = intercept_variance(null, "school")
    return {
        "marginal": float(both["marginal"]),
        "conditional": float(both["conditional"]),
        "icc_null": tau2 / (tau2 + float(null.sigma) ** 2),
        "random_share": float(both["conditional"] - both["marginal"]),
    }


def _subject_slips(t: dict[str, float]) -> list[tuple[float, str]]:
    return [
        (
            t["smallest_subject"],
            "this boy has the smallest SD of residuals; the question asks for the largest.",
        ),
        (
            t["largest_slope_subject"],
            "this boy has the conditional mode of the slope farthest from 0: a level-2 "
            "residual. The question is about the spread of the level-1 residuals.",
        ),
        (
            t["largest_intercept_subject"],
            "this boy has the conditional mode of the intercept farthest from 0: a level-2 "
            "residual, not the spread of the level-1 residuals.",
        ),
        (
            t["second_subject"],
            "this boy has the second largest SD of residuals; sort again.",
        ),
    ]


@exercise("ex10_1", "Oxford boys: the boy whose residuals spread most, and their SD", points=2)
def ex10_1(subject_max_sd: Any, max_resid_sd: Any) -> CheckResult:
    """Exercise 10.1: the residual SD of each boy in ``height ~ age + (age | Subject)``.

    The model is fitted by REML to ``oxboys``, the Oxford boys' heights.

    Parameters
    ----------
    subject_max_sd : int or str
        The boy (his number, ``"1"`` or 1) whose conditional residuals have the largest SD.
    max_resid_sd : float
        That SD, in cm (``ddof=1``, as pandas' ``std()``).

    Examples
    --------
    >>> ex10_1(..., ...).status
    'unanswered'
    >>> ex10_1("a subject", ...).status
    'incorrect'
    """
    v = Verdict("ex10_1")
    t = _ch10_oxboys
    v.number(
        "subject_max_sd",
        subject_max_sd,
        lambda: t()["subject"],
        what="the boy whose residuals spread most",
        integer=True,
        slips=lambda: _subject_slips(t()),
        hint="the row of augment_groups(m) with the largest .resid_sd (its level column).",
    )
    v.number(
        "max_resid_sd",
        max_resid_sd,
        lambda: t()["sd"],
        what="that boy's SD of residuals",
        slips=lambda: [
            (t()["variance"], "this is the variance; take its square root."),
            (
                t()["sd_ddof0"],
                "this is the SD with the n denominator (ddof=0); use pandas' std(), ddof=1.",
            ),
            (t()["sigma"], "this is the model's sigma, one SD for all boys."),
            (t()["mean_abs"], "this is the mean absolute residual, not the SD."),
        ],
        hint="the .resid_sd column of augment_groups(m), in cm.",
    )
    return v.result()


@exercise(
    "ex10_2",
    "radon: the most influential county and its size",
    points=2,
    answers={"prediction_largest_county": prediction(YES_NO)},
)
def ex10_2(prediction_largest_county: Any, top_county_cooks: Any, n_top_county: Any) -> CheckResult:
    """Exercise 10.2: Cook's distance per county in ``log_radon ~ floor + uranium + (1 | county)``.

    Parameters
    ----------
    prediction_largest_county : str
        Written before computing: will the county with the most measured homes be the most
        influential one (``"yes"`` or ``"no"``)?
    top_county_cooks : float
        The largest Cook's distance of a county.
    n_top_county : int
        The number of measured homes in that county.

    Examples
    --------
    >>> ex10_2("yes", ..., ...).status
    'partial'
    >>> ex10_2("perhaps", ..., ...).status
    'incorrect'
    """
    v = Verdict("ex10_2")
    t = _ch10_radon
    v.number(
        "top_county_cooks",
        top_county_cooks,
        lambda: t()["cooks"],
        what="the largest Cook's distance of a county",
        slips=lambda: [
            (
                t()["unscaled"],
                "this is the quadratic form without lme4's factor (m - p) / (m p); use "
                "cooks_distance of influence_groups.",
            ),
            (t()["second"], "this is the second largest Cook's distance."),
            (t()["dfbeta_uranium"], "this is the change in the uranium slope (dfbeta)."),
            (t()["dfbeta_floor"], "this is the change in the floor effect (dfbeta)."),
        ],
        hint="influence_groups(m, 'county').cooks_distance.max().",
    )
    v.number(
        "n_top_county",
        n_top_county,
        lambda: t()["n_top"],
        what="the number of homes in the most influential county",
        integer=True,
        slips=lambda: [
            (t()["n_counties"], "this is the number of counties."),
            (t()["n_second"], "this is the size of the second most influential county."),
        ],
        hint="count the rows of radon of that county (value_counts()).",
    )
    v.prediction(
        "prediction_largest_county",
        prediction_largest_county,
        truth=lambda: "yes" if t()["largest_county_is_top"] else "no",
        reveal=v.ok("top_county_cooks") and v.ok("n_top_county"),
    )
    return v.result()


@exercise(
    "ex10_3",
    "a singular fit on data without a group effect",
    points=2,
    answers={"singular_answer": option(YES_NO)},
    seed=NO_GROUP_SEED,
)
def ex10_3(singular_answer: Any, tau_hat_sim: Any, *, student_id: Any = None) -> CheckResult:
    """Exercise 10.3: ``y ~ x + (1 | g)`` on :func:`no_group_data` (REML), a variant per student.

    The data are ``no_group_data(check.variant_seed("ex10_3", student_id))``, the notebook's
    ``np.random.default_rng(seed)`` draws (seed 5 without a student id, the public variant).

    Parameters
    ----------
    singular_answer : str
        Is the fit singular (``"yes"`` or ``"no"``)?
    tau_hat_sim : float
        The estimated SD of the group effects.
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> ex10_3(..., ...).status
    'unanswered'
    >>> ex10_3("maybe", ...).status
    'incorrect'
    """
    v = Verdict("ex10_3")
    seed = variant_seed("ex10_3", student_id)

    def t() -> dict[str, float]:
        return _ch10_singular(seed)

    v.option(
        "singular_answer",
        singular_answer,
        lambda: "yes" if t()["singular"] else "no",
        what="m.singular says whether the fit is singular",
        slips={
            "no": "look at m.singular, and at the estimated variance of the group effects.",
            "yes": "look at m.singular: the group variance is not on its boundary here.",
        },
    )
    v.number(
        "tau_hat_sim",
        tau_hat_sim,
        lambda: t()["tau"],
        what="the estimated SD of the group effects",
        abs_tol=1e-3,
        slips=lambda: [
            (t()["sigma"], "this is sigma, the residual SD; tau is the SD of the group effects."),
            (t()["ols_sd"], "this is the residual SD of a regression without groups."),
        ],
        hint="the sdcor of the (Intercept) row of g in m.varcorr.",
    )
    return v.result()


@exercise("ex10_4", "Exam: marginal and conditional R^2", points=2)
def ex10_4(r2_marginal: Any, r2_conditional: Any) -> CheckResult:
    """Exercise 10.4: R^2 of ``normexam ~ standLRT + schavg + schgend + (standLRT | school)``.

    The model is fitted by REML to ``exam``; the ICC slip is that of ``normexam ~ 1 + (1 |
    school)``.

    Parameters
    ----------
    r2_marginal, r2_conditional : float
        Nakagawa and Schielzeth's marginal and conditional R^2, as fractions (percentages are
        accepted).

    Examples
    --------
    >>> ex10_4(..., ...).status
    'unanswered'
    """
    v = Verdict("ex10_4")
    t = _ch10_r2
    v.number(
        "r2_marginal",
        r2_marginal,
        lambda: t()["marginal"],
        what="the marginal R^2",
        percent=True,
        slips=lambda: [
            (t()["conditional"], "this is the conditional R^2 (fixed and random effects)."),
            (t()["icc_null"], "this is the ICC of the null model, not an R^2."),
            (t()["random_share"], "this is the difference conditional minus marginal."),
        ],
        hint="mlm.r2(m)['marginal'].",
    )
    v.number(
        "r2_conditional",
        r2_conditional,
        lambda: t()["conditional"],
        what="the conditional R^2",
        percent=True,
        slips=lambda: [
            (t()["marginal"], "this is the marginal R^2 (fixed effects only)."),
            (t()["icc_null"], "this is the ICC of the null model, not an R^2."),
        ],
        hint="mlm.r2(m)['conditional'].",
    )
    return v.result()


@exercise(
    "ex10_5",
    "an influential group, in words",
    kind="manual",
    answers={"answer_influence": words(40)},
)
def ex10_5(answer_influence: Any) -> CheckResult:
    """Exercise 10.5 (words, graded by hand): what to do about an influential group.

    Parameters
    ----------
    answer_influence : str
        Four to six sentences.

    Examples
    --------
    >>> ex10_5("too short").status
    'incorrect'
    """
    v = Verdict("ex10_5")
    v.text(
        "answer_influence",
        answer_influence,
        ideas=[
            (r"refit|without|delet|remov|leave", "what the refit without the group shows?"),
            (r"data|error|record|differ|why|reason", "why the group differs from the others?"),
            (r"report|both|with and without|sensitiv", "what to report?"),
            (r"fixed|slope|variance|tau|estimate", "which estimates it moves?"),
        ],
    )
    return v.result()


# The checks, and the right answers they compute (the tests compare them with lme4's numbers).
__all__ = [
    *(q.qid for q in questions("10")),
    "NO_GROUP_SEED",
    "no_group_data",
    "_ch10_oxboys",
    "_ch10_radon",
    "_ch10_singular",
    "_ch10_r2",
]
