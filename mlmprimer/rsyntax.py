"""R expressions: tokens, the syntax tree, and R's names for literals and functions.

A small Pratt parser of R's expression grammar (operators with R's precedence, calls with named
arguments, backticks, strings, numbers as R writes them), used by :mod:`mlmprimer.formula` to
read formulas and by :mod:`mlmprimer.rterms` to translate them for patsy. Errors are
:class:`FormulaError`, with the position in the formula.

Examples
--------
>>> from mlmprimer.rsyntax import deparse, parse_r
>>> tree = parse_r("log(y, base = 2) ~ x^2")
>>> tree.kind, tree.value, deparse(tree)
('bin', '~', 'log(y, base = 2) ~ x^2')
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "R_LITERALS",
    "R_MATH",
    "R_TERM_FUNCTIONS",
    "R_VARIABLES",
    "FormulaError",
    "Node",
    "deparse",
    "has_r_syntax",
    "parse_r",
    "tokenize",
]


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

    # users meet it as mlmprimer.formula.FormulaError (its documented name)
    __module__ = "mlmprimer.formula"

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


# ----------------------------------------------------------------------------------------------
# R expressions: tokens and syntax tree
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "num", "str", "op", "end"
    value: str  # a name without backticks, a number's text, a string's value, an operator
    start: int
    end: int
    quoted: bool = False  # a name written in backticks


@dataclass(frozen=True)
class Node:
    """A node of an R expression; ``start``/``end`` index the formula text."""

    kind: str  # "name", "num", "str", "call", "bin", "un", "paren", "list"
    value: str
    args: tuple[Node, ...] = ()
    start: int = 0
    end: int = 0
    pos: int = 0  # the operator or function name, for messages
    quoted: bool = False
    names: tuple[str | None, ...] = ()  # argument names of a call


_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+L?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?")
_SPECIAL = re.compile(r"%[^%\s]*%")
_OPERATORS = tuple(
    "::: :: ** // <= >= == != && || <- |> ~ + - * / ^ : < > ! & | = ( ) , [ ] $ @ % { } ; ?".split()
)

#: binary operators: (left, right) binding power, R's precedence (?Syntax); Python's ``**``,
#: ``%`` and ``//`` sit with R's ``^`` and ``*``
_INFIX: dict[str, tuple[int, int]] = {
    "~": (10, 11),
    "|": (20, 21),
    "||": (20, 21),
    "&": (30, 31),
    "&&": (30, 31),
    "==": (50, 51),
    "!=": (50, 51),
    "<": (50, 51),
    ">": (50, 51),
    "<=": (50, 51),
    ">=": (50, 51),
    "+": (60, 61),
    "-": (60, 61),
    "*": (70, 71),
    "/": (70, 71),
    "%": (70, 71),
    "//": (70, 71),
    "|>": (80, 81),
    ":": (90, 91),
    "^": (110, 110),
    "**": (110, 110),
}
_SPECIAL_BP = (80, 81)
_PREFIX = {"-": 100, "+": 100, "!": 40, "~": 10}


def _is_name_start(ch: str, nxt: str) -> bool:
    return ch.isalpha() or ch == "_" or (ch == "." and not nxt.isdigit())


def tokenize(text: str, formula: str, offset: int = 0) -> list[_Token]:
    """R tokens of ``text``, which starts at ``offset`` in ``formula`` (for messages)."""
    toks: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        nxt = text[i + 1] if i + 1 < n else ""
        if ch.isdigit() or (ch == "." and nxt.isdigit()):
            m = _NUMBER.match(text, i)
            assert m is not None
            i = m.end()
            toks.append(_Token("num", m.group(), offset + start, offset + i))
        elif _is_name_start(ch, nxt):
            i += 1
            while i < n and (text[i].isalnum() or text[i] in "._"):
                i += 1
            toks.append(_Token("name", text[start:i], offset + start, offset + i))
        elif ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise FormulaError("a backtick ` is never closed", formula, offset + start)
            if end == i + 1:
                raise FormulaError("empty name in backticks", formula, offset + start)
            toks.append(
                _Token("name", text[i + 1 : end], offset + start, offset + end + 1, quoted=True)
            )
            i = end + 1
        elif ch in "\"'":
            j, chars = i + 1, []
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n:
                    esc = text[j + 1]
                    chars.append({"n": "\n", "t": "\t", "r": "\r"}.get(esc, esc))
                    j += 2
                else:
                    chars.append(text[j])
                    j += 1
            if j >= n:
                raise FormulaError("a string is never closed", formula, offset + start)
            i = j + 1
            toks.append(_Token("str", "".join(chars), offset + start, offset + i))
        else:
            m = _SPECIAL.match(text, i) if ch == "%" else None
            if m is not None and len(m.group()) > 1:
                i = m.end()
                toks.append(_Token("op", m.group(), offset + start, offset + i))
                continue
            for op in _OPERATORS:
                if text.startswith(op, i):
                    i += len(op)
                    toks.append(_Token("op", op, offset + start, offset + i))
                    break
            else:
                raise FormulaError(f"unexpected character {ch!r}", formula, offset + start)
    toks.append(_Token("end", "", offset + n, offset + n))
    return toks


class _Parser:
    """A Pratt parser of R expressions with R's operator precedence."""

    def __init__(self, toks: list[_Token], formula: str) -> None:
        self.toks = toks
        self.k = 0
        self.formula = formula

    def peek(self) -> _Token:
        return self.toks[self.k]

    def take(self) -> _Token:
        tok = self.toks[self.k]
        self.k += 1
        return tok

    def error(self, message: str, pos: int) -> FormulaError:
        return FormulaError(message, self.formula, pos)

    def expect(self, op: str) -> _Token:
        tok = self.take()
        if tok.kind != "op" or tok.value != op:
            what = "the end" if tok.kind == "end" else repr(tok.value)
            raise self.error(f"expected {op!r} but found {what}", tok.start)
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("empty expression", self.peek().start)
        node = self.expr(0)
        tok = self.peek()
        if tok.kind != "end":
            raise self.error(f"unexpected {tok.value!r}", tok.start)
        return node

    def expr(self, min_bp: int) -> Node:
        lhs = self.prefix(self.take())
        while True:
            tok = self.peek()
            if tok.kind != "op":
                if tok.kind != "end":
                    raise self.error(
                        f"unexpected {tok.value!r}: an operator is missing before it", tok.start
                    )
                break
            op = tok.value
            if op in ("[", "$", "@", "::", ":::"):
                raise self.error(
                    f"{op!r} (indexing or component access) is not supported in a formula: "
                    "use a column of the data",
                    tok.start,
                )
            if op == "(":
                raise self.error("only a function name can be called", tok.start)
            if op in _INFIX:
                lbp, rbp = _INFIX[op]
            elif op.startswith("%") and len(op) > 1:
                lbp, rbp = _SPECIAL_BP
            else:
                break
            if lbp < min_bp:
                break
            self.take()
            rhs = self.expr(rbp)
            lhs = Node("bin", op, (lhs, rhs), lhs.start, rhs.end, tok.start)
        return lhs

    def prefix(self, tok: _Token) -> Node:
        if tok.kind == "name":
            if self.peek().kind == "op" and self.peek().value == "(":
                return self.call(tok)
            return Node("name", tok.value, (), tok.start, tok.end, tok.start, tok.quoted)
        if tok.kind == "num":
            return Node("num", tok.value, (), tok.start, tok.end, tok.start)
        if tok.kind == "str":
            return Node("str", tok.value, (), tok.start, tok.end, tok.start)
        if tok.kind == "op":
            if tok.value == "(":
                inner = self.expr(0)
                close = self.expect(")")
                return Node("paren", "(", (inner,), tok.start, close.end, tok.start)
            if tok.value == "[":  # a Python list, e.g. C(x, levels=["b", "a"])
                items: list[Node] = []
                while not (self.peek().kind == "op" and self.peek().value == "]"):
                    items.append(self.expr(0))
                    if self.peek().kind == "op" and self.peek().value == ",":
                        self.take()
                    elif not (self.peek().kind == "op" and self.peek().value == "]"):
                        raise self.error("expected ',' or ']'", self.peek().start)
                close = self.expect("]")
                return Node("list", "[", tuple(items), tok.start, close.end, tok.start)
            if tok.value in _PREFIX:
                operand = self.expr(_PREFIX[tok.value])
                return Node("un", tok.value, (operand,), tok.start, operand.end, tok.start)
        if tok.kind == "end":
            raise self.error("the expression ends too early", tok.start)
        raise self.error(f"unexpected {tok.value!r}", tok.start)

    def call(self, name: _Token) -> Node:
        self.expect("(")
        args: list[Node] = []
        names: list[str | None] = []
        while not (self.peek().kind == "op" and self.peek().value == ")"):
            tok, nxt = self.peek(), self.toks[self.k + 1]
            if tok.kind == "name" and nxt.kind == "op" and nxt.value == "=":
                self.take()
                self.take()
                names.append(tok.value)
            else:
                names.append(None)
            args.append(self.expr(0))
            if self.peek().kind == "op" and self.peek().value == ",":
                self.take()
            elif not (self.peek().kind == "op" and self.peek().value == ")"):
                tok = self.peek()
                what = "the end" if tok.kind == "end" else repr(tok.value)
                raise self.error(
                    f"expected ',' or ')' in the call of {name.value}, found {what}", tok.start
                )
        close = self.expect(")")
        return Node(
            "call",
            name.value,
            tuple(args),
            name.start,
            close.end,
            name.start,
            name.quoted,
            tuple(names),
        )


def parse_r(text: str, formula: str | None = None, offset: int = 0) -> Node:
    """The syntax tree of the R expression ``text`` (at ``offset`` in ``formula``)."""
    formula = text if formula is None else formula
    return _Parser(tokenize(text, formula, offset), formula).parse()


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for a in node.args:
        yield from _walk(a)


# ----------------------------------------------------------------------------------------------
# R names, labels and the algebra of formula terms
# ----------------------------------------------------------------------------------------------

_R_RESERVED = frozenset(
    "if else repeat while function for next break in TRUE FALSE NULL Inf NaN NA NA_integer_ "
    "NA_real_ NA_character_".split()
)
#: R's literal constants: reserved words, so never column names
R_LITERALS = {
    "TRUE": "True",
    "FALSE": "False",
    "NULL": "None",
    "Inf": "np.inf",
    "NaN": "np.nan",
    "NA": "np.nan",
}
#: R's base variables a formula may use when no column or Python name has that name
R_VARIABLES = {"T": "True", "F": "False", "pi": "np.pi"}
#: R operators that R writes without spaces (deparse)
_TIGHT_OPS = frozenset({"^", ":", "/", "%%", "%/%"})
_R_SYNTACTIC = re.compile(r"(?:[^\W\d_]|\.(?![0-9]))[\w.]*|\.")

#: elementwise R functions: R name -> numpy function
R_MATH = {
    "log": "log",
    "log2": "log2",
    "log10": "log10",
    "log1p": "log1p",
    "exp": "exp",
    "expm1": "expm1",
    "sqrt": "sqrt",
    "abs": "abs",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
}
#: R functions a formula term may be made of (besides the elementwise ones)
R_TERM_FUNCTIONS = frozenset({"poly", "factor", "as.factor", "relevel", "offset"})
#: functions with R's meaning wherever they appear
_R_FUNCTIONS = frozenset(R_MATH) | R_TERM_FUNCTIONS | {"scale", "c"}


def _r_name(name: str) -> str:
    """A name as R prints it: in backticks unless it is syntactic."""
    if _R_SYNTACTIC.fullmatch(name) and name not in _R_RESERVED:
        return name
    return "`" + name.replace("`", "\\`") + "`"


def _r_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def deparse(node: Node) -> str:
    """The expression as R's ``deparse`` writes it (the names lme4 gives coefficients)."""
    k = node.kind
    if k == "name":
        if not node.quoted and node.value in R_LITERALS:
            return node.value
        return _r_name(node.value)
    if k == "num":
        return node.value
    if k == "str":
        return _r_string(node.value)
    if k == "paren":
        return "(" + deparse(node.args[0]) + ")"
    if k == "list":
        return "[" + ", ".join(deparse(a) for a in node.args) + "]"
    if k == "un":
        return node.value + deparse(node.args[0])
    if k == "bin":
        a, b = (deparse(x) for x in node.args)
        if node.value in _TIGHT_OPS:
            return f"{a}{node.value}{b}"
        return f"{a} {node.value} {b}"
    parts = [
        f"{nm} = {deparse(a)}" if nm else deparse(a)
        for nm, a in zip(node.names, node.args, strict=True)
    ]
    func = node.value if not node.quoted else _r_name(node.value)
    return f"{func}({', '.join(parts)})"


def has_r_syntax(node: Node) -> bool:
    """Whether the expression uses R spellings that Python reads differently (or not at all)."""
    for n in _walk(node):
        if n.kind == "name" and (n.quoted or n.value in R_LITERALS):
            return True
        if n.kind == "num" and n.value.endswith("L"):
            return True
        if n.kind == "bin" and (n.value == "^" or (n.value.startswith("%") and len(n.value) > 1)):
            return True
        if n.kind == "un" and n.value == "!":
            return True
        if n.kind == "call" and (n.value in _R_FUNCTIONS or n.quoted):
            return True
    return False
