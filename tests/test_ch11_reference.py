"""Chapter 11's growth models against lme4 and nlme.

The fixtures in tests/fixtures/lme4_ch11/ are written by scripts/lme4_reference_ch11.R: lme4's fits
of the Oxford boys' linear and quadratic growth and of the sleep study from its baseline day, and
nlme's fits with and without AR(1) residuals (corAR1), which the chapter quotes because neither
lme4 nor mlmprimer.lmer has residual correlation structures. The tests check that

- mlmprimer.lmer reproduces lme4's fixed effects, SDs, correlations, sigma and log-likelihoods;
- the likelihood-ratio test of quadratic against linear growth is lme4's anova();
- nlme's fits without a correlation structure are the lme4 models (so the AR(1) fits differ from
  them only by corAR1), and the AR(1) numbers are of the size the chapter describes;
- re-running the R script (where R is installed) reproduces the committed fixtures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import r_setup

import mlmprimer as mlm
from mlmprimer import datasets

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DIR = Path(__file__).parent / "fixtures" / "lme4_ch11"
R_SCRIPT = REPO / "scripts" / "lme4_reference_ch11.R"
FIXTURE_FILES = ("anova.csv", "lmer.csv", "nlme.csv")
R_PACKAGES = ("lme4", "nlme")


def read_fixture(name: str, directory: Path = FIXTURE_DIR) -> pd.DataFrame:
    return pd.read_csv(directory / name, keep_default_na=False)


def growth_data() -> dict[str, pd.DataFrame]:
    """The data of the R script: Oxboys with age^2, the sleep study from day 2 with dep."""
    ox = datasets.load("oxboys")
    ox["age2"] = ox["age"] ** 2
    sleep = datasets.load("sleepstudy")
    sleep = sleep[sleep["Days"] >= 2].reset_index(drop=True)
    sleep["dep"] = sleep["Days"] - 2
    return {"ox": ox, "sleep": sleep}


FORMULAS = {
    "ox_linear": ("ox", "height ~ age + (age | Subject)"),
    "ox_quadratic": ("ox", "height ~ age + age2 + (age + age2 | Subject)"),
    "sleep_dep": ("sleep", "Reaction ~ dep + (dep | Subject)"),
}


@pytest.fixture(scope="module")
def fits() -> dict[str, mlm.LmerModel]:
    data = growth_data()
    return {name: mlm.lmer(f, data=data[d]) for name, (d, f) in FORMULAS.items()}


def lme4_values(model: str) -> pd.DataFrame:
    table = read_fixture("lmer.csv")
    return table[table["model"] == model]


@pytest.mark.parametrize("model", sorted(FORMULAS))
def test_lmer_matches_lme4(fits, model):
    m = fits[model]
    ref = lme4_values(model)
    vc = m.varcorr
    for _, row in ref.iterrows():
        what, term, value = row["what"], row["term"], float(row["value"])
        if what == "fixef":
            got = m.fixef[term]
        elif what == "sd":
            sel = (vc["grp"] == "Subject") & (vc["var1"] == term) & vc["var2"].isna()
            got = vc.loc[sel, "sdcor"].item()
        elif what == "cor":
            a, b = next((a, b) for a in m.fixef.index for b in m.fixef.index if f"{a}.{b}" == term)
            sel = (vc["grp"] == "Subject") & (vc["var1"] == a) & (vc["var2"] == b)
            got = vc.loc[sel, "sdcor"].item()
        elif what == "sigma":
            got = m.sigma
        elif what == "logLik":
            got = m.loglik
        else:
            assert what == "logLik_ML"
            got = m.refit(REML=False).loglik
        if what.startswith("logLik"):
            # the optimum: the same to 1e-5 log-likelihood units, and never below lme4's
            assert got > value - 1e-5, f"{model} {what}: {got} below lme4's {value}"
            assert np.isclose(got, value, rtol=0, atol=1e-4), f"{model} {what}: {got} vs {value}"
        else:
            # the likelihood is flat near the optimum: SDs and correlations move in the 5th digit
            tol = 1e-4 if what == "fixef" else 2e-3
            assert np.isclose(got, value, rtol=tol, atol=1e-6), f"{model} {what} {term}: {got}"


def test_quadratic_growth_test_matches_lme4_anova(fits):
    ref = read_fixture("anova.csv").iloc[0]
    cmp = mlm.compare(fits["ox_linear"], fits["ox_quadratic"], names=["linear", "quadratic"])
    assert np.isclose(cmp.loc["quadratic", "Chisq"], float(ref["Chisq"]), rtol=1e-5)
    assert int(cmp.loc["quadratic", "Df"]) == int(ref["Df"]) == 4


def nlme_value(model: str, residuals: str, what: str, term: str = "") -> float:
    t = read_fixture("nlme.csv")
    sel = (t["model"] == model) & (t["residuals"] == residuals) & (t["what"] == what)
    sel &= t["term"] == term
    return float(t.loc[sel, "value"].item())


@pytest.mark.parametrize("model", ["ox_quadratic", "sleep_dep"])
def test_nlme_without_correlation_is_the_lmer_model(fits, model):
    m = fits[model]
    assert np.isclose(nlme_value(model, "independent", "logLik"), m.loglik, rtol=1e-6)
    assert np.isclose(nlme_value(model, "independent", "sigma"), m.sigma, rtol=1e-3)
    for term, value in m.fixef.items():
        assert np.isclose(nlme_value(model, "independent", "fixef", term), value, rtol=1e-5)


@pytest.mark.parametrize("model", ["ox_quadratic", "sleep_dep"])
def test_ar1_numbers_are_consistent(model):
    phi = nlme_value(model, "ar1", "Phi")
    lrt = nlme_value(model, "ar1", "LRT")
    gain = nlme_value(model, "ar1", "logLik") - nlme_value(model, "independent", "logLik")
    assert 0 < phi < 1
    assert np.isclose(lrt, 2 * gain, rtol=1e-8)
    assert lrt > 0


def test_rerun_of_the_r_script_reproduces_the_fixtures(tmp_path):
    out = r_setup.run_reference_script(
        R_SCRIPT, R_PACKAGES, tmp_path, course_data=False, timeout=300
    )
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(FIXTURE_FILES)
    for name in FIXTURE_FILES:
        new, old = read_fixture(name, out), read_fixture(name)
        assert list(new.columns) == list(old.columns), name
        assert len(new) == len(old), name
        for col in new.columns:
            if pd.api.types.is_numeric_dtype(old[col]):
                assert np.allclose(new[col], old[col], rtol=1e-6), f"{name}: {col}"
            elif col == "value":
                assert np.allclose(new[col].astype(float), old[col].astype(float), rtol=1e-6)
            else:
                assert new[col].astype(str).tolist() == old[col].astype(str).tolist(), name
