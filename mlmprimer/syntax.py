"""lme4's formula language, construct by construct: what ``mlmprimer.lmer`` reads, and statsmodels.

One row per construct of an lme4 model call: the R spelling, what it means, whether
``mlmprimer.lmer`` reads it (``yes``; ``python`` for a Python spelling read by patsy; ``no`` with
the error a user gets), how ``statsmodels.formula.api.mixedlm`` writes the same model (or that it
cannot, and what to do instead), and an example on a course data set. ``tests/test_syntax.py``
fits every example: each supported one with ``lmer``, against lme4's stored numbers where a
fixture exists and against statsmodels where a spelling is given; each unsupported one must raise
an error that names the construct.

The random-effects terms follow lme4: ``(x || g)`` splits the intercept from the other columns
but, as in lme4, the columns of a factor inside it stay correlated; ``(1 | a/b)`` is
``(1 | a) + (1 | a:b)``. statsmodels has one grouping factor: nested and crossed factors go into
``vc_formula`` (crossed ones inside a single group that holds every row), and it has no offsets,
no prior weights and no correlated slopes on a second factor.

Examples
--------
>>> from mlmprimer.syntax import syntax_table
>>> table = syntax_table()
>>> list(table.columns)
['construct', 'meaning', 'lmer', 'statsmodels', 'example', 'data']
>>> table.set_index("construct").loc["(x || g)", "lmer"]
'yes'
>>> sorted(set(table["lmer"]))
['no', 'python', 'yes']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["SyntaxRow", "ROWS", "syntax_table", "statsmodels_call"]


@dataclass(frozen=True)
class SyntaxRow:
    """One construct of lme4's formula language.

    Parameters
    ----------
    construct : str
        The R (lme4) spelling.
    meaning : str
        What it means in R and lme4.
    lmer : str
        ``"yes"`` (read as lme4 reads it), ``"python"`` (a Python spelling patsy reads) or
        ``"no"`` (an error).
    example : str
        A formula using the construct.
    data : str
        The course data set of the example (a name for ``mlmprimer.datasets.load``).
    REML : bool
        Whether the example is fitted by REML.
    rename : Mapping[str, str]
        Columns renamed before the fit (for the rows on names).
    fixture : str or None
        The lme4 fixture fitted with the same formula (``lme4/NAME`` or ``lme4_formula/NAME``).
    update : str or None
        An ``update()`` formula applied to the fit of `example`.
    sm : Mapping[str, object] or None
        The arguments of ``smf.mixedlm`` for the same model: ``formula``, ``groups`` (a column,
        or None for one group of all rows), ``re_formula``, ``vc_formula``.
    sm_agree : str
        What statsmodels reproduces: ``"fixef"`` (coefficients and the log-likelihood) or
        ``"fitted"`` (the fitted values: another coding of the fixed effects, whose REML
        likelihood differs by a constant).
    workaround : str
        What to write instead, where lmer or statsmodels cannot express the model.
    error : str
        For ``lmer == "no"``: the words of the error message that name the construct.
    kwargs : Mapping[str, object]
        Further arguments of the ``lmer`` call (``family`` for the ``glmer`` row).
    """

    construct: str
    meaning: str
    lmer: str
    example: str
    data: str = "sleepstudy"
    REML: bool = True
    rename: Mapping[str, str] = field(default_factory=dict)
    fixture: str | None = None
    update: str | None = None
    sm: Mapping[str, object] | None = None
    sm_agree: str = "fixef"
    workaround: str = ""
    error: str = ""
    kwargs: Mapping[str, object] = field(default_factory=dict)


def _sm(formula: str, groups: str | None = "Subject", re_formula=None, vc_formula=None) -> dict:
    return {
        "formula": formula,
        "groups": groups,
        "re_formula": re_formula,
        "vc_formula": vc_formula,
    }


#: The table, in the order of the course: random-effects terms, fitting, the fixed part, errors.
ROWS: tuple[SyntaxRow, ...] = (
    SyntaxRow(
        "(1 | g)",
        "a random intercept for each level of g",
        "yes",
        "Reaction ~ 1 + (1 | Subject)",
        fixture="lme4/sleepstudy_null",
        sm=_sm("Reaction ~ 1"),
    ),
    SyntaxRow(
        "(x | g)",
        "intercept and slope of x per level of g, correlated",
        "yes",
        "Reaction ~ Days + (Days | Subject)",
        fixture="lme4/sleepstudy_slopes",
        sm=_sm("Reaction ~ Days", re_formula="~Days"),
    ),
    SyntaxRow(
        "(x || g)",
        "intercept and slope per level of g, uncorrelated",
        "yes",
        "Reaction ~ Days + (Days || Subject)",
        fixture="lme4/sleepstudy_uncorrelated",
        sm=_sm("Reaction ~ Days", re_formula="1", vc_formula={"Days": "0 + Days"}),
    ),
    SyntaxRow(
        "(1 | g) + (0 + x | g)",
        "the same uncorrelated model, written as two terms",
        "yes",
        "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
        fixture="lme4/sleepstudy_uncorrelated",
        sm=_sm("Reaction ~ Days", re_formula="1", vc_formula={"Days": "0 + Days"}),
    ),
    SyntaxRow(
        "(f || g), f a factor",
        "as in lme4, || does not split a factor: its columns stay correlated; "
        "(1 | g) + (1 | g:f) gives independent effects",
        "yes",
        "Reaction ~ Days + (factor(Days > 4) || Subject)",
    ),
    SyntaxRow(
        "(1 | a) + (1 | b)",
        "crossed grouping factors",
        "yes",
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
        data="penicillin",
        fixture="lme4/penicillin",
        sm=_sm(
            "diameter ~ 1",
            groups=None,
            vc_formula={"plate": "0 + C(plate)", "sample": "0 + C(sample)"},
        ),
    ),
    SyntaxRow(
        "(1 | a/b)",
        "b nested in a: (1 | a) + (1 | a:b)",
        "yes",
        "strength ~ 1 + (1 | batch/cask)",
        data="pastes",
        fixture="lme4/pastes",
        sm=_sm("strength ~ 1", groups="batch", re_formula="1", vc_formula={"cask": "0 + C(cask)"}),
    ),
    SyntaxRow(
        "(1 | a:b)",
        "one effect per observed combination of a and b",
        "yes",
        "strength ~ 1 + (1 | batch) + (1 | batch:cask)",
        data="pastes",
        fixture="lme4/pastes",
        sm=_sm("strength ~ 1", groups="batch", re_formula="1", vc_formula={"cask": "0 + C(cask)"}),
    ),
    SyntaxRow(
        "REML = FALSE",
        "maximum likelihood instead of REML",
        "yes",
        "Reaction ~ Days + (Days | Subject)",
        REML=False,
        fixture="lme4/sleepstudy_slopes_ml",
        sm=_sm("Reaction ~ Days", re_formula="~Days"),
    ),
    SyntaxRow(
        "a * b, a:b",
        "main effects and interaction; a:b alone is the interaction",
        "yes",
        "mAch ~ ses * sector + (1 | school)",
        data="hsb",
        sm=_sm("mAch ~ ses * sector", groups="school"),
    ),
    SyntaxRow(
        "(a + b + c)^2",
        "crossing: main effects and all two-way interactions",
        "yes",
        "mAch ~ (ses + sector + minrty)^2 + (1 | school)",
        data="hsb",
        sm=_sm("mAch ~ (ses + sector + minrty)**2", groups="school"),
    ),
    SyntaxRow(
        "I(x^2)",
        "inside I(), ^ is a power",
        "yes",
        "Reaction ~ Days + I(Days^2) + (Days | Subject)",
        fixture="lme4_formula/sleep_days_squared",
        sm=_sm("Reaction ~ Days + I(Days**2)", re_formula="~Days"),
    ),
    SyntaxRow(
        "I(x**2)",
        "Python's power, read by patsy (coefficient named I(Days ** 2))",
        "python",
        "Reaction ~ Days + I(Days**2) + (Days | Subject)",
        fixture="lme4_formula/sleep_days_squared",
        sm=_sm("Reaction ~ Days + I(Days**2)", re_formula="~Days"),
    ),
    SyntaxRow(
        "poly(x, 2)",
        "R's orthogonal polynomials of the fit data",
        "yes",
        "Reaction ~ poly(Days, 2) + (Days | Subject)",
        fixture="lme4_formula/sleep_poly2",
        sm=_sm("Reaction ~ Days + I(Days**2)", re_formula="~Days"),
        sm_agree="fitted",
        workaround="statsmodels: raw powers give the same fitted values with other coefficients",
    ),
    SyntaxRow(
        "poly(x, 3, raw = TRUE)",
        "raw powers x, x^2, x^3",
        "yes",
        "Reaction ~ poly(Days, 3, raw = TRUE) + (1 | Subject)",
        REML=False,
        fixture="lme4_formula/sleep_poly3_raw_ml",
        sm=_sm("Reaction ~ Days + I(Days**2) + I(Days**3)"),
    ),
    SyntaxRow(
        "log(y) ~ scale(x)",
        "R's log; scale() centres and divides by the SD (n - 1)",
        "yes",
        "log(Reaction) ~ scale(Days) + (1 | Subject)",
        fixture="lme4_formula/sleep_log_scale",
        sm=_sm("np.log(Reaction) ~ standardize(Days, ddof=1)"),
        workaround="statsmodels: patsy's standardize() divides by the n SD unless ddof=1",
    ),
    SyntaxRow(
        "sqrt(), log10(), exp()",
        "R's functions of a column",
        "yes",
        "sqrt(Reaction) ~ log10(Days + 1) + exp(Days/10) + (1 | Subject)",
        REML=False,
        fixture="lme4_formula/sleep_sqrt_log10_exp",
        sm=_sm("np.sqrt(Reaction) ~ np.log10(Days + 1) + np.exp(Days/10)"),
    ),
    SyntaxRow(
        "np.log(x)",
        "numpy's functions, read by patsy (coefficient named np.log(...))",
        "python",
        "np.sqrt(Reaction) ~ np.log10(Days + 1) + np.exp(Days/10) + (1 | Subject)",
        REML=False,
        fixture="lme4_formula/sleep_sqrt_log10_exp",
        sm=_sm("np.sqrt(Reaction) ~ np.log10(Days + 1) + np.exp(Days/10)"),
    ),
    SyntaxRow(
        "offset(z)",
        "a term with coefficient fixed at 1",
        "yes",
        "Reaction ~ Days + offset(10 * Days) + (Days | Subject)",
        fixture="lme4_formula/sleep_offset_formula",
        sm=_sm("I(Reaction - 10 * Days) ~ Days", re_formula="~Days"),
        workaround="statsmodels has no offset: subtract it from the response",
    ),
    SyntaxRow(
        "factor(x), relevel(f, ref = )",
        "a factor; a factor with another reference level",
        "yes",
        'Reaction ~ relevel(factor(Days > 4), ref = "TRUE") + factor(Days %% 3) + (1 | Subject)',
        fixture="lme4_formula/sleep_factor_relevel",
        sm=_sm("Reaction ~ C(Days > 4, Treatment(True)) + C(Days % 3)"),
    ),
    SyntaxRow(
        "`study day`",
        "a column name with a space, in backticks",
        "yes",
        "Reaction ~ `study day` + (`study day` | Subject)",
        rename={"Days": "study day"},
        sm=_sm('Reaction ~ Q("study day")', re_formula='~Q("study day")'),
    ),
    SyntaxRow(
        "study.day",
        "a column name with a dot",
        "yes",
        "Reaction ~ study.day + (study.day | Subject)",
        rename={"Days": "study.day"},
        sm=_sm('Reaction ~ Q("study.day")', re_formula='~Q("study.day")'),
    ),
    SyntaxRow(
        "update(m, . ~ . + x)",
        "the model refitted with a changed formula",
        "yes",
        "Reaction ~ Days + (Days | Subject)",
        update=". ~ . + I(Days^2)",
        fixture="lme4_formula/sleep_update_add",
        sm=_sm("Reaction ~ Days + I(Days**2)", re_formula="~Days"),
    ),
    SyntaxRow(
        "bs(x, 3)",
        "patsy's B-spline basis, named 0, 1, 2 (R's splines::bs names 1, 2, 3)",
        "python",
        "Reaction ~ bs(Days, 3) + (1 | Subject)",
        sm=_sm("Reaction ~ bs(Days, 3)"),
    ),
    SyntaxRow(
        "x^2 outside I()",
        "R reads it as x (crossing a single term)",
        "no",
        "Reaction ~ Days^2 + (1 | Subject)",
        workaround="write I(Days^2) or poly(Days, 2)",
        error="Days^2",
    ),
    SyntaxRow(
        "y ~ .",
        "all other columns",
        "no",
        "Reaction ~ . + (1 | Subject)",
        workaround="name the columns (update() reads '.' as the old formula)",
        error="'.'",
    ),
    SyntaxRow(
        "ns(x, 3)",
        "a natural spline (package splines)",
        "no",
        "Reaction ~ ns(Days, 3) + (1 | Subject)",
        workaround="compute the basis columns first, or use patsy's cr(x, df=3)",
        error="ns()",
    ),
    SyntaxRow(
        "dummy(f, lvl)",
        "lme4's indicator of one level, for a random slope",
        "no",
        'mAch ~ ses + (0 + dummy(sector, "Catholic") | school)',
        data="hsb",
        workaround="compute the indicator column first",
        error="dummy()",
    ),
    SyntaxRow(
        "poly(x, z, degree = 2)",
        "a polynomial in several variables",
        "no",
        "Reaction ~ poly(Days, Days, degree = 2) + (1 | Subject)",
        workaround="write one poly() per variable and their products",
        error="poly()",
    ),
    SyntaxRow(
        "d$x",
        "a column of another data frame",
        "no",
        "Reaction ~ sleep$Days + (1 | Subject)",
        workaround="put the column in the data",
        error="'$'",
    ),
    SyntaxRow(
        "glmer(..., family = )",
        "a generalised linear mixed model (binary or count outcome)",
        "no",
        "Reaction ~ Days + (1 | Subject)",
        workaround="mlmprimer.glmer(f, d, family=...) as lme4's glmer; statsmodels has only the "
        "Bayesian BinomialBayesMixedGLM / PoissonBayesMixedGLM",
        error="mlmprimer.glmer",
        kwargs={"family": "poisson"},
    ),
)


def _quoted(text: str) -> str:
    return f"'{text}'" if '"' in text else f'"{text}"'


def statsmodels_call(row: SyntaxRow) -> str:
    """The statsmodels call of a row, as text (``"not expressible"`` when it has none).

    Parameters
    ----------
    row : SyntaxRow
        A row of `ROWS`.

    Returns
    -------
    str
        ``smf.mixedlm(...)`` with the arguments the model needs.

    Examples
    --------
    >>> from mlmprimer.syntax import ROWS, statsmodels_call
    >>> statsmodels_call(ROWS[1])
    'smf.mixedlm("Reaction ~ Days", d, groups="Subject", re_formula="~Days")'
    """
    if row.sm is None:
        return "not expressible" + (f" ({row.workaround})" if row.workaround else "")
    sm = row.sm
    groups = '"' + str(sm["groups"]) + '"' if sm["groups"] is not None else "np.ones(len(d))"
    parts = [_quoted(str(sm["formula"])), "d", f"groups={groups}"]
    if sm["re_formula"] is not None:
        parts.append(f"re_formula={_quoted(str(sm['re_formula']))}")
    if sm["vc_formula"] is not None:
        vc = ", ".join(f'"{k}": "{v}"' for k, v in dict(sm["vc_formula"]).items())
        parts.append("vc_formula={" + vc + "}")
    call = "smf.mixedlm(" + ", ".join(parts) + ")"
    return call if row.REML else call + ".fit(reml=False)"


def syntax_table() -> pd.DataFrame:
    """The supported-syntax table, one row per construct.

    Returns
    -------
    pandas.DataFrame
        Columns ``construct``, ``meaning``, ``lmer`` (``yes``, ``python`` or ``no``),
        ``statsmodels`` (the call, or "not expressible" with the workaround), ``example`` (the
        formula, with the error's words for the unsupported rows) and ``data``.

    Examples
    --------
    >>> from mlmprimer.syntax import syntax_table
    >>> t = syntax_table()
    >>> t.loc[t.construct == "offset(z)", "statsmodels"].item()
    'smf.mixedlm("I(Reaction - 10 * Days) ~ Days", d, groups="Subject", re_formula="~Days")'
    >>> t.loc[t.construct == "ns(x, 3)", "lmer"].item()
    'no'
    """
    rows = []
    for row in ROWS:
        example = row.example if row.update is None else f"{row.example}, then {row.update}"
        if row.lmer == "no":
            smtext = row.workaround
        else:
            smtext = statsmodels_call(row)
        rows.append(
            {
                "construct": row.construct,
                "meaning": row.meaning,
                "lmer": row.lmer,
                "statsmodels": smtext,
                "example": example,
                "data": row.data,
            }
        )
    return pd.DataFrame(rows)
