"""Fits from Parquet and CSV files and DuckDB relations (mlmprimer.aggregate, mlmprimer.bigfit).

The reference is always the in-memory fit, ``lmer(formula, DataFrame)``, of the same rows:

* the SQL cross-products equal the in-memory ones (to rounding, ~1e-12 relative);
* at one theta both paths give the same deviance, beta, sigma and conditional modes (1e-9);
* the two fits reach the same log-likelihood (1e-10 relative), and each one's theta is an
  optimum of the other's deviance (to 1e-10 relative); their theta can differ within the optimiser's
  own tolerance (BOBYQA stops where the deviance is flat to ``ftol_abs``: shuffling the rows
  of an in-memory fit moves it as much), so the parameters are compared to 2e-3 relative;
* missing values drop the same rows; unsupported terms and missing columns raise errors that
  name them; the rows are never loaded into Python.
"""

from __future__ import annotations

import tracemalloc
import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest

from mlmprimer.aggregate import Table, cross_products, model_plan
from mlmprimer.bigfit import SourceModel, summary_design
from mlmprimer.datasets import load
from mlmprimer.design import build_design
from mlmprimer.factor import CrossProducts, ProfiledDeviance, deviance_function
from mlmprimer.formula import FormulaError, parse_formula
from mlmprimer.model import LmerWarning, lmer
from mlmprimer.profile import confint
from mlmprimer.solution import solve_mixed

CASES = {
    "sleepstudy-slopes": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "sleepstudy-uncorrelated": (
        "sleepstudy",
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
    ),
    "penicillin-crossed": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "pastes-nested": ("pastes", "strength ~ 1 + (1 | batch/cask)"),
    # lme4 puts the factor with more levels first: plate (24) before sample (6)
    "penicillin-reordered": ("penicillin", "diameter ~ 1 + (1 | sample) + (1 | plate)"),
    "hsb82-factors": ("hsb82", "mAch ~ sector * cses + sx + (cses | school)"),
    "hsb82-interaction": ("hsb82", "mAch ~ sx:minrty + cses - 1 + (1 | school)"),
}


def _text(df: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as text: what a Parquet or CSV file holds (levels then sort)."""
    out = df.copy()
    for c in out.columns:
        if isinstance(out[c].dtype, pd.CategoricalDtype):
            out[c] = out[c].astype(str)
    return out


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LmerWarning)
        return fn(*args, **kw)


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def case(request):
    name, formula = CASES[request.param]
    return formula, _text(load(name))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Each data set as Parquet and CSV."""
    root = tmp_path_factory.mktemp("sources")
    out = {}
    for name in {n for n, _ in CASES.values()}:
        df = _text(load(name))
        out[name, "parquet"] = root / f"{name}.parquet"
        out[name, "csv"] = root / f"{name}.csv"
        df.to_parquet(out[name, "parquet"], index=False)
        df.to_csv(out[name, "csv"], index=False)
    return out


def _close(a, b, rtol):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.max(np.abs(b)) if b.size else 1.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


# ---- the sums and the engine at one theta -------------------------------------------------


def test_sql_cross_products_equal_the_in_memory_ones(case):
    formula, df = case
    plan = model_plan(formula, Table(duckdb.connect().from_df(df)))
    design = summary_design(plan)
    B = cross_products(plan, design)
    A = CrossProducts(build_design(parse_formula(formula), df))
    _close(B.D, A.D, 1e-12)
    _close(B.G.toarray(), A.G.toarray(), 1e-12)
    _close(B.WtW, A.WtW, 1e-12)


def test_same_deviance_and_estimates_at_the_same_theta(case):
    formula, df = case
    for REML in (True, False):
        ref = _quiet(lmer, formula, df, REML=REML)
        plan = model_plan(formula, Table(duckdb.connect().from_df(df)))
        design = summary_design(plan)
        dev = ProfiledDeviance(design, REML, products=cross_products(plan, design))
        theta = ref.theta
        assert dev(theta) == pytest.approx(ref.deviance, rel=1e-12)
        sol = solve_mixed(dev, theta)
        _close(sol.beta, ref.fixef.to_numpy(), 1e-9)
        assert sol.sigma == pytest.approx(ref.sigma, rel=1e-9)
        for b, t in zip(sol.b, ref.solution.b, strict=True):
            _close(b, t, 1e-9)
        _close(sol.vcov, ref.vcov.to_numpy(), 1e-9)
        for mine, theirs in zip(
            sol.conditional_variances(), ref.solution.conditional_variances(), strict=True
        ):
            _close(mine, theirs, 1e-9)


# ---- whole fits from files and relations ----------------------------------------------------


def _compare(m: SourceModel, ref, rtol: float = 2e-3) -> None:
    """The same fit: the same optimum of the same deviance, names and shapes.

    The parameters are compared loosely: where the deviance is flat the optimiser's end point
    moves with rounding (the in-memory fit itself, on the same rows shuffled, moves theta by
    up to 1e-3 relative on hsb82 by ML while its logLik agrees to 1e-12).
    """
    assert isinstance(m, SourceModel)
    assert m.nobs == ref.nobs and m.ngroups == ref.ngroups
    assert list(m.fixef.index) == list(ref.fixef.index)
    assert m.loglik == pytest.approx(ref.loglik, rel=1e-10)
    assert m.aic == pytest.approx(ref.aic, rel=1e-10)
    # each end point is an optimum of the other path's deviance
    # (to the log-likelihood's 1e-10: the optimiser stops within ftol_abs of its own optimum)
    gap = 1e-10 * abs(ref.deviance)
    assert deviance_function(ref.design, ref.REML)(m.theta) - ref.deviance < gap
    assert m.devfun(ref.theta) - m.deviance < gap
    _close(m.fixef, ref.fixef, rtol)
    _close(m.theta, ref.theta, rtol)
    assert m.sigma == pytest.approx(ref.sigma, rel=rtol)
    pd.testing.assert_frame_equal(
        m.varcorr[["grp", "var1", "var2"]], ref.varcorr[["grp", "var1", "var2"]]
    )
    _close(m.varcorr["sdcor"], ref.varcorr["sdcor"], rtol)
    assert set(m.ranef) == set(ref.ranef)
    for g, frame in ref.ranef.items():
        assert list(m.ranef[g].columns) == list(frame.columns)
        assert [str(v) for v in m.ranef[g].index] == [str(v) for v in frame.index]
        _close(m.ranef[g].to_numpy(), frame.to_numpy(), 10 * rtol)
    for g, frame in ref.ranef_condsd.items():
        _close(m.ranef_condsd[g].to_numpy(), frame.to_numpy(), 10 * rtol)
    for g, frame in ref.coef().items():
        assert list(m.coef()[g].columns) == list(frame.columns)
        _close(m.coef()[g].to_numpy(), frame.to_numpy(), 10 * rtol)
    assert list(m.tidy()["term"]) == list(ref.tidy()["term"])
    assert list(m.glance().columns[:7]) == list(ref.glance().columns)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_fit_from_a_file_matches_the_in_memory_fit(files, fmt):
    for name, formula in CASES.values():
        path = files[name, fmt]
        df = pd.read_csv(path) if fmt == "csv" else _text(load(name))
        ref = _quiet(lmer, formula, df)
        _compare(_quiet(lmer, formula, str(path)), ref)
        _compare(_quiet(lmer, formula, path, REML=False), _quiet(lmer, formula, df, REML=False))


def test_fit_from_a_relation_keeps_categorical_levels():
    # a pandas categorical becomes a DuckDB enum: its own level order, as in memory
    hsb = load("hsb82")
    formula = "mAch ~ sector * cses + sx + (1 | school)"
    m = _quiet(lmer, formula, duckdb.connect().from_df(hsb))
    ref = _quiet(lmer, formula, hsb)
    assert list(m.fixef.index) == [
        "(Intercept)",
        "sectorCatholic",
        "cses",
        "sxFemale",
        "sectorCatholic:cses",
    ]
    _compare(m, ref)


def test_prior_weights_as_a_column(tmp_path):
    sleep = _text(load("sleepstudy"))
    sleep["w"] = np.random.default_rng(7).uniform(0.5, 2.0, len(sleep))
    path = tmp_path / "w.parquet"
    sleep.to_parquet(path)
    formula = "Reaction ~ Days + (Days | Subject)"
    ref = lmer(formula, sleep, weights="w")
    m = lmer(formula, path, weights="w")
    _compare(m, ref)
    unweighted = lmer(formula, path)
    assert abs(unweighted.loglik - m.loglik) > 1.0  # the weights matter


def test_missing_values_drop_the_same_rows(tmp_path):
    sleep = _text(load("sleepstudy"))
    sleep.loc[[3, 50], "Reaction"] = np.nan
    sleep.loc[[7], "Days"] = np.nan
    sleep["Subject"] = sleep["Subject"].astype(object)
    sleep.loc[[100, 101], "Subject"] = None
    formula = "Reaction ~ Days + (Days | Subject)"
    with pytest.warns(LmerWarning, match="5 rows with missing values"):
        ref = lmer(formula, sleep)
    for fmt in ("parquet", "csv"):
        path = tmp_path / f"na.{fmt}"
        sleep.to_parquet(path) if fmt == "parquet" else sleep.to_csv(path, index=False)
        with pytest.warns(LmerWarning, match="5 rows with missing values dropped"):
            m = lmer(formula, path)
        assert m.nobs == 175 and m.ndropped == 5 and m.glance()["ndropped"].item() == 5
        _compare(m, ref)


ALIASED = {
    # a multiple of a numeric column
    "numeric": (
        "sleepstudy",
        ("Days2", lambda d: 2.0 * d["Days"]),
        "Reaction ~ Days + Days2 + (1 | Subject)",
    ),
    # a numeric column aliased with a factor: the intercept and sectorPublic
    "with-a-factor": (
        "hsb82",
        ("cath", lambda d: 3.0 * (d["sector"] == "Catholic") - 1.0),
        "mAch ~ sector + cses + cath + (1 | school)",
    ),
}


@pytest.mark.parametrize("name, added, formula", ALIASED.values(), ids=ALIASED)
def test_aliased_fixed_columns_are_dropped_with_the_same_names(name, added, formula):
    data = _text(load(name))
    column, values = added
    data[column] = values(data)
    with pytest.warns(LmerWarning, match="dropping 1 column"):
        ref = lmer(formula, data)
    with pytest.warns(LmerWarning, match=f"dropping 1 column / coefficient: {column}"):
        m = lmer(formula, duckdb.connect().from_df(data))
    _compare(m, ref)


def test_augment_is_a_relation_with_the_in_memory_fitted_values():
    sleep = _text(load("sleepstudy"))
    formula = "Reaction ~ Days + (Days | Subject)"
    m = lmer(formula, duckdb.connect().from_df(sleep))
    a = m.augment()
    assert isinstance(a, duckdb.DuckDBPyRelation)
    got = a.order("Subject, Days").fetchnumpy()
    ref = lmer(formula, sleep)
    order = np.lexsort((sleep["Days"], sleep["Subject"]))
    _close(got[".fitted"], ref.fitted().to_numpy()[order], 1e-6)
    _close(got[".resid"], ref.residuals().to_numpy()[order], 1e-5)
    _close(got[".fixed"], ref.predict(re=False).to_numpy()[order], 1e-6)


def test_summary_and_repr_name_the_source(files):
    m = lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", files["penicillin", "parquet"])
    assert "penicillin.parquet" in m.summary() and "Number of obs: 144" in str(m)
    assert repr(m).startswith("<SourceModel 'diameter ~ 1")


# ---- bad input --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sleep_rel():
    return duckdb.connect().from_df(_text(load("sleepstudy")))


@pytest.mark.parametrize(
    "formula, named",
    [
        ("Reaction ~ log(Days) + (1 | Subject)", "log(Days)"),
        ("Reaction ~ I(Days^2) + (1 | Subject)", "I(Days^2)"),
        ("Reaction ~ poly(Days, 2) + (1 | Subject)", "poly(Days, 2)"),
        ("log(Reaction) ~ Days + (1 | Subject)", "log(Reaction)"),
        ("Reaction ~ Days + (log(Days) | Subject)", "log(Days)"),
    ],
)
def test_unsupported_terms_are_named(sleep_rel, formula, named):
    with pytest.raises(FormulaError, match="not supported when fitting from a database") as err:
        lmer(formula, sleep_rel)
    assert named in str(err.value)


def test_other_unsupported_input_is_named(sleep_rel):
    with pytest.raises(FormulaError, match="offset"):
        lmer("Reaction ~ Days + offset(Days) + (1 | Subject)", sleep_rel)
    with pytest.raises(ValueError, match="non-numeric column 'Subject'"):
        lmer("Reaction ~ Days + (Subject | Days)", sleep_rel)
    with pytest.raises(ValueError, match="response 'Subject' must be numeric"):
        lmer("Subject ~ Days + (1 | Days)", sleep_rel)
    with pytest.raises(ValueError, match="no offset= or backend="):
        lmer("Reaction ~ Days + (1 | Subject)", sleep_rel, backend="statsmodels")


def test_missing_columns_are_named(sleep_rel, tmp_path):
    with pytest.raises(ValueError, match=r"column 'Dayz' .* not in the data.*did you mean 'Days'"):
        lmer("Reaction ~ Dayz + (1 | Subject)", sleep_rel)
    with pytest.raises(ValueError, match="column 'Subj' of the formula"):
        lmer("Reaction ~ Days + (1 | Subj)", sleep_rel)
    with pytest.raises(ValueError, match="column 'wt'"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep_rel, weights="wt")
    with pytest.raises(FileNotFoundError, match="no data file"):
        lmer("Reaction ~ Days + (1 | Subject)", str(tmp_path / "absent.parquet"))
    with pytest.raises(ValueError, match="cannot tell the format"):
        lmer("Reaction ~ Days + (1 | Subject)", str(tmp_path / "data.xlsx"))


def test_bad_values_are_refused():
    con = duckdb.connect()
    base = "SELECT range AS i, (range % 10) AS g, CAST(range AS DOUBLE) AS x"
    inf = con.sql(
        f"{base}, CASE WHEN range = 5 THEN 'inf'::DOUBLE ELSE range END AS y FROM range(50)"
    )
    with pytest.raises(ValueError, match="column 'y' has 1 infinite value"):
        lmer("y ~ x + (1 | g)", inf)
    neg = con.sql(f"{base}, x AS y, CASE WHEN range = 5 THEN -1.0 ELSE 1.0 END AS w FROM range(50)")
    with pytest.raises(ValueError, match="weights must be positive"):
        lmer("y ~ x + (1 | g)", neg, weights="w")
    one = con.sql(f"{base}, x AS y, 1 AS h FROM range(50)")
    with pytest.raises(ValueError, match="grouping factor 'h' has only 1 level"):
        lmer("y ~ x + (1 | h)", one)
    with pytest.raises(ValueError, match="grouping factor 'i' has 50 levels for 50"):
        lmer("y ~ x + (1 | i)", one)


# ---- the rows stay in DuckDB ----------------------------------------------------------------

SIMULATED = """
SELECT g, x, 1.0 + 2.0 * x + 0.5 * b + e AS y FROM (
    SELECT range % 1000 AS g,
           sqrt(-2 * ln(u1)) * cos(2 * pi() * u2) AS x,
           sqrt(-2 * ln(u3)) * cos(2 * pi() * u4) AS e,
           sqrt(-2 * ln(v1)) * cos(2 * pi() * v2) AS b
    FROM (
        SELECT range,
               (hash(range, 1) % 1000000007 + 0.5) / 1000000007 AS u1,
               (hash(range, 2) % 1000000007 + 0.5) / 1000000007 AS u2,
               (hash(range, 3) % 1000000007 + 0.5) / 1000000007 AS u3,
               (hash(range, 4) % 1000000007 + 0.5) / 1000000007 AS u4,
               (hash(range % 1000, 5) % 1000000007 + 0.5) / 1000000007 AS v1,
               (hash(range % 1000, 6) % 1000000007 + 0.5) / 1000000007 AS v2
        FROM range(1000000)
    )
)
"""


def test_a_million_rows_are_never_loaded_and_the_truth_is_recovered():
    rel = duckdb.connect().sql(SIMULATED)
    tracemalloc.start()
    try:
        m = lmer("y ~ x + (1 | g)", rel)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the rows (3 columns of 10^6 doubles) are 24 MB; Python never holds a row-sized array
    assert peak < 4_000_000, peak
    assert m.nobs == 1_000_000 and m.ngroups == {"g": 1000}
    assert m.fixef["x"] == pytest.approx(2.0, abs=0.005)
    assert m.fixef["(Intercept)"] == pytest.approx(1.0, abs=0.1)
    assert m.sigma == pytest.approx(1.0, abs=0.005)
    assert m.varcorr["sdcor"].iloc[0] == pytest.approx(0.5, abs=0.05)


def test_the_big_data_benchmark_script_runs_on_a_small_file(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bigdata", Path(__file__).resolve().parents[1] / "benchmarks" / "bigdata.py"
    )
    bigdata = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bigdata)
    path = str(tmp_path / "small.parquet")
    bigdata.generate(200_000, path)
    m = lmer("y ~ x1 + x2 + x3 + (1 | g)", path)
    assert m.nobs == 200_000
    truth = {"(Intercept)": 1.0, "x1": 0.5, "x2": -0.25, "x3": 0.1}
    for name, value in truth.items():
        assert m.fixef[name] == pytest.approx(value, abs=0.06 if name == "(Intercept)" else 0.01)
    assert m.sigma == pytest.approx(1.0, abs=0.01)


# ---- the same sums on Dask ------------------------------------------------------------------


def test_dask_fit_matches_the_in_memory_fit_on_a_local_cluster(case):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    formula, df = case
    ref = _quiet(lmer, formula, df)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False) as cluster,
        distributed.Client(cluster),
    ):
        m = _quiet(lmer, formula, dd.from_pandas(df, npartitions=4))
    _compare(m, ref)
    # the sums: the same deviance and estimates at the in-memory optimum
    assert m.devfun(ref.theta) == pytest.approx(ref.deviance, rel=1e-12)
    sol = solve_mixed(m.devfun, ref.theta)
    _close(sol.beta, ref.fixef.to_numpy(), 1e-9)
    for b, t in zip(sol.b, ref.solution.b, strict=True):
        _close(b, t, 1e-9)
    with pytest.raises(NotImplementedError, match="need a file or DuckDB relation"):
        m.augment()


def test_dask_drops_missing_rows_and_takes_weights():
    dd = pytest.importorskip("dask.dataframe")
    sleep = _text(load("sleepstudy"))
    sleep["w"] = np.random.default_rng(11).uniform(0.5, 2.0, len(sleep))
    sleep.loc[[3, 50], "Reaction"] = np.nan
    formula = "Reaction ~ Days + (Days | Subject)"
    ref = _quiet(lmer, formula, sleep, weights="w")
    m = _quiet(lmer, formula, dd.from_pandas(sleep, npartitions=5), weights="w")
    assert m.nobs == 178 and m.ndropped == 2
    _compare(m, ref)
    with pytest.raises(FormulaError, match="not supported"):
        lmer("Reaction ~ scale(Days) + (1 | Subject)", dd.from_pandas(sleep, npartitions=2))
    with pytest.raises(ValueError, match="column 'Dayz'"):
        lmer("Reaction ~ Dayz + (1 | Subject)", dd.from_pandas(sleep, npartitions=2))


def test_profile_intervals_from_a_relation_are_the_in_memory_ones() -> None:
    # the profile reuses the aggregated cross-products: no rows are needed
    dyes = load("dyestuff")
    formula = "Yield ~ 1 + (1 | Batch)"
    in_memory = confint(lmer(formula, dyes))
    from_sums = confint(lmer(formula, duckdb.connect().from_df(dyes)))
    np.testing.assert_allclose(from_sums.to_numpy(), in_memory.to_numpy(), rtol=1e-5)
    wald = confint(lmer(formula, duckdb.connect().from_df(dyes)), "Wald")
    assert wald.loc["(Intercept)"].notna().all() and wald.loc[".sig01"].isna().all()


def test_a_bootstrap_interval_needs_the_rows() -> None:
    m = lmer("Yield ~ 1 + (1 | Batch)", duckdb.connect().from_df(load("dyestuff")))
    with pytest.raises(ValueError, match="no rows to simulate"):
        confint(m, "boot", nsim=10, seed=1)


def test_dask_fit_on_a_cluster_of_worker_processes():
    # the partitions' sums are computed in other processes and sent back (pickled)
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    sleep = load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    ref = _quiet(lmer, formula, sleep)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        m = _quiet(lmer, formula, dd.from_pandas(sleep, npartitions=4))
    assert m.loglik == pytest.approx(ref.loglik, rel=1e-10)
    assert m.devfun(ref.theta) == pytest.approx(ref.deviance, rel=1e-12)
