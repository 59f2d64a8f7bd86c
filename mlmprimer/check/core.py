"""What the checks of every chapter share: results, reading answers, judging parts, the registry.

A chapter module (``mlmprimer/check/chNN.py``) builds its checks from what is here:

- :func:`exercise` registers a check in :data:`QUESTIONS` (its parameter names are the notebook
  variables it reads, its ``answers`` the rules of those written as text: :func:`prediction`,
  :func:`option`, :func:`words`) and makes it safe to call on any answer;
- :class:`Verdict` collects the judged parts of one answer (:meth:`Verdict.number`,
  :meth:`Verdict.option`, :meth:`Verdict.prediction`, :meth:`Verdict.text`, and
  :func:`judge_range`, :func:`judge_pair`, :func:`judge_guess`) and turns them into a
  :class:`CheckResult`;
- :func:`read_number`, :func:`read_pair`, :func:`is_unanswered` read answers;
- :func:`variant_seed` and :func:`student_key` give the seed of a student's own exercise data
  (per-student variants; an exercise opts in with ``exercise(..., seed=...)``);
- :func:`load_data`, :func:`fit_cached`, :func:`intercept_variance`, :func:`fixef_se`,
  :func:`varcorr_row`, :func:`group_coef` compute right answers from the course's data.

Examples
--------
>>> is_unanswered(...), read_number("12.5 %")
(True, 0.125)
"""

from __future__ import annotations

import functools
import hashlib
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

#: Relative tolerance for rounded numeric answers.
REL_TOL = 0.01
#: Normal quantiles of 95 % and 99 % ranges and intervals.
Z95, Z99 = 1.959964, 2.575829

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


def _listing(options: Iterable[str]) -> str:
    """``"larger", "smaller" or "same"``: the options as a student writes them."""
    quoted = [f'"{k}"' for k in options]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


@dataclass(frozen=True)
class Answer:
    """How one answer written as text is given: one of a few options, or words.

    The check judges the answer by these rules, and the student notebook states them (its
    placeholder and task text are written from :attr:`instruction`), so the two cannot disagree.
    Build one with :func:`prediction`, :func:`option` or :func:`words`.

    Attributes
    ----------
    options : dict
        Each option (as the student is asked to write it) and the spellings accepted for it.
    prediction : bool
        A guess made before computing: recorded (never marked right or wrong), then compared
        with the results.
    min_words : int
        For an answer in words, the fewest words accepted.

    Examples
    --------
    >>> prediction({"larger": ("bigger",), "smaller": ()}).instruction
    'your prediction, one of "larger" or "smaller"'
    >>> words(30).instruction
    'your answer, in words (at least 30 words), between the quotes'
    """

    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    prediction: bool = False
    min_words: int = 0

    @property
    def listing(self) -> str:
        """The options, quoted: ``"larger", "smaller" or "same"``."""
        return _listing(self.options)

    @property
    def instruction(self) -> str:
        """What the student writes, as the notebook's placeholder says it."""
        if self.options:
            who = "your prediction" if self.prediction else "your answer"
            return f"{who}, one of {self.listing}"
        return f"your answer, in words (at least {self.min_words} words), between the quotes"

    def pick(self, value: str) -> str | None:
        """The option a written answer names (case, spaces and punctuation aside), or None."""
        said = _plain(value)
        picked = [k for k, synonyms in self.options.items() if said in map(_plain, (k, *synonyms))]
        return picked[0] if len(picked) == 1 else None


def _plain(text: str) -> str:
    """Lower case, letters and digits only, single spaces: how written options are compared."""
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def prediction(options: dict[str, tuple[str, ...]]) -> Answer:
    """A prediction: one of ``options``, recorded and compared with the results, never marked."""
    return Answer(options=dict(options), prediction=True)


def option(options: dict[str, tuple[str, ...]]) -> Answer:
    """An answer that is one of ``options``, marked right or wrong."""
    return Answer(options=dict(options))


def words(min_words: int) -> Answer:
    """An answer in words, of at least ``min_words`` words, graded by hand."""
    return Answer(min_words=int(min_words))


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
    answers : dict
        The :class:`Answer` of each variable written as text (a prediction, an option, words).
    seed : int or None
        For an exercise with per-student variants, the seed of the public variant (the data
        everyone gets without a student id); None for an exercise whose data are the same for
        everyone. See :func:`variant_seed`.

    Examples
    --------
    >>> QUESTIONS["ex01_3"].answers["prediction_se"].instruction
    'your prediction, one of "larger", "smaller" or "same"'
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
    answers: dict[str, Answer] = field(default_factory=dict, compare=False)
    seed: int | None = None

    @property
    def has_variants(self) -> bool:
        """Whether each student gets data of their own (drawn from :func:`variant_seed`)."""
        return self.seed is not None

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


class Unreadable(ValueError):
    """An answer of the wrong shape or type; the message says what was expected."""


def describe_type(value: Any) -> str:
    """A short description of an answer's type, for messages.

    Examples
    --------
    >>> describe_type([1, 2, 3]), describe_type(np.zeros((2, 3)))
    ('list of length 3', 'array of shape (2, 3)')
    """
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


def is_unanswered(value: Any) -> bool:
    """Whether an answer is still the placeholder (``...``), ``None`` or empty text.

    Examples
    --------
    >>> is_unanswered(...), is_unanswered("  "), is_unanswered(0)
    (True, True, False)
    """
    if value is Ellipsis or value is None:
        return True
    return isinstance(value, str) and not value.strip()


_NUMBER_TEXT = re.compile(r"^\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*(%?)\s*$")


def read_number(value: Any) -> float:
    """A single finite number from an answer, or :class:`Unreadable`."""
    if isinstance(value, bool | np.bool_):
        raise Unreadable(f"expected a number, got {value!r}")
    if isinstance(value, numbers.Real):
        out = float(value)
    elif isinstance(value, str):
        match = _NUMBER_TEXT.match(value)
        if not match:
            raise Unreadable("expected a number, got text that is not a number")
        out = float(match.group(1)) / (100.0 if match.group(4) else 1.0)
    elif isinstance(value, pd.DataFrame | pd.Series | np.ndarray) and np.size(value) == 1:
        return read_number(np.asarray(value).reshape(-1)[0].item())
    elif isinstance(value, list | tuple) and len(value) == 1:
        return read_number(value[0])
    else:
        raise Unreadable(f"expected a single number, got a {describe_type(value)}")
    if not math.isfinite(out):
        raise Unreadable(f"expected a finite number, got {out}")
    return out


def read_pair(value: Any) -> tuple[float, float]:
    """Two numbers (lower, upper) from a tuple, list, array or an interval Series."""
    if isinstance(value, pd.Series) and {"conf.low", "conf.high"} <= set(value.index):
        value = (value["conf.low"], value["conf.high"])
    elif isinstance(value, dict) and {"conf.low", "conf.high"} <= set(value):
        value = (value["conf.low"], value["conf.high"])
    if isinstance(value, pd.Series | np.ndarray):
        value = list(np.asarray(value).reshape(-1))
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise Unreadable(f"expected two numbers, (lower, upper), got a {describe_type(value)}")
    return read_number(value[0]), read_number(value[1])


def close_to(a: float, b: float, rel: float = REL_TOL, abs_tol: float = 0.0) -> bool:
    """Whether ``a`` is within ``rel`` of ``b`` (relative to ``b``), or within ``abs_tol``.

    Examples
    --------
    >>> close_to(10.05, 10.0), close_to(10.5, 10.0)
    (True, False)
    """
    return abs(a - b) <= max(abs_tol, rel * abs(b))


def count_words(text: str) -> int:
    """The number of words of an answer in words (runs of letters and digits).

    Examples
    --------
    >>> count_words("tau^2 is the between-group variance.")
    7
    """
    return len(re.findall(r"[A-Za-z0-9]+", text))


# --------------------------------------------------------------------------------------------
# judging the parts of an answer
# --------------------------------------------------------------------------------------------


@dataclass
class Part:
    """One judged part of an answer; a prediction is ``recorded`` and says whether it held."""

    name: str
    status: str  # correct, incorrect, unanswered, recorded
    message: str
    hint: str | None = None
    weight: float = 1.0
    prediction: bool = False
    borne_out: bool | None = None  # for a prediction compared with the results


def _prediction_summary(guesses: list[Part]) -> str:
    """The message once every answer is right: what the results say of the predictions."""
    if all(p.borne_out for p in guesses):
        return (
            "every answer is right, and your results bear out your prediction (recorded; a "
            "prediction is not marked)."
        )
    return (
        "every answer is right, and your results go against your prediction (recorded; a "
        "prediction is not marked): work out why before you go on."
    )


class Verdict:
    """Collects the judged parts of one exercise and turns them into a :class:`CheckResult`."""

    def __init__(self, qid: str) -> None:
        self.qid = qid
        self.parts: list[Part] = []
        self.notes: list[str] = []

    def add(
        self,
        name: str,
        status: str,
        message: str,
        hint: str | None = None,
        weight: float = 1.0,
        *,
        prediction: bool = False,
        borne_out: bool | None = None,
    ) -> Part:
        part = Part(name, status, message, hint, weight, prediction, borne_out)
        self.parts.append(part)
        return part

    def answer(self, name: str) -> Answer:
        """How the variable ``name`` of this exercise is answered (from the registry)."""
        return QUESTIONS[self.qid].answers[name]

    def recorded_prediction(self, name: str, borne_out: bool | None, weight: float = 1.0) -> Part:
        """A valid prediction: recorded, and compared with the results once there are any."""
        if borne_out is None:
            message = "recorded; compare it with your results once you have them."
        elif borne_out:
            message = "recorded; your results bear it out."
        else:
            message = (
                "recorded; your results say otherwise. Work out why before you go on: that is "
                "the point of predicting."
            )
        return self.add(
            name, "recorded", message, weight=weight, prediction=True, borne_out=borne_out
        )

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
    ) -> Part:
        """Judge a numeric answer against ``truth()`` and against known slips."""
        if is_unanswered(value):
            return self.add(name, "unanswered", "not answered yet.", weight=weight)
        try:
            x = read_number(value)
        except Unreadable as exc:
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

    def _option_of(self, name: str, value: Any, weight: float) -> str | Part:
        """The option an answer names, or the part that says why it names none."""
        answer = self.answer(name)
        what = "prediction" if answer.prediction else "answer"
        if is_unanswered(value):
            return self.add(
                name,
                "unanswered",
                f"not answered yet: write one of {answer.listing}.",
                None,
                weight,
            )
        if not isinstance(value, str):
            return self.add(
                name,
                "incorrect",
                f"write your {what} as text, one of {answer.listing}.",
                None,
                weight,
            )
        picked = answer.pick(value)
        if picked is None:
            return self.add(
                name,
                "incorrect",
                f"not one of the options: write one of {answer.listing}.",
                None,
                weight,
            )
        return picked

    def prediction(
        self,
        name: str,
        value: Any,
        *,
        truth: Callable[[], str] | None,
        reveal: bool,
        weight: float = 1.0,
    ) -> Part:
        """Record a prediction (any valid option scores; it is compared once ``reveal``)."""
        picked = self._option_of(name, value, weight)
        if isinstance(picked, Part):
            return picked
        borne_out = None if truth is None or not reveal else picked == truth()
        return self.recorded_prediction(name, borne_out, weight)

    def option(
        self,
        name: str,
        value: Any,
        truth: Callable[[], str],
        *,
        what: str,
        hint: str | None = None,
        slips: dict[str, str] | None = None,
        weight: float = 1.0,
    ) -> Part:
        """Judge an answer that is one of a few options (``slips``: option -> message)."""
        picked = self._option_of(name, value, weight)
        if isinstance(picked, Part):
            return picked
        if picked == truth():
            return self.add(name, "correct", f"right: {what}.", weight=weight)
        message = (slips or {}).get(picked, f'not "{picked}": look again at your results.')
        return self.add(name, "incorrect", message, hint, weight)

    def text(
        self,
        name: str,
        value: Any,
        *,
        ideas: Iterable[tuple[str, str]],
        weight: float = 1.0,
    ) -> Part:
        """Record an answer in words; ``ideas`` are (regex, question) pairs to prompt with.

        The fewest words accepted is the question's own (:func:`words` in its registration).
        """
        min_words = self.answer(name).min_words
        if is_unanswered(value):
            return self.add(
                name, "unanswered", "not answered yet: write your answer between the quotes."
            )
        if not isinstance(value, str):
            return self.add(
                name, "incorrect", "write your answer as text, between quotes.", None, weight
            )
        n = count_words(value)
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
        # a recorded prediction scores like a right part, but is never called right
        statuses = {
            "correct" if p.prediction and p.status == "recorded" else p.status for p in weighted
        }
        judged = [p for p in weighted if not p.prediction]
        guesses = [p for p in weighted if p.prediction and p.status == "recorded"]
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
        elif status == "correct" and not guesses:
            message = "every part is right."
        elif status == "correct":
            message = _prediction_summary(guesses)
        elif status == "unanswered":
            message = "replace the ... with your answers and run the cell again."
        else:
            right = sum(p.status in ("correct", "recorded") for p in judged)
            message = f"{right} of {len(judged)} right."
            if guesses:
                message += " Your prediction is recorded."
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

UNANSWERED_MESSAGE = "replace the ... with your answer and run the cell again."


#: The keyword argument naming the student whose variant a check judges.
STUDENT_ID = "student_id"


def student_key(student_id: Any) -> str:
    """A student id reduced for comparison: case, spaces and punctuation do not count.

    The grader reduces the name it reads from a file name the same way, so ``"Jane Smith"``
    typed in the notebook and ``jane_smith_04-icc.ipynb`` name the same student. An unanswered
    id (``...``, empty text or None) gives ``""``.

    Examples
    --------
    >>> student_key("Jane  Smith") == student_key("jane_smith") == "janesmith"
    True
    >>> student_key(...)
    ''
    """
    if student_id is None or is_unanswered(student_id):
        return ""
    return re.sub(r"[\W_]+", "", str(student_id).casefold())


def variant_seed(qid: str, student_id: Any = None) -> int:
    """The seed of one student's data for exercise ``qid`` (its public seed without an id).

    An exercise with per-student variants draws its data (a simulation, a resample) from this
    seed, and its check computes the right answers from the same seed, so each student's
    answers are their own and another student's do not pass. The seed is a hash of the
    exercise and the student id as :func:`student_key` reduces it; without an id (``...``) it is
    the exercise's public seed, the data of the worked solution.

    Parameters
    ----------
    qid : str
        The check's name, ``exNN_K``; it must be registered with ``seed=`` (see :func:`exercise`).
    student_id : str, optional
        The student's id, as the name of the file handed in gives it.

    Raises
    ------
    ValueError
        If ``qid`` is not an exercise with per-student variants.

    Examples
    --------
    >>> variant_seed("ex04_5") == variant_seed("ex04_5", ...) == QUESTIONS["ex04_5"].seed
    True
    >>> variant_seed("ex04_5", "Ada Lovelace") == variant_seed("ex04_5", "ada_lovelace")
    True
    >>> variant_seed("ex04_5", "ada") != variant_seed("ex04_5", "max")
    True
    """
    question = QUESTIONS.get(qid)
    if question is None or question.seed is None:
        with_variants = [q.qid for q in QUESTIONS.values() if q.has_variants]
        raise ValueError(
            f"{qid!r} has no per-student variants; these have: {', '.join(with_variants)}"
        )
    key = student_key(student_id)
    if not key:
        return question.seed
    digest = hashlib.sha256(f"mlmprimer:{qid}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def exercise(
    qid: str,
    title: str,
    points: float = 1.0,
    kind: str = "auto",
    answers: dict[str, Answer] | None = None,
    seed: int | None = None,
) -> Callable[[Callable[..., CheckResult]], Callable[..., CheckResult]]:
    """Register a check; its parameter names are the notebook variables it reads.

    ``answers`` says how each variable written as text is answered (:func:`prediction`,
    :func:`option`, :func:`words`); the student notebook's instructions are written from it.

    ``seed`` gives the exercise per-student variants: its data are drawn from
    :func:`variant_seed`, ``seed`` being the public variant's. Its check then takes a
    keyword-only ``student_id`` (not a notebook answer: the grader passes the id of the student
    the file name names) and computes the right answers for that student's data.
    """
    match = re.fullmatch(r"ex(\d{2}|A\d)_(\d+)", qid)
    if not match:
        raise ValueError(f"check names are exNN_K (exA1_K in the appendix), got {qid!r}")

    def decorate(func: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        signature = inspect.signature(func)
        keyword = [n for n, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY]
        if (seed is not None) != (keyword == [STUDENT_ID]) or (seed is None and keyword):
            raise ValueError(
                f"{qid}: a check takes a keyword-only {STUDENT_ID!r} exactly when it is "
                "registered with seed= (per-student variants)"
            )
        params = [n for n in signature.parameters if n != STUDENT_ID]
        unknown = sorted(set(answers or {}) - set(params))
        if unknown:
            raise ValueError(f"{qid}: answers for variables the check does not read: {unknown}")
        question = Question(
            qid,
            match.group(1),
            int(match.group(2)),
            title,
            tuple(params),
            float(points),
            kind,
            dict(answers or {}),
            None if seed is None else int(seed),
        )
        QUESTIONS[qid] = question

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> CheckResult:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                names = ", ".join(params)
                extra = f" (and {STUDENT_ID}=student_id)" if seed is not None else ""
                return CheckResult(
                    qid,
                    "error",
                    f"this check takes {len(params)} answer(s), in this order: {names}{extra}.",
                    max_score=float(points),
                )
            values = [bound.arguments.get(p, ...) for p in params]
            if all(is_unanswered(v) for v in values):
                message = (
                    "write your answer between the quotes and run the cell again."
                    if kind == "manual"
                    else UNANSWERED_MESSAGE
                )
                return CheckResult(qid, "unanswered", message, max_score=float(points))
            student = {STUDENT_ID: bound.arguments.get(STUDENT_ID)} if seed is not None else {}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return func(*values, **student)
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
def load_data(name: str) -> pd.DataFrame:
    from mlmprimer import datasets

    return datasets.load(name)


@functools.cache
def fit_cached(formula: str, data: str, REML: bool = True) -> Any:
    """A cached ``mlmprimer.lmer`` fit on a named real data set."""
    from mlmprimer.model import lmer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmer(formula, load_data(data), REML=REML)


def intercept_variance(model: Any, group: str) -> float:
    """The variance of the random intercept of ``group``, from ``model.varcorr``."""
    vc = model.varcorr
    row = vc[(vc["grp"] == group) & (vc["var1"] == "(Intercept)") & vc["var2"].isna()]
    return float(row["vcov"].iloc[0])


def fixef_se(model: Any, term: str) -> float:
    """The standard error of a fixed effect, from the diagonal of ``model.vcov``."""
    return float(np.sqrt(model.vcov.loc[term, term]))


def lme4_theta_slip(model: Any, grand_mean: str) -> tuple[float, str]:
    """The slip of reading lme4's ``theta`` (``m.theta``) as the grand mean, with its message.

    ``grand_mean`` says where the grand mean really is. lme4 and :mod:`mlmprimer` call the
    covariance parameter (``tau / sigma`` for one random intercept) ``theta``; some texts use the
    same letter for the grand mean, which the course writes ``beta_0``.
    """
    value = float(np.asarray(model.theta, dtype=float)[0])
    message = (
        "this is lme4's theta (m.theta), the covariance parameter tau / sigma, not the grand "
        f"mean: {grand_mean}."
    )
    return value, message


def statsmodels_formula() -> Any:
    """``statsmodels.formula.api``, imported when a check first needs it."""
    import statsmodels.formula.api as smf

    return smf


#: The options of a yes-or-no answer.
YES_NO = {
    "yes": ("y", "true", "it does", "yes it does"),
    "no": ("n", "false", "it does not", "no it does not"),
}
MORE_LESS = {
    "larger": ("larger", "bigger", "higher", "more", "greater", "increase", "wider"),
    "smaller": ("smaller", "lower", "less", "decrease", "narrower"),
    "same": ("same", "the same", "about the same", "equal", "unchanged", "no change"),
}


# --------------------------------------------------------------------------------------------
# helpers for the later chapters
# --------------------------------------------------------------------------------------------


def group_coef(model: Any, group: str) -> pd.DataFrame:
    """Per-group coefficients of one grouping factor (``coef(m)$group`` in R)."""
    coef = model.coef()
    return coef[group] if isinstance(coef, dict) else coef


def varcorr_row(model: Any, group: str, var1: str, var2: str | None = None) -> tuple[float, float]:
    """``(vcov, sdcor)`` of one row of ``model.varcorr``: a variance (``var2`` None) or a
    covariance."""
    vc = model.varcorr
    mask = (vc["grp"] == group) & (vc["var1"] == var1)
    mask &= vc["var2"].isna() if var2 is None else (vc["var2"] == var2)
    row = vc[mask].iloc[0]
    return float(row["vcov"]), float(row["sdcor"])


def confint_row(frame: pd.DataFrame, name: str) -> tuple[float, float]:
    """``(lower, upper)`` of the parameter ``name`` in a table of ``confint``, as floats.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.check.core import confint_row
    >>> confint_row(pd.DataFrame({"2.5 %": [1.0], "97.5 %": [2.0]}, index=[".sig01"]), ".sig01")
    (1.0, 2.0)
    """
    return float(frame.loc[name].iloc[0]), float(frame.loc[name].iloc[1])


def judge_range(
    v: Verdict,
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
    if is_unanswered(value):
        v.add(name, "unanswered", "not answered yet.")
        return
    try:
        low, high = read_pair(value)
    except Unreadable as exc:
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


def judge_pair(
    v: Verdict,
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
    if is_unanswered(value):
        v.add(name, "unanswered", "not answered yet.")
        return
    try:
        a, b = read_pair(value)
    except Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.", hint)
        return

    def near(t: tuple[float, float]) -> bool:
        return close_to(a, t[0], rel) and close_to(b, t[1], rel)

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


def judge_guess(v: Verdict, name: str, value: Any, truth: Callable[[], float], ok: bool) -> None:
    """A numeric prediction: any positive whole number is recorded; compared once ``ok``."""
    if is_unanswered(value):
        v.add(name, "unanswered", "not answered yet: write your guess, a whole number.")
        return
    try:
        guess = read_number(value)
    except Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.")
        return
    if guess <= 0 or guess != int(guess):
        v.add(name, "incorrect", "write a positive whole number.")
    else:
        v.recorded_prediction(name, guess == truth() if ok else None)


def interval_part(
    v: Verdict,
    name: str,
    value: Any,
    target: tuple[float, float],
    *,
    what: str,
    hint: str,
    slips: Iterable[tuple[tuple[float, float], str]] = (),
    rel: float = 0.01,
) -> None:
    """Judge an interval ``(lower, upper)``, in either order, limit by limit, into ``v``.

    The tolerance is ``rel`` times the width of the right interval (or rounding to three
    significant digits), so that an interval of another method or level (profile for Wald,
    90 % for 95 %) is told apart even when the two are close. An interval in none of
    ``slips`` is said to be too wide, too narrow or off.

    Examples
    --------
    >>> from mlmprimer.check.core import Verdict, interval_part
    >>> v = Verdict("ex00_1")
    >>> interval_part(v, "ci", (2.0, 1.0), (1.0, 2.0), what="the interval", hint="")
    >>> v.parts[0].status
    'correct'
    """
    if is_unanswered(value):
        v.add(name, "unanswered", "not answered yet.")
        return
    try:
        low, high = sorted(read_pair(value))
    except Unreadable as exc:
        v.add(name, "incorrect", f"{exc}.", hint)
        return
    width = abs(target[1] - target[0])

    def near(t: tuple[float, float]) -> bool:
        tol = max(rel * width, REL_TOL * 0.05 * max(abs(t[0]), abs(t[1])))
        return abs(low - t[0]) <= tol and abs(high - t[1]) <= tol

    if near(target):
        v.add(name, "correct", f"right: this is {what}.")
        return
    for alt, message in slips:
        if near((min(alt), max(alt))):
            v.add(name, "incorrect", message, hint)
            return
    if low <= target[0] and high >= target[1]:
        v.add(name, "incorrect", f"not {what}: your interval is too wide.", hint)
    elif low >= target[0] and high <= target[1]:
        v.add(name, "incorrect", f"not {what}: your interval is too narrow.", hint)
    else:
        v.add(name, "incorrect", f"not {what}: the limits are off.", hint)
