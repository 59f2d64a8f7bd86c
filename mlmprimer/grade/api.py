"""The public functions: grade one notebook or many, write the scores, merge hand scores."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .batch import _Batch, _Options
from .common import COLUMNS, DEFAULT_CELL_TIMEOUT, DEFAULT_TIMEOUT
from .identity import _key
from .outputs import _atomic_write, output_files
from .reports import _csv, _long_rows, _publish, _row_values
from .roster import _load_hand, _read_hand_file
from .runner import _Settings

if TYPE_CHECKING:  # pragma: no cover
    from .common import Row


def merge_hand_scores(out: Path | str, hand_files: Sequence[Path | str]) -> list[str]:
    """Merge scores given by hand into a graded batch and rewrite its outputs.

    Parameters
    ----------
    out : path
        The ``--out`` of the batch (its ``.run.json`` record is read).
    hand_files : list of path
        CSV files with the columns ``student``, ``question`` and ``hand_score`` (and optionally
        ``comment``); ``scores.text-answers.csv`` with its ``hand_score`` column filled in is one.
        Rows without a ``hand_score`` are skipped. A later file wins over an earlier one.

    Returns
    -------
    list of str
        The problems found (unknown students or questions, scores out of range); the rows with a
        problem are not merged.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from mlmprimer.grade import main
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "cy_01-what-is-mlm.ipynb").write_text("")
    >>> main([str(folder), "--out", str(folder / "scores.csv"), "--quiet"])
    0
    >>> marks = folder / "marks.csv"
    >>> _ = marks.write_text("student,question,hand_score,comment\\ncy,ex01_4,0.5,short\\n")
    >>> merge_hand_scores(folder / "scores.csv", [marks])
    []
    >>> row = [r for r in (folder / "scores.csv").read_text().splitlines() if "ex01_4" in r][0]
    >>> row.split(",")[3:6]
    ['0.5', '1.0', 'hand-graded']
    """
    files = output_files(out)
    batch = _Batch.from_record(files)
    assert batch.writer is not None
    hand_path = batch.writer.where(files.hand)
    merged = _load_hand(hand_path)
    problems = []
    points = {}
    for e in batch.entries:
        for r in e.rows:
            points[(_key(e.student), str(r[0]))] = float(r[2])
    for path in map(Path, hand_files):
        try:
            marks = _read_hand_file(path)
        except (OSError, ValueError, csv.Error) as exc:
            problems.append(f"{path}: {exc}")
            continue
        for row in marks:
            where = (_key(row["student"]), row["question"])
            label = f"{path.name}: {row['student']} {row['question']}"
            if where not in points:
                problems.append(f"{label}: no such student and question in this batch")
                continue
            try:
                value = float(row["hand_score"])
            except ValueError:
                problems.append(f"{label}: {row['hand_score']!r} is not a number")
                continue
            if not 0 <= value <= points[where]:
                problems.append(f"{label}: {value:g} is outside 0 to {points[where]:g}")
                continue
            merged[where] = {
                "student": row["student"],
                "question": row["question"],
                "hand_score": f"{value:g}",
                "comment": row.get("comment", ""),
                "source": path.name,
            }
    header = ["student", "question", "hand_score", "comment", "source"]
    lines = [[m.get(h, "") for h in header] for m in merged.values()]
    batch.writer.write(files.hand, _csv(header, lines), sync=True)
    batch.problems += [f"hand scores: {p}" for p in problems]
    _publish(batch)
    return problems


def grade_notebook(
    path: Path | str,
    timeout: float = DEFAULT_TIMEOUT,
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT,
    kernel_name: str = "python3",
) -> list[Row]:
    """Run one submission, in isolation, and score each of its chapter's questions.

    Parameters
    ----------
    path : path
        The submitted notebook.
    timeout : float
        Seconds for the whole notebook (the grader's own cells not counted). When it runs out,
        the running cell is interrupted and the answers defined by then are scored.
    cell_timeout : float, optional
        Seconds per cell; a cell that takes longer is interrupted and the notebook goes on.
        ``None`` or ``0``: no limit per cell.
    kernel_name : str
        The Jupyter kernel to run the notebook with.

    Returns
    -------
    list of Row
        One per question of the notebook's chapter; one row with an empty question when the
        chapter cannot be told.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> empty = pathlib.Path(tempfile.mkdtemp()) / "ann_04-icc.ipynb"
    >>> _ = empty.write_text("")
    >>> rows = grade_notebook(empty)
    >>> rows[0].student, rows[0].question, rows[0].status, len(rows)
    ('ann', 'ex04_1', 'empty', 5)
    """
    return grade_paths([path], timeout, cell_timeout, kernel_name)


def grade_paths(
    paths: Iterable[Path | str],
    timeout: float = DEFAULT_TIMEOUT,
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT,
    kernel_name: str = "python3",
    jobs: int = 1,
    progress: bool = False,
    chapter: str | None = None,
) -> list[Row]:
    """Grade every submission (files, or folders searched for files) without writing anything.

    Parameters
    ----------
    paths : iterable of path
        Submitted notebooks or folders of them.
    timeout, cell_timeout, kernel_name
        As in :func:`grade_notebook`.
    jobs : int
        Submissions run at the same time (each in its own kernel; scoring is serialised).
    progress : bool
        Print one line per submission graded.
    chapter : str, optional
        Grade this chapter only (a notebook of another chapter gets ``wrong-chapter`` rows).

    Returns
    -------
    list of Row

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "bob_03-null-model.ipynb").write_text("{not json")
    >>> {row.status for row in grade_paths([folder])}
    {'invalid'}
    """
    settings = _Settings(float(timeout), float(cell_timeout or 0) or None, kernel_name)
    options = _Options(chapter=chapter, jobs=jobs, progress=progress)
    batch = _Batch(paths, None, settings, options)
    batch.run()
    return _long_rows(batch, {})


def write_csv(rows: Iterable[Row], out: Path | str) -> Path:
    """Write the rows with the columns of :data:`COLUMNS` (atomically).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from mlmprimer.grade import Row
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
    >>> _ = write_csv([Row("ann", "04-icc.ipynb", "ex04_1", 1.0, 1.0, "correct", "right")], out)
    >>> out.read_text().splitlines()[0]
    'student,notebook,question,score,max_score,status,message'
    """
    out = Path(out)
    _atomic_write(out, _csv(COLUMNS, map(_row_values, rows)))
    return out
