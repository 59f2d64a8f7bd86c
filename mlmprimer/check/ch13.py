"""Checks of chapter 13, binary and count outcomes: ``ex13_1``, ``ex13_2``, ...

The exercises use data the chapter does not: the herds of ``cbpp`` (contagious bovine
pleuropneumonia, new cases out of the herd's size in four periods) and the red grouse chicks of
``grouseticks``. Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module
is imported (:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any

import numpy as np
from scipy import special

from mlmprimer.check.core import (
    YES_NO,
    CheckResult,
    Verdict,
    exercise,
    load_data,
    option,
    prediction,
    questions,
    words,
)

#: The models of the exercises (lme4's formulas, as the exercise notebook writes them).
CBPP_BINOMIAL = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
CBPP_POISSON = "incidence ~ period + offset(log(size)) + (1 | herd)"
CBPP_POISSON_NO_OFFSET = "incidence ~ period + (1 | herd)"
CBPP_LINEAR = "prop ~ period + (1 | herd)"
GROUSE = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)"
GROUSE_OLRE = "TICKS ~ YEAR + cHEIGHT + (1 | INDEX) + (1 | BROOD)"
#: The herd size of exercise 13.4.
HERD_SIZE = 20
_LATENT = math.pi**2 / 3
_ATTENUATION = {
    "closer to 1": ("closer", "nearer 1", "closer to one", "smaller", "attenuated", "weaker"),
    "further from 1": ("further", "farther from 1", "larger", "stronger", "further from one"),
    "same": ("the same", "equal", "unchanged", "no change"),
}


@functools.cache
def glmer_cached(formula: str, data: str, family: str) -> Any:
    """A cached ``mlmprimer.glmer`` fit on a named real data set."""
    from mlmprimer import glmer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer(formula, load_data(data), family=family)


def _sd(model: Any, group: str) -> float:
    vc = model.varcorr
    sel = (vc["grp"] == group) & (vc["var1"] == "(Intercept)") & vc["var2"].isna()
    return float(vc.loc[sel, "sdcor"].iloc[0])


def _se(model: Any, term: str) -> float:
    return float(np.sqrt(model.vcov.loc[term, term]))


def marginal_probability(eta: float, tau: float, nodes: int = 60) -> float:
    """``expit(eta + u)`` averaged over ``u ~ N(0, tau^2)`` (Gauss-Hermite quadrature).

    Examples
    --------
    >>> round(marginal_probability(0.0, 2.0), 6)  # symmetric around one half
    0.5
    >>> abs(marginal_probability(-1.0, 0.0) - float(special.expit(-1.0))) < 1e-12
    True
    """
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    return float(special.expit(eta + tau * z) @ (w / w.sum()))


def pearson_dispersion(model: Any, y: Any) -> float:
    """Sum of squared Pearson residuals of a Poisson fit over lme4's residual degrees of freedom.

    The degrees of freedom are the number of observations less the fixed effects and the
    covariance parameters (R's ``df.residual`` of a ``glmerMod``).
    """
    mu = np.asarray(model.fitted(), dtype=float)
    y = np.asarray(y, dtype=float)
    return float(np.sum((y - mu) ** 2 / mu) / (len(y) - len(model.fixef) - len(model.theta)))


@functools.cache
def _ch13_cbpp() -> dict[str, float]:
    from mlmprimer.model import lmer

    m = glmer_cached(CBPP_BINOMIAL, "cbpp", "binomial")
    b0, b4, tau = float(m.fixef["(Intercept)"]), float(m.fixef["period4"]), _sd(m, "herd")
    cbpp = load_data("cbpp")
    first = cbpp[cbpp["period"] == "1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lin = lmer(CBPP_LINEAR, cbpp.assign(prop=cbpp["incidence"] / cbpp["size"]))
    tau_lin = _sd(lin, "herd")
    p1, p4 = marginal_probability(b0, tau), marginal_probability(b0 + b4, tau)
    shrink = 1 / math.sqrt(1 + (16 * math.sqrt(3) / (15 * math.pi)) ** 2 * tau**2)
    return {
        "b0": b0,
        "b4": b4,
        "tau": tau,
        "or4": math.exp(b4),
        "p1": float(special.expit(b0)),
        "p4": float(special.expit(b0 + b4)),
        "raw_p1": float(first["incidence"].sum() / first["size"].sum()),
        "icc": tau**2 / (tau**2 + _LATENT),
        "icc_probit": tau**2 / (tau**2 + 1),
        "icc_sd": tau / (tau + _LATENT),
        "icc_linear": tau_lin**2 / (tau_lin**2 + float(lin.sigma) ** 2),
        "p1_marginal": p1,
        "p4_marginal": p4,
        "or4_marginal": (p4 / (1 - p4)) / (p1 / (1 - p1)),
        "or4_zeger": math.exp(b4 * shrink),
    }


@functools.cache
def _ch13_poisson() -> dict[str, float]:
    m = glmer_cached(CBPP_POISSON, "cbpp", "poisson")
    m0 = glmer_cached(CBPP_POISSON_NO_OFFSET, "cbpp", "poisson")
    b0, b4 = float(m.fixef["(Intercept)"]), float(m.fixef["period4"])
    return {
        "b0": b0,
        "b4": b4,
        "rr4": math.exp(b4),
        "count20": HERD_SIZE * math.exp(b0),
        "rate": math.exp(b0),
        "rr4_no_offset": math.exp(float(m0.fixef["period4"])),
        "count_no_offset": math.exp(float(m0.fixef["(Intercept)"])),
        "count20_no_offset": HERD_SIZE * math.exp(float(m0.fixef["(Intercept)"])),
        "count20_binomial": HERD_SIZE * _ch13_cbpp()["p1"],
    }


@functools.cache
def _ch13_grouse() -> dict[str, float]:
    m0 = glmer_cached(GROUSE, "grouseticks", "poisson")
    m1 = glmer_cached(GROUSE_OLRE, "grouseticks", "poisson")
    y = load_data("grouseticks")["TICKS"]
    rss = float(np.sum((y - np.asarray(m0.fitted(), dtype=float)) ** 2 / m0.fitted()))
    se0, se1 = _se(m0, "cHEIGHT"), _se(m1, "cHEIGHT")
    return {
        "dispersion": pearson_dispersion(m0, y),
        "pearson_sum": rss,
        "dispersion_n": rss / len(y),
        "dispersion_olre": pearson_dispersion(m1, y),
        "sd_index": _sd(m1, "INDEX"),
        "sd_brood": _sd(m1, "BROOD"),
        "se_ratio": se1 / se0,
    }


@exercise("ex13_1", "cbpp: an odds ratio and a predicted probability", points=2)
def ex13_1(or_period4: Any, p_herd_period1: Any) -> CheckResult:
    """Exercise 13.1: ``cbind(incidence, size - incidence) ~ period + (1 | herd)`` on ``cbpp``.

    Parameters
    ----------
    or_period4 : float
        The odds ratio of a new case in period 4 against period 1, within a herd.
    p_herd_period1 : float
        The probability that an animal of a typical herd (:math:`u_j = 0`) is a new case in
        period 1.

    Examples
    --------
    >>> ex13_1(..., ...).status
    'unanswered'
    """
    v = Verdict("ex13_1")
    t = _ch13_cbpp
    v.number(
        "or_period4",
        or_period4,
        lambda: t()["or4"],
        what="the odds ratio of period 4 against period 1",
        slips=lambda: [
            (t()["b4"], "this is the log odds ratio (the coefficient); exponentiate it."),
            (1 / t()["or4"], "this is the odds ratio of period 1 against period 4."),
            (
                t()["p4"] / t()["p1"],
                "this is a ratio of probabilities, not of odds; the odds are p / (1 - p).",
            ),
            (
                t()["or4_marginal"],
                "this is the population-averaged odds ratio; the question asks within a herd, "
                "exp of the coefficient.",
            ),
        ],
        hint="exp() of the fixed effect period4.",
    )
    v.number(
        "p_herd_period1",
        p_herd_period1,
        lambda: t()["p1"],
        what="the probability in a typical herd in period 1",
        slips=lambda: [
            (t()["b0"], "this is the log-odds (the intercept); apply the inverse logit."),
            (math.exp(t()["b0"]), "these are the odds; the probability is odds / (1 + odds)."),
            (
                t()["raw_p1"],
                "this is the share of new cases in the data of period 1, not the model's "
                "probability for a herd with u_j = 0.",
            ),
            (
                t()["p1_marginal"],
                "this is the probability averaged over herds; the question asks for a typical "
                "herd, u_j = 0.",
            ),
        ],
        hint="scipy.special.expit of the intercept (period 1 is the reference level).",
    )
    return v.result()


@exercise(
    "ex13_2",
    "cbpp: the latent-scale ICC of the herds",
    points=2,
    answers={"icc_is_correlation_of_cases": option(YES_NO)},
)
def ex13_2(icc_latent_herd: Any, icc_is_correlation_of_cases: Any) -> CheckResult:
    """Exercise 13.2: the latent ICC of the model of exercise 13.1 and what it describes.

    Parameters
    ----------
    icc_latent_herd : float
        :math:`\\tau^2 / (\\tau^2 + \\pi^2/3)` of the herds.
    icc_is_correlation_of_cases : str
        ``"yes"`` or ``"no"``: is it the correlation between the 0/1 outcomes (new case or not) of
        two animals of the same herd?

    Examples
    --------
    >>> ex13_2(..., "maybe").status
    'incorrect'
    """
    v = Verdict("ex13_2")
    t = _ch13_cbpp
    v.number(
        "icc_latent_herd",
        icc_latent_herd,
        lambda: t()["icc"],
        what="the latent-scale ICC",
        abs_tol=0.002,
        slips=lambda: [
            (
                t()["icc_probit"],
                "this uses a latent variance of 1, the probit link's; the logit link's is pi^2/3.",
            ),
            (t()["icc_sd"], "this puts the SD tau where its square, the variance, belongs."),
            (t()["tau"] ** 2, "this is tau^2 alone; divide it by tau^2 + pi^2/3."),
            (
                t()["icc_linear"],
                "this is the ICC of a linear model of the proportions, with its sigma^2; the "
                "logistic model's latent residual variance is pi^2/3.",
            ),
        ],
        hint="tau^2 / (tau^2 + pi^2 / 3), with tau the herd SD of the logistic model.",
    )
    v.option(
        "icc_is_correlation_of_cases",
        icc_is_correlation_of_cases,
        lambda: "no",
        what=(
            "it is a correlation of latent propensities; the correlation of two animals' 0/1 "
            "outcomes is smaller and depends on the probability"
        ),
        hint="the latent-variable view of the chapter: what has the variance pi^2/3?",
        slips={
            "yes": (
                "not quite: the ICC is a correlation of latent propensities; the 0/1 outcomes "
                "of two animals are correlated less, by an amount that depends on p."
            )
        },
    )
    return v.result()


@exercise(
    "ex13_3",
    "cbpp: conditional and population-averaged effects, predict then compute",
    points=3,
    answers={"prediction_marginal": prediction(_ATTENUATION)},
)
def ex13_3(
    prediction_marginal: Any, p_marginal_period1: Any, or_marginal_period4: Any
) -> CheckResult:
    """Exercise 13.3: the model of exercise 13.1 averaged over herds.

    Parameters
    ----------
    prediction_marginal : str
        Written before computing: is the population-averaged odds ratio of period 4 against
        period 1 ``"closer to 1"`` than the within-herd one, ``"further from 1"`` or the
        ``"same"``?
    p_marginal_period1 : float
        The probability of a new case in period 1 averaged over herds,
        :math:`\\int \\operatorname{logit}^{-1}(\\beta_0 + u)\\,\\phi(u; 0, \\tau^2)\\,du`.
    or_marginal_period4 : float
        The odds ratio of the averaged probabilities of period 4 and period 1.

    Examples
    --------
    >>> ex13_3(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex13_3")
    t = _ch13_cbpp
    v.number(
        "p_marginal_period1",
        p_marginal_period1,
        lambda: t()["p1_marginal"],
        what="the probability of period 1 averaged over herds",
        rel=0.02,
        slips=lambda: [
            (
                t()["p1"],
                "this is the probability of a typical herd, u_j = 0; average expit(beta_0 + u) "
                "over u ~ N(0, tau^2) instead.",
            ),
            (t()["raw_p1"], "this is the share of new cases in the data of period 1."),
        ],
        hint="average expit(beta_0 + tau * z) over many standard normal z (or quadrature).",
    )
    v.number(
        "or_marginal_period4",
        or_marginal_period4,
        lambda: t()["or4_marginal"],
        what="the population-averaged odds ratio",
        rel=0.02,
        slips=lambda: [
            (
                t()["or4"],
                "this is the within-herd (conditional) odds ratio, exp(beta); compute the odds "
                "of the two averaged probabilities instead.",
            ),
            (t()["p4_marginal"] / t()["p1_marginal"], "this is a ratio of probabilities."),
            (math.log(t()["or4_marginal"]), "this is the log of the odds ratio."),
        ],
        hint="p4 / (1 - p4) divided by p1 / (1 - p1), with both probabilities averaged.",
    )
    truth = t()
    v.prediction(
        "prediction_marginal",
        prediction_marginal,
        truth=lambda: (
            "closer to 1" if abs(math.log(truth["or4_marginal"])) < abs(truth["b4"]) else "same"
        ),
        reveal=v.ok("or_marginal_period4"),
    )
    return v.result()


@exercise("ex13_4", "cbpp as counts: a rate ratio with an offset", points=2)
def ex13_4(rr_period4: Any, cases_herd20: Any) -> CheckResult:
    """Exercise 13.4: ``incidence ~ period + offset(log(size)) + (1 | herd)``, Poisson, on ``cbpp``.

    Parameters
    ----------
    rr_period4 : float
        The rate ratio of new cases per animal in period 4 against period 1, within a herd.
    cases_herd20 : float
        The expected number of new cases in period 1 in a typical herd (:math:`u_j = 0`) of 20
        animals.

    Examples
    --------
    >>> ex13_4(..., ...).status
    'unanswered'
    """
    v = Verdict("ex13_4")
    t = _ch13_poisson
    no_offset = (
        "this comes from the model without offset(log(size)): it describes counts per herd, not "
        "rates per animal, and mixes the herd sizes of the periods into the effect."
    )
    v.number(
        "rr_period4",
        rr_period4,
        lambda: t()["rr4"],
        what="the rate ratio of period 4 against period 1",
        slips=lambda: [
            (t()["b4"], "this is the log rate ratio (the coefficient); exponentiate it."),
            (t()["rr4_no_offset"], no_offset),
            (1 / t()["rr4"], "this is the rate ratio of period 1 against period 4."),
        ],
        hint="exp() of the fixed effect period4 of the model with the offset.",
    )
    v.number(
        "cases_herd20",
        cases_herd20,
        lambda: t()["count20"],
        what="the expected count in a typical herd of 20",
        slips=lambda: [
            (t()["rate"], "this is the rate per animal; multiply by the 20 animals."),
            (t()["b0"], "this is the log rate per animal (the intercept)."),
            (t()["count20_no_offset"], no_offset),
            (t()["count_no_offset"], no_offset),
            (
                t()["count20_binomial"],
                "this uses the binomial model of exercise 13.1; the question asks for the "
                "Poisson model with the offset.",
            ),
        ],
        hint="20 * exp(intercept): the offset log(20) adds to the log of the mean.",
    )
    return v.result()


@exercise("ex13_5", "grouse ticks: overdispersion and an observation-level effect", points=3)
def ex13_5(dispersion_grouse: Any, sd_index_grouse: Any, se_ratio_height: Any) -> CheckResult:
    """Exercise 13.5: ``grouseticks``, without and with ``(1 | INDEX)`` (one level per chick).

    Parameters
    ----------
    dispersion_grouse : float
        The Pearson dispersion of ``TICKS ~ YEAR + cHEIGHT + (1 | BROOD)``: the
        sum of squared Pearson residuals over the residual degrees of freedom.
    sd_index_grouse : float
        The SD of the observation-level effect in the model with ``(1 | INDEX)`` added.
    se_ratio_height : float
        The standard error of ``cHEIGHT`` with ``(1 | INDEX)`` divided by the one without.

    Examples
    --------
    >>> ex13_5(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex13_5")
    t = _ch13_grouse
    v.number(
        "dispersion_grouse",
        dispersion_grouse,
        lambda: t()["dispersion"],
        what="the Pearson dispersion of the model without (1 | INDEX)",
        slips=lambda: [
            (
                t()["pearson_sum"],
                "this is the sum of squared Pearson residuals; divide it by "
                "the residual degrees of freedom.",
            ),
            (
                t()["dispersion_n"],
                "this divides by the number of chicks; divide by the residual "
                "degrees of freedom (chicks less the number of parameters).",
            ),
            (t()["dispersion_olre"], "this is the dispersion of the model with (1 | INDEX)."),
        ],
        hint="sum((y - mu)^2 / mu) / (n - number of fixed effects - number of theta).",
    )
    v.number(
        "sd_index_grouse",
        sd_index_grouse,
        lambda: t()["sd_index"],
        what="the SD of the chick-level effect",
        slips=lambda: [
            (t()["sd_index"] ** 2, "this is the variance; the question asks for the SD."),
            (t()["sd_brood"], "this is the SD of the broods."),
        ],
        hint="the sdcor column of m.varcorr, row INDEX.",
    )
    v.number(
        "se_ratio_height",
        se_ratio_height,
        lambda: t()["se_ratio"],
        what="the ratio of the standard errors",
        slips=lambda: [(1 / t()["se_ratio"], "this divides the other way round.")],
        hint="sqrt(m.vcov.loc['cHEIGHT', 'cHEIGHT']) of both models.",
    )
    return v.result()


@exercise(
    "ex13_6",
    "which effect does the question need? In words",
    kind="manual",
    answers={"answer_which_effect": words(40)},
)
def ex13_6(answer_which_effect: Any) -> CheckResult:
    """Exercise 13.6 (words, graded by hand): conditional or marginal for two questions.

    Parameters
    ----------
    answer_which_effect : str
        Four to six sentences.

    Examples
    --------
    >>> ex13_6(3).status
    'incorrect'
    """
    v = Verdict("ex13_6")
    v.text(
        "answer_which_effect",
        answer_which_effect,
        ideas=[
            (
                r"conditional|same herd|within|subject.specific|herd.specific",
                "which effect compares animals of the same herd?",
            ),
            (r"marginal|population|averag", "which effect describes all herds together?"),
            (
                r"tau|vari|differ|spread|heterogen",
                "why the two differ, and what makes the gap larger?",
            ),
        ],
    )
    return v.result()


# The checks, and the right answers they compute (the tests compare them with lme4).
__all__ = [
    *(q.qid for q in questions("13")),
    "CBPP_BINOMIAL",
    "CBPP_POISSON",
    "CBPP_POISSON_NO_OFFSET",
    "GROUSE",
    "GROUSE_OLRE",
    "HERD_SIZE",
    "_ch13_cbpp",
    "_ch13_grouse",
    "_ch13_poisson",
]
