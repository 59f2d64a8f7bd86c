"""The checks of chapter 12, how many groups: right answers pass, slips are named.

The generic properties of every check are tested in ``test_check.py``. Here the right answers of
exercise 12.1 are computed again from the formulas written out by hand, the planning values
tau = 2.9 and sigma = 6.3 are compared with lme4's null model of Hsb82 (run live, skipped without
R, required on CI), and the simulated answer of exercise 12.2 is a share of 100 replicates whose
Monte Carlo standard error follows from it.
"""

from __future__ import annotations

import math

import pytest
from r_setup import r_numbers
from scipy import stats

from mlmprimer import check
from mlmprimer.check.ch12 import EX12_1, EX12_2, _ch12_simulation

LME4_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
m0 <- lmer(mAch ~ 1 + (1 | school), data = mlmRev::Hsb82)
vc <- as.data.frame(VarCorr(m0))
cat("tau", sprintf("%.10g", vc$sdcor[1]), "\n")
cat("sigma", sprintf("%.10g", sigma(m0)), "\n")
"""

ICC = 2.9**2 / (2.9**2 + 6.3**2)
DEFF = 1 + 14 * ICC
SE = math.sqrt((2.9**2 + 6.3**2 / 15) / 40)


def power_of(se: float, crit: float = 1.959963984540054) -> float:
    d = 1.5 / se
    return stats.norm.sf(crit - d) + stats.norm.cdf(-crit - d)


def test_ex12_1_right_answers_pass():
    assert EX12_1 == {"n_schools": 40, "n_students": 15, "tau": 2.9, "sigma": 6.3, "beta_w": 1.5}
    r = check.ex12_1(DEFF, SE, power_of(SE))
    assert r.status == "correct", r
    # the power as a percentage is accepted too
    assert check.ex12_1(DEFF, SE, 100 * power_of(SE)).status == "correct"


@pytest.mark.parametrize(
    ("answers", "part", "words"),
    [
        ((1 + 15 * ICC, SE, power_of(SE)), "deff_12", "m - 1, not m"),
        ((ICC, SE, power_of(SE)), "deff_12", "this is the ICC"),
        ((DEFF, math.sqrt((2.9**2 + 6.3**2) / 600), power_of(SE)), "se_w_12", "simple random"),
        ((DEFF, SE**2, power_of(SE)), "se_w_12", "this is the variance"),
        ((DEFF, SE, power_of(SE, 1.6448536269514722)), "power_w_12", "one-sided"),
    ],
)
def test_ex12_1_slips_are_named(answers, part, words):
    r = check.ex12_1(*answers)
    assert r.status == "partial", r
    messages = {name: message for name, _, message in r.parts}
    assert words in messages[part], messages[part]


def test_ex12_1_far_off_is_incorrect():
    assert check.ex12_1(100.0, 100.0, 0.0).status == "incorrect"


@pytest.fixture(scope="module")
def simulated():
    return _ch12_simulation()


def test_ex12_2_rate_is_a_share_of_the_replicates(simulated):
    n = EX12_2["nsim"]
    k = simulated["rate"] * n
    assert k == pytest.approx(round(k), abs=1e-9) and 0 <= k <= n
    r = simulated["rate"]
    assert simulated["mcse"] == pytest.approx(math.sqrt(r * (1 - r) / n))
    # under the null with 8 schools the z test's rate is near 0.05 or above, never far below
    assert r > 0.0 and r < 0.3


def test_ex12_2_right_and_slips(simulated):
    r, s = simulated["rate"], simulated["mcse"]
    assert check.ex12_2(r, s).status == "correct"
    assert check.ex12_2(100 * r, s).status == "correct"
    slip = check.ex12_2(r, math.sqrt(r * (1 - r)))
    assert slip.status == "partial"
    assert "number of replicates" in dict((n, m) for n, _, m in slip.parts)["mcse_null_12"]
    count = check.ex12_2(r * 100 + 100, s)  # far off: not right
    assert count.status != "correct"


def test_ex12_3_is_recorded_with_enough_words():
    text = " ".join(["schools"] * 31) + " mean"
    assert check.ex12_3("more schools", text).status == "recorded"
    assert check.ex12_3("50 schools", text).status == "recorded"
    assert check.ex12_3("more schools", "too short").status == "partial"
    assert check.ex12_3("maybe", text).status != "recorded"


def test_planning_values_are_lme4s_rounded():
    got = r_numbers(LME4_SCRIPT, ("lme4", "mlmRev"))
    assert round(got["tau"], 1) == EX12_1["tau"]
    assert round(got["sigma"], 1) == EX12_1["sigma"]
