"""What the tests that re-run the committed R scripts need: Rscript and some R packages."""

from __future__ import annotations

import functools
import shutil
import subprocess


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
