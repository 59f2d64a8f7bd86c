"""R's functions as a formula uses them, evaluated with numpy: the helpers patsy calls.

The translation of a formula for patsy (:mod:`mlmprimer.rterms`) writes R's functions as calls of
these helpers: ``log(x, base)``, ``x^y`` inside ``I()``, ``factor()``, R's logical values, the
elementwise functions of :data:`mlmprimer.rsyntax.R_MATH`, and the stateful ``poly()`` (R's
orthogonal polynomials) and ``scale()``, whose centre, scale and polynomial basis come from the
data of the fit and are kept for new data. :func:`r_eval_env` adds them to the caller's names.

Examples
--------
>>> import numpy as np
>>> from mlmprimer.rfunctions import r_eval_env
>>> env = r_eval_env(None)
>>> float(env.eval("_mlm_log(np.array([8.0]), 2)")[0])
3.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import patsy

from .formula import r_text
from .rsyntax import R_MATH

__all__ = ["eval_namespace", "r_eval_env"]


def _elementwise(name: str) -> Any:
    func = getattr(np, name)

    def apply(x: Any) -> Any:
        with np.errstate(all="ignore"):  # log(0) and friends: reported as non-finite later
            return func(_numeric(x, name))

    apply.__name__ = f"_mlm_{name}"
    return apply


def _numeric(x: Any, func: str) -> Any:
    if isinstance(x, pd.Series):
        if not (pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x)) or isinstance(
            x.dtype, pd.CategoricalDtype
        ):
            raise ValueError(f"{func}() needs numbers, but got a column of dtype {x.dtype}")
        return x.astype(float)
    return np.asarray(x, dtype=float)


def _r_log(x: Any, base: float = math.e) -> Any:
    with np.errstate(all="ignore"):
        out = np.log(_numeric(x, "log"))
        return out if base == math.e else out / math.log(base)


def _r_pow(x: Any, y: Any) -> Any:
    """R's ``^``: a floating-point power, whatever the types of its operands."""
    with np.errstate(all="ignore"):
        return np.float_power(x, y)


def _like(x: Any, values: np.ndarray) -> Any:
    if isinstance(x, pd.Series):
        return pd.Series(values, index=x.index)
    return values


def _r_logical(x: Any) -> Any:
    """R's labels FALSE/TRUE for a logical value (``I(!b)TRUE``); other values unchanged."""
    if isinstance(x, pd.Series) and pd.api.types.is_bool_dtype(x.dtype):
        return _r_factor(x)
    if isinstance(x, np.ndarray) and x.dtype == bool:
        return _r_factor(pd.Series(x))
    return x


def _r_factor(x: Any) -> Any:
    """Values as R's ``factor()`` labels them: logicals FALSE/TRUE, numbers without ``.0``."""
    values = x if isinstance(x, pd.Series) else pd.Series(np.asarray(x))
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.remove_unused_categories()
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_float_dtype(values.dtype):
        uniq = sorted(pd.unique(values.dropna()))
        labels = {v: r_text(v) for v in uniq}
        return pd.Series(
            pd.Categorical(values.map(labels), categories=[labels[v] for v in uniq]),
            index=values.index,
        )
    return values


class _RPoly:
    """R's ``poly(x, degree, raw)``: one column (``column``, 0-based) of its matrix.

    Orthogonal polynomials (the default) are computed from the fit data as R does: the
    columns of ``Q diag(R)`` from the QR decomposition of the centred powers of x, scaled to
    unit length. New data get them from the three-term recurrence with the fit's ``alpha`` and
    ``norm2`` (R's ``coefs``), so predictions use the fit's polynomials.
    """

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.alpha: np.ndarray | None = None
        self.norm2: np.ndarray | None = None
        self._fit_x: np.ndarray | None = None
        self._fit_z: np.ndarray | None = None

    def memorize_chunk(self, x: Any, degree: int = 1, raw: bool = False, column: int = 0) -> None:
        self._chunks.append(np.asarray(_numeric(x, "poly"), dtype=float))

    def memorize_finish(self) -> None:
        x = np.concatenate(self._chunks) if self._chunks else np.zeros(0)
        self._chunks = []
        self._fit_x = x

    def _orthogonal(self, degree: int) -> None:
        x = self._fit_x
        assert x is not None
        if degree >= len(np.unique(x)):
            raise ValueError(
                f"poly(): the degree ({degree}) must be less than the number of distinct "
                f"values of x ({len(np.unique(x))})"
            )
        xbar = float(np.mean(x))
        xc = x - xbar
        V = xc[:, None] ** np.arange(degree + 1)[None, :]
        Q, R = np.linalg.qr(V)
        Z = Q * np.diag(R)[None, :]
        norm2 = np.sum(Z**2, axis=0)
        self.alpha = (np.sum(xc[:, None] * Z**2, axis=0) / norm2 + xbar)[:degree]
        self.norm2 = np.concatenate([[1.0], norm2])
        self._fit_z = (Z / np.sqrt(norm2)[None, :])[:, 1:]

    def transform(self, x: Any, degree: int = 1, raw: bool = False, column: int = 0) -> Any:
        values = np.asarray(_numeric(x, "poly"), dtype=float)
        if raw:
            return _like(x, values ** (column + 1))
        if self.alpha is None:
            self._orthogonal(degree)
        if self._fit_x is not None and np.array_equal(values, self._fit_x):
            assert self._fit_z is not None
            return _like(x, self._fit_z[:, column].copy())
        alpha, norm2 = self.alpha, self.norm2
        assert alpha is not None and norm2 is not None
        Z = np.ones((len(values), degree + 1))
        Z[:, 1] = values - alpha[0]
        for i in range(1, degree):
            Z[:, i + 1] = (values - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
        Z = Z / np.sqrt(norm2[1:])[None, :]
        return _like(x, Z[:, column + 1])


class _RScale:
    """R's ``scale(x, center = TRUE, scale = TRUE)`` with the fit data's centre and scale.

    ``center`` and ``scale`` may be True/False or numbers, as in R; the scale is the standard
    deviation with denominator n - 1 (after centring), or the root mean square when not
    centred.
    """

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.center: float = 0.0
        self.scale: float = 1.0

    def memorize_chunk(self, x: Any, center: Any = True, scale: Any = True) -> None:
        self._chunks.append(np.asarray(_numeric(x, "scale"), dtype=float))

    def memorize_finish(self) -> None:
        x = np.concatenate(self._chunks) if self._chunks else np.zeros(0)
        self._chunks = []
        self._x = x

    def _settle(self, center: Any, scale: Any) -> None:
        x = self._x
        if center is True:
            self.center = float(np.mean(x))
        elif center is False or center is None:
            self.center = 0.0
        else:
            self.center = float(center)
        if scale is True:
            xc = x - self.center
            self.scale = math.sqrt(float(np.sum(xc**2)) / max(len(x) - 1, 1))
        elif scale is False or scale is None:
            self.scale = 1.0
        else:
            self.scale = float(scale)

    def transform(self, x: Any, center: Any = True, scale: Any = True) -> Any:
        if hasattr(self, "_x"):
            self._settle(center, scale)
            del self._x
        values = np.asarray(_numeric(x, "scale"), dtype=float)
        return _like(x, (values - self.center) / self.scale)


_HELPERS: dict[str, Any] = {f"_mlm_{name}": _elementwise(fn) for name, fn in R_MATH.items()}
_HELPERS.update(
    {
        "_mlm_log": _r_log,
        "_mlm_pow": _r_pow,
        "_mlm_factor": _r_factor,
        "_mlm_logical": _r_logical,
        "_mlm_poly": patsy.stateful_transform(_RPoly),
        "_mlm_scale": patsy.stateful_transform(_RScale),
        "np": np,
    }
)


def r_eval_env(env: Any) -> patsy.EvalEnvironment:
    """The caller's environment ``env`` (patsy's, a mapping or None) with R's functions added.

    Examples
    --------
    >>> from mlmprimer.rfunctions import r_eval_env
    >>> r_eval_env({"a": 1}).namespace["a"]
    1
    """
    if isinstance(env, patsy.EvalEnvironment):
        base = env
    elif env is None:
        base = patsy.EvalEnvironment([{"np": np}])
    else:
        base = patsy.EvalEnvironment([dict(env), {"np": np}])
    return base.with_outer_namespace(_HELPERS)


def eval_namespace(env: Any) -> Mapping[str, Any] | None:
    """The mapping of names of an evaluation environment (patsy's, or a mapping as it is)."""
    if isinstance(env, patsy.EvalEnvironment):
        return env.namespace
    return env
