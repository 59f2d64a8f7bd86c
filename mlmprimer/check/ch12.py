"""Checks of chapter 12, how many groups: ``ex12_1``, ``ex12_2``, ``ex12_3``.

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import math
from typing import Any

from scipy import stats

from mlmprimer.check.core import (
    CheckResult,
    Verdict,
    exercise,
    prediction,
    questions,
    variant_seed,
    words,
)

#: The design and planning values of exercise 12.1.
EX12_1 = {"n_schools": 40, "n_students": 15, "tau": 2.9, "sigma": 6.3, "beta_w": 1.5}
#: The simulation of exercise 12.2 (``seed`` is the public variant's; each student has their own,
#: ``variant_seed("ex12_2", student_id)``).
EX12_2 = {
    "formula": "y ~ x + w + (1 | school)",
    "settings": {"n_schools": [8], "n_students": [25], "beta_w": [0.0]},
    "terms": {"w": "beta_w"},
    "nsim": 100,
    "seed": 1,
}
_DESIGNS = {
    "more schools": ("50 schools", "50 schools of 20", "schools", "b", "design b", "more groups"),
    "more pupils": ("20 schools", "20 schools of 50", "pupils", "a", "design a", "larger schools"),
    "same": ("equal", "no difference", "the same", "both"),
}


@functools.cache
def _ch12_design() -> dict[str, float]:
    d = EX12_1
    J, m, tau, sigma = d["n_schools"], d["n_students"], d["tau"], d["sigma"]
    icc = tau**2 / (tau**2 + sigma**2)
    se = math.sqrt((tau**2 + sigma**2 / m) / J)
    z = stats.norm.ppf(0.975)

    def power(s: float, crit: float = z) -> float:
        delta = d["beta_w"] / s
        return float(stats.norm.sf(crit - delta) + stats.norm.cdf(-crit - delta))

    srs = math.sqrt((tau**2 + sigma**2) / (J * m))
    return {
        "icc": icc,
        "deff": 1 + (m - 1) * icc,
        "deff_m": 1 + m * icc,
        "se": se,
        "se_srs": srs,
        "se_tau_only": math.sqrt(tau**2 / J),
        "se_var": se**2,
        "se_sigma_j": math.sqrt(sigma**2 / J),
        "power": power(se),
        "power_one_sided": power(se, stats.norm.ppf(0.95)),
        "power_srs": power(srs),
        "power_var": power(se**2),
    }


@functools.cache
def _ch12_simulation(seed: int = EX12_2["seed"]) -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.power import power

    e = EX12_2
    tab = power(
        simulate.schools_two_levels,
        e["formula"],
        e["settings"],
        e["terms"],
        nsim=e["nsim"],
        seed=seed,
    )
    row = tab.iloc[0]
    rate = float(row["rejection"])
    return {
        "rate": rate,
        "mcse": float(row["rejection_mcse"]),
        "mcse_no_n": math.sqrt(rate * (1 - rate)),
        "mcse_var": rate * (1 - rate) / e["nsim"],
        "mcse_alpha": math.sqrt(0.05 * 0.95 / e["nsim"]),
        "coverage": float(row["coverage"]),
        "non_coverage": 1 - float(row["coverage"]),
        "nsim": float(e["nsim"]),
    }


@exercise("ex12_1", "the design effect, standard error and power of a balanced design", points=3)
def ex12_1(deff_12: Any, se_w_12: Any, power_w_12: Any) -> CheckResult:
    """Exercise 12.1: 40 schools of 15 pupils, tau = 2.9, sigma = 6.3, beta_w = 1.5.

    Parameters
    ----------
    deff_12 : float
        The design effect ``1 + (m - 1) ICC``.
    se_w_12 : float
        The standard error of the coefficient of a standardised school-level predictor.
    power_w_12 : float
        The power of the two-sided 5% Wald z test of ``beta_w = 1.5`` with that standard error.

    Examples
    --------
    >>> ex12_1(..., ..., ...).status
    'unanswered'
    >>> ex12_1(1 + 15 * 2.9**2 / (2.9**2 + 6.3**2), ..., ...).status
    'incorrect'
    """
    v = Verdict("ex12_1")
    t = _ch12_design
    v.number(
        "deff_12",
        deff_12,
        lambda: t()["deff"],
        what="the design effect",
        slips=lambda: [
            (t()["deff_m"], "the design effect is 1 + (m - 1) ICC: m - 1, not m."),
            (t()["icc"], "this is the ICC; the design effect is 1 + (m - 1) ICC."),
        ],
        hint="ICC = tau^2 / (tau^2 + sigma^2), then 1 + (15 - 1) ICC.",
    )
    v.number(
        "se_w_12",
        se_w_12,
        lambda: t()["se"],
        what="the standard error of the school-level coefficient",
        slips=lambda: [
            (
                t()["se_srs"],
                "this is the standard error of a simple random sample of 600 pupils: it leaves "
                "out the design effect.",
            ),
            (t()["se_var"], "this is the variance; the standard error is its square root."),
            (t()["se_tau_only"], "the school means also vary by sigma^2 / m around their line."),
            (t()["se_sigma_j"], "the school means vary by tau^2 + sigma^2 / m, not sigma^2."),
        ],
        hint="sqrt((tau^2 + sigma^2 / m) / J): the random sample's SE times sqrt(design effect).",
    )
    v.number(
        "power_w_12",
        power_w_12,
        lambda: t()["power"],
        what="the power of the two-sided 5% test",
        rel=2e-3,
        percent=True,
        slips=lambda: [
            (t()["power_one_sided"], "this is the one-sided test's power; the test is two-sided."),
            (t()["power_srs"], "this power uses the simple random sample's standard error."),
            (t()["power_var"], "this power divides the effect by the variance, not the SE."),
        ],
        hint="mlmprimer.power.wald_power(1.5, se).",
    )
    return v.result()


@exercise(
    "ex12_2",
    "a simulated type I error rate and its Monte Carlo standard error",
    points=2,
    seed=EX12_2["seed"],
)
def ex12_2(rate_null_12: Any, mcse_null_12: Any, *, student_id: Any = None) -> CheckResult:
    """Exercise 12.2: 8 schools of 25 pupils, ``beta_w = 0``, 100 replicates, a variant per student.

    The seed of the simulation is ``check.variant_seed("ex12_2", student_id)`` (1 without a
    student id, the public variant).

    Parameters
    ----------
    rate_null_12 : float
        The rejection rate of the z test of ``w``.
    mcse_null_12 : float
        Its Monte Carlo standard error.
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> ex12_2(..., ...).status
    'unanswered'
    """
    v = Verdict("ex12_2")
    seed = variant_seed("ex12_2", student_id)

    def t() -> dict[str, float]:
        return _ch12_simulation(seed)

    v.number(
        "rate_null_12",
        rate_null_12,
        lambda: t()["rate"],
        what="the rejection rate under the null",
        abs_tol=1e-9,
        percent=True,
        slips=lambda: [
            (t()["coverage"], "this is the coverage of the intervals, not the rejection rate."),
            (t()["nsim"] * t()["rate"], "this is the number of rejections; divide by nsim."),
        ],
        hint="the rejection column of power()'s table, for the term w.",
    )
    v.number(
        "mcse_null_12",
        mcse_null_12,
        lambda: t()["mcse"],
        what="the Monte Carlo standard error of the rate",
        slips=lambda: [
            (t()["mcse_no_n"], "divide r (1 - r) by the number of replicates before the root."),
            (t()["mcse_var"], "this is the variance; the standard error is its square root."),
        ],
        hint="sqrt(r (1 - r) / nsim), the rejection_mcse column.",
    )
    return v.result()


@exercise(
    "ex12_3",
    "more schools or larger schools: predict, then explain",
    kind="manual",
    answers={"prediction_design": prediction(_DESIGNS), "answer_design": words(30)},
)
def ex12_3(prediction_design: Any, answer_design: Any) -> CheckResult:
    """Exercise 12.3 (words, graded by hand): 20 schools of 50 or 50 schools of 20 for tau.

    Parameters
    ----------
    prediction_design : str
        Which design estimates tau more precisely: ``"more schools"``, ``"more pupils"`` or
        ``"same"``.
    answer_design : str
        Why, in at least 30 words.

    Examples
    --------
    >>> ex12_3("more schools", "too short").status
    'partial'
    """
    v = Verdict("ex12_3")
    v.prediction("prediction_design", prediction_design, truth=None, reveal=False)
    v.text(
        "answer_design",
        answer_design,
        ideas=[
            (r"school|group|level.2", "what tau is a variance of, and how many of those you see?"),
            (r"mean|sigma|noise|measur", "how well a school's mean is measured with 20 pupils?"),
        ],
    )
    return v.result()


__all__ = [*(q.qid for q in questions("12")), "EX12_1", "EX12_2"]
