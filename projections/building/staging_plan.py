"""Which staging relations a build needs, read from the SQL rather than declared a second time.

Staging is most of a build's cost, and a build of a few tables (a library
rebuild of ``consultation_coverage``, say) needs only part of it: no table
but ``inclusion`` reads the responses' demographics, the one relation that
asks the vault for keys. So staging builds only what the requested tables read.

Nothing is declared by hand, so nothing can drift from the SQL:

* a Panel table's SQL names each staging relation it reads as ``staging.<relation>``;
* each statement of ``sql/_staging.sql`` is one ``CREATE [TEMP] TABLE <relation> AS``, and its
  body names the relations it is made from (comments and quoted text aside); a TEMP relation
  is read only by the statements after it, never written to the staging file;
* the relations made in Python (projections/building/staging.py) are listed in
  :data:`MADE_IN_PYTHON` with what they are made from, those kept in memory in :data:`TEMP_IN_PYTHON`.

A Panel table reads the staging file, where no TEMP relation is: a table whose SQL
names one is refused here, with the relation's name, rather than failing mid-build.

A word that merely looks like a relation (a column called ``responses``) only
stages one relation more than needed; it never leaves one out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from projections.building.sql_files import read_sql, statements

STAGING_FILE = "_staging"

# made by staging.py before the staging SQL runs (always: small, or needed by every build), and after it
# response_demographics, the responses' four demographic fields, unsealed from the vault (inclusion only)
MADE_IN_PYTHON: dict[str, frozenset[str]] = {
    "build_info": frozenset(),
    "boroughs": frozenset(),
    "themes": frozenset(),
    "demographic_groups": frozenset(),
    "default_windows": frozenset(),
    "store_events": frozenset(),
    "untypable_events": frozenset(),
    "retracted": frozenset(),
    "response_demographics": frozenset({"responses"}),
}
TEMP_IN_PYTHON = frozenset({"store_events"})  # the cycle's records as stored: read by the staging statements only

_CREATED = re.compile(r"^\s*CREATE (?P<temp>TEMP |TEMPORARY )?TABLE (?P<relation>\w+) AS\b", re.IGNORECASE | re.MULTILINE)
_READ_FROM_STAGING = re.compile(r"\bstaging\.(\w+)\b")
_COMMENT = re.compile(r"--[^\n]*")
_QUOTED = re.compile(r"'[^']*'")


def _code(sql: str) -> str:
    """The SQL without its comments and quoted text (a JSON key 'themes' is not the themes relation)."""
    return _QUOTED.sub("''", _COMMENT.sub("", sql))


@cache
def staging_statements() -> dict[str, str]:
    """Each relation of ``sql/_staging.sql`` and the statement that creates it, in the file's order."""
    made: dict[str, str] = {}
    for statement in statements(read_sql(STAGING_FILE)):
        created = _CREATED.search(_code(statement))
        if created is None:
            raise ValueError(f"every statement of sql/{STAGING_FILE}.sql creates one table; this one does not:\n{statement}")
        made[created["relation"]] = statement
    return made


def _relations() -> frozenset[str]:
    return frozenset(MADE_IN_PYTHON) | frozenset(staging_statements())


@cache
def temporary_relations() -> frozenset[str]:
    """The relations staging keeps in memory (TEMP): the staging statements read them, no Panel table can."""
    in_sql = {relation for relation, statement in staging_statements().items() if _CREATED.search(_code(statement))["temp"]}
    return TEMP_IN_PYTHON | frozenset(in_sql)


@cache
def made_from(relation: str) -> frozenset[str]:
    """The staging relations ``relation`` is made from directly."""
    if relation in MADE_IN_PYTHON:
        return MADE_IN_PYTHON[relation]
    body = _code(staging_statements()[relation])
    words = set(re.findall(r"\b\w+\b", body[_CREATED.search(body).end():]))
    return frozenset(words & _relations()) - {relation}


@cache
def read_by_table(table: str) -> frozenset[str]:
    """The staging relations a Panel table's SQL reads (``staging.<relation>``)."""
    named = frozenset(_READ_FROM_STAGING.findall(_code(read_sql(table))))
    unknown = named - _relations()
    if unknown:
        raise ValueError(f"sql/{table}.sql reads staging relation(s) {sorted(unknown)} that staging does not make")
    in_memory = named & temporary_relations()
    if in_memory:
        raise ValueError(
            f"sql/{table}.sql reads staging relation(s) {sorted(in_memory)} that staging keeps in memory (TEMP) "
            f"and never writes to the staging file the table reads; read a persisted relation made from it "
            f"(as stage_status reads staging.milestones), or add one to sql/{STAGING_FILE}.sql"
        )
    return named


def needed_by(tables: Iterable[str], *, also: Iterable[str] = ()) -> frozenset[str]:
    """Every staging relation the tables read (and those named in ``also``), and everything those are made from."""
    needed: set[str] = set()
    pending = [relation for table in tables for relation in read_by_table(table)] + list(also)
    while pending:
        relation = pending.pop()
        if relation not in needed:
            needed.add(relation)
            pending.extend(made_from(relation))
    return frozenset(needed)
