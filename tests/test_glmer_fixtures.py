"""The lme4 glmer reference fixtures (tests/fixtures/lme4_glmer/) and the script that writes them.

scripts/lme4_reference_glmer.R fits generalized linear mixed models with lme4 on the course's
data; the files are described in tests/fixtures/lme4_glmer/README.md. The tests check that

- the fixtures are what the course's data give: the number of rows, the sum of the response,
  the responses and prior weights row by row, the levels of the random effects in R's order,
  and the saturated log-likelihood computed here from the data;
- their numbers obey the identities that hold for any glmer fit (AIC and BIC from logLik,
  standard errors from the covariance matrix, residuals and predictions from the fitted means
  and the link, variance components from theta, the likelihood-ratio test of anova());
- fits that lme4 documents as equal are equal (a binomial count and a weighted proportion; an
  offset in the formula and as an argument);
- re-running the R script (where R with lme4, mlmRev and MASS is installed; on CI it must be)
  reproduces the committed files.

mlmprimer.glmer itself is compared with the fixtures in tests/test_glmer_reference.py.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import r_setup
from scipy import stats

from mlmprimer import datasets

REPO = Path(__file__).resolve().parents[1]
R_SCRIPT = REPO / "scripts" / "lme4_reference_glmer.R"
R_PACKAGES = ("lme4", "mlmRev", "MASS")
FIXTURE_DIR = Path(__file__).parent / "fixtures" / "lme4_glmer"
FIXTURE_FILES = (
    "models.csv",
    "coefficients.csv",
    "vcov.csv",
    "theta.csv",
    "varcorr.csv",
    "ranef.csv",
    "observations.csv",
    "predictions.csv",
    "devfun.csv",
    "anova.csv",
)
RANEF_LEVELS = 60  # levels per grouping factor in ranef.csv (as in the R script)


def read_fixture(name: str, directory: Path = FIXTURE_DIR) -> pd.DataFrame:
    return r_setup.read_csv_fixture(directory / name)


MODELS = read_fixture("models.csv").set_index("model", drop=False)
MODEL_NAMES = MODELS.index.tolist()


def rows_of(name: str, model: str) -> pd.DataFrame:
    table = read_fixture(name)
    return table[table["model"] == model].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# The response, prior weights and offset of a model, from the Python side's data
# --------------------------------------------------------------------------------------------


def response(spec: pd.Series, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y as lme4 holds it, prior weights, offset) of a fixture model, computed here."""
    lhs = spec["formula"].split("~")[0].strip()
    n = len(data)
    offset = np.zeros(n)
    if "offset(log(size))" in spec["formula"] or spec["offset"] == "log(size)":
        offset = np.log(data["size"].to_numpy(float))
    if lhs in ("cbind(incidence, size - incidence)", "incidence / size"):
        size = data["size"].to_numpy(float)
        return data["incidence"].to_numpy(float) / size, size, offset
    if spec["weights"]:
        raise AssertionError(f"no rule for the weights {spec['weights']!r}")
    column = data[lhs]
    if isinstance(column.dtype, pd.CategoricalDtype):
        assert len(column.cat.categories) == 2, lhs
        return column.cat.codes.to_numpy(float), np.ones(n), offset  # first level = 0, as R
    return column.to_numpy(float), np.ones(n), offset


def link_functions(link: str):
    """(inverse link, derivative of the mean with respect to eta)."""
    if link == "logit":
        return stats.logistic.cdf, stats.logistic.pdf
    if link == "probit":
        return stats.norm.cdf, stats.norm.pdf
    if link == "cloglog":
        return (lambda e: -np.expm1(-np.exp(e))), (lambda e: np.exp(e - np.exp(e)))
    if link == "log":
        return np.exp, np.exp
    raise AssertionError(link)


def variance(family: str, mu: np.ndarray) -> np.ndarray:
    return mu * (1 - mu) if family == "binomial" else mu


def unit_deviance(family: str, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if family == "binomial":
            a = np.where(y > 0, y * np.log(y / mu), 0.0)
            b = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
        else:
            a = np.where(y > 0, y * np.log(y / mu), 0.0)
            b = -(y - mu)
    return 2 * w * (a + b)


# --------------------------------------------------------------------------------------------
# The fixtures and the data
# --------------------------------------------------------------------------------------------


def test_every_file_covers_every_model():
    assert sorted(p.name for p in FIXTURE_DIR.glob("*.csv")) == sorted(FIXTURE_FILES)
    assert MODELS.index.is_unique
    for name in FIXTURE_FILES:
        if name != "anova.csv":
            assert set(read_fixture(name)["model"]) == set(MODEL_NAMES), name
    assert set(read_fixture("anova.csv")["model"]) <= set(MODEL_NAMES)
    for spec in MODELS.itertuples():
        assert spec.dataset in datasets.registry()["name"].tolist()


def test_the_issue_asks_for_these_kinds_of_fits():
    assert {"logit", "probit", "cloglog", "log"} <= set(MODELS["link"])
    assert {0, 1, 9} <= set(MODELS["nAGQ"])
    assert set(MODELS["dataset"]) == {"cbpp", "verbagg", "grouseticks", "contraception", "epil"}
    crossed = MODELS.loc["verbagg_crossed", "formula"]
    assert "(1 | id)" in crossed and "(1 | item)" in crossed
    assert "(urban | district)" in MODELS.loc["contraception_slopes", "formula"]
    assert MODELS["formula"].str.contains(r"offset\(log\(", regex=True).any()


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_fixture_rows_are_the_course_data(model):
    spec = MODELS.loc[model]
    data = datasets.load(spec["dataset"])
    y, w, offset = response(spec, data)
    assert spec["nobs"] == len(data)
    assert spec["y_sum"] == pytest.approx(np.sum(y * w), rel=1e-12)
    obs = rows_of("observations.csv", model)
    k = len(obs)
    assert obs["row"].tolist() == list(range(1, k + 1)) and k == min(20, len(data))
    np.testing.assert_allclose(obs["y"], y[:k], rtol=1e-12)
    np.testing.assert_allclose(obs["prior_weight"], w[:k], rtol=1e-12)
    np.testing.assert_allclose(obs["offset"], offset[:k], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_saturated_loglik_from_the_data(model):
    spec = MODELS.loc[model]
    y, w, _ = response(spec, datasets.load(spec["dataset"]))
    if spec["family"] == "binomial":
        expected = stats.binom.logpmf(np.round(y * w), np.round(w), y).sum()
    else:
        expected = stats.poisson.logpmf(y, y).sum()
    assert spec["logLik_saturated"] == pytest.approx(expected, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_random_effect_levels_are_r_levels(model):
    spec = MODELS.loc[model]
    data = datasets.load(spec["dataset"])
    re_rows = rows_of("ranef.csv", model)
    assert re_rows["condsd"].gt(0).all()
    for (grpvar, _term), part in re_rows.groupby(["grpvar", "term"], sort=False):
        column = data[grpvar]
        if isinstance(column.dtype, pd.CategoricalDtype):
            levels = column.cat.categories.tolist()
        else:  # an integer column (epil's subject): lme4 makes it a factor, sorted
            levels = [str(v) for v in sorted(column.unique())]
        assert part["grp"].astype(str).tolist() == levels[:RANEF_LEVELS], (grpvar, _term)


# --------------------------------------------------------------------------------------------
# Identities of a glmer fit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_information_criteria(model):
    spec = MODELS.loc[model]
    assert spec["minus2logLik"] == pytest.approx(-2 * spec["logLik"], rel=1e-12)
    assert spec["AIC"] == pytest.approx(spec["minus2logLik"] + 2 * spec["npar"], rel=1e-12)
    bic = spec["minus2logLik"] + math.log(spec["nobs"]) * spec["npar"]
    assert spec["BIC"] == pytest.approx(bic, rel=1e-12)
    n_theta = len(rows_of("theta.csv", model))
    assert spec["npar"] == len(rows_of("coefficients.csv", model)) + n_theta


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_standard_errors_and_z_tests(model):
    coefs = rows_of("coefficients.csv", model)
    terms = coefs["term"].tolist()
    vc = rows_of("vcov.csv", model)
    V = vc.pivot(index="row", columns="col", values="value").loc[terms, terms].to_numpy()
    assert len(vc) == len(terms) ** 2
    np.testing.assert_allclose(V, V.T, rtol=1e-10)
    assert np.all(np.linalg.eigvalsh(V) > 0)
    np.testing.assert_allclose(np.sqrt(np.diag(V)), coefs["std.error"], rtol=1e-12)
    z = coefs["estimate"] / coefs["std.error"]
    np.testing.assert_allclose(coefs["statistic"], z, rtol=1e-12)
    np.testing.assert_allclose(coefs["p.value"], 2 * stats.norm.sf(np.abs(z)), rtol=1e-8)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_variance_components_from_theta(model):
    """Without a residual variance, sd = theta for (1 | g); T T' for a 2 x 2 template."""
    theta = rows_of("theta.csv", model).set_index("name")["value"]
    vc = rows_of("varcorr.csv", model)
    for grp, part in vc.groupby("grp", sort=False):
        names = [n for n in theta.index if n.startswith(f"{grp}.")]
        if len(part) == 1:
            assert part["sdcor"].iloc[0] == pytest.approx(theta[names[0]], rel=1e-10)
            assert part["vcov"].iloc[0] == pytest.approx(theta[names[0]] ** 2, rel=1e-10)
            continue
        t11, t21, t22 = (theta[n] for n in names)
        T = np.array([[t11, 0.0], [t21, t22]])
        cov = T @ T.T
        sd = np.sqrt(np.diag(cov))
        var_rows = part[part["var2"].isna()]
        cor_row = part[part["var2"].notna()].iloc[0]
        np.testing.assert_allclose(var_rows["vcov"], np.diag(cov), rtol=1e-10)
        np.testing.assert_allclose(var_rows["sdcor"], sd, rtol=1e-10)
        assert cor_row["vcov"] == pytest.approx(cov[0, 1], rel=1e-10)
        assert cor_row["sdcor"] == pytest.approx(cov[0, 1] / (sd[0] * sd[1]), rel=1e-10)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_residuals_from_fitted_means(model):
    spec = MODELS.loc[model]
    obs = rows_of("observations.csv", model)
    linkinv, mu_eta = link_functions(spec["link"])
    y, w, eta = obs["y"].to_numpy(), obs["prior_weight"].to_numpy(), obs["eta"].to_numpy()
    mu = obs["fitted"].to_numpy()
    np.testing.assert_allclose(mu, linkinv(eta), rtol=1e-10)
    np.testing.assert_allclose(obs["resid_response"], y - mu, rtol=1e-9, atol=1e-12)
    pearson = (y - mu) * np.sqrt(w / variance(spec["family"], mu))
    np.testing.assert_allclose(obs["resid_pearson"], pearson, rtol=1e-9, atol=1e-12)
    dev = np.sign(y - mu) * np.sqrt(unit_deviance(spec["family"], y, mu, w))
    np.testing.assert_allclose(obs["resid_deviance"], dev, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(obs["resid_working"], (y - mu) / mu_eta(eta), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_predictions(model):
    spec = MODELS.loc[model]
    linkinv, _ = link_functions(spec["link"])
    pred = rows_of("predictions.csv", model)
    obs = rows_of("observations.csv", model).set_index("row")
    assert set(zip(pred["re"], pred["type"], strict=True)) == {
        (False, "link"),
        (False, "response"),
        (True, "link"),
        (True, "response"),
    }
    wide = pred.pivot_table(index="row", columns=["re", "type"], values="value")
    for with_re in (False, True):
        np.testing.assert_allclose(
            wide[(with_re, "response")], linkinv(wide[(with_re, "link")]), rtol=1e-10
        )
    # with the random effects, newdata's rows predict the fit's own linear predictor; lme4's
    # predict() with newdata leaves out an offset given as glmer's argument (README)
    eta = obs.loc[wide.index, "eta"]
    if spec["offset"]:
        eta = eta - obs.loc[wide.index, "offset"]
    np.testing.assert_allclose(wide[(True, "link")], eta, rtol=1e-9)


def test_population_predictions_of_cbpp_are_the_fixed_effects():
    """cbpp's first rows are herd 1 in periods 1-4, then herd 2 in period 1."""
    beta = rows_of("coefficients.csv", "cbpp_laplace").set_index("term")["estimate"]
    pred = rows_of("predictions.csv", "cbpp_laplace")
    link = pred[~pred["re"] & (pred["type"] == "link")]["value"].to_numpy()
    b0 = beta["(Intercept)"]
    expected = [b0, b0 + beta["period2"], b0 + beta["period3"], b0 + beta["period4"], b0]
    np.testing.assert_allclose(link, expected, rtol=1e-10)
    assert datasets.load("cbpp")["period"].iloc[:5].tolist() == ["1", "2", "3", "4", "1"]
    # with an offset, the population prediction adds log(size)
    beta = rows_of("coefficients.csv", "cbpp_poisson_offset").set_index("term")["estimate"]
    pred = rows_of("predictions.csv", "cbpp_poisson_offset")
    first = pred[~pred["re"] & (pred["type"] == "link")]["value"].iloc[0]
    size = datasets.load("cbpp")["size"].iloc[0]
    assert first == pytest.approx(beta["(Intercept)"] + math.log(size), rel=1e-10)


def numbers(text: str) -> list[float]:
    return [float(v) for v in text.split()]


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_deviance_function_points(model):
    spec = MODELS.loc[model]
    points = rows_of("devfun.csv", model).set_index("point")
    assert points.index.tolist() == ["optimum", "shifted"]
    theta = rows_of("theta.csv", model)["value"].tolist()
    coefs = rows_of("coefficients.csv", model)
    beta = coefs["estimate"].tolist()
    optimum = numbers(points.loc["optimum", "parameters"])
    shifted = numbers(points.loc["shifted", "parameters"])
    if spec["nAGQ"] == 0:  # the first stage's function, of theta alone
        np.testing.assert_allclose(optimum, theta, rtol=1e-14)
        np.testing.assert_allclose(shifted, np.multiply(theta, 1.2), rtol=1e-14)
    else:
        np.testing.assert_allclose(optimum, theta + beta, rtol=1e-14)
        moved = np.r_[np.multiply(theta, 1.2), np.add(beta, coefs["std.error"] / 2)]
        np.testing.assert_allclose(shifted, moved, rtol=1e-13)
    # at lme4's optimum the function is the fit's -2 logLik; away from it, larger
    assert points.loc["optimum", "deviance"] == pytest.approx(spec["minus2logLik"], rel=1e-12)
    assert points.loc["shifted", "deviance"] > points.loc["optimum", "deviance"] + 0.1


def test_anova_is_the_likelihood_ratio_test():
    table = read_fixture("anova.csv")
    for _, pair in table.groupby("comparison", sort=False):
        small, big = pair.iloc[0], pair.iloc[1]
        for row in (small, big):
            spec = MODELS.loc[row["model"]]
            assert row["logLik"] == pytest.approx(spec["logLik"], rel=1e-12)
            assert row["npar"] == spec["npar"]
            assert row["deviance"] == pytest.approx(-2 * spec["logLik"], rel=1e-12)
        assert math.isnan(small["Chisq"]) and big["npar"] > small["npar"]
        assert big["Chisq"] == pytest.approx(small["deviance"] - big["deviance"], rel=1e-10)
        assert big["Df"] == big["npar"] - small["npar"]
        assert big["p.value"] == pytest.approx(stats.chi2.sf(big["Chisq"], big["Df"]), rel=1e-8)


def test_equivalent_fits_agree():
    """lme4's ?cbpp: a count and a weighted proportion are the same fit (to 1e-5)."""
    for a, b in (
        ("cbpp_laplace", "cbpp_proportion"),
        ("cbpp_poisson_offset", "cbpp_poisson_offset_arg"),
    ):
        assert MODELS.loc[a, "logLik"] == pytest.approx(MODELS.loc[b, "logLik"], rel=1e-8)
        for name, col in (("coefficients.csv", "estimate"), ("theta.csv", "value")):
            np.testing.assert_allclose(rows_of(name, a)[col], rows_of(name, b)[col], rtol=1e-5)


def test_quadrature_loglik_scale_is_documented():
    """nAGQ > 1: lme4 1.1-31 leaves the saturated log-likelihood out (README)."""
    agq, laplace = MODELS.loc["cbpp_agq9"], MODELS.loc["cbpp_laplace"]
    assert agq["logLik"] > laplace["logLik"] + 30
    on_laplace_scale = agq["logLik"] + agq["logLik_saturated"]
    assert abs(on_laplace_scale - laplace["logLik"]) < 0.1


def test_only_the_documented_fit_draws_lme4_warnings():
    warned = MODELS[MODELS["conv_messages"] != ""].index.tolist()
    assert warned == ["contraception_slopes"]
    assert (MODELS.loc[warned, "conv_code"] != 0).all()
    assert (MODELS.drop(index=warned)["conv_code"] == 0).all()
    assert not MODELS["singular"].any()


# --------------------------------------------------------------------------------------------
# The committed fixtures are what lme4 gives today
# --------------------------------------------------------------------------------------------


def without_numbers(text: str) -> str:
    return re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", text)


def same_messages(got: pd.Series, want: pd.Series, name: str) -> None:
    """Convergence messages agree but for their numbers (max|grad| = ...: they move)."""
    assert [without_numbers(s) for s in got] == [without_numbers(s) for s in want], name


def same_parameters(got: pd.Series, want: pd.Series, name: str) -> None:
    """Numbers written as text, space-separated, agree to 1e-3."""
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(numbers(g), numbers(w), rtol=1e-3, atol=1e-6)


def rerun_tolerance(name: str, want: pd.DataFrame, col: str) -> np.ndarray | None:
    """The absolute tolerance of a re-run's column (see r_setup.same_table); None: exact.

    lme4 on another CPU (or with another BLAS thread count) stops at a slightly different
    optimum: for numbers near 0 (a conditional mode of a group near the average) agreement to a
    thousandth of the number's own uncertainty.
    """
    if not pd.api.types.is_float_dtype(want[col]):
        return None
    scale = want["condsd"] if col == "condval" else pd.Series(0.0, index=want.index)
    if name == "vcov.csv":  # a covariance near 0: on the scale of the two SEs it joins
        scale = pd.Series(r_setup.vcov_scale(want), index=want.index)
    # a number near 0 (a linear predictor): to 1e-3 of the column's typical size
    typical = 1e-3 * float(np.nanmedian(np.abs(want[col].to_numpy(dtype=float))))
    return np.fmax(np.fmax(1e-6, 1e-3 * scale.to_numpy(dtype=float)), typical)


def rerun_same(got: pd.DataFrame, want: pd.DataFrame, name: str) -> None:
    r_setup.same_table(
        got,
        want,
        name,
        tolerance=rerun_tolerance,
        columns={"conv_messages": same_messages, "parameters": same_parameters},
    )


@pytest.mark.lme4
def test_rerun_of_the_r_script_reproduces_the_fixtures(tmp_path):
    r_setup.assert_rerun_reproduces(
        R_SCRIPT, R_PACKAGES, tmp_path, FIXTURE_DIR, rerun_same, names=FIXTURE_FILES
    )
