"""Per-student variants: each student's exercise data, right answers and grade are their own.

An exercise registered with ``exercise(..., seed=...)`` draws its data from
``check.variant_seed(qid, student_id)``; its check judges the answers for the student it is given,
and the grader gives it the student the file name names, whatever id the notebook typed.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from mlmprimer import check, simulate
from mlmprimer.check.core import exercise, student_key, variant_seed
from mlmprimer.grade import main
from mlmprimer.model import lmer
from mlmprimer.notebooks import _variant_problems

KERNEL_ENV = ["--pass-env", "PYTHONPATH"] if "PYTHONPATH" in os.environ else []
SIM = "n_subjects=50, n_obs=8, beta0=500, tau=20, sigma=40"  # exercise 4.5's design


def answers_of(student_id: object) -> tuple[float, float, float]:
    """Exercise 4.5 worked as the student ``student_id`` works it, on their own data."""
    seed = variant_seed("ex04_5", student_id)
    sim = simulate.reaction_times(n_subjects=50, n_obs=8, beta0=500, tau=20, sigma=40, rng=seed)
    truth = sim.attrs["truth"]
    icc_true = truth["tau"] ** 2 / (truth["tau"] ** 2 + truth["sigma"] ** 2)
    fit = lmer("reaction ~ 1 + (1 | subject)", sim)
    vc = fit.varcorr.set_index("grp")["vcov"]
    icc_est = vc["subject"] / (vc["subject"] + vc["Residual"])
    return icc_true, icc_est, icc_est - icc_true


def test_the_seed_is_the_public_one_without_an_id_and_the_students_own_with_one() -> None:
    public = check.QUESTIONS["ex04_5"].seed
    assert variant_seed("ex04_5") == variant_seed("ex04_5", ...) == variant_seed("ex04_5", "")
    assert variant_seed("ex04_5") == public == 4  # the worked solution's simulation
    # the id is compared as the grader compares names: case, spaces and punctuation aside
    assert variant_seed("ex04_5", "Ada Lovelace") == variant_seed("ex04_5", "ada_lovelace")
    seeds = {variant_seed("ex04_5", f"student{k}") for k in range(200)}
    assert len(seeds) == 200 and public not in seeds
    # one student's seeds differ from one exercise to the next
    assert variant_seed("ex04_5", "ada") != variant_seed("ex05_5", "ada")
    assert student_key(" Jane-Smith ") == "janesmith"


def test_only_registered_exercises_have_variants() -> None:
    with pytest.raises(ValueError, match="ex04_1.*no per-student variants.*ex04_5"):
        variant_seed("ex04_1", "ada")
    with pytest.raises(ValueError, match="keyword-only 'student_id'"):
        exercise("ex99_1", "a variant without a student", seed=1)(lambda x: None)
    with pytest.raises(ValueError, match="keyword-only 'student_id'"):
        exercise("ex99_2", "a student without a variant")(lambda x, *, student_id=None: None)
    assert check.QUESTIONS["ex04_5"].variables == ("icc_true", "icc_est", "icc_error")
    assert not check.QUESTIONS["ex04_1"].has_variants


@pytest.mark.slow
def test_two_students_have_different_right_answers_and_each_check_knows_its_own() -> None:
    ada, max_ = answers_of("ada"), answers_of("max")
    assert abs(ada[1] - max_[1]) > 0.01  # estimated ICCs of two draws
    assert check.ex04_5(*ada, student_id="ada").status == "correct"
    assert check.ex04_5(*max_, student_id="max").status == "correct"
    # another student's answers do not pass, nor do the public ones
    assert check.ex04_5(*ada, student_id="max").status != "correct"
    assert check.ex04_5(*answers_of(...), student_id="ada").status != "correct"
    # without an id the check judges the public variant, as before variants existed
    assert check.ex04_5(*answers_of(...)).status == "correct"


def _notebook(typed: str) -> nbformat.NotebookNode:
    """A chapter-4 notebook that works exercise 4.5 on the data of the id ``typed``."""
    cells = [
        "import mlmprimer as mlm\nfrom mlmprimer import check, simulate",
        f"student_id = {typed}",
        f'seed = check.variant_seed("ex04_5", student_id)\n'
        f"sim = simulate.reaction_times({SIM}, rng=seed)",
        'truth = sim.attrs["truth"]\n'
        'icc_true = truth["tau"] ** 2 / (truth["tau"] ** 2 + truth["sigma"] ** 2)\n'
        'icc_est = mlm.icc(mlm.lmer("reaction ~ 1 + (1 | subject)", sim))\n'
        "icc_error = icc_est - icc_true",
        "check.ex04_5(icc_true, icc_est, icc_error, student_id=student_id)",
    ]
    return new_notebook(
        cells=[new_code_cell(c) for c in cells], metadata={"mlmprimer": {"chapter": "04"}}
    )


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, str]], Path]:
    subs = tmp_path_factory.mktemp("variants")
    out = subs.parent / "grades" / "scores.csv"
    nbformat.write(_notebook('"ada"'), subs / "ada_04-icc.ipynb")
    nbformat.write(_notebook('"Max"'), subs / "max_04-icc.ipynb")
    nbformat.write(_notebook('"ada"'), subs / "cy_04-icc.ipynb")  # cy types ada's id
    nbformat.write(_notebook("..."), subs / "dee_04-icc.ipynb")  # dee types no id
    assert main([str(subs), "--out", str(out), "--quiet", "--chapter", "04", *KERNEL_ENV]) == 0
    rows = {r["student"]: r for r in csv.DictReader(out.open()) if r["question"] == "ex04_5"}
    return rows, out


@pytest.mark.slow
def test_the_grader_and_each_students_check_agree_on_their_own_variant(graded) -> None:  # noqa: ANN001
    rows, out = graded
    for student in ("ada", "max"):
        assert rows[student]["status"] == "correct", rows[student]["message"]
        assert float(rows[student]["score"]) == check.QUESTIONS["ex04_5"].points
        assert "variant" not in rows[student]["message"]
    # in the kernel, the student's own check said the same
    executed = out.parent / "scores.executed"
    for path in executed.rglob("*.ipynb"):
        if path.name.startswith(("ada", "max")):
            text = path.read_text(encoding="utf-8")
            assert "ex04_5 (exercise 4.5) correct" in text, path.name


@pytest.mark.slow
def test_a_notebook_typing_another_id_is_graded_on_its_own_variant_and_flagged(graded) -> None:  # noqa: ANN001
    rows, out = graded
    cy = rows["cy"]
    # cy's answers are ada's, right for ada: on cy's own variant they are not
    assert cy["status"] != "correct"
    assert float(cy["score"]) < check.QUESTIONS["ex04_5"].points
    assert "'ada'" in cy["message"] and "variant of 'cy'" in cy["message"]
    dee = rows["dee"]
    assert dee["status"] != "correct"
    assert "leaves `student_id` unset" in dee["message"] and "variant of 'dee'" in dee["message"]
    summary = (out.parent / "scores.summary.md").read_text(encoding="utf-8")
    problems = summary.split("## Problems", 1)[1]
    assert "cy_04-icc.ipynb" in problems and "'ada'" in problems
    assert "dee_04-icc.ipynb" in problems
    assert "ada_04-icc.ipynb" not in problems and "max_04-icc.ipynb" not in problems


def test_a_solution_that_ignores_the_variants_is_reported() -> None:
    good = _notebook("...")
    assert _variant_problems(good, "04-icc.ipynb", "04") == []
    no_id = _notebook("...")
    no_id.cells[-1].source = "check.ex04_5(icc_true, icc_est, icc_error)"
    no_id.cells[2].source = f"sim = simulate.reaction_times({SIM}, rng=4)"
    no_id.cells[1].source = "student_id = 'ada'"
    said = [p.message for p in _variant_problems(no_id, "04-icc.ipynb", "04")]
    assert any("student_id = ..." in m for m in said)
    assert any("variant_seed" in m for m in said)
    assert any("needs student_id=student_id" in m for m in said)
    extra = _notebook("...")
    extra.cells.append(new_code_cell("check.ex04_1(icc_exam, student_id=student_id)"))
    said = [p.message for p in _variant_problems(extra, "04-icc.ipynb", "04")]
    assert said == ["check.ex04_1 has no variants to choose"]


@pytest.mark.slow
def test_variants_public_grades_everyone_on_the_public_data(tmp_path: Path) -> None:
    subs, out = tmp_path / "subs", tmp_path / "scores.csv"
    subs.mkdir()
    nbformat.write(_notebook("..."), subs / "dee_04-icc.ipynb")
    nbformat.write(_notebook('"eve"'), subs / "eve_04-icc.ipynb")
    command = [str(subs), "--out", str(out), "--quiet", "--variants", "public", *KERNEL_ENV]
    assert main(command) == 0
    rows = {r["student"]: r for r in csv.DictReader(out.open()) if r["question"] == "ex04_5"}
    assert rows["dee"]["status"] == "correct" and "variant" not in rows["dee"]["message"]
    assert rows["eve"]["status"] != "correct"
    assert "'eve'; graded on the public variant" in rows["eve"]["message"]
