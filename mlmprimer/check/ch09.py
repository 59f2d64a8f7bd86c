"""Checks of chapter 9, inference and model building: ``ex09_1``, ``ex09_2``, ...

Every right answer is computed here from the course's data with the course's library; the slips a
check names (a REML statistic where ML is needed, the naive p-value of a variance, a variance for a
standard deviation, the interval of another parameter ...) are computed the same way.

Examples
--------
>>> from mlmprimer import check
>>> check.ex09_3(..., ...).status
'unanswered'
"""

from __future__ import annotations

import functools
from typing import Any

from mlmprimer.check.core import (
    MORE_LESS,
    CheckResult,
    Verdict,
    confint_row,
    exercise,
    fit_cached,
    interval_part,
    load_data,
    prediction,
    questions,
    varcorr_row,
    words,
)

_SLEEP_INT = "Reaction ~ Days + (1 | Subject)"
_SLEEP_SLOPE = "Reaction ~ Days + (Days | Subject)"
_HSB_A = "mAch ~ cses + meanses + sector + (1 | school)"
_HSB_B = "mAch ~ cses + meanses + sector + minrty + (1 | school)"
_DYE = "Yield ~ 1 + (1 | Batch)"
_HSB_M5 = "mAch ~ cses + meanses + sector + cses:sector + (1 + cses | school)"
_HSB_M6 = "mAch ~ cses + meanses + sector + cses:sector + cses:meanses + (1 + cses | school)"


def _compare(*models: Any, refit: bool | None = None) -> Any:
    from mlmprimer.compare import compare

    return compare(*models, refit=refit, verbose=False)


@functools.cache
def _ch09_sleep() -> dict[str, float]:
    reml = fit_cached(_SLEEP_INT, "sleepstudy")
    ml = fit_cached(_SLEEP_INT, "sleepstudy", REML=False)
    slope = fit_cached(_SLEEP_SLOPE, "sleepstudy")
    var_reml, tau_reml = varcorr_row(reml, "Subject", "(Intercept)")
    var_ml, tau_ml = varcorr_row(ml, "Subject", "(Intercept)")
    return {
        "tau_reml": tau_reml,
        "tau_ml": tau_ml,
        "var_reml": var_reml,
        "var_ml": var_ml,
        "sigma_reml": float(reml.sigma),
        "sigma_ml": float(ml.sigma),
        "tau_slope_model": varcorr_row(slope, "Subject", "(Intercept)")[1],
    }


@functools.cache
def _ch09_minrty() -> dict[str, float]:
    a, b = fit_cached(_HSB_A, "hsb"), fit_cached(_HSB_B, "hsb")
    tab = _compare(a, b)
    reml_chisq = 2 * (b.loglik - a.loglik)
    from scipy import stats

    return {
        "chisq": float(tab.iloc[1]["Chisq"]),
        "p": float(tab.iloc[1]["Pr(>Chisq)"]),
        "loglik_diff": float(tab.iloc[1]["logLik"] - tab.iloc[0]["logLik"]),
        "chisq_reml": float(reml_chisq),
        "p_reml": float(stats.chi2.sf(reml_chisq, 1)),
    }


@functools.cache
def _ch09_dye() -> dict[str, float]:
    import statsmodels.formula.api as smf

    m = fit_cached(_DYE, "dyestuff")
    ols = smf.ols("Yield ~ 1", load_data("dyestuff")).fit()
    reml = _compare(ols, m)
    ml = _compare(ols, m, refit=True)
    return {
        "chisq": float(reml.iloc[1]["Chisq"]),
        "p_mix": float(reml.iloc[1]["Pr(>Chisq) mixture"]),
        "p_naive": float(reml.iloc[1]["Pr(>Chisq)"]),
        "loglik_diff": float(reml.iloc[1]["logLik"] - reml.iloc[0]["logLik"]),
        "chisq_ml": float(ml.iloc[1]["Chisq"]),
        "p_ml_mix": float(ml.iloc[1]["Pr(>Chisq) mixture"]),
        "p_ml_naive": float(ml.iloc[1]["Pr(>Chisq)"]),
    }


@functools.cache
def _ch09_intervals() -> dict[str, tuple[float, float]]:
    from mlmprimer.profile import confint

    m = fit_cached(_SLEEP_SLOPE, "sleepstudy")
    prof = confint(m)
    wald = confint(m, "Wald")

    tau1 = confint_row(prof, ".sig03")
    return {
        "tau1": tau1,
        "tau1_var": (tau1[0] ** 2, tau1[1] ** 2),
        "tau0": confint_row(prof, ".sig01"),
        "sigma": confint_row(prof, ".sigma"),
        "days_wald": confint_row(wald, "Days"),
        "days_profile": confint_row(prof, "Days"),
        "int_wald": confint_row(wald, "(Intercept)"),
    }


@functools.cache
def _ch09_cross() -> dict[str, float]:
    m5, m6 = fit_cached(_HSB_M5, "hsb"), fit_cached(_HSB_M6, "hsb")
    tab = _compare(m5, m6)
    var6, tau6 = varcorr_row(m6, "school", "cses")
    return {
        "chisq": float(tab.iloc[1]["Chisq"]),
        "loglik_diff": float(tab.iloc[1]["logLik"] - tab.iloc[0]["logLik"]),
        "chisq_reml": float(2 * (m6.loglik - m5.loglik)),
        "tau1": tau6,
        "tau1_var": var6,
        "tau1_m5": varcorr_row(m5, "school", "cses")[1],
        "tau0": varcorr_row(m6, "school", "(Intercept)")[1],
    }


_ML_FIXED = (
    "this comes from the REML log-likelihoods; models with different fixed effects must be "
    "compared on ML fits (mlm.compare refits them for you)."
)


@exercise(
    "ex09_1",
    "sleepstudy: tau_0 by REML and by ML, predicted first",
    points=3,
    answers={"prediction_tau0_ml": prediction(MORE_LESS)},
)
def ex09_1(prediction_tau0_ml: Any, tau0_reml: Any, tau0_ml: Any) -> CheckResult:
    """Exercise 9.1: the subjects' SD in ``Reaction ~ Days + (1 | Subject)`` by REML and by ML.

    Parameters
    ----------
    prediction_tau0_ml : str
        Written before fitting: is ML's :math:`\\hat\\tau_0` ``"larger"``, ``"smaller"`` or the
        ``"same"`` as REML's?
    tau0_reml, tau0_ml : float
        :math:`\\hat\\tau_0` (ms) of the REML and of the ML fit.

    Examples
    --------
    >>> ex09_1("bigger", ..., ...).status
    'partial'
    """
    v = Verdict("ex09_1")
    t = _ch09_sleep
    v.number(
        "tau0_reml",
        tau0_reml,
        lambda: t()["tau_reml"],
        what="the REML estimate of tau_0",
        slips=lambda: [
            (t()["tau_ml"], "this is the ML estimate; the REML fit is lmer's default."),
            (t()["var_reml"], "this looks like the variance tau_0^2; the question asks for tau_0."),
            (t()["sigma_reml"], "this is the residual SD sigma."),
            (t()["tau_slope_model"], "this is tau_0 of the model with random slopes."),
        ],
        hint="the sdcor column of m.varcorr, row Subject / (Intercept).",
    )
    v.number(
        "tau0_ml",
        tau0_ml,
        lambda: t()["tau_ml"],
        what="the ML estimate of tau_0",
        slips=lambda: [
            (t()["tau_reml"], "this is the REML estimate; refit with m.refit(REML=False)."),
            (t()["var_ml"], "this looks like the variance tau_0^2; the question asks for tau_0."),
            (t()["sigma_ml"], "this is the residual SD sigma of the ML fit."),
        ],
        hint="m.refit(REML=False), then the sdcor of the Subject row.",
    )
    truth = t()
    v.prediction(
        "prediction_tau0_ml",
        prediction_tau0_ml,
        truth=lambda: "smaller" if truth["tau_ml"] < truth["tau_reml"] else "larger",
        reveal=v.ok("tau0_reml") and v.ok("tau0_ml"),
    )
    return v.result()


@exercise("ex09_2", "Hsb82: does minority status matter? An ML likelihood-ratio test", points=2)
def ex09_2(chisq_minrty: Any, p_minrty: Any) -> CheckResult:
    """Exercise 9.2: ``+ minrty`` in ``mAch ~ cses + meanses + sector + (1 | school)``.

    Parameters
    ----------
    chisq_minrty : float
        The likelihood-ratio statistic of the ML fits.
    p_minrty : float
        Its chi-square p-value on one degree of freedom.

    Examples
    --------
    >>> ex09_2(..., ...).status
    'unanswered'
    """
    v = Verdict("ex09_2")
    t = _ch09_minrty
    v.number(
        "chisq_minrty",
        chisq_minrty,
        lambda: t()["chisq"],
        what="the likelihood-ratio statistic of the ML fits",
        # the REML statistic is within 1 % of the ML one here: a tighter tolerance tells them apart
        rel=0.003,
        slips=lambda: [
            (t()["loglik_diff"], "this is the difference of the log-likelihoods; double it."),
            (t()["chisq_reml"], _ML_FIXED),
        ],
        hint="mlm.compare(m_without, m_with) and its Chisq column.",
    )
    v.number(
        "p_minrty",
        p_minrty,
        lambda: t()["p"],
        what="the p-value of the test",
        rel=0.05,
        slips=lambda: [
            (
                t()["p"] / 2,
                "this halves the p-value; the mixture is for a variance on its boundary, not for "
                "a fixed effect.",
            ),
            (t()["p_reml"], _ML_FIXED),
        ],
        hint="the Pr(>Chisq) column of the row with minrty.",
    )
    return v.result()


@exercise("ex09_3", "Dyestuff: is there a batch variance? The boundary-corrected test", points=2)
def ex09_3(chisq_dye: Any, p_dye_mixture: Any) -> CheckResult:
    """Exercise 9.3: ``Yield ~ 1 + (1 | Batch)`` against the OLS fit ``Yield ~ 1``.

    Parameters
    ----------
    chisq_dye : float
        The likelihood-ratio statistic (REML, as ``compare`` chooses here).
    p_dye_mixture : float
        The p-value from the 50:50 mixture of chi^2_0 and chi^2_1.

    Examples
    --------
    >>> ex09_3(-1, ...).status
    'incorrect'
    """
    v = Verdict("ex09_3")
    t = _ch09_dye
    ml_msg = (
        "this comes from ML fits (refit=True, or R's anova() without refit = FALSE); the models "
        "have the same fixed effects, and compare keeps the REML criterion."
    )
    v.number(
        "chisq_dye",
        chisq_dye,
        lambda: t()["chisq"],
        what="the likelihood-ratio statistic",
        slips=lambda: [
            (t()["loglik_diff"], "this is the difference of the log-likelihoods; double it."),
            (t()["chisq_ml"], ml_msg),
        ],
        hint="mlm.compare(ols_fit, m_dye) and its Chisq column.",
    )
    v.number(
        "p_dye_mixture",
        p_dye_mixture,
        lambda: t()["p_mix"],
        what="the mixture p-value",
        rel=0.03,
        slips=lambda: [
            (
                t()["p_naive"],
                "this is the naive chi^2_1 p-value; tau^2 = 0 lies on the boundary, so use the "
                "mixture.",
            ),
            (2 * t()["p_naive"], "this doubles the p-value; the mixture halves it."),
            (t()["p_ml_mix"], ml_msg),
            (t()["p_ml_naive"], ml_msg),
        ],
        hint="the column 'Pr(>Chisq) mixture' of the row of the mixed model.",
    )
    return v.result()


@exercise(
    "ex09_4", "sleepstudy: a profile interval for tau_1, a Wald interval for beta_1", points=2
)
def ex09_4(ci_tau1_profile: Any, ci_days_wald: Any) -> CheckResult:
    """Exercise 9.4: intervals in ``Reaction ~ Days + (Days | Subject)`` (REML).

    Parameters
    ----------
    ci_tau1_profile : tuple of float
        ``(lower, upper)``: the 95 % profile interval of the SD of the subjects' slopes.
    ci_days_wald : tuple of float
        ``(lower, upper)``: the 95 % Wald interval of the average slope of ``Days``.

    Examples
    --------
    >>> ex09_4((1, 2, 3), ...).status
    'incorrect'
    """
    v = Verdict("ex09_4")
    t = _ch09_intervals()
    interval_part(
        v,
        "ci_tau1_profile",
        ci_tau1_profile,
        t["tau1"],
        what="the profile interval of tau_1",
        hint="m.tidy(conf_int=True, conf_method='profile'), the row sd__Days.",
        slips=[
            (t["tau1_var"], "these are the limits squared: an interval for the variance."),
            (t["tau0"], "this is the interval of tau_0, the SD of the intercepts."),
            (t["sigma"], "this is the interval of the residual SD sigma."),
            (t["days_profile"], "this is the profile interval of the average slope beta_1."),
        ],
    )
    interval_part(
        v,
        "ci_days_wald",
        ci_days_wald,
        t["days_wald"],
        what="the Wald interval of the average slope",
        hint="m.tidy(conf_int=True) (Wald is the default), the row Days.",
        slips=[
            (
                t["days_profile"],
                "this is the profile interval of beta_1; the question asks for the Wald interval.",
            ),
            (t["int_wald"], "this is the interval of the intercept; the question asks for Days."),
            (t["tau1"], "this is the interval of tau_1, the SD of the slopes, not of beta_1."),
        ],
    )
    return v.result()


@exercise(
    "ex09_5",
    "why REML fits with different fixed effects cannot be compared",
    kind="manual",
    answers={"answer_reml_comparison": words(30)},
)
def ex09_5(answer_reml_comparison: Any) -> CheckResult:
    """Exercise 9.5 (words, graded by hand): what is wrong with a REML test of ``sector``.

    Parameters
    ----------
    answer_reml_comparison : str
        Three to five sentences.

    Examples
    --------
    >>> ex09_5("too short").status
    'incorrect'
    """
    v = Verdict("ex09_5")
    v.text(
        "answer_reml_comparison",
        answer_reml_comparison,
        ideas=[
            (
                r"fixed|design|\bX\b|project",
                "why the REML likelihood depends on the fixed effects?",
            ),
            (r"\bML\b|maximum likelihood|refit", "which fits she should compare instead?"),
            (r"report|estimate|REML fit", "which fit to report once the test is done?"),
        ],
    )
    return v.result()


@exercise("ex09_6", "Hsb82: a second cross-level interaction, cses:meanses", points=2)
def ex09_6(chisq_cses_meanses: Any, tau1_both: Any) -> CheckResult:
    """Exercise 9.6: ``+ cses:meanses`` in the chapter's final model.

    Parameters
    ----------
    chisq_cses_meanses : float
        The likelihood-ratio statistic of the new term (ML fits).
    tau1_both : float
        The REML estimate of the SD of the ``cses`` slopes in the larger model.

    Examples
    --------
    >>> ex09_6(..., ...).status
    'unanswered'
    """
    v = Verdict("ex09_6")
    t = _ch09_cross
    v.number(
        "chisq_cses_meanses",
        chisq_cses_meanses,
        lambda: t()["chisq"],
        what="the likelihood-ratio statistic of the ML fits",
        slips=lambda: [
            (t()["loglik_diff"], "this is the difference of the log-likelihoods; double it."),
            (t()["chisq_reml"], _ML_FIXED),
        ],
        hint="mlm.compare(m5, m6) and its Chisq column.",
    )
    v.number(
        "tau1_both",
        tau1_both,
        lambda: t()["tau1"],
        what="the SD of the cses slopes with both interactions",
        slips=lambda: [
            (t()["tau1_var"], "this looks like the variance tau_1^2; the question asks for tau_1."),
            (t()["tau1_m5"], "this is tau_1 of the chapter's final model, without cses:meanses."),
            (t()["tau0"], "this is tau_0, the SD of the intercepts."),
        ],
        hint="the sdcor of the row of m6.varcorr whose var1 is cses and var2 is missing.",
    )
    return v.result()


__all__ = [
    *(q.qid for q in questions("09")),
    "_ch09_sleep",
    "_ch09_minrty",
    "_ch09_dye",
    "_ch09_intervals",
    "_ch09_cross",
]
