"""A batch of submissions: reading, naming, scoping, running, scoring and resuming them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import _NOTABLE, _check, _now
from .identity import (
    _chapter_evidence,
    _exercise_names,
    _key,
    _name_match,
    _normal_chapter,
    _stem,
    identify,
)
from .outputs import _Journal, _recovered, _Writer, output_files
from .processes import _end_marked
from .reports import _publish
from .roster import _read_roster, _roster_match
from .runner import (
    _LIVE,
    _LIVE_LOCK,
    _kernel_dir,
    _new_scratch,
    _rmtree,
    _run_isolated,
    _Settings,
    _stop,
)
from .scoring import _lenient, _question_rows, _score, _source, _variant

if TYPE_CHECKING:  # pragma: no cover
    from .common import _Run
    from .outputs import OutputFiles


_MAX_BYTES = 64 * 2**20  # a submission larger than this is not read


_JUNK = {".ds_store", "thumbs.db", "desktop.ini"}


_JUNK_DIRS = {".ipynb_checkpoints", "__macosx", "__pycache__"}


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
    variants: str = "student"
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
            if any(q.has_variants for q in qs):  # whose data the notebook says it used
                e.names = sorted({*e.names, _check().core.STUDENT_ID})
            given = [e.path, e.sha256, e.scored_as or "", self.settings.key()]
            if self.options.variants != "student":  # the same file graded on other data
                given.append(f"variants={self.options.variants}")
            e.key = hashlib.sha256("\0".join(given).encode()).hexdigest()[:32]

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
        public = self.options.variants == "public"
        student = e.student if e.name_rule != "unknown" and not public else None
        rows = _score(qs, run, set(e.called), student, public)
        _student_id, mismatch = _variant(qs, run, student, public)
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
            "problems": [mismatch] if mismatch else [],
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
        e.problems += [p for p in result.get("problems", []) if p not in e.problems]
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
