"""Tidy tables of a fit with broom.mixed's names: ``tidy``, ``glance``, ``augment``.

Examples
--------
>>> from mlmprimer.broom import glance
>>> from mlmprimer.datasets import load
>>> from mlmprimer.model import lmer
>>> glance(lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff")))["nobs"].tolist()
[30]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .model import LmerModel
from .profile import METHODS, confint

__all__ = ["augment", "glance", "tidy", "tidy_glmer"]


def tidy(
    model: LmerModel,
    effects: str | Sequence[str] = ("fixed", "ran_pars"),
    conf_int: bool = False,
    conf_level: float = 0.95,
    conf_method: str = "Wald",
    nsim: int = 500,
    seed: int | np.random.Generator | None = None,
    progress: bool = False,
    ddf: str | None = None,
) -> pd.DataFrame:
    """A tidy table of estimates with broom.mixed's column names.

    Parameters
    ----------
    effects : str or sequence of {"fixed", "ran_pars", "ran_vals"}
    conf_int : bool, default False
        Add the interval columns ``conf.low``, ``conf.high``.
    conf_level : float, default 0.95
        Confidence level, strictly between 0 and 1.
    conf_method : {"Wald", "profile", "boot"}, default "Wald"
        ``"Wald"``: estimate +- z * std.error, for the fixed effects only (NaN for the
        random-effect parameters, as broom.mixed); ``"profile"``: likelihood-profile
        intervals for every parameter; ``"boot"``: parametric bootstrap percentile
        intervals. See :func:`mlmprimer.profile.confint`. ``effects="ran_vals"`` takes only
        ``"Wald"`` (estimate +- z * conditional SD).
    nsim : int, default 500
        Bootstrap samples (``conf_method="boot"``).
    seed : int, numpy.random.Generator or None
        Seed of the bootstrap; the same seed gives the same intervals.
    progress : bool, default False
        Show a progress bar while profiling or bootstrapping.
    ddf : {None, "Satterthwaite", "Kenward-Roger"}, default None
        Degrees of freedom for the fixed effects' t tests, as lmerTest (Satterthwaite) and
        pbkrtest (Kenward-Roger) give them (:mod:`mlmprimer.ddf`): adds the columns ``df`` and
        ``p.value`` (missing for the random-effect parameters); Kenward-Roger also replaces
        ``std.error`` and ``statistic`` by those of its adjusted covariance. Wald intervals then
        use the t distribution with these df, so that an interval and its test agree.

    Returns
    -------
    pandas.DataFrame
        With ``conf_method="boot"``, ``attrs`` holds ``nsim`` and ``n_failed``.

    Raises
    ------
    ValueError
        Unknown effects, interval or df method, a level outside (0, 1), ``nsim < 1``, ``ddf``
        with ``effects="ran_vals"``.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.broom import augment, glance, tidy
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    >>> tidy(m)["term"].tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['(Intercept)', 'Days', 'sd__(Intercept)', 'cor__(Intercept).Days', 'sd__Days',
     'sd__Observation']
    >>> d = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
    >>> ci = tidy(d, conf_int=True, conf_method="profile")
    >>> ci[["term", "estimate", "conf.low", "conf.high"]].round(1)
                  term  estimate  conf.low  conf.high
    0      (Intercept)    1527.5    1486.5     1568.5
    1  sd__(Intercept)      42.0      12.2       84.1
    2  sd__Observation      49.5      38.2       67.7
    >>> tidy(m, effects="fixed", ddf="Satterthwaite")[["term", "df"]].round(1)
              term    df
    0  (Intercept)  17.0
    1         Days  17.0
    """

    if conf_method not in METHODS:
        raise ValueError(f"unknown conf_method {conf_method!r}: use one of {', '.join(METHODS)}")
    effects, z = _checked_effects(effects, conf_level)
    if "ran_vals" in effects:
        if ddf is not None:
            raise ValueError("ddf applies to the fixed effects, not to effects='ran_vals'")
        if conf_int and conf_method != "Wald":
            raise ValueError(
                "intervals for effects='ran_vals' use the conditional SDs: "
                f"conf_method must be 'Wald', not {conf_method!r}"
            )
        return _ran_vals(model, conf_int, z)
    rows = []
    keys = []  # each row's parameter name in confint (.sig01, ..., .sigma, fixed effects)
    if "fixed" in effects:
        ct = model.coef_table()
        for nm, r in ct.iterrows():
            rows.append(("fixed", None, nm, r["Estimate"], r["Std. Error"], r["t value"]))
            keys.append(nm)
    if "ran_pars" in effects:
        for tv in model.varcomp:
            for j in range(tv.p):
                sd_name = f"sd__{tv.terms[j]}"
                rows.append(("ran_pars", tv.name, sd_name, tv.sd[j], np.nan, np.nan))
                for i in range(j + 1, tv.p):
                    term = f"cor__{tv.terms[j]}.{tv.terms[i]}"
                    rows.append(("ran_pars", tv.name, term, tv.corr[i, j], np.nan, np.nan))
        rows.append(("ran_pars", "Residual", "sd__Observation", model.sigma, np.nan, np.nan))
        keys += [f".sig{k + 1:02d}" for k in range(model.theta.size)] + [".sigma"]
    out = pd.DataFrame(
        rows, columns=["effect", "group", "term", "estimate", "std.error", "statistic"]
    )
    half_width = z * out["std.error"]
    if ddf is not None:
        out = _with_ddf(model, out, ddf)
        half_width = stats.t.ppf(0.5 + conf_level / 2, out["df"]) * out["std.error"]
    if conf_int and conf_method == "Wald":
        out["conf.low"] = out["estimate"] - half_width
        out["conf.high"] = out["estimate"] + half_width
    elif conf_int:
        parm = [p for e, p in (("fixed", "beta_"), ("ran_pars", "theta_")) if e in effects]
        ci = confint(
            model,
            conf_method,
            float(conf_level),
            parm=parm,
            nsim=nsim,
            seed=seed,
            progress=progress,
        )
        out["conf.low"] = ci.iloc[:, 0].reindex(keys).to_numpy()
        out["conf.high"] = ci.iloc[:, 1].reindex(keys).to_numpy()
        out.attrs.update(ci.attrs)
    return out


def _checked_effects(
    effects: str | Sequence[str], conf_level: float
) -> tuple[tuple[str, ...], float]:
    """``effects`` as a tuple and the normal quantile of ``conf_level``, both checked."""
    if isinstance(effects, str):
        effects = (effects,)
    effects = tuple(effects)
    bad = [e for e in effects if e not in ("fixed", "ran_pars", "ran_vals")]
    if bad:
        raise ValueError(f"unknown effects {bad}: use 'fixed', 'ran_pars' or 'ran_vals'")
    if "ran_vals" in effects and len(effects) > 1:
        raise ValueError("effects='ran_vals' cannot be combined with other effects")
    if isinstance(conf_level, bool) or not (
        isinstance(conf_level, (int, float, np.floating)) and 0 < conf_level < 1
    ):
        raise ValueError(f"conf_level must be strictly between 0 and 1, got {conf_level!r}")
    return effects, float(stats.norm.ppf(0.5 + conf_level / 2))


def _ran_vals(model: Any, conf_int: bool, z: float) -> pd.DataFrame:
    """The conditional modes with their conditional SDs (and Wald intervals), broom.mixed's
    ``effects = "ran_vals"``."""
    rows = []
    for g, modes in model.ranef.items():
        sd = model.ranef_condsd[g]
        for term in modes.columns:
            for lev in modes.index:
                rows.append(("ran_vals", g, lev, term, modes.loc[lev, term], sd.loc[lev, term]))
    out = pd.DataFrame(rows, columns=["effect", "group", "level", "term", "estimate", "std.error"])
    if conf_int:
        out["conf.low"] = out["estimate"] - z * out["std.error"]
        out["conf.high"] = out["estimate"] + z * out["std.error"]
    return out


def _with_ddf(model: LmerModel, out: pd.DataFrame, method: str) -> pd.DataFrame:
    """``out`` with the df and p-values of the fixed effects (:func:`mlmprimer.ddf.ddf_table`)."""
    from .ddf import ddf_table

    table = ddf_table(model, method)
    fixed = (out["effect"] == "fixed").to_numpy()
    out = out.copy()
    out["df"] = np.nan
    out["p.value"] = np.nan
    for col in ("std.error", "statistic", "df", "p.value"):
        out.loc[fixed, col] = table[col].reindex(out.loc[fixed, "term"]).to_numpy()
    return out


def glance(model: LmerModel) -> pd.DataFrame:
    """One-row summary of the fit (broom.mixed's ``glance``).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.broom import augment, glance, tidy
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
    >>> list(glance(m).columns)
    ['nobs', 'sigma', 'logLik', 'AIC', 'BIC', 'REMLcrit', 'df.residual']
    """
    last = "REMLcrit" if model.REML else "deviance"
    return pd.DataFrame(
        [
            {
                "nobs": model.nobs,
                "sigma": model.sigma,
                "logLik": model.loglik,
                "AIC": model.aic,
                "BIC": model.bic,
                last: model.deviance,
                "df.residual": model.nobs - model.npar,
            }
        ]
    )


def augment(model: LmerModel) -> pd.DataFrame:
    """The data used, with ``.fitted``, ``.resid`` and ``.fixed`` columns.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.broom import augment, glance, tidy
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Yield ~ 1 + (1 | Batch)", load("dyestuff"))
    >>> list(augment(m).columns)[-3:]
    ['.fitted', '.resid', '.fixed']
    """
    out = model.data.copy()
    out[".fitted"] = model.fitted().to_numpy()
    out[".resid"] = model.residuals().to_numpy()
    out[".fixed"] = model.predict(re=False).to_numpy()
    return out


def tidy_glmer(
    model: Any,
    effects: str | Sequence[str] = ("fixed", "ran_pars"),
    conf_int: bool = False,
    conf_level: float = 0.95,
    exponentiate: bool = False,
) -> pd.DataFrame:
    """broom.mixed's ``tidy`` of a ``glmer`` fit (:meth:`mlmprimer.glmermodel.GlmerModel.tidy`).

    Fixed effects with their Wald z tests (``statistic``, ``p.value``) and, with ``conf_int``,
    Wald intervals ``estimate +- z std.error``; random-effect SDs and correlations
    (``sd__(Intercept)``, ``cor__(Intercept).x``; no residual row). ``exponentiate`` gives
    odds or rate ratios: ``exp(estimate)``, its intervals, and ``exp(estimate) std.error``
    (broom.mixed's delta-method SE). ``effects="ran_vals"``: the conditional modes with their
    conditional SDs.

    Examples
    --------
    >>> from mlmprimer.broom import tidy_glmer
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.glmer import glmer
    >>> m = glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"))
    >>> list(tidy_glmer(m, effects="fixed", conf_int=True).columns)
    ['effect', 'group', 'term', 'estimate', 'std.error', 'statistic', 'p.value', 'conf.low',
     'conf.high']
    """
    effects, z = _checked_effects(effects, conf_level)
    if "ran_vals" in effects:
        return _ran_vals(model, conf_int, z)
    rows = []
    if "fixed" in effects:
        ct = model.coef_table()
        for nm, r in ct.iterrows():
            rows.append(
                ("fixed", None, nm, r["Estimate"], r["Std. Error"], r["z value"], r["Pr(>|z|)"])
            )
    if "ran_pars" in effects:
        for tv in model.varcomp:
            for j in range(tv.p):
                rows.append(("ran_pars", tv.name, f"sd__{tv.terms[j]}", tv.sd[j]) + (np.nan,) * 3)
                for i in range(j + 1, tv.p):
                    term = f"cor__{tv.terms[j]}.{tv.terms[i]}"
                    rows.append(("ran_pars", tv.name, term, tv.corr[i, j]) + (np.nan,) * 3)
    out = pd.DataFrame(
        rows,
        columns=["effect", "group", "term", "estimate", "std.error", "statistic", "p.value"],
    )
    if conf_int:
        out["conf.low"] = out["estimate"] - z * out["std.error"]
        out["conf.high"] = out["estimate"] + z * out["std.error"]
    if exponentiate:
        fixed = out["effect"] == "fixed"
        est = np.exp(out.loc[fixed, "estimate"])
        out.loc[fixed, "std.error"] = est * out.loc[fixed, "std.error"]
        out.loc[fixed, "estimate"] = est
        if conf_int:
            for c in ("conf.low", "conf.high"):
                out.loc[fixed, c] = np.exp(out.loc[fixed, c])
    return out
