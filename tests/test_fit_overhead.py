"""The fixed cost of a fit: tables built on first access, matrices built once, formulas read once.

A small fit spends much of its time outside the optimiser. These tests pin the ways that time
was cut without changing a number: the results' tables (``X``, ``fixef``, ``vcov``,
``varcorr``, ``ranef``, ``weights``, ``offset``, the fitted values) are built on first access
and equal their definitions computed independently; a numerical model matrix is built by
numpy from patsy's design information and equals patsy's own; patsy builds a matrix only for
designs with factors; a formula is parsed once.
"""

import numpy as np
import pandas as pd
import patsy
import pytest

from mlmprimer import formula as formula_module
from mlmprimer import rterms
from mlmprimer.datasets import load
from mlmprimer.formula import parse_formula
from mlmprimer.model import lmer
from mlmprimer.rfunctions import r_eval_env
from mlmprimer.validate import check_response, validate_data

LAZY = ("X", "fixef", "vcov", "varcomp", "varcorr", "ranef", "weights", "offset")


@pytest.fixture(scope="module")
def sleep():
    return load("sleepstudy")


# --------------------------------------------------------------------------------------------
# tables built on first access
# --------------------------------------------------------------------------------------------


def test_tables_are_built_on_first_access_and_kept(sleep):
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    for name in (*LAZY, "ranef_condsd", "_fitted_values"):
        assert name not in vars(m), name
    for name in (*LAZY, "ranef_condsd"):
        first = getattr(m, name)
        assert name in vars(m)
        assert getattr(m, name) is first  # built once
    m.fitted()
    assert "_fitted_values" in vars(m)


def _independent_fitted(m, data, offset):
    """X beta + Z b + offset from the data and lme4's Z, Lambda and u (getME)."""
    X = np.column_stack([np.ones(len(data)), data["Days"].to_numpy(dtype=float)])
    b = m.getME("Lambda") @ m.getME("u")
    return X @ m.fixef.to_numpy() + m.getME("Z") @ b + offset


def test_fitted_is_x_beta_plus_z_b(sleep):
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    expected = _independent_fitted(m, sleep, 0.0)
    np.testing.assert_allclose(m.fitted().to_numpy(), expected, rtol=1e-12)
    assert m.fitted().index.equals(sleep.index)
    # b in getME is Lambda u; ranef holds the same numbers per subject
    b = np.asarray(m.getME("b")).reshape(-1, 2)
    np.testing.assert_allclose(m.ranef["Subject"].to_numpy(), b, rtol=1e-12)


def test_weighted_offset_fit_tables_follow_their_definitions(sleep):
    w = 1.0 + sleep["Days"].to_numpy(dtype=float)
    m = lmer("Reaction ~ Days + offset(2 * Days) + (Days | Subject)", sleep, weights=w)
    off = 2.0 * sleep["Days"].to_numpy(dtype=float)
    fitted = _independent_fitted(m, sleep, off)
    np.testing.assert_allclose(m.fitted().to_numpy(), fitted, rtol=1e-12)
    r = sleep["Reaction"].to_numpy() - fitted
    np.testing.assert_allclose(m.residuals().to_numpy(), r, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        m.residuals("pearson", scaled=True).to_numpy(), r * np.sqrt(w) / m.sigma, atol=1e-9
    )
    np.testing.assert_array_equal(m.weights.to_numpy(), w)
    np.testing.assert_array_equal(m.offset.to_numpy(), off)
    np.testing.assert_array_equal(
        m.X.to_numpy(), np.column_stack([np.ones(len(sleep)), sleep["Days"].to_numpy(float)])
    )


def test_tables_without_weights_or_offset(sleep):
    m = lmer("Reaction ~ Days + (1 | Subject)", sleep)
    assert (m.weights == 1.0).all() and (m.offset == 0.0).all()
    assert m.weights.name == "weights" and m.offset.name == "offset"
    np.testing.assert_array_equal(m.vcov.to_numpy(), m.solution.vcov)
    assert list(m.vcov.index) == list(m.fixef.index) == ["(Intercept)", "Days"]
    # varcorr: the SDs are sigma times the template's diagonal (theta), the residual sigma
    sd = m.varcorr.set_index("grp")["sdcor"]
    assert sd["Subject"] == pytest.approx(m.sigma * m.theta[0], rel=1e-12)
    assert sd["Residual"] == pytest.approx(m.sigma, rel=1e-12)


def test_model_data_is_not_changed_by_later_edits_of_the_data(sleep):
    data = sleep.copy()
    m = lmer("Reaction ~ Days + (1 | Subject)", data)
    data.loc[0, "Reaction"] = -1.0
    assert m.data.loc[0, "Reaction"] == sleep.loc[0, "Reaction"]
    assert m.data is not data


# --------------------------------------------------------------------------------------------
# numerical model matrices by numpy, equal to patsy's
# --------------------------------------------------------------------------------------------

NUMERIC_RHS = [
    "1",
    "0 + ses",
    "ses * meanses * cses",
    "I(ses^2) + log(mAch + 10) + scale(meanses)",
    "poly(ses, 3) + poly(cses, 2, raw = TRUE)",
    "ses:cses + exp(meanses / 10)",
]


@pytest.mark.parametrize("rhs", NUMERIC_RHS)
def test_numerical_matrix_is_patsys(rhs):
    data = load("hsb")
    model = rterms._patsy_model(rhs, data.columns, None)
    env = r_eval_env(None)
    reference = patsy.dmatrix(model.desc, data, eval_env=env, NA_action="raise")
    ours = rterms._numerical_matrix(reference.design_info, data)
    assert ours is not None
    np.testing.assert_array_equal(ours, np.asarray(reference))  # bit for bit


def test_a_factor_is_left_to_patsy():
    data = load("hsb")
    model = rterms._patsy_model("ses + sector", data.columns, None)
    info = patsy.dmatrix(model.desc, data, NA_action="raise").design_info
    assert rterms._numerical_matrix(info, data) is None


def test_missing_values_still_raise_patsys_error():
    df = pd.DataFrame({"y": [1.0, 2.0, 3.0], "x": [1.0, np.nan, 2.0], "g": list("aab")})
    with pytest.raises(patsy.PatsyError, match="missing values"):
        rterms.fixed_design(parse_formula("y ~ x + (1 | g)"), df)


def _counting(monkeypatch, owner, name):
    calls = []
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_patsy_builds_a_matrix_only_for_factors(monkeypatch, sleep):
    builders = _counting(monkeypatch, rterms, "design_matrix_builders")
    built = _counting(monkeypatch, rterms.patsy, "build_design_matrices")
    lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert len(builders) == 2  # the fixed part and the one random term
    assert built == []
    data = load("hsb")
    lmer("mAch ~ ses + sector + (ses | school)", data)
    assert len(builders) == 4
    assert len(built) == 1  # the fixed part, with the factor sector


def test_predictions_for_new_data_use_patsys_design_information(sleep):
    m = lmer("Reaction ~ poly(Days, 2) + (Days | Subject)", sleep)
    pred = m.predict(sleep.iloc[::7], re=False).to_numpy()
    np.testing.assert_allclose(pred, m.X.to_numpy()[::7] @ m.fixef.to_numpy(), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# formulas read once; grouping codes
# --------------------------------------------------------------------------------------------


def test_a_formula_is_parsed_once(monkeypatch, sleep):
    f = "Reaction ~ Days + I(Days^2) + (Days || Subject)"
    first = parse_formula(f)
    assert parse_formula(f) is first
    assert first == formula_module._parse(f)  # the same as an uncached parse
    m = lmer(f, sleep)
    assert m.parsed is first
    before = formula_module._cached_parse.cache_info()
    m.update(". ~ .")
    after = formula_module._cached_parse.cache_info()
    assert after.misses == before.misses  # the same formula: not parsed again


def test_formula_variables_returns_a_fresh_list():
    text = "log(y) ~ x + (1 | g)"
    first = formula_module.formula_variables(text)
    first.append("changed")
    assert formula_module.formula_variables(text) == ["y", "x", "g"]


def test_parse_errors_are_raised_every_time():
    for _ in range(2):
        with pytest.raises(formula_module.FormulaError):
            parse_formula("y ~ x + 1 | g")
    with pytest.raises(TypeError, match="string"):
        parse_formula(["y ~ x"])


@pytest.mark.parametrize("used", [[0, 1, 2, 3], [3, 1, 1], [2], [0, 3, 0, 3, 1]])
def test_grouping_codes_drop_unused_levels_as_pandas(used):
    cats = ["d", "b", "a", "c"]
    s = pd.Series(pd.Categorical.from_codes(used, categories=cats))
    codes, levels = rterms.grouping_factor(pd.DataFrame({"g": s}), ["g"])
    expected = s.cat.remove_unused_categories()
    np.testing.assert_array_equal(codes, expected.cat.codes.to_numpy())
    assert codes.dtype == np.int64
    pd.testing.assert_index_equal(levels, pd.Index(expected.cat.categories), exact=True)
    assert [levels[c] for c in codes] == [cats[u] for u in used]


def test_checked_data_without_missing_rows_keeps_every_row(sleep):
    checked = validate_data(parse_formula("Reaction ~ Days + (1 | Subject)"), sleep)
    assert checked.data is not sleep
    pd.testing.assert_frame_equal(checked.data, sleep)


def _unique_based_notes(y):
    """The notes of a response by its sorted distinct values (np.unique)."""
    values = np.unique(y)
    if len(values) == 2:
        return ["two"]
    if values[0] == 0 and np.all(values == np.round(values)) and np.median(y) <= 20:
        return ["counts"]
    return []


@pytest.mark.parametrize(
    "y",
    [
        [0.0, 1.0, 1.0, 0.0],
        [3.0, 7.0, 3.0],
        [0.0, 1.0, 2.0, 5.0, 3.0],
        [0.0, 1.0, 2.5],
        [1.0, 2.0, 3.0],
        [0.0, 40.0, 50.0, 60.0],
        [-1.0, 0.0, 1.0],
    ],
)
def test_response_notes_as_by_distinct_values(y):
    y = np.asarray(y)
    notes = []
    check_response("y", y, pd.RangeIndex(len(y)), notes)
    kinds = ["two" if "two values" in n else "counts" for n in notes]
    assert kinds == _unique_based_notes(y)
    if kinds == ["two"]:
        lo, hi = np.unique(y)
        assert f"({lo:g} and {hi:g})" in notes[0]


def test_constant_response_is_refused():
    with pytest.raises(ValueError, match="constant"):
        check_response("y", np.full(4, 2.5), pd.RangeIndex(4), [])
