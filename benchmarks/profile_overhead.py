#!/usr/bin/env python
"""The fixed cost of one ``lmer`` call on small models, and where a large fit's time goes.

Small fits (the course's sleepstudy and Hsb82 models) spend much of their time outside the
optimiser: parsing the formula, checking the data, building the design, building the result.
This script times them and, with ``--profile``, prints cProfile's tables of where that time
goes. ``--large`` fits ``y ~ x1 + x2 + x3 + (1 | g)`` to 10^6 simulated rows and splits its
time into the four stages of a fit (design, deviance function, optimiser, solution) and the
rest (the results object and everything else :func:`mlmprimer.model.lmer` does).

Usage::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/profile_overhead.py             # timings
    PYTHONPATH=$PWD .venv/bin/python benchmarks/profile_overhead.py --profile   # + cProfile
    PYTHONPATH=$PWD .venv/bin/python benchmarks/profile_overhead.py --large 1000000

Timings are the median (and best) of ``--repeat`` calls after one warm-up call, in one process
(wall-clock time, or with ``--cpu`` the process's CPU time, steadier on a busy machine).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

MODELS = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "hsb82": ("hsb", "mAch ~ ses + (ses | school)"),
    "hsb82_null": ("hsb", "mAch ~ 1 + (1 | school)"),
}


def _times(fit: Callable[[], Any], repeat: int, clock: Callable[[], float]) -> list[float]:
    fit()  # warm-up: imports, caches
    out = []
    for _ in range(repeat):
        t0 = clock()
        fit()
        out.append(clock() - t0)
    return out


def small_models(
    repeat: int, profile: bool, top: int, clock: Callable[[], float] = time.perf_counter
) -> None:
    """Median and best time per call of each small model; cProfile tables if asked."""
    from mlmprimer.datasets import load
    from mlmprimer.model import lmer

    for name, (dataset, formula) in MODELS.items():
        data = load(dataset)

        def fit(formula: str = formula, data: Any = data) -> Any:
            return lmer(formula, data)

        t = _times(fit, repeat, clock)
        print(
            f"{name:12s} {formula:38s} median {statistics.median(t) * 1e3:7.2f} ms  "
            f"best {min(t) * 1e3:7.2f} ms  (n = {repeat})"
        )
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(repeat):
                fit()
            prof.disable()
            for key in ("tottime", "cumulative"):
                print(f"--- {name}: by {key}")
                pstats.Stats(prof).sort_stats(key).print_stats(top)


STAGES = ("model_design", "deviance_function", "optimize_theta", "solve_mixed")


def by_stage(fit: Callable[[], Any]) -> tuple[Any, float, dict[str, float]]:
    """``fit()``'s result, its time and the time of each stage of :mod:`mlmprimer.model`."""
    from mlmprimer import model as model_module

    spent: dict[str, float] = {}

    def timed(stage: str, f: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                spent[stage] = spent.get(stage, 0.0) + time.perf_counter() - t0

        return wrapper

    originals = {s: getattr(model_module, s) for s in STAGES}
    try:
        for s in STAGES:
            setattr(model_module, s, timed(s, originals[s]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            out = fit()
            total = time.perf_counter() - t0
    finally:
        for s in STAGES:
            setattr(model_module, s, originals[s])
    return out, total, spent


def stage_medians(repeat: int) -> None:
    """Median time of each stage of the small models' fits."""
    from mlmprimer.datasets import load
    from mlmprimer.model import lmer

    for name, (dataset, formula) in MODELS.items():
        data = load(dataset)
        lmer(formula, data)
        rows = [by_stage(lambda f=formula, d=data: lmer(f, d))[1:] for _ in range(repeat)]
        parts = {s: statistics.median(r[1].get(s, 0.0) for r in rows) for s in STAGES}
        rest = statistics.median(r[0] - sum(r[1].values()) for r in rows)
        text = "  ".join(f"{s} {v * 1e3:.2f}" for s, v in parts.items())
        print(f"{name:12s} ms: {text}  rest {rest * 1e3:.2f}")


def large_model(n: int, seed: int = 20261201) -> None:
    """A fit of ``y ~ x1 + x2 + x3 + (1 | g)`` to ``n`` rows, timed by stage."""
    import numpy as np
    import pandas as pd

    from mlmprimer.model import lmer

    rng = np.random.default_rng(seed)
    ngroups = max(n // 100, 10)
    g = rng.integers(0, ngroups, n)
    x = rng.standard_normal((n, 3))
    y = 1.0 + x @ np.array([0.5, -0.3, 0.2]) + rng.standard_normal(ngroups)[g] + rng.normal(size=n)
    data = pd.DataFrame({"y": y, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2]})
    data["g"] = pd.Categorical(g)
    m, total, spent = by_stage(lambda: lmer("y ~ x1 + x2 + x3 + (1 | g)", data))
    t0 = time.perf_counter()
    m.fitted(), m.residuals()
    per_row = time.perf_counter() - t0
    print(f"n = {n}: total {total:.3f} s")
    for s in STAGES:
        print(f"  {s:18s} {spent.get(s, 0.0):.3f} s")
    print(f"  {'outside these':18s} {total - sum(spent.values()):.3f} s")
    print(f"  (fitted() and residuals() on first access: {per_row:.3f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="print cProfile tables")
    parser.add_argument("--top", type=int, default=30, help="rows of each cProfile table")
    parser.add_argument("--large", type=int, default=0, help="rows of the large fit (0: none)")
    parser.add_argument("--stages", action="store_true", help="median time of each stage")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="time the small models by the process's CPU time (steadier on a busy machine)",
    )
    parser.add_argument("--skip-small", action="store_true")
    args = parser.parse_args()
    if not args.skip_small:
        clock = time.process_time if args.cpu else time.perf_counter
        small_models(args.repeat, args.profile, args.top, clock)
    if args.stages:
        stage_medians(args.repeat)
    if args.large:
        large_model(args.large)


if __name__ == "__main__":
    main()
