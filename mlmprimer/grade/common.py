"""What every part of the grader shares: the scores' columns, time limits, rows and records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from types import ModuleType


#: Columns of the scores file.
COLUMNS = ("student", "notebook", "question", "score", "max_score", "status", "message")


#: Seconds allowed for each of the grader's own cells (reading the answers out of the kernel).
DUMP_TIMEOUT = 30


#: Default time limits, in seconds: a whole notebook, and one cell. The slowest worked solution
#: runs in well under a minute, its slowest cell in under 15 s, on the course's reference machine.
DEFAULT_TIMEOUT = 600.0


DEFAULT_CELL_TIMEOUT = 120.0


_OUTPUT_BUDGET = 2_000_000  # characters of output kept per cell in the executed notebook


_MARKER = "MLMPRIMER_GRADE_RUN"


_NOTABLE = ("timeout", "crashed", "empty", "invalid", "wrong-chapter", "error", "pending")


def _check() -> ModuleType:
    """:mod:`mlmprimer.check`, imported when first needed (the run supervisor never needs it)."""
    from mlmprimer import check

    return check


@dataclass
class Row:
    """One line of the scores file."""

    student: str
    notebook: str
    question: str
    score: float
    max_score: float
    status: str
    message: str


@dataclass
class Identity:
    """Who handed a file in, and how the grader told.

    Attributes
    ----------
    student : str
        The student's name as the file (or folder) name gives it.
    lms_id : str
        The LMS's number for the student, when the name carries one (Canvas, Moodle).
    rule : str
        The rule that named the student: ``canvas``, ``moodle``, ``blackboard``, ``custom``,
        ``file name``, ``folder``, ``metadata`` or ``unknown``.
    notes : list of str
        Anything an instructor should know (a different name in the metadata ...).
    """

    student: str
    lms_id: str = ""
    rule: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class _Run:
    """What happened while a submission ran."""

    answers: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    timeout: str | None = None
    crashed: str | None = None
    finished: bool = False
    notes: list[str] = field(default_factory=list)
    leftover: list[str] = field(default_factory=list)
    executed: str | None = None
    abnormal: bool = False
    seconds: float = 0.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
