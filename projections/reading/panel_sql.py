"""`planning sql`: read-only SQL for the Panel's analysts, on the published snapshot.

What makes it safe, layer by layer:

* the connection is in-memory, with the published panel files attached
  read-only and no access to files or the network afterwards
  (``enable_external_access = false``, configuration locked;
  ``projections.reading.snapshots.open_reader``);
* one statement, and only a query: anything that is not a SELECT (COPY,
  EXPORT, ATTACH, INSTALL, LOAD, SET, PRAGMA, CREATE, INSERT, DROP, CALL…)
  is refused before it runs, so nothing can change, even in memory;
* the query's parse tree is checked before it runs: no table function but a
  few harmless ones (so no ``read_csv``, ``read_text``, ``glob``, ``query``…,
  even inside DuckDB's always-allowed temp directory), no function that reveals
  settings or paths (``current_setting``, ``duckdb_settings``,
  ``duckdb_databases``, ``pragma_database_list``…), no file name in place of a
  table, and no ``dead_letters``;
* the data team's dead letters and the event store are not attached at all;
* a row limit (default 10,000: the rest is not fetched, and the caller is told
  it was truncated), a size limit (``MAX_RESULT_BYTES`` of values fetched,
  whatever the row limit), a memory limit (``open_reader``'s
  ``READER_MEMORY_LIMIT``) and a time limit (default 10 s: the query is
  interrupted with ``interrupt()`` from a timer thread). Limits are checked
  here too, not only by the command line: a NaN or infinite timeout is
  refused, not taken as "no limit".
"""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path
from typing import Any, NamedTuple

import duckdb

from projections.reading.snapshots import READER_MEMORY_LIMIT, open_reader
from projections.reading.synthetic import holds_synthetic
from projections.tables import DEAD_LETTERS

DEFAULT_LIMIT = 10_000
DEFAULT_TIMEOUT = 10.0
MAX_RESULT_BYTES = 32 * 1024 * 1024  # of values, as text: a result one can read, print or keep in memory
_FETCH_ROWS = 1_024

# Table functions a Panel query may call: they make rows from their arguments,
# or describe the Panel's own tables, and touch nothing else.
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest",
    "duckdb_tables", "duckdb_columns", "duckdb_views", "duckdb_schemas",
    "duckdb_types", "duckdb_functions", "duckdb_keywords", "duckdb_constraints",
})
# Scalar functions that would tell a Panel member about the machine, not the data.
DENIED_FUNCTIONS = frozenset({
    "current_setting", "getenv", "json_execute_serialized_sql", "json_serialize_plan",
    "which_secret", "version", "platform",
})
# System views that would show file paths, settings or logs.
DENIED_RELATIONS = frozenset({"duckdb_databases", "duckdb_logs", "pragma_database_list", "pg_settings"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CATALOG = re.compile(r"^(cycle_[0-9]+|memory|temp|system)$")


class PanelSqlError(ValueError):
    """The statement was refused or failed; nothing changed."""


class PanelSqlTimeout(PanelSqlError):
    """The query ran past its time limit and was interrupted."""


class PanelSqlResult(NamedTuple):
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool  # more rows existed than were fetched (the row limit, or the size limit)
    too_big: bool = False  # fetching stopped at MAX_RESULT_BYTES, before the row limit
    synthetic: bool = False  # the snapshot was built from synthetic data (projections.reading.synthetic)


def run_panel_sql(
    projections_dir: Path, sql: str, *, limit: int = DEFAULT_LIMIT, timeout: float = DEFAULT_TIMEOUT,
    snapshot: str | None = None,
) -> PanelSqlResult:
    """Run one read-only query on the published snapshot (the current one, or the named ``snapshot``),
    within ``limit`` rows and ``timeout`` seconds."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise PanelSqlError("--limit must be a whole number, at least 1")
    if not math.isfinite(timeout) or timeout <= 0:
        raise PanelSqlError("--timeout must be a finite number of seconds, more than 0")
    db = open_reader(projections_dir, snapshot=snapshot)
    try:
        check_statement(db, sql)
        return _run(db, sql, limit, timeout)._replace(synthetic=holds_synthetic(db))
    finally:
        db.close()


def check_statement(db: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but one SELECT that reads only the Panel's tables (raises PanelSqlError)."""
    try:
        statements = db.extract_statements(sql)
    except duckdb.Error as error:
        raise PanelSqlError(f"syntax error: {error}") from None
    if len(statements) != 1:
        raise PanelSqlError(f"one statement at a time, please (got {len(statements)})")
    if statements[0].type != duckdb.StatementType.SELECT:
        kind = statements[0].type.name
        raise PanelSqlError(f"only SELECT queries are allowed here; {kind} statements are refused (nothing was changed)")
    (serialized,) = db.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree = json.loads(serialized)
    if tree.get("error"):
        raise PanelSqlError(f"this query cannot be checked, so it is not run: {tree.get('error_message', 'unknown form')}")
    table_functions = {
        name for (name,) in db.execute("SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'table'").fetchall()
    }
    for node in _nodes(tree):
        _check_node(node, table_functions)


def _nodes(tree: Any):
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _check_node(node: dict[str, Any], table_functions: set[str]) -> None:
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        name = str((node.get("function") or {}).get("function_name", "")).lower()
        if name not in ALLOWED_TABLE_FUNCTIONS:
            raise PanelSqlError(
                f"{name}() is not available here: Panel SQL reads the published Panel tables only "
                "(no files, settings, other databases or dynamic SQL)"
            )
    elif kind == "BASE_TABLE":
        name = str(node.get("table_name", ""))
        catalog = str(node.get("catalog_name", ""))
        schema = str(node.get("schema_name", ""))
        if name.lower() == DEAD_LETTERS.name or "operations" in (catalog.lower(), schema.lower()):
            raise PanelSqlError("dead_letters is the data team's table (`planning deadletters`); Panel SQL cannot see it")
        if not _IDENTIFIER.match(name):
            raise PanelSqlError(f"{name!r} is not a Panel table: Panel SQL cannot read files")
        if catalog and not _CATALOG.match(catalog):
            raise PanelSqlError(f"{catalog}.{name} is not a Panel table")
        lowered = name.lower()
        if lowered in DENIED_RELATIONS or lowered.startswith("pragma_") or (
            lowered in table_functions and lowered not in ALLOWED_TABLE_FUNCTIONS
        ):
            raise PanelSqlError(f"{name} is not available here: Panel SQL reads the published Panel tables only")
    if node.get("class") == "FUNCTION" and str(node.get("function_name", "")).lower() in DENIED_FUNCTIONS:
        raise PanelSqlError(f"{node['function_name']}() is not available here: it describes the machine, not the Panel's data")


def _run(db: duckdb.DuckDBPyConnection, sql: str, limit: int, timeout: float) -> PanelSqlResult:
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        db.interrupt()

    timer = threading.Timer(timeout, stop)
    timer.daemon = True
    timer.start()
    try:
        cursor = db.execute(sql)
        columns = [d[0] for d in cursor.description]
        rows, too_big = _fetch(cursor, limit + 1)  # the result streams: rows past the limit are never made
    except duckdb.InterruptException:
        raise PanelSqlTimeout(
            f"the query was stopped after the time limit of {timeout:g} s (nothing was changed); "
            "narrow it, or allow longer with --timeout SECONDS"
        ) from None
    except duckdb.OutOfMemoryException:
        raise PanelSqlError(
            f"the query needed more memory than a Panel query may use ({READER_MEMORY_LIMIT}; nothing was changed): "
            "narrow it to fewer rows, columns or groups"
        ) from None
    except duckdb.Error as error:
        if expired.is_set():
            raise PanelSqlTimeout(f"the query was stopped after the time limit of {timeout:g} s") from None
        raise PanelSqlError(str(error)) from None
    finally:
        timer.cancel()
    truncated = too_big or len(rows) > limit
    return PanelSqlResult(columns, rows[:limit], truncated, too_big)


def _fetch(cursor: duckdb.DuckDBPyConnection, most: int) -> tuple[list[tuple[Any, ...]], bool]:
    """Up to ``most`` rows, stopping once their values pass MAX_RESULT_BYTES; says whether the size stopped it."""
    rows: list[tuple[Any, ...]] = []
    size = 0
    while len(rows) < most:
        chunk = cursor.fetchmany(min(_FETCH_ROWS, most - len(rows)))
        if not chunk:
            return rows, False
        for row in chunk:
            size += sum(len(str(value)) + 1 for value in row)
            if size > MAX_RESULT_BYTES:
                return rows, True
            rows.append(row)
    return rows, False


def truncation_note(result: PanelSqlResult, limit: int) -> str | None:
    """What to tell the reader when only part of the result was fetched."""
    if not result.truncated:
        return None
    if result.too_big:
        return (f"output stopped at {len(result.rows):,} rows / {MAX_RESULT_BYTES // (1024 * 1024)} MB, the most one "
                "query may return; narrow the query or use `planning export`")
    return f"the result was truncated: showing the first {limit:,} rows only (raise it with --limit N)"
