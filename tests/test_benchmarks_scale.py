"""Unit tests of the scale series and the mixedlm-rs peer (benchmarks/scale.py, peers.py).

No timing is checked: the data, the skip decisions, the tables and the peer's spelling and
output are.
"""

import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


@pytest.fixture(scope="module")
def scale():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("scale")


@pytest.fixture(scope="module")
def peers(scale):
    return importlib.import_module("peers")


def ok(t, **kw):
    return {"status": "ok", "times": [t], **kw}


# ---- data ------------------------------------------------------------------------------------


def test_simulation_is_deterministic_and_balanced(scale):
    a = scale.simulate_columns("intercept", 2_000, groups=50, seed=7)
    b = scale.simulate_columns("intercept", 2_000, groups=50, seed=7)
    assert list(a) == ["y", "x1", "x2", "x3", "g"]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert np.bincount(a["g"])[1:].tolist() == [40] * 50  # every group, equally often
    c = scale.simulate_columns("intercept", 2_000, groups=50, seed=8)
    assert not np.array_equal(a["y"], c["y"])
    s = scale.simulate_columns("slope", 2_000, groups=50, seed=7)
    assert list(s) == ["y", "x", "g"]


def test_simulation_recovers_its_truth(scale):
    from mlmprimer import lmer

    cols = scale.simulate_columns("intercept", 20_000, groups=200, seed=3)
    data = pd.DataFrame({**cols, "g": pd.Categorical(cols["g"])})
    m = lmer("y ~ x1 + x2 + x3 + (1 | g)", data)
    np.testing.assert_allclose(m.fixef[["x1", "x2", "x3"]], [0.5, -0.3, 0.2], atol=0.03)
    assert abs(m.sigma - 1.0) < 0.03


def test_simulation_rejects_bad_designs(scale):
    with pytest.raises(ValueError, match="unknown design"):
        scale.simulate_columns("nested", 1_000)
    with pytest.raises(ValueError, match="every one of 100 groups"):
        scale.simulate_columns("slope", 50, groups=100)


def test_scale_data_is_written_once_and_read_back_identically(scale, monkeypatch, tmp_path):
    import run

    monkeypatch.setitem(scale.SCALE_MODELS["slope"], "groups", 20)
    spec = scale.write_scale_data(tmp_path, "slope", 400)
    kind, _, prefix = spec.partition(":")
    assert kind == "table"
    frame = run.load_table(prefix, 400)
    truth = scale.simulate_columns("slope", 400, groups=20)
    np.testing.assert_array_equal(frame["y"].to_numpy(), truth["y"])
    np.testing.assert_array_equal(frame["g"].astype(int).to_numpy(), truth["g"])
    stamp = Path(f"{prefix}.y").stat().st_mtime_ns
    assert scale.write_scale_data(tmp_path, "slope", 400) == spec
    assert Path(f"{prefix}.y").stat().st_mtime_ns == stamp  # not rewritten
    with pytest.raises(ValueError, match="expected 401"):
        run.load_table(prefix, 401)


def test_frame_table_round_trip_keeps_levels(peers, tmp_path):
    import run

    from mlmprimer.datasets import load

    hsb = load("hsb")
    back = run.load_table(peers.frame_to_table(hsb, tmp_path / "hsb"), len(hsb))
    assert list(back.columns) == list(hsb.columns)
    for name in hsb.columns:
        if isinstance(hsb[name].dtype, pd.CategoricalDtype):
            assert list(back[name].cat.categories) == list(hsb[name].cat.categories)
            assert (back[name].astype(str) == hsb[name].astype(str)).all()
        else:
            np.testing.assert_array_equal(back[name].to_numpy(), hsb[name].to_numpy(float))


def test_write_table_rejects_bad_columns(peers, tmp_path):
    with pytest.raises(ValueError, match="start at 1"):
        peers.write_table({"g": np.array([0, 1, 2])}, tmp_path / "t")
    with pytest.raises(ValueError, match="1-D with 3 values"):
        peers.write_table({"y": np.zeros(3), "x": np.zeros(4)}, tmp_path / "t")


# ---- plan and the time limit -------------------------------------------------------------------


def test_plan_order_and_filters(scale):
    plan = scale.scale_plan()
    assert plan[:3] == [("intercept", 100_000), ("intercept", 1_000_000), ("intercept", 10**7)]
    assert ("crossed_5000x5000", 1_000_000) in plan and len(plan) == 8
    assert scale.scale_plan(["crossed_5000x500", "slope"], [1_000_000]) == [
        ("slope", 1_000_000),
        ("crossed_5000x500", 1_000_000),
    ]
    with pytest.raises(ValueError, match="unknown scale models"):
        scale.scale_plan(["random"])


def test_skip_extrapolates_linearly_from_the_smaller_fit(scale):
    rid = scale.fit_id
    recs = {("lme4", rid("intercept", 100_000)): ok(10.0)}
    why = scale.skip_reason("intercept", 1_000_000, "lme4", recs, limit=60)
    assert why == "skipped: over the limit (~100 s expected)"
    assert scale.skip_reason("intercept", 1_000_000, "lme4", recs, limit=120) == ""
    # the predecessor is the largest smaller size measured
    recs[("lme4", rid("intercept", 1_000_000))] = ok(5.0)
    assert "~50 s" in scale.skip_reason("intercept", 10**7, "lme4", recs, limit=20)
    # nothing to extrapolate from: run it
    assert scale.skip_reason("slope", 100_000, "lme4", recs, limit=1) == ""


def test_skip_after_a_fit_over_the_limit_or_failed(scale):
    rid = scale.fit_id
    for status, text in (("timeout", "over the limit"), ("skipped", "over the limit")):
        recs = {("statsmodels", rid("slope", 100_000)): {"status": status}}
        assert text in scale.skip_reason("slope", 1_000_000, "statsmodels", recs, limit=1e9)
    recs = {("statsmodels", rid("slope", 100_000)): {"status": "error"}}
    assert "ended in error" in scale.skip_reason("slope", 1_000_000, "statsmodels", recs, 1e9)


def test_crossed_fits_extrapolate_from_the_same_rows(scale):
    rid = scale.fit_id
    recs = {("statsmodels", rid("intercept", 1_000_000)): ok(200.0)}
    why = scale.skip_reason("crossed_5000x500", 1_000_000, "statsmodels", recs, limit=120)
    assert why.startswith("skipped: over the limit")
    recs = {("lme4", rid("crossed_5000x500", 1_000_000)): {"status": "timeout"}}
    assert scale.skip_reason("crossed_5000x5000", 1_000_000, "lme4", recs, 120)
    recs = {("mixedlm-rs", rid("intercept", 1_000_000)): {"status": "n/a"}}
    assert scale.predecessor("crossed_5000x500", 1_000_000, "mixedlm-rs", recs) is None


# ---- results file and tables -----------------------------------------------------------------


def table_records(scale):
    rid = scale.fit_id("intercept", 1_000_000)
    crossed = scale.fit_id("crossed_5000x500", 1_000_000)
    return {
        ("lme4", rid): ok(8.0, logLik=-100.0, messages=["Model failed to converge"]),
        ("mlmprimer", rid): ok(2.0, loglik=-100.0 + 2e-7, peak_mb=150.0),
        ("mixedlm-rs", rid): ok(1.0, loglik=-100.005),
        ("statsmodels", rid): {"status": "skipped", "reason": "skipped: over the limit"},
        ("lme4", crossed): {"status": "timeout", "limit_s": 120},
        ("mlmprimer", crossed): ok(4.0, loglik=-50.0),
        ("mixedlm-rs", crossed): {"status": "n/a", "reason": "n/a (crossed factors)"},
        ("statsmodels", crossed): ok(100.0, loglik=-50.5, converged=False),
    }


def test_time_table_ratios_and_statuses(scale):
    tools = list(scale.SCALE_TOOLS)
    lines = scale.time_table(table_records(scale), tools)
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head[6:] == [
        "mlmprimer × lme4",
        "mlmprimer × mixedlm-rs",
        "mixedlm-rs × lme4",
        "statsmodels × lme4",
    ]
    rows = {
        ln.split("|")[1].strip(): [c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]
    }
    intercept = rows["intercept"]
    assert intercept[1] == "1,000,000"
    assert intercept[2:6] == ["8.00 (warning)", "2.00", "1.00", "skipped: over the limit"]
    assert intercept[6:] == ["0.25", "2.00", "0.12", "–"]
    crossed = rows["crossed_5000x500"]
    assert crossed[2:6] == ["timeout (>120 s)", "4.00", "n/a", "100 (not converged)"]
    assert crossed[6:] == ["–", "–", "–", "–"]


def test_memory_table_and_loglik_differences(scale):
    lines = scale.memory_table(table_records(scale), list(scale.SCALE_TOOLS))
    intercept = [c.strip() for c in lines[2].strip("|").split("|")]
    assert intercept[2:6] == ["–", "150", "–", "–"]
    assert intercept[6:] == ["< 1e-6", "-5.0e-03", "–"]
    # without lme4 the reference is mlmprimer's logLik, and it says so
    crossed = [c.strip() for c in lines[3].strip("|").split("|")]
    assert crossed[6:] == ["–", "–", "-0.500 (vs mlmprimer)"]


def test_goal_verdicts(scale):
    goals = {g["goal"]: g for g in scale.goal_rows(table_records(scale))}
    ratio_goal = goals["intercept at 1,000,000 rows: mlmprimer at least 4x faster than mixedlm-rs"]
    assert ratio_goal["verdict"] == "missed" and ratio_goal["value"].startswith("2.00 x")
    assert goals["crossed_5000x500 at 1,000,000 rows within 3 s"]["verdict"] == "missed"
    assert goals["intercept at 10,000,000 rows within 10 s"]["verdict"] == "not measured"
    assert ratio_goal["value"] == "2.00 x mixedlm-rs (2.0x slower)"
    recs = table_records(scale)
    recs[("mlmprimer", scale.fit_id("intercept", 1_000_000))] = ok(0.2)
    goals = {g["goal"]: g for g in scale.goal_rows(recs)}
    assert goals[ratio_goal["goal"]]["verdict"] == "met"
    assert goals[ratio_goal["goal"]]["value"] == "0.20 x mixedlm-rs (5.0x faster)"
    recs[("mlmprimer", scale.fit_id("crossed_5000x5000", 1_000_000))] = {"status": "timeout"}
    goals = {g["goal"]: g for g in scale.goal_rows(recs)}
    assert goals["crossed_5000x5000 at 1,000,000 rows within 10 s"]["verdict"] == "missed"


def test_ratio_format(scale):
    assert [scale.fmt_ratio(r) for r in (0.2, 0.031, 0.0081, 2.13, 23.4, None)] == [
        "0.20",
        "0.031",
        "0.0081",
        "2.13",
        "23",
        "–",
    ]


def test_results_round_trip_and_resume(scale, tmp_path):
    recs = {k: {**v, "tool": k[0], "id": k[1]} for k, v in table_records(scale).items()}
    path = tmp_path / "scale.json"
    scale.save_results(path, {"runs": {"r1": {"command": "x"}}, "records": recs})
    back = scale.load_results(path)
    assert back["records"] == recs and back["runs"] == {"r1": {"command": "x"}}
    assert scale.load_results(tmp_path / "none.json") == {"runs": {}, "records": {}}
    assert scale.done({"status": "skipped"}) and scale.done({"status": "n/a"})
    assert not scale.done({"status": "error"}) and not scale.done(None)
    md = scale.scale_markdown(back)
    assert "| intercept | 1,000,000 |" in md and "Caveat" in md
    assert "- lme4 / intercept_n1000000: Model failed to converge" in md


def test_plot_is_written_from_the_records(scale, tmp_path):
    series = scale.plot_series(table_records(scale))
    assert series[("mlmprimer", "intercept")] == [(1_000_000, 2.0)]
    assert ("statsmodels", "intercept") not in series  # skipped fits are not drawn
    path = scale.write_plot(table_records(scale), tmp_path / "s.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_parquet_data_are_deterministic(scale, tmp_path):
    pytest.importorskip("duckdb")
    a = pd.read_parquet(scale.write_parquet(tmp_path / "a.parquet", 5_000, groups=50))
    b = pd.read_parquet(scale.write_parquet(tmp_path / "b.parquet", 5_000, groups=50))
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["y", "x1", "x2", "x3", "g"] and a["g"].nunique() == 50
    assert abs(a["x1"].mean()) < 0.05 and abs(a["x1"].std() - 1) < 0.05
    assert abs(np.corrcoef(a["x1"], a["x2"])[0, 1]) < 0.05


# ---- the peer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "groups", "re_formula"),
    [("sleepstudy_slopes", "Subject", "~Days"), ("hsb_null", "school", None)],
)
def test_peer_spelling_of_one_factor_models(peers, tmp_path, model, groups, re_formula):
    import run

    spec = next(s for s in run.reference_specs(run.load_fixtures(), 1, 1.0) if s["id"] == model)
    got = peers.peer_spec(spec, tmp_path)
    assert got["sm"]["groups"] == groups and got["sm"].get("re_formula") == re_formula
    assert got["data"].startswith("table:")


@pytest.mark.parametrize("model", ["penicillin", "sleepstudy_uncorrelated", "pastes"])
def test_peer_cannot_fit_more_than_one_factor(peers, tmp_path, model):
    import run

    spec = next(s for s in run.reference_specs(run.load_fixtures(), 1, 1.0) if s["id"] == model)
    got = peers.peer_spec(spec, tmp_path)
    assert got["status"] == "n/a"
    assert got["reason"] in (
        "n/a (crossed factors)",
        "n/a (variance components: nested factors or uncorrelated terms)",
    )


def test_one_factor_spelling(peers):
    assert peers.one_factor_spelling({"groups": "g", "re_formula": "~x"}) == ""
    assert "crossed" in peers.one_factor_spelling({"groups": None})
    assert "variance components" in peers.one_factor_spelling(
        {"groups": "g", "vc_formula": {"Days": "0 + Days"}}
    )
    assert peers.one_factor_spelling({"groups": "g", "vc_formula": {}}) == ""


def test_peer_worker_output_matches_mlmprimer(peers, scale, tmp_path, monkeypatch):
    if peers.installed_version() != peers.PEER_VERSION:
        pytest.skip("benchmarks/.venv-peers not made (run.py --peers makes it)")
    import run

    from mlmprimer import lmer

    monkeypatch.setitem(scale.SCALE_MODELS["slope"], "groups", 30)
    data = scale.write_scale_data(tmp_path, "slope", 600)
    spec = {"id": "slope_n600", "data": data, "n": 600, "formula": "y ~ x + (x | g)"}
    spec.update({"REML": True, "max_repeats": 2, "budget_s": 1.0})
    recs, proc = run.run_jobs(
        "mixedlm-rs", [peers.peer_spec(spec, tmp_path)], tmp_path, 120, 1, None
    )
    rec = recs[0]
    assert rec["status"] == "ok", rec
    assert len(rec["times"]) == 2 and rec["converged"] is True
    m = lmer("y ~ x + (x | g)", run.load_table(data.partition(":")[2], 600))
    assert rec["loglik"] == pytest.approx(m.loglik, abs=1e-5)
    np.testing.assert_allclose(rec["fixef"], m.fixef.to_numpy(), rtol=1e-4)
    assert proc["maxrss_mb"] > 0


@pytest.mark.lme4
def test_lme4_reads_the_same_table(scale, tmp_path, monkeypatch):
    import run

    if run.r_available():
        pytest.skip(run.r_available())
    from mlmprimer import lmer

    monkeypatch.setitem(scale.SCALE_MODELS["intercept"], "groups", 25)
    data = scale.write_scale_data(tmp_path, "intercept", 500)
    formula = scale.SCALE_MODELS["intercept"]["formula"]
    spec = {"id": "intercept_n500", "data": data, "n": 500, "formula": formula}
    spec.update({"REML": True, "max_repeats": 1, "budget_s": 1.0})
    recs, proc = run.run_jobs("lme4", [spec], tmp_path, 120, None, None)
    assert recs[0]["status"] == "ok", proc["output"]
    mine = lmer(formula, run.load_table(data.partition(":")[2], 500))
    assert recs[0]["nobs"] == 500
    assert mine.loglik == pytest.approx(recs[0]["logLik"], abs=1e-6)


def test_scale_md_keeps_the_course_models_block(scale, peers, tmp_path):
    index = {
        ("mlmprimer", "dyestuff"): ok(0.02, loglik=-163.66),
        ("mixedlm-rs", "dyestuff"): ok(0.01, loglik=-163.66 + 1e-9),
        ("mixedlm-rs", "penicillin"): {"status": "n/a", "reason": "n/a (crossed factors)"},
    }
    meta = {"date": "D", "command": "C", "machine": {"summary": "M"}}
    meta.update({"load_start": [1.0], "load_end": [2.0], "mlmprimer_revision": "R"})
    report = {"meta": meta, "tools": ["mlmprimer", "mixedlm-rs"], "index": index}
    report.update({"reference_models": ["dyestuff", "penicillin"], "nobs": {"dyestuff": 30}})
    path = tmp_path / "SCALE.md"
    path.write_text("old scale tables\n")
    peers.write_peer_block(report, path)
    block = peers.peer_block(path.read_text())
    assert "| dyestuff | 30 | 0.010 | 0.020 | 2.00 |" in block
    assert (
        "Not fitted by mixedlm-rs (one grouping factor only): penicillin (crossed factors)."
        in block
    )
    assert "\n\n\n" not in block
    scale.write_scale_md("new scale tables\n", path)
    text = path.read_text()
    assert text.startswith("new scale tables") and "old scale" not in text
    assert peers.peer_block(text) == block
    peers.write_peer_block(report, path)  # replaced, not appended twice
    assert path.read_text().count(peers.PEERS_BEGIN) == 1
