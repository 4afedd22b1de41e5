"""The Panel's tables (docs/tables.md), each described once, beside its SQL.

A table's whole story sits in ``projections/sql/``:

* ``<table>.sql`` builds it (a SELECT over the staging file);
* ``<table>.yml`` describes it: what one row is (``description``), the
  timetable stage whose evidence it carries (``group``; Dagster groups the
  assets by it), the order readers get rows in (``order_by``), every column
  with its DuckDB type and meaning, and its checks by name and meaning;
* ``checks/<table>__<check>.sql`` is each check: a query that returns one row
  per violation (its first column says what is wrong), so the check passes
  when it returns none. A check that compares its table with another Panel
  table names that table (``reads``): it runs once both are built.

This module reads those files into typed objects for everyone else: the
Dagster assets and checks, the exports' READMEs, the packs, `planning query`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import yaml

# The Panel's tables, in the order readers meet them (exports, Dagster, the snapshot).
PANEL_TABLE_NAMES = (
    "stage_status",
    "consultation_coverage",
    "cdrp_audits",
    "inclusion",
    "group_activity",
    "survey_indicators",
    "theme_ranking",
    "feedback_log",
    "priority_traceability",
    "priority_evidence",
)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the DuckDB type, as DESCRIBE shows it
    description: str


@dataclass(frozen=True)
class TableCheck:
    table: str
    name: str
    description: str
    sql: str  # returns one row per violation; the first column says what is wrong
    reads: tuple[str, ...] = ()  # the other Panel tables the check compares its table with


@dataclass(frozen=True)
class PanelTable:
    name: str
    group: str
    description: str
    order_by: str
    columns: tuple[Column, ...]
    checks: tuple[TableCheck, ...]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


def sql_folder() -> Traversable:
    return resources.files("projections").joinpath("sql")


def load_table(name: str) -> PanelTable:
    """The table described by ``sql/<name>.yml``, with its checks' SQL read in."""
    folder = sql_folder()
    # libyaml's safe loader: the same documents as yaml.safe_load, read ~10x faster in every process that starts
    schema = yaml.load(folder.joinpath(f"{name}.yml").read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    return PanelTable(
        name=name,
        group=schema["group"],
        description=schema["description"],
        order_by=schema["order_by"],
        columns=tuple(Column(c["name"], c["type"], c["description"]) for c in schema["columns"]),
        checks=tuple(
            TableCheck(name, c["name"], c["description"],
                       folder.joinpath("checks", f"{name}__{c['name']}.sql").read_text(encoding="utf-8"),
                       tuple(c.get("reads", ())))
            for c in schema.get("checks", [])
        ),
    )


PANEL_TABLES: dict[str, PanelTable] = {name: load_table(name) for name in PANEL_TABLE_NAMES}

# The data team's table: never part of a Panel snapshot.
DEAD_LETTERS = load_table("dead_letters")

ALL_TABLES: dict[str, PanelTable] = {**PANEL_TABLES, DEAD_LETTERS.name: DEAD_LETTERS}

# Each published cycle's record of its build (cycle, on_date, as_of, built_at, store_position): written by
# the build itself, not by a SQL file, and readable like a Panel table (`planning query build_info`).
BUILD_INFO = "build_info"
BUILD_INFO_ORDER = "cycle"
