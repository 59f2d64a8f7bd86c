"""Checks of chapter 2, why not OLS: ``ex02_1``, ``ex02_2``, ...

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
    MORE_LESS,
    REL_TOL,
    CheckResult,
    Verdict,
    describe_type,
    exercise,
    fit_cached,
    fixef_se,
    intercept_variance,
    is_unanswered,
    lme4_theta_slip,
    load_data,
    prediction,
    questions,
    statsmodels_formula,
    variant_seed,
    words,
)

_SIM02: dict[str, Any] = {"n_schools": 40, "n_students": 25}
_SEED02 = 2  # public variant of exercise 2.6; each student has their own
_SECTOR = "sectorCatholic"
_SECTOR_SM = "sector[T.Catholic]"


@functools.cache
def _ch02_pooling() -> dict[str, Any]:
    hsb = load_data("hsb")
    means = hsb.groupby("school", observed=True)["mAch"].mean()
    sizes = hsb.groupby("school", observed=True).size()
    smallest = sizes.idxmin()
    m0 = fit_cached("mAch ~ 1 + (1 | school)", "hsb")
    coef = m0.coef()
    coef = coef["school"] if isinstance(coef, dict) else coef
    ranef = m0.ranef["school"]
    tau2, sigma2 = intercept_variance(m0, "school"), float(m0.sigma) ** 2
    weight = tau2 / (tau2 + sigma2 / sizes[smallest])
    return {
        "grand": float(hsb["mAch"].mean()),
        "mean_of_means": float(means.mean()),
        "means": means,
        "medians": hsb.groupby("school", observed=True)["mAch"].median(),
        "smallest": smallest,
        "own": float(means[smallest]),
        "partial": float(coef.loc[smallest, "(Intercept)"]),
        "u": float(ranef.loc[smallest, "(Intercept)"]),
        "mu": float(m0.fixef["(Intercept)"]),
        "weight": float(weight),
    }


@functools.cache
def _ch02_se() -> dict[str, float]:
    import statsmodels.api as sm

    smf = statsmodels_formula()
    hsb = load_data("hsb")
    ols = smf.ols("mAch ~ sector", hsb).fit()
    cluster = smf.ols("mAch ~ sector", hsb).fit(
        cov_type="cluster", cov_kwds={"groups": hsb["school"].cat.codes}
    )
    gee = smf.gee("mAch ~ sector", "school", hsb, cov_struct=sm.cov_struct.Exchangeable()).fit()
    gee_ind = smf.gee("mAch ~ sector", "school", hsb, cov_struct=sm.cov_struct.Independence()).fit()
    lme = fit_cached("mAch ~ sector + (1 | school)", "hsb")
    lme_ml = fit_cached("mAch ~ sector + (1 | school)", "hsb", REML=False)
    return {
        "coef": float(ols.params[_SECTOR_SM]),
        "ols": float(ols.bse[_SECTOR_SM]),
        "cluster": float(cluster.bse[_SECTOR_SM]),
        "gee": float(gee.bse[_SECTOR_SM]),
        "gee_naive": float(gee.standard_errors(cov_type="naive")[1]),
        "gee_ind": float(gee_ind.bse[_SECTOR_SM]),
        "lme": fixef_se(lme, _SECTOR),
        "lme_ml": fixef_se(lme_ml, _SECTOR),
    }


@functools.cache
def _ch02_sim(seed: int = _SEED02) -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    smf = statsmodels_formula()
    df = simulate.school_level_predictor(**_SIM02, rng=seed)
    truth = df.attrs["truth"]
    m = len(df) / df["school"].nunique()
    icc = truth["tau"] ** 2 / (truth["tau"] ** 2 + truth["sigma"] ** 2)
    ols = smf.ols("y ~ w", df).fit()
    lme = lmer("y ~ w + (1 | school)", df)
    return {
        "deff": 1 + (m - 1) * icc,
        "deff_m": 1 + m * icc,
        "deff_sd": 1 + (m - 1) * truth["tau"] / (truth["tau"] + truth["sigma"]),
        "ratio": fixef_se(lme, "w") / float(ols.bse["w"]),
    }


def _school_means_part(v: Verdict, value: Any) -> None:
    name = "school_means"
    t = _ch02_pooling()
    means: pd.Series = t["means"]
    hint = "hsb.groupby('school', observed=True)['mAch'].mean() gives one mean per school."
    if is_unanswered(value):
        v.add(name, "unanswered", "not answered yet.")
        return
    if isinstance(value, pd.DataFrame):
        v.add(name, "incorrect", "expected one column (a Series), got a DataFrame.", hint)
        return
    if not isinstance(value, pd.Series | np.ndarray | list | tuple):
        v.add(
            name, "incorrect", f"expected a Series of school means, got a {describe_type(value)}."
        )
        return
    series = value if isinstance(value, pd.Series) else pd.Series(np.asarray(value).reshape(-1))
    if len(series) != len(means):
        v.add(
            name,
            "incorrect",
            f"expected one mean per school ({len(means)} schools), got {len(series)} values.",
            hint,
        )
        return
    try:
        vals = series.astype(float)
    except (TypeError, ValueError):
        v.add(name, "incorrect", "expected numbers, one per school.", hint)
        return
    labels = [str(i) for i in series.index]
    if isinstance(value, pd.Series) and set(labels) == {str(i) for i in means.index}:
        mine = pd.Series(vals.to_numpy(), index=labels)
        target = pd.Series(means.to_numpy(), index=[str(i) for i in means.index])[labels]
        medians = pd.Series(t["medians"].to_numpy(), index=[str(i) for i in means.index])[labels]
    else:
        mine = pd.Series(vals.to_numpy())
        target, medians = pd.Series(means.to_numpy()), pd.Series(t["medians"].to_numpy())
    if np.allclose(mine, target, rtol=REL_TOL, atol=0.01):
        v.add(name, "correct", "right: one no-pooling mean per school.")
    elif np.allclose(mine, medians, rtol=REL_TOL, atol=0.01):
        v.add(name, "incorrect", "these are the school medians; the question asks for means.", hint)
    elif np.allclose(np.sort(mine), np.sort(target), rtol=REL_TOL, atol=0.01):
        v.add(
            name,
            "incorrect",
            "the right values, but not in the schools' order: keep the school labels as index.",
            hint,
        )
    else:
        v.add(name, "incorrect", "these are not the schools' mean maths scores.", hint)


@exercise("ex02_1", "complete and no pooling of the school means", points=2)
def ex02_1(grand_mean: Any, school_means: Any, spread_school_means: Any) -> CheckResult:
    """Exercise 2.1: complete pooling (one mean) and no pooling (one mean per school), ``hsb``.

    Parameters
    ----------
    grand_mean : float
        Mean of ``mAch`` over all pupils.
    school_means : pandas.Series
        Mean of ``mAch`` in each school, indexed by school.
    spread_school_means : float
        How far apart the school means are: the largest minus the smallest.

    Examples
    --------
    >>> ex02_1(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex02_1")
    t = _ch02_pooling
    v.number(
        "grand_mean",
        grand_mean,
        lambda: t()["grand"],
        what="the complete-pooling mean",
        rel=0.002,
        slips=lambda: [
            (
                t()["mean_of_means"],
                "this is the mean of the school means, which weights every school equally; "
                "complete pooling ignores the schools: average all pupils.",
            ),
            lme4_theta_slip(
                fit_cached("mAch ~ 1 + (1 | school)", "hsb"),
                "complete pooling is the mean of mAch over all pupils",
            ),
        ],
        hint="complete pooling: one mean of mAch over every pupil.",
    )
    _school_means_part(v, school_means)
    v.number(
        "spread_school_means",
        spread_school_means,
        lambda: float(t()["means"].max() - t()["means"].min()),
        what="the distance from the lowest school mean to the highest",
        slips=lambda: [
            (float(t()["means"].std()), "this is the SD of the school means; take max - min."),
            (
                float(t()["medians"].max() - t()["medians"].min()),
                "this uses the school medians; the question asks for the means.",
            ),
        ],
        hint="school_means.max() - school_means.min().",
    )
    return v.result()


_CLOSER = {
    "own mean": ("own", "own mean", "its own mean", "school mean", "no pooling", "school"),
    "grand mean": ("grand", "grand mean", "overall", "overall mean", "complete pooling"),
}


@exercise(
    "ex02_2",
    "partial pooling of the smallest school: predict, then compute",
    points=2,
    answers={"prediction_closer": prediction(_CLOSER)},
)
def ex02_2(prediction_closer: Any, partial_smallest: Any) -> CheckResult:
    """Exercise 2.2: the partial-pooling estimate of the smallest school of ``hsb``.

    Parameters
    ----------
    prediction_closer : str
        Written before fitting: will the smallest school's partial-pooling estimate lie closer to
        its ``"own mean"`` or to the ``"grand mean"``?
    partial_smallest : float
        That school's intercept in ``mAch ~ 1 + (1 | school)`` (its ``coef()``).

    Examples
    --------
    >>> ex02_2(..., ...).status
    'unanswered'
    """
    v = Verdict("ex02_2")
    t = _ch02_pooling
    v.number(
        "partial_smallest",
        partial_smallest,
        lambda: t()["partial"],
        what="the smallest school's partial-pooling estimate",
        slips=lambda: [
            (t()["own"], "this is the school's own mean (no pooling), not the model's estimate."),
            (t()["grand"], "this is the grand mean (complete pooling)."),
            (t()["u"], "this is the school's deviation u_j only; add the fixed intercept."),
            (t()["mu"], "this is the fixed intercept, the same for every school."),
        ],
        hint="m.coef() holds each school's intercept: fixed intercept plus its random effect.",
        weight=1.0,
    )
    truth = t()
    v.prediction(
        "prediction_closer",
        prediction_closer,
        truth=lambda: "own mean" if truth["weight"] > 0.5 else "grand mean",
        reveal=v.ok("partial_smallest"),
    )
    return v.result()


@exercise(
    "ex02_3",
    "standard error of a school-level predictor: predict, then compare",
    points=3,
    answers={"prediction_se_sector": prediction(MORE_LESS)},
)
def ex02_3(prediction_se_sector: Any, se_sector_ols: Any, se_sector_lme: Any) -> CheckResult:
    """Exercise 2.3: the standard error of ``sector`` (a level-2 predictor), OLS and mixed model.

    Parameters
    ----------
    prediction_se_sector : str
        Written before fitting: will the mixed model's standard error of ``sector`` be
        ``"larger"``, ``"smaller"`` or the ``"same"`` as the OLS one?
    se_sector_ols : float
        Standard error of ``sectorCatholic`` in the OLS fit ``mAch ~ sector``.
    se_sector_lme : float
        Its standard error in ``mAch ~ sector + (1 | school)`` (REML).

    Examples
    --------
    >>> ex02_3(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex02_3")
    t = _ch02_se
    var_msg = "this looks like a variance (SE squared); take its square root."
    v.number(
        "se_sector_ols",
        se_sector_ols,
        lambda: t()["ols"],
        what="the OLS standard error of sector",
        slips=lambda: [
            (t()["ols"] ** 2, var_msg),
            (t()["coef"], "this is the coefficient itself, not its standard error."),
            (t()["lme"], "this is the mixed model's standard error."),
            (t()["cluster"], "this is a cluster-robust standard error; use the plain OLS one."),
        ],
        hint="smf.ols('mAch ~ sector', hsb).fit().bse",
    )
    v.number(
        "se_sector_lme",
        se_sector_lme,
        lambda: t()["lme"],
        what="the mixed model's standard error of sector",
        slips=lambda: [
            (t()["lme"] ** 2, var_msg),
            (t()["ols"], "this is the OLS standard error."),
            (t()["lme_ml"], "this is the ML fit's value; use the default REML fit."),
        ],
        hint="np.sqrt(m.vcov.loc['sectorCatholic', 'sectorCatholic'])",
    )
    truth = t()
    v.prediction(
        "prediction_se_sector",
        prediction_se_sector,
        truth=lambda: "larger" if truth["lme"] > truth["ols"] else "smaller",
        reveal=v.ok("se_sector_ols") and v.ok("se_sector_lme"),
    )
    return v.result()


@exercise("ex02_4", "cluster-robust and GEE standard errors of sector", points=2)
def ex02_4(se_sector_cluster: Any, se_sector_gee: Any) -> CheckResult:
    """Exercise 2.4: two repairs of OLS for clustered data, on the ``sector`` coefficient.

    Parameters
    ----------
    se_sector_cluster : float
        Cluster-robust standard error (clusters = schools) of ``sector`` in OLS ``mAch ~ sector``.
    se_sector_gee : float
        Its robust standard error in a GEE with an exchangeable working correlation.

    Examples
    --------
    >>> ex02_4(..., ...).status
    'unanswered'
    """
    v = Verdict("ex02_4")
    t = _ch02_se
    var_msg = "this looks like a variance (SE squared); take its square root."
    v.number(
        "se_sector_cluster",
        se_sector_cluster,
        lambda: t()["cluster"],
        what="the cluster-robust standard error",
        slips=lambda: [
            (t()["cluster"] ** 2, var_msg),
            (t()["ols"], "this is the plain OLS standard error, not the cluster-robust one."),
        ],
        hint="fit(cov_type='cluster', cov_kwds={'groups': hsb['school'].cat.codes})",
    )
    v.number(
        "se_sector_gee",
        se_sector_gee,
        lambda: t()["gee"],
        what="the GEE robust standard error",
        slips=lambda: [
            (t()["gee"] ** 2, var_msg),
            (t()["gee_naive"], "this is the model-based (naive) SE; use the robust one, .bse."),
            (
                t()["gee_ind"],
                "this GEE used the independence working correlation; use exchangeable.",
            ),
        ],
        hint="smf.gee('mAch ~ sector', 'school', hsb, cov_struct=sm.cov_struct.Exchangeable())",
    )
    return v.result()


@exercise(
    "ex02_5",
    "why OLS fails for a school-level predictor, in words",
    kind="manual",
    answers={"answer_why_ols": words(30)},
)
def ex02_5(answer_why_ols: Any) -> CheckResult:
    """Exercise 2.5 (words, graded by hand): why OLS understates the uncertainty of ``sector``.

    Parameters
    ----------
    answer_why_ols : str
        Three to five sentences.

    Examples
    --------
    >>> ex02_5("").status
    'unanswered'
    """
    v = Verdict("ex02_5")
    v.text(
        "answer_why_ols",
        answer_why_ols,
        ideas=[
            (r"independen", "which assumption of OLS the schools break?"),
            (r"160|school", "how many independent pieces of information sector really has?"),
            (
                r"fixed.effect|dumm|collinear|constant within|absorb|alias",
                "why a school fixed-effects model cannot estimate sector at all?",
            ),
        ],
    )
    return v.result()


@exercise("ex02_6", "simulated schools: design effect and the SE ratio", points=2, seed=_SEED02)
def ex02_6(deff_true: Any, se_ratio: Any, *, student_id: Any = None) -> CheckResult:
    """Exercise 2.6: on ``simulate.school_level_predictor(n_schools=40, n_students=25, rng=seed)``.

    ``seed = check.variant_seed("ex02_6", student_id)``: each student's own draw (2 without a
    student id, the public variant).

    Parameters
    ----------
    deff_true : float
        The design effect :math:`1 + (m - 1)\\rho_I` from the simulation's true ``tau`` and
        ``sigma`` (``attrs["truth"]``), with ``m`` pupils per school.
    se_ratio : float
        Standard error of ``w`` in ``y ~ w + (1 | school)`` divided by its OLS standard error.
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> ex02_6(..., ...).status
    'unanswered'
    """
    v = Verdict("ex02_6")
    seed = variant_seed("ex02_6", student_id)

    def t() -> dict[str, Any]:
        return _ch02_sim(seed)

    v.number(
        "deff_true",
        deff_true,
        lambda: t()["deff"],
        what="the true design effect",
        slips=lambda: [
            (t()["deff_m"], "this uses m instead of m - 1."),
            (t()["deff_sd"], "this ICC uses standard deviations; the ICC is a ratio of variances."),
            (math.sqrt(t()["deff"]), "this is the square root of the design effect."),
        ],
        hint="ICC = tau^2 / (tau^2 + sigma^2) from attrs['truth'], m = pupils per school.",
    )
    v.number(
        "se_ratio",
        se_ratio,
        lambda: t()["ratio"],
        what="the ratio of the two standard errors",
        slips=lambda: [
            (1 / t()["ratio"], "this is the ratio the other way round: mixed model over OLS."),
            (t()["ratio"] ** 2, "this is the ratio of the variances; use standard errors."),
        ],
        hint="divide the mixed model's SE of w by the OLS SE of w.",
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        result.message = (
            "every part is right. Compare the ratio with the square root of the design effect, "
            f"{math.sqrt(truth['deff']):.2f}: that is how much too small the OLS standard error is."
        )
    return result


# The checks, and the right answers they compute (the tests compare them with lme4 and the truth).
__all__ = [
    *(q.qid for q in questions("02")),
    "_ch02_pooling",
    "_ch02_se",
    "_ch02_sim",
]
