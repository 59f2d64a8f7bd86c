"""Checks of chapter 1, what a multilevel model is: ``ex01_1``, ``ex01_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from typing import Any

from mlmprimer.check.core import (
    MORE_LESS,
    QUESTIONS,
    CheckResult,
    Verdict,
    describe_type,
    exercise,
    fit_cached,
    fixef_se,
    load_data,
    option,
    prediction,
    questions,
    statsmodels_formula,
    variant_seed,
    words,
)

_BOYS01 = "Male"  # exercise 1.1 counts the boys of the orthodontic study
_SIM01: dict[str, Any] = {"n_subjects": 20, "n_obs": 10}
_SEED01 = 101  # public variant of exercise 1.5; each student has their own


@functools.cache
def _ch01_se_days() -> dict[str, float]:
    smf = statsmodels_formula()
    sleep = load_data("sleepstudy")
    ols = smf.ols("Reaction ~ Days", sleep).fit()
    lme = fit_cached("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    lme_ml = fit_cached("Reaction ~ Days + (1 | Subject)", "sleepstudy", REML=False)
    return {
        "ols": float(ols.bse["Days"]),
        "lme": fixef_se(lme, "Days"),
        "lme_ml": fixef_se(lme_ml, "Days"),
        "slope": float(ols.params["Days"]),
    }


@functools.cache
def _ch01_sim(seed: int = _SEED01) -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    smf = statsmodels_formula()
    df = simulate.reaction_times(**_SIM01, rng=seed)
    truth = df.attrs["truth"]
    n, j = len(df), df["subject"].nunique()
    ols = smf.ols("reaction ~ 1", df).fit()
    lme = lmer("reaction ~ 1 + (1 | subject)", df)
    return {
        "ols": float(ols.bse["Intercept"]),
        "lme": fixef_se(lme, "(Intercept)"),
        "true": math.sqrt(truth["tau"] ** 2 / j + truth["sigma"] ** 2 / n),
        "naive_true": math.sqrt((truth["tau"] ** 2 + truth["sigma"] ** 2) / n),
    }


@exercise("ex01_1", "Orthodont boys: number of groups and of measurements")
def ex01_1(n_boys: Any, n_measurements: Any) -> CheckResult:
    """Exercise 1.1: how many boys (groups) and measurements (rows) the ``orthodont`` data hold.

    The chapter counts the Oxford boys; the exercise counts the boys of the orthodontic study,
    the rows of ``orthodont`` with ``Sex == "Male"`` (the girls are left out).

    Parameters
    ----------
    n_boys : int
        The number of boys, :math:`J`.
    n_measurements : int
        The total number of the boys' measurements, :math:`N`.

    Examples
    --------
    >>> ex01_1(..., ...).status
    'unanswered'
    >>> ex01_1(2, ...).message
    '0 of 2 right.'
    """
    v = Verdict("ex01_1")
    children = load_data("orthodont")
    boys = children[children["Sex"] == _BOYS01]
    n_j, n = boys["Subject"].nunique(), len(boys)
    per_boy = boys.groupby("Subject", observed=True).size()
    n_children = children["Subject"].nunique()
    girls_too = "this counts the girls as well; keep the rows with Sex == 'Male' first."
    v.number(
        "n_boys",
        n_boys,
        lambda: n_j,
        what="the number of boys",
        integer=True,
        slips=lambda: [
            (n, "this is the number of rows (measurements); the question asks for boys."),
            (float(per_boy.max()), "this is the number of measurements of one boy."),
            (
                n_children,
                "this counts the girls as well: keep the rows with Sex == 'Male' and count the "
                "values present, with nunique() (the categories of Subject keep the girls' "
                "levels after their rows are dropped).",
            ),
        ],
        hint="keep the boys' rows, then count the distinct values of the column that "
        "identifies a child.",
    )
    v.number(
        "n_measurements",
        n_measurements,
        lambda: n,
        what="the number of measurements",
        integer=True,
        slips=lambda: [
            (n_j, "this is the number of boys; the question asks for all their measurements."),
            (float(per_boy.max()), "this is the number of measurements of one boy."),
            (len(children), girls_too),
        ],
        hint="every row of the boys' data is one measurement.",
    )
    return v.result()


_HSB_LEVEL_COLUMNS = ("mAch", "ses", "meanses", "sector", "minrty", "cses")
_LEVEL_WORDS = {
    1: ("1", "level 1", "level1", "l1", "pupil", "pupils", "student", "students", "individual"),
    2: ("2", "level 2", "level2", "l2", "school", "schools", "group", "cluster"),
}


def _level(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral | float) and value in (1, 2):
        return int(value)
    if isinstance(value, str):
        said = " ".join(re.sub(r"[^a-z0-9 ]", " ", value.lower()).split())
        for level, words in _LEVEL_WORDS.items():
            if said in words:
                return level
    return None


@exercise("ex01_2", "High School and Beyond: level 1 or level 2?")
def ex01_2(levels: Any) -> CheckResult:
    """Exercise 1.2: at which level each column of the ``hsb`` data varies.

    Parameters
    ----------
    levels : dict
        ``{column: 1 or 2}`` for the columns ``mAch``, ``ses``, ``meanses``, ``sector``,
        ``minrty`` and ``cses``: 1 if the column varies between the pupils of a school,
        2 if it is constant within every school.

    Examples
    --------
    >>> ex01_2({"ses": 3}).status
    'incorrect'
    """
    v = Verdict("ex01_2")
    if not isinstance(levels, dict):
        v.add(
            "levels",
            "incorrect",
            f"expected a dict {{column: level}}, got a {describe_type(levels)}.",
        )
        return v.result()
    hsb = load_data("hsb")
    truth = {
        c: 2 if hsb.groupby("school", observed=True)[c].nunique().max() == 1 else 1
        for c in _HSB_LEVEL_COLUMNS
    }
    answered = {str(k): _level(val) for k, val in levels.items()}
    unknown = sorted(k for k in answered if k not in truth)
    unreadable = sorted(k for k, val in answered.items() if k in truth and val is None)
    missing = [c for c in _HSB_LEVEL_COLUMNS if c not in answered]
    right = sum(answered.get(c) == truth[c] for c in _HSB_LEVEL_COLUMNS)
    message = f"{right} of {len(truth)} columns placed at the right level."
    notes = []
    if missing:
        notes.append(f"missing: {', '.join(missing)}")
    if unknown:
        notes.append(f"not asked about: {', '.join(unknown)}")
    if unreadable:
        notes.append(f"write 1 or 2 for: {', '.join(unreadable)}")
    if notes:
        message += " (" + "; ".join(notes) + ")"
    status = "correct" if right == len(truth) else "incorrect"
    v.add(
        "levels",
        status,
        message,
        "a level-2 column takes one value per school: "
        "hsb.groupby('school', observed=True)[column].nunique() tells you.",
    )
    result = v.result()
    result.score = round(QUESTIONS["ex01_2"].points * right / len(truth), 4)
    if 0 < right < len(truth):
        result.status = "partial"
    return result


@exercise(
    "ex01_3",
    "sleepstudy: predict, then compare the SE of the Days slope",
    points=3,
    answers={"prediction_se": prediction(MORE_LESS)},
)
def ex01_3(prediction_se: Any, se_days_ols: Any, se_days_lme: Any) -> CheckResult:
    """Exercise 1.3: the standard error of the ``Days`` slope, OLS against the mixed model.

    Parameters
    ----------
    prediction_se : str
        Written before fitting: will the mixed model's standard error be ``"larger"``,
        ``"smaller"`` or the ``"same"`` as the OLS one?
    se_days_ols : float
        Standard error of ``Days`` in the OLS fit of ``Reaction ~ Days``.
    se_days_lme : float
        Standard error of ``Days`` in ``Reaction ~ Days + (1 | Subject)`` (REML).

    Examples
    --------
    >>> ex01_3(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex01_3")
    t = _ch01_se_days
    hint = "the standard errors are the square roots of the diagonal of the covariance matrix."
    v.number(
        "se_days_ols",
        se_days_ols,
        lambda: t()["ols"],
        what="the OLS standard error of Days",
        slips=lambda: [
            (t()["ols"] ** 2, "this looks like a variance (SE squared); take its square root."),
            (t()["slope"], "this is the slope estimate itself, not its standard error."),
            (t()["lme"], "this is the mixed model's standard error, not the OLS one."),
        ],
        hint=hint,
    )
    v.number(
        "se_days_lme",
        se_days_lme,
        lambda: t()["lme"],
        what="the mixed model's standard error of Days",
        slips=lambda: [
            (t()["lme"] ** 2, "this looks like a variance (SE squared); take its square root."),
            (t()["slope"], "this is the slope estimate itself, not its standard error."),
            (t()["ols"], "this is the OLS standard error, not the mixed model's."),
            (t()["lme_ml"], "this is the ML fit's value; use the default REML fit."),
        ],
        hint=hint,
    )
    truth = t()
    v.prediction(
        "prediction_se",
        prediction_se,
        truth=lambda: "smaller" if truth["lme"] < truth["ols"] else "larger",
        reveal=v.ok("se_days_ols") and v.ok("se_days_lme"),
    )
    return v.result()


@exercise(
    "ex01_4",
    "fixed and random parts of a model, in words",
    kind="manual",
    answers={"answer_fixed_random": words(25)},
)
def ex01_4(answer_fixed_random: Any) -> CheckResult:
    """Exercise 1.4 (words, graded by hand): fixed and random effects of a sleepstudy model.

    Parameters
    ----------
    answer_fixed_random : str
        Two to four sentences.

    Examples
    --------
    >>> ex01_4("Days is fixed.").status
    'incorrect'
    """
    v = Verdict("ex01_4")
    v.text(
        "answer_fixed_random",
        answer_fixed_random,
        ideas=[
            (r"fixed", "which terms are fixed effects, and what they describe?"),
            (r"average|overall|population|typical", "what the fixed effects average over?"),
            (r"vary|varies|distribut|normal|spread|variance", "how the random part is described?"),
            (
                r"sample|new subject|other subject|generali|population|more subjects",
                "why the subjects are treated as a sample rather than 18 fixed dummies?",
            ),
        ],
    )
    return v.result()


_FITS01 = {
    "OLS": ("ols fit", "the ols fit", "ordinary least squares", "ols model"),
    "LME": ("lmer", "mixed model", "the mixed model", "multilevel model", "the multilevel model"),
}


@exercise(
    "ex01_5",
    "simulated subjects: SE of the mean against the truth",
    points=3,
    answers={"closer_se_mean": option(_FITS01)},
    seed=_SEED01,
)
def ex01_5(
    se_mean_ols: Any,
    se_mean_lme: Any,
    se_mean_true: Any,
    closer_se_mean: Any,
    *,
    student_id: Any = None,
) -> CheckResult:
    """Exercise 1.5: standard errors of the grand mean on simulated data with a known truth.

    The data are ``simulate.reaction_times(n_subjects=20, n_obs=10, rng=seed)``, where
    ``seed = check.variant_seed("ex01_5", student_id)``: each student's own draw (101 without a
    student id, the public variant).

    Parameters
    ----------
    se_mean_ols : float
        Standard error of the intercept of the OLS fit ``reaction ~ 1``.
    se_mean_lme : float
        Standard error of the intercept of ``reaction ~ 1 + (1 | subject)``.
    se_mean_true : float
        The true standard error of the grand mean from the simulation's true parameters,
        :math:`\\sqrt{\\tau^2 / J + \\sigma^2 / N}`.
    closer_se_mean : str
        Which fit's standard error is closer to the true one, ``"OLS"`` or ``"LME"``.
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> ex01_5(..., ..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex01_5")
    seed = variant_seed("ex01_5", student_id)

    def t() -> dict[str, Any]:
        return _ch01_sim(seed)

    var_hint = "this looks like a variance; take its square root."
    v.number(
        "se_mean_ols",
        se_mean_ols,
        lambda: t()["ols"],
        what="the OLS standard error of the mean",
        slips=lambda: [(t()["ols"] ** 2, var_hint), (t()["lme"], "this is the mixed model's SE.")],
        hint="fit smf.ols('reaction ~ 1', sim) and read .bse.",
    )
    v.number(
        "se_mean_lme",
        se_mean_lme,
        lambda: t()["lme"],
        what="the mixed model's standard error of the mean",
        slips=lambda: [(t()["lme"] ** 2, var_hint), (t()["ols"], "this is the OLS SE.")],
        hint="take the square root of the (Intercept) entry of the model's vcov.",
    )
    v.number(
        "se_mean_true",
        se_mean_true,
        lambda: t()["true"],
        what="the true standard error",
        slips=lambda: [
            (t()["true"] ** 2, var_hint),
            (
                t()["naive_true"],
                "this treats all N measurements as independent: tau^2 is divided by N, "
                "but the subject effects repeat within a subject and average over J subjects only.",
            ),
        ],
        hint="use sim.attrs['truth']: tau^2 / J + sigma^2 / N, then the square root.",
    )
    truth = t()
    lme_closer = abs(truth["lme"] - truth["true"]) < abs(truth["ols"] - truth["true"])
    v.option(
        "closer_se_mean",
        closer_se_mean,
        lambda: "LME" if lme_closer else "OLS",
        what=f"the {'mixed model' if lme_closer else 'OLS fit'} is closer to the truth",
        hint="compare the distance of each standard error from se_mean_true.",
    )
    result = v.result()
    if result.status == "correct":
        result.message = (
            f"every part is right. The OLS standard error is "
            f"{truth['true'] / truth['ols']:.1f} times too small."
        )
    return result


# The checks, and the right answers they compute (the tests compare them with lme4 and the truth).
__all__ = [
    *(q.qid for q in questions("01")),
    "_ch01_se_days",
    "_ch01_sim",
]
