"""The run supervisor: a separate process per submission, started with ``python -I -c``.

It is loaded without importing the course library (see ``_BOOT`` in :mod:`.runner`), so this
module and the ones it imports (:mod:`.common`, :mod:`.answers`, :mod:`.processes`) import only
the standard library at the top, and each other by relative imports.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answers import _DUMP_SOURCE
from .common import _OUTPUT_BUDGET, DUMP_TIMEOUT
from .processes import _become_subreaper, _end_tree

if TYPE_CHECKING:  # pragma: no cover
    import nbformat


class _Emitter:
    """Writes events, one JSON object a line, to the grader."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        data = (json.dumps(event) + "\n").encode("utf-8")
        with self.lock, contextlib.suppress(OSError, ValueError):
            self.stream.write(data)
            self.stream.flush()


def _supervise() -> int:
    """Entry point of the run supervisor: read the job, run it in a child, end what is left."""
    job = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    sys.stdin.close()
    emit = _Emitter(sys.stdout.buffer)
    reaper = _become_subreaper()
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if not hasattr(os, "fork"):  # pragma: no cover - Windows: no supervisor, no clean-up
        return _run_job(job, emit)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            code = _run_job(job, emit)
        except BaseException as exc:  # noqa: BLE001 - report anything, then leave
            emit({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        finally:
            os._exit(code)

    def stop(signum: int, frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    status = None
    while status is None:
        try:
            pid, code = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == child:
            status = code
    ended = _end_tree(os.getpid())
    event: dict[str, Any] = {"event": "cleanup", "ended": ended, "subreaper": reaper}
    if status is not None and os.WIFSIGNALED(status):
        event["signal"] = os.WTERMSIG(status)
    elif status is not None:
        event["exit"] = os.WEXITSTATUS(status)
    emit(event)
    return 0


def _content_size(value: Any, depth: int = 0) -> int:
    """Characters of text in an output message's content (what its output would weigh)."""
    if isinstance(value, str):
        return len(value)
    if depth > 4:
        return 0
    if isinstance(value, dict):
        return sum(_content_size(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return sum(_content_size(v, depth + 1) for v in value)
    return 0


def _run_job(job: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> int:
    """Run the notebook's code cells one by one in a fresh kernel, reading the answers after each.

    A cell that runs past its limit is interrupted (``KeyboardInterrupt`` in the kernel). If the
    grader's own cell then cannot read the answers within :data:`DUMP_TIMEOUT` seconds, the kernel
    is taken to be stuck and the run stops there, keeping the answers read so far.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    if job.get("run_as"):
        # the grader runs as root: the notebook runs as another account, which can reach
        # neither the grader's files nor its processes
        uid, gid = (int(x) for x in job["run_as"])
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    if job.get("memory_mb"):
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            limit = int(job["memory_mb"]) * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    budget = int(job.get("output_budget", _OUTPUT_BUDGET))

    class Client(NotebookClient):
        """Counts timeouts (nbclient interrupts the kernel and fakes an error reply) and keeps a
        cell's output to a budget."""

        timeouts = 0
        used = 0
        total = 0
        cut = False

        async def _async_handle_timeout(
            self, timeout: int, cell: nbformat.NotebookNode | None = None
        ) -> None | dict[str, Any]:
            self.timeouts += 1
            return await super()._async_handle_timeout(timeout, cell)

        def output(
            self,
            outs: list[nbformat.NotebookNode],
            msg: dict[str, Any],
            display_id: str | None,
            cell_index: int,
        ) -> nbformat.NotebookNode | None:
            size = _content_size(msg.get("content", {}))
            self.used += size
            self.total += size
            if self.used > budget or self.total > 10 * budget:
                if not self.cut:
                    self.cut = True
                    note = "[the grader kept no more of this cell's output]\n"
                    outs.append(nbformat.v4.new_output("stream", name="stderr", text=note))
                return None
            return super().output(outs, msg, display_id, cell_index)

    nb = nbformat.reads(job["notebook"], as_version=4)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = []
            cell.execution_count = None
    answers_file = Path(job["answers"])
    dump = nbformat.v4.new_code_cell(
        _DUMP_SOURCE.format(
            func=f"_mlmprimer_dump_{secrets.token_hex(6)}",
            names=list(job["names"]),
            path=str(answers_file),
        )
    )
    work = nbformat.v4.new_notebook(cells=[*nb.cells, dump], metadata=nb.metadata)
    timeout = float(job["timeout"])
    cell_timeout = job.get("cell_timeout")
    client = Client(
        work,
        kernel_name=job["kernel"],
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={
            "ename": "TimeoutError",
            "evalue": "stopped by the grader",
            "traceback": [],
        },
        record_timing=False,
        startup_timeout=120,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": os.getcwd()}},
    )
    raised: list[str] = []

    def on_error(cell: Any, cell_index: int, execute_reply: dict[str, Any]) -> None:
        ename = execute_reply.get("content", {}).get("ename")
        if ename not in ("TimeoutError", "KeyboardInterrupt"):
            raised.append(f"cell {cell_index + 1} raised {ename}")

    client.on_cell_error = on_error
    state: dict[str, Any] = {"finished": False, "timeout": None, "crashed": None}
    last = [""]

    def read_answers() -> bool:
        """Copy the answers out of the kernel; False if the kernel did not respond."""
        client.timeout = DUMP_TIMEOUT
        client.timeouts = 0
        with contextlib.suppress(OSError):
            answers_file.unlink()
        client.execute_cell(dump, len(work.cells) - 1, store_history=False)
        if client.timeouts:
            return False
        try:
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(answers_file, flags)
            with os.fdopen(fd, "rb") as fh:
                text = fh.read(32 * 2**20).decode("utf-8")
            answers = json.loads(text)
        except (OSError, ValueError):
            return True
        if text != last[0] and isinstance(answers, dict):
            last[0] = text
            emit({"event": "answers", "answers": answers})
        return True

    code = [
        (i, c)
        for i, c in enumerate(work.cells[:-1])
        if c.get("cell_type") == "code" and c.source.strip()
    ]
    try:
        with client.setup_kernel(
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ):
            km = client.km
            # the kernel has read its connection file: remove it, so that no other process
            # (another notebook graded at the same time) finds the kernel's key on disk
            with contextlib.suppress(OSError, TypeError, AttributeError):
                os.unlink(km.connection_file)
            provisioner = getattr(km, "provisioner", None)
            emit({"event": "started", "kernel_pid": getattr(provisioner, "pid", None)})
            start = time.monotonic()
            for position, cell in code:
                index = position + 1
                remaining = timeout - (time.monotonic() - start)
                if remaining <= 0:
                    state["timeout"] = (
                        f"the notebook ran out of time ({timeout:g} s) before cell {index}"
                    )
                    break
                per_cell = bool(cell_timeout) and float(cell_timeout) < remaining
                limit = float(cell_timeout) if per_cell else remaining
                client.timeout = max(1, math.ceil(limit))
                client.timeouts = 0
                client.used = 0
                client.cut = False
                client.execute_cell(cell, position)
                stopped = client.timeouts > 0
                if stopped:
                    state["timeout"] = (
                        f"cell {index} was stopped after {client.timeout} s"
                        if per_cell
                        else f"the notebook ran out of time ({timeout:g} s) in cell {index}"
                    )
                emit(
                    {
                        "event": "cell",
                        "cell": index,
                        "errors": raised[:],
                        "timeout": state["timeout"],
                    }
                )
                if not read_answers():
                    state["timeout"] = f"cell {index} did not stop when interrupted"
                    break
                if stopped and not per_cell:
                    break
            else:
                state["finished"] = True
    except DeadKernelError:
        state["crashed"] = "the kernel died (the notebook crashed or exited)"
    except Exception as exc:  # noqa: BLE001 - a kernel that cannot start, a broken pipe ...
        state["crashed"] = f"the notebook could not be run ({type(exc).__name__}: {exc})"
    work.cells.pop()
    emit({"event": "end", **state, "errors": raised, "notebook": nbformat.writes(work)})
    return 0
