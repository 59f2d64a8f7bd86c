"""Parsing lme4 formulas and building the fixed-effects and grouping-factor designs."""

import re

import numpy as np
import pandas as pd
import patsy
import pytest

from mlmprimer import rsyntax
from mlmprimer.formula import (
    FormulaError,
    ParsedFormula,
    RandomTerm,
    check_columns,
    formula_variables,
    lme4_name,
    parse_formula,
)
from mlmprimer.rterms import fixed_design, grouping_factor, term_design


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


# --------------------------------------------------------------------------------------------
# R's formula language: the table of the formula module, one test per row
# --------------------------------------------------------------------------------------------

import math  # noqa: E402
from pathlib import Path  # noqa: E402

import mlmprimer.formula as formula_module  # noqa: E402
from mlmprimer.formula import update_formula  # noqa: E402
from mlmprimer.rterms import offset_values, response_values  # noqa: E402


def syntax_table(text):
    """Rows (first cell, rest) of the first '=====' table in ``text``."""
    lines = text.splitlines()
    rules = [i for i, ln in enumerate(lines) if re.fullmatch(r"=+( +=+)+", ln.strip())]
    width = len(lines[rules[0]].strip().split()[0])
    rows = []
    for ln in lines[rules[1] + 1 : rules[2]]:
        ln = ln.strip("| ") if ln.startswith("|") else ln
        if ln[:width].strip():
            rows.append(ln[:width].strip())
    return rows


def frame(n=12):
    x = np.arange(1, n + 1)
    return pd.DataFrame(
        {
            "y": np.linspace(1.0, 3.0, n) ** 2,
            "x": x,  # integers, where Python's ^ would be XOR
            "z": np.cos(x.astype(float)),
            "w": np.sin(x.astype(float)),
            "f": pd.Categorical(np.where(x % 3 == 0, "c", np.where(x % 2 == 0, "b", "a"))),
            "h": pd.Categorical(np.where(x > 6, "hi", "lo"), categories=["lo", "hi"]),
            "my.var": x * 0.5,
            "my var": x % 4,
            "g": np.resize(list("abcd"), n),
        }
    )


def X_of(formula, data=None):
    return fixed_design(parse_formula(formula), frame() if data is None else data)[0]


def row_terms():
    assert list(X_of("y ~ z + w - w + (1 | g)").columns) == ["(Intercept)", "z"]
    assert list(X_of("y ~ 0 + z + (1 | g)").columns) == ["z"]
    assert list(X_of("y ~ z - 1 + (1 | g)").columns) == ["z"]
    assert list(X_of("y ~ -1 + z + w + (1 | g)").columns) == ["z", "w"]


def row_interaction():
    d = frame()
    X = X_of("y ~ z:w + (1 | g)", d)
    np.testing.assert_allclose(X["z:w"], d.z * d.w)
    # a factor in an interaction without its main effect: one column per level, as R
    assert list(X_of("y ~ h:z + (1 | g)").columns) == ["(Intercept)", "hlo:z", "hhi:z"]


def row_star():
    X = X_of("y ~ z * h + (1 | g)")
    assert list(X.columns) == ["(Intercept)", "z", "hhi", "z:hhi"]
    pd.testing.assert_frame_equal(X, X_of("y ~ z + h + z:h + (1 | g)"))


def row_power_of_terms():
    want = ["(Intercept)", "z", "w", "x", "z:w", "z:x", "w:x"]  # R's order: by degree
    assert list(X_of("y ~ (z + w + x)^2 + (1 | g)").columns) == want
    assert list(X_of("y ~ (z + w + x)**2 + (1 | g)").columns) == want
    assert list(X_of("y ~ (z + w + x)^3 + (1 | g)").columns)[-1] == "z:w:x"


def row_nesting():
    assert list(X_of("y ~ h / z + (1 | g)").columns) == ["(Intercept)", "hhi", "hlo:z", "hhi:z"]
    assert list(X_of("y ~ z %in% h + (1 | g)").columns) == ["(Intercept)", "z:hlo", "z:hhi"]


def row_arithmetic():
    d = frame()
    X = X_of("y ~ I(x^2) + I(x %% 3) + I(x %/% 3) + I(!(x > 4)) + I(2^-x) + (1 | g)", d)
    names = ["I(x^2)", "I(x%%3)", "I(x%/%3)", "I(!(x > 4))TRUE", "I(2^-x)"]
    assert list(X.columns)[1:] == names
    np.testing.assert_array_equal(X["I(x^2)"], d.x.to_numpy() ** 2)  # a power, not XOR
    assert not np.array_equal(X["I(x^2)"], d.x.to_numpy() ^ 2)
    np.testing.assert_array_equal(X["I(x%%3)"], d.x % 3)
    np.testing.assert_array_equal(X["I(x%/%3)"], d.x // 3)
    np.testing.assert_allclose(X["I(2^-x)"], 2.0 ** -d.x.to_numpy())
    # R's precedence: -2^2 is -(2^2), unary minus binds tighter than ':'
    assert rsyntax.deparse(rsyntax.parse_r("-2^2")) == "-2^2"
    tree = rsyntax.parse_r("-2^2")
    assert tree.kind == "un" and tree.args[0].value == "^"
    assert rsyntax.parse_r("-1:3").args[0].kind == "un"


def row_poly():
    d = frame(6)
    X = X_of("y ~ poly(x, 2) + (1 | g)", d.assign(g=list("aabbcc")))
    assert list(X.columns) == ["(Intercept)", "poly(x, 2)1", "poly(x, 2)2"]
    # R: poly(1:6, 2)
    np.testing.assert_allclose(X["poly(x, 2)1"], np.array([-5, -3, -1, 1, 3, 5]) / math.sqrt(70))
    np.testing.assert_allclose(X["poly(x, 2)2"], np.array([5, -1, -4, -4, -1, 5]) / math.sqrt(84))
    Xr = X_of("y ~ poly(x, 3, raw = TRUE) + (1 | g)", d.assign(g=list("aabbcc")))
    assert list(Xr.columns)[1:] == [f"poly(x, 3, raw = TRUE){k}" for k in (1, 2, 3)]
    np.testing.assert_array_equal(Xr.iloc[:, 3], d.x.to_numpy() ** 3)


def row_math():
    d = frame()
    X = X_of("y ~ log(z + 2) + log(x, 2) + exp(z) + sqrt(x) + log10(x) + log1p(x) + (1 | g)", d)
    assert list(X.columns)[1:] == [
        "log(z + 2)",
        "log(x, 2)",
        "exp(z)",
        "sqrt(x)",
        "log10(x)",
        "log1p(x)",
    ]
    np.testing.assert_allclose(X["log(z + 2)"], np.log(d.z + 2))
    np.testing.assert_allclose(X["log(x, 2)"], np.log2(d.x))
    np.testing.assert_allclose(X["exp(z)"], np.exp(d.z))
    np.testing.assert_allclose(X["sqrt(x)"], np.sqrt(d.x))
    X2 = X_of("y ~ abs(z) + sin(x) + cos(x) + expm1(z) + log2(x) + (1 | g)", d)
    np.testing.assert_allclose(X2["abs(z)"], np.abs(d.z))
    np.testing.assert_allclose(X2["expm1(z)"], np.expm1(d.z))


def row_scale():
    d = frame()
    X, info = fixed_design(parse_formula("y ~ scale(x) + scale(z, center = FALSE) + (1 | g)"), d)
    np.testing.assert_allclose(X["scale(x)"], (d.x - d.x.mean()) / d.x.std(ddof=1))
    rms = math.sqrt(float(np.sum(d.z**2)) / (len(d) - 1))  # R: not centred -> root mean square
    np.testing.assert_allclose(X["scale(z, center = FALSE)"], d.z / rms)
    # new data use the centre and scale of the fit data, as R's predict()
    (new,) = patsy.build_design_matrices([info], d.head(2).assign(x=[100, 0]))
    np.testing.assert_allclose(
        np.asarray(new)[:, 1], (np.array([100, 0]) - d.x.mean()) / d.x.std(ddof=1)
    )


def row_offset():
    pf = parse_formula("y ~ z + offset(log(x)) + offset(2 * w) + (1 | g)")
    assert pf.fixed == "z" and pf.offsets == ("log(x)", "2 * w")
    d = frame()
    np.testing.assert_allclose(offset_values(pf, d), np.log(d.x) + 2 * d.w)
    assert offset_values(parse_formula("y ~ z + (1 | g)"), d) is None


def row_factor():
    d = frame()
    X = X_of('y ~ factor(x %% 3) + relevel(h, ref = "hi") + (1 | g)', d)
    assert list(X.columns) == [
        "(Intercept)",
        "factor(x%%3)1",
        "factor(x%%3)2",
        'relevel(h, ref = "hi")lo',
    ]
    np.testing.assert_array_equal(X['relevel(h, ref = "hi")lo'], (d.h == "lo").astype(float))
    X = X_of("y ~ factor(x > 6) + (1 | g)", d)
    assert list(X.columns) == ["(Intercept)", "factor(x > 6)TRUE"]  # R's labels of a logical


def row_names():
    d = frame()
    pf = parse_formula("y ~ my.var + `my var` + (1 | `my var`)")
    assert pf.random[0].factors == ("my var",) and pf.random[0].group == "my var"
    X = fixed_design(pf, d)[0]
    assert list(X.columns) == ["(Intercept)", "my.var", "`my var`"]
    np.testing.assert_array_equal(X["`my var`"], d["my var"])
    assert check_columns(pf, d) == ["y", "my.var", "my var"]


def row_response():
    d = frame()
    np.testing.assert_allclose(
        response_values(parse_formula("log(y) ~ z + (1 | g)"), d), np.log(d.y)
    )
    np.testing.assert_allclose(
        response_values(parse_formula("I(y^2 / 2) ~ z + (1 | g)"), d), d.y**2 / 2
    )


def row_python():
    d = frame()
    X = X_of("y ~ np.log(x + 1) + I(x**2) + C(h, Treatment('hi')) + Q('my var') + (1 | g)", d)
    # the names patsy gives them (unchanged for models written in Python's spelling), in the
    # formula's order
    assert list(X.columns) == [
        "(Intercept)",
        "np.log(x + 1)",
        "I(x ** 2)",
        "C(h, Treatment('hi'))lo",
        "Q('my var')",
    ]
    np.testing.assert_allclose(X["np.log(x + 1)"], np.log(d.x + 1))
    np.testing.assert_array_equal(X["I(x ** 2)"], d.x**2)


def row_power_outside_I():
    with pytest.raises(FormulaError, match=r"Days\^2 is just Days .*I\(Days\^2\)") as info:
        parse_formula("y ~ Days^2 + (1 | g)")
    assert info.value.position == 8


def row_dot():
    with pytest.raises(FormulaError, match=r"'\.' \(all other columns\) is not supported"):
        parse_formula("y ~ . + (1 | g)")


def row_other_functions():
    for f, name in [("ns(z, 3)", "ns"), ("cut(z, 3)", "cut"), ("ifelse(z > 0, 1, 0)", "ifelse")]:
        formula = f"y ~ x + {f} + (1 | g)"
        with pytest.raises(FormulaError, match=rf"unknown function {name}\(\)") as info:
            fixed_design(parse_formula(formula), frame())
        assert info.value.position == formula.index(name)


def row_poly_several():
    with pytest.raises(FormulaError, match=r"poly\(\) takes one variable"):
        X_of("y ~ poly(x, z, degree = 2) + (1 | g)")


def row_unsupported_operators():
    for formula, message in [
        ("y ~ I(z > 0 && w > 0) + (1 | g)", r"'&&' compares single values"),
        ("y ~ I(z > 0 || w > 0) + (1 | g)", r"every '\|' of a formula, also one inside I\(\)"),
        ("y ~ d$z + (1 | g)", r"'\$' \(indexing or component access\)"),
        ("y ~ z[1] + (1 | g)", r"'\[' \(indexing"),
        ("y ~ I(1:3) + (1 | g)", r"R's sequence operator"),
    ]:
        with pytest.raises(FormulaError, match=message):
            X_of(formula)


SYNTAX_ROWS = {
    "``a + b``, ``a - b``, ``0 +``, ``- 1``": row_terms,
    "``a:b``": row_interaction,
    "``a * b``": row_star,
    "``(a + b)^2``": row_power_of_terms,
    "``a / b``, ``b %in% a``": row_nesting,
    "``I(x^2)``": row_arithmetic,
    "``poly(x, 2)``": row_poly,
    "``log(x)``, ``exp(x)``, ``sqrt(x)``": row_math,
    "``scale(x)``": row_scale,
    "``offset(x)``": row_offset,
    "``factor(x)``, ``relevel(f, ref=)``": row_factor,
    "```my var```, ``my.var``": row_names,
    "``log(y) ~ x``": row_response,
    '``np.log(x)``, ``C(f)``, ``Q("x")``': row_python,
    "``x^2`` (outside ``I()``)": row_power_outside_I,
    "``.`` (all other columns)": row_dot,
    "``ns(x, 3)``, ``cut(x)``, ``ifelse()``": row_other_functions,
    "``poly(x, z, degree = 2)``": row_poly_several,
    "``&&``, ``||``, ``$``, ``[ ]``, ``1:3``": row_unsupported_operators,
}


def test_every_row_of_the_syntax_table_has_a_test():
    assert syntax_table(formula_module.__doc__) == list(SYNTAX_ROWS)


def test_contributing_has_the_same_syntax_table():
    text = (Path(__file__).resolve().parents[1] / "CONTRIBUTING.md").read_text(encoding="utf-8")
    start = text.index("<!-- formula-syntax-table -->")
    assert syntax_table(text[start:]) == list(SYNTAX_ROWS)


@pytest.mark.parametrize("row", list(SYNTAX_ROWS))
def test_syntax_table_row(row):
    SYNTAX_ROWS[row]()


# --------------------------------------------------------------------------------------------
# R expressions, names and update()
# --------------------------------------------------------------------------------------------


def test_deparse_writes_what_r_writes():
    # R 4.2: deparse(quote(I(a%%b + c %/% d + x^2 - e/f + g*h + (a:b) + a %in% b + !z + -x)))
    text = "I(a%%b + c %/% d + x^2 - e/f + g*h + (a:b) + a %in% b + !z + -x)"
    want = "I(a%%b + c%/%d + x^2 - e/f + g * h + (a:b) + a %in% b + !z + -x)"
    assert rsyntax.deparse(rsyntax.parse_r(text)) == want
    # deparse(quote(f(x, "a", b = 2L, d = TRUE, e = -1)))
    call = "f(x, 'a', b = 2L, d = TRUE, e = -1)"
    assert rsyntax.deparse(rsyntax.parse_r(call)) == ('f(x, "a", b = 2L, d = TRUE, e = -1)')


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # R 4.2: update(old, new)
        (
            "Reaction ~ Days + (Days | Subject)",
            ". ~ . + I(Days^2)",
            "Reaction ~ Days + (Days | Subject) + I(Days^2)",
        ),
        ("Reaction ~ Days + (Days | Subject)", ". ~ . - Days", "Reaction ~ (Days | Subject)"),
        (
            "Reaction ~ Days + (Days | Subject)",
            "log(.) ~ .",
            "log(Reaction) ~ Days + (Days | Subject)",
        ),
        (
            "Reaction ~ Days + (Days | Subject)",
            "~ . + x:z",
            "Reaction ~ Days + (Days | Subject) + x:z",
        ),
        ("y ~ a*b + (1|g)", ". ~ . + c", "y ~ a + b + (1 | g) + c + a:b"),
        ("y ~ a*b + (1|g)", ". ~ . - a:b", "y ~ a + b + (1 | g)"),
        ("y ~ x + (1|g)", ". ~ . - 1", "y ~ x + (1 | g) - 1"),
        ("y ~ x + offset(o) + (1|g)", ". ~ . - x", "y ~ (1 | g) + offset(o)"),
        ("y ~ x + (1|g)", ". ~ . - (1|g) + (1|h)", "y ~ x + (1 | h)"),
        ("y ~ 0 + x + (1|g)", ". ~ . + z", "y ~ x + (1 | g) + z - 1"),
    ],
)
def test_update_formula_as_r(old, new, expected):
    assert update_formula(old, new) == expected


def test_formula_variables_read_r_names():
    assert formula_variables("y ~ `my var` + my.var + I(x^2) + TRUE + (1 | `g g`)") == [
        "y",
        "my var",
        "my.var",
        "x",
        "g g",
    ]


def test_dotted_python_names_are_attributes_not_columns():
    df = pd.DataFrame({"y": [1.0, 2.0], "x": [1.0, 2.0], "g": ["a", "b"]})
    assert check_columns(parse_formula("y ~ I(x * np.pi) + (1 | g)"), df) == ["y", "x", "g"]
    with pytest.raises(ValueError, match=r"unknown column 'my\.x'"):
        check_columns(parse_formula("y ~ my.x + (1 | g)"), df)


def test_offset_must_be_a_term_of_its_own():
    with pytest.raises(FormulaError, match="offset cannot be subtracted"):
        parse_formula("y ~ x - offset(z) + (1 | g)")
    with pytest.raises(FormulaError, match=r"offset\(\) must be a term of its own"):
        parse_formula("y ~ x + offset(z):w + (1 | g)")


def test_r_sorts_text_like_icu():
    # R 4.2 in a UTF-8 locale: sort(c("a","B","_x","1","x1","X","b","A","Zeta","alpha","ábc",
    # "abd","a b","a-b","a.b","ab"))
    r_order = ["_x", "1", "a", "A", "a b", "a-b", "a.b", "ab", "ábc", "abd", "alpha", "b", "B",
               "X", "x1", "Zeta"]  # fmt: skip
    shuffled = sorted(r_order)
    from mlmprimer import validate

    assert sorted(shuffled, key=validate._r_collation_key) == r_order
