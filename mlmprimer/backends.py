"""statsmodels' MixedLM as a cross-check of the fit: its spelling of a model, and its fit.

:func:`sm_spec` writes a design in MixedLM's terms (``groups``, ``re_formula``,
``vc_formula``), :func:`statsmodels_spec` does so from a formula and data (the benchmarks use
it), and :func:`fit_statsmodels` fits with MixedLM and checks its optimum against ours
(``lmer(..., backend="statsmodels")``).

Examples
--------
>>> from mlmprimer.backends import statsmodels_spec
>>> from mlmprimer.datasets import load
>>> spec = statsmodels_spec("diameter ~ 1 + (1 | plate) + (1 | sample)", load("penicillin"))
>>> spec.kwargs()["vc_formula"]
{'plate': '0 + C(plate)', 'sample': '0 + C(sample)'}
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .design import Design, model_design
from .factor import profiled_deviance
from .formula import ParsedFormula, r_only_parts
from .optimize import ThetaFit

__all__ = ["SmSpec", "fit_statsmodels", "sm_spec", "statsmodels_spec"]


@dataclass
class SmSpec:
    """A model in statsmodels MixedLM's terms.

    Attributes
    ----------
    fixed : str
        The fixed part, in patsy's spelling.
    groups : str or None
        The ``groups`` column; None: one group holding every row (crossed factors).
    re_formula : str or None
    re_term : int or None
        Index in ``design.terms`` of the term in ``re_formula``.
    vc : dict
        ``vc_formula`` name -> (formula, index of the term in ``design.terms``).
    """

    fixed: str
    groups: str | None
    re_formula: str | None
    re_term: int | None
    vc: dict[str, tuple[str, int]]

    def kwargs(self) -> dict[str, Any]:
        """``fixed``, ``groups``, and where needed ``re_formula`` and ``vc_formula``.

        Examples
        --------
        >>> from mlmprimer.backends import statsmodels_spec
        >>> from mlmprimer.datasets import load
        >>> statsmodels_spec("Reaction ~ Days + (Days | Subject)", load("sleepstudy")).kwargs()
        {'fixed': 'Reaction ~ Days', 'groups': 'Subject', 're_formula': '~Days'}
        """
        out: dict[str, Any] = {"fixed": self.fixed, "groups": self.groups}
        if self.re_formula is not None:
            out["re_formula"] = self.re_formula
        if self.vc:
            out["vc_formula"] = {k: v[0] for k, v in self.vc.items()}
        return out

    def code(self, data_name: str, REML: bool) -> str:
        """The ``smf.mixedlm(...).fit(...)`` call as text."""
        data = data_name if self.groups else f"{data_name}.assign(group=1)"
        args = [f'"{self.fixed}"', data, f'groups="{self.groups or "group"}"']
        if self.re_formula is not None:
            args.append(f're_formula="{self.re_formula}"')
        if self.vc:
            inner = ", ".join(f'"{k}": "{v[0]}"' for k, v in self.vc.items())
            args.append(f"vc_formula={{{inner}}}")
        return f'smf.mixedlm({", ".join(args)}).fit(reml={REML}, method=["bfgs", "lbfgs"])'


def _strip_zero(expr: str) -> str:
    e = re.sub(r"^\s*0\s*\+\s*", "", expr)
    e = re.sub(r"\s*[-]\s*1\s*$", "", e)
    return e.strip()


def _vc_formula(term: Any, within: tuple[str, ...]) -> str:
    facs = [f for f in term.factors if f not in within] or list(term.factors)
    cats = ":".join(f"C({f})" for f in facs)
    if term.has_intercept:
        return f"0 + {cats}"
    return f"0 + {cats}:{_strip_zero(term.expr)}"


def sm_spec(design: Design, parsed: ParsedFormula) -> SmSpec:
    """The MixedLM spelling of a design, or NotImplementedError naming what it cannot fit.

    An outer factor in which every other term is nested becomes ``groups``, its correlated
    term ``re_formula`` and the other terms variance components; without one (crossed
    factors) one group holds every row and every term is a variance component.
    """
    r_only = r_only_parts(parsed)
    if r_only or parsed.offsets:
        raise NotImplementedError(
            "statsmodels reads formulas with patsy, where R's spelling "
            f"({', '.join(repr(p) for p in r_only) or 'offset()'}) means something else or "
            "nothing: use backend='mlmprimer', or write the formula in Python's spelling"
        )
    terms = design.terms
    groups = list(dict.fromkeys(t.group for t in terms))
    # an outer factor inside which every other term is nested
    outer = None
    for g in groups:
        gt = next(t for t in terms if t.group == g)
        if len(gt.factors) == 1 and all(set(gt.factors) <= set(t.factors) for t in terms):
            outer = gt.factors[0]
            break
    names: dict[str, int] = {}

    def vc_name(t: Any) -> str:
        base = (
            "_".join(t.factors)
            if t.has_intercept
            else f"{'_'.join(t.factors)}_{_strip_zero(t.expr)}"
        )
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in base)
        names[base] = names.get(base, 0) + 1
        return base if names[base] == 1 else f"{base}{names[base]}"

    if outer is None:
        vec = [t for t in terms if t.p > 1]
        if vec:
            t = vec[0]
            raise NotImplementedError(
                f"statsmodels MixedLM cannot fit the correlated term ({t.term.expr} | {t.group}) "
                "together with a crossed grouping factor: write it as "
                f"({_strip_zero(t.term.expr) or '1'} || {t.group}) (uncorrelated effects), "
                "or use backend='mlmprimer'"
            )
        vc = {vc_name(t): (_vc_formula(t, ()), k) for k, t in enumerate(terms)}
        return SmSpec(parsed.fixed_formula, None, None, None, vc)
    own = [k for k, t in enumerate(terms) if t.factors == (outer,)]
    vec = [k for k in own if terms[k].p > 1]
    if len(vec) > 1:
        t = terms[vec[1]]
        raise NotImplementedError(
            f"statsmodels MixedLM allows one correlated term per group; ({t.term.expr} | "
            f"{t.group}) is a second one: merge the terms or use backend='mlmprimer'"
        )
    others_vec = [t for t in terms if t.factors != (outer,) and t.p > 1]
    if others_vec:
        t = others_vec[0]
        raise NotImplementedError(
            f"statsmodels MixedLM cannot fit the correlated nested term ({t.term.expr} | "
            f"{t.group}): write ({_strip_zero(t.term.expr) or '1'} || {t.group}) or use "
            "backend='mlmprimer'"
        )
    re_term = vec[0] if vec else next((k for k in own if terms[k].has_intercept), None)
    re_formula = None
    if re_term is not None:
        t = terms[re_term]
        re_formula = "1" if t.p == 1 else f"~{t.term.expr}"
    vc = {}
    for k, t in enumerate(terms):
        if k == re_term:
            continue
        if t.factors == (outer,):
            vc[vc_name(t)] = (f"0 + {_strip_zero(t.term.expr)}", k)
        else:
            vc[vc_name(t)] = (_vc_formula(t, (outer,)), k)
    if re_formula == "1" and not vc:
        re_formula = None
    return SmSpec(parsed.fixed_formula, outer, re_formula, re_term, vc)


def fit_statsmodels(
    design: Design,
    parsed: ParsedFormula,
    spec: SmSpec,
    data: pd.DataFrame,
    REML: bool,
    ours: ThetaFit,
    tol: float = 2e-3,
) -> np.ndarray:
    """Fit with statsmodels and return the theta its estimates imply (checked against ours).

    Each of MixedLM's optimisers is tried in turn until one comes within ``tol`` deviance
    units of our optimum (``ours``); a result further off raises rather than being returned.
    """
    import statsmodels.formula.api as smf

    df = data.copy()
    if spec.groups is None:
        df["_group_all"] = 1
        groups = "_group_all"
    else:
        groups = spec.groups
    kwargs: dict[str, Any] = {"groups": groups}
    if spec.re_formula is not None:
        kwargs["re_formula"] = spec.re_formula
    if spec.vc:
        kwargs["vc_formula"] = {k: v[0] for k, v in spec.vc.items()}
    model = smf.mixedlm(spec.fixed, df, **kwargs)
    best: tuple[float, np.ndarray] | None = None
    errors = []
    for method in (["lbfgs"], ["bfgs"], ["powell", "lbfgs"], ["nm", "bfgs"], None):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = model.fit(reml=REML, method=method) if method else model.fit(reml=REML)
            theta = _theta_from_sm(res, design, spec)
            dev = profiled_deviance(theta, design, REML)
        except Exception as err:  # a failed method: try the next one
            errors.append(f"{method}: {err}")
            continue
        if best is None or dev < best[0]:
            best = (dev, theta)
        if dev - ours.deviance <= tol:
            break
    if best is None:
        raise RuntimeError("statsmodels MixedLM failed with every method: " + "; ".join(errors))
    dev, theta = best
    if dev - ours.deviance > tol:
        raise RuntimeError(
            "statsmodels MixedLM stopped short of the maximum: its estimates give "
            f"logLik {-dev / 2:.4f} but the maximum is {-ours.deviance / 2:.4f} "
            f"({(dev - ours.deviance) / 2:.4f} lower); refusing to return a wrong fit — "
            "use backend='mlmprimer'"
        )
    return theta


def _theta_from_sm(res: Any, design: Design, spec: SmSpec) -> np.ndarray:
    scale = float(res.scale)
    theta = np.zeros_like(design.theta0)
    terms = design.terms
    if spec.re_term is not None:
        t = terms[spec.re_term]
        cov = np.asarray(res.cov_re, dtype=float) / scale
        if cov.shape != (t.p, t.p):
            raise RuntimeError("unexpected random-effects covariance shape from statsmodels")
        T = _chol_psd(cov)
        rows, cols = np.tril_indices(t.p)
        order = np.lexsort((rows, cols))
        theta[t.theta_slice] = T[rows[order], cols[order]]
    names = list(res.model.exog_vc.names) if spec.vc else []
    vcomp = np.asarray(res.vcomp, dtype=float) if spec.vc else np.array([])
    for name, (_, k) in spec.vc.items():
        theta[terms[k].theta_slice] = math.sqrt(max(vcomp[names.index(name)], 0.0) / scale)
    return np.maximum(theta, design.lower)


def _chol_psd(cov: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        half = v * np.sqrt(np.clip(w, 0, None))
        _, r = np.linalg.qr(half.T)
        L = r.T
        return L * np.sign(np.where(np.diag(L) == 0, 1, np.diag(L)))


def statsmodels_spec(formula: str, data: pd.DataFrame) -> SmSpec:
    """The MixedLM spelling of ``formula`` fitted to ``data``.

    Raises
    ------
    NotImplementedError
        For models MixedLM cannot express.

    Examples
    --------
    >>> from mlmprimer.backends import statsmodels_spec
    >>> from mlmprimer.datasets import load
    >>> spec = statsmodels_spec("strength ~ 1 + (1 | batch/cask)", load("pastes"))
    >>> spec.groups, spec.re_formula, spec.kwargs()["vc_formula"]
    ('batch', '1', {'cask_batch': '0 + C(cask)'})
    """
    md = model_design(formula, data)
    return sm_spec(md.design, md.parsed)
