"""``python -m mlmprimer.grade``: the command line of :mod:`mlmprimer.grade.cli`."""

import sys

from mlmprimer.grade.cli import main

sys.exit(main())
