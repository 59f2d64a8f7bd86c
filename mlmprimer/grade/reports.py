"""Rendering the reports: long, wide and LMS CSV files, feedback, summary and run record."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import _NOTABLE, COLUMNS, Row, _check, _now
from .identity import _key
from .roster import _load_hand, _read_hand_file, _roster_match
from .runner import _safe_name
from .scoring import _question_rows

if TYPE_CHECKING:  # pragma: no cover
    from mlmprimer.check import Question

    from .batch import _Batch, _Entry


#: Formats of the LMS export (``--lms``): column names of ``scores.lms.csv``.
LMS_FORMATS: dict[str, tuple[str, ...]] = {
    "generic": ("student", "id", "email", "score", "max_score", "percent", "status", "feedback"),
    "canvas": ("Student", "ID", "SIS User ID", "SIS Login ID", "Section"),
}


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
