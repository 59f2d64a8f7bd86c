"""Instant feedback on the exercises: one function per exercise, ``check.exNN_K(...)``.

Each exercise notebook ends an exercise with a call such as ``check.ex04_1(icc_exam)``. The call
returns a :class:`CheckResult` that Jupyter shows as a coloured box (and prints as one line of
text): *correct*, *partly right*, *not right yet* with a hint, *not answered yet*, or, for
answers in words, *recorded* (your instructor grades those by hand). A check never shows the
right answer.

How the checks judge an answer
------------------------------

- The right answer is computed by the check itself, from the course's data with the course's
  library (``mlmprimer.datasets.load``, ``mlmprimer.lmer``, ``mlmprimer.simulate`` ...), never
  typed in as a constant; it is computed once per session and cached.
- Numbers may be rounded: an answer within 1 % of the right value (or within the question's
  absolute tolerance) counts. ``numpy`` scalars, one-element arrays or Series and numeric strings
  are read as numbers.
- Common slips are recognised and named: a standard deviation where a variance is asked (and the
  other way round), the ML estimate where REML is asked, a share written as a percentage
  (accepted), the limits of an interval in the wrong order (accepted), ...
- ``...`` (the placeholder of the student notebook) means "not answered yet"; a check never raises
  on it, nor on an answer it cannot read (it says what it expected instead).
- Free-text answers are checked only for being there and long enough; the result lists the key
  ideas worth mentioning, as questions, and says that the instructor grades the text by hand.
- A prediction (written before computing) is *recorded*, never called right or wrong: any of its
  options earns its share of the points, and once the results are in, the check says whether
  they bear it out.
- An answer written as text (a prediction, one of a few options, or words) is registered with
  its rules (:class:`mlmprimer.check.core.Answer`: the options, or the fewest words); the student
  notebook's placeholder and task text are written from them, so they say what the check accepts.

Chapters and the appendix
-------------------------

A chapter ``NN-topic`` has the checks ``exNN_1``, ``exNN_2``, ... The appendix ``A1-how-lmer-fits``
follows the same pattern with its own prefix: ``exA1_1``, ``exA1_2``, ... (chapter ``"A1"``, shown
as "exercise A1.1"). A Python name may not start with a digit, but ``exA1_1`` starts with ``ex``
like every other check, so the appendix needs no numbering of its own.

The registry
------------

:data:`QUESTIONS` maps each check's name to a :class:`Question` (chapter, title, points and the
names of the notebook variables it reads, which are the check's parameter names). The grader
(:mod:`mlmprimer.grade`) uses it to collect the students' answers and calls the same functions.

Where the checks live
---------------------

This package holds one module per chapter: ``ch01.py``, ``ch02.py``, ... and ``chA1.py`` define
the checks of that chapter; :mod:`mlmprimer.check.core` holds what they share (the results, the
reading of answers, the judging of parts, the registry and the cached fits of the course's data).
A new chapter ``NN`` is added by writing ``mlmprimer/check/chNN.py`` (its checks decorated with
:func:`mlmprimer.check.core.exercise`) and one import line, ``from mlmprimer.check.chNN import *``,
below the others in this file; nothing else changes.

Examples
--------
>>> from mlmprimer import check
>>> r = check.ex04_1(...)
>>> r.status, bool(r)
('unanswered', False)
>>> print(r)
… ex04_1 (exercise 4.1) not answered yet: replace the ... with your answer and run the cell again.
>>> check.QUESTIONS["ex04_1"].variables
('icc_exam',)
"""

from __future__ import annotations

# one line per chapter: importing a chapter module registers its checks
from mlmprimer.check.ch01 import *  # noqa: F403
from mlmprimer.check.ch02 import *  # noqa: F403
from mlmprimer.check.ch03 import *  # noqa: F403
from mlmprimer.check.ch04 import *  # noqa: F403
from mlmprimer.check.ch05 import *  # noqa: F403
from mlmprimer.check.ch06 import *  # noqa: F403
from mlmprimer.check.ch07 import *  # noqa: F403
from mlmprimer.check.ch08 import *  # noqa: F403
from mlmprimer.check.ch09 import *  # noqa: F403
from mlmprimer.check.ch10 import *  # noqa: F403
from mlmprimer.check.ch11 import *  # noqa: F403
from mlmprimer.check.ch12 import *  # noqa: F403
from mlmprimer.check.ch13 import *  # noqa: F403
from mlmprimer.check.ch14 import *  # noqa: F403
from mlmprimer.check.chA1 import *  # noqa: F403
from mlmprimer.check.chA2 import *  # noqa: F403
from mlmprimer.check.chA3 import *  # noqa: F403
from mlmprimer.check.core import (
    QUESTIONS,
    CheckResult,
    Question,
    Unsupported,
    questions,
    variant_seed,
)

__all__ = [
    "QUESTIONS",
    "CheckResult",
    "Question",
    "Unsupported",
    "questions",
    "variant_seed",
    *QUESTIONS,
]
