"""Parsing lme4 formulas and building the fixed-effects and grouping-factor designs."""

import re

import numpy as np
import pandas as pd
import pytest

from mlmprimer.formula import (
    FormulaError,
    ParsedFormula,
    RandomTerm,
    check_columns,
    fixed_design,
    formula_variables,
    grouping_factor,
    lme4_name,
    parse_formula,
    term_design,
)


def terms(formula):
    return [(t.expr, t.group, t.has_intercept) for t in parse_formula(formula).random]


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------


def test_parts_of_a_random_slope_formula():
    pf = parse_formula("Reaction ~ Days + (Days | Subject)")
    assert isinstance(pf, ParsedFormula)
    assert pf.response == "Reaction"
    assert pf.fixed == "Days"
    assert pf.fixed_formula == "Reaction ~ Days"
    (t,) = pf.random
    assert isinstance(t, RandomTerm)
    assert (t.expr, t.group, t.factors, t.has_intercept) == ("Days", "Subject", ("Subject",), True)
    assert t.source == "(Days | Subject)"
    assert pf.formula[t.position] == "("


@pytest.mark.parametrize(
    "formula, expected",
    [
        ("y ~ (1|g)", [("1", "g", True)]),
        ("y ~ x + (x|g)", [("x", "g", True)]),
        ("y ~ x + (1 + x | g)", [("1 + x", "g", True)]),
        ("y ~ x + (0 + x | g)", [("0 + x", "g", False)]),
        ("y ~ x + (x - 1 | g)", [("x - 1", "g", False)]),
        ("y ~ x + (x || g)", [("1", "g", True), ("0 + x", "g", False)]),
        ("y ~ (x + z || g)", [("1", "g", True), ("0 + x", "g", False), ("0 + z", "g", False)]),
        ("y ~ (0 + x || g)", [("0 + x", "g", False)]),
        ("y ~ (1|a) + (1|b)", [("1", "a", True), ("1", "b", True)]),
        ("y ~ (1|a:b)", [("1", "a:b", True)]),
        ("y ~ (1|batch/cask)", [("1", "cask:batch", True), ("1", "batch", True)]),
        ("y ~ (1|a/b/c)", [("1", "c:(b:a)", True), ("1", "b:a", True), ("1", "a", True)]),
    ],
)
def test_random_terms(formula, expected):
    assert terms(formula) == expected


def test_nested_terms_keep_their_factors():
    a, b = parse_formula("y ~ (1 | batch/cask)").random
    assert a.factors == ("cask", "batch")
    assert b.factors == ("batch",)


def test_double_bar_terms_are_marked_uncorrelated():
    assert [t.uncorrelated for t in parse_formula("y ~ (x || g) + (1 | h)").random] == [
        True,
        True,
        False,
    ]


@pytest.mark.parametrize(
    "formula, fixed",
    [
        ("y ~ (1|g)", "1"),
        ("y ~ 0 + (1|g)", "0"),
        ("y ~ x + (1|g) - 1", "x - 1"),
        ("y ~ -1 + x + (1|g)", "0 + x"),
        ("y ~ x*z + (1|g)", "x*z"),
        ("y ~ C(f) + I(x**2) + x:z + (1|g)", "C(f) + I(x**2) + x:z"),
        ("y ~ (1|g) + x", "x"),
        ("y ~ log(x + 1) + (1|g)", "log(x + 1)"),
    ],
)
def test_fixed_part(formula, fixed):
    assert parse_formula(formula).fixed == fixed


@pytest.mark.parametrize(
    "formula, message, position",
    [
        ("y ~ x + (1 | g", "'(' is never closed", 8),
        ("y ~ x) + (1 | g)", "')' without a matching '('", 5),
        ("y x + (1 | g)", "missing '~'", 13),
        ("~ x + (1 | g)", "missing response", 0),
        ("y ~ ", "nothing after '~'", 4),
        ("y ~ x + (1 | )", "empty grouping factor", 12),
        ("y ~ x + ( | g)", "empty random-effects expression", 10),
        ("y ~ x + 1 | g", "'|' outside parentheses", 10),
        ("y ~ x ~ z + (1|g)", "more than one '~'", 6),
        ("y ~ x + (1 | g + h)", "grouping factor 'g + h'", 13),
        ("y ~ x - (1 | g)", "cannot be subtracted", 8),
        ("y ~ x + (1 | g):z", "must be a separate term", 11),
        ("y ~ x + (0 | g)", "has no columns", 9),
    ],
)
def test_syntax_errors_say_what_and_where(formula, message, position):
    with pytest.raises(FormulaError, match=re.escape(message)) as info:
        parse_formula(formula)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.position == position
    assert f"character {position + 1}" in str(err)
    # the caret sits under the offending character
    lines = str(err).splitlines()
    assert lines[-2] == f"  {formula}"
    assert lines[-1] == "  " + " " * position + "^"


def test_formula_must_be_a_string():
    with pytest.raises(TypeError, match="string"):
        parse_formula(None)


# --------------------------------------------------------------------------------------------
# names and variables
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "patsy_name, lme4",
    [
        ("Intercept", "(Intercept)"),
        ("Days", "Days"),
        ("sector[T.Catholic]", "sectorCatholic"),
        ("C(x)[T.b]", "C(x)b"),
        ("sector[Public]", "sectorPublic"),
        ("sector[T.Catholic]:ses", "sectorCatholic:ses"),
        ("x:z", "x:z"),
        ("I(x ** 2)", "I(x ** 2)"),
    ],
)
def test_lme4_names(patsy_name, lme4):
    assert lme4_name(patsy_name) == lme4


def test_formula_variables_skip_functions_and_keywords():
    assert formula_variables("np.log(y) ~ C(f, Treatment(reference='b')) + I(x**2) + x:z") == [
        "y",
        "f",
        "x",
        "z",
    ]
    assert formula_variables('Q("odd name") + a') == ["odd name", "a"]


def test_check_columns_lists_used_columns():
    df = pd.DataFrame({"y": [1.0], "x": [2.0], "g": ["a"], "h": ["b"], "unused": [0]})
    used = check_columns(parse_formula("y ~ x + (1 | g/h)"), df)
    assert used == ["y", "x", "h", "g"] or sorted(used) == ["g", "h", "x", "y"]
    assert "unused" not in used


def test_check_columns_names_unknown_columns_with_close_matches():
    df = pd.DataFrame({"Reaction": [1.0], "Days": [0], "Subject": ["a"]})
    with pytest.raises(ValueError, match=r"unknown column 'Dayz'.*did you mean 'Days'"):
        check_columns(parse_formula("Reaction ~ Dayz + (1 | Subject)"), df)
    with pytest.raises(ValueError, match=r"unknown column 'subject'.*'Subject'"):
        check_columns(parse_formula("Reaction ~ Days + (1 | subject)"), df)


def test_names_from_the_namespace_are_not_columns():
    df = pd.DataFrame({"y": [1.0], "g": ["a"]})
    assert check_columns(parse_formula("y ~ offset_ + (1 | g)"), df, {"offset_": 1}) == ["y", "g"]


# --------------------------------------------------------------------------------------------
# designs
# --------------------------------------------------------------------------------------------


def test_fixed_design_uses_categorical_level_order_and_lme4_names():
    df = pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0],
            "ses": [0.1, -0.2, 0.3, 0.0],
            "sector": pd.Categorical(
                ["Public", "Catholic", "Catholic", "Public"], categories=["Public", "Catholic"]
            ),
            "g": ["a", "a", "b", "b"],
        }
    )
    X, info = fixed_design(parse_formula("y ~ ses * sector + (1 | g)"), df)
    assert list(X.columns) == ["(Intercept)", "ses", "sectorCatholic", "ses:sectorCatholic"]
    np.testing.assert_array_equal(X["sectorCatholic"], [0, 1, 1, 0])
    np.testing.assert_allclose(X["ses:sectorCatholic"], [0, -0.2, 0.3, 0])
    assert X.index.equals(df.index)


def test_fixed_design_keeps_formula_order():
    df = pd.DataFrame(
        {
            "y": [1.0, 2, 3, 4],
            "v": [1.0, 2, 3, 5],
            "s": pd.Categorical(list("MFMF")),
            "g": list("aabb"),
        }
    )
    X, _ = fixed_design(parse_formula("y ~ v + s + (1 | g)"), df)
    assert list(X.columns) == ["(Intercept)", "v", "sM"]


def test_fixed_design_C_and_no_intercept():
    df = pd.DataFrame({"y": [1.0, 2, 3], "x": ["a", "b", "c"], "g": list("aab")})
    X, _ = fixed_design(parse_formula("y ~ C(x) + (1 | g)"), df)
    assert list(X.columns) == ["(Intercept)", "C(x)b", "C(x)c"]
    X, _ = fixed_design(parse_formula("y ~ 0 + x + (1 | g)"), df)
    assert list(X.columns) == ["xa", "xb", "xc"]


def test_term_design_columns():
    df = pd.DataFrame({"y": [1.0, 2, 3], "x": [1.0, 2, 3], "g": list("aab")})
    Xi, names, _ = term_design(parse_formula("y ~ (x | g)").random[0], df)
    assert names == ["(Intercept)", "x"]
    np.testing.assert_array_equal(Xi, [[1, 1], [1, 2], [1, 3]])
    Xi, names, _ = term_design(parse_formula("y ~ (0 + x | g)").random[0], df)
    assert names == ["x"]
    np.testing.assert_array_equal(Xi[:, 0], [1, 2, 3])


def test_grouping_factor_single():
    s = pd.Categorical(["b", "c", "b"], categories=["c", "b", "unused"])
    codes, levels = grouping_factor(pd.DataFrame({"g": s}), ["g"])
    assert list(levels) == ["c", "b"]  # level order kept, unused level dropped
    assert codes.tolist() == [1, 0, 1]
    codes, levels = grouping_factor(pd.DataFrame({"g": [308, 309, 308, 10]}), ["g"])
    assert list(levels) == [10, 308, 309]
    assert codes.tolist() == [1, 2, 1, 0]


def test_grouping_factor_interaction_in_r_order():
    df = pd.DataFrame(
        {
            "cask": ["a", "b", "a", "c", "a"],
            "batch": pd.Categorical(["B", "A", "A", "B", "B"], categories=["B", "A"]),
        }
    )
    codes, levels = grouping_factor(df, ["cask", "batch"])
    # the first factor varies slowest; within it the second factor's level order (B before A)
    assert list(levels) == ["a:B", "a:A", "b:A", "c:B"]
    assert [levels[c] for c in codes] == ["a:B", "b:A", "a:A", "c:B", "a:B"]
