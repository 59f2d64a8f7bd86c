"""glmer's bad input: each problem raises (or warns) with a message naming it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlmprimer import glmer
from mlmprimer.datasets import load
from mlmprimer.glmermodel import GlmerWarning

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return load("cbpp")


def test_negative_counts_for_poisson(cbpp: pd.DataFrame) -> None:
    d = cbpp.copy()
    d.loc[4, "incidence"] = -1
    with pytest.raises(ValueError, match=r"'incidence' must be counts >= 0.*-1 in rows 4"):
        glmer("incidence ~ period + (1 | herd)", d, "poisson")


def test_three_level_factor_for_binomial() -> None:
    d = load("verbagg")
    with pytest.raises(ValueError, match=r"'resp' is a factor with 3 levels \(no, perhaps, yes\)"):
        glmer("resp ~ Anger + (1 | id)", d)


def test_factor_response_for_poisson() -> None:
    with pytest.raises(ValueError, match="poisson model needs counts"):
        glmer("r2 ~ Anger + (1 | id)", load("verbagg"), "poisson")


def test_proportion_above_one(cbpp: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"'incidence' must be 0/1 or proportions.*cbind"):
        glmer("incidence ~ period + (1 | herd)", cbpp)


def test_cbind_with_negative_failures(cbpp: pd.DataFrame) -> None:
    d = cbpp.copy()
    d.loc[2, "size"] = 0
    with pytest.raises(
        ValueError, match=r"'size - incidence' \(the failures\) is negative in rows 2"
    ):
        glmer(CBPP, d)


def test_cbind_needs_two_columns(cbpp: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="cbind\\(\\) needs two columns"):
        glmer("cbind(incidence) ~ period + (1 | herd)", cbpp)


def test_log_offset_of_zero(cbpp: pd.DataFrame) -> None:
    d = cbpp.copy()
    d.loc[3, "size"] = 0
    with pytest.raises(ValueError, match=r"not finite.*row 3.*log of 0"):
        glmer("incidence ~ period + offset(log(size)) + (1 | herd)", d, "poisson")
    with pytest.raises(ValueError, match=r"offset 'log\(size\)' is not finite in rows 3"):
        glmer("incidence ~ period + (1 | herd)", d, "poisson", offset="log(size)")


def test_unknown_family_and_link(cbpp: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="family must be 'binomial' or 'poisson'"):
        glmer(CBPP, cbpp, "gaussian")
    with pytest.raises(ValueError, match="the binomial family has no link 'log'"):
        glmer(CBPP, cbpp, "binomial", "log")


def test_bad_nagq(cbpp: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="nAGQ must be a whole number >= 0"):
        glmer(CBPP, cbpp, nAGQ=-1)
    with pytest.raises(ValueError, match="nAGQ must be a whole number"):
        glmer(CBPP, cbpp, nAGQ=2.5)
    with pytest.raises(ValueError, match="single scalar random-effects term"):
        glmer("use ~ age + (urban | district)", load("contraception"), nAGQ=3)


def test_non_integer_counts_warn(cbpp: pd.DataFrame) -> None:
    d = cbpp.copy()
    d["incidence"] = d["incidence"].astype(float)
    d.loc[0, "incidence"] = 1.5
    with pytest.warns(GlmerWarning, match="non-integer counts in a poisson model"):
        glmer("incidence ~ period + (1 | herd)", d, "poisson")


def test_no_random_term_and_not_a_frame(cbpp: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="random"):
        glmer("cbind(incidence, size - incidence) ~ period", cbpp)
    with pytest.raises(TypeError, match="DataFrame"):
        glmer(CBPP, cbpp.to_dict())


def test_unknown_column_is_named(cbpp: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="perod"):
        glmer("cbind(incidence, size - incidence) ~ perod + (1 | herd)", cbpp)


def test_groups_with_all_zero_outcomes_warn(cbpp: pd.DataFrame) -> None:
    d = cbpp.copy()
    d.loc[d["herd"] == "1", "incidence"] = 0
    with pytest.warns(GlmerWarning, match=r"group\(s\) of 'herd' have all outcomes 0 \(1"):
        glmer(CBPP, d)


def test_missing_response_rows_are_dropped(cbpp: pd.DataFrame) -> None:
    d = cbpp.copy()
    d["incidence"] = d["incidence"].astype(float)
    d.loc[[0, 5], "incidence"] = np.nan
    with pytest.warns(GlmerWarning, match="2 rows with missing values"):
        m = glmer(CBPP, d)
    assert m.nobs == 54
