"""Predictions of a fitted model for new data (lme4's ``predict(m, newdata, re.form)``).

The fixed-effects columns of new data are built from the fit's patsy design information (so
``poly()``, ``scale()`` and factor codings are those of the fit), and each random term adds the
conditional modes of the levels it knows; levels not seen in the fit get effects of 0.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import patsy

from .formula import formula_variables, lme4_name
from .model import LmerModel, LmerWarning
from .rterms import offset_values

__all__ = ["predict"]


def _level_positions(levels: pd.Index, keys: pd.Index) -> np.ndarray:
    """Positions of ``keys`` among a grouping factor's ``levels`` (-1 for a level not seen).

    Keys that do not match as they are are matched by their text, so ``308`` finds the level
    ``"308"`` of a factor read as strings.
    """
    idx = levels.get_indexer(keys)
    missing = idx < 0
    if missing.any():
        by_text = levels.astype(str).get_indexer(keys[missing].astype(str))
        idx[missing] = by_text
    return idx


def predict(model: LmerModel, newdata: pd.DataFrame | None = None, re: bool = True) -> pd.Series:
    """Predictions; with ``re=False`` population-level (fixed effects only).

    Levels of a grouping factor not seen in the fit get random effects of zero.

    Parameters
    ----------
    newdata : pandas.DataFrame, optional
        Default: the rows used in the fit.
    re : bool, default True
        Include the random effects.

    Returns
    -------
    pandas.Series

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.datasets import load
    >>> from mlmprimer.model import lmer
    >>> from mlmprimer.prediction import predict
    >>> m = lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    >>> new = pd.DataFrame({"Days": [0, 10], "Subject": ["308", "999"]})
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     p = predict(m, new)
    >>> p.round(1).tolist()  # 999 is a new subject: population line
    [253.7, 356.1]
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    1 row(s) of newdata have levels of 'Subject' the fit did not see (999): ...
    """
    if newdata is None:
        if re:
            return model.fitted().rename("predicted")
        return pd.Series(
            model.design.X @ model.fixef.to_numpy() + model.offset.to_numpy(),
            index=model.design.index,
            name="predicted",
        )
    if not isinstance(newdata, pd.DataFrame):
        raise TypeError("newdata must be a pandas DataFrame")
    _check_newdata(model, newdata, re)
    (mat,) = patsy.build_design_matrices(
        [model.design.fixed_info], newdata, NA_action="raise", return_type="dataframe"
    )
    Xn = pd.DataFrame(np.asarray(mat), columns=[lme4_name(c) for c in mat.columns])
    Xn = Xn[model.design.xnames]
    pred = Xn.to_numpy() @ model.fixef.to_numpy() + _newdata_offset(model, newdata)
    if re:
        for t, b in zip(model.design.terms, model.solution.b, strict=True):
            for f in t.factors:
                if f not in newdata.columns:
                    raise ValueError(
                        f"newdata has no column {f!r} (grouping factor {t.group!r}); "
                        "use re=False for population-level predictions"
                    )
            (Xi,) = patsy.build_design_matrices([t.design_info], newdata, NA_action="raise")
            Xi = np.asarray(Xi)
            if len(t.factors) == 1:
                keys = pd.Index(newdata[t.factors[0]])
            else:
                keys = pd.Index(
                    newdata[list(t.factors)].astype(str).agg(":".join, axis=1).to_numpy()
                )
            idx = _level_positions(t.levels, keys)
            seen = idx >= 0
            if not seen.all():
                unseen = pd.unique(keys[~seen].astype(str))
                warnings.warn(
                    f"{(~seen).sum()} row(s) of newdata have levels of {t.group!r} the fit "
                    f"did not see ({', '.join(unseen[:5])}"
                    f"{', ...' if len(unseen) > 5 else ''}): their {t.group} effects are 0, "
                    "so they get the population-level prediction",
                    LmerWarning,
                    stacklevel=3,
                )
            contrib = np.zeros(len(newdata))
            contrib[seen] = np.sum(Xi[seen] * b[idx[seen]], axis=1)
            pred = pred + contrib
    return pd.Series(pred, index=newdata.index, name="predicted")


def _newdata_offset(model: LmerModel, newdata: pd.DataFrame) -> np.ndarray | float:
    """The offset for new data: the formula's offset() terms and a text ``offset=``."""
    texts = list(model.parsed.offsets)
    if isinstance(model.offset_arg, str):
        texts.append(model.offset_arg)
    elif model.offset_arg is not None:
        warnings.warn(
            "the offset= values given to lmer belong to the rows of the fit, so they are not "
            "added to predictions for newdata (write offset() in the formula, or offset= as "
            "an expression of the columns, to have them)",
            LmerWarning,
            stacklevel=4,
        )
    if not texts:
        return 0.0
    spec = dataclasses.replace(model.parsed, offsets=tuple(texts))
    values = offset_values(spec, newdata.reset_index(drop=True), model.eval_env)
    return np.asarray(values, dtype=float)


def _check_newdata(model: LmerModel, newdata: pd.DataFrame, re: bool) -> None:
    """Name a data column the predictions need that ``newdata`` lacks or has NaN in."""
    parts = [model.parsed.fixed, *model.parsed.offsets] + [
        t.expr for t in model.parsed.random if re
    ]
    if isinstance(model.offset_arg, str):
        parts.append(model.offset_arg)
    for part in parts:
        for name in formula_variables(part):
            if name not in model.data.columns:
                continue  # a name from the caller's namespace
            if name not in newdata.columns:
                raise ValueError(
                    f"newdata has no column {name!r}, which the formula {model.formula!r} uses"
                )
            if newdata[name].isna().any():
                raise ValueError(f"newdata has missing values in column {name!r}")
