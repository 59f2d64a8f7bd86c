"""Processes: finding and ending everything a notebook started."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections import defaultdict

from .common import _MARKER


def _process_table() -> dict[int, tuple[int, str]]:
    """``pid -> (parent pid, state)`` of every process (Linux ``/proc``; empty elsewhere)."""
    table: dict[int, tuple[int, str]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) >= 2:
            table[int(name)] = (int(fields[1]), fields[0].decode("ascii", "replace"))
    return table


def _descendants(root: int) -> list[int]:
    """Living descendants of ``root`` (not counting it)."""
    table = _process_table()
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _state) in table.items():
        children[ppid].append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child != root and child not in found:
                found.append(child)
                todo.append(child)
    return [p for p in found if table[p][1] not in ("Z", "X")]


def _describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        cmd = ""
    return f"pid {pid}: {cmd[:120] or '?'}"


def _reap() -> None:
    """Collect the exit status of any child that has ended (a subreaper inherits orphans)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except (ChildProcessError, OSError):
            return
        if pid == 0:
            return


def _end_tree(root: int) -> list[str]:
    """Kill every descendant of ``root`` until none is left; describe the ones ended."""
    ended: dict[int, str] = {}
    for _ in range(200):
        alive = _descendants(root)
        if not alive:
            break
        for pid in alive:
            ended.setdefault(pid, _describe(pid))
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        _reap()
        time.sleep(0.02)
    _reap()
    return list(ended.values())


def _end_marked(token: str) -> list[str]:
    """Kill every process whose environment carries this run's marker (Linux)."""
    marker = f"{_MARKER}={token}".encode()
    ended = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return ended
    for name in names:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                env = fh.read()
        except OSError:
            continue
        if marker in env.split(b"\0"):
            ended.append(_describe(int(name)))
            with contextlib.suppress(OSError):
                os.kill(int(name), signal.SIGKILL)
    return ended


def _become_subreaper() -> bool:
    """Make orphaned descendants of this process its children again (Linux ``prctl``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(36, 1, 0, 0, 0)) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):  # pragma: no cover - no usable libc
        return False
