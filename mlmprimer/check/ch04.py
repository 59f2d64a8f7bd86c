"""Checks of chapter 4, the intraclass correlation: ``ex04_1``, ``ex04_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from mlmprimer.check.core import (
    YES_NO,
    CheckResult,
    Unreadable,
    Verdict,
    exercise,
    fit_cached,
    intercept_variance,
    is_unanswered,
    load_data,
    option,
    questions,
    read_number,
    read_pair,
    variant_seed,
    words,
)

_NULL04 = "normexam ~ 1 + (1 | school)"  # not the chapter's model: its answers are printed there
_SIM04 = {"n_subjects": 50, "n_obs": 8, "beta0": 500.0, "tau": 20.0, "sigma": 40.0}
_SEED04 = 4  # the public variant of exercise 4.5 (each student has their own, variant_seed)


def _icc_se(icc: float, m: float, groups: int) -> float:
    """Large-sample SE of an ICC with ``groups`` clusters of size ``m`` (Fisher's formula)."""
    num = 2 * (1 - icc) ** 2 * (1 + (m - 1) * icc) ** 2
    return math.sqrt(num / (m * (m - 1) * (groups - 1)))


@functools.cache
def _ch04_null() -> dict[str, float]:
    m0 = fit_cached(_NULL04, "exam")
    exam = load_data("exam")
    sizes = exam.groupby("school", observed=True).size()
    tau2, sigma2 = intercept_variance(m0, "school"), float(m0.sigma) ** 2
    icc = tau2 / (tau2 + sigma2)
    n, j = len(exam), len(sizes)
    mbar = n / j
    deff = 1 + (mbar - 1) * icc
    return {
        "tau2": tau2,
        "sigma2": sigma2,
        "icc": icc,
        "icc_sd": math.sqrt(tau2) / (math.sqrt(tau2) + math.sqrt(sigma2)),
        "icc_ratio": tau2 / sigma2,
        "n": float(n),
        "j": float(j),
        "mbar": mbar,
        "deff": deff,
        "deff_m": 1 + mbar * icc,
        "deff_median": 1 + (float(sizes.median()) - 1) * icc,
        "deff_max": 1 + (float(sizes.max()) - 1) * icc,
        "n_eff": n / deff,
        "se_icc": _icc_se(icc, mbar, j),
    }


@functools.cache
def _ch04_sim(seed: int = _SEED04) -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    df = simulate.reaction_times(**_SIM04, rng=seed)
    truth = df.attrs["truth"]
    m = lmer("reaction ~ 1 + (1 | subject)", df)
    tau2, sigma2 = intercept_variance(m, "subject"), float(m.sigma) ** 2
    true_icc = truth["tau"] ** 2 / (truth["tau"] ** 2 + truth["sigma"] ** 2)
    return {
        "true": true_icc,
        "true_sd": truth["tau"] / (truth["tau"] + truth["sigma"]),
        "est": tau2 / (tau2 + sigma2),
        "se": _icc_se(true_icc, _SIM04["n_obs"], _SIM04["n_subjects"]),
    }


@exercise("ex04_1", "the ICC of the school null model, by hand")
def ex04_1(icc_exam: Any) -> CheckResult:
    """Exercise 4.1: the ICC of ``normexam ~ 1 + (1 | school)`` (``exam``), by hand.

    Parameters
    ----------
    icc_exam : float
        :math:`\\hat\\tau^2 / (\\hat\\tau^2 + \\hat\\sigma^2)` (a share; a percentage is accepted).

    Examples
    --------
    >>> ex04_1("a lot").status
    'incorrect'
    """
    v = Verdict("ex04_1")
    t = _ch04_null
    v.number(
        "icc_exam",
        icc_exam,
        lambda: t()["icc"],
        what="the ICC",
        percent=True,
        slips=lambda: [
            (t()["icc_sd"], "this uses the standard deviations; the ICC is a ratio of variances."),
            (1 - t()["icc"], "this is the share of the variance within schools, 1 - ICC."),
            (t()["icc_ratio"], "this is tau^2 / sigma^2; divide by the total, tau^2 + sigma^2."),
        ],
        hint="tau^2 and sigma^2 are the vcov column of m.varcorr.",
    )
    return v.result()


@exercise(
    "ex04_2",
    "a parametric bootstrap interval for the ICC",
    answers={"ci_symmetric": option(YES_NO)},
)
def ex04_2(ci_icc: Any, ci_symmetric: Any) -> CheckResult:
    """Exercise 4.2: a 95 % parametric-bootstrap interval for the ICC of exercise 4.1.

    Any seed and number of bootstrap samples of at least 100 give an interval that passes: the
    check compares its limits with a large-sample approximation of the ICC's standard error.

    Parameters
    ----------
    ci_icc : tuple of float
        ``(lower, upper)``, or the Series returned by ``mlmprimer.icc_ci``.
    ci_symmetric : str
        ``"yes"`` or ``"no"``: is the interval (nearly) symmetric around the estimate? Judged on
        the interval given, since every seed gives its own: symmetric when the two sides differ
        by less than a fifth of its width.

    Examples
    --------
    >>> ex04_2((0.1, 0.2, 0.3), ...).status
    'incorrect'
    """
    v = Verdict("ex04_2")
    interval = _icc_interval_part(v, ci_icc)
    if interval is None:
        if not is_unanswered(ci_symmetric):
            v.add("ci_symmetric", "incorrect", "first give an interval that passes, in ci_icc.")
        else:
            v.add("ci_symmetric", "unanswered", "not answered yet.")
        return v.result()
    low, high = interval
    icc = _ch04_null()["icc"]
    symmetric = abs((high - icc) - (icc - low)) < 0.2 * (high - low)
    v.option(
        "ci_symmetric",
        ci_symmetric,
        lambda: "yes" if symmetric else "no",
        what=(
            "the interval reaches about as far on both sides of the estimate"
            if symmetric
            else "the interval reaches further on one side of the estimate than on the other"
        ),
        hint="compare icc - lower with upper - icc.",
    )
    return v.result()


def _icc_interval_part(v: Verdict, ci_icc: Any) -> tuple[float, float] | None:
    """Judge the interval of exercise 4.2; the interval when it passes, else None."""
    name = "ci_icc"
    hint = "mlm.icc_ci(m0, n_boot=..., seed=..., progress=False) returns conf.low and conf.high."
    if is_unanswered(ci_icc):
        v.add(name, "unanswered", "not answered yet.")
        return None
    try:
        low, high = read_pair(ci_icc)
    except Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.", hint)
        return None
    low, high = min(low, high), max(low, high)
    t = _ch04_null()
    if high > 1 and low >= 0 and high <= 100:
        low, high = low / 100, high / 100
    icc, se = t["icc"], t["se_icc"]
    if not (0 <= low < high <= 1):
        v.add(name, "incorrect", "an ICC lies between 0 and 1: these limits cannot be right.", hint)
    elif not (low < icc < high):
        v.add(name, "incorrect", "the interval does not contain the estimated ICC.", hint)
    elif high - low < 2 * 1.96 * se * 0.5:
        v.add(
            name,
            "incorrect",
            "this interval is too narrow for a 95 % interval; check the level and that the "
            "limits come from the bootstrap, not from its standard error.",
            hint,
        )
    elif high - low > 2 * 1.96 * se * 1.6:
        v.add(name, "incorrect", "this interval is too wide for a 95 % interval.", hint)
    elif abs(low - (icc - 1.96 * se)) > 1.2 * se or abs(high - (icc + 1.96 * se)) > 1.2 * se:
        v.add(name, "incorrect", "the limits sit in the wrong place around the estimate.", hint)
    else:
        v.add(name, "correct", "right: a plausible 95 % interval for the ICC.")
        return low, high
    return None


@exercise("ex04_3", "design effect and effective sample size: predict, then compute", points=3)
def ex04_3(prediction_n_eff: Any, deff_exam: Any, n_eff_exam: Any) -> CheckResult:
    """Exercise 4.3: design effect and effective sample size of the 4059 pupils of ``exam``.

    Parameters
    ----------
    prediction_n_eff : float
        Written before computing: your guess of the effective sample size (any positive number).
    deff_exam : float
        Design effect :math:`1 + (\\bar m - 1) \\hat\\rho_I`, :math:`\\bar m` the mean school size.
    n_eff_exam : float
        Effective sample size :math:`N / \\text{deff}`.

    Examples
    --------
    >>> ex04_3(-5, ..., ...).status
    'incorrect'
    """
    v = Verdict("ex04_3")
    t = _ch04_null
    v.number(
        "deff_exam",
        deff_exam,
        lambda: t()["deff"],
        what="the design effect",
        slips=lambda: [
            (t()["deff_m"], "this uses m instead of m - 1."),
            (t()["deff_median"], "this uses the median school size; use the mean."),
            (t()["deff_max"], "this uses the largest school; use the mean school size."),
        ],
        hint="mean school size = number of pupils / number of schools.",
    )
    v.number(
        "n_eff_exam",
        n_eff_exam,
        lambda: t()["n_eff"],
        what="the effective sample size",
        rel=0.015,
        slips=lambda: [
            (t()["n"] * t()["deff"], "multiply? The clustering makes the sample worth less."),
            (t()["j"] * t()["deff"], "this is the number of schools times the design effect."),
        ],
        hint="N / design effect.",
    )
    name = "prediction_n_eff"
    if is_unanswered(prediction_n_eff):
        v.add(name, "unanswered", "not answered yet: write your guess, a number of pupils.")
    else:
        try:
            guess = read_number(prediction_n_eff)
        except Unreadable as exc:
            v.add(name, "incorrect", f"{exc}.")
        else:
            if guess <= 0:
                v.add(name, "incorrect", "a sample size is a positive number.")
            elif not v.ok("n_eff_exam"):
                v.recorded_prediction(name, None)
            else:
                factor = guess / t()["n_eff"]
                near = 1 / 1.5 <= factor <= 1.5
                how = (
                    "within a factor of 1.5 of the result: a good feel for clustering."
                    if near
                    else f"{'above' if factor > 1 else 'below'} the result by a factor of "
                    f"{max(factor, 1 / factor):.1f}. Think about why."
                )
                v.add(name, "recorded", f"recorded, {how}", prediction=True, borne_out=near)
    return v.result()


@exercise(
    "ex04_4",
    "what an ICC of this size means, in words",
    kind="manual",
    answers={"answer_icc_meaning": words(30)},
)
def ex04_4(answer_icc_meaning: Any) -> CheckResult:
    """Exercise 4.4 (words, graded by hand): the ICC of the schools for pupils and for schools.

    Parameters
    ----------
    answer_icc_meaning : str
        Three to five sentences.

    Examples
    --------
    >>> ex04_4("   ").status
    'unanswered'
    """
    v = Verdict("ex04_4")
    v.text(
        "answer_icc_meaning",
        answer_icc_meaning,
        ideas=[
            (r"correlat", "that the ICC is a correlation, and of what?"),
            (r"share|proportion|percent|%|fraction", "what share of the variance it is?"),
            (r"same school|two pupils|two students|pupils from", "what it says about two pupils?"),
        ],
    )
    return v.result()


@exercise("ex04_5", "simulated subjects: the ICC against the truth", points=2, seed=_SEED04)
def ex04_5(icc_true: Any, icc_est: Any, icc_error: Any, *, student_id: Any = None) -> CheckResult:
    """Exercise 4.5: true and estimated ICC of simulated data (a variant per student).

    The data are ``simulate.reaction_times(n_subjects=50, n_obs=8, beta0=500, tau=20,
    sigma=40, rng=check.variant_seed("ex04_5", student_id))``: each student's own draw, and
    ``rng=4`` without a student id.

    Parameters
    ----------
    icc_true : float
        The ICC from the simulation's true parameters (``attrs["truth"]``).
    icc_est : float
        The ICC estimated from ``reaction ~ 1 + (1 | subject)``.
    icc_error : float
        How far the estimate is from the truth, ``icc_est - icc_true``.
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> ex04_5(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex04_5")
    seed = variant_seed("ex04_5", student_id)

    def t() -> dict[str, float]:
        return _ch04_sim(seed)

    v.number(
        "icc_true",
        icc_true,
        lambda: t()["true"],
        what="the true ICC",
        percent=True,
        slips=lambda: [
            (t()["true_sd"], "this uses the standard deviations; the ICC is a ratio of variances."),
            (1 - t()["true"], "this is 1 - ICC, the share within subjects."),
        ],
        hint="attrs['truth'] holds tau and sigma, which are standard deviations.",
    )
    v.number(
        "icc_est",
        icc_est,
        lambda: t()["est"],
        what="the estimated ICC",
        percent=True,
        slips=lambda: [(t()["true"], "this is the true ICC; estimate it from the fitted model.")],
        hint="fit reaction ~ 1 + (1 | subject) and use mlm.icc or the variance components.",
    )
    v.number(
        "icc_error",
        icc_error,
        lambda: t()["est"] - t()["true"],
        what="the estimate's distance from the truth",
        abs_tol=0.002,
        slips=lambda: [(t()["true"] - t()["est"], "the sign is turned: take icc_est - icc_true.")],
        hint="icc_est - icc_true.",
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        z = (truth["est"] - truth["true"]) / truth["se"]
        result.message = (
            "every part is right. The estimate misses the truth by "
            f"{abs(z):.1f} standard errors: {'a typical' if abs(z) < 2 else 'a large'} error "
            "for 50 subjects."
        )
    return result


# The checks, and the right answers they compute (the tests compare them with lme4 and the truth).
__all__ = [
    *(q.qid for q in questions("04")),
    "_ch04_null",
    "_ch04_sim",
]
