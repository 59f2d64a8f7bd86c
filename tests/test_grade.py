"""The grader: full, partial, raising, looping, empty and corrupt submissions.

The submissions are built from chapter 1's solution and exercise notebooks and graded once, in
parallel, by the command-line entry point; the tests then read the scores file. Hostile
submissions, naming rules and the other output files are tested in ``test_grade_*.py``.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from mlmprimer import check
from mlmprimer.grade import COLUMNS, decode_answer, main

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "01-what-is-mlm.ipynb"
EXERCISE = ROOT / "exercises" / "01-what-is-mlm.ipynb"
POINTS = {q.qid: q.points for q in check.questions("01")}
LOOP_TIMEOUT = 20  # seconds for one cell: the looping cell is stopped after this
# the kernels import the library under test, also where PYTHONPATH names it
KERNEL_ENV = ["--pass-env", "PYTHONPATH"] if "PYTHONPATH" in os.environ else []


def _cell_of(nb: nbformat.NotebookNode, qid: str) -> int:
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and re.search(rf"check\.{qid}\(", cell.source):
            return i
    raise LookupError(qid)


def _write(nb: nbformat.NotebookNode, path: Path) -> None:
    nbformat.write(nb, path)


def _as_student(text: str, student: str) -> str:
    """A worked solution with ``student``'s id typed in (the data of their own variants)."""
    assert "student_id = ..." in text
    return text.replace("student_id = ...", f"student_id = {student!r}")


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, str]]]:
    subs = tmp_path_factory.mktemp("submissions")
    out = subs.parent / "scores.csv"
    solution = nbformat.read(SOLUTION, as_version=4)
    student = nbformat.read(EXERCISE, as_version=4)

    # full: the worked solution, handed in by "full" (the same name in the metadata)
    full = nbformat.reads(_as_student(SOLUTION.read_text(), "full"), as_version=4)
    full.metadata["mlmprimer"] = {"student": "full", "chapter": "01"}
    _write(full, subs / "full.ipynb")

    # partial: exercises 1.1 and 1.2 answered; it also tries to fake the checks in the kernel
    partial = copy.deepcopy(student)
    by_id = {c.get("id"): c for c in solution.cells}
    for qid in ("ex01_1", "ex01_2"):
        i = _cell_of(partial, qid)
        partial.cells[i] = copy.deepcopy(by_id[partial.cells[i]["id"]])
    partial.cells.insert(
        1,
        new_code_cell(
            "import mlmprimer.check as _c\n"
            "for _q in list(_c.QUESTIONS):\n"
            "    setattr(_c, _q, lambda *a, _q=_q: _c.CheckResult(_q, 'correct', 'ok', score=9))\n"
            "print('✓ everything correct')"
        ),
    )
    _write(partial, subs / "partial_01-what-is-mlm.ipynb")

    # raising: exercise 1.3's computation raises; the check call of 1.1 is deleted
    raising = nbformat.reads(_as_student(SOLUTION.read_text(), "raising"), as_version=4)
    i = _cell_of(raising, "ex01_3")
    raising.cells[i].source = 'raise RuntimeError("oops")\n' + raising.cells[i].source
    j = _cell_of(raising, "ex01_1")
    raising.cells[j].source = raising.cells[j].source.replace(
        "check.ex01_1(n_boys, n_measurements)", ""
    )
    _write(raising, subs / "raising_01-what-is-mlm.ipynb")

    # looping: exercises 1.1 and 1.2 answered, then an endless loop
    looping = copy.deepcopy(student)
    for qid in ("ex01_1", "ex01_2"):
        i = _cell_of(looping, qid)
        looping.cells[i] = copy.deepcopy(by_id[looping.cells[i]["id"]])
    endless = new_code_cell("import time\n\nwhile True:\n    time.sleep(0.1)")
    looping.cells.insert(_cell_of(looping, "ex01_2") + 1, endless)
    folder = subs / "looping"
    folder.mkdir()
    _write(looping, folder / "01-what-is-mlm.ipynb")

    # empty: a 0-byte file, and a notebook saved with no cells
    (subs / "empty_01-what-is-mlm.ipynb").write_text("")
    blank = nbformat.v4.new_notebook()
    _write(blank, subs / "blank_01-what-is-mlm.ipynb")

    # damaged: valid JSON, but keys a notebook needs were deleted by hand; its code still runs
    damaged = json.loads(_as_student(SOLUTION.read_text(), "damaged"))
    for cell in damaged["cells"]:
        cell.pop("metadata", None)
    del damaged["nbformat_minor"]
    (subs / "damaged_01-what-is-mlm.ipynb").write_text(json.dumps(damaged))

    # corrupt: cut in the middle of the JSON
    text = EXERCISE.read_text()
    (subs / "corrupt_01-what-is-mlm.ipynb").write_text(text[: len(text) // 2])

    status = main(
        [str(subs), "--out", str(out), "--cell-timeout", str(LOOP_TIMEOUT), "--jobs", "2"]
        + KERNEL_ENV
    )
    assert status == 0
    table: dict[str, dict[str, dict[str, str]]] = {}
    with out.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        for row in reader:
            table.setdefault(row["student"], {})[row["question"]] = row
    return table


def _score(rows: dict[str, dict[str, str]]) -> dict[str, float]:
    return {q: float(r["score"]) for q, r in rows.items()}


def test_every_submission_has_a_row_per_question(scores) -> None:  # noqa: ANN001
    expected = {"full", "partial", "raising", "looping", "empty", "blank", "damaged", "corrupt"}
    assert set(scores) == expected
    for rows in scores.values():
        assert set(rows) == set(POINTS)
        assert all(float(r["max_score"]) == POINTS[q] for q, r in rows.items())


def test_full_submission_scores_everything(scores) -> None:  # noqa: ANN001
    assert _score(scores["full"]) == POINTS
    assert scores["full"]["ex01_4"]["status"] == "recorded"
    assert {r["notebook"] for r in scores["full"].values()} == {"full.ipynb"}


def test_damaged_submission_still_runs(scores) -> None:  # noqa: ANN001
    assert _score(scores["damaged"]) == POINTS
    assert "damaged" in scores["damaged"]["ex01_1"]["message"]


def test_partial_submission_and_faked_checks(scores) -> None:  # noqa: ANN001
    got = _score(scores["partial"])
    assert got == {"ex01_1": 1.0, "ex01_2": 1.0, "ex01_3": 0.0, "ex01_4": 0.0, "ex01_5": 0.0}
    assert scores["partial"]["ex01_5"]["status"] == "unanswered"


def test_raising_submission_scores_the_rest(scores) -> None:  # noqa: ANN001
    rows = scores["raising"]
    assert _score(rows) == dict(POINTS, ex01_3=0.0)
    assert rows["ex01_3"]["status"] == "missing"
    assert "RuntimeError" in rows["ex01_3"]["message"]
    assert "se_days_ols" in rows["ex01_3"]["message"]
    assert rows["ex01_1"]["status"] == "correct"
    assert "check.ex01_1 was deleted" in rows["ex01_1"]["message"]


def test_looping_submission_loses_one_cell_and_goes_on(scores) -> None:  # noqa: ANN001
    rows = scores["looping"]
    assert _score(rows) == {
        "ex01_1": 1.0,
        "ex01_2": 1.0,
        "ex01_3": 0.0,
        "ex01_4": 0.0,
        "ex01_5": 0.0,
    }
    # the cells after the loop ran: the exercise's placeholders are read, not missing
    for qid in ("ex01_3", "ex01_4", "ex01_5"):
        assert rows[qid]["status"] == "unanswered"
    for qid in rows:  # the note is on every row
        assert f"was stopped after {LOOP_TIMEOUT} s" in rows[qid]["message"]


def test_notebook_time_limit_stops_the_rest(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            new_code_cell("n_boys = 16"),
            new_code_cell("while True:\n    pass"),
            new_code_cell("n_measurements = 64"),
        ],
        metadata={"mlmprimer": {"chapter": "01"}},
    )
    path = tmp_path / "slow_01-what-is-mlm.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "s.csv"
    main([str(path), "--out", str(out), "--timeout", "4", "--cell-timeout", "0", "--quiet"])
    rows = {r["question"]: r for r in csv.DictReader(out.open())}
    assert rows["ex01_1"]["status"] == "timeout"  # n_measurements was never set
    assert "ran out of time (4 s) in cell 2" in rows["ex01_1"]["message"]


def test_empty_and_corrupt_submissions_are_reported(scores) -> None:  # noqa: ANN001
    assert {r["status"] for r in scores["empty"].values()} == {"empty"}
    assert "empty" in scores["empty"]["ex01_1"]["message"]
    assert {r["status"] for r in scores["blank"].values()} == {"empty"}
    assert {r["status"] for r in scores["corrupt"].values()} == {"invalid"}
    assert "not valid JSON" in scores["corrupt"]["ex01_1"]["message"]
    for who in ("empty", "blank", "corrupt"):
        assert sum(_score(scores[who]).values()) == 0


def test_cell_timeout_interrupts_and_goes_on(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(
        cells=[
            new_code_cell("import time\nn_boys = 16"),
            new_code_cell("while True:\n    pass"),
            new_code_cell("n_measurements = 64"),
        ],
        metadata={"mlmprimer": {"chapter": "01", "student": "slow"}},
    )
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "s.csv"
    main([str(path), "--out", str(out), "--cell-timeout", "3", "--quiet"])
    rows = {r["question"]: r for r in csv.DictReader(out.open())}
    assert rows["ex01_1"]["status"] == "correct"
    assert "stopped after 3 s" in rows["ex01_1"]["message"]
    assert rows["ex01_3"]["status"] == "missing"


def test_unknown_chapter_and_missing_file(tmp_path: Path) -> None:
    odd = tmp_path / "notes.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[new_code_cell("1")]), odd)
    out = tmp_path / "s.csv"
    main([str(odd), str(tmp_path / "absent_01-what-is-mlm.ipynb"), "--out", str(out), "--quiet"])
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["status"] == "invalid" and "which chapter" in rows[0]["message"]
    assert {r["status"] for r in rows[1:]} == {"invalid"} and len(rows) == 1 + len(POINTS)


def test_decode_answer_round_trip() -> None:
    encoded = json.loads(
        json.dumps(
            {
                "__dict__": [
                    ["a", {"__tuple__": [1, 2.5]}],
                    ["b", {"__ndarray__": [[1, 2], [3, 4]]}],
                    ["c", {"__dataframe__": {"columns": ["x"], "index": [0], "data": [[1.0]]}}],
                ]
            }
        )
    )
    decoded = decode_answer(encoded)
    assert decoded["a"] == (1, 2.5)
    assert decoded["b"].shape == (2, 2)
    assert float(decoded["c"].loc[0, "x"]) == 1.0


@pytest.mark.slow
def test_later_chapters_are_graded_from_their_worked_solutions(tmp_path: Path) -> None:
    # tuples, dicts of words and numpy numbers must survive the trip out of the kernel
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("06-random-slopes", "07-crossed-nested"):
        source = ROOT / "solutions" / f"{name}.ipynb"
        (subs / f"eve_{name}.ipynb").write_text(_as_student(source.read_text(), "eve"))
    out = tmp_path / "s.csv"
    assert main([str(subs), "--out", str(out), "--quiet", "--jobs", "2", *KERNEL_ENV]) == 0
    rows = list(csv.DictReader(out.open()))
    expected = {q.qid: q.points for chapter in ("06", "07") for q in check.questions(chapter)}
    assert {r["question"]: float(r["score"]) for r in rows} == expected
    assert {r["student"] for r in rows} == {"eve"}
