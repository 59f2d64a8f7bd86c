"""Interactive figures and self-check questions for the book's web pages.

Each function returns an :class:`Html` object: a notebook cell (tagged ``remove-input``) that ends
with it stores the widget as ``text/html``, and the book's ``_static/interactive.js`` brings it to
life in the page, with no kernel and no network. The numbers a widget starts from (a chapter's
estimates, its example groups) and every number of a question (the right answer and the values a
known slip gives) are passed in from the chapter's computed results, never typed; the HTML carries
them in a ``data-mlm-params`` attribute as JSON.

- :func:`shrinkage`: a group's partial-pooling estimate between its own mean and the grand mean,
  with sliders for the group's size ``n_j`` and the ratio ``tau^2 / sigma^2``;
- :func:`design_effect_calculator`: Kish's design effect ``1 + (m - 1) ICC`` and the effective
  sample size;
- :func:`slope_variance`: with a random slope, the between-group variance
  ``tau_0^2 + 2 rho tau_0 tau_1 x + tau_1^2 x^2`` and its share of the variance at each ``x``;
- :func:`number_question` and :func:`choice_question`: questions answered in the page, whose
  feedback names the slip a wrong answer reveals.

Examples
--------
>>> w = design_effect_calculator(icc=0.18, cluster_size=44.9, n_clusters=160)
>>> w.params["icc"], w.params["cluster_size"]
(0.18, 44.9)
>>> 'data-mlm-widget="design-effect"' in w.html
True
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Html",
    "Choice",
    "Slip",
    "shrinkage",
    "design_effect_calculator",
    "slope_variance",
    "number_question",
    "choice_question",
    "stable",
]

#: Significant digits of the numbers a widget or question carries: enough for every digit the
#: page shows, few enough to be the same on every machine.
DIGITS = 4
#: Relative tolerance of a numeric answer (as the notebook checks, ``check.core.REL_TOL``).
REL_TOL = 0.01

_ID = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class Html:
    """A widget or question: its HTML (shown by Jupyter and the book) and the data it carries.

    Attributes
    ----------
    kind : str
        The widget's kind, ``data-mlm-widget`` in the HTML.
    ident : str
        The widget's id in the page.
    params : dict
        The values passed to the page's script, as stored in ``data-mlm-params``.
    html : str
        The HTML.
    """

    kind: str
    ident: str
    params: dict[str, Any]
    html: str = field(repr=False)

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<{self.kind} {self.ident}: interactive in the book's web page>"


@dataclass(frozen=True)
class Slip:
    """A wrong answer a known slip gives, and the feedback that names the slip."""

    value: float
    feedback: str


@dataclass(frozen=True)
class Choice:
    """One option of a choice question, and what choosing it says."""

    label: str
    feedback: str
    correct: bool = False


def stable(value: float, digits: int = DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits, the same on any machine.

    Examples
    --------
    >>> stable(0.123456), stable(44.93750), stable(0.0)
    (0.1235, 44.94, 0.0)
    """
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"a widget's numbers must be finite, got {value!r}")
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _ident(ident: str) -> str:
    if not isinstance(ident, str) or not _ID.match(ident):
        raise ValueError(
            f"ident must be lower-case letters, digits and hyphens, starting with a letter "
            f"(it becomes an HTML id), got {ident!r}"
        )
    return ident


def _positive(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return value


def _text(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty text, got {value!r}")
    return value.strip()


def _data(params: dict[str, Any]) -> str:
    """The widget's numbers as JSON, escaped for an HTML attribute."""
    return html.escape(json.dumps(params, ensure_ascii=False, sort_keys=True), quote=True)


def _widget(kind: str, ident: str, params: dict[str, Any], title: str, body: str) -> Html:
    data = _data(params)
    page = (
        f'<div class="mlm-widget mlm-{kind}" id="{ident}" data-mlm-widget="{kind}" '
        f'data-mlm-params="{data}" role="group" aria-labelledby="{ident}-title">\n'
        f'<p class="mlm-widget-title" id="{ident}-title">{html.escape(title)}</p>\n'
        f"{body}\n"
        '<p class="mlm-noscript">This figure responds in the book\'s web page, where its '
        "script runs; in a notebook the code cells above compute the same numbers.</p>\n"
        "</div>"
    )
    return Html(kind, ident, params, page)


def _slider(ident: str, name: str, label: str, lo: float, hi: float, step: float) -> str:
    """A labelled range input with a number box beside it; the script sets the values."""
    base = f"{ident}-{name}"
    return (
        f'<div class="mlm-control">'
        f'<label for="{base}">{label}</label>'
        f'<input type="range" id="{base}" name="{name}" min="{lo:g}" max="{hi:g}" step="{step:g}">'
        f'<input type="number" id="{base}-box" name="{name}-box" min="{lo:g}" max="{hi:g}" '
        f'step="any" aria-label="{html.escape(_strip_tags(label))}, typed">'
        "</div>"
    )


def _strip_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


def _result(ident: str) -> str:
    return f'<output class="mlm-result" id="{ident}-result" aria-live="polite"></output>'


# --------------------------------------------------------------------------------------------
# widgets
# --------------------------------------------------------------------------------------------


def shrinkage(
    grand_mean: float,
    tau2: float,
    sigma2: float,
    groups: Mapping[str, tuple[float, float]],
    *,
    unit: str = "",
    group_word: str = "group",
    member_word: str = "observations",
    n_max: int | None = None,
    ident: str = "mlm-shrinkage",
) -> Html:
    """Sliders that move a group's partial-pooling estimate between its mean and the grand mean.

    The page shows ``lambda_j = tau^2 / (tau^2 + sigma^2 / n_j)`` with the values put in, and the
    estimate ``lambda_j * ybar_j + (1 - lambda_j) * beta_0`` on a number line. One slider sets
    ``n_j``, the other ``tau^2 / sigma^2`` (``tau^2`` moves, ``sigma^2`` stays at its estimate).

    Parameters
    ----------
    grand_mean : float
        The estimate of ``beta_0``, the mean the groups are pulled towards.
    tau2, sigma2 : float
        The estimated between- and within-group variances; they set the sliders' start.
    groups : mapping
        Example groups: name -> ``(n_j, ybar_j)``, the group's size and own mean. The first
        is shown first.
    unit : str
        The unit of the response, shown after each mean.
    group_word, member_word : str
        What a group and its members are called ("county", "homes").
    n_max : int, optional
        The largest ``n_j`` of the slider (default: the largest example group, at least 20).
    ident : str
        The HTML id of the widget.

    Returns
    -------
    Html

    Examples
    --------
    >>> w = shrinkage(1.36, 0.1, 0.64, {"Aitkin": (4, 0.72), "Hennepin": (105, 1.36)})
    >>> w.params["ratio"], w.params["groups"][0]
    (0.1563, ['Aitkin', 4, 0.72])
    """
    ident = _ident(ident)
    tau2, sigma2 = _positive(tau2, "tau2"), _positive(sigma2, "sigma2")
    if not groups:
        raise ValueError("groups must name at least one example group: name -> (n_j, ybar_j)")
    rows = []
    for name, pair in groups.items():
        try:
            n_j, mean_j = pair
        except (TypeError, ValueError):
            raise ValueError(f"group {name!r}: give (n_j, ybar_j), got {pair!r}") from None
        if float(n_j) < 1 or float(n_j) != int(n_j):
            raise ValueError(f"group {name!r}: n_j must be a whole number >= 1, got {n_j!r}")
        rows.append([str(name), int(n_j), stable(mean_j)])
    top = max(r[1] for r in rows)
    n_max = int(n_max) if n_max is not None else max(20, top)
    if n_max < top:
        raise ValueError(f"n_max = {n_max} is smaller than the largest example group ({top})")
    ratio = stable(tau2 / sigma2)
    params = {
        "grand_mean": stable(grand_mean),
        "tau2": stable(tau2),
        "sigma2": stable(sigma2),
        "ratio": ratio,
        "ratio_min": stable(ratio / 100),
        "ratio_max": stable(ratio * 100),
        "n_max": n_max,
        "groups": rows,
        "unit": unit,
        "group_word": group_word,
        "member_word": member_word,
    }
    one = member_word[:-1] if member_word.endswith("s") else member_word
    options = "".join(
        f'<option value="{i}">{html.escape(r[0])} '
        f"({r[1]} {html.escape(one if r[1] == 1 else member_word)})</option>"
        for i, r in enumerate(rows)
    )
    body = (
        '<div class="mlm-controls">'
        f'<div class="mlm-control"><label for="{ident}-group">Example {html.escape(group_word)}'
        f'</label><select id="{ident}-group" name="group">{options}</select></div>'
        + _slider(
            ident,
            "n",
            f"{html.escape(member_word).capitalize()} in the "
            f"{html.escape(group_word)}, n<sub>j</sub>",
            1,
            n_max,
            1,
        )
        + _slider(ident, "ratio", "Variance ratio τ²/σ² (log scale)", 0, 1, 0.005)
        + "</div>"
        f'<svg class="mlm-line" id="{ident}-svg" viewBox="0 0 600 90" role="img" '
        f'aria-labelledby="{ident}-svgdesc"><desc id="{ident}-svgdesc">A number line with '
        f"the {html.escape(group_word)}'s own mean, the grand mean and the partial-pooling "
        "estimate between them.</desc></svg>" + _result(ident)
    )
    return _widget("shrinkage", ident, params, "Try it: how far is a group pulled?", body)


def design_effect_calculator(
    icc: float,
    cluster_size: float,
    n_clusters: int,
    *,
    member_word: str = "observations",
    cluster_word: str = "clusters",
    ident: str = "mlm-design-effect",
) -> Html:
    """A calculator of Kish's design effect and the effective sample size.

    The page computes ``deff = 1 + (m - 1) ICC``, ``N = J m``, ``N_eff = N / deff`` and
    ``sqrt(deff)`` as :func:`mlmprimer.icc.design_effect` and
    :func:`mlmprimer.icc.effective_sample_size` do, for the ICC, cluster size ``m`` and number of
    clusters ``J`` its inputs hold.

    Parameters
    ----------
    icc : float
        The starting ICC, in [0, 1].
    cluster_size : float
        The starting (mean) cluster size ``m >= 1``.
    n_clusters : int
        The starting number of clusters ``J >= 1``.
    member_word, cluster_word : str
        What the observations and clusters are called ("pupils", "schools").
    ident : str
        The HTML id of the widget.

    Returns
    -------
    Html

    Examples
    --------
    >>> design_effect_calculator(0.05, 11, 30).params["n_clusters"]
    30
    >>> design_effect_calculator(1.5, 11, 30)
    Traceback (most recent call last):
    ...
    ValueError: icc must lie in [0, 1], got 1.5
    """
    ident = _ident(ident)
    if not 0 <= float(icc) <= 1:
        raise ValueError(f"icc must lie in [0, 1], got {icc!r}")
    if float(cluster_size) < 1:
        raise ValueError(f"cluster_size must be at least 1, got {cluster_size!r}")
    if int(n_clusters) < 1 or float(n_clusters) != int(n_clusters):
        raise ValueError(f"n_clusters must be a whole number >= 1, got {n_clusters!r}")
    m_max = max(200, math.ceil(float(cluster_size)))
    j_max = max(1000, int(n_clusters))
    params = {
        "icc": stable(icc),
        "cluster_size": stable(cluster_size),
        "n_clusters": int(n_clusters),
        "m_max": m_max,
        "j_max": j_max,
        "member_word": member_word,
        "cluster_word": cluster_word,
    }
    body = (
        '<div class="mlm-controls">'
        + _slider(ident, "icc", "Intraclass correlation, ICC", 0, 1, 0.005)
        + _slider(
            ident,
            "m",
            f"{html.escape(member_word).capitalize()} per "
            f"{html.escape(cluster_word[:-1] if cluster_word.endswith('s') else cluster_word)}"
            ", m",
            1,
            m_max,
            1,
        )
        + _slider(ident, "j", f"Number of {html.escape(cluster_word)}, J", 1, j_max, 1)
        + "</div>"
        f'<svg class="mlm-bars" id="{ident}-svg" viewBox="0 0 600 70" role="img" '
        f'aria-labelledby="{ident}-svgdesc"><desc id="{ident}-svgdesc">Two bars: the number of '
        f"{html.escape(member_word)} sampled and the effective sample size.</desc></svg>"
        + _result(ident)
        + '<p class="mlm-note">The formula assumes clusters of equal size m (with unequal sizes '
        "the mean size is a common approximation) and applies to the mean and to predictors that "
        "are constant within a cluster (for a predictor's coefficient, with the ICC of the "
        "residuals given the predictors); for a predictor that varies only within clusters the "
        "clustering costs little or nothing.</p>"
    )
    return _widget("design-effect", ident, params, "Try it: design effect calculator", body)


def slope_variance(
    tau0: float,
    tau1: float,
    rho: float,
    sigma: float,
    x_range: tuple[float, float],
    *,
    x_name: str = "x",
    unit: str = "",
    ident: str = "mlm-slope-variance",
) -> Html:
    """A slider for ``x`` that shows the between-group variance of a random-slope model there.

    The page computes ``v(x) = tau_0^2 + 2 rho tau_0 tau_1 x + tau_1^2 x^2`` (the variance of
    ``u_0j + u_1j x``) and the share ``v(x) / (v(x) + sigma^2)`` of the variance that lies between
    groups at ``x``, and draws the share against ``x``.

    Parameters
    ----------
    tau0, tau1 : float
        The standard deviations of the random intercepts and slopes.
    rho : float
        Their correlation, in [-1, 1].
    sigma : float
        The residual standard deviation.
    x_range : (float, float)
        The slider's range of ``x`` (the data's range, say).
    x_name : str
        The predictor's name, shown as the slider's label.
    unit : str
        The unit of the response, for the variances ("points").
    ident : str
        The HTML id of the widget.

    Returns
    -------
    Html

    Examples
    --------
    >>> slope_variance(2.0, 0.5, 0.3, 6.0, (-3, 3)).params["x_max"]
    3.0
    """
    ident = _ident(ident)
    tau0, sigma = _positive(tau0, "tau0"), _positive(sigma, "sigma")
    tau1 = float(tau1)
    if not math.isfinite(tau1) or tau1 < 0:
        raise ValueError(f"tau1 must be a standard deviation (>= 0), got {tau1!r}")
    if not -1 <= float(rho) <= 1:
        raise ValueError(f"rho must lie in [-1, 1], got {rho!r}")
    lo, hi = (float(v) for v in x_range)
    if not lo < hi:
        raise ValueError(f"x_range must be (low, high) with low < high, got {x_range!r}")
    params = {
        "tau0": stable(tau0),
        "tau1": stable(tau1),
        "rho": stable(rho),
        "sigma": stable(sigma),
        "x_min": stable(lo, 2),
        "x_max": stable(hi, 2),
        "x_name": x_name,
        "unit": unit,
    }
    body = (
        '<div class="mlm-controls">'
        + _slider(ident, "x", f"{html.escape(x_name)}, x", params["x_min"], params["x_max"], 0.05)
        + "</div>"
        f'<svg class="mlm-curve" id="{ident}-svg" viewBox="0 0 600 205" role="img" '
        f'aria-labelledby="{ident}-svgdesc"><desc id="{ident}-svgdesc">A curve of the share of the '
        f"variance between groups against {html.escape(x_name)}, with a marker at the chosen "
        "value.</desc></svg>" + _result(ident)
    )
    return _widget("slope-variance", ident, params, "Try it: the ICC depends on x", body)


# --------------------------------------------------------------------------------------------
# questions
# --------------------------------------------------------------------------------------------


def _close(a: float, b: float, rel_tol: float, abs_tol: float) -> bool:
    return abs(a - b) <= max(abs_tol, rel_tol * abs(b))


def number_question(
    ident: str,
    prompt: str,
    answer: float,
    *,
    right: str,
    otherwise: str,
    slips: Sequence[Slip] = (),
    rel_tol: float = REL_TOL,
    abs_tol: float = 0.0,
    unit: str = "",
) -> Html:
    """A question answered with a number, checked in the page.

    An answer within the tolerance of ``answer`` gets ``right``; one within the tolerance of a
    slip's value gets that slip's feedback; any other number gets ``otherwise``, which should say
    how the right answer is found. Answers may be written with a percent sign ("12.5 %" is 0.125).

    Parameters
    ----------
    ident : str
        The question's HTML id (lower case, digits, hyphens).
    prompt : str
        The question, as plain text (numbers in it formatted from computed values).
    answer : float
        The right answer, computed.
    right, otherwise : str
        Feedback for the right answer and for a number that matches no known slip.
    slips : sequence of Slip
        Wrong answers of known slips, each with feedback that names the slip.
    rel_tol, abs_tol : float
        An answer ``a`` counts as ``v`` when ``|a - v| <= max(abs_tol, rel_tol * |v|)``.
    unit : str
        Shown after the answer box.

    Returns
    -------
    Html

    Examples
    --------
    >>> q = number_question(
    ...     "q-icc", "tau^2 = 1 and sigma^2 = 3: what is the ICC?", 0.25,
    ...     right="Right: 1 / (1 + 3).", otherwise="Divide tau^2 by the total variance.",
    ...     slips=[Slip(1 / 3, "That is tau^2 / sigma^2: divide by the total, tau^2 + sigma^2.")])
    >>> q.params["answer"], q.params["slips"][0]["value"]
    (0.25, 0.3333)
    >>> number_question("q-x", "?", 1.0, right="yes", otherwise="no",
    ...                 slips=[Slip(1.001, "close")])
    Traceback (most recent call last):
    ...
    ValueError: question q-x: slip 1.001 is within the tolerance of the answer 1.0
    """
    ident = _ident(ident)
    answer = stable(answer)
    rel_tol, abs_tol = float(rel_tol), float(abs_tol)
    if rel_tol < 0 or abs_tol < 0 or (rel_tol == 0 and abs_tol == 0):
        raise ValueError(f"question {ident}: give a positive rel_tol or abs_tol")
    values = [answer]
    rows = []
    for slip in slips:
        value = stable(slip.value)
        for seen in values:
            if _close(value, seen, rel_tol, abs_tol) or _close(seen, value, rel_tol, abs_tol):
                what = "the answer" if seen == answer else "another slip"
                raise ValueError(
                    f"question {ident}: slip {value} is within the tolerance of {what} {seen}"
                )
        values.append(value)
        rows.append({"value": value, "feedback": _text(slip.feedback, "a slip's feedback")})
    params = {
        "kind": "number",
        "answer": answer,
        "rel_tol": rel_tol,
        "abs_tol": abs_tol,
        "right": _text(right, "right"),
        "otherwise": _text(otherwise, "otherwise"),
        "slips": rows,
    }
    unit_html = f'<span class="mlm-unit">{html.escape(unit)}</span>' if unit else ""
    body = (
        f'<form class="mlm-form" novalidate><label for="{ident}-answer">Your answer</label> '
        f'<input type="text" inputmode="decimal" id="{ident}-answer" name="answer" '
        f'autocomplete="off" size="10">{unit_html} '
        '<button type="submit">Check</button></form>'
        f'<p class="mlm-feedback" id="{ident}-feedback" role="status" aria-live="polite"></p>'
    )
    return _question(ident, params, prompt, body)


def choice_question(ident: str, prompt: str, choices: Sequence[Choice]) -> Html:
    """A question answered by choosing one option, checked in the page.

    Parameters
    ----------
    ident : str
        The question's HTML id.
    prompt : str
        The question, as plain text.
    choices : sequence of Choice
        The options, exactly one of them correct, each with its feedback (for a wrong option,
        the slip that leads to it).

    Returns
    -------
    Html

    Examples
    --------
    >>> q = choice_question("q-pool", "Which groups are pulled hardest?", [
    ...     Choice("the small ones", "Right: their means are the noisiest.", correct=True),
    ...     Choice("the large ones", "Large groups keep most of their own mean.")])
    >>> q.params["choices"][0]["correct"]
    True
    """
    ident = _ident(ident)
    if sum(bool(c.correct) for c in choices) != 1 or len(choices) < 2:
        raise ValueError(f"question {ident}: give at least two choices, exactly one correct")
    rows = [
        {
            "label": _text(c.label, "a choice's label"),
            "feedback": _text(c.feedback, "a choice's feedback"),
            "correct": bool(c.correct),
        }
        for c in choices
    ]
    params = {"kind": "choice", "choices": rows}
    options = "".join(
        f'<div class="mlm-choice"><input type="radio" name="{ident}-choice" id="{ident}-c{i}" '
        f'value="{i}"><label for="{ident}-c{i}">{html.escape(r["label"])}</label></div>'
        for i, r in enumerate(rows)
    )
    body = (
        f'<form class="mlm-form" novalidate><fieldset><legend class="mlm-sr">Options</legend>'
        f"{options}</fieldset>"
        '<button type="submit">Check</button></form>'
        f'<p class="mlm-feedback" id="{ident}-feedback" role="status" aria-live="polite"></p>'
    )
    return _question(ident, params, prompt, body)


def _question(ident: str, params: dict[str, Any], prompt: str, body: str) -> Html:
    data = _data(params)
    page = (
        f'<div class="mlm-question" id="{ident}" data-mlm-widget="question" '
        f'data-mlm-params="{data}" role="group" aria-labelledby="{ident}-prompt">\n'
        f'<p class="mlm-question-title">Check yourself</p>\n'
        f'<p class="mlm-prompt" id="{ident}-prompt">{html.escape(_text(prompt, "prompt"))}</p>\n'
        f"{body}\n"
        '<p class="mlm-noscript">The answer is checked in the book\'s web page, where its script '
        "runs.</p>\n</div>"
    )
    return Html("question", ident, params, page)
