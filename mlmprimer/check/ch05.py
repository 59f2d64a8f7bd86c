"""Checks of chapter 5, shrinkage and partial pooling: ``ex05_1``, ``ex05_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from mlmprimer.check.core import (
    MORE_LESS,
    CheckResult,
    Verdict,
    exercise,
    fit_cached,
    group_coef,
    intercept_variance,
    load_data,
    prediction,
    questions,
    variant_seed,
    words,
)

_RADON0 = "log_radon ~ 1 + (1 | county)"
_RADON_U = "log_radon ~ uranium + (1 | county)"
_TOP05 = 10
_SIM05 = {"n_subjects": 30, "n_obs": 3}
_SEED05 = 5  # the public variant of exercise 5.5 (each student has their own, variant_seed)


def _weight_from_sds(tau: float, sigma: float, n: int) -> dict[str, float]:
    """The weight of a group's own mean written, by mistake, with standard deviations."""
    return {
        "lam_sd": tau / (tau + sigma / math.sqrt(n)),
        "lam_sd_n": tau / (tau + sigma / n),
        "lam_sd_no_n": tau / (tau + sigma),
    }


def _sd_weight_slips(t: dict[str, float]) -> list[tuple[float, str]]:
    """The chapter's common mistake "computing the weight with standard deviations", by name."""
    mistake = (
        "the common mistake of computing the weight with standard deviations instead of "
        "variances: lambda_j = tau^2 / (tau^2 + sigma^2 / n_j) squares tau and sigma, and "
        "divides sigma^2 (not sigma) by n_j."
    )
    return [
        (t["lam_sd"], f"this is tau / (tau + sigma / sqrt(n_j)), {mistake}"),
        (t["lam_sd_n"], f"this is tau / (tau + sigma / n_j), {mistake}"),
        (t["lam_sd_no_n"], f"this is tau / (tau + sigma), {mistake}"),
    ]


@functools.cache
def _ch05_lake() -> dict[str, float]:
    radon = load_data("radon")
    m0 = fit_cached(_RADON0, "radon")
    county = "LAKE"  # the counties are labelled by name
    homes = radon.loc[radon["county"] == county, "log_radon"]
    n, own = len(homes), float(homes.mean())
    tau2, sigma2 = intercept_variance(m0, "county"), float(m0.sigma) ** 2
    beta0 = float(m0.fixef["(Intercept)"])
    grand = float(radon["log_radon"].mean())
    lam = tau2 / (tau2 + sigma2 / n)
    sd_weights = _weight_from_sds(math.sqrt(tau2), math.sqrt(sigma2), n)
    lam_sd = sd_weights["lam_sd"]
    return {
        "lam": lam,
        **sd_weights,
        "lam_no_n": tau2 / (tau2 + sigma2),
        "lam_flip": 1 - lam,
        "partial": float(group_coef(m0, "county").loc[county, "(Intercept)"]),
        "partial_grand": lam * own + (1 - lam) * grand,
        "partial_flip": (1 - lam) * own + lam * beta0,
        "partial_sd": lam_sd * own + (1 - lam_sd) * beta0,
        "own": own,
        "beta0": beta0,
        "u": float(m0.ranef["county"].loc[county, "(Intercept)"]),
    }


@functools.cache
def _ch05_ranking() -> dict[str, float]:
    from mlmprimer.pooling import pooling

    tab = pooling(load_data("radon"), y="log_radon", group="county")

    def homes(column: str, k: int, top: bool = True) -> float:
        part = tab.nlargest(k, column) if top else tab.nsmallest(k, column)
        return float(part["n"].mean())

    return {
        "own": homes("no_pooling", _TOP05),
        "model": homes("partial", _TOP05),
        "own5": homes("no_pooling", 5),
        "model5": homes("partial", 5),
        "own_bottom": homes("no_pooling", _TOP05, top=False),
        "model_bottom": homes("partial", _TOP05, top=False),
        "all": float(tab["n"].mean()),
    }


@functools.cache
def _ch05_uranium() -> dict[str, float]:
    radon = load_data("radon")
    m0, mu = fit_cached(_RADON0, "radon"), fit_cached(_RADON_U, "radon")
    county = "COTTONWOOD"
    rows = radon[radon["county"] == county]
    w = float(rows["uranium"].iloc[0])
    b0, b1 = float(mu.fixef["(Intercept)"]), float(mu.fixef["uranium"])
    intercept = float(group_coef(mu, "county").loc[county, "(Intercept)"])
    return {
        "with": intercept + b1 * w,
        "without": float(group_coef(m0, "county").loc[county, "(Intercept)"]),
        "own": float(rows["log_radon"].mean()),
        "target": b0 + b1 * w,
        "intercept": intercept,
        "u": float(mu.ranef["county"].loc[county, "(Intercept)"]),
    }


@functools.cache
def _ch05_sim(seed: int = _SEED05) -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.pooling import pooling

    sim = simulate.reaction_times(**_SIM05, rng=seed)
    true_means = simulate.reaction_times(
        n_subjects=_SIM05["n_subjects"], n_obs=1, sigma=0.0, rng=seed
    ).set_index("subject")["reaction"]
    truth = sim.attrs["truth"]
    n = _SIM05["n_obs"]
    tab = pooling(sim, y="reaction", group="subject")
    errors = tab[["complete", "no_pooling", "partial"]].sub(true_means.reindex(tab.index), axis=0)
    mse = (errors**2).mean()
    tau2, sigma2 = truth["tau"] ** 2, truth["sigma"] ** 2
    return {
        "lam": tau2 / (tau2 + sigma2 / n),
        **_weight_from_sds(truth["tau"], truth["sigma"], n),
        "lam_no_n": tau2 / (tau2 + sigma2),
        "lam_est": float(tab["weight"].iloc[0]),
        "mse_no": float(mse["no_pooling"]),
        "mse_partial": float(mse["partial"]),
        "mse_complete": float(mse["complete"]),
    }


@exercise("ex05_1", "Lake County: the weight of its own mean and its estimate", points=2)
def ex05_1(lambda_lake: Any, partial_lake: Any) -> CheckResult:
    """Exercise 5.1: the weight of Lake County's own mean and its partial-pooling estimate.

    The model is ``log_radon ~ 1 + (1 | county)`` (REML) on the ``radon`` data, whose counties
    are labelled by name; Lake County is ``county == "LAKE"``.

    Parameters
    ----------
    lambda_lake : float
        :math:`\\lambda_j = \\hat\\tau^2 / (\\hat\\tau^2 + \\hat\\sigma^2 / n_j)` for Lake County.
    partial_lake : float
        :math:`\\lambda_j \\bar y_j + (1 - \\lambda_j) \\hat\\beta_0` (log pCi/L).

    Examples
    --------
    >>> ex05_1(..., ...).status
    'unanswered'
    >>> ex05_1(1.5, ...).status
    'incorrect'
    """
    v = Verdict("ex05_1")
    t = _ch05_lake
    v.number(
        "lambda_lake",
        lambda_lake,
        lambda: t()["lam"],
        what="the weight of Lake County's own mean",
        slips=lambda: [
            *_sd_weight_slips(t()),
            (
                t()["lam_no_n"],
                "this leaves out n_j: it is the weight of a county with a single home.",
            ),
            (
                t()["lam_flip"],
                "this is 1 - lambda_j, the shrinkage: the weight of beta_0-hat, not of the "
                "county's own mean.",
            ),
        ],
        hint="lambda_j = tau^2 / (tau^2 + sigma^2 / n_j), n_j = the homes measured in the county.",
    )
    v.number(
        "partial_lake",
        partial_lake,
        lambda: t()["partial"],
        what="Lake County's partial-pooling estimate",
        slips=lambda: [
            (t()["own"], "this is the county's own mean (no pooling)."),
            (
                t()["partial_grand"],
                "this pulls towards the mean of all homes; the model pulls towards beta_0-hat, "
                "its estimate of the mean of the county means.",
            ),
            (t()["partial_flip"], "the weights are swapped: lambda_j goes with the own mean."),
            (
                t()["partial_sd"],
                "this uses a weight computed with tau and sigma instead of tau^2 and sigma^2, "
                "the common mistake of the chapter: square both, and divide sigma^2 by n_j.",
            ),
            (t()["u"], "this is the county's effect u_j alone; add beta_0-hat."),
            (t()["beta0"], "this is beta_0-hat, the same for every county."),
        ],
        hint="lambda_j * (own mean) + (1 - lambda_j) * beta_0-hat; m.coef() has it too.",
    )
    return v.result()


@exercise("ex05_2", "who tops the ranking: homes behind the ten highest counties", points=2)
def ex05_2(n_top_own: Any, n_top_model: Any) -> CheckResult:
    """Exercise 5.2: average number of homes measured in the ten highest-ranked counties.

    Parameters
    ----------
    n_top_own : float
        Mean ``n_j`` of the 10 counties with the highest own (no-pooling) mean of ``log_radon``.
    n_top_model : float
        Mean ``n_j`` of the 10 counties with the highest partial-pooling estimate.

    Examples
    --------
    >>> ex05_2(..., ...).status
    'unanswered'
    """
    v = Verdict("ex05_2")
    t = _ch05_ranking
    everyone = "this is the mean over all counties; keep only the ten highest."
    v.number(
        "n_top_own",
        n_top_own,
        lambda: t()["own"],
        what="the mean number of homes of the ten highest own means",
        abs_tol=0.05,
        slips=lambda: [
            (t()["own5"], "this is the top five; the question asks for the top ten."),
            (t()["own_bottom"], "these are the ten lowest own means; sort in descending order."),
            (t()["model"], "this ranks by the model's estimates; rank by the own means here."),
            (t()["all"], everyone),
        ],
        hint="tab.nlargest(10, 'no_pooling')['n'].mean(), with tab = mlm.pooling(...).",
    )
    v.number(
        "n_top_model",
        n_top_model,
        lambda: t()["model"],
        what="the mean number of homes of the ten highest model estimates",
        abs_tol=0.05,
        slips=lambda: [
            (t()["model5"], "this is the top five; the question asks for the top ten."),
            (t()["model_bottom"], "these are the ten lowest estimates; sort in descending order."),
            (t()["own"], "this ranks by the own means; rank by the partial-pooling estimates."),
            (t()["all"], everyone),
        ],
        hint="the same, ranked by the 'partial' column.",
    )
    return v.result()


@exercise(
    "ex05_3",
    "ranking counties by radon, in words",
    kind="manual",
    answers={"answer_ranking": words(30)},
)
def ex05_3(answer_ranking: Any) -> CheckResult:
    """Exercise 5.3 (words, graded by hand): why a ranking by raw county means misleads.

    Parameters
    ----------
    answer_ranking : str
        Three to five sentences.

    Examples
    --------
    >>> ex05_3("Small counties.").status
    'incorrect'
    """
    v = Verdict("ex05_3")
    v.text(
        "answer_ranking",
        answer_ranking,
        ideas=[
            (
                r"small|few|one or two|homes|n_j|sample size",
                "which counties reach the top, and why?",
            ),
            (
                r"noise|chance|luck|uncertain|variab|unreliab|precis",
                "why their means are unreliable?",
            ),
            (r"shrink|pull|partial|pool|model|weight", "what the model's estimates do instead?"),
        ],
    )
    return v.result()


@exercise(
    "ex05_4",
    "Cottonwood County and soil uranium: predict, then compute",
    points=2,
    answers={"prediction_cottonwood": prediction(MORE_LESS)},
)
def ex05_4(prediction_cottonwood: Any, cottonwood_uranium: Any) -> CheckResult:
    """Exercise 5.4: Cottonwood County's estimate from ``log_radon ~ uranium + (1 | county)``.

    Parameters
    ----------
    prediction_cottonwood : str
        Written before fitting: will the county's estimate with uranium in the model be
        ``"larger"``, ``"smaller"`` or the ``"same"`` as without it?
    cottonwood_uranium : float
        Its partial-pooling estimate with uranium, :math:`\\hat\\beta_0 + \\hat\\beta_1 w_j +
        \\hat u_j` (log pCi/L).

    Examples
    --------
    >>> ex05_4("higher", ...).status
    'partial'
    """
    v = Verdict("ex05_4")
    t = _ch05_uranium
    v.number(
        "cottonwood_uranium",
        cottonwood_uranium,
        lambda: t()["with"],
        what="Cottonwood's estimate with uranium in the model",
        slips=lambda: [
            (t()["without"], "this is the estimate of the model without uranium."),
            (t()["own"], "this is the county's own mean (no pooling)."),
            (
                t()["target"],
                "this is the uranium line at the county's uranium, the value it is pulled "
                "towards; its own homes still carry some weight.",
            ),
            (
                t()["intercept"],
                "this is the county's intercept in m.coef(); add beta_1 times its uranium.",
            ),
            (t()["u"], "this is the county's effect u_j alone."),
        ],
        hint="beta_0 + beta_1 * w_j + u_j, or the county's intercept from coef() plus "
        "beta_1 * w_j.",
    )
    truth = t()
    v.prediction(
        "prediction_cottonwood",
        prediction_cottonwood,
        truth=lambda: "larger" if truth["with"] > truth["without"] else "smaller",
        reveal=v.ok("cottonwood_uranium"),
    )
    return v.result()


@exercise(
    "ex05_5", "simulated subjects: is partial pooling closer to the truth?", points=3, seed=_SEED05
)
def ex05_5(
    lambda_true: Any, mse_no_pooling: Any, mse_partial: Any, *, student_id: Any = None
) -> CheckResult:
    """Exercise 5.5: the weight of a subject's own mean, and mean squared errors against the truth.

    A variant per student: with ``seed = check.variant_seed("ex05_5", student_id)`` (5 without a
    student id), the data are ``simulate.reaction_times(n_subjects=30, n_obs=3, rng=seed)``; the
    true means of the subjects are ``simulate.reaction_times(n_subjects=30, n_obs=1, sigma=0,
    rng=seed)``.

    Parameters
    ----------
    lambda_true : float
        The true weight of a subject's own mean, :math:`\\tau^2 / (\\tau^2 + \\sigma^2 / 3)`,
        from ``attrs["truth"]``.
    mse_no_pooling, mse_partial : float
        Mean over the 30 subjects of the squared difference between the no-pooling and the
        partial-pooling estimate of a subject's mean and its true mean (ms²).
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> ex05_5(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex05_5")
    seed = variant_seed("ex05_5", student_id)

    def t() -> dict[str, float]:
        return _ch05_sim(seed)

    v.number(
        "lambda_true",
        lambda_true,
        lambda: t()["lam"],
        what="the true weight of a subject's own mean",
        slips=lambda: [
            (
                t()["lam_est"],
                "this is the weight estimated from the data; the question asks for the true one, "
                "from attrs['truth'].",
            ),
            *_sd_weight_slips(t()),
            (t()["lam_no_n"], "this leaves out n_j = 3 measurements per subject."),
        ],
        hint="attrs['truth'] holds tau and sigma (standard deviations); each subject has n_j = 3.",
    )
    rmse_msg = "this looks like a root mean squared error; the question asks for the mean of the "
    v.number(
        "mse_no_pooling",
        mse_no_pooling,
        lambda: t()["mse_no"],
        what="the no-pooling mean squared error",
        slips=lambda: [
            (math.sqrt(t()["mse_no"]), rmse_msg + "squares."),
            (t()["mse_partial"], "this is the error of partial pooling."),
            (t()["mse_complete"], "this is the error of complete pooling."),
        ],
        hint="mean of (no_pooling - true mean)^2 over the 30 subjects, matched by subject.",
    )
    v.number(
        "mse_partial",
        mse_partial,
        lambda: t()["mse_partial"],
        what="the partial-pooling mean squared error",
        slips=lambda: [
            (math.sqrt(t()["mse_partial"]), rmse_msg + "squares."),
            (t()["mse_no"], "this is the error of no pooling."),
            (t()["mse_complete"], "this is the error of complete pooling."),
        ],
        hint="the same with the 'partial' column of mlm.pooling(...).",
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        result.message = (
            "every part is right. Partial pooling cuts the no-pooling error by "
            f"{100 * (1 - truth['mse_partial'] / truth['mse_no']):.0f} %; the weight the model "
            f"estimated from these data is {truth['lam_est'] / truth['lam']:.2f} times the true "
            "one."
        )
    return result


# The checks, and the right answers they compute (the tests compare them with lme4 and the truth).
__all__ = [
    *(q.qid for q in questions("05")),
    "_ch05_lake",
    "_ch05_ranking",
    "_ch05_uranium",
    "_ch05_sim",
]
