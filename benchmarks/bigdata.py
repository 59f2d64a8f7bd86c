"""Fitting from a Parquet file of many rows by DuckDB aggregation: time and peak memory.

Two steps, so that the fit's peak memory is its own::

    .venv/bin/python benchmarks/bigdata.py generate --rows 10000000 --path /tmp/big.parquet
    /usr/bin/time -v .venv/bin/python benchmarks/bigdata.py fit --path /tmp/big.parquet

The data: ``y = 1 + 0.5 x1 - 0.25 x2 + 0.1 x3 + b_g + e`` with 1000 groups, ``sd(b) = 0.7``,
``sd(e) = 1``, standard normal covariates, drawn from hashes of the row number (the same file
for the same number of rows). The fit is ``y ~ x1 + x2 + x3 + (1 | g)`` by REML.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def _u(seed: int, key: str = "range") -> str:
    return f"((hash({key}, {seed}) % 1000000007 + 0.5) / 1000000007)"


def n01(a: int, b: int, key: str = "range") -> str:
    """SQL of a standard normal draw (Box-Muller on two hashed uniforms)."""
    return f"sqrt(-2 * ln({_u(a, key)})) * cos(2 * pi() * {_u(b, key)})"


def data_sql(rows: int) -> str:
    """The SQL of the simulated rows."""
    return (
        "SELECT g, x1, x2, x3, 1.0 + 0.5 * x1 - 0.25 * x2 + 0.1 * x3 + 0.7 * b + e AS y FROM ("
        f"SELECT range % 1000 AS g, {n01(1, 2)} AS x1, {n01(3, 4)} AS x2, {n01(5, 6)} AS x3, "
        f"{n01(7, 8)} AS e, {n01(9, 10, 'range % 1000')} AS b FROM range({int(rows)}))"
    )


def generate(rows: int, path: str) -> None:
    import duckdb

    t0 = time.perf_counter()
    duckdb.connect().execute(f"COPY ({data_sql(rows)}) TO '{path}' (FORMAT parquet)")
    print(json.dumps({"generated": path, "rows": rows, "seconds": time.perf_counter() - t0}))


def fit(path: str, threads: int | None, memory_limit: str | None) -> None:
    import duckdb

    from mlmprimer.bigfit import lmer_source

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    t0 = time.perf_counter()
    m = lmer_source("y ~ x1 + x2 + x3 + (1 | g)", path, connection=con)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": m.nobs,
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak_mb, 1),
                "nevals": m.fit_info.nevals,
                "fixef": m.fixef.round(5).to_dict(),
                "sd_g": round(float(m.varcorr["sdcor"].iloc[0]), 5),
                "sigma": round(m.sigma, 5),
                "loglik": round(m.loglik, 4),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--rows", type=int, default=10_000_000)
    g.add_argument("--path", default="big.parquet")
    f = sub.add_parser("fit")
    f.add_argument("--path", default="big.parquet")
    f.add_argument("--threads", type=int, default=None)
    f.add_argument("--memory-limit", default=None)
    args = ap.parse_args()
    if args.cmd == "generate":
        generate(args.rows, args.path)
    else:
        fit(args.path, args.threads, args.memory_limit)


if __name__ == "__main__":
    main()
