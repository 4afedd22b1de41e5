"""What the Panel knew at an earlier instant, against what it knows now: the demo's time-travel line.

The demo's events arrive in deliveries (``pipelines.demo.deliveries``), so a
build at an earlier ``as_of`` sees fewer responses than today's. The earlier
figure comes from a private build: the cycle staged from the store at
(``on``, ``as_of``) and the ``consultation_coverage`` SQL run on it, in a
scratch directory that nothing publishes. The Panel's current snapshot is
never replaced by it. The figure now is read from that current snapshot, the
one the dashboard shows.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timezone
from pathlib import Path

from events.contract.instants import Instants
from events.home import PlanningHome
from events.storage.backends import open_store
from projections.building.build import build_table
from projections.building.staging import stage_cycle
from projections.connection import connect
from projections.reading.snapshots import open_reader

EARLIER_MONTH = 10  # the start of October: feedback round 1 opens; the analysis is done

RESPONSES_SQL = "SELECT coalesce(sum(responses), 0) FROM consultation_coverage WHERE cycle = ? AND channel = 'all'"


def earlier_instant(today: date) -> datetime:
    """The start of October of ``today``'s year, once it has passed; before it, the start of ``today``'s month."""
    month = EARLIER_MONTH if today.month >= EARLIER_MONTH else today.month
    return datetime(today.year, month, 1, tzinfo=timezone.utc)


def responses_known(home: PlanningHome, cycle: str, on: date, as_of: datetime) -> int:
    """Responses of ``cycle`` a build at (``on``, ``as_of``) counts, from a private build of the store."""
    with tempfile.TemporaryDirectory(prefix="planning-demo-as-of-") as scratch:
        build = Path(scratch)
        with open_store(home.store) as store:
            stage_cycle(store, build / "staging.duckdb", cycle, Instants(on, as_of))
        build_table(build, "consultation_coverage")
        with connect(build / "panel.duckdb", read_only=True) as db:
            return int(db.execute(RESPONSES_SQL, [cycle]).fetchone()[0])


def responses_now(home: PlanningHome, cycle: str) -> int:
    """Responses of ``cycle`` in the Panel's current snapshot."""
    db = open_reader(home.projections, cycles=[cycle])
    try:
        return int(db.execute(RESPONSES_SQL, [cycle]).fetchone()[0])
    finally:
        db.close()


def knowledge_line(earlier: datetime, known_then: int, known_now: int) -> str:
    """'Responses known on 1 Oct 2026: 3,412; known now: 4,120 (+708 arrived since)'."""
    change = known_now - known_then
    since = f"{change:+,} since, from late deliveries and retractions" if change else "none arrived since"
    return f"Responses known on {earlier.day} {earlier:%b %Y}: {known_then:,}; known now: {known_now:,} ({since})"
