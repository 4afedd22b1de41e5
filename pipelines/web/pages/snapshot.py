"""Which published snapshot a page reads, and a connection to it for one request.

The Panel's pages read the current snapshot unless the query string names another
(``?snapshot=NAME``, chosen in the snapshot picker); every Panel link carries the choice on,
so a what-if is read consistently from page to page. The public pages always read the current
snapshot: a what-if is the Panel's working material, not published material.

A page that names a cycle, a table or a snapshot that does not exist is answered with 404,
saying what exists instead.

A page that shows one cycle (a public page, the Panel's dashboard, a Panel table and its download)
attaches that cycle's file only (``reading_cycle``): opening every published cycle's file and the
views across them cost a page two thirds of its time at six cycles of history, for figures it does
not show. The cycles it links to are the pointer's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

import duckdb
from starlette.requests import Request

from events.home import PlanningHome
from projections.reading.named import CURRENT
from projections.reading.snapshots import (
    NoSnapshot, UnknownSnapshot, listed_snapshots, named_snapshots, open_reader, published,
)
from projections.reading.synthetic import holds_synthetic

SNAPSHOT_PARAMETER = "snapshot"


class Refused(Exception):
    """A page cannot answer this request: ``status`` and what to tell the reader (what exists, what to do)."""

    def __init__(self, status: int, told: str) -> None:
        super().__init__(told)
        self.status, self.told = status, told


@dataclass(frozen=True)
class Provenance:
    """Where a figure comes from: its source table and the (on, as_of) of the build of its cycle."""

    cycle: str
    on: date
    as_of: datetime
    source: str


class Snapshot:
    """A read-only connection to one published snapshot, rows as dicts."""

    def __init__(self, db: duckdb.DuckDBPyConnection, name: str, published: list[str] | None = None) -> None:
        self.db, self.name = db, name
        self.synthetic = holds_synthetic(db)
        self._built: dict[str, dict[str, Any]] | None = None
        self._published = published  # every cycle published, when the connection holds fewer

    def rows(self, sql: str, *parameters: Any) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, list(parameters))
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row)) for row in cursor.fetchall()]

    @property
    def builds(self) -> dict[str, dict[str, Any]]:
        """cycle -> its build_info row, oldest cycle first."""
        if self._built is None:
            self._built = {r["cycle"]: r for r in self.rows("SELECT * FROM build_info ORDER BY cycle")}
        return self._built

    def cycles(self) -> list[str]:
        """The snapshot's cycles, oldest first (every one published, even those this connection did not attach)."""
        return list(self.builds) if self._published is None else list(self._published)

    def cycle(self, cycle: str | None) -> str:
        """``cycle`` if this snapshot holds it (the latest when None); 404 naming the published cycles otherwise."""
        published = self.cycles()
        if cycle is None and published:
            return published[-1]
        if cycle not in published:
            raise Refused(404, f"cycle {cycle} is not published (published: {', '.join(published) or 'none'})")
        return cycle

    def provenance(self, cycle: str, source: str) -> Provenance:
        built = self.builds[cycle]
        return Provenance(cycle, built["on_date"], built["as_of"], source)


def home_of(request: Request) -> PlanningHome:
    return request.app.state.home


def chosen_snapshot(request: Request) -> str:
    """The snapshot the query string names, or the current one."""
    return request.query_params.get(SNAPSHOT_PARAMETER) or CURRENT


def snapshot_names(request: Request) -> list[str]:
    """The current snapshot and every named one, as the picker lists them."""
    names = sorted({row["snapshot"] for row in listed_snapshots(home_of(request).projections)} - {CURRENT})
    return [CURRENT, *names]


@contextmanager
def reading(request: Request, *, public: bool = False) -> Iterator[Snapshot]:
    """The snapshot the page reads: always the current one for a public page."""
    name = CURRENT if public else chosen_snapshot(request)
    try:
        db = open_reader(home_of(request).projections, snapshot=name)
    except UnknownSnapshot as unknown:
        raise Refused(404, str(unknown)) from None
    except NoSnapshot:
        raise Refused(503, "nothing has been published yet: the data team runs `planning build` first") from None
    try:
        yield Snapshot(db, name)
    finally:
        db.close()


@contextmanager
def reading_cycle(request: Request, cycle: str | None, *, snapshot: str = CURRENT) -> Iterator[Snapshot]:
    """``snapshot`` (the current one unless named) with only ``cycle``'s file attached (its latest cycle when None);
    404 naming its cycles when ``cycle`` is not one of them, or naming the snapshots when there is none of that name."""
    pointer = published(home_of(request).projections)
    if snapshot == CURRENT:
        cycles_of = pointer["cycles"]
    elif snapshot in named_snapshots(pointer):
        cycles_of = named_snapshots(pointer)[snapshot]
    else:
        raise Refused(404, str(UnknownSnapshot(snapshot, sorted(named_snapshots(pointer)))))
    published_cycles = sorted(cycles_of)
    if not published_cycles:
        raise Refused(503, "nothing has been published yet: the data team runs `planning build` first")
    chosen = published_cycles[-1] if cycle is None else cycle
    if chosen not in published_cycles:
        raise Refused(404, f"cycle {cycle} is not published (published: {', '.join(published_cycles)})")
    try:
        db = open_reader(home_of(request).projections, cycles=[chosen], snapshot=snapshot)
    except UnknownSnapshot as unknown:
        raise Refused(404, str(unknown)) from None
    except NoSnapshot:
        raise Refused(503, "nothing has been published yet: the data team runs `planning build` first") from None
    try:
        yield Snapshot(db, snapshot, published_cycles)
    finally:
        db.close()


def reading_asked_cycle(request: Request) -> AbstractContextManager[Snapshot]:
    """The chosen snapshot with only the cycle the query asks for (``?cycle=``, the latest when none) attached."""
    return reading_cycle(request, request.query_params.get("cycle") or None, snapshot=chosen_snapshot(request))


def carried(request: Request, path: str, **parameters: Any) -> str:
    """``path`` with the page's snapshot choice carried on, and ``parameters`` (None values left out)."""
    query = {key: value for key, value in parameters.items() if value not in (None, "")}
    name = chosen_snapshot(request)
    if name != CURRENT:
        query = {SNAPSHOT_PARAMETER: name, **query}
    return f"{path}?{urlencode(query)}" if query else path
