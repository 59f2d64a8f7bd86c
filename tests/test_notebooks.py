"""Exercise tooling: the student notebooks are written from the solutions and stay in step.

- the committed ``exercises/*.ipynb`` are exactly what ``python -m mlmprimer.notebooks exercises``
  writes;
- every solution notebook follows the rules of ``lint_solution`` and its stored check outputs
  say "correct" (or "recorded" for answers in words); nbval (``make test-notebooks``) re-runs the
  solutions and compares these outputs;
- every untouched student notebook runs without error, and every check in it says "not answered".
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mlmprimer import check
from mlmprimer.notebooks import (
    ExerciseError,
    chapter_of,
    execute_notebook,
    exercise_path,
    find_solutions,
    lint_solution,
    make_exercise,
    notebook_text,
    write_exercises,
)

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = find_solutions(ROOT)
# Appendices (solutions/A1-how-lmer-fits.ipynb) have checks exA1_K; the notebook tooling finds
# only NN-topic names, so they are listed here and handled alongside the chapters.
APPENDICES = [p for p in sorted((ROOT / "solutions").glob("*.ipynb")) if p not in CHAPTERS]
SOLUTIONS = CHAPTERS + APPENDICES
CHECK_CALL = re.compile(r"\bcheck\.(ex(?:\d{2}|A\d)_\d+)\s*\(")


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _chapter(path: Path) -> str:
    """``"04"`` for ``04-icc.ipynb``, ``"A1"`` for ``A1-how-lmer-fits.ipynb``."""
    return path.stem.split("-", 1)[0]


# --------------------------------------------------------------------------------------------
# make_exercise on small notebooks
# --------------------------------------------------------------------------------------------


def _solution_nb() -> nbformat.NotebookNode:
    return new_notebook(
        cells=[
            new_markdown_cell("# Solutions", metadata={"tags": ["solution-only"]}),
            new_markdown_cell("# Exercises", metadata={"tags": ["exercise-only", "remove-cell"]}),
            new_code_cell("import math"),
            new_code_cell(
                "data = [1, 2]\n"
                "# BEGIN SOLUTION\n"
                "_n = len(data)\n"
                "mean, total = sum(data) / _n, sum(data)\n"
                "# END SOLUTION\n"
                "check.ex01_1(mean, total)",
                metadata={"tags": ["hide-cell"]},
                outputs=[{"output_type": "stream", "name": "stdout", "text": "1.5\n"}],
                execution_count=3,
            ),
            new_code_cell('guess = "larger"  # SOLUTION', metadata={"tags": ["hide-cell"]}),
            new_code_cell(
                "# BEGIN SOLUTION\nwords = (\n    'first part '\n    'second part'\n)\n"
                "# END SOLUTION\ncheck.ex01_4(words)"
            ),
            new_code_cell(
                "def f(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n"
            ),
            new_markdown_cell(
                "```{admonition} Why\n:class: dropdown\n\nBecause.\n```",
                metadata={"tags": ["solution"]},
            ),
            new_code_cell("extra_plot()", metadata={"tags": ["solution-only"]}),
            new_code_cell("everything = 42", metadata={"tags": ["solution", "hide-cell"]}),
        ]
    )


def test_make_exercise_replaces_every_kind_of_marker() -> None:
    sol = _solution_nb()
    student = make_exercise(sol, "01-what-is-mlm")
    sources = [c.source for c in student.cells]
    assert sources[0] == "# Exercises"
    assert "tags" not in student.cells[0].metadata  # exercise-only and remove-cell dropped
    assert sources[1] == "import math"
    assert sources[2] == (
        "data = [1, 2]\n"
        "mean = ...  # your code here\n"
        "total = ...  # your code here\n"
        "check.ex01_1(mean, total)"
    )
    assert student.cells[2].outputs == [] and student.cells[2].execution_count is None
    assert "tags" not in student.cells[2].metadata
    assert sources[3] == 'guess = ""  # your answer, in words, between the quotes'
    assert sources[4].startswith('words = ""  # your answer')
    assert sources[5] == "def f(x):\n    pass  # your code here"
    assert sources[6].startswith("**Your answer:**")
    assert sources[7] == "everything = ...  # your code here"
    assert len(student.cells) == 8  # the two solution-only cells are gone
    assert student.metadata["mlmprimer"] == {
        "kind": "exercise",
        "source": "solutions/01-what-is-mlm.ipynb",
        "chapter": "01",
    }
    # the solution itself is untouched
    assert "BEGIN SOLUTION" in sol.cells[3].source and sol.cells[3].outputs


def test_make_exercise_is_deterministic() -> None:
    sol = _solution_nb()
    assert notebook_text(make_exercise(sol, "01-x")) == notebook_text(make_exercise(sol, "01-x"))


@pytest.mark.parametrize(
    "source",
    [
        "# BEGIN SOLUTION\nx = 1\n",
        "x = 1\n# END SOLUTION\n",
        "# BEGIN SOLUTION\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n",
        "# BEGIN SOLUTION\nx = (\n# END SOLUTION\n",
    ],
    ids=["no-end", "no-begin", "nested", "bad-python"],
)
def test_make_exercise_rejects_broken_markers(source: str) -> None:
    nb = new_notebook(cells=[new_code_cell(source)])
    with pytest.raises(ExerciseError, match="cell 1"):
        make_exercise(nb, "01-x")


def test_paths_and_chapters() -> None:
    assert exercise_path(ROOT / "solutions" / "04-icc.ipynb") == ROOT / "exercises" / "04-icc.ipynb"
    assert chapter_of("04-icc.ipynb") == "04"
    assert chapter_of("intro.ipynb") is None


# --------------------------------------------------------------------------------------------
# the course's notebooks
# --------------------------------------------------------------------------------------------


def test_there_are_solution_notebooks() -> None:
    assert [p.stem[:2] for p in SOLUTIONS][:4] == ["01", "02", "03", "04"]


def test_every_chapter_with_checks_has_a_solution_notebook() -> None:
    with_checks = {q.chapter for q in check.QUESTIONS.values()}
    assert with_checks == {_chapter(p) for p in SOLUTIONS}
    assert all(re.fullmatch(r"A\d", _chapter(p)) for p in APPENDICES)


def test_committed_exercises_are_up_to_date() -> None:
    stale = write_exercises(SOLUTIONS, check=True)
    assert stale == [], (
        f"stale student notebooks {[p.name for p in stale]}: "
        "run `python -m mlmprimer.notebooks exercises` (make exercises)"
    )


def test_exercises_command_check_mode() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mlmprimer.notebooks", "exercises", "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_solution_follows_the_rules(solution: Path, tmp_path: Path) -> None:
    if chapter_of(solution) is None:
        # an appendix: lint a copy under a chapter-style name (its exA1_K calls are checked
        # by test_every_check_passes_in_the_solution)
        copy = tmp_path / "solutions" / f"99-{solution.stem.split('-', 1)[1]}.ipynb"
        copy.parent.mkdir()
        copy.write_bytes(solution.read_bytes())
        solution = copy
    problems = lint_solution(solution)
    assert not problems, "\n".join(map(str, problems))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_every_check_passes_in_the_solution(solution: Path) -> None:
    nb = nbformat.read(solution, as_version=4)
    seen = set()
    for cell in nb.cells:
        calls = CHECK_CALL.findall(cell.source) if cell.cell_type == "code" else []
        if not calls:
            continue
        texts = [
            o["data"]["text/plain"]
            for o in cell.outputs
            if o.get("output_type") == "execute_result" and "text/plain" in o.get("data", {})
        ]
        assert texts, f"{solution.name}: the cell calling {calls} has no stored result"
        first = texts[-1].splitlines()[0]
        assert first.startswith(("✓", "✎")), f"{solution.name}: {first}"
        assert "text/html" in cell.outputs[-1]["data"]
        seen.update(calls)
    assert seen == {q.qid for q in check.questions(_chapter(solution))}


@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_exercise_counts_and_variables(solution: Path) -> None:
    qs = check.questions(_chapter(solution))
    assert 3 <= len(qs) <= 6
    names = [v for q in qs for v in q.variables]
    assert len(names) == len(set(names)), "two exercises of a chapter share a variable name"
    assert any(q.kind == "manual" for q in qs)
    student = nbformat.read(exercise_path(solution), as_version=4)
    text = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    for name in names:
        assert re.search(rf"^{name} = (\.\.\.|\"\")", text, re.M), f"no placeholder for {name}"
    assert "BEGIN SOLUTION" not in text and "# SOLUTION" not in text
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_text_answers_say_what_the_check_accepts(solution: Path) -> None:
    """Every answer written as text is registered, and the student notebook states its rules."""
    qs = check.questions(_chapter(solution))
    answers = {n: a for q in qs for n, a in q.answers.items()}
    student = nbformat.read(exercise_path(solution), as_version=4)
    code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    prose = "\n".join(c.source for c in student.cells if c.cell_type == "markdown")
    text_vars = re.findall(r'^(\w+) = ""', code, re.M)
    assert text_vars and set(text_vars) == set(answers), "a text answer without its rules"
    for name, answer in answers.items():
        line = re.search(rf'^{name} = "".*$', code, re.M).group(0)
        assert line.endswith(answer.instruction)
        if answer.options:
            # the placeholder lists exactly the options the check reads, and no "in words"
            assert "in words" not in line
            assert all(f'"{option}"' in line for option in answer.options)
            # options quoted in the paragraph of the task that names the variable are options
            # the check accepts
            task = next(
                para
                for c in student.cells
                if c.cell_type == "markdown"
                for para in c.source.split("\n\n")
                if f"`{name}`" in para
            )
            for quoted in re.findall(r'`"([^"`]+)"`', task):
                assert answer.pick(quoted) is not None, f"{name}: {quoted!r} is not accepted"
        else:
            sentence = f"Write at least {answer.min_words} words in `{name}`"
            assert sentence in prose, f"the task text of {name} does not state its minimum"


def test_placeholders_and_task_text_follow_the_registration(monkeypatch) -> None:
    from mlmprimer.check import core

    nb = new_notebook(
        cells=[
            new_markdown_cell(
                "Predict it in `prediction_se`, explain it in `answer_fixed_random`."
            ),
            new_code_cell('prediction_se = "smaller"  # SOLUTION'),
            new_code_cell('answer_fixed_random = "a long text"  # SOLUTION'),
        ]
    )
    student = make_exercise(nb, "01-what-is-mlm")
    assert student.cells[1].source == (
        'prediction_se = ""  # your prediction, one of "larger", "smaller" or "same"'
    )
    n = check.QUESTIONS["ex01_4"].answers["answer_fixed_random"].min_words
    assert f"at least {n} words" in student.cells[2].source
    assert student.cells[0].source.endswith(
        f"Write at least {n} words in `answer_fixed_random`; the check does not accept a "
        "shorter answer."
    )
    # a changed minimum changes the notebook: the number is never typed
    q = check.QUESTIONS["ex01_4"]
    monkeypatch.setitem(
        check.QUESTIONS,
        "ex01_4",
        core.Question(**{**q.__dict__, "answers": {"answer_fixed_random": core.words(n + 7)}}),
    )
    assert f"at least {n + 7} words" in make_exercise(nb, "01-what-is-mlm").cells[0].source


# --------------------------------------------------------------------------------------------
# executing the untouched student notebooks
# --------------------------------------------------------------------------------------------


def _run_student(path: str) -> nbformat.NotebookNode:
    """Execute a notebook in a fresh kernel and return it with its outputs."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": str(Path(path).parent)}},
    ).execute()
    return nb


@pytest.fixture(scope="module")
def executed_students() -> dict[str, nbformat.NotebookNode]:
    paths = [str(exercise_path(s)) for s in SOLUTIONS]
    # each notebook runs in its own kernel process; the threads only wait on them
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(_run_student, paths))
    return {Path(p).stem: nb for p, nb in zip(paths, done, strict=True)}


@pytest.mark.parametrize("solution", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_untouched_student_notebook_says_not_answered(
    solution: Path, executed_students: dict[str, nbformat.NotebookNode]
) -> None:
    nb = executed_students[solution.stem]
    seen = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            assert out["output_type"] != "error", f"{solution.stem}: {out.get('ename')}"
            assert not (out["output_type"] == "stream" and out["name"] == "stderr"), out["text"]
        calls = CHECK_CALL.findall(cell.source)
        if not calls:
            continue
        text = cell.outputs[-1]["data"]["text/plain"]
        assert text.startswith("…") and "not answered yet" in text, text
        assert "hint" not in text or "not answered" in text
        html = cell.outputs[-1]["data"]["text/html"]
        assert "mlmprimer-check-unanswered" in html
        seen.update(calls)
    assert seen == {q.qid for q in check.questions(_chapter(solution))}


# --------------------------------------------------------------------------------------------
# python -m mlmprimer.notebooks execute
# --------------------------------------------------------------------------------------------


def test_execute_writes_outputs_and_reports_warnings(tmp_path: Path) -> None:
    nb = new_notebook(
        cells=[
            new_code_cell("print(1 + 1)"),
            new_code_cell("import warnings\nwarnings.warn('careful')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    path = tmp_path / "01-demo.ipynb"
    nbformat.write(nb, path)
    report = execute_notebook(path, timeout=60)
    stored = json.loads(path.read_text())
    assert "".join(stored["cells"][0]["outputs"][0]["text"]) == "2\n"
    assert [p.cell for p in report.problems] == [2]
    assert "stderr" in report.problems[0].message
    assert "execution" not in stored["cells"][0]["metadata"]
