"""A linear mixed model fitted to a Dask DataFrame: the cross-products summed over partitions.

Each partition is a pandas DataFrame small enough for memory. On it the in-memory builders
(:func:`mlmprimer.rterms.fixed_design`, :func:`mlmprimer.rterms.term_design`) and
:class:`mlmprimer.factor.CrossProducts` compute that partition's ``D``, ``Z_1'W`` and ``W'W``
with the levels of the whole data; Dask adds them up (on a ``distributed`` cluster if one is
running) and the fit goes on as from DuckDB (:func:`mlmprimer.bigfit.fit_products`). Only the
formula subset of :mod:`mlmprimer.aggregate` is read (columns by name): a transformation with
statistics of the whole data (``scale``, ``poly``) would differ per partition.

Examples
--------
>>> import dask.dataframe as dd
>>> import mlmprimer as mlm
>>> sleep = dd.from_pandas(mlm.datasets.load("sleepstudy"), npartitions=3)
>>> m = mlm.lmer("Reaction ~ Days + (Days | Subject)", sleep)  # lmer_dask(...) underneath
>>> m.fixef.round(2).to_dict(), round(m.loglik, 2)
({'(Intercept)': 251.41, 'Days': 10.47}, -871.81)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .aggregate import (
    Column,
    GroupingFactor,
    ModelPlan,
    formula_columns,
    full_rank_columns,
    parse_source_formula,
)
from .control import LmerControl
from .design import Design, TermBlock, term_order
from .factor import CrossProducts
from .formula import ParsedFormula
from .rterms import fixed_design, response_values, term_design

__all__ = ["is_dask", "lmer_dask"]


def is_dask(data: Any) -> bool:
    """Whether ``data`` is a Dask DataFrame (without importing Dask).

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.daskfit import is_dask
    >>> is_dask(pd.DataFrame())
    False
    """
    return type(data).__module__.split(".")[0] == "dask" and hasattr(data, "map_partitions")


class _Label:
    """Stands in for a DuckDB table in a plan: the source's name only."""

    label = "a Dask DataFrame"


def _levels(values: pd.Series) -> list[Any]:
    """Observed levels: a categorical's order, otherwise sorted (as in memory)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [c for c in values.cat.categories if c in set(values.unique())]
    return sorted(values.unique().tolist())


def _partition(
    part: pd.DataFrame,
    parsed: ParsedFormula,
    used: list[str],
    levels: dict[str, list[Any]],
    groups: list[tuple[Any, pd.Index, pd.Index]],
    weights: str | None,
) -> tuple[int, np.ndarray, sp.csr_matrix, np.ndarray, float, list[str], list[list[str]]] | None:
    """One partition's cross-products with the global levels (None if it has no rows)."""
    part = part[used].dropna()
    if len(part) == 0:
        return None
    part = part.copy()
    for col, lev in levels.items():
        part[col] = pd.Categorical(part[col], categories=lev)
    X, _ = fixed_design(parsed, part)
    y = response_values(parsed, part)
    blocks, names = [], []
    for term, labels, index in groups:
        if len(term.factors) == 1:
            codes = index.get_indexer(pd.Index(part[term.factors[0]].to_numpy()))
        else:
            codes = index.get_indexer(
                pd.MultiIndex.from_arrays([part[c].to_numpy() for c in term.factors])
            )
        Xi, cols, _ = term_design(term, part)
        blocks.append(TermBlock(term, term.group, codes.astype(np.int64), labels, Xi, cols))
        names.append(cols)
    w = None if weights is None else part[weights].to_numpy(dtype=float)
    design = Design(
        y=y,
        X=X.to_numpy(dtype=float),
        xnames=list(X.columns),
        terms=blocks,
        theta0=np.zeros(0),
        lower=np.zeros(0),
        theta_names=[],
        index=part.index,
        weights=w,
    )
    B = CrossProducts(design)
    return len(part), B.D, B.G, B.WtW, B.ldw, list(X.columns), names


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4], a[5], a[6])


def lmer_dask(
    formula: str,
    ddf: Any,
    REML: bool = True,
    *,
    control: LmerControl | Mapping[str, Any] | None = None,
    weights: str | None = None,
) -> Any:
    """Fit a linear mixed model to a Dask DataFrame by sums over its partitions.

    Parameters
    ----------
    formula : str
        The subset :mod:`mlmprimer.aggregate` reads.
    ddf : dask.dataframe.DataFrame
    REML : bool, default True
    control : LmerControl or mapping, optional
    weights : str, optional
        Column of prior weights.

    Returns
    -------
    mlmprimer.bigfit.SourceModel

    Raises
    ------
    FormulaError, ValueError
        An unsupported term, a missing column, non-positive weights, a grouping factor with
        fewer than 2 levels.

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> from mlmprimer.daskfit import lmer_dask
    >>> from mlmprimer.datasets import load
    >>> pen = dd.from_pandas(load("penicillin"), npartitions=4)
    >>> lmer_dask("diameter ~ 1 + (1 | plate) + (1 | sample)", pen).ngroups
    {'plate': 24, 'sample': 6}
    """
    import dask

    from .bigfit import fit_products, summary_design

    ctrl = LmerControl.from_arg(control)
    parsed = parse_source_formula(formula, "for a Dask DataFrame")
    _, fixed_cols, used = formula_columns(parsed)
    if weights is not None:
        used = [*used, weights]
    missing = [c for c in used if c not in ddf.columns]
    if missing:
        raise ValueError(
            f"column {missing[0]!r} of the formula {formula!r} is not in the Dask DataFrame; "
            f"columns: {', '.join(map(str, ddf.columns))}"
        )
    kept = ddf[used].dropna()
    nrows, nobs = dask.compute(ddf.shape[0], kept.shape[0])
    fixed_factors = [c for c in dict.fromkeys(fixed_cols) if not _is_num(ddf[c])]
    group_cols = [c for t in parsed.random for c in t.factors]
    need = list(dict.fromkeys([*fixed_factors, *group_cols]))
    found = dask.compute(*[kept[c].drop_duplicates() for c in need])
    uniques = dict(zip(need, found, strict=True))
    levels = {c: _levels(uniques[c]) for c in fixed_factors}
    groups, factors = [], {}
    for t in parsed.random:
        if t.group not in factors:
            if len(t.factors) == 1:
                labels = index = pd.Index(_levels(uniques[t.factors[0]]))
            else:
                combos = kept[list(t.factors)].drop_duplicates().compute()
                for c in t.factors:
                    order = _levels(combos[c])
                    combos[c] = pd.Categorical(combos[c], categories=order)
                combos = combos.sort_values(list(t.factors))
                index = pd.MultiIndex.from_frame(combos.astype(object))
                labels = pd.Index([":".join(map(str, k)) for k in index])
            if len(labels) < 2:
                raise ValueError(f"grouping factor {t.group!r} has only {len(labels)} level")
            factors[t.group] = GroupingFactor(t.group, t.factors, (), labels, index)
        f = factors[t.group]
        groups.append((t, f.levels, f.index))
    order = term_order([len(g[1]) for g in groups])
    groups = [groups[i] for i in order]
    if weights is not None and not float(kept[weights].min().compute()) > 0:
        raise ValueError("weights must be positive")
    parts = [
        dask.delayed(_partition)(p, parsed, used, levels, groups, weights)
        for p in kept.to_delayed()
    ]
    while len(parts) > 1:  # a tree of sums
        parts = [
            dask.delayed(_add)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    n, D, G, WtW, ldw, xnames, tnames = dask.compute(parts[0])[0]
    qr = G.shape[1] - len(xnames) - 1
    keep = full_rank_columns(WtW[qr:-1, qr:-1], ctrl.rank_tol)
    wkeep = [*range(qr), *(qr + k for k in keep), WtW.shape[0] - 1]
    WtW, G = WtW[np.ix_(wkeep, wkeep)], sp.csr_matrix(G)[:, wkeep]
    terms = [
        (t, [Column(c, None) for c in names], factors[t.group])
        for (t, _, _), names in zip(groups, tnames, strict=True)
    ]
    plan = ModelPlan(
        parsed=parsed,
        table=_Label(),  # type: ignore[arg-type]
        rows="",
        response="",
        weight=None,
        columns=[Column(xnames[k], None) for k in keep],
        xnames=[xnames[k] for k in keep],
        dropped=[x for j, x in enumerate(xnames) if j not in set(keep)],
        terms=terms,
        factors=list(factors.values()),
        nobs=int(n),
        nrows=int(nrows),
    )
    design = summary_design(plan)
    products = CrossProducts.from_sums(design.terms[1:], D, G, WtW, len(keep), ldw)
    return fit_products(formula, plan, design, products, REML, ctrl)


def _is_num(s: Any) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
