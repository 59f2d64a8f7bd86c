"""Who handed what in, and the files an instructor uses: wide scores, LMS export, feedback,
answers in words for hand grading, and merging the hand scores back.

Most batches here hold notebooks without code, which the grader reports without starting a
kernel, so these tests are quick; one batch runs a small synthetic notebook.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from mlmprimer.grade import NAME_RULES, identify, main, output_files

ANSWER = (
    "The fixed part is the line shared by every boy: the mean intercept and the mean slope of "
    "age. The random part lets each boy have his own intercept and slope around those means."
)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def blank(path: Path, **meta: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(metadata={"mlmprimer": {"chapter": "01", **meta}}), path)


# ----------------------------------------------------------------------------------------------
# naming the student
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "root", "student", "lms_id", "rule"),
    [
        ("smithjane_12345_67890_04-icc.ipynb", None, "smithjane", "12345", "canvas"),
        ("smithjane_late_12345_67890_04-icc-1.ipynb", None, "smithjane", "12345", "canvas"),
        (
            "Jane Smith_4711_assignsubmission_file_04-icc.ipynb",
            None,
            "Jane Smith",
            "4711",
            "moodle",
        ),
        (
            "s/Jane Smith_4711_assignsubmission_file_/04-icc.ipynb",
            "s",
            "Jane Smith",
            "4711",
            "moodle",
        ),
        ("HW 4_jsmith_attempt_2024-03-01-10-20-30_04-icc.ipynb", None, "jsmith", "", "blackboard"),
        ("alice.ipynb", None, "alice", "", "file name"),
        ("alice-04-icc.ipynb", None, "alice", "", "file name"),
        ("alice_04-icc.ipynb", None, "alice", "", "file name"),
        ("04-icc_alice.ipynb", None, "alice", "", "file name"),
        ("alice_04-icc (1).ipynb", None, "alice", "", "file name"),
        ("s/bob/04-icc.ipynb", "s", "bob", "", "folder"),
    ],
)
def test_names_from_common_download_patterns(
    path: str, root: str | None, student: str, lms_id: str, rule: str
) -> None:
    ident = identify(path, root=root)
    assert (ident.student, ident.lms_id, ident.rule) == (student, lms_id, rule)
    assert ident.notes == []


def test_metadata_names_only_when_the_file_name_cannot() -> None:
    claimed = identify("alice_04-icc.ipynb", metadata_student="bob")
    assert claimed.student == "alice"
    assert "metadata names 'bob'" in claimed.notes[0]
    assert identify("alice_04-icc.ipynb", metadata_student="Alice").notes == []
    nameless = identify("s/04-icc.ipynb", root="s", metadata_student="carol")
    assert (nameless.student, nameless.rule) == ("carol", "metadata")
    assert "from the notebook's metadata" in nameless.notes[0]
    unknown = identify("s/04-icc.ipynb", root="s")
    assert unknown.rule == "unknown" and "cannot tell who" in unknown.notes[0]


def test_custom_and_named_rules() -> None:
    ident = identify("hw4-ann-s123.ipynb", rule=r"hw4-(?P<student>[a-z]+)-s(?P<id>\d+)")
    assert (ident.student, ident.lms_id, ident.rule) == ("ann", "123", "custom")
    off = identify("ann_04-icc.ipynb", rule="canvas")
    assert off.student == "ann" and "does not follow the naming rule 'canvas'" in off.notes[0]
    assert set(NAME_RULES) == {"canvas", "moodle", "blackboard"}


def test_a_bad_naming_rule_is_refused(tmp_path: Path) -> None:
    blank(tmp_path / "a.ipynb")
    for rule in ("(?P<name>x)", "(unclosed"):
        with pytest.raises(SystemExit) as stop:
            main([str(tmp_path), "--out", str(tmp_path / "o" / "s.csv"), "--names", rule])
        assert stop.value.code == 2


def test_output_files_share_the_stem() -> None:
    files = output_files("grades/ch04.csv")
    assert files.lms.name == "ch04.lms.csv"
    assert files.journal.name == "ch04.journal.jsonl"
    assert output_files("grades").scores.as_posix() == "grades/scores.csv"


# ----------------------------------------------------------------------------------------------
# a batch with LMS names, duplicates, a roster and stray files (no kernel needed)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def roster_batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("roster")
    subs = base / "download"
    blank(subs / "smithjane_12345_67890_01-what-is-mlm.ipynb")
    blank(subs / "Jane Doe_4711_assignsubmission_file_01-what-is-mlm.ipynb")
    blank(subs / "alice_01-what-is-mlm.ipynb")
    blank(subs / "alice" / "01-what-is-mlm.ipynb")
    blank(subs / "ghost_01-what-is-mlm.ipynb")
    blank(subs / "bob_01-what-is-mlm.ipynb")
    (subs / "bob_01-what-is-mlm.pdf").write_bytes(b"%PDF-1.4")
    roster = base / "roster.csv"
    roster.write_text(
        "student,id,email\n"
        '"Smith, Jane",12345,js@example.org\n'
        "Jane Doe,,jd@example.org\n"
        "alice,,al@example.org\n"
        "bob,,bo@example.org\n"
        "Zed Absent,,za@example.org\n",
        encoding="utf-8",
    )
    out = base / "grades" / "scores.csv"
    args = [str(subs), "--out", str(out), "--chapter", "1", "--roster", str(roster), "--quiet"]
    assert main(args) == 0
    return {"out": out, "subs": subs, "roster": roster, "args": args}  # type: ignore[dict-item]


def test_long_file_keeps_every_submission(roster_batch: dict[str, Path]) -> None:
    rows = csv_rows(roster_batch["out"])
    by_file: dict[str, set[str]] = {}
    for r in rows:
        by_file.setdefault(r["student"], set()).add(r["notebook"])
    assert by_file["alice"] == {"alice_01-what-is-mlm.ipynb", "01-what-is-mlm.ipynb"}
    assert by_file["smithjane"] == {"smithjane_12345_67890_01-what-is-mlm.ipynb"}
    assert "Jane Doe" in by_file
    assert by_file["Zed Absent"] == {""}
    absent = [r for r in rows if r["student"] == "Zed Absent"]
    assert {r["status"] for r in absent} == {"absent"} and len(absent) == 5
    pdf = [r for r in rows if r["notebook"].endswith(".pdf")]
    assert len(pdf) == 1 and pdf[0]["question"] == "" and "not counted" in pdf[0]["message"]


def test_wide_file_has_one_row_per_student(roster_batch: dict[str, Path]) -> None:
    wide = {r["student"]: r for r in csv_rows(output_files(roster_batch["out"]).wide)}
    assert set(wide) == {"smithjane", "Jane Doe", "alice", "ghost", "bob", "Zed Absent"}
    assert list(csv_rows(output_files(roster_batch["out"]).wide)[0])[4:9] == [
        f"ex01_{k}" for k in range(1, 6)
    ]
    assert wide["smithjane"]["id"] == "12345"
    assert wide["smithjane"]["total"] == "0" and wide["smithjane"]["max_total"] == "9"
    assert wide["alice"]["status"] == "duplicate" and wide["alice"]["total"] == ""
    assert "2 submissions" in wide["alice"]["notes"]
    assert wide["Zed Absent"]["status"] == "absent" and wide["Zed Absent"]["total"] == ""
    assert "not on the roster" in wide["ghost"]["notes"]
    assert "not counted" not in wide["bob"]["notes"]  # the pdf does not make bob a duplicate
    assert wide["bob"]["status"] == "empty"


def test_summary_reports_identity_problems(roster_batch: dict[str, Path]) -> None:
    summary = output_files(roster_batch["out"]).summary.read_text(encoding="utf-8")
    assert "2 submissions map to the student 'alice'" in summary
    assert "'ghost' is not on the roster" in summary
    assert "Zed Absent: on the roster, but handed in nothing" in summary
    assert "chapter: 01 (--chapter)" in summary


def test_lms_exports(roster_batch: dict[str, Path]) -> None:
    files = output_files(roster_batch["out"])
    generic = {r["student"]: r for r in csv_rows(files.lms)}
    assert list(csv_rows(files.lms)[0]) == [
        "student",
        "id",
        "email",
        "score",
        "max_score",
        "percent",
        "status",
        "feedback",
    ]
    assert generic["Jane Doe"]["email"] == "jd@example.org"
    assert generic["smithjane"]["score"] == "0" and generic["smithjane"]["id"] == "12345"
    assert generic["alice"]["score"] == ""  # a duplicate gets no grade until one is chosen
    # the same batch again, for Canvas and keeping the best of two: nothing is run again
    args = [*roster_batch["args"], "--lms", "canvas", "--assignment", "Chapter 1 (901)"]
    assert main([*args, "--duplicates", "best"]) == 0
    canvas = csv_rows(files.lms)
    assert list(canvas[0]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] + [
        "Chapter 1 (901)"
    ]
    assert {r["Student"]: r["Chapter 1 (901)"] for r in canvas}["alice"] == "0"


def test_feedback_file_per_student(roster_batch: dict[str, Path]) -> None:
    folder = output_files(roster_batch["out"]).feedback
    names = sorted(p.name for p in folder.glob("*.md"))
    assert names == sorted(
        ["smithjane.md", "Jane_Doe.md", "alice.md", "ghost.md", "bob.md", "Zed_Absent.md"]
    )
    text = (folder / "smithjane.md").read_text(encoding="utf-8")
    assert "exercise 1.1" in text and "the notebook has no code" in text
    assert "roster" not in (folder / "ghost.md").read_text(encoding="utf-8")  # instructor's only


# ----------------------------------------------------------------------------------------------
# a graded notebook: executed copy, answers in words, hand scores merged back
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("marked")
    subs = base / "subs"
    subs.mkdir()
    nb = new_notebook(
        cells=[
            new_code_cell("n_boys = 16\nn_measurements = 64\nprint('counted')"),
            new_code_cell(f"answer_fixed_random = {ANSWER!r}"),
        ],
        metadata={"mlmprimer": {"chapter": "01"}},
    )
    nbformat.write(nb, subs / "ann_01-what-is-mlm.ipynb")
    out = base / "grades" / "scores.csv"
    args = [str(subs), "--out", str(out), "--quiet", "--cell-timeout", "30"]
    assert main(args) == 0
    return {"out": out, "args": args, "base": base}  # type: ignore[dict-item]


def test_executed_notebook_and_record_are_kept(marked: dict[str, Path]) -> None:
    files = output_files(marked["out"])
    executed = nbformat.read(files.executed / "ann--ann_01-what-is-mlm.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "counted\n"
    assert len(executed.cells) == 2  # the grader's own cells are not in it
    record = json.loads(files.record.read_text())
    assert record["grader"]["python"] and record["settings"]["cell_timeout"] == 30
    (entry,) = record["entries"]
    assert entry["student"] == "ann" and len(entry["sha256"]) == 64
    assert (files.originals / entry["sha256"]).is_file()
    feedback = (files.feedback / "ann.md").read_text(encoding="utf-8")
    assert "right: this is the number of boys" in feedback


def test_hand_scores_merge_back_and_survive_a_rerun(marked: dict[str, Path]) -> None:
    files = output_files(marked["out"])
    (text,) = csv_rows(files.texts)
    assert text["question"] == "ex01_4" and text["answer"] == ANSWER
    assert text["hand_score"] == "" and text["words"] == str(len(ANSWER.split()))

    sheet = marked["base"] / "marked.csv"
    with sheet.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(text))
        writer.writeheader()
        writer.writerow(dict(text, hand_score="0.5", comment="say what is shared"))
        writer.writerow(dict(text, student="nobody", hand_score="1"))
        writer.writerow(dict(text, question="ex01_1", hand_score="7"))
    assert main(["merge", "--out", str(marked["out"]), str(sheet)]) == 0

    def ann() -> dict[str, dict[str, str]]:
        return {r["question"]: r for r in csv_rows(files.scores) if r["student"] == "ann"}

    rows = ann()
    assert rows["ex01_4"]["score"] == "0.5" and rows["ex01_4"]["status"] == "hand-graded"
    assert "say what is shared" in rows["ex01_4"]["message"]
    assert rows["ex01_1"]["score"] == "1.0"  # 7 is out of range: not merged
    (wide,) = csv_rows(files.wide)
    assert wide["total"] == "1.5" and wide["to_grade_by_hand"] == ""
    assert "say what is shared" in (files.feedback / "ann.md").read_text(encoding="utf-8")
    summary = files.summary.read_text(encoding="utf-8")
    assert "no such student and question" in summary and "outside 0 to 1" in summary
    assert {r["hand_score"] for r in csv_rows(files.hand)} == {"0.5"}

    # grading again (nothing runs) keeps the hand score
    assert main(marked["args"]) == 0
    assert ann()["ex01_4"]["score"] == "0.5"

    # scores typed into the exported file itself are never overwritten before they are merged
    (text,) = csv_rows(files.texts)
    assert text["hand_score"] == "0.5"
    with files.texts.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(text))
        writer.writeheader()
        writer.writerow(dict(text, hand_score="0.75"))
    assert main(marked["args"]) == 0
    assert csv_rows(files.texts)[0]["hand_score"] == "0.75"
    assert (files.texts.parent / "scores.text-answers.new.csv").is_file()
    assert "not merged yet" in files.summary.read_text(encoding="utf-8")
    assert main(["merge", "--out", str(marked["out"]), str(files.texts)]) == 0
    assert ann()["ex01_4"]["score"] == "0.75"


def test_merge_needs_a_graded_batch(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["merge", "--out", str(tmp_path / "none.csv"), str(tmp_path / "x.csv")])
    assert stop.value.code == 2
