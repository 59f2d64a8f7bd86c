"""Crossed designs with a large second factor: the Schur step of two engines side by side.

Simulates (seeded) ``n`` rows of ``y ~ x + (1 | g1) + (1 | g2)`` with ``g1`` of 5,000 levels
and ``g2`` of 500 or 5,000, crossed at random (every ``g1`` level meets ``g2`` levels drawn
uniformly) or "locally" (each ``g1`` level meets a band of 21 ``g2`` levels around its own
position, as raters who each score a few neighbouring items), and fits it with

* the engine of this checkout ("new"), and
* the engine of a git revision (``--old-ref``, default ``main``; "old"), extracted with
  ``git archive`` into a temporary folder,

each fit in a fresh subprocess (so peak memory is that fit's). It times the stages of
:func:`mlmprimer.lmer`: the design, the deviance function's set-up (cross-products, pair map,
the choice of the Schur step), the optimisation (and its evaluations), the solution at the
optimum; and the peak resident memory. Results go to ``benchmarks/CROSSED.md``. For the new
engine it also times the factor's own solve of ``(u_rest, beta)`` (``Factor.normal_solution``),
which needs no dense factor of a sparse Schur complement (``solve_mixed`` still forms one).

Usage (from the repository root)::

    .venv/bin/python benchmarks/crossed_sparse.py                    # every case, both engines
    .venv/bin/python benchmarks/crossed_sparse.py --cases 5000x500-random --engines new
    .venv/bin/python benchmarks/crossed_sparse.py --n 100000 --out /tmp/crossed.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMULA = "y ~ x + (1 | g1) + (1 | g2)"
CASES = {
    "5000x500-random": (5000, 500, "random"),
    "5000x500-local": (5000, 500, "local"),
    "5000x5000-random": (5000, 5000, "random"),
    "5000x5000-local": (5000, 5000, "local"),
}


def simulate(n: int, l1: int, l2: int, crossing: str, seed: int = 20261201):
    """``n`` rows of two crossed factors (every level present), x, and y from known effects."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    g1 = rng.permutation(np.resize(np.arange(l1), n))
    if crossing == "random":
        g2 = rng.permutation(np.resize(np.arange(l2), n))
    else:  # a band of 21 levels of g2 around g1's position
        g2 = ((g1 * l2) // l1 + rng.integers(-10, 11, n)) % l2
    x = rng.normal(size=n)
    y = (
        1.0
        + 0.5 * x
        + rng.normal(0.0, 0.7, l1)[g1]
        + rng.normal(0.0, 0.5, l2)[g2]
        + rng.normal(size=n)
    )
    return pd.DataFrame({"y": y, "x": x, "g1": g1.astype(str), "g2": g2.astype(str)})


def rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(case: str, n: int, engine_path: str) -> dict:
    """One fit, stage by stage as :func:`mlmprimer.lmer` does, in this process."""
    sys.path.insert(0, engine_path)
    import numpy as np

    from mlmprimer.control import LmerControl
    from mlmprimer.design import model_design
    from mlmprimer.factor import deviance_function
    from mlmprimer.optimize import optimize_theta
    from mlmprimer.solution import solve_mixed

    l1, l2, crossing = CASES[case]
    data = simulate(n, l1, l2, crossing)
    base = rss_mb()
    out: dict = {"case": case, "n": n, "mlmprimer": str(Path(engine_path))}
    t0 = time.perf_counter()
    md = model_design(FORMULA, data, control=LmerControl())
    t1 = time.perf_counter()
    devfun = deviance_function(md.design, True)
    t2 = time.perf_counter()
    opt = optimize_theta(devfun, LmerControl())
    t3 = time.perf_counter()
    sol = solve_mixed(devfun, opt.theta)
    t4 = time.perf_counter()
    # the factor's own solve of (u_rest, beta), without solution.py's dense factor
    f = devfun.factor(opt.theta)
    if hasattr(f, "normal_solution"):
        f.normal_solution()
        out["factor_solve_s"] = time.perf_counter() - t4
    out.update(
        design_s=t1 - t0,
        setup_s=t2 - t1,
        optimize_s=t3 - t2,
        evals=int(opt.nevals),
        solve_s=t4 - t3,
        fit_s=t4 - t0,
        peak_mb=rss_mb(),
        peak_above_data_mb=rss_mb() - base,
        schur=getattr(devfun, "schur", "dense"),
        theta=[float(v) for v in opt.theta],
        deviance=float(opt.deviance),
        beta=[float(v) for v in np.asarray(sol.beta)],
        sigma=float(sol.sigma),
    )
    return out


def extract(ref: str, dest: Path) -> Path:
    """``git archive ref mlmprimer`` unpacked in ``dest`` (the old engine)."""
    tar = dest / "old.tar"
    with tar.open("wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", ref, "mlmprimer"], stdout=fh, check=True)
    with tarfile.open(tar) as tf:
        tf.extractall(dest, filter="data")
    return dest


def run_one(case: str, n: int, path: Path, timeout: float) -> dict:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(path))
    cmd = [sys.executable, __file__, "--worker", case, "--n", str(n), "--engine-path", str(path)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"case": case, "n": n, "error": f"timeout (>{timeout:.0f} s)"}
    if res.returncode != 0:
        return {"case": case, "n": n, "error": res.stderr.strip().splitlines()[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def fmt(r: dict | None, key: str, spec: str = ".2f") -> str:
    if r is None or "error" in r:
        return "–" if r is None else r["error"]
    return format(r[key], spec)


def report(results: dict, args: argparse.Namespace, command: str) -> str:
    import numpy as np

    lines = [
        "# Crossed designs with a large second factor",
        "",
        "Written by `benchmarks/crossed_sparse.py` (see its docstring for what is simulated and",
        "measured). Each fit runs in a fresh process, one at a time; times are wall seconds,",
        "memory the fit process's peak resident set (with the data and the interpreter).",
        "",
        f"- **Date:** {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- **Command:** `{command}`",
        f"- **Machine:** {platform.machine()}, {os.cpu_count()} cores, "
        f"load average at the end {os.getloadavg()[0]:.2f}",
        f"- **Model:** `{FORMULA}`, REML, n = {args.n:,}; old engine = `{args.old_ref}`",
        "",
        "| case | engine | Schur step | design s | set-up s | optimise s (evals) | solve s "
        "| fit s | peak MB | REML criterion | factor's solve s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in args.cases:
        for eng in args.engines:
            r = results.get((case, eng))
            if r is None:
                continue
            if "error" in r:
                lines.append(f"| {case} | {eng} | – | | | {r['error']} | | | | | |")
                continue
            lines.append(
                f"| {case} | {eng} | {r['schur']} | {fmt(r, 'design_s')} | {fmt(r, 'setup_s')} "
                f"| {fmt(r, 'optimize_s')} ({r['evals']}) | {fmt(r, 'solve_s')} "
                f"| **{fmt(r, 'fit_s')}** | {fmt(r, 'peak_mb', '.0f')} | {r['deviance']:.6f} "
                f"| {format(r['factor_solve_s'], '.2f') if 'factor_solve_s' in r else '–'} |"
            )
    lines += [
        "",
        "*Schur step*: how the new engine factors the Schur complement of `[Z_g2 | X | y]`",
        '(`LmerControl(schur_factor="auto")`, see `mlmprimer/schur.py`); the old engine always',
        "factors it dense. *factor's solve s*: one factorisation at the optimum and",
        "`Factor.normal_solution()` (u for g2 and beta), what `solve_mixed` would cost if it",
        "took `(u_rest, beta)` from the factor instead of from the dense `Ls`, which a sparse",
        "factor forms on demand (one dense Cholesky of size q_g2 + p + 1).",
    ]
    lines += ["", "Agreement of the new engine with the old (where both finished):", ""]
    lines += ["| case | REML criterion, relative | theta, max relative | beta, max relative |"]
    lines += ["|---|---:|---:|---:|"]
    for case in args.cases:
        a, b = results.get((case, "old")), results.get((case, "new"))
        if not a or not b or "error" in a or "error" in b:
            continue

        def rel(x, y):
            x, y = np.asarray(x), np.asarray(y)
            return float(np.max(np.abs(x - y) / np.abs(y)))

        dev, th = rel(b["deviance"], a["deviance"]), rel(b["theta"], a["theta"])
        lines.append(f"| {case} | {dev:.1e} | {th:.1e} | {rel(b['beta'], a['beta']):.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--cases", default=",".join(CASES), help="comma-separated, of " + ", ".join(CASES)
    )
    ap.add_argument("--engines", default="old,new", help="old, new or both")
    ap.add_argument("--old-ref", default="main", help="git revision of the old engine")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--timeout", type=float, default=900.0, help="per fit, seconds")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "CROSSED.md"))
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--engine-path", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n, args.engine_path)))
        return
    args.cases = args.cases.split(",")
    args.engines = args.engines.split(",")
    unknown = sorted(set(args.cases) - set(CASES)) + sorted(set(args.engines) - {"old", "new"})
    if unknown:
        ap.error(f"unknown cases or engines {unknown}")
    command = "python benchmarks/crossed_sparse.py " + " ".join(argv or sys.argv[1:])
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"new": ROOT}
        if "old" in args.engines:
            paths["old"] = extract(args.old_ref, Path(tmp))
        for case in args.cases:
            for eng in args.engines:
                r = run_one(case, args.n, paths[eng], args.timeout)
                results[(case, eng)] = r
                print(
                    case,
                    eng,
                    {k: v for k, v in r.items() if k not in ("theta", "beta")},
                    flush=True,
                )
                Path(args.out).write_text(report(results, args, command.strip()))


if __name__ == "__main__":
    main()
