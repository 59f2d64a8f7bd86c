"""R's functions and terms in patsy: the model matrices of a parsed formula.

A parsed formula (:mod:`mlmprimer.formula`) is translated for patsy term by term, never passing
R syntax to patsy unchanged: R's arithmetic inside ``I()``, ``poly()`` (orthogonal as R's),
``scale()``, ``log(x, base)``, ``factor()``, ``relevel()`` and ``offset()`` get their R meaning.
:func:`fixed_design` and :func:`term_design` build the fixed-effects matrix and a random term's
columns with lme4's names, :func:`response_values` and :func:`offset_values` the response and
offset, :func:`grouping_factor` the codes of a grouping factor.

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.formula import parse_formula
>>> from mlmprimer.rterms import fixed_design
>>> pf = parse_formula("Reaction ~ poly(Days, 2) + (1 | Subject)")
>>> X, _ = fixed_design(pf, load("sleepstudy"))
>>> list(X.columns)
['(Intercept)', 'poly(Days, 2)1', 'poly(Days, 2)2']
"""

from __future__ import annotations

import functools
import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import patsy
from patsy.build import design_matrix_builders
from patsy.desc import INTERCEPT, ModelDesc, Term

from .formula import PATSY_BUILTINS, ParsedFormula, RandomTerm, in_namespace, lme4_name
from .rfunctions import eval_namespace, r_eval_env
from .rsyntax import R_LITERALS, R_MATH, R_TERM_FUNCTIONS, R_VARIABLES, FormulaError, Node, parse_r
from .termalgebra import Atom, TermAlgebra, formula_terms, integer_value

__all__ = [
    "all_finite",
    "eval_namespace",
    "expression_values",
    "fixed_design",
    "grouping_factor",
    "offset_values",
    "response_values",
    "term_design",
]


# ----------------------------------------------------------------------------------------------
# translation into patsy
# ----------------------------------------------------------------------------------------------


class _RFactor(patsy.EvalFactor):
    """A patsy factor whose columns carry lme4's name rather than the Python code's."""

    def __init__(self, code: str, label: str, origin: Any = None) -> None:
        super().__init__(code, origin)
        self.label = label

    def name(self) -> str:
        return self.label


def _py_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_mlm_")


def _quote(name: str) -> str:
    return f"Q({name!r})"


class _Translator:
    """Python (patsy) code for R expressions, with the data's columns and the caller's names.

    ``r`` is set when the code differs in meaning from the text as Python would read it.
    """

    def __init__(self, formula: str, columns: Any, namespace: Mapping[str, Any] | None) -> None:
        self.formula = formula
        self.columns = columns
        self.namespace = namespace
        self.r = False

    def error(self, message: str, node: Node) -> FormulaError:
        return FormulaError(message, self.formula, node.pos)

    def is_column(self, name: str) -> bool:
        return name in self.columns

    def known(self, name: str) -> bool:
        return in_namespace(name, self.namespace) or name in PATSY_BUILTINS

    def code(self, node: Node) -> str:
        k, v = node.kind, node.value
        if k == "name":
            return self.name(node)
        if k == "num":
            if v.endswith("L"):
                self.r = True
                return v[:-1]
            return v
        if k == "str":
            return repr(v)
        if k == "paren":
            return "(" + self.code(node.args[0]) + ")"
        if k == "list":
            return "[" + ", ".join(self.code(a) for a in node.args) + "]"
        if k == "un":
            x = self.code(node.args[0])
            if v == "!":
                self.r = True
                return f"np.logical_not({x})"
            if v in "+-":
                return f"({v}{x})"
            raise self.error(f"{v!r} cannot be used inside an expression", node)
        if k == "bin":
            return self.binary(node)
        return self.call(node)

    def name(self, node: Node) -> str:
        v = node.value
        if not node.quoted and v in R_LITERALS:
            self.r = True
            return R_LITERALS[v]
        if self.is_column(v):
            if _py_name(v):
                return v
            self.r = True
            return _quote(v)
        if node.quoted:
            self.r = True
            return v if _py_name(v) else _quote(v)
        if "." in v[1:]:
            root = v.split(".", 1)[0]
            if root in ("np", "numpy") or self.is_column(root) or self.known(root):
                return v
        if self.known(v):
            return v
        if v in R_VARIABLES:
            self.r = True
            return R_VARIABLES[v]
        if _py_name(v):
            return v
        self.r = True
        return _quote(v)

    def binary(self, node: Node) -> str:
        v = node.value
        if v in ("&&", "||"):
            raise self.error(f"{v!r} compares single values in R; for a column use {v[0]!r}", node)
        if v == ":":
            raise self.error(
                "':' inside an expression is R's sequence operator, which formulas here do not "
                "support (an interaction a:b is written outside I())",
                node,
            )
        if v in ("~", "|", "=", "|>", "<-"):
            raise self.error(f"{v!r} cannot be used inside an expression", node)
        a, b = (self.code(x) for x in node.args)
        if v == "^":
            self.r = True
            return f"_mlm_pow({a}, {b})"
        if v == "%%":
            self.r = True
            return f"({a} % {b})"
        if v == "%/%":
            self.r = True
            return f"({a} // {b})"
        if v == "%in%":
            self.r = True
            return f"np.isin({a}, {b})"
        if v.startswith("%") and len(v) > 1:
            raise self.error(f"the R operator {v} is not supported in formulas here", node)
        return f"({a} {v} {b})"

    def args(self, node: Node) -> str:
        parts = []
        for nm, a in zip(node.names, node.args, strict=True):
            parts.append(f"{nm}={self.code(a)}" if nm else self.code(a))
        return ", ".join(parts)

    def call(self, node: Node) -> str:
        f = node.value
        if f in R_MATH and not node.quoted:
            self.r = True
            if f == "log":
                x, base = _call_args(node, ("x", "base"), self.formula, required=1)
                out = f"_mlm_log({self.code(x)}"
                return out + (f", {self.code(base)})" if base is not None else ")")
            (x,) = _call_args(node, ("x",), self.formula, required=1)
            return f"_mlm_{f}({self.code(x)})"
        if f == "scale" and not node.quoted:
            self.r = True
            x, center, scale = _call_args(node, ("x", "center", "scale"), self.formula, 1)
            out = f"_mlm_scale({self.code(x)}"
            if center is not None:
                out += f", center={self.code(center)}"
            if scale is not None:
                out += f", scale={self.code(scale)}"
            return out + ")"
        if f == "c" and not node.quoted:
            self.r = True
            if any(node.names):
                raise self.error("named elements in c() are not supported", node)
            return "[" + ", ".join(self.code(a) for a in node.args) + "]"
        if f == "I" and not node.quoted:
            (x,) = _call_args(node, ("x",), self.formula, required=1)
            return f"I({self.code(x)})"
        if f in R_TERM_FUNCTIONS and not node.quoted:
            raise self.error(
                f"{f}() must be a term of the formula of its own (or part of an interaction), "
                "not inside an expression",
                node,
            )
        root = f.split(".", 1)[0]
        python = (
            f in PATSY_BUILTINS
            or (not node.quoted and _py_name(f) and _callable(f, self.namespace))
            or (
                "." in f[1:]
                and (root in ("np", "numpy") or self.is_column(root) or self.known(root))
            )
        )
        if not python:
            raise self.error(
                f"unknown function {f}(): formulas here know R's I, poly, log, exp, sqrt, "
                "scale, offset, factor, relevel (see mlmprimer.formula) and Python functions "
                "of your session; compute the column beforehand",
                node,
            )
        return f"{f}({self.args(node)})"


def _callable(name: str, namespace: Mapping[str, Any] | None) -> bool:
    if namespace is None:
        return False
    try:
        return callable(namespace[name])
    except (KeyError, TypeError):
        return False


def _call_args(
    node: Node, params: Sequence[str], formula: str, required: int = 1
) -> list[Node | None]:
    """Match a call's arguments to ``params`` by R's rules (names first, then position)."""
    out: list[Node | None] = [None] * len(params)
    positional = [a for nm, a in zip(node.names, node.args, strict=True) if nm is None]
    for nm, a in zip(node.names, node.args, strict=True):
        if nm is None:
            continue
        if nm not in params:
            raise FormulaError(
                f"{node.value}() has no argument {nm!r} here (it takes {', '.join(params)})",
                formula,
                a.start,
            )
        out[params.index(nm)] = a
    free = [i for i, a in enumerate(out) if a is None]
    if len(positional) > len(free):
        raise FormulaError(
            f"too many arguments to {node.value}() (it takes {', '.join(params)})",
            formula,
            node.pos,
        )
    for i, a in zip(free, positional, strict=False):
        out[i] = a
    if any(a is None for a in out[:required]):
        raise FormulaError(f"{node.value}() needs {params[0]!r}", formula, node.pos)
    return out


def _bool_arg(node: Node | None, what: str, formula: str) -> bool:
    """A TRUE/FALSE argument (R's or Python's spelling); absent means FALSE."""
    if node is None:
        return False
    if node.kind == "name" and node.value in ("TRUE", "T", "True"):
        return True
    if node.kind == "name" and node.value in ("FALSE", "F", "False"):
        return False
    raise FormulaError(f"{what} must be TRUE or FALSE", formula, node.start)


def _factors(atom: Atom, tr: _Translator) -> list[patsy.EvalFactor]:
    """The patsy factors of one formula atom (several for ``poly()``, one column each)."""
    node, formula = atom.node, tr.formula
    if node.kind == "call" and not node.quoted and node.value == "poly":
        positional = [a for nm, a in zip(node.names, node.args, strict=True) if nm is None]
        several = len(positional) > 2 or (
            len(positional) == 2 and integer_value(positional[1]) is None
        )
        if several:
            raise FormulaError(
                "poly() takes one variable here, as in poly(x, 2) or poly(x, 3, raw = TRUE); "
                "for several variables write their polynomials as separate terms",
                formula,
                node.pos,
            )
        x, degree, raw = _call_args(node, ("x", "degree", "raw"), formula, required=1)
        if degree is not None and integer_value(degree) is None:
            raise FormulaError(
                "poly() takes one variable and a whole-number degree here, as in poly(x, 2) "
                "or poly(x, 3, raw = TRUE); several variables are not supported",
                formula,
                node.pos,
            )
        k = 1 if degree is None else integer_value(degree)
        assert k is not None
        if k < 1:
            raise FormulaError("the degree of poly() must be at least 1", formula, node.pos)
        is_raw = _bool_arg(raw, "raw", formula)
        code = tr.code(x)
        return [
            _RFactor(f"_mlm_poly({code}, {k}, {is_raw}, {j})", f"{atom.label}{j + 1}")
            for j in range(k)
        ]
    if node.kind == "call" and not node.quoted and node.value in ("factor", "as.factor"):
        x, levels = _call_args(node, ("x", "levels"), formula, required=1)
        if node.value == "as.factor" and levels is not None:
            raise FormulaError("as.factor() takes one argument", formula, node.pos)
        inner = f"_mlm_factor({tr.code(x)})"
        code = f"C({inner}" + (f", levels={tr.code(levels)})" if levels else ")")
        return [_RFactor(code, atom.label)]
    if node.kind == "call" and not node.quoted and node.value == "relevel":
        x, ref = _call_args(node, ("x", "ref"), formula, required=2)
        assert ref is not None and x is not None
        inner = x
        if inner.kind == "call" and inner.value in ("factor", "as.factor") and len(inner.args) == 1:
            inner = inner.args[0]
        code = f"C(_mlm_factor({tr.code(inner)}), Treatment({tr.code(ref)}))"
        return [_RFactor(code, atom.label)]
    tr.r = False
    code = tr.code(node)
    if not tr.r:
        return [patsy.EvalFactor(formula[node.start : node.end])]
    return [_RFactor(f"_mlm_logical({code})", atom.label)]


@dataclass
class _PatsyModel:
    """A formula's terms for patsy: the description and lme4's name of every term."""

    desc: ModelDesc
    terms: list[Term]  # in R's order
    labels: list[str]


def _read_terms(text: str) -> tuple[TermAlgebra, tuple[frozenset[int], ...], bool]:
    alg, terms, icpt = formula_terms(text, text)
    return alg, tuple(terms), icpt


# R's terms of a right-hand side, read once per text: the checks and the design of a fit read
# the same parts (only read, never changed)
rhs_terms = functools.lru_cache(maxsize=512)(_read_terms)


def _patsy_model(
    text: str, columns: Any, namespace: Mapping[str, Any] | None, intercept_ok: bool = True
) -> _PatsyModel:
    alg, terms, icpt = rhs_terms(text)
    tr = _Translator(text, columns, namespace)
    factors = [_factors(a, tr) for a in alg.atoms]
    out_terms: list[Term] = [INTERCEPT] if icpt and intercept_ok else []
    labels = ["(Intercept)"] if out_terms else []
    for t in terms:
        # a term with poly(x, k) becomes k terms, one per column of the polynomial
        combos: list[list[patsy.EvalFactor]] = [[]]
        for i in sorted(t):
            combos = [c + [f] for c in combos for f in factors[i]]
        for c in combos:
            out_terms.append(Term(c))
            labels.append(":".join(f.name() for f in c))
    return _PatsyModel(ModelDesc([], out_terms), out_terms, labels)


# ----------------------------------------------------------------------------------------------
# designs
# ----------------------------------------------------------------------------------------------


def _relocated(err: FormulaError, text: str, formula: str) -> FormulaError:
    """The error ``err`` found in ``text`` (a part of ``formula``), pointing into ``formula``."""
    if err.formula == formula or err.position is None:
        return err
    start = formula.find(text)
    if start < 0:
        word = re.match(r"[\w.`]*", text[err.position :])
        start = formula.find(word.group()) - err.position if word and word.group() else -1
    if start < 0:
        return FormulaError(err.message, formula)
    return FormulaError(err.message, formula, start + err.position)


def all_finite(values: np.ndarray) -> bool:
    """Whether every value is finite, by one sum (finite exactly when no value is NaN or
    infinite, short of overflow: a sum that overflows says False, and callers then look value
    by value).

    Examples
    --------
    >>> import numpy as np
    >>> from mlmprimer.rterms import all_finite
    >>> all_finite(np.array([1.0, 2.0])), all_finite(np.array([1.0, np.nan]))
    (True, False)
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.sum(values)))


def _numerical_matrix(info: patsy.DesignInfo, data: pd.DataFrame) -> np.ndarray | None:
    """What ``patsy.build_design_matrices([info], data)`` makes, when all factors are numerical.

    As patsy's, a column is the product of its factors' values in the term's order. None when
    patsy's own path is needed: a categorical factor, a factor of several columns, values that
    are not numbers, of the wrong length or index, or missing (patsy raises its error there).
    """
    n = len(data)
    values: dict[Any, np.ndarray] = {}
    for fi in info.factor_infos.values():
        if fi.type != "numerical" or fi.num_columns != 1:
            return None
        raw = fi.factor.eval(fi.state, data)
        if isinstance(raw, pd.Series | pd.DataFrame) and not raw.index.equals(data.index):
            return None
        v = np.asarray(raw)
        if v.ndim == 2 and v.shape[1] == 1:
            v = v[:, 0]
        if v.shape != (n,) or v.dtype.kind not in "iuf":
            return None
        if v.dtype.kind == "f" and not all_finite(v) and np.isnan(v).any():
            return None
        values[fi.factor] = v
    out = np.empty((n, len(info.column_names)), order="F")  # each column contiguous
    j = 0
    for subterms in info.term_codings.values():
        for sub in subterms:
            if sub.num_columns != 1:
                return None
            col = out[:, j]  # patsy's products (1 * a * b ...), in its order
            factors = list(sub.factors)
            if factors:
                col[:] = values[factors[0]]
            else:
                col[:] = 1.0
            for f in factors[1:]:
                col *= values[f]
            j += 1
    return out


def _design(
    text: str,
    data: pd.DataFrame,
    eval_env: Any,
    formula: str | None = None,
    intercept_ok: bool = True,
) -> tuple[np.ndarray, list[str], patsy.DesignInfo]:
    """Model matrix of a right-hand side ``text`` in R's column order, with lme4's names."""
    try:
        model = _patsy_model(text, data.columns, eval_namespace(eval_env), intercept_ok)
    except FormulaError as err:
        raise _relocated(err, text, formula or text) from None
    env = r_eval_env(eval_env)
    # patsy's own description of the columns (as patsy.dmatrix makes it), then the matrix: by
    # numpy when every factor is numerical, else by patsy (which also raises its errors)
    (info,) = design_matrix_builders([model.desc.rhs_termlist], lambda: iter([data]), env, "raise")
    mat = _numerical_matrix(info, data)
    if mat is None:
        (mat,) = patsy.build_design_matrices([info], data, NA_action="raise")
    # R keeps the formula's order of terms (by degree: main effects, then interactions);
    # patsy puts terms without numeric factors first
    slices = [info.term_slices[t] for t in model.terms if t in info.term_slices]
    cols = np.concatenate(
        [np.arange(s.start, s.stop) for s in slices] or [np.zeros(0, dtype=int)]
    ).astype(int)
    values = np.asarray(mat, dtype=float)
    if not np.array_equal(cols, np.arange(values.shape[1])):
        values = values[:, cols]  # a copy only when the order changes
    return values, [lme4_name(info.column_names[j]) for j in cols], info


def fixed_design(
    parsed: ParsedFormula, data: pd.DataFrame, eval_env: Any = None
) -> tuple[pd.DataFrame, patsy.DesignInfo]:
    """The fixed-effects model matrix X with lme4's column names.

    Factors are coded with treatment contrasts against their first level (a pandas
    categorical's first category, as R's first level).

    Parameters
    ----------
    parsed : ParsedFormula
    data : pandas.DataFrame
        Without missing values in the columns used.
    eval_env : mapping or patsy.EvalEnvironment, optional
        Where names that are not columns are looked up.

    Returns
    -------
    X : pandas.DataFrame
    design_info : patsy.DesignInfo
        To build the same columns for new data.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.rterms import fixed_design
    >>> df = pd.DataFrame({"y": [1.0, 2, 3], "s": pd.Categorical(["P", "C", "P"], ["P", "C"]),
    ...                    "x": [1, 2, 3]})
    >>> X, _ = fixed_design(parse_formula("y ~ s + I(x^2) + (1 | s)"), df)
    >>> list(X.columns), X["I(x^2)"].tolist()
    (['(Intercept)', 'sC', 'I(x^2)'], [1.0, 4.0, 9.0])
    """
    values, names, info = _design(parsed.fixed, data, eval_env, parsed.formula)
    return pd.DataFrame(values, index=data.index, columns=names, copy=False), info


def term_design(
    term: RandomTerm, data: pd.DataFrame, eval_env: Any = None
) -> tuple[np.ndarray, list[str], patsy.DesignInfo]:
    """The columns of one random-effects term (its X_i), with lme4's names.

    Parameters
    ----------
    term : RandomTerm
    data : pandas.DataFrame
    eval_env : mapping or patsy.EvalEnvironment, optional

    Returns
    -------
    Xi : numpy.ndarray, shape (n, p_i)
    names : list of str
    design_info : patsy.DesignInfo

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.rterms import term_design
    >>> df = pd.DataFrame({"y": [1.0, 2], "x": [0.5, 1.5], "g": ["a", "b"]})
    >>> Xi, names, _ = term_design(parse_formula("y ~ (x | g)").random[0], df)
    >>> names, Xi.shape
    (['(Intercept)', 'x'], (2, 2))
    """
    return _design(term.expr, data, eval_env, term.source or None)


def expression_values(
    text: str, data: pd.DataFrame, eval_env: Any, what: str, formula: str | None = None
) -> np.ndarray:
    """The values of one R expression (a response or an offset) for the rows of ``data``."""
    node = parse_r(text)
    if node.kind == "name" and node.value in data.columns:
        col = data[node.value]
        if isinstance(col.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
        ):
            raise ValueError(
                f"the {what} {text!r} must be numeric, but the column has dtype "
                f"{col.dtype}; convert it (e.g. with pd.to_numeric) or choose a numeric column"
            )
        return col.to_numpy(dtype=float, na_value=np.nan)
    tr = _Translator(text, data.columns, eval_namespace(eval_env))
    try:
        code = tr.code(node)
    except FormulaError as err:
        raise _relocated(err, text, formula or text) from None
    factor = _RFactor(code, text) if tr.r else patsy.EvalFactor(text)
    desc = ModelDesc([], [Term([factor])])
    mat = patsy.dmatrix(desc, data, eval_env=r_eval_env(eval_env), NA_action="raise")
    if mat.shape[1] != 1:
        raise ValueError(f"the {what} {text!r} must be one numeric column")
    return np.asarray(mat, dtype=float)[:, 0]


def response_values(parsed: ParsedFormula, data: pd.DataFrame, eval_env: Any = None) -> np.ndarray:
    """The response: its column, or the value of the expression left of ``~``.

    Parameters
    ----------
    parsed : ParsedFormula
    data : pandas.DataFrame
    eval_env : mapping or patsy.EvalEnvironment, optional

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        A response that is not numeric.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.rterms import response_values
    >>> df = pd.DataFrame({"y": [1.0, 100.0], "g": ["a", "b"]})
    >>> response_values(parse_formula("log10(y) ~ 1 + (1 | g)"), df).tolist()
    [0.0, 2.0]
    """
    return expression_values(parsed.response, data, eval_env, "response", parsed.formula)


def offset_values(
    parsed: ParsedFormula, data: pd.DataFrame, eval_env: Any = None
) -> np.ndarray | None:
    """The sum of the formula's ``offset()`` terms (None if it has none).

    Parameters
    ----------
    parsed : ParsedFormula
    data : pandas.DataFrame
    eval_env : mapping or patsy.EvalEnvironment, optional

    Returns
    -------
    numpy.ndarray or None

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.formula import parse_formula
    >>> from mlmprimer.rterms import offset_values
    >>> df = pd.DataFrame({"y": [1.0, 2.0], "n": [1.0, 4.0], "g": ["a", "b"]})
    >>> offset_values(parse_formula("y ~ offset(2 * n) + (1 | g)"), df).tolist()
    [2.0, 8.0]
    """
    if not parsed.offsets:
        return None
    total = np.zeros(len(data))
    for text in parsed.offsets:
        total = total + expression_values(text, data, eval_env, "offset", parsed.formula)
    return total


def _single_factor(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.array  # the Categorical itself, without a Series of its codes
        codes = np.asarray(cat.codes, dtype=np.int64)
        categories = cat.categories
        if codes.size and codes.min() >= 0:
            # as remove_unused_categories, by counting the codes rather than sorting them
            used = np.bincount(codes, minlength=len(categories)) > 0
            if used.all():
                return codes, pd.Index(categories)
            return (np.cumsum(used) - 1)[codes], pd.Index(categories[used])
        cat = values.cat.remove_unused_categories()
        return np.asarray(cat.cat.codes, dtype=np.int64), pd.Index(cat.cat.categories)
    raw = np.asarray(values)
    if raw.dtype.kind in "iu" and raw.size:
        # integers in a range not much wider than the data: sorted levels by counting
        lo = raw.min()
        span = int(raw.max()) - int(lo) + 1
        if span <= 4 * raw.size + 1024:
            shifted = raw - lo if lo != 0 else raw
            present = np.bincount(shifted, minlength=span) > 0
            levels = np.flatnonzero(present).astype(raw.dtype) + lo
            if present.all():  # the codes are the values themselves, shifted
                return shifted.astype(np.int64, copy=shifted is raw), pd.Index(levels)
            return (np.cumsum(present) - 1)[shifted], pd.Index(levels)
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.int64), pd.Index(uniques)


def grouping_factor(data: pd.DataFrame, factors: Sequence[str]) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and levels of a grouping factor (or of an interaction of several).

    A single factor keeps its level order (a pandas categorical's categories, otherwise sorted
    values), dropping unused levels. An interaction ``a:b`` has the observed combinations in R's
    order (the first factor varying slowest), labelled ``"a_level:b_level"``.

    Parameters
    ----------
    data : pandas.DataFrame
    factors : sequence of str

    Returns
    -------
    codes : numpy.ndarray of int, shape (n,)
    levels : pandas.Index

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.rterms import grouping_factor
    >>> df = pd.DataFrame({"cask": ["a", "b", "a"], "batch": ["B", "A", "A"]})
    >>> codes, levels = grouping_factor(df, ["cask", "batch"])
    >>> list(levels), codes.tolist()
    (['a:A', 'a:B', 'b:A'], [1, 2, 0])
    """
    if len(factors) == 1:
        return _single_factor(data[factors[0]])
    parts = [_single_factor(data[f]) for f in factors]
    combined = np.zeros(len(data), dtype=np.int64)
    for codes, levels in parts:
        combined = combined * len(levels) + codes
    observed, codes = np.unique(combined, return_inverse=True)
    labels = []
    rem = observed.copy()
    idx = []
    for _, levels in reversed(parts):
        idx.append(rem % len(levels))
        rem = rem // len(levels)
    idx.reverse()
    for k in range(len(observed)):
        labels.append(
            ":".join(str(levels[i[k]]) for (_, levels), i in zip(parts, idx, strict=True))
        )
    return codes.astype(np.int64), pd.Index(labels)
