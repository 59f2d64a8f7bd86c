"""The command line of ``mlmprimer-grade`` (``python -m mlmprimer.grade``)."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .api import merge_hand_scores
from .batch import _Batch, _Options
from .common import DEFAULT_CELL_TIMEOUT, DEFAULT_TIMEOUT
from .identity import NAME_RULES, _known_chapters, _normal_chapter
from .outputs import _recovered, output_files
from .reports import LMS_FORMATS
from .runner import _account, _blocked_for, _Settings


def _grade_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlmprimer-grade",
        description=(
            "Run submitted exercise notebooks and score them. This EXECUTES STUDENT CODE under "
            "your account: grade in a container (grading/Dockerfile) or a throwaway VM without "
            "network. `mlmprimer-grade merge --help` merges scores given by hand."
        ),
    )
    parser.add_argument("submissions", nargs="+", help="notebooks, or folders of them")
    parser.add_argument(
        "--out",
        default="scores.csv",
        help="the scores file; every other output sits next to it with the same stem "
        "(default scores.csv; a name without .csv is a folder)",
    )
    parser.add_argument("--chapter", help="grade this chapter only (04, A1 ...)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per notebook (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--cell-timeout",
        type=float,
        default=DEFAULT_CELL_TIMEOUT,
        help=f"seconds per cell (default {DEFAULT_CELL_TIMEOUT:g}; 0: no limit per cell)",
    )
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel (python3)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at the same time")
    parser.add_argument(
        "--names",
        default="auto",
        help="how to name students from file names: auto (default), canvas, moodle, "
        "blackboard, plain, or a regular expression with (?P<student>...)",
    )
    parser.add_argument("--roster", help="CSV (student[,id,email]) or list of expected students")
    parser.add_argument(
        "--duplicates",
        choices=("flag", "best"),
        default="flag",
        help="several notebooks of one student: flag (no total, reported) or best",
    )
    parser.add_argument(
        "--variants",
        choices=("student", "public"),
        default="student",
        help="exercises with a variant per student: graded on the data of the student the file "
        "name names (student, default) or on everyone's public data (public)",
    )
    parser.add_argument(
        "--lms",
        choices=sorted(LMS_FORMATS),
        default="generic",
        help="columns of the LMS export: generic (default) or canvas",
    )
    parser.add_argument("--assignment", help="the assignment's column name (--lms canvas)")
    parser.add_argument(
        "--hand", action="append", default=[], metavar="FILE", help="merge hand scores from FILE"
    )
    parser.add_argument("--fresh", action="store_true", help="forget earlier results of --out")
    parser.add_argument(
        "--retry-stopped",
        action="store_true",
        help="run again a notebook that stopped the grader in an earlier run",
    )
    parser.add_argument(
        "--accept-changed",
        action="store_true",
        help="grade files changed since this batch first read them as they are now",
    )
    parser.add_argument("--memory", type=int, help="address-space limit of a kernel, in MB")
    parser.add_argument(
        "--run-as",
        metavar="USER",
        help="run the notebooks as this account (user[:group] or uid[:gid]); needs the grader "
        "to run as root, as in the container",
    )
    parser.add_argument("--scratch", help="folder for the temporary run directories")
    parser.add_argument(
        "--pass-env",
        action="append",
        default=[],
        metavar="NAME",
        help="pass this environment variable on to the kernels",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-submission lines")
    return parser


def _main_merge(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mlmprimer-grade merge",
        description="Merge scores given by hand (columns student, question, hand_score and "
        "optionally comment) into a graded batch, and rewrite its outputs.",
    )
    parser.add_argument("hand", nargs="+", help="CSV files of hand scores")
    parser.add_argument("--out", default="scores.csv", help="the batch's --out (scores.csv)")
    args = parser.parse_args(argv)
    files = output_files(args.out)
    if not files.record.is_file() and not _recovered(files.record).is_file():
        parser.error(f"no graded batch at {args.out} (its {files.record.name} is missing)")
    problems = merge_hand_scores(args.out, args.hand)
    for problem in problems:
        print(f"mlmprimer-grade merge: {problem}", file=sys.stderr)
    print(f"merged hand scores into {files.scores} ({len(problems)} problems)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``mlmprimer-grade`` and ``python -m mlmprimer.grade``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``). ``merge ...`` merges hand scores.

    Returns
    -------
    int
        0 when every output was written where asked (whatever the submissions were like); 1 when
        an output had to be written elsewhere (it says where); 2 on bad usage; 130 when
        interrupted (run the same command again to go on).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "cy_01-what-is-mlm.ipynb").write_text("")
    >>> main([str(folder), "--out", str(folder / "scores.csv"), "--quiet"])
    0
    >>> len((folder / "scores.csv").read_text().splitlines())  # header + 5 questions
    6
    """
    _quick_notebook_import()
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["merge"]:
        return _main_merge(args_list[1:])
    if args_list[:1] == ["grade"]:
        args_list = args_list[1:]
    parser = _grade_parser()
    args = parser.parse_args(args_list)
    if args.timeout <= 0 or (args.cell_timeout is not None and args.cell_timeout < 0):
        parser.error("time limits must be positive")
    if args.chapter and _normal_chapter(args.chapter) not in _known_chapters():
        parser.error(f"no exercises for chapter {args.chapter!r}")
    if args.names not in ("auto", "plain", *NAME_RULES):
        try:
            if "student" not in re.compile(args.names).groupindex:
                parser.error("--names: the expression needs a group (?P<student>...)")
        except re.error as exc:
            parser.error(f"--names: {exc}")
    if args.roster and not Path(args.roster).is_file():
        parser.error(f"--roster: no file {args.roster}")
    run_as = None
    if args.run_as:
        if not hasattr(os, "geteuid") or os.geteuid() != 0:
            parser.error("--run-as needs the grader to run as root")
        try:
            run_as = _account(args.run_as)
        except (KeyError, ValueError) as exc:
            parser.error(f"--run-as: no such account {args.run_as!r} ({exc})")
        if run_as[0] == 0:
            parser.error("--run-as: choose an account other than root")
        blocked = _blocked_for(
            run_as, [Path(sys.executable), Path(sys.base_prefix) / "lib", Path(__file__).parents[1]]
        )
        if blocked:
            parser.error(
                f"--run-as: {args.run_as} cannot reach {blocked}, which the notebooks need "
                "(install Python and the course where every account can read them, as the "
                "container does)"
            )
    settings = _Settings(
        timeout=args.timeout,
        cell_timeout=args.cell_timeout or None,
        kernel=args.kernel,
        memory_mb=args.memory,
        run_as=run_as,
        scratch=args.scratch,
        pass_env=tuple(args.pass_env),
    )
    options = _Options(
        chapter=args.chapter,
        names=args.names,
        roster=args.roster,
        duplicates=args.duplicates,
        variants=args.variants,
        lms=args.lms,
        assignment=args.assignment,
        fresh=args.fresh,
        retry_stopped=args.retry_stopped,
        accept_changed=args.accept_changed,
        hand=tuple(args.hand),
        jobs=max(1, args.jobs),
        progress=not args.quiet,
    )
    try:
        batch = _Batch(args.submissions, args.out, settings, options, argv=args_list)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if not batch.entries:
        parser.error("no files found in the submissions given")
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        batch.run()
    except KeyboardInterrupt:
        batch.publish()
        print("mlmprimer-grade: interrupted; run the same command again to go on", file=sys.stderr)
        return 130
    except ValueError as exc:  # no such kernel
        parser.error(str(exc))
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    if options.hand:
        for problem in merge_hand_scores(args.out, options.hand):
            print(f"mlmprimer-grade: hand scores: {problem}", file=sys.stderr)
    assert batch.writer is not None
    files = batch.files
    assert files is not None
    if not args.quiet:
        where = batch.writer.where(files.scores)
        print(f"wrote scores of {len(batch.entries)} files to {where}; see {files.summary}")
    return 1 if batch.writer.moved or batch.writer.failed else 0


def _quick_notebook_import() -> None:
    """Skip jsonschema's URI grammar when nothing has loaded jsonschema yet.

    Reading a notebook loads jsonschema, which builds a grammar for URI formats that takes
    seconds and that notebook files never use; the grader's own process does not need it.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
