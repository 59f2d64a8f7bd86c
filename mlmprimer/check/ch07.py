"""Checks of chapter 7, crossed and nested random effects: ``ex07_1``, ``ex07_2``, ...

Each check is registered in :data:`mlmprimer.check.core.QUESTIONS` when this module is imported
(:mod:`mlmprimer.check` imports every chapter).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import pandas as pd

from mlmprimer.check.core import (
    MORE_LESS,
    QUESTIONS,
    CheckResult,
    Verdict,
    describe_type,
    exercise,
    fit_cached,
    fixef_se,
    intercept_variance,
    load_data,
    option,
    prediction,
    questions,
    variant_seed,
    words,
)

#: key -> (data set, outer or first factor, inner or second factor)
_STRUCTURES = {
    "penicillin": ("penicillin", "plate", "sample"),
    "pastes": ("pastes", "batch", "sample"),
    "pastes_labels": ("pastes", "batch", "cask"),
    "scotssec": ("scotssec", "primary", "second"),
    "hsb": ("hsb", "sector", "school"),
}
_STRUCTURE_WORDS = {
    "nested": ("nested", "nesting", "nested in", "hierarchical", "hierarchy"),
    "fully crossed": ("fully crossed", "fully", "full", "completely crossed", "crossed fully"),
    "partially crossed": (
        "partially crossed",
        "partially",
        "partial",
        "partly crossed",
        "partly",
        "cross classified",
    ),
}
_SCOTS0 = "attain ~ 1 + (1 | primary) + (1 | second)"
_SCOTS1 = "attain ~ verbal + sex + (1 | primary) + (1 | second)"
_MACHINES = "score ~ Machine + (1 | Worker/Machine)"
_MACHINES_WORKERS = "score ~ Machine + (1 | Worker)"
_MACHINES_NO_BRANDS = "score ~ 1 + (1 | Worker/Machine)"
_SIM07: dict[str, Any] = {}
_SEED07 = 5  # public variant of exercise 7.5; each student has their own


def _structure(data: pd.DataFrame, a: str, b: str) -> str:
    """``nested``, ``fully crossed`` or ``partially crossed``, read off the labels of a and b."""
    pairs = data.groupby([a, b], observed=True).size()
    per_a = pairs.groupby(level=0, observed=True).size()
    per_b = pairs.groupby(level=1, observed=True).size()
    if (per_a == 1).all() or (per_b == 1).all():
        return "nested"
    if len(pairs) == data[a].nunique() * data[b].nunique():
        return "fully crossed"
    return "partially crossed"


def _structure_word(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    said = " ".join(re.sub(r"[^a-z ]", " ", value.lower()).split())
    for key, spellings in _STRUCTURE_WORDS.items():
        if said in (key, *spellings):
            return key
    return None


@functools.cache
def _ch07_structures() -> dict[str, str]:
    return {key: _structure(load_data(d), a, b) for key, (d, a, b) in _STRUCTURES.items()}


@functools.cache
def _ch07_scots() -> dict[str, float]:
    from mlmprimer.icc import icc

    m0, m1 = fit_cached(_SCOTS0, "scotssec"), fit_cached(_SCOTS1, "scotssec")
    null, adjusted = icc(m0, by_group=True), icc(m1, by_group=True)
    tp, ts, s2 = (
        intercept_variance(m0, "primary"),
        intercept_variance(m0, "second"),
        float(m0.sigma) ** 2,
    )
    sds = math.sqrt(tp) + math.sqrt(ts) + math.sqrt(s2)
    only_p = fit_cached("attain ~ 1 + (1 | primary)", "scotssec")
    only_s = fit_cached("attain ~ 1 + (1 | second)", "scotssec")
    return {
        "primary": float(null["primary"]),
        "second": float(null["second"]),
        "primary_adj": float(adjusted["primary"]),
        "second_adj": float(adjusted["second"]),
        "primary_sd": math.sqrt(tp) / sds,
        "second_sd": math.sqrt(ts) / sds,
        "primary_of_groups": tp / (tp + ts),
        "second_of_groups": ts / (tp + ts),
        "primary_alone": float(icc(only_p)),
        "second_alone": float(icc(only_s)),
    }


@functools.cache
def _ch07_machines() -> dict[str, float]:
    from mlmprimer.icc import icc

    m = fit_cached(_MACHINES, "machines")
    workers = fit_cached(_MACHINES_WORKERS, "machines")
    no_brands = fit_cached(_MACHINES_NO_BRANDS, "machines")
    tw, tm, s2 = (
        intercept_variance(m, "Worker"),
        intercept_variance(m, "Machine:Worker"),
        float(m.sigma) ** 2,
    )
    nw, nm, ns2 = (
        intercept_variance(no_brands, "Worker"),
        intercept_variance(no_brands, "Machine:Worker"),
        float(no_brands.sigma) ** 2,
    )
    total, ntotal = tw + tm + s2, nw + nm + ns2
    sds = math.sqrt(tw) + math.sqrt(tm) + math.sqrt(s2)
    return {
        "same_machine": (tw + tm) / total,
        "same_worker": tw / total,
        "pair_only": tm / total,
        "workers_only": float(icc(workers)),
        "same_machine_no_brands": (nw + nm) / ntotal,
        "same_worker_no_brands": nw / ntotal,
        "same_machine_sd": (math.sqrt(tw) + math.sqrt(tm)) / sds,
        "icc": float(icc(m)),
        "same_worker_sd": math.sqrt(tw) / sds,
    }


@functools.cache
def _ch07_sim(seed: int = _SEED07) -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    dc = simulate.drivers_cars(**_SIM07, rng=seed)
    truth = dc.attrs["truth"]
    j, k, n = dc["driver"].nunique(), dc["car"].nunique(), len(dc)
    crossed = lmer("mpg ~ 1 + (1 | driver) + (1 | car)", dc)
    drivers = lmer("mpg ~ 1 + (1 | driver)", dc)
    td2, tc2, s2 = truth["tau_driver"] ** 2, truth["tau_car"] ** 2, truth["sigma"] ** 2
    return {
        "true": math.sqrt(td2 / j + tc2 / k + s2 / n),
        "true_no_cars": math.sqrt(td2 / j + s2 / n),
        "true_naive": math.sqrt((td2 + tc2 + s2) / n),
        "crossed": fixef_se(crossed, "(Intercept)"),
        "drivers": fixef_se(drivers, "(Intercept)"),
        "ols": float(dc["mpg"].std() / math.sqrt(n)),
    }


@exercise("ex07_1", "nested, fully crossed or partially crossed? Read it off the data", points=2)
def ex07_1(structure: Any) -> CheckResult:
    """Exercise 7.1: how two grouping factors relate, in five data sets.

    Parameters
    ----------
    structure : dict
        ``{key: "nested" | "fully crossed" | "partially crossed"}`` for the keys
        ``"penicillin"`` (``plate`` and ``sample``), ``"pastes"`` (``batch`` and ``sample``),
        ``"pastes_labels"`` (``batch`` and ``cask``, the labels as they are), ``"scotssec"``
        (``primary`` and ``second``) and ``"hsb"`` (``sector`` and ``school``).

    Examples
    --------
    >>> ex07_1({"penicillin": "maybe"}).status
    'incorrect'
    """
    v = Verdict("ex07_1")
    hint = (
        "pd.crosstab(df[a], df[b]): one non-zero cell per row (or per column) means nested; no "
        "zero cell means fully crossed."
    )
    if not isinstance(structure, dict):
        v.add(
            "structure",
            "incorrect",
            f"expected a dict {{key: structure}}, got a {describe_type(structure)}.",
            hint,
        )
        return v.result()
    truth = _ch07_structures()
    answered = {str(k): _structure_word(val) for k, val in structure.items()}
    said_crossed = sorted(
        k
        for k, val in structure.items()
        if isinstance(val, str)
        and " ".join(re.sub(r"[^a-z ]", " ", val.lower()).split()) == "crossed"
    )
    unknown = sorted(k for k in answered if k not in truth)
    unreadable = sorted(
        k for k, val in answered.items() if k in truth and val is None and k not in said_crossed
    )
    missing = [k for k in truth if k not in answered]
    right = sum(answered.get(k) == truth[k] for k in truth)
    message = f"{right} of {len(truth)} pairs of factors classified right."
    notes = []
    if missing:
        notes.append(f"missing: {', '.join(missing)}")
    if unknown:
        notes.append(f"not asked about: {', '.join(unknown)}")
    if said_crossed:
        notes.append(f"say fully or partially crossed for: {', '.join(sorted(said_crossed))}")
    if unreadable:
        notes.append(
            f"write 'nested', 'fully crossed' or 'partially crossed' for: {', '.join(unreadable)}"
        )
    if notes:
        message += " (" + "; ".join(notes) + ")"
    v.add("structure", "correct" if right == len(truth) else "incorrect", message, hint)
    result = v.result()
    result.score = round(QUESTIONS["ex07_1"].points * right / len(truth), 4)
    if 0 < right < len(truth):
        result.status = "partial"
    return result


@exercise(
    "ex07_2",
    "ScotsSec without covariates: predict, then split the variance",
    points=3,
    answers={"prediction_primary_share": prediction(MORE_LESS)},
)
def ex07_2(
    prediction_primary_share: Any, share_primary_null: Any, share_second_null: Any
) -> CheckResult:
    """Exercise 7.2: variance shares of ``attain ~ 1 + (1 | primary) + (1 | second)``.

    Parameters
    ----------
    prediction_primary_share : str
        Written before fitting: without ``verbal`` and ``sex``, will the primary schools' share
        be ``"larger"``, ``"smaller"`` or the ``"same"`` as in the chapter's adjusted model?
    share_primary_null, share_second_null : float
        :math:`\\tau^2_\\text{primary}` and :math:`\\tau^2_\\text{secondary}` as shares of the
        total variance (``mlmprimer.icc(m, by_group=True)``); percentages are accepted.

    Examples
    --------
    >>> ex07_2(..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex07_2")
    t = _ch07_scots
    adj = "this is the share after adjusting for verbal and sex; fit the model without them."
    sd = "this uses standard deviations; a share of variance is a ratio of variances."
    of_groups = "this divides by the school variances only; the total includes the residual."
    v.number(
        "share_primary_null",
        share_primary_null,
        lambda: t()["primary"],
        what="the primary schools' share of the variance",
        abs_tol=0.003,
        percent=True,
        slips=lambda: [
            (t()["primary_adj"], adj),
            (t()["primary_sd"], sd),
            (t()["primary_of_groups"], of_groups),
            (t()["primary_alone"], "this model leaves out the secondary schools."),
        ],
        hint="mlm.icc(m, by_group=True) on attain ~ 1 + (1 | primary) + (1 | second).",
    )
    v.number(
        "share_second_null",
        share_second_null,
        lambda: t()["second"],
        what="the secondary schools' share of the variance",
        abs_tol=0.003,
        percent=True,
        slips=lambda: [
            (t()["second_adj"], adj),
            (t()["second_sd"], sd),
            (t()["second_of_groups"], of_groups),
            (t()["second_alone"], "this model leaves out the primary schools."),
        ],
        hint="the same model; the row of the secondary schools (second).",
    )
    truth = t()
    v.prediction(
        "prediction_primary_share",
        prediction_primary_share,
        truth=lambda: "larger" if truth["primary"] > truth["primary_adj"] else "smaller",
        reveal=v.ok("share_primary_null"),
    )
    return v.result()


_SCORES07 = {
    "same machine": (
        "machine",
        "the same machine",
        "one machine",
        "cor same machine",
        "cor_same_machine",
    ),
    "same worker": (
        "worker",
        "the same worker",
        "one worker",
        "cor same worker",
        "cor_same_worker",
    ),
}
_MODELS07 = {
    "crossed": ("crossed model", "the crossed model", "both", "drivers and cars"),
    "drivers only": ("drivers", "driver only", "the drivers only model", "drivers only model"),
}


@exercise(
    "ex07_3",
    "Machines: how alike are two scores?",
    points=2,
    answers={"icc_gives": option(_SCORES07)},
)
def ex07_3(cor_same_machine: Any, cor_same_worker: Any, icc_gives: Any) -> CheckResult:
    """Exercise 7.3: correlations implied by ``score ~ Machine + (1 | Worker/Machine)``.

    The data are ``machines``: 6 workers each scored 3 times on each of 3 brands of machine. The
    brands are fixed effects; the workers and the 18 worker-machine pairs, nested in the
    workers, are random.

    Parameters
    ----------
    cor_same_machine : float
        The model's correlation of two scores of one worker on the same machine.
    cor_same_worker : float
        The correlation of two scores of one worker on two different machines.
    icc_gives : str
        Which of the two ``mlm.icc(m)`` gives, ``"same machine"`` or ``"same worker"``.

    Examples
    --------
    >>> ex07_3(2.5, ..., ...).status
    'incorrect'
    >>> ex07_3(..., ..., "same machine").status
    'partial'
    """
    v = Verdict("ex07_3")
    t = _ch07_machines
    workers = (
        "this comes from score ~ Machine + (1 | Worker), which leaves out the worker-machine "
        "effects: it makes all the scores of a worker equally alike, on whatever machine."
    )
    no_brands = (
        "this model leaves Machine out of the fixed part, so the brands' systematic differences "
        "end up in the worker-machine variance; keep Machine as a fixed effect."
    )
    sd = "this uses standard deviations; correlations here are ratios of variances."
    v.number(
        "cor_same_machine",
        cor_same_machine,
        lambda: t()["same_machine"],
        what="the correlation of two scores of one worker on one machine",
        abs_tol=0.005,
        percent=True,
        slips=lambda: [
            (
                t()["pair_only"],
                "this is the worker-machine pairs' share alone; two scores of one pair also "
                "share its worker.",
            ),
            (t()["same_worker"], "this is for one worker on two different machines."),
            (t()["workers_only"], workers),
            (t()["same_machine_no_brands"], no_brands),
            (t()["same_machine_sd"], sd),
        ],
        hint="the variances the two scores share, over the total variance.",
    )
    v.number(
        "cor_same_worker",
        cor_same_worker,
        lambda: t()["same_worker"],
        what="the correlation of two scores of one worker on different machines",
        abs_tol=0.005,
        percent=True,
        slips=lambda: [
            (
                t()["pair_only"],
                "this is the worker-machine pairs' share; two different machines of one worker "
                "share only the worker.",
            ),
            (t()["same_machine"], "this is for two scores on the same machine."),
            (t()["workers_only"], workers),
            (t()["same_worker_no_brands"], no_brands),
            (t()["same_worker_sd"], sd),
        ],
        hint="only the worker effect is shared by the scores of one worker on two machines.",
    )

    def given() -> str:
        same = {k: t()[k.replace(" ", "_")] for k in _SCORES07}
        return min(same, key=lambda k: abs(same[k] - t()["icc"]))

    v.option(
        "icc_gives",
        icc_gives,
        given,
        what=(
            "mlm.icc(m) adds up the shares of every grouping factor, which is the correlation of "
            "two scores on one machine; by_group=True gives each share, and the workers' share is "
            "the correlation of one worker's scores on two machines"
        ),
        hint="print mlm.icc(m_mach) next to your two correlations.",
    )
    return v.result()


@exercise(
    "ex07_4",
    "the (1 | cask) mistake, in words",
    kind="manual",
    answers={"answer_cask_labels": words(30)},
)
def ex07_4(answer_cask_labels: Any) -> CheckResult:
    """Exercise 7.4 (words, graded by hand): what ``(1 | batch) + (1 | cask)`` gets wrong.

    Parameters
    ----------
    answer_cask_labels : str
        Three to five sentences.

    Examples
    --------
    >>> ex07_4(...).status
    'unanswered'
    """
    v = Verdict("ex07_4")
    v.text(
        "answer_cask_labels",
        answer_cask_labels,
        ideas=[
            (r"label|name|\ba\b.*\bb\b|repeat", "what the labels a, b, c mean in each batch?"),
            (r"\b3\b|three|\b30\b|thirty|level|nunique|ngroups", "how many casks each model sees?"),
            (r"residual|sigma|σ|noise", "where the real cask-to-cask variation ends up?"),
            (r"nest|batch/cask|batch:cask|unique|sample", "how to write the model correctly?"),
        ],
    )
    return v.result()


@exercise(
    "ex07_5",
    "simulated drivers and cars: leaving out a crossed factor",
    points=4,
    answers={"prediction_se_mu": prediction(MORE_LESS), "closer_se_mu": option(_MODELS07)},
    seed=_SEED07,
)
def ex07_5(
    prediction_se_mu: Any,
    se_mu_true: Any,
    se_mu_crossed: Any,
    se_mu_driver_only: Any,
    closer_se_mu: Any,
    *,
    student_id: Any = None,
) -> CheckResult:
    """Exercise 7.5: standard errors of the mean fuel economy, with and without the cars.

    The data are ``simulate.drivers_cars(rng=seed)`` (10 drivers, 8 cars, 2 drives each), where
    ``seed = check.variant_seed("ex07_5", student_id)``: each student's own draw (5 without a
    student id, the public variant).

    Parameters
    ----------
    prediction_se_mu : str
        Written before fitting: will the SE of the intercept be ``"larger"``, ``"smaller"`` or
        the ``"same"`` when the cars are left out of the model?
    se_mu_true : float
        The true SE of the mean, :math:`\\sqrt{\\tau_d^2/J + \\tau_c^2/K + \\sigma^2/N}`, from
        ``attrs["truth"]``.
    se_mu_crossed : float
        The SE of ``(Intercept)`` in ``mpg ~ 1 + (1 | driver) + (1 | car)``.
    se_mu_driver_only : float
        The SE of ``(Intercept)`` in ``mpg ~ 1 + (1 | driver)``.
    closer_se_mu : str
        Which model's SE is closer to the true one, ``"crossed"`` or ``"drivers only"``.
    student_id : str, optional
        Whose data: the right answers are computed for this student's variant.

    Examples
    --------
    >>> ex07_5(..., ..., ..., ..., ...).status
    'unanswered'
    """
    v = Verdict("ex07_5")
    seed = variant_seed("ex07_5", student_id)

    def t() -> dict[str, Any]:
        return _ch07_sim(seed)

    var_msg = "this looks like a variance; take its square root."
    v.number(
        "se_mu_true",
        se_mu_true,
        lambda: t()["true"],
        what="the true standard error of the mean",
        slips=lambda: [
            (t()["true"] ** 2, var_msg),
            (t()["true_no_cars"], "this leaves out the cars' variance tau_car^2 / K."),
            (
                t()["true_naive"],
                "this treats the 160 drives as independent; a driver's effect repeats in all of "
                "their drives and averages over J drivers only, a car's over K cars.",
            ),
            (t()["crossed"], "this is the SE the model estimates; compute the true one."),
        ],
        hint="tau_driver^2 / J + tau_car^2 / K + sigma^2 / N from attrs['truth'], then sqrt.",
    )
    v.number(
        "se_mu_crossed",
        se_mu_crossed,
        lambda: t()["crossed"],
        what="the crossed model's SE of the intercept",
        slips=lambda: [
            (t()["crossed"] ** 2, var_msg),
            (t()["drivers"], "this is the SE of the model with drivers only."),
            (t()["ols"], "this is the SE of an ordinary mean (OLS), ignoring both factors."),
        ],
        hint="np.sqrt(m.vcov.loc['(Intercept)', '(Intercept)']).",
    )
    v.number(
        "se_mu_driver_only",
        se_mu_driver_only,
        lambda: t()["drivers"],
        what="the drivers-only model's SE of the intercept",
        slips=lambda: [
            (t()["drivers"] ** 2, var_msg),
            (t()["crossed"], "this is the SE of the model with drivers and cars."),
            (t()["ols"], "this is the SE of an ordinary mean (OLS), ignoring both factors."),
        ],
        hint="fit mpg ~ 1 + (1 | driver) and take the same square root.",
    )
    truth = t()
    crossed_closer = abs(truth["crossed"] - truth["true"]) < abs(truth["drivers"] - truth["true"])
    v.option(
        "closer_se_mu",
        closer_se_mu,
        lambda: "crossed" if crossed_closer else "drivers only",
        what=(
            f"the {'crossed' if crossed_closer else 'drivers-only'} model's standard error is "
            "closer to the truth"
        ),
        hint="compare the distance of each model's SE from se_mu_true.",
    )
    v.prediction(
        "prediction_se_mu",
        prediction_se_mu,
        truth=lambda: "smaller" if truth["drivers"] < truth["crossed"] else "larger",
        reveal=v.ok("se_mu_crossed") and v.ok("se_mu_driver_only"),
    )
    result = v.result()
    if result.status == "correct":
        result.message = (
            f"{result.message} Against the true SE, the crossed model's is "
            f"{truth['crossed'] / truth['true']:.2f} times as large and the drivers-only "
            f"model's {truth['drivers'] / truth['true']:.2f} times."
        )
    return result


# The checks, and the right answers they compute (the tests compare them with lme4 and the truth).
__all__ = [
    *(q.qid for q in questions("07")),
    "_ch07_structures",
    "_ch07_scots",
    "_ch07_machines",
    "_ch07_sim",
]
