"""The checks of chapters 5 to 7 and of appendix A1: right answers pass, slips are named.

The generic properties (unanswered, junk answers, the registry) are tested for every check in
``test_check.py``; this file tests what is particular to the later exercises. The right answers
come from the checks' own cached computations, so each model is fitted once per session.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlmprimer import check

# --------------------------------------------------------------------------------------------
# the appendix's checks
# --------------------------------------------------------------------------------------------


def test_appendix_checks_follow_the_chapter_pattern() -> None:
    q = check.QUESTIONS["exA1_1"]
    assert q.chapter == "A1" and q.number == 1 and q.label == "exercise A1.1"
    assert [x.qid for x in check.questions("A1")] == [x.qid for x in check.questions("a1")]
    assert [x.qid for x in check.questions(5)] == [x.qid for x in check.questions("05")]
    assert str(check.exA1_2(..., ...)).startswith("… exA1_2 (exercise A1.2) not answered yet")
    with pytest.raises(ValueError, match="exNN_K"):
        check.core.exercise("exB_1", "not a chapter")


# --------------------------------------------------------------------------------------------
# chapter 5: shrinkage
# --------------------------------------------------------------------------------------------


def test_lake_county_by_hand_matches_the_model() -> None:
    t = check._ch05_lake()
    assert math.isclose(
        t["partial"], t["lam"] * t["own"] + (1 - t["lam"]) * t["beta0"], rel_tol=1e-6
    )
    rounded = check.ex05_1(round(t["lam"], 2), round(t["partial"], 2))
    assert rounded.status == "correct" and rounded.score == 2
    # the estimate computed with the standard-deviation weight is named, not "too low"
    sd_partial = str(check.ex05_1(..., t["partial_sd"]))
    assert "tau and sigma instead of tau^2 and sigma^2" in sd_partial
    assert "too low" not in sd_partial and "too high" not in sd_partial
    slips = str(check.ex05_1(t["lam_sd"], t["partial_grand"]))
    assert "standard deviations instead of variances" in slips and "mean of all homes" in slips
    assert "leaves out n_j" in str(check.ex05_1(t["lam_no_n"], ...))
    assert "1 - lambda_j, the shrinkage" in str(check.ex05_1(t["lam_flip"], ...))


@pytest.mark.parametrize(
    "key, formula",
    [
        ("lam_sd", "tau / (tau + sigma / sqrt(n_j))"),
        ("lam_sd_n", "tau / (tau + sigma / n_j)"),
        ("lam_sd_no_n", "tau / (tau + sigma)"),
    ],
)
def test_weight_from_standard_deviations_is_named(key: str, formula: str) -> None:
    # the chapter's common mistake, recognised by name in both exercises on the weight
    for result, t in [
        (check.ex05_1(check._ch05_lake()[key], ...), check._ch05_lake()),
        (check.ex05_5(check._ch05_sim()[key], ..., ...), check._ch05_sim()),
    ]:
        message = result.parts[0][2]
        assert message.startswith(f"this is {formula},"), message
        assert "common mistake of computing the weight with standard deviations" in message
        assert not math.isclose(t[key], t["lam"], rel_tol=0.02)


def test_ranking_slips() -> None:
    t = check._ch05_ranking()
    assert t["own"] < t["all"] < t["model5"]  # small counties top the raw ranking
    assert check.ex05_2(t["own"], np.float64(t["model"])).status == "correct"
    result = str(check.ex05_2(t["own5"], t["model_bottom"]))
    assert "top five" in result and "ten lowest" in result


def test_cottonwood_prediction_and_target_slip() -> None:
    t = check._ch05_uranium()
    assert t["with"] > t["without"]
    right = check.ex05_4("Larger", t["with"])
    assert right.status == "correct" and "bear it out" in str(right)
    wrong_guess = check.ex05_4("smaller", t["with"])
    assert wrong_guess.status == "correct" and "say otherwise" in str(wrong_guess)
    assert "uranium line" in str(check.ex05_4("larger", t["target"]))
    assert "add beta_1" in str(check.ex05_4("larger", t["intercept"]))


def test_shrinkage_simulation_against_the_truth() -> None:
    t = check._ch05_sim()
    assert math.isclose(t["lam"], 35**2 / (35**2 + 45**2 / 3))
    assert t["mse_partial"] < t["mse_no"]
    right = check.ex05_5(t["lam"], t["mse_no"], t["mse_partial"])
    assert right.status == "correct" and "%" in right.message
    slips = str(check.ex05_5(t["lam_est"], math.sqrt(t["mse_no"]), t["mse_complete"]))
    assert "estimated from the data" in slips and "root mean squared" in slips
    assert "complete pooling" in slips


# --------------------------------------------------------------------------------------------
# chapter 6: random slopes
# --------------------------------------------------------------------------------------------


def test_cses_slopes_accept_equivalent_forms() -> None:
    t = check._ch06_cses()
    half = 1.96 * t["tau1"]
    as_array = np.array([t["b1"] + half, t["b1"] - half])  # upper first
    result = check.ex06_1(f"{t['tau1']:.3f}", round(t["rho"], 2), as_array)
    assert result.status == "correct"
    slips = str(check.ex06_1(t["tau1_var"], t["cov"], (t["b1"] - 1.96 * t["se_b1"], t["b1"])))
    assert "variance" in slips and "covariance" in slips
    ci = (t["b1"] - 1.96 * t["se_b1"], t["b1"] + 1.96 * t["se_b1"])
    assert "confidence interval for the average slope" in str(check.ex06_1(..., ..., ci))


def test_slope_test_uses_the_mixture_and_reml() -> None:
    t = check._ch06_compare()
    assert math.isclose(t["p_mix"], t["p_naive"] / 2, rel_tol=1e-6)
    for p in (round(t["p_mix"], 4), 0.001):
        assert check.ex06_2(round(t["chisq"], 2), p, "Larger").status == "correct"
    slips = str(check.ex06_2(t["chisq_ml"], t["p_naive"], ...))
    assert "ML refits" in slips and "naive" in slips and "refit = FALSE" in slips
    assert "correlated model" in str(check.ex06_2(..., t["p_both_mix"], ...))
    assert "double it" in str(check.ex06_2(t["loglik_diff"], ..., ...))


def _part(result: check.CheckResult, name: str) -> str:
    """The status of one part of a check's result."""
    return {n: s for n, s, _ in result.parts}[name]


def test_naive_p_value_question_is_answered_and_checked() -> None:
    t = check._ch06_compare()
    assert t["p_naive"] > t["p_mix"]  # the naive test is conservative
    right = check.ex06_2(t["chisq"], t["p_mix"], "larger")
    assert right.status == "correct" and "boundary" not in right.message
    assert "edge of its possible values" in str(right)
    wrong = check.ex06_2(t["chisq"], t["p_mix"], "smaller")
    assert (
        wrong.status == "partial"
        and dict((n, s) for n, s, _ in wrong.parts)["naive_p_cses"] == "incorrect"
    )
    assert "not one of the options" in str(check.ex06_2(..., ..., "it is wrong"))


def test_moving_the_zero_of_age() -> None:
    t = check._ch06_oxboys()
    # the refit agrees with the formula for the intercept SD at age = -1
    assert t["tau0_start"] < t["tau0"] < t["tau0_end"]
    right = check.ex06_3("smaller", round(t["tau0_start"], 2), round(t["rho_start"], 3), "tau_1")
    assert right.status == "correct" and "bear it out" in str(right)
    slips = str(check.ex06_3("larger", t["tau0_end"], t["rho"], ...))
    assert "last occasion" in slips and "middle of the study" in slips
    assert "variance" in str(check.ex06_3(..., t["var_start"], ..., ...))


def test_which_estimate_stays_the_same_when_age_moves() -> None:
    t = check._ch06_oxboys()
    # the slope SD is the one of the three that does not move (the same model, read elsewhere)
    assert math.isclose(t["tau1"], t["tau1_start"], rel_tol=1e-4)
    assert not math.isclose(t["tau0"], t["tau0_start"], rel_tol=0.01)
    assert not math.isclose(t["rho"], t["rho_start"], rel_tol=0.01)
    for spelling in ("tau_1", "tau1", "TAU 1", "the slope SD"):
        assert _part(check.ex06_3(..., ..., ..., spelling), "unchanged_start") == "correct"
    for wrong in ("tau_0", "rho"):
        assert _part(check.ex06_3(..., ..., ..., wrong), "unchanged_start") == "incorrect"


def test_simulated_slopes_interval_forms() -> None:
    t = check._ch06_sim()
    low, high = t["b1"] - 1.96 * t["se_b1"], t["b1"] + 1.96 * t["se_b1"]
    row = pd.Series({"estimate": t["b1"], "conf.low": low, "conf.high": high})
    covers = "yes" if low <= t["truth"]["beta1"] <= high else "no"
    right = check.ex06_5(t["tau1"], row, covers, round(t["rho"], 3))
    assert right.status == "correct" and "true one" in right.message
    assert f"the true {t['truth']['rho']:g}" in right.message
    slips = str(
        check.ex06_5(t["truth"]["tau1"], (t["b1"] - 1.96 * t["tau1"], t["b1"] + 2), ..., ...)
    )
    assert "true value" in slips
    spread = (t["b1"] - 1.96 * t["tau1"], t["b1"] + 1.96 * t["tau1"])
    assert "schools' slopes lie" in str(check.ex06_5(..., spread, ..., ...))


def test_simulated_slopes_questions_against_the_truth() -> None:
    t = check._ch06_sim()
    low, high = t["b1"] - 1.96 * t["se_b1"], t["b1"] + 1.96 * t["se_b1"]
    covers = low <= t["truth"]["beta1"] <= high
    assert _part(check.ex06_5(..., ..., "yes" if covers else "no", ...), "covers_beta1_sim") == (
        "correct"
    )
    assert check.ex06_5(..., ..., "no" if covers else "yes", ...).status == "incorrect"
    # rho-hat is estimated, not the truth of the simulation
    assert abs(t["rho"] - t["truth"]["rho"]) > 0.01
    assert "true value" in str(check.ex06_5(..., ..., ..., t["truth"]["rho"]))
    assert _part(check.ex06_5(..., ..., ..., round(t["rho"], 2)), "rho_sim") == "correct"


# --------------------------------------------------------------------------------------------
# chapter 7: crossed and nested
# --------------------------------------------------------------------------------------------


def test_structures_read_off_the_data() -> None:
    assert check._ch07_structures() == {
        "penicillin": "fully crossed",
        "pastes": "nested",
        "pastes_labels": "fully crossed",
        "scotssec": "partially crossed",
        "hsb": "nested",
    }
    answer = {
        "penicillin": "Fully crossed",
        "pastes": "nested",
        "pastes_labels": "fully",
        "scotssec": "partially-crossed",
        "hsb": "Nested",
    }
    assert check.ex07_1(answer).status == "correct"
    partly = check.ex07_1(dict(answer, penicillin="crossed", hsb="crossed fully", pastes=1))
    assert partly.status == "partial" and math.isclose(partly.score, 2 * 2 / 5)
    assert "say fully or partially crossed for: penicillin" in partly.message
    assert "hsb" not in partly.message  # wrong answers are not pointed out one by one


def test_scotssec_shares_and_the_adjusted_slip() -> None:
    t = check._ch07_scots()
    assert t["primary"] > t["primary_adj"] and t["second"] > t["second_adj"]
    percent = check.ex07_2("larger", 100 * t["primary"], f"{100 * t['second']:.1f}%")
    assert percent.status == "correct"
    slips = str(check.ex07_2(..., t["primary_adj"], t["second_of_groups"]))
    assert "after adjusting" in slips and "school variances only" in slips


def test_machines_correlations() -> None:
    t = check._ch07_machines()
    assert t["same_machine"] > t["same_worker"] > t["pair_only"]
    assert check.ex07_3(round(t["same_machine"], 3), "61%", "same machine").status == "correct"
    # mlm.icc(m) of the nested model is the correlation on one machine
    assert math.isclose(t["icc"], t["same_machine"], rel_tol=1e-9)
    assert check.ex07_3(..., ..., "same worker").status == "incorrect"
    assert _part(check.ex07_3(..., ..., "same machine"), "icc_gives") == "correct"
    slips = str(check.ex07_3(t["pair_only"], t["workers_only"], ...))
    assert "also share its worker" in slips and "score ~ Machine + (1 | Worker)" in slips
    assert "fixed part" in str(check.ex07_3(..., t["same_worker_no_brands"], ...))


def test_drivers_and_cars_standard_errors() -> None:
    t = check._ch07_sim()
    assert math.isclose(t["true"], math.sqrt(3**2 / 10 + 2**2 / 8 + 1.5**2 / 160))
    assert t["drivers"] < t["crossed"]
    closer = (
        "crossed"
        if abs(t["crossed"] - t["true"]) < abs(t["drivers"] - t["true"])
        else "drivers only"
    )
    assert closer == "crossed"  # leaving the cars out understates the uncertainty
    right = check.ex07_5("smaller", t["true"], t["crossed"], t["drivers"], "Crossed model")
    assert right.status == "correct" and right.score == 4 and "times" in right.message
    assert right.message.startswith("every answer is right, and your results bear out")
    assert check.ex07_5(..., ..., ..., ..., "drivers-only").status == "incorrect"
    assert _part(check.ex07_5(..., ..., ..., ..., "crossed"), "closer_se_mu") == "correct"
    slips = str(check.ex07_5("larger", t["true_no_cars"], t["drivers"], t["ols"], ...))
    assert "cars' variance" in slips and "drivers only" in slips and "OLS" in slips
    assert "independent" in str(check.ex07_5(..., t["true_naive"], ..., ..., ...))


# --------------------------------------------------------------------------------------------
# appendix A1: the engine
# --------------------------------------------------------------------------------------------


def test_penicillin_design_and_theta_zero() -> None:
    t = check._chA1_penicillin()
    assert math.isclose(t["dev0"], -2 * t["llf"], rel_tol=1e-9)
    assert t["nnz_row"] == 2  # one plate and one sample per diameter
    right = check.exA1_1(3, np.int64(30), "2", 2)
    assert right.status == "correct" and "say otherwise" in str(right)
    assert dict((n, s) for n, s, _ in right.parts)["prediction_n_theta"] == "recorded"
    slips = str(check.exA1_1(2, 144, 3, ...))
    assert "whole of Z" in str(check.exA1_1(..., ..., ..., t["nnz"]))
    assert "rows of Z" in slips and "sigma is not part of theta" in slips
    assert check.exA1_2(round(t["dev0"], 2), -2 * t["llf"]).status == "correct"
    slips = str(check.exA1_2(t["reml0"], t["llf"]))
    assert "REML criterion" in slips and "-2 times" in slips


def test_theta_against_the_truth() -> None:
    t = check._chA1_sim()
    assert t["true"] == pytest.approx((3.0 / 1.5, 2.0 / 1.5))  # tau / sigma, drivers first
    right = check.exA1_4(np.array(t["true"]), list(t["hat"]))
    assert right.status == "correct" and "%" in right.message
    slips = str(check.exA1_4(t["true"][::-1], t["hat_ml"]))
    assert "wrong order" in slips and "ML optimum" in slips
    assert "sigma / tau" in str(check.exA1_4(t["true_inverse"], ...))


# --------------------------------------------------------------------------------------------
# answers in words and never printing the answer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "qid, name",
    [
        ("ex05_3", "answer_ranking"),
        ("ex06_4", "answer_slope_shrinkage"),
        ("ex07_4", "answer_cask_labels"),
        ("exA1_3", "answer_theta"),
    ],
)
def test_words_are_recorded(qid: str, name: str) -> None:
    func = getattr(check, qid)
    assert check.QUESTIONS[qid].variables == (name,) and check.QUESTIONS[qid].kind == "manual"
    assert "too short" in str(func("Too short."))
    result = func(" ".join(["an answer that is long enough to be recorded"] * 5))
    assert result.status == "recorded" and "does your answer say" in str(result)


def _renderings(x: float) -> list[str]:
    out = {f"{x:.{d}f}" for d in (1, 2, 3, 4)} | {f"{x:.3g}", f"{x:.4g}"}
    return [s for s in out if len(s.replace(".", "").replace("0", "").replace("-", "")) >= 2]


@pytest.mark.parametrize(
    "call, truth",
    [
        (
            lambda: check.ex05_1(0.9, 0.1),
            lambda: [check._ch05_lake()[k] for k in ("lam", "partial")],
        ),
        (lambda: check.ex05_4("larger", 9.0), lambda: [check._ch05_uranium()["with"]]),
        (
            lambda: check.ex05_5(0.9, 9.0, 9.0),
            lambda: [check._ch05_sim()[k] for k in ("lam", "mse_no", "mse_partial")],
        ),
        (lambda: check.ex06_1(5.0, 0.5, (0.0, 1.0)), lambda: [check._ch06_cses()["tau1"]]),
        (
            lambda: check.ex06_2(1.0, 0.5, "same"),
            lambda: [check._ch06_compare()[k] for k in ("chisq",)],
        ),
        (
            lambda: check.ex06_3("same", 1.0, 0.1, "rho"),
            lambda: [check._ch06_oxboys()["tau0_start"]],
        ),
        (lambda: check.ex07_2("same", 0.5, 0.5), lambda: [check._ch07_scots()["primary"]]),
        (
            lambda: check.ex07_3(0.5, 0.5, "worker"),
            lambda: [check._ch07_machines()[k] for k in ("same_machine", "same_worker")],
        ),
        (
            lambda: check.ex07_5("same", 9.0, 9.0, 9.0, "drivers"),
            lambda: [check._ch07_sim()["true"]],
        ),
        (lambda: check.exA1_2(1.0, 1.0), lambda: [check._chA1_penicillin()["dev0"]]),
        (lambda: check.exA1_4((1.0, 1.0), (1.0, 1.0)), lambda: [*check._chA1_sim()["hat"]]),
    ],
    ids=[
        "ex05_1",
        "ex05_4",
        "ex05_5",
        "ex06_1",
        "ex06_2",
        "ex06_3",
        "ex07_2",
        "ex07_3",
        "ex07_5",
        "exA1_2",
        "exA1_4",
    ],
)
def test_wrong_answers_do_not_reveal_the_right_one(call, truth) -> None:  # noqa: ANN001
    result = call()
    assert result.status in ("incorrect", "partial")
    text = str(result) + result._repr_html_()
    for value in truth():
        for shown in _renderings(float(value)):
            assert shown not in text, f"{shown} appears in the feedback"
