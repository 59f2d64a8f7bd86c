"""The checks of appendix A3 (mlmprimer.check.chA3) against answers computed another way.

The checks compute their right answers with pandas and in-memory ``lmer`` fits; here the answers
come from DuckDB SQL on a Parquet file, from statsmodels, and from fits from the file (the
aggregated path of :mod:`mlmprimer.bigfit`). Each check must call them right and name the typical
wrong answers; that every check waits for answers and never raises on junk is tested for all
chapters in tests/test_check.py.
"""

import warnings

import duckdb
import pytest
import statsmodels.formula.api as smf

from mlmprimer import check, datasets
from mlmprimer.model import lmer
from mlmprimer.profile import confint


@pytest.fixture(scope="module")
def hsb():
    return datasets.load("hsb")


@pytest.fixture(scope="module")
def hsb_file(hsb, tmp_path_factory):
    path = tmp_path_factory.mktemp("a3") / "hsb.parquet"
    hsb.to_parquet(path, index=False)
    return path


def mixedlm(formula, data, reml=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.mixedlm(formula, data, groups="school").fit(reml=reml)


@pytest.fixture(scope="module")
def sums(hsb_file):
    con = duckdb.connect()
    sql = f"SELECT school, count(*) AS n, sum(mAch) AS y FROM read_parquet('{hsb_file}') GROUP BY 1"
    frame = con.sql(sql).df().set_index("school")
    return {
        "J": len(frame),
        "max": int(frame.n.max()),
        "min": int(frame.n.min()),
        "y": float(frame.loc["1224", "y"]),
        "mean": float(frame.loc["1224", "y"] / frame.loc["1224", "n"]),
        "rows": int(frame.n.sum()),
    }


def test_exA3_1_right_answers_from_sql(sums):
    assert sums["J"] == 160 and sums["rows"] == 7185  # the data set as documented
    r = check.exA3_1(sums["J"], sums["max"], round(sums["y"], 2))
    assert r.status == "correct", r


def test_exA3_1_names_rows_for_groups_smallest_and_mean(sums):
    text = str(check.exA3_1(sums["rows"], sums["min"], sums["mean"]))
    assert "number of rows" in text and "smallest school" in text and "mean of mAch" in text
    assert check.exA3_1(sums["J"] + 1, ..., ...).status == "incorrect"


@pytest.fixture(scope="module")
def context_from_file(hsb_file):
    return lmer("mAch ~ ses + meanses + (1 | school)", hsb_file)


def test_exA3_2_right_answers_from_statsmodels_and_the_file_fit(hsb, context_from_file):
    sm = mixedlm("mAch ~ ses + meanses", hsb)
    tau = float(sm.cov_re.iloc[0, 0]) ** 0.5
    ci = confint(context_from_file, parm=[".sig01"]).loc[".sig01"]
    assert ci.iloc[0] < tau < ci.iloc[1]
    r = check.exA3_2(round(tau, 3), (round(ci.iloc[1], 3), round(ci.iloc[0], 3)))  # any order
    assert r.status == "correct", r


def test_exA3_2_names_variance_ml_and_level(hsb, context_from_file):
    sm = mixedlm("mAch ~ ses + meanses", hsb)
    ml = mixedlm("mAch ~ ses + meanses", hsb, reml=False)
    ci = confint(context_from_file, parm=[".sig01"]).loc[".sig01"]
    ci90 = confint(context_from_file, level=0.90, parm=[".sig01"]).loc[".sig01"]
    squared = (ci.iloc[0] ** 2, ci.iloc[1] ** 2)
    text = str(check.exA3_2(float(sm.cov_re.iloc[0, 0]), squared))
    assert "variance tau^2" in text and "limits squared" in text
    text = str(check.exA3_2(float(ml.cov_re.iloc[0, 0]) ** 0.5, tuple(ci90)))
    assert "ML estimate" in text and "90 %" in text
    wide = (ci.iloc[0] - 0.3, ci.iloc[1] + 0.3)
    assert "too wide" in str(check.exA3_2(..., wide))


def test_exA3_3_the_split_and_the_prediction(hsb, hsb_file, tmp_path):
    public, catholic = tmp_path / "p.parquet", tmp_path / "c.parquet"
    hsb[hsb.sector == "Public"].to_parquet(public, index=False)
    hsb[hsb.sector != "Public"].to_parquet(catholic, index=False)
    both = duckdb.connect().read_parquet([str(catholic), str(public)])  # the other order
    llf = lmer("mAch ~ ses + (1 | school)", both).loglik
    assert abs(llf - mixedlm("mAch ~ ses", hsb).llf) < 0.05  # statsmodels' REML agrees
    r = check.exA3_3("same", llf)
    assert r.status == "correct" and "bear" in str(r)
    other = check.exA3_3("larger", llf)
    assert other.status == "correct" and "say otherwise" in str(other)


def test_exA3_3_names_one_file_separate_fits_and_ml(hsb, hsb_file):
    # each file fitted on its own, from the file (the check fits the data frames in memory)
    pupils = duckdb.connect().read_parquet(str(hsb_file))
    one = lmer("mAch ~ ses + (1 | school)", pupils.filter("sector = 'Public'")).loglik
    two = lmer("mAch ~ ses + (1 | school)", pupils.filter("sector <> 'Public'")).loglik
    assert "public schools' file alone" in str(check.exA3_3(..., one))
    assert "Catholic schools' file alone" in str(check.exA3_3(..., two))
    assert "two separate fits" in str(check.exA3_3(..., one + two))
    assert "ML log-likelihood" in str(check.exA3_3(..., mixedlm("mAch ~ ses", hsb, False).llf))


def test_exA3_4_residuals_from_statsmodels(hsb):
    sm = mixedlm("mAch ~ ses + meanses", hsb)
    resid = (hsb["mAch"] - sm.fittedvalues)[hsb.school == "1224"]
    fixed = hsb["mAch"] - sm.model.exog @ sm.fe_params.to_numpy()
    marginal = fixed[hsb.school == "1224"]
    assert check.exA3_4(resid.std(ddof=1), resid.mean()).status == "correct"
    text = str(check.exA3_4(resid.std(ddof=0), marginal.mean()))
    assert "stddev_pop" in text and '".fixed"' in text


def test_exA3_4_agrees_with_augment(context_from_file):
    rows = context_from_file.augment().filter("school = '1224'")
    sd, mean = rows.aggregate('stddev_samp(".resid"), avg(".resid")').fetchall()[0]
    assert check.exA3_4(sd, mean).status == "correct"


def test_exA3_5_words_are_recorded_and_missing_ideas_asked():
    text = (
        "A logistic glmer gives each row a weight that changes at every iteration, so it needs "
        "the rows each time; the bootstrap simulates a new response for every row; residuals "
        "belong to rows and augment computes them in the database."
    )
    assert check.exA3_5(text).status == "recorded"  # the words go to the instructor
    assert "too short" in str(check.exA3_5("the rows"))
    assert check.exA3_5(["a", "list"]).status == "incorrect"  # words, not a list of them
    vague = " ".join(["the sums are enough for most things here"] * 5)
    said = str(check.exA3_5(vague))
    assert "bootstrap" in said and "logistic" in said and "residuals" in said
