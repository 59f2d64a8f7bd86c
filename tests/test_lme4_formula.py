"""mlmprimer.lmer against lme4 on R's formula language, prior weights, offsets and update().

The fixtures in ``tests/fixtures/lme4_formula`` are written by
``scripts/lme4_reference_formula.R`` (lme4 on the R packages' sleepstudy and Hsb82, and on data
the script simulates and writes into the fixture). The tests check that

- ``mlmprimer.lmer`` reproduces lme4's estimates: fixed effects to 1e-5 relative, variances to
  1e-4 relative, the log-likelihood to 1e-6 relative, with lme4's coefficient names;
- ``update()`` gives the formula lme4's ``update()`` gives, and ``summary()`` prints lme4's
  "Correlation of Fixed Effects" block character for character;
- re-running the R script (when Rscript is available; on CI it must be) reproduces the fixtures.
"""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import r_setup

import mlmprimer
from mlmprimer import datasets

pytestmark = pytest.mark.lme4

REPO = Path(__file__).resolve().parents[1]
R_SCRIPT = REPO / "scripts" / "lme4_reference_formula.R"
FIXTURE_DIR = Path(__file__).parent / "fixtures" / "lme4_formula"
FIXTURES = sorted(FIXTURE_DIR.glob("*.json"))

FIXEF_REL = 1e-5
VARIANCE_REL = 1e-4
LOGLIK_REL = 1e-6


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def fixture_data(fx):
    """The rows lme4 fitted: a course data set, or the simulated columns in the fixture."""
    if fx["data"] in datasets.registry()["name"].tolist():
        return datasets.load(fx["data"])
    columns = {}
    for name, col in fx["columns"].items():
        if col["type"] == "factor":
            columns[name] = pd.Categorical(col["values"], categories=col["levels"])
        else:
            columns[name] = np.asarray(col["values"], dtype=float)
    return pd.DataFrame(columns)


def fit(fx):
    kwargs = {}
    if fx["weights"] is not None:
        kwargs["weights"] = np.asarray(fx["weights"], dtype=float)
    if fx["offset"] is not None:
        kwargs["offset"] = np.asarray(fx["offset"], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these models deserves a warning
        m = mlmprimer.lmer(fx["formula"], fixture_data(fx), REML=fx["REML"], **kwargs)
        if fx["update"] is not None:
            m = m.update(fx["update"])
    return m


@pytest.fixture(scope="module", params=FIXTURES, ids=[p.stem for p in FIXTURES])
def case(request):
    fx = read_json(request.param)
    return fx, fit(fx)


def test_there_are_fixtures():
    assert len(FIXTURES) >= 15


def test_fixed_effects_match_lme4(case):
    fx, m = case
    assert list(m.fixef.index) == list(fx["fixef"])  # lme4's names, in lme4's order
    for term, want in fx["fixef"].items():
        assert math.isclose(m.fixef[term], want, rel_tol=FIXEF_REL), (term, m.fixef[term], want)
    se = np.sqrt(np.diag(m.vcov.to_numpy()))
    np.testing.assert_allclose(se, list(fx["fixef_se"].values()), rtol=VARIANCE_REL)


def test_variances_match_lme4(case):
    fx, m = case
    vc = m.varcorr
    keys = [
        (g, None if pd.isna(a) else a, None if pd.isna(b) else b)
        for g, a, b in zip(vc.grp, vc.var1, vc.var2, strict=True)
    ]
    assert keys == [(r["grp"], r["var1"], r["var2"]) for r in fx["varcorr"]]
    for row, got, sd in zip(fx["varcorr"], vc.vcov, vc.sdcor, strict=True):
        if row["var2"] is None:
            assert math.isclose(got, row["vcov"], rel_tol=VARIANCE_REL), (row, got)
        else:
            assert math.isclose(sd, row["sdcor"], abs_tol=VARIANCE_REL), (row, sd)
    assert math.isclose(m.sigma**2, fx["sigma"] ** 2, rel_tol=VARIANCE_REL)


def test_likelihood_matches_lme4(case):
    fx, m = case
    assert math.isclose(m.loglik, fx["logLik"], rel_tol=LOGLIK_REL), (m.loglik, fx["logLik"])
    assert math.isclose(m.deviance, fx["deviance"], rel_tol=LOGLIK_REL)
    assert m.npar == fx["df"]
    assert m.nobs == fx["nobs"]
    assert m.ngroups == fx["ngroups"]
    assert m.singular is fx["isSingular"]


def test_fitted_values_match_lme4(case):
    fx, m = case
    # lme4's fitted values include the offset
    np.testing.assert_allclose(m.fitted().to_numpy()[:6], fx["fitted_head"], rtol=1e-5)


def test_predictions_for_new_data_match_lme4(case):
    fx, m = case
    if "newdata" not in fx:
        pytest.skip("no new data for this model")
    new = pd.DataFrame(fx["newdata"])
    # poly() and scale() use the fit data's polynomials and centre on new data, as R
    np.testing.assert_allclose(m.predict(new, re=False), fx["predict_fixed"], rtol=1e-6)


def test_updated_formula_is_lme4s(case):
    fx, m = case
    if fx["update"] is None:
        pytest.skip("not an update")
    assert m.formula == fx["formula_fitted"]


def correlation_block(lines):
    if "Correlation of Fixed Effects:" not in lines:
        return None
    start = lines.index("Correlation of Fixed Effects:") + 1
    block = []
    for line in lines[start:]:
        if not line or line.startswith(("optimizer", "fit warnings")):
            break
        block.append(line)
    return block


def test_summary_prints_lme4s_correlation_block(case):
    fx, m = case
    ours = correlation_block(str(m.summary()).splitlines())
    theirs = correlation_block(fx["summary_print"])
    assert ours == theirs


# --------------------------------------------------------------------------------------------
# The committed fixtures are what lme4 gives today
# --------------------------------------------------------------------------------------------

R_PACKAGES = ("lme4", "mlmRev")
RUN_ONLY_KEYS = {"versions", "summary_print"}  # printed text is compared above, via the fit


def same(got, want, path=""):
    """Fixture entries agree: the log-likelihood to 1e-6, other numbers to 1e-3 (other CPUs)."""
    where = path or "fixture"
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for key in want:
            same(got[key], want[key], f"{path}.{key}" if path else key)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            same(g, w, f"{path}[{i}]")
    elif isinstance(want, bool) or want is None or isinstance(want, str):
        assert got == want, f"{where}: {got!r} != {want!r}"
    else:
        rel = 1e-6 if path in ("logLik", "deviance") else 1e-3
        assert math.isclose(got, want, rel_tol=rel, abs_tol=1e-8), f"{where}: {got} != {want}"


def read_rerun(path):
    """A fixture file without the entries that change from run to run."""
    return {k: v for k, v in read_json(path).items() if k not in RUN_ONLY_KEYS}


def test_rerun_of_the_r_script_reproduces_the_fixtures(tmp_path):
    r_setup.assert_rerun_reproduces(
        R_SCRIPT,
        R_PACKAGES,
        tmp_path,
        FIXTURE_DIR,
        lambda got, want, name: same(got, want),
        read=read_rerun,
        pattern="*.json",
        course_data=False,
    )
