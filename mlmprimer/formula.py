"""lme4 model formulas: R's formula language, and the designs a formula describes.

A mixed-model formula has a response, a fixed part and random-effects terms. Both are read as
R (and so lme4) reads them, then translated for patsy, which builds the model matrices: R's
``^`` is a power inside ``I()`` and crossing outside it, ``poly()`` gives R's orthogonal
polynomials, ``log()``, ``scale()`` and ``offset()`` mean R's functions, and names may carry dots
(``my.var``) or be written in backticks (```my var```). Python's own spellings (``np.log(x)``,
``x**2``, ``C(f)``, ``Q("name")``, functions of the caller) keep working as patsy reads them.

Random-effects terms use lme4's syntax: ``(1 | g)``, ``(x | g)``, ``(0 + x | g)``, ``(x || g)``
(uncorrelated), crossed ``(1 | a) + (1 | b)``, nested ``(1 | a/b)`` and interaction groups
``(1 | a:b)``.

This module parses and updates formulas, with R's term algebra of :mod:`mlmprimer.termalgebra`;
:mod:`mlmprimer.rterms` translates the parsed terms for patsy and builds the model matrices,
and :mod:`mlmprimer.validate` checks the data.

What is supported (each row is tested in ``tests/test_formula.py``):

=======================================  =====  =================================================
R syntax                                 here   meaning (as in R and lme4)
=======================================  =====  =================================================
``a + b``, ``a - b``, ``0 +``, ``- 1``   yes    add and remove terms; drop the intercept
``a:b``                                  yes    interaction (products of columns, factor cells)
``a * b``                                yes    ``a + b + a:b``
``(a + b)^2``                            yes    crossing up to two-way terms (also ``**``)
``a / b``, ``b %in% a``                  yes    nesting: ``a + a:b``; ``b:a``
``I(x^2)``                               yes    R arithmetic: ``^`` power, ``%%``, ``%/%``, ``!``
``poly(x, 2)``                           yes    R's orthogonal polynomials; ``raw = TRUE`` powers
``log(x)``, ``exp(x)``, ``sqrt(x)``      yes    also ``log(x, base)``, ``log2``, ``log10``,
                                                ``log1p``, ``expm1``, ``abs``, ``sin``, ``cos``
``scale(x)``                             yes    centre, divide by the SD (n - 1) of the fit data
``offset(x)``                            yes    a term with coefficient 1 (or ``lmer(offset=)``)
``factor(x)``, ``relevel(f, ref=)``      yes    a factor; a factor with another reference level
```my var```, ``my.var``                 yes    names with spaces or dots (also as groups)
``log(y) ~ x``                           yes    a transformed response
``np.log(x)``, ``C(f)``, ``Q("x")``      yes    Python spellings, read by patsy as before
``x^2`` (outside ``I()``)                error  R reads it as ``x``: write ``I(x^2)``
``.`` (all other columns)                error  name the columns (``update()`` knows ``.``)
``ns(x, 3)``, ``cut(x)``, ``ifelse()``   error  other R functions: compute the column first
``poly(x, z, degree = 2)``               error  several variables in one ``poly()``
``&&``, ``||``, ``$``, ``[ ]``, ``1:3``  error  no scalar logic, indexing or sequences
=======================================  =====  =================================================

Examples
--------
>>> from mlmprimer.formula import parse_formula
>>> pf = parse_formula("Reaction ~ Days + (Days | Subject)")
>>> pf.response, pf.fixed
('Reaction', 'Days')
>>> [(t.expr, t.group) for t in pf.random]
[('Days', 'Subject')]
>>> parse_formula("y ~ I(x^2) + offset(log(n)) + (1 | g)").offsets
('log(n)',)
"""

from __future__ import annotations

import difflib
import functools
import keyword
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .rsyntax import (
    R_LITERALS,
    R_VARIABLES,
    FormulaError,
    Node,
    has_r_syntax,
    parse_r,
    tokenize,
)
from .termalgebra import TermAlgebra, formula_terms

__all__ = [
    "FormulaError",
    "ParsedFormula",
    "RandomTerm",
    "parse_formula",
    "lme4_name",
    "formula_variables",
    "check_columns",
    "fixed_terms",
    "formula_terms",
    "r_only_parts",
    "r_text",
    "update_formula",
]

#: patsy and numpy names that may appear in a formula without being columns of the data
PATSY_BUILTINS = frozenset(
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
        "bs",
        "cr",
        "cc",
        "te",
        "np",
        "numpy",
    }
)


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
        The fixed part as written, without random terms and offsets (``"1"`` if only an
        intercept).
    random : tuple of RandomTerm
        The random-effects terms, after expanding ``||`` and ``/``, in formula order.
    offsets : tuple of str
        The expressions inside the formula's ``offset()`` terms.

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
    offsets: tuple[str, ...] = ()

    @property
    def fixed_formula(self) -> str:
        """The fixed part as a complete formula ``response ~ fixed``."""
        return f"{self.response} ~ {self.fixed}"

    @property
    def groups(self) -> list[str]:
        """The distinct grouping factors, in the order of the random terms."""
        return list(dict.fromkeys(t.group for t in self.random))


def r_only_parts(parsed: ParsedFormula) -> list[str]:
    """The parts of a formula written in R's spelling, which patsy (and so statsmodels) would
    read differently or not at all."""
    out = []
    for part in (parsed.response, parsed.fixed, *(t.expr for t in parsed.random)):
        try:
            if has_r_syntax(parse_r(part)):
                out.append(part)
        except FormulaError:
            out.append(part)
    return out


# ----------------------------------------------------------------------------------------------
# parsing
# ----------------------------------------------------------------------------------------------


def _unquoted(formula: str, start: int, end: int) -> Iterator[tuple[int, str]]:
    """(index, char) of the characters of formula[start:end] outside strings and backticks.

    The quotes themselves are skipped too.
    """
    quote: str | None = None
    for i in range(start, end):
        ch = formula[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'`":
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


_NAME = r"(?:`[^`]+`|[A-Za-z_.][A-Za-z0-9_.]*)"
_GROUP_EXPR = re.compile(rf"\s*{_NAME}(?:\s*[:/]\s*{_NAME})*\s*")
_GROUP_TOKEN = re.compile(rf"{_NAME}|[:/]")


def _group_terms(formula: str, start: int, end: int) -> list[tuple[str, tuple[str, ...]]]:
    """Expand a grouping expression as lme4 does: ``a/b`` -> ``b:a``, ``a``."""
    text = formula[start:end]
    if not text.strip():
        raise FormulaError("empty grouping factor after '|'", formula, start)
    if not _GROUP_EXPR.fullmatch(text):
        pos = start + len(text) - len(text.lstrip())
        raise FormulaError(
            f"grouping factor {text.strip()!r} must be a column name, or column names "
            "joined by ':' (interaction) or '/' (nesting)",
            formula,
            pos,
        )
    parts: list[list[str]] = [[]]
    for tok in _GROUP_TOKEN.findall(text):
        if tok == "/":
            parts.append([])
        elif tok != ":":
            parts[-1].append(tok[1:-1] if tok.startswith("`") else tok)
    # lme4's makeInteraction: a/b/c -> c:(b:a), b:a, a
    first = ":".join(parts[0])
    result: list[tuple[str, tuple[str, ...]]] = [(first, tuple(parts[0]))]
    for part in parts[1:]:
        prev_name, prev_factors = result[0]
        inner = f"({prev_name})" if ":" in prev_name else prev_name
        result.insert(0, (f"{':'.join(part)}:{inner}", tuple(part) + prev_factors))
    return result


def _expr_terms(expr: str, formula: str, pos: int) -> tuple[bool, list[str]]:
    """Whether a term formula has an intercept, and its other terms' names."""
    alg, terms, icpt = formula_terms(expr, formula, pos)
    return icpt, [alg.label(t) for t in terms]


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


def _offset_argument(formula: str, s: int, e: int) -> str | None:
    """The argument text if formula[s:e] is exactly ``offset(<expr>)``, else None."""
    m = re.match(r"offset\s*\(", formula[s:e])
    if m is None:
        return None
    node = parse_r(formula[s:e], formula, s)
    if node.kind != "call" or node.value != "offset" or node.quoted:
        return None
    if len(node.args) != 1 or node.names[0] is not None:
        raise FormulaError("offset() takes one expression, as in offset(log(n))", formula, s)
    arg = node.args[0]
    return formula[arg.start : arg.end]


def parse_formula(formula: str) -> ParsedFormula:
    """Parse an lme4 model formula.

    Parameters
    ----------
    formula : str
        ``response ~ fixed + (expr | group) + ...``, in R's formula language (see the table
        in :mod:`mlmprimer.formula`).

    Returns
    -------
    ParsedFormula

    Raises
    ------
    FormulaError
        With the position of the problem: unbalanced parentheses, a missing ``~``, an empty
        group, a ``|`` outside parentheses, an operator R's formulas do not have, ...

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
    return _cached_parse(formula) if type(formula) is str else _parse(formula)


def _parse(formula: str) -> ParsedFormula:
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
    parse_r(response, formula, rs)
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
                and re.search(r"(?<![A-Za-z_.])\d+\.?\d*[eE]$", formula[seg:i])
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
    offsets: list[str] = []
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
        if "|" in (ch for _, ch in _unquoted(formula, s, e)):
            bar = next(i for i, ch in _unquoted(formula, s, e) if ch == "|")
            raise FormulaError(
                "a random-effects term (expr | group) must be a separate term of the sum (as "
                "in lme4, every '|' of a formula, also one inside I(), is read as such a term)",
                formula,
                bar,
            )
        if not text:
            if k == 0 and len(pieces) > 1:
                continue  # a leading unary sign, e.g. "y ~ -1 + x"
            raise FormulaError("empty term in the formula", formula, s)
        off = _offset_argument(formula, s, e)
        if off is not None:
            if sign == "-":
                raise FormulaError("an offset cannot be subtracted", formula, s)
            offsets.append(off)
            continue
        TermAlgebra(formula).ev(parse_r(text, formula, s))  # R's formula syntax, or an error
        if not fixed_parts:
            if sign == "-":
                text = "0" if text == "1" else f"1 - {text}"
            fixed_parts.append(text)
        else:
            fixed_parts.append(f"{sign} {text}")
    fixed = " ".join(fixed_parts) if fixed_parts else "1"
    return ParsedFormula(
        formula=formula,
        response=response,
        fixed=fixed,
        random=tuple(random),
        offsets=tuple(offsets),
    )


# a ParsedFormula is frozen: a formula read again (a refit, the checks of a fit) is not parsed again
_cached_parse = functools.lru_cache(maxsize=256)(_parse)


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


def _variable_names(node: Node) -> Iterator[str]:
    if node.kind == "name":
        if node.quoted or (node.value not in R_LITERALS and not keyword.iskeyword(node.value)):
            yield node.value
        return
    if node.kind == "call":
        if node.value == "Q" and len(node.args) == 1 and node.args[0].kind == "str":
            yield node.args[0].value
            return
    for a in node.args:
        yield from _variable_names(a)


def formula_variables(text: str) -> list[str]:
    """The names in a formula (or part of one) that may be data columns.

    Function names, keyword arguments, R's constants (``TRUE``, ``NULL``, ...) and Python
    keywords are skipped; backticks are removed (```my var``` yields ``my var``) and
    ``Q("name")`` yields ``name``. A dotted name such as ``my.var`` is one name, as in R.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of str
        In order of first appearance (empty if ``text`` cannot be read).

    Examples
    --------
    >>> from mlmprimer.formula import formula_variables
    >>> formula_variables("np.log(y) ~ C(x, Treatment(reference='b')) + I(z**2) + (1 | g/h)")
    ['y', 'x', 'z', 'g', 'h']
    >>> formula_variables("log(y) ~ poly(`my var`, 2, raw = TRUE) + my.x")
    ['y', 'my var', 'my.x']
    """
    return list(_cached_variables(text) if type(text) is str else _variables(text))


def _variables(text: str) -> tuple[str, ...]:
    try:
        node = parse_r(text)
    except FormulaError:
        return ()
    return tuple(dict.fromkeys(_variable_names(node)))


# the same text is read by the checks, the design and the results of a fit: read it once
_cached_variables = functools.lru_cache(maxsize=1024)(_variables)


def in_namespace(name: str, namespace: Mapping[str, Any] | None) -> bool:
    if namespace is None:
        return False
    try:
        namespace[name]
    except (KeyError, TypeError):
        return False
    return True


def _parts(parsed: ParsedFormula) -> list[str]:
    return [parsed.response, parsed.fixed, *parsed.offsets, *(t.expr for t in parsed.random)]


def check_columns(
    parsed: ParsedFormula, data: pd.DataFrame, namespace: Mapping[str, Any] | None = None
) -> list[str]:
    """Check that the formula's variables exist; return the data columns it uses.

    A name is a column of the data, or else a name of ``namespace`` (the caller's variables),
    a patsy or numpy name, or R's ``T``, ``F`` and ``pi``. A dotted name that is not a column
    is Python attribute access when the part before the dot is a known name (``np.pi``).

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
    columns = [str(c) for c in data.columns]
    colset = set(columns)
    used: list[str] = []
    for part in _parts(parsed):
        for nm in formula_variables(part):
            if nm in colset:
                used.append(nm)
                continue
            root = nm.split(".", 1)[0]
            if "." in nm[1:] and root:
                if root in colset:
                    used.append(root)
                    continue
                if root in ("np", "numpy") or in_namespace(root, namespace):
                    continue
            if in_namespace(nm, namespace) or nm in PATSY_BUILTINS or nm in R_VARIABLES:
                continue
            _unknown(nm, columns, parsed.formula)
    for t in parsed.random:
        for nm in t.factors:
            if nm not in colset:
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
# checking the data before a design is built
# ----------------------------------------------------------------------------------------------


def r_text(value: Any) -> str:
    """A number as R's as.character writes it (1 -> "1", 2.5 -> "2.5", True -> "TRUE")."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return format(value, ".15g") if isinstance(value, float | np.floating) else str(value)


def _sides(formula: str) -> tuple[str, str, int]:
    tildes = [i for i, ch in _top_level(formula, 0, len(formula)) if ch == "~"]
    if len(tildes) != 1:
        raise FormulaError("a formula needs exactly one '~'", formula, tildes[1] if tildes else 0)
    t = tildes[0]
    return formula[:t].strip(), formula[t + 1 :], t + 1


def fixed_terms(parsed: ParsedFormula) -> list[tuple[str, frozenset[str]]]:
    """The fixed part's terms in R's order: each label (R's ``term.labels``) and its variables.

    A term is *marginal* to another whose variables include its own (``a`` and ``b`` to
    ``a:b``); R's ``drop.scope`` keeps the terms marginal to none.

    Examples
    --------
    >>> from mlmprimer.formula import fixed_terms, parse_formula
    >>> [label for label, _ in fixed_terms(parse_formula("y ~ a * b + x + (1 | g)"))]
    ['a', 'b', 'x', 'a:b']
    """
    alg, terms, _ = formula_terms(parsed.fixed, parsed.fixed)
    return [(alg.label(t), frozenset(alg.atoms[i].label for i in t)) for t in terms]


def update_formula(old: str, new: str) -> str:
    """R's ``update(old, new)`` of a formula: ``.`` stands for what ``old`` had there.

    Terms are combined with R's algebra and written in R's order (main effects, then
    interactions; random-effects terms as terms of their own; offsets last).

    Parameters
    ----------
    old : str
        The formula being updated.
    new : str
        E.g. ``". ~ . + x"``, ``". ~ . - x"``, ``"log(.) ~ ."``, ``"~ . + (1 | h)"``.

    Returns
    -------
    str

    Examples
    --------
    >>> from mlmprimer.formula import update_formula
    >>> update_formula("Reaction ~ Days + (Days | Subject)", ". ~ . + I(Days^2)")
    'Reaction ~ Days + (Days | Subject) + I(Days^2)'
    >>> update_formula("Reaction ~ Days + (Days | Subject)", ". ~ . - Days")
    'Reaction ~ (Days | Subject)'
    >>> update_formula("y ~ a*b + (1 | g)", "log(.) ~ . - a:b")
    'log(y) ~ a + b + (1 | g)'
    """
    parse_formula(old)
    o_lhs, o_rhs, o_start = _sides(old)
    if "~" not in new:
        raise FormulaError("missing '~' in the update, e.g. '. ~ . + x'", new, len(new))
    n_lhs, n_rhs, n_start = _sides(new)
    if not n_lhs or n_lhs == ".":
        lhs = o_lhs
    else:
        node = parse_r(o_lhs)
        repl = o_lhs if node.kind in ("name", "call", "paren") else f"({o_lhs})"
        toks = [
            t
            for t in tokenize(n_lhs, n_lhs)
            if t.kind == "name" and t.value == "." and not t.quoted
        ]
        lhs = n_lhs
        for t in reversed(toks):
            lhs = lhs[: t.start] + repl + lhs[t.end :]
    allow = frozenset({"bar", "offset"})
    old_alg = TermAlgebra(old, allow)
    old_terms, old_icpt = old_alg.ev(parse_r(o_rhs, old, o_start))

    def dot(alg: TermAlgebra) -> tuple[list[frozenset[int]], bool | None]:
        mapped = [
            frozenset(
                alg.atom(old_alg.atoms[i].node, old_alg.atoms[i].kind, old_alg.atoms[i].label)
                for i in sorted(t)
            )
            for t in old_terms
        ]
        return mapped, old_icpt

    alg = TermAlgebra(new, allow, dot)
    terms, icpt = alg.ev(parse_r(n_rhs, new, n_start))
    terms = alg.ordered(terms)
    offsets = [t for t in terms if any(alg.atoms[i].kind == "offset" for i in t)]
    parts = [alg.label(t) for t in terms if t not in offsets] + [alg.label(t) for t in offsets]
    rhs = " + ".join(parts)
    if icpt is False:
        rhs = f"{rhs} - 1" if rhs else "0"
    elif not rhs:
        rhs = "1"
    out = f"{lhs} ~ {rhs}"
    parse_formula(out)
    return out
