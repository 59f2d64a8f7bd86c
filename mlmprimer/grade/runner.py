"""The grader's side of a run: a sandbox folder and environment, the supervisor, its events."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import decode_answer
from .common import (
    _MARKER,
    _OUTPUT_BUDGET,
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_TIMEOUT,
    DUMP_TIMEOUT,
    _Run,
)
from .processes import _end_marked

# Loads the supervisor without importing the course library, whose import is slow and which the
# supervisor does not need: an empty package named ``_mlmprimer_grade_run`` stands for this
# folder, so :mod:`.supervisor` and the few modules it imports are loaded from here, by relative
# imports, and ``mlmprimer/__init__.py`` never runs. The supervisor validates no URIs, so
# jsonschema's URI grammar (seconds to build) is left out.
_BOOT = (
    "import sys, types\n"
    "sys.modules.setdefault('rfc3987_syntax', None)\n"
    "package = types.ModuleType('_mlmprimer_grade_run')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules[package.__name__] = package\n"
    "from _mlmprimer_grade_run.supervisor import _supervise\n"
    "sys.exit(_supervise())\n"
)


_LIVE: dict[int, tuple[subprocess.Popen[bytes], str]] = {}


_LIVE_LOCK = threading.Lock()


_KERNEL_DIRS: dict[str, Path] = {}


@dataclass(frozen=True)
class _Settings:
    """What a run depends on."""

    timeout: float = DEFAULT_TIMEOUT
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT
    kernel: str = "python3"
    memory_mb: int | None = None
    scratch: str | None = None
    pass_env: tuple[str, ...] = ()
    run_as: tuple[int, int] | None = None

    def key(self) -> str:
        """The settings that change a score (results are reused only under the same ones)."""
        return json.dumps([self.timeout, self.cell_timeout, self.kernel, self.memory_mb])


def _kernel_dir(name: str) -> Path:
    """The folder of the Jupyter kernel spec ``name`` (raises ``ValueError`` if there is none)."""
    if name not in _KERNEL_DIRS:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        try:
            _KERNEL_DIRS[name] = Path(KernelSpecManager().get_kernel_spec(name).resource_dir)
        except NoSuchKernel:
            raise ValueError(
                f"there is no Jupyter kernel named {name!r} (see `jupyter kernelspec list`)"
            ) from None
    return _KERNEL_DIRS[name]


def _sandbox_env(home: Path, token: str, keep: Sequence[str]) -> dict[str, str]:
    """The whole environment of a run: nothing of the grader's but what is named here."""
    local = home / ".local" / "share"
    env = {
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "TMP": str(home / "tmp"),
        "TEMP": str(home / "tmp"),
        "PATH": os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        ),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "IPYTHONDIR": str(home / ".ipython"),
        "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
        "JUPYTER_DATA_DIR": str(local / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(local / "jupyter" / "runtime"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(local),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        _MARKER: token,
    }
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TZ", *keep):
        if name in os.environ:
            env[name] = os.environ[name]
    if "OPENBLAS_CORETYPE" in os.environ:
        env["OPENBLAS_CORETYPE"] = os.environ["OPENBLAS_CORETYPE"]
    return env


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for folder, dirs, files in os.walk(root):
        os.chown(folder, uid, gid)
        for name in [*dirs, *files]:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _account(spec: str) -> tuple[int, int]:
    """``"nobody"``, ``"65534"`` or ``"65534:65534"`` -> ``(uid, gid)``.

    Examples
    --------
    >>> _account("1234:5678")
    (1234, 5678)
    """
    name, _, group = spec.partition(":")
    if name.isdigit():
        uid = int(name)
        gid = int(group) if group.isdigit() else uid
        return uid, gid
    import pwd

    entry = pwd.getpwnam(name)
    if group:
        import grp

        return entry.pw_uid, int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    return entry.pw_uid, entry.pw_gid


def _blocked_for(account: tuple[int, int], paths: Sequence[Path]) -> Path | None:
    """The first folder on the way to one of ``paths`` that ``account`` may not enter."""
    import stat

    uid, gid = account
    for path in paths:
        path = path.resolve()
        for folder in [*reversed(path.parents), path]:
            try:
                info = folder.stat()
            except OSError:
                return folder
            if not stat.S_ISDIR(info.st_mode):
                continue
            mode = info.st_mode
            if info.st_uid == uid:
                ok = mode & stat.S_IXUSR
            elif info.st_gid == gid:
                ok = mode & stat.S_IXGRP
            else:
                ok = mode & stat.S_IXOTH
            if not ok:
                return folder
    return None


def _safe_name(name: str, limit: int = 80) -> str:
    """A file name made of safe characters only.

    Examples
    --------
    >>> _safe_name("../Jane Smith/04-icc.ipynb")
    'Jane_Smith_04-icc.ipynb'
    """
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip("._") or "file"
    return cleaned[-limit:]


def _rmtree(path: Path) -> None:
    def retry(func: Callable[..., Any], target: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)

    with contextlib.suppress(OSError):
        shutil.rmtree(path, onerror=retry)


def _new_scratch(settings: _Settings) -> tuple[Path, str]:
    """A fresh temporary directory for one run, and the marker of the run's processes."""
    return (
        Path(tempfile.mkdtemp(prefix="mlmprimer-grade-", dir=settings.scratch)),
        secrets.token_hex(16),
    )


def _run_isolated(
    notebook_name: str,
    nb_json: str,
    names: Sequence[str],
    settings: _Settings,
    scratch: tuple[Path, str] | None = None,
) -> _Run:
    """Run one notebook in its own temporary directory, supervisor and kernel; end all of it.

    ``scratch`` is the directory and marker of :func:`_new_scratch` (made here when not given);
    the directory is removed when the run is over.
    """
    started = time.monotonic()
    run = _Run()
    scratch, token = scratch or _new_scratch(settings)
    try:
        kernel_dir = _kernel_dir(settings.kernel)
    except ValueError as exc:
        _rmtree(scratch)
        run.crashed = str(exc)
        return run
    events: list[dict[str, Any]] = []
    leftover: list[str] = []
    stderr = ""
    wall = settings.timeout + DUMP_TIMEOUT + 180
    stopped_by_grader = False
    try:
        work, home, answers = scratch / "work", scratch / "home", scratch / "answers"
        for folder in (work, home / "tmp", answers):
            folder.mkdir(parents=True)
        (work / _safe_name(notebook_name)).write_text(nb_json, encoding="utf-8")
        spec_dir = home / ".local" / "share" / "jupyter" / "kernels" / settings.kernel
        shutil.copytree(kernel_dir, spec_dir)
        if settings.run_as is not None:
            _chown_tree(scratch, *settings.run_as)
        job = {
            "notebook": nb_json,
            "names": list(names),
            "answers": str(answers / f"answers-{secrets.token_hex(8)}.json"),
            "timeout": settings.timeout,
            "cell_timeout": settings.cell_timeout,
            "kernel": settings.kernel,
            "memory_mb": settings.memory_mb,
            "run_as": list(settings.run_as) if settings.run_as else None,
            "output_budget": _OUTPUT_BUDGET,
        }
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(  # noqa: S603 - this interpreter, this file
                [sys.executable, "-I", "-c", _BOOT, str(Path(__file__).resolve().parent)],
                cwd=work,
                env=_sandbox_env(home, token, settings.pass_env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                start_new_session=True,
                close_fds=True,
            )
            with _LIVE_LOCK:
                _LIVE[proc.pid] = (proc, token)
            reader = threading.Thread(target=_read_events, args=(proc.stdout, events), daemon=True)
            reader.start()
            try:
                assert proc.stdin is not None
                with contextlib.suppress(OSError):
                    proc.stdin.write(json.dumps(job).encode("utf-8"))
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                reader.join(wall)
                if reader.is_alive():
                    stopped_by_grader = True
                    _stop(proc)
                    reader.join(15)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(15)
            finally:
                _stop(proc)
                leftover = _end_marked(token)
                with _LIVE_LOCK:
                    _LIVE.pop(proc.pid, None)
            errors.seek(0)
            stderr = errors.read()[-2000:].decode("utf-8", "replace")
    finally:
        _rmtree(scratch)
    _collect_run(run, events, leftover, stderr, stopped_by_grader, wall)
    run.seconds = time.monotonic() - started
    return run


def _read_events(stream: Any, sink: list[dict[str, Any]]) -> None:
    while True:
        try:
            line = stream.readline(256 * 2**20)
        except (OSError, ValueError):
            return
        if not line:
            return
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                sink.append(event)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End a supervisor: ask (it then ends the notebook's processes), then kill its group."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    if hasattr(os, "killpg"):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.wait(5)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _collect_run(
    run: _Run,
    events: list[dict[str, Any]],
    leftover: list[str],
    stderr: str,
    stopped_by_grader: bool,
    wall: float,
) -> None:
    """Fill ``run`` from the supervisor's events."""
    kernel_pid = None
    end = cleanup = None
    raw: dict[str, Any] = {}
    for event in events:
        kind = event.get("event")
        if kind == "started":
            kernel_pid = event.get("kernel_pid")
        elif kind == "answers" and isinstance(event.get("answers"), dict):
            raw = event["answers"]
        elif kind == "cell":
            run.errors = [str(e) for e in event.get("errors") or []]
            run.timeout = event.get("timeout") or run.timeout
        elif kind == "end":
            end = event
        elif kind == "cleanup":
            cleanup = event
        elif kind == "error":
            run.notes.append(f"the grader's run failed: {event.get('message')}")
    answers = {}
    for name, value in raw.items():
        with contextlib.suppress(Exception):
            answers[str(name)] = decode_answer(value)
    run.answers = answers
    if end is not None:
        run.finished = bool(end.get("finished"))
        run.timeout = end.get("timeout") or run.timeout
        run.crashed = end.get("crashed")
        run.errors = [str(e) for e in end.get("errors") or run.errors]
        run.executed = end.get("notebook") if isinstance(end.get("notebook"), str) else None
        run.abnormal = run.crashed is not None
    elif stopped_by_grader:
        run.crashed = f"the grader stopped the notebook after {wall:.0f} s (it was stuck)"
    elif cleanup is not None and "signal" in cleanup:
        name = _signal_name(int(cleanup["signal"]))
        run.crashed = (
            f"the process running the notebook was ended by {name} (the notebook may have "
            "ended its own grading process)"
        )
        run.abnormal = True
    elif cleanup is None and events:
        run.crashed = "the grader's supervisor of this notebook was ended before it finished"
        run.abnormal = True
    else:
        tail = stderr.strip().splitlines()[-1:] or ["no message"]
        run.crashed = f"the notebook could not be run ({tail[0][:300]})"
    ended = [
        item
        for item in ((cleanup or {}).get("ended") or []) + leftover
        if not (kernel_pid and str(item).startswith(f"pid {kernel_pid}:"))
    ]
    if ended and run.finished:
        run.leftover = [str(e) for e in ended]
        run.notes.append(
            f"the notebook left {len(ended)} process(es) running; the grader ended them"
        )
    elif ended:
        run.leftover = [str(e) for e in ended]
