"""mlmprimer.ddf against lmerTest (Satterthwaite) and pbkrtest (Kenward-Roger).

The fixtures in tests/fixtures/lme4_ddf/ are written by scripts/lme4_reference_ddf.R from the
rows the Python side fits (see its header). The tests check that

- ``satterthwaite``, ``kenward_roger`` and ``ftest`` reproduce lmerTest's and pbkrtest's
  degrees of freedom, standard errors (Kenward-Roger: from the adjusted covariance), t and F
  statistics and p-values on every fixture model;
- the degrees of freedom are the known ones in a balanced one-way design (simulated);
- bad input is refused with a message naming the problem;
- re-running the R script (when R with lmerTest and pbkrtest is installed; on CI it must be)
  reproduces the committed fixtures.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import r_setup
import scipy.sparse as sp
from scipy import stats

import mlmprimer
from mlmprimer import datasets, ddf

pytestmark = pytest.mark.lme4

REPO = Path(__file__).resolve().parents[1]
R_SCRIPT = REPO / "scripts" / "lme4_reference_ddf.R"
FIXTURE_DIR = Path(__file__).parent / "fixtures" / "lme4_ddf"
FIXTURE_FILES = (
    "models.csv",
    "coefficients.csv",
    "vcov.csv",
    "varpar.csv",
    "ftests.csv",
    "simulated.csv",
)

# Required: df within 1 %, standard errors within 1e-3 (relative). Our fits and lme4's stop at
# slightly different optima, which moves the results by up to about 1e-4 (the Hsb82 models,
# whose likelihood is flat: lme4 itself moves its estimates by 1e-4 when the data change in the
# 16th digit); the tolerances below are tighter than required and above that noise.
DF_REL = 2e-3
SE_REL = 5e-4
ESTIMATE_REL = 1e-3  # estimates and t statistics, as tests/test_lme4_reference.py
P_REL = 1e-2  # p-values also move with the df

# The rows of the fixtures' subsets and prior weights (as in the R script).
SUBSETS = {"first_40_schools": 40}
WEIGHTS = {"cycle4": (0.5, 1.0, 2.0, 4.0)}


def read_fixture(name: str, directory: Path = FIXTURE_DIR) -> pd.DataFrame:
    return r_setup.read_csv_fixture(directory / name)


MODELS = read_fixture("models.csv")


def model_data(spec: pd.Series) -> pd.DataFrame:
    if spec["dataset"] == "simulated":  # written by the R script
        data = read_fixture("simulated.csv")
        data["g"] = pd.Categorical(data["g"])
        return data
    data = datasets.load(spec["dataset"])
    if spec["subset"]:
        keep = data["school"].cat.categories[: SUBSETS[spec["subset"]]]
        data = data[data["school"].isin(keep)].reset_index(drop=True)
        data["school"] = data["school"].cat.remove_unused_categories()
    return data


@functools.cache
def fitted(name: str):
    spec = MODELS.set_index("model").loc[name]
    data = model_data(spec)
    weights = None
    if spec["weights"]:
        weights = np.resize(np.array(WEIGHTS[spec["weights"]]), len(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mlmprimer.lmer(spec["formula"], data, REML=bool(spec["REML"]), weights=weights)
    assert m.singular is bool(spec["singular"]), name
    assert all("singular" in str(w.message) for w in caught), [str(w.message) for w in caught]
    response = spec["formula"].split("~")[0].strip()
    assert m.nobs == spec["nobs"], name
    assert data[response].sum() == pytest.approx(spec["y_sum"], rel=1e-12, abs=1e-9), name
    return m


def cases(method: str) -> list[str]:
    coefs = read_fixture("coefficients.csv")
    return sorted(set(coefs.loc[coefs["method"] == method, "model"]))


FUNCTIONS = {"Satterthwaite": ddf.satterthwaite, "Kenward-Roger": ddf.kenward_roger}


def test_fixtures_cover_the_required_models():
    names = set(MODELS["model"])
    assert {"sleep_slopes", "sleep_intercepts", "hsb_slopes", "hsb_cross_level"} <= names
    assert {"penicillin", "pastes", "machines", "simulated_singular"} <= names
    assert MODELS.set_index("model")["singular"].to_dict()["simulated_singular"]
    assert set(cases("Satterthwaite")) == names
    assert {"sleep_slopes", "hsb_cross_level", "penicillin", "machines"} <= set(
        cases("Kenward-Roger")
    )
    ftests = read_fixture("ftests.csv")
    assert ((ftests["source"] == "anova") & (ftests["numdf"] == 2)).any()


@pytest.mark.parametrize(
    ("method", "name"),
    [(m, n) for m in ("Satterthwaite", "Kenward-Roger") for n in cases(m)],
)
def test_t_tests_match_r(method, name):
    want = read_fixture("coefficients.csv")
    want = want[(want["model"] == name) & (want["method"] == method)].set_index("term")
    got = FUNCTIONS[method](fitted(name))
    assert got.columns.tolist() == ["term", "estimate", "std.error", "df", "statistic", "p.value"]
    assert got["term"].tolist() == want.index.tolist()
    got = got.set_index("term")
    np.testing.assert_allclose(got["estimate"], want["estimate"], rtol=ESTIMATE_REL, atol=1e-4)
    np.testing.assert_allclose(got["std.error"], want["std.error"], rtol=SE_REL)
    np.testing.assert_allclose(got["df"], want["df"], rtol=DF_REL)
    np.testing.assert_allclose(got["statistic"], want["statistic"], rtol=ESTIMATE_REL)
    np.testing.assert_allclose(got["p.value"], want["p.value"], rtol=P_REL)


@pytest.mark.parametrize(
    ("method", "name"), [("Satterthwaite", "hsb_cross_level"), ("Kenward-Roger", "machines")]
)
def test_tidy_with_ddf_reports_rs_numbers(method, name):
    want = read_fixture("coefficients.csv")
    want = want[(want["model"] == name) & (want["method"] == method)].set_index("term")
    m = fitted(name)
    out = m.tidy(conf_int=True, ddf=method)
    fixed = out[out["effect"] == "fixed"].set_index("term")
    assert fixed.index.tolist() == want.index.tolist()
    np.testing.assert_allclose(fixed["df"], want["df"], rtol=DF_REL)
    np.testing.assert_allclose(fixed["std.error"], want["std.error"], rtol=SE_REL)
    np.testing.assert_allclose(fixed["p.value"], want["p.value"], rtol=P_REL)
    # the Wald interval uses the t distribution with these df, so it agrees with the t test
    q = stats.t.ppf(0.975, want["df"])
    np.testing.assert_allclose(
        fixed["conf.high"] - fixed["estimate"], q * want["std.error"], rtol=1e-3
    )
    assert out.loc[out["effect"] == "ran_pars", ["df", "p.value"]].isna().all().all()
    plain = m.tidy(effects="fixed")
    assert "df" not in plain.columns and "p.value" not in plain.columns
    with pytest.raises(ValueError, match="ran_vals"):
        m.tidy(effects="ran_vals", ddf=method)
    with pytest.raises(ValueError, match="Satterthwaite"):
        m.tidy(ddf="containment")


def matrix(table: pd.DataFrame, name: str, kind: str) -> pd.DataFrame:
    rows = table[(table["model"] == name) & (table["kind"] == kind)]
    return rows.pivot(index="row", columns="col", values="value")


@pytest.mark.parametrize("name", cases("Kenward-Roger"))
def test_kenward_roger_adjusted_covariance_matches_pbkrtest(name):
    m = fitted(name)
    table = read_fixture("vcov.csv")
    terms = list(m.fixef.index)
    want = matrix(table, name, "Kenward-Roger").loc[terms, terms].to_numpy()
    unadjusted = matrix(table, name, "unadjusted").loc[terms, terms].to_numpy()
    parts = ddf._kenward_roger_parts(m)
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
    np.testing.assert_allclose(parts.vcov / scale, unadjusted / scale, atol=2 * SE_REL)
    np.testing.assert_allclose(parts.vcov_adj / scale, want / scale, atol=2 * SE_REL)
    # on these models the adjustment adds a positive semi-definite matrix: no standard error
    # of any contrast shrinks
    assert np.linalg.eigvalsh(want - unadjusted).min() > -1e-10 * np.abs(want).max()


@pytest.mark.parametrize("name", cases("Satterthwaite"))
def test_varpar_covariance_matches_lmertest(name):
    m = fitted(name)
    want = matrix(read_fixture("varpar.csv"), name, "varpar")
    order = [*m.design.theta_names, "sigma"]
    want = want.loc[order, order].to_numpy()
    got = ddf._satterthwaite_parts(m).varpar_cov
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
    np.testing.assert_allclose(got / scale, want / scale, atol=DF_REL)


def parse_matrix(text: str) -> np.ndarray:
    return np.array([[float(x) for x in row.split()] for row in text.split(";")])


FTESTS = read_fixture("ftests.csv")


@pytest.mark.parametrize(
    "row", [r for _, r in FTESTS.iterrows()], ids=lambda r: f"{r.model}-{r.method}-{r.source}"
)
def test_f_tests_match_r(row):
    got = ddf.ftest(fitted(row["model"]), parse_matrix(row["L"]), method=row["method"])
    assert got.columns.tolist() == ["statistic", "NumDF", "DenDF", "p.value"]
    got = got.iloc[0]
    assert got["NumDF"] == row["numdf"]
    assert got["statistic"] == pytest.approx(row["statistic"], rel=ESTIMATE_REL)
    assert got["DenDF"] == pytest.approx(row["dendf"], rel=DF_REL)
    assert got["p.value"] == pytest.approx(row["p.value"], rel=P_REL)


def test_one_row_f_test_is_the_squared_t_test():
    m = fitted("hsb_cross_level")
    for method, fun in FUNCTIONS.items():
        t = fun(m).set_index("term").loc["sectorCatholic:cses"]
        f = ddf.ftest(m, pd.DataFrame({"sectorCatholic:cses": [1.0]}), method=method).iloc[0]
        assert f["statistic"] == pytest.approx(t["statistic"] ** 2, rel=1e-10)
        assert f["DenDF"] == pytest.approx(t["df"], rel=1e-10)
        assert f["p.value"] == pytest.approx(t["p.value"], rel=1e-8)


def test_contrast_rows_by_name_and_ddf_table():
    m = fitted("machines")
    L = pd.DataFrame({"MachineB": [1.0, 0.0], "MachineC": [-1.0, 1.0]}, index=["B-C", "C"])
    got = ddf.satterthwaite(m, L).set_index("term")
    full = ddf.satterthwaite(m).set_index("term")
    assert got.index.tolist() == ["B-C", "C"]
    assert got.loc["C", "df"] == pytest.approx(full.loc["MachineC", "df"], rel=1e-12)
    beta = m.fixef
    assert got.loc["B-C", "estimate"] == pytest.approx(beta["MachineB"] - beta["MachineC"])
    one = ddf.kenward_roger(m, pd.Series({"MachineC": 1.0, "MachineB": -1.0}, name="C-B"))
    assert one["term"].tolist() == ["C-B"]
    assert one["estimate"].iloc[0] == pytest.approx(beta["MachineC"] - beta["MachineB"])
    for method, fun in FUNCTIONS.items():
        table = ddf.ddf_table(m, method)
        assert table.index.tolist() == list(m.fixef.index)
        assert table.columns.tolist() == ["std.error", "df", "statistic", "p.value"]
        pd.testing.assert_frame_equal(table, fun(m).set_index("term").drop(columns="estimate"))


def test_numerical_derivatives_against_closed_forms():
    # f(x) = exp(x0) sin(x1) + x0 x2^2 at a point with one coordinate 0 (absolute steps there)
    x = np.array([0.3, 1.2, 0.0])

    def f(v):
        return np.exp(v[0]) * np.sin(v[1]) + v[0] * v[2] ** 2

    e, s, c = np.exp(x[0]), np.sin(x[1]), np.cos(x[1])
    hessian = np.array(
        [
            [e * s, e * c, 2 * x[2]],
            [e * c, -e * s, 0.0],
            [2 * x[2], 0.0, 2 * x[0]],
        ]
    )
    # a second difference over an absolute step of 1e-4 keeps about 6 digits
    np.testing.assert_allclose(ddf._hessian(f, x), hessian, rtol=1e-5, atol=1e-8)
    gradient = np.array([[e * s + x[2] ** 2, e * c, 2 * x[0] * x[2]]])
    np.testing.assert_allclose(ddf._jacobian(lambda v: [f(v)], x), gradient, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("k", "rest"), [(6, 3), (5, 0), (2, 6)])
def test_sparse_factorisation_solves_and_gives_the_log_determinant(k, rest):
    # a leading diagonal block of k columns (eliminated first when it is at least half of A)
    rng = np.random.default_rng(k + 10 * rest)
    q = k + rest
    M = rng.normal(size=(q, q))
    A = M @ M.T + q * np.eye(q)
    A[:k, :k] = np.diag(np.diag(A)[:k])
    A += 3 * q * np.eye(q)  # still positive definite
    assert ddf._diagonal_lead(sp.csc_matrix(A)) >= min(k, q)
    solve, logdet = ddf._factor(sp.csc_matrix(A))
    r = rng.normal(size=(q, 3))
    np.testing.assert_allclose(solve(r), np.linalg.solve(A, r), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(solve(r[:, 0]), np.linalg.solve(A, r[:, 0]), rtol=1e-10)
    assert logdet == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-12)


# --------------------------------------------------------------------------------------------
# Known truth: a balanced one-way design
# --------------------------------------------------------------------------------------------


def test_balanced_one_way_design_has_the_textbook_degrees_of_freedom():
    # k groups of m; x takes the same values, centred, in every group. The grand mean is
    # tested against the between-group mean square (k - 1 df), the within-group slope against
    # the residual mean square (k (m - 1) - 1 df); Satterthwaite and Kenward-Roger give these
    # exactly.
    rng = np.random.default_rng(20240611)
    k, m = 9, 6
    group = np.repeat(np.arange(k), m)
    x = np.tile(np.arange(m, dtype=float) - (m - 1) / 2, k)
    y = 10 + 0.5 * x + rng.normal(0, 2.0, k)[group] + rng.normal(0, 1.0, k * m)
    data = pd.DataFrame({"y": y, "x": x, "g": pd.Categorical([f"g{j}" for j in group])})
    fit = mlmprimer.lmer("y ~ x + (1 | g)", data)
    assert not fit.singular
    for fun in FUNCTIONS.values():
        df = fun(fit).set_index("term")["df"]
        assert df["(Intercept)"] == pytest.approx(k - 1, rel=1e-5)
        assert df["x"] == pytest.approx(k * (m - 1) - 1, rel=1e-5)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def test_kenward_roger_refuses_an_ml_fit():
    m = fitted("sleep_slopes_ml")
    with pytest.raises(ValueError, match="Kenward-Roger needs a REML fit"):
        ddf.kenward_roger(m)
    with pytest.raises(ValueError, match="REML"):
        ddf.ftest(m, [[0, 1]], method="Kenward-Roger")
    assert ddf.satterthwaite(m)["df"].gt(0).all()  # Satterthwaite works for ML fits


def test_kenward_roger_with_prior_weights_is_not_implemented():
    with pytest.raises(NotImplementedError, match="prior weights"):
        ddf.kenward_roger(fitted("sleep_weights"))


def test_kenward_roger_refuses_a_model_too_large_for_dense_matrices(monkeypatch):
    m = fitted("sleep_slopes")  # p + q = 2 + 36
    monkeypatch.setattr(ddf, "_KR_MAX_SIZE", 37)
    with pytest.raises(NotImplementedError, match="p \\+ q = 38.*Satterthwaite"):
        ddf.kenward_roger(m)
    assert ddf.satterthwaite(m)["df"].gt(0).all()


def test_unknown_method():
    m = fitted("sleep_intercepts")
    with pytest.raises(ValueError, match="unknown method 'satterwaite'.*'Satterthwaite'"):
        ddf.ddf_table(m, "satterwaite")
    with pytest.raises(ValueError, match="unknown method"):
        ddf.ftest(m, [[0, 1]], method="KR2")
    assert ddf.ddf_table(m, "kenward-roger").shape == (2, 4)  # case does not matter


def test_bad_contrast_matrices():
    m = fitted("machines")
    with pytest.raises(ValueError, match="L has 2 columns but the model has 3 fixed effects"):
        ddf.satterthwaite(m, [[0, 1]])
    with pytest.raises(ValueError, match=r"columns of L \['MachineD'\] are not fixed effects"):
        ddf.kenward_roger(m, pd.DataFrame({"MachineD": [1.0]}))
    with pytest.raises(ValueError, match="all zero"):
        ddf.satterthwaite(m, [[0, 0, 0]])
    with pytest.raises(ValueError, match="linearly dependent"):
        ddf.ftest(m, [[0, 1, 0], [0, 2, 0]])
    with pytest.raises(ValueError, match="missing or infinite"):
        ddf.ftest(m, [[0, np.nan, 1]])


# --------------------------------------------------------------------------------------------
# The committed fixtures are what lmerTest and pbkrtest give today
# --------------------------------------------------------------------------------------------

R_PACKAGES = ("lme4", "nlme", "mlmRev", "lmerTest", "pbkrtest")


def rerun_tolerance(name: str, want: pd.DataFrame, col: str) -> np.ndarray | float | None:
    """The absolute tolerance of a re-run's column (see r_setup.same_table); None: exact."""
    if not pd.api.types.is_numeric_dtype(want[col]) or pd.api.types.is_bool_dtype(want[col]):
        return None
    # a covariance near 0: on the scale of the two standard errors it joins
    if name in ("vcov.csv", "varpar.csv"):
        return np.maximum(1e-10, 1e-3 * r_setup.vcov_scale(want))
    return 1e-10


def rerun_same(got: pd.DataFrame, want: pd.DataFrame, name: str) -> None:
    """A re-run table agrees with the committed one (lme4 on another CPU: see above)."""
    r_setup.same_table(got, want, name, tolerance=rerun_tolerance)


def test_rerun_of_the_r_script_reproduces_the_fixtures(tmp_path):
    r_setup.assert_rerun_reproduces(
        R_SCRIPT, R_PACKAGES, tmp_path, FIXTURE_DIR, rerun_same, names=FIXTURE_FILES
    )
