"""Peers of mlmprimer timed by benchmarks/run.py with ``--peers``: mixedlm-rs.

mixedlm-rs (PyPI ``mixedlm-rs``, a Rust linear mixed model with statsmodels' MixedLM interface)
fits models with ONE grouping factor: ``mixedlm(fixed, data, groups=..., re_formula=...)``,
whose REML or ML ``llf`` is on lme4's scale. It lives in its own virtualenv,
``benchmarks/.venv-peers`` (not committed), which :func:`ensure_peer_venv` makes on demand with
that venv's own pip, at the pinned version and the project's constraints for its dependencies
(numpy, pandas, scipy, patsy), so that it never touches the project's environment.

Its workers are run.py's own (``run.py --worker``) started with the peer venv's interpreter:
they import only numpy, pandas and mixedlm_rs, so the data reach them as raw binaries
(:func:`write_table`, read by ``run.load_table``) and the model in MixedLM's spelling, generated
here (in the parent, which has mlmprimer) by ``mlmprimer.backends.statsmodels_spec``, the same
spelling statsmodels is given. A model that needs crossed or nested factors or variance
components is "n/a".

This module imports only the standard library at the top (numpy, pandas and mlmprimer where
they are used).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402

PEER = "mixedlm-rs"
PEER_VERSION = "0.2.0"
PEER_VENV = HERE / ".venv-peers"
CONSTRAINTS = bench.REPO / "constraints.txt"


def peer_python(venv: Path = PEER_VENV) -> Path:
    """The interpreter of the peer virtualenv ``venv``."""
    return venv / "bin" / "python"


def installed_version(venv: Path = PEER_VENV) -> str | None:
    """The mixedlm-rs version importable in ``venv`` (None: no venv, or not installed)."""
    python = peer_python(venv)
    if not python.exists():
        return None
    proc = subprocess.run(
        [str(python), "-c", "import mixedlm_rs; print(mixedlm_rs.__version__)"],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_peer_venv(venv: Path = PEER_VENV, version: str = PEER_VERSION) -> Path:
    """Make ``venv`` with mixedlm-rs ``version`` unless it is there; returns its interpreter.

    The venv is created from this interpreter's base Python and filled by its own pip, with the
    project's constraints.txt for the dependencies. Raises RuntimeError, with pip's output,
    when the install fails.
    """
    if installed_version(venv) == version:
        return peer_python(venv)
    if not peer_python(venv).exists():
        bench.log(f"creating {venv} for {PEER} {version}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cmd = [str(peer_python(venv)), "-m", "pip", "install", "--quiet"]
    if CONSTRAINTS.exists():
        cmd += ["-c", str(CONSTRAINTS)]
    cmd.append(f"mixedlm-rs=={version}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    got = installed_version(venv)
    if proc.returncode != 0 or got != version:
        raise RuntimeError(
            f"could not install mixedlm-rs=={version} into {venv} (got {got}):\n"
            + (proc.stdout + proc.stderr)[-2000:]
        )
    return peer_python(venv)


# ----------------------------------------------------------------------------------------------
# Data: raw binaries every tool reads without a parser
# ----------------------------------------------------------------------------------------------


def write_table(columns: dict, prefix: str | Path, levels: dict | None = None) -> str:
    """Write ``columns`` (name -> 1-D array) as raw little-endian binaries under ``prefix``.

    Float arrays are written as float64 (``f8``); integer arrays are factor codes 1..K, written
    as int32 (``i4``), with the labels of ``levels[name]`` (if given) one a line in
    ``PREFIX.NAME.levels``. ``PREFIX.cols`` lists the columns in order. Returns the prefix, for
    ``run.load_table`` and bench_lme4.R's ``table:`` data.
    """
    import numpy as np

    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    lines = []
    n = None
    for name, values in columns.items():
        values = np.asarray(values)
        if values.ndim != 1 or (n is not None and values.size != n):
            raise ValueError(f"column {name!r} must be 1-D with {n} values, not {values.shape}")
        n = values.size
        if np.issubdtype(values.dtype, np.integer):
            if values.size and values.min() < 1:
                raise ValueError(f"factor codes of {name!r} must start at 1")
            values.astype("<i4").tofile(f"{prefix}.{name}")
            lines.append(f"{name}\ti4")
            if levels and name in levels:
                labels = [str(v) for v in levels[name]]
                if values.size and values.max() > len(labels):
                    raise ValueError(f"{name!r} has codes above its {len(labels)} levels")
                Path(f"{prefix}.{name}.levels").write_text(
                    "".join(f"{v}\n" for v in labels), encoding="utf-8"
                )
        else:
            values.astype("<f8").tofile(f"{prefix}.{name}")
            lines.append(f"{name}\tf8")
    Path(f"{prefix}.cols").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return prefix


def frame_to_table(frame, prefix: str | Path) -> str:
    """Write a DataFrame with :func:`write_table`: categoricals (and strings) as factors."""
    import pandas as pd

    columns, levels = {}, {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(col):
            cat = pd.Categorical(col)
            if (cat.codes < 0).any():
                raise ValueError(f"column {name!r} has missing values")
            columns[name] = cat.codes.astype("int32") + 1
            levels[name] = list(cat.categories)
        else:
            columns[name] = col.to_numpy(dtype=float)
    return write_table(columns, prefix, levels)


# ----------------------------------------------------------------------------------------------
# The peer's spelling of a model
# ----------------------------------------------------------------------------------------------


def one_factor_spelling(sm: dict) -> str:
    """Why mixedlm-rs, which fits one grouping factor, cannot fit spelling ``sm`` ("" if it can)."""
    if sm.get("groups") is None:
        return "n/a (crossed factors)"
    if sm.get("vc_formula"):
        return "n/a (variance components: nested factors or uncorrelated terms)"
    return ""


def spelling_frame(data, rows: int = 240, levels: int = 6):
    """A small frame with ``data``'s columns and types, on which a model's spelling is built.

    Numeric columns get seeded normal values, each factor its first ``levels`` levels in
    turn: enough rows for any model of a few terms to be identifiable, whatever the size of
    ``data``.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    out = {}
    for name in data.columns:
        col = data[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = list(col.cat.categories[:levels])
            out[name] = pd.Categorical([cats[i % len(cats)] for i in range(rows)], categories=cats)
        elif pd.api.types.is_numeric_dtype(col):
            out[name] = rng.normal(size=rows)
        else:
            vals = list(pd.unique(col))[:levels]
            out[name] = [vals[i % len(vals)] for i in range(rows)]
    return pd.DataFrame(out)


def peer_spec(spec: dict, workdir: Path) -> dict:
    """``spec`` for a mixedlm-rs worker, or an "n/a" record if mixedlm-rs cannot fit it.

    A course data set (``dataset:``) is written as a table under ``workdir``; simulated data
    (``sim:``, ``table:``) are read by the worker as they are. The MixedLM spelling is generated
    on a small frame of the same columns (:func:`spelling_frame`): it depends on the columns'
    types, not on their values.
    """
    kind, _, arg = spec["data"].partition(":")
    n = int(spec["n"])
    if kind == "dataset":
        from mlmprimer import datasets

        data = datasets.load(arg)
        out = {**spec, "data": "table:" + frame_to_table(data, Path(workdir) / f"peer_{arg}")}
    elif kind == "sim":
        data = bench.load_sim(arg, n)
        out = dict(spec)
    elif kind == "table":
        data = bench.load_table(arg, n)
        out = dict(spec)
    else:
        return {"id": spec["id"], "status": "n/a", "reason": f"n/a (data {kind!r})"}
    try:
        sm = bench.statsmodels_kwargs(spec["formula"], spelling_frame(data))
    except NotImplementedError as err:
        return {"id": spec["id"], "status": "n/a", "reason": f"n/a ({err})"}
    why = one_factor_spelling(sm)
    if why:
        return {"id": spec["id"], "status": "n/a", "reason": why}
    sm.pop("use_sparse", None)
    out["sm"] = {k: sm[k] for k in ("fixed", "groups", "re_formula") if k in sm}
    return out


# ----------------------------------------------------------------------------------------------
# The course models against the peer
# ----------------------------------------------------------------------------------------------


def peer_lines(report: dict) -> list[str]:
    """A table of the reference models mixedlm-rs fits: its time against mlmprimer's and lme4's."""
    res = report["index"]
    tools = report["tools"]
    if PEER not in tools:
        return []
    lines = [
        f"### The one-factor reference models against {PEER}",
        "",
        f"The models {PEER} can fit (one grouping factor); fit time in seconds (median), the "
        "ratios of the same run, and logLik minus lme4's (or, without lme4, minus mlmprimer's).",
        "",
    ]
    head = ["model", "n", f"{PEER} s", "mlmprimer s", f"mlmprimer × {PEER}"]
    if "lme4" in tools:
        head += ["lme4 s", f"{PEER} × lme4"]
    head += [f"peak MB {PEER}", f"ΔlogLik {PEER}"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    na = []
    for m in report["reference_models"]:
        rec = res.get((PEER, m))
        if rec and rec.get("status") == "n/a":
            why = rec.get("reason", "n/a").removeprefix("n/a ").split(";")[0].rstrip(")") + ")"
            na.append(f"{m} {why}")
            continue
        pt = bench.median_time(rec)
        mt = bench.median_time(res.get(("mlmprimer", m)))
        row = [m, str(report["nobs"].get(m, "")), bench.fmt_time(pt, rec)]
        row += [bench.fmt_time(mt, res.get(("mlmprimer", m))), bench.fmt_ratio(bench.ratio(mt, pt))]
        if "lme4" in tools:
            lt = bench.median_time(res.get(("lme4", m)))
            row += [bench.fmt_time(lt, res.get(("lme4", m))), bench.fmt_ratio(bench.ratio(pt, lt))]
        row.append(bench.fmt_mb((rec or {}).get("peak_mb")))
        ref = bench.lme4_loglik(res, m)
        if ref is None:
            ref = (res.get(("mlmprimer", m)) or {}).get("loglik")
        row.append(bench.fmt_dll(bench.loglik_diff(rec, ref)))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if na:
        lines += [f"Not fitted by {PEER} (one grouping factor only): {'; '.join(na)}.", ""]
    return lines


PEERS_BEGIN = "<!-- course models against mixedlm-rs: begin -->"
PEERS_END = "<!-- course models against mixedlm-rs: end -->"


def peer_block(text: str) -> str:
    """The block of the course models against the peer in ``text`` (markers included), or ""."""
    start, end = text.find(PEERS_BEGIN), text.find(PEERS_END)
    if start < 0 or end < start:
        return ""
    return text[start : end + len(PEERS_END)]


def write_peer_block(report: dict, path: Path) -> None:
    """Put this run's table of the course models against the peer into ``path`` (SCALE.md).

    The block, between PEERS_BEGIN and PEERS_END, replaces the one there (or is appended) and
    starts with the run's date, command and load; the scale series (scale.py) keeps it when it
    rewrites the rest of the file.
    """
    meta = report["meta"]
    lines = peer_lines(report)
    if not lines:
        return
    head = [
        PEERS_BEGIN,
        "## The course models against mixedlm-rs (`--peers`)",
        "",
        f"- **Run {meta['date']}:** `{meta['command']}`; {meta['machine']['summary']}; load "
        f"average (1 min) {meta['load_start'][0]:.2f} at start, {meta['load_end'][0]:.2f} at "
        f"end; mlmprimer at {meta['mlmprimer_revision']}",
        "",
    ]
    block = "\n".join(head + lines[2:] + [PEERS_END])
    text = Path(path).read_text(encoding="utf-8") if Path(path).exists() else ""
    old = peer_block(text)
    text = text.replace(old, block) if old else text.rstrip("\n") + "\n\n" + block + "\n"
    Path(path).write_text(text, encoding="utf-8")
