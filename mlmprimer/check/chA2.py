"""Checks of appendix A2, Python and R side by side: ``exA2_1``, ``exA2_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter). The right answers come from ``mlmprimer.lmer``
fits of the same models (``tests/test_syntax.py`` and the appendix show that ``statsmodels``
agrees with them).
"""

from __future__ import annotations

import functools
from typing import Any

from mlmprimer.check.core import (
    MORE_LESS,
    CheckResult,
    Verdict,
    exercise,
    fit_cached,
    load_data,
    prediction,
    questions,
    varcorr_row,
    words,
)

_UNC = "mAch ~ ses + (1 | school) + (0 + ses | school)"
_COR = "mAch ~ ses + (1 + ses | school)"
_NO_INTERCEPT = "mAch ~ ses + (0 + ses | school)"
_INT = "mAch ~ ses + (1 | school)"
_NULL = "mAch ~ 1 + (1 | school)"
_SCHOOL, _SES = "1224", 0.0


@functools.cache
def _chA2_translate() -> dict[str, float]:
    unc, cor = fit_cached(_UNC, "hsb"), fit_cached(_COR, "hsb")
    no_int, ml = fit_cached(_NO_INTERCEPT, "hsb"), fit_cached(_UNC, "hsb", REML=False)
    slope = varcorr_row(unc, "school.1", "ses")
    return {
        "llf": unc.loglik,
        "llf_cor": cor.loglik,
        "llf_no_int": no_int.loglik,
        "llf_ml": ml.loglik,
        "llf_int": fit_cached(_INT, "hsb").loglik,
        "tau1sq": slope[0],
        "tau1": slope[1],
        "ratio": slope[0] / unc.sigma**2,
        "tau1sq_cor": varcorr_row(cor, "school", "ses")[0],
        "tau1sq_ml": varcorr_row(ml, "school.1", "ses")[0],
    }


@functools.cache
def _chA2_null() -> dict[str, float]:
    m = fit_cached(_NULL, "hsb")
    tau0sq, tau0 = varcorr_row(m, "school", "(Intercept)")
    sigma2 = m.sigma**2
    return {
        "tau0sq": tau0sq,
        "tau0": tau0,
        "sigma2": sigma2,
        "ratio": tau0sq / sigma2,
        "icc": tau0sq / (tau0sq + sigma2),
        "ml": varcorr_row(fit_cached(_NULL, "hsb", REML=False), "school", "(Intercept)")[0],
    }


@functools.cache
def _chA2_predict() -> dict[str, float]:
    import pandas as pd

    m = fit_cached(_INT, "hsb")
    hsb = load_data("hsb")
    new = pd.DataFrame({"ses": [_SES], "school": [_SCHOOL]}).astype({"school": hsb["school"].dtype})
    return {
        "group": float(m.predict(new, re=True).iloc[0]),
        "population": float(m.predict(new, re=False).iloc[0]),
        "effect": float(m.ranef["school"].loc[_SCHOOL, "(Intercept)"]),
    }


@exercise("exA2_1", "translate an uncorrelated slope into statsmodels", points=2)
def exA2_1(llf_unc_sm: Any, tau1sq_unc_sm: Any) -> CheckResult:
    """Exercise A2.1: lme4's ``(1 | school) + (0 + ses | school)`` fitted with statsmodels.

    The lme4 call is ``lmer(mAch ~ ses + (1 | school) + (0 + ses | school), data = Hsb82)``.

    Parameters
    ----------
    llf_unc_sm : float
        The REML log-likelihood of the statsmodels fit.
    tau1sq_unc_sm : float
        The variance of the schools' ses slopes, in the data's units (points squared per unit
        of SES squared).

    Examples
    --------
    >>> exA2_1("many", ...).status
    'incorrect'
    """
    v = Verdict("exA2_1")
    t = _chA2_translate
    v.number(
        "llf_unc_sm",
        llf_unc_sm,
        lambda: t()["llf"],
        what="the REML log-likelihood of the uncorrelated model",
        rel=0.0,
        abs_tol=0.01,
        slips=lambda: [
            (
                t()["llf_cor"],
                're_formula="~ses" gives correlated intercepts and slopes: (ses | school). The '
                'slope goes into vc_formula={"ses": "0 + ses"}, the intercept stays in '
                're_formula="1".',
            ),
            (
                t()["llf_no_int"],
                "this model has no random intercept: with vc_formula, statsmodels adds one only "
                'when re_formula="1" is written.',
            ),
            (t()["llf_ml"], "this is the ML fit; lme4's default, and the question's, is REML."),
            (t()["llf_int"], "this is the random-intercept model: the slope variance is missing."),
        ],
        hint='smf.mixedlm("mAch ~ ses", hsb, groups="school", re_formula=..., vc_formula=...).',
    )
    v.number(
        "tau1sq_unc_sm",
        tau1sq_unc_sm,
        lambda: t()["tau1sq"],
        what="the variance of the school slopes",
        slips=lambda: [
            (
                t()["ratio"],
                "this is the variance divided by sigma^2, as r.params stores it; the variance "
                "itself is r.vcomp.",
            ),
            (t()["tau1"], "this is the standard deviation; the question asks for the variance."),
            (t()["tau1sq_cor"], "this is the slope variance of the correlated model."),
            (t()["tau1sq_ml"], "this is the ML estimate; fit by REML."),
        ],
        hint="r.vcomp holds the variance components in the data's units.",
    )
    return v.result()


@exercise(
    "exA2_2",
    "which tool's variance differs: predict, then read statsmodels' parameters",
    points=2,
    answers={"prediction_params_var": prediction(MORE_LESS)},
)
def exA2_2(prediction_params_var: Any, tau0sq_null: Any, params_var_null: Any) -> CheckResult:
    """Exercise A2.2: the school variance of the null model in statsmodels' ``params``.

    The model is ``mAch ~ 1 + (1 | school)`` on ``hsb``, fitted by REML.

    Parameters
    ----------
    prediction_params_var : str
        Written before fitting: whether ``r.params["school Var"]`` is ``"larger"`` or
        ``"smaller"`` than lme4's variance of the school intercepts (or the ``"same"``).
    tau0sq_null : float
        The variance of the school intercepts, tau_0^2, in points squared.
    params_var_null : float
        ``r.params["school Var"]`` of the statsmodels fit.

    Examples
    --------
    >>> exA2_2("bigger", ..., ...).status  # a prediction alone earns its share
    'partial'
    """
    v = Verdict("exA2_2")
    t = _chA2_null
    v.number(
        "tau0sq_null",
        tau0sq_null,
        lambda: t()["tau0sq"],
        what="the variance of the school intercepts",
        slips=lambda: [
            (t()["ratio"], "this is r.params: the variance divided by sigma^2. Use r.cov_re."),
            (t()["tau0"], "this is the standard deviation; the question asks for the variance."),
            (t()["sigma2"], "this is the residual variance sigma^2 (statsmodels' scale)."),
            (t()["ml"], "this is the ML estimate; fit by REML."),
        ],
        hint="r.cov_re, or m.varcorr of the lmer fit.",
    )
    v.number(
        "params_var_null",
        params_var_null,
        lambda: t()["ratio"],
        what='r.params["school Var"], the variance relative to sigma^2',
        slips=lambda: [
            (
                t()["tau0sq"],
                "this is the variance itself (r.cov_re); r.params holds another number.",
            ),
            (
                t()["icc"],
                "this is the ICC, tau^2 / (tau^2 + sigma^2); r.params divides by sigma^2 only.",
            ),
        ],
        hint='print r.params and read the row "school Var".',
    )
    v.prediction(
        "prediction_params_var",
        prediction_params_var,
        truth=lambda: "smaller" if t()["ratio"] < t()["tau0sq"] else "larger",
        reveal=v.ok("tau0sq_null") and v.ok("params_var_null"),
    )
    return v.result()


@exercise("exA2_3", "two predictions for one school", points=2)
def exA2_3(pred_sm: Any, pred_lmer: Any) -> CheckResult:
    """Exercise A2.3: statsmodels' and lmer's predictions for a pupil of school 1224 at ses 0.

    The model is ``mAch ~ ses + (1 | school)`` on ``hsb``, fitted by REML.

    Parameters
    ----------
    pred_sm : float
        What statsmodels' ``r.predict`` gives for the new row.
    pred_lmer : float
        What ``m.predict`` of the lmer fit gives for it.

    Examples
    --------
    >>> exA2_3("twelve", ...).status
    'incorrect'
    """
    v = Verdict("exA2_3")
    t = _chA2_predict
    v.number(
        "pred_sm",
        pred_sm,
        lambda: t()["population"],
        what="statsmodels' prediction, from the fixed effects only",
        slips=lambda: [
            (t()["group"], "this includes the school's effect; statsmodels' predict does not."),
            (t()["effect"], "this is the school's effect alone."),
        ],
        hint="r.predict(new) with new = a one-row frame of ses and school.",
    )
    v.number(
        "pred_lmer",
        pred_lmer,
        lambda: t()["group"],
        what="lmer's prediction, with the school's effect",
        slips=lambda: [
            (
                t()["population"],
                "this is the population prediction, m.predict(new, re=False); the default "
                "re=True adds the school's effect.",
            ),
            (t()["effect"], "this is the school's effect alone; add the fixed part."),
        ],
        hint="m.predict(new), with the school as a level of the data's factor.",
    )
    return v.result()


@exercise(
    "exA2_4",
    "why the two predictions differ, in words",
    kind="manual",
    answers={"answer_predictions": words(25)},
)
def exA2_4(answer_predictions: Any) -> CheckResult:
    """Exercise A2.4 (words, graded by hand): why statsmodels' and lmer's predictions differ.

    Parameters
    ----------
    answer_predictions : str
        Why they differ, which is the prediction for a pupil of school 1224, and what each
        tool gives for a school not in the data.

    Examples
    --------
    >>> exA2_4("short").status
    'incorrect'
    """
    v = Verdict("exA2_4")
    v.text(
        "answer_predictions",
        answer_predictions,
        ideas=[
            (
                r"random effect|school.{0,20}effect|blup|conditional mode|u_j|ranef",
                "the school's own effect?",
            ),
            (r"fixed|population|average|re\s*=\s*false", "what the other prediction leaves out?"),
            (
                r"new school|unseen|not in the data|other school",
                "what either gives for a new school?",
            ),
        ],
    )
    return v.result()


# The checks, and the right answers they compute.
__all__ = [
    *(q.qid for q in questions("A2")),
    "_chA2_translate",
    "_chA2_null",
    "_chA2_predict",
]
