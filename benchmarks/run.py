#!/usr/bin/env python
"""Time mlmprimer, statsmodels and lme4 on the course's reference models, in one run.

``make benchmark`` runs this script with the project's interpreter. For every reference model
(the lme4 fixtures in tests/fixtures/lme4, InstEval included) and every tool, one fresh process
loads the data and fits the model: only the fit is timed (the median of several fits for small
models), and the process's peak resident memory, minus that of a process that only started the
interpreter (or R) and imported the libraries, is its memory. A second table fits simulated data
with two crossed factors at n = 10^3 ... 10^6 to show how time and memory grow with n.

Results go to benchmarks/results/ (JSON and Markdown, not committed); a complete run (no
``--quick``, ``--models``, ``--tools`` or ``--skip-scaling``) also rewrites the committed summary
benchmarks/RESULTS.md. See benchmarks/README.md for the targets and how to read the tables.

Usage::

    .venv/bin/python benchmarks/run.py                 # everything, about 10 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick         # small models, one process per tool
    .venv/bin/python benchmarks/run.py --models sleepstudy_slopes,insteval --skip-scaling
    .venv/bin/python benchmarks/run.py --peers         # also mixedlm-rs (benchmarks/peers.py)
    .venv/bin/python benchmarks/run.py --scale --plot  # the scale series (benchmarks/scale.py)

The script imports only the standard library at the top: the heavy imports happen in the
worker processes (``--worker``), which this same file implements.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURE_DIR = REPO / "tests" / "fixtures" / "lme4"
R_SCRIPT = HERE / "bench_lme4.R"
DEFAULT_OUT = HERE / "results"
SUMMARY = HERE / "RESULTS.md"

TOOLS = ("lme4", "mlmprimer", "statsmodels")
# Peers timed with --peers, each in its own virtualenv (benchmarks/peers.py makes it).
PEER_TOOLS = ("mixedlm-rs",)

# The reference models in the order of the tables; fixtures not listed here are appended.
REFERENCE_ORDER = [
    "sleepstudy_null",
    "sleepstudy_slopes",
    "sleepstudy_uncorrelated",
    "sleepstudy_slopes_ml",
    "dyestuff",
    "penicillin",
    "pastes",
    "hsb_null",
    "hsb_ses_slopes",
    "hsb_ses_uncorrelated",
    "hsb_ml",
    "oxboys",
    "scotssec",
    "scotssec_ml",
    "exam_null",
    "insteval",
]

# statsmodels MixedLM's spelling of each model is generated, in the worker, by
# mlmprimer.backends.statsmodels_spec (the one lmer(..., backend="statsmodels") and
# LmerModel.statsmodels_code() use): `groups` (None: one group holding every row, the only way
# MixedLM fits crossed factors), `re_formula` and `vc_formula`. The one-group crossed models with
# at least SM_SPARSE_MIN_N rows also get `use_sparse=True` (sparse variance-component matrices:
# much faster for them, slower for small ones). A model MixedLM cannot express is "n/a".
SM_SPARSE_MIN_N = 1_000

# The simulated crossed design of the scaling table.
SCALING_FORMULA = "y ~ x + (1 | g1) + (1 | g2)"
SCALING_LEVELS = (500, 50)
SCALING_N = (1_000, 10_000, 100_000, 1_000_000)

# The glmer reference models: the fixtures of scripts/lme4_reference_glmer.R. Only lme4 and
# mlmprimer fit them (statsmodels' mixed GLMs are Bayesian approximations, not these estimates).
# A glmer fit is repeated (best of --repeats) unless it takes longer than GLMER_SINGLE_FIT_S,
# within --glmer-budget seconds.
GLMER_FIXTURES = REPO / "tests" / "fixtures" / "lme4_glmer" / "models.csv"
GLMER_TOOLS = ("lme4", "mlmprimer")
GLMER_COLUMNS = ("family", "link", "nAGQ", "weights", "offset")
GLMER_SINGLE_FIT_S = 60.0
GLMER_TIME_RATIO_MAX = 1.0
# The glmer section of a report, between these lines, is what a glmer-only run (--glmer)
# writes into RESULTS.md, leaving the rest of the file as it is.
GLMER_BEGIN = "<!-- glmer benchmark: begin -->"
GLMER_END = "<!-- glmer benchmark: end -->"

# Targets (benchmarks/README.md explains them).
LOGLIK_TOL = 1e-3
TIME_RATIO_MAX = 1.5
INSTEVAL_MEMORY_MB = 2048
SCALING_SLOPE_MAX = 1.15


# ==============================================================================================
# Worker side: runs in a fresh process, imports the tool, loads the data, times the fits
# ==============================================================================================


def _import_tool(tool: str) -> None:
    """Import what a worker of ``tool`` needs (the baseline process imports exactly this)."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    if tool == "mixedlm-rs":  # runs in its own virtualenv, without mlmprimer's dependencies
        import mixedlm_rs  # noqa: F401

        return

    import mlmprimer.datasets  # noqa: F401
    import mlmprimer.model  # noqa: F401

    if tool == "statsmodels":
        import statsmodels.formula.api  # noqa: F401


def openblas_info() -> dict[str, str]:
    """OpenBLAS build and the kernel it chose at run time, for numpy's and scipy's copies."""
    import ctypes
    import glob

    import numpy
    import scipy

    out: dict[str, str] = {}
    for label, pkg, libdir in (("numpy", numpy, "numpy.libs"), ("scipy", scipy, "scipy.libs")):
        site = Path(pkg.__file__).resolve().parent.parent
        for path in sorted(glob.glob(str(site / libdir / "*openblas*.so*"))):
            lib = ctypes.CDLL(path)
            for prefix in ("scipy_openblas_", "openblas_"):
                for suffix in ("64_", ""):
                    try:
                        corename = getattr(lib, f"{prefix}get_corename{suffix}")
                        config = getattr(lib, f"{prefix}get_config{suffix}")
                        threads = getattr(lib, f"{prefix}get_num_threads{suffix}")
                    except AttributeError:
                        continue
                    corename.restype = ctypes.c_char_p
                    config.restype = ctypes.c_char_p
                    out[label] = (
                        f"{config().decode().strip()}; core {corename().decode()}; "
                        f"{threads()} thread{'s' if threads() != 1 else ''}"
                    )
                    break
                if label in out:
                    break
    return out


def _tool_versions(tool: str) -> dict:
    if tool == "mixedlm-rs":
        import mixedlm_rs
        import numpy
        import pandas

        return {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
            "mixedlm-rs": mixedlm_rs.__version__,
        }
    import nlopt
    import numpy
    import pandas
    import patsy
    import scipy

    info = {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
        "patsy": patsy.__version__,
        "nlopt": getattr(nlopt, "__version__", "?"),
        "openblas": openblas_info(),
    }
    if tool == "statsmodels":
        import statsmodels

        info["statsmodels"] = statsmodels.__version__
    return info


def load_sim(prefix: str, n: int):
    """The simulated crossed data written by :func:`write_scaling_data`, as a DataFrame."""
    import numpy as np
    import pandas as pd

    def read(ext, dtype):
        values = np.fromfile(f"{prefix}.{ext}", dtype=dtype)
        if values.size != n:
            raise ValueError(f"{prefix}.{ext} has {values.size} values, expected {n}")
        return values

    return pd.DataFrame(
        {
            "y": read("y", "<f8"),
            "x": read("x", "<f8"),
            "g1": pd.Categorical(read("g1", "<i4")),
            "g2": pd.Categorical(read("g2", "<i4")),
        }
    )


def load_table(prefix: str, n: int):
    """A table written as raw binaries (benchmarks/peers.py ``write_table``), as a DataFrame.

    ``PREFIX.cols`` lists one column a line, ``name<TAB>f8`` (float64) or ``name<TAB>i4``
    (int32 codes 1..K of a factor, whose labels, if any, are the lines of ``PREFIX.NAME.levels``);
    each column's values are in ``PREFIX.NAME``, little-endian.
    """
    import numpy as np
    import pandas as pd

    columns = {}
    for line in Path(f"{prefix}.cols").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        name, kind = line.split("\t")
        dtype = {"f8": "<f8", "i4": "<i4"}[kind]
        values = np.fromfile(f"{prefix}.{name}", dtype=dtype)
        if values.size != n:
            raise ValueError(f"{prefix}.{name} has {values.size} values, expected {n}")
        if kind == "i4":
            levels = Path(f"{prefix}.{name}.levels")
            if levels.exists():
                labels = levels.read_text(encoding="utf-8").split("\n")[:-1]
                values = pd.Categorical.from_codes(values - 1, categories=labels)
            else:
                values = pd.Categorical(values)
        columns[name] = values
    return pd.DataFrame(columns)


def _load_data(spec: dict):
    kind, _, arg = spec["data"].partition(":")
    if kind == "dataset":
        from mlmprimer import datasets

        data = datasets.load(arg)
    elif kind == "sim":
        data = load_sim(arg, int(spec["n"]))
    elif kind == "table":
        data = load_table(arg, int(spec["n"]))
    elif kind == "parquet":  # the path itself: lmer reads the file (scale.py --parquet-rows)
        return arg
    else:
        raise ValueError(f"unknown data {spec['data']!r}")
    if len(data) != int(spec["n"]):
        raise ValueError(f"{spec['data']} has {len(data)} rows, expected {spec['n']}")
    return data


def _fit_once(tool: str, spec: dict, data) -> dict:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if tool == "mlmprimer" and spec.get("family"):
            return _fit_glmer(spec, data)
        if tool == "mixedlm-rs":
            return _fit_mixedlm_rs(spec, data)
        if tool == "mlmprimer":
            from mlmprimer.model import lmer

            m = lmer(spec["formula"], data, REML=spec["REML"])
            return {
                "loglik": float(m.loglik),
                "theta": [float(v) for v in m.theta],
                "nevals": int(getattr(getattr(m, "fit_info", None), "nevals", -1)),
                "converged": bool(m.converged),
            }
        if tool == "statsmodels":
            import statsmodels.formula.api as smf

            sm = spec["sm"]  # from statsmodels_kwargs()
            df = data
            groups = sm.get("groups")
            if groups is None:
                df = data.assign(_all=1)
                groups = "_all"
            kwargs: dict = {"groups": groups}
            if "re_formula" in sm:
                kwargs["re_formula"] = sm["re_formula"]
            if "vc_formula" in sm:
                kwargs["vc_formula"] = sm["vc_formula"]
                kwargs["use_sparse"] = bool(sm.get("use_sparse", False))
            # MixedLM's default optimiser settings, as a user calls it. (method=["lbfgs"] alone
            # is faster on some models but returns llf = inf at a zero variance on the random-
            # intercept models here, and fails on dyestuff.)
            res = smf.mixedlm(sm["fixed"], df, **kwargs).fit(reml=spec["REML"])
            llf = float(res.llf)
            return {
                "loglik": llf if math.isfinite(llf) else None,
                "converged": bool(res.converged),
            }
    raise ValueError(f"unknown tool {tool!r}")


def _fit_mixedlm_rs(spec: dict, data) -> dict:
    """Fit with mixedlm-rs (one grouping factor) in MixedLM's spelling ``spec["sm"]``.

    The spelling comes from mlmprimer.backends.statsmodels_spec in the parent (peers.py); the
    call is the one a statsmodels user makes: ``mixedlm(...).fit(reml=...)``.
    """
    import mixedlm_rs

    sm = spec["sm"]
    kwargs = {"groups": sm["groups"]}
    if sm.get("re_formula") is not None:
        kwargs["re_formula"] = sm["re_formula"]
    res = mixedlm_rs.mixedlm(sm["fixed"], data, **kwargs).fit(reml=spec["REML"])
    llf = float(res.llf)
    return {
        "loglik": llf if math.isfinite(llf) else None,
        "converged": bool(res.converged),
        "fixef": [float(v) for v in res.fe_params],
        "sigma2": float(res.scale),
    }


def glmer_arrays(spec: dict, data) -> dict:
    """The ``weights=`` and ``offset=`` arguments of a glmer fixture model, from ``data``.

    The fixtures name a column for the weights and write the offset argument in R; only
    ``log(column)`` occurs there.
    """
    import numpy as np

    out = {}
    if spec.get("weights"):
        out["weights"] = data[spec["weights"]].to_numpy(float)
    if spec.get("offset"):
        expr = spec["offset"].replace(" ", "")
        if not (expr.startswith("log(") and expr.endswith(")")):
            raise NotImplementedError(f"offset {spec['offset']!r}: only log(column) is read")
        out["offset"] = np.log(data[expr[4:-1]].to_numpy(float))
    return out


def _fit_glmer(spec: dict, data) -> dict:
    from mlmprimer import glmer

    m = glmer(
        spec["formula"],
        data,
        family=spec["family"],
        link=spec["link"],
        nAGQ=int(spec["nAGQ"]),
        **glmer_arrays(spec, data),
    )
    return {
        "loglik": float(m.loglik),
        "theta": [float(v) for v in m.theta],
        "nevals": int(getattr(getattr(m, "fit_info", None), "nevals", -1)),
        "converged": bool(m.converged),
    }


def statsmodels_kwargs(formula: str, data) -> dict:
    """MixedLM's spelling of ``formula`` on ``data`` (see SM_SPARSE_MIN_N for ``use_sparse``).

    Raises NotImplementedError for a model MixedLM cannot express.
    """
    import warnings

    from mlmprimer.backends import statsmodels_spec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = statsmodels_spec(formula, data).kwargs()
    if sm["groups"] is None and len(data) >= SM_SPARSE_MIN_N:
        sm["use_sparse"] = True
    return sm


def time_fit(tool: str, spec: dict, data) -> dict:
    """Fit ``spec`` until ``max_repeats`` fits or ``budget_s`` seconds.

    A fit longer than ``spec["single_fit_s"]`` seconds (default 1) is not repeated.
    """
    import gc

    times: list[float] = []
    cpu: list[float] = []
    out: dict = {}
    while True:
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        out = _fit_once(tool, spec, data)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if (
            len(times) >= int(spec["max_repeats"])
            or sum(times) >= float(spec["budget_s"])
            or times[0] > float(spec.get("single_fit_s", 1.0))
        ):
            break
    return {"id": spec["id"], "status": "ok", "times": times, "cpu": cpu, **out}


def worker_main(spec_path: str, result_path: str) -> int:
    """Entry point of a worker process: ``run.py --worker SPEC.json RESULT.jsonl``."""
    job = json.loads(Path(spec_path).read_text())
    tool = job["tool"]
    _import_tool(tool)
    with open(result_path, "w", encoding="utf-8") as out:
        if job.get("baseline"):
            out.write(json.dumps({"id": "baseline", "status": "ok", **_tool_versions(tool)}) + "\n")
            return 0
        for spec in job["fits"]:
            try:
                data = _load_data(spec)
                if tool == "statsmodels":
                    spec = {**spec, "sm": statsmodels_kwargs(spec["formula"], data)}
                rec = time_fit(tool, spec, data)
                del data
            except NotImplementedError:
                rec = {"id": spec["id"], "status": "n/a"}
            except MemoryError:
                rec = {"id": spec["id"], "status": "out of memory"}
            except Exception as err:  # report and go on with the next fit
                rec = {"id": spec["id"], "status": "error", "error": f"{type(err).__name__}: {err}"}
            out.write(json.dumps(rec) + "\n")
            out.flush()
    return 0


# ==============================================================================================
# Parent side: processes, time limits, peak memory
# ==============================================================================================


# The launcher between this script and a worker. Linux carries a process's peak-RSS mark across
# fork and exec: a child started by a big process (pytest, or this script after it has made the
# scaling data) starts with its parent's peak already counted. The launcher is a bare interpreter
# (``python -S``, about 10 MB) whose only child is the worker, so that child starts from the
# launcher's small mark, and the launcher's getrusage(RUSAGE_CHILDREN).ru_maxrss is the worker's
# own peak. It writes that and the worker's exit code to the file named by its first argument.
_LAUNCHER = """
import json, os, resource, sys
out, limit_mb, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
pid = os.fork()
if pid == 0:
    try:
        if limit_mb > 0:
            nbytes = int(limit_mb * 2**20)
            resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status = os.waitpid(pid, 0)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out, "w") as f:
    json.dump({"exitcode": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, f)
"""


def run_process(
    cmd: list[str], timeout: float, env: dict | None = None, memory_limit_mb: float | None = None
) -> dict:
    """Run ``cmd`` in a fresh process (through the launcher); kill it after ``timeout`` seconds.

    Returns ``status`` ("ok", "timeout" or "failed"), ``returncode``, ``wall_s``, ``maxrss_mb``
    (the command's peak resident memory: ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in the launcher,
    whose only child it is) and the last 2000 characters of its output. ``memory_limit_mb`` caps
    the command's address space (RLIMIT_AS).
    """
    with tempfile.TemporaryDirectory() as tmp:
        status_file = Path(tmp) / "status.json"
        log_path = Path(tmp) / "log.txt"
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(status_file)]
        launcher.append(str(memory_limit_mb or 0))
        with open(log_path, "wb") as log:
            t0 = time.monotonic()
            proc = subprocess.Popen(
                launcher + list(cmd),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                env=env,
                start_new_session=True,  # its own process group, killed as a whole
            )
            timed_out = False
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            wall = time.monotonic() - t0
            try:  # the group: on a time-out the worker too, otherwise anything left behind
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        info = {}
        if status_file.exists():
            try:
                info = json.loads(status_file.read_text())
            except json.JSONDecodeError:
                info = {}
    code = info.get("exitcode", proc.returncode)
    return {
        "status": "timeout" if timed_out else ("ok" if code == 0 and info else "failed"),
        "returncode": code,
        "wall_s": wall,
        "maxrss_mb": info.get("maxrss_kb", 0) / 1024.0,  # ru_maxrss is in KiB on Linux
        "output": tail,
    }


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out


def worker_env(threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    return env


def _peers():
    """benchmarks/peers.py (the peers' virtualenv, data and spelling), imported on first use."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import peers

    return peers


def worker_python(tool: str) -> str:
    """The interpreter of a Python tool's workers: a peer's virtualenv, else this one."""
    if tool in PEER_TOOLS:
        return str(HERE / ".venv-peers" / "bin" / "python")
    return sys.executable


def r_available() -> str:
    """Why lme4 cannot be timed here ("" when it can)."""
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    try:
        proc = subprocess.run(
            ["Rscript", "--vanilla", "-e", "cat(requireNamespace('lme4', quietly = TRUE))"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"Rscript failed: {err}"
    return "" if proc.stdout.strip().endswith("TRUE") else "R package lme4 not installed"


def run_jobs(
    tool: str,
    specs: list[dict],
    workdir: Path,
    timeout: float,
    threads: int | None,
    memory_limit_mb: float | None,
) -> tuple[list[dict], dict]:
    """Run ``specs`` in one process of ``tool``; returns one record per spec and the process."""
    workdir.mkdir(parents=True, exist_ok=True)
    tag = f"{tool}-{specs[0]['id'] if len(specs) == 1 else 'batch'}"
    result = workdir / f"{tag}.jsonl"
    result.unlink(missing_ok=True)
    if tool == "lme4":
        spec_file = workdir / f"{tag}.tsv"
        cols = ["id", "data", "n", "formula", "REML", "max_repeats", "budget_s"]
        cols += ["single_fit_s", *GLMER_COLUMNS]
        rows = ["\t".join(cols)]
        for s in specs:
            vals = {"single_fit_s": 1.0, **s, "REML": "TRUE" if s["REML"] else "FALSE"}
            rows.append("\t".join(str(vals.get(c, "")) for c in cols))
        spec_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
        cmd = ["Rscript", "--vanilla", str(R_SCRIPT), str(spec_file), str(result)]
    else:
        spec_file = workdir / f"{tag}.json"
        spec_file.write_text(json.dumps({"tool": tool, "fits": specs}), encoding="utf-8")
        cmd = [
            worker_python(tool),
            str(Path(__file__).resolve()),
            "--worker",
            str(spec_file),
            str(result),
        ]
    proc = run_process(cmd, timeout, worker_env(threads), memory_limit_mb)
    got = {r.get("id"): r for r in _read_jsonl(result)}
    records = []
    for s in specs:
        rec = got.get(s["id"])
        if rec is None:
            if proc["status"] == "timeout":
                rec = {"id": s["id"], "status": "timeout", "limit_s": timeout}
            else:
                rec = {"id": s["id"], "status": "error", "error": proc["output"][-600:]}
        records.append(rec)
    return records, proc


def baseline(
    tool: str, workdir: Path, threads: int | None, memory_limit_mb: float | None
) -> tuple[float, dict]:
    """Peak memory (MiB) of a process that only starts the interpreter and imports the tool."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = workdir / f"{tool}-baseline.jsonl"
    result.unlink(missing_ok=True)
    if tool == "lme4":
        cmd = ["Rscript", "--vanilla", str(R_SCRIPT), "--baseline", str(result)]
    else:
        spec_file = workdir / f"{tool}-baseline.json"
        spec_file.write_text(json.dumps({"tool": tool, "baseline": True, "fits": []}))
        cmd = [
            worker_python(tool),
            str(Path(__file__).resolve()),
            "--worker",
            str(spec_file),
            str(result),
        ]
    proc = run_process(cmd, 300, worker_env(threads), memory_limit_mb)
    if proc["status"] != "ok":
        raise RuntimeError(f"the {tool} baseline process failed:\n{proc['output']}")
    info = (_read_jsonl(result) or [{}])[0]
    return proc["maxrss_mb"], info


# ==============================================================================================
# What to run
# ==============================================================================================


def load_fixtures() -> dict[str, dict]:
    fixtures = {}
    for path in sorted(FIXTURE_DIR.glob("*.json")):
        fx = json.loads(path.read_text(encoding="utf-8"))
        fixtures[fx["name"]] = fx
    order = [n for n in REFERENCE_ORDER if n in fixtures]
    order += [n for n in fixtures if n not in order]
    return {n: fixtures[n] for n in order}


def reference_specs(fixtures: dict[str, dict], max_repeats: int, budget_s: float) -> list[dict]:
    specs = []
    for name, fx in fixtures.items():
        specs.append(
            {
                "id": name,
                "data": f"dataset:{fx['dataset']}",
                "n": int(fx["nobs"]),
                "formula": fx["formula"],
                "REML": bool(fx["REML"]),
                "max_repeats": max_repeats,
                "budget_s": budget_s,
                "lme4_fixture": {"logLik": fx["logLik"], "fit_time_s": fx.get("fit_time_s")},
            }
        )
    return specs


def load_glmer_fixtures(path: Path = GLMER_FIXTURES) -> dict[str, dict]:
    """The glmer reference models (models.csv of tests/fixtures/lme4_glmer), by name."""
    import csv

    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for row in rows:
        out[row["model"]] = {
            **row,
            "nobs": int(row["nobs"]),
            "nAGQ": int(row["nAGQ"]),
            "logLik": float(row["logLik"]),
            "logLik_saturated": float(row["logLik_saturated"]),
        }
    return out


def glmer_specs(fixtures: dict[str, dict], max_repeats: int, budget_s: float) -> list[dict]:
    specs = []
    for name, fx in fixtures.items():
        spec = {
            "id": name,
            "data": f"dataset:{fx['dataset']}",
            "n": fx["nobs"],
            "formula": fx["formula"],
            "REML": False,
            "max_repeats": max_repeats,
            "budget_s": budget_s,
            "single_fit_s": GLMER_SINGLE_FIT_S,
        }
        spec.update({c: fx[c] for c in GLMER_COLUMNS})
        specs.append(spec)
    return specs


def write_scaling_data(directory: Path, n: int, seed: int = 20240601, levels=SCALING_LEVELS) -> str:
    """Simulate ``y = 10 + 0.5 x + a[g1] + b[g2] + e`` with two crossed factors; returns the prefix.

    Every level of both factors occurs (balanced codes in random order); a ~ N(0, 0.8^2),
    b ~ N(0, 0.5^2), e ~ N(0, 1). Written as raw little-endian binaries that numpy and R both
    read without a parser.
    """
    import numpy as np

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, n])
    l1, l2 = levels
    g1 = rng.permutation(np.arange(n) % l1).astype("<i4") + 1
    g2 = rng.permutation(np.arange(n) % l2).astype("<i4") + 1
    a = rng.normal(0.0, 0.8, l1)
    b = rng.normal(0.0, 0.5, l2)
    x = rng.normal(size=n)
    y = 10.0 + 0.5 * x + a[g1 - 1] + b[g2 - 1] + rng.normal(size=n)
    prefix = directory / f"crossed_{l1}x{l2}_n{n}"
    y.astype("<f8").tofile(f"{prefix}.y")
    x.astype("<f8").tofile(f"{prefix}.x")
    g1.tofile(f"{prefix}.g1")
    g2.tofile(f"{prefix}.g2")
    return str(prefix)


def scaling_spec(prefix: str, n: int, max_repeats: int, budget_s: float) -> dict:
    return {
        "id": f"crossed_n{n}",
        "data": f"sim:{prefix}",
        "n": n,
        "formula": SCALING_FORMULA,
        "REML": True,
        "max_repeats": max_repeats,
        "budget_s": budget_s,
    }


# ==============================================================================================
# Reading the results
# ==============================================================================================


def median_time(rec: dict | None) -> float | None:
    if not rec or rec.get("status") != "ok" or not rec.get("times"):
        return None
    return float(statistics.median(rec["times"]))


def median_cpu(rec: dict | None) -> float | None:
    if not rec or rec.get("status") != "ok" or not rec.get("cpu"):
        return None
    return float(statistics.median(rec["cpu"]))


def fmt_time(t: float | None, rec: dict | None = None) -> str:
    if t is None:
        return status_text(rec)
    if t >= 100:
        return f"{t:.0f}"
    if t >= 10:
        return f"{t:.1f}"
    if t >= 1:
        return f"{t:.2f}"
    return f"{t:.3f}"


def status_text(rec: dict | None) -> str:
    if rec is None:
        return "–"
    st = rec.get("status", "–")
    if st == "timeout":
        return f"timeout (>{rec.get('limit_s', 0):.0f} s)"
    if st == "skipped":
        return rec.get("reason", "skipped")
    return st


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "–"
    return f"{r:.2f}" if r < 10 else f"{r:.0f}"


def fmt_mb(mb: float | None) -> str:
    if mb is None:
        return "–"
    return f"{mb:.0f}" if mb >= 10 else f"{mb:.1f}"


def fmt_dll(d: float | None) -> str:
    if d is None:
        return "–"
    if abs(d) < 5e-7:
        return "< 1e-6"
    return f"{d:+.1e}" if abs(d) < 0.01 else f"{d:+.3f}"


def loglik_diff(rec: dict | None, ref: float | None) -> float | None:
    if not rec or rec.get("status") != "ok" or ref is None or rec.get("loglik") is None:
        return None
    return float(rec["loglik"]) - float(ref)


def lme4_loglik(results: dict, model: str) -> float | None:
    """lme4's logLik from this run, else from the committed fixture."""
    rec = results.get(("lme4", model))
    if rec and rec.get("status") == "ok":
        return rec.get("logLik")
    return results.get(("fixture", model), {}).get("logLik")


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def loglog_slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) on log(n)."""
    pts = [(math.log(n), math.log(y)) for n, y in points if y and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    return sxy / sxx if sxx > 0 else None


def evaluate_targets(report: dict) -> list[dict]:
    """Each target with its verdict ("met", "missed" or "not measured") and the numbers."""
    res = report["index"]
    models = report["reference_models"]
    tools = report["tools"]
    targets = []

    if models and "mlmprimer" in tools:
        bad, worst = [], 0.0
        for m in models:
            d = loglik_diff(res.get(("mlmprimer", m)), lme4_loglik(res, m))
            if d is None:
                bad.append(f"{m} (no fit)")
                continue
            worst = max(worst, abs(d))
            if abs(d) > LOGLIK_TOL:
                bad.append(f"{m} ({d:+.4f})")
        targets.append(
            {
                "target": f"every reference logLik within {LOGLIK_TOL} of lme4's",
                "verdict": "met" if not bad else "missed",
                "detail": f"largest absolute difference {worst:.1e}"
                + (f"; off: {', '.join(bad)}" if bad else ""),
            }
        )

    if models and "mlmprimer" in tools and "lme4" in tools:
        slow, ratios = [], []
        for m in models:
            r = ratio(median_time(res.get(("mlmprimer", m))), median_time(res.get(("lme4", m))))
            if r is None:
                slow.append(f"{m} (not timed)")
                continue
            ratios.append(r)
            if r > TIME_RATIO_MAX:
                slow.append(f"{m} ({r:.1f}x)")
        targets.append(
            {
                "target": f"every fit at most {TIME_RATIO_MAX}x lme4's time",
                "verdict": "met" if not slow else "missed",
                "detail": (
                    f"{len(ratios) - len([s for s in slow if 'x)' in s])} of {len(models)} within; "
                    + (f"slower: {', '.join(slow)}" if slow else "all within")
                ),
            }
        )
        tot = {}
        for tool in ("mlmprimer", "lme4"):
            ts = [median_time(res.get((tool, m))) for m in models]
            tot[tool] = None if any(t is None for t in ts) else sum(ts)
        if tot["mlmprimer"] is not None and tot["lme4"] is not None:
            targets.append(
                {
                    "target": "suite total at most lme4's",
                    "verdict": "met" if tot["mlmprimer"] <= tot["lme4"] else "missed",
                    "detail": f"mlmprimer {tot['mlmprimer']:.2f} s, lme4 {tot['lme4']:.2f} s",
                }
            )
        if "insteval" in models:
            mt = median_time(res.get(("mlmprimer", "insteval")))
            lt = median_time(res.get(("lme4", "insteval")))
            mem = res.get(("mlmprimer", "insteval"), {}).get("peak_mb")
            if mt is not None and lt is not None:
                ok = mt <= lt and (mem is not None and mem < INSTEVAL_MEMORY_MB)
                targets.append(
                    {
                        "target": "InstEval no slower than lme4, peak memory "
                        f"< {INSTEVAL_MEMORY_MB} MB",
                        "verdict": "met" if ok else "missed",
                        "detail": f"mlmprimer {mt:.2f} s / {fmt_mb(mem)} MB; lme4 {lt:.2f} s / "
                        f"{fmt_mb(res.get(('lme4', 'insteval'), {}).get('peak_mb'))} MB",
                    }
                )

    sc = report.get("scaling_n") or []
    if sc and "mlmprimer" in tools:
        big = [n for n in sc if n >= 10_000]
        tpts = [(n, median_time(res.get(("mlmprimer", f"crossed_n{n}")))) for n in big]
        mpts = [(n, res.get(("mlmprimer", f"crossed_n{n}"), {}).get("peak_mb")) for n in big]
        ts, ms = loglog_slope(tpts), loglog_slope(mpts)
        if ts is not None and ms is not None and len([p for p in tpts if p[1]]) >= 2:
            ok = ts <= SCALING_SLOPE_MAX and ms <= SCALING_SLOPE_MAX
            targets.append(
                {
                    "target": "time and memory about linear in n "
                    f"(log-log slope <= {SCALING_SLOPE_MAX}, n >= 10^4)",
                    "verdict": "met" if ok else "missed",
                    "detail": f"time slope {ts:.2f}, memory slope {ms:.2f}",
                }
            )
    return targets


def _reference_lines(report: dict) -> list[str]:
    """The tables of the lmer reference models (time, memory, logLik; CPU time)."""
    res = report["index"]
    tools = report["tools"]
    lines: list[str] = []
    lines.append("### Reference models")
    lines.append("")
    lines.append(
        "Fit time in seconds (median of repeated fits for small models), the ratio to lme4's "
        "time in the same run, peak memory in MB above the interpreter with its libraries, "
        "and logLik minus lme4's."
    )
    lines.append("")
    head = ["model", "n"]
    for t in tools:
        head.append(f"{t} s")
        if t != "lme4" and "lme4" in tools:
            head.append("× lme4")
    mem_tools = [t for t in tools]
    head.append("peak MB (" + " / ".join(mem_tools) + ")")
    for t in tools:
        if t != "lme4":
            head.append(f"ΔlogLik {t}")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    totals = {t: 0.0 for t in tools}
    complete = {t: True for t in tools}
    for m in report["reference_models"]:
        row = [m, str(report["nobs"].get(m, ""))]
        lt = median_time(res.get(("lme4", m)))
        for t in tools:
            rec = res.get((t, m))
            tt = median_time(rec)
            row.append(fmt_time(tt, rec))
            if tt is None:
                complete[t] = False
                if rec and rec.get("status") == "timeout":
                    totals[t] += float(rec.get("limit_s", 0.0))  # a lower bound
            else:
                totals[t] += tt
            if t != "lme4" and "lme4" in tools:
                row.append(fmt_ratio(ratio(tt, lt)))
        row.append(" / ".join(fmt_mb(res.get((t, m), {}).get("peak_mb")) for t in mem_tools))
        ref = lme4_loglik(res, m)
        for t in tools:
            if t != "lme4":
                rec = res.get((t, m))
                row.append(
                    fmt_dll(loglik_diff(rec, ref)) if rec and rec.get("status") == "ok" else "–"
                )
        lines.append("| " + " | ".join(row) + " |")
    row = ["**total**", ""]
    lt_total = totals.get("lme4") if complete.get("lme4") else None
    for t in tools:
        row.append(("" if complete[t] else "≥ ") + fmt_time(totals[t]))
        if t != "lme4" and "lme4" in tools:
            row.append(fmt_ratio(ratio(totals[t], lt_total)) if complete[t] else "–")
    row.append("")
    row += [""] * (len(tools) - 1)
    lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    notes = []
    glmer_models = set(report.get("glmer_models") or ())
    for (tool, model), rec in sorted(res.items(), key=lambda kv: str(kv[0])):
        if model in glmer_models:
            continue
        known = tool in TOOLS or tool in PEER_TOOLS
        if known and rec.get("status") not in ("ok", "n/a", "skipped", "timeout", None):
            msg = rec.get("error", "").strip().splitlines()
            notes.append(
                f"- {tool} / {model}: {status_text(rec)}" + (f": {msg[-1]}" if msg else "")
            )
    if notes:
        lines.append("Errors:")
        lines.append("")
        lines += notes
        lines.append("")

    lines += fixture_agreement(res, report["reference_models"], "lme4's logLik")

    # ---- CPU time
    lines.append(
        "CPU seconds (user + system, all threads; median over the same repeats) and evaluations "
        "of the objective. On a busy machine wall time includes waiting for a core; CPU time "
        "does not."
    )
    lines.append("")
    head = ["model"] + [f"{t} CPU s" for t in tools]
    if "lme4" in tools and "mlmprimer" in tools:
        head.append("mlmprimer CPU × lme4")
    head += [f"{t} evals" for t in tools if t != "statsmodels"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for m in report["reference_models"]:
        row = [m]
        for t in tools:
            rec = res.get((t, m))
            row.append(fmt_time(median_cpu(rec)) if median_cpu(rec) is not None else "–")
        if "lme4" in tools and "mlmprimer" in tools:
            row.append(
                fmt_ratio(
                    ratio(median_cpu(res.get(("mlmprimer", m))), median_cpu(res.get(("lme4", m))))
                )
            )
        for t in tools:
            if t != "statsmodels":
                ev = res.get((t, m), {}).get("nevals")
                row.append("–" if ev is None else str(ev))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")

    return lines


def fixture_agreement(res: dict, models: list[str], what: str) -> list[str]:
    """A sentence on how far lme4's logLik in this run is from the committed fixtures'."""
    diffs = [
        abs(res[("lme4", m)]["logLik"] - res[("fixture", m)]["logLik"])
        for m in models
        if (res.get(("lme4", m)) or {}).get("status") == "ok" and ("fixture", m) in res
    ]
    if not diffs:
        return []
    worst = max(diffs)
    verdict = "exactly." if worst == 0 else f"within {worst:.1e}."
    return [f"{what} in this run equals the committed fixtures' {verdict}", ""]


def best_time(rec: dict | None) -> float | None:
    if not rec or rec.get("status") != "ok" or not rec.get("times"):
        return None
    return float(min(rec["times"]))


def glmer_reference_loglik(report: dict, model: str) -> float | None:
    """lme4's logLik of a glmer model on mlmprimer's scale.

    For nAGQ > 1 lme4 1.1-31 leaves the saturated model's log-likelihood out of logLik
    (tests/fixtures/lme4_glmer/README.md); mlmprimer.glmer keeps it, so it is added back.
    """
    ref = lme4_loglik(report["index"], model)
    info = report.get("glmer_info", {}).get(model, {})
    if ref is None or int(info.get("nAGQ", 1)) <= 1:
        return ref
    return ref + float(info["logLik_saturated"])


def glmer_targets(report: dict) -> list[dict]:
    """The glmer part's targets: lme4's logLik, and no slower than lme4 (best of k)."""
    res = report["index"]
    models = report.get("glmer_models") or []
    tools = report["tools"]
    if not models or "mlmprimer" not in tools:
        return []
    bad, worst = [], 0.0
    for m in models:
        rec = res.get(("mlmprimer", m))
        d = loglik_diff(rec, glmer_reference_loglik(report, m))
        if d is None:
            bad.append(f"{m} ({status_text(rec)})")
            continue
        worst = max(worst, abs(d))
        if abs(d) > LOGLIK_TOL:
            bad.append(f"{m} ({d:+.4f})")
    targets = [
        {
            "target": f"every glmer logLik within {LOGLIK_TOL} of lme4's",
            "verdict": "met" if not bad else "missed",
            "detail": f"largest absolute difference {worst:.1e}"
            + (f"; off: {', '.join(bad)}" if bad else ""),
        }
    ]
    if "lme4" in tools:
        slow, timed = [], 0
        for m in models:
            r = ratio(best_time(res.get(("mlmprimer", m))), best_time(res.get(("lme4", m))))
            if r is None:
                slow.append(f"{m} (not timed)")
                continue
            timed += 1
            if r > GLMER_TIME_RATIO_MAX:
                slow.append(f"{m} ({r:.2f}x)")
        within = timed - len([s for s in slow if "x)" in s])
        targets.append(
            {
                "target": "every glmer fit no slower than lme4's (best of k)",
                "verdict": "met" if not slow else "missed",
                "detail": f"{within} of {len(models)} within; "
                + (f"slower or not timed: {', '.join(slow)}" if slow else "all within"),
            }
        )
    return targets


def glmer_lines(report: dict) -> list[str]:
    """The table of the glmer reference models (best of k, ratio to lme4, logLik)."""
    res = report["index"]
    tools = [t for t in report["tools"] if t in GLMER_TOOLS]
    info = report.get("glmer_info", {})
    lines = [
        GLMER_BEGIN,
        "### glmer reference models",
        "",
        "Fit time in seconds, the best of up to k fits in the same process (k = "
        f"{report.get('glmer_repeats', '?')}, fewer when a fit takes longer than "
        f"{GLMER_SINGLE_FIT_S:.0f} s or the fits of a model pass "
        f"{report.get('glmer_budget_s', '?')} s), the ratio to lme4's best time in the same "
        "run, and logLik minus lme4's (for nAGQ > 1 with the saturated log-likelihood, which "
        "lme4 1.1-31 leaves out, added back). The models are the fixtures of "
        "`scripts/lme4_reference_glmer.R`.",
        "",
    ]
    head = ["model", "n", "family (link)", "nAGQ"] + [f"{t} s" for t in tools]
    if "lme4" in tools and "mlmprimer" in tools:
        head.append("× lme4")
    head += ["fits (" + " / ".join(tools) + ")"]
    if "mlmprimer" in tools:
        head.append("ΔlogLik mlmprimer")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---", "---:", "---", "---:"] + ["---:"] * (len(head) - 4)) + "|")
    totals = {t: 0.0 for t in tools}
    complete = {t: True for t in tools}
    for m in report["glmer_models"]:
        fx = info.get(m, {})
        row = [m, str(fx.get("nobs", "")), f"{fx.get('family', '?')} ({fx.get('link', '?')})"]
        row.append(str(fx.get("nAGQ", "")))
        for t in tools:
            rec = res.get((t, m))
            bt = best_time(rec)
            row.append(fmt_time(bt, rec))
            if bt is None:
                complete[t] = False
            else:
                totals[t] += bt
        if "lme4" in tools and "mlmprimer" in tools:
            r = ratio(best_time(res.get(("mlmprimer", m))), best_time(res.get(("lme4", m))))
            row.append(fmt_ratio(r))
        row.append(" / ".join(str(len((res.get((t, m)) or {}).get("times") or [])) for t in tools))
        if "mlmprimer" in tools:
            rec = res.get(("mlmprimer", m))
            row.append(fmt_dll(loglik_diff(rec, glmer_reference_loglik(report, m))))
        lines.append("| " + " | ".join(row) + " |")
    row = ["**total**", "", "", ""]
    for t in tools:
        if not any(best_time(res.get((t, m))) is not None for m in report["glmer_models"]):
            row.append("–")
            continue
        row.append(("" if complete[t] else "≥ ") + fmt_time(totals[t]))
    if "lme4" in tools and "mlmprimer" in tools:
        both = complete["lme4"] and complete["mlmprimer"]
        row.append(fmt_ratio(ratio(totals["mlmprimer"], totals["lme4"])) if both else "–")
    row.append("")
    if "mlmprimer" in tools:
        row.append("")
    lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    errors = []
    for m in report["glmer_models"]:
        for t in tools:
            rec = res.get((t, m)) or {}
            if rec.get("status") not in ("ok", None):
                msg = rec.get("error", "").strip().splitlines()
                errors.append(f"- {t} / {m}: {status_text(rec)}" + (f": {msg[-1]}" if msg else ""))
    if errors:
        lines += ["Errors:", "", *errors, ""]
    lines += fixture_agreement(res, report["glmer_models"], "lme4's glmer logLik")
    targets = glmer_targets(report)
    if targets:
        lines += ["| target | verdict | numbers |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['verdict']} | {t['detail']} |" for t in targets]
        lines.append("")
    lines.append(GLMER_END)
    lines.append("")
    return lines


def markdown_report(report: dict) -> str:
    res = report["index"]
    tools = report["tools"]
    meta = report["meta"]
    lines = []
    lines.append(
        f"Run {meta['date']} on {meta['machine']['summary']}; command `{meta['command']}`."
    )
    lines.append("")
    blas = meta.get("openblas", {})
    if blas:
        lines.append(f"OpenBLAS (numpy): {blas.get('numpy', '?')}.")
        lines.append("")
    lines.append(
        f"Load average (1 min) at start {meta['load_start'][0]:.2f}, "
        f"at end {meta['load_end'][0]:.2f}; "
        f"total run time {meta['elapsed_s']:.0f} s."
    )
    lines.append("")

    # ---- reference models
    if report["reference_models"]:
        lines += _reference_lines(report)
        if any(t in PEER_TOOLS for t in tools):
            lines += _peers().peer_lines(report)
    if report.get("glmer_models"):
        lines += glmer_lines(report)

    # ---- scaling
    sc = report.get("scaling_n") or []
    if sc:
        lines.append(
            f"### Scaling: `{SCALING_FORMULA}`, "
            f"{SCALING_LEVELS[0]} x {SCALING_LEVELS[1]} crossed levels"
        )
        lines.append("")
        head = ["n"] + [f"{t} s" for t in tools] + [f"{t} MB" for t in tools]
        head += [f"ΔlogLik {t}" for t in tools if t != "lme4"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join(["---:"] * len(head)) + "|")
        for n in sc:
            mid = f"crossed_n{n}"
            row = [f"{n:,}"]
            for t in tools:
                rec = res.get((t, mid))
                row.append(fmt_time(median_time(rec), rec))
            for t in tools:
                row.append(fmt_mb(res.get((t, mid), {}).get("peak_mb")))
            ref = res.get(("lme4", mid), {}).get("logLik")
            for t in tools:
                if t != "lme4":
                    row.append(fmt_dll(loglik_diff(res.get((t, mid)), ref)))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        slopes = []
        for t in tools:
            big = [n for n in sc if n >= 10_000]
            ts = loglog_slope([(n, median_time(res.get((t, f"crossed_n{n}")))) for n in big])
            ms = loglog_slope([(n, res.get((t, f"crossed_n{n}"), {}).get("peak_mb")) for n in big])
            if ts is not None or ms is not None:
                slopes.append(
                    f"{t}: time {'–' if ts is None else f'{ts:.2f}'}, "
                    f"memory {'–' if ms is None else f'{ms:.2f}'}"
                )
        if slopes:
            lines.append("Log-log slope over n >= 10^4 (1 = linear): " + "; ".join(slopes) + ".")
            lines.append("")

    # ---- targets
    targets = report.get("targets") or []
    if targets:
        lines.append("### Targets")
        lines.append("")
        lines.append("| target | verdict | numbers |")
        lines.append("|---|---|---|")
        for t in targets:
            lines.append(f"| {t['target']} | {t['verdict']} | {t['detail']} |")
        lines.append("")
    return "\n".join(lines)


# ==============================================================================================
# Main
# ==============================================================================================


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = int(line.split()[1]) / 2**20
    except OSError:
        pass
    cores = os.cpu_count()
    summary = f"{cpu}, {cores} cores" + (f", {mem_gb:.0f} GiB" if mem_gb else "")
    summary += f", {platform.system()} {platform.release()}"
    return {"cpu": cpu, "cores": cores, "memory_gib": mem_gb, "summary": summary}


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "mlmprimer"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        return rev + (" + uncommitted changes in mlmprimer/" if dirty else "")
    except OSError:
        return "?"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time mlmprimer, statsmodels and lme4 on the reference models (one run).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small reference models only (no InstEval), one process per tool "
        "(no per-fit memory), 3 repeats, scaling at n = 10^3 and 10^4 only",
    )
    p.add_argument(
        "--models",
        help="comma-separated reference models (fixture names; with --glmer, glmer fixtures)",
    )
    p.add_argument(
        "--glmer",
        action="store_true",
        help="only the glmer reference models (lme4 and mlmprimer); rewrites only the glmer "
        "section of benchmarks/RESULTS.md after a run of all of them",
    )
    p.add_argument(
        "--skip-glmer", action="store_true", help="leave the glmer models out of a complete run"
    )
    p.add_argument(
        "--glmer-budget",
        type=float,
        default=20.0,
        help="stop repeating a glmer fit after this many seconds (default 20)",
    )
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated, from {TOOLS}")
    p.add_argument("--skip-scaling", action="store_true", help="no scaling table")
    p.add_argument("--scaling-n", help="comma-separated sizes (default 1000,10000,100000,1000000)")
    p.add_argument(
        "--statsmodels-max-n",
        type=int,
        default=10_000,
        help="largest n of the scaling table fitted with statsmodels (default 10000)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds before a fit's process is killed (default 120)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="fits of a small model whose median is reported (default 5)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=3.0,
        help="stop repeating a fit after this many seconds (default 3)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OPENBLAS_NUM_THREADS (and OMP_/MKL_) of the Python workers (default 1, like lme4; "
        "0 leaves the libraries' default, one thread per core)",
    )
    p.add_argument(
        "--memory-limit-mb",
        type=float,
        default=16_384,
        help="address-space limit of each worker (default 16384; 0 for none)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results directory")
    p.add_argument(
        "--no-summary",
        action="store_true",
        help="do not rewrite benchmarks/RESULTS.md even after a complete run",
    )
    p.add_argument(
        "--glmer-report",
        type=Path,
        metavar="JSON",
        help="fit nothing: print the glmer tables of a saved --glmer run (results/*.json) with "
        "this version's report code, and rewrite the glmer section of RESULTS.md from it",
    )
    p.add_argument(
        "--peers",
        action="store_true",
        help="also time mixedlm-rs (one grouping factor only), in benchmarks/.venv-peers, made "
        "on demand (benchmarks/peers.py)",
    )
    p.add_argument(
        "--scale",
        action="store_true",
        help="the scale series (benchmarks/scale.py): random intercept and slope at 10^5 to "
        "10^7 rows, crossed 5000 x 500 and 5000 x 5000 at 10^6, every tool and mixedlm-rs; "
        "writes benchmarks/SCALE.md",
    )
    p.add_argument(
        "--limit",
        type=float,
        default=120.0,
        help="--scale: seconds a tool may spend on one fit; a fit expected to take longer is "
        "skipped, one running longer is killed (default 120)",
    )
    p.add_argument(
        "--sizes", help="--scale: comma-separated row counts (default 1e5,1e6,1e7; crossed: 1e6)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="--scale: keep the fits already in results/scale.json, fit only the missing ones",
    )
    p.add_argument(
        "--plot",
        nargs="?",
        const="",
        metavar="JSON",
        help="write benchmarks/scaling.png from the --scale results (default results/scale.json)",
    )
    p.add_argument(
        "--scale-report",
        nargs="?",
        const="",
        metavar="JSON",
        help="fit nothing: rewrite benchmarks/SCALE.md from the --scale results (default "
        "results/scale.json) with this version's report code",
    )
    p.add_argument(
        "--parquet-rows",
        type=float,
        help="--scale: also fit the random-intercept model from a Parquet file of this many rows "
        "written with DuckDB, if mlmprimer.lmer reads Parquet (skipped otherwise)",
    )
    p.add_argument("--worker", nargs=2, metavar=("SPEC", "RESULT"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)
    if args.scale or args.plot is not None or args.parquet_rows or args.scale_report is not None:
        sys.path.insert(0, str(HERE))
        import scale

        return scale.main(args, argv)
    if args.glmer_report:
        report = load_report(args.glmer_report)
        md = "\n".join(glmer_lines(report))
        print(md)
        if report["meta"].get("argv") and "--glmer" in report["meta"]["argv"]:
            if not args.no_summary:
                write_glmer_summary(report, md)
                log(f"wrote the glmer section of {SUMMARY.relative_to(REPO)}")
        return 0

    t_start = time.monotonic()
    load_start = os.getloadavg()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        raise SystemExit(f"unknown tools {sorted(unknown)}; known: {TOOLS}")
    tools = [t for t in TOOLS if t in tools]
    if args.peers and not args.glmer:
        _peers().ensure_peer_venv()
        tools += list(PEER_TOOLS)
    notes = []
    if "lme4" in tools:
        why = r_available()
        if why:
            notes.append(f"lme4 not timed: {why}")
            log(f"note: {why}: lme4 is left out")
            tools.remove("lme4")

    glmer_fx = load_glmer_fixtures()
    if args.glmer:
        tools = [t for t in tools if t in GLMER_TOOLS]
        if args.models:
            wanted = [m.strip() for m in args.models.split(",") if m.strip()]
            missing = [m for m in wanted if m not in glmer_fx]
            if missing:
                raise SystemExit(f"unknown glmer models {missing}; known: {list(glmer_fx)}")
            glmer_fx = {m: fx for m, fx in glmer_fx.items() if m in wanted}
    fixtures = {} if args.glmer else load_fixtures()
    overlap = set(fixtures) & set(glmer_fx)
    if overlap:
        raise SystemExit(f"lmer and glmer fixtures share the names {sorted(overlap)}")
    if args.models and not args.glmer:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        missing = [m for m in wanted if m not in fixtures]
        if missing:
            raise SystemExit(f"unknown models {missing}; known: {list(fixtures)}")
        fixtures = {m: fixtures[m] for m in fixtures if m in wanted}
    elif args.quick:
        fixtures = {m: fx for m, fx in fixtures.items() if m != "insteval"}
    repeats = min(args.repeats, 3) if args.quick else args.repeats
    budget = min(args.budget, 1.0) if args.quick else args.budget
    if args.skip_scaling or args.glmer:
        scaling_n: list[int] = []
    elif args.scaling_n:
        scaling_n = [int(float(v)) for v in args.scaling_n.split(",") if v.strip()]
    else:
        scaling_n = [1_000, 10_000] if args.quick else list(SCALING_N)
    mem_limit = args.memory_limit_mb or None

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = args.out
    work = out_dir / "work" / stamp
    work.mkdir(parents=True, exist_ok=True)

    env_blas = {
        v: os.environ.get(v, "unset")
        for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS")
    }
    if os.environ.get("OPENBLAS_CORETYPE"):
        log(
            f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set, so numpy/scipy run "
            "that kernel, not the one OpenBLAS would pick for this CPU; for headline numbers run\n"
            "  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE make benchmark"
        )

    # ---- baselines
    baselines: dict[str, float] = {}
    versions: dict[str, dict] = {}
    for tool in tools:
        mb, info = baseline(tool, work, args.threads, mem_limit)
        baselines[tool] = mb
        versions[tool] = info
        log(f"baseline {tool:12s} {mb:7.1f} MB")

    results: dict = {}
    for name, fx in fixtures.items():
        results[("fixture", name)] = {"logLik": fx["logLik"], "fit_time_s": fx.get("fit_time_s")}

    ref_specs = reference_specs(fixtures, repeats, budget)
    per_fit = not args.quick

    def record(tool: str, rec: dict, proc: dict | None) -> None:
        if proc is not None and per_fit and rec.get("status") == "ok":
            rec["maxrss_mb"] = proc["maxrss_mb"]
            rec["peak_mb"] = max(0.0, proc["maxrss_mb"] - baselines[tool])
            rec["process_wall_s"] = proc["wall_s"]
        results[(tool, rec["id"])] = rec
        t = median_time(rec)
        extra = f"{t:8.3f} s" if t is not None else status_text(rec)
        if rec.get("peak_mb") is not None:
            extra += f"  {rec['peak_mb']:7.1f} MB"
        if rec.get("loglik") is not None or rec.get("logLik") is not None:
            extra += f"  logLik {rec.get('loglik', rec.get('logLik')):.4f}"
        log(f"{rec['id']:26s} {tool:12s} {extra}")

    def spec_for(tool: str, spec: dict) -> dict:
        """``spec`` as ``tool`` gets it: a peer's spelling, or its "n/a" record."""
        if tool not in PEER_TOOLS:
            return spec
        return _peers().peer_spec(spec, work)

    # ---- reference models
    if per_fit:
        for spec in ref_specs:
            for tool in tools:
                tspec = spec_for(tool, spec)
                if tspec.get("status") == "n/a":
                    record(tool, tspec, None)
                    continue
                recs, proc = run_jobs(tool, [tspec], work, args.timeout, args.threads, mem_limit)
                record(tool, recs[0], proc)
    else:
        for tool in tools:
            batch = []
            for spec in ref_specs:
                tspec = spec_for(tool, spec)
                if tspec.get("status") == "n/a":
                    record(tool, tspec, None)
                else:
                    batch.append(tspec)
            if not batch:
                continue
            recs, proc = run_jobs(
                tool, batch, work, args.timeout * len(batch), args.threads, mem_limit
            )
            for rec in recs:
                record(tool, rec, None)

    # ---- scaling
    sm_max_n = args.statsmodels_max_n
    if args.quick and "--statsmodels-max-n" not in " ".join(argv):
        sm_max_n = 0  # statsmodels' crossed fits take tens of seconds even at n = 10^3
    if scaling_n:
        data_dir = out_dir / "data"
        prefixes = {n: write_scaling_data(data_dir, n) for n in scaling_n}
        specs = [scaling_spec(prefixes[n], n, repeats, budget) for n in scaling_n]
        for tool in tools:
            for spec in specs:
                if tool in PEER_TOOLS:  # mixedlm-rs fits one grouping factor: n/a here
                    tspec = spec_for(tool, spec)
                    if tspec.get("status") == "n/a":
                        results[(tool, spec["id"])] = tspec
            if tool == "statsmodels":
                for spec in specs:
                    if spec["n"] > sm_max_n:
                        results[(tool, spec["id"])] = {
                            "id": spec["id"],
                            "status": "skipped",
                            "reason": f"not run (n > {sm_max_n:,})",
                        }
        if not per_fit:
            for tool in tools:
                batch = [s for s in specs if (tool, s["id"]) not in results]
                if batch:
                    recs, _ = run_jobs(
                        tool,
                        [spec_for(tool, s) for s in batch],
                        work,
                        args.timeout * len(batch),
                        args.threads,
                        mem_limit,
                    )
                    for rec in recs:
                        record(tool, rec, None)
        else:
            last: dict[str, tuple[int, float]] = {}
            for spec in specs:
                n = spec["n"]
                for tool in tools:
                    if (tool, spec["id"]) in results:
                        continue
                    if tool in last:
                        n0, t0 = last[tool]
                        predicted = t0 * n / n0
                        if predicted > args.timeout:
                            results[(tool, spec["id"])] = {
                                "id": spec["id"],
                                "status": "skipped",
                                "reason": f"not run (~{predicted:.0f} s expected)",
                            }
                            continue
                    recs, proc = run_jobs(
                        tool, [spec_for(tool, spec)], work, args.timeout, args.threads, mem_limit
                    )
                    record(tool, recs[0], proc)
                    t = median_time(recs[0])
                    # a failed or killed fit: do not try larger n
                    last[tool] = (n, 10 * args.timeout) if t is None else (n, t)

    # ---- glmer reference models: one process per (model, tool), best of k
    complete_lmer = (
        not (args.quick or args.models or args.skip_scaling or args.scaling_n)
        and set(tools) - set(PEER_TOOLS) == set(TOOLS)
        and args.tools == ",".join(TOOLS)
    )
    run_glmer = args.glmer or (complete_lmer and not args.skip_glmer)
    if not run_glmer:
        glmer_fx = {}
    for name, fx in glmer_fx.items():
        results[("fixture", name)] = {"logLik": fx["logLik"]}
    glmer_budget = min(args.glmer_budget, 1.0) if args.quick else args.glmer_budget
    for spec in glmer_specs(glmer_fx, repeats, glmer_budget):
        for tool in tools:
            if tool not in GLMER_TOOLS:
                continue
            recs, proc = run_jobs(tool, [spec], work, args.timeout, args.threads, mem_limit)
            record(tool, recs[0], proc)

    # ---- report
    load_end = os.getloadavg()
    elapsed = time.monotonic() - t_start
    py_info = versions.get("mlmprimer") or versions.get("statsmodels") or {}
    cmd = shlex.join([os.path.relpath(sys.executable, REPO), "benchmarks/run.py", *argv])
    unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v not in os.environ]
    if unset:
        cmd = "env " + " ".join(f"-u {v}" for v in unset) + " " + cmd
    meta = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": cmd,
        "argv": argv,
        "machine": machine_info(),
        "environment": env_blas,
        "openblas": py_info.get("openblas", {}),
        "versions": {
            tool: {k: v for k, v in info.items() if k not in ("id", "status", "openblas")}
            for tool, info in versions.items()
        },
        "mlmprimer_revision": git_revision(),
        "baseline_mb": baselines,
        "load_start": list(load_start),
        "load_end": list(load_end),
        "elapsed_s": elapsed,
        "timeout_s": args.timeout,
        "worker_blas_threads": args.threads or "library default",
        "notes": notes,
        "per_fit_processes": per_fit,
    }
    report = {
        "meta": meta,
        "tools": tools,
        "reference_models": list(fixtures),
        "nobs": {m: int(fx["nobs"]) for m, fx in fixtures.items()},
        "scaling_n": scaling_n,
        "glmer_models": list(glmer_fx),
        "glmer_info": {
            m: {
                k: fx[k]
                for k in (
                    "nobs",
                    "family",
                    "link",
                    "nAGQ",
                    "dataset",
                    "formula",
                    "logLik_saturated",
                )
            }
            for m, fx in glmer_fx.items()
        },
        "glmer_repeats": repeats,
        "glmer_budget_s": glmer_budget,
        "index": results,
    }
    report["targets"] = evaluate_targets(report)
    report["glmer_targets"] = glmer_targets(report)
    md = markdown_report(report)
    if not per_fit:
        md += "\n(`--quick`: one process per tool, so no per-fit peak memory.)\n"

    serial = {
        **{k: v for k, v in report.items() if k != "index"},
        "results": [{"tool": k[0], "model": k[1], **v} for k, v in results.items()],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"benchmark-{stamp}.json").write_text(json.dumps(serial, indent=1), encoding="utf-8")
    (out_dir / f"benchmark-{stamp}.md").write_text(md + "\n", encoding="utf-8")
    shutil.copyfile(out_dir / f"benchmark-{stamp}.json", out_dir / "latest.json")
    shutil.copyfile(out_dir / f"benchmark-{stamp}.md", out_dir / "latest.md")
    shutil.rmtree(work, ignore_errors=True)
    print(md)
    to_summary = not args.no_summary and out_dir.resolve() == DEFAULT_OUT.resolve()
    if complete_lmer and not args.glmer and to_summary:
        write_summary(report, md)
        log(f"wrote {SUMMARY.relative_to(REPO)}")
    if any(t in PEER_TOOLS for t in tools) and fixtures and to_summary and not args.quick:
        _peers().write_peer_block(report, HERE / "SCALE.md")
        log("wrote the course models against mixedlm-rs into benchmarks/SCALE.md")
    glmer_complete = not (args.quick or args.models) and set(tools) == set(GLMER_TOOLS)
    if args.glmer and glmer_complete and to_summary:
        write_glmer_summary(report, md)
        log(f"wrote the glmer section of {SUMMARY.relative_to(REPO)}")
    log(f"results in {out_dir}/benchmark-{stamp}.{{json,md}} ({elapsed:.0f} s)")
    return 0


def write_summary(report: dict, md: str) -> None:
    meta = report["meta"]
    v = meta["versions"]
    py = v.get("mlmprimer", {})
    r = v.get("lme4", {})
    sm = v.get("statsmodels", {})
    text = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/run.py` after a complete run (see `benchmarks/README.md` for",
        "what is measured and the targets). Re-run it to update this file; the full JSON and",
        "Markdown of every run are in `benchmarks/results/` (not committed).",
        "",
        f"- **Date:** {meta['date']}",
        f"- **Command:** `{meta['command']}`",
        f"- **Machine:** {meta['machine']['summary']}",
        f"- **Python side:** Python {py.get('python', '?')}, numpy {py.get('numpy', '?')}, "
        f"scipy {py.get('scipy', '?')}, pandas {py.get('pandas', '?')}, statsmodels "
        f"{sm.get('statsmodels', '?')}, nlopt {py.get('nlopt', '?')}; mlmprimer at "
        f"{meta['mlmprimer_revision']}",
        f"- **OpenBLAS:** {meta.get('openblas', {}).get('numpy', '?')} "
        f"(OPENBLAS_CORETYPE {meta['environment']['OPENBLAS_CORETYPE']}, OPENBLAS_L2_SIZE "
        f"{meta['environment']['OPENBLAS_L2_SIZE']})",
        f"- **R side:** R {r.get('R', '?')}, lme4 {r.get('lme4', '?')}, "
        f"Matrix {r.get('Matrix', '?')}, "
        f"BLAS {r.get('blas', '?')}",
        f"- **Per-fit time limit:** {meta['timeout_s']:.0f} s; BLAS threads of the Python "
        f"workers: {meta.get('worker_blas_threads', '?')}",
        "",
        md,
    ]
    SUMMARY.write_text("\n".join(text) + "\n", encoding="utf-8")


def load_report(path: Path) -> dict:
    """A run's report from its JSON (benchmarks/results/benchmark-*.json), index rebuilt.

    Fields that the run's version did not record for the glmer models are taken from the
    committed fixtures (they describe the models, not the measurements).
    """
    serial = json.loads(Path(path).read_text(encoding="utf-8"))
    report = {k: v for k, v in serial.items() if k != "results"}
    report["index"] = {(r["tool"], r["model"]): r for r in serial["results"]}
    fixtures = load_glmer_fixtures()
    for m, info in (report.get("glmer_info") or {}).items():
        for k, v in fixtures.get(m, {}).items():
            info.setdefault(k, v)
    return report


def glmer_section(md: str) -> str:
    """The glmer block of a report (markers included), "" when there is none."""
    start, end = md.find(GLMER_BEGIN), md.find(GLMER_END)
    if start < 0 or end < start:
        return ""
    return md[start : end + len(GLMER_END)]


def write_glmer_summary(report: dict, md: str, path: Path = SUMMARY) -> None:
    """Put this glmer-only run's block into RESULTS.md, in place of the last one (or at the end).

    The block starts with the run's own date, command, machine and load, since the rest of the
    file describes another run.
    """
    meta = report["meta"]
    r = meta["versions"].get("lme4", {})
    block = glmer_section(md)
    head = (
        f"{GLMER_BEGIN}\n"
        f"## glmer: a separate run (`--glmer`)\n\n"
        f"- **Date:** {meta['date']}\n"
        f"- **Command:** `{meta['command']}`\n"
        f"- **Machine:** {meta['machine']['summary']}; load average (1 min) at start "
        f"{meta['load_start'][0]:.2f}, at end {meta['load_end'][0]:.2f}\n"
        f"- **mlmprimer at** {meta['mlmprimer_revision']}; R {r.get('R', '?')}, "
        f"lme4 {r.get('lme4', '?')}\n"
    )
    cores = meta["machine"].get("cores") or 0
    if cores and max(meta["load_start"][0], meta["load_end"][0]) > cores:
        head += (
            f"- **Busy machine:** the load average exceeded its {cores} cores during the run, so "
            "other jobs took CPU time from both tools; the ratios are rough.\n"
        )
    block = head + block[len(GLMER_BEGIN) :]
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    old = glmer_section(text)
    if old:
        text = text.replace(old, block)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
