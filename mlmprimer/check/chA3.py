"""Checks of appendix A3, big data: ``exA3_1``, ``exA3_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter). The exercises work on High School and Beyond
(``hsb``) written to Parquet files; the right answers come from the data frame itself, by pandas,
and from in-memory ``mlmprimer.lmer`` fits of it, not from the file-based path the student uses
(the appendix shows that the two fits agree).
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

_SCHOOL = "1224"
_RI = "mAch ~ ses + (1 | school)"
_CONTEXT = "mAch ~ ses + meanses + (1 | school)"
_SPLIT_ON = ("sector", "Public")  # exercise A3.3 writes these rows to one file, the rest to another


@functools.cache
def _chA3_sums() -> dict[str, float]:
    hsb = load_data("hsb")
    sizes = hsb.groupby("school", observed=True).size()
    one = hsb[hsb["school"] == _SCHOOL]
    return {
        "groups": float(sizes.size),
        "rows": float(len(hsb)),
        "largest": float(sizes.max()),
        "smallest": float(sizes.min()),
        "mean_size": float(sizes.mean()),
        "sum_y": float(one["mAch"].sum()),
        "mean_y": float(one["mAch"].mean()),
        "sum_ses": float(one["ses"].sum()),
        "n_school": float(len(one)),
        "sum_all": float(hsb["mAch"].sum()),
    }


@functools.cache
def _chA3_interval() -> dict[str, Any]:
    from mlmprimer.profile import confint

    m = fit_cached(_CONTEXT, "hsb")
    ml = fit_cached(_CONTEXT, "hsb", REML=False)
    ri = fit_cached(_RI, "hsb")

    prof = confint(m, parm=[".sig01", ".sigma"])
    tau_ci = confint_row(prof, ".sig01")
    tausq, tau = varcorr_row(m, "school", "(Intercept)")
    return {
        "tau": tau,
        "tausq": tausq,
        "tau_ml": varcorr_row(ml, "school", "(Intercept)")[1],
        "tau_ri": varcorr_row(ri, "school", "(Intercept)")[1],
        "sigma": float(m.sigma),
        "ci": tau_ci,
        "ci_var": (tau_ci[0] ** 2, tau_ci[1] ** 2),
        "ci_sigma": confint_row(prof, ".sigma"),
        "ci_90": confint_row(confint(m, level=0.90, parm=[".sig01"]), ".sig01"),
        "ci_ri": confint_row(confint(ri, parm=[".sig01"]), ".sig01"),
    }


@functools.cache
def _chA3_split() -> dict[str, float]:
    from mlmprimer.model import lmer

    hsb = load_data("hsb")
    column, value = _SPLIT_ON
    part = hsb[hsb[column] == value]
    part = part.assign(school=part["school"].cat.remove_unused_categories())
    rest = hsb[hsb[column] != value]
    rest = rest.assign(school=rest["school"].cat.remove_unused_categories())
    one, other = lmer(_RI, part), lmer(_RI, rest)
    return {
        "llf": fit_cached(_RI, "hsb").loglik,
        "llf_ml": fit_cached(_RI, "hsb", REML=False).loglik,
        "llf_part": one.loglik,
        "llf_rest": other.loglik,
        "llf_added": one.loglik + other.loglik,
        "llf_context": fit_cached(_CONTEXT, "hsb").loglik,
    }


@functools.cache
def _chA3_residuals() -> dict[str, float]:
    m = fit_cached(_CONTEXT, "hsb")
    hsb = load_data("hsb")
    mine = (hsb["school"] == _SCHOOL).to_numpy()
    resid = m.residuals()[mine]
    marginal = hsb["mAch"][mine] - m.predict(hsb[mine], re=False)
    return {
        "sd": float(resid.std(ddof=1)),
        "sd_pop": float(resid.std(ddof=0)),
        "sd_y": float(hsb["mAch"][mine].std(ddof=1)),
        "sigma": float(m.sigma),
        "mean": float(resid.mean()),
        "mean_marginal": float(marginal.mean()),
    }


@exercise("exA3_1", "the sums a random intercept needs, by SQL on a Parquet file", points=3)
def exA3_1(n_schools_sql: Any, largest_school_sql: Any, sum_mach_1224: Any) -> CheckResult:
    """Exercise A3.1: group sizes and a group sum of ``hsb``, computed by DuckDB from Parquet.

    The model is ``mAch ~ 1 + (1 | school)``; its sums are the school sizes n_j and the
    school totals of ``mAch``.

    Parameters
    ----------
    n_schools_sql : int
        The number of schools J.
    largest_school_sql : int
        The number of pupils in the largest school, max n_j.
    sum_mach_1224 : float
        The total of ``mAch`` over the pupils of school 1224, one entry of Z'y.

    Examples
    --------
    >>> exA3_1("many", ..., ...).status
    'incorrect'
    """
    v = Verdict("exA3_1")
    t = _chA3_sums
    v.number(
        "n_schools_sql",
        n_schools_sql,
        lambda: t()["groups"],
        what="the number of schools",
        integer=True,
        slips=lambda: [
            (t()["rows"], "this is the number of rows (pupils); count the distinct schools."),
        ],
        hint="SELECT count(DISTINCT school) FROM ..., or count the rows of a GROUP BY school.",
    )
    v.number(
        "largest_school_sql",
        largest_school_sql,
        lambda: t()["largest"],
        what="the size of the largest school",
        integer=True,
        slips=lambda: [
            (t()["smallest"], "this is the smallest school; the question asks for the largest."),
            (t()["groups"], "this is the number of schools, not the size of one."),
            (t()["n_school"], "this is the size of school 1224, not of the largest school."),
        ],
        hint="count(*) per school in a GROUP BY, then max() of those counts.",
    )
    v.number(
        "sum_mach_1224",
        sum_mach_1224,
        lambda: t()["sum_y"],
        what="the total of mAch in school 1224",
        rel=1e-4,
        abs_tol=0.005,
        slips=lambda: [
            (t()["mean_y"], "this is the mean of mAch in the school; the model needs the sum."),
            (t()["sum_ses"], "this is the total of ses; the question asks for mAch."),
            (t()["sum_all"], "this is the total over all pupils; keep only school 1224."),
        ],
        hint="SELECT sum(mAch) FROM ... WHERE school = '1224'.",
    )
    return v.result()


@exercise("exA3_2", "a fit from the file: the school SD and its profile interval", points=2)
def exA3_2(tau_file: Any, ci_tau_file: Any) -> CheckResult:
    """Exercise A3.2: ``mAch ~ ses + meanses + (1 | school)`` fitted from ``hsb.parquet``.

    Parameters
    ----------
    tau_file : float
        The SD of the school intercepts, tau, of the REML fit.
    ci_tau_file : tuple of float
        ``(lower, upper)``: its 95 % profile interval.

    Examples
    --------
    >>> exA3_2(..., (1, 2, 3)).status
    'incorrect'
    """
    v = Verdict("exA3_2")
    t = _chA3_interval
    v.number(
        "tau_file",
        tau_file,
        lambda: t()["tau"],
        what="the SD of the school intercepts",
        rel=0.003,  # REML and ML differ by less than 1 % here
        slips=lambda: [
            (t()["tausq"], "this is the variance tau^2; the question asks for the SD tau."),
            (t()["tau_ml"], "this is the ML estimate; lmer fits by REML unless REML=False."),
            (
                t()["tau_ri"],
                "this is tau of the model without meanses: use the question's formula.",
            ),
            (t()["sigma"], "this is the residual SD sigma, not the SD between schools."),
        ],
        hint='m.varcorr, the row with grp "school".',
    )
    interval_part(
        v,
        "ci_tau_file",
        ci_tau_file,
        t()["ci"],
        rel=0.02,
        what="the 95 % profile interval of tau",
        hint='confint(m, parm=[".sig01"]), the profile interval (the default method).',
        slips=[
            (t()["ci_var"], "these are the limits squared: the interval of tau^2, not of tau."),
            (t()["ci_sigma"], "this is the interval of the residual SD (.sigma), not of tau."),
            (t()["ci_90"], "this is a 90 % interval; the question asks for 95 %."),
            (t()["ci_ri"], "this is the interval of the model without meanses."),
        ],
    )
    return v.result()


@exercise(
    "exA3_3",
    "two files, one fit: predict, then compare the log-likelihoods",
    points=2,
    answers={"prediction_split": prediction(MORE_LESS)},
)
def exA3_3(prediction_split: Any, llf_split: Any) -> CheckResult:
    """Exercise A3.3: ``mAch ~ ses + (1 | school)`` from two Parquet files that split ``hsb``.

    One file holds the pupils of the public schools, the other those of the Catholic schools;
    the model is fitted from one DuckDB relation that reads both.

    Parameters
    ----------
    prediction_split : str
        Written before fitting: whether the REML log-likelihood of the fit from the two files
        is ``"larger"`` or ``"smaller"`` than that of the fit from the whole file, or the
        ``"same"``.
    llf_split : float
        The REML log-likelihood of the fit from the two files.

    Examples
    --------
    >>> exA3_3("bigger", ...).status  # a prediction alone earns its share
    'partial'
    """
    v = Verdict("exA3_3")
    t = _chA3_split
    v.number(
        "llf_split",
        llf_split,
        lambda: t()["llf"],
        what="the REML log-likelihood of the fit from both files",
        rel=0.0,
        abs_tol=0.05,
        slips=lambda: [
            (t()["llf_ml"], "this is the ML log-likelihood; lmer fits by REML by default."),
            (
                t()["llf_part"],
                "this is the fit from the public schools' file alone: read both files.",
            ),
            (
                t()["llf_rest"],
                "this is the fit from the Catholic schools' file alone: read both files.",
            ),
            (
                t()["llf_added"],
                "this adds the log-likelihoods of two separate fits, each with its own "
                "estimates: fit one model to the rows of both files.",
            ),
            (t()["llf_context"], "this is the model with meanses of exercise A3.2."),
        ],
        hint="con.read_parquet([public_file, catholic_file]) is one relation of both files.",
    )
    v.prediction(
        "prediction_split",
        prediction_split,
        truth=lambda: "same",
        reveal=v.ok("llf_split"),
    )
    return v.result()


@exercise("exA3_4", "per-row results: residuals of one school, in SQL", points=2)
def exA3_4(resid_sd_1224: Any, resid_mean_1224: Any) -> CheckResult:
    """Exercise A3.4: the residuals of school 1224, from ``m.augment()`` of exercise A3.2's fit.

    Parameters
    ----------
    resid_sd_1224 : float
        The (sample) standard deviation of the residuals ``.resid`` of the pupils of school
        1224.
    resid_mean_1224 : float
        Their mean.

    Examples
    --------
    >>> exA3_4("small", ...).status
    'incorrect'
    """
    v = Verdict("exA3_4")
    t = _chA3_residuals
    v.number(
        "resid_sd_1224",
        resid_sd_1224,
        lambda: t()["sd"],
        what="the SD of the residuals in school 1224",
        rel=0.002,
        slips=lambda: [
            (
                t()["sd_pop"],
                "this divides by n_j, the population SD (stddev_pop); the sample SD divides by "
                "n_j - 1 (stddev_samp, pandas' .std()).",
            ),
            (t()["sd_y"], "this is the SD of mAch itself in the school, not of the residuals."),
            (t()["sigma"], "this is the model's sigma for all schools; use school 1224's rows."),
        ],
        hint="SELECT stddev_samp(\".resid\") FROM the augmented relation WHERE school = '1224'.",
    )
    v.number(
        "resid_mean_1224",
        resid_mean_1224,
        lambda: t()["mean"],
        what="the mean of the residuals in school 1224",
        rel=0.002,
        abs_tol=0.002,
        slips=lambda: [
            (
                t()["mean_marginal"],
                'this is the mean of mAch - ".fixed": it still holds the school\'s effect; use '
                '".resid".',
            ),
        ],
        hint='avg(".resid") over the school\'s rows.',
    )
    return v.result()


@exercise(
    "exA3_5",
    "what needs the rows, in words",
    kind="manual",
    answers={"answer_rows": words(30)},
)
def exA3_5(answer_rows: Any) -> CheckResult:
    """Exercise A3.5 (words, graded by hand): which results need the rows, and why.

    Parameters
    ----------
    answer_rows : str
        Which of a logistic model for a pass/fail outcome, a parametric bootstrap interval for
        tau and a plot of the residuals against ses can be had from the sums alone, and why
        the others need the rows again.

    Examples
    --------
    >>> exA3_5("short").status
    'incorrect'
    """
    v = Verdict("exA3_5")
    v.text(
        "answer_rows",
        answer_rows,
        ideas=[
            (
                r"weight|pirls|iterat|each step|every step|glmer|logistic|binary",
                "why a logistic model (glmer) needs a pass over the rows at every iteration?",
            ),
            (
                r"simulat|new respons|bootstrap|resampl",
                "what the bootstrap simulates, row by row?",
            ),
            (
                r"residual|per.row|each (row|pupil)|augment",
                "that residuals belong to rows, and where augment() computes them?",
            ),
        ],
    )
    return v.result()


# The checks, and the right answers they compute.
__all__ = [
    *(q.qid for q in questions("A3")),
    "_chA3_sums",
    "_chA3_interval",
    "_chA3_split",
    "_chA3_residuals",
]
