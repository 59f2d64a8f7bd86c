"""Instant feedback on the exercises: one function per exercise, ``check.exNN_K(...)``.

Each exercise notebook ends an exercise with a call such as ``check.ex04_1(icc_hsb)``. The call
returns a :class:`CheckResult` that Jupyter shows as a coloured box (and prints as one line of
text): *correct*, *partly right*, *not right yet* with a hint, *not answered yet*, or, for
answers in words, *recorded* (your instructor grades those by hand). A check never shows the
right answer.

How the checks judge an answer
------------------------------

- The right answer is computed by the check itself, from the course's data with the course's
  library (``mlmprimer.datasets.load``, ``mlmprimer.lmer``, ``mlmprimer.simulate`` ...), never
  typed in as a constant; it is computed once per session and cached.
- Numbers may be rounded: an answer within 1 % of the right value (or within the question's
  absolute tolerance) counts. ``numpy`` scalars, one-element arrays or Series and numeric strings
  are read as numbers.
- Common slips are recognised and named: a standard deviation where a variance is asked (and the
  other way round), the ML estimate where REML is asked, a share written as a percentage
  (accepted), the limits of an interval in the wrong order (accepted), ...
- ``...`` (the placeholder of the student notebook) means "not answered yet"; a check never raises
  on it, nor on an answer it cannot read (it says what it expected instead).
- Free-text answers are checked only for being there and long enough; the result lists the key
  ideas worth mentioning, as questions, and says that the instructor grades the text by hand.

Chapters and the appendix
-------------------------

A chapter ``NN-topic`` has the checks ``exNN_1``, ``exNN_2``, ... The appendix ``A1-how-lmer-fits``
follows the same pattern with its own prefix: ``exA1_1``, ``exA1_2``, ... (chapter ``"A1"``, shown
as "exercise A1.1"). A Python name may not start with a digit, but ``exA1_1`` starts with ``ex``
like every other check, so the appendix needs no numbering of its own.

The registry
------------

:data:`QUESTIONS` maps each check's name to a :class:`Question` (chapter, title, points and the
names of the notebook variables it reads, which are the check's parameter names). The grader
(:mod:`mlmprimer.grade`) uses it to collect the students' answers and calls the same functions.

Examples
--------
>>> from mlmprimer import check
>>> r = check.ex04_1(...)
>>> r.status, bool(r)
('unanswered', False)
>>> print(r)
… ex04_1 (exercise 4.1) not answered yet: replace the ... with your answer and run the cell again.
>>> check.QUESTIONS["ex04_1"].variables
('icc_hsb',)
"""

from __future__ import annotations

import functools
import html
import inspect
import math
import numbers
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "QUESTIONS",
    "CheckResult",
    "Question",
    "Unsupported",
    "questions",
]

#: Relative tolerance for rounded numeric answers.
REL_TOL = 0.01

# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------

_SYMBOL = {
    "correct": "✓",
    "recorded": "✎",
    "partial": "◐",
    "incorrect": "✗",
    "unanswered": "…",
    "error": "!",
}
_LABEL = {
    "correct": "correct",
    "recorded": "recorded",
    "partial": "partly right",
    "incorrect": "not right yet",
    "unanswered": "not answered yet",
    "error": "could not be checked",
}
# Okabe-Ito colours (colour-blind safe); the symbol and the label carry the meaning too.
_COLOUR = {
    "correct": "#0072B2",
    "recorded": "#009E73",
    "partial": "#E69F00",
    "incorrect": "#D55E00",
    "unanswered": "#999999",
    "error": "#CC79A7",
}


@dataclass(frozen=True)
class Question:
    """One exercise as the checks and the grader know it.

    Attributes
    ----------
    qid : str
        The check's name, ``exNN_K``.
    chapter : str
        Two-digit chapter, ``"NN"``, or an appendix, ``"A1"``.
    number : int
        Exercise number ``K`` within the chapter.
    title : str
        A short description.
    variables : tuple of str
        Names of the notebook variables the check reads, in the order of its parameters.
    points : float
        Maximum score.
    kind : str
        ``"auto"`` (graded by the check) or ``"manual"`` (words, graded by hand).

    Examples
    --------
    >>> q = QUESTIONS["ex03_1"]
    >>> q.label, q.variables, q.points
    ('exercise 3.1', ('beta0_hat', 'tau2_hat', 'sigma2_hat'), 3.0)
    """

    qid: str
    chapter: str
    number: int
    title: str
    variables: tuple[str, ...]
    points: float = 1.0
    kind: str = "auto"

    @property
    def label(self) -> str:
        """``exercise N.K`` (or ``exercise A1.K`` in the appendix) as a reader sees it."""
        chapter = str(int(self.chapter)) if self.chapter.isdigit() else self.chapter
        return f"exercise {chapter}.{self.number}"


#: Every check, by name (``"ex04_1"``), in chapter and exercise order.
QUESTIONS: dict[str, Question] = {}


@dataclass
class CheckResult:
    """The verdict of one check: truthy when the answer is right (or, for words, recorded).

    Attributes
    ----------
    question : str
        The check's name, ``exNN_K``.
    status : str
        ``correct``, ``partial``, ``incorrect``, ``unanswered``, ``recorded`` (free text, graded
        by hand) or ``error`` (the answer could not be read).
    message : str
        What is right or off, without the right answer.
    hints : list of str
        Suggestions for the next try.
    score, max_score : float
        Points earned and available.
    parts : list of tuple
        ``(name, status, message)`` for each part of a multi-part exercise.

    Examples
    --------
    >>> r = CheckResult("ex01_1", "incorrect", "too high.", ["count the boys"], 0.0, 1.0)
    >>> bool(r)
    False
    >>> print(r)
    ✗ ex01_1 (exercise 1.1) not right yet: too high.
      hint: count the boys
    """

    question: str
    status: str
    message: str
    hints: list[str] = field(default_factory=list)
    score: float = 0.0
    max_score: float = 1.0
    parts: list[tuple[str, str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.status in ("correct", "recorded")

    @property
    def passed(self) -> bool:
        """Whether the answer is right (or, for an answer in words, recorded)."""
        return bool(self)

    def _heading(self) -> str:
        name = self.question
        q = QUESTIONS.get(name)
        where = f" ({q.label})" if q else ""
        return f"{name}{where} {_LABEL.get(self.status, self.status)}"

    def __str__(self) -> str:
        lines = [f"{_SYMBOL.get(self.status, '?')} {self._heading()}"]
        if self.parts and len(self.parts) > 1:
            lines[0] += f": {self.message}" if self.message else ""
            lines += [f"  {_SYMBOL.get(s, '?')} {n}: {m}" for n, s, m in self.parts]
        elif self.message:
            lines[0] += f": {self.message}"
        lines += [f"  hint: {h}" for h in self.hints]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour = _COLOUR.get(self.status, "#999999")
        esc = html.escape
        body = [
            f'<div class="mlmprimer-check mlmprimer-check-{esc(self.status)}" role="status" '
            f'style="border-left: 6px solid {colour}; padding: 0.3em 0.8em; margin: 0.3em 0;">',
            f"<strong>{_SYMBOL.get(self.status, '?')} {esc(self._heading())}</strong>",
        ]
        if self.message:
            body.append(f"<br>{esc(self.message)}")
        if self.parts and len(self.parts) > 1:
            body.append('<ul style="margin: 0.2em 0;">')
            body += [
                f"<li>{_SYMBOL.get(s, '?')} <code>{esc(n)}</code>: {esc(m)}</li>"
                for n, s, m in self.parts
            ]
            body.append("</ul>")
        if self.hints:
            body.append('<ul style="margin: 0.2em 0;">')
            body += [f"<li><em>hint:</em> {esc(h)}</li>" for h in self.hints]
            body.append("</ul>")
        body.append("</div>")
        return "\n".join(body)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data (for the grader's CSV).

        Examples
        --------
        >>> CheckResult("ex01_1", "correct", "right.", score=1.0).to_dict()["score"]
        1.0
        """
        return {
            "question": self.question,
            "status": self.status,
            "message": self.message,
            "hints": list(self.hints),
            "score": float(self.score),
            "max_score": float(self.max_score),
        }


def questions(chapter: str | int | None = None) -> list[Question]:
    """The registered exercises, optionally of one chapter.

    Parameters
    ----------
    chapter : str or int, optional
        ``4``, ``"04"``, or an appendix such as ``"A1"``; all exercises when omitted.

    Examples
    --------
    >>> [q.qid for q in questions(4)][:2]
    ['ex04_1', 'ex04_2']
    >>> [q.qid for q in questions("A1")][:1]
    ['exA1_1']
    """
    if chapter is None:
        return list(QUESTIONS.values())
    text = str(chapter).strip()
    key = f"{int(text):02d}" if text.isdigit() else text.upper()
    return [q for q in QUESTIONS.values() if q.chapter == key]


# --------------------------------------------------------------------------------------------
# reading answers
# --------------------------------------------------------------------------------------------


class Unsupported:
    """Stands for an answer of a type the grader could not carry over (e.g. a fitted model).

    Examples
    --------
    >>> Unsupported("LmerModel")
    <a LmerModel object>
    """

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<a {self.type_name} object>"


class _Unreadable(ValueError):
    """An answer of the wrong shape or type; the message says what was expected."""


def _type_name(value: Any) -> str:
    if isinstance(value, Unsupported):
        return value.type_name
    if isinstance(value, pd.DataFrame):
        return f"DataFrame with {value.shape[0]} rows and {value.shape[1]} columns"
    if isinstance(value, pd.Series):
        return f"Series of length {len(value)}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape}"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__} of length {len(value)}"
    return type(value).__name__


def _unanswered(value: Any) -> bool:
    if value is Ellipsis or value is None:
        return True
    return isinstance(value, str) and not value.strip()


_NUMBER_TEXT = re.compile(r"^\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*(%?)\s*$")


def _number(value: Any) -> float:
    """A single finite number from an answer, or :class:`_Unreadable`."""
    if isinstance(value, bool | np.bool_):
        raise _Unreadable(f"expected a number, got {value!r}")
    if isinstance(value, numbers.Real):
        out = float(value)
    elif isinstance(value, str):
        match = _NUMBER_TEXT.match(value)
        if not match:
            raise _Unreadable("expected a number, got text that is not a number")
        out = float(match.group(1)) / (100.0 if match.group(4) else 1.0)
    elif isinstance(value, pd.DataFrame | pd.Series | np.ndarray) and np.size(value) == 1:
        return _number(np.asarray(value).reshape(-1)[0].item())
    elif isinstance(value, list | tuple) and len(value) == 1:
        return _number(value[0])
    else:
        raise _Unreadable(f"expected a single number, got a {_type_name(value)}")
    if not math.isfinite(out):
        raise _Unreadable(f"expected a finite number, got {out}")
    return out


def _pair(value: Any) -> tuple[float, float]:
    """Two numbers (lower, upper) from a tuple, list, array or an interval Series."""
    if isinstance(value, pd.Series) and {"conf.low", "conf.high"} <= set(value.index):
        value = (value["conf.low"], value["conf.high"])
    elif isinstance(value, dict) and {"conf.low", "conf.high"} <= set(value):
        value = (value["conf.low"], value["conf.high"])
    if isinstance(value, pd.Series | np.ndarray):
        value = list(np.asarray(value).reshape(-1))
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise _Unreadable(f"expected two numbers, (lower, upper), got a {_type_name(value)}")
    return _number(value[0]), _number(value[1])


def _close(a: float, b: float, rel: float = REL_TOL, abs_tol: float = 0.0) -> bool:
    return abs(a - b) <= max(abs_tol, rel * abs(b))


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9]+", text))


# --------------------------------------------------------------------------------------------
# judging the parts of an answer
# --------------------------------------------------------------------------------------------


@dataclass
class _Part:
    name: str
    status: str  # correct, incorrect, unanswered, recorded
    message: str
    hint: str | None = None
    weight: float = 1.0


class _Verdict:
    """Collects the judged parts of one exercise and turns them into a :class:`CheckResult`."""

    def __init__(self, qid: str) -> None:
        self.qid = qid
        self.parts: list[_Part] = []
        self.notes: list[str] = []

    def add(
        self, name: str, status: str, message: str, hint: str | None = None, weight: float = 1.0
    ) -> _Part:
        part = _Part(name, status, message, hint, weight)
        self.parts.append(part)
        return part

    def ok(self, name: str) -> bool:
        return any(p.name == name and p.status in ("correct", "recorded") for p in self.parts)

    def all_ok(self) -> bool:
        return all(p.status in ("correct", "recorded") for p in self.parts if p.weight > 0)

    # ---- kinds of parts --------------------------------------------------------------------

    def number(
        self,
        name: str,
        value: Any,
        truth: Callable[[], float],
        *,
        what: str,
        rel: float = REL_TOL,
        abs_tol: float = 0.0,
        slips: Callable[[], Iterable[tuple[float, str]]] | None = None,
        hint: str | None = None,
        percent: bool = False,
        weight: float = 1.0,
        integer: bool = False,
    ) -> _Part:
        """Judge a numeric answer against ``truth()`` and against known slips."""
        if _unanswered(value):
            return self.add(name, "unanswered", "not answered yet.", weight=weight)
        try:
            x = _number(value)
        except _Unreadable as exc:
            return self.add(name, "incorrect", f"{exc}.", hint, weight)
        target = float(truth())
        known = [(float(a), m) for a, m in (slips() if slips is not None else ()) if np.isfinite(a)]
        # an answer within rounding of the right value is right, even if a slip is close by
        tol = 1e-9 if integer else max(abs_tol, rel * abs(target))
        if abs(x - target) <= tol:
            return self.add(name, "correct", f"right: this is {what}.", weight=weight)
        if percent and x > 1 and abs(x / 100.0 - target) <= tol:
            return self.add(
                name, "correct", f"right (read as a percentage): this is {what}.", weight=weight
            )
        for alt, message in known:
            alt_tol = 1e-9 if integer else max(abs_tol, rel * abs(alt))
            if abs(alt - target) > 1e-9 * abs(target):
                alt_tol = min(alt_tol, 0.5 * abs(alt - target))
            if abs(x - alt) <= alt_tol:
                return self.add(name, "incorrect", message, hint, weight)
        if not integer and abs(x - target) <= max(0.05 * abs(target), 5 * abs_tol):
            message = (
                f"close, but not {what} to within rounding: keep more digits, and check that "
                "you used the model and data the question asks for."
            )
        else:
            direction = "too high" if x > target else "too low"
            message = f"not {what}: your value is {direction}."
        return self.add(name, "incorrect", message, hint, weight)

    def choice(
        self,
        name: str,
        value: Any,
        options: dict[str, tuple[str, ...]],
        *,
        truth: Callable[[], str] | None,
        reveal: bool,
        weight: float = 1.0,
    ) -> _Part:
        """Record a prediction (any valid option scores; it is compared once ``reveal``)."""
        listing = ", ".join(repr(k) for k in options)
        if _unanswered(value):
            return self.add(name, "unanswered", f"not answered yet: write one of {listing}.")
        if not isinstance(value, str):
            return self.add(
                name, "incorrect", f"write your prediction as text, one of {listing}.", None, weight
            )
        said = re.sub(r"[^a-z0-9 ]", " ", value.lower())
        said = " ".join(said.split())
        picked = [k for k, synonyms in options.items() if said in (k, *synonyms)]
        if len(picked) != 1:
            return self.add(
                name, "incorrect", f"not one of the options: write one of {listing}.", None, weight
            )
        if truth is None or not reveal:
            message = "prediction recorded; compare it with your results once you have them."
        elif picked[0] == truth():
            message = "prediction recorded, and your results bear it out."
        else:
            message = (
                "prediction recorded; your results say otherwise. Work out why before you go on: "
                "that is the point of predicting."
            )
        return self.add(name, "correct", message, weight=weight)

    def text(
        self,
        name: str,
        value: Any,
        *,
        min_words: int,
        ideas: Iterable[tuple[str, str]],
        weight: float = 1.0,
    ) -> _Part:
        """Record an answer in words; ``ideas`` are (regex, question) pairs to prompt with."""
        if _unanswered(value):
            return self.add(
                name, "unanswered", "not answered yet: write your answer between the quotes."
            )
        if not isinstance(value, str):
            return self.add(
                name, "incorrect", "write your answer as text, between quotes.", None, weight
            )
        n = _words(value)
        if n < min_words:
            return self.add(
                name,
                "incorrect",
                f"too short ({n} words): explain in at least {min_words} words.",
                None,
                weight,
            )
        missing = [q for pattern, q in ideas if not re.search(pattern, value, re.IGNORECASE)]
        for q in missing:
            self.notes.append(q)
        return self.add(
            name,
            "recorded",
            f"{n} words. Your instructor grades this answer by hand.",
            weight=weight,
        )

    # ---- the result --------------------------------------------------------------------------

    def result(self) -> CheckResult:
        q = QUESTIONS[self.qid]
        weighted = [p for p in self.parts if p.weight > 0]
        total = sum(p.weight for p in weighted) or 1.0
        earned = sum(p.weight for p in weighted if p.status in ("correct", "recorded"))
        statuses = {p.status for p in weighted}
        if statuses <= {"unanswered"}:
            status = "unanswered"
        elif statuses <= {"correct"}:
            status = "correct"
        elif statuses <= {"correct", "recorded"}:
            status = "recorded"
        elif earned > 0:
            status = "partial"
        else:
            status = "incorrect"
        hints = []
        for p in self.parts:
            if p.status != "correct" and p.hint and p.hint not in hints:
                hints.append(p.hint)
        hints += [f"does your answer say {n}" for n in self.notes]
        if len(self.parts) == 1:
            message = self.parts[0].message
        elif status == "correct":
            message = "every part is right."
        elif status == "unanswered":
            message = "replace the ... with your answers and run the cell again."
        else:
            right = sum(p.status in ("correct", "recorded") for p in weighted)
            message = f"{right} of {len(weighted)} right."
        return CheckResult(
            question=self.qid,
            status=status,
            message=message,
            hints=hints,
            score=round(q.points * earned / total, 4),
            max_score=q.points,
            parts=[(p.name, p.status, p.message) for p in self.parts],
        )


# --------------------------------------------------------------------------------------------
# registering checks
# --------------------------------------------------------------------------------------------

_UNANSWERED_MESSAGE = "replace the ... with your answer and run the cell again."


def _exercise(
    qid: str, title: str, points: float = 1.0, kind: str = "auto"
) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Register a check; its parameter names are the notebook variables it reads."""
    match = re.fullmatch(r"ex(\d{2}|A\d)_(\d+)", qid)
    if not match:
        raise ValueError(f"check names are exNN_K (exA1_K in the appendix), got {qid!r}")

    def decorate(func: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        params = list(inspect.signature(func).parameters)
        question = Question(
            qid, match.group(1), int(match.group(2)), title, tuple(params), float(points), kind
        )
        QUESTIONS[qid] = question

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> CheckResult:
            try:
                bound = inspect.signature(func).bind(*args, **kwargs)
            except TypeError:
                names = ", ".join(params)
                return CheckResult(
                    qid,
                    "error",
                    f"this check takes {len(params)} answer(s), in this order: {names}.",
                    max_score=float(points),
                )
            values = [bound.arguments.get(p, ...) for p in params]
            if all(_unanswered(v) for v in values):
                message = (
                    "write your answer between the quotes and run the cell again."
                    if kind == "manual"
                    else _UNANSWERED_MESSAGE
                )
                return CheckResult(qid, "unanswered", message, max_score=float(points))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return func(*values)
            except Exception as exc:  # noqa: BLE001 - a check must never raise on an answer
                return CheckResult(
                    qid,
                    "error",
                    f"the check could not judge this answer ({type(exc).__name__}: {exc}). "
                    "Tell your instructor if the message does not help.",
                    max_score=float(points),
                )

        run.question = question  # type: ignore[attr-defined]
        return run

    return decorate


# --------------------------------------------------------------------------------------------
# right answers, computed from the data (cached)
# --------------------------------------------------------------------------------------------


@functools.cache
def _data(name: str) -> pd.DataFrame:
    from mlmprimer import datasets

    return datasets.load(name)


@functools.cache
def _fit(formula: str, data: str, REML: bool = True) -> Any:
    """A cached ``mlmprimer.lmer`` fit on a named real data set."""
    from mlmprimer.model import lmer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmer(formula, _data(data), REML=REML)


def _tau2(model: Any, group: str) -> float:
    vc = model.varcorr
    row = vc[(vc["grp"] == group) & (vc["var1"] == "(Intercept)") & vc["var2"].isna()]
    return float(row["vcov"].iloc[0])


def _se(model: Any, term: str) -> float:
    return float(np.sqrt(model.vcov.loc[term, term]))


def _smf() -> Any:
    import statsmodels.formula.api as smf

    return smf


# --------------------------------------------------------------------------------------------
# chapter 1: what a multilevel model is
# --------------------------------------------------------------------------------------------

_SIM01 = {"n_subjects": 20, "n_obs": 10, "rng": 101}


@functools.cache
def _ch01_se_days() -> dict[str, float]:
    smf = _smf()
    sleep = _data("sleepstudy")
    ols = smf.ols("Reaction ~ Days", sleep).fit()
    lme = _fit("Reaction ~ Days + (1 | Subject)", "sleepstudy")
    lme_ml = _fit("Reaction ~ Days + (1 | Subject)", "sleepstudy", REML=False)
    return {
        "ols": float(ols.bse["Days"]),
        "lme": _se(lme, "Days"),
        "lme_ml": _se(lme_ml, "Days"),
        "slope": float(ols.params["Days"]),
    }


@functools.cache
def _ch01_sim() -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    smf = _smf()
    df = simulate.reaction_times(**_SIM01)
    truth = df.attrs["truth"]
    n, j = len(df), df["subject"].nunique()
    ols = smf.ols("reaction ~ 1", df).fit()
    lme = lmer("reaction ~ 1 + (1 | subject)", df)
    return {
        "ols": float(ols.bse["Intercept"]),
        "lme": _se(lme, "(Intercept)"),
        "true": math.sqrt(truth["tau"] ** 2 / j + truth["sigma"] ** 2 / n),
        "naive_true": math.sqrt((truth["tau"] ** 2 + truth["sigma"] ** 2) / n),
    }


@_exercise("ex01_1", "Oxford boys: number of groups and of measurements")
def ex01_1(n_boys: Any, n_measurements: Any) -> CheckResult:
    """Exercise 1.1: how many boys (groups) and measurements (rows) the ``oxboys`` data hold.

    Parameters
    ----------
    n_boys : int
        The number of boys, :math:`J`.
    n_measurements : int
        The total number of height measurements, :math:`N`.

    Examples
    --------
    >>> ex01_1(..., ...).status
    'unanswered'
    >>> ex01_1(25, ...).message
    '0 of 2 right.'
    """
    v = _Verdict("ex01_1")
    ox = _data("oxboys")
    n_j, n = ox["Subject"].nunique(), len(ox)
    per_boy = ox.groupby("Subject", observed=True).size()
    v.number(
        "n_boys",
        n_boys,
        lambda: n_j,
        what="the number of boys",
        integer=True,
        slips=lambda: [
            (n, "this is the number of rows (measurements); the question asks for boys."),
            (float(per_boy.max()), "this is the number of measurements of one boy."),
        ],
        hint="count the distinct values of the column that identifies a boy.",
    )
    v.number(
        "n_measurements",
        n_measurements,
        lambda: n,
        what="the number of measurements",
        integer=True,
        slips=lambda: [
            (n_j, "this is the number of boys; the question asks for all measurements."),
            (float(per_boy.max()), "this is the number of measurements of one boy."),
        ],
        hint="every row of the data is one measurement.",
    )
    return v.result()


_HSB_LEVEL_COLUMNS = ("mAch", "ses", "meanses", "sector", "minrty", "cses")
_LEVEL_WORDS = {
    1: ("1", "level 1", "level1", "l1", "pupil", "pupils", "student", "students", "individual"),
    2: ("2", "level 2", "level2", "l2", "school", "schools", "group", "cluster"),
}


def _level(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral | float) and value in (1, 2):
        return int(value)
    if isinstance(value, str):
        said = " ".join(re.sub(r"[^a-z0-9 ]", " ", value.lower()).split())
        for level, words in _LEVEL_WORDS.items():
            if said in words:
                return level
    return None


@_exercise("ex01_2", "High School and Beyond: level 1 or level 2?")
def ex01_2(levels: Any) -> CheckResult:
    """Exercise 1.2: at which level each column of the ``hsb`` data varies.

    Parameters
    ----------
    levels : dict
        ``{column: 1 or 2}`` for the columns ``mAch``, ``ses``, ``meanses``, ``sector``,
        ``minrty`` and ``cses``: 1 if the column varies between the pupils of a school,
        2 if it is constant within every school.

    Examples
    --------
    >>> ex01_2({"ses": 3}).status
    'incorrect'
    """
    v = _Verdict("ex01_2")
    if not isinstance(levels, dict):
        v.add(
            "levels", "incorrect", f"expected a dict {{column: level}}, got a {_type_name(levels)}."
        )
        return v.result()
    hsb = _data("hsb")
    truth = {
        c: 2 if hsb.groupby("school", observed=True)[c].nunique().max() == 1 else 1
        for c in _HSB_LEVEL_COLUMNS
    }
    answered = {str(k): _level(val) for k, val in levels.items()}
    unknown = sorted(k for k in answered if k not in truth)
    unreadable = sorted(k for k, val in answered.items() if k in truth and val is None)
    missing = [c for c in _HSB_LEVEL_COLUMNS if c not in answered]
    right = sum(answered.get(c) == truth[c] for c in _HSB_LEVEL_COLUMNS)
    message = f"{right} of {len(truth)} columns placed at the right level."
    notes = []
    if missing:
        notes.append(f"missing: {', '.join(missing)}")
    if unknown:
        notes.append(f"not asked about: {', '.join(unknown)}")
    if unreadable:
        notes.append(f"write 1 or 2 for: {', '.join(unreadable)}")
    if notes:
        message += " (" + "; ".join(notes) + ")"
    status = "correct" if right == len(truth) else "incorrect"
    v.add(
        "levels",
        status,
        message,
        "a level-2 column takes one value per school: "
        "hsb.groupby('school', observed=True)[column].nunique() tells you.",
    )
    result = v.result()
    result.score = round(QUESTIONS["ex01_2"].points * right / len(truth), 4)
    if 0 < right < len(truth):
        result.status = "partial"
    return result


_MORE_LESS = {
    "larger": ("larger", "bigger", "higher", "more", "greater", "increase", "wider"),
    "smaller": ("smaller", "lower", "less", "decrease", "narrower"),
    "same": ("same", "the same", "about the same", "equal", "unchanged", "no change"),
}


@_exercise("ex01_3", "sleepstudy: predict, then compare the SE of the Days slope", points=3)
def ex01_3(prediction_se: Any, se_days_ols: Any, se_days_lme: Any) -> CheckResult:
    """Exercise 1.3: the standard error of the ``Days`` slope, OLS against the mixed model.

    Parameters
    ----------
    prediction_se : str
        Written before fitting: will the mixed model's standard error be ``"larger"``,
        ``"smaller"`` or the ``"same"`` as the OLS one?
    se_days_ols : float
        Standard error of ``Days`` in the OLS fit of ``Reaction ~ Days``.
    se_days_lme : float
        Standard error of ``Days`` in ``Reaction ~ Days + (1 | Subject)`` (REML).

    Examples
    --------
    >>> ex01_3(..., ..., ...).status
    'unanswered'
    """
    v = _Verdict("ex01_3")
    t = _ch01_se_days
    hint = "the standard errors are the square roots of the diagonal of the covariance matrix."
    v.number(
        "se_days_ols",
        se_days_ols,
        lambda: t()["ols"],
        what="the OLS standard error of Days",
        slips=lambda: [
            (t()["ols"] ** 2, "this looks like a variance (SE squared); take its square root."),
            (t()["slope"], "this is the slope estimate itself, not its standard error."),
            (t()["lme"], "this is the mixed model's standard error, not the OLS one."),
        ],
        hint=hint,
    )
    v.number(
        "se_days_lme",
        se_days_lme,
        lambda: t()["lme"],
        what="the mixed model's standard error of Days",
        slips=lambda: [
            (t()["lme"] ** 2, "this looks like a variance (SE squared); take its square root."),
            (t()["slope"], "this is the slope estimate itself, not its standard error."),
            (t()["ols"], "this is the OLS standard error, not the mixed model's."),
            (t()["lme_ml"], "this is the ML fit's value; use the default REML fit."),
        ],
        hint=hint,
    )
    truth = t()
    v.choice(
        "prediction_se",
        prediction_se,
        _MORE_LESS,
        truth=lambda: "smaller" if truth["lme"] < truth["ols"] else "larger",
        reveal=v.ok("se_days_ols") and v.ok("se_days_lme"),
    )
    return v.result()


@_exercise("ex01_4", "fixed and random parts of a model, in words", kind="manual")
def ex01_4(answer_fixed_random: Any) -> CheckResult:
    """Exercise 1.4 (words, graded by hand): fixed and random effects of a sleepstudy model.

    Parameters
    ----------
    answer_fixed_random : str
        Two to four sentences.

    Examples
    --------
    >>> ex01_4("Days is fixed.").status
    'incorrect'
    """
    v = _Verdict("ex01_4")
    v.text(
        "answer_fixed_random",
        answer_fixed_random,
        min_words=25,
        ideas=[
            (r"fixed", "which terms are fixed effects, and what they describe?"),
            (r"average|overall|population|typical", "what the fixed effects average over?"),
            (r"vary|varies|distribut|normal|spread|variance", "how the random part is described?"),
            (
                r"sample|new subject|other subject|generali|population|more subjects",
                "why the subjects are treated as a sample rather than 18 fixed dummies?",
            ),
        ],
    )
    return v.result()


@_exercise("ex01_5", "simulated subjects: SE of the mean against the truth", points=3)
def ex01_5(se_mean_ols: Any, se_mean_lme: Any, se_mean_true: Any) -> CheckResult:
    """Exercise 1.5: standard errors of the grand mean on simulated data with a known truth.

    The data are ``simulate.reaction_times(n_subjects=20, n_obs=10, rng=101)``.

    Parameters
    ----------
    se_mean_ols : float
        Standard error of the intercept of the OLS fit ``reaction ~ 1``.
    se_mean_lme : float
        Standard error of the intercept of ``reaction ~ 1 + (1 | subject)``.
    se_mean_true : float
        The true standard error of the grand mean from the simulation's true parameters,
        :math:`\\sqrt{\\tau^2 / J + \\sigma^2 / N}`.

    Examples
    --------
    >>> ex01_5(..., ..., ...).status
    'unanswered'
    """
    v = _Verdict("ex01_5")
    t = _ch01_sim
    var_hint = "this looks like a variance; take its square root."
    v.number(
        "se_mean_ols",
        se_mean_ols,
        lambda: t()["ols"],
        what="the OLS standard error of the mean",
        slips=lambda: [(t()["ols"] ** 2, var_hint), (t()["lme"], "this is the mixed model's SE.")],
        hint="fit smf.ols('reaction ~ 1', sim) and read .bse.",
    )
    v.number(
        "se_mean_lme",
        se_mean_lme,
        lambda: t()["lme"],
        what="the mixed model's standard error of the mean",
        slips=lambda: [(t()["lme"] ** 2, var_hint), (t()["ols"], "this is the OLS SE.")],
        hint="take the square root of the (Intercept) entry of the model's vcov.",
    )
    v.number(
        "se_mean_true",
        se_mean_true,
        lambda: t()["true"],
        what="the true standard error",
        slips=lambda: [
            (t()["true"] ** 2, var_hint),
            (
                t()["naive_true"],
                "this treats all N measurements as independent: tau^2 is divided by N, "
                "but the subject effects repeat within a subject and average over J subjects only.",
            ),
        ],
        hint="use sim.attrs['truth']: tau^2 / J + sigma^2 / N, then the square root.",
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        closer = (
            "mixed model"
            if abs(truth["lme"] - truth["true"]) < abs(truth["ols"] - truth["true"])
            else "OLS fit"
        )
        result.message = (
            f"every part is right. The {closer} is closer to the truth; the OLS standard error is "
            f"{truth['true'] / truth['ols']:.1f} times too small."
        )
    return result


# --------------------------------------------------------------------------------------------
# chapter 2: why not OLS
# --------------------------------------------------------------------------------------------

_SIM02 = {"n_schools": 40, "n_students": 25, "rng": 2}
_SECTOR = "sectorCatholic"
_SECTOR_SM = "sector[T.Catholic]"


@functools.cache
def _ch02_pooling() -> dict[str, Any]:
    hsb = _data("hsb")
    means = hsb.groupby("school", observed=True)["mAch"].mean()
    sizes = hsb.groupby("school", observed=True).size()
    smallest = sizes.idxmin()
    m0 = _fit("mAch ~ 1 + (1 | school)", "hsb")
    coef = m0.coef()
    coef = coef["school"] if isinstance(coef, dict) else coef
    ranef = m0.ranef["school"]
    tau2, sigma2 = _tau2(m0, "school"), float(m0.sigma) ** 2
    weight = tau2 / (tau2 + sigma2 / sizes[smallest])
    return {
        "grand": float(hsb["mAch"].mean()),
        "mean_of_means": float(means.mean()),
        "means": means,
        "medians": hsb.groupby("school", observed=True)["mAch"].median(),
        "smallest": smallest,
        "own": float(means[smallest]),
        "partial": float(coef.loc[smallest, "(Intercept)"]),
        "u": float(ranef.loc[smallest, "(Intercept)"]),
        "mu": float(m0.fixef["(Intercept)"]),
        "weight": float(weight),
    }


@functools.cache
def _ch02_se() -> dict[str, float]:
    import statsmodels.api as sm

    smf = _smf()
    hsb = _data("hsb")
    ols = smf.ols("mAch ~ sector", hsb).fit()
    cluster = smf.ols("mAch ~ sector", hsb).fit(
        cov_type="cluster", cov_kwds={"groups": hsb["school"].cat.codes}
    )
    gee = smf.gee("mAch ~ sector", "school", hsb, cov_struct=sm.cov_struct.Exchangeable()).fit()
    gee_ind = smf.gee("mAch ~ sector", "school", hsb, cov_struct=sm.cov_struct.Independence()).fit()
    lme = _fit("mAch ~ sector + (1 | school)", "hsb")
    lme_ml = _fit("mAch ~ sector + (1 | school)", "hsb", REML=False)
    return {
        "coef": float(ols.params[_SECTOR_SM]),
        "ols": float(ols.bse[_SECTOR_SM]),
        "cluster": float(cluster.bse[_SECTOR_SM]),
        "gee": float(gee.bse[_SECTOR_SM]),
        "gee_naive": float(gee.standard_errors(cov_type="naive")[1]),
        "gee_ind": float(gee_ind.bse[_SECTOR_SM]),
        "lme": _se(lme, _SECTOR),
        "lme_ml": _se(lme_ml, _SECTOR),
    }


@functools.cache
def _ch02_sim() -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    smf = _smf()
    df = simulate.school_level_predictor(**_SIM02)
    truth = df.attrs["truth"]
    m = len(df) / df["school"].nunique()
    icc = truth["tau"] ** 2 / (truth["tau"] ** 2 + truth["sigma"] ** 2)
    ols = smf.ols("y ~ w", df).fit()
    lme = lmer("y ~ w + (1 | school)", df)
    return {
        "deff": 1 + (m - 1) * icc,
        "deff_m": 1 + m * icc,
        "deff_sd": 1 + (m - 1) * truth["tau"] / (truth["tau"] + truth["sigma"]),
        "ratio": _se(lme, "w") / float(ols.bse["w"]),
    }


def _school_means_part(v: _Verdict, value: Any) -> None:
    name = "school_means"
    t = _ch02_pooling()
    means: pd.Series = t["means"]
    hint = "hsb.groupby('school', observed=True)['mAch'].mean() gives one mean per school."
    if _unanswered(value):
        v.add(name, "unanswered", "not answered yet.")
        return
    if isinstance(value, pd.DataFrame):
        v.add(name, "incorrect", "expected one column (a Series), got a DataFrame.", hint)
        return
    if not isinstance(value, pd.Series | np.ndarray | list | tuple):
        v.add(name, "incorrect", f"expected a Series of school means, got a {_type_name(value)}.")
        return
    series = value if isinstance(value, pd.Series) else pd.Series(np.asarray(value).reshape(-1))
    if len(series) != len(means):
        v.add(
            name,
            "incorrect",
            f"expected one mean per school ({len(means)} schools), got {len(series)} values.",
            hint,
        )
        return
    try:
        vals = series.astype(float)
    except (TypeError, ValueError):
        v.add(name, "incorrect", "expected numbers, one per school.", hint)
        return
    labels = [str(i) for i in series.index]
    if isinstance(value, pd.Series) and set(labels) == {str(i) for i in means.index}:
        mine = pd.Series(vals.to_numpy(), index=labels)
        target = pd.Series(means.to_numpy(), index=[str(i) for i in means.index])[labels]
        medians = pd.Series(t["medians"].to_numpy(), index=[str(i) for i in means.index])[labels]
    else:
        mine = pd.Series(vals.to_numpy())
        target, medians = pd.Series(means.to_numpy()), pd.Series(t["medians"].to_numpy())
    if np.allclose(mine, target, rtol=REL_TOL, atol=0.01):
        v.add(name, "correct", "right: one no-pooling mean per school.")
    elif np.allclose(mine, medians, rtol=REL_TOL, atol=0.01):
        v.add(name, "incorrect", "these are the school medians; the question asks for means.", hint)
    elif np.allclose(np.sort(mine), np.sort(target), rtol=REL_TOL, atol=0.01):
        v.add(
            name,
            "incorrect",
            "the right values, but not in the schools' order: keep the school labels as index.",
            hint,
        )
    else:
        v.add(name, "incorrect", "these are not the schools' mean maths scores.", hint)


@_exercise("ex02_1", "complete and no pooling of the school means", points=2)
def ex02_1(grand_mean: Any, school_means: Any) -> CheckResult:
    """Exercise 2.1: complete pooling (one mean) and no pooling (one mean per school), ``hsb``.

    Parameters
    ----------
    grand_mean : float
        Mean of ``mAch`` over all pupils.
    school_means : pandas.Series
        Mean of ``mAch`` in each school, indexed by school.

    Examples
    --------
    >>> ex02_1(..., ...).status
    'unanswered'
    """
    v = _Verdict("ex02_1")
    t = _ch02_pooling
    v.number(
        "grand_mean",
        grand_mean,
        lambda: t()["grand"],
        what="the complete-pooling mean",
        rel=0.002,
        slips=lambda: [
            (
                t()["mean_of_means"],
                "this is the mean of the school means, which weights every school equally; "
                "complete pooling ignores the schools: average all pupils.",
            )
        ],
        hint="complete pooling: one mean of mAch over every pupil.",
    )
    _school_means_part(v, school_means)
    return v.result()


_CLOSER = {
    "own mean": ("own", "own mean", "its own mean", "school mean", "no pooling", "school"),
    "grand mean": ("grand", "grand mean", "overall", "overall mean", "complete pooling"),
}


@_exercise("ex02_2", "partial pooling of the smallest school: predict, then compute", points=2)
def ex02_2(prediction_closer: Any, partial_smallest: Any) -> CheckResult:
    """Exercise 2.2: the partial-pooling estimate of the smallest school of ``hsb``.

    Parameters
    ----------
    prediction_closer : str
        Written before fitting: will the smallest school's partial-pooling estimate lie closer to
        its ``"own mean"`` or to the ``"grand mean"``?
    partial_smallest : float
        That school's intercept in ``mAch ~ 1 + (1 | school)`` (its ``coef()``).

    Examples
    --------
    >>> ex02_2(..., ...).status
    'unanswered'
    """
    v = _Verdict("ex02_2")
    t = _ch02_pooling
    v.number(
        "partial_smallest",
        partial_smallest,
        lambda: t()["partial"],
        what="the smallest school's partial-pooling estimate",
        slips=lambda: [
            (t()["own"], "this is the school's own mean (no pooling), not the model's estimate."),
            (t()["grand"], "this is the grand mean (complete pooling)."),
            (t()["u"], "this is the school's deviation u_j only; add the fixed intercept."),
            (t()["mu"], "this is the fixed intercept, the same for every school."),
        ],
        hint="m.coef() holds each school's intercept: fixed intercept plus its random effect.",
        weight=1.0,
    )
    truth = t()
    v.choice(
        "prediction_closer",
        prediction_closer,
        _CLOSER,
        truth=lambda: "own mean" if truth["weight"] > 0.5 else "grand mean",
        reveal=v.ok("partial_smallest"),
    )
    return v.result()


@_exercise("ex02_3", "standard error of a school-level predictor: predict, then compare", points=3)
def ex02_3(prediction_se_sector: Any, se_sector_ols: Any, se_sector_lme: Any) -> CheckResult:
    """Exercise 2.3: the standard error of ``sector`` (a level-2 predictor), OLS and mixed model.

    Parameters
    ----------
    prediction_se_sector : str
        Written before fitting: will the mixed model's standard error of ``sector`` be
        ``"larger"``, ``"smaller"`` or the ``"same"`` as the OLS one?
    se_sector_ols : float
        Standard error of ``sectorCatholic`` in the OLS fit ``mAch ~ sector``.
    se_sector_lme : float
        Its standard error in ``mAch ~ sector + (1 | school)`` (REML).

    Examples
    --------
    >>> ex02_3(..., ..., ...).status
    'unanswered'
    """
    v = _Verdict("ex02_3")
    t = _ch02_se
    var_msg = "this looks like a variance (SE squared); take its square root."
    v.number(
        "se_sector_ols",
        se_sector_ols,
        lambda: t()["ols"],
        what="the OLS standard error of sector",
        slips=lambda: [
            (t()["ols"] ** 2, var_msg),
            (t()["coef"], "this is the coefficient itself, not its standard error."),
            (t()["lme"], "this is the mixed model's standard error."),
            (t()["cluster"], "this is a cluster-robust standard error; use the plain OLS one."),
        ],
        hint="smf.ols('mAch ~ sector', hsb).fit().bse",
    )
    v.number(
        "se_sector_lme",
        se_sector_lme,
        lambda: t()["lme"],
        what="the mixed model's standard error of sector",
        slips=lambda: [
            (t()["lme"] ** 2, var_msg),
            (t()["ols"], "this is the OLS standard error."),
            (t()["lme_ml"], "this is the ML fit's value; use the default REML fit."),
        ],
        hint="np.sqrt(m.vcov.loc['sectorCatholic', 'sectorCatholic'])",
    )
    truth = t()
    v.choice(
        "prediction_se_sector",
        prediction_se_sector,
        _MORE_LESS,
        truth=lambda: "larger" if truth["lme"] > truth["ols"] else "smaller",
        reveal=v.ok("se_sector_ols") and v.ok("se_sector_lme"),
    )
    return v.result()


@_exercise("ex02_4", "cluster-robust and GEE standard errors of sector", points=2)
def ex02_4(se_sector_cluster: Any, se_sector_gee: Any) -> CheckResult:
    """Exercise 2.4: two repairs of OLS for clustered data, on the ``sector`` coefficient.

    Parameters
    ----------
    se_sector_cluster : float
        Cluster-robust standard error (clusters = schools) of ``sector`` in OLS ``mAch ~ sector``.
    se_sector_gee : float
        Its robust standard error in a GEE with an exchangeable working correlation.

    Examples
    --------
    >>> ex02_4(..., ...).status
    'unanswered'
    """
    v = _Verdict("ex02_4")
    t = _ch02_se
    var_msg = "this looks like a variance (SE squared); take its square root."
    v.number(
        "se_sector_cluster",
        se_sector_cluster,
        lambda: t()["cluster"],
        what="the cluster-robust standard error",
        slips=lambda: [
            (t()["cluster"] ** 2, var_msg),
            (t()["ols"], "this is the plain OLS standard error, not the cluster-robust one."),
        ],
        hint="fit(cov_type='cluster', cov_kwds={'groups': hsb['school'].cat.codes})",
    )
    v.number(
        "se_sector_gee",
        se_sector_gee,
        lambda: t()["gee"],
        what="the GEE robust standard error",
        slips=lambda: [
            (t()["gee"] ** 2, var_msg),
            (t()["gee_naive"], "this is the model-based (naive) SE; use the robust one, .bse."),
            (
                t()["gee_ind"],
                "this GEE used the independence working correlation; use exchangeable.",
            ),
        ],
        hint="smf.gee('mAch ~ sector', 'school', hsb, cov_struct=sm.cov_struct.Exchangeable())",
    )
    return v.result()


@_exercise("ex02_5", "why OLS fails for a school-level predictor, in words", kind="manual")
def ex02_5(answer_why_ols: Any) -> CheckResult:
    """Exercise 2.5 (words, graded by hand): why OLS understates the uncertainty of ``sector``.

    Parameters
    ----------
    answer_why_ols : str
        Three to five sentences.

    Examples
    --------
    >>> ex02_5("").status
    'unanswered'
    """
    v = _Verdict("ex02_5")
    v.text(
        "answer_why_ols",
        answer_why_ols,
        min_words=30,
        ideas=[
            (r"independen", "which assumption of OLS the schools break?"),
            (r"160|school", "how many independent pieces of information sector really has?"),
            (
                r"fixed.effect|dumm|collinear|constant within|absorb|alias",
                "why a school fixed-effects model cannot estimate sector at all?",
            ),
        ],
    )
    return v.result()


@_exercise("ex02_6", "simulated schools: design effect and the SE ratio", points=2)
def ex02_6(deff_true: Any, se_ratio: Any) -> CheckResult:
    """Exercise 2.6: on ``simulate.school_level_predictor(n_schools=40, n_students=25, rng=2)``.

    Parameters
    ----------
    deff_true : float
        The design effect :math:`1 + (m - 1)\\rho_I` from the simulation's true ``tau`` and
        ``sigma`` (``attrs["truth"]``), with ``m`` pupils per school.
    se_ratio : float
        Standard error of ``w`` in ``y ~ w + (1 | school)`` divided by its OLS standard error.

    Examples
    --------
    >>> ex02_6(..., ...).status
    'unanswered'
    """
    v = _Verdict("ex02_6")
    t = _ch02_sim
    v.number(
        "deff_true",
        deff_true,
        lambda: t()["deff"],
        what="the true design effect",
        slips=lambda: [
            (t()["deff_m"], "this uses m instead of m - 1."),
            (t()["deff_sd"], "this ICC uses standard deviations; the ICC is a ratio of variances."),
            (math.sqrt(t()["deff"]), "this is the square root of the design effect."),
        ],
        hint="ICC = tau^2 / (tau^2 + sigma^2) from attrs['truth'], m = pupils per school.",
    )
    v.number(
        "se_ratio",
        se_ratio,
        lambda: t()["ratio"],
        what="the ratio of the two standard errors",
        slips=lambda: [
            (1 / t()["ratio"], "this is the ratio the other way round: mixed model over OLS."),
            (t()["ratio"] ** 2, "this is the ratio of the variances; use standard errors."),
        ],
        hint="divide the mixed model's SE of w by the OLS SE of w.",
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        result.message = (
            "every part is right. Compare the ratio with the square root of the design effect, "
            f"{math.sqrt(truth['deff']):.2f}: that is how much too small the OLS standard error is."
        )
    return result


# --------------------------------------------------------------------------------------------
# chapter 3: the null model
# --------------------------------------------------------------------------------------------

_NULL03 = "Reaction ~ 1 + (1 | Subject)"
_SIM03 = {"n_subjects": 6, "n_obs": 10, "reps": 100}
_Z95, _Z99 = 1.959964, 2.575829


@functools.cache
def _ch03_null() -> dict[str, float]:
    reml = _fit(_NULL03, "sleepstudy")
    ml = _fit(_NULL03, "sleepstudy", REML=False)
    tau2, sigma2 = _tau2(reml, "Subject"), float(reml.sigma) ** 2
    return {
        "beta0": float(reml.fixef["(Intercept)"]),
        "se_beta0": _se(reml, "(Intercept)"),
        "tau2": tau2,
        "sigma2": sigma2,
        "tau2_ml": _tau2(ml, "Subject"),
        "sigma2_ml": float(ml.sigma) ** 2,
        "mean": float(_data("sleepstudy")["Reaction"].mean()),
        # lme4's theta: the covariance parameter tau / sigma, often confused with the grand mean
        "theta_lme4": float(np.asarray(reml.theta, dtype=float)[0]),
        # statsmodels' own parameter "Subject Var" (its params) is tau^2 / sigma^2, not tau^2
        "ratio_sm": tau2 / sigma2,
    }


def _ch03_ml_reml_replicates(n_subjects: int, n_obs: int, reps: int) -> dict[str, float]:
    """Mean REML and ML estimates of tau^2 over ``reps`` simulated studies (seeds 0..reps-1)."""
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    reml, ml = [], []
    for seed in range(reps):
        df = simulate.reaction_times(n_subjects=n_subjects, n_obs=n_obs, rng=seed)
        reml.append(_tau2(lmer("reaction ~ 1 + (1 | subject)", df), "subject"))
        ml.append(_tau2(lmer("reaction ~ 1 + (1 | subject)", df, REML=False), "subject"))
    tau = simulate.reaction_times(n_subjects=2, n_obs=1).attrs["truth"]["tau"]
    return {"reml": float(np.mean(reml)), "ml": float(np.mean(ml)), "tau2": tau**2}


@functools.cache
def _ch03_sim() -> dict[str, float]:
    return _ch03_ml_reml_replicates(**_SIM03)


def _interval_part(v: _Verdict, name: str, value: Any, z: float, what: str, hint: str) -> None:
    t = _ch03_null()
    beta0, tau, sigma = t["beta0"], math.sqrt(t["tau2"]), math.sqrt(t["sigma2"])
    if _unanswered(value):
        v.add(name, "unanswered", "not answered yet.")
        return
    try:
        low, high = _pair(value)
    except _Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.", hint)
        return
    low, high = min(low, high), max(low, high)

    def near(centre: float, half: float) -> bool:
        tol = max(0.02 * half, 0.5)
        return abs(low - (centre - half)) <= tol and abs(high - (centre + half)) <= tol

    # z itself or z rounded to two decimals (1.96, 2.58)
    if any(near(beta0, zz * tau) for zz in (z, round(z, 2))):
        v.add(name, "correct", f"right: this is {what}.")
    elif near(beta0, z * sigma):
        v.add(
            name,
            "incorrect",
            "this range uses sigma, the spread of single measurements around a subject's own "
            "average; subjects' averages spread with tau.",
            hint,
        )
    elif near(beta0, z * t["tau2"]):
        v.add(name, "incorrect", "this range uses the variance tau^2; use the SD tau.", hint)
    elif near(beta0, z * math.sqrt(t["tau2"] + t["sigma2"])):
        v.add(
            name,
            "incorrect",
            "this range combines tau and sigma: it is for single measurements of a new subject, "
            "not for subjects' averages.",
            hint,
        )
    elif near(beta0, z * t["se_beta0"]):
        v.add(
            name,
            "incorrect",
            "this is a confidence interval for the grand mean beta_0; the question asks where "
            "the subjects' own averages lie.",
            hint,
        )
    elif near(beta0, 1.959964 * tau) or near(beta0, 2.575829 * tau):
        v.add(name, "incorrect", "right idea, wrong multiplier: check 95 % against 99 %.", hint)
    else:
        v.add(name, "incorrect", f"not {what}.", hint)


@_exercise("ex03_1", "sleepstudy null model: beta_0, tau^2 and sigma^2", points=3)
def ex03_1(beta0_hat: Any, tau2_hat: Any, sigma2_hat: Any) -> CheckResult:
    """Exercise 3.1: the three parameters of ``Reaction ~ 1 + (1 | Subject)`` (REML).

    Parameters
    ----------
    beta0_hat : float
        The grand mean :math:`\\hat\\beta_0` (ms), the fixed intercept.
    tau2_hat : float
        The between-subject variance :math:`\\hat\\tau^2` (ms²).
    sigma2_hat : float
        The residual variance :math:`\\hat\\sigma^2` (ms²).

    Examples
    --------
    >>> ex03_1(..., ..., ...).status
    'unanswered'
    """
    v = _Verdict("ex03_1")
    t = _ch03_null
    sd_msg = "this looks like the SD ({}); the question asks for the variance ({}^2)."
    v.number(
        "beta0_hat",
        beta0_hat,
        lambda: t()["beta0"],
        what="the estimated grand mean",
        slips=lambda: [
            (
                t()["theta_lme4"],
                "this is lme4's theta (m.theta), the covariance parameter tau / sigma, not the "
                "grand mean: the grand mean beta_0 is the fixed intercept.",
            ),
        ],
        hint="m.fixef['(Intercept)']",
    )
    v.number(
        "tau2_hat",
        tau2_hat,
        lambda: t()["tau2"],
        what="the between-subject variance",
        slips=lambda: [
            (math.sqrt(t()["tau2"]), sd_msg.format("tau", "tau")),
            (t()["sigma2"], "this is the residual variance sigma^2, not tau^2."),
            (t()["tau2_ml"], "this is the ML estimate; the question asks for the REML fit."),
            (
                t()["ratio_sm"],
                "this is statsmodels' parameter 'Subject Var', the ratio tau^2 / sigma^2; "
                "tau^2 itself is cov_re (the ratio times scale).",
            ),
        ],
        hint="the vcov column of m.varcorr, row Subject.",
    )
    v.number(
        "sigma2_hat",
        sigma2_hat,
        lambda: t()["sigma2"],
        what="the residual variance",
        slips=lambda: [
            (math.sqrt(t()["sigma2"]), sd_msg.format("sigma", "sigma")),
            (t()["tau2"], "this is the between-subject variance tau^2, not sigma^2."),
        ],
        hint="m.sigma is the residual SD.",
    )
    return v.result()


@_exercise("ex03_2", "95 % and 99 % ranges of the subjects' averages", points=2)
def ex03_2(range95: Any, range99: Any) -> CheckResult:
    """Exercise 3.2: where 95 % and 99 % of subjects' average reaction times lie, by the model.

    Parameters
    ----------
    range95, range99 : tuple of float
        ``(lower, upper)`` in ms.

    Examples
    --------
    >>> print(ex03_2((1, 2, 3), ...))
    ✗ ex03_2 (exercise 3.2) not right yet: 0 of 2 right.
      ✗ range95: expected two numbers, (lower, upper), got a tuple of length 3.
      … range99: not answered yet.
      hint: beta_0 plus and minus z times the right standard deviation.
    """
    v = _Verdict("ex03_2")
    hint = "beta_0 plus and minus z times the right standard deviation."
    _interval_part(v, "range95", range95, _Z95, "the 95 % range of subjects' averages", hint)
    _interval_part(v, "range99", range99, _Z99, "the 99 % range of subjects' averages", hint)
    return v.result()


@_exercise("ex03_3", "what tau and sigma say about a new subject, in words", kind="manual")
def ex03_3(answer_new_subject: Any) -> CheckResult:
    """Exercise 3.3 (words, graded by hand): tau and sigma for a new subject.

    Parameters
    ----------
    answer_new_subject : str
        Three to five sentences.

    Examples
    --------
    >>> ex03_3(42).status
    'incorrect'
    """
    v = _Verdict("ex03_3")
    v.text(
        "answer_new_subject",
        answer_new_subject,
        min_words=30,
        ideas=[
            (r"tau|τ|between", "what tau describes (the spread of subjects' own averages)?"),
            (r"sigma|σ|within|residual", "what sigma describes (one subject's day-to-day spread)?"),
            (r"\bms\b|millisecond|\d", "how big these spreads are, in milliseconds?"),
        ],
    )
    return v.result()


@_exercise("ex03_4", "ML against REML: predict, then refit", points=2)
def ex03_4(prediction_ml: Any, tau2_ml: Any) -> CheckResult:
    """Exercise 3.4: the ML estimate of :math:`\\tau^2` for the null model of exercise 3.1.

    Parameters
    ----------
    prediction_ml : str
        Written before fitting: will the ML estimate of tau^2 be ``"larger"``, ``"smaller"`` or
        the ``"same"`` as the REML one?
    tau2_ml : float
        :math:`\\hat\\tau^2` of the ML fit (``REML=False``).

    Examples
    --------
    >>> ex03_4("bigger", ...).status
    'partial'
    """
    v = _Verdict("ex03_4")
    t = _ch03_null
    v.number(
        "tau2_ml",
        tau2_ml,
        lambda: t()["tau2_ml"],
        what="the ML estimate of tau^2",
        slips=lambda: [
            (t()["tau2"], "this is the REML estimate; refit with REML=False."),
            (math.sqrt(t()["tau2_ml"]), "this looks like the SD tau; the question asks for tau^2."),
            (t()["sigma2_ml"], "this is the residual variance sigma^2."),
        ],
        hint="mlm.lmer(..., REML=False), then the vcov column of varcorr.",
    )
    truth = t()
    v.choice(
        "prediction_ml",
        prediction_ml,
        _MORE_LESS,
        truth=lambda: "smaller" if truth["tau2_ml"] < truth["tau2"] else "larger",
        reveal=v.ok("tau2_ml"),
    )
    return v.result()


@_exercise("ex03_5", "simulated studies: the bias of ML against the truth", points=2)
def ex03_5(mean_tau2_reml: Any, mean_tau2_ml: Any) -> CheckResult:
    """Exercise 3.5: average REML and ML estimates of tau^2 over 100 simulated small studies.

    Study ``k`` (``k = 0, ..., 99``) is ``simulate.reaction_times(n_subjects=6, n_obs=10,
    rng=k)``; the true :math:`\\tau^2` is in ``attrs["truth"]``.

    Parameters
    ----------
    mean_tau2_reml, mean_tau2_ml : float
        The mean over the 100 studies of :math:`\\hat\\tau^2` by REML and by ML.

    Examples
    --------
    >>> ex03_5(..., ...).status
    'unanswered'
    """
    v = _Verdict("ex03_5")
    t = _ch03_sim
    v.number(
        "mean_tau2_reml",
        mean_tau2_reml,
        lambda: t()["reml"],
        what="the mean REML estimate",
        rel=0.02,
        slips=lambda: [
            (t()["ml"], "this is the mean ML estimate."),
            (math.sqrt(t()["reml"]), "this looks like an SD; average the variances tau^2."),
        ],
        hint="fit each of the 100 studies (seeds 0 to 99) and average the 100 values of tau^2.",
    )
    v.number(
        "mean_tau2_ml",
        mean_tau2_ml,
        lambda: t()["ml"],
        what="the mean ML estimate",
        rel=0.02,
        slips=lambda: [
            (t()["reml"], "this is the mean REML estimate; refit with REML=False."),
            (math.sqrt(t()["ml"]), "this looks like an SD; average the variances tau^2."),
        ],
        hint="the same 100 studies, fitted with REML=False.",
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        result.message = (
            f"every part is right. Against the true tau^2 of {truth['tau2']:.0f}, REML is off by "
            f"{100 * (truth['reml'] / truth['tau2'] - 1):+.0f} % on average and ML by "
            f"{100 * (truth['ml'] / truth['tau2'] - 1):+.0f} %."
        )
    return result


# --------------------------------------------------------------------------------------------
# chapter 4: the intraclass correlation
# --------------------------------------------------------------------------------------------

_NULL04 = "mAch ~ 1 + (1 | school)"
_SIM04 = {"n_subjects": 50, "n_obs": 8, "theta": 500.0, "tau": 20.0, "sigma": 40.0, "rng": 4}


def _icc_se(icc: float, m: float, groups: int) -> float:
    """Large-sample SE of an ICC with ``groups`` clusters of size ``m`` (Fisher's formula)."""
    num = 2 * (1 - icc) ** 2 * (1 + (m - 1) * icc) ** 2
    return math.sqrt(num / (m * (m - 1) * (groups - 1)))


@functools.cache
def _ch04_null() -> dict[str, float]:
    m0 = _fit(_NULL04, "hsb")
    hsb = _data("hsb")
    sizes = hsb.groupby("school", observed=True).size()
    tau2, sigma2 = _tau2(m0, "school"), float(m0.sigma) ** 2
    icc = tau2 / (tau2 + sigma2)
    n, j = len(hsb), len(sizes)
    mbar = n / j
    deff = 1 + (mbar - 1) * icc
    return {
        "tau2": tau2,
        "sigma2": sigma2,
        "icc": icc,
        "icc_sd": math.sqrt(tau2) / (math.sqrt(tau2) + math.sqrt(sigma2)),
        "icc_ratio": tau2 / sigma2,
        "n": float(n),
        "j": float(j),
        "mbar": mbar,
        "deff": deff,
        "deff_m": 1 + mbar * icc,
        "deff_median": 1 + (float(sizes.median()) - 1) * icc,
        "deff_max": 1 + (float(sizes.max()) - 1) * icc,
        "n_eff": n / deff,
        "se_icc": _icc_se(icc, mbar, j),
    }


@functools.cache
def _ch04_sim() -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    df = simulate.reaction_times(**_SIM04)
    truth = df.attrs["truth"]
    m = lmer("reaction ~ 1 + (1 | subject)", df)
    tau2, sigma2 = _tau2(m, "subject"), float(m.sigma) ** 2
    true_icc = truth["tau"] ** 2 / (truth["tau"] ** 2 + truth["sigma"] ** 2)
    return {
        "true": true_icc,
        "true_sd": truth["tau"] / (truth["tau"] + truth["sigma"]),
        "est": tau2 / (tau2 + sigma2),
        "se": _icc_se(true_icc, _SIM04["n_obs"], _SIM04["n_subjects"]),
    }


@_exercise("ex04_1", "the ICC of the school null model, by hand")
def ex04_1(icc_hsb: Any) -> CheckResult:
    """Exercise 4.1: the ICC of ``mAch ~ 1 + (1 | school)`` from its variance components.

    Parameters
    ----------
    icc_hsb : float
        :math:`\\hat\\tau^2 / (\\hat\\tau^2 + \\hat\\sigma^2)` (a share; a percentage is accepted).

    Examples
    --------
    >>> ex04_1("a lot").status
    'incorrect'
    """
    v = _Verdict("ex04_1")
    t = _ch04_null
    v.number(
        "icc_hsb",
        icc_hsb,
        lambda: t()["icc"],
        what="the ICC",
        percent=True,
        slips=lambda: [
            (t()["icc_sd"], "this uses the standard deviations; the ICC is a ratio of variances."),
            (1 - t()["icc"], "this is the share of the variance within schools, 1 - ICC."),
            (t()["icc_ratio"], "this is tau^2 / sigma^2; divide by the total, tau^2 + sigma^2."),
        ],
        hint="tau^2 and sigma^2 are the vcov column of m.varcorr.",
    )
    return v.result()


@_exercise("ex04_2", "a parametric bootstrap interval for the ICC")
def ex04_2(ci_icc: Any) -> CheckResult:
    """Exercise 4.2: a 95 % parametric-bootstrap interval for the ICC of exercise 4.1.

    Any seed and number of bootstrap samples of at least 100 give an interval that passes: the
    check compares its limits with a large-sample approximation of the ICC's standard error.

    Parameters
    ----------
    ci_icc : tuple of float
        ``(lower, upper)``, or the Series returned by ``mlmprimer.icc_ci``.

    Examples
    --------
    >>> ex04_2((0.1, 0.2, 0.3)).status
    'incorrect'
    """
    v = _Verdict("ex04_2")
    name = "ci_icc"
    hint = "mlm.icc_ci(m0, n_boot=..., seed=..., progress=False) returns conf.low and conf.high."
    try:
        low, high = _pair(ci_icc)
    except _Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.", hint)
        return v.result()
    low, high = min(low, high), max(low, high)
    t = _ch04_null()
    if high > 1 and low >= 0 and high <= 100:
        low, high = low / 100, high / 100
    icc, se = t["icc"], t["se_icc"]
    if not (0 <= low < high <= 1):
        v.add(name, "incorrect", "an ICC lies between 0 and 1: these limits cannot be right.", hint)
    elif not (low < icc < high):
        v.add(name, "incorrect", "the interval does not contain the estimated ICC.", hint)
    elif high - low < 2 * 1.96 * se * 0.5:
        v.add(
            name,
            "incorrect",
            "this interval is too narrow for a 95 % interval; check the level and that the "
            "limits come from the bootstrap, not from its standard error.",
            hint,
        )
    elif high - low > 2 * 1.96 * se * 1.6:
        v.add(name, "incorrect", "this interval is too wide for a 95 % interval.", hint)
    elif abs(low - (icc - 1.96 * se)) > 1.2 * se or abs(high - (icc + 1.96 * se)) > 1.2 * se:
        v.add(name, "incorrect", "the limits sit in the wrong place around the estimate.", hint)
    else:
        v.add(name, "correct", "right: a plausible 95 % interval for the ICC.")
    return v.result()


@_exercise("ex04_3", "design effect and effective sample size: predict, then compute", points=3)
def ex04_3(prediction_n_eff: Any, deff_hsb: Any, n_eff_hsb: Any) -> CheckResult:
    """Exercise 4.3: design effect and effective sample size of the 7185 pupils.

    Parameters
    ----------
    prediction_n_eff : float
        Written before computing: your guess of the effective sample size (any positive number).
    deff_hsb : float
        Design effect :math:`1 + (\\bar m - 1) \\hat\\rho_I`, :math:`\\bar m` the mean school size.
    n_eff_hsb : float
        Effective sample size :math:`N / \\text{deff}`.

    Examples
    --------
    >>> ex04_3(-5, ..., ...).status
    'incorrect'
    """
    v = _Verdict("ex04_3")
    t = _ch04_null
    v.number(
        "deff_hsb",
        deff_hsb,
        lambda: t()["deff"],
        what="the design effect",
        slips=lambda: [
            (t()["deff_m"], "this uses m instead of m - 1."),
            (t()["deff_median"], "this uses the median school size; use the mean."),
            (t()["deff_max"], "this uses the largest school; use the mean school size."),
        ],
        hint="mean school size = number of pupils / number of schools.",
    )
    v.number(
        "n_eff_hsb",
        n_eff_hsb,
        lambda: t()["n_eff"],
        what="the effective sample size",
        rel=0.015,
        slips=lambda: [
            (t()["n"] * t()["deff"], "multiply? The clustering makes the sample worth less."),
            (t()["j"] * t()["deff"], "this is the number of schools times the design effect."),
        ],
        hint="N / design effect.",
    )
    name = "prediction_n_eff"
    if _unanswered(prediction_n_eff):
        v.add(name, "unanswered", "not answered yet: write your guess, a number of pupils.")
    else:
        try:
            guess = _number(prediction_n_eff)
        except _Unreadable as exc:
            v.add(name, "incorrect", f"{exc}.")
        else:
            if guess <= 0:
                v.add(name, "incorrect", "a sample size is a positive number.")
            elif not v.ok("n_eff_hsb"):
                v.add(
                    name, "correct", "guess recorded; compare it with your result when you have it."
                )
            else:
                factor = guess / t()["n_eff"]
                how = (
                    "within a factor of 1.5 of the result: a good feel for clustering."
                    if 1 / 1.5 <= factor <= 1.5
                    else f"{'above' if factor > 1 else 'below'} the result by a factor of "
                    f"{max(factor, 1 / factor):.1f}. Think about why."
                )
                v.add(name, "correct", f"guess recorded, {how}")
    return v.result()


@_exercise("ex04_4", "what an ICC of this size means, in words", kind="manual")
def ex04_4(answer_icc_meaning: Any) -> CheckResult:
    """Exercise 4.4 (words, graded by hand): the ICC of the schools for pupils and for schools.

    Parameters
    ----------
    answer_icc_meaning : str
        Three to five sentences.

    Examples
    --------
    >>> ex04_4("   ").status
    'unanswered'
    """
    v = _Verdict("ex04_4")
    v.text(
        "answer_icc_meaning",
        answer_icc_meaning,
        min_words=30,
        ideas=[
            (r"correlat", "that the ICC is a correlation, and of what?"),
            (r"share|proportion|percent|%|fraction", "what share of the variance it is?"),
            (r"same school|two pupils|two students|pupils from", "what it says about two pupils?"),
        ],
    )
    return v.result()


@_exercise("ex04_5", "simulated subjects: the ICC against the truth", points=2)
def ex04_5(icc_true: Any, icc_est: Any) -> CheckResult:
    """Exercise 4.5: true and estimated ICC of simulated data.

    The data are ``simulate.reaction_times(n_subjects=50, n_obs=8, theta=500, tau=20,
    sigma=40, rng=4)``.

    Parameters
    ----------
    icc_true : float
        The ICC from the simulation's true parameters (``attrs["truth"]``).
    icc_est : float
        The ICC estimated from ``reaction ~ 1 + (1 | subject)``.

    Examples
    --------
    >>> ex04_5(..., ...).status
    'unanswered'
    """
    v = _Verdict("ex04_5")
    t = _ch04_sim
    v.number(
        "icc_true",
        icc_true,
        lambda: t()["true"],
        what="the true ICC",
        percent=True,
        slips=lambda: [
            (t()["true_sd"], "this uses the standard deviations; the ICC is a ratio of variances."),
            (1 - t()["true"], "this is 1 - ICC, the share within subjects."),
        ],
        hint="attrs['truth'] holds tau and sigma, which are standard deviations.",
    )
    v.number(
        "icc_est",
        icc_est,
        lambda: t()["est"],
        what="the estimated ICC",
        percent=True,
        slips=lambda: [(t()["true"], "this is the true ICC; estimate it from the fitted model.")],
        hint="fit reaction ~ 1 + (1 | subject) and use mlm.icc or the variance components.",
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        z = (truth["est"] - truth["true"]) / truth["se"]
        result.message = (
            "every part is right. The estimate misses the truth by "
            f"{abs(z):.1f} standard errors: {'a typical' if abs(z) < 2 else 'a large'} error "
            "for 50 subjects."
        )
    return result


# --------------------------------------------------------------------------------------------
# helpers for the later chapters
# --------------------------------------------------------------------------------------------


def _coef(model: Any, group: str) -> pd.DataFrame:
    """Per-group coefficients of one grouping factor (``coef(m)$group`` in R)."""
    coef = model.coef()
    return coef[group] if isinstance(coef, dict) else coef


def _vc(model: Any, group: str, var1: str, var2: str | None = None) -> tuple[float, float]:
    """``(vcov, sdcor)`` of one row of ``model.varcorr``: a variance (``var2`` None) or a
    covariance."""
    vc = model.varcorr
    mask = (vc["grp"] == group) & (vc["var1"] == var1)
    mask &= vc["var2"].isna() if var2 is None else (vc["var2"] == var2)
    row = vc[mask].iloc[0]
    return float(row["vcov"]), float(row["sdcor"])


def _range_part(
    v: _Verdict,
    name: str,
    value: Any,
    centre: float,
    half: float,
    *,
    what: str,
    hint: str,
    slips: Iterable[tuple[float, float, str]] = (),
    rel: float = 0.02,
) -> None:
    """Judge an interval ``centre -/+ half`` given as ``(lower, upper)`` in either order."""
    if _unanswered(value):
        v.add(name, "unanswered", "not answered yet.")
        return
    try:
        low, high = _pair(value)
    except _Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.", hint)
        return
    low, high = min(low, high), max(low, high)

    def near(c: float, h: float) -> bool:
        tol = rel * abs(half)
        return abs(low - (c - h)) <= tol and abs(high - (c + h)) <= tol

    if near(centre, half):
        v.add(name, "correct", f"right: this is {what}.")
        return
    for c, h, message in slips:
        if near(c, h):
            v.add(name, "incorrect", message, hint)
            return
    if low <= centre <= high:
        v.add(name, "incorrect", f"not {what}: the limits are off.", hint)
    else:
        v.add(name, "incorrect", f"not {what}: it should lie around the estimate.", hint)


def _pair_part(
    v: _Verdict,
    name: str,
    value: Any,
    target: Callable[[], tuple[float, float]],
    *,
    what: str,
    hint: str,
    slips: Callable[[], Iterable[tuple[tuple[float, float], str]]] = lambda: (),
    rel: float = REL_TOL,
) -> None:
    """Judge two numbers given in a fixed order (a vector such as theta)."""
    if _unanswered(value):
        v.add(name, "unanswered", "not answered yet.")
        return
    try:
        a, b = _pair(value)
    except _Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.", hint)
        return

    def near(t: tuple[float, float]) -> bool:
        return _close(a, t[0], rel) and _close(b, t[1], rel)

    t = target()
    if near(t):
        v.add(name, "correct", f"right: this is {what}.")
        return
    if near((t[1], t[0])):
        v.add(
            name,
            "incorrect",
            "the right numbers in the wrong order: follow design.theta_names.",
            hint,
        )
        return
    for alt, message in slips():
        if near(alt) or near((alt[1], alt[0])):
            v.add(name, "incorrect", message, hint)
            return
    v.add(name, "incorrect", f"not {what}.", hint)


def _recorded_guess(
    v: _Verdict, name: str, value: Any, truth: Callable[[], float], ok: bool
) -> None:
    """A numeric prediction: any positive whole number scores; compared once ``ok``."""
    if _unanswered(value):
        v.add(name, "unanswered", "not answered yet: write your guess, a whole number.")
        return
    try:
        guess = _number(value)
    except _Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.")
        return
    if guess <= 0 or guess != int(guess):
        v.add(name, "incorrect", "write a positive whole number.")
    elif not ok:
        v.add(name, "correct", "guess recorded; compare it with your result when you have it.")
    elif guess == truth():
        v.add(name, "correct", "guess recorded, and your result bears it out.")
    else:
        v.add(
            name,
            "correct",
            "guess recorded; your result says otherwise. Work out why before you go on: that is "
            "the point of predicting.",
        )


# --------------------------------------------------------------------------------------------
# chapter 5: shrinkage and partial pooling
# --------------------------------------------------------------------------------------------

_RADON0 = "log_radon ~ 1 + (1 | county)"
_RADON_U = "log_radon ~ uranium + (1 | county)"
_TOP05 = 10
_SIM05 = {"n_subjects": 30, "n_obs": 3, "rng": 5}


def _weight_from_sds(tau: float, sigma: float, n: int) -> dict[str, float]:
    """The weight of a group's own mean written, by mistake, with standard deviations."""
    return {
        "lam_sd": tau / (tau + sigma / math.sqrt(n)),
        "lam_sd_n": tau / (tau + sigma / n),
        "lam_sd_no_n": tau / (tau + sigma),
    }


def _sd_weight_slips(t: dict[str, float]) -> list[tuple[float, str]]:
    """The chapter's common mistake "computing the weight with standard deviations", by name."""
    mistake = (
        "the common mistake of computing the weight with standard deviations instead of "
        "variances: lambda_j = tau^2 / (tau^2 + sigma^2 / n_j) squares tau and sigma, and "
        "divides sigma^2 (not sigma) by n_j."
    )
    return [
        (t["lam_sd"], f"this is tau / (tau + sigma / sqrt(n_j)), {mistake}"),
        (t["lam_sd_n"], f"this is tau / (tau + sigma / n_j), {mistake}"),
        (t["lam_sd_no_n"], f"this is tau / (tau + sigma), {mistake}"),
    ]


@functools.cache
def _ch05_lake() -> dict[str, float]:
    radon = _data("radon")
    m0 = _fit(_RADON0, "radon")
    county = "LAKE"  # the counties are labelled by name
    homes = radon.loc[radon["county"] == county, "log_radon"]
    n, own = len(homes), float(homes.mean())
    tau2, sigma2 = _tau2(m0, "county"), float(m0.sigma) ** 2
    beta0 = float(m0.fixef["(Intercept)"])
    grand = float(radon["log_radon"].mean())
    lam = tau2 / (tau2 + sigma2 / n)
    return {
        "lam": lam,
        **_weight_from_sds(math.sqrt(tau2), math.sqrt(sigma2), n),
        "lam_no_n": tau2 / (tau2 + sigma2),
        "lam_flip": 1 - lam,
        "partial": float(_coef(m0, "county").loc[county, "(Intercept)"]),
        "partial_grand": lam * own + (1 - lam) * grand,
        "partial_flip": (1 - lam) * own + lam * beta0,
        "own": own,
        "beta0": beta0,
        "u": float(m0.ranef["county"].loc[county, "(Intercept)"]),
    }


@functools.cache
def _ch05_ranking() -> dict[str, float]:
    from mlmprimer.pooling import pooling

    tab = pooling(_data("radon"), y="log_radon", group="county")

    def homes(column: str, k: int, top: bool = True) -> float:
        part = tab.nlargest(k, column) if top else tab.nsmallest(k, column)
        return float(part["n"].mean())

    return {
        "own": homes("no_pooling", _TOP05),
        "model": homes("partial", _TOP05),
        "own5": homes("no_pooling", 5),
        "model5": homes("partial", 5),
        "own_bottom": homes("no_pooling", _TOP05, top=False),
        "model_bottom": homes("partial", _TOP05, top=False),
        "all": float(tab["n"].mean()),
    }


@functools.cache
def _ch05_uranium() -> dict[str, float]:
    radon = _data("radon")
    m0, mu = _fit(_RADON0, "radon"), _fit(_RADON_U, "radon")
    county = "COTTONWOOD"
    rows = radon[radon["county"] == county]
    w = float(rows["uranium"].iloc[0])
    b0, b1 = float(mu.fixef["(Intercept)"]), float(mu.fixef["uranium"])
    intercept = float(_coef(mu, "county").loc[county, "(Intercept)"])
    return {
        "with": intercept + b1 * w,
        "without": float(_coef(m0, "county").loc[county, "(Intercept)"]),
        "own": float(rows["log_radon"].mean()),
        "target": b0 + b1 * w,
        "intercept": intercept,
        "u": float(mu.ranef["county"].loc[county, "(Intercept)"]),
    }


@functools.cache
def _ch05_sim() -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.pooling import pooling

    sim = simulate.reaction_times(**_SIM05)
    true_means = simulate.reaction_times(
        n_subjects=_SIM05["n_subjects"], n_obs=1, sigma=0.0, rng=_SIM05["rng"]
    ).set_index("subject")["reaction"]
    truth = sim.attrs["truth"]
    n = _SIM05["n_obs"]
    tab = pooling(sim, y="reaction", group="subject")
    errors = tab[["complete", "no_pooling", "partial"]].sub(true_means.reindex(tab.index), axis=0)
    mse = (errors**2).mean()
    tau2, sigma2 = truth["tau"] ** 2, truth["sigma"] ** 2
    return {
        "lam": tau2 / (tau2 + sigma2 / n),
        **_weight_from_sds(truth["tau"], truth["sigma"], n),
        "lam_no_n": tau2 / (tau2 + sigma2),
        "lam_est": float(tab["weight"].iloc[0]),
        "mse_no": float(mse["no_pooling"]),
        "mse_partial": float(mse["partial"]),
        "mse_complete": float(mse["complete"]),
    }


@_exercise("ex05_1", "Lake County: the weight of its own mean and its estimate", points=2)
def ex05_1(lambda_lake: Any, partial_lake: Any) -> CheckResult:
    """Exercise 5.1: the weight of Lake County's own mean and its partial-pooling estimate.

    The model is ``log_radon ~ 1 + (1 | county)`` (REML) on the ``radon`` data, whose counties
    are labelled by name; Lake County is ``county == "LAKE"``.

    Parameters
    ----------
    lambda_lake : float
        :math:`\\lambda_j = \\hat\\tau^2 / (\\hat\\tau^2 + \\hat\\sigma^2 / n_j)` for Lake County.
    partial_lake : float
        :math:`\\lambda_j \\bar y_j + (1 - \\lambda_j) \\hat\\beta_0` (log pCi/L).

    Examples
    --------
    >>> ex05_1(..., ...).status
    'unanswered'
    >>> ex05_1(1.5, ...).status
    'incorrect'
    """
    v = _Verdict("ex05_1")
    t = _ch05_lake
    v.number(
        "lambda_lake",
        lambda_lake,
        lambda: t()["lam"],
        what="the weight of Lake County's own mean",
        slips=lambda: [
            *_sd_weight_slips(t()),
            (
                t()["lam_no_n"],
                "this leaves out n_j: it is the weight of a county with a single home.",
            ),
            (
                t()["lam_flip"],
                "this is 1 - lambda_j, the shrinkage: the weight of beta_0-hat, not of the "
                "county's own mean.",
            ),
        ],
        hint="lambda_j = tau^2 / (tau^2 + sigma^2 / n_j), n_j = the homes measured in the county.",
    )
    v.number(
        "partial_lake",
        partial_lake,
        lambda: t()["partial"],
        what="Lake County's partial-pooling estimate",
        slips=lambda: [
            (t()["own"], "this is the county's own mean (no pooling)."),
            (
                t()["partial_grand"],
                "this pulls towards the mean of all homes; the model pulls towards beta_0-hat, "
                "its estimate of the mean of the county means.",
            ),
            (t()["partial_flip"], "the weights are swapped: lambda_j goes with the own mean."),
            (t()["u"], "this is the county's effect u_j alone; add beta_0-hat."),
            (t()["beta0"], "this is beta_0-hat, the same for every county."),
        ],
        hint="lambda_j * (own mean) + (1 - lambda_j) * beta_0-hat; m.coef() has it too.",
    )
    return v.result()


@_exercise("ex05_2", "who tops the ranking: homes behind the ten highest counties", points=2)
def ex05_2(n_top_own: Any, n_top_model: Any) -> CheckResult:
    """Exercise 5.2: average number of homes measured in the ten highest-ranked counties.

    Parameters
    ----------
    n_top_own : float
        Mean ``n_j`` of the 10 counties with the highest own (no-pooling) mean of ``log_radon``.
    n_top_model : float
        Mean ``n_j`` of the 10 counties with the highest partial-pooling estimate.

    Examples
    --------
    >>> ex05_2(..., ...).status
    'unanswered'
    """
    v = _Verdict("ex05_2")
    t = _ch05_ranking
    everyone = "this is the mean over all counties; keep only the ten highest."
    v.number(
        "n_top_own",
        n_top_own,
        lambda: t()["own"],
        what="the mean number of homes of the ten highest own means",
        abs_tol=0.05,
        slips=lambda: [
            (t()["own5"], "this is the top five; the question asks for the top ten."),
            (t()["own_bottom"], "these are the ten lowest own means; sort in descending order."),
            (t()["model"], "this ranks by the model's estimates; rank by the own means here."),
            (t()["all"], everyone),
        ],
        hint="tab.nlargest(10, 'no_pooling')['n'].mean(), with tab = mlm.pooling(...).",
    )
    v.number(
        "n_top_model",
        n_top_model,
        lambda: t()["model"],
        what="the mean number of homes of the ten highest model estimates",
        abs_tol=0.05,
        slips=lambda: [
            (t()["model5"], "this is the top five; the question asks for the top ten."),
            (t()["model_bottom"], "these are the ten lowest estimates; sort in descending order."),
            (t()["own"], "this ranks by the own means; rank by the partial-pooling estimates."),
            (t()["all"], everyone),
        ],
        hint="the same, ranked by the 'partial' column.",
    )
    return v.result()


@_exercise("ex05_3", "ranking counties by radon, in words", kind="manual")
def ex05_3(answer_ranking: Any) -> CheckResult:
    """Exercise 5.3 (words, graded by hand): why a ranking by raw county means misleads.

    Parameters
    ----------
    answer_ranking : str
        Three to five sentences.

    Examples
    --------
    >>> ex05_3("Small counties.").status
    'incorrect'
    """
    v = _Verdict("ex05_3")
    v.text(
        "answer_ranking",
        answer_ranking,
        min_words=30,
        ideas=[
            (
                r"small|few|one or two|homes|n_j|sample size",
                "which counties reach the top, and why?",
            ),
            (
                r"noise|chance|luck|uncertain|variab|unreliab|precis",
                "why their means are unreliable?",
            ),
            (r"shrink|pull|partial|pool|model|weight", "what the model's estimates do instead?"),
        ],
    )
    return v.result()


@_exercise("ex05_4", "Cottonwood County and soil uranium: predict, then compute", points=2)
def ex05_4(prediction_cottonwood: Any, cottonwood_uranium: Any) -> CheckResult:
    """Exercise 5.4: Cottonwood County's estimate from ``log_radon ~ uranium + (1 | county)``.

    Parameters
    ----------
    prediction_cottonwood : str
        Written before fitting: will the county's estimate with uranium in the model be
        ``"larger"``, ``"smaller"`` or the ``"same"`` as without it?
    cottonwood_uranium : float
        Its partial-pooling estimate with uranium, :math:`\\hat\\beta_0 + \\hat\\beta_1 w_j +
        \\hat u_j` (log pCi/L).

    Examples
    --------
    >>> ex05_4("higher", ...).status
    'partial'
    """
    v = _Verdict("ex05_4")
    t = _ch05_uranium
    v.number(
        "cottonwood_uranium",
        cottonwood_uranium,
        lambda: t()["with"],
        what="Cottonwood's estimate with uranium in the model",
        slips=lambda: [
            (t()["without"], "this is the estimate of the model without uranium."),
            (t()["own"], "this is the county's own mean (no pooling)."),
            (
                t()["target"],
                "this is the uranium line at the county's uranium, the value it is pulled "
                "towards; its own homes still carry some weight.",
            ),
            (
                t()["intercept"],
                "this is the county's intercept in m.coef(); add beta_1 times its uranium.",
            ),
            (t()["u"], "this is the county's effect u_j alone."),
        ],
        hint="beta_0 + beta_1 * w_j + u_j, or the county's intercept from coef() plus "
        "beta_1 * w_j.",
    )
    truth = t()
    v.choice(
        "prediction_cottonwood",
        prediction_cottonwood,
        _MORE_LESS,
        truth=lambda: "larger" if truth["with"] > truth["without"] else "smaller",
        reveal=v.ok("cottonwood_uranium"),
    )
    return v.result()


@_exercise("ex05_5", "simulated subjects: is partial pooling closer to the truth?", points=3)
def ex05_5(lambda_true: Any, mse_no_pooling: Any, mse_partial: Any) -> CheckResult:
    """Exercise 5.5: the weight of a subject's own mean, and mean squared errors against the truth.

    The data are ``simulate.reaction_times(n_subjects=30, n_obs=3, rng=5)``; the true means of
    the subjects are ``simulate.reaction_times(n_subjects=30, n_obs=1, sigma=0, rng=5)``.

    Parameters
    ----------
    lambda_true : float
        The true weight of a subject's own mean, :math:`\\tau^2 / (\\tau^2 + \\sigma^2 / 3)`,
        from ``attrs["truth"]``.
    mse_no_pooling, mse_partial : float
        Mean over the 30 subjects of the squared difference between the no-pooling and the
        partial-pooling estimate of a subject's mean and its true mean (ms²).

    Examples
    --------
    >>> ex05_5(..., ..., ...).status
    'unanswered'
    """
    v = _Verdict("ex05_5")
    t = _ch05_sim
    v.number(
        "lambda_true",
        lambda_true,
        lambda: t()["lam"],
        what="the true weight of a subject's own mean",
        slips=lambda: [
            (
                t()["lam_est"],
                "this is the weight estimated from the data; the question asks for the true one, "
                "from attrs['truth'].",
            ),
            *_sd_weight_slips(t()),
            (t()["lam_no_n"], "this leaves out n_j = 3 measurements per subject."),
        ],
        hint="attrs['truth'] holds tau and sigma (standard deviations); each subject has n_j = 3.",
    )
    rmse_msg = "this looks like a root mean squared error; the question asks for the mean of the "
    v.number(
        "mse_no_pooling",
        mse_no_pooling,
        lambda: t()["mse_no"],
        what="the no-pooling mean squared error",
        slips=lambda: [
            (math.sqrt(t()["mse_no"]), rmse_msg + "squares."),
            (t()["mse_partial"], "this is the error of partial pooling."),
            (t()["mse_complete"], "this is the error of complete pooling."),
        ],
        hint="mean of (no_pooling - true mean)^2 over the 30 subjects, matched by subject.",
    )
    v.number(
        "mse_partial",
        mse_partial,
        lambda: t()["mse_partial"],
        what="the partial-pooling mean squared error",
        slips=lambda: [
            (math.sqrt(t()["mse_partial"]), rmse_msg + "squares."),
            (t()["mse_no"], "this is the error of no pooling."),
            (t()["mse_complete"], "this is the error of complete pooling."),
        ],
        hint="the same with the 'partial' column of mlm.pooling(...).",
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        result.message = (
            "every part is right. Partial pooling cuts the no-pooling error by "
            f"{100 * (1 - truth['mse_partial'] / truth['mse_no']):.0f} %; the weight the model "
            f"estimated from these data is {truth['lam_est'] / truth['lam']:.2f} times the true "
            "one."
        )
    return result


# --------------------------------------------------------------------------------------------
# chapter 6: random slopes
# --------------------------------------------------------------------------------------------

_CSES_INT = "mAch ~ cses + (1 | school)"
_CSES_UNC = "mAch ~ cses + (1 | school) + (0 + cses | school)"
_CSES_COR = "mAch ~ cses + (1 + cses | school)"
_SES_COR = "mAch ~ ses + (1 + ses | school)"
_OX = "height ~ age + (age | Subject)"
_SIM06 = {"n_schools": 80, "n_students": 25, "rng": 6}


@functools.cache
def _ch06_cses() -> dict[str, float]:
    m, ms = _fit(_CSES_COR, "hsb"), _fit(_SES_COR, "hsb")
    tau1_var, tau1 = _vc(m, "school", "cses")
    _, tau0 = _vc(m, "school", "(Intercept)")
    cov, rho = _vc(m, "school", "(Intercept)", "cses")
    _, tau1_ses = _vc(ms, "school", "ses")
    _, rho_ses = _vc(ms, "school", "(Intercept)", "ses")
    return {
        "tau1": tau1,
        "tau1_var": tau1_var,
        "tau0": tau0,
        "rho": rho,
        "cov": cov,
        "b1": float(m.fixef["cses"]),
        "se_b1": _se(m, "cses"),
        "sigma": float(m.sigma),
        "tau1_ses": tau1_ses,
        "rho_ses": rho_ses,
        "b1_ses": float(ms.fixef["ses"]),
    }


@functools.cache
def _ch06_compare() -> dict[str, float]:
    from mlmprimer.compare import compare

    mi, mu, mc = _fit(_CSES_INT, "hsb"), _fit(_CSES_UNC, "hsb"), _fit(_CSES_COR, "hsb")
    three = compare(mi, mu, mc, names=["int", "unc", "cor"], verbose=False)
    both = compare(mi, mc, names=["int", "cor"], verbose=False)
    ml = compare(mi, mu, names=["int", "unc"], refit=True, verbose=False)
    return {
        "chisq": float(three.loc["unc", "Chisq"]),
        "p_naive": float(three.loc["unc", "Pr(>Chisq)"]),
        "p_mix": float(three.loc["unc", "Pr(>Chisq) mixture"]),
        "chisq_rho": float(three.loc["cor", "Chisq"]),
        "p_both": float(both.loc["cor", "Pr(>Chisq)"]),
        "p_both_mix": float(both.loc["cor", "Pr(>Chisq) mixture"]),
        "chisq_ml": float(ml.loc["unc", "Chisq"]),
        "p_ml_mix": float(ml.loc["unc", "Pr(>Chisq) mixture"]),
        "loglik_diff": float(mu.loglik - mi.loglik),
    }


@functools.cache
def _ch06_oxboys() -> dict[str, float]:
    from mlmprimer.model import lmer

    ox = _data("oxboys")
    m = _fit(_OX, "oxboys")
    start = lmer("height ~ age_start + (age_start | Subject)", ox.assign(age_start=ox["age"] + 1))
    t0, tau0 = _vc(m, "Subject", "(Intercept)")
    t1, tau1 = _vc(m, "Subject", "age")
    c, rho = _vc(m, "Subject", "(Intercept)", "age")
    var_start, tau0_start = _vc(start, "Subject", "(Intercept)")
    _, rho_start = _vc(start, "Subject", "(Intercept)", "age_start")
    tau0_end = math.sqrt(t0 + 2 * c + t1)
    return {
        "tau0": tau0,
        "rho": rho,
        "tau0_start": tau0_start,
        "var_start": var_start,
        "rho_start": rho_start,
        "tau0_end": tau0_end,
        "rho_end": (c + t1) / (tau0_end * tau1),
        "tau1": tau1,
    }


@functools.cache
def _ch06_sim() -> dict[str, Any]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    sim = simulate.schools_ses(**_SIM06)
    m = lmer("math ~ ses + (ses | school)", sim)
    tau1_var, tau1 = _vc(m, "school", "ses")
    _, tau0 = _vc(m, "school", "(Intercept)")
    return {
        "tau1": tau1,
        "tau1_var": tau1_var,
        "tau0": tau0,
        "b0": float(m.fixef["(Intercept)"]),
        "se_b0": _se(m, "(Intercept)"),
        "b1": float(m.fixef["ses"]),
        "se_b1": _se(m, "ses"),
        "truth": dict(sim.attrs["truth"]),
    }


@_exercise("ex06_1", "slopes of centred SES: tau_1, rho and the range of slopes", points=3)
def ex06_1(tau1_cses: Any, rho_cses: Any, slope_range_cses: Any) -> CheckResult:
    """Exercise 6.1: the random part of ``mAch ~ cses + (1 + cses | school)`` (REML, ``hsb``).

    Parameters
    ----------
    tau1_cses : float
        :math:`\\hat\\tau_1`, the standard deviation of the schools' ``cses`` slopes.
    rho_cses : float
        :math:`\\hat\\rho`, the correlation of a school's intercept and slope.
    slope_range_cses : tuple of float
        ``(lower, upper)``: where 95 % of the schools' slopes lie by the model,
        :math:`\\hat\\beta_1 \\pm 1.96\\,\\hat\\tau_1`.

    Examples
    --------
    >>> ex06_1(..., ..., ...).status
    'unanswered'
    """
    v = _Verdict("ex06_1")
    t = _ch06_cses
    v.number(
        "tau1_cses",
        tau1_cses,
        lambda: t()["tau1"],
        what="the standard deviation of the cses slopes",
        slips=lambda: [
            (t()["tau1_var"], "this looks like the variance tau_1^2; the question asks for tau_1."),
            (t()["tau0"], "this is tau_0, the SD of the intercepts."),
            (t()["tau1_ses"], "this is the slope SD of the model with ses; use cses here."),
            (t()["sigma"], "this is the residual SD sigma."),
        ],
        hint="the sdcor column of m.varcorr, row school / cses.",
    )
    v.number(
        "rho_cses",
        rho_cses,
        lambda: t()["rho"],
        what="the intercept-slope correlation",
        abs_tol=0.005,
        slips=lambda: [
            (t()["cov"], "this is the covariance (vcov); the correlation is in sdcor."),
            (t()["rho_ses"], "this is the correlation of the model with ses; use cses here."),
        ],
        hint="the row of m.varcorr whose var2 is cses holds the correlation in sdcor.",
    )
    truth = t()
    _range_part(
        v,
        "slope_range_cses",
        slope_range_cses,
        truth["b1"],
        _Z95 * truth["tau1"],
        what="the 95 % range of the schools' slopes",
        hint="beta_1 plus and minus 1.96 times the SD of the slopes.",
        slips=[
            (truth["b1"], _Z95 * truth["tau1_var"], "this range uses the variance tau_1^2."),
            (
                truth["b1"],
                _Z95 * truth["se_b1"],
                "this is a confidence interval for the average slope beta_1; the question asks "
                "where the schools' own slopes lie, which is set by tau_1.",
            ),
            (
                truth["b1_ses"],
                _Z95 * truth["tau1_ses"],
                "this is the range of the model with ses; use cses here.",
            ),
        ],
    )
    return v.result()


@_exercise("ex06_2", "do the cses slopes vary? The boundary-corrected test", points=2)
def ex06_2(chisq_slope_cses: Any, p_mixture_cses: Any) -> CheckResult:
    """Exercise 6.2: likelihood-ratio test of ``(1 | school)`` against an uncorrelated slope.

    The models are ``mAch ~ cses + (1 | school)`` and ``mAch ~ cses + (1 | school) + (0 + cses
    | school)``, both by REML, compared with ``mlmprimer.compare``.

    Parameters
    ----------
    chisq_slope_cses : float
        The likelihood-ratio statistic, twice the difference of the log-likelihoods.
    p_mixture_cses : float
        The p-value from the 50:50 mixture of chi^2_0 and chi^2_1.

    Examples
    --------
    >>> ex06_2(-3, ...).status
    'incorrect'
    """
    v = _Verdict("ex06_2")
    t = _ch06_compare
    ml_msg = (
        "this comes from ML refits (what R's anova() does unless given refit = FALSE); models "
        "that differ only in their random effects are compared on the REML criterion "
        "(compare's default here)."
    )
    v.number(
        "chisq_slope_cses",
        chisq_slope_cses,
        lambda: t()["chisq"],
        what="the likelihood-ratio statistic",
        slips=lambda: [
            (t()["loglik_diff"], "this is the difference of the log-likelihoods; double it."),
            (t()["chisq_ml"], ml_msg),
            (t()["chisq_rho"], "this compares the correlated with the uncorrelated model."),
        ],
        hint="mlm.compare(m_int, m_unc) and its Chisq column.",
    )
    v.number(
        "p_mixture_cses",
        p_mixture_cses,
        lambda: t()["p_mix"],
        what="the mixture p-value",
        rel=0.03,
        abs_tol=1.1e-4,
        slips=lambda: [
            (
                t()["p_naive"],
                "this is the naive chi^2_1 p-value; tau_1^2 = 0 lies on the boundary, so use the "
                "mixture.",
            ),
            (2 * t()["p_naive"], "this doubles the p-value; the mixture halves it."),
            (
                t()["p_both_mix"],
                "this tests the correlated model (slope variance and covariance) against random "
                "intercepts; the question adds the slope variance only.",
            ),
            (t()["p_both"], "this is the naive test of the correlated model."),
            (t()["p_ml_mix"], ml_msg),
        ],
        hint="the column 'Pr(>Chisq) mixture', on the row of the uncorrelated model.",
    )
    return v.result()


@_exercise("ex06_3", "Oxford boys: moving the zero of age, predict then refit", points=3)
def ex06_3(prediction_tau0_start: Any, tau0_start: Any, rho_start: Any) -> CheckResult:
    """Exercise 6.3: ``height ~ age + (age | Subject)`` with age counted from the first occasion.

    ``age_start = age + 1`` is 0 at the first measurement (``age`` runs from -1 to 1).

    Parameters
    ----------
    prediction_tau0_start : str
        Written before fitting: will :math:`\\hat\\tau_0` with ``age_start`` be ``"larger"``,
        ``"smaller"`` or the ``"same"`` as with ``age``?
    tau0_start : float
        :math:`\\hat\\tau_0` of ``height ~ age_start + (age_start | Subject)`` (cm).
    rho_start : float
        Its intercept-slope correlation.

    Examples
    --------
    >>> ex06_3("bigger", ..., ...).status
    'partial'
    """
    v = _Verdict("ex06_3")
    t = _ch06_oxboys
    v.number(
        "tau0_start",
        tau0_start,
        lambda: t()["tau0_start"],
        what="the SD of the boys' heights at the first occasion",
        slips=lambda: [
            (t()["tau0"], "this is tau_0 of the model with age: at the middle of the study."),
            (t()["var_start"], "this looks like the variance; the question asks for the SD."),
            (t()["tau0_end"], "this is tau_0 at the last occasion: age_start = age + 1."),
            (t()["tau1"], "this is tau_1, the SD of the growth rates."),
        ],
        hint="refit with age_start = age + 1 and read sdcor of the (Intercept) row.",
    )
    v.number(
        "rho_start",
        rho_start,
        lambda: t()["rho_start"],
        what="the correlation at the first occasion",
        abs_tol=0.005,
        slips=lambda: [
            (t()["rho"], "this is the correlation of the model with age (middle of the study)."),
            (t()["rho_end"], "this is the correlation at the last occasion."),
        ],
        hint="the sdcor of the row whose var2 is age_start.",
    )
    truth = t()
    v.choice(
        "prediction_tau0_start",
        prediction_tau0_start,
        _MORE_LESS,
        truth=lambda: "smaller" if truth["tau0_start"] < truth["tau0"] else "larger",
        reveal=v.ok("tau0_start"),
    )
    return v.result()


@_exercise("ex06_4", "why slopes are shrunk harder than intercepts, in words", kind="manual")
def ex06_4(answer_slope_shrinkage: Any) -> CheckResult:
    """Exercise 6.4 (words, graded by hand): why school slopes are shrunk so hard.

    Parameters
    ----------
    answer_slope_shrinkage : str
        Three to five sentences.

    Examples
    --------
    >>> ex06_4(["a", "list"]).status
    'incorrect'
    """
    v = _Verdict("ex06_4")
    v.text(
        "answer_slope_shrinkage",
        answer_slope_shrinkage,
        min_words=30,
        ideas=[
            (
                r"spread|range|narrow|similar|vari\w* of (ses|x)|sum of squares",
                "how much SES varies within one school, and why that matters for a slope?",
            ),
            (r"noise|uncertain|precis|sampling|standard error|reliab", "how precise a slope is?"),
            (r"weight|shrink|pull|average slope|borrow|pool", "what the model does with it?"),
        ],
    )
    return v.result()


@_exercise(
    "ex06_5", "simulated schools: slope SD and the average slope against the truth", points=2
)
def ex06_5(tau1_sim: Any, ci_beta1_sim: Any) -> CheckResult:
    """Exercise 6.5: ``math ~ ses + (ses | school)`` on simulated schools with a known truth.

    The data are ``simulate.schools_ses(n_schools=80, n_students=25, rng=6)``.

    Parameters
    ----------
    tau1_sim : float
        The estimated SD of the schools' slopes, :math:`\\hat\\tau_1`.
    ci_beta1_sim : tuple of float
        The 95 % Wald interval ``(lower, upper)`` of the average slope :math:`\\beta_1`.

    Examples
    --------
    >>> ex06_5(..., ...).status
    'unanswered'
    """
    v = _Verdict("ex06_5")
    t = _ch06_sim
    v.number(
        "tau1_sim",
        tau1_sim,
        lambda: t()["tau1"],
        what="the estimated SD of the slopes",
        slips=lambda: [
            (t()["tau1_var"], "this looks like the variance tau_1^2; the question asks for tau_1."),
            (
                t()["truth"]["tau1"],
                "this is the true value from attrs['truth']; the question asks for the estimate.",
            ),
            (t()["tau0"], "this is tau_0, the SD of the intercepts."),
        ],
        hint="fit the model and read the sdcor of the school / ses row of m.varcorr.",
    )
    truth = t()
    _range_part(
        v,
        "ci_beta1_sim",
        ci_beta1_sim,
        truth["b1"],
        _Z95 * truth["se_b1"],
        what="the 95 % interval of the average slope",
        hint="m.tidy(conf_int=True) has conf.low and conf.high; or beta_1 -/+ 1.96 SE.",
        slips=[
            (
                truth["b0"],
                _Z95 * truth["se_b0"],
                "this is the interval of the intercept; the question asks for the slope of ses.",
            ),
            (
                truth["b1"],
                _Z95 * truth["tau1"],
                "this is where 95 % of the schools' slopes lie (it uses tau_1), not an interval "
                "for the average slope.",
            ),
            (truth["b1"], truth["se_b1"], "this is plus and minus one SE, a 68 % interval."),
        ],
    )
    result = v.result()
    if result.status == "correct":
        low, high = truth["b1"] - _Z95 * truth["se_b1"], truth["b1"] + _Z95 * truth["se_b1"]
        covers = low <= truth["truth"]["beta1"] <= high
        result.message = (
            "every part is right. The interval "
            f"{'covers' if covers else 'misses'} the true average slope, and the estimated slope "
            f"SD is {abs(100 * (truth['tau1'] / truth['truth']['tau1'] - 1)):.0f} % "
            f"{'above' if truth['tau1'] > truth['truth']['tau1'] else 'below'} the true one."
        )
    return result


# --------------------------------------------------------------------------------------------
# chapter 7: crossed and nested random effects
# --------------------------------------------------------------------------------------------

#: key -> (data set, outer or first factor, inner or second factor)
_STRUCTURES = {
    "penicillin": ("penicillin", "plate", "sample"),
    "pastes": ("pastes", "batch", "sample"),
    "pastes_labels": ("pastes", "batch", "cask"),
    "scotssec": ("scotssec", "primary", "second"),
    "hsb": ("hsb", "sector", "school"),
}
_STRUCTURE_WORDS = {
    "nested": ("nested", "nesting", "nested in", "hierarchical", "hierarchy"),
    "fully crossed": ("fully crossed", "fully", "full", "completely crossed", "crossed fully"),
    "partially crossed": (
        "partially crossed",
        "partially",
        "partial",
        "partly crossed",
        "partly",
        "cross classified",
    ),
}
_SCOTS0 = "attain ~ 1 + (1 | primary) + (1 | second)"
_SCOTS1 = "attain ~ verbal + sex + (1 | primary) + (1 | second)"
_PASTES = "strength ~ 1 + (1 | batch/cask)"
_PASTES_WRONG = "strength ~ 1 + (1 | batch) + (1 | cask)"
_SIM07 = {"rng": 5}


def _structure(data: pd.DataFrame, a: str, b: str) -> str:
    """``nested``, ``fully crossed`` or ``partially crossed``, read off the labels of a and b."""
    pairs = data.groupby([a, b], observed=True).size()
    per_a = pairs.groupby(level=0, observed=True).size()
    per_b = pairs.groupby(level=1, observed=True).size()
    if (per_a == 1).all() or (per_b == 1).all():
        return "nested"
    if len(pairs) == data[a].nunique() * data[b].nunique():
        return "fully crossed"
    return "partially crossed"


def _structure_word(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    said = " ".join(re.sub(r"[^a-z ]", " ", value.lower()).split())
    for key, words in _STRUCTURE_WORDS.items():
        if said in (key, *words):
            return key
    return None


@functools.cache
def _ch07_structures() -> dict[str, str]:
    return {key: _structure(_data(d), a, b) for key, (d, a, b) in _STRUCTURES.items()}


@functools.cache
def _ch07_scots() -> dict[str, float]:
    from mlmprimer.icc import icc

    m0, m1 = _fit(_SCOTS0, "scotssec"), _fit(_SCOTS1, "scotssec")
    null, adjusted = icc(m0, by_group=True), icc(m1, by_group=True)
    tp, ts, s2 = _tau2(m0, "primary"), _tau2(m0, "second"), float(m0.sigma) ** 2
    sds = math.sqrt(tp) + math.sqrt(ts) + math.sqrt(s2)
    only_p = _fit("attain ~ 1 + (1 | primary)", "scotssec")
    only_s = _fit("attain ~ 1 + (1 | second)", "scotssec")
    return {
        "primary": float(null["primary"]),
        "second": float(null["second"]),
        "primary_adj": float(adjusted["primary"]),
        "second_adj": float(adjusted["second"]),
        "primary_sd": math.sqrt(tp) / sds,
        "second_sd": math.sqrt(ts) / sds,
        "primary_of_groups": tp / (tp + ts),
        "second_of_groups": ts / (tp + ts),
        "primary_alone": float(icc(only_p)),
        "second_alone": float(icc(only_s)),
    }


@functools.cache
def _ch07_pastes() -> dict[str, float]:
    m, wrong = _fit(_PASTES, "pastes"), _fit(_PASTES_WRONG, "pastes")
    tb, tc, s2 = _tau2(m, "batch"), _tau2(m, "cask:batch"), float(m.sigma) ** 2
    wb, wc, ws2 = _tau2(wrong, "batch"), _tau2(wrong, "cask"), float(wrong.sigma) ** 2
    total, wtotal = tb + tc + s2, wb + wc + ws2
    sds = math.sqrt(tb) + math.sqrt(tc) + math.sqrt(s2)
    return {
        "same_cask": (tb + tc) / total,
        "same_batch": tb / total,
        "cask_only": tc / total,
        "same_cask_wrong": (wb + wc) / wtotal,
        "same_batch_wrong": wb / wtotal,
        "same_cask_sd": (math.sqrt(tb) + math.sqrt(tc)) / sds,
        "same_batch_sd": math.sqrt(tb) / sds,
    }


@functools.cache
def _ch07_sim() -> dict[str, float]:
    from mlmprimer import simulate
    from mlmprimer.model import lmer

    dc = simulate.drivers_cars(**_SIM07)
    truth = dc.attrs["truth"]
    j, k, n = dc["driver"].nunique(), dc["car"].nunique(), len(dc)
    crossed = lmer("mpg ~ 1 + (1 | driver) + (1 | car)", dc)
    drivers = lmer("mpg ~ 1 + (1 | driver)", dc)
    td2, tc2, s2 = truth["tau_driver"] ** 2, truth["tau_car"] ** 2, truth["sigma"] ** 2
    return {
        "true": math.sqrt(td2 / j + tc2 / k + s2 / n),
        "true_no_cars": math.sqrt(td2 / j + s2 / n),
        "true_naive": math.sqrt((td2 + tc2 + s2) / n),
        "crossed": _se(crossed, "(Intercept)"),
        "drivers": _se(drivers, "(Intercept)"),
        "ols": float(dc["mpg"].std() / math.sqrt(n)),
    }


@_exercise("ex07_1", "nested, fully crossed or partially crossed? Read it off the data", points=2)
def ex07_1(structure: Any) -> CheckResult:
    """Exercise 7.1: how two grouping factors relate, in five data sets.

    Parameters
    ----------
    structure : dict
        ``{key: "nested" | "fully crossed" | "partially crossed"}`` for the keys
        ``"penicillin"`` (``plate`` and ``sample``), ``"pastes"`` (``batch`` and ``sample``),
        ``"pastes_labels"`` (``batch`` and ``cask``, the labels as they are), ``"scotssec"``
        (``primary`` and ``second``) and ``"hsb"`` (``sector`` and ``school``).

    Examples
    --------
    >>> ex07_1({"penicillin": "maybe"}).status
    'incorrect'
    """
    v = _Verdict("ex07_1")
    hint = (
        "pd.crosstab(df[a], df[b]): one non-zero cell per row (or per column) means nested; no "
        "zero cell means fully crossed."
    )
    if not isinstance(structure, dict):
        v.add(
            "structure",
            "incorrect",
            f"expected a dict {{key: structure}}, got a {_type_name(structure)}.",
            hint,
        )
        return v.result()
    truth = _ch07_structures()
    answered = {str(k): _structure_word(val) for k, val in structure.items()}
    said_crossed = sorted(
        k
        for k, val in structure.items()
        if isinstance(val, str)
        and " ".join(re.sub(r"[^a-z ]", " ", val.lower()).split()) == "crossed"
    )
    unknown = sorted(k for k in answered if k not in truth)
    unreadable = sorted(
        k for k, val in answered.items() if k in truth and val is None and k not in said_crossed
    )
    missing = [k for k in truth if k not in answered]
    right = sum(answered.get(k) == truth[k] for k in truth)
    message = f"{right} of {len(truth)} pairs of factors classified right."
    notes = []
    if missing:
        notes.append(f"missing: {', '.join(missing)}")
    if unknown:
        notes.append(f"not asked about: {', '.join(unknown)}")
    if said_crossed:
        notes.append(f"say fully or partially crossed for: {', '.join(sorted(said_crossed))}")
    if unreadable:
        notes.append(
            f"write 'nested', 'fully crossed' or 'partially crossed' for: {', '.join(unreadable)}"
        )
    if notes:
        message += " (" + "; ".join(notes) + ")"
    v.add("structure", "correct" if right == len(truth) else "incorrect", message, hint)
    result = v.result()
    result.score = round(QUESTIONS["ex07_1"].points * right / len(truth), 4)
    if 0 < right < len(truth):
        result.status = "partial"
    return result


@_exercise("ex07_2", "ScotsSec without covariates: predict, then split the variance", points=3)
def ex07_2(
    prediction_primary_share: Any, share_primary_null: Any, share_second_null: Any
) -> CheckResult:
    """Exercise 7.2: variance shares of ``attain ~ 1 + (1 | primary) + (1 | second)``.

    Parameters
    ----------
    prediction_primary_share : str
        Written before fitting: without ``verbal`` and ``sex``, will the primary schools' share
        be ``"larger"``, ``"smaller"`` or the ``"same"`` as in the chapter's adjusted model?
    share_primary_null, share_second_null : float
        :math:`\\tau^2_\\text{primary}` and :math:`\\tau^2_\\text{secondary}` as shares of the
        total variance (``mlmprimer.icc(m, by_group=True)``); percentages are accepted.

    Examples
    --------
    >>> ex07_2(..., ..., ...).status
    'unanswered'
    """
    v = _Verdict("ex07_2")
    t = _ch07_scots
    adj = "this is the share after adjusting for verbal and sex; fit the model without them."
    sd = "this uses standard deviations; a share of variance is a ratio of variances."
    of_groups = "this divides by the school variances only; the total includes the residual."
    v.number(
        "share_primary_null",
        share_primary_null,
        lambda: t()["primary"],
        what="the primary schools' share of the variance",
        abs_tol=0.003,
        percent=True,
        slips=lambda: [
            (t()["primary_adj"], adj),
            (t()["primary_sd"], sd),
            (t()["primary_of_groups"], of_groups),
            (t()["primary_alone"], "this model leaves out the secondary schools."),
        ],
        hint="mlm.icc(m, by_group=True) on attain ~ 1 + (1 | primary) + (1 | second).",
    )
    v.number(
        "share_second_null",
        share_second_null,
        lambda: t()["second"],
        what="the secondary schools' share of the variance",
        abs_tol=0.003,
        percent=True,
        slips=lambda: [
            (t()["second_adj"], adj),
            (t()["second_sd"], sd),
            (t()["second_of_groups"], of_groups),
            (t()["second_alone"], "this model leaves out the primary schools."),
        ],
        hint="the same model; the row of the secondary schools (second).",
    )
    truth = t()
    v.choice(
        "prediction_primary_share",
        prediction_primary_share,
        _MORE_LESS,
        truth=lambda: "larger" if truth["primary"] > truth["primary_adj"] else "smaller",
        reveal=v.ok("share_primary_null"),
    )
    return v.result()


@_exercise("ex07_3", "Pastes: how alike are two assays?", points=2)
def ex07_3(cor_same_cask: Any, cor_same_batch: Any) -> CheckResult:
    """Exercise 7.3: correlations implied by ``strength ~ 1 + (1 | batch/cask)`` (``pastes``).

    Parameters
    ----------
    cor_same_cask : float
        The model's correlation of two assays of the same cask.
    cor_same_batch : float
        The correlation of two assays from different casks of the same batch.

    Examples
    --------
    >>> ex07_3(2.5, ...).status
    'incorrect'
    """
    v = _Verdict("ex07_3")
    t = _ch07_pastes
    wrong = (
        "this comes from (1 | batch) + (1 | cask), which treats the cask labels a, b, c as three "
        "casks shared by all batches; the casks are nested in the batches."
    )
    sd = "this uses standard deviations; correlations here are ratios of variances."
    v.number(
        "cor_same_cask",
        cor_same_cask,
        lambda: t()["same_cask"],
        what="the correlation of two assays of one cask",
        abs_tol=0.005,
        percent=True,
        slips=lambda: [
            (
                t()["cask_only"],
                "this is the casks' share alone; two assays of one cask also share its batch.",
            ),
            (t()["same_batch"], "this is for two casks of the same batch."),
            (t()["same_cask_wrong"], wrong),
            (t()["same_cask_sd"], sd),
        ],
        hint="the variances the two assays share, over the total variance.",
    )
    v.number(
        "cor_same_batch",
        cor_same_batch,
        lambda: t()["same_batch"],
        what="the correlation of two casks of one batch",
        abs_tol=0.005,
        percent=True,
        slips=lambda: [
            (
                t()["cask_only"],
                "this is the casks' share; two different casks share only the batch.",
            ),
            (t()["same_cask"], "this is for two assays of the same cask."),
            (t()["same_batch_wrong"], wrong),
            (t()["same_batch_sd"], sd),
        ],
        hint="only the batch effect is shared by two different casks of one batch.",
    )
    return v.result()


@_exercise("ex07_4", "the (1 | cask) mistake, in words", kind="manual")
def ex07_4(answer_cask_labels: Any) -> CheckResult:
    """Exercise 7.4 (words, graded by hand): what ``(1 | batch) + (1 | cask)`` gets wrong.

    Parameters
    ----------
    answer_cask_labels : str
        Three to five sentences.

    Examples
    --------
    >>> ex07_4(...).status
    'unanswered'
    """
    v = _Verdict("ex07_4")
    v.text(
        "answer_cask_labels",
        answer_cask_labels,
        min_words=30,
        ideas=[
            (r"label|name|\ba\b.*\bb\b|repeat", "what the labels a, b, c mean in each batch?"),
            (r"\b3\b|three|\b30\b|thirty|level|nunique|ngroups", "how many casks each model sees?"),
            (r"residual|sigma|σ|noise", "where the real cask-to-cask variation ends up?"),
            (r"nest|batch/cask|batch:cask|unique|sample", "how to write the model correctly?"),
        ],
    )
    return v.result()


@_exercise("ex07_5", "simulated drivers and cars: leaving out a crossed factor", points=4)
def ex07_5(
    prediction_se_mu: Any, se_mu_true: Any, se_mu_crossed: Any, se_mu_driver_only: Any
) -> CheckResult:
    """Exercise 7.5: standard errors of the mean fuel economy, with and without the cars.

    The data are ``simulate.drivers_cars(rng=5)`` (10 drivers, 8 cars, 2 drives each).

    Parameters
    ----------
    prediction_se_mu : str
        Written before fitting: will the SE of the intercept be ``"larger"``, ``"smaller"`` or
        the ``"same"`` when the cars are left out of the model?
    se_mu_true : float
        The true SE of the mean, :math:`\\sqrt{\\tau_d^2/J + \\tau_c^2/K + \\sigma^2/N}`, from
        ``attrs["truth"]``.
    se_mu_crossed : float
        The SE of ``(Intercept)`` in ``mpg ~ 1 + (1 | driver) + (1 | car)``.
    se_mu_driver_only : float
        The SE of ``(Intercept)`` in ``mpg ~ 1 + (1 | driver)``.

    Examples
    --------
    >>> ex07_5(..., ..., ..., ...).status
    'unanswered'
    """
    v = _Verdict("ex07_5")
    t = _ch07_sim
    var_msg = "this looks like a variance; take its square root."
    v.number(
        "se_mu_true",
        se_mu_true,
        lambda: t()["true"],
        what="the true standard error of the mean",
        slips=lambda: [
            (t()["true"] ** 2, var_msg),
            (t()["true_no_cars"], "this leaves out the cars' variance tau_car^2 / K."),
            (
                t()["true_naive"],
                "this treats the 160 drives as independent; a driver's effect repeats in all of "
                "their drives and averages over J drivers only, a car's over K cars.",
            ),
            (t()["crossed"], "this is the SE the model estimates; compute the true one."),
        ],
        hint="tau_driver^2 / J + tau_car^2 / K + sigma^2 / N from attrs['truth'], then sqrt.",
    )
    v.number(
        "se_mu_crossed",
        se_mu_crossed,
        lambda: t()["crossed"],
        what="the crossed model's SE of the intercept",
        slips=lambda: [
            (t()["crossed"] ** 2, var_msg),
            (t()["drivers"], "this is the SE of the model with drivers only."),
            (t()["ols"], "this is the SE of an ordinary mean (OLS), ignoring both factors."),
        ],
        hint="np.sqrt(m.vcov.loc['(Intercept)', '(Intercept)']).",
    )
    v.number(
        "se_mu_driver_only",
        se_mu_driver_only,
        lambda: t()["drivers"],
        what="the drivers-only model's SE of the intercept",
        slips=lambda: [
            (t()["drivers"] ** 2, var_msg),
            (t()["crossed"], "this is the SE of the model with drivers and cars."),
            (t()["ols"], "this is the SE of an ordinary mean (OLS), ignoring both factors."),
        ],
        hint="fit mpg ~ 1 + (1 | driver) and take the same square root.",
    )
    truth = t()
    v.choice(
        "prediction_se_mu",
        prediction_se_mu,
        _MORE_LESS,
        truth=lambda: "smaller" if truth["drivers"] < truth["crossed"] else "larger",
        reveal=v.ok("se_mu_crossed") and v.ok("se_mu_driver_only"),
    )
    result = v.result()
    if result.status == "correct":
        result.message = (
            "every part is right. Against the true SE, the crossed model's is "
            f"{truth['crossed'] / truth['true']:.2f} times as large and the drivers-only "
            f"model's {truth['drivers'] / truth['true']:.2f} times."
        )
    return result


# --------------------------------------------------------------------------------------------
# appendix A1: how lmer fits a model (checks exA1_K, chapter "A1")
# --------------------------------------------------------------------------------------------

_PEN = "diameter ~ 1 + (1 | plate) + (1 | sample)"
_DRIVERS = "mpg ~ 1 + (1 | driver) + (1 | car)"
_SIMA1 = {"n_drivers": 30, "n_cars": 25, "rng": 3}


@functools.cache
def _chA1_penicillin() -> dict[str, float]:
    from mlmprimer.engine import build_design, profiled_deviance
    from mlmprimer.formula import parse_formula

    pen = _data("penicillin")
    design = build_design(parse_formula(_PEN), pen)
    ols = _smf().ols("diameter ~ 1", pen).fit()
    zero = np.zeros_like(design.theta0)
    levels = [t.nlevels for t in design.terms]
    return {
        "q": float(design.q),
        "ntheta": float(design.theta0.size),
        "n": float(design.n),
        "first": float(levels[0]),
        "second": float(levels[1]),
        "nnz": float(design.Z().nnz),
        "dev0": float(profiled_deviance(zero, design, REML=False)),
        "reml0": float(profiled_deviance(zero, design, REML=True)),
        "llf": float(ols.llf),
    }


@functools.cache
def _chA1_sim() -> dict[str, tuple[float, float]]:
    from mlmprimer import simulate
    from mlmprimer.engine import build_design, optimize_theta
    from mlmprimer.formula import parse_formula

    dc = simulate.drivers_cars(**_SIMA1)
    truth = dc.attrs["truth"]
    design = build_design(parse_formula(_DRIVERS), dc)
    factors = [name.split(".")[0] for name in design.theta_names]

    def pair(values: Any) -> tuple[float, float]:
        return float(values[0]), float(values[1])

    reml, ml = optimize_theta(design, REML=True), optimize_theta(design, REML=False)
    sigma = truth["sigma"]
    return {
        "true": pair([truth[f"tau_{f}"] / sigma for f in factors]),
        "true_inverse": pair([sigma / truth[f"tau_{f}"] for f in factors]),
        "true_squared": pair([(truth[f"tau_{f}"] / sigma) ** 2 for f in factors]),
        "true_tau": pair([truth[f"tau_{f}"] for f in factors]),
        "hat": pair(reml),
        "hat_ml": pair(ml),
        "hat_squared": pair(np.asarray(reml) ** 2),
    }


@_exercise("exA1_1", "the design of the Penicillin model: predict, then build it", points=3)
def exA1_1(prediction_n_theta: Any, q_pen: Any, n_theta_pen: Any) -> CheckResult:
    """Exercise A1.1: size of Z and number of covariance parameters of the Penicillin model.

    The model is ``diameter ~ 1 + (1 | plate) + (1 | sample)`` on ``penicillin``.

    Parameters
    ----------
    prediction_n_theta : int
        Written before building the design: your guess of the number of entries of theta.
    q_pen : int
        The number of columns of Z, ``design.q``.
    n_theta_pen : int
        The number of covariance parameters, the length of ``design.theta0``.

    Examples
    --------
    >>> exA1_1(0, ..., ...).status
    'incorrect'
    """
    v = _Verdict("exA1_1")
    t = _chA1_penicillin
    v.number(
        "q_pen",
        q_pen,
        lambda: t()["q"],
        what="the number of columns of Z",
        integer=True,
        slips=lambda: [
            (t()["n"], "this is the number of observations, the rows of Z."),
            (t()["first"], "this counts the plates only; Z has columns for both factors."),
            (t()["second"], "this counts the samples only; Z has columns for both factors."),
            (t()["nnz"], "this is the number of non-zero entries of Z."),
        ],
        hint="one column per level of each grouping factor: design.q or design.Z().shape.",
    )
    v.number(
        "n_theta_pen",
        n_theta_pen,
        lambda: t()["ntheta"],
        what="the number of covariance parameters",
        integer=True,
        slips=lambda: [
            (
                t()["ntheta"] + 1,
                "sigma is not part of theta: it has a closed form once theta is fixed.",
            ),
            (t()["q"], "this is the number of random effects, the columns of Z."),
        ],
        hint="design.theta0 has one entry per covariance parameter.",
    )
    _recorded_guess(
        v, "prediction_n_theta", prediction_n_theta, lambda: t()["ntheta"], v.ok("n_theta_pen")
    )
    return v.result()


@_exercise("exA1_2", "theta = 0 is ordinary least squares: the Penicillin check", points=2)
def exA1_2(dev_theta0_pen: Any, dev_ols_pen: Any) -> CheckResult:
    """Exercise A1.2: the ML deviance at theta = 0 against the OLS fit of ``diameter ~ 1``.

    Parameters
    ----------
    dev_theta0_pen : float
        ``profiled_deviance(theta, design, REML=False)`` with theta all zeros.
    dev_ols_pen : float
        Minus twice the log-likelihood of ``smf.ols("diameter ~ 1", pen).fit()``.

    Examples
    --------
    >>> exA1_2(..., ...).status
    'unanswered'
    """
    v = _Verdict("exA1_2")
    t = _chA1_penicillin
    llf_msg = "this is a log-likelihood; the deviance is -2 times it."
    v.number(
        "dev_theta0_pen",
        dev_theta0_pen,
        lambda: t()["dev0"],
        what="the ML deviance at theta = 0",
        rel=1e-6,
        abs_tol=0.05,
        slips=lambda: [
            (t()["reml0"], "this is the REML criterion; pass REML=False for the ML deviance."),
            (-t()["dev0"] / 2, llf_msg),
        ],
        hint="profiled_deviance(np.zeros(len(design.theta0)), design, REML=False).",
    )
    v.number(
        "dev_ols_pen",
        dev_ols_pen,
        lambda: -2 * t()["llf"],
        what="-2 times the OLS log-likelihood",
        rel=1e-6,
        abs_tol=0.05,
        slips=lambda: [
            (t()["llf"], llf_msg),
            (2 * t()["llf"], "mind the sign: the deviance is -2 times the log-likelihood."),
            (-t()["llf"], "the deviance is -2 times the log-likelihood, not -1 times."),
        ],
        hint="-2 * smf.ols('diameter ~ 1', pen).fit().llf",
    )
    return v.result()


@_exercise("exA1_3", "what theta is and why only theta is searched, in words", kind="manual")
def exA1_3(answer_theta: Any) -> CheckResult:
    """Exercise A1.3 (words, graded by hand): the role of theta in the fit.

    Parameters
    ----------
    answer_theta : str
        Three to five sentences.

    Examples
    --------
    >>> exA1_3("theta").status
    'incorrect'
    """
    v = _Verdict("exA1_3")
    v.text(
        "answer_theta",
        answer_theta,
        min_words=30,
        ideas=[
            (
                r"relative|ratio|divided|sigma|σ",
                "that theta measures the random effects relative to sigma?",
            ),
            (
                r"closed form|least squares|profil|solve|formula|directly",
                "how beta and sigma are found once theta is fixed?",
            ),
            (r"ols|ordinary|no random|zero", "what theta = 0 means?"),
        ],
    )
    return v.result()


@_exercise("exA1_4", "simulated drivers and cars: theta-hat against the true theta", points=2)
def exA1_4(theta_true_sim: Any, theta_hat_sim: Any) -> CheckResult:
    """Exercise A1.4: true and estimated theta of ``mpg ~ 1 + (1 | driver) + (1 | car)``.

    The data are ``simulate.drivers_cars(n_drivers=30, n_cars=25, rng=3)``. Both answers are in
    the order of ``design.theta_names``.

    Parameters
    ----------
    theta_true_sim : sequence of float
        The true theta, each factor's true SD divided by the true sigma (``attrs["truth"]``).
    theta_hat_sim : sequence of float
        ``optimize_theta(design)`` (REML).

    Examples
    --------
    >>> exA1_4((1.0, 2.0, 3.0), ...).status
    'incorrect'
    """
    v = _Verdict("exA1_4")
    t = _chA1_sim
    _pair_part(
        v,
        "theta_true_sim",
        theta_true_sim,
        lambda: t()["true"],
        what="the true theta",
        hint="theta is relative to sigma: tau_driver / sigma and tau_car / sigma.",
        slips=lambda: [
            (t()["true_inverse"], "these are sigma / tau; theta is tau / sigma."),
            (t()["true_squared"], "these are ratios of variances; theta is a ratio of SDs."),
            (t()["true_tau"], "these are the SDs tau themselves; divide by sigma."),
            (t()["hat"], "these are the estimates; the question asks for the true values."),
        ],
    )
    _pair_part(
        v,
        "theta_hat_sim",
        theta_hat_sim,
        lambda: t()["hat"],
        what="the REML estimate of theta",
        hint="optimize_theta(design) on build_design(parse_formula(formula), data).",
        slips=lambda: [
            (t()["hat_ml"], "this is the ML optimum; use REML (the default)."),
            (t()["hat_squared"], "these are squared; theta is a ratio of SDs."),
            (t()["true"], "these are the true values; estimate theta from the data."),
        ],
    )
    result = v.result()
    if result.status == "correct":
        truth = t()
        off = [abs(h / s - 1) for h, s in zip(truth["hat"], truth["true"], strict=True)]
        result.message = (
            "every part is right. The estimates miss the true theta by "
            f"{100 * off[0]:.0f} % (drivers) and {100 * off[1]:.0f} % (cars)."
        )
    return result


__all__ += list(QUESTIONS)
