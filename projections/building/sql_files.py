"""Run the SQL files in ``projections/sql/``: one file per table, named after it."""

from __future__ import annotations

from importlib import resources

import duckdb


def read_sql(name: str) -> str:
    return resources.files("projections").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def statements(sql: str) -> list[str]:
    """Split a file on the semicolons that end a line (our files keep one statement per paragraph)."""
    return [s.strip() for s in sql.split(";\n") if s.strip() and not _only_comments(s)]


def _only_comments(statement: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in statement.splitlines())


def run_sql_file(db: duckdb.DuckDBPyConnection, name: str) -> None:
    for statement in statements(read_sql(name)):
        db.execute(statement)
