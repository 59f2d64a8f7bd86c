"""The scale series of benchmarks/run.py (``--scale``, ``--plot``, ``--parquet-rows``).

Four simulated models, each fitted by lme4, mlmprimer, mixedlm-rs and statsmodels in the same
run, on the same rows (written once, seeded, as raw binaries that numpy and R read without a
parser):

* ``intercept``: ``y ~ x1 + x2 + x3 + (1 | g)``, 10^4 groups, at 10^5, 10^6 and 10^7 rows;
* ``slope``: ``y ~ x + (x | g)``, 10^4 groups, at the same sizes;
* ``crossed_5000x500`` and ``crossed_5000x5000``: ``y ~ x + (1 | g1) + (1 | g2)`` at 10^6 rows
  (mixedlm-rs fits one grouping factor: "n/a").

Each (model, size, tool) is one fresh process, timed and measured as the rest of run.py does
(the median of up to ``--repeats`` fits under a second, peak memory above the tool's baseline).
A fit whose time, extrapolated from the same tool's previous fit in its series, is over the
time limit ``--limit`` is not started but recorded as "skipped: over the limit"; one that runs
past it is killed. Every record is written to ``results/scale.json`` as soon as it is measured,
so a run cut short keeps what it did, ``--resume`` fits only what is missing, and ``--models``
and ``--sizes`` re-fit a part. benchmarks/SCALE.md (the tables) and benchmarks/scaling.png
(``--plot``) are written from that file.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import peers  # noqa: E402
import run as bench  # noqa: E402

SCALE_MD = HERE / "SCALE.md"
SCALE_PNG = HERE / "scaling.png"
SCALE_SEED = 20261201
SCALE_TOOLS = ("lme4", "mlmprimer", "mixedlm-rs", "statsmodels")
GROUPS = 10_000
SIZES = (100_000, 1_000_000, 10_000_000)

# name -> formula, design and sizes. "after" names the fit a skip decision extrapolates from
# when the model has no smaller size of its own: a fit of the same rows with fewer or no
# crossed levels, whose time is a lower bound.
SCALE_MODELS: dict[str, dict] = {
    "intercept": {
        "formula": "y ~ x1 + x2 + x3 + (1 | g)",
        "design": "intercept",
        "groups": GROUPS,
        "sizes": SIZES,
    },
    "slope": {"formula": "y ~ x + (x | g)", "design": "slope", "groups": GROUPS, "sizes": SIZES},
    "crossed_5000x500": {
        "formula": bench.SCALING_FORMULA,
        "design": "crossed",
        "levels": (5_000, 500),
        "sizes": (1_000_000,),
        "after": "intercept",
    },
    "crossed_5000x5000": {
        "formula": bench.SCALING_FORMULA,
        "design": "crossed",
        "levels": (5_000, 5_000),
        "sizes": (1_000_000,),
        "after": "crossed_5000x500",
    },
}

# The goals of the current engine work (benchmarks/README.md): (model, n, what, bound).
GOALS = (
    ("intercept", 1_000_000, "ratio", 0.25),  # mlmprimer >= 4x faster than mixedlm-rs
    ("intercept", 10_000_000, "seconds", 10.0),
    ("slope", 10_000_000, "seconds", 10.0),
    ("crossed_5000x5000", 1_000_000, "seconds", 10.0),
    ("crossed_5000x500", 1_000_000, "seconds", 3.0),
)

# Seconds a worker may take, beyond --limit, to start and read its data.
STARTUP_ALLOWANCE_S = 60.0

# Okabe-Ito, the colour-blind-safe palette (one colour per tool).
OKABE_ITO = {
    "lme4": "#0072B2",
    "mlmprimer": "#D55E00",
    "mixedlm-rs": "#009E73",
    "statsmodels": "#CC79A7",
    "mlmprimer (Parquet)": "#E69F00",
}
MODEL_STYLE = {
    "intercept": ("-", "o"),
    "slope": ("--", "s"),
    "crossed_5000x500": (":", "^"),
    "crossed_5000x5000": (":", "D"),
    "parquet_intercept": ("-.", "*"),
}


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def fit_id(model: str, n: int) -> str:
    """The record id of ``model`` at ``n`` rows, e.g. ``intercept_n1000000``."""
    return f"{model}_n{n}"


def simulate_columns(design: str, n: int, groups: int = GROUPS, seed: int = SCALE_SEED) -> dict:
    """The columns of a one-factor design (``intercept`` or ``slope``) at ``n`` rows.

    Every one of the ``groups`` levels of ``g`` occurs (balanced codes 1..groups in random
    order), predictors are N(0, 1), the residual N(0, 1). ``intercept``: ``y = 1 + 0.5 x1 -
    0.3 x2 + 0.2 x3 + a[g]``, a ~ N(0, 0.7^2). ``slope``: ``y = 2 + 0.5 x + a[g] + b[g] x``,
    (a, b) normal with standard deviations 0.8 and 0.3 and correlation 0.3. The generator is
    seeded by (seed, n, design), so the same call gives the same numbers.
    """
    import numpy as np

    if design not in ("intercept", "slope"):
        raise ValueError(f"unknown design {design!r}; known: intercept, slope")
    if n < groups:
        raise ValueError(f"{n} rows cannot hold every one of {groups} groups")
    rng = np.random.default_rng([seed, n, 1 if design == "intercept" else 2])
    g = rng.permutation(np.arange(n) % groups).astype("int32") + 1
    if design == "intercept":
        x1, x2, x3 = (rng.normal(size=n) for _ in range(3))
        a = rng.normal(0.0, 0.7, groups)
        y = 1.0 + 0.5 * x1 - 0.3 * x2 + 0.2 * x3 + a[g - 1] + rng.normal(size=n)
        return {"y": y, "x1": x1, "x2": x2, "x3": x3, "g": g}
    x = rng.normal(size=n)
    sd = np.array([0.8, 0.3])
    cov = np.outer(sd, sd) * np.array([[1.0, 0.3], [0.3, 1.0]])
    ab = rng.multivariate_normal([0.0, 0.0], cov, size=groups)
    y = 2.0 + 0.5 * x + ab[g - 1, 0] + ab[g - 1, 1] * x + rng.normal(size=n)
    return {"y": y, "x": x, "g": g}


def data_complete(prefix: str, names: list[str], n: int) -> bool:
    """Whether the binaries of ``names`` under ``prefix`` are there with ``n`` values each."""
    sizes = {"g": 4, "g1": 4, "g2": 4}
    return all(
        Path(f"{prefix}.{c}").exists()
        and Path(f"{prefix}.{c}").stat().st_size == n * sizes.get(c, 8)
        for c in names
    )


def write_scale_data(directory: Path, model: str, n: int, seed: int = SCALE_SEED) -> str:
    """Write (once: kept if complete) the data of ``model`` at ``n`` rows; returns the data spec.

    ``table:PREFIX`` for the one-factor designs, ``sim:PREFIX`` (run.write_scaling_data) for the
    crossed ones; the same files are read by every tool.
    """
    cfg = SCALE_MODELS[model]
    directory = Path(directory)
    if cfg["design"] == "crossed":
        l1, l2 = cfg["levels"]
        prefix = str(directory / f"crossed_{l1}x{l2}_n{n}")
        if not data_complete(prefix, ["y", "x", "g1", "g2"], n):
            prefix = bench.write_scaling_data(directory, n, seed=seed, levels=(l1, l2))
        return f"sim:{prefix}"
    prefix = str(directory / f"{cfg['design']}_g{cfg['groups']}_n{n}")
    names = ["y", "x1", "x2", "x3", "g"] if cfg["design"] == "intercept" else ["y", "x", "g"]
    if not (data_complete(prefix, names, n) and Path(f"{prefix}.cols").exists()):
        peers.write_table(simulate_columns(cfg["design"], n, cfg["groups"], seed), prefix)
    return f"table:{prefix}"


def scale_plan(models: list[str] | None = None, sizes: list[int] | None = None) -> list[tuple]:
    """The (model, n) pairs to fit, in order: each series by increasing n, then the next."""
    models = list(SCALE_MODELS) if not models else models
    unknown = [m for m in models if m not in SCALE_MODELS]
    if unknown:
        raise ValueError(f"unknown scale models {unknown}; known: {list(SCALE_MODELS)}")
    plan = []
    for m in SCALE_MODELS:  # the table's order, whatever the order asked
        if m in models:
            plan += [(m, n) for n in SCALE_MODELS[m]["sizes"] if not sizes or n in sizes]
    return plan


# ----------------------------------------------------------------------------------------------
# The time limit: extrapolate, and skip what would run over it
# ----------------------------------------------------------------------------------------------


def predecessor(model: str, n: int, tool: str, records: dict) -> tuple[dict, float] | None:
    """The fit a prediction of (model, n, tool) starts from, and its factor on time.

    The same model's largest smaller size, scaled linearly in n; for a model without one, the
    fit of ``after`` at the same n (a lower bound: the same rows, fewer crossed levels).
    """
    sizes = [s for s in SCALE_MODELS[model]["sizes"] if s < n]
    for s in sorted(sizes, reverse=True):
        rec = records.get((tool, fit_id(model, s)))
        if rec is not None and rec.get("status") != "n/a":
            return rec, n / s
    after = SCALE_MODELS[model].get("after")
    if after:
        rec = records.get((tool, fit_id(after, n)))
        if rec is not None and rec.get("status") != "n/a":
            return rec, 1.0
    return None


def skip_reason(model: str, n: int, tool: str, records: dict, limit: float) -> str:
    """Why (model, n) is not fitted with ``tool`` within ``limit`` seconds ("" to fit it).

    A predecessor (:func:`predecessor`) that took ``t`` seconds predicts ``t`` times its
    factor; one that was itself over the limit (killed, skipped) or failed predicts no better.
    """
    got = predecessor(model, n, tool, records)
    if got is None:
        return ""
    rec, factor = got
    t = bench.median_time(rec)
    if t is None:
        st = rec.get("status")
        if st in ("timeout", "skipped"):
            return "skipped: over the limit (a smaller fit was)"
        if st in ("error", "failed", "out of memory"):
            return f"skipped: a smaller fit ended in {st}"
        return ""
    predicted = t * factor
    if predicted > limit:
        return f"skipped: over the limit (~{predicted:.0f} s expected)"
    return ""


# ----------------------------------------------------------------------------------------------
# Results file
# ----------------------------------------------------------------------------------------------


def load_results(path: Path) -> dict:
    """``{"runs": {...}, "records": {(tool, id): rec}}`` from ``path`` (empty if absent)."""
    if not Path(path).exists():
        return {"runs": {}, "records": {}}
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {
        "runs": raw.get("runs", {}),
        "records": {(r["tool"], r["id"]): r for r in raw.get("records", [])},
    }


def save_results(path: Path, results: dict) -> None:
    """Write ``results`` to ``path`` atomically (a rename), records in plan order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recs = sorted(results["records"].values(), key=lambda r: (order_key(r["id"]), r["tool"]))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"runs": results["runs"], "records": recs}, indent=1), "utf-8")
    os.replace(tmp, path)


def order_key(rid: str) -> tuple:
    model, _, n = rid.rpartition("_n")
    names = list(SCALE_MODELS) + ["parquet_intercept"]
    return (names.index(model) if model in names else len(names), int(n) if n.isdigit() else 0)


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------


def _time(records: dict, tool: str, rid: str) -> float | None:
    return bench.median_time(records.get((tool, rid)))


def time_ratio(records: dict, tool: str, other: str, rid: str) -> float | None:
    """``tool``'s median time over ``other``'s on fit ``rid`` (None if either is missing)."""
    return bench.ratio(_time(records, tool, rid), _time(records, other, rid))


def cell(records: dict, tool: str, rid: str) -> str:
    rec = records.get((tool, rid))
    if rec is None:
        return "–"
    if rec.get("status") == "n/a":
        return "n/a"
    text = bench.fmt_time(bench.median_time(rec), rec)
    if rec.get("converged") is False:
        text += " (not converged)"
    if rec.get("messages"):  # lme4's convergence warnings
        text += " (warning)"
    return text


def reference_loglik(records: dict, rid: str) -> tuple[float | None, str]:
    """lme4's logLik of fit ``rid``, else mlmprimer's, and which it is."""
    for tool in ("lme4", "mlmprimer"):
        rec = records.get((tool, rid)) or {}
        if rec.get("status") == "ok":
            value = rec.get("logLik", rec.get("loglik"))
            if value is not None:
                return float(value), tool
    return None, ""


def fit_ids(records: dict) -> list[str]:
    return sorted({rid for _, rid in records}, key=order_key)


def ratio_pairs(tools: list[str]) -> list[tuple[str, str]]:
    """The ratio columns: every tool against lme4, and mlmprimer against mixedlm-rs."""
    pairs = [(t, "lme4") for t in tools if t != "lme4" and "lme4" in tools]
    if "mlmprimer" in tools and "mixedlm-rs" in tools:
        pairs.insert(1 if pairs and pairs[0][0] == "mlmprimer" else 0, ("mlmprimer", "mixedlm-rs"))
    return pairs


def fmt_ratio(r: float | None) -> str:
    """A ratio with two significant digits below 1 (0.20, 0.031), as run.fmt_ratio above."""
    if r is not None and 0 < r < 1:
        return f"{r:.{max(2, 1 - math.floor(math.log10(r)))}f}"
    return bench.fmt_ratio(r)


def time_table(records: dict, tools: list[str]) -> list[str]:
    """Fit time per tool and the ratios against lme4 and mixedlm-rs of the same records."""
    ratios = ratio_pairs(tools)
    head = ["model", "n"] + [f"{t} s" for t in tools] + [f"{t} × {o}" for t, o in ratios]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---:"] + ["---:"] * (len(head) - 2)) + "|",
    ]
    for rid in fit_ids(records):
        model, _, n = rid.rpartition("_n")
        row = [model, f"{int(n):,}"] + [cell(records, t, rid) for t in tools]
        row += [fmt_ratio(time_ratio(records, t, o, rid)) for t, o in ratios]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def cpu_table(records: dict, tools: list[str]) -> list[str]:
    """CPU seconds (user + system, median over the repeats) per tool, and mlmprimer's ratios."""
    pairs = [p for p in ratio_pairs(tools) if p[0] == "mlmprimer"]
    head = ["model", "n"] + [f"{t} CPU s" for t in tools] + [f"{t} × {o}" for t, o in pairs]
    lines = ["| " + " | ".join(head) + " |"]
    lines.append("|" + "|".join(["---", "---:"] + ["---:"] * (len(head) - 2)) + "|")
    for rid in fit_ids(records):
        model, _, n = rid.rpartition("_n")
        cpu = {t: bench.median_cpu(records.get((t, rid))) for t in tools}
        row = [model, f"{int(n):,}"] + [bench.fmt_time(cpu[t]) if cpu[t] else "–" for t in tools]
        row += [fmt_ratio(bench.ratio(cpu[t], cpu[o])) for t, o in pairs]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def memory_table(records: dict, tools: list[str]) -> list[str]:
    """Peak memory per tool, and logLik minus lme4's (or mlmprimer's) per tool."""
    others = [t for t in tools if t != "lme4"]
    head = ["model", "n"] + [f"{t} MB" for t in tools] + [f"ΔlogLik {t}" for t in others]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---", "---:"] + ["---:"] * (len(head) - 2)) + "|",
    ]
    for rid in fit_ids(records):
        model, _, n = rid.rpartition("_n")
        row = [model, f"{int(n):,}"]
        row += [bench.fmt_mb((records.get((t, rid)) or {}).get("peak_mb")) for t in tools]
        ref, which = reference_loglik(records, rid)
        for t in others:
            rec = records.get((t, rid))
            d = None if t == which else bench.loglik_diff(rec, ref)
            row.append(
                bench.fmt_dll(d)
                + (" (vs mlmprimer)" if d is not None and which == "mlmprimer" else "")
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def goal_rows(records: dict) -> list[dict]:
    """The goals (GOALS) with their verdicts: "met", "missed" or "not measured"."""
    out = []
    for model, n, what, bound in GOALS:
        rid = fit_id(model, n)
        t = _time(records, "mlmprimer", rid)
        if what == "ratio":
            r = time_ratio(records, "mlmprimer", "mixedlm-rs", rid)
            goal = (
                f"{model} at {n:,} rows: mlmprimer at least {1 / bound:.0f}x faster than mixedlm-rs"
            )
            value = (
                None
                if not r
                else f"{r:.2f} x mixedlm-rs"
                + (f" ({1 / r:.1f}x faster)" if r < 1 else f" ({r:.1f}x slower)")
            )
            ok = None if r is None else r <= bound
        else:
            goal = f"{model} at {n:,} rows within {bound:.0f} s"
            value = None if t is None else f"{t:.2f} s"
            ok = None if t is None else t <= bound
        if value is None:
            value = cell(records, "mlmprimer", rid)
            if (records.get(("mlmprimer", rid)) or {}).get("status") == "timeout":
                ok = False  # killed at a limit above the goal's bound
        verdict = "not measured" if ok is None else ("met" if ok else "missed")
        out.append({"goal": goal, "verdict": verdict, "value": value})
    return out


def scale_markdown(results: dict, tools: tuple[str, ...] = SCALE_TOOLS) -> str:
    """SCALE.md: the runs, the time and memory tables and the goals."""
    records = results["records"]
    runs = results["runs"]
    lines = [
        "# Scale benchmark: lme4, mlmprimer, mixedlm-rs and statsmodels",
        "",
        "Written by `benchmarks/run.py --scale` (see `benchmarks/README.md`, *Scale*); the "
        "records are in `benchmarks/results/scale.json` (not committed). Simulated data, the "
        "same rows for every tool; one fresh process per (model, n, tool); time of the fit "
        "call only (median of up to 5 fits under a second), peak memory above the tool's "
        "interpreter with its libraries.",
        "",
    ]
    for stamp, meta in sorted(runs.items()):
        lines.append(
            f"- **Run {stamp}:** `{meta.get('command', '?')}`; {meta.get('machine', '?')}; "
            f"load average (1 min) {meta.get('load_start', 0):.2f} at start, "
            f"{meta.get('load_end', 0):.2f} at end; {meta.get('elapsed_s', 0):.0f} s; mlmprimer/ "
            f"as of {meta.get('revision', '?')}; per-fit limit {meta.get('limit_s', 0):.0f} s; "
            f"{meta.get('versions', '')}"
        )
    lines += [
        "",
        "**Caveat:** a shared 2-core machine with other jobs running (the load averages above); "
        "every tool ran with one BLAS thread. Ratios of one run on a busy machine can be off "
        "by a factor of two for fits under a second; re-run before reading much into one.",
        "",
        "### Fit time (s) and ratios",
        "",
        "`a × b` is a's time over b's (below 1: a is faster). *skipped: over the limit*: the "
        "time extrapolated from the tool's previous fit of the series was over the per-fit "
        "limit, so it was not started; *timeout*: killed at the limit; *n/a*: the tool cannot "
        "fit the model (mixedlm-rs fits one grouping factor).",
        "",
    ]
    tools = list(tools)
    lines += time_table(records, tools)
    lines += [
        "",
        "### CPU time (s)",
        "",
        "On a busy machine wall time includes waiting for a core; CPU time does not.",
        "",
    ]
    lines += cpu_table(records, tools)
    lines += ["", "### Peak memory (MB) and agreement", ""]
    lines += memory_table(records, tools)
    lines += ["", "### Goals (mlmprimer)", "", "| goal | verdict | measured |", "|---|---|---|"]
    lines += [f"| {g['goal']} | {g['verdict']} | {g['value']} |" for g in goal_rows(records)]
    errors = [
        f"- {tool} / {rid}: {rec.get('status')}: "
        + (rec.get("error", "").strip().splitlines() or [""])[-1]
        for (tool, rid), rec in sorted(records.items(), key=lambda kv: order_key(kv[0][1]))
        if rec.get("status") in ("error", "failed", "out of memory")
    ]
    if errors:
        lines += ["", "Errors:", "", *errors]
    warned = [
        f"- {tool} / {rid}: {'; '.join(rec['messages'])}"
        for (tool, rid), rec in sorted(records.items(), key=lambda kv: order_key(kv[0][1]))
        if rec.get("messages")
    ]
    if warned:
        lines += ["", "Convergence warnings (*warning* above):", "", *warned]
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Plot
# ----------------------------------------------------------------------------------------------


def plot_series(records: dict) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """(tool, model) -> [(n, median seconds)] of the fits that ran, by n."""
    out: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for (tool, rid), rec in records.items():
        t = bench.median_time(rec)
        if t is None:
            continue
        model, _, n = rid.rpartition("_n")
        out.setdefault((tool, model), []).append((int(n), t))
    return {k: sorted(v) for k, v in sorted(out.items())}


def write_plot(records: dict, path: Path = SCALE_PNG) -> Path:
    """Time against rows, log-log, one line per tool (colour) and model (line and marker)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.5), dpi=120)
    for (tool, model), pts in plot_series(records).items():
        ls, marker = MODEL_STYLE.get(model, ("-", "x"))
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            linestyle=ls,
            marker=marker,
            color=OKABE_ITO.get(tool, "#000000"),
            label=f"{tool}: {model}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows (n)")
    ax.set_ylabel("fit time (s, median)")
    ax.set_title("Fit time against rows: lme4, mlmprimer, mixedlm-rs, statsmodels")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="tool: model")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


# ----------------------------------------------------------------------------------------------
# Parquet (optional): lmer reading a file it never holds whole
# ----------------------------------------------------------------------------------------------

PARQUET_FORMULA = "y ~ x1 + x2 + x3 + (1 | g)"

# Deterministic pseudo-random numbers from hashes of the row number (whatever DuckDB's threads
# do): u_k in (0, 1) from hash(8 i + k + offset) (the seed's offset: hash() of several arguments
# differing in the last is strongly correlated, of distinct single integers is not); normals by
# Box-Muller.
_PARQUET_SQL = """
COPY (
  WITH u AS (
    SELECT i,
      (hash(i * 8 + 1 + {offset}) % 9007199254740991 + 1) / 9007199254740993.0 AS u1,
      (hash(i * 8 + 2 + {offset}) % 9007199254740991 + 1) / 9007199254740993.0 AS u2,
      (hash(i * 8 + 3 + {offset}) % 9007199254740991 + 1) / 9007199254740993.0 AS u3,
      (hash(i * 8 + 4 + {offset}) % 9007199254740991 + 1) / 9007199254740993.0 AS u4,
      (hash(i * 8 + 5 + {offset}) % 9007199254740991 + 1) / 9007199254740993.0 AS u5,
      (hash(i * 8 + 6 + {offset}) % 9007199254740991 + 1) / 9007199254740993.0 AS u6,
      CAST(i % {groups} + 1 AS INTEGER) AS g
    FROM range({n}) t(i)
  ),
  z AS (
    SELECT g,
      sqrt(-2 * ln(u1)) * cos(2 * pi() * u2) AS x1,
      sqrt(-2 * ln(u1)) * sin(2 * pi() * u2) AS x2,
      sqrt(-2 * ln(u3)) * cos(2 * pi() * u4) AS x3,
      sqrt(-2 * ln(u3)) * sin(2 * pi() * u4) AS e,
      0.7 * sqrt(-2 * ln((hash(g * 8 + 7 + {offset}) % 9007199254740991 + 1) / 9007199254740993.0))
          * cos(2 * pi() * (hash(g * 8 + 8 + {offset}) % 9007199254740991 + 1) / 9007199254740993.0)
          AS a
    FROM u
  )
  SELECT 1 + 0.5 * x1 - 0.3 * x2 + 0.2 * x3 + a + e AS y, x1, x2, x3, g FROM z
) TO '{path}' (FORMAT parquet)
"""


def write_parquet(path: Path, n: int, groups: int = GROUPS, seed: int = SCALE_SEED) -> str:
    """Write the random-intercept design at ``n`` rows to Parquet with DuckDB (kept if there).

    Raises ImportError when duckdb is not installed.
    """
    import duckdb

    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.parquet")
        offset = (int(seed) % 4_000_000) * 2**40  # rows use 8 i + k < 2^40
        sql = _PARQUET_SQL.format(offset=offset, groups=int(groups), n=int(n), path=tmp)
        con = duckdb.connect()
        try:
            con.execute(sql)
        finally:
            con.close()
        os.replace(tmp, path)
    return str(path)


_PARQUET_PROBE = """
import sys, warnings
import duckdb
from mlmprimer import lmer
path = sys.argv[1]
duckdb.sql(
    "COPY (SELECT (i % 7) * 0.1 + hash(i) % 1000 / 1000.0 AS y, CAST(i % 5 + 1 AS INTEGER) AS g "
    "FROM range(200) t(i)) TO '" + path + "' (FORMAT parquet)"
)
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lmer("y ~ 1 + (1 | g)", path)
except Exception as err:
    print(f"{type(err).__name__}: {err}")
    sys.exit(3)
"""


def parquet_support(workdir: Path) -> str:
    """Why the Parquet entry cannot run here ("" when ``lmer`` fits a Parquet path)."""
    import subprocess

    try:
        import duckdb  # noqa: F401
    except ImportError:
        return "duckdb not installed"
    probe = Path(workdir) / "probe.parquet"
    proc = subprocess.run(
        [sys.executable, "-c", _PARQUET_PROBE, str(probe)],
        capture_output=True,
        text=True,
        cwd=bench.REPO,
        timeout=300,
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()
        return "mlmprimer.lmer does not read a Parquet path" + (
            f" ({tail[-1][:160]})" if tail else ""
        )
    return ""


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


def write_scale_md(md: str, path: Path = SCALE_MD) -> None:
    """Write SCALE.md, keeping the block of the course models against the peer (``--peers``)."""
    old = peers.peer_block(path.read_text(encoding="utf-8")) if path.exists() else ""
    path.write_text(md + ("\n" + old + "\n" if old else ""), encoding="utf-8")


def engine_revision() -> str:
    """The last commit that changed mlmprimer/ (the engine timed), and whether it is edited."""
    import subprocess

    try:
        rev = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", "mlmprimer"],
            cwd=bench.REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "?"
    dirty = bench.git_revision().endswith("uncommitted changes in mlmprimer/")
    return (rev or "?") + (" + uncommitted changes" if dirty else "")


def done(rec: dict | None) -> bool:
    """Whether ``--resume`` keeps record ``rec`` (anything measured or decided, not a failure)."""
    return rec is not None and rec.get("status") in ("ok", "timeout", "skipped", "n/a")


def parse_sizes(text: str | None) -> list[int] | None:
    """``"1e5,1e6"`` -> [100000, 1000000] (None when not given)."""
    if not text:
        return None
    return [int(float(v)) for v in text.split(",") if v.strip()]


def main(args, argv: list[str]) -> int:
    """``run.py --scale`` (and ``--plot``, ``--parquet-rows``)."""
    out_dir = Path(args.out)
    json_path = out_dir / "scale.json"
    if not args.scale and not args.parquet_rows:  # --plot or --scale-report: fit nothing
        if args.scale_report is not None:
            md = scale_markdown(load_results(Path(args.scale_report or json_path)))
            print(md)
            if not args.no_summary:
                write_scale_md(md)
                bench.log(f"wrote {SCALE_MD.relative_to(bench.REPO)}")
        if args.plot is not None:
            path = write_plot(load_results(Path(args.plot or json_path))["records"])
            bench.log(f"wrote {path}")
        return 0

    t_start = time.monotonic()
    load_start = os.getloadavg()[0]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = out_dir / "work" / f"scale-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    data_dir = out_dir / "data"

    tools = [t.strip() for t in (args.tools or "").split(",") if t.strip()]
    tools = [t for t in SCALE_TOOLS if t in tools or args.tools == ",".join(bench.TOOLS)]
    if "lme4" in tools and bench.r_available():
        bench.log(f"note: {bench.r_available()}: lme4 is left out")
        tools.remove("lme4")
    if "mixedlm-rs" in tools:
        peers.ensure_peer_venv()

    results = load_results(json_path)  # earlier records are kept: a run re-fits what it plans
    records = results["records"]
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    plan = scale_plan(models, parse_sizes(args.sizes)) if args.scale else []
    mem_limit = args.memory_limit_mb or None

    baselines, versions = {}, {}
    for tool in tools:
        baselines[tool], info = bench.baseline(tool, work, args.threads, mem_limit)
        versions[tool] = info
        bench.log(f"baseline {tool:12s} {baselines[tool]:7.1f} MB")

    def store(tool: str, rec: dict, proc: dict | None) -> None:
        rec = {**rec, "tool": tool, "run": stamp}
        if proc is not None and rec.get("status") == "ok":
            rec["maxrss_mb"] = proc["maxrss_mb"]
            rec["peak_mb"] = max(0.0, proc["maxrss_mb"] - baselines[tool])
            rec["process_wall_s"] = proc["wall_s"]
        records[(tool, rec["id"])] = rec
        save_results(json_path, results)
        t = bench.median_time(rec)
        extra = f"{t:8.3f} s" if t is not None else rec.get("reason") or bench.status_text(rec)
        if rec.get("peak_mb") is not None:
            extra += f"  {rec['peak_mb']:7.1f} MB"
        if rec.get("loglik") is not None or rec.get("logLik") is not None:
            extra += f"  logLik {rec.get('loglik', rec.get('logLik')):.4f}"
        bench.log(f"{rec['id']:26s} {tool:12s} {extra}")

    repeats, budget = args.repeats, args.budget
    for model, n in plan:
        rid = fit_id(model, n)
        todo = [t for t in tools if not (args.resume and done(records.get((t, rid))))]
        if not todo:
            continue
        data = write_scale_data(data_dir, model, n)
        spec = {
            "id": rid,
            "data": data,
            "n": n,
            "formula": SCALE_MODELS[model]["formula"],
            "REML": True,
            "max_repeats": repeats,
            "budget_s": budget,
        }
        for tool in todo:
            why = skip_reason(model, n, tool, records, args.limit)
            if why:
                store(tool, {"id": rid, "status": "skipped", "reason": why}, None)
                continue
            tspec = peers.peer_spec(spec, work) if tool == "mixedlm-rs" else spec
            if tspec.get("status") == "n/a":
                store(tool, tspec, None)
                continue
            timeout = args.limit + STARTUP_ALLOWANCE_S
            recs, proc = bench.run_jobs(tool, [tspec], work, timeout, args.threads, mem_limit)
            rec = recs[0]
            if rec.get("status") == "timeout":
                rec["limit_s"] = args.limit
            store(tool, rec, proc)

    if args.parquet_rows:
        n = int(args.parquet_rows)
        rid = fit_id("parquet_intercept", n)
        why = parquet_support(work)
        if why:
            short = why.split(" (")[0]
            rec = {"id": rid, "status": "skipped", "reason": f"skipped: {short}", "detail": why}
            store("mlmprimer", rec, None)
        else:
            path = write_parquet(data_dir / f"intercept_g{GROUPS}_n{n}.parquet", n)
            spec = {"id": rid, "data": f"parquet:{path}", "n": n, "formula": PARQUET_FORMULA}
            spec.update({"REML": True, "max_repeats": 1, "budget_s": 0.0})
            timeout = args.limit + STARTUP_ALLOWANCE_S
            recs, proc = bench.run_jobs("mlmprimer", [spec], work, timeout, args.threads, mem_limit)
            store("mlmprimer", recs[0], proc)

    cmd = shlex.join([os.path.relpath(sys.executable, bench.REPO), "benchmarks/run.py", *argv])
    vers = []
    for tool, info in versions.items():
        if tool == "lme4":
            vers.append(f"R {info.get('R', '?')}, lme4 {info.get('lme4', '?')}")
        elif tool == "mixedlm-rs":
            vers.append(f"mixedlm-rs {info.get('mixedlm-rs', '?')}")
        elif tool == "statsmodels":
            vers.append(f"statsmodels {info.get('statsmodels', '?')}")
        else:
            vers.append(f"numpy {info.get('numpy', '?')}, scipy {info.get('scipy', '?')}")
    results["runs"][stamp] = {
        "command": cmd,
        "machine": bench.machine_info()["summary"],
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "elapsed_s": time.monotonic() - t_start,
        "revision": engine_revision(),
        "limit_s": args.limit,
        "versions": "; ".join(vers),
        "baseline_mb": baselines,
    }
    live = {r.get("run") for r in records.values()}
    results["runs"] = {k: v for k, v in results["runs"].items() if k in live or k == stamp}
    save_results(json_path, results)
    md = scale_markdown(results)
    print(md)
    if not args.no_summary and out_dir.resolve() == bench.DEFAULT_OUT.resolve():
        write_scale_md(md)
        bench.log(f"wrote {SCALE_MD.relative_to(bench.REPO)}")
    if args.plot is not None:
        bench.log(f"wrote {write_plot(records)}")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    bench.log(f"scale results in {json_path} ({time.monotonic() - t_start:.0f} s)")
    return 0
