"""Who handed a file in (the file-name rules) and which chapter it belongs to."""

from __future__ import annotations

import functools
import re
from collections import Counter
from pathlib import Path
from typing import Any

from .common import Identity, _check
from .scoring import _source

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


_CHAPTER_IN_NAME = re.compile(r"(?<![0-9a-z])(\d{2}|a\d)-[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*")


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
