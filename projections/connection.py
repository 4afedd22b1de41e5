"""The one way this project opens a DuckDB database.

The DuckDB wheel has ``json``, ``parquet`` and ``icu`` built in; any other
extension would be downloaded at first use, and nothing we run may reach for
the network. Every DuckDB connection of ours is opened through :func:`connect`,
which turns those downloads off.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

_NO_EXTENSION_DOWNLOADS = {"autoinstall_known_extensions": False}


def connect(path: Path | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection to the DuckDB file at ``path`` (in memory when None) that never downloads an extension."""
    database = ":memory:" if path is None else str(path)
    return duckdb.connect(database, read_only=read_only, config=dict(_NO_EXTENSION_DOWNLOADS))


def sql_string(path: Path | str) -> str:
    """``path`` as a SQL string literal, quotes included, for the statements that take no parameter (ATTACH).

    A $PLANNING_HOME may hold an apostrophe ("O'Brien's laptop"): it is doubled, as SQL spells it.
    """
    return "'" + str(path).replace("'", "''") + "'"
