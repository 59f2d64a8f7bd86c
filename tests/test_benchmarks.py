"""Smoke tests of benchmarks/run.py on tiny data: the machinery works, no timing is checked."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN_PY = REPO / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmarks_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmarks_run"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(bench, tmp_path_factory):
    """Simulated crossed data, 240 rows on 12 x 6 levels, and a spec fitting it."""
    prefix = bench.write_scaling_data(tmp_path_factory.mktemp("data"), 240, levels=(12, 6))
    spec = bench.scaling_spec(prefix, 240, max_repeats=2, budget_s=1.0)
    return prefix, spec


def test_every_fixture_is_benchmarked(bench):
    fixtures = bench.load_fixtures()
    assert "insteval" in fixtures
    specs = bench.reference_specs(fixtures, max_repeats=3, budget_s=1.0)
    assert [s["id"] for s in specs] == list(fixtures)
    assert all(s["data"].startswith("dataset:") and s["n"] > 0 for s in specs)


# MixedLM's spelling of some reference models, written out by hand from statsmodels' docs:
# (fixed, groups, re_formula, vc formulas in lme4's term order, use_sparse)
HAND_SPELLED = {
    "sleepstudy_slopes": ("Reaction ~ Days", "Subject", "~Days", [], False),
    "sleepstudy_uncorrelated": ("Reaction ~ Days", "Subject", "1", ["0 + Days"], False),
    "dyestuff": ("Yield ~ 1", "Batch", None, [], False),
    "penicillin": ("diameter ~ 1", None, None, ["0 + C(plate)", "0 + C(sample)"], False),
    "pastes": ("strength ~ 1", "batch", "1", ["0 + C(cask)"], False),
    "hsb_ml": ("mAch ~ ses + meanses + sector", "school", "~ses", [], False),
    "scotssec": ("attain ~ verbal + sex", None, None, ["0 + C(primary)", "0 + C(second)"], True),
}


@pytest.mark.parametrize("name", sorted(HAND_SPELLED))
def test_statsmodels_spelling_is_generated(bench, name):
    from mlmprimer.datasets import load

    fx = bench.load_fixtures()[name]
    sm = bench.statsmodels_kwargs(fx["formula"], load(fx["dataset"]))
    fixed, groups, re_formula, vc, sparse = HAND_SPELLED[name]
    assert sm["fixed"].replace(" ", "") == fixed.replace(" ", "")
    assert sm["groups"] == groups
    assert sm.get("re_formula") == re_formula
    assert list(sm.get("vc_formula", {}).values()) == vc
    assert sm.get("use_sparse", False) is sparse


def test_scaling_data_round_trip(bench, tiny):
    prefix, _ = tiny
    data = bench.load_sim(prefix, 240)
    assert list(data.columns) == ["y", "x", "g1", "g2"]
    assert data["g1"].nunique() == 12 and data["g2"].nunique() == 6
    assert data["g1"].value_counts().min() == 20  # every level occurs, equally often
    with pytest.raises(ValueError, match="expected 241"):
        bench.load_sim(prefix, 241)


def test_run_process_kills_at_the_time_limit(bench):
    proc = bench.run_process([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert proc["status"] == "timeout"
    assert proc["wall_s"] < 10


def test_run_process_reports_peak_memory(bench):
    grow = "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096])"
    small = bench.run_process([sys.executable, "-c", "pass"], timeout=60)
    big = bench.run_process([sys.executable, "-c", grow], timeout=60)
    assert small["status"] == big["status"] == "ok"
    assert big["maxrss_mb"] - small["maxrss_mb"] > 150


def test_python_workers_fit_tiny_data(bench, tiny, tmp_path):
    _, spec = tiny
    got = {}
    for tool in ("mlmprimer", "statsmodels"):
        recs, proc = bench.run_jobs(tool, [spec], tmp_path, 120, 1, None)
        assert proc["status"] == "ok", proc["output"]
        rec = recs[0]
        assert rec["status"] == "ok", rec
        assert 1 <= len(rec["times"]) <= 2
        got[tool] = rec["loglik"]
    assert got["mlmprimer"] == pytest.approx(got["statsmodels"], abs=1e-3)


@pytest.mark.lme4
def test_lme4_worker_fits_tiny_data(bench, tiny, tmp_path):
    if bench.r_available():
        pytest.skip(bench.r_available())
    _, spec = tiny
    recs, proc = bench.run_jobs("lme4", [spec], tmp_path, 120, None, None)
    assert proc["status"] == "ok", proc["output"]
    assert recs[0]["status"] == "ok", recs[0]
    from mlmprimer.model import lmer

    mine = lmer(spec["formula"], bench.load_sim(spec["data"][4:], 240), REML=True)
    assert mine.loglik == pytest.approx(recs[0]["logLik"], abs=1e-3)


def test_main_writes_json_and_markdown(bench, tmp_path):
    out = tmp_path / "results"
    argv = ["--models", "dyestuff", "--tools", "mlmprimer", "--skip-scaling"]
    argv += ["--repeats", "1", "--out", str(out)]
    summary_before = bench.SUMMARY.read_text() if bench.SUMMARY.exists() else None
    assert bench.main(argv) == 0
    report = json.loads((out / "latest.json").read_text())
    (rec,) = [r for r in report["results"] if r["tool"] == "mlmprimer"]
    assert rec["model"] == "dyestuff" and rec["status"] == "ok"
    assert rec["peak_mb"] >= 0
    fixture = json.loads((REPO / "tests" / "fixtures" / "lme4" / "dyestuff.json").read_text())
    assert rec["loglik"] == pytest.approx(fixture["logLik"], abs=1e-3)
    md = (out / "latest.md").read_text()
    assert "| dyestuff | 30 |" in md
    assert "every reference logLik within 0.001 of lme4's | met" in md
    # a partial run never touches the committed summary
    after = bench.SUMMARY.read_text() if bench.SUMMARY.exists() else None
    assert after == summary_before


def test_markdown_marks_timeouts_and_missed_targets(bench):
    res = {
        ("fixture", "a"): {"logLik": -10.0},
        ("fixture", "b"): {"logLik": -20.0},
        ("lme4", "a"): {"id": "a", "status": "ok", "times": [1.0], "logLik": -10.0},
        ("lme4", "b"): {"id": "b", "status": "ok", "times": [2.0], "logLik": -20.0},
        ("mlmprimer", "a"): {"id": "a", "status": "ok", "times": [3.0], "loglik": -10.0},
        ("mlmprimer", "b"): {"id": "b", "status": "ok", "times": [1.0], "loglik": -20.01},
        ("statsmodels", "a"): {"id": "a", "status": "timeout", "limit_s": 120},
        ("statsmodels", "b"): {"id": "b", "status": "n/a"},
    }
    report = {
        "meta": {
            "date": "today",
            "machine": {"summary": "a machine"},
            "command": "run",
            "load_start": [0.0],
            "load_end": [0.0],
            "elapsed_s": 1.0,
        },
        "tools": ["lme4", "mlmprimer", "statsmodels"],
        "reference_models": ["a", "b"],
        "nobs": {"a": 10, "b": 20},
        "scaling_n": [],
        "index": res,
    }
    report["targets"] = bench.evaluate_targets(report)
    verdicts = {t["target"]: t["verdict"] for t in report["targets"]}
    assert verdicts["every reference logLik within 0.001 of lme4's"] == "missed"
    assert verdicts["every fit at most 1.5x lme4's time"] == "missed"
    assert verdicts["suite total at most lme4's"] == "missed"  # 4 s against 3 s
    md = bench.markdown_report(report)
    assert "timeout (>120 s)" in md and "n/a" in md
    assert "| a | 10 | 1.00 | 3.00 | 3.00 | timeout (>120 s) |" in md
    assert "| **total** |  | 3.00 | 4.00 | 1.33 | ≥ 120 |" in md


def test_help_runs_without_heavy_imports():
    import subprocess

    code = (
        "import runpy, sys; sys.argv = ['run.py', '--help']\n"
        "try:\n    runpy.run_path(sys.argv_path, run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "assert 'numpy' not in sys.modules and 'pandas' not in sys.modules"
    ).replace("sys.argv_path", repr(str(RUN_PY)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout


def test_rscript_detection_matches_the_machine(bench):
    reason = bench.r_available()
    if shutil.which("Rscript") is None:
        assert reason == "Rscript not found"
    else:
        assert isinstance(reason, str)


# --------------------------------------------------------------------------------------------
# The glmer part (--glmer)
# --------------------------------------------------------------------------------------------

GLMER_MODELS = REPO / "tests" / "fixtures" / "lme4_glmer" / "models.csv"


def test_every_glmer_fixture_is_benchmarked(bench):
    import csv

    with GLMER_MODELS.open(encoding="utf-8", newline="") as f:
        names = [row["model"] for row in csv.DictReader(f)]
    fixtures = bench.load_glmer_fixtures()
    assert list(fixtures) == names
    assert not set(fixtures) & set(bench.load_fixtures()), "names must not collide"
    specs = bench.glmer_specs(fixtures, max_repeats=3, budget_s=5.0)
    assert [s["id"] for s in specs] == names
    for spec in specs:
        assert spec["data"].startswith("dataset:") and spec["n"] > 0
        assert spec["family"] in ("binomial", "poisson")
        assert spec["single_fit_s"] == bench.GLMER_SINGLE_FIT_S
    by_name = {s["id"]: s for s in specs}
    assert by_name["cbpp_agq9"]["nAGQ"] == 9
    assert by_name["cbpp_proportion"]["weights"] == "size"


def test_glmer_weights_and_offset_arguments(bench):
    import numpy as np

    from mlmprimer.datasets import load

    cbpp = load("cbpp")
    specs = {s["id"]: s for s in bench.glmer_specs(bench.load_glmer_fixtures(), 1, 1.0)}
    assert bench.glmer_arrays(specs["cbpp_laplace"], cbpp) == {}
    w = bench.glmer_arrays(specs["cbpp_proportion"], cbpp)["weights"]
    assert w.tolist() == cbpp["size"].tolist()
    off = bench.glmer_arrays(specs["cbpp_poisson_offset_arg"], cbpp)["offset"]
    np.testing.assert_allclose(np.exp(off), cbpp["size"])
    with pytest.raises(NotImplementedError, match="only log"):
        bench.glmer_arrays({**specs["cbpp_laplace"], "offset": "sqrt(size)"}, cbpp)


def test_python_worker_fits_a_glmer_model(bench, tmp_path):
    fixtures = bench.load_glmer_fixtures()
    (spec,) = [s for s in bench.glmer_specs(fixtures, 2, 2.0) if s["id"] == "cbpp_proportion"]
    recs, proc = bench.run_jobs("mlmprimer", [spec], tmp_path, 300, 1, None)
    assert proc["status"] == "ok", proc["output"]
    rec = recs[0]
    assert rec["status"] == "ok", rec
    assert 1 <= len(rec["times"]) <= 2 and rec["converged"]
    assert rec["loglik"] == pytest.approx(fixtures["cbpp_proportion"]["logLik"], abs=1e-3)


@pytest.mark.lme4
def test_lme4_worker_fits_glmer_models(bench, tmp_path):
    """Prior weights and an offset argument reach glmer: the fixtures' logLik comes back."""
    if bench.r_available():
        pytest.skip(bench.r_available())
    fixtures = bench.load_glmer_fixtures()
    wanted = ("cbpp_proportion", "cbpp_poisson_offset_arg", "cbpp_agq9")
    specs = [s for s in bench.glmer_specs(fixtures, 2, 2.0) if s["id"] in wanted]
    recs, proc = bench.run_jobs("lme4", specs, tmp_path, 300, None, None)
    assert proc["status"] == "ok", proc["output"]
    for rec in recs:
        assert rec["status"] == "ok", rec
        assert 1 <= len(rec["times"]) <= 2
        assert rec["logLik"] == pytest.approx(fixtures[rec["id"]]["logLik"], abs=1e-6)
        assert rec["criterion"] == pytest.approx(-2 * rec["logLik"], rel=1e-12)


def glmer_report(bench, mlm_times, lme4_times, mlm_loglik):
    res = {}
    info = {}
    for i, (m, lt, mt, ll) in enumerate(zip("ab", lme4_times, mlm_times, mlm_loglik, strict=True)):
        res[("fixture", m)] = {"logLik": -10.0 * (i + 1)}
        res[("lme4", m)] = {"id": m, "status": "ok", "times": lt, "logLik": -10.0 * (i + 1)}
        res[("mlmprimer", m)] = {"id": m, "status": "ok", "times": mt, "loglik": ll}
        info[m] = {"nobs": 50, "family": "binomial", "link": "logit", "nAGQ": 1}
    return {
        "tools": ["lme4", "mlmprimer"],
        "reference_models": [],
        "glmer_models": ["a", "b"],
        "glmer_info": info,
        "glmer_repeats": 3,
        "glmer_budget_s": 20.0,
        "index": res,
    }


def test_glmer_table_reports_best_times_and_ratios(bench):
    # best of k: the minima 0.5 / 1.0 and 2.0 / 1.0
    report = glmer_report(bench, [[0.9, 0.5], [2.5, 2.0]], [[1.0, 1.2], [1.0]], [-10.0, -20.0])
    md = "\n".join(bench.glmer_lines(report))
    assert md.startswith(bench.GLMER_BEGIN) and md.rstrip().endswith(bench.GLMER_END)
    assert "| a | 50 | binomial (logit) | 1 | 1.00 | 0.500 | 0.50 | 2 / 2 | < 1e-6 |" in md
    assert "| b | 50 | binomial (logit) | 1 | 1.00 | 2.00 | 2.00 | 1 / 2 | < 1e-6 |" in md
    assert "| **total** |  |  |  | 2.00 | 2.50 | 1.25 |  |  |" in md
    verdicts = {t["target"]: t["verdict"] for t in bench.glmer_targets(report)}
    assert verdicts["every glmer logLik within 0.001 of lme4's"] == "met"
    assert verdicts["every glmer fit no slower than lme4's (best of k)"] == "missed"
    fast = glmer_report(bench, [[0.5], [0.5]], [[1.0], [1.0]], [-10.0, -20.1])
    verdicts = {t["target"]: t["verdict"] for t in bench.glmer_targets(fast)}
    assert verdicts["every glmer fit no slower than lme4's (best of k)"] == "met"
    assert verdicts["every glmer logLik within 0.001 of lme4's"] == "missed"
    # the lmer part did not run: its targets are not claimed
    assert bench.evaluate_targets({**fast, "scaling_n": []}) == []


def test_glmer_run_rewrites_only_its_section(bench, tmp_path):
    report = glmer_report(bench, [[0.5], [0.5]], [[1.0], [1.0]], [-10.0, -20.0])
    report["meta"] = {
        "date": "today",
        "command": "run.py --glmer",
        "machine": {"summary": "a machine"},
        "load_start": [3.0],
        "load_end": [4.0],
        "mlmprimer_revision": "abc",
        "versions": {"lme4": {"R": "4.2.2", "lme4": "1.1-31"}},
    }
    md = "\n".join(bench.glmer_lines(report))
    summary = tmp_path / "RESULTS.md"
    summary.write_text("# Benchmark results\n\nthe lmer tables\n", encoding="utf-8")
    bench.write_glmer_summary(report, md, summary)
    first = summary.read_text(encoding="utf-8")
    assert first.startswith("# Benchmark results\n\nthe lmer tables\n")
    assert first.count(bench.GLMER_BEGIN) == 1 and "load average (1 min) at start 3.00" in first
    report["meta"]["date"] = "tomorrow"
    bench.write_glmer_summary(report, md, summary)
    second = summary.read_text(encoding="utf-8")
    assert second.count(bench.GLMER_BEGIN) == 1 and second.count(bench.GLMER_END) == 1
    assert "tomorrow" in second and "today" not in second
    assert second.startswith("# Benchmark results\n\nthe lmer tables\n")
