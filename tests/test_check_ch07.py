"""The Machines correlations of exercise 7.3 against the analysis of variance.

Machines is balanced (6 workers x 3 machines x 3 scores), and for balanced data with positive
estimates the REML variance components of ``score ~ Machine + (1 | Worker/Machine)`` are the
expected-mean-square (ANOVA) estimators. Computed here with numpy from the cell means, they give
the right answers of exercise 7.3 without any mixed-model engine.
"""

from __future__ import annotations

import math

import numpy as np

from mlmprimer import check, datasets


def _anova_components() -> tuple[float, float, float]:
    """tau^2 of workers, tau^2 of worker-machine pairs and sigma^2, from the mean squares."""
    ma = datasets.load("machines")
    cells = ma.pivot_table(index="Worker", columns="Machine", values="score", observed=True)
    n = ma.groupby(["Worker", "Machine"], observed=True).size()
    assert n.nunique() == 1, "the design must be balanced"
    a, b, reps = cells.shape[0], cells.shape[1], int(n.iloc[0])
    cell = cells.to_numpy()
    grand = cell.mean()
    worker = cell.mean(axis=1, keepdims=True)
    machine = cell.mean(axis=0, keepdims=True)
    cell_of_row = ma.groupby(["Worker", "Machine"], observed=True)["score"].transform("mean")
    ms_error = float(((ma["score"] - cell_of_row) ** 2).sum()) / (a * b * (reps - 1))
    ms_pair = reps * float(((cell - worker - machine + grand) ** 2).sum()) / ((a - 1) * (b - 1))
    ms_worker = b * reps * float(((worker - grand) ** 2).sum()) / (a - 1)
    return (ms_worker - ms_pair) / (b * reps), (ms_pair - ms_error) / reps, ms_error


def test_machines_correlations_equal_the_anova_estimates() -> None:
    tw, tm, s2 = _anova_components()
    assert tw > 0 and tm > 0  # else REML would stop at zero and differ from ANOVA
    t = check._ch07_machines()
    assert math.isclose(t["same_machine"], (tw + tm) / (tw + tm + s2), rel_tol=1e-5)
    assert math.isclose(t["same_worker"], tw / (tw + tm + s2), rel_tol=1e-5)
    assert math.isclose(t["pair_only"], tm / (tw + tm + s2), rel_tol=1e-5)
    right = check.ex07_3(
        (tw + tm) / (tw + tm + s2), f"{100 * tw / (tw + tm + s2):.1f}%", "Same machine"
    )
    assert right.status == "correct", right


def test_the_workers_only_slip_is_the_pooled_anova() -> None:
    # score ~ Machine + (1 | Worker) pools the pairs' variation with the residual
    ma = datasets.load("machines")
    fitted = (
        ma.groupby("Worker", observed=True)["score"].transform("mean")
        + ma.groupby("Machine", observed=True)["score"].transform("mean")
        - ma["score"].mean()
    )
    a, b = ma["Worker"].nunique(), ma["Machine"].nunique()
    ms_resid = float(((ma["score"] - fitted) ** 2).sum()) / (len(ma) - a - b + 1)
    per_worker = ma.groupby("Worker", observed=True)["score"].mean().to_numpy()
    ms_worker = len(ma) / a * float(np.var(per_worker, ddof=1))
    tw = (ms_worker - ms_resid) / (len(ma) / a)
    assert math.isclose(check._ch07_machines()["workers_only"], tw / (tw + ms_resid), rel_tol=1e-5)
