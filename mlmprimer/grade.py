"""Grade submitted exercise notebooks: ``mlmprimer-grade SUBMISSIONS... --out scores.csv``.

Each submission (a student's copy of ``exercises/NN-topic.ipynb``, or a folder of them) is run from
top to bottom in a fresh Jupyter kernel. After every code cell the grader runs a cell of its own
that copies the values of the exercise variables (``icc_hsb``, ``range95`` ...) out of the kernel as
JSON; the checks of :mod:`mlmprimer.check` are then called *in the grader's process*, on those
values. What a notebook prints, and whether its check cells are still there, plays no part in the
score: editing the displayed output or the check functions inside the notebook cannot fake one.

One row per student and question is written, with the columns

``student, notebook, question, score, max_score, status, message``.

``status`` is the check's verdict (``correct``, ``partial``, ``incorrect``, ``unanswered``,
``recorded`` for answers in words, which the instructor grades by hand, ``error``) or what kept the
question from being checked: ``missing`` (the variable is not defined: its cell was deleted or
raised), ``timeout`` (the notebook ran out of time before the answer), ``crashed`` (the kernel
died), ``empty`` (a notebook saved without content) or ``invalid`` (not a readable notebook). A
notebook that raises goes on running (errors are allowed, so later answers still score); one that
loops is interrupted when its time is up and scored for what had finished. One bad submission
never stops the others.

The student is the notebook's ``metadata["mlmprimer"]["student"]`` if set, else taken from the file
name (``alice_04-icc.ipynb`` -> ``alice``), else, for a file named exactly like the exercise
(``04-icc.ipynb``), the name of the folder it is in (``alice/04-icc.ipynb`` -> ``alice``).

.. warning::

   **Grading runs the students' code.** A submitted notebook can do anything the account running
   the grader can do: read and delete files, use the network, start processes, exhaust memory.
   Grade in a sandbox: a throwaway container or virtual machine without network access and
   without your credentials, for example::

       docker run --rm --network none --memory 4g --cpus 2 \\
           -v "$PWD/submissions:/submissions:ro" -v "$PWD/out:/out" mlmprimer-course \\
           mlmprimer-grade /submissions --out /out/scores.csv

   At the very least, run it as a separate unprivileged user that owns nothing else, with resource
   limits (``ulimit -v 4000000 -t 3600 -u 200``) and the submissions copied to a scratch folder.
   The per-notebook time limit (``--timeout``) protects against loops, not against malice.

Examples
--------
.. code-block:: console

    mlmprimer-grade submissions/ --out scores.csv --timeout 300
    python -m mlmprimer.grade alice_04-icc.ipynb bob_04-icc.ipynb --out scores.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import secrets
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd

from mlmprimer import check
from mlmprimer.notebooks import CHECK_CALL

__all__ = ["COLUMNS", "Row", "decode_answer", "grade_notebook", "grade_paths", "main", "write_csv"]

#: Columns of the scores file.
COLUMNS = ("student", "notebook", "question", "score", "max_score", "status", "message")

#: Seconds allowed for each of the grader's own cells (reading the answers out of the kernel).
DUMP_TIMEOUT = 30

_CHAPTER_IN_NAME = re.compile(r"(?<![0-9a-z])(\d{2}|a\d)-[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*")
# checks change warning filters and fill caches: one submission is scored at a time
_SCORING = threading.Lock()


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
class _Run:
    """What happened while a submission ran."""

    answers: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    timeout: str | None = None
    crashed: str | None = None
    finished: bool = False
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# carrying answers out of the kernel
# --------------------------------------------------------------------------------------------

# Runs inside the student's kernel. Self-contained (imports only the standard library, looks up
# builtins through the builtins module) so that names a student shadowed do not break it.
_DUMP_SOURCE = r"""
def {func}(names, path):
    import builtins as _b
    import json as _json
    import math as _math
    import numbers as _numbers

    space = _b.globals()
    limit = 200000
    # bind builtins locally: a student may have reused names such as list, dict or open
    isinstance, len, hasattr, float, int, repr = (
        _b.isinstance, _b.len, _b.hasattr, _b.float, _b.int, _b.repr
    )
    list, tuple, dict, str, bool, type, open = (
        _b.list, _b.tuple, _b.dict, _b.str, _b.bool, _b.type, _b.open
    )
    Exception, Ellipsis = _b.Exception, _b.Ellipsis

    def enc(v, depth=0):
        if depth > 6:
            return {{"__unsupported__": "deeply nested object"}}
        if v is Ellipsis:
            return {{"__ellipsis__": True}}
        if v is None or isinstance(v, (bool, str)):
            return v[:limit] if isinstance(v, str) else v
        mod = type(v).__module__ or ""
        kind = type(v).__name__
        if mod.startswith("numpy") and hasattr(v, "tolist"):
            if kind == "ndarray":
                if v.size > limit:
                    return {{"__unsupported__": "very large array"}}
                return {{"__ndarray__": enc(v.tolist(), depth + 1)}}
            return enc(v.item(), depth + 1) if hasattr(v, "item") else {{"__unsupported__": kind}}
        if isinstance(v, _numbers.Integral):
            return int(v)
        if isinstance(v, _numbers.Real):
            f = float(v)
            return f if _math.isfinite(f) else {{"__float__": repr(f)}}
        if mod.startswith("pandas") and kind == "Series":
            if len(v) > limit:
                return {{"__unsupported__": "very large Series"}}
            return {{"__series__": {{
                "index": [enc(i, depth + 1) for i in v.index.tolist()],
                "values": [enc(x, depth + 1) for x in v.tolist()],
                "name": enc(v.name, depth + 1) if isinstance(v.name, (str, int)) else None,
            }}}}
        if mod.startswith("pandas") and kind == "DataFrame":
            if v.size > limit:
                return {{"__unsupported__": "very large DataFrame"}}
            return {{"__dataframe__": {{
                "columns": [enc(c, depth + 1) for c in v.columns.tolist()],
                "index": [enc(i, depth + 1) for i in v.index.tolist()],
                "data": [[enc(x, depth + 1) for x in row] for row in v.values.tolist()],
            }}}}
        if isinstance(v, tuple):
            return {{"__tuple__": [enc(x, depth + 1) for x in v[:limit]]}}
        if isinstance(v, list):
            return [enc(x, depth + 1) for x in v[:limit]]
        if isinstance(v, dict):
            items = list(v.items())[:limit]
            return {{"__dict__": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in items]}}
        return {{"__unsupported__": kind}}

    out = {{}}
    for name in names:
        if name in space:
            try:
                out[name] = enc(space[name])
            except Exception as exc:
                out[name] = {{"__unsupported__": type(exc).__name__}}
    with open(path, "w", encoding="utf-8") as fh:
        _json.dump(out, fh)


{func}({names!r}, {path!r})
del {func}
"""


def decode_answer(value: Any) -> Any:
    """Rebuild an answer from the JSON written in the student's kernel.

    Numbers, text, lists, tuples, dicts, numpy arrays, pandas Series and DataFrames are rebuilt;
    anything else (a fitted model, a figure) becomes :class:`mlmprimer.check.Unsupported`.

    Examples
    --------
    >>> decode_answer({"__tuple__": [1.5, 2]})
    (1.5, 2)
    >>> decode_answer({"__ellipsis__": True}) is Ellipsis
    True
    >>> decode_answer({"__series__": {"index": ["a"], "values": [1.0], "name": None}})["a"]
    np.float64(1.0)
    >>> decode_answer({"__unsupported__": "LmerModel"})
    <a LmerModel object>
    """
    if isinstance(value, list):
        return [decode_answer(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ellipsis__" in value:
        return Ellipsis
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(decode_answer(v) for v in value["__tuple__"])
    if "__ndarray__" in value:
        return np.asarray(decode_answer(value["__ndarray__"]))
    if "__series__" in value:
        s = value["__series__"]
        index = [decode_answer(i) for i in s["index"]]
        return pd.Series([decode_answer(v) for v in s["values"]], index=index, name=s["name"])
    if "__dataframe__" in value:
        d = value["__dataframe__"]
        return pd.DataFrame(
            [[decode_answer(v) for v in row] for row in d["data"]],
            columns=[decode_answer(c) for c in d["columns"]],
            index=[decode_answer(i) for i in d["index"]],
        )
    if "__dict__" in value:
        out = {}
        for key, item in value["__dict__"]:
            key = decode_answer(key)
            try:
                hash(key)
            except TypeError:
                key = repr(key)
            out[key] = decode_answer(item)
        return out
    if "__unsupported__" in value:
        return check.Unsupported(str(value["__unsupported__"]))
    return {k: decode_answer(v) for k, v in value.items()}


# --------------------------------------------------------------------------------------------
# who and which chapter
# --------------------------------------------------------------------------------------------


def _exercise_names() -> dict[str, str]:
    """Known exercise notebook names (``{"04": "04-icc"}``), when the solutions are at hand."""
    from mlmprimer.notebooks import find_solutions

    try:
        return {p.stem[:2]: p.stem.lower() for p in find_solutions()}
    except OSError:  # pragma: no cover - no repository next to the library
        return {}


def _name_match(stem: str) -> tuple[str, int, int] | None:
    """``(chapter, start, end)`` of the exercise name inside a file name, if there is one."""
    known = {q.chapter for q in check.QUESTIONS.values()}
    lower = stem.lower()
    for chapter, name in _exercise_names().items():
        at = lower.find(name)
        if at >= 0 and chapter in known:
            return chapter, at, at + len(name)
    for match in _CHAPTER_IN_NAME.finditer(lower):
        chapter = match.group(1).upper()
        if chapter in known:
            return chapter, match.start(), match.end()
    return None


def _chapter(path: Path, nb: nbformat.NotebookNode | None) -> str | None:
    """The chapter: from the notebook's metadata, else from the file name."""
    known = {q.chapter for q in check.QUESTIONS.values()}
    if nb is not None:
        meta = nb.get("metadata", {}).get("mlmprimer", {})
        chapter = str(meta.get("chapter", "")) if isinstance(meta, dict) else ""
        if chapter in known:
            return chapter
    found = _name_match(path.stem)
    return found[0] if found else None


def _student(path: Path, nb: nbformat.NotebookNode | None) -> str:
    """The student: metadata ``mlmprimer.student``, else the file name without the exercise's
    name, else the folder's name.

    Examples
    --------
    >>> _student(Path("subs/alice_04-icc.ipynb"), None)
    'alice'
    >>> _student(Path("subs/bob/04-icc.ipynb"), None)
    'bob'
    >>> _student(Path("carol-smith.ipynb"), None)
    'carol-smith'
    """
    if nb is not None:
        meta = nb.get("metadata", {}).get("mlmprimer", {})
        if isinstance(meta, dict) and str(meta.get("student", "")).strip():
            return str(meta["student"]).strip()
    stem = path.stem
    found = _name_match(stem)
    if found:
        _, start, end = found
        stem = (stem[:start] + " " + stem[end:]).strip(" _-.")
        stem = re.sub(r"[\s_.]+", "_", stem).strip("_-")
    return stem or path.parent.resolve().name


# --------------------------------------------------------------------------------------------
# running one submission
# --------------------------------------------------------------------------------------------


def _execute(
    nb: nbformat.NotebookNode,
    names: Sequence[str],
    timeout: float,
    cell_timeout: float | None,
    kernel_name: str,
) -> _Run:
    """Run the code cells of ``nb`` one by one in a fresh kernel, reading the answers after each.

    A cell that runs past its limit is interrupted (``KeyboardInterrupt`` in the kernel). If the
    grader's own cell then cannot read the answers within :data:`DUMP_TIMEOUT` seconds, the kernel
    is taken to be stuck and the run stops there, keeping the answers read so far.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    class Client(NotebookClient):
        """Counts timeouts; nbclient interrupts the kernel and fakes an error reply."""

        timeouts = 0

        async def _async_handle_timeout(
            self, timeout: int, cell: nbformat.NotebookNode | None = None
        ) -> None | dict[str, Any]:
            self.timeouts += 1
            return await super()._async_handle_timeout(timeout, cell)

    run = _Run()
    cells = [
        (i, nbformat.v4.new_code_cell(_source(c)))
        for i, c in enumerate(nb.cells, start=1)
        if c.get("cell_type") == "code"
    ]
    with tempfile.TemporaryDirectory(prefix="mlmprimer-grade-") as tmp:
        answers_file = Path(tmp) / f"answers-{secrets.token_hex(8)}.json"
        cwd = Path(tmp) / "work"
        cwd.mkdir()
        dump = nbformat.v4.new_code_cell(
            _DUMP_SOURCE.format(
                func=f"_mlmprimer_dump_{secrets.token_hex(6)}",
                names=list(names),
                path=str(answers_file),
            )
        )
        work = nbformat.v4.new_notebook(cells=[c for _, c in cells] + [dump])
        client = Client(
            work,
            kernel_name=kernel_name,
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={
                "ename": "TimeoutError",
                "evalue": "stopped by the grader",
                "traceback": [],
            },
            record_timing=False,
            startup_timeout=120,
            resources={"metadata": {"path": str(cwd)}},
        )

        def read_answers() -> bool:
            """Copy the answers out of the kernel; False if the kernel did not respond."""
            client.timeout = DUMP_TIMEOUT
            client.timeouts = 0
            answers_file.unlink(missing_ok=True)
            client.execute_cell(dump, len(work.cells) - 1, store_history=False)
            if client.timeouts:
                return False
            if answers_file.exists():
                data = json.loads(answers_file.read_text(encoding="utf-8"))
                run.answers = {k: decode_answer(v) for k, v in data.items()}
            return True

        start = time.monotonic()
        try:
            with client.setup_kernel():
                for position, (index, cell) in enumerate(cells):
                    remaining = timeout - (time.monotonic() - start)
                    if remaining <= 0:
                        run.timeout = (
                            f"the notebook ran out of time ({timeout:g} s) before cell {index}"
                        )
                        break
                    per_cell = bool(cell_timeout) and cell_timeout < remaining
                    limit = cell_timeout if per_cell else remaining
                    client.timeout = max(1, math.ceil(limit))
                    client.timeouts = 0
                    client.execute_cell(cell, position)
                    stopped = client.timeouts > 0
                    if stopped:
                        run.timeout = (
                            f"cell {index} was stopped after {client.timeout} s"
                            if per_cell
                            else f"the notebook ran out of time ({timeout:g} s) in cell {index}"
                        )
                    for out in cell.get("outputs", []):
                        if out.get("output_type") == "error" and out.get("ename") not in (
                            "TimeoutError",
                            "KeyboardInterrupt",
                        ):
                            run.errors.append(f"cell {index} raised {out.get('ename')}")
                    if not read_answers():
                        run.timeout = f"cell {index} did not stop when interrupted"
                        break
                    if stopped and not per_cell:
                        break
                else:
                    run.finished = True
        except DeadKernelError:
            run.crashed = "the kernel died (the notebook crashed or exited)"
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot start, a broken pipe ...
            run.crashed = f"the notebook could not be run ({type(exc).__name__}: {exc})"
    return run


def _source(cell: Any) -> str:
    """A cell's source as one string (nbformat allows a list of lines)."""
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def _lenient(data: Any) -> nbformat.NotebookNode | None:
    """The code cells of JSON that is almost a notebook (e.g. keys removed by hand), or None."""
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None
    cells = [
        nbformat.v4.new_code_cell(_source(c))
        for c in data["cells"]
        if isinstance(c, dict) and c.get("cell_type") == "code"
    ]
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    return nbformat.v4.new_notebook(cells=cells, metadata=meta)


def _rows_for_all(
    student: str, notebook: str, chapter: str | None, status: str, message: str
) -> list[Row]:
    qs = check.questions(chapter) if chapter else []
    if not qs:
        return [Row(student, notebook, "", 0.0, 0.0, status, message)]
    return [Row(student, notebook, q.qid, 0.0, q.points, status, message) for q in qs]


def grade_notebook(
    path: Path | str,
    timeout: float = 300,
    cell_timeout: float | None = None,
    kernel_name: str = "python3",
) -> list[Row]:
    """Run one submission and score each of its chapter's questions.

    Parameters
    ----------
    path : path
        The submitted notebook.
    timeout : float
        Seconds for the whole notebook (the grader's own cells not counted). When it runs out,
        the running cell is interrupted and the answers defined by then are scored.
    cell_timeout : float, optional
        Seconds per cell; a cell that takes longer is interrupted and the notebook goes on.
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
    path = Path(path)
    notebook = path.name
    raw = b""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        chapter = _chapter(path, None)
        student = _student(path, None)
        return _rows_for_all(student, notebook, chapter, "invalid", f"cannot read file: {exc}")
    if not raw.strip():
        chapter = _chapter(path, None)
        student = _student(path, None)
        return _rows_for_all(
            student, notebook, chapter, "empty", "the file is empty (saved empty?)"
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        chapter = _chapter(path, None)
        student = _student(path, None)
        reason = f"not a valid notebook: the file is not valid JSON ({exc})"
        return _rows_for_all(student, notebook, chapter, "invalid", reason)
    damaged = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds of error
        nb = _lenient(data)
        if nb is None:
            chapter = _chapter(path, None)
            student = _student(path, None)
            reason = f"not a valid notebook: {type(exc).__name__}: {exc}"
            return _rows_for_all(student, notebook, chapter, "invalid", reason)
        damaged = f"the notebook file is damaged ({type(exc).__name__}), but its code ran"
    chapter = _chapter(path, nb)
    student = _student(path, nb)
    if chapter is None:
        reason = "cannot tell which chapter this is (no NN-topic in the name or metadata)"
        return _rows_for_all(student, notebook, None, "invalid", reason)
    qs = check.questions(chapter)
    code = [c for c in nb.cells if c.get("cell_type") == "code" and _source(c).strip()]
    if not code:
        return _rows_for_all(student, notebook, chapter, "empty", "the notebook has no code")

    names = sorted({v for q in qs for v in q.variables})
    run = _execute(nb, names, timeout, cell_timeout, kernel_name)
    called = {q for c in code for q in CHECK_CALL.findall(_source(c))}
    if damaged:
        run.notes.append(damaged)

    with _SCORING:
        return _score(student, notebook, qs, run, called)


def _score(
    student: str, notebook: str, qs: list[check.Question], run: _Run, called: set[str]
) -> list[Row]:
    """Call the checks, in this process, on the answers read out of the kernel."""
    rows = []
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
            rows.append(
                Row(student, notebook, q.qid, 0.0, q.points, status, "; ".join([reason, *notes]))
            )
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
        rows.append(
            Row(student, notebook, q.qid, result.score, result.max_score, result.status, message)
        )
    return rows


def _collect(paths: Iterable[Path | str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                f for f in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in f.parts and f.is_file()
            )
        else:
            out.append(p)
    return out


def _grade_one(args: tuple[str, float, float | None, str]) -> list[Row]:
    path, timeout, cell_timeout, kernel = args
    try:
        return grade_notebook(path, timeout, cell_timeout, kernel)
    except Exception as exc:  # noqa: BLE001 - never let one submission stop the others
        chapter = _chapter(Path(path), None)
        return _rows_for_all(
            Path(path).stem, Path(path).name, chapter, "error", f"grader failure: {exc!r}"
        )


def grade_paths(
    paths: Iterable[Path | str],
    timeout: float = 300,
    cell_timeout: float | None = None,
    kernel_name: str = "python3",
    jobs: int = 1,
    progress: bool = False,
) -> list[Row]:
    """Grade every submission (files, or folders searched for ``*.ipynb``).

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
    files = _collect(paths)
    tasks = [(str(f), timeout, cell_timeout, kernel_name) for f in files]
    results: list[list[Row]] = []
    if jobs > 1 and len(tasks) > 1:
        from concurrent.futures import ThreadPoolExecutor

        # each submission runs in its own kernel process; the threads only wait on them
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for task, rows in zip(tasks, pool.map(_grade_one, tasks), strict=True):
                results.append(rows)
                if progress:
                    _report(task[0], rows)
    else:
        for task in tasks:
            rows = _grade_one(task)
            results.append(rows)
            if progress:
                _report(task[0], rows)
    return [row for rows in results for row in rows]


def _report(path: str, rows: list[Row]) -> None:
    score = sum(r.score for r in rows)
    total = sum(r.max_score for r in rows)
    student = rows[0].student if rows else "?"
    odd = sorted({r.status for r in rows} & {"timeout", "crashed", "empty", "invalid", "error"})
    extra = f"  [{', '.join(odd)}]" if odd else ""
    print(f"{student:>20}  {score:5.1f} / {total:4.1f}  {path}{extra}", flush=True)


def write_csv(rows: Iterable[Row], out: Path | str) -> Path:
    """Write the rows with the columns of :data:`COLUMNS`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
    >>> _ = write_csv([Row("ann", "04-icc.ipynb", "ex04_1", 1.0, 1.0, "correct", "right")], out)
    >>> out.read_text().splitlines()[0]
    'student,notebook,question,score,max_score,status,message'
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``mlmprimer-grade`` and ``python -m mlmprimer.grade``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when the scores file was written (whatever the submissions were like), 2 on bad usage.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "cy_01-what-is-mlm.ipynb").write_text("")
    >>> main([str(folder), "--out", str(folder / "scores.csv"), "--quiet"])
    0
    >>> len((folder / "scores.csv").read_text().splitlines())  # header + 5 questions
    6
    """
    parser = argparse.ArgumentParser(
        prog="mlmprimer-grade",
        description=(
            "Run submitted exercise notebooks and score them. This EXECUTES STUDENT CODE: run it "
            "in a sandbox (a container or VM without network, or at least a separate "
            "unprivileged account with ulimit resource limits)."
        ),
    )
    parser.add_argument("submissions", nargs="+", help="notebooks, or folders of notebooks")
    parser.add_argument("--out", default="scores.csv", help="CSV file to write (scores.csv)")
    parser.add_argument(
        "--timeout", type=float, default=300, help="seconds per notebook (default 300)"
    )
    parser.add_argument(
        "--cell-timeout", type=float, default=None, help="seconds per cell (default: no limit)"
    )
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel (python3)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded in parallel")
    parser.add_argument("--quiet", action="store_true", help="no per-submission lines")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or (args.cell_timeout is not None and args.cell_timeout <= 0):
        parser.error("time limits must be positive")
    files = _collect(args.submissions)
    if not files:
        parser.error("no notebooks found in the submissions given")
    rows = grade_paths(
        files,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        kernel_name=args.kernel,
        jobs=max(1, args.jobs),
        progress=not args.quiet,
    )
    out = write_csv(rows, args.out)
    if not args.quiet:
        print(f"wrote {len(rows)} rows for {len(files)} notebooks to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
