"""Shared pytest set-up: the lme4 reference fixtures (tests/fixtures/lme4/*.json).

A test that takes an argument named ``lme4_fixture`` runs once per fixture file, with the
parsed JSON as the argument and the fixture's name as the test id.
"""

import json
from pathlib import Path

import pytest

LME4_FIXTURE_DIR = Path(__file__).parent / "fixtures" / "lme4"

# Fixtures whose fits take more than a few seconds.
SLOW_LME4_FIXTURES = {"insteval"}


def load_lme4_fixture(path):
    """The parsed JSON of one lme4 fixture file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def lme4_fixture_paths():
    """Every lme4 fixture file, sorted by name."""
    return sorted(LME4_FIXTURE_DIR.glob("*.json"))


def pytest_generate_tests(metafunc):
    if "lme4_fixture" in metafunc.fixturenames:
        params = [
            pytest.param(
                load_lme4_fixture(path),
                id=path.stem,
                marks=[pytest.mark.slow] if path.stem in SLOW_LME4_FIXTURES else [],
            )
            for path in lme4_fixture_paths()
        ]
        metafunc.parametrize("lme4_fixture", params)


@pytest.fixture(scope="session")
def lme4_fixture_dir():
    """The directory holding the committed lme4 fixtures."""
    return LME4_FIXTURE_DIR
