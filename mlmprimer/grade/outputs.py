"""The output files: their names, atomic writes and the journal of finished submissions."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import _now
from .runner import _safe_name

if TYPE_CHECKING:  # pragma: no cover
    from .batch import _Entry


@dataclass(frozen=True)
class OutputFiles:
    """Where a batch writes: every name starts with the stem of ``--out`` (see
    :func:`output_files`)."""

    scores: Path
    stem: str

    def _sibling(self, suffix: str) -> Path:
        return self.scores.parent / f"{self.stem}{suffix}"

    @property
    def wide(self) -> Path:
        return self._sibling(".wide.csv")

    @property
    def lms(self) -> Path:
        return self._sibling(".lms.csv")

    @property
    def summary(self) -> Path:
        return self._sibling(".summary.md")

    @property
    def texts(self) -> Path:
        return self._sibling(".text-answers.csv")

    @property
    def hand(self) -> Path:
        return self._sibling(".hand.csv")

    @property
    def record(self) -> Path:
        return self._sibling(".run.json")

    @property
    def journal(self) -> Path:
        return self._sibling(".journal.jsonl")

    @property
    def feedback(self) -> Path:
        return self._sibling(".feedback")

    @property
    def executed(self) -> Path:
        return self._sibling(".executed")

    @property
    def originals(self) -> Path:
        return self._sibling(".originals")

    def all(self) -> dict[str, Path]:
        names = ("wide", "lms", "summary", "texts", "hand", "record", "journal")
        out = {"scores": self.scores, **{n: getattr(self, n) for n in names}}
        out.update(feedback=self.feedback, executed=self.executed, originals=self.originals)
        return out


def output_files(out: Path | str) -> OutputFiles:
    """The files a batch graded with ``--out out`` writes.

    ``out`` names the scores file (``grades/scores.csv``); every other file sits next to it and
    starts with the same name. An ``out`` without ``.csv`` (``grades/``) is a folder that gets
    ``scores.csv`` and the rest.

    Examples
    --------
    >>> files = output_files("grades/scores.csv")
    >>> files.wide.as_posix(), files.feedback.as_posix()
    ('grades/scores.wide.csv', 'grades/scores.feedback')
    >>> output_files("grades/").scores.as_posix()
    'grades/scores.csv'
    """
    text = str(out)
    path = Path(out)
    if text.endswith(("/", os.sep)) or path.suffix.lower() != ".csv":
        path = path / "scores.csv"
    return OutputFiles(path, path.stem)


def _recovered(path: Path) -> Path:
    """``scores.csv`` -> ``scores.recovered.csv``; ``scores.feedback`` -> ``....recovered``."""
    if path.suffix in (".csv", ".md", ".json", ".jsonl"):
        return path.with_name(f"{path.stem}.recovered{path.suffix}")
    return path.with_name(f"{path.name}.recovered")


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, data: bytes, sync: bool = False, private: bool = False) -> None:
    """Write ``data`` to a temporary file next to ``path``, then move it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o600 if private else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _Writer:
    """Writes output files atomically; a blocked path gets a ``.recovered`` sibling instead."""

    def __init__(self, files: OutputFiles) -> None:
        self.files = files
        self.moved: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self._cache: dict[Path, tuple[bytes, tuple[int, int]]] = {}

    def where(self, path: Path) -> Path:
        moved = self.moved.get(str(path))
        return Path(moved) if moved else path

    def write(
        self, path: Path, data: bytes, sync: bool = False, private: bool = False
    ) -> Path | None:
        target = self.where(path)
        if (
            self._cache.get(target, (None,))[0] == data
            and self._stamp(target) == (self._cache[target][1])
        ):
            return target  # unchanged, and nobody touched the file since
        for candidate in dict.fromkeys([target, _recovered(path)]):
            try:
                _atomic_write(candidate, data, sync, private)
            except OSError as exc:
                self.failed[str(path)] = f"{type(exc).__name__}: {exc}"
                continue
            if candidate != path and str(path) not in self.moved:
                self.moved[str(path)] = str(candidate)
                print(
                    f"mlmprimer-grade: cannot write {path} ({self.failed.get(str(path))}); "
                    f"wrote {candidate} instead",
                    file=sys.stderr,
                )
            self.failed.pop(str(path), None)
            self._cache[candidate] = (data, self._stamp(candidate))
            return candidate
        return None

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        try:
            info = path.lstat()
        except OSError:
            return (-1, -1)
        return (info.st_ino, info.st_mtime_ns)

    def folder(self, path: Path) -> Path | None:
        target = self.where(path)
        for candidate in dict.fromkeys([target, _recovered(path)]):
            try:
                candidate.mkdir(parents=True, exist_ok=True)
                if candidate.is_dir() and not candidate.is_symlink():
                    if candidate != path and str(path) not in self.moved:
                        self.moved[str(path)] = str(candidate)
                    return candidate
            except OSError as exc:
                self.failed[str(path)] = f"{type(exc).__name__}: {exc}"
        return None

    def executed(self, e: _Entry, notebook: str) -> str:
        folder = self.folder(self.files.executed)
        if folder is None:
            return ""
        name = f"{_safe_name(e.student, 40)}--{_safe_name(e.name, 60)}"
        if not name.lower().endswith(".ipynb"):
            name += ".ipynb"
        written = self.write(folder / name, notebook.encode("utf-8"))
        return str(written) if written else ""

    def original(self, sha: str, data: bytes) -> None:
        folder = self.folder(self.files.originals)
        if folder is not None and not (folder / sha).is_file():
            self.write(folder / sha, data, private=True)


class _Journal:
    """The append-only record of started and finished submissions (for resuming)."""

    def __init__(self, files: OutputFiles) -> None:
        self.paths = [files.journal, _recovered(files.journal)]
        self.target = files.journal

    def append(self, event: dict[str, Any]) -> None:
        event = {"v": 1, "time": _now(), **event}
        line = (json.dumps(event) + "\n").encode("utf-8")
        for path in dict.fromkeys([self.target, *self.paths]):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                continue
            if path != self.target:
                print(f"mlmprimer-grade: journal continued in {path}", file=sys.stderr)
                self.target = path
            return

    def events(self) -> list[dict[str, Any]]:
        out = []
        for path in self.paths:
            try:
                lines = path.read_bytes().splitlines()
            except OSError:
                continue
            for line in lines:
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict):
                        out.append(event)
        return sorted(out, key=lambda ev: str(ev.get("time", "")))

    def load(self) -> dict[str, dict[str, Any]]:
        """``key -> {"done": result or None, "open": starts not followed by an end}``."""
        state: dict[str, dict[str, Any]] = {}
        for ev in self.events():
            key = ev.get("key")
            if not isinstance(key, str):
                continue
            item = state.setdefault(key, {"done": None, "open": []})
            if ev.get("type") == "start":
                item["open"].append(ev)
            elif ev.get("type") == "done" and isinstance(ev.get("result"), dict):
                item["done"], item["open"] = ev["result"], []
            elif ev.get("type") == "abort" and item["open"]:
                item["open"].pop()
        return state

    def seen(self) -> dict[str, str]:
        """``path -> sha256`` of each file when this batch first read it."""
        out: dict[str, str] = {}
        for ev in self.events():
            if ev.get("type") == "seen" and isinstance(ev.get("files"), dict):
                for path, sha in ev["files"].items():
                    out.setdefault(str(path), str(sha))
        return out

    def note_seen(self, entries: list[_Entry]) -> None:
        known = self.seen()
        new = {e.path: e.sha256 for e in entries if e.sha256 and e.path not in known}
        if new:
            self.append({"type": "seen", "files": new})

    def restart(self) -> None:
        for path in self.paths:
            with contextlib.suppress(OSError):
                path.unlink()
