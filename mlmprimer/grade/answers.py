"""Carrying the answers out of the student's kernel (as JSON) and rebuilding them."""

from __future__ import annotations

from typing import Any

from .common import _check

# Runs inside the student's kernel. Self-contained (imports only the standard library, looks up
# builtins through the builtins module) so that names a student shadowed do not break it.
_DUMP_SOURCE = r"""
def {func}(names, path):
    import builtins as _b
    import json as _json
    import math as _math
    import numbers as _numbers

    space = _b.globals()
    limit = 200000
    # bind builtins locally: a student may have reused names such as list, dict or open
    isinstance, len, hasattr, float, int, repr = (
        _b.isinstance, _b.len, _b.hasattr, _b.float, _b.int, _b.repr
    )
    list, tuple, dict, str, bool, type, open = (
        _b.list, _b.tuple, _b.dict, _b.str, _b.bool, _b.type, _b.open
    )
    Exception, Ellipsis = _b.Exception, _b.Ellipsis

    def enc(v, depth=0):
        if depth > 6:
            return {{"__unsupported__": "deeply nested object"}}
        if v is Ellipsis:
            return {{"__ellipsis__": True}}
        if v is None or isinstance(v, (bool, str)):
            return v[:limit] if isinstance(v, str) else v
        mod = type(v).__module__ or ""
        kind = type(v).__name__
        if mod.startswith("numpy") and hasattr(v, "tolist"):
            if kind == "ndarray":
                if v.size > limit:
                    return {{"__unsupported__": "very large array"}}
                return {{"__ndarray__": enc(v.tolist(), depth + 1)}}
            return enc(v.item(), depth + 1) if hasattr(v, "item") else {{"__unsupported__": kind}}
        if isinstance(v, _numbers.Integral):
            return int(v)
        if isinstance(v, _numbers.Real):
            f = float(v)
            return f if _math.isfinite(f) else {{"__float__": repr(f)}}
        if mod.startswith("pandas") and kind == "Series":
            if len(v) > limit:
                return {{"__unsupported__": "very large Series"}}
            return {{"__series__": {{
                "index": [enc(i, depth + 1) for i in v.index.tolist()],
                "values": [enc(x, depth + 1) for x in v.tolist()],
                "name": enc(v.name, depth + 1) if isinstance(v.name, (str, int)) else None,
            }}}}
        if mod.startswith("pandas") and kind == "DataFrame":
            if v.size > limit:
                return {{"__unsupported__": "very large DataFrame"}}
            return {{"__dataframe__": {{
                "columns": [enc(c, depth + 1) for c in v.columns.tolist()],
                "index": [enc(i, depth + 1) for i in v.index.tolist()],
                "data": [[enc(x, depth + 1) for x in row] for row in v.values.tolist()],
            }}}}
        if isinstance(v, tuple):
            return {{"__tuple__": [enc(x, depth + 1) for x in v[:limit]]}}
        if isinstance(v, list):
            return [enc(x, depth + 1) for x in v[:limit]]
        if isinstance(v, dict):
            items = list(v.items())[:limit]
            return {{"__dict__": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in items]}}
        return {{"__unsupported__": kind}}

    out = {{}}
    for name in names:
        if name in space:
            try:
                out[name] = enc(space[name])
            except Exception as exc:
                out[name] = {{"__unsupported__": type(exc).__name__}}
    with open(path, "w", encoding="utf-8") as fh:
        _json.dump(out, fh)


{func}({names!r}, {path!r})
del {func}
"""


def decode_answer(value: Any) -> Any:
    """Rebuild an answer from the JSON written in the student's kernel.

    Numbers, text, lists, tuples, dicts, numpy arrays, pandas Series and DataFrames are rebuilt;
    anything else (a fitted model, a figure) becomes :class:`mlmprimer.check.Unsupported`.

    Examples
    --------
    >>> decode_answer({"__tuple__": [1.5, 2]})
    (1.5, 2)
    >>> decode_answer({"__ellipsis__": True}) is Ellipsis
    True
    >>> decode_answer({"__series__": {"index": ["a"], "values": [1.0], "name": None}})["a"]
    np.float64(1.0)
    >>> decode_answer({"__unsupported__": "LmerModel"})
    <a LmerModel object>
    """
    import numpy as np
    import pandas as pd

    if isinstance(value, list):
        return [decode_answer(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__ellipsis__" in value:
        return Ellipsis
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(decode_answer(v) for v in value["__tuple__"])
    if "__ndarray__" in value:
        return np.asarray(decode_answer(value["__ndarray__"]))
    if "__series__" in value:
        s = value["__series__"]
        index = [decode_answer(i) for i in s["index"]]
        return pd.Series([decode_answer(v) for v in s["values"]], index=index, name=s["name"])
    if "__dataframe__" in value:
        d = value["__dataframe__"]
        return pd.DataFrame(
            [[decode_answer(v) for v in row] for row in d["data"]],
            columns=[decode_answer(c) for c in d["columns"]],
            index=[decode_answer(i) for i in d["index"]],
        )
    if "__dict__" in value:
        out = {}
        for key, item in value["__dict__"]:
            key = decode_answer(key)
            try:
                hash(key)
            except TypeError:
                key = repr(key)
            out[key] = decode_answer(item)
        return out
    if "__unsupported__" in value:
        return _check().Unsupported(str(value["__unsupported__"]))
    return {k: decode_answer(v) for k, v in value.items()}
