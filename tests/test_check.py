"""The exercise checks: right answers pass, slips are named, the answer is never shown."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest

import mlmprimer as mlm
from mlmprimer import check, datasets
from mlmprimer.check import CheckResult, Unsupported

# --------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------


def test_registry_matches_the_functions() -> None:
    assert check.QUESTIONS, "no checks registered"
    for qid, q in check.QUESTIONS.items():
        func = getattr(check, qid)
        params = inspect.signature(func).parameters
        keyword = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY]
        # the answers, then (for an exercise with a variant per student) whose variant it is
        assert tuple(n for n in params if n not in keyword) == q.variables
        assert keyword == (["student_id"] if q.has_variants else [])
        assert qid == f"ex{q.chapter}_{q.number}"
        assert q.kind in ("auto", "manual") and q.points > 0
        assert func.__doc__ and "Examples" in func.__doc__


@pytest.mark.parametrize("chapter", sorted({q.chapter for q in check.QUESTIONS.values()}))
def test_every_chapter_has_three_to_six_exercises(chapter: str) -> None:
    qs = check.questions(chapter)
    assert 3 <= len(qs) <= 6
    assert [q.number for q in qs] == list(range(1, len(qs) + 1))


@pytest.mark.parametrize("qid", list(check.QUESTIONS))
def test_unanswered_never_raises(qid: str) -> None:
    q = check.QUESTIONS[qid]
    result = getattr(check, qid)(*[...] * len(q.variables))
    assert result.status == "unanswered" and not result and result.score == 0
    assert "not answered" in str(result)
    assert result.max_score == q.points


@pytest.mark.parametrize("qid", list(check.QUESTIONS))
@pytest.mark.parametrize(
    "junk",
    [None, "", "abc", pd.DataFrame({"a": [1, 2]}), Unsupported("LmerModel"), [1, 2, 3], {"x": 1}],
    ids=["none", "empty", "text", "frame", "model", "list", "dict"],
)
def test_junk_answers_give_feedback_not_exceptions(qid: str, junk: object) -> None:
    q = check.QUESTIONS[qid]
    result = getattr(check, qid)(*[junk] * len(q.variables))
    assert isinstance(result, CheckResult)
    assert result.status in ("unanswered", "incorrect", "partial", "recorded")
    assert result.status != "error", str(result)


def test_wrong_number_of_answers_is_reported() -> None:
    result = check.ex03_1(1.0)
    assert result.status == "error" and "beta0_hat, tau2_hat, sigma2_hat" in result.message


# --------------------------------------------------------------------------------------------
# the result object
# --------------------------------------------------------------------------------------------


def test_result_object() -> None:
    ok = CheckResult("ex04_1", "correct", "right.", score=1.0, max_score=1.0)
    bad = CheckResult("ex04_1", "incorrect", "too high.", ["use variances"], 0.0, 1.0)
    assert ok and ok.passed and not bad
    assert str(ok).startswith("✓ ex04_1 (exercise 4.1) correct")
    assert "hint: use variances" in str(bad) and repr(bad) == str(bad)
    html = bad._repr_html_()
    assert 'role="status"' in html and "mlmprimer-check-incorrect" in html
    assert "&lt;" in CheckResult("ex04_1", "incorrect", "<b>")._repr_html_()
    assert bad.to_dict()["hints"] == ["use variances"]
    assert CheckResult("ex04_4", "recorded", "kept") and CheckResult("ex04_4", "recorded", "")


# --------------------------------------------------------------------------------------------
# right answers, rounding, equivalent forms and slips
# --------------------------------------------------------------------------------------------


def _truth_03() -> dict[str, float]:
    return check._ch03_null()


def test_null_model_right_and_rounded() -> None:
    t = _truth_03()
    exact = check.ex03_1(t["beta0"], t["tau2"], t["sigma2"])
    assert exact.status == "correct" and exact.score == 3
    rounded = check.ex03_1(round(t["beta0"], 1), round(t["tau2"], 2), round(t["sigma2"], 2))
    assert rounded.status == "correct"
    numpy_forms = check.ex03_1(np.float64(t["beta0"]), np.array([t["tau2"]]), f"{t['sigma2']:.1f}")
    assert numpy_forms.status == "correct"


def test_sd_instead_of_variance_is_named() -> None:
    t = _truth_03()
    result = check.ex03_1(t["beta0"], math.sqrt(t["tau2"]), t["sigma2"])
    assert result.status == "partial" and math.isclose(result.score, 2.0)
    assert "looks like the SD" in str(result) and "asks for the variance" in str(result)


def test_ml_instead_of_reml_is_named() -> None:
    t = _truth_03()
    assert "ML estimate" in str(check.ex03_1(t["beta0"], t["tau2_ml"], t["sigma2"]))
    assert "REML estimate" in str(check.ex03_4("smaller", t["tau2"]))


def test_ranges_accept_either_multiplier_and_name_sigma() -> None:
    t = _truth_03()
    beta0, tau, sigma = t["beta0"], math.sqrt(t["tau2"]), math.sqrt(t["sigma2"])
    good = check.ex03_2(
        (beta0 - 1.96 * tau, beta0 + 1.96 * tau), [beta0 + 2.58 * tau, beta0 - 2.58 * tau]
    )
    assert good.status == "correct"
    z95, z99 = 1.959964, 2.5758
    exact = check.ex03_2(
        (beta0 - z95 * tau, beta0 + z95 * tau), (beta0 - z99 * tau, beta0 + z99 * tau)
    )
    assert exact.status == "correct"
    wrong = check.ex03_2((beta0 - 1.96 * sigma, beta0 + 1.96 * sigma), ...)
    assert "uses sigma" in str(wrong)
    ci = check.ex03_2((beta0 - 1.96 * t["se_beta0"], beta0 + 1.96 * t["se_beta0"]), ...)
    assert "grand mean beta_0" in str(ci) and "theta" not in str(ci)


def test_lme4_theta_for_the_grand_mean_is_named() -> None:
    t = _truth_03()
    result = check.ex03_1(t["theta_lme4"], t["tau2"], t["sigma2"])
    assert result.status == "partial"
    assert "lme4's theta (m.theta)" in str(result) and "tau / sigma" in str(result)
    # the value a student reads off a fitted model is recognised, rounded as printed
    assert "m.theta" in str(check.ex03_1(round(t["theta_lme4"], 3), t["tau2"], t["sigma2"]))


def test_lme4_theta_for_the_complete_pooling_mean_is_named() -> None:
    # a student who fits the null model and reads m.theta as the grand mean of chapter 2
    m0 = mlm.lmer("mAch ~ 1 + (1 | school)", datasets.load("hsb"))
    theta = float(m0.theta[0])
    assert 0 < theta < 1  # tau / sigma: far below any mean of mAch (a score out of 25)
    result = check.ex02_1(round(theta, 3), ..., ...)
    assert "lme4's theta (m.theta)" in str(result) and "all pupils" in str(result)
    assert "too low" not in str(result)


def test_statsmodels_variance_ratio_for_tau2_is_named() -> None:
    t = _truth_03()
    result = check.ex03_1(t["beta0"], t["ratio_sm"], t["sigma2"])
    assert result.status == "partial" and "tau^2 / sigma^2" in str(result)


def test_icc_percent_and_slips() -> None:
    t = check._ch04_null()
    assert check.ex04_1(round(t["icc"], 2)).status == "correct"
    assert check.ex04_1(100 * t["icc"]).status == "correct"
    assert "standard deviations" in str(check.ex04_1(t["icc_sd"]))
    assert "1 - ICC" in str(check.ex04_1(1 - t["icc"]))
    assert check.ex04_1(0.5).status == "incorrect"


def test_interval_check_accepts_a_series_and_rejects_nonsense() -> None:
    t = check._ch04_null()
    low, high = t["icc"] - 1.96 * t["se_icc"], t["icc"] + 1.96 * t["se_icc"]
    as_series = pd.Series({"estimate": t["icc"], "conf.low": low, "conf.high": high})
    assert check.ex04_2(as_series, "yes").status == "correct"
    assert check.ex04_2((high, low), "Yes").status == "correct"
    assert check.ex04_2((0.5, 0.6), ...).status == "incorrect"
    assert "too narrow" in str(check.ex04_2((t["icc"] - 0.001, t["icc"] + 0.001), ...))


def test_symmetry_of_the_interval_is_judged_on_the_interval_given() -> None:
    t = check._ch04_null()
    icc, se = t["icc"], t["se_icc"]
    even = (icc - 1.96 * se, icc + 1.96 * se)
    skewed = (icc - 1.4 * se, icc + 2.4 * se)  # a plausible interval, longer above
    assert check.ex04_2(even, "yes").status == "correct"
    assert check.ex04_2(even, "no").status == "partial"
    assert check.ex04_2(skewed, "no").status == "correct"
    assert check.ex04_2(skewed, "yes").status == "partial"
    # no verdict on the symmetry of an interval that does not pass
    assert "first give an interval" in str(check.ex04_2((0.5, 0.6), "yes"))


def test_prediction_is_recorded_and_compared_only_after_the_results() -> None:
    t = check._ch01_se_days()
    before = check.ex01_3("smaller", ..., ...)
    assert "compare it with your results" in str(before)
    after_wrong = check.ex01_3("larger", t["ols"], t["lme"])
    assert after_wrong.status == "correct" and "say otherwise" in str(after_wrong)
    assert "not one of the options" in str(check.ex01_3("maybe", t["ols"], t["lme"]))


@pytest.mark.parametrize("guess", ["smaller", "larger"])
def test_a_prediction_is_recorded_never_called_right(guess: str) -> None:
    t = check._ch01_se_days()
    assert t["lme"] < t["ols"]  # the results say "smaller"
    result = check.ex01_3(guess, t["ols"], t["lme"])
    text = str(result)
    # the computed parts are right, and the score is full: a valid prediction earns its share
    assert result.status == "correct" and result.score == result.max_score
    # but the prediction is recorded, with its own symbol, and never "right" or "correct"
    parts = {name: (status, message) for name, status, message in result.parts}
    status, message = parts["prediction_se"]
    assert status == "recorded" and message.startswith("recorded")
    line = next(x for x in text.splitlines() if "prediction_se:" in x)
    assert line.lstrip().startswith("✎") and "right" not in line and "correct" not in line
    assert "every part is right" not in text and "not marked" in text
    agree = guess == "smaller"
    assert ("bear out your prediction" in text) is agree
    assert ("go against your prediction" in text) is not agree
    assert ("say otherwise" in message) is not agree


def test_a_prediction_alone_is_recorded_and_not_counted_as_a_right_answer() -> None:
    result = check.ex01_3("smaller", ..., ...)
    assert result.status == "partial"
    assert result.message == "0 of 2 right. Your prediction is recorded."
    assert "compare it with your results" in str(result)


def test_options_of_a_prediction_are_those_the_check_accepts() -> None:
    answer = check.QUESTIONS["ex01_3"].answers["prediction_se"]
    assert answer.prediction and set(answer.options) == {"larger", "smaller", "same"}
    assert 'one of "larger", "smaller" or "same"' in answer.instruction
    t = check._ch01_se_days()
    for word in answer.options:
        assert check.ex01_3(word, t["ols"], t["lme"]).status == "correct"
    # the listing in the message is the same as the one in the notebook
    assert answer.listing in str(check.ex01_3("maybe", ..., ...))


def test_text_minimum_is_the_registered_one() -> None:
    for q in check.QUESTIONS.values():
        for name, answer in q.answers.items():
            if answer.options:
                continue
            n = answer.min_words
            assert n >= 20 and f"at least {n} words" in answer.instruction
            short = " ".join(["word"] * (n - 1))

            def run(text: str, q=q, name=name):
                # the text answer under test; any other text answer gets one of its options
                args = [
                    text if v == name else next(iter(q.answers[v].options), "") for v in q.variables
                ]
                return getattr(check, q.qid)(*args)

            assert f"at least {n} words" in str(run(short)), q.qid
            assert run(short + " more").status == "recorded", q.qid


def test_school_means_series_order_and_medians() -> None:
    t = check._ch02_pooling()
    means = t["means"]
    spread = means.max() - means.min()
    assert check.ex02_1(t["grand"], means, round(spread, 2)).status == "correct"
    assert "medians" in str(check.ex02_1(t["grand"], t["medians"], ...))
    shuffled = means.sample(frac=1, random_state=1)
    assert check.ex02_1(t["grand"], shuffled, spread).status == "correct"
    assert "order" in str(check.ex02_1(t["grand"], shuffled.to_numpy(), ...))
    assert "mean of the school means" in str(check.ex02_1(t["mean_of_means"], means, ...))
    assert "SD of the school means" in str(check.ex02_1(..., ..., means.std()))


def test_levels_partial_credit_without_naming_the_wrong_ones() -> None:
    right = {"mAch": 1, "ses": 1, "meanses": 2, "sector": "school", "minrty": 1, "cses": "pupil"}
    assert check.ex01_2(right).status == "correct"
    flipped = dict(right, meanses=1)
    result = check.ex01_2(flipped)
    assert result.status == "partial" and math.isclose(result.score, 5 / 6, rel_tol=1e-3)
    assert "meanses" not in result.message


def test_free_text_is_recorded_for_the_instructor() -> None:
    short = check.ex04_4("It is a correlation.")
    assert short.status == "incorrect" and "too short" in str(short)
    text = " ".join(["The pupils of one school resemble each other"] * 6)
    result = check.ex04_4(text)
    assert result.status == "recorded" and result and result.score == 1
    assert "grades this answer by hand" in str(result)
    assert "correlation" in str(result)  # a prompt about the missing key idea


def test_simulation_checks_use_the_known_truth() -> None:
    t = check._ch04_sim()
    assert math.isclose(t["true"], 20**2 / (20**2 + 40**2))
    assert check.ex04_5(t["true"], t["est"], t["est"] - t["true"]).status == "correct"
    assert "true ICC" in str(check.ex04_5(t["true"], t["true"], ...))
    assert "sign" in str(check.ex04_5(..., ..., t["true"] - t["est"]))
    s = check._ch02_sim()
    assert check.ex02_6(s["deff"], s["ratio"]).status == "correct"
    assert "m instead of m - 1" in str(check.ex02_6(s["deff_m"], s["ratio"]))


# --------------------------------------------------------------------------------------------
# never print the answer
# --------------------------------------------------------------------------------------------


def _renderings(x: float) -> list[str]:
    out = {f"{x:.{d}f}" for d in (1, 2, 3, 4)} | {f"{x:.3g}", f"{x:.4g}"}
    return [s for s in out if len(s.replace(".", "").replace("0", "")) >= 2]


@pytest.mark.parametrize(
    "call, truth",
    [
        (lambda: check.ex03_1(1.0, 2.0, 3.0), lambda: [*_truth_03().values()][:4]),
        (lambda: check.ex04_1(0.9), lambda: [check._ch04_null()["icc"]]),
        (
            lambda: check.ex04_3(10, 2.0, 3.0),
            lambda: [check._ch04_null()[k] for k in ("deff", "n_eff")],
        ),
        (lambda: check.ex01_3("larger", 9.0, 9.0), lambda: [check._ch01_se_days()["ols"]]),
        (lambda: check.ex02_4(1.0, 1.0), lambda: [check._ch02_se()["cluster"]]),
    ],
    ids=["ex03_1", "ex04_1", "ex04_3", "ex01_3", "ex02_4"],
)
def test_wrong_answers_do_not_reveal_the_right_one(call, truth) -> None:  # noqa: ANN001
    text = str(call()) + call()._repr_html_()
    for value in truth():
        for shown in _renderings(float(value)):
            assert shown not in text, f"{shown} appears in the feedback"


def test_which_fit_is_closer_to_the_truth_is_answered() -> None:
    t = check._ch01_sim()
    # the simulation's truth: OLS treats the 200 measurements as independent
    assert abs(t["lme"] - t["true"]) < abs(t["ols"] - t["true"]) and t["ols"] < t["true"]
    right = check.ex01_5(t["ols"], t["lme"], t["true"], "the mixed model")
    assert right.status == "correct" and "times too small" in right.message
    wrong = check.ex01_5(t["ols"], t["lme"], t["true"], "OLS")
    assert wrong.status == "partial" and "3 of 4 right" in wrong.message
    assert "not one of the options" in str(check.ex01_5(..., ..., ..., "both"))


def test_a_numeric_guess_is_recorded_too() -> None:
    t = check._ch04_null()
    for guess, near in ((t["n_eff"] * 1.2, True), (7185, False)):
        result = check.ex04_3(guess, t["deff"], t["n_eff"])
        assert result.status == "correct" and "every part is right" not in result.message
        status, message = {n: (s, m) for n, s, m in result.parts}["prediction_n_eff"]
        assert status == "recorded" and message.startswith("recorded")
        assert ("bear out your prediction" in result.message) is near
    assert {n: s for n, s, _ in check.ex04_3(500, ..., ...).parts}["prediction_n_eff"] == (
        "recorded"
    )
