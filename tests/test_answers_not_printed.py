"""No exercise is answered by a number the chapter itself prints.

An exercise that asks for a number the chapter has already shown (its outputs, its glued prose)
can be answered by copying, and an instructor cannot tell who did the work. Each numeric part of
every automatic check is run once with a junk answer, which makes it compute its right answer
(the public variant's); that answer must not appear in the chapter's notebook, in its outputs or
its text, as the same number rounded to the digits printed (three significant digits at least,
or an integer of two digits or more). A number that is printed there for another reason and only
happens to round the same way is listed in ``COINCIDENCES`` with what the chapter prints it for.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from mlmprimer import check
from mlmprimer.check import core

BOOK = Path(__file__).resolve().parents[1] / "book"
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\d.]*e)")

#: (check, part) -> what the chapter prints that rounds like the answer, by chance.
COINCIDENCES = {
    ("ex03_1", "beta0_hat"): "the lower limit of the profile interval for tau, sleep study (ms)",
    ("ex04_5", "icc_est"): "the upper limit of the chapter's bootstrap interval for its ICC",
    ("ex05_1", "lambda_lake"): "sigma^2 of a radon model in the chapter's table",
    ("ex13_5", "dispersion_grouse"): "a lower limit of an odds ratio (livch3+), Contraception",
}


def _texts(cell: dict[str, Any]) -> list[str]:
    texts = ["".join(cell["source"])] if cell["cell_type"] == "markdown" else []
    for output in cell.get("outputs", []):
        if "text" in output:
            texts.append("".join(output["text"]))
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/"):
                texts.append("".join(value) if isinstance(value, list) else str(value))
    return texts


def printed_numbers(notebook: Path) -> set[tuple[float, int, int]]:
    """Every number a notebook shows: (value, decimals printed, significant digits)."""
    found = set()
    for cell in json.loads(notebook.read_text())["cells"]:
        for text in _texts(cell):
            for token in NUMBER.findall(text):
                digits = token.lstrip("-")
                decimals = len(digits.split(".")[1]) if "." in digits else 0
                significant = len(digits.replace(".", "").lstrip("0"))
                found.add((float(token), decimals, significant))
    return found


def right_answers(qid: str) -> list[tuple[str, float, bool]]:
    """(part, right answer, integer?) of each numeric part of a check, public variant."""
    seen: list[tuple[str, float, bool]] = []
    original = core.Verdict.number

    def number(self, name, value, truth, **kwargs):
        seen.append((name, float(truth()), bool(kwargs.get("integer", False))))
        return original(self, name, value, truth, **kwargs)

    question = check.QUESTIONS[qid]
    with mock.patch.object(core.Verdict, "number", number):
        getattr(check, qid)(*[0.123456] * len(question.variables))
    return seen


def shows(printed: set[tuple[float, int, int]], answer: float, integer: bool) -> list[float]:
    """The printed numbers that are ``answer`` rounded to their own digits."""
    if integer:
        return sorted({x for x, decimals, _ in printed if decimals == 0 and x == answer})
    return sorted({x for x, decimals, sig in printed if sig >= 3 and round(answer, decimals) == x})


def _chapter_notebook(chapter: str) -> Path | None:
    found = sorted(BOOK.glob(f"{chapter}-*.ipynb"))
    return found[0] if found else None


CHAPTERS = sorted({q.chapter for q in check.QUESTIONS.values() if _chapter_notebook(q.chapter)})


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_exercise_is_answered_by_its_chapter(chapter: str) -> None:
    printed = printed_numbers(_chapter_notebook(chapter))
    leaks = []
    for q in check.questions(chapter):
        if q.kind != "auto":
            continue
        for part, answer, integer in right_answers(q.qid):
            if not math.isfinite(answer) or (integer and abs(answer) < 10):
                continue
            hits = shows(printed, answer, integer)
            if hits and (q.qid, part) not in COINCIDENCES:
                leaks.append(f"{q.label} {part}: answer {answer:.6g}, the chapter prints {hits}")
    assert not leaks, "answers printed in the chapter:\n" + "\n".join(leaks)


def test_the_coincidences_are_still_there() -> None:
    """Each listed coincidence still rounds like its answer (else the entry is stale)."""
    for (qid, part), _why in COINCIDENCES.items():
        printed = printed_numbers(_chapter_notebook(check.QUESTIONS[qid].chapter))
        answers = {name: (a, integer) for name, a, integer in right_answers(qid)}
        assert part in answers, f"{qid} has no numeric part {part}"
        assert shows(printed, *answers[part]), f"{qid} {part} is no longer printed: drop it"


def test_the_scan_finds_a_printed_answer(tmp_path: Path) -> None:
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["We measured 26 boys."], "metadata": {}},
            {
                "cell_type": "code",
                "source": [],
                "metadata": {},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": ["tau 0.2348\n"]}],
            },
        ]
    }
    path = tmp_path / "01-x.ipynb"
    path.write_text(json.dumps(nb))
    printed = printed_numbers(path)
    assert shows(printed, 0.234808, False) == [0.2348]
    assert shows(printed, 26.0, True) == [26.0]
    assert shows(printed, 0.2391, False) == []
