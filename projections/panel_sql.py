"""`planning sql`: read-only SQL for the Panel's analysts, on the published snapshot.

What makes it safe:
* the connection is in-memory, with the published panel files attached
  read-only and no access to files or the network afterwards
  (``enable_external_access = false``, configuration locked);
* only queries are run: anything that is not a SELECT is refused before it
  runs, so nothing can change, even in memory;
* the data team's dead letters and the event store are not attached at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from projections.snapshots import open_reader


class PanelSqlError(ValueError):
    """The statement was refused or failed; nothing changed."""


def run_panel_sql(projections_dir: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    db = open_reader(projections_dir)
    try:
        statements = db.extract_statements(sql)
    except duckdb.Error as error:
        raise PanelSqlError(f"syntax error: {error}") from None
    if len(statements) != 1:
        raise PanelSqlError(f"one statement at a time, please (got {len(statements)})")
    if statements[0].type != duckdb.StatementType.SELECT:
        kind = statements[0].type.name
        raise PanelSqlError(f"only SELECT queries are allowed here; {kind} statements are refused (nothing was changed)")
    try:
        cursor = db.execute(sql)
        return [d[0] for d in cursor.description], cursor.fetchall()
    except duckdb.Error as error:
        raise PanelSqlError(str(error)) from None
