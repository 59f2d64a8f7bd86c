"""Print the OpenBLAS kernels the notebook tests run under: the machine's own, and one other.

A stored notebook output must hold on every machine, and machines differ in the OpenBLAS kernel
that numpy picks for their CPU (Haswell, SkylakeX, Zen, ...): each kernel rounds differently in
the last digits. ``make test-notebooks`` therefore runs the notebooks twice: once as the machine
is (printed as ``default``), and once under another kernel, forced with ``OPENBLAS_CORETYPE``.

The other kernel is the first of ``CANDIDATES`` that this CPU can run and that gives different
floating-point results here (checked on a small computation in a fresh process): a kernel that
rounds exactly as the default does would test nothing new. Where none qualifies (not x86-64, or
no other kernel differs), only ``default`` is printed.

Usage: ``python scripts/blas_kernels.py`` prints e.g. ``default Prescott``.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

# (kernel, CPU flag it needs); SkylakeX and Haswell are the kernels of most current x86-64 CPUs,
# Prescott (SSE3, which /proc/cpuinfo calls "pni") runs on every x86-64 CPU.
CANDIDATES = [("SkylakeX", "avx512f"), ("Haswell", "avx2"), ("Prescott", "pni")]

# A few BLAS and LAPACK calls of the kinds the course's fits make; prints the exact bits.
PROBE = """
import numpy as np
rng = np.random.default_rng(20261201)
bits = []
for n, p in [(400, 37), (180, 2), (1000, 5)]:
    X, y = rng.normal(size=(n, p)), rng.normal(size=n)
    A = X.T @ X + np.eye(p)
    b = np.linalg.solve(A, X.T @ y)
    bits += [(X @ A).sum(), np.linalg.cholesky(A)[-1, -1], b.sum(), (X @ b).sum(), y @ y]
print(" ".join(float(v).hex() for v in bits))
"""


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def probe(kernel: str | None) -> str | None:
    """The probe's output under ``kernel`` (``None``: the machine as it is), ``None`` on failure."""
    env = dict(os.environ)
    if kernel is not None:
        env["OPENBLAS_CORETYPE"] = kernel
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def kernels() -> list[str]:
    """``["default"]`` plus the first candidate kernel that runs here and rounds differently."""
    chosen = ["default"]
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return chosen
    flags = cpu_flags()
    baseline = probe(None)
    for kernel, flag in CANDIDATES:
        if flag not in flags:
            continue
        result = probe(kernel)
        if result is not None and result != baseline:
            chosen.append(kernel)
            break
    return chosen


if __name__ == "__main__":
    print(" ".join(kernels()))
