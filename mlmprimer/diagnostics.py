"""Checking a fitted model: diagnostics per group, and the influence of each group.

* :func:`augment_groups`: one row per level of a grouping factor and random-effect term, with
  the conditional mode, its conditional SD, the number of rows of the level and the mean and SD
  of the level's residuals (the per-group counterpart of ``m.augment()``);
* :func:`influence_groups`: the model refitted without each level of a grouping factor in turn,
  as lme4's ``influence(m, groups = "g")``, with the change in the fixed effects (``dfbeta``),
  Cook's distance per group (lme4's ``cooks.distance()`` of that object) and the change in the
  variance components.

The figures drawn from these tables are in :mod:`mlmprimer.plots` (``influence_plot``,
``residuals_by_group``).

Examples
--------
>>> from mlmprimer.datasets import load
>>> from mlmprimer.model import lmer
>>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
>>> aug = augment_groups(m)
>>> aug.shape
(36, 9)
>>> inf = influence_groups(m, "Subject")
>>> inf.cooks_distance.idxmax()
'309'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .model import LmerModel

__all__ = ["GroupInfluence", "augment_groups", "influence_groups", "var_cov_components"]


def _check_model(model: object) -> LmerModel:
    if not isinstance(model, LmerModel):
        raise ValueError(f"model must be a fit from mlmprimer.lmer, got {type(model).__name__}")
    return model


def _groups(model: LmerModel, group: str | None) -> list[str]:
    available = list(model.ranef)
    if group is None:
        return available
    if group not in available:
        raise ValueError(
            f"group={group!r} is not a grouping factor of the model; it has: "
            + ", ".join(available)
        )
    return [group]


def augment_groups(model: LmerModel, group: str | None = None) -> pd.DataFrame:
    """Per-group diagnostics: one row per level of a grouping factor and random-effect term.

    Parameters
    ----------
    model : LmerModel
        A fit from :func:`mlmprimer.lmer`.
    group : str, optional
        One grouping factor; default every grouping factor of the model.

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``level``, ``term``; ``.mode`` (the conditional mode, lme4's
        ``ranef(m)``), ``.condsd`` (its conditional SD, lme4's ``condVar``), ``.z`` (mode divided
        by its SD over the levels, for a QQ plot), ``.n`` (rows of the level), ``.resid_mean``
        and ``.resid_sd`` (mean and SD of the level's residuals ``y - fitted``; the SD is NaN
        for a level with one row). Rows in the order of ``model.ranef``, level within term.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    >>> a = augment_groups(m)
    >>> a[["group", "level", "term", ".n"]].head(2)
      group level         term  .n
    0  Subject   308  (Intercept)  10
    1  Subject   309  (Intercept)  10
    """
    model = _check_model(model)
    flist = model.getME("flist")
    resid = model.residuals()
    frames = []
    for g in _groups(model, group):
        modes = model.ranef[g]
        sds = model.ranef_condsd[g].reindex(modes.index)
        by = resid.groupby(np.asarray(flist[g].astype(object)), sort=False)
        n = by.size()
        mean = by.mean()
        spread = by.std(ddof=1)
        levels = modes.index.astype(object)
        for term in modes.columns:
            mode = modes[term].to_numpy(dtype=float)
            scale = float(np.std(mode, ddof=1)) if len(mode) > 1 else 0.0
            frames.append(
                pd.DataFrame(
                    {
                        "group": g,
                        "level": np.asarray(levels, dtype=object),
                        "term": term,
                        ".mode": mode,
                        ".condsd": sds[term].to_numpy(dtype=float),
                        ".z": mode / scale if scale > 0 else np.full(len(mode), np.nan),
                        ".n": n.reindex(levels).fillna(0).to_numpy(dtype=int),
                        ".resid_mean": mean.reindex(levels).to_numpy(dtype=float),
                        ".resid_sd": spread.reindex(levels).to_numpy(dtype=float),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def var_cov_components(model: LmerModel) -> pd.Series:
    """The variance components as lme4's ``influence()`` names them.

    ``sigma^2`` first, then per term the lower triangle of its covariance matrix, column by
    column: ``v[a]`` a variance, ``C[b,a]`` a covariance; with several terms each name is
    prefixed by the term's label and a colon (``Subject:v[(Intercept)]``).

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    >>> list(var_cov_components(m).index)
    ['sigma^2', 'v[(Intercept)]', 'C[Days,(Intercept)]', 'v[Days]']
    """
    model = _check_model(model)
    terms = list(model.varcomp)
    names = ["sigma^2"]
    values = [float(model.sigma) ** 2]
    for tv in terms:
        prefix = f"{tv.name}:" if len(terms) > 1 else ""
        for j in range(tv.p):
            for i in range(j, tv.p):
                a, b = tv.terms[i], tv.terms[j]
                names.append(prefix + (f"v[{a}]" if i == j else f"C[{a},{b}]"))
                values.append(float(tv.cov[i, j]))
    return pd.Series(values, index=names, name="var.cov")


@dataclass(frozen=True)
class GroupInfluence:
    """The fits without each level of a grouping factor (see :func:`influence_groups`).

    Attributes
    ----------
    group : str
        The grouping factor whose levels were deleted one at a time.
    fixef : pandas.Series
        The full fit's fixed effects.
    fixef_deleted : pandas.DataFrame
        One row per deleted level: the fixed effects without it (lme4's
        ``fixed.effects[-group]``).
    var_cov : pandas.Series
        The full fit's variance components (:func:`var_cov_components`).
    var_cov_deleted : pandas.DataFrame
        One row per deleted level: the variance components without it.
    vcov : pandas.DataFrame
        The full fit's covariance of the fixed effects.
    """

    group: str
    fixef: pd.Series
    fixef_deleted: pd.DataFrame
    var_cov: pd.Series
    var_cov_deleted: pd.DataFrame
    vcov: pd.DataFrame

    @property
    def dfbeta(self) -> pd.DataFrame:
        """Fixed effects without the level minus those of the full fit (lme4's ``dfbeta``)."""
        return self.fixef_deleted - self.fixef

    @property
    def dvar_cov(self) -> pd.DataFrame:
        """Variance components without the level minus those of the full fit."""
        return self.var_cov_deleted - self.var_cov

    @property
    def cooks_distance(self) -> pd.Series:
        """Cook's distance of each level, as lme4's ``cooks.distance(influence(m, groups=))``.

        ``D_j = (m - p) / (m p) * d_j' V^{-1} d_j``, with ``d_j`` the level's ``dfbeta``, ``V``
        the full fit's ``vcov``, ``m`` the number of levels and ``p`` the number of fixed
        effects.
        """
        d = self.dfbeta.to_numpy(dtype=float)
        m, p = d.shape
        vinv = np.linalg.inv(self.vcov.to_numpy(dtype=float))
        scale = (m - p) / (m * p)
        dist = scale * np.einsum("ij,jk,ik->i", d, vinv, d)
        return pd.Series(dist, index=self.dfbeta.index, name="cooks_distance")

    def frame(self) -> pd.DataFrame:
        """One row per deleted level: Cook's distance, then the dfbeta and dvar_cov columns.

        Columns are ``cooks_distance``, ``dfbeta_<term>`` and ``dvc_<component>``, sorted by
        decreasing Cook's distance.
        """
        out = pd.concat(
            [
                self.cooks_distance,
                self.dfbeta.add_prefix("dfbeta_"),
                self.dvar_cov.add_prefix("dvc_"),
            ],
            axis=1,
        )
        out.index.name = self.group
        return out.sort_values("cooks_distance", ascending=False, kind="stable")


def influence_groups(model: LmerModel, group: str) -> GroupInfluence:
    """Refit the model without each level of ``group`` in turn (lme4's ``influence()``).

    Each refit keeps the formula, the criterion (REML or ML) and the prior weights, on the rows
    of the other levels. With ``m`` levels this is ``m`` fits: keep it to data sets of modest
    size.

    Parameters
    ----------
    model : LmerModel
        A fit from :func:`mlmprimer.lmer`.
    group : str
        A grouping factor of the model (``"Subject"``, ``"county"``).

    Returns
    -------
    GroupInfluence
        With ``dfbeta``, ``cooks_distance``, ``dvar_cov`` and ``frame()``.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    >>> inf = influence_groups(m, "Subject")
    >>> inf.dfbeta.shape
    (18, 2)
    """
    model = _check_model(model)
    if not isinstance(group, str):
        raise ValueError(f"group must be the name of a grouping factor, got {group!r}")
    (group,) = _groups(model, group)
    if model.offset_arg is not None:
        raise ValueError(
            "influence_groups does not refit models with offset=; write the offset in the "
            "formula as offset(column)"
        )
    codes = model.getME("flist")[group]
    data = model.data
    weighted = model.design.weights is not None
    levels = [lev for lev in codes.cat.categories if (codes == lev).any()]
    if len(levels) < 3:
        raise ValueError(f"group {group!r} has {len(levels)} levels; at least 3 are needed")
    fixed_rows, vc_rows = [], []
    for lev in levels:
        keep = np.asarray(codes != lev)
        sub = data.loc[keep]
        if weighted:
            fit = model.update(data=sub, weights=model.weights.loc[keep].to_numpy())
        else:
            fit = model.update(data=sub)
        fixed_rows.append(fit.fixef)
        vc_rows.append(var_cov_components(fit))
    index = pd.Index([str(lev) for lev in levels], name=group)
    fixef_deleted = pd.DataFrame(fixed_rows).set_axis(index, axis=0)
    var_cov_deleted = pd.DataFrame(vc_rows).set_axis(index, axis=0)
    return GroupInfluence(
        group=group,
        fixef=model.fixef.copy(),
        fixef_deleted=fixef_deleted,
        var_cov=var_cov_components(model),
        var_cov_deleted=var_cov_deleted,
        vcov=model.vcov.copy(),
    )
