"""Grade submitted exercise notebooks: ``mlmprimer-grade SUBMISSIONS... --out grades/scores.csv``.

Each submission (a student's copy of ``exercises/NN-topic.ipynb``, or a folder of them, as an LMS
downloads them) is run from top to bottom in a fresh Jupyter kernel. After every code cell the
grader runs a cell of its own that copies the values of the exercise variables (``icc_hsb``,
``range95`` ...) out of the kernel as JSON; the checks of :mod:`mlmprimer.check` are then called
*in the grader's process*, on those values. What a notebook prints, and whether its check cells
are still there, plays no part in the score: editing the displayed output or the check functions
inside the notebook cannot fake one.

What the grader guards against
------------------------------

- **Isolation.** Every submission runs in a temporary directory of its own that holds only a copy
  of that notebook, with a scrubbed environment (``HOME``, ``TMPDIR`` and the Jupyter and
  matplotlib folders all point inside it; nothing points at the other submissions, the output
  folder or the solutions). The grader reads every submission into memory before the first one
  runs and grades those bytes, so a notebook that overwrites another student's file changes
  nothing (the change is reported). The kernel is started by a small supervisor process, in a
  session of its own; when the notebook is done the supervisor ends every process the notebook
  started, including ones that detached themselves (on Linux the supervisor is a *child
  subreaper*, so such processes stay its descendants), and the grader then ends any process that
  still carries the run's marker in its environment.
- **Nothing finished is lost.** Each finished submission is appended at once to a journal
  (``scores.journal.jsonl``, flushed to disk) and every output file is rewritten atomically (a
  temporary file, then :func:`os.replace`). If the grader is killed, running the same command
  again resumes: finished submissions are not run again. A notebook that was running *alone* when
  the grader stopped is reported as ``crashed`` and not run again (``--retry-stopped`` to insist);
  one that was running next to others is run again, alone, at the end. If an output path is
  blocked (for example a folder created where ``scores.csv`` should go), the file is written next
  to it as ``scores.recovered.csv`` and the run says so.
- **Time.** Each cell has a time limit (``--cell-timeout``, 120 s by default), so an endless loop
  costs that cell only and later answers are still graded; the whole notebook has another
  (``--timeout``, 600 s).

What it does not guard against: the notebook runs under the same account as the grader, so code
that goes looking (absolute paths, ``/proc``) can still read or change anything that account can,
including the grader's files and other processes. Grade in a container (``grading/Dockerfile``)
or a throwaway virtual machine without network access; see ``book/instructors.md``.

Who and which chapter
---------------------

The student is named from the file name (:func:`identify`: Canvas, Moodle and Blackboard download
names, ``alice_04-icc.ipynb``, ``alice.ipynb``, or the folder in ``alice/04-icc.ipynb``; or a rule
of your own with ``--names REGEX``). The notebook's metadata never overrides it: a different name
there is reported. The chapter is read from the check calls in the code, the metadata and the file
name; ``--chapter 04`` restricts a batch, and a notebook of another chapter gets a
``wrong-chapter`` row instead of a score.

Files written (for ``--out grades/scores.csv``)
----------------------------------------------

``scores.csv`` (one row per student and question, columns :data:`COLUMNS`), ``scores.wide.csv``
(one row per student), ``scores.lms.csv`` (for an LMS import), ``scores.summary.md``,
``scores.feedback/<student>.md``, ``scores.executed/`` (the notebooks as they ran),
``scores.text-answers.csv`` (answers in words, to grade by hand), ``scores.hand.csv`` (hand scores
merged so far), ``scores.originals/`` (the exact bytes graded), ``scores.run.json`` (a record of
what ran) and ``scores.journal.jsonl``. ``mlmprimer-grade merge --out grades/scores.csv FILE``
merges hand scores.

Examples
--------
.. code-block:: console

    mlmprimer-grade submissions/ --out grades/scores.csv --chapter 04 --jobs 2
    mlmprimer-grade submissions/ --out grades/scores.csv --roster roster.csv --lms canvas
    mlmprimer-grade merge --out grades/scores.csv marked.csv
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from types import ModuleType

    import nbformat

    from mlmprimer.check import Question

__all__ = [
    "COLUMNS",
    "DEFAULT_CELL_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "LMS_FORMATS",
    "NAME_RULES",
    "Identity",
    "OutputFiles",
    "Row",
    "decode_answer",
    "grade_notebook",
    "grade_paths",
    "identify",
    "main",
    "merge_hand_scores",
    "output_files",
    "write_csv",
]

#: Columns of the scores file.
COLUMNS = ("student", "notebook", "question", "score", "max_score", "status", "message")

#: Seconds allowed for each of the grader's own cells (reading the answers out of the kernel).
DUMP_TIMEOUT = 30

#: Default time limits, in seconds: a whole notebook, and one cell. The slowest worked solution
#: runs in well under a minute, its slowest cell in under 15 s, on the course's reference machine.
DEFAULT_TIMEOUT = 600.0
DEFAULT_CELL_TIMEOUT = 120.0

#: Built-in rules naming the student from a file (or folder) name, matched case-insensitively
#: against the whole name without ``.ipynb``. ``student`` is the name, ``id`` the LMS's number.
NAME_RULES: dict[str, str] = {
    # Canvas "Download Submissions": lastfirst[_late]_<user id>_<file id>_<original name>
    "canvas": r"(?P<student>[a-z0-9]+?)(?:_late)?_(?P<id>\d+)_\d+_(?P<file>.+)",
    # Moodle "Download all submissions": Full Name_<participant id>_assignsubmission_file_<name>
    "moodle": r"(?P<student>.+?)_(?P<id>\d+)_assignsubmission_[a-z]+_?(?P<file>.*)",
    # Blackboard: <assignment>_<username>_attempt_<yyyy-mm-dd-hh-mm-ss>[_<original name>]
    "blackboard": (
        r"(?P<assignment>.+?)_(?P<student>[^_]+)_attempt_\d{4}(?:-\d{2}){5}(?:_(?P<file>.*))?"
    ),
}

#: Formats of the LMS export (``--lms``): column names of ``scores.lms.csv``.
LMS_FORMATS: dict[str, tuple[str, ...]] = {
    "generic": ("student", "id", "email", "score", "max_score", "percent", "status", "feedback"),
    "canvas": ("Student", "ID", "SIS User ID", "SIS Login ID", "Section"),
}

_CHAPTER_IN_NAME = re.compile(r"(?<![0-9a-z])(\d{2}|a\d)-[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*")
_MAX_BYTES = 64 * 2**20  # a submission larger than this is not read
_OUTPUT_BUDGET = 2_000_000  # characters of output kept per cell in the executed notebook
_MARKER = "MLMPRIMER_GRADE_RUN"
_JUNK = {".ds_store", "thumbs.db", "desktop.ini"}
_JUNK_DIRS = {".ipynb_checkpoints", "__macosx", "__pycache__"}
_QUIET_STATUSES = {"correct", "partial", "incorrect", "unanswered", "recorded", "missing"}
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
    import numpy as np
    import pandas as pd

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
        return _check().Unsupported(str(value["__unsupported__"]))
    return {k: decode_answer(v) for k, v in value.items()}


# --------------------------------------------------------------------------------------------
# who and which chapter
# --------------------------------------------------------------------------------------------


def _known_chapters() -> set[str]:
    return {q.chapter for q in _check().QUESTIONS.values()}


def _normal_chapter(chapter: str | int) -> str:
    """``4`` / ``"4"`` / ``"04"`` -> ``"04"``; ``"a1"`` -> ``"A1"``."""
    text = str(chapter).strip()
    return f"{int(text):02d}" if text.isdigit() else text.upper()


@functools.cache
def _exercise_names() -> dict[str, str]:
    """Known exercise notebook names (``{"04": "04-icc"}``), when the solutions are at hand."""
    from mlmprimer.notebooks import find_solutions

    try:
        return {p.stem[:2].upper(): p.stem.lower() for p in find_solutions()}
    except OSError:  # pragma: no cover - no repository next to the library
        return {}


def _name_match(stem: str) -> tuple[str, int, int] | None:
    """``(chapter, start, end)`` of the exercise name inside a file name, if there is one."""
    known = _known_chapters()
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


def _key(name: str) -> str:
    """A name reduced for comparison: case, spaces and punctuation do not count.

    Examples
    --------
    >>> _key("Jane  Smith") == _key("jane_smith") == _key("JaneSmith")
    True
    """
    return re.sub(r"[\W_]+", "", name.casefold())


def _stem(name: str) -> str:
    """A file name without ``.ipynb`` (in any case) or its last suffix."""
    if name.lower().endswith(".ipynb"):
        return name[: -len(".ipynb")]
    return Path(name).stem if "." in name.lstrip(".") else name


def _plain_name(stem: str) -> str:
    """The file name without the exercise's name and copy markers (``alice_04-icc (1)``)."""
    found = _name_match(stem)
    if found:
        _, start, end = found
        rest = re.sub(r"^(?:-\d+|\s*\(\d+\))", "", stem[end:])
        stem = (stem[:start] + " " + rest).strip(" _-.")
        stem = re.sub(r"[\s_.]+", "_", stem).strip("_-")
    stem = re.sub(r"\s*\(\d+\)$", "", stem).strip(" _-.")
    return stem


def _rule_match(pattern: str, text: str) -> re.Match[str] | None:
    match = re.fullmatch(pattern, text, flags=re.IGNORECASE)
    if match and match.groupdict().get("student", "").strip(" _-."):
        return match
    return None


def identify(
    path: Path | str,
    root: Path | str | None = None,
    rule: str = "auto",
    metadata_student: str | None = None,
) -> Identity:
    """Name the student who handed in ``path``, from the file name (never from its content).

    Parameters
    ----------
    path : path
        The submitted file.
    root : path, optional
        The folder the file was found in (a folder name between the two can name the student,
        as in ``root/alice/04-icc.ipynb``); by default only the file's own folder is looked at.
    rule : str
        ``"auto"`` (try, in turn, :data:`NAME_RULES` ``canvas``, ``moodle``, ``blackboard`` on the
        file name and then on its folders, then the plain rule), one of those names, ``"plain"``
        (the file name without the exercise's name: ``alice_04-icc.ipynb`` -> ``alice``), or a
        regular expression with a group ``(?P<student>...)`` and optionally ``(?P<id>...)``,
        matched against the whole file name without ``.ipynb``, then against its folders.
    metadata_student : str, optional
        The name in the notebook's metadata (``mlmprimer.student``). Used only when nothing else
        names the student; a different name is reported in ``notes``.

    Returns
    -------
    Identity

    Examples
    --------
    >>> identify("smithjane_12345_67890_04-icc.ipynb")
    Identity(student='smithjane', lms_id='12345', rule='canvas', notes=[])
    >>> identify("Jane Smith_4711_assignsubmission_file_04-icc.ipynb").student
    'Jane Smith'
    >>> identify("alice-04-icc.ipynb").student, identify("alice.ipynb").student
    ('alice', 'alice')
    >>> identify("subs/bob/04-icc.ipynb", root="subs").student
    'bob'
    >>> identify("alice_04-icc.ipynb", metadata_student="bob").notes
    ["the notebook's metadata names 'bob'; graded as 'alice' (from the file name)"]
    >>> identify("hw4-ann.ipynb", rule=r"hw4-(?P<student>\\w+)").student
    'ann'
    """
    path = Path(path)
    stem = _stem(path.name)
    folders: list[str] = []
    if root is not None:
        try:
            folders = list(reversed(path.parent.relative_to(Path(root)).parts))
        except ValueError:
            folders = [path.parent.name] if path.parent.name else []
    elif path.parent.name:
        folders = [path.parent.name]
    ident: Identity | None = None
    notes: list[str] = []

    if rule == "auto":
        for name in ("canvas", "moodle", "blackboard"):
            for text in (stem, *folders):
                match = _rule_match(NAME_RULES[name], text)
                if match:
                    lms_id = match.groupdict().get("id") or ""
                    ident = Identity(match["student"].strip(" _-."), lms_id, name)
                    break
            if ident:
                break
    elif rule != "plain":
        pattern = NAME_RULES.get(rule, rule)
        label = rule if rule in NAME_RULES else "custom"
        for text in (stem, *folders):
            match = _rule_match(pattern, text)
            if match:
                lms_id = match.groupdict().get("id") or ""
                ident = Identity(match["student"].strip(" _-."), lms_id, label)
                break
        if ident is None:
            notes.append(f"the file name does not follow the naming rule {rule!r}")
    if ident is None:
        plain = _plain_name(stem)
        if plain:
            ident = Identity(plain, "", "file name")
        else:
            for folder in folders:
                if _plain_name(folder):
                    ident = Identity(_plain_name(folder), "", "folder")
                    break
    meta = (metadata_student or "").strip()
    if ident is None and meta:
        ident = Identity(meta, "", "metadata")
        notes.append(f"named {meta!r} from the notebook's metadata (the file name names nobody)")
    if ident is None:
        ident = Identity(stem or path.name, "", "unknown")
        notes.append("cannot tell who handed this file in (the file name names nobody)")
    if meta and ident.rule != "metadata" and _key(meta) != _key(ident.student):
        notes.append(
            f"the notebook's metadata names {meta!r}; graded as {ident.student!r} "
            f"(from the {'folder' if ident.rule == 'folder' else 'file name'})"
        )
    ident.notes = notes
    return ident


def _chapter_evidence(path: Path, nb: Any) -> tuple[str | None, list[str]]:
    """The notebook's chapter and how sure that is.

    The check calls in the code decide (the chapter most of them belong to); then the metadata
    field ``mlmprimer.chapter``; then the exercise's name in the file name. Disagreements are
    returned as notes.
    """
    from mlmprimer.notebooks import CHECK_CALL

    check = _check()
    known = _known_chapters()
    calls: Counter[str] = Counter()
    meta_chapter = None
    if nb is not None:
        for cell in nb.get("cells", []):
            if cell.get("cell_type") == "code":
                for qid in CHECK_CALL.findall(_source(cell)):
                    if qid in check.QUESTIONS:
                        calls[check.QUESTIONS[qid].chapter] += 1
        meta = nb.get("metadata", {}).get("mlmprimer", {})
        if isinstance(meta, dict) and str(meta.get("chapter", "")).strip():
            candidate = _normal_chapter(str(meta["chapter"]))
            meta_chapter = candidate if candidate in known else None
    found = _name_match(_stem(path.name))
    name_chapter = found[0] if found else None
    if calls:
        chapter = sorted(calls, key=lambda c: (-calls[c], c))[0]
    else:
        chapter = meta_chapter or name_chapter
    notes = []
    if chapter and meta_chapter and meta_chapter != chapter:
        notes.append(f"its metadata says chapter {meta_chapter}")
    if chapter and name_chapter and name_chapter != chapter:
        notes.append(f"its file name says chapter {name_chapter}")
    return chapter, notes


# --------------------------------------------------------------------------------------------
# processes: finding and ending what a notebook started
# --------------------------------------------------------------------------------------------


def _process_table() -> dict[int, tuple[int, str]]:
    """``pid -> (parent pid, state)`` of every process (Linux ``/proc``; empty elsewhere)."""
    table: dict[int, tuple[int, str]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) >= 2:
            table[int(name)] = (int(fields[1]), fields[0].decode("ascii", "replace"))
    return table


def _descendants(root: int) -> list[int]:
    """Living descendants of ``root`` (not counting it)."""
    table = _process_table()
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _state) in table.items():
        children[ppid].append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child != root and child not in found:
                found.append(child)
                todo.append(child)
    return [p for p in found if table[p][1] not in ("Z", "X")]


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        cmd = ""
    return f"pid {pid}: {cmd[:120] or '?'}"


def _reap() -> None:
    """Collect the exit status of any child that has ended (a subreaper inherits orphans)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except (ChildProcessError, OSError):
            return
        if pid == 0:
            return


def _end_tree(root: int) -> list[str]:
    """Kill every descendant of ``root`` until none is left; describe the ones ended."""
    ended: dict[int, str] = {}
    for _ in range(200):
        alive = _descendants(root)
        if not alive:
            break
        for pid in alive:
            ended.setdefault(pid, _describe(pid))
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _reap()
        time.sleep(0.02)
    _reap()
    return list(ended.values())


def _end_marked(token: str) -> list[str]:
    """Kill every process whose environment carries this run's marker (Linux)."""
    marker = f"{_MARKER}={token}".encode()
    ended = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return ended
    for name in names:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if marker in env.split(b"\0"):
            ended.append(_describe(int(name)))
            with contextlib.suppress(OSError):
                os.kill(int(name), signal.SIGKILL)
    return ended


def _become_subreaper() -> bool:
    """Make orphaned descendants of this process its children again (Linux ``prctl``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(36, 1, 0, 0, 0)) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):  # pragma: no cover - no usable libc
        return False


# --------------------------------------------------------------------------------------------
# the run supervisor: a separate process per submission (started with ``python -I -c``)
# --------------------------------------------------------------------------------------------

# Loads this file as a module without importing the course library, whose import is slow and
# which the supervisor does not need. The supervisor validates no URIs, so jsonschema's URI
# grammar (seconds to build) is left out.
_BOOT = (
    "import importlib.util, sys\n"
    "sys.modules.setdefault('rfc3987_syntax', None)\n"
    "spec = importlib.util.spec_from_file_location('_mlmprimer_grade_run', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = module\n"
    "spec.loader.exec_module(module)\n"
    "sys.exit(module._supervise())\n"
)


class _Emitter:
    """Writes events, one JSON object a line, to the grader."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        data = (json.dumps(event) + "\n").encode("utf-8")
        with self.lock, contextlib.suppress(OSError, ValueError):
            self.stream.write(data)
            self.stream.flush()


def _supervise() -> int:
    """Entry point of the run supervisor: read the job, run it in a child, end what is left."""
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdin.close()
    emit = _Emitter(sys.stdout.buffer)
    reaper = _become_subreaper()
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not hasattr(os, "fork"):  # pragma: no cover - Windows: no supervisor, no clean-up
        return _run_job(job, emit)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            code = _run_job(job, emit)
        except BaseException as exc:  # noqa: BLE001 - report anything, then leave
            emit({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        finally:
            os._exit(code)

    def stop(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    status = None
    while status is None:
        try:
            pid, code = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child:
            status = code
    ended = _end_tree(os.getpid())
    event: dict[str, Any] = {"event": "cleanup", "ended": ended, "subreaper": reaper}
    if status is not None and os.WIFSIGNALED(status):
        event["signal"] = os.WTERMSIG(status)
    elif status is not None:
        event["exit"] = os.WEXITSTATUS(status)
    emit(event)
    return 0


def _content_size(value: Any, depth: int = 0) -> int:
    """Characters of text in an output message's content (what its output would weigh)."""
    if isinstance(value, str):
        return len(value)
    if depth > 4:
        return 0
    if isinstance(value, dict):
        return sum(_content_size(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return sum(_content_size(v, depth + 1) for v in value)
    return 0


def _run_job(job: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> int:
    """Run the notebook's code cells one by one in a fresh kernel, reading the answers after each.

    A cell that runs past its limit is interrupted (``KeyboardInterrupt`` in the kernel). If the
    grader's own cell then cannot read the answers within :data:`DUMP_TIMEOUT` seconds, the kernel
    is taken to be stuck and the run stops there, keeping the answers read so far.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    if job.get("run_as"):
        # the grader runs as root: the notebook runs as another account, which can reach
        # neither the grader's files nor its processes
        uid, gid = (int(x) for x in job["run_as"])
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    if job.get("memory_mb"):
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            limit = int(job["memory_mb"]) * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    budget = int(job.get("output_budget", _OUTPUT_BUDGET))

    class Client(NotebookClient):
        """Counts timeouts (nbclient interrupts the kernel and fakes an error reply) and keeps a
        cell's output to a budget."""

        timeouts = 0
        used = 0
        total = 0
        cut = False

        async def _async_handle_timeout(
            self, timeout: int, cell: nbformat.NotebookNode | None = None
        ) -> None | dict[str, Any]:
            self.timeouts += 1
            return await super()._async_handle_timeout(timeout, cell)

        def output(
            self,
            outs: list[nbformat.NotebookNode],
            msg: dict[str, Any],
            display_id: str | None,
            cell_index: int,
        ) -> nbformat.NotebookNode | None:
            size = _content_size(msg.get("content", {}))
            self.used += size
            self.total += size
            if self.used > budget or self.total > 10 * budget:
                if not self.cut:
                    self.cut = True
                    note = "[the grader kept no more of this cell's output]\n"
                    outs.append(nbformat.v4.new_output("stream", name="stderr", text=note))
                return None
            return super().output(outs, msg, display_id, cell_index)

    nb = nbformat.reads(job["notebook"], as_version=4)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = []
            cell.execution_count = None
    answers_file = Path(job["answers"])
    dump = nbformat.v4.new_code_cell(
        _DUMP_SOURCE.format(
            func=f"_mlmprimer_dump_{secrets.token_hex(6)}",
            names=list(job["names"]),
            path=str(answers_file),
        )
    )
    work = nbformat.v4.new_notebook(cells=[*nb.cells, dump], metadata=nb.metadata)
    timeout = float(job["timeout"])
    cell_timeout = job.get("cell_timeout")
    client = Client(
        work,
        kernel_name=job["kernel"],
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "TimeoutError",
            "evalue": "stopped by the grader",
            "traceback": [],
        },
        record_timing=False,
        startup_timeout=120,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": os.getcwd()}},
    )
    raised: list[str] = []

    def on_error(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        ename = execute_reply.get("content", {}).get("ename")
        if ename not in ("TimeoutError", "KeyboardInterrupt"):
            raised.append(f"cell {cell_index + 1} raised {ename}")

    client.on_cell_error = on_error
    state: dict[str, Any] = {"finished": False, "timeout": None, "crashed": None}
    last = [""]

    def read_answers() -> bool:
        """Copy the answers out of the kernel; False if the kernel did not respond."""
        client.timeout = DUMP_TIMEOUT
        client.timeouts = 0
        with contextlib.suppress(OSError):
            answers_file.unlink()
        client.execute_cell(dump, len(work.cells) - 1, store_history=False)
        if client.timeouts:
            return False
        try:
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(answers_file, flags)
            with os.fdopen(fd, "rb") as fh:
                text = fh.read(32 * 2**20).decode("utf-8")
            answers = json.loads(text)
        except (OSError, ValueError):
            return True
        if text != last[0] and isinstance(answers, dict):
            last[0] = text
            emit({"event": "answers", "answers": answers})
        return True

    code = [
        (i, c)
        for i, c in enumerate(work.cells[:-1])
        if c.get("cell_type") == "code" and c.source.strip()
    ]
    try:
        with client.setup_kernel(
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ):
            km = client.km
            # the kernel has read its connection file: remove it, so that no other process
            # (another notebook graded at the same time) finds the kernel's key on disk
            with contextlib.suppress(OSError, TypeError, AttributeError):
                os.unlink(km.connection_file)
            provisioner = getattr(km, "provisioner", None)
            emit({"event": "started", "kernel_pid": getattr(provisioner, "pid", None)})
            start = time.monotonic()
            for position, cell in code:
                index = position + 1
                remaining = timeout - (time.monotonic() - start)
                if remaining <= 0:
                    state["timeout"] = (
                        f"the notebook ran out of time ({timeout:g} s) before cell {index}"
                    )
                    break
                per_cell = bool(cell_timeout) and float(cell_timeout) < remaining
                limit = float(cell_timeout) if per_cell else remaining
                client.timeout = max(1, math.ceil(limit))
                client.timeouts = 0
                client.used = 0
                client.cut = False
                client.execute_cell(cell, position)
                stopped = client.timeouts > 0
                if stopped:
                    state["timeout"] = (
                        f"cell {index} was stopped after {client.timeout} s"
                        if per_cell
                        else f"the notebook ran out of time ({timeout:g} s) in cell {index}"
                    )
                emit(
                    {
                        "event": "cell",
                        "cell": index,
                        "errors": raised[:],
                        "timeout": state["timeout"],
                    }
                )
                if not read_answers():
                    state["timeout"] = f"cell {index} did not stop when interrupted"
                    break
                if stopped and not per_cell:
                    break
            else:
                state["finished"] = True
    except DeadKernelError:
        state["crashed"] = "the kernel died (the notebook crashed or exited)"
    except Exception as exc:  # noqa: BLE001 - a kernel that cannot start, a broken pipe ...
        state["crashed"] = f"the notebook could not be run ({type(exc).__name__}: {exc})"
    work.cells.pop()
    emit({"event": "end", **state, "errors": raised, "notebook": nbformat.writes(work)})
    return 0


# --------------------------------------------------------------------------------------------
# the grader's side of a run
# --------------------------------------------------------------------------------------------

_LIVE: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
_LIVE_LOCK = threading.Lock()
_KERNEL_DIRS: dict[str, Path] = {}


@dataclass(frozen=True)
class _Settings:
    """What a run depends on."""

    timeout: float = DEFAULT_TIMEOUT
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT
    kernel: str = "python3"
    memory_mb: int | None = None
    scratch: str | None = None
    pass_env: tuple[str, ...] = ()
    run_as: tuple[int, int] | None = None

    def key(self) -> str:
        """The settings that change a score (results are reused only under the same ones)."""
        return json.dumps([self.timeout, self.cell_timeout, self.kernel, self.memory_mb])


def _kernel_dir(name: str) -> Path:
    """The folder of the Jupyter kernel spec ``name`` (raises ``ValueError`` if there is none)."""
    if name not in _KERNEL_DIRS:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        try:
            _KERNEL_DIRS[name] = Path(KernelSpecManager().get_kernel_spec(name).resource_dir)
        except NoSuchKernel:
            raise ValueError(
                f"there is no Jupyter kernel named {name!r} (see `jupyter kernelspec list`)"
            ) from None
    return _KERNEL_DIRS[name]


def _sandbox_env(home: Path, token: str, keep: Sequence[str]) -> dict[str, str]:
    """The whole environment of a run: nothing of the grader's but what is named here."""
    local = home / ".local" / "share"
    env = {
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "TMP": str(home / "tmp"),
        "TEMP": str(home / "tmp"),
        "PATH": os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "IPYTHONDIR": str(home / ".ipython"),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(local / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(local / "jupyter" / "runtime"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(local),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        _MARKER: token,
    }
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TZ", *keep):
        if name in os.environ:
            env[name] = os.environ[name]
    if "OPENBLAS_CORETYPE" in os.environ:
        env["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    return env


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for folder, dirs, files in os.walk(root):
        os.chown(folder, uid, gid)
        for name in [*dirs, *files]:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _account(spec: str) -> tuple[int, int]:
    """``"nobody"``, ``"65534"`` or ``"65534:65534"`` -> ``(uid, gid)``.

    Examples
    --------
    >>> _account("1234:5678")
    (1234, 5678)
    """
    name, _, group = spec.partition(":")
    if name.isdigit():
        uid = int(name)
        gid = int(group) if group.isdigit() else uid
        return uid, gid
    import pwd

    entry = pwd.getpwnam(name)
    if group:
        import grp

        return entry.pw_uid, int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return entry.pw_uid, entry.pw_gid


def _blocked_for(account: tuple[int, int], paths: Sequence[Path]) -> Path | None:
    """The first folder on the way to one of ``paths`` that ``account`` may not enter."""
    import stat

    uid, gid = account
    for path in paths:
        path = path.resolve()
        for folder in [*reversed(path.parents), path]:
            try:
                info = folder.stat()
            except OSError:
                return folder
            if not stat.S_ISDIR(info.st_mode):
                continue
            mode = info.st_mode
            if info.st_uid == uid:
                ok = mode & stat.S_IXUSR
            elif info.st_gid == gid:
                ok = mode & stat.S_IXGRP
            else:
                ok = mode & stat.S_IXOTH
            if not ok:
                return folder
    return None


def _safe_name(name: str, limit: int = 80) -> str:
    """A file name made of safe characters only.

    Examples
    --------
    >>> _safe_name("../Jane Smith/04-icc.ipynb")
    'Jane_Smith_04-icc.ipynb'
    """
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip("._") or "file"
    return cleaned[-limit:]


def _rmtree(path: Path) -> None:
    def retry(func: Callable[..., Any], target: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)

    with contextlib.suppress(OSError):
        shutil.rmtree(path, onerror=retry)


def _new_scratch(settings: _Settings) -> tuple[Path, str]:
    """A fresh temporary directory for one run, and the marker of the run's processes."""
    return (
        Path(tempfile.mkdtemp(prefix="mlmprimer-grade-", dir=settings.scratch)),
        secrets.token_hex(16),
    )


def _run_isolated(
    notebook_name: str,
    nb_json: str,
    names: Sequence[str],
    settings: _Settings,
    scratch: tuple[Path, str] | None = None,
) -> _Run:
    """Run one notebook in its own temporary directory, supervisor and kernel; end all of it.

    ``scratch`` is the directory and marker of :func:`_new_scratch` (made here when not given);
    the directory is removed when the run is over.
    """
    started = time.monotonic()
    run = _Run()
    scratch, token = scratch or _new_scratch(settings)
    try:
        kernel_dir = _kernel_dir(settings.kernel)
    except ValueError as exc:
        _rmtree(scratch)
        run.crashed = str(exc)
        return run
    events: list[dict[str, Any]] = []
    leftover: list[str] = []
    stderr = ""
    wall = settings.timeout + DUMP_TIMEOUT + 180
    stopped_by_grader = False
    try:
        work, home, answers = scratch / "work", scratch / "home", scratch / "answers"
        for folder in (work, home / "tmp", answers):
            folder.mkdir(parents=True)
        (work / _safe_name(notebook_name)).write_text(nb_json, encoding="utf-8")
        spec_dir = home / ".local" / "share" / "jupyter" / "kernels" / settings.kernel
        shutil.copytree(kernel_dir, spec_dir)
        if settings.run_as is not None:
            _chown_tree(scratch, *settings.run_as)
        job = {
            "notebook": nb_json,
            "names": list(names),
            "answers": str(answers / f"answers-{secrets.token_hex(8)}.json"),
            "timeout": settings.timeout,
            "cell_timeout": settings.cell_timeout,
            "kernel": settings.kernel,
            "memory_mb": settings.memory_mb,
            "run_as": list(settings.run_as) if settings.run_as else None,
            "output_budget": _OUTPUT_BUDGET,
        }
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(  # noqa: S603 - this interpreter, this file
                [sys.executable, "-I", "-c", _BOOT, str(Path(__file__).resolve())],
                cwd=work,
                env=_sandbox_env(home, token, settings.pass_env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                start_new_session=True,
                close_fds=True,
            )
            with _LIVE_LOCK:
                _LIVE[proc.pid] = (proc, token)
            reader = threading.Thread(target=_read_events, args=(proc.stdout, events), daemon=True)
            reader.start()
            try:
                assert proc.stdin is not None
                with contextlib.suppress(OSError):
                    proc.stdin.write(json.dumps(job).encode("utf-8"))
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                reader.join(wall)
                if reader.is_alive():
                    stopped_by_grader = True
                    _stop(proc)
                    reader.join(15)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(15)
            finally:
                _stop(proc)
                leftover = _end_marked(token)
                with _LIVE_LOCK:
                    _LIVE.pop(proc.pid, None)
            errors.seek(0)
            stderr = errors.read()[-2000:].decode("utf-8", "replace")
    finally:
        _rmtree(scratch)
    _collect_run(run, events, leftover, stderr, stopped_by_grader, wall)
    run.seconds = time.monotonic() - started
    return run


def _read_events(stream: Any, sink: list[dict[str, Any]]) -> None:
    while True:
        try:
            line = stream.readline(256 * 2**20)
        except (OSError, ValueError):
            return
        if not line:
            return
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                sink.append(event)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a supervisor: ask (it then ends the notebook's processes), then kill its group."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    if hasattr(os, "killpg"):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.wait(5)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _collect_run(
    run: _Run,
    events: list[dict[str, Any]],
    leftover: list[str],
    stderr: str,
    stopped_by_grader: bool,
    wall: float,
) -> None:
    """Fill ``run`` from the supervisor's events."""
    kernel_pid = None
    end = cleanup = None
    raw: dict[str, Any] = {}
    for event in events:
        kind = event.get("event")
        if kind == "started":
            kernel_pid = event.get("kernel_pid")
        elif kind == "answers" and isinstance(event.get("answers"), dict):
            raw = event["answers"]
        elif kind == "cell":
            run.errors = [str(e) for e in event.get("errors") or []]
            run.timeout = event.get("timeout") or run.timeout
        elif kind == "end":
            end = event
        elif kind == "cleanup":
            cleanup = event
        elif kind == "error":
            run.notes.append(f"the grader's run failed: {event.get('message')}")
    answers = {}
    for name, value in raw.items():
        with contextlib.suppress(Exception):
            answers[str(name)] = decode_answer(value)
    run.answers = answers
    if end is not None:
        run.finished = bool(end.get("finished"))
        run.timeout = end.get("timeout") or run.timeout
        run.crashed = end.get("crashed")
        run.errors = [str(e) for e in end.get("errors") or run.errors]
        run.executed = end.get("notebook") if isinstance(end.get("notebook"), str) else None
        run.abnormal = run.crashed is not None
    elif stopped_by_grader:
        run.crashed = f"the grader stopped the notebook after {wall:.0f} s (it was stuck)"
    elif cleanup is not None and "signal" in cleanup:
        name = _signal_name(int(cleanup["signal"]))
        run.crashed = (
            f"the process running the notebook was ended by {name} (the notebook may have "
            "ended its own grading process)"
        )
        run.abnormal = True
    elif cleanup is None and events:
        run.crashed = "the grader's supervisor of this notebook was ended before it finished"
        run.abnormal = True
    else:
        tail = stderr.strip().splitlines()[-1:] or ["no message"]
        run.crashed = f"the notebook could not be run ({tail[0][:300]})"
    ended = [
        item
        for item in ((cleanup or {}).get("ended") or []) + leftover
        if not (kernel_pid and str(item).startswith(f"pid {kernel_pid}:"))
    ]
    if ended and run.finished:
        run.leftover = [str(e) for e in ended]
        run.notes.append(
            f"the notebook left {len(ended)} process(es) running; the grader ended them"
        )
    elif ended:
        run.leftover = [str(e) for e in ended]


# --------------------------------------------------------------------------------------------
# scoring (in this process)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# a batch: reading the submissions
# --------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One submitted file and everything known about it."""

    file: str
    path: str
    name: str
    sha256: str = ""
    size: int = 0
    student: str = ""
    lms_id: str = ""
    email: str = ""
    name_rule: str = ""
    chapter: str | None = None
    scored_as: str | None = None
    kind: str = "notebook"  # notebook | other
    state: str = "static"  # static | pending | running | done | stopped
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    executed: str = ""
    leftover: list[str] = field(default_factory=list)
    seconds: float = 0.0
    key: str = ""
    extra: bool = False  # a non-notebook file of a student who also handed in a notebook
    data: bytes | None = field(default=None, repr=False)
    nb_json: str | None = field(default=None, repr=False)
    names: list[str] = field(default_factory=list, repr=False)
    called: list[str] = field(default_factory=list, repr=False)

    def record(self) -> dict[str, Any]:
        """The entry as plain data (for the run record)."""
        skip = {"data", "nb_json", "names", "called"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}


def _walk(root: Path, ignored: list[str]) -> list[Path]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d.lower() not in _JUNK_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            # a link could make the grader read (and keep a copy of) a file of yours
            if name.startswith(".") or name.lower() in _JUNK or path.is_symlink():
                ignored.append(str(path))
            elif path.is_file():
                found.append(path)
    return found


def _collect(
    paths: Iterable[Path | str], exclude: Callable[[Path], bool] | None = None
) -> tuple[list[tuple[Path, Path | None]], list[str]]:
    """Every file to grade with the folder it was found in, and the files left out."""
    out: list[tuple[Path, Path | None]] = []
    ignored: list[str] = []
    seen: set[Path] = set()
    for p in map(Path, paths):
        items = [(f, p) for f in _walk(p, ignored)] if p.is_dir() else [(p, None)]
        for f, root in items:
            resolved = f.resolve()
            if resolved in seen:
                continue
            if exclude and exclude(resolved):
                continue
            seen.add(resolved)
            out.append((f, root))
    return out, ignored


def _read_submission(path: Path) -> tuple[bytes | None, str | None]:
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            return None, f"the file is too large to be a submission ({size / 2**20:.0f} MB)"
        with path.open("rb") as fh:
            return fh.read(_MAX_BYTES + 1), None
    except OSError as exc:
        return None, f"cannot read file: {exc}"


def _zip_listing(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a .zip file that cannot be opened"
    notebooks = [n for n in names if n.lower().endswith(".ipynb") and "__MACOSX" not in n]
    shown = ", ".join(notebooks[:5]) or "no notebook"
    return f"a .zip archive ({len(names)} files; {shown}): unpack it and grade the notebook inside"


@dataclass
class _Options:
    chapter: str | None = None
    names: str = "auto"
    roster: str | None = None
    duplicates: str = "flag"
    lms: str = "generic"
    assignment: str | None = None
    fresh: bool = False
    retry_stopped: bool = False
    accept_changed: bool = False
    hand: tuple[str, ...] = ()
    jobs: int = 1
    progress: bool = False


def _parse(entry: _Entry, data: bytes) -> tuple[Any, list[list[Any]] | None]:
    """The notebook in ``data``, or the rows saying why there is none."""
    import nbformat

    name_chapter = _name_match(_stem(entry.name))
    chapter = name_chapter[0] if name_chapter else None
    if not data.strip():
        return None, _question_rows(chapter, "empty", "the file is empty (saved empty?)")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"not a valid notebook: the file is not valid JSON ({exc})"
        return None, _question_rows(chapter, "invalid", reason)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds of error
        nb = _lenient(raw)
        if nb is None:
            reason = f"not a valid notebook: {type(exc).__name__}: {exc}"
            return None, _question_rows(chapter, "invalid", reason)
        entry.notes.append(f"the notebook file is damaged ({type(exc).__name__}), but its code ran")
    return nb, None


class _Batch:
    """A batch of submissions: read, named, scoped, run, scored and reported."""

    def __init__(
        self,
        paths: Iterable[Path | str],
        out: Path | str | None,
        settings: _Settings,
        options: _Options,
        argv: Sequence[str] | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.files = output_files(out) if out is not None else None
        self.argv = list(argv) if argv is not None else None
        self.started = _now()
        self.entries: list[_Entry] = []
        self.ignored: list[str] = []
        self.problems: list[str] = []
        self.roster: list[dict[str, str]] = []
        self.scope: str | None = _normal_chapter(options.chapter) if options.chapter else None
        self.scope_source = "--chapter" if self.scope else ""
        self.journal = _Journal(self.files) if self.files else None
        self.writer = _Writer(self.files) if self.files else None
        self.complete = False
        self.interrupted = False
        self.batch_chapters: list[str] = []
        self.notices: list[str] = []
        self.absent: list[dict[str, str]] | None = None
        self._read_all(paths)

    # -- reading -------------------------------------------------------------------------------

    def _read_all(self, paths: Iterable[Path | str]) -> None:
        files, self.ignored = _collect(paths, self._is_output)
        seen = self.journal.seen() if self.journal else {}
        for path, root in files:
            rel = str(path.relative_to(root)) if root is not None else str(path)
            entry = _Entry(file=rel, path=str(path.resolve()), name=path.name)
            data, error = _read_submission(path)
            if data is not None:
                entry.sha256 = hashlib.sha256(data).hexdigest()
                entry.size = len(data)
                first = seen.get(entry.path)
                if first and first != entry.sha256 and self.files is not None:
                    kept = self.files.originals / first
                    if not kept.is_file():
                        kept = _recovered(self.files.originals) / first
                    if kept.is_file() and not self.options.accept_changed:
                        entry.problems.append(
                            "the file changed after this batch first read it; the copy read "
                            "then was graded (--accept-changed grades the file as it is now)"
                        )
                        data = kept.read_bytes()
                        entry.sha256 = first
                    else:
                        entry.problems.append("the file changed after this batch first read it")
            entry.data = data
            self._classify(entry, path, root, error)
            self.entries.append(entry)
        self._scope()
        self._identities()

    def _is_output(self, path: Path) -> bool:
        if self.files is None:
            return False
        folder = self.files.scores.parent.resolve()
        stem = self.files.stem
        try:
            rel = path.relative_to(folder)
        except ValueError:
            return False
        return rel.parts[0] == f"{stem}.csv" or rel.parts[0].startswith(f"{stem}.")

    def _classify(self, entry: _Entry, path: Path, root: Path | None, error: str | None) -> None:
        import nbformat

        from mlmprimer.notebooks import CHECK_CALL

        data = entry.data
        nb = None
        static = None
        lower = entry.name.lower()
        name_chapter = _name_match(_stem(entry.name))
        if error is not None or data is None:
            static = _question_rows(
                name_chapter[0] if name_chapter else None, "invalid", error or "unreadable"
            )
        elif not lower.endswith(".ipynb"):
            entry.kind = "other"
            what = (
                _zip_listing(data)
                if lower.endswith(".zip")
                else f"a {Path(lower).suffix or 'file without extension'} file"
            )
            static = _question_rows(
                name_chapter[0] if name_chapter else None, "invalid", f"not a notebook: {what}"
            )
        else:
            if not entry.name.endswith(".ipynb"):
                entry.notes.append(
                    f"the file name ends in {entry.name[-6:]!r}, not '.ipynb'; graded as a notebook"
                )
            nb, static = _parse(entry, data)
        meta = nb.get("metadata", {}).get("mlmprimer", {}) if nb is not None else {}
        meta_student = str(meta.get("student", "")) if isinstance(meta, dict) else ""
        ident = identify(path, root, self.options.names, meta_student or None)
        entry.student, entry.lms_id, entry.name_rule = ident.student, ident.lms_id, ident.rule
        entry.problems += ident.notes
        if nb is not None:
            entry.chapter, chapter_notes = _chapter_evidence(path, nb)
            if chapter_notes and entry.chapter:
                entry.notes.append(
                    f"graded as chapter {entry.chapter} (from its check calls), though "
                    + " and ".join(chapter_notes)
                )
            code = [c for c in nb.cells if c.get("cell_type") == "code" and _source(c).strip()]
            if not code and static is None:
                static = _question_rows(entry.chapter, "empty", "the notebook has no code")
            entry.nb_json = nbformat.writes(nb)
            entry.called = sorted({q for c in code for q in CHECK_CALL.findall(_source(c))})
        if static is not None:
            entry.rows = static
        else:
            entry.state = "pending"

    def _scope(self) -> None:
        runnable = [e for e in self.entries if e.state == "pending"]
        if self.scope is None:
            counts = Counter(e.chapter for e in runnable if e.chapter)
            if counts:
                self.scope_source = "most notebooks"
                majority = sorted(counts, key=lambda c: (-counts[c], c))[0]
                if len(counts) > 1:
                    mixed = ", ".join(f"chapter {c}: {n}" for c, n in sorted(counts.items()))
                    self.problems.append(
                        f"the batch mixes chapters ({mixed}); each notebook was graded against "
                        f"its own chapter. Use --chapter {majority} to grade one chapter only."
                    )
                self.batch_chapters = sorted(counts)
            else:
                self.batch_chapters = []
        else:
            self.batch_chapters = [self.scope]
        for e in self.entries:
            if e.state != "pending":
                if self.scope and len(e.rows) == 1 and not e.rows[0][0]:
                    e.rows = _question_rows(self.scope, e.rows[0][3], e.rows[0][4])
                continue
            if self.scope is None:
                if e.chapter is None:
                    reason = (
                        "cannot tell which chapter this is (no check calls, no NN-topic in the "
                        "name or metadata); use --chapter"
                    )
                    e.rows, e.state = _question_rows(None, "invalid", reason), "static"
                    continue
                e.scored_as = e.chapter
                if len(self.batch_chapters) > 1:
                    e.notes.append(
                        f"this notebook is chapter {e.chapter}; the batch mixes chapters"
                    )
            elif e.chapter is None:
                e.scored_as = self.scope
                e.notes.append(
                    f"cannot tell the notebook's chapter; graded as chapter {self.scope}"
                )
            elif e.chapter != self.scope:
                label = _exercise_names().get(e.chapter, f"chapter {e.chapter}")
                reason = (
                    f"this is the notebook of chapter {e.chapter} ({label}), not of chapter "
                    f"{self.scope}, which this batch grades: not scored"
                )
                e.rows, e.state = _question_rows(self.scope, "wrong-chapter", reason), "static"
                e.problems.append(f"handed in chapter {e.chapter} instead of {self.scope}")
                continue
            else:
                e.scored_as = self.scope
            qs = _check().questions(e.scored_as)
            e.names = sorted({v for q in qs for v in q.variables})
            e.key = hashlib.sha256(
                "\0".join([e.path, e.sha256, e.scored_as or "", self.settings.key()]).encode()
            ).hexdigest()[:32]

    def _identities(self) -> None:
        """Report several files of one student, and match the roster."""
        by_student: dict[str, list[_Entry]] = defaultdict(list)
        for e in self.entries:
            by_student[_key(e.student)].append(e)
        for group in by_student.values():
            right = [e for e in group if e.kind == "notebook" and not _wrong(e)]
            notebooks = right or [e for e in group if e.kind == "notebook"]
            others = [e for e in group if e not in notebooks]
            if notebooks and others:
                for e in others:
                    e.extra = True
                    e.rows = [["", 0.0, 0.0, e.rows[0][3], e.rows[0][4] + " (not counted)"]]
                listed = ", ".join(e.file for e in others)
                notebooks[0].notes.append(f"the student also handed in {listed} (not graded)")
            counted = notebooks or others
            if len(counted) > 1:
                listed = ", ".join(e.file for e in counted)
                for e in counted:
                    e.problems.append(
                        f"{len(counted)} submissions map to the student {e.student!r}: {listed}"
                    )
        if self.options.roster:
            self.roster = _read_roster(Path(self.options.roster))
            for e in self.entries:
                match = _roster_match(self.roster, e.student, e.lms_id)
                if match is None:
                    e.problems.append(f"{e.student!r} is not on the roster")
                else:
                    e.email = match.get("email", "")
                    e.lms_id = e.lms_id or match.get("id", "")

    # -- running -------------------------------------------------------------------------------

    def run(self) -> None:
        """Grade what is not graded yet, writing every result as soon as it is known."""
        if self.journal is not None and self.options.fresh:
            self.journal.restart()  # the files first read are still the ones graded
        history = self.journal.load() if self.journal is not None else {}
        for past in history.values():
            for opened in past.get("open", []):
                _clean_after(opened)
        todo, alone = [], []
        for e in self.entries:
            if e.state != "pending":
                continue
            past = history.get(e.key)
            if past and past.get("done") is not None:
                self._finish(e, past["done"], write=False)
            elif past and past.get("open"):
                opened = past["open"]
                if (any(o.get("solo") for o in opened) or len(opened) > 1) and not (
                    self.options.retry_stopped
                ):
                    self._stopped(e)
                else:
                    alone.append(e)
            else:
                todo.append(e)
        if self.journal is not None:
            self.journal.note_seen(self.entries)
            self._keep_originals()
        if any(e.state == "pending" for e in self.entries):
            _kernel_dir(self.settings.kernel)
        if self.options.progress:
            for e in self.entries:
                if e.state in ("static", "stopped"):
                    _report(e)
                elif e.state == "done":
                    _report(e, "  (graded in an earlier run)")
        self.publish()
        jobs = max(1, self.options.jobs)
        retry = self._run_many(todo, jobs)
        self._run_many(alone + retry, 1)
        self.complete = all(e.state not in ("pending", "running") for e in self.entries)
        self._check_unchanged()
        self.publish()

    def _run_many(self, entries: list[_Entry], jobs: int) -> list[_Entry]:
        """Run entries, ``jobs`` at a time; return those to run again alone."""
        from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

        retry: list[_Entry] = []
        if not entries:
            return retry
        queue = list(entries)
        solo = jobs == 1
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            running: dict[Any, _Entry] = {}
            try:
                while queue or running:
                    while queue and len(running) < jobs:
                        e = queue.pop(0)
                        e.state = "running"
                        scratch = _new_scratch(self.settings)
                        if self.journal is not None:
                            # the directory and the marker let a later run clean up after
                            # this one, should the grader be killed meanwhile
                            self.journal.append(
                                {
                                    "type": "start",
                                    "key": e.key,
                                    "solo": solo,
                                    "scratch": str(scratch[0]),
                                    "marker": scratch[1],
                                }
                            )
                        self.publish()
                        future = pool.submit(
                            _run_isolated, e.name, e.nb_json or "", e.names, self.settings, scratch
                        )
                        running[future] = e
                    finished, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
                    for future in finished:
                        e = running.pop(future)
                        run = future.result()
                        if run.abnormal and not solo:
                            e.state = "pending"
                            if self.journal is not None:
                                self.journal.append({"type": "abort", "key": e.key})
                            retry.append(e)
                            continue
                        self._finish(e, self._result(e, run))
            except BaseException:
                self.interrupted = True
                _stop_all()
                for e in running.values():
                    e.state = "pending"
                    if self.journal is not None:
                        self.journal.append({"type": "abort", "key": e.key})
                raise
        return retry

    def _result(self, e: _Entry, run: _Run) -> dict[str, Any]:
        check = _check()
        qs = check.questions(e.scored_as)
        rows = _score(qs, run, set(e.called))
        texts = {}
        for q in qs:
            if q.kind == "manual":
                value = run.answers.get(q.variables[0]) if q.variables else None
                if isinstance(value, str) and value.strip():
                    texts[q.qid] = value
        executed = ""
        if run.executed and self.writer is not None:
            executed = self.writer.executed(e, run.executed)
        return {
            "rows": rows,
            "texts": texts,
            "seconds": round(run.seconds, 2),
            "leftover": run.leftover,
            "executed": executed,
        }

    def _finish(self, e: _Entry, result: dict[str, Any], write: bool = True) -> None:
        e.rows = [list(r) for r in result.get("rows", [])]
        e.texts = dict(result.get("texts", {}))
        e.seconds = float(result.get("seconds", 0.0))
        e.leftover = list(result.get("leftover", []))
        e.executed = str(result.get("executed", ""))
        if e.leftover:
            e.problems.append(f"left {len(e.leftover)} process(es) running; they were ended")
        e.state = "done"
        if write and self.journal is not None:
            self.journal.append({"type": "done", "key": e.key, "result": result})
        if write:
            self.publish()
            if self.options.progress:
                _report(e)

    def _stopped(self, e: _Entry) -> None:
        reason = (
            "not graded: the grader itself stopped while this notebook ran on its own (the "
            "notebook may end the grader's process), so it was not run again; run the grader "
            "with --retry-stopped to try it once more"
        )
        e.rows = _question_rows(e.scored_as, "crashed", reason)
        e.state = "stopped"
        e.problems.append("stopped the grader; not run again")

    def _keep_originals(self) -> None:
        assert self.writer is not None
        for e in self.entries:
            if e.data is not None and e.sha256:
                self.writer.original(e.sha256, e.data)

    def _check_unchanged(self) -> None:
        for e in self.entries:
            if e.data is None or not e.sha256:
                continue
            data, _ = _read_submission(Path(e.path))
            now = hashlib.sha256(data).hexdigest() if data is not None else "gone"
            if now != e.sha256 and not any("changed" in p for p in e.problems):
                e.problems.append(
                    "the file was changed or removed while the batch ran; the copy read before "
                    "any notebook ran was graded"
                )

    @classmethod
    def from_record(cls, files: OutputFiles) -> _Batch:
        """The batch as its run record left it (to merge hand scores without running anything)."""
        record_path = files.record
        if not record_path.is_file() and _recovered(record_path).is_file():
            record_path = _recovered(record_path)
        record = json.loads(record_path.read_text(encoding="utf-8"))
        batch = cls.__new__(cls)
        known = {f for f in _Settings.__dataclass_fields__}
        settings = {k: v for k, v in record.get("settings", {}).items() if k in known}
        settings["pass_env"] = tuple(settings.get("pass_env", ()))
        if settings.get("run_as"):
            settings["run_as"] = tuple(settings["run_as"])
        batch.settings = _Settings(**settings)
        known = {f for f in _Options.__dataclass_fields__}
        options = {k: v for k, v in record.get("options", {}).items() if k in known}
        options["hand"] = tuple(options.get("hand", ()))
        batch.options = _Options(**options)
        batch.files = files
        batch.argv = record.get("command")
        batch.started = record.get("started", _now())
        batch.entries = [_entry_from_record(e) for e in record.get("entries", [])]
        batch.ignored = record.get("ignored", [])
        batch.problems = [p for p in record.get("problems", []) if not p.startswith("hand scores:")]
        batch.roster = record.get("roster", [])
        batch.scope = record.get("scope")
        batch.scope_source = "--chapter" if batch.scope else "most notebooks"
        batch.batch_chapters = record.get("batch_chapters", [])
        batch.journal = _Journal(files)
        batch.writer = _Writer(files)
        if record_path != files.record:
            batch.writer.moved[str(files.record)] = str(record_path)
        batch.complete = bool(record.get("complete"))
        batch.interrupted = False
        batch.notices = []
        batch.absent = None
        return batch

    # -- reporting -----------------------------------------------------------------------------

    def publish(self) -> None:
        if self.writer is not None:
            _publish(self)


def _entry_from_record(data: dict[str, Any]) -> _Entry:
    known = {f for f in _Entry.__dataclass_fields__}
    return _Entry(**{k: v for k, v in data.items() if k in known})


def _clean_after(start: dict[str, Any]) -> None:
    """End the processes and remove the directory of a run that a killed grader left behind."""
    marker = start.get("marker")
    if isinstance(marker, str) and re.fullmatch(r"[0-9a-f]{32}", marker):
        _end_marked(marker)
    folder = start.get("scratch")
    if isinstance(folder, str) and Path(folder).name.startswith("mlmprimer-grade-"):
        if Path(folder).is_dir():
            _rmtree(Path(folder))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _report(e: _Entry, suffix: str = "") -> None:
    score = sum(float(r[1]) for r in e.rows)
    total = sum(float(r[2]) for r in e.rows)
    odd = sorted({str(r[3]) for r in e.rows} & set(_NOTABLE))
    extra = f"  [{', '.join(odd)}]" if odd else ""
    print(f"{e.student:>20}  {score:5.1f} / {total:4.1f}  {e.file}{extra}{suffix}", flush=True)


def _wrong(e: _Entry) -> bool:
    """Whether an entry is a notebook of another chapter than the batch's."""
    return any(r[3] == "wrong-chapter" for r in e.rows)


def _stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for proc, token in live:
        _stop(proc)
        _end_marked(token)


# --------------------------------------------------------------------------------------------
# the output files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputFiles:
    """Where a batch writes: every name starts with the stem of ``--out`` (see
    :func:`output_files`)."""

    scores: Path
    stem: str

    def _sibling(self, suffix: str) -> Path:
        return self.scores.parent / f"{self.stem}{suffix}"

    @property
    def wide(self) -> Path:
        return self._sibling(".wide.csv")

    @property
    def lms(self) -> Path:
        return self._sibling(".lms.csv")

    @property
    def summary(self) -> Path:
        return self._sibling(".summary.md")

    @property
    def texts(self) -> Path:
        return self._sibling(".text-answers.csv")

    @property
    def hand(self) -> Path:
        return self._sibling(".hand.csv")

    @property
    def record(self) -> Path:
        return self._sibling(".run.json")

    @property
    def journal(self) -> Path:
        return self._sibling(".journal.jsonl")

    @property
    def feedback(self) -> Path:
        return self._sibling(".feedback")

    @property
    def executed(self) -> Path:
        return self._sibling(".executed")

    @property
    def originals(self) -> Path:
        return self._sibling(".originals")

    def all(self) -> dict[str, Path]:
        names = ("wide", "lms", "summary", "texts", "hand", "record", "journal")
        out = {"scores": self.scores, **{n: getattr(self, n) for n in names}}
        out.update(feedback=self.feedback, executed=self.executed, originals=self.originals)
        return out


def output_files(out: Path | str) -> OutputFiles:
    """The files a batch graded with ``--out out`` writes.

    ``out`` names the scores file (``grades/scores.csv``); every other file sits next to it and
    starts with the same name. An ``out`` without ``.csv`` (``grades/``) is a folder that gets
    ``scores.csv`` and the rest.

    Examples
    --------
    >>> files = output_files("grades/scores.csv")
    >>> files.wide.as_posix(), files.feedback.as_posix()
    ('grades/scores.wide.csv', 'grades/scores.feedback')
    >>> output_files("grades/").scores.as_posix()
    'grades/scores.csv'
    """
    text = str(out)
    path = Path(out)
    if text.endswith(("/", os.sep)) or path.suffix.lower() != ".csv":
        path = path / "scores.csv"
    return OutputFiles(path, path.stem)


def _recovered(path: Path) -> Path:
    """``scores.csv`` -> ``scores.recovered.csv``; ``scores.feedback`` -> ``....recovered``."""
    if path.suffix in (".csv", ".md", ".json", ".jsonl"):
        return path.with_name(f"{path.stem}.recovered{path.suffix}")
    return path.with_name(f"{path.name}.recovered")


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, data: bytes, sync: bool = False, private: bool = False) -> None:
    """Write ``data`` to a temporary file next to ``path``, then move it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o600 if private else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _Writer:
    """Writes output files atomically; a blocked path gets a ``.recovered`` sibling instead."""

    def __init__(self, files: OutputFiles) -> None:
        self.files = files
        self.moved: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self._cache: dict[Path, tuple[bytes, tuple[int, int]]] = {}

    def where(self, path: Path) -> Path:
        moved = self.moved.get(str(path))
        return Path(moved) if moved else path

    def write(
        self, path: Path, data: bytes, sync: bool = False, private: bool = False
    ) -> Path | None:
        target = self.where(path)
        if (
            self._cache.get(target, (None,))[0] == data
            and self._stamp(target) == (self._cache[target][1])
        ):
            return target  # unchanged, and nobody touched the file since
        for candidate in dict.fromkeys([target, _recovered(path)]):
            try:
                _atomic_write(candidate, data, sync, private)
            except OSError as exc:
                self.failed[str(path)] = f"{type(exc).__name__}: {exc}"
                continue
            if candidate != path and str(path) not in self.moved:
                self.moved[str(path)] = str(candidate)
                print(
                    f"mlmprimer-grade: cannot write {path} ({self.failed.get(str(path))}); "
                    f"wrote {candidate} instead",
                    file=sys.stderr,
                )
            self.failed.pop(str(path), None)
            self._cache[candidate] = (data, self._stamp(candidate))
            return candidate
        return None

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        try:
            info = path.lstat()
        except OSError:
            return (-1, -1)
        return (info.st_ino, info.st_mtime_ns)

    def folder(self, path: Path) -> Path | None:
        target = self.where(path)
        for candidate in dict.fromkeys([target, _recovered(path)]):
            try:
                candidate.mkdir(parents=True, exist_ok=True)
                if candidate.is_dir() and not candidate.is_symlink():
                    if candidate != path and str(path) not in self.moved:
                        self.moved[str(path)] = str(candidate)
                    return candidate
            except OSError as exc:
                self.failed[str(path)] = f"{type(exc).__name__}: {exc}"
        return None

    def executed(self, e: _Entry, notebook: str) -> str:
        folder = self.folder(self.files.executed)
        if folder is None:
            return ""
        name = f"{_safe_name(e.student, 40)}--{_safe_name(e.name, 60)}"
        if not name.lower().endswith(".ipynb"):
            name += ".ipynb"
        written = self.write(folder / name, notebook.encode("utf-8"))
        return str(written) if written else ""

    def original(self, sha: str, data: bytes) -> None:
        folder = self.folder(self.files.originals)
        if folder is not None and not (folder / sha).is_file():
            self.write(folder / sha, data, private=True)


class _Journal:
    """The append-only record of started and finished submissions (for resuming)."""

    def __init__(self, files: OutputFiles) -> None:
        self.paths = [files.journal, _recovered(files.journal)]
        self.target = files.journal

    def append(self, event: dict[str, Any]) -> None:
        event = {"v": 1, "time": _now(), **event}
        line = (json.dumps(event) + "\n").encode("utf-8")
        for path in dict.fromkeys([self.target, *self.paths]):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                continue
            if path != self.target:
                print(f"mlmprimer-grade: journal continued in {path}", file=sys.stderr)
                self.target = path
            return

    def events(self) -> list[dict[str, Any]]:
        out = []
        for path in self.paths:
            try:
                lines = path.read_bytes().splitlines()
            except OSError:
                continue
            for line in lines:
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict):
                        out.append(event)
        return sorted(out, key=lambda ev: str(ev.get("time", "")))

    def load(self) -> dict[str, dict[str, Any]]:
        """``key -> {"done": result or None, "open": starts not followed by an end}``."""
        state: dict[str, dict[str, Any]] = {}
        for ev in self.events():
            key = ev.get("key")
            if not isinstance(key, str):
                continue
            item = state.setdefault(key, {"done": None, "open": []})
            if ev.get("type") == "start":
                item["open"].append(ev)
            elif ev.get("type") == "done" and isinstance(ev.get("result"), dict):
                item["done"], item["open"] = ev["result"], []
            elif ev.get("type") == "abort" and item["open"]:
                item["open"].pop()
        return state

    def seen(self) -> dict[str, str]:
        """``path -> sha256`` of each file when this batch first read it."""
        out: dict[str, str] = {}
        for ev in self.events():
            if ev.get("type") == "seen" and isinstance(ev.get("files"), dict):
                for path, sha in ev["files"].items():
                    out.setdefault(str(path), str(sha))
        return out

    def note_seen(self, entries: list[_Entry]) -> None:
        known = self.seen()
        new = {e.path: e.sha256 for e in entries if e.sha256 and e.path not in known}
        if new:
            self.append({"type": "seen", "files": new})

    def restart(self) -> None:
        for path in self.paths:
            with contextlib.suppress(OSError):
                path.unlink()


# --------------------------------------------------------------------------------------------
# rendering the reports
# --------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8")


def _row_values(r: Row) -> tuple[Any, ...]:
    return (r.student, r.notebook, r.question, r.score, r.max_score, r.status, r.message)


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass
class _Student:
    """One student's line of the wide file."""

    student: str
    lms_id: str = ""
    email: str = ""
    entries: list[_Entry] = field(default_factory=list)
    chosen: _Entry | None = None
    status: str = ""
    notes: list[str] = field(default_factory=list)
    rows: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def total(self) -> float | None:
        if self.chosen is None or self.status in ("absent", "duplicate"):
            return None
        return sum(float(r[1]) for r in self.rows.values())

    @property
    def max_total(self) -> float:
        return sum(float(r[2]) for r in self.rows.values())


def _long_rows(batch: _Batch, hand: dict[tuple[str, str], dict[str, str]]) -> list[Row]:
    rows = []
    for e in batch.entries:
        for r in _entry_rows(batch, e, hand):
            rows.append(Row(e.student, e.name, str(r[0]), float(r[1]), float(r[2]), r[3], r[4]))
    for a in _absent(batch):
        for qid, _s, points, status, message in _question_rows_multi(batch, "absent"):
            rows.append(Row(a["student"], "", qid, 0.0, points, status, message))
    return rows


def _question_rows_multi(batch: _Batch, status: str) -> list[list[Any]]:
    out: list[list[Any]] = []
    for chapter in batch.batch_chapters or [None]:
        out += _question_rows(chapter, status, "no submission found for this student")
    return out


def _entry_rows(
    batch: _Batch,
    e: _Entry,
    hand: dict[tuple[str, str], dict[str, str]],
    for_student: bool = False,
) -> list[list[Any]]:
    """The rows of an entry as they stand: hand scores applied, notes added to the messages
    (and, but not ``for_student``, the problems the instructor should see)."""
    if e.state == "pending":
        return _question_rows(
            e.scored_as,
            "pending",
            "not graded yet: the run stopped before this notebook; run the same command "
            "again to go on",
        )
    if e.state == "running":
        return _question_rows(
            e.scored_as,
            "crashed",
            "grading had not finished when the grader stopped (the notebook may have ended "
            "the grader's process); run the same command again: it is then run once more, "
            "on its own",
        )
    out = []
    extra = list(e.notes) if for_student else [*e.notes, *e.problems]
    for r in e.rows:
        qid, score, points, status, message = r[0], float(r[1]), float(r[2]), r[3], r[4]
        if extra:
            message = f"{message} [{'; '.join(extra)}]"
        mark = hand.get((_key(e.student), qid))
        if mark is not None and points > 0:
            old = f"{status} {_fmt(score)}/{_fmt(points)}"
            score = min(points, max(0.0, float(mark["hand_score"])))
            comment = mark.get("comment", "").strip()
            status = "hand-graded"
            message = f"graded by hand{': ' + comment if comment else ''} (was {old}: {message})"
        out.append([qid, score, points, status, message])
    return out


def _absent(batch: _Batch) -> list[dict[str, str]]:
    """The roster's students who handed in nothing (computed once: names do not change)."""
    if batch.absent is None:
        handed = {(_key(e.student), e.lms_id) for e in batch.entries}
        batch.absent = [
            person
            for person in batch.roster
            if not any(_roster_match([person], s, i) for s, i in handed)
        ]
    return batch.absent


def _students(batch: _Batch, hand: dict[tuple[str, str], dict[str, str]]) -> list[_Student]:
    groups: dict[str, _Student] = {}
    for e in batch.entries:
        s = groups.setdefault(_key(e.student), _Student(e.student, e.lms_id, e.email))
        s.entries.append(e)
        s.lms_id = s.lms_id or e.lms_id
        s.email = s.email or e.email
    for s in groups.values():
        counted = [e for e in s.entries if not e.extra]
        scored = {id(e): _entry_rows(batch, e, hand) for e in counted}
        totals = {id(e): sum(float(r[1]) for r in scored[id(e)]) for e in counted}
        if len(counted) > 1 and batch.options.duplicates == "best":
            s.chosen = max(counted, key=lambda e: totals[id(e)])
            s.notes.append(f"{len(counted)} submissions; the best ({s.chosen.file}) counts")
        elif len(counted) > 1:
            s.chosen = counted[0]
            s.status = "duplicate"
            s.notes.append(
                f"{len(counted)} submissions ({', '.join(e.file for e in counted)}): no total "
                "is given; remove all but one, or grade with --duplicates best"
            )
        else:
            s.chosen = counted[0]
        s.rows = {str(r[0]): r for r in scored[id(s.chosen)]}
        if not s.status:
            found = {str(r[3]) for r in s.rows.values()} & set(_NOTABLE)
            s.status = ", ".join(sorted(found)) or "graded"
        for e in s.entries:
            s.notes += [p for p in e.problems if p not in s.notes]
    out = list(groups.values())
    for person in _absent(batch):
        s = _Student(person["student"], person.get("id", ""), person.get("email", ""))
        s.status = "absent"
        s.notes.append("no submission found")
        s.rows = {str(r[0]): r for r in _question_rows_multi(batch, "absent")}
        out.append(s)
    return out


def _questions(batch: _Batch) -> list[Question]:
    check = _check()
    chapters = set(batch.batch_chapters)
    for e in batch.entries:
        if e.scored_as:
            chapters.add(e.scored_as)
    return [q for q in check.QUESTIONS.values() if q.chapter in chapters]


def _render_wide(batch: _Batch, students: list[_Student]) -> bytes:
    qs = _questions(batch)
    header = [
        "student",
        "id",
        "file",
        "chapter",
        *[q.qid for q in qs],
        "total",
        "max_total",
        "percent",
        "status",
        "to_grade_by_hand",
        "notes",
    ]
    lines = []
    for s in students:
        values = []
        for q in qs:
            r = s.rows.get(q.qid)
            values.append(_fmt(float(r[1])) if r is not None and s.total is not None else "")
        total = s.total
        max_total = s.max_total or sum(q.points for q in qs if q.chapter in batch.batch_chapters)
        hand_todo = [q for q, r in s.rows.items() if r[3] == "recorded"]
        lines.append(
            [
                s.student,
                s.lms_id,
                "; ".join(e.file for e in s.entries),
                (s.chosen.scored_as or s.chosen.chapter or "") if s.chosen else "",
                *values,
                _fmt(total) if total is not None else "",
                _fmt(max_total),
                f"{100 * total / max_total:.1f}" if total is not None and max_total else "",
                s.status,
                " ".join(hand_todo),
                "; ".join(s.notes),
            ]
        )
    return _csv(header, lines)


def _short_feedback(s: _Student) -> str:
    if s.status == "absent":
        return "No submission found."
    if s.total is None:
        return "Not scored: " + "; ".join(s.notes)
    labels = []
    for qid, r in s.rows.items():
        labels.append(f"{qid} {_fmt(float(r[1]))}/{_fmt(float(r[2]))} {r[3]}")
    return f"{_fmt(s.total)} of {_fmt(s.max_total)} points. " + "; ".join(labels)


def _render_lms(batch: _Batch, students: list[_Student]) -> bytes:
    fmt = batch.options.lms
    header = list(LMS_FORMATS[fmt])
    lines = []
    if fmt == "canvas":
        chapter = "/".join(batch.batch_chapters) or "?"
        header.append(batch.options.assignment or f"mlmprimer chapter {chapter}")
        for s in students:
            score = _fmt(s.total) if s.total is not None else ""
            lines.append([s.student, s.lms_id, "", "", "", score])
        return _csv(header, lines)
    for s in students:
        total = s.total
        lines.append(
            [
                s.student,
                s.lms_id,
                s.email,
                _fmt(total) if total is not None else "",
                _fmt(s.max_total),
                f"{100 * total / s.max_total:.1f}" if total is not None and s.max_total else "",
                s.status,
                _short_feedback(s),
            ]
        )
    return _csv(header, lines)


def _md(text: Any) -> str:
    """Text safe to put in Markdown that may be shown as HTML."""
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
    )


_STATUS_LABEL = {
    "correct": "correct",
    "partial": "partly right",
    "incorrect": "not right yet",
    "unanswered": "not answered",
    "recorded": "answer in words: graded by hand",
    "hand-graded": "graded by hand",
    "missing": "no answer found",
    "timeout": "not reached in time",
    "crashed": "the notebook stopped",
    "empty": "empty",
    "invalid": "not a readable notebook",
    "wrong-chapter": "another chapter's notebook",
    "error": "could not be checked",
    "pending": "not graded yet",
    "absent": "no submission",
}


def _render_feedback(
    batch: _Batch, s: _Student, hand: dict[tuple[str, str], dict[str, str]]
) -> bytes:
    check = _check()
    rows = s.rows
    if s.chosen is not None and s.status != "absent":
        rows = {str(r[0]): r for r in _entry_rows(batch, s.chosen, hand, for_student=True)}
    lines = [f"# Feedback for {_md(s.student)}", ""]
    if s.chosen is not None:
        lines.append(f"- notebook: `{_md(s.chosen.file)}`")
        chapter = s.chosen.scored_as or s.chosen.chapter
        if chapter:
            lines.append(f"- chapter: {chapter}")
    if s.total is not None:
        lines.append(f"- score: **{_fmt(s.total)} of {_fmt(s.max_total)}**")
    else:
        lines.append("- score: not given yet")
    lines.append("")
    for qid, r in rows.items():
        q = check.QUESTIONS.get(qid)
        title = f"{q.label}: {q.title}" if q else (qid or "the file")
        status = _STATUS_LABEL.get(str(r[3]), str(r[3]))
        lines += [
            f"## {_md(title)}",
            "",
            f"{_fmt(float(r[1]))} of {_fmt(float(r[2]))} points: {_md(status)}.",
            "",
            _md(r[4]),
            "",
        ]
    notes = []
    if s.status == "duplicate":
        notes.append(
            "More than one notebook of yours was found; your instructor decides which counts."
        )
    if s.status == "absent":
        notes.append("No notebook of yours was found in this batch.")
    if any(r[3] == "recorded" for r in rows.values()):
        notes.append("Answers in words are read and graded by your instructor.")
    if notes:
        lines += ["## Notes", "", *[f"- {_md(n)}" for n in notes], ""]
    return "\n".join(lines).encode("utf-8")


def _render_texts(batch: _Batch, hand: dict[tuple[str, str], dict[str, str]]) -> bytes:
    check = _check()
    header = ["student", "notebook", "question", "title", "points", "words", "answer"]
    header += ["hand_score", "comment"]
    lines = []
    for e in batch.entries:
        for qid, text in e.texts.items():
            q = check.QUESTIONS.get(qid)
            mark = hand.get((_key(e.student), qid), {})
            lines.append(
                [
                    e.student,
                    e.name,
                    qid,
                    q.title if q else "",
                    _fmt(q.points) if q else "",
                    len(text.split()),
                    text,
                    mark.get("hand_score", ""),
                    mark.get("comment", ""),
                ]
            )
    return _csv(header, lines)


def _render_summary(batch: _Batch, students: list[_Student], rows: list[Row]) -> bytes:
    files = batch.files
    assert files is not None
    graded = [e for e in batch.entries if e.kind == "notebook"]
    pending = [e for e in batch.entries if e.state in ("pending", "running")]
    lines = [f"# Grading summary: {files.scores.name}", ""]
    state = "complete" if batch.complete else f"NOT complete: {len(pending)} not graded yet"
    if batch.interrupted:
        state += " (interrupted)"
    lines += [
        f"- run: started {batch.started}, written {_now()}; {state}",
        f"- chapter: {', '.join(batch.batch_chapters) or '?'} ({batch.scope_source or 'unknown'})",
        f"- files: {len(batch.entries)} ({len(graded)} notebooks); "
        f"{len(batch.ignored)} left out (hidden or system files)",
        f"- students: {len(students)}"
        + (f" (roster: {len(batch.roster)})" if batch.roster else ""),
        f"- limits: {_fmt(batch.settings.timeout)} s per notebook, "
        + (
            f"{_fmt(batch.settings.cell_timeout)} s per cell"
            if batch.settings.cell_timeout
            else "no limit per cell"
        )
        + f"; kernel {batch.settings.kernel}; {batch.options.jobs} at a time",
        "",
        "## Students",
        "",
        "| student | score | of | status |",
        "| --- | ---: | ---: | --- |",
    ]
    for s in students:
        score = _fmt(s.total) if s.total is not None else ""
        lines.append(f"| {_md(s.student)} | {score} | {_fmt(s.max_total)} | {_md(s.status)} |")
    lines += ["", "## Questions", ""]
    lines += ["| question | points | mean | statuses |", "| --- | ---: | ---: | --- |"]
    by_q: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.question and r.status not in ("absent", "pending"):
            by_q[r.question].append(r)
    for q in _questions(batch):
        got = by_q.get(q.qid, [])
        mean = sum(r.score for r in got) / len(got) if got else 0.0
        counts = Counter(r.status for r in got)
        listed = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"| {q.qid} | {_fmt(q.points)} | {mean:.2f} | {listed} |")
    problems = [*batch.problems, *batch.notices]
    for e in batch.entries:
        problems += [f"`{_md(e.file)}`: {_md(p)}" for p in e.problems]
        odd = sorted({str(r[3]) for r in e.rows} & set(_NOTABLE) - {"wrong-chapter"})
        if odd and e.state != "pending":
            problems.append(f"`{_md(e.file)}`: {', '.join(odd)}: {_md(e.rows[0][4])[:300]}")
    for a in _absent(batch):
        problems.append(f"{_md(a['student'])}: on the roster, but handed in nothing")
    if batch.writer is not None:
        for path, moved in batch.writer.moved.items():
            problems.append(f"output `{_md(path)}` was blocked; written to `{_md(moved)}`")
        for path, error in batch.writer.failed.items():
            problems.append(f"output `{_md(path)}` could not be written: {_md(error)}")
    identical: dict[str, list[str]] = defaultdict(list)
    for e in graded:
        if e.sha256:
            identical[e.sha256].append(e.student)
    for names in identical.values():
        if len({_key(n) for n in names}) > 1:
            problems.append("identical files handed in by " + ", ".join(map(_md, names)))
    lines += ["", f"## Problems ({len(problems)})", ""]
    lines += [f"- {p}" for p in problems] or ["- none"]
    todo = sum(1 for r in rows if r.status == "recorded")
    lines += ["", "## To do", ""]
    if todo:
        lines.append(
            f"- {todo} answers in words to grade by hand: fill in `hand_score` in "
            f"`{files.texts.name}`, then run `mlmprimer-grade merge --out {files.scores} "
            f"{files.texts}`"
        )
    if pending:
        lines.append("- run the same command again to grade the rest")
    if not todo and not pending:
        lines.append("- nothing")
    lines += ["", "## Files", ""]
    for name, path in files.all().items():
        if batch.writer is not None:
            path = batch.writer.where(path)
        lines.append(f"- {name}: `{_md(path)}`")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("mlmprimer", "numpy", "pandas", "scipy", "statsmodels", "nbclient", "ipykernel"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def _render_record(batch: _Batch) -> bytes:
    record = {
        "format": 1,
        "grader": _versions(),
        "command": batch.argv,
        "started": batch.started,
        "written": _now(),
        "complete": batch.complete,
        "settings": asdict(batch.settings),
        "options": asdict(batch.options),
        "scope": batch.scope,
        "batch_chapters": batch.batch_chapters,
        "entries": [e.record() for e in batch.entries],
        "ignored": batch.ignored,
        "roster": batch.roster,
        "problems": batch.problems,
        "isolation": {
            "platform": sys.platform,
            "process_table": os.path.isdir("/proc"),
            "run_as": batch.settings.run_as,
        },
    }
    # laid out for reading once the run is over; compact (and quick) while it runs
    return json.dumps(record, indent=1 if batch.complete else None).encode("utf-8")


def _texts_edited(batch: _Batch, hand: dict[tuple[str, str], dict[str, str]]) -> bool:
    """Whether the text-answers file holds hand scores not merged yet (never overwrite those)."""
    assert batch.files is not None and batch.writer is not None
    path = batch.writer.where(batch.files.texts)
    if not path.is_file():
        return False
    with contextlib.suppress(OSError, ValueError, csv.Error):
        for mark in _read_hand_file(path):
            known = hand.get((_key(mark["student"]), mark["question"]))
            if known is None or known.get("hand_score") != mark["hand_score"]:
                return True
    return False


def _publish(batch: _Batch) -> None:
    """Rewrite every output file from the batch as it is now."""
    files, writer = batch.files, batch.writer
    assert files is not None and writer is not None
    hand = _load_hand(writer.where(files.hand))
    rows = _long_rows(batch, hand)
    writer.write(files.scores, _csv(COLUMNS, map(_row_values, rows)), sync=True)
    students = _students(batch, hand)
    writer.write(files.wide, _render_wide(batch, students))
    writer.write(files.lms, _render_lms(batch, students))
    if any(e.texts for e in batch.entries):
        if _texts_edited(batch, hand):
            fresh = _sibling_new(files.texts)
            writer.write(fresh, _render_texts(batch, hand))
            notice = (
                f"`{files.texts.name}` holds hand scores not merged yet, so it was left as it "
                f"is (a fresh copy is `{fresh.name}`): run `mlmprimer-grade merge --out "
                f"{files.scores} {files.texts}`"
            )
            if notice not in batch.notices:
                batch.notices.append(notice)
        else:
            writer.write(files.texts, _render_texts(batch, hand))
    folder = writer.folder(files.feedback)
    if folder is not None:
        used: set[str] = set()
        for s in students:
            name = _safe_name(s.student, 60)
            while name.lower() in used:
                name += "_"
            used.add(name.lower())
            writer.write(folder / f"{name}.md", _render_feedback(batch, s, hand))
    writer.write(files.record, _render_record(batch))
    writer.write(files.summary, _render_summary(batch, students, rows))


def _sibling_new(path: Path) -> Path:
    return path.with_name(f"{path.stem}.new{path.suffix}")


# --------------------------------------------------------------------------------------------
# roster and hand scores
# --------------------------------------------------------------------------------------------


def _read_roster(path: Path) -> list[dict[str, str]]:
    """Students expected: a CSV with a ``student`` (or ``name``) column and optionally ``id`` and
    ``email``, or a plain list, one name a line."""
    text = path.read_text(encoding="utf-8-sig")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    head = [h.strip().lower() for h in next(csv.reader([lines[0]]))]
    names = {"student", "name", "full name", "login", "username"}
    if not names & set(head):
        return [{"student": line.strip(), "id": "", "email": ""} for line in lines]
    out = []
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k}
        student = next(
            (row[k] for k in ("student", "name", "full name", "login", "username") if row.get(k)),
            "",
        )
        if student:
            lms_id = row.get("id", "") or row.get("student id", "") or row.get("user id", "")
            out.append({"student": student, "id": lms_id, "email": row.get("email", "")})
    return out


def _roster_match(roster: list[dict[str, str]], student: str, lms_id: str) -> dict[str, str] | None:
    """The roster line of a student: same LMS id, or the same name (``Smith, Jane`` matches
    ``smithjane`` and ``Jane Smith``)."""
    key = _key(student)
    for person in roster:
        if lms_id and person.get("id") and person["id"] == lms_id:
            return person
    for person in roster:
        name = person["student"]
        forms = {_key(name)}
        if "," in name:
            last, first = name.split(",", 1)
            forms |= {_key(first + last), _key(last + first)}
        else:
            parts = name.split()
            if len(parts) > 1:
                forms.add(_key(parts[-1] + "".join(parts[:-1])))
        if key in forms:
            return person
    return None


def _read_hand_file(path: Path) -> list[dict[str, str]]:
    """Rows of a hand-score file with a ``hand_score`` filled in."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = {str(f).strip().lower() for f in reader.fieldnames or []}
        if not {"student", "question", "hand_score"} <= fields:
            raise ValueError(f"{path}: needs the columns student, question and hand_score")
        out = []
        for raw in reader:
            row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            if row.get("hand_score"):
                row["student"] = row["student"].removeprefix("'")
                out.append(row)
        return out


def _load_hand(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    if not path.is_file():
        return {}
    out = {}
    with contextlib.suppress(OSError, ValueError, csv.Error):
        for row in _read_hand_file(path):
            with contextlib.suppress(ValueError):
                float(row["hand_score"])
                out[(_key(row["student"]), row["question"])] = row
    return out


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


# --------------------------------------------------------------------------------------------
# the public functions
# --------------------------------------------------------------------------------------------


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
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "s.csv"
    >>> _ = write_csv([Row("ann", "04-icc.ipynb", "ex04_1", 1.0, 1.0, "correct", "right")], out)
    >>> out.read_text().splitlines()[0]
    'student,notebook,question,score,max_score,status,message'
    """
    out = Path(out)
    _atomic_write(out, _csv(COLUMNS, map(_row_values, rows)))
    return out


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _grade_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlmprimer-grade",
        description=(
            "Run submitted exercise notebooks and score them. This EXECUTES STUDENT CODE under "
            "your account: grade in a container (grading/Dockerfile) or a throwaway VM without "
            "network. `mlmprimer-grade merge --help` merges scores given by hand."
        ),
    )
    parser.add_argument("submissions", nargs="+", help="notebooks, or folders of them")
    parser.add_argument(
        "--out",
        default="scores.csv",
        help="the scores file; every other output sits next to it with the same stem "
        "(default scores.csv; a name without .csv is a folder)",
    )
    parser.add_argument("--chapter", help="grade this chapter only (04, A1 ...)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per notebook (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=DEFAULT_CELL_TIMEOUT,
        help=f"seconds per cell (default {DEFAULT_CELL_TIMEOUT:g}; 0: no limit per cell)",
    )
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel (python3)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at the same time")
    parser.add_argument(
        "--names",
        default="auto",
        help="how to name students from file names: auto (default), canvas, moodle, "
        "blackboard, plain, or a regular expression with (?P<student>...)",
    )
    parser.add_argument("--roster", help="CSV (student[,id,email]) or list of expected students")
    parser.add_argument(
        "--duplicates",
        choices=("flag", "best"),
        default="flag",
        help="several notebooks of one student: flag (no total, reported) or best",
    )
    parser.add_argument(
        "--lms",
        choices=sorted(LMS_FORMATS),
        default="generic",
        help="columns of the LMS export: generic (default) or canvas",
    )
    parser.add_argument("--assignment", help="the assignment's column name (--lms canvas)")
    parser.add_argument(
        "--hand", action="append", default=[], metavar="FILE", help="merge hand scores from FILE"
    )
    parser.add_argument("--fresh", action="store_true", help="forget earlier results of --out")
    parser.add_argument(
        "--retry-stopped",
        action="store_true",
        help="run again a notebook that stopped the grader in an earlier run",
    )
    parser.add_argument(
        "--accept-changed",
        action="store_true",
        help="grade files changed since this batch first read them as they are now",
    )
    parser.add_argument("--memory", type=int, help="address-space limit of a kernel, in MB")
    parser.add_argument(
        "--run-as",
        metavar="USER",
        help="run the notebooks as this account (user[:group] or uid[:gid]); needs the grader "
        "to run as root, as in the container",
    )
    parser.add_argument("--scratch", help="folder for the temporary run directories")
    parser.add_argument(
        "--pass-env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this environment variable on to the kernels",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-submission lines")
    return parser


def _main_merge(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mlmprimer-grade merge",
        description="Merge scores given by hand (columns student, question, hand_score and "
        "optionally comment) into a graded batch, and rewrite its outputs.",
    )
    parser.add_argument("hand", nargs="+", help="CSV files of hand scores")
    parser.add_argument("--out", default="scores.csv", help="the batch's --out (scores.csv)")
    args = parser.parse_args(argv)
    files = output_files(args.out)
    if not files.record.is_file() and not _recovered(files.record).is_file():
        parser.error(f"no graded batch at {args.out} (its {files.record.name} is missing)")
    problems = merge_hand_scores(args.out, args.hand)
    for problem in problems:
        print(f"mlmprimer-grade merge: {problem}", file=sys.stderr)
    print(f"merged hand scores into {files.scores} ({len(problems)} problems)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``mlmprimer-grade`` and ``python -m mlmprimer.grade``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``). ``merge ...`` merges hand scores.

    Returns
    -------
    int
        0 when every output was written where asked (whatever the submissions were like); 1 when
        an output had to be written elsewhere (it says where); 2 on bad usage; 130 when
        interrupted (run the same command again to go on).

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
    _quick_notebook_import()
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["merge"]:
        return _main_merge(args_list[1:])
    if args_list[:1] == ["grade"]:
        args_list = args_list[1:]
    parser = _grade_parser()
    args = parser.parse_args(args_list)
    if args.timeout <= 0 or (args.cell_timeout is not None and args.cell_timeout < 0):
        parser.error("time limits must be positive")
    if args.chapter and _normal_chapter(args.chapter) not in _known_chapters():
        parser.error(f"no exercises for chapter {args.chapter!r}")
    if args.names not in ("auto", "plain", *NAME_RULES):
        try:
            if "student" not in re.compile(args.names).groupindex:
                parser.error("--names: the expression needs a group (?P<student>...)")
        except re.error as exc:
            parser.error(f"--names: {exc}")
    if args.roster and not Path(args.roster).is_file():
        parser.error(f"--roster: no file {args.roster}")
    run_as = None
    if args.run_as:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            parser.error("--run-as needs the grader to run as root")
        try:
            run_as = _account(args.run_as)
        except (KeyError, ValueError) as exc:
            parser.error(f"--run-as: no such account {args.run_as!r} ({exc})")
        if run_as[0] == 0:
            parser.error("--run-as: choose an account other than root")
        blocked = _blocked_for(
            run_as, [Path(sys.executable), Path(sys.base_prefix) / "lib", Path(__file__).parent]
        )
        if blocked:
            parser.error(
                f"--run-as: {args.run_as} cannot reach {blocked}, which the notebooks need "
                "(install Python and the course where every account can read them, as the "
                "container does)"
            )
    settings = _Settings(
        timeout=args.timeout,
        cell_timeout=args.cell_timeout or None,
        kernel=args.kernel,
        memory_mb=args.memory,
        run_as=run_as,
        scratch=args.scratch,
        pass_env=tuple(args.pass_env),
    )
    options = _Options(
        chapter=args.chapter,
        names=args.names,
        roster=args.roster,
        duplicates=args.duplicates,
        lms=args.lms,
        assignment=args.assignment,
        fresh=args.fresh,
        retry_stopped=args.retry_stopped,
        accept_changed=args.accept_changed,
        hand=tuple(args.hand),
        jobs=max(1, args.jobs),
        progress=not args.quiet,
    )
    try:
        batch = _Batch(args.submissions, args.out, settings, options, argv=args_list)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if not batch.entries:
        parser.error("no files found in the submissions given")
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        batch.run()
    except KeyboardInterrupt:
        batch.publish()
        print("mlmprimer-grade: interrupted; run the same command again to go on", file=sys.stderr)
        return 130
    except ValueError as exc:  # no such kernel
        parser.error(str(exc))
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    if options.hand:
        for problem in merge_hand_scores(args.out, options.hand):
            print(f"mlmprimer-grade: hand scores: {problem}", file=sys.stderr)
    assert batch.writer is not None
    files = batch.files
    assert files is not None
    if not args.quiet:
        where = batch.writer.where(files.scores)
        print(f"wrote scores of {len(batch.entries)} files to {where}; see {files.summary}")
    return 1 if batch.writer.moved or batch.writer.failed else 0


def _quick_notebook_import() -> None:
    """Skip jsonschema's URI grammar when nothing has loaded jsonschema yet.

    Reading a notebook loads jsonschema, which builds a grammar for URI formats that takes
    seconds and that notebook files never use; the grader's own process does not need it.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
