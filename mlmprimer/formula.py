"""lme4 model formulas: parsing, and the fixed-effects and grouping-factor designs they describe.

A mixed-model formula has a response, a fixed part written in patsy's syntax (``C()``, ``I()``,
``*``, ``:``, ``0 +`` / ``- 1``) and random-effects terms in lme4's syntax: ``(1 | g)``,
``(x | g)``, ``(0 + x | g)``, ``(x || g)`` (uncorrelated), crossed ``(1 | a) + (1 | b)``, nested
``(1 | a/b)`` and interaction groups ``(1 | a:b)``.

Examples
--------
>>> from mlmprimer.formula import parse_formula
>>> pf = parse_formula("Reaction ~ Days + (Days | Subject)")
>>> pf.response, pf.fixed
('Reaction', 'Days')
>>> [(t.expr, t.group) for t in pf.random]
[('Days', 'Subject')]
"""

from __future__ import annotations

import difflib
import io
import keyword
import re
import tokenize
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import patsy

__all__ = [
    "FormulaError",
    "ParsedFormula",
    "RandomTerm",
    "parse_formula",
    "lme4_name",
    "fixed_design",
    "term_design",
    "grouping_factor",
    "formula_variables",
    "check_columns",
]

#: patsy and numpy names that may appear in a formula without being columns of the data
_PATSY_BUILTINS = frozenset(
    {
        "C",
        "I",
        "Q",
        "Treatment",
        "Sum",
        "Poly",
        "Diff",
        "Helmert",
        "center",
        "standardize",
        "scale",
        "bs",
        "cr",
        "cc",
        "te",
        "np",
        "numpy",
    }
)


class FormulaError(ValueError):
    """A model formula that cannot be parsed.

    The message says what is wrong and shows the formula with a caret under the offending
    character.

    Parameters
    ----------
    message : str
        What is wrong.
    formula : str
        The formula as written.
    position : int, optional
        0-based index of the offending character in `formula`.

    Examples
    --------
    >>> from mlmprimer.formula import FormulaError, parse_formula
    >>> try:
    ...     parse_formula("y ~ x + (1 | g")
    ... except FormulaError as err:
    ...     print(err.position)
    8
    """

    def __init__(self, message: str, formula: str, position: int | None = None) -> None:
        self.message = message
        self.formula = formula
        self.position = position
        if position is None:
            text = f"{message}\n  {formula}"
        else:
            text = (
                f"{message} (at character {position + 1} of the formula)\n"
                f"  {formula}\n  {' ' * position}^"
            )
        super().__init__(text)


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)`` of an lme4 formula.

    Attributes
    ----------
    expr : str
        The model formula of the term's columns, e.g. ``"1"``, ``"Days"``, ``"0 + Days"``.
    group : str
        The grouping factor as lme4 names it, e.g. ``"Subject"`` or ``"cask:batch"``.
    factors : tuple of str
        The data columns whose combinations form the groups, e.g. ``("cask", "batch")``.
    has_intercept : bool
        Whether the term has a random intercept.
    uncorrelated : bool
        True for the terms produced by expanding ``(x || g)``.
    source : str
        The term as written in the formula.
    position : int
        0-based index of the term in the formula.

    Examples
    --------
    >>> from mlmprimer.formula import parse_formula
    >>> t = parse_formula("y ~ 1 + (0 + x | g)").random[0]
    >>> t.expr, t.group, t.has_intercept
    ('0 + x', 'g', False)
    """

    expr: str
    group: str
    factors: tuple[str, ...]
    has_intercept: bool
    uncorrelated: bool = False
    source: str = ""
    position: int = 0

    def __str__(self) -> str:
        return f"({self.expr} | {self.group})"


@dataclass(frozen=True)
class ParsedFormula:
    """A parsed lme4 formula.

    Attributes
    ----------
    formula : str
        The formula as written.
    response : str
        The response expression (left of ``~``).
    fixed : str
        The fixed part in patsy syntax (``"1"`` if only an intercept).
    random : tuple of RandomTerm
        The random-effects terms, after expanding ``||`` and ``/``, in formula order.

    Examples
    --------
    >>> from mlmprimer.formula import parse_formula
    >>> pf = parse_formula("strength ~ 1 + (1 | batch/cask)")
    >>> [t.group for t in pf.random]
    ['cask:batch', 'batch']
    >>> pf.fixed_formula
    'strength ~ 1'
    """

    formula: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...] = field(default_factory=tuple)

    @property
    def fixed_formula(self) -> str:
        """The fixed part as a complete formula ``response ~ fixed``."""
        return f"{self.response} ~ {self.fixed}"

    @property
    def groups(self) -> list[str]:
        """The distinct grouping factors, in the order of the random terms."""
        return list(dict.fromkeys(t.group for t in self.random))


# ----------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------


def _unquoted(formula: str, start: int, end: int) -> Iterator[tuple[int, str]]:
    """(index, char) of the characters of formula[start:end] outside string literals.

    The quotes themselves are skipped too.
    """
    quote: str | None = None
    for i in range(start, end):
        ch = formula[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        else:
            yield i, ch


def _match_parens(formula: str) -> dict[int, int]:
    """Map each '(' index to its ')' index; raise on unbalanced parentheses."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for i, ch in _unquoted(formula, 0, len(formula)):
        if ch == "(":
            stack.append(i)
        elif ch == ")":
            if not stack:
                raise FormulaError("unbalanced parenthesis: ')' without a matching '('", formula, i)
            pairs[stack.pop()] = i
    if stack:
        raise FormulaError("unbalanced parenthesis: '(' is never closed", formula, stack[-1])
    return pairs


def _top_level(formula: str, start: int, end: int) -> list[tuple[int, str]]:
    """(index, char) of the characters of formula[start:end] outside any parentheses/quotes."""
    out: list[tuple[int, str]] = []
    depth = 0
    for i, ch in _unquoted(formula, start, end):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            out.append((i, ch))
    return out


def _strip_span(formula: str, start: int, end: int) -> tuple[int, int]:
    while start < end and formula[start].isspace():
        start += 1
    while end > start and formula[end - 1].isspace():
        end -= 1
    return start, end


_NAME = r"[A-Za-z_.][A-Za-z0-9_.]*"


def _group_terms(formula: str, start: int, end: int) -> list[tuple[str, tuple[str, ...]]]:
    """Expand a grouping expression as lme4 does: ``a/b`` -> ``b:a``, ``a``."""
    text = formula[start:end]
    if not text.strip():
        raise FormulaError("empty grouping factor after '|'", formula, start)
    compact = re.sub(r"\s+", "", text)
    parts = compact.split("/")
    for part in parts:
        names = part.split(":")
        if not part or not all(re.fullmatch(_NAME, nm) for nm in names):
            pos = start + len(text) - len(text.lstrip())
            raise FormulaError(
                f"grouping factor {text.strip()!r} must be a column name, or column names "
                "joined by ':' (interaction) or '/' (nesting)",
                formula,
                pos,
            )
    # lme4's makeInteraction: a/b/c -> c:(b:a), b:a, a
    result: list[tuple[str, tuple[str, ...]]] = [(parts[0], tuple(parts[0].split(":")))]
    for part in parts[1:]:
        prev_name, prev_factors = result[0]
        inner = f"({prev_name})" if ":" in prev_name else prev_name
        result.insert(0, (f"{part}:{inner}", tuple(part.split(":")) + prev_factors))
    return result


def _expr_terms(expr: str, formula: str, pos: int) -> tuple[bool, list[str]]:
    """Whether a term formula has an intercept, and its other patsy terms' names."""
    try:
        desc = patsy.ModelDesc.from_formula(expr)
    except patsy.PatsyError as err:
        raise FormulaError(
            f"cannot read the random-effects expression {expr!r}: {err.message}", formula, pos
        ) from None
    if desc.lhs_termlist:
        raise FormulaError("'~' inside a random-effects term", formula, pos)
    has_intercept = any(len(t.factors) == 0 for t in desc.rhs_termlist)
    others = [t.name() for t in desc.rhs_termlist if len(t.factors) > 0]
    return has_intercept, others


def _random_term(formula: str, open_: int, close: int) -> list[RandomTerm]:
    """Parse the random term formula[open_:close + 1] = '( expr | group )'."""
    bars = [(i, ch) for i, ch in _top_level(formula, open_ + 1, close) if ch == "|"]
    source = formula[open_ : close + 1]
    if len(bars) == 2 and bars[1][0] == bars[0][0] + 1:
        double, bar, gstart = True, bars[0][0], bars[1][0] + 1
    elif len(bars) == 1:
        double, bar, gstart = False, bars[0][0], bars[0][0] + 1
    else:
        raise FormulaError(
            "a random-effects term has one '|' (or '||'): (expr | group)", formula, bars[-1][0]
        )
    es, ee = _strip_span(formula, open_ + 1, bar)
    expr = formula[es:ee]
    if not expr:
        raise FormulaError(
            "empty random-effects expression before '|' (write 1 for an intercept)",
            formula,
            bar,
        )
    gs, ge = _strip_span(formula, gstart, close)
    if gs == ge:
        raise FormulaError("empty grouping factor after '|'", formula, gstart)
    groups = _group_terms(formula, gs, ge)
    has_intercept, others = _expr_terms(expr, formula, es)
    if not has_intercept and not others:
        raise FormulaError("the random-effects term has no columns", formula, es)
    if double:
        exprs = (["1"] if has_intercept else []) + [f"0 + {o}" for o in others]
        flags = ([True] if has_intercept else []) + [False] * len(others)
    else:
        exprs, flags = [expr], [has_intercept]
    out = []
    for name, factors in groups:
        for e, h in zip(exprs, flags, strict=True):
            out.append(
                RandomTerm(
                    expr=e,
                    group=name,
                    factors=factors,
                    has_intercept=h,
                    uncorrelated=double,
                    source=source,
                    position=open_,
                )
            )
    return out


def parse_formula(formula: str) -> ParsedFormula:
    """Parse an lme4 model formula.

    Parameters
    ----------
    formula : str
        ``response ~ fixed + (expr | group) + ...``. The fixed part uses patsy's syntax.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    FormulaError
        With the position of the problem: unbalanced parentheses, a missing ``~``, an empty
        group, a ``|`` outside parentheses, ...

    Examples
    --------
    >>> from mlmprimer.formula import parse_formula
    >>> pf = parse_formula("y ~ x + (x || g) + (1 | a:b)")
    >>> [str(t) for t in pf.random]
    ['(1 | g)', '(0 + x | g)', '(1 | a:b)']
    >>> parse_formula("y ~ x + 1 | g")
    Traceback (most recent call last):
    ...
    mlmprimer.formula.FormulaError: '|' outside parentheses: ...
    """
    if not isinstance(formula, str):
        raise TypeError(f"formula must be a string, not {type(formula).__name__}")
    if not formula.strip():
        raise FormulaError("empty formula", formula, 0)
    pairs = _match_parens(formula)
    tildes = [i for i, ch in _top_level(formula, 0, len(formula)) if ch == "~"]
    if not tildes:
        raise FormulaError(
            "missing '~' between the response and the predictors", formula, len(formula)
        )
    if len(tildes) > 1:
        raise FormulaError("more than one '~' in the formula", formula, tildes[1])
    tilde = tildes[0]
    rs, re_ = _strip_span(formula, 0, tilde)
    if rs == re_:
        raise FormulaError("missing response before '~'", formula, tilde)
    response = formula[rs:re_]
    if "|" in response:
        raise FormulaError("'|' in the response", formula, rs + response.index("|"))
    start = tilde + 1
    if not formula[start:].strip():
        raise FormulaError("nothing after '~'", formula, len(formula))

    # split the right-hand side at top-level '+' / '-'
    pieces: list[tuple[str, int, int]] = []  # (sign, start, end)
    sign, seg = "+", start
    for i, ch in _top_level(formula, start, len(formula)):
        if ch in "+-":
            # a '-' in a number exponent such as 1e-3 is not an operator
            if (
                ch == "-"
                and i > 0
                and formula[i - 1] in "eE"
                and re.search(r"\d[eE]$", formula[seg:i])
            ):
                continue
            pieces.append((sign, seg, i))
            sign, seg = ch, i + 1
        elif ch == "|":
            raise FormulaError(
                "'|' outside parentheses: random-effects terms are written (expr | group)",
                formula,
                i,
            )
    pieces.append((sign, seg, len(formula)))

    fixed_parts: list[str] = []
    random: list[RandomTerm] = []
    for k, (sign, s, e) in enumerate(pieces):
        s, e = _strip_span(formula, s, e)
        text = formula[s:e]
        is_random = (
            text.startswith("(")
            and pairs.get(s) == e - 1
            and any(ch == "|" for _, ch in _top_level(formula, s + 1, e - 1))
        )
        if is_random:
            if sign == "-":
                raise FormulaError("a random-effects term cannot be subtracted", formula, s)
            random.extend(_random_term(formula, s, e - 1))
            continue
        if "|" in text:
            raise FormulaError(
                "a random-effects term (expr | group) must be a separate term of the sum",
                formula,
                s + text.index("|"),
            )
        if not text:
            if k == 0 and len(pieces) > 1:
                continue  # a leading unary sign, e.g. "y ~ -1 + x"
            raise FormulaError("empty term in the formula", formula, s)
        if not fixed_parts:
            if sign == "-":
                text = "0" if text == "1" else f"1 - {text}"
            fixed_parts.append(text)
        else:
            fixed_parts.append(f"{sign} {text}")
    fixed = " ".join(fixed_parts) if fixed_parts else "1"
    try:
        patsy.ModelDesc.from_formula(fixed)
    except patsy.PatsyError as err:
        raise FormulaError(
            f"cannot read the fixed part {fixed!r}: {err.message}", formula, start
        ) from None
    return ParsedFormula(formula=formula, response=response, fixed=fixed, random=tuple(random))


# ----------------------------------------------------------------------------------------------
# column names and variables
# ----------------------------------------------------------------------------------------------

_BRACKET = re.compile(r"\[(?:[TSDHP]\.)?([^\[\]]*)\]")


def lme4_name(name: str) -> str:
    """Translate a patsy column name into lme4's.

    Parameters
    ----------
    name : str
        A patsy design-matrix column name.

    Returns
    -------
    str

    Examples
    --------
    >>> from mlmprimer.formula import lme4_name
    >>> [lme4_name(n) for n in ["Intercept", "sector[T.Catholic]", "C(x)[T.b]", "a:b"]]
    ['(Intercept)', 'sectorCatholic', 'C(x)b', 'a:b']
    """
    if name == "Intercept":
        return "(Intercept)"
    return _BRACKET.sub(r"\1", name)


def formula_variables(text: str) -> list[str]:
    """The names in a formula (or part of one) that may be data columns.

    Function names (followed by ``(``), attributes, keyword arguments and Python keywords are
    skipped; ``Q("name")`` yields ``name``.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str
        In order of first appearance.

    Examples
    --------
    >>> from mlmprimer.formula import formula_variables
    >>> formula_variables("np.log(y) ~ C(x, Treatment(reference='b')) + I(z**2) + (1 | g/h)")
    ['y', 'x', 'z', 'g', 'h']
    """
    try:
        toks = [
            t
            for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER)
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        toks = []
    names: list[str] = []
    for k, tok in enumerate(toks):
        nxt = toks[k + 1].string if k + 1 < len(toks) else ""
        prev = toks[k - 1].string if k > 0 else ""
        if tok.type == tokenize.STRING and prev == "(" and k >= 2 and toks[k - 2].string == "Q":
            try:
                names.append(str(eval(tok.string, {}, {})))  # noqa: S307 - a string literal
            except Exception:  # pragma: no cover - defensive
                pass
            continue
        if tok.type != tokenize.NAME or keyword.iskeyword(tok.string):
            continue
        if nxt in ("(", ".", "=") or prev == ".":
            continue
        names.append(tok.string)
    return list(dict.fromkeys(names))


def check_columns(
    parsed: ParsedFormula, data: pd.DataFrame, namespace: Mapping[str, Any] | None = None
) -> list[str]:
    """Check that the formula's variables exist; return the data columns it uses.

    Parameters
    ----------
    parsed : ParsedFormula
    data : pandas.DataFrame
    namespace : mapping, optional
        Names the formula may also use (the caller's variables).

    Returns
    -------
    list of str
        The data columns used, in order of appearance.

    Raises
    ------
    ValueError
        Naming an unknown column and listing close matches.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.formula import check_columns, parse_formula
    >>> df = pd.DataFrame({"y": [1.0], "Days": [0], "Subject": ["a"]})
    >>> check_columns(parse_formula("y ~ Days + (1 | Subject)"), df)
    ['y', 'Days', 'Subject']
    """
    namespace = namespace or {}
    columns = [str(c) for c in data.columns]
    used: list[str] = []
    parts = [parsed.response, parsed.fixed]
    for t in parsed.random:
        parts.append(t.expr)
    for part in parts:
        for nm in formula_variables(part):
            if nm in columns:
                used.append(nm)
            elif nm in namespace or nm in _PATSY_BUILTINS:
                continue
            else:
                _unknown(nm, columns, parsed.formula)
    for t in parsed.random:
        for nm in t.factors:
            if nm not in columns:
                _unknown(nm, columns, parsed.formula, grouping=True)
            used.append(nm)
    return list(dict.fromkeys(used))


def _unknown(name: str, columns: Sequence[str], formula: str, grouping: bool = False) -> None:
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
    lower = [c for c in columns if c.lower() == name.lower() and c not in close]
    close = lower + close
    what = "grouping factor" if grouping else "variable"
    msg = f"unknown column {name!r} (a {what} in the formula {formula!r}) is not in the data"
    if close:
        msg += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    else:
        shown = ", ".join(repr(c) for c in list(columns)[:12])
        msg += f"; the data has columns {shown}" + (" ..." if len(columns) > 12 else "")
    raise ValueError(msg)


# ----------------------------------------------------------------------------------------------
# designs
# ----------------------------------------------------------------------------------------------


def _eval_env(env: Any) -> patsy.EvalEnvironment:
    if isinstance(env, patsy.EvalEnvironment):
        return env
    if env is None:
        return patsy.EvalEnvironment([{"np": np}])
    return patsy.EvalEnvironment([dict(env), {"np": np}])


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
    >>> from mlmprimer.formula import fixed_design, parse_formula
    >>> df = pd.DataFrame({"y": [1.0, 2, 3], "s": pd.Categorical(["P", "C", "P"], ["P", "C"])})
    >>> X, _ = fixed_design(parse_formula("y ~ s + (1 | s)"), df)
    >>> list(X.columns)
    ['(Intercept)', 'sC']
    """
    mat = patsy.dmatrix(
        parsed.fixed, data, eval_env=_eval_env(eval_env), NA_action="raise", return_type="dataframe"
    )
    info = mat.design_info
    # R keeps the formula's order of terms (by degree: main effects, then interactions);
    # patsy puts terms without numeric factors first
    written = patsy.ModelDesc.from_formula(parsed.fixed).rhs_termlist
    ordered = sorted((t for t in written if t in info.term_slices), key=lambda t: len(t.factors))
    ordered += [t for t in info.terms if t not in ordered]
    cols = np.concatenate(
        [np.arange(info.term_slices[t].start, info.term_slices[t].stop) for t in ordered]
        or [np.zeros(0, dtype=int)]
    ).astype(int)
    X = pd.DataFrame(
        np.asarray(mat, dtype=float)[:, cols],
        index=data.index,
        columns=[lme4_name(info.column_names[j]) for j in cols],
    )
    return X, info


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
    >>> from mlmprimer.formula import parse_formula, term_design
    >>> df = pd.DataFrame({"y": [1.0, 2], "x": [0.5, 1.5], "g": ["a", "b"]})
    >>> Xi, names, _ = term_design(parse_formula("y ~ (x | g)").random[0], df)
    >>> names, Xi.shape
    (['(Intercept)', 'x'], (2, 2))
    """
    mat = patsy.dmatrix(term.expr, data, eval_env=_eval_env(eval_env), NA_action="raise")
    names = [lme4_name(c) for c in mat.design_info.column_names]
    return np.asarray(mat, dtype=float), names, mat.design_info


def _single_factor(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.cat.remove_unused_categories()
        return np.asarray(cat.cat.codes, dtype=np.int64), pd.Index(cat.cat.categories)
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
    >>> from mlmprimer.formula import grouping_factor
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
