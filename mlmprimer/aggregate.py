"""A linear mixed model's sufficient statistics computed by SQL aggregation in DuckDB.

The profiled deviance needs only cross-products (:class:`mlmprimer.factor.CrossProducts`):
``D`` (per level of the first grouping factor), ``G = Z_1'W`` and ``W'W`` with
``W = [Z_rest | X | y]``. Each is a sum over the rows, so a database computes them where the
rows are (a Parquet or CSV file, a DuckDB relation) and only tables of the size of the number
of levels (or of observed pairs of levels of two factors) reach Python:

* one aggregate ``SELECT`` gives ``X'X``, ``X'y``, ``y'y``, ``n`` and ``sum(log w)``;
* one ``GROUP BY`` per grouping factor gives ``Z_k'Z_k`` (block diagonal), ``Z_k'X``, ``Z_k'y``;
* one ``GROUP BY`` per pair of grouping factors gives ``Z_k'Z_l``.

Sums are DuckDB's ``fsum`` (compensated summation) of ``DOUBLE`` products of the raw columns,
so the model is the one written, never a centred one.

The formula is the subset large data needs (anything else raises an error naming the term): a
numeric response that is a column; fixed effects of numeric columns and of text, boolean or
enum columns (treatment contrasts, R's rule for interactions: a factor is coded by contrasts
where the term without it is in the model, by indicators otherwise), ``a:b``, ``a*b``, ``-1``,
``0 +``; random terms of numeric columns by one or more grouping factors (``(1 | g)``,
``(x | g)``, ``(x || g)``, crossed, nested ``(1 | a/b)``, ``(1 | a:b)``); prior weights as a
column. Rows with a missing value (NULL or NaN) in a used column are dropped, and counted.

Levels are ``SELECT DISTINCT ... ORDER BY``: text sorted, an enum (a pandas categorical given
to DuckDB) in its own order, as :func:`mlmprimer.lmer` orders them in memory.

Examples
--------
>>> import duckdb
>>> from mlmprimer.aggregate import Table, model_plan
>>> from mlmprimer.datasets import load
>>> con = duckdb.connect()
>>> dyes = load("dyestuff")
>>> plan = model_plan("Yield ~ 1 + (1 | Batch)", Table(con.from_df(dyes)))
>>> plan.nobs, plan.xnames, [f.levels.size for f in plan.factors]
(30, ['(Intercept)'], [6])
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .control import LmerControl
from .design import require_random_terms, term_order
from .factor import CrossProducts
from .formula import FormulaError, ParsedFormula, RandomTerm, lme4_name, parse_formula
from .rsyntax import deparse, parse_r
from .rterms import fixed_design
from .sqlsource import SOURCE, Table, ident, literal
from .termalgebra import formula_terms

if TYPE_CHECKING:
    from .bigfit import SummaryDesign

__all__ = [
    "Column",
    "GroupingFactor",
    "ModelPlan",
    "Table",
    "cross_products",
    "formula_columns",
    "full_rank_columns",
    "model_plan",
    "parse_source_formula",
]


@dataclass(frozen=True)
class Column:
    """One column of X or of a random term: its lme4 name and a SQL expression (DOUBLE).

    ``sql`` is None for the intercept (a column of ones).
    """

    name: str
    sql: str | None


@dataclass
class GroupingFactor:
    """A grouping factor: the data columns that form it and its levels (sorted)."""

    name: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]  # SQL of each column as grouped (enums as text)
    levels: pd.Index  # labels as lmer names them in memory
    index: pd.Index  # the grouped values (a MultiIndex for an interaction)

    def codes(self, values: Sequence[np.ndarray]) -> np.ndarray:
        """Level codes of grouped values (one array per column)."""
        if len(values) == 1:
            codes = self.index.get_indexer(pd.Index(values[0]))
        else:
            codes = self.index.get_indexer(pd.MultiIndex.from_arrays(list(values)))
        if np.any(codes < 0):  # pragma: no cover - levels come from the same rows
            raise RuntimeError(f"a level of {self.name!r} was not found among its levels")
        return codes


@dataclass
class ModelPlan:
    """What the SQL sums need: the filtered rows, X, the random terms, the factors.

    Attributes
    ----------
    parsed : ParsedFormula
    table : Table
    rows : str
        SQL of the rows used (``SELECT ... FROM mlm_source WHERE`` complete).
    response : str
        SQL of y (DOUBLE).
    weight : str or None
        SQL of the prior weights.
    columns : list of Column
        X's columns (after the rank check).
    xnames : list of str
    dropped : list of str
        Columns of X dropped as aliased (rank deficient).
    terms : list of (RandomTerm, list of Column, GroupingFactor)
        The random terms in lme4's order.
    factors : list of GroupingFactor
        The distinct grouping factors.
    nobs, nrows : int
        Rows used, rows in the source.
    sums : dict
        ``XtX`` (p x p), ``Xty``, ``yty``, ``ldw`` over the rows used.
    """

    parsed: ParsedFormula
    table: Table
    rows: str
    response: str
    weight: str | None
    columns: list[Column]
    xnames: list[str]
    dropped: list[str]
    terms: list[tuple[RandomTerm, list[Column], GroupingFactor]]
    factors: list[GroupingFactor]
    nobs: int
    nrows: int
    sums: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def ndropped(self) -> int:
        """Rows dropped for missing values."""
        return self.nrows - self.nobs


def _product(*parts: str | None) -> str:
    """The SQL product of some factors (None is 1), as DOUBLE."""
    factors = [p for p in parts if p is not None]
    if not factors:
        return "1.0"
    return " * ".join(f"({p})" for p in factors)


def _fsum(*parts: str | None) -> str:
    """SQL of the compensated sum of a product (a count when every factor is 1)."""
    if all(p is None for p in parts):
        return "CAST(count(*) AS DOUBLE)"
    return f"fsum(CAST({_product(*parts)} AS DOUBLE))"


def _plain_name(node: Any, what: str, text: str) -> str:
    """The column a formula atom names; a FormulaError naming any other atom."""
    if node.kind != "name":
        raise FormulaError(
            f"{what} {deparse(node)!r} is not supported when fitting from a database: only "
            "columns by name (compute the column in SQL first)",
            text,
            node.pos,
        )
    return str(node.value)


def _check_columns(table: Table, names: Sequence[str], formula: str) -> None:
    import difflib

    for nm in names:
        if nm not in table.columns:
            close = difflib.get_close_matches(nm, list(table.columns), n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise ValueError(
                f"column {nm!r} of the formula {formula!r} is not in the data ({table.label})"
                f"{hint}; columns: {', '.join(table.columns)}"
            )


def _levels(table: Table, rows: str, cols: Sequence[str]) -> tuple[pd.Index, pd.Index]:
    """Levels of the grouping (or fixed) factor ``cols``: (labels, grouped values)."""
    inner = ", ".join(f"{ident(c)} AS k{i}" for i, c in enumerate(cols))
    outer = ", ".join(
        f"CAST(k{i} AS VARCHAR) AS v{i}" if table.kind(c) == "enum" else f"k{i} AS v{i}"
        for i, c in enumerate(cols)
    )  # ordered by the values themselves (an enum in its own order), returned as text
    order = ", ".join(f"k{i}" for i in range(len(cols)))
    got = table.query(
        f"SELECT {outer} FROM (SELECT DISTINCT {inner} FROM ({rows})) ORDER BY {order}"
    )
    values = [got[f"v{i}"] for i in range(len(cols))]
    if len(cols) == 1:
        idx = pd.Index(values[0])
        return idx, idx
    labels = pd.Index([":".join(map(str, t)) for t in zip(*values, strict=True)])
    return labels, pd.MultiIndex.from_arrays(values)


def _key(table: Table, col: str) -> str:
    return f"CAST({ident(col)} AS VARCHAR)" if table.kind(col) == "enum" else ident(col)


def _value_sql(value: Any) -> str:
    """A level as a SQL literal (booleans as TRUE/FALSE, numbers as numbers, else text)."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | np.integer | np.floating):
        return repr(value.item() if isinstance(value, np.generic) else value)
    return literal(str(value))


def _coded_sql(col: str, levels: Sequence[Any], values: np.ndarray) -> str:
    """SQL of one coded column of a factor: ``values[i]`` on level i (a contrast's column)."""
    cases = [
        f"WHEN {ident(col)} = {_value_sql(lev)} THEN {float(v)!r}"
        for lev, v in zip(levels, values, strict=True)
        if v != 0
    ]
    return f"CASE {' '.join(cases)} ELSE 0.0 END" if cases else "0.0"


def _fixed_columns(
    parsed: ParsedFormula, table: Table, rows: str, names: list[str]
) -> list[Column]:
    """X's columns with the in-memory path's coding, names and order, as SQL.

    The in-memory builder (:func:`mlmprimer.rterms.fixed_design`) is run on a frame of a few
    rows holding every level of each factor (in the database's order): its contrast matrices
    and column order are translated to SQL, so that both paths code a formula alike.
    """
    alg, _, _ = formula_terms(parsed.fixed, parsed.fixed)
    column_of = {a.label: names[i] for i, a in enumerate(alg.atoms)}
    levels: dict[str, list[Any]] = {}
    for nm in dict.fromkeys(names):
        kind = table.kind(nm)
        if kind == "other":
            raise ValueError(
                f"column {nm!r} has DuckDB type {table.columns[nm]}: a fixed effect must be "
                "numeric, text, boolean or an enum"
            )
        if kind != "numeric":
            levels[nm] = list(_levels(table, rows, [nm])[0])
    size = max([len(v) for v in levels.values()] + [1])
    frame = {}
    for nm in dict.fromkeys(names):
        if nm in levels:
            lev = levels[nm]
            frame[nm] = pd.Categorical([lev[i % len(lev)] for i in range(size)], categories=lev)
        else:
            frame[nm] = np.zeros(size)
    X, info = fixed_design(parsed, pd.DataFrame(frame))
    sql: dict[str, str | None] = {}
    j = 0
    for subterms in info.term_codings.values():
        for sub in subterms:
            per_factor: list[list[str]] = []
            for f in sub.factors:
                col = column_of[f.name()]
                if f in sub.contrast_matrices:
                    mat = sub.contrast_matrices[f].matrix
                    per_factor.append(
                        [_coded_sql(col, levels[col], mat[:, c]) for c in range(mat.shape[1])]
                    )
                else:
                    per_factor.append([f"CAST({ident(col)} AS DOUBLE)"])
            # patsy's (and R's) order: the left-most factor varies fastest
            for combo in itertools.product(*reversed(per_factor)):
                name = lme4_name(info.column_names[j])
                sql[name] = _product(*reversed(combo)) if combo else None
                j += 1
    return [Column(nm, sql[nm]) for nm in X.columns]


def _term_columns(term: RandomTerm, table: Table, formula: str) -> list[Column]:
    alg, terms, intercept = formula_terms(term.expr, term.expr)
    cols: list[Column] = [Column("(Intercept)", None)] if intercept else []
    for t in terms:
        names = [_plain_name(alg.atoms[i].node, "the term", term.expr) for i in sorted(t)]
        _check_columns(table, names, formula)
        for nm in names:
            if table.kind(nm) != "numeric":
                raise ValueError(
                    f"the random-effects term {term} has the non-numeric column {nm!r}: when "
                    "fitting from a database a random term's columns must be numeric (give "
                    "the indicator columns)"
                )
        cols.append(
            Column(":".join(names), _product(*[f"CAST({ident(n)} AS DOUBLE)" for n in names]))
        )
    if not cols:
        raise ValueError(f"the random-effects term {term} has no columns")
    return cols


def full_rank_columns(XtX: np.ndarray, tol: float = 1e-7) -> list[int]:
    """Columns kept as R's pivoting QR keeps them, from the cross-product X'X.

    Column j is dropped when its residual on the columns kept before it has a norm at most
    ``tol`` times its own (the test of :func:`mlmprimer.design.build_design` on X itself).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.aggregate import full_rank_columns
    >>> X = np.column_stack([np.ones(4), np.arange(4.0), 2 * np.arange(4.0)])
    >>> full_rank_columns(X.T @ X)
    [0, 1]
    """
    d = np.sqrt(np.clip(np.diag(XtX), 0.0, None))
    ok = d > 0
    # the test is scale free: work on the cosines of the columns (unit diagonal)
    C = XtX / np.where(ok, d, 1.0)[:, None] / np.where(ok, d, 1.0)[None, :]
    keep: list[int] = []
    for j in np.flatnonzero(ok):
        r2 = 1.0
        if keep:
            b = C[keep, j]
            r2 = 1.0 - b @ np.linalg.solve(C[np.ix_(keep, keep)], b)
        if r2 > tol**2:
            keep.append(int(j))
    return keep


def parse_source_formula(formula: str, where: str) -> ParsedFormula:
    """Parse a formula for a fit from data outside memory: random terms needed, no offset.

    Parameters
    ----------
    formula : str
    where : str
        The fit, as the error message names it (``"when fitting from a database"``).

    Raises
    ------
    FormulaError
        An ``offset()``: ``"offset() is not supported " + where``.
    ValueError
        No random-effects term (:func:`mlmprimer.design.require_random_terms`).

    Examples
    --------
    >>> from mlmprimer.aggregate import parse_source_formula
    >>> parse_source_formula("y ~ x + (1 | g)", "from a database").random[0].group
    'g'
    """
    parsed = parse_formula(formula)
    require_random_terms(parsed)
    if parsed.offsets:
        raise FormulaError(f"offset() is not supported {where}", formula, 0)
    return parsed


def formula_columns(parsed: ParsedFormula) -> tuple[str, list[str], list[str]]:
    """The response, the fixed part's column of each atom, and every column used.

    Raises
    ------
    FormulaError
        An atom that is not a column by name (``log(x)``, ``I(x^2)``, ``poly(x, 2)``):
        transformations, above all those with statistics of the whole data (``scale``,
        ``poly``), are computed before the data reach the fit.

    Examples
    --------
    >>> from mlmprimer.aggregate import formula_columns
    >>> from mlmprimer.formula import parse_formula
    >>> formula_columns(parse_formula("y ~ a * x + (x | g)"))
    ('y', ['a', 'x'], ['y', 'a', 'x', 'g'])
    """
    response = _plain_name(parse_r(parsed.response), "the response", parsed.response)
    alg, _, _ = formula_terms(parsed.fixed, parsed.fixed)
    atom_names = [_plain_name(a.node, "the term", parsed.fixed) for a in alg.atoms]
    group_cols = list(dict.fromkeys(c for t in parsed.random for c in t.factors))
    random_cols: list[str] = []
    for t in parsed.random:
        ta, _, _ = formula_terms(t.expr, t.expr)
        random_cols += [_plain_name(a.node, "the term", t.expr) for a in ta.atoms]
    used = list(dict.fromkeys([response, *atom_names, *random_cols, *group_cols]))
    return response, atom_names, used


def model_plan(
    formula: str,
    table: Table,
    *,
    weights: str | None = None,
    control: LmerControl | None = None,
) -> ModelPlan:
    """Read the formula against the source's columns; levels, X's columns, the rows used.

    Parameters
    ----------
    formula : str
        The supported subset of lme4's syntax (see the module's description).
    table : Table
    weights : str, optional
        The column of prior weights (positive).
    control : LmerControl, optional
        ``rank_tol`` for the aliased columns of X.

    Returns
    -------
    ModelPlan

    Raises
    ------
    FormulaError
        A term the database path does not read (named in the message).
    ValueError
        A missing column, a non-numeric response, non-finite values, weights that are not
        positive, a grouping factor with fewer than 2 levels or as many as observations.

    Examples
    --------
    >>> import duckdb
    >>> from mlmprimer.aggregate import Table, model_plan
    >>> from mlmprimer.datasets import load
    >>> t = Table(duckdb.connect().from_df(load("sleepstudy")))
    >>> p = model_plan("Reaction ~ Days + (Days | Subject)", t)
    >>> p.xnames, [c.name for c in p.terms[0][1]], p.nobs
    (['(Intercept)', 'Days'], ['(Intercept)', 'Days'], 180)
    """
    ctrl = LmerControl() if control is None else control
    parsed = parse_source_formula(formula, "when fitting from a database")
    response, atom_names, used = formula_columns(parsed)
    if weights is not None:
        if not isinstance(weights, str):
            raise TypeError("weights must be the name of a column when fitting from a database")
        used.append(weights)
    _check_columns(table, used, formula)
    if table.kind(response) != "numeric":
        raise ValueError(
            f"the response {response!r} must be numeric (DuckDB type {table.columns[response]})"
        )
    if weights is not None and table.kind(weights) != "numeric":
        raise ValueError(f"the weights column {weights!r} must be numeric")
    conds = []
    for c in dict.fromkeys(used):
        conds.append(f"{ident(c)} IS NOT NULL")
        if table.columns[c].upper() in ("DOUBLE", "FLOAT"):
            conds.append(f"NOT isnan({ident(c)})")
    cols_sql = ", ".join(ident(c) for c in dict.fromkeys(used))
    rows = f"SELECT {cols_sql} FROM {SOURCE} WHERE {' AND '.join(conds)}"
    y = f"CAST({ident(response)} AS DOUBLE)"
    w = None if weights is None else f"CAST({ident(weights)} AS DOUBLE)"
    numeric = [c for c in dict.fromkeys(used) if table.columns[c].upper() in ("DOUBLE", "FLOAT")]
    checks = [
        f"count(*) FILTER (WHERE isinf({ident(c)})) AS inf{i}" for i, c in enumerate(numeric)
    ] + ([f"min({w}) AS wmin"] if w else [])
    nrows = int(table.query(f"SELECT count(*) AS n FROM {SOURCE}")["n"][0])
    columns = _fixed_columns(parsed, table, rows, atom_names)
    # the checks ride along with the sums: one scan of the rows
    sums, got = _fixed_sums(table, rows, columns, y, w, checks)
    for i, c in enumerate(numeric):
        if int(got[f"inf{i}"][0]):
            raise ValueError(
                f"column {c!r} has {int(got[f'inf{i}'][0])} infinite values: lmer needs finite "
                "values (drop or fix those rows)"
            )
    if w is not None and sums["n"] and not float(got["wmin"][0]) > 0:
        raise ValueError("weights must be positive")
    n = sums["n"]
    if n == 0:
        raise ValueError("no rows are left once those with missing values are dropped")
    dropped: list[str] = []
    if columns:
        keep = full_rank_columns(sums["XtX"], ctrl.rank_tol)
        dropped = [c.name for j, c in enumerate(columns) if j not in set(keep)]
        columns = [columns[j] for j in keep]
        sums["XtX"] = sums["XtX"][np.ix_(keep, keep)]
        sums["Xty"] = sums["Xty"][keep]
    factors: dict[str, GroupingFactor] = {}
    blocks = []
    for t in parsed.random:
        if t.group not in factors:
            labels, index = _levels(table, rows, t.factors)
            factors[t.group] = GroupingFactor(
                t.group, t.factors, tuple(_key(table, c) for c in t.factors), labels, index
            )
        f = factors[t.group]
        tcols = _term_columns(t, table, formula)
        nl = len(f.levels)
        if nl < 2:
            raise ValueError(
                f"grouping factor {t.group!r} has only {nl} level{'' if nl == 1 else 's'}: a "
                "random effect needs at least 2 groups (with one group, leave the term out)"
            )
        if nl >= n:
            raise ValueError(
                f"grouping factor {t.group!r} has {nl} levels for {n} observations: the number "
                "of levels must be smaller than the number of observations"
            )
        if nl * len(tcols) >= n:
            raise ValueError(
                f"number of observations (={n}) <= number of random effects "
                f"(={nl * len(tcols)}) for term {t}: the random-effects parameters and the "
                "residual variance are probably unidentifiable"
            )
        blocks.append((t, tcols, f))
    order = term_order([len(b[2].levels) for b in blocks])
    blocks = [blocks[i] for i in order]
    return ModelPlan(
        parsed=parsed,
        table=table,
        rows=rows,
        response=y,
        weight=w,
        columns=columns,
        xnames=[c.name for c in columns],
        dropped=dropped,
        terms=blocks,
        factors=list(factors.values()),
        nobs=n,
        nrows=nrows,
        sums=sums,
    )


def _fixed_sums(
    table: Table, rows: str, columns: list[Column], y: str, w: str | None, extra: list[str]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """X'X, X'y, y'y, n and sum(log w) in one aggregate, with the ``extra`` aggregates."""
    p = len(columns)
    aggs = ["count(*) AS n", f"{_fsum(w, y, y)} AS yty", *extra]
    aggs.append(f"fsum(ln(CASE WHEN {w} > 0 THEN {w} END)) AS ldw" if w else "0.0 AS ldw")
    for a in range(p):
        aggs.append(f"{_fsum(w, columns[a].sql, y)} AS xy{a}")
        for c in range(a + 1):
            aggs.append(f"{_fsum(w, columns[a].sql, columns[c].sql)} AS xx{a}_{c}")
    got = table.query(f"SELECT {', '.join(aggs)} FROM ({rows})")
    XtX = np.zeros((p, p))
    for a in range(p):
        for c in range(a + 1):
            XtX[a, c] = XtX[c, a] = float(got[f"xx{a}_{c}"][0])
    n = int(got["n"][0])
    sums = {
        "n": n,
        "XtX": XtX,
        "Xty": np.array([float(got[f"xy{a}"][0]) for a in range(p)]),
        "yty": float(got["yty"][0]) if n else 0.0,
        "ldw": float(got["ldw"][0]) if n else 0.0,
    }
    return sums, got


def _group_select(f: GroupingFactor, prefix: str) -> tuple[list[str], list[str]]:
    sel = [f"{k} AS {prefix}{i}" for i, k in enumerate(f.keys)]
    return sel, [f"{prefix}{i}" for i in range(len(f.keys))]


def _pair_sums(
    terms: list[tuple[RandomTerm, list[Column], GroupingFactor]], a: int, b: int, w: str | None
) -> list[str]:
    """SQL aggregates of Z_a'Z_b on the rows of a group: ``z{a}_{i}_{b}_{j}`` for columns i, j."""
    return [
        f"{_fsum(w, ci.sql, cj.sql)} AS z{a}_{i}_{b}_{j}"
        for i, ci in enumerate(terms[a][1])
        for j, cj in enumerate(terms[b][1])
    ]


def cross_products(plan: ModelPlan, design: SummaryDesign) -> CrossProducts:
    """D, G = Z_1'W and W'W by SQL aggregation, as :class:`mlmprimer.factor.CrossProducts`.

    Parameters
    ----------
    plan : ModelPlan
    design : SummaryDesign
        From :func:`mlmprimer.bigfit.summary_design` of the same plan (its term blocks).

    Returns
    -------
    CrossProducts

    Examples
    --------
    >>> import duckdb, numpy as np
    >>> from mlmprimer.aggregate import Table, cross_products, model_plan
    >>> from mlmprimer.bigfit import summary_design
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.design import model_design
    >>> from mlmprimer.factor import CrossProducts
    >>> f, pen = "diameter ~ 1 + (1 | plate) + (1 | sample)", load("penicillin")
    >>> plan = model_plan(f, Table(duckdb.connect().from_df(pen)))
    >>> B = cross_products(plan, summary_design(plan))
    >>> A = CrossProducts(model_design(f, pen).design)
    >>> bool(np.allclose(B.WtW, A.WtW) and np.allclose(B.G.toarray(), A.G.toarray()))
    True
    """
    terms = plan.terms
    p = len(plan.columns)
    qs = [len(f.levels) * len(cols) for _, cols, f in terms]
    offs = np.concatenate([[0], np.cumsum(qs[1:])]).astype(int)  # within W, rest terms
    qr = int(sum(qs[1:]))
    m = qr + p + 1
    l1, p1 = len(terms[0][2].levels), len(terms[0][1])
    D = np.zeros((l1, p1, p1))
    G_rows: list[np.ndarray] = []
    G_cols: list[np.ndarray] = []
    G_vals: list[np.ndarray] = []
    WtW = np.zeros((m, m))
    xcols = [c.sql for c in plan.columns] + [plan.response]
    w = plan.weight

    def wcol(k: int) -> int:  # first column of rest term k (k >= 1) in W
        return int(offs[k - 1])

    def put(a: int, la: np.ndarray, i: int, cols: np.ndarray, v: np.ndarray) -> None:
        """Row ``i`` of term ``a`` at levels ``la`` against W's columns ``cols``: into G for
        the first term, else into both triangles of W'W."""
        if a == 0:
            G_rows.append(la * p1 + i)
            G_cols.append(cols)
            G_vals.append(v)
        else:
            r = wcol(a) + la * len(terms[a][1]) + i
            WtW[r, cols] = v
            WtW[cols, r] = v

    # one GROUP BY per grouping factor: the terms on it against each other, X and y
    for f in plan.factors:
        ks = [k for k, (_, _, g) in enumerate(terms) if g is f]
        sel, keys = _group_select(f, "g")
        aggs = []
        for a_i, a in enumerate(ks):
            for b in ks[a_i:]:
                aggs += _pair_sums(terms, a, b, w)
            for i, ci in enumerate(terms[a][1]):
                for x, xs in enumerate(xcols):
                    aggs.append(f"{_fsum(w, ci.sql, xs)} AS x{a}_{i}_{x}")
        got = plan.table.query(
            f"SELECT {', '.join(sel + aggs)} FROM ({plan.rows}) GROUP BY {', '.join(f.keys)}"
        )
        lev = f.codes([got[k] for k in keys])
        for a_i, a in enumerate(ks):
            pa = len(terms[a][1])
            for b in ks[a_i:]:
                pb = len(terms[b][1])
                for i in range(pa):
                    for j in range(pb):
                        v = got[f"z{a}_{i}_{b}_{j}"].astype(float)
                        if a == 0 and b == 0:
                            D[lev, i, j] = v
                            D[lev, j, i] = v
                        else:
                            put(a, lev, i, wcol(b) + lev * pb + j, v)
            for i in range(pa):
                for x in range(p + 1):
                    put(a, lev, i, np.full(lev.size, qr + x), got[f"x{a}_{i}_{x}"].astype(float))
    # one GROUP BY per pair of grouping factors
    for fa, fb in itertools.combinations(plan.factors, 2):
        ka = [k for k, (_, _, g) in enumerate(terms) if g is fa]
        kb = [k for k, (_, _, g) in enumerate(terms) if g is fb]
        sa, keys_a = _group_select(fa, "a")
        sb, keys_b = _group_select(fb, "b")
        aggs = [agg for a in ka for b in kb for agg in _pair_sums(terms, a, b, w)]
        got = plan.table.query(
            f"SELECT {', '.join(sa + sb + aggs)} FROM ({plan.rows}) "
            f"GROUP BY {', '.join(fa.keys + fb.keys)}"
        )
        la = fa.codes([got[k] for k in keys_a])
        lb = fb.codes([got[k] for k in keys_b])
        for a in ka:
            for b in kb:
                # order the pair as (earlier term, later term) in lme4's order
                (s, ls), (t, lt) = sorted([(a, la), (b, lb)], key=lambda e: e[0])
                pt = len(terms[t][1])
                for i in range(len(terms[a][1])):
                    for j in range(len(terms[b][1])):
                        v = got[f"z{a}_{i}_{b}_{j}"].astype(float)
                        ii, jj = (i, j) if s == a else (j, i)
                        put(s, ls, ii, wcol(t) + lt * pt + jj, v)
    # X and y
    s = plan.sums
    WtW[qr : qr + p, qr : qr + p] = s["XtX"]
    WtW[qr : qr + p, -1] = s["Xty"]
    WtW[-1, qr : qr + p] = s["Xty"]
    WtW[-1, -1] = s["yty"]
    if G_rows:
        G = sp.csr_matrix(
            (np.concatenate(G_vals), (np.concatenate(G_rows), np.concatenate(G_cols))),
            shape=(l1 * p1, m),
        )
        G.eliminate_zeros()
    else:  # pragma: no cover - y's column is always there
        G = sp.csr_matrix((l1 * p1, m))
    return CrossProducts.from_sums(design.terms[1:], D, G, WtW, p, s["ldw"])
