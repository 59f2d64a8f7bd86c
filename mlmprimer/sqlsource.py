"""A data source DuckDB reads: a Parquet or CSV path or a DuckDB relation (:class:`Table`).

:mod:`mlmprimer.aggregate` sends it aggregate queries only; the rows stay where they are.

Examples
--------
>>> import duckdb
>>> from mlmprimer.sqlsource import Table
>>> Table(duckdb.sql("SELECT 1.5 AS x, 'a' AS f")).columns
{'x': 'DECIMAL(2,1)', 'f': 'VARCHAR'}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SOURCE", "Table", "ident", "literal"]

#: the name the source goes by inside the SQL
SOURCE = "mlm_source"

_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)


def ident(name: str) -> str:
    """A SQL identifier, quoted.

    Examples
    --------
    >>> from mlmprimer.aggregate import ident
    >>> print(ident("my x"))
    "my x"
    """
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A SQL string literal.

    Examples
    --------
    >>> from mlmprimer.aggregate import literal
    >>> literal("O'Brien")
    "'O''Brien'"
    """
    return "'" + str(value).replace("'", "''") + "'"


class Table:
    """A data source for DuckDB: a Parquet or CSV path, or a DuckDB relation.

    :meth:`query` runs SQL in which the source is called ``mlm_source`` and returns the
    result's columns as numpy arrays; it is used only for aggregates.

    Parameters
    ----------
    source : str, pathlib.Path or duckdb.DuckDBPyRelation
        ``*.parquet`` (or a glob of them) or ``*.csv`` / ``*.csv.gz``, read by DuckDB (a CSV
        column is read as integers, floats or text, as pandas reads it), or a relation of any
        connection.
    connection : duckdb.DuckDBPyConnection, optional
        Where a path is read (default: a new in-memory database).

    Examples
    --------
    >>> import duckdb
    >>> from mlmprimer.aggregate import Table
    >>> t = Table(duckdb.sql("SELECT range AS x FROM range(4)"))
    >>> t.columns, int(t.query("SELECT sum(x) AS s FROM mlm_source")["s"][0])
    ({'x': 'BIGINT'}, 6)
    """

    def __init__(self, source: Any, connection: Any = None) -> None:
        import duckdb

        self.source = source
        if isinstance(source, duckdb.DuckDBPyRelation):
            self.relation = source
            self.label = "relation"
        elif isinstance(source, str | Path):
            path = str(source)
            lower = path.lower()
            if lower.endswith(".parquet") or lower.endswith(".pq"):
                reader = "read_parquet"
            elif any(lower.endswith(s) for s in (".csv", ".csv.gz", ".tsv", ".txt")):
                reader = "read_csv"
            else:
                raise ValueError(
                    f"cannot tell the format of {path!r}: give a .parquet or .csv file, or a "
                    "DuckDB relation (duckdb.read_parquet(...), con.sql(...))"
                )
            if "*" not in path and not Path(path).exists():
                raise FileNotFoundError(f"no data file {path!r}")
            if connection is None:
                con = duckdb.connect()
                con.execute("SET enable_progress_bar = false")
            else:
                con = connection
            # CSV: numbers or text, as pandas reads them ("Yes"/"No" stay text)
            opts = ", auto_type_candidates = ['BIGINT', 'DOUBLE', 'VARCHAR']"
            opts = opts if reader == "read_csv" else ""
            self.relation = con.sql(f"SELECT * FROM {reader}({literal(path)}{opts})")
            self.label = Path(path).name
        else:
            raise TypeError(
                "the source must be a path to a Parquet or CSV file or a DuckDB relation, not "
                f"{type(source).__name__}"
            )
        self.columns = {
            c: str(t) for c, t in zip(self.relation.columns, self.relation.types, strict=True)
        }

    def kind(self, column: str) -> str:
        """``"numeric"``, ``"boolean"``, ``"enum"``, ``"text"`` or ``"other"``."""
        t = self.columns[column].upper()
        if t.startswith(_NUMERIC):
            return "numeric"
        if t == "BOOLEAN":
            return "boolean"
        if t.startswith("ENUM"):
            return "enum"
        if t == "VARCHAR":
            return "text"
        return "other"

    def query(self, sql: str) -> dict[str, np.ndarray]:
        """The columns of an aggregate query on ``mlm_source`` as numpy arrays."""
        out = self.relation.query(SOURCE, sql).fetchnumpy()
        return {k: np.asarray(v) for k, v in out.items()}
