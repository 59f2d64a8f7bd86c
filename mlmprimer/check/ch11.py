"""Checks of chapter 11, growth over time: ``ex11_1``, ``ex11_2``, ...

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
    CheckResult,
    Verdict,
    exercise,
    fixef_se,
    load_data,
    prediction,
    varcorr_row,
    words,
)

# The chapter fits reaction times and distances and prints their answers: the exercises ask the
# same questions of the response speed, 1000 / Reaction, and of log(distance).
_SLEEP_DEP = "speed ~ dep + (dep | Subject)"
_SLEEP_END = "speed ~ dep_end + (dep_end | Subject)"
_SLEEP_ALL = "speed ~ Days + (Days | Subject)"
_SLEEP_MS = "Reaction ~ dep + (dep | Subject)"
_SLEEP_END_MS = "Reaction ~ dep_end + (dep_end | Subject)"
_ORTH = "log_distance ~ age11 * Sex + (age11 | Subject)"
_ORTH_MM = "distance ~ age11 * Sex + (age11 | Subject)"
_ORTH_INTER = "age11:SexFemale"
_LARGER_SMALLER = {
    "larger": ("larger", "bigger", "greater", "increases", "grows", "up", "more"),
    "smaller": ("smaller", "less", "lower", "decreases", "shrinks", "down"),
    "same": ("same", "unchanged", "equal", "no change", "does not change"),
}


def _lmer(formula: str, data: pd.DataFrame) -> Any:
    from mlmprimer.model import lmer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmer(formula, data)


def sleep_speed() -> pd.DataFrame:
    """The sleep study with ``speed = 1000 / Reaction``, responses per second (1/s).

    ``Reaction`` is the day's average reaction time, so ``speed`` is the reciprocal of that
    average, not the average of the trials' speeds.

    Examples
    --------
    >>> round(float(sleep_speed()["speed"].iloc[0]), 3)
    4.007
    """
    sleep = load_data("sleepstudy")
    return sleep.assign(speed=1000.0 / sleep["Reaction"])


def _sleep_from_baseline() -> pd.DataFrame:
    """The days 2 to 9 of :func:`sleep_speed`, with ``dep = Days - 2`` and ``dep_end = dep - 7``."""
    sleep = sleep_speed()
    sleep = sleep[sleep["Days"] >= 2].reset_index(drop=True)
    return sleep.assign(dep=sleep["Days"] - 2, dep_end=sleep["Days"] - 9)


def orthodont_log() -> pd.DataFrame:
    """Orthodont with ``age11 = age - 11`` and ``log_distance``, the natural log of distance.

    Examples
    --------
    >>> orthodont_log()[["age11", "log_distance"]].round(3).iloc[0].tolist()
    [-3.0, 3.258]
    """
    orth = load_data("orthodont")
    return orth.assign(age11=orth["age"] - 11, log_distance=np.log(orth["distance"]))


@functools.cache
def _ch11_sleep() -> dict[str, float]:
    sleep = _sleep_from_baseline()
    dep, end = _lmer(_SLEEP_DEP, sleep), _lmer(_SLEEP_END, sleep)
    raw = _lmer(_SLEEP_ALL, sleep)  # days 2-9, but Days not shifted: intercept at day 0
    every = _lmer(_SLEEP_ALL, sleep_speed())
    ms = _lmer(_SLEEP_MS, sleep)  # the chapter's model, of the reaction time in ms
    return {
        "b0": float(dep.fixef["(Intercept)"]),
        "b1": float(dep.fixef["dep"]),
        "se_b0": fixef_se(dep, "(Intercept)"),
        "b0_all": float(every.fixef["(Intercept)"]),
        "b1_all": float(every.fixef["Days"]),
        "b0_raw": float(raw.fixef["(Intercept)"]),
        "b0_end": float(end.fixef["(Intercept)"]),
        "tau0": varcorr_row(dep, "Subject", "(Intercept)")[1],
        "tau0_end": varcorr_row(end, "Subject", "(Intercept)")[1],
        "tau0_end_var": varcorr_row(end, "Subject", "(Intercept)")[0],
        "rho": varcorr_row(dep, "Subject", "(Intercept)", "dep")[1],
        "rho_end": varcorr_row(end, "Subject", "(Intercept)", "dep_end")[1],
        "tau1": varcorr_row(dep, "Subject", "dep")[1],
        "b0_ms": float(ms.fixef["(Intercept)"]),
        "b1_ms": float(ms.fixef["dep"]),
        "inverse_b0_ms": 1000.0 / float(ms.fixef["(Intercept)"]),
        "tau0_end_ms": varcorr_row(_lmer(_SLEEP_END_MS, sleep), "Subject", "(Intercept)")[1],
    }


@functools.cache
def _ch11_orthodont() -> dict[str, float]:
    orth = orthodont_log()
    m, mm = _lmer(_ORTH, orth), _lmer(_ORTH_MM, orth)
    fe = m.fixef
    return {
        "boys": float(fe["age11"]),
        "girls": float(fe["age11"] + fe[_ORTH_INTER]),
        "inter": float(fe[_ORTH_INTER]),
        "se_inter": fixef_se(m, _ORTH_INTER),
        "sex": float(fe["SexFemale"]),
        "girls_sex": float(fe["age11"] + fe["SexFemale"]),
        "girls_mm": float(mm.fixef["age11"] + mm.fixef[_ORTH_INTER]),
        "inter_mm": float(mm.fixef[_ORTH_INTER]),
    }


@exercise("ex11_1", "sleep study: baseline speed and change per day of restriction", points=2)
def ex11_1(baseline_speed: Any, slope_per_day: Any) -> CheckResult:
    """Exercise 11.1: ``speed ~ dep + (dep | Subject)`` on days 2 to 9, ``dep = Days - 2``.

    ``speed = 1000 / Reaction`` (:func:`sleep_speed`), in responses per second (1/s).

    Parameters
    ----------
    baseline_speed : float
        The average speed at baseline (day 2), the intercept (1/s), to three significant
        digits: 1000 divided by the average reaction time is close to it but is not it.
    slope_per_day : float
        The average change of speed per day of sleep restriction (1/s per day).

    Examples
    --------
    >>> ex11_1(..., ...).status
    'unanswered'
    >>> ex11_1("fast", ...).status
    'incorrect'
    """
    v = Verdict("ex11_1")
    t = _ch11_sleep
    v.number(
        "baseline_speed",
        baseline_speed,
        lambda: t()["b0"],
        what="the average speed at baseline",
        rel=2e-3,
        slips=lambda: [
            (
                t()["b0_all"],
                "this is the intercept of the fit to all ten days with Days as time: day 0 was a "
                "training day. Keep days 2 to 9 and count time from day 2.",
            ),
            (
                t()["b0_raw"],
                "this is the value at day 0, extrapolated from days 2 to 9: Days was not shifted. "
                "Use dep = Days - 2.",
            ),
            (t()["b0_end"], "this is the value at the last day (time counted from day 9)."),
            (t()["tau0"], "this is tau_0, the SD of the subjects' baselines, not their mean."),
            (t()["se_b0"], "this is the standard error; the question asks for the estimate."),
            (
                t()["inverse_b0_ms"],
                "this is 1000 divided by the average reaction time at baseline; the average of "
                "the speeds is not the reciprocal of the average time. Fit the model to speed.",
            ),
            (t()["b0_ms"], "this is the reaction time in ms; the question is about the speed."),
        ],
        hint="the (Intercept) of speed ~ dep + (dep | Subject) on Days >= 2, dep = Days - 2.",
    )
    v.number(
        "slope_per_day",
        slope_per_day,
        lambda: t()["b1"],
        what="the average change per day of restriction",
        slips=lambda: [
            (
                t()["b1_all"],
                "this is the slope over all ten days, which includes the adaptation and training "
                "days 0 and 1. Keep days 2 to 9.",
            ),
            (t()["tau1"], "this is tau_1, the SD of the subjects' slopes, not their mean."),
            (t()["b1_ms"], "this is the change of the reaction time in ms; model the speed."),
        ],
        hint="the coefficient of dep.",
    )
    return v.result()


@exercise(
    "ex11_2",
    "sleep study: predict, then tau_0 and rho with time counted from the last day",
    points=3,
    answers={"prediction_tau0_end": prediction(_LARGER_SMALLER)},
)
def ex11_2(prediction_tau0_end: Any, tau0_end: Any, rho_end: Any) -> CheckResult:
    """Exercise 11.2: ``speed ~ dep_end + (dep_end | Subject)``, ``dep_end = dep - 7``.

    Parameters
    ----------
    prediction_tau0_end : str
        Written before fitting: is tau_0 at the last day ``"larger"``, ``"smaller"`` or the
        ``"same"`` as at baseline?
    tau0_end : float
        The SD of the subjects' intercepts with time 0 at the last day (speed, 1/s).
    rho_end : float
        The correlation of intercepts and slopes with time 0 at the last day.

    Examples
    --------
    >>> ex11_2("larger", ..., ...).status
    'partial'
    >>> ex11_2("maybe", ..., ...).status
    'incorrect'
    """
    v = Verdict("ex11_2")
    t = _ch11_sleep
    v.number(
        "tau0_end",
        tau0_end,
        lambda: t()["tau0_end"],
        what="tau_0 at the last day",
        slips=lambda: [
            (t()["tau0_end_var"], "this is a variance; tau_0 is its square root, an SD."),
            (
                t()["tau0"],
                "this is tau_0 at baseline: count time from the last day, dep_end = dep - 7.",
            ),
            (t()["b0_end"], "this is the average at the last day, the fixed intercept."),
            (t()["tau0_end_ms"], "this is tau_0 of the reaction time in ms; model the speed."),
        ],
        hint="the SD of (Intercept) in varcorr's sdcor column.",
    )
    v.number(
        "rho_end",
        rho_end,
        lambda: t()["rho_end"],
        what="the correlation at the last day",
        abs_tol=0.005,
        slips=lambda: [
            (t()["rho"], "this is the correlation at baseline: time must be counted from day 9."),
            (-t()["rho_end"], "the sign is off."),
        ],
        hint="the correlation row of varcorr (var2 not missing), sdcor column.",
    )
    truth = t()
    v.prediction(
        "prediction_tau0_end",
        prediction_tau0_end,
        truth=lambda: "larger" if truth["tau0_end"] > truth["tau0"] else "smaller",
        reveal=v.ok("tau0_end"),
    )
    return v.result()


@exercise("ex11_3", "Orthodont: the girls' growth rate and the difference from the boys'", points=2)
def ex11_3(girls_rate: Any, rate_difference: Any) -> CheckResult:
    """Exercise 11.3: ``log_distance ~ age11 * Sex + (age11 | Subject)`` (REML).

    The data are :func:`orthodont_log`; on the log scale a rate is relative: 0.01 a year is
    about 1% of the distance a year.

    Parameters
    ----------
    girls_rate : float
        The girls' average growth of log(distance) per year.
    rate_difference : float
        The girls' rate minus the boys' (per year), the interaction.

    Examples
    --------
    >>> ex11_3(..., ...).status
    'unanswered'
    """
    v = Verdict("ex11_3")
    t = _ch11_orthodont
    v.number(
        "girls_rate",
        girls_rate,
        lambda: t()["girls"],
        what="the girls' growth per year",
        slips=lambda: [
            (t()["boys"], "this is the boys' rate (the reference level): add the interaction."),
            (t()["inter"], "this is the difference between the rates, not the girls' rate."),
            (
                t()["girls_sex"],
                "this adds SexFemale, a difference in level at age 11, not in rate.",
            ),
            (t()["girls_mm"], "this is the rate of distance in mm a year; model log(distance)."),
        ],
        hint="the coefficient of age11 plus that of age11:SexFemale.",
    )
    v.number(
        "rate_difference",
        rate_difference,
        lambda: t()["inter"],
        what="the difference in growth per year",
        slips=lambda: [
            (t()["sex"], "this is SexFemale, the difference in level at age 11, not in rate."),
            (-t()["inter"], "the sign is off: girls minus boys."),
            (t()["se_inter"], "this is the standard error; the question asks for the estimate."),
            (t()["inter_mm"], "this is the difference in mm a year; model log(distance)."),
        ],
        hint="the coefficient of age11:SexFemale.",
    )
    return v.result()


@exercise(
    "ex11_4",
    "in words: a lag-1 residual correlation near zero",
    points=2,
    kind="manual",
    answers={"answer_autocorrelation": words(40)},
)
def ex11_4(answer_autocorrelation: Any) -> CheckResult:
    """Exercise 11.4: why a near-zero lag-1 correlation of conditional residuals is no proof of
    independent errors, and which tools fit an AR(1) residual correlation.

    Parameters
    ----------
    answer_autocorrelation : str
        At least 40 words.

    Examples
    --------
    >>> ex11_4("too short").status
    'incorrect'
    """
    v = Verdict("ex11_4")
    v.text(
        "answer_autocorrelation",
        answer_autocorrelation,
        ideas=[
            (
                r"own line|fitted line|conditional|random effect|absorb|pulled|negative|bias",
                "why conditional residuals are negatively correlated even with independent errors?",
            ),
            (r"simulat|refit|bootstrap", "how to find the value that independence would give?"),
            (r"nlme|corAR1|glmmTMB|ar1", "which tool fits an AR(1) correlation?"),
            (r"lme4|lmer|mlmprimer", "whether lmer can model it?"),
        ],
    )
    return v.result()


__all__ = ["ex11_1", "ex11_2", "ex11_3", "ex11_4", "orthodont_log", "sleep_speed"]
