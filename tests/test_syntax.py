"""Every row of the supported-syntax table (mlmprimer.syntax) is tested here.

- a supported row's example fits with ``mlmprimer.lmer``; where lme4's numbers for the same
  model are stored (``tests/fixtures/lme4*``), the fit agrees with them to the tolerances of
  ``tests/test_lme4_formula.py`` (fixed effects 1e-5, variances 1e-4, log-likelihood 1e-6,
  relative);
- an unsupported row's example raises an error whose message names the construct;
- a row's statsmodels call fits the same model: the log-likelihood agrees with lmer's to 1e-4
  (absolute; the better of statsmodels' default and L-BFGS fits, as its default optimiser can
  stop short of the maximum) and, where the coding is the same,
  the fixed effects to 1e-4 relative; where statsmodels codes the fixed effects otherwise
  (``poly()`` against raw powers) the fitted values agree to 1e-5.
"""

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import mlmprimer
from mlmprimer import datasets
from mlmprimer.syntax import ROWS, SyntaxRow, statsmodels_call, syntax_table

FIXTURES = Path(__file__).parent / "fixtures"
FIXEF_REL, VARIANCE_REL, LOGLIK_REL = 1e-5, 1e-4, 1e-6
SM_LOGLIK_ABS, SM_FIXEF_REL = 1e-4, 1e-4

SUPPORTED = [r for r in ROWS if r.lmer != "no"]
UNSUPPORTED = [r for r in ROWS if r.lmer == "no"]
WITH_FIXTURE = [r for r in SUPPORTED if r.fixture]
WITH_SM = [r for r in SUPPORTED if r.sm is not None]


def ids(rows):
    return [r.construct for r in rows]


def data_of(row: SyntaxRow) -> pd.DataFrame:
    return datasets.load(row.data).rename(columns=dict(row.rename))


def fit(row: SyntaxRow):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of the examples deserves a warning
        m = mlmprimer.lmer(row.example, data_of(row), REML=row.REML, **dict(row.kwargs))
        return m if row.update is None else m.update(row.update)


_FITS: dict[str, object] = {}


def cached_fit(row):
    if row.construct not in _FITS:
        _FITS[row.construct] = fit(row)
    return _FITS[row.construct]


def test_the_table_has_one_row_per_construct_and_the_documented_columns():
    table = syntax_table()
    assert len(table) == len(ROWS) == table.construct.nunique()
    assert set(table.lmer) == {"yes", "python", "no"}
    assert not table.isna().any().any()


@pytest.mark.parametrize("row", SUPPORTED, ids=ids(SUPPORTED))
def test_supported_rows_fit(row):
    m = cached_fit(row)
    assert np.isfinite(m.loglik)
    assert m.nobs == len(data_of(row))


@pytest.mark.parametrize("row", WITH_FIXTURE, ids=ids(WITH_FIXTURE))
def test_supported_rows_agree_with_lme4(row):
    fx = json.loads((FIXTURES / f"{row.fixture}.json").read_text(encoding="utf-8"))
    assert fx["REML"] is row.REML
    m = cached_fit(row)
    # the same model: lme4's coefficients, in lme4's order (Python spellings name them as patsy)
    np.testing.assert_allclose(m.fixef.to_numpy(), list(fx["fixef"].values()), rtol=FIXEF_REL)
    if row.lmer == "yes":
        assert list(m.fixef.index) == list(fx["fixef"])
    variances = [r["vcov"] for r in fx["varcorr"] if r["var2"] is None]
    ours = m.varcorr.loc[m.varcorr.var2.isna(), "vcov"].to_numpy()
    np.testing.assert_allclose(ours, variances, rtol=VARIANCE_REL)
    assert math.isclose(m.loglik, fx["logLik"], rel_tol=LOGLIK_REL)


@pytest.mark.parametrize("row", UNSUPPORTED, ids=ids(UNSUPPORTED))
def test_unsupported_rows_raise_an_error_naming_the_construct(row):
    with pytest.raises((ValueError, TypeError)) as err:
        mlmprimer.lmer(row.example, data_of(row), REML=row.REML, **dict(row.kwargs))
    assert row.error in str(err.value)


def fit_statsmodels(row: SyntaxRow, d: pd.DataFrame):
    sm = row.sm
    groups = np.ones(len(d)) if sm["groups"] is None else d[sm["groups"]]
    model = smf.mixedlm(
        sm["formula"],
        d,
        groups=groups,
        re_formula=sm["re_formula"],
        vc_formula=sm["vc_formula"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter; the optimum is checked
        fits = []
        for method in (None, ["lbfgs"]):
            try:
                fits.append(model.fit(reml=row.REML, method=method))
            except np.linalg.LinAlgError:  # L-BFGS can step onto a singular covariance
                continue
    # statsmodels' default optimiser can stop short of the maximum: keep the better of two
    return max((f for f in fits if np.isfinite(f.llf)), key=lambda f: f.llf)


@pytest.mark.parametrize("row", WITH_SM, ids=ids(WITH_SM))
def test_statsmodels_spelling_fits_the_same_model(row):
    m = cached_fit(row)
    r = fit_statsmodels(row, data_of(row))
    if row.sm_agree == "fitted":
        # another coding of the fixed effects: the same fit, but REML's likelihood changes with
        # the coding of X (by the log-determinant of the change of basis)
        np.testing.assert_allclose(r.fittedvalues.to_numpy(), m.fitted().to_numpy(), rtol=1e-5)
        assert abs(r.llf - m.loglik) > 1
        return
    assert abs(r.llf - m.loglik) < SM_LOGLIK_ABS, (r.llf, m.loglik)
    ours = lme4_names(r.fe_params)
    if set(ours.index) == set(m.fixef.index):  # patsy puts factors before numeric columns
        ours = ours[m.fixef.index]
    np.testing.assert_allclose(ours.to_numpy(), m.fixef.to_numpy(), rtol=SM_FIXEF_REL)


def lme4_names(params: pd.Series) -> pd.Series:
    """statsmodels' coefficient names as lme4 writes them: Intercept, sector[T.Catholic]."""
    names = [re.sub(r"\[T\.([^\]]+)\]", r"\1", n) for n in params.index]
    return pd.Series(params.to_numpy(), ["(Intercept)" if n == "Intercept" else n for n in names])


def test_poly_and_raw_powers_are_other_codings_of_one_model():
    row = next(r for r in ROWS if r.construct == "poly(x, 2)")
    m = cached_fit(row)
    r = fit_statsmodels(row, data_of(row))
    assert not np.allclose(r.fe_params.to_numpy()[1:], m.fixef.to_numpy()[1:], rtol=1e-2)
    ml = mlmprimer.lmer(row.example, data_of(row), REML=False)
    raw = smf.mixedlm(
        "Reaction ~ Days + I(Days**2)", data_of(row), groups="Subject", re_formula="~Days"
    ).fit(reml=False, method=["lbfgs"])
    assert abs(raw.llf - ml.loglik) < SM_LOGLIK_ABS  # ML's likelihood does not see the coding


def test_factor_inside_double_bar_keeps_its_columns_correlated_as_lme4():
    row = next(r for r in ROWS if r.construct.startswith("(f || g)"))
    vc = cached_fit(row).varcorr
    assert (vc.grp == "Subject").sum() == 1  # the intercept, on its own
    assert vc.var2.notna().sum() == 1  # the two factor columns, with their correlation


def test_names_in_backticks_and_with_dots_give_the_model_of_the_plain_name():
    plain = mlmprimer.lmer("Reaction ~ Days + (Days | Subject)", datasets.load("sleepstudy"))
    for construct, name in (("`study day`", "`study day`"), ("study.day", "study.day")):
        m = cached_fit(next(r for r in ROWS if r.construct == construct))
        assert list(m.fixef.index) == ["(Intercept)", name]
        assert math.isclose(m.loglik, plain.loglik, rel_tol=1e-9)


def test_statsmodels_call_text_is_the_call_the_test_runs():
    row = next(r for r in ROWS if r.construct == "(1 | a) + (1 | b)")
    text = statsmodels_call(row)
    assert text.startswith('smf.mixedlm("diameter ~ 1", d, groups=np.ones(len(d))')
    assert '"plate": "0 + C(plate)"' in text
    ml = next(r for r in ROWS if r.construct == "REML = FALSE")
    assert statsmodels_call(ml).endswith(".fit(reml=False)")
    assert statsmodels_call(next(r for r in ROWS if r.sm is None)).startswith("not expressible")
