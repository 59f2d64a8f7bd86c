"""Scoring a run, in the grader's process, with the checks of :mod:`mlmprimer.check`."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from .common import _check

if TYPE_CHECKING:  # pragma: no cover
    import nbformat

    from mlmprimer.check import Question

    from .common import _Run


def _source(cell: Any) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def _lenient(data: Any) -> nbformat.NotebookNode | None:
    """The code cells of JSON that is almost a notebook (e.g. keys removed by hand), or None."""
    import nbformat

    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None
    cells = [
        nbformat.v4.new_code_cell(_source(c))
        if c.get("cell_type") == "code"
        else nbformat.v4.new_markdown_cell(_source(c))
        for c in data["cells"]
        if isinstance(c, dict)
    ]
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    return nbformat.v4.new_notebook(cells=cells, metadata=meta)


def _question_rows(chapter: str | None, status: str, message: str) -> list[list[Any]]:
    """``[question, score, max_score, status, message]`` for every question of a chapter."""
    qs = _check().questions(chapter) if chapter else []
    if not qs:
        return [["", 0.0, 0.0, status, message]]
    return [[q.qid, 0.0, q.points, status, message] for q in qs]


def _variant(
    qs: list[Question], run: _Run, student: str | None, public: bool = False
) -> tuple[str | None, str | None]:
    """Whose variant the exercises with per-student data are graded on, and what to report.

    ``student`` is the student the file name names (None when it names nobody: the public
    variant). With ``public`` (``--variants public``) everyone is graded on the public variant.
    The notebook's own ``student_id`` never decides; when it names someone else, or nobody,
    the returned message says so (unless the exercises with variants are not answered at all).
    """
    from mlmprimer.check.core import STUDENT_ID, is_unanswered, student_key

    if not any(q.has_variants for q in qs):
        return None, None
    answered = [v for q in qs if q.has_variants for v in q.variables if v in run.answers]
    if all(is_unanswered(run.answers[v]) for v in answered):  # nothing to say about
        return (None if public else student), None
    claimed = run.answers.get(STUDENT_ID, ...)
    said = student_key(claimed) if isinstance(claimed, str | int) or claimed is ... else "?"
    if public:
        if not said:
            return None, None
        return None, (
            f"the notebook's `{STUDENT_ID}` is {claimed!r}; graded on the public variant "
            "(--variants public)"
        )
    if student is None:
        return None, (
            "the file name names nobody: the exercises with a variant per student are graded on "
            "the public variant"
        )
    if said == student_key(student):
        return student, None
    if not said:
        typed = f"the notebook leaves `{STUDENT_ID}` unset (the public data)"
    else:
        typed = f"the notebook's `{STUDENT_ID}` is {claimed!r}"
    return student, f"{typed}; graded on the variant of {student!r} (from the file name)"


def _score(
    qs: list[Question],
    run: _Run,
    called: set[str],
    student: str | None = None,
    public: bool = False,
) -> list[list[Any]]:
    """Call the checks, in this process, on the answers read out of the kernel.

    An exercise with a variant per student is judged on the variant of ``student``, the student
    the file name names, or on the public variant with ``public`` (see :func:`_variant`).
    """
    check = _check()
    rows: list[list[Any]] = []
    student_id, mismatch = _variant(qs, run, student, public)
    for q in qs:
        notes = list(run.notes)
        if q.has_variants and mismatch:
            notes.append(mismatch)
        if q.qid not in called:
            notes.append(f"the cell calling check.{q.qid} was deleted; scored from the variables")
        missing = [v for v in q.variables if v not in run.answers]
        if missing:
            if run.crashed:
                status, reason = "crashed", run.crashed
            elif run.timeout and not run.finished:
                status, reason = "timeout", f"not reached: {run.timeout}"
            else:
                status = "missing"
                listed = ", ".join(f"`{v}`" for v in missing)
                reason = f"{listed} not defined (its cell was deleted or raised)"
            if run.errors:
                reason += "; " + "; ".join(run.errors[:5])
            rows.append([q.qid, 0.0, q.points, status, "; ".join([reason, *notes])])
            continue
        func = getattr(check, q.qid)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                student = {"student_id": student_id} if q.has_variants else {}
                result = func(*[run.answers[v] for v in q.variables], **student)
        except Exception as exc:  # noqa: BLE001 - checks should not raise; report if one does
            result = check.CheckResult(
                q.qid, "error", f"the check raised {exc!r}", max_score=q.points
            )
        message = result.message
        if result.parts and len(result.parts) > 1:
            message = " ".join(f"{n}: {m}" for n, _s, m in result.parts)
        if result.hints and result.status != "correct":
            message += " Hints: " + " ".join(result.hints)
        if run.timeout:
            notes.append(run.timeout)
        if run.crashed:
            notes.append(run.crashed)
        if notes:
            message += " (" + "; ".join(notes) + ")"
        rows.append([q.qid, float(result.score), float(result.max_score), result.status, message])
    return rows
