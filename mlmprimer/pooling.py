"""Complete, no and partial pooling side by side.

*Complete pooling* ignores the groups: one regression for all rows. *No pooling* fits each group on
its own. *Partial pooling* is the multilevel model: each group's estimate is pulled from its own
(no-pooling) value towards the population value, the more so the fewer observations it has and
the smaller the between-group variance.

The table names the two sides of that pull apart: its ``weight`` column is the weight
``lambda_j`` that the model gives a group's own value, and the *shrinkage*, the share of the way
to the population value that the group's estimate is pulled, is ``1 - lambda_j``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlmprimer.model import lmer

__all__ = ["pooling"]


def _check_columns(data: Any, columns: dict[str, str | None]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for role, name in columns.items():
        if name is None:
            continue
        if not isinstance(name, str):
            raise ValueError(f"{role} must be a column name (str), got {name!r}")
        if name not in data.columns:
            raise ValueError(
                f"{role}={name!r} is not a column of data; columns are: "
                + ", ".join(map(str, data.columns))
            )
    for role in ("y", "x"):
        name = columns.get(role)
        if name is not None and not pd.api.types.is_numeric_dtype(data[name]):
            raise ValueError(f"{role}={name!r} must be numeric, it has dtype {data[name].dtype}")


def _group_levels(values: pd.Series) -> list[Any]:
    """Levels in their categorical order, else sorted, restricted to those present."""
    present = set(values.unique())
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [lev for lev in values.cat.categories if lev in present]
    try:
        return sorted(present)
    except TypeError:
        return list(values.unique())


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of a simple regression (both NaN when x does not vary)."""
    if len(y) < 2 or np.ptp(x) == 0:
        return (np.nan, np.nan)
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / np.sum((x - x.mean()) ** 2))
    return float(y.mean() - slope * x.mean()), slope


def pooling(
    data: pd.DataFrame,
    y: str,
    group: str,
    x: str | None = None,
    REML: bool = True,
) -> pd.DataFrame:
    """Per-group estimates under complete, no and partial pooling.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation. Rows with a missing value in ``y``, ``group`` or ``x`` are left
        out of every estimate.
    y : str
        Response column (numeric).
    group : str
        Grouping column.
    x : str, optional
        A numeric predictor. Without it the estimates are group means (intercept-only model
        ``y ~ 1 + (1 | group)``); with it, per-group intercepts and slopes
        (``y ~ 1 + x + (1 + x | group)``).
    REML : bool, default True
        Fit the partial-pooling model by REML (lme4's default) or by maximum likelihood.

    Returns
    -------
    pandas.DataFrame
        Index: the group levels (categorical order if ``group`` is categorical, else sorted).
        Without ``x`` the columns are

        - ``n``: number of observations of the group, ``n_j``;
        - ``complete``: the grand mean (the same on every row);
        - ``no_pooling``: the group mean;
        - ``partial``: the group's intercept from the multilevel model (``coef()``);
        - ``weight``: the weight of the group's own mean, ``lambda_j = tau^2 / (tau^2 +
          sigma^2 / n_j)``, so that ``partial = lambda_j * no_pooling + (1 - lambda_j) * mu``,
          where ``mu`` is the model's fixed intercept (its estimate of the mean of the group
          means, which weights groups, unlike ``complete``). The *shrinkage*, the share of the
          distance to ``mu`` by which the group's mean is pulled in, is ``1 - weight``.

        With ``x`` each estimate has ``_intercept`` and ``_slope`` columns (``complete_intercept``,
        ``complete_slope``, ``no_pooling_intercept``, ...). The weight columns
        ``weight_intercept`` and ``weight_slope`` are then the diagonal of the matrix
        ``Lambda_j = T (T + sigma^2 (X_j' X_j)^-1)^-1`` (``T`` the covariance of the random
        intercept and slope, ``X_j`` the group's design) that turns the group's own deviation
        from the fixed effects into its random effect, ``u_j = Lambda_j (b_j - beta)``. When
        the intercept and slope are correlated, or ``x`` is not centred within the group, the
        off-diagonal terms also move each coefficient, so the columns are a guide rather than
        an exact weight. Groups whose ``x`` does not vary have a missing no-pooling slope and
        missing weights.

        ``attrs`` holds the model's ``formula``, its random-effect variances ``tau2`` (a dict
        term -> variance) and its residual variance ``sigma2``.

    Raises
    ------
    ValueError
        If ``data`` is not a DataFrame, a column is missing (it is named) or ``y`` / ``x`` is not
        numeric, or fewer than two groups remain.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> sleep = load("sleepstudy")
    >>> tab = pooling(sleep, y="Reaction", group="Subject")
    >>> list(tab.columns)
    ['n', 'complete', 'no_pooling', 'partial', 'weight']
    >>> bool(tab["weight"].between(0, 1).all())
    True
    """
    _check_columns(data, {"y": y, "group": group, "x": x})
    used = [c for c in (y, group, x) if c is not None]
    df = data.loc[data[used].notna().all(axis=1), used].copy()
    if isinstance(df[group].dtype, pd.CategoricalDtype):
        df[group] = df[group].cat.remove_unused_categories()
    levels = _group_levels(df[group])
    if len(levels) < 2:
        raise ValueError(f"group={group!r} must have at least two levels with data")

    yv = df[y].to_numpy(dtype=float)
    if x is not None and np.ptp(df[x].to_numpy(dtype=float)) == 0:
        raise ValueError(f"x={x!r} does not vary: no slope can be estimated")
    grouped = df.groupby(group, observed=True, sort=False)
    n_j = grouped.size().reindex(levels)

    # fit on plain internal names, so that any column name works in the formula
    fit_data = pd.DataFrame({"y": yv, "g": df[group].to_numpy()}, index=df.index)
    if x is None:
        formula = f"{y} ~ 1 + (1 | {group})"
        model = lmer("y ~ 1 + (1 | g)", fit_data, REML=REML)
    else:
        formula = f"{y} ~ 1 + {x} + (1 + {x} | {group})"
        fit_data["x"] = df[x].to_numpy(dtype=float)
        model = lmer("y ~ 1 + x + (1 + x | g)", fit_data, REML=REML)
    coefs = model.coef()["g"]
    coefs = coefs.set_axis([str(i) for i in coefs.index]).reindex([str(v) for v in levels])
    sigma2 = float(model.sigma) ** 2
    tv = model.varcomp["g"]
    terms, T = tv.terms, tv.cov

    out = pd.DataFrame(index=pd.Index(levels, name=group))
    out["n"] = n_j.astype(int)
    if x is None:
        out["complete"] = float(yv.mean())
        out["no_pooling"] = grouped[y].mean().reindex(levels).astype(float)
        out["partial"] = coefs["(Intercept)"].to_numpy(dtype=float)
        tau2 = float(T[0, 0])
        out["weight"] = tau2 / (tau2 + sigma2 / out["n"])
    else:
        xv = df[x].to_numpy(dtype=float)
        b0, b1 = _ols(xv, yv)
        out["complete_intercept"] = b0
        out["complete_slope"] = b1
        order = [terms.index("(Intercept)"), terms.index("x")]
        T2 = T[np.ix_(order, order)]
        own, weights = [], []
        for lev in levels:
            g = grouped.get_group(lev)
            xj = g[x].to_numpy(dtype=float)
            own.append(_ols(xj, g[y].to_numpy(dtype=float)))
            Xj = np.column_stack([np.ones(len(g)), xj])
            XtX = Xj.T @ Xj
            if np.linalg.matrix_rank(XtX) < 2:
                weights.append((np.nan, np.nan))
                continue
            lam = T2 @ np.linalg.pinv(T2 + sigma2 * np.linalg.inv(XtX))
            weights.append((float(lam[0, 0]), float(lam[1, 1])))
        out["no_pooling_intercept"] = [o[0] for o in own]
        out["no_pooling_slope"] = [o[1] for o in own]
        out["partial_intercept"] = coefs["(Intercept)"].to_numpy(dtype=float)
        out["partial_slope"] = coefs["x"].to_numpy(dtype=float)
        out["weight_intercept"] = [w[0] for w in weights]
        out["weight_slope"] = [w[1] for w in weights]
    out.attrs["formula"] = formula
    out.attrs["sigma2"] = sigma2
    out.attrs["tau2"] = {(x if t == "x" else t): float(T[i, i]) for i, t in enumerate(terms)}
    return out
