"""The grader against hostile and broken submissions.

One batch holds honest students and notebooks that overwrite another student's file, leave a
process behind that later tries to rewrite the scores, kill the process running them, claim
another student's name, belong to another chapter, loop for ever, or are not notebooks at all.
It is graded once, two at a time; the tests then read what the grader wrote. Two more batches
block the output path with a folder, and kill the grader itself (then resume).

The notebooks are small and synthetic (chapter 1's first answers, no imports of the course
library), so that a kernel's run costs little.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from mlmprimer.grade import main

ROOT = Path(__file__).resolve().parent.parent
CELL_TIMEOUT = 8  # the synthetic cells take well under a second; the endless loop takes this
LEFTOVER_DELAY = 20  # seconds the left-behind process waits before it strikes

ANSWER = (
    "The fixed part is the line shared by every boy: the mean intercept and the mean slope of "
    "age. The random part lets each boy have his own intercept and slope around those means."
)
GOOD = [
    "n_boys = 16\nn_measurements = 64",
    f"answer_fixed_random = {ANSWER!r}",
]


def notebook(cells: list[str], **meta: str) -> nbformat.NotebookNode:
    return new_notebook(
        cells=[new_code_cell(c) for c in cells],
        metadata={"mlmprimer": {"chapter": "01", **meta}},
    )


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def read_rows(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    table: dict[str, dict[str, dict[str, str]]] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            table.setdefault(row["student"], {})[row["question"]] = row
    return table


def total(rows: dict[str, dict[str, str]]) -> float:
    return sum(float(r["score"]) for r in rows.values())


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] not in ("Z", "X")
    except OSError:
        return False


needs_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process clean-up is checked through /proc"
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    base = tmp_path_factory.mktemp("hostile")
    subs, out = base / "submissions", base / "grades"
    scores = out / "scores.csv"
    subs.mkdir()
    pid_file, marker = base / "leftover.pid", base / "leftover-struck"

    write(notebook(GOOD), subs / "alice_01-what-is-mlm.ipynb")
    victim = write(notebook(GOOD), subs / "zoe_01-what-is-mlm.ipynb")
    # looks around, then overwrites a later student's notebook before it is graded
    snoop = (
        "import json, os, sys\n"
        "key = sys.argv[sys.argv.index('-f') + 1]\n"
        "print(json.dumps({'cwd': sorted(os.listdir('.')), 'env': dict(os.environ),\n"
        "                  'home': os.path.expanduser('~'), 'where': os.getcwd(),\n"
        "                  'key_on_disk': os.path.exists(key)}))\n"
        f"open({str(victim)!r}, 'w').write('{{\"cells\": []}}')"
    )
    write(notebook([snoop, *GOOD]), subs / "mallory_01-what-is-mlm.ipynb")
    # leaves a detached process behind (new session, empty environment) that would rewrite
    # the scores file after a while
    later = (
        "import os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        f"time.sleep({LEFTOVER_DELAY})\n"
        f"open({str(marker)!r}, 'w').write('struck')\n"
        f"open({str(scores)!r}, 'w').write('student\\nnobody\\n')\n"
    )
    spawn = (
        "import os, subprocess, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        f"    subprocess.Popen([sys.executable, '-c', {later!r}], env={{}},\n"
        "                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,\n"
        "                     stderr=subprocess.DEVNULL, start_new_session=True)\n"
        "    os._exit(0)\n"
        f"while not os.path.exists({str(pid_file)!r}):\n"
        "    time.sleep(0.1)"
    )
    write(notebook([GOOD[0], spawn, GOOD[1]]), subs / "dan_01-what-is-mlm.ipynb")
    # kills the process that runs it, after its first answer
    kill = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"
    write(notebook([GOOD[0], kill, GOOD[1]]), subs / "kim_01-what-is-mlm.ipynb")
    # claims to be alice in its metadata
    write(notebook(GOOD, student="alice"), subs / "eve_01-what-is-mlm.ipynb")
    # chapter 3's notebook in a chapter-1 batch
    ch03 = new_notebook(
        cells=[new_code_cell("theta_hat = 0.9\ntau2_hat = 1.0\nsigma2_hat = 2.0")],
        metadata={"mlmprimer": {"chapter": "03"}},
    )
    write(ch03, subs / "fay_03-null-model.ipynb")
    # upper-case extension, a zip of the notebook, corrupt JSON
    write(notebook(GOOD), subs / "gus_01-what-is-mlm.IPYNB")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("01-what-is-mlm.ipynb", nbformat.writes(notebook(GOOD)))
    (subs / "hal_01-what-is-mlm.zip").write_bytes(buffer.getvalue())
    text = nbformat.writes(notebook(GOOD))
    (subs / "ian_01-what-is-mlm.ipynb").write_text(text[: len(text) // 2])
    # an endless loop between two answers
    write(notebook([GOOD[0], "while True:\n    pass", GOOD[1]]), subs / "joe_01-what-is-mlm.ipynb")
    # system files an LMS or an OS adds
    (subs / ".DS_Store").write_bytes(b"\0\0")

    status = main(
        [
            str(subs),
            "--out",
            str(scores),
            "--chapter",
            "01",
            "--jobs",
            "2",
            "--cell-timeout",
            str(CELL_TIMEOUT),
            "--quiet",
        ]
    )
    return {
        "status": status,
        "rows": read_rows(scores),
        "scores": scores,
        "out": out,
        "subs": subs,
        "victim": victim,
        "pid_file": pid_file,
        "marker": marker,
        "summary": (out / "scores.summary.md").read_text(encoding="utf-8"),
        "record": json.loads((out / "scores.run.json").read_text(encoding="utf-8")),
    }


HONEST = ("alice", "zoe", "mallory", "dan", "eve", "gus", "joe")


def test_every_file_is_reported_and_honest_scores_are_intact(hostile) -> None:  # noqa: ANN001
    rows = hostile["rows"]
    assert hostile["status"] == 0
    expected = {*HONEST, "kim", "fay", "hal", "ian"}
    assert set(rows) == expected
    questions = {f"ex01_{k}" for k in range(1, 6)}
    for student in expected:
        assert set(rows[student]) == questions, student
    for student in HONEST:
        got = {q: float(r["score"]) for q, r in rows[student].items()}
        assert got["ex01_1"] == 1.0 and got["ex01_4"] == 1.0, (student, got)
        assert rows[student]["ex01_1"]["status"] == "correct"
        assert rows[student]["ex01_4"]["status"] == "recorded"
    # the system file is left out, and said to be
    assert any(p.endswith(".DS_Store") for p in hostile["record"]["ignored"])


def test_overwritten_submission_is_graded_as_handed_in(hostile) -> None:  # noqa: ANN001
    assert hostile["victim"].read_text() == '{"cells": []}'  # the attack did happen
    assert total(hostile["rows"]["zoe"]) == 2.0
    assert "changed or removed while the batch ran" in hostile["rows"]["zoe"]["ex01_1"]["message"]
    assert "zoe_01-what-is-mlm.ipynb" in hostile["summary"]


def test_kernel_sees_only_its_own_notebook(hostile) -> None:  # noqa: ANN001
    executed = hostile["out"] / "scores.executed" / "mallory--mallory_01-what-is-mlm.ipynb"
    nb = nbformat.read(executed, as_version=4)
    printed = json.loads(nb.cells[0].outputs[0]["text"])
    assert printed["cwd"] == ["mallory_01-what-is-mlm.ipynb"]
    forbidden = [str(hostile["subs"]), str(hostile["out"]), str(ROOT / "solutions")]
    for name, value in printed["env"].items():
        assert not any(f in value for f in forbidden), (name, value)
    for where in (printed["home"], printed["where"]):
        assert not any(where.startswith(f) for f in forbidden)
    assert "mlmprimer-grade-" in printed["where"]
    assert printed["key_on_disk"] is False  # the kernel's connection file is removed
    assert not Path(printed["where"]).exists()  # the temporary directory is gone


@needs_proc
def test_process_left_behind_is_ended(hostile) -> None:  # noqa: ANN001
    pid = int(hostile["pid_file"].read_text())
    assert not alive(pid)
    written = hostile["scores"].read_bytes()
    # give the process time to strike, had it survived
    strike = hostile["pid_file"].stat().st_mtime + LEFTOVER_DELAY + 2
    time.sleep(max(0.0, strike - time.time()))
    assert not hostile["marker"].exists()
    assert hostile["scores"].read_bytes() == written
    dan = hostile["rows"]["dan"]
    assert "left 1 process(es) running" in dan["ex01_1"]["message"]
    assert total(dan) == 2.0


def test_notebook_that_kills_its_runner_is_reported(hostile) -> None:  # noqa: ANN001
    kim = hostile["rows"]["kim"]
    assert float(kim["ex01_1"]["score"]) == 1.0  # answered before the kill
    assert kim["ex01_4"]["status"] == "crashed"
    assert "ended by SIGKILL" in kim["ex01_4"]["message"]


def test_metadata_cannot_claim_another_name(hostile) -> None:  # noqa: ANN001
    rows = hostile["rows"]
    assert {r["notebook"] for r in rows["alice"].values()} == {"alice_01-what-is-mlm.ipynb"}
    message = rows["eve"]["ex01_1"]["message"]
    assert "metadata names 'alice'; graded as 'eve'" in message
    assert "metadata names 'alice'" in hostile["summary"]


def test_other_chapter_and_unexpected_files_get_a_row_saying_why(hostile) -> None:  # noqa: ANN001
    rows = hostile["rows"]
    assert {r["status"] for r in rows["fay"].values()} == {"wrong-chapter"}
    assert total(rows["fay"]) == 0.0
    assert "chapter 03" in rows["fay"]["ex01_1"]["message"]
    assert ".IPYNB" in rows["gus"]["ex01_1"]["message"]
    assert {r["status"] for r in rows["hal"].values()} == {"invalid"}
    assert "zip archive" in rows["hal"]["ex01_1"]["message"]
    assert "unpack it" in rows["hal"]["ex01_1"]["message"]
    assert {r["status"] for r in rows["ian"].values()} == {"invalid"}
    assert "not valid JSON" in rows["ian"]["ex01_1"]["message"]


def test_endless_loop_costs_one_cell(hostile) -> None:  # noqa: ANN001
    joe = hostile["rows"]["joe"]
    assert joe["ex01_4"]["status"] == "recorded"  # the answer after the loop
    assert f"cell 2 was stopped after {CELL_TIMEOUT} s" in joe["ex01_1"]["message"]


def test_rerun_reuses_results_and_keeps_the_copy_first_read(hostile) -> None:  # noqa: ANN001
    before = hostile["record"]
    args = [str(hostile["subs"]), "--out", str(hostile["scores"]), "--chapter", "01"]
    started = time.monotonic()
    assert main([*args, "--quiet", "--cell-timeout", str(CELL_TIMEOUT)]) == 0
    assert time.monotonic() - started < 60  # nothing ran again
    rows = read_rows(hostile["scores"])
    assert total(rows["zoe"]) == 2.0  # not re-graded from the overwritten file
    assert "changed after this batch first read it" in rows["zoe"]["ex01_1"]["message"]
    for student in HONEST:
        assert total(rows[student]) == total(hostile["rows"][student])
    after = json.loads((hostile["out"] / "scores.run.json").read_text())
    seconds = {e["file"]: e["seconds"] for e in after["entries"]}
    assert seconds == {e["file"]: e["seconds"] for e in before["entries"]}


# ----------------------------------------------------------------------------------------------
# the output path blocked by a folder
# ----------------------------------------------------------------------------------------------


def test_output_path_blocked_before_the_run(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    (subs).mkdir()
    (subs / "ann_01-what-is-mlm.ipynb").write_text("")
    (subs / "ben_01-what-is-mlm.ipynb").write_text("{broken")
    out = tmp_path / "grades" / "scores.csv"
    out.mkdir(parents=True)  # a folder where the scores file should go
    assert main([str(subs), "--out", str(out), "--quiet"]) == 1
    recovered = read_rows(tmp_path / "grades" / "scores.recovered.csv")
    assert set(recovered) == {"ann", "ben"}
    summary = (tmp_path / "grades" / "scores.summary.md").read_text()
    assert "blocked" in summary and "scores.recovered.csv" in summary
    assert out.is_dir() and not any(out.iterdir())  # nothing was written into the folder


def test_output_path_blocked_during_the_run(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    out = tmp_path / "grades" / "scores.csv"
    block = f"import os\nos.remove({str(out)!r})\nos.mkdir({str(out)!r})"
    write(notebook([*GOOD, block]), subs / "amy_01-what-is-mlm.ipynb")
    write(notebook(GOOD), subs / "bea_01-what-is-mlm.ipynb")
    args = [str(subs), "--out", str(out), "--quiet", "--cell-timeout", str(CELL_TIMEOUT)]
    assert main(args) == 1
    assert out.is_dir()
    rows = read_rows(tmp_path / "grades" / "scores.recovered.csv")
    assert total(rows["amy"]) == 2.0 and total(rows["bea"]) == 2.0
    journal = (tmp_path / "grades" / "scores.journal.jsonl").read_text().splitlines()
    assert sum(json.loads(line)["type"] == "done" for line in journal) == 2


# ----------------------------------------------------------------------------------------------
# notebooks run as another account (when the grader is root)
# ----------------------------------------------------------------------------------------------


@needs_proc
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_run_as_another_account(tmp_path: Path) -> None:
    subs, out = tmp_path / "subs", tmp_path / "grades"
    probe = (
        "import json, os\n"
        "report = {'uid': os.getuid()}\n"
        f"for what, act in [('write', lambda: open({str(out / 'x')!r}, 'w')),\n"
        f"                  ('signal', lambda: os.kill({os.getpid()}, 0))]:\n"
        "    try:\n"
        "        act()\n"
        "        report[what] = 'done'\n"
        "    except OSError as exc:\n"
        "        report[what] = type(exc).__name__\n"
        "print(json.dumps(report))"
    )
    write(notebook([probe, *GOOD]), subs / "una_01-what-is-mlm.ipynb")
    args = [str(subs), "--out", str(out / "scores.csv"), "--quiet", "--run-as", "nobody"]
    reachable = all(
        p.stat().st_mode & stat.S_IXOTH
        for p in Path(sys.executable).resolve().parents
        if p != Path("/")
    )
    if not reachable:  # this Python lives where other accounts cannot go: refused up front
        with pytest.raises(SystemExit) as stop:
            main(args)
        assert stop.value.code == 2
        return
    out.mkdir(mode=0o700)
    assert main(args) == 0
    executed = out / "scores.executed" / "una--una_01-what-is-mlm.ipynb"
    report = json.loads(nbformat.read(executed, as_version=4).cells[0].outputs[0]["text"])
    assert report["uid"] != 0
    assert report["write"] == "PermissionError" and report["signal"] == "PermissionError"
    assert total(read_rows(out / "scores.csv")["una"]) == 2.0


# ----------------------------------------------------------------------------------------------
# a notebook that kills the grader itself
# ----------------------------------------------------------------------------------------------

KILL_GRADER = """
import os, signal

def parent(pid):
    with open(f"/proc/{pid}/stat") as fh:
        raw = fh.read()
    return int(raw[raw.rfind(")") + 2:].split()[1])

chain, pid = [], os.getpid()
while pid > 1:
    pid = parent(pid)
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        cmd = fh.read().replace(b"\\0", b" ")
    if b"-m mlmprimer.grade" in cmd or b"_mlmprimer_grade_run" in cmd:
        chain.append(pid)
for pid in reversed(chain):  # the grader first: its supervisor would be quicker otherwise
    os.kill(pid, signal.SIGKILL)
"""


@needs_proc
@pytest.mark.slow
def test_grader_killed_by_a_notebook_loses_nothing_and_resumes(tmp_path: Path) -> None:
    subs, out = tmp_path / "subs", tmp_path / "grades" / "scores.csv"
    runs = tmp_path / "runs.log"  # each notebook notes here that it ran

    def counted(name: str) -> list[str]:
        return [f"open({str(runs)!r}, 'a').write({name!r} + '\\n')", *GOOD]

    write(notebook(counted("ada")), subs / "ada_01-what-is-mlm.ipynb")
    write(notebook([*counted("max"), KILL_GRADER]), subs / "max_01-what-is-mlm.ipynb")
    write(notebook(counted("zed")), subs / "zed_01-what-is-mlm.ipynb")
    command = [sys.executable, "-m", "mlmprimer.grade", str(subs), "--out", str(out)]
    command += ["--quiet", "--cell-timeout", str(CELL_TIMEOUT)]
    first = subprocess.run(command, capture_output=True, timeout=600)
    assert first.returncode == -signal.SIGKILL
    rows = read_rows(out)
    assert total(rows["ada"]) == 2.0  # finished before the kill, and kept
    assert rows["max"]["ex01_1"]["status"] == "crashed"
    assert "grader stopped" in rows["max"]["ex01_1"]["message"]
    assert {r["status"] for r in rows["zed"].values()} == {"pending"}
    journal = tmp_path / "grades" / "scores.journal.jsonl"
    starts = [json.loads(line) for line in journal.read_text().splitlines()]
    left = [Path(ev["scratch"]) for ev in starts if ev["type"] == "start"][-1]
    assert left.is_dir()  # the killed grader could not clean up

    second = subprocess.run(command, capture_output=True, timeout=600)
    assert second.returncode == 0, second.stderr.decode()
    rows = read_rows(out)
    assert total(rows["ada"]) == 2.0 and total(rows["zed"]) == 2.0
    assert {r["status"] for r in rows["max"].values()} == {"crashed"}
    assert "not run again" in rows["max"]["ex01_1"]["message"]
    assert not left.exists()  # the next run did
    # ada was not run again, nor max; zed ran once
    assert runs.read_text().split() == ["ada", "max", "zed"]
    assert "stopped the grader" in (tmp_path / "grades" / "scores.summary.md").read_text()
