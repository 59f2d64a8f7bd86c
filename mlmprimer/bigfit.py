"""Fitting a linear mixed model to data that stays in DuckDB: :func:`lmer_source`.

``lmer(formula, "file.parquet")``, ``lmer(formula, "file.csv")`` and
``lmer(formula, relation)`` come here. The rows are never loaded into Python: DuckDB computes
the model's cross-products by SQL aggregation (:mod:`mlmprimer.aggregate`), and stages 2 to 4
of a fit run on them as they do in memory (:class:`mlmprimer.factor.ProfiledDeviance` with
``products=``, :func:`mlmprimer.optimize.optimize_theta`,
:func:`mlmprimer.solution.solve_mixed`), so the estimates are those of the in-memory fit.
Memory grows with the number of levels, not of rows.

The result, :class:`SourceModel`, has :class:`mlmprimer.lmermodel.LmerModel`'s names where they
apply (``fixef``, ``ranef``, ``varcorr``, ``sigma``, ``loglik``, ``vcov``, ``tidy()``,
``glance()``, ...); per-row values (:meth:`SourceModel.augment`) are computed back in DuckDB
and returned as a relation.

Examples
--------
>>> import duckdb
>>> import mlmprimer as mlm
>>> sleep = duckdb.connect().from_df(mlm.datasets.load("sleepstudy"))
>>> m = mlm.lmer("Reaction ~ Days + (Days | Subject)", sleep)  # lmer_source(...) underneath
>>> m.fixef.round(2).to_dict(), round(m.loglik, 2)
({'(Intercept)': 251.41, 'Days': 10.47}, -871.81)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .aggregate import (
    SOURCE,
    ModelPlan,
    Table,
    cross_products,
    literal,
    model_plan,
)
from .control import LmerControl
from .design import TermBlock, design_warnings, theta_layout
from .factor import CrossProducts, ProfiledDeviance
from .fitresults import (
    by_group,
    condsd_by_group,
    fit_repr,
    fit_statistics,
    fixef_table,
    group_coefficients,
)
from .lmermodel import LmerWarning
from .optimize import ThetaFit, optimize_theta
from .rprint import SINGULAR_MESSAGE
from .solution import MixedSolution, solve_mixed
from .varcomp import VarComp, variance_components

__all__ = [
    "SourceModel",
    "SummaryDesign",
    "fit_products",
    "is_source",
    "lmer_source",
    "summary_design",
]


@dataclass
class SummaryDesign:
    """The shape of a design without its rows: what the deviance and the solution read.

    It stands in for :class:`mlmprimer.design.Design` in
    :class:`mlmprimer.factor.ProfiledDeviance`, :func:`mlmprimer.optimize.optimize_theta` and
    :func:`mlmprimer.solution.solve_mixed` (``n``, ``p``, ``terms`` with their levels and
    templates, ``theta0``, ``lower``).
    """

    n: int
    xnames: list[str]
    terms: list[TermBlock]
    theta0: np.ndarray
    lower: np.ndarray
    theta_names: list[str]
    dropped: list[str] = field(default_factory=list)
    weights: None = None
    offset: None = None

    @property
    def p(self) -> int:
        """Number of fixed-effect columns."""
        return len(self.xnames)

    @property
    def q(self) -> int:
        """Total number of random effects."""
        return sum(t.q for t in self.terms)


def summary_design(plan: ModelPlan) -> SummaryDesign:
    """Term blocks (levels and column names, no rows) and the theta layout, as lme4's.

    Examples
    --------
    >>> import duckdb
    >>> from mlmprimer.aggregate import Table, model_plan
    >>> from mlmprimer.bigfit import summary_design
    >>> from mlmprimer.datasets import load
    >>> t = Table(duckdb.connect().from_df(load("sleepstudy")))
    >>> d = summary_design(model_plan("Reaction ~ Days + (Days | Subject)", t))
    >>> d.theta_names, d.q
    (['Subject.(Intercept)', 'Subject.Days.(Intercept)', 'Subject.Days'], 36)
    """
    blocks = [
        TermBlock(
            term,
            term.group,
            np.zeros(0, dtype=np.int64),
            f.levels,
            np.zeros((0, len(cols))),
            [c.name for c in cols],
        )
        for term, cols, f in plan.terms
    ]
    theta0, lower, tnames = theta_layout(blocks)
    return SummaryDesign(
        plan.nobs,
        list(plan.xnames),
        blocks,
        theta0,
        lower,
        tnames,
        list(plan.dropped),
    )


def is_source(data: Any) -> bool:
    """Whether ``data`` is fitted through DuckDB (a path or a DuckDB relation).

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.bigfit import is_source
    >>> is_source("x.parquet"), is_source(pd.DataFrame())
    (True, False)
    """
    from pathlib import Path

    from .daskfit import is_dask

    if isinstance(data, pd.DataFrame):  # the in-memory path: no need to import DuckDB
        return False

    if isinstance(data, str | Path) or is_dask(data):
        return True
    try:
        import duckdb
    except ImportError:  # pragma: no cover - duckdb is a dependency
        return False
    return isinstance(data, duckdb.DuckDBPyRelation)


def lmer_source(
    formula: str,
    source: Any,
    REML: bool = True,
    *,
    control: LmerControl | Mapping[str, Any] | None = None,
    weights: str | None = None,
    connection: Any = None,
) -> SourceModel:
    """Fit a linear mixed model to a Parquet or CSV file or a DuckDB relation, by aggregation.

    Parameters
    ----------
    formula : str
        lme4's syntax, in the subset :mod:`mlmprimer.aggregate` reads (columns by name,
        factors, interactions, random terms of numeric columns by one or more factors).
    source : str, pathlib.Path or duckdb.DuckDBPyRelation
    REML : bool, default True
    control : LmerControl or mapping, optional
        As :func:`mlmprimer.lmer`.
    weights : str, optional
        Name of the column of prior weights.
    connection : duckdb.DuckDBPyConnection, optional
        Where a path is read (its settings: threads, memory limit); default a new in-memory
        database.

    Returns
    -------
    SourceModel

    Raises
    ------
    FormulaError, ValueError
        As :func:`mlmprimer.aggregate.model_plan`: an unsupported term or a missing column,
        named in the message.
    ConvergenceError
        The optimiser did not converge.

    Warns
    -----
    LmerWarning
        Rows dropped for missing values, aliased fixed-effect columns dropped, grouping
        factors with few levels, a singular fit.

    Examples
    --------
    >>> import duckdb
    >>> from mlmprimer.bigfit import lmer_source
    >>> from mlmprimer.datasets import load
    >>> pen = duckdb.connect().from_df(load("penicillin"))
    >>> m = lmer_source("diameter ~ 1 + (1 | plate) + (1 | sample)", pen)
    >>> m.varcorr.round(3)[["grp", "sdcor"]].values.tolist()
    [['plate', 0.847], ['sample', 1.932], ['Residual', 0.55]]
    """
    from .daskfit import is_dask, lmer_dask

    if is_dask(source):
        return lmer_dask(formula, source, REML, control=control, weights=weights)
    ctrl = LmerControl.from_arg(control)
    table = Table(source, connection)
    plan = model_plan(formula, table, weights=weights, control=ctrl)
    design = summary_design(plan)
    return fit_products(formula, plan, design, cross_products(plan, design), REML, ctrl)


def fit_products(
    formula: str,
    plan: ModelPlan,
    design: SummaryDesign,
    products: CrossProducts,
    REML: bool,
    control: LmerControl,
) -> SourceModel:
    """Stages 2 to 4 on cross-products computed elsewhere, with lmer's warnings.

    Examples
    --------
    >>> import duckdb
    >>> from mlmprimer.aggregate import Table, cross_products, model_plan
    >>> from mlmprimer.bigfit import fit_products, summary_design
    >>> from mlmprimer.control import LmerControl
    >>> from mlmprimer.datasets import load
    >>> f = "Yield ~ 1 + (1 | Batch)"
    >>> plan = model_plan(f, Table(duckdb.connect().from_df(load("dyestuff"))))
    >>> d = summary_design(plan)
    >>> m = fit_products(f, plan, d, cross_products(plan, d), True, LmerControl())
    >>> round(m.sigma, 2)
    49.51
    """
    for note in _notes(plan, design, control):
        warnings.warn(note, LmerWarning, stacklevel=4)
    devfun = ProfiledDeviance(  # type: ignore[arg-type]
        design, REML, products=products, schur_factor=control.schur_factor
    )
    opt = optimize_theta(devfun, control)
    sol = solve_mixed(devfun, opt.theta)
    model = SourceModel(formula, plan, design, opt, sol, bool(REML), control, devfun)
    if model.singular:
        warnings.warn(SINGULAR_MESSAGE, LmerWarning, stacklevel=4)
    return model


def _notes(plan: ModelPlan, design: SummaryDesign, ctrl: LmerControl) -> list[str]:
    notes = []
    if plan.ndropped:
        k = plan.ndropped
        notes.append(
            f"{k} row{'s' if k > 1 else ''} with missing values dropped (like R's na.omit); "
            f"{plan.nobs} rows used"
        )
    # aliased columns and few levels as in memory; the terms have no rows (no codes), so
    # the single-observation check of design_warnings finds nothing
    notes += design_warnings(design, ctrl)  # type: ignore[arg-type]
    return list(dict.fromkeys(notes))


class SourceModel:
    """A linear mixed model fitted from a database (the result of :func:`lmer_source`).

    Attributes
    ----------
    formula, REML, fixef, vcov, sigma, theta, loglik, deviance, aic, bic, npar, ngroups
        As :class:`mlmprimer.lmermodel.LmerModel`'s (the same computation,
        :func:`mlmprimer.lmermodel.fit_statistics`).
    varcorr, varcomp, singular, converged
        As :class:`mlmprimer.lmermodel.LmerModel`'s.
    nobs : int
        Rows used.
    ndropped : int
        Rows dropped for missing values (as R's ``na.omit``).
    ranef : dict of pandas.DataFrame
        One frame per grouping factor: index the levels, columns the terms.
    ranef_condsd : dict of pandas.DataFrame
        Their conditional SDs.
    dropped : list of str
        Fixed-effect columns dropped as aliased.
    devfun : ProfiledDeviance
        The profiled deviance on the aggregated cross-products (no rows needed).

    Examples
    --------
    >>> import duckdb
    >>> from mlmprimer.bigfit import lmer_source
    >>> from mlmprimer.datasets import load
    >>> m = lmer_source("Yield ~ 1 + (1 | Batch)", duckdb.connect().from_df(load("dyestuff")))
    >>> m.ngroups, m.nobs, m.ndropped, m.plan.table.label
    ({'Batch': 6}, 30, 0, 'relation')
    """

    def __init__(
        self,
        formula: str,
        plan: ModelPlan,
        design: SummaryDesign,
        fit: ThetaFit,
        solution: MixedSolution,
        REML: bool,
        control: LmerControl,
        devfun: ProfiledDeviance | None = None,
    ) -> None:
        self.devfun = devfun  # d(theta) on the aggregated cross-products
        self.formula = formula
        self.plan = plan
        self.design = design
        self.fit_info = fit
        self.solution = solution
        self.REML = REML
        self.control = control
        self.response = plan.parsed.response
        # theta, converged, nobs, sigma, npar, deviance, loglik, aic, bic, singular, ngroups
        vars(self).update(fit_statistics(design, solution, control))
        self.ndropped = plan.ndropped
        self.dropped = list(plan.dropped)
        names = design.xnames
        self.fixef = pd.Series(solution.beta, index=names, name="fixef")
        self.vcov = pd.DataFrame(solution.vcov, index=names, columns=names)
        self.varcomp: VarComp = variance_components(
            design,  # type: ignore[arg-type]
            self.theta,
            self.sigma,
        )
        self.varcorr = self.varcomp.frame()
        self.ranef = by_group(design.terms, solution.b)

    @property
    def ranef_condsd(self) -> dict[str, pd.DataFrame]:
        """Conditional SDs of the random effects, shaped like :attr:`ranef` (lme4's condVar).

        Examples
        --------
        >>> import duckdb, mlmprimer as mlm
        >>> d = duckdb.connect().from_df(mlm.datasets.load("dyestuff"))
        >>> mlm.lmer("Yield ~ 1 + (1 | Batch)", d).ranef_condsd["Batch"].shape
        (6, 1)
        """
        return condsd_by_group(self.design.terms, self.solution)

    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-group coefficients (fixed effects plus the group's random effects), R's coef().

        Examples
        --------
        >>> import duckdb, mlmprimer as mlm
        >>> s = duckdb.connect().from_df(mlm.datasets.load("sleepstudy"))
        >>> list(mlm.lmer("Reaction ~ Days + (Days | Subject)", s).coef()["Subject"].columns)
        ['(Intercept)', 'Days']
        """
        return group_coefficients(self.fixef, self.ranef)

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error and t value of the fixed effects (lme4's ``coef(summary(m))``).

        Examples
        --------
        >>> import duckdb, mlmprimer as mlm
        >>> d = duckdb.connect().from_df(mlm.datasets.load("dyestuff"))
        >>> mlm.lmer("Yield ~ 1 + (1 | Batch)", d).coef_table().round(2).values.tolist()
        [[1527.5, 19.38, 78.8]]
        """
        return fixef_table(self.fixef, self.vcov)

    def tidy(self, conf_int: bool = False, conf_level: float = 0.95) -> pd.DataFrame:
        """broom.mixed's ``tidy``: fixed effects, then SDs and correlations, with Wald intervals.

        Parameters
        ----------
        conf_int : bool, default False
            Add ``conf.low`` and ``conf.high`` (Wald, fixed effects only; NaN for the
            random-effect parameters, as broom.mixed's default method).
        conf_level : float, default 0.95

        Returns
        -------
        pandas.DataFrame
            Columns ``effect, group, term, estimate, std.error, statistic``.

        Examples
        --------
        >>> import duckdb, mlmprimer as mlm
        >>> s = duckdb.connect().from_df(mlm.datasets.load("sleepstudy"))
        >>> mlm.lmer("Reaction ~ Days + (Days | Subject)", s).tidy()["term"].tolist()
        ... # doctest: +NORMALIZE_WHITESPACE
        ['(Intercept)', 'Days', 'sd__(Intercept)', 'cor__(Intercept).Days', 'sd__Days',
         'sd__Observation']
        """
        from scipy import stats

        if not 0 < conf_level < 1:
            raise ValueError(f"conf_level must be strictly between 0 and 1, got {conf_level!r}")
        rows = []
        for nm, r in self.coef_table().iterrows():
            rows.append(("fixed", None, nm, r["Estimate"], r["Std. Error"], r["t value"]))
        for tv in self.varcomp:
            for j in range(tv.p):
                rows.append(("ran_pars", tv.name, f"sd__{tv.terms[j]}", tv.sd[j], np.nan, np.nan))
                for i in range(j + 1, tv.p):
                    term = f"cor__{tv.terms[j]}.{tv.terms[i]}"
                    rows.append(("ran_pars", tv.name, term, tv.corr[i, j], np.nan, np.nan))
        rows.append(("ran_pars", "Residual", "sd__Observation", self.sigma, np.nan, np.nan))
        out = pd.DataFrame(
            rows, columns=["effect", "group", "term", "estimate", "std.error", "statistic"]
        )
        if conf_int:
            z = float(stats.norm.ppf(0.5 + conf_level / 2))
            out["conf.low"] = out["estimate"] - z * out["std.error"]
            out["conf.high"] = out["estimate"] + z * out["std.error"]
        return out

    def glance(self) -> pd.DataFrame:
        """One-row summary (broom.mixed's ``glance``), plus the rows dropped.

        Examples
        --------
        >>> import duckdb, mlmprimer as mlm
        >>> d = duckdb.connect().from_df(mlm.datasets.load("dyestuff"))
        >>> list(mlm.lmer("Yield ~ 1 + (1 | Batch)", d).glance().columns)
        ['nobs', 'sigma', 'logLik', 'AIC', 'BIC', 'REMLcrit', 'df.residual', 'ndropped']
        """
        last = "REMLcrit" if self.REML else "deviance"
        row = {
            "nobs": self.nobs,
            "sigma": self.sigma,
            "logLik": self.loglik,
            "AIC": self.aic,
            "BIC": self.bic,
            last: self.deviance,
            "df.residual": self.nobs - self.npar,
            "ndropped": self.ndropped,
        }
        return pd.DataFrame([row])

    def summary(self) -> str:
        """A short text summary: the fit, the variance components, the fixed effects.

        Examples
        --------
        >>> import duckdb, mlmprimer as mlm
        >>> d = duckdb.connect().from_df(mlm.datasets.load("dyestuff"))
        >>> print(mlm.lmer("Yield ~ 1 + (1 | Batch)", d).summary().splitlines()[0])
        Linear mixed model fit by REML from relation (aggregated in DuckDB)
        """
        kind = "REML" if self.REML else "maximum likelihood"
        crit = "REML criterion" if self.REML else "deviance"
        vc = self.varcorr.copy()
        for c in ("var1", "var2"):
            vc[c] = vc[c].fillna("")
        lines = [
            f"Linear mixed model fit by {kind} from {self.plan.table.label} (aggregated in DuckDB)",
            f"Formula: {self.formula}",
            f"{crit} at convergence: {self.deviance:.1f}",
            f"Number of obs: {self.nobs} ({self.ndropped} dropped for missing values), groups: "
            + ", ".join(f"{g}, {n}" for g, n in self.ngroups.items()),
            "",
            "Random effects:",
            vc.to_string(index=False),
            "",
            "Fixed effects:",
            self.coef_table().to_string(float_format=lambda x: f"{x:.4g}"),
        ]
        if self.singular:
            lines += ["", SINGULAR_MESSAGE]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return fit_repr("SourceModel", self)

    def __str__(self) -> str:
        return self.summary()

    # ---- per-row values, back in DuckDB ------------------------------------------------------

    def _fixed_sql(self) -> str:
        parts = []
        for c, b in zip(self.plan.columns, self.fixef.to_numpy(), strict=True):
            parts.append(f"{float(b)!r} * ({c.sql})" if c.sql is not None else repr(float(b)))
        return " + ".join(parts) if parts else "0.0"

    def fitted(self) -> Any:
        """Fitted values ``X beta + Z b`` of the rows used, as a DuckDB relation (``.fitted``).

        Examples
        --------
        >>> import duckdb, mlmprimer as mlm
        >>> d = duckdb.connect().from_df(mlm.datasets.load("dyestuff"))
        >>> mlm.lmer("Yield ~ 1 + (1 | Batch)", d).fitted().shape
        (30, 1)
        """
        return self.augment().select('".fitted"')

    def augment(self) -> Any:
        """The rows used with ``.fitted``, ``.resid`` and ``.fixed``, as a DuckDB relation.

        Computed in DuckDB: the conditional modes of each grouping factor are joined to the
        rows (nothing row-sized is made in Python; fetch or ``COPY`` the relation as needed).

        Returns
        -------
        duckdb.DuckDBPyRelation

        Examples
        --------
        >>> import duckdb, mlmprimer as mlm
        >>> d = duckdb.connect().from_df(mlm.datasets.load("dyestuff"))
        >>> a = mlm.lmer("Yield ~ 1 + (1 | Batch)", d).augment()
        >>> a.columns[-3:], a.shape
        (['.fitted', '.resid', '.fixed'], (30, 5))
        """
        plan = self.plan
        if not isinstance(plan.table, Table):
            raise NotImplementedError("augment() and fitted() need a file or DuckDB relation")
        ctes, joins, rand = [], [], []
        for k, (_, cols, f) in enumerate(plan.terms):
            b = self.solution.b[k]
            keys = f.index.to_frame(index=False) if f.index.nlevels > 1 else None
            values = []
            for lev in range(len(f.levels)):
                if keys is None:
                    kv = [f.index[lev]]
                else:
                    kv = list(keys.iloc[lev])
                keyvals = ", ".join(_sql_value(v) for v in kv)
                modes = ", ".join(repr(float(x)) for x in b[lev])
                values.append(f"({keyvals}, {modes})")
            kcols = [f"mlm_k{i}" for i in range(len(f.keys))]
            bcols = [f"mlm_b{j}" for j in range(len(cols))]
            ctes.append(f"re{k}({', '.join(kcols + bcols)}) AS (VALUES {', '.join(values)})")
            on = " AND ".join(f"re{k}.mlm_k{i} = {key}" for i, key in enumerate(f.keys))
            joins.append(f"JOIN re{k} ON {on}")
            for j, c in enumerate(cols):
                rand.append(f"re{k}.mlm_b{j}" + ("" if c.sql is None else f" * ({c.sql})"))
        fixed = self._fixed_sql()
        fitted = fixed + ("" if not rand else " + " + " + ".join(rand))
        sql = (
            f"WITH {', '.join(ctes)}, rows AS ({plan.rows}) "
            f'SELECT rows.*, ({fitted}) AS ".fitted", '
            f'({plan.response}) - ({fitted}) AS ".resid", ({fixed}) AS ".fixed" '
            f"FROM rows {' '.join(joins)}"
        )
        return plan.table.relation.query(SOURCE, sql)


def _sql_value(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | np.integer | float | np.floating):
        return repr(v.item() if hasattr(v, "item") else v)
    return literal(str(v))
