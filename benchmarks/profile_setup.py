"""Set-up and fit times of big linear mixed models, stage by stage, and a profile.

Simulates ``y ~ x1 + x2 + x3 + (1 | g)`` and ``y ~ x + (x | g)`` with 10^4 groups and a seeded
numpy Generator, then times each stage of :func:`mlmprimer.lmer` (the design, the
cross-products, the optimisation, the solution) and the whole call::

    .venv/bin/python benchmarks/profile_setup.py                     # 10^5 and 10^6 rows
    .venv/bin/python benchmarks/profile_setup.py --sizes 1e5,1e6,1e7
    .venv/bin/python benchmarks/profile_setup.py --sizes 1e6 --profile 10   # cProfile, top 10

Times are the best of ``--repeat`` runs (wall clock, seconds).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from mlmprimer.design import model_design
from mlmprimer.factor import deviance_function
from mlmprimer.model import lmer
from mlmprimer.optimize import optimize_theta
from mlmprimer.solution import solve_mixed

MODELS = {
    "intercept": "y ~ x1 + x2 + x3 + (1 | g)",
    "slopes": "y ~ x + (x | g)",
}


def simulate(model: str, n: int, ngroups: int = 10_000, seed: int = 1) -> pd.DataFrame:
    """Rows of ``model`` with known truth (sd of the group effects 1 and 0.5, residual sd 1)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, ngroups, size=n)
    if model == "intercept":
        x = rng.standard_normal((n, 3))
        y = 1.0 + x @ np.array([0.5, -0.3, 0.2]) + rng.standard_normal(ngroups)[g]
        y += rng.standard_normal(n)
        return pd.DataFrame({"y": y, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "g": g})
    x = rng.standard_normal(n)
    b0 = rng.standard_normal(ngroups)
    b1 = 0.5 * rng.standard_normal(ngroups)
    y = 1.0 + 0.5 * x + b0[g] + b1[g] * x + rng.standard_normal(n)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The shortest of ``repeat`` wall-clock times of ``fn()`` and its last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def stages(formula: str, data: pd.DataFrame, repeat: int) -> dict[str, float]:
    """Seconds per stage of one REML fit and of the whole ``lmer`` call."""
    t_design, md = best(lambda: model_design(formula, data), repeat)
    t_products, devfun = best(lambda: deviance_function(md.design, True), repeat)
    t_opt, opt = best(lambda: optimize_theta(devfun), repeat)
    t_sol, _ = best(lambda: solve_mixed(devfun, opt.theta), repeat)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_total, m = best(lambda: lmer(formula, data), repeat)
    return {
        "design": t_design,
        "products": t_products,
        "optimize": t_opt,
        "nevals": float(opt.nevals),
        "solve": t_sol,
        "lmer": t_total,
        "loglik": float(m.loglik),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e5,1e6", help="numbers of rows, comma separated")
    parser.add_argument("--models", default="intercept,slopes", help=", ".join(MODELS))
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best kept)")
    parser.add_argument("--profile", type=int, default=0, help="print a cProfile top N")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    header = f"{'model':<10} {'n':>9} " + " ".join(
        f"{k:>9}" for k in ("design", "products", "optimize", "solve", "lmer")
    )
    print(header + "   logLik")
    for name in args.models.split(","):
        formula = MODELS[name]
        for n in sizes:
            data = simulate(name, n)
            rep = args.repeat if n <= 1_000_000 else 1
            r = stages(formula, data, rep)
            cells = " ".join(
                f"{r[k]:9.3f}" for k in ("design", "products", "optimize", "solve", "lmer")
            )
            print(
                f"{name:<10} {n:>9} {cells}   {r['loglik']:.6f} ({r['nevals']:.0f} evals)",
                flush=True,
            )
            if args.profile:
                prof = cProfile.Profile()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    prof.runcall(lmer, formula, data)
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.profile)
                print(out.getvalue())


if __name__ == "__main__":
    main()
