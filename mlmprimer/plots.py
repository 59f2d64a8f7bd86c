"""Figures of the course: each function draws on a matplotlib Axes and returns it.

Every function takes ``ax=None`` (a new figure is made when it is None) and axis-label arguments
so that a chapter can give units (``ylabel="Reaction time (ms)"``). A title is drawn only when
asked for: ``title=True`` gives a default title, a string gives that title; chapters normally
put the caption and alt text in the notebook instead. Nothing here calls ``plt.show()``.

Colours come from :data:`PALETTE`, the Okabe-Ito palette, which stays distinct for the common
forms of colour blindness.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from scipy import stats

from mlmprimer.diagnostics import GroupInfluence
from mlmprimer.model import LmerModel
from mlmprimer.pooling import pooling

__all__ = [
    "PALETTE",
    "caterpillar",
    "pooling_lines",
    "spaghetti",
    "residual_diagnostics",
    "influence_plot",
    "residuals_by_group",
    "residuals_against",
]

#: Okabe & Ito's colour-blind-safe palette (orange, sky blue, bluish green, blue, vermillion,
#: reddish purple, yellow, black): the first six keep a good contrast on white.
PALETTE: list[str] = [
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#F0E442",
    "#000000",
]

GREY = "#999999"

#: Above this many levels the caterpillar plot leaves out its level labels by default.
MAX_LABELS = 40


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (6.0, 4.0)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    elif not isinstance(ax, Axes):
        raise ValueError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
    return ax


def _set_title(ax: Axes, title: bool | str | None, default: str) -> None:
    if isinstance(title, str):
        ax.set_title(title)
    elif title:
        ax.set_title(default)


def _check_columns(data: Any, **columns: str | None) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for role, name in columns.items():
        if name is not None and name not in data.columns:
            raise ValueError(
                f"{role}={name!r} is not a column of data; columns are: "
                + ", ".join(map(str, data.columns))
            )


def _pick_group(model: LmerModel, group: str | None) -> str:
    available = list(model.ranef)
    if group is None:
        if len(available) != 1:
            raise ValueError(
                "the model has several grouping factors; choose one with group=, one of: "
                + ", ".join(available)
            )
        return available[0]
    if group not in model.ranef:
        raise ValueError(
            f"group={group!r} is not a grouping factor of the model; it has: "
            + ", ".join(available)
        )
    return group


def caterpillar(
    model: LmerModel,
    group: str | None = None,
    term: str = "(Intercept)",
    level: float = 0.95,
    ax: Axes | None = None,
    xlabel: str | None = None,
    labels: bool | None = None,
    title: bool | str = False,
) -> Axes:
    """Caterpillar plot: conditional modes of one random effect with intervals, sorted.

    Each level of the grouping factor gets its conditional mode (``model.ranef``) and the
    interval ``mode +/- z * condsd`` (``model.ranef_condsd``, ``z`` the normal quantile for
    ``level``), like lattice's ``dotplot(ranef(m, condVar = TRUE))``.

    Parameters
    ----------
    model : LmerModel
        A fit from :func:`mlmprimer.lmer`.
    group : str, optional
        The grouping factor; may be left out when the model has only one.
    term : str, default "(Intercept)"
        The random-effect term (a column of ``model.ranef[group]``).
    level : float, default 0.95
        Coverage of the intervals.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    xlabel : str, optional
        Label of the x axis (give units here); default names the term and the factor.
    labels : bool, optional
        Write the level names on the y axis; default only when there are at most 40 levels.
    title : bool or str, default False
        ``True`` for a default title, a string for that title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> sleep = load("sleepstudy")
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    >>> ax = caterpillar(m, term="Days", xlabel="Subject's deviation in slope (ms/day)")
    >>> ax.get_xlabel()
    "Subject's deviation in slope (ms/day)"
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    group = _pick_group(model, group)
    modes = model.ranef[group]
    if term not in modes.columns:
        raise ValueError(
            f"term={term!r} is not a random effect of {group!r}; it has: "
            + ", ".join(map(str, modes.columns))
        )
    sds = model.ranef_condsd[group][term].reindex(modes.index)
    frame = pd.DataFrame({"mode": modes[term], "sd": sds}).sort_values("mode", kind="stable")
    z = float(stats.norm.ppf(0.5 + level / 2))
    ax = _new_axes(ax, figsize=(6.0, max(3.0, min(10.0, 0.18 * len(frame) + 1.5))))
    pos = np.arange(len(frame))
    ax.axvline(0.0, color=GREY, linewidth=1, zorder=0)
    ax.errorbar(
        frame["mode"],
        pos,
        xerr=z * frame["sd"].to_numpy(dtype=float),
        fmt="o",
        color=PALETTE[3],
        ecolor=PALETTE[1],
        markersize=3,
        elinewidth=1.2,
        capsize=0,
    )
    show = len(frame) <= MAX_LABELS if labels is None else labels
    if show:
        ax.set_yticks(pos, [str(i) for i in frame.index])
    else:
        ax.set_yticks([])
    ax.set_ylim(-1, len(frame))
    ax.set_ylabel(f"{group} (sorted by conditional mode)")
    ax.set_xlabel(xlabel or f"Conditional mode of {term} ({group}), {level:.0%} interval")
    _set_title(ax, title, f"Random effects: {term} by {group}")
    return ax


def pooling_lines(
    data: pd.DataFrame,
    y: str,
    group: str,
    x: str,
    ax: Axes | None = None,
    groups: Sequence[Any] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: bool | str = False,
) -> Axes:
    """Per-group regression lines under no, partial and complete pooling.

    For each shown group the data points, its own least-squares line (no pooling, dashed) and its
    line from the multilevel model ``y ~ 1 + x + (1 + x | group)`` (partial pooling, solid) are
    drawn in the group's colour; the single regression through all rows (complete pooling) is the
    dotted grey line. The estimates come from :func:`mlmprimer.pooling.pooling`, fitted on all
    groups.

    Parameters
    ----------
    data : pandas.DataFrame
    y, group, x : str
        Response, grouping and predictor columns.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    groups : sequence, optional
        Levels to show; default the first eight levels (one per palette colour).
    xlabel, ylabel : str, optional
        Axis labels (give units here); default the column names.
    title : bool or str, default False
        ``True`` for a default title, a string for that title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> sleep = load("sleepstudy")
    >>> ax = pooling_lines(sleep, "Reaction", "Subject", "Days", groups=["308", "309"])
    >>> ax.get_ylabel()
    'Reaction'
    """
    _check_columns(data, y=y, group=group, x=x)
    table = pooling(data, y=y, group=group, x=x)
    if groups is None:
        shown = list(table.index[: len(PALETTE)])
    else:
        lookup = {str(k): k for k in table.index}
        shown = []
        for g in groups:
            if g in table.index:
                shown.append(g)
            elif str(g) in lookup:
                shown.append(lookup[str(g)])
            else:
                raise ValueError(f"group level {g!r} is not in column {group!r}")
    ax = _new_axes(ax)
    rows = data[[y, group, x]].dropna()
    key = rows[group].astype(str)
    first = table.iloc[0]
    xmin, xmax = float(rows[x].min()), float(rows[x].max())
    grid = np.array([xmin, xmax])
    ax.plot(
        grid,
        first["complete_intercept"] + first["complete_slope"] * grid,
        color=GREY,
        linestyle=":",
        linewidth=2,
        zorder=1,
    )
    for i, lev in enumerate(shown):
        colour = PALETTE[i % len(PALETTE)]
        pts = rows[key == str(lev)]
        ax.scatter(pts[x], pts[y], color=colour, s=12, alpha=0.7, zorder=2)
        xs = np.array([float(pts[x].min()), float(pts[x].max())])
        est = table.loc[lev]
        if np.isfinite(est["no_pooling_slope"]):
            ax.plot(
                xs,
                est["no_pooling_intercept"] + est["no_pooling_slope"] * xs,
                color=colour,
                linestyle="--",
                linewidth=1.2,
            )
        ax.plot(xs, est["partial_intercept"] + est["partial_slope"] * xs, color=colour, linewidth=2)
    style = [
        Line2D([], [], color="#555555", linestyle="--", label="no pooling"),
        Line2D([], [], color="#555555", linestyle="-", linewidth=2, label="partial pooling"),
        Line2D([], [], color=GREY, linestyle=":", linewidth=2, label="complete pooling"),
    ]
    colour_keys = [
        Line2D([], [], color=PALETTE[i % len(PALETTE)], marker="o", linestyle="", label=str(g))
        for i, g in enumerate(shown)
    ]
    ax.legend(handles=style + colour_keys, fontsize="small", frameon=False, loc="best")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    _set_title(ax, title, f"No, partial and complete pooling of {y} on {x}")
    return ax


def spaghetti(
    data: pd.DataFrame,
    x: str,
    y: str,
    group: str,
    ax: Axes | None = None,
    highlight: Sequence[Any] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: bool | str = False,
) -> Axes:
    """Spaghetti plot: one line per group joining its observations in order of ``x``.

    Parameters
    ----------
    data : pandas.DataFrame
    x, y, group : str
        Time (or other predictor), response and grouping columns.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    highlight : sequence, optional
        Levels to draw in colour (with a legend); the others are thin grey lines. By default
        every group is drawn in grey.
    xlabel, ylabel : str, optional
        Axis labels (give units here); default the column names.
    title : bool or str, default False
        ``True`` for a default title, a string for that title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> sleep = load("sleepstudy")
    >>> ax = spaghetti(sleep, "Days", "Reaction", "Subject", highlight=["308"],
    ...                ylabel="Reaction time (ms)")
    >>> ax.get_ylabel()
    'Reaction time (ms)'
    """
    _check_columns(data, x=x, y=y, group=group)
    rows = data[[x, y, group]].dropna()
    key = rows[group].astype(str)
    wanted = [] if highlight is None else [str(h) for h in highlight]
    missing = [h for h in wanted if h not in set(key)]
    if missing:
        raise ValueError(f"highlight levels not in column {group!r}: {', '.join(missing)}")
    ax = _new_axes(ax)
    for lev, g in rows.groupby(key, sort=True):
        if lev in wanted:
            continue
        g = g.sort_values(x, kind="stable")
        ax.plot(g[x], g[y], color=GREY, linewidth=0.8, alpha=0.7)
    for i, lev in enumerate(wanted):
        g = rows[key == lev].sort_values(x, kind="stable")
        ax.plot(
            g[x],
            g[y],
            color=PALETTE[i % len(PALETTE)],
            linewidth=2,
            marker="o",
            markersize=3,
            label=lev,
        )
    if wanted:
        ax.legend(title=group, fontsize="small", frameon=False)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    _set_title(ax, title, f"{y} over {x}, one line per {group}")
    return ax


def _qq(ax: Axes, values: np.ndarray, colour: str, label: str | None = None) -> None:
    values = np.sort(values[np.isfinite(values)])
    n = len(values)
    if n == 0:
        return
    theo = stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n)
    ax.scatter(theo, values, s=12, color=colour, alpha=0.8, label=label)


def residual_diagnostics(
    model: LmerModel,
    axes: Sequence[Axes] | np.ndarray | None = None,
    title: bool | str = False,
) -> np.ndarray:
    """Three diagnostic panels of a linear mixed model.

    1. Residuals against fitted values (look for curvature and funnels).
    2. Normal QQ plot of the residuals divided by ``sigma``.
    3. Normal QQ plot of the conditional modes of the random effects, each term divided by its
       standard deviation over the levels (one colour per grouping factor and term).

    The reference lines are the horizontal line at 0 and the identity line.

    Parameters
    ----------
    model : LmerModel
        A fit from :func:`mlmprimer.lmer`.
    axes : sequence of three matplotlib Axes, optional
        Where to draw; a new 1 x 3 figure when None.
    title : bool or str, default False
        ``True`` for default panel titles; a string is used as the figure's title.

    Returns
    -------
    numpy.ndarray
        The three Axes.

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> sleep = load("sleepstudy")
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", sleep)
    >>> axes = residual_diagnostics(m)
    >>> len(axes)
    3
    """
    if axes is None:
        _, created = plt.subplots(1, 3, figsize=(12.0, 4.0))
        axs = np.asarray(created, dtype=object)
    else:
        axs = np.asarray(axes, dtype=object).ravel()
        if len(axs) != 3 or not all(isinstance(a, Axes) for a in axs):
            raise ValueError("axes must hold exactly three matplotlib Axes")
    fitted = np.asarray(model.fitted(), dtype=float)
    resid = np.asarray(model.residuals(), dtype=float)
    sigma = float(model.sigma)

    ax = axs[0]
    ax.axhline(0.0, color=GREY, linewidth=1, zorder=0)
    ax.scatter(fitted, resid, s=10, color=PALETTE[3], alpha=0.6)
    resp = getattr(model, "response", "")
    ax.set_xlabel(f"Fitted values ({resp})" if resp else "Fitted values")
    ax.set_ylabel("Residuals")

    ax = axs[1]
    _qq(ax, resid / sigma if sigma > 0 else resid, PALETTE[3])
    ax.axline((0.0, 0.0), slope=1.0, color=GREY, linewidth=1, zorder=0)
    ax.set_xlabel("Theoretical normal quantiles")
    ax.set_ylabel("Residuals / sigma")

    ax = axs[2]
    series = [
        (grp, term, frame[term].to_numpy(dtype=float))
        for grp, frame in model.ranef.items()
        for term in frame.columns
    ]
    for i, (grp, term, vals) in enumerate(series):
        sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        scaled = vals / sd if sd > 0 else vals
        _qq(ax, scaled, PALETTE[i % len(PALETTE)], label=f"{grp}: {term}")
    ax.axline((0.0, 0.0), slope=1.0, color=GREY, linewidth=1, zorder=0)
    if len(series) > 1:
        ax.legend(fontsize="small", frameon=False)
    ax.set_xlabel("Theoretical normal quantiles")
    ax.set_ylabel("Conditional modes / SD")

    if title:
        defaults = ["Residuals vs fitted", "QQ plot of residuals", "QQ plot of random effects"]
        for a, t in zip(axs, defaults, strict=True):
            a.set_title(t)
        if isinstance(title, str):
            axs[0].figure.suptitle(title)
    return axs


def influence_plot(
    influence: GroupInfluence,
    labels: int = 3,
    ax: Axes | None = None,
    xlabel: str = "Cook's distance (no unit)",
    title: bool | str = False,
) -> Axes:
    """Cook's distance of each group, sorted, with the largest ones named.

    One dot per level of the grouping factor (from :func:`mlmprimer.diagnostics.influence_groups`),
    on a horizontal line from 0; the ``labels`` largest are drawn in vermillion and named.

    Parameters
    ----------
    influence : GroupInfluence
        From :func:`mlmprimer.diagnostics.influence_groups`.
    labels : int, default 3
        How many of the most influential groups to name.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    xlabel : str
        Label of the x axis.
    title : bool or str, default False
        ``True`` for a default title, a string for that title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.diagnostics import influence_groups
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    >>> ax = influence_plot(influence_groups(m, "Subject"))
    >>> ax.get_ylabel()
    'Subject (sorted)'
    """
    if not isinstance(influence, GroupInfluence):
        raise ValueError(
            "influence must come from mlmprimer.diagnostics.influence_groups, got "
            + type(influence).__name__
        )
    if not isinstance(labels, int | np.integer) or labels < 0:
        raise ValueError(f"labels must be a whole number >= 0, got {labels!r}")
    ax = _new_axes(ax)
    d = influence.cooks_distance.sort_values(kind="stable")
    pos = np.arange(len(d))
    top = pos >= len(d) - labels
    ax.hlines(pos, 0.0, d.to_numpy(), color=GREY, linewidth=0.8, zorder=0)
    ax.scatter(d.to_numpy()[~top], pos[~top], s=18, color=PALETTE[3], zorder=2)
    ax.scatter(d.to_numpy()[top], pos[top], s=28, color=PALETTE[4], zorder=3)
    for y, (name, value) in zip(pos[top], d[top].items(), strict=True):
        ax.annotate(str(name), (value, y), xytext=(4, 0), textcoords="offset points", va="center")
    ax.set_yticks([])
    ax.set_xlim(left=0.0, right=float(d.max()) * 1.25 if d.max() > 0 else 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{influence.group} (sorted)")
    _set_title(ax, title, f"Influence of each {influence.group} on the fixed effects")
    return ax


def residuals_by_group(
    model: LmerModel,
    group: str | None = None,
    ax: Axes | None = None,
    ylabel: str = "Residual",
    xlabel: str | None = None,
    title: bool | str = False,
) -> Axes:
    """Residuals of each level as a box plot, levels sorted by the spread of their residuals.

    Equal spreads are what the model assumes (one sigma for every group); a fan from left to
    right is heteroscedasticity by group. The horizontal line is 0.

    Parameters
    ----------
    model : LmerModel
        A fit from :func:`mlmprimer.lmer`.
    group : str, optional
        The grouping factor; may be left out when the model has only one.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    ylabel, xlabel : str, optional
        Axis labels (give the response's unit in ``ylabel``).
    title : bool or str, default False
        ``True`` for a default title, a string for that title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    >>> ax = residuals_by_group(m, ylabel="Residual (ms)")
    >>> ax.get_xlabel()
    'Subject (sorted by the SD of its residuals)'
    """
    group = _pick_group(model, group)
    ax = _new_axes(ax, figsize=(8.0, 4.0))
    codes = model.getME("flist")[group]
    resid = pd.Series(model.residuals().to_numpy(), index=np.asarray(codes.astype(object)))
    by = resid.groupby(level=0, sort=False)
    order = by.std(ddof=1).fillna(0.0).sort_values(kind="stable").index
    values = [resid.loc[[lev]].to_numpy() for lev in order]
    ax.axhline(0.0, color=GREY, linewidth=1, zorder=0)
    ax.boxplot(
        values,
        positions=np.arange(len(values)),
        widths=0.6,
        patch_artist=True,
        boxprops={"facecolor": PALETTE[1], "edgecolor": PALETTE[7]},
        medianprops={"color": PALETTE[7]},
        flierprops={"markerfacecolor": PALETTE[4], "markeredgecolor": PALETTE[4], "markersize": 3},
    )
    if len(order) <= MAX_LABELS:
        ax.set_xticks(np.arange(len(order)), [str(v) for v in order], rotation=90)
    else:
        ax.set_xticks([])
    ax.set_xlabel(xlabel or f"{group} (sorted by the SD of its residuals)")
    ax.set_ylabel(ylabel)
    _set_title(ax, title, f"Residuals by {group}")
    return ax


def residuals_against(
    model: LmerModel,
    column: str,
    ax: Axes | None = None,
    xlabel: str | None = None,
    ylabel: str = "Residual",
    bins: int = 10,
    title: bool | str = False,
) -> Axes:
    """Residuals against a column of the data, with their mean in bins of the column.

    Dots are the residuals ``y - fitted``; the line joins the mean residual in ``bins``
    equal-count bins of the column (a curve there is a missed non-linearity); the horizontal
    line is 0.

    Parameters
    ----------
    model : LmerModel
        A fit from :func:`mlmprimer.lmer`.
    column : str
        A numeric column of the data the model was fitted to (``model.data``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure when None.
    xlabel, ylabel : str, optional
        Axis labels (give units here); default x label: the column's name.
    bins : int, default 10
        Number of bins for the line of means (at most the number of distinct values).
    title : bool or str, default False
        ``True`` for a default title, a string for that title.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    >>> ax = residuals_against(m, "Days", xlabel="Days of sleep deprivation")
    >>> ax.get_xlabel()
    'Days of sleep deprivation'
    """
    _check_columns(model.data, column=column)
    x = model.data[column]
    if not pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x):
        raise ValueError(f"column={column!r} must be numeric, it is {x.dtype}")
    if not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be a whole number >= 1, got {bins!r}")
    ax = _new_axes(ax)
    xv = x.to_numpy(dtype=float)
    r = model.residuals().to_numpy()
    ax.axhline(0.0, color=GREY, linewidth=1, zorder=0)
    ax.scatter(xv, r, s=10, color=PALETTE[3], alpha=0.5)
    n_bins = int(min(bins, len(np.unique(xv))))
    cut = pd.qcut(pd.Series(xv).rank(method="first"), n_bins, labels=False)
    means = pd.DataFrame({"x": xv, "r": r, "b": cut.to_numpy()}).groupby("b").mean()
    ax.plot(means["x"], means["r"], color=PALETTE[4], linewidth=2, marker="o", markersize=4)
    ax.set_xlabel(xlabel or column)
    ax.set_ylabel(ylabel)
    _set_title(ax, title, f"Residuals against {column}")
    return ax
