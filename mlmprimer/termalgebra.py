"""R's algebra of formula terms (``+ - : * / ^ %in%``), as R's ``terms()`` computes it.

An expression of a formula's right-hand side evaluates to a list of terms, each a set of atoms
(variables, calls such as ``I(x^2)`` or ``poly(x, 2)``), in R's order (main effects, then
interactions), and to what it says about the intercept. :mod:`mlmprimer.formula` parses whole
formulas with it (and updates them); :mod:`mlmprimer.rterms` names the terms' columns.

Examples
--------
>>> from mlmprimer.termalgebra import formula_terms
>>> alg, terms, intercept = formula_terms("a * b - 1", "a * b - 1")
>>> [alg.label(t) for t in terms], intercept
(['a', 'b', 'a:b'], False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import patsy

from .rsyntax import FormulaError, Node, deparse, has_r_syntax, parse_r

__all__ = ["Atom", "TermAlgebra", "formula_terms", "integer_value"]


def _atom_label(node: Node, formula: str) -> str:
    """The name of a formula term as lme4 gives it.

    R spellings get R's deparsed text (``I(x^2)``, ``poly(x, 2)``, ```my var```); Python
    spellings keep the names patsy has always given them (``I(x ** 2)``, ``np.log(x + 1)``).
    """
    if has_r_syntax(node):
        return deparse(node)
    try:
        return patsy.EvalFactor(formula[node.start : node.end]).code
    except Exception:  # text Python cannot tokenise: fall back to R's spelling
        return deparse(node)


@dataclass
class Atom:
    label: str
    node: Node
    kind: str  # "factor", "bar" (a random term, for update) or "offset"


class TermAlgebra:
    """R's algebra of formula terms (``+ - : * / ^ %in%``), as in R's ``terms()``.

    A term is a set of atoms (variables, calls such as ``I(x^2)`` or ``poly(x, 2)``); an
    expression evaluates to a list of terms and what it says about the intercept (True: ``1``,
    False: ``0`` or ``- 1``, None: nothing).
    """

    def __init__(self, formula: str, allow: frozenset[str] = frozenset(), dot: Any = None) -> None:
        self.formula = formula
        self.atoms: list[Atom] = []
        self._index: dict[str, int] = {}
        self.allow = allow
        self.dot = dot

    def error(self, message: str, node: Node) -> FormulaError:
        return FormulaError(message, self.formula, node.pos)

    def atom(self, node: Node, kind: str, label: str | None = None) -> int:
        if label is None:
            label = _atom_label(node, self.formula)
        if label not in self._index:
            self._index[label] = len(self.atoms)
            self.atoms.append(Atom(label, node, kind))
        return self._index[label]

    def label(self, term: frozenset[int]) -> str:
        return ":".join(self.atoms[i].label for i in sorted(term))

    def ordered(self, terms: list[frozenset[int]]) -> list[frozenset[int]]:
        """R's order: by number of factors, then as written."""
        return sorted(terms, key=len)

    def factors_only(self, node: Node) -> list[frozenset[int]]:
        terms, icpt = self.ev(node)
        if icpt is not None:
            raise self.error("0 or 1 (the intercept) cannot be part of an interaction", node)
        return terms

    def ev(self, node: Node) -> tuple[list[frozenset[int]], bool | None]:
        k, v = node.kind, node.value
        if k == "paren":
            inner = node.args[0]
            if inner.kind == "bin" and inner.value in ("|", "||"):
                if "bar" in self.allow:
                    return [frozenset([self.atom(node, "bar", deparse(node))])], None
                raise self.error(
                    "a random-effects term (expr | group) must be a separate term of the sum",
                    inner,
                )
            return self.ev(inner)
        if k == "num":
            try:
                val = (
                    float(int(v.rstrip("L"), 16)) if v[:2] in ("0x", "0X") else float(v.rstrip("L"))
                )
            except ValueError:  # pragma: no cover - the tokenizer only yields numbers
                val = math.nan
            if val == 1:
                return [], True
            if val == 0:
                return [], False
            raise self.error(
                f"the number {v} is not a term of a formula: write 1 or 0 for the intercept, "
                f"or I({v} * x) for arithmetic",
                node,
            )
        if k == "name":
            if v == "." and not node.quoted:
                if self.dot is None:
                    raise self.error(
                        "'.' (all other columns) is not supported in lmer formulas: name the "
                        "columns (update() reads '.' as the formula being updated)",
                        node,
                    )
                return self.dot(self)
            return [frozenset([self.atom(node, "factor")])], None
        if k == "call":
            if v == "offset" and not node.quoted:
                if "offset" in self.allow:
                    return [frozenset([self.atom(node, "offset")])], None
                raise self.error(
                    "offset() must be a term of its own in the sum, as in y ~ x + offset(log(n))",
                    node,
                )
            return [frozenset([self.atom(node, "factor")])], None
        if k == "un":
            if v == "-":
                _, icpt = self.ev(node.args[0])
                return [], None if icpt is None else not icpt
            if v == "+":
                return self.ev(node.args[0])
            raise self.error(
                f"{v!r} is not a formula operator: wrap the expression in I(), e.g. "
                f"I({deparse(node)})",
                node,
            )
        if k == "bin":
            a, b = node.args
            if v == "+":
                A, ia = self.ev(a)
                B, ib = self.ev(b)
                return _union(A, B), ib if ib is not None else ia
            if v == "-":
                A, ia = self.ev(a)
                B, ib = self.ev(b)
                drop = set(B)
                return [t for t in A if t not in drop], (not ib) if ib is not None else ia
            if v in (":", "%in%"):
                return _product(self.factors_only(a), self.factors_only(b)), None
            if v == "*":
                A, B = self.factors_only(a), self.factors_only(b)
                return _union(A, B, _product(A, B)), None
            if v == "/":
                A, B = self.factors_only(a), self.factors_only(b)
                outer = frozenset().union(*A) if A else frozenset()
                return _union(A, [outer | t for t in B]), None
            if v in ("^", "**"):
                A = self.factors_only(a)
                power = integer_value(b)
                if power is None or power < 1:
                    raise self.error(f"the power of terms ({v}) must be a positive whole number", b)
                if len(A) == 1 and power > 1:
                    lab = self.label(A[0])
                    raise self.error(
                        f"{v!r} outside I() crosses terms, so {lab}{v}{power} is just {lab} "
                        f"(as in R): for the power write I({lab}^{power}) or poly({lab}, "
                        f"{power})",
                        node,
                    )
                out = A
                for _ in range(power - 1):
                    out = _union(out, _product(out, A))
                return out, None
            if v in ("|", "||"):
                raise self.error(
                    "'|' outside parentheses: random-effects terms are written (expr | group)",
                    node,
                )
            if v == "~":
                raise self.error("more than one '~' in the formula", node)
            raise self.error(
                f"{v!r} is not a formula operator outside I(): to use it as a predictor, "
                f"wrap it in I(), e.g. I({deparse(node)})",
                node,
            )
        what = "a string" if k == "str" else "a list"
        raise self.error(f"{what} is not a term of a formula", node)


def _union(*lists: list[frozenset[int]]) -> list[frozenset[int]]:
    out: dict[frozenset[int], None] = {}
    for terms in lists:
        for t in terms:
            out.setdefault(t, None)
    return list(out)


def _product(A: list[frozenset[int]], B: list[frozenset[int]]) -> list[frozenset[int]]:
    return _union([x | y for x in A for y in B])


def integer_value(node: Node) -> int | None:
    if node.kind == "paren":
        return integer_value(node.args[0])
    if node.kind != "num":
        return None
    try:
        val = float(node.value.rstrip("L"))
    except ValueError:
        return None
    return int(val) if val.is_integer() else None


def formula_terms(
    text: str, formula: str, offset: int = 0
) -> tuple[TermAlgebra, list[frozenset[int]], bool]:
    """The terms (in R's order) and intercept of a formula's right-hand side ``text``."""
    alg = TermAlgebra(formula)
    terms, icpt = alg.ev(parse_r(text, formula, offset))
    return alg, alg.ordered(terms), True if icpt is None else icpt
