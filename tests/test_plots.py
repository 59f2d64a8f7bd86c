"""Figures: each returns labelled matplotlib Axes and rejects bad input with a clear message."""

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes

from mlmprimer import plots
from mlmprimer.datasets import load
from mlmprimer.model import lmer


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sleep():
    return load("sleepstudy")


@pytest.fixture(scope="module")
def model(sleep):
    return lmer("Reaction ~ Days + (Days | Subject)", sleep)


def labelled(ax):
    return isinstance(ax, Axes) and ax.get_xlabel().strip() and ax.get_ylabel().strip()


def test_palette_is_okabe_ito():
    okabe_ito = {
        "#000000",
        "#E69F00",
        "#56B4E9",
        "#009E73",
        "#F0E442",
        "#0072B2",
        "#D55E00",
        "#CC79A7",
    }
    assert isinstance(plots.PALETTE, list)
    assert all(re.fullmatch(r"#[0-9A-F]{6}", c) for c in plots.PALETTE)
    assert set(plots.PALETTE) == okabe_ito


def test_caterpillar(model):
    ax = plots.caterpillar(model)
    assert labelled(ax)
    assert ax.get_title() == ""
    labels = [t.get_text() for t in ax.get_yticklabels()]
    modes = model.ranef["Subject"]["(Intercept)"]
    assert labels == [str(i) for i in modes.sort_values().index]


def test_caterpillar_intervals_widen_with_level(model):
    def width(level):
        ax = plots.caterpillar(model, term="Days", level=level)
        segments = ax.collections[0].get_segments()
        return np.array([abs(s[1][0] - s[0][0]) for s in segments])

    narrow, wide = width(0.5), width(0.95)
    ratio = 1.959964 / 0.674490
    np.testing.assert_allclose(wide / narrow, ratio, rtol=1e-6)


def test_caterpillar_options(model):
    fig, ax = plt.subplots()
    out = plots.caterpillar(model, term="Days", ax=ax, xlabel="Slope (ms/day)", title=True)
    assert out is ax
    assert ax.get_xlabel() == "Slope (ms/day)"
    assert ax.get_title()
    ax2 = plots.caterpillar(model, title="Subjects", labels=False)
    assert ax2.get_title() == "Subjects"
    assert len(ax2.get_yticks()) == 0


def test_caterpillar_bad_input(model):
    with pytest.raises(ValueError, match="'day'.*Days"):
        plots.caterpillar(model, term="day")
    with pytest.raises(ValueError, match="'School'.*Subject"):
        plots.caterpillar(model, group="School")
    with pytest.raises(ValueError, match="level"):
        plots.caterpillar(model, level=95)


def test_pooling_lines(sleep):
    ax = plots.pooling_lines(
        sleep, "Reaction", "Subject", "Days", groups=["308", "309"], ylabel="Reaction time (ms)"
    )
    assert labelled(ax)
    assert ax.get_ylabel() == "Reaction time (ms)"
    # complete pooling + (no pooling, partial pooling) per group
    assert len(ax.lines) == 1 + 2 * 2
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"no pooling", "partial pooling", "complete pooling", "308", "309"} <= set(legend)


def test_pooling_lines_bad_input(sleep):
    with pytest.raises(ValueError, match="'999'"):
        plots.pooling_lines(sleep, "Reaction", "Subject", "Days", groups=["999"])
    with pytest.raises(ValueError, match="'Dayz'"):
        plots.pooling_lines(sleep, "Reaction", "Subject", "Dayz")


def test_spaghetti(sleep):
    ax = plots.spaghetti(sleep, "Days", "Reaction", "Subject", xlabel="Days of sleep deprivation")
    assert labelled(ax)
    assert ax.get_xlabel() == "Days of sleep deprivation"
    assert len(ax.lines) == sleep["Subject"].nunique()
    ax = plots.spaghetti(sleep, "Days", "Reaction", "Subject", highlight=["308", "335"])
    assert len(ax.lines) == sleep["Subject"].nunique()
    highlighted = [line for line in ax.lines if line.get_label() in {"308", "335"}]
    assert [line.get_color() for line in highlighted] == plots.PALETTE[:2]
    # each line follows its group in order of x
    assert all(np.all(np.diff(line.get_xdata()) >= 0) for line in ax.lines)


def test_spaghetti_bad_input(sleep):
    with pytest.raises(ValueError, match="'subject'"):
        plots.spaghetti(sleep, "Days", "Reaction", "subject")
    with pytest.raises(ValueError, match="999"):
        plots.spaghetti(sleep, "Days", "Reaction", "Subject", highlight=["999"])
    with pytest.raises(ValueError, match="DataFrame"):
        plots.spaghetti([1, 2], "Days", "Reaction", "Subject")


def test_residual_diagnostics(model):
    axes = plots.residual_diagnostics(model)
    assert isinstance(axes, np.ndarray) and axes.shape == (3,)
    assert all(labelled(ax) for ax in axes)
    assert all(ax.get_title() == "" for ax in axes)
    # the first panel shows every observation
    assert len(axes[0].collections[0].get_offsets()) == model.nobs
    fig, given = plt.subplots(3, 1)
    out = plots.residual_diagnostics(model, axes=given, title=True)
    assert list(out) == list(given)
    assert all(ax.get_title() for ax in out)
    with pytest.raises(ValueError, match="three"):
        plots.residual_diagnostics(model, axes=given[:2])


def test_influence_plot(model):
    from mlmprimer.diagnostics import influence_groups

    inf = influence_groups(model, "Subject")
    ax = plots.influence_plot(inf, labels=2)
    assert labelled(ax)
    # one dot per subject, the two largest Cook's distances drawn apart and named
    drawn = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections[1:]])
    assert np.allclose(np.sort(drawn), np.sort(inf.cooks_distance.to_numpy()))
    names = {t.get_text() for t in ax.texts}
    assert names == set(inf.cooks_distance.nlargest(2).index)
    with pytest.raises(ValueError, match="influence_groups"):
        plots.influence_plot(inf.cooks_distance)
    with pytest.raises(ValueError, match="labels"):
        plots.influence_plot(inf, labels=-1)


def test_residuals_by_group(model):
    ax = plots.residuals_by_group(model, ylabel="Residual (ms)")
    assert labelled(ax)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert sorted(labels) == sorted(map(str, model.ranef["Subject"].index))
    # sorted by the SD of each subject's residuals: the widest last
    r = model.residuals().groupby(model.data["Subject"].to_numpy()).std()
    assert labels[-1] == str(r.idxmax()) and labels[0] == str(r.idxmin())
    with pytest.raises(ValueError, match="not a grouping factor"):
        plots.residuals_by_group(model, "Days")


def test_residuals_against(model):
    ax = plots.residuals_against(model, "Days", bins=10, xlabel="Days of sleep deprivation")
    assert labelled(ax)
    assert len(ax.collections[0].get_offsets()) == model.nobs
    # the line of binned means: one point per distinct day, means of the residuals that day
    line = ax.lines[-1]
    want = model.residuals().groupby(model.data["Days"].to_numpy()).mean()
    assert np.allclose(np.sort(line.get_ydata()), np.sort(want.to_numpy()))
    with pytest.raises(ValueError, match="not a column"):
        plots.residuals_against(model, "days")
    with pytest.raises(ValueError, match="must be numeric"):
        plots.residuals_against(model, "Subject")
    with pytest.raises(ValueError, match="bins"):
        plots.residuals_against(model, "Days", bins=0)
