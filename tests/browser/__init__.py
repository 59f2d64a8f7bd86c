"""Browser tests of the built book; run after `make book` (see conftest.py)."""
