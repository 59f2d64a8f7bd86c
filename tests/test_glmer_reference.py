"""glmer against lme4: every fixture model of scripts/lme4_reference_glmer.R.

The fixtures (tests/fixtures/lme4_glmer/, described in its README) are lme4's glmer fits with
its defaults. Tolerances are the issue's: logLik within 1e-3, fixed effects, their standard
errors and the random-effect SDs within 2e-3 relative.

lme4 1.1-31 leaves the log-likelihood of the saturated model out of ``logLik`` for nAGQ > 1
(lme4 issues #161, #567); the fixtures record it (``logLik_saturated``) and ours is on the
Laplace scale, so the two are compared with it added back.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmprimer import compare, glmer
from mlmprimer.datasets import load

FIXTURES = Path(__file__).parent / "fixtures" / "lme4_glmer"

pytestmark = pytest.mark.skipif(
    not (FIXTURES / "models.csv").exists(), reason="lme4 glmer fixtures not present"
)


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURES / name, keep_default_na=False, na_values=["NA"])


def _specs() -> list[str]:
    if not (FIXTURES / "models.csv").exists():
        return []
    return _read("models.csv")["model"].tolist()


_FITS: dict[str, object] = {}


def _fit(name: str):
    if name not in _FITS:
        spec = _read("models.csv").set_index("model").loc[name]
        kw = {}
        if spec["weights"]:
            kw["weights"] = spec["weights"]
        if spec["offset"]:
            kw["offset"] = spec["offset"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITS[name] = glmer(
                spec["formula"],
                load(spec["dataset"]),
                spec["family"],
                spec["link"],
                int(spec["nAGQ"]),
                **kw,
            )
    return _FITS[name]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


@pytest.mark.parametrize("name", _specs())
def test_loglik_and_information_criteria(name: str) -> None:
    spec = _read("models.csv").set_index("model").loc[name]
    m = _fit(name)
    ref = float(spec["logLik"])
    if int(spec["nAGQ"]) > 1:
        ref += float(spec["logLik_saturated"])
    assert abs(m.loglik - ref) < 1e-3
    assert m.nobs == int(spec["nobs"]) and m.npar == int(spec["npar"])
    assert m.deviance_residual_sum() == pytest.approx(float(spec["deviance"]), rel=1e-5)
    if int(spec["nAGQ"]) <= 1:
        assert abs(m.aic - float(spec["AIC"])) < 2e-3 and abs(m.bic - float(spec["BIC"])) < 2e-3
    assert m.singular == (str(spec["singular"]).upper() == "TRUE")


@pytest.mark.parametrize("name", _specs())
def test_fixed_effects_and_standard_errors(name: str) -> None:
    ref = _read("coefficients.csv").query("model == @name").set_index("term")
    m = _fit(name)
    assert list(m.fixef.index) == list(ref.index)
    assert _rel(m.fixef, ref["estimate"]) < 2e-3
    se = np.sqrt(np.diag(m.vcov.to_numpy()))
    assert _rel(se, ref["std.error"]) < 2e-3


@pytest.mark.parametrize("name", _specs())
def test_variance_components(name: str) -> None:
    ref = _read("varcorr.csv").query("model == @name")
    m = _fit(name)
    vc = m.varcorr
    assert vc["grp"].tolist() == ref["grp"].tolist()
    assert _rel(vc["sdcor"], ref["sdcor"]) < 2e-3


@pytest.mark.parametrize("name", _specs())
def test_conditional_modes_fitted_and_residuals(name: str) -> None:
    m = _fit(name)
    re = _read("ranef.csv").query("model == @name")
    for (grpvar, term), part in re.groupby(["grpvar", "term"], sort=False):
        modes = m.ranef[grpvar][term]
        modes.index = modes.index.astype(str)
        got = modes.reindex(part["grp"].astype(str))
        assert np.max(np.abs(got.to_numpy() - part["condval"].to_numpy())) < 5e-3
        sd = m.ranef_condsd[grpvar][term]
        sd.index = sd.index.astype(str)
        sd = sd.reindex(part["grp"].astype(str))
        assert _rel(sd, part["condsd"]) < 5e-3
    obs = _read("observations.csv").query("model == @name")
    rows = obs["row"].to_numpy() - 1
    np.testing.assert_allclose(m.design.y[rows], obs["y"], rtol=1e-12)
    np.testing.assert_allclose(m.weights.iloc[rows], obs["prior_weight"], rtol=1e-12)
    np.testing.assert_allclose(m.offset.iloc[rows], obs["offset"], atol=1e-12)
    np.testing.assert_allclose(m.fitted().iloc[rows], obs["fitted"], atol=2e-3)
    for kind in ("deviance", "pearson", "response", "working"):
        np.testing.assert_allclose(
            m.residuals(kind).iloc[rows], obs[f"resid_{kind}"], atol=5e-3, rtol=5e-3
        )


@pytest.mark.parametrize("name", _specs())
def test_predictions(name: str) -> None:
    spec = _read("models.csv").set_index("model").loc[name]
    m = _fit(name)
    pred = _read("predictions.csv").query("model == @name")
    data = load(spec["dataset"])
    for (re, kind), part in pred.groupby(["re", "type"]):
        rows = part["row"].to_numpy() - 1
        use_re = str(re).upper() == "TRUE"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = m.predict(data.iloc[rows], type=kind, re=use_re)
        np.testing.assert_allclose(got, part["value"], atol=2e-3, rtol=2e-3)


def _comparisons() -> list[str]:
    if not (FIXTURES / "anova.csv").exists():
        return []
    return list(dict.fromkeys(_read("anova.csv")["comparison"]))


@pytest.mark.parametrize("comparison", _comparisons())
def test_compare_is_lme4_anova(comparison: str) -> None:
    ref = _read("anova.csv").query("comparison == @comparison")
    small, big = ref["model"].tolist()
    tab = compare(_fit(small), _fit(big), names=[small, big])
    assert tab.index.tolist() == [small, big]
    assert tab["npar"].tolist() == ref["npar"].tolist()
    np.testing.assert_allclose(tab["logLik"], ref["logLik"], atol=1e-3)
    assert abs(tab["Chisq"].iloc[1] - ref["Chisq"].iloc[1]) < 2e-3
    assert int(tab["Df"].iloc[1]) == int(ref["Df"].iloc[1])
    assert tab["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["p.value"].iloc[1], rel=5e-3)


def _devfun_points() -> list[tuple[str, str]]:
    if not (FIXTURES / "devfun.csv").exists():
        return []
    d = _read("devfun.csv")
    return list(zip(d["model"], d["point"], strict=True))


@pytest.mark.parametrize(("name", "point"), _devfun_points())
def test_deviance_function_is_lme4s(name: str, point: str) -> None:
    """The deviance at lme4's optimum and at a point away from it, independent of optimisers."""
    row = _read("devfun.csv").query("model == @name and point == @point").iloc[0]
    spec = _read("models.csv").set_index("model").loc[name]
    pars = np.array([float(v) for v in str(row["parameters"]).split()])
    m = _fit(name)
    dev = m.devfun
    got = dev.stage1(pars) if int(spec["nAGQ"]) == 0 else dev.stage2(pars)
    ref = float(row["deviance"])
    if int(spec["nAGQ"]) > 1:
        ref -= 2 * float(spec["logLik_saturated"])
    assert abs(got - ref) < 2e-3
