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


def _score(qs: list[Question], run: _Run, called: set[str]) -> list[list[Any]]:
    """Call the checks, in this process, on the answers read out of the kernel."""
    check = _check()
    rows: list[list[Any]] = []
    for q in qs:
        notes = list(run.notes)
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
                result = func(*[run.answers[v] for v in q.variables])
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
