"""Reading the class roster and the files of scores given by hand."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

from .identity import _key


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
