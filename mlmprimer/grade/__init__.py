"""Grade submitted exercise notebooks: ``mlmprimer-grade SUBMISSIONS... --out grades/scores.csv``.

Each submission (a student's copy of ``exercises/NN-topic.ipynb``, or a folder of them, as an LMS
downloads them) is run from top to bottom in a fresh Jupyter kernel. After every code cell the
grader runs a cell of its own that copies the values of the exercise variables (``icc_exam``,
``range95`` ...) out of the kernel as JSON; the checks of :mod:`mlmprimer.check` are then called
*in the grader's process*, on those values. What a notebook prints, and whether its check cells
are still there, plays no part in the score: editing the displayed output or the check functions
inside the notebook cannot fake one.

What the grader guards against
------------------------------

- **Isolation.** Every submission runs in a temporary directory of its own that holds only a copy
  of that notebook, with a scrubbed environment (``HOME``, ``TMPDIR`` and the Jupyter and
  matplotlib folders all point inside it; nothing points at the other submissions, the output
  folder or the solutions). The grader reads every submission into memory before the first one
  runs and grades those bytes, so a notebook that overwrites another student's file changes
  nothing (the change is reported). The kernel is started by a small supervisor process, in a
  session of its own; when the notebook is done the supervisor ends every process the notebook
  started, including ones that detached themselves (on Linux the supervisor is a *child
  subreaper*, so such processes stay its descendants), and the grader then ends any process that
  still carries the run's marker in its environment.
- **Nothing finished is lost.** Each finished submission is appended at once to a journal
  (``scores.journal.jsonl``, flushed to disk) and every output file is rewritten atomically (a
  temporary file, then :func:`os.replace`). If the grader is killed, running the same command
  again resumes: finished submissions are not run again. A notebook that was running *alone* when
  the grader stopped is reported as ``crashed`` and not run again (``--retry-stopped`` to insist);
  one that was running next to others is run again, alone, at the end. If an output path is
  blocked (for example a folder created where ``scores.csv`` should go), the file is written next
  to it as ``scores.recovered.csv`` and the run says so.
- **Time.** Each cell has a time limit (``--cell-timeout``, 120 s by default), so an endless loop
  costs that cell only and later answers are still graded; the whole notebook has another
  (``--timeout``, 600 s).

What it does not guard against: the notebook runs under the same account as the grader, so code
that goes looking (absolute paths, ``/proc``) can still read or change anything that account can,
including the grader's files and other processes. Grade in a container (``grading/Dockerfile``)
or a throwaway virtual machine without network access; see ``book/instructors.md``.

Who and which chapter
---------------------

The student is named from the file name (:func:`identify`: Canvas, Moodle and Blackboard download
names, ``alice_04-icc.ipynb``, ``alice.ipynb``, or the folder in ``alice/04-icc.ipynb``; or a rule
of your own with ``--names REGEX``). The notebook's metadata never overrides it: a different name
there is reported. The chapter is read from the check calls in the code, the metadata and the file
name; ``--chapter 04`` restricts a batch, and a notebook of another chapter gets a
``wrong-chapter`` row instead of a score.

Files written (for ``--out grades/scores.csv``)
----------------------------------------------

``scores.csv`` (one row per student and question, columns :data:`COLUMNS`), ``scores.wide.csv``
(one row per student), ``scores.lms.csv`` (for an LMS import), ``scores.summary.md``,
``scores.feedback/<student>.md``, ``scores.executed/`` (the notebooks as they ran),
``scores.text-answers.csv`` (answers in words, to grade by hand), ``scores.hand.csv`` (hand scores
merged so far), ``scores.originals/`` (the exact bytes graded), ``scores.run.json`` (a record of
what ran) and ``scores.journal.jsonl``. ``mlmprimer-grade merge --out grades/scores.csv FILE``
merges hand scores.

Where the code is
-----------------

One module per part: :mod:`.common` (columns, limits, records), :mod:`.answers` (answers out of
the kernel), :mod:`.identity` (who and which chapter), :mod:`.processes` (ending what a notebook
started), :mod:`.supervisor` (the process that runs one notebook), :mod:`.runner` (the grader's
side of a run), :mod:`.scoring`, :mod:`.batch`, :mod:`.outputs` (output files and journal),
:mod:`.reports`, :mod:`.roster` (roster and hand-score files), :mod:`.api` (the public
functions) and :mod:`.cli` (the command line).

Examples
--------
.. code-block:: console

    mlmprimer-grade submissions/ --out grades/scores.csv --chapter 04 --jobs 2
    mlmprimer-grade submissions/ --out grades/scores.csv --roster roster.csv --lms canvas
    mlmprimer-grade merge --out grades/scores.csv marked.csv
"""

from __future__ import annotations

from .answers import decode_answer
from .api import grade_notebook, grade_paths, merge_hand_scores, write_csv
from .cli import main
from .common import COLUMNS, DEFAULT_CELL_TIMEOUT, DEFAULT_TIMEOUT, Identity, Row
from .identity import NAME_RULES, identify
from .outputs import OutputFiles, output_files
from .reports import LMS_FORMATS

__all__ = [
    "COLUMNS",
    "DEFAULT_CELL_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "LMS_FORMATS",
    "NAME_RULES",
    "Identity",
    "OutputFiles",
    "Row",
    "decode_answer",
    "grade_notebook",
    "grade_paths",
    "identify",
    "main",
    "merge_hand_scores",
    "output_files",
    "write_csv",
]
