"""Every check of the data before a design is built, in one place.

:func:`validate_data` runs on the data given to :func:`mlmprimer.lmer` (through
:func:`mlmprimer.design.model_design`): unknown columns, infinite values, missing values
(rows dropped, with a warning), object columns, a constant, binary-looking or count-like
response, text levels R orders differently, weights and offsets. The checks of the design
itself (grouping factors, rank, number of random effects) are in
:func:`mlmprimer.design.build_design`.

Examples
--------
>>> import pandas as pd
>>> from mlmprimer.validate import validate_data
>>> from mlmprimer.formula import parse_formula
>>> df = pd.DataFrame({"y": [1.0, 2.5, None, 4.0], "g": ["a", "a", "b", "b"]})
>>> checked = validate_data(parse_formula("y ~ 1 + (1 | g)"), df)
>>> len(checked.data), checked.notes[0][:30]
(3, "1 row with missing values in '")
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .formula import (
    FormulaError,
    ParsedFormula,
    check_columns,
    formula_variables,
    r_text,
)
from .rterms import all_finite, eval_namespace, expression_values, response_values, rhs_terms

__all__ = ["CheckedData", "check_finite", "check_response", "validate_data"]


@dataclass
class CheckedData:
    """The rows and columns a model will use, after :func:`validate_data`.

    Attributes
    ----------
    data : pandas.DataFrame
        The rows used (rows with missing values dropped), object columns converted.
    used : list of str
        The data columns the formula uses.
    weights : numpy.ndarray or None
        Prior weights, one per row used.
    offset : numpy.ndarray or None
        The ``offset=`` argument, one value per row used (the formula's ``offset()`` terms are
        part of the design).
    notes : list of str
        Warnings for the user, in order.

    Examples
    --------
    >>> import pandas as pd
    >>> from mlmprimer.validate import validate_data
    >>> from mlmprimer.formula import parse_formula
    >>> df = pd.DataFrame({"y": [1.0, 2.5, None, 4.0], "g": list("abab")})
    >>> checked = validate_data(parse_formula("y ~ 1 + (1 | g)"), df)
    >>> len(checked.data), checked.notes
    (3, ["1 row with missing values in 'y' dropped (like R's na.omit); 3 rows used"])
    """

    data: pd.DataFrame
    used: list[str]
    weights: np.ndarray | None = None
    offset: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def _rows(index: pd.Index, mask: np.ndarray, limit: int = 5) -> str:
    labels = [str(x) for x in index[mask][:limit]]
    more = ", ..." if int(mask.sum()) > limit else ""
    return ", ".join(labels) + more


def _value_kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | float | np.integer | np.floating) or type(value).__name__ in (
        "Decimal",
        "Fraction",
    ):
        return "number"
    return type(value).__name__


def _mixed_labels(col: str, values: Sequence[Any]) -> None:
    """Refuse labels that differ in pandas but are one label in R (1 and "1")."""
    texts = {v for v in values if isinstance(v, str)}
    for v in values:
        if not isinstance(v, str) and r_text(v) in texts:
            raise ValueError(
                f"column {col!r} holds both the number {v!r} and the text {r_text(v)!r}: "
                "pandas keeps them apart (two groups or levels) while R reads them as the "
                f"one label {r_text(v)!r}; convert the column first, e.g. "
                f"data[{col!r}] = data[{col!r}].astype(str)"
            )


def _check_column(col: str, s: pd.Series, roles: set[str], notes: list[str]) -> pd.Series:
    """The column as the model will use it: refuse what cannot be used, convert with a note."""
    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype):
        if dt.categories.dtype == object:
            _mixed_labels(col, list(dt.categories))
        return s
    if pd.api.types.is_datetime64_any_dtype(dt) or pd.api.types.is_timedelta64_dtype(dt):
        raise ValueError(
            f"column {col!r} has dtype {dt}: lmer needs numbers or labels; convert it, e.g. "
            f"to days since the start with (data[{col!r}] - data[{col!r}].min()).dt.days"
        )
    if not pd.api.types.is_object_dtype(dt):
        return s
    present = s[s.notna()]
    kinds = {_value_kind(v) for v in present}
    odd = kinds - {"text", "number", "bool"}
    if odd:
        example = next(v for v in present if _value_kind(v) in odd)
        raise ValueError(
            f"column {col!r} (dtype object) holds {type(example).__name__} values such as "
            f"{example!r}: lmer needs numbers or text labels in it"
        )
    if not kinds or kinds == {"text"}:
        return s
    if kinds == {"bool"}:
        return s if s.isna().any() else s.astype(bool)
    if "text" in kinds:
        _mixed_labels(col, list(pd.unique(present)))
        notes.append(
            f"column {col!r} mixes numbers and text: its values are used as text labels, as R "
            "reads such a column"
        )
        return s.map(lambda v: v if isinstance(v, str) or pd.isna(v) else r_text(v))
    if roles - {"group"}:
        notes.append(
            f"column {col!r} has dtype object but holds numbers: it is used as numeric, as R "
            f"would use it (convert it with pd.to_numeric to silence this, or make it a "
            "pd.Categorical for a factor)"
        )
        return s.astype(float)
    return s


def _r_collation_key(text: str) -> tuple[Any, ...]:
    """A sort key close to R's in a UTF-8 locale (ICU's root collation).

    Compared first by base letters ignoring case and accents (spaces and punctuation before
    digits before letters), then by accents, then lower case before upper case.
    """
    decomposed = unicodedata.normalize("NFD", text)
    base = [c for c in decomposed if not unicodedata.combining(c)]

    def group(c: str) -> int:
        if c.isspace():
            return 0
        if unicodedata.category(c)[0] in "PS":
            return 1
        if c.isdigit():
            return 2
        return 3

    primary = tuple((group(c), c.casefold()) for c in base)
    secondary = tuple(unicodedata.combining(c) for c in decomposed)
    tertiary = tuple(1 if c.isupper() else 0 for c in base)
    return primary, secondary, tertiary


def _level_order_note(col: str, s: pd.Series) -> str | None:
    """A note when R would order the text levels of ``col`` differently (another reference)."""
    if isinstance(s.dtype, pd.CategoricalDtype) or not (
        s.dtype == object or pd.api.types.is_string_dtype(s.dtype)
    ):
        return None
    levels = sorted({v for v in s.dropna() if isinstance(v, str)})
    if len(levels) < 2:
        return None
    r_levels = sorted(levels, key=_r_collation_key)
    if levels == r_levels:
        return None

    def show(lv: list[str]) -> str:
        return ", ".join(repr(v) for v in lv[:6]) + (", ..." if len(lv) > 6 else "")

    return (
        f"the text levels of {col!r} are in Python's order ({show(levels)}; reference level "
        f"{levels[0]!r}), while R in a UTF-8 locale sorts them {show(r_levels)} (reference "
        f"{r_levels[0]!r}), so the coefficients of {col!r} differ from lme4's; make {col!r} a "
        "pd.Categorical with the levels in the order you want"
    )


def _roles(parsed: ParsedFormula) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    for nm in formula_variables(parsed.response):
        roles.setdefault(nm, set()).add("response")
    for part in [parsed.fixed, *parsed.offsets, *(t.expr for t in parsed.random)]:
        for nm in formula_variables(part):
            roles.setdefault(nm, set()).add("predictor")
    for part in [parsed.fixed, *(t.expr for t in parsed.random)]:
        for nm in _factor_names(part):
            roles.setdefault(nm, set()).add("factor")
    for t in parsed.random:
        for nm in t.factors:
            roles.setdefault(nm, set()).add("group")
    return roles


def _factor_names(text: str) -> list[str]:
    """Columns used directly as terms, or inside factor() / C(): those coded as factors."""
    try:
        alg, _, _ = rhs_terms(text)
    except FormulaError:
        return []
    out = []
    for atom in alg.atoms:
        node = atom.node
        if node.kind == "call" and node.value in ("factor", "as.factor", "C") and node.args:
            if len(node.args) == 1:
                node = node.args[0]
        if node.kind == "name":
            out.append(node.value)
    return out


def _argument(name: str, value: Any, data: pd.DataFrame) -> tuple[np.ndarray | None, str | None]:
    """An array argument (weights, offset) as floats aligned with the rows of ``data``."""
    if value is None:
        return None, None
    if isinstance(value, str):
        return None, value
    if isinstance(value, pd.Series):
        if value.index.equals(data.index):
            s = value
        elif data.index.isin(value.index).all() and value.index.is_unique:
            s = value.reindex(data.index)
        else:
            raise ValueError(
                f"{name} is a Series whose index does not hold the rows of the data: pass one "
                "value per row, with the data's index or as an array"
            )
        arr = s.to_numpy(dtype=float, na_value=np.nan)
    else:
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be numbers, one per row of the data") from None
    if arr.ndim != 1 or len(arr) != len(data):
        raise ValueError(
            f"{name} has {arr.size} values for {len(data)} rows of data: give one per row"
        )
    return arr, None


def _check_weights(w: np.ndarray, index: pd.Index) -> None:
    bad = ~np.isfinite(w)
    if bad.any():
        raise ValueError(f"weights are not finite in rows {_rows(index, bad)}")
    neg = w < 0
    if neg.any():
        raise ValueError(f"weights must be positive; they are negative in rows {_rows(index, neg)}")
    zero = w == 0
    if zero.any():
        raise ValueError(
            f"weights are 0 in rows {_rows(index, zero)}: lme4's log-likelihood is then -Inf; "
            "drop those rows instead"
        )


def check_response(name: str, y: np.ndarray, index: pd.Index, notes: list[str]) -> None:
    """Raise for a response that is not finite or constant; note one that looks binary or
    like counts (appended to ``notes``).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from mlmprimer.validate import check_response
    >>> notes = []
    >>> check_response("y", np.array([0.0, 1.0, 1.0]), pd.RangeIndex(3), notes)
    >>> notes[0][:40]
    "the response 'y' takes only two values ("
    """
    bad = None if all_finite(y) else ~np.isfinite(y)
    if bad is not None and bad.any():
        vals = ", ".join(str(v) for v in pd.unique(y[bad])[:3])
        raise ValueError(
            f"the response {name!r} is not finite ({vals}) in {int(bad.sum())} row"
            f"{'s' if bad.sum() > 1 else ''} (rows {_rows(index, bad)}): lme4 refuses that too "
            "(NA/NaN/Inf in 'y'); replace or drop those rows"
        )
    if y.size == 0:
        return
    # the smallest and largest values and whether there are others: passes over y, no sort
    lo, hi = float(np.min(y)), float(np.max(y))
    if lo == hi:
        raise ValueError(
            f"the response {name!r} is constant (every value is {lo:g}): there is no "
            "variation for a model to explain"
        )
    # a third value among the first rows settles it without a pass over every row
    head = y[:1000]
    if not np.any((head != lo) & (head != hi)) and np.all((y == lo) | (y == hi)):
        notes.append(
            f"the response {name!r} takes only two values ({lo:g} and {hi:g}): "
            "lmer fits a linear (Gaussian) model to it; for a binary outcome a binomial model "
            "(lme4's glmer(..., family = binomial)) is usually meant"
        )
    elif lo == 0 and np.all(y == np.round(y)) and np.median(y) <= 20:
        notes.append(
            f"the response {name!r} holds whole numbers from 0 to {hi:g} (median "
            f"{np.median(y):g}): if these are counts, a Poisson model (lme4's glmer(..., "
            "family = poisson)) may be meant; lmer treats them as normally distributed"
        )


def validate_data(
    parsed: ParsedFormula,
    data: pd.DataFrame,
    eval_env: Any = None,
    *,
    weights: Any = None,
    offset: Any = None,
    check_y: bool = True,
) -> CheckedData:
    """Check and prepare the data for a model, before any design is built.

    Every problem that would give a silently wrong model is an error or a note naming the
    column:

    * unknown columns (with close matches);
    * infinite values in a column, in ``weights`` or in ``offset`` (an error, as in lme4);
      missing values drop their rows (a note with the count, as R's ``na.omit``);
    * object columns: numbers in them are used as numbers (a note), a mix of numbers and text
      as text labels (a note), the same label as a number and as text (``1`` and ``"1"``) or
      other objects are refused; datetime columns are refused;
    * a response that is not numeric, not finite or constant (errors), or that looks binary
      or like counts (a note pointing to a binomial or Poisson model);
    * text levels of a factor that R would sort in another order, so that its reference level
      differs from lme4's (a note);
    * weights that are missing (the row is dropped), negative or zero (errors).

    Parameters
    ----------
    parsed : ParsedFormula
    data : pandas.DataFrame
    eval_env : mapping or patsy.EvalEnvironment, optional
        Where names that are not columns are looked up.
    weights, offset : array-like, pandas.Series or str, optional
        One value per row of ``data`` (a Series is aligned by its index), or an expression
        in the data's columns such as ``"1 / v"`` or ``"log(n)"``.
    check_y : bool, default True
        Run :func:`check_response` (the checks of a Gaussian response); ``glmer`` checks its
        response against the family instead.

    Returns
    -------
    CheckedData

    Raises
    ------
    ValueError
        Naming the column (or ``weights``/``offset``) and the problem.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlmprimer.validate import validate_data
    >>> from mlmprimer.formula import parse_formula
    >>> df = pd.DataFrame({"y": [1.0, 2.0, 3.0, 5.0], "x": [0.0, np.inf, 1.0, 2.0],
    ...                    "g": list("abab")})
    >>> validate_data(parse_formula("y ~ x + (1 | g)"), df)
    Traceback (most recent call last):
    ...
    ValueError: column 'x' has infinite values (inf) in 1 row (row 1): ...
    """
    namespace = eval_namespace(eval_env)
    used = check_columns(parsed, data, namespace)
    roles = _roles(parsed)
    w_arr, w_text = _argument("weights", weights, data)
    o_arr, o_text = _argument("offset", offset, data)
    extra = []
    for text in (w_text, o_text):
        if text is not None:
            extra_parsed = ParsedFormula(parsed.formula, "0", "1", (), (text,))
            extra += check_columns(extra_parsed, data, namespace)
            for nm in formula_variables(text):
                roles.setdefault(nm, set()).add("predictor")
    used_all = list(dict.fromkeys(used + extra))
    notes: list[str] = []
    frame: dict[str, pd.Series] = {}
    coerced: list[str] = []
    for col in used_all:
        s = data[col]
        new = _check_column(col, s, roles.get(col, set()), notes)
        frame[col] = new
        if new is not s:
            coerced.append(col)
    complete = set()  # columns with no missing and no infinite values
    for col in used_all:
        s = frame[col]
        if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iub":
            complete.add(col)  # numpy's integers and booleans hold no missing values
            continue
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            vals = s.to_numpy(dtype=float, na_value=np.nan)
            if vals.dtype == np.float64 and all_finite(vals):
                complete.add(col)
                continue
            bad = np.isinf(vals)
            if bad.any():
                signs = ", ".join(str(v) for v in pd.unique(vals[bad]))
                raise ValueError(
                    f"column {col!r} has infinite values ({signs}) in {int(bad.sum())} row"
                    f"{'s' if bad.sum() > 1 else ''} (row{'s' if bad.sum() > 1 else ''} "
                    f"{_rows(data.index, bad)}): lme4 refuses them too (NA/NaN/Inf); replace "
                    "them or drop those rows"
                )
    for name, arr in (("weights", w_arr), ("offset", o_arr)):
        if arr is not None and np.isinf(arr).any():
            bad = np.isinf(arr)
            raise ValueError(
                f"{name} has infinite values in rows {_rows(data.index, bad)}: lme4 refuses them"
            )
    missing = np.zeros(len(data), dtype=bool)
    miss_cols = []
    for col in used_all:
        if col in complete:
            continue
        m = frame[col].isna().to_numpy()
        if m.any():
            missing |= m
            miss_cols.append(repr(col))
    for name, arr in (("weights", w_arr), ("offset", o_arr)):
        if arr is not None and np.isnan(arr).any():
            missing |= np.isnan(arr)
            miss_cols.append(name)
    nmiss = int(missing.sum())
    if nmiss:
        notes.append(
            f"{nmiss} row{'s' if nmiss > 1 else ''} with missing values in "
            f"{', '.join(miss_cols)} dropped (like R's na.omit); "
            f"{len(data) - nmiss} rows used"
        )
    # without missing values, every row: a (copy-on-write) view rather than a copy of the data
    clean = data.loc[~missing] if nmiss else data.copy(deep=False)
    if len(clean) == 0:
        raise ValueError("no rows left after dropping rows with missing values")
    if coerced:
        clean = clean.copy()
        for col in coerced:
            clean[col] = frame[col].loc[clean.index]
    keep = ~missing

    def evaluated(text: str | None, arr: np.ndarray | None, name: str) -> np.ndarray | None:
        if text is not None:
            vals = expression_values(text, clean, eval_env, name)
            bad = ~np.isfinite(vals)
            if bad.any():
                raise ValueError(f"{name} {text!r} is not finite in rows {_rows(clean.index, bad)}")
            return vals
        return None if arr is None else arr[keep]

    w = evaluated(w_text, w_arr, "weights")
    if w is not None:
        _check_weights(w, clean.index)
    o = evaluated(o_text, o_arr, "offset")
    if check_y:
        y = response_values(parsed, clean, eval_env)
        check_response(parsed.response, y, clean.index, notes)
    for col in used_all:
        if "factor" in roles.get(col, set()):
            note = _level_order_note(col, clean[col])
            if note:
                notes.append(note)
    return CheckedData(clean, used, w, o, notes)


def check_finite(values: np.ndarray, names: Sequence[str], what: str, index: pd.Index) -> None:
    """Raise if computed columns (``log(x)`` at x = 0, ...) are not finite, naming the column.

    Parameters
    ----------
    values : numpy.ndarray, shape (n,) or (n, k)
    names : sequence of str
        Names of the columns.
    what : str
        What the columns are, for the message (``"fixed-effects column"``, ...).
    index : pandas.Index
        Row labels.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mlmprimer.validate import check_finite
    >>> check_finite(np.array([[1.0], [-np.inf]]), ["log(x)"], "column", pd.RangeIndex(2))
    Traceback (most recent call last):
    ...
    ValueError: the column 'log(x)' is not finite (-inf) in row 1: ...
    """
    vals = values.reshape(len(values), -1)
    if all_finite(vals):  # one pass; a sum that overflows is looked at column by column
        return
    for j, name in enumerate(names):
        bad = ~np.isfinite(vals[:, j])
        if bad.any():
            shown = ", ".join(str(v) for v in pd.unique(vals[bad, j])[:3])
            k = int(bad.sum())
            raise ValueError(
                f"the {what} {name!r} is not finite ({shown}) in {'row' if k == 1 else 'rows'} "
                f"{_rows(index, bad)}: check the values its expression is applied to (log of "
                "0 or of negative numbers, division by 0, ...)"
            )


# ----------------------------------------------------------------------------------------------
# update
# ----------------------------------------------------------------------------------------------
