"""Tests of mlmprimer.datasets: offline loading, shapes, R's factor levels, descriptions."""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlmprimer import datasets

NAMES = [
    "sleepstudy",
    "dyestuff",
    "penicillin",
    "pastes",
    "insteval",
    "hsb",
    "exam",
    "scotssec",
    "oxboys",
    "machines",
    "radon",
    "orthodont",
    "cbpp",
    "verbagg",
    "grouseticks",
    "contraception",
    "epil",
]

SHAPES = {
    "sleepstudy": (180, 3),
    "dyestuff": (30, 2),
    "penicillin": (144, 3),
    "pastes": (60, 4),
    "insteval": (73421, 7),
    "hsb": (7185, 8),
    "exam": (4059, 10),
    "scotssec": (3435, 6),
    "oxboys": (234, 4),
    "machines": (54, 3),
    "radon": (919, 5),
    "orthodont": (108, 4),
    "cbpp": (56, 4),
    "verbagg": (7584, 9),
    "grouseticks": (403, 7),
    "contraception": (1934, 6),
    "epil": (236, 9),
}

COLUMNS = {
    "sleepstudy": ["Reaction", "Days", "Subject"],
    "dyestuff": ["Batch", "Yield"],
    "penicillin": ["diameter", "plate", "sample"],
    "pastes": ["strength", "batch", "cask", "sample"],
    "insteval": ["s", "d", "studage", "lectage", "service", "dept", "y"],
    "hsb": ["school", "minrty", "sx", "ses", "mAch", "meanses", "sector", "cses"],
    "exam": [
        "school",
        "normexam",
        "schgend",
        "schavg",
        "vr",
        "intake",
        "standLRT",
        "sex",
        "type",
        "student",
    ],
    "scotssec": ["verbal", "attain", "primary", "sex", "social", "second"],
    "oxboys": ["Subject", "age", "height", "Occasion"],
    "machines": ["Worker", "Machine", "score"],
    "radon": ["log_radon", "floor", "uranium", "county_number", "county"],
    "orthodont": ["distance", "age", "Subject", "Sex"],
    "cbpp": ["herd", "incidence", "size", "period"],
    "verbagg": ["Anger", "Gender", "item", "resp", "id", "btype", "situ", "mode", "r2"],
    "grouseticks": ["INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION", "cHEIGHT"],
    "contraception": ["woman", "district", "use", "livch", "age", "urban"],
    "epil": ["y", "trt", "base", "age", "V4", "subject", "period", "lbase", "lage"],
}

# Level orders written out by hand from R's levels() (R 4.2, lme4 1.1-31, mlmRev 1.0-8,
# nlme 3.1-162), independently of the constants in the module.
BANDS = ["bottom 25%", "mid 50%", "top 25%"]
EXPECTED_LEVELS = {
    ("sleepstudy", "Subject"): "308 309 310 330 331 332 333 334 335 337 349 350 351 352 "
    "369 370 371 372".split(),
    ("dyestuff", "Batch"): list("ABCDEF"),
    ("penicillin", "plate"): list("abcdefghijklmnopqrstuvwx"),
    ("penicillin", "sample"): list("ABCDEF"),
    ("pastes", "batch"): list("ABCDEFGHIJ"),
    ("pastes", "cask"): list("abc"),
    ("insteval", "studage"): ["2", "4", "6", "8"],
    ("insteval", "lectage"): ["1", "2", "3", "4", "5", "6"],
    ("insteval", "service"): ["0", "1"],
    ("insteval", "dept"): "15 5 10 12 6 7 4 8 9 14 1 3 11 2".split(),
    ("hsb", "minrty"): ["No", "Yes"],
    ("hsb", "sx"): ["Male", "Female"],
    ("hsb", "sector"): ["Public", "Catholic"],
    ("exam", "schgend"): ["mixed", "boys", "girls"],
    ("exam", "vr"): BANDS,
    ("exam", "intake"): BANDS,
    ("exam", "sex"): ["F", "M"],
    ("exam", "type"): ["Mxd", "Sngl"],
    ("scotssec", "sex"): ["M", "F"],
    ("oxboys", "Subject"): "10 26 25 9 2 6 7 17 16 15 8 20 1 18 5 23 11 21 3 24 22 12 13 "
    "14 19 4".split(),
    ("oxboys", "Occasion"): [str(i) for i in range(1, 10)],
    ("machines", "Worker"): ["6", "2", "4", "1", "3", "5"],
    ("machines", "Machine"): ["A", "B", "C"],
    ("orthodont", "Subject"): "M16 M05 M02 M11 M07 M08 M03 M12 M13 M14 M09 M15 M06 M04 M01 M10 "
    "F10 F09 F06 F01 F05 F07 F02 F08 F03 F04 F11".split(),
    ("orthodont", "Sex"): ["Male", "Female"],
    ("cbpp", "herd"): [str(i) for i in range(1, 16)],
    ("cbpp", "period"): ["1", "2", "3", "4"],
    ("verbagg", "Gender"): ["F", "M"],
    ("verbagg", "item"): "S1WantCurse S1WantScold S1WantShout S2WantCurse S2WantScold "
    "S2WantShout S3WantCurse S3WantScold S3WantShout S4wantCurse S4WantScold S4WantShout "
    "S1DoCurse S1DoScold S1DoShout S2DoCurse S2DoScold S2DoShout S3DoCurse S3DoScold "
    "S3DoShout S4DoCurse S4DoScold S4DoShout".split(),
    ("verbagg", "resp"): ["no", "perhaps", "yes"],
    ("verbagg", "btype"): ["curse", "scold", "shout"],
    ("verbagg", "situ"): ["other", "self"],
    ("verbagg", "mode"): ["want", "do"],
    ("verbagg", "r2"): ["N", "Y"],
    ("grouseticks", "YEAR"): ["95", "96", "97"],
    ("contraception", "use"): ["N", "Y"],
    ("contraception", "livch"): ["0", "1", "2", "3+"],
    ("contraception", "urban"): ["N", "Y"],
    ("epil", "trt"): ["placebo", "progabide"],
}

N_LEVELS = {
    ("pastes", "sample"): 30,
    ("insteval", "s"): 2972,
    ("insteval", "d"): 1128,
    ("hsb", "school"): 160,
    ("exam", "school"): 65,
    ("exam", "student"): 650,
    ("scotssec", "primary"): 148,
    ("scotssec", "second"): 19,
    ("radon", "county"): 85,
    ("verbagg", "id"): 316,
    ("grouseticks", "INDEX"): 403,
    ("grouseticks", "BROOD"): 118,
    ("grouseticks", "LOCATION"): 63,
    ("contraception", "woman"): 1934,
    ("contraception", "district"): 60,
}


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_loading_needs_no_network(no_network):
    datasets._load_cached.cache_clear()
    for name in NAMES:
        assert len(datasets.load(name)) == SHAPES[name][0]
    with pytest.raises(OSError):
        socket.socket()


def test_list_datasets():
    table = datasets.list_datasets()
    assert table.columns.tolist() == ["name", "package", "r_name", "rows", "description"]
    assert table["name"].tolist() == NAMES
    assert dict(zip(table["name"], table["rows"], strict=True)) == {
        n: s[0] for n, s in SHAPES.items()
    }
    assert table.set_index("name")["r_name"].to_dict() == {
        "sleepstudy": "sleepstudy",
        "dyestuff": "Dyestuff",
        "penicillin": "Penicillin",
        "pastes": "Pastes",
        "insteval": "InstEval",
        "hsb": "Hsb82",
        "exam": "Exam",
        "scotssec": "ScotsSec",
        "oxboys": "Oxboys",
        "machines": "Machines",
        "radon": "radon",
        "orthodont": "Orthodont",
        "cbpp": "cbpp",
        "verbagg": "VerbAgg",
        "grouseticks": "grouseticks",
        "contraception": "Contraception",
        "epil": "epil",
    }
    assert set(table["package"]) == {"lme4", "mlmRev", "nlme", "HLMdiag", "MASS"}
    assert table["description"].str.len().gt(10).all()


@pytest.mark.parametrize("name", NAMES)
def test_shape_columns_and_dtypes(name):
    df = datasets.load(name)
    assert df.shape == SHAPES[name]
    assert df.columns.tolist() == COLUMNS[name]
    assert "rownames" not in df.columns
    assert df.index.equals(pd.RangeIndex(len(df)))
    assert not df.isna().any().any()
    factors = set(datasets.FACTOR_LEVELS[name])
    for col in df.columns:
        if col in factors:
            assert isinstance(df[col].dtype, pd.CategoricalDtype), col
            assert not df[col].cat.ordered, col
            assert all(isinstance(c, str) for c in df[col].cat.categories), col
            # Every level is used, as in R's copies of these data.
            assert df[col].nunique() == len(df[col].cat.categories), col
        else:
            assert pd.api.types.is_numeric_dtype(df[col]), col


@pytest.mark.parametrize(("name", "col"), list(EXPECTED_LEVELS))
def test_level_order_matches_r(name, col):
    assert datasets.load(name)[col].cat.categories.tolist() == EXPECTED_LEVELS[(name, col)]


@pytest.mark.parametrize(("name", "col"), list(N_LEVELS))
def test_long_level_lists(name, col):
    cats = datasets.load(name)[col].cat.categories.tolist()
    assert len(cats) == N_LEVELS[(name, col)]
    numeric = ("s", "d", "school", "student", "primary", "second", "id", "INDEX", "BROOD")
    if col in (*numeric, "LOCATION", "woman", "district") and name != "hsb":
        assert cats == sorted(cats, key=int), "numeric, not alphabetical, order"


def test_every_factor_column_is_covered():
    covered = set(EXPECTED_LEVELS) | set(N_LEVELS)
    declared = {(n, c) for n, cols in datasets.FACTOR_LEVELS.items() for c in cols}
    assert declared == covered


def test_hsb_school_order_is_r_order():
    school = datasets.load("hsb")["school"].cat.categories.tolist()
    assert school[:5] == ["8367", "8854", "4458", "5762", "6990"]
    assert school[-3:] == ["8628", "9198", "9586"]
    assert school == list(datasets.HSB82_SCHOOL)


def test_values_survive_conversion():
    sleep = datasets.load("sleepstudy")
    assert sleep.loc[0, "Subject"] == "308" and sleep.loc[0, "Reaction"] == pytest.approx(249.56)
    assert sleep["Subject"].value_counts().eq(10).all()
    hsb = datasets.load("hsb")
    assert hsb.loc[0, "school"] == "1224" and hsb.loc[0, "sx"] == "Female"
    assert (hsb["sector"] == "Catholic").sum() == 3543
    inst = datasets.load("insteval")
    assert inst.loc[0, ["s", "d", "dept"]].tolist() == ["1", "1002", "2"]
    assert inst["y"].between(1, 5).all()
    radon = datasets.load("radon")
    assert radon.loc[0, "county"] == "AITKIN" and radon.loc[0, "county_number"] == 1
    # county number and name describe the same 85 counties, in the same order.
    pairs = radon[["county_number", "county"]].drop_duplicates()
    assert len(pairs) == 85
    codes = radon["county"].cat.codes.to_numpy()
    assert np.array_equal(codes + 1, radon["county_number"].to_numpy())
    assert radon.loc[radon["county"] == "LAKE", "county_number"].iloc[0] == 37
    # floor: 0 = basement, 1 = first floor (R's column basement); a sixth of the readings
    # come from a first floor, and they are lower (radon enters from the ground)
    assert set(radon["floor"]) == {0, 1}
    assert radon["floor"].mean() == pytest.approx(0.1665, abs=1e-3)
    by_floor = radon.groupby("floor")["log_radon"].mean()
    assert by_floor[1] < by_floor[0]


def test_glmer_data_values_survive_conversion():
    cbpp = datasets.load("cbpp")
    assert cbpp.loc[0, ["herd", "incidence", "size", "period"]].tolist() == ["1", 2, 14, "1"]
    assert (cbpp["incidence"] <= cbpp["size"]).all() and cbpp["incidence"].sum() == 99
    assert cbpp["herd"].value_counts().sort_index().tolist()[:3] == [4, 3, 4]
    verb = datasets.load("VerbAgg")
    # every respondent answers every item once: id and item are fully crossed
    assert verb.groupby(["id", "item"], observed=True).size().eq(1).all()
    assert len(verb) == 316 * 24
    # r2 is resp with perhaps and yes joined
    assert ((verb["r2"] == "Y") == verb["resp"].isin(["perhaps", "yes"])).all()
    assert verb.loc[2, ["Anger", "Gender", "resp", "r2"]].tolist() == [17, "F", "perhaps", "Y"]
    assert (verb.drop_duplicates("id")["Gender"] == "F").sum() == 243
    ticks = datasets.load("grouseticks")
    assert ticks["INDEX"].cat.codes.tolist() == list(range(403))
    assert ticks["cHEIGHT"].to_numpy() == pytest.approx(
        ticks["HEIGHT"] - ticks["HEIGHT"].mean(), abs=1e-6
    )
    # each brood lives at one location, in one year
    per_brood = ticks.groupby("BROOD", observed=True)[["LOCATION", "YEAR"]].nunique()
    assert per_brood.eq(1).all().all()
    contra = datasets.load("contraception")
    assert contra.loc[0, ["district", "use", "livch", "urban"]].tolist() == ["1", "N", "3+", "Y"]
    assert (contra["use"] == "Y").sum() == 759
    assert "54" not in contra["district"].cat.categories
    assert contra["district"].value_counts().agg(["min", "max"]).tolist() == [2, 118]
    epil = datasets.load("epil")
    assert pd.api.types.is_integer_dtype(epil["subject"]), "an integer in R's MASS::epil"
    assert epil["subject"].nunique() == 59 and epil["period"].value_counts().eq(59).all()
    assert np.allclose(epil["lbase"], np.log(epil["base"]) - np.log(epil["base"]).mean())
    assert (epil["V4"] == (epil["period"] == 4)).all()


def test_load_returns_independent_copies():
    first = datasets.load("dyestuff")
    first.loc[0, "Yield"] = -1
    first["Batch"] = first["Batch"].cat.rename_categories(list("UVWXYZ"))
    second = datasets.load("dyestuff")
    assert second.loc[0, "Yield"] == 1545
    assert second["Batch"].cat.categories.tolist() == list("ABCDEF")
    assert first is not second


def test_names_are_case_insensitive_and_r_names_work():
    pd.testing.assert_frame_equal(datasets.load("Hsb82"), datasets.load("hsb"))
    pd.testing.assert_frame_equal(datasets.load(" SleepStudy "), datasets.load("sleepstudy"))
    pd.testing.assert_frame_equal(datasets.load("InstEval"), datasets.load("insteval"))


def test_unknown_name_lists_names_and_suggests():
    with pytest.raises(ValueError, match="unknown data set 'sleepstudyy'") as info:
        datasets.load("sleepstudyy")
    message = str(info.value)
    assert "Did you mean 'sleepstudy'?" in message
    for name in NAMES:
        assert name in message
    with pytest.raises(ValueError, match="Did you mean 'hsb'"):
        datasets.load("hsb8")
    with pytest.raises(ValueError) as info:
        datasets.describe("zzz")
    assert "Did you mean" not in str(info.value) and "Valid names: sleepstudy" in str(info.value)
    with pytest.raises(TypeError):
        datasets.load(3)


@pytest.mark.parametrize("name", NAMES)
def test_describe(name):
    text = datasets.describe(name)
    row = datasets.list_datasets().set_index("name").loc[name]
    assert text.startswith(f"{name}: {row['description']}")
    assert f"R package {row['package']}, data set {row['r_name']}" in text
    assert "Citation" in text
    assert "(19" in text or "(20" in text, "a citation with its year"
    lines = text.splitlines()
    for col in COLUMNS[name]:
        assert any(line.strip().startswith(col + " ") for line in lines), col
    for col in datasets.FACTOR_LEVELS[name]:
        line = next(line for line in lines if line.strip().startswith(col + " "))
        assert "levels:" in line
    for col in datasets.R_ORDERED.get(name, ()):
        line = next(line for line in lines if line.strip().startswith(col + " "))
        assert "ordered factor in R" in line


def test_describe_mentions_units_and_renames():
    assert "milliseconds" in datasets.describe("sleepstudy")
    assert "millimetres" in datasets.describe("penicillin")
    assert "centimetres" in datasets.describe("oxboys")
    radon = datasets.describe("radon")
    assert "log.radon" in radon and "log_radon" in radon and "county.name" in radon
    assert "basement" in radon and "first floor" in radon and "county_number" in radon
    assert "pCi/L" in radon
    assert "15, 5, 10" in datasets.describe("insteval")


# --------------------------------------------------------------------- live R check

REPO = Path(__file__).resolve().parents[1]
R_DATASETS = REPO / "scripts" / "r_datasets.R"

# The data sets of the registry, as the R side (scripts/r_datasets.R) reads it.
R_SCRIPT = r"""
source(commandArgs(TRUE)[1])
for (name in names(r_datasets)) {
  s <- c(name, r_datasets[[name]])
  cat("REGISTRY", s, "\n", sep = "\t")
  if (!requireNamespace(s[2], quietly = TRUE)) { cat("MISSING", s[1], "\n", sep = "\t"); next }
  e <- new.env()
  utils::data(list = s[3], package = s[2], envir = e)
  d <- as.data.frame(e[[s[3]]])
  cat("SHAPE", s[1], nrow(d), paste(names(d), collapse = "|"), "\n", sep = "\t")
  for (col in names(d)) if (is.factor(d[[col]]))
    cat("LEVELS", s[1], col, as.integer(is.ordered(d[[col]])),
        paste(levels(d[[col]]), collapse = "|"), "\n", sep = "\t")
}
"""


def test_registry_is_the_listing_and_the_file():
    table = datasets.registry()
    assert table.columns.tolist() == ["name", "package", "r_name"]
    with datasets.registry_path().open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["name", "package", "r_name"]
    assert [tuple(r) for r in rows[1:]] == list(table.itertuples(index=False, name=None))
    listed = datasets.list_datasets()[["name", "package", "r_name"]]
    pd.testing.assert_frame_equal(listed, table)
    assert table["name"].tolist() == NAMES
    # every name and R name of the registry loads; R's Hsb82 is an alias of hsb
    for name, _, r_name in table.itertuples(index=False):
        assert datasets._resolve(r_name) == name


def test_registry_file_is_package_data():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '"data/*.csv"' in pyproject
    assert datasets.registry_path() == REPO / "mlmprimer" / "data" / "registry.csv"


@pytest.fixture(scope="module")
def live_r(tmp_path_factory):
    """What R says about the registry's data sets (skips without Rscript)."""
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed")
    script = tmp_path_factory.mktemp("r") / "levels.R"
    script.write_text(R_SCRIPT)
    run = subprocess.run(
        ["Rscript", "--vanilla", str(script), str(R_DATASETS)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [line.rstrip("\t").split("\t") for line in run.stdout.splitlines()]


@pytest.mark.lme4
def test_r_side_reads_the_same_registry(live_r):
    r_side = [tuple(fields) for kind, *fields in live_r if kind == "REGISTRY"]
    assert r_side == list(datasets.registry().itertuples(index=False, name=None))


@pytest.mark.lme4
def test_levels_agree_with_live_r(live_r):
    shapes, levels, ordered, missing = {}, {}, {}, set()
    for kind, *fields in live_r:
        if kind == "MISSING":
            missing.add(fields[0])
        elif kind == "SHAPE":
            shapes[fields[0]] = (int(fields[1]), fields[2].split("|"))
        elif kind == "LEVELS":
            name, col, is_ordered, joined = fields
            levels[(name, col)] = joined.split("|")
            ordered[(name, col)] = is_ordered == "1"
    checked = set(shapes)
    if not checked:
        pytest.skip(f"none of the R packages is installed ({sorted(missing)})")
    # R's column names that the course renames, per data set
    all_renames = {
        "radon": {
            "log.radon": "log_radon",
            "basement": "floor",
            "county": "county_number",
            "county.name": "county",
        }
    }
    for name in checked:
        renames = all_renames.get(name, {})
        df = datasets.load(name)
        n_rows, r_columns = shapes[name]
        assert df.shape == (n_rows, len(r_columns)), name
        assert df.columns.tolist() == [renames.get(c, c) for c in r_columns], name
        r_factors = {renames.get(c, c) for (n, c) in levels if n == name}
        ours = set(datasets.FACTOR_LEVELS[name])
        if name == "radon" and "county" not in r_factors:
            ours.discard("county")  # county.name may be text in HLMdiag; a factor here
        assert ours == r_factors, name
        for col in r_factors:
            r_col = next(c for c in r_columns if renames.get(c, c) == col)
            assert df[col].cat.categories.tolist() == levels[(name, r_col)], (name, col)
            assert ordered[(name, r_col)] == (col in datasets.R_ORDERED.get(name, ())), col
