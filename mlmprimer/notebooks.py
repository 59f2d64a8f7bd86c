"""Exercise and solution notebooks: write the student versions, re-execute notebooks in place.

Every chapter ``NN-topic`` has one worked notebook, ``solutions/NN-topic.ipynb``. It is the single
source of the exercises: the student notebook ``exercises/NN-topic.ipynb`` is *written from it* by

.. code-block:: console

    python -m mlmprimer.notebooks exercises            # (``make exercises``)
    python -m mlmprimer.notebooks exercises --check    # exit 1 if a committed copy is stale

and is never edited by hand. A new chapter needs nothing but a new ``solutions/NN-topic.ipynb``
(and its checks in :mod:`mlmprimer.check`).

How a solution notebook marks what students must not see
--------------------------------------------------------

``# BEGIN SOLUTION`` ... ``# END SOLUTION`` (code cells)
    The lines in between are replaced by one placeholder per variable the region assigns, e.g.
    ``tau2 = ...  # your code here``; a variable whose solution value is a string literal gets
    empty quotes and what its check accepts, taken from the check's registration
    (:attr:`mlmprimer.check.Question.answers`): ``prediction_se = ""  # your prediction, one of
    "larger", "smaller" or "same"``, or ``answer_x = ""  # your answer, in words (at least 30
    words), between the quotes``. Helper variables whose names start with ``_`` get no
    placeholder. A region that assigns nothing becomes ``# your code here``.
``expr  # SOLUTION`` (one line of a code cell)
    The same for one assignment: ``x = 3.5  # SOLUTION`` becomes ``x = ...  # your code here``.
cell tag ``solution``
    A code cell is treated as one region. A markdown cell (the worked answer in words, usually a
    ``{admonition}`` with ``:class: dropdown``) is replaced by a prompt cell, "Your answer: ...".
cell tag ``solution-only``
    The cell is left out of the student notebook (e.g. an extra figure in the worked answer).
cell tag ``exercise-only``
    The cell appears only in the student notebook. Tag it ``remove-cell`` as well, so the book's
    solutions page does not show it (the tag is dropped from the student copy).

The task text (a markdown cell that names a variable answered in words, such as ``answer_x``) gets
one more sentence with the fewest words the check accepts, so that it is never typed by hand.

The student notebook has no outputs, no execution counts, and none of the tags that only the book
or nbval read (``hide-cell``, ``hide-input``, ``remove-output``, ``nbval-*`` ...). Its notebook
metadata carries ``mlmprimer.kind = "exercise"`` and ``mlmprimer.chapter = "NN"``, which the grader
(:mod:`mlmprimer.grade`) reads.

Re-executing notebooks
----------------------

.. code-block:: console

    python -m mlmprimer.notebooks execute book/*.ipynb solutions/*.ipynb     # (``make execute``)

runs each notebook top to bottom in a fresh ``python3`` kernel (nbclient), in the notebook's own
directory, and writes it back with its new outputs. Any error or anything written to stderr (a
warning) is reported and makes the command exit with status 1: committed notebooks show neither.
Student notebooks in ``exercises/`` are skipped (they are kept without outputs).
"""

from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

__all__ = [
    "ExerciseError",
    "Problem",
    "chapter_of",
    "execute_notebook",
    "exercise_path",
    "find_solutions",
    "lint_solution",
    "main",
    "make_exercise",
    "notebook_text",
    "project_root",
    "write_exercises",
]

BEGIN = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b")
END = re.compile(r"^[ \t]*#\s*END SOLUTION\b")
ONE_LINE = re.compile(r"^(?P<code>.*?)\s*#\s*SOLUTION\s*$")
CHAPTER_NAME = re.compile(r"^(?P<chapter>\d{2}|A\d)-[a-z0-9][a-z0-9-]*$")

#: Tags that only the book build, nbval or the solution notebook read.
STRIP_TAGS = frozenset(
    {
        "solution",
        "exercise-only",
        "hide-cell",
        "hide-input",
        "hide-output",
        "remove-input",
        "remove-output",
        "remove-cell",
        "full-width",
        "margin",
        "raises-exception",
        "nbval-ignore-output",
        "nbval-check-output",
        "nbval-skip",
        "nbval-raises-exception",
    }
)

PLACEHOLDER = "...  # your code here"
TEXT_PLACEHOLDER = '""  # your answer, in words, between the quotes'
PROMPT = (
    "**Your answer:** *double-click this cell and write your answer here. "
    "Your instructor reads it.*"
)


class ExerciseError(ValueError):
    """A solution notebook whose solution markers cannot be turned into an exercise."""


# ------------------------------------------------------------------------------------------
# locations
# ------------------------------------------------------------------------------------------


def project_root() -> Path:
    """The course repository: the folder holding ``solutions/`` next to the library.

    Falls back to the current directory when the library is installed elsewhere.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> (project_root() / "mlmprimer").is_dir() or (project_root() / "solutions").is_dir()
    True
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "solutions").is_dir():
        return here
    return Path.cwd()


def find_solutions(root: Path | str | None = None) -> list[Path]:
    """The solution notebooks ``solutions/NN-topic.ipynb`` of the course, in chapter order.

    Parameters
    ----------
    root : path, optional
        The repository (default: :func:`project_root`).

    Returns
    -------
    list of pathlib.Path

    Examples
    --------
    >>> all(chapter_of(p) for p in find_solutions())
    True
    """
    folder = Path(root or project_root()) / "solutions"
    return sorted(p for p in folder.glob("*.ipynb") if CHAPTER_NAME.match(p.stem))


def exercise_path(solution: Path | str) -> Path:
    """Where the student version of a solution notebook lives.

    Examples
    --------
    >>> exercise_path("solutions/04-icc.ipynb").as_posix()
    'exercises/04-icc.ipynb'
    """
    solution = Path(solution)
    return solution.parent.parent / "exercises" / solution.name


def chapter_of(path: Path | str) -> str | None:
    """The two-digit chapter of a notebook named ``NN-topic.ipynb`` (else None).

    Examples
    --------
    >>> chapter_of("solutions/03-null-model.ipynb")
    '03'
    >>> chapter_of("solutions/A1-how-lmer-fits.ipynb")
    'A1'
    >>> chapter_of("book/index.md") is None
    True
    """
    match = CHAPTER_NAME.match(Path(path).stem)
    return match.group("chapter") if match else None


# ------------------------------------------------------------------------------------------
# solution -> exercise
# ------------------------------------------------------------------------------------------


def _is_text(node: ast.expr | None) -> bool:
    """Whether an assigned value is a string literal (possibly implicitly concatenated)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_text(node.left) and _is_text(node.right)
    if isinstance(node, ast.IfExp):  # one text or another, as the data say (per-student data)
        return _is_text(node.body) and _is_text(node.orelse)
    return False


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [name for elt in target.elts for name in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _assigned(code: str, where: str) -> list[tuple[str, bool]]:
    """``(name, is_text)`` for each top-level variable a piece of code assigns, in order."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError as exc:
        raise ExerciseError(
            f"{where}: the solution region is not valid Python ({exc.msg})"
        ) from exc
    found: dict[str, bool] = {}
    for stmt in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
            targets, value = [stmt.target], stmt.value
        for target in targets:
            for name in _target_names(target):
                if name.startswith("_"):
                    continue
                # a tuple target's parts are never text
                text = isinstance(target, ast.Name) and _is_text(value)
                found[name] = found.get(name, False) or text
    return list(found.items())


def _answers(chapter: str | None) -> dict[str, Any]:
    """How each text variable of a chapter's checks is answered (``{name: Answer}``)."""
    if chapter is None:
        return {}
    from mlmprimer import check

    return {n: a for q in check.questions(chapter) for n, a in q.answers.items()}


def _text_placeholder(name: str, answers: Mapping[str, Any]) -> str:
    answer = answers.get(name)
    return f'""  # {answer.instruction}' if answer is not None else TEXT_PLACEHOLDER


def _placeholders(
    code: str, indent: str, where: str, answers: Mapping[str, Any] | None = None
) -> list[str]:
    names = _assigned(code, where)
    if not names:
        return [f"{indent}pass  # your code here" if indent else "# your code here"]
    answers = answers or {}
    return [
        f"{indent}{name} = {_text_placeholder(name, answers) if text else PLACEHOLDER}"
        for name, text in names
    ]


def _word_minimum(source: str, answers: Mapping[str, Any]) -> str:
    """The task text with the fewest words of each answer in words it names, from the check."""
    added = [
        f"Write at least {answer.min_words} words in `{name}`; the check does not accept a "
        "shorter answer."
        for name, answer in answers.items()
        if not answer.options and f"`{name}`" in source
    ]
    return "\n\n".join([source.rstrip("\n"), *added]) if added else source


def _strip_source(source: str, where: str, answers: Mapping[str, Any] | None = None) -> str:
    """Replace the solution regions and one-line solutions of a code cell's source."""
    out: list[str] = []
    region: list[str] | None = None
    indent = ""
    for lineno, line in enumerate(source.splitlines(), start=1):
        begin = BEGIN.match(line)
        if region is None and begin:
            region, indent = [], begin.group("indent")
            continue
        if region is not None:
            if BEGIN.match(line):
                raise ExerciseError(f"{where}, line {lineno}: BEGIN SOLUTION inside a region")
            if END.match(line):
                out.extend(_placeholders("\n".join(region), indent, where, answers))
                region = None
                continue
            region.append(line)
            continue
        if END.match(line):
            raise ExerciseError(f"{where}, line {lineno}: END SOLUTION without BEGIN SOLUTION")
        one = ONE_LINE.match(line)
        if one and one.group("code").strip():
            code = one.group("code")
            line_indent = code[: len(code) - len(code.lstrip())]
            out.extend(_placeholders(code, line_indent, f"{where}, line {lineno}", answers))
            continue
        out.append(line)
    if region is not None:
        raise ExerciseError(f"{where}: BEGIN SOLUTION without END SOLUTION")
    return "\n".join(out)


def _clean_tags(cell: NotebookNode) -> None:
    tags = [t for t in cell.metadata.get("tags", []) if t not in STRIP_TAGS]
    if tags:
        cell.metadata["tags"] = tags
    else:
        cell.metadata.pop("tags", None)


def make_exercise(solution: NotebookNode, name: str = "notebook") -> NotebookNode:
    """The student notebook written from a solution notebook.

    Parameters
    ----------
    solution : nbformat.NotebookNode
        The worked notebook (it is not modified).
    name : str
        How to name the notebook in error messages; when it looks like ``NN-topic``, the chapter
        ``NN`` goes into the metadata.

    Returns
    -------
    nbformat.NotebookNode
        A new notebook without outputs or solutions (see the module docstring for the markers).

    Raises
    ------
    ExerciseError
        For unbalanced ``BEGIN``/``END SOLUTION`` markers or a region that is not valid Python.

    Examples
    --------
    >>> from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    >>> nb = new_notebook(cells=[
    ...     new_code_cell("# BEGIN SOLUTION\\n_m = fit()\\ntau2 = _m.tau2\\n# END SOLUTION\\n"
    ...                   "check.ex03_1(tau2)"),
    ...     new_markdown_cell("The subjects differ.", metadata={"tags": ["solution"]}),
    ... ])
    >>> student = make_exercise(nb, "03-null-model")
    >>> print(student.cells[0].source)
    tau2 = ...  # your code here
    check.ex03_1(tau2)
    >>> student.cells[1].source.startswith("**Your answer:**")
    True
    >>> student.metadata["mlmprimer"]["chapter"]
    '03'
    """
    nb = copy.deepcopy(solution)
    answers = _answers(chapter_of(name + ".ipynb"))
    cells: list[NotebookNode] = []
    for index, cell in enumerate(nb.cells):
        tags = set(cell.metadata.get("tags", []))
        where = f"{name}, cell {index + 1}"
        if "solution-only" in tags:
            continue
        if cell.cell_type == "markdown" and "solution" in tags:
            prompt = nbformat.v4.new_markdown_cell(PROMPT)
            if "id" in cell:
                prompt["id"] = cell["id"]
            cells.append(prompt)
            continue
        if cell.cell_type == "code":
            if "solution" in tags:
                body = "\n".join(_placeholders(cell.source, "", where, answers))
            else:
                body = _strip_source(cell.source, where, answers)
            cell.source = body
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = _word_minimum(cell.source, answers)
        cell.metadata.pop("execution", None)
        cell.metadata.pop("scrolled", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("jupyter", None)
        _clean_tags(cell)
        cells.append(cell)
    nb.cells = cells
    meta = {
        "kernelspec": solution.metadata.get(
            "kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"}
        ),
        "language_info": {"name": "python"},
    }
    chapter = chapter_of(name + ".ipynb")
    info = {"kind": "exercise", "source": f"solutions/{name}.ipynb"}
    if chapter:
        info["chapter"] = chapter
    meta["mlmprimer"] = info
    nb.metadata = nbformat.from_dict(meta)
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def notebook_text(nb: NotebookNode) -> str:
    """The notebook as the exact text written to disk (nbformat's layout, final newline).

    Examples
    --------
    >>> from nbformat.v4 import new_notebook
    >>> notebook_text(new_notebook()).endswith("}\\n")
    True
    """
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def write_exercises(
    solutions: Iterable[Path | str] | None = None, check: bool = False
) -> list[Path]:
    """Write (or with ``check=True`` only compare) the student notebook of each solution.

    Parameters
    ----------
    solutions : paths, optional
        Solution notebooks (default: all of :func:`find_solutions`).
    check : bool
        Do not write; return the student notebooks whose committed text differs from what
        would be written (missing ones included).

    Returns
    -------
    list of pathlib.Path
        With ``check=False`` the notebooks written; with ``check=True`` the stale ones.

    Examples
    --------
    >>> write_exercises(check=True)  # the committed student notebooks are up to date
    []
    """
    paths = [Path(p) for p in solutions] if solutions is not None else find_solutions()
    changed: list[Path] = []
    for sol in paths:
        target = exercise_path(sol)
        text = notebook_text(make_exercise(nbformat.read(sol, as_version=4), sol.stem))
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old == text:
            continue
        changed.append(target)
        if not check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return changed


# ------------------------------------------------------------------------------------------
# checks on a solution notebook
# ------------------------------------------------------------------------------------------


@dataclass
class Problem:
    """One thing wrong with a notebook, as found by :func:`lint_solution` or execution."""

    path: str
    cell: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}, cell {self.cell}: {self.message}"


CHECK_CALL = re.compile(r"\bcheck\.(ex(?:\d{2}|A\d)_\d+)\s*\(")


def _output_problems(nb: NotebookNode, path: str) -> list[Problem]:
    problems = []
    for index, cell in enumerate(nb.cells, start=1):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(Problem(path, index, f"raised {out.get('ename')}"))
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                first = "".join(out.get("text", "")).strip().splitlines()[:1]
                problems.append(Problem(path, index, f"wrote to stderr: {' '.join(first)}"))
    return problems


def lint_solution(path: Path | str) -> list[Problem]:
    """What in a solution notebook breaks the course's rules for solutions.

    A solution notebook must: have a chapter name ``NN-topic``; turn into an exercise without
    error; hide every cell that holds a solution region in the book (tag ``hide-cell``, or
    ``remove-cell`` / ``solution-only``); write the answer in words of a ``solution`` markdown cell
    inside a collapsed admonition (``:class: dropdown``); call only checks of its own chapter that
    exist in :mod:`mlmprimer.check`; store outputs without errors or stderr (warnings); for an
    exercise with a variant per student, set ``student_id = ...``, draw its data from
    ``check.variant_seed`` and pass ``student_id=student_id`` to its check.

    Parameters
    ----------
    path : path
        A ``solutions/NN-topic.ipynb`` notebook.

    Returns
    -------
    list of Problem
        Empty when the notebook is fine.

    Examples
    --------
    >>> [lint_solution(p) for p in find_solutions()][:1]
    [[]]
    """
    from mlmprimer import check as check_module

    path = Path(path)
    where = path.as_posix()
    problems: list[Problem] = []
    chapter = chapter_of(path)
    if chapter is None:
        return [Problem(where, 0, "name is not NN-topic.ipynb")]
    nb = nbformat.read(path, as_version=4)
    try:
        make_exercise(nb, path.stem)
    except ExerciseError as exc:
        problems.append(Problem(where, 0, str(exc)))
    for index, cell in enumerate(nb.cells, start=1):
        tags = set(cell.metadata.get("tags", []))
        hidden = bool(tags & {"hide-cell", "remove-cell", "solution-only"})
        if cell.cell_type == "code":
            has_region = bool(BEGIN.search(cell.source) or ONE_LINE.search(cell.source))
            if (has_region or "solution" in tags) and not hidden:
                problems.append(Problem(where, index, "solution code without a hide-cell tag"))
            for qid in CHECK_CALL.findall(cell.source):
                if qid not in check_module.QUESTIONS:
                    problems.append(Problem(where, index, f"check.{qid} does not exist"))
                elif check_module.QUESTIONS[qid].chapter != chapter:
                    problems.append(
                        Problem(where, index, f"check.{qid} is not of chapter {chapter}")
                    )
        elif cell.cell_type == "markdown" and "solution" in tags:
            if ":class: dropdown" not in cell.source:
                problems.append(
                    Problem(where, index, "solution text not in a ':class: dropdown' admonition")
                )
    problems.extend(_output_problems(nb, where))
    called = {q for c in nb.cells if c.cell_type == "code" for q in CHECK_CALL.findall(c.source)}
    for qid, question in check_module.QUESTIONS.items():
        if question.chapter == chapter and qid not in called:
            problems.append(Problem(where, 0, f"check.{qid} is never called"))
    problems.extend(_variant_problems(nb, where, chapter))
    return problems


STUDENT_ID_LINE = re.compile(r"^student_id = \.\.\.$", re.MULTILINE)


def _variant_problems(nb: NotebookNode, where: str, chapter: str) -> list[Problem]:
    """What breaks the rules of exercises with a variant per student (``exercise(seed=...)``).

    Such a notebook sets ``student_id = ...`` in a code cell (the student writes their id
    there), draws the exercise's data from ``check.variant_seed("exNN_K", student_id)`` outside
    the solution (so that the student notebook shows it) and passes ``student_id=student_id`` to
    the check; no other check is passed a student id.
    """
    from mlmprimer import check as check_module

    problems: list[Problem] = []
    code = [(i, c.source) for i, c in enumerate(nb.cells, start=1) if c.cell_type == "code"]
    varied = {
        qid for qid, q in check_module.QUESTIONS.items() if q.chapter == chapter and q.has_variants
    }
    if varied and not any(STUDENT_ID_LINE.search(source) for _, source in code):
        problems.append(Problem(where, 0, "no cell sets student_id = ... (for the variants)"))
    try:  # the student must see where the data come from: look in the student notebook
        student = make_exercise(nb, Path(where).stem).cells
    except ExerciseError:
        student = nb.cells
    shown = [c.source for c in student if c.cell_type == "code"]
    for qid in sorted(varied):
        if not any(f'variant_seed("{qid}", student_id)' in source for source in shown):
            problems.append(
                Problem(where, 0, f'data of {qid} not drawn from check.variant_seed("{qid}", ...)')
            )
    for index, source in code:
        for match in CHECK_CALL.finditer(source):
            qid = match.group(1)
            passes = "student_id=student_id" in _call_text(source, match.end() - 1)
            if qid in varied and not passes:
                problems.append(Problem(where, index, f"check.{qid} needs student_id=student_id"))
            elif qid not in varied and passes:
                problems.append(Problem(where, index, f"check.{qid} has no variants to choose"))
    return problems


def _call_text(source: str, start: int) -> str:
    """The text of the call whose opening parenthesis is at ``source[start]``."""
    depth = 0
    for end in range(start, len(source)):
        depth += {"(": 1, ")": -1}.get(source[end], 0)
        if depth == 0:
            return source[start : end + 1]
    return source[start:]


# ------------------------------------------------------------------------------------------
# execution
# ------------------------------------------------------------------------------------------


@dataclass
class ExecutionReport:
    """What happened when a notebook was executed."""

    path: Path
    seconds: float
    problems: list[Problem] = field(default_factory=list)


def execute_notebook(
    path: Path | str, timeout: int = 600, kernel_name: str = "python3", write: bool = True
) -> ExecutionReport:
    """Execute a notebook top to bottom in a fresh kernel and store its outputs in place.

    Parameters
    ----------
    path : path
        The notebook; it runs in its own directory.
    timeout : int
        Seconds allowed per cell.
    kernel_name : str
        The Jupyter kernel.
    write : bool
        Write the executed notebook back to ``path``.

    Returns
    -------
    ExecutionReport
        The time taken and every error output or stderr stream (warnings) found.

    Examples
    --------
    >>> report = execute_notebook("solutions/04-icc.ipynb")  # doctest: +SKIP
    >>> report.problems  # doctest: +SKIP
    []
    """
    import time

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    start = time.perf_counter()
    problems: list[Problem] = []
    try:
        client.execute()
    except CellExecutionError as exc:
        problems.append(Problem(path.as_posix(), 0, f"stopped: {str(exc).splitlines()[-1]}"))
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    problems.extend(_output_problems(nb, path.as_posix()))
    if write:
        path.write_text(notebook_text(nb), encoding="utf-8")
    return ExecutionReport(path, seconds, problems)


# ------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------


def _cmd_exercises(args: argparse.Namespace) -> int:
    solutions = [Path(p) for p in args.notebooks] if args.notebooks else find_solutions(args.root)
    if not solutions:
        print("no solutions/NN-topic.ipynb notebooks found", file=sys.stderr)
        return 1
    try:
        changed = write_exercises(solutions, check=args.check)
    except ExerciseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        for path in changed:
            print(f"stale: {path} (run `python -m mlmprimer.notebooks exercises`)")
        return 1 if changed else 0
    for sol in solutions:
        target = exercise_path(sol)
        print(f"{'wrote    ' if target in changed else 'unchanged'} {target}")
    return 0


def _cmd_execute(args: argparse.Namespace) -> int:
    status = 0
    for name in args.notebooks:
        path = Path(name)
        if path.parent.name == "exercises":
            print(f"skipped  {path} (student notebooks are kept without outputs)")
            continue
        report = execute_notebook(path, timeout=args.timeout, kernel_name=args.kernel)
        print(f"executed {path} in {report.seconds:.1f} s")
        for problem in report.problems:
            print(f"  problem: {problem}")
            status = 1
    return status


def _cmd_lint(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.notebooks] if args.notebooks else find_solutions(args.root)
    problems = [p for path in paths for p in lint_solution(path)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m mlmprimer.notebooks {exercises,execute,lint} ...``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.

    Examples
    --------
    >>> main(["exercises", "--check"])
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m mlmprimer.notebooks",
        description="Write the student notebooks from the solutions; re-execute notebooks.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ex = sub.add_parser("exercises", help="write exercises/NN-topic.ipynb from solutions/")
    ex.add_argument("notebooks", nargs="*", help="solution notebooks (default: all)")
    ex.add_argument("--check", action="store_true", help="only report stale student notebooks")
    ex.add_argument("--root", default=None, help="the repository (default: auto-detected)")
    ex.set_defaults(func=_cmd_exercises)

    run = sub.add_parser("execute", help="re-execute notebooks in place")
    run.add_argument("notebooks", nargs="+")
    run.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    run.add_argument("--kernel", default="python3")
    run.set_defaults(func=_cmd_execute)

    lint = sub.add_parser("lint", help="check the solution notebooks' markers and outputs")
    lint.add_argument("notebooks", nargs="*")
    lint.add_argument("--root", default=None)
    lint.set_defaults(func=_cmd_lint)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
