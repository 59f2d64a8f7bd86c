"""Pytest set-up for every run in this repository.

Numbers in notebook outputs are compared with a tolerance, images by their presence: see
``tests/nbval_numbers.py`` for why and how. (``tests`` is not importable as a package name: a
package in the environment ships a top-level ``tests`` of its own, so the folder goes on the path.)
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "tests"))

from nbval_numbers import pytest_itemcollected  # noqa: E402,F401  (a hook, found by name)
